/*
 * test_keys: the device key file and the base64url helpers.
 *
 * Guards DESIGN's promises about the secret key: it is made once and then
 * reused byte for byte; it is never read through a symlink or from a file
 * that group or others can reach; a damaged file is refused rather than
 * silently replaced (a new key would orphan every record signed so far); and
 * processes racing on first start agree on one key.  Also guards the wire
 * encoding of keys and signatures: canonical base64url without padding.
 */
#include "autoconfig.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sodium.h>

#include "keys.h"

struct fixture {
	char	dir[256];
	char	keyfile[300];
};

static bool
is_dot(const char *name)
{
	return (strcmp(name, ".") == 0 || strcmp(name, "..") == 0);
}

static void
rm_tree(const char *path)
{
	DIR		*d;
	struct dirent	*de;
	int		 fd;

	if ((d = opendir(path)) == NULL)
		return;
	fd = dirfd(d);
	while ((de = readdir(d)) != NULL) {
		if (is_dot(de->d_name))
			continue;
		if (unlinkat(fd, de->d_name, 0) == -1)
			(void)unlinkat(fd, de->d_name, AT_REMOVEDIR);
	}
	closedir(d);
	(void)rmdir(path);
}

static int
setup(void **state)
{
	struct fixture	*fx;
	const char	*tmp;

	if ((fx = calloc(1, sizeof(*fx))) == NULL)
		return (-1);
	if ((tmp = getenv("TMPDIR")) == NULL || *tmp == '\0')
		tmp = "/tmp";
	snprintf(fx->dir, sizeof(fx->dir), "%s/test_keys.XXXXXX", tmp);
	if (mkdtemp(fx->dir) == NULL) {
		free(fx);
		return (-1);
	}
	snprintf(fx->keyfile, sizeof(fx->keyfile), "%s/device.key", fx->dir);
	*state = fx;
	return (0);
}

static int
teardown(void **state)
{
	struct fixture	*fx = *state;

	rm_tree(fx->dir);
	free(fx);
	return (0);
}

static void
write_file(const char *path, const void *buf, size_t len, mode_t mode)
{
	int	fd;

	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	assert_true(fd != -1);
	assert_int_equal(write(fd, buf, len), (ssize_t)len);
	assert_int_equal(fchmod(fd, mode), 0);
	close(fd);
}

static size_t
read_file(const char *path, unsigned char *buf, size_t cap)
{
	ssize_t	n;
	int	fd;

	fd = open(path, O_RDONLY | O_CLOEXEC);
	assert_true(fd != -1);
	n = read(fd, buf, cap);
	assert_true(n >= 0);
	close(fd);
	return ((size_t)n);
}

static int
count_entries(const char *path)
{
	DIR		*d;
	struct dirent	*de;
	int		 n = 0;

	d = opendir(path);
	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (!is_dot(de->d_name))
			n++;
	closedir(d);
	return (n);
}

/* Make a valid key file in fx->dir and return it (caller frees). */
static struct keys *
make_key(struct fixture *fx)
{
	struct keys	*k = NULL;
	bool		 created = false;

	assert_int_equal(keys_load_or_create(fx->dir, &k, &created), 0);
	assert_true(created);
	return (k);
}

/*
 * First start creates the key; the second loads the very same one and says
 * it did not create it.  A daemon that made a new key on every start would
 * break every device's seq sequence and audit trail.
 */
static void
test_create_then_reload(void **state)
{
	struct fixture	*fx = *state;
	struct keys	*a, *b = NULL;
	bool		 created = true;
	char		 b64[KEYS_PUB_B64_LEN + 1];

	a = make_key(fx);
	assert_int_equal(keys_load_or_create(fx->dir, &b, &created), 0);
	assert_false(created);
	assert_memory_equal(a->pk, b->pk, sizeof(a->pk));
	assert_memory_equal(a->sk, b->sk, sizeof(a->sk));
	assert_string_equal(a->pub_b64, b->pub_b64);

	/* pub_b64 is the URL-safe unpadded encoding of pk. */
	sodium_bin2base64(b64, sizeof(b64), a->pk, sizeof(a->pk),
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	assert_string_equal(a->pub_b64, b64);
	assert_int_equal(strlen(a->pub_b64), KEYS_PUB_B64_LEN);

	/* ret_created may be NULL. */
	keys_free(b);
	b = NULL;
	assert_int_equal(keys_load_or_create(fx->dir, &b, NULL), 0);
	assert_memory_equal(a->pk, b->pk, sizeof(a->pk));
	keys_free(a);
	keys_free(b);
}

/*
 * The file is the documented format (64 raw bytes: libsodium's secret key)
 * with mode 0600, and creating it leaves nothing else in the directory.
 */
static void
test_file_format(void **state)
{
	struct fixture	*fx = *state;
	struct keys	*k;
	struct stat	 st;
	unsigned char	 buf[128];

	k = make_key(fx);
	assert_int_equal(lstat(fx->keyfile, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	assert_int_equal(st.st_mode & 07777, 0600);
	assert_int_equal(read_file(fx->keyfile, buf, sizeof(buf)),
	    crypto_sign_SECRETKEYBYTES);
	assert_memory_equal(buf, k->sk, crypto_sign_SECRETKEYBYTES);
	/* The public key is the secret key's second half. */
	assert_memory_equal(buf + 32, k->pk, 32);
	assert_int_equal(count_entries(fx->dir), 1);
	keys_free(k);
}

/*
 * A key file that group or others may read, write or execute is refused
 * with -EPERM, and is left as it was; owner-only modes are accepted.
 */
static void
test_mode_refused(void **state)
{
	static const mode_t	 bad[] = { 0644, 0640, 0604, 0660, 0620, 0602,
	    0610, 0601, 0666 };
	struct fixture		*fx = *state;
	struct keys		*k, *k2 = NULL;
	unsigned char		 buf[128];
	size_t			 i;

	k = make_key(fx);
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		assert_int_equal(chmod(fx->keyfile, bad[i]), 0);
		k2 = NULL;
		if (keys_load_or_create(fx->dir, &k2, NULL) != -EPERM)
			fail_msg("mode %04o was not refused", (unsigned)bad[i]);
		assert_null(k2);	/* ret untouched on failure */
	}
	assert_int_equal(read_file(fx->keyfile, buf, sizeof(buf)),
	    crypto_sign_SECRETKEYBYTES);
	assert_memory_equal(buf, k->sk, crypto_sign_SECRETKEYBYTES);

	assert_int_equal(chmod(fx->keyfile, 0400), 0);
	assert_int_equal(keys_load_or_create(fx->dir, &k2, NULL), 0);
	assert_memory_equal(k->pk, k2->pk, sizeof(k->pk));
	keys_free(k2);
	keys_free(k);
}

/*
 * device.key as a symlink is refused with -ELOOP, whether it points at a
 * perfectly good key or nowhere (a dangling link must not make the daemon
 * create a key wherever the link points).
 */
static void
test_symlink_refused(void **state)
{
	struct fixture	*fx = *state;
	struct keys	*k, *k2 = NULL;
	char		 real[320], target[320];
	bool		 created = false;

	k = make_key(fx);
	snprintf(real, sizeof(real), "%s/real.key", fx->dir);
	assert_int_equal(rename(fx->keyfile, real), 0);
	assert_int_equal(symlink(real, fx->keyfile), 0);
	assert_int_equal(keys_load_or_create(fx->dir, &k2, &created),
	    -ELOOP);
	assert_null(k2);
	assert_false(created);	/* ret_created untouched on failure */

	assert_int_equal(unlink(fx->keyfile), 0);
	snprintf(target, sizeof(target), "%s/nowhere.key", fx->dir);
	assert_int_equal(symlink(target, fx->keyfile), 0);
	assert_int_equal(keys_load_or_create(fx->dir, &k2, NULL), -ELOOP);
	assert_int_equal(access(target, F_OK), -1);
	keys_free(k);
}

/*
 * A key file of the wrong size (empty, truncated, with trailing bytes) is
 * refused with -EBADMSG and not replaced by a fresh key.
 */
static void
test_wrong_size_refused(void **state)
{
	static const size_t	 sizes[] = { 0, 1, 32, 63, 65, 128 };
	struct fixture		*fx = *state;
	struct keys		*k, *k2 = NULL;
	unsigned char		 buf[160], back[160];
	size_t			 i;

	k = make_key(fx);
	memset(buf, 0, sizeof(buf));
	memcpy(buf, k->sk, crypto_sign_SECRETKEYBYTES);
	for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		write_file(fx->keyfile, buf, sizes[i], 0600);
		if (keys_load_or_create(fx->dir, &k2, NULL) != -EBADMSG)
			fail_msg("size %zu was not refused", sizes[i]);
		assert_null(k2);
		assert_int_equal(read_file(fx->keyfile, back, sizeof(back)),
		    sizes[i]);
	}
	keys_free(k);
}

/*
 * A 64-byte file whose public half does not belong to its seed is damaged
 * (or tampered with) and refused: signing with it would produce records
 * that name the wrong device.
 */
static void
test_mismatched_halves_refused(void **state)
{
	struct fixture	*fx = *state;
	struct keys	*k, *k2 = NULL;
	unsigned char	 buf[crypto_sign_SECRETKEYBYTES];

	k = make_key(fx);
	memcpy(buf, k->sk, sizeof(buf));
	buf[40] ^= 0x01;
	write_file(fx->keyfile, buf, sizeof(buf), 0600);
	assert_int_equal(keys_load_or_create(fx->dir, &k2, NULL), -EBADMSG);
	assert_null(k2);
	keys_free(k);
}

/*
 * Something other than a regular file at device.key (a directory, a FIFO)
 * is refused, and opening the FIFO does not hang.
 */
static void
test_not_regular_refused(void **state)
{
	struct fixture	*fx = *state;
	struct keys	*k = NULL;

	assert_int_equal(mkdir(fx->keyfile, 0700), 0);
	assert_int_equal(keys_load_or_create(fx->dir, &k, NULL), -EBADMSG);
	assert_int_equal(rmdir(fx->keyfile), 0);

	assert_int_equal(mkfifo(fx->keyfile, 0600), 0);
	assert_int_equal(keys_load_or_create(fx->dir, &k, NULL), -EBADMSG);
	assert_null(k);
}

/* A data directory that does not exist is an error, not created here. */
static void
test_missing_dir(void **state)
{
	struct fixture	*fx = *state;
	struct keys	*k = NULL;
	char		 path[320];

	snprintf(path, sizeof(path), "%s/absent", fx->dir);
	assert_int_equal(keys_load_or_create(path, &k, NULL), -ENOENT);
	assert_null(k);
	assert_int_equal(access(path, F_OK), -1);
	assert_int_equal(keys_load_or_create(NULL, &k, NULL), -EINVAL);
	assert_int_equal(keys_load_or_create(fx->dir, NULL, NULL), -EINVAL);
}

/*
 * Several processes starting at once on an empty directory all end up with
 * the same key: creation never replaces a key another process published.
 */
static void
test_concurrent_create(void **state)
{
	enum { NPROC = 8 };
	struct fixture	*fx = *state;
	struct keys	*k;
	unsigned char	 pks[NPROC][crypto_sign_PUBLICKEYBYTES];
	int		 go[2], out[2], i, status, created_count = 0;
	pid_t		 pids[NPROC];
	char		 c;
	ssize_t		 n;
	size_t		 got;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(out), 0);
	for (i = 0; i < NPROC; i++) {
		pids[i] = fork();
		assert_true(pids[i] != -1);
		if (pids[i] == 0) {
			unsigned char	 msg[1 + crypto_sign_PUBLICKEYBYTES];
			bool		 created = false;

			close(go[1]);
			close(out[0]);
			/* Wait for "go": EOF when the parent closes it. */
			if (read(go[0], &c, 1) < 0)
				_exit(1);
			k = NULL;
			if (keys_load_or_create(fx->dir, &k, &created) != 0)
				_exit(1);
			msg[0] = created ? 1 : 0;
			memcpy(msg + 1, k->pk, sizeof(k->pk));
			if (write(out[1], msg, sizeof(msg)) !=
			    (ssize_t)sizeof(msg))
				_exit(1);
			_exit(0);
		}
	}
	close(go[0]);
	close(out[1]);
	close(go[1]);	/* release every child at once */

	for (i = 0; i < NPROC; i++) {
		unsigned char	msg[1 + crypto_sign_PUBLICKEYBYTES];

		for (got = 0; got < sizeof(msg); got += (size_t)n) {
			n = read(out[0], msg + got, sizeof(msg) - got);
			assert_true(n > 0);
		}
		created_count += msg[0];
		memcpy(pks[i], msg + 1, sizeof(pks[i]));
	}
	close(out[0]);
	for (i = 0; i < NPROC; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(created_count, 1);
	for (i = 1; i < NPROC; i++)
		assert_memory_equal(pks[0], pks[i], sizeof(pks[0]));
	assert_int_equal(count_entries(fx->dir), 1);
}

/* keys_free accepts NULL (destructors do, per STYLE). */
static void
test_free_null(void **state)
{
	(void)state;
	keys_free(NULL);
}

/*
 * Encoding then decoding gives back the bytes for every length around the
 * 3-byte groups, and the alphabet is the URL-safe one without padding.
 */
static void
test_b64_round_trip(void **state)
{
	unsigned char	 in[100], out[100];
	char		*s;
	size_t		 len;
	static const unsigned char fbff[] = { 0xfb, 0xff };

	(void)state;
	assert_true(sodium_init() >= 0);
	randombytes_buf(in, sizeof(in));
	for (len = 0; len <= sizeof(in); len++) {
		assert_int_equal(keys_b64_encode(in, len, &s), 0);
		assert_int_equal(strlen(s), (len * 4 + 2) / 3);
		assert_null(strpbrk(s, "+/="));
		memset(out, 0xaa, sizeof(out));
		assert_int_equal(keys_b64_decode(s, out, len), 0);
		assert_memory_equal(in, out, len);
		free(s);
	}

	/* Standard base64 of fb ff is "+/8="; base64url unpadded is "-_8". */
	assert_int_equal(keys_b64_encode(fbff, sizeof(fbff), &s), 0);
	assert_string_equal(s, "-_8");
	free(s);
	assert_int_equal(keys_b64_encode(NULL, 0, &s), 0);
	assert_string_equal(s, "");
	free(s);
}

/*
 * Anything but the canonical unpadded base64url of exactly the wanted
 * length is -EINVAL, and the output buffer is left untouched.
 */
static void
test_b64_bad_input(void **state)
{
	static const char *const bad[] = {
		"+/8",		/* standard alphabet */
		"-_8=",		/* padding */
		"-_9",		/* non-zero padding bits: not canonical */
		" -_8",		/* whitespace */
		"-_8\n",
		"-_",		/* too short for 2 bytes */
		"-_8A",		/* too long for 2 bytes */
		"",
		"-*8",		/* outside the alphabet */
		"-_\xc3",	/* non-ASCII */
	};
	unsigned char	out[4];
	size_t		i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		memset(out, 0x5a, sizeof(out));
		if (keys_b64_decode(bad[i], out, 2) != -EINVAL)
			fail_msg("\"%s\" was accepted", bad[i]);
		assert_int_equal(out[0], 0x5a);
		assert_int_equal(out[1], 0x5a);
	}
	/* The right text for the wrong length is refused too. */
	assert_int_equal(keys_b64_decode("-_8", out, 3), -EINVAL);
	assert_int_equal(keys_b64_decode("-_8", out, 1), -EINVAL);
	assert_int_equal(keys_b64_decode(NULL, out, 2), -EINVAL);
	assert_int_equal(keys_b64_decode("-_8", out, 2), 0);
	assert_int_equal(out[0], 0xfb);
	assert_int_equal(out[1], 0xff);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_create_then_reload,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_file_format,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mode_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_size_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_mismatched_halves_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_regular_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_missing_dir,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent_create,
		    setup, teardown),
		cmocka_unit_test(test_free_null),
		cmocka_unit_test(test_b64_round_trip),
		cmocka_unit_test(test_b64_bad_input),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
