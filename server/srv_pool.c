/*
 * srv_pool: worker threads; see srv_pool.h.
 *
 * Shared state is under one mutex: the queue of jobs with items left to
 * hand out, and each job's counters.  A worker takes the first job: if it
 * has not started, the worker takes it off the queue, runs its start
 * function unlocked and puts it back at the head with its item count;
 * otherwise it claims the next SRV_POOL_CHUNK items, taking the job off
 * the queue when none are left to claim.  The worker that finishes a job's
 * last item activates the job's event; its callback, on the loop thread,
 * runs the done function and frees the job.  All jobs are also on a list
 * of their own until freed, so srv_pool_free can drop them.
 */
#include "autoconfig.h"

#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "srv_pool.h"

#define SRV_POOL_CHUNK	8	/* items claimed at once */

struct srv_pool_job {
	TAILQ_ENTRY(srv_pool_job) queue;	/* while items are left */
	TAILQ_ENTRY(srv_pool_job) all;
	struct srv_pool		*pool;
	struct event		*ev;
	srv_pool_start_fn	 start;
	srv_pool_item_fn	 item;
	srv_pool_done_fn	 done;
	void			*arg;
	bool			 started;
	bool			 queued;
	size_t			 n;
	size_t			 next;		/* first item not claimed */
	size_t			 finished;	/* items run */
};

TAILQ_HEAD(srv_pool_jobs, srv_pool_job);

struct srv_pool {
	struct event_base	*base;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct srv_pool_jobs	 queue;
	struct srv_pool_jobs	 all;
	pthread_t		 threads[SRV_POOL_MAX_THREADS];
	int			 nthreads;
	bool			 stop;
};

static void
srv_pool_job_free(struct srv_pool_job *j)
{
	event_free(j->ev);
	free(j);
}

static void
srv_pool_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_pool_job *j = arg;
	struct srv_pool *p = j->pool;

	pthread_mutex_lock(&p->lock);
	TAILQ_REMOVE(&p->all, j, all);
	pthread_mutex_unlock(&p->lock);
	j->done(j->arg);
	srv_pool_job_free(j);
}

/* With the lock held: the job's last items ran. */
static void
srv_pool_finish(struct srv_pool_job *j)
{
	event_active(j->ev, 0, 0);
}

static void *
srv_pool_main(void *arg)
{
	struct srv_pool *p = arg;
	struct srv_pool_job *j;
	size_t i, end, n;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->stop && TAILQ_EMPTY(&p->queue))
			pthread_cond_wait(&p->cond, &p->lock);
		if (p->stop)
			break;
		j = TAILQ_FIRST(&p->queue);
		if (!j->started) {
			j->started = true;
			TAILQ_REMOVE(&p->queue, j, queue);
			j->queued = false;
			pthread_mutex_unlock(&p->lock);
			n = j->start(j->arg);
			pthread_mutex_lock(&p->lock);
			j->n = n;
			if (n == 0) {
				srv_pool_finish(j);
				continue;
			}
			TAILQ_INSERT_HEAD(&p->queue, j, queue);
			j->queued = true;
			pthread_cond_broadcast(&p->cond);
			continue;
		}
		i = j->next;
		end = j->n - i > SRV_POOL_CHUNK ? i + SRV_POOL_CHUNK : j->n;
		j->next = end;
		if (end == j->n) {
			TAILQ_REMOVE(&p->queue, j, queue);
			j->queued = false;
		}
		pthread_mutex_unlock(&p->lock);
		for (n = i; n < end; n++)
			j->item(j->arg, n);
		pthread_mutex_lock(&p->lock);
		j->finished += end - i;
		if (j->finished == j->n)
			srv_pool_finish(j);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

int
srv_pool_new(struct event_base *base, int nthreads, struct srv_pool **ret)
{
	struct srv_pool *p;
	int r;

	if (nthreads < 1 || nthreads > SRV_POOL_MAX_THREADS)
		return -EINVAL;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return -ENOMEM;
	p->base = base;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->cond, NULL);
	TAILQ_INIT(&p->queue);
	TAILQ_INIT(&p->all);
	for (p->nthreads = 0; p->nthreads < nthreads; p->nthreads++) {
		if ((r = pthread_create(&p->threads[p->nthreads], NULL,
		    srv_pool_main, p)) != 0) {
			srv_pool_free(p);
			return -r;
		}
	}
	*ret = p;
	return 0;
}

int
srv_pool_submit(struct srv_pool *p, srv_pool_start_fn start,
    srv_pool_item_fn item, srv_pool_done_fn done, void *arg)
{
	struct srv_pool_job *j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return -ENOMEM;
	j->pool = p;
	j->start = start;
	j->item = item;
	j->done = done;
	j->arg = arg;
	if ((j->ev = event_new(p->base, -1, 0, srv_pool_done_cb, j)) == NULL) {
		free(j);
		return -ENOMEM;
	}
	pthread_mutex_lock(&p->lock);
	TAILQ_INSERT_TAIL(&p->all, j, all);
	TAILQ_INSERT_TAIL(&p->queue, j, queue);
	j->queued = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	return 0;
}

void
srv_pool_free(struct srv_pool *p)
{
	struct srv_pool_job *j;
	int i;

	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stop = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (i = 0; i < p->nthreads; i++)
		pthread_join(p->threads[i], NULL);
	while ((j = TAILQ_FIRST(&p->all)) != NULL) {
		TAILQ_REMOVE(&p->all, j, all);
		srv_pool_job_free(j);
	}
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
