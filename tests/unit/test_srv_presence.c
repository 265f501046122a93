/*
 * test_srv_presence: ferry-server's presence table (server/srv_presence.c).
 * Guards issue 12's server side: a device's post replaces its list and
 * is refused whole when any part is malformed (naming it); the device is
 * the request's key, never a member of the body; a device never gets its
 * own entries back; a refresh with the same list does not wake anyone
 * (the revision stays), a change or a goodbye (an empty list) does; a
 * list another instance shared comes in with its expiry, an expired one
 * is dropped; the bounds per device and in all hold.
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

#include "srv_presence.h"

static int changes;

static void
changed(void *arg)
{
	changes++;
}

static int
put(struct srv_presence *p, const char *device, const char *body,
    int64_t now, char *why)
{
	char *list = NULL;
	int64_t exp = 0;
	int r;

	r = srv_presence_put(p, device, body, strlen(body), now, &list, &exp,
	    why, 256);
	free(list);
	return r;
}

#define ENTRY(user) "{\"app\":\"notes\",\"session\":\"s1\"," \
	"\"collection\":\"notes\",\"id\":\"n1\",\"state\":{\"u\":\"" user \
	"\"},\"since_ms\":5,\"device\":\"FORGED\"}"

static void
test_put_reply_and_goodbye(void **unused)
{
	struct srv_presence *p;
	char why[256], *text;
	int64_t rev;

	changes = 0;
	assert_int_equal(srv_presence_new(NULL, changed, NULL, &p), 0);
	assert_int_equal(put(p, "DEVA", "{\"ttl_ms\":3000,\"device_name\":"
	    "\"laptop\",\"entries\":[" ENTRY("ana") "]}", 1000, why), 0);
	assert_int_equal(changes, 1);
	rev = srv_presence_rev(p);
	/* B sees A's entry, under A's key, not the forged one. */
	text = srv_presence_reply(p, "DEVB");
	assert_non_null(strstr(text, "\"device\":\"DEVA\""));
	assert_null(strstr(text, "FORGED"));
	assert_non_null(strstr(text, "\"device_name\":\"laptop\""));
	free(text);
	/* A does not get its own back. */
	text = srv_presence_reply(p, "DEVA");
	assert_non_null(strstr(text, "{\"entries\":[],\"rev\":"));
	free(text);
	/* A refresh: no wake-up. */
	assert_int_equal(put(p, "DEVA", "{\"ttl_ms\":3000,\"device_name\":"
	    "\"laptop\",\"entries\":[" ENTRY("ana") "]}", 2000, why), 0);
	assert_int_equal(srv_presence_rev(p), rev);
	assert_int_equal(changes, 1);
	/* A change, then a goodbye: each wakes. */
	assert_int_equal(put(p, "DEVA", "{\"ttl_ms\":3000,\"entries\":["
	    ENTRY("bo") "]}", 2000, why), 0);
	assert_int_equal(changes, 2);
	assert_int_equal(put(p, "DEVA", "{\"ttl_ms\":3000,\"entries\":[]}",
	    2000, why), 0);
	assert_int_equal(changes, 3);
	text = srv_presence_reply(p, "DEVB");
	assert_non_null(strstr(text, "{\"entries\":[],"));
	free(text);
	srv_presence_free(p);
}

static void
test_malformed_refused_whole(void **unused)
{
	struct srv_presence *p;
	char why[256], big[1200], body[1600];

	changes = 0;
	assert_int_equal(srv_presence_new(NULL, changed, NULL, &p), 0);
	assert_int_equal(put(p, "D", "nope", 0, why), -EINVAL);
	assert_int_equal(put(p, "D", "{\"ttl_ms\":10,\"entries\":[]}", 0,
	    why), -EINVAL);
	assert_non_null(strstr(why, "ttl_ms"));
	assert_int_equal(put(p, "D", "{\"ttl_ms\":3000,\"entries\":["
	    ENTRY("ana") ",{\"app\":\"x\",\"session\":\"s\",\"collection\":"
	    "\"bad name\",\"state\":{},\"since_ms\":1}]}", 0, why), -EINVAL);
	assert_non_null(strstr(why, "entries[1]"));
	memset(big, 'x', sizeof big - 1);
	big[sizeof big - 1] = '\0';
	snprintf(body, sizeof body, "{\"ttl_ms\":3000,\"entries\":[{\"app\":"
	    "\"x\",\"session\":\"s\",\"collection\":\"c\",\"state\":{\"s\":"
	    "\"%s\"},\"since_ms\":1}]}", big);
	assert_int_equal(put(p, "D", body, 0, why), -EINVAL);
	assert_non_null(strstr(why, "limit is 1024"));
	/* Nothing of any of them was kept. */
	assert_int_equal(changes, 0);
	srv_presence_free(p);
}

static void
test_import_and_expiry(void **unused)
{
	struct srv_presence *p;
	char *text;

	changes = 0;
	assert_int_equal(srv_presence_new(NULL, changed, NULL, &p), 0);
	assert_int_equal(srv_presence_import(p, "OTHER", "[" ENTRY("cy") "]",
	    5000, 1000), 0);
	assert_int_equal(changes, 1);
	text = srv_presence_reply(p, "ME");
	assert_non_null(strstr(text, "\"u\":\"cy\""));
	free(text);
	/* The same list again: nothing; expired: gone. */
	assert_int_equal(srv_presence_import(p, "OTHER", "[" ENTRY("cy") "]",
	    6000, 1000), 0);
	assert_int_equal(changes, 1);
	assert_int_equal(srv_presence_import(p, "OTHER", "[" ENTRY("cy") "]",
	    900, 1000), 0);
	assert_int_equal(changes, 2);
	/* A full reload drops devices no longer in the store. */
	assert_int_equal(srv_presence_import(p, "X", "[" ENTRY("x") "]",
	    5000, 1000), 0);
	srv_presence_import_begin(p);
	srv_presence_import_end(p);
	text = srv_presence_reply(p, "ME");
	assert_non_null(strstr(text, "{\"entries\":[],"));
	free(text);
	assert_int_equal(srv_presence_import(p, "Y", "not json", 5000, 1000),
	    -EINVAL);
	srv_presence_free(p);
}

static void
test_bounds(void **unused)
{
	struct srv_presence *p;
	char why[256], dev[32];
	char *body;
	size_t len, i;
	int d;

	assert_int_equal(srv_presence_new(NULL, NULL, NULL, &p), 0);
	/* One more than a device may hold. */
	len = 64 + (SRV_PRESENCE_PER_DEVICE + 1) * (sizeof ENTRY("a") + 16);
	body = malloc(len);
	strcpy(body, "{\"ttl_ms\":3000,\"entries\":[");
	for (i = 0; i <= SRV_PRESENCE_PER_DEVICE; i++)
		snprintf(body + strlen(body), len - strlen(body), "%s%s",
		    i > 0 ? "," : "", ENTRY("a"));
	strcat(body, "]}");
	assert_int_equal(put(p, "D", body, 0, why), -EINVAL);
	assert_non_null(strstr(why, "at most 256 per device"));
	/* Exactly as many: fine, until the table is full. */
	strcpy(body, "{\"ttl_ms\":3000,\"entries\":[");
	for (i = 0; i < SRV_PRESENCE_PER_DEVICE; i++)
		snprintf(body + strlen(body), len - strlen(body), "%s%s",
		    i > 0 ? "," : "", ENTRY("a"));
	strcat(body, "]}");
	for (d = 0; d < SRV_PRESENCE_TOTAL / SRV_PRESENCE_PER_DEVICE; d++) {
		snprintf(dev, sizeof dev, "D%d", d);
		assert_int_equal(put(p, dev, body, 0, why), 0);
	}
	assert_int_equal(put(p, "ONE-MORE", body, 0, why), -ENOSPC);
	/* A device already in may still replace its list. */
	assert_int_equal(put(p, "D0", body, 0, why), 0);
	free(body);
	srv_presence_free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_put_reply_and_goodbye),
		cmocka_unit_test(test_malformed_refused_whole),
		cmocka_unit_test(test_import_and_expiry),
		cmocka_unit_test(test_bounds),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
