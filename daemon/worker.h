/*
 * worker: one thread for CPU work that must not run on the event loop
 * (parsing a megabyte of pulled changes takes milliseconds), with its
 * result handed back to the loop.
 *
 * A job's run function executes on the worker thread; then its done
 * function runs on the loop thread (from the event base the worker was
 * made on, which must have been made after evthread_use_pthreads()).  Jobs
 * run one at a time, and their done functions are called in submission
 * order.  The worker knows nothing of what a job does: run must touch only
 * the job's own memory (arg) and thread-safe libraries.
 *
 * This is not the writer: nothing here opens a transaction or touches the
 * replica.  An idle worker sleeps on a condition variable and never wakes
 * the loop.  Nothing here logs.
 */
#ifndef FERRY_WORKER_H
#define FERRY_WORKER_H

#include <event2/event.h>

struct worker;

typedef void	(*worker_run_fn)(void *arg);
typedef void	(*worker_done_fn)(void *arg);
typedef void	(*worker_drop_fn)(void *arg);

/* Start the thread.  0, -ENOMEM, or -errno from pthread_create. */
int	worker_new(struct event_base *base, struct worker **ret);
/*
 * Queue a job (loop thread).  Returns 0 or -ENOMEM (then nothing runs and
 * arg stays the caller's).  Never blocks beyond a short mutex hold.  drop
 * (may be NULL) frees arg if the worker is freed before done was called.
 */
int	worker_submit(struct worker *w, worker_run_fn run, worker_done_fn done,
	    worker_drop_fn drop, void *arg);
/*
 * Finish the job in hand, stop and join the thread, and call drop instead
 * of done for every job whose done function has not run.  Blocks for at
 * most one job.  Accepts NULL.
 */
void	worker_free(struct worker *w);

#endif
