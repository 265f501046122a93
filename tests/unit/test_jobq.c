/*
 * test_jobq: the thread hand-off every ferry thread runs on (lib/jobq).
 *
 * Guards the promises the writer, the pull parsers, the server's verifiers
 * and the checkpointer rely on: with one thread, done functions run in
 * submission order on the loop thread; a job's items all run, on queue
 * threads, before its done function, and exactly once each; drain waits
 * for every job and delivers it; free drops (never completes) what was not
 * delivered, so a submitter frees exactly once whatever happens.
 */
#include "autoconfig.h"

#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "jobq.h"

static pthread_t loop_thread;

struct order {
	int	 done[256];
	int	 ndone;
	int	 dropped;
};

struct ojob {
	struct order	*o;
	int		 id;
	bool		 ran_off_loop;
};

static void
ojob_item(void *arg, size_t i)
{
	struct ojob *j = arg;

	(void)i;
	j->ran_off_loop = !pthread_equal(pthread_self(), loop_thread);
}

static void
ojob_done(void *arg)
{
	struct ojob *j = arg;

	assert_true(pthread_equal(pthread_self(), loop_thread));
	assert_true(j->ran_off_loop);
	j->o->done[j->o->ndone++] = j->id;
}

static void
ojob_drop(void *arg)
{
	struct ojob *j = arg;

	j->o->dropped++;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
}

/* Run the loop until *counter reaches want: bounded by the clock (10 s),
 * with a 5 ms tick so that a loop turn never blocks for long. */
static void
loop_until(struct event_base *base, const int *counter, int want)
{
	struct timeval tv = { 0, 5000 };
	time_t end = time(NULL) + 10;
	struct event *tick;

	tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	assert_non_null(tick);
	event_add(tick, &tv);
	while (*counter < want && time(NULL) <= end)
		event_base_loop(base, EVLOOP_ONCE);
	event_free(tick);
	assert_int_equal(*counter, want);
}

static struct event_base *
new_base(void)
{
	struct event_base *base;

	loop_thread = pthread_self();
	base = event_base_new();
	assert_non_null(base);
	return base;
}

static void
test_one_thread_in_order(void **state)
{
	struct event_base *base = new_base();
	struct ojob jobs[256];
	struct order o;
	struct jobq *q;
	int i;

	(void)state;
	memset(&o, 0, sizeof o);
	assert_int_equal(jobq_new(base, 1, &q), 0);
	for (i = 0; i < 256; i++) {
		jobs[i].o = &o;
		jobs[i].id = i;
		jobs[i].ran_off_loop = false;
		assert_int_equal(jobq_submit(q, NULL, ojob_item, ojob_done,
		    ojob_drop, &jobs[i]), 0);
	}
	loop_until(base, &o.ndone, 256);
	for (i = 0; i < 256; i++)
		assert_int_equal(o.done[i], i);
	assert_int_equal(jobq_pending(q), 0);
	jobq_free(q);
	assert_int_equal(o.dropped, 0);
	event_base_free(base);
}

struct many {
	size_t		 n;
	unsigned char	*ran;		/* one slot per item */
	int		 done;
};

static size_t
many_start(void *arg)
{
	struct many *m = arg;

	return m->n;
}

static void
many_item(void *arg, size_t i)
{
	struct many *m = arg;

	m->ran[i]++;
}

static void
many_done(void *arg)
{
	struct many *m = arg;
	size_t i;

	for (i = 0; i < m->n; i++)
		assert_int_equal(m->ran[i], 1);
	m->done++;
}

static void
test_items_in_parallel(void **state)
{
	struct event_base *base = new_base();
	struct many m[3];
	struct jobq *q;
	int total = 0, i;

	(void)state;
	assert_int_equal(jobq_new(base, 4, &q), 0);
	for (i = 0; i < 3; i++) {
		m[i].n = i == 1 ? 0 : 1000 + (size_t)i;	/* and an empty one */
		m[i].ran = calloc(m[i].n + 1, 1);
		m[i].done = 0;
		assert_int_equal(jobq_submit(q, many_start, many_item,
		    many_done, NULL, &m[i]), 0);
	}
	loop_until(base, &m[0].done, 1);
	loop_until(base, &m[1].done, 1);
	loop_until(base, &m[2].done, 1);
	jobq_free(q);
	for (i = 0; i < 3; i++) {
		total += m[i].done;
		free(m[i].ran);
	}
	assert_int_equal(total, 3);
	event_base_free(base);
}

static void
slow_item(void *arg, size_t i)
{
	struct timespec ts = { 0, 2 * 1000 * 1000 };

	/* Work that takes a while, so drain really has to wait. */
	nanosleep(&ts, NULL);
	ojob_item(arg, i);
}

static void
test_drain_waits_and_delivers(void **state)
{
	struct event_base *base = new_base();
	struct ojob jobs[20];
	struct order o;
	struct jobq *q;
	int i;

	(void)state;
	memset(&o, 0, sizeof o);
	assert_int_equal(jobq_new(base, 1, &q), 0);
	for (i = 0; i < 20; i++) {
		jobs[i].o = &o;
		jobs[i].id = i;
		assert_int_equal(jobq_submit(q, NULL, slow_item, ojob_done,
		    ojob_drop, &jobs[i]), 0);
	}
	/* No loop turn: drain itself waits and runs the done functions. */
	jobq_drain(q);
	assert_int_equal(o.ndone, 20);
	for (i = 0; i < 20; i++)
		assert_int_equal(o.done[i], i);
	assert_int_equal(jobq_pending(q), 0);
	jobq_free(q);
	assert_int_equal(o.dropped, 0);
	event_base_free(base);
}

static void
test_free_drops_undelivered(void **state)
{
	struct event_base *base = new_base();
	struct ojob jobs[50];
	struct order o;
	struct jobq *q;
	int i;

	(void)state;
	memset(&o, 0, sizeof o);
	assert_int_equal(jobq_new(base, 2, &q), 0);
	for (i = 0; i < 50; i++) {
		jobs[i].o = &o;
		jobs[i].id = i;
		assert_int_equal(jobq_submit(q, NULL, slow_item, ojob_done,
		    ojob_drop, &jobs[i]), 0);
	}
	/* Never run the loop: nothing is delivered, everything is dropped
	 * exactly once, whether it ran or not. */
	jobq_free(q);
	assert_int_equal(o.ndone, 0);
	assert_int_equal(o.dropped, 50);
	event_base_free(base);
}

static int no_base_ran;
static pthread_mutex_t no_base_lock = PTHREAD_MUTEX_INITIALIZER;

static void
count_item(void *arg, size_t i)
{
	(void)arg;
	(void)i;
	pthread_mutex_lock(&no_base_lock);
	no_base_ran++;
	pthread_mutex_unlock(&no_base_lock);
}

static void
test_without_a_loop(void **state)
{
	struct jobq *q;
	int i;

	(void)state;
	assert_int_equal(jobq_new(NULL, 1, &q), 0);
	for (i = 0; i < 100; i++)
		assert_int_equal(jobq_submit(q, NULL, count_item, NULL, NULL,
		    NULL), 0);
	jobq_drain(q);
	assert_int_equal(no_base_ran, 100);
	assert_int_equal(jobq_pending(q), 0);
	jobq_free(q);
	assert_int_equal(jobq_new(NULL, 0, &q), -EINVAL);
	assert_int_equal(jobq_new(NULL, JOBQ_MAX_THREADS + 1, &q), -EINVAL);
	jobq_free(NULL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_one_thread_in_order),
		cmocka_unit_test(test_items_in_parallel),
		cmocka_unit_test(test_drain_waits_and_delivers),
		cmocka_unit_test(test_free_drops_undelivered),
		cmocka_unit_test(test_without_a_loop),
	};

	evthread_use_pthreads();
	return (cmocka_run_group_tests(tests, NULL, NULL));
}
