/*
 * rotation: the key rotation statement (docs/protocol.md "Rotating a
 * key"): how a device tells the remote that its key changes.
 *
 * The statement is a compact JSON text with sorted keys, as records are:
 *
 *     {"new_key":"<pubkey>","old_key":"<pubkey>","seq":41,"ts":1763800000000,"v":1}
 *
 * old_key is the key being retired, new_key the one that follows it on the
 * same device (same name on the server), seq the highest change seq the
 * old key signed (the server takes records of the old key up to it, and
 * none beyond), ts the time it was made (Unix ms).  It is signed twice,
 * Ed25519 detached over "ferry-rotate-v1\n" followed by the text exactly
 * as sent: once by the old key (sig_old), once by the new one (sig_new),
 * so neither a thief of the new key nor of an old request can make one
 * alone.
 *
 * rotation_verify checks the bytes against the old key first and only
 * then parses them; the text must be exactly what rotation_make writes
 * (canonical), so one statement has one spelling.  Nothing here logs or
 * blocks.
 */
#ifndef FERRY_ROTATION_H
#define FERRY_ROTATION_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define ROTATION_SIG_PREFIX	"ferry-rotate-v1\n"

struct rotation_fields {
	char	old_key[KEYS_PUB_B64_LEN + 1];
	char	new_key[KEYS_PUB_B64_LEN + 1];
	int64_t	seq;
	int64_t	ts;
};

/*
 * Make and sign a statement: old retires in favour of new after seq, at
 * ts.  *ret_text (NUL-terminated, *ret_len bytes), *ret_sig_old and
 * *ret_sig_new are malloc'd and the caller's.  0, -EINVAL (seq < 0),
 * -ENOMEM or -EIO.
 */
int	rotation_make(const struct keys *old, const struct keys *new,
	    int64_t seq, int64_t ts, char **ret_text, size_t *ret_len,
	    char **ret_sig_old, char **ret_sig_new);

/*
 * Check a statement said to be old_key's: sig_old over the bytes against
 * old_key, then the text (canonical, exactly these fields, old_key as
 * given, a different well-formed new_key, seq >= 0, ts > 0), then sig_new
 * against new_key.  0 and *ret filled; -EKEYREJECTED with *ret_why "the
 * old key's signature" or "the new key's signature"; -EBADMSG with
 * *ret_why naming what is wrong in the text; -ENOMEM.
 */
int	rotation_verify(const char *text, size_t len, const char *sig_old,
	    const char *sig_new, const char *old_key,
	    struct rotation_fields *ret, const char **ret_why);

#endif
