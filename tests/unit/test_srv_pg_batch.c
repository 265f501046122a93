/*
 * test_srv_pg_batch: the books of a PostgreSQL push batch and its binary
 * array parameters (server/srv_pg_batch.c).  Guards issue 10's
 * batches: every document and change id a batch names is found again
 * whatever the order and repeats it was named in; a write moves the
 * document and the change id and queues its row in order, and a write on
 * a version the document is not at (a lost race) or on a document the
 * batch never named changes nothing; the arrays are byte for byte what
 * PostgreSQL's array_recv reads (header, big-endian lengths, NULL as -1,
 * an empty array without dimensions).
 */
#include "autoconfig.h"

#include <endian.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "srv_pg_batch.h"

static const struct srv_batch_key keys[] = {
	{ "notes", "b", "devA", 3 },
	{ "notes", "a", "devA", 1 },
	{ "notes", "b", "devA", 2 },
	{ "notes", "a", "devA", 1 },	/* a repeat */
	{ "todo", "a", "devB", 1 },
};
#define NKEYS	(sizeof keys / sizeof keys[0])

static void
test_named_found_once(void **state)
{
	struct srv_pg_batch b;
	size_t i;

	(void)state;
	assert_int_equal(srv_pg_batch_init(&b, keys, NKEYS), 0);
	assert_int_equal(b.ndocs, 3);
	assert_int_equal(b.nids, 4);
	for (i = 0; i + 1 < b.ndocs; i++)
		assert_true(strcmp(b.docs[i].collection,
		    b.docs[i + 1].collection) < 0 ||
		    strcmp(b.docs[i].id, b.docs[i + 1].id) < 0);
	for (i = 0; i < NKEYS; i++) {
		assert_non_null(srv_pg_batch_doc(&b, keys[i].collection,
		    keys[i].id));
		assert_non_null(srv_pg_batch_id(&b, keys[i].device,
		    keys[i].dseq));
	}
	assert_null(srv_pg_batch_doc(&b, "notes", "c"));
	assert_null(srv_pg_batch_doc(&b, "todo", "b"));
	assert_null(srv_pg_batch_id(&b, "devA", 4));
	assert_null(srv_pg_batch_id(&b, "devB", 3));
	/* Absent until the caller says what it read. */
	assert_int_equal(srv_pg_batch_doc(&b, "notes", "a")->version, 0);
	assert_int_equal(srv_pg_batch_id(&b, "devA", 2)->outcome,
	    SRV_OUTCOME_NONE);
	srv_pg_batch_clear(&b);
	srv_pg_batch_clear(&b);		/* twice is fine */
	assert_int_equal(srv_pg_batch_init(&b, keys, 0), 0);
	assert_null(srv_pg_batch_doc(&b, "notes", "a"));
	assert_null(srv_pg_batch_id(&b, "devA", 1));
	srv_pg_batch_clear(&b);
}

static struct srv_apply
put(const char *id, int64_t version, int64_t dseq, const char *body)
{
	struct srv_apply a;

	memset(&a, 0, sizeof a);
	a.collection = "notes";
	a.id = id;
	a.version = version;
	a.op = body != NULL ? "put" : "delete";
	a.body = body;
	a.body_len = body != NULL ? strlen(body) : 0;
	a.device = "devA";
	a.dseq = dseq;
	a.record = "rec";
	a.record_len = 3;
	a.sig = "sig";
	return a;
}

static void
test_writes_move_and_queue(void **state)
{
	struct srv_pg_batch b;
	struct srv_pg_bdoc *d;
	struct srv_apply a;

	(void)state;
	assert_int_equal(srv_pg_batch_init(&b, keys, NKEYS), 0);
	d = srv_pg_batch_doc(&b, "notes", "b");
	d->base = d->version = 4;	/* read: at version 4 */
	d->deleted = false;

	a = put("a", 1, 1, "{\"x\":1}");
	assert_int_equal(srv_pg_batch_write(&b, &a, 100), 0);
	a = put("b", 5, 2, "{\"y\":1}");
	assert_int_equal(srv_pg_batch_write(&b, &a, 101), 0);
	a = put("b", 6, 3, NULL);
	assert_int_equal(srv_pg_batch_write(&b, &a, 102), 0);

	/* A lost race and an unnamed document change nothing. */
	a = put("b", 6, 4, "{}");
	assert_int_equal(srv_pg_batch_write(&b, &a, 103), -ESTALE);
	a = put("zz", 1, 5, "{}");
	assert_int_equal(srv_pg_batch_write(&b, &a, 104), -ENOENT);

	assert_int_equal(b.nrows, 3);
	assert_string_equal(b.rows[0].a.id, "a");
	assert_int_equal(b.rows[1].a.version, 5);
	assert_int_equal(b.rows[2].received_ms, 102);
	d = srv_pg_batch_doc(&b, "notes", "b");
	assert_int_equal(d->base, 4);
	assert_int_equal(d->version, 6);
	assert_true(d->deleted && d->written);
	assert_null(d->body);
	d = srv_pg_batch_doc(&b, "notes", "a");
	assert_int_equal(d->base, 0);
	assert_int_equal(d->version, 1);
	assert_false(d->deleted);
	assert_memory_equal(d->body, "{\"x\":1}", d->body_len);
	assert_int_equal(srv_pg_batch_id(&b, "devA", 2)->outcome,
	    SRV_OUTCOME_APPLIED);
	assert_int_equal(srv_pg_batch_id(&b, "devA", 3)->version, 6);
	assert_int_equal(srv_pg_batch_id(&b, "devB", 1)->outcome,
	    SRV_OUTCOME_NONE);
	srv_pg_batch_clear(&b);
}

/* A big-endian 32-bit value of buf at off. */
static int32_t
be32at(const char *buf, size_t off)
{
	uint32_t v;

	memcpy(&v, buf + off, 4);
	return (int32_t)be32toh(v);
}

static void
test_array_bytes(void **state)
{
	struct srv_pgarr a;
	uint64_t v;

	(void)state;
	srv_pgarr_init(&a, SRV_PGARR_TEXT);
	srv_pgarr_bytes(&a, "ab", 2);
	srv_pgarr_null(&a);
	srv_pgarr_bytes(&a, "", 0);
	assert_int_equal(srv_pgarr_finish(&a), 0);
	assert_int_equal(a.len, 20 + 4 + 2 + 4 + 4);
	assert_int_equal(be32at(a.buf, 0), 1);		/* ndim */
	assert_int_equal(be32at(a.buf, 4), 1);		/* has NULLs */
	assert_int_equal(be32at(a.buf, 8), 25);		/* text */
	assert_int_equal(be32at(a.buf, 12), 3);		/* elements */
	assert_int_equal(be32at(a.buf, 16), 1);		/* lower bound */
	assert_int_equal(be32at(a.buf, 20), 2);
	assert_memory_equal(a.buf + 24, "ab", 2);
	assert_int_equal(be32at(a.buf, 26), -1);
	assert_int_equal(be32at(a.buf, 30), 0);
	srv_pgarr_free(&a);

	srv_pgarr_init(&a, SRV_PGARR_INT8);
	srv_pgarr_int8(&a, -2);
	assert_int_equal(srv_pgarr_finish(&a), 0);
	assert_int_equal(be32at(a.buf, 4), 0);
	assert_int_equal(be32at(a.buf, 8), 20);
	assert_int_equal(be32at(a.buf, 20), 8);
	memcpy(&v, a.buf + 24, 8);
	assert_int_equal((int64_t)be64toh(v), -2);
	srv_pgarr_free(&a);

	srv_pgarr_init(&a, SRV_PGARR_BOOL);
	srv_pgarr_bool(&a, true);
	srv_pgarr_bool(&a, false);
	assert_int_equal(srv_pgarr_finish(&a), 0);
	assert_int_equal(a.len, 20 + 5 + 5);
	assert_int_equal(a.buf[24], 1);
	assert_int_equal(a.buf[29], 0);
	srv_pgarr_free(&a);

	/* Empty: no dimensions, as array_send writes it. */
	srv_pgarr_init(&a, SRV_PGARR_BYTEA);
	assert_int_equal(srv_pgarr_finish(&a), 0);
	assert_int_equal(a.len, 12);
	assert_int_equal(be32at(a.buf, 0), 0);
	assert_int_equal(be32at(a.buf, 8), 17);
	srv_pgarr_free(&a);
	srv_pgarr_free(&a);		/* twice is fine */
}

static void
test_array_too_big(void **state)
{
	struct srv_pgarr a;

	(void)state;
	srv_pgarr_init(&a, SRV_PGARR_BYTEA);
	/* An element past 1 GB is refused before anything is read of it. */
	srv_pgarr_bytes(&a, "", (size_t)1 << 31);
	srv_pgarr_bytes(&a, "ok", 2);
	assert_int_equal(srv_pgarr_finish(&a), -E2BIG);
	srv_pgarr_free(&a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_found_once),
		cmocka_unit_test(test_writes_move_and_queue),
		cmocka_unit_test(test_array_bytes),
		cmocka_unit_test(test_array_too_big),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
