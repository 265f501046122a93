/*
 * srv_db_sqlite: the SQLite backend of srv_db (the embedded default: one
 * file, one connection, one ferry-server per database); see srv_db.h for
 * the contract every backend keeps and srv_db_impl.h for the seam.
 *
 * Every call runs on the event loop's thread (the connection is opened
 * NOMUTEX): this backend has no worker handles, so push batches are
 * applied on the loop, one at a time, and seq is the change log's rowid,
 * known as soon as the row is inserted.  Long-poll wake-ups need nothing
 * from here: only this process writes the database.
 *
 * Invariants kept here:
 * - a document row's version is the version of its latest change-log row,
 *   and (collection, id, version) is unique in the log: versions of one
 *   document go 1, 2, 3... without gaps;
 * - a change id (device, dseq) appears at most once in the log (unique
 *   index): applying one twice fails the batch rather than doubling it;
 * - devices.max_seq only grows (MAX() in the upsert);
 * - head is the committed head; the open batch's head is kept apart and
 *   published by srv_sqlite_commit;
 * - data_version is the one read at open or at the last
 *   srv_sqlite_outside_change: a commit by another connection (a
 *   `ferry-server revoke`) after it is told at the next call.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "dberr.h"
#include "srv_db.h"
#include "srv_db_impl.h"
#include "util.h"

enum {
	SQ_BEGIN,
	SQ_COMMIT,
	SQ_ROLLBACK,
	SQ_DOC_GET,
	SQ_DOC_STATE,
	SQ_DOC_UPSERT,
	SQ_CHANGE_ADD,
	SQ_APPLIED_GET,
	SQ_CONFLICT_GET,
	SQ_CONFLICT_ADD,
	SQ_CONFLICT_DEL,
	SQ_MAXSEQ_GET,
	SQ_MAXSEQ_SET,
	SQ_CHANGES,
	SQ_HISTORY,
	SQ_DATA_VERSION,
	SQ_REVOKE,
	SQ_UNREVOKE,
	SQ_REVOKED,
	SQ_KEY_TIMES,
	SQ_ADDED,
	SQ_SEEN,
	SQ_ROTATE,
	SQ_ROTATIONS,
	SQ_GRANTS,
	SQ_GRANT_SET,
	SQ_GRANT_DEL,
	SQ_COUNT
};

struct srv_sqlite {
	struct srv_db	 base;		/* first: the seam's handle */
	sqlite3		*db;
	sqlite3_stmt	*st[SQ_COUNT];
	bool		 in_batch;
	int64_t		 head;		/* committed */
	int64_t		 batch_head;	/* inside the open batch */
	int64_t		 data_version;	/* others' commits; -1: not read */
	char		 errmsg[256];
};

static const struct srv_db_ops srv_sqlite_ops;

static void	srv_sqlite_close(struct srv_db *);
static void	srv_sqlite_rollback(struct srv_db *);
static bool	srv_sqlite_outside_change(struct srv_db *);

/*
 * Schema migrations, applied in order; migration i brings user_version
 * from i to i + 1.  Never edit a released entry: add a new one.
 */
static const char *srv_db_migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE docs ("
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  deleted INTEGER NOT NULL,"
	"  body TEXT,"
	"  PRIMARY KEY (collection, id)"
	") WITHOUT ROWID;"
	"CREATE TABLE changes ("
	"  seq INTEGER PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  op TEXT NOT NULL,"
	"  device TEXT NOT NULL,"
	"  dseq INTEGER NOT NULL,"
	"  ts INTEGER NOT NULL,"
	"  received_ms INTEGER NOT NULL,"
	"  record BLOB NOT NULL,"
	"  sig TEXT NOT NULL"
	");"
	"CREATE UNIQUE INDEX changes_doc ON changes(collection, id, version);"
	"CREATE UNIQUE INDEX changes_id ON changes(device, dseq);"
	"CREATE TABLE devices ("
	"  device TEXT PRIMARY KEY,"
	"  max_seq INTEGER NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE conflicts ("
	"  device TEXT NOT NULL,"
	"  dseq INTEGER NOT NULL,"
	"  PRIMARY KEY (device, dseq)"
	") WITHOUT ROWID;",
	/* 1 -> 2: revoked keys, and when keys were added and last seen. */
	"CREATE TABLE revoked_keys ("
	"  key TEXT PRIMARY KEY,"
	"  revoked_ms INTEGER NOT NULL,"
	"  reason TEXT"
	") WITHOUT ROWID;"
	"CREATE TABLE key_info ("
	"  key TEXT PRIMARY KEY,"
	"  added_ms INTEGER,"
	"  seen_ms INTEGER"
	") WITHOUT ROWID;",
	/* 2 -> 3: key rotations (retired keys and their successors). */
	"CREATE TABLE key_rotations ("
	"  old_key TEXT PRIMARY KEY,"
	"  new_key TEXT NOT NULL UNIQUE,"
	"  last_seq INTEGER NOT NULL,"
	"  rotated_ms INTEGER NOT NULL,"
	"  statement TEXT NOT NULL,"
	"  sig_old TEXT NOT NULL,"
	"  sig_new TEXT NOT NULL"
	");",
	/* 3 -> 4: per-collection grants (srv_grants); no row: everything. */
	"CREATE TABLE key_grants ("
	"  key TEXT PRIMARY KEY,"
	"  read TEXT NOT NULL,"
	"  write TEXT NOT NULL"
	") WITHOUT ROWID;",
};

#define SRV_DB_NMIGRATIONS \
	(sizeof srv_db_migrations / sizeof srv_db_migrations[0])

#define SRV_DB_ROW_COLS \
	"seq, collection, id, version, op, device, dseq, ts, received_ms," \
	" record, sig"

static const char *const srv_db_sql[SQ_COUNT] = {
	[SQ_BEGIN] = "BEGIN IMMEDIATE",
	[SQ_COMMIT] = "COMMIT",
	[SQ_ROLLBACK] = "ROLLBACK",
	[SQ_DOC_GET] =
	    "SELECT version, deleted, body FROM docs"
	    " WHERE collection = ?1 AND id = ?2",
	[SQ_DOC_STATE] =
	    "SELECT version, deleted FROM docs"
	    " WHERE collection = ?1 AND id = ?2",
	[SQ_DOC_UPSERT] =
	    "INSERT INTO docs (collection, id, version, deleted, body)"
	    " VALUES (?1, ?2, ?3, ?4, ?5)"
	    " ON CONFLICT (collection, id) DO UPDATE SET"
	    " version = excluded.version, deleted = excluded.deleted,"
	    " body = excluded.body",
	[SQ_CHANGE_ADD] =
	    "INSERT INTO changes (collection, id, version, op, device, dseq,"
	    " ts, received_ms, record, sig)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
	[SQ_APPLIED_GET] =
	    "SELECT version, record FROM changes"
	    " WHERE device = ?1 AND dseq = ?2",
	[SQ_CONFLICT_GET] =
	    "SELECT 1 FROM conflicts WHERE device = ?1 AND dseq = ?2",
	[SQ_CONFLICT_ADD] =
	    "INSERT OR IGNORE INTO conflicts (device, dseq) VALUES (?1, ?2)",
	[SQ_CONFLICT_DEL] =
	    "DELETE FROM conflicts WHERE device = ?1 AND dseq = ?2",
	[SQ_MAXSEQ_GET] = "SELECT max_seq FROM devices WHERE device = ?1",
	[SQ_MAXSEQ_SET] =
	    "INSERT INTO devices (device, max_seq) VALUES (?1, ?2)"
	    " ON CONFLICT (device) DO UPDATE SET"
	    " max_seq = max(max_seq, excluded.max_seq)",
	[SQ_CHANGES] =
	    "SELECT " SRV_DB_ROW_COLS " FROM changes"
	    " WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[SQ_HISTORY] =
	    "SELECT " SRV_DB_ROW_COLS " FROM changes"
	    " WHERE collection = ?1 AND id = ?2 AND version > ?3"
	    " ORDER BY version LIMIT ?4",
	[SQ_DATA_VERSION] = "PRAGMA data_version",
	[SQ_REVOKE] =
	    "INSERT INTO revoked_keys (key, revoked_ms, reason)"
	    " VALUES (?1, ?2, ?3) ON CONFLICT (key) DO NOTHING",
	[SQ_UNREVOKE] = "DELETE FROM revoked_keys WHERE key = ?1",
	[SQ_REVOKED] =
	    "SELECT key, revoked_ms, reason FROM revoked_keys ORDER BY key",
	[SQ_KEY_TIMES] =
	    "SELECT key, coalesce(added_ms, 0), coalesce(seen_ms, 0)"
	    " FROM key_info ORDER BY key",
	[SQ_ADDED] =
	    "INSERT INTO key_info (key, added_ms) VALUES (?1, ?2)"
	    " ON CONFLICT (key) DO UPDATE SET"
	    " added_ms = coalesce(added_ms, excluded.added_ms)",
	[SQ_SEEN] =
	    "INSERT INTO key_info (key, seen_ms) VALUES (?1, ?2)"
	    " ON CONFLICT (key) DO UPDATE SET"
	    " seen_ms = max(coalesce(seen_ms, 0), excluded.seen_ms)",
	/* A key retired or succeeding already: nothing (-EEXIST). */
	[SQ_ROTATE] =
	    "INSERT INTO key_rotations (old_key, new_key, last_seq,"
	    " rotated_ms, statement, sig_old, sig_new)"
	    " SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7 WHERE NOT EXISTS"
	    " (SELECT 1 FROM key_rotations WHERE old_key IN (?1, ?2)"
	    " OR new_key = ?2)",
	[SQ_ROTATIONS] =
	    "SELECT old_key, new_key, last_seq, rotated_ms, statement,"
	    " sig_old, sig_new FROM key_rotations ORDER BY rowid",
	[SQ_GRANTS] = "SELECT key, read, write FROM key_grants ORDER BY key",
	[SQ_GRANT_SET] =
	    "INSERT INTO key_grants (key, read, write) VALUES (?1, ?2, ?3)"
	    " ON CONFLICT (key) DO UPDATE SET"
	    " read = excluded.read, write = excluded.write",
	[SQ_GRANT_DEL] = "DELETE FROM key_grants WHERE key = ?1",
};

/* Map an SQLite result code to -errno and remember the message. */
static int
srv_sqlite_fail(struct srv_sqlite *db, int rc)
{
	snprintf(db->errmsg, sizeof db->errmsg, "%s",
	    db->db != NULL ? sqlite3_errmsg(db->db) : sqlite3_errstr(rc));
	return dberr_errno(rc);
}

static const char *
srv_sqlite_errmsg(const struct srv_db *base)
{
	const struct srv_sqlite *db = (const struct srv_sqlite *)base;
	return db->errmsg;
}

static int64_t
srv_sqlite_head(const struct srv_db *base)
{
	const struct srv_sqlite *db = (const struct srv_sqlite *)base;
	return db->head;
}

static int
srv_sqlite_exec(struct srv_sqlite *db, const char *sql)
{
	int rc;

	rc = sqlite3_exec(db->db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return srv_sqlite_fail(db, rc);
	return 0;
}

/* A one-integer query, for set-up. */
static int
srv_sqlite_query_int(struct srv_sqlite *db, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(db->db, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		r = srv_sqlite_fail(db, rc);
		goto out;
	}
	*ret = sqlite3_column_int64(st, 0);
	r = 0;
out:
	sqlite3_finalize(st);
	return r;
}

static int
srv_sqlite_migrate(struct srv_sqlite *db)
{
	int64_t version;
	size_t i;
	int r;

	if ((r = srv_sqlite_query_int(db, "PRAGMA user_version", &version)) < 0)
		return r;
	if (version < 0 || version > (int64_t)SRV_DB_NMIGRATIONS) {
		snprintf(db->errmsg, sizeof db->errmsg,
		    "schema version %lld is newer than this ferry-server "
		    "knows (%zu)", (long long)version, SRV_DB_NMIGRATIONS);
		return -EPROTONOSUPPORT;
	}
	for (i = (size_t)version; i < SRV_DB_NMIGRATIONS; i++) {
		char bump[64];

		snprintf(bump, sizeof bump, "PRAGMA user_version = %zu", i + 1);
		if ((r = srv_sqlite_exec(db, "BEGIN IMMEDIATE")) < 0)
			return r;
		if ((r = srv_sqlite_exec(db, srv_db_migrations[i])) < 0 ||
		    (r = srv_sqlite_exec(db, bump)) < 0 ||
		    (r = srv_sqlite_exec(db, "COMMIT")) < 0) {
			sqlite3_exec(db->db, "ROLLBACK", NULL, NULL, NULL);
			return r;
		}
	}
	return 0;
}

int
srv_db_sqlite_open(const char *path, struct srv_db **ret, char **ret_error)
{
	struct srv_sqlite *db;
	int i, rc, r;

	if ((db = calloc(1, sizeof *db)) == NULL)
		return -ENOMEM;
	db->base.ops = &srv_sqlite_ops;
	db->data_version = -1;
	rc = sqlite3_open_v2(path, &db->db, SQLITE_OPEN_READWRITE |
	    SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = srv_sqlite_fail(db, rc);
		goto fail;
	}
	sqlite3_extended_result_codes(db->db, 1);
	/* Only an outside reader can hold a lock: wait briefly, not long. */
	sqlite3_busy_timeout(db->db, 2000);
	if ((r = srv_sqlite_exec(db, "PRAGMA journal_mode = WAL")) < 0 ||
	    (r = srv_sqlite_exec(db, "PRAGMA synchronous = FULL")) < 0 ||
	    (r = srv_sqlite_exec(db, "PRAGMA cache_size = -16384")) < 0 ||
	    (r = srv_sqlite_exec(db, "PRAGMA temp_store = MEMORY")) < 0)
		goto fail;
	/* Check the file really is a database before migrating it. */
	if ((r = srv_sqlite_exec(db, "SELECT count(*) FROM sqlite_master")) < 0 ||
	    (r = srv_sqlite_migrate(db)) < 0)
		goto fail;
	for (i = 0; i < SQ_COUNT; i++) {
		rc = sqlite3_prepare_v3(db->db, srv_db_sql[i], -1,
		    SQLITE_PREPARE_PERSISTENT, &db->st[i], NULL);
		if (rc != SQLITE_OK) {
			r = srv_sqlite_fail(db, rc);
			goto fail;
		}
	}
	if ((r = srv_sqlite_query_int(db,
	    "SELECT coalesce(max(seq), 0) FROM changes", &db->head)) < 0)
		goto fail;
	db->batch_head = db->head;
	/* The baseline: a revocation after this open is told, even one
	 * that comes before the first request. */
	(void)srv_sqlite_outside_change(&db->base);
	*ret = &db->base;
	return 0;
fail:
	if (ret_error != NULL)
		*ret_error = strdup(db->errmsg);
	srv_sqlite_close(&db->base);
	return r;
}

static void
srv_sqlite_close(struct srv_db *base)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	int i;

	if (db == NULL)
		return;
	if (db->in_batch)
		srv_sqlite_rollback(&db->base);
	for (i = 0; i < SQ_COUNT; i++)
		sqlite3_finalize(db->st[i]);
	/* Closing the last connection checkpoints the WAL into the file. */
	sqlite3_close(db->db);
	free(db);
}

/* Run a statement that returns no rows, then reset it. */
static int
srv_sqlite_step_done(struct srv_sqlite *db, sqlite3_stmt *st)
{
	int rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return srv_sqlite_fail(db, rc);
	return 0;
}

static int
srv_sqlite_begin(struct srv_db *base)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	int r;

	if (db->in_batch)
		return -EALREADY;
	if ((r = srv_sqlite_step_done(db, db->st[SQ_BEGIN])) < 0)
		return r;
	db->in_batch = true;
	db->batch_head = db->head;
	return 0;
}

static int
srv_sqlite_commit(struct srv_db *base)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	int r;

	if (!db->in_batch)
		return -EINVAL;
	if ((r = srv_sqlite_step_done(db, db->st[SQ_COMMIT])) < 0) {
		/* A failed COMMIT may leave the transaction open: end it. */
		srv_sqlite_rollback(&db->base);
		return r;
	}
	db->in_batch = false;
	db->head = db->batch_head;
	return 0;
}

static void
srv_sqlite_rollback(struct srv_db *base)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	if (!sqlite3_get_autocommit(db->db))
		srv_sqlite_step_done(db, db->st[SQ_ROLLBACK]);
	db->in_batch = false;
	db->batch_head = db->head;
}

static int
srv_sqlite_doc_read(struct srv_db *base, const char *collection,
    const char *id, bool with_body, struct srv_doc *ret)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[with_body ? SQ_DOC_GET : SQ_DOC_STATE];
	struct srv_doc d;
	const unsigned char *body;
	int rc, r;

	memset(&d, 0, sizeof d);
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		d.version = sqlite3_column_int64(st, 0);
		d.deleted = sqlite3_column_int(st, 1) != 0;
		body = with_body ? sqlite3_column_text(st, 2) : NULL;
		if (body != NULL && !d.deleted &&
		    (d.body = strdup((const char *)body)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
	} else if (rc != SQLITE_DONE) {
		r = srv_sqlite_fail(db, rc);
		goto out;
	}
	*ret = d;
	r = 0;
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int
srv_sqlite_change_id_get(struct srv_db *base, const char *device, int64_t dseq,
    struct srv_change_id *ret)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_APPLIED_GET];
	struct srv_change_id c;
	const void *blob;
	int rc, r;

	memset(&c, 0, sizeof c);
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, dseq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		c.outcome = SRV_OUTCOME_APPLIED;
		c.version = sqlite3_column_int64(st, 0);
		blob = sqlite3_column_blob(st, 1);
		c.record_len = (size_t)sqlite3_column_bytes(st, 1);
		if ((c.record = malloc(c.record_len + 1)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if (c.record_len > 0)
			memcpy(c.record, blob, c.record_len);
		c.record[c.record_len] = '\0';
	} else if (rc != SQLITE_DONE) {
		r = srv_sqlite_fail(db, rc);
		goto out;
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);

	if (c.outcome == SRV_OUTCOME_NONE) {
		st = db->st[SQ_CONFLICT_GET];
		sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, dseq);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			c.outcome = SRV_OUTCOME_CONFLICT;
		else if (rc != SQLITE_DONE) {
			r = srv_sqlite_fail(db, rc);
			goto out;
		}
	}
	*ret = c;
	memset(&c, 0, sizeof c);
	r = 0;
out:
	srv_change_id_clear(&c);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int
srv_sqlite_max_seq(struct srv_db *base, const char *device, int64_t *ret)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_MAXSEQ_GET];
	int rc, r = 0;

	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else if (rc == SQLITE_DONE)
		*ret = 0;
	else
		r = srv_sqlite_fail(db, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int
srv_sqlite_set_max_seq(struct srv_db *base, const char *device, int64_t dseq)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_MAXSEQ_SET];

	if (!db->in_batch)
		return -EINVAL;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, dseq);
	return srv_sqlite_step_done(db, st);
}

static int
srv_sqlite_apply(struct srv_db *base, const struct srv_apply *a,
    int64_t *ret_seq)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st;
	int r;

	if (!db->in_batch)
		return -EINVAL;

	st = db->st[SQ_DOC_UPSERT];
	sqlite3_bind_text(st, 1, a->collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a->version);
	sqlite3_bind_int(st, 4, a->body == NULL);
	if (a->body != NULL)
		sqlite3_bind_text64(st, 5, a->body, a->body_len, SQLITE_STATIC,
		    SQLITE_UTF8);
	else
		sqlite3_bind_null(st, 5);
	if ((r = srv_sqlite_step_done(db, st)) < 0)
		return r;

	st = db->st[SQ_CHANGE_ADD];
	sqlite3_bind_text(st, 1, a->collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, a->id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, a->version);
	sqlite3_bind_text(st, 4, a->op, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 5, a->device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, a->dseq);
	sqlite3_bind_int64(st, 7, a->ts);
	sqlite3_bind_int64(st, 8, util_now_ms());
	sqlite3_bind_blob64(st, 9, a->record, a->record_len, SQLITE_STATIC);
	sqlite3_bind_text(st, 10, a->sig, -1, SQLITE_STATIC);
	if ((r = srv_sqlite_step_done(db, st)) < 0)
		return r;
	db->batch_head = sqlite3_last_insert_rowid(db->db);
	*ret_seq = db->batch_head;
	return 0;
}

static int
srv_sqlite_forget_conflict(struct srv_db *base, const char *device,
    int64_t dseq)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_CONFLICT_DEL];

	if (!db->in_batch)
		return -EINVAL;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, dseq);
	return srv_sqlite_step_done(db, st);
}

static int
srv_sqlite_note_conflict(struct srv_db *base, const char *device, int64_t dseq)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_CONFLICT_ADD];

	if (!db->in_batch)
		return -EINVAL;
	sqlite3_bind_text(st, 1, device, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, dseq);
	return srv_sqlite_step_done(db, st);
}

/* Step a row query, handing each row to cb.  n rows or -errno. */
static int
srv_sqlite_rows(struct srv_sqlite *db, sqlite3_stmt *st, srv_change_cb cb,
    void *arg)
{
	struct srv_change_row row;
	int rc, r, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&row, 0, sizeof row);
		row.seq = sqlite3_column_int64(st, 0);
		row.collection = (const char *)sqlite3_column_text(st, 1);
		row.id = (const char *)sqlite3_column_text(st, 2);
		row.version = sqlite3_column_int64(st, 3);
		row.op = (const char *)sqlite3_column_text(st, 4);
		row.device = (const char *)sqlite3_column_text(st, 5);
		row.dseq = sqlite3_column_int64(st, 6);
		row.ts = sqlite3_column_int64(st, 7);
		row.received_ms = sqlite3_column_int64(st, 8);
		row.record = sqlite3_column_blob(st, 9);
		row.record_len = (size_t)sqlite3_column_bytes(st, 9);
		row.sig = (const char *)sqlite3_column_text(st, 10);
		if (row.collection == NULL || row.id == NULL ||
		    row.op == NULL || row.device == NULL ||
		    row.record == NULL || row.sig == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = cb(&row, arg)) < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : srv_sqlite_fail(db, rc);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

static int
srv_sqlite_changes(struct srv_db *base, int64_t since, int limit,
    srv_change_cb cb, void *arg)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_CHANGES];

	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int(st, 2, limit);
	return srv_sqlite_rows(db, st, cb, arg);
}

static int
srv_sqlite_history(struct srv_db *base, const char *collection, const char *id,
    int64_t after, int limit, srv_change_cb cb, void *arg)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_HISTORY];

	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, after);
	sqlite3_bind_int(st, 4, limit);
	return srv_sqlite_rows(db, st, cb, arg);
}

/* --- revocations and key times --- */

static int
srv_sqlite_revoke(struct srv_db *base, const char *key, int64_t ms,
    const char *reason)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_REVOKE];
	int r;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ms);
	if (reason != NULL)
		sqlite3_bind_text(st, 3, reason, -1, SQLITE_STATIC);
	if ((r = srv_sqlite_step_done(db, st)) < 0)
		return r;
	return sqlite3_changes(db->db) == 0 ? -EEXIST : 0;
}

static int
srv_sqlite_unrevoke(struct srv_db *base, const char *key)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_UNREVOKE];
	int r;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	if ((r = srv_sqlite_step_done(db, st)) < 0)
		return r;
	return sqlite3_changes(db->db) == 0 ? -ENOENT : 0;
}

/* Rows of (key TEXT, a INTEGER, b INTEGER|TEXT) to one of two callbacks. */
static int
srv_sqlite_key_rows(struct srv_sqlite *db, sqlite3_stmt *st,
    srv_db_revoked_cb revoked, srv_db_times_cb times, void *arg)
{
	const char *key;
	int rc, r, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((key = (const char *)sqlite3_column_text(st, 0)) == NULL) {
			r = -ENOMEM;
			goto out;
		}
		r = revoked != NULL ? revoked(key, sqlite3_column_int64(st, 1),
		    (const char *)sqlite3_column_text(st, 2), arg) :
		    times(key, sqlite3_column_int64(st, 1),
		    sqlite3_column_int64(st, 2), arg);
		if (r < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : srv_sqlite_fail(db, rc);
out:
	sqlite3_reset(st);
	return r;
}

static int
srv_sqlite_revocations(struct srv_db *base, srv_db_revoked_cb cb, void *arg)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;

	return srv_sqlite_key_rows(db, db->st[SQ_REVOKED], cb, NULL, arg);
}

static int
srv_sqlite_key_times(struct srv_db *base, srv_db_times_cb cb, void *arg)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;

	return srv_sqlite_key_rows(db, db->st[SQ_KEY_TIMES], NULL, cb, arg);
}

static int
srv_sqlite_note_added(struct srv_db *base, const char *key, int64_t ms)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_ADDED];

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, ms);
	return srv_sqlite_step_done(db, st);
}

static int
srv_sqlite_seen_write(struct srv_db *base, const struct srv_key_seen *v,
    size_t n)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_SEEN];
	size_t i;
	int r;

	if (db->in_batch)
		return -EBUSY;
	if ((r = srv_sqlite_begin(base)) < 0)
		return r;
	for (i = 0; i < n; i++) {
		sqlite3_bind_text(st, 1, v[i].key, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, v[i].ms);
		if ((r = srv_sqlite_step_done(db, st)) < 0) {
			srv_sqlite_rollback(base);
			return r;
		}
	}
	return srv_sqlite_commit(base);
}

/* --- key rotations --- */

static int
srv_sqlite_rotate(struct srv_db *base, const struct srv_rotation *rot)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_ROTATE];
	int r;

	if (db->in_batch)
		return -EBUSY;
	sqlite3_bind_text(st, 1, rot->old_key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rot->new_key, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rot->seq);
	sqlite3_bind_int64(st, 4, rot->ms);
	sqlite3_bind_text(st, 5, rot->statement, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 6, rot->sig_old, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 7, rot->sig_new, -1, SQLITE_STATIC);
	if ((r = srv_sqlite_step_done(db, st)) < 0)
		return r;
	return sqlite3_changes(db->db) == 0 ? -EEXIST : 0;
}

static int
srv_sqlite_rotations(struct srv_db *base, srv_db_rotation_cb cb, void *arg)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_ROTATIONS];
	struct srv_rotation rot;
	int rc, r, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		rot.old_key = (const char *)sqlite3_column_text(st, 0);
		rot.new_key = (const char *)sqlite3_column_text(st, 1);
		rot.seq = sqlite3_column_int64(st, 2);
		rot.ms = sqlite3_column_int64(st, 3);
		rot.statement = (const char *)sqlite3_column_text(st, 4);
		rot.sig_old = (const char *)sqlite3_column_text(st, 5);
		rot.sig_new = (const char *)sqlite3_column_text(st, 6);
		if (rot.old_key == NULL || rot.new_key == NULL ||
		    rot.statement == NULL || rot.sig_old == NULL ||
		    rot.sig_new == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = cb(&rot, arg)) < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : srv_sqlite_fail(db, rc);
out:
	sqlite3_reset(st);
	return r;
}

/* --- grants --- */

static int
srv_sqlite_grants(struct srv_db *base, srv_db_grant_cb cb, void *arg)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_GRANTS];
	const char *key, *rd, *wr;
	int rc, r, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		key = (const char *)sqlite3_column_text(st, 0);
		rd = (const char *)sqlite3_column_text(st, 1);
		wr = (const char *)sqlite3_column_text(st, 2);
		if (key == NULL || rd == NULL || wr == NULL) {
			r = -ENOMEM;
			goto out;
		}
		if ((r = cb(key, rd, wr, arg)) < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : srv_sqlite_fail(db, rc);
out:
	sqlite3_reset(st);
	return r;
}

static int
srv_sqlite_grant_set(struct srv_db *base, const char *key, const char *rd,
    const char *wr)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st;

	if (rd == NULL) {
		st = db->st[SQ_GRANT_DEL];
		sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
		return srv_sqlite_step_done(db, st);
	}
	st = db->st[SQ_GRANT_SET];
	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, rd, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, wr, -1, SQLITE_STATIC);
	return srv_sqlite_step_done(db, st);
}

/* Another connection (`ferry-server revoke`) committed since last time. */
static bool
srv_sqlite_outside_change(struct srv_db *base)
{
	struct srv_sqlite *db = (struct srv_sqlite *)base;
	sqlite3_stmt *st = db->st[SQ_DATA_VERSION];
	int64_t v;
	bool changed;

	if (sqlite3_step(st) != SQLITE_ROW) {
		/* Cannot tell: say changed, the caller rereads. */
		sqlite3_reset(st);
		return true;
	}
	v = sqlite3_column_int64(st, 0);
	sqlite3_reset(st);
	changed = db->data_version != -1 && v != db->data_version;
	db->data_version = v;
	return changed;
}

static const struct srv_db_ops srv_sqlite_ops = {
	.close = srv_sqlite_close,
	.errmsg = srv_sqlite_errmsg,
	.head = srv_sqlite_head,
	.begin = srv_sqlite_begin,
	.commit = srv_sqlite_commit,
	.rollback = srv_sqlite_rollback,
	.doc_read = srv_sqlite_doc_read,
	.change_id_get = srv_sqlite_change_id_get,
	.max_seq = srv_sqlite_max_seq,
	.set_max_seq = srv_sqlite_set_max_seq,
	.apply = srv_sqlite_apply,
	.note_conflict = srv_sqlite_note_conflict,
	.forget_conflict = srv_sqlite_forget_conflict,
	.changes = srv_sqlite_changes,
	.history = srv_sqlite_history,
	.revoke = srv_sqlite_revoke,
	.unrevoke = srv_sqlite_unrevoke,
	.revocations = srv_sqlite_revocations,
	.key_times = srv_sqlite_key_times,
	.note_added = srv_sqlite_note_added,
	.seen_write = srv_sqlite_seen_write,
	.outside_change = srv_sqlite_outside_change,
	.rotate = srv_sqlite_rotate,
	.rotations = srv_sqlite_rotations,
	.grants = srv_sqlite_grants,
	.grant_set = srv_sqlite_grant_set,
};
