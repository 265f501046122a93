/*
 * sync: pusher and puller; see sync.h.
 *
 * Loop-thread state: at most one push request is in flight, with the
 * next batch prepared beside it (see "push" below), and answers being
 * recorded; `push_need` records that something may be sendable (a kick, a
 * full batch, an answer recorded).  A transient failure of a push or a
 * pull arms the one retry timer and marks the engine offline; success of
 * either clears that.  The pull cursor is read once at start (an op) and
 * then kept here, moving only when an apply op committed; the puller
 * fetches up to PULL_AHEAD pages ahead of it (fetch_cursor), and each page
 * applies only on top of the stored cursor it followed, so a page that
 * failed can never be skipped: the pages after it are refetched.  A page
 * goes through two worker threads before the writer, never touching the
 * loop: the parser parses and checks it (only then is its last_seq known,
 * so one page is parsed at a time and the next request starts when it is
 * done), then the encoder writes each body as the text to store and drops
 * its tree, so the writer (the pull's bottleneck) only binds text and
 * frees what is left.  Each stage is FIFO, so pages reach the writer in
 * the order they were fetched; a rewind (pull_gen) drops the pages still
 * in the workers.  While catching up, the next request need not wait for
 * the parse: it starts from a hint read off the end of the text, which
 * the parser checks (wire_last_seq_hint).  A small page (a long-poll's
 * answer) with nothing queued before it skips the workers: parsing it costs
 * microseconds, and the hop would wake the loop once more.
 *
 * Writer-thread state: the device seq lives in meta "device_seq" and is
 * read and advanced inside the prepare op, in the same transaction that
 * stores the records: a seq is never reused, even across crashes.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "backoff.h"
#include "bodylimit.h"
#include "http.h"
#include "jobq.h"
#include "log.h"
#include "merge.h"
#include "names.h"
#include "record.h"
#include "sync.h"
#include "util.h"
#include "wire.h"

#define PUSH_BATCH	1000	/* changes per push request (the server's cap) */
#define PULL_LIMIT	1000	/* changes per pull page */
#define PULL_WAIT	30	/* seconds a long-poll may be held */
#define PULL_AHEAD	4	/* pages fetched and not yet applied */
#define PULL_INLINE_MAX	(16 * 1024) /* smaller pages skip the workers */
#define PUSH_TIMEOUT_MS	60000L
#define CONNECT_TIMEOUT_MS 10000L

struct push_item {
	int64_t	 oseq;
	char	*collection;
	char	*id;
	char	*body;		/* the body the record carries; NULL: delete */
};

struct push_step {
	struct sync		*sy;
	struct push_item	*items;
	size_t			 n;
	json_t			*changes;	/* [{record, sig}] */
	char			*text;		/* the request body */
	size_t			 len;
	json_t			*results;	/* the server's answer */
	int			 limit;
	int64_t			 after;		/* skip records up to this seq */
	int64_t			 last_change_seq; /* highest record in it */
	uint64_t		 gen;		/* sy->push_gen when made */
};

struct pull_step {
	struct sync	*sy;
	char		*text;		/* the answer, until parsed */
	size_t		 len;		/* its length (kept) */
	char		 bad[JSON_ERROR_TEXT_LENGTH]; /* why it was refused */
	json_t		*changes;	/* until applied (writer frees it) */
	char		**bodies;	/* each change's body as text, or NULL */
	char		**why;		/* why a change cannot apply (NULL: it
					 * can; the array only if one cannot) */
	size_t		 n;		/* changes in the page */
	int64_t		 since;		/* the cursor this page follows */
	int64_t		 last_seq;
	uint64_t	 round;
	uint64_t	 gen;		/* sy->pull_gen when fetched */
	int64_t		 hint;		/* the next page was fetched from
					 * here before parsing (0: not) */
	bool		 stale;		/* since was not the stored cursor */
	bool		 merged;	/* a merge queued a change to push */
	bool		 settled;	/* a pulled-back change of ours was
					 * the answer to its push */
	bool		 queued;	/* in a worker's queue (counted) */
};

struct waiter {
	struct vl_call	*call;
	uint64_t	 pull_round;	/* needs a caught-up pull of this round */
};

struct sync {
	struct event_base	*base;
	struct store		*st;
	struct writer		*writer;
	const struct keys	*keys;
	struct http		*http;
	char			*remote;
	struct backoff		 backoff;
	struct event		*retry_ev;
	sync_changed_fn		 changed;
	sync_reply_fn		 reply;
	void			*arg;

	bool			 started;	/* cursor loaded */
	bool			 offline;
	bool			 paused;
	char			 last_error[512];
	int64_t			 last_ok_ms;

	bool			 stopping;
	struct push_step	*push_inflight;	/* while its request runs */
	struct push_step	*push_ready;	/* prepared, not yet sent */
	bool			 push_preparing; /* a prepare op is queued */
	int			 push_applying;	/* apply ops queued */
	bool			 push_need;	/* something may be sendable */
	bool			 push_empty;	/* last prepare found nothing */
	int64_t			 push_handed;	/* records up to this seq are
						 * in a request or ready */
	uint64_t		 push_gen;	/* bumped by push_reset */
	int			 push_limit;

	struct http_req		*pull_req;	/* the request under way */
	bool			 pull_waiting;	/* it is a long-poll */
	uint64_t		 req_round;	/* its round */
	int			 pull_applying;	/* pages being parsed or queued
						 * to the writer */
	struct jobq		*parser;	/* parses pages, one at a time */
	struct jobq		*encoder;	/* writes their bodies as text */
	struct pull_step	*pull_unknown;	/* fetched last, its last_seq
						 * not yet known: no fetch */
	bool			 pull_bulk;	/* the last page parsed was full */
	int			 pull_at_parser; /* pages in the workers' */
	int			 pull_at_encoder; /* queues */
	uint64_t		 pull_gen;	/* bumped by pull_rewind */
	int64_t			 cursor;	/* applied and stored */
	int64_t			 fetch_cursor;	/* fetched (maybe not applied) */
	uint64_t		 pull_round;	/* rounds started */
	uint64_t		 caught_round;	/* last round that caught up */
	uint64_t		 caught_after;	/* caught up once pages apply */

	struct waiter		*waiters;
	size_t			 nwaiters;
	size_t			 capwaiters;
};

static void push_start(struct sync *sy);
const char *sync_last_error(const struct sync *sy);
static void pull_start(struct sync *sy, int wait);
static void waiters_check(struct sync *sy);
static void waiters_fail(struct sync *sy);

/* --- helpers --- */

static void
sync_notify(struct sync *sy)
{
	sy->changed(sy->arg);
}

static void
sync_error(struct sync *sy, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
sync_error(struct sync *sy, const char *fmt, ...)
{
	char buf[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof buf, fmt, ap);
	va_end(ap);
	if (strcmp(buf, sy->last_error) != 0)
		log_warn("sync: %s", buf);
	snprintf(sy->last_error, sizeof sy->last_error, "%s", buf);
}

/* A transient failure: offline, retry everything after a backoff. */
static void
sync_transient(struct sync *sy)
{
	struct timeval tv;
	int64_t ms;

	sy->offline = true;
	if (!evtimer_pending(sy->retry_ev, NULL)) {
		ms = backoff_next(&sy->backoff);
		tv.tv_sec = ms / 1000;
		tv.tv_usec = (ms % 1000) * 1000;
		evtimer_add(sy->retry_ev, &tv);
		log_debug("sync: retry in %" PRId64 " ms", ms);
	}
	/* Sync(wait) callers learn at once that the remote is away. */
	waiters_fail(sy);
	sync_notify(sy);
}

static void
sync_ok(struct sync *sy)
{
	bool was = sy->offline || sy->last_error[0] != '\0';

	sy->offline = false;
	sy->last_ok_ms = util_now_ms();
	sy->last_error[0] = '\0';
	backoff_reset(&sy->backoff);
	if (was)
		log_notice("sync: connected to %s", sy->remote);
}

/* Answer every Sync(wait) caller: the remote will not be reached now. */
static void
waiters_fail(struct sync *sy)
{
	json_t *p;
	size_t i;

	p = json_pack("{s:s?}", "reason", sync_last_error(sy));
	for (i = 0; i < sy->nwaiters; i++)
		vl_error(sy->waiters[i].call, "io.ferry.Offline", p);
	json_decref(p);
	sy->nwaiters = 0;
}

/* A definitive refusal: stop until Sync or reload. */
static void
sync_pause(struct sync *sy)
{
	sy->paused = true;
	waiters_fail(sy);
	sync_notify(sy);
}

static void
sync_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync *sy = arg;

	push_start(sy);
	if (sy->pull_req == NULL)
		pull_start(sy, 0);
}

/* Start a signed request to the remote. */
static int
sync_http(struct sync *sy, const char *method, const char *path_query,
    const char *body, size_t len, long timeout_ms, long connect_ms,
    http_done_fn cb, void *arg, struct http_req **ret)
{
	const char *headers[3];
	char *auth = NULL, *hdr = NULL, *url = NULL;
	int r;

	if ((r = auth_header_make(sy->keys, method, path_query, body, len,
	    util_now_ms() / 1000, &auth)) < 0)
		goto out;
	if (asprintf(&hdr, "Authorization: %s", auth) < 0 ||
	    asprintf(&url, "%s%s", sy->remote, path_query) < 0) {
		hdr = url = NULL;
		r = -ENOMEM;
		goto out;
	}
	headers[0] = hdr;
	headers[1] = "Content-Type: application/json";
	headers[2] = NULL;
	r = http_start(sy->http, method, url, headers, body, len, timeout_ms,
	    connect_ms, cb, arg, ret);
out:
	free(auth);
	free(hdr);
	free(url);
	return r;
}

/* Classify an HTTP answer: 1 ok (200), 0 transient, -1 definitive. */
static int
sync_classify(struct sync *sy, const struct http_result *res,
    const char *what)
{
	json_error_t jerr;
	const char *why = NULL;
	json_t *body;

	if (res->err != 0) {
		sync_error(sy, "%s: cannot reach %s: %s", what, sy->remote,
		    res->errmsg);
		return 0;
	}
	if (res->status == 200)
		return 1;
	body = json_loadb(res->body, res->len, 0, &jerr);
	if (body != NULL)
		why = json_string_value(json_object_get(body, "error"));
	sync_error(sy, "%s: %s answered %ld%s%s", what, sy->remote,
	    res->status, why != NULL ? ": " : "", why != NULL ? why : "");
	json_decref(body);
	if (res->status == 408 || res->status == 429 || res->status >= 500)
		return 0;
	return -1;
}

/* --- push --- */

/*
 * The push pipeline: while one request is in flight, the next batch is
 * prepared (records made, signed and stored; the request body built) on
 * the writer thread, so the server's work and ours overlap.  Requests
 * still go one at a time, in device-seq order: the server refuses a seq
 * below one it has seen.  A prepare skips the records already handed to a
 * request (change_seq <= push_handed); the SQL keeps a document with a
 * record out of any new batch (at most one change per document in
 * flight).  Any failure drops what was prepared ahead and starts again
 * from the oldest record not answered (push_reset): those records are
 * stored, so they are resent byte for byte, never made twice.
 */

static void
push_step_free(struct push_step *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->n; i++) {
		free(p->items[i].collection);
		free(p->items[i].id);
		free(p->items[i].body);
	}
	free(p->items);
	json_decref(p->changes);
	json_decref(p->results);
	free(p->text);
	free(p);
}

struct prep_ctx {
	struct push_step	*p;
	struct writer_batch	*b;
	const struct keys	*keys;
	int64_t			 device_seq;
	int			 err;
	size_t			 cap;
};

/* The body a record carries, as stored text (NULL for a delete). */
static char *
record_body_text(const char *record, size_t len)
{
	json_error_t jerr;
	json_t *r, *body;
	char *text = NULL;

	if ((r = json_loadb(record, len, 0, &jerr)) == NULL)
		return NULL;
	body = json_object_get(r, "body");
	if (json_is_object(body))
		text = json_dumps(body, JSON_COMPACT);
	json_decref(r);
	return text;
}

static int
prep_one(const struct store_intent *in, void *arg)
{
	struct prep_ctx *c = arg;
	struct push_item *it, *v;
	json_error_t jerr;
	json_t *body = NULL, *ch;
	char *text = NULL, *sig = NULL, *btext = NULL;
	size_t len, off, blen;
	int64_t ts, change_seq;
	int r;

	if (in->record == NULL && in->deleted && in->version == 0) {
		/* Created and deleted before it ever reached the remote:
		 * there is nothing to tell it. */
		return store_push_applied(c->b->st, in->oseq, in->collection,
		    in->id, 0, NULL) < 0 ? (c->err = -EIO) : 0;
	}
	if (c->p->n == c->cap) {
		c->cap = c->cap ? c->cap * 2 : 64;
		if ((v = realloc(c->p->items, c->cap * sizeof *v)) == NULL)
			return c->err = -ENOMEM;
		c->p->items = v;
	}
	if (in->record != NULL) {
		/* Made before: send exactly the same bytes again. */
		if ((text = strndup(in->record, in->record_len)) == NULL ||
		    (sig = strdup(in->sig)) == NULL) {
			free(text);
			return c->err = -ENOMEM;
		}
		len = in->record_len;
		change_seq = in->change_seq;
		btext = record_body_text(text, len);
	} else {
		if (!in->deleted && (in->body == NULL ||
		    (body = json_loads(in->body, 0, &jerr)) == NULL))
			return c->err = -EBADMSG;
		change_seq = ++c->device_seq;
		ts = util_now_ms();
		r = record_make(c->keys, in->deleted ? "delete" : "put",
		    in->version, in->collection, in->id, change_seq, ts, body,
		    &text, &len, &sig);
		json_decref(body);
		if (r < 0)
			return c->err = r;
		if ((r = store_outbox_set_record(c->b->st, in->oseq, text, len,
		    sig, change_seq)) < 0) {
			free(text);
			free(sig);
			return c->err = r;
		}
		/* The body it carries is a slice of what was just made. */
		if (!in->deleted && record_body_span(text, len, in->version,
		    in->collection, c->keys->pub_b64, in->id, change_seq, ts,
		    &off, &blen) == 0)
			btext = strndup(text + off, blen);
	}
	if (btext == NULL && !in->deleted && in->record == NULL) {
		free(text);
		free(sig);
		return c->err = -ENOMEM;
	}
	it = &c->p->items[c->p->n];
	memset(it, 0, sizeof *it);
	it->oseq = in->oseq;
	it->collection = strdup(in->collection);
	it->id = strdup(in->id);
	it->body = btext;
	ch = json_pack("{s:s%,s:s}", "record", text, len, "sig", sig);
	free(text);
	free(sig);
	if (it->collection == NULL || it->id == NULL || ch == NULL ||
	    json_array_append_new(c->p->changes, ch) < 0) {
		free(it->collection);
		free(it->id);
		free(it->body);
		return c->err = -ENOMEM;
	}
	if (change_seq > c->p->last_change_seq)
		c->p->last_change_seq = change_seq;
	c->p->n++;
	return 0;
}

/* Writer thread: pick what to send, make and store new records, and
 * write the request body. */
static void
push_prepare_run(struct writer_batch *b, struct writer_op *op)
{
	struct push_step *p = op->arg;
	struct prep_ctx c;
	char *v = NULL, buf[32];
	json_t *o;
	int r;

	memset(&c, 0, sizeof c);
	c.p = p;
	c.b = b;
	c.keys = p->sy->keys;
	if (store_meta_get(b->st, "device_seq", &v) == 0) {
		c.device_seq = strtoll(v, NULL, 10);
		free(v);
	}
	r = store_outbox_sendable_after(b->st, p->after, p->limit, prep_one,
	    &c);
	if (r < 0 || c.err < 0) {
		writer_op_fail(op, c.err < 0 ? c.err : r,
		    c.err == -EBADMSG ? "a stored body cannot be read" :
		    c.err == -ENOMEM ? "out of memory" : store_errmsg(b->st));
		return;
	}
	snprintf(buf, sizeof buf, "%" PRId64, c.device_seq);
	if ((r = store_meta_set(b->st, "device_seq", buf)) < 0) {
		writer_op_fail(op, r, store_errmsg(b->st));
		return;
	}
	if (p->n == 0)
		return;
	o = json_pack("{s:O}", "changes", p->changes);
	p->text = o != NULL ? json_dumps(o, JSON_COMPACT) : NULL;
	json_decref(o);
	if (p->text == NULL)
		writer_op_fail(op, -ENOMEM, "out of memory");
	else
		p->len = strlen(p->text);
}

/*
 * Writer thread: the server holds their_version of a document that has
 * local changes (cur; not yet on the server): three-way merge base (the
 * body last synced), mine (cur) and theirs (DESIGN "Merge and
 * conflicts").  Clean: the merge becomes the local body on top of
 * their_version (Watch origin "merge") and is pushed, unless it equals
 * theirs; not clean, or a conflict already open: the conflict queue, with
 * the paths.  oseq: the outbox row a push answered "conflict" for (0 for a
 * pulled change).  theirs_text: their body as it is stored (ignored when
 * their_deleted).  Sets *ret_push (may be NULL) when a change was queued
 * to push.
 */
static int
sync_merge(struct writer_batch *b, const struct store_doc *cur, int64_t oseq,
    const char *collection, const char *id, int64_t their_version,
    bool their_deleted, const char *theirs_text, bool *ret_push)
{
	json_t *base = NULL, *mine = NULL, *theirs = NULL, *merged = NULL;
	json_t *paths = NULL;
	char *base_text = NULL, *merged_text = NULL, *paths_text = NULL;
	int64_t seq, rev;
	bool push;
	int n, r;

	if (their_deleted)
		theirs_text = NULL;
	if ((r = store_doc_base(b->st, collection, id, &base_text)) < 0)
		goto out;
	r = -EBADMSG;
	if (theirs_text != NULL && (theirs = json_loads(theirs_text,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		goto out;
	if (base_text != NULL && (base = json_loads(base_text,
	    JSON_REJECT_DUPLICATES, NULL)) == NULL)
		goto out;
	if (!cur->deleted && cur->body != NULL && (mine = json_loads(
	    cur->body, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		goto out;
	if ((n = merge_three(base, mine, theirs, &merged, &paths)) < 0) {
		r = n;
		goto out;
	}
	log_debug("sync: merge %s/%s (rev %" PRId64 ", version %" PRId64
	    ", %s) with version %" PRId64 ": %d conflicts", collection, id,
	    cur->rev, cur->version, oseq > 0 ? "push answer" : "pull",
	    their_version, n);
	if (n > 0 || cur->conflicted) {
		if (n > 0 && (paths_text = json_dumps(paths, JSON_COMPACT)) ==
		    NULL) {
			r = -ENOMEM;
			goto out;
		}
		r = store_conflict_add(b->st, oseq, collection, id,
		    paths_text, their_version, their_deleted, theirs_text,
		    util_now_ms());
		goto out;
	}
	push = !(merged == NULL ? theirs == NULL :
	    theirs != NULL && json_equal(merged, theirs));
	/* Keys sorted, as in the record the server will store. */
	if (push && merged != NULL && (merged_text = json_dumps(merged,
	    JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if ((r = store_merged(b->st, cur, collection, id,
	    push ? merged_text : theirs_text, their_version, their_deleted,
	    theirs_text, push, util_now_ms(), &seq, &rev)) < 0)
		goto out;
	r = watch_events_add(&b->events, seq, collection, id, rev,
	    their_version, push ? merged == NULL : their_deleted,
	    STORE_ORIGIN_MERGE, push ? merged_text : theirs_text);
	if (r == 0 && push && ret_push != NULL)
		*ret_push = true;
out:
	json_decref(base);
	json_decref(mine);
	json_decref(theirs);
	json_decref(merged);
	json_decref(paths);
	free(base_text);
	free(merged_text);
	free(paths_text);
	return r;
}

/* Writer thread: a push answered "conflict" with the server's current
 * state: merge, unless a merge or resolution already replaced that record. */
static int
push_conflict(struct writer_batch *b, const struct push_item *it,
    json_t *current)
{
	struct store_doc cur;
	json_t *body = json_object_get(current, "body");
	char *theirs = NULL;
	int r;

	if ((r = store_outbox_has(b->st, it->oseq)) <= 0)
		return r;
	if (json_is_object(body) && (theirs = json_dumps(body,
	    JSON_COMPACT)) == NULL)
		return -ENOMEM;
	memset(&cur, 0, sizeof cur);
	if ((r = store_doc_get(b->st, STORE_WRITER, it->collection, it->id,
	    &cur)) == 0)
		r = sync_merge(b, &cur, it->oseq, it->collection, it->id,
		    json_integer_value(json_object_get(current, "version")),
		    json_is_true(json_object_get(current, "deleted")),
		    theirs, NULL);
	store_doc_clear(&cur);
	free(theirs);
	return r;
}

/* Writer thread: apply the server's answer to each change. */
static void
push_apply_run(struct writer_batch *b, struct writer_op *op)
{
	struct push_step *p = op->arg;
	const char *status;
	struct push_item *it;
	json_t *res;
	size_t i;
	int r = 0;

	for (i = 0; i < p->n && r == 0; i++) {
		it = &p->items[i];
		res = json_array_get(p->results, i);
		status = json_string_value(json_object_get(res, "status"));
		if (strcmp(status, "applied") == 0 ||
		    strcmp(status, "duplicate") == 0) {
			r = store_push_applied(b->st, it->oseq, it->collection,
			    it->id, json_integer_value(json_object_get(res,
			    "version")), it->body);
		} else if (strcmp(status, "conflict") == 0) {
			r = push_conflict(b, it, json_object_get(res,
			    "current"));
		} else {
			r = store_push_rejected(b->st, it->oseq,
			    json_string_value(json_object_get(res, "error")));
		}
	}
	if (r < 0)
		writer_op_fail(op, r, store_errmsg(b->st));
}

static bool
push_busy(const struct sync *sy)
{
	return sy->push_inflight != NULL || sy->push_ready != NULL ||
	    sy->push_preparing || sy->push_applying > 0;
}

/* Nothing sendable is left: every record answered, nothing to make. */
static bool
push_idle(const struct sync *sy)
{
	return !push_busy(sy) && !sy->push_need && sy->push_empty;
}

/* Forget what was prepared ahead: start again from the oldest record not
 * answered.  A prepare under way is discarded when it ends. */
static void
push_reset(struct sync *sy)
{
	sy->push_gen++;
	sy->push_handed = 0;
	push_step_free(sy->push_ready);
	sy->push_ready = NULL;
	sy->push_need = true;
}

static void
push_applied_done(struct writer_op *op, int err)
{
	struct push_step *p = op->arg;
	struct sync *sy = p->sy;

	push_step_free(p);
	sy->push_applying--;
	if (sy->stopping)
		return;
	if (err != 0) {
		push_reset(sy);
		sync_error(sy, "push: cannot record the results");
		sync_transient(sy);
		return;
	}
	if (sy->push_limit < PUSH_BATCH)
		sy->push_limit *= 2;	/* grow back after a 413 */
	if (sy->push_limit > PUSH_BATCH)
		sy->push_limit = PUSH_BATCH;
	/* Documents whose record was answered may have intents waiting. */
	sy->push_need = true;
	sync_notify(sy);
	push_start(sy);
}

/* The request failed or was refused: drop it and what was prepared. */
static void
push_abort(struct sync *sy, struct push_step *p)
{
	sy->push_inflight = NULL;
	push_step_free(p);
	push_reset(sy);
}

static void
push_http_done(struct http_req *req, const struct http_result *res,
    void *arg)
{
	struct push_step *p = arg;
	struct sync *sy = p->sy;
	struct writer_op *op;
	json_error_t jerr;
	json_t *results;
	const char *bad;
	int k;

	k = sync_classify(sy, res, "push");
	if (k == 1) {
		p->results = json_loadb(res->body, res->len,
		    JSON_REJECT_DUPLICATES, &jerr);
		bad = p->results == NULL ? jerr.text : wire_push_results_check(
		    json_object_get(p->results, "results"), p->n);
		if (bad != NULL) {
			sync_error(sy, "push: bad answer from %s: %s",
			    sy->remote, bad);
			k = 0;
		}
	}
	if (k == -1 && res->status == 413 && p->limit > 1) {
		/* Too large a batch: at once again with half as many. */
		sy->push_limit = p->limit / 2 > 0 ? p->limit / 2 : 1;
		push_abort(sy, p);
		push_start(sy);
		return;
	}
	if (k == -1 && res->status == 413 && p->n == 1) {
		/* One change the remote will never take: park it as
		 * rejected, as if the server had answered so, and go on. */
		json_decref(p->results);
		p->results = json_pack("{s:[{s:s,s:s}]}", "results", "status",
		    "rejected", "error", "too large for the remote (413)");
		k = p->results != NULL ? 1 : 0;
	}
	if (k != 1) {
		push_abort(sy, p);
		if (k == 0)
			sync_transient(sy);
		else
			sync_pause(sy);
		return;
	}
	sync_ok(sy);
	/* Keep only the results array. */
	results = json_incref(json_object_get(p->results, "results"));
	json_decref(p->results);
	p->results = results;
	sy->push_inflight = NULL;
	if ((op = writer_add(sy->writer, NULL, push_apply_run, p,
	    NULL)) == NULL) {
		push_abort(sy, p);
		sync_error(sy, "push: out of memory");
		sync_transient(sy);
		return;
	}
	op->done = push_applied_done;
	sy->push_applying++;
	/* The next batch goes out while this answer is recorded. */
	push_start(sy);
}

static void
push_prepared_done(struct writer_op *op, int err)
{
	struct push_step *p = op->arg;
	struct sync *sy = p->sy;

	sy->push_preparing = false;
	if (sy->stopping) {
		push_step_free(p);
		return;
	}
	if (err != 0) {
		push_step_free(p);
		push_reset(sy);
		sync_error(sy, "push: cannot prepare changes");
		sync_transient(sy);
		return;
	}
	if (p->gen != sy->push_gen) {
		/* Prepared after a point that no longer holds: its new
		 * records are stored and will be picked up again. */
		push_step_free(p);
		sy->push_need = true;
		push_start(sy);
		return;
	}
	if (p->n == 0) {
		push_step_free(p);
		sy->push_empty = true;
		if (sy->push_need)
			push_start(sy);
		else
			waiters_check(sy);
		sync_notify(sy);
		return;
	}
	sy->push_empty = false;
	/* A full batch: more may be waiting behind it. */
	if (p->n >= (size_t)p->limit)
		sy->push_need = true;
	if (p->last_change_seq > sy->push_handed)
		sy->push_handed = p->last_change_seq;
	sy->push_ready = p;
	push_start(sy);
	sync_notify(sy);
}

/* Send the prepared batch if no request is in flight. */
static void
push_send(struct sync *sy)
{
	struct push_step *p = sy->push_ready;
	int r;

	if (p == NULL || sy->push_inflight != NULL)
		return;
	sy->push_ready = NULL;
	r = sync_http(sy, "POST", "/v1/push", p->text, p->len,
	    PUSH_TIMEOUT_MS, CONNECT_TIMEOUT_MS, push_http_done, p, NULL);
	if (r < 0) {
		push_step_free(p);
		push_reset(sy);
		sync_error(sy, "push: cannot start a request: %s",
		    strerror(-r));
		sync_transient(sy);
		return;
	}
	sy->push_inflight = p;	/* owned by the request until it ends */
}

/* Prepare the next batch if there may be one and none is waiting. */
static void
push_prepare(struct sync *sy)
{
	struct writer_op *op;
	struct push_step *p;

	if (sy->push_preparing || sy->push_ready != NULL || !sy->push_need)
		return;
	if ((p = calloc(1, sizeof *p)) == NULL ||
	    (p->changes = json_array()) == NULL) {
		free(p);
		return;
	}
	p->sy = sy;
	p->limit = sy->push_limit;
	p->after = sy->push_handed;
	p->gen = sy->push_gen;
	if ((op = writer_add(sy->writer, NULL, push_prepare_run, p,
	    NULL)) == NULL) {
		push_step_free(p);
		return;
	}
	op->done = push_prepared_done;
	sy->push_preparing = true;
	sy->push_need = false;
}

/* Move the pipeline on: send what is ready, prepare what comes next. */
static void
push_start(struct sync *sy)
{
	if (!sy->started || sy->paused || sy->stopping)
		return;
	if (evtimer_pending(sy->retry_ev, NULL))
		return;		/* the retry timer will start us */
	push_send(sy);
	push_prepare(sy);
}

/* --- pull --- */

static void
pull_bodies_free(struct pull_step *p)
{
	size_t i;

	if (p->why != NULL) {
		for (i = 0; i < p->n; i++)
			free(p->why[i]);
		free(p->why);
		p->why = NULL;
	}
	if (p->bodies == NULL)
		return;
	for (i = 0; i < p->n; i++)
		free(p->bodies[i]);
	free(p->bodies);
	p->bodies = NULL;
}

static void
pull_step_free(struct pull_step *p)
{
	if (p == NULL)
		return;
	free(p->text);
	json_decref(p->changes);
	pull_bodies_free(p);
	free(p);
}

/* Is change id "<device>:<seq>" one of ours?  If so, *ret_seq is its seq. */
static bool
change_is_ours(const struct sync *sy, const char *change, int64_t *ret_seq)
{
	size_t n = strlen(sy->keys->pub_b64);
	char *end;
	long long seq;

	if (change == NULL || strncmp(change, sy->keys->pub_b64, n) != 0 ||
	    change[n] != ':')
		return false;
	errno = 0;
	seq = strtoll(change + n + 1, &end, 10);
	if (errno != 0 || end == change + n + 1 || *end != '\0' || seq < 1)
		return false;
	*ret_seq = seq;
	return true;
}

/*
 * Errors that say the replica as a whole cannot be written now (the page
 * is retried from its cursor), as opposed to one change that cannot be
 * applied (parked, and the pull goes on).
 */
static bool
pull_error_is_fatal(int r)
{
	return r == -ENOMEM || r == -ENOSPC || r == -EBUSY || r == -EIO ||
	    r == -EACCES || r == -EROFS;
}

/*
 * Writer thread: apply one change of a page (inside its own savepoint).
 * A change of ours coming back while its record is still in the outbox
 * is the push's answer (a reply lost or not yet arrived): the record is
 * settled as "applied" would settle it, so the document's version and
 * base move to it and later local changes go on top; it is never merged
 * with itself.  Anyone else's change is merged with local changes (a
 * rebase), updates an open conflict with a newer theirs, or is applied.
 */
static int
pull_apply_one(struct writer_batch *b, struct pull_step *p, json_t *ch,
    const char *body)
{
	struct sync *sy = p->sy;
	const char *collection, *id, *change;
	struct store_doc cur;
	int64_t version, seq, rev, mine = 0;
	bool deleted;
	int r;

	collection = json_string_value(json_object_get(ch, "collection"));
	id = json_string_value(json_object_get(ch, "id"));
	version = json_integer_value(json_object_get(ch, "version"));
	deleted = json_is_true(json_object_get(ch, "deleted"));
	change = json_string_value(json_object_get(ch, "change"));
	memset(&cur, 0, sizeof cur);
	r = store_doc_get(b->st, STORE_WRITER, collection, id, &cur);
	if (r < 0 && r != -ENOENT)
		return r;
	r = 0;
	if (version <= cur.version) {
		/* Already have it (our own push, or a replay). */
	} else if (cur.pending || cur.conflicted) {
		if (change_is_ours(sy, change, &mine) &&
		    (r = store_push_settle_change(b->st, collection, id, mine,
		    version, deleted ? NULL : body)) != 0) {
			if (r > 0) {
				log_debug("sync: %s/%s: change %" PRId64
				    " pulled back before its push answer: "
				    "version %" PRId64, collection, id, mine,
				    version);
				p->settled = true;
				r = 0;
			}
		} else
			r = sync_merge(b, &cur, 0, collection, id, version,
			    deleted, body, &p->merged);
	} else {
		r = store_apply_remote(b->st, &cur, collection, id, version,
		    deleted, body, util_now_ms(), &seq, &rev);
		if (r == 0)
			r = watch_events_add(&b->events, seq, collection, id,
			    rev, version, deleted, STORE_ORIGIN_REMOTE, body);
	}
	store_doc_clear(&cur);
	return r;
}

/*
 * Writer thread: park change ch, which cannot be applied (why), so the
 * changes behind it go on.  Names the remote sent that are not names
 * (they were refused) are kept short.
 */
static int
pull_park(struct writer_batch *b, json_t *ch, const char *why)
{
	const char *collection, *id, *change;
	char cbuf[160], ibuf[160];
	int64_t version;

	collection = json_string_value(json_object_get(ch, "collection"));
	id = json_string_value(json_object_get(ch, "id"));
	change = json_string_value(json_object_get(ch, "change"));
	version = json_integer_value(json_object_get(ch, "version"));
	snprintf(cbuf, sizeof cbuf, "%.128s", collection != NULL ?
	    collection : "");
	snprintf(ibuf, sizeof ibuf, "%.128s", id != NULL ? id : "");
	log_warn("sync: pull: parked change %s to %s/%s (version %" PRId64
	    "): %s", change != NULL ? change : "(no id)", cbuf, ibuf, version,
	    why);
	return store_parked_add(b->st, cbuf, ibuf, version, change, why,
	    util_now_ms());
}

/* Writer thread: apply one page of remote changes and the new cursor.
 * Each change applies in a savepoint of its own: one that cannot be
 * applied is rolled back alone and parked (DESIGN "Additions"). */
static void
pull_apply_run(struct writer_batch *b, struct writer_op *op)
{
	struct pull_step *p = op->arg;
	struct store_change_mark sp;
	char buf[32], why[256];
	json_t *ch;
	size_t i;
	int64_t stored = 0;
	char *v = NULL;
	int r = 0;

	/* Pages are fetched ahead of being applied: each applies only on top
	 * of the page before it, or not at all. */
	if (store_meta_get(b->st, "pull_cursor", &v) == 0) {
		stored = strtoll(v, NULL, 10);
		free(v);
	}
	if (stored != p->since) {
		p->stale = true;
		goto out;
	}
	json_array_foreach(p->changes, i, ch) {
		if (p->why != NULL && p->why[i] != NULL) {
			if ((r = pull_park(b, ch, p->why[i])) < 0)
				break;
			continue;
		}
		if ((r = store_change_begin(b->st, &sp)) < 0)
			break;
		if ((r = pull_apply_one(b, p, ch, p->bodies[i])) == 0) {
			if ((r = store_change_keep(b->st)) < 0)
				break;
			continue;
		}
		if (pull_error_is_fatal(r))
			break;
		/* This change alone cannot be applied: undo it, park it. */
		snprintf(why, sizeof why, "cannot be applied: %s%s%s",
		    r == -EBADMSG ? "a body cannot be read" : strerror(-r),
		    r == -EBADMSG ? "" : ": ", r == -EBADMSG ? "" :
		    store_errmsg(b->st));
		if ((r = store_change_undo(b->st, &sp)) < 0 ||
		    (r = pull_park(b, ch, why)) < 0)
			break;
	}
	if (r == 0) {
		snprintf(buf, sizeof buf, "%" PRId64, p->last_seq);
		r = store_meta_set(b->st, "pull_cursor", buf);
	}
	if (r < 0)
		writer_op_fail(op, r, store_errmsg(b->st));
out:
	json_decref(p->changes);
	p->changes = NULL;
	pull_bodies_free(p);
}

/*
 * Why one change of a page cannot be applied (a malloc'd sentence), or
 * NULL if it can.  *ret_nomem is set when the sentence could not be made.
 */
static char *
pull_change_check(json_t *ch, size_t body_len, bool *ret_nomem)
{
	const char *reason = NULL, *what = NULL;
	json_t *body;
	char *why;

	if (!json_is_object(ch))
		what = "change", reason = "is not an object";
	else if (!json_is_string(json_object_get(ch, "collection")))
		what = "collection", reason = "is missing";
	else if (names_check_collection(json_string_value(json_object_get(ch,
	    "collection")), &reason) < 0)
		what = "collection";
	else if (!json_is_string(json_object_get(ch, "id")))
		what = "id", reason = "is missing";
	else if (names_check_id(json_string_value(json_object_get(ch, "id")),
	    &reason) < 0)
		what = "id";
	else if (!json_is_integer(json_object_get(ch, "version")) ||
	    json_integer_value(json_object_get(ch, "version")) < 1)
		what = "version", reason = "is missing or not positive";
	else if (!json_is_true(json_object_get(ch, "deleted"))) {
		body = json_object_get(ch, "body");
		if (!json_is_object(body))
			what = "body", reason = "is missing or not an object";
		else if (bodylimit_check_text(body, body_len, &reason) < 0)
			what = "body";
	}
	if (what == NULL)
		return NULL;
	if (asprintf(&why, "%s %s", what, reason) < 0) {
		*ret_nomem = true;
		return NULL;
	}
	return why;
}

/*
 * How long the next pull may wait: a Sync(wait) caller that still needs a
 * caught-up pull gets one at once; otherwise long-poll.
 */
static int
pull_next_wait(const struct sync *sy)
{
	size_t i;

	for (i = 0; i < sy->nwaiters; i++)
		if (sy->waiters[i].pull_round > sy->caught_round)
			return 0;
	return PULL_WAIT;
}

/* All fetched pages are applied: a caught-up fetch now counts. */
static void
pull_settle(struct sync *sy)
{
	if (sy->pull_applying == 0 && sy->caught_after > sy->caught_round)
		sy->caught_round = sy->caught_after;
}

/* Throw away what was fetched ahead: fetch again from the stored cursor. */
static void
pull_rewind(struct sync *sy)
{
	if (sy->pull_req != NULL) {
		http_cancel(sy->pull_req);
		sy->pull_req = NULL;
	}
	sy->fetch_cursor = sy->cursor;
	sy->pull_gen++;		/* pages in the workers are dropped */
	sy->pull_unknown = NULL;
}

static void
pull_applied_done(struct writer_op *op, int err)
{
	struct pull_step *p = op->arg;
	struct sync *sy = p->sy;
	bool full = p->n >= PULL_LIMIT;

	sy->pull_applying--;
	if (sy->stopping) {
		pull_step_free(p);
		return;
	}
	if (err != 0 || p->stale) {
		pull_step_free(p);
		pull_rewind(sy);
		if (err != 0) {
			sync_error(sy, "pull: cannot apply changes");
			sync_transient(sy);
		} else if (sy->pull_applying == 0)
			pull_start(sy, 0);
		return;
	}
	sy->cursor = p->last_seq;
	if (!full && p->round > sy->caught_after)
		sy->caught_after = p->round;
	if (p->merged || p->settled) {
		/* Rebased changes to send, or intents that waited for a
		 * record the pull just settled. */
		sy->push_need = true;
		push_start(sy);
	}
	pull_step_free(p);
	pull_settle(sy);
	waiters_check(sy);
	sync_notify(sy);
	if (sy->pull_req == NULL)
		pull_start(sy, full ? 0 : pull_next_wait(sy));
}

/* Parser thread: parse and check one page; sets p->bad if it is refused. */
static void
pull_parse_run(void *arg, size_t item)
{
	struct pull_step *p = arg;
	int r;

	r = wire_changes_page_parse(p->text, p->len, &p->changes,
	    &p->last_seq, p->bad, sizeof p->bad);
	free(p->text);
	p->text = NULL;
	if (r == 0)
		p->n = json_array_size(p->changes);
}

/*
 * Encoder thread: the bodies as stored (compact, keys in their order),
 * written here rather than on the writer thread, which is the pull's
 * bottleneck, and not on the parser, so that the next page is parsed
 * meanwhile; then their trees go, so the writer gets small objects to
 * read and free.  A merge parses its body again (rare: a local change).
 * Each change is checked here too (names, version, the body limit): one
 * that cannot be applied gets its reason in p->why and no body.
 */
static void
pull_encode_run(void *arg, size_t item)
{
	struct pull_step *p = arg;
	json_t *ch, *body;
	char *text, *why;
	bool nomem = false;
	size_t i;

	if ((p->bodies = calloc(p->n ? p->n : 1, sizeof *p->bodies)) == NULL)
		goto nomem;
	json_array_foreach(p->changes, i, ch) {
		text = NULL;
		body = json_object_get(ch, "body");
		if (!json_is_true(json_object_get(ch, "deleted")) &&
		    json_is_object(body) &&
		    (text = json_dumps(body, JSON_COMPACT)) == NULL)
			goto nomem;
		why = pull_change_check(ch, text != NULL ? strlen(text) : 0,
		    &nomem);
		if (why != NULL && p->why == NULL &&
		    (p->why = calloc(p->n, sizeof *p->why)) == NULL) {
			free(why);
			nomem = true;
		}
		if (nomem) {
			free(text);
			goto nomem;
		}
		if (why != NULL) {
			p->why[i] = why;
			free(text);
			text = NULL;
		}
		p->bodies[i] = text;
		json_object_del(ch, "body");
	}
	return;
nomem:
	snprintf(p->bad, sizeof p->bad, "out of memory");
}

static void
pull_step_drop(void *arg)
{
	pull_step_free(arg);
}

/* A page leaves the pipeline unapplied (stopping, or rewound meanwhile:
 * its cursor may not be the one to fetch from any more). */
static void
pull_dropped(struct sync *sy, struct pull_step *p)
{
	sy->pull_applying--;
	pull_step_free(p);
	if (!sy->stopping && sy->pull_applying == 0)
		pull_start(sy, 0);
}

/* A page is encoded: queue it to the writer, after the pages before it. */
static void
pull_encoded(void *arg)
{
	struct pull_step *p = arg;
	struct sync *sy = p->sy;
	struct writer_op *op;

	if (p->queued) {
		sy->pull_at_encoder--;
		p->queued = false;
	}
	if (sy->stopping || p->gen != sy->pull_gen) {
		pull_dropped(sy, p);
		return;
	}
	if (p->bad[0] != '\0' || (op = writer_add(sy->writer, NULL,
	    pull_apply_run, p, NULL)) == NULL) {
		sy->pull_applying--;
		pull_step_free(p);
		sync_error(sy, "pull: out of memory");
		pull_rewind(sy);
		sync_transient(sy);
		return;
	}
	op->done = pull_applied_done;
}

/* A page is parsed: have its bodies encoded and fetch the next one. */
static void
pull_parsed(void *arg)
{
	struct pull_step *p = arg;
	struct sync *sy = p->sy;
	bool full;

	if (p->queued) {
		sy->pull_at_parser--;
		p->queued = false;
	}
	if (sy->pull_unknown == p)
		sy->pull_unknown = NULL;
	if (sy->stopping || p->gen != sy->pull_gen) {
		pull_dropped(sy, p);
		return;
	}
	if (p->bad[0] != '\0') {
		sy->pull_applying--;
		sync_error(sy, "pull: bad answer from %s: %s", sy->remote,
		    p->bad);
		pull_step_free(p);
		pull_rewind(sy);
		sync_transient(sy);
		return;
	}
	if (p->hint != 0 && p->hint != p->last_seq) {
		/* The next page was fetched from a wrong cursor: drop it
		 * and this one, and fetch again from the stored cursor. */
		pull_rewind(sy);
		pull_dropped(sy, p);
		return;
	}
	sy->pull_bulk = p->n >= PULL_LIMIT;
	sync_ok(sy);
	if (p->n == 0 && p->last_seq == p->since) {
		/* Nothing new: no transaction needed. */
		sy->pull_applying--;
		if (p->round > sy->caught_after)
			sy->caught_after = p->round;
		pull_step_free(p);
		pull_settle(sy);
		waiters_check(sy);
		sync_notify(sy);
		pull_start(sy, pull_next_wait(sy));
		return;
	}
	full = p->n >= PULL_LIMIT;
	if (p->len <= PULL_INLINE_MAX && sy->pull_at_encoder == 0) {
		/* A few changes (live updates): cheaper here than a hop.
		 * Not past pages still queued: the writer gets pages in
		 * order. */
		if (p->hint == 0)
			sy->fetch_cursor = p->last_seq;
		pull_encode_run(p, 0);
		pull_encoded(p);
		pull_start(sy, full ? 0 : pull_next_wait(sy));
		return;
	}
	p->queued = true;
	if (jobq_submit(sy->encoder, NULL, pull_encode_run, pull_encoded,
	    pull_step_drop, p) < 0) {
		sy->pull_applying--;
		pull_step_free(p);
		sy->fetch_cursor = sy->cursor;
		sync_transient(sy);
		return;
	}
	sy->pull_at_encoder++;
	if (p->hint == 0)
		sy->fetch_cursor = p->last_seq;
	/* Fetch the next page while this one is encoded and applied.  After
	 * the last page, long-poll, unless a Sync(wait) caller needs a pull
	 * started after its call (this one may have started before). */
	pull_start(sy, full ? 0 : pull_next_wait(sy));
}

static void
pull_http_done(struct http_req *req, const struct http_result *res,
    void *arg)
{
	struct sync *sy = arg;
	struct pull_step *p;
	int64_t hint = 0;
	int k;

	sy->pull_req = NULL;
	k = sync_classify(sy, res, "pull");
	if (k != 1) {
		sy->fetch_cursor = sy->cursor;
		if (k == 0)
			sync_transient(sy);
		else
			sync_pause(sy);
		return;
	}
	/* The body is valid only during this call: the parser gets a copy. */
	if ((p = calloc(1, sizeof *p)) == NULL ||
	    (p->text = malloc(res->len + 1)) == NULL) {
		free(p);
		sy->fetch_cursor = sy->cursor;
		sync_transient(sy);
		return;
	}
	memcpy(p->text, res->body, res->len);
	p->text[res->len] = '\0';
	p->len = res->len;
	p->sy = sy;
	p->since = sy->fetch_cursor;
	p->round = sy->req_round;
	p->gen = sy->pull_gen;
	/*
	 * Catching up (the page before was full), the next page need not
	 * wait for this one's parse if its last_seq can be read off the end
	 * of the text: it is then fetched at once (wait=0), and the parser
	 * checks the hint; a wrong one only costs a refetch, since a page
	 * applies only on top of the cursor it followed.
	 */
	if (!sy->pull_bulk || wire_last_seq_hint(res->body, res->len, &hint) < 0 ||
	    hint <= p->since)
		hint = 0;
	p->hint = hint;
	if (res->len <= PULL_INLINE_MAX && sy->pull_at_parser == 0 &&
	    sy->pull_at_encoder == 0) {
		/*
		 * A small page (a long-poll's answer, live updates) is parsed
		 * here, unless pages before it are still in the workers: it
		 * takes microseconds, and a hop through the workers would
		 * wake the loop once more per long-poll.
		 */
		p->hint = 0;
		sy->pull_applying++;
		sy->pull_unknown = p;
		pull_parse_run(p, 0);
		pull_parsed(p);
		return;
	}
	p->queued = true;
	if (jobq_submit(sy->parser, NULL, pull_parse_run, pull_parsed,
	    pull_step_drop, p) < 0) {
		pull_step_free(p);
		sy->fetch_cursor = sy->cursor;
		sync_transient(sy);
		return;
	}
	/* From here the parser owns p; the loop may only compare it. */
	sy->pull_at_parser++;
	sy->pull_applying++;
	if (hint != 0) {
		sy->fetch_cursor = hint;
		pull_start(sy, 0);
	} else
		sy->pull_unknown = p;
}

static void
pull_start(struct sync *sy, int wait)
{
	char path[128];
	int r;

	/* The next page's cursor is known once the page before is parsed. */
	if (!sy->started || sy->paused || sy->stopping ||
	    sy->pull_req != NULL || sy->pull_unknown != NULL ||
	    sy->pull_applying >= PULL_AHEAD)
		return;
	if (evtimer_pending(sy->retry_ev, NULL))
		return;
	snprintf(path, sizeof path, "/v1/changes?since=%" PRId64
	    "&limit=%d&wait=%d", sy->fetch_cursor, PULL_LIMIT, wait);
	/* A long-poll's connect timer spans it whole: no idle wakeup. */
	r = sync_http(sy, "GET", path, NULL, 0, (wait + 15) * 1000L,
	    wait > 0 ? (wait + 15) * 1000L : CONNECT_TIMEOUT_MS,
	    pull_http_done, sy, &sy->pull_req);
	if (r < 0) {
		sync_error(sy, "pull: cannot start a request: %s",
		    strerror(-r));
		sync_transient(sy);
		return;
	}
	sy->pull_waiting = wait > 0;
	sy->req_round = ++sy->pull_round;
}

/* Replace a waiting long-poll by an immediate pull. */
static void
pull_now(struct sync *sy)
{
	if (sy->pull_req != NULL && sy->pull_waiting) {
		http_cancel(sy->pull_req);
		sy->pull_req = NULL;
	}
	pull_start(sy, 0);
}

/* --- Sync(wait) --- */

static void
waiters_check(struct sync *sy)
{
	size_t i, j = 0;

	if (!push_idle(sy))
		return;
	for (i = 0; i < sy->nwaiters; i++) {
		if (sy->caught_round >= sy->waiters[i].pull_round &&
		    sy->pull_applying == 0)
			sy->reply(sy->arg, sy->waiters[i].call);
		else
			sy->waiters[j++] = sy->waiters[i];
	}
	sy->nwaiters = j;
}

void
sync_request(struct sync *sy, struct vl_call *call, bool wait)
{
	uint64_t before = sy->pull_round;
	struct waiter *v;

	sy->paused = false;
	if (evtimer_pending(sy->retry_ev, NULL)) {
		/* The user asked: try now rather than at the backoff's end. */
		evtimer_del(sy->retry_ev);
	}
	sy->push_need = true;
	push_start(sy);
	pull_now(sy);
	if (wait) {
		if (sy->nwaiters == sy->capwaiters) {
			size_t cap = sy->capwaiters ? sy->capwaiters * 2 : 8;

			if ((v = realloc(sy->waiters, cap * sizeof *v)) ==
			    NULL) {
				vl_error(call, "io.ferry.WriteFailed", NULL);
				return;
			}
			sy->waiters = v;
			sy->capwaiters = cap;
		}
		sy->waiters[sy->nwaiters].call = call;
		/* A pull started after this call must catch up. */
		sy->waiters[sy->nwaiters].pull_round = sy->pull_round > before ?
		    sy->pull_round : before + 1;
		sy->nwaiters++;
		sync_notify(sy);
		return;
	}
	sy->reply(sy->arg, call);
}

/* --- life cycle --- */

struct cursor_load {
	struct sync	*sy;
	int64_t		 cursor;
};

static void
cursor_load_run(struct writer_batch *b, struct writer_op *op)
{
	struct cursor_load *c = op->arg;
	char *v = NULL;

	if (store_meta_get(b->st, "pull_cursor", &v) == 0) {
		c->cursor = strtoll(v, NULL, 10);
		free(v);
	}
}

static void
cursor_load_done(struct writer_op *op, int err)
{
	struct cursor_load *c = op->arg;
	struct sync *sy = c->sy;

	sy->cursor = sy->fetch_cursor = c->cursor;
	free(c);
	if (sy->stopping)
		return;
	if (err != 0) {
		sync_error(sy, "cannot read the pull cursor");
		sync_pause(sy);
		return;
	}
	sy->started = true;
	push_start(sy);
	pull_start(sy, 0);
}

int
sync_fetch(struct sync *sy, const char *path_query, long timeout_ms,
    http_done_fn cb, void *arg, struct http_req **ret)
{
	return sync_http(sy, "GET", path_query, NULL, 0, timeout_ms,
	    timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS,
	    cb, arg, ret);
}

const char *
sync_state(const struct sync *sy)
{
	if (sy->paused)
		return "paused";
	if (sy->offline)
		return "offline";
	if (push_busy(sy) || (sy->pull_req != NULL && !sy->pull_waiting) ||
	    !sy->started)
		return "syncing";
	return "idle";
}

const char *
sync_last_error(const struct sync *sy)
{
	return sy->last_error[0] != '\0' ? sy->last_error : NULL;
}

int64_t
sync_last_ok_ms(const struct sync *sy)
{
	return sy->last_ok_ms;
}

void
sync_kick(struct sync *sy)
{
	sy->push_need = true;
	push_start(sy);
}

void
sync_reload(struct sync *sy, int backoff_max)
{
	backoff_init(&sy->backoff, 500, (int64_t)backoff_max * 1000);
	if (sy->paused) {
		sy->paused = false;
		log_notice("sync: resumed after reload");
		sy->push_need = true;
		push_start(sy);
		pull_now(sy);
		sync_notify(sy);
	}
}

int
sync_new(struct event_base *base, struct store *st, struct writer *writer,
    const struct keys *keys, const struct sync_config *cfg,
    sync_changed_fn changed, sync_reply_fn reply, void *arg,
    struct sync **ret)
{
	struct cursor_load *c;
	struct writer_op *op;
	struct sync *sy;
	size_t n;
	int r;

	if ((sy = calloc(1, sizeof *sy)) == NULL)
		return -ENOMEM;
	sy->base = base;
	sy->st = st;
	sy->writer = writer;
	sy->keys = keys;
	sy->changed = changed;
	sy->reply = reply;
	sy->arg = arg;
	sy->push_limit = PUSH_BATCH;
	sy->push_need = true;
	backoff_init(&sy->backoff, 500, (int64_t)cfg->backoff_max * 1000);
	if ((sy->remote = strdup(cfg->remote)) == NULL) {
		free(sy);
		return -ENOMEM;
	}
	n = strlen(sy->remote);
	while (n > 0 && sy->remote[n - 1] == '/')
		sy->remote[--n] = '\0';
	sy->retry_ev = evtimer_new(base, sync_retry_cb, sy);
	if (sy->retry_ev == NULL || (r = http_new(base, &sy->http)) < 0 ||
	    (r = jobq_new(base, 1, &sy->parser)) < 0 ||
	    (r = jobq_new(base, 1, &sy->encoder)) < 0 ||
	    (c = calloc(1, sizeof *c)) == NULL) {
		sync_free(sy);
		return -ENOMEM;
	}
	c->sy = sy;
	if ((op = writer_add(writer, NULL, cursor_load_run, c, NULL)) == NULL) {
		free(c);
		sync_free(sy);
		return -ENOMEM;
	}
	op->done = cursor_load_done;
	*ret = sy;
	return 0;
}

void
sync_stop(struct sync *sy)
{
	size_t i;

	if (sy == NULL)
		return;
	sy->stopping = true;
	evtimer_del(sy->retry_ev);
	for (i = 0; i < sy->nwaiters; i++)
		vl_error(sy->waiters[i].call, "io.ferry.Offline", NULL);
	sy->nwaiters = 0;
}

void
sync_free(struct sync *sy)
{
	if (sy == NULL)
		return;
	sync_stop(sy);
	free(sy->waiters);
	/* Cancel the requests under way; their callbacks will not run, so
	 * the push step a request owned is freed here. */
	http_free(sy->http);
	/* Pages still being parsed or encoded are dropped with their jobs. */
	jobq_free(sy->parser);
	jobq_free(sy->encoder);
	push_step_free(sy->push_inflight);
	push_step_free(sy->push_ready);
	if (sy->retry_ev != NULL)
		event_free(sy->retry_ev);
	free(sy->remote);
	free(sy);
}
