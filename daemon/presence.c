/*
 * presence: the in-memory table of who is present; see presence.h.
 *
 * Entries sit on two lists (local, remote) and each local one points at
 * its connection's record (struct pconn: the app's name, its entry count,
 * its rate bucket and its coalescing clock).  The lists are short (the
 * bounds keep them at a few thousand), so lookups are linear scans.
 *
 * Invariants: an entry is "announced" once the emit callback has seen it,
 * and only an announced entry is ever emitted as gone, so a watcher never
 * hears of a departure of something it was never told had arrived.  A
 * dirty entry holds a state the callback has not seen yet; its
 * connection is dirty too, and presence_tick emits it when the
 * connection's coalescing clock allows.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "names.h"
#include "presence.h"
#include "util.h"

struct pconn {
	unsigned long		 conn;
	char			*app;
	int			 n;		/* entries it holds */
	double			 tokens;	/* rate bucket */
	int64_t			 refill_at;
	int64_t			 next_emit;	/* coalescing clock */
	bool			 dirty;
	TAILQ_ENTRY(pconn)	 entry;
};

struct pentry {
	struct presence_entry	 e;
	struct pconn		*pc;		/* local: its connection */
	int64_t			 expires;	/* local: monotonic ms */
	bool			 announced;
	bool			 dirty;
	bool			 seen;		/* remote: in the last list */
	TAILQ_ENTRY(pentry)	 entry;
};

TAILQ_HEAD(pentry_list, pentry);

struct presence {
	struct presence_limits	 lim;
	char			*device;
	char			*device_name;
	presence_emit_fn	 emit;
	void			*arg;
	struct pentry_list	 local;
	struct pentry_list	 remote;
	int			 nlocal;
	int			 nremote;
	uint64_t		 gen;
	TAILQ_HEAD(, pconn)	 conns;
};

void
presence_limits_default(struct presence_limits *lim, int64_t ttl_ms)
{
	lim->ttl_ms = ttl_ms;
	lim->state_max = PRESENCE_STATE_MAX;
	lim->per_conn = PRESENCE_PER_CONN;
	lim->total = PRESENCE_TOTAL;
	lim->rate = PRESENCE_RATE;
	lim->coalesce_ms = PRESENCE_COALESCE_MS;
}

static int
dup_opt(const char *s, char **ret)
{
	*ret = NULL;
	if (s != NULL && (*ret = strdup(s)) == NULL)
		return -ENOMEM;
	return 0;
}

int
presence_new(const struct presence_limits *lim, const char *device,
    const char *device_name, presence_emit_fn emit, void *arg,
    struct presence **ret)
{
	struct presence *p;

	if ((p = calloc(1, sizeof *p)) == NULL)
		return -ENOMEM;
	p->lim = *lim;
	p->emit = emit;
	p->arg = arg;
	TAILQ_INIT(&p->local);
	TAILQ_INIT(&p->remote);
	TAILQ_INIT(&p->conns);
	if (dup_opt(device, &p->device) < 0 ||
	    dup_opt(device_name, &p->device_name) < 0) {
		presence_free(p);
		return -ENOMEM;
	}
	*ret = p;
	return 0;
}

static void
entry_free(struct pentry *pe)
{
	if (pe == NULL)
		return;
	free(pe->e.device);
	free(pe->e.device_name);
	free(pe->e.app);
	free(pe->e.session);
	free(pe->e.collection);
	free(pe->e.id);
	free(pe->e.state);
	free(pe);
}

static void
pconn_free(struct presence *p, struct pconn *pc)
{
	TAILQ_REMOVE(&p->conns, pc, entry);
	free(pc->app);
	free(pc);
}

void
presence_free(struct presence *p)
{
	struct pentry *pe;
	struct pconn *pc;

	if (p == NULL)
		return;
	while ((pe = TAILQ_FIRST(&p->local)) != NULL) {
		TAILQ_REMOVE(&p->local, pe, entry);
		entry_free(pe);
	}
	while ((pe = TAILQ_FIRST(&p->remote)) != NULL) {
		TAILQ_REMOVE(&p->remote, pe, entry);
		entry_free(pe);
	}
	while ((pc = TAILQ_FIRST(&p->conns)) != NULL)
		pconn_free(p, pc);
	free(p->device);
	free(p->device_name);
	free(p);
}

static bool
same_opt(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a == b;
	return strcmp(a, b) == 0;
}

/* Tell the callback; a local change also moves the generation. */
static void
emit(struct presence *p, struct pentry *pe, bool gone)
{
	if (gone && !pe->announced)
		return;
	pe->announced = true;
	pe->dirty = false;
	if (pe->e.local)
		p->gen++;
	if (p->emit != NULL)
		p->emit(&pe->e, gone, p->arg);
}

static void
local_remove(struct presence *p, struct pentry *pe)
{
	emit(p, pe, true);
	TAILQ_REMOVE(&p->local, pe, entry);
	pe->pc->n--;
	p->nlocal--;
	entry_free(pe);
}

static struct pconn *
pconn_get(struct presence *p, unsigned long conn, const char *app,
    int64_t now)
{
	struct pconn *pc;

	TAILQ_FOREACH(pc, &p->conns, entry)
		if (pc->conn == conn)
			return pc;
	if ((pc = calloc(1, sizeof *pc)) == NULL)
		return NULL;
	if ((pc->app = strdup(app != NULL ? app : "unknown")) == NULL) {
		free(pc);
		return NULL;
	}
	pc->conn = conn;
	pc->tokens = p->lim.rate;
	pc->refill_at = now;
	pc->next_emit = now;
	TAILQ_INSERT_TAIL(&p->conns, pc, entry);
	return pc;
}

/* Take one token from the connection's bucket: false if it is empty. */
static bool
pconn_take(struct presence *p, struct pconn *pc, int64_t now)
{
	if (now > pc->refill_at) {
		pc->tokens += (double)(now - pc->refill_at) * p->lim.rate /
		    1000.0;
		if (pc->tokens > p->lim.rate)
			pc->tokens = p->lim.rate;
		pc->refill_at = now;
	}
	if (pc->tokens < 1.0)
		return false;
	pc->tokens -= 1.0;
	return true;
}

static struct pentry *
local_find(struct presence *p, unsigned long conn, const char *collection,
    const char *id)
{
	struct pentry *pe;

	TAILQ_FOREACH(pe, &p->local, entry)
		if (pe->pc->conn == conn &&
		    strcmp(pe->e.collection, collection) == 0 &&
		    same_opt(pe->e.id, id))
			return pe;
	return NULL;
}

static struct pentry *
local_new(struct presence *p, struct pconn *pc, const char *collection,
    const char *id)
{
	struct pentry *pe;
	char session[64];

	if ((pe = calloc(1, sizeof *pe)) == NULL)
		return NULL;
	/* Unique per connection of this device, and across devices. */
	snprintf(session, sizeof session, "%.8s:%lu", p->device, pc->conn);
	if (dup_opt(p->device, &pe->e.device) < 0 ||
	    dup_opt(p->device_name, &pe->e.device_name) < 0 ||
	    dup_opt(pc->app, &pe->e.app) < 0 ||
	    dup_opt(session, &pe->e.session) < 0 ||
	    dup_opt(collection, &pe->e.collection) < 0 ||
	    dup_opt(id, &pe->e.id) < 0) {
		entry_free(pe);
		return NULL;
	}
	pe->e.local = true;
	pe->e.since_ms = util_now_ms();
	pe->pc = pc;
	return pe;
}

static int
limit(const char **ret_limit, int64_t *ret_max, const char *name,
    int64_t max)
{
	if (ret_limit != NULL)
		*ret_limit = name;
	if (ret_max != NULL)
		*ret_max = max;
	return -EDQUOT;
}

int
presence_set(struct presence *p, unsigned long conn, const char *app,
    const char *collection, const char *id, const char *state, int64_t now,
    const char **ret_limit, int64_t *ret_max)
{
	struct pconn *pc;
	struct pentry *pe;
	char *text;
	bool fresh = false;

	if ((pc = pconn_get(p, conn, app, now)) == NULL)
		return -ENOMEM;
	if (!pconn_take(p, pc, now))
		return limit(ret_limit, ret_max, "presence_rate",
		    p->lim.rate);
	if (state != NULL && strlen(state) > p->lim.state_max)
		return -EMSGSIZE;
	pe = local_find(p, conn, collection, id);
	if (state == NULL) {
		if (pe != NULL)
			local_remove(p, pe);
		return 0;
	}
	if (pe == NULL) {
		if (pc->n >= p->lim.per_conn)
			return limit(ret_limit, ret_max, "presence_entries",
			    p->lim.per_conn);
		if (p->nlocal >= p->lim.total)
			return limit(ret_limit, ret_max, "presence_total",
			    p->lim.total);
		if ((pe = local_new(p, pc, collection, id)) == NULL)
			return -ENOMEM;
		fresh = true;
	}
	if (pe->e.state == NULL || strcmp(pe->e.state, state) != 0) {
		if ((text = strdup(state)) == NULL) {
			if (fresh)
				entry_free(pe);
			return -ENOMEM;
		}
		free(pe->e.state);
		pe->e.state = text;
		pe->dirty = true;
	}
	pe->expires = now + p->lim.ttl_ms;
	if (fresh) {
		TAILQ_INSERT_TAIL(&p->local, pe, entry);
		pc->n++;
		p->nlocal++;
	}
	if (!pe->dirty)
		return 0;	/* a refresh: the same state, a new TTL */
	if (now >= pc->next_emit) {
		emit(p, pe, false);
		pc->next_emit = now + p->lim.coalesce_ms;
	} else
		pc->dirty = true;
	return 0;
}

void
presence_conn_gone(struct presence *p, unsigned long conn)
{
	struct pentry *pe, *next;
	struct pconn *pc;

	for (pe = TAILQ_FIRST(&p->local); pe != NULL; pe = next) {
		next = TAILQ_NEXT(pe, entry);
		if (pe->pc->conn == conn)
			local_remove(p, pe);
	}
	TAILQ_FOREACH(pc, &p->conns, entry)
		if (pc->conn == conn) {
			pconn_free(p, pc);
			break;
		}
}

static int64_t
earliest(int64_t a, int64_t b)
{
	if (a < 0)
		return b;
	return b < a ? b : a;
}

int64_t
presence_tick(struct presence *p, int64_t now)
{
	struct pentry *pe, *next;
	struct pconn *pc;
	int64_t due = -1;

	for (pe = TAILQ_FIRST(&p->local); pe != NULL; pe = next) {
		next = TAILQ_NEXT(pe, entry);
		if (pe->expires <= now)
			local_remove(p, pe);
	}
	TAILQ_FOREACH(pc, &p->conns, entry) {
		if (!pc->dirty)
			continue;
		if (now < pc->next_emit) {
			due = earliest(due, pc->next_emit);
			continue;
		}
		TAILQ_FOREACH(pe, &p->local, entry)
			if (pe->pc == pc && pe->dirty)
				emit(p, pe, false);
		pc->dirty = false;
		pc->next_emit = now + p->lim.coalesce_ms;
	}
	TAILQ_FOREACH(pe, &p->local, entry)
		due = earliest(due, pe->expires);
	return due;
}

/* --- remote entries --- */

static struct pentry *
remote_find(struct presence *p, const char *device, const char *session,
    const char *collection, const char *id)
{
	struct pentry *pe;

	TAILQ_FOREACH(pe, &p->remote, entry)
		if (strcmp(pe->e.device, device) == 0 &&
		    strcmp(pe->e.session, session) == 0 &&
		    strcmp(pe->e.collection, collection) == 0 &&
		    same_opt(pe->e.id, id))
			return pe;
	return NULL;
}

/*
 * One element of a remote list, checked: 1 taken, 0 skipped (malformed,
 * ours, over the bound), -ENOMEM.
 */
static int
remote_take(struct presence *p, json_t *o)
{
	const char *device, *name, *app, *session, *collection, *id;
	struct pentry *pe;
	json_t *state, *since;
	char *text, *dname;
	bool changed;

	device = json_string_value(json_object_get(o, "device"));
	name = json_string_value(json_object_get(o, "device_name"));
	app = json_string_value(json_object_get(o, "app"));
	session = json_string_value(json_object_get(o, "session"));
	collection = json_string_value(json_object_get(o, "collection"));
	id = json_string_value(json_object_get(o, "id"));
	state = json_object_get(o, "state");
	since = json_object_get(o, "since_ms");
	if (device == NULL || app == NULL || session == NULL ||
	    !json_is_object(state) || !json_is_integer(since) ||
	    names_check_collection(collection, NULL) < 0 ||
	    (id != NULL && names_check_id(id, NULL) < 0) ||
	    (p->device != NULL && strcmp(device, p->device) == 0))
		return 0;
	text = json_dumps(state, JSON_COMPACT | JSON_SORT_KEYS);
	if (text == NULL)
		return -ENOMEM;
	if (strlen(text) > p->lim.state_max) {
		free(text);
		return 0;
	}
	if ((pe = remote_find(p, device, session, collection, id)) != NULL) {
		changed = strcmp(pe->e.state, text) != 0 ||
		    !same_opt(pe->e.device_name, name);
		pe->seen = true;
		if (!changed) {
			free(text);
			return 1;
		}
		if (dup_opt(name, &dname) < 0) {
			free(text);
			return -ENOMEM;
		}
		free(pe->e.state);
		free(pe->e.device_name);
		pe->e.state = text;
		pe->e.device_name = dname;
		emit(p, pe, false);
		return 1;
	}
	if (p->nremote >= PRESENCE_REMOTE_MAX ||
	    (pe = calloc(1, sizeof *pe)) == NULL) {
		free(text);
		return p->nremote >= PRESENCE_REMOTE_MAX ? 0 : -ENOMEM;
	}
	pe->e.state = text;
	if (dup_opt(device, &pe->e.device) < 0 ||
	    dup_opt(name, &pe->e.device_name) < 0 ||
	    dup_opt(app, &pe->e.app) < 0 ||
	    dup_opt(session, &pe->e.session) < 0 ||
	    dup_opt(collection, &pe->e.collection) < 0 ||
	    dup_opt(id, &pe->e.id) < 0) {
		entry_free(pe);
		return -ENOMEM;
	}
	pe->e.since_ms = json_integer_value(since);
	pe->seen = true;
	TAILQ_INSERT_TAIL(&p->remote, pe, entry);
	p->nremote++;
	emit(p, pe, false);
	return 1;
}

int
presence_remote_replace(struct presence *p, json_t *list)
{
	struct pentry *pe, *next;
	json_t *o;
	size_t i;
	int r, skipped = 0;

	TAILQ_FOREACH(pe, &p->remote, entry)
		pe->seen = false;
	json_array_foreach(list, i, o) {
		if ((r = remote_take(p, o)) < 0)
			return r;
		if (r == 0)
			skipped++;
	}
	for (pe = TAILQ_FIRST(&p->remote); pe != NULL; pe = next) {
		next = TAILQ_NEXT(pe, entry);
		if (pe->seen)
			continue;
		emit(p, pe, true);
		TAILQ_REMOVE(&p->remote, pe, entry);
		p->nremote--;
		entry_free(pe);
	}
	return skipped;
}

/* --- reading --- */

json_t *
presence_entry_json(const struct presence_entry *e)
{
	json_t *o, *state;

	if ((state = json_loads(e->state, 0, NULL)) == NULL)
		return NULL;
	o = json_pack("{s:s,s:s?,s:s,s:s,s:o,s:I,s:b,s:s}",
	    "device", e->device, "device_name", e->device_name, "app", e->app,
	    "collection", e->collection, "state", state,
	    "since_ms", (json_int_t)e->since_ms, "local", e->local,
	    "session", e->session);
	if (o != NULL && e->device_name == NULL &&
	    json_object_set_new(o, "device_name", json_null()) < 0)
		goto fail;
	if (o != NULL && e->id != NULL &&
	    json_object_set_new(o, "id", json_string(e->id)) < 0)
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

static bool
entry_in(const struct presence_entry *e, const char *collection,
    const char *id)
{
	if (collection != NULL && strcmp(e->collection, collection) != 0)
		return false;
	return id == NULL || (e->id != NULL && strcmp(e->id, id) == 0);
}

static int
who_add(json_t *a, const struct pentry_list *l, const char *collection,
    const char *id)
{
	struct pentry *pe;
	json_t *o;

	TAILQ_FOREACH(pe, l, entry) {
		if (!entry_in(&pe->e, collection, id))
			continue;
		if ((o = presence_entry_json(&pe->e)) == NULL ||
		    json_array_append_new(a, o) < 0)
			return -ENOMEM;
	}
	return 0;
}

json_t *
presence_who(struct presence *p, const char *collection, const char *id)
{
	json_t *a;

	if ((a = json_array()) == NULL)
		return NULL;
	if (who_add(a, &p->local, collection, id) < 0 ||
	    who_add(a, &p->remote, collection, id) < 0) {
		json_decref(a);
		return NULL;
	}
	return a;
}

json_t *
presence_local_json(struct presence *p)
{
	struct pentry *pe;
	json_t *a, *o;

	if ((a = json_array()) == NULL)
		return NULL;
	TAILQ_FOREACH(pe, &p->local, entry) {
		/* What others were not told yet, they are not sent yet. */
		if (!pe->announced)
			continue;
		if ((o = presence_entry_json(&pe->e)) == NULL ||
		    json_array_append_new(a, o) < 0) {
			json_decref(a);
			return NULL;
		}
		json_object_del(o, "local");
	}
	return a;
}

uint64_t
presence_local_gen(const struct presence *p)
{
	return p->gen;
}

int
presence_local_count(const struct presence *p)
{
	return p->nlocal;
}

int
presence_remote_count(const struct presence *p)
{
	return p->nremote;
}

bool
presence_knows_conn(const struct presence *p, unsigned long conn)
{
	const struct pconn *pc;

	TAILQ_FOREACH(pc, &p->conns, entry)
		if (pc->conn == conn)
			return true;
	return false;
}
