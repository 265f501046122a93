/*
 * test_util: util_dir_open_private, the check ferryd makes on its socket
 * and data directories (issue 8, break 7: a directory another user made,
 * or a link to one, was used blindly, so that user could plant the socket
 * clients talk to).  A symbolic link is refused even when written with a
 * trailing slash (which would make open(2) follow it), a directory owned
 * by another uid or open to group or others is refused with a distinct
 * error, and a private one is returned open.  Another uid is simulated by
 * asking for one the directory does not have, so this runs without root.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "util.h"

struct fixture {
	char	 root[64];
	char	 path[PATH_MAX];
};

static int
setup(void **state)
{
	struct fixture *f;

	if ((f = calloc(1, sizeof *f)) == NULL)
		return -1;
	snprintf(f->root, sizeof f->root, "/tmp/test_util.XXXXXX");
	if (mkdtemp(f->root) == NULL) {
		free(f);
		return -1;
	}
	*state = f;
	return 0;
}

/* f->path = root/name */
static const char *
at(struct fixture *f, const char *name)
{
	snprintf(f->path, sizeof f->path, "%s/%s", f->root, name);
	return f->path;
}

/* Remove what the tests may have made (each test makes a few of these). */
static int
teardown(void **state)
{
	static const char *names[] = { "mine", "real", "link", "open",
	    "theirs", "file" };
	struct fixture *f = *state;
	size_t i;

	for (i = 0; i < sizeof names / sizeof names[0]; i++)
		if (unlink(at(f, names[i])) == -1)
			(void)rmdir(f->path);
	if (rmdir(f->root) == -1)
		return -1;
	free(f);
	return 0;
}

static void
test_private_dir_is_opened(void **state)
{
	struct fixture *f = *state;
	struct stat st, st2;
	int fd;

	assert_int_equal(mkdir(at(f, "mine"), 0700), 0);
	fd = util_dir_open_private(at(f, "mine"), geteuid(), &st);
	assert_true(fd >= 0);
	/* The descriptor is the directory checked. */
	assert_int_equal(fstat(fd, &st2), 0);
	assert_true(st.st_ino == st2.st_ino && st.st_dev == st2.st_dev);
	assert_true(S_ISDIR(st2.st_mode));
	assert_true(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	/* Trailing slashes name the same directory. */
	fd = util_dir_open_private(at(f, "mine//"), geteuid(), NULL);
	assert_true(fd >= 0);
	close(fd);
}

static void
test_symlink_is_refused(void **state)
{
	struct fixture *f = *state;
	char target[PATH_MAX];
	struct stat st;

	assert_int_equal(mkdir(at(f, "real"), 0700), 0);
	snprintf(target, sizeof target, "%s", f->path);
	assert_int_equal(symlink(target, at(f, "link")), 0);
	assert_int_equal(util_dir_open_private(at(f, "link"), geteuid(), &st),
	    -ELOOP);
	assert_true(S_ISLNK(st.st_mode));
	/* "link/" would follow the link in open(2). */
	assert_int_equal(util_dir_open_private(at(f, "link/"), geteuid(),
	    NULL), -ELOOP);
}

static void
test_open_modes_are_refused(void **state)
{
	struct fixture *f = *state;
	static const mode_t modes[] = { 0755, 0750, 0701, 0710, 0707, 0770 };
	struct stat st;
	size_t i;

	assert_int_equal(mkdir(at(f, "open"), 0700), 0);
	for (i = 0; i < sizeof modes / sizeof modes[0]; i++) {
		assert_int_equal(chmod(at(f, "open"), modes[i]), 0);
		assert_int_equal(util_dir_open_private(f->path, geteuid(),
		    &st), -EACCES);
		assert_int_equal(st.st_mode & 0777, modes[i]);
	}
}

static void
test_other_owner_is_refused(void **state)
{
	struct fixture *f = *state;
	struct stat st;

	assert_int_equal(mkdir(at(f, "theirs"), 0700), 0);
	assert_int_equal(util_dir_open_private(f->path, geteuid() + 1, &st),
	    -EPERM);
	assert_int_equal(st.st_uid, geteuid());
}

static void
test_not_a_directory(void **state)
{
	struct fixture *f = *state;
	int fd;

	fd = open(at(f, "file"), O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(util_dir_open_private(f->path, geteuid(), NULL),
	    -ENOTDIR);
	assert_int_equal(util_dir_open_private(at(f, "missing"), geteuid(),
	    NULL), -ENOENT);
	assert_int_equal(util_dir_open_private("", geteuid(), NULL), -ENOENT);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_private_dir_is_opened,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_symlink_is_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_open_modes_are_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_other_owner_is_refused,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_not_a_directory,
		    setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
