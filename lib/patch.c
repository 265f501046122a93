/*
 * patch: RFC 7396 JSON Merge Patch; see patch.h.
 *
 * The result is built fresh: every value in it is either newly made or a
 * deep copy of a value of the target or the patch, each copied exactly once,
 * so neither input is touched and later changes to the result cannot reach
 * them.  Members keep the target's order, followed by members the patch
 * adds, in the patch's order.  The recursion follows the patch's depth,
 * which the JSON parser bounds (2048), so the stack stays small.
 *
 * This is not a diff: there is no way to produce a patch from two documents
 * here, and no JSON Patch (RFC 6902).
 */
#include "autoconfig.h"

#include <errno.h>
#include <stddef.h>

#include <jansson.h>

#include "patch.h"

/*
 * The MergePatch function of RFC 7396 section 2, returning a new value.
 * target may be NULL (the member is absent).  Returns NULL only when
 * memory runs out.
 */
static json_t *
patch_merge(json_t *target, json_t *patch)
{
	json_t *result, *tv, *pv, *child;
	const char *key;

	if (!json_is_object(patch))
		return json_deep_copy(patch);
	if (!json_is_object(target))
		target = NULL;	/* replaced by {} before the members apply */

	if ((result = json_object()) == NULL)
		return NULL;
	if (target != NULL) {
		json_object_foreach(target, key, tv) {
			pv = json_object_get(patch, key);
			if (pv == NULL)
				child = json_deep_copy(tv);
			else if (json_is_null(pv))
				continue;
			else
				child = patch_merge(tv, pv);
			if (child == NULL ||
			    json_object_set_new(result, key, child) == -1)
				goto fail;
		}
	}
	json_object_foreach(patch, key, pv) {
		if (json_is_null(pv))
			continue;
		if (target != NULL && json_object_get(target, key) != NULL)
			continue;	/* merged above */
		child = patch_merge(NULL, pv);
		if (child == NULL ||
		    json_object_set_new(result, key, child) == -1)
			goto fail;
	}
	return result;

fail:
	json_decref(result);
	return NULL;
}

int
patch_apply(json_t *target, json_t *patch, json_t **ret)
{
	json_t *result;

	if (patch == NULL || ret == NULL)
		return -EINVAL;
	if ((result = patch_merge(target, patch)) == NULL)
		return -ENOMEM;
	*ret = result;
	return 0;
}
