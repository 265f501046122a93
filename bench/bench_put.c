/*
 * bench_put: durable Put latency and throughput against a running ferryd.
 *
 * -m seq (default): one connection puts -n documents one after another
 * (ferry_put, blocking), each a new id with a BENCH_DOC_BYTES body, and
 * the time from the call to its reply is taken per Put.  The reply comes
 * only after the batch holding the write is committed with
 * synchronous=FULL, so every sample includes at least one fsync.  Figures:
 * put_seq_p50 and put_seq_p99 (ms).
 *
 * -m pipe: -c threads, each with its own connection, keep -d Puts in
 * flight (ferry_send, then one ferry_recv per reply and one ferry_send per
 * reply until the thread's share of -n is sent), distinct ids.  After a
 * warm-up of -w Puts per thread, all threads wait on a barrier; the clock
 * runs from that barrier until the last thread has read its last reply.
 * Figure: put_pipe_rate, acknowledged Puts per second.  The time from
 * queueing a Put to reading its reply is also reported (put_pipe_p50/p99).
 *
 * -m raw: as pipe, but each thread speaks the wire protocol itself on a
 * plain socket (pre-formatted calls, replies only counted and checked for
 * "error"), with no JSON work in the client: it shows what the daemon
 * alone can take when the client costs next to nothing.  After each read,
 * one call is sent per reply read, in one write.  Figures: put_raw_rate,
 * put_raw_p50/p99.
 *
 * -p PID: afterwards, read VmRSS and VmHWM of that process (ferryd) from
 * /proc/PID/status, and the daemon's document count from Status.  Figures:
 * ferryd_vmrss, ferryd_vmhwm (MB), ferryd_docs.
 *
 * -N NAME replaces the put_<mode> part of the figure names (run.sh calls
 * the 1,000,000-document fill fill_put).  Ids may carry a prefix (-i) so
 * that repeated runs against one daemon create new documents rather than
 * update old ones.
 */
#include "autoconfig.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "bench_common.h"

#define PROG		"bench_put"
#define CLIENTS_MAX	1024
#define DEPTH_MAX	4096
#define RAW_IN_SIZE	(256 * 1024)

struct opts {
	const char	*socket;
	const char	*mode;
	const char	*prefix;
	const char	*name;		/* of the figures; default put_<mode> */
	long		 count;
	long		 warmup;
	long		 clients;
	long		 depth;
	long		 bytes;
	long		 limit;	/* seconds */
	long		 pid;
};

struct client {
	const struct opts	*o;
	int			 idx;
	long			 count;		/* this thread's share */
	pthread_barrier_t	*barrier;
	uint64_t		 deadline;	/* ns, monotonic */
	long			 acked;
	int64_t			*lat;		/* per acked Put, ns */
	uint64_t		 end;		/* ns, last reply read */
	int			 stopped;	/* hit the time limit */
};

static void
usage(void)
{
	fprintf(stderr,
	    "usage: bench_put [-m seq|pipe|raw] [-s SOCKET] [-n COUNT]\n"
	    "                 [-w WARMUP] [-c CLIENTS] [-d DEPTH] [-b BYTES]\n"
	    "                 [-t SECONDS] [-i ID-PREFIX] [-N NAME]\n"
	    "                 [-p FERRYD-PID]\n"
	    "  -s  ferryd's socket (default $FERRY_SOCKET, else\n"
	    "      $XDG_RUNTIME_DIR/ferry/ferryd.sock)\n"
	    "  -m  seq: one client, sequential Puts (default);\n"
	    "      pipe: CLIENTS connections with DEPTH Puts in flight each;\n"
	    "      raw: as pipe, on the raw socket protocol without libferry\n"
	    "  -n  measured Puts in all (default 10000 seq, 320000 pipe/raw)\n"
	    "  -w  warm-up Puts (seq: in all, else per client; default 500)\n"
	    "  -c  clients (default 16)\n"
	    "  -d  calls in flight per client (default 32)\n"
	    "  -b  body bytes (default %d)   -t  time limit (default %d s)\n"
	    "  -i  prefix of the document ids (default none)\n"
	    "  -N  name of the figures (default put_<mode>)\n"
	    "  -p  report VmRSS/VmHWM of this pid (ferryd) at the end\n",
	    BENCH_DOC_BYTES, BENCH_TIME_LIMIT);
	exit(2);
}

/* Queue one Put of document number n with id "<prefix><tag><n>". */
static int
send_put(ferry *f, const struct opts *o, const char *tag, long n)
{
	char body[BENCH_BODY_MAX], params[BENCH_PARAMS_MAX], id[128];

	snprintf(id, sizeof id, "%s%s%ld", o->prefix, tag, n);
	if (bench_body(body, sizeof body, (size_t)o->bytes, (uint64_t)n) < 0 ||
	    bench_put_params(params, sizeof params, id, body) < 0)
		bench_fatal(PROG, "cannot build a %ld-byte body", o->bytes);
	return ferry_send(f, "io.ferry.Put", params);
}

/*
 * Put count documents tagged tag through f with depth calls in flight.
 * Returns the number acknowledged; stops sending at the deadline.  If lat
 * is not NULL, lat[i] is the time from queueing Put i to reading its reply.
 */
static long
pipeline(ferry *f, const struct opts *o, const char *tag, long count,
    uint64_t deadline, int64_t *lat, int *ret_stopped)
{
	uint64_t sent_at[DEPTH_MAX];
	long sent = 0, acked = 0;
	int r;

	while (sent < count && sent < o->depth) {
		sent_at[sent % o->depth] = bench_now_ns();
		if ((r = send_put(f, o, tag, sent)) < 0)
			bench_ferry_fatal(PROG, f, r, "Put");
		sent++;
	}
	while (acked < sent) {
		if ((r = ferry_recv(f, NULL, NULL)) < 0)
			bench_ferry_fatal(PROG, f, r, "Put reply");
		if (lat != NULL)
			lat[acked] = (int64_t)(bench_now_ns() -
			    sent_at[acked % o->depth]);
		acked++;
		if (sent == count)
			continue;
		if ((acked & 63) == 0 && bench_now_ns() > deadline) {
			*ret_stopped = 1;
			count = sent;
			continue;
		}
		sent_at[sent % o->depth] = bench_now_ns();
		if ((r = send_put(f, o, tag, sent)) < 0)
			bench_ferry_fatal(PROG, f, r, "Put");
		sent++;
	}
	return acked;
}

static int
raw_connect(const struct opts *o)
{
	struct sockaddr_un sun;
	char *path;
	int fd;

	path = o->socket != NULL ? strdup(o->socket) : ferry_default_socket();
	if (path == NULL)
		bench_fatal(PROG, "no socket path");
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path)
		bench_fatal(PROG, "%s: socket path too long", path);
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0)
		bench_fatal(PROG, "%s: %s", path, strerror(errno));
	free(path);
	return fd;
}

/* Append the calls for Puts first..first+k-1 to buf; returns the length. */
static size_t
raw_calls(char *buf, size_t size, const struct opts *o, const char *tag,
    long first, long k)
{
	char body[BENCH_BODY_MAX];
	size_t len = 0;
	long n;
	int m;

	for (n = first; n < first + k; n++) {
		if (bench_body(body, sizeof body, (size_t)o->bytes,
		    (uint64_t)n) < 0)
			bench_fatal(PROG, "cannot build a %ld-byte body",
			    o->bytes);
		m = snprintf(buf + len, size - len,
		    "{\"method\":\"io.ferry.Put\",\"parameters\":"
		    "{\"collection\":\"" BENCH_COLLECTION "\","
		    "\"id\":\"%s%s%ld\",\"body\":%s}}", o->prefix, tag, n,
		    body);
		if (m < 0 || (size_t)m + 1 >= size - len)
			bench_fatal(PROG, "call buffer too small");
		len += (size_t)m + 1;	/* keep snprintf's NUL: the delimiter */
	}
	return len;
}

static void
raw_write(int fd, const char *buf, size_t len)
{
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, buf, len)) < 0) {
			if (errno == EINTR)
				continue;
			bench_fatal(PROG, "write: %s", strerror(errno));
		}
		buf += n;
		len -= (size_t)n;
	}
}

/* As pipeline(), on the raw socket fd; in is RAW_IN_SIZE bytes. */
static long
raw_pipeline(int fd, char *in, const struct opts *o, const char *tag,
    long count, uint64_t deadline, int64_t *lat, int *ret_stopped)
{
	uint64_t sent_at[DEPTH_MAX], now;
	size_t out_size, len, have = 0, i, start;
	long sent = 0, acked = 0, k, j;
	char *out;
	ssize_t n;

	out_size = (size_t)o->depth * ((size_t)o->bytes + 256);
	out = bench_calloc(PROG, out_size, 1);
	k = count < o->depth ? count : o->depth;
	now = bench_now_ns();
	for (j = 0; j < k; j++)
		sent_at[j % o->depth] = now;
	raw_write(fd, out, raw_calls(out, out_size, o, tag, 0, k));
	sent = k;
	while (acked < sent) {
		if ((n = read(fd, in + have, RAW_IN_SIZE - have)) <= 0) {
			if (n < 0 && errno == EINTR)
				continue;
			bench_fatal(PROG, "read: %s", n == 0 ?
			    "ferryd closed the connection" : strerror(errno));
		}
		now = bench_now_ns();
		len = have + (size_t)n;
		k = 0;
		for (i = 0, start = 0; i < len; i++) {
			if (in[i] != '\0')
				continue;
			if (memmem(in + start, i - start, "\"error\"",
			    7) != NULL)
				bench_fatal(PROG, "error reply: %.*s",
				    (int)(i - start), in + start);
			if (lat != NULL)
				lat[acked] = (int64_t)(now -
				    sent_at[acked % o->depth]);
			acked++;
			k++;
			start = i + 1;
		}
		have = len - start;
		if (have == RAW_IN_SIZE)
			bench_fatal(PROG, "reply larger than %d bytes",
			    RAW_IN_SIZE);
		memmove(in, in + start, have);
		if (sent < count && now > deadline) {
			*ret_stopped = 1;
			count = sent;
		}
		if (k > count - sent)
			k = count - sent;
		if (k == 0)
			continue;
		for (j = 0; j < k; j++)
			sent_at[(sent + j) % o->depth] = now;
		raw_write(fd, out, raw_calls(out, out_size, o, tag, sent, k));
		sent += k;
	}
	free(out);
	return acked;
}

static void *
client_main(void *arg)
{
	struct client *c = arg;
	const struct opts *o = c->o;
	char tag[32], *in = NULL;
	ferry *f = NULL;
	int fd = -1, stopped = 0;

	if (strcmp(o->mode, "raw") == 0) {
		fd = raw_connect(o);
		in = bench_calloc(PROG, RAW_IN_SIZE, 1);
	} else
		f = bench_connect(PROG, o->socket);
	snprintf(tag, sizeof tag, "w%d-", c->idx);
	if (f != NULL)
		pipeline(f, o, tag, o->warmup, c->deadline, NULL, &stopped);
	else
		raw_pipeline(fd, in, o, tag, o->warmup, c->deadline, NULL,
		    &stopped);
	pthread_barrier_wait(c->barrier);
	snprintf(tag, sizeof tag, "c%d-", c->idx);
	if (f != NULL)
		c->acked = pipeline(f, o, tag, c->count, c->deadline, c->lat,
		    &c->stopped);
	else
		c->acked = raw_pipeline(fd, in, o, tag, c->count, c->deadline,
		    c->lat, &c->stopped);
	c->end = bench_now_ns();
	ferry_close(f);
	if (fd >= 0)
		close(fd);
	free(in);
	return NULL;
}

static void
params_line(char *buf, size_t size, const struct opts *o, int stopped)
{
	snprintf(buf, size, "mode=%s clients=%ld depth=%ld doc_bytes=%ld "
	    "warmup=%ld%s", o->mode, strcmp(o->mode, "seq") == 0 ? 1 :
	    o->clients, strcmp(o->mode, "seq") == 0 ? 1 : o->depth, o->bytes,
	    o->warmup, stopped ? " stopped=time-limit" : "");
}

static void
run_seq(const struct opts *o)
{
	struct bench_stats s;
	uint64_t deadline, t0;
	int64_t *lat;
	char body[BENCH_BODY_MAX], id[128], params[256], name[128];
	long i, n = 0;
	int r, stopped = 0;
	ferry *f;

	f = bench_connect(PROG, o->socket);
	lat = bench_calloc(PROG, (size_t)o->count, sizeof *lat);
	deadline = bench_now_ns() + (uint64_t)o->limit * 1000000000u;
	for (i = 0; i < o->warmup + o->count; i++) {
		if (bench_now_ns() > deadline) {
			stopped = 1;
			break;
		}
		snprintf(id, sizeof id, "%s%s%ld", o->prefix,
		    i < o->warmup ? "sw-" : "s-", i);
		if (bench_body(body, sizeof body, (size_t)o->bytes,
		    (uint64_t)i) < 0)
			bench_fatal(PROG, "cannot build a %ld-byte body",
			    o->bytes);
		t0 = bench_now_ns();
		if ((r = ferry_put(f, BENCH_COLLECTION, id, body, -1,
		    NULL)) < 0)
			bench_ferry_fatal(PROG, f, r, "Put");
		if (i >= o->warmup)
			lat[n++] = (int64_t)(bench_now_ns() - t0);
	}
	ferry_close(f);
	if (n == 0)
		bench_fatal(PROG, "no measured Put within %ld s", o->limit);
	bench_stats(lat, (size_t)n, &s);
	snprintf(name, sizeof name, "%s latency", o->name);
	bench_stats_print(name, &s);
	params_line(params, sizeof params, o, stopped);
	snprintf(name, sizeof name, "%s_p50", o->name);
	bench_result(name, s.p50 / 1e3, 3, "ms", s.n, params);
	snprintf(name, sizeof name, "%s_p99", o->name);
	bench_result(name, s.p99 / 1e3, 3, "ms", s.n, params);
	free(lat);
}

static void
run_pipe(const struct opts *o)
{
	pthread_barrier_t barrier;
	struct client *cl;
	pthread_t *th;
	struct bench_stats s;
	uint64_t deadline, t0, t1 = 0;
	int64_t *all;
	long i, total = 0, per, extra;
	char params[256], name[128];
	int r, stopped = 0;
	size_t k;

	cl = bench_calloc(PROG, (size_t)o->clients, sizeof *cl);
	th = bench_calloc(PROG, (size_t)o->clients, sizeof *th);
	if (pthread_barrier_init(&barrier, NULL,
	    (unsigned)o->clients + 1) != 0)
		bench_fatal(PROG, "pthread_barrier_init failed");
	deadline = bench_now_ns() + (uint64_t)o->limit * 1000000000u;
	per = o->count / o->clients;
	extra = o->count % o->clients;
	for (i = 0; i < o->clients; i++) {
		cl[i].o = o;
		cl[i].idx = (int)i;
		cl[i].count = per + (i < extra ? 1 : 0);
		cl[i].barrier = &barrier;
		cl[i].deadline = deadline;
		cl[i].lat = bench_calloc(PROG, (size_t)cl[i].count,
		    sizeof *cl[i].lat);
		if ((r = pthread_create(&th[i], NULL, client_main,
		    &cl[i])) != 0)
			bench_fatal(PROG, "pthread_create: %s", strerror(r));
	}
	pthread_barrier_wait(&barrier);
	t0 = bench_now_ns();
	for (i = 0; i < o->clients; i++) {
		pthread_join(th[i], NULL);
		total += cl[i].acked;
		stopped |= cl[i].stopped;
		if (cl[i].end > t1)
			t1 = cl[i].end;
	}
	pthread_barrier_destroy(&barrier);
	if (total == 0)
		bench_fatal(PROG, "no measured Put within %ld s", o->limit);
	all = bench_calloc(PROG, (size_t)total, sizeof *all);
	for (i = 0, k = 0; i < o->clients; i++) {
		memcpy(all + k, cl[i].lat, (size_t)cl[i].acked * sizeof *all);
		k += (size_t)cl[i].acked;
		free(cl[i].lat);
	}
	bench_stats(all, (size_t)total, &s);
	snprintf(name, sizeof name, "%s latency (queued to reply)",
	    o->name);
	bench_stats_print(name, &s);
	fprintf(stderr, "%s: %ld Puts in %.3f s\n", o->name, total,
	    (double)(t1 - t0) / 1e9);
	params_line(params, sizeof params, o, stopped);
	snprintf(name, sizeof name, "%s_rate", o->name);
	bench_result(name, (double)total / ((double)(t1 - t0) / 1e9), 0,
	    "puts/s", (size_t)total, params);
	snprintf(name, sizeof name, "%s_p50", o->name);
	bench_result(name, s.p50 / 1e3, 3, "ms", s.n, params);
	snprintf(name, sizeof name, "%s_p99", o->name);
	bench_result(name, s.p99 / 1e3, 3, "ms", s.n, params);
	free(all);
	free(cl);
	free(th);
}

/* VmRSS and VmHWM of pid, in kB.  Returns 0, or -1 if unreadable. */
static int
proc_mem(long pid, long *ret_rss, long *ret_hwm)
{
	char path[64], line[256];
	long rss = -1, hwm = -1;
	FILE *fp;

	snprintf(path, sizeof path, "/proc/%ld/status", pid);
	if ((fp = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof line, fp) != NULL) {
		if (strncmp(line, "VmRSS:", 6) == 0)
			rss = strtol(line + 6, NULL, 10);
		else if (strncmp(line, "VmHWM:", 6) == 0)
			hwm = strtol(line + 6, NULL, 10);
	}
	fclose(fp);
	if (rss < 0 || hwm < 0)
		return -1;
	*ret_rss = rss;
	*ret_hwm = hwm;
	return 0;
}

/* The daemon's document count from Status, or -1. */
static long
daemon_docs(const struct opts *o)
{
	json_error_t jerr;
	json_t *st;
	char *text;
	long docs = -1;
	ferry *f;

	f = bench_connect(PROG, o->socket);
	if (ferry_status(f, &text) == 0) {
		if ((st = json_loads(text, 0, &jerr)) != NULL) {
			if (json_is_integer(json_object_get(st, "docs")))
				docs = (long)json_integer_value(
				    json_object_get(st, "docs"));
			json_decref(st);
		}
		free(text);
	}
	ferry_close(f);
	return docs;
}

static void
report_mem(const struct opts *o)
{
	char params[128];
	long rss, hwm, docs;

	docs = daemon_docs(o);
	if (proc_mem(o->pid, &rss, &hwm) < 0)
		bench_fatal(PROG, "cannot read VmRSS/VmHWM of pid %ld", o->pid);
	snprintf(params, sizeof params, "pid=%ld docs=%ld", o->pid, docs);
	bench_result("ferryd_docs", (double)docs, 0, "docs", 1, params);
	bench_result("ferryd_vmrss", (double)rss / 1024, 1, "MB", 1, params);
	bench_result("ferryd_vmhwm", (double)hwm / 1024, 1, "MB", 1, params);
}

int
main(int argc, char *argv[])
{
	struct opts o = { NULL, "seq", "", NULL, -1, 500, 16, 32,
	    BENCH_DOC_BYTES, BENCH_TIME_LIMIT, 0 };
	char name[64];
	int ch;

	while ((ch = getopt(argc, argv, "b:c:d:i:m:N:n:p:s:t:w:")) != -1) {
		switch (ch) {
		case 'b':
			o.bytes = bench_count(PROG, "-b", optarg,
			    BENCH_BODY_MAX - 1);
			break;
		case 'c':
			o.clients = bench_count(PROG, "-c", optarg,
			    CLIENTS_MAX);
			break;
		case 'd':
			o.depth = bench_count(PROG, "-d", optarg, DEPTH_MAX);
			break;
		case 'i':
			o.prefix = optarg;
			break;
		case 'm':
			o.mode = optarg;
			break;
		case 'N':
			o.name = optarg;
			break;
		case 'n':
			o.count = bench_count(PROG, "-n", optarg, 100000000);
			break;
		case 'p':
			o.pid = bench_count(PROG, "-p", optarg, INT_MAX);
			break;
		case 's':
			o.socket = optarg;
			break;
		case 't':
			o.limit = bench_count(PROG, "-t", optarg, 86400);
			break;
		case 'w':
			o.warmup = bench_count(PROG, "-w", optarg, 100000000);
			break;
		default:
			usage();
		}
	}
	if (optind != argc || o.clients < 1 || o.depth < 1 || o.limit < 1 ||
	    strlen(o.prefix) > 64 || (o.name != NULL && strlen(o.name) > 64))
		usage();
	if (o.name == NULL) {
		snprintf(name, sizeof name, "put_%.32s", o.mode);
		o.name = name;
	}
	if (strcmp(o.mode, "seq") == 0) {
		if (o.count < 0)
			o.count = 10000;
		run_seq(&o);
	} else if (strcmp(o.mode, "pipe") == 0 ||
	    strcmp(o.mode, "raw") == 0) {
		if (o.count < 0)
			o.count = 320000;
		run_pipe(&o);
	} else
		usage();
	if (o.pid > 0)
		report_mem(&o);
	return 0;
}
