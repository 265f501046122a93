/*
 * bench_common.h: what the load generators in bench/ share.
 *
 * Each benchmark is one small program that talks to a running ferryd
 * through libferry, times every operation with CLOCK_MONOTONIC, and prints
 * one line per figure on stdout:
 *
 *	RESULT <name> <value> <unit> n=<samples> <parameter>=<value>...
 *
 * so that bench/run.sh (and a reader) can pick the figures out with grep.
 * Anything else a program says goes to stderr.  Warm-up operations are
 * never part of a figure, and every loop is bounded both by a count and by
 * a wall-clock limit (-t); a run cut short by the limit says so with
 * stopped=time-limit and reports the samples it did take.
 *
 * Everything here is static inline so that each program includes it once
 * and unused helpers cost no warnings.  Helpers that cannot go on (a
 * failed connect, out of memory) print why and exit: these are test
 * programs, not library code.
 */
#ifndef BENCH_COMMON_H
#define BENCH_COMMON_H

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry.h"

#define BENCH_COLLECTION	"bench"
#define BENCH_DOC_BYTES		1024	/* body size, compact JSON */
#define BENCH_BODY_MAX		65536
#define BENCH_PARAMS_MAX	(BENCH_BODY_MAX + 512)
#define BENCH_TIME_LIMIT	120	/* seconds, default for -t */

struct bench_stats {
	size_t	n;
	double	min;
	double	p50;
	double	p90;
	double	p99;
	double	p999;
	double	max;
	double	mean;
};

static inline uint64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static inline void
bench_fatal(const char *prog, const char *fmt, ...)
    __attribute__((noreturn, format(printf, 2, 3)));

static inline void
bench_fatal(const char *prog, const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* Exit with libferry's explanation of the failed call r on f. */
static inline void
bench_ferry_fatal(const char *prog, ferry *f, int r, const char *what)
    __attribute__((noreturn));

static inline void
bench_ferry_fatal(const char *prog, ferry *f, int r, const char *what)
{
	const char *msg = ferry_errmsg(f);

	bench_fatal(prog, "%s: %s", what,
	    msg != NULL && *msg != '\0' ? msg : strerror(-r));
}

static inline ferry *
bench_connect(const char *prog, const char *socket_path)
{
	ferry *f;
	int r;

	if ((r = ferry_connect(socket_path, &f)) < 0)
		bench_ferry_fatal(prog, NULL, r, "cannot connect to ferryd");
	return f;
}

/* A count from the command line: 0 <= value <= max, else exit. */
static inline long
bench_count(const char *prog, const char *opt, const char *s, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0 || v > max)
		bench_fatal(prog, "%s: '%s' is not a number between 0 and %ld",
		    opt, s, max);
	return v;
}

/*
 * Write into buf a JSON object of exactly bytes bytes (compact text, no
 * NUL counted) that differs for every n, so that no Put is a no-op for the
 * daemon.  Returns the length, or -1 if bytes is too small for the fixed
 * part or does not fit in size.
 */
static inline int
bench_body(char *buf, size_t size, size_t bytes, uint64_t n)
{
	static const char filler[] = "abcdefghijklmnopqrstuvwxyz0123456789";
	const char *tail = "\"}";
	size_t i, len, fill, start, run;
	int m;

	if (bytes + 1 > size)
		return -1;
	m = snprintf(buf, size, "{\"n\":%" PRIu64 ",\"title\":\"bench doc "
	    "%" PRIu64 "\",\"tags\":[\"bench\",\"ferry\"],\"done\":false,"
	    "\"text\":\"", n, n);
	if (m < 0 || (size_t)m + strlen(tail) > bytes)
		return -1;
	len = (size_t)m;
	fill = bytes - len - strlen(tail);
	/* filler[(i + n) % 36] for each i, a run of the filler at a time
	 * (a modulo per byte cost the client more than libferry did). */
	for (i = 0; i < fill; i += run) {
		start = (i + n) % (sizeof filler - 1);
		run = sizeof filler - 1 - start;
		if (run > fill - i)
			run = fill - i;
		memcpy(buf + len + i, filler + start, run);
	}
	memcpy(buf + len + fill, tail, strlen(tail) + 1);
	return (int)bytes;
}

/* The parameters of io.ferry.Put for (BENCH_COLLECTION, id, body). */
static inline int
bench_put_params(char *buf, size_t size, const char *id, const char *body)
{
	int m;

	m = snprintf(buf, size, "{\"collection\":\"" BENCH_COLLECTION "\","
	    "\"id\":\"%s\",\"body\":%s}", id, body);
	return m < 0 || (size_t)m >= size ? -1 : m;
}

static inline int
bench_cmp_i64(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Nearest-rank percentile p (0 < p <= 100) of the sorted v[0..n). */
static inline int64_t
bench_rank(const int64_t *v, size_t n, double p)
{
	double k = p / 100.0 * (double)n;
	size_t i = (size_t)k;

	if ((double)i < k)
		i++;
	if (i == 0)
		i = 1;
	return v[(i > n ? n : i) - 1];
}

/*
 * Sort v[0..n) (nanoseconds) in place and summarise it in microseconds.
 * n must be > 0.
 */
static inline void
bench_stats(int64_t *v, size_t n, struct bench_stats *ret)
{
	double sum = 0;
	size_t i;

	qsort(v, n, sizeof *v, bench_cmp_i64);
	for (i = 0; i < n; i++)
		sum += (double)v[i];
	ret->n = n;
	ret->min = (double)v[0] / 1e3;
	ret->p50 = (double)bench_rank(v, n, 50) / 1e3;
	ret->p90 = (double)bench_rank(v, n, 90) / 1e3;
	ret->p99 = (double)bench_rank(v, n, 99) / 1e3;
	ret->p999 = (double)bench_rank(v, n, 99.9) / 1e3;
	ret->max = (double)v[n - 1] / 1e3;
	ret->mean = sum / (double)n / 1e3;
}

/* One figure: "RESULT name value unit n=N params", value with prec decimals. */
static inline void
bench_result(const char *name, double value, int prec, const char *unit,
    size_t n, const char *params)
{
	printf("RESULT %s %.*f %s n=%zu %s\n", name, prec, value, unit, n,
	    params);
	fflush(stdout);
}

/* The whole distribution, for the reader; on stderr, not a figure. */
static inline void
bench_stats_print(const char *name, const struct bench_stats *s)
{
	fprintf(stderr, "%s: n=%zu min=%.1f p50=%.1f p90=%.1f p99=%.1f "
	    "p99.9=%.1f max=%.1f mean=%.1f (us)\n", name, s->n, s->min,
	    s->p50, s->p90, s->p99, s->p999, s->max, s->mean);
}

static inline void *
bench_calloc(const char *prog, size_t n, size_t size)
{
	void *p;

	if ((p = calloc(n == 0 ? 1 : n, size)) == NULL)
		bench_fatal(prog, "out of memory");
	return p;
}

#endif
