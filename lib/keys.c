/*
 * keys: load or create the device key, and base64url helpers.
 *
 * device.key is exactly libsodium's 64-byte Ed25519 secret key (seed, then
 * public key).  It is only ever opened relative to a descriptor on the data
 * directory and with O_NOFOLLOW, so a symlink planted at device.key is
 * refused rather than followed.  A new key is written to a temporary file
 * created with O_CREAT|O_EXCL|O_NOFOLLOW and mode 0600, fsync'd, and then
 * hard-linked to device.key: link() never replaces an existing file, so two
 * processes racing to create the key end up sharing the first one, and a
 * crash leaves either no device.key or a complete one (at worst an unused
 * temporary file).  The directory is fsync'd before the key is used, so a
 * key that signed anything survives power loss.
 *
 * Every copy of secret material on the stack or heap is wiped with
 * sodium_memzero before it is released.  Nothing here logs.
 */
#include "autoconfig.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "keys.h"

#define KEYS_FILE	"device.key"
#define KEYS_NEXT	"device.key.next"
#define KEYS_B64	sodium_base64_VARIANT_URLSAFE_NO_PADDING

static int
keys_read_full(int fd, unsigned char *buf, size_t len, size_t *ret_n)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < len) {
		n = read(fd, buf + off, len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return (-errno);
		}
		if (n == 0)
			break;
		off += (size_t)n;
	}
	*ret_n = off;
	return (0);
}

static int
keys_write_full(int fd, const unsigned char *buf, size_t len)
{
	size_t	off = 0;
	ssize_t	n;

	while (off < len) {
		n = write(fd, buf + off, len - off);
		if (n == -1) {
			if (errno == EINTR)
				continue;
			return (-errno);
		}
		off += (size_t)n;
	}
	return (0);
}

/*
 * Read the key file name (device.key or device.key.next) into k.  -ENOENT
 * when there is none, so the caller may create it; every other failure is
 * final.
 */
static int
keys_load(int dirfd, const char *name, struct keys *k)
{
	unsigned char	buf[crypto_sign_SECRETKEYBYTES + 1];
	unsigned char	seed[crypto_sign_SEEDBYTES];
	unsigned char	pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char	sk[crypto_sign_SECRETKEYBYTES];
	struct stat	st;
	size_t		n = 0;
	int		fd, r;

	/* O_NONBLOCK: a FIFO planted here must not hang the open. */
	fd = openat(dirfd, name,
	    O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);
	if (fd == -1)
		return (-errno);

	if (fstat(fd, &st) == -1) {
		r = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		r = -EBADMSG;
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & (S_IRWXG | S_IRWXO))) {
		r = -EPERM;
		goto out;
	}
	if (st.st_size != crypto_sign_SECRETKEYBYTES) {
		r = -EBADMSG;
		goto out;
	}
	/* Ask for one byte more than a key to notice a file that grew. */
	if ((r = keys_read_full(fd, buf, sizeof(buf), &n)) < 0)
		goto out;
	if (n != crypto_sign_SECRETKEYBYTES) {
		r = -EBADMSG;
		goto out;
	}

	/* The stored public half must be the one the seed derives. */
	crypto_sign_ed25519_sk_to_seed(seed, buf);
	if (crypto_sign_seed_keypair(pk, sk, seed) != 0 ||
	    sodium_memcmp(sk, buf, sizeof(sk)) != 0) {
		r = -EBADMSG;
		goto out;
	}
	memcpy(k->sk, sk, sizeof(k->sk));
	memcpy(k->pk, pk, sizeof(k->pk));
	r = 0;

out:
	sodium_memzero(buf, sizeof(buf));
	sodium_memzero(seed, sizeof(seed));
	sodium_memzero(sk, sizeof(sk));
	close(fd);
	return (r);
}

/*
 * Make a new key and publish it as name (device.key or device.key.next).
 * -EEXIST when another process published one first; the caller then loads
 * that one.
 */
static int
keys_create(int dirfd, const char *name, struct keys *k)
{
	unsigned char	rnd[8];
	char		hex[sizeof(rnd) * 2 + 1];
	char		tmp[64];
	int		fd = -1, r;
	bool		linked = false;

	randombytes_buf(rnd, sizeof(rnd));
	sodium_bin2hex(hex, sizeof(hex), rnd, sizeof(rnd));
	snprintf(tmp, sizeof(tmp), "%s.tmp-%s", name, hex);

	if (crypto_sign_keypair(k->pk, k->sk) != 0)
		return (-EIO);

	fd = openat(dirfd, tmp,
	    O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NOCTTY,
	    0600);
	if (fd == -1)
		return (-errno);
	if ((r = keys_write_full(fd, k->sk, sizeof(k->sk))) < 0)
		goto out;
	if (fsync(fd) == -1) {
		r = -errno;
		goto out;
	}
	r = close(fd);
	fd = -1;
	if (r == -1) {
		r = -errno;
		goto out;
	}
	if (linkat(dirfd, tmp, dirfd, name, 0) == -1) {
		r = -errno;
		goto out;
	}
	linked = true;
	if (unlinkat(dirfd, tmp, 0) == -1) {
		r = -errno;
		goto out;
	}
	if (fsync(dirfd) == -1) {
		r = -errno;
		goto out;
	}
	r = 0;

out:
	if (fd != -1)
		close(fd);
	if (r < 0 && !linked)
		(void)unlinkat(dirfd, tmp, 0);
	if (r < 0)
		sodium_memzero(k, sizeof(*k));
	return (r);
}

int
keys_file_problem(const char *data_dir, char *buf, size_t size)
{
	char path[PATH_MAX];
	struct stat st;

	if ((size_t)snprintf(path, sizeof(path), "%s/%s", data_dir,
	    KEYS_FILE) >= sizeof(path))
		return (-ENAMETOOLONG);
	if (lstat(path, &st) == -1) {
		if (errno != ENOENT)
			return (-errno);
		snprintf(buf, size, "the device key file %s is missing: this "
		    "device signs with the key it loaded at start, and the next "
		    "start makes a new key the server does not know; put the "
		    "file back from a backup before restarting ferryd", path);
		return (1);
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(buf, size, "the device key file %s is not a regular "
		    "file (a link or another kind): ferryd will refuse to start "
		    "with it; put the real key file back there", path);
		return (1);
	}
	if (st.st_uid != geteuid()) {
		snprintf(buf, size, "the device key file %s belongs to uid %lu, "
		    "not to you (uid %lu): ferryd will refuse to start with it; "
		    "run: chown %lu %s", path, (unsigned long)st.st_uid,
		    (unsigned long)geteuid(), (unsigned long)geteuid(), path);
		return (1);
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0) {
		snprintf(buf, size, "the device key file %s is open to group or "
		    "others (mode %04o): whoever can read it can write as this "
		    "device, and ferryd will refuse to start with it; run: chmod "
		    "600 %s", path, (unsigned int)(st.st_mode & 07777), path);
		return (1);
	}
	return (0);
}

/* The public key as base64url, the device's name on the wire. */
static int
keys_pub(struct keys *k)
{
	if (sodium_bin2base64(k->pub_b64, sizeof(k->pub_b64), k->pk,
	    sizeof(k->pk), KEYS_B64) == NULL)
		return (-EIO);
	return (0);
}

/*
 * Load the key file name in data_dir into a new struct in *ret; when there
 * is none and create is set, make it first (*ret_created, may be NULL).
 */
static int
keys_open(const char *data_dir, const char *name, bool create,
    struct keys **ret, bool *ret_created)
{
	struct keys	*k = NULL;
	bool		 created = false;
	int		 dirfd = -1, r;

	if (data_dir == NULL || ret == NULL)
		return (-EINVAL);
	if (sodium_init() < 0)
		return (-EIO);

	if ((k = calloc(1, sizeof(*k))) == NULL)
		return (-ENOMEM);
	dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd == -1) {
		r = -errno;
		goto out;
	}

	r = keys_load(dirfd, name, k);
	if (r == -ENOENT && create) {
		r = keys_create(dirfd, name, k);
		if (r == 0)
			created = true;
		else if (r == -EEXIST)
			r = keys_load(dirfd, name, k);
	}
	if (r < 0 || (r = keys_pub(k)) < 0)
		goto out;
	*ret = k;
	k = NULL;
	if (ret_created != NULL)
		*ret_created = created;
	r = 0;

out:
	if (dirfd != -1)
		close(dirfd);
	keys_free(k);
	return (r);
}

int
keys_load_or_create(const char *data_dir, struct keys **ret,
    bool *ret_created)
{
	return (keys_open(data_dir, KEYS_FILE, true, ret, ret_created));
}

int
keys_next(const char *data_dir, bool create, struct keys **ret)
{
	return (keys_open(data_dir, KEYS_NEXT, create, ret, NULL));
}

/* rename(from, to) in data_dir (to NULL: unlink from), then fsync it. */
static int
keys_dir_move(const char *data_dir, const char *from, const char *to)
{
	int	dirfd, r = 0;

	dirfd = open(data_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd == -1)
		return (-errno);
	if (to != NULL ? renameat(dirfd, from, dirfd, to) == -1 :
	    unlinkat(dirfd, from, 0) == -1)
		r = -errno;
	if (r == 0 && fsync(dirfd) == -1)
		r = -errno;
	close(dirfd);
	return (r);
}

int
keys_next_commit(const char *data_dir)
{
	return (keys_dir_move(data_dir, KEYS_NEXT, KEYS_FILE));
}

int
keys_next_discard(const char *data_dir)
{
	int	r;

	r = keys_dir_move(data_dir, KEYS_NEXT, NULL);
	return (r == -ENOENT ? 0 : r);
}

void
keys_free(struct keys *k)
{
	if (k == NULL)
		return;
	sodium_memzero(k, sizeof(*k));
	free(k);
}

int
keys_b64_encode(const unsigned char *bin, size_t len, char **ret)
{
	size_t	 n;
	char	*s;

	if (ret == NULL || (bin == NULL && len != 0))
		return (-EINVAL);
	/* sodium_base64_encoded_len() aborts on overflow; stay well clear. */
	if (len > SIZE_MAX / 2)
		return (-ENOMEM);

	n = sodium_base64_encoded_len(len, KEYS_B64);
	if ((s = malloc(n)) == NULL)
		return (-ENOMEM);
	if (sodium_bin2base64(s, n, bin, len, KEYS_B64) == NULL) {
		free(s);
		return (-EINVAL);
	}
	*ret = s;
	return (0);
}

int
keys_b64_decode(const char *b64, unsigned char *out, size_t want)
{
	unsigned char	*tmp;
	size_t		 b64len, binlen;
	int		 r;

	if (b64 == NULL || (out == NULL && want != 0) || want > SIZE_MAX / 2)
		return (-EINVAL);
	/*
	 * Unpadded base64 of want bytes has exactly one length; checking it
	 * first bounds the work an untrusted string can cause.
	 */
	b64len = strlen(b64);
	if (b64len != sodium_base64_encoded_len(want, KEYS_B64) - 1)
		return (-EINVAL);

	/* Decode aside so that out is untouched on failure. */
	if ((tmp = malloc(want + 1)) == NULL)
		return (-ENOMEM);
	/*
	 * No ignore set and no end pointer: any byte outside the alphabet
	 * fails, and libsodium rejects non-zero padding bits, so only the
	 * canonical encoding decodes.
	 */
	if (sodium_base642bin(tmp, want + 1, b64, b64len, NULL, &binlen, NULL,
	    KEYS_B64) != 0 || binlen != want) {
		r = -EINVAL;
		goto out;
	}
	if (want > 0)
		memcpy(out, tmp, want);
	r = 0;

out:
	sodium_memzero(tmp, want + 1);
	free(tmp);
	return (r);
}
