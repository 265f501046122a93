/*
 * jobq: the one place where work crosses from the event loop to threads
 * and back.  Every thread ferry runs (ferryd's writer and its pull
 * parsers, ferry-server's verifiers, the replica's checkpointer) is a jobq
 * thread; nothing else in the tree takes a mutex around a queue or calls
 * event_active from a thread.
 *
 * A job is submitted from any thread.  Its start function (may be NULL:
 * then the job has one item) runs once on a queue thread and says how
 * many items the job has; the item function then runs once per item, on
 * any of the queue's threads, items of one job in parallel when the queue
 * has several threads; when its last item has run, the job is finished
 * and its done function (may be NULL) runs on the loop thread, from the
 * event base given to jobq_new, which must have been made after
 * evthread_use_pthreads().  Jobs start in submission order; with one
 * thread they also finish, and their done functions run, in that order.
 *
 * The queue knows nothing of what a job does: start and item must touch
 * only the job's own memory (arg) and thread-safe libraries, and a job
 * with several items keeps one result slot per item.  An idle queue sleeps
 * on a condition variable and never wakes the loop.  Nothing here logs.
 *
 * Ownership: arg stays the submitter's.  jobq_free stops the threads once
 * the items in hand have run, then calls each unfinished or undelivered
 * job's drop function (may be NULL) instead of its done function, so the
 * submitter can free what it handed over.
 */
#ifndef FERRY_JOBQ_H
#define FERRY_JOBQ_H

#include <stddef.h>

#include <event2/event.h>

#define JOBQ_MAX_THREADS	16

struct jobq;

typedef size_t	(*jobq_start_fn)(void *arg);
typedef void	(*jobq_item_fn)(void *arg, size_t i);
typedef void	(*jobq_done_fn)(void *arg);
typedef void	(*jobq_drop_fn)(void *arg);

/*
 * Start nthreads threads (1..JOBQ_MAX_THREADS).  base may be NULL for a
 * queue whose jobs have no done functions.  0, -EINVAL, -ENOMEM, or
 * -errno from pthread_create (then no thread is left running).
 */
int	jobq_new(struct event_base *base, int nthreads, struct jobq **ret);
/*
 * Queue a job (any thread).  item must not be NULL.  0, -ENOMEM or
 * -ESHUTDOWN (the queue is being freed); on failure nothing runs and arg
 * stays the caller's.  Never blocks beyond a short mutex hold.
 */
int	jobq_submit(struct jobq *q, jobq_start_fn start, jobq_item_fn item,
	    jobq_done_fn done, jobq_drop_fn drop, void *arg);
/*
 * Loop thread: wait until every job submitted so far has finished, then
 * run the done functions that are due, in order.  Blocks (shutdown, and a
 * writer that must finish the transaction in hand); done functions may
 * submit more jobs, which are not waited for.
 */
void	jobq_drain(struct jobq *q);
/* Jobs submitted and not yet delivered (finished and done run). */
size_t	jobq_pending(struct jobq *q);
/*
 * Stop and join the threads once the items in hand have run; drop every
 * job whose done function has not run.  Loop thread.  Accepts NULL.
 */
void	jobq_free(struct jobq *q);

#endif
