/*
 * srv_presence: ferry-server's presence table (docs/protocol.md
 * "Presence"), in memory only: per device (the key that signed the
 * request), the list of entries its ferryd last POSTed to /v1/presence,
 * each list ending ttl_ms after it was posted unless posted again.  An
 * empty list is the device saying goodbye: its entries go at once.
 *
 * The table never touches the store.  With several instances on one
 * PostgreSQL database, srv_http shares each device's list through the
 * store (srv_db_presence_put / _load, a notification per change): a list
 * another instance posted comes in through srv_presence_import, with the
 * expiry that instance gave it.  Times are Unix ms (the instances' clocks
 * must agree, as the protocol's signed timestamps already require).
 *
 * Every change (a post, an import, an expiry) bumps the table's revision
 * and calls the changed callback, which srv_http uses to answer the
 * long-polls of GET /v1/presence.  Bounds: SRV_PRESENCE_PER_DEVICE
 * entries per device, SRV_PRESENCE_TOTAL in all, a state of at most
 * SRV_PRESENCE_STATE_MAX bytes, names as the protocol's.  The loop
 * thread only.
 */
#ifndef FERRY_SRV_PRESENCE_H
#define FERRY_SRV_PRESENCE_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#define SRV_PRESENCE_PER_DEVICE	256
#define SRV_PRESENCE_TOTAL	16384
#define SRV_PRESENCE_STATE_MAX	1024
#define SRV_PRESENCE_TTL_MIN	1000
#define SRV_PRESENCE_TTL_MAX	120000

struct srv_presence;

typedef void (*srv_presence_changed_fn)(void *arg);

/* A table whose expiry timer runs on base.  0 or -ENOMEM. */
int	srv_presence_new(struct event_base *base,
	    srv_presence_changed_fn changed, void *arg,
	    struct srv_presence **ret);
/* Accepts NULL. */
void	srv_presence_free(struct srv_presence *p);

/*
 * A device's POST /v1/presence body (len bytes): {"ttl_ms":N,
 * "device_name":?string, "entries":[{app, session, collection, id?,
 * state, since_ms}...]}.  Checked whole before anything changes: 0 and,
 * for sharing, the stored list (*ret_list, malloc'd JSON array text, each
 * entry with the device added) and its expiry (*ret_expires_ms); or
 * -EINVAL (malformed: why says what, naming the field), -ENOSPC (the
 * table holds SRV_PRESENCE_TOTAL entries), -ENOMEM.
 */
int	srv_presence_put(struct srv_presence *p, const char *device,
	    const char *body, size_t len, int64_t now_ms, char **ret_list,
	    int64_t *ret_expires_ms, char *why, size_t why_len);
/*
 * Another instance's list for device (list: JSON array text as
 * srv_presence_put gave it; NULL or expired: the device has none).  0,
 * or -EINVAL for a list that does not parse (ignored).
 */
int	srv_presence_import(struct srv_presence *p, const char *device,
	    const char *list, int64_t expires_ms, int64_t now_ms);
/* Drop every device not seen by srv_presence_import since
 * srv_presence_import_begin (a full reload from the store). */
void	srv_presence_import_begin(struct srv_presence *p);
void	srv_presence_import_end(struct srv_presence *p);

/* The revision: moves on every change. */
int64_t	srv_presence_rev(const struct srv_presence *p);
/* GET /v1/presence's answer for device: {"rev":N,"entries":[every other
 * device's entries]}, malloc'd; NULL on ENOMEM. */
char	*srv_presence_reply(struct srv_presence *p, const char *device);

#endif
