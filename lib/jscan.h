/*
 * jscan: reads JSON text that is already written the way ferry stores it,
 * without building a tree.
 *
 * ferryd stores a body as jansson writes it compact (JSON_COMPACT: no
 * white space, keys in the order they came).  Most text ferryd receives
 * is already in that form (ferry-server's pages carry bodies as signed
 * records hold them), and parsing it into a jansson tree only to write the
 * same bytes again was most of the pull's CPU (bench/RESULTS.md, session
 * 10).  jscan_compact says whether a value is in that form, and if so the
 * caller keeps the bytes as they are.
 *
 * The check is conservative: it answers yes only for text that jansson
 * would read (JSON_REJECT_DUPLICATES) and write back (JSON_COMPACT) byte
 * for byte the same, and no for anything else, valid or not: a string
 * with a \u escape, a real number, an integer of more than 18 digits, an
 * object with more than JSCAN_MAX_KEYS keys.  A no is never an error: the
 * caller then does what it did before (parse and write with jansson), and
 * that path says what is wrong with text that is not JSON.  The fuzz
 * harness tests/fuzz/fuzz_changes_page.c holds the promise against
 * jansson itself.
 *
 * Never allocates; the stack it uses is bounded by JSCAN_MAX_DEPTH.
 */
#ifndef FERRY_JSCAN_H
#define FERRY_JSCAN_H

#include <stddef.h>

#define JSCAN_MAX_DEPTH	64	/* deepest nesting answered yes */
#define JSCAN_MAX_KEYS	64	/* most keys of one object answered yes */

/*
 * Is the JSON value that starts at s[0] (of the len bytes there) written
 * as jansson writes it compact, nested at most max_depth levels
 * (max_depth <= JSCAN_MAX_DEPTH; an object or array of scalars is level
 * 1)?  0 if so, with *ret_len the value's length (what follows it is not
 * read) and *ret_depth its depth (either may be NULL); -ENOTSUP if not,
 * or if the answer is not known (see above); -EINVAL for a bad argument.
 */
int	jscan_compact(const char *s, size_t len, int max_depth,
	    size_t *ret_len, int *ret_depth);

/*
 * The same for a string alone: s[0] must be '"'.  *ret_len includes both
 * quotes.  The bytes between them are the string's value as they are
 * when *ret_plain is set (no escape in it), which names and signatures
 * always are.
 */
int	jscan_string(const char *s, size_t len, size_t *ret_len,
	    int *ret_plain);

/*
 * An integer as jansson writes it: -?(0|[1-9][0-9]*), at most 18 digits,
 * not "-0".  0 with *ret_len and *ret_value, else -ENOTSUP.
 */
int	jscan_int(const char *s, size_t len, size_t *ret_len,
	    long long *ret_value);

#endif
