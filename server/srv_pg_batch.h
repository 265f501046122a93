/*
 * srv_pg_batch: what one push batch on the PostgreSQL backend read ahead
 * and what it wrote since, so that the batch's questions (a document's
 * state, a change id's outcome) are answered from memory instead of a
 * round trip each, and its writes reach the database in a few statements
 * at commit (srv_db_pg.c); and the binary array
 * parameters those statements take.  No libpq here: the caller reads and
 * writes the database, this file keeps the books.
 *
 * A batch knows the documents and change ids its changes named
 * (srv_pg_batch_init, sorted and without duplicates, found by bsearch);
 * the backend fills in what it read (srv_pg_bdoc.base, srv_pg_bid
 * outcome), then each write (srv_pg_batch_write) moves the document's
 * state and the change id's outcome and queues a change-log row.  Every
 * string is the caller's, valid until the batch ends (srv_db.h:
 * srv_db_apply's strings), or the read result's, which the backend keeps
 * until then.  Bounded by the batch: one entry per key, one row per
 * write, at most SRV_PUSH_MAX_CHANGES of each.
 */
#ifndef FERRY_SRV_PG_BATCH_H
#define FERRY_SRV_PG_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "srv_db.h"

/* A document the batch names. */
struct srv_pg_bdoc {
	const char	*collection;
	const char	*id;
	int64_t		 base;		/* version when read; 0: absent */
	int64_t		 version;	/* as of the batch's writes */
	bool		 deleted;
	bool		 written;	/* the batch wrote it */
	bool		 placeholder;	/* the batch made its row (version 0) */
	const char	*body;		/* the last write's; NULL: deleted */
	size_t		 body_len;
};

/* A change id the batch names. */
struct srv_pg_bid {
	const char	*device;
	int64_t		 dseq;
	enum srv_outcome outcome;
	int64_t		 version;	/* applied: the version it made */
	const char	*record;	/* applied: its record */
	size_t		 record_len;
};

/* A change-log row to insert at commit. */
struct srv_pg_brow {
	struct srv_apply a;
	int64_t		 received_ms;
};

struct srv_pg_batch {
	struct srv_pg_bdoc	*docs;
	size_t			 ndocs;
	struct srv_pg_bid	*ids;
	size_t			 nids;
	struct srv_pg_brow	*rows;
	size_t			 nrows;
	size_t			 rows_cap;
};

/*
 * Start b over the n keys (duplicates allowed): every document absent
 * and every change id unseen until the caller says what it read.  0 or
 * -ENOMEM (b is then empty).
 */
int	srv_pg_batch_init(struct srv_pg_batch *b,
	    const struct srv_batch_key *keys, size_t n);
/* Forget everything; b may be reused.  NULL is fine. */
void	srv_pg_batch_clear(struct srv_pg_batch *b);

/* The entry the batch has for a document or a change id, or NULL. */
struct srv_pg_bdoc *srv_pg_batch_doc(const struct srv_pg_batch *b,
	    const char *collection, const char *id);
struct srv_pg_bid *srv_pg_batch_id(const struct srv_pg_batch *b,
	    const char *device, int64_t dseq);

/*
 * Record the write a (its strings valid until the batch ends), made at
 * received_ms: the document moves to a->version, the change id (if the
 * batch named it) is applied, a row is queued.  -ENOENT when the batch
 * did not name the document, -ESTALE when it is not at a->version - 1
 * (nothing recorded), -ENOMEM; else 0.
 */
int	srv_pg_batch_write(struct srv_pg_batch *b, const struct srv_apply *a,
	    int64_t received_ms);

/*
 * A one-dimensional array parameter in PostgreSQL's binary format
 * (array_recv: a header, then each element's length and bytes, NULL as
 * length -1), of element type oid.  Appending never fails: an allocation
 * or size failure is remembered and reported by srv_pgarr_finish.
 */
#define SRV_PGARR_BOOL	16
#define SRV_PGARR_BYTEA	17
#define SRV_PGARR_INT8	20
#define SRV_PGARR_TEXT	25

struct srv_pgarr {
	char		*buf;
	size_t		 len;
	size_t		 cap;
	uint32_t	 oid;
	int32_t		 n;
	bool		 hasnull;
	int		 err;
};

void	srv_pgarr_init(struct srv_pgarr *a, uint32_t oid);
/* Bytes of a text or bytea element (text must be valid UTF-8). */
void	srv_pgarr_bytes(struct srv_pgarr *a, const char *p, size_t len);
/* A NUL-terminated text element. */
void	srv_pgarr_text(struct srv_pgarr *a, const char *s);
void	srv_pgarr_null(struct srv_pgarr *a);
void	srv_pgarr_int8(struct srv_pgarr *a, int64_t v);
void	srv_pgarr_bool(struct srv_pgarr *a, bool v);
/*
 * Write the header: a->buf holds a->len bytes to send.  0, -ENOMEM, or
 * -E2BIG when the array would pass 1 GB (PostgreSQL's limit for one
 * value).
 */
int	srv_pgarr_finish(struct srv_pgarr *a);
void	srv_pgarr_free(struct srv_pgarr *a);

#endif
