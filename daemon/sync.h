/*
 * sync: the sync engine of ferryd: one pusher and one long-poll puller
 * talking to the remote (DESIGN "Outbox and push", "Remote protocol v1"),
 * over lib/http (libcurl multi on the daemon's event loop: nothing here
 * blocks).  Every change to the replica it makes goes through the writer
 * thread as an internal op, in the same batches as local writes.
 *
 * Push: an op picks the sendable intents, turns each new one into a signed
 * record (base = the document's version) and stores the record bytes in its
 * outbox row in the same transaction; the batch is POSTed; another op
 * applies the results (applied/duplicate: synced; conflict: merged, or
 * queued as a conflict if the merge clashes; rejected: parked).  A transport failure, 408, 429 or 5xx retries the same
 * bytes after a full-jitter backoff (capped); 400, 401, 403 and 413 are
 * definitive: the engine pauses with the reason until the next Sync call or
 * reload.  One push request is in flight at a time; the next batch is
 * prepared (records made and stored) meanwhile.
 *
 * Pull: GET /v1/changes from the stored cursor, long-polling when caught
 * up; each page is applied in one op with the new cursor.  A change to a
 * document without local changes is applied (Watch origin "remote"); one
 * to a document with a local change not yet on the server is merged with
 * it (a rebase: Watch origin "merge"), or queued as a conflict if they
 * clash; the device's own changes coming back are recognised and skipped.
 * Pages are parsed and their bodies encoded on worker threads, a few
 * pages ahead of the writer.
 */
#ifndef FERRY_SYNC_H
#define FERRY_SYNC_H

#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "http.h"
#include "keys.h"
#include "store.h"
#include "vl_server.h"
#include "writer.h"

struct sync;

struct sync_config {
	const char	*remote;	/* base URL, e.g. http://127.0.0.1:8765 */
	int		 backoff_max;	/* seconds */
};

/* Called on the loop thread when the engine's state or counters moved. */
typedef void (*sync_changed_fn)(void *arg);
/* Answers a Sync call that is done (the status reply is the caller's). */
typedef void (*sync_reply_fn)(void *arg, struct vl_call *call);

int	sync_new(struct event_base *base, struct store *st,
	    struct writer *writer, const struct keys *keys,
	    const struct sync_config *cfg, sync_changed_fn changed,
	    sync_reply_fn reply, void *arg, struct sync **ret);
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
 * A signed GET of path_query (e.g. "/v1/docs/c/id/history") on the
 * remote, for readers other than the sync engine (History), answered
 * within timeout_ms (the connection within the engine's own bound).  cb
 * runs on the loop thread with the answer, as for http_start; *ret (may
 * be NULL) gets the request so the caller can cancel it with
 * http_cancel.  Never blocks.  0 or -errno.
 */
int	sync_fetch(struct sync *sy, const char *path_query, long timeout_ms,
	    http_done_fn cb, void *arg, struct http_req **ret);

/* For Status: "idle", "syncing", "offline" or "paused". */
const char *sync_state(const struct sync *sy);
/* The last error in words, or NULL. */
const char *sync_last_error(const struct sync *sy);
/* Unix ms of the last successful exchange with the remote, 0 if none. */
int64_t	sync_last_ok_ms(const struct sync *sy);

#endif
