/*
 * presencer: an app that uses libferry's presence API, for ferryd's
 * presence tests and bench/presence.sh.
 *
 *   presencer SOCKET set C ID STATE [REFRESH_MS]
 *	ferry_set_presence, print "set", then (with REFRESH_MS) set it
 *	again every REFRESH_MS, until the file given with --until exists
 *	(then ferry_close and print "closed"; checked every 20 ms) or the
 *	process is killed (a crash).  ID "-" is no id.
 *   presencer SOCKET watch [C...]
 *	ferry_watch_presence; print "ready", then every presence reply as
 *	"<Unix ms> <reply JSON>", one a line, flushed, until the deadline.
 *   presencer SOCKET flood C N
 *	N SetPresence calls on one connection as fast as they go, each with
 *	a new state; print "ok K limited L last N" (N: the last state
 *	accepted) and the first LimitExceeded's message ("error: ..."),
 *	then keep the connection 300 ms (past the coalescing window) and
 *	close it.
 *   presencer SOCKET puts N
 *	N Puts one after the other (collection "lat"), each timed; print
 *	"puts N p50 X ms p99 Y ms".
 *   presencer bench SOCKET_A SOCKET_B N
 *	A sets presence N times (each waits until B's watcher has seen it,
 *	then 60 ms pass so no update is coalesced with the next) and prints
 *	the latency's p50, p99 and max; then an app on A is killed with
 *	SIGKILL and one closes cleanly, and the time until B's watcher sees
 *	each go is printed.
 *
 * Every wait is bounded by --timeout S (the first argument if given,
 * default 30).  Exit status: 0 done, 1 a wait ran out or a call failed
 * (a "FAIL" line), 2 usage.
 */
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ferry.h"

static int timeout_s = 30;
static const char *until_file;

static int64_t
mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static int64_t
wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: presencer [--timeout S] [--until FILE] SOCKET "
	    "set C ID STATE [REFRESH_MS]\n"
	    "       presencer [--timeout S] SOCKET watch [C...]\n"
	    "       presencer [--timeout S] SOCKET flood C N\n"
	    "       presencer [--timeout S] SOCKET puts N\n"
	    "       presencer [--timeout S] bench SOCKET_A SOCKET_B N\n");
	exit(2);
}

static void __attribute__((noreturn))
fail(ferry *f, const char *what)
{
	printf("FAIL %s: %s\n", what, ferry_errmsg(f));
	exit(1);
}

static ferry *
open_or_die(const char *path)
{
	ferry *f;

	if (ferry_connect(path, &f) < 0)
		fail(NULL, "connect");
	return f;
}

static int
cmd_set(const char *path, int argc, char **argv)
{
	struct timespec tick = { 0, 20 * 1000000 };
	int64_t next;
	const char *id;
	long refresh = 0;
	ferry *f;

	if (argc < 3 || argc > 4)
		usage();
	id = strcmp(argv[1], "-") == 0 ? NULL : argv[1];
	if (argc == 4)
		refresh = strtol(argv[3], NULL, 10);
	f = open_or_die(path);
	if (ferry_set_presence(f, argv[0], id, argv[2]) < 0)
		fail(f, "set");
	printf("set\n");
	fflush(stdout);
	next = mono_us() + refresh * 1000;
	while (until_file == NULL || access(until_file, F_OK) != 0) {
		nanosleep(&tick, NULL);
		if (refresh <= 0 || mono_us() < next)
			continue;
		if (ferry_set_presence(f, argv[0], id, argv[2]) < 0)
			fail(f, "refresh");
		next += refresh * 1000;
	}
	ferry_close(f);
	printf("closed\n");
	return 0;
}

static int
cmd_watch(const char *path, int argc, char **argv)
{
	const char **cols = NULL;
	int64_t deadline = mono_us() + (int64_t)timeout_s * 1000000;
	char *ev;
	ferry *f;
	int i, r;

	if (argc > 0) {
		if ((cols = calloc(argc + 1, sizeof *cols)) == NULL)
			exit(2);
		for (i = 0; i < argc; i++)
			cols[i] = argv[i];
	}
	f = open_or_die(path);
	if (ferry_watch_presence(f, cols, -1, 1) < 0)
		fail(f, "watch");
	printf("ready\n");
	fflush(stdout);
	while (mono_us() < deadline) {
		r = ferry_watch_wait(f, 200, &ev);
		if (r < 0)
			fail(f, "watch");
		if (r == 0)
			continue;
		if (strstr(ev, "\"presence\"") != NULL) {
			printf("%" PRId64 " %s\n", wall_ms(), ev);
			fflush(stdout);
		}
		free(ev);
	}
	ferry_close(f);
	free(cols);
	return 0;
}

static int
cmd_flood(const char *path, int argc, char **argv)
{
	struct timespec hold = { 0, 300 * 1000000 };
	long i, n, ok = 0, limited = 0, last = -1;
	char state[64], first[512] = "";
	ferry *f;
	int r;

	if (argc != 2)
		usage();
	n = strtol(argv[1], NULL, 10);
	f = open_or_die(path);
	for (i = 0; i < n; i++) {
		snprintf(state, sizeof state, "{\"n\":%ld}", i);
		r = ferry_set_presence(f, argv[0], "flood", state);
		if (r == 0) {
			ok++;
			last = i;
		} else if (r == -EDQUOT) {
			if (limited++ == 0)
				snprintf(first, sizeof first, "%s",
				    ferry_errmsg(f));
		} else
			fail(f, "flood");
	}
	printf("ok %ld limited %ld last %ld\n", ok, limited, last);
	if (first[0] != '\0')
		printf("error: %s\n", first);
	fflush(stdout);
	nanosleep(&hold, NULL);
	ferry_close(f);
	return 0;
}

static int cmp_i64(const void *a, const void *b);

static int
cmd_puts(const char *path, int argc, char **argv)
{
	int64_t *lat, t0;
	char id[32];
	long i, n;
	ferry *f;

	if (argc != 1 || (n = strtol(argv[0], NULL, 10)) < 1 ||
	    (lat = calloc(n, sizeof *lat)) == NULL)
		usage();
	f = open_or_die(path);
	for (i = 0; i < n; i++) {
		snprintf(id, sizeof id, "p%ld", i % 10);
		t0 = mono_us();
		if (ferry_put(f, "lat", id, "{\"v\":1}", -1, NULL) < 0)
			fail(f, "put");
		lat[i] = mono_us() - t0;
	}
	qsort(lat, n, sizeof *lat, cmp_i64);
	printf("puts %ld p50 %.1f ms p99 %.1f ms\n", n, lat[n / 2] / 1000.0,
	    lat[(n * 99) / 100] / 1000.0);
	ferry_close(f);
	free(lat);
	return 0;
}

/*
 * Wait on watcher b for a presence reply about session-less match: the
 * state's "i" equal to want (gone false), or, with want < 0, a gone reply
 * for the entry whose state "i" is -want - 1.  Returns the monotonic time
 * in us it was seen, or exits.
 */
static int64_t
bench_wait(ferry *b, long want, bool gone)
{
	int64_t deadline = mono_us() + (int64_t)timeout_s * 1000000;
	json_t *o, *st;
	char *ev;
	int r;

	while (mono_us() < deadline) {
		if ((r = ferry_watch_wait(b, 100, &ev)) < 0)
			fail(b, "watch");
		if (r == 0)
			continue;
		o = json_loads(ev, 0, NULL);
		free(ev);
		st = json_object_get(json_object_get(o, "presence"), "state");
		if (json_integer_value(json_object_get(st, "i")) == want &&
		    json_is_true(json_object_get(o, "gone")) == gone) {
			json_decref(o);
			return mono_us();
		}
		json_decref(o);
	}
	printf("FAIL no %s for %ld within %d s\n", gone ? "departure" :
	    "update", want, timeout_s);
	exit(1);
}

static int
cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return x < y ? -1 : x > y;
}

static int
cmd_bench(int argc, char **argv)
{
	struct timespec pace = { 0, 60 * 1000000 };
	int64_t *lat, t0;
	char state[64];
	ferry *a, *b;
	long i, n;
	int pfd[2];
	pid_t pid;

	if (argc != 3)
		usage();
	n = strtol(argv[2], NULL, 10);
	if (n < 1 || (lat = calloc(n, sizeof *lat)) == NULL)
		usage();
	b = open_or_die(argv[1]);
	if (ferry_watch_presence(b, NULL, -1, 1) < 0)
		fail(b, "watch");
	a = open_or_die(argv[0]);
	for (i = 0; i < n; i++) {
		snprintf(state, sizeof state, "{\"i\":%ld}", i);
		t0 = mono_us();
		if (ferry_set_presence(a, "bench", "doc", state) < 0)
			fail(a, "set");
		lat[i] = bench_wait(b, i, false) - t0;
		nanosleep(&pace, NULL);
	}
	qsort(lat, n, sizeof *lat, cmp_i64);
	printf("updates %ld p50 %.1f ms p99 %.1f ms max %.1f ms\n", n,
	    lat[n / 2] / 1000.0, lat[(n * 99) / 100 < n ? (n * 99) / 100 :
	    n - 1] / 1000.0, lat[n - 1] / 1000.0);

	/* An app killed with SIGKILL: the kernel closes its socket. */
	if (pipe(pfd) == -1)
		exit(2);
	if ((pid = fork()) == 0) {
		ferry *c = open_or_die(argv[0]);

		if (ferry_set_presence(c, "bench", "crash", "{\"i\":1000000}")
		    < 0)
			_exit(1);
		(void)!write(pfd[1], "x", 1);
		for (;;)
			pause();
	}
	(void)!read(pfd[0], state, 1);
	bench_wait(b, 1000000, false);
	t0 = mono_us();
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	printf("departure after kill -9 of the app: %.1f ms\n",
	    (bench_wait(b, 1000000, true) - t0) / 1000.0);

	t0 = mono_us();
	ferry_close(a);
	printf("departure after a clean disconnect: %.1f ms\n",
	    (bench_wait(b, n - 1, true) - t0) / 1000.0);
	ferry_close(b);
	free(lat);
	return 0;
}

int
main(int argc, char **argv)
{
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		if (argc > 2 && strcmp(argv[1], "--timeout") == 0)
			timeout_s = atoi(argv[2]);
		else if (argc > 2 && strcmp(argv[1], "--until") == 0)
			until_file = argv[2];
		else
			break;
		argc -= 2;
		argv += 2;
	}
	if (argc < 3)
		usage();
	if (strcmp(argv[1], "bench") == 0)
		return cmd_bench(argc - 2, argv + 2);
	if (strcmp(argv[2], "set") == 0)
		return cmd_set(argv[1], argc - 3, argv + 3);
	if (strcmp(argv[2], "watch") == 0)
		return cmd_watch(argv[1], argc - 3, argv + 3);
	if (strcmp(argv[2], "flood") == 0)
		return cmd_flood(argv[1], argc - 3, argv + 3);
	if (strcmp(argv[2], "puts") == 0)
		return cmd_puts(argv[1], argc - 3, argv + 3);
	usage();
}
