/*
 * test_presence: ferryd's in-memory presence table (daemon/presence.c).
 * Guards the promises of issue 12 that live in the table: an entry ends at
 * its TTL unless set again and at once when its connection closes; every
 * bound (state size, entries per connection, entries in all, calls per
 * second) is refused with its name and changes nothing; a flood of
 * updates is coalesced so that watchers hear at most one per window, and
 * the one they hear last is the latest state; a departure is told only
 * for what was announced; a remote list replaces the remote entries,
 * telling what appeared, changed and went, and never lists our own.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "presence.h"

struct seen {
	int	appeared;	/* emits with gone false */
	int	gone;
	char	last_state[2048];
	char	last_collection[160];
};

static void
record(const struct presence_entry *e, bool gone, void *arg)
{
	struct seen *s = arg;

	if (gone)
		s->gone++;
	else
		s->appeared++;
	snprintf(s->last_state, sizeof s->last_state, "%s", e->state);
	snprintf(s->last_collection, sizeof s->last_collection, "%s",
	    e->collection);
}

static struct presence *
table(struct seen *s, int64_t ttl_ms)
{
	struct presence_limits lim;
	struct presence *p;

	memset(s, 0, sizeof *s);
	presence_limits_default(&lim, ttl_ms);
	assert_int_equal(presence_new(&lim, "DEVICEKEY", "laptop", record, s,
	    &p), 0);
	return p;
}

static int
set(struct presence *p, unsigned long conn, const char *id,
    const char *state, int64_t now)
{
	return presence_set(p, conn, "app", "notes", id, state, now, NULL,
	    NULL);
}

static void
test_ttl_expiry_and_refresh(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 3000);

	assert_int_equal(set(p, 1, "n1", "{\"u\":1}", 1000), 0);
	assert_int_equal(s.appeared, 1);
	/* A refresh with the same state: nothing to tell, a new TTL. */
	assert_int_equal(set(p, 1, "n1", "{\"u\":1}", 3500), 0);
	assert_int_equal(s.appeared, 1);
	assert_int_equal(presence_tick(p, 4500), 6500);
	assert_int_equal(presence_local_count(p), 1);
	assert_int_equal(s.gone, 0);
	/* Not set again: gone at the TTL, not before. */
	presence_tick(p, 6499);
	assert_int_equal(s.gone, 0);
	assert_int_equal(presence_tick(p, 6500), -1);
	assert_int_equal(s.gone, 1);
	assert_int_equal(presence_local_count(p), 0);
	presence_free(p);
}

static void
test_conn_gone_removes_only_its_entries(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 30000);
	json_t *who;

	assert_int_equal(set(p, 1, "n1", "{}", 0), 0);
	assert_int_equal(set(p, 1, NULL, "{}", 100), 0);
	assert_int_equal(set(p, 2, "n1", "{}", 0), 0);
	presence_conn_gone(p, 1);
	assert_int_equal(s.gone, 2);
	who = presence_who(p, "notes", "n1");
	assert_int_equal(json_array_size(who), 1);
	json_decref(who);
	/* Clearing: gone at once, and clearing what is not there is fine. */
	assert_int_equal(set(p, 2, "n1", NULL, 200), 0);
	assert_int_equal(set(p, 2, "n1", NULL, 300), 0);
	assert_int_equal(s.gone, 3);
	assert_int_equal(presence_local_count(p), 0);
	presence_free(p);
}

static void
test_bounds(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 30000);
	const char *name = NULL;
	int64_t max = 0, now = 0;
	char id[32], big[PRESENCE_STATE_MAX + 16];
	unsigned long conn;
	int i, r;

	/* State size: refused, nothing kept. */
	memset(big, 'x', sizeof big);
	memcpy(big, "{\"s\":\"", 6);
	strcpy(big + PRESENCE_STATE_MAX - 1, "\"}");
	assert_int_equal(strlen(big), PRESENCE_STATE_MAX + 1);
	assert_int_equal(set(p, 1, "n1", big, now), -EMSGSIZE);
	assert_int_equal(presence_local_count(p), 0);

	/* Entries per connection. */
	for (i = 0; i < PRESENCE_PER_CONN; i++) {
		snprintf(id, sizeof id, "d%d", i);
		assert_int_equal(set(p, 1, id, "{}", now += 20), 0);
	}
	r = presence_set(p, 1, "app", "notes", "one-more", "{}", now += 20,
	    &name, &max);
	assert_int_equal(r, -EDQUOT);
	assert_string_equal(name, "presence_entries");
	assert_int_equal(max, PRESENCE_PER_CONN);
	/* Changing one it holds is still fine. */
	assert_int_equal(set(p, 1, "d0", "{\"v\":2}", now += 20), 0);

	/* Entries in all, over many connections. */
	for (conn = 2; presence_local_count(p) < PRESENCE_TOTAL; conn++)
		for (i = 0; i < PRESENCE_PER_CONN &&
		    presence_local_count(p) < PRESENCE_TOTAL; i++) {
			snprintf(id, sizeof id, "d%d", i);
			assert_int_equal(set(p, conn, id, "{}", now), 0);
		}
	r = presence_set(p, conn + 1, "app", "notes", "x", "{}", now, &name,
	    &max);
	assert_int_equal(r, -EDQUOT);
	assert_string_equal(name, "presence_total");
	assert_int_equal(max, PRESENCE_TOTAL);
	presence_free(p);
}

static void
test_rate_limit(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 30000);
	const char *name = NULL;
	int64_t max = 0;
	int i, ok = 0, limited = 0, r;

	/* 1000 calls within the same millisecond: one second's worth. */
	for (i = 0; i < 1000; i++) {
		r = presence_set(p, 7, "app", "notes", "n1", "{}", 5000,
		    &name, &max);
		if (r == 0)
			ok++;
		else {
			assert_int_equal(r, -EDQUOT);
			assert_string_equal(name, "presence_rate");
			assert_int_equal(max, PRESENCE_RATE);
			limited++;
		}
	}
	assert_int_equal(ok, PRESENCE_RATE);
	assert_int_equal(limited, 1000 - PRESENCE_RATE);
	/* Another connection is not slowed by this one. */
	assert_int_equal(set(p, 8, "n1", "{}", 5000), 0);
	/* Half a second later, half the bucket is back. */
	for (ok = 0, i = 0; i < 1000; i++)
		if (set(p, 7, "n1", "{}", 5500) == 0)
			ok++;
	assert_int_equal(ok, PRESENCE_RATE / 2);
	presence_free(p);
}

static void
test_flood_is_coalesced_latest_wins(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 30000);
	char state[32];
	int64_t now = 10000, due;
	int i;

	/* 90 updates in 9 ms: the first is told at once, the rest wait. */
	for (i = 0; i < 90; i++) {
		snprintf(state, sizeof state, "{\"n\":%d}", i);
		assert_int_equal(set(p, 1, "n1", state, now + i / 10), 0);
	}
	assert_int_equal(s.appeared, 1);
	assert_string_equal(s.last_state, "{\"n\":0}");
	due = presence_tick(p, now + 20);
	assert_int_equal(due, now + PRESENCE_COALESCE_MS);
	assert_int_equal(s.appeared, 1);
	presence_tick(p, due);
	assert_int_equal(s.appeared, 2);
	assert_string_equal(s.last_state, "{\"n\":89}");
	/* Nothing more pending, and Who had the latest all along. */
	presence_tick(p, due + 1000);
	assert_int_equal(s.appeared, 2);
	presence_free(p);
}

static void
test_gone_only_if_announced(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 30000);

	assert_int_equal(set(p, 1, "a", "{}", 0), 0);	/* told */
	assert_int_equal(set(p, 1, "b", "{}", 10), 0);	/* waits */
	assert_int_equal(s.appeared, 1);
	presence_conn_gone(p, 1);
	assert_int_equal(s.gone, 1);
	assert_int_equal(presence_tick(p, 1000), -1);
	assert_int_equal(s.appeared, 1);
	presence_free(p);
}

static void
test_remote_replace(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 30000);
	json_t *l1, *l2, *who;

	l1 = json_loads("[{\"device\":\"OTHER\",\"device_name\":\"pc\","
	    "\"app\":\"notes\",\"session\":\"OTHER:1\",\"collection\":\"notes\","
	    "\"id\":\"n1\",\"state\":{\"u\":\"bo\"},\"since_ms\":5},"
	    "{\"device\":\"DEVICEKEY\",\"app\":\"x\",\"session\":\"DEVICEK:1\","
	    "\"collection\":\"notes\",\"state\":{},\"since_ms\":5},"
	    "{\"device\":\"OTHER\",\"app\":\"x\",\"session\":\"OTHER:2\","
	    "\"collection\":\"bad name\",\"state\":{},\"since_ms\":5}]", 0,
	    NULL);
	assert_non_null(l1);
	/* Ours and the malformed one are skipped. */
	assert_int_equal(presence_remote_replace(p, l1), 2);
	assert_int_equal(presence_remote_count(p), 1);
	assert_int_equal(s.appeared, 1);
	/* The same list again: nothing to tell. */
	assert_int_equal(presence_remote_replace(p, l1), 2);
	assert_int_equal(s.appeared, 1);
	who = presence_who(p, NULL, NULL);
	assert_int_equal(json_array_size(who), 1);
	assert_false(json_is_true(json_object_get(json_array_get(who, 0),
	    "local")));
	json_decref(who);
	/* A changed state is told; then an empty list: gone. */
	l2 = json_loads("[{\"device\":\"OTHER\",\"app\":\"notes\","
	    "\"session\":\"OTHER:1\",\"collection\":\"notes\",\"id\":\"n1\","
	    "\"state\":{\"u\":\"cy\"},\"since_ms\":5}]", 0, NULL);
	assert_int_equal(presence_remote_replace(p, l2), 0);
	assert_int_equal(s.appeared, 2);
	assert_string_equal(s.last_state, "{\"u\":\"cy\"}");
	assert_int_equal(presence_remote_replace(p, NULL), 0);
	assert_int_equal(s.gone, 1);
	assert_int_equal(presence_remote_count(p), 0);
	json_decref(l1);
	json_decref(l2);
	presence_free(p);
}

static void
test_local_list_for_the_remote(void **unused)
{
	struct seen s;
	struct presence *p = table(&s, 30000);
	uint64_t gen;
	json_t *l;

	gen = presence_local_gen(p);
	assert_int_equal(set(p, 1, "n1", "{\"u\":1}", 0), 0);
	assert_true(presence_local_gen(p) > gen);
	l = presence_local_json(p);
	assert_int_equal(json_array_size(l), 1);
	assert_string_equal(json_string_value(json_object_get(
	    json_array_get(l, 0), "device")), "DEVICEKEY");
	assert_null(json_object_get(json_array_get(l, 0), "local"));
	json_decref(l);
	presence_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ttl_expiry_and_refresh),
		cmocka_unit_test(test_conn_gone_removes_only_its_entries),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_rate_limit),
		cmocka_unit_test(test_flood_is_coalesced_latest_wins),
		cmocka_unit_test(test_gone_only_if_announced),
		cmocka_unit_test(test_remote_replace),
		cmocka_unit_test(test_local_list_for_the_remote),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
