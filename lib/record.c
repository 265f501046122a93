/*
 * record: make and verify signed change records.
 *
 * The invariant is DESIGN's: the signature covers "ferry-change-v1\n"
 * followed by the record's bytes exactly as they travel, and a verifier
 * checks those bytes before it believes anything in them.  The text is
 * parsed once, with JSON_REJECT_DUPLICATES, and never re-serialized on the
 * verifying side (jansson would rewrite 0.1 as 0.10000000000000001 and the
 * signature would no longer match the text).  After the signature checks,
 * every field is checked for presence, type and value; unknown fields are
 * refused, since "v":1 fixes the set.
 *
 * record_sign_bytes/record_verify_bytes are the same primitive for any
 * domain: the prefix keeps a change signature from being replayed as an
 * HTTP request signature and back.
 *
 * Nothing here blocks, logs or keeps state besides libsodium's one-time
 * initialisation (sodium_init, idempotent and thread-safe).
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "keys.h"
#include "names.h"
#include "record.h"

#define RECORD_DUMP_FLAGS	(JSON_COMPACT | JSON_SORT_KEYS)

/* Every field a v1 record may have; "body" only with op "put". */
static const char *const record_keys[] = {
	"base", "body", "collection", "device", "id", "op", "seq", "ts", "v",
};

/* Build prefix||msg in a new buffer: Ed25519 signs one contiguous message. */
static int
record_concat(const char *prefix, const void *msg, size_t len,
    unsigned char **ret_buf, size_t *ret_len)
{
	unsigned char	*buf;
	size_t		 plen;

	plen = prefix != NULL ? strlen(prefix) : 0;
	if (len > SIZE_MAX - plen - 1)
		return (-ENOMEM);
	if ((buf = malloc(plen + len + 1)) == NULL)
		return (-ENOMEM);
	if (plen > 0)
		memcpy(buf, prefix, plen);
	if (len > 0)
		memcpy(buf + plen, msg, len);
	*ret_buf = buf;
	*ret_len = plen + len;
	return (0);
}

/* Verify a decoded signature over prefix||msg.  0, -EKEYREJECTED, -ENOMEM. */
static int
record_check_sig(const unsigned char *pk, const char *prefix,
    const void *msg, size_t len, const unsigned char *sig)
{
	unsigned char	*buf = NULL;
	size_t		 blen;
	int		 r;

	if ((r = record_concat(prefix, msg, len, &buf, &blen)) < 0)
		return (r);
	if (crypto_sign_verify_detached(sig, buf, blen, pk) != 0)
		r = -EKEYREJECTED;
	else
		r = 0;
	free(buf);
	return (r);
}

int
record_sign_bytes(const struct keys *k, const char *prefix, const void *msg,
    size_t len, char **ret_sig_b64)
{
	unsigned char	 sig[crypto_sign_BYTES];
	unsigned char	*buf = NULL;
	size_t		 blen;
	int		 r;

	if (k == NULL || ret_sig_b64 == NULL || (msg == NULL && len != 0))
		return (-EINVAL);
	if (sodium_init() < 0)
		return (-EIO);
	if ((r = record_concat(prefix, msg, len, &buf, &blen)) < 0)
		return (r);
	if (crypto_sign_detached(sig, NULL, buf, blen, k->sk) != 0) {
		r = -EINVAL;
		goto out;
	}
	r = keys_b64_encode(sig, sizeof(sig), ret_sig_b64);

out:
	free(buf);
	return (r);
}

int
record_verify_bytes(const char *pk_b64, const char *prefix, const void *msg,
    size_t len, const char *sig_b64)
{
	unsigned char	pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char	sig[crypto_sign_BYTES];
	int		r;

	if (pk_b64 == NULL || sig_b64 == NULL || (msg == NULL && len != 0))
		return (-EINVAL);
	if (sodium_init() < 0)
		return (-EIO);
	if ((r = keys_b64_decode(pk_b64, pk, sizeof(pk))) < 0)
		return (r);
	if ((r = keys_b64_decode(sig_b64, sig, sizeof(sig))) < 0)
		return (r);
	return (record_check_sig(pk, prefix, msg, len, sig));
}

/* Parse text strictly into an object.  -EBADMSG or -ENOMEM on failure. */
static int
record_parse(const char *text, size_t len, json_t **ret_root)
{
	json_error_t	 err;
	json_t		*root;

	root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err);
	if (root == NULL)
		return (json_error_code(&err) == json_error_out_of_memory ?
		    -ENOMEM : -EBADMSG);
	if (!json_is_object(root)) {
		json_decref(root);
		return (-EBADMSG);
	}
	*ret_root = root;
	return (0);
}

/* The record's "device" field as key bytes.  -EBADMSG if it is not one. */
static int
record_device_key(json_t *root, unsigned char *ret_pk)
{
	unsigned char	 pk[crypto_sign_PUBLICKEYBYTES];
	json_t		*dev;
	int		 r;

	dev = json_object_get(root, "device");
	if (!json_is_string(dev))
		return (-EBADMSG);
	r = keys_b64_decode(json_string_value(dev), pk, sizeof(pk));
	if (r == -EINVAL)
		return (-EBADMSG);
	if (r < 0)
		return (r);
	memcpy(ret_pk, pk, sizeof(pk));
	return (0);
}

/* An integer field with a lower bound; -EBADMSG unless present and valid. */
static int
record_get_int(json_t *root, const char *key, int64_t min, int64_t *ret)
{
	json_t	*v;

	v = json_object_get(root, key);
	if (!json_is_integer(v) || json_integer_value(v) < min)
		return (-EBADMSG);
	*ret = json_integer_value(v);
	return (0);
}

static bool
record_known_key(const char *key)
{
	size_t	i;

	for (i = 0; i < sizeof(record_keys) / sizeof(record_keys[0]); i++)
		if (strcmp(key, record_keys[i]) == 0)
			return (true);
	return (false);
}

/*
 * Check every field of an authentic record and point ret's fields into
 * root.  pk is the key the signature verified with; "device" must be it.
 */
static int
record_check_fields(json_t *root, const unsigned char *pk,
    struct record_fields *ret)
{
	struct record_fields	 f;
	unsigned char		 dev[crypto_sign_PUBLICKEYBYTES];
	const char		*key;
	json_t			*v, *op, *coll, *id, *device, *body;
	int64_t			 version;
	int			 r;

	memset(&f, 0, sizeof(f));
	json_object_foreach(root, key, v) {
		if (!record_known_key(key))
			return (-EBADMSG);
	}

	if ((r = record_get_int(root, "v", 1, &version)) < 0)
		return (r);
	if (version != 1)
		return (-EBADMSG);

	op = json_object_get(root, "op");
	if (!json_is_string(op))
		return (-EBADMSG);
	f.op = json_string_value(op);
	if (strcmp(f.op, "put") != 0 && strcmp(f.op, "delete") != 0)
		return (-EBADMSG);

	if ((r = record_get_int(root, "base", 0, &f.base)) < 0 ||
	    (r = record_get_int(root, "seq", 1, &f.seq)) < 0 ||
	    (r = record_get_int(root, "ts", 0, &f.ts)) < 0)
		return (r);

	coll = json_object_get(root, "collection");
	id = json_object_get(root, "id");
	if (!json_is_string(coll) || !json_is_string(id))
		return (-EBADMSG);
	f.collection = json_string_value(coll);
	f.id = json_string_value(id);
	/* Lengths too: a string with \u0000 must not pass as a shorter one. */
	if (strlen(f.collection) != json_string_length(coll) ||
	    strlen(f.id) != json_string_length(id) ||
	    names_check_collection(f.collection, NULL) < 0 ||
	    names_check_id(f.id, NULL) < 0)
		return (-EBADMSG);

	if ((r = record_device_key(root, dev)) < 0)
		return (r);
	if (memcmp(dev, pk, sizeof(dev)) != 0)
		return (-EBADMSG);
	device = json_object_get(root, "device");
	f.device = json_string_value(device);

	/* A put carries the whole document; a delete carries none. */
	body = json_object_get(root, "body");
	if (strcmp(f.op, "put") == 0) {
		if (!json_is_object(body))
			return (-EBADMSG);
		f.body = body;
	} else if (body != NULL)
		return (-EBADMSG);

	*ret = f;
	return (0);
}

int
record_verify(const char *text, size_t len, const char *sig_b64,
    const char *pk_b64, struct record_fields *ret)
{
	struct record_fields	 f;
	unsigned char		 pk[crypto_sign_PUBLICKEYBYTES];
	unsigned char		 sig[crypto_sign_BYTES];
	json_t			*root = NULL;
	int			 r;

	if (text == NULL || sig_b64 == NULL || ret == NULL)
		return (-EINVAL);
	if (sodium_init() < 0)
		return (-EIO);
	if ((r = keys_b64_decode(sig_b64, sig, sizeof(sig))) < 0)
		return (r);

	if (pk_b64 != NULL) {
		/* The expected key is known: check the bytes, then parse. */
		if ((r = keys_b64_decode(pk_b64, pk, sizeof(pk))) < 0)
			return (r);
		if ((r = record_check_sig(pk, RECORD_SIG_PREFIX, text, len,
		    sig)) < 0)
			return (r);
		if ((r = record_parse(text, len, &root)) < 0)
			goto out;
	} else {
		/*
		 * The record names its own key, so it has to be parsed to
		 * learn which key to check.  Only "device" is read from the
		 * unverified tree; every other field is looked at after the
		 * signature over the raw bytes verified.  The tree is kept:
		 * parsing the same bytes again would give the same tree.
		 */
		if ((r = record_parse(text, len, &root)) < 0)
			goto out;
		if ((r = record_device_key(root, pk)) < 0)
			goto out;
		if ((r = record_check_sig(pk, RECORD_SIG_PREFIX, text, len,
		    sig)) < 0)
			goto out;
	}

	/* The bytes are authentic from here on; now judge their content. */
	if ((r = record_check_fields(root, pk, &f)) < 0)
		goto out;
	f.root = root;
	root = NULL;
	*ret = f;
	r = 0;

out:
	json_decref(root);
	return (r);
}

void
record_fields_clear(struct record_fields *f)
{
	if (f == NULL)
		return;
	json_decref(f->root);
	memset(f, 0, sizeof(*f));
}

/*
 * The text around the body is fixed by the other fields: it starts with
 * {"base":B,"body": and ends with ,"collection":C,...,"v":1}.  If both
 * match byte for byte and what lies between starts with '{' and ends with
 * '}', that is the body's text: the record parsed (duplicates rejected,
 * every v1 key present once, no other key), the names and the device key
 * cannot hold '"', ',' or ':', so the seven keys of the tail are the
 * record's own top-level keys and nothing but the body value (not even
 * whitespace, given the braces) fits between "body": and the tail.
 */
/*
 * The text record_make writes after the body (or after "base" for a
 * delete): the names need no escaping (names.c allows none that would).
 * The length written, or -1 if it does not fit.
 */
static int
record_tail(char *buf, size_t size, const char *collection,
    const char *device, const char *id, const char *op, int64_t seq,
    int64_t ts)
{
	int	n;

	n = snprintf(buf, size, ",\"collection\":\"%s\",\"device\":\"%s\","
	    "\"id\":\"%s\",\"op\":\"%s\",\"seq\":%" PRId64 ",\"ts\":%" PRId64
	    ",\"v\":1}", collection, device, id, op, seq, ts);
	return (n < 0 || (size_t)n >= size ? -1 : n);
}

int
record_body_span(const char *text, size_t len, int64_t base,
    const char *collection, const char *device, const char *id, int64_t seq,
    int64_t ts, size_t *ret_off, size_t *ret_len)
{
	char	head[64], tail[512];
	int	hn, tn;

	if (text == NULL || collection == NULL || device == NULL || id == NULL)
		return (-EINVAL);
	hn = snprintf(head, sizeof(head), "{\"base\":%" PRId64 ",\"body\":",
	    base);
	tn = record_tail(tail, sizeof(tail), collection, device, id, "put",
	    seq, ts);
	if (hn < 0 || (size_t)hn >= sizeof(head) || tn < 0 ||
	    len < (size_t)hn + (size_t)tn + 2)
		return (-ENOENT);
	if (memcmp(text, head, hn) != 0 ||
	    memcmp(text + len - tn, tail, tn) != 0 ||
	    text[hn] != '{' || text[len - tn - 1] != '}')
		return (-ENOENT);
	*ret_off = (size_t)hn;
	*ret_len = len - (size_t)hn - (size_t)tn;
	return (0);
}

int
record_rebuild(int64_t base, const char *body, size_t body_len,
    const char *collection, const char *device, const char *id, int64_t seq,
    int64_t ts, char **ret_text, size_t *ret_len)
{
	char	tail[512], *text;
	int	hn, tn;
	size_t	len;

	if (collection == NULL || device == NULL || id == NULL ||
	    ret_text == NULL || ret_len == NULL)
		return (-EINVAL);
	tn = record_tail(tail, sizeof(tail), collection, device, id,
	    body != NULL ? "put" : "delete", seq, ts);
	if (tn < 0)
		return (-EINVAL);
	/* "{\"base\":" INT64 ",\"body\":" body: at most 40 + body_len. */
	if (body_len > SIZE_MAX - (size_t)tn - 64)
		return (-ENOMEM);
	if ((text = malloc(40 + body_len + (size_t)tn + 1)) == NULL)
		return (-ENOMEM);
	hn = sprintf(text, "{\"base\":%" PRId64, base);
	len = (size_t)hn;
	if (body != NULL) {
		memcpy(text + len, ",\"body\":", 8);
		len += 8;
		memcpy(text + len, body, body_len);
		len += body_len;
	}
	memcpy(text + len, tail, (size_t)tn + 1);
	len += (size_t)tn;
	*ret_text = text;
	*ret_len = len;
	return (0);
}

/* Set key to a new integer value; -ENOMEM if either step fails. */
static int
record_set_int(json_t *obj, const char *key, int64_t v)
{
	if (json_object_set_new(obj, key, json_integer((json_int_t)v)) != 0)
		return (-ENOMEM);
	return (0);
}

static int
record_set_str(json_t *obj, const char *key, const char *v)
{
	if (json_object_set_new(obj, key, json_string(v)) != 0)
		return (-ENOMEM);
	return (0);
}

/* Where record_make's text is written, as jansson hands it over. */
struct record_dump {
	char	*text;
	size_t	 len, cap;	/* cap counts room for a NUL */
	bool	 nomem;
};

static int
record_dump_cb(const char *buf, size_t size, void *arg)
{
	struct record_dump *d = arg;
	size_t cap;
	char *v;

	if (size >= SIZE_MAX / 2 - d->len) {
		d->nomem = true;
		return -1;
	}
	if (d->len + size + 1 > d->cap) {
		for (cap = d->cap ? d->cap : 2048; cap < d->len + size + 1;
		    cap *= 2)
			;
		if ((v = realloc(d->text, cap)) == NULL) {
			d->nomem = true;
			return -1;
		}
		d->text = v;
		d->cap = cap;
	}
	memcpy(d->text + d->len, buf, size);
	d->len += size;
	return 0;
}

int
record_make(const struct keys *k, const char *op, int64_t base,
    const char *collection, const char *id, int64_t seq, int64_t ts,
    json_t *body, char **ret_text, size_t *ret_len, char **ret_sig_b64)
{
	struct record_dump db;
	json_t	*obj = NULL;
	char	*text = NULL, *sig = NULL;
	size_t	 size;
	bool	 is_put;
	int	 r;

	if (k == NULL || op == NULL || ret_text == NULL || ret_len == NULL ||
	    ret_sig_b64 == NULL)
		return (-EINVAL);
	if (strcmp(op, "put") == 0)
		is_put = true;
	else if (strcmp(op, "delete") == 0)
		is_put = false;
	else
		return (-EINVAL);
	if (is_put ? !json_is_object(body) : body != NULL)
		return (-EINVAL);
	if (base < 0 || seq < 1 || ts < 0 ||
	    names_check_collection(collection, NULL) < 0 ||
	    names_check_id(id, NULL) < 0)
		return (-EINVAL);

	if ((obj = json_object()) == NULL)
		return (-ENOMEM);
	if ((r = record_set_int(obj, "base", base)) < 0 ||
	    (r = record_set_str(obj, "collection", collection)) < 0 ||
	    (r = record_set_str(obj, "device", k->pub_b64)) < 0 ||
	    (r = record_set_str(obj, "id", id)) < 0 ||
	    (r = record_set_str(obj, "op", op)) < 0 ||
	    (r = record_set_int(obj, "seq", seq)) < 0 ||
	    (r = record_set_int(obj, "ts", ts)) < 0 ||
	    (r = record_set_int(obj, "v", 1)) < 0)
		goto out;
	if (is_put && json_object_set(obj, "body", body) != 0) {
		r = -ENOMEM;
		goto out;
	}

	/*
	 * Dump into a buffer of our own so the caller can free() it whatever
	 * allocator jansson was given, in one pass: sizing first and writing
	 * then (json_dumpb twice) was a quarter of the push's instructions.
	 * A failure that is not ours means jansson refused the value (e.g.
	 * a cycle in body).
	 */
	memset(&db, 0, sizeof db);
	if (json_dump_callback(obj, record_dump_cb, &db,
	    RECORD_DUMP_FLAGS) != 0 || db.len == 0) {
		r = db.nomem ? -ENOMEM : -EINVAL;
		text = db.text;
		goto out;
	}
	text = db.text;
	size = db.len;
	text[size] = '\0';

	if ((r = record_sign_bytes(k, RECORD_SIG_PREFIX, text, size,
	    &sig)) < 0)
		goto out;
	*ret_text = text;
	*ret_len = size;
	*ret_sig_b64 = sig;
	text = NULL;
	r = 0;

out:
	free(text);
	json_decref(obj);
	return (r);
}
