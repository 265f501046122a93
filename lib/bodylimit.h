/*
 * bodylimit: the one documented limit on a document body, enforced on every
 * path that accepts one (Put, Patch, Resolve in ferryd; push in
 * ferry-server; a pulled change in ferryd, which is parked, not applied,
 * when it breaks the limit).
 *
 * A body is a JSON object of at most BODYLIMIT_MAX_BYTES bytes when
 * written compact (jansson's JSON_COMPACT) and at most
 * BODYLIMIT_MAX_DEPTH levels deep (the body object itself is level 1; an
 * object or array inside it is level 2, and so on).  Both leave room for
 * every reply that wraps a body: a varlink reply or Watch event adds at
 * most 4 levels and a few hundred bytes, a /v1/changes page 3 levels, and
 * a push request carries the record as a JSON string, which escaping can
 * make at most twice as long.  jansson refuses to parse more than 2048
 * levels, and ferryd's and ferry-server's messages are limited to 8 MiB
 * and 16 MiB, so a body inside the limit is readable by every reader.
 *
 * The module is not called limits.h: lib/ is on the include path, and a
 * header of that name would hide the C library's <limits.h>.
 *
 * The functions never allocate and never block.
 */
#ifndef FERRY_BODYLIMIT_H
#define FERRY_BODYLIMIT_H

#include <stddef.h>

#include <jansson.h>

#define BODYLIMIT_MAX_BYTES	(4u * 1024 * 1024)
#define BODYLIMIT_MAX_DEPTH	64

/*
 * Is body (an object) inside the limit?  0 if so; -EINVAL if it is not an
 * object, -E2BIG if it is too deep or too large, and then *ret_reason (if
 * not NULL) points at a static sentence that follows the field's name
 * ("body " + reason), e.g. "is nested deeper than 64 levels".
 */
int	bodylimit_check(const json_t *body, const char **ret_reason);
/* The same for a body already written as compact text of len bytes whose
 * tree is body (the size is taken from len, not recomputed). */
int	bodylimit_check_text(const json_t *body, size_t len,
	    const char **ret_reason);
/* The same for an object body of len bytes, depth levels deep, measured
 * without a tree (lib/jscan). */
int	bodylimit_check_size(size_t len, int depth, const char **ret_reason);
/* The nesting depth of a JSON value: 0 for a scalar, 1 for an object or
 * array of scalars.  Stops counting past max (returns max + 1). */
int	bodylimit_depth(const json_t *v, int max);

#endif
