/*
 * sync: the engine that runs the pusher (sync_push.c) and the puller
 * (sync_pull.c) over a transport (sync_http.c by default); see sync.h.
 *
 * This file holds what the two pipelines share: the engine's state as
 * users see it (Status), the last error, the backoff and the one retry
 * timer (a transient failure of a push or a pull arms it and marks the
 * engine offline; success of either clears that; a definitive refusal
 * pauses until Sync or reload), the Sync(wait) waiters, and the life
 * cycle: the pull cursor is read once at start (an op), then both
 * pipelines start.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdarg.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backoff.h"
#include "jobq.h"
#include "log.h"
#include "sync_int.h"
#include "util.h"

static void	waiters_fail(struct sync *sy);
static int	cursor_load(struct sync *sy);
static void	sync_resume(struct sync *sy, const char *reason);

/* --- the state --- */

static const char *const state_names[] = {
	[SYNC_STARTING] = "starting",
	[SYNC_IDLE] = "idle",
	[SYNC_SYNCING] = "syncing",
	[SYNC_OFFLINE] = "offline",
	[SYNC_PAUSED] = "paused",
	[SYNC_STOPPING] = "stopping",
};

/*
 * The one place the state changes.  A transition is logged in one line
 * (the busy/idle flicker of every exchange at debug level, the others as
 * notices) and told to the daemon; setting the state it is in already
 * does nothing.
 */
void
sync_set_state(struct sync *sy, enum sync_state_id state, const char *reason)
{
	enum sync_state_id old = sy->state;

	if (state == old)
		return;
	sy->state = state;
	if ((old == SYNC_IDLE || old == SYNC_SYNCING) &&
	    (state == SYNC_IDLE || state == SYNC_SYNCING))
		log_debug("sync: %s -> %s (%s)", state_names[old],
		    state_names[state], reason);
	else
		log_notice("sync: %s -> %s (%s)", state_names[old],
		    state_names[state], reason);
	sy->changed(sy->arg);
}

/*
 * Running, idle and syncing differ only in whether a pipeline has an
 * exchange under way (a long-poll waiting does not count): the pipelines
 * call this whenever their step moves.  Other states are left alone.
 */
void
sync_update(struct sync *sy, const char *reason)
{
	enum sync_state_id to;

	sync_rotate_poll(sy);
	if (sy->state != SYNC_IDLE && sy->state != SYNC_SYNCING)
		return;
	to = sync_push_busy(sy) || sync_pull_busy(sy) ? SYNC_SYNCING :
	    SYNC_IDLE;
	sync_set_state(sy, to, reason);
}

/*
 * Leave starting, offline or paused for running: syncing, since an
 * exchange is what brings it here; the callback's sync_update at its end
 * settles idle or syncing once the pipelines have moved.
 */
static void
sync_run(struct sync *sy, const char *reason)
{
	sync_set_state(sy, SYNC_SYNCING, reason);
}

/* Running (or offline, retrying): the pipelines may start exchanges. */
bool
sync_running(const struct sync *sy)
{
	return sy->state == SYNC_IDLE || sy->state == SYNC_SYNCING ||
	    sy->state == SYNC_OFFLINE;
}

/* --- helpers --- */

void
sync_notify(struct sync *sy)
{
	sy->changed(sy->arg);
}

void
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
void
sync_transient(struct sync *sy)
{
	struct timeval tv;
	int64_t ms;

	if (sync_running(sy))
		sync_set_state(sy, SYNC_OFFLINE, sy->last_error[0] != '\0' ?
		    sy->last_error : "transient failure");
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

void
sync_ok(struct sync *sy)
{
	bool was = sy->state == SYNC_OFFLINE || sy->last_error[0] != '\0';

	if (sy->state == SYNC_OFFLINE)
		sync_run(sy, "the remote answered");
	sy->last_ok_ms = util_now_ms();
	sy->last_error[0] = '\0';
	sy->revoked_ms = 0;
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
		sy->reply(sy->arg, sy->waiters[i].call, "io.ferry.Offline", p);
	json_decref(p);
	sy->nwaiters = 0;
}

/* A definitive refusal: stop until Sync or reload. */
void
sync_pause(struct sync *sy)
{
	if (sy->state != SYNC_STOPPING)
		sync_set_state(sy, SYNC_PAUSED, sy->last_error[0] != '\0' ?
		    sy->last_error : "refused");
	waiters_fail(sy);
	sync_notify(sy);
}

static void
sync_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sync *sy = arg;

	sync_push_start(sy);
	if (sy->pull_req == NULL)
		sync_pull_start(sy, 0);
	sync_update(sy, "retry");
}

/*
 * The pipelines' steps are large (a page of up to 1000 changes, a push's
 * answers or its next batch): each runs alone, so it fails alone without
 * a savepoint around it (writer.h).
 */
int
sync_writer_add(struct sync *sy, writer_run_fn run, writer_op_done_fn done,
    void *arg)
{
	struct writer_op *op;

	if ((op = writer_add(sy->writer, run, arg, done, arg, NULL)) == NULL)
		return -ENOMEM;
	op->alone = true;
	return 0;
}

/* Start a request to the remote through the transport. */
int
sync_send(struct sync *sy, const char *method, const char *path_query,
    const char *body, size_t len, long timeout_ms, long connect_ms,
    sync_req_done_fn cb, void *arg, struct sync_req **ret)
{
	return sy->tr.start(sy->tr.ctx, method, path_query, body, len,
	    timeout_ms, connect_ms, cb, arg, ret);
}

void
sync_cancel(struct sync *sy, struct sync_req *req)
{
	if (req != NULL)
		sy->tr.cancel(sy->tr.ctx, req);
}

/*
 * A 401: keep the revocation it carries ({"time","reason"}), or forget an
 * old one (refused for another reason now).
 */
static void
note_revoked(struct sync *sy, json_t *rv)
{
	json_t *t = json_object_get(rv, "time");
	const char *why = json_string_value(json_object_get(rv, "reason"));

	if (!json_is_object(rv) || !json_is_integer(t) ||
	    json_integer_value(t) <= 0) {
		sy->revoked_ms = 0;
		return;
	}
	sy->revoked_ms = json_integer_value(t);
	snprintf(sy->revoked_reason, sizeof sy->revoked_reason, "%s",
	    why != NULL ? why : "");
}

bool
sync_key_revoked(const struct sync *sy, int64_t *ret_ms,
    const char **ret_reason)
{
	if (sy->revoked_ms <= 0)
		return false;
	*ret_ms = sy->revoked_ms;
	*ret_reason = sy->revoked_reason[0] != '\0' ? sy->revoked_reason :
	    NULL;
	return true;
}

/* Classify an HTTP answer: 1 ok (200), 0 transient, -1 definitive. */
int
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
	if (res->status == 401)
		note_revoked(sy, json_object_get(body, "revoked"));
	sync_error(sy, "%s: %s answered %ld%s%s", what, sy->remote,
	    res->status, why != NULL ? ": " : "", why != NULL ? why : "");
	json_decref(body);
	if (res->status == 408 || res->status == 429 || res->status >= 500)
		return 0;
	return -1;
}

/* --- Sync(wait) --- */

void
sync_waiters_check(struct sync *sy)
{
	size_t i, j = 0;

	if (!sync_push_idle(sy))
		return;
	for (i = 0; i < sy->nwaiters; i++) {
		if (sy->caught_round >= sy->waiters[i].pull_round &&
		    sy->pull_applying == 0)
			sy->reply(sy->arg, sy->waiters[i].call, NULL,
			    NULL);
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

	if (sy->state == SYNC_PAUSED)
		sync_resume(sy, "Sync called");
	if (evtimer_pending(sy->retry_ev, NULL)) {
		/* The user asked: try now rather than at the backoff's end. */
		evtimer_del(sy->retry_ev);
	}
	sy->push_need = true;
	sync_push_start(sy);
	sync_pull_now(sy);
	sync_update(sy, "Sync called");
	if (wait) {
		if (sy->nwaiters == sy->capwaiters) {
			size_t cap = sy->capwaiters ? sy->capwaiters * 2 : 8;

			if ((v = realloc(sy->waiters, cap * sizeof *v)) ==
			    NULL) {
				sy->reply(sy->arg, call, "io.ferry.WriteFailed",
				    NULL);
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
	sy->reply(sy->arg, call, NULL, NULL);
}

/* --- life cycle --- */

struct cursor_load {
	struct sync		*sy;
	struct sync_select	 sel;
	struct sync_keys_prev	 prev;
	const char		*prev_bad;	/* the meta holding a non-key */
};

/* The cursor, with the filter of the collections synced (sync_select),
 * and the keys rotated from (sync_rotate.c), which pulls need. */
static void
cursor_load_run(struct writer_batch *b, struct writer_op *op)
{
	struct cursor_load *c = op->arg;
	int r;

	if ((r = sync_select_settle(b->st, c->sy->cfg_collections, NULL,
	    &c->sel)) < 0) {
		writer_op_fail(op, r, r == -EINVAL ? "the stored pull filter "
		    "cannot be read" : store_errmsg(b->st));
		return;
	}
	if ((r = sync_rotate_prev_load(b->st, &c->prev, &c->prev_bad)) < 0)
		writer_op_fail(op, r, store_errmsg(b->st));
}

static void
cursor_load_done(struct writer_op *op, int err, void *arg)
{
	struct cursor_load *c = op->arg;
	struct sync *sy = c->sy;

	if (sy->state != SYNC_STARTING) {	/* stopping */
		sync_select_clear(&c->sel);
		free(c);
		return;
	}
	if (err != 0) {
		sync_select_clear(&c->sel);
		free(c);
		sync_error(sy, "cannot read the pull cursor");
		sync_pause(sy);
		return;
	}
	sy->cursor = sy->fetch_cursor = c->sel.cursor;
	sy->cursor_known = true;
	if (c->prev_bad != NULL)
		log_warn("sync: the replica's %s %s not a public key: ignored "
		    "(a change signed by a key this device rotated from is "
		    "then merged like another device's)", c->prev_bad,
		    strcmp(c->prev_bad, "key_prev") == 0 ? "is" :
		    "holds a value that is");
	sync_rotate_prev_take(sy, &c->prev);
	sync_select_take(sy, &c->sel);
	sync_select_clear(&c->sel);
	free(c);
	sync_run(sy, "pull cursor read");
	sync_push_start(sy);
	sync_pull_start(sy, 0);
	sync_update(sy, "started");
}

/* Read the pull cursor (an op); the engine starts once it is known. */
static int
cursor_load(struct sync *sy)
{
	struct cursor_load *c;

	if ((c = calloc(1, sizeof *c)) == NULL)
		return -ENOMEM;
	c->sy = sy;
	if (writer_add(sy->writer, cursor_load_run, c, cursor_load_done, c,
	    NULL) == NULL) {
		free(c);
		return -ENOMEM;
	}
	sync_set_state(sy, SYNC_STARTING, "reading the pull cursor");
	return 0;
}

/*
 * Leave paused (Sync or reload): push and pull again at once, or first
 * read the cursor again if that is what failed.
 */
static void
sync_resume(struct sync *sy, const char *reason)
{
	if (!sy->cursor_known) {
		/* On failure it stays paused; the next Sync tries again. */
		cursor_load(sy);
		return;
	}
	sync_run(sy, reason);
	sy->push_need = true;
	sync_push_start(sy);
	sync_pull_now(sy);
	sync_update(sy, reason);
}

int
sync_fetch(struct sync *sy, const char *path_query, long timeout_ms,
    sync_req_done_fn cb, void *arg, struct sync_req **ret)
{
	return sync_send(sy, "GET", path_query, NULL, 0, timeout_ms,
	    timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS,
	    cb, arg, ret);
}

int
sync_post(struct sync *sy, const char *path, const char *body, size_t len,
    long timeout_ms, sync_req_done_fn cb, void *arg, struct sync_req **ret)
{
	return sync_send(sy, "POST", path, body, len, timeout_ms,
	    timeout_ms < CONNECT_TIMEOUT_MS ? timeout_ms : CONNECT_TIMEOUT_MS,
	    cb, arg, ret);
}

const char *
sync_state(const struct sync *sy)
{
	switch (sy->state) {
	case SYNC_IDLE:
	case SYNC_STOPPING:
		return "idle";
	case SYNC_OFFLINE:
		return "offline";
	case SYNC_PAUSED:
		return "paused";
	case SYNC_STARTING:
	case SYNC_SYNCING:
		break;
	}
	return "syncing";
}

enum sync_state_id
sync_state_id(const struct sync *sy)
{
	return sy->state;
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
	sync_push_start(sy);
	sync_update(sy, "local writes");
}

void
sync_reload(struct sync *sy, int backoff_max)
{
	backoff_init(&sy->backoff, 500, (int64_t)backoff_max * 1000);
	if (sy->state == SYNC_PAUSED) {
		log_notice("sync: resumed after reload");
		sync_resume(sy, "reload");
	}
}

int
sync_new(struct event_base *base, struct store *st, struct writer *writer,
    const struct keys *keys, const struct sync_config *cfg,
    const struct sync_transport *tr, sync_changed_fn changed,
    sync_reply_fn reply, void *arg, struct sync **ret)
{
	struct sync *sy;
	size_t n;
	int r;

	if ((sy = calloc(1, sizeof *sy)) == NULL) {
		if (tr != NULL && tr->free != NULL)
			tr->free(tr->ctx);
		return -ENOMEM;
	}
	if (tr != NULL)
		sy->tr = *tr;
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
	backoff_init(&sy->rot_backoff, 500, (int64_t)cfg->backoff_max * 1000);
	if ((sy->remote = strdup(cfg->remote)) == NULL ||
	    (cfg->collections != NULL && (sy->cfg_collections =
	    strdup(cfg->collections)) == NULL)) {
		sync_free(sy);
		return -ENOMEM;
	}
	n = strlen(sy->remote);
	while (n > 0 && sy->remote[n - 1] == '/')
		sy->remote[--n] = '\0';
	if (tr == NULL && (r = sync_http_new(base, keys, sy->remote,
	    &sy->tr)) < 0) {
		sync_free(sy);
		return r;
	}
	r = -ENOMEM;
	sy->retry_ev = evtimer_new(base, sync_retry_cb, sy);
	if (sy->retry_ev == NULL ||
	    (r = jobq_new(base, 1, &sy->parser)) < 0 ||
	    (r = jobq_new(base, 1, &sy->encoder)) < 0 ||
	    (r = cursor_load(sy)) < 0) {
		sync_free(sy);
		return r < 0 ? r : -ENOMEM;
	}
	*ret = sy;
	return 0;
}

void
sync_stop(struct sync *sy)
{
	size_t i;

	if (sy == NULL)
		return;
	sync_set_state(sy, SYNC_STOPPING, "shutdown");
	if (sy->retry_ev != NULL)
		evtimer_del(sy->retry_ev);
	for (i = 0; i < sy->nwaiters; i++)
		sy->reply(sy->arg, sy->waiters[i].call, "io.ferry.Offline",
		    NULL);
	sy->nwaiters = 0;
	sync_rotate_stop(sy);
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
	if (sy->tr.free != NULL)
		sy->tr.free(sy->tr.ctx);
	/* Pages still being parsed or encoded are dropped with their jobs. */
	jobq_free(sy->parser);
	jobq_free(sy->encoder);
	sync_push_free(sy);
	sync_rotate_free(sy);
	if (sy->retry_ev != NULL)
		event_free(sy->retry_ev);
	free(sy->remote);
	free(sy->cfg_collections);
	free(sy->sync_set);
	free(sy->pull_filter);
	free(sy);
}

const char *
sync_collections(const struct sync *sy)
{
	return sy->sync_set;
}
