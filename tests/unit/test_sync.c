/*
 * test_sync: the sync engine's push and pull edge cases, driven
 * deterministically through its transport seam (issue 8).
 *
 * The promises it guards: an acknowledged write is never lost, never
 * applied twice, and never turned into a conflict that is not real,
 * whatever order the remote's answers come in.  Each case below was a
 * break, or is a path that only a fault proxy and luck reached before:
 *
 * - own change pulled back before the push reply: the pulled page is the
 *   answer (version and base move as "applied" would move them); the late
 *   push reply, "applied" or "duplicate", must not settle the row again
 *   (a later local write on the document is kept, on top of version 1),
 *   and no conflict appears;
 * - reply lost after the server applied: the retry sends the very same
 *   record bytes, "duplicate" settles it, no conflict;
 * - a page whose last_seq (read ahead as the next page's hint) disagrees
 *   with its changes: nothing skipped, nothing applied twice, the cursor
 *   ends at the true last seq;
 * - 401 in the middle of a push of two requests, or to a pull while a
 *   push is out: paused with the reason, the unsent rows stay in the
 *   outbox, nothing more is sent, Sync(wait) callers are answered, and a
 *   Sync call leaves paused and drains everything;
 * - the engine's states as seen through its changed callback: start ->
 *   idle, write -> syncing -> idle, transport error -> offline -> (retry)
 *   -> syncing -> idle.
 *
 * Real pieces: a replica on a temporary SQLite file, the writer thread,
 * the engine's parser and encoder threads, a libevent loop.  Only the
 * remote is scripted: the fake transport records each request and the
 * test decides when and what each one answers, or that it answers nothing.
 * Every wait is bounded (WAIT_SECONDS).
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <jansson.h>
#include <sodium.h>

#include "keys.h"
#include "log.h"
#include "store.h"
#include "sync.h"
#include "watch.h"
#include "writer.h"

#define WAIT_SECONDS	20
#define MAX_REQS	64
#define MAX_STATES	64
#define MAX_PUTS	1100
#define MAX_CALLS	4
#define OTHER_DEVICE	"b3RoZXItZGV2aWNlLW5vdC1vdXJzLWF0LWFsbC0wMDA"

/* A request the engine started; answered (or cancelled) at most once. */
struct sync_req {
	char		 method[8];
	char		 path[256];
	char		*body;
	size_t		 len;
	sync_req_done_fn cb;
	void		*arg;
	bool		 done;		/* answered or cancelled */
	bool		 cancelled;
};

/* One local write, run on the writer thread. */
struct put {
	struct fixture	*f;
	char		 id[32];
	char		 body[64];
	bool		 done;
	int		 err;
};

/* A Sync call, as the engine sees it: an opaque pointer it hands back. */
struct call {
	bool		 answered;
	char		 error[64];
	char		 reason[256];
};

struct fixture {
	char			 dir[64];
	char			 path[128];
	struct store		*st;
	struct event_base	*base;
	struct event		*tick;
	struct writer		*w;
	struct keys		*keys;
	struct sync		*sy;
	struct sync_req		 reqs[MAX_REQS];
	size_t			 nreqs;
	enum sync_state_id	 states[MAX_STATES];
	size_t			 nstates;
	struct put		 puts[MAX_PUTS];
	size_t			 nputs;
	struct call		 calls[MAX_CALLS];
};

/* --- the scripted transport --- */

static int
fake_start(void *ctx, const char *method, const char *path_query,
    const char *body, size_t len, long timeout_ms, long connect_timeout_ms,
    sync_req_done_fn cb, void *arg, struct sync_req **ret)
{
	struct fixture *f = ctx;
	struct sync_req *rq;

	assert_true(f->nreqs < MAX_REQS);
	assert_true(timeout_ms > 0);
	rq = &f->reqs[f->nreqs++];
	memset(rq, 0, sizeof *rq);
	snprintf(rq->method, sizeof rq->method, "%s", method);
	snprintf(rq->path, sizeof rq->path, "%s", path_query);
	if (body != NULL) {
		assert_non_null(rq->body = malloc(len + 1));
		memcpy(rq->body, body, len);
		rq->body[len] = '\0';
		rq->len = len;
	}
	rq->cb = cb;
	rq->arg = arg;
	if (ret != NULL)
		*ret = rq;
	return 0;
}

static void
fake_cancel(void *ctx, struct sync_req *rq)
{
	assert_false(rq->done);
	rq->done = rq->cancelled = true;
}

/* Answer request rq with status and body (as the server would). */
static void
answer(struct sync_req *rq, long status, const char *body)
{
	struct http_result res;

	assert_false(rq->done);
	rq->done = true;
	memset(&res, 0, sizeof res);
	res.status = status;
	res.body = body;
	res.len = strlen(body);
	rq->cb(&res, rq->arg);
}

/* The transport fails (connection reset: the server may have applied). */
static void
answer_reset(struct sync_req *rq)
{
	struct http_result res;

	assert_false(rq->done);
	rq->done = true;
	memset(&res, 0, sizeof res);
	res.err = -ECONNRESET;
	res.errmsg = "Connection reset by peer";
	rq->cb(&res, rq->arg);
}

/* --- the loop, bounded --- */

static void
timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	*(bool *)arg = true;
}

static void
tick_cb(evutil_socket_t fd, short what, void *arg)
{
}

/* Run the loop until cond holds; fail the test after WAIT_SECONDS. */
#define WAIT_FOR(f, cond) do {						\
	struct timeval tv_ = { WAIT_SECONDS, 0 };			\
	struct event *timer_;						\
	bool timed_out_ = false;					\
									\
	assert_non_null(timer_ = evtimer_new((f)->base, timeout_cb,	\
	    &timed_out_));						\
	evtimer_add(timer_, &tv_);					\
	while (!(cond) && !timed_out_)					\
		event_base_loop((f)->base, EVLOOP_ONCE);		\
	event_free(timer_);						\
	if (!(cond))							\
		fail_msg("timed out waiting for: %s", #cond);		\
} while (0)

/* The first request not yet answered that is method on a path starting
 * with prefix, or NULL. */
static struct sync_req *
open_req(struct fixture *f, const char *method, const char *prefix)
{
	size_t i;

	for (i = 0; i < f->nreqs; i++)
		if (!f->reqs[i].done &&
		    strcmp(f->reqs[i].method, method) == 0 &&
		    strncmp(f->reqs[i].path, prefix, strlen(prefix)) == 0)
			return &f->reqs[i];
	return NULL;
}

static struct sync_req *
wait_req(struct fixture *f, const char *method, const char *prefix)
{
	WAIT_FOR(f, open_req(f, method, prefix) != NULL);
	return open_req(f, method, prefix);
}

/* The open pull request, answered with no changes up to last_seq. */
static void
answer_pull_empty(struct fixture *f, int64_t since, int64_t last_seq)
{
	char prefix[64], page[64];

	snprintf(prefix, sizeof prefix, "/v1/changes?since=%" PRId64 "&",
	    since);
	snprintf(page, sizeof page, "{\"changes\":[],\"last_seq\":%" PRId64
	    "}", last_seq);
	answer(wait_req(f, "GET", prefix), 200, page);
}

/* --- the engine's callbacks --- */

static void
changed_cb(void *arg)
{
	struct fixture *f = arg;
	enum sync_state_id s = sync_state_id(f->sy);

	if (f->nstates > 0 && f->states[f->nstates - 1] == s)
		return;
	assert_true(f->nstates < MAX_STATES);
	f->states[f->nstates++] = s;
}

static void
reply_cb(void *arg, struct vl_call *vc, const char *error, json_t *params)
{
	struct call *c = (struct call *)vc;
	const char *reason;

	assert_false(c->answered);
	c->answered = true;
	snprintf(c->error, sizeof c->error, "%s", error != NULL ? error : "");
	reason = json_string_value(json_object_get(params, "reason"));
	snprintf(c->reason, sizeof c->reason, "%s",
	    reason != NULL ? reason : "");
}

/* The daemon's batch hook, reduced to what sync needs: push soon. */
static void
batch_cb(struct writer_batch *b, void *arg)
{
	struct fixture *f = arg;

	if (b->err == 0 && b->events.n > 0 && f->sy != NULL)
		sync_kick(f->sy);
}

/* --- local writes --- */

static void
put_run(struct writer_batch *b, struct writer_op *op)
{
	struct put *p = op->arg;
	struct store_doc cur;
	int64_t seq, rev;
	int r;

	memset(&cur, 0, sizeof cur);
	r = store_doc_get(b->st, STORE_WRITER, "notes", p->id, &cur);
	if (r < 0 && r != -ENOENT) {
		writer_op_fail(op, r, store_errmsg(b->st));
		return;
	}
	r = store_write_local(b->st, &cur, "notes", p->id, p->body,
	    STORE_ORIGIN_LOCAL, 1000, &seq, &rev);
	store_doc_clear(&cur);
	if (r == 0)
		r = watch_events_add(&b->events, seq, "notes", p->id, rev, 0,
		    false, STORE_ORIGIN_LOCAL, p->body);
	if (r < 0)
		writer_op_fail(op, r, store_errmsg(b->st));
}

static void
put_done(struct writer_op *op, int err, void *arg)
{
	struct put *p = arg;

	p->done = true;
	p->err = err;
}

/* Write n documents id0.. (or the one named id when n == 1 and id is
 * given) in one batch and wait until it committed. */
static void
put_docs(struct fixture *f, const char *id, const char *body, size_t n)
{
	size_t i, first = f->nputs;

	assert_true(f->nputs + n <= MAX_PUTS);
	for (i = 0; i < n; i++) {
		struct put *p = &f->puts[f->nputs++];

		memset(p, 0, sizeof *p);
		if (id != NULL)
			snprintf(p->id, sizeof p->id, "%s", id);
		else
			snprintf(p->id, sizeof p->id, "doc%zu", i);
		snprintf(p->body, sizeof p->body, "%s", body);
		assert_non_null(writer_add(f->w, put_run, p, put_done, p,
		    NULL));
	}
	WAIT_FOR(f, f->puts[f->nputs - 1].done);
	for (i = first; i < f->nputs; i++)
		assert_int_equal(f->puts[i].err, 0);
}

/* --- reading the outcome --- */

static struct store_counts
counts(struct fixture *f)
{
	struct store_counts n;

	assert_int_equal(store_counts(f->st, &n), 0);
	return n;
}

static int64_t
doc_version(struct fixture *f, const char *id)
{
	struct store_doc d;
	int64_t v;

	if (store_doc_get(f->st, STORE_READER, "notes", id, &d) < 0)
		return -1;
	v = d.version;
	store_doc_clear(&d);
	return v;
}

static void
assert_doc(struct fixture *f, const char *id, int64_t version,
    const char *body, bool pending)
{
	struct store_doc d;

	assert_int_equal(store_doc_get(f->st, STORE_READER, "notes", id, &d),
	    0);
	assert_int_equal(d.version, version);
	assert_false(d.conflicted);
	assert_int_equal(d.pending, pending);
	if (body != NULL)
		assert_string_equal(d.body, body);
	store_doc_clear(&d);
}

/* The i-th record of a push request's body: its text and its seq. */
static int64_t
push_record(const struct sync_req *rq, size_t i, char **ret_text)
{
	json_t *o, *rec;
	const char *text;
	int64_t seq;

	assert_non_null(o = json_loads(rq->body, 0, NULL));
	text = json_string_value(json_object_get(json_array_get(
	    json_object_get(o, "changes"), i), "record"));
	assert_non_null(text);
	assert_non_null(rec = json_loads(text, 0, NULL));
	seq = json_integer_value(json_object_get(rec, "seq"));
	if (ret_text != NULL)
		assert_non_null(*ret_text = strdup(text));
	json_decref(rec);
	json_decref(o);
	return seq;
}

static int64_t
push_base(const struct sync_req *rq, size_t i)
{
	char *text;
	json_t *rec;
	int64_t base;

	push_record(rq, i, &text);
	assert_non_null(rec = json_loads(text, 0, NULL));
	base = json_integer_value(json_object_get(rec, "base"));
	json_decref(rec);
	free(text);
	return base;
}

static size_t
push_count(const struct sync_req *rq)
{
	json_t *o;
	size_t n;

	assert_non_null(o = json_loads(rq->body, 0, NULL));
	n = json_array_size(json_object_get(o, "changes"));
	json_decref(o);
	return n;
}

/* A push answer: n results, each status with version. */
static char *
push_results(size_t n, const char *status, int64_t version)
{
	json_t *a = json_array(), *o;
	char *text;
	size_t i;

	for (i = 0; i < n; i++)
		json_array_append_new(a, json_pack("{s:s,s:I}", "status",
		    status, "version", (json_int_t)version));
	o = json_pack("{s:o}", "results", a);
	assert_non_null(text = json_dumps(o, JSON_COMPACT));
	json_decref(o);
	return text;
}

static void
answer_push(struct sync_req *rq, const char *status, int64_t version)
{
	char *text = push_results(push_count(rq), status, version);

	answer(rq, 200, text);
	free(text);
}

static bool
saw_states(const struct fixture *f, const enum sync_state_id *want,
    size_t n)
{
	size_t i, j = 0;

	/* want, in order, as a subsequence of what was seen */
	for (i = 0; i < f->nstates && j < n; i++)
		if (f->states[i] == want[j])
			j++;
	return j == n;
}

static void
print_states(const struct fixture *f)
{
	static const char *const names[] = { "starting", "idle", "syncing",
	    "offline", "paused", "stopping" };
	size_t i;

	for (i = 0; i < f->nstates; i++)
		print_message("%s%s", i ? " -> " : "states: ",
		    names[f->states[i]]);
	print_message("\n");
}

/* --- set-up --- */

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);
	struct sync_transport tr;
	struct sync_config cfg = { "http://remote.invalid/", 1, NULL };
	struct timeval tick = { 0, 20 * 1000 };
	bool created;

	assert_non_null(f);
	strcpy(f->dir, "/tmp/ferry-test-sync-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/replica.db", f->dir);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
	assert_int_equal(keys_load_or_create(f->dir, &f->keys, &created), 0);
	assert_int_equal(evthread_use_pthreads(), 0);
	assert_non_null(f->base = event_base_new());
	/* Wakes the loop now and then, so WAIT_FOR checks its condition
	 * even when nothing else happens. */
	assert_non_null(f->tick = event_new(f->base, -1, EV_PERSIST, tick_cb,
	    NULL));
	event_add(f->tick, &tick);
	assert_int_equal(writer_new(f->base, f->st, batch_cb, f, &f->w), 0);
	tr.start = fake_start;
	tr.cancel = fake_cancel;
	tr.free = NULL;
	tr.ctx = f;
	assert_int_equal(sync_new(f->base, f->st, f->w, f->keys, &cfg, &tr,
	    changed_cb, reply_cb, f, &f->sy), 0);
	f->states[f->nstates++] = sync_state_id(f->sy);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];
	size_t i;

	sync_stop(f->sy);
	writer_drain(f->w);
	sync_free(f->sy);
	writer_free(f->w);
	for (i = 0; i < f->nreqs; i++)
		free(f->reqs[i].body);
	event_free(f->tick);
	event_base_free(f->base);
	store_close(f->st);
	keys_free(f->keys);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Start: the cursor is read, the first pull finds nothing, the push
 * finds nothing: idle, with a long-poll waiting. */
static void
start_idle(struct fixture *f)
{
	answer_pull_empty(f, 0, 0);
	wait_req(f, "GET", "/v1/changes?since=0&limit=1000&wait=30");
	WAIT_FOR(f, sync_state_id(f->sy) == SYNC_IDLE);
}

/* --- the cases --- */

static void
test_states(void **state)
{
	static const enum sync_state_id start[] = { SYNC_STARTING,
	    SYNC_SYNCING, SYNC_IDLE };
	static const enum sync_state_id write[] = { SYNC_IDLE, SYNC_SYNCING,
	    SYNC_IDLE };
	static const enum sync_state_id outage[] = { SYNC_IDLE, SYNC_SYNCING,
	    SYNC_OFFLINE, SYNC_SYNCING, SYNC_IDLE };
	struct fixture *f = *state;
	struct sync_req *rq;
	size_t mark;

	assert_int_equal(sync_state_id(f->sy), SYNC_STARTING);
	assert_string_equal(sync_state(f->sy), "syncing");
	start_idle(f);
	print_states(f);
	assert_int_equal(f->nstates, 3);
	assert_memory_equal(f->states, start, sizeof start);
	assert_string_equal(sync_state(f->sy), "idle");

	/* A write: syncing while its push is out and recorded, then idle. */
	mark = f->nstates - 1;
	put_docs(f, "a", "{\"x\":1}", 1);
	rq = wait_req(f, "POST", "/v1/push");
	assert_int_equal(sync_state_id(f->sy), SYNC_SYNCING);
	answer_push(rq, "applied", 1);
	WAIT_FOR(f, sync_state_id(f->sy) == SYNC_IDLE &&
	    counts(f).pending == 0);
	print_states(f);
	assert_int_equal(f->nstates - mark, 3);
	assert_memory_equal(f->states + mark, write, sizeof write);
	assert_doc(f, "a", 1, "{\"x\":1}", false);

	/* The transport fails: offline, with the reason; the retry timer
	 * (backoff capped at 1 s here) sends again, and idle follows. */
	mark = f->nstates - 1;
	put_docs(f, "a", "{\"x\":2}", 1);
	answer_reset(wait_req(f, "POST", "/v1/push"));
	assert_int_equal(sync_state_id(f->sy), SYNC_OFFLINE);
	assert_string_equal(sync_state(f->sy), "offline");
	assert_non_null(strstr(sync_last_error(f->sy),
	    "Connection reset by peer"));
	answer_push(wait_req(f, "POST", "/v1/push"), "applied", 2);
	WAIT_FOR(f, sync_state_id(f->sy) == SYNC_IDLE &&
	    counts(f).pending == 0);
	print_states(f);
	assert_true(saw_states(f, outage, sizeof outage / sizeof outage[0]));
	assert_int_equal(f->nstates - mark, 5);
	assert_null(sync_last_error(f->sy));
	assert_doc(f, "a", 2, "{\"x\":2}", false);
}

/* The page that carries this device's own change, before the push reply. */
static void
pull_back_own(struct fixture *f, const char *id, int64_t seq,
    int64_t version, const char *body, int64_t since, int64_t last_seq)
{
	char prefix[64], *page;

	snprintf(prefix, sizeof prefix, "/v1/changes?since=%" PRId64 "&",
	    since);
	assert_true(asprintf(&page, "{\"changes\":[{\"seq\":%" PRId64 ","
	    "\"collection\":\"notes\",\"id\":\"%s\",\"version\":%" PRId64
	    ",\"deleted\":false,\"body\":%s,\"change\":\"%s:%" PRId64 "\"}],"
	    "\"last_seq\":%" PRId64 "}", last_seq, id, version, body,
	    f->keys->pub_b64, seq, last_seq) > 0);
	answer(wait_req(f, "GET", prefix), 200, page);
	free(page);
}

static void
own_change_pulled_back(void **state, const char *late_status)
{
	struct fixture *f = *state;
	struct sync_req *rq, *rq2;
	int64_t seq;

	start_idle(f);
	put_docs(f, "a", "{\"x\":1}", 1);
	rq = wait_req(f, "POST", "/v1/push");
	assert_int_equal(push_base(rq, 0), 0);
	seq = push_record(rq, 0, NULL);
	/* A local write while that push is out: it waits behind it. */
	put_docs(f, "a", "{\"x\":2}", 1);

	/*
	 * The server applied the first (version 1) and the long-poll brings
	 * it back before the push's answer: that is the answer.  Taken for
	 * someone else's change, it would be merged with the local x=2 on
	 * no common base: a phantom conflict on /x.
	 */
	pull_back_own(f, "a", seq, 1, "{\"x\":1}", 0, 1);
	wait_req(f, "GET", "/v1/changes?since=1&");
	WAIT_FOR(f, doc_version(f, "a") == 1);
	assert_doc(f, "a", 1, "{\"x\":2}", true);
	assert_int_equal(counts(f).conflicts, 0);

	/* The late push reply must not settle anything again: the local
	 * write stays pending, and goes out on base 1. */
	answer_push(rq, late_status, 1);
	rq2 = wait_req(f, "POST", "/v1/push");
	assert_int_equal(push_count(rq2), 1);
	assert_int_equal(push_base(rq2, 0), 1);
	assert_true(push_record(rq2, 0, NULL) > seq);
	assert_doc(f, "a", 1, "{\"x\":2}", true);
	answer_push(rq2, "applied", 2);
	WAIT_FOR(f, counts(f).pending == 0 &&
	    sync_state_id(f->sy) == SYNC_IDLE);
	assert_doc(f, "a", 2, "{\"x\":2}", false);
	assert_int_equal(counts(f).conflicts, 0);
	assert_int_equal(counts(f).rejected, 0);
}

static void
test_pulled_back_then_applied(void **state)
{
	own_change_pulled_back(state, "applied");
}

static void
test_pulled_back_then_duplicate(void **state)
{
	own_change_pulled_back(state, "duplicate");
}

static void
test_reply_lost_after_apply(void **state)
{
	struct fixture *f = *state;
	struct sync_req *rq;
	char *first, *again;

	start_idle(f);
	put_docs(f, "a", "{\"x\":1}", 1);
	rq = wait_req(f, "POST", "/v1/push");
	push_record(rq, 0, &first);
	/* The server applied it; the reply never arrives. */
	answer_reset(rq);
	assert_int_equal(sync_state_id(f->sy), SYNC_OFFLINE);
	assert_int_equal(counts(f).pending, 1);

	rq = wait_req(f, "POST", "/v1/push");
	assert_int_equal(push_count(rq), 1);
	push_record(rq, 0, &again);
	assert_string_equal(again, first);	/* byte for byte */
	answer_push(rq, "duplicate", 1);
	WAIT_FOR(f, counts(f).pending == 0 &&
	    sync_state_id(f->sy) == SYNC_IDLE);
	assert_doc(f, "a", 1, "{\"x\":1}", false);
	assert_int_equal(counts(f).conflicts, 0);
	free(first);
	free(again);
}

/* A page of remote changes to docs r<from>..r<to> (version 1 each, seq =
 * the number), with the given last_seq. */
static char *
remote_page(int64_t from, int64_t to, int64_t last_seq)
{
	json_t *a = json_array(), *o;
	char id[32], change[96], *text;
	int64_t s;

	for (s = from; s <= to; s++) {
		snprintf(id, sizeof id, "r%" PRId64, s);
		snprintf(change, sizeof change, "%s:%" PRId64, OTHER_DEVICE,
		    s);
		json_array_append_new(a, json_pack("{s:I,s:s,s:s,s:i,s:b,"
		    "s:{s:I},s:s}", "seq", (json_int_t)s, "collection",
		    "notes", "id", id, "version", 1, "deleted", 0, "body",
		    "n", (json_int_t)s, "change", change));
	}
	/* Laid out as ferry-server writes it: last_seq last. */
	o = json_pack("{s:o,s:I}", "changes", a, "last_seq",
	    (json_int_t)last_seq);
	assert_non_null(text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS));
	json_decref(o);
	return text;
}

static void
test_wrong_next_page_hint(void **state)
{
	struct fixture *f = *state;
	struct store_doc d;
	char *page, id[32], *cursor = NULL;
	int64_t s;

	/* A full page: the puller is catching up from here on. */
	page = remote_page(1, 1000, 1000);
	answer(wait_req(f, "GET", "/v1/changes?since=0&limit=1000&wait=0"),
	    200, page);
	free(page);
	/*
	 * The second page is full too but says last_seq 1500 while its
	 * changes go up to 2000: the next page is fetched from that hint
	 * (1500) before this one is parsed, and the server then sends
	 * 1501..2000 again.  They must not be applied twice, none may be
	 * skipped, and the cursor must end at 2000.
	 */
	page = remote_page(1001, 2000, 1500);
	answer(wait_req(f, "GET", "/v1/changes?since=1000&limit=1000&wait=0"),
	    200, page);
	free(page);
	page = remote_page(1501, 2000, 2000);
	answer(wait_req(f, "GET", "/v1/changes?since=1500&limit=1000&wait=0"),
	    200, page);
	free(page);
	/* That page was read ahead too (the one before was full): nothing
	 * after it; then caught up, a long-poll from 2000. */
	answer_pull_empty(f, 2000, 2000);
	wait_req(f, "GET", "/v1/changes?since=2000&limit=1000&wait=30");
	WAIT_FOR(f, sync_state_id(f->sy) == SYNC_IDLE &&
	    counts(f).head_seq == 2000);
	/* Each change once: one change-log entry each, none twice. */
	assert_int_equal(counts(f).head_seq, 2000);
	assert_int_equal(counts(f).docs, 2000);
	for (s = 1; s <= 2000; s += 111) {
		snprintf(id, sizeof id, "r%" PRId64, s);
		assert_int_equal(store_doc_get(f->st, STORE_READER, "notes", id,
		    &d), 0);
		assert_int_equal(d.version, 1);
		store_doc_clear(&d);
	}
	writer_drain(f->w);
	assert_int_equal(store_meta_get(f->st, "pull_cursor", &cursor), 0);
	assert_string_equal(cursor, "2000");
	free(cursor);
	assert_int_equal(counts(f).parked, 0);
}

static void
test_401_mid_batch(void **state)
{
	struct fixture *f = *state;
	struct sync_req *rq1, *rq2, *rq3;
	char *second, *resent;

	start_idle(f);
	/* 1001 documents: two push requests (1000 is the batch cap). */
	put_docs(f, NULL, "{\"x\":1}", 1001);
	rq1 = wait_req(f, "POST", "/v1/push");
	assert_int_equal(push_count(rq1), 1000);

	/* A Sync(wait) caller, waiting for everything. */
	sync_request(f->sy, (struct vl_call *)&f->calls[0], true);
	answer_pull_empty(f, 0, 0);
	assert_false(f->calls[0].answered);

	answer_push(rq1, "applied", 1);
	rq2 = wait_req(f, "POST", "/v1/push");
	assert_int_equal(push_count(rq2), 1);
	push_record(rq2, 0, &second);
	answer(rq2, 401, "{\"error\":\"unknown key\"}");

	/* Paused with the reason; the caller is told; nothing lost. */
	WAIT_FOR(f, counts(f).pending == 1);
	assert_int_equal(sync_state_id(f->sy), SYNC_PAUSED);
	assert_string_equal(sync_state(f->sy), "paused");
	assert_non_null(strstr(sync_last_error(f->sy), "401"));
	assert_non_null(strstr(sync_last_error(f->sy), "unknown key"));
	assert_true(f->calls[0].answered);
	assert_string_equal(f->calls[0].error, "io.ferry.Offline");
	assert_non_null(strstr(f->calls[0].reason, "401"));
	/* Paused means quiet: nothing is sent until asked. */
	assert_null(open_req(f, "POST", "/v1/push"));

	/* Sync: leaves paused, resends the same bytes, completes. */
	sync_request(f->sy, (struct vl_call *)&f->calls[1], true);
	assert_int_equal(sync_state_id(f->sy), SYNC_SYNCING);
	rq3 = wait_req(f, "POST", "/v1/push");
	assert_int_equal(push_count(rq3), 1);
	push_record(rq3, 0, &resent);
	assert_string_equal(resent, second);
	answer_push(rq3, "applied", 1);
	answer_pull_empty(f, 0, 0);
	WAIT_FOR(f, f->calls[1].answered);
	assert_string_equal(f->calls[1].error, "");
	assert_int_equal(counts(f).pending, 0);
	assert_int_equal(counts(f).conflicts, 0);
	assert_int_equal(counts(f).docs, 1001);
	assert_int_equal(sync_state_id(f->sy), SYNC_IDLE);
	free(second);
	free(resent);
}

/* A pull refused (401) while a push is out: paused; the push's answer
 * still counts; nothing more is sent until Sync. */
static void
test_401_on_pull_between_pushes(void **state)
{
	struct fixture *f = *state;
	struct sync_req *rq;
	size_t sent;

	start_idle(f);
	put_docs(f, "a", "{\"x\":1}", 1);
	rq = wait_req(f, "POST", "/v1/push");
	answer(wait_req(f, "GET", "/v1/changes?since=0&limit=1000&wait=30"),
	    401, "{\"error\":\"clock skew\"}");
	assert_int_equal(sync_state_id(f->sy), SYNC_PAUSED);
	assert_non_null(strstr(sync_last_error(f->sy), "pull"));
	assert_non_null(strstr(sync_last_error(f->sy), "clock skew"));
	/* The push's answer arrives while paused: recorded, still paused. */
	answer_push(rq, "applied", 1);
	WAIT_FOR(f, counts(f).pending == 0);
	assert_doc(f, "a", 1, "{\"x\":1}", false);
	assert_int_equal(sync_state_id(f->sy), SYNC_PAUSED);
	sent = f->nreqs;
	put_docs(f, "a", "{\"x\":2}", 1);
	assert_int_equal(f->nreqs, sent);	/* quiet while paused */
	assert_int_equal(counts(f).pending, 1);

	sync_request(f->sy, (struct vl_call *)&f->calls[0], true);
	answer_push(wait_req(f, "POST", "/v1/push"), "applied", 2);
	answer_pull_empty(f, 0, 0);
	WAIT_FOR(f, f->calls[0].answered);
	assert_string_equal(f->calls[0].error, "");
	assert_int_equal(counts(f).pending, 0);
	assert_int_equal(sync_state_id(f->sy), SYNC_IDLE);
	assert_doc(f, "a", 2, "{\"x\":2}", false);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_states, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pulled_back_then_applied,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(
		    test_pulled_back_then_duplicate, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reply_lost_after_apply,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrong_next_page_hint,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_401_mid_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(
		    test_401_on_pull_between_pushes, setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	log_init("test_sync");
	return cmocka_run_group_tests(tests, NULL, NULL);
}
