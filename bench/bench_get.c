/*
 * bench_get: latency of Get of a hot document against a running ferryd.
 *
 * One connection puts one document (a BENCH_DOC_BYTES body) and then gets
 * it back -w times to warm the daemon's caches and the page cache; then it
 * gets it -n times, one blocking ferry_get after another, and takes the
 * time from the call to the returned doc text (the whole round trip: build
 * the call, the daemon's read from the replica, parse the reply) per Get.
 * Figures: get_hot_p50 and get_hot_p99 (us).
 */
#include "autoconfig.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_common.h"

#define PROG	"bench_get"

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_get [-s SOCKET] [-n COUNT] [-w WARMUP] [-b BYTES]\n"
	    "                 [-t SECONDS] [-i ID]\n"
	    "  -s  ferryd's socket (default $FERRY_SOCKET, else\n"
	    "      $XDG_RUNTIME_DIR/ferry/ferryd.sock)\n"
	    "  -n  measured Gets (default 100000)\n"
	    "  -w  warm-up Gets (default 1000)\n"
	    "  -b  body bytes (default %d)   -t  time limit (default %d s)\n"
	    "  -i  the document's id (default \"hot\")\n",
	    BENCH_DOC_BYTES, BENCH_TIME_LIMIT);
	exit(2);
}

int
main(int argc, char *argv[])
{
	const char *sock = NULL, *id = "hot";
	long count = 100000, warmup = 1000, bytes = BENCH_DOC_BYTES;
	long limit = BENCH_TIME_LIMIT, i, n = 0;
	char body[BENCH_BODY_MAX], params[256], *doc;
	struct bench_stats s;
	uint64_t deadline, t0;
	int64_t *lat;
	int ch, r, stopped = 0;
	ferry *f;

	while ((ch = getopt(argc, argv, "b:i:n:s:t:w:")) != -1) {
		switch (ch) {
		case 'b':
			bytes = bench_count(PROG, "-b", optarg,
			    BENCH_BODY_MAX - 1);
			break;
		case 'i':
			id = optarg;
			break;
		case 'n':
			count = bench_count(PROG, "-n", optarg, 100000000);
			break;
		case 's':
			sock = optarg;
			break;
		case 't':
			limit = bench_count(PROG, "-t", optarg, 86400);
			break;
		case 'w':
			warmup = bench_count(PROG, "-w", optarg, 100000000);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || limit < 1 || count < 1)
		usage();

	f = bench_connect(PROG, sock);
	if (bench_body(body, sizeof body, (size_t)bytes, 0) < 0)
		bench_fatal(PROG, "cannot build a %ld-byte body", bytes);
	if ((r = ferry_put(f, BENCH_COLLECTION, id, body, -1, NULL)) < 0)
		bench_ferry_fatal(PROG, f, r, "Put");
	lat = bench_calloc(PROG, (size_t)count, sizeof *lat);
	deadline = bench_now_ns() + (uint64_t)limit * 1000000000u;
	for (i = 0; i < warmup + count; i++) {
		if (bench_now_ns() > deadline) {
			stopped = 1;
			break;
		}
		t0 = bench_now_ns();
		if ((r = ferry_get(f, BENCH_COLLECTION, id, &doc)) < 0)
			bench_ferry_fatal(PROG, f, r, "Get");
		if (i >= warmup)
			lat[n++] = (int64_t)(bench_now_ns() - t0);
		free(doc);
	}
	ferry_close(f);
	if (n == 0)
		bench_fatal(PROG, "no measured Get within %ld s", limit);
	bench_stats(lat, (size_t)n, &s);
	bench_stats_print("get_hot latency", &s);
	snprintf(params, sizeof params, "doc_bytes=%ld warmup=%ld%s", bytes,
	    warmup, stopped ? " stopped=time-limit" : "");
	bench_result("get_hot_p50", s.p50, 1, "us", s.n, params);
	bench_result("get_hot_p99", s.p99, 1, "us", s.n, params);
	free(lat);
	return 0;
}
