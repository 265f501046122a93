/*
 * sync_int: what the sync engine's files (sync.c, sync_push.c,
 * sync_pull.c, sync_http.c) share and nothing else sees.
 */
#ifndef FERRY_SYNC_INT_H
#define FERRY_SYNC_INT_H

#include <stdbool.h>
#include <stdint.h>

#include "backoff.h"
#include "jobq.h"
#include "sync.h"
#include "wire.h"

#define PUSH_BATCH	1000	/* changes per push request (the server's cap) */
#define PULL_LIMIT	1000	/* changes per pull page */
#define PULL_WAIT	30	/* seconds a long-poll may be held */
#define PULL_AHEAD	4	/* pages fetched and not yet applied */
#define PULL_INLINE_MAX	(16 * 1024) /* smaller pages skip the workers */
#define PUSH_TIMEOUT_MS	60000L
#define CONNECT_TIMEOUT_MS 10000L

/*
 * Where the push pipeline's prepare stage is.  A batch moves
 * PREPARING -> READY -> (sent: push_inflight) and the stage goes back to
 * UNKNOWN; a prepare that finds nothing leaves EMPTY, which with no
 * push_need and nothing in flight or being recorded means nothing
 * sendable is left (sync_push_idle).
 */
enum push_stage {
	PUSH_UNKNOWN,		/* nothing prepared; a prepare may find work */
	PUSH_PREPARING,		/* a prepare op is queued on the writer */
	PUSH_READY,		/* push_ready waits for the request slot */
	PUSH_EMPTY,		/* the last prepare found nothing to send */
};

/* The pull pipeline's request slot. */
enum pull_fetch {
	PULL_NONE,		/* no request under way */
	PULL_FETCHING,		/* a request answered at once (wait=0) */
	PULL_LONGPOLL,		/* a long-poll held by the server */
};

/* How the pull reads: a page at a time, or ahead from the hint. */
enum pull_pace {
	PULL_LIVE,		/* caught up (the last page was not full) */
	PULL_CATCHING_UP,	/* the last page parsed was full */
};

/* Where a key rotation is (sync_rotate.c). */
enum rot_stage {
	ROT_NONE,		/* none under way */
	ROT_WAIT,		/* for the push in flight to be answered */
	ROT_PREPARE,		/* a writer op makes the new key file */
	ROT_SEND,		/* the statement is being sent */
	ROT_RETRY,		/* to be sent again after a backoff */
	ROT_COMMIT,		/* a writer op installs the new key file */
	ROT_SWAP,		/* for pulled pages to be applied */
	ROT_DISCARD,		/* a writer op removes the new key file */
};

/*
 * The keys this device rotated away from, newest first: a change one of
 * them signed may come back in a pull (its push's reply lost) however
 * many rotations later the device hears of it, and is settled as its
 * own.  Bounded: the last SYNC_ROT_PREV_MAX, the oldest dropped (eight
 * rotations while one change's reply is outstanding is far beyond what
 * happens; a change of a key dropped is merged like another device's).
 */
#define SYNC_ROT_PREV_MAX	8

struct sync_keys_prev {
	size_t	n;
	char	key[SYNC_ROT_PREV_MAX][KEYS_PUB_B64_LEN + 1];
};

struct push_item {
	int64_t	 oseq;
	char	*collection;
	char	*id;
	char	*body;		/* the body the record carries; NULL: delete */
};

struct push_step {
	struct sync		*sy;
	struct push_item	*items;
	size_t			 n;
	struct wire_push_req	 req;		/* the request, as it is written */
	char			*text;		/* the request body, written */
	size_t			 len;
	json_t			*results;	/* the server's answer */
	int			 limit;
	int64_t			 after;		/* skip records up to this seq */
	int64_t			 last_change_seq; /* highest record in it */
	uint64_t		 gen;		/* sy->push_gen when made */
};

/*
 * A pulled change's key and signature, decoded by the encoder thread (the
 * writer is the pull's bottleneck) for the replica to keep (pl points
 * into this struct and into the change).
 */
struct pull_sig {
	struct store_pulled	 pl;
	unsigned char		 device[STORE_DEVICE_LEN];
	unsigned char		 sig[64];
};

struct pull_step {
	struct sync	*sy;
	char		*text;		/* the answer, until parsed */
	size_t		 len;		/* its length (kept) */
	char		 bad[JSON_ERROR_TEXT_LENGTH]; /* why it was refused */
	json_t		*changes;	/* until applied (writer frees it) */
	char		**bodies;	/* each change's body as text, or NULL */
	struct pull_sig	*sigs;		/* each change's, with bodies */
	char		**why;		/* why a change cannot apply (NULL: it
					 * can; the array only if one cannot) */
	size_t		 n;		/* changes in the page */
	int64_t		 since;		/* the cursor this page follows */
	int64_t		 last_seq;
	uint64_t	 round;
	uint64_t	 gen;		/* sy->pull_gen when fetched */
	int64_t		 hint;		/* the next page was fetched from
					 * here before parsing (0: not) */
	bool		 stale;		/* since was not the stored cursor */
	bool		 merged;	/* a merge queued a change to push */
	bool		 settled;	/* a pulled-back change of ours was
					 * the answer to its push */
	bool		 queued;	/* in a worker's queue (counted) */
};

struct waiter {
	struct vl_call	*call;
	uint64_t	 pull_round;	/* needs a caught-up pull of this round */
};

struct sync {
	struct event_base	*base;
	struct store		*st;
	struct writer		*writer;
	const struct keys	*keys;
	struct sync_transport	 tr;		/* the remote */
	char			*remote;
	struct backoff		 backoff;
	struct event		*retry_ev;
	sync_changed_fn		 changed;
	sync_reply_fn		 reply;
	void			*arg;

	enum sync_state_id	 state;		/* sync_set_state only */
	bool			 cursor_known;	/* read at start */
	char			 last_error[512];
	int64_t			 last_ok_ms;
	/* The remote answered 401 "revoked" (its "revoked" member): when
	 * and why, until an exchange succeeds again.  0: not revoked. */
	int64_t			 revoked_ms;
	char			 revoked_reason[256];

	enum push_stage		 push_stage;	/* push_stage_set only */
	struct push_step	*push_inflight;	/* while its request runs */
	struct push_step	*push_ready;	/* prepared, not yet sent */
	int			 push_applying;	/* apply ops queued */
	bool			 push_need;	/* something may be sendable:
						 * prepare again */
	int64_t			 push_handed;	/* records up to this seq are
						 * in a request or ready */
	uint64_t		 push_gen;	/* bumped by push_reset */
	int			 push_limit;

	enum pull_fetch		 pull_fetch;	/* pull_fetch_set only */
	struct sync_req		*pull_req;	/* the request under way */
	uint64_t		 req_round;	/* its round */
	int			 pull_applying;	/* pages being parsed or queued
						 * to the writer */
	struct jobq		*parser;	/* parses pages, one at a time */
	struct jobq		*encoder;	/* writes their bodies as text */
	struct pull_step	*pull_unknown;	/* fetched last, its last_seq
						 * not yet known: no fetch */
	enum pull_pace		 pull_pace;
	int			 pull_at_parser; /* pages in the workers' */
	int			 pull_at_encoder; /* queues */
	uint64_t		 pull_gen;	/* bumped by pull_rewind */
	int64_t			 cursor;	/* applied and stored */
	int64_t			 fetch_cursor;	/* fetched (maybe not applied) */
	uint64_t		 pull_round;	/* rounds started */
	uint64_t		 caught_round;	/* last round that caught up */
	uint64_t		 caught_after;	/* caught up once pages apply */

	struct waiter		*waiters;
	size_t			 nwaiters;
	size_t			 capwaiters;

	/* Key rotation (sync_rotate.c): while rot_stage is not ROT_NONE,
	 * no record is made and no pull starts. */
	enum rot_stage		 rot_stage;
	struct keys		*rot_keys;	/* = keys, writable (the swap) */
	char			*rot_dir;	/* where device.key is */
	struct keys		*rot_next;	/* the key that follows */
	int64_t			 rot_seq;	/* the old key's last seq */
	struct vl_call		*rot_call;	/* RotateKey waiting, or NULL */
	struct sync_req		*rot_req;	/* the statement's request */
	struct event		*rot_ev;	/* retry timer */
	struct backoff		 rot_backoff;
	/* The keys rotated from, newest first (kept as meta "keys_prev"
	 * and "key_prev"); and what they are once the rotation under way
	 * is done (its PREPARE op stored that). */
	struct sync_keys_prev	 rot_prev;
	struct sync_keys_prev	 rot_prev_next;
	/* Selective sync (sync_select.c). */
	char			*cfg_collections; /* ferryd.conf's, or NULL */
	char			*sync_set;	/* the set synced (collset) */
	char			*pull_filter;	/* collections=, NULL: none */
	bool			 pull_hold;	/* a change is being stored */
};

/* What sync_select_settle decided (strings malloc'd). */
struct sync_select {
	char		*set;		/* the collections synced */
	char		*filter;	/* the pull filter, NULL: none */
	int64_t		 cursor;	/* the pull cursor */
	bool		 moved;		/* the cursor went back */
};

/* --- sync.c: the engine --- */

/* The one place the state changes (logged, told to the daemon). */
void	sync_set_state(struct sync *sy, enum sync_state_id state,
	    const char *reason);
/* A pipeline's step moved: idle or syncing, if running. */
void	sync_update(struct sync *sy, const char *reason);
/* Running or offline: the pipelines may start exchanges. */
bool	sync_running(const struct sync *sy);

/* The state or the counters moved: tell the daemon (Status). */
void	sync_notify(struct sync *sy);
/* Record (and log once, when it changes) the last error. */
void	sync_error(struct sync *sy, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/* A transient failure: offline, everything retried after a backoff. */
void	sync_transient(struct sync *sy);
/* An exchange with the remote succeeded. */
void	sync_ok(struct sync *sy);
/* A definitive refusal: stop until Sync or reload. */
void	sync_pause(struct sync *sy);
/* Queue a pipeline's step on the writer, in a transaction of its own
 * (writer.h "alone"): arg is both the op's and done's.  0 or -ENOMEM. */
int	sync_writer_add(struct sync *sy, writer_run_fn run,
	    writer_op_done_fn done, void *arg);
/* Start a request through the transport (see struct sync_transport). */
int	sync_send(struct sync *sy, const char *method, const char *path_query,
	    const char *body, size_t len, long timeout_ms, long connect_ms,
	    sync_req_done_fn cb, void *arg, struct sync_req **ret);
/* An answer: 1 ok (200), 0 transient, -1 definitive (last_error set). */
int	sync_classify(struct sync *sy, const struct http_result *res,
	    const char *what);
/* Answer the Sync(wait) callers whose conditions now hold. */
void	sync_waiters_check(struct sync *sy);

/* --- sync_select.c --- */

/*
 * Writer thread: store asked (a normalised set, NULL: keep the stored
 * one) as the set wanted, and move the stored pull filter and cursor to
 * it (docs/sync.md "Selective sync"); the writer connection sends only
 * that set from now on.  0 and *ret, or -errno.
 */
int	sync_select_settle(struct store *st, const char *cfg_set,
	    const char *asked, struct sync_select *ret);
/* Loop thread: use sel's set and filter from now on (taken from sel). */
void	sync_select_take(struct sync *sy, struct sync_select *sel);
void	sync_select_clear(struct sync_select *sel);

/* --- sync_pull.c (selective sync) --- */

/* Drop what was fetched ahead and fetch again from sy->cursor, with the
 * filter in force (unless the pull is held). */
void	sync_pull_restart(struct sync *sy);

/* --- sync_push.c --- */

/* Move the push pipeline on: send what is ready, prepare what is next. */
void	sync_push_start(struct sync *sy);
/* A push step is under way (prepared, in flight or being recorded). */
bool	sync_push_busy(const struct sync *sy);
/* Nothing sendable is left. */
bool	sync_push_idle(const struct sync *sy);
void	sync_push_free(struct sync *sy);
/* Writer thread: merge a document's local change with the remote's. */
int	sync_merge(struct writer_batch *b, const struct store_doc *cur,
	    int64_t oseq, const char *collection, const char *id,
	    int64_t their_version, bool their_deleted, const char *theirs_text,
	    bool *ret_push);

/* --- sync_rotate.c --- */

/* A pipeline's step moved: move a rotation on if it waits for that. */
void	sync_rotate_poll(struct sync *sy);
/* A rotation holds new records and pulls back. */
bool	sync_rotate_holds(const struct sync *sy);
/* ... and, once it has begun to tell the remote, every push request. */
bool	sync_rotate_holds_requests(const struct sync *sy);
/* Whether key (len bytes) is one this device rotated from. */
bool	sync_rotate_is_prev(const struct sync *sy, const char *key,
	    size_t len);
/*
 * Writer thread: the keys rotated from as the replica stores them (meta
 * "keys_prev", and "key_prev", the newest, which a replica from before
 * the list was kept has alone) into *ret, newest first; none in a replica
 * from before either was kept.  0, with *ret_bad NULL, or the name of the
 * meta that held a value that is not a key (that value is left out); or
 * -errno from the store.
 */
int	sync_rotate_prev_load(struct store *st, struct sync_keys_prev *ret,
	    const char **ret_bad);
/* On the loop, before pulls start: take the keys sync_rotate_prev_load
 * read as the ones rotated from, but the device key. */
void	sync_rotate_prev_take(struct sync *sy,
	    const struct sync_keys_prev *prev);
void	sync_rotate_stop(struct sync *sy);
void	sync_rotate_free(struct sync *sy);

/* --- sync_pull.c --- */

/* Start the next pull request if none is under way and the pipeline has
 * room; wait is the long-poll's seconds (0: answer at once). */
void	sync_pull_start(struct sync *sy, int wait);
/* Replace a waiting long-poll by an immediate pull. */
void	sync_pull_now(struct sync *sy);
/* A pull exchange is under way (not a long-poll waiting). */
bool	sync_pull_busy(const struct sync *sy);

/*
 * The default transport: lib/http on base, each request signed with keys
 * (borrowed: it must outlive the transport) for the remote's base URL
 * (copied).  Fills *ret; 0 or -errno.
 */
int	sync_http_new(struct event_base *base, const struct keys *keys,
	    const char *remote, struct sync_transport *ret);

#endif
