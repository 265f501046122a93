/*
 * jobq: threads that run jobs handed over by the loop; see jobq.h.
 *
 * Shared state is under one mutex: the FIFO of jobs with items left to
 * hand out, the FIFO of finished jobs whose done function is due, and the
 * counters.  A thread takes the first queued job: if it has not started,
 * the thread takes it off the queue, runs its start function unlocked and
 * puts it back at the head with its item count; otherwise it claims the
 * next JOBQ_CHUNK items, taking the job off the queue when none are left
 * to claim.  The thread that finishes a job's last item moves it to the
 * done FIFO and activates done_ev (libevent is set up for threads, so
 * event_active from here is safe); the loop's callback takes the whole
 * FIFO and runs the done functions in order.  A job without a done
 * function is freed by the thread that finished it.  `finished` wakes
 * jobq_drain.  Every job is on exactly one FIFO, or being worked on by a
 * thread, so once the threads are joined the two FIFOs hold every job
 * left to drop.
 */
#include "autoconfig.h"

#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "jobq.h"

#define JOBQ_CHUNK	8	/* items claimed at once */

struct jobq_job {
	TAILQ_ENTRY(jobq_job)	 entry;
	jobq_start_fn		 start;
	jobq_item_fn		 item;
	jobq_done_fn		 done;
	jobq_drop_fn		 drop;
	void			*arg;
	bool			 started;
	size_t			 n;
	size_t			 next;		/* first item not claimed */
	size_t			 ran;		/* items run */
};

TAILQ_HEAD(jobq_jobs, jobq_job);

struct jobq {
	struct event		*done_ev;	/* NULL without a base */
	pthread_mutex_t		 lock;
	pthread_cond_t		 work;		/* a job was queued, or stop */
	pthread_cond_t		 finished;	/* a job finished */
	struct jobq_jobs	 queue;
	struct jobq_jobs	 done;
	size_t			 unfinished;	/* submitted, not finished */
	size_t			 undelivered;	/* submitted, done not run */
	pthread_t		 threads[JOBQ_MAX_THREADS];
	int			 nthreads;
	bool			 stop;
};

static void
jobq_drop_all(struct jobq_jobs *list)
{
	struct jobq_job *j;

	while ((j = TAILQ_FIRST(list)) != NULL) {
		TAILQ_REMOVE(list, j, entry);
		if (j->drop != NULL)
			j->drop(j->arg);
		free(j);
	}
}

/* With the lock held: every item of j has run. */
static void
jobq_finish(struct jobq *q, struct jobq_job *j)
{
	q->unfinished--;
	pthread_cond_broadcast(&q->finished);
	if (j->done == NULL || q->done_ev == NULL) {
		q->undelivered--;
		free(j);
		return;
	}
	TAILQ_INSERT_TAIL(&q->done, j, entry);
	event_active(q->done_ev, 0, 0);
}

static void *
jobq_main(void *arg)
{
	struct jobq *q = arg;
	struct jobq_job *j;
	size_t i, end, n;

	pthread_mutex_lock(&q->lock);
	for (;;) {
		while (!q->stop && TAILQ_EMPTY(&q->queue))
			pthread_cond_wait(&q->work, &q->lock);
		if (q->stop)
			break;
		j = TAILQ_FIRST(&q->queue);
		if (!j->started) {
			j->started = true;
			TAILQ_REMOVE(&q->queue, j, entry);
			pthread_mutex_unlock(&q->lock);
			n = j->start != NULL ? j->start(j->arg) : 1;
			pthread_mutex_lock(&q->lock);
			j->n = n;
			if (n == 0) {
				jobq_finish(q, j);
				continue;
			}
			TAILQ_INSERT_HEAD(&q->queue, j, entry);
			if (n > JOBQ_CHUNK)
				pthread_cond_broadcast(&q->work);
			continue;
		}
		i = j->next;
		end = j->n - i > JOBQ_CHUNK ? i + JOBQ_CHUNK : j->n;
		j->next = end;
		if (end == j->n)
			TAILQ_REMOVE(&q->queue, j, entry);
		pthread_mutex_unlock(&q->lock);
		for (n = i; n < end; n++)
			j->item(j->arg, n);
		pthread_mutex_lock(&q->lock);
		j->ran += end - i;
		if (j->ran == j->n)
			jobq_finish(q, j);
	}
	pthread_mutex_unlock(&q->lock);
	return NULL;
}

/* Loop thread: run the done functions due, in order. */
static void
jobq_deliver(struct jobq *q)
{
	struct jobq_jobs done;
	struct jobq_job *j;

	TAILQ_INIT(&done);
	pthread_mutex_lock(&q->lock);
	TAILQ_CONCAT(&done, &q->done, entry);
	pthread_mutex_unlock(&q->lock);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		pthread_mutex_lock(&q->lock);
		q->undelivered--;
		pthread_mutex_unlock(&q->lock);
		j->done(j->arg);
		free(j);
	}
}

static void
jobq_done_cb(evutil_socket_t fd, short what, void *arg)
{
	jobq_deliver(arg);
}

int
jobq_new(struct event_base *base, int nthreads, struct jobq **ret)
{
	struct jobq *q;
	int r;

	if (nthreads < 1 || nthreads > JOBQ_MAX_THREADS)
		return -EINVAL;
	if ((q = calloc(1, sizeof *q)) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&q->lock, NULL);
	pthread_cond_init(&q->work, NULL);
	pthread_cond_init(&q->finished, NULL);
	TAILQ_INIT(&q->queue);
	TAILQ_INIT(&q->done);
	if (base != NULL && (q->done_ev = event_new(base, -1, 0,
	    jobq_done_cb, q)) == NULL) {
		jobq_free(q);
		return -ENOMEM;
	}
	for (q->nthreads = 0; q->nthreads < nthreads; q->nthreads++) {
		if ((r = pthread_create(&q->threads[q->nthreads], NULL,
		    jobq_main, q)) != 0) {
			jobq_free(q);
			return -r;
		}
	}
	*ret = q;
	return 0;
}

int
jobq_submit(struct jobq *q, jobq_start_fn start, jobq_item_fn item,
    jobq_done_fn done, jobq_drop_fn drop, void *arg)
{
	struct jobq_job *j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return -ENOMEM;
	j->start = start;
	j->item = item;
	j->done = done;
	j->drop = drop;
	j->arg = arg;
	pthread_mutex_lock(&q->lock);
	if (q->stop) {
		pthread_mutex_unlock(&q->lock);
		free(j);
		return -ESHUTDOWN;
	}
	TAILQ_INSERT_TAIL(&q->queue, j, entry);
	q->unfinished++;
	q->undelivered++;
	pthread_cond_signal(&q->work);
	pthread_mutex_unlock(&q->lock);
	return 0;
}

void
jobq_drain(struct jobq *q)
{
	pthread_mutex_lock(&q->lock);
	while (q->unfinished > 0 && !q->stop)
		pthread_cond_wait(&q->finished, &q->lock);
	pthread_mutex_unlock(&q->lock);
	if (q->done_ev != NULL)
		jobq_deliver(q);
}

size_t
jobq_pending(struct jobq *q)
{
	size_t n;

	pthread_mutex_lock(&q->lock);
	n = q->undelivered;
	pthread_mutex_unlock(&q->lock);
	return n;
}

void
jobq_free(struct jobq *q)
{
	int i;

	if (q == NULL)
		return;
	pthread_mutex_lock(&q->lock);
	q->stop = true;
	pthread_cond_broadcast(&q->work);
	pthread_cond_broadcast(&q->finished);
	pthread_mutex_unlock(&q->lock);
	for (i = 0; i < q->nthreads; i++)
		pthread_join(q->threads[i], NULL);
	jobq_drop_all(&q->queue);
	jobq_drop_all(&q->done);
	if (q->done_ev != NULL)
		event_free(q->done_ev);
	pthread_cond_destroy(&q->finished);
	pthread_cond_destroy(&q->work);
	pthread_mutex_destroy(&q->lock);
	free(q);
}
