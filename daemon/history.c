/*
 * history: io.ferry.History; see history.h.
 *
 * A request walks the remote's pages in version order, keeping only what
 * the next entry needs: the previous version's body (prev, trusted only
 * when prev_known: it came from a record that verified) and the reply
 * being built.  Invariants: at most one HTTP request is in flight per
 * History call (hr->http); the remote's paging position only grows, and
 * every page must hold entries with versions above it, so a remote cannot
 * keep a call going forever; a record's body is looked at only after its
 * signature over the exact bytes received checked out.  Each page is
 * taken (parsed, verified, diffed: page_take) on the verifier thread.
 *
 * Before that, the local change log: steps of it are copied off the
 * reader (local_step_next) and verified on the verifier thread
 * (local_entry, which reads only the step and the request's names); at
 * most one step per request, HISTORY_STEPS_OUT in all, is at the
 * verifier, the other requests waiting on h->waiting in order.  The
 * reply, too, is written as text and its entries freed on the verifier
 * (history_reply): for thousands of entries that is tens of ms.  While a
 * job is out (held) the request is the job's: a caller that goes only
 * marks it gone, and the job's end frees it.
 */
#include "autoconfig.h"

#include <sys/queue.h>

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "history.h"
#include "jobq.h"
#include "keys.h"
#include "log.h"
#include "merge.h"
#include "record.h"

/* The module: the verifier thread and the requests waiting for it. */
struct history {
	struct jobq	*q;
	TAILQ_HEAD(, history_req) waiting;	/* a step to read, in order */
	size_t		 out;		/* steps at the verifier */
};

struct history_req {
	struct history	*h;
	struct sync	*sy;
	struct store	*st;
	struct vl_call	*call;		/* NULL once gone */
	struct sync_req	*http;		/* the page under way, or NULL */
	char		*collection;
	char		*id;
	int64_t		 after;		/* the caller's: answer versions above */
	int64_t		 cursor;	/* the remote's paging position */
	int64_t		 last_out;	/* the last version in entries */
	json_t		*entries;	/* the reply being built */
	size_t		 bytes;		/* its size, roughly */
	json_t		*prev;		/* previous body; NULL: absent, deleted */
	bool		 prev_known;	/* prev is trusted */
	size_t		 unverified;
	json_t		*local;		/* the replica's change log, or NULL */
	size_t		 local_failed;	/* its records that did not verify */
	/* Reading the local log in steps, newest first (local is reversed
	 * once read): where the next step starts (0: the latest entry, -1:
	 * all read), the entries read so far, the step at the verifier. */
	int64_t		 local_from;
	size_t		 local_read;
	bool		 queued;	/* on h->waiting */
	bool		 held;		/* a verifier job holds the request */
	bool		 gone;		/* the caller went while it was held */
	/* The reply, made into text by the verifier (history_reply). */
	json_t		*reply;
	char		*text;
	/* A remote page at the verifier (history_page), and its outcome. */
	char		*page;
	size_t		 page_len;
	int		 page_r;
	bool		 page_next;
	TAILQ_ENTRY(history_req) entry;
};

/*
 * One entry of the replica's change log, copied for the verifier: c's
 * pointers point into mem (one allocation, or NULL), and what the
 * verifier made of it (entry; r: 0 shown, 1 a record that did not verify,
 * -ENOMEM).
 */
struct local_row {
	struct store_doc_change	 c;
	void			*mem;
	json_t			*entry;
	int			 r;
};

/* A step of the local log on its way through the verifier. */
struct local_step {
	struct history_req	*hr;
	struct local_row	*rows;	/* newest first */
	size_t			 n;
	size_t			 bytes;	/* what their copies hold */
};

static void	history_fetch(struct history_req *hr);
static void	history_reply(struct history_req *hr, bool more,
		    const char *remote_error);
static void	history_admit(struct history *h);

static void
history_req_free(struct history_req *hr)
{
	if (hr == NULL)
		return;
	if (hr->queued)
		TAILQ_REMOVE(&hr->h->waiting, hr, entry);
	sync_cancel(hr->sy, hr->http);
	json_decref(hr->reply);
	free(hr->text);
	free(hr->page);
	json_decref(hr->entries);
	json_decref(hr->local);
	json_decref(hr->prev);
	free(hr->collection);
	free(hr->id);
	free(hr);
}

/* Finish the call with error name (params stolen, may be NULL) and free. */
static void
history_fail(struct history_req *hr, const char *name, json_t *params)
{
	vl_call_set_cancel(hr->call, NULL, NULL);
	vl_error(hr->call, name, params);
	json_decref(params);
	history_req_free(hr);
}

static void __attribute__((format(printf, 2, 3)))
history_offline(struct history_req *hr, const char *fmt, ...)
{
	va_list ap;
	char reason[512];

	va_start(ap, fmt);
	vsnprintf(reason, sizeof reason, fmt, ap);
	va_end(ap);
	log_debug("history of %s/%s: %s", hr->collection, hr->id, reason);
	if (hr->local != NULL && json_array_size(hr->local) > 0)
		history_reply(hr, false, reason);
	else
		history_fail(hr, "io.ferry.Offline", json_pack("{s:s}",
		    "reason", reason));
}

/*
 * Loop thread: a verifier job holding hr is back.  False if the caller
 * has gone meanwhile: then hr is freed.
 */
static bool
history_back(struct history_req *hr)
{
	hr->held = false;
	if (!hr->gone)
		return true;
	history_req_free(hr);
	return false;
}

/* Verifier thread: the reply as text, and the entries freed. */
static void
reply_text_run(void *arg, size_t i)
{
	struct history_req *hr = arg;

	hr->text = json_dumps(hr->reply, JSON_COMPACT);
	json_decref(hr->reply);
	hr->reply = NULL;
	json_decref(hr->entries);
	hr->entries = NULL;
	json_decref(hr->local);
	hr->local = NULL;
}

/* Loop thread: send the text, unless the caller has gone. */
static void
reply_text_done(void *arg)
{
	struct history_req *hr = arg;

	if (!history_back(hr))
		return;
	if (hr->text == NULL) {
		history_fail(hr, "io.ferry.WriteFailed", NULL);
		return;
	}
	vl_call_set_cancel(hr->call, NULL, NULL);
	vl_reply_raw(hr->call, hr->text, strlen(hr->text), false);
	history_req_free(hr);
}

/* Shutdown: the verifier is freed; a request still held is gone. */
static void
history_held_drop(void *arg)
{
	(void)history_back(arg);
}

/*
 * Answer with what was gathered; more: entries above last_out follow.
 * remote_error (may be NULL): why the remote's part is missing or cut
 * short.  The local change log goes with the first call's answer.
 */
static void
history_reply(struct history_req *hr, bool more, const char *remote_error)
{
	json_t *p;

	if (hr->unverified > 0)
		log_warn("history of %s/%s: %zu record%s did not verify",
		    hr->collection, hr->id, hr->unverified,
		    hr->unverified == 1 ? "" : "s");
	if (hr->local_failed > 0)
		log_warn("history of %s/%s: %zu record%s kept in the replica "
		    "did not verify", hr->collection, hr->id, hr->local_failed,
		    hr->local_failed == 1 ? "" : "s");
	p = json_pack("{s:O}", "entries", hr->entries);
	if (p != NULL && ((more && json_object_set_new(p, "next",
	    json_integer(hr->last_out)) < 0) ||
	    (hr->local != NULL && json_object_set(p, "local", hr->local) < 0) ||
	    (remote_error != NULL && json_object_set_new(p, "remote_error",
	    json_string(remote_error)) < 0))) {
		json_decref(p);
		p = NULL;
	}
	if (p == NULL) {
		history_fail(hr, "io.ferry.WriteFailed", NULL);
		return;
	}
	/* Thousands of entries take tens of ms to write as text, and to
	 * free: the verifier does both, and the loop sends the text. */
	hr->reply = p;
	if (jobq_submit(hr->h->q, NULL, reply_text_run, reply_text_done,
	    history_held_drop, hr) == 0) {
		hr->held = true;
		return;
	}
	vl_call_set_cancel(hr->call, NULL, NULL);
	vl_reply(hr->call, p, false);
	history_req_free(hr);
}

/*
 * The record of a pulled change kept in the replica, as its device signed
 * it: the text the remote sent, else record_make's layout rebuilt around
 * the revision's body written canonically (record_rebuild; no body: a
 * delete).  0 with *ret_text (malloc'd) and *ret_len; -EBADMSG if the
 * body kept here is not a JSON object; -EINVAL, -ENOMEM.
 */
static int
local_record(const struct history_req *hr, const struct store_doc_change *c,
    const char *device, int64_t seq, char **ret_text, size_t *ret_len)
{
	json_error_t jerr;
	json_t *body;
	char *canon = NULL, *text;
	int r;

	if (c->record != NULL) {
		if ((text = malloc(c->record_len + 1)) == NULL)
			return -ENOMEM;
		memcpy(text, c->record, c->record_len);
		text[c->record_len] = '\0';
		*ret_text = text;
		*ret_len = c->record_len;
		return 0;
	}
	if (c->body != NULL) {
		body = json_loads(c->body, JSON_REJECT_DUPLICATES, &jerr);
		if (!json_is_object(body)) {
			json_decref(body);
			return -EBADMSG;
		}
		canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS);
		json_decref(body);
		if (canon == NULL)
			return -ENOMEM;
	}
	r = record_rebuild(c->version - 1, canon, canon != NULL ?
	    strlen(canon) : 0, hr->collection, device, hr->id, seq,
	    c->record_ts, ret_text, ret_len);
	free(canon);
	return r;
}

/* Does the body kept here (NULL: none) agree with a record's (NULL: a
 * delete)?  Only a record the remote sent can disagree. */
static bool
local_body_agrees(const char *kept, json_t *signed_body)
{
	json_error_t jerr;
	json_t *body;
	bool same;

	if (kept == NULL)
		return true;	/* a past revision keeps its record only */
	if (signed_body == NULL)
		return false;
	body = json_loads(kept, JSON_REJECT_DUPLICATES, &jerr);
	same = body != NULL && json_equal(body, signed_body);
	json_decref(body);
	return same;
}

/*
 * Check a pulled change kept in the replica (c->pulled_sig set): its
 * record's signature against the key its change id names, then the
 * record's fields against the change (this document, the version before
 * as base, the change id's seq, the record's ts) and the body kept here.
 * 1 verified (*f filled, to be cleared by the caller), 0 failed, -ENOENT
 * not verifiable (the key is unknown), -ENOMEM; *why says why not.
 * *ret_device (malloc'd, base64url) is the key, when there is one.
 */
static int
local_pulled_verify(const struct history_req *hr,
    const struct store_doc_change *c, struct record_fields *f,
    char **ret_device, const char **why)
{
	char *device = NULL, *sig = NULL, *text = NULL;
	size_t len;
	int r;

	if (c->device == NULL) {
		*why = "not verifiable: unknown key";
		return -ENOENT;
	}
	if (keys_b64_encode(c->device, STORE_DEVICE_LEN, &device) < 0)
		return -ENOMEM;
	*ret_device = device;
	if (c->pulled_sig_len != 64) {
		*why = "the signature cannot be read";
		return 0;
	}
	if (keys_b64_encode(c->pulled_sig, 64, &sig) < 0)
		return -ENOMEM;
	r = local_record(hr, c, device, c->device_seq, &text, &len);
	if (r == 0)
		r = record_verify(text, len, sig, device, f);
	else if (r != -ENOMEM) {
		*why = "the body kept here cannot be read";
		r = -ECANCELED;
	}
	free(text);
	free(sig);
	if (r == -ENOMEM)
		return r;
	if (r == -ECANCELED)
		return 0;
	if (r < 0) {
		*why = r == -EKEYREJECTED ? "the signature does not verify" :
		    "the record or its signature cannot be read";
		return 0;
	}
	if (strcmp(f->collection, hr->collection) != 0 ||
	    strcmp(f->id, hr->id) != 0 || f->seq != c->device_seq ||
	    f->ts != c->record_ts || f->base != c->version - 1 ||
	    !local_body_agrees(c->body, f->body)) {
		record_fields_clear(f);
		*why = "the record is not this change";
		return 0;
	}
	return 1;
}

/*
 * One entry of the replica's change log, for hr->local.  A signed entry
 * is checked here, when someone looks (never at pull time): a change of
 * this device the remote applied against the record it sent, a pulled
 * change against the record its device signed (local_pulled_verify).
 * Checked, it adds version, change, device, op and verified (true, or
 * false with why); a pulled change that cannot be checked (no key, no
 * signature kept) gets why and no verified.  Entries of this device with
 * no signed record (writes not applied yet) have neither.  Runs on the
 * verifier thread: it reads c and hr's names, nothing else.  0 with
 * *ret_e (a new reference), 1 the same for a record that did not verify,
 * or -ENOMEM.
 */
static int
local_entry(const struct history_req *hr, const struct store_doc_change *c,
    json_t **ret_e)
{
	struct record_fields f;
	const char *why = NULL;
	char *device = NULL;
	json_t *e;
	int r;

	e = json_pack("{s:I,s:I,s:s,s:I}", "seq", (json_int_t)c->seq, "rev",
	    (json_int_t)c->rev, "origin", store_origin_name(c->origin), "ts",
	    (json_int_t)c->ts_ms);
	if (e == NULL)
		return -ENOMEM;
	memset(&f, 0, sizeof f);
	if (c->pulled_sig != NULL)
		r = local_pulled_verify(hr, c, &f, &device, &why);
	else if (c->sig == NULL) {
		/* A remote that sent no signature, or a change pulled
		 * before the replica kept them (migration 8 -> 9). */
		if (c->origin == STORE_ORIGIN_REMOTE)
			why = "not verifiable: no signature kept";
		r = -ENOENT;
	} else {
		r = c->record == NULL ? -EBADMSG : record_verify(c->record,
		    c->record_len, c->sig, NULL, &f);
		if (r == 0)
			r = 1;
		else if (r != -ENOMEM) {
			why = r == -EKEYREJECTED ?
			    "the signature does not verify" :
			    "the record or its signature cannot be read";
			r = 0;
		}
	}
	if (r == 1) {
		if (json_object_set_new(e, "version",
		    json_integer(c->version)) < 0 ||
		    json_object_set_new(e, "change", json_sprintf("%s:%" PRId64,
		    f.device, f.seq)) < 0 ||
		    json_object_set_new(e, "device", json_string(f.device)) < 0 ||
		    json_object_set_new(e, "op", json_string(f.op)) < 0)
			r = -ENOMEM;
		record_fields_clear(&f);
	} else if (r == 0 && (json_object_set_new(e, "version",
	    json_integer(c->version)) < 0 || (device != NULL &&
	    json_object_set_new(e, "change", json_sprintf("%s:%" PRId64,
	    device, c->device_seq)) < 0)))
		r = -ENOMEM;
	free(device);
	/* verified only where a record was checked: false is a record
	 * that failed, as in the remote's trail, not "none kept here". */
	if ((r == 0 || r == 1) && json_object_set_new(e, "verified",
	    json_boolean(r == 1)) < 0)
		r = -ENOMEM;
	if (r != -ENOMEM && why != NULL && json_object_set_new(e, "why",
	    json_string(why)) < 0)
		r = -ENOMEM;
	if (r == -ENOMEM) {
		json_decref(e);
		return r;
	}
	*ret_e = e;
	return r == 0 ? 1 : 0;
}

/*
 * The client went away: stop the fetch and let the call go.  A job at
 * the verifier cannot be called back: the request is marked gone, and
 * the job's end frees it without a word to the call.
 */
static void
history_cancel_cb(struct vl_call *call, void *arg)
{
	struct history_req *hr = arg;

	vl_reply(call, NULL, false);
	if (hr->held) {
		hr->gone = true;
		hr->call = NULL;
		return;
	}
	history_req_free(hr);
}

/*
 * Check an entry's record: the signature over the bytes as received,
 * against the key the entry names, then the record's fields against the
 * entry's and the document asked for.  1 (verified; *f filled, to be
 * cleared by the caller), 0 (not verified) or -ENOMEM.
 */
static int
entry_verify(struct history_req *hr, json_t *e, const char *device,
    const char *change, const char *op, int64_t ts, struct record_fields *f)
{
	char want[KEYS_PUB_B64_LEN + 32];
	json_t *rec;
	const char *sig;
	int r;

	rec = json_object_get(e, "record");
	sig = json_string_value(json_object_get(e, "sig"));
	if (!json_is_string(rec) || sig == NULL)
		return 0;
	r = record_verify(json_string_value(rec), json_string_length(rec),
	    sig, device, f);
	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return 0;
	snprintf(want, sizeof want, "%s:%" PRId64, f->device, f->seq);
	if (strcmp(f->collection, hr->collection) != 0 ||
	    strcmp(f->id, hr->id) != 0 || strcmp(f->op, op) != 0 ||
	    f->ts != ts || strcmp(want, change) != 0) {
		record_fields_clear(f);
		return 0;
	}
	return 1;
}

static int
path_cmp(const void *a, const void *b)
{
	json_t *const *x = a, *const *y = b;
	size_t lx = json_string_length(*x), ly = json_string_length(*y);
	int c;

	c = memcmp(json_string_value(*x), json_string_value(*y),
	    lx < ly ? lx : ly);
	return c != 0 ? c : (lx > ly) - (lx < ly);
}

static bool
paths_fit(json_t *paths)
{
	size_t i, bytes = 0;
	json_t *p;

	if (json_array_size(paths) > HISTORY_PATHS_MAX)
		return false;
	json_array_foreach(paths, i, p)
		bytes += json_string_length(p) + 3;
	return bytes <= HISTORY_PATHS_BYTES;
}

/*
 * Keep a diff's path list within bounds: too long, it becomes the sorted
 * top-level members it touches ("/a/b" -> "/a"), and if that is still too
 * long, [""].  *paths is replaced; 0 or -ENOMEM.
 */
static int
paths_bound(json_t **paths)
{
	json_t *tops = NULL, *out = NULL, **v = NULL, *p;
	const char *s, *slash;
	size_t i, n, len;
	bool whole = false;
	int r = -ENOMEM;

	if (paths_fit(*paths))
		return 0;
	if ((tops = json_array()) == NULL || (out = json_array()) == NULL)
		goto out;
	json_array_foreach(*paths, i, p) {
		s = json_string_value(p);
		if ((len = json_string_length(p)) == 0) {
			whole = true;
			break;
		}
		if ((slash = memchr(s + 1, '/', len - 1)) != NULL)
			len = (size_t)(slash - s);
		if (json_array_append_new(tops, json_stringn(s, len)) < 0)
			goto out;
	}
	n = json_array_size(tops);
	if (!whole) {
		if ((v = calloc(n > 0 ? n : 1, sizeof *v)) == NULL)
			goto out;
		for (i = 0; i < n; i++)
			v[i] = json_array_get(tops, i);
		qsort(v, n, sizeof *v, path_cmp);
		for (i = 0; i < n; i++)
			if ((i == 0 || path_cmp(&v[i - 1], &v[i]) != 0) &&
			    json_array_append(out, v[i]) < 0)
				goto out;
		whole = !paths_fit(out);
	}
	if (whole && (json_array_clear(out) < 0 ||
	    json_array_append_new(out, json_string("")) < 0))
		goto out;
	json_decref(*paths);
	*paths = out;
	out = NULL;
	r = 0;
out:
	free(v);
	json_decref(out);
	json_decref(tops);
	return r;
}

/*
 * changed_paths of an entry whose record verified (body: its body, NULL
 * for a delete) or not (verified false).  A new array, or NULL.
 */
static json_t *
entry_paths(struct history_req *hr, bool verified, json_t *body)
{
	json_t *from, *empty = NULL, *paths = NULL;

	if (!verified)
		return json_array();
	if (!hr->prev_known)
		return json_pack("[s]", "");
	from = hr->prev;
	/* A create (or a put onto a tombstone) lists what it created. */
	if (from == NULL && body != NULL && (from = empty = json_object()) ==
	    NULL)
		return NULL;
	if (merge_diff(from, body, &paths) < 0 || paths_bound(&paths) < 0) {
		json_decref(paths);
		paths = NULL;
	}
	json_decref(empty);
	return paths;
}

/*
 * Take one entry of a page.  0 taken (or used only as the base of the
 * next), 1 the reply is full (this entry is left for the next call),
 * -EBADMSG malformed, -ENOMEM.
 */
static int
history_entry(struct history_req *hr, json_t *e)
{
	struct record_fields f;
	json_t *v, *name, *paths, *out, *rv, *revoked = NULL;
	const char *device, *change, *op;
	int64_t version, ts;
	size_t size;
	int verified;

	v = json_object_get(e, "version");
	device = json_string_value(json_object_get(e, "device"));
	change = json_string_value(json_object_get(e, "change"));
	op = json_string_value(json_object_get(e, "op"));
	name = json_object_get(e, "device_name");
	if (!json_is_integer(v) || json_integer_value(v) <= hr->cursor ||
	    device == NULL || change == NULL || op == NULL ||
	    (strcmp(op, "put") != 0 && strcmp(op, "delete") != 0) ||
	    !json_is_integer(json_object_get(e, "ts")) ||
	    (name != NULL && !json_is_string(name) && !json_is_null(name)))
		return -EBADMSG;
	version = json_integer_value(v);
	ts = json_integer_value(json_object_get(e, "ts"));
	rv = json_object_get(e, "revoked");
	if (rv != NULL && !json_is_null(rv) && (!json_is_object(rv) ||
	    !json_is_integer(json_object_get(rv, "time")) ||
	    (json_object_get(rv, "reason") != NULL &&
	    !json_is_string(json_object_get(rv, "reason")) &&
	    !json_is_null(json_object_get(rv, "reason")))))
		return -EBADMSG;
	hr->cursor = version;
	memset(&f, 0, sizeof f);
	if ((verified = entry_verify(hr, e, device, change, op, ts, &f)) < 0)
		return verified;
	if (version > hr->after) {
		/* Only the members the interface knows (KeyRevocation). */
		if (json_is_object(rv))
			revoked = json_pack("{s:O,s:O?}", "time",
			    json_object_get(rv, "time"), "reason",
			    json_object_get(rv, "reason"));
		if ((paths = entry_paths(hr, verified, f.body)) == NULL) {
			json_decref(revoked);
			record_fields_clear(&f);
			return -ENOMEM;
		}
		out = json_pack("{s:I,s:s,s:s,s:O,s:I,s:s,s:b,s:o}",
		    "version", (json_int_t)version, "change", change,
		    "device", device,
		    "device_name", name != NULL ? name : json_null(),
		    "ts", (json_int_t)ts, "op", op, "verified", verified,
		    "changed_paths", paths);
		/* Marked by the remote: the writer's key is revoked now
		 * (set_new takes revoked, even when it fails). */
		if (out == NULL)
			json_decref(revoked);
		else if (revoked != NULL &&
		    json_object_set_new(out, "revoked", revoked) < 0) {
			json_decref(out);
			out = NULL;
		}
		if (out == NULL) {
			record_fields_clear(&f);
			return -ENOMEM;
		}
		size = json_dumpb(out, NULL, 0, JSON_COMPACT) + 1;
		if (json_array_size(hr->entries) > 0 &&
		    (json_array_size(hr->entries) == HISTORY_ENTRIES_MAX ||
		    hr->bytes + size > HISTORY_REPLY_MAX)) {
			json_decref(out);
			record_fields_clear(&f);
			return 1;
		}
		if (json_array_append_new(hr->entries, out) < 0) {
			record_fields_clear(&f);
			return -ENOMEM;
		}
		hr->bytes += size;
		hr->last_out = version;
		if (!verified)
			hr->unverified++;
	}
	json_decref(hr->prev);
	hr->prev = verified ? json_incref(f.body) : NULL;
	hr->prev_known = verified;
	record_fields_clear(&f);
	return 0;
}

/*
 * Take the entries of a 200 page (text, len bytes).  Verifier thread (or
 * the loop, without one): it touches only hr's page state.  0 taken,
 * *ret_next says whether another page follows; 1 the reply is full;
 * -EBADMSG the page cannot be read; -ENOMEM.
 */
static int
page_take(struct history_req *hr, const char *text, size_t len,
    bool *ret_next)
{
	json_error_t jerr;
	json_t *page, *entries, *next, *e;
	int64_t before = hr->cursor;
	size_t i;
	int r = 0;

	page = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	entries = json_object_get(page, "entries");
	next = json_object_get(page, "next");
	if (!json_is_array(entries) || (next != NULL &&
	    !json_is_integer(next))) {
		json_decref(page);
		return -EBADMSG;
	}
	json_array_foreach(entries, i, e)
		if ((r = history_entry(hr, e)) != 0)
			break;
	/* Another page only if this one moved forward and said so. */
	if (r == 0 && next != NULL && hr->cursor == before)
		r = -EBADMSG;
	*ret_next = next != NULL;
	json_decref(page);
	return r;
}

/* A page taken (page_take's r and next): fetch the next one or answer. */
static void
page_answer(struct history_req *hr, int r, bool next)
{
	if (r == -EBADMSG)
		history_offline(hr, "the remote's answer cannot be read");
	else if (r < 0)
		history_fail(hr, "io.ferry.WriteFailed", json_pack("{s:s}",
		    "reason", "out of memory"));
	else if (r == 1)
		history_reply(hr, true, NULL);
	else if (next)
		history_fetch(hr);
	else
		history_reply(hr, false, NULL);
}

/* Verifier thread: a page's records checked and diffed. */
static void
page_run(void *arg, size_t i)
{
	struct history_req *hr = arg;

	hr->page_r = page_take(hr, hr->page, hr->page_len, &hr->page_next);
	free(hr->page);
	hr->page = NULL;
}

static void
page_done(void *arg)
{
	struct history_req *hr = arg;

	if (history_back(hr))
		page_answer(hr, hr->page_r, hr->page_next);
}

/*
 * A 200 page: its records are verified (and bodies diffed) on the
 * verifier, a page of large bodies costing more than a loop turn should;
 * the text is copied, since res is the caller's.  Without room for the
 * copy or the job, here.
 */
static void
history_page(struct history_req *hr, const struct http_result *res)
{
	bool next = false;
	int r;

	if ((hr->page = malloc(res->len > 0 ? res->len : 1)) != NULL) {
		memcpy(hr->page, res->body, res->len);
		hr->page_len = res->len;
		if (jobq_submit(hr->h->q, NULL, page_run, page_done,
		    history_held_drop, hr) == 0) {
			hr->held = true;
			return;
		}
		free(hr->page);
		hr->page = NULL;
	}
	r = page_take(hr, res->body, res->len, &next);
	page_answer(hr, r, next);
}

static void
history_http_done(const struct http_result *res, void *arg)
{
	struct history_req *hr = arg;
	json_error_t jerr;
	json_t *body;
	const char *why = NULL;

	hr->http = NULL;
	if (res->err != 0) {
		history_offline(hr, "cannot reach the remote: %s",
		    res->errmsg != NULL ? res->errmsg : strerror(-res->err));
		return;
	}
	if (res->status == 200) {
		history_page(hr, res);
		return;
	}
	if (res->status == 404) {
		/* Not pushed yet, perhaps: the local log is the history. */
		if (hr->local != NULL && json_array_size(hr->local) > 0)
			history_reply(hr, false, "the remote does not know "
			    "this document");
		else
			history_fail(hr, "io.ferry.NotFound", json_pack(
			    "{s:s,s:s}", "collection", hr->collection, "id",
			    hr->id));
		return;
	}
	body = json_loadb(res->body, res->len, JSON_REJECT_DUPLICATES, &jerr);
	why = json_string_value(json_object_get(body, "error"));
	history_offline(hr, "the remote answered %ld%s%.200s", res->status,
	    why != NULL ? ": " : "", why != NULL ? why : "");
	json_decref(body);
}

/* Ask for the page after hr->cursor. */
static void
history_fetch(struct history_req *hr)
{
	char *path;
	int r;

	if (asprintf(&path, "/v1/docs/%s/%s/history?after=%" PRId64
	    "&limit=%d", hr->collection, hr->id, hr->cursor,
	    HISTORY_PAGE) < 0) {
		history_fail(hr, "io.ferry.WriteFailed", NULL);
		return;
	}
	r = sync_fetch(hr->sy, path, HISTORY_REMOTE_TIMEOUT_MS,
	    history_http_done, hr, &hr->http);
	free(path);
	if (r < 0)
		history_offline(hr, "cannot start a request: %s",
		    strerror(-r));
}

/* --- the local change log, read in steps and verified off the loop --- */

/* The local log is read (hr->local oldest first): on to the remote. */
static void
history_remote(struct history_req *hr)
{
	json_t *p;

	if (hr->sy == NULL) {
		if (hr->local != NULL && json_array_size(hr->local) > 0) {
			history_reply(hr, false, "no remote is configured");
			return;
		}
		p = json_pack("{s:s}", "reason", "no remote is configured");
		history_fail(hr, "io.ferry.Offline", p);
		return;
	}
	/* From version after on: its body is the base of the first diff. */
	hr->cursor = hr->after > 0 ? hr->after - 1 : 0;
	hr->prev_known = hr->after == 0;
	history_fetch(hr);
}

static void
local_step_free(struct local_step *ls)
{
	size_t i;

	if (ls == NULL)
		return;
	for (i = 0; i < ls->n; i++) {
		json_decref(ls->rows[i].entry);
		free(ls->rows[i].mem);
	}
	free(ls->rows);
	free(ls);
}

/* Copy n bytes of src (NULL: none) to *at and move *at past them. */
static const void *
row_put(char **at, const void *src, size_t n)
{
	char *dst = *at;

	if (src == NULL)
		return NULL;
	memcpy(dst, src, n);
	*at += n;
	return dst;
}

/*
 * store_doc_changes_back's callback: copy the entry into the step, in one
 * allocation.  -ENOBUFS once the step holds HISTORY_STEP_BYTES (the entry
 * that reached it is kept: a step holds at least one), -ENOMEM.
 */
static int
local_copy_cb(const struct store_doc_change *c, void *arg)
{
	struct local_step *ls = arg;
	struct local_row *row = &ls->rows[ls->n];
	size_t sig = c->sig != NULL ? strlen(c->sig) + 1 : 0;
	size_t body = c->body != NULL ? strlen(c->body) + 1 : 0;
	size_t device = c->device != NULL ? STORE_DEVICE_LEN : 0;
	size_t size = c->record_len + sig + c->pulled_sig_len + device + body;
	char *at;

	memset(row, 0, sizeof *row);
	row->c = *c;
	if ((at = row->mem = malloc(size > 0 ? size : 1)) == NULL)
		return -ENOMEM;
	row->c.record = row_put(&at, c->record, c->record_len);
	row->c.sig = row_put(&at, c->sig, sig);
	row->c.pulled_sig = row_put(&at, c->pulled_sig, c->pulled_sig_len);
	row->c.device = row_put(&at, c->device, device);
	row->c.body = row_put(&at, c->body, body);
	ls->n++;
	ls->bytes += size;
	return ls->bytes >= HISTORY_STEP_BYTES ? -ENOBUFS : 0;
}

/* Verifier thread: how many entries the step has, then each one. */
static size_t
local_step_start(void *arg)
{
	return ((struct local_step *)arg)->n;
}

static void
local_step_item(void *arg, size_t i)
{
	struct local_step *ls = arg;
	struct local_row *row = &ls->rows[i];

	row->r = local_entry(ls->hr, &row->c, &row->entry);
}

/*
 * A step is back, or dropped (entries false: the verifier is being
 * freed): take its entries unless the caller has gone, then read the
 * next step (after the requests waiting for the verifier).
 */
static void
local_step_end(struct local_step *ls, bool entries)
{
	struct history_req *hr = ls->hr;
	struct history *h = hr->h;
	size_t i;
	int r = 0;

	h->out--;
	if (!history_back(hr)) {
		local_step_free(ls);
		if (entries)
			history_admit(h);
		return;
	}
	for (i = 0; i < ls->n && entries && r == 0; i++) {
		if ((r = ls->rows[i].r) == 1) {
			hr->local_failed++;
			r = 0;
		}
		if (r == 0 && json_array_append(hr->local,
		    ls->rows[i].entry) < 0)
			r = -ENOMEM;
	}
	local_step_free(ls);
	if (!entries)
		return;		/* shutdown: its call's cancellation frees hr */
	if (r < 0) {
		history_fail(hr, "io.ferry.WriteFailed", json_pack("{s:s}",
		    "reason", "out of memory"));
		history_admit(h);
		return;
	}
	hr->queued = true;
	TAILQ_INSERT_TAIL(&h->waiting, hr, entry);
	history_admit(h);
}

static void
local_step_done(void *arg)
{
	local_step_end(arg, true);
}

static void
local_step_drop(void *arg)
{
	local_step_end(arg, false);
}

/* hr->local, read newest first, in the order the reply gives it. */
static int
local_reverse(struct history_req *hr)
{
	json_t *v;
	size_t n;

	if (hr->local == NULL)
		return 0;
	if ((v = json_array()) == NULL)
		return -ENOMEM;
	for (n = json_array_size(hr->local); n > 0; n--)
		if (json_array_append(v, json_array_get(hr->local,
		    n - 1)) < 0) {
			json_decref(v);
			return -ENOMEM;
		}
	json_decref(hr->local);
	hr->local = v;
	return 0;
}

/* The log could not be read: the reply goes without it. */
static void
local_unread(struct history_req *hr, const char *why)
{
	log_warn("history of %s/%s: cannot read the change log: %s",
	    hr->collection, hr->id, why);
	json_decref(hr->local);
	hr->local = NULL;
	hr->local_from = -1;
}

/*
 * Read hr's next step of the local log (at most HISTORY_STEP_ENTRIES
 * entries or about HISTORY_STEP_BYTES, and HISTORY_ENTRIES_MAX in all)
 * and hand it to the verifier; with the log read, go on to the remote.
 * A short read on the reader connection is all this does on the loop.
 */
static void
local_step_next(struct history_req *hr)
{
	struct local_step *ls;
	size_t left = HISTORY_ENTRIES_MAX - hr->local_read;
	int r;

	if (left > HISTORY_STEP_ENTRIES)
		left = HISTORY_STEP_ENTRIES;
	if (hr->local_from >= 0 && left > 0) {
		if ((ls = calloc(1, sizeof *ls)) == NULL ||
		    (ls->rows = calloc(left, sizeof *ls->rows)) == NULL) {
			free(ls);
			history_fail(hr, "io.ferry.WriteFailed", json_pack(
			    "{s:s}", "reason", "out of memory"));
			return;
		}
		ls->hr = hr;
		r = store_doc_changes_back(hr->st, hr->collection, hr->id,
		    hr->local_from, (int)left, local_copy_cb, ls);
		if (r < 0 && r != -ENOBUFS) {
			local_step_free(ls);
			local_unread(hr, r == -ENOMEM ? "out of memory" :
			    store_errmsg(hr->st));
		} else if (ls->n == 0) {
			local_step_free(ls);
			hr->local_from = -1;
		} else {
			hr->local_read += ls->n;
			hr->local_from = ls->rows[ls->n - 1].c.prev > 0 ?
			    ls->rows[ls->n - 1].c.prev : -1;
			if ((r = jobq_submit(hr->h->q, local_step_start,
			    local_step_item, local_step_done,
			    local_step_drop, ls)) < 0) {
				local_step_free(ls);
				local_unread(hr, strerror(-r));
			} else {
				hr->held = true;
				hr->h->out++;
				return;
			}
		}
	}
	if (local_reverse(hr) < 0) {
		history_fail(hr, "io.ferry.WriteFailed", json_pack("{s:s}",
		    "reason", "out of memory"));
		return;
	}
	history_remote(hr);
}

/* Let waiting requests read their next step while the verifier has room:
 * at most HISTORY_STEPS_OUT steps are held at once, whoever asks. */
static void
history_admit(struct history *h)
{
	struct history_req *hr;

	while (h->out < HISTORY_STEPS_OUT &&
	    (hr = TAILQ_FIRST(&h->waiting)) != NULL) {
		TAILQ_REMOVE(&h->waiting, hr, entry);
		hr->queued = false;
		local_step_next(hr);
	}
}

int
history_new(struct event_base *base, struct history **ret)
{
	struct history *h;
	int r;

	if ((h = calloc(1, sizeof *h)) == NULL)
		return -ENOMEM;
	TAILQ_INIT(&h->waiting);
	if ((r = jobq_new(base, 1, &h->q)) < 0) {
		free(h);
		return r;
	}
	*ret = h;
	return 0;
}

void
history_free(struct history *h)
{
	if (h == NULL)
		return;
	/* Steps not delivered are dropped: their requests, gone by now
	 * (the connections closed first), are freed with them. */
	jobq_free(h->q);
	free(h);
}

void
history_start(struct history *h, struct sync *sy, struct store *st,
    struct vl_call *call, const char *collection, const char *id,
    int64_t after)
{
	struct history_req *hr;

	if ((hr = calloc(1, sizeof *hr)) == NULL ||
	    (hr->collection = strdup(collection)) == NULL ||
	    (hr->id = strdup(id)) == NULL ||
	    (hr->entries = json_array()) == NULL ||
	    /* The local log comes with the first call only (after 0). */
	    (after == 0 && (hr->local = json_array()) == NULL)) {
		history_req_free(hr);
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return;
	}
	hr->h = h;
	hr->sy = sy;
	hr->st = st;
	hr->call = call;
	hr->after = after;
	hr->local_from = after == 0 ? 0 : -1;
	vl_call_set_cancel(call, history_cancel_cb, hr);
	if (after > 0) {
		history_remote(hr);	/* no local log to verify */
		return;
	}
	hr->queued = true;
	TAILQ_INSERT_TAIL(&h->waiting, hr, entry);
	history_admit(h);
}
