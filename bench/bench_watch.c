/*
 * bench_watch: how long after a writer has its Put acknowledged does a
 * watcher on another connection have the change.
 *
 * One process, two connections to ferryd.  Connection B subscribes with
 * Watch on BENCH_COLLECTION (from now on); a thread blocks in
 * ferry_watch_wait on it and stamps each event with CLOCK_MONOTONIC as
 * soon as libferry hands it over.  The main thread, on connection A, puts
 * documents one at a time (a BENCH_DOC_BYTES body, a new id each) and
 * stamps each reply as ferry_put returns; it waits for the watcher to see
 * that Put's event before the next Put, so no event queues behind another.
 * The sample is event stamp minus reply stamp.  ferryd sends the batch's
 * replies before it notifies watchers, but the two clients run on their own
 * threads, so the watcher can get there first: such a sample counts as 0
 * and the number of them is reported (before_reply=).  Figures:
 * watch_delay_p50 and watch_delay_p99 (ms).
 *
 * With -S, the watcher connects to another ferryd (device B) that syncs
 * with the same remote as the writer's (device A): the sample is then the
 * time from A's acknowledged Put to B's Watch event through the server
 * (push, the server's commit, B's long-poll, B's commit).  Figures:
 * remote_delay_p50 and remote_delay_p99 (ms).
 */
#include "autoconfig.h"

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bench_common.h"

#define PROG		"bench_watch"
#define EVENT_WAIT_MS	5000	/* a Put's event later than this is a failure */

struct watcher {
	ferry		*f;
	const char	*prefix;
	long		 total;
	uint64_t	*seen_at;	/* [total], ns */
	long		 seen;		/* events received, in order */
	int		 err;		/* watcher gave up: -errno */
	int		 stop;
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_watch [-s SOCKET] [-S SOCKET] [-n COUNT] [-w WARMUP]\n"
	    "                   [-b BYTES] [-t SECONDS] [-i ID-PREFIX]\n"
	    "  -s  ferryd's socket (default $FERRY_SOCKET, else\n"
	    "      $XDG_RUNTIME_DIR/ferry/ferryd.sock)\n"
	    "  -S  watch on this other ferryd (same remote) instead\n"
	    "  -n  measured Puts (default 5000)   -w  warm-up (default 200)\n"
	    "  -b  body bytes (default %d)   -t  time limit (default %d s)\n"
	    "  -i  prefix of the document ids (default none)\n",
	    BENCH_DOC_BYTES, BENCH_TIME_LIMIT);
	exit(2);
}

/* The number at the end of the event's id "<prefix>wt-<n>", or -1. */
static long
event_index(const char *text, const char *prefix)
{
	json_error_t jerr;
	const char *id;
	char *end;
	json_t *ev;
	long n = -1;
	size_t plen = strlen(prefix);

	if ((ev = json_loads(text, 0, &jerr)) == NULL)
		return -1;
	id = json_string_value(json_object_get(ev, "id"));
	if (id != NULL && strncmp(id, prefix, plen) == 0 &&
	    strncmp(id + plen, "wt-", 3) == 0) {
		n = strtol(id + plen + 3, &end, 10);
		if (*end != '\0')
			n = -1;
	}
	json_decref(ev);
	return n;
}

static void *
watcher_main(void *arg)
{
	struct watcher *w = arg;
	uint64_t t;
	char *ev;
	long n;
	int r;

	for (;;) {
		pthread_mutex_lock(&w->mu);
		r = w->stop || w->seen == w->total;
		pthread_mutex_unlock(&w->mu);
		if (r)
			break;
		r = ferry_watch_wait(w->f, 200, &ev);
		if (r == 0)
			continue;
		t = bench_now_ns();
		if (r < 0) {
			pthread_mutex_lock(&w->mu);
			w->err = r;
			pthread_cond_broadcast(&w->cond);
			pthread_mutex_unlock(&w->mu);
			break;
		}
		n = event_index(ev, w->prefix);
		free(ev);
		if (n < 0 || n >= w->total)
			continue;	/* someone else's write */
		pthread_mutex_lock(&w->mu);
		w->seen_at[n] = t;
		if (n + 1 > w->seen)
			w->seen = n + 1;
		pthread_cond_broadcast(&w->cond);
		pthread_mutex_unlock(&w->mu);
	}
	return NULL;
}

/* Wait until the watcher has event n.  Returns its stamp; exits on failure. */
static uint64_t
wait_event(struct watcher *w, long n, ferry *wf)
{
	struct timespec until;
	uint64_t t;
	int r = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += EVENT_WAIT_MS / 1000;
	pthread_mutex_lock(&w->mu);
	while (w->seen <= n && w->err == 0 && r != ETIMEDOUT)
		r = pthread_cond_timedwait(&w->cond, &w->mu, &until);
	if (w->seen <= n) {
		pthread_mutex_unlock(&w->mu);
		if (w->err != 0)
			bench_ferry_fatal(PROG, wf, w->err, "Watch");
		bench_fatal(PROG, "no Watch event for Put %ld within %d ms", n,
		    EVENT_WAIT_MS);
	}
	t = w->seen_at[n];
	pthread_mutex_unlock(&w->mu);
	return t;
}

int
main(int argc, char *argv[])
{
	static const char *const cols[] = { BENCH_COLLECTION, NULL };
	const char *sock = NULL, *wsock = NULL;
	long count = 5000, warmup = 200, bytes = BENCH_DOC_BYTES;
	long limit = BENCH_TIME_LIMIT, i, n = 0, before = 0;
	char body[BENCH_BODY_MAX], id[128], params[256];
	struct watcher w;
	struct bench_stats s;
	uint64_t deadline, t_reply, t_event;
	int64_t *lat, d;
	pthread_t th;
	int ch, r, stopped = 0;
	ferry *fa;

	memset(&w, 0, sizeof w);
	w.prefix = "";
	while ((ch = getopt(argc, argv, "b:i:n:s:S:t:w:")) != -1) {
		switch (ch) {
		case 'b':
			bytes = bench_count(PROG, "-b", optarg,
			    BENCH_BODY_MAX - 1);
			break;
		case 'i':
			w.prefix = optarg;
			break;
		case 'n':
			count = bench_count(PROG, "-n", optarg, 10000000);
			break;
		case 's':
			sock = optarg;
			break;
		case 'S':
			wsock = optarg;
			break;
		case 't':
			limit = bench_count(PROG, "-t", optarg, 86400);
			break;
		case 'w':
			warmup = bench_count(PROG, "-w", optarg, 10000000);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || limit < 1 || count < 1 ||
	    strlen(w.prefix) > 64)
		usage();

	fa = bench_connect(PROG, sock);
	w.f = bench_connect(PROG, wsock != NULL ? wsock : sock);
	if ((r = ferry_watch(w.f, cols, -1)) < 0)
		bench_ferry_fatal(PROG, w.f, r, "Watch");
	w.total = warmup + count;
	w.seen_at = bench_calloc(PROG, (size_t)w.total, sizeof *w.seen_at);
	lat = bench_calloc(PROG, (size_t)count, sizeof *lat);
	pthread_mutex_init(&w.mu, NULL);
	pthread_cond_init(&w.cond, NULL);
	if ((r = pthread_create(&th, NULL, watcher_main, &w)) != 0)
		bench_fatal(PROG, "pthread_create: %s", strerror(r));

	deadline = bench_now_ns() + (uint64_t)limit * 1000000000u;
	for (i = 0; i < w.total; i++) {
		if (bench_now_ns() > deadline) {
			stopped = 1;
			break;
		}
		snprintf(id, sizeof id, "%swt-%ld", w.prefix, i);
		if (bench_body(body, sizeof body, (size_t)bytes,
		    (uint64_t)i) < 0)
			bench_fatal(PROG, "cannot build a %ld-byte body",
			    bytes);
		if ((r = ferry_put(fa, BENCH_COLLECTION, id, body, -1,
		    NULL)) < 0)
			bench_ferry_fatal(PROG, fa, r, "Put");
		t_reply = bench_now_ns();
		t_event = wait_event(&w, i, w.f);
		if (i < warmup)
			continue;
		d = (int64_t)(t_event - t_reply);
		if (d < 0) {
			before++;
			d = 0;
		}
		lat[n++] = d;
	}
	pthread_mutex_lock(&w.mu);
	w.stop = 1;
	pthread_mutex_unlock(&w.mu);
	pthread_join(th, NULL);
	ferry_close(fa);
	ferry_close(w.f);
	if (n == 0)
		bench_fatal(PROG, "no measured Put within %ld s", limit);
	bench_stats(lat, (size_t)n, &s);
	bench_stats_print(wsock != NULL ? "remote_delay (A's reply to B's "
	    "event)" : "watch_delay (reply to event)", &s);
	snprintf(params, sizeof params, "doc_bytes=%ld warmup=%ld "
	    "before_reply=%ld%s", bytes, warmup, before,
	    stopped ? " stopped=time-limit" : "");
	bench_result(wsock != NULL ? "remote_delay_p50" : "watch_delay_p50",
	    s.p50 / 1e3, 3, "ms", s.n, params);
	bench_result(wsock != NULL ? "remote_delay_p99" : "watch_delay_p99",
	    s.p99 / 1e3, 3, "ms", s.n, params);
	free(lat);
	free(w.seen_at);
	return 0;
}
