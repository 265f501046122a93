/*
 * test_patch: RFC 7396 JSON Merge Patch as Patch and the merge code rely
 * on it.
 *
 * Guards: every example of RFC 7396 Appendix A and the section 3 example
 * give exactly the RFC's result; patch_apply never changes its inputs and
 * its result shares nothing mutable with them (a Patch handler that edits
 * the result must not corrupt the cached body); null removes members at
 * any depth and never appears in an added member; a non-object patch
 * replaces the target whole, at the top and inside members; the target's
 * member order survives; inputs as deep as the parser allows do not
 * exhaust the stack.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "patch.h"

/* The same depth limit the IPC parser applies to documents. */
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

static char *
dump(const json_t *v, size_t flags)
{
	char *s;

	s = json_dumps(v, JSON_ENCODE_ANY | JSON_COMPACT | flags);
	assert_non_null(s);
	return s;
}

/*
 * Apply patch to original and check the result equals expected, and that
 * neither input changed (byte for byte, key order included).
 */
static void
check_merge(const char *original, const char *patch, const char *expected)
{
	json_t *t, *p, *want, *got = NULL;
	char *t_before, *p_before, *t_after, *p_after, *got_s, *want_s;

	t = parse(original);
	p = parse(patch);
	want = parse(expected);
	t_before = dump(t, 0);
	p_before = dump(p, 0);

	assert_int_equal(patch_apply(t, p, &got), 0);
	assert_non_null(got);
	got_s = dump(got, JSON_SORT_KEYS);
	want_s = dump(want, JSON_SORT_KEYS);
	if (!json_equal(got, want))
		fail_msg("%s + %s: got %s, want %s", original, patch, got_s,
		    want_s);
	assert_string_equal(got_s, want_s);

	t_after = dump(t, 0);
	p_after = dump(p, 0);
	assert_string_equal(t_before, t_after);
	assert_string_equal(p_before, p_after);

	free(t_before);
	free(p_before);
	free(t_after);
	free(p_after);
	free(got_s);
	free(want_s);
	json_decref(t);
	json_decref(p);
	json_decref(want);
	json_decref(got);
}

/* RFC 7396 Appendix A, every row of the table, in order. */
static void
test_rfc7396_appendix_a(void **state)
{
	static const struct {
		const char *original, *patch, *result;
	} rows[] = {
		{ "{\"a\":\"b\"}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"b\":\"c\"}",
		  "{\"a\":\"b\",\"b\":\"c\"}" },
		{ "{\"a\":\"b\"}", "{\"a\":null}", "{}" },
		{ "{\"a\":\"b\",\"b\":\"c\"}", "{\"a\":null}",
		  "{\"b\":\"c\"}" },
		{ "{\"a\":[\"b\"]}", "{\"a\":\"c\"}", "{\"a\":\"c\"}" },
		{ "{\"a\":\"c\"}", "{\"a\":[\"b\"]}", "{\"a\":[\"b\"]}" },
		{ "{\"a\":{\"b\":\"c\"}}", "{\"a\":{\"b\":\"d\",\"c\":null}}",
		  "{\"a\":{\"b\":\"d\"}}" },
		{ "{\"a\":[{\"b\":\"c\"}]}", "{\"a\":[1]}", "{\"a\":[1]}" },
		{ "[\"a\",\"b\"]", "[\"c\",\"d\"]", "[\"c\",\"d\"]" },
		{ "{\"a\":\"b\"}", "[\"c\"]", "[\"c\"]" },
		{ "{\"a\":\"foo\"}", "null", "null" },
		{ "{\"a\":\"foo\"}", "\"bar\"", "\"bar\"" },
		{ "{\"e\":null}", "{\"a\":1}", "{\"e\":null,\"a\":1}" },
		{ "[1,2]", "{\"a\":\"b\",\"c\":null}", "{\"a\":\"b\"}" },
		{ "{}", "{\"a\":{\"bb\":{\"ccc\":null}}}",
		  "{\"a\":{\"bb\":{}}}" },
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
		check_merge(rows[i].original, rows[i].patch, rows[i].result);
}

/* RFC 7396 section 3, the worked example. */
static void
test_rfc7396_section3(void **state)
{
	(void)state;
	check_merge(
	    "{\"title\":\"Goodbye!\","
	    "\"author\":{\"givenName\":\"John\",\"familyName\":\"Doe\"},"
	    "\"tags\":[\"example\",\"sample\"],"
	    "\"content\":\"This will be unchanged\"}",
	    "{\"title\":\"Hello!\",\"phoneNumber\":\"+01-123-456-7890\","
	    "\"author\":{\"familyName\":null},\"tags\":[\"example\"]}",
	    "{\"title\":\"Hello!\",\"author\":{\"givenName\":\"John\"},"
	    "\"tags\":[\"example\"],\"content\":\"This will be unchanged\","
	    "\"phoneNumber\":\"+01-123-456-7890\"}");
}

/*
 * A null removes a member at any depth, leaves its siblings, and is never
 * copied into the result when the member it names is absent or new.
 */
static void
test_nested_null_removal(void **state)
{
	(void)state;
	check_merge("{\"a\":{\"b\":{\"c\":1,\"d\":2},\"e\":3}}",
	    "{\"a\":{\"b\":{\"c\":null}}}",
	    "{\"a\":{\"b\":{\"d\":2},\"e\":3}}");
	check_merge("{\"a\":{\"b\":{\"c\":1}}}",
	    "{\"a\":{\"b\":null}}",
	    "{\"a\":{}}");
	check_merge("{\"a\":1}", "{\"missing\":null}", "{\"a\":1}");
	check_merge("{}", "{\"x\":{\"y\":null,\"z\":{\"w\":null,\"v\":0}}}",
	    "{\"x\":{\"z\":{\"v\":0}}}");
	/* Null inside an array is data, not a removal. */
	check_merge("{}", "{\"l\":[null,{\"k\":null}]}",
	    "{\"l\":[null,{\"k\":null}]}");
}

/*
 * A patch that is not an object replaces the target whole, at the top and
 * inside a member; an object patch applied to a non-object starts from {}.
 */
static void
test_non_object_patch_replaces(void **state)
{
	(void)state;
	check_merge("{\"a\":1}", "[1,2]", "[1,2]");
	check_merge("{\"a\":1}", "42", "42");
	check_merge("{\"a\":1}", "true", "true");
	check_merge("[1]", "\"s\"", "\"s\"");
	check_merge("{\"a\":{\"b\":1,\"c\":2}}", "{\"a\":[3]}",
	    "{\"a\":[3]}");
	check_merge("{\"a\":{\"b\":1}}", "{\"a\":\"flat\"}",
	    "{\"a\":\"flat\"}");
	check_merge("{\"a\":5}", "{\"a\":{\"b\":1,\"c\":null}}",
	    "{\"a\":{\"b\":1}}");
	check_merge("\"str\"", "{\"k\":true}", "{\"k\":true}");
	/* Arrays are values: never merged element by element. */
	check_merge("{\"a\":[1,2,3]}", "{\"a\":[]}", "{\"a\":[]}");
}

/*
 * The result shares no mutable value with either input: changing it after
 * the call leaves target and patch as they were.
 */
static void
test_result_is_independent(void **state)
{
	json_t *t, *p, *got = NULL, *t_copy, *p_copy;

	(void)state;
	t = parse("{\"kept\":{\"list\":[1]},\"merged\":{\"x\":1}}");
	p = parse("{\"merged\":{\"y\":[2]},\"added\":{\"z\":{\"w\":3}}}");
	t_copy = json_deep_copy(t);
	p_copy = json_deep_copy(p);

	assert_int_equal(patch_apply(t, p, &got), 0);
	assert_ptr_not_equal(json_object_get(got, "kept"),
	    json_object_get(t, "kept"));
	assert_ptr_not_equal(json_object_get(got, "added"),
	    json_object_get(p, "added"));

	json_array_append_new(json_object_get(json_object_get(got, "kept"),
	    "list"), json_integer(9));
	json_object_set_new(json_object_get(got, "merged"), "x",
	    json_string("changed"));
	json_array_clear(json_object_get(json_object_get(got, "merged"), "y"));
	json_object_clear(json_object_get(json_object_get(got, "added"), "z"));
	json_object_set_new(got, "new", json_null());

	assert_true(json_equal(t, t_copy));
	assert_true(json_equal(p, p_copy));

	json_decref(got);
	/* The inputs are still whole once the result is gone. */
	assert_true(json_equal(t, t_copy));
	assert_true(json_equal(p, p_copy));
	json_decref(t);
	json_decref(p);
	json_decref(t_copy);
	json_decref(p_copy);
}

/* The target's members keep their order; new members follow. */
static void
test_member_order(void **state)
{
	json_t *t, *p, *got = NULL;
	char *s;

	(void)state;
	t = parse("{\"z\":1,\"a\":2,\"m\":3}");
	p = parse("{\"b\":4,\"a\":5,\"m\":null}");
	assert_int_equal(patch_apply(t, p, &got), 0);
	s = dump(got, 0);
	assert_string_equal(s, "{\"z\":1,\"a\":5,\"b\":4}");
	free(s);
	json_decref(t);
	json_decref(p);
	json_decref(got);
}

/*
 * An absent target (NULL) behaves as RFC 7396 "undefined"; a missing patch
 * or output pointer is -EINVAL and *ret is left alone.
 */
static void
test_null_arguments(void **state)
{
	json_t *p, *got = NULL, *sentinel = (json_t *)&got;
	char *s;

	(void)state;
	p = parse("{\"a\":{\"b\":null,\"c\":1}}");
	assert_int_equal(patch_apply(NULL, p, &got), 0);
	s = dump(got, JSON_SORT_KEYS);
	assert_string_equal(s, "{\"a\":{\"c\":1}}");
	free(s);
	json_decref(got);

	got = sentinel;
	assert_int_equal(patch_apply(p, NULL, &got), -EINVAL);
	assert_ptr_equal(got, sentinel);
	assert_int_equal(patch_apply(p, p, NULL), -EINVAL);
	json_decref(p);
}

/* Build {"k":{"k":...{"k":leaf}}} nested depth objects deep. */
static json_t *
nest(int depth, json_t *leaf)
{
	json_t *v = leaf, *o;
	int i;

	for (i = 0; i < depth; i++) {
		o = json_object();
		assert_non_null(o);
		assert_int_equal(json_object_set_new(o, "k", v), 0);
		v = o;
	}
	return v;
}

/* Inputs as deep as the parser accepts merge without trouble. */
static void
test_deep_input(void **state)
{
	json_t *t, *p, *got = NULL, *want, *leaf;

	(void)state;
	t = nest(TEST_DEPTH, json_pack("{s:i, s:i}", "a", 1, "b", 2));
	p = nest(TEST_DEPTH, json_pack("{s:n, s:i}", "a", "c", 3));
	want = nest(TEST_DEPTH, json_pack("{s:i, s:i}", "b", 2, "c", 3));
	assert_int_equal(patch_apply(t, p, &got), 0);
	assert_true(json_equal(got, want));

	leaf = got;
	while (json_object_get(leaf, "k") != NULL)
		leaf = json_object_get(leaf, "k");
	assert_int_equal(json_object_size(leaf), 2);

	json_decref(t);
	json_decref(p);
	json_decref(want);
	json_decref(got);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc7396_appendix_a),
		cmocka_unit_test(test_rfc7396_section3),
		cmocka_unit_test(test_nested_null_removal),
		cmocka_unit_test(test_non_object_patch_replaces),
		cmocka_unit_test(test_result_is_independent),
		cmocka_unit_test(test_member_order),
		cmocka_unit_test(test_null_arguments),
		cmocka_unit_test(test_deep_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
