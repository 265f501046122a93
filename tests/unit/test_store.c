/*
 * test_store: the replica's promises.  A batch is all or nothing; readers
 * see only committed data; unsent intents for one document coalesce; the
 * change log has no gaps and replays superseded changes without a stale
 * body; counters match the tables across reopen; a replica from a newer
 * build or a file that is not a database is refused, not damaged; a merge
 * replaces a record in flight with a new intent whose outbox seq is never
 * the old one's, so a late answer to the old record changes nothing; a
 * pulled body stored once is still the base after local writes on top; a
 * change of ours pulled back settles its record in flight (issue 8); one
 * change of a batch rolls back alone to its savepoint and a parked pulled
 * change is counted and listed; a replica from an older schema reads the
 * same per-document history after its migration; answering "applied"
 * writes no second copy of the record; a pulled change keeps what its
 * record needs to be checked later, and each signed revision's body.
 */
#include "autoconfig.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store.h"

struct fixture {
	char	dir[64];
	char	path[128];
	struct store *st;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof *f);

	strcpy(f->dir, "/tmp/ferry-test-store-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	snprintf(f->path, sizeof f->path, "%s/replica.db", f->dir);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;
	char cmd[200];

	store_close(f->st);
	snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
	assert_int_equal(system(cmd), 0);
	free(f);
	return 0;
}

/* Write one local change in its own batch; returns its seq. */
static int64_t
put(struct store *st, const char *c, const char *id, const char *body)
{
	struct store_doc cur;
	int64_t seq, rev;
	int r;

	assert_int_equal(store_begin(st), 0);
	memset(&cur, 0, sizeof cur);
	r = store_doc_get(st, STORE_WRITER, c, id, &cur);
	assert_true(r == 0 || r == -ENOENT);
	assert_int_equal(store_write_local(st, &cur, c, id, body,
	    STORE_ORIGIN_LOCAL, 1000, &seq, &rev), 0);
	assert_int_equal(rev, cur.rev + 1);
	store_doc_clear(&cur);
	assert_int_equal(store_commit(st), 0);
	return seq;
}

static void
test_put_get(void **state)
{
	struct fixture *f = *state;
	struct store_doc d;

	put(f->st, "notes", "n1", "{\"a\":1}");
	assert_int_equal(store_doc_get(f->st, STORE_READER, "notes", "n1", &d),
	    0);
	assert_int_equal(d.rev, 1);
	assert_int_equal(d.version, 0);
	assert_true(d.pending);
	assert_false(d.deleted);
	assert_string_equal(d.body, "{\"a\":1}");
	store_doc_clear(&d);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "notes", "nx", &d),
	    -ENOENT);
}

/* The size of path's file in bytes (0 if it does not exist). */
static long long
file_size(const char *path)
{
	struct stat sb;

	return stat(path, &sb) == 0 ? (long long)sb.st_size : 0;
}

/*
 * The WAL has a bound.  Under a write load that never pauses the passive
 * checkpointer never catches up and SQLite never starts the WAL over: 392
 * MB after 300,000 Puts (session 9).  Here the passive rounds never even
 * start (they wait for 10,000 pages); 300 commits of ~40 KB each would
 * leave a WAL of ~3,000 pages.  With a bound of 200 pages the writer
 * truncates it after the commit that passes the bound, so it never holds
 * much more than 200 pages and one batch, and nothing written is lost.
 */
static void
test_wal_bound(void **state)
{
	struct fixture *f = *state;
	char wal[160], id[32], *body;
	long long most = 0, now;
	struct store_counts c;
	int i;

	snprintf(wal, sizeof wal, "%s-wal", f->path);
	store_set_wal_limit(f->st, 200);
	body = malloc(40 * 1024);
	assert_non_null(body);
	memset(body, 'x', 40 * 1024 - 1);
	memcpy(body, "{\"t\":\"", 6);
	memcpy(body + 40 * 1024 - 3, "\"}", 3);
	for (i = 0; i < 300; i++) {
		snprintf(id, sizeof id, "d%d", i);
		put(f->st, "big", id, body);
		if ((now = file_size(wal)) > most)
			most = now;
	}
	free(body);
	assert_true(most < 260LL * 4096 + 64 * 1024);
	assert_true(store_wal_truncations(f->st) >= 5);
	assert_int_equal(store_counts(f->st, &c), 0);
	assert_int_equal(c.docs, 300);
}

/* The reader must not see a batch before COMMIT; the writer must. */
static void
test_reader_isolation(void **state)
{
	struct fixture *f = *state;
	struct store_doc cur, d;
	int64_t seq, rev;

	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_write_local(f->st, &cur, "c", "x", "{}",
	    STORE_ORIGIN_LOCAL, 1, &seq, &rev), 0);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "x", &d),
	    -ENOENT);
	assert_int_equal(store_doc_get(f->st, STORE_WRITER, "c", "x", &d), 0);
	store_doc_clear(&d);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "x", &d), 0);
	store_doc_clear(&d);
}

/* A rolled-back batch leaves no document, intent, change or count. */
static void
test_rollback(void **state)
{
	struct fixture *f = *state;
	struct store_counts before, after;
	struct store_doc cur, d;
	int64_t seq, rev;

	put(f->st, "c", "keep", "{}");
	assert_int_equal(store_counts(f->st, &before), 0);
	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_write_local(f->st, &cur, "c", "gone", "{}",
	    STORE_ORIGIN_LOCAL, 1, &seq, &rev), 0);
	store_rollback(f->st);
	assert_false(store_in_batch(f->st));
	assert_int_equal(store_doc_get(f->st, STORE_WRITER, "c", "gone", &d),
	    -ENOENT);
	assert_int_equal(store_counts(f->st, &after), 0);
	assert_int_equal(after.docs, before.docs);
	assert_int_equal(after.pending, before.pending);
	assert_int_equal(after.head_seq, before.head_seq);
	/* The next change reuses the seq: no gap. */
	assert_int_equal(put(f->st, "c", "next", "{}"), before.head_seq + 1);
}

/* Three writes to one document leave one pending intent. */
static void
test_coalesce(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;

	put(f->st, "c", "a", "{\"v\":1}");
	put(f->st, "c", "a", "{\"v\":2}");
	put(f->st, "c", "a", "{\"v\":3}");
	put(f->st, "c", "b", "{}");
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.pending, 2);
	assert_int_equal(n.docs, 2);
	assert_int_equal(n.head_seq, 4);
	assert_int_equal(n.oldest_pending_ms, 1000);
}

struct seen {
	int64_t	seq[16];
	int64_t	rev[16];
	bool	has_body[16];
	int	n;
};

static int
collect(const struct store_change *c, void *arg)
{
	struct seen *s = arg;

	s->seq[s->n] = c->seq;
	s->rev[s->n] = c->rev;
	s->has_body[s->n] = c->body != NULL;
	s->n++;
	return 0;
}

/* Replay gives every change in order; only the latest carries a body. */
static void
test_changes_since(void **state)
{
	struct fixture *f = *state;
	struct seen s = { .n = 0 };
	int i;

	put(f->st, "c", "a", "{\"v\":1}");
	put(f->st, "c", "b", "{}");
	put(f->st, "c", "a", "{\"v\":2}");
	assert_int_equal(store_changes_since(f->st, 0, 100, collect, &s), 3);
	for (i = 0; i < 3; i++)
		assert_int_equal(s.seq[i], i + 1);
	assert_false(s.has_body[0]);	/* a@1, superseded by a@2 */
	assert_true(s.has_body[1]);
	assert_true(s.has_body[2]);
	assert_int_equal(s.rev[2], 2);
	s.n = 0;
	assert_int_equal(store_changes_since(f->st, 2, 100, collect, &s), 1);
	assert_int_equal(s.seq[0], 3);
	s.n = 0;
	assert_int_equal(store_changes_since(f->st, 0, 2, collect, &s), 2);
}

/* Deleting leaves a tombstone; docs counts live documents only. */
static void
test_tombstone(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;
	struct store_doc d;

	put(f->st, "c", "a", "{}");
	put(f->st, "c", "a", NULL);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "a", &d), 0);
	assert_true(d.deleted);
	assert_null(d.body);
	assert_int_equal(d.rev, 2);
	store_doc_clear(&d);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 0);
	put(f->st, "c", "a", "{}");
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 1);
}

struct ids {
	char	id[8][16];
	int	n;
};

static int
list_collect(const struct store_doc *d, void *arg)
{
	struct ids *l = arg;

	snprintf(l->id[l->n++], sizeof l->id[0], "%s", d->id);
	return 0;
}

static void
test_list(void **state)
{
	struct fixture *f = *state;
	struct ids l = { .n = 0 };

	put(f->st, "c", "b", "{}");
	put(f->st, "c", "a", "{}");
	put(f->st, "c", "d", "{}");
	put(f->st, "c", "c", NULL);	/* a tombstone is not listed */
	put(f->st, "other", "z", "{}");
	assert_int_equal(store_list(f->st, "c", NULL, 2, list_collect, &l), 2);
	assert_string_equal(l.id[0], "a");
	assert_string_equal(l.id[1], "b");
	l.n = 0;
	assert_int_equal(store_list(f->st, "c", "b", 10, list_collect, &l), 1);
	assert_string_equal(l.id[0], "d");
}

/* Counters are rebuilt from the tables on open and match. */
static void
test_reopen(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;
	char *v = NULL;

	put(f->st, "c", "a", "{}");
	put(f->st, "c", "b", "{}");
	put(f->st, "c", "b", NULL);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_meta_set(f->st, "k", "v1"), 0);
	assert_int_equal(store_commit(f->st), 0);
	store_close(f->st);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 1);
	assert_int_equal(n.pending, 2);
	assert_int_equal(n.head_seq, 3);
	assert_int_equal(store_meta_get(f->st, "k", &v), 0);
	assert_string_equal(v, "v1");
	free(v);
	assert_int_equal(store_meta_get(f->st, "nope", &v), -ENOENT);
	assert_int_equal(store_integrity_check(f->st), 0);
}

/* A replica written by a newer ferryd is refused, and left untouched. */
static void
test_newer_schema(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	char *err = NULL;
	sqlite3 *db;

	store_close(f->st);
	f->st = NULL;
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "PRAGMA user_version = 99", NULL,
	    NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, &st, &err), -EPROTONOSUPPORT);
	assert_non_null(strstr(err, "newer"));
	free(err);
	assert_null(st);
}

/* A file that is not a database is refused with a clear error. */
static void
test_not_a_database(void **state)
{
	struct fixture *f = *state;
	struct store *st = NULL;
	char path[160], *err = NULL;
	int fd;

	snprintf(path, sizeof path, "%s/junk.db", f->dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "this is not sqlite, just text....\n", 34),
	    34);
	for (int i = 0; i < 200; i++)
		assert_int_equal(write(fd, "garbage garbage garbage\n", 24), 24);
	close(fd);
	assert_true(store_open(path, &st, &err) < 0);
	assert_non_null(err);
	assert_non_null(strstr(err, "not a database"));
	free(err);
}

/*
 * A merge on top of the server's version 2 while the record made on
 * version 1 is in flight: the record is dropped, a new intent queued under
 * a new seq (never the dropped one's, even though it was the last row);
 * the late answers to the dropped record find nothing to change, and the
 * dropped record is not kept.
 */
static void
test_merge_replaces_inflight(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;
	struct store_doc cur;
	char *base = NULL;
	int64_t seq, rev, oseq;
	sqlite3 *db;
	sqlite3_stmt *st;

	put(f->st, "c", "a", "{\"x\":1}");
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_push_applied(f->st, 1, "c", "a", 1,
	    "{\"x\":1}"), 0);
	assert_int_equal(store_commit(f->st), 0);
	put(f->st, "c", "a", "{\"x\":1,\"mine\":1}");

	/* The pusher made a record of the intent (its seq is the last). */
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db,
	    "SELECT max(seq) FROM outbox", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	oseq = sqlite3_column_int64(st, 0);
	sqlite3_finalize(st);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_outbox_set_record(f->st, oseq, "{}", 2, "sig",
	    7), 0);
	assert_int_equal(store_outbox_has(f->st, oseq), 1);
	assert_int_equal(store_doc_base(f->st, "c", "a", &base), 0);
	assert_string_equal(base, "{\"x\":1}");
	free(base);

	/* The merge. */
	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_doc_get(f->st, STORE_WRITER, "c", "a", &cur),
	    0);
	assert_int_equal(store_merged(f->st, &cur, "c", "a",
	    "{\"mine\":1,\"theirs\":1,\"x\":1}", 2, false,
	    "{\"theirs\":1,\"x\":1}", true, 2000, &seq, &rev), 0);
	assert_int_equal(rev, cur.rev + 1);
	store_doc_clear(&cur);
	assert_int_equal(store_outbox_has(f->st, oseq), 0);
	/* Late answers to the dropped record: nothing happens. */
	assert_int_equal(store_push_applied(f->st, oseq, "c", "a", 2,
	    "{\"x\":1,\"mine\":1}"), 0);
	assert_int_equal(store_push_rejected(f->st, oseq, "late"), 0);
	assert_int_equal(store_commit(f->st), 0);

	assert_int_equal(sqlite3_prepare_v2(db,
	    "SELECT seq, change_seq IS NULL FROM outbox", -1, &st, NULL),
	    SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_true(sqlite3_column_int64(st, 0) > oseq);
	assert_int_equal(sqlite3_column_int(st, 1), 1);
	assert_int_equal(sqlite3_step(st), SQLITE_DONE);
	sqlite3_finalize(st);
	/* The dropped record is not kept: it was never applied. */
	assert_int_equal(sqlite3_prepare_v2(db,
	    "SELECT count(*) FROM signed", -1, &st, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(st), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(st, 0), 0);
	sqlite3_finalize(st);
	sqlite3_close(db);

	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "a", &cur),
	    0);
	assert_int_equal(cur.version, 2);
	assert_true(cur.pending);
	assert_string_equal(cur.body, "{\"mine\":1,\"theirs\":1,\"x\":1}");
	store_doc_clear(&cur);
	assert_int_equal(store_doc_base(f->st, "c", "a", &base), 0);
	assert_string_equal(base, "{\"theirs\":1,\"x\":1}");
	free(base);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.pending, 1);
	assert_int_equal(n.rejected, 0);
}

/* The size of the replica's WAL: it only grows while no checkpoint runs. */
static off_t
wal_size(const struct fixture *f)
{
	char path[160];
	struct stat sb;

	snprintf(path, sizeof path, "%s-wal", f->path);
	assert_int_equal(stat(path, &sb), 0);
	return sb.st_size;
}

/*
 * Guards issue 8's push figure: answering "applied" must not write the
 * record a second time (until 65165b6 it was copied from the outbox row
 * into signed, ~1.3 KB more per pushed change).  A 64 KiB record, made
 * and kept, then applied: that commit writes a few small pages, not the
 * record's 16.
 */
static void
test_applied_writes_once(void **state)
{
	struct fixture *f = *state;
	char *rec;
	off_t before;
	int64_t frames;
	size_t len = 64 * 1024;

	put(f->st, "c", "a", "{\"x\":1}");
	assert_non_null(rec = malloc(len));
	memset(rec, 'r', len);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_outbox_set_record(f->st, 1, rec, len, "sig",
	    1), 0);
	assert_int_equal(store_commit(f->st), 0);
	free(rec);

	before = wal_size(f);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_push_applied(f->st, 1, "c", "a", 1,
	    "{\"x\":1}"), 0);
	assert_int_equal(store_commit(f->st), 0);
	/* A WAL frame: a 24-byte header and a page (4 KiB by default). */
	frames = (int64_t)(wal_size(f) - before) / (24 + 4096);
	print_message("the applied commit wrote %lld pages\n",
	    (long long)frames);
	assert_true(frames < 8);
}

/*
 * A pulled document keeps its body once (base_same), yet its base is that
 * body; a local write on top keeps the pulled body as the base, and a
 * pulled delete is a deleted base.
 */
static void
test_remote_base(void **state)
{
	struct fixture *f = *state;
	struct store_doc cur;
	char *base = NULL;
	int64_t seq, rev;

	assert_int_equal(store_begin(f->st), 0);
	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_apply_remote(f->st, &cur, "c", "a", 3, false,
	    "{\"x\":1}", NULL, 1000, &seq, &rev), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(store_doc_base(f->st, "c", "a", &base), 0);
	assert_string_equal(base, "{\"x\":1}");
	free(base);

	put(f->st, "c", "a", "{\"x\":2}");
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "a", &cur),
	    0);
	assert_string_equal(cur.body, "{\"x\":2}");
	assert_int_equal(cur.version, 3);
	store_doc_clear(&cur);
	assert_int_equal(store_doc_base(f->st, "c", "a", &base), 0);
	assert_string_equal(base, "{\"x\":1}");
	free(base);
	put(f->st, "c", "a", "{\"x\":3}");
	assert_int_equal(store_doc_base(f->st, "c", "a", &base), 0);
	assert_string_equal(base, "{\"x\":1}");
	free(base);

	assert_int_equal(store_begin(f->st), 0);
	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_apply_remote(f->st, &cur, "c", "b", 2, true,
	    NULL, NULL, 1000, &seq, &rev), 0);
	assert_int_equal(store_commit(f->st), 0);
	base = (char *)"unset";
	assert_int_equal(store_doc_base(f->st, "c", "b", &base), 0);
	assert_null(base);
}

/* store_write_local outside a batch is refused, not auto-committed. */
static void
test_write_needs_batch(void **state)
{
	struct fixture *f = *state;
	struct store_doc cur;
	int64_t seq, rev;

	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_write_local(f->st, &cur, "c", "a", "{}",
	    STORE_ORIGIN_LOCAL, 1, &seq, &rev), -EINVAL);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_begin(f->st), -EALREADY);
	store_rollback(f->st);
}

struct walked {
	char	ids[8][8];
	int64_t	change_seq[8];
	int	n;
};

static int
walk_intent(const struct store_intent *in, void *arg)
{
	struct walked *w = arg;

	snprintf(w->ids[w->n], sizeof w->ids[w->n], "%s", in->id);
	w->change_seq[w->n] = in->record != NULL ? in->change_seq : 0;
	w->n++;
	return 0;
}

/*
 * The pusher prepares the next batch while one is in flight: records
 * already handed out (device seq <= after) are skipped, later records come
 * first in device-seq order, and a document with a record out never
 * offers its newer intent (at most one change per document in flight).
 */
static void
test_sendable_after(void **state)
{
	struct fixture *f = *state;
	struct walked w;

	put(f->st, "c", "a", "{\"v\":1}");
	put(f->st, "c", "b", "{\"v\":1}");
	put(f->st, "c", "c", "{\"v\":1}");
	assert_int_equal(store_begin(f->st), 0);
	memset(&w, 0, sizeof w);
	assert_int_equal(store_outbox_sendable(f->st, 2, walk_intent, &w), 2);
	assert_string_equal(w.ids[0], "a");
	assert_string_equal(w.ids[1], "b");
	assert_int_equal(store_outbox_set_record(f->st, 1, "ra", 2, "sa", 1),
	    0);
	assert_int_equal(store_outbox_set_record(f->st, 2, "rb", 2, "sb", 2),
	    0);
	assert_int_equal(store_commit(f->st), 0);
	put(f->st, "c", "a", "{\"v\":2}");

	assert_int_equal(store_begin(f->st), 0);
	memset(&w, 0, sizeof w);
	assert_int_equal(store_outbox_sendable(f->st, 10, walk_intent, &w), 3);
	assert_string_equal(w.ids[0], "a");
	assert_int_equal(w.change_seq[0], 1);
	assert_string_equal(w.ids[1], "b");
	assert_int_equal(w.change_seq[1], 2);
	assert_string_equal(w.ids[2], "c");
	assert_int_equal(w.change_seq[2], 0);

	memset(&w, 0, sizeof w);
	assert_int_equal(store_outbox_sendable_after(f->st, 1, 10, walk_intent,
	    &w), 2);
	assert_string_equal(w.ids[0], "b");
	assert_string_equal(w.ids[1], "c");

	memset(&w, 0, sizeof w);
	assert_int_equal(store_outbox_sendable_after(f->st, 2, 10, walk_intent,
	    &w), 1);
	assert_string_equal(w.ids[0], "c");
	store_rollback(f->st);
}


/*
 * Issue 8, break 1: a change of ours pulled back before its push answer
 * is that answer.  The record's row is settled as "applied" settles it:
 * version and base move to the record's body while a later local write
 * stays queued on top; doing it again, for an older seq of ours, or then
 * getting the late push answer, changes nothing.
 */
static void
test_settle_change(void **state)
{
	struct fixture *f = *state;
	struct store_counts n;
	struct store_doc d;
	char *base = NULL;

	put(f->st, "c", "f", "{\"fa\":1}");
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_outbox_set_record(f->st, 1, "r1", 2, "s1", 7),
	    0);
	assert_int_equal(store_commit(f->st), 0);
	put(f->st, "c", "f", "{\"fa\":2}");	/* a second intent, not sent */

	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_push_settle_change(f->st, "c", "f", 6, 1,
	    "{\"fa\":0}"), 0);			/* an older record of ours */
	assert_int_equal(store_push_settle_change(f->st, "c", "g", 7, 1,
	    "{\"fa\":1}"), 0);			/* another document */
	assert_int_equal(store_push_settle_change(f->st, "c", "f", 7, 1,
	    "{\"fa\":1}"), 1);
	assert_int_equal(store_push_settle_change(f->st, "c", "f", 7, 1,
	    "{\"fa\":1}"), 0);			/* pulled again: nothing */
	/* The push answer comes after all: the row is gone, a no-op. */
	assert_int_equal(store_push_applied(f->st, 1, "c", "f", 1,
	    "{\"fa\":1}"), 0);
	assert_int_equal(store_commit(f->st), 0);

	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "f", &d), 0);
	assert_int_equal(d.version, 1);
	assert_true(d.pending);			/* fa=2 still to send */
	assert_false(d.conflicted);
	assert_string_equal(d.body, "{\"fa\":2}");
	store_doc_clear(&d);
	assert_int_equal(store_doc_base(f->st, "c", "f", &base), 0);
	assert_string_equal(base, "{\"fa\":1}");
	free(base);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.pending, 1);
}

/*
 * Issue 8, break 2: one change of a batch fails alone.  Rolled back to its
 * savepoint, nothing of it stays (document, intent, counters) while what
 * came before it in the batch commits; a parked change is counted and
 * listed, across a reopen.
 */
static int
walk_parked(const struct store_parked *p, void *arg)
{
	int *n = arg;

	assert_string_equal(p->collection, "c");
	assert_string_equal(p->id, "bad");
	assert_int_equal(p->version, 3);
	assert_string_equal(p->change, "dev:9");
	assert_string_equal(p->reason, "body is too deep");
	assert_int_equal(p->created_ms, 1234);
	(*n)++;
	return 0;
}

/*
 * The writer's savepoint per op and the puller's per change are one API
 * and nest: undoing the inner one keeps the outer one's writes and counts.
 */
static void
test_savepoint_nested(void **state)
{
	struct fixture *f = *state;
	struct store_mark outer, inner;
	struct store_counts n;
	struct store_doc cur, d;
	int64_t seq, rev;

	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_savepoint(f->st, &outer), 0);
	assert_int_equal(store_write_local(f->st, &cur, "c", "kept", "{}",
	    STORE_ORIGIN_LOCAL, 1, &seq, &rev), 0);
	assert_int_equal(store_savepoint(f->st, &inner), 0);
	assert_int_equal(store_write_local(f->st, &cur, "c", "undone", "{}",
	    STORE_ORIGIN_LOCAL, 1, &seq, &rev), 0);
	assert_int_equal(store_rollback_to(f->st, &inner), 0);
	assert_int_equal(store_release(f->st), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "kept", &d),
	    0);
	store_doc_clear(&d);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "undone",
	    &d), -ENOENT);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 1);
	assert_int_equal(n.pending, 1);
	assert_int_equal(n.head_seq, 1);
	/* Outside a batch there is nothing to mark. */
	assert_int_equal(store_release(f->st), -EINVAL);
	assert_int_equal(store_rollback_to(f->st, &outer), -EINVAL);
}

static void
test_savepoint_parked(void **state)
{
	struct fixture *f = *state;
	struct store_mark sp;
	struct store_counts n;
	struct store_doc cur, d;
	int64_t seq, rev;
	int walked = 0;

	memset(&cur, 0, sizeof cur);
	assert_int_equal(store_savepoint(f->st, &sp), -EINVAL);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_write_local(f->st, &cur, "c", "good", "{}",
	    STORE_ORIGIN_LOCAL, 1, &seq, &rev), 0);
	assert_int_equal(store_savepoint(f->st, &sp), 0);
	assert_int_equal(store_write_local(f->st, &cur, "c", "bad", "{}",
	    STORE_ORIGIN_LOCAL, 1, &seq, &rev), 0);
	assert_int_equal(store_rollback_to(f->st, &sp), 0);
	assert_int_equal(store_parked_add(f->st, "c", "bad", 3, "dev:9",
	    "body is too deep", 1234), 0);
	assert_int_equal(store_savepoint(f->st, &sp), 0);
	assert_int_equal(store_release(f->st), 0);
	assert_int_equal(store_commit(f->st), 0);

	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "good", &d),
	    0);
	store_doc_clear(&d);
	assert_int_equal(store_doc_get(f->st, STORE_READER, "c", "bad", &d),
	    -ENOENT);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.docs, 1);
	assert_int_equal(n.pending, 1);
	assert_int_equal(n.parked, 1);
	assert_int_equal(n.head_seq, 1);
	assert_int_equal(store_parked_list(f->st, 10, walk_parked, &walked),
	    1);
	assert_int_equal(walked, 1);

	store_close(f->st);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.parked, 1);
	assert_int_equal(n.docs, 1);
}
/*
 * A replica at schema 6, as 65165b6's store wrote it (store_write_local,
 * store_push_applied, store_apply_remote, store_merged, then one record in
 * flight and one rejected; dumped with sqlite3 .dump): document notes/a has
 * six changes (two of them pushed and applied, one pulled, one merge)
 * interleaved with notes/b's and notes/c's.
 */
static const char replica_v6[] =
	"CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
	    " WITHOUT ROWID;"
	"CREATE TABLE docs (collection TEXT NOT NULL, id TEXT NOT NULL,"
	    " rev INTEGER NOT NULL, version INTEGER NOT NULL DEFAULT 0,"
	    " deleted INTEGER NOT NULL DEFAULT 0, pending INTEGER NOT NULL"
	    " DEFAULT 0, conflicted INTEGER NOT NULL DEFAULT 0, body TEXT,"
	    " base_body TEXT, base_deleted INTEGER NOT NULL DEFAULT 0,"
	    " base_same INTEGER NOT NULL DEFAULT 0);"
	"INSERT INTO docs VALUES('notes','a',6,4,0,1,0,'{\"t\":\"a6\"}',"
	    "'{\"t\":\"x\"}',0,0);"
	"INSERT INTO docs VALUES('notes','b',2,1,0,1,0,'{\"t\":\"b2\"}',"
	    "'{\"t\":\"b1\"}',0,0);"
	"INSERT INTO docs VALUES('notes','c',1,0,0,1,0,'{\"t\":\"c1\"}',NULL,"
	    "0,0);"
	"CREATE TABLE changes (seq INTEGER PRIMARY KEY, collection TEXT"
	    " NOT NULL, id TEXT NOT NULL, rev INTEGER NOT NULL, origin"
	    " INTEGER NOT NULL, ts INTEGER NOT NULL);"
	"INSERT INTO changes VALUES(1,'notes','a',1,0,1001);"
	"INSERT INTO changes VALUES(2,'notes','b',1,1,1002);"
	"INSERT INTO changes VALUES(3,'notes','a',2,0,1003);"
	"INSERT INTO changes VALUES(4,'notes','c',1,0,1004);"
	"INSERT INTO changes VALUES(5,'notes','a',3,1,1005);"
	"INSERT INTO changes VALUES(6,'notes','b',2,0,1006);"
	"INSERT INTO changes VALUES(7,'notes','a',4,0,1007);"
	"INSERT INTO changes VALUES(8,'notes','a',5,2,1008);"
	"INSERT INTO changes VALUES(9,'notes','a',6,0,1009);"
	"CREATE TABLE conflicts (conflict_id INTEGER PRIMARY KEY,"
	    " collection TEXT NOT NULL, id TEXT NOT NULL, paths TEXT NOT"
	    " NULL, base TEXT, mine TEXT, theirs TEXT, their_version INTEGER"
	    " NOT NULL, their_deleted INTEGER NOT NULL DEFAULT 0, created_ms"
	    " INTEGER NOT NULL, resolved_ms INTEGER);"
	"CREATE TABLE IF NOT EXISTS \"outbox\" (seq INTEGER PRIMARY KEY"
	    " AUTOINCREMENT, collection TEXT NOT NULL, id TEXT NOT NULL, rev"
	    " INTEGER NOT NULL, created_ms INTEGER NOT NULL, record BLOB,"
	    " sig TEXT, change_seq INTEGER, state TEXT NOT NULL DEFAULT"
	    " 'queued', error TEXT);"
	"INSERT INTO outbox VALUES(3,'notes','c',1,1004,'{\"rec\":\"c1\"}',"
	    "'sig-c1',3,'queued',NULL);"
	"INSERT INTO outbox VALUES(4,'notes','b',2,1006,'{\"rec\":\"b2\"}',"
	    "'sig-b2',4,'rejected','too large');"
	"INSERT INTO outbox VALUES(5,'notes','a',6,1007,NULL,NULL,NULL,"
	    "'queued',NULL);"
	"CREATE TABLE parked (seq INTEGER PRIMARY KEY, collection TEXT"
	    " NOT NULL, id TEXT NOT NULL, version INTEGER NOT NULL, change"
	    " TEXT, reason TEXT NOT NULL, created_ms INTEGER NOT NULL);"
	"CREATE TABLE signed (collection TEXT NOT NULL, id TEXT NOT NULL,"
	    " rev INTEGER NOT NULL, version INTEGER NOT NULL, record BLOB"
	    " NOT NULL, sig TEXT NOT NULL);"
	"INSERT INTO signed VALUES('notes','a',1,1,"
	    "X'7b22726563223a226131222c22736571223a317d','sig-a1');"
	"INSERT INTO signed VALUES('notes','a',2,2,"
	    "X'7b22726563223a226132222c22736571223a327d','sig-a2');"
	"DELETE FROM sqlite_sequence;"
	"INSERT INTO sqlite_sequence VALUES('outbox',7);"
	"CREATE UNIQUE INDEX docs_key ON docs(collection, id);"
	"CREATE INDEX conflicts_doc ON conflicts(collection, id);"
	"CREATE UNIQUE INDEX outbox_unsent ON outbox(collection, id)"
	    " WHERE record IS NULL;"
	"CREATE INDEX outbox_doc ON outbox(collection, id);"
	"CREATE INDEX outbox_inflight ON outbox(change_seq) WHERE record"
	    " IS NOT NULL AND state = 'queued';"
	"CREATE INDEX changes_doc ON changes(collection, id, seq);"
	"CREATE INDEX signed_doc ON signed(collection, id, rev);"
	"PRAGMA user_version = 6;";

/* One entry of store_doc_changes, as the test expects it. */
struct want_change {
	int64_t		 seq, rev, ts, version;
	enum store_origin origin;
	const char	*record, *sig;
};

struct got_changes {
	const struct want_change *want;
	size_t		 n, i;
};

static int
check_change_cb(const struct store_doc_change *c, void *arg)
{
	struct got_changes *g = arg;
	const struct want_change *w;

	assert_true(g->i < g->n);
	w = &g->want[g->i++];
	assert_int_equal(c->seq, w->seq);
	assert_int_equal(c->rev, w->rev);
	assert_int_equal(c->origin, w->origin);
	assert_int_equal(c->ts_ms, w->ts);
	assert_int_equal(c->version, w->version);
	if (w->record == NULL) {
		assert_null(c->record);
		if (w->sig == NULL)
			assert_null(c->sig);
		return 0;
	}
	assert_non_null(c->record);
	assert_int_equal(c->record_len, strlen(w->record));
	assert_memory_equal(c->record, w->record, c->record_len);
	assert_string_equal(c->sig, w->sig);
	return 0;
}

static void
check_changes(struct store *st, const char *id, int limit,
    const struct want_change *want, size_t n)
{
	struct got_changes g = { want, n, 0 };

	assert_int_equal(store_doc_changes(st, "notes", id, limit,
	    check_change_cb, &g), (int)n);
	assert_int_equal(g.i, n);
}

/* The first sendable intent, copied for the test. */
struct first_intent {
	int64_t		 oseq, change_seq;
	char		 record[64], sig[16];
};

static int
first_intent_cb(const struct store_intent *in, void *arg)
{
	struct first_intent *fi = arg;

	fi->oseq = in->oseq;
	fi->change_seq = in->change_seq;
	assert_non_null(in->record);
	assert_true(in->record_len < sizeof fi->record);
	memcpy(fi->record, in->record, in->record_len);
	fi->record[in->record_len] = '\0';
	snprintf(fi->sig, sizeof fi->sig, "%s", in->sig);
	return -ECANCELED;
}

/* Count the rows of a query on the replica's file. */
static int
count_rows(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int n = 0;

	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL),
	    SQLITE_OK);
	while (sqlite3_step(st) == SQLITE_ROW)
		n++;
	sqlite3_finalize(st);
	sqlite3_close(db);
	return n;
}

/* Replace f's replica by replica_v6, migrated as store_open does. */
static void
open_v6(struct fixture *f)
{
	sqlite3 *db;

	store_close(f->st);
	f->st = NULL;
	assert_int_equal(unlink(f->path), 0);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, replica_v6, NULL, NULL, NULL),
	    SQLITE_OK);
	sqlite3_close(db);
	assert_int_equal(store_open(f->path, &f->st, NULL), 0);
}

/*
 * Guards the 6 -> 7 migration (issue 8's bench check): the per-document
 * change log, read through the changes_doc index until schema 6, is read
 * through each change's prev chain from schema 7 on, and an existing
 * replica's history must read the same after the backfill, the index
 * gone; a write after the migration extends the chain; with a limit, the
 * latest changes come, oldest first.  The 7 -> 8 migration moves the
 * records out of the outbox: the one in flight is sent again byte for
 * byte, and the applied ones read the same.
 */
static void
test_migrate_v6_history(void **state)
{
	static const struct want_change a[] = {
		{ 1, 1, 1001, 1, STORE_ORIGIN_LOCAL,
		    "{\"rec\":\"a1\",\"seq\":1}", "sig-a1" },
		{ 3, 2, 1003, 2, STORE_ORIGIN_LOCAL,
		    "{\"rec\":\"a2\",\"seq\":2}", "sig-a2" },
		{ 5, 3, 1005, 0, STORE_ORIGIN_REMOTE, NULL, NULL },
		{ 7, 4, 1007, 0, STORE_ORIGIN_LOCAL, NULL, NULL },
		{ 8, 5, 1008, 0, STORE_ORIGIN_MERGE, NULL, NULL },
		{ 9, 6, 1009, 0, STORE_ORIGIN_LOCAL, NULL, NULL },
		{ 10, 7, 1000, 0, STORE_ORIGIN_LOCAL, NULL, NULL },
	};
	static const struct want_change b[] = {
		{ 2, 1, 1002, 0, STORE_ORIGIN_REMOTE, NULL, NULL },
		{ 6, 2, 1006, 0, STORE_ORIGIN_LOCAL, NULL, NULL },
	};
	static const struct want_change c[] = {
		{ 4, 1, 1004, 1, STORE_ORIGIN_LOCAL, "{\"rec\":\"c1\"}",
		    "sig-c1" },
	};
	struct fixture *f = *state;
	struct first_intent fi;
	struct store_counts n;

	open_v6(f);
	check_changes(f->st, "a", 100, a, 6);
	check_changes(f->st, "b", 100, b, 2);
	check_changes(f->st, "a", 2, a + 4, 2);
	assert_int_equal(count_rows(f->path, "SELECT 1 FROM sqlite_master"
	    " WHERE name = 'changes_doc'"), 0);

	put(f->st, "notes", "a", "{\"t\":\"a7\"}");
	check_changes(f->st, "a", 100, a, 7);
	check_changes(f->st, "b", 100, b, 2);

	/* The record in flight, then applied: in c's history. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_outbox_sendable(f->st, 1, first_intent_cb,
	    &fi), -ECANCELED);
	assert_int_equal(fi.oseq, 3);
	assert_int_equal(fi.change_seq, 3);
	assert_string_equal(fi.record, "{\"rec\":\"c1\"}");
	assert_string_equal(fi.sig, "sig-c1");
	assert_int_equal(store_push_applied(f->st, fi.oseq, "notes", "c", 1,
	    "{\"t\":\"c1\"}"), 0);
	assert_int_equal(store_commit(f->st), 0);
	check_changes(f->st, "c", 100, c, 1);
	assert_int_equal(store_counts(f->st, &n), 0);
	assert_int_equal(n.rejected, 1);
	assert_int_equal(store_integrity_check(f->st), 0);
}

/* store_doc_changes_back's entries against a's seqs, newest first. */
struct back_walk {
	const int64_t	*seqs;
	size_t		 left;		/* seqs not walked yet */
	size_t		 got;
	size_t		 stop;		/* stop after this many; 0: never */
	int64_t		 prev;		/* the last entry's */
};

static int
back_cb(const struct store_doc_change *c, void *arg)
{
	struct back_walk *b = arg;

	assert_true(b->left > 0);
	b->left--;
	assert_int_equal(c->seq, b->seqs[b->left]);
	assert_int_equal(c->rev, (int64_t)b->left + 1);
	b->prev = c->prev;
	return ++b->got == b->stop ? -ENOBUFS : 0;
}

/*
 * Guards History's reading of a long change log in short steps (issue:
 * the verification stalled the loop): walked back from the latest entry,
 * then from each step's last prev, a document's entries come newest
 * first, each once, the first one's prev 0; a callback that stops the
 * walk has its value returned, and the next walk starts afresh.
 */
static void
test_doc_changes_back(void **state)
{
	static const int64_t seqs[] = { 1, 3, 5, 7, 8, 9, 10 };
	struct fixture *f = *state;
	struct back_walk b = { seqs, 7, 0, 0, 0 };

	open_v6(f);
	put(f->st, "notes", "a", "{\"t\":\"a7\"}");

	assert_int_equal(store_doc_changes_back(f->st, "notes", "a", 0, 3,
	    back_cb, &b), 3);
	assert_int_equal(b.prev, 7);
	assert_int_equal(store_doc_changes_back(f->st, "notes", "a", b.prev,
	    3, back_cb, &b), 3);
	assert_int_equal(b.prev, 1);
	assert_int_equal(store_doc_changes_back(f->st, "notes", "a", b.prev,
	    3, back_cb, &b), 1);
	assert_int_equal(b.prev, 0);
	assert_int_equal(b.left, 0);

	/* Stopped by the callback after two: the next walk is whole. */
	memset(&b, 0, sizeof b);
	b.seqs = seqs;
	b.left = 7;
	b.stop = 2;
	assert_int_equal(store_doc_changes_back(f->st, "notes", "a", 0, 100,
	    back_cb, &b), -ENOBUFS);
	assert_int_equal(b.prev, 8);
	b.left = 7;
	b.stop = 0;
	assert_int_equal(store_doc_changes_back(f->st, "notes", "a", 0, 100,
	    back_cb, &b), 7);
	assert_int_equal(store_doc_changes_back(f->st, "notes", "nope", 0,
	    100, back_cb, &b), 0);
}

/* One pulled change as store_doc_changes gives it, copied. */
struct pulled_got {
	int64_t		 seq, version, record_ts;
	enum store_origin origin;
	char		 sig[16], change[48], body[32], record[32];
	bool		 has_sig, has_body, has_record;
};

struct pulled_list {
	struct pulled_got e[8];
	size_t		 n;
};

static int
pulled_cb(const struct store_doc_change *c, void *arg)
{
	struct pulled_list *l = arg;
	struct pulled_got *g;

	assert_true(l->n < 8);
	g = &l->e[l->n++];
	memset(g, 0, sizeof *g);
	g->seq = c->seq;
	g->origin = c->origin;
	g->version = c->version;
	g->record_ts = c->record_ts;
	if ((g->has_sig = c->pulled_sig != NULL)) {
		snprintf(g->sig, sizeof g->sig, "%.*s",
		    (int)c->pulled_sig_len, (const char *)c->pulled_sig);
		if (c->device != NULL)
			snprintf(g->change, sizeof g->change, "%.*s:%lld",
			    STORE_DEVICE_LEN, (const char *)c->device,
			    (long long)c->device_seq);
		else
			snprintf(g->change, sizeof g->change, "(none)");
	}
	if ((g->has_body = c->body != NULL))
		snprintf(g->body, sizeof g->body, "%s", c->body);
	if ((g->has_record = c->record != NULL))
		snprintf(g->record, sizeof g->record, "%.*s",
		    (int)c->record_len, (const char *)c->record);
	return 0;
}

static void
pulled_list(struct store *st, const char *id, struct pulled_list *ret)
{
	int n;

	ret->n = 0;
	n = store_doc_changes(st, "c", id, 100, pulled_cb, ret);
	assert_int_equal(n, (int)ret->n);
}

/* Pull one change of c/id in its own batch. */
static void
pull(struct store *st, const char *id, int64_t version, const char *body,
    const struct store_pulled *pl)
{
	struct store_doc cur;
	int64_t seq, rev;
	int r;

	assert_int_equal(store_begin(st), 0);
	memset(&cur, 0, sizeof cur);
	r = store_doc_get(st, STORE_WRITER, "c", id, &cur);
	assert_true(r == 0 || r == -ENOENT);
	assert_int_equal(store_apply_remote(st, &cur, "c", id, version,
	    body == NULL, body, pl, 2000, &seq, &rev), 0);
	store_doc_clear(&cur);
	assert_int_equal(store_commit(st), 0);
}

/*
 * Guards issue 11's last item (ferryctl log offline shows pulled changes,
 * verified): a pulled change's row keeps its change id, version, sig and
 * the record's ts, and the record's text only when the remote sent it; a
 * revision's body is the document's while it is the latest, and moves
 * into its change row when a write (pulled or local) replaces it, so
 * every signed revision can still be rebuilt and checked.  A pulled
 * document not written again keeps no second copy of its body, a record
 * sent whole keeps no body beside it, and a change pulled without a
 * signature keeps nothing to check.
 */
static void
test_pulled_signed(void **state)
{
	struct fixture *f = *state;
	/* Keys are bytes (32 of them); signatures any bytes here. */
	static const char key[] = "KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK";
	struct store_pulled p1 = { key, 1, "S1", 2, 111, NULL, 0 };
	struct store_pulled p2 = { key, 2, "S2", 2, 222, NULL, 0 };
	struct store_pulled p3 = { key, 3, "S3", 2, 333, "{ \"rec\":3}",
	    11 };
	struct store_pulled nokey = { NULL, 0, "S5", 2, 555, NULL, 0 };
	struct store_pulled nosig = { key, 4, NULL, 0, 444, NULL, 0 };
	struct pulled_list l;

	pull(f->st, "a", 1, "{\"x\":1}", &p1);
	assert_int_equal(count_rows(f->path, "SELECT 1 FROM changes"
	    " WHERE body IS NOT NULL"), 0);
	pulled_list(f->st, "a", &l);
	assert_int_equal(l.n, 1);
	assert_true(l.e[0].has_sig);
	assert_string_equal(l.e[0].sig, "S1");
	assert_string_equal(l.e[0].change, "KKKKKKKKKKKKKKKKKKKKKKKKKKKKKKKK:1");
	assert_int_equal(l.e[0].version, 1);
	assert_int_equal(l.e[0].record_ts, 111);
	assert_false(l.e[0].has_record);
	assert_string_equal(l.e[0].body, "{\"x\":1}");

	/* A newer pulled revision: the first keeps its body. */
	pull(f->st, "a", 2, "{\"x\":2}", &p2);
	/* A local write on top: the second keeps its body too. */
	put(f->st, "c", "a", "{\"x\":3}");
	pulled_list(f->st, "a", &l);
	assert_int_equal(l.n, 3);
	assert_string_equal(l.e[0].body, "{\"x\":1}");
	assert_string_equal(l.e[1].body, "{\"x\":2}");
	assert_string_equal(l.e[1].sig, "S2");
	assert_int_equal(l.e[1].version, 2);
	assert_int_equal(l.e[1].record_ts, 222);
	assert_int_equal(l.e[2].origin, STORE_ORIGIN_LOCAL);
	assert_false(l.e[2].has_sig);
	assert_int_equal(count_rows(f->path, "SELECT 1 FROM changes"
	    " WHERE body IS NOT NULL"), 2);

	/* A pulled delete has no body; a write on top keeps none. */
	pull(f->st, "d", 1, NULL, &p1);
	put(f->st, "c", "d", "{\"y\":1}");
	pulled_list(f->st, "d", &l);
	assert_int_equal(l.n, 2);
	assert_true(l.e[0].has_sig);
	assert_false(l.e[0].has_body);

	/* A record sent whole is kept, and no body beside it. */
	pull(f->st, "b", 1, "{\"rec\":3}", &p3);
	put(f->st, "c", "b", "{\"rec\":4}");
	pulled_list(f->st, "b", &l);
	assert_int_equal(l.n, 2);
	assert_true(l.e[0].has_record);
	assert_string_equal(l.e[0].record, "{ \"rec\":3}");
	assert_false(l.e[0].has_body);
	assert_int_equal(count_rows(f->path, "SELECT 1 FROM changes"
	    " WHERE body IS NOT NULL"), 2);

	/* No signature, nothing to check: nothing kept. */
	pull(f->st, "e", 1, "{\"z\":1}", &nosig);
	pull(f->st, "e", 2, "{\"z\":2}", NULL);
	pulled_list(f->st, "e", &l);
	assert_int_equal(l.n, 2);
	assert_false(l.e[0].has_sig);
	assert_false(l.e[1].has_sig);
	assert_int_equal(count_rows(f->path, "SELECT 1 FROM changes"
	    " WHERE body IS NOT NULL OR device IS NOT NULL AND sig IS NULL"),
	    2);

	/* A change id that names no key: the signature is kept alone. */
	pull(f->st, "k", 1, "{\"k\":1}", &nokey);
	pulled_list(f->st, "k", &l);
	assert_int_equal(l.n, 1);
	assert_true(l.e[0].has_sig);
	assert_string_equal(l.e[0].change, "(none)");
	assert_int_equal(l.e[0].record_ts, 555);
	assert_int_equal(store_integrity_check(f->st), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_put_get, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wal_bound, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reader_isolation, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rollback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_coalesce, setup, teardown),
		cmocka_unit_test_setup_teardown(test_changes_since, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_tombstone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_not_a_database, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_write_needs_batch, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_merge_replaces_inflight,
		    setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_base, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_sendable_after, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_settle_change, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_savepoint_nested, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_savepoint_parked, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_migrate_v6_history, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_doc_changes_back, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_applied_writes_once, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_pulled_signed, setup,
		    teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
