/*
 * keys: the device's Ed25519 key pair (DESIGN "Signed change records").
 *
 * The secret key lives in <data_dir>/device.key, mode 0600.  The file holds
 * exactly the 64 bytes of libsodium's Ed25519 secret key (32-byte seed
 * followed by the 32-byte public key), nothing else: no header, no newline.
 * It is made on first start from crypto_sign_keypair(), written to a fresh
 * temporary file opened with O_CREAT|O_EXCL|O_NOFOLLOW, fsync'd, then
 * hard-linked to device.key (which, like O_EXCL, never replaces an existing
 * file) and the directory fsync'd: device.key is either absent or complete,
 * even after a crash.
 *
 * keys_load_or_create() refuses (-EPERM) a key file with any group or other
 * permission bit, or not owned by the caller; a symlink (-ELOOP); and a file
 * that is not a regular file of 64 bytes whose public half matches its seed
 * (-EBADMSG).  It never logs and never prints the secret.  The public key is
 * also given as base64url without padding (sodium_bin2base64
 * URLSAFE_NO_PADDING), the device's name on the wire.
 *
 * Ownership: struct keys is owned by the caller; keys_free() wipes it
 * (sodium_memzero) and accepts NULL.  keys_load_or_create() blocks on disk
 * I/O (fsync) when it creates a key.
 */
#ifndef FERRY_KEYS_H
#define FERRY_KEYS_H

#include <stdbool.h>
#include <sodium.h>

#define KEYS_PUB_B64_LEN 43	/* 32 bytes, base64url without padding */

struct keys {
	unsigned char	pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char	sk[crypto_sign_SECRETKEYBYTES];
	char		pub_b64[KEYS_PUB_B64_LEN + 1];
};

/*
 * Load <data_dir>/device.key, or create it if it does not exist.  data_dir
 * must exist (-ENOENT otherwise; it is not created here).  *ret_created is
 * set to true when a new key was made (may be NULL).  Returns 0 and a new
 * struct in *ret, or -errno: the refusals above, -ENOMEM, -EIO if libsodium
 * cannot start, or what open/read/write/fsync failed with.
 */
int	keys_load_or_create(const char *data_dir, struct keys **ret,
	    bool *ret_created);
void	keys_free(struct keys *k);

/*
 * Key rotation (docs/protocol.md "Rotating a key"): the key that is to
 * follow device.key waits in <data_dir>/device.key.next, written as
 * device.key is (temporary file, fsync, link, directory fsync: absent or
 * complete, mode 0600), until the remote has taken the rotation; its
 * presence is what says a rotation is pending, across crashes.
 * keys_next loads it (-ENOENT when there is none, unless create: then it
 * is made), with keys_load_or_create's checks.  keys_next_commit renames
 * it over device.key (atomic: either key is device.key, never none) and
 * fsyncs the directory; keys_next_discard removes it (0 when there is
 * none).  All block on disk I/O; 0 or -errno.
 */
int	keys_next(const char *data_dir, bool create, struct keys **ret);
int	keys_next_commit(const char *data_dir);
int	keys_next_discard(const char *data_dir);

/*
 * Whether <data_dir>/device.key is still as keys_load_or_create wants it
 * (it may have been chmod'ed or chown'ed since the daemon started): 0 if
 * it is, 1 with a sentence a user can act on in buf (what is wrong and
 * the command that fixes it), or -errno when it cannot be looked at.
 * One lstat; never logs.
 */
int	keys_file_problem(const char *data_dir, char *buf, size_t size);

/* base64url (no padding) encode/decode helpers over libsodium. */
/* Encode len bytes into a new malloc'd string.  0, -EINVAL or -ENOMEM. */
int	keys_b64_encode(const unsigned char *bin, size_t len, char **ret);
/*
 * Decode b64, which must encode exactly want bytes in canonical base64url
 * without padding or whitespace, into out.  out is written only on success.
 * 0, -EINVAL or -ENOMEM.
 */
int	keys_b64_decode(const char *b64, unsigned char *out, size_t want);

#endif
