/*
 * presence_relay: presence on ferryd's loop and through the remote; see
 * presence_relay.h.
 *
 * Two request slots towards the remote, each with one timer: post (the
 * local list; post_ev delays a send to coalesce, retries after a failure
 * and refreshes every TTL / 3) and poll (the long-poll; poll_ev restarts
 * it, at once after an answer or after a backoff).  The table's own timer
 * (tick_ev) expires entries and lets coalesced updates out.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "control.h"
#include "log.h"
#include "names.h"
#include "presence.h"
#include "presence_relay.h"
#include "util.h"

#define RELAY_POST_MIN_MS	PRESENCE_COALESCE_MS
#define RELAY_POST_TIMEOUT_MS	10000L
#define RELAY_POLL_WAIT		25	/* seconds the remote may hold it */
#define RELAY_RETRY_MAX_S	30
#define RELAY_UNKNOWN_S		300	/* a remote without /v1/presence */

struct presence_relay {
	struct event_base	*base;
	struct presence		*p;
	struct watch		*watch;
	struct sync		*sync;
	char			*device_name;
	int64_t			 ttl_ms;
	bool			 stopped;
	struct event		*tick_ev;

	struct event		*post_ev;
	struct sync_req		*post_req;
	bool			 post_wanted;	/* the list changed since sent */
	int64_t			 last_post;	/* monotonic ms */

	struct event		*poll_ev;
	struct sync_req		*poll_req;
	int64_t			 rev;		/* the remote's, last seen */
	int64_t			 poll_started;	/* monotonic ms */
	int			 poll_fail;
	bool			 unknown_logged;
};

static int64_t
mono_ms(void)
{
	return util_mono_us() / 1000;
}

static void
timer_in(struct event *ev, int64_t ms)
{
	struct timeval tv;

	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(ev, &tv);
}

/* Let the table do what is due and arm its timer for what is next. */
static void
relay_tick(struct presence_relay *r)
{
	int64_t now = mono_ms(), due;

	due = presence_tick(r->p, now);
	if (due < 0)
		evtimer_del(r->tick_ev);
	else
		timer_in(r->tick_ev, due - now);
}

static void
relay_tick_cb(evutil_socket_t fd, short what, void *arg)
{
	relay_tick(arg);
}

/* --- to the remote: the local list --- */

static void relay_post_kick(struct presence_relay *r);

static void
relay_post_done(const struct http_result *res, void *arg)
{
	struct presence_relay *r = arg;

	r->post_req = NULL;
	if (res->err == 0 && res->status == 200) {
		/* Refresh before the remote's copy expires. */
		if (presence_local_count(r->p) > 0 && !r->post_wanted)
			timer_in(r->post_ev, r->ttl_ms / 3);
		relay_post_kick(r);
		return;
	}
	if (res->err != 0)
		log_debug("presence: cannot send to the remote: %s",
		    res->errmsg != NULL ? res->errmsg : "transport error");
	else
		log_debug("presence: the remote answered %ld", res->status);
	r->post_wanted = true;
	timer_in(r->post_ev, res->err == 0 && res->status == 404 ?
	    RELAY_UNKNOWN_S * 1000L : 1000L);
}

static void
relay_post_send(struct presence_relay *r)
{
	json_t *list, *body;
	char *text;
	int e;

	if ((list = presence_local_json(r->p)) == NULL)
		return;
	body = json_pack("{s:I,s:s?,s:o}", "ttl_ms", (json_int_t)r->ttl_ms,
	    "device_name", r->device_name, "entries", list);
	if (body == NULL || (text = json_dumps(body, JSON_COMPACT)) == NULL) {
		json_decref(body);
		return;
	}
	json_decref(body);
	r->post_wanted = false;
	r->last_post = mono_ms();
	e = sync_post(r->sync, "/v1/presence", text, strlen(text),
	    RELAY_POST_TIMEOUT_MS, relay_post_done, r, &r->post_req);
	free(text);
	if (e < 0) {
		r->post_req = NULL;
		r->post_wanted = true;
		timer_in(r->post_ev, 1000);
	}
}

/* Send the list if it changed, as soon as the slot and the pace allow. */
static void
relay_post_kick(struct presence_relay *r)
{
	int64_t wait;

	if (r->sync == NULL || r->stopped || r->post_req != NULL ||
	    !r->post_wanted)
		return;
	wait = r->last_post + RELAY_POST_MIN_MS - mono_ms();
	if (wait > 0) {
		timer_in(r->post_ev, wait);
		return;
	}
	evtimer_del(r->post_ev);
	relay_post_send(r);
}

static void
relay_post_cb(evutil_socket_t fd, short what, void *arg)
{
	struct presence_relay *r = arg;

	/* A delayed send, a retry or a refresh: all send the list. */
	r->post_wanted = true;
	relay_post_kick(r);
}

/* --- from the remote: the others' list, on a long-poll --- */

static void relay_poll_start(struct presence_relay *r);

static int
relay_poll_take(struct presence_relay *r, const char *text, size_t len)
{
	json_t *o, *rev, *list;
	int n;

	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, NULL)) == NULL)
		return -EPROTO;
	rev = json_object_get(o, "rev");
	list = json_object_get(o, "entries");
	if (!json_is_integer(rev) || !json_is_array(list)) {
		json_decref(o);
		return -EPROTO;
	}
	r->rev = json_integer_value(rev);
	n = presence_remote_replace(r->p, list);
	if (n > 0)
		log_debug("presence: %d entries from the remote skipped", n);
	json_decref(o);
	return n < 0 ? n : 0;
}

static void
relay_poll_done(const struct http_result *res, void *arg)
{
	struct presence_relay *r = arg;
	int64_t delay, rev = r->rev;

	r->poll_req = NULL;
	if (res->err == 0 && res->status == 200 &&
	    relay_poll_take(r, res->body, res->len) == 0) {
		r->poll_fail = 0;
		/* A remote that answers at once with nothing new (one that
		 * does not hold the request) is asked once a second, not in
		 * a loop. */
		timer_in(r->poll_ev, r->rev == rev && mono_ms() -
		    r->poll_started < 1000 ? 1000 : 0);
		return;
	}
	/* What we cannot see any more is not shown as present. */
	presence_remote_replace(r->p, NULL);
	if (res->err == 0 && res->status == 404) {
		if (!r->unknown_logged)
			log_notice("presence: the remote does not relay "
			    "presence (no /v1/presence); only apps on this "
			    "machine are seen");
		r->unknown_logged = true;
		timer_in(r->poll_ev, RELAY_UNKNOWN_S * 1000L);
		return;
	}
	if (r->poll_fail < 5)
		r->poll_fail++;
	delay = (int64_t)1000 << (r->poll_fail - 1);
	timer_in(r->poll_ev, delay > RELAY_RETRY_MAX_S * 1000L ?
	    RELAY_RETRY_MAX_S * 1000L : delay);
}

static void
relay_poll_start(struct presence_relay *r)
{
	char path[128];

	if (r->sync == NULL || r->stopped || r->poll_req != NULL)
		return;
	snprintf(path, sizeof path, "/v1/presence?rev=%" PRId64 "&wait=%d",
	    r->rev, RELAY_POLL_WAIT);
	r->poll_started = mono_ms();
	if (sync_fetch(r->sync, path, (RELAY_POLL_WAIT + 15) * 1000L,
	    relay_poll_done, r, &r->poll_req) < 0) {
		r->poll_req = NULL;
		timer_in(r->poll_ev, 1000);
	}
}

static void
relay_poll_cb(evutil_socket_t fd, short what, void *arg)
{
	relay_poll_start(arg);
}

/* --- the table's changes --- */

/* The reply text {"presence":{...},"gone":b}, malloc'd, or NULL. */
static char *
relay_reply_text(const struct presence_entry *e, bool gone)
{
	json_t *o;
	char *text;

	o = json_pack("{s:o*,s:b}", "presence", presence_entry_json(e),
	    "gone", gone);
	if (o == NULL || json_object_get(o, "presence") == NULL) {
		json_decref(o);
		return NULL;
	}
	text = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return text;
}

static void
relay_emit(const struct presence_entry *e, bool gone, void *arg)
{
	struct presence_relay *r = arg;
	char *text;

	if (r->stopped)
		return;
	if ((text = relay_reply_text(e, gone)) != NULL) {
		watch_presence(r->watch, NULL, e->collection, text,
		    strlen(text));
		free(text);
	}
	if (e->local && r->sync != NULL) {
		r->post_wanted = true;
		/* Not from inside the table's call: from the loop. */
		if (r->post_req == NULL)
			event_active(r->post_ev, EV_TIMEOUT, 0);
	}
}

/* --- handlers --- */

/* The program's name on the other end of call, from /proc, into buf. */
static void
peer_app(struct vl_call *call, char *buf, size_t size)
{
	char path[64];
	ssize_t n = -1;
	pid_t pid;
	int fd;

	snprintf(buf, size, "unknown");
	if ((pid = vl_call_conn_pid(call)) <= 0)
		return;
	snprintf(path, sizeof path, "/proc/%ld/comm", (long)pid);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC)) == -1)
		return;
	n = read(fd, buf, size - 1);
	close(fd);
	if (n <= 0) {
		snprintf(buf, size, "unknown");
		return;
	}
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (buf[0] == '\0')
		snprintf(buf, size, "unknown");
}

/* Collection (required or not) and id (optional) from params: 0, or -1
 * answered. */
static int
where_from(struct vl_call *call, json_t *params, bool need_collection,
    const char **ret_collection, const char **ret_id)
{
	const char *c, *id, *reason;

	c = json_string_value(json_object_get(params, "collection"));
	id = json_string_value(json_object_get(params, "id"));
	if ((c != NULL || need_collection) &&
	    names_check_collection(c, &reason) < 0) {
		control_reply_invalid(call, "collection", reason);
		return -1;
	}
	if (id != NULL && names_check_id(id, &reason) < 0) {
		control_reply_invalid(call, "id", reason);
		return -1;
	}
	if (id != NULL && c == NULL) {
		control_reply_invalid(call, "id", "an id needs its collection");
		return -1;
	}
	*ret_collection = c;
	*ret_id = id;
	return 0;
}

void
presence_relay_set(struct presence_relay *r, struct vl_call *call,
    json_t *params)
{
	const char *collection, *id, *name = NULL;
	json_t *state, *p;
	char app[64], why[160], *text = NULL;
	int64_t max = 0;
	int e;

	if (where_from(call, params, true, &collection, &id) < 0)
		return;
	state = json_object_get(params, "state");
	if (json_is_object(state) && (text = json_dumps(state,
	    JSON_COMPACT | JSON_SORT_KEYS)) == NULL) {
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return;
	}
	/* The name is taken on the connection's first call only. */
	if (!presence_knows_conn(r->p, vl_call_conn_id(call)))
		peer_app(call, app, sizeof app);
	else
		app[0] = '\0';
	e = presence_set(r->p, vl_call_conn_id(call), app, collection, id,
	    text, mono_ms(), &name, &max);
	if (e == -EMSGSIZE) {
		snprintf(why, sizeof why, "is %zu bytes of compact JSON; the "
		    "limit is %d", strlen(text), PRESENCE_STATE_MAX);
		control_reply_invalid(call, "state", why);
	} else if (e == -EDQUOT) {
		if (strcmp(name, "presence_rate") == 0)
			snprintf(why, sizeof why, "more than %" PRId64 " "
			    "SetPresence calls a second on one connection",
			    max);
		else if (strcmp(name, "presence_entries") == 0)
			snprintf(why, sizeof why, "this connection already "
			    "holds %" PRId64 " presence entries (clear one "
			    "first)", max);
		else
			snprintf(why, sizeof why, "ferryd already holds %"
			    PRId64 " presence entries", max);
		p = json_pack("{s:s,s:I,s:s}", "limit", name, "max",
		    (json_int_t)max, "reason", why);
		vl_error(call, "io.ferry.LimitExceeded", p);
		json_decref(p);
	} else if (e < 0)
		vl_error(call, "io.ferry.WriteFailed", NULL);
	else
		vl_reply(call, NULL, false);
	free(text);
	relay_tick(r);
}

void
presence_relay_who(struct presence_relay *r, struct vl_call *call,
    json_t *params)
{
	const char *collection, *id;
	json_t *list, *p;

	if (where_from(call, params, false, &collection, &id) < 0)
		return;
	if ((list = presence_who(r->p, collection, id)) == NULL) {
		vl_error(call, "io.ferry.WriteFailed", NULL);
		return;
	}
	p = json_pack("{s:o}", "present", list);
	vl_reply(call, p, false);
	json_decref(p);
}

void
presence_relay_watch(struct presence_relay *r, struct vl_call *call)
{
	json_t *list, *e, *o;
	const char *c;
	char *text;
	size_t i;

	if (watch_presence_enable(r->watch, call) < 0 ||
	    (list = presence_who(r->p, NULL, NULL)) == NULL)
		return;
	json_array_foreach(list, i, e) {
		c = json_string_value(json_object_get(e, "collection"));
		text = NULL;
		o = json_pack("{s:O,s:b}", "presence", e, "gone", 0);
		if (o != NULL)
			text = json_dumps(o, JSON_COMPACT);
		if (text != NULL)
			watch_presence(r->watch, call, c, text, strlen(text));
		free(text);
		json_decref(o);
	}
	json_decref(list);
}

void
presence_relay_conn_closed(struct presence_relay *r, unsigned long conn_id)
{
	if (r == NULL || r->stopped)
		return;
	presence_conn_gone(r->p, conn_id);
	relay_tick(r);
}

/* --- life cycle --- */

int
presence_relay_new(struct event_base *base, struct watch *watch,
    struct sync *sync, const char *device, const char *device_name,
    int ttl_s, struct presence_relay **ret)
{
	struct presence_limits lim;
	struct presence_relay *r;
	int e;

	if ((r = calloc(1, sizeof *r)) == NULL)
		return -ENOMEM;
	r->base = base;
	r->watch = watch;
	r->sync = sync;
	r->ttl_ms = (int64_t)ttl_s * 1000;
	presence_limits_default(&lim, r->ttl_ms);
	if ((e = presence_new(&lim, device, device_name, relay_emit, r,
	    &r->p)) < 0)
		goto fail;
	e = -ENOMEM;
	if ((device_name != NULL &&
	    (r->device_name = strdup(device_name)) == NULL) ||
	    (r->tick_ev = evtimer_new(base, relay_tick_cb, r)) == NULL ||
	    (r->post_ev = evtimer_new(base, relay_post_cb, r)) == NULL ||
	    (r->poll_ev = evtimer_new(base, relay_poll_cb, r)) == NULL)
		goto fail;
	relay_poll_start(r);
	*ret = r;
	return 0;
fail:
	presence_relay_free(r);
	return e;
}

void
presence_relay_stop(struct presence_relay *r)
{
	if (r == NULL)
		return;
	r->stopped = true;
	if (r->sync != NULL) {
		sync_cancel(r->sync, r->post_req);
		sync_cancel(r->sync, r->poll_req);
	}
	r->post_req = r->poll_req = NULL;
}

void
presence_relay_free(struct presence_relay *r)
{
	if (r == NULL)
		return;
	presence_relay_stop(r);
	if (r->tick_ev != NULL)
		event_free(r->tick_ev);
	if (r->post_ev != NULL)
		event_free(r->post_ev);
	if (r->poll_ev != NULL)
		event_free(r->poll_ev);
	presence_free(r->p);
	free(r->device_name);
	free(r);
}
