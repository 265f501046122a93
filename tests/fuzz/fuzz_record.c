/*
 * fuzz_record: signed change records from the network (record_verify),
 * as ferry-server reads a push and ferryd reads history.
 *
 * The first byte picks how the rest is used:
 *   0  "SIG\nPK\nTEXT": verified as given (PK empty: the record names its
 *      own key).  Reaches the base64 and signature refusals; a forged
 *      record never gets past them.
 *   1  TEXT, signed here with a fixed test key (the seed of RFC 8032's
 *      TEST 1), then verified naming no key;
 *   2  the same, verified against that key;
 *   3  the same, verified against another key: must be refused.
 * With a valid signature the fuzzer's text reaches the parser and every
 * field check, which a random signature never would.
 *
 * Promises checked, for every record that verifies: its fields are what
 * record.h says (op, ranges, valid names, a body iff put, the verifying
 * key as device); record_body_span, when it finds the body, finds exactly
 * the signed body's bytes; and record_make, given the same fields, makes a
 * record that verifies back to the same fields and whose body it finds.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "fuzz.h"
#include "keys.h"
#include "names.h"
#include "record.h"

#define SEED_HEX \
	"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define OTHER_HEX \
	"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"

static struct keys	key, other;

static void
key_init(struct keys *k, const char *hex)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	char *b64;

	FUZZ_ASSERT(sodium_hex2bin(seed, sizeof seed, hex, strlen(hex), NULL,
	    NULL, NULL) == 0);
	FUZZ_ASSERT(crypto_sign_seed_keypair(k->pk, k->sk, seed) == 0);
	FUZZ_ASSERT(keys_b64_encode(k->pk, sizeof k->pk, &b64) == 0);
	FUZZ_ASSERT(strlen(b64) == KEYS_PUB_B64_LEN);
	memcpy(k->pub_b64, b64, KEYS_PUB_B64_LEN + 1);
	free(b64);
}

/* The body's bytes that record_body_span finds in text, if it finds them,
 * are one JSON object equal to the parsed body. */
static void
check_span(const char *text, size_t len, const struct record_fields *f,
    bool must_find)
{
	size_t off, blen;
	json_t *b;

	if (record_body_span(text, len, f->base, f->collection, f->device,
	    f->id, f->seq, f->ts, &off, &blen) < 0) {
		FUZZ_ASSERT(!must_find);
		return;
	}
	FUZZ_ASSERT(strcmp(f->op, "put") == 0);
	FUZZ_ASSERT(off < len && blen <= len - off);
	b = json_loadb(text + off, blen, JSON_REJECT_DUPLICATES, NULL);
	FUZZ_ASSERT(json_is_object(b) && json_equal(b, f->body));
	json_decref(b);
}

static void
check_fields(const struct record_fields *f, const char *text, size_t len,
    const char *pk_b64)
{
	bool put;

	put = strcmp(f->op, "put") == 0;
	FUZZ_ASSERT(put || strcmp(f->op, "delete") == 0);
	FUZZ_ASSERT(put ? json_is_object(f->body) : f->body == NULL);
	FUZZ_ASSERT(f->base >= 0 && f->seq >= 1 && f->ts >= 0);
	FUZZ_ASSERT(names_check_collection(f->collection, NULL) == 0);
	FUZZ_ASSERT(names_check_id(f->id, NULL) == 0);
	FUZZ_ASSERT(json_is_object(f->root));
	if (pk_b64 != NULL)
		FUZZ_ASSERT(strcmp(f->device, pk_b64) == 0);
	check_span(text, len, f, false);
}

/* record_make from the same fields: a record that verifies to them. */
static void
check_remake(const struct record_fields *f)
{
	struct record_fields g;
	char *text, *sig;
	size_t len;

	FUZZ_ASSERT(record_make(&key, f->op, f->base, f->collection, f->id,
	    f->seq, f->ts, f->body, &text, &len, &sig) == 0);
	FUZZ_ASSERT(strlen(text) == len);
	memset(&g, 0, sizeof g);
	FUZZ_ASSERT(record_verify(text, len, sig, key.pub_b64, &g) == 0);
	FUZZ_ASSERT(strcmp(g.op, f->op) == 0 && g.base == f->base &&
	    g.seq == f->seq && g.ts == f->ts &&
	    strcmp(g.collection, f->collection) == 0 &&
	    strcmp(g.id, f->id) == 0 && strcmp(g.device, f->device) == 0);
	FUZZ_ASSERT(g.body == NULL ? f->body == NULL :
	    json_equal(g.body, f->body));
	/* record_make writes the layout record_body_span reads. */
	check_span(text, len, &g, g.body != NULL);
	record_fields_clear(&g);
	free(text);
	free(sig);
}

static void
raw(const char *in, size_t size)
{
	struct record_fields f;
	char *copy, *nl1, *nl2, *text;
	const char *pk;
	int r;

	if ((copy = malloc(size + 1)) == NULL)
		return;
	memcpy(copy, in, size);
	copy[size] = '\0';
	if ((nl1 = memchr(copy, '\n', size)) == NULL ||
	    (nl2 = memchr(nl1 + 1, '\n', size - (nl1 + 1 - copy))) == NULL)
		goto out;
	*nl1 = *nl2 = '\0';
	text = nl2 + 1;
	pk = nl1[1] != '\0' ? nl1 + 1 : NULL;
	memset(&f, 0, sizeof f);
	r = record_verify(text, size - (text - copy), copy, pk, &f);
	FUZZ_ASSERT(r == 0 || r == -EKEYREJECTED || r == -EBADMSG ||
	    r == -EINVAL || r == -ENOMEM);
	if (r == 0) {
		check_fields(&f, text, size - (text - copy), pk);
		record_fields_clear(&f);
	}
out:
	free(copy);
}

static void
signed_text(int mode, const char *text, size_t len)
{
	struct record_fields f;
	const char *pk;
	char *sig;
	int r;

	FUZZ_ASSERT(record_sign_bytes(&key, RECORD_SIG_PREFIX, text, len,
	    &sig) == 0);
	pk = mode == 1 ? NULL : mode == 2 ? key.pub_b64 : other.pub_b64;
	memset(&f, 0, sizeof f);
	r = record_verify(text, len, sig, pk, &f);
	free(sig);
	if (mode == 3) {
		/* Checked before anything is parsed: always this answer. */
		FUZZ_ASSERT(r == -EKEYREJECTED);
		return;
	}
	FUZZ_ASSERT(r == 0 || r == -EKEYREJECTED || r == -EBADMSG ||
	    r == -ENOMEM);
	/* Signed with key: with that key named it verifies or is bad. */
	FUZZ_ASSERT(mode != 2 || r != -EKEYREJECTED);
	if (r != 0)
		return;
	check_fields(&f, text, len, key.pub_b64);
	check_remake(&f);
	record_fields_clear(&f);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;

	if (!ready) {
		FUZZ_ASSERT(sodium_init() >= 0);
		key_init(&key, SEED_HEX);
		key_init(&other, OTHER_HEX);
		ready = true;
	}
	if (size < 1)
		return 0;
	if (data[0] % 4 == 0)
		raw((const char *)data + 1, size - 1);
	else
		signed_text(data[0] % 4, (const char *)data + 1, size - 1);
	return 0;
}
