/*
 * bench_merge: how fast lib/merge merges concurrently edited documents.
 *
 * Two shapes, each merged over and over (after a warm-up) until -n merges
 * or -t seconds, whichever comes first:
 *
 *   1k:  a 1 KB document of 33 fields (strings, numbers, a nested object);
 *        mine changes 10 fields and theirs 10 others, so every merge is
 *        clean and touches 20 paths.  The merge issue's target is
 *        >= 100,000 merges/s.
 *   64k: a 64 KB document holding a 1,000-element id-keyed array; mine
 *        edits 10 elements and adds 5, theirs edits 10 others and deletes
 *        5.  Reported, no target.
 *
 * For each it prints the rate of merge_three() alone, on trees parsed once
 * (what the function costs), and of the whole step ferryd performs per
 * merge: parse base, mine and theirs from text, merge, dump the result
 * with sorted keys.  Each merge's result is checked against the expected
 * body once before timing, so a fast wrong merge cannot pass for a fast
 * one.  No daemon, no I/O: one thread, CLOCK_MONOTONIC.
 *
 * usage: bench_merge [-n MERGES] [-w WARMUP] [-t SECONDS]
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "merge.h"

struct shape {
	const char	*name;
	json_t		*base;
	json_t		*mine;
	json_t		*theirs;
	json_t		*expected;
	char		*base_text;
	char		*mine_text;
	char		*theirs_text;
};

static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void
die(const char *what)
{
	fprintf(stderr, "bench_merge: %s\n", what);
	exit(1);
}

static void
set(json_t *o, const char *key, json_t *v)
{
	if (v == NULL || json_object_set_new(o, key, v) < 0)
		die("out of memory");
}

/* The 1 KB document: f00..f23 strings, n00..n07 numbers, a nested
 * "meta" object; about 1,050 bytes compact. */
static json_t *
doc_1k(void)
{
	json_t *o = json_object(), *meta = json_object();
	char key[16], val[40];
	int i;

	if (o == NULL || meta == NULL)
		die("out of memory");
	for (i = 0; i < 24; i++) {
		snprintf(key, sizeof key, "f%02d", i);
		snprintf(val, sizeof val, "value of field %02d, as it was.", i);
		set(o, key, json_string(val));
	}
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "n%02d", i);
		set(o, key, json_integer(1000 + i));
	}
	set(meta, "owner", json_string("planner"));
	set(meta, "color", json_string("red"));
	set(meta, "tags", json_pack("[sss]", "a", "b", "c"));
	set(o, "meta", meta);
	return o;
}

static void
shape_1k(struct shape *s)
{
	char key[16], val[48];
	int i;

	s->name = "1k";
	s->base = doc_1k();
	s->mine = json_deep_copy(s->base);
	s->theirs = json_deep_copy(s->base);
	if (s->mine == NULL || s->theirs == NULL)
		die("out of memory");
	/* mine: f00..f07 and n00, meta.color; theirs: f10..f17, n01,
	 * meta.owner. */
	for (i = 0; i < 8; i++) {
		snprintf(key, sizeof key, "f%02d", i);
		snprintf(val, sizeof val, "mine changed field %02d", i);
		set(s->mine, key, json_string(val));
		snprintf(key, sizeof key, "f%02d", i + 10);
		snprintf(val, sizeof val, "theirs changed field %02d", i + 10);
		set(s->theirs, key, json_string(val));
	}
	set(s->mine, "n00", json_integer(1));
	set(s->theirs, "n01", json_integer(2));
	set(json_object_get(s->mine, "meta"), "color", json_string("blue"));
	set(json_object_get(s->theirs, "meta"), "owner",
	    json_string("designer"));
	/* The expected merge: both sets of changes. */
	s->expected = json_deep_copy(s->mine);
	for (i = 10; i < 18; i++) {
		snprintf(key, sizeof key, "f%02d", i);
		set(s->expected, key,
		    json_incref(json_object_get(s->theirs, key)));
	}
	set(s->expected, "n01", json_integer(2));
	set(json_object_get(s->expected, "meta"), "owner",
	    json_string("designer"));
}

static json_t *
element(int i, const char *name)
{
	char id[16];

	snprintf(id, sizeof id, "e%04d", i);
	return json_pack("{s:s,s:s,s:i,s:b}", "id", id, "name", name, "v", i,
	    "on", i % 2);
}

/* The 64 KB document: "items", 1,000 elements of ~64 bytes. */
static void
shape_64k(struct shape *s)
{
	json_t *bi, *mi, *ti, *ei;
	int i;

	s->name = "64k";
	s->base = json_pack("{s:s,s:[]}", "title", "big list", "items");
	if (s->base == NULL)
		die("out of memory");
	bi = json_object_get(s->base, "items");
	for (i = 0; i < 1000; i++)
		if (json_array_append_new(bi, element(i,
		    "an element as it was")) < 0)
			die("out of memory");
	s->mine = json_deep_copy(s->base);
	s->theirs = json_deep_copy(s->base);
	s->expected = json_deep_copy(s->base);
	if (s->mine == NULL || s->theirs == NULL || s->expected == NULL)
		die("out of memory");
	mi = json_object_get(s->mine, "items");
	ti = json_object_get(s->theirs, "items");
	ei = json_object_get(s->expected, "items");
	/* mine edits 10 elements spread over the list and appends 5. */
	for (i = 0; i < 10; i++) {
		json_array_set_new(mi, (size_t)(i * 97 + 3),
		    element(i * 97 + 3, "edited on mine"));
		json_array_set_new(ei, (size_t)(i * 97 + 3),
		    element(i * 97 + 3, "edited on mine"));
	}
	/* theirs edits 10 others. */
	for (i = 0; i < 10; i++) {
		json_array_set_new(ti, (size_t)(i * 89 + 50),
		    element(i * 89 + 50, "edited on theirs"));
		json_array_set_new(ei, (size_t)(i * 89 + 50),
		    element(i * 89 + 50, "edited on theirs"));
	}
	/* theirs deletes 5 elements near the end (not edited by mine). */
	for (i = 0; i < 5; i++) {
		json_array_remove(ti, (size_t)(990 - i * 2));
		json_array_remove(ei, (size_t)(990 - i * 2));
	}
	for (i = 0; i < 5; i++) {
		json_array_append_new(mi, element(2000 + i, "added on mine"));
		json_array_append_new(ei, element(2000 + i, "added on mine"));
	}
}

static void
shape_texts(struct shape *s)
{
	s->base_text = json_dumps(s->base, JSON_COMPACT | JSON_SORT_KEYS);
	s->mine_text = json_dumps(s->mine, JSON_COMPACT | JSON_SORT_KEYS);
	s->theirs_text = json_dumps(s->theirs, JSON_COMPACT | JSON_SORT_KEYS);
	if (s->base_text == NULL || s->mine_text == NULL ||
	    s->theirs_text == NULL)
		die("out of memory");
}

/* One merge as ferryd does it: parse the three texts, merge, dump. */
static void
merge_texts(const struct shape *s)
{
	json_t *b, *m, *t, *out = NULL;
	char *text;

	b = json_loads(s->base_text, JSON_REJECT_DUPLICATES, NULL);
	m = json_loads(s->mine_text, JSON_REJECT_DUPLICATES, NULL);
	t = json_loads(s->theirs_text, JSON_REJECT_DUPLICATES, NULL);
	if (b == NULL || m == NULL || t == NULL)
		die("cannot parse a document");
	if (merge_three(b, m, t, &out, NULL) != 0)
		die("the merge was not clean");
	if ((text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		die("out of memory");
	free(text);
	json_decref(out);
	json_decref(b);
	json_decref(m);
	json_decref(t);
}

static void
check(const struct shape *s)
{
	json_t *out = NULL, *paths = NULL;
	int n;

	n = merge_three(s->base, s->mine, s->theirs, &out, &paths);
	if (n != 0 || out == NULL || !json_equal(out, s->expected)) {
		char *got = out != NULL ? json_dumps(out, JSON_COMPACT) : NULL;

		fprintf(stderr, "bench_merge: %s: wrong merge (%d conflicts)"
		    ": %.300s\n", s->name, n, got != NULL ? got : "null");
		free(got);
		exit(1);
	}
	json_decref(out);
	json_decref(paths);
}

/* One merge: of the parsed trees, or (texts) the whole step. */
static void
merge_once(const struct shape *s, bool texts)
{
	json_t *out = NULL;

	if (texts) {
		merge_texts(s);
		return;
	}
	if (merge_three(s->base, s->mine, s->theirs, &out, NULL) != 0)
		die("the merge was not clean");
	json_decref(out);
}

static void
run(const struct shape *s, long n, long warmup, double limit_s, bool texts)
{
	uint64_t t0, t1, deadline;
	const char *stopped = "count";
	long i, done = 0;

	for (i = 0; i < warmup; i++)
		merge_once(s, texts);
	t0 = now_ns();
	deadline = t0 + (uint64_t)(limit_s * 1e9);
	for (i = 0; i < n; i++) {
		merge_once(s, texts);
		done++;
		if ((i & 255) == 255 && now_ns() > deadline) {
			stopped = "time-limit";
			break;
		}
	}
	t1 = now_ns();
	printf("RESULT merge_%s%s %.0f merges/s n=%ld us_per_merge=%.2f "
	    "doc_bytes=%zu stopped=%s\n", s->name, texts ? "_with_json" : "",
	    (double)done / ((double)(t1 - t0) / 1e9), done,
	    (double)(t1 - t0) / 1e3 / (double)done, strlen(s->base_text),
	    stopped);
}

static void
shape_free(struct shape *s)
{
	json_decref(s->base);
	json_decref(s->mine);
	json_decref(s->theirs);
	json_decref(s->expected);
	free(s->base_text);
	free(s->mine_text);
	free(s->theirs_text);
}

int
main(int argc, char **argv)
{
	struct shape s1, s64;
	long n = 1000000, warmup = 10000;
	double limit = 60;
	int o;

	while ((o = getopt(argc, argv, "n:w:t:")) != -1) {
		switch (o) {
		case 'n':
			n = strtol(optarg, NULL, 10);
			break;
		case 'w':
			warmup = strtol(optarg, NULL, 10);
			break;
		case 't':
			limit = strtod(optarg, NULL);
			break;
		default:
			fprintf(stderr, "usage: bench_merge [-n MERGES] "
			    "[-w WARMUP] [-t SECONDS]\n");
			return 2;
		}
	}
	if (n <= 0 || warmup < 0 || limit <= 0) {
		fprintf(stderr, "bench_merge: -n, -w and -t must be positive\n");
		return 2;
	}
	memset(&s1, 0, sizeof s1);
	memset(&s64, 0, sizeof s64);
	shape_1k(&s1);
	shape_64k(&s64);
	shape_texts(&s1);
	shape_texts(&s64);
	check(&s1);
	check(&s64);
	run(&s1, n, warmup, limit, false);
	run(&s1, n / 4, warmup / 4, limit, true);
	run(&s64, n / 100 + 1, warmup / 100, limit, false);
	run(&s64, n / 400 + 1, warmup / 400, limit, true);
	shape_free(&s1);
	shape_free(&s64);
	return 0;
}
