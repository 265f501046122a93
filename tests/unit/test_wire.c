/*
 * test_wire: ferryd never acts on a remote's answer it has not checked.
 *
 * Guards that a push answer whose results do not line up with the changes
 * sent, or whose any result lacks what its status needs, is refused with
 * the sentence ferryd logs; that a /v1/changes page with duplicate keys,
 * no changes array or no last_seq is refused as a whole before any change
 * of it is applied, and nothing is handed back on failure, while a change
 * with a bad name, no version or no body is refused on its own (the puller
 * parks it); and that the last_seq hint is read only off a page laid out as
 * ferry-server writes it, never past 18 digits.
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

#include "wire.h"

/* The reason wire_push_results_check gives for results (JSON text). */
static const char *
push_check(const char *text, size_t n)
{
	const char *reason;
	json_t *results;

	results = json_loads(text, JSON_REJECT_DUPLICATES, NULL);
	assert_non_null(results);
	reason = wire_push_results_check(results, n);
	json_decref(results);
	return reason;
}

static void
test_push_results_ok(void **state)
{
	assert_null(push_check("[{\"status\":\"applied\",\"version\":1},"
	    "{\"status\":\"duplicate\",\"version\":7},"
	    "{\"status\":\"conflict\",\"current\":{\"version\":3,"
	    "\"deleted\":false,\"body\":{\"a\":1}}},"
	    "{\"status\":\"rejected\",\"error\":\"bad signature\"}]", 4));
	assert_null(push_check("[]", 0));
	/* A tombstone as the current state has no body. */
	assert_null(push_check("[{\"status\":\"conflict\",\"current\":"
	    "{\"version\":4,\"deleted\":true}}]", 1));
	/*
	 * A document the server does not have (a push on base 5 after it
	 * lost it): ferry-server's answer, which ferryd refused as "no
	 * current state" and retried forever.
	 */
	assert_null(push_check("[{\"status\":\"conflict\",\"current\":"
	    "{\"deleted\":true,\"version\":0}}]", 1));
}

static void
test_push_results_bad(void **state)
{
	static const struct {
		const char	*results;
		size_t		 n;
		const char	*reason;
	} bad[] = {
		{ "[]", 1, "results do not match the changes sent" },
		{ "[{\"status\":\"applied\",\"version\":1}]", 2,
		    "results do not match the changes sent" },
		{ "{\"status\":\"applied\",\"version\":1}", 1,
		    "results do not match the changes sent" },
		{ "[{}]", 1, "a result has no status" },
		{ "[7]", 1, "a result has no status" },
		{ "[{\"status\":1}]", 1, "a result has no status" },
		{ "[{\"status\":\"applied\"}]", 1,
		    "an applied result has no version" },
		{ "[{\"status\":\"applied\",\"version\":0}]", 1,
		    "an applied result has no version" },
		{ "[{\"status\":\"duplicate\",\"version\":1.0}]", 1,
		    "an applied result has no version" },
		{ "[{\"status\":\"conflict\"}]", 1,
		    "a conflict result has no current state" },
		{ "[{\"status\":\"conflict\",\"current\":{\"version\":\"2\"}}]",
		    1, "a conflict result has no current state" },
		/* The current state is a body or a tombstone, never neither. */
		{ "[{\"status\":\"conflict\",\"current\":{\"version\":3}}]", 1,
		    "a conflict result has no current state" },
		{ "[{\"status\":\"conflict\",\"current\":{\"version\":3,"
		    "\"deleted\":false,\"body\":[]}}]", 1,
		    "a conflict result has no current state" },
		{ "[{\"status\":\"conflict\",\"current\":{\"version\":0,"
		    "\"deleted\":false,\"body\":{}}}]", 1,
		    "a conflict result has no current state" },
		{ "[{\"status\":\"conflict\",\"current\":{\"version\":-1,"
		    "\"deleted\":true}}]", 1,
		    "a conflict result has no current state" },
		{ "[{\"status\":\"rejected\"}]", 1,
		    "a rejected result has no error" },
		{ "[{\"status\":\"lost\"}]", 1,
		    "a result has an unknown status" },
		/* One bad result spoils the answer, wherever it is. */
		{ "[{\"status\":\"applied\",\"version\":1},{\"status\":\"x\"}]",
		    2, "a result has an unknown status" },
	};
	size_t i;

	assert_string_equal(wire_push_results_check(NULL, 0),
	    "results do not match the changes sent");
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		const char *r = push_check(bad[i].results, bad[i].n);

		if (r == NULL || strcmp(r, bad[i].reason) != 0)
			fail_msg("%s (n %zu): got \"%s\", want \"%s\"",
			    bad[i].results, bad[i].n, r ? r : "(accepted)",
			    bad[i].reason);
	}
}

/* A page exactly as ferry-server writes it: keys sorted, compact. */
static const char page[] =
    "{\"changes\":[{\"body\":{\"t\":\"x\"},\"change\":\"dev:1\","
    "\"collection\":\"notes\",\"deleted\":false,\"id\":\"n1\",\"seq\":4,"
    "\"version\":2},{\"change\":\"dev:2\",\"collection\":\"notes\","
    "\"deleted\":true,\"id\":\"a:b@c\",\"seq\":5,\"version\":3}],"
    "\"head\":5,\"last_seq\":5}";

static void
test_page_ok(void **state)
{
	static const char empty[] = "{\"changes\":[],\"head\":9,\"last_seq\":9}";
	json_t *changes;
	int64_t last;
	char why[128];

	assert_int_equal(wire_changes_page_parse(page, strlen(page), &changes,
	    &last, why, sizeof why), 0);
	assert_int_equal(last, 5);
	assert_int_equal(json_array_size(changes), 2);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(changes, 1), "id")), "a:b@c");
	/* The page is gone; the changes are the caller's reference. */
	assert_int_equal(changes->refcount, 1);
	json_decref(changes);

	/* An empty page, as a long-poll that timed out answers. */
	assert_int_equal(wire_changes_page_parse(empty, strlen(empty),
	    &changes, &last, why, sizeof why), 0);
	assert_int_equal(last, 9);
	assert_int_equal(json_array_size(changes), 0);
	json_decref(changes);
}

static void
test_page_bad(void **state)
{
	static const struct {
		const char	*text;
		const char	*reason;	/* NULL: jansson's own */
	} bad[] = {
		{ "", NULL },
		{ "{\"changes\":[", NULL },
		{ "{\"changes\":[],\"last_seq\":1,\"last_seq\":2}", NULL },
		{ "[]", "no last_seq" },
		{ "{\"changes\":[]}", "no last_seq" },
		{ "{\"changes\":[],\"last_seq\":\"1\"}", "no last_seq" },
		{ "{\"changes\":[],\"last_seq\":1.5}", "no last_seq" },
		{ "{\"last_seq\":1}", "no changes array" },
		{ "{\"changes\":{},\"last_seq\":1}", "no changes array" },
		{ "{\"changes\":[{\"collection\":\"a/b\",\"id\":\"x\","
		    "\"version\":1,\"body\":{}}],\"last_seq\":1}",
		    "change: collection contains byte 0x2f" },
		{ "{\"changes\":[{\"collection\":\"c\",\"version\":1,"
		    "\"body\":{}}],\"last_seq\":1}",
		    "change: id is missing" },
		{ "{\"changes\":[{\"collection\":\"c\",\"id\":\"\","
		    "\"version\":1,\"body\":{}}],\"last_seq\":1}",
		    "change: id is empty" },
		{ "{\"changes\":[7],\"last_seq\":1}",
		    "change: change is not an object" },
		{ "{\"changes\":[{\"collection\":\"c\",\"id\":\"i\","
		    "\"body\":{}}],\"last_seq\":1}",
		    "change: version is missing or not positive" },
		{ "{\"changes\":[{\"collection\":\"c\",\"id\":\"i\","
		    "\"version\":0,\"body\":{}}],\"last_seq\":1}",
		    "change: version is missing or not positive" },
		{ "{\"changes\":[{\"collection\":\"c\",\"id\":\"i\","
		    "\"version\":1}],\"last_seq\":1}",
		    "change: body is missing or not an object" },
		{ "{\"changes\":[{\"collection\":\"c\",\"id\":\"i\","
		    "\"version\":1,\"deleted\":false,\"body\":[]}],"
		    "\"last_seq\":1}", "change: body is missing or not an object" },
		/* "deleted" must be true itself, not merely truthy. */
		{ "{\"changes\":[{\"collection\":\"c\",\"id\":\"i\","
		    "\"version\":1,\"deleted\":1}],\"last_seq\":1}",
		    "change: body is missing or not an object" },
	};
	json_t *changes = (json_t *)&changes;
	int64_t last = -7;
	char why[128];
	size_t i;

	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		why[0] = '\0';
		if (bad[i].reason != NULL &&
		    strncmp(bad[i].reason, "change: ", 8) == 0) {
			const char *field = NULL, *phrase;

			/* The page is fine; that one change is not (and is
			 * parked by the puller, not the whole page).  The
			 * field and phrase read as "<field> <phrase>". */
			if (wire_changes_page_parse(bad[i].text,
			    strlen(bad[i].text), &changes, &last, why,
			    sizeof why) != 0)
				fail_msg("refused: %s", bad[i].text);
			assert_non_null(phrase = wire_change_check(
			    json_array_get(changes, 0), &field));
			assert_non_null(field);
			snprintf(why, sizeof why, "%s %s", field, phrase);
			if (strncmp(why, bad[i].reason + 8,
			    strlen(bad[i].reason + 8)) != 0)
				fail_msg("%s: got \"%s\"", bad[i].text, why);
			json_decref(changes);
			changes = (json_t *)&changes;
			last = -7;
			continue;
		}
		if (wire_changes_page_parse(bad[i].text, strlen(bad[i].text),
		    &changes, &last, why, sizeof why) != -EBADMSG)
			fail_msg("accepted: %s", bad[i].text);
		if (bad[i].reason != NULL &&
		    strcmp(why, bad[i].reason) != 0)
			fail_msg("%s: got \"%s\", want \"%s\"", bad[i].text,
			    why, bad[i].reason);
		if (why[0] == '\0')
			fail_msg("%s: refused without a reason", bad[i].text);
		/* Nothing is handed back on failure. */
		assert_ptr_equal(changes, (json_t *)&changes);
		assert_int_equal(last, -7);
	}
	/* A short reason buffer is cut and still terminated. */
	assert_int_equal(wire_changes_page_parse("[]", 2, &changes, &last,
	    why, 4), -EBADMSG);
	assert_string_equal(why, "no ");
}

static void
test_hint(void **state)
{
	static const struct {
		const char	*text;
		int		 r;
		int64_t		 hint;
	} cases[] = {
		{ "{\"changes\":[],\"head\":9,\"last_seq\":42}", 0, 42 },
		{ "{\"last_seq\":42}\r\n \t", 0, 42 },
		{ "\"last_seq\":0}", 0, 0 },
		{ "\"last_seq\":123456789012345678}", 0, 123456789012345678 },
		/* 19 digits: not read, so never an overflow. */
		{ "\"last_seq\":1234567890123456789}", -ENOENT, 0 },
		{ "{\"last_seq\":42", -ENOENT, 0 },
		{ "{\"last_seq\":}", -ENOENT, 0 },
		{ "{\"last_seq\":-1}", -ENOENT, 0 },
		{ "{\"last_seq\": 42}", -ENOENT, 0 },
		{ "{\"last_seqq\":42}", -ENOENT, 0 },
		{ "{\"seq\":42}", -ENOENT, 0 },
		{ "42}", -ENOENT, 0 },
		{ "}", -ENOENT, 0 },
		{ " \n", -ENOENT, 0 },
		{ "", -ENOENT, 0 },
	};
	int64_t hint;
	size_t i;

	for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
		hint = -7;
		if (wire_last_seq_hint(cases[i].text, strlen(cases[i].text),
		    &hint) != cases[i].r)
			fail_msg("%s: not %d", cases[i].text, cases[i].r);
		assert_int_equal(hint, cases[i].r == 0 ? cases[i].hint : -7);
	}
	/* Only len bytes are read: the end is where len says. */
	assert_int_equal(wire_last_seq_hint("{\"last_seq\":42}xyz", 15, &hint),
	    0);
	assert_int_equal(hint, 42);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_push_results_ok),
		cmocka_unit_test(test_push_results_bad),
		cmocka_unit_test(test_page_ok),
		cmocka_unit_test(test_page_bad),
		cmocka_unit_test(test_hint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
