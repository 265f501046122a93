/*
 * fuzz_push_reply: the remote's answer to POST /v1/push, as ferryd reads
 * it (wire_push_results_check), before it records any result.
 *
 * The first byte is the number of changes the push sent (0 to 127; 128 and
 * up: as many as the answer has results), the rest is the body, parsed as
 * ferryd parses it (JSON_REJECT_DUPLICATES).
 *
 * Promise checked: an answer that passes has exactly that many results,
 * and each holds what ferryd's writer then reads without looking again
 * (wire.h): a known status, an integer version >= 1 for applied and
 * duplicate, for a conflict a current state that is deleted with a
 * version >= 0 or has a body and a version >= 1, a string error for a
 * rejection.  One
 * that fails says why.
 */
#include "autoconfig.h"

#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "wire.h"

static void
check_result(json_t *res)
{
	const char *status;
	json_t *v;

	FUZZ_ASSERT(json_is_object(res));
	status = json_string_value(json_object_get(res, "status"));
	FUZZ_ASSERT(status != NULL);
	if (strcmp(status, "applied") == 0 ||
	    strcmp(status, "duplicate") == 0) {
		v = json_object_get(res, "version");
		FUZZ_ASSERT(json_is_integer(v) && json_integer_value(v) >= 1);
	} else if (strcmp(status, "conflict") == 0) {
		v = json_object_get(res, "current");
		FUZZ_ASSERT(json_is_object(v) &&
		    json_is_integer(json_object_get(v, "version")));
		if (json_is_true(json_object_get(v, "deleted")))
			FUZZ_ASSERT(json_integer_value(json_object_get(v,
			    "version")) >= 0);
		else
			FUZZ_ASSERT(json_integer_value(json_object_get(v,
			    "version")) >= 1 &&
			    json_is_object(json_object_get(v, "body")));
	} else {
		FUZZ_ASSERT(strcmp(status, "rejected") == 0);
		FUZZ_ASSERT(json_is_string(json_object_get(res, "error")));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *bad;
	json_t *root, *results;
	size_t i, n;

	if (size < 1)
		return 0;
	root = json_loadb((const char *)data + 1, size - 1,
	    JSON_REJECT_DUPLICATES, NULL);
	if (root == NULL)
		return 0;
	results = json_object_get(root, "results");
	n = data[0] < 128 ? data[0] : json_array_size(results);
	bad = wire_push_results_check(results, n);
	if (bad == NULL) {
		FUZZ_ASSERT(json_is_array(results) &&
		    json_array_size(results) == n);
		for (i = 0; i < n; i++)
			check_result(json_array_get(results, i));
	} else
		FUZZ_ASSERT(bad[0] != '\0');
	json_decref(root);
	return 0;
}
