/*
 * auth: make and check the Authorization header of remote protocol v1;
 * see auth.h for the format.
 *
 * Both sides build the signed message with the same function
 * (auth_message), so they cannot disagree on its bytes.  The verifier
 * parses the header completely before it looks at any value, decodes the
 * key, checks the clock window and only then runs Ed25519: a malformed
 * header costs no signature check, and a request is never half-accepted.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <sodium.h>

#include "auth.h"
#include "keys.h"
#include "record.h"

#define AUTH_VALUE_MAX	127	/* longest parameter value we accept */
#define AUTH_TS_DIGITS	18	/* keeps ts - now far from overflow */

enum {
	AUTH_P_KEY,
	AUTH_P_TS,
	AUTH_P_SIG,
	AUTH_P_COUNT
};

static const char *const auth_param_names[AUTH_P_COUNT] = {
	[AUTH_P_KEY] = "key",
	[AUTH_P_TS] = "ts",
	[AUTH_P_SIG] = "sig",
};

struct auth_params {
	char	value[AUTH_P_COUNT][AUTH_VALUE_MAX + 1];
	bool	seen[AUTH_P_COUNT];
};

/* A method is an upper-case token; a target an origin-form path. */
static int
auth_check_request(const char *method, const char *path_query)
{
	const char *p;

	if (method == NULL || *method == '\0' || path_query == NULL ||
	    path_query[0] != '/')
		return -EINVAL;
	for (p = method; *p != '\0'; p++)
		if (*p < 'A' || *p > 'Z')
			return -EINVAL;
	for (p = path_query; *p != '\0'; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			return -EINVAL;
	return 0;
}

/*
 * The signed message without the prefix (record_sign_bytes adds it):
 * METHOD "\n" PATH?QUERY "\n" TS "\n" hex(sha256(body)).  New malloc'd
 * buffer in *ret_msg, its length in *ret_len.  0 or -ENOMEM.
 */
static int
auth_message(const char *method, const char *path_query, const char *ts,
    const void *body, size_t len, char **ret_msg, size_t *ret_len)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char hex[crypto_hash_sha256_BYTES * 2 + 1];
	char *msg;
	size_t size;
	int n;

	crypto_hash_sha256(hash, len > 0 ? body : (const void *)"", len);
	sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
	size = strlen(method) + strlen(path_query) + strlen(ts) +
	    strlen(hex) + 4;
	if ((msg = malloc(size)) == NULL)
		return -ENOMEM;
	n = snprintf(msg, size, "%s\n%s\n%s\n%s", method, path_query, ts, hex);
	if (n < 0 || (size_t)n >= size) {
		free(msg);
		return -ENOMEM;
	}
	*ret_msg = msg;
	*ret_len = (size_t)n;
	return 0;
}

int
auth_header_make(const struct keys *k, const char *method,
    const char *path_query, const void *body, size_t len, int64_t ts,
    char **ret_header_value)
{
	char ts_text[32], *msg = NULL, *sig = NULL, *out = NULL;
	size_t mlen, size;
	int r;

	if (k == NULL || ret_header_value == NULL || ts < 0 ||
	    (body == NULL && len != 0))
		return -EINVAL;
	if ((r = auth_check_request(method, path_query)) < 0)
		return r;
	if (sodium_init() < 0)
		return -EIO;
	snprintf(ts_text, sizeof ts_text, "%" PRId64, ts);
	if ((r = auth_message(method, path_query, ts_text, body, len, &msg,
	    &mlen)) < 0)
		goto out;
	if ((r = record_sign_bytes(k, AUTH_SIG_PREFIX, msg, mlen, &sig)) < 0)
		goto out;
	size = sizeof AUTH_SCHEME + strlen(k->pub_b64) + strlen(ts_text) +
	    strlen(sig) + 32;
	if ((out = malloc(size)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	snprintf(out, size, "%s key=\"%s\", ts=\"%s\", sig=\"%s\"",
	    AUTH_SCHEME, k->pub_b64, ts_text, sig);
	*ret_header_value = out;
	r = 0;
out:
	free(msg);
	free(sig);
	return r;
}

/* RFC 9110 tchar: the bytes of a token. */
static bool
auth_is_tchar(char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

static const char *
auth_skip_ows(const char *s)
{
	while (*s == ' ' || *s == '\t')
		s++;
	return s;
}

/*
 * Parse the header into its three values.  -EINVAL with a reason for
 * anything but the grammar of auth.h (RFC 9110 section 11: the scheme and
 * the parameter names case-insensitive, values a token or a
 * quoted-string without escapes).
 */
static int
auth_parse(const char *h, struct auth_params *ret, const char **ret_reason)
{
	struct auth_params p;
	const char *s, *name;
	size_t nlen, vlen, slen = strlen(AUTH_SCHEME);
	bool quoted;
	int i;

	memset(&p, 0, sizeof p);
	s = h;
	if (strncasecmp(s, AUTH_SCHEME, slen) != 0 ||
	    (s[slen] != ' ' && s[slen] != '\0')) {
		*ret_reason = "the Authorization scheme is not "
		    AUTH_SCHEME;
		return -EINVAL;
	}
	s += slen;
	if (*s != ' ')
		goto malformed;
	while (*s == ' ')
		s++;
	for (;;) {
		name = s;
		while (auth_is_tchar(*s))
			s++;
		nlen = (size_t)(s - name);
		s = auth_skip_ows(s);
		if (nlen == 0 || *s++ != '=')
			goto malformed;
		s = auth_skip_ows(s);
		for (i = 0; i < AUTH_P_COUNT; i++)
			if (strlen(auth_param_names[i]) == nlen &&
			    strncasecmp(auth_param_names[i], name, nlen) == 0)
				break;
		if (i == AUTH_P_COUNT) {
			*ret_reason = "the Authorization header has an unknown "
			    "parameter (only key, ts and sig are allowed)";
			return -EINVAL;
		}
		if (p.seen[i]) {
			*ret_reason = "the Authorization header repeats a "
			    "parameter";
			return -EINVAL;
		}
		if ((quoted = *s == '"'))
			s++;
		vlen = 0;
		while (quoted ? *s != '"' : auth_is_tchar(*s)) {
			/* Printable ASCII only; no escapes, no spaces. */
			if ((unsigned char)*s <= 0x20 ||
			    (unsigned char)*s >= 0x7f || *s == '\\')
				goto malformed;
			if (vlen == AUTH_VALUE_MAX)
				goto malformed;
			p.value[i][vlen++] = *s++;
		}
		if (quoted)
			s++;
		p.value[i][vlen] = '\0';
		p.seen[i] = true;
		s = auth_skip_ows(s);
		if (*s == '\0')
			break;
		if (*s++ != ',')
			goto malformed;
		s = auth_skip_ows(s);
	}
	for (i = 0; i < AUTH_P_COUNT; i++)
		if (!p.seen[i]) {
			*ret_reason = "the Authorization header lacks one of "
			    "key, ts and sig";
			return -EINVAL;
		}
	*ret = p;
	return 0;
malformed:
	*ret_reason = "the Authorization header is malformed (expected "
	    AUTH_SCHEME " key=\"..\", ts=\"..\", sig=\"..\")";
	return -EINVAL;
}

/* Plain decimal digits, no sign, no leading zero.  0 or -EINVAL. */
static int
auth_parse_ts(const char *s, int64_t *ret)
{
	int64_t v = 0;
	size_t n;

	n = strlen(s);
	if (n == 0 || n > AUTH_TS_DIGITS || (s[0] == '0' && n > 1))
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	*ret = v;
	return 0;
}

/*
 * Everything auth_header_verify checks before the signature: the grammar,
 * the key and sig encodings and the clock window.  0 and *ret filled in,
 * or -errno with *ret_reason set.
 */
static int
auth_precheck(const char *header_value, int64_t now, int64_t max_skew,
    struct auth_params *ret, const char **ret_reason)
{
	struct auth_params p;
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char sig[crypto_sign_BYTES];
	int64_t ts, skew;
	int r;

	if (header_value == NULL) {
		*ret_reason = "the request has no Authorization header";
		return -EINVAL;
	}
	if ((r = auth_parse(header_value, &p, ret_reason)) < 0)
		return r;
	if (strlen(p.value[AUTH_P_KEY]) != KEYS_PUB_B64_LEN ||
	    keys_b64_decode(p.value[AUTH_P_KEY], pk, sizeof pk) < 0) {
		*ret_reason = "the Authorization key is not a base64url "
		    "Ed25519 public key";
		return -EINVAL;
	}
	if (keys_b64_decode(p.value[AUTH_P_SIG], sig, sizeof sig) < 0) {
		*ret_reason = "the Authorization sig is not a base64url Ed25519 "
		    "signature";
		return -EINVAL;
	}
	if (auth_parse_ts(p.value[AUTH_P_TS], &ts) < 0) {
		*ret_reason = "the Authorization ts is not a unix time in "
		    "decimal";
		return -EINVAL;
	}
	skew = ts > now ? ts - now : now - ts;
	if (skew > max_skew) {
		*ret_reason = "the request timestamp is too far from the "
		    "server's clock (check the clock, or the request is a "
		    "replay)";
		return -EACCES;
	}
	*ret = p;
	return 0;
}

int
auth_header_precheck(const char *header_value, int64_t now,
    int64_t max_skew, char ret_key[KEYS_PUB_B64_LEN + 1],
    const char **ret_reason)
{
	struct auth_params p;
	const char *reason = NULL;
	int r;

	if ((r = auth_precheck(header_value, now, max_skew, &p,
	    &reason)) < 0) {
		if (ret_reason != NULL)
			*ret_reason = reason;
		return r;
	}
	memcpy(ret_key, p.value[AUTH_P_KEY], KEYS_PUB_B64_LEN + 1);
	return 0;
}

int
auth_header_verify(const char *header_value, const char *method,
    const char *path_query, const void *body, size_t len, int64_t now,
    int64_t max_skew, char ret_key[KEYS_PUB_B64_LEN + 1],
    const char **ret_reason)
{
	struct auth_params p;
	const char *reason = NULL;
	char *msg = NULL;
	size_t mlen;
	int r;

	if (header_value == NULL) {
		reason = "the request has no Authorization header";
		r = -EINVAL;
		goto out;
	}
	if (auth_check_request(method, path_query) < 0 ||
	    (body == NULL && len != 0) || ret_key == NULL) {
		reason = "the request cannot be checked";
		r = -EINVAL;
		goto out;
	}
	if ((r = auth_precheck(header_value, now, max_skew, &p, &reason)) < 0)
		goto out;
	if (sodium_init() < 0) {
		r = -EIO;
		reason = "the signature cannot be checked";
		goto out;
	}
	if ((r = auth_message(method, path_query, p.value[AUTH_P_TS], body,
	    len, &msg, &mlen)) < 0) {
		reason = "out of memory";
		goto out;
	}
	r = record_verify_bytes(p.value[AUTH_P_KEY], AUTH_SIG_PREFIX, msg,
	    mlen, p.value[AUTH_P_SIG]);
	if (r == -EKEYREJECTED || r == -EINVAL) {
		reason = "the request signature does not verify";
		r = -EACCES;
		goto out;
	}
	if (r < 0) {
		reason = "out of memory";
		goto out;
	}
	memcpy(ret_key, p.value[AUTH_P_KEY], KEYS_PUB_B64_LEN + 1);
	r = 0;
out:
	free(msg);
	if (r < 0 && ret_reason != NULL)
		*ret_reason = reason;
	return r;
}
