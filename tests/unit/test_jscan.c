/*
 * test_jscan: the compact-form check the pull's fast path rests on
 * (lib/jscan.h) and the page scanner built on it (wire_changes_page_scan).
 *
 * Guards the one promise that makes skipping jansson safe: jscan says yes
 * only for text that jansson reads (duplicates refused) and writes back
 * compact byte for byte the same, and the page scanner returns exactly
 * what wire_changes_page_parse and the encoder would (the same changes,
 * each body's stored text).  Every yes below is checked against jansson
 * itself; the no cases are the forms jansson would rewrite (white space,
 * \u escapes, reals, -0, long integers), text it refuses (bad UTF-8,
 * repeated keys, control characters), and depth past the limit.  The
 * fuzz harness tests/fuzz/fuzz_changes_page.c runs the same comparison on
 * whatever libFuzzer makes.
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

#include "bodylimit.h"
#include "jscan.h"
#include "wire.h"

/* jscan says yes, for the whole text, and jansson agrees byte for byte. */
static void
assert_compact(const char *text)
{
	json_error_t jerr;
	json_t *v;
	size_t n = 0;
	char *dump;

	assert_int_equal(jscan_compact(text, strlen(text), JSCAN_MAX_DEPTH,
	    &n, NULL), 0);
	assert_int_equal(n, strlen(text));
	v = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &jerr);
	assert_non_null(v);
	dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	assert_non_null(dump);
	assert_string_equal(dump, text);
	free(dump);
	json_decref(v);
}

static void
assert_not(const char *text)
{
	assert_int_equal(jscan_compact(text, strlen(text), JSCAN_MAX_DEPTH,
	    NULL, NULL), -ENOTSUP);
}

static void
test_compact_yes(void **state)
{
	(void)state;
	assert_compact("{}");
	assert_compact("[]");
	assert_compact("{\"a\":1}");
	assert_compact("{\"z\":1,\"a\":[true,false,null,-5,0,\"\"]}");
	assert_compact("{\"t\":\"a\\\"b\\\\c\\nd\\te\\rf\\bg\\fh\"}");
	assert_compact("{\"u\":\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"}");
	assert_compact("{\"d\":\"\x7f\"}");
	assert_compact("{\"n\":123456789012345678,\"m\":-123456789012345678}");
	assert_compact("{\"o\":{\"a\":{},\"b\":[[],{\"x\":0}]}}");
	/* The same key in two objects is no repeat. */
	assert_compact("{\"a\":{\"a\":1},\"b\":{\"a\":2}}");
	assert_compact("\"alone\"");
	assert_compact("42");
}

static void
test_compact_no(void **state)
{
	(void)state;
	/* Valid, but jansson writes it otherwise. */
	assert_not("{ }");
	assert_not("{\"a\": 1}");
	assert_not("{\"a\":\"\\u0041\"}");
	assert_not("{\"a\":\"\\/\"}");
	assert_not("{\"a\":1.5}");
	assert_not("{\"a\":1e3}");
	assert_not("{\"a\":-0}");
	assert_not("{\"a\":1234567890123456789}");
	/* Not JSON, or refused by jansson. */
	assert_not("{\"a\":01}");
	assert_not("{\"a\":1,\"a\":2}");
	assert_not("{\"a\":\"\x01\"}");
	assert_not("{\"a\":\"\xc0\x80\"}");		/* overlong */
	assert_not("{\"a\":\"\xed\xa0\x80\"}");		/* surrogate */
	assert_not("{\"a\":\"\xf4\x90\x80\x80\"}");	/* > U+10FFFF */
	assert_not("{\"a\":\"\xe2\x82\"}");		/* cut short */
	assert_not("{\"a\":tru}");
	assert_not("{\"a\":1,}");
	assert_not("[1,]");
	assert_not("{\"a\"}");
	assert_not("{\"a\":1");
	assert_not("\"open");
	assert_not("");
}

static void
test_compact_bounds(void **state)
{
	char text[2 * (JSCAN_MAX_DEPTH + 2) + 1];
	size_t n;
	int depth, d;

	(void)state;
	/* [[...]] at the limit is a yes with its depth; one more is a no. */
	for (d = JSCAN_MAX_DEPTH; d <= JSCAN_MAX_DEPTH + 1; d++) {
		memset(text, '[', d);
		memset(text + d, ']', d);
		text[2 * d] = '\0';
		if (d == JSCAN_MAX_DEPTH) {
			assert_int_equal(jscan_compact(text, 2 * d,
			    JSCAN_MAX_DEPTH, &n, &depth), 0);
			assert_int_equal(depth, d);
		} else
			assert_not(text);
	}
	assert_int_equal(jscan_compact("[[1]]", 5, 1, NULL, NULL), -ENOTSUP);
	assert_int_equal(jscan_compact("{}", 2, JSCAN_MAX_DEPTH + 1, NULL,
	    NULL), -EINVAL);
	/* What follows the value is not read. */
	assert_int_equal(jscan_compact("{}xyz", 5, 4, &n, NULL), 0);
	assert_int_equal(n, 2);
}

static void
test_compact_many_keys(void **state)
{
	char text[JSCAN_MAX_KEYS * 16 + 16];
	size_t len;
	int k;

	(void)state;
	len = (size_t)sprintf(text, "{");
	for (k = 0; k <= JSCAN_MAX_KEYS; k++)
		len += (size_t)sprintf(text + len, "%s\"k%d\":%d",
		    k ? "," : "", k, k);
	text[len++] = '}';
	text[len] = '\0';
	/* More keys than it compares is a no, not a guess. */
	assert_not(text);
}

#define SIG "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA" \
	"AAAAAAAAAAAAAAAAAAAAAAAAA=="
#define DEV "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

/* A page as ferry-server writes it: a put, then a delete. */
static const char page[] = "{\"changes\":["
    "{\"body\":{\"n\":1,\"text\":\"caf\xc3\xa9\",\"tags\":[\"a\"]},"
    "\"change\":\"" DEV ":4\",\"collection\":\"notes\",\"deleted\":false,"
    "\"id\":\"n1\",\"seq\":9,\"sig\":\"" SIG "\",\"ts\":17,\"version\":4},"
    "{\"change\":\"" DEV ":5\",\"collection\":\"notes\",\"deleted\":true,"
    "\"id\":\"n2\",\"seq\":10,\"sig\":\"" SIG "\",\"ts\":18,\"version\":2}"
    "],\"head\":12,\"last_seq\":10}\n";

static void
test_page_scan(void **state)
{
	json_t *fast, *slow, *ch, *body;
	int64_t fast_last, slow_last;
	char **bodies, *dump, why[128];
	size_t i;

	(void)state;
	assert_int_equal(wire_changes_page_scan(page, strlen(page), &fast,
	    &bodies, &fast_last), 0);
	assert_int_equal(wire_changes_page_parse(page, strlen(page), &slow,
	    &slow_last, why, sizeof why), 0);
	assert_int_equal(fast_last, 10);
	assert_int_equal(slow_last, 10);
	assert_int_equal(json_array_size(fast), 2);
	for (i = 0; i < 2; i++) {
		ch = json_array_get(slow, i);
		body = json_incref(json_object_get(ch, "body"));
		json_object_del(ch, "body");
		assert_true(json_equal(ch, json_array_get(fast, i)));
		assert_null(json_object_get(json_array_get(fast, i), "body"));
		if (i == 1) {
			assert_null(body);
			assert_null(bodies[i]);
			continue;
		}
		dump = json_dumps(body, JSON_COMPACT);
		assert_string_equal(bodies[i], dump);
		free(dump);
		json_decref(body);
		free(bodies[i]);
	}
	free(bodies);
	json_decref(fast);
	json_decref(slow);
}

/* Each of these pages is valid, and left to jansson by the scanner. */
static void
test_page_scan_declines(void **state)
{
	static const char *pages[] = {
		/* keys in another order */
		"{\"last_seq\":0,\"changes\":[],\"head\":0}",
		/* white space inside */
		"{\"changes\": [],\"head\":0,\"last_seq\":0}",
		/* a body jansson would rewrite */
		"{\"changes\":[{\"body\":{\"a\":1.0},\"change\":\"d:1\","
		"\"collection\":\"c\",\"deleted\":false,\"id\":\"i\","
		"\"seq\":1,\"sig\":\"s\",\"ts\":1,\"version\":1}],"
		"\"head\":1,\"last_seq\":1}",
		/* a record carried along */
		"{\"changes\":[{\"change\":\"d:1\",\"collection\":\"c\","
		"\"deleted\":true,\"id\":\"i\",\"record\":\"{}\",\"seq\":1,"
		"\"sig\":\"s\",\"ts\":1,\"version\":1}],\"head\":1,"
		"\"last_seq\":1}",
		/* no sig, as an older server writes */
		"{\"changes\":[{\"change\":\"d:1\",\"collection\":\"c\","
		"\"deleted\":true,\"id\":\"i\",\"seq\":1,\"version\":1}],"
		"\"head\":1,\"last_seq\":1}",
		/* a put without a body (parked by the general path) */
		"{\"changes\":[{\"change\":\"d:1\",\"collection\":\"c\","
		"\"deleted\":false,\"id\":\"i\",\"seq\":1,\"sig\":\"s\","
		"\"ts\":1,\"version\":1}],\"head\":1,\"last_seq\":1}",
	};
	json_t *changes = NULL;
	char **bodies = NULL;
	int64_t last = -1;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof pages / sizeof pages[0]; i++) {
		assert_int_equal(wire_changes_page_scan(pages[i],
		    strlen(pages[i]), &changes, &bodies, &last), -ENOTSUP);
		assert_null(changes);
		assert_null(bodies);
		assert_int_equal(last, -1);
	}
	/* Trailing garbage: neither path takes it. */
	assert_int_equal(wire_changes_page_scan("{\"changes\":[],\"head\":0,"
	    "\"last_seq\":0}x", 35, &changes, &bodies, &last), -ENOTSUP);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_compact_yes),
		cmocka_unit_test(test_compact_no),
		cmocka_unit_test(test_compact_bounds),
		cmocka_unit_test(test_compact_many_keys),
		cmocka_unit_test(test_page_scan),
		cmocka_unit_test(test_page_scan_declines),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
