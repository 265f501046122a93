/*
 * durawriter: the writer and checker of the durability test (t0004).
 *
 *   durawriter SOCKET --prefix P --log FILE [--count N] [--depth D]
 *              [--collection C] [--size BYTES]
 *     Connects with libferry and pipelines Puts (D in flight, default 32)
 *     of new documents P-0, P-1, ... until N (default 1000000) are
 *     acknowledged or the connection fails (the test kills ferryd).  After
 *     each acknowledged Put it appends "C ID REV" to FILE; a Put answered
 *     with an error (WriteFailed) is appended as "! C ID" (it must not
 *     have happened); when a send fails, the replies ferryd made before
 *     it went are still read; when the connection fails, every Put still
 *     in flight is appended as "? C ID" (it may or may not have happened).
 *     Answered errors are reported on stderr.  Prints "wrote K"
 *     (acknowledged writes) and exits 0 either way: a killed daemon is the
 *     point, not an error.
 *
 *   durawriter SOCKET --verify FILE...
 *     Gets every document the logs name.  An acknowledged one must exist
 *     at exactly the logged rev, not deleted, with exactly the body that
 *     was written; a refused one must be absent; one in flight must be
 *     absent or exactly written (all or nothing).  Prints "verified K
 *     acknowledged, R refused, U unacknowledged (H present)" or a
 *     "FAIL ..." line per fault (exit 1).
 *
 *   durawriter --integrity DBFILE
 *     Runs PRAGMA integrity_check on a replica (ferryd stopped): prints
 *     "integrity ok" or SQLite's findings (exit 1).  Only when built with
 *     DURAWRITER_SQLITE defined and sqlite3 linked; otherwise it exits 77
 *     ("skipped"), so the tool builds with libferry and jansson alone.
 *
 * The body of document ID is a pure function of ID: {"id":ID,"pad":P,
 * "sum":S} where P is pseudo-random text seeded from ID and S its FNV-1a
 * hash, so the verifier needs nothing but the id to know the exact body,
 * and a torn or mixed-up body cannot pass.  The writer is never killed, so
 * its log needs no fsync; stdio is flushed per line anyway.
 */
#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>
#ifdef DURAWRITER_SQLITE
#include <sqlite3.h>
#endif

#include "ferry.h"

#define DEPTH_MAX	1024
#define SIZE_MAX_PAD	65536

struct writer {
	const char	*socket;
	const char	*prefix;
	const char	*log;
	const char	*collection;
	long		 count;
	long		 depth;
	long		 size;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: durawriter SOCKET --prefix P --log FILE [--count N]\n"
	    "                  [--depth D] [--collection C] [--size BYTES]\n"
	    "       durawriter SOCKET --verify FILE...\n"
	    "       durawriter --integrity DBFILE\n");
	exit(2);
}

static long
parse_long(const char *s, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "durawriter: bad number '%s'\n", s);
		usage();
	}
	return v;
}

static uint64_t
fnv1a(const char *s, size_t len)
{
	uint64_t h = 14695981039346656037ULL;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 1099511628211ULL;
	}
	return h;
}

/* The one body document id may have; size is the pad's length. */
static json_t *
body_for(const char *id, long size)
{
	static const char alphabet[] =
	    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	uint64_t x = fnv1a(id, strlen(id)) | 1;
	char *pad;
	json_t *body;
	long i;

	if ((pad = malloc((size_t)size + 1)) == NULL)
		return NULL;
	for (i = 0; i < size; i++) {
		/* xorshift64 */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		pad[i] = alphabet[x % (sizeof alphabet - 1)];
	}
	pad[size] = '\0';
	body = json_pack("{s:s,s:s,s:I}", "id", id, "pad", pad, "sum",
	    (json_int_t)(fnv1a(pad, (size_t)size) & INT64_MAX));
	free(pad);
	return body;
}

/* The size of the pad is recoverable from the body's own text, so the
 * verifier needs no --size: it is the length of "pad" if the sum checks. */
static bool
body_ok(const char *id, json_t *got)
{
	json_t *want, *pad;
	bool ok;

	pad = json_object_get(got, "pad");
	if (!json_is_string(pad))
		return false;
	want = body_for(id, (long)json_string_length(pad));
	ok = want != NULL && json_equal(want, got);
	json_decref(want);
	return ok;
}

static int
write_mode(const struct writer *w)
{
	char ids[DEPTH_MAX][200];
	long sent = 0, acked = 0, failed = 0, head = 0, inflight = 0;
	bool draining = false;
	char *params_text, *reply = NULL;
	json_t *params, *body, *rj;
	json_error_t jerr;
	FILE *log;
	ferry *f;
	int r;

	if ((log = fopen(w->log, "a")) == NULL) {
		fprintf(stderr, "durawriter: %s: %s\n", w->log,
		    strerror(errno));
		return 2;
	}
	setvbuf(log, NULL, _IOLBF, 0);
	if ((r = ferry_connect(w->socket, &f)) < 0) {
		fprintf(stderr, "durawriter: connect: %s\n",
		    ferry_errmsg(NULL));
		printf("wrote 0\n");
		fclose(log);
		return 0;
	}
	while (acked + failed < w->count) {
		while (!draining && inflight < w->depth && sent < w->count) {
			char *slot = ids[(head + inflight) % w->depth];

			snprintf(slot, sizeof ids[0], "%s-%ld", w->prefix, sent);
			body = body_for(slot, w->size);
			params = json_pack("{s:s,s:s,s:o}", "collection",
			    w->collection, "id", slot, "body", body);
			params_text = params == NULL ? NULL :
			    json_dumps(params, JSON_COMPACT);
			json_decref(params);
			if (params_text == NULL) {
				fprintf(stderr, "durawriter: out of memory\n");
				return 2;
			}
			r = ferry_send(f, "io.ferry.Put", params_text);
			free(params_text);
			/* Even a failed send may have reached the daemon. */
			sent++;
			inflight++;
			if (r < 0) {
				/* The daemon may have answered earlier calls
				 * before it went: read what came. */
				draining = true;
				break;
			}
		}
		if (inflight == 0)
			goto dead;
		r = ferry_recv(f, &reply, NULL);
		if (r < 0 && ferry_errname(f) == NULL)
			goto dead;
		if (r < 0) {
			/* Answered, but not acknowledged (WriteFailed...). */
			fprintf(stderr, "durawriter: %s: %s\n", ids[head],
			    ferry_errmsg(f));
			fprintf(log, "! %s %s\n", w->collection, ids[head]);
			failed++;
		} else {
			rj = json_loads(reply, 0, &jerr);
			free(reply);
			reply = NULL;
			fprintf(log, "%s %s %" JSON_INTEGER_FORMAT "\n",
			    w->collection, ids[head], json_integer_value(
			    json_object_get(json_object_get(rj, "doc"),
			    "rev")));
			json_decref(rj);
			acked++;
		}
		head = (head + 1) % w->depth;
		inflight--;
	}
	goto out;
dead:
	fprintf(stderr, "durawriter: connection ended: %s\n", ferry_errmsg(f));
	for (; inflight > 0; inflight--) {
		fprintf(log, "? %s %s\n", w->collection, ids[head]);
		head = (head + 1) % w->depth;
	}
out:
	ferry_close(f);
	if (fclose(log) != 0) {
		fprintf(stderr, "durawriter: %s: %s\n", w->log,
		    strerror(errno));
		return 2;
	}
	printf("wrote %ld\n", acked);
	return 0;
}

#define REV_IN_FLIGHT	(-1)	/* may or may not have happened */
#define REV_REFUSED	(-2)	/* must not have happened */

struct check {
	char	collection[200];
	char	id[200];
	long	rev;		/* > 0, or REV_IN_FLIGHT, REV_REFUSED */
};

/* Check one Get result; r and reply as ferry_recv gave them. */
static bool
verify_one(ferry *f, const struct check *c, int r, const char *reply,
    long *present)
{
	json_error_t jerr;
	json_t *rj, *doc;
	bool ok = false;

	if (r == -ENOENT && c->rev < 0)
		return true;
	if (r == 0 && c->rev == REV_REFUSED) {
		printf("FAIL %s/%s: refused with an error, yet present: "
		    "%.300s\n", c->collection, c->id, reply);
		return false;
	}
	if (r < 0) {
		printf("FAIL %s/%s (rev %ld): %s\n", c->collection, c->id,
		    c->rev, ferry_errmsg(f));
		return false;
	}
	rj = json_loads(reply, 0, &jerr);
	doc = json_object_get(rj, "doc");
	if (json_is_true(json_object_get(doc, "deleted")))
		printf("FAIL %s/%s: deleted\n", c->collection, c->id);
	else if (c->rev >= 0 && json_integer_value(json_object_get(doc,
	    "rev")) != c->rev)
		printf("FAIL %s/%s: rev %" JSON_INTEGER_FORMAT ", logged %ld\n",
		    c->collection, c->id, json_integer_value(json_object_get(doc,
		    "rev")), c->rev);
	else if (!body_ok(c->id, json_object_get(doc, "body")))
		printf("FAIL %s/%s: wrong body: %.300s\n", c->collection, c->id,
		    reply);
	else
		ok = true;
	if (ok && c->rev < 0)
		(*present)++;
	json_decref(rj);
	return ok;
}

static bool
parse_line(const char *line, struct check *c)
{
	if (line[0] == '?' || line[0] == '!') {
		c->rev = line[0] == '?' ? REV_IN_FLIGHT : REV_REFUSED;
		return sscanf(line + 1, " %199s %199s", c->collection,
		    c->id) == 2;
	}
	return sscanf(line, "%199s %199s %ld", c->collection, c->id,
	    &c->rev) == 3 && c->rev > 0;
}

static int
verify_mode(const char *socket, char **files, int nfiles)
{
	struct check ring[64];
	long acked = 0, refused = 0, unacked = 0, present = 0, bad = 0;
	long head = 0, n = 0;
	char line[512], *reply, params[512];
	bool eof = false;
	FILE *in = NULL;
	ferry *f;
	int fi = 0, r;

	if (ferry_connect(socket, &f) < 0) {
		printf("FAIL connect: %s\n", ferry_errmsg(NULL));
		return 1;
	}
	for (;;) {
		/* Keep up to 64 Gets in flight. */
		while (!eof && n < 64) {
			struct check *c = &ring[(head + n) % 64];

			if (in == NULL) {
				if (fi == nfiles) {
					eof = true;
					break;
				}
				if ((in = fopen(files[fi], "r")) == NULL) {
					printf("FAIL %s: %s\n", files[fi],
					    strerror(errno));
					return 1;
				}
			}
			if (fgets(line, sizeof line, in) == NULL) {
				fclose(in);
				in = NULL;
				fi++;
				continue;
			}
			if (!parse_line(line, c)) {
				printf("FAIL %s: bad line: %s", files[fi], line);
				return 1;
			}
			snprintf(params, sizeof params,
			    "{\"collection\":\"%s\",\"id\":\"%s\"}",
			    c->collection, c->id);
			if ((r = ferry_send(f, "io.ferry.Get", params)) < 0) {
				printf("FAIL send: %s\n", ferry_errmsg(f));
				return 1;
			}
			n++;
		}
		if (n == 0)
			break;
		reply = NULL;
		r = ferry_recv(f, &reply, NULL);
		if (r < 0 && r != -ENOENT && ferry_errname(f) == NULL) {
			printf("FAIL recv: %s\n", ferry_errmsg(f));
			return 1;
		}
		if (!verify_one(f, &ring[head], r, reply, &present))
			bad++;
		if (ring[head].rev == REV_REFUSED)
			refused++;
		else if (ring[head].rev < 0)
			unacked++;
		else
			acked++;
		free(reply);
		head = (head + 1) % 64;
		n--;
	}
	ferry_close(f);
	if (bad > 0) {
		printf("FAIL %ld of %ld writes\n", bad,
		    acked + refused + unacked);
		return 1;
	}
	printf("verified %ld acknowledged, %ld refused, %ld unacknowledged "
	    "(%ld present)\n", acked, refused, unacked, present);
	return 0;
}

#ifdef DURAWRITER_SQLITE
static int
integrity_mode(const char *path)
{
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;
	int rc, rows = 0, bad = 0;
	const char *text;

	rc = sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL);
	if (rc != SQLITE_OK) {
		printf("FAIL cannot open %s: %s\n", path, db != NULL ?
		    sqlite3_errmsg(db) : sqlite3_errstr(rc));
		sqlite3_close(db);
		return 1;
	}
	rc = sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_step(st);
	for (; rc == SQLITE_ROW; rc = sqlite3_step(st)) {
		text = (const char *)sqlite3_column_text(st, 0);
		rows++;
		if (text == NULL || strcmp(text, "ok") != 0) {
			printf("FAIL %s\n", text != NULL ? text : "(null)");
			bad++;
		}
	}
	if (rc != SQLITE_DONE) {
		printf("FAIL %s: %s\n", path, sqlite3_errmsg(db));
		bad++;
	}
	sqlite3_finalize(st);
	sqlite3_close(db);
	if (bad > 0 || rows == 0)
		return 1;
	printf("integrity ok\n");
	return 0;
}
#else
static int
integrity_mode(const char *path)
{
	printf("SKIP built without sqlite3\n");
	return 77;
}
#endif

int
main(int argc, char **argv)
{
	struct writer w;
	int i;

	if (argc == 3 && strcmp(argv[1], "--integrity") == 0)
		return integrity_mode(argv[2]);
	if (argc < 3 || argv[1][0] == '-')
		usage();
	if (strcmp(argv[2], "--verify") == 0) {
		if (argc < 4)
			usage();
		return verify_mode(argv[1], argv + 3, argc - 3);
	}
	memset(&w, 0, sizeof w);
	w.socket = argv[1];
	w.collection = "dura";
	w.count = 1000000;
	w.depth = 32;
	w.size = 200;
	for (i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (strcmp(argv[i], "--prefix") == 0)
			w.prefix = argv[++i];
		else if (strcmp(argv[i], "--log") == 0)
			w.log = argv[++i];
		else if (strcmp(argv[i], "--collection") == 0)
			w.collection = argv[++i];
		else if (strcmp(argv[i], "--count") == 0)
			w.count = parse_long(argv[++i], 1, LONG_MAX);
		else if (strcmp(argv[i], "--depth") == 0)
			w.depth = parse_long(argv[++i], 1, DEPTH_MAX);
		else if (strcmp(argv[i], "--size") == 0)
			w.size = parse_long(argv[++i], 0, SIZE_MAX_PAD);
		else
			usage();
	}
	if (w.prefix == NULL || w.log == NULL || strlen(w.prefix) > 100 ||
	    strlen(w.collection) > 128)
		usage();
	return write_mode(&w);
}
