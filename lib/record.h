/*
 * record: signed change records (DESIGN "Signed change records").
 *
 * A record is the compact JSON text jansson writes with
 * JSON_COMPACT|JSON_SORT_KEYS of
 *   {"base":B,"body":{..},"collection":C,"device":D,"id":I,"op":"put",
 *    "seq":S,"ts":T,"v":1}
 * (no "body" for op "delete").  The signature is Ed25519 detached over
 * "ferry-change-v1\n" followed by the record bytes exactly as sent.
 * Verification checks those bytes first and parses only afterwards, with
 * JSON_REJECT_DUPLICATES; it never re-serializes, so a record whose text is
 * not what this module would write today (other number spelling, other key
 * order) still verifies as long as its bytes are the signed ones and its
 * fields are valid.
 *
 * Ownership: record_make returns malloc'd text and signature (free()).
 * record_verify fills a struct record_fields whose strings and body point
 * into a jansson value the struct owns (root); record_fields_clear()
 * releases it and accepts NULL or a zeroed struct.  Nothing here blocks or
 * logs.
 */
#ifndef FERRY_RECORD_H
#define FERRY_RECORD_H

#include <stdint.h>
#include <jansson.h>

#include "keys.h"

#define RECORD_SIG_PREFIX "ferry-change-v1\n"

struct record_fields {
	const char	*op;		/* "put" or "delete" */
	int64_t		 base;		/* >= 0 */
	const char	*collection;	/* valid per names_check_collection */
	const char	*id;		/* valid per names_check_id */
	const char	*device;	/* base64url key that verified */
	int64_t		 seq;		/* >= 1 */
	int64_t		 ts;		/* milliseconds since the epoch, >= 0 */
	json_t		*body;		/* object in root; NULL for delete */
	json_t		*root;		/* owned parse tree */
};

/*
 * Build the canonical record text for a change and sign it with k.
 * body is borrowed and must be a JSON object iff op is "put", NULL iff op is
 * "delete"; base >= 0, seq >= 1, ts >= 0 and the names must be valid.
 * Returns 0 with *ret_text (NUL-terminated; its length in *ret_len) and
 * *ret_sig_b64 (base64url) newly allocated, or -EINVAL / -ENOMEM.
 */
int	record_make(const struct keys *k, const char *op, int64_t base,
	    const char *collection, const char *id, int64_t seq, int64_t ts,
	    json_t *body, char **ret_text, size_t *ret_len, char **ret_sig_b64);

/*
 * Verify sig_b64 over "ferry-change-v1\n" followed by the exact bytes
 * text[0..len), then parse them and check every field.
 *
 * With pk_b64 (the key the caller expects, e.g. a known device), the
 * signature is checked against it before the text is parsed at all, and the
 * record's "device" field must name that same key.  With pk_b64 NULL the
 * record names its own key: the text is parsed to read "device", and nothing
 * else in it is looked at until the signature verifies against that key.
 * Such a result proves only that the holder of that key wrote the record;
 * whether the key is authorised is the caller's question.
 *
 * Returns 0 and fills *ret (caller frees with record_fields_clear; *ret is
 * written only on success), or -EKEYREJECTED (signature does not verify),
 * -EBADMSG (not a JSON object, duplicate keys, unknown, missing or
 * wrong-typed fields, bad values or names, device not the verifying key;
 * with pk_b64 NULL also an unparsable text or unreadable device),
 * -EINVAL (bad base64 in sig_b64 or pk_b64, NULL arguments), -ENOMEM.
 */
int	record_verify(const char *text, size_t len, const char *sig_b64,
	    const char *pk_b64, struct record_fields *ret);
void	record_fields_clear(struct record_fields *f);

/*
 * Where the body of a put record lies in its text, when the text is laid
 * out as record_make writes it: text must be a record that verified and
 * parsed (record_verify) into these field values, so that a caller can
 * store or forward the body's bytes without dumping the parsed body again.
 * Returns 0 with the body's offset and length in *ret_off and *ret_len (the
 * bytes of one JSON object, exactly as signed), or -ENOENT if the text has
 * another layout (other key order, whitespace, number spelling): the
 * caller then dumps the parsed body.  Nothing is allocated.
 */
int	record_body_span(const char *text, size_t len, int64_t base,
	    const char *collection, const char *device, const char *id,
	    int64_t seq, int64_t ts, size_t *ret_off, size_t *ret_len);

/*
 * The text record_make writes for these values: a put's around body (its
 * canonical text, body_len bytes), a delete's with body NULL.  A reader of
 * /v1/changes rebuilds an entry's record this way when the entry carries
 * no "record" (docs/protocol.md), then checks its signature.  0 with a
 * malloc'd NUL-terminated text, or -EINVAL (a NULL name, a name too long
 * for a record) or -ENOMEM.
 */
int	record_rebuild(int64_t base, const char *body, size_t body_len,
	    const char *collection, const char *device, const char *id,
	    int64_t seq, int64_t ts, char **ret_text, size_t *ret_len);

/*
 * Ed25519 detached signature of prefix||msg, as a new malloc'd base64url
 * string.  prefix separates the uses of one key (RECORD_SIG_PREFIX for
 * changes; HTTP requests use their own).  0, -EINVAL, -ENOMEM
 * or -EIO (libsodium cannot start).
 */
int	record_sign_bytes(const struct keys *k, const char *prefix,
	    const void *msg, size_t len, char **ret_sig_b64);
/*
 * Check such a signature against a base64url public key.  0, -EKEYREJECTED,
 * -EINVAL (bad base64) or -ENOMEM.
 */
int	record_verify_bytes(const char *pk_b64, const char *prefix,
	    const void *msg, size_t len, const char *sig_b64);

#endif
