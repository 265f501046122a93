/*
 * test_jtext: the daemon stores a client's body bytes in place of
 * json_dumps(body, JSON_COMPACT) only when jtext_is_compact says so; a
 * wrong "yes" would store text that differs from what jansson writes
 * (reformatted numbers, escapes, spacing).  So every "yes" here is checked
 * against jansson's own output, over hand-picked cases and many random
 * documents; and jtext_member must find the member jansson finds.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "jtext.h"

/* If jtext says s is compact, jansson must write s back exactly. */
static bool
check_compact(const char *s)
{
	json_error_t jerr;
	json_t *v;
	char *d;
	bool yes;

	v = json_loads(s, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	assert_non_null(v);
	yes = jtext_is_compact(s, strlen(s));
	if (yes) {
		d = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		assert_non_null(d);
		assert_string_equal(d, s);
		free(d);
	}
	json_decref(v);
	return yes;
}

static void
test_compact_yes(void **state)
{
	static const char *yes[] = {
		"{}", "[]", "{\"a\":1}", "{\"b\":1,\"a\":[true,false,null]}",
		"{\"n\":-12,\"z\":0,\"big\":-9223372036854775808}",
		"{\"s\":\"caf\xc3\xa9 / \x7f\",\"o\":{\"x\":{},\"y\":[[],{}]}}",
		"{\"text\":\"e.E-+0\",\"e\":\"\"}",
	};
	size_t i;

	for (i = 0; i < sizeof yes / sizeof yes[0]; i++)
		assert_true(check_compact(yes[i]));
}

static void
test_compact_no(void **state)
{
	static const char *no[] = {
		"{ }", "{\"a\": 1}", "{\"a\":1 }", " {}", "{}\n",
		"{\"a\":-0}", "{\"a\":1.5}", "{\"a\":1e2}", "{\"a\":1E2}",
		"{\"a\":0.1}", "{\"a\":\"\\u0041\"}", "{\"a\":\"\\/\"}",
		"{\"a\":\"\\n\"}", "{\"a\\u0062\":1}", "[1, 2]",
	};
	size_t i;

	for (i = 0; i < sizeof no / sizeof no[0]; i++)
		assert_false(check_compact(no[i]));
}

static uint32_t rng = 12345;

static uint32_t
rnd(uint32_t n)
{
	rng = rng * 1103515245u + 12345u;
	return (rng >> 8) % n;
}

/* A random value of jansson's making, strings drawn from tricky bytes. */
static json_t *
random_value(int depth)
{
	static const char *pieces[] = { "a", "\"", "\\", "/", "\n", "\x01",
	    "\xc3\xa9", " ", "e", ".", "-", "0", "\xe2\x80\xa8", "{", "]" };
	char buf[64];
	json_t *v;
	int i, n;

	switch (rnd(depth > 3 ? 6 : 8)) {
	case 0:
		return json_integer((json_int_t)rnd(2000) - 1000);
	case 1:
		return json_real((double)rnd(1000) / 8.0);
	case 2:
		buf[0] = '\0';
		n = (int)rnd(6);
		for (i = 0; i < n; i++)
			strcat(buf, pieces[rnd(sizeof pieces /
			    sizeof pieces[0])]);
		return json_string(buf);
	case 3:
		return json_true();
	case 4:
		return json_false();
	case 5:
		return json_null();
	case 6:
		v = json_array();
		n = (int)rnd(4);
		for (i = 0; i < n; i++)
			json_array_append_new(v, random_value(depth + 1));
		return v;
	default:
		v = json_object();
		n = (int)rnd(4);
		for (i = 0; i < n; i++) {
			snprintf(buf, sizeof buf, "%s%d", pieces[rnd(sizeof
			    pieces / sizeof pieces[0])], i);
			json_object_set_new(v, buf, random_value(depth + 1));
		}
		return v;
	}
}

static void
test_compact_random(void **state)
{
	json_t *v;
	char *s;
	int i, yes = 0;

	for (i = 0; i < 20000; i++) {
		v = random_value(0);
		/* jansson's own compact output, and a spaced-out variant. */
		s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
		if (check_compact(s))
			yes++;
		free(s);
		s = json_dumps(v, JSON_INDENT(1) | JSON_ENCODE_ANY);
		check_compact(s);
		free(s);
		json_decref(v);
	}
	/* The fast path must not be a dead letter either. */
	assert_true(yes > 1000);
}

static void
expect_member(const char *text, const char *key, const char *want)
{
	const char *v;
	size_t len;

	assert_int_equal(jtext_member(text, strlen(text), key, &v, &len), 0);
	assert_int_equal(len, strlen(want));
	assert_memory_equal(v, want, len);
}

static void
test_member(void **state)
{
	const char *call = "{\"method\":\"io.ferry.Put\",\"parameters\":"
	    "{\"id\":\"x\",\"note\":\"\\\"body\\\":{}\",\"body\":{\"body\":"
	    "[1,{\"a\":\"}\"}]},\"if_rev\":3}}";
	const char *v;
	size_t len;

	expect_member(call, "method", "\"io.ferry.Put\"");
	assert_int_equal(jtext_member(call, strlen(call), "parameters", &v,
	    &len), 0);
	expect_member(call, "parameters", "{\"id\":\"x\",\"note\":"
	    "\"\\\"body\\\":{}\",\"body\":{\"body\":[1,{\"a\":\"}\"}]},"
	    "\"if_rev\":3}");
	/* Within the parameters: the real member, not the one in a string. */
	assert_int_equal(jtext_member(v, len, "body", &v, &len), 0);
	assert_int_equal(len, strlen("{\"body\":[1,{\"a\":\"}\"}]}"));
	assert_memory_equal(v, "{\"body\":[1,{\"a\":\"}\"}]}", len);
	expect_member(" { \"a\" : 12 , \"b\" :\ttrue }", "b", "true");
	expect_member("{\"a\":12,\"b\":null}", "a", "12");
	assert_int_equal(jtext_member("{}", 2, "a", &v, &len), -ENOENT);
	assert_int_equal(jtext_member("{\"a\\u0062\":1}", 13, "ab", &v, &len),
	    -ENOENT);
	assert_int_equal(jtext_member("[1]", 3, "a", &v, &len), -EINVAL);
	/* Cut short: no read past the end, no answer. */
	assert_int_not_equal(jtext_member("{\"a\":{\"b\":1", 11, "a", &v,
	    &len), 0);
	assert_int_not_equal(jtext_member("{\"a\":\"xy", 8, "a", &v, &len),
	    0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_yes),
		cmocka_unit_test(test_compact_no),
		cmocka_unit_test(test_compact_random),
		cmocka_unit_test(test_member),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
