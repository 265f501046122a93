/*
 * merge: three-way merge of JSON documents, and the field-level diff the
 * audit log records.
 *
 * A document is a JSON object, or NULL when it is absent or deleted.
 * merge_three() merges base (the last synced body), mine (the local body)
 * and theirs (the server body) path by path, as DESIGN.md "Merge and
 * conflicts" says: a value changed on one side only takes that side's
 * value, the same change on both sides is fine, objects changed on both
 * sides are merged key by key, arrays of objects with unique string "id"
 * members ("keyed arrays") are merged element by element, and anything
 * else changed differently on both sides is a conflict at that place,
 * named by a JSON Pointer (RFC 6901).  Values compare with json_equal(),
 * so the integer 1 and the real 1.0 are different values.
 *
 * Nothing here blocks, logs or keeps state between calls; the functions
 * are safe to call from several threads on distinct (or read-only) trees.
 */
#ifndef FERRY_MERGE_H
#define FERRY_MERGE_H

#include <jansson.h>

/*
 * One conflict as found.  path is a JSON Pointer ("" is the whole
 * document); base, mine and theirs are the values at that place in each
 * version, borrowed and valid only during the callback, NULL where that
 * version has no value there (absent key, missing element, deleted
 * document).
 */
struct merge_conflict {
	const char	*path;
	json_t		*base;
	json_t		*mine;
	json_t		*theirs;
};

typedef int (*merge_conflict_cb)(const struct merge_conflict *c, void *arg);

/*
 * Three-way merge of documents.  base, mine and theirs are JSON objects or
 * NULL (absent or deleted).  Absence is a value like any other: deleted on
 * both sides, or on one side with the other equal to base, the result is
 * NULL; created on one side only, it is that side's; deleted on one side
 * and changed on the other, a conflict at "" (the merged document is then
 * mine's, NULL if mine deleted it).  A NULL base with both sides present
 * merges as if base were {}.  The inputs are not modified, but unchanged
 * subtrees of them are shared into the result by reference: treat the
 * result as read-only, or json_deep_copy() it before editing.  Keyed
 * array elements are named by their index in the merged array; see
 * merge.c for the order of merged arrays.
 *
 * Returns the number of conflicts (0 for a clean merge) or -EINVAL (an
 * input is neither an object nor NULL) or -ENOMEM.  On success *ret_merged
 * (if ret_merged is not NULL) gets a new reference to the merged document,
 * or NULL when the result is a deletion; with conflicts it is the
 * automatic merge of the rest with mine's value at each conflicting path.
 * *ret_conflicts (if ret_conflicts is not NULL) gets a new array of the
 * conflict paths, sorted bytewise, without duplicates.  Nothing is
 * written on failure.
 */
int	merge_three(json_t *base, json_t *mine, json_t *theirs,
	    json_t **ret_merged, json_t **ret_conflicts);

/*
 * merge_three(), calling cb (which may be NULL) once per conflict in path
 * order after the merge is done.  A negative return from cb stops the
 * calls and is returned; nothing is written then.
 */
int	merge_three_cb(json_t *base, json_t *mine, json_t *theirs,
	    merge_conflict_cb cb, void *arg, json_t **ret_merged,
	    json_t **ret_conflicts);

/*
 * Field-level diff for the audit log: the JSON Pointers of what changed
 * from a to b, each a JSON object or NULL (absent or deleted: the whole
 * document, "", changed unless both are NULL).  Objects recurse, keyed
 * arrays are compared by id (an element added or changed is named by its
 * index in b, a removed one by its index in a, and a change in the order
 * of the elements both keep by the array's own path), any other
 * differing value is one path.  On success *ret_paths gets a new array of
 * strings sorted bytewise without duplicates.  Returns 0, -EINVAL or
 * -ENOMEM.
 */
int	merge_diff(json_t *a, json_t *b, json_t **ret_paths);

#endif
