/*
 * srv_db: ferry-server's store (DESIGN "Remote protocol v1": "The
 * server stores documents, the full signed change log, and per device the
 * highest applied seq"), one interface over two backends: SQLite (a file,
 * the embedded default, srv_db_sqlite.c) and PostgreSQL (a postgresql://
 * URL, many ferry-server instances on one database, srv_db_pg.c).  What
 * follows is the contract both keep; where the SQLite text names a
 * mechanism, PostgreSQL keeps the same promise its own way (srv_db_pg.c).
 *
 * Tables: docs (current version, tombstone flag and body of every
 * document), changes (the global change log: one row per accepted change,
 * with its exact record bytes and signature, seq = INTEGER PRIMARY KEY with
 * no gaps), devices (per device the highest seq that was applied or
 * answered "conflict") and conflicts (change ids last answered "conflict",
 * so a resent one is judged again instead of refused as stale),
 * revoked_keys (key, when, why), key_info (when a key was added to the
 * keys file and last seen) and key_rotations (old key, new key, last seq,
 * statement).  An applied change id is found through
 * changes' unique (device, dseq) index.
 *
 * Writes happen only between srv_db_begin and srv_db_commit: one
 * transaction per push batch, journal_mode=WAL and synchronous=FULL, so a
 * batch whose COMMIT returned survives kill -9 and power loss and a batch
 * that did not commit left nothing.  srv_db_head is the committed head
 * only; changes made in an open batch show in it after COMMIT.
 *
 * A handle is one connection, used from one thread only: the handle
 * srv_db_open gives from the event loop's, a srv_db_worker handle from its
 * worker's.  Every call is a short statement or transaction; nothing here
 * logs.  Errors are -errno (SQLite codes mapped as in lib/store.c;
 * PostgreSQL's connection failures -ENOTCONN, serialisation failures
 * -EAGAIN) with the backend's message in srv_db_errmsg.  Strings handed to callbacks are valid during the
 * callback only.
 */
#ifndef FERRY_SRV_DB_H
#define FERRY_SRV_DB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

struct srv_db;

struct srv_doc {
	int64_t	 version;	/* 0: no such document */
	bool	 deleted;
	char	*body;		/* JSON; NULL if deleted or absent */
};

enum srv_outcome {
	SRV_OUTCOME_NONE = 0,	/* change id never seen */
	SRV_OUTCOME_APPLIED,
	SRV_OUTCOME_CONFLICT,
};

struct srv_change_id {
	enum srv_outcome outcome;
	int64_t		 version;	/* applied: version it made */
	char		*record;	/* applied: stored record */
	size_t		 record_len;
};

/* One accepted change, to store. */
struct srv_apply {
	const char	*collection;
	const char	*id;
	int64_t		 version;	/* the new version */
	const char	*op;		/* "put" or "delete" */
	const char	*body;		/* JSON; NULL for delete */
	size_t		 body_len;
	const char	*device;
	int64_t		 dseq;
	int64_t		 ts;		/* the record's ts (ms) */
	const char	*record;
	size_t		 record_len;
	const char	*sig;
};

/* A change-log row, for /v1/changes and history. */
struct srv_change_row {
	int64_t		 seq;
	const char	*collection;
	const char	*id;
	int64_t		 version;
	const char	*op;
	const char	*device;
	int64_t		 dseq;
	int64_t		 ts;
	int64_t		 received_ms;
	const char	*record;
	size_t		 record_len;
	const char	*sig;
};

/* Return < 0 to stop the iteration with that value. */
typedef int (*srv_change_cb)(const struct srv_change_row *row, void *arg);
/* The head may have moved (another instance committed), or the keys. */
typedef void (*srv_db_wake_cb)(void *arg);
/* One allowed key (name may be NULL); < 0 stops the iteration. */
typedef int (*srv_db_key_cb)(const char *key, const char *name, void *arg);

/*
 * Open (creating or migrating) the database at path: a file for SQLite, a
 * postgresql:// or postgres:// URL for PostgreSQL.  0, or -errno with a
 * malloc'd message in *ret_error (if not NULL); -EPROTONOSUPPORT for a
 * schema newer than this server knows or a URL when this ferry-server was
 * built without libpq.
 */
int	srv_db_open(const char *path, struct srv_db **ret, char **ret_error);
/* Whether path names a PostgreSQL database rather than a file. */
bool	srv_db_is_url(const char *path);
/* Roll back an open batch, close (checkpointing the WAL).  NULL is fine. */
void	srv_db_close(struct srv_db *db);
const char *srv_db_errmsg(const struct srv_db *db);

/* Highest committed change-log seq (0: empty).  Never blocks: with
 * PostgreSQL it is the highest this instance has seen, from its own
 * commits, its reads and other instances' notifications. */
int64_t	srv_db_head(const struct srv_db *db);

/*
 * The handle the calling worker thread (lib/jobq) applies push batches
 * on: begin, srv_push_apply, commit there instead of on the loop, many
 * batches at once.  The handle is the thread's own (made on first use,
 * freed when the thread exits); srv_db_head of db sees what it commits.
 * -EOPNOTSUPP when the backend applies batches on the loop only (SQLite),
 * or -errno when it cannot connect.
 */
int	srv_db_worker(struct srv_db *db, struct srv_db **ret);
/* Whether srv_db_worker gives handles (else batches go on the loop). */
bool	srv_db_has_workers(const struct srv_db *db);
/*
 * Call cb(arg) on base's loop whenever another writer of the store may
 * have moved the head (long-poll wake-ups across instances).  A no-op (0)
 * for a backend that only this process writes.  0 or -errno.
 */
int	srv_db_watch(struct srv_db *db, struct event_base *base,
	    srv_db_wake_cb cb, void *arg);

/*
 * Allowed keys kept in the store, so that `ferry-server allow` on any
 * instance is seen by all (PostgreSQL).  srv_db_keys calls cb for each
 * (n or -errno); srv_db_allow adds one and tells every instance (0,
 * -EEXIST when it is listed already, -errno); after srv_db_watch,
 * srv_db_watch_keys has cb(arg) called on the loop when the list may have
 * changed.  -EOPNOTSUPP (watch: 0) for a backend that keeps no keys: with
 * SQLite the keys file is the list.
 */
int	srv_db_keys(struct srv_db *db, srv_db_key_cb cb, void *arg);
int	srv_db_allow(struct srv_db *db, const char *key, const char *name);
int	srv_db_watch_keys(struct srv_db *db, srv_db_wake_cb cb, void *arg);

/*
 * Revocations and key times (issue 13), kept in the store by both
 * backends: SQLite in tables of server.db, which `ferry-server revoke`
 * writes while the server runs (WAL); PostgreSQL in tables every instance
 * shares, told with the keys' notification (srv_db_watch_keys).
 *
 * srv_db_revoke records key as revoked at ms with reason (NULL: none): 0,
 * or -EEXIST when it is revoked already (the first revocation stays).
 * srv_db_unrevoke lifts it: 0, or -ENOENT when it was not revoked.  Both
 * tell every instance.  srv_db_revocations calls cb for each revoked key
 * (n or -errno).  srv_db_key_times calls cb for each key the store has a
 * time for, 0 where it has none: added (`allow`) and last seen (n or
 * -errno).  srv_db_note_added records when `allow` added key to the keys
 * file (only the first time).  srv_db_seen_write raises the last-seen time
 * of n keys, in one transaction of its own (never inside a batch).
 *
 * srv_db_outside_change says whether another process may have changed the
 * store since the last call (SQLite: PRAGMA data_version, a few
 * microseconds, asked before every request is authenticated); always false
 * for PostgreSQL, which is told by notification instead (it reads what
 * its listener has received, without waiting, and calls the keys
 * callback for a change of the keys there and then).
 */
typedef int (*srv_db_revoked_cb)(const char *key, int64_t revoked_ms,
	    const char *reason, void *arg);
typedef int (*srv_db_times_cb)(const char *key, int64_t added_ms,
	    int64_t seen_ms, void *arg);

struct srv_key_seen {
	const char	*key;
	int64_t		 ms;
};

int	srv_db_revoke(struct srv_db *db, const char *key, int64_t ms,
	    const char *reason);
int	srv_db_unrevoke(struct srv_db *db, const char *key);
int	srv_db_revocations(struct srv_db *db, srv_db_revoked_cb cb, void *arg);
int	srv_db_key_times(struct srv_db *db, srv_db_times_cb cb, void *arg);
int	srv_db_note_added(struct srv_db *db, const char *key, int64_t ms);
int	srv_db_seen_write(struct srv_db *db, const struct srv_key_seen *v,
	    size_t n);
bool	srv_db_outside_change(struct srv_db *db);

/*
 * Presence shared between instances (srv_presence.h), PostgreSQL only:
 * an UNLOGGED table of one row per device (its list as JSON text and when
 * it expires, Unix ms) and a notification naming the device on every put
 * (a wake-up only: the payload limit of 8000 bytes is far below a
 * device's list).  srv_db_presence_put stores device's list (0 or
 * -errno; now_ms lets it drop rows a minute past their expiry);
 * srv_db_presence_load calls cb for device's row (NULL: every row) and
 * returns how many, or -errno; after srv_db_watch, srv_db_watch_presence
 * has cb(device, arg) called on the loop for each put on any instance,
 * and cb(NULL, arg) when notifications may have been missed.  Both
 * -EOPNOTSUPP (watch: 0) when presence is not shared (SQLite: one
 * instance holds it all).
 */
typedef int (*srv_db_presence_row_cb)(const char *device, const char *list,
	    int64_t expires_ms, void *arg);
typedef void (*srv_db_presence_cb)(const char *device, void *arg);

int	srv_db_presence_put(struct srv_db *db, const char *device,
	    const char *list, int64_t expires_ms, int64_t now_ms);
int	srv_db_presence_load(struct srv_db *db, const char *device,
	    srv_db_presence_row_cb cb, void *arg);
int	srv_db_watch_presence(struct srv_db *db, srv_db_presence_cb cb,
	    void *arg);
bool	srv_db_shares_presence(const struct srv_db *db);

/*
 * Key rotations (docs/protocol.md "Rotating a key"), kept by both
 * backends: one row per retired key, naming the key that follows it, the
 * highest seq the old key signed, when, and the statement with its two
 * signatures (so anyone may check it again).  srv_db_rotate records one in
 * a transaction of its own (never inside a batch): 0, or -EEXIST when
 * old_key was rotated already or new_key is in a rotation already
 * (nothing written; a key that followed another may be rotated in its
 * turn: a chain); it tells
 * every instance as a change of the keys does.  srv_db_rotations calls cb
 * for each, in the order they were recorded (n or -errno).
 */
struct srv_rotation {
	const char	*old_key;
	const char	*new_key;
	int64_t		 seq;		/* the old key's last seq */
	int64_t		 ms;		/* when the server recorded it */
	const char	*statement;
	const char	*sig_old;
	const char	*sig_new;
};

typedef int (*srv_db_rotation_cb)(const struct srv_rotation *rot, void *arg);

int	srv_db_rotate(struct srv_db *db, const struct srv_rotation *rot);
int	srv_db_rotations(struct srv_db *db, srv_db_rotation_cb cb, void *arg);

/*
 * Per-collection grants (issue 13, srv_grants.h), kept in the store by
 * both backends (table key_grants; PostgreSQL tells every instance with
 * the keys' notification, SQLite's other processes see it through
 * srv_db_outside_change).  A key without a row may read and write every
 * collection.  read and write are the pattern lists as srv_grants_format
 * writes them ("" for none).  srv_db_grants calls cb for each row (n or
 * -errno); srv_db_grant_set stores a key's lists, or with rd NULL drops
 * its row (everything again): 0 or -errno.
 */
typedef int (*srv_db_grant_cb)(const char *key, const char *rd,
	    const char *wr, void *arg);

int	srv_db_grants(struct srv_db *db, srv_db_grant_cb cb, void *arg);
int	srv_db_grant_set(struct srv_db *db, const char *key, const char *rd,
	    const char *wr);

int	srv_db_begin(struct srv_db *db);
/* A failed COMMIT rolls back: the batch did not happen. */
int	srv_db_commit(struct srv_db *db);
void	srv_db_rollback(struct srv_db *db);

/* The document, or version 0 if it does not exist.  0 or -errno. */
int	srv_db_doc_get(struct srv_db *db, const char *collection,
	    const char *id, struct srv_doc *ret);
/* The same without the body (ret->body stays NULL). */
int	srv_db_doc_state(struct srv_db *db, const char *collection,
	    const char *id, struct srv_doc *ret);
void	srv_doc_clear(struct srv_doc *d);

/* What became of change id device:dseq.  0 or -errno. */
int	srv_db_change_id_get(struct srv_db *db, const char *device,
	    int64_t dseq, struct srv_change_id *ret);
void	srv_change_id_clear(struct srv_change_id *c);

/* What one change of a batch names, for srv_db_batch_read. */
struct srv_batch_key {
	const char	*collection;
	const char	*id;
	const char	*device;
	int64_t		 dseq;
};

/*
 * Inside a batch, before any of its changes is judged: the documents and
 * change ids its n changes name (duplicates allowed).  A backend whose
 * batches run at once (PostgreSQL) locks the existing documents among
 * them in one order every batch uses, so two batches that touch the same
 * documents in different orders wait for each other instead of
 * deadlocking (new documents too: a batch creating one waits for
 * another creating it, then finds it); it may also read the documents'
 * states and the change ids' outcomes ahead, a round trip for all of
 * them, and answer srv_db_doc_state and srv_db_change_id_get for them
 * from what it read and what the batch wrote since.  A backend whose batches run one at a
 * time (SQLite) does nothing.  The strings must stay valid until the
 * batch ends.  0 or -errno.
 */
int	srv_db_batch_read(struct srv_db *db, const struct srv_batch_key *keys,
	    size_t n);

/* The device's highest applied-or-conflicted seq, 0 if unknown. */
int	srv_db_max_seq(struct srv_db *db, const char *device, int64_t *ret);

/*
 * Inside a batch: store an accepted change (document and change log),
 * only if the document is still at version a->version - 1: -ESTALE if
 * another writer moved it since it was read (a lost race: answer
 * "conflict", never overwrite).  *ret_seq gets its change-log seq, or 0
 * when the backend assigns seqs at commit (PostgreSQL: seq order is commit
 * order).  a's strings must stay valid until the batch ends: a backend
 * may write at commit (PostgreSQL, which also wants the document named
 * to srv_db_batch_read first: -EINVAL otherwise).  0 or -errno.  The caller raises the
 * device's max_seq (srv_db_set_max_seq) before the batch commits, and
 * forgets an earlier "conflict" answer for the change id.
 */
int	srv_db_apply(struct srv_db *db, const struct srv_apply *a,
	    int64_t *ret_seq);
/* Inside a batch: remember device:dseq was answered "conflict" (the
 * caller raises max_seq as for an applied change). */
int	srv_db_note_conflict(struct srv_db *db, const char *device,
	    int64_t dseq);
/* Inside a batch: device:dseq, once a conflict, is applied now. */
int	srv_db_forget_conflict(struct srv_db *db, const char *device,
	    int64_t dseq);
/* Inside a batch: raise the device's max_seq to dseq (never lowers it). */
int	srv_db_set_max_seq(struct srv_db *db, const char *device,
	    int64_t dseq);

/*
 * Change-log rows with seq > since, in order, at most limit.  n or -errno.
 * When there is none and since is beyond the head this handle knows, the
 * head is read again from the store (another instance may have moved it),
 * so srv_db_head() after it is not behind since for a since that exists.
 */
int	srv_db_changes(struct srv_db *db, int64_t since, int limit,
	    srv_change_cb cb, void *arg);
/* The document's rows with version > after, in version order. */
int	srv_db_history(struct srv_db *db, const char *collection,
	    const char *id, int64_t after, int limit, srv_change_cb cb,
	    void *arg);

#endif
