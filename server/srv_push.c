/*
 * srv_push: judge and apply a push batch; see srv_push.h for the rules.
 *
 * The order of checks is the point: the signature over the raw bytes comes
 * first, so nothing an impostor wrote (not even its change id) reaches the
 * store; the change-id check comes before the base check, so a retry of an
 * applied change is a harmless "duplicate" whatever happened to the
 * document since.  Versions only grow, so a change that once conflicted
 * conflicts again when resent: judging it again is safe.
 *
 * Every change of a batch comes from the requesting key, so the device's
 * max_seq is read once per batch, kept here as changes apply or conflict,
 * and written once before the batch commits.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "bodylimit.h"
#include "record.h"
#include "srv_db.h"
#include "srv_push.h"

#define SRV_PUSH_DUMP_FLAGS	(JSON_COMPACT | JSON_SORT_KEYS)

/* {"status":"rejected","error":<printf>} */
static json_t *
srv_push_rejected(const char *fmt, ...)
	__attribute__((format(printf, 1, 2)));

static json_t *
srv_push_rejected(const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	return json_pack("{s:s, s:s}", "status", "rejected", "error", msg);
}

/* What a JSON value is, in words, for saying what a stored body is instead
 * of an object. */
static const char *
srv_push_json_kind(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT:
		return "an object";
	case JSON_ARRAY:
		return "an array";
	case JSON_STRING:
		return "a string";
	case JSON_INTEGER:
	case JSON_REAL:
		return "a number";
	case JSON_TRUE:
	case JSON_FALSE:
		return "a boolean";
	case JSON_NULL:
	default:
		return "null";
	}
}

int
srv_push_stored_body(const char *collection, const char *id,
    const struct srv_doc *d, json_t **ret, char *why, size_t why_len)
{
	json_error_t err;
	json_t *body;

	/* Any JSON value, so that 5 is said to be a number, not "not JSON". */
	body = json_loads(d->body != NULL ? d->body : "",
	    JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &err);
	if (body == NULL) {
		if (json_error_code(&err) == json_error_out_of_memory)
			return -ENOMEM;
		snprintf(why, why_len, "the stored body of %s/%s is not JSON: "
		    "%s (line %d, column %d)", collection, id, err.text,
		    err.line, err.column);
		return -EBADMSG;
	}
	if (!json_is_object(body)) {
		snprintf(why, why_len, "the stored body of %s/%s is not a "
		    "JSON object but %s", collection, id,
		    srv_push_json_kind(body));
		json_decref(body);
		return -EBADMSG;
	}
	*ret = body;
	return 0;
}

/*
 * {"status":"conflict","current":{"version","deleted"[,"body"]}} for the
 * change f, in *ret.  0, -ENOMEM, or -EBADMSG with why saying what is
 * wrong with the stored body (srv_push_stored_body).
 */
static int
srv_push_conflict(const struct record_fields *f, const struct srv_doc *cur,
    json_t **ret, char *why, size_t why_len)
{
	json_t *current, *body, *res;
	int r;

	/* A document that does not exist is reported as version 0, deleted. */
	current = json_pack("{s:I, s:b}", "version", (json_int_t)cur->version,
	    "deleted", cur->deleted || cur->version == 0);
	if (current == NULL)
		return -ENOMEM;
	if (cur->version > 0 && !cur->deleted) {
		if ((r = srv_push_stored_body(f->collection, f->id, cur, &body,
		    why, why_len)) < 0) {
			json_decref(current);
			return r;
		}
		if (json_object_set_new(current, "body", body) != 0) {
			json_decref(current);
			return -ENOMEM;
		}
	}
	res = json_pack("{s:s, s:o}", "status", "conflict", "current", current);
	if (res == NULL)
		return -ENOMEM;
	*ret = res;
	return 0;
}

static json_t *
srv_push_versioned(const char *status, int64_t version)
{
	return json_pack("{s:s, s:I}", "status", status, "version",
	    (json_int_t)version);
}

void
srv_push_item_clear(struct srv_push_item *it)
{
	if (it == NULL)
		return;
	json_decref(it->result);
	record_fields_clear(&it->f);
	free(it->body_buf);
	memset(it, 0, sizeof *it);
}

void
srv_push_item_revoked(struct srv_push_item *it, const char *words)
{
	if (it->err < 0)
		return;
	json_decref(it->result);
	it->result = srv_push_rejected("revoked: the record's device key %s "
	    "was %s", it->signer, words);
	if (it->result == NULL)
		it->err = -ENOMEM;
}

void
srv_push_item_admit(struct srv_push_item *it)
{
	if (it->err < 0 || !it->foreign)
		return;
	json_decref(it->result);
	it->result = NULL;
}

void
srv_push_item_refuse(struct srv_push_item *it, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (it->err < 0)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	json_decref(it->result);
	it->foreign = false;	/* never admitted after this */
	if ((it->result = srv_push_rejected("%s", msg)) == NULL)
		it->err = -ENOMEM;
}

void
srv_push_item_forbidden(struct srv_push_item *it, const char *key,
    bool readable)
{
	if (it->err < 0)
		return;
	json_decref(it->result);
	it->result = srv_push_rejected("forbidden: key %s may not write "
	    "collection '%s' (%s on this server)", key, it->f.collection,
	    readable ? "it may only read it" : "it has no access to it");
	if (it->result == NULL)
		it->err = -ENOMEM;
}

/* The body's text: a slice of the record, or dumped if its layout is
 * not record_make's.  0 or -ENOMEM. */
static int
srv_push_body(struct srv_push_item *it)
{
	const struct record_fields *f = &it->f;
	size_t off, blen;

	if (record_body_span(it->text, it->len, f->base, f->collection,
	    f->device, f->id, f->seq, f->ts, &off, &blen) == 0) {
		it->body = it->text + off;
		it->body_len = blen;
		return 0;
	}
	if ((it->body_buf = json_dumps(f->body, SRV_PUSH_DUMP_FLAGS)) == NULL)
		return -ENOMEM;
	it->body = it->body_buf;
	it->body_len = strlen(it->body_buf);
	return 0;
}

void
srv_push_check(const char *key, json_t *item, struct srv_push_item *ret)
{
	struct srv_push_item *it = ret;
	const char *why;
	json_t *jrec, *jsig;
	int r;

	memset(it, 0, sizeof *it);
	jrec = json_object_get(item, "record");
	jsig = json_object_get(item, "sig");
	if (!json_is_object(item) || !json_is_string(jrec) ||
	    !json_is_string(jsig)) {
		it->result = srv_push_rejected("malformed change: expected "
		    "{\"record\":string,\"sig\":string}");
		goto out;
	}
	it->text = json_string_value(jrec);
	it->len = json_string_length(jrec);
	it->sig = json_string_value(jsig);
	if (it->len > SRV_PUSH_RECORD_MAX) {
		it->result = srv_push_rejected("too large: the record is %zu "
		    "bytes (at most %d)", it->len, SRV_PUSH_RECORD_MAX);
		goto out;
	}

	/* The bytes first: nothing in them counts until they verify. */
	r = record_verify(it->text, it->len, it->sig, NULL, &it->f);
	switch (r) {
	case 0:
		break;
	case -EKEYREJECTED:
		it->result = srv_push_rejected("bad signature: the record does "
		    "not verify against its device key");
		goto out;
	case -EBADMSG:
		it->result = srv_push_rejected("malformed record: not a valid "
		    "v1 change record (fields, types, names or device key)");
		goto out;
	case -EINVAL:
		it->result = srv_push_rejected("malformed signature: not "
		    "base64url of 64 bytes");
		goto out;
	default:
		it->err = r;
		return;
	}
	snprintf(it->signer, sizeof it->signer, "%s", it->f.device);
	if (it->f.body != NULL && (r = srv_push_body(it)) < 0) {
		it->err = r;
		return;
	}
	/* The body limit every reader relies on (bodylimit.h). */
	if (it->f.body != NULL && bodylimit_check_text(it->f.body,
	    it->body_len, &why) < 0) {
		it->result = srv_push_rejected("too large: body %s (the limit "
		    "is %d levels and %u bytes of compact JSON)", why,
		    BODYLIMIT_MAX_DEPTH, BODYLIMIT_MAX_BYTES);
		goto out;
	}
	/* Another key's record: refused, unless the caller admits it (a
	 * key retired in favour of this one), so it is checked in full. */
	if (strcmp(it->f.device, key) != 0) {
		it->foreign = true;
		it->result = srv_push_rejected("record device does not match "
		    "the requesting key");
		goto out;
	}
	return;
out:
	if (it->result == NULL)
		it->err = -ENOMEM;
}

struct srv_push_ctx {
	struct srv_db		*db;
	const char		*key;		/* the requesting key */
	int64_t			 max_seq;	/* the device's, as of now */
	bool			 max_dirty;
	struct srv_push_stats	 stats;
	char			*why;		/* what the store holds wrongly */
	size_t			 why_len;
};

/*
 * Judge a verified record and apply it if its base matches.  *ret gets the
 * result.  0 or -errno (store failure).
 */
static int
srv_push_judge(struct srv_push_ctx *c, const struct srv_push_item *it,
    bool was_conflict, json_t **ret)
{
	const struct record_fields *f = &it->f;
	struct srv_apply a;
	struct srv_doc cur;
	bool is_put;
	int64_t seq;
	int r;

	memset(&cur, 0, sizeof cur);
	if ((r = srv_db_doc_state(c->db, f->collection, f->id, &cur)) < 0)
		return r;
	is_put = strcmp(f->op, "put") == 0;
	if (!is_put && cur.version == 0 && f->base == 0) {
		*ret = srv_push_rejected("nothing to delete: %s/%s does not "
		    "exist", f->collection, f->id);
		c->stats.rejected++;
		r = *ret != NULL ? 0 : -ENOMEM;
		goto out;
	}
	if (f->base != cur.version) {
conflict:
		/* The conflict answer carries the current body. */
		if ((r = srv_db_doc_get(c->db, f->collection, f->id,
		    &cur)) < 0 ||
		    (r = srv_db_note_conflict(c->db, f->device, f->seq)) < 0 ||
		    (r = srv_push_conflict(f, &cur, ret, c->why,
		    c->why_len)) < 0)
			goto out;
		c->stats.conflict++;
		goto raise;
	}
	memset(&a, 0, sizeof a);
	a.collection = f->collection;
	a.id = f->id;
	a.version = cur.version + 1;
	a.op = f->op;
	a.body = is_put ? it->body : NULL;
	a.body_len = is_put ? it->body_len : 0;
	a.device = f->device;
	a.dseq = f->seq;
	a.ts = f->ts;
	a.record = it->text;
	a.record_len = it->len;
	a.sig = it->sig;
	if ((r = srv_db_apply(c->db, &a, &seq)) == -ESTALE) {
		/* Another instance moved the document since it was read:
		 * a lost race is a conflict, never an overwrite. */
		srv_doc_clear(&cur);
		goto conflict;
	}
	if (r < 0)
		goto out;
	/* It conflicted before and applies now: no longer a conflict. */
	if (was_conflict &&
	    (r = srv_db_forget_conflict(c->db, f->device, f->seq)) < 0)
		goto out;
	if ((*ret = srv_push_versioned("applied", a.version)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	c->stats.applied++;
raise:
	/* A record of a key retired in favour of this one: its own key's
	 * max_seq, never the requesting key's. */
	if (strcmp(f->device, c->key) != 0) {
		r = srv_db_set_max_seq(c->db, f->device, f->seq);
		goto out;
	}
	if (f->seq > c->max_seq) {
		c->max_seq = f->seq;
		c->max_dirty = true;
	}
	r = 0;
out:
	srv_doc_clear(&cur);
	return r;
}

/* One checked change.  *ret gets its result; < 0 only for the store. */
static int
srv_push_one(struct srv_push_ctx *c, const struct srv_push_item *it,
    json_t **ret)
{
	const struct record_fields *f = &it->f;
	struct srv_change_id seen;
	int64_t max_seq;
	int r;

	*ret = NULL;
	if (it->err < 0)
		return it->err;
	if (it->result != NULL) {
		*ret = json_incref(it->result);
		c->stats.rejected++;
		return 0;
	}
	memset(&seen, 0, sizeof seen);
	if ((r = srv_db_change_id_get(c->db, f->device, f->seq, &seen)) < 0)
		goto out;
	switch (seen.outcome) {
	case SRV_OUTCOME_APPLIED:
		if (seen.record_len != it->len ||
		    memcmp(seen.record, it->text, it->len) != 0) {
			*ret = srv_push_rejected("seq %" PRId64 " of this "
			    "device was already used by another record",
			    f->seq);
			goto rejected;
		}
		if ((*ret = srv_push_versioned("duplicate", seen.version)) ==
		    NULL) {
			r = -ENOMEM;
			goto out;
		}
		c->stats.duplicate++;
		r = 0;
		goto out;
	case SRV_OUTCOME_CONFLICT:
		break;
	case SRV_OUTCOME_NONE:
		max_seq = c->max_seq;
		if (strcmp(f->device, c->key) != 0 &&
		    (r = srv_db_max_seq(c->db, f->device, &max_seq)) < 0)
			goto out;
		if (f->seq <= max_seq) {
			*ret = srv_push_rejected("stale seq %" PRId64
			    " (device is at %" PRId64 "): replay or reordered",
			    f->seq, max_seq);
			goto rejected;
		}
		break;
	}
	r = srv_push_judge(c, it, seen.outcome == SRV_OUTCOME_CONFLICT, ret);
	goto out;

rejected:
	c->stats.rejected++;
	r = *ret != NULL ? 0 : -ENOMEM;
out:
	srv_change_id_clear(&seen);
	return r;
}

/*
 * Name the documents and change ids of the batch's verified changes to
 * the store, all at once, before judging any: on a shared store (several
 * instances, or worker threads) it locks the documents in its order, so
 * batches of different devices touching the same documents queue instead
 * of deadlocking, and it may read them all in one round trip instead of
 * one per change.  0 or -errno.
 */
static int
srv_push_batch_read(struct srv_db *db, const struct srv_push_item *items,
    size_t n)
{
	struct srv_batch_key *keys;
	size_t i, k = 0;
	int r;

	if (n == 0)
		return 0;
	if ((keys = calloc(n, sizeof *keys)) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if (items[i].err < 0 || items[i].result != NULL)
			continue;
		keys[k].collection = items[i].f.collection;
		keys[k].id = items[i].f.id;
		keys[k].device = items[i].f.device;
		keys[k].dseq = items[i].f.seq;
		k++;
	}
	r = srv_db_batch_read(db, keys, k);
	free(keys);
	return r;
}

int
srv_push_apply(struct srv_db *db, const char *key, struct srv_push_item *items,
    size_t n, json_t **ret_results, struct srv_push_stats *ret_stats,
    char *why, size_t why_len)
{
	struct srv_push_ctx c;
	json_t *results, *res;
	size_t i;
	int r;

	memset(&c, 0, sizeof c);
	c.db = db;
	c.key = key;
	c.why = why;
	c.why_len = why_len;
	if ((r = srv_db_max_seq(db, key, &c.max_seq)) < 0 ||
	    (r = srv_push_batch_read(db, items, n)) < 0)
		return r;
	if ((results = json_array()) == NULL)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		if ((r = srv_push_one(&c, &items[i], &res)) < 0)
			goto fail;
		if (json_array_append_new(results, res) != 0) {
			r = -ENOMEM;
			goto fail;
		}
	}
	if (c.max_dirty && (r = srv_db_set_max_seq(db, key, c.max_seq)) < 0)
		goto fail;
	*ret_results = results;
	*ret_stats = c.stats;
	return 0;
fail:
	json_decref(results);
	return r;
}
