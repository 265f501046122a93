/*
 * bodylimit: the body limit of DESIGN "Additions"; see bodylimit.h.
 *
 * The depth walk is recursive but bounded: it never goes deeper than the
 * limit plus one, whatever the input (jansson itself refuses more than
 * 2048 levels when parsing, and bodies only come from its parser).
 */
#include "autoconfig.h"

#include <errno.h>

#include "bodylimit.h"

int
bodylimit_depth(const json_t *v, int max)
{
	const char *key;
	json_t *child;
	size_t i;
	int d, deepest = 0;

	if (!json_is_object(v) && !json_is_array(v))
		return 0;
	if (max <= 0)
		return 1;
	if (json_is_object(v)) {
		/* jansson's iteration macros take a non-const object. */
		json_object_foreach((json_t *)v, key, child) {
			if ((d = bodylimit_depth(child, max - 1)) > deepest)
				deepest = d;
			if (deepest >= max)
				break;
		}
	} else {
		json_array_foreach(v, i, child) {
			if ((d = bodylimit_depth(child, max - 1)) > deepest)
				deepest = d;
			if (deepest >= max)
				break;
		}
	}
	return deepest + 1;
}

int
bodylimit_check_text(const json_t *body, size_t len,
    const char **ret_reason)
{
	const char *why;

	if (!json_is_object(body)) {
		why = "is not a JSON object";
		if (ret_reason != NULL)
			*ret_reason = why;
		return -EINVAL;
	}
	/* The size first: a body too large is not walked. */
	return bodylimit_check_size(len, len > BODYLIMIT_MAX_BYTES ? 0 :
	    bodylimit_depth(body, BODYLIMIT_MAX_DEPTH), ret_reason);
}

int
bodylimit_check_size(size_t len, int depth, const char **ret_reason)
{
	const char *why;

	if (len > BODYLIMIT_MAX_BYTES)
		why = "is larger than 4194304 bytes of compact JSON";
	else if (depth > BODYLIMIT_MAX_DEPTH)
		why = "is nested deeper than 64 levels";
	else
		return 0;
	if (ret_reason != NULL)
		*ret_reason = why;
	return -E2BIG;
}

int
bodylimit_check(const json_t *body, const char **ret_reason)
{
	size_t len;

	/* json_dumpb with no buffer returns the size it would write. */
	len = json_is_object(body) ? json_dumpb(body, NULL, 0, JSON_COMPACT) :
	    0;
	return bodylimit_check_text(body, len, ret_reason);
}
