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
 * of memory, so a page that passed must never cause one).
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
