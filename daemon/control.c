/*
 * control: method handlers and group commit; see control.h.
 *
 * A handler validates its parameters fully before touching the replica, so
 * bad input costs nothing and changes nothing.  Write handlers never answer
 * directly: they add an op to the writer's collecting batch with their own
 * completion (control_op_done), which answers the call once COMMIT returned
 * OK.  Each op succeeds or fails alone (see writer.h): a call whose op
 * failed is answered WriteFailed with its own reason, the others get their
 * answers.  The watch, the writer and the sync engine are the daemon's
 * (main.c makes and wires them); this module borrows them.
 *
 * Per-connection ordering uses the connection's tag word: (gen << 1) | held.
 * gen is the batch generation in which the connection last wrote; held says
 * that some of its calls are waiting for that batch to end, so all its later
 * calls must wait too (they run in arrival order after the commit).
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "bodylimit.h"
#include "collset.h"
#include "control.h"
#include "history.h"
#include "iface.h"
#include "log.h"
#include "merge.h"
#include "names.h"
#include "patch.h"
#include "util.h"
#include "vl_idl.h"
#include "watch.h"
#include "sync.h"
#include "writer.h"

#define LIST_DEFAULT	100
#define LIST_MAX	1000
/* A List page stops once its bodies pass this, so replies stay well
 * under the 8 MiB message limit (a page always holds one document). */
#define LIST_BYTES_MAX	(4u * 1024 * 1024)
#define STATUS_PUSH_MS	100

struct call_list {
	struct vl_call	**v;
	size_t		  n;
	size_t		  cap;
};

/* The interfaces ferryd serves, parsed from the text it serves. */
enum iface_id {
	IFACE_FERRY,
	IFACE_SERVICE,
	IFACE_COUNT,
};

struct control {
	struct event_base	*base;
	struct vl_idl		*iface[IFACE_COUNT];
	struct store		*st;
	struct watch		*watch;		/* borrowed, as the two below */
	struct writer		*writer;
	struct sync		*sync;		/* NULL: no remote */
	struct presence_relay	*presence;
	struct history		*history;	/* owned: its verifier */
	struct event		*status_ev;
	const struct keys	*keys;		/* live: a rotation changes it */
	char			*device_name;
	char			*remote;
	char			*data_dir;
	struct call_list	 held;
	struct call_list	 status_subs;
	json_t			*last_status;
};

typedef void (*handler_fn)(struct control *, struct vl_call *, json_t *);

struct method {
	enum iface_id	 iface;
	const char	*member;	/* "Get" */
	handler_fn	 fn;
	bool		 write;
};

/* --- small helpers --- */

static int
call_list_push(struct call_list *l, struct vl_call *call)
{
	struct vl_call **v;
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 64;
		if ((v = realloc(l->v, cap * sizeof *v)) == NULL)
			return -ENOMEM;
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = call;
	return 0;
}

static void
call_list_remove(struct call_list *l, struct vl_call *call)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->v[i] == call) {
			l->v[i] = l->v[--l->n];
			return;
		}
}

/* Finish call with the reply {key: value}; value is stolen. */
static void
reply_with(struct vl_call *call, const char *key, json_t *value)
{
	json_t *p;

	p = json_pack("{s:o}", key, value);
	vl_reply(call, p, false);
	json_decref(p);
}

void
control_reply_invalid(struct vl_call *call, const char *field,
    const char *reason)
{
	json_t *p;

	p = json_pack("{s:s,s:s}", "field", field, "reason", reason);
	vl_error(call, "io.ferry.InvalidArgument", p);
	json_decref(p);
}

/*
 * Handlers see parameters that type-check against the interface (see
 * params_check): every required one is there with its declared JSON
 * type, optional ones are absent, null or of their type, and there are
 * no others.  What they check is the values: names, ranges, and what
 * goes with what.
 */

/* A valid collection or id from a string parameter. */
static const char *
param_name(struct vl_call *call, json_t *params, const char *field, bool id)
{
	const char *s, *reason;

	s = json_string_value(json_object_get(params, field));
	if ((id ? names_check_id(s, &reason) :
	    names_check_collection(s, &reason)) < 0) {
		control_reply_invalid(call, field, reason);
		return NULL;
	}
	return s;
}

/* An optional integer parameter within min..max: 1 present, 0 absent or
 * null, -1 answered. */
static int
param_int(struct vl_call *call, json_t *params, const char *field,
    int64_t min, int64_t max, int64_t *ret)
{
	char why[128];
	json_t *v;

	v = json_object_get(params, field);
	if (v == NULL || json_is_null(v))
		return 0;
	if (json_integer_value(v) < min || json_integer_value(v) > max) {
		snprintf(why, sizeof why, "must be between %" PRId64 " and %"
		    PRId64, min, max);
		control_reply_invalid(call, field, why);
		return -1;
	}
	*ret = json_integer_value(v);
	return 1;
}

static json_t *
doc_json(const struct store_doc *d, const char *collection, const char *id,
    json_t *body)
{
	json_t *o;

	o = json_pack("{s:s,s:s,s:I,s:I,s:b,s:b,s:b}",
	    "collection", collection, "id", id,
	    "rev", (json_int_t)d->rev, "version", (json_int_t)d->version,
	    "deleted", d->deleted, "pending", d->pending,
	    "conflicted", d->conflicted);
	if (o != NULL && body != NULL && json_object_set(o, "body", body) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* Parse a stored body; NULL for a tombstone or on a corrupt row. */
static json_t *
body_parse(const char *text)
{
	json_error_t jerr;

	if (text == NULL)
		return NULL;
	return json_loads(text, 0, &jerr);
}

static json_t *
doc_json_with_body(const struct store_doc *d, const char *collection,
    const char *id)
{
	json_t *body, *o;

	body = body_parse(d->body);
	o = doc_json(d, collection, id, body);
	json_decref(body);
	return o;
}

/*
 * {"doc":{...}} as text, with body_text spliced in when not NULL.  Names
 * need no escaping (restricted to [A-Za-z0-9._:@-] before storage).
 */
static char *
doc_reply_text(const struct store_doc *d, const char *collection,
    const char *id, const char *body_text, size_t *ret_len)
{
	char *text;
	int n;

	n = asprintf(&text, "{\"doc\":{\"collection\":\"%s\",\"id\":\"%s\","
	    "\"rev\":%" PRId64 ",\"version\":%" PRId64 ",\"deleted\":%s,"
	    "\"pending\":%s,\"conflicted\":%s%s%s}}", collection, id, d->rev,
	    d->version, d->deleted ? "true" : "false",
	    d->pending ? "true" : "false", d->conflicted ? "true" : "false",
	    body_text != NULL ? ",\"body\":" : "",
	    body_text != NULL ? body_text : "");
	if (n < 0)
		return NULL;
	*ret_len = (size_t)n;
	return text;
}

/* --- batches --- */

/*
 * Does call's connection have a write whose batch has not been answered?
 * Then its non-write calls wait (read your own writes, in order).
 */
static bool
conn_waiting(struct control *c, struct vl_call *call)
{
	uint64_t tag = *vl_call_conn_tag(call);

	return (tag >> 1) > writer_done_gen(c->writer);
}

void
control_run_held(struct control *c)
{
	struct call_list held = c->held;
	size_t i;

	memset(&c->held, 0, sizeof c->held);
	/* Each is dispatched again in arrival order; a connection that
	 * still waits has its calls held again, in the same order. */
	for (i = 0; i < held.n; i++)
		*vl_call_conn_tag(held.v[i]) &= ~(uint64_t)1;
	for (i = 0; i < held.n; i++) {
		if (vl_call_cancelled(held.v[i]))
			vl_reply(held.v[i], NULL, false);
		else
			control_dispatch(held.v[i], c);
	}
	free(held.v);
}

/*
 * The completion of a Put, Patch, Delete or Resolve op (arg: its call):
 * answer the call with the op's own outcome, and free the request.
 */
static void
control_op_done(struct writer_op *op, int err, void *arg)
{
	struct vl_call *call = arg;
	json_t *fail;

	if (err != 0) {
		fail = json_pack("{s:s?}", "reason", op->reason);
		vl_error(call, "io.ferry.WriteFailed", fail);
		json_decref(fail);
	} else if (op->error != NULL)
		vl_error(call, op->error, op->error_params);
	else if (op->text != NULL)
		vl_reply_raw(call, op->text, op->len, false);
	else
		vl_error(call, "io.ferry.WriteFailed", NULL);
	free(op->arg);
}

/* Add a validated write (arg, stolen) to the collecting batch for call. */
static bool
control_op_add(struct control *c, struct vl_call *call, writer_run_fn run,
    void *arg)
{
	struct writer_op *op;
	uint64_t gen;

	if ((op = writer_add(c->writer, run, arg, control_op_done, call,
	    &gen)) == NULL) {
		free(arg);
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return false;
	}
	/* The app's writes fail only before writing or by the store: no
	 * savepoint (see writer.h), so a Put costs what it did. */
	op->no_savepoint = true;
	*vl_call_conn_tag(call) = gen << 1;
	return true;
}

/* --- io.ferry writes --- */

enum write_kind {
	WRITE_PUT,
	WRITE_PATCH,
	WRITE_DELETE,
};

/* A validated write; its strings and JSON are borrowed from the call. */
struct write_req {
	enum write_kind	 kind;
	const char	*collection;
	const char	*id;
	json_t		*json;		/* body (Put) or patch (Patch) */
	bool		 has_if_rev;
	int64_t		 if_rev;
};

static void
op_error(struct writer_op *op, const char *name, json_t *params)
{
	op->error = name;
	op->error_params = params;
}

/*
 * Is body, about to be stored as text of len bytes, inside the one body
 * limit (bodylimit.h)?  If not, false and why in buf: what (the body's
 * name in the sentence) breaks which part of the limit, and the limit.
 */
static bool
body_limit_ok(const json_t *body, size_t len, const char *what, char *buf,
    size_t size)
{
	const char *why;

	if (bodylimit_check_text(body, len, &why) == 0)
		return true;
	snprintf(buf, size, "%s %s (the limit is %d levels and %u bytes of "
	    "compact JSON)", what, why, BODYLIMIT_MAX_DEPTH,
	    BODYLIMIT_MAX_BYTES);
	return false;
}

/*
 * Run on the writer thread, inside the batch's transaction: read the
 * document, check if_rev and existence, compute the new body, write it.
 */
static void
write_run(struct writer_batch *b, struct writer_op *op)
{
	struct write_req *w = op->arg;
	struct store_doc cur, d;
	json_t *old = NULL, *body = NULL;
	char *text = NULL, why[256];
	int64_t seq, rev;
	int r;

	memset(&cur, 0, sizeof cur);
	r = store_doc_get(b->st, STORE_WRITER, w->collection, w->id, &cur);
	if (r < 0 && r != -ENOENT) {
		writer_op_fail(op, r, store_errmsg(b->st));
		return;
	}
	if (w->has_if_rev && w->if_rev != cur.rev) {
		op_error(op, "io.ferry.RevMismatch", json_pack("{s:o}",
		    "current", doc_json_with_body(&cur, w->collection, w->id)));
		goto out;
	}
	if (w->kind != WRITE_PUT && (cur.rev == 0 || cur.deleted)) {
		op_error(op, "io.ferry.NotFound", json_pack("{s:s,s:s}",
		    "collection", w->collection, "id", w->id));
		goto out;
	}
	if (w->kind == WRITE_PUT)
		body = json_incref(w->json);
	else if (w->kind == WRITE_PATCH &&
	    ((old = body_parse(cur.body)) == NULL ||
	    patch_apply(old, w->json, &body) < 0)) {
		writer_op_fail(op, -EBADMSG, "cannot read a stored body");
		goto out;
	}
	if (body != NULL && (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		writer_op_fail(op, -ENOMEM, "out of memory");
		goto out;
	}
	if (text != NULL && !body_limit_ok(body, strlen(text),
	    w->kind == WRITE_PATCH ? "the patched body" : "body", why,
	    sizeof why)) {
		op_error(op, "io.ferry.InvalidArgument", json_pack("{s:s,s:s}",
		    "field", w->kind == WRITE_PATCH ? "patch" : "body",
		    "reason", why));
		goto out;
	}
	/* Saving what is already there is not a change. */
	if (text != NULL && cur.rev > 0 && !cur.deleted && cur.body != NULL &&
	    strcmp(cur.body, text) == 0) {
		op->text = doc_reply_text(&cur, w->collection, w->id,
		    w->kind == WRITE_PATCH ? text : NULL, &op->len);
		goto out;
	}
	r = store_write_local(b->st, &cur, w->collection, w->id, text,
	    STORE_ORIGIN_LOCAL, util_now_ms(), &seq, &rev);
	if (r < 0) {
		writer_op_fail(op, r, store_errmsg(b->st));
		goto out;
	}
	d = cur;
	d.rev = rev;
	d.deleted = text == NULL;
	d.pending = true;
	if (watch_events_add(&b->events, seq, w->collection, w->id, rev,
	    d.version, d.deleted, STORE_ORIGIN_LOCAL, text) < 0) {
		writer_op_fail(op, -ENOMEM, "out of memory");
		goto out;
	}
	op->text = doc_reply_text(&d, w->collection, w->id,
	    w->kind == WRITE_PATCH ? text : NULL, &op->len);
	if (op->text == NULL)
		writer_op_fail(op, -ENOMEM, "out of memory");
out:
	free(text);
	json_decref(old);
	json_decref(body);
	store_doc_clear(&cur);
}

/* Hand a validated write to the collecting batch (w is stolen). */
static void
write_submit(struct control *c, struct vl_call *call, struct write_req *w)
{
	control_op_add(c, call, write_run, w);
}

/*
 * Validate the parameters every write shares.  Returns a new write_req or
 * NULL with the call answered.
 */
static struct write_req *
write_parse(struct vl_call *call, json_t *params, enum write_kind kind)
{
	const char *collection, *id;
	struct write_req *w;
	int64_t if_rev = 0;
	json_t *v = NULL;
	int has;

	if ((collection = param_name(call, params, "collection", false)) ==
	    NULL || (id = param_name(call, params, "id", true)) == NULL)
		return NULL;
	/* The body or the merge patch: an object (type-checked). */
	if (kind != WRITE_DELETE)
		v = json_object_get(params, kind == WRITE_PUT ? "body" :
		    "patch");
	if ((has = param_int(call, params, "if_rev", 0, INT64_MAX,
	    &if_rev)) < 0)
		return NULL;
	if ((w = calloc(1, sizeof *w)) == NULL) {
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return NULL;
	}
	w->kind = kind;
	w->collection = collection;
	w->id = id;
	w->json = v;
	w->has_if_rev = has == 1;
	w->if_rev = if_rev;
	return w;
}

static void
handle_put(struct control *c, struct vl_call *call, json_t *params)
{
	struct write_req *w;

	if ((w = write_parse(call, params, WRITE_PUT)) != NULL)
		write_submit(c, call, w);
}

static void
handle_patch(struct control *c, struct vl_call *call, json_t *params)
{
	struct write_req *w;

	if ((w = write_parse(call, params, WRITE_PATCH)) != NULL)
		write_submit(c, call, w);
}

static void
handle_delete(struct control *c, struct vl_call *call, json_t *params)
{
	struct write_req *w;

	if ((w = write_parse(call, params, WRITE_DELETE)) != NULL)
		write_submit(c, call, w);
}

/* --- io.ferry reads --- */

static void
reply_store_error(struct control *c, struct vl_call *call)
{
	json_t *p;

	log_err("cannot read the replica: %s", store_errmsg(c->st));
	p = json_pack("{s:s}", "reason", store_errmsg(c->st));
	vl_error(call, "io.ferry.WriteFailed", p);
	json_decref(p);
}

static void
handle_get(struct control *c, struct vl_call *call, json_t *params)
{
	const char *collection, *id;
	struct store_doc d;
	char *text;
	size_t len;
	json_t *p;
	int r;

	if ((collection = param_name(call, params, "collection", false)) ==
	    NULL || (id = param_name(call, params, "id", true)) == NULL)
		return;
	r = store_doc_get(c->st, STORE_READER, collection, id, &d);
	if (r == -ENOENT) {
		p = json_pack("{s:s,s:s}", "collection", collection, "id", id);
		vl_error(call, "io.ferry.NotFound", p);
		json_decref(p);
		return;
	}
	if (r < 0) {
		reply_store_error(c, call);
		return;
	}
	text = doc_reply_text(&d, collection, id, d.body, &len);
	store_doc_clear(&d);
	if (text == NULL) {
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return;
	}
	vl_reply_raw(call, text, len, false);
	free(text);
}

struct list_ctx {
	json_t	*docs;
	int	 limit;
	size_t	 bytes;
	char	*next;
};

static int
list_one(const struct store_doc *d, void *arg)
{
	struct list_ctx *l = arg;

	size_t n = json_array_size(l->docs);

	if ((int)n == l->limit || (n > 0 && l->bytes > LIST_BYTES_MAX)) {
		/* More than fits this page: there is a next one. */
		l->next = strdup(json_string_value(json_object_get(
		    json_array_get(l->docs, n - 1), "id")));
		return -ECANCELED;
	}
	l->bytes += d->body != NULL ? strlen(d->body) : 0;
	return json_array_append_new(l->docs,
	    doc_json_with_body(d, d->collection, d->id)) < 0 ? -ENOMEM : 0;
}

static void
handle_list(struct control *c, struct vl_call *call, json_t *params)
{
	struct list_ctx l = { NULL, LIST_DEFAULT, 0, NULL };
	const char *collection, *after = NULL;
	int64_t limit = LIST_DEFAULT;
	json_t *p;
	int r;

	if ((collection = param_name(call, params, "collection", false)) ==
	    NULL)
		return;
	if (json_is_string(json_object_get(params, "after")) &&
	    (after = param_name(call, params, "after", true)) == NULL)
		return;
	if (param_int(call, params, "limit", 1, LIST_MAX, &limit) < 0)
		return;
	l.limit = (int)limit;
	l.docs = json_array();
	r = store_list(c->st, collection, after, l.limit + 1, list_one, &l);
	if (r < 0 && r != -ECANCELED) {
		json_decref(l.docs);
		free(l.next);
		reply_store_error(c, call);
		return;
	}
	p = json_pack("{s:o}", "docs", l.docs);
	if (l.next != NULL)
		json_object_set_new(p, "next", json_string(l.next));
	vl_reply(call, p, false);
	json_decref(p);
	free(l.next);
}

static void
handle_watch(struct control *c, struct vl_call *call, json_t *params)
{
	json_t *cols, *v;
	int64_t since = -1;
	const char *reason;
	char why[200];
	size_t i;

	if (!vl_call_msg(call)->more) {
		vl_error(call, "org.varlink.service.ExpectedMore", NULL);
		return;
	}
	/* An array of strings, or absent or null (type-checked). */
	cols = json_object_get(params, "collections");
	if (!json_is_array(cols))
		cols = NULL;
	if (cols != NULL) {
		json_array_foreach(cols, i, v) {
			if (names_check_collection(json_string_value(v),
			    &reason) < 0) {
				snprintf(why, sizeof why, "element %zu: %s", i,
				    reason);
				control_reply_invalid(call, "collections", why);
				return;
			}
		}
		if (json_array_size(cols) == 0)
			cols = NULL;
	}
	if (param_int(call, params, "since", 0, INT64_MAX, &since) < 0)
		return;
	if (watch_add(c->watch, call, cols, since) == 0 &&
	    json_is_true(json_object_get(params, "presence")))
		presence_relay_watch(c->presence, call);
}

/* --- presence (presence_relay.c) --- */

static void
handle_set_presence(struct control *c, struct vl_call *call, json_t *params)
{
	presence_relay_set(c->presence, call, params);
}

static void
handle_who(struct control *c, struct vl_call *call, json_t *params)
{
	presence_relay_who(c->presence, call, params);
}

/* --- status --- */

static int
rejected_one(const char *collection, const char *id, const char *error,
    void *arg)
{
	return json_array_append_new(arg, json_pack("{s:s,s:s,s:s?}",
	    "collection", collection, "id", id, "error", error)) < 0 ?
	    -ENOMEM : 0;
}

/* One parked pulled change, as Status lists it. */
static int
parked_one(const struct store_parked *p, void *arg)
{
	json_t *o;

	o = json_pack("{s:s,s:s,s:I,s:s?,s:s,s:I}", "collection",
	    p->collection, "id", p->id, "version", (json_int_t)p->version,
	    "change", p->change, "reason", p->reason, "created_ms",
	    (json_int_t)p->created_ms);
	return json_array_append_new(arg, o) < 0 ? -ENOMEM : 0;
}

/*
 * What is wrong with this device's key, in words a user can act on, into
 * buf: revoked by the server (the engine keeps when and why from the
 * 401), or a key file whose owner or mode ferryd would refuse at its next
 * start.  false when nothing is.
 */
static bool
key_problem(struct control *c, char *buf, size_t size)
{
	const char *reason = NULL;
	char when[64];
	int64_t ms;
	time_t t;
	struct tm tm;

	if (c->sync != NULL && sync_key_revoked(c->sync, &ms, &reason)) {
		t = (time_t)(ms / 1000);
		if (gmtime_r(&t, &tm) == NULL || strftime(when, sizeof when,
		    "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
			snprintf(when, sizeof when, "?");
		snprintf(buf, size, "this device's key was revoked by the "
		    "server on %s%s%s%s; nothing is sent or pulled until that "
		    "changes: ask the server's admin (ferry-server unrevoke "
		    "%s), or make this device a new key (stop ferryd, move "
		    "%s/device.key aside, start ferryd) and have the admin "
		    "allow the new one (ferryctl key)", when,
		    reason != NULL ? " (" : "", reason != NULL ? reason : "",
		    reason != NULL ? ")" : "", c->keys->pub_b64,
		    c->data_dir != NULL ? c->data_dir : "the data directory");
		return true;
	}
	return c->data_dir != NULL &&
	    keys_file_problem(c->data_dir, buf, size) == 1;
}

static json_t *
status_json(struct control *c)
{
	struct store_counts n;
	int64_t now = util_now_ms(), last = 0, rv_ms;
	const char *state = "unconfigured", *err = NULL, *rv_why, *rot;
	char problem[1024];
	json_t *s;

	if (store_counts(c->st, &n) < 0)
		memset(&n, 0, sizeof n);
	if (c->sync != NULL) {
		state = sync_state(c->sync);
		err = sync_last_error(c->sync);
		last = sync_last_ok_ms(c->sync);
	}
	s = json_pack("{s:s,s:s?,s:s,s:s?,s:I,s:I,s:I,s:I,s:s?,s:I,s:s,s:I,s:i}",
	    "state", state,
	    "remote", c->remote,
	    "device", c->keys->pub_b64,
	    "device_name", c->device_name,
	    "pending", (json_int_t)n.pending,
	    "conflicts", (json_int_t)n.conflicts,
	    "rejected", (json_int_t)n.rejected,
	    "parked", (json_int_t)n.parked,
	    "last_error", err,
	    "docs", (json_int_t)n.docs,
	    "version", FERRY_VERSION,
	    "seq", (json_int_t)n.head_seq,
	    "watchers", watch_count(c->watch));
	if (s == NULL)
		return NULL;
	json_object_set_new(s, "last_sync_ms", last > 0 ? json_integer(last) :
	    json_null());
	/* Selective sync: what is synced, and what stays on this machine. */
	if (c->sync != NULL && sync_collections(c->sync) != NULL &&
	    !collset_all(sync_collections(c->sync))) {
		json_t *names = json_array();
		const char *p = sync_collections(c->sync), *e;
		int64_t local = 0;

		for (; *p != '\0'; p = *e == ',' ? e + 1 : e) {
			if ((e = strchr(p, ',')) == NULL)
				e = p + strlen(p);
			json_array_append_new(names, json_stringn(p,
			    (size_t)(e - p)));
		}
		json_object_set_new(s, "collections", names);
		if (store_local_only(c->st, &local) < 0)
			local = 0;
		json_object_set_new(s, "local_only", json_integer(local));
	}
	if (key_problem(c, problem, sizeof problem))
		json_object_set_new(s, "key_problem", json_string(problem));
	if (c->sync != NULL && (rot = sync_rotation_state(c->sync)) != NULL)
		json_object_set_new(s, "key_rotation", json_string(rot));
	if (c->sync != NULL && sync_key_revoked(c->sync, &rv_ms, &rv_why))
		json_object_set_new(s, "key_revoked", json_pack("{s:I,s:s?}",
		    "time", (json_int_t)rv_ms, "reason", rv_why));
	json_object_set_new(s, "oldest_pending_ms", n.oldest_pending_ms > 0 ?
	    json_integer(now - n.oldest_pending_ms) : json_null());
	if (n.rejected > 0) {
		/* Parked changes are shown, never silently kept. */
		json_t *list = json_array();

		if (store_rejected_list(c->st, 20, rejected_one, list) >= 0)
			json_object_set_new(s, "rejected_changes", list);
		else
			json_decref(list);
	}
	if (n.parked > 0) {
		/* Pulled changes that could not be applied, likewise. */
		json_t *list = json_array();

		if (store_parked_list(c->st, 20, parked_one, list) >= 0)
			json_object_set_new(s, "parked_changes", list);
		else
			json_decref(list);
	}
	return s;
}

static void
status_cancel_cb(struct vl_call *call, void *arg)
{
	struct control *c = arg;

	call_list_remove(&c->status_subs, call);
	vl_reply(call, NULL, false);
}

static void
status_push_cb(evutil_socket_t fd, short what, void *arg)
{
	struct control *c = arg;
	json_t *s, *p;
	size_t i;

	if (c->status_subs.n == 0 || (s = status_json(c)) == NULL)
		return;
	/* The age of the oldest change moves every push; compare the rest. */
	p = json_deep_copy(s);
	json_object_del(p, "oldest_pending_ms");
	if (c->last_status != NULL && json_equal(p, c->last_status)) {
		json_decref(p);
		json_decref(s);
		return;
	}
	json_decref(c->last_status);
	c->last_status = p;
	p = json_pack("{s:o}", "status", s);
	for (i = 0; i < c->status_subs.n; i++)
		vl_reply(c->status_subs.v[i], p, true);
	json_decref(p);
}

void
control_status_changed(struct control *c)
{
	struct timeval tv = { 0, STATUS_PUSH_MS * 1000 };

	if (c->status_subs.n > 0 && !evtimer_pending(c->status_ev, NULL))
		evtimer_add(c->status_ev, &tv);
}

static void
handle_status(struct control *c, struct vl_call *call, json_t *params)
{
	json_t *s, *p;

	if ((s = status_json(c)) == NULL) {
		reply_store_error(c, call);
		return;
	}
	p = json_pack("{s:o}", "status", s);
	if (vl_call_msg(call)->more) {
		if (call_list_push(&c->status_subs, call) < 0) {
			vl_reply(call, p, false);
			json_decref(p);
			return;
		}
		vl_call_set_cancel(call, status_cancel_cb, c);
		vl_reply(call, p, true);
	} else
		vl_reply(call, p, false);
	json_decref(p);
}

/* --- conflicts --- */

/* A stored JSON text as a value (null when absent). */
static json_t *
text_value(const char *text)
{
	json_t *v = body_parse(text);

	return v != NULL ? v : json_null();
}

static json_t *
conflict_json(const struct store_conflict *cf)
{
	json_error_t jerr;
	json_t *o, *paths;

	paths = json_loads(cf->paths, 0, &jerr);
	o = json_pack("{s:I,s:s,s:s,s:o,s:o,s:o,s:o,s:I,s:b,s:I}",
	    "conflict_id", (json_int_t)cf->conflict_id,
	    "collection", cf->collection, "id", cf->id,
	    "paths", paths != NULL ? paths : json_array(),
	    "base", text_value(cf->base), "mine", text_value(cf->mine),
	    "theirs", text_value(cf->theirs),
	    "their_version", (json_int_t)cf->their_version,
	    "their_deleted", cf->their_deleted,
	    "created_ms", (json_int_t)cf->created_ms);
	return o;
}

static int
conflicts_one(const struct store_conflict *cf, void *arg)
{
	return json_array_append_new(arg, conflict_json(cf)) < 0 ? -ENOMEM : 0;
}

static void
handle_conflicts(struct control *c, struct vl_call *call, json_t *params)
{
	json_t *list;

	list = json_array();
	if (store_conflicts_list(c->st, LIST_MAX, conflicts_one, list) < 0) {
		json_decref(list);
		reply_store_error(c, call);
		return;
	}
	reply_with(call, "conflicts", list);
}

/* Parked pulled changes, oldest first (at most LIST_MAX). */
static void
handle_parked(struct control *c, struct vl_call *call, json_t *params)
{
	json_t *list;

	list = json_array();
	if (store_parked_list(c->st, LIST_MAX, parked_one, list) < 0) {
		json_decref(list);
		reply_store_error(c, call);
		return;
	}
	reply_with(call, "parked", list);
}

static void
reply_conflict_not_found(struct vl_call *call, int64_t id)
{
	json_t *p;

	p = json_pack("{s:I}", "conflict_id", (json_int_t)id);
	vl_error(call, "io.ferry.NotFound", p);
	json_decref(p);
}

static void
handle_get_conflict(struct control *c, struct vl_call *call, json_t *params)
{
	struct store_conflict cf;
	int64_t id = 0;
	int r;

	if ((r = param_int(call, params, "conflict_id", 1, INT64_MAX,
	    &id)) <= 0) {
		if (r == 0)
			control_reply_invalid(call, "conflict_id", "missing");
		return;
	}
	r = store_conflict_get(c->st, STORE_READER, id, &cf);
	if (r == -ENOENT) {
		reply_conflict_not_found(call, id);
		return;
	}
	if (r < 0) {
		reply_store_error(c, call);
		return;
	}
	reply_with(call, "conflict", conflict_json(&cf));
	store_conflict_clear(&cf);
}

/*
 * Resolve strategies.  mine and theirs choose a side at the conflicting
 * paths only: the body written is the three-way merge of base, mine (the
 * document as it is now) and theirs, as "conflicts show" presents it,
 * every non-conflicting change of both sides kept.  all_mine and
 * all_theirs replace the whole document with one side; merged writes the
 * body given.
 */
enum resolve_strategy {
	RESOLVE_MINE,
	RESOLVE_THEIRS,
	RESOLVE_MERGED,
	RESOLVE_ALL_MINE,
	RESOLVE_ALL_THEIRS,
};

static const struct {
	const char		*name;
	enum resolve_strategy	 strategy;
} resolve_names[] = {
	{ "mine",	RESOLVE_MINE },
	{ "theirs",	RESOLVE_THEIRS },
	{ "merged",	RESOLVE_MERGED },
	{ "all_mine",	RESOLVE_ALL_MINE },
	{ "all_theirs",	RESOLVE_ALL_THEIRS },
};

#define RESOLVE_NNAMES (sizeof resolve_names / sizeof resolve_names[0])
#define RESOLVE_STRATEGIES "must be \"mine\", \"theirs\", \"merged\", " \
	"\"all_mine\" or \"all_theirs\""

struct resolve_req {
	int64_t			 conflict_id;
	enum resolve_strategy	 strategy;
	json_t			*body;		/* merged; borrowed */
};

/*
 * The body a mine or theirs resolution writes: base, mine (cur) and
 * theirs merged with the chosen side at the conflicting paths.
 * *ret_text gets the compact text with sorted keys (NULL: a tombstone),
 * *ret_push whether it differs from theirs (then it must be pushed).
 * 0, -EBADMSG (a stored body does not parse) or -ENOMEM.
 */
static int
resolve_side(const struct store_conflict *cf, const struct store_doc *cur,
    bool mine_wins, char **ret_text, bool *ret_push)
{
	json_t *base = NULL, *mine = NULL, *theirs = NULL, *merged = NULL;
	char *text = NULL;
	int n, r = -EBADMSG;

	if (cf->base != NULL && (base = json_loads(cf->base,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		goto out;
	if (!cur->deleted && cur->body != NULL && (mine = json_loads(
	    cur->body, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		goto out;
	if (!cf->their_deleted && cf->theirs != NULL && (theirs = json_loads(
	    cf->theirs, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		goto out;
	/* merge_three() keeps its first side's value at a conflict. */
	n = mine_wins ? merge_three(base, mine, theirs, &merged, NULL) :
	    merge_three(base, theirs, mine, &merged, NULL);
	if (n < 0) {
		r = n;
		goto out;
	}
	/* Keys sorted, as in the record the server will store. */
	r = -ENOMEM;
	if (merged != NULL && (text = json_dumps(merged,
	    JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		goto out;
	*ret_push = !(merged == NULL ? theirs == NULL :
	    theirs != NULL && json_equal(merged, theirs));
	*ret_text = text;
	r = 0;
out:
	json_decref(base);
	json_decref(mine);
	json_decref(theirs);
	json_decref(merged);
	return r;
}

/* Writer thread: apply a resolution as an ordinary change. */
static void
resolve_run(struct writer_batch *b, struct writer_op *op)
{
	struct resolve_req *rq = op->arg;
	struct store_conflict cf;
	struct store_doc cur, d;
	const char *body = NULL;
	char *made = NULL;
	int64_t seq, rev;
	bool push = true;
	int r;

	memset(&cur, 0, sizeof cur);
	r = store_conflict_get(b->st, STORE_WRITER, rq->conflict_id, &cf);
	if (r == -ENOENT) {
		op_error(op, "io.ferry.NotFound", json_pack("{s:I}",
		    "conflict_id", (json_int_t)rq->conflict_id));
		return;
	}
	if (r < 0) {
		writer_op_fail(op, r, store_errmsg(b->st));
		return;
	}
	if ((r = store_doc_get(b->st, STORE_WRITER, cf.collection, cf.id,
	    &cur)) < 0) {
		writer_op_fail(op, r, store_errmsg(b->st));
		goto out;
	}
	switch (rq->strategy) {
	case RESOLVE_MINE:
	case RESOLVE_THEIRS:
		if ((r = resolve_side(&cf, &cur, rq->strategy == RESOLVE_MINE,
		    &made, &push)) < 0) {
			writer_op_fail(op, r, r == -EBADMSG ? "a stored version "
			    "of the document does not parse" : "out of memory");
			goto out;
		}
		body = made;
		break;
	case RESOLVE_ALL_MINE:
		body = cur.deleted ? NULL : cur.body;
		break;
	case RESOLVE_ALL_THEIRS:
		body = cf.their_deleted ? NULL : cf.theirs;
		push = false;
		break;
	case RESOLVE_MERGED:
		if ((made = json_dumps(rq->body, JSON_COMPACT)) == NULL) {
			writer_op_fail(op, -ENOMEM, "out of memory");
			goto out;
		}
		body = made;
		break;
	}
	if ((r = store_resolve(b->st, &cf, &cur, body, push, util_now_ms(),
	    &seq, &rev)) < 0) {
		writer_op_fail(op, r, store_errmsg(b->st));
		goto out;
	}
	d = cur;
	d.rev = rev;
	d.version = cf.their_version;
	d.deleted = body == NULL;
	d.pending = push;
	d.conflicted = false;
	if (watch_events_add(&b->events, seq, cf.collection, cf.id, rev,
	    d.version, d.deleted, STORE_ORIGIN_RESOLVE, body) < 0 ||
	    (op->text = doc_reply_text(&d, cf.collection, cf.id, body,
	    &op->len)) == NULL)
		writer_op_fail(op, -ENOMEM, "out of memory");
out:
	free(made);
	store_doc_clear(&cur);
	store_conflict_clear(&cf);
}

static void
handle_resolve(struct control *c, struct vl_call *call, json_t *params)
{
	struct resolve_req *rq;
	const char *strategy;
	char why[256];
	json_t *body;
	int64_t id = 0;
	size_t i;
	int r;

	if ((r = param_int(call, params, "conflict_id", 1, INT64_MAX,
	    &id)) <= 0) {
		if (r == 0)
			control_reply_invalid(call, "conflict_id", "missing");
		return;
	}
	/* One of the enum's values, and an object or nothing
	 * (type-checked). */
	strategy = json_string_value(json_object_get(params, "strategy"));
	for (i = 0; strategy != NULL && i < RESOLVE_NNAMES; i++)
		if (strcmp(strategy, resolve_names[i].name) == 0)
			break;
	if (strategy == NULL || i == RESOLVE_NNAMES) {
		/* The interface's enum and resolve_names disagree. */
		control_reply_invalid(call, "strategy", RESOLVE_STRATEGIES);
		return;
	}
	body = json_object_get(params, "body");
	if (!json_is_object(body))
		body = NULL;
	if ((rq = calloc(1, sizeof *rq)) == NULL) {
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return;
	}
	rq->conflict_id = id;
	rq->strategy = resolve_names[i].strategy;
	if (rq->strategy == RESOLVE_MERGED && body == NULL) {
		free(rq);
		control_reply_invalid(call, "body", "merged needs the body, a JSON "
		    "object");
		return;
	}
	if (rq->strategy != RESOLVE_MERGED && body != NULL) {
		free(rq);
		control_reply_invalid(call, "body", "only merged takes a body");
		return;
	}
	/* json_dumpb without a buffer: the size of the compact text. */
	if (body != NULL && !body_limit_ok(body, json_dumpb(body, NULL, 0,
	    JSON_COMPACT), "body", why, sizeof why)) {
		free(rq);
		control_reply_invalid(call, "body", why);
		return;
	}
	rq->body = body;
	control_op_add(c, call, resolve_run, rq);
}

/* --- Sync --- */

void
control_sync_reply(struct control *c, struct vl_call *call,
    const char *error, json_t *params)
{
	json_t *s;

	if (error != NULL) {
		vl_error(call, error, params);
		return;
	}
	if ((s = status_json(c)) == NULL) {
		reply_store_error(c, call);
		return;
	}
	reply_with(call, "status", s);
}

/*
 * Sync(collections: [...]): check the set, then have the engine store it
 * and sync (sync_select_change answers the call).  ["*"] is every
 * collection.
 */
static void
sync_collections_request(struct control *c, struct vl_call *call,
    json_t *params)
{
	json_t *list = json_object_get(params, "collections"), *v;
	char *text = NULL, *set = NULL, why[256];
	size_t i, len = 1;

	if (json_array_size(list) == 0) {
		control_reply_invalid(call, "collections", "is empty; give [\"*\"] for "
		    "every collection");
		return;
	}
	json_array_foreach(list, i, v)
		len += json_string_length(v) + 1;
	if ((text = calloc(1, len)) == NULL) {
		reply_store_error(c, call);
		return;
	}
	json_array_foreach(list, i, v) {
		if (i > 0)
			strcat(text, ",");
		/* A name holding a comma is caught below as a bad name. */
		strcat(text, json_string_value(v));
		if (strlen(json_string_value(v)) == 0) {
			free(text);
			control_reply_invalid(call, "collections", "holds an empty "
			    "name");
			return;
		}
	}
	if (collset_norm(text, &set, why, sizeof why) < 0) {
		free(text);
		control_reply_invalid(call, "collections", why);
		return;
	}
	free(text);
	if (sync_select_change(c->sync, set, call, json_is_true(
	    json_object_get(params, "wait"))) < 0)
		reply_store_error(c, call);
	free(set);
}

static void
handle_sync(struct control *c, struct vl_call *call, json_t *params)
{
	json_t *p;

	if (c->sync == NULL) {
		p = json_pack("{s:s}", "reason", "no remote is configured");
		vl_error(call, "io.ferry.Offline", p);
		json_decref(p);
		return;
	}
	if (json_is_array(json_object_get(params, "collections"))) {
		sync_collections_request(c, call, params);
		return;
	}
	sync_request(c->sync, call, json_is_true(json_object_get(params,
	    "wait")));
}

/* --- RotateKey: a new device key (sync_rotate.c) --- */

static void
handle_rotate_key(struct control *c, struct vl_call *call, json_t *params)
{
	json_t *p;

	(void)params;
	if (c->sync == NULL) {
		p = json_pack("{s:s}", "reason", "no remote is configured: "
		    "there is no server to tell of a new key");
		vl_error(call, "io.ferry.RotationRefused", p);
		json_decref(p);
		return;
	}
	sync_rotate(c->sync, call);
}

/* --- History: the remote's audit trail, checked here (history.c) --- */

static void
handle_history(struct control *c, struct vl_call *call, json_t *params)
{
	const char *collection, *id;
	int64_t after = 0;

	if ((collection = param_name(call, params, "collection", false)) ==
	    NULL || (id = param_name(call, params, "id", true)) == NULL ||
	    param_int(call, params, "after", 0, INT64_MAX, &after) < 0)
		return;
	history_start(c->history, c->sync, c->st, call, collection, id,
	    after);
}

/* --- org.varlink.service --- */

static const char varlink_service_iface[] =
"# The Varlink Service Interface is provided by every varlink service. It\n"
"# describes the service and the interfaces it implements.\n"
"interface org.varlink.service\n"
"\n"
"# Get a list of all the interfaces a service provides and information\n"
"# about the implementation.\n"
"method GetInfo() -> (\n"
"  vendor: string,\n"
"  product: string,\n"
"  version: string,\n"
"  url: string,\n"
"  interfaces: []string\n"
")\n"
"\n"
"# Get the description of an interface that is implemented by this service.\n"
"method GetInterfaceDescription(interface: string) -> (description: string)\n"
"\n"
"# The requested interface was not found.\n"
"error InterfaceNotFound (interface: string)\n"
"\n"
"# The requested method was not found\n"
"error MethodNotFound (method: string)\n"
"\n"
"# The interface defines the requested method, but the service does not\n"
"# implement it.\n"
"error MethodNotImplemented (method: string)\n"
"\n"
"# One of the passed parameters is invalid.\n"
"error InvalidParameter (parameter: string)\n"
"\n"
"# Client is denied access\n"
"error PermissionDenied ()\n"
"\n"
"# Method is expected to be called with 'more' set to true, but wasn't\n"
"error ExpectedMore ()\n";

static void
handle_get_info(struct control *c, struct vl_call *call, json_t *params)
{
	json_t *p;

	p = json_pack("{s:s,s:s,s:s,s:s,s:[s,s]}", "vendor", "ferry",
	    "product", "ferryd", "version", FERRY_VERSION,
	    "url", "https://ferry.invalid/", "interfaces",
	    "org.varlink.service", "io.ferry");
	vl_reply(call, p, false);
	json_decref(p);
}

static void
handle_get_iface(struct control *c, struct vl_call *call, json_t *params)
{
	const char *name, *text = NULL;
	json_t *p;

	name = json_string_value(json_object_get(params, "interface"));
	if (strcmp(name, "io.ferry") == 0)
		text = iface_io_ferry;
	else if (strcmp(name, "org.varlink.service") == 0)
		text = varlink_service_iface;
	if (text == NULL) {
		p = json_pack("{s:s}", "interface", name);
		vl_error(call, "org.varlink.service.InterfaceNotFound", p);
	} else {
		p = json_pack("{s:s}", "description", text);
		vl_reply(call, p, false);
	}
	json_decref(p);
}

/* --- dispatch --- */

static const struct method methods[] = {
	{ IFACE_FERRY, "Get", handle_get, false },
	{ IFACE_FERRY, "Put", handle_put, true },
	{ IFACE_FERRY, "Patch", handle_patch, true },
	{ IFACE_FERRY, "Delete", handle_delete, true },
	{ IFACE_FERRY, "List", handle_list, false },
	{ IFACE_FERRY, "Watch", handle_watch, false },
	{ IFACE_FERRY, "Status", handle_status, false },
	{ IFACE_FERRY, "Sync", handle_sync, false },
	{ IFACE_FERRY, "Conflicts", handle_conflicts, false },
	{ IFACE_FERRY, "Parked", handle_parked, false },
	{ IFACE_FERRY, "GetConflict", handle_get_conflict, false },
	{ IFACE_FERRY, "Resolve", handle_resolve, true },
	{ IFACE_FERRY, "History", handle_history, false },
	{ IFACE_FERRY, "SetPresence", handle_set_presence, false },
	{ IFACE_FERRY, "Who", handle_who, false },
	{ IFACE_FERRY, "RotateKey", handle_rotate_key, false },
	{ IFACE_SERVICE, "GetInfo", handle_get_info, false },
	{ IFACE_SERVICE, "GetInterfaceDescription", handle_get_iface, false },
};

static const char *const iface_names[IFACE_COUNT] = {
	"io.ferry",
	"org.varlink.service",
};

/* The interface a method name belongs to, or -1; *ret_member is the part
 * after the interface. */
static int
iface_of(const char *method, const char **ret_member)
{
	char iface[256];
	int i;

	if (vl_method_split(method, iface, sizeof iface, ret_member) < 0)
		return -1;
	for (i = 0; i < IFACE_COUNT; i++)
		if (strcmp(iface, iface_names[i]) == 0)
			return i;
	return -1;
}

static const struct method *
method_find(const char *name)
{
	const char *member;
	size_t i;
	int iface;

	if ((iface = iface_of(name, &member)) < 0)
		return NULL;
	for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if ((int)methods[i].iface == iface &&
		    strcmp(methods[i].member, member) == 0)
			return &methods[i];
	return NULL;
}

/* Answer a call to a method ferryd does not have. */
static void
reply_no_method(struct control *c, struct vl_call *call, const char *name)
{
	const char *member;
	char iface[256];
	json_t *p;
	int i;

	if ((i = iface_of(name, &member)) < 0) {
		p = json_pack("{s:s}", "interface",
		    vl_method_split(name, iface, sizeof iface, &member) < 0 ?
		    name : iface);
		vl_error(call, "org.varlink.service.InterfaceNotFound", p);
	} else {
		p = json_pack("{s:s}", "method", name);
		vl_error(call, vl_idl_has_method(c->iface[i], member) ?
		    "org.varlink.service.MethodNotImplemented" :
		    "org.varlink.service.MethodNotFound", p);
	}
	json_decref(p);
}

/*
 * Type-check a call's parameters against the interface ferryd serves, in
 * this one place for every method: a wrong JSON type, an unknown or a
 * missing parameter is org.varlink.service.InvalidParameter {parameter},
 * as generic varlink clients expect (why goes to the debug log).  A
 * number beyond what jansson holds (vl_frame.h) is a value ferry cannot
 * take, not a type: io.ferry.InvalidArgument on the parameter holding it;
 * org.varlink.service's methods answer only their own errors.  True if
 * the handler may run; else the call is answered.
 */
static bool
params_check(struct control *c, struct vl_call *call,
    const struct method *meth)
{
	const struct vl_msg *m = vl_call_msg(call);
	const char *param;
	char why[256];

	if (vl_idl_check(c->iface[meth->iface], VL_IDL_IN, meth->member,
	    m->params, &param, why, sizeof why) < 0) {
		log_debug("call %s: parameter %s: %s", m->method, param, why);
		vl_error_invalid(call, param);
		return false;
	}
	if (m->overflow == NULL)
		return true;
	log_debug("call %s: parameter %s holds a number out of range",
	    m->method, m->overflow);
	if (meth->iface == IFACE_SERVICE)
		vl_error_invalid(call, m->overflow);
	else
		control_reply_invalid(call, m->overflow, "holds a number out of the "
		    "range ferry keeps exactly: integers must fit in 64 bits "
		    "(signed), other numbers in an IEEE 754 double");
	return false;
}

void
control_dispatch(struct vl_call *call, void *arg)
{
	struct control *c = arg;
	const struct vl_msg *m = vl_call_msg(call);
	const struct method *meth;
	uint64_t *tag = vl_call_conn_tag(call);

	meth = method_find(m->method);
	/*
	 * Hold every io.ferry call behind a held call (the held bit is
	 * cleared only when the held list is dispatched again, in order),
	 * and a non-write behind a write whose batch is not answered yet.
	 * Calls that never touch the replica (org.varlink.service's, unknown
	 * methods) are answered at once, so that they answer only
	 * org.varlink.service errors; their replies still go out in order.
	 */
	if (meth != NULL && meth->iface == IFACE_FERRY && ((*tag & 1) ||
	    (conn_waiting(c, call) && !meth->write))) {
		if (call_list_push(&c->held, call) == 0) {
			*tag |= 1;
			return;
		}
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return;
	}
	if (meth == NULL) {
		reply_no_method(c, call, m->method);
		return;
	}
	log_debug("call %s", m->method);
	if (params_check(c, call, meth))
		meth->fn(c, call, m->params);
}

/* Does a reply (error NULL) or an error fit the interface?  0, or -EINVAL
 * with why. */
static int
reply_fits(struct control *c, const struct vl_msg *m, const char *error,
    json_t *params, char *why, size_t why_len)
{
	const struct method *meth = NULL;
	const char *member, *param;
	int i, r;

	if (m->method != NULL)
		meth = method_find(m->method);
	if (error == NULL) {
		if (meth == NULL) {
			snprintf(why, why_len, "a reply to a call that is "
			    "not of a method here");
			return -EINVAL;
		}
		return vl_idl_check(c->iface[meth->iface], VL_IDL_OUT,
		    meth->member, params, &param, why, why_len) < 0 ?
		    -EINVAL : 0;
	}
	if ((i = iface_of(error, &member)) < 0 ||
	    (meth != NULL && meth->iface == IFACE_SERVICE &&
	    i != IFACE_SERVICE)) {
		snprintf(why, why_len, "error %s is not one %s may answer",
		    error, m->method != NULL ? m->method : "a bad message");
		return -EINVAL;
	}
	r = vl_idl_check(c->iface[i], VL_IDL_ERROR, member, params, &param,
	    why, why_len);
	if (r == -ENOENT)
		snprintf(why, why_len, "error %s is not declared", error);
	return r < 0 ? -EINVAL : 0;
}

void
control_check_reply(struct vl_call *call, const char *error, json_t *params,
    const char *text, size_t len, void *arg)
{
	const struct vl_msg *m = vl_call_msg(call);
	json_t *owned = NULL;
	char why[256];

	why[0] = '\0';
	if (text != NULL && (params = owned = json_loadb(text, len, 0,
	    NULL)) == NULL)
		snprintf(why, sizeof why, "the parameters are not JSON");
	else if (params == NULL)
		params = owned = json_object();
	if (why[0] == '\0' && reply_fits(arg, m, error, params, why,
	    sizeof why) == 0) {
		json_decref(owned);
		return;
	}
	log_err("%s%s to %s does not fit the interface: %s",
	    error != NULL ? "error " : "reply", error != NULL ? error : "",
	    m->method != NULL ? m->method : "a bad message", why);
	abort();
}

/*
 * Parse the interfaces ferryd serves, and check that they and the method
 * table agree: the text served is the contract every call is checked
 * against.  0, or -EINVAL logged.
 */
static int
control_load_ifaces(struct control *c)
{
	const char *text[IFACE_COUNT] = { iface_io_ferry,
	    varlink_service_iface };
	char why[256];
	size_t i;
	int r;

	for (i = 0; i < IFACE_COUNT; i++) {
		if ((r = vl_idl_parse(text[i], &c->iface[i], why,
		    sizeof why)) < 0) {
			log_err("cannot parse the interface %s: %s",
			    iface_names[i], why);
			return r;
		}
		if (strcmp(vl_idl_name(c->iface[i]), iface_names[i]) != 0) {
			log_err("the interface %s is named %s", iface_names[i],
			    vl_idl_name(c->iface[i]));
			return -EINVAL;
		}
	}
	for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (!vl_idl_has_method(c->iface[methods[i].iface],
		    methods[i].member)) {
			log_err("the interface %s has no method %s",
			    iface_names[methods[i].iface], methods[i].member);
			return -EINVAL;
		}
	return 0;
}

/* --- life cycle --- */

static int
dup_or_null(const char *s, char **ret)
{
	char *d = NULL;

	if (s != NULL && *s != '\0' && (d = strdup(s)) == NULL)
		return -ENOMEM;
	*ret = d;
	return 0;
}

int
control_set_info(struct control *c, const struct control_info *info)
{
	char *name, *remote;

	if (dup_or_null(info->device_name, &name) < 0)
		return -ENOMEM;
	if (dup_or_null(info->remote, &remote) < 0) {
		free(name);
		return -ENOMEM;
	}
	if (c->data_dir == NULL && info->data_dir != NULL &&
	    (c->data_dir = strdup(info->data_dir)) == NULL) {
		free(name);
		free(remote);
		return -ENOMEM;
	}
	free(c->device_name);
	free(c->remote);
	c->keys = info->keys;
	c->device_name = name;
	c->remote = remote;
	control_status_changed(c);
	return 0;
}

int
control_new(struct event_base *base, struct store *st,
    const struct control_info *info, const struct control_parts *parts,
    struct control **ret)
{
	struct control *c;
	int r;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	c->base = base;
	c->st = st;
	c->watch = parts->watch;
	c->writer = parts->writer;
	c->sync = parts->sync;
	c->presence = parts->presence;
	if ((r = control_load_ifaces(c)) < 0 ||
	    (r = history_new(base, &c->history)) < 0) {
		control_free(c);
		return r;
	}
	c->status_ev = evtimer_new(base, status_push_cb, c);
	if (c->status_ev == NULL) {
		control_free(c);
		return -ENOMEM;
	}
	if ((r = control_set_info(c, info)) < 0) {
		control_free(c);
		return r;
	}
	*ret = c;
	return 0;
}

char *
control_status_line(struct control *c)
{
	struct store_counts n;
	char *line;

	if (store_counts(c->st, &n) < 0)
		memset(&n, 0, sizeof n);
	if (asprintf(&line, "%s; %" PRId64 " docs, %" PRId64 " pending, %d "
	    "watchers", c->sync == NULL ? "unconfigured" : sync_state(c->sync),
	    n.docs, n.pending, watch_count(c->watch)) < 0)
		return NULL;
	return line;
}

void
control_end_streams(struct control *c)
{
	json_t *last, *p;
	size_t i;

	if (c->status_subs.n == 0)
		return;
	/* A Status stream's last reply is a status too. */
	last = status_json(c);
	p = last != NULL ? json_pack("{s:o}", "status", last) : NULL;
	for (i = 0; i < c->status_subs.n; i++) {
		vl_call_set_cancel(c->status_subs.v[i], NULL, NULL);
		vl_reply(c->status_subs.v[i], p, false);
	}
	json_decref(p);
	c->status_subs.n = 0;
}

void
control_free(struct control *c)
{
	size_t i;

	if (c == NULL)
		return;
	control_run_held(c);
	control_end_streams(c);
	history_free(c->history);
	free(c->status_subs.v);
	if (c->status_ev != NULL)
		event_free(c->status_ev);
	json_decref(c->last_status);
	for (i = 0; i < IFACE_COUNT; i++)
		vl_idl_free(c->iface[i]);
	free(c->held.v);
	free(c->device_name);
	free(c->data_dir);
	free(c->remote);
	free(c);
}
