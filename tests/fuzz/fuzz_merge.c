/*
 * fuzz_merge: the three-way merge (merge_three) and the audit diff
 * (merge_diff) on documents nobody wrote by hand.
 *
 * The input is three JSON texts separated by NUL bytes, base, mine and
 * theirs, as tests/suites/merge/<case>/ holds them; an empty text is an
 * absent (deleted) document, and so is a JSON null, as in the suite.
 * Inputs that do not parse are skipped: the merge only ever sees parsed
 * bodies.
 *
 * Promises checked (merge.h and DESIGN "Merge and conflicts"): a
 * non-object input is refused with -EINVAL and nothing written; otherwise
 * the count returned is the number of conflict paths, which are JSON
 * Pointers sorted bytewise without duplicates; swapping mine and theirs
 * gives the same conflict paths and, for a clean merge, an equal document;
 * the same change on both sides merges cleanly to it (merge(base, x, x) is
 * x); a change on one side only is taken whole (merge(base, base, x) and
 * merge(base, x, base) are x); the inputs are never modified; merge_diff of
 * a document with itself is empty, and against another document is empty
 * only if the two are equal.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "merge.h"

/* Both absent, or both present and equal. */
static bool
same_doc(json_t *a, json_t *b)
{
	return a == NULL ? b == NULL : b != NULL && json_equal(a, b);
}

/* Sorted bytewise, no duplicates, every one a JSON Pointer. */
static void
check_paths(json_t *paths)
{
	const char *prev = NULL, *s;
	json_t *v;
	size_t i;

	FUZZ_ASSERT(json_is_array(paths));
	json_array_foreach(paths, i, v) {
		FUZZ_ASSERT(json_is_string(v));
		s = json_string_value(v);
		FUZZ_ASSERT(s[0] == '\0' || s[0] == '/');
		if (prev != NULL)
			FUZZ_ASSERT(strcmp(prev, s) < 0);
		prev = s;
	}
}

/* merge_three, checked for its own shape; returns the count (>= 0) or
 * -ENOMEM, with the result and the paths. */
static int
merge(json_t *base, json_t *mine, json_t *theirs, json_t **ret_merged,
    json_t **ret_paths)
{
	int n;

	*ret_merged = *ret_paths = NULL;
	n = merge_three(base, mine, theirs, ret_merged, ret_paths);
	FUZZ_ASSERT(n >= 0 || n == -ENOMEM);
	if (n < 0)
		return n;
	check_paths(*ret_paths);
	FUZZ_ASSERT((size_t)n == json_array_size(*ret_paths));
	FUZZ_ASSERT(*ret_merged == NULL || json_is_object(*ret_merged));
	return n;
}

/* merge(base, mine, theirs) is clean and gives want. */
static void
check_clean(json_t *base, json_t *mine, json_t *theirs, json_t *want)
{
	json_t *merged, *paths;

	if (merge(base, mine, theirs, &merged, &paths) < 0)
		return;
	FUZZ_ASSERT(json_array_size(paths) == 0);
	FUZZ_ASSERT(same_doc(merged, want));
	json_decref(merged);
	json_decref(paths);
}

static void
check_diff(json_t *a, json_t *b)
{
	json_t *paths = NULL;

	if (merge_diff(a, b, &paths) < 0)
		return;
	check_paths(paths);
	FUZZ_ASSERT((json_array_size(paths) == 0) == same_doc(a, b));
	json_decref(paths);
}

static void
check_all(json_t *base, json_t *mine, json_t *theirs)
{
	json_t *merged, *paths, *merged2, *paths2;
	int n, n2;

	n = merge(base, mine, theirs, &merged, &paths);
	n2 = merge(base, theirs, mine, &merged2, &paths2);
	if (n >= 0 && n2 >= 0) {
		FUZZ_ASSERT(n == n2 && json_equal(paths, paths2));
		if (n == 0)
			FUZZ_ASSERT(same_doc(merged, merged2));
	}
	json_decref(merged);
	json_decref(paths);
	json_decref(merged2);
	json_decref(paths2);

	check_clean(base, mine, mine, mine);
	check_clean(base, theirs, theirs, theirs);
	check_clean(base, base, theirs, theirs);
	check_clean(base, mine, base, mine);
	check_diff(mine, mine);
	check_diff(base, mine);
	check_diff(base, theirs);
	check_diff(mine, theirs);
}

/* Parse part [p, p + n): NULL for empty or null (absent); *ok false if
 * it does not parse. */
static json_t *
part(const char *p, size_t n, bool *ok)
{
	json_t *v;

	if (n == 0)
		return NULL;
	v = json_loadb(p, n, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, NULL);
	if (v == NULL)
		*ok = false;
	if (json_is_null(v)) {
		/* As the suite writes an absent document. */
		json_decref(v);
		v = NULL;
	}
	return v;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size, *nul;
	json_t *doc[3], *copy[3], *merged = NULL, *paths = NULL;
	bool ok = true, objects = true;
	size_t i;
	int n;

	for (i = 0; i < 3; i++) {
		nul = i < 2 ? memchr(p, '\0', end - p) : NULL;
		if (nul == NULL)
			nul = end;
		doc[i] = part(p, nul - p, &ok);
		if (doc[i] != NULL && !json_is_object(doc[i]))
			objects = false;
		p = nul < end ? nul + 1 : end;
	}
	if (!ok)
		goto out;
	if (!objects) {
		n = merge_three(doc[0], doc[1], doc[2], &merged, &paths);
		FUZZ_ASSERT(n == -EINVAL && merged == NULL && paths == NULL);
		goto out;
	}
	for (i = 0; i < 3; i++)
		copy[i] = json_deep_copy(doc[i]);
	check_all(doc[0], doc[1], doc[2]);
	/* The inputs are never modified (deep copies of NULL are NULL). */
	for (i = 0; i < 3; i++) {
		FUZZ_ASSERT(same_doc(doc[i], copy[i]) ||
		    (doc[i] != NULL && copy[i] == NULL));
		json_decref(copy[i]);
	}
out:
	for (i = 0; i < 3; i++)
		json_decref(doc[i]);
	return 0;
}
