/*
 * writer: the thread that applies batches of writes to the replica, so the
 * event loop never waits for SQLite or an fsync.
 *
 * The loop thread collects writes (ops) into the collecting batch; at the
 * end of the loop turn that added the first op, the batch is handed to the
 * writer thread if it is idle, otherwise it keeps collecting until the
 * batch in flight is done.  The writer runs every op of a batch inside one
 * transaction (BEGIN IMMEDIATE ... COMMIT, synchronous=FULL), then posts the
 * batch back.  On the loop thread each op is then completed by its own
 * callback, given to writer_add (the control module's answers a varlink
 * call, the sync engine's moves its pipeline on), and then the batch hook
 * given to writer_new runs once for the batch (watchers, status, sync,
 * held calls: the daemon's main wires it).  So replies go out only after
 * COMMIT returned OK, the
 * next batch is parsed and validated while this one is being made durable,
 * and at most one batch is in flight.
 *
 * An op's run function executes on the writer thread with the store's
 * writer connection; it may read and write the replica and must touch
 * nothing the loop thread uses.  Each op succeeds or fails alone: it runs
 * inside a savepoint of its own, and an op that fails (writer_op_fail) is
 * rolled back to it, its watch events dropped, and only its completion is
 * told of the failure; the other ops of the batch commit.  Only when the
 * transaction itself fails (BEGIN, COMMIT, or an error after which SQLite
 * dropped the whole transaction) does b->err say why and every op fail
 * with it, since nothing of the batch is durable then.
 *
 * A savepoint costs about 5 us of the writer thread per op (SQLite copies
 * each page the op touches into a statement journal), a third of what a
 * small Put costs.  So an op that can only fail before it writes, or by a
 * failure of the store itself, may set no_savepoint: the app's Put, Patch,
 * Delete and Resolve, which check everything first.  If such an op fails
 * having written nothing, it fails alone as above; if it fails after it
 * wrote (a store failure, or out of memory), its writes cannot be undone
 * alone and the batch fails as a whole.
 *
 * Inside a savepoint every statement's journal is truncated back to where
 * it began by walking SQLite's in-memory journal from its start, so a
 * large op pays for each statement in proportion to what it wrote before
 * (18% of ferryd's CPU in a push drain).  So a large op that must fail
 * alone (a sync step: a pulled page, a push's answers) may set alone: the
 * ops before it commit, it runs in a transaction of its own with no
 * savepoint (its failure rolls back that transaction, holding nothing
 * else), and the ops after it begin another.  A transaction that fails
 * fails the ops from its first to the end of the batch; the ones
 * committed before keep their outcome, and only committed ops' watch
 * events stay in the batch (b->err then says why the rest failed).
 */
#ifndef FERRY_WRITER_H
#define FERRY_WRITER_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/event.h>
#include <jansson.h>

#include "store.h"
#include "watch.h"

struct writer;
struct writer_batch;
struct writer_op;

typedef void (*writer_run_fn)(struct writer_batch *b, struct writer_op *op);
/*
 * An op's completion: runs on the loop thread once its batch is done, for
 * every op, in the order they were added; err is the op's own (0: its
 * writes are committed), arg the done_arg given to writer_add.  The op's
 * result fields are valid during the call only; op->arg is its maker's
 * to free.
 */
typedef void (*writer_op_done_fn)(struct writer_op *op, int err, void *arg);

struct writer_op {
	writer_run_fn	 run;
	writer_op_done_fn done;
	void		*done_arg;
	void		*arg;		/* the op's input, owned by its maker */
	/* Result, set by run: an error name and params, or reply text. */
	const char	*error;
	json_t		*error_params;
	char		*text;
	size_t		 len;
	/* 0, or why the op failed (-errno); its writes were rolled back. */
	int		 err;
	char		*reason;	/* owned; NULL: none given */
	/* Set by the maker after writer_add: run without a savepoint (see
	 * above); only for an op that fails before writing, or by the store. */
	bool		 no_savepoint;
	/* Set by the maker after writer_add: run in a transaction of its
	 * own, with no savepoint (see above). */
	bool		 alone;
};

struct writer_batch {
	struct writer		*w;		/* the writer it belongs to */
	uint64_t		 gen;
	struct store		*st;
	struct writer_op	*ops;
	size_t			 n;
	size_t			 cap;
	struct watch_events	 events;	/* filled by ops */
	int			 err;		/* 0, or why a transaction failed */
	char			 reason[256];
	size_t			 txn_op;	/* the open transaction's first op */
	size_t			 txn_ev;	/* and its first event */
	int64_t			 head;		/* committed head seq */
};

/*
 * The batch hook: called on the loop thread for each finished batch, in
 * order, after every op's own completion; b->err says whether the batch
 * committed (its events are then to be told to watchers).  NULL: none.
 */
typedef void (*writer_batch_fn)(struct writer_batch *b, void *arg);

/* The event base must have been made after evthread_use_pthreads(). */
int	writer_new(struct event_base *base, struct store *st,
	    writer_batch_fn hook, void *arg, struct writer **ret);
/*
 * Add an op to the collecting batch: run on the writer thread, then done
 * (done_arg; NULL: nothing to tell) on the loop thread, once, whether the
 * op or its batch failed or not (writer_drain and writer_free finish what
 * is in hand first).  Returns the op (its result fields zero) or NULL when
 * out of memory, in which case done is never called.  *ret_gen (may be
 * NULL) is the batch's generation.  The op stays valid until the next
 * writer_add.
 */
struct writer_op *writer_add(struct writer *w, writer_run_fn run, void *arg,
	    writer_op_done_fn done, void *done_arg, uint64_t *ret_gen);
/* The generation of the last batch whose done callback has run. */
uint64_t writer_done_gen(const struct writer *w);
/* Finish the batch in flight and the collecting one, blocking (shutdown). */
void	writer_drain(struct writer *w);
/* Drain, stop the thread and free.  Accepts NULL. */
void	writer_free(struct writer *w);

/*
 * From a run function: fail this op (err is -errno; reason is copied).  Its
 * writes and events are undone once run returns; the batch goes on.  The
 * first failure of an op is the one kept.
 */
void	writer_op_fail(struct writer_op *op, int err, const char *reason);

#endif
