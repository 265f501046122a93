/*
 * jtext: facts about JSON text that jansson has already parsed and
 * accepted, found without parsing it again.
 *
 * ferryd stores a document body as jansson's compact text (JSON_COMPACT,
 * keys in the order given).  Clients that send compact JSON, which is what
 * libferry and most encoders write, already send exactly those bytes; this
 * module lets the daemon see that and keep the bytes it received instead of
 * serialising the parse tree again (json_dumps costs about half as much as
 * the parse itself).  It is not a parser: it never builds a value, decodes
 * an escape or converts a number, and it says "no" whenever anything is
 * unusual, in which case the caller does what it did before (json_dumps).
 *
 * Precondition for every function: text is a complete JSON value that
 * jansson (json_loadb with JSON_REJECT_DUPLICATES) accepted.  On other
 * input the answers are meaningless but memory-safe: nothing is read
 * outside [text, text + len).  Nothing here allocates, blocks or logs.
 */
#ifndef FERRY_JTEXT_H
#define FERRY_JTEXT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * The text of the value of member key in the object text (the outermost
 * value).  key is compared byte for byte with the member names as written,
 * so a name spelled with escapes is not found.  Returns 0 and the value's
 * span in *ret / *ret_len (pointing into text), -ENOENT if there is no such
 * member, -EINVAL if text is not an object.
 */
int	jtext_member(const char *text, size_t len, const char *key,
	    const char **ret, size_t *ret_len);

/*
 * True only if text is byte for byte what json_dumps(v, JSON_COMPACT)
 * writes for the value v that jansson parses from it: no whitespace
 * between tokens, no escape sequence in any string, and every number an
 * integer other than -0.  False says nothing (the text may still be).
 */
bool	jtext_is_compact(const char *text, size_t len);

#endif
