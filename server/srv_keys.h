/*
 * srv_keys: ferry-server's authorized_keys file.
 *
 * One key per line, "<pubkey> [NAME]": the device's Ed25519 public key in
 * base64url without padding (43 characters, 32 bytes), then optionally
 * blanks and a name (the rest of the line, 1-64 bytes of UTF-8, no control
 * characters) shown as device_name in history.  Blank lines and lines whose
 * first non-blank character is '#' are comments.  A file that breaks any of
 * this, lists a key twice, or is writable by group or others is refused as
 * a whole (with the line number): a typo must not silently lock a device
 * out or let anyone add keys.
 *
 * The set is immutable once loaded; reloading (SIGHUP) builds a new one and
 * swaps it.  Lookups are linear: the file lists devices of a few users.
 * Nothing here logs; srv_keys_load and srv_keys_append block on file I/O.
 */
#ifndef FERRY_SRV_KEYS_H
#define FERRY_SRV_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#define SRV_KEYS_NAME_MAX	64

struct srv_keys;

/*
 * Read path.  Returns 0 and a new set in *ret, or -ENOENT (no such file),
 * -EPERM (writable by group or others), -EBADMSG (a bad line), -ENOMEM or
 * what open/read failed with; on failure *ret_error (if not NULL) gets a
 * malloc'd sentence naming the file and, for -EBADMSG, the line.
 */
int	srv_keys_load(const char *path, struct srv_keys **ret,
	    char **ret_error);
/* An empty set (no file yet).  0 or -ENOMEM. */
int	srv_keys_empty(struct srv_keys **ret);
void	srv_keys_free(struct srv_keys *ks);

size_t	srv_keys_count(const struct srv_keys *ks);
/* cb(key, name or NULL, arg) for each key in file order; < 0 stops with
 * that value.  The number of keys, or cb's value. */
int	srv_keys_foreach(const struct srv_keys *ks,
	    int (*cb)(const char *key, const char *name, void *arg), void *arg);
bool	srv_keys_allowed(const struct srv_keys *ks, const char *key);
/* The key's NAME, or NULL when it is not listed or has none. */
const char *srv_keys_name(const struct srv_keys *ks, const char *key);

/* 0 for a 32-byte base64url key, else -EINVAL and a reason. */
int	srv_keys_check_key(const char *key, const char **ret_reason);
/* 0 for a valid NAME, else -EINVAL and a reason. */
int	srv_keys_check_name(const char *name, const char **ret_reason);
/* The rules of a NAME but its length: UTF-8, no control characters, no
 * blank at either end (also for a revocation's reason). */
int	srv_keys_check_text(const char *text, const char **ret_reason);

/*
 * Append "<key> [NAME]" to path, creating it with mode 0600 (and refusing
 * to follow a symlink), after checking that the existing file is valid and
 * does not list key yet (-EEXIST, with the current entry in *ret_error).
 * The line is fsync'd before returning.  0 or -errno with *ret_error as
 * for srv_keys_load.
 */
int	srv_keys_append(const char *path, const char *key, const char *name,
	    char **ret_error);

/*
 * Add to ks, while it is being built and before anyone looks it up, a key
 * the store keeps (srv_db_keys: PostgreSQL's allowed_keys, shared by all
 * instances).  A key ks lists already keeps its entry.  0, -EINVAL for a
 * malformed key or name, -ENOMEM.
 */
int	srv_keys_merge(struct srv_keys *ks, const char *key, const char *name);

#endif
