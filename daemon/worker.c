/*
 * worker: one thread for CPU work off the loop; see worker.h.
 *
 * Shared state is under one mutex: the queue of jobs to run and the queue
 * of jobs run whose done function is due.  The thread takes the first job
 * to run, runs it unlocked, appends it to the done queue and activates
 * done_ev (libevent is set up for threads, so event_active from here is
 * safe).  The loop's done_ev callback takes the whole done queue and calls
 * the done functions in order.  One thread and two FIFOs: done functions
 * are called in submission order.
 */
#include "autoconfig.h"

#include <sys/queue.h>

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include "worker.h"

struct worker_job {
	TAILQ_ENTRY(worker_job)	 entry;
	worker_run_fn		 run;
	worker_done_fn		 done;
	worker_drop_fn		 drop;
	void			*arg;
};

TAILQ_HEAD(worker_jobs, worker_job);

struct worker {
	struct event		*done_ev;
	pthread_t		 thread;
	bool			 started;
	pthread_mutex_t		 lock;
	pthread_cond_t		 cond;
	struct worker_jobs	 todo;
	struct worker_jobs	 done;
	bool			 stop;
};

static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct worker_job *j;

	pthread_mutex_lock(&w->lock);
	for (;;) {
		while (!w->stop && TAILQ_EMPTY(&w->todo))
			pthread_cond_wait(&w->cond, &w->lock);
		if (w->stop)
			break;
		j = TAILQ_FIRST(&w->todo);
		TAILQ_REMOVE(&w->todo, j, entry);
		pthread_mutex_unlock(&w->lock);
		j->run(j->arg);
		pthread_mutex_lock(&w->lock);
		TAILQ_INSERT_TAIL(&w->done, j, entry);
		event_active(w->done_ev, 0, 0);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

static void
worker_done_cb(evutil_socket_t fd, short what, void *arg)
{
	struct worker *w = arg;
	struct worker_jobs done;
	struct worker_job *j;

	TAILQ_INIT(&done);
	pthread_mutex_lock(&w->lock);
	TAILQ_CONCAT(&done, &w->done, entry);
	pthread_mutex_unlock(&w->lock);
	while ((j = TAILQ_FIRST(&done)) != NULL) {
		TAILQ_REMOVE(&done, j, entry);
		j->done(j->arg);
		free(j);
	}
}

int
worker_new(struct event_base *base, struct worker **ret)
{
	struct worker *w;
	int r;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -ENOMEM;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->cond, NULL);
	TAILQ_INIT(&w->todo);
	TAILQ_INIT(&w->done);
	if ((w->done_ev = event_new(base, -1, 0, worker_done_cb, w)) ==
	    NULL) {
		worker_free(w);
		return -ENOMEM;
	}
	if ((r = pthread_create(&w->thread, NULL, worker_main, w)) != 0) {
		worker_free(w);
		return -r;
	}
	w->started = true;
	*ret = w;
	return 0;
}

int
worker_submit(struct worker *w, worker_run_fn run, worker_done_fn done,
    worker_drop_fn drop, void *arg)
{
	struct worker_job *j;

	if ((j = calloc(1, sizeof *j)) == NULL)
		return -ENOMEM;
	j->run = run;
	j->done = done;
	j->drop = drop;
	j->arg = arg;
	pthread_mutex_lock(&w->lock);
	TAILQ_INSERT_TAIL(&w->todo, j, entry);
	pthread_cond_signal(&w->cond);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

static void
worker_jobs_free(struct worker_jobs *q)
{
	struct worker_job *j;

	while ((j = TAILQ_FIRST(q)) != NULL) {
		TAILQ_REMOVE(q, j, entry);
		if (j->drop != NULL)
			j->drop(j->arg);
		free(j);
	}
}

void
worker_free(struct worker *w)
{
	if (w == NULL)
		return;
	if (w->started) {
		pthread_mutex_lock(&w->lock);
		w->stop = true;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->lock);
		pthread_join(w->thread, NULL);
	}
	worker_jobs_free(&w->todo);
	worker_jobs_free(&w->done);
	if (w->done_ev != NULL)
		event_free(w->done_ev);
	pthread_cond_destroy(&w->cond);
	pthread_mutex_destroy(&w->lock);
	free(w);
}
