/*
 * fuzz_changes_page: a page of GET /v1/changes as ferryd's puller reads it:
 * the last_seq hint off the end of the raw text (wire_last_seq_hint), then
 * the parse and check of the whole page (wire_changes_page_parse), then
 * each body written as the text to store, as the encoder thread does.
 *
 * The input is the page's bytes, unterminated, as libcurl hands them over.
 *
 * Promises checked: the hint reads only inside the text and is never
 * negative; a refused page says why and hands nothing back; an accepted
 * page's changes are an array the caller owns alone, each change with
 * valid names, an integer version >= 1 and, unless deleted, an object body
 * that jansson can write back (the encoder treats a failure there as out
 * of memory, so a page that passed must never cause one).  And the fast
 * path (wire_changes_page_scan, lib/jscan) agrees with jansson: a page it
 * accepts, wire_changes_page_parse accepts too, with the same last_seq,
 * the same changes but for their bodies, and each body the scanner kept
 * as text byte for byte what jansson writes compact of the parsed one.
 */
#include "autoconfig.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "names.h"
#include "wire.h"

static void
check_change(json_t *ch)
{
	json_t *v;
	char *text;

	FUZZ_ASSERT(json_is_object(ch));
	FUZZ_ASSERT(names_check_collection(json_string_value(json_object_get(ch,
	    "collection")), NULL) == 0);
	FUZZ_ASSERT(names_check_id(json_string_value(json_object_get(ch,
	    "id")), NULL) == 0);
	v = json_object_get(ch, "version");
	FUZZ_ASSERT(json_is_integer(v) && json_integer_value(v) >= 1);
	if (json_is_true(json_object_get(ch, "deleted")))
		return;
	v = json_object_get(ch, "body");
	FUZZ_ASSERT(json_is_object(v));
	text = json_dumps(v, JSON_COMPACT);
	FUZZ_ASSERT(text != NULL);
	free(text);
}

/* A page the scanner accepted must read the same through jansson. */
static void
check_scan(const char *text, size_t size)
{
	json_t *fast = NULL, *slow = NULL, *ch, *body;
	int64_t fast_last = 0, slow_last = 0;
	char **bodies = NULL, *dump, why[160];
	size_t i, n;
	int r;

	r = wire_changes_page_scan(text, size, &fast, &bodies, &fast_last);
	if (r < 0) {
		FUZZ_ASSERT(r == -ENOTSUP || r == -ENOMEM);
		FUZZ_ASSERT(fast == NULL);
		return;
	}
	FUZZ_ASSERT(wire_changes_page_parse(text, size, &slow, &slow_last,
	    why, sizeof why) == 0);
	FUZZ_ASSERT(fast_last == slow_last);
	n = json_array_size(fast);
	FUZZ_ASSERT(n == json_array_size(slow));
	for (i = 0; i < n; i++) {
		ch = json_array_get(slow, i);
		body = json_incref(json_object_get(ch, "body"));
		json_object_del(ch, "body");
		FUZZ_ASSERT(json_equal(ch, json_array_get(fast, i)));
		if (bodies[i] == NULL) {
			FUZZ_ASSERT(body == NULL);
			continue;
		}
		FUZZ_ASSERT(json_is_object(body));
		dump = json_dumps(body, JSON_COMPACT);
		FUZZ_ASSERT(dump != NULL && strcmp(dump, bodies[i]) == 0);
		free(dump);
		json_decref(body);
		free(bodies[i]);
	}
	free(bodies);
	json_decref(fast);
	json_decref(slow);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_t *changes = NULL;
	int64_t hint = -1, last = 0;
	char why[160];
	size_t i;
	int r;

	if (wire_last_seq_hint(text, size, &hint) == 0)
		FUZZ_ASSERT(hint >= 0);
	else
		FUZZ_ASSERT(hint == -1);
	check_scan(text, size);
	why[0] = '\0';
	r = wire_changes_page_parse(text, size, &changes, &last, why,
	    sizeof why);
	if (r < 0) {
		FUZZ_ASSERT(r == -EBADMSG || r == -ENOMEM);
		FUZZ_ASSERT(why[0] != '\0' && changes == NULL && last == 0);
		return 0;
	}
	FUZZ_ASSERT(json_is_array(changes) && changes->refcount == 1);
	for (i = 0; i < json_array_size(changes); i++)
		if (wire_change_check(json_array_get(changes, i), NULL) ==
		    NULL)
			check_change(json_array_get(changes, i));
	json_decref(changes);
	return 0;
}
