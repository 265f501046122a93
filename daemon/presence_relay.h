/*
 * presence_relay: ferryd's presence on its event loop: the SetPresence and
 * Who handlers, the table's timer, Watch's presence replies, and the
 * exchange with the remote (docs/protocol.md "Presence").
 *
 * Local side: a SetPresence call is checked (names, the state's size),
 * put in the table (presence.h, which holds the bounds and coalescing)
 * and answered at once; nothing is written to the replica.  Every change
 * the table emits becomes one {presence, gone} reply to the presence
 * watchers that want its collection.  A connection that closes takes its
 * entries with it (the vl_server close hook calls
 * presence_relay_conn_closed).
 *
 * Remote side, only with a sync engine: the local entries are POSTed to
 * /v1/presence as one list (one request in flight; a change while it is
 * under way is sent right after, so updates coalesce) on every change and
 * again every TTL / 3 while any exist, so the remote's copy never outlives
 * them by more than the TTL; the others' entries come on a long-poll of
 * GET /v1/presence (held by the remote until its list changes), which is
 * always under way.  A remote that cannot be reached: its entries are
 * dropped (gone) and the long-poll retried after a capped backoff; one
 * that does not know /v1/presence (404): tried again every 5 minutes.
 * Nothing here blocks.
 */
#ifndef FERRY_PRESENCE_RELAY_H
#define FERRY_PRESENCE_RELAY_H

#include <event2/event.h>
#include <jansson.h>

#include "sync.h"
#include "vl_server.h"
#include "watch.h"

struct presence_relay;

/*
 * watch and sync (NULL: no remote) are borrowed and must outlive the
 * relay (or presence_relay_stop is called first); device and device_name
 * are copied.  ttl_s is the TTL of local entries.  0 or -errno.
 */
int	presence_relay_new(struct event_base *base, struct watch *watch,
	    struct sync *sync, const char *device, const char *device_name,
	    int ttl_s, struct presence_relay **ret);
/* Shutdown: nothing more is emitted or sent (the entries are forgotten
 * by the remote at their TTL). */
void	presence_relay_stop(struct presence_relay *r);
/* Accepts NULL. */
void	presence_relay_free(struct presence_relay *r);

/* io.ferry.SetPresence and io.ferry.Who (parameters type-checked). */
void	presence_relay_set(struct presence_relay *r, struct vl_call *call,
	    json_t *params);
void	presence_relay_who(struct presence_relay *r, struct vl_call *call,
	    json_t *params);
/* Watch with presence: after watch_add succeeded on call, mark it and
 * send it every entry present now. */
void	presence_relay_watch(struct presence_relay *r, struct vl_call *call);
/* The connection conn_id closed (a vl_close_fn's work). */
void	presence_relay_conn_closed(struct presence_relay *r,
	    unsigned long conn_id);

#endif
