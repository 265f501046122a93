/*
 * store: the SQLite replica; see store.h for the contract.
 *
 * Invariants kept here:
 * - every document row's rev is the rev of its latest change-log entry;
 * - docs.pending is 1 exactly when an unsent outbox intent exists for the
 *   document, and there is at most one unsent intent per document (a partial
 *   unique index; later local writes coalesce into it);
 * - the change log's seq has no gaps: it is an INTEGER PRIMARY KEY assigned
 *   inside the same transaction as the document write;
 * - each document's changes form a chain: docs.last_seq is the seq of its
 *   latest change, and each change's prev the seq of the one before it
 *   (NULL for the first), so one document's log is read by primary key;
 * - a signed record is written once, into signed, when the pusher makes
 *   it: the outbox row names it by change_seq (NULL: not made yet), and
 *   applied holds the version of each one the remote applied.  A record
 *   whose outbox row is dropped unapplied is deleted with it;
 * - a pulled change's row keeps its change id, version, sig and record ts
 *   (the record only when the remote sent it); the body of a revision
 *   whose row is signed is docs.body while it is the latest and moves
 *   into its row (trigger changes_keep_body) when a write replaces it;
 * - a document's base (the body last synced, for merges) is base_body,
 *   unless base_same is 1: then it is body itself and base_body is NULL.
 *   Every statement that changes body without making it the base clears
 *   base_same, copying the old body into base_body first.
 * The in-memory counters mirror the tables; changes made in an open batch
 * are kept apart and folded in only when COMMIT succeeds.
 */
#include "autoconfig.h"

#include <errno.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sqlite3.h>

#include "collset.h"
#include "dberr.h"
#include "jobq.h"
#include "log.h"
#include "store.h"

enum {
	ST_BEGIN,
	ST_COMMIT,
	ST_ROLLBACK,
	ST_SAVEPOINT,
	ST_RELEASE,
	ST_ROLLBACK_TO,
	ST_DOC_GET_W,
	ST_DOC_GET_R,
	ST_DOC_UPSERT,
	ST_OUTBOX_ADD,
	ST_CHANGE_ADD,
	ST_LIST_R,
	ST_LIST_AFTER_R,
	ST_CHANGES_R,
	ST_OLDEST_R,
	ST_META_GET,
	ST_META_SET,
	ST_OUTBOX_INFLIGHT,
	ST_OUTBOX_SENDABLE,
	ST_OUTBOX_SET_RECORD,
	ST_OUTBOX_DELETE,
	ST_OUTBOX_REJECT,
	ST_DOC_SYNCED,
	ST_DOC_CONFLICTED,
	ST_CONFLICT_ADD,
	ST_CONFLICT_OPEN,
	ST_CONFLICT_THEIRS,
	ST_CONFLICT_GET_W,
	ST_CONFLICT_GET_R,
	ST_CONFLICTS_R,
	ST_CONFLICT_DONE,
	ST_DOC_RESOLVE,
	ST_OUTBOX_DROP_DOC,
	ST_REJECTED_R,
	ST_DOC_CHANGES_R,
	ST_DOC_CHANGES_BACK_R,
	ST_OUTBOX_APPLIED,
	ST_APPLIED_ADD,
	ST_SIGNED_ADD,
	ST_SIGNED_DROP_ROW,
	ST_SIGNED_DROP_DOC,
	ST_DOC_REMOTE,
	ST_DOC_BASE_W,
	ST_OUTBOX_HAS,
	ST_OUTBOX_DROP_SENT,
	ST_OUTBOX_INFLIGHT_AFTER,
	ST_OUTBOX_BY_CHANGE,
	ST_PARKED_ADD,
	ST_PARKED_R,
	ST_LOCAL_ONLY_R,
	ST_COUNT
};

/*
 * Checkpoints run on their own thread and connection, so the fsyncs that
 * copy the WAL into the database never stall the event loop (a lib/jobq
 * thread with no loop).  The writer's WAL hook queues a round, unless one
 * is queued already, once the WAL holds STORE_CKPT_PAGES pages
 * (40 MB with 4 KiB pages): under a steady write load the same index and
 * last-leaf pages are rewritten by every commit, and a larger window copies
 * each of them into the database once instead of five times.
 */
#define STORE_CKPT_PAGES	10000

/*
 * The WAL's bound.  A passive checkpoint copies only what was committed
 * when it started, and SQLite starts the WAL over only once everything in
 * it was copied: under a write load that never pauses, the checkpointer
 * never catches up and the file grows for ever (392 MB after 300,000
 * Puts, session 9).  So once the WAL holds STORE_WAL_MAX_PAGES (80 MB),
 * the writer itself, right after a COMMIT, runs a TRUNCATE checkpoint: it
 * is the only writer, so only readers can hold it up, and it waits for
 * them at most STORE_WAL_WAIT_MS; if one holds it longer (a checkpoint in
 * hand, a long read), it tries again when the WAL has grown by another
 * tenth of the bound.  A pause of the writes while the WAL is copied
 * (tens of ms per 10,000 pages here) once per 80 MB written, against a
 * file that grew without limit.
 */
#define STORE_WAL_MAX_PAGES	20000
#define STORE_WAL_WAIT_MS	100

struct store_ckpt {
	struct jobq	*q;		/* one thread, no loop */
	sqlite3		*db;
	atomic_bool	 queued;	/* a checkpoint job is waiting */
	/* Writer thread only: */
	int		 wal_pages;	/* the WAL's size at the last commit */
	int		 wal_limit;	/* truncate from this size on */
	int		 wal_next;	/* ... and after a failure, from this */
	uint64_t	 truncated;	/* truncating checkpoints done */
};

struct store {
	sqlite3		*w;
	sqlite3		*r;
	struct store_ckpt ckpt;
	sqlite3_stmt	*st[ST_COUNT];
	bool		 in_batch;
	/* The writer thread folds a batch into counts at COMMIT while the
	 * loop thread reads them: counts_lock guards counts and commit_gen.
	 * commit_gen is odd from just before a COMMIT until counts hold
	 * it, so a reader can tell whether the replica it read and counts
	 * were the same state (a seqlock; nobody waits on a COMMIT). */
	pthread_mutex_t	 counts_lock;
	struct store_counts counts;	/* committed state */
	uint64_t	 commit_gen;
	struct store_delta delta;	/* open batch */
	int64_t		 batch_head;	/* head seq inside the open batch */
	/* The collections synced (collset), as ferry_synced() sees them on
	 * each connection: each is its own thread's (store_set_synced). */
	char		*synced_w;
	char		*synced_r;
};

/* Each thread reports its own last error (writer and loop thread). */
static __thread char store_errbuf[256];

/*
 * Schema migrations, applied in order; migration i brings user_version from
 * i to i + 1.  Never edit a released entry: add a new one.
 */
static const char *store_migrations[] = {
	/* 0 -> 1: the initial schema. */
	"CREATE TABLE meta ("
	"  key TEXT PRIMARY KEY,"
	"  value TEXT NOT NULL"
	") WITHOUT ROWID;"
	"CREATE TABLE docs ("
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  rev INTEGER NOT NULL,"
	"  version INTEGER NOT NULL DEFAULT 0,"
	"  deleted INTEGER NOT NULL DEFAULT 0,"
	"  pending INTEGER NOT NULL DEFAULT 0,"
	"  conflicted INTEGER NOT NULL DEFAULT 0,"
	"  body TEXT,"
	"  base_body TEXT,"
	"  base_deleted INTEGER NOT NULL DEFAULT 0"
	");"
	"CREATE UNIQUE INDEX docs_key ON docs(collection, id);"
	"CREATE TABLE outbox ("
	"  seq INTEGER PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  rev INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  record BLOB,"
	"  sig TEXT,"
	"  change_seq INTEGER,"
	"  state TEXT NOT NULL DEFAULT 'queued',"
	"  error TEXT"
	");"
	"CREATE UNIQUE INDEX outbox_unsent ON outbox(collection, id)"
	"  WHERE record IS NULL;"
	"CREATE INDEX outbox_doc ON outbox(collection, id);"
	"CREATE INDEX outbox_inflight ON outbox(change_seq)"
	"  WHERE record IS NOT NULL AND state = 'queued';"
	"CREATE TABLE changes ("
	"  seq INTEGER PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  rev INTEGER NOT NULL,"
	"  origin INTEGER NOT NULL,"
	"  ts INTEGER NOT NULL"
	");"
	"CREATE TABLE conflicts ("
	"  conflict_id INTEGER PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  paths TEXT NOT NULL,"
	"  base TEXT,"
	"  mine TEXT,"
	"  theirs TEXT,"
	"  their_version INTEGER NOT NULL,"
	"  their_deleted INTEGER NOT NULL DEFAULT 0,"
	"  created_ms INTEGER NOT NULL,"
	"  resolved_ms INTEGER"
	");"
	"CREATE INDEX conflicts_doc ON conflicts(collection, id);",
	/*
	 * 1 -> 2: outbox seqs are never reused.  A merge drops a record in
	 * flight and queues a new intent; with plain rowids the new row could
	 * take the dropped row's seq, and the late answer to the dropped
	 * record would then be taken for the new one.
	 */
	"CREATE TABLE outbox2 ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  rev INTEGER NOT NULL,"
	"  created_ms INTEGER NOT NULL,"
	"  record BLOB,"
	"  sig TEXT,"
	"  change_seq INTEGER,"
	"  state TEXT NOT NULL DEFAULT 'queued',"
	"  error TEXT"
	");"
	"INSERT INTO outbox2 SELECT seq, collection, id, rev, created_ms,"
	"  record, sig, change_seq, state, error FROM outbox;"
	"DROP TABLE outbox;"
	"ALTER TABLE outbox2 RENAME TO outbox;"
	"CREATE UNIQUE INDEX outbox_unsent ON outbox(collection, id)"
	"  WHERE record IS NULL;"
	"CREATE INDEX outbox_doc ON outbox(collection, id);"
	"CREATE INDEX outbox_inflight ON outbox(change_seq)"
	"  WHERE record IS NOT NULL AND state = 'queued';",
	/*
	 * 2 -> 3: a document whose body is the synced body (every document
	 * a pull brings in) keeps it once: base_same = 1 means the base is
	 * body (base_body is NULL), so a pull writes each body once, not
	 * twice.  A local write copies body into base_body first.
	 */
	"ALTER TABLE docs ADD COLUMN base_same INTEGER NOT NULL DEFAULT 0;",
	/*
	 * 3 -> 4: pulled changes that could not be applied (a body over the
	 * limit, a malformed change, one the replica cannot store) are
	 * parked here with the reason, so that the changes behind them apply.
	 */
	"CREATE TABLE parked ("
	"  seq INTEGER PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  change TEXT,"
	"  reason TEXT NOT NULL,"
	"  created_ms INTEGER NOT NULL"
	");",
	/*
	 * 4 -> 5: History reads one document's change log (ferryctl log
	 * offline); without an index that is a scan of the whole log.
	 */
	"CREATE INDEX changes_doc ON changes(collection, id, seq);",
	/*
	 * 5 -> 6: the signed records of this device's changes the remote
	 * applied, kept when their outbox row goes, so that the local
	 * history can show them verified without the remote.
	 */
	"CREATE TABLE signed ("
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  rev INTEGER NOT NULL,"
	"  version INTEGER NOT NULL,"
	"  record BLOB NOT NULL,"
	"  sig TEXT NOT NULL"
	");"
	"CREATE INDEX signed_doc ON signed(collection, id, rev);",
	/*
	 * 6 -> 7: the change log is chained per document instead of indexed
	 * by name.  Each change row carries prev, the seq of the same
	 * document's previous change (NULL for its first), and each document
	 * row last_seq, its latest change: a write reads one and writes the
	 * other in rows it writes anyway, where changes_doc cost every write
	 * and every pulled change a third B-tree insert (bench/RESULTS.md,
	 * session 8).  The index serves the backfill, then goes.
	 */
	"ALTER TABLE changes ADD COLUMN prev INTEGER;"
	"ALTER TABLE docs ADD COLUMN last_seq INTEGER;"
	"UPDATE changes SET prev = (SELECT max(p.seq) FROM changes p"
	"  WHERE p.collection = changes.collection AND p.id = changes.id"
	"  AND p.seq < changes.seq);"
	"UPDATE docs SET last_seq = (SELECT max(c.seq) FROM changes c"
	"  WHERE c.collection = docs.collection AND c.id = docs.id);"
	"DROP INDEX changes_doc;",
	/*
	 * 7 -> 8: each signed record is written once, where it is made.
	 * Until 7 the outbox row held the record and "applied" copied it
	 * into signed, so every pushed change's ~1.3 KB was written twice
	 * (bench/RESULTS.md, session 8).  Now signed, keyed by the
	 * record's device seq, takes it when the pusher makes it; the
	 * outbox row names it by change_seq (NULL: not made yet, what
	 * record IS NULL meant), and "applied" adds a small row to
	 * applied.  Records already applied keep theirs under the seq
	 * they carry (one without a seq cannot be keyed, and is dropped).
	 */
	"CREATE TABLE signed2 ("
	"  change_seq INTEGER PRIMARY KEY,"
	"  collection TEXT NOT NULL,"
	"  id TEXT NOT NULL,"
	"  rev INTEGER NOT NULL,"
	"  record BLOB NOT NULL,"
	"  sig TEXT NOT NULL"
	");"
	"CREATE TABLE applied ("
	"  change_seq INTEGER PRIMARY KEY,"
	"  version INTEGER NOT NULL"
	");"
	"INSERT INTO signed2 SELECT change_seq, collection, id, rev, record,"
	"  sig FROM outbox WHERE record IS NOT NULL AND change_seq IS NOT NULL;"
	"CREATE TEMP TABLE signed_seq AS SELECT"
	"  json_extract(CAST(record AS TEXT), '$.seq') AS change_seq, * FROM"
	"  signed WHERE json_valid(CAST(record AS TEXT));"
	"INSERT OR IGNORE INTO signed2 SELECT change_seq, collection, id, rev,"
	"  record, sig FROM temp.signed_seq"
	"  WHERE typeof(change_seq) = 'integer';"
	"INSERT OR IGNORE INTO applied SELECT change_seq, version"
	"  FROM temp.signed_seq WHERE typeof(change_seq) = 'integer';"
	"DROP TABLE temp.signed_seq;"
	"DROP TABLE signed;"
	"ALTER TABLE signed2 RENAME TO signed;"
	"CREATE INDEX signed_doc ON signed(collection, id, rev);"
	"DROP INDEX outbox_unsent;"
	"DROP INDEX outbox_inflight;"
	"ALTER TABLE outbox DROP COLUMN record;"
	"ALTER TABLE outbox DROP COLUMN sig;"
	"CREATE UNIQUE INDEX outbox_unsent ON outbox(collection, id)"
	"  WHERE change_seq IS NULL;"
	"CREATE INDEX outbox_inflight ON outbox(change_seq)"
	"  WHERE change_seq IS NOT NULL AND state = 'queued';",
	/*
	 * 8 -> 9: a pulled change keeps what is needed to check its signed
	 * record later (History, ferryctl log offline), never at pull time
	 * (a verification costs more than applying the change): its change
	 * id as the device's key (32 bytes) and seq (dseq), the version it
	 * made, the record's sig (64 bytes) and ts (rts; ts is when it was
	 * applied here), and the record's text only when the remote sent
	 * it (a record not in record_make's layout).  Keys and signatures
	 * are kept as bytes, not base64: every pulled change pays for them
	 * (issue 8's bench bound).  The body of the revision is docs.body while it is the
	 * document's latest; the trigger moves it into its change row when
	 * a write (of any kind) replaces it, and only then: a pulled
	 * document that is not written again costs one row, as before.
	 * This device's own changes keep their records in signed/applied.
	 */
	"ALTER TABLE changes ADD COLUMN device BLOB;"
	"ALTER TABLE changes ADD COLUMN dseq INTEGER;"
	"ALTER TABLE changes ADD COLUMN version INTEGER;"
	"ALTER TABLE changes ADD COLUMN sig BLOB;"
	"ALTER TABLE changes ADD COLUMN rts INTEGER;"
	"ALTER TABLE changes ADD COLUMN record BLOB;"
	"ALTER TABLE changes ADD COLUMN body TEXT;"
	"CREATE TRIGGER changes_keep_body AFTER UPDATE OF body ON docs"
	"  WHEN old.body IS NOT NULL AND old.last_seq IS NOT NULL"
	"  AND new.last_seq IS NOT old.last_seq BEGIN"
	"  UPDATE changes SET body = old.body WHERE seq = old.last_seq"
	"  AND sig IS NOT NULL AND record IS NULL;"
	"  END;",
};

#define STORE_NMIGRATIONS \
	(sizeof store_migrations / sizeof store_migrations[0])

/* The body last synced (see migration 2 -> 3). */
#define STORE_BASE_BODY	"CASE WHEN base_same THEN body ELSE base_body END"

/*
 * A document's change chain from the change FROM (an SQL expression over
 * docs) back through prev, at most ?3 entries, in seq ORDER.  A signed
 * change's record is this device's (signed, once applied) or a pulled
 * one's (the change row's own columns); the body of a revision is
 * docs.body while it is the latest, then the one its change row kept
 * (migration 8 -> 9).
 */
#define DOC_CHANGES_SQL(from, order)					\
	"WITH RECURSIVE chain(seq) AS ("				\
	" SELECT " from " FROM docs WHERE collection = ?1 AND id = ?2"	\
	" UNION ALL SELECT c.prev FROM chain JOIN changes c"		\
	" ON c.seq = chain.seq WHERE c.prev IS NOT NULL LIMIT ?3)"	\
	" SELECT c.seq, c.rev, c.origin, c.ts,"				\
	" coalesce(a.version, c.version), coalesce(s.record, c.record),"	\
	" s.sig, c.sig, c.device, c.dseq, c.rts,"			\
	" CASE WHEN c.seq = d.last_seq THEN d.body ELSE c.body END,"	\
	" c.prev"							\
	" FROM chain JOIN changes c ON c.seq = chain.seq"		\
	" JOIN docs d ON d.collection = ?1 AND d.id = ?2"		\
	" LEFT JOIN signed s ON s.collection = c.collection"		\
	" AND s.id = c.id AND s.rev = c.rev"				\
	" AND c.origin <> 1"	/* STORE_ORIGIN_REMOTE: not ours */	\
	" AND EXISTS (SELECT 1 FROM applied x"				\
	"  WHERE x.change_seq = s.change_seq)"				\
	" LEFT JOIN applied a ON a.change_seq = s.change_seq"		\
	" ORDER BY c.seq" order

static const struct {
	int		 conn;	/* 0 writer, 1 reader */
	const char	*sql;
} store_sql[ST_COUNT] = {
	[ST_BEGIN] = { 0, "BEGIN IMMEDIATE" },
	[ST_COMMIT] = { 0, "COMMIT" },
	[ST_ROLLBACK] = { 0, "ROLLBACK" },
	[ST_SAVEPOINT] = { 0, "SAVEPOINT op" },
	[ST_RELEASE] = { 0, "RELEASE op" },
	[ST_ROLLBACK_TO] = { 0, "ROLLBACK TO op" },
	[ST_DOC_GET_W] = { 0,
	    "SELECT rev, version, deleted, pending, conflicted, body"
	    " FROM docs WHERE collection = ?1 AND id = ?2" },
	[ST_DOC_GET_R] = { 1,
	    "SELECT rev, version, deleted, pending, conflicted, body"
	    " FROM docs WHERE collection = ?1 AND id = ?2" },
	[ST_DOC_UPSERT] = { 0,
	    "INSERT INTO docs (collection, id, rev, deleted, pending, body,"
	    " last_seq) VALUES (?1, ?2, ?3, ?4, 1, ?5, ?6)"
	    " ON CONFLICT (collection, id) DO UPDATE SET rev = excluded.rev,"
	    " deleted = excluded.deleted, pending = 1, body = excluded.body,"
	    " base_body = CASE WHEN base_same THEN body ELSE base_body END,"
	    " base_same = 0, last_seq = excluded.last_seq" },
	[ST_OUTBOX_ADD] = { 0,
	    "INSERT INTO outbox (collection, id, rev, created_ms)"
	    " VALUES (?1, ?2, ?3, ?4)"
	    " ON CONFLICT (collection, id) WHERE change_seq IS NULL"
	    " DO UPDATE SET rev = excluded.rev" },
	/* Chained to the document's previous change (migration 6 -> 7);
	 * the document row written next takes the new seq as last_seq. */
	[ST_CHANGE_ADD] = { 0,
	    "INSERT INTO changes (collection, id, rev, origin, ts, prev,"
	    " device, dseq, version, sig, rts, record)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, (SELECT last_seq FROM docs"
	    " WHERE collection = ?1 AND id = ?2), ?6, ?7, ?8, ?9, ?10, ?11)" },
	[ST_LIST_R] = { 1,
	    "SELECT id, rev, version, deleted, pending, conflicted, body"
	    " FROM docs WHERE collection = ?1 AND deleted = 0 ORDER BY id"
	    " LIMIT ?2" },
	[ST_LIST_AFTER_R] = { 1,
	    "SELECT id, rev, version, deleted, pending, conflicted, body"
	    " FROM docs WHERE collection = ?1 AND id > ?3 AND deleted = 0"
	    " ORDER BY id"
	    " LIMIT ?2" },
	[ST_CHANGES_R] = { 1,
	    "SELECT c.seq, c.collection, c.id, c.rev, c.origin,"
	    " d.version, d.deleted, d.rev, d.body"
	    " FROM changes c LEFT JOIN docs d"
	    " ON d.collection = c.collection AND d.id = c.id"
	    " WHERE c.seq > ?1 ORDER BY c.seq LIMIT ?2" },
	/* What pending counts (documents with a local change the remote
	 * has not taken) is in the outbox, queued or rejected, or, for a
	 * document in conflict, whose outbox row is gone, in conflicts. */
	/*
	 * The oldest pending change: the first outbox row (any state) or
	 * open conflict, each found by its primary key, never by a scan:
	 * Status and every batch's status ask for it.
	 */
	[ST_OLDEST_R] = { 1,
	    "SELECT min(t) FROM ("
	    "SELECT * FROM (SELECT created_ms AS t FROM outbox"
	    " ORDER BY seq LIMIT 1)"
	    " UNION ALL SELECT * FROM (SELECT created_ms FROM conflicts"
	    " WHERE resolved_ms IS NULL ORDER BY conflict_id LIMIT 1))" },
	[ST_META_GET] = { 0, "SELECT value FROM meta WHERE key = ?1" },
	[ST_META_SET] = { 0,
	    "INSERT INTO meta (key, value) VALUES (?1, ?2)"
	    " ON CONFLICT (key) DO UPDATE SET value = excluded.value" },
	/*
	 * What the pusher may send, in two parts so that neither sorts the
	 * outbox: records already made and not yet answered, re-sent first in
	 * the order of their device seq (a small partial index); then new
	 * intents in outbox order, skipping documents that wait for a
	 * conflict or have a record in flight (at most one change per
	 * document in flight).
	 */
	[ST_OUTBOX_INFLIGHT] = { 0,
	    "SELECT o.seq, o.collection, o.id, s.record, s.sig, d.version,"
	    " d.deleted, d.body, o.change_seq FROM outbox o"
	    " JOIN signed s ON s.change_seq = o.change_seq JOIN docs d"
	    " ON d.collection = o.collection AND d.id = o.id"
	    " WHERE o.change_seq IS NOT NULL AND o.state = 'queued'"
	    " AND d.conflicted = 0 ORDER BY o.change_seq LIMIT ?1" },
	[ST_OUTBOX_SENDABLE] = { 0,
	    "SELECT o.seq, o.collection, o.id, NULL, NULL, d.version,"
	    " d.deleted, d.body, o.change_seq FROM outbox o JOIN docs d"
	    " ON d.collection = o.collection AND d.id = o.id"
	    " WHERE o.change_seq IS NULL AND o.state = 'queued'"
	    " AND ferry_synced(o.collection)"
	    " AND d.conflicted = 0 AND NOT EXISTS (SELECT 1 FROM outbox o2"
	    "  WHERE o2.collection = o.collection AND o2.id = o.id"
	    "  AND o2.state = 'queued' AND o2.change_seq IS NOT NULL)"
	    " ORDER BY o.seq LIMIT ?1" },
	/* A record made: kept in signed, named by the outbox row. */
	[ST_SIGNED_ADD] = { 0,
	    "INSERT INTO signed (change_seq, collection, id, rev, record, sig)"
	    " SELECT ?2, collection, id, rev, ?3, ?4 FROM outbox"
	    " WHERE seq = ?1" },
	[ST_OUTBOX_SET_RECORD] = { 0,
	    "UPDATE outbox SET change_seq = ?2 WHERE seq = ?1" },
	/* A record never applied goes with its outbox row (migration
	 * 7 -> 8); the two statements below run before the rows go. */
	[ST_SIGNED_DROP_ROW] = { 0,
	    "DELETE FROM signed WHERE change_seq ="
	    " (SELECT change_seq FROM outbox WHERE seq = ?1)" },
	[ST_SIGNED_DROP_DOC] = { 0,
	    "DELETE FROM signed WHERE change_seq IN (SELECT change_seq"
	    " FROM outbox WHERE collection = ?1 AND id = ?2"
	    " AND state = 'queued' AND change_seq IS NOT NULL)" },
	[ST_OUTBOX_DELETE] = { 0, "DELETE FROM outbox WHERE seq = ?1" },
	[ST_OUTBOX_REJECT] = { 0,
	    "UPDATE outbox SET state = 'rejected', error = ?2 WHERE seq = ?1" },
	/* After a push: the server's version and the synced body; pending
	 * stays while another intent for the document is queued. */
	[ST_DOC_SYNCED] = { 0,
	    "UPDATE docs SET version = max(version, ?3),"
	    " base_body = CASE WHEN ?3 >= version THEN ?4 ELSE base_body END,"
	    " base_deleted = CASE WHEN ?3 >= version THEN ?5"
	    "  ELSE base_deleted END,"
	    " base_same = CASE WHEN ?3 >= version THEN 0 ELSE base_same END,"
	    " pending = EXISTS (SELECT 1 FROM outbox o"
	    "  WHERE o.collection = ?1 AND o.id = ?2 AND o.state = 'queued')"
	    " WHERE collection = ?1 AND id = ?2"
	    " RETURNING pending" },
	[ST_DOC_CONFLICTED] = { 0,
	    "UPDATE docs SET conflicted = 1 WHERE collection = ?1 AND id = ?2"
	    " RETURNING body, " STORE_BASE_BODY ", base_deleted, deleted" },
	[ST_CONFLICT_ADD] = { 0,
	    "INSERT INTO conflicts (collection, id, paths, base, mine, theirs,"
	    " their_version, their_deleted, created_ms)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)" },
	[ST_CONFLICT_OPEN] = { 0,
	    "SELECT conflict_id FROM conflicts WHERE collection = ?1"
	    " AND id = ?2 AND resolved_ms IS NULL" },
	/* A newer state of theirs for a conflict already open. */
	[ST_CONFLICT_THEIRS] = { 0,
	    "UPDATE conflicts SET theirs = ?2, their_version = ?3,"
	    " their_deleted = ?4, paths = coalesce(?5, paths)"
	    " WHERE conflict_id = ?1 AND their_version < ?3" },
#define CONFLICT_COLS "conflict_id, collection, id, paths, base, mine," \
	" theirs, their_version, their_deleted, created_ms"
	[ST_CONFLICT_GET_W] = { 0, "SELECT " CONFLICT_COLS " FROM conflicts"
	    " WHERE conflict_id = ?1 AND resolved_ms IS NULL" },
	[ST_CONFLICT_GET_R] = { 1, "SELECT " CONFLICT_COLS " FROM conflicts"
	    " WHERE conflict_id = ?1 AND resolved_ms IS NULL" },
	[ST_CONFLICTS_R] = { 1, "SELECT " CONFLICT_COLS " FROM conflicts"
	    " WHERE resolved_ms IS NULL ORDER BY conflict_id LIMIT ?1" },
	[ST_CONFLICT_DONE] = { 0, "UPDATE conflicts SET resolved_ms = ?2"
	    " WHERE conflict_id = ?1" },
	[ST_DOC_RESOLVE] = { 0,
	    "UPDATE docs SET rev = ?3, body = ?4, deleted = ?5, version = ?6,"
	    " base_body = ?7, base_deleted = ?8, base_same = 0, conflicted = 0,"
	    " pending = ?9, last_seq = ?10"
	    " WHERE collection = ?1 AND id = ?2" },
	[ST_OUTBOX_DROP_DOC] = { 0,
	    "DELETE FROM outbox WHERE collection = ?1 AND id = ?2"
	    " AND state = 'queued'" },
	[ST_REJECTED_R] = { 1,
	    "SELECT collection, id, error FROM outbox WHERE state = 'rejected'"
	    " ORDER BY seq LIMIT ?1" },
	/*
	 * One document's latest ?3 changes: the chain from the document's
	 * last_seq back through prev, each step a primary-key lookup, then
	 * in seq order.  The same walked back from change ?4 (NULL: the
	 * latest), newest first, each row with its prev for the next walk.
	 */
	[ST_DOC_CHANGES_R] = { 1, DOC_CHANGES_SQL("last_seq", "") },
	[ST_DOC_CHANGES_BACK_R] = { 1,
	    DOC_CHANGES_SQL("coalesce(?4, last_seq)", " DESC") },
	[ST_OUTBOX_APPLIED] = { 0,
	    "DELETE FROM outbox WHERE seq = ?1 RETURNING change_seq" },
	[ST_APPLIED_ADD] = { 0,
	    "INSERT INTO applied (change_seq, version) VALUES (?1, ?2)"
	    " ON CONFLICT (change_seq)"
	    " DO UPDATE SET version = excluded.version" },
	/* A remote change applied to a document with no local change: the
	 * body is the synced body, stored once. */
	[ST_DOC_REMOTE] = { 0,
	    "INSERT INTO docs (collection, id, rev, version, deleted, pending,"
	    " body, base_body, base_deleted, base_same, last_seq)"
	    " VALUES (?1, ?2, ?3, ?4, ?5, 0, ?6, NULL, ?5, 1, ?7)"
	    " ON CONFLICT (collection, id) DO UPDATE SET rev = excluded.rev,"
	    " version = excluded.version, deleted = excluded.deleted,"
	    " body = excluded.body, base_body = NULL,"
	    " base_deleted = excluded.deleted, base_same = 1,"
	    " last_seq = excluded.last_seq" },
	[ST_DOC_BASE_W] = { 0,
	    "SELECT " STORE_BASE_BODY ", base_deleted FROM docs"
	    " WHERE collection = ?1 AND id = ?2" },
	[ST_OUTBOX_DROP_SENT] = { 0,
	    "DELETE FROM outbox WHERE collection = ?1 AND id = ?2"
	    " AND state = 'queued' AND change_seq IS NOT NULL" },
	[ST_OUTBOX_HAS] = { 0,
	    "SELECT 1 FROM outbox WHERE seq = ?1 AND state = 'queued'" },
	/* Records made and not answered whose device seq is above ?2: those
	 * not yet handed to a request, when the pusher prepares ahead. */
	[ST_OUTBOX_INFLIGHT_AFTER] = { 0,
	    "SELECT o.seq, o.collection, o.id, s.record, s.sig, d.version,"
	    " d.deleted, d.body, o.change_seq FROM outbox o"
	    " JOIN signed s ON s.change_seq = o.change_seq JOIN docs d"
	    " ON d.collection = o.collection AND d.id = o.id"
	    " WHERE o.change_seq > ?2 AND o.state = 'queued'"
	    " AND d.conflicted = 0 ORDER BY o.change_seq LIMIT ?1" },
	/* The record in flight that a device seq names (a change of ours
	 * the pull brought back). */
	[ST_OUTBOX_BY_CHANGE] = { 0,
	    "SELECT seq FROM outbox WHERE change_seq = ?3"
	    " AND state = 'queued' AND collection = ?1 AND id = ?2" },
	[ST_PARKED_ADD] = { 0,
	    "INSERT INTO parked (collection, id, version, change, reason,"
	    " created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)" },
	[ST_PARKED_R] = { 1,
	    "SELECT collection, id, version, change, reason, created_ms"
	    " FROM parked ORDER BY seq LIMIT ?1" },
	/* Changes of collections that are not synced: they stay here. */
	[ST_LOCAL_ONLY_R] = { 1,
	    "SELECT count(*) FROM outbox WHERE state = 'queued'"
	    " AND NOT ferry_synced(collection)" },
};

const char *
store_origin_name(enum store_origin o)
{
	switch (o) {
	case STORE_ORIGIN_LOCAL:
		return "local";
	case STORE_ORIGIN_REMOTE:
		return "remote";
	case STORE_ORIGIN_MERGE:
		return "merge";
	case STORE_ORIGIN_RESOLVE:
		return "resolve";
	}
	return "local";
}

/* Map an SQLite result code to -errno and remember the message. */
static int
store_fail(struct store *s, sqlite3 *db, int rc)
{
	snprintf(store_errbuf, sizeof store_errbuf, "%s",
	    db != NULL ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
	return dberr_errno(rc);
}

const char *
store_errmsg(const struct store *s)
{
	(void)s;
	return store_errbuf;
}

static int
store_exec(struct store *s, sqlite3 *db, const char *sql)
{
	int rc;

	rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, db, rc);
	return 0;
}

static int
store_migrate(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int version, r;
	size_t i;

	if (sqlite3_prepare_v2(s->w, "PRAGMA user_version", -1, &st,
	    NULL) != SQLITE_OK || sqlite3_step(st) != SQLITE_ROW) {
		r = store_fail(s, s->w, sqlite3_errcode(s->w));
		sqlite3_finalize(st);
		return r;
	}
	version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	if (version > (int)STORE_NMIGRATIONS) {
		snprintf(store_errbuf, sizeof store_errbuf,
		    "replica schema version %d is newer than this ferryd "
		    "knows (%zu)", version, STORE_NMIGRATIONS);
		return -EPROTONOSUPPORT;
	}
	for (i = version; i < STORE_NMIGRATIONS; i++) {
		char bump[64];

		snprintf(bump, sizeof bump, "PRAGMA user_version = %zu", i + 1);
		if ((r = store_exec(s, s->w, "BEGIN IMMEDIATE")) < 0)
			return r;
		if ((r = store_exec(s, s->w, store_migrations[i])) < 0 ||
		    (r = store_exec(s, s->w, bump)) < 0 ||
		    (r = store_exec(s, s->w, "COMMIT")) < 0) {
			sqlite3_exec(s->w, "ROLLBACK", NULL, NULL, NULL);
			return r;
		}
	}
	return 0;
}

static int
store_count_query(struct store *s, const char *sql, int64_t *ret)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(s->w, sql, -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	if (rc != SQLITE_ROW) {
		rc = store_fail(s, s->w, rc);
		sqlite3_finalize(st);
		return rc;
	}
	*ret = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	return 0;
}

/* Load the counters once at open; from then on they are kept by writes. */
static int
store_load_counts(struct store *s)
{
	int r;

	if ((r = store_count_query(s,
	    "SELECT count(*) FROM docs WHERE deleted = 0",
	    &s->counts.docs)) < 0 ||
	    (r = store_count_query(s,
	    "SELECT count(*) FROM docs WHERE pending = 1",
	    &s->counts.pending)) < 0 ||
	    (r = store_count_query(s,
	    "SELECT count(*) FROM conflicts WHERE resolved_ms IS NULL",
	    &s->counts.conflicts)) < 0 ||
	    (r = store_count_query(s,
	    "SELECT count(*) FROM outbox WHERE state = 'rejected'",
	    &s->counts.rejected)) < 0 ||
	    (r = store_count_query(s, "SELECT count(*) FROM parked",
	    &s->counts.parked)) < 0 ||
	    (r = store_count_query(s,
	    "SELECT coalesce(max(seq), 0) FROM changes",
	    &s->counts.head_seq)) < 0)
		return r;
	return 0;
}

static int
store_open_conn(struct store *s, const char *path, bool reader, sqlite3 **ret)
{
	sqlite3 *db = NULL;
	int flags, rc, r;

	flags = SQLITE_OPEN_NOMUTEX | (reader ? SQLITE_OPEN_READWRITE :
	    SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
	rc = sqlite3_open_v2(path, &db, flags, NULL);
	if (rc != SQLITE_OK) {
		r = store_fail(s, db, rc);
		sqlite3_close(db);
		return r;
	}
	sqlite3_extended_result_codes(db, 1);
	/* A writer blocked on a checkpoint should wait briefly, not fail. */
	sqlite3_busy_timeout(db, 5000);
	if ((r = store_exec(s, db, "PRAGMA journal_mode = WAL")) < 0 ||
	    (r = store_exec(s, db, "PRAGMA synchronous = FULL")) < 0 ||
	    (r = store_exec(s, db, "PRAGMA foreign_keys = ON")) < 0 ||
	    (r = store_exec(s, db, "PRAGMA cache_size = -8192")) < 0 ||
	    (r = store_exec(s, db, reader ? "PRAGMA query_only = 1" :
	    "PRAGMA temp_store = MEMORY")) < 0) {
		sqlite3_close(db);
		return r;
	}
	*ret = db;
	return 0;
}

/* Checkpoint thread: copy what it can without blocking the writer. */
static void
store_ckpt_run(void *arg, size_t i)
{
	struct store_ckpt *c = arg;
	int log, done;

	/* Cleared first: a hook firing from now on queues another round. */
	atomic_store(&c->queued, false);
	sqlite3_wal_checkpoint_v2(c->db, NULL, SQLITE_CHECKPOINT_PASSIVE,
	    &log, &done);
}

/* Writer thread, after a commit: wake the checkpointer once the WAL is
 * large; a round already queued covers this one. */
static int
store_wal_hook(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct store_ckpt *c = arg;

	c->wal_pages = pages;
	if (pages >= STORE_CKPT_PAGES && !atomic_exchange(&c->queued, true) &&
	    jobq_submit(c->q, NULL, store_ckpt_run, NULL, NULL, c) < 0)
		atomic_store(&c->queued, false);	/* next commit retries */
	return SQLITE_OK;
}

/* Writer thread, after a COMMIT: hold the WAL to its bound (see
 * STORE_WAL_MAX_PAGES).  Failing is not an error: the WAL stays. */
static void
store_wal_bound(struct store *s)
{
	struct store_ckpt *c = &s->ckpt;
	int rc, log = -1, done = -1;

	if (c->q == NULL || c->wal_pages < c->wal_next)
		return;
	sqlite3_busy_timeout(s->w, STORE_WAL_WAIT_MS);
	rc = sqlite3_wal_checkpoint_v2(s->w, NULL, SQLITE_CHECKPOINT_TRUNCATE,
	    &log, &done);
	sqlite3_busy_timeout(s->w, 5000);
	if (rc == SQLITE_OK) {
		c->wal_pages = 0;
		c->wal_next = c->wal_limit;
		c->truncated++;
		return;
	}
	c->wal_next = c->wal_pages + c->wal_limit / 10 + 1;
	log_warn("store: the WAL holds %d pages and could not be truncated "
	    "(%s); trying again at %d", c->wal_pages, sqlite3_errstr(rc),
	    c->wal_next);
}

void
store_set_wal_limit(struct store *s, int pages)
{
	s->ckpt.wal_limit = s->ckpt.wal_next = pages > 0 ? pages :
	    STORE_WAL_MAX_PAGES;
}

uint64_t
store_wal_truncations(const struct store *s)
{
	return s->ckpt.truncated;
}

static int
store_ckpt_start(struct store *s, const char *path)
{
	struct store_ckpt *c = &s->ckpt;
	int r;

	if ((r = store_open_conn(s, path, true, &c->db)) < 0)
		return r;
	/* The checkpointer writes the database file: not query_only. */
	if ((r = store_exec(s, c->db, "PRAGMA query_only = 0")) < 0)
		return r;
	if ((r = jobq_new(NULL, 1, &c->q)) < 0) {
		snprintf(store_errbuf, sizeof store_errbuf,
		    "cannot start the checkpoint thread: %s", strerror(-r));
		return r;
	}
	/* From now on the writer never checkpoints in the loop itself. */
	if ((r = store_exec(s, s->w, "PRAGMA wal_autocheckpoint = 0")) < 0)
		return r;
	c->wal_limit = c->wal_next = STORE_WAL_MAX_PAGES;
	sqlite3_wal_hook(s->w, store_wal_hook, c);
	return 0;
}

static void
store_ckpt_stop(struct store *s)
{
	struct store_ckpt *c = &s->ckpt;

	if (c->q != NULL) {
		sqlite3_wal_hook(s->w, NULL, NULL);
		/* A round in hand finishes; a queued one is dropped. */
		jobq_free(c->q);
		c->q = NULL;
	}
	sqlite3_close(c->db);
	c->db = NULL;
}

/* SQL ferry_synced(collection): is it in the set *slot points at? */
static void
store_synced_fn(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	char **slot = sqlite3_user_data(ctx);
	const char *c = (const char *)sqlite3_value_text(argv[0]);

	(void)argc;
	sqlite3_result_int(ctx, c != NULL && collset_has(*slot, c));
}

static int
store_synced_register(struct store *s, sqlite3 *db, char **slot)
{
	int rc;

	rc = sqlite3_create_function(db, "ferry_synced", 1, SQLITE_UTF8,
	    slot, store_synced_fn, NULL, NULL);
	return rc == SQLITE_OK ? 0 : store_fail(s, db, rc);
}

int
store_set_synced(struct store *s, bool writer, const char *set)
{
	char **slot = writer ? &s->synced_w : &s->synced_r, *copy = NULL;

	if (set != NULL && (copy = strdup(set)) == NULL)
		return -ENOMEM;
	free(*slot);
	*slot = copy;
	return 0;
}

int
store_local_only(struct store *s, int64_t *ret)
{
	sqlite3_stmt *st = s->st[ST_LOCAL_ONLY_R];
	int rc, r = 0;

	if (collset_all(s->synced_r)) {
		*ret = 0;
		return 0;
	}
	if ((rc = sqlite3_step(st)) == SQLITE_ROW)
		*ret = sqlite3_column_int64(st, 0);
	else
		r = store_fail(s, s->r, rc);
	sqlite3_reset(st);
	return r;
}

int
store_open(const char *path, struct store **ret, char **ret_error)
{
	struct store *s;
	int i, rc, r;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&s->counts_lock, NULL);
	store_errbuf[0] = '\0';
	if ((r = store_open_conn(s, path, false, &s->w)) < 0 ||
	    (r = store_synced_register(s, s->w, &s->synced_w)) < 0)
		goto fail;
	/* Check the file really is a database before migrating it. */
	if ((r = store_exec(s, s->w, "SELECT count(*) FROM sqlite_master"))
	    < 0)
		goto fail;
	if ((r = store_migrate(s)) < 0)
		goto fail;
	if ((r = store_open_conn(s, path, true, &s->r)) < 0 ||
	    (r = store_synced_register(s, s->r, &s->synced_r)) < 0)
		goto fail;
	for (i = 0; i < ST_COUNT; i++) {
		sqlite3 *db = store_sql[i].conn ? s->r : s->w;

		rc = sqlite3_prepare_v3(db, store_sql[i].sql, -1,
		    SQLITE_PREPARE_PERSISTENT, &s->st[i], NULL);
		if (rc != SQLITE_OK) {
			r = store_fail(s, db, rc);
			goto fail;
		}
	}
	if ((r = store_load_counts(s)) < 0)
		goto fail;
	if ((r = store_ckpt_start(s, path)) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	if (ret_error != NULL)
		*ret_error = strdup(store_errbuf);
	store_close(s);
	return r;
}

void
store_close(struct store *s)
{
	int i;

	if (s == NULL)
		return;
	if (s->in_batch)
		store_rollback(s);
	store_ckpt_stop(s);
	for (i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(s->st[i]);
	/* Closing the last connection checkpoints the WAL into the file. */
	sqlite3_close(s->r);
	sqlite3_close(s->w);
	pthread_mutex_destroy(&s->counts_lock);
	free(s->synced_w);
	free(s->synced_r);
	free(s);
}

/* Run a statement that returns no rows, then reset it. */
static int
store_step_done(struct store *s, sqlite3_stmt *st)
{
	int rc;

	rc = sqlite3_step(st);
	sqlite3_reset(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, sqlite3_db_handle(st), rc);
	return 0;
}

int
store_begin(struct store *s)
{
	int r;

	if (s->in_batch)
		return -EALREADY;
	if ((r = store_step_done(s, s->st[ST_BEGIN])) < 0)
		return r;
	s->in_batch = true;
	memset(&s->delta, 0, sizeof s->delta);
	s->batch_head = store_head(s);
	return 0;
}

int
store_commit(struct store *s)
{
	int r;

	if (!s->in_batch)
		return -EINVAL;
	pthread_mutex_lock(&s->counts_lock);
	s->commit_gen++;		/* odd: the replica runs ahead */
	pthread_mutex_unlock(&s->counts_lock);
	if ((r = store_step_done(s, s->st[ST_COMMIT])) < 0) {
		/* A failed COMMIT may leave the transaction open: end it. */
		store_rollback(s);
		pthread_mutex_lock(&s->counts_lock);
		s->commit_gen++;
		pthread_mutex_unlock(&s->counts_lock);
		return r;
	}
	s->in_batch = false;
	pthread_mutex_lock(&s->counts_lock);
	s->commit_gen++;
	s->counts.docs += s->delta.docs;
	s->counts.pending += s->delta.pending;
	s->counts.conflicts += s->delta.conflicts;
	s->counts.rejected += s->delta.rejected;
	s->counts.parked += s->delta.parked;
	s->counts.head_seq = s->batch_head;
	pthread_mutex_unlock(&s->counts_lock);
	store_wal_bound(s);
	return 0;
}

void
store_rollback(struct store *s)
{
	if (!sqlite3_get_autocommit(s->w))
		store_step_done(s, s->st[ST_ROLLBACK]);
	s->in_batch = false;
	memset(&s->delta, 0, sizeof s->delta);
	s->batch_head = store_head(s);
}

int
store_savepoint(struct store *s, struct store_mark *ret)
{
	int r;

	if (!s->in_batch)
		return -EINVAL;
	if ((r = store_step_done(s, s->st[ST_SAVEPOINT])) < 0)
		return r;
	ret->delta = s->delta;
	ret->head = s->batch_head;
	return 0;
}

int
store_release(struct store *s)
{
	if (!s->in_batch)
		return -EINVAL;
	return store_step_done(s, s->st[ST_RELEASE]);
}

int
store_rollback_to(struct store *s, const struct store_mark *m)
{
	int r;

	if (!s->in_batch)
		return -EINVAL;
	/*
	 * Some errors (SQLITE_FULL, I/O, out of memory) make SQLite roll
	 * back the whole transaction on its own: then nothing of the batch
	 * is left to keep.
	 */
	if (!store_batch_open(s)) {
		store_rollback(s);
		return -EIO;
	}
	if ((r = store_step_done(s, s->st[ST_ROLLBACK_TO])) < 0 ||
	    (r = store_step_done(s, s->st[ST_RELEASE])) < 0)
		return r;
	s->delta = m->delta;
	s->batch_head = m->head;
	return 0;
}

bool
store_batch_open(struct store *s)
{
	return s->in_batch && !sqlite3_get_autocommit(s->w);
}

int64_t
store_changes(struct store *s)
{
	return sqlite3_total_changes64(s->w);
}

int64_t
store_head(struct store *s)
{
	int64_t head;

	pthread_mutex_lock(&s->counts_lock);
	head = s->counts.head_seq;
	pthread_mutex_unlock(&s->counts_lock);
	return head;
}

bool
store_in_batch(const struct store *s)
{
	return s->in_batch;
}

static char *
store_col_strdup(sqlite3_stmt *st, int col)
{
	const unsigned char *t;

	if (sqlite3_column_type(st, col) == SQLITE_NULL)
		return NULL;
	t = sqlite3_column_text(st, col);
	return t != NULL ? strdup((const char *)t) : NULL;
}

void
store_doc_clear(struct store_doc *d)
{
	if (d == NULL)
		return;
	free(d->collection);
	free(d->id);
	free(d->body);
	memset(d, 0, sizeof *d);
}

int
store_doc_get(struct store *s, enum store_conn conn, const char *collection,
    const char *id, struct store_doc *ret)
{
	sqlite3_stmt *st;
	struct store_doc d;
	int rc, r;

	st = s->st[conn == STORE_WRITER ? ST_DOC_GET_W : ST_DOC_GET_R];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_DONE) {
		r = -ENOENT;
		goto out;
	}
	if (rc != SQLITE_ROW) {
		r = store_fail(s, sqlite3_db_handle(st), rc);
		goto out;
	}
	memset(&d, 0, sizeof d);
	d.rev = sqlite3_column_int64(st, 0);
	d.version = sqlite3_column_int64(st, 1);
	d.deleted = sqlite3_column_int(st, 2) != 0;
	d.pending = sqlite3_column_int(st, 3) != 0;
	d.conflicted = sqlite3_column_int(st, 4) != 0;
	d.collection = strdup(collection);
	d.id = strdup(id);
	d.body = store_col_strdup(st, 5);
	if (d.collection == NULL || d.id == NULL ||
	    (d.body == NULL && sqlite3_column_type(st, 5) != SQLITE_NULL)) {
		store_doc_clear(&d);
		r = -ENOMEM;
		goto out;
	}
	*ret = d;
	r = 0;
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

/*
 * Append a change of collection/id to the log, chained to the document's
 * previous change; *ret_seq is its seq, which the caller writes into the
 * document row as last_seq in the same batch.  pl (NULL for a change made
 * here): what a pulled change keeps for History to check it later.
 */
static int
store_change_add(struct store *s, const char *collection, const char *id,
    int64_t rev, enum store_origin origin, const struct store_pulled *pl,
    int64_t version, int64_t now_ms, int64_t *ret_seq)
{
	sqlite3_stmt *st = s->st[ST_CHANGE_ADD];
	int r;

	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rev);
	sqlite3_bind_int(st, 4, origin);
	sqlite3_bind_int64(st, 5, now_ms);
	/* Kept only with a signature: without one nothing can be checked. */
	if (pl != NULL && pl->sig != NULL) {
		if (pl->device != NULL) {
			sqlite3_bind_blob(st, 6, pl->device,
			    STORE_DEVICE_LEN, SQLITE_STATIC);
			sqlite3_bind_int64(st, 7, pl->device_seq);
		}
		sqlite3_bind_int64(st, 8, version);
		sqlite3_bind_blob(st, 9, pl->sig, (int)pl->sig_len,
		    SQLITE_STATIC);
		sqlite3_bind_int64(st, 10, pl->ts);
		if (pl->record != NULL)
			sqlite3_bind_blob(st, 11, pl->record,
			    (int)pl->record_len, SQLITE_STATIC);
	}
	r = store_step_done(s, st);
	if (pl != NULL)
		sqlite3_clear_bindings(st);
	if (r < 0)
		return r;
	*ret_seq = sqlite3_last_insert_rowid(s->w);
	return 0;
}

int
store_write_local(struct store *s, const struct store_doc *cur,
    const char *collection, const char *id, const char *body,
    enum store_origin origin, int64_t now_ms, int64_t *ret_seq,
    int64_t *ret_rev)
{
	sqlite3_stmt *st;
	int64_t rev, seq;
	bool was_live, is_live;
	int r;

	if (!s->in_batch)
		return -EINVAL;
	rev = cur->rev + 1;

	if ((r = store_change_add(s, collection, id, rev, origin, NULL, 0,
	    now_ms, &seq)) < 0)
		return r;

	st = s->st[ST_DOC_UPSERT];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rev);
	sqlite3_bind_int(st, 4, body == NULL);
	if (body != NULL)
		sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	sqlite3_bind_int64(st, 6, seq);
	if ((r = store_step_done(s, st)) < 0)
		return r;

	st = s->st[ST_OUTBOX_ADD];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rev);
	sqlite3_bind_int64(st, 4, now_ms);
	if ((r = store_step_done(s, st)) < 0)
		return r;

	was_live = cur->rev > 0 && !cur->deleted;
	is_live = body != NULL;
	s->delta.docs += (int)is_live - (int)was_live;
	if (!cur->pending)
		s->delta.pending++;
	s->batch_head = seq;
	*ret_seq = seq;
	*ret_rev = rev;
	return 0;
}

int
store_list(struct store *s, const char *collection, const char *after,
    int limit, store_doc_cb cb, void *arg)
{
	sqlite3_stmt *st;
	struct store_doc d;
	int rc, r, n = 0;

	st = s->st[after != NULL ? ST_LIST_AFTER_R : ST_LIST_R];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 2, limit);
	if (after != NULL)
		sqlite3_bind_text(st, 3, after, -1, SQLITE_STATIC);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&d, 0, sizeof d);
		d.collection = (char *)collection;
		d.id = (char *)sqlite3_column_text(st, 0);
		d.rev = sqlite3_column_int64(st, 1);
		d.version = sqlite3_column_int64(st, 2);
		d.deleted = sqlite3_column_int(st, 3) != 0;
		d.pending = sqlite3_column_int(st, 4) != 0;
		d.conflicted = sqlite3_column_int(st, 5) != 0;
		d.body = (char *)sqlite3_column_text(st, 6);
		if ((r = cb(&d, arg)) < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : store_fail(s, s->r, rc);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_changes_since(struct store *s, int64_t since, int limit,
    store_change_cb cb, void *arg)
{
	sqlite3_stmt *st = s->st[ST_CHANGES_R];
	struct store_change c;
	int rc, r, n = 0;

	sqlite3_bind_int64(st, 1, since);
	sqlite3_bind_int(st, 2, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&c, 0, sizeof c);
		c.seq = sqlite3_column_int64(st, 0);
		c.collection = (const char *)sqlite3_column_text(st, 1);
		c.id = (const char *)sqlite3_column_text(st, 2);
		c.rev = sqlite3_column_int64(st, 3);
		c.origin = (enum store_origin)sqlite3_column_int(st, 4);
		c.version = sqlite3_column_int64(st, 5);
		/* Body and tombstone flag are the change's own only if
		 * nothing came after it. */
		if (sqlite3_column_int64(st, 7) == c.rev) {
			c.deleted = sqlite3_column_int(st, 6) != 0;
			c.body = (const char *)sqlite3_column_text(st, 8);
		}
		if ((r = cb(&c, arg)) < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : store_fail(s, s->r, rc);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_counts(struct store *s, struct store_counts *ret)
{
	sqlite3_stmt *st = s->st[ST_OLDEST_R];
	struct store_counts c;
	uint64_t gen, again;
	int rc, tries;

	/*
	 * counts and the oldest pending change must describe one state, or
	 * Status could say pending 1 with no oldest: read the counts, the
	 * replica, then the generation again, and retry (a few times; a
	 * COMMIT takes milliseconds) if a COMMIT ran in between.
	 */
	for (tries = 0; ; tries++) {
		pthread_mutex_lock(&s->counts_lock);
		c = s->counts;
		gen = s->commit_gen;
		pthread_mutex_unlock(&s->counts_lock);
		c.oldest_pending_ms = 0;
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW)
			c.oldest_pending_ms = sqlite3_column_int64(st, 0);
		sqlite3_reset(st);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return store_fail(s, s->r, rc);
		pthread_mutex_lock(&s->counts_lock);
		again = s->commit_gen;
		pthread_mutex_unlock(&s->counts_lock);
		if ((gen == again && gen % 2 == 0) || tries == 100)
			break;
		sched_yield();
	}
	*ret = c;
	return 0;
}

int
store_meta_get(struct store *s, const char *key, char **ret)
{
	sqlite3_stmt *st = s->st[ST_META_GET];
	char *v;
	int rc, r;

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if ((v = store_col_strdup(st, 0)) == NULL)
			r = -ENOMEM;
		else {
			*ret = v;
			r = 0;
		}
	} else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_fail(s, s->w, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_meta_set(struct store *s, const char *key, const char *value)
{
	sqlite3_stmt *st = s->st[ST_META_SET];

	sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, value, -1, SQLITE_STATIC);
	return store_step_done(s, st);
}

int
store_integrity_check(struct store *s)
{
	sqlite3_stmt *st = NULL;
	int rc, r;

	rc = sqlite3_prepare_v2(s->w, "PRAGMA integrity_check", -1, &st,
	    NULL);
	if (rc != SQLITE_OK)
		return store_fail(s, s->w, rc);
	rc = sqlite3_step(st);
	if (rc != SQLITE_ROW)
		r = store_fail(s, s->w, rc);
	else if (strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0) {
		snprintf(store_errbuf, sizeof store_errbuf, "%s",
		    sqlite3_column_text(st, 0));
		r = -EBADMSG;
	} else
		r = 0;
	sqlite3_finalize(st);
	return r;
}

/* --- sync (writer thread) --- */

static int
store_intents(struct store *s, sqlite3_stmt *st, int limit, int64_t after,
    store_intent_cb cb, void *arg)
{
	struct store_intent in;
	int rc, r, n = 0;

	sqlite3_bind_int(st, 1, limit);
	if (sqlite3_bind_parameter_count(st) >= 2)
		sqlite3_bind_int64(st, 2, after);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&in, 0, sizeof in);
		in.oseq = sqlite3_column_int64(st, 0);
		in.collection = (const char *)sqlite3_column_text(st, 1);
		in.id = (const char *)sqlite3_column_text(st, 2);
		in.record = (const char *)sqlite3_column_text(st, 3);
		in.record_len = (size_t)sqlite3_column_bytes(st, 3);
		in.sig = (const char *)sqlite3_column_text(st, 4);
		in.version = sqlite3_column_int64(st, 5);
		in.deleted = sqlite3_column_int(st, 6) != 0;
		in.body = (const char *)sqlite3_column_text(st, 7);
		in.change_seq = sqlite3_column_int64(st, 8);
		if ((r = cb(&in, arg)) < 0)
			goto out;
		n++;
	}
	r = rc == SQLITE_DONE ? n : store_fail(s, s->w, rc);
out:
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_outbox_sendable(struct store *s, int limit, store_intent_cb cb,
    void *arg)
{
	int n, m;

	/* Records already made go first, then new intents. */
	if ((n = store_intents(s, s->st[ST_OUTBOX_INFLIGHT], limit, 0, cb,
	    arg)) < 0 || n >= limit)
		return n;
	if ((m = store_intents(s, s->st[ST_OUTBOX_SENDABLE], limit - n, 0, cb,
	    arg)) < 0)
		return m;
	return n + m;
}

int
store_outbox_sendable_after(struct store *s, int64_t after, int limit,
    store_intent_cb cb, void *arg)
{
	int n, m;

	if ((n = store_intents(s, s->st[ST_OUTBOX_INFLIGHT_AFTER], limit,
	    after, cb, arg)) < 0 || n >= limit)
		return n;
	if ((m = store_intents(s, s->st[ST_OUTBOX_SENDABLE], limit - n, 0, cb,
	    arg)) < 0)
		return m;
	return n + m;
}

int
store_outbox_set_record(struct store *s, int64_t oseq, const char *record,
    size_t len, const char *sig, int64_t change_seq)
{
	sqlite3_stmt *st = s->st[ST_SIGNED_ADD];
	int r;

	/* Written once, here: the outbox row only names it. */
	sqlite3_bind_int64(st, 1, oseq);
	sqlite3_bind_int64(st, 2, change_seq);
	sqlite3_bind_blob(st, 3, record, (int)len, SQLITE_STATIC);
	sqlite3_bind_text(st, 4, sig, -1, SQLITE_STATIC);
	if ((r = store_step_done(s, st)) < 0)
		return r;
	if (sqlite3_changes(s->w) != 1) {
		snprintf(store_errbuf, sizeof store_errbuf,
		    "outbox row %lld is gone", (long long)oseq);
		return -ENOENT;
	}
	st = s->st[ST_OUTBOX_SET_RECORD];
	sqlite3_bind_int64(st, 1, oseq);
	sqlite3_bind_int64(st, 2, change_seq);
	return store_step_done(s, st);
}

int
store_push_applied(struct store *s, int64_t oseq, const char *collection,
    const char *id, int64_t version, const char *body)
{
	sqlite3_stmt *st;
	int64_t change_seq = 0;
	bool deleted;
	int rc, r;

	/* The row goes; its signed record stays, marked applied, for the
	 * local history. */
	st = s->st[ST_OUTBOX_APPLIED];
	sqlite3_bind_int64(st, 1, oseq);
	rc = sqlite3_step(st);
	deleted = rc == SQLITE_ROW;
	if (rc == SQLITE_ROW) {
		change_seq = sqlite3_column_int64(st, 0);
		rc = sqlite3_step(st);
	}
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_DONE)
		return store_fail(s, s->w, rc);
	/* A merge or a resolution already replaced the record: the
	 * document has moved on. */
	if (!deleted)
		return 0;
	if (change_seq > 0) {
		st = s->st[ST_APPLIED_ADD];
		sqlite3_bind_int64(st, 1, change_seq);
		sqlite3_bind_int64(st, 2, version);
		if ((r = store_step_done(s, st)) < 0)
			return r;
	}
	st = s->st[ST_DOC_SYNCED];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, version);
	if (body != NULL)
		sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int(st, 5, body == NULL);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		if (sqlite3_column_int(st, 0) == 0)
			s->delta.pending--;
		rc = sqlite3_step(st);
	}
	r = rc == SQLITE_DONE ? 0 : store_fail(s, s->w, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_push_rejected(struct store *s, int64_t oseq, const char *error)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_REJECT];
	int r;

	sqlite3_bind_int64(st, 1, oseq);
	sqlite3_bind_text(st, 2, error, -1, SQLITE_STATIC);
	if ((r = store_step_done(s, st)) == 0 && sqlite3_changes(s->w) > 0)
		s->delta.rejected++;
	return r;
}

int
store_conflict_add(struct store *s, int64_t oseq, const char *collection,
    const char *id, const char *paths_json, int64_t their_version,
    bool their_deleted, const char *theirs, int64_t now_ms)
{
	sqlite3_stmt *st;
	char *mine = NULL, *base = NULL;
	bool mine_deleted = false, base_deleted = false;
	int64_t open_id;
	int rc, r;

	/* The record sent is obsolete: resolving makes a new one. */
	if (oseq > 0) {
		st = s->st[ST_SIGNED_DROP_ROW];
		sqlite3_bind_int64(st, 1, oseq);
		if ((r = store_step_done(s, st)) < 0)
			return r;
		st = s->st[ST_OUTBOX_DELETE];
		sqlite3_bind_int64(st, 1, oseq);
		if ((r = store_step_done(s, st)) < 0)
			return r;
	}
	/* One open conflict per document: a newer theirs updates it. */
	st = s->st[ST_CONFLICT_OPEN];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	open_id = rc == SQLITE_ROW ? sqlite3_column_int64(st, 0) : 0;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return store_fail(s, s->w, rc);
	if (open_id > 0) {
		st = s->st[ST_CONFLICT_THEIRS];
		sqlite3_bind_int64(st, 1, open_id);
		if (theirs != NULL && !their_deleted)
			sqlite3_bind_text(st, 2, theirs, -1, SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 2);
		sqlite3_bind_int64(st, 3, their_version);
		sqlite3_bind_int(st, 4, their_deleted);
		if (paths_json != NULL)
			sqlite3_bind_text(st, 5, paths_json, -1,
			    SQLITE_STATIC);
		else
			sqlite3_bind_null(st, 5);
		return store_step_done(s, st);
	}
	st = s->st[ST_DOC_CONFLICTED];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		mine = store_col_strdup(st, 0);
		base = store_col_strdup(st, 1);
		base_deleted = sqlite3_column_int(st, 2) != 0;
		mine_deleted = sqlite3_column_int(st, 3) != 0;
		rc = sqlite3_step(st);
	}
	r = rc == SQLITE_DONE ? 0 : store_fail(s, s->w, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0)
		goto out;
	st = s->st[ST_CONFLICT_ADD];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 3, paths_json != NULL ? paths_json : "[\"\"]",
	    -1, SQLITE_STATIC);
	if (base != NULL && !base_deleted)
		sqlite3_bind_text(st, 4, base, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	if (mine != NULL && !mine_deleted)
		sqlite3_bind_text(st, 5, mine, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 5);
	if (theirs != NULL && !their_deleted)
		sqlite3_bind_text(st, 6, theirs, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, their_version);
	sqlite3_bind_int(st, 8, their_deleted);
	sqlite3_bind_int64(st, 9, now_ms);
	if ((r = store_step_done(s, st)) == 0)
		s->delta.conflicts++;
out:
	free(mine);
	free(base);
	return r;
}

int
store_apply_remote(struct store *s, const struct store_doc *cur,
    const char *collection, const char *id, int64_t version, bool deleted,
    const char *body, const struct store_pulled *pl, int64_t now_ms,
    int64_t *ret_seq, int64_t *ret_rev)
{
	sqlite3_stmt *st;
	int64_t rev = cur->rev + 1, seq;
	int r;

	if ((r = store_change_add(s, collection, id, rev, STORE_ORIGIN_REMOTE,
	    pl, version, now_ms, &seq)) < 0)
		return r;
	st = s->st[ST_DOC_REMOTE];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rev);
	sqlite3_bind_int64(st, 4, version);
	sqlite3_bind_int(st, 5, deleted);
	if (body != NULL && !deleted)
		sqlite3_bind_text(st, 6, body, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 6);
	sqlite3_bind_int64(st, 7, seq);
	if ((r = store_step_done(s, st)) < 0)
		return r;
	s->delta.docs += (int)!deleted - (int)(cur->rev > 0 && !cur->deleted);
	s->batch_head = seq;
	*ret_seq = seq;
	*ret_rev = rev;
	return 0;
}

/* --- conflicts --- */

void
store_conflict_clear(struct store_conflict *c)
{
	if (c == NULL)
		return;
	free(c->collection);
	free(c->id);
	free(c->paths);
	free(c->base);
	free(c->mine);
	free(c->theirs);
	memset(c, 0, sizeof *c);
}

static int
store_conflict_row(sqlite3_stmt *st, struct store_conflict *c)
{
	memset(c, 0, sizeof *c);
	c->conflict_id = sqlite3_column_int64(st, 0);
	c->collection = store_col_strdup(st, 1);
	c->id = store_col_strdup(st, 2);
	c->paths = store_col_strdup(st, 3);
	c->base = store_col_strdup(st, 4);
	c->mine = store_col_strdup(st, 5);
	c->theirs = store_col_strdup(st, 6);
	c->their_version = sqlite3_column_int64(st, 7);
	c->their_deleted = sqlite3_column_int(st, 8) != 0;
	c->created_ms = sqlite3_column_int64(st, 9);
	if (c->collection == NULL || c->id == NULL || c->paths == NULL) {
		store_conflict_clear(c);
		return -ENOMEM;
	}
	return 0;
}

int
store_conflict_get(struct store *s, enum store_conn conn, int64_t conflict_id,
    struct store_conflict *ret)
{
	sqlite3_stmt *st;
	int rc, r;

	st = s->st[conn == STORE_WRITER ? ST_CONFLICT_GET_W : ST_CONFLICT_GET_R];
	sqlite3_bind_int64(st, 1, conflict_id);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		r = store_conflict_row(st, ret);
	else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_fail(s, sqlite3_db_handle(st), rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

/*
 * The end of a walk on the reader: the count of rows given to the
 * callback, or the callback's error (r < 0), or SQLite's; the statement is
 * reset either way.
 */
static int
store_walk_end(struct store *s, sqlite3_stmt *st, int rc, int r, int n)
{
	if (r >= 0)
		r = rc == SQLITE_ROW || rc == SQLITE_DONE ? n :
		    store_fail(s, s->r, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_conflicts_list(struct store *s, int limit, store_conflict_cb cb,
    void *arg)
{
	sqlite3_stmt *st = s->st[ST_CONFLICTS_R];
	struct store_conflict c;
	int rc, r = 0, n = 0;

	sqlite3_bind_int(st, 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		if ((r = store_conflict_row(st, &c)) < 0)
			break;
		r = cb(&c, arg);
		store_conflict_clear(&c);
		if (r < 0)
			break;
		n++;
	}
	return store_walk_end(s, st, rc, r, n);
}

/*
 * The document becomes body (NULL: a tombstone) at rev + 1 on top of the
 * server's their_version, whose body (theirs) is the new base.  With push,
 * an unsent intent carries it; without, every queued intent of the
 * document is dropped (the replica now equals the server).  Either way a
 * record in flight is dropped: it was made on an older base.
 */
static int
store_rebase(struct store *s, const struct store_doc *cur,
    const char *collection, const char *id, const char *body,
    int64_t their_version, bool their_deleted, const char *theirs, bool push,
    enum store_origin origin, int64_t now_ms, int64_t *ret_seq,
    int64_t *ret_rev)
{
	sqlite3_stmt *st;
	int64_t rev = cur->rev + 1, seq;
	int r;

	if ((r = store_change_add(s, collection, id, rev, origin, NULL, 0,
	    now_ms, &seq)) < 0)
		return r;
	/* A record in flight was made on an older base: it is obsolete (its
	 * answer, if one comes, is ignored; see store_push_applied). */
	st = s->st[ST_SIGNED_DROP_DOC];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if ((r = store_step_done(s, st)) < 0)
		return r;
	st = s->st[push ? ST_OUTBOX_DROP_SENT : ST_OUTBOX_DROP_DOC];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	if ((r = store_step_done(s, st)) < 0)
		return r;
	if (push) {
		st = s->st[ST_OUTBOX_ADD];
		sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 3, rev);
		sqlite3_bind_int64(st, 4, now_ms);
		if ((r = store_step_done(s, st)) < 0)
			return r;
	}
	st = s->st[ST_DOC_RESOLVE];
	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, rev);
	if (body != NULL)
		sqlite3_bind_text(st, 4, body, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_int(st, 5, body == NULL);
	sqlite3_bind_int64(st, 6, their_version);
	if (theirs != NULL && !their_deleted)
		sqlite3_bind_text(st, 7, theirs, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 7);
	sqlite3_bind_int(st, 8, their_deleted);
	sqlite3_bind_int(st, 9, push);
	sqlite3_bind_int64(st, 10, seq);
	if ((r = store_step_done(s, st)) < 0)
		return r;
	s->delta.pending += (int)push - (int)cur->pending;
	s->delta.docs += (int)(body != NULL) -
	    (int)(cur->rev > 0 && !cur->deleted);
	s->batch_head = seq;
	*ret_seq = seq;
	*ret_rev = rev;
	return 0;
}

int
store_resolve(struct store *s, const struct store_conflict *cf,
    const struct store_doc *cur, const char *body, bool push, int64_t now_ms,
    int64_t *ret_seq, int64_t *ret_rev)
{
	sqlite3_stmt *st;
	int r;

	st = s->st[ST_CONFLICT_DONE];
	sqlite3_bind_int64(st, 1, cf->conflict_id);
	sqlite3_bind_int64(st, 2, now_ms);
	if ((r = store_step_done(s, st)) < 0)
		return r;
	if ((r = store_rebase(s, cur, cf->collection, cf->id, body,
	    cf->their_version, cf->their_deleted, cf->theirs, push,
	    STORE_ORIGIN_RESOLVE, now_ms, ret_seq, ret_rev)) < 0)
		return r;
	s->delta.conflicts--;
	return 0;
}

int
store_merged(struct store *s, const struct store_doc *cur,
    const char *collection, const char *id, const char *body,
    int64_t their_version, bool their_deleted, const char *theirs, bool push,
    int64_t now_ms, int64_t *ret_seq, int64_t *ret_rev)
{
	if (cur->conflicted)
		return -EINVAL;
	return store_rebase(s, cur, collection, id, body, their_version,
	    their_deleted, theirs, push, STORE_ORIGIN_MERGE, now_ms, ret_seq,
	    ret_rev);
}

int
store_doc_base(struct store *s, const char *collection, const char *id,
    char **ret_base)
{
	sqlite3_stmt *st = s->st[ST_DOC_BASE_W];
	char *base = NULL;
	int rc, r;

	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		r = 0;
		if (sqlite3_column_type(st, 0) != SQLITE_NULL &&
		    sqlite3_column_int(st, 1) == 0 &&
		    (base = store_col_strdup(st, 0)) == NULL)
			r = -ENOMEM;
	} else if (rc == SQLITE_DONE)
		r = -ENOENT;
	else
		r = store_fail(s, s->w, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r == 0)
		*ret_base = base;
	return r;
}

int
store_outbox_has(struct store *s, int64_t oseq)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_HAS];
	int rc, r;

	sqlite3_bind_int64(st, 1, oseq);
	rc = sqlite3_step(st);
	r = rc == SQLITE_ROW ? 1 : rc == SQLITE_DONE ? 0 :
	    store_fail(s, s->w, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return r;
}

int
store_rejected_list(struct store *s, int limit, store_rejected_cb cb,
    void *arg)
{
	sqlite3_stmt *st = s->st[ST_REJECTED_R];
	int rc, r = 0, n = 0;

	sqlite3_bind_int(st, 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		r = cb((const char *)sqlite3_column_text(st, 0),
		    (const char *)sqlite3_column_text(st, 1),
		    (const char *)sqlite3_column_text(st, 2), arg);
		if (r < 0)
			break;
		n++;
	}
	return store_walk_end(s, st, rc, r, n);
}

/* Give cb each row of a bound ST_DOC_CHANGES statement, then reset it. */
static int
store_doc_walk(struct store *s, sqlite3_stmt *st, store_doc_change_cb cb,
    void *arg)
{
	struct store_doc_change c;
	int rc, r = 0, n = 0;

	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		memset(&c, 0, sizeof c);
		c.seq = sqlite3_column_int64(st, 0);
		c.rev = sqlite3_column_int64(st, 1);
		c.origin = (enum store_origin)sqlite3_column_int(st, 2);
		c.ts_ms = sqlite3_column_int64(st, 3);
		c.prev = sqlite3_column_int64(st, 12);
		/* Signed: this device's applied record, or a pulled change
		 * (its record kept only when not in the canonical layout). */
		if (sqlite3_column_type(st, 6) != SQLITE_NULL) {
			c.version = sqlite3_column_int64(st, 4);
			c.record = sqlite3_column_blob(st, 5);
			c.record_len = (size_t)sqlite3_column_bytes(st, 5);
			c.sig = (const char *)sqlite3_column_text(st, 6);
		} else if (sqlite3_column_type(st, 7) != SQLITE_NULL) {
			c.version = sqlite3_column_int64(st, 4);
			if (sqlite3_column_type(st, 5) != SQLITE_NULL) {
				c.record = sqlite3_column_blob(st, 5);
				c.record_len =
				    (size_t)sqlite3_column_bytes(st, 5);
			}
			c.pulled_sig = sqlite3_column_blob(st, 7);
			c.pulled_sig_len = (size_t)sqlite3_column_bytes(st, 7);
			if (sqlite3_column_bytes(st, 8) == STORE_DEVICE_LEN) {
				c.device = sqlite3_column_blob(st, 8);
				c.device_seq = sqlite3_column_int64(st, 9);
			}
			c.record_ts = sqlite3_column_int64(st, 10);
			c.body = (const char *)sqlite3_column_text(st, 11);
		}
		if ((r = cb(&c, arg)) < 0)
			break;
		n++;
	}
	return store_walk_end(s, st, rc, r, n);
}

int
store_doc_changes(struct store *s, const char *collection, const char *id,
    int limit, store_doc_change_cb cb, void *arg)
{
	sqlite3_stmt *st = s->st[ST_DOC_CHANGES_R];

	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, limit);
	return store_doc_walk(s, st, cb, arg);
}

int
store_doc_changes_back(struct store *s, const char *collection,
    const char *id, int64_t from, int limit, store_doc_change_cb cb,
    void *arg)
{
	sqlite3_stmt *st = s->st[ST_DOC_CHANGES_BACK_R];

	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int(st, 3, limit);
	if (from > 0)
		sqlite3_bind_int64(st, 4, from);
	return store_doc_walk(s, st, cb, arg);
}

/* --- our own change pulled back --- */

int
store_push_settle_change(struct store *s, const char *collection,
    const char *id, int64_t change_seq, int64_t version, const char *body)
{
	sqlite3_stmt *st = s->st[ST_OUTBOX_BY_CHANGE];
	int64_t oseq = 0;
	int rc, r;

	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, change_seq);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		oseq = sqlite3_column_int64(st, 0);
	r = rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : store_fail(s, s->w, rc);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	if (r < 0 || oseq == 0)
		return r;
	if ((r = store_push_applied(s, oseq, collection, id, version,
	    body)) < 0)
		return r;
	return 1;
}

/* --- parked pulled changes --- */

int
store_parked_add(struct store *s, const char *collection, const char *id,
    int64_t version, const char *change, const char *reason, int64_t now_ms)
{
	sqlite3_stmt *st = s->st[ST_PARKED_ADD];
	int r;

	sqlite3_bind_text(st, 1, collection, -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, id, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, version);
	if (change != NULL)
		sqlite3_bind_text(st, 4, change, -1, SQLITE_STATIC);
	else
		sqlite3_bind_null(st, 4);
	sqlite3_bind_text(st, 5, reason, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 6, now_ms);
	r = store_step_done(s, st);
	sqlite3_clear_bindings(st);
	if (r == 0)
		s->delta.parked++;
	return r;
}

int
store_parked_list(struct store *s, int limit, store_parked_cb cb, void *arg)
{
	sqlite3_stmt *st = s->st[ST_PARKED_R];
	struct store_parked p;
	int rc, r = 0, n = 0;

	sqlite3_bind_int(st, 1, limit);
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		p.collection = (const char *)sqlite3_column_text(st, 0);
		p.id = (const char *)sqlite3_column_text(st, 1);
		p.version = sqlite3_column_int64(st, 2);
		p.change = (const char *)sqlite3_column_text(st, 3);
		p.reason = (const char *)sqlite3_column_text(st, 4);
		p.created_ms = sqlite3_column_int64(st, 5);
		if ((r = cb(&p, arg)) < 0)
			break;
		n++;
	}
	return store_walk_end(s, st, rc, r, n);
}
