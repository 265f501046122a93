/*
 * auth: the request signature of remote protocol v1 (DESIGN "Remote
 * protocol v1"), shared by ferry-server and the daemon's HTTP client.
 *
 * Every request carries
 *   Authorization: Ferry-Ed25519 key="<pubkey>", ts="<unix seconds>",
 *                  sig="<base64url>"
 * where sig is Ed25519 (record_sign_bytes) over
 *   "ferry-request-v1\n" METHOD "\n" PATH?QUERY "\n" TS "\n" hex(sha256(body))
 * with PATH?QUERY the request-target exactly as sent on the request line,
 * TS the decimal text of the ts parameter and the hash libsodium's
 * crypto_hash_sha256 in lower-case hex (an empty body hashes the empty
 * string).  The prefix keeps a request signature from ever passing as a
 * change-record signature and back.
 *
 * The header is parsed by RFC 9110 section 11's grammar: the scheme
 * "Ferry-Ed25519" in any case, one or more spaces, then the three
 * parameters key, ts and sig (names in any case), each exactly once, in
 * any order, separated by "," with optional spaces and tabs around it,
 * "=" with optional spaces and tabs around it, values a token or a
 * quoted-string without backslash escapes (no value needs one).  Anything
 * else is malformed.  ts is plain decimal digits (no sign, no leading
 * zero).
 *
 * Nothing here blocks, logs or keeps state.  Reasons are static sentences.
 */
#ifndef FERRY_AUTH_H
#define FERRY_AUTH_H

#include <stddef.h>
#include <stdint.h>

#include "keys.h"

#define AUTH_SCHEME		"Ferry-Ed25519"
#define AUTH_SIG_PREFIX		"ferry-request-v1\n"
#define AUTH_MAX_SKEW		300	/* seconds either way */

/*
 * Sign a request as key k at unix time ts.  method is an upper-case token
 * ("GET"), path_query the request-target ("/v1/changes?since=3"), body the
 * len bytes that will be sent (NULL if len is 0).  Returns 0 and a new
 * malloc'd header value (without "Authorization: ") in *ret_header_value,
 * or -EINVAL (bad arguments: empty or lower-case method, target not
 * starting with '/' or holding spaces or control bytes, ts < 0), -ENOMEM,
 * or -EIO (libsodium cannot start).
 */
int	auth_header_make(const struct keys *k, const char *method,
	    const char *path_query, const void *body, size_t len, int64_t ts,
	    char **ret_header_value);

/*
 * Check header_value (NULL when the request had no Authorization header)
 * against the request it came with, at unix time now, allowing
 * |ts - now| <= max_skew.  On success returns 0 and copies the signing key
 * (base64url, NUL-terminated) into ret_key; whether that key is authorised
 * is the caller's question.  On failure ret_key is not written and, if
 * ret_reason is not NULL, *ret_reason points at a static sentence:
 * -EINVAL for a missing or malformed header, -EACCES for a timestamp
 * outside the window or a signature that does not verify, -ENOMEM.
 */
int	auth_header_verify(const char *header_value, const char *method,
	    const char *path_query, const void *body, size_t len, int64_t now,
	    int64_t max_skew, char ret_key[KEYS_PUB_B64_LEN + 1],
	    const char **ret_reason);

/*
 * The checks of auth_header_verify that need neither the request nor its
 * body: the header's grammar, the key's and the sig's encodings and the
 * clock window.  A server runs it when the headers are in, to refuse a
 * request before reading its body; a request that passes must still be
 * verified in full.  0 and the key in ret_key, or -EINVAL / -EACCES with
 * *ret_reason as auth_header_verify sets it.
 */
int	auth_header_precheck(const char *header_value, int64_t now,
	    int64_t max_skew, char ret_key[KEYS_PUB_B64_LEN + 1],
	    const char **ret_reason);

#endif
