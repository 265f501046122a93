/*
 * watch: Watch subscriptions, each a streaming varlink call.
 *
 * A watcher has a cursor: the seq of the last change it was sent.  It is
 * either live (cursor == the committed head: new batches are sent to it as
 * they commit) or catching up (it reads the change log from the reader
 * connection in pages, as fast as its socket drains).  A live watcher whose
 * client reads too slowly (more than WATCH_OUTPUT_MAX bytes queued) drops
 * back to catching up, so memory per watcher is bounded and no event is
 * lost or sent twice: every event goes out exactly once, in seq order.
 *
 * Ownership: the module keeps a reference on each watcher's call until the
 * connection goes (cancel) or the daemon stops (watch_free finishes them).
 */
#ifndef FERRY_WATCH_H
#define FERRY_WATCH_H

#include <stdint.h>
#include <jansson.h>

#include "store.h"
#include "vl_server.h"

#define WATCH_OUTPUT_MAX	(4u * 1024 * 1024)
#define WATCH_PAGE		256

struct watch;

int	watch_new(struct store *st, struct watch **ret);
void	watch_free(struct watch *w);

/*
 * Start a watcher on call (made with "more").  collections is borrowed
 * (NULL or an array of valid collection names), since < 0 means from now
 * on.  Sends the ready reply, then any replay.  0 or -errno (the call has
 * then been answered with the error already).
 */
int	watch_add(struct watch *w, struct vl_call *call, json_t *collections,
	    int64_t since);

/*
 * The events of one committed batch.  The writer thread records what each
 * event says; the text of its reply parameters ({"event":{...}}, the body
 * spliced in as the stored JSON text) is made on the loop thread when the
 * first live watcher needs it, once whatever the number of watchers, and
 * never when nobody watches.
 */
struct watch_event {
	int64_t		 seq;
	char		*collection;
	char		*id;
	int64_t		 rev;
	int64_t		 version;
	bool		 deleted;
	enum store_origin origin;
	char		*body;		/* NULL: a tombstone */
	char		*text;		/* NULL until needed */
	size_t		 len;
};

struct watch_events {
	struct watch_event	*v;
	size_t			 n;
	size_t			 cap;
};

/* Append one event; body_text NULL for a tombstone.  0 or -ENOMEM. */
int	watch_events_add(struct watch_events *e, int64_t seq,
	    const char *collection, const char *id, int64_t rev,
	    int64_t version, bool deleted, enum store_origin origin,
	    const char *body_text);
/* Drop the events from the n-th on (those of an op that failed). */
void	watch_events_truncate(struct watch_events *e, size_t n);
/* Drop the events, keep the array for the next batch. */
void	watch_events_clear(struct watch_events *e);
void	watch_events_free(struct watch_events *e);

/* Tell live watchers about a committed batch (events in seq order). head
 * is the committed head seq. */
void	watch_notify(struct watch *w, struct watch_events *e,
	    int64_t head);
int	watch_count(const struct watch *w);

/*
 * Presence (Watch with presence: true).  watch_presence_enable marks the
 * watcher on call (one watch_add made) as wanting presence replies: 0, or
 * -ENOENT if call is no watcher.  watch_presence sends one presence reply
 * (text, len: the parameters {"presence":{...},"gone":..}) about
 * collection to the watcher on only (NULL: every presence watcher whose
 * collections include it).  Presence is not in the change log: a watcher
 * with more than WATCH_OUTPUT_MAX queued misses it (Who tells the rest).
 */
int	watch_presence_enable(struct watch *w, struct vl_call *call);
void	watch_presence(struct watch *w, struct vl_call *only,
	    const char *collection, const char *text, size_t len);

#endif
