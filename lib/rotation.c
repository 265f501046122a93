/*
 * rotation: make and check key rotation statements; see rotation.h.
 *
 * The text is built by jansson (JSON_COMPACT | JSON_SORT_KEYS) from five
 * members, and a statement received is accepted only if dumping its parse
 * the same way gives back the very bytes that were signed: anything else
 * (blanks, another order, an extra member, a duplicate) is malformed.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "keys.h"
#include "record.h"
#include "rotation.h"

#define ROTATION_DUMP	(JSON_COMPACT | JSON_SORT_KEYS)

static char *
rotation_text(const char *old_key, const char *new_key, int64_t seq,
    int64_t ts)
{
	json_t *o;
	char *text;

	o = json_pack("{s:s,s:s,s:I,s:I,s:i}", "new_key", new_key, "old_key",
	    old_key, "seq", (json_int_t)seq, "ts", (json_int_t)ts, "v", 1);
	if (o == NULL)
		return NULL;
	text = json_dumps(o, ROTATION_DUMP);
	json_decref(o);
	return text;
}

int
rotation_make(const struct keys *old, const struct keys *new, int64_t seq,
    int64_t ts, char **ret_text, size_t *ret_len, char **ret_sig_old,
    char **ret_sig_new)
{
	char *text, *so = NULL, *sn = NULL;
	size_t len;
	int r;

	if (seq < 0)
		return -EINVAL;
	if ((text = rotation_text(old->pub_b64, new->pub_b64, seq, ts)) ==
	    NULL)
		return -ENOMEM;
	len = strlen(text);
	if ((r = record_sign_bytes(old, ROTATION_SIG_PREFIX, text, len,
	    &so)) < 0 || (r = record_sign_bytes(new, ROTATION_SIG_PREFIX,
	    text, len, &sn)) < 0) {
		free(text);
		free(so);
		return r;
	}
	*ret_text = text;
	*ret_len = len;
	*ret_sig_old = so;
	*ret_sig_new = sn;
	return 0;
}

static int
rotation_check_key(const char *key)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	return key != NULL && strlen(key) == KEYS_PUB_B64_LEN &&
	    keys_b64_decode(key, pk, sizeof pk) == 0 ? 0 : -EINVAL;
}

int
rotation_verify(const char *text, size_t len, const char *sig_old,
    const char *sig_new, const char *old_key, struct rotation_fields *ret,
    const char **ret_why)
{
	struct rotation_fields f;
	json_error_t jerr;
	json_t *o = NULL;
	json_int_t seq = 0, ts = 0, v = 0;
	const char *ok = NULL, *nk = NULL;
	char *again = NULL;
	int r;

	/* The bytes first: nothing in them counts until they verify. */
	r = record_verify_bytes(old_key, ROTATION_SIG_PREFIX, text, len,
	    sig_old);
	if (r == -ENOMEM)
		return r;
	if (r < 0) {
		*ret_why = "the old key's signature";
		return -EKEYREJECTED;
	}
	r = -EBADMSG;
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr)) ==
	    NULL) {
		*ret_why = "the statement is not JSON";
		goto out;
	}
	if (json_unpack(o, "{s:s,s:s,s:I,s:I,s:I!}", "new_key", &nk,
	    "old_key", &ok, "seq", &seq, "ts", &ts, "v", &v) < 0) {
		*ret_why = "the statement must have exactly new_key, old_key "
		    "(strings), seq, ts and v (integers)";
		goto out;
	}
	if (v != 1) {
		*ret_why = "the statement's v must be 1";
		goto out;
	}
	if (strcmp(ok, old_key) != 0) {
		*ret_why = "the statement's old_key is not the requesting key";
		goto out;
	}
	if (rotation_check_key(nk) < 0) {
		*ret_why = "the statement's new_key is not an Ed25519 public "
		    "key (43 characters of base64url)";
		goto out;
	}
	if (strcmp(nk, ok) == 0) {
		*ret_why = "the statement's new_key is the old key";
		goto out;
	}
	if (seq < 0 || ts <= 0) {
		*ret_why = "the statement's seq must be >= 0 and ts > 0";
		goto out;
	}
	if ((again = rotation_text(ok, nk, seq, ts)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (strlen(again) != len || memcmp(again, text, len) != 0) {
		*ret_why = "the statement is not in canonical form (compact, "
		    "sorted keys)";
		goto out;
	}
	r = record_verify_bytes(nk, ROTATION_SIG_PREFIX, text, len, sig_new);
	if (r == -ENOMEM)
		goto out;
	if (r < 0) {
		*ret_why = "the new key's signature";
		r = -EKEYREJECTED;
		goto out;
	}
	memset(&f, 0, sizeof f);
	memcpy(f.old_key, ok, KEYS_PUB_B64_LEN + 1);
	memcpy(f.new_key, nk, KEYS_PUB_B64_LEN + 1);
	f.seq = seq;
	f.ts = ts;
	*ret = f;
	r = 0;
out:
	free(again);
	json_decref(o);
	return r;
}
