/*
 * srv_pool: worker threads for the CPU-heavy part of a request, so the
 * event loop never spends a push batch's worth of Ed25519 verifications
 * (about 50 us each) in one callback, and a batch uses every core.
 *
 * A job is one request's work: a start function, run once on a worker,
 * says how many items the job has (e.g. it parses the push body); the
 * item function then runs once per item, on any worker, items of one job
 * in parallel and in no particular order; when every item has run, the
 * done function runs on the loop thread (from the event base the pool was
 * made on, which must have been made after evthread_use_pthreads()).  Jobs
 * start in submission order.  The pool knows nothing of what the items
 * are: a job keeps its results in its own memory, one slot per item, so
 * workers never share a slot.
 *
 * srv_pool_free stops the workers once the items in hand are finished and
 * frees the jobs left without calling their done functions: their owners
 * free what they submitted.  Nothing here logs.
 */
#ifndef FERRY_SRV_POOL_H
#define FERRY_SRV_POOL_H

#include <stddef.h>

#include <event2/event.h>

#define SRV_POOL_MAX_THREADS	16

struct srv_pool;

typedef size_t	(*srv_pool_start_fn)(void *arg);
typedef void	(*srv_pool_item_fn)(void *arg, size_t i);
typedef void	(*srv_pool_done_fn)(void *arg);

/* Start nthreads workers (1..SRV_POOL_MAX_THREADS).  0, -ENOMEM or -errno
 * from pthread_create. */
int	srv_pool_new(struct event_base *base, int nthreads,
	    struct srv_pool **ret);
/* Queue a job (loop thread).  0 or -ENOMEM (then nothing runs). */
int	srv_pool_submit(struct srv_pool *p, srv_pool_start_fn start,
	    srv_pool_item_fn item, srv_pool_done_fn done, void *arg);
/* Stop and join the workers; unfinished jobs are dropped.  Accepts NULL. */
void	srv_pool_free(struct srv_pool *p);

#endif
