/*
 * test_limits: the one body limit (lib/limits.h, issue 8 break 2).
 *
 * Guards the promise that a body at the limit is accepted and one a level
 * deeper or a byte larger is refused with a reason, so that no body that
 * passes can make a reply (which wraps it in a few more levels) unreadable
 * for jansson's 2048-level parser.  Depth is counted on nested objects and
 * arrays alike, and the walk stops at the limit however deep the input.
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

#include "bodylimit.h"

/* {"a":{"a":...{}}} with depth levels of objects (depth >= 1). */
static json_t *
nested_objects(int depth)
{
	json_t *v = json_object(), *o;
	int i;

	for (i = 1; i < depth; i++) {
		o = json_object();
		json_object_set_new(o, "a", v);
		v = o;
	}
	return v;
}

/* {"a":[[...[]]]}: one object, then depth - 1 levels of arrays. */
static json_t *
nested_arrays(int depth)
{
	json_t *v = json_array(), *a, *o;
	int i;

	for (i = 2; i < depth; i++) {
		a = json_array();
		json_array_append_new(a, v);
		v = a;
	}
	o = json_object();
	json_object_set_new(o, "a", v);
	return o;
}

static void
test_depth_counts(void **state)
{
	json_t *v;

	(void)state;
	v = json_integer(1);
	assert_int_equal(limits_depth(v, 10), 0);
	json_decref(v);
	v = json_object();
	assert_int_equal(limits_depth(v, 10), 1);
	json_decref(v);
	v = nested_objects(7);
	assert_int_equal(limits_depth(v, 10), 7);
	/* Past max it stops: max + 1 however deep. */
	assert_int_equal(limits_depth(v, 3), 4);
	json_decref(v);
	v = nested_arrays(9);
	assert_int_equal(limits_depth(v, 100), 9);
	json_decref(v);
}

static void
test_depth_boundary(void **state)
{
	const char *why = NULL;
	json_t *v;

	(void)state;
	v = nested_objects(LIMITS_BODY_MAX_DEPTH);
	assert_int_equal(limits_body_check(v, &why), 0);
	json_decref(v);
	v = nested_objects(LIMITS_BODY_MAX_DEPTH + 1);
	assert_int_equal(limits_body_check(v, &why), -E2BIG);
	assert_non_null(strstr(why, "deeper than 64 levels"));
	json_decref(v);
	v = nested_arrays(LIMITS_BODY_MAX_DEPTH + 1);
	assert_int_equal(limits_body_check(v, NULL), -E2BIG);
	json_decref(v);
	/* What break 2 sent: about 2,046 levels. */
	v = nested_objects(2046);
	assert_int_equal(limits_body_check(v, NULL), -E2BIG);
	json_decref(v);
}

static void
test_size_boundary(void **state)
{
	const char *why = NULL;
	size_t n;
	char *s;
	json_t *v;

	(void)state;
	/* {"s":"xxx..."}: 8 bytes of frame around the string. */
	n = LIMITS_BODY_MAX_BYTES - 8;
	s = malloc(n + 2);
	assert_non_null(s);
	memset(s, 'x', n + 1);
	s[n] = '\0';
	v = json_pack("{s:s}", "s", s);
	assert_int_equal(json_dumpb(v, NULL, 0, JSON_COMPACT),
	    LIMITS_BODY_MAX_BYTES);
	assert_int_equal(limits_body_check(v, &why), 0);
	json_decref(v);
	s[n] = 'x';
	s[n + 1] = '\0';
	v = json_pack("{s:s}", "s", s);
	assert_int_equal(limits_body_check(v, &why), -E2BIG);
	assert_non_null(strstr(why, "larger than 4194304 bytes"));
	/* The text form trusts the length it is given. */
	assert_int_equal(limits_body_check_text(v, 10, NULL), 0);
	json_decref(v);
	free(s);
}

static void
test_not_object(void **state)
{
	const char *why = NULL;
	json_t *v = json_array();

	(void)state;
	assert_int_equal(limits_body_check(v, &why), -EINVAL);
	assert_string_equal(why, "is not a JSON object");
	assert_int_equal(limits_body_check(NULL, NULL), -EINVAL);
	json_decref(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_depth_counts),
		cmocka_unit_test(test_depth_boundary),
		cmocka_unit_test(test_size_boundary),
		cmocka_unit_test(test_not_object),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
