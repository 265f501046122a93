/*
 * chaoswriter: the writer of the chaos test (t3001), one per device.
 *
 *   chaoswriter SOCKET --create-shared N [--collection C]
 *	Puts the shared documents d0..d(N-1) ({"n":i}) on this device, to
 *	be synced to the others before the chaos starts.  Prints "created N".
 *
 *   chaoswriter SOCKET --device K --count N [--shared S] [--seconds T]
 *               [--rate R] [--collection C] [--expect FILE]
 *	Writes N changes through libferry (pipelined, 16 in flight), or as
 *	many as T seconds (default 120) allow, at most R a second if given
 *	(so that syncing interleaves with writing: many small pushes and
 *	pulls, each a chance for a fault), and counts those ferryd
 *	acknowledged.  Change i is, by i mod 10:
 *	  0       Put of a new document of this device's own, oK-i,
 *	          {"dev":K,"i":i}
 *	  4       (in even tens) Delete of oK-(i-4), made four changes
 *	          earlier
 *	  9       (in odd tens) Put of a second body on oK-(i-9),
 *	          {"dev":K,"i":i,"v":2}
 *	  others  Patch of shared document d((7i + 13K) mod S) with
 *	          {"fK":i}: only device K ever writes /fK, so edits of one
 *	          document by several devices are disjoint and must merge.
 *	What the acknowledged changes promise is written to FILE, one line
 *	each: "C/dJ fK V" (field fK of shared dJ ends as V) and "C/oK-I BODY"
 *	or "C/oK-I -" (deleted: a tombstone on the server, or nothing if
 *	the Put and the Delete were never sent apart), BODY compact with
 *	sorted keys as the server stores it.  Prints "acked A puts P
 *	patches Q deletes D errors E" and exits 0 if every change was
 *	acknowledged (E = 0) before the deadline, else 1 (the line is
 *	printed either way, and each error on stderr).
 *
 * The writer talks to ferryd only, never to the network: the faults of the
 * test are between ferryd and its remote, and every write here must be
 * acknowledged at once whatever they do (the local write path never waits
 * for the network).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ferry.h"

#define DEPTH		16	/* calls in flight */
#define SHARED_MAX	1000
#define COUNT_MAX	1000000

enum op_kind {
	OP_PUT,
	OP_PATCH,
	OP_DELETE,
	OP_REPUT
};

struct op {
	enum op_kind	 kind;
	long		 i;
	long		 target;	/* shared doc index, or own doc's i */
};

struct writer {
	ferry		*f;
	const char	*collection;
	long		 device;
	long		 shared;
	long		*field;		/* last acked value of fK per shared */
	signed char	*own;		/* per i: 0 none, 1 put, 2 reput, 3 del */
	long		 acked, puts, patches, deletes, errors;
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: chaoswriter SOCKET --create-shared N [--collection C]\n"
	    "       chaoswriter SOCKET --device K --count N [--shared S] "
	    "[--seconds T]\n"
	    "                   [--rate R] [--collection C] [--expect FILE]\n");
	exit(2);
}

static long
parse_num(const char *s, long min, long max, const char *what)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "chaoswriter: %s '%s' is not an integer from "
		    "%ld to %ld\n", what, s, min, max);
		exit(2);
	}
	return v;
}

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void
pause_s(double s)
{
	struct timespec ts;

	if (s <= 0)
		return;
	ts.tv_sec = (time_t)s;
	ts.tv_nsec = (long)((s - ts.tv_sec) * 1e9);
	nanosleep(&ts, NULL);
}

/* What change i is (see the top of the file). */
static struct op
op_of(const struct writer *w, long i)
{
	struct op o;

	o.i = i;
	if (i % 10 == 0) {
		o.kind = OP_PUT;
		o.target = i;
	} else if (i % 10 == 4 && (i / 10) % 2 == 0) {
		o.kind = OP_DELETE;
		o.target = i - 4;
	} else if (i % 10 == 9 && (i / 10) % 2 == 1) {
		o.kind = OP_REPUT;
		o.target = i - 9;
	} else {
		o.kind = OP_PATCH;
		o.target = (7 * i + 13 * w->device) % w->shared;
	}
	return o;
}

static int
op_send(struct writer *w, const struct op *o)
{
	char p[512];

	switch (o->kind) {
	case OP_PUT:
	case OP_REPUT:
		snprintf(p, sizeof p, "{\"collection\":\"%s\",\"id\":\"o%ld-%ld\","
		    "\"body\":{\"dev\":%ld,\"i\":%ld%s}}", w->collection,
		    w->device, o->target, w->device, o->i,
		    o->kind == OP_REPUT ? ",\"v\":2" : "");
		return ferry_send(w->f, "io.ferry.Put", p);
	case OP_DELETE:
		snprintf(p, sizeof p, "{\"collection\":\"%s\",\"id\":\"o%ld-%ld\"}",
		    w->collection, w->device, o->target);
		return ferry_send(w->f, "io.ferry.Delete", p);
	case OP_PATCH:
		snprintf(p, sizeof p, "{\"collection\":\"%s\",\"id\":\"d%ld\","
		    "\"patch\":{\"f%ld\":%ld}}", w->collection, o->target,
		    w->device, o->i);
		return ferry_send(w->f, "io.ferry.Patch", p);
	}
	return -EINVAL;
}

/* Take the reply to o.  0, or -errno when the connection is gone. */
static int
op_recv(struct writer *w, const struct op *o)
{
	char *reply = NULL;
	int r;

	r = ferry_recv(w->f, &reply, NULL);
	free(reply);
	if (r < 0) {
		w->errors++;
		fprintf(stderr, "chaoswriter: device %ld change %ld: %s\n",
		    w->device, o->i, ferry_errmsg(w->f));
		return r == -ECONNRESET || ferry_errname(w->f) == NULL ? r : 0;
	}
	w->acked++;
	switch (o->kind) {
	case OP_PUT:
		w->puts++;
		w->own[o->target] = 1;
		break;
	case OP_REPUT:
		w->puts++;
		w->own[o->target] = 2;
		break;
	case OP_DELETE:
		w->deletes++;
		w->own[o->target] = 3;
		break;
	case OP_PATCH:
		w->patches++;
		w->field[o->target] = o->i;
		break;
	}
	return 0;
}

static int
write_expect(const struct writer *w, const char *path, long n)
{
	FILE *fp;
	long i;

	if ((fp = fopen(path, "w")) == NULL) {
		fprintf(stderr, "chaoswriter: %s: %s\n", path,
		    strerror(errno));
		return -1;
	}
	for (i = 0; i < w->shared; i++)
		if (w->field[i] >= 0)
			fprintf(fp, "%s/d%ld f%ld %ld\n", w->collection, i,
			    w->device, w->field[i]);
	for (i = 0; i < n; i++) {
		switch (w->own[i]) {
		case 1:
			fprintf(fp, "%s/o%ld-%ld {\"dev\":%ld,\"i\":%ld}\n",
			    w->collection, w->device, i, w->device, i);
			break;
		case 2:
			fprintf(fp, "%s/o%ld-%ld {\"dev\":%ld,\"i\":%ld,"
			    "\"v\":2}\n", w->collection, w->device, i,
			    w->device, i + 9);
			break;
		case 3:
			fprintf(fp, "%s/o%ld-%ld -\n", w->collection,
			    w->device, i);
			break;
		}
	}
	return fclose(fp) == 0 ? 0 : -1;
}

static int
create_shared(ferry *f, const char *collection, long n)
{
	char body[64], *reply;
	char id[32];
	long i;

	for (i = 0; i < n; i++) {
		snprintf(id, sizeof id, "d%ld", i);
		snprintf(body, sizeof body, "{\"n\":%ld}", i);
		reply = NULL;
		if (ferry_put(f, collection, id, body, -1, &reply) < 0) {
			fprintf(stderr, "chaoswriter: Put %s/%s: %s\n",
			    collection, id, ferry_errmsg(f));
			return 1;
		}
		free(reply);
	}
	printf("created %ld\n", n);
	return 0;
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "create-shared", required_argument, NULL, 'S' },
		{ "device", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'n' },
		{ "shared", required_argument, NULL, 's' },
		{ "seconds", required_argument, NULL, 't' },
		{ "collection", required_argument, NULL, 'c' },
		{ "expect", required_argument, NULL, 'e' },
		{ "rate", required_argument, NULL, 'r' },
		{ NULL, 0, NULL, 0 },
	};
	struct writer w;
	struct op ring[DEPTH];
	const char *expect = NULL;
	long count = -1, create = -1, seconds = 120, rate = 0;
	long sent = 0, done = 0;
	double start, deadline, due, t;
	bool lost = false;
	int ch, status;

	memset(&w, 0, sizeof w);
	w.collection = "chaos";
	w.device = -1;
	w.shared = 50;
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'S':
			create = parse_num(optarg, 1, SHARED_MAX,
			    "--create-shared");
			break;
		case 'd':
			w.device = parse_num(optarg, 0, 999, "--device");
			break;
		case 'n':
			count = parse_num(optarg, 1, COUNT_MAX, "--count");
			break;
		case 's':
			w.shared = parse_num(optarg, 1, SHARED_MAX,
			    "--shared");
			break;
		case 't':
			seconds = parse_num(optarg, 1, 3600, "--seconds");
			break;
		case 'c':
			w.collection = optarg;
			break;
		case 'e':
			expect = optarg;
			break;
		case 'r':
			rate = parse_num(optarg, 1, 1000000, "--rate");
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1 || (create < 0 && (w.device < 0 ||
	    count < 0)))
		usage();
	if (ferry_connect(argv[optind], &w.f) < 0) {
		fprintf(stderr, "chaoswriter: %s\n", ferry_errmsg(NULL));
		return 1;
	}
	if (create > 0) {
		status = create_shared(w.f, w.collection, create);
		ferry_close(w.f);
		return status;
	}
	w.field = malloc(w.shared * sizeof *w.field);
	w.own = calloc(count, 1);
	if (w.field == NULL || w.own == NULL) {
		fprintf(stderr, "chaoswriter: out of memory\n");
		return 1;
	}
	memset(w.field, 0xff, w.shared * sizeof *w.field);	/* -1: none */

	start = now_s();
	deadline = start + seconds;
	while (done < sent || (sent < count && !lost)) {
		t = now_s();
		due = rate > 0 ? start + (double)sent / rate : t;
		if (sent < count && !lost && sent - done < DEPTH &&
		    t < deadline) {
			if (t < due && done == sent) {
				/* Paced: nothing to read, so wait for the slot. */
				pause_s((due < deadline ? due : deadline) - t);
				continue;
			}
			if (t >= due) {
				ring[sent % DEPTH] = op_of(&w, sent);
				if (op_send(&w, &ring[sent % DEPTH]) < 0) {
					fprintf(stderr, "chaoswriter: device "
					    "%ld: send: %s\n", w.device,
					    ferry_errmsg(w.f));
					lost = true;
					continue;
				}
				sent++;
				continue;
			}
		}
		if (done == sent)
			break;		/* the deadline passed */
		if (op_recv(&w, &ring[done % DEPTH]) < 0)
			lost = true;
		done++;
	}
	printf("acked %ld puts %ld patches %ld deletes %ld errors %ld\n",
	    w.acked, w.puts, w.patches, w.deletes, w.errors);
	status = w.errors == 0 && !lost && w.acked == count ? 0 : 1;
	if (w.acked < count)
		fprintf(stderr, "chaoswriter: device %ld: %ld of %ld changes "
		    "acknowledged within %ld s\n", w.device, w.acked, count,
		    seconds);
	if (expect != NULL && write_expect(&w, expect, count) < 0)
		status = 1;
	ferry_close(w.f);
	free(w.field);
	free(w.own);
	return status;
}
