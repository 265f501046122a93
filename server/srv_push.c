/*
 * srv_push: judge and apply a push batch; see srv_push.h for the rules.
 *
 * The order of checks is the point: the signature over the raw bytes comes
 * first, so nothing an impostor wrote (not even its change id) reaches the
 * store; the change-id check comes before the base check, so a retry of an
 * applied change is a harmless "duplicate" whatever happened to the
 * document since.  Versions only grow, so a change that once conflicted
 * conflicts again when resent: judging it again is safe.
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

/* {"status":"conflict","current":{"version","deleted"[,"body"]}} */
static int
srv_push_conflict(const struct srv_doc *cur, json_t **ret)
{
	json_t *current, *body, *res;

	/* A document that does not exist is reported as version 0, deleted. */
	current = json_pack("{s:I, s:b}", "version", (json_int_t)cur->version,
	    "deleted", cur->deleted || cur->version == 0);
	if (current == NULL)
		return -ENOMEM;
	if (cur->version > 0 && !cur->deleted) {
		body = json_loads(cur->body != NULL ? cur->body : "",
		    JSON_REJECT_DUPLICATES, NULL);
		if (!json_is_object(body)) {
			/* The store gave back what it never accepted. */
			json_decref(body);
			json_decref(current);
			return -EIO;
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

/*
 * Judge a verified record from the requesting device and apply it if its
 * base matches.  *ret gets the result.  0 or -errno (store failure).
 */
static int
srv_push_judge(struct srv_db *db, const struct record_fields *f,
    const char *text, size_t len, const char *sig, json_t **ret,
    struct srv_push_stats *stats)
{
	struct srv_apply a;
	struct srv_doc cur;
	bool is_put;
	char *body = NULL;
	int64_t seq;
	int r;

	memset(&cur, 0, sizeof cur);
	if ((r = srv_db_doc_get(db, f->collection, f->id, &cur)) < 0)
		return r;
	is_put = strcmp(f->op, "put") == 0;
	if (!is_put && cur.version == 0 && f->base == 0) {
		*ret = srv_push_rejected("nothing to delete: %s/%s does not "
		    "exist", f->collection, f->id);
		stats->rejected++;
		r = *ret != NULL ? 0 : -ENOMEM;
		goto out;
	}
	if (f->base != cur.version) {
		if ((r = srv_db_note_conflict(db, f->device, f->seq)) < 0 ||
		    (r = srv_push_conflict(&cur, ret)) < 0)
			goto out;
		stats->conflict++;
		goto out;
	}
	if (is_put && (body = json_dumps(f->body, SRV_PUSH_DUMP_FLAGS)) ==
	    NULL) {
		r = -ENOMEM;
		goto out;
	}
	memset(&a, 0, sizeof a);
	a.collection = f->collection;
	a.id = f->id;
	a.version = cur.version + 1;
	a.op = f->op;
	a.body = body;
	a.device = f->device;
	a.dseq = f->seq;
	a.ts = f->ts;
	a.record = text;
	a.record_len = len;
	a.sig = sig;
	if ((r = srv_db_apply(db, &a, &seq)) < 0)
		goto out;
	if ((*ret = srv_push_versioned("applied", a.version)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	stats->applied++;
	r = 0;
out:
	free(body);
	srv_doc_clear(&cur);
	return r;
}

/* One change of the batch.  *ret gets its result; < 0 only for the store. */
static int
srv_push_one(struct srv_db *db, const char *key, json_t *item, json_t **ret,
    struct srv_push_stats *stats)
{
	struct record_fields f;
	struct srv_change_id seen;
	json_t *jrec, *jsig;
	const char *text, *sig;
	int64_t max_seq;
	size_t len;
	int r;

	memset(&f, 0, sizeof f);
	memset(&seen, 0, sizeof seen);
	*ret = NULL;
	jrec = json_object_get(item, "record");
	jsig = json_object_get(item, "sig");
	if (!json_is_object(item) || !json_is_string(jrec) ||
	    !json_is_string(jsig)) {
		*ret = srv_push_rejected("malformed change: expected "
		    "{\"record\":string,\"sig\":string}");
		goto rejected;
	}
	text = json_string_value(jrec);
	len = json_string_length(jrec);
	sig = json_string_value(jsig);
	if (len > SRV_PUSH_RECORD_MAX) {
		*ret = srv_push_rejected("too large: the record is %zu bytes "
		    "(at most %d)", len, SRV_PUSH_RECORD_MAX);
		goto rejected;
	}

	/* The bytes first: nothing in them counts until they verify. */
	r = record_verify(text, len, sig, NULL, &f);
	switch (r) {
	case 0:
		break;
	case -EKEYREJECTED:
		*ret = srv_push_rejected("bad signature: the record does not "
		    "verify against its device key");
		goto rejected;
	case -EBADMSG:
		*ret = srv_push_rejected("malformed record: not a valid v1 "
		    "change record (fields, types, names or device key)");
		goto rejected;
	case -EINVAL:
		*ret = srv_push_rejected("malformed signature: not base64url "
		    "of 64 bytes");
		goto rejected;
	default:
		return r;
	}
	if (strcmp(f.device, key) != 0) {
		*ret = srv_push_rejected("record device does not match the "
		    "requesting key");
		goto rejected;
	}

	if ((r = srv_db_change_id_get(db, f.device, f.seq, &seen)) < 0)
		goto out;
	switch (seen.outcome) {
	case SRV_OUTCOME_APPLIED:
		if (seen.record_len != len ||
		    memcmp(seen.record, text, len) != 0) {
			*ret = srv_push_rejected("seq %" PRId64 " of this "
			    "device was already used by another record",
			    f.seq);
			goto rejected;
		}
		if ((*ret = srv_push_versioned("duplicate", seen.version)) ==
		    NULL) {
			r = -ENOMEM;
			goto out;
		}
		stats->duplicate++;
		r = 0;
		goto out;
	case SRV_OUTCOME_CONFLICT:
		break;
	case SRV_OUTCOME_NONE:
		if ((r = srv_db_max_seq(db, f.device, &max_seq)) < 0)
			goto out;
		if (f.seq <= max_seq) {
			*ret = srv_push_rejected("stale seq %" PRId64
			    " (device is at %" PRId64 "): replay or reordered",
			    f.seq, max_seq);
			goto rejected;
		}
		break;
	}
	r = srv_push_judge(db, &f, text, len, sig, ret, stats);
	goto out;

rejected:
	stats->rejected++;
	r = *ret != NULL ? 0 : -ENOMEM;
out:
	srv_change_id_clear(&seen);
	record_fields_clear(&f);
	return r;
}

int
srv_push_batch(struct srv_db *db, const char *key, json_t *changes,
    json_t **ret_results, struct srv_push_stats *ret_stats)
{
	struct srv_push_stats stats;
	json_t *results, *item, *res;
	size_t i;
	int r;

	memset(&stats, 0, sizeof stats);
	if (!json_is_array(changes))
		return -EINVAL;
	if ((results = json_array()) == NULL)
		return -ENOMEM;
	json_array_foreach(changes, i, item) {
		if ((r = srv_push_one(db, key, item, &res, &stats)) < 0)
			goto fail;
		if (json_array_append_new(results, res) != 0) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret_results = results;
	*ret_stats = stats;
	return 0;
fail:
	json_decref(results);
	return r;
}
