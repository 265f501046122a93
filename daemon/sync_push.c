/*
 * sync_push: the push pipeline of the sync engine (sync.c; DESIGN "Outbox
 * and push").
 *
 * While one request is in flight, the next batch is prepared (records
 * made, signed and stored; the request body built) on the writer thread,
 * so the server's work and ours overlap.  Requests still go one at a
 * time, in device-seq order: the server refuses a seq below one it has
 * seen.  A prepare skips the records already handed to a request
 * (change_seq <= push_handed); the SQL keeps a document with a record out
 * of any new batch (at most one change per document in flight).  Any
 * failure drops what was prepared ahead and starts again from the oldest
 * record not answered (push_reset): those records are stored, so they are
 * resent byte for byte, never made twice.  `push_need` records that
 * something may be sendable (a kick, a full batch, an answer recorded).
 *
 * Writer-thread state: the device seq lives in meta "device_seq" and is
 * read and advanced inside the prepare op, in the same transaction that
 * stores the records: a seq is never reused, even across crashes.  The
 * three-way merge of a document's local change with the remote's
 * (sync_merge) is here too; the puller's rebase uses it.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "merge.h"
#include "record.h"
#include "sync_int.h"
#include "util.h"
#include "wire.h"

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
	wire_push_req_free(&p->req);
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
	json_t *body = NULL;
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
	r = wire_push_req_add(&c->p->req, text, len, sig);
	free(text);
	free(sig);
	if (it->collection == NULL || it->id == NULL || r < 0) {
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
	if (wire_push_req_end(&p->req) < 0) {
		writer_op_fail(op, -ENOMEM, "out of memory");
		return;
	}
	p->text = p->req.text;
	p->len = p->req.len;
	memset(&p->req, 0, sizeof p->req);
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

bool
sync_push_busy(const struct sync *sy)
{
	return sy->push_inflight != NULL || sy->push_stage == PUSH_PREPARING ||
	    sy->push_stage == PUSH_READY || sy->push_applying > 0;
}

/* Nothing sendable is left: every record answered, nothing to make. */
bool
sync_push_idle(const struct sync *sy)
{
	return !sync_push_busy(sy) && !sy->push_need &&
	    sy->push_stage == PUSH_EMPTY;
}

/* The one place the prepare stage moves.  The engine's state follows it
 * at the end of each callback (sync_update). */
static void
push_stage_set(struct sync *sy, enum push_stage stage)
{
	sy->push_stage = stage;
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
	if (sy->push_stage == PUSH_READY)
		push_stage_set(sy, PUSH_UNKNOWN);
}

static void	push_applied_done(struct writer_op *op, int err, void *arg);

static void
push_applied(struct push_step *p, int err)
{
	struct sync *sy = p->sy;

	push_step_free(p);
	sy->push_applying--;
	if (sy->state == SYNC_STOPPING)
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
	sync_push_start(sy);
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
push_answered(struct push_step *p, const struct http_result *res)
{
	struct sync *sy = p->sy;
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
		sync_push_start(sy);
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
	if (sync_writer_add(sy, push_apply_run, push_applied_done, p) <
	    0) {
		push_abort(sy, p);
		sync_error(sy, "push: out of memory");
		sync_transient(sy);
		return;
	}
	sy->push_applying++;
	/* The next batch goes out while this answer is recorded. */
	sync_push_start(sy);
}

static void
push_prepared(struct push_step *p, int err)
{
	struct sync *sy = p->sy;

	push_stage_set(sy, PUSH_UNKNOWN);
	if (sy->state == SYNC_STOPPING) {
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
		sync_push_start(sy);
		return;
	}
	if (p->n == 0) {
		push_step_free(p);
		push_stage_set(sy, PUSH_EMPTY);
		if (sy->push_need)
			sync_push_start(sy);
		else
			sync_waiters_check(sy);
		sync_notify(sy);
		return;
	}
	/* A full batch: more may be waiting behind it. */
	if (p->n >= (size_t)p->limit)
		sy->push_need = true;
	if (p->last_change_seq > sy->push_handed)
		sy->push_handed = p->last_change_seq;
	sy->push_ready = p;
	push_stage_set(sy, PUSH_READY);
	sync_push_start(sy);
	sync_notify(sy);
}

/*
 * The loop-thread callbacks of the pipeline: each moves it on, then the
 * engine's state follows the steps (idle or syncing).
 */
static void
push_applied_done(struct writer_op *op, int err, void *arg)
{
	struct sync *sy = ((struct push_step *)arg)->sy;

	push_applied(arg, err);
	sync_update(sy, "push answer recorded");
}

static void
push_http_done(const struct http_result *res, void *arg)
{
	struct sync *sy = ((struct push_step *)arg)->sy;

	push_answered(arg, res);
	sync_update(sy, "push answered");
}

static void
push_prepared_done(struct writer_op *op, int err, void *arg)
{
	struct sync *sy = ((struct push_step *)arg)->sy;

	push_prepared(arg, err);
	sync_update(sy, "push prepared");
}

/* Send the prepared batch if no request is in flight. */
static void
push_send(struct sync *sy)
{
	struct push_step *p = sy->push_ready;
	int r;

	if (p == NULL || sy->push_inflight != NULL ||
	    sync_rotate_holds_requests(sy))
		return;
	sy->push_ready = NULL;
	push_stage_set(sy, PUSH_UNKNOWN);	/* sent, or reset below */
	r = sync_send(sy, "POST", "/v1/push", p->text, p->len,
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
	struct push_step *p;

	if (sy->push_stage == PUSH_PREPARING || sy->push_stage == PUSH_READY ||
	    !sy->push_need || sync_rotate_holds(sy))
		return;
	if ((p = calloc(1, sizeof *p)) == NULL)
		return;
	p->sy = sy;
	p->limit = sy->push_limit;
	p->after = sy->push_handed;
	p->gen = sy->push_gen;
	if (sync_writer_add(sy, push_prepare_run, push_prepared_done, p) <
	    0) {
		push_step_free(p);
		return;
	}
	sy->push_need = false;
	push_stage_set(sy, PUSH_PREPARING);
}

/* Move the pipeline on: send what is ready, prepare what comes next. */
void
sync_push_start(struct sync *sy)
{
	if (!sync_running(sy))
		return;
	if (evtimer_pending(sy->retry_ev, NULL))
		return;		/* the retry timer will start us */
	push_send(sy);
	push_prepare(sy);
}

/* The push steps the engine holds (freeing it: their requests are
 * cancelled already). */
void
sync_push_free(struct sync *sy)
{
	push_step_free(sy->push_inflight);
	push_step_free(sy->push_ready);
	sy->push_inflight = sy->push_ready = NULL;
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
int
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