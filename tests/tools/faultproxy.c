/*
 * faultproxy: a fault-injecting HTTP/1.1 proxy for ferry's fault tests.
 *
 *   faultproxy --listen 127.0.0.1:0 --target 127.0.0.1:PORT
 *              --control SOCKPATH [--seed N] [--log FILE]
 *	sits between ferryd and ferry-server and forwards requests and
 *	replies, applying a fault to each request as the control socket says.
 *	Once it accepts, it prints "ready: listening on 127.0.0.1:PORT" (the
 *	real port) on stderr.  SIGTERM or SIGINT stops it.
 *   faultproxy --ctl SOCKPATH 'COMMAND'
 *	sends one command to a running proxy and prints its answer; exit 0
 *	on "ok" or stats, 1 on "error: ...", 2 on usage, 3 when the control
 *	socket cannot be reached.
 *
 * Commands (each answered only once it is in force):
 *   set PATHPREFIX ACTION [COUNT]  requests whose target starts with
 *	PATHPREFIX ("*": any) get ACTION, for the next COUNT of them (no
 *	COUNT: until changed).  Rules are checked newest first; a rule
 *	whose count ran out is gone.
 *   default ACTION                 what requests no rule matches get
 *   clear                          no rules, default pass, chaos 0
 *   chaos PERCENT                  a request no rule matches gets a fault
 *	drawn from the seeded PRNG with probability PERCENT/100 (the six
 *	faults equally likely); "chaos 0" stops it
 *   stats                          requests=N passed=N drop-after=N
 *	drop-before=N reset-mid=N dup=N trickle=N refuse=N
 *   cut                            close every open connection now
 *   release                        return every reply held now (see hold)
 *
 * Actions: pass; drop-after (forward, read the whole reply, discard it and
 * close the client: the server applied it, the client never learns);
 * drop-before (read the request, close without forwarding); reset-mid
 * (forward, send the client half of the reply, then RST via SO_LINGER 0);
 * dup (send the request twice, on two server connections one after the
 * other, and return the second reply); trickle (the reply a few bytes every
 * 50 ms, all of it within 2 s; a long-poll, a GET with wait=N > 0 in its
 * query, is passed instead and a trickle rule does not match it); refuse
 * (close without reading: at accept when the rule in force matches any
 * path, i.e. the newest rule is "*" or there is none and the default is
 * refuse; else as soon as the request's head is read, before its body);
 * hold (forward, read the whole reply and keep it, logging "held", until
 * a "release" command: a test orders the reply after something else the
 * client does; never drawn by chaos, and a held reply whose client goes
 * is dropped with it).
 *
 * The proxy understands the framing it needs and no more: a request or
 * reply is a head of at most 64 KiB and a body by Content-Length, chunked
 * (scanned, passed through) or, for replies, until the server closes.  A
 * whole request is read before it is forwarded and a whole reply before it
 * is returned, so every fault applies to whole messages; anything over
 * 32 MiB is refused (413 to the client, or 502 for a reply) with a line in
 * the log.  One server connection per client connection, kept alive as the
 * client's is (and closed with it: when the server closes between
 * requests, so does the proxy); at most 256 client and 16 control
 * connections (more are closed at once).
 *
 * What it is not: a general proxy (no CONNECT, no upgrades, no TLS), or
 * fair (faults come from a xorshift PRNG seeded by --seed, so a run with
 * one seed and one request order repeats its faults).
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#define HEAD_MAX	(64u * 1024)
#define BODY_MAX	(32u * 1024 * 1024)
#define CONNS_MAX	256
#define CTL_LINE_MAX	4096
#define CTLS_MAX	16		/* control connections at once */
#define TRICKLE_MS	50		/* one piece every TRICKLE_MS */
#define TRICKLE_STEPS	40		/* at most this many pieces: 2 s */
#define TRICKLE_MIN	4		/* bytes a piece, at least */
#define IDLE_SECS	120		/* an idle client connection is closed */
#define UPSTREAM_SECS	300		/* a reply may take this long */
#define LINGER_SECS	5		/* draining a refused request, at most */

enum action {
	A_PASS,
	A_DROP_AFTER,
	A_DROP_BEFORE,
	A_RESET_MID,
	A_DUP,
	A_TRICKLE,
	A_REFUSE,
	A_HOLD,			/* not one of chaos's faults: it waits */
	A_COUNT
};

static const char *const action_names[A_COUNT] = {
	"pass", "drop-after", "drop-before", "reset-mid", "dup", "trickle",
	"refuse", "hold",
};

struct rule {
	char			*prefix;	/* "*": any */
	enum action		 act;
	long			 left;		/* < 0: until changed */
	TAILQ_ENTRY(rule)	 entry;
};

/* The framing state of one request or reply being read. */
enum body_kind {
	BODY_NONE,
	BODY_LENGTH,
	BODY_CHUNKED,
	BODY_CLOSE			/* a reply that ends when the server closes */
};

struct frame {
	bool		 head_done;
	size_t		 head_len;
	enum body_kind	 kind;
	size_t		 body_len;	/* BODY_LENGTH */
	size_t		 total;		/* head and body, once complete */
	int		 status;	/* replies */
	bool		 close;		/* no keep-alive after this message */
	bool		 expect;	/* Expect: 100-continue */
	char		 method[16];
	char		 target[1024];	/* cut if longer; enough to match on */
};

enum cstate {
	C_REQUEST,		/* reading a request from the client */
	C_DUP,			/* the first copy of a dup is at the server */
	C_UPSTREAM,		/* the request is at the server */
	C_TRICKLE,		/* returning the reply piece by piece */
	C_HELD,			/* the reply waits for "release" */
	C_CLOSING,		/* flushing the last bytes, then close */
	C_RESET,		/* flushing half a reply, then RST */
	C_LINGER		/* an error sent: half-close, drain, close */
};

struct proxy;

struct conn {
	struct proxy		*px;
	uint64_t		 id;
	uint64_t		 nreq;
	enum cstate		 state;
	bool			 dead;
	struct bufferevent	*cli;
	struct bufferevent	*srv;	/* kept alive across requests */
	struct bufferevent	*dup;	/* the first copy of a dup */
	struct frame		 req;	/* the request being read */
	struct frame		 rep;	/* the reply being read */
	bool			 decided;
	bool			 sent_continue;
	bool			 longpoll;
	enum action		 act;
	struct evbuffer		*reqbuf;	/* the whole current request */
	struct evbuffer		*repbuf;	/* the whole reply, to return */
	size_t			 piece;		/* trickle: bytes a tick */
	struct event		*timer;
	TAILQ_ENTRY(conn)	 entry;
};

struct ctl {
	struct proxy		*px;
	struct bufferevent	*bev;
	bool			 answered;
	TAILQ_ENTRY(ctl)	 entry;
};

struct proxy {
	struct event_base	*base;
	struct evconnlistener	*listener;
	struct evconnlistener	*ctl_listener;
	struct sockaddr_in	 target;
	const char		*ctl_path;
	FILE			*log;
	TAILQ_HEAD(, rule)	 rules;		/* newest first */
	enum action		 dflt;
	int			 chaos;		/* percent */
	uint64_t		 prng;
	uint64_t		 requests;
	uint64_t		 counts[A_COUNT];
	TAILQ_HEAD(, conn)	 conns;
	TAILQ_HEAD(, conn)	 dead;
	TAILQ_HEAD(, ctl)	 ctls;
	int			 nctls;
	int			 nconns;
	uint64_t		 next_id;
	struct event		*reap;
};

static void conn_on_request(struct conn *);
static void conn_on_reply(struct conn *);
static void conn_reply_done(struct conn *);

/* --- logging, the PRNG --- */

static void
plog(struct proxy *px, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
plog(struct proxy *px, const char *fmt, ...)
{
	struct timespec ts;
	va_list ap;

	if (px->log == NULL)
		return;
	clock_gettime(CLOCK_REALTIME, &ts);
	fprintf(px->log, "%lld.%03ld ", (long long)ts.tv_sec,
	    ts.tv_nsec / 1000000);
	va_start(ap, fmt);
	vfprintf(px->log, fmt, ap);
	va_end(ap);
	fputc('\n', px->log);
	fflush(px->log);
}

/* xorshift64*, seeded through splitmix64 so that seeds 1, 2, ... differ. */
static void
prng_seed(struct proxy *px, uint64_t seed)
{
	uint64_t z = seed + 0x9e3779b97f4a7c15ULL;

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
	z ^= z >> 31;
	px->prng = z != 0 ? z : 1;
}

static uint64_t
prng_next(struct proxy *px)
{
	uint64_t x = px->prng;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	px->prng = x;
	return x * 0x2545f4914f6cdd1dULL;
}

/* --- framing --- */

static bool
header_is(const char *line, size_t len, const char *name, const char **ret_v)
{
	size_t n = strlen(name);

	if (len <= n || strncasecmp(line, name, n) != 0 || line[n] != ':')
		return false;
	line += n + 1;
	while (*line == ' ' || *line == '\t')
		line++;
	*ret_v = line;
	return true;
}

/* Does the comma-separated header value (up to end) hold token? */
static bool
value_has(const char *v, const char *end, const char *token)
{
	size_t n = strlen(token);

	while (v < end) {
		while (v < end && (*v == ' ' || *v == ',' || *v == '\t'))
			v++;
		if ((size_t)(end - v) >= n && strncasecmp(v, token, n) == 0 &&
		    (v + n == end || v[n] == ',' || v[n] == ' ' ||
		    v[n] == '\t' || v[n] == '\r'))
			return true;
		while (v < end && *v != ',')
			v++;
	}
	return false;
}

/*
 * Parse a message head (head[0..len), ending in CRLF CRLF).  For a reply,
 * req_method says whether a body may follow.  0, or -1 with *ret_err.
 */
static int
frame_parse_head(struct frame *f, char *head, size_t len, bool reply,
    const char *req_method, const char **ret_err)
{
	char *line, *eol, *end = head + len - 2;
	const char *v;
	bool http10, keep_alive = false, have_length = false;
	bool chunked = false;
	unsigned long long cl = 0;
	char *p;

	if ((eol = memchr(head, '\r', len)) == NULL) {
		*ret_err = "no line end";
		return -1;
	}
	*eol = '\0';
	if (reply) {
		if (strncmp(head, "HTTP/1.", 7) != 0 || strlen(head) < 12 ||
		    head[8] != ' ') {
			*ret_err = "malformed status line";
			return -1;
		}
		http10 = head[7] == '0';
		f->status = atoi(head + 9);
		if (f->status < 100 || f->status > 999) {
			*ret_err = "malformed status code";
			return -1;
		}
	} else {
		char *sp1 = strchr(head, ' '), *sp2;

		if (sp1 == NULL || (sp2 = strchr(sp1 + 1, ' ')) == NULL ||
		    strncmp(sp2 + 1, "HTTP/1.", 7) != 0 ||
		    (size_t)(sp1 - head) >= sizeof f->method) {
			*ret_err = "malformed request line";
			return -1;
		}
		http10 = sp2[8] == '0';
		memcpy(f->method, head, sp1 - head);
		f->method[sp1 - head] = '\0';
		snprintf(f->target, sizeof f->target, "%.*s",
		    (int)(sp2 - sp1 - 1), sp1 + 1);
	}
	for (line = eol + 2; line < end; line = eol + 2) {
		if ((eol = memchr(line, '\r', end - line + 2)) == NULL)
			break;
		if (header_is(line, eol - line, "Content-Length", &v)) {
			errno = 0;
			cl = strtoull(v, &p, 10);
			if (errno != 0 || p == v || (p != eol && *p != ' ')) {
				*ret_err = "malformed Content-Length";
				return -1;
			}
			have_length = true;
		} else if (header_is(line, eol - line, "Transfer-Encoding",
		    &v) && value_has(v, eol, "chunked"))
			chunked = true;
		else if (header_is(line, eol - line, "Connection", &v)) {
			if (value_has(v, eol, "close"))
				f->close = true;
			if (value_has(v, eol, "keep-alive"))
				keep_alive = true;
		} else if (header_is(line, eol - line, "Expect", &v) &&
		    value_has(v, eol, "100-continue"))
			f->expect = true;
	}
	if (http10 && !keep_alive)
		f->close = true;
	if (have_length && cl > BODY_MAX) {
		*ret_err = "body over 32 MiB";
		return -1;
	}
	f->head_len = len;
	if (reply && (f->status < 200 || f->status == 204 ||
	    f->status == 304 || strcmp(req_method, "HEAD") == 0))
		f->kind = BODY_NONE;
	else if (chunked)
		f->kind = BODY_CHUNKED;
	else if (have_length) {
		f->kind = BODY_LENGTH;
		f->body_len = cl;
	} else if (reply) {
		f->kind = BODY_CLOSE;
		f->close = true;
	} else
		f->kind = BODY_NONE;
	f->head_done = true;
	return 0;
}

/*
 * Where a chunked body starting at `from` ends: 1 and *ret_end, 0 if more
 * is needed, -1 if malformed.  Scans from the start each time: chunked
 * bodies are rare here (ferry never sends them) and bounded.
 */
static int
chunked_end(struct evbuffer *in, size_t from, size_t *ret_end)
{
	struct evbuffer_ptr p, eol;
	size_t len = evbuffer_get_length(in), n;
	char line[64], *e;
	unsigned long long size;
	bool trailers = false;

	for (;;) {
		if (from >= len)
			return 0;
		if (evbuffer_ptr_set(in, &p, from, EVBUFFER_PTR_SET) < 0)
			return -1;
		eol = evbuffer_search_eol(in, &p, &n, EVBUFFER_EOL_CRLF_STRICT);
		if (eol.pos < 0)
			return len - from > sizeof line ? -1 : 0;
		if ((size_t)eol.pos - from >= sizeof line && !trailers)
			return -1;
		if (trailers) {
			if ((size_t)eol.pos == from) {
				*ret_end = from + 2;
				return 1;
			}
			from = eol.pos + 2;
			continue;
		}
		memset(line, 0, sizeof line);
		evbuffer_copyout_from(in, &p, line, eol.pos - from);
		errno = 0;
		size = strtoull(line, &e, 16);
		if (errno != 0 || e == line || size > BODY_MAX)
			return -1;
		from = eol.pos + 2;
		if (size == 0)
			trailers = true;
		else
			from += size + 2;
		if (from > BODY_MAX + HEAD_MAX)
			return -1;
	}
}

/*
 * Scan what arrived of a message in `in`: 1 when the whole message is
 * there (f->total bytes), 0 if more is needed, -1 if it is malformed or
 * too large (*ret_err says which).  f->head_done turns true as soon as
 * the head is parsed, so the caller can act on it before the body.
 */
static int
frame_scan(struct frame *f, struct evbuffer *in, bool reply,
    const char *req_method, bool at_eof, const char **ret_err)
{
	struct evbuffer_ptr end, limit;
	size_t len = evbuffer_get_length(in), bend;
	char *head;
	int r;

	if (!f->head_done) {
		if (evbuffer_ptr_set(in, &limit, len < HEAD_MAX ? len :
		    HEAD_MAX, EVBUFFER_PTR_SET) < 0)
			return -1;
		end = evbuffer_search_range(in, "\r\n\r\n", 4, NULL, &limit);
		if (end.pos < 0) {
			if (len >= HEAD_MAX) {
				*ret_err = "head over 64 KiB";
				return -1;
			}
			return 0;
		}
		if ((head = malloc(end.pos + 4 + 1)) == NULL) {
			*ret_err = "out of memory";
			return -1;
		}
		evbuffer_copyout(in, head, end.pos + 4);
		head[end.pos + 4] = '\0';
		r = frame_parse_head(f, head, end.pos + 4, reply, req_method,
		    ret_err);
		free(head);
		if (r < 0)
			return -1;
	}
	switch (f->kind) {
	case BODY_NONE:
		f->total = f->head_len;
		return 1;
	case BODY_LENGTH:
		if (len < f->head_len + f->body_len)
			return 0;
		f->total = f->head_len + f->body_len;
		return 1;
	case BODY_CHUNKED:
		r = chunked_end(in, f->head_len, &bend);
		if (r < 0)
			*ret_err = "malformed or oversized chunked body";
		else if (r > 0)
			f->total = bend;
		return r;
	case BODY_CLOSE:
		if (len > f->head_len + BODY_MAX) {
			*ret_err = "body over 32 MiB";
			return -1;
		}
		if (!at_eof)
			return 0;
		f->total = len;
		return 1;
	}
	return -1;
}

/* A GET whose query has wait=N, N > 0: the server may hold it. */
static bool
is_longpoll(const struct frame *f)
{
	const char *q = strchr(f->target, '?');

	if (strcmp(f->method, "GET") != 0 || q == NULL)
		return false;
	while (q != NULL) {
		q++;
		if (strncmp(q, "wait=", 5) == 0 && atoi(q + 5) > 0)
			return true;
		q = strchr(q, '&');
	}
	return false;
}

/* --- rules --- */

static bool
rule_matches(const struct rule *r, const char *target)
{
	return strcmp(r->prefix, "*") == 0 ||
	    strncmp(target, r->prefix, strlen(r->prefix)) == 0;
}

static void
rule_use(struct proxy *px, struct rule *r)
{
	if (r->left > 0 && --r->left == 0) {
		TAILQ_REMOVE(&px->rules, r, entry);
		free(r->prefix);
		free(r);
	}
}

static void
rules_clear(struct proxy *px)
{
	struct rule *r;

	while ((r = TAILQ_FIRST(&px->rules)) != NULL) {
		TAILQ_REMOVE(&px->rules, r, entry);
		free(r->prefix);
		free(r);
	}
}

/* The action for a request: rules newest first, then chaos, then default. */
static enum action
decide(struct proxy *px, const char *target, bool longpoll)
{
	struct rule *r;
	enum action act;

	TAILQ_FOREACH(r, &px->rules, entry) {
		if (!rule_matches(r, target) ||
		    (r->act == A_TRICKLE && longpoll))
			continue;
		act = r->act;
		rule_use(px, r);
		return act;
	}
	if (px->chaos > 0 && (int)(prng_next(px) % 100) < px->chaos)
		act = A_DROP_AFTER + prng_next(px) %
		    (A_REFUSE - A_DROP_AFTER + 1);
	else
		act = px->dflt;
	return act == A_TRICKLE && longpoll ? A_PASS : act;
}

/* At accept: is the rule in force for any path "refuse"?  (Uses it.) */
static bool
refuse_at_accept(struct proxy *px)
{
	struct rule *r = TAILQ_FIRST(&px->rules);

	if (r == NULL)
		return px->dflt == A_REFUSE && px->chaos == 0;
	if (strcmp(r->prefix, "*") != 0 || r->act != A_REFUSE)
		return false;
	rule_use(px, r);
	return true;
}

static void
count(struct proxy *px, enum action act)
{
	px->requests++;
	px->counts[act]++;
}

/* --- connections --- */

static void
bev_close(struct bufferevent **bevp, bool rst)
{
	struct linger lg = { 1, 0 };
	evutil_socket_t fd;

	if (*bevp == NULL)
		return;
	if (rst && (fd = bufferevent_getfd(*bevp)) >= 0)
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
	bufferevent_free(*bevp);
	*bevp = NULL;
}

/*
 * Close both sides now (RST on the client's with rst) and free the conn
 * later, outside the callback chain that may still hold it.
 */
static void
conn_kill(struct conn *c, bool rst)
{
	struct proxy *px = c->px;

	if (c->dead)
		return;
	c->dead = true;
	bev_close(&c->cli, rst);
	bev_close(&c->srv, false);
	bev_close(&c->dup, false);
	if (c->timer != NULL)
		evtimer_del(c->timer);
	TAILQ_REMOVE(&px->conns, c, entry);
	px->nconns--;
	TAILQ_INSERT_TAIL(&px->dead, c, entry);
	event_active(px->reap, EV_TIMEOUT, 0);
}

static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct proxy *px = arg;
	struct conn *c;

	(void)fd;
	(void)what;
	while ((c = TAILQ_FIRST(&px->dead)) != NULL) {
		TAILQ_REMOVE(&px->dead, c, entry);
		if (c->timer != NULL)
			event_free(c->timer);
		evbuffer_free(c->reqbuf);
		evbuffer_free(c->repbuf);
		free(c);
	}
}

/* Send what is queued to the client, then close (or RST). */
static void
conn_finish(struct conn *c, enum cstate how)
{
	c->state = how;
	bev_close(&c->srv, false);
	bev_close(&c->dup, false);
	bufferevent_disable(c->cli, EV_READ);
	if (evbuffer_get_length(bufferevent_get_output(c->cli)) == 0)
		conn_kill(c, how == C_RESET);
}

/* Answer the client with an error of the proxy's own, then close. */
static void
conn_fail(struct conn *c, int code, const char *why)
{
	struct timeval linger = { LINGER_SECS, 0 };

	plog(c->px, "conn %" PRIu64 ": %d %s", c->id, code, why);
	if (c->state == C_REQUEST || c->state == C_UPSTREAM ||
	    c->state == C_DUP) {
		evbuffer_add_printf(bufferevent_get_output(c->cli),
		    "HTTP/1.1 %d %s\r\nContent-Type: text/plain\r\n"
		    "Content-Length: %zu\r\nConnection: close\r\n\r\n"
		    "faultproxy: %s\n", code, code == 413 ? "Too Large" :
		    code == 400 ? "Bad Request" : "Bad Gateway",
		    strlen(why) + 13, why);
	}
	/*
	 * Close lingering: a client still sending its (refused) body would
	 * otherwise get a reset before it reads the answer.
	 */
	c->state = C_LINGER;
	bev_close(&c->srv, false);
	bev_close(&c->dup, false);
	evbuffer_drain(bufferevent_get_input(c->cli),
	    evbuffer_get_length(bufferevent_get_input(c->cli)));
	bufferevent_set_timeouts(c->cli, &linger, NULL);
	bufferevent_enable(c->cli, EV_READ);
}

static void srv_read_cb(struct bufferevent *, void *);
static void srv_event_cb(struct bufferevent *, short, void *);
static void dup_read_cb(struct bufferevent *, void *);
static void dup_event_cb(struct bufferevent *, short, void *);

static struct bufferevent *
upstream_open(struct conn *c, bufferevent_data_cb readcb,
    bufferevent_event_cb eventcb)
{
	struct bufferevent *bev;
	struct timeval tv = { UPSTREAM_SECS, 0 };

	bev = bufferevent_socket_new(c->px->base, -1, BEV_OPT_CLOSE_ON_FREE);
	if (bev == NULL)
		return NULL;
	bufferevent_setcb(bev, readcb, NULL, eventcb, c);
	bufferevent_set_timeouts(bev, &tv, NULL);
	if (bufferevent_socket_connect(bev, (struct sockaddr *)&c->px->target,
	    sizeof c->px->target) < 0) {
		bufferevent_free(bev);
		return NULL;
	}
	bufferevent_enable(bev, EV_READ);
	return bev;
}

/* Send the request in reqbuf to the server (the main connection). */
static void
conn_forward(struct conn *c)
{
	if (c->srv == NULL &&
	    (c->srv = upstream_open(c, srv_read_cb, srv_event_cb)) == NULL) {
		conn_fail(c, 502, "cannot connect to the target");
		return;
	}
	memset(&c->rep, 0, sizeof c->rep);
	c->state = C_UPSTREAM;
	bufferevent_write_buffer(c->srv, c->reqbuf);
}

/* dup: the first copy goes on a connection of its own. */
static void
conn_forward_dup(struct conn *c)
{
	unsigned char *p;
	size_t len = evbuffer_get_length(c->reqbuf);

	if ((c->dup = upstream_open(c, dup_read_cb, dup_event_cb)) == NULL) {
		conn_forward(c);
		return;
	}
	memset(&c->rep, 0, sizeof c->rep);
	c->state = C_DUP;
	p = evbuffer_pullup(c->reqbuf, -1);
	bufferevent_write(c->dup, p, len);
}

static void
dup_done(struct conn *c)
{
	bev_close(&c->dup, false);
	conn_forward(c);
}

static void
dup_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;
	const char *err = "";
	int r;

	r = frame_scan(&c->rep, bufferevent_get_input(bev), true,
	    c->req.method, false, &err);
	if (r < 0)
		plog(c->px, "conn %" PRIu64 ": dup's first reply: %s", c->id,
		    err);
	if (r == 0)
		return;
	if (r > 0 && c->rep.status < 200) {
		evbuffer_drain(bufferevent_get_input(bev), c->rep.total);
		memset(&c->rep, 0, sizeof c->rep);
		dup_read_cb(bev, c);
		return;
	}
	plog(c->px, "conn %" PRIu64 ": dup: first reply %d dropped", c->id,
	    c->rep.status);
	dup_done(c);
}

static void
dup_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	const char *err = "";

	if (what & BEV_EVENT_CONNECTED)
		return;
	if ((what & BEV_EVENT_EOF) && frame_scan(&c->rep,
	    bufferevent_get_input(bev), true, c->req.method, true, &err) > 0) {
		dup_done(c);
		return;
	}
	plog(c->px, "conn %" PRIu64 ": dup: the first copy's connection "
	    "failed", c->id);
	dup_done(c);
}

/* The head of a request is in: decide what happens to it. */
static void
conn_decide(struct conn *c)
{
	struct proxy *px = c->px;

	c->decided = true;
	c->nreq++;
	c->longpoll = is_longpoll(&c->req);
	c->act = decide(px, c->req.target, c->longpoll);
	count(px, c->act);
	plog(px, "conn %" PRIu64 " req %" PRIu64 ": %s %s -> %s", c->id,
	    c->nreq, c->req.method, c->req.target, action_names[c->act]);
	if (c->act == A_REFUSE) {
		conn_kill(c, false);
		return;
	}
	if (c->req.expect) {
		evbuffer_add_printf(bufferevent_get_output(c->cli),
		    "HTTP/1.1 100 Continue\r\n\r\n");
		c->sent_continue = true;
	}
}

/* A whole request is in reqbuf. */
static void
conn_dispatch(struct conn *c)
{
	switch (c->act) {
	case A_DROP_BEFORE:
		conn_kill(c, false);
		break;
	case A_DUP:
		conn_forward_dup(c);
		break;
	default:
		conn_forward(c);
		break;
	}
}

static void
conn_on_request(struct conn *c)
{
	struct evbuffer *in = bufferevent_get_input(c->cli);
	const char *err = "";
	int r;

	if (c->dead || c->state != C_REQUEST)
		return;
	r = frame_scan(&c->req, in, false, NULL, false, &err);
	if (r < 0) {
		conn_fail(c, strstr(err, "32 MiB") != NULL ? 413 : 400, err);
		return;
	}
	if (c->req.head_done && !c->decided) {
		conn_decide(c);
		if (c->dead)
			return;
	}
	if (r == 0)
		return;
	evbuffer_drain(c->reqbuf, evbuffer_get_length(c->reqbuf));
	evbuffer_remove_buffer(in, c->reqbuf, c->req.total);
	conn_dispatch(c);
}

static void
trickle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	struct timeval tv = { 0, TRICKLE_MS * 1000 };
	size_t n;

	(void)fd;
	(void)what;
	if (c->dead)
		return;
	n = evbuffer_get_length(c->repbuf);
	if (n > c->piece)
		n = c->piece;
	bufferevent_write(c->cli, evbuffer_pullup(c->repbuf, n), n);
	evbuffer_drain(c->repbuf, n);
	if (evbuffer_get_length(c->repbuf) > 0) {
		evtimer_add(c->timer, &tv);
		return;
	}
	conn_reply_done(c);
}

/* The reply has been handed to the client: next request, or close. */
static void
conn_reply_done(struct conn *c)
{
	if (c->req.close || c->rep.close) {
		conn_finish(c, C_CLOSING);
		return;
	}
	memset(&c->req, 0, sizeof c->req);
	c->decided = false;
	c->sent_continue = false;
	c->state = C_REQUEST;
	bufferevent_enable(c->cli, EV_READ);
	conn_on_request(c);
}

/* A whole reply is in repbuf: apply the action. */
static void
conn_deliver(struct conn *c)
{
	size_t len = evbuffer_get_length(c->repbuf);

	plog(c->px, "conn %" PRIu64 " req %" PRIu64 ": reply %d, %zu bytes, "
	    "%s", c->id, c->nreq, c->rep.status, len, action_names[c->act]);
	switch (c->act) {
	case A_DROP_AFTER:
		conn_kill(c, false);
		return;
	case A_RESET_MID:
		bufferevent_write(c->cli, evbuffer_pullup(c->repbuf, len / 2),
		    len / 2);
		conn_finish(c, C_RESET);
		return;
	case A_TRICKLE:
		c->piece = (len + TRICKLE_STEPS - 1) / TRICKLE_STEPS;
		if (c->piece < TRICKLE_MIN)
			c->piece = TRICKLE_MIN;
		c->state = C_TRICKLE;
		trickle_cb(-1, 0, c);
		return;
	case A_HOLD:
		c->state = C_HELD;
		plog(c->px, "conn %" PRIu64 " req %" PRIu64 ": held %s %s",
		    c->id, c->nreq, c->req.method, c->req.target);
		return;
	default:
		bufferevent_write_buffer(c->cli, c->repbuf);
		conn_reply_done(c);
		return;
	}
}

static void
conn_on_reply(struct conn *c)
{
	struct evbuffer *in;
	const char *err = "";
	int r;

	if (c->dead || c->state != C_UPSTREAM || c->srv == NULL)
		return;
	in = bufferevent_get_input(c->srv);
	r = frame_scan(&c->rep, in, true, c->req.method, false, &err);
	if (r < 0) {
		conn_fail(c, 502, err);
		return;
	}
	if (r == 0)
		return;
	if (c->rep.status < 200) {
		/* Interim: pass it on, unless we said 100 ourselves. */
		if (c->sent_continue)
			evbuffer_drain(in, c->rep.total);
		else
			evbuffer_remove_buffer(in,
			    bufferevent_get_output(c->cli), c->rep.total);
		memset(&c->rep, 0, sizeof c->rep);
		conn_on_reply(c);
		return;
	}
	evbuffer_drain(c->repbuf, evbuffer_get_length(c->repbuf));
	evbuffer_remove_buffer(in, c->repbuf, c->rep.total);
	conn_deliver(c);
}

static void
srv_read_cb(struct bufferevent *bev, void *arg)
{
	(void)bev;
	conn_on_reply(arg);
}

static void
srv_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;
	const char *err = "";
	int r;

	(void)bev;
	if (what & BEV_EVENT_CONNECTED)
		return;
	if (c->state != C_UPSTREAM) {
		/*
		 * The server closed its keep-alive connection.  Between
		 * requests the client's goes too, as it would without the
		 * proxy, so its next request is not sent into a dead one.
		 */
		bev_close(&c->srv, false);
		if (c->state == C_REQUEST && !c->decided)
			conn_kill(c, false);
		return;
	}
	if (what & BEV_EVENT_EOF) {
		r = frame_scan(&c->rep, bufferevent_get_input(c->srv), true,
		    c->req.method, true, &err);
		if (r > 0) {
			evbuffer_drain(c->repbuf,
			    evbuffer_get_length(c->repbuf));
			evbuffer_remove_buffer(bufferevent_get_input(c->srv),
			    c->repbuf, c->rep.total);
			bev_close(&c->srv, false);
			c->rep.close = true;
			conn_deliver(c);
			return;
		}
	}
	conn_fail(c, 502, what & BEV_EVENT_TIMEOUT ?
	    "the target did not answer in time" : what & BEV_EVENT_EOF ?
	    "the target closed before a whole reply" :
	    "the target's connection failed");
}

static void
cli_read_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_LINGER) {
		evbuffer_drain(bufferevent_get_input(bev),
		    evbuffer_get_length(bufferevent_get_input(bev)));
		return;
	}
	conn_on_request(c);
}

static void
cli_write_cb(struct bufferevent *bev, void *arg)
{
	struct conn *c = arg;

	if (c->state == C_CLOSING || c->state == C_RESET)
		conn_kill(c, c->state == C_RESET);
	else if (c->state == C_LINGER)
		shutdown(bufferevent_getfd(bev), SHUT_WR);
}

static void
cli_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct conn *c = arg;

	if ((what & BEV_EVENT_TIMEOUT) && c->state != C_REQUEST &&
	    c->state != C_LINGER) {
		/* Waiting for the server (a long-poll) is not idleness. */
		bufferevent_enable(bev, EV_READ);
		return;
	}
	if ((what & BEV_EVENT_EOF) && c->state == C_REQUEST &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0)
		plog(c->px, "conn %" PRIu64 ": the client closed mid-request",
		    c->id);
	conn_kill(c, false);
}

static void
accept_cb(struct evconnlistener *l, evutil_socket_t fd, struct sockaddr *sa,
    int salen, void *arg)
{
	struct proxy *px = arg;
	struct timeval idle = { IDLE_SECS, 0 };
	struct conn *c;

	(void)l;
	(void)sa;
	(void)salen;
	if (px->nconns >= CONNS_MAX) {
		plog(px, "over %d connections: one closed at accept",
		    CONNS_MAX);
		evutil_closesocket(fd);
		return;
	}
	if (refuse_at_accept(px)) {
		count(px, A_REFUSE);
		plog(px, "refused at accept");
		evutil_closesocket(fd);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL ||
	    (c->reqbuf = evbuffer_new()) == NULL ||
	    (c->repbuf = evbuffer_new()) == NULL ||
	    (c->timer = evtimer_new(px->base, trickle_cb, c)) == NULL ||
	    (c->cli = bufferevent_socket_new(px->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		plog(px, "out of memory: one connection closed at accept");
		if (c != NULL) {
			evbuffer_free(c->reqbuf);
			evbuffer_free(c->repbuf);
			if (c->timer != NULL)
				event_free(c->timer);
		}
		free(c);
		evutil_closesocket(fd);
		return;
	}
	c->px = px;
	c->id = ++px->next_id;
	c->state = C_REQUEST;
	TAILQ_INSERT_TAIL(&px->conns, c, entry);
	px->nconns++;
	bufferevent_setcb(c->cli, cli_read_cb, cli_write_cb, cli_event_cb, c);
	bufferevent_set_timeouts(c->cli, &idle, NULL);
	/* A client may not queue more than one whole request ahead. */
	bufferevent_setwatermark(c->cli, EV_READ, 0, HEAD_MAX + BODY_MAX + 1);
	bufferevent_enable(c->cli, EV_READ | EV_WRITE);
}

/* --- control --- */

static int
parse_action(const char *s, enum action *ret)
{
	int i;

	for (i = 0; i < A_COUNT; i++)
		if (strcmp(s, action_names[i]) == 0) {
			*ret = i;
			return 0;
		}
	return -1;
}

static int
parse_long(const char *s, long min, long max, long *ret)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max)
		return -1;
	*ret = v;
	return 0;
}

/* Run one command; the answer (one line, no newline) goes to out. */
static void
ctl_run(struct proxy *px, char *line, struct evbuffer *out)
{
	char *argv[5], *save = NULL, *tok;
	struct rule *r;
	struct conn *c;
	enum action act;
	long n;
	int argc = 0, i;

	for (tok = strtok_r(line, " \t\r", &save); tok != NULL && argc < 5;
	    tok = strtok_r(NULL, " \t\r", &save))
		argv[argc++] = tok;
	if (argc == 0) {
		evbuffer_add_printf(out, "error: empty command");
		return;
	}
	if (strcmp(argv[0], "set") == 0) {
		if (argc < 3 || argc > 4) {
			evbuffer_add_printf(out, "error: usage: set "
			    "PATHPREFIX ACTION [COUNT]");
			return;
		}
		if (parse_action(argv[2], &act) < 0)
			goto bad_action;
		n = -1;
		if (argc == 4 && parse_long(argv[3], 1, LONG_MAX, &n) < 0) {
			evbuffer_add_printf(out, "error: COUNT '%s' is not a "
			    "positive integer", argv[3]);
			return;
		}
		if ((r = calloc(1, sizeof *r)) == NULL ||
		    (r->prefix = strdup(argv[1])) == NULL) {
			free(r);
			evbuffer_add_printf(out, "error: out of memory");
			return;
		}
		r->act = act;
		r->left = n;
		TAILQ_INSERT_HEAD(&px->rules, r, entry);
	} else if (strcmp(argv[0], "default") == 0) {
		if (argc != 2) {
			evbuffer_add_printf(out, "error: usage: default ACTION");
			return;
		}
		if (parse_action(argv[1], &act) < 0)
			goto bad_action;
		px->dflt = act;
	} else if (strcmp(argv[0], "clear") == 0 && argc == 1) {
		rules_clear(px);
		px->dflt = A_PASS;
		px->chaos = 0;
	} else if (strcmp(argv[0], "chaos") == 0) {
		if (argc != 2 || parse_long(argv[1], 0, 100, &n) < 0) {
			evbuffer_add_printf(out, "error: usage: chaos PERCENT "
			    "(an integer 0 to 100)");
			return;
		}
		px->chaos = (int)n;
	} else if (strcmp(argv[0], "stats") == 0 && argc == 1) {
		evbuffer_add_printf(out, "requests=%" PRIu64, px->requests);
		for (i = 0; i < A_COUNT; i++)
			evbuffer_add_printf(out, " %s=%" PRIu64,
			    i == A_PASS ? "passed" : action_names[i],
			    px->counts[i]);
		return;
	} else if (strcmp(argv[0], "cut") == 0 && argc == 1) {
		n = 0;
		while ((c = TAILQ_FIRST(&px->conns)) != NULL) {
			conn_kill(c, false);
			n++;
		}
		plog(px, "cut: %ld connections closed", n);
	} else if (strcmp(argv[0], "release") == 0 && argc == 1) {
		n = 0;
		TAILQ_FOREACH(c, &px->conns, entry)
			if (c->state == C_HELD)
				n++;
		/* Each one may go on to its next request: count first. */
		while (n > 0) {
			TAILQ_FOREACH(c, &px->conns, entry)
				if (c->state == C_HELD)
					break;
			if (c == NULL)
				break;
			bufferevent_write_buffer(c->cli, c->repbuf);
			conn_reply_done(c);
			n--;
		}
		plog(px, "release: the replies held are returned");
	} else {
		evbuffer_add_printf(out, "error: unknown command '%s' (set, "
		    "default, clear, chaos, stats, cut, release; clear, stats, "
		    "cut and release take no arguments)", argv[0]);
		return;
	}
	plog(px, "control: %s done", argv[0]);
	evbuffer_add_printf(out, "ok");
	return;

bad_action:
	evbuffer_add_printf(out, "error: unknown action '%s' (pass, "
	    "drop-after, drop-before, reset-mid, dup, trickle, refuse, "
	    "hold)",
	    argc == 2 ? argv[1] : argv[2]);
}

static void
ctl_free(struct ctl *k)
{
	TAILQ_REMOVE(&k->px->ctls, k, entry);
	k->px->nctls--;
	bufferevent_free(k->bev);
	free(k);
}

static void
ctl_read_cb(struct bufferevent *bev, void *arg)
{
	struct ctl *k = arg;
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer *out = bufferevent_get_output(bev);
	char *line;
	size_t n;

	if (k->answered)
		return;
	if ((line = evbuffer_readln(in, &n, EVBUFFER_EOL_LF)) == NULL) {
		if (evbuffer_get_length(in) > CTL_LINE_MAX) {
			evbuffer_add_printf(out, "error: command over %d "
			    "bytes\n", CTL_LINE_MAX);
			k->answered = true;
		}
		return;
	}
	if (n > CTL_LINE_MAX)
		evbuffer_add_printf(out, "error: command over %d bytes",
		    CTL_LINE_MAX);
	else
		ctl_run(k->px, line, out);
	free(line);
	evbuffer_add(out, "\n", 1);
	k->answered = true;
	bufferevent_disable(bev, EV_READ);
}

static void
ctl_write_cb(struct bufferevent *bev, void *arg)
{
	struct ctl *k = arg;

	(void)bev;
	if (k->answered)
		ctl_free(k);
}

static void
ctl_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct ctl *k = arg;

	(void)what;
	/* A command without its newline, then EOF: still a command. */
	if ((what & BEV_EVENT_EOF) && !k->answered &&
	    evbuffer_get_length(bufferevent_get_input(bev)) > 0) {
		evbuffer_add(bufferevent_get_input(bev), "\n", 1);
		ctl_read_cb(bev, k);
		bufferevent_enable(bev, EV_WRITE);
		return;
	}
	ctl_free(k);
}

static void
ctl_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct proxy *px = arg;
	struct timeval tv = { 10, 0 };
	struct ctl *k;

	(void)l;
	(void)sa;
	(void)salen;
	if (px->nctls >= CTLS_MAX) {
		plog(px, "over %d control connections: one closed at accept",
		    CTLS_MAX);
		evutil_closesocket(fd);
		return;
	}
	if ((k = calloc(1, sizeof *k)) == NULL ||
	    (k->bev = bufferevent_socket_new(px->base, fd,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL) {
		free(k);
		evutil_closesocket(fd);
		return;
	}
	k->px = px;
	TAILQ_INSERT_TAIL(&px->ctls, k, entry);
	px->nctls++;
	bufferevent_setcb(k->bev, ctl_read_cb, ctl_write_cb, ctl_event_cb, k);
	bufferevent_set_timeouts(k->bev, &tv, &tv);
	bufferevent_enable(k->bev, EV_READ | EV_WRITE);
}

/* --- the command-line side --- */

static void
usage(void)
{
	fprintf(stderr,
	    "usage: faultproxy --listen ADDR:PORT --target ADDR:PORT "
	    "--control SOCKPATH\n"
	    "                  [--seed N] [--log FILE]\n"
	    "       faultproxy --ctl SOCKPATH 'COMMAND'\n");
	exit(2);
}

static int
parse_addr(const char *s, struct sockaddr_in *ret)
{
	char host[64];
	const char *colon = strrchr(s, ':');
	long port;

	if (colon == NULL || (size_t)(colon - s) >= sizeof host ||
	    parse_long(colon + 1, 0, 65535, &port) < 0)
		return -1;
	memcpy(host, s, colon - s);
	host[colon - s] = '\0';
	memset(ret, 0, sizeof *ret);
	ret->sin_family = AF_INET;
	ret->sin_port = htons((uint16_t)port);
	return inet_pton(AF_INET, host, &ret->sin_addr) == 1 ? 0 : -1;
}

static int
unix_addr(const char *path, struct sockaddr_un *ret)
{
	memset(ret, 0, sizeof *ret);
	ret->sun_family = AF_UNIX;
	if (strlen(path) >= sizeof ret->sun_path)
		return -1;
	strcpy(ret->sun_path, path);
	return 0;
}

/* faultproxy --ctl: one command, its answer on stdout. */
static int
ctl_client(const char *path, const char *cmd)
{
	struct sockaddr_un sun;
	struct pollfd pfd;
	char buf[4096];
	size_t len = 0;
	ssize_t n;
	int fd;

	if (unix_addr(path, &sun) < 0) {
		fprintf(stderr, "faultproxy: control path too long: %s\n",
		    path);
		return 2;
	}
	if ((fd = socket(AF_UNIX, SOCK_STREAM, 0)) < 0 ||
	    connect(fd, (struct sockaddr *)&sun, sizeof sun) < 0) {
		fprintf(stderr, "faultproxy: cannot connect to %s: %s\n",
		    path, strerror(errno));
		return 3;
	}
	if (write(fd, cmd, strlen(cmd)) != (ssize_t)strlen(cmd) ||
	    write(fd, "\n", 1) != 1) {
		fprintf(stderr, "faultproxy: cannot send to %s: %s\n", path,
		    strerror(errno));
		return 3;
	}
	pfd.fd = fd;
	pfd.events = POLLIN;
	while (len < sizeof buf - 1) {
		if (poll(&pfd, 1, 10000) <= 0) {
			fprintf(stderr, "faultproxy: no answer from %s within "
			    "10 s\n", path);
			return 3;
		}
		if ((n = read(fd, buf + len, sizeof buf - 1 - len)) <= 0)
			break;
		len += n;
	}
	close(fd);
	buf[len] = '\0';
	if (len == 0) {
		fprintf(stderr, "faultproxy: %s closed without an answer\n",
		    path);
		return 3;
	}
	fputs(buf, stdout);
	return strncmp(buf, "error:", 6) == 0 ? 1 : 0;
}

static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct proxy *px = arg;

	(void)what;
	plog(px, "signal %d: stopping", (int)sig);
	event_base_loopbreak(px->base);
}

int
main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "target", required_argument, NULL, 't' },
		{ "control", required_argument, NULL, 'c' },
		{ "seed", required_argument, NULL, 's' },
		{ "log", required_argument, NULL, 'L' },
		{ "ctl", required_argument, NULL, 'C' },
		{ NULL, 0, NULL, 0 },
	};
	struct proxy px;
	struct sockaddr_in listen_addr, bound;
	struct sockaddr_un sun;
	socklen_t blen = sizeof bound;
	struct event *sigterm, *sigint;
	const char *listen_s = NULL, *target_s = NULL, *ctl_s = NULL;
	const char *log_s = NULL;
	char host[INET_ADDRSTRLEN];
	unsigned long long seed = 1;
	struct conn *c;
	struct ctl *k;
	char *end;
	int ch;

	memset(&px, 0, sizeof px);
	while ((ch = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_s = optarg;
			break;
		case 't':
			target_s = optarg;
			break;
		case 'c':
			px.ctl_path = optarg;
			break;
		case 's':
			errno = 0;
			seed = strtoull(optarg, &end, 10);
			if (errno != 0 || end == optarg || *end != '\0') {
				fprintf(stderr, "faultproxy: --seed '%s' is "
				    "not an unsigned integer\n", optarg);
				return 2;
			}
			break;
		case 'L':
			log_s = optarg;
			break;
		case 'C':
			ctl_s = optarg;
			break;
		default:
			usage();
		}
	}
	argc -= optind;
	argv += optind;
	if (ctl_s != NULL) {
		if (argc != 1)
			usage();
		return ctl_client(ctl_s, argv[0]);
	}
	if (argc != 0 || listen_s == NULL || target_s == NULL ||
	    px.ctl_path == NULL)
		usage();
	if (parse_addr(listen_s, &listen_addr) < 0 ||
	    parse_addr(target_s, &px.target) < 0) {
		fprintf(stderr, "faultproxy: an address is not IPv4 "
		    "ADDR:PORT: %s\n", parse_addr(listen_s, &listen_addr) < 0 ?
		    listen_s : target_s);
		return 2;
	}
	if (unix_addr(px.ctl_path, &sun) < 0) {
		fprintf(stderr, "faultproxy: control path too long: %s\n",
		    px.ctl_path);
		return 2;
	}
	if (log_s != NULL && (px.log = fopen(log_s, "a")) == NULL) {
		fprintf(stderr, "faultproxy: cannot open %s: %s\n", log_s,
		    strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	prng_seed(&px, seed);
	TAILQ_INIT(&px.rules);
	TAILQ_INIT(&px.conns);
	TAILQ_INIT(&px.dead);
	TAILQ_INIT(&px.ctls);
	px.dflt = A_PASS;
	if ((px.base = event_base_new()) == NULL ||
	    (px.reap = event_new(px.base, -1, 0, reap_cb, &px)) == NULL) {
		fprintf(stderr, "faultproxy: cannot set up libevent\n");
		return 1;
	}
	px.ctl_listener = evconnlistener_new_bind(px.base, ctl_accept_cb, &px,
	    LEV_OPT_CLOSE_ON_FREE, 16, (struct sockaddr *)&sun, sizeof sun);
	if (px.ctl_listener == NULL) {
		fprintf(stderr, "faultproxy: cannot listen on %s: %s\n",
		    px.ctl_path, strerror(errno));
		return 1;
	}
	px.listener = evconnlistener_new_bind(px.base, accept_cb, &px,
	    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 128,
	    (struct sockaddr *)&listen_addr, sizeof listen_addr);
	if (px.listener == NULL ||
	    getsockname(evconnlistener_get_fd(px.listener),
	    (struct sockaddr *)&bound, &blen) < 0) {
		fprintf(stderr, "faultproxy: cannot listen on %s: %s\n",
		    listen_s, strerror(errno));
		unlink(px.ctl_path);
		return 1;
	}
	sigterm = evsignal_new(px.base, SIGTERM, signal_cb, &px);
	sigint = evsignal_new(px.base, SIGINT, signal_cb, &px);
	if (sigterm == NULL || sigint == NULL || evsignal_add(sigterm,
	    NULL) < 0 || evsignal_add(sigint, NULL) < 0) {
		fprintf(stderr, "faultproxy: cannot catch signals\n");
		unlink(px.ctl_path);
		return 1;
	}
	inet_ntop(AF_INET, &bound.sin_addr, host, sizeof host);
	plog(&px, "listening on %s:%u, target %s, seed %llu", host,
	    ntohs(bound.sin_port), target_s, seed);
	fprintf(stderr, "ready: listening on %s:%u\n", host,
	    ntohs(bound.sin_port));
	fflush(stderr);

	event_base_dispatch(px.base);

	while ((c = TAILQ_FIRST(&px.conns)) != NULL)
		conn_kill(c, false);
	reap_cb(-1, 0, &px);
	while ((k = TAILQ_FIRST(&px.ctls)) != NULL)
		ctl_free(k);
	rules_clear(&px);
	evconnlistener_free(px.listener);
	evconnlistener_free(px.ctl_listener);
	unlink(px.ctl_path);
	event_free(sigterm);
	event_free(sigint);
	event_free(px.reap);
	event_base_free(px.base);
	if (px.log != NULL)
		fclose(px.log);
	return 0;
}
