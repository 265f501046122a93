/*
 * fcall: libferry calls from a GLib main loop without blocking it.
 *
 * One struct fcall owns one libferry connection used for ordinary calls
 * (never a Watch).  fcall_call queues a call; calls go to ferryd one at a
 * time, in order, and each one's reply is handed to its callback from the
 * main loop when the connection's descriptor becomes readable.  The loop
 * never waits for ferryd to think: the only waits are connect(2) to the
 * local socket, writing one small call, and reading the rest of a reply
 * whose first bytes have already arrived.
 *
 * The queue is bounded (FCALL_QUEUE_MAX); a call past it fails at once
 * with -ENOBUFS.  When the connection is lost every queued call fails with
 * the error, the "lost" callback runs, and the next fcall_call connects
 * again.  This is not a general varlink client: libferry is.
 */
#ifndef NOTES_FCALL_H
#define NOTES_FCALL_H

#include <jansson.h>

#define FCALL_QUEUE_MAX	64

struct fcall;

/*
 * A call's outcome: r >= 0 with reply (the reply's parameters, borrowed
 * for the callback's duration), or r < 0 (libferry's -errno) with errname
 * (the varlink error name, NULL if the connection failed), errparams (the
 * error's parameters, or NULL) and msg (libferry's sentence).
 */
struct fcall_result {
	int		 r;
	json_t		*reply;
	const char	*errname;
	json_t		*errparams;
	const char	*msg;
};

typedef void	(*fcall_done_fn)(const struct fcall_result *res, void *arg);
typedef void	(*fcall_lost_fn)(const char *why, void *arg);

/* A handle on socket_path (NULL: libferry's default socket); nothing is
 * connected until the first call.  Never NULL (GLib aborts on OOM). */
struct fcall	*fcall_new(const char *socket_path, fcall_lost_fn lost,
		    void *arg);
/* Close the connection and fail the queued calls with -ECANCELED (their
 * callbacks run now).  Accepts NULL. */
void		 fcall_free(struct fcall *fc);
/*
 * Queue method(params) (params is stolen; NULL means {}).  done (may be
 * NULL) runs from the main loop with the outcome, or before fcall_call
 * returns if the call cannot be sent (no daemon, queue full).
 */
void		 fcall_call(struct fcall *fc, const char *method, json_t *params,
		    fcall_done_fn done, void *arg);
/* Is the connection up? */
int		 fcall_connected(const struct fcall *fc);

#endif
