/*
 * srv_http: ferry-server's HTTP front (evhttp): authentication, routing,
 * limits and long-polls for remote protocol v1 (DESIGN "Remote protocol
 * v1").
 *
 * Every request is authenticated before anything else (auth.h); a request
 * that fails gets 401 with a JSON error and reveals nothing, not even
 * whether its path exists.  Then:
 *   GET  /v1/info                          server, protocol, time, head
 *   POST /v1/push                          one transaction per batch
 *   GET  /v1/changes?since&limit&wait      change log, long-poll
 *   GET  /v1/docs/{collection}/{id}        current state, 404 if none
 *   GET  /v1/docs/{collection}/{id}/history?after&limit   signed records
 *   POST /v1/keys/rotate                   a key rotation (srv_rotate.h)
 * The path is split at '/' as sent and each segment percent-decoded before
 * routing and name checks (a bad escape, or one that decodes to '/' or
 * NUL, is 400); the signature covers the target as sent.  Unknown paths
 * get 404, other methods 405 with Allow (srv_conn answers methods evhttp
 * does not know with 501); HEAD is accepted wherever GET is and answered
 * with GET's header and Content-Length and no content.  A push body must
 * be application/json or have no Content-Type (415 otherwise) and not be
 * empty (400); a since beyond the head is 409.  Every answer is a compact
 * JSON object.
 *
 * Keys: a request must be signed by a key of the allow list (or any, in
 * open mode) that is not revoked; a revoked key's request gets 401 with
 * a "revoked" member ({"time","reason"}), records it signed are rejected
 * in any push, and history entries it signed carry the same member.  The
 * time of each key's last authenticated request is kept in memory and
 * written to the store every SRV_HTTP_SEEN_FLUSH_S seconds at most (and
 * at a clean stop): never a write per request.
 *
 * Bounds: request bodies over SRV_HTTP_BODY_MAX are refused by evhttp with
 * 413 before they are read into memory; a push of more than
 * SRV_PUSH_MAX_CHANGES changes gets 413; headers are capped at 64 KiB; at
 * most max_waiters long-polls wait at once (429 beyond); a reply of the
 * change log or of a history stops at about SRV_HTTP_REPLY_BUDGET bytes of
 * records (and at limit entries), so the client pages on.
 *
 * Connections are counted and capped, accept failures back off, and a
 * request with a body is refused before the body is read unless its
 * Authorization header is well formed, recent and from a known key and
 * the bytes of bodies being received stay within max_inflight (srv_conn).
 *
 * A push is answered only after its COMMIT; then every long-poll waiting
 * for something older than the new head is answered.  A long-poll whose
 * client closes its connection is dropped at once, its slot freed (evhttp
 * reads nothing while a request is in hand, so its socket is watched for
 * the end of file).
 *
 * A push's body is parsed and its signatures verified on a pool of worker
 * threads (lib/jobq), then applied on the loop in arrival order, one
 * transaction per push.
 *
 * Runs on the caller's event_base, which must have been made after
 * evthread_use_pthreads(); never blocks beyond one short SQLite statement
 * or transaction.  Logs requests at debug level and refusals at
 * info level.
 */
#ifndef FERRY_SRV_HTTP_H
#define FERRY_SRV_HTTP_H

#include <stdbool.h>

#include <event2/event.h>

#include "srv_access.h"
#include "srv_db.h"
#include "srv_grants.h"
#include "srv_keys.h"
#include "srv_rotate.h"

#define SRV_HTTP_BODY_MAX	(16 * 1024 * 1024)
#define SRV_HTTP_REPLY_BUDGET	(8 * 1024 * 1024)
#define SRV_HTTP_MAX_WAIT	60	/* seconds a long-poll may wait */
#define SRV_HTTP_MAX_WAITERS	512
#define SRV_HTTP_SCAN_MAX	10000	/* rows a filtered page reads past */

struct srv_http_config {
	bool	open;		/* accept any well-formed key */
	int	max_waiters;	/* concurrent long-polls */
	int	max_wait;	/* cap on ?wait=, seconds */
	int	threads;	/* push checkers (0: one per CPU) */
	int	max_connections; /* 0: srv_conn_default_max() */
	size_t	max_inflight;	/* body bytes at once (0: default) */
	int	max_scan;	/* rows a filtered page reads past (0:
				 * SRV_HTTP_SCAN_MAX) */
	/* Another process changed the store (`ferry-server revoke` on
	 * SQLite): reread the revocations now.  May be NULL. */
	void	(*reload)(void *arg);
	void	*reload_arg;
};

struct srv_http;

/* A server on base using db (both borrowed).  0, -ENOMEM. */
int	srv_http_new(struct event_base *base, struct srv_db *db,
	    const struct srv_http_config *cfg, struct srv_http **ret);
/*
 * Listen on addr:port (port 0: any free one).  *ret_port gets the port
 * actually bound.  0 or -errno.
 */
int	srv_http_listen(struct srv_http *h, const char *addr, int port,
	    int *ret_port);
/* Use ks (ownership moves here) from now on; the old set is freed. */
void	srv_http_set_keys(struct srv_http *h, struct srv_keys *ks);
/*
 * Refuse the keys of rv (sealed; ownership moves here) from now on: their
 * requests get 401 saying when and why they were revoked, records they
 * signed are rejected in any push, and history marks their entries.
 */
void	srv_http_set_revoked(struct srv_http *h, struct srv_revoked *rv);
/*
 * Treat the keys of rt (ownership moves here) as retired from now on
 * (srv_rotate.h): their requests get 401 saying which key follows them,
 * but for a retry of their rotation, and their records up to their last
 * seq are taken from their successor.
 */
void	srv_http_set_retired(struct srv_http *h, struct srv_retired *rt);

/*
 * Hold keys to gs (sealed; ownership moves here) from now on: a push to a
 * collection its key may not write is rejected per record, and changes,
 * documents and history of collections it may not read are never sent
 * (srv_grants.h).  Requests in flight keep the grant they started with.
 */
void	srv_http_set_grants(struct srv_http *h, struct srv_grants *gs);
/*
 * Stop accepting connections and answer every waiting long-poll with
 * what there is now.  Requests already being read are still served.
 */
void	srv_http_shutdown(struct srv_http *h);
void	srv_http_free(struct srv_http *h);

#endif
