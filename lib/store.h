/*
 * store: the local replica in SQLite (docs, outbox, change log, conflicts,
 * meta), the only module that speaks SQL.
 *
 * Two connections to one file: the writer, on which every change happens
 * inside a transaction the caller opens with store_begin() and ends with
 * store_commit() (group commit: many writes, one COMMIT), and a reader that
 * only ever sees committed data (WAL snapshot isolation), used to answer reads
 * while a batch is open.  journal_mode=WAL and synchronous=FULL: a COMMIT
 * that returned OK survives power loss.  The schema version is PRAGMA
 * user_version; store_open() applies forward migrations in order and refuses
 * a replica newer than this build knows (-EPROTONOSUPPORT).
 *
 * Statements are prepared once at open.  Nothing here scans a table per
 * write.  Functions return 0 (or a count) on success and -errno on failure,
 * SQLite codes mapped at this boundary (SQLITE_FULL -> -ENOSPC, SQLITE_BUSY
 * -> -EBUSY, SQLITE_CORRUPT/NOTADB -> -EBADMSG, I/O -> -EIO, others -EIO);
 * store_errmsg() keeps SQLite's message for the caller to log once.
 * Calls block only for the disk I/O SQLite does (a COMMIT fsyncs).
 * Threads: the writer connection (batches, store_write_local, meta) may be
 * used by one thread and the reader connection (store_doc_get with
 * STORE_READER, store_list, store_changes_since, store_counts) by another;
 * store_head and store_errmsg work from any thread.
 *
 * Ownership: a struct store_doc filled by the store owns its strings;
 * store_doc_clear() frees them and accepts a zeroed struct.
 */
#ifndef FERRY_STORE_H
#define FERRY_STORE_H

#include <stdbool.h>
#include <stdint.h>

#define STORE_SCHEMA_VERSION 1

struct store;

enum store_conn {
	STORE_WRITER,	/* sees the open batch */
	STORE_READER,	/* sees only committed data */
};

enum store_origin {
	STORE_ORIGIN_LOCAL = 0,
	STORE_ORIGIN_REMOTE,
	STORE_ORIGIN_MERGE,
	STORE_ORIGIN_RESOLVE,
};

struct store_doc {
	char	*collection;
	char	*id;
	int64_t	 rev;		/* 0: does not exist */
	int64_t	 version;
	bool	 deleted;
	bool	 pending;
	bool	 conflicted;
	char	*body;		/* JSON text; NULL for a tombstone */
};

/* One change-log entry joined with its document, for Watch replay. */
struct store_change {
	int64_t		 seq;
	const char	*collection;
	const char	*id;
	int64_t		 rev;
	enum store_origin origin;
	int64_t		 version;
	bool		 deleted;
	const char	*body;	/* NULL if a tombstone or superseded */
};

struct store_counts {
	int64_t	docs;		/* documents, tombstones excluded */
	int64_t	pending;	/* unsent outbox intents */
	int64_t	oldest_pending_ms;	/* 0 if none */
	int64_t	conflicts;
	int64_t	rejected;
	int64_t	parked;		/* pulled changes that could not apply */
	int64_t	head_seq;	/* last change-log seq */
};

/* How the open batch changed the counters (folded in at COMMIT). */
struct store_delta {
	int64_t	docs;
	int64_t	pending;
	int64_t	conflicts;
	int64_t	rejected;
	int64_t	parked;
};

const char *store_origin_name(enum store_origin o);

/* Open or create the replica at path and migrate it.  0 or -errno; on
 * failure *ret_error (may be NULL) gets a malloc'd message. */
int	store_open(const char *path, struct store **ret, char **ret_error);
/* Close both connections.  An open batch is rolled back.  Accepts NULL. */
void	store_close(struct store *s);
/* The last SQLite error message on this store (static, never NULL). */
const char *store_errmsg(const struct store *s);

/* Batch control on the writer: BEGIN IMMEDIATE / COMMIT / ROLLBACK. */
int	store_begin(struct store *s);
int	store_commit(struct store *s);
/*
 * The WAL's bound in pages (store.c STORE_WAL_MAX_PAGES; 0: that
 * default): after a COMMIT that leaves more, the writer truncates it.
 * For tests and tuning; writer thread.  store_wal_truncations counts the
 * truncations done.
 */
void	store_set_wal_limit(struct store *s, int pages);
uint64_t store_wal_truncations(const struct store *s);
void	store_rollback(struct store *s);
bool	store_in_batch(const struct store *s);
/*
 * Savepoints inside the open batch, so that one write of many can fail
 * alone (the writer's ops; inside a pull op, each pulled change):
 * store_savepoint() marks where it starts and fills *ret with the counts a
 * rollback restores; store_release() keeps its writes in the batch;
 * store_rollback_to() undoes them (and the counts they moved), ends the
 * savepoint and keeps the rest of the batch.  They nest, innermost first.
 * If SQLite had already rolled back the whole transaction (a full disk, an
 * I/O error), store_rollback_to() ends the batch and returns -EIO: then no
 * write of it is left.  -EINVAL outside a batch; other failures are
 * SQLite's, mapped as above.
 */
struct store_mark {
	struct store_delta	delta;
	int64_t			head;
};
int	store_savepoint(struct store *s, struct store_mark *ret);
int	store_release(struct store *s);
int	store_rollback_to(struct store *s, const struct store_mark *m);
/*
 * Rows the writer connection has inserted, updated or deleted since it was
 * opened (a statement that failed counts for nothing: SQLite undoes it).
 * An op that leaves it unchanged wrote nothing.  Writer thread only.
 */
int64_t	store_changes(struct store *s);
/* Is the batch's transaction still open?  SQLite ends it on its own after
 * some errors (a full disk, I/O errors, out of memory).  Writer thread. */
bool	store_batch_open(struct store *s);

/* Read a document.  0 and *ret filled, -ENOENT if it never existed. */
int	store_doc_get(struct store *s, enum store_conn conn,
	    const char *collection, const char *id, struct store_doc *ret);
void	store_doc_clear(struct store_doc *d);

/*
 * Apply a local change inside the open batch: write the document at rev
 * cur_rev + 1 (body NULL: tombstone), add or coalesce its outbox intent,
 * append to the change log.  cur is the document as read on the writer
 * (rev 0 if new).  On success *ret_seq is the change's seq and *ret_rev
 * its rev.  Must be called between store_begin and store_commit.
 */
int	store_write_local(struct store *s, const struct store_doc *cur,
	    const char *collection, const char *id, const char *body,
	    enum store_origin origin, int64_t now_ms, int64_t *ret_seq,
	    int64_t *ret_rev);

/*
 * List a collection in id order after 'after' (NULL: from the start), at
 * most limit documents, tombstones left out.  cb is called per document
 * (fields valid during the call); a negative return from cb stops the walk
 * and is returned.  Reads on the reader connection.  Returns the number of
 * documents given to cb, or -errno.
 */
typedef int (*store_doc_cb)(const struct store_doc *d, void *arg);
int	store_list(struct store *s, const char *collection, const char *after,
	    int limit, store_doc_cb cb, void *arg);

/*
 * Walk the change log from seq > since, at most limit entries, in seq order,
 * on the reader connection.  The body (and deleted) are the document's
 * current ones when the change is still its latest; for a superseded
 * change body is NULL and deleted false.  Returns the number of entries
 * given to cb, or -errno.
 */
typedef int (*store_change_cb)(const struct store_change *c, void *arg);
int	store_changes_since(struct store *s, int64_t since, int limit,
	    store_change_cb cb, void *arg);

/* The committed change-log head (any thread). */
int64_t	store_head(struct store *s);
/* Counters for Status (cheap: kept incrementally, one indexed query on
 * the reader connection: loop thread only). */
int	store_counts(struct store *s, struct store_counts *ret);

/* meta key/value (strings).  get: 0 and malloc'd *ret, or -ENOENT. */
int	store_meta_get(struct store *s, const char *key, char **ret);
int	store_meta_set(struct store *s, const char *key, const char *value);

/* --- sync: all on the writer connection, inside a batch --- */

/* One outbox intent the pusher may send, joined with its document. */
struct store_intent {
	int64_t		 oseq;		/* outbox row */
	const char	*collection;
	const char	*id;
	const char	*record;	/* NULL until made; then sent as is */
	size_t		 record_len;
	const char	*sig;
	int64_t		 version;	/* the document's server version */
	bool		 deleted;
	const char	*body;		/* the document's current body */
	int64_t		 change_seq;	/* device seq of the record, 0 if none */
};
typedef int (*store_intent_cb)(const struct store_intent *in, void *arg);

/* Walk up to limit sendable intents (see ST_OUTBOX_SENDABLE).  Returns the
 * number given to cb or -errno. */
int	store_outbox_sendable(struct store *s, int limit, store_intent_cb cb,
	    void *arg);
/* The same, but of the records already made only those whose device seq
 * is above after (the others are in a request or about to be): lets the
 * pusher prepare a batch while the one before it is in flight. */
int	store_outbox_sendable_after(struct store *s, int64_t after, int limit,
	    store_intent_cb cb, void *arg);
/*
 * Selective sync (collset.h): only intents of collections in set (NULL or
 * "*": all) are sendable; the others stay in the outbox, local.  Each
 * connection has its own copy: writer true sets the writer thread's (what
 * the sendable walks see), false the loop's (store_local_only).  0 or
 * -ENOMEM.
 */
int	store_set_synced(struct store *s, bool writer, const char *set);
/* Loop thread: how many queued intents are of collections not synced. */
int	store_local_only(struct store *s, int64_t *ret);
/* Keep the record made for an intent: from now on exactly these bytes are
 * sent until a definitive answer.  They are written once, into the local
 * signed history, which keeps them when the remote applies them; a record
 * dropped unapplied (a merge, a conflict) goes with its outbox row.
 * -ENOENT if the outbox row is gone. */
int	store_outbox_set_record(struct store *s, int64_t oseq,
	    const char *record, size_t len, const char *sig, int64_t change_seq);
/* The server applied (or had applied) the intent's record at version;
 * body is what it carried (NULL: a delete). */
int	store_push_applied(struct store *s, int64_t oseq, const char *collection,
	    const char *id, int64_t version, const char *body);
/* The server refused the record for good: park the intent with why. */
int	store_push_rejected(struct store *s, int64_t oseq, const char *error);
/*
 * Queue a conflict for a document: base and mine are taken from the
 * replica, theirs is given (NULL or their_deleted for a deletion); the
 * document becomes conflicted, so its push waits.  oseq > 0 drops that
 * outbox row (its record is obsolete).  paths_json: a JSON array of JSON
 * Pointers; NULL keeps an open conflict's paths (or [""] for a new one).
 */
int	store_conflict_add(struct store *s, int64_t oseq, const char *collection,
	    const char *id, const char *paths_json, int64_t their_version,
	    bool their_deleted, const char *theirs, int64_t now_ms);
/*
 * What a pulled change carries so that its signed record can be checked
 * later, when someone looks (History), never at pull time: its change id
 * as the device's public key (STORE_DEVICE_LEN bytes; NULL if the remote
 * sent no change id that names one) and seq, the record's signature
 * (sig_len bytes: 64 decoded, or the text as sent if it does not decode;
 * sig NULL: the remote sent none, and nothing is kept) and ts, and the
 * record's text only when the remote sent it (a record not in
 * record_make's layout; NULL: History rebuilds it from the body).
 * Borrowed for the call.
 */
#define STORE_DEVICE_LEN	32
struct store_pulled {
	const void	*device;
	int64_t		 device_seq;
	const void	*sig;
	size_t		 sig_len;
	int64_t		 ts;
	const char	*record;
	size_t		 record_len;
};

/* Apply a remote change to a document without local changes (cur as read
 * on the writer, rev 0 if new): rev + 1, origin remote in the change log,
 * which keeps pl (may be NULL) with it.  The body of the revision it
 * replaces moves into that revision's change row if that one is signed. */
int	store_apply_remote(struct store *s, const struct store_doc *cur,
	    const char *collection, const char *id, int64_t version,
	    bool deleted, const char *body, const struct store_pulled *pl,
	    int64_t now_ms, int64_t *ret_seq, int64_t *ret_rev);

/* --- conflicts --- */

struct store_conflict {
	int64_t	 conflict_id;
	char	*collection;
	char	*id;
	char	*paths;		/* JSON array of JSON Pointers */
	char	*base;		/* JSON texts; NULL: absent or deleted */
	char	*mine;
	char	*theirs;
	int64_t	 their_version;
	bool	 their_deleted;
	int64_t	 created_ms;
};
typedef int (*store_conflict_cb)(const struct store_conflict *c, void *arg);

void	store_conflict_clear(struct store_conflict *c);
/* An open conflict by id: 0, or -ENOENT (unknown or resolved). */
int	store_conflict_get(struct store *s, enum store_conn conn,
	    int64_t conflict_id, struct store_conflict *ret);
/* Open conflicts in id order (reader).  Count given to cb, or -errno. */
int	store_conflicts_list(struct store *s, int limit, store_conflict_cb cb,
	    void *arg);
/*
 * Resolve cf (inside a batch): the document (cur as read on the writer)
 * becomes body (NULL: a tombstone) at rev + 1 on top of their version;
 * with push, an intent sends it (mine, merged); without, queued local
 * intents are dropped (theirs).  Change-log origin "resolve".
 */
int	store_resolve(struct store *s, const struct store_conflict *cf,
	    const struct store_doc *cur, const char *body, bool push,
	    int64_t now_ms, int64_t *ret_seq, int64_t *ret_rev);

/*
 * A merge made without conflicts (inside a batch): like a resolution, the
 * document (cur as read on the writer; not conflicted) becomes body (NULL:
 * a tombstone) at rev + 1 on top of their_version, whose body theirs is the
 * new base; with push an unsent intent sends it, without (the merge equals
 * theirs) every queued intent of the document is dropped.  Change-log
 * origin "merge".  -EINVAL if the document is conflicted.
 */
int	store_merged(struct store *s, const struct store_doc *cur,
	    const char *collection, const char *id, const char *body,
	    int64_t their_version, bool their_deleted, const char *theirs,
	    bool push, int64_t now_ms, int64_t *ret_seq, int64_t *ret_rev);
/* The document's base: the body as last synced (writer).  0 and *ret_base
 * malloc'd, or NULL if never synced or deleted there; -ENOENT if no doc. */
int	store_doc_base(struct store *s, const char *collection, const char *id,
	    char **ret_base);
/* 1 if outbox row oseq is still queued, 0 if not (answered, dropped by a
 * merge or resolution), or -errno (writer). */
int	store_outbox_has(struct store *s, int64_t oseq);

/*
 * One document's entries in the local change log, its latest limit ones,
 * oldest first (reader): its own writes, pulled changes, merges and
 * resolutions, each with the rev it made and its time (Unix ms).  A
 * signed entry also has the version it made: a change of this device the
 * remote applied (sig not NULL), the record sent; a pulled change
 * (pulled_sig not NULL), its change id (device NULL if none named a
 * key), the record's ts and signature, the record's text if the remote
 * sent it, and the revision's body (NULL: a delete, or a body not kept),
 * from which a reader rebuilds the record (record_rebuild) when there is
 * no text.  Nothing is verified here.
 * Fields are valid during the callback only.  Count given to cb, or
 * -errno.
 */
struct store_doc_change {
	int64_t		 seq;
	int64_t		 rev;
	enum store_origin origin;
	int64_t		 ts_ms;
	int64_t		 version;	/* 0 if not signed */
	const void	*record;	/* NULL: none kept */
	size_t		 record_len;
	const char	*sig;		/* ours, base64url; NULL: none */
	const void	*pulled_sig;	/* pulled; NULL: not signed */
	size_t		 pulled_sig_len;
	const void	*device;	/* pulled: STORE_DEVICE_LEN bytes */
	int64_t		 device_seq;
	int64_t		 record_ts;	/* pulled: the record's ts */
	const char	*body;		/* pulled: the revision's body */
	int64_t		 prev;		/* the document's change before, 0 */
};
typedef int (*store_doc_change_cb)(const struct store_doc_change *c,
	    void *arg);
int	store_doc_changes(struct store *s, const char *collection,
	    const char *id, int limit, store_doc_change_cb cb, void *arg);
/*
 * The same entries walked back: from the change seq from (one of this
 * document's; 0: its latest) at most limit of them, newest first, so a
 * caller can read a long log in short steps, each going on from the
 * last entry's prev (0: that was the first).  A cb that returns < 0
 * stops the walk, and that value is returned (a bound the caller set:
 * the entries given so far are all there is to take).
 */
int	store_doc_changes_back(struct store *s, const char *collection,
	    const char *id, int64_t from, int limit, store_doc_change_cb cb,
	    void *arg);

/* Parked (rejected) intents, oldest first, with the remote's reason
 * (reader).  Count given to cb, or -errno. */
typedef int (*store_rejected_cb)(const char *collection, const char *id,
	    const char *error, void *arg);
int	store_rejected_list(struct store *s, int limit, store_rejected_cb cb,
	    void *arg);

/*
 * A change of this device came back from the remote (a pull) at version
 * with body (NULL: a delete): if the outbox still holds its record (the
 * row whose device seq is change_seq, for collection/id, not answered),
 * that is the push's answer: settle the row exactly as
 * store_push_applied() does (version and base advance; later intents
 * stay queued on top).  1 if a row was settled, 0 if none was (answered
 * already, dropped by a merge or resolution, or never ours to send), or
 * -errno (writer, inside a batch).
 */
int	store_push_settle_change(struct store *s, const char *collection,
	    const char *id, int64_t change_seq, int64_t version,
	    const char *body);

/*
 * Parked pulled changes: a change from the remote that could not be
 * applied (why: reason) is kept here, counted in store_counts().parked,
 * and the pull goes on past it.  add: writer, inside a batch; change (the
 * remote's change id) may be NULL.  list: reader, oldest first, fields
 * valid during the call; the count given to cb, or -errno.
 */
struct store_parked {
	const char	*collection;
	const char	*id;
	int64_t		 version;
	const char	*change;	/* NULL if the remote gave none */
	const char	*reason;
	int64_t		 created_ms;
};
typedef int (*store_parked_cb)(const struct store_parked *p, void *arg);
int	store_parked_add(struct store *s, const char *collection,
	    const char *id, int64_t version, const char *change,
	    const char *reason, int64_t now_ms);
int	store_parked_list(struct store *s, int limit, store_parked_cb cb,
	    void *arg);

/* PRAGMA integrity_check on the writer: 0 if "ok", -EBADMSG otherwise. */
int	store_integrity_check(struct store *s);

#endif
