/*
 * srv_rotate: rotation statements, the retired set, and what a retired
 * key may still push; see srv_rotate.h.
 *
 * Invariant: a key is in at most one rotation as old key and at most one
 * as new key (the store refuses a second), so following new_key from a
 * retired key walks a chain without a loop; the walk is bounded by the
 * set's size anyway.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rotation.h"
#include "srv_rotate.h"

/* The statement's time may be this far from the server's (ms). */
#define SRV_ROTATE_SKEW_MS	(300 * 1000)

struct srv_retired {
	struct srv_retirement	*v;
	size_t			 n;
	size_t			 cap;
};

static int
srv_retired_cmp(const void *a, const void *b)
{
	const struct srv_retirement *x = a, *y = b;

	return strcmp(x->old_key, y->old_key);
}

void
srv_retired_free(struct srv_retired *rt)
{
	if (rt == NULL)
		return;
	free(rt->v);
	free(rt);
}

size_t
srv_retired_count(const struct srv_retired *rt)
{
	return rt != NULL ? rt->n : 0;
}

static int
srv_retired_add(struct srv_retired *rt, const struct srv_retirement *re)
{
	struct srv_retirement *v;

	if (rt->n == rt->cap) {
		size_t cap = rt->cap == 0 ? 8 : rt->cap * 2;

		if ((v = reallocarray(rt->v, cap, sizeof *v)) == NULL)
			return -ENOMEM;
		rt->v = v;
		rt->cap = cap;
	}
	rt->v[rt->n++] = *re;
	return 0;
}

static void
srv_retired_seal(struct srv_retired *rt)
{
	if (rt->n > 1)
		qsort(rt->v, rt->n, sizeof *rt->v, srv_retired_cmp);
}

const struct srv_retirement *
srv_retired_find(const struct srv_retired *rt, const char *key)
{
	struct srv_retirement k;

	if (rt == NULL || rt->n == 0 || key == NULL ||
	    strlen(key) != KEYS_PUB_B64_LEN)
		return NULL;
	memcpy(k.old_key, key, KEYS_PUB_B64_LEN + 1);
	return bsearch(&k, rt->v, rt->n, sizeof *rt->v, srv_retired_cmp);
}

const char *
srv_retired_predecessor(const struct srv_retired *rt, const char *key)
{
	size_t i;

	/* Sorted by old key: a scan, done only where grants exist. */
	for (i = 0; rt != NULL && key != NULL && i < rt->n; i++)
		if (strcmp(rt->v[i].new_key, key) == 0)
			return rt->v[i].old_key;
	return NULL;
}

void
srv_retirement_words(const struct srv_retirement *re, char *buf, size_t size)
{
	char when[64];

	srv_access_when(re->ms, when, sizeof when);
	snprintf(buf, size, "retired on %s in favour of %s", when,
	    re->new_key);
}

json_t *
srv_retirement_json(const struct srv_retirement *re)
{
	return json_pack("{s:I,s:s}", "time", (json_int_t)re->ms, "new_key",
	    re->new_key);
}

json_t *
srv_rotate_answer(const struct srv_retirement *re)
{
	return json_pack("{s:s,s:s,s:I,s:I}", "old_key", re->old_key,
	    "new_key", re->new_key, "seq", (json_int_t)re->seq, "time",
	    (json_int_t)re->ms);
}

struct srv_rotate_load_ctx {
	struct srv_keys		*ks;
	struct srv_retired	*rt;
};

static int
srv_rotate_load_cb(const struct srv_rotation *rot, void *arg)
{
	struct srv_rotate_load_ctx *c = arg;
	struct srv_retirement re;
	int r;

	if (strlen(rot->old_key) != KEYS_PUB_B64_LEN ||
	    strlen(rot->new_key) != KEYS_PUB_B64_LEN)
		return 0;	/* not ours to have written: ignored */
	memset(&re, 0, sizeof re);
	memcpy(re.old_key, rot->old_key, KEYS_PUB_B64_LEN + 1);
	memcpy(re.new_key, rot->new_key, KEYS_PUB_B64_LEN + 1);
	re.seq = rot->seq;
	re.ms = rot->ms;
	/* The new key goes by the old one's name (a chain: in order). */
	r = srv_keys_merge(c->ks, re.new_key, srv_keys_name(c->ks,
	    re.old_key));
	if (r == -ENOMEM || (r = srv_retired_add(c->rt, &re)) < 0)
		return r;
	return 0;
}

int
srv_rotate_load(struct srv_db *db, struct srv_keys *ks,
    struct srv_retired **ret)
{
	struct srv_rotate_load_ctx c;
	int r;

	c.ks = ks;
	if ((c.rt = calloc(1, sizeof *c.rt)) == NULL)
		return -ENOMEM;
	if ((r = srv_db_rotations(db, srv_rotate_load_cb, &c)) < 0) {
		srv_retired_free(c.rt);
		return r;
	}
	srv_retired_seal(c.rt);
	*ret = c.rt;
	return 0;
}

void
srv_rotate_stmt_clear(struct srv_rotate_stmt *st)
{
	free(st->text);
	free(st->sig_old);
	free(st->sig_new);
	memset(st, 0, sizeof *st);
}

/* Refuse: status code and reason. */
static int
srv_rotate_refuse(int *ret_code, char *why, size_t whysize, int code,
    const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int
srv_rotate_refuse(int *ret_code, char *why, size_t whysize, int code,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whysize, fmt, ap);
	va_end(ap);
	*ret_code = code;
	return -EINVAL;
}

int
srv_rotate_check(const char *key, const unsigned char *body, size_t len,
    const struct srv_keys *ks, const struct srv_revoked *rv,
    const struct srv_retired *rt, int64_t now_ms, struct srv_rotate_stmt *ret,
    const struct srv_retirement **ret_done, int *ret_code, char *why,
    size_t whysize)
{
	const struct srv_retirement *re;
	struct rotation_fields f;
	struct srv_rotate_stmt st;
	const char *text, *so, *sn, *bad = NULL;
	json_error_t jerr;
	json_t *o;
	size_t tlen;
	int r;

	memset(&st, 0, sizeof st);
	if ((o = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL)
		return srv_rotate_refuse(ret_code, why, whysize, 400,
		    "malformed JSON: %s", jerr.text);
	if (json_unpack(o, "{s:s%,s:s,s:s!}", "statement", &text, &tlen,
	    "sig_old", &so, "sig_new", &sn) < 0) {
		json_decref(o);
		return srv_rotate_refuse(ret_code, why, whysize, 400,
		    "expected {\"statement\":string,\"sig_old\":string,"
		    "\"sig_new\":string}");
	}
	r = rotation_verify(text, tlen, so, sn, key, &f, &bad);
	if (r == 0 && ((st.text = strndup(text, tlen)) == NULL ||
	    (st.sig_old = strdup(so)) == NULL ||
	    (st.sig_new = strdup(sn)) == NULL))
		r = -ENOMEM;
	json_decref(o);
	if (r == -ENOMEM) {
		srv_rotate_stmt_clear(&st);
		return srv_rotate_refuse(ret_code, why, whysize, 500,
		    "out of memory");
	}
	if (r == -EKEYREJECTED)
		return srv_rotate_refuse(ret_code, why, whysize, 400,
		    "bad rotation statement: %s does not verify", bad);
	if (r < 0)
		return srv_rotate_refuse(ret_code, why, whysize, 400,
		    "bad rotation statement: %s", bad);

	/* A retry of a rotation that was made: the same answer. */
	if ((re = srv_retired_find(rt, key)) != NULL) {
		srv_rotate_stmt_clear(&st);
		if (strcmp(re->new_key, f.new_key) == 0) {
			*ret_done = re;
			return 1;
		}
		return srv_rotate_refuse(ret_code, why, whysize, 409,
		    "key %s was retired already, in favour of %s", key,
		    re->new_key);
	}
	if (f.ts < now_ms - SRV_ROTATE_SKEW_MS ||
	    f.ts > now_ms + SRV_ROTATE_SKEW_MS) {
		srv_rotate_stmt_clear(&st);
		return srv_rotate_refuse(ret_code, why, whysize, 400,
		    "bad rotation statement: its ts is more than %d s from "
		    "the server's clock", SRV_ROTATE_SKEW_MS / 1000);
	}
	if (srv_revoked_find(rv, f.new_key) != NULL)
		bad = "was revoked";
	else if (srv_retired_find(rt, f.new_key) != NULL)
		bad = "was retired";
	else if (srv_keys_allowed(ks, f.new_key))
		bad = "is already allowed";
	if (bad != NULL) {
		srv_rotate_stmt_clear(&st);
		return srv_rotate_refuse(ret_code, why, whysize, 409,
		    "the new key %s %s on this server: a rotation needs a "
		    "key never used here", f.new_key, bad);
	}
	memcpy(st.ret.old_key, f.old_key, sizeof st.ret.old_key);
	memcpy(st.ret.new_key, f.new_key, sizeof st.ret.new_key);
	st.ret.seq = f.seq;
	st.ret.ms = now_ms;
	*ret = st;
	/* The row points into *ret, not into this frame. */
	ret->row.old_key = ret->ret.old_key;
	ret->row.new_key = ret->ret.new_key;
	ret->row.seq = f.seq;
	ret->row.ms = now_ms;
	ret->row.statement = ret->text;
	ret->row.sig_old = ret->sig_old;
	ret->row.sig_new = ret->sig_new;
	return 0;
}

static int
srv_rotate_copy_key(const char *key, const char *name, void *arg)
{
	return srv_keys_merge(arg, key, name) == -ENOMEM ? -ENOMEM : 0;
}

int
srv_rotate_apply(const struct srv_keys *ks, const struct srv_retired *rt,
    const struct srv_rotate_stmt *st, struct srv_keys **ret_keys,
    struct srv_retired **ret_retired)
{
	struct srv_keys *nks = NULL;
	struct srv_retired *nrt = NULL;
	size_t i;
	int r;

	if ((r = srv_keys_empty(&nks)) < 0)
		return r;
	if ((r = srv_keys_foreach(ks, srv_rotate_copy_key, nks)) < 0 ||
	    (r = srv_keys_merge(nks, st->ret.new_key, srv_keys_name(ks,
	    st->ret.old_key))) < 0)
		goto fail;
	r = -ENOMEM;
	if ((nrt = calloc(1, sizeof *nrt)) == NULL)
		goto fail;
	for (i = 0; i < srv_retired_count(rt); i++)
		if ((r = srv_retired_add(nrt, &rt->v[i])) < 0)
			goto fail;
	if ((r = srv_retired_add(nrt, &st->ret)) < 0)
		goto fail;
	srv_retired_seal(nrt);
	*ret_keys = nks;
	*ret_retired = nrt;
	return 0;
fail:
	srv_keys_free(nks);
	srv_retired_free(nrt);
	return r;
}

/* Whether key follows old, in one or more rotations, and seq is within
 * what old signed before its retirement. */
static const struct srv_retirement *
srv_rotate_succeeds(const struct srv_retired *rt, const char *old,
    int64_t seq, const char *key, bool *ret_ok)
{
	const struct srv_retirement *first, *re;
	size_t steps;

	*ret_ok = false;
	if ((first = srv_retired_find(rt, old)) == NULL)
		return NULL;
	if (seq > first->seq)
		return first;
	for (re = first, steps = 0; re != NULL && steps < rt->n;
	    re = srv_retired_find(rt, re->new_key), steps++)
		if (strcmp(re->new_key, key) == 0) {
			*ret_ok = true;
			break;
		}
	return first;
}

void
srv_rotate_push_admit(const struct srv_retired *rt, const char *key,
    struct srv_push_item *items, size_t n)
{
	const struct srv_retirement *re;
	char words[256];
	size_t i;
	bool ok;

	if (srv_retired_count(rt) == 0)
		return;
	for (i = 0; i < n; i++) {
		if (!items[i].foreign || items[i].err < 0)
			continue;
		re = srv_rotate_succeeds(rt, items[i].signer, items[i].f.seq,
		    key, &ok);
		if (re == NULL)
			continue;	/* another device's: stays refused */
		if (ok) {
			srv_push_item_admit(&items[i]);
			continue;
		}
		srv_retirement_words(re, words, sizeof words);
		if (items[i].f.seq > re->seq)
			srv_push_item_refuse(&items[i], "retired: the record's "
			    "device key %s was %s after seq %lld; this record "
			    "(seq %lld) came later", items[i].signer, words,
			    (long long)re->seq, (long long)items[i].f.seq);
		else
			srv_push_item_refuse(&items[i], "record device does "
			    "not match the requesting key (the record's key "
			    "was %s, not the requesting key)", words);
	}
}
