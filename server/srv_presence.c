/*
 * srv_presence: the server's presence table; see srv_presence.h.
 *
 * One record per device with entries, holding its list as the compact
 * JSON array text it is sent and shared as, so an answer is the
 * concatenation of the other devices' texts (no JSON is built per
 * long-poll).  The expiry timer is armed for the earliest list to end.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <jansson.h>

#include "names.h"
#include "srv_presence.h"
#include "util.h"

#define SRV_PRESENCE_WORD_MAX	128	/* app, session, device_name */

struct pdev {
	char			*device;
	char			*list;		/* JSON array text */
	int			 n;		/* entries in it */
	int64_t			 expires_ms;
	bool			 seen;		/* by the import under way */
	TAILQ_ENTRY(pdev)	 entry;
};

struct srv_presence {
	struct event		*timer;
	srv_presence_changed_fn	 changed;
	void			*arg;
	TAILQ_HEAD(, pdev)	 devs;
	int			 total;
	int64_t			 rev;
};

static void srv_presence_arm(struct srv_presence *p, int64_t now_ms);

static void
pdev_free(struct srv_presence *p, struct pdev *d)
{
	TAILQ_REMOVE(&p->devs, d, entry);
	p->total -= d->n;
	free(d->device);
	free(d->list);
	free(d);
}

static struct pdev *
pdev_find(struct srv_presence *p, const char *device)
{
	struct pdev *d;

	TAILQ_FOREACH(d, &p->devs, entry)
		if (strcmp(d->device, device) == 0)
			return d;
	return NULL;
}

static void
srv_presence_bump(struct srv_presence *p)
{
	p->rev++;
	if (p->changed != NULL)
		p->changed(p->arg);
}

/* Drop the lists that ended by now_ms: true if any did. */
static bool
srv_presence_expire(struct srv_presence *p, int64_t now_ms)
{
	struct pdev *d, *next;
	bool any = false;

	for (d = TAILQ_FIRST(&p->devs); d != NULL; d = next) {
		next = TAILQ_NEXT(d, entry);
		if (d->expires_ms <= now_ms) {
			pdev_free(p, d);
			any = true;
		}
	}
	return any;
}

static void
srv_presence_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_presence *p = arg;
	int64_t now = util_now_ms();

	if (srv_presence_expire(p, now))
		srv_presence_bump(p);
	srv_presence_arm(p, now);
}

static void
srv_presence_arm(struct srv_presence *p, int64_t now_ms)
{
	struct timeval tv;
	struct pdev *d;
	int64_t due = -1, ms;

	TAILQ_FOREACH(d, &p->devs, entry)
		if (due < 0 || d->expires_ms < due)
			due = d->expires_ms;
	if (p->timer == NULL)
		return;
	if (due < 0) {
		evtimer_del(p->timer);
		return;
	}
	ms = due - now_ms;
	if (ms < 0)
		ms = 0;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evtimer_add(p->timer, &tv);
}

int
srv_presence_new(struct event_base *base, srv_presence_changed_fn changed,
    void *arg, struct srv_presence **ret)
{
	struct srv_presence *p;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return -ENOMEM;
	TAILQ_INIT(&p->devs);
	p->changed = changed;
	p->arg = arg;
	p->rev = 1;
	if (base != NULL &&
	    (p->timer = evtimer_new(base, srv_presence_timer_cb, p)) == NULL) {
		free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

void
srv_presence_free(struct srv_presence *p)
{
	if (p == NULL)
		return;
	while (!TAILQ_EMPTY(&p->devs))
		pdev_free(p, TAILQ_FIRST(&p->devs));
	if (p->timer != NULL)
		event_free(p->timer);
	free(p);
}

/* A string member of at most max bytes, printable ASCII; NULL if not. */
static const char *
word(json_t *o, const char *key, size_t max)
{
	const char *s = json_string_value(json_object_get(o, key));
	size_t i;

	if (s == NULL || *s == '\0' || strlen(s) > max)
		return NULL;
	for (i = 0; s[i] != '\0'; i++)
		if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e)
			return NULL;
	return s;
}

/*
 * One entry of a posted list, checked and rewritten with the device (from
 * the request's key, never from the body) and its name.  NULL with why.
 */
static json_t *
entry_take(json_t *e, size_t i, const char *device, const char *name,
    char *why, size_t why_len)
{
	const char *app, *session, *collection, *id, *reason = NULL;
	json_t *state, *since, *o;
	char *text;
	size_t slen;

	if (!json_is_object(e)) {
		snprintf(why, why_len, "entries[%zu] is not an object", i);
		return NULL;
	}
	app = word(e, "app", SRV_PRESENCE_WORD_MAX);
	session = word(e, "session", SRV_PRESENCE_WORD_MAX);
	collection = json_string_value(json_object_get(e, "collection"));
	id = json_string_value(json_object_get(e, "id"));
	state = json_object_get(e, "state");
	since = json_object_get(e, "since_ms");
	if (app == NULL || session == NULL) {
		snprintf(why, why_len, "entries[%zu].%s must be 1-%d printable "
		    "ASCII bytes", i, app == NULL ? "app" : "session",
		    SRV_PRESENCE_WORD_MAX);
		return NULL;
	}
	if (names_check_collection(collection, &reason) < 0 ||
	    (json_object_get(e, "id") != NULL &&
	    !json_is_null(json_object_get(e, "id")) &&
	    names_check_id(id, &reason) < 0)) {
		snprintf(why, why_len, "entries[%zu]: %s", i, reason);
		return NULL;
	}
	if (!json_is_object(state) || !json_is_integer(since)) {
		snprintf(why, why_len, "entries[%zu].%s", i,
		    !json_is_object(state) ? "state must be an object" :
		    "since_ms must be an integer");
		return NULL;
	}
	if ((text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS)) == NULL)
		return NULL;
	slen = strlen(text);
	free(text);
	if (slen > SRV_PRESENCE_STATE_MAX) {
		snprintf(why, why_len, "entries[%zu].state is %zu bytes; the "
		    "limit is %d", i, slen, SRV_PRESENCE_STATE_MAX);
		return NULL;
	}
	o = json_pack("{s:s,s:s?,s:s,s:s,s:s,s:O,s:I}", "device", device,
	    "device_name", name, "app", app, "session", session,
	    "collection", collection, "state", state, "since_ms",
	    json_integer_value(since));
	if (o != NULL && id != NULL &&
	    json_object_set_new(o, "id", json_string(id)) < 0) {
		json_decref(o);
		o = NULL;
	}
	if (o == NULL)
		snprintf(why, why_len, "out of memory");
	return o;
}

/* Replace device's list by list (taken) of n entries until expires_ms. */
static int
srv_presence_store(struct srv_presence *p, const char *device, char *list,
    int n, int64_t expires_ms)
{
	struct pdev *d;

	if ((d = pdev_find(p, device)) == NULL) {
		if (n == 0) {
			free(list);
			return 0;
		}
		if ((d = calloc(1, sizeof *d)) == NULL ||
		    (d->device = strdup(device)) == NULL) {
			free(d);
			free(list);
			return -ENOMEM;
		}
		TAILQ_INSERT_TAIL(&p->devs, d, entry);
	} else if (n == 0) {
		pdev_free(p, d);
		free(list);
		return 1;
	} else if (strcmp(d->list, list) == 0) {
		/* A refresh: a new expiry, nothing to tell. */
		d->expires_ms = expires_ms;
		d->seen = true;
		free(list);
		return 0;
	}
	p->total += n - d->n;
	free(d->list);
	d->list = list;
	d->n = n;
	d->expires_ms = expires_ms;
	d->seen = true;
	return 1;
}

int
srv_presence_put(struct srv_presence *p, const char *device,
    const char *body, size_t len, int64_t now_ms, char **ret_list,
    int64_t *ret_expires_ms, char *why, size_t why_len)
{
	json_t *root, *entries, *ttl, *e, *o, *out = NULL;
	const char *name = NULL;
	struct pdev *d;
	json_error_t jerr;
	char *text = NULL, *copy;
	int64_t expires;
	size_t i;
	int r = -EINVAL;

	if ((root = json_loadb(body, len, JSON_REJECT_DUPLICATES,
	    &jerr)) == NULL) {
		snprintf(why, why_len, "the body is not JSON: %s", jerr.text);
		return -EINVAL;
	}
	entries = json_object_get(root, "entries");
	ttl = json_object_get(root, "ttl_ms");
	if (!json_is_object(root) || !json_is_array(entries)) {
		snprintf(why, why_len, "the body must be an object with an "
		    "array \"entries\"");
		goto out;
	}
	if (!json_is_integer(ttl) || json_integer_value(ttl) <
	    SRV_PRESENCE_TTL_MIN || json_integer_value(ttl) >
	    SRV_PRESENCE_TTL_MAX) {
		snprintf(why, why_len, "ttl_ms must be an integer from %d to "
		    "%d", SRV_PRESENCE_TTL_MIN, SRV_PRESENCE_TTL_MAX);
		goto out;
	}
	if (json_object_get(root, "device_name") != NULL &&
	    !json_is_null(json_object_get(root, "device_name")) &&
	    (name = word(root, "device_name", SRV_PRESENCE_WORD_MAX)) ==
	    NULL) {
		snprintf(why, why_len, "device_name must be 1-%d printable "
		    "ASCII bytes", SRV_PRESENCE_WORD_MAX);
		goto out;
	}
	if (json_array_size(entries) > SRV_PRESENCE_PER_DEVICE) {
		snprintf(why, why_len, "%zu entries; at most %d per device",
		    json_array_size(entries), SRV_PRESENCE_PER_DEVICE);
		goto out;
	}
	d = pdev_find(p, device);
	if (p->total - (d != NULL ? d->n : 0) +
	    (int)json_array_size(entries) > SRV_PRESENCE_TOTAL) {
		snprintf(why, why_len, "the server holds %d presence entries, "
		    "its limit", SRV_PRESENCE_TOTAL);
		r = -ENOSPC;
		goto out;
	}
	if ((out = json_array()) == NULL)
		goto nomem;
	json_array_foreach(entries, i, e) {
		if ((o = entry_take(e, i, device, name, why, why_len)) ==
		    NULL)
			goto out;
		if (json_array_append_new(out, o) < 0)
			goto nomem;
	}
	if ((text = json_dumps(out, JSON_COMPACT | JSON_SORT_KEYS)) == NULL ||
	    (copy = strdup(text)) == NULL)
		goto nomem;
	expires = now_ms + json_integer_value(ttl);
	if ((r = srv_presence_store(p, device, copy,
	    (int)json_array_size(out), expires)) < 0)
		goto out;
	if (r > 0)
		srv_presence_bump(p);
	srv_presence_arm(p, now_ms);
	*ret_list = text;
	*ret_expires_ms = expires;
	text = NULL;
	r = 0;
	goto out;
nomem:
	snprintf(why, why_len, "out of memory");
	r = -ENOMEM;
out:
	free(text);
	json_decref(out);
	json_decref(root);
	return r;
}

int
srv_presence_import(struct srv_presence *p, const char *device,
    const char *list, int64_t expires_ms, int64_t now_ms)
{
	json_t *a;
	char *copy;
	size_t n = 0;
	int r;

	if (list != NULL && expires_ms > now_ms) {
		if ((a = json_loads(list, JSON_REJECT_DUPLICATES, NULL)) ==
		    NULL || !json_is_array(a)) {
			json_decref(a);
			return -EINVAL;
		}
		n = json_array_size(a);
		json_decref(a);
	}
	if (n == 0)
		copy = NULL;
	else if ((copy = strdup(list)) == NULL)
		return -ENOMEM;
	if ((r = srv_presence_store(p, device, copy, (int)n,
	    expires_ms)) < 0)
		return r;
	if (r > 0)
		srv_presence_bump(p);
	srv_presence_arm(p, now_ms);
	return 0;
}

void
srv_presence_import_begin(struct srv_presence *p)
{
	struct pdev *d;

	TAILQ_FOREACH(d, &p->devs, entry)
		d->seen = false;
}

void
srv_presence_import_end(struct srv_presence *p)
{
	struct pdev *d, *next;
	bool any = false;

	for (d = TAILQ_FIRST(&p->devs); d != NULL; d = next) {
		next = TAILQ_NEXT(d, entry);
		if (!d->seen) {
			pdev_free(p, d);
			any = true;
		}
	}
	if (any)
		srv_presence_bump(p);
	srv_presence_arm(p, util_now_ms());
}

int64_t
srv_presence_rev(const struct srv_presence *p)
{
	return p->rev;
}

char *
srv_presence_reply(struct srv_presence *p, const char *device)
{
	struct pdev *d;
	size_t len = 64, off, l;
	char *buf;
	bool first = true;

	TAILQ_FOREACH(d, &p->devs, entry)
		len += strlen(d->list) + 1;
	if ((buf = malloc(len)) == NULL)
		return NULL;
	off = (size_t)snprintf(buf, len, "{\"entries\":[");
	TAILQ_FOREACH(d, &p->devs, entry) {
		if (strcmp(d->device, device) == 0)
			continue;
		/* The array's elements, without its brackets. */
		l = strlen(d->list);
		if (l <= 2)
			continue;
		if (!first)
			buf[off++] = ',';
		memcpy(buf + off, d->list + 1, l - 2);
		off += l - 2;
		first = false;
	}
	snprintf(buf + off, len - off, "],\"rev\":%" PRId64 "}", p->rev);
	return buf;
}
