/*
 * sync_pull: the pull pipeline of the sync engine (sync.c; DESIGN "Remote
 * protocol v1").
 *
 * The pull cursor moves only when an apply op committed; the puller
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
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bodylimit.h"
#include "collset.h"
#include "keys.h"
#include "log.h"
#include "sync_int.h"
#include "util.h"
#include "wire.h"

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
	free(p->sigs);
	p->sigs = NULL;
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

/* Is change id "<device>:<seq>" one of ours (signed by this device's key
 * or by the one it rotated from)?  If so, *ret_seq is its seq. */
static bool
change_is_ours(const struct sync *sy, const char *change, int64_t *ret_seq)
{
	const char *pub = sy->keys->pub_b64;
	char *end;
	long long seq;
	size_t n;

	if (change == NULL)
		return false;
	n = strcspn(change, ":");
	if (change[n] != ':' || ((n != strlen(pub) ||
	    strncmp(change, pub, n) != 0) &&
	    !sync_rotate_is_prev(sy, change, n)))
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
 * Encoder thread: what the replica keeps of a pulled change to check its
 * record when someone looks (History): its change id (the key decoded,
 * and the seq), the record's sig (decoded; as sent if it does not decode,
 * so that it shows as failing) and ts, and the record's text when the
 * remote sent it.  Not checked here: a signature costs more than applying
 * the change.  A ts of the wrong type keeps nothing; a change id that
 * names no key keeps none (History says "unknown key").  buf->pl points
 * into ch and buf.
 */
static void
pull_signed(json_t *ch, struct pull_sig *buf)
{
	struct store_pulled *ret = &buf->pl;
	json_t *ts = json_object_get(ch, "ts"), *rec;
	const char *change, *sig, *colon;
	char key[KEYS_PUB_B64_LEN + 1], *end;
	long long seq;

	memset(ret, 0, sizeof *ret);
	sig = json_string_value(json_object_get(ch, "sig"));
	if (sig == NULL || !json_is_integer(ts) || json_integer_value(ts) < 0)
		return;
	ret->ts = json_integer_value(ts);
	if (keys_b64_decode(sig, buf->sig, sizeof buf->sig) == 0) {
		ret->sig = buf->sig;
		ret->sig_len = sizeof buf->sig;
	} else {
		ret->sig = sig;
		ret->sig_len = strlen(sig);
	}
	change = json_string_value(json_object_get(ch, "change"));
	colon = change != NULL ? strrchr(change, ':') : NULL;
	if (colon != NULL && colon - change == KEYS_PUB_B64_LEN) {
		memcpy(key, change, KEYS_PUB_B64_LEN);
		key[KEYS_PUB_B64_LEN] = '\0';
		errno = 0;
		seq = strtoll(colon + 1, &end, 10);
		if (errno == 0 && end != colon + 1 && *end == '\0' && seq > 0 &&
		    keys_b64_decode(key, buf->device, sizeof buf->device) == 0) {
			ret->device = buf->device;
			ret->device_seq = seq;
		}
	}
	rec = json_object_get(ch, "record");
	if (json_is_string(rec)) {
		ret->record = json_string_value(rec);
		ret->record_len = json_string_length(rec);
	}
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
    const char *body, const struct store_pulled *pl)
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
		    deleted, body, pl, util_now_ms(), &seq, &rev);
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
	struct store_mark sp;
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
		if ((r = store_savepoint(b->st, &sp)) < 0)
			break;
		if ((r = pull_apply_one(b, p, ch, p->bodies[i],
		    &p->sigs[i].pl)) == 0) {
			if ((r = store_release(b->st)) < 0)
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
		if ((r = store_rollback_to(b->st, &sp)) < 0 ||
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
pull_change_check(json_t *ch, const char *body_text, size_t body_len,
    bool *ret_nomem)
{
	const char *reason, *what = NULL;
	char *why;
	int r;

	/* The shape (lib/wire), then the body limit every path enforces.  A
	 * body the scanner read is held apart, no deeper than the limit. */
	reason = body_text != NULL && json_object_get(ch, "body") == NULL ?
	    wire_change_check_apart(ch, true, &what) :
	    wire_change_check(ch, &what);
	if (reason == NULL && !json_is_true(json_object_get(ch, "deleted"))) {
		r = json_object_get(ch, "body") == NULL ?
		    bodylimit_check_size(body_len, 0, &reason) :
		    bodylimit_check_text(json_object_get(ch, "body"),
		    body_len, &reason);
		if (r < 0)
			what = "body";
	}
	if (reason == NULL)
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

/*
 * The one place the request slot moves: req (NULL: none) under way as
 * fetch.  The engine's state follows it at the end of each callback.
 */
static void
pull_fetch_set(struct sync *sy, struct sync_req *req, enum pull_fetch fetch)
{
	sy->pull_req = req;
	sy->pull_fetch = req != NULL ? fetch : PULL_NONE;
}

/*
 * May the log hold more for us after this page?  A full page, or one that
 * skipped positions (seqs have no gaps, so fewer changes than positions
 * means the server read changes it did not send: a collections= filter or
 * the key's grants) and may have stopped at its bound of rows read
 * (docs/protocol.md "Filtered pages"): ask again at once, so a Sync(wait)
 * is answered only once a page comes back with nothing read.
 */
static bool
pull_more(const struct pull_step *p)
{
	return p->n >= PULL_LIMIT || p->last_seq - p->since > (int64_t)p->n;
}

/* Cancel the request under way, if any. */
static void
pull_cancel(struct sync *sy)
{
	if (sy->pull_req != NULL) {
		sync_cancel(sy, sy->pull_req);
		pull_fetch_set(sy, NULL, PULL_NONE);
	}
}

bool
sync_pull_busy(const struct sync *sy)
{
	return sy->pull_fetch == PULL_FETCHING;
}

/* Throw away what was fetched ahead: fetch again from the stored cursor. */
static void
pull_rewind(struct sync *sy)
{
	pull_cancel(sy);
	sy->fetch_cursor = sy->cursor;
	sy->pull_gen++;		/* pages in the workers are dropped */
	sy->pull_unknown = NULL;
}

static void
pull_applied(struct pull_step *p, int err)
{
	struct sync *sy = p->sy;
	bool full = pull_more(p);

	sy->pull_applying--;
	if (sy->state == SYNC_STOPPING) {
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
			sync_pull_start(sy, 0);
		return;
	}
	sy->cursor = p->last_seq;
	if (!full && p->round > sy->caught_after)
		sy->caught_after = p->round;
	if (p->merged || p->settled) {
		/* Rebased changes to send, or intents that waited for a
		 * record the pull just settled. */
		sy->push_need = true;
		sync_push_start(sy);
	}
	pull_step_free(p);
	pull_settle(sy);
	sync_waiters_check(sy);
	sync_notify(sy);
	if (sy->pull_req == NULL)
		sync_pull_start(sy, full ? 0 : pull_next_wait(sy));
}

/* Parser thread: parse and check one page; sets p->bad if it is refused. */
static void
pull_parse_run(void *arg, size_t item)
{
	struct pull_step *p = arg;
	int r;

	/* A page as ferry-server writes it needs no tree of its bodies. */
	r = wire_changes_page_scan(p->text, p->len, &p->changes, &p->bodies,
	    &p->last_seq);
	if (r == -ENOTSUP)
		r = wire_changes_page_parse(p->text, p->len, &p->changes,
		    &p->last_seq, p->bad, sizeof p->bad);
	else if (r < 0)
		snprintf(p->bad, sizeof p->bad, "out of memory");
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
 * that cannot be applied gets its reason in p->why and no body.  Its key
 * and signature are decoded here too, for the replica to keep (p->sigs).
 */
static void
pull_encode_run(void *arg, size_t item)
{
	struct pull_step *p = arg;
	json_t *ch, *body;
	char *text, *why;
	bool nomem = false, scanned;
	size_t i;

	/* A page the parser scanned (wire_changes_page_scan) has its
	 * bodies as text already. */
	scanned = p->bodies != NULL;
	if ((!scanned && (p->bodies = calloc(p->n ? p->n : 1,
	    sizeof *p->bodies)) == NULL) ||
	    (p->sigs = calloc(p->n ? p->n : 1, sizeof *p->sigs)) == NULL)
		goto nomem;
	json_array_foreach(p->changes, i, ch) {
		pull_signed(ch, &p->sigs[i]);
		text = scanned ? p->bodies[i] : NULL;
		body = json_object_get(ch, "body");
		if (!scanned && !json_is_true(json_object_get(ch, "deleted")) &&
		    json_is_object(body) &&
		    (text = json_dumps(body, JSON_COMPACT)) == NULL)
			goto nomem;
		why = pull_change_check(ch, text, text != NULL ? strlen(text) :
		    0, &nomem);
		if (why != NULL && p->why == NULL &&
		    (p->why = calloc(p->n, sizeof *p->why)) == NULL) {
			free(why);
			nomem = true;
		}
		if (nomem) {
			free(text);
			p->bodies[i] = NULL;
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
	if (sy->state != SYNC_STOPPING && sy->pull_applying == 0)
		sync_pull_start(sy, 0);
}

static void
pull_applied_done(struct writer_op *op, int err, void *arg)
{
	struct sync *sy = ((struct pull_step *)arg)->sy;

	pull_applied(arg, err);
	sync_update(sy, "pull applied");
}

/* A page is encoded: queue it to the writer, after the pages before it. */
static void
pull_encoded(void *arg)
{
	struct pull_step *p = arg;
	struct sync *sy = p->sy;

	if (p->queued) {
		sy->pull_at_encoder--;
		p->queued = false;
	}
	if (sy->state == SYNC_STOPPING || p->gen != sy->pull_gen) {
		pull_dropped(sy, p);
		return;
	}
	if (p->bad[0] != '\0' || sync_writer_add(sy, pull_apply_run,
	    pull_applied_done, p) < 0) {
		sy->pull_applying--;
		pull_step_free(p);
		sync_error(sy, "pull: out of memory");
		pull_rewind(sy);
		sync_transient(sy);
		return;
	}
}

/* The encoder's callback on the loop thread. */
static void
pull_encoded_done(void *arg)
{
	struct sync *sy = ((struct pull_step *)arg)->sy;

	pull_encoded(arg);
	sync_update(sy, "pull encoded");
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
	if (sy->state == SYNC_STOPPING || p->gen != sy->pull_gen) {
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
	sy->pull_pace = p->n >= PULL_LIMIT ? PULL_CATCHING_UP : PULL_LIVE;
	sync_ok(sy);
	if (p->n == 0 && p->last_seq == p->since) {
		/* Nothing new: no transaction needed. */
		sy->pull_applying--;
		if (p->round > sy->caught_after)
			sy->caught_after = p->round;
		pull_step_free(p);
		pull_settle(sy);
		sync_waiters_check(sy);
		sync_notify(sy);
		sync_pull_start(sy, pull_next_wait(sy));
		return;
	}
	full = pull_more(p);
	if (p->len <= PULL_INLINE_MAX && sy->pull_at_encoder == 0) {
		/* A few changes (live updates): cheaper here than a hop.
		 * Not past pages still queued: the writer gets pages in
		 * order. */
		if (p->hint == 0)
			sy->fetch_cursor = p->last_seq;
		pull_encode_run(p, 0);
		pull_encoded(p);
		sync_pull_start(sy, full ? 0 : pull_next_wait(sy));
		return;
	}
	p->queued = true;
	if (jobq_submit(sy->encoder, NULL, pull_encode_run, pull_encoded_done,
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
	sync_pull_start(sy, full ? 0 : pull_next_wait(sy));
}

/* The parser's callback on the loop thread. */
static void
pull_parsed_done(void *arg)
{
	struct sync *sy = ((struct pull_step *)arg)->sy;

	pull_parsed(arg);
	sync_update(sy, "pull parsed");
}

static void
pull_answered(struct sync *sy, const struct http_result *res)
{
	struct pull_step *p;
	int64_t hint = 0;
	int k;

	pull_fetch_set(sy, NULL, PULL_NONE);
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
	if (sy->pull_pace != PULL_CATCHING_UP ||
	    wire_last_seq_hint(res->body, res->len, &hint) < 0 ||
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
	if (jobq_submit(sy->parser, NULL, pull_parse_run, pull_parsed_done,
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
		sync_pull_start(sy, 0);
	} else
		sy->pull_unknown = p;
}

static void
pull_http_done(const struct http_result *res, void *arg)
{
	struct sync *sy = arg;

	pull_answered(sy, res);
	sync_update(sy, "pull answered");
}

void
sync_pull_start(struct sync *sy, int wait)
{
	struct sync_req *req;
	char path[128 + COLLSET_FILTER_MAX];
	int r;

	/* The next page's cursor is known once the page before is parsed. */
	if (!sync_running(sy) || sy->pull_req != NULL || sy->pull_unknown != NULL ||
	    sy->pull_applying >= PULL_AHEAD || sync_rotate_holds(sy) ||
	    sy->pull_hold)
		return;
	if (evtimer_pending(sy->retry_ev, NULL))
		return;
	/* Selective sync: only the collections synced (sync_select.c). */
	snprintf(path, sizeof path, "/v1/changes?since=%" PRId64
	    "&limit=%d&wait=%d%s%s", sy->fetch_cursor, PULL_LIMIT, wait,
	    sy->pull_filter != NULL ? "&collections=" : "",
	    sy->pull_filter != NULL ? sy->pull_filter : "");
	/* A long-poll's connect timer spans it whole: no idle wakeup. */
	r = sync_send(sy, "GET", path, NULL, 0, (wait + 15) * 1000L,
	    wait > 0 ? (wait + 15) * 1000L : CONNECT_TIMEOUT_MS,
	    pull_http_done, sy, &req);
	if (r < 0) {
		sync_error(sy, "pull: cannot start a request: %s",
		    strerror(-r));
		sync_transient(sy);
		return;
	}
	pull_fetch_set(sy, req, wait > 0 ? PULL_LONGPOLL : PULL_FETCHING);
	sy->req_round = ++sy->pull_round;
}

void
sync_pull_restart(struct sync *sy)
{
	pull_rewind(sy);
	if (sy->pull_applying == 0)
		sync_pull_start(sy, 0);
}

/* Replace a waiting long-poll by an immediate pull. */
void
sync_pull_now(struct sync *sy)
{
	if (sy->pull_fetch == PULL_LONGPOLL)
		pull_cancel(sy);
	sync_pull_start(sy, 0);
}
