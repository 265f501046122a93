/*
 * presence: ferryd's table of who is present where (DESIGN "Presence"),
 * in memory only.  Nothing here is ever written to the replica, its change
 * log, the outbox or the audit trail; a restart forgets it all.
 *
 * Two kinds of entries: local ones, each owned by one IPC connection (an
 * app on this machine) and keyed by (connection, collection, id); and
 * remote ones, the other devices' entries as the remote last listed them,
 * keyed by (device, session, collection, id) and replaced as a whole by
 * each list (presence_remote_replace).
 *
 * A local entry ends when its connection goes (presence_conn_gone), when
 * its app clears it, or ttl_ms after it was last set (presence_tick).
 * Bounds, each refused with its name: the state's size (state_max bytes of
 * compact JSON), entries per connection (per_conn), local entries in all
 * (total), calls per second per connection (rate, a token bucket holding
 * one second's worth).  Updates are coalesced per connection: the table
 * holds the latest state at once (Who sees it), but the emit callback (the
 * watchers, the remote) hears of a connection's changes at most once
 * every coalesce_ms, each entry with its latest state; a first update
 * after a quiet spell is emitted at once.
 *
 * The module does no I/O and keeps no timer: the caller passes the
 * monotonic time in milliseconds and calls presence_tick when it says.
 * Not thread-safe: the loop thread only.
 */
#ifndef FERRY_PRESENCE_H
#define FERRY_PRESENCE_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#define PRESENCE_STATE_MAX	1024
#define PRESENCE_PER_CONN	16
#define PRESENCE_TOTAL		256	/* the remote's bound per device */
#define PRESENCE_RATE		100	/* calls a second, per connection */
#define PRESENCE_COALESCE_MS	50
#define PRESENCE_REMOTE_MAX	4096

struct presence;

struct presence_limits {
	int64_t		ttl_ms;
	size_t		state_max;
	int		per_conn;
	int		total;
	int		rate;
	int64_t		coalesce_ms;
};

/* One entry, as the emit callback and iterators see it (read only). */
struct presence_entry {
	char		*device;
	char		*device_name;	/* NULL: none */
	char		*app;
	char		*session;
	char		*collection;
	char		*id;		/* NULL: the whole collection */
	char		*state;		/* compact JSON object text */
	int64_t		 since_ms;	/* Unix ms */
	bool		 local;
};

/*
 * An entry appeared or changed (gone false) or went (gone true).  Called
 * from inside presence_set, presence_conn_gone, presence_tick and
 * presence_remote_replace; the entry is valid during the call only and
 * the callback must not call back into the module.
 */
typedef void (*presence_emit_fn)(const struct presence_entry *e, bool gone,
    void *arg);

/* The limits ferryd uses, with ttl_ms as given. */
void	presence_limits_default(struct presence_limits *lim, int64_t ttl_ms);

/* device and device_name (NULL: none) are copied.  0 or -ENOMEM. */
int	presence_new(const struct presence_limits *lim, const char *device,
	    const char *device_name, presence_emit_fn emit, void *arg,
	    struct presence **ret);
/* Frees every entry without emitting.  Accepts NULL. */
void	presence_free(struct presence *p);

/*
 * Set connection conn's entry at (collection, id) (id NULL: the whole
 * collection) to state, compact JSON object text (NULL: clear it).  app is
 * the program's name, taken on the connection's first call.  Names must
 * have been checked.  0, or:
 *   -EMSGSIZE  state is over state_max bytes;
 *   -EDQUOT    a bound: *ret_limit names it ("presence_entries",
 *              "presence_total" or "presence_rate") and *ret_max is its
 *              value;
 *   -ENOMEM.
 * Nothing changes on failure.  A refused call still counts toward rate.
 */
int	presence_set(struct presence *p, unsigned long conn, const char *app,
	    const char *collection, const char *id, const char *state,
	    int64_t now, const char **ret_limit, int64_t *ret_max);
/* Connection conn closed: its entries go at once (emitted as gone). */
void	presence_conn_gone(struct presence *p, unsigned long conn);
/*
 * Expire local entries past their TTL and emit coalesced updates that are
 * due.  Returns the monotonic ms at which it has work next, or -1 if
 * nothing is pending.
 */
int64_t	presence_tick(struct presence *p, int64_t now);

/*
 * Replace the remote entries by list, a JSON array of Presence objects as
 * the remote sends them ({device, device_name?, app, session, collection,
 * id?, state, since_ms}); entries of this device and malformed ones are
 * skipped (counted in the return), at most PRESENCE_REMOTE_MAX are kept.
 * Emits what appeared, changed or went.  n skipped, or -ENOMEM.  list
 * NULL: drop them all (the remote cannot be reached).
 */
int	presence_remote_replace(struct presence *p, json_t *list);

/*
 * Who: a new JSON array of Presence objects, local and remote, in
 * collection (NULL: all) and id (NULL: any); NULL when out of memory.
 */
json_t	*presence_who(struct presence *p, const char *collection,
	    const char *id);
/* One entry as a Presence object (a new reference), NULL on ENOMEM. */
json_t	*presence_entry_json(const struct presence_entry *e);
/* The local entries as the remote takes them (a new array), or NULL. */
json_t	*presence_local_json(struct presence *p);
/* Bumped whenever a change to a local entry is emitted. */
uint64_t presence_local_gen(const struct presence *p);
int	presence_local_count(const struct presence *p);
int	presence_remote_count(const struct presence *p);
/* Whether connection conn has called presence_set before. */
bool	presence_knows_conn(const struct presence *p, unsigned long conn);

#endif
