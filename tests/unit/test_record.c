/*
 * test_record: signed change records (DESIGN "Signed change records").
 *
 * Guards three promises.  The signature primitive is plain Ed25519: it
 * reproduces RFC 8032's section 7.1 test vectors bit for bit.  A record's
 * signature covers its exact bytes: any change to a byte, to the signature
 * or to the signing key is caught, and a record is never re-serialized to be
 * verified (a body holding 0.1 still verifies).  And a record that verifies
 * is a well-formed v1 record: duplicate keys, unknown, missing or
 * wrong-typed fields, bad names and a body on the wrong op are all refused
 * even when the signature over them is valid.
 */
#include "autoconfig.h"

#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <sodium.h>

#include "keys.h"
#include "record.h"

/* RFC 8032 section 7.1, TEST 1: the seed behind the canonical record. */
#define SEED1 "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60"
#define SEED2 "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb"

/* base64url of TEST 1's public key, d75a9801...f707511a. */
#define DEV1 "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"

struct rfc8032_vector {
	const char	*name;
	const char	*seed;		/* the RFC's "SECRET KEY" */
	const char	*pk;
	const char	*msg;
	const char	*sig;
};

static const struct rfc8032_vector rfc8032[] = {
	{
	    "TEST 1",
	    "9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
	    "d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a",
	    "",
	    "e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e06522490155"
	    "5fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b",
	},
	{
	    "TEST 2",
	    "4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
	    "3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c",
	    "72",
	    "92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da"
	    "085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00",
	},
	{
	    "TEST 3",
	    "c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
	    "fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025",
	    "af82",
	    "6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac"
	    "18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a",
	},
	{
	    "TEST 1024",
	    "f5e5767cf153319517630f226876b86c8160cc583bc013744c6bf255f5cc0ee5",
	    "278117fc144c72340f67d0f2316e8386ceffbf2b2428c9c51fef7c597f1d426e",
	    "08b8b2b733424243760fe426a4b54908632110a66c2f6591eabd3345e3e4eb98"
	    "fa6e264bf09efe12ee50f8f54e9f77b1e355f6c50544e23fb1433ddf73be84d8"
	    "79de7c0046dc4996d9e773f4bc9efe5738829adb26c81b37c93a1b270b20329d"
	    "658675fc6ea534e0810a4432826bf58c941efb65d57a338bbd2e26640f89ffbc"
	    "1a858efcb8550ee3a5e1998bd177e93a7363c344fe6b199ee5d02e82d522c4fe"
	    "ba15452f80288a821a579116ec6dad2b3b310da903401aa62100ab5d1a36553e"
	    "06203b33890cc9b832f79ef80560ccb9a39ce767967ed628c6ad573cb116dbef"
	    "efd75499da96bd68a8a97b928a8bbc103b6621fcde2beca1231d206be6cd9ec7"
	    "aff6f6c94fcd7204ed3455c68c83f4a41da4af2b74ef5c53f1d8ac70bdcb7ed1"
	    "85ce81bd84359d44254d95629e9855a94a7c1958d1f8ada5d0532ed8a5aa3fb2"
	    "d17ba70eb6248e594e1a2297acbbb39d502f1a8c6eb6f1ce22b3de1a1f40cc24"
	    "554119a831a9aad6079cad88425de6bde1a9187ebb6092cf67bf2b13fd65f270"
	    "88d78b7e883c8759d2c4f5c65adb7553878ad575f9fad878e80a0c9ba63bcbcc"
	    "2732e69485bbc9c90bfbd62481d9089beccf80cfe2df16a2cf65bd92dd597b07"
	    "07e0917af48bbb75fed413d238f5555a7a569d80c3414a8d0859dc65a46128ba"
	    "b27af87a71314f318c782b23ebfe808b82b0ce26401d2e22f04d83d1255dc51a"
	    "ddd3b75a2b1ae0784504df543af8969be3ea7082ff7fc9888c144da2af58429e"
	    "c96031dbcad3dad9af0dcbaaaf268cb8fcffead94f3c7ca495e056a9b47acdb7"
	    "51fb73e666c6c655ade8297297d07ad1ba5e43f1bca32301651339e22904cc8c"
	    "42f58c30c04aafdb038dda0847dd988dcda6f3bfd15c4b4c4525004aa06eeff8"
	    "ca61783aacec57fb3d1f92b0fe2fd1a85f6724517b65e614ad6808d6f6ee34df"
	    "f7310fdc82aebfd904b01e1dc54b2927094b2db68d6f903b68401adebf5a7e08"
	    "d78ff4ef5d63653a65040cf9bfd4aca7984a74d37145986780fc0b16ac451649"
	    "de6188a7dbdf191f64b5fc5e2ab47b57f7f7276cd419c17a3ca8e1b939ae49e4"
	    "88acba6b965610b5480109c8b17b80e1b7b750dfc7598d5d5011fd2dcc5600a3"
	    "2ef5b52a1ecc820e308aa342721aac0943bf6686b64b2579376504ccc493d97e"
	    "6aed3fb0f9cd71a43dd497f01f17c0e2cb3797aa2a2f256656168e6c496afc5f"
	    "b93246f6b1116398a346f1a641f3b041e989f7914f90cc2c7fff357876e506b5"
	    "0d334ba77c225bc307ba537152f3f1610e4eafe595f6d9d90d11faa933a15ef1"
	    "369546868a7f3a45a96768d40fd9d03412c091c6315cf4fde7cb68606937380d"
	    "b2eaaa707b4c4185c32eddcdd306705e4dc1ffc872eeee475a64dfac86aba41c"
	    "0618983f8741c5ef68d3a101e8a3b8cac60c905c15fc910840b94c00a0b9d0",
	    "0aab4c900501b3e24d7cdf4663326a3a87df5e4843b2cbdb67cbf6e460fec350"
	    "aa5371b1508f9f4528ecea23c436d94b5e8fcd4f681e30a6ac00a9704a188a03",
	},
	{
	    "TEST SHA(abc)",
	    "833fe62409237b9d62ec77587520911e9a759cec1d19755b7da901b96dca3d42",
	    "ec172b93ad5e563bf4932c70e1245034c35467ef2efd4d64ebf819683467e2bf",
	    "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
	    "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f",
	    "dc2a4459e7369633a52b1bf277839a00201009a3efbf3ecb69bea2186c26b589"
	    "09351fc9ac90b3ecfdfbc7c66431e0303dca179c138ac17ad9bef1177331a704",
	},
};

static size_t
unhex(const char *hex, unsigned char *out, size_t cap)
{
	size_t	len;

	assert_int_equal(sodium_hex2bin(out, cap, hex, strlen(hex), NULL, &len,
	    NULL), 0);
	return (len);
}

/* A key pair from a hex seed, as keys_load_or_create would hand it out. */
static void
key_from_seed(const char *seed_hex, struct keys *k)
{
	unsigned char	seed[crypto_sign_SEEDBYTES];

	assert_true(sodium_init() >= 0);
	assert_int_equal(unhex(seed_hex, seed, sizeof(seed)), sizeof(seed));
	assert_int_equal(crypto_sign_seed_keypair(k->pk, k->sk, seed), 0);
	assert_non_null(sodium_bin2base64(k->pub_b64, sizeof(k->pub_b64),
	    k->pk, sizeof(k->pk), sodium_base64_VARIANT_URLSAFE_NO_PADDING));
}

/* Sign arbitrary text as a change record, valid signature guaranteed. */
static char *
sign_text(const struct keys *k, const char *text)
{
	char	*sig = NULL;

	assert_int_equal(record_sign_bytes(k, RECORD_SIG_PREFIX, text,
	    strlen(text), &sig), 0);
	return (sig);
}

/* Replace every "$D" in tmpl with dev. */
static char *
subst_device(const char *tmpl, const char *dev)
{
	char		*out, *o;
	const char	*p;

	out = malloc(strlen(tmpl) * 2 + strlen(dev) * 8 + 1);
	assert_non_null(out);
	for (o = out, p = tmpl; *p != '\0'; p++) {
		if (p[0] == '$' && p[1] == 'D') {
			o = stpcpy(o, dev);
			p++;
		} else
			*o++ = *p;
	}
	*o = '\0';
	return (out);
}

/* Verify text (signed by k) in both modes and expect want from each. */
static void
expect_both(const struct keys *k, const char *text, int want)
{
	struct record_fields	 f;
	char			*sig;
	int			 r1, r2;

	sig = sign_text(k, text);
	memset(&f, 0, sizeof(f));
	r1 = record_verify(text, strlen(text), sig, k->pub_b64, &f);
	record_fields_clear(&f);
	r2 = record_verify(text, strlen(text), sig, NULL, &f);
	record_fields_clear(&f);
	free(sig);
	if (r1 != want || r2 != want)
		fail_msg("%s: got %d/%d, want %d", text, r1, r2, want);
}

/*
 * RFC 8032 7.1 through libsodium: the seed gives the RFC's public key, the
 * signature is the RFC's byte for byte, it verifies, and it stops verifying
 * when the message or the signature changes.
 */
static void
test_rfc8032_vectors(void **state)
{
	unsigned char	seed[32], pk[32], sk[64], want_pk[32];
	unsigned char	sig[64], want_sig[64];
	unsigned char	msg[1024];
	size_t		i, mlen;

	(void)state;
	assert_true(sodium_init() >= 0);
	for (i = 0; i < sizeof(rfc8032) / sizeof(rfc8032[0]); i++) {
		const struct rfc8032_vector *v = &rfc8032[i];

		assert_int_equal(unhex(v->seed, seed, sizeof(seed)), 32);
		assert_int_equal(unhex(v->pk, want_pk, sizeof(want_pk)), 32);
		assert_int_equal(unhex(v->sig, want_sig, sizeof(want_sig)), 64);
		mlen = unhex(v->msg, msg, sizeof(msg));
		assert_int_equal(mlen, strlen(v->msg) / 2);

		assert_int_equal(crypto_sign_seed_keypair(pk, sk, seed), 0);
		if (memcmp(pk, want_pk, 32) != 0)
			fail_msg("%s: public key differs", v->name);
		assert_int_equal(crypto_sign_detached(sig, NULL, msg, mlen, sk),
		    0);
		if (memcmp(sig, want_sig, 64) != 0)
			fail_msg("%s: signature differs", v->name);
		assert_int_equal(crypto_sign_verify_detached(want_sig, msg,
		    mlen, want_pk), 0);

		want_sig[63] ^= 0x01;
		assert_int_not_equal(crypto_sign_verify_detached(want_sig, msg,
		    mlen, want_pk), 0);
		want_sig[63] ^= 0x01;
		if (mlen > 0) {
			msg[mlen - 1] ^= 0x01;
			assert_int_not_equal(crypto_sign_verify_detached(
			    want_sig, msg, mlen, want_pk), 0);
		}
	}
	/* The five vectors the RFC lists: 0, 1, 2, 1023 and 64 bytes. */
	assert_int_equal(i, 5);
}

/*
 * The exact canonical text for a known input: sorted keys at every level,
 * no whitespace, "v":1, and the signature an independent Ed25519
 * implementation computes over "ferry-change-v1\n" + text.  If this changes,
 * every stored record and every peer disagrees with us.
 */
static void
test_canonical_text(void **state)
{
	static const char want_put[] =
	    "{\"base\":5,\"body\":{\"n\":2,\"tags\":[\"a\",\"b\"],"
	    "\"title\":\"x\"},\"collection\":\"notes\","
	    "\"device\":\"" DEV1 "\",\"id\":\"n1\",\"op\":\"put\","
	    "\"seq\":42,\"ts\":1763800000000,\"v\":1}";
	static const char want_put_sig[] =
	    "3Qbh-bTxLoKFoHUoJAgIMmnJ9LglQBd3mChcOZU8D_g9XDWODcGFy5qyL2dyCmL-"
	    "9d0ZpxXr24Ly77i4AlWmAQ";
	static const char want_del[] =
	    "{\"base\":7,\"collection\":\"notes\",\"device\":\"" DEV1 "\","
	    "\"id\":\"n1\",\"op\":\"delete\",\"seq\":43,\"ts\":1763800000001,"
	    "\"v\":1}";
	static const char want_del_sig[] =
	    "33Ib7HRGsH8kZ7h3j2dRYpSZF7GCoaBckJgv75VjMQePcO_wfHBl7ITktsiP9NLP"
	    "5qrBEwtaehWAmHxqse8SCA";
	struct keys	 k;
	json_t		*body;
	char		*text, *sig;
	size_t		 len;

	(void)state;
	key_from_seed(SEED1, &k);
	assert_string_equal(k.pub_b64, DEV1);
	/* Keys inserted out of order, to see them sorted. */
	body = json_pack("{s:s, s:[s,s], s:i}", "title", "x", "tags", "a", "b",
	    "n", 2);
	assert_non_null(body);
	assert_int_equal(record_make(&k, "put", 5, "notes", "n1", 42,
	    1763800000000LL, body, &text, &len, &sig), 0);
	assert_string_equal(text, want_put);
	assert_int_equal(len, strlen(want_put));
	assert_string_equal(sig, want_put_sig);
	free(text);
	free(sig);
	json_decref(body);

	assert_int_equal(record_make(&k, "delete", 7, "notes", "n1", 43,
	    1763800000001LL, NULL, &text, &len, &sig), 0);
	assert_string_equal(text, want_del);
	assert_string_equal(sig, want_del_sig);
	free(text);
	free(sig);
}

/*
 * What record_make writes, record_verify accepts, in both modes, and the
 * fields come back as they went in.
 */
static void
test_round_trip(void **state)
{
	struct keys		 k;
	struct record_fields	 f;
	json_t			*body;
	char			*text, *sig;
	size_t			 len;
	const char		*pk;
	int			 mode;

	(void)state;
	key_from_seed(SEED1, &k);
	body = json_pack("{s:s, s:{s:b}}", "title", "caf\xc3\xa9", "meta",
	    "pinned", 1);
	assert_int_equal(record_make(&k, "put", 0, "notes.v2",
	    "user@example.org:n-1", 1, 0, body, &text, &len, &sig), 0);
	for (mode = 0; mode < 2; mode++) {
		pk = mode == 0 ? k.pub_b64 : NULL;
		memset(&f, 0, sizeof(f));
		assert_int_equal(record_verify(text, len, sig, pk, &f), 0);
		assert_string_equal(f.op, "put");
		assert_int_equal(f.base, 0);
		assert_string_equal(f.collection, "notes.v2");
		assert_string_equal(f.id, "user@example.org:n-1");
		assert_string_equal(f.device, k.pub_b64);
		assert_int_equal(f.seq, 1);
		assert_int_equal(f.ts, 0);
		assert_true(json_equal(f.body, body));
		assert_non_null(f.root);
		record_fields_clear(&f);
		assert_null(f.root);
	}
	free(text);
	free(sig);
	json_decref(body);

	assert_int_equal(record_make(&k, "delete", 9, "notes", "n1",
	    INT64_MAX, INT64_MAX, NULL, &text, &len, &sig), 0);
	assert_int_equal(record_verify(text, len, sig, NULL, &f), 0);
	assert_string_equal(f.op, "delete");
	assert_int_equal(f.base, 9);
	assert_int_equal(f.seq, INT64_MAX);
	assert_int_equal(f.ts, INT64_MAX);
	assert_null(f.body);
	record_fields_clear(&f);
	free(text);
	free(sig);
}

/*
 * record_body_span finds the body's exact signed bytes in a record laid
 * out as record_make writes it (even when the body holds text that looks
 * like the record's tail), and refuses any other layout rather than
 * guess: the server stores and serves those bytes as the body.
 */
static void
test_body_span(void **state)
{
	struct keys		 k;
	struct record_fields	 f;
	json_t			*body;
	char			*text, *sig, *want, *other;
	size_t			 len, off, blen;

	(void)state;
	key_from_seed(SEED1, &k);
	body = json_pack("{s:s, s:{s:i}, s:f}", "t",
	    "\"},\"collection\":\"c\",\"v\":1}", "z", "a", 1, "r", 0.5);
	assert_non_null(body);
	assert_int_equal(record_make(&k, "put", 7, "notes", "n:1@x", 12,
	    1763800000000LL, body, &text, &len, &sig), 0);
	assert_int_equal(record_verify(text, len, sig, NULL, &f), 0);
	assert_int_equal(record_body_span(text, len, f.base, f.collection,
	    f.device, f.id, f.seq, f.ts, &off, &blen), 0);
	want = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(want);
	assert_int_equal(blen, strlen(want));
	assert_memory_equal(text + off, want, blen);
	/* Any field that differs from the text: not this layout. */
	assert_int_equal(record_body_span(text, len, f.base + 1, f.collection,
	    f.device, f.id, f.seq, f.ts, &off, &blen), -ENOENT);
	assert_int_equal(record_body_span(text, len, f.base, f.collection,
	    f.device, f.id, f.seq, f.ts + 1, &off, &blen), -ENOENT);
	record_fields_clear(&f);
	free(want);
	free(text);
	free(sig);
	json_decref(body);

	/* Whitespace around the body: valid, verifies, but no span. */
	other = subst_device("{\"base\":1,\"body\": {\"x\":1} ,"
	    "\"collection\":\"c\",\"device\":\"$D\",\"id\":\"i\","
	    "\"op\":\"put\",\"seq\":2,\"ts\":3,\"v\":1}", k.pub_b64);
	sig = sign_text(&k, other);
	assert_int_equal(record_verify(other, strlen(other), sig, NULL, &f), 0);
	assert_int_equal(record_body_span(other, strlen(other), f.base,
	    f.collection, f.device, f.id, f.seq, f.ts, &off, &blen), -ENOENT);
	record_fields_clear(&f);
	free(sig);
	free(other);
}

/*
 * record_rebuild gives back record_make's exact text, for a put (from
 * the body's canonical text) and for a delete, so that a reader of
 * /v1/changes can check an entry's signature without the record's text;
 * with any field other than the record's, the signature fails.
 */
static void
test_rebuild(void **state)
{
	struct keys	 k;
	json_t		*body;
	char		*text, *sig, *btext, *again;
	size_t		 len, alen;
	struct record_fields f;

	(void)state;
	key_from_seed(SEED1, &k);
	body = json_pack("{s:s, s:[i,b,n]}", "t", "tab\there \"q\" caf\xc3\xa9",
	    "l", -2, 1);
	assert_non_null(body);
	assert_int_equal(record_make(&k, "put", 7, "notes", "n:1@x", 12,
	    1763800000000LL, body, &text, &len, &sig), 0);
	btext = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(btext);
	assert_int_equal(record_rebuild(7, btext, strlen(btext), "notes",
	    k.pub_b64, "n:1@x", 12, 1763800000000LL, &again, &alen), 0);
	assert_int_equal(alen, len);
	assert_memory_equal(again, text, len);
	assert_int_equal(record_verify(again, alen, sig, k.pub_b64, &f), 0);
	record_fields_clear(&f);
	free(again);
	/* Another ts: another text, and the signature no longer holds. */
	assert_int_equal(record_rebuild(7, btext, strlen(btext), "notes",
	    k.pub_b64, "n:1@x", 12, 1763800000001LL, &again, &alen), 0);
	assert_int_equal(record_verify(again, alen, sig, k.pub_b64, &f),
	    -EKEYREJECTED);
	free(again);
	free(btext);
	free(text);
	free(sig);
	json_decref(body);

	assert_int_equal(record_make(&k, "delete", 3, "notes", "gone", 13,
	    1763800000002LL, NULL, &text, &len, &sig), 0);
	assert_int_equal(record_rebuild(3, NULL, 0, "notes", k.pub_b64, "gone",
	    13, 1763800000002LL, &again, &alen), 0);
	assert_int_equal(alen, len);
	assert_memory_equal(again, text, len);
	assert_int_equal(record_verify(again, alen, sig, k.pub_b64, &f), 0);
	record_fields_clear(&f);
	free(again);
	free(text);
	free(sig);
	assert_int_equal(record_rebuild(3, NULL, 0, NULL, k.pub_b64, "gone",
	    13, 1, &again, &alen), -EINVAL);
}

/*
 * Verification works on the bytes, never on a re-serialization: a record
 * written by another implementation with 0.1 in its body verifies, though
 * jansson would print that number differently (and the signature over the
 * re-serialized text would fail, which is checked too).
 */
static void
test_real_number_verifies(void **state)
{
	struct keys		 k;
	struct record_fields	 f;
	char			*text, *sig, *redump;

	(void)state;
	key_from_seed(SEED1, &k);
	text = subst_device("{\"base\":1,\"body\":{\"x\":0.1,\"y\":1e2},"
	    "\"collection\":\"c\",\"device\":\"$D\",\"id\":\"i\","
	    "\"op\":\"put\",\"seq\":2,\"ts\":3,\"v\":1}", k.pub_b64);
	sig = sign_text(&k, text);
	assert_int_equal(record_verify(text, strlen(text), sig, k.pub_b64, &f),
	    0);
	assert_true(json_real_value(json_object_get(f.body, "x")) == 0.1);

	redump = json_dumps(f.root, JSON_COMPACT | JSON_SORT_KEYS);
	assert_non_null(redump);
	assert_string_not_equal(redump, text);
	assert_int_equal(record_verify(redump, strlen(redump), sig, k.pub_b64,
	    &f), -EKEYREJECTED);
	free(redump);
	record_fields_clear(&f);

	assert_int_equal(record_verify(text, strlen(text), sig, NULL, &f), 0);
	record_fields_clear(&f);
	free(text);
	free(sig);
}

/*
 * Flipping any bit of any byte of the record is caught: -EKEYREJECTED with
 * the expected key; with the key taken from the record, the signature check
 * or the parse fails, never success.  Truncating or extending is caught too.
 */
static void
test_tampered_record(void **state)
{
	struct keys		 k;
	struct record_fields	 f;
	json_t			*body;
	char			*text, *sig, *copy;
	size_t			 len, i;
	int			 bit, r;

	(void)state;
	key_from_seed(SEED1, &k);
	body = json_pack("{s:s}", "t", "hello");
	assert_int_equal(record_make(&k, "put", 3, "notes", "n1", 7, 1000,
	    body, &text, &len, &sig), 0);
	copy = malloc(len + 2);
	assert_non_null(copy);
	for (i = 0; i < len; i++) {
		for (bit = 0; bit < 8; bit++) {
			memcpy(copy, text, len + 1);
			copy[i] ^= (char)(1 << bit);
			r = record_verify(copy, len, sig, k.pub_b64, &f);
			if (r != -EKEYREJECTED)
				fail_msg("byte %zu bit %d: %d", i, bit, r);
			r = record_verify(copy, len, sig, NULL, &f);
			if (r != -EKEYREJECTED && r != -EBADMSG)
				fail_msg("byte %zu bit %d (no pk): %d", i, bit,
				    r);
		}
	}

	/* A change inside a value still parses: the signature catches it. */
	memcpy(copy, text, len + 1);
	copy[strstr(text, "\"n1\"") - text + 2] = '2';
	assert_int_equal(record_verify(copy, len, sig, NULL, &f),
	    -EKEYREJECTED);

	assert_int_equal(record_verify(text, len - 1, sig, k.pub_b64, &f),
	    -EKEYREJECTED);
	memcpy(copy, text, len);
	copy[len] = ' ';
	copy[len + 1] = '\0';
	assert_int_equal(record_verify(copy, len + 1, sig, k.pub_b64, &f),
	    -EKEYREJECTED);
	assert_int_equal(record_verify(text, len, sig, k.pub_b64, &f), 0);
	record_fields_clear(&f);

	free(copy);
	free(text);
	free(sig);
	json_decref(body);
}

/* Any single-bit change to the signature is -EKEYREJECTED. */
static void
test_tampered_signature(void **state)
{
	struct keys		 k;
	struct record_fields	 f;
	unsigned char		 raw[64];
	char			*text, *sig, *bad;
	size_t			 len, i;

	(void)state;
	key_from_seed(SEED1, &k);
	assert_int_equal(record_make(&k, "delete", 1, "c", "i", 1, 1, NULL,
	    &text, &len, &sig), 0);
	assert_int_equal(keys_b64_decode(sig, raw, sizeof(raw)), 0);
	for (i = 0; i < 64 * 8; i++) {
		raw[i / 8] ^= (unsigned char)(1 << (i % 8));
		assert_int_equal(keys_b64_encode(raw, sizeof(raw), &bad), 0);
		if (record_verify(text, len, bad, k.pub_b64, &f) !=
		    -EKEYREJECTED ||
		    record_verify(text, len, bad, NULL, &f) != -EKEYREJECTED)
			fail_msg("signature bit %zu flipped was accepted", i);
		free(bad);
		raw[i / 8] ^= (unsigned char)(1 << (i % 8));
	}
	free(text);
	free(sig);
}

/*
 * A signature by another key is refused: against the expected key, and
 * when the record claims a device whose key did not sign it.  A record
 * signed by the expected key but naming another device is malformed.
 */
static void
test_other_key(void **state)
{
	struct keys		 a, b;
	struct record_fields	 f;
	const char		*claim = "payload";
	char			*text, *sig;
	size_t			 len;

	(void)state;
	key_from_seed(SEED1, &a);
	key_from_seed(SEED2, &b);

	assert_int_equal(record_make(&a, "delete", 1, "c", "i", 1, 1, NULL,
	    &text, &len, &sig), 0);
	assert_int_equal(record_verify(text, len, sig, b.pub_b64, &f),
	    -EKEYREJECTED);
	free(sig);

	/* b signs a's record: claims device a, so it is checked against a. */
	sig = sign_text(&b, text);
	assert_int_equal(record_verify(text, len, sig, NULL, &f),
	    -EKEYREJECTED);
	assert_int_equal(record_verify(text, len, sig, a.pub_b64, &f),
	    -EKEYREJECTED);
	/* Checked against b it verifies, but the record names a. */
	assert_int_equal(record_verify(text, len, sig, b.pub_b64, &f),
	    -EBADMSG);
	free(sig);
	free(text);

	/* And the generic primitive refuses another key the same way. */
	sig = NULL;
	assert_int_equal(record_sign_bytes(&a, "p\n", claim, strlen(claim),
	    &sig), 0);
	assert_int_equal(record_verify_bytes(a.pub_b64, "p\n", claim,
	    strlen(claim), sig), 0);
	assert_int_equal(record_verify_bytes(b.pub_b64, "p\n", claim,
	    strlen(claim), sig), -EKEYREJECTED);
	free(sig);
}

/*
 * Duplicate keys, at the top or inside the body, are refused even under a
 * valid signature: two readers could otherwise see two different records.
 */
static void
test_duplicate_keys(void **state)
{
	static const char *const tmpls[] = {
		"{\"base\":1,\"body\":{},\"collection\":\"c\","
		    "\"device\":\"$D\",\"id\":\"i\",\"op\":\"put\","
		    "\"op\":\"delete\",\"seq\":1,\"ts\":1,\"v\":1}",
		"{\"base\":1,\"body\":{\"a\":1,\"a\":2},\"collection\":\"c\","
		    "\"device\":\"$D\",\"id\":\"i\",\"op\":\"put\",\"seq\":1,"
		    "\"ts\":1,\"v\":1}",
		"{\"base\":1,\"collection\":\"c\",\"device\":\"$D\","
		    "\"device\":\"$D\",\"id\":\"i\",\"op\":\"delete\","
		    "\"seq\":1,\"ts\":1,\"v\":1}",
	};
	struct keys	 k;
	char		*text;
	size_t		 i;

	(void)state;
	key_from_seed(SEED1, &k);
	for (i = 0; i < sizeof(tmpls) / sizeof(tmpls[0]); i++) {
		text = subst_device(tmpls[i], k.pub_b64);
		expect_both(&k, text, -EBADMSG);
		free(text);
	}
}

/*
 * Every field is checked for presence, type and value, and nothing else
 * may appear; each text below carries a valid signature, so only the field
 * checks can refuse it.  The first entries must pass, which shows the
 * template itself is sound.
 */
static void
test_bad_fields(void **state)
{
#define R(base, body, coll, dev, id, op, seq, ts, v)			\
	"{" base body coll dev id op seq ts v "}"
#define BASE	"\"base\":5,"
#define BODY	"\"body\":{\"a\":1},"
#define COLL	"\"collection\":\"notes\","
#define DEV	"\"device\":\"$D\","
#define ID	"\"id\":\"n1\","
#define PUT	"\"op\":\"put\","
#define DEL	"\"op\":\"delete\","
#define SEQ	"\"seq\":42,"
#define TS	"\"ts\":1000,"
#define V	"\"v\":1"
	static const char *const good[] = {
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, V),
		R(BASE, "", COLL, DEV, ID, DEL, SEQ, TS, V),
		/* Key order and spacing are not part of validity. */
		"{ \"v\":1, \"op\":\"delete\", \"seq\":1, \"ts\":0,"
		    " \"base\":0, \"id\":\"x\", \"collection\":\"c\","
		    " \"device\":\"$D\" }",
	};
	static const char *const bad[] = {
		/* v */
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, "\"ts\":1000", ""),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, "\"v\":2"),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, "\"v\":0"),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, "\"v\":\"1\""),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, "\"v\":1.0"),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, "\"v\":true"),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, "\"v\":null"),
		/* op */
		R(BASE, BODY, COLL, DEV, ID, "", SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, ID, "\"op\":\"patch\",", SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, ID, "\"op\":\"PUT\",", SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, ID, "\"op\":1,", SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, ID, "\"op\":[\"put\"],", SEQ, TS, V),
		/* base */
		R("", BODY, COLL, DEV, ID, PUT, SEQ, TS, V),
		R("\"base\":-1,", BODY, COLL, DEV, ID, PUT, SEQ, TS, V),
		R("\"base\":\"5\",", BODY, COLL, DEV, ID, PUT, SEQ, TS, V),
		R("\"base\":5.5,", BODY, COLL, DEV, ID, PUT, SEQ, TS, V),
		R("\"base\":null,", BODY, COLL, DEV, ID, PUT, SEQ, TS, V),
		/* seq */
		R(BASE, BODY, COLL, DEV, ID, PUT, "", TS, V),
		R(BASE, BODY, COLL, DEV, ID, PUT, "\"seq\":0,", TS, V),
		R(BASE, BODY, COLL, DEV, ID, PUT, "\"seq\":-3,", TS, V),
		R(BASE, BODY, COLL, DEV, ID, PUT, "\"seq\":\"42\",", TS, V),
		R(BASE, BODY, COLL, DEV, ID, PUT,
		    "\"seq\":99999999999999999999,", TS, V),
		/* ts */
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, "", V),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, "\"ts\":-1,", V),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, "\"ts\":1.5,", V),
		/* collection */
		R(BASE, BODY, "", DEV, ID, PUT, SEQ, TS, V),
		R(BASE, BODY, "\"collection\":\"\",", DEV, ID, PUT, SEQ, TS, V),
		R(BASE, BODY, "\"collection\":\"a/b\",", DEV, ID, PUT, SEQ, TS,
		    V),
		R(BASE, BODY, "\"collection\":\"a:b\",", DEV, ID, PUT, SEQ, TS,
		    V),
		R(BASE, BODY, "\"collection\":7,", DEV, ID, PUT, SEQ, TS, V),
		/* id */
		R(BASE, BODY, COLL, DEV, "", PUT, SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, "\"id\":\"n 1\",", PUT, SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, "\"id\":\"n\\u00e9\",", PUT, SEQ, TS,
		    V),
		R(BASE, BODY, COLL, DEV, "\"id\":\"n\\u0000x\",", PUT, SEQ, TS,
		    V),
		R(BASE, BODY, COLL, DEV, "\"id\":\"n\xff\",", PUT, SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, "\"id\":[\"n1\"],", PUT, SEQ, TS, V),
		R(BASE, BODY, COLL, DEV,
		    "\"id\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		    "xxxxxxxxxxxxxxxxxxxxxxxx\",", PUT, SEQ, TS, V),
		/* device */
		R(BASE, BODY, COLL, "", ID, PUT, SEQ, TS, V),
		R(BASE, BODY, COLL, "\"device\":42,", ID, PUT, SEQ, TS, V),
		R(BASE, BODY, COLL, "\"device\":\"not base64!\",", ID, PUT, SEQ,
		    TS, V),
		R(BASE, BODY, COLL, "\"device\":\"$D=\",", ID, PUT, SEQ, TS, V),
		/* body */
		R(BASE, "", COLL, DEV, ID, PUT, SEQ, TS, V),
		R(BASE, "\"body\":null,", COLL, DEV, ID, PUT, SEQ, TS, V),
		R(BASE, "\"body\":[1],", COLL, DEV, ID, PUT, SEQ, TS, V),
		R(BASE, "\"body\":\"{}\",", COLL, DEV, ID, PUT, SEQ, TS, V),
		R(BASE, BODY, COLL, DEV, ID, DEL, SEQ, TS, V),
		R(BASE, "\"body\":null,", COLL, DEV, ID, DEL, SEQ, TS, V),
		/* unknown fields, shape of the text */
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, V ",\"extra\":1"),
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, V) " x",
		R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, V)
		    R(BASE, BODY, COLL, DEV, ID, PUT, SEQ, TS, V),
		"[1]",
		"\"put\"",
		"",
		"{",
	};
#undef R
#undef BASE
#undef BODY
#undef COLL
#undef DEV
#undef ID
#undef PUT
#undef DEL
#undef SEQ
#undef TS
#undef V
	struct keys	 k;
	char		*text;
	size_t		 i;

	(void)state;
	key_from_seed(SEED1, &k);
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		text = subst_device(good[i], k.pub_b64);
		expect_both(&k, text, 0);
		free(text);
	}
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		text = subst_device(bad[i], k.pub_b64);
		expect_both(&k, text, -EBADMSG);
		free(text);
	}
}

/*
 * record_make refuses what record_verify would refuse: a delete with a body,
 * a put without one (or with a non-object), bad names and numbers.  Its
 * outputs stay untouched.
 */
static void
test_make_bad_args(void **state)
{
	struct keys	 k;
	json_t		*obj, *arr;
	char		*text = (char *)"untouched", *sig = (char *)"untouched";
	size_t		 len = 77;

	(void)state;
	key_from_seed(SEED1, &k);
	obj = json_object();
	arr = json_array();
#define MAKE(op, base, c, i, seq, ts, body)				\
	record_make(&k, op, base, c, i, seq, ts, body, &text, &len, &sig)
	assert_int_equal(MAKE("delete", 1, "c", "i", 1, 1, obj), -EINVAL);
	assert_int_equal(MAKE("put", 1, "c", "i", 1, 1, NULL), -EINVAL);
	assert_int_equal(MAKE("put", 1, "c", "i", 1, 1, arr), -EINVAL);
	assert_int_equal(MAKE("patch", 1, "c", "i", 1, 1, obj), -EINVAL);
	assert_int_equal(MAKE(NULL, 1, "c", "i", 1, 1, obj), -EINVAL);
	assert_int_equal(MAKE("put", -1, "c", "i", 1, 1, obj), -EINVAL);
	assert_int_equal(MAKE("put", 1, "c", "i", 0, 1, obj), -EINVAL);
	assert_int_equal(MAKE("put", 1, "c", "i", 1, -1, obj), -EINVAL);
	assert_int_equal(MAKE("put", 1, "a/b", "i", 1, 1, obj), -EINVAL);
	assert_int_equal(MAKE("put", 1, "c:d", "i", 1, 1, obj), -EINVAL);
	assert_int_equal(MAKE("put", 1, "c", "", 1, 1, obj), -EINVAL);
	assert_int_equal(MAKE("put", 1, NULL, "i", 1, 1, obj), -EINVAL);
#undef MAKE
	assert_int_equal(record_make(NULL, "put", 1, "c", "i", 1, 1, obj,
	    &text, &len, &sig), -EINVAL);
	assert_string_equal(text, "untouched");
	assert_string_equal(sig, "untouched");
	assert_int_equal(len, 77);
	json_decref(obj);
	json_decref(arr);
}

/*
 * Malformed base64 in the signature or the key is -EINVAL, not a crash and
 * not a verification: wrong alphabet, padding, wrong length.
 */
static void
test_bad_base64(void **state)
{
	struct keys		 k;
	struct record_fields	 f;
	char			*text, *sig, *short_sig, *padded;
	size_t			 len;
	unsigned char		 raw[64];

	(void)state;
	key_from_seed(SEED1, &k);
	assert_int_equal(record_make(&k, "delete", 1, "c", "i", 1, 1, NULL,
	    &text, &len, &sig), 0);

	assert_int_equal(record_verify(text, len, "!!!!", k.pub_b64, &f),
	    -EINVAL);
	assert_int_equal(record_verify(text, len, "", NULL, &f), -EINVAL);
	assert_int_equal(keys_b64_decode(sig, raw, sizeof(raw)), 0);
	assert_int_equal(keys_b64_encode(raw, 63, &short_sig), 0);
	assert_int_equal(record_verify(text, len, short_sig, k.pub_b64, &f),
	    -EINVAL);
	padded = malloc(strlen(sig) + 3);
	assert_non_null(padded);
	strcpy(padded, sig);
	strcat(padded, "==");
	assert_int_equal(record_verify(text, len, padded, k.pub_b64, &f),
	    -EINVAL);

	assert_int_equal(record_verify(text, len, sig, "not-a-key", &f),
	    -EINVAL);
	assert_int_equal(record_verify(text, len, sig, "", &f), -EINVAL);
	assert_int_equal(record_verify_bytes("not-a-key", RECORD_SIG_PREFIX,
	    text, len, sig), -EINVAL);
	assert_int_equal(record_verify_bytes(k.pub_b64, RECORD_SIG_PREFIX,
	    text, len, "%%%"), -EINVAL);
	assert_int_equal(record_verify(NULL, 0, sig, NULL, &f), -EINVAL);
	assert_int_equal(record_verify(text, len, NULL, NULL, &f), -EINVAL);
	assert_int_equal(record_verify(text, len, sig, NULL, NULL), -EINVAL);

	/* Sanity: the untouched inputs do verify. */
	assert_int_equal(record_verify_bytes(k.pub_b64, RECORD_SIG_PREFIX,
	    text, len, sig), 0);
	free(padded);
	free(short_sig);
	free(text);
	free(sig);
}

/*
 * The prefix separates domains: a request signature is not a change
 * signature, nor the reverse, though the key and bytes are the same.
 */
static void
test_prefix_separation(void **state)
{
	static const char	 req_prefix[] = "ferry-request-v1\n";
	struct keys		 k;
	struct record_fields	 f;
	char			*text, *sig, *req_sig;
	size_t			 len;

	(void)state;
	key_from_seed(SEED1, &k);
	assert_int_equal(record_make(&k, "delete", 1, "c", "i", 1, 1, NULL,
	    &text, &len, &sig), 0);
	assert_int_equal(record_sign_bytes(&k, req_prefix, text, len,
	    &req_sig), 0);
	assert_string_not_equal(sig, req_sig);
	assert_int_equal(record_verify(text, len, req_sig, NULL, &f),
	    -EKEYREJECTED);
	assert_int_equal(record_verify_bytes(k.pub_b64, req_prefix, text, len,
	    sig), -EKEYREJECTED);
	assert_int_equal(record_verify_bytes(k.pub_b64, req_prefix, text, len,
	    req_sig), 0);
	assert_int_equal(record_verify_bytes(k.pub_b64, RECORD_SIG_PREFIX,
	    text, len, sig), 0);
	/* An empty message under a prefix is still a message. */
	free(req_sig);
	assert_int_equal(record_sign_bytes(&k, req_prefix, NULL, 0, &req_sig),
	    0);
	assert_int_equal(record_verify_bytes(k.pub_b64, req_prefix, "", 0,
	    req_sig), 0);
	free(req_sig);
	free(text);
	free(sig);
}

/* On failure *ret is left exactly as it was (ret_* written on success). */
static void
test_ret_untouched(void **state)
{
	struct keys		 k;
	struct record_fields	 f, before;
	char			*text, *sig;
	size_t			 len;

	(void)state;
	key_from_seed(SEED1, &k);
	assert_int_equal(record_make(&k, "delete", 1, "c", "i", 1, 1, NULL,
	    &text, &len, &sig), 0);
	memset(&f, 0x5a, sizeof(f));
	memcpy(&before, &f, sizeof(f));
	text[5] ^= 1;
	assert_int_equal(record_verify(text, len, sig, k.pub_b64, &f),
	    -EKEYREJECTED);
	assert_memory_equal(&f, &before, sizeof(f));
	assert_int_not_equal(record_verify(text, len, sig, NULL, &f), 0);
	assert_memory_equal(&f, &before, sizeof(f));
	free(text);
	free(sig);

	/* Destructors accept NULL and a zeroed struct. */
	record_fields_clear(NULL);
	memset(&f, 0, sizeof(f));
	record_fields_clear(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc8032_vectors),
		cmocka_unit_test(test_canonical_text),
		cmocka_unit_test(test_round_trip),
		cmocka_unit_test(test_real_number_verifies),
		cmocka_unit_test(test_tampered_record),
		cmocka_unit_test(test_tampered_signature),
		cmocka_unit_test(test_other_key),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_bad_fields),
		cmocka_unit_test(test_make_bad_args),
		cmocka_unit_test(test_bad_base64),
		cmocka_unit_test(test_prefix_separation),
		cmocka_unit_test(test_ret_untouched),
		cmocka_unit_test(test_body_span),
		cmocka_unit_test(test_rebuild),
	};

	return (cmocka_run_group_tests(tests, NULL, NULL));
}
