/*
 * test_auth: the request signature of remote protocol v1 (lib/auth.c).
 *
 * Guards three promises.  The signed message is exactly DESIGN's
 * "ferry-request-v1\n" METHOD "\n" PATH?QUERY "\n" TS "\n"
 * hex(sha256(body)), so any other implementation of the protocol
 * interoperates (pinned by re-deriving the signature by hand).  A signature
 * covers every part of the request: changing the method, the path, the
 * query, the timestamp, the body or the key makes it fail, and the clock
 * window is |ts - now| <= 300 exactly, both ways.  And the header is parsed
 * by RFC 9110's grammar (the scheme and parameter names in any case) and
 * otherwise strictly: anything but the scheme with key, ts and sig once
 * each is refused as malformed, and a refusal writes no key.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth.h"
#include "keys.h"
#include "record.h"

/* RFC 8032 section 7.1 seeds: two fixed, distinct devices. */
#define SEED1 "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define SEED2 "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"

#define NOW	INT64_C(1763800000)
#define BODY	"{\"changes\":[]}"

static struct keys k1, k2;

static void
key_from_seed(const char *seed_hex, struct keys *k)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	size_t len;

	assert_int_equal(sodium_hex2bin(seed, sizeof seed, seed_hex,
	    strlen(seed_hex), NULL, &len, NULL), 0);
	assert_int_equal(len, sizeof seed);
	assert_int_equal(crypto_sign_seed_keypair(k->pk, k->sk, seed), 0);
	assert_non_null(sodium_bin2base64(k->pub_b64, sizeof k->pub_b64,
	    k->pk, sizeof k->pk, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
}

static int
setup(void **state)
{
	(void)state;
	if (sodium_init() < 0)
		return -1;
	key_from_seed(SEED1, &k1);
	key_from_seed(SEED2, &k2);
	return 0;
}

static char *
make(const struct keys *k, const char *method, const char *pq,
    const char *body, int64_t ts)
{
	char *h = NULL;

	assert_int_equal(auth_header_make(k, method, pq, body,
	    body != NULL ? strlen(body) : 0, ts, &h), 0);
	assert_non_null(h);
	return h;
}

static int
verify(const char *h, const char *method, const char *pq, const char *body,
    int64_t now, const char **ret_reason)
{
	char key[KEYS_PUB_B64_LEN + 1];

	return auth_header_verify(h, method, pq, body,
	    body != NULL ? strlen(body) : 0, now, AUTH_MAX_SKEW, key,
	    ret_reason);
}

/* A signed request verifies and names its key; so does an empty body. */
static void
test_round_trip(void **state)
{
	char key[KEYS_PUB_B64_LEN + 1], want[256], *h;
	const char *reason = NULL;

	(void)state;
	h = make(&k1, "POST", "/v1/push", BODY, NOW);
	snprintf(want, sizeof want, "Ferry-Ed25519 key=\"%s\", ts=\"%" PRId64
	    "\", sig=\"", k1.pub_b64, NOW);
	assert_memory_equal(h, want, strlen(want));
	assert_int_equal(h[strlen(h) - 1], '"');
	memset(key, 'x', sizeof key);
	assert_int_equal(auth_header_verify(h, "POST", "/v1/push", BODY,
	    strlen(BODY), NOW, AUTH_MAX_SKEW, key, &reason), 0);
	assert_string_equal(key, k1.pub_b64);
	free(h);

	h = make(&k2, "GET", "/v1/changes?since=3&limit=10&wait=30", NULL,
	    NOW);
	assert_int_equal(auth_header_verify(h, "GET",
	    "/v1/changes?since=3&limit=10&wait=30", NULL, 0, NOW,
	    AUTH_MAX_SKEW, key, &reason), 0);
	assert_string_equal(key, k2.pub_b64);
	/* An empty body is the empty string: "" with len 0 is the same. */
	assert_int_equal(auth_header_verify(h, "GET",
	    "/v1/changes?since=3&limit=10&wait=30", "", 0, NOW,
	    AUTH_MAX_SKEW, key, &reason), 0);
	free(h);
}

/*
 * The wire format, derived by hand: sign DESIGN's message with the bare
 * primitive and get the header's signature (Ed25519 is deterministic).
 */
static void
test_message_format(void **state)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1], msg[512], want[512];
	char *h, *sig = NULL;

	(void)state;
	crypto_hash_sha256(hash, (const unsigned char *)BODY, strlen(BODY));
	sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
	snprintf(msg, sizeof msg, "ferry-request-v1\nPOST\n/v1/push?x=1\n%"
	    PRId64 "\n%s", NOW, hex);
	assert_int_equal(record_sign_bytes(&k1, NULL, msg, strlen(msg), &sig),
	    0);
	snprintf(want, sizeof want, "Ferry-Ed25519 key=\"%s\", ts=\"%" PRId64
	    "\", sig=\"%s\"", k1.pub_b64, NOW, sig);
	h = make(&k1, "POST", "/v1/push?x=1", BODY, NOW);
	assert_string_equal(h, want);
	free(h);
	free(sig);

	/* The empty body hashes the empty string (SHA-256 of ""). */
	snprintf(msg, sizeof msg, "ferry-request-v1\nGET\n/v1/info\n%" PRId64
	    "\ne3b0c44298fc1c149afbf4c8996fb924"
	    "27ae41e4649b934ca495991b7852b855", NOW);
	assert_int_equal(record_sign_bytes(&k1, NULL, msg, strlen(msg), &sig),
	    0);
	h = make(&k1, "GET", "/v1/info", NULL, NOW);
	assert_non_null(strstr(h, sig));
	free(h);
	free(sig);
}

/* Every part of the request is covered by the signature. */
static void
test_tampered(void **state)
{
	const char *reason = NULL;
	char *h, *forged, *p;
	char other[512];

	(void)state;
	h = make(&k1, "POST", "/v1/push?a=1", BODY, NOW);
	assert_int_equal(verify(h, "POST", "/v1/push?a=1", BODY, NOW, &reason),
	    0);

	assert_int_equal(verify(h, "PUT", "/v1/push?a=1", BODY, NOW, &reason),
	    -EACCES);
	assert_string_equal(reason, "the request signature does not verify");
	reason = NULL;
	assert_int_equal(verify(h, "POST", "/v1/pusH?a=1", BODY, NOW,
	    &reason), -EACCES);
	assert_non_null(reason);
	assert_int_equal(verify(h, "POST", "/v1/push?a=2", BODY, NOW, NULL),
	    -EACCES);
	assert_int_equal(verify(h, "POST", "/v1/push", BODY, NOW, NULL),
	    -EACCES);
	assert_int_equal(verify(h, "POST", "/v1/push?a=1",
	    "{\"changes\":[ ]}", NOW, NULL), -EACCES);
	assert_int_equal(verify(h, "POST", "/v1/push?a=1", NULL, NOW, NULL),
	    -EACCES);

	/* The timestamp: one second later, still inside the window. */
	forged = strdup(h);
	assert_non_null(forged);
	p = strstr(forged, "ts=\"");
	assert_non_null(p);
	p += 4 + 9;		/* last digit of a ten-digit time */
	*p = (char)(*p == '9' ? '8' : *p + 1);
	assert_int_equal(verify(forged, "POST", "/v1/push?a=1", BODY, NOW,
	    NULL), -EACCES);
	free(forged);

	/* The key: the same signature claimed by another device. */
	p = strstr(h, "ts=");
	assert_non_null(p);
	snprintf(other, sizeof other, "Ferry-Ed25519 key=\"%s\", %s",
	    k2.pub_b64, p);
	assert_int_equal(verify(other, "POST", "/v1/push?a=1", BODY, NOW,
	    NULL), -EACCES);
	free(h);

	/* A change-record signature over the same bytes is no request one. */
	{
		unsigned char hash[crypto_hash_sha256_BYTES];
		char hex[crypto_hash_sha256_BYTES * 2 + 1], msg[256];
		char *sig = NULL;

		crypto_hash_sha256(hash, (const unsigned char *)"", 0);
		sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
		snprintf(msg, sizeof msg, "GET\n/v1/info\n%" PRId64 "\n%s",
		    NOW, hex);
		assert_int_equal(record_sign_bytes(&k1, RECORD_SIG_PREFIX, msg,
		    strlen(msg), &sig), 0);
		snprintf(other, sizeof other, "Ferry-Ed25519 key=\"%s\", "
		    "ts=\"%" PRId64 "\", sig=\"%s\"", k1.pub_b64, NOW, sig);
		assert_int_equal(verify(other, "GET", "/v1/info", NULL, NOW,
		    NULL), -EACCES);
		free(sig);
	}
}

/* |ts - now| <= 300 passes; 301 either way does not. */
static void
test_skew(void **state)
{
	const char *reason = NULL;
	char *h;

	(void)state;
	h = make(&k1, "GET", "/v1/info", NULL, NOW);
	assert_int_equal(verify(h, "GET", "/v1/info", NULL, NOW + 300, NULL),
	    0);
	assert_int_equal(verify(h, "GET", "/v1/info", NULL, NOW - 300, NULL),
	    0);
	assert_int_equal(verify(h, "GET", "/v1/info", NULL, NOW + 301,
	    &reason), -EACCES);
	assert_non_null(strstr(reason, "timestamp"));
	reason = NULL;
	assert_int_equal(verify(h, "GET", "/v1/info", NULL, NOW - 301,
	    &reason), -EACCES);
	assert_non_null(strstr(reason, "timestamp"));
	/* A zero window allows the very second only. */
	{
		char key[KEYS_PUB_B64_LEN + 1];

		assert_int_equal(auth_header_verify(h, "GET", "/v1/info", NULL,
		    0, NOW, 0, key, NULL), 0);
		assert_int_equal(auth_header_verify(h, "GET", "/v1/info", NULL,
		    0, NOW + 1, 0, key, NULL), -EACCES);
	}
	free(h);
}

/*
 * Write fmt into buf (1024 bytes) with %K, %T and %S replaced by key,
 * NOW and sig.
 */
static void
expand(char *buf, const char *fmt, const char *key, const char *sig)
{
	const char *f;
	char *o = buf;

	for (f = fmt; *f != '\0'; f++) {
		if (f[0] == '%' && f[1] == 'K') {
			o = stpcpy(o, key);
			f++;
		} else if (f[0] == '%' && f[1] == 'T') {
			o += sprintf(o, "%" PRId64, NOW);
			f++;
		} else if (f[0] == '%' && f[1] == 'S') {
			o = stpcpy(o, sig);
			f++;
		} else
			*o++ = *f;
	}
	*o = '\0';
}

/*
 * RFC 9110 section 11: the scheme and the parameter names are
 * case-insensitive, one or more spaces follow the scheme, "=" and ","
 * may have spaces and tabs around them, a value may be a token.  A
 * client that spells the header so must not be refused (it was, while
 * the scheme was compared byte for byte).
 */
static void
test_rfc_spellings(void **state)
{
	char sig[128], buf[1024];
	const char *p, *q;
	char *h;
	size_t i;
	const char *fmt[] = {
		"ferry-ed25519 key=\"%K\", ts=\"%T\", sig=\"%S\"",
		"FERRY-ED25519 key=\"%K\", ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519  key=\"%K\", ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 KEY=\"%K\", Ts=\"%T\", SIG=\"%S\"",
		"Ferry-Ed25519 key=%K, ts=%T, sig=%S",
		"Ferry-Ed25519 key = \"%K\" ,ts=\t\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\",\tts=\"%T\", sig=\"%S\" ",
	};

	(void)state;
	h = make(&k1, "GET", "/v1/info", NULL, NOW);
	p = strstr(h, "sig=\"") + 5;
	q = strchr(p, '"');
	snprintf(sig, sizeof sig, "%.*s", (int)(q - p), p);
	free(h);
	for (i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
		expand(buf, fmt[i], k1.pub_b64, sig);
		if (verify(buf, "GET", "/v1/info", NULL, NOW, NULL) != 0)
			fail_msg("refused: [%s]", buf);
	}
}

/* Headers that must be refused as malformed (-EINVAL), whatever follows. */
static void
test_malformed(void **state)
{
	char good[512], key_only[256], sig[128], buf[1024];
	const char *reason, *p, *q;
	char *h;
	size_t i;
	const char *fmt[] = {
		"",
		"Ferry-Ed25519",
		"Ferry-Ed25519 ",
		"Ferry-Ed25519x key=\"%K\", ts=\"%T\", sig=\"%S\"",
		"Bearer key=\"%K\", ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\"",
		"Ferry-Ed25519 key=\"%K\", sig=\"%S\"",
		"Ferry-Ed25519 ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", key=\"%K\", ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"%S\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"%S\", x=\"1\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"%S",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"%S\",",
		"Ferry-Ed25519 key=\"%K\" ts=\"%T\" sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\"; ts=\"%T\"; sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"+%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"0%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T.0\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"-1\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"1234567890123456789\", "
		    "sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K=\", ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%Kx\", ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"\", ts=\"%T\", sig=\"%S\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"%Sxx\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"abc\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"%S\\\"\"",
		"Ferry-Ed25519 key=\"%K\", ts=\"%T\", sig=\"a b\"",
	};

	(void)state;
	h = make(&k1, "GET", "/v1/info", NULL, NOW);
	snprintf(good, sizeof good, "%s", h);
	p = strstr(h, "sig=\"") + 5;
	q = strchr(p, '"');
	snprintf(sig, sizeof sig, "%.*s", (int)(q - p), p);
	snprintf(key_only, sizeof key_only, "%s", k1.pub_b64);
	free(h);
	assert_int_equal(verify(good, "GET", "/v1/info", NULL, NOW, NULL), 0);

	/* Order and spacing between parameters are free. */
	snprintf(buf, sizeof buf, "Ferry-Ed25519 sig=\"%s\",ts=\"%" PRId64
	    "\",   key=\"%s\"", sig, NOW, key_only);
	assert_int_equal(verify(buf, "GET", "/v1/info", NULL, NOW, NULL), 0);

	for (i = 0; i < sizeof fmt / sizeof fmt[0]; i++) {
		expand(buf, fmt[i], key_only, sig);
		reason = NULL;
		if (verify(buf, "GET", "/v1/info", NULL, NOW, &reason) !=
		    -EINVAL)
			fail_msg("accepted or misjudged: [%s]", buf);
		assert_non_null(reason);
	}

	/* No header at all. */
	reason = NULL;
	assert_int_equal(verify(NULL, "GET", "/v1/info", NULL, NOW, &reason),
	    -EINVAL);
	assert_non_null(strstr(reason, "no Authorization header"));
}

/* A refusal writes no key; a success writes no reason. */
static void
test_ret_untouched(void **state)
{
	char key[KEYS_PUB_B64_LEN + 1];
	const char *reason = "untouched";
	char *h;

	(void)state;
	h = make(&k1, "GET", "/v1/info", NULL, NOW);
	memset(key, 'z', sizeof key);
	assert_int_equal(auth_header_verify(h, "GET", "/v1/other", NULL, 0,
	    NOW, AUTH_MAX_SKEW, key, NULL), -EACCES);
	assert_int_equal(key[0], 'z');
	assert_int_equal(key[KEYS_PUB_B64_LEN], 'z');
	assert_int_equal(auth_header_verify(h, "GET", "/v1/info", NULL, 0,
	    NOW, AUTH_MAX_SKEW, key, &reason), 0);
	assert_string_equal(reason, "untouched");
	free(h);
}

/* Requests that cannot be signed (or checked) unambiguously. */
static void
test_bad_requests(void **state)
{
	char key[KEYS_PUB_B64_LEN + 1], *h = NULL;

	(void)state;
	assert_int_equal(auth_header_make(&k1, "get", "/v1/info", NULL, 0, NOW,
	    &h), -EINVAL);
	assert_int_equal(auth_header_make(&k1, "", "/v1/info", NULL, 0, NOW,
	    &h), -EINVAL);
	assert_int_equal(auth_header_make(&k1, "GET", "v1/info", NULL, 0, NOW,
	    &h), -EINVAL);
	assert_int_equal(auth_header_make(&k1, "GET", "/v1/in fo", NULL, 0,
	    NOW, &h), -EINVAL);
	assert_int_equal(auth_header_make(&k1, "GET", "/v1/info\nX", NULL, 0,
	    NOW, &h), -EINVAL);
	assert_int_equal(auth_header_make(&k1, "GET", "/v1/info", NULL, 3,
	    NOW, &h), -EINVAL);
	assert_int_equal(auth_header_make(&k1, "GET", "/v1/info", NULL, 0, -1,
	    &h), -EINVAL);
	assert_int_equal(auth_header_make(NULL, "GET", "/v1/info", NULL, 0,
	    NOW, &h), -EINVAL);
	assert_null(h);

	h = make(&k1, "GET", "/v1/info", NULL, NOW);
	/* A request line the verifier cannot rebuild is refused too. */
	assert_int_equal(auth_header_verify(h, "GET", "http://x/v1/info", NULL,
	    0, NOW, AUTH_MAX_SKEW, key, NULL), -EINVAL);
	assert_int_equal(auth_header_verify(h, "GET", "/v1/info", NULL, 5,
	    NOW, AUTH_MAX_SKEW, key, NULL), -EINVAL);
	free(h);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_message_format),
		cmocka_unit_test(test_tampered),
		cmocka_unit_test(test_skew),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_rfc_spellings),
		cmocka_unit_test(test_ret_untouched),
		cmocka_unit_test(test_bad_requests),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
