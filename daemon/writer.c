/*
 * writer: batches of writes applied on a thread of their own; see writer.h.
 *
 * Hand-off: the loop thread owns the collecting batch; a batch handed
 * over is a job on a one-thread lib/jobq, which runs it on its thread and
 * then calls writer_batch_done on the loop thread: that completes each op
 * by its own callback, runs the batch hook, and submits the next batch if
 * one is collecting.  `busy` (loop thread
 * only) keeps at most one batch in flight.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "jobq.h"
#include "log.h"
#include "writer.h"

struct writer {
	struct event_base	*base;
	struct store		*st;
	writer_batch_fn		 hook;
	void			*hook_arg;
	struct event		*submit_ev;	/* end of the turn that added */
	struct jobq		*q;		/* the writer thread */
	struct writer_batch	*collecting;
	uint64_t		 next_gen;
	uint64_t		 done_gen;
	bool			 busy;		/* a batch is handed over */
};

static void
batch_free(struct writer_batch *b)
{
	size_t i;

	if (b == NULL)
		return;
	for (i = 0; i < b->n; i++) {
		json_decref(b->ops[i].error_params);
		free(b->ops[i].text);
		free(b->ops[i].reason);
	}
	free(b->ops);
	watch_events_free(&b->events);
	free(b);
}

void
writer_op_fail(struct writer_op *op, int err, const char *reason)
{
	if (op->err != 0)
		return;
	op->err = err < 0 ? err : -EIO;
	/* A caller may pass SQLite's message for an error that was not
	 * SQLite's (then it is empty): say the errno's instead. */
	op->reason = strdup(reason != NULL && *reason != '\0' ? reason :
	    strerror(-op->err));
}

/*
 * The open transaction failed: nothing of it is durable, so every op from
 * the first it holds to the end of the batch fails, with its own reason
 * if it had one, and their watch events go.  Ops that ran alone before it
 * (writer_op alone) are committed and keep their outcome.
 */
static void
batch_fail(struct writer_batch *b, int err, const char *reason)
{
	size_t i;

	b->err = err < 0 ? err : -EIO;
	snprintf(b->reason, sizeof b->reason, "%s", reason);
	for (i = b->txn_op; i < b->n; i++)
		writer_op_fail(&b->ops[i], b->err, b->reason);
	watch_events_truncate(&b->events, b->txn_ev);
}

/* The same, when the store says why: what, then SQLite's message. */
static void
batch_fail_store(struct writer_batch *b, int err, const char *what)
{
	char why[sizeof b->reason];

	snprintf(why, sizeof why, "%s%s", what, store_errmsg(b->st));
	batch_fail(b, err, why);
}

/*
 * An op without a savepoint (no_savepoint): if it failed having written
 * nothing it fails alone; if it wrote, or SQLite ended the transaction,
 * the batch fails with it.
 */
static bool
op_run_bare(struct writer_batch *b, struct writer_op *op, size_t nev)
{
	int64_t changes = store_changes(b->st);
	char why[sizeof b->reason];

	op->run(b, op);
	if (op->err == 0)
		return true;
	watch_events_truncate(&b->events, nev);
	if (store_changes(b->st) == changes && store_batch_open(b->st))
		return true;
	snprintf(why, sizeof why, "a write failed after it changed the "
	    "replica: %s", op->reason != NULL ? op->reason : "out of memory");
	batch_fail(b, op->err, why);
	return false;
}

/*
 * Run one op, inside its savepoint unless it has none.  A failed op is
 * undone alone; false if the whole batch has failed.
 */
static bool
op_run(struct writer_batch *b, struct writer_op *op)
{
	struct store_mark mark;
	size_t nev = b->events.n;
	int r;

	if (op->no_savepoint)
		return op_run_bare(b, op, nev);
	if ((r = store_savepoint(b->st, &mark)) < 0) {
		batch_fail_store(b, r, "cannot start a write: ");
		return false;
	}
	op->run(b, op);
	if (op->err == 0) {
		if ((r = store_release(b->st)) < 0) {
			batch_fail_store(b, r, "cannot keep a write: ");
			return false;
		}
		return true;
	}
	watch_events_truncate(&b->events, nev);
	if ((r = store_rollback_to(b->st, &mark)) < 0) {
		batch_fail_store(b, r, "cannot undo a failed write: ");
		return false;
	}
	return true;
}

/* Begin the transaction the next ops run in. */
static bool
txn_begin(struct writer_batch *b, size_t i)
{
	int r;

	b->txn_op = i;
	b->txn_ev = b->events.n;
	if ((r = store_begin(b->st)) < 0) {
		batch_fail_store(b, r, "");
		return false;
	}
	return true;
}

static bool
txn_commit(struct writer_batch *b)
{
	int r;

	if ((r = store_commit(b->st)) < 0) {
		batch_fail_store(b, r, "commit failed: ");
		store_rollback(b->st);
		return false;
	}
	return true;
}

/*
 * An op that runs alone: in a transaction of its own and without a
 * savepoint, committed if it succeeds, rolled back if it fails (which
 * undoes nothing else).  A failure of its transaction fails it alone.
 */
static void
op_run_alone(struct writer_batch *b, struct writer_op *op)
{
	size_t nev = b->events.n;
	int r;

	if ((r = store_begin(b->st)) < 0) {
		writer_op_fail(op, r, store_errmsg(b->st));
		return;
	}
	op->run(b, op);
	if (op->err == 0 && (r = store_commit(b->st)) < 0)
		writer_op_fail(op, r, store_errmsg(b->st));
	if (op->err != 0) {
		watch_events_truncate(&b->events, nev);
		store_rollback(b->st);
	}
}

/*
 * The writer thread's work on one batch: its ops in order, in one
 * transaction, except that each op that runs alone ends the transaction
 * before it and has one of its own.  A failed transaction fails the ops
 * from its first to the end of the batch.
 */
static void
writer_run(struct writer_batch *b)
{
	bool open = false;
	size_t i;

	for (i = 0; i < b->n; i++) {
		if (b->ops[i].alone) {
			if (open && !txn_commit(b))
				goto out;
			open = false;
			op_run_alone(b, &b->ops[i]);
			continue;
		}
		if (!open && !(open = txn_begin(b, i)))
			goto out;
		if (!op_run(b, &b->ops[i])) {
			store_rollback(b->st);
			goto out;
		}
	}
	if (open)
		(void)txn_commit(b);
out:
	b->head = store_head(b->st);
}

/* Writer thread: the batch's transaction. */
static void
writer_run_job(void *arg, size_t i)
{
	writer_run(arg);
}

/* A batch that will never be answered (the writer is freed). */
static void
writer_batch_drop(void *arg)
{
	batch_free(arg);
}

static void writer_submit(struct writer *w);

/* Loop thread: a batch is done; complete its ops, run the hook, and hand
 * over the next. */
static void
writer_batch_done(void *arg)
{
	struct writer_batch *b = arg;
	struct writer *w = b->w;
	size_t i;

	w->busy = false;
	w->done_gen = b->gen;
	if (b->err != 0)
		log_err("cannot write to the replica: %s", b->reason);
	else
		for (i = 0; i < b->n; i++)
			if (b->ops[i].err != 0)
				log_err("a write failed alone: %s",
				    b->ops[i].reason != NULL ?
				    b->ops[i].reason : "out of memory");
	/* Each op with its own outcome: one that failed was undone alone,
	 * the others are committed (unless the whole batch failed). */
	for (i = 0; i < b->n; i++)
		if (b->ops[i].done != NULL)
			b->ops[i].done(&b->ops[i], b->ops[i].err,
			    b->ops[i].done_arg);
	if (w->hook != NULL)
		w->hook(b, w->hook_arg);
	batch_free(b);
	writer_submit(w);
}

static void
writer_submit(struct writer *w)
{
	if (w->busy || w->collecting == NULL || w->collecting->n == 0)
		return;
	if (jobq_submit(w->q, NULL, writer_run_job, writer_batch_done,
	    writer_batch_drop, w->collecting) < 0)
		return;		/* kept collecting; the next add retries */
	w->busy = true;
	w->collecting = NULL;
}

static void
writer_submit_cb(evutil_socket_t fd, short what, void *arg)
{
	writer_submit(arg);
}

struct writer_op *
writer_add(struct writer *w, writer_run_fn run, void *arg,
    writer_op_done_fn done, void *done_arg, uint64_t *ret_gen)
{
	struct writer_batch *b = w->collecting;
	struct writer_op *op, *v;
	size_t cap;

	if (b == NULL) {
		if ((b = calloc(1, sizeof *b)) == NULL)
			return NULL;
		b->w = w;
		b->gen = ++w->next_gen;
		b->st = w->st;
		w->collecting = b;
		/* Runs after the callbacks already active in this turn. */
		event_active(w->submit_ev, 0, 0);
	}
	if (b->n == b->cap) {
		cap = b->cap ? b->cap * 2 : 256;
		if ((v = realloc(b->ops, cap * sizeof *v)) == NULL)
			return NULL;
		b->ops = v;
		b->cap = cap;
	}
	op = &b->ops[b->n++];
	memset(op, 0, sizeof *op);
	op->run = run;
	op->done = done;
	op->done_arg = done_arg;
	op->arg = arg;
	if (ret_gen != NULL)
		*ret_gen = b->gen;
	return op;
}

uint64_t
writer_done_gen(const struct writer *w)
{
	return w->done_gen;
}

void
writer_drain(struct writer *w)
{
	int round;

	/* At most two batches: the one in flight, then the collecting one;
	 * their done callbacks may queue more (held calls), so loop a bit.
	 * jobq_drain runs writer_batch_done, which hands over the next. */
	for (round = 0; round < 8; round++) {
		writer_submit(w);
		if (!w->busy)
			break;
		jobq_drain(w->q);
	}
}

int
writer_new(struct event_base *base, struct store *st, writer_batch_fn hook,
    void *arg, struct writer **ret)
{
	struct writer *w;
	int r;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return -ENOMEM;
	w->base = base;
	w->st = st;
	w->hook = hook;
	w->hook_arg = arg;
	if ((w->submit_ev = event_new(base, -1, 0, writer_submit_cb, w)) ==
	    NULL) {
		writer_free(w);
		return -ENOMEM;
	}
	if ((r = jobq_new(base, 1, &w->q)) < 0) {
		writer_free(w);
		return r;
	}
	*ret = w;
	return 0;
}

void
writer_free(struct writer *w)
{
	if (w == NULL)
		return;
	if (w->q != NULL) {
		writer_drain(w);
		jobq_free(w->q);
	}
	batch_free(w->collecting);
	if (w->submit_ev != NULL)
		event_free(w->submit_ev);
	free(w);
}
