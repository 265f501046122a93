/*
 * srv_db_pg: the PostgreSQL backend of srv_db, for many ferry-server
 * instances on one database (issue 10); see srv_db.h for the contract and
 * srv_db_impl.h for the seam.
 *
 * How the promises of srv_db.h hold across instances:
 * - exactly once: a push batch first locks its device's row (an upsert
 *   that returns max_seq), so one device's batches run one after another
 *   whichever instance has them, and a retry that lands on another
 *   instance waits for the first transaction, then finds the change id
 *   applied ("duplicate");
 * - a batch in a handful of round trips, whatever its size: it holds
 *   and reads its documents (srv_pg_batch_read: one statement makes a
 *   placeholder row, version 0, for each that does not exist, the next
 *   locks them all FOR UPDATE and reads their states) and its change
 *   ids' outcomes (one more), is judged from what it read and wrote
 *   (srv_pg_batch.h), and writes at commit: one UPDATE of its documents,
 *   one INSERT of every log row with its seq, from binary array
 *   parameters;
 * - never overwrite: every document a batch names is locked from its
 *   read to COMMIT, a new one through its placeholder, so a change is
 *   judged against the version it will replace; two batches creating
 *   the same document queue on the placeholder's insertion, and the
 *   second reads the first's version and answers "conflict".  Rows are
 *   taken in one order (placeholders, then locks, each sorted the same
 *   way), so batches of different devices wait for each other instead
 *   of deadlocking.  A version-0 row is no document (srv_doc.version 0):
 *   one the batch made and did not write is deleted at commit;
 * - a feed that never skips: log rows get their seqs at the end of the
 *   transaction from the single head row (UPDATE head SET seq = seq + n
 *   RETURNING seq, in the statement that inserts them), whose row lock is
 *   held to COMMIT: seq order is commit order, without gaps, so a reader
 *   at since=N never misses a row that commits later with a smaller
 *   number;
 * - wake-ups: after COMMIT (not inside the transaction) the new head is
 *   sent with pg_notify; the loop's handle LISTENs on a second,
 *   nonblocking connection registered in the event loop, and re-reads the
 *   head once a second in case a notification was lost;
 * - allowed keys: the table allowed_keys; `allow` notifies ferry_keys and
 *   every instance rereads its keys (and does so whenever its listener
 *   reconnects, in case it missed one); revoked_keys likewise, `revoke`
 *   and `unrevoke` notifying the same channel, so a revocation is seen by
 *   every instance as soon as the notification arrives; key_rotations
 *   too (a rotation is written by the instance that took the statement,
 *   on a worker, and notified the same way);
 * - last seen: each instance keeps it in memory and writes what moved
 *   every few seconds on a worker (key_info, only ever raised).
 *
 * Handles: the one srv_db_pg_open returns is the loop's (reads, and the
 * listener); each worker thread gets its own connection on first use
 * (srv_db_worker, a thread-specific handle freed when the thread exits).
 * The committed head this instance knows is shared by all of them through
 * an atomic.  A connection that broke is reset before its next use; while
 * the database is away calls fail with -ENOTCONN (the caller answers 503
 * with Retry-After) and nothing half-done is left: a batch whose COMMIT
 * did not return is rolled back by the server.
 *
 * Requests are read on the workers' handles too (srv_http), and the
 * allowed keys are reread on one (ferry-server's main, on SIGHUP and on a
 * ferry_keys notification); the loop's handle is read synchronously only
 * at start (the keys too) and while stopping: short statements, but
 * blocking round trips.
 */
#include "autoconfig.h"

#include <endian.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <jansson.h>
#include <libpq-fe.h>

#include "keys.h"
#include "srv_db.h"
#include "srv_db_impl.h"
#include "srv_pg_batch.h"
#include "util.h"

#define SRV_PG_CHANNEL		"ferry_head"
#define SRV_PG_KEYS_CHANNEL	"ferry_keys"
#define SRV_PG_PRESENCE_CHANNEL	"ferry_presence"
#define SRV_PG_CONNECT_TIMEOUT	"5"	/* seconds */
#define SRV_PG_MIGRATE_LOCK	"7366657272790001"	/* advisory lock */
#define SRV_PG_STMT_MAX		48	/* statements prepared per connection */

/* What every handle of one database shares; the loop's handle owns it. */
struct srv_pg_shared {
	char		*conninfo;
	int64_t		 head;		/* atomic: highest committed seen */
	pthread_key_t	 worker_key;
	bool		 key_made;
};

struct srv_pg {
	struct srv_db		 base;		/* first: the seam's handle */
	struct srv_pg_shared	*sh;
	bool			 owner;		/* the loop's handle */
	PGconn			*conn;
	bool			 in_batch;
	int64_t			 batch_n;	/* changes inserted */
	/* The batch's questions are answered from b, its writes reach
	 * the database at commit. */
	struct srv_pg_batch	 b;
	PGresult		*ids_read;	/* b's applied records */
	char			 errmsg[256];
	/* Statements prepared on conn, by their text's address (every
	 * statement here is a literal): "f<index>". */
	const char		*prepared[SRV_PG_STMT_MAX];
	int			 nprepared;

	/* The loop's handle only: the listener. */
	struct event_base	*evbase;
	PGconn			*listen;
	struct event		*listen_ev;
	struct event		*tick;
	bool			 listen_up;	/* connected, LISTEN sent */
	bool			 busy;		/* a query is in flight */
	bool			 relisten;	/* the listener was dropped */
	srv_db_wake_cb		 wake;
	void			*wake_arg;
	srv_db_wake_cb		 keys_changed;
	void			*keys_arg;
	srv_db_presence_cb	 presence_changed;
	void			*presence_arg;
};

static const struct srv_db_ops srv_pg_ops;

/*
 * Schema migrations, applied in order under an advisory lock (two
 * instances starting at once); migration i brings schema_version from i
 * to i + 1.  Never edit a released entry: add a new one.
 */
static const char *srv_pg_migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE docs ("
	"  collection text NOT NULL,"
	"  id text NOT NULL,"
	"  version bigint NOT NULL,"
	"  deleted boolean NOT NULL,"
	"  body text,"
	"  PRIMARY KEY (collection, id));"
	"CREATE TABLE changes ("
	"  rid bigserial PRIMARY KEY,"
	"  seq bigint UNIQUE,"
	"  collection text NOT NULL,"
	"  id text NOT NULL,"
	"  version bigint NOT NULL,"
	"  op text NOT NULL,"
	"  device text NOT NULL,"
	"  dseq bigint NOT NULL,"
	"  ts bigint NOT NULL,"
	"  received_ms bigint NOT NULL,"
	"  record bytea NOT NULL,"
	"  sig text NOT NULL);"
	"CREATE UNIQUE INDEX changes_doc ON changes (collection, id, version);"
	"CREATE UNIQUE INDEX changes_id ON changes (device, dseq);"
	"CREATE INDEX changes_unsequenced ON changes (rid) WHERE seq IS NULL;"
	"CREATE TABLE devices ("
	"  device text PRIMARY KEY,"
	"  max_seq bigint NOT NULL);"
	"CREATE TABLE conflicts ("
	"  device text NOT NULL,"
	"  dseq bigint NOT NULL,"
	"  PRIMARY KEY (device, dseq));"
	"CREATE TABLE head ("
	"  one boolean PRIMARY KEY DEFAULT true CHECK (one),"
	"  seq bigint NOT NULL);"
	"INSERT INTO head (seq) VALUES (0);",
	/* 1 -> 2: the allowed keys, shared by every instance. */
	"CREATE TABLE allowed_keys ("
	"  key text PRIMARY KEY,"
	"  name text,"
	"  added_ms bigint NOT NULL);",
	/* 2 -> 3: revoked keys, and when keys were added and last seen. */
	"CREATE TABLE revoked_keys ("
	"  key text PRIMARY KEY,"
	"  revoked_ms bigint NOT NULL,"
	"  reason text);"
	"CREATE TABLE key_info ("
	"  key text PRIMARY KEY,"
	"  added_ms bigint,"
	"  seen_ms bigint);",
	/* 3 -> 4: key rotations (retired keys and their successors). */
	"CREATE TABLE key_rotations ("
	"  rid bigserial,"
	"  old_key text PRIMARY KEY,"
	"  new_key text NOT NULL UNIQUE,"
	"  last_seq bigint NOT NULL,"
	"  rotated_ms bigint NOT NULL,"
	"  statement text NOT NULL,"
	"  sig_old text NOT NULL,"
	"  sig_new text NOT NULL);",
	/* 4 -> 5: per-collection grants (srv_grants); no row: everything. */
	"CREATE TABLE key_grants ("
	"  key text PRIMARY KEY,"
	"  read text NOT NULL,"
	"  write text NOT NULL);",
};

#define SRV_PG_NMIGRATIONS \
	(sizeof srv_pg_migrations / sizeof srv_pg_migrations[0])

#define SRV_PG_ROW_COLS \
	"seq, collection, id, version, op, device, dseq, ts, received_ms," \
	" record, sig"

static void	srv_pg_close(struct srv_db *);
static void	srv_pg_rollback(struct srv_db *);

static int64_t
srv_pg_head_get(const struct srv_pg_shared *sh)
{
	return __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE);
}

/* Raise the shared head to at least seq; true if it moved. */
static bool
srv_pg_head_raise(struct srv_pg_shared *sh, int64_t seq)
{
	int64_t cur = __atomic_load_n(&sh->head, __ATOMIC_ACQUIRE);

	while (seq > cur) {
		if (__atomic_compare_exchange_n(&sh->head, &cur, seq, false,
		    __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
			return true;
	}
	return false;
}

/* Remember the connection's message; the -errno for what happened. */
static int
srv_pg_fail(struct srv_pg *db, const PGresult *res)
{
	const char *state, *msg;

	msg = res != NULL ? PQresultErrorMessage(res) : "";
	if (msg == NULL || msg[0] == '\0')
		msg = db->conn != NULL ? PQerrorMessage(db->conn) :
		    "no connection";
	snprintf(db->errmsg, sizeof db->errmsg, "%s", msg);
	db->errmsg[strcspn(db->errmsg, "\n")] = '\0';
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return -ENOTCONN;
	state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	if (state == NULL)
		return -EIO;
	if (strcmp(state, "40001") == 0 || strcmp(state, "40P01") == 0)
		return -EAGAIN;
	if (strcmp(state, "23505") == 0)
		return -EEXIST;
	if (strncmp(state, "08", 2) == 0 || strncmp(state, "57P", 3) == 0)
		return -ENOTCONN;
	return -EIO;
}

/* Reconnect a connection that broke; its prepared statements are gone. */
static void
srv_pg_reset(struct srv_pg *db)
{
	PQreset(db->conn);
	db->nprepared = 0;
}

/*
 * Execute sql (a literal: it is prepared once per connection, by its
 * address, and executed by name from then on).  libpq's result, or NULL.
 */
static PGresult *
srv_pg_exec(struct srv_pg *db, const char *sql, int n,
    const char *const *vals, const int *lens, const int *fmts, bool binary)
{
	PGresult *res;
	char name[16];
	int i;

	for (i = 0; i < db->nprepared && db->prepared[i] != sql; i++)
		continue;
	if (i == SRV_PG_STMT_MAX)
		return PQexecParams(db->conn, sql, n, NULL, vals, lens, fmts,
		    binary ? 1 : 0);
	snprintf(name, sizeof name, "f%d", i);
	if (i == db->nprepared) {
		res = PQprepare(db->conn, name, sql, n, NULL);
		if (PQresultStatus(res) != PGRES_COMMAND_OK)
			return res;
		PQclear(res);
		db->prepared[db->nprepared++] = sql;
	}
	return PQexecPrepared(db->conn, name, n, vals, lens, fmts,
	    binary ? 1 : 0);
}

/*
 * Run sql with n parameters (text, or binary where lens[i] > 0) and give
 * back its result when it succeeded; rows come in binary when binary.
 * NULL with *ret_err set otherwise.
 */
static PGresult *
srv_pg_run(struct srv_pg *db, const char *sql, int n,
    const char *const *vals, const int *lens, bool binary, int *ret_err)
{
	int fmts[16];
	PGresult *res;
	ExecStatusType st;
	int i;

	for (i = 0; i < n && i < 16; i++)
		fmts[i] = lens != NULL && lens[i] > 0 ? 1 : 0;
	res = srv_pg_exec(db, sql, n, vals, lens, fmts, binary);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
	    !db->in_batch && PQstatus(db->conn) == CONNECTION_BAD) {
		/*
		 * The connection died since its last use (the database
		 * restarted): outside a batch nothing is lost by running
		 * the statement again on a new one, once.
		 */
		PQclear(res);
		srv_pg_reset(db);
		res = srv_pg_exec(db, sql, n, vals, lens, fmts, binary);
		st = PQresultStatus(res);
	}
	if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
		return res;
	*ret_err = srv_pg_fail(db, res);
	PQclear(res);
	return NULL;
}

/* A statement whose result is not needed.  0 or -errno. */
static int
srv_pg_do(struct srv_pg *db, const char *sql, int n, const char *const *vals,
    const int *lens)
{
	PGresult *res;
	int r = 0;

	if ((res = srv_pg_run(db, sql, n, vals, lens, false, &r)) == NULL)
		return r;
	PQclear(res);
	return 0;
}

/* A binary int8 column. */
static int64_t
srv_pg_int8(const PGresult *res, int row, int col)
{
	uint64_t v;

	if (PQgetlength(res, row, col) != 8)
		return 0;
	memcpy(&v, PQgetvalue(res, row, col), 8);
	return (int64_t)be64toh(v);
}

/* A text int8 column (text-format results). */
static int64_t
srv_pg_text_int(const PGresult *res, int row, int col)
{
	return strtoll(PQgetvalue(res, row, col), NULL, 10);
}

/*
 * Connect to conninfo, blocking up to the connect timeout, or (nonblock)
 * start connecting, for PQconnectPoll.  Later values win: the URL may set
 * its own timeout and application name.
 */
static PGconn *
srv_pg_connect(const char *conninfo, bool nonblock)
{
	static const char *const keys[] = {
		"connect_timeout", "application_name", "dbname", NULL,
	};
	const char *vals[] = {
		SRV_PG_CONNECT_TIMEOUT, "ferry-server", conninfo, NULL,
	};

	if (nonblock)
		return PQconnectStartParams(keys, vals, 1);
	return PQconnectdbParams(keys, vals, 1);
}

/*
 * Make sure the handle has a working connection: reset one that broke
 * (the database restarted or failed over).  Blocks up to the connect
 * timeout.  0 or -ENOTCONN.
 */
static int
srv_pg_ready(struct srv_pg *db)
{
	if (db->conn == NULL)
		db->conn = srv_pg_connect(db->sh->conninfo, false);
	else if (PQstatus(db->conn) != CONNECTION_OK)
		srv_pg_reset(db);
	if (db->conn == NULL || PQstatus(db->conn) != CONNECTION_OK)
		return srv_pg_fail(db, NULL);
	return 0;
}

static const char *
srv_pg_errmsg(const struct srv_db *base)
{
	return ((const struct srv_pg *)base)->errmsg;
}

static int64_t
srv_pg_head(const struct srv_db *base)
{
	return srv_pg_head_get(((const struct srv_pg *)base)->sh);
}

static int
srv_pg_migrate(struct srv_pg *db)
{
	PGresult *res;
	int64_t version;
	size_t i;
	char bump[96];
	int r = 0;

	if ((r = srv_pg_do(db, "BEGIN", 0, NULL, NULL)) < 0)
		return r;
	if ((r = srv_pg_do(db, "SELECT pg_advisory_xact_lock(x'"
	    SRV_PG_MIGRATE_LOCK "'::bigint)", 0, NULL, NULL)) < 0 ||
	    (r = srv_pg_do(db, "CREATE TABLE IF NOT EXISTS schema_version "
	    "(version integer NOT NULL)", 0, NULL, NULL)) < 0)
		goto fail;
	if ((res = srv_pg_run(db, "SELECT coalesce(max(version), 0) FROM "
	    "schema_version", 0, NULL, NULL, false, &r)) == NULL)
		goto fail;
	version = srv_pg_text_int(res, 0, 0);
	PQclear(res);
	if (version < 0 || version > (int64_t)SRV_PG_NMIGRATIONS) {
		snprintf(db->errmsg, sizeof db->errmsg,
		    "schema version %" PRId64 " is newer than this "
		    "ferry-server knows (%zu)", version, SRV_PG_NMIGRATIONS);
		r = -EPROTONOSUPPORT;
		goto fail;
	}
	for (i = (size_t)version; i < SRV_PG_NMIGRATIONS; i++) {
		snprintf(bump, sizeof bump, "DELETE FROM schema_version; "
		    "INSERT INTO schema_version VALUES (%zu)", i + 1);
		res = PQexec(db->conn, srv_pg_migrations[i]);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			r = srv_pg_fail(db, res);
			PQclear(res);
			goto fail;
		}
		PQclear(res);
		res = PQexec(db->conn, bump);
		if (PQresultStatus(res) != PGRES_COMMAND_OK) {
			r = srv_pg_fail(db, res);
			PQclear(res);
			goto fail;
		}
		PQclear(res);
	}
	/*
	 * Presence (srv_presence.h) is shared in a table of its own, not a
	 * migration: ephemeral, UNLOGGED (no WAL, emptied by a crash, which
	 * presence outlives by at most its TTL), made here if absent, under
	 * the same lock as the migrations.
	 */
	if ((r = srv_pg_do(db, "CREATE UNLOGGED TABLE IF NOT EXISTS "
	    "ferry_presence (device text PRIMARY KEY, list text NOT NULL, "
	    "expires_ms bigint NOT NULL)", 0, NULL, NULL)) < 0)
		goto fail;
	return srv_pg_do(db, "COMMIT", 0, NULL, NULL);
fail:
	PQclear(PQexec(db->conn, "ROLLBACK"));
	return r;
}

/* Read the committed head into the shared head. */
static int
srv_pg_head_read(struct srv_pg *db)
{
	PGresult *res;
	int r = 0;

	if ((res = srv_pg_run(db, "SELECT seq FROM head", 0, NULL, NULL,
	    false, &r)) == NULL)
		return r;
	if (PQntuples(res) == 1)
		srv_pg_head_raise(db->sh, srv_pg_text_int(res, 0, 0));
	PQclear(res);
	return 0;
}

static void
srv_pg_worker_free(void *arg)
{
	struct srv_pg *db = arg;

	if (db->in_batch)
		srv_pg_rollback(&db->base);
	PQfinish(db->conn);
	free(db);
}

int
srv_db_pg_open(const char *conninfo, struct srv_db **ret, char **ret_error)
{
	struct srv_pg *db;
	int r;

	if ((db = calloc(1, sizeof *db)) == NULL ||
	    (db->sh = calloc(1, sizeof *db->sh)) == NULL ||
	    (db->sh->conninfo = strdup(conninfo)) == NULL) {
		if (db != NULL)
			free(db->sh);
		free(db);
		return -ENOMEM;
	}
	db->base.ops = &srv_pg_ops;
	db->owner = true;
	if (pthread_key_create(&db->sh->worker_key, srv_pg_worker_free) != 0) {
		r = -EAGAIN;
		snprintf(db->errmsg, sizeof db->errmsg, "out of thread keys");
		goto fail;
	}
	db->sh->key_made = true;
	if ((r = srv_pg_ready(db)) < 0 ||
	    (r = srv_pg_migrate(db)) < 0 ||
	    (r = srv_pg_head_read(db)) < 0)
		goto fail;
	*ret = &db->base;
	return 0;
fail:
	if (ret_error != NULL)
		*ret_error = strdup(db->errmsg);
	srv_pg_close(&db->base);
	return r;
}

static void
srv_pg_unlisten(struct srv_pg *db)
{
	if (db->listen_ev != NULL)
		event_free(db->listen_ev);
	db->listen_ev = NULL;
	if (db->listen_up)
		db->relisten = true;
	PQfinish(db->listen);
	db->listen = NULL;
	db->listen_up = false;
	db->busy = false;
}

static void
srv_pg_close(struct srv_db *base)
{
	struct srv_pg *db = (struct srv_pg *)base;

	if (db == NULL)
		return;
	if (db->in_batch)
		srv_pg_rollback(base);
	PQfinish(db->conn);
	if (db->owner) {
		srv_pg_unlisten(db);
		if (db->tick != NULL)
			event_free(db->tick);
		/* Worker threads have exited (jobq_free) before this. */
		if (db->sh->key_made)
			pthread_key_delete(db->sh->worker_key);
		free(db->sh->conninfo);
		free(db->sh);
	}
	free(db);
}

static int
srv_pg_worker(struct srv_db *base, struct srv_db **ret)
{
	struct srv_pg *db = (struct srv_pg *)base, *w;

	w = pthread_getspecific(db->sh->worker_key);
	if (w == NULL) {
		if ((w = calloc(1, sizeof *w)) == NULL)
			return -ENOMEM;
		w->base.ops = &srv_pg_ops;
		w->sh = db->sh;
		if (pthread_setspecific(db->sh->worker_key, w) != 0) {
			free(w);
			return -ENOMEM;
		}
	}
	/* Not connected yet: srv_db_begin connects, or says why not. */
	*ret = &w->base;
	return 0;
}

static int
srv_pg_begin(struct srv_db *base)
{
	struct srv_pg *db = (struct srv_pg *)base;
	int r;

	if (db->in_batch)
		return -EALREADY;
	if ((r = srv_pg_ready(db)) < 0 ||
	    (r = srv_pg_do(db, "BEGIN", 0, NULL, NULL)) < 0)
		return r;
	db->in_batch = true;
	db->batch_n = 0;
	return 0;
}

/* Forget what the batch read and wrote. */
static void
srv_pg_batch_end(struct srv_pg *db)
{
	srv_pg_batch_clear(&db->b);
	PQclear(db->ids_read);
	db->ids_read = NULL;
	db->in_batch = false;
	db->batch_n = 0;
}

/*
 * Run sql with n binary array parameters after p0 (a text parameter, or
 * NULL), each finished here; the result, or NULL with *ret_err set.
 */
static PGresult *
srv_pg_run_arrays(struct srv_pg *db, const char *sql, const char *p0,
    struct srv_pgarr *arr, int n, bool binary, int *ret_err)
{
	const char *vals[12];
	int lens[12];
	int i, k = 0;

	if (n > 11) {
		*ret_err = -EINVAL;
		return NULL;
	}
	if (p0 != NULL) {
		vals[k] = p0;
		lens[k++] = 0;
	}
	for (i = 0; i < n; i++, k++) {
		if ((*ret_err = srv_pgarr_finish(&arr[i])) < 0) {
			snprintf(db->errmsg, sizeof db->errmsg, "a batch's "
			    "array parameter: %s", strerror(-*ret_err));
			return NULL;
		}
		vals[k] = arr[i].buf;
		lens[k] = (int)arr[i].len;
	}
	return srv_pg_run(db, sql, k, vals, lens, binary, ret_err);
}

static void
srv_pg_arrays_free(struct srv_pgarr *arr, int n)
{
	int i;

	for (i = 0; i < n; i++)
		srv_pgarr_free(&arr[i]);
}

/*
 * Write what the batch did, at commit: its documents' last states in one
 * UPDATE (every one exists, locked since srv_pg_batch_read: a new one as
 * its placeholder), the placeholders it made and did not write deleted,
 * then its log rows in one INSERT, numbered from the head row in the
 * order the batch wrote them.  *ret_head: the new head (0 if nothing was
 * logged).  The head row stays locked until COMMIT, so the next batch
 * gets the next numbers only once this one is visible.  0 or -errno.
 */
static int
srv_pg_batch_flush(struct srv_pg *db, int64_t *ret_head)
{
	struct srv_pgarr arr[10];
	const struct srv_pg_bdoc *d;
	const struct srv_apply *a;
	PGresult *res;
	char nrows[24];
	int64_t nwritten = 0, nunused = 0, got;
	size_t i;
	int r = 0;

	*ret_head = 0;
	memset(arr, 0, sizeof arr);
	/* Written: collection, id, base, version, deleted, body; made and
	 * not written: collection, id. */
	srv_pgarr_init(&arr[0], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[1], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[2], SRV_PGARR_INT8);
	srv_pgarr_init(&arr[3], SRV_PGARR_INT8);
	srv_pgarr_init(&arr[4], SRV_PGARR_BOOL);
	srv_pgarr_init(&arr[5], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[6], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[7], SRV_PGARR_TEXT);
	for (i = 0; i < db->b.ndocs; i++) {
		d = &db->b.docs[i];
		if (!d->written) {
			if (d->placeholder) {
				srv_pgarr_text(&arr[6], d->collection);
				srv_pgarr_text(&arr[7], d->id);
				nunused++;
			}
			continue;
		}
		srv_pgarr_text(&arr[0], d->collection);
		srv_pgarr_text(&arr[1], d->id);
		srv_pgarr_int8(&arr[2], d->base);
		srv_pgarr_int8(&arr[3], d->version);
		srv_pgarr_bool(&arr[4], d->deleted);
		if (d->body != NULL)
			srv_pgarr_bytes(&arr[5], d->body, d->body_len);
		else
			srv_pgarr_null(&arr[5]);
		nwritten++;
	}
	if (nwritten > 0) {
		if ((res = srv_pg_run_arrays(db, "UPDATE docs d SET"
		    " version = u.v, deleted = u.del, body = u.b"
		    " FROM unnest($1::text[], $2::text[], $3::int8[],"
		    " $4::int8[], $5::bool[], $6::text[]) AS u(c, i, base, v,"
		    " del, b) WHERE d.collection = u.c AND d.id = u.i"
		    " AND d.version = u.base", NULL, &arr[0], 6, false, &r)) ==
		    NULL)
			goto out;
		got = strtoll(PQcmdTuples(res), NULL, 10);
		PQclear(res);
		if (got != nwritten) {
			/* Every one was locked at its read version. */
			snprintf(db->errmsg, sizeof db->errmsg, "wrote %"
			    PRId64 " of the %" PRId64 " documents the batch "
			    "held", got, nwritten);
			r = -EIO;
			goto out;
		}
	}
	if (nunused > 0 && (res = srv_pg_run_arrays(db, "DELETE FROM docs d"
	    " USING unnest($1::text[], $2::text[]) AS u(c, i)"
	    " WHERE d.collection = u.c AND d.id = u.i AND d.version = 0",
	    NULL, &arr[6], 2, false, &r)) == NULL)
		goto out;
	if (nunused > 0)
		PQclear(res);
	srv_pg_arrays_free(arr, 10);
	if (db->b.nrows == 0)
		return 0;

	/* The log rows. */
	srv_pgarr_init(&arr[0], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[1], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[2], SRV_PGARR_INT8);
	srv_pgarr_init(&arr[3], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[4], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[5], SRV_PGARR_INT8);
	srv_pgarr_init(&arr[6], SRV_PGARR_INT8);
	srv_pgarr_init(&arr[7], SRV_PGARR_INT8);
	srv_pgarr_init(&arr[8], SRV_PGARR_BYTEA);
	srv_pgarr_init(&arr[9], SRV_PGARR_TEXT);
	for (i = 0; i < db->b.nrows; i++) {
		a = &db->b.rows[i].a;
		srv_pgarr_text(&arr[0], a->collection);
		srv_pgarr_text(&arr[1], a->id);
		srv_pgarr_int8(&arr[2], a->version);
		srv_pgarr_text(&arr[3], a->op);
		srv_pgarr_text(&arr[4], a->device);
		srv_pgarr_int8(&arr[5], a->dseq);
		srv_pgarr_int8(&arr[6], a->ts);
		srv_pgarr_int8(&arr[7], db->b.rows[i].received_ms);
		srv_pgarr_bytes(&arr[8], a->record, a->record_len);
		srv_pgarr_text(&arr[9], a->sig);
	}
	snprintf(nrows, sizeof nrows, "%zu", db->b.nrows);
	if ((res = srv_pg_run_arrays(db,
	    "WITH h AS (UPDATE head SET seq = seq + $1::bigint RETURNING seq),"
	    " i AS (INSERT INTO changes (seq, collection, id, version, op,"
	    " device, dseq, ts, received_ms, record, sig)"
	    " SELECT h.seq - $1::bigint + u.n, u.c, u.i, u.v, u.op, u.dev,"
	    " u.ds, u.ts, u.rcv, u.rec, u.sig FROM h, unnest($2::text[],"
	    " $3::text[], $4::int8[], $5::text[], $6::text[], $7::int8[],"
	    " $8::int8[], $9::int8[], $10::bytea[], $11::text[])"
	    " WITH ORDINALITY AS u(c, i, v, op, dev, ds, ts, rcv, rec, sig, n)"
	    " RETURNING 1)"
	    " SELECT (SELECT seq FROM h), (SELECT count(*) FROM i)", nrows,
	    arr, 10, false, &r)) == NULL)
		goto out;
	got = PQntuples(res) == 1 ? srv_pg_text_int(res, 0, 1) : -1;
	*ret_head = PQntuples(res) == 1 ? srv_pg_text_int(res, 0, 0) : 0;
	PQclear(res);
	if (got != (int64_t)db->b.nrows) {
		snprintf(db->errmsg, sizeof db->errmsg, "logged %" PRId64
		    " changes of %zu", got, db->b.nrows);
		r = -EIO;
	}
out:
	srv_pg_arrays_free(arr, 10);
	return r;
}

static int
srv_pg_commit(struct srv_db *base)
{
	struct srv_pg *db = (struct srv_pg *)base;
	char payload[24];
	const char *vals[1] = { payload };
	int64_t head = 0;
	int r;

	if (!db->in_batch)
		return -EINVAL;
	if ((r = srv_pg_batch_flush(db, &head)) < 0 ||
	    (r = srv_pg_do(db, "COMMIT", 0, NULL, NULL)) < 0) {
		srv_pg_rollback(base);
		return r;
	}
	srv_pg_batch_end(db);
	if (head == 0)
		return 0;
	srv_pg_head_raise(db->sh, head);
	/* After COMMIT: a failed notification is covered by the re-check. */
	snprintf(payload, sizeof payload, "%" PRId64, head);
	(void)srv_pg_do(db, "SELECT pg_notify('" SRV_PG_CHANNEL "', $1)", 1,
	    vals, NULL);
	return 0;
}

static void
srv_pg_rollback(struct srv_db *base)
{
	struct srv_pg *db = (struct srv_pg *)base;

	if (db->conn != NULL && PQstatus(db->conn) == CONNECTION_OK &&
	    PQtransactionStatus(db->conn) != PQTRANS_IDLE)
		PQclear(PQexec(db->conn, "ROLLBACK"));
	srv_pg_batch_end(db);
}

/* Reads outside a batch reconnect first; inside one they must not. */
static int
srv_pg_read_ready(struct srv_pg *db)
{
	return db->in_batch ? 0 : srv_pg_ready(db);
}

static int
srv_pg_doc_read(struct srv_db *base, const char *collection, const char *id,
    bool with_body, struct srv_doc *ret)
{
	struct srv_pg *db = (struct srv_pg *)base;
	const char *vals[2] = { collection, id };
	const struct srv_pg_bdoc *bd;
	struct srv_doc d;
	PGresult *res;
	int r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	if ((bd = srv_pg_batch_doc(&db->b, collection, id)) !=
	    NULL && (!with_body || bd->written || bd->base == 0)) {
		/* What the batch read (the row is locked) or wrote. */
		memset(&d, 0, sizeof d);
		d.version = bd->version;
		d.deleted = bd->deleted && bd->version > 0;
		if (with_body && bd->body != NULL && (d.body =
		    strndup(bd->body, bd->body_len)) == NULL)
			return -ENOMEM;
		*ret = d;
		return 0;
	}
	/* In a batch the row is locked: judged and written as one. */
	res = srv_pg_run(db, db->in_batch ?
	    "SELECT version, deleted, body FROM docs"
	    " WHERE collection = $1 AND id = $2 FOR UPDATE" :
	    "SELECT version, deleted, body FROM docs"
	    " WHERE collection = $1 AND id = $2", 2, vals, NULL, false, &r);
	if (res == NULL)
		return r;
	memset(&d, 0, sizeof d);
	if (PQntuples(res) == 1) {
		d.version = srv_pg_text_int(res, 0, 0);
		d.deleted = PQgetvalue(res, 0, 1)[0] == 't';
		if (with_body && !d.deleted && !PQgetisnull(res, 0, 2) &&
		    (d.body = strdup(PQgetvalue(res, 0, 2))) == NULL) {
			PQclear(res);
			return -ENOMEM;
		}
	}
	PQclear(res);
	*ret = d;
	return 0;
}

static int
srv_pg_change_id_get(struct srv_db *base, const char *device, int64_t dseq,
    struct srv_change_id *ret)
{
	struct srv_pg *db = (struct srv_pg *)base;
	const struct srv_pg_bid *bid;
	struct srv_change_id c;
	char seq[24];
	const char *vals[2] = { device, seq };
	PGresult *res;
	int i, r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	memset(&c, 0, sizeof c);
	if ((bid = srv_pg_batch_id(&db->b, device, dseq)) != NULL) {
		/* What the batch read or did. */
		c.outcome = bid->outcome;
		c.version = bid->version;
		if (bid->outcome == SRV_OUTCOME_APPLIED) {
			if ((c.record = malloc(bid->record_len + 1)) == NULL)
				return -ENOMEM;
			memcpy(c.record, bid->record, bid->record_len);
			c.record[bid->record_len] = '\0';
			c.record_len = bid->record_len;
		}
		*ret = c;
		return 0;
	}
	snprintf(seq, sizeof seq, "%" PRId64, dseq);
	/* Applied (a changes row) or answered "conflict": one round trip. */
	if ((res = srv_pg_run(db, "SELECT 1::bigint, version, record"
	    " FROM changes WHERE device = $1 AND dseq = $2::bigint"
	    " UNION ALL SELECT 0::bigint, 0::bigint, NULL::bytea"
	    " FROM conflicts WHERE device = $1 AND dseq = $2::bigint", 2, vals,
	    NULL, true, &r)) == NULL)
		return r;
	for (i = 0; i < PQntuples(res); i++) {
		if (srv_pg_int8(res, i, 0) == 0) {
			if (c.outcome == SRV_OUTCOME_NONE)
				c.outcome = SRV_OUTCOME_CONFLICT;
			continue;
		}
		c.outcome = SRV_OUTCOME_APPLIED;
		c.version = srv_pg_int8(res, i, 1);
		c.record_len = (size_t)PQgetlength(res, i, 2);
		if ((c.record = malloc(c.record_len + 1)) == NULL) {
			PQclear(res);
			return -ENOMEM;
		}
		memcpy(c.record, PQgetvalue(res, i, 2), c.record_len);
		c.record[c.record_len] = '\0';
		break;
	}
	PQclear(res);
	*ret = c;
	return 0;
}

/*
 * Name the batch's documents and change ids (srv_db_batch_read), in
 * three round trips whatever their number: a placeholder row (version 0)
 * for each document that does not exist, then every document locked FOR
 * UPDATE with its state read, then the change ids' outcomes.  The names
 * go as binary arrays, sorted and without repeats, and rows are taken in
 * that order (the placeholders as the INSERT walks the array, the locks
 * by WITH ORDINALITY's place), so two batches wait for each other
 * instead of deadlocking.  A placeholder another batch is inserting
 * makes this one wait for that batch's end; a separate statement then
 * locks, so its snapshot sees what that batch committed.
 */
static int
srv_pg_batch_read(struct srv_db *base, const struct srv_batch_key *keys,
    size_t n)
{
	struct srv_pg *db = (struct srv_pg *)base;
	struct srv_pgarr arr[2];
	struct srv_pg_bdoc *d;
	struct srv_pg_bid *c;
	PGresult *res;
	int64_t k;
	size_t i;
	int r = 0;

	if (!db->in_batch)
		return -EINVAL;
	srv_pg_batch_clear(&db->b);
	if ((r = srv_pg_batch_init(&db->b, keys, n)) < 0)
		return r;
	srv_pgarr_init(&arr[0], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[1], SRV_PGARR_TEXT);
	for (i = 0; i < db->b.ndocs; i++) {
		srv_pgarr_text(&arr[0], db->b.docs[i].collection);
		srv_pgarr_text(&arr[1], db->b.docs[i].id);
	}
	res = srv_pg_run_arrays(db, "INSERT INTO docs"
	    " (collection, id, version, deleted, body)"
	    " SELECT u.c, u.i, 0, true, NULL"
	    " FROM unnest($1::text[], $2::text[]) AS u(c, i)"
	    " ON CONFLICT DO NOTHING RETURNING collection, id",
	    NULL, arr, 2, false, &r);
	if (res == NULL)
		goto out;
	for (i = 0; i < (size_t)PQntuples(res); i++)
		if ((d = srv_pg_batch_doc(&db->b, PQgetvalue(res, (int)i, 0),
		    PQgetvalue(res, (int)i, 1))) != NULL)
			d->placeholder = true;
	PQclear(res);
	/* The arrays again: srv_pg_run_arrays finished them already. */
	res = srv_pg_run_arrays(db, "SELECT u.n, d.version, d.deleted"
	    " FROM docs d JOIN unnest($1::text[], $2::text[])"
	    " WITH ORDINALITY AS u(c, i, n) ON d.collection = u.c"
	    " AND d.id = u.i ORDER BY u.n FOR UPDATE OF d",
	    NULL, arr, 2, true, &r);
	if (res == NULL)
		goto out;
	for (i = 0; i < (size_t)PQntuples(res); i++) {
		k = srv_pg_int8(res, (int)i, 0);
		if (k < 1 || (uint64_t)k > db->b.ndocs)
			continue;
		d = &db->b.docs[k - 1];
		d->base = d->version = srv_pg_int8(res, (int)i, 1);
		d->deleted = PQgetvalue(res, (int)i, 2)[0] != 0;
	}
	PQclear(res);
	srv_pg_arrays_free(arr, 2);

	srv_pgarr_init(&arr[0], SRV_PGARR_TEXT);
	srv_pgarr_init(&arr[1], SRV_PGARR_INT8);
	for (i = 0; i < db->b.nids; i++) {
		srv_pgarr_text(&arr[0], db->b.ids[i].device);
		srv_pgarr_int8(&arr[1], db->b.ids[i].dseq);
	}
	/* Applied (a changes row) or answered "conflict" (version -1). */
	res = srv_pg_run_arrays(db, "SELECT u.n, c.version, c.record"
	    " FROM unnest($1::text[], $2::int8[]) WITH ORDINALITY AS u(d, s, n)"
	    " JOIN changes c ON c.device = u.d AND c.dseq = u.s"
	    " UNION ALL SELECT u.n, -1::bigint, NULL::bytea"
	    " FROM unnest($1::text[], $2::int8[]) WITH ORDINALITY AS u(d, s, n)"
	    " JOIN conflicts f ON f.device = u.d AND f.dseq = u.s",
	    NULL, arr, 2, true, &r);
	if (res == NULL)
		goto out;
	for (i = 0; i < (size_t)PQntuples(res); i++) {
		k = srv_pg_int8(res, (int)i, 0);
		if (k < 1 || (uint64_t)k > db->b.nids)
			continue;
		c = &db->b.ids[k - 1];
		if (srv_pg_int8(res, (int)i, 1) < 0) {
			if (c->outcome == SRV_OUTCOME_NONE)
				c->outcome = SRV_OUTCOME_CONFLICT;
			continue;
		}
		c->outcome = SRV_OUTCOME_APPLIED;
		c->version = srv_pg_int8(res, (int)i, 1);
		c->record = PQgetvalue(res, (int)i, 2);
		c->record_len = (size_t)PQgetlength(res, (int)i, 2);
	}
	/* The records stay in the result until the batch ends. */
	PQclear(db->ids_read);
	db->ids_read = res;
out:
	srv_pg_arrays_free(arr, 2);
	return r;
}

static int
srv_pg_max_seq(struct srv_db *base, const char *device, int64_t *ret)
{
	struct srv_pg *db = (struct srv_pg *)base;
	const char *vals[1] = { device };
	PGresult *res;
	int r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	/* In a batch: take the device's row lock, making it if need be
	 * (the no-op update locks the row as FOR UPDATE would). */
	if ((res = srv_pg_run(db, db->in_batch ?
	    "INSERT INTO devices (device, max_seq) VALUES ($1, 0)"
	    " ON CONFLICT (device) DO UPDATE SET max_seq = devices.max_seq"
	    " RETURNING max_seq" :
	    "SELECT max_seq FROM devices WHERE device = $1", 1, vals, NULL,
	    false, &r)) == NULL)
		return r;
	*ret = PQntuples(res) == 1 ? srv_pg_text_int(res, 0, 0) : 0;
	PQclear(res);
	return 0;
}

static int
srv_pg_set_max_seq(struct srv_db *base, const char *device, int64_t dseq)
{
	struct srv_pg *db = (struct srv_pg *)base;
	char seq[24];
	const char *vals[2] = { device, seq };

	if (!db->in_batch)
		return -EINVAL;
	snprintf(seq, sizeof seq, "%" PRId64, dseq);
	return srv_pg_do(db, "INSERT INTO devices (device, max_seq)"
	    " VALUES ($1, $2::bigint) ON CONFLICT (device) DO UPDATE SET"
	    " max_seq = greatest(devices.max_seq, excluded.max_seq)", 2, vals,
	    NULL);
}

/*
 * Record a judged change in the batch's books (srv_pg_batch_write); it
 * reaches the database at commit (srv_pg_batch_flush).  Its document was
 * named to srv_pg_batch_read, so it is locked and its version known.
 */
static int
srv_pg_apply(struct srv_db *base, const struct srv_apply *a, int64_t *ret_seq)
{
	struct srv_pg *db = (struct srv_pg *)base;
	int r;

	if (!db->in_batch)
		return -EINVAL;
	r = srv_pg_batch_write(&db->b, a, util_now_ms());
	if (r == -ENOENT) {
		snprintf(db->errmsg, sizeof db->errmsg, "%s/%s was not named "
		    "to srv_db_batch_read", a->collection, a->id);
		return -EINVAL;
	}
	if (r == -ESTALE)
		snprintf(db->errmsg, sizeof db->errmsg, "%s/%s is not at "
		    "version %" PRId64, a->collection, a->id, a->version - 1);
	if (r < 0)
		return r;
	db->batch_n++;
	*ret_seq = 0;
	return 0;
}

/* note_conflict (add) and forget_conflict (!add). */
static int
srv_pg_conflict(struct srv_db *base, const char *device, int64_t dseq,
    bool add)
{
	struct srv_pg *db = (struct srv_pg *)base;
	struct srv_pg_bid *bid;
	char seq[24];
	const char *vals[2] = { device, seq };

	if (!db->in_batch)
		return -EINVAL;
	if ((bid = srv_pg_batch_id(&db->b, device, dseq)) != NULL &&
	    bid->outcome != SRV_OUTCOME_APPLIED)
		bid->outcome = add ? SRV_OUTCOME_CONFLICT : SRV_OUTCOME_NONE;
	snprintf(seq, sizeof seq, "%" PRId64, dseq);
	return srv_pg_do(db, add ?
	    "INSERT INTO conflicts (device, dseq) VALUES ($1, $2::bigint)"
	    " ON CONFLICT DO NOTHING" :
	    "DELETE FROM conflicts WHERE device = $1 AND dseq = $2::bigint", 2,
	    vals, NULL);
}

static int
srv_pg_note_conflict(struct srv_db *base, const char *device, int64_t dseq)
{
	return srv_pg_conflict(base, device, dseq, true);
}

static int
srv_pg_forget_conflict(struct srv_db *base, const char *device, int64_t dseq)
{
	return srv_pg_conflict(base, device, dseq, false);
}

/*
 * Run a query of SRV_PG_ROW_COLS (n text parameters) and hand each row to
 * cb, in order.  n rows or -errno.
 */
static int
srv_pg_rows(struct srv_pg *db, const char *sql, int n,
    const char *const *vals, srv_change_cb cb, void *arg)
{
	struct srv_change_row row;
	PGresult *res;
	int i, r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	if ((res = srv_pg_run(db, sql, n, vals, NULL, true, &r)) == NULL)
		return r;
	for (i = 0; i < PQntuples(res); i++) {
		memset(&row, 0, sizeof row);
		row.seq = srv_pg_int8(res, i, 0);
		row.collection = PQgetvalue(res, i, 1);
		row.id = PQgetvalue(res, i, 2);
		row.version = srv_pg_int8(res, i, 3);
		row.op = PQgetvalue(res, i, 4);
		row.device = PQgetvalue(res, i, 5);
		row.dseq = srv_pg_int8(res, i, 6);
		row.ts = srv_pg_int8(res, i, 7);
		row.received_ms = srv_pg_int8(res, i, 8);
		row.record = PQgetvalue(res, i, 9);
		row.record_len = (size_t)PQgetlength(res, i, 9);
		row.sig = PQgetvalue(res, i, 10);
		srv_pg_head_raise(db->sh, row.seq);
		if ((r = cb(&row, arg)) < 0)
			break;
	}
	PQclear(res);
	return r < 0 ? r : i;
}

static int
srv_pg_changes(struct srv_db *base, int64_t since, int limit,
    srv_change_cb cb, void *arg)
{
	char s[24], l[24];
	const char *vals[2] = { s, l };

	struct srv_pg *db = (struct srv_pg *)base;
	int r;

	snprintf(s, sizeof s, "%" PRId64, since);
	snprintf(l, sizeof l, "%d", limit);
	r = srv_pg_rows(db, "SELECT " SRV_PG_ROW_COLS
	    " FROM changes WHERE seq > $1::bigint ORDER BY seq"
	    " LIMIT $2::bigint", 2, vals, cb, arg);
	/* Nothing after since, and since beyond the head this instance has
	 * seen: another instance may have committed it; read the head, so
	 * that a cursor from it is not taken for one from the future. */
	if (r == 0 && since > srv_pg_head_get(db->sh))
		r = srv_pg_head_read(db);
	return r;
}

static int
srv_pg_history(struct srv_db *base, const char *collection, const char *id,
    int64_t after, int limit, srv_change_cb cb, void *arg)
{
	char s[24], l[24];
	const char *vals[4] = { collection, id, s, l };

	snprintf(s, sizeof s, "%" PRId64, after);
	snprintf(l, sizeof l, "%d", limit);
	/* Only committed rows have a seq (belt and braces: the loop's
	 * handle never has a batch open). */
	return srv_pg_rows((struct srv_pg *)base, "SELECT " SRV_PG_ROW_COLS
	    " FROM changes WHERE collection = $1 AND id = $2"
	    " AND version > $3::bigint AND seq IS NOT NULL ORDER BY version"
	    " LIMIT $4::bigint", 4, vals, cb, arg);
}

/* --- the listener (loop's handle) --- */

/* The head moved to seq (or was read as seq): wake if it moved. */
static void
srv_pg_head_seen(struct srv_pg *db, int64_t seq)
{
	if (srv_pg_head_raise(db->sh, seq) && db->wake != NULL)
		db->wake(db->wake_arg);
}

/* Read what the listener has: notifications and query results. */
static void
srv_pg_listen_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_pg *db = arg;
	PGnotify *n;
	PGresult *res;

	if (PQconsumeInput(db->listen) == 0) {
		/* Dropped: the tick reconnects. */
		srv_pg_unlisten(db);
		return;
	}
	while ((n = PQnotifies(db->listen)) != NULL) {
		if (strcmp(n->relname, SRV_PG_KEYS_CHANNEL) == 0) {
			if (db->keys_changed != NULL)
				db->keys_changed(db->keys_arg);
		} else if (strcmp(n->relname, SRV_PG_PRESENCE_CHANNEL) == 0) {
			if (db->presence_changed != NULL)
				db->presence_changed(n->extra,
				    db->presence_arg);
		} else
			srv_pg_head_seen(db, strtoll(n->extra, NULL, 10));
		PQfreemem(n);
	}
	/* LISTEN's results, or the head re-read's row. */
	while (db->busy && PQisBusy(db->listen) == 0) {
		if ((res = PQgetResult(db->listen)) == NULL) {
			db->busy = false;
			break;
		}
		if (PQresultStatus(res) == PGRES_TUPLES_OK &&
		    PQntuples(res) == 1)
			srv_pg_head_seen(db, srv_pg_text_int(res, 0, 0));
		PQclear(res);
	}
}

/* Wait for the listener's socket (what) to call cb.  0 or -ENOMEM. */
static int
srv_pg_listen_arm(struct srv_pg *db, short what, event_callback_fn cb)
{
	if (db->listen_ev != NULL)
		event_free(db->listen_ev);
	db->listen_ev = event_new(db->evbase, PQsocket(db->listen), what, cb,
	    db);
	if (db->listen_ev == NULL || event_add(db->listen_ev, NULL) < 0)
		return -ENOMEM;
	return 0;
}

/*
 * One step of the listener's nonblocking connect (PQconnectPoll); once
 * connected, send LISTEN and read from then on with srv_pg_listen_cb.
 * A failure leaves the listener down: the tick tries again.
 */
static void
srv_pg_connect_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_pg *db = arg;

	switch (PQconnectPoll(db->listen)) {
	case PGRES_POLLING_READING:
		if (srv_pg_listen_arm(db, EV_READ, srv_pg_connect_cb) < 0)
			srv_pg_unlisten(db);
		return;
	case PGRES_POLLING_WRITING:
		if (srv_pg_listen_arm(db, EV_WRITE, srv_pg_connect_cb) < 0)
			srv_pg_unlisten(db);
		return;
	case PGRES_POLLING_OK:
		break;
	default:
		srv_pg_unlisten(db);
		return;
	}
	if (PQsetnonblocking(db->listen, 1) != 0 ||
	    PQsendQuery(db->listen, "LISTEN " SRV_PG_CHANNEL "; LISTEN "
	    SRV_PG_KEYS_CHANNEL "; LISTEN " SRV_PG_PRESENCE_CHANNEL) == 0 ||
	    srv_pg_listen_arm(db, EV_READ | EV_PERSIST, srv_pg_listen_cb) < 0) {
		srv_pg_unlisten(db);
		return;
	}
	(void)PQflush(db->listen);
	db->busy = true;
	db->listen_up = true;
	/* Back after a drop: a key may have come meanwhile. */
	if (db->relisten && db->keys_changed != NULL)
		db->keys_changed(db->keys_arg);
	/* And presence lists: read them all again. */
	if (db->relisten && db->presence_changed != NULL)
		db->presence_changed(NULL, db->presence_arg);
	db->relisten = false;
}

/*
 * Start connecting the listener without blocking the loop (a host name in
 * the URL is still resolved synchronously by libpq: use a Unix socket or
 * an address for the database).
 */
static void
srv_pg_listen_start(struct srv_pg *db)
{
	db->listen = srv_pg_connect(db->sh->conninfo, true);
	if (db->listen == NULL || PQstatus(db->listen) == CONNECTION_BAD ||
	    srv_pg_listen_arm(db, EV_WRITE, srv_pg_connect_cb) < 0)
		srv_pg_unlisten(db);
}

/* Once a second: re-read the head (a lost notification), or reconnect. */
static void
srv_pg_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_pg *db = arg;

	if (db->listen == NULL) {
		srv_pg_listen_start(db);
		return;
	}
	if (!db->listen_up || db->busy)
		return;
	if (PQsendQuery(db->listen, "SELECT seq FROM head") == 0) {
		srv_pg_unlisten(db);
		return;
	}
	db->busy = true;
	(void)PQflush(db->listen);
}

static int
srv_pg_watch(struct srv_db *base, struct event_base *evbase,
    srv_db_wake_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;
	struct timeval tv = { 1, 0 };

	if (!db->owner || db->evbase != NULL)
		return -EINVAL;
	db->evbase = evbase;
	db->wake = cb;
	db->wake_arg = arg;
	if ((db->tick = event_new(evbase, -1, EV_PERSIST, srv_pg_tick_cb,
	    db)) == NULL || event_add(db->tick, &tv) < 0)
		return -ENOMEM;
	srv_pg_listen_start(db);
	return 0;
}

static int
srv_pg_keys(struct srv_db *base, srv_db_key_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;
	PGresult *res;
	int i, r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	if ((res = srv_pg_run(db, "SELECT key, name FROM allowed_keys"
	    " ORDER BY key", 0, NULL, NULL, false, &r)) == NULL)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = cb(PQgetvalue(res, i, 0), PQgetisnull(res, i, 1) ?
		    NULL : PQgetvalue(res, i, 1), arg)) < 0)
			break;
	PQclear(res);
	return r < 0 ? r : i;
}

static int
srv_pg_allow(struct srv_db *base, const char *key, const char *name)
{
	struct srv_pg *db = (struct srv_pg *)base;
	char now[24];
	const char *vals[3] = { key, name, now };
	PGresult *res;
	int added, r = 0;

	if ((r = srv_pg_ready(db)) < 0)
		return r;
	snprintf(now, sizeof now, "%" PRId64, util_now_ms());
	if ((res = srv_pg_run(db, "INSERT INTO allowed_keys (key, name,"
	    " added_ms) VALUES ($1, $2, $3::bigint) ON CONFLICT DO NOTHING"
	    " RETURNING 1", 3, vals, NULL, false, &r)) == NULL)
		return r;
	added = PQntuples(res);
	PQclear(res);
	if (added == 0)
		return -EEXIST;
	/* Committed (autocommit): now tell the instances. */
	(void)srv_pg_do(db, "SELECT pg_notify('" SRV_PG_KEYS_CHANNEL "', '')",
	    0, NULL, NULL);
	return 0;
}

static int
srv_pg_watch_keys(struct srv_db *base, srv_db_wake_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;

	db->keys_changed = cb;
	db->keys_arg = arg;
	return 0;
}

/* Committed (autocommit): tell every instance the keys changed. */
static void
srv_pg_keys_notify(struct srv_pg *db)
{
	(void)srv_pg_do(db, "SELECT pg_notify('" SRV_PG_KEYS_CHANNEL "', '')",
	    0, NULL, NULL);
}

/* A statement that changes at most one row: 1 if it did, 0, -errno. */
static int
srv_pg_change_one(struct srv_pg *db, const char *sql, int n,
    const char *const *vals)
{
	PGresult *res;
	int changed, r = 0;

	if ((r = srv_pg_ready(db)) < 0)
		return r;
	if ((res = srv_pg_run(db, sql, n, vals, NULL, false, &r)) == NULL)
		return r;
	changed = PQntuples(res) > 0;
	PQclear(res);
	return changed;
}

static int
srv_pg_revoke(struct srv_db *base, const char *key, int64_t ms,
    const char *reason)
{
	struct srv_pg *db = (struct srv_pg *)base;
	char when[24];
	const char *vals[3] = { key, when, reason };
	int r;

	snprintf(when, sizeof when, "%" PRId64, ms);
	if ((r = srv_pg_change_one(db, "INSERT INTO revoked_keys (key,"
	    " revoked_ms, reason) VALUES ($1, $2::bigint, $3)"
	    " ON CONFLICT DO NOTHING RETURNING 1", 3, vals)) <= 0)
		return r < 0 ? r : -EEXIST;
	srv_pg_keys_notify(db);
	return 0;
}

static int
srv_pg_unrevoke(struct srv_db *base, const char *key)
{
	struct srv_pg *db = (struct srv_pg *)base;
	const char *vals[1] = { key };
	int r;

	if ((r = srv_pg_change_one(db, "DELETE FROM revoked_keys"
	    " WHERE key = $1 RETURNING 1", 1, vals)) <= 0)
		return r < 0 ? r : -ENOENT;
	srv_pg_keys_notify(db);
	return 0;
}

static int
srv_pg_revocations(struct srv_db *base, srv_db_revoked_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;
	PGresult *res;
	int i, r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	if ((res = srv_pg_run(db, "SELECT key, revoked_ms, reason FROM"
	    " revoked_keys ORDER BY key", 0, NULL, NULL, false, &r)) == NULL)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = cb(PQgetvalue(res, i, 0), srv_pg_text_int(res, i, 1),
		    PQgetisnull(res, i, 2) ? NULL : PQgetvalue(res, i, 2),
		    arg)) < 0)
			break;
	PQclear(res);
	return r < 0 ? r : i;
}

static int
srv_pg_rotate(struct srv_db *base, const struct srv_rotation *rot)
{
	struct srv_pg *db = (struct srv_pg *)base;
	char seq[24], when[24];
	const char *vals[7] = { rot->old_key, rot->new_key, seq, when,
	    rot->statement, rot->sig_old, rot->sig_new };
	int r;

	snprintf(seq, sizeof seq, "%" PRId64, rot->seq);
	snprintf(when, sizeof when, "%" PRId64, rot->ms);
	if ((r = srv_pg_change_one(db, "INSERT INTO key_rotations (old_key,"
	    " new_key, last_seq, rotated_ms, statement, sig_old, sig_new)"
	    " SELECT $1::text, $2::text, $3::bigint, $4::bigint, $5, $6, $7"
	    " WHERE NOT EXISTS (SELECT 1 FROM key_rotations"
	    " WHERE old_key IN ($1, $2) OR new_key = $2)"
	    " ON CONFLICT DO NOTHING RETURNING 1", 7, vals)) <= 0)
		return r < 0 ? r : -EEXIST;
	srv_pg_keys_notify(db);
	return 0;
}

static int
srv_pg_rotations(struct srv_db *base, srv_db_rotation_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;
	struct srv_rotation rot;
	PGresult *res;
	int i, r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	if ((res = srv_pg_run(db, "SELECT old_key, new_key, last_seq,"
	    " rotated_ms, statement, sig_old, sig_new FROM key_rotations"
	    " ORDER BY rid", 0, NULL, NULL, false, &r)) == NULL)
		return r;
	for (i = 0; i < PQntuples(res); i++) {
		rot.old_key = PQgetvalue(res, i, 0);
		rot.new_key = PQgetvalue(res, i, 1);
		rot.seq = srv_pg_text_int(res, i, 2);
		rot.ms = srv_pg_text_int(res, i, 3);
		rot.statement = PQgetvalue(res, i, 4);
		rot.sig_old = PQgetvalue(res, i, 5);
		rot.sig_new = PQgetvalue(res, i, 6);
		if ((r = cb(&rot, arg)) < 0)
			break;
	}
	PQclear(res);
	return r < 0 ? r : i;
}

static int
srv_pg_key_times(struct srv_db *base, srv_db_times_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;
	PGresult *res;
	int i, r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	if ((res = srv_pg_run(db, "SELECT key, coalesce(max(added), 0),"
	    " coalesce(max(seen), 0) FROM (SELECT key, added_ms AS added,"
	    " NULL::bigint AS seen FROM allowed_keys UNION ALL SELECT key,"
	    " added_ms, seen_ms FROM key_info) AS t GROUP BY key ORDER BY key",
	    0, NULL, NULL, false, &r)) == NULL)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = cb(PQgetvalue(res, i, 0), srv_pg_text_int(res, i, 1),
		    srv_pg_text_int(res, i, 2), arg)) < 0)
			break;
	PQclear(res);
	return r < 0 ? r : i;
}

static int
srv_pg_note_added(struct srv_db *base, const char *key, int64_t ms)
{
	struct srv_pg *db = (struct srv_pg *)base;
	char when[24];
	const char *vals[2] = { key, when };
	int r;

	snprintf(when, sizeof when, "%" PRId64, ms);
	r = srv_pg_change_one(db, "INSERT INTO key_info (key, added_ms)"
	    " VALUES ($1, $2::bigint) ON CONFLICT (key) DO UPDATE SET"
	    " added_ms = coalesce(key_info.added_ms, excluded.added_ms)"
	    " RETURNING 1", 2, vals);
	return r < 0 ? r : 0;
}

/* One statement for the n keys: unnest of two arrays, raised only. */
static int
srv_pg_seen_write(struct srv_db *base, const struct srv_key_seen *v,
    size_t n)
{
	struct srv_pg *db = (struct srv_pg *)base;
	const char *vals[2];
	char *keys = NULL, *ms = NULL;
	size_t kcap, mcap, ko = 0, mo = 0, i;
	int r;

	if (db->in_batch)
		return -EBUSY;
	kcap = n * (KEYS_PUB_B64_LEN + 1) + 3;
	mcap = n * 21 + 3;
	if ((keys = malloc(kcap)) == NULL || (ms = malloc(mcap)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	keys[ko++] = '{';
	ms[mo++] = '{';
	for (i = 0; i < n; i++) {
		ko += (size_t)snprintf(keys + ko, kcap - ko, "%s%s",
		    i > 0 ? "," : "", v[i].key);
		mo += (size_t)snprintf(ms + mo, mcap - mo, "%s%" PRId64,
		    i > 0 ? "," : "", v[i].ms);
	}
	snprintf(keys + ko, kcap - ko, "}");
	snprintf(ms + mo, mcap - mo, "}");
	vals[0] = keys;
	vals[1] = ms;
	if ((r = srv_pg_ready(db)) < 0)
		goto out;
	r = srv_pg_do(db, "INSERT INTO key_info (key, seen_ms)"
	    " SELECT * FROM unnest($1::text[], $2::bigint[])"
	    " ON CONFLICT (key) DO UPDATE SET seen_ms ="
	    " greatest(key_info.seen_ms, excluded.seen_ms)", 2, vals, NULL);
out:
	free(keys);
	free(ms);
	return r;
}

static int
srv_pg_grants(struct srv_db *base, srv_db_grant_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;
	PGresult *res;
	int i, r = 0;

	if ((r = srv_pg_read_ready(db)) < 0)
		return r;
	if ((res = srv_pg_run(db, "SELECT key, read, write FROM key_grants"
	    " ORDER BY key", 0, NULL, NULL, false, &r)) == NULL)
		return r;
	for (i = 0; i < PQntuples(res); i++)
		if ((r = cb(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    PQgetvalue(res, i, 2), arg)) < 0)
			break;
	PQclear(res);
	return r < 0 ? r : i;
}

/* Set or clear a key's grants, then tell every instance (as revoke). */
static int
srv_pg_grant_set(struct srv_db *base, const char *key, const char *rd,
    const char *wr)
{
	struct srv_pg *db = (struct srv_pg *)base;
	const char *vals[3] = { key, rd, wr };
	int r;

	if (rd == NULL)
		r = srv_pg_change_one(db, "DELETE FROM key_grants"
		    " WHERE key = $1 RETURNING 1", 1, vals);
	else
		r = srv_pg_change_one(db, "INSERT INTO key_grants (key, read,"
		    " write) VALUES ($1, $2, $3) ON CONFLICT (key) DO UPDATE"
		    " SET read = excluded.read, write = excluded.write"
		    " RETURNING 1", 3, vals);
	if (r < 0)
		return r;
	srv_pg_keys_notify(db);
	return 0;
}

/*
 * Before a request is authenticated: read what the listener has already
 * received (nonblocking, one recv), so a revocation whose notification
 * came before the request has its reread started.  Never says "changed":
 * what changed was handled by the keys callback.
 */
static bool
srv_pg_outside_change(struct srv_db *base)
{
	struct srv_pg *db = (struct srv_pg *)base;

	if (db->owner && db->listen_up && db->listen != NULL)
		srv_pg_listen_cb(PQsocket(db->listen), EV_READ, db);
	return false;
}

/* --- presence (srv_db.h) --- */

static int
srv_pg_presence_put(struct srv_db *base, const char *device,
    const char *list, int64_t expires_ms, int64_t now_ms)
{
	struct srv_pg *db = (struct srv_pg *)base;
	char exp[32], old[32];
	const char *vals[3] = { device, list, exp };
	const char *dvals[1] = { old };
	int r;

	snprintf(exp, sizeof exp, "%" PRId64, expires_ms);
	snprintf(old, sizeof old, "%" PRId64, now_ms - 60000);
	/* A later post (a later expiry) is never undone by an earlier one
	 * that a slower worker writes last. */
	if ((r = srv_pg_do(db, "INSERT INTO ferry_presence VALUES ($1, $2, "
	    "$3) ON CONFLICT (device) DO UPDATE SET list = EXCLUDED.list, "
	    "expires_ms = EXCLUDED.expires_ms WHERE ferry_presence.expires_ms "
	    "<= EXCLUDED.expires_ms", 3, vals, NULL)) < 0)
		return r;
	(void)srv_pg_do(db, "SELECT pg_notify('" SRV_PG_PRESENCE_CHANNEL
	    "', $1)", 1, vals, NULL);
	/* Lists long expired: nobody reads them any more. */
	(void)srv_pg_do(db, "DELETE FROM ferry_presence WHERE expires_ms < $1",
	    1, dvals, NULL);
	return 0;
}

static int
srv_pg_presence_load(struct srv_db *base, const char *device,
    srv_db_presence_row_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;
	const char *vals[1] = { device };
	PGresult *res;
	int i, n, r = 0;

	res = device != NULL ? srv_pg_run(db, "SELECT device, list, "
	    "expires_ms FROM ferry_presence WHERE device = $1", 1, vals, NULL,
	    false, &r) : srv_pg_run(db, "SELECT device, list, expires_ms FROM "
	    "ferry_presence", 0, NULL, NULL, false, &r);
	if (res == NULL)
		return r;
	n = PQntuples(res);
	for (i = 0; i < n && r >= 0; i++)
		r = cb(PQgetvalue(res, i, 0), PQgetvalue(res, i, 1),
		    srv_pg_text_int(res, i, 2), arg);
	PQclear(res);
	return r < 0 ? r : n;
}

static int
srv_pg_watch_presence(struct srv_db *base, srv_db_presence_cb cb, void *arg)
{
	struct srv_pg *db = (struct srv_pg *)base;

	db->presence_changed = cb;
	db->presence_arg = arg;
	return 0;
}

static const struct srv_db_ops srv_pg_ops = {
	.close = srv_pg_close,
	.errmsg = srv_pg_errmsg,
	.head = srv_pg_head,
	.begin = srv_pg_begin,
	.commit = srv_pg_commit,
	.rollback = srv_pg_rollback,
	.doc_read = srv_pg_doc_read,
	.change_id_get = srv_pg_change_id_get,
	.batch_read = srv_pg_batch_read,
	.max_seq = srv_pg_max_seq,
	.set_max_seq = srv_pg_set_max_seq,
	.apply = srv_pg_apply,
	.note_conflict = srv_pg_note_conflict,
	.forget_conflict = srv_pg_forget_conflict,
	.changes = srv_pg_changes,
	.history = srv_pg_history,
	.worker = srv_pg_worker,
	.watch = srv_pg_watch,
	.keys = srv_pg_keys,
	.allow = srv_pg_allow,
	.watch_keys = srv_pg_watch_keys,
	.revoke = srv_pg_revoke,
	.unrevoke = srv_pg_unrevoke,
	.revocations = srv_pg_revocations,
	.key_times = srv_pg_key_times,
	.note_added = srv_pg_note_added,
	.seen_write = srv_pg_seen_write,
	.outside_change = srv_pg_outside_change,
	.presence_put = srv_pg_presence_put,
	.presence_load = srv_pg_presence_load,
	.watch_presence = srv_pg_watch_presence,
	.rotate = srv_pg_rotate,
	.rotations = srv_pg_rotations,
	.grants = srv_pg_grants,
	.grant_set = srv_pg_grant_set,
};
