/*
 * vl_server: the varlink server side: listening sockets, one state machine
 * per connection, ordered replies, limits.
 *
 * Connection states: OPEN (reading calls) -> DRAINING (peer shut down its
 * sending side, or we decided to close: no more calls are read;
 * outstanding replies are still written) -> DEAD (socket closed; every
 * unfinished call is cancelled, and the struct lives on until every call
 * that a handler still holds has been finished, then it is freed from a
 * deferred event, never inside its own callback chain).  A peer that
 * closes its socket (exit, crash, ferry_close), whether OPEN or DRAINING,
 * makes its connection DEAD at once: a stream never holds a slot for a
 * client that is gone.
 *
 * Calls on one connection are answered in order: a handler may reply at
 * once or later (after a group commit); a reply to a call that is not at the
 * head of the connection's queue is buffered until it is.  A call made with
 * "more" may get many replies (continues = true) before its last.
 *
 * Limits, each answered on that connection only: a message over
 * VL_MESSAGE_MAX (error, then close), a malformed message (InvalidParameter;
 * a frame that cannot be delimited closes the connection), more than
 * max_connections connections, idle connections (no call outstanding) after
 * idle_timeout seconds, peers of another uid (closed at once).  Reading from
 * a connection pauses while its queued output or its outstanding calls exceed
 * their caps, so a client that does not read cannot grow our memory.
 */
#ifndef FERRY_VL_SERVER_H
#define FERRY_VL_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/event.h>
#include <jansson.h>

#include "vl_frame.h"

struct vl_server;
struct vl_conn;
struct vl_call;

/* Called for every well-formed call; the handler must eventually finish it
 * with vl_reply(..., false) or vl_error(). */
typedef void (*vl_dispatch_fn)(struct vl_call *call, void *arg);
/* Called when a call's connection goes away before the call finished. */
typedef void (*vl_cancel_fn)(struct vl_call *call, void *arg);
/* Called when a call's connection has drained its output below the low
 * watermark (for streaming calls that stopped producing). */
typedef void (*vl_drain_fn)(struct vl_call *call, void *arg);

/*
 * Called with every reply and error before it is queued, for debug and
 * test runs that check what the server says against its interface.
 * error is NULL for a reply; the parameters come either as a tree
 * (params; NULL means {}) or as JSON text (text, len).  Not called for
 * what nobody will read (a cancelled or oneway call's replies).
 */
typedef void (*vl_check_fn)(struct vl_call *call, const char *error,
    json_t *params, const char *text, size_t len, void *arg);

struct vl_server_config {
	int	max_connections;	/* per uid */
	int	idle_timeout;		/* seconds, 0 = never */
};

int	vl_server_new(struct event_base *base,
	    const struct vl_server_config *cfg, vl_dispatch_fn dispatch,
	    void *arg, struct vl_server **ret);
/* Called once when a connection closes (the peer went, a limit, the
 * server's end), with the id vl_call_conn_id gives its calls. */
typedef void (*vl_close_fn)(unsigned long conn_id, void *arg);
/* Call fn as each connection closes (NULL: none, the default). */
void	vl_server_set_close(struct vl_server *s, vl_close_fn fn, void *arg);
/* Check every reply with fn (NULL: none, the default). */
void	vl_server_set_check(struct vl_server *s, vl_check_fn fn, void *arg);
/* Change limits at run time (SIGHUP). */
void	vl_server_configure(struct vl_server *s,
	    const struct vl_server_config *cfg);
/* Listen on a path: creates the socket (mode 0600).  0 or -errno. */
int	vl_server_listen_path(struct vl_server *s, const char *path);
/*
 * The same for the socket name inside the directory open as dirfd (which
 * the caller has checked and still owns): the socket is created through
 * /proc/self/fd, so in that very directory even if its path was swapped
 * since; without /proc, at path.  path is the socket's full name, for
 * unlinking when the server is freed.  0 or -errno.
 */
int	vl_server_listen_at(struct vl_server *s, int dirfd, const char *name,
	    const char *path);
/* Listen on an already bound and listening socket (socket activation). */
int	vl_server_listen_fd(struct vl_server *s, int fd);
/* Write out every reply already made, waiting up to timeout_ms in all
 * (used once, at shutdown: it blocks). */
void	vl_server_flush(struct vl_server *s, int timeout_ms);
/* Close every connection and listener and free.  Accepts NULL. */
void	vl_server_free(struct vl_server *s);
int	vl_server_connection_count(const struct vl_server *s);

/* The call's parsed message (method, parameters, more, oneway). */
const struct vl_msg *vl_call_msg(const struct vl_call *call);
/* Opaque per-call data for the handler. */
void	vl_call_set_data(struct vl_call *call, void *data);
void	*vl_call_get_data(const struct vl_call *call);
/* A stable id of the call's connection (for per-client bookkeeping). */
unsigned long vl_call_conn_id(const struct vl_call *call);
/* The peer's process id at accept (SO_PEERCRED), 0 if unknown. */
pid_t	vl_call_conn_pid(const struct vl_call *call);
/* A word the handler may keep per connection (zero at accept). */
uint64_t *vl_call_conn_tag(struct vl_call *call);
void	vl_call_set_cancel(struct vl_call *call, vl_cancel_fn cb, void *arg);
void	vl_call_set_drain(struct vl_call *call, vl_drain_fn cb, void *arg);
/* Bytes queued for the call's connection, not yet written. */
size_t	vl_call_output_size(const struct vl_call *call);
/* True if the connection is gone (replies will be dropped). */
bool	vl_call_cancelled(const struct vl_call *call);

/*
 * Reply.  params is borrowed (NULL: {}).  With continues, the call stays
 * open (only for calls made with "more"); otherwise the call is finished
 * and must not be used again.  Returns 0 or -errno (the call is finished
 * regardless, unless continues).
 */
int	vl_reply(struct vl_call *call, json_t *params, bool continues);
/* The same with the parameters object given as JSON text (len bytes, not
 * checked: the caller guarantees it is one valid JSON object). */
int	vl_reply_raw(struct vl_call *call, const char *params, size_t len,
	    bool continues);
/* Finish the call with an error reply.  params is borrowed. */
int	vl_error(struct vl_call *call, const char *name, json_t *params);
/* Shorthand for org.varlink.service.InvalidParameter {parameter}: exactly
 * the field the interface declares (a reason for people goes to the
 * caller's debug log, not to the peer). */
int	vl_error_invalid(struct vl_call *call, const char *param);

#endif
