/*
 * collset: the collections a device syncs (issue 13, selective sync;
 * docs/sync.md "Selective sync"), and the pull filter that keeps a
 * newly added collection's history coming without pulling the others
 * again.
 *
 * A set is "*" (every collection, the default) or a list of collection
 * names, written sorted, unique and comma-separated ("notes,todo").  A
 * filter is the collections= value of /v1/changes (docs/protocol.md):
 * entries "NAME[:FLOOR]" and "*[:FLOOR]", meaning "changes of NAME with
 * a seq above FLOOR".  When the set changes at pull cursor C, every
 * collection that was being pulled has had everything up to C: it keeps
 * a floor of C; one that was not starts at floor 0; the cursor goes back
 * to the lowest floor.  So an added collection is pulled from its start
 * and the others are not sent again: the server skips them below their
 * floors.  Floors at or below the cursor say nothing and are dropped.
 *
 * Pure functions on strings: no I/O, no logging, thread-safe.
 */
#ifndef FERRY_COLLSET_H
#define FERRY_COLLSET_H

#include <stdbool.h>
#include <stdint.h>

#define COLLSET_MAX	64	/* collections in a set */
/* The longest filter collset_move writes: each name with a floor. */
#define COLLSET_FILTER_MAX	((COLLSET_MAX + 1) * (128 + 22))

/*
 * Normalise text ("a, b", "b,a", "*") into *ret (malloc'd): sorted,
 * unique, no blanks; "*" alone for every collection.  0, -ENOMEM, or
 * -EINVAL with a sentence in why (size bytes) naming the bad entry.
 */
int	collset_norm(const char *text, char **ret, char *why, size_t size);
/* Does set (NULL or "*": every collection) hold collection? */
bool	collset_has(const char *set, const char *collection);
/* Is set every collection (NULL or "*")? */
bool	collset_all(const char *set);

/*
 * The filter and cursor after moving to set at cursor, from filter (NULL:
 * every collection, no floors).  *ret_filter is malloc'd, NULL when the
 * new filter is every collection with no floor (no collections=
 * parameter at all).  0, -ENOMEM, -EINVAL (a filter or set that does not
 * parse: a corrupt replica).
 */
int	collset_move(const char *filter, const char *set, int64_t cursor,
	    char **ret_filter, int64_t *ret_cursor);

#endif
