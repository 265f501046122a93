/*
 * fuzz_push_req: the body of POST /v1/push as ferry-server reads it: first
 * the scanner for requests laid out as ferryd writes them
 * (wire_push_req_scan), and when it declines, jansson.
 *
 * The input is the request body's bytes, unterminated.
 *
 * Promise checked: the scanner never accepts what jansson would read
 * otherwise.  Whenever it returns a changes array, json_loadb of the same
 * bytes (JSON_REJECT_DUPLICATES, as the server parses) succeeds, holds an
 * object with "changes" and nothing else, and its "changes" is equal to
 * the scanner's, record for record, byte for byte.  It declines, rather
 * than guesses, on anything else, and never reads outside the input.
 */
#include "autoconfig.h"

#include <errno.h>
#include <string.h>

#include <jansson.h>

#include "fuzz.h"
#include "wire.h"

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *text = (const char *)data;
	json_t *fast = NULL, *slow;
	json_error_t jerr;
	int r;

	r = wire_push_req_scan(text, size, 64, &fast);
	if (r < 0) {
		FUZZ_ASSERT(r == -ENOTSUP || r == -E2BIG || r == -ENOMEM);
		FUZZ_ASSERT(fast == NULL);
		return 0;
	}
	slow = json_loadb(text, size, JSON_REJECT_DUPLICATES, &jerr);
	FUZZ_ASSERT(json_is_object(slow) && json_object_size(slow) == 1);
	FUZZ_ASSERT(json_equal(fast, json_object_get(slow, "changes")));
	json_decref(slow);
	json_decref(fast);
	return 0;
}
