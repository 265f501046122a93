/*
 * test_config: ferryd's settings from the XDG environment and INI files.
 *
 * Guards: the defaults follow XDG (and ignore empty or relative variables)
 * and FERRY_SOCKET, so ferryd and ferryctl meet at the same socket; a full
 * valid file sets every key; each kind of mistake (unknown section, unknown
 * key, key outside a section, bad number, out of range, bad level, bad
 * path, bad URL, malformed line, over-long line) is refused with -EINVAL
 * and a message naming file, line, key and value, and leaves the settings
 * untouched; a missing file is fine unless it was named; a later file
 * overrides an earlier one key by key.
 */
#include "autoconfig.h"

#include <errno.h>
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

#include "config.h"
#include "log.h"

#define TEST_MAX_FILES	64

static char test_dir[256];
static char *test_files[TEST_MAX_FILES];
static int test_nfiles;

/* Write text to a new file name in the test directory; return its path. */
static const char *
write_file(const char *name, const char *text)
{
	char path[PATH_MAX];
	FILE *fp;

	assert_true(test_nfiles < TEST_MAX_FILES);
	snprintf(path, sizeof path, "%s/%s", test_dir, name);
	fp = fopen(path, "w");
	assert_non_null(fp);
	assert_int_equal(fputs(text, fp) >= 0, 1);
	assert_int_equal(fclose(fp), 0);
	test_files[test_nfiles] = strdup(path);
	assert_non_null(test_files[test_nfiles]);
	return test_files[test_nfiles++];
}

/* A controlled environment: nothing of the caller's leaks in. */
static void
clear_env(void)
{
	unsetenv("XDG_DATA_HOME");
	unsetenv("XDG_CONFIG_HOME");
	unsetenv("XDG_RUNTIME_DIR");
	unsetenv("FERRY_SOCKET");
	setenv("HOME", "/home/tester", 1);
}

static void
set_test_env(void)
{
	clear_env();
	setenv("XDG_DATA_HOME", "/xdg/data", 1);
	setenv("XDG_CONFIG_HOME", "/xdg/config", 1);
	setenv("XDG_RUNTIME_DIR", "/xdg/run", 1);
}

static int
setup(void **state)
{
	const char *tmp;
	int n;

	(void)state;
	tmp = getenv("TMPDIR");
	n = snprintf(test_dir, sizeof test_dir, "%s/test_config.XXXXXX",
	    tmp != NULL && *tmp != '\0' ? tmp : "/tmp");
	if (n < 0 || (size_t)n >= sizeof test_dir || mkdtemp(test_dir) == NULL)
		return -1;
	return 0;
}

static int
teardown(void **state)
{
	int i;

	(void)state;
	for (i = 0; i < test_nfiles; i++) {
		unlink(test_files[i]);
		free(test_files[i]);
	}
	test_nfiles = 0;
	return rmdir(test_dir) == 0 ? 0 : -1;
}

static void
assert_config_equal(const struct config *a, const struct config *b)
{
	assert_string_equal(a->data_dir, b->data_dir);
	assert_string_equal(a->socket_path, b->socket_path);
	assert_string_equal(a->device_name, b->device_name);
	if (a->remote_url == NULL || b->remote_url == NULL)
		assert_ptr_equal(a->remote_url, b->remote_url);
	else
		assert_string_equal(a->remote_url, b->remote_url);
	assert_int_equal(a->idle_timeout, b->idle_timeout);
	assert_int_equal(a->max_connections, b->max_connections);
	assert_int_equal(a->backoff_max, b->backoff_max);
	assert_int_equal(a->log_level, b->log_level);
}

/* Defaults come from the XDG variables and the host name. */
static void
test_defaults_xdg(void **state)
{
	struct config c;
	char host[HOST_NAME_MAX + 1];

	(void)state;
	set_test_env();
	assert_int_equal(config_defaults(&c), 0);
	assert_string_equal(c.data_dir, "/xdg/data/ferry");
	assert_string_equal(c.socket_path, "/xdg/run/ferry/ferryd.sock");
	assert_int_equal(gethostname(host, sizeof host), 0);
	host[sizeof host - 1] = '\0';
	assert_string_equal(c.device_name, host);
	assert_null(c.remote_url);
	assert_int_equal(c.idle_timeout, 600);
	assert_int_equal(c.max_connections, 1024);
	assert_int_equal(c.backoff_max, 60);
	assert_int_equal(c.log_level, LOG_INFO);
	config_free(&c);
	assert_null(c.data_dir);
	config_free(&c);	/* twice is harmless */
	config_free(NULL);
}

/*
 * Without XDG variables (or with empty or relative ones, which the XDG
 * specification says to ignore) the data directory is under $HOME and the
 * socket in /run/user/<uid> if it is ours, else in the data directory.
 */
static void
test_defaults_home(void **state)
{
	struct config c;
	char run[64], want[128];
	struct stat st;

	(void)state;
	clear_env();
	setenv("XDG_DATA_HOME", "", 1);
	setenv("XDG_RUNTIME_DIR", "relative/run", 1);
	assert_int_equal(config_defaults(&c), 0);
	assert_string_equal(c.data_dir, "/home/tester/.local/share/ferry");
	snprintf(run, sizeof run, "/run/user/%lu", (unsigned long)getuid());
	if (stat(run, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_uid == getuid())
		snprintf(want, sizeof want, "%s/ferry/ferryd.sock", run);
	else
		snprintf(want, sizeof want,
		    "/home/tester/.local/share/ferry/ferryd.sock");
	assert_string_equal(c.socket_path, want);
	config_free(&c);
}

/* FERRY_SOCKET, which the client also reads, names the default socket. */
static void
test_defaults_ferry_socket(void **state)
{
	struct config c;

	(void)state;
	set_test_env();
	setenv("FERRY_SOCKET", "/elsewhere/f.sock", 1);
	assert_int_equal(config_defaults(&c), 0);
	assert_string_equal(c.socket_path, "/elsewhere/f.sock");
	config_free(&c);
	setenv("FERRY_SOCKET", "", 1);
	assert_int_equal(config_defaults(&c), 0);
	assert_string_equal(c.socket_path, "/xdg/run/ferry/ferryd.sock");
	config_free(&c);
}

/* With no HOME and no XDG variable there is no data directory: -ENOENT. */
static void
test_defaults_no_home(void **state)
{
	struct config c;

	(void)state;
	clear_env();
	unsetenv("HOME");
	memset(&c, 0xa5, sizeof c);
	assert_int_equal(config_defaults(&c), -ENOENT);
	assert_int_equal(c.idle_timeout, (int)0xa5a5a5a5);	/* untouched */
	assert_null(config_default_path());
}

/* The default file is under XDG_CONFIG_HOME, else ~/.config. */
static void
test_default_path(void **state)
{
	char *p;

	(void)state;
	set_test_env();
	p = config_default_path();
	assert_string_equal(p, "/xdg/config/ferry/ferryd.conf");
	free(p);
	clear_env();
	p = config_default_path();
	assert_string_equal(p, "/home/tester/.config/ferry/ferryd.conf");
	free(p);
}

/* A file setting every key, with comments, blank and indented lines. */
static void
test_full_file(void **state)
{
	struct config c;
	const char *path;
	char *err = NULL;

	(void)state;
	set_test_env();
	path = write_file("full.conf",
	    "; ferryd settings\n"
	    "# another comment style\n"
	    "\n"
	    "[ferryd]\n"
	    "data_dir = /srv/ferry/data   ; inline comment\n"
	    "socket = ~/ferry.sock\n"
	    "  device_name = Ann's laptop\n"
	    "\tidle_timeout = 0\n"
	    "max_connections = 16\n"
	    "log_level = debug\n"
	    "\n"
	    "[remote]\n"
	    "url = https://sync.example.org:8765\n"
	    "backoff_max = 300\n");
	assert_int_equal(config_defaults(&c), 0);
	assert_int_equal(config_load(&c, path, true, &err), 0);
	assert_null(err);
	assert_string_equal(c.data_dir, "/srv/ferry/data");
	assert_string_equal(c.socket_path, "/home/tester/ferry.sock");
	assert_string_equal(c.device_name, "Ann's laptop");
	assert_int_equal(c.idle_timeout, 0);
	assert_int_equal(c.max_connections, 16);
	assert_int_equal(c.log_level, LOG_DEBUG);
	assert_string_equal(c.remote_url, "https://sync.example.org:8765");
	assert_int_equal(c.backoff_max, 300);
	config_free(&c);
}

/* Aliases of log levels, and the range ends, are accepted. */
static void
test_levels_and_bounds(void **state)
{
	static const struct {
		const char *text;
		int level;
	} levels[] = {
		{ "err", LOG_ERR }, { "error", LOG_ERR },
		{ "warning", LOG_WARNING }, { "warn", LOG_WARNING },
		{ "notice", LOG_NOTICE }, { "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};
	struct config c;
	char text[64], name[32];
	const char *path;
	size_t i;

	(void)state;
	set_test_env();
	assert_int_equal(config_defaults(&c), 0);
	for (i = 0; i < sizeof levels / sizeof levels[0]; i++) {
		snprintf(text, sizeof text, "[ferryd]\nlog_level=%s\n",
		    levels[i].text);
		snprintf(name, sizeof name, "level%zu.conf", i);
		path = write_file(name, text);
		assert_int_equal(config_load(&c, path, true, NULL), 0);
		assert_int_equal(c.log_level, levels[i].level);
	}
	path = write_file("bounds.conf",
	    "[ferryd]\nidle_timeout = 86400\nmax_connections = 1\n"
	    "max_connections = 65536\n[remote]\nbackoff_max = 1\n");
	assert_int_equal(config_load(&c, path, true, NULL), 0);
	assert_int_equal(c.idle_timeout, 86400);
	assert_int_equal(c.max_connections, 65536);
	assert_int_equal(c.backoff_max, 1);
	config_free(&c);
}

/*
 * Load text, expect -EINVAL and exactly "<path>:<want>", and the settings
 * exactly as before.
 */
static void
check_error(const char *name, const char *text, const char *want)
{
	struct config c, before;
	const char *path;
	char *err = NULL, expect[PATH_MAX + 256];

	set_test_env();
	path = write_file(name, text);
	assert_int_equal(config_defaults(&c), 0);
	assert_int_equal(config_defaults(&before), 0);
	assert_int_equal(config_load(&c, path, true, &err), -EINVAL);
	assert_non_null(err);
	snprintf(expect, sizeof expect, "%s:%s", path, want);
	assert_string_equal(err, expect);
	assert_config_equal(&c, &before);
	free(err);
	/* The message is optional. */
	assert_int_equal(config_load(&c, path, true, NULL), -EINVAL);
	config_free(&c);
	config_free(&before);
}

/* Each kind of mistake, with its message. */
static void
test_errors(void **state)
{
	(void)state;
	check_error("sect.conf", "[ferryd]\nidle_timeout = 5\n[remotes]\n"
	    "url = http://x\n",
	    "4: url: in unknown section [remotes]: 'http://x'");
	check_error("key.conf", "[ferryd]\ncolour = blue\n",
	    "2: colour: unknown key in [ferryd]: 'blue'");
	check_error("wrongsect.conf", "[remote]\ndata_dir = /x\n",
	    "2: data_dir: unknown key in [remote]: '/x'");
	check_error("nosect.conf", "; top\nidle_timeout = 5\n",
	    "2: idle_timeout: outside any section ([ferryd], [remote] or "
	    "[sync]): '5'");
	check_error("colls.conf", "[sync]\ncollections = notes, a/b\n",
	    "2: collections: not collection names (1-128 bytes of A-Z a-z 0-9 "
	    ". _ -) separated by commas, nor *: 'notes, a/b'");
	check_error("star.conf", "[sync]\ncollections = notes, *\n",
	    "2: collections: '*' (every collection) cannot be given with "
	    "names: 'notes, *'");
	check_error("nan.conf", "[ferryd]\n\n\nidle_timeout = x\n",
	    "4: idle_timeout: not a number: 'x'");
	check_error("trail.conf", "[ferryd]\nidle_timeout = 10s\n",
	    "2: idle_timeout: not a number: '10s'");
	check_error("empty.conf", "[ferryd]\nmax_connections =\n",
	    "2: max_connections: not a number: ''");
	check_error("plus.conf", "[remote]\nbackoff_max = +5\n",
	    "2: backoff_max: not a number: '+5'");
	check_error("low.conf", "[ferryd]\nmax_connections = 0\n",
	    "2: max_connections: out of range 1-65536: '0'");
	check_error("high.conf", "[ferryd]\nidle_timeout = 86401\n",
	    "2: idle_timeout: out of range 0-86400: '86401'");
	check_error("neg.conf", "[remote]\nbackoff_max = -1\n",
	    "2: backoff_max: out of range 1-86400: '-1'");
	check_error("huge.conf", "[ferryd]\nidle_timeout = 99999999999999999999\n",
	    "2: idle_timeout: out of range 0-86400: '99999999999999999999'");
	check_error("level.conf", "[ferryd]\nlog_level = loud\n",
	    "2: log_level: not one of err, warning, notice, info, debug: "
	    "'loud'");
	check_error("rel.conf", "[ferryd]\ndata_dir = data\n",
	    "2: data_dir: not an absolute path: 'data'");
	check_error("emptypath.conf", "[ferryd]\nsocket =\n",
	    "2: socket: empty: ''");
	check_error("longsock.conf", "[ferryd]\nsocket = /"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa\n",
	    "2: socket: longer than 107 bytes: '/"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaa'");
	check_error("device.conf", "[ferryd]\ndevice_name =\n",
	    "2: device_name: empty: ''");
	check_error("url.conf", "[remote]\nurl = ftp://example.org\n",
	    "2: url: not an http:// or https:// URL: 'ftp://example.org'");
	check_error("syntax.conf", "[ferryd]\nidle_timeout 5\n",
	    "2: not a [section] or a 'key = value' line: 'idle_timeout 5'");
	check_error("bracket.conf", "# x\n[ferryd\nidle_timeout = 5\n",
	    "2: not a [section] or a 'key = value' line: '[ferryd'");
	check_error("long.conf", "[ferryd]\ndevice_name = "
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
	    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\n",
	    "2: line longer than 198 bytes");
	check_error("indent-syntax.conf", "[ferryd]\n\t  junk\n",
	    "2: not a [section] or a 'key = value' line: 'junk'");
	/* The first mistake is the one reported, whatever its kind. */
	check_error("first.conf", "[ferryd]\nnonsense\nidle_timeout = x\n",
	    "2: not a [section] or a 'key = value' line: 'nonsense'");
	check_error("first2.conf", "[ferryd]\nidle_timeout = x\nnonsense\n",
	    "2: idle_timeout: not a number: 'x'");
}

/*
 * libinih's line buffer: a line of exactly 198 bytes (leading blanks and
 * the newline aside) is read whole, one byte more is refused rather than
 * silently split in two.
 */
static void
test_line_length(void **state)
{
	struct config c;
	const char *path;
	char text[512], *err = NULL;
	int n;

	(void)state;
	set_test_env();
	assert_int_equal(config_defaults(&c), 0);
	n = snprintf(text, sizeof text, "[ferryd]\n    data_dir = /");
	memset(text + n, 'x', 198 - 12);
	snprintf(text + n + 198 - 12, sizeof text - n - 198 + 12, "\n");
	path = write_file("len198.conf", text);
	assert_int_equal(config_load(&c, path, true, &err), 0);
	assert_int_equal(strlen(c.data_dir), 198 - 11);

	memset(text + n, 'x', 198 - 11);
	snprintf(text + n + 198 - 11, sizeof text - n - 198 + 11, "\n");
	path = write_file("len199.conf", text);
	assert_int_equal(config_load(&c, path, true, &err), -EINVAL);
	assert_non_null(strstr(err, ":2: line longer than 198 bytes"));
	free(err);
	config_free(&c);
}

/* A bad value late in a file does not let the earlier ones through. */
static void
test_error_applies_nothing(void **state)
{
	struct config c;
	const char *path;

	(void)state;
	set_test_env();
	path = write_file("partial.conf",
	    "[ferryd]\ndata_dir = /changed\nidle_timeout = 1\n"
	    "[remote]\nurl = http://x\nbackoff_max = 0\n");
	assert_int_equal(config_defaults(&c), 0);
	assert_int_equal(config_load(&c, path, false, NULL), -EINVAL);
	assert_string_equal(c.data_dir, "/xdg/data/ferry");
	assert_int_equal(c.idle_timeout, 600);
	assert_null(c.remote_url);
	config_free(&c);
}

/*
 * A missing file is nothing to worry about when it is the default one,
 * and an error when the user named it.
 */
static void
test_missing_file(void **state)
{
	struct config c, before;
	char path[PATH_MAX], want[PATH_MAX + 64];
	char *err = NULL;

	(void)state;
	set_test_env();
	snprintf(path, sizeof path, "%s/does-not-exist.conf", test_dir);
	assert_int_equal(config_defaults(&c), 0);
	assert_int_equal(config_defaults(&before), 0);

	assert_int_equal(config_load(&c, path, false, &err), 0);
	assert_null(err);
	assert_config_equal(&c, &before);

	assert_int_equal(config_load(&c, path, true, &err), -ENOENT);
	snprintf(want, sizeof want, "%s: cannot open: %s", path,
	    strerror(ENOENT));
	assert_string_equal(err, want);
	free(err);
	assert_config_equal(&c, &before);

	/* A directory is not a missing file, even when not named. */
	err = NULL;
	assert_int_equal(config_load(&c, test_dir, false, &err), -EISDIR);
	assert_non_null(err);
	free(err);
	config_free(&c);
	config_free(&before);
}

/*
 * Files read one after the other: each overrides what it sets and leaves
 * the rest, and an empty url clears the remote again.
 */
static void
test_later_file_overrides(void **state)
{
	struct config c;
	const char *first, *second, *third;

	(void)state;
	set_test_env();
	first = write_file("first-of-two.conf",
	    "[ferryd]\ndata_dir = /one\nidle_timeout = 10\nlog_level = warning\n"
	    "[remote]\nurl = http://one:1\n");
	second = write_file("second-of-two.conf",
	    "[ferryd]\nidle_timeout = 20\nidle_timeout = 30\n"
	    "[remote]\nbackoff_max = 5\n");
	third = write_file("third.conf", "[remote]\nurl =\n");

	assert_int_equal(config_defaults(&c), 0);
	assert_int_equal(config_load(&c, first, true, NULL), 0);
	assert_int_equal(config_load(&c, second, true, NULL), 0);
	assert_string_equal(c.data_dir, "/one");
	assert_int_equal(c.idle_timeout, 30);
	assert_int_equal(c.log_level, LOG_WARNING);
	assert_string_equal(c.remote_url, "http://one:1");
	assert_int_equal(c.backoff_max, 5);
	assert_int_equal(c.max_connections, 1024);

	assert_int_equal(config_load(&c, third, true, NULL), 0);
	assert_true(c.remote_url == NULL || *c.remote_url == '\0');
	assert_string_equal(c.data_dir, "/one");
	config_free(&c);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_xdg),
		cmocka_unit_test(test_defaults_home),
		cmocka_unit_test(test_defaults_ferry_socket),
		cmocka_unit_test(test_defaults_no_home),
		cmocka_unit_test(test_default_path),
		cmocka_unit_test(test_full_file),
		cmocka_unit_test(test_levels_and_bounds),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_line_length),
		cmocka_unit_test(test_error_applies_nothing),
		cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_later_file_overrides),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
