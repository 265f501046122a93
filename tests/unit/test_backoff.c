/*
 * test_backoff: the retry delays are full jitter under an exponential,
 * capped ceiling: never above min(cap, base * 2^n), spread over the whole
 * range (not all at the ceiling, not all at zero), and back to the base
 * after a reset.  A retry storm or a stuck minute-long wait would slip past
 * a test that only checks "some delay".
 */
#include "autoconfig.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>
#include <sodium.h>

#include "backoff.h"

static void
test_ceiling_doubles_then_caps(void **state)
{
	struct backoff b;
	int64_t want[] = { 500, 1000, 2000, 4000, 8000, 16000, 32000, 60000,
	    60000, 60000 };
	size_t i;

	backoff_init(&b, 500, 60000);
	for (i = 0; i < sizeof want / sizeof want[0]; i++) {
		assert_int_equal(backoff_ceiling(&b), want[i]);
		assert_true(backoff_next(&b) <= want[i]);
	}
	backoff_reset(&b);
	assert_int_equal(backoff_ceiling(&b), 500);
}

/* Full jitter: uniform over [0, ceiling], so both halves get hits. */
static void
test_full_jitter_spread(void **state)
{
	struct backoff b;
	int low = 0, high = 0, i;
	int64_t d;

	for (i = 0; i < 2000; i++) {
		backoff_init(&b, 1000, 1000);
		d = backoff_next(&b);
		assert_true(d >= 0 && d <= 1000);
		if (d < 500)
			low++;
		else
			high++;
	}
	/* Binomial(2000, 0.5): outside 800..1200 is astronomically rare. */
	assert_true(low > 800 && low < 1200);
	assert_true(high > 800 && high < 1200);
}

/* Many failures never overflow or exceed the cap. */
static void
test_many_failures(void **state)
{
	struct backoff b;
	int i;

	backoff_init(&b, 1, 60000);
	for (i = 0; i < 10000; i++)
		assert_true(backoff_next(&b) <= 60000);
	assert_int_equal(backoff_ceiling(&b), 60000);
}

/* Nonsense settings are made sane, not trusted. */
static void
test_bad_settings(void **state)
{
	struct backoff b;

	backoff_init(&b, 0, -5);
	assert_true(b.base_ms >= 1);
	assert_true(b.cap_ms >= b.base_ms);
	assert_true(backoff_next(&b) <= b.cap_ms);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ceiling_doubles_then_caps),
		cmocka_unit_test(test_full_jitter_spread),
		cmocka_unit_test(test_many_failures),
		cmocka_unit_test(test_bad_settings),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
