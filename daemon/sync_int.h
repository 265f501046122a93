/*
 * sync_int: what the sync engine's files (sync.c, sync_push.c,
 * sync_pull.c, sync_http.c) share and nothing else sees.
 */
#ifndef FERRY_SYNC_INT_H
#define FERRY_SYNC_INT_H

#include "sync.h"

/*
 * The default transport: lib/http on base, each request signed with keys
 * (borrowed: it must outlive the transport) for the remote's base URL
 * (copied).  Fills *ret; 0 or -errno.
 */
int	sync_http_new(struct event_base *base, const struct keys *keys,
	    const char *remote, struct sync_transport *ret);

#endif
