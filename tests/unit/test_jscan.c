/*
 * test_jscan: the compact-form check the pull's fast path rests on
 * (lib/jscan.h), the page scanner built on it (wire_changes_page_scan),
 * and the push request's writer and the server's reader of it
 * (wire_push_req, wire_push_req_scan).
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

/*
 * The push request both ways: wire_push_req writes it, wire_push_req_scan
 * reads back exactly what jansson reads, for records with every escape
 * the writer makes; one with a control character (\u00XX) is left to
 * jansson.
 */
static void
test_push_req_round_trip(void **state)
{
	static const char *records[] = {
		"{\"base\":0,\"body\":{\"t\":\"a\\\"b\\\\c\\nd\"},\"v\":1}",
		"{\"u\":\"caf\xc3\xa9 \xf0\x9f\x98\x80\"}",
		"with \"quotes\" and \\ and a/slash",
		"",
	};
	struct wire_push_req q;
	json_error_t jerr;
	json_t *fast, *slow;
	size_t i, n = sizeof records / sizeof records[0];

	(void)state;
	memset(&q, 0, sizeof q);
	for (i = 0; i < n; i++)
		assert_int_equal(wire_push_req_add(&q, records[i],
		    strlen(records[i]), "c2ln"), 0);
	assert_int_equal(wire_push_req_end(&q), 0);
	assert_int_equal(strlen(q.text), q.len);
	slow = json_loadb(q.text, q.len, JSON_REJECT_DUPLICATES, &jerr);
	assert_non_null(slow);
	assert_int_equal(wire_push_req_scan(q.text, q.len, 100, &fast), 0);
	assert_true(json_equal(fast, json_object_get(slow, "changes")));
	for (i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_object_get(
		    json_array_get(fast, i), "record")), records[i]);
	json_decref(fast);
	/* Too many for the cap: the caller's general path answers. */
	assert_int_equal(wire_push_req_scan(q.text, q.len, n - 1, &fast),
	    -E2BIG);
	json_decref(slow);
	wire_push_req_free(&q);

	/* A control character is written \u0001: jansson reads that. */
	memset(&q, 0, sizeof q);
	assert_int_equal(wire_push_req_add(&q, "a\001b", 3, "c2ln"), 0);
	assert_int_equal(wire_push_req_end(&q), 0);
	assert_non_null(strstr(q.text, "a\\u0001b"));
	assert_int_equal(wire_push_req_scan(q.text, q.len, 100, &fast),
	    -ENOTSUP);
	slow = json_loadb(q.text, q.len, 0, &jerr);
	assert_non_null(slow);
	assert_string_equal(json_string_value(json_object_get(json_array_get(
	    json_object_get(slow, "changes"), 0), "record")), "a\001b");
	json_decref(slow);
	wire_push_req_free(&q);

	/* An empty batch is a valid request too. */
	memset(&q, 0, sizeof q);
	assert_int_equal(wire_push_req_end(&q), 0);
	assert_string_equal(q.text, "{\"changes\":[]}");
	assert_int_equal(wire_push_req_scan(q.text, q.len, 100, &fast), 0);
	assert_int_equal(json_array_size(fast), 0);
	json_decref(fast);
	wire_push_req_free(&q);
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
		cmocka_unit_test(test_push_req_round_trip),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
