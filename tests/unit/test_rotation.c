/*
 * test_rotation: key rotation statements (lib/rotation; docs/protocol.md
 * "Rotating a key").
 *
 * Guards the promise that a statement the server takes was made by both
 * keys and has exactly one spelling: one made by rotation_make verifies;
 * a byte changed, either signature swapped for another statement's, the
 * wrong requesting key, another member, another spelling of the same
 * members (even signed by both keys), a new key equal to the old one or
 * malformed, or a negative seq are all refused, each with a reason.
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
#include <sodium.h>

#include "keys.h"
#include "record.h"
#include "rotation.h"

static void
key_new(struct keys *k)
{
	assert_int_equal(crypto_sign_keypair(k->pk, k->sk), 0);
	assert_non_null(sodium_bin2base64(k->pub_b64, sizeof k->pub_b64, k->pk,
	    sizeof k->pk, sodium_base64_VARIANT_URLSAFE_NO_PADDING));
}

struct stmt {
	char	*text;
	size_t	 len;
	char	*so;
	char	*sn;
};

static void
stmt_make(const struct keys *o, const struct keys *n, int64_t seq,
    struct stmt *s)
{
	assert_int_equal(rotation_make(o, n, seq, 1796300000000, &s->text,
	    &s->len, &s->so, &s->sn), 0);
}

static void
stmt_free(struct stmt *s)
{
	free(s->text);
	free(s->so);
	free(s->sn);
}

/* text signed by both keys as a statement would be. */
static int
verify_signed(const struct keys *o, const struct keys *n, const char *text,
    const char **why)
{
	struct rotation_fields f;
	char *so, *sn;
	int r;

	assert_int_equal(record_sign_bytes(o, ROTATION_SIG_PREFIX, text,
	    strlen(text), &so), 0);
	assert_int_equal(record_sign_bytes(n, ROTATION_SIG_PREFIX, text,
	    strlen(text), &sn), 0);
	r = rotation_verify(text, strlen(text), so, sn, o->pub_b64, &f, why);
	free(so);
	free(sn);
	return r;
}

static void
test_made_verifies(void **state)
{
	struct keys o, n;
	struct rotation_fields f;
	struct stmt s;
	const char *why = NULL;

	(void)state;
	key_new(&o);
	key_new(&n);
	stmt_make(&o, &n, 41, &s);
	assert_int_equal(rotation_verify(s.text, s.len, s.so, s.sn,
	    o.pub_b64, &f, &why), 0);
	assert_string_equal(f.old_key, o.pub_b64);
	assert_string_equal(f.new_key, n.pub_b64);
	assert_int_equal(f.seq, 41);
	assert_int_equal(f.ts, 1796300000000);
	assert_non_null(strstr(s.text, "\"seq\":41,\"ts\":1796300000000,"
	    "\"v\":1}"));
	stmt_free(&s);
}

static void
test_tampered_refused(void **state)
{
	struct keys o, n, x;
	struct rotation_fields f;
	struct stmt s, t;
	const char *why = NULL;
	char *p;

	(void)state;
	key_new(&o);
	key_new(&n);
	key_new(&x);
	stmt_make(&o, &n, 7, &s);
	stmt_make(&o, &x, 7, &t);
	/* A byte changed: the old key's signature fails first. */
	p = strstr(s.text, "\"seq\":7");
	p[6] = '8';
	assert_int_equal(rotation_verify(s.text, s.len, s.so, s.sn,
	    o.pub_b64, &f, &why), -EKEYREJECTED);
	assert_string_equal(why, "the old key's signature");
	p[6] = '7';
	/* Another statement's new signature. */
	assert_int_equal(rotation_verify(s.text, s.len, s.so, t.sn,
	    o.pub_b64, &f, &why), -EKEYREJECTED);
	assert_string_equal(why, "the new key's signature");
	/* Sent by another key than the old one. */
	assert_int_equal(rotation_verify(s.text, s.len, s.so, s.sn,
	    n.pub_b64, &f, &why), -EKEYREJECTED);
	assert_string_equal(why, "the old key's signature");
	stmt_free(&s);
	stmt_free(&t);
}

/* tmpl with each @N replaced by new, each @O by old, into out. */
static void
fill(const char *tmpl, const char *new, const char *old, char *out,
    size_t size)
{
	size_t n = 0;

	for (; *tmpl != '\0'; tmpl++) {
		const char *v = NULL;

		if (tmpl[0] == '@' && (tmpl[1] == 'N' || tmpl[1] == 'O'))
			v = *++tmpl == 'N' ? new : old;
		if (v != NULL) {
			assert_true(n + strlen(v) < size);
			memcpy(out + n, v, strlen(v));
			n += strlen(v);
		} else {
			assert_true(n + 1 < size);
			out[n++] = *tmpl;
		}
	}
	out[n] = '\0';
}

static void
test_shape_refused(void **state)
{
	static const struct {
		const char	*tmpl;	/* @N: the new key, @O: the old */
		bool		 same;	/* signed by the old key twice */
		const char	*why;	/* in the reason */
	} bad[] = {
		/* Another spelling of the same members. */
		{ "{\"new_key\": \"@N\",\"old_key\":\"@O\",\"seq\":1,"
		    "\"ts\":5,\"v\":1}", false, "canonical" },
		{ "{\"new_key\":\"@N\",\"old_key\":\"@O\",\"seq\":1,"
		    "\"ts\":5,\"v\":1,\"x\":0}", false, "exactly" },
		{ "{\"new_key\":\"@N\",\"old_key\":\"@O\",\"seq\":1,"
		    "\"seq\":2,\"ts\":5,\"v\":1}", false, "not JSON" },
		{ "{\"new_key\":\"@N\",\"old_key\":\"@N\",\"seq\":1,"
		    "\"ts\":5,\"v\":1}", false, "not the requesting key" },
		{ "{\"new_key\":\"@O\",\"old_key\":\"@O\",\"seq\":1,"
		    "\"ts\":5,\"v\":1}", true, "is the old key" },
		{ "{\"new_key\":\"short\",\"old_key\":\"@O\",\"seq\":1,"
		    "\"ts\":5,\"v\":1}", false, "not an Ed25519 public key" },
		{ "{\"new_key\":\"@N\",\"old_key\":\"@O\",\"seq\":-1,"
		    "\"ts\":5,\"v\":1}", false, "seq must be >= 0" },
		{ "{\"new_key\":\"@N\",\"old_key\":\"@O\",\"seq\":1,"
		    "\"ts\":5,\"v\":2}", false, "v must be 1" },
	};
	struct keys o, n;
	const char *why;
	char text[512];
	size_t i;

	(void)state;
	key_new(&o);
	key_new(&n);
	for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
		fill(bad[i].tmpl, n.pub_b64, o.pub_b64, text, sizeof text);
		why = NULL;
		assert_int_equal(verify_signed(&o, bad[i].same ? &o : &n, text,
		    &why), -EBADMSG);
		assert_non_null(why);
		assert_non_null(strstr(why, bad[i].why));
	}
}

static void
test_make_bad_seq(void **state)
{
	struct keys o, n;
	struct stmt s;

	(void)state;
	key_new(&o);
	key_new(&n);
	assert_int_equal(rotation_make(&o, &n, -1, 1, &s.text, &s.len, &s.so,
	    &s.sn), -EINVAL);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_made_verifies),
		cmocka_unit_test(test_tampered_refused),
		cmocka_unit_test(test_shape_refused),
		cmocka_unit_test(test_make_bad_seq),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
