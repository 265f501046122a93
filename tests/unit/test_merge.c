/*
 * test_merge: the three-way merge the sync engine runs on a conflict, and
 * the field diff the audit log records.
 *
 * Guards: every case of tests/suites/merge gives the expected document or
 * the expected conflict paths, and the same with mine and theirs swapped
 * (a merge must not depend on which device is "mine"); the inputs are
 * never modified; over seeded random documents, merging with one side
 * unchanged gives the other side, equal sides merge to themselves, swapping
 * sides changes nothing, and edits on disjoint members or keyed elements
 * all survive a clean merge in each side's order; the callback sees the
 * three values at each conflict, in path order, and can stop the merge;
 * merge_diff names what changed; bad inputs are -EINVAL and leave the
 * outputs alone; inputs as deep as the parser allows do not exhaust the
 * stack.
 */
#include "autoconfig.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "merge.h"

#define SUITE_MIN_CASES	40
#define PROP_ITERS	2000
#define TEST_DEPTH	2048

static json_t *
parse(const char *text)
{
	json_error_t err;
	json_t *v;

	v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
	if (v == NULL)
		fail_msg("bad test JSON '%s': %s", text, err.text);
	return v;
}

/* Parse a document: JSON null stands for an absent one (NULL). */
static json_t *
doc(const char *text)
{
	json_t *v;

	v = parse(text);
	if (json_is_null(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

static char *
dump(const json_t *v)
{
	char *s;

	if (v == NULL)
		return strdup("(absent)");
	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(s);
	return s;
}

static int
same(const json_t *a, const json_t *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return json_equal(a, b);
}

/* Whether the paths in a are strictly increasing, bytewise. */
static int
sorted_unique(const json_t *a)
{
	size_t i;

	for (i = 1; i < json_array_size(a); i++)
		if (strcmp(json_string_value(json_array_get(a, i - 1)),
		    json_string_value(json_array_get(a, i))) >= 0)
			return 0;
	return 1;
}

/*
 * Merge b, m, t both ways round and check what every merge must satisfy:
 * the return value counts the conflicts, the paths are sorted and unique,
 * the swapped merge finds the same paths (and the same document when
 * clean), the inputs are unchanged.  Returns the conflict count; the
 * merged document and paths of the unswapped merge go to *ret_merged and
 * *ret_paths.  name says what to print on failure.
 */
static int
merge_both_ways(const char *name, json_t *b, json_t *m, json_t *t,
    json_t **ret_merged, json_t **ret_paths)
{
	json_t *bc, *mc, *tc, *merged = NULL, *paths = NULL;
	json_t *merged2 = NULL, *paths2 = NULL;
	char *s1, *s2;
	int rc, rc2;

	bc = b != NULL ? json_deep_copy(b) : NULL;
	mc = m != NULL ? json_deep_copy(m) : NULL;
	tc = t != NULL ? json_deep_copy(t) : NULL;

	rc = merge_three(b, m, t, &merged, &paths);
	if (rc < 0)
		fail_msg("%s: merge_three: %s", name, strerror(-rc));
	if (paths == NULL || (size_t)rc != json_array_size(paths) ||
	    !sorted_unique(paths)) {
		s1 = dump(paths);
		fail_msg("%s: returned %d with paths %s", name, rc, s1);
	}
	rc2 = merge_three(b, t, m, &merged2, &paths2);
	if (rc2 != rc || !json_equal(paths, paths2)) {
		s1 = dump(paths);
		s2 = dump(paths2);
		fail_msg("%s: conflicts %s, swapped %s", name, s1, s2);
	}
	if (rc == 0 && !same(merged, merged2)) {
		s1 = dump(merged);
		s2 = dump(merged2);
		fail_msg("%s: merged %s, swapped %s", name, s1, s2);
	}
	if (!same(b, bc) || !same(m, mc) || !same(t, tc))
		fail_msg("%s: an input was modified", name);

	json_decref(bc);
	json_decref(mc);
	json_decref(tc);
	json_decref(merged2);
	json_decref(paths2);
	*ret_merged = merged;
	*ret_paths = paths;
	return rc;
}

/* Conflict paths handed to the callback, to check they match the array. */
struct seen {
	json_t	*paths;
	int	 calls;
	int	 stop_at;
};

static int
collect_cb(const struct merge_conflict *c, void *arg)
{
	struct seen *s = arg;

	json_array_append_new(s->paths, json_string(c->path));
	if (++s->calls == s->stop_at)
		return -ECANCELED;
	return 0;
}

/* --- the data-driven suite --- */

static char *
read_file(const char *dir, const char *name, const char *file)
{
	char path[PATH_MAX];
	FILE *f;
	char *buf;
	long len;

	if (snprintf(path, sizeof path, "%s/%s/%s", dir, name, file) >=
	    (int)sizeof path)
		fail_msg("case %s: path too long", name);
	if ((f = fopen(path, "r")) == NULL)
		fail_msg("case %s: cannot open %s: %s", name, path,
		    strerror(errno));
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	len = ftell(f);
	assert_true(len >= 0);
	rewind(f);
	buf = malloc((size_t)len + 1);
	assert_non_null(buf);
	assert_int_equal(fread(buf, 1, (size_t)len, f), (size_t)len);
	buf[len] = '\0';
	fclose(f);
	return buf;
}

static json_t *
load_doc(const char *dir, const char *name, const char *file)
{
	json_error_t err;
	json_t *v;
	char *text;

	text = read_file(dir, name, file);
	v = json_loads(text, JSON_DECODE_ANY | JSON_REJECT_DUPLICATES, &err);
	if (v == NULL)
		fail_msg("case %s: %s: %s (line %d)", name, file, err.text,
		    err.line);
	free(text);
	if (json_is_null(v)) {
		json_decref(v);
		return NULL;
	}
	return v;
}

/*
 * expected.json is {"conflicts": [...]} (with an optional "merged") for a
 * merge with conflicts, anything else the merged body of a clean one.
 */
static int
is_conflict_expectation(json_t *e)
{
	size_t n;

	if (!json_is_object(e) || !json_is_array(json_object_get(e,
	    "conflicts")))
		return 0;
	n = json_object_size(e);
	return n == 1 || (n == 2 && json_object_get(e, "merged") != NULL);
}

static void
run_case(const char *dir, const char *name)
{
	json_t *b, *m, *t, *e, *merged, *paths, *want, *want_merged;
	struct seen seen;
	char *s1, *s2;
	int rc;

	b = load_doc(dir, name, "base.json");
	m = load_doc(dir, name, "mine.json");
	t = load_doc(dir, name, "theirs.json");
	e = load_doc(dir, name, "expected.json");

	rc = merge_both_ways(name, b, m, t, &merged, &paths);
	if (is_conflict_expectation(e)) {
		want = json_object_get(e, "conflicts");
		if (!json_equal(paths, want)) {
			s1 = dump(paths);
			s2 = dump(want);
			fail_msg("case %s: conflicts %s, want %s", name, s1,
			    s2);
		}
		want_merged = json_object_get(e, "merged");
		if (json_is_null(want_merged))
			want_merged = NULL;
		if (json_object_get(e, "merged") != NULL &&
		    !same(merged, want_merged)) {
			s1 = dump(merged);
			s2 = dump(want_merged);
			fail_msg("case %s: merged %s, want %s", name, s1, s2);
		}
	} else if (rc != 0 || !same(merged, e)) {
		s1 = dump(paths);
		s2 = dump(merged);
		fail_msg("case %s: want a clean merge to %s, got conflicts %s "
		    "and %s", name, dump(e), s1, s2);
	}

	/* The callback sees the same paths, once each, in order. */
	seen.paths = json_array();
	seen.calls = 0;
	seen.stop_at = -1;
	assert_int_equal(merge_three_cb(b, m, t, collect_cb, &seen, NULL,
	    NULL), rc);
	if (!json_equal(seen.paths, paths))
		fail_msg("case %s: callback saw %s", name, dump(seen.paths));

	json_decref(seen.paths);
	json_decref(merged);
	json_decref(paths);
	json_decref(b);
	json_decref(m);
	json_decref(t);
	json_decref(e);
}

static int
name_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

static int
is_dir(const char *path)
{
	DIR *d;

	if ((d = opendir(path)) == NULL)
		return 0;
	closedir(d);
	return 1;
}

/*
 * The suite directory: $FERRY_SRC_DIR (make check), $srcdir (automake's
 * test environment), or next to this file.
 */
static void
suite_dir(char *buf, size_t len)
{
	const char *env[] = { "FERRY_SRC_DIR", "srcdir" };
	const char *v, *slash;
	size_t i;

	for (i = 0; i < sizeof env / sizeof env[0]; i++) {
		if ((v = getenv(env[i])) == NULL || *v == '\0')
			continue;
		snprintf(buf, len, "%s/tests/suites/merge", v);
		if (is_dir(buf))
			return;
	}
	slash = strrchr(__FILE__, '/');
	snprintf(buf, len, "%.*s../suites/merge",
	    slash != NULL ? (int)(slash - __FILE__ + 1) : 0, __FILE__);
	if (!is_dir(buf))
		fail_msg("cannot find tests/suites/merge; set FERRY_SRC_DIR");
}

static void
test_suite(void **state)
{
	char dir[PATH_MAX], path[PATH_MAX], **names = NULL;
	struct dirent *de;
	size_t i, n = 0;
	DIR *d;

	(void)state;
	suite_dir(dir, sizeof dir);
	if ((d = opendir(dir)) == NULL)
		fail_msg("%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		if (snprintf(path, sizeof path, "%s/%s", dir, de->d_name) >=
		    (int)sizeof path || !is_dir(path))
			continue;
		names = realloc(names, (n + 1) * sizeof *names);
		assert_non_null(names);
		names[n] = strdup(de->d_name);
		assert_non_null(names[n]);
		n++;
	}
	closedir(d);
	qsort(names, n, sizeof *names, name_cmp);
	if (n < SUITE_MIN_CASES)
		fail_msg("%s: %zu cases, want at least %d", dir, n,
		    SUITE_MIN_CASES);
	for (i = 0; i < n; i++) {
		run_case(dir, names[i]);
		free(names[i]);
	}
	free(names);
	print_message("[          ] %zu merge cases from %s\n", n, dir);
}

/* --- property tests over seeded random documents --- */

struct rng {
	uint64_t	s;
};

static void
rng_seed(struct rng *r, uint64_t seed)
{
	/* splitmix64, so that nearby seeds give unrelated streams */
	seed += 0x9e3779b97f4a7c15ULL;
	seed = (seed ^ (seed >> 30)) * 0xbf58476d1ce4e5b9ULL;
	seed = (seed ^ (seed >> 27)) * 0x94d049bb133111ebULL;
	r->s = (seed ^ (seed >> 31)) | 1;
}

/* xorshift64* */
static uint32_t
rng_next(struct rng *r)
{
	r->s ^= r->s >> 12;
	r->s ^= r->s << 25;
	r->s ^= r->s >> 27;
	return (uint32_t)((r->s * 0x2545f4914f6cdd1dULL) >> 32);
}

static uint32_t
rng_below(struct rng *r, uint32_t n)
{
	return n == 0 ? 0 : rng_next(r) % n;
}

/* Keys that exercise escaping and UTF-8 as well as plain names. */
static const char *const keys[] = {
	"a", "b", "c", "d", "e", "name", "x/y", "t~1", "~", "/",
	"caf\xc3\xa9", "\xe6\x97\xa5\xe6\x9c\xac", "",
};
#define NKEYS	(sizeof keys / sizeof keys[0])

static json_t *
gen_scalar(struct rng *r)
{
	static const char *const strs[] = {
		"", "x", "y", "hello", "\xc3\xa9t\xc3\xa9", "a/b~c",
	};

	switch (rng_below(r, 7)) {
	case 0:
		return json_integer((json_int_t)rng_below(r, 4));
	case 1:
		return json_real((double)rng_below(r, 4));
	case 2:
		return json_string(strs[rng_below(r, 6)]);
	case 3:
		return json_boolean(rng_below(r, 2));
	case 4:
		return json_null();
	case 5:
		return json_integer(INT64_MAX - (json_int_t)rng_below(r, 2));
	default:
		return json_string(strs[rng_below(r, 6)]);
	}
}

static json_t *gen_value(struct rng *, int);

static json_t *
gen_object(struct rng *r, int depth)
{
	json_t *o;
	uint32_t i, n;

	o = json_object();
	n = rng_below(r, 5);
	for (i = 0; i < n; i++)
		json_object_set_new(o, keys[rng_below(r, NKEYS)],
		    gen_value(r, depth + 1));
	return o;
}

/* Ids come from a small range so both sides sometimes add the same one. */
static void
fresh_id(struct rng *r, json_t *arr, const char *prefix, char *buf,
    size_t len)
{
	size_t i;
	int taken;

	do {
		snprintf(buf, len, "%s%u", prefix, rng_below(r, 40));
		taken = 0;
		for (i = 0; i < json_array_size(arr); i++)
			if (strcmp(json_string_value(json_object_get(
			    json_array_get(arr, i), "id")), buf) == 0)
				taken = 1;
	} while (taken);
}

static json_t *
gen_element(struct rng *r, json_t *arr, const char *prefix, int depth)
{
	char id[32];
	json_t *o;

	fresh_id(r, arr, prefix, id, sizeof id);
	o = gen_object(r, depth);
	json_object_set_new(o, "id", json_string(id));
	return o;
}

static json_t *
gen_keyed(struct rng *r, int depth)
{
	json_t *a;
	uint32_t i, n;

	a = json_array();
	n = rng_below(r, 5);
	for (i = 0; i < n; i++)
		json_array_append_new(a, gen_element(r, a, "i", depth + 1));
	return a;
}

static json_t *
gen_value(struct rng *r, int depth)
{
	json_t *a;
	uint32_t i, n;

	if (depth >= 4)
		return gen_scalar(r);
	switch (rng_below(r, 6)) {
	case 0:
	case 1:
		return gen_object(r, depth);
	case 2:
		return gen_keyed(r, depth);
	case 3:
		a = json_array();
		n = rng_below(r, 4);
		for (i = 0; i < n; i++)
			json_array_append_new(a, gen_scalar(r));
		return a;
	default:
		return gen_scalar(r);
	}
}

static int
is_keyed(json_t *a)
{
	size_t i;

	if (!json_is_array(a) || json_array_size(a) == 0)
		return 0;
	for (i = 0; i < json_array_size(a); i++)
		if (!json_is_string(json_object_get(json_array_get(a, i),
		    "id")))
			return 0;
	return 1;
}

static void edit_value(struct rng *, json_t *, const char *, int);

static json_t *
object_nth(json_t *o, size_t n, const char **ret_key)
{
	const char *k;
	json_t *v;

	json_object_foreach(o, k, v) {
		if (n-- == 0) {
			*ret_key = k;
			return v;
		}
	}
	return NULL;
}

/* One random edit inside a container (in place); prefix names new ids. */
static void
edit_object(struct rng *r, json_t *o, const char *prefix, int depth)
{
	const char *k = NULL;
	json_t *v;

	v = json_object_size(o) == 0 ? NULL : object_nth(o,
	    rng_below(r, (uint32_t)json_object_size(o)), &k);
	switch (rng_below(r, 5)) {
	case 0:
		json_object_set_new(o, keys[rng_below(r, NKEYS)],
		    gen_value(r, depth + 1));
		break;
	case 1:
		if (k != NULL && strcmp(k, "id") != 0)
			json_object_del(o, k);
		break;
	default:
		if (k == NULL || strcmp(k, "id") == 0)
			break;
		if (json_is_object(v) || json_is_array(v))
			edit_value(r, v, prefix, depth + 1);
		else
			json_object_set_new(o, k, gen_scalar(r));
		break;
	}
}

static void
edit_keyed(struct rng *r, json_t *a, const char *prefix, int depth)
{
	size_t n = json_array_size(a), i, j;
	json_t *el;

	i = rng_below(r, (uint32_t)n);
	switch (rng_below(r, 4)) {
	case 0:
		/* Now and then an id the other side may add too. */
		json_array_insert_new(a, rng_below(r, (uint32_t)n + 1),
		    gen_element(r, a, rng_below(r, 3) == 0 ? "n" : prefix,
		    depth + 1));
		break;
	case 1:
		json_array_remove(a, i);
		break;
	case 2:
		j = rng_below(r, (uint32_t)n);
		el = json_incref(json_array_get(a, i));
		json_array_remove(a, i);
		json_array_insert_new(a, j, el);
		break;
	default:
		edit_object(r, json_array_get(a, i), prefix, depth + 1);
		break;
	}
}

static void
edit_value(struct rng *r, json_t *v, const char *prefix, int depth)
{
	size_t n;

	if (json_is_object(v))
		edit_object(r, v, prefix, depth);
	else if (is_keyed(v))
		edit_keyed(r, v, prefix, depth);
	else if (json_is_array(v)) {
		n = json_array_size(v);
		if (n > 0 && rng_below(r, 2))
			json_array_set_new(v, rng_below(r, (uint32_t)n),
			    gen_scalar(r));
		else if (json_array_size(v) == 0 && rng_below(r, 2))
			json_array_append_new(v, gen_element(r, v, prefix,
			    depth + 1));
		else
			json_array_append_new(v, gen_scalar(r));
	}
}

static json_t *
edited(struct rng *r, json_t *base, const char *prefix)
{
	json_t *v;
	uint32_t i, n;

	v = json_deep_copy(base);
	n = rng_below(r, 4);
	for (i = 0; i < n; i++)
		edit_value(r, v, prefix, 0);
	return v;
}

static void
check_takes(const char *what, uint64_t seed, json_t *b, json_t *m,
    json_t *t, json_t *want)
{
	json_t *merged, *paths;
	char name[64];
	int rc;

	snprintf(name, sizeof name, "seed %llu: %s", (unsigned long long)seed,
	    what);
	rc = merge_both_ways(name, b, m, t, &merged, &paths);
	if (rc != 0 || !same(merged, want))
		fail_msg("%s: want %s clean, got %d conflicts %s: %s", name,
		    dump(want), rc, dump(paths), dump(merged));
	json_decref(merged);
	json_decref(paths);
}

/*
 * One side unchanged gives the other; equal sides give themselves; swapping
 * sides changes nothing (checked inside merge_both_ways for every merge).
 */
static void
test_property_identities(void **state)
{
	json_t *b, *m, *t, *merged, *paths;
	uint64_t seed;
	struct rng r;
	char name[64];
	int i, conflicted = 0;

	(void)state;
	for (i = 0; i < PROP_ITERS; i++) {
		seed = 1000 + (uint64_t)i;
		rng_seed(&r, seed);
		b = gen_object(&r, 0);
		m = edited(&r, b, "m");
		t = edited(&r, b, "t");

		check_takes("merge(b,m,b) = m", seed, b, m, b, m);
		check_takes("merge(b,b,t) = t", seed, b, b, t, t);
		check_takes("merge(b,m,m) = m", seed, b, m, m, m);
		snprintf(name, sizeof name, "seed %llu: merge(b,m,t)",
		    (unsigned long long)seed);
		if (merge_both_ways(name, b, m, t, &merged, &paths) > 0)
			conflicted++;
		if (merged == NULL)
			fail_msg("%s: two documents merged to a deletion",
			    name);
		json_decref(merged);
		json_decref(paths);
		json_decref(b);
		json_decref(m);
		json_decref(t);
	}
	/* The generator must reach both outcomes, or it tests too little. */
	assert_in_range(conflicted, PROP_ITERS / 20, PROP_ITERS - PROP_ITERS / 20);
}

/*
 * Edits on disjoint top-level members all land: mine owns the members at
 * even positions, theirs the odd ones, and each adds members of its own.
 */
static void
test_property_disjoint_members(void **state)
{
	json_t *b, *m, *t, *want, *merged, *paths, *v;
	const char *k;
	uint64_t seed;
	struct rng r;
	char name[64], added[16];
	size_t pos;
	int i;

	(void)state;
	for (i = 0; i < PROP_ITERS; i++) {
		seed = 50000 + (uint64_t)i;
		rng_seed(&r, seed);
		b = gen_object(&r, 0);
		m = json_deep_copy(b);
		t = json_deep_copy(b);
		want = json_deep_copy(b);
		pos = 0;
		json_object_foreach(b, k, v) {
			json_t *side = pos++ % 2 == 0 ? m : t;

			switch (rng_below(&r, 4)) {
			case 0:
				json_object_del(side, k);
				break;
			case 1:
				json_object_set_new(side, k, gen_value(&r, 1));
				break;
			case 2:
				edit_value(&r, json_object_get(side, k),
				    side == m ? "m" : "t", 1);
				break;
			default:
				break;
			}
			if (json_object_get(side, k) != NULL)
				json_object_set(want, k,
				    json_object_get(side, k));
			else
				json_object_del(want, k);
		}
		snprintf(added, sizeof added, "m+%u", rng_below(&r, 3));
		json_object_set_new(m, added, gen_value(&r, 1));
		json_object_set(want, added, json_object_get(m, added));
		snprintf(added, sizeof added, "t+%u", rng_below(&r, 3));
		json_object_set_new(t, added, gen_value(&r, 1));
		json_object_set(want, added, json_object_get(t, added));

		snprintf(name, sizeof name, "seed %llu: disjoint members",
		    (unsigned long long)seed);
		if (merge_both_ways(name, b, m, t, &merged, &paths) != 0 ||
		    !json_equal(merged, want))
			fail_msg("%s: want %s clean, got %s: %s", name,
			    dump(want), dump(paths), dump(merged));
		json_decref(merged);
		json_decref(paths);
		json_decref(want);
		json_decref(b);
		json_decref(m);
		json_decref(t);
	}
}

static json_t *
find_id(json_t *arr, const char *id)
{
	size_t i;
	json_t *el;

	json_array_foreach(arr, i, el)
		if (strcmp(json_string_value(json_object_get(el, "id")),
		    id) == 0)
			return el;
	return NULL;
}

/*
 * Whether the elements of sub that arr has (by id) appear in arr in sub's
 * order.
 */
static int
keeps_order(json_t *arr, json_t *sub)
{
	size_t i, j = 0;
	const char *id;

	for (i = 0; i < json_array_size(sub); i++) {
		id = json_string_value(json_object_get(json_array_get(sub, i),
		    "id"));
		if (find_id(arr, id) == NULL)
			continue;
		while (j < json_array_size(arr) && strcmp(json_string_value(
		    json_object_get(json_array_get(arr, j), "id")), id) != 0)
			j++;
		if (j == json_array_size(arr))
			return 0;
	}
	return 1;
}

/*
 * Edits on disjoint elements of a keyed array all land, and each side's
 * order of its surviving elements is kept: mine edits or deletes the
 * elements at even positions, theirs the odd ones, and each inserts
 * elements of its own anywhere.
 */
static void
test_property_disjoint_elements(void **state)
{
	json_t *b, *m, *t, *merged, *paths, *list, *el, *want, *side;
	uint64_t seed;
	struct rng r;
	char name[64], id[32];
	size_t n, j, k;
	int i, ins;

	(void)state;
	for (i = 0; i < PROP_ITERS; i++) {
		seed = 90000 + (uint64_t)i;
		rng_seed(&r, seed);
		b = json_object();
		list = json_array();
		n = rng_below(&r, 8);
		for (j = 0; j < n; j++)
			json_array_append_new(list, gen_element(&r, list, "i",
			    1));
		json_object_set_new(b, "list", list);
		json_object_set_new(b, "other", gen_value(&r, 1));
		m = json_deep_copy(b);
		t = json_deep_copy(b);
		/* Walk from the end so removals keep the positions valid. */
		for (j = n; j-- > 0;) {
			side = json_object_get(j % 2 == 0 ? m : t, "list");
			switch (rng_below(&r, 3)) {
			case 0:
				json_array_remove(side, j);
				break;
			case 1:
				el = json_array_get(side, j);
				json_object_set_new(el, j % 2 ? "t" : "m",
				    gen_value(&r, 2));
				break;
			default:
				break;
			}
		}
		for (k = 0; k < 2; k++) {
			side = json_object_get(k == 0 ? m : t, "list");
			ins = (int)rng_below(&r, 3);
			while (ins-- > 0) {
				snprintf(id, sizeof id, "%s%u",
				    k == 0 ? "m" : "t", rng_below(&r, 1000));
				if (find_id(side, id) != NULL)
					continue;
				el = json_pack("{s:s,s:i}", "id", id, "v", ins);
				json_array_insert_new(side, rng_below(&r,
				    (uint32_t)json_array_size(side) + 1), el);
			}
		}

		snprintf(name, sizeof name, "seed %llu: disjoint elements",
		    (unsigned long long)seed);
		if (merge_both_ways(name, b, m, t, &merged, &paths) != 0)
			fail_msg("%s: conflicts %s", name, dump(paths));
		list = json_object_get(merged, "list");
		for (k = 0; k < 2; k++) {
			side = json_object_get(k == 0 ? m : t, "list");
			if (!keeps_order(list, side))
				fail_msg("%s: %s not in %s's order %s", name,
				    dump(list), k == 0 ? "mine" : "theirs",
				    dump(side));
		}
		/* Every element: the value of the side that owns it. */
		json_array_foreach(list, j, el) {
			const char *eid = json_string_value(json_object_get(
			    el, "id"));
			json_t *bm = find_id(json_object_get(m, "list"), eid);
			json_t *bt = find_id(json_object_get(t, "list"), eid);
			json_t *bb = find_id(json_object_get(b, "list"), eid);

			want = bm != NULL && (bb == NULL ||
			    !json_equal(bm, bb)) ? bm : bt;
			if (want == NULL || !json_equal(el, want))
				fail_msg("%s: element %s is %s", name, eid,
				    dump(el));
		}
		/*
		 * And nothing is missing: an element either side has stays
		 * unless it was in base and the other side deleted it.
		 */
		for (k = 0; k < 2; k++) {
			side = json_object_get(k == 0 ? m : t, "list");
			json_array_foreach(side, j, el) {
				const char *eid = json_string_value(
				    json_object_get(el, "id"));
				int kept = find_id(json_object_get(k == 0 ?
				    t : m, "list"), eid) != NULL ||
				    find_id(json_object_get(b, "list"),
				    eid) == NULL;

				if (kept && find_id(list, eid) == NULL)
					fail_msg("%s: lost %s", name, dump(el));
			}
		}
		json_decref(merged);
		json_decref(paths);
		json_decref(b);
		json_decref(m);
		json_decref(t);
	}
}

/* --- focused unit tests --- */

struct cb_expect {
	const char	*path;
	const char	*base;
	const char	*mine;
	const char	*theirs;
};

struct cb_state {
	const struct cb_expect	*want;
	size_t			 n;
	size_t			 calls;
};

static void
check_value(const char *path, const char *what, json_t *got,
    const char *want)
{
	json_t *w;

	if (want == NULL) {
		if (got != NULL)
			fail_msg("%s: %s is %s, want absent", path, what,
			    dump(got));
		return;
	}
	w = parse(want);
	if (got == NULL || !json_equal(got, w))
		fail_msg("%s: %s is %s, want %s", path, what, dump(got), want);
	json_decref(w);
}

static int
expect_cb(const struct merge_conflict *c, void *arg)
{
	struct cb_state *s = arg;
	const struct cb_expect *w;

	assert_true(s->calls < s->n);
	w = &s->want[s->calls++];
	assert_string_equal(c->path, w->path);
	check_value(c->path, "base", c->base, w->base);
	check_value(c->path, "mine", c->mine, w->mine);
	check_value(c->path, "theirs", c->theirs, w->theirs);
	return 0;
}

/* The callback gets the three values at each conflict, in path order. */
static void
test_callback_values(void **state)
{
	static const struct cb_expect want[] = {
		{ "/gone", "1", NULL, "2" },
		{ "/list/2", "{\"id\":\"b\",\"v\":1}",
		  "{\"id\":\"b\",\"v\":2}", NULL },
		{ "/new", NULL, "\"m\"", "\"t\"" },
		{ "/s", "\"base\"", "\"mine\"", "\"theirs\"" },
		{ "/x~1y/~0", "{}", "[1]", "3" },
	};
	struct cb_state s = { want, sizeof want / sizeof want[0], 0 };
	json_t *b, *m, *t, *merged = NULL, *paths = NULL;
	char *got;

	(void)state;
	b = doc("{\"s\":\"base\",\"gone\":1,\"x/y\":{\"~\":{}},"
	    "\"list\":[{\"id\":\"a\"},{\"id\":\"b\",\"v\":1}]}");
	m = doc("{\"s\":\"mine\",\"new\":\"m\",\"x/y\":{\"~\":[1]},"
	    "\"list\":[{\"id\":\"a\"},{\"id\":\"b\",\"v\":2}]}");
	t = doc("{\"s\":\"theirs\",\"gone\":2,\"new\":\"t\",\"x/y\":{\"~\":3},"
	    "\"list\":[{\"id\":\"c\"},{\"id\":\"a\"}]}");
	assert_int_equal(merge_three_cb(b, m, t, expect_cb, &s, &merged,
	    &paths), 5);
	assert_int_equal(s.calls, 5);
	/* Mine's values where conflicting; theirs' "c" before "a". */
	got = dump(merged);
	assert_string_equal(got, "{\"list\":[{\"id\":\"c\"},{\"id\":\"a\"},"
	    "{\"id\":\"b\",\"v\":2}],\"new\":\"m\",\"s\":\"mine\","
	    "\"x/y\":{\"~\":[1]}}");
	free(got);
	json_decref(merged);
	json_decref(paths);

	json_decref(b);
	json_decref(m);
	json_decref(t);
}

/* The whole document deleted on one side, edited on the other: path "". */
static void
test_callback_whole_document(void **state)
{
	static const struct cb_expect want[] = {
		{ "", "{\"s\":\"base\"}", NULL, "{\"s\":\"theirs\"}" },
	};
	struct cb_state s = { want, 1, 0 };
	json_t *b, *t, *merged;

	(void)state;
	b = doc("{\"s\":\"base\"}");
	t = doc("{\"s\":\"theirs\"}");
	merged = b;
	assert_int_equal(merge_three_cb(b, NULL, t, expect_cb, &s, &merged,
	    NULL), 1);
	assert_null(merged);
	assert_int_equal(s.calls, 1);
	json_decref(b);
	json_decref(t);
}

/* A negative return from the callback stops it and comes back; no output. */
static void
test_callback_stops(void **state)
{
	json_t *b, *m, *t, *merged, *paths, *want;
	struct seen seen;

	(void)state;
	b = doc("{\"a\":1,\"b\":1,\"c\":1}");
	m = doc("{\"a\":2,\"b\":2,\"c\":2}");
	t = doc("{\"a\":3,\"b\":3,\"c\":3}");
	seen.paths = json_array();
	seen.calls = 0;
	seen.stop_at = 2;
	merged = paths = (json_t *)&seen;
	assert_int_equal(merge_three_cb(b, m, t, collect_cb, &seen, &merged,
	    &paths), -ECANCELED);
	assert_int_equal(seen.calls, 2);
	assert_ptr_equal(merged, (json_t *)&seen);
	assert_ptr_equal(paths, (json_t *)&seen);
	want = json_pack("[s,s]", "/a", "/b");
	assert_true(json_equal(seen.paths, want));
	json_decref(want);
	json_decref(seen.paths);

	/* A NULL callback and NULL outputs are allowed. */
	assert_int_equal(merge_three_cb(b, m, t, NULL, NULL, NULL, NULL), 3);
	json_decref(b);
	json_decref(m);
	json_decref(t);
}

/* Non-object documents are -EINVAL, and the outputs stay as they were. */
static void
test_invalid_input(void **state)
{
	json_t *o, *a, *s, *merged, *paths;

	(void)state;
	o = doc("{}");
	a = parse("[]");
	s = parse("\"x\"");
	merged = paths = o;
	assert_int_equal(merge_three(a, o, o, &merged, &paths), -EINVAL);
	assert_int_equal(merge_three(o, s, o, &merged, &paths), -EINVAL);
	assert_int_equal(merge_three(o, o, json_null(), &merged, &paths),
	    -EINVAL);
	assert_ptr_equal(merged, o);
	assert_ptr_equal(paths, o);
	assert_int_equal(merge_diff(o, a, &paths), -EINVAL);
	assert_int_equal(merge_diff(o, o, NULL), -EINVAL);
	assert_ptr_equal(paths, o);
	json_decref(o);
	json_decref(a);
	json_decref(s);
}

/* Unchanged subtrees are shared, not copied; mine's value when identical. */
static void
test_sharing(void **state)
{
	json_t *b, *m, *t, *merged, *paths;

	(void)state;
	b = doc("{\"big\":{\"k\":[1,2,3]},\"n\":1,\"l\":[{\"id\":\"a\"}]}");
	m = doc("{\"big\":{\"k\":[1,2,3]},\"n\":2,\"l\":[{\"id\":\"a\"}]}");
	t = doc("{\"big\":{\"k\":[1,2,3]},\"n\":1,"
	    "\"l\":[{\"id\":\"a\"},{\"id\":\"b\"}]}");
	assert_int_equal(merge_three(b, m, t, &merged, &paths), 0);
	assert_ptr_equal(json_object_get(merged, "big"),
	    json_object_get(m, "big"));
	assert_ptr_equal(json_object_get(merged, "l"), json_object_get(t, "l"));
	json_decref(merged);
	json_decref(paths);

	assert_int_equal(merge_three(b, m, b, &merged, NULL), 0);
	assert_ptr_equal(merged, m);
	json_decref(merged);
	json_decref(b);
	json_decref(m);
	json_decref(t);
}

/* 1,000-element keyed arrays: edits, adds and deletes on both sides. */
static void
test_big_keyed_array(void **state)
{
	json_t *b, *m, *t, *bl, *ml, *tl, *merged, *paths, *list;
	char id[16];
	size_t i;

	(void)state;
	bl = json_array();
	for (i = 0; i < 1000; i++) {
		snprintf(id, sizeof id, "e%04zu", i);
		json_array_append_new(bl, json_pack("{s:s,s:i,s:s}", "id", id,
		    "n", (json_int_t)i, "label", "some text"));
	}
	b = json_pack("{s:o}", "items", bl);
	m = json_deep_copy(b);
	t = json_deep_copy(b);
	ml = json_object_get(m, "items");
	tl = json_object_get(t, "items");
	for (i = 0; i < 1000; i += 10) {
		json_object_set_new(json_array_get(ml, i), "n",
		    json_integer(-1));
		json_object_set_new(json_array_get(tl, i + 5), "label",
		    json_string("theirs"));
	}
	json_array_remove(ml, 999);	/* untouched by theirs */
	json_array_append_new(tl, json_pack("{s:s}", "id", "t-new"));
	json_array_insert_new(ml, 0, json_pack("{s:s}", "id", "m-new"));

	assert_int_equal(merge_both_ways("big keyed", b, m, t, &merged,
	    &paths), 0);
	list = json_object_get(merged, "items");
	assert_int_equal(json_array_size(list), 1001);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(list, 0), "id")), "m-new");
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(list, 1000), "id")), "t-new");
	assert_int_equal(json_integer_value(json_object_get(
	    json_array_get(list, 11), "n")), -1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(list, 16), "label")), "theirs");
	json_decref(merged);
	json_decref(paths);
	json_decref(b);
	json_decref(m);
	json_decref(t);
}

static json_t *
nest(int depth, json_t *leaf)
{
	json_t *v = leaf, *o;
	int i;

	for (i = 0; i < depth; i++) {
		o = json_object();
		assert_int_equal(json_object_set_new(o, "k", v), 0);
		v = o;
	}
	return v;
}

/* Inputs as deep as the parser accepts merge without trouble. */
static void
test_deep_input(void **state)
{
	json_t *b, *m, *t, *want, *merged, *paths;

	(void)state;
	b = nest(TEST_DEPTH, json_pack("{s:i,s:i}", "a", 1, "b", 1));
	m = nest(TEST_DEPTH, json_pack("{s:i,s:i}", "a", 2, "b", 1));
	t = nest(TEST_DEPTH, json_pack("{s:i,s:i}", "a", 1, "b", 3));
	want = nest(TEST_DEPTH, json_pack("{s:i,s:i}", "a", 2, "b", 3));
	assert_int_equal(merge_three(b, m, t, &merged, &paths), 0);
	assert_true(json_equal(merged, want));
	json_decref(merged);
	json_decref(paths);
	assert_int_equal(merge_diff(b, want, &paths), 0);
	assert_int_equal(json_array_size(paths), 2);
	json_decref(paths);
	json_decref(b);
	json_decref(m);
	json_decref(t);
	json_decref(want);
}

static void
check_diff(const char *a, const char *b, const char *want)
{
	json_t *ja, *jb, *got = NULL, *w;
	int rc;

	ja = doc(a);
	jb = doc(b);
	w = parse(want);
	rc = merge_diff(ja, jb, &got);
	if (rc != 0 || !json_equal(got, w))
		fail_msg("diff %s -> %s: got %d %s, want %s", a, b, rc,
		    dump(got), want);
	json_decref(ja);
	json_decref(jb);
	json_decref(w);
	json_decref(got);
}

/* merge_diff names what changed, for the audit log. */
static void
test_diff(void **state)
{
	(void)state;
	check_diff("{\"a\":1}", "{\"a\":1}", "[]");
	check_diff("null", "null", "[]");
	check_diff("{\"a\":1}", "null", "[\"\"]");
	check_diff("null", "{}", "[\"\"]");
	check_diff("{\"a\":1,\"b\":2,\"c\":3}", "{\"a\":1,\"b\":20,\"d\":4}",
	    "[\"/b\",\"/c\",\"/d\"]");
	check_diff("{\"o\":{\"p\":{\"q\":1,\"r\":2}}}",
	    "{\"o\":{\"p\":{\"q\":1,\"r\":3}}}", "[\"/o/p/r\"]");
	check_diff("{\"o\":{\"p\":1}}", "{\"o\":[1]}", "[\"/o\"]");
	check_diff("{\"n\":1}", "{\"n\":1.0}", "[\"/n\"]");
	check_diff("{\"a/b\":1,\"~\":1}", "{\"a/b\":2,\"~\":2}",
	    "[\"/a~1b\",\"/~0\"]");
	check_diff("{\"caf\xc3\xa9\":1}", "{\"caf\xc3\xa9\":2}",
	    "[\"/caf\xc3\xa9\"]");
	/* Plain arrays are one value. */
	check_diff("{\"l\":[1,2,3]}", "{\"l\":[1,2,4]}", "[\"/l\"]");
	check_diff("{\"l\":[]}", "{\"l\":[1]}", "[\"/l\"]");
	/* Keyed arrays by id: changed and added by index in b, removed by
	 * index in a, a reorder by the array's path. */
	check_diff("{\"l\":[{\"id\":\"a\",\"v\":1},{\"id\":\"b\",\"v\":1}]}",
	    "{\"l\":[{\"id\":\"z\"},{\"id\":\"a\",\"v\":1},"
	    "{\"id\":\"b\",\"v\":2}]}", "[\"/l/0\",\"/l/2/v\"]");
	check_diff("{\"l\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}",
	    "{\"l\":[{\"id\":\"a\"},{\"id\":\"c\"}]}", "[\"/l/1\"]");
	check_diff("{\"l\":[{\"id\":\"a\"},{\"id\":\"b\"}]}",
	    "{\"l\":[{\"id\":\"b\"},{\"id\":\"a\"}]}", "[\"/l\"]");
	check_diff("{\"l\":[]}", "{\"l\":[{\"id\":\"a\"}]}", "[\"/l/0\"]");
	check_diff("{\"l\":[{\"id\":\"a\"}]}", "{\"l\":[]}", "[\"/l/0\"]");
	/* Duplicate ids: a plain array. */
	check_diff("{\"l\":[{\"id\":\"a\"},{\"id\":\"a\"}]}",
	    "{\"l\":[{\"id\":\"a\"},{\"id\":\"a\",\"v\":1}]}", "[\"/l\"]");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite),
		cmocka_unit_test(test_property_identities),
		cmocka_unit_test(test_property_disjoint_members),
		cmocka_unit_test(test_property_disjoint_elements),
		cmocka_unit_test(test_callback_values),
		cmocka_unit_test(test_callback_whole_document),
		cmocka_unit_test(test_callback_stops),
		cmocka_unit_test(test_invalid_input),
		cmocka_unit_test(test_sharing),
		cmocka_unit_test(test_big_keyed_array),
		cmocka_unit_test(test_deep_input),
		cmocka_unit_test(test_diff),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
