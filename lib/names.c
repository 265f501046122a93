/*
 * names: validation of document addresses (DESIGN "Data model").
 *
 * A collection is 1-128 bytes of [A-Za-z0-9._-]; an id may also contain ':'
 * and '@'.  The check works on bytes, not characters: every byte of a UTF-8
 * sequence is >= 0x80 and so is refused, whatever it encodes.  Names are
 * compared and stored byte for byte elsewhere, so this module is the one
 * place that decides what a name may be.
 *
 * Note that "." and ".." are valid names under the contract; code that puts
 * names into URL paths must not let an HTTP layer normalise dot segments.
 *
 * Nothing here allocates, blocks or logs.  The reason for a refused byte is
 * formatted into a thread-local buffer, valid until the next call on the same
 * thread; the other reasons are string constants.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "names.h"

static _Thread_local char names_reason[160];

static bool
names_byte_ok(unsigned char c, bool is_id)
{
	if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	    (c >= '0' && c <= '9'))
		return (true);
	if (c == '.' || c == '_' || c == '-')
		return (true);
	if (is_id && (c == ':' || c == '@'))
		return (true);
	return (false);
}

/*
 * Describe a refused byte: its value, a readable form when it has one, and
 * where it is.  Only ASCII graphic characters are echoed, so the sentence is
 * always safe to print or put in a JSON string.
 */
static const char *
names_bad_byte(unsigned char c, size_t off, bool is_id)
{
	char		 shown[16];
	const char	*allowed;

	if (c == ' ')
		snprintf(shown, sizeof(shown), "space");
	else if (c > 0x20 && c < 0x7f)
		snprintf(shown, sizeof(shown), "'%c'", c);
	else if (c >= 0x80)
		snprintf(shown, sizeof(shown), "non-ASCII");
	else
		snprintf(shown, sizeof(shown), "control");

	allowed = is_id ? "A-Z a-z 0-9 . _ - : @" : "A-Z a-z 0-9 . _ -";
	snprintf(names_reason, sizeof(names_reason),
	    "contains byte 0x%02x (%s) at offset %zu; only %s are allowed",
	    c, shown, off, allowed);
	return (names_reason);
}

static int
names_check(const char *s, bool is_id, const char **ret_reason)
{
	const char	*reason;
	size_t		 len, i;

	if (s == NULL) {
		reason = "is missing";
		goto fail;
	}
	len = strnlen(s, NAMES_MAX + 1);
	if (len == 0) {
		reason = "is empty";
		goto fail;
	}
	if (len > NAMES_MAX) {
		reason = "is longer than 128 bytes";
		goto fail;
	}
	for (i = 0; i < len; i++) {
		if (!names_byte_ok((unsigned char)s[i], is_id)) {
			reason = names_bad_byte((unsigned char)s[i], i, is_id);
			goto fail;
		}
	}
	return (0);

fail:
	if (ret_reason != NULL)
		*ret_reason = reason;
	return (-EINVAL);
}

int
names_check_collection(const char *s, const char **ret_reason)
{
	return (names_check(s, false, ret_reason));
}

int
names_check_id(const char *s, const char **ret_reason)
{
	return (names_check(s, true, ret_reason));
}
