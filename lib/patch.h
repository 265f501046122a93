/*
 * patch: JSON Merge Patch (RFC 7396) applied to a document body.
 *
 * patch_apply(target, patch, &ret) returns in *ret a new reference to the
 * result of applying patch to target, as RFC 7396 section 2 defines it:
 * object members of the patch replace or (when null) remove members of the
 * target, recursively; a non-object patch replaces the target whole.  The
 * target and patch are not modified (the result shares no mutable state
 * with them: every value in it is new or a deep copy).  target may be NULL,
 * meaning absent (the same as any non-object target when the patch is an
 * object).  The caller owns *ret, which is written only on success.
 * Returns 0, -EINVAL if patch or ret is NULL, or -ENOMEM.  Never blocks.
 */
#ifndef FERRY_PATCH_H
#define FERRY_PATCH_H

#include <jansson.h>

int	patch_apply(json_t *target, json_t *patch, json_t **ret);

#endif
