/*
 * control: ferryd's io.ferry and org.varlink.service method handlers.
 *
 * Writes (Put, Patch, Delete, Resolve) are validated here and handed to the
 * writer's group commit (writer.h) as ops whose own completion answers the
 * call once the batch is durable: nothing is acknowledged that is not.
 * An op that failed is answered io.ferry.WriteFailed with its reason.
 * What follows a batch as a whole (watchers, Status subscribers, sync,
 * held calls) is the daemon's batch hook in main.c, which calls
 * control_status_changed and control_run_held.
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
#include "presence_relay.h"
#include "store.h"
#include "sync.h"
#include "vl_server.h"
#include "watch.h"
#include "writer.h"

struct control;

struct control_info {
	const struct keys *keys;	/* the device key (borrowed) */
	const char	*device_name;
	const char	*remote;	/* NULL: unconfigured */
	const char	*data_dir;	/* where device.key is (kept from
					 * the first call: a new one applies
					 * at restart) */
	int		 backoff_max;	/* seconds */
};

/* The daemon's parts the handlers use; borrowed, they must outlive it. */
struct control_parts {
	struct watch	*watch;
	struct writer	*writer;
	struct sync	*sync;		/* NULL: no remote */
	struct presence_relay *presence;
};

int	control_new(struct event_base *base, struct store *st,
	    const struct control_info *info, const struct control_parts *parts,
	    struct control **ret);
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
/* Dispatch again the calls held behind a write whose batch is done (the
 * batch hook calls it; also at shutdown after the writer drained). */
void	control_run_held(struct control *c);
/* Shutdown: end every Status stream with a last status (more: false). */
void	control_end_streams(struct control *c);
/* Status or the engine's state moved: tell Status subscribers (soon). */
void	control_status_changed(struct control *c);
/* Answer a Sync call (as a sync_reply_fn): error NULL: done, with the
 * status; else that error with params (borrowed). */
void	control_sync_reply(struct control *c, struct vl_call *call,
	    const char *error, json_t *params);
/* New settings after SIGHUP (strings are copied); the sync engine's are
 * the caller's to pass to sync_reload. */
int	control_set_info(struct control *c, const struct control_info *info);
/* A one-line summary for sd_notify STATUS=, malloc'd. */
char	*control_status_line(struct control *c);
/* Finish every outstanding call and free (not the borrowed parts).
 * Accepts NULL. */
void	control_free(struct control *c);
/* Answer call io.ferry.InvalidArgument{field, reason}. */
void	control_reply_invalid(struct vl_call *call, const char *field,
	    const char *reason);

#endif
