/*
 * srv_conn: connection bounds and pre-body admission for ferry-server's
 * HTTP front; see srv_conn.h.
 *
 * A connection is ours from evhttp's bufferevent callback (accept) to the
 * finalizer of the filter bufferevent we hand it there.  evhttp frees a
 * connection at times we do not choose and the finalizer runs later, so a
 * connection is "settled" as soon as evhttp has set it up (its
 * evhttp_connection is then known and a close callback marks it gone at
 * once); it is settled at the next accept, in any of our callbacks, or by
 * an event made active at accept, whichever comes first.  Only a settled
 * connection that is not gone is ever closed by us, and only when no
 * request of it is in a handler's hands (states IDLE and HEAD).
 */
#include "autoconfig.h"

#include <sys/queue.h>
#include <sys/resource.h>
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>

#include "auth.h"
#include "keys.h"
#include "log.h"
#include "srv_conn.h"
#include "util.h"

#define SRV_CONN_EVICT_BATCH	32	/* closed per accept failure */
#define SRV_CONN_RETRY_MS	10	/* pause when that freed some */
#define SRV_CONN_LOG_EVERY_US	1000000	/* repeated lines: once a second */

enum srv_conn_state {
	SRV_CONN_IDLE,		/* no byte of a request yet */
	SRV_CONN_HEAD,		/* holding a header block being received */
	SRV_CONN_BODY,		/* passing an admitted body to evhttp */
	SRV_CONN_BUSY,		/* evhttp or a handler has the request */
	SRV_CONN_DRAIN,		/* refused: the rest is discarded */
	SRV_CONN_RAW		/* malformed: passed on for evhttp to refuse */
};

struct srv_conn {
	TAILQ_ENTRY(srv_conn)	 entry;
	struct srv_conns	*cs;		/* NULL once cs is freed */
	struct bufferevent	*bev;		/* the filter evhttp reads */
	struct evhttp_connection *evcon;	/* NULL until settled */
	enum srv_conn_state	 state;
	int64_t			 idle_us;	/* idle since (monotonic) */
	int64_t			 body_left;
	size_t			 admitted;	/* counted in cs->inflight */
	size_t			 scanned;	/* header bytes seen to end in EOL */
	size_t			 lead;		/* of them, empty lines before it */
	bool			 settled;
	bool			 gone;
	bool			 stuck;		/* output added while not writing */
	bool			 lingering;	/* refused and answered: closing */
	bool			 close_after;	/* the client asked for a close */
};

TAILQ_HEAD(srv_conn_list, srv_conn);

struct srv_ratelog {
	int64_t		last_us;
	unsigned long	suppressed;
};

struct srv_conns {
	TAILQ_ENTRY(srv_conns)	 entry;		/* srv_conns_all */
	struct event_base	*base;
	struct evhttp		*http;
	struct srv_conns_config	 cfg;
	struct srv_conn_list	 pending;	/* not settled yet */
	struct srv_conn_list	 conns;		/* settled */
	int			 nconns;	/* accepted, not gone */
	size_t			 inflight;
	unsigned long		 evicted;
	struct evconnlistener	*lev;
	struct event		*settle;	/* settles; restarts held input */
	struct event		*backoff;
	bool			 full;		/* at the cap, none idle */
	bool			 backing_off;	/* after an accept failure */
	bool			 listening;
	struct srv_ratelog	 accept_log;
	struct srv_ratelog	 evict_log;
};

/*
 * The listener's error callback gets evhttp's argument, not ours: the
 * instances are found by listener here.
 */
static TAILQ_HEAD(, srv_conns) srv_conns_all =
    TAILQ_HEAD_INITIALIZER(srv_conns_all);

static void	srv_conn_sent_cb(struct evbuffer *,
	    const struct evbuffer_cb_info *, void *);

/* Log a line at most once a second, counting the ones left out. */
static void
srv_conns_ratelog(struct srv_ratelog *rl, enum log_level level,
    const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void
srv_conns_ratelog(struct srv_ratelog *rl, enum log_level level,
    const char *fmt, ...)
{
	int64_t now = util_mono_us();
	char msg[512];
	va_list ap;

	if (rl->last_us != 0 && now - rl->last_us < SRV_CONN_LOG_EVERY_US) {
		rl->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (rl->suppressed > 0)
		log_msg(level, "%s (and %lu more like it since the last such "
		    "line)", msg, rl->suppressed);
	else
		log_msg(level, "%s", msg);
	rl->last_us = now;
	rl->suppressed = 0;
}

int
srv_conn_default_max(void)
{
	struct rlimit rl;
	rlim_t n;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur == RLIM_INFINITY)
		return SRV_CONN_MAX_DEFAULT;
	n = rl.rlim_cur;
	if (n <= 2 * SRV_CONN_FD_RESERVE)
		return n / 2 > 0 ? (int)(n / 2) : 1;
	n -= SRV_CONN_FD_RESERVE;
	return n < SRV_CONN_MAX_DEFAULT ? (int)n : SRV_CONN_MAX_DEFAULT;
}

/* Enable or disable accepting as the state asks. */
static void
srv_conns_update_listener(struct srv_conns *cs)
{
	bool want;

	if (cs->lev == NULL)
		return;
	want = !cs->backing_off && !cs->full;
	if (want == cs->listening)
		return;
	if (want)
		evconnlistener_enable(cs->lev);
	else
		evconnlistener_disable(cs->lev);
	cs->listening = want;
}

static void
srv_conn_release(struct srv_conn *c)
{
	if (c->cs != NULL && c->admitted > 0) {
		c->cs->inflight -= c->admitted;
		c->admitted = 0;
	}
}

/* The connection is closed (or closing): it no longer counts. */
static void
srv_conn_gone(struct srv_conn *c)
{
	struct srv_conns *cs = c->cs;

	if (c->gone || cs == NULL)
		return;
	c->gone = true;
	srv_conn_release(c);
	cs->nconns--;
	cs->full = false;
	srv_conns_update_listener(cs);
}

static void
srv_conn_closed_cb(struct evhttp_connection *evcon, void *arg)
{
	srv_conn_gone(arg);
}

/* Learn c's evhttp_connection, or that evhttp has let it go already. */
static void
srv_conn_settle(struct srv_conn *c)
{
	struct srv_conns *cs = c->cs;
	bufferevent_event_cb eventcb;
	void *arg;

	if (c->settled || cs == NULL)
		return;
	TAILQ_REMOVE(&cs->pending, c, entry);
	TAILQ_INSERT_TAIL(&cs->conns, c, entry);
	c->settled = true;
	bufferevent_getcb(c->bev, NULL, NULL, &eventcb, &arg);
	if (eventcb == NULL || arg == NULL) {
		/* bufferevent_free() clears the callbacks first. */
		srv_conn_gone(c);
		return;
	}
	c->evcon = arg;
	evhttp_connection_set_closecb(c->evcon, srv_conn_closed_cb, c);
}

static void
srv_conns_settle_all(struct srv_conns *cs)
{
	while (!TAILQ_EMPTY(&cs->pending))
		srv_conn_settle(TAILQ_FIRST(&cs->pending));
}

/*
 * Close up to n connections that have no request in hand, the one idle
 * longest first.  Returns how many were closed.
 */
static int
srv_conns_evict(struct srv_conns *cs, int n)
{
	struct srv_conn *c, *oldest;
	int done;

	srv_conns_settle_all(cs);
	for (done = 0; done < n; done++) {
		oldest = NULL;
		TAILQ_FOREACH(c, &cs->conns, entry) {
			if (c->gone || c->evcon == NULL ||
			    (c->state != SRV_CONN_IDLE &&
			    c->state != SRV_CONN_HEAD && !c->lingering))
				continue;
			if (oldest == NULL || c->idle_us < oldest->idle_us)
				oldest = c;
		}
		if (oldest == NULL)
			break;
		/* Calls srv_conn_closed_cb, which marks it gone. */
		evhttp_connection_free(oldest->evcon);
		srv_conn_gone(oldest);
		cs->evicted++;
	}
	return done;
}

/* --- the input filter: one header block at a time --- */

struct srv_conn_head {
	const char	*auth;
	size_t		 auth_len;
	int		 nauth;
	int		 ncl;
	int64_t		 cl;
	bool		 cl_bad;
	bool		 te;
	bool		 folded;
	bool		 no_body;	/* HEAD, TRACE: evhttp reads none */
	bool		 http10;
	bool		 conn_close;	/* Connection: close */
	bool		 conn_keep;	/* Connection: keep-alive */
};

static bool
srv_conn_is(const char *line, size_t len, const char *name, size_t *ret_off)
{
	size_t n = strlen(name);

	if (len <= n || line[n] != ':' || strncasecmp(line, name, n) != 0)
		return false;
	*ret_off = n + 1;
	return true;
}

/* The value after "Name:", without surrounding spaces and tabs. */
static void
srv_conn_value(const char *line, size_t len, size_t off, const char **ret,
    size_t *ret_len)
{
	while (off < len && (line[off] == ' ' || line[off] == '\t'))
		off++;
	while (len > off && (line[len - 1] == ' ' || line[len - 1] == '\t'))
		len--;
	*ret = line + off;
	*ret_len = len - off;
}

static int64_t
srv_conn_parse_len(const char *s, size_t len)
{
	int64_t v = 0;
	size_t i;

	if (len == 0 || len > 18)
		return -1;
	for (i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -1;
		v = v * 10 + (s[i] - '0');
	}
	return v;
}

/* Note the options of a Connection header value in *hd. */
static void
srv_conn_options(const char *v, size_t len, struct srv_conn_head *hd)
{
	size_t i = 0, start, n;

	while (i < len) {
		while (i < len && (v[i] == ',' || v[i] == ' ' || v[i] == '\t'))
			i++;
		start = i;
		while (i < len && v[i] != ',' && v[i] != ' ' && v[i] != '\t')
			i++;
		n = i - start;
		if (n == 5 && strncasecmp(v + start, "close", 5) == 0)
			hd->conn_close = true;
		else if (n == 10 && strncasecmp(v + start, "keep-alive", 10) == 0)
			hd->conn_keep = true;
	}
}

/*
 * Copy the header block (len bytes, NUL-terminated copy in blk) to out
 * without any SRV_CONN_ADMISSION line, without Connection lines (the
 * close a client asks for is ours to make: srv_conn_head_done) and, if
 * strip_body, without the lines that announce a body; note what decides
 * admission, and the close, in *hd.
 */
static void
srv_conn_scan(char *blk, size_t len, struct evbuffer *out, bool strip_body,
    struct srv_conn_head *hd)
{
	const char *v;
	size_t pos = 0, end, llen, off, vlen;
	bool first = true, drop;
	char *line, *nl;

	while (pos < len) {
		line = blk + pos;
		nl = memchr(line, '\n', len - pos);
		end = nl != NULL ? (size_t)(nl - blk) : len;
		pos = end + 1;
		llen = (size_t)(blk + end - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break;
		drop = false;
		if (first) {
			hd->no_body = (llen >= 5 && strncmp(line, "HEAD ", 5)
			    == 0) || (llen >= 6 && strncmp(line, "TRACE ", 6)
			    == 0);
			hd->http10 = llen >= 9 &&
			    strncmp(line + llen - 9, " HTTP/1.0", 9) == 0;
			first = false;
		} else if (line[0] == ' ' || line[0] == '\t') {
			hd->folded = true;
		} else if (srv_conn_is(line, llen, SRV_CONN_ADMISSION, &off)) {
			drop = true;
		} else if (srv_conn_is(line, llen, "Connection", &off)) {
			srv_conn_value(line, llen, off, &v, &vlen);
			srv_conn_options(v, vlen, hd);
			drop = true;
		} else if (srv_conn_is(line, llen, "Authorization", &off)) {
			srv_conn_value(line, llen, off, &hd->auth,
			    &hd->auth_len);
			hd->nauth++;
		} else if (srv_conn_is(line, llen, "Content-Length", &off)) {
			srv_conn_value(line, llen, off, &v, &vlen);
			hd->cl = srv_conn_parse_len(v, vlen);
			hd->cl_bad = hd->cl < 0;
			hd->ncl++;
			drop = strip_body;
		} else if (srv_conn_is(line, llen, "Transfer-Encoding",
		    &off)) {
			hd->te = true;
			drop = strip_body;
		}
		if (!drop && out != NULL) {
			evbuffer_add(out, line, llen);
			evbuffer_add(out, "\r\n", 2);
		}
	}
}

/* RFC 9110 tchar: the bytes of a token (a method, a field name). */
static bool
srv_conn_tchar(char c)
{
	return isalnum((unsigned char)c) || (c != '\0' &&
	    strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

/*
 * The request line (llen bytes, no EOL) by RFC 9112 section 3, as far as
 * evhttp would refuse it on its own: 0, or the status to refuse with and
 * why.  *ret_head tells whether the method is HEAD.
 */
static int
srv_conn_request_line(const char *line, size_t llen, bool *ret_head,
    char *why, size_t whylen)
{
	static const char *const methods[] = { "GET", "HEAD", "POST", "PUT",
	    "DELETE", "OPTIONS", "TRACE", "PATCH" };
	const char *sp1, *sp2, *v, *p;
	struct evhttp_uri *uri;
	char *target;
	size_t i, mlen;

	sp1 = memchr(line, ' ', llen);
	sp2 = sp1 != NULL ? memchr(sp1 + 1, ' ', llen - (size_t)(sp1 + 1 -
	    line)) : NULL;
	if (sp1 == NULL || sp2 == NULL || sp1 == line || sp2 == sp1 + 1)
		goto malformed;
	for (p = line; p < sp1; p++)
		if (!srv_conn_tchar(*p))
			goto malformed;
	for (p = sp1 + 1; p < sp2; p++)
		if ((unsigned char)*p <= 0x20 || (unsigned char)*p >= 0x7f)
			goto malformed;
	v = sp2 + 1;
	if (line + llen - v != 8 || strncmp(v, "HTTP/", 5) != 0 ||
	    !isdigit((unsigned char)v[5]) || v[6] != '.' ||
	    !isdigit((unsigned char)v[7]))
		goto malformed;
	mlen = (size_t)(sp1 - line);
	*ret_head = mlen == 4 && strncmp(line, "HEAD", 4) == 0;
	if (v[5] != '1') {
		snprintf(why, whylen, "HTTP version %c.%c is not supported "
		    "(only 1.0 and 1.1)", v[5], v[7]);
		return 505;
	}
	for (i = 0; i < sizeof methods / sizeof methods[0]; i++)
		if (strlen(methods[i]) == mlen &&
		    strncmp(methods[i], line, mlen) == 0)
			break;
	if (i == sizeof methods / sizeof methods[0]) {
		snprintf(why, whylen, "method %.*s is not implemented",
		    mlen > 32 ? 32 : (int)mlen, line);
		return 501;
	}
	if ((target = strndup(sp1 + 1, (size_t)(sp2 - sp1 - 1))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return 503;
	}
	uri = evhttp_uri_parse_with_flags(target, EVHTTP_URI_NONCONFORMANT);
	free(target);
	if (uri == NULL) {
		snprintf(why, whylen, "malformed request target");
		return 400;
	}
	evhttp_uri_free(uri);
	return 0;
malformed:
	snprintf(why, whylen, "malformed request line (expected METHOD "
	    "TARGET HTTP/1.1, one space apart)");
	return 400;
}

/*
 * The request line and the header lines of blk (len bytes: a whole header
 * block, its empty line included) by RFC 9112, as far as evhttp would
 * answer them itself: 0, or the status to refuse with and why.  Folded
 * lines and the framing fields are srv_conn_decide's.
 */
static int
srv_conn_syntax(const char *blk, size_t len, bool *ret_head, char *why,
    size_t whylen)
{
	const char *line, *end, *colon, *p, *v;
	size_t llen, vlen, i;
	char val[65];
	bool first = true;
	int code;

	*ret_head = false;
	for (line = blk; line < blk + len; line = end + 1) {
		if ((end = memchr(line, '\n', (size_t)(blk + len - line))) ==
		    NULL)
			end = blk + len;
		llen = (size_t)(end - line);
		if (llen > 0 && line[llen - 1] == '\r')
			llen--;
		if (llen == 0)
			break;
		if (memchr(line, '\r', llen) != NULL ||
		    memchr(line, '\0', llen) != NULL) {
			snprintf(why, whylen, "malformed %s line (a CR or NUL "
			    "byte in it)", first ? "request" : "header");
			return 400;
		}
		if (first) {
			first = false;
			if ((code = srv_conn_request_line(line, llen, ret_head,
			    why, whylen)) != 0)
				return code;
			continue;
		}
		if (line[0] == ' ' || line[0] == '\t')
			continue;
		colon = memchr(line, ':', llen);
		for (p = line; p < line + llen && srv_conn_tchar(*p); p++)
			;
		if (colon == NULL || p != colon || colon == line) {
			snprintf(why, whylen, "malformed header line (a field "
			    "name is a token directly followed by ':')");
			return 400;
		}
		if (colon - line != 6 || strncasecmp(line, "Expect", 6) != 0)
			continue;
		srv_conn_value(line, llen, 7, &v, &vlen);
		if (vlen == 12 && strncasecmp(v, "100-continue", 12) == 0)
			continue;
		for (i = 0; i < vlen && i < sizeof val - 1; i++)
			val[i] = v[i] >= 0x20 && v[i] < 0x7f ? v[i] : '?';
		val[i] = '\0';
		snprintf(why, whylen, "Expect: %s is not supported (only "
		    "100-continue)", val);
		return 417;
	}
	return 0;
}

/*
 * Refuse a request evhttp must not see as it came: pass it a stand-in
 * request that carries the refusal, and discard the rest.
 */
static void
srv_conn_refuse_raw(struct srv_conn *c, struct evbuffer *dst, bool head,
    int code, const char *why)
{
	evbuffer_add_printf(dst, "%s / HTTP/1.1\r\n" SRV_CONN_ADMISSION
	    ": %d %s\r\n\r\n", head ? "HEAD" : "GET", code, why);
	c->state = SRV_CONN_DRAIN;
}

/* 0 if the header block may be followed by its body, else a status. */
static int
srv_conn_decide(struct srv_conn *c, struct srv_conn_head *hd, char *why,
    size_t whylen)
{
	struct srv_conns *cs = c->cs;
	char key[KEYS_PUB_B64_LEN + 1], *auth;
	const char *reason = NULL;
	int r;

	if (hd->folded) {
		snprintf(why, whylen, "folded header lines are not accepted");
		return 400;
	}
	if (hd->te) {
		snprintf(why, whylen, "Transfer-Encoding is not accepted; send "
		    "the body with a Content-Length");
		return 411;
	}
	if (hd->ncl > 1 || hd->cl_bad) {
		snprintf(why, whylen, "the Content-Length header is %s",
		    hd->ncl > 1 ? "repeated" : "malformed");
		return 400;
	}
	if (hd->ncl == 0 || hd->cl == 0 || hd->no_body)
		return 0;
	if ((uint64_t)hd->cl > cs->cfg.body_max) {
		snprintf(why, whylen, "the request body is too large (%" PRId64
		    " bytes; at most %zu)", hd->cl, cs->cfg.body_max);
		return 413;
	}
	if (hd->nauth != 1) {
		snprintf(why, whylen, "%s", hd->nauth == 0 ? "the request has "
		    "no Authorization header" : "the request has more than "
		    "one Authorization header");
		return 401;
	}
	if ((auth = strndup(hd->auth, hd->auth_len)) == NULL) {
		snprintf(why, whylen, "out of memory");
		return 503;
	}
	r = auth_header_precheck(auth, (int64_t)time(NULL), AUTH_MAX_SKEW,
	    key, &reason);
	free(auth);
	if (r < 0) {
		snprintf(why, whylen, "%s", reason);
		return 401;
	}
	if (cs->cfg.admit_key != NULL && !cs->cfg.admit_key(cs->cfg.arg,
	    key)) {
		snprintf(why, whylen, "key %s is not authorized on this server",
		    key);
		return 401;
	}
	if (cs->inflight + (uint64_t)hd->cl > cs->cfg.max_inflight) {
		snprintf(why, whylen, "the server is receiving too many request "
		    "bodies at once (at most %zu bytes); retry later",
		    cs->cfg.max_inflight);
		return 503;
	}
	cs->inflight += (size_t)hd->cl;
	c->admitted = (size_t)hd->cl;
	return 0;
}

/*
 * src holds a complete header block of len bytes: decide, pass it on
 * (rewritten) to dst, and set the next state.
 */
static void
srv_conn_head_done(struct srv_conn *c, struct evbuffer *src,
    struct evbuffer *dst, size_t len)
{
	struct srv_conn_head hd;
	char *blk, why[384];
	bool head;
	int code;

	memset(&hd, 0, sizeof hd);
	/* Empty lines before the request line: ignored. */
	evbuffer_drain(src, c->lead);
	len -= c->lead;
	c->lead = 0;
	if ((blk = malloc(len + 1)) == NULL) {
		/* Let evhttp see it as it came. */
		evbuffer_remove_buffer(src, dst, len);
		c->state = SRV_CONN_RAW;
		return;
	}
	evbuffer_remove(src, blk, len);
	blk[len] = '\0';
	if ((code = srv_conn_syntax(blk, len, &head, why, sizeof why)) != 0) {
		free(blk);
		srv_conn_refuse_raw(c, dst, head, code, why);
		return;
	}
	srv_conn_scan(blk, len, NULL, false, &hd);
	code = srv_conn_decide(c, &hd, why, sizeof why);
	memset(&hd, 0, sizeof hd);
	srv_conn_scan(blk, len, dst, code != 0, &hd);
	free(blk);
	/*
	 * evhttp closes a connection the client wants closed as soon as the
	 * reply has left the filter, before the socket has sent it (and
	 * shuts the socket down first): HTTP/1.0 clients and "Connection:
	 * close" (haproxy's health checks) got an empty reply.  evhttp is
	 * told to keep the connection, and srv_conn_done_cb closes it the
	 * way a refusal is closed, once the reply is out.
	 */
	c->close_after = hd.conn_close || (hd.http10 && !hd.conn_keep);
	if (hd.http10)
		evbuffer_add_printf(dst, "Connection: keep-alive\r\n");
	if (code != 0) {
		evbuffer_add_printf(dst, SRV_CONN_ADMISSION ": %d %s\r\n",
		    code, why);
		c->state = SRV_CONN_DRAIN;
	} else if (c->admitted > 0) {
		c->body_left = hd.cl;
		c->state = SRV_CONN_BODY;
	} else
		c->state = SRV_CONN_BUSY;
	evbuffer_add(dst, "\r\n", 2);
}

/*
 * In state HEAD: if src holds a whole header block, handle it and return
 * true; false if more is needed.
 */
static bool
srv_conn_head(struct srv_conn *c, struct evbuffer *src, struct evbuffer *dst)
{
	struct evbuffer_ptr p, e;
	size_t eol_len;
	char why[128];
	bool head;

	for (;;) {
		if (evbuffer_ptr_set(src, &p, c->scanned,
		    EVBUFFER_PTR_SET) < 0)
			return false;
		e = evbuffer_search_eol(src, &p, &eol_len, EVBUFFER_EOL_CRLF);
		if (e.pos < 0) {
			if (evbuffer_get_length(src) <= SRV_CONN_HEADERS_MAX)
				return false;
			break;		/* too long: evhttp refuses it */
		}
		if ((size_t)e.pos + eol_len > SRV_CONN_HEADERS_MAX)
			break;
		if ((size_t)e.pos == c->scanned) {
			if (c->scanned == c->lead) {
				/* An empty line before the request line. */
				c->scanned = c->lead = (size_t)e.pos + eol_len;
				continue;
			}
			srv_conn_head_done(c, src, dst, (size_t)e.pos +
			    eol_len);
			c->scanned = 0;
			return true;
		}
		c->scanned = (size_t)e.pos + eol_len;
	}
	/* Too long: refuse it and discard the rest. */
	evbuffer_drain(src, c->lead);
	c->scanned = c->lead = 0;
	head = evbuffer_get_length(src) >= 5 &&
	    memcmp(evbuffer_pullup(src, 5), "HEAD ", 5) == 0;
	evbuffer_drain(src, evbuffer_get_length(src));
	snprintf(why, sizeof why, "the request header section is larger than "
	    "%d bytes", SRV_CONN_HEADERS_MAX);
	srv_conn_refuse_raw(c, dst, head, 431, why);
	return true;
}

/*
 * Move n bytes of a body from src to dst by copying: the socket reads
 * into chains up to twice the size of what they hold, and moving those
 * would keep the slack for as long as the body is held.  Copied, a body
 * costs about its size, which is what max_inflight counts.
 */
static void
srv_conn_copy(struct evbuffer *src, struct evbuffer *dst, size_t n)
{
	char buf[16384];
	ev_ssize_t got;
	size_t take;

	while (n > 0) {
		take = n < sizeof buf ? n : sizeof buf;
		if ((got = evbuffer_remove(src, buf, take)) <= 0)
			return;
		if (evbuffer_add(dst, buf, (size_t)got) < 0)
			return;
		n -= (size_t)got;
	}
}

static enum bufferevent_filter_result
srv_conn_input_cb(struct evbuffer *src, struct evbuffer *dst,
    ev_ssize_t limit, enum bufferevent_flush_mode mode, void *arg)
{
	struct srv_conn *c = arg;
	size_t n;
	bool progress = false;

	if (c->cs == NULL) {
		evbuffer_add_buffer(dst, src);
		return BEV_OK;
	}
	srv_conn_settle(c);
	while ((n = evbuffer_get_length(src)) > 0) {
		switch (c->state) {
		case SRV_CONN_IDLE:
			c->state = SRV_CONN_HEAD;
			continue;
		case SRV_CONN_HEAD:
			if (!srv_conn_head(c, src, dst))
				goto out;
			break;
		case SRV_CONN_BODY:
			if ((int64_t)n > c->body_left)
				n = (size_t)c->body_left;
			srv_conn_copy(src, dst, n);
			c->body_left -= (int64_t)n;
			if (c->body_left == 0)
				c->state = SRV_CONN_BUSY;
			break;
		case SRV_CONN_BUSY:
			/* The next request, pipelined: held until this one
			 * is answered (srv_conn_done_cb). */
			goto out;
		case SRV_CONN_DRAIN:
			/* Not progress: the linger timeout runs on. */
			evbuffer_drain(src, n);
			goto out;
		case SRV_CONN_RAW:
			evbuffer_add_buffer(dst, src);
			break;
		}
		progress = true;
	}
out:
	return progress ? BEV_OK : BEV_NEED_MORE;
}

/* The filter is finalized: the connection's last trace. */
static void
srv_conn_free_cb(void *arg)
{
	struct srv_conn *c = arg;

	if (c->cs != NULL) {
		srv_conn_gone(c);
		TAILQ_REMOVE(c->settled ? &c->cs->conns : &c->cs->pending, c,
		    entry);
	}
	free(c);
}

/*
 * evhttp writes a reply into the filter's output before it enables
 * writing, and libevent 2.1's filter moves output on only when bytes are
 * added while writing is enabled: the reply would sit there until some
 * other event.  Note it, and flush it from the settle event.
 */
static void
srv_conn_output_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct srv_conn *c = arg;

	if (info->n_added == 0 || c->cs == NULL || c->gone)
		return;
	if ((bufferevent_get_enabled(c->bev) & EV_WRITE) == 0) {
		c->stuck = true;
		event_active(c->cs->settle, EV_TIMEOUT, 1);
	}
}

/* evhttp_set_bevcb: a connection was accepted. */
static struct bufferevent *
srv_conn_bev_cb(struct event_base *base, void *arg)
{
	struct srv_conns *cs = arg;
	struct bufferevent *under, *bev = NULL;
	struct srv_conn *c;

	srv_conns_settle_all(cs);
	if ((c = calloc(1, sizeof *c)) == NULL)
		return NULL;	/* evhttp makes its own: not counted */
	if ((under = bufferevent_socket_new(base, -1,
	    BEV_OPT_CLOSE_ON_FREE)) == NULL ||
	    (bev = bufferevent_filter_new(under, srv_conn_input_cb, NULL,
	    BEV_OPT_CLOSE_ON_FREE, srv_conn_free_cb, c)) == NULL) {
		if (under != NULL)
			bufferevent_free(under);
		free(c);
		return NULL;
	}
	c->bev = bev;
	if (evbuffer_add_cb(bufferevent_get_output(bev), srv_conn_output_cb,
	    c) == NULL ||
	    evbuffer_add_cb(bufferevent_get_output(under), srv_conn_sent_cb,
	    c) == NULL) {
		bufferevent_free(bev);	/* frees c, which has no cs yet */
		return NULL;
	}
	c->cs = cs;
	c->state = SRV_CONN_IDLE;
	c->idle_us = util_mono_us();
	TAILQ_INSERT_TAIL(&cs->pending, c, entry);
	cs->nconns++;
	event_active(cs->settle, EV_TIMEOUT, 1);
	if (cs->nconns > cs->cfg.max_connections) {
		if (srv_conns_evict(cs, 1) > 0)
			srv_conns_ratelog(&cs->evict_log, LOG_INFO,
			    "%d connections open: closed the one idle longest "
			    "to make room (%lu so far)",
			    cs->cfg.max_connections, cs->evicted);
		else {
			cs->full = true;
			srv_conns_ratelog(&cs->evict_log, LOG_WARNING,
			    "%d connections open, all busy: not accepting "
			    "until one closes", cs->nconns);
			srv_conns_update_listener(cs);
		}
	}
	return bev;
}

/*
 * Settle new connections, move replies on (srv_conn_output_cb) and
 * restart input held while a request was busy.
 */
static void
srv_conns_settle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_conns *cs = arg;
	struct srv_conn *c;
	struct bufferevent *under;

	srv_conns_settle_all(cs);
	TAILQ_FOREACH(c, &cs->conns, entry) {
		if (c->stuck && !c->gone) {
			c->stuck = false;
			bufferevent_flush(c->bev, EV_WRITE, BEV_NORMAL);
		}
		if (c->gone || c->state != SRV_CONN_IDLE)
			continue;
		under = bufferevent_get_underlying(c->bev);
		if (under == NULL ||
		    evbuffer_get_length(bufferevent_get_input(under)) == 0)
			continue;
		bufferevent_flush(c->bev, EV_READ, BEV_NORMAL);
		if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0)
			bufferevent_trigger(c->bev, EV_READ,
			    BEV_TRIG_DEFER_CALLBACKS);
	}
}

/*
 * A refused request was answered and the rest of it is discarded: once
 * the answer has left, say so with a FIN, and let the client close (or
 * the linger timeout).  Closing at once with its body still arriving
 * would reset the connection, and the client could lose the answer.
 */
static void
srv_conn_fin(struct srv_conn *c)
{
	struct bufferevent *under = bufferevent_get_underlying(c->bev);
	evutil_socket_t fd;

	if (!c->lingering || c->gone || under == NULL ||
	    evbuffer_get_length(bufferevent_get_output(c->bev)) > 0 ||
	    evbuffer_get_length(bufferevent_get_output(under)) > 0)
		return;
	if ((fd = bufferevent_getfd(under)) != -1)
		(void)shutdown(fd, SHUT_WR);
}

/* The socket bufferevent wrote: a lingering answer may be out. */
static void
srv_conn_sent_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info,
    void *arg)
{
	struct srv_conn *c = arg;

	if (info->n_deleted > 0 && c->cs != NULL)
		srv_conn_fin(c);
}

/* evhttp_request_set_on_complete_cb: the reply was written. */
static void
srv_conn_done_cb(struct evhttp_request *req, void *arg)
{
	struct srv_conn *c = arg;
	struct bufferevent *under;

	if (c->cs == NULL || c->gone)
		return;
	srv_conn_release(c);
	if (c->close_after && c->state == SRV_CONN_BUSY) {
		/* What follows a request that asked for the close is not
		 * read: the reply goes out, then a FIN (srv_conn_fin). */
		c->close_after = false;
		c->state = SRV_CONN_DRAIN;
		if (c->evcon != NULL)
			evhttp_connection_set_timeout(c->evcon,
			    SRV_CONN_LINGER_S);
	}
	if (c->state == SRV_CONN_DRAIN) {
		c->lingering = true;
		c->idle_us = util_mono_us();
		srv_conn_fin(c);
		return;
	}
	if (c->state != SRV_CONN_BUSY)
		return;
	c->state = SRV_CONN_IDLE;
	c->idle_us = util_mono_us();
	c->cs->full = false;
	srv_conns_update_listener(c->cs);
	under = bufferevent_get_underlying(c->bev);
	if (under != NULL &&
	    evbuffer_get_length(bufferevent_get_input(under)) > 0)
		event_active(c->cs->settle, EV_TIMEOUT, 1);
}

int
srv_conn_request(struct srv_conns *cs, struct evhttp_request *req,
    const char **ret_reason)
{
	struct evhttp_connection *evcon = evhttp_request_get_connection(req);
	struct srv_conn *c;
	const char *v;
	int code;

	srv_conns_settle_all(cs);
	TAILQ_FOREACH(c, &cs->conns, entry)
		if (c->evcon == evcon && !c->gone)
			break;
	if (c != NULL)
		evhttp_request_set_on_complete_cb(req, srv_conn_done_cb, c);
	v = evhttp_find_header(evhttp_request_get_input_headers(req),
	    SRV_CONN_ADMISSION);
	if (v == NULL)
		return 0;
	/* Refused: what follows is discarded for a few seconds at most. */
	if (c != NULL)
		evhttp_connection_set_timeout(evcon, SRV_CONN_LINGER_S);
	/* Ours: "CODE reason" (the filter drops any a client sent). */
	if (strlen(v) < 5 || v[3] != ' ' || (code = atoi(v)) < 400 ||
	    code > 599) {
		*ret_reason = "malformed request";
		return 400;
	}
	*ret_reason = v + 4;
	return code;
}

/* Accepting failed (libevent retries EINTR and EAGAIN itself). */
static void
srv_conns_accept_error_cb(struct evconnlistener *lev, void *arg)
{
	struct srv_conns *cs;
	struct timeval tv = { 0, 0 };
	int err = EVUTIL_SOCKET_ERROR(), n, ms;

	TAILQ_FOREACH(cs, &srv_conns_all, entry)
		if (cs->lev == lev)
			break;
	if (cs == NULL)
		return;
	n = err == EMFILE || err == ENFILE || err == ENOBUFS ||
	    err == ENOMEM ? srv_conns_evict(cs, SRV_CONN_EVICT_BATCH) : 0;
	/* Descriptors of closed connections are released when their
	 * bufferevents are finalized, on the next turn of the loop. */
	ms = n > 0 ? SRV_CONN_RETRY_MS : SRV_CONN_BACKOFF_MS;
	tv.tv_usec = ms * 1000;
	srv_conns_ratelog(&cs->accept_log, LOG_WARNING, "cannot accept "
	    "connections: %s (%d open, closed %d idle); pausing %d ms",
	    strerror(err), cs->nconns, n, ms);
	cs->backing_off = true;
	srv_conns_update_listener(cs);
	evtimer_add(cs->backoff, &tv);
}

static void
srv_conns_backoff_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_conns *cs = arg;

	cs->backing_off = false;
	srv_conns_update_listener(cs);
}

int
srv_conns_new(struct event_base *base, struct evhttp *http,
    const struct srv_conns_config *cfg, struct srv_conns **ret)
{
	struct srv_conns *cs;

	if ((cs = calloc(1, sizeof *cs)) == NULL)
		return -ENOMEM;
	cs->base = base;
	cs->http = http;
	cs->cfg = *cfg;
	if (cs->cfg.max_connections <= 0)
		cs->cfg.max_connections = srv_conn_default_max();
	TAILQ_INIT(&cs->pending);
	TAILQ_INIT(&cs->conns);
	if ((cs->settle = event_new(base, -1, 0, srv_conns_settle_cb,
	    cs)) == NULL ||
	    (cs->backoff = evtimer_new(base, srv_conns_backoff_cb,
	    cs)) == NULL) {
		srv_conns_free(cs);
		return -ENOMEM;
	}
	TAILQ_INSERT_TAIL(&srv_conns_all, cs, entry);
	evhttp_set_bevcb(http, srv_conn_bev_cb, cs);
	*ret = cs;
	return 0;
}

int
srv_conns_listen(struct srv_conns *cs, struct evhttp_bound_socket *bound)
{
	struct evconnlistener *lev = evhttp_bound_socket_get_listener(bound);

	if (lev == NULL)
		return -EINVAL;
	cs->lev = lev;
	cs->listening = true;
	evconnlistener_set_error_cb(lev, srv_conns_accept_error_cb);
	srv_conns_update_listener(cs);
	return 0;
}

void
srv_conns_unlisten(struct srv_conns *cs)
{
	if (cs != NULL)
		cs->lev = NULL;
}

int
srv_conns_count(const struct srv_conns *cs)
{
	return cs->nconns;
}

void
srv_conns_free(struct srv_conns *cs)
{
	struct srv_conn *c;

	if (cs == NULL)
		return;
	/* Connections still open outlive us: their finalizers free them. */
	while ((c = TAILQ_FIRST(&cs->pending)) != NULL) {
		TAILQ_REMOVE(&cs->pending, c, entry);
		c->cs = NULL;
	}
	while ((c = TAILQ_FIRST(&cs->conns)) != NULL) {
		TAILQ_REMOVE(&cs->conns, c, entry);
		c->cs = NULL;
	}
	if (cs->settle != NULL || cs->backoff != NULL) {
		struct srv_conns *it;

		TAILQ_FOREACH(it, &srv_conns_all, entry)
			if (it == cs)
				break;
		if (it != NULL)
			TAILQ_REMOVE(&srv_conns_all, cs, entry);
	}
	if (cs->settle != NULL)
		event_free(cs->settle);
	if (cs->backoff != NULL)
		event_free(cs->backoff);
	free(cs);
}
