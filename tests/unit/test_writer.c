/*
 * test_writer: each op of a batch succeeds or fails alone (issue 8).
 *
 * The bug it guards: the writer ran every op of a batch in one
 * transaction and any op's failure rolled back the whole batch, so a sync
 * operation that failed also failed the unrelated app Puts that happened
 * to share its batch.  Here a batch holds Put-like ops and one op that
 * fails after it has written: its writes and watch events must be gone,
 * only it is told of the failure, and the others are committed (read back
 * on the reader connection), keep their events, and leave the change log
 * and the counters without a trace of the failed op.  The same holds when
 * the Puts run without savepoints, as the app's writes do; such an op that
 * fails before writing fails alone, and one that fails after writing fails
 * its batch rather than leave half of itself committed.
 *
 * Real pieces only: a replica on a temporary SQLite file (lib/store), the
 * writer thread, and a libevent loop that waits for the batch's answer.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "store.h"
#include "watch.h"
#include "writer.h"

#define MAX_OPS		8
#define WAIT_SECONDS	30

/* What one op does on the writer thread. */
struct put_arg {
	const char	*id;
	const char	*body;
	bool		 fail;		/* fail after writing */
	bool		 fail_first;	/* fail before writing anything */
	bool		 bare;		/* no_savepoint, as the app's writes */
	bool		 alone;		/* alone, as the sync steps */
};

/* What the batch's done callback saw, copied out before the batch goes. */
struct outcome {
	bool		 done;
	size_t		 completed;	/* op completions called */
	int		 batch_err;
	size_t		 n;
	int		 err[MAX_OPS];
	char		 reason[MAX_OPS][64];
	size_t		 nev;
	char		 ev_id[MAX_OPS][16];
	int64_t		 ev_seq[MAX_OPS];
	int64_t		 head;
};

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct store		*st;
	struct event_base	*base;
	struct writer		*w;
	struct outcome		 out;
	struct put_arg		 args[MAX_OPS];
};

#define OP_FAIL		0x1	/* fail after writing */
#define OP_FAIL_FIRST	0x2	/* fail before writing anything */
#define OP_BARE		0x4	/* no_savepoint, as the app's writes */
#define OP_ALONE	0x8	/* alone, as the sync steps */

static void
set_arg(struct fixture *f, size_t i, const char *id, const char *body,
    int flags)
{
	f->args[i].id = id;
	f->args[i].body = body;
	f->args[i].fail = (flags & OP_FAIL) != 0;
	f->args[i].fail_first = (flags & OP_FAIL_FIRST) != 0;
	f->args[i].bare = (flags & OP_BARE) != 0;
	f->args[i].alone = (flags & OP_ALONE) != 0;
}

static void
put_run(struct writer_batch *b, struct writer_op *op)
{
	struct put_arg *a = op->arg;
	struct store_doc cur;
	int64_t seq, rev;
	int r;

	if (a->fail_first) {
		writer_op_fail(op, -EINVAL, "refused before writing");
		return;
	}
	memset(&cur, 0, sizeof cur);
	r = store_doc_get(b->st, STORE_WRITER, "notes", a->id, &cur);
	if (r < 0 && r != -ENOENT) {
		writer_op_fail(op, r, store_errmsg(b->st));
		return;
	}
	r = store_write_local(b->st, &cur, "notes", a->id, a->body,
	    STORE_ORIGIN_LOCAL, 1000, &seq, &rev);
	store_doc_clear(&cur);
	if (r < 0) {
		writer_op_fail(op, r, store_errmsg(b->st));
		return;
	}
	if (watch_events_add(&b->events, seq, "notes", a->id, rev, 0, false,
	    STORE_ORIGIN_LOCAL, a->body) < 0) {
		writer_op_fail(op, -ENOMEM, "out of memory");
		return;
	}
	/* Like a sync step whose last statement fails: it has written. */
	if (a->fail)
		writer_op_fail(op, -EIO, "failed after writing");
}

/* Each op's own completion: what it was told, by its own callback. */
static void
op_done(struct writer_op *op, int err, void *arg)
{
	struct fixture *f = arg;
	size_t i = (size_t)((struct put_arg *)op->arg - f->args);

	assert_true(i < MAX_OPS);
	assert_false(f->out.done);	/* before the batch hook */
	f->out.completed++;
	f->out.err[i] = err;
	snprintf(f->out.reason[i], sizeof f->out.reason[i], "%s",
	    op->reason != NULL ? op->reason : "");
}

/* The batch hook: runs after every op's completion. */
static void
batch_done(struct writer_batch *b, void *arg)
{
	struct outcome *o = arg;
	size_t i;

	o->done = true;
	o->batch_err = b->err;
	o->n = b->n;
	o->head = b->head;
	assert_int_equal(o->completed, b->n);
	o->nev = b->events.n;
	for (i = 0; i < b->events.n && i < MAX_OPS; i++) {
		snprintf(o->ev_id[i], sizeof o->ev_id[i], "%s",
		    b->events.v[i].id);
		o->ev_seq[i] = b->events.v[i].seq;
	}
}

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ferry-test-writer-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/replica.db", f->dir);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
	assert_int_equal(evthread_use_pthreads(), 0);
	assert_non_null(f->base = event_base_new());
	assert_int_equal(writer_new(f->base, f->st, batch_done, &f->out,
	    &f->w), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	writer_free(f->w);
	event_base_free(f->base);
	store_close(f->st);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Queue the ops (all in one batch: one loop turn) and wait for it. */
static void
run_batch(struct fixture *f, size_t n)
{
	struct timeval tv = { WAIT_SECONDS, 0 };
	struct writer_op *op;
	struct event *timer;
	bool timed_out = false;
	size_t i;

	memset(&f->out, 0, sizeof f->out);
	for (i = 0; i < n; i++) {
		assert_non_null(op = writer_add(f->w, put_run, &f->args[i],
		    op_done, f, NULL));
		op->no_savepoint = f->args[i].bare;
		op->alone = f->args[i].alone;
	}
	assert_non_null(timer = evtimer_new(f->base, timeout_cb, &timed_out));
	evtimer_add(timer, &tv);
	while (!f->out.done && !timed_out)
		event_base_loop(f->base, EVLOOP_ONCE);
	event_free(timer);
	assert_true(f->out.done);
	assert_int_equal(f->out.n, n);
}

static void
assert_body(struct fixture *f, const char *id, const char *body)
{
	struct store_doc d;
	int r;

	r = store_doc_get(f->st, STORE_READER, "notes", id, &d);
	if (body == NULL) {
		assert_int_equal(r, -ENOENT);
		return;
	}
	assert_int_equal(r, 0);
	assert_string_equal(d.body, body);
	store_doc_clear(&d);
}

static int
count_change(const struct store_change *c, void *arg)
{
	(*(int *)arg)++;
	return 0;
}

static void
test_failed_op_alone(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;
	int changes = 0;

	set_arg(f, 0, "a", "{\"a\":1}", 0);
	set_arg(f, 1, "bad", "{\"bad\":1}", OP_FAIL);
	set_arg(f, 2, "c", "{\"c\":1}", 0);
	run_batch(f, 3);

	/* Only the failing op is told, with its own reason. */
	assert_int_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], 0);
	assert_int_equal(f->out.err[1], -EIO);
	assert_string_equal(f->out.reason[1], "failed after writing");
	assert_int_equal(f->out.err[2], 0);

	/* Its event is dropped, the others' kept, in order, without a gap. */
	assert_int_equal(f->out.nev, 2);
	assert_string_equal(f->out.ev_id[0], "a");
	assert_string_equal(f->out.ev_id[1], "c");
	assert_int_equal(f->out.ev_seq[1], f->out.ev_seq[0] + 1);
	assert_int_equal(f->out.head, f->out.ev_seq[1]);

	/* Committed: the reader sees the others; the failed op's write is
	 * gone, from docs, the change log and the counters. */
	assert_body(f, "a", "{\"a\":1}");
	assert_body(f, "c", "{\"c\":1}");
	assert_body(f, "bad", NULL);
	assert_true(store_changes_since(f->st, 0, 100, count_change,
	    &changes) >= 0);
	assert_int_equal(changes, 2);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 2);
	assert_int_equal(n.pending, 2);
	assert_int_equal(n.head_seq, f->out.ev_seq[1]);
}

/* The first and the last op fail; the one between commits. */
static void
test_failures_at_both_ends(void **state)
{
	struct fixture *f = *state;

	set_arg(f, 0, "x", "{\"x\":1}", OP_FAIL_FIRST);
	set_arg(f, 1, "y", "{\"y\":1}", 0);
	set_arg(f, 2, "z", "{\"z\":1}", OP_FAIL);
	run_batch(f, 3);
	assert_int_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], -EINVAL);
	assert_string_equal(f->out.reason[0], "refused before writing");
	assert_int_equal(f->out.err[1], 0);
	assert_int_equal(f->out.err[2], -EIO);
	assert_int_equal(f->out.nev, 1);
	assert_string_equal(f->out.ev_id[0], "y");
	assert_body(f, "x", NULL);
	assert_body(f, "y", "{\"y\":1}");
	assert_body(f, "z", NULL);

	/* The next batch writes on top, unaffected. */
	set_arg(f, 0, "y", "{\"y\":2}", 0);
	set_arg(f, 1, "z", "{\"z\":2}", 0);
	run_batch(f, 2);
	assert_int_equal(f->out.err[0], 0);
	assert_int_equal(f->out.err[1], 0);
	assert_body(f, "y", "{\"y\":2}");
	assert_body(f, "z", "{\"z\":2}");
}

/*
 * The case: app Puts run without savepoints (no_savepoint), a sync
 * step beside them with one, and the sync step fails after writing.  The
 * Puts commit; only the sync step is undone and told.
 */
static void
test_sync_failure_spares_puts(void **state)
{
	struct fixture *f = *state;

	set_arg(f, 0, "a1", "{\"a\":1}", OP_BARE);
	set_arg(f, 1, "sy", "{\"s\":1}", OP_FAIL);
	set_arg(f, 2, "a2", "{\"a\":2}", OP_BARE);
	run_batch(f, 3);
	assert_int_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], 0);
	assert_int_equal(f->out.err[1], -EIO);
	assert_int_equal(f->out.err[2], 0);
	assert_int_equal(f->out.nev, 2);
	assert_string_equal(f->out.ev_id[0], "a1");
	assert_string_equal(f->out.ev_id[1], "a2");
	assert_body(f, "a1", "{\"a\":1}");
	assert_body(f, "a2", "{\"a\":2}");
	assert_body(f, "sy", NULL);
}

/* An op without a savepoint that fails before writing fails alone. */
static void
test_bare_fails_before_writing(void **state)
{
	struct fixture *f = *state;

	set_arg(f, 0, "k", "{\"k\":1}", OP_BARE);
	set_arg(f, 1, "r", "{\"r\":1}", OP_FAIL_FIRST | OP_BARE);
	set_arg(f, 2, "l", "{\"l\":1}", OP_BARE);
	run_batch(f, 3);
	assert_int_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], 0);
	assert_int_equal(f->out.err[1], -EINVAL);
	assert_string_equal(f->out.reason[1], "refused before writing");
	assert_int_equal(f->out.err[2], 0);
	assert_int_equal(f->out.nev, 2);
	assert_body(f, "k", "{\"k\":1}");
	assert_body(f, "l", "{\"l\":1}");
	assert_body(f, "r", NULL);
}

/*
 * An op without a savepoint that fails after writing cannot be undone
 * alone: the batch fails, every op is told, nothing is committed (never a
 * half-written op made durable).
 */
static void
test_bare_fails_after_writing(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;

	set_arg(f, 0, "u", "{\"u\":1}", OP_BARE);
	set_arg(f, 1, "v", "{\"v\":1}", OP_FAIL | OP_BARE);
	set_arg(f, 2, "w", "{\"w\":1}", 0);
	run_batch(f, 2);
	assert_int_not_equal(f->out.batch_err, 0);
	assert_int_not_equal(f->out.err[0], 0);
	assert_int_equal(f->out.err[1], -EIO);
	assert_string_equal(f->out.reason[1], "failed after writing");
	assert_body(f, "u", NULL);
	assert_body(f, "v", NULL);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 0);

	/* The next batch is unaffected. */
	f->args[0] = f->args[2];
	run_batch(f, 1);
	assert_int_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], 0);
	assert_body(f, "w", "{\"w\":1}");
}

/*
 * Sync steps run alone (a transaction of their own, no savepoint: inside
 * one, each statement's journal truncation walked everything the op wrote
 * before it, 18% of ferryd's CPU in a push drain).  One that fails after
 * writing is undone alone, between Puts that commit; one that succeeds
 * commits even when a transaction after it fails, and keeps its events.
 */
static void
test_alone_ops(void **state)
{
	struct fixture *f = *state;

	set_arg(f, 0, "a1", "{\"a\":1}", OP_BARE);
	set_arg(f, 1, "s1", "{\"s\":1}", OP_ALONE | OP_FAIL);
	set_arg(f, 2, "a2", "{\"a\":2}", OP_BARE);
	set_arg(f, 3, "s2", "{\"s\":2}", OP_ALONE);
	set_arg(f, 4, "a3", "{\"a\":3}", 0);
	run_batch(f, 5);
	assert_int_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], 0);
	assert_int_equal(f->out.err[1], -EIO);
	assert_int_equal(f->out.err[2], 0);
	assert_int_equal(f->out.err[3], 0);
	assert_int_equal(f->out.err[4], 0);
	assert_int_equal(f->out.nev, 4);
	assert_string_equal(f->out.ev_id[0], "a1");
	assert_string_equal(f->out.ev_id[1], "a2");
	assert_string_equal(f->out.ev_id[2], "s2");
	assert_string_equal(f->out.ev_id[3], "a3");
	assert_body(f, "s1", NULL);
	assert_body(f, "s2", "{\"s\":2}");
	assert_body(f, "a3", "{\"a\":3}");

	/* A bare op failing after writing fails its transaction (the ops
	 * after the alone one), not what committed before it. */
	set_arg(f, 0, "b1", "{\"b\":1}", OP_BARE);
	set_arg(f, 1, "t1", "{\"t\":1}", OP_ALONE);
	set_arg(f, 2, "b2", "{\"b\":2}", OP_BARE);
	set_arg(f, 3, "b3", "{\"b\":3}", OP_BARE | OP_FAIL);
	run_batch(f, 4);
	assert_int_not_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], 0);
	assert_int_equal(f->out.err[1], 0);
	assert_int_not_equal(f->out.err[2], 0);
	assert_int_equal(f->out.err[3], -EIO);
	assert_int_equal(f->out.nev, 2);
	assert_string_equal(f->out.ev_id[0], "b1");
	assert_string_equal(f->out.ev_id[1], "t1");
	assert_body(f, "b1", "{\"b\":1}");
	assert_body(f, "t1", "{\"t\":1}");
	assert_body(f, "b2", NULL);
	assert_body(f, "b3", NULL);
}

/* A batch whose every op fails commits nothing and tells each. */
static void
test_all_fail(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;

	set_arg(f, 0, "p", "{}", OP_FAIL);
	set_arg(f, 1, "q", "{}", OP_FAIL);
	run_batch(f, 2);
	assert_int_equal(f->out.batch_err, 0);
	assert_int_equal(f->out.err[0], -EIO);
	assert_int_equal(f->out.err[1], -EIO);
	assert_int_equal(f->out.nev, 0);
	assert_body(f, "p", NULL);
	assert_body(f, "q", NULL);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 0);
	assert_int_equal(n.head_seq, 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_failed_op_alone, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_failures_at_both_ends,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_alone_ops, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_all_fail, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sync_failure_spares_puts,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_bare_fails_before_writing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bare_fails_after_writing,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
