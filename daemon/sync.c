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

void
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
void
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

	sync_push_start(sy);
	if (sy->pull_req == NULL)
		sync_pull_start(sy, 0);
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
	sync_push_start(sy);
	sync_pull_now(sy);
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
cursor_load_done(struct writer_op *op, int err, void *arg)
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
	sync_push_start(sy);
	sync_pull_start(sy, 0);
}

int
sync_fetch(struct sync *sy, const char *path_query, sync_req_done_fn cb,
    void *arg, struct sync_req **ret)
{
	return sync_send(sy, "GET", path_query, NULL, 0, PUSH_TIMEOUT_MS,
	    CONNECT_TIMEOUT_MS, cb, arg, ret);
}

const char *
sync_state(const struct sync *sy)
{
	if (sy->paused)
		return "paused";
	if (sy->offline)
		return "offline";
	if (sync_push_busy(sy) || (sy->pull_req != NULL && !sy->pull_waiting) ||
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
	sync_push_start(sy);
}

void
sync_reload(struct sync *sy, int backoff_max)
{
	backoff_init(&sy->backoff, 500, (int64_t)backoff_max * 1000);
	if (sy->paused) {
		sy->paused = false;
		log_notice("sync: resumed after reload");
		sy->push_need = true;
		sync_push_start(sy);
		sync_pull_now(sy);
		sync_notify(sy);
	}
}

int
sync_new(struct event_base *base, struct store *st, struct writer *writer,
    const struct keys *keys, const struct sync_config *cfg,
    const struct sync_transport *tr, sync_changed_fn changed,
    sync_reply_fn reply, void *arg, struct sync **ret)
{
	struct cursor_load *c;
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
	if ((sy->remote = strdup(cfg->remote)) == NULL) {
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
	sy->retry_ev = evtimer_new(base, sync_retry_cb, sy);
	if (sy->retry_ev == NULL ||
	    (r = jobq_new(base, 1, &sy->parser)) < 0 ||
	    (r = jobq_new(base, 1, &sy->encoder)) < 0 ||
	    (c = calloc(1, sizeof *c)) == NULL) {
		sync_free(sy);
		return -ENOMEM;
	}
	c->sy = sy;
	if (writer_add(writer, cursor_load_run, c, cursor_load_done, c,
	    NULL) == NULL) {
		free(c);
		sync_free(sy);
		return -ENOMEM;
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
	sy->stopping = true;
	if (sy->retry_ev != NULL)
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
	if (sy->tr.free != NULL)
		sy->tr.free(sy->tr.ctx);
	/* Pages still being parsed or encoded are dropped with their jobs. */
	jobq_free(sy->parser);
	jobq_free(sy->encoder);
	sync_push_free(sy);
	if (sy->retry_ev != NULL)
		event_free(sy->retry_ev);
	free(sy->remote);
	free(sy);
}
