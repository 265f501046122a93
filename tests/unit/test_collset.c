/*
 * test_collset: selective sync's sets and pull filters (lib/collset).
 *
 * Guards the promise of issue 13 that a collection added to the set is
 * pulled from its start while the collections already synced are not
 * pulled again (they keep the cursor they had reached as their floor),
 * that a collection removed is no longer asked for, that sets compare
 * equal whatever order and blanks they were written with, and that a bad
 * name is refused naming it.  A wrong floor here either re-pulls a whole
 * collection or silently skips part of the new one.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "collset.h"

/* move: filter and cursor after moving to set; "(none)" for no filter. */
static void
check_move(const char *filter, const char *set, int64_t cursor,
    const char *want_filter, int64_t want_cursor)
{
	char *f = NULL;
	int64_t c = -1;

	assert_int_equal(collset_move(filter, set, cursor, &f, &c), 0);
	assert_string_equal(f != NULL ? f : "(none)", want_filter);
	assert_int_equal(c, want_cursor);
	free(f);
}

/* Order, blanks and duplicates do not make two sets differ. */
static void
test_norm(void **state)
{
	char *s = NULL, why[256];

	(void)state;
	assert_int_equal(collset_norm(" todo , notes,todo", &s, why,
	    sizeof why), 0);
	assert_string_equal(s, "notes,todo");
	free(s);
	assert_int_equal(collset_norm("*", &s, why, sizeof why), 0);
	assert_string_equal(s, "*");
	free(s);
}

/* Bad sets are refused, naming the bad entry. */
static void
test_norm_bad(void **state)
{
	char *s = NULL, why[256];

	(void)state;
	assert_int_equal(collset_norm("notes,a/b", &s, why, sizeof why),
	    -EINVAL);
	assert_non_null(strstr(why, "'a/b'"));
	assert_int_equal(collset_norm("notes,,todo", &s, why, sizeof why),
	    -EINVAL);
	assert_non_null(strstr(why, "empty"));
	assert_int_equal(collset_norm("", &s, why, sizeof why), -EINVAL);
	assert_int_equal(collset_norm("notes,*", &s, why, sizeof why),
	    -EINVAL);
	assert_null(s);
}

static void
test_has(void **state)
{
	(void)state;
	assert_true(collset_has(NULL, "x"));
	assert_true(collset_has("*", "x"));
	assert_true(collset_has("a,notes,z", "notes"));
	assert_false(collset_has("a,notes,z", "note"));
	assert_false(collset_has("a,notes,z", "notes2"));
}

/* From everything to a subset: nothing to pull again, no floors. */
static void
test_move_narrow(void **state)
{
	(void)state;
	check_move(NULL, "c1,c2", 500, "c1,c2", 500);
	check_move("c1,c2,c3", "c1", 500, "c1", 500);
}

/* Adding a collection: back to 0, the others floored at the cursor. */
static void
test_move_add(void **state)
{
	(void)state;
	check_move("c1,c2", "c1,c2,c3", 500, "c1:500,c2:500,c3", 0);
	/* Adding another while the first catches up: floors kept. */
	check_move("c1:500,c2:500,c3", "c1,c2,c3,c4", 120,
	    "c1:500,c2:500,c3:120,c4", 0);
	/* Once the cursor is past every floor, the floors go. */
	check_move("c1:500,c2:500,c3", "c1,c2,c3", 800, "c1,c2,c3", 800);
	/* A first start with a set: nothing pulled yet. */
	check_move(NULL, "c1,c2", 0, "c1,c2", 0);
}

/* Back to every collection: the ones not synced come from the start. */
static void
test_move_all(void **state)
{
	(void)state;
	check_move("c1,c2", "*", 700, "c1:700,c2:700,*", 0);
	check_move("c1:700,c2:700,*", "*", 900, "(none)", 900);
	check_move(NULL, "*", 42, "(none)", 42);
}

/* A stored filter that does not parse is an error, not a guess. */
static void
test_move_corrupt(void **state)
{
	char *f = NULL;
	int64_t c;

	(void)state;
	assert_int_equal(collset_move("c1:x", "c1", 5, &f, &c), -EINVAL);
	assert_int_equal(collset_move("c/1", "c1", 5, &f, &c), -EINVAL);
	assert_null(f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_norm),
		cmocka_unit_test(test_norm_bad),
		cmocka_unit_test(test_has),
		cmocka_unit_test(test_move_narrow),
		cmocka_unit_test(test_move_add),
		cmocka_unit_test(test_move_all),
		cmocka_unit_test(test_move_corrupt),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
