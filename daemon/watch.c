/*
 * watch: subscriptions and replay; see watch.h.
 *
 * Invariant: a watcher's cursor only grows, and an event with seq S is sent
 * to it only when S == cursor's successor in the change log, by exactly one
 * of two paths: watch_notify (live) or watch_pump (catching up, reading the
 * committed log).  The switch between them happens only when the cursor
 * equals the committed head, so the paths never overlap.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "log.h"
#include "watch.h"

struct watcher {
	struct watch		*w;
	struct vl_call		*call;
	json_t			*collections;	/* NULL: all */
	int64_t			 cursor;
	bool			 live;
	bool			 presence;	/* wants presence replies */
	TAILQ_ENTRY(watcher)	 entry;
};

struct watch {
	struct store		*st;
	int			 n;
	TAILQ_HEAD(, watcher)	 watchers;
};

int
watch_new(struct store *st, struct watch **ret)
{
	struct watch *w;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -ENOMEM;
	w->st = st;
	TAILQ_INIT(&w->watchers);
	*ret = w;
	return 0;
}

static void
watcher_free(struct watcher *wr)
{
	TAILQ_REMOVE(&wr->w->watchers, wr, entry);
	wr->w->n--;
	json_decref(wr->collections);
	free(wr);
}

void
watch_free(struct watch *w)
{
	struct watcher *wr;

	if (w == NULL)
		return;
	while ((wr = TAILQ_FIRST(&w->watchers)) != NULL) {
		vl_call_set_cancel(wr->call, NULL, NULL);
		vl_call_set_drain(wr->call, NULL, NULL);
		vl_reply(wr->call, NULL, false);
		watcher_free(wr);
	}
	free(w);
}

int
watch_count(const struct watch *w)
{
	return w->n;
}

/*
 * The reply text for one event.  Collection and id need no escaping: names
 * are restricted to [A-Za-z0-9._:@-] before anything is stored.
 */
static char *
watch_event_text(int64_t seq, const char *collection, const char *id,
    int64_t rev, int64_t version, bool deleted, enum store_origin origin,
    const char *body_text, size_t *ret_len)
{
	char *text;
	int n;

	n = asprintf(&text, "{\"event\":{\"seq\":%" PRId64 ",\"collection\":"
	    "\"%s\",\"id\":\"%s\",\"rev\":%" PRId64 ",\"version\":%" PRId64
	    ",\"deleted\":%s,\"origin\":\"%s\"%s%s}}", seq, collection, id,
	    rev, version, deleted ? "true" : "false",
	    store_origin_name(origin), body_text != NULL ? ",\"body\":" : "",
	    body_text != NULL ? body_text : "");
	if (n < 0)
		return NULL;
	*ret_len = (size_t)n;
	return text;
}

int
watch_events_add(struct watch_events *e, int64_t seq, const char *collection,
    const char *id, int64_t rev, int64_t version, bool deleted,
    enum store_origin origin, const char *body_text)
{
	struct watch_event *ev, *v;
	size_t cap;

	if (e->n == e->cap) {
		cap = e->cap ? e->cap * 2 : 256;
		if ((v = realloc(e->v, cap * sizeof *v)) == NULL)
			return -ENOMEM;
		e->v = v;
		e->cap = cap;
	}
	ev = &e->v[e->n];
	memset(ev, 0, sizeof *ev);
	ev->seq = seq;
	ev->rev = rev;
	ev->version = version;
	ev->deleted = deleted;
	ev->origin = origin;
	ev->collection = strdup(collection);
	ev->id = strdup(id);
	if (body_text != NULL)
		ev->body = strdup(body_text);
	if (ev->collection == NULL || ev->id == NULL ||
	    (body_text != NULL && ev->body == NULL)) {
		free(ev->collection);
		free(ev->id);
		free(ev->body);
		return -ENOMEM;
	}
	e->n++;
	return 0;
}

/* The event's reply text, made the first time it is asked for. */
static const char *
watch_event_get_text(struct watch_event *ev, size_t *ret_len)
{
	if (ev->text == NULL && (ev->text = watch_event_text(ev->seq,
	    ev->collection, ev->id, ev->rev, ev->version, ev->deleted,
	    ev->origin, ev->body, &ev->len)) == NULL)
		return NULL;
	*ret_len = ev->len;
	return ev->text;
}

void
watch_events_truncate(struct watch_events *e, size_t n)
{
	size_t i;

	for (i = n; i < e->n; i++) {
		free(e->v[i].collection);
		free(e->v[i].id);
		free(e->v[i].body);
		free(e->v[i].text);
	}
	if (n < e->n)
		e->n = n;
}

void
watch_events_clear(struct watch_events *e)
{
	watch_events_truncate(e, 0);
}

void
watch_events_free(struct watch_events *e)
{
	if (e == NULL)
		return;
	watch_events_clear(e);
	free(e->v);
	memset(e, 0, sizeof *e);
}

static bool
watcher_wants(const struct watcher *wr, const char *collection)
{
	size_t i;
	json_t *v;

	if (wr->collections == NULL)
		return true;
	json_array_foreach(wr->collections, i, v)
		if (strcmp(json_string_value(v), collection) == 0)
			return true;
	return false;
}

/* Send one event's reply text and advance the cursor. */
static int
watcher_send(struct watcher *wr, int64_t seq, const char *collection,
    const char *text, size_t len)
{
	wr->cursor = seq;
	if (!watcher_wants(wr, collection))
		return 0;
	return vl_reply_raw(wr->call, text, len, true);
}

struct watch_pump_ctx {
	struct watcher	*wr;
	int		 err;
};

static int
watch_pump_one(const struct store_change *c, void *arg)
{
	struct watch_pump_ctx *ctx = arg;
	size_t len;
	char *text;
	int r;

	text = watch_event_text(c->seq, c->collection, c->id, c->rev,
	    c->version, c->deleted, c->origin, c->body, &len);
	if (text == NULL)
		return ctx->err = -ENOMEM;
	r = watcher_send(ctx->wr, c->seq, c->collection, text, len);
	free(text);
	return r < 0 ? (ctx->err = r) : 0;
}

/*
 * Catch a watcher up from the committed change log until it reaches the
 * head (then it is live) or its socket has enough queued (then its drain
 * callback calls us again).
 */
static void
watch_pump(struct watcher *wr)
{
	struct store_counts counts;
	struct watch_pump_ctx ctx;
	int n;

	while (!wr->live) {
		if (vl_call_output_size(wr->call) >= WATCH_OUTPUT_MAX)
			return;
		if (store_counts(wr->w->st, &counts) < 0)
			return;
		if (wr->cursor >= counts.head_seq) {
			wr->live = true;
			return;
		}
		ctx.wr = wr;
		ctx.err = 0;
		n = store_changes_since(wr->w->st, wr->cursor, WATCH_PAGE,
		    watch_pump_one, &ctx);
		if (n < 0 || ctx.err < 0) {
			log_err("watch: cannot read the change log: %s",
			    store_errmsg(wr->w->st));
			vl_call_set_cancel(wr->call, NULL, NULL);
			vl_call_set_drain(wr->call, NULL, NULL);
			vl_error(wr->call, "io.ferry.WriteFailed", NULL);
			watcher_free(wr);
			return;
		}
		if (n == 0) {
			/* The log ends before head: cannot happen. */
			wr->live = true;
			return;
		}
	}
}

static void
watch_cancel_cb(struct vl_call *call, void *arg)
{
	struct watcher *wr = arg;

	/* The connection is gone; finish the call so it can be freed. */
	vl_reply(call, NULL, false);
	watcher_free(wr);
}

static void
watch_drain_cb(struct vl_call *call, void *arg)
{
	struct watcher *wr = arg;

	if (!wr->live)
		watch_pump(wr);
}

int
watch_add(struct watch *w, struct vl_call *call, json_t *collections,
    int64_t since)
{
	struct store_counts counts;
	struct watcher *wr;
	json_t *p;
	char why[128];
	int r;

	if ((r = store_counts(w->st, &counts)) < 0) {
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return r;
	}
	if (since > counts.head_seq) {
		snprintf(why, sizeof why, "since %lld is beyond the change "
		    "log's head %lld", (long long)since,
		    (long long)counts.head_seq);
		p = json_pack("{s:s,s:s}", "field", "since", "reason", why);
		vl_error(call, "io.ferry.InvalidArgument", p);
		json_decref(p);
		return -EINVAL;
	}
	if ((wr = calloc(1, sizeof *wr)) == NULL) {
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return -ENOMEM;
	}
	wr->w = w;
	wr->call = call;
	wr->collections = json_incref(collections);
	wr->cursor = since < 0 ? counts.head_seq : since;
	wr->live = wr->cursor >= counts.head_seq;
	TAILQ_INSERT_TAIL(&w->watchers, wr, entry);
	w->n++;
	vl_call_set_cancel(call, watch_cancel_cb, wr);
	vl_call_set_drain(call, watch_drain_cb, wr);
	p = json_pack("{s:b,s:I}", "ready", 1, "seq",
	    (json_int_t)counts.head_seq);
	vl_reply(call, p, true);
	json_decref(p);
	if (!wr->live)
		watch_pump(wr);
	return 0;
}

void
watch_notify(struct watch *w, struct watch_events *e, int64_t head)
{
	struct watcher *wr, *next;
	struct watch_event *ev;
	const char *text;
	size_t i, len;

	for (wr = TAILQ_FIRST(&w->watchers); wr != NULL; wr = next) {
		next = TAILQ_NEXT(wr, entry);
		if (!wr->live)
			continue;
		for (i = 0; i < e->n; i++) {
			ev = &e->v[i];
			if (ev->seq <= wr->cursor)
				continue;
			if (vl_call_output_size(wr->call) >=
			    WATCH_OUTPUT_MAX) {
				/* Too slow: read the rest from the log. */
				wr->live = false;
				break;
			}
			if (!watcher_wants(wr, ev->collection)) {
				wr->cursor = ev->seq;
				continue;
			}
			if ((text = watch_event_get_text(ev, &len)) == NULL) {
				/* Out of memory: the log has it too. */
				wr->live = false;
				break;
			}
			watcher_send(wr, ev->seq, ev->collection, text, len);
		}
		/* Events this batch did not carry (the watcher arrived after
		 * they were written): read them from the log. */
		if (wr->live && wr->cursor < head)
			wr->live = false;
		if (!wr->live)
			watch_pump(wr);
	}
}

int
watch_presence_enable(struct watch *w, struct vl_call *call)
{
	struct watcher *wr;

	TAILQ_FOREACH(wr, &w->watchers, entry)
		if (wr->call == call) {
			wr->presence = true;
			return 0;
		}
	return -ENOENT;
}

void
watch_presence(struct watch *w, struct vl_call *only, const char *collection,
    const char *text, size_t len)
{
	struct watcher *wr;

	TAILQ_FOREACH(wr, &w->watchers, entry) {
		if (!wr->presence || (only != NULL && wr->call != only) ||
		    !watcher_wants(wr, collection))
			continue;
		if (vl_call_output_size(wr->call) >= WATCH_OUTPUT_MAX)
			continue;
		vl_reply_raw(wr->call, text, len, true);
	}
}
