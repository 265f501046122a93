/*
 * control: ferryd's io.ferry and org.varlink.service method handlers, and
 * the group commit that makes local writes durable before they are
 * acknowledged.
 *
 * Group commit: the first write of a turn of the event loop opens a batch
 * (BEGIN) and activates the commit event, which libevent runs after the
 * callbacks already active in that turn; every write arriving meanwhile
 * joins the batch.  The commit callback COMMITs, then sends every reply of
 * the batch, then notifies watchers.  If the COMMIT (or any write inside the
 * batch) fails, the batch is rolled back and every call in it is answered
 * io.ferry.WriteFailed: nothing is acknowledged that is not durable.
 *
 * Reads are answered from the reader connection (committed data only).  A
 * connection that has a write in the open batch has its later calls held
 * until the batch commits, so a pipelined Put then Get reads its own write
 * and nothing else uncommitted.
 */
#ifndef FERRY_CONTROL_H
#define FERRY_CONTROL_H

#include <event2/event.h>

#include "keys.h"
#include "store.h"
#include "vl_server.h"

struct control;

struct control_info {
	const struct keys *keys;	/* the device key (borrowed) */
	const char	*device_name;
	const char	*remote;	/* NULL: unconfigured */
	int		 backoff_max;	/* seconds */
};

int	control_new(struct event_base *base, struct store *st,
	    const struct control_info *info, struct control **ret);
/* The vl_dispatch_fn to give to vl_server_new (arg: the control). */
void	control_dispatch(struct vl_call *call, void *arg);
/*
 * The vl_check_fn ferryd installs when FERRY_CHECK_REPLIES is set (test
 * runs; arg: the control): every reply and error must type-check against
 * the interface the daemon serves, and org.varlink.service's methods
 * answer only its errors.  One that does not is a bug in ferryd: it is
 * logged and the daemon aborts, so that no test can miss it.
 */
void	control_check_reply(struct vl_call *call, const char *error,
	    json_t *params, const char *text, size_t len, void *arg);
/* Commit the open batch now and answer it (SIGTERM).  0 or -errno. */
int	control_flush(struct control *c);
/* New settings after SIGHUP (strings are copied). */
int	control_set_info(struct control *c, const struct control_info *info);
/* A one-line summary for sd_notify STATUS=, malloc'd. */
char	*control_status_line(struct control *c);
/* Finish every outstanding call and free.  Accepts NULL. */
void	control_free(struct control *c);

#endif
