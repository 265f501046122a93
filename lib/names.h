/*
 * names: validation of document addresses (DESIGN "Data model").
 *
 * A collection is 1-128 bytes of [A-Za-z0-9._-]; an id may also contain ':'
 * and '@'.  The functions never allocate.  They return 0 for a valid name,
 * or -EINVAL and, if ret_reason is not NULL, point it at a sentence that
 * follows the field's name ("id " + reason): "is missing" (NULL), "is
 * empty", "is longer than 128 bytes", or "contains byte 0x2f ('/') at offset
 * 3; only A-Z a-z 0-9 . _ - are allowed".  The byte reason lives in a
 * thread-local buffer, valid until the next call on the same thread; copy it
 * to keep it.  *ret_reason is not written on success.
 */
#ifndef FERRY_NAMES_H
#define FERRY_NAMES_H

#include <stddef.h>

#define NAMES_MAX 128

int	names_check_collection(const char *s, const char **ret_reason);
int	names_check_id(const char *s, const char **ret_reason);

#endif
