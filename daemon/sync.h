/*
 * sync: the sync engine of ferryd: one pusher and one long-poll puller
 * talking to the remote (DESIGN "Outbox and push", "Remote protocol v1"),
 * through a transport (struct sync_transport below): by default lib/http,
 * libcurl multi on the daemon's event loop, each request signed with the
 * device key (sync_http.c); unit tests pass a scripted one.  Nothing here
 * blocks.  Every change to the replica it makes goes through the writer
 * thread as an op with its own completion, in the same batches as local
 * writes.
 *
 * Push: an op picks the sendable intents, turns each new one into a signed
 * record (base = the document's version) and stores the record bytes in its
 * outbox row in the same transaction; the batch is POSTed; another op
 * applies the results (applied/duplicate: synced; conflict: merged, or
 * queued as a conflict if the merge clashes; rejected: parked).  A
 * transport failure, 408, 429 or 5xx retries the same bytes after a
 * full-jitter backoff (capped); 400, 401, 403 and 413 are definitive: the
 * engine pauses with the reason until the next Sync call or reload.  One
 * push request is in flight at a time; the next batch is prepared
 * (records made and stored) meanwhile.
 *
 * Pull: GET /v1/changes from the stored cursor, long-polling when caught
 * up; each page is applied in one op with the new cursor.  A change to a
 * document without local changes is applied (Watch origin "remote"); one
 * to a document with a local change not yet on the server is merged with
 * it (a rebase: Watch origin "merge"), or queued as a conflict if they
 * clash; the device's own changes coming back are recognised: one whose
 * push is still unanswered is that push's answer (its row settles as
 * "applied" would settle it), others are skipped.  Pages are parsed and
 * their bodies encoded on worker threads, a few pages ahead of the writer.
 *
 * The engine is one state machine (enum sync_state_id below; sync.c):
 * each transition is logged once and told through the changed callback.
 * Files: sync.c the engine, sync_push.c and sync_pull.c the pipelines,
 * sync_http.c the default transport, sync_int.h what they share.
 */
#ifndef FERRY_SYNC_H
#define FERRY_SYNC_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "http.h"
#include "keys.h"
#include "store.h"
#include "writer.h"

struct sync;
struct sync_req;
struct vl_call;		/* a Sync call: opaque here, answered by reply */

/*
 * The transport seam: how the engine talks to the remote.  start sends
 * method on path_query (e.g. "/v1/changes?since=0&limit=1000&wait=30")
 * with body (len bytes, may be NULL), bounded by timeout_ms (the whole
 * exchange) and connect_timeout_ms, and later calls cb exactly once on the
 * loop thread with the answer (res->err != 0: the transport failed; the
 * body is valid during the call only), never from inside start, unless
 * the request is cancelled first, after which cb is never called.  start
 * returns 0 and *ret (may be NULL to discard), or -errno (cb will not be
 * called).  cancel accepts NULL.  free cancels what is under way and frees
 * ctx (may be NULL: nothing to free).
 */
typedef void (*sync_req_done_fn)(const struct http_result *res, void *arg);

struct sync_transport {
	int	(*start)(void *ctx, const char *method, const char *path_query,
		    const char *body, size_t len, long timeout_ms,
		    long connect_timeout_ms, sync_req_done_fn cb, void *arg,
		    struct sync_req **ret);
	void	(*cancel)(void *ctx, struct sync_req *req);
	void	(*free)(void *ctx);
	void	*ctx;
};

struct sync_config {
	const char	*remote;	/* base URL, e.g. http://127.0.0.1:8765 */
	int		 backoff_max;	/* seconds */
	const char	*collections;	/* [sync] collections (collset), NULL:
					 * every collection */
};

/*
 * The engine's state (sync.c holds the transitions).  STARTING: reading
 * the pull cursor; IDLE: nothing to send, caught up (a long-poll may be
 * waiting); SYNCING: an exchange or a write of its answer is under way;
 * OFFLINE: the remote could not be reached, retrying after a backoff;
 * PAUSED: the remote refused definitively (400, 401, 403, 413), nothing
 * is sent until Sync or reload; STOPPING: shutdown.
 */
enum sync_state_id {
	SYNC_STARTING,
	SYNC_IDLE,
	SYNC_SYNCING,
	SYNC_OFFLINE,
	SYNC_PAUSED,
	SYNC_STOPPING,
};

/* Called on the loop thread when the engine's state or counters moved. */
typedef void (*sync_changed_fn)(void *arg);
/*
 * Answers a Sync call: error NULL when it is done (the status reply is
 * the daemon's), else the error's name (e.g. "io.ferry.Offline") and its
 * parameters (borrowed, may be NULL).  The engine never touches the call
 * otherwise.
 */
typedef void (*sync_reply_fn)(void *arg, struct vl_call *call,
	    const char *error, json_t *params);

/*
 * Start the engine: it reads its cursor through the writer, then pushes
 * and pulls.  tr NULL: the default transport to cfg->remote, signed with
 * keys; otherwise the engine takes tr (copied; its ctx is the engine's,
 * freed by sync_free, and by sync_new when that fails).  keys, st and
 * writer are borrowed.  0 or -errno.
 */
int	sync_new(struct event_base *base, struct store *st,
	    struct writer *writer, const struct keys *keys,
	    const struct sync_config *cfg, const struct sync_transport *tr,
	    sync_changed_fn changed, sync_reply_fn reply, void *arg,
	    struct sync **ret);
/* Start no new work (shutdown): call before draining the writer. */
void	sync_stop(struct sync *sy);
void	sync_free(struct sync *sy);

/* Local writes were committed: push soon. */
void	sync_kick(struct sync *sy);
/* SIGHUP: take the new backoff cap and leave a paused state. */
void	sync_reload(struct sync *sy, int backoff_max);
/*
 * The Sync method: push and pull now (also leaves a paused state).  With
 * wait, call is answered once nothing sendable is left and the replica has
 * pulled up to the server's position at the time of the call, or with
 * io.ferry.Offline if the remote cannot be reached; without, at once.
 */
void	sync_request(struct sync *sy, struct vl_call *call, bool wait);

/*
 * A GET of path_query (e.g. "/v1/docs/c/id/history") on the remote
 * through the engine's transport (signed), for readers other than the
 * engine (History), answered within timeout_ms (the connection within the
 * engine's own bound).  cb runs on the loop thread with the answer, as for
 * the transport's start; *ret (may be NULL) gets the request so the
 * caller can cancel it with sync_cancel.  Never blocks.  0 or -errno.
 */
int	sync_fetch(struct sync *sy, const char *path_query, long timeout_ms,
	    sync_req_done_fn cb, void *arg, struct sync_req **ret);
/* The same for a POST of body (len bytes, copied by the transport). */
int	sync_post(struct sync *sy, const char *path, const char *body,
	    size_t len, long timeout_ms, sync_req_done_fn cb, void *arg,
	    struct sync_req **ret);
/* Cancel a request of sync_fetch or sync_post; its callback will not
 * run.  Accepts NULL. */
void	sync_cancel(struct sync *sy, struct sync_req *req);

/* For Status: "idle", "syncing" (also while starting), "offline" or
 * "paused". */
const char *sync_state(const struct sync *sy);
enum sync_state_id sync_state_id(const struct sync *sy);
/* The last error in words, or NULL. */
const char *sync_last_error(const struct sync *sy);
/* The collections synced (collset: "*" is every one), NULL until the
 * engine has started. */
const char *sync_collections(const struct sync *sy);
/*
 * Sync only set (normalised, collset_norm) from now on, and remember it
 * across restarts (it wins over ferryd.conf): an added collection is
 * pulled from its start, the others are not pulled again; changes of
 * collections left out stay in the outbox.  Then call is answered as
 * sync_request(call, wait) would, or with InvalidArgument if the replica
 * could not store it.  0 or -ENOMEM (call not answered).
 */
int	sync_select_change(struct sync *sy, const char *set,
	    struct vl_call *call, bool wait);
/*
 * Whether the remote said this device's key is revoked (a 401 with a
 * "revoked" member, docs/protocol.md); then *ret_ms gets when (Unix ms)
 * and *ret_reason the reason or NULL.  The engine is paused then: it tries
 * again only on Sync or reload, never on a backoff.
 */
bool	sync_key_revoked(const struct sync *sy, int64_t *ret_ms,
	    const char **ret_reason);
/*
 * Key rotation (sync_rotate.c, docs/protocol.md "Rotating a key").
 * sync_rotate_setup gives the engine the device key it may replace (the
 * one sync_new was given, writable) and the data directory, and resumes a
 * rotation left pending by a crash (device.key.next present; blocks on
 * reading it).  0 or -errno.  sync_rotate is the RotateKey method: make a
 * new key, have the remote take it, switch to it; call is answered with
 * {key, old_key} once it is in use, io.ferry.Offline when the remote cannot
 * be reached (the rotation goes on in the background, retried after a
 * backoff) or io.ferry.RotationRefused with the reason (the old key stays).
 * sync_rotation_state: what a rotation under way waits for, or NULL.
 */
int	sync_rotate_setup(struct sync *sy, struct keys *keys,
	    const char *data_dir);
void	sync_rotate(struct sync *sy, struct vl_call *call);
const char *sync_rotation_state(const struct sync *sy);
/* Unix ms of the last successful exchange with the remote, 0 if none. */
int64_t	sync_last_ok_ms(const struct sync *sy);

#endif
