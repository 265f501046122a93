/*
 * ferry.h: the client library apps link to talk to ferryd (libferry.so).
 *
 * A struct ferry is one varlink connection to the daemon's socket.  Calls
 * are blocking and answered in order; a connection may pipeline (send many
 * calls with ferry_send, then read the replies with ferry_recv).  Documents
 * and replies are passed as JSON text (UTF-8, NUL-terminated) so apps need
 * no particular JSON library; every string a function returns in a ret_*
 * parameter is malloc'd and the caller frees it with free().
 *
 * Errors: every int function returns >= 0 on success and a negative errno on
 * failure; ferry_errmsg() then says what happened in a sentence, and for an
 * error the daemon answered, ferry_errname() gives its varlink name.
 *   -ENOENT      io.ferry.NotFound (or, from ferry_connect, no socket)
 *   -ESTALE      io.ferry.RevMismatch (the reply's "current" doc is in
 *                ferry_errparams())
 *   -EINVAL      io.ferry.InvalidArgument, org.varlink.service.InvalidParameter,
 *                or arguments refused before sending
 *   -ENETDOWN    io.ferry.Offline
 *   -EPROTO      any other error reply, or a malformed reply
 *   -ECONNRESET  the daemon closed the connection
 *   -EMSGSIZE    a call or a reply over the 8 MiB message limit
 *   -EDQUOT      io.ferry.LimitExceeded (a presence bound: its name and
 *                value are in ferry_errparams())
 *   -EBUSY       a blocking call while pipelined replies are still unread,
 *                or any call on a connection that is watching
 *   -EPERM       from ferry_connect: the socket is served by another uid
 *   other        a system call failed (connect, read, write)
 * After -ECONNRESET, a reply over the limit, a malformed reply or a failed
 * read or write the connection is unusable: every later call fails with
 * the same error; ferry_close it and connect again.  One exception: when a
 * send finds ferryd gone, the replies it sent before going (to calls
 * pipelined earlier) can still be taken with ferry_recv; new calls fail.  libferry never raises
 * SIGPIPE (sends use MSG_NOSIGNAL), never logs and never exits.
 * A struct ferry is not thread-safe; use one per thread.
 */
#ifndef FERRY_H
#define FERRY_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define FERRY_API __attribute__((visibility("default")))
#else
#define FERRY_API
#endif

typedef struct ferry ferry;

/*
 * Connect to ferryd.  socket_path NULL means ferry_default_socket().  The
 * process listening there must run as our own uid (SO_PEERCRED), or
 * nothing is sent.  Returns 0 and
 * *ret, or -errno (-ENOENT: no socket, -ECONNREFUSED: no daemon listening,
 * -EPERM: the socket is served by another uid) and *ret is left
 * untouched.  Blocks for connect(2) only.
 */
FERRY_API int ferry_connect(const char *socket_path, ferry **ret);
/* Close the connection and free everything.  ferryd ends the calls still
 * open on it (a Watch included) at once.  Accepts NULL. */
FERRY_API void ferry_close(ferry *f);
/*
 * The default socket path, malloc'd (NULL if it cannot be determined), the
 * one ferryd listens on when nothing names one: $FERRY_SOCKET if set, else
 * $XDG_RUNTIME_DIR/ferry/ferryd.sock, else /run/user/<uid>/ferry/ferryd.sock
 * if that directory is ours, else $XDG_DATA_HOME/ferry/ferryd.sock
 * (~/.local/share/ferry/ferryd.sock).
 */
FERRY_API char *ferry_default_socket(void);

/*
 * The last error's message, "" if none.  Valid until the next call on f.
 * ferry_errmsg(NULL) is why the calling thread's last ferry_connect failed,
 * e.g. "cannot connect to /run/user/1000/ferry/ferryd.sock: No such file or
 * directory".
 */
FERRY_API const char *ferry_errmsg(const ferry *f);
/* The last error reply's varlink name ("io.ferry.NotFound"), or NULL. */
FERRY_API const char *ferry_errname(const ferry *f);
/* The last error reply's parameters as JSON text, or NULL. */
FERRY_API const char *ferry_errparams(const ferry *f);

/*
 * Generic call: send {"method":method,"parameters":params_json} and wait for
 * the reply.  params_json may be NULL for {}.  On success *ret_params (may be
 * NULL to discard) is the reply's parameters object as JSON text.
 * params_json is parsed (duplicate keys refused) and re-encoded, so the
 * call on the wire is always well-formed.
 */
FERRY_API int ferry_call(ferry *f, const char *method, const char *params_json,
    char **ret_params);

/*
 * Pipelining: queue a call without waiting (flushed by the next ferry_recv
 * or ferry_flush), and receive replies in order.  ferry_recv returns 0 with
 * the reply's parameters, or the mapped error of an error reply; it also sets
 * *ret_continues (may be NULL) when the reply says more follow.
 * ferry_send only flushes by itself once 256 KiB are queued; while a flush
 * waits for the socket, replies already arriving are buffered, so a deep
 * pipeline cannot deadlock.  ferry_recv with no call outstanding: -EINVAL.
 * ferry_send does not parse params_json (it is sent as it is, for speed):
 * it only checks that it starts with '{'; malformed JSON is refused by the
 * daemon, and that call's ferry_recv returns -EINVAL.
 */
FERRY_API int ferry_send(ferry *f, const char *method, const char *params_json);
FERRY_API int ferry_flush(ferry *f);
FERRY_API int ferry_recv(ferry *f, char **ret_params, int *ret_continues);

/*
 * Documents.  if_rev < 0 means "unconditional".  Replies are the doc object
 * {collection,id,rev,version,deleted,pending,conflicted[,body]} as JSON text.
 */
FERRY_API int ferry_get(ferry *f, const char *collection, const char *id,
    char **ret_doc);
FERRY_API int ferry_put(ferry *f, const char *collection, const char *id,
    const char *body_json, int64_t if_rev, char **ret_doc);
FERRY_API int ferry_patch(ferry *f, const char *collection, const char *id,
    const char *patch_json, int64_t if_rev, char **ret_doc);
FERRY_API int ferry_delete(ferry *f, const char *collection, const char *id,
    int64_t if_rev, char **ret_doc);
/* One page of a collection: *ret_reply is {"docs":[...],"next":"<id>"?}.
 * after may be NULL; limit <= 0 means the daemon's default. */
FERRY_API int ferry_list(ferry *f, const char *collection, const char *after,
    int limit, char **ret_reply);
/* The status object as JSON text. */
FERRY_API int ferry_status(ferry *f, char **ret_status);

/*
 * Watching.  ferry_watch turns f into a watch stream: collections is a
 * NULL-terminated array (NULL: all), since < 0 means "from now on", else
 * replay every change with a larger seq first.  It returns once the daemon
 * has confirmed the subscription.  From then on f carries only events:
 * ferry_fd() gives a descriptor to poll for reading (GUI main loops), and
 * ferry_watch_next() returns 1 with one event ({seq,collection,id,rev,
 * version,deleted,origin,body} as JSON text), 0 if no complete event is
 * buffered and the socket has nothing more now (non-blocking), or -errno.
 * ferry_watch_wait() blocks up to timeout_ms (-1: forever) for the next
 * event: 1 with an event, 0 on timeout.  An error reply ends the stream:
 * it is returned once (mapped as above), then -ECONNRESET.
 */
FERRY_API int ferry_watch(ferry *f, const char *const *collections,
    int64_t since);
FERRY_API int ferry_fd(const ferry *f);
FERRY_API int ferry_watch_next(ferry *f, char **ret_event);
FERRY_API int ferry_watch_wait(ferry *f, int timeout_ms, char **ret_event);

/*
 * Watching with presence: ferry_watch, and with presence non-zero the
 * stream also carries presence replies (see Presence below), returned by
 * ferry_watch_next and ferry_watch_wait like events: an event is
 * {seq,collection,id,...} as above, a presence reply is
 * {"presence":{...},"gone":false|true}; tell them apart by the member
 * "presence".  Right after the subscription is confirmed, the stream
 * carries one presence reply (gone false) for each entry already
 * present, then every change.  presence 0 is exactly ferry_watch.
 */
FERRY_API int ferry_watch_presence(ferry *f, const char *const *collections,
    int64_t since, int presence);

/*
 * Presence: who else is looking at what, right now.  Presence is
 * ephemeral: ferryd holds it in memory only (never in the replica, its
 * history, the outbox or the audit trail), and relays it through the
 * remote to other devices.
 *
 * ferry_set_presence announces that this connection's app is at
 * (collection, id) (id NULL: the collection as a whole) with state_json, a
 * JSON object of at most 1024 bytes (compact), e.g. {"user":"ana",
 * "cursor":12}; state_json NULL clears that entry.  One connection may hold
 * up to 16 entries (one per (collection, id)).  An entry lasts while f is
 * connected (ferry_close removes it at once) and at most the daemon's
 * presence TTL (30 s by default) after it was last set: an app that keeps
 * one for longer sets it again, e.g. every TTL / 3.  Updates of one
 * connection are coalesced (the latest state wins, others see at most one
 * every 50 ms); a connection setting more than 100 a second gets
 * io.ferry.LimitExceeded.  Errors: -EINVAL (a bad name, state_json not an
 * object or over 1024 bytes), -EDQUOT (a bound: entries per connection,
 * entries in all, the update rate; ferry_errparams() names it).
 *
 * ferry_who lists who is present: *ret_present is the JSON text of an
 * array of Presence objects
 *   {device, device_name, app, collection, id?, state, since_ms, local,
 *    session}
 * (device: the writer's device key; device_name: its name or null; app:
 * the program's name; since_ms: Unix ms of the first announcement; local:
 * true for apps on this machine; session: an opaque string unique per
 * connection, stable while it lasts), limited to collection (NULL: all)
 * and, within it, id (NULL: any).  This connection's own entries are
 * listed too.
 */
FERRY_API int ferry_set_presence(ferry *f, const char *collection,
    const char *id, const char *state_json);
FERRY_API int ferry_who(ferry *f, const char *collection, const char *id,
    char **ret_present);

#ifdef __cplusplus
}
#endif
#endif
