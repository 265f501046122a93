/*
 * srv_pg_batch: a PostgreSQL push batch's books and its array parameters;
 * see srv_pg_batch.h.
 */
#include "autoconfig.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "srv_pg_batch.h"

#define SRV_PGARR_HEADER	20	/* ndim, hasnull, oid, size, lbound */
#define SRV_PGARR_MAX		(1u << 30)

static int
srv_pg_bdoc_cmp(const void *x, const void *y)
{
	const struct srv_pg_bdoc *a = x, *b = y;
	int c;

	if ((c = strcmp(a->collection, b->collection)) != 0)
		return c;
	return strcmp(a->id, b->id);
}

static int
srv_pg_bid_cmp(const void *x, const void *y)
{
	const struct srv_pg_bid *a = x, *b = y;
	int c;

	if ((c = strcmp(a->device, b->device)) != 0)
		return c;
	return a->dseq < b->dseq ? -1 : a->dseq > b->dseq;
}

/* Sort v (n of size) and drop repeats; how many are left. */
static size_t
srv_pg_batch_unique(void *v, size_t n, size_t size,
    int (*cmp)(const void *, const void *))
{
	char *p = v;
	size_t i, k;

	if (n == 0)
		return 0;
	qsort(p, n, size, cmp);
	for (i = 1, k = 1; i < n; i++) {
		if (cmp(p + (k - 1) * size, p + i * size) == 0)
			continue;
		if (k != i)
			memcpy(p + k * size, p + i * size, size);
		k++;
	}
	return k;
}

int
srv_pg_batch_init(struct srv_pg_batch *b, const struct srv_batch_key *keys,
    size_t n)
{
	size_t i;

	memset(b, 0, sizeof *b);
	if (n == 0)
		return 0;
	if ((b->docs = calloc(n, sizeof *b->docs)) == NULL ||
	    (b->ids = calloc(n, sizeof *b->ids)) == NULL) {
		srv_pg_batch_clear(b);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		b->docs[i].collection = keys[i].collection;
		b->docs[i].id = keys[i].id;
		b->docs[i].deleted = true;	/* absent, until read */
		b->ids[i].device = keys[i].device;
		b->ids[i].dseq = keys[i].dseq;
	}
	b->ndocs = srv_pg_batch_unique(b->docs, n, sizeof *b->docs,
	    srv_pg_bdoc_cmp);
	b->nids = srv_pg_batch_unique(b->ids, n, sizeof *b->ids,
	    srv_pg_bid_cmp);
	return 0;
}

void
srv_pg_batch_clear(struct srv_pg_batch *b)
{
	if (b == NULL)
		return;
	free(b->docs);
	free(b->ids);
	free(b->rows);
	memset(b, 0, sizeof *b);
}

struct srv_pg_bdoc *
srv_pg_batch_doc(const struct srv_pg_batch *b, const char *collection,
    const char *id)
{
	struct srv_pg_bdoc k;

	if (b->ndocs == 0)
		return NULL;
	k.collection = collection;
	k.id = id;
	return bsearch(&k, b->docs, b->ndocs, sizeof *b->docs,
	    srv_pg_bdoc_cmp);
}

struct srv_pg_bid *
srv_pg_batch_id(const struct srv_pg_batch *b, const char *device,
    int64_t dseq)
{
	struct srv_pg_bid k;

	if (b->nids == 0)
		return NULL;
	k.device = device;
	k.dseq = dseq;
	return bsearch(&k, b->ids, b->nids, sizeof *b->ids, srv_pg_bid_cmp);
}

int
srv_pg_batch_write(struct srv_pg_batch *b, const struct srv_apply *a,
    int64_t received_ms)
{
	struct srv_pg_bdoc *d;
	struct srv_pg_bid *c;
	struct srv_pg_brow *rows;
	size_t cap;

	if ((d = srv_pg_batch_doc(b, a->collection, a->id)) == NULL)
		return -ENOENT;
	if (d->version != a->version - 1)
		return -ESTALE;
	if (b->nrows == b->rows_cap) {
		cap = b->rows_cap == 0 ? 64 : b->rows_cap * 2;
		if ((rows = reallocarray(b->rows, cap, sizeof *rows)) == NULL)
			return -ENOMEM;
		b->rows = rows;
		b->rows_cap = cap;
	}
	b->rows[b->nrows].a = *a;
	b->rows[b->nrows].received_ms = received_ms;
	b->nrows++;
	d->version = a->version;
	d->deleted = a->body == NULL;
	d->body = a->body;
	d->body_len = a->body_len;
	d->written = true;
	if ((c = srv_pg_batch_id(b, a->device, a->dseq)) != NULL) {
		c->outcome = SRV_OUTCOME_APPLIED;
		c->version = a->version;
		c->record = a->record;
		c->record_len = a->record_len;
	}
	return 0;
}

/* --- binary array parameters --- */

static void
srv_pgarr_put(struct srv_pgarr *a, const void *p, size_t len)
{
	size_t cap;
	char *buf;

	if (a->err != 0)
		return;
	if (len > SRV_PGARR_MAX - a->len) {
		a->err = -E2BIG;
		return;
	}
	if (a->len + len > a->cap) {
		cap = a->cap == 0 ? 4096 : a->cap;
		while (cap < a->len + len)
			cap *= 2;
		if ((buf = realloc(a->buf, cap)) == NULL) {
			a->err = -ENOMEM;
			return;
		}
		a->buf = buf;
		a->cap = cap;
	}
	memcpy(a->buf + a->len, p, len);
	a->len += len;
}

static void
srv_pgarr_put32(struct srv_pgarr *a, int32_t v)
{
	uint32_t be = htobe32((uint32_t)v);

	srv_pgarr_put(a, &be, sizeof be);
}

void
srv_pgarr_init(struct srv_pgarr *a, uint32_t oid)
{
	static const char header[SRV_PGARR_HEADER];

	memset(a, 0, sizeof *a);
	a->oid = oid;
	srv_pgarr_put(a, header, sizeof header);	/* filled by finish */
}

void
srv_pgarr_bytes(struct srv_pgarr *a, const char *p, size_t len)
{
	if (len > SRV_PGARR_MAX) {
		a->err = a->err != 0 ? a->err : -E2BIG;
		return;
	}
	srv_pgarr_put32(a, (int32_t)len);
	srv_pgarr_put(a, p, len);
	a->n++;
}

void
srv_pgarr_text(struct srv_pgarr *a, const char *s)
{
	srv_pgarr_bytes(a, s, strlen(s));
}

void
srv_pgarr_null(struct srv_pgarr *a)
{
	srv_pgarr_put32(a, -1);
	a->hasnull = true;
	a->n++;
}

void
srv_pgarr_int8(struct srv_pgarr *a, int64_t v)
{
	uint64_t be = htobe64((uint64_t)v);

	srv_pgarr_put32(a, 8);
	srv_pgarr_put(a, &be, sizeof be);
	a->n++;
}

void
srv_pgarr_bool(struct srv_pgarr *a, bool v)
{
	char c = v ? 1 : 0;

	srv_pgarr_put32(a, 1);
	srv_pgarr_put(a, &c, 1);
	a->n++;
}

int
srv_pgarr_finish(struct srv_pgarr *a)
{
	uint32_t h[5];

	if (a->err != 0)
		return a->err;
	/* An empty array has no dimensions (what array_send writes). */
	h[0] = htobe32(a->n > 0 ? 1 : 0);
	h[1] = htobe32(a->hasnull ? 1 : 0);
	h[2] = htobe32(a->oid);
	h[3] = htobe32((uint32_t)a->n);
	h[4] = htobe32(1);
	memcpy(a->buf, h, a->n > 0 ? sizeof h : 3 * sizeof h[0]);
	if (a->n == 0)
		a->len = 3 * sizeof h[0];
	return 0;
}

void
srv_pgarr_free(struct srv_pgarr *a)
{
	if (a == NULL)
		return;
	free(a->buf);
	memset(a, 0, sizeof *a);
}
