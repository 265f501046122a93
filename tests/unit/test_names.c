/*
 * test_names: the rules for collection and id names (DESIGN "Data model").
 *
 * Guards the promise that anything outside 1-128 bytes of [A-Za-z0-9._-]
 * (plus ':' and '@' in ids) is refused with a reason that names the problem,
 * and that every name inside those rules is accepted.  A name that slips
 * through here ends up in SQLite keys, URL paths and signed records.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "names.h"

/* Every byte value that either kind of name accepts, and the id extras. */
static const char common_ok[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-";
static const char id_extra[] = ":@";

static void
fill(char *buf, size_t n, char c)
{
	memset(buf, c, n);
	buf[n] = '\0';
}

/* A one-byte name and a name of exactly 128 bytes are the limits, and valid. */
static void
test_length_boundaries(void **state)
{
	char		 buf[NAMES_MAX + 2];
	const char	*reason = NULL;

	(void)state;
	fill(buf, 1, 'a');
	assert_int_equal(names_check_collection(buf, &reason), 0);
	assert_int_equal(names_check_id(buf, &reason), 0);
	assert_null(reason);	/* not written on success */

	fill(buf, NAMES_MAX, 'x');
	assert_int_equal(names_check_collection(buf, NULL), 0);
	assert_int_equal(names_check_id(buf, NULL), 0);

	/* 129 bytes: one too many, refused by both, with a length reason. */
	fill(buf, NAMES_MAX + 1, 'x');
	assert_int_equal(names_check_collection(buf, &reason), -EINVAL);
	assert_string_equal(reason, "is longer than 128 bytes");
	reason = NULL;
	assert_int_equal(names_check_id(buf, &reason), -EINVAL);
	assert_string_equal(reason, "is longer than 128 bytes");
}

/* The empty string and NULL are refused, each with its own reason. */
static void
test_empty_and_null(void **state)
{
	const char	*reason = NULL;

	(void)state;
	assert_int_equal(names_check_collection("", &reason), -EINVAL);
	assert_string_equal(reason, "is empty");
	assert_int_equal(names_check_id("", &reason), -EINVAL);
	assert_string_equal(reason, "is empty");
	assert_int_equal(names_check_collection(NULL, &reason), -EINVAL);
	assert_string_equal(reason, "is missing");
	assert_int_equal(names_check_id(NULL, NULL), -EINVAL);
}

/*
 * Every byte value 0x01-0xff is tried alone and in the middle of a name:
 * exactly the documented classes are accepted, for each kind of name.
 */
static void
test_every_byte(void **state)
{
	char	 one[2], mid[4];
	int	 c;
	int	 want_coll, want_id;

	(void)state;
	for (c = 1; c < 256; c++) {
		want_coll = strchr(common_ok, c) != NULL ? 0 : -EINVAL;
		want_id = want_coll == 0 || strchr(id_extra, c) != NULL ?
		    0 : -EINVAL;
		one[0] = (char)c;
		one[1] = '\0';
		mid[0] = 'a';
		mid[1] = (char)c;
		mid[2] = 'b';
		mid[3] = '\0';
		if (names_check_collection(one, NULL) != want_coll ||
		    names_check_collection(mid, NULL) != want_coll ||
		    names_check_id(one, NULL) != want_id ||
		    names_check_id(mid, NULL) != want_id)
			fail_msg("byte 0x%02x: wrong verdict", c);
	}
}

/* ':' and '@' are what an id may hold and a collection may not. */
static void
test_id_extras(void **state)
{
	const char	*reason = NULL;

	(void)state;
	assert_int_equal(names_check_id("user@example.org:note-1", NULL), 0);
	assert_int_equal(names_check_collection("a:b", &reason), -EINVAL);
	assert_string_equal(reason,
	    "contains byte 0x3a (':') at offset 1; "
	    "only A-Z a-z 0-9 . _ - are allowed");
	assert_int_equal(names_check_collection("a@b", NULL), -EINVAL);
}

/* A slash would split URL paths: refused, and the reason shows it. */
static void
test_slash(void **state)
{
	const char	*reason = NULL;

	(void)state;
	assert_int_equal(names_check_collection("a/b", &reason), -EINVAL);
	assert_string_equal(reason,
	    "contains byte 0x2f ('/') at offset 1; "
	    "only A-Z a-z 0-9 . _ - are allowed");
	assert_int_equal(names_check_id("/", &reason), -EINVAL);
	assert_string_equal(reason,
	    "contains byte 0x2f ('/') at offset 0; "
	    "only A-Z a-z 0-9 . _ - : @ are allowed");
}

/*
 * UTF-8 is refused byte-wise even when it is well-formed, and the reason
 * names the first non-ASCII byte without echoing it (it may not print).
 */
static void
test_utf8(void **state)
{
	const char	*reason = NULL;

	(void)state;
	/* "café": the é is 0xc3 0xa9. */
	assert_int_equal(names_check_id("caf\xc3\xa9", &reason), -EINVAL);
	assert_string_equal(reason,
	    "contains byte 0xc3 (non-ASCII) at offset 3; "
	    "only A-Z a-z 0-9 . _ - : @ are allowed");
	assert_int_equal(names_check_collection("\xe2\x82\xac", NULL),
	    -EINVAL);
	/* A lone continuation byte and an overlong '/' are no better. */
	assert_int_equal(names_check_collection("a\x80", NULL), -EINVAL);
	assert_int_equal(names_check_collection("\xc0\xaf", NULL), -EINVAL);
}

/* Spaces and control bytes are named in words, not echoed raw. */
static void
test_space_and_control(void **state)
{
	const char	*reason = NULL;

	(void)state;
	assert_int_equal(names_check_id("a b", &reason), -EINVAL);
	assert_string_equal(reason,
	    "contains byte 0x20 (space) at offset 1; "
	    "only A-Z a-z 0-9 . _ - : @ are allowed");
	assert_int_equal(names_check_collection("a\nb", &reason), -EINVAL);
	assert_string_equal(reason,
	    "contains byte 0x0a (control) at offset 1; "
	    "only A-Z a-z 0-9 . _ - are allowed");
	assert_int_equal(names_check_collection("a\x7f", NULL), -EINVAL);
}

/*
 * A name that is both too long and holds a bad byte reports the length;
 * an overlong string is never scanned past the limit.
 */
static void
test_length_reported_first(void **state)
{
	char		 buf[300];
	const char	*reason = NULL;

	(void)state;
	fill(buf, sizeof(buf) - 1, 'a');
	buf[200] = '/';
	assert_int_equal(names_check_id(buf, &reason), -EINVAL);
	assert_string_equal(reason, "is longer than 128 bytes");
}

/* Dots are plain bytes: ".", ".." and dotted names are valid by contract. */
static void
test_dots(void **state)
{
	(void)state;
	assert_int_equal(names_check_collection(".", NULL), 0);
	assert_int_equal(names_check_collection("..", NULL), 0);
	assert_int_equal(names_check_id("v1.2.3", NULL), 0);
	assert_int_equal(names_check_collection("_-.", NULL), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_length_boundaries),
		cmocka_unit_test(test_empty_and_null),
		cmocka_unit_test(test_every_byte),
		cmocka_unit_test(test_id_extras),
		cmocka_unit_test(test_slash),
		cmocka_unit_test(test_utf8),
		cmocka_unit_test(test_space_and_control),
		cmocka_unit_test(test_length_reported_first),
		cmocka_unit_test(test_dots),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
