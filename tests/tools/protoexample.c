/*
 * protoexample: print the worked examples of docs/protocol.md.
 *
 *   protoexample
 *	prints, as the Markdown that docs/protocol.md holds, every example
 *	block: a device key made from a fixed seed, two change records and
 *	their signatures (lib/record.c), and two signed requests
 *	(lib/auth.c), each block after an HTML comment that names it:
 *
 *	    <!-- example: NAME -->
 *	    ```
 *	    CONTENT
 *	    ```
 *
 * Ed25519 signatures are deterministic, so the output is the same on every
 * run and machine: it is how the examples in the document were made, and
 * tests/t/t4002-interop-protocol.sh compares the document's blocks with
 * it (and checks them again from the document alone, in Python).  The
 * signing is done by the same code as ferryd's and ferry-server's; only
 * the "message" blocks, which show the bytes that code signs, are spelled
 * out here, from the document's recipe.
 *
 * Exit status: 0, or 1 if something cannot be made (out of memory).
 */
#include "autoconfig.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#include <sodium.h>

#include "auth.h"
#include "keys.h"
#include "record.h"

#define EX_RECORD_TS	INT64_C(1763800000000)	/* milliseconds */
#define EX_REQUEST_TS	INT64_C(1763800000)	/* seconds */

/* One named block, in the layout docs/protocol.md uses. */
static void
ex_block(const char *name, const char *content)
{
	printf("<!-- example: %s -->\n```\n%s\n```\n\n", name, content);
}

/* A block named NAME-SUFFIX (NAME alone when suffix is empty). */
static void
ex_block_of(const char *name, const char *suffix, const char *content)
{
	char full[64];

	snprintf(full, sizeof full, "%s%s%s", name, *suffix != '\0' ? "-" : "",
	    suffix);
	ex_block(full, content);
}

/* The message a request signature covers, after its prefix line. */
static char *
ex_request_message(const char *method, const char *target, int64_t ts,
    const char *body, char *hex, size_t hexlen)
{
	unsigned char hash[crypto_hash_sha256_BYTES];
	char *msg;

	crypto_hash_sha256(hash, (const unsigned char *)body, strlen(body));
	sodium_bin2hex(hex, hexlen, hash, sizeof hash);
	if (asprintf(&msg, "%s%s\n%s\n%" PRId64 "\n%s", AUTH_SIG_PREFIX,
	    method, target, ts, hex) < 0)
		return NULL;
	return msg;
}

/* Print the blocks of one signed request: hash, message, header. */
static int
ex_request(const struct keys *k, const char *name, const char *method,
    const char *target, const char *body)
{
	char hex[crypto_hash_sha256_BYTES * 2 + 1];
	char *msg, *hdr = NULL;

	if ((msg = ex_request_message(method, target, EX_REQUEST_TS, body, hex,
	    sizeof hex)) == NULL ||
	    auth_header_make(k, method, target, body, strlen(body),
	    EX_REQUEST_TS, &hdr) < 0) {
		free(msg);
		return -1;
	}
	ex_block_of(name, "body-sha256", hex);
	ex_block_of(name, "message", msg);
	ex_block_of(name, "authorization", hdr);
	free(msg);
	free(hdr);
	return 0;
}

/* Print the blocks of one record: its text, signed bytes and signature. */
static int
ex_record(const struct keys *k, const char *name, const char *op,
    int64_t base, int64_t seq, json_t *body, char **ret_text, char **ret_sig)
{
	char *text, *sig, *signed_bytes;
	size_t len;

	if (record_make(k, op, base, "notes", "n1", seq, EX_RECORD_TS, body,
	    &text, &len, &sig) < 0)
		return -1;
	if (asprintf(&signed_bytes, "%s%s", RECORD_SIG_PREFIX, text) < 0) {
		free(text);
		free(sig);
		return -1;
	}
	ex_block_of(name, "", text);
	ex_block_of(name, "signed-bytes", signed_bytes);
	ex_block_of(name, "sig", sig);
	free(signed_bytes);
	*ret_text = text;
	*ret_sig = sig;
	return 0;
}

int
main(void)
{
	unsigned char seed[crypto_sign_SEEDBYTES];
	char seed_hex[sizeof seed * 2 + 1];
	struct keys k;
	json_t *body = NULL, *push = NULL;
	char *put_text = NULL, *put_sig = NULL, *del_text = NULL;
	char *del_sig = NULL, *push_text = NULL;
	size_t i;
	int rc = 1;

	if (sodium_init() < 0)
		return 1;
	/* The seed: the bytes 0x00, 0x01, ..., 0x1f. */
	for (i = 0; i < sizeof seed; i++)
		seed[i] = (unsigned char)i;
	crypto_sign_seed_keypair(k.pk, k.sk, seed);
	sodium_bin2base64(k.pub_b64, sizeof k.pub_b64, k.pk, sizeof k.pk,
	    sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_bin2hex(seed_hex, sizeof seed_hex, seed, sizeof seed);
	ex_block("seed", seed_hex);
	ex_block("device", k.pub_b64);

	/* The canonical form of a body with every kind of character. */
	if ((body = json_pack("{s:{s:s, s:s}, s:[i, i, b, n]}", "notes",
	    "y", "tab\there, \x01 and \x1f", "x",
	    "\"q\" \\ / caf\xc3\xa9 \xe2\x82\xac", "list", 1, -2, 1)) == NULL ||
	    (push_text = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL)
		goto out;
	ex_block("canonical", push_text);
	json_decref(body);
	free(push_text);
	push_text = NULL;

	if ((body = json_pack("{s:s, s:[s, s], s:b}", "title", "shopping",
	    "items", "milk", "eggs", "done", 0)) == NULL)
		goto out;
	if (ex_record(&k, "record-put", "put", 0, 1, body, &put_text,
	    &put_sig) < 0 ||
	    ex_record(&k, "record-delete", "delete", 1, 2, NULL, &del_text,
	    &del_sig) < 0)
		goto out;

	/* The push of the first record, as ferryd would send it. */
	if ((push = json_pack("{s:[{s:s, s:s}]}", "changes", "record",
	    put_text, "sig", put_sig)) == NULL ||
	    (push_text = json_dumps(push, JSON_COMPACT | JSON_SORT_KEYS)) ==
	    NULL)
		goto out;
	ex_block("push-body", push_text);
	if (ex_request(&k, "push", "POST", "/v1/push", push_text) < 0 ||
	    ex_request(&k, "changes", "GET", "/v1/changes?since=0&limit=2",
	    "") < 0)
		goto out;
	rc = 0;
out:
	sodium_memzero(&k, sizeof k);
	json_decref(body);
	json_decref(push);
	free(put_text);
	free(put_sig);
	free(del_text);
	free(del_sig);
	free(push_text);
	if (rc != 0)
		fprintf(stderr, "protoexample: out of memory\n");
	return rc;
}
