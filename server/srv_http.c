/*
 * srv_http: evhttp handlers of remote protocol v1; see srv_http.h.
 *
 * Invariants: every request handed to srv_http_request_cb is answered
 * exactly once (directly, or later as a long-poll waiter; a waiter is on
 * the list until it is answered, and it is answered from one place,
 * srv_http_waiter_answer), unless its client closes the connection
 * first; a request is authenticated before its path, its query or its
 * body is looked at; a push is answered only after COMMIT and
 * long-polls are woken only after that answer was queued.  Nothing a client
 * sends is echoed into a reply without being made printable ASCII first.
 */
#include "autoconfig.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <jansson.h>

#include "auth.h"
#include "jobq.h"
#include "keys.h"
#include "log.h"
#include "util.h"
#include "names.h"
#include "record.h"
#include "srv_access.h"
#include "srv_conn.h"
#include "srv_db.h"
#include "srv_http.h"
#include "srv_keys.h"
#include "srv_presence.h"
#include "srv_push.h"
#include "wire.h"

#define SRV_HTTP_DUMP_FLAGS	(JSON_COMPACT | JSON_SORT_KEYS)
/* srv_conn bounds the client's header block; this leaves room for the
 * admission header it may add. */
#define SRV_HTTP_HEADERS_MAX	(SRV_CONN_HEADERS_MAX + 4096)
#define SRV_HTTP_TIMEOUT	120	/* idle/read/write, seconds */
#define SRV_HTTP_LIMIT_MAX	1000
#define SRV_HTTP_PUSH_TRIES	3	/* a push the store aborted (-EAGAIN) */
#define SRV_HTTP_CHANGES_LIMIT	100	/* default limit of /v1/changes */
#define SRV_HTTP_OPEN_SEEN_MAX	1024	/* open mode: keys remembered */
#define SRV_HTTP_STOP		(-ECANCELED) /* row callbacks: enough */
#define SRV_HTTP_SEGMENTS_MAX	6	/* more: no such endpoint */
#define SRV_HTTP_SEEN_MAX	4096	/* keys whose last request is kept */
#define SRV_HTTP_SEEN_FLUSH_S	5	/* last-seen writes, at most so often */

struct srv_waiter {
	TAILQ_ENTRY(srv_waiter)	 entry;
	struct srv_http		*h;
	struct evhttp_request	*req;
	struct event		*timer;
	struct event		*gone;		/* the client closing */
	int64_t			 since;
	int			 limit;
	/* A long-poll of GET /v1/presence: answered when the presence
	 * table's revision is no longer rev. */
	bool			 presence;
	int64_t			 rev;
	char			 key[KEYS_PUB_B64_LEN + 1];
	int64_t			 deadline_ms;	/* when the wait ends */
	bool			 expired;	/* its timer fired */
	struct srv_grant	*grant;		/* a reference, or NULL */
	struct srv_filter	*filter;	/* owned, or NULL */
};

TAILQ_HEAD(srv_waiters, srv_waiter);

struct srv_push_req;
TAILQ_HEAD(srv_push_reqs, srv_push_req);

struct srv_http {
	struct event_base		*base;
	struct evhttp			*http;
	struct evhttp_bound_socket	*bound;
	struct srv_db			*db;
	struct srv_keys			*keys;
	struct srv_http_config		 cfg;
	struct srv_conns		*conns;
	struct srv_waiters		 waiters;
	int				 nwaiters;
	int				 npresence;	/* presence waiters */
	struct srv_presence		*presence;
	struct jobq			*pool;
	struct srv_push_reqs		 pushes;	/* in arrival order */
	char				(*seen)[KEYS_PUB_B64_LEN + 1];
	size_t				 nseen;
	bool				 shutting_down;
	struct srv_revoked		*revoked;	/* srv_http_set_revoked */
	struct srv_retired		*retired;	/* srv_http_set_retired */
	struct srv_grants		*grants;	/* srv_http_set_grants */
	/* Last seen: noted per request, written by seen_ev's timer. */
	struct srv_seen			*lastseen;
	struct event			*seen_ev;
	bool				 seen_writing;	/* on a worker */
	const struct srv_key_seen	*seen_rows;
	size_t				 seen_n;
	int				 seen_r;
};

/* One request being handled. */
struct srv_req {
	struct srv_http		*h;
	struct evhttp_request	*req;
	enum evhttp_cmd_type	 cmd;
	const char		*method;
	const char		*target;	/* raw request-target */
	const char		*path;
	const char		*query;		/* NULL if none */
	const unsigned char	*body;
	size_t			 len;
	char			 key[KEYS_PUB_B64_LEN + 1];
};

/* A query parameter an endpoint takes. */
struct srv_param {
	const char	*name;
	int64_t		 min;
	int64_t		 max;		/* larger values become max */
	int64_t		 value;		/* in: default; out: value */
	bool		 set;
};

/* A request's path, split at '/' and each segment percent-decoded. */
struct srv_path {
	char	*seg[SRV_HTTP_SEGMENTS_MAX];
	size_t	 n;
};

/* A push being checked on the pool, then applied in arrival order. */
struct srv_push_req {
	TAILQ_ENTRY(srv_push_req) entry;
	struct srv_req		 rq;		/* valid while rq.req is */
	json_t			*root;
	json_t			*changes;
	struct srv_push_item	*items;
	size_t			 n;
	int			 code;		/* != 0: answer this error */
	char			 msg[256];
	bool			 checked;
	/* Stored (srv_http_push_store): */
	int64_t			 head;		/* the head before */
	json_t			*results;
	struct srv_push_stats	 st;
	int			 r;		/* < 0: nothing was applied */
	char			 dberr[256];
	/* Set with r == -EBADMSG: a stored body that is not an object. */
	char			 why[512];
};

static void srv_http_waiter_answer(struct srv_waiter *w);
static void srv_http_wake(struct srv_http *h);

static const char *
srv_http_method_name(enum evhttp_cmd_type cmd)
{
	switch (cmd) {
	case EVHTTP_REQ_GET:
		return "GET";
	case EVHTTP_REQ_POST:
		return "POST";
	case EVHTTP_REQ_HEAD:
		return "HEAD";
	case EVHTTP_REQ_PUT:
		return "PUT";
	case EVHTTP_REQ_DELETE:
		return "DELETE";
	case EVHTTP_REQ_OPTIONS:
		return "OPTIONS";
	case EVHTTP_REQ_TRACE:
		return "TRACE";
	case EVHTTP_REQ_CONNECT:
		return "CONNECT";
	case EVHTTP_REQ_PATCH:
		return "PATCH";
	}
	return NULL;
}

/* Make s printable ASCII in place, so it can go into JSON and logs. */
static void
srv_http_printable(char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s > 0x7e)
			*s = '?';
}

/*
 * Send what req's output buffer holds, with code.  The answer to a HEAD
 * is the GET answer's header, its Content-Length included, without the
 * content (RFC 9110 section 9.3.2): evhttp would send the content after
 * the header and a keep-alive client would read it as the next answer.
 */
static void
srv_http_send(struct evhttp_request *req, int code)
{
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char len[32];

	if (evhttp_request_get_command(req) == EVHTTP_REQ_HEAD) {
		snprintf(len, sizeof len, "%zu", evbuffer_get_length(out));
		evhttp_add_header(evhttp_request_get_output_headers(req),
		    "Content-Length", len);
		evbuffer_drain(out, evbuffer_get_length(out));
	}
	evhttp_send_reply(req, code, NULL, NULL);
}

/* Send obj (reference stolen) as the reply.  Always answers. */
static void
srv_http_reply(struct evhttp_request *req, int code, json_t *obj)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);
	struct evbuffer *out = evhttp_request_get_output_buffer(req);
	char *text = NULL;

	if (obj != NULL)
		text = json_dumps(obj, SRV_HTTP_DUMP_FLAGS);
	json_decref(obj);
	evhttp_add_header(hdr, "Content-Type", "application/json");
	evhttp_add_header(hdr, "Cache-Control", "no-store");
	if (text == NULL) {
		code = 500;
		evbuffer_add_printf(out, "{\"error\":\"out of memory\"}\n");
	} else {
		evbuffer_add(out, text, strlen(text));
		evbuffer_add(out, "\n", 1);
		free(text);
	}
	srv_http_send(req, code);
}

/* Send the JSON text in buf (drained) as a 200 reply. */
static void
srv_http_reply_buf(struct evhttp_request *req, struct evbuffer *buf)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(req);

	evhttp_add_header(hdr, "Content-Type", "application/json");
	evhttp_add_header(hdr, "Cache-Control", "no-store");
	evbuffer_add(buf, "\n", 1);
	evbuffer_add_buffer(evhttp_request_get_output_buffer(req), buf);
	srv_http_send(req, 200);
}

/*
 * Reply {"error": <printf>} with code, and the members of extra (an
 * object, stolen; may be NULL), and log the refusal.
 */
static void
srv_http_error_extra(struct srv_req *rq, int code, json_t *extra,
    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void
srv_http_error(struct srv_req *rq, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
srv_http_verror(struct srv_req *rq, int code, json_t *extra, const char *fmt,
    va_list ap)
{
	struct evkeyvalq *hdr = evhttp_request_get_output_headers(rq->req);
	char msg[512], *peer = NULL;
	ev_uint16_t port = 0;
	json_t *obj;

	vsnprintf(msg, sizeof msg, fmt, ap);
	srv_http_printable(msg);
	if (code == 401)
		evhttp_add_header(hdr, "WWW-Authenticate", AUTH_SCHEME);
	if (code == 429 || code == 503)
		evhttp_add_header(hdr, "Retry-After", "1");
	evhttp_connection_get_peer(evhttp_request_get_connection(rq->req),
	    &peer, &port);
	log_info("%s %.200s from %s:%u: %d %s", rq->method != NULL ?
	    rq->method : "?", rq->target != NULL ? rq->target : "?",
	    peer != NULL ? peer : "?", (unsigned int)port, code, msg);
	obj = json_pack("{s:s}", "error", msg);
	if (obj != NULL && extra != NULL)
		json_object_update(obj, extra);
	json_decref(extra);
	srv_http_reply(rq->req, code, obj);
}

static void
srv_http_error(struct srv_req *rq, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	srv_http_verror(rq, code, NULL, fmt, ap);
	va_end(ap);
}

static void
srv_http_error_extra(struct srv_req *rq, int code, json_t *extra,
    const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	srv_http_verror(rq, code, extra, fmt, ap);
	va_end(ap);
}

/* --- authentication --- */

/* Open mode: warn once for each key seen (up to a bound). */
static void
srv_http_open_seen(struct srv_http *h, const char *key)
{
	size_t i;

	for (i = 0; i < h->nseen; i++)
		if (strcmp(h->seen[i], key) == 0)
			return;
	if (h->seen == NULL && (h->seen = calloc(SRV_HTTP_OPEN_SEEN_MAX,
	    sizeof *h->seen)) == NULL)
		return;
	if (h->nseen == SRV_HTTP_OPEN_SEEN_MAX) {
		log_warn("open mode: request from unlisted key %s", key);
		return;
	}
	memcpy(h->seen[h->nseen++], key, KEYS_PUB_B64_LEN + 1);
	log_warn("open mode: accepting new key %s%s", key,
	    srv_keys_allowed(h->keys, key) ? " (listed in the keys file)" :
	    " (NOT in the keys file)");
}

/* srv_conn: may a request signed by key send a body? */
static bool
srv_http_admit_key(void *arg, const char *key)
{
	struct srv_http *h = arg;

	return h->cfg.open || srv_keys_allowed(h->keys, key);
}

/*
 * A revoked key's request: 401 saying so, when and why, with the same in
 * a "revoked" member for programs (docs/protocol.md).
 */
static void
srv_http_refuse_revoked(struct srv_req *rq, const struct srv_revocation *rv)
{
	char words[512];

	srv_revocation_words(rv, words, sizeof words);
	srv_http_error_extra(rq, 401, json_pack("{s:o}", "revoked",
	    srv_revocation_json(rv)), "key %s was %s: this server refuses it; "
	    "ask the server's admin", rq->key, words);
}

/*
 * A retired key's request (srv_rotate.h): 401 saying so and which key
 * follows it, with a "retired" member for programs; except a retry of its
 * rotation (POST /v1/keys/rotate), which it alone may send and which is
 * answered as the first was.  0 when rq may go on.
 */
static int
srv_http_refuse_retired(struct srv_req *rq)
{
	const struct srv_retirement *re;
	char words[256];

	if ((re = srv_retired_find(rq->h->retired, rq->key)) == NULL)
		return 0;
	if (rq->cmd == EVHTTP_REQ_POST && rq->path != NULL &&
	    strcmp(rq->path, "/v1/keys/rotate") == 0)
		return 0;
	srv_retirement_words(re, words, sizeof words);
	srv_http_error_extra(rq, 401, json_pack("{s:o}", "retired",
	    srv_retirement_json(re)), "key %s was %s: sign with the new key",
	    rq->key, words);
	return -EACCES;
}

/*
 * 0 if the request is signed by an authorized key that is not revoked;
 * else it is answered.  Another process may have revoked a key (SQLite):
 * asked of the store first, cheaply, so a revocation holds from the next
 * request on.
 */
static int
srv_http_authenticate(struct srv_req *rq)
{
	struct evkeyvalq *hdr = evhttp_request_get_input_headers(rq->req);
	struct srv_http *h = rq->h;
	const struct srv_revocation *rv;
	struct evkeyval *kv;
	const char *value = NULL, *reason = "";
	struct timeval now;
	int n = 0;

	TAILQ_FOREACH(kv, hdr, next) {
		if (strcasecmp(kv->key, "Authorization") == 0) {
			value = kv->value;
			n++;
		}
	}
	if (n > 1) {
		srv_http_error(rq, 401, "the request has more than one "
		    "Authorization header");
		return -EACCES;
	}
	if (auth_header_verify(value, rq->method, rq->target, rq->body,
	    rq->len, (int64_t)time(NULL), AUTH_MAX_SKEW, rq->key,
	    &reason) < 0) {
		srv_http_error(rq, 401, "%s", reason);
		return -EACCES;
	}
	if (srv_db_outside_change(h->db) && h->cfg.reload != NULL)
		h->cfg.reload(h->cfg.reload_arg);
	if ((rv = srv_revoked_find(h->revoked, rq->key)) != NULL) {
		srv_http_refuse_revoked(rq, rv);
		return -EACCES;
	}
	if (srv_http_refuse_retired(rq) < 0)
		return -EACCES;
	if (h->cfg.open)
		srv_http_open_seen(h, rq->key);
	else if (!srv_keys_allowed(h->keys, rq->key)) {
		srv_http_error(rq, 401, "key %s is not authorized on this "
		    "server", rq->key);
		return -EACCES;
	}
	if (event_base_gettimeofday_cached(h->base, &now) == 0)
		srv_seen_note(h->lastseen, rq->key, (int64_t)now.tv_sec * 1000 +
		    now.tv_usec / 1000);
	return 0;
}

/* --- query parameters --- */

/* A non-negative decimal integer of at most 18 digits.  0 or -EINVAL. */
static int
srv_http_parse_int(const char *s, int64_t *ret)
{
	int64_t v = 0;
	size_t n;

	n = strlen(s);
	if (n == 0 || n > 18)
		return -EINVAL;
	for (; *s != '\0'; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (*s - '0');
	}
	*ret = v;
	return 0;
}

static int srv_http_params_text(struct srv_req *rq, struct srv_param *p,
    size_t n, const char *tname, char **ret_text);

/*
 * Read the query into p[0..n): each parameter at most once, known, a
 * non-negative integer within bounds.  0, or -EINVAL after answering 400.
 */
static int
srv_http_params(struct srv_req *rq, struct srv_param *p, size_t n)
{
	return srv_http_params_text(rq, p, n, NULL, NULL);
}

/*
 * The same, and the parameter tname (if not NULL) taken as text: a copy
 * in *ret_text (the caller's to free; NULL when absent).  A failure
 * leaves nothing to free.
 */
static int
srv_http_params_text(struct srv_req *rq, struct srv_param *p, size_t n,
    const char *tname, char **ret_text)
{
	struct evkeyvalq q;
	struct evkeyval *kv;
	int64_t v;
	size_t i;
	int r = -EINVAL;

	TAILQ_INIT(&q);
	if (rq->query == NULL || *rq->query == '\0')
		return 0;
	if (evhttp_parse_query_str(rq->query, &q) < 0) {
		srv_http_error(rq, 400, "malformed query string");
		goto out;
	}
	TAILQ_FOREACH(kv, &q, next) {
		if (tname != NULL && strcmp(kv->key, tname) == 0) {
			if (*ret_text != NULL) {
				srv_http_error(rq, 400, "query parameter '%s' "
				    "is given twice", tname);
				goto out;
			}
			if ((*ret_text = strdup(kv->value)) == NULL) {
				srv_http_error(rq, 500, "out of memory");
				goto out;
			}
			continue;
		}
		for (i = 0; i < n; i++)
			if (strcmp(kv->key, p[i].name) == 0)
				break;
		if (i == n) {
			srv_http_error(rq, 400, "unknown query parameter "
			    "'%.64s'", kv->key);
			goto out;
		}
		if (p[i].set) {
			srv_http_error(rq, 400, "query parameter '%s' is "
			    "given twice", p[i].name);
			goto out;
		}
		if (srv_http_parse_int(kv->value, &v) < 0) {
			srv_http_error(rq, 400, "query parameter '%s' must be "
			    "a non-negative integer", p[i].name);
			goto out;
		}
		if (v < p[i].min) {
			srv_http_error(rq, 400, "query parameter '%s' must be "
			    "at least %" PRId64, p[i].name, p[i].min);
			goto out;
		}
		p[i].value = v > p[i].max ? p[i].max : v;
		p[i].set = true;
	}
	r = 0;
out:
	evhttp_clear_headers(&q);
	if (r < 0 && ret_text != NULL) {
		free(*ret_text);
		*ret_text = NULL;
	}
	return r;
}

/* --- GET /v1/info --- */

static void
srv_http_info(struct srv_req *rq)
{
	if (srv_http_params(rq, NULL, 0) < 0)
		return;
	srv_http_reply(rq->req, 200, json_pack("{s:i, s:s, s:I, s:I}",
	    "protocol", 1, "server", "ferry-server/" FERRY_VERSION,
	    "time", (json_int_t)time(NULL),
	    "head", (json_int_t)srv_db_head(rq->h->db)));
}

/* --- POST /v1/push --- */

/*
 * A push is parsed and its changes checked (signatures above all) on the
 * pool; then, on the loop and in arrival order, applied in one
 * transaction and answered.
 */

static void
srv_http_push_fail(struct srv_push_req *pr, int code, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void
srv_http_push_fail(struct srv_push_req *pr, int code, const char *fmt, ...)
{
	va_list ap;

	pr->code = code;
	va_start(ap, fmt);
	vsnprintf(pr->msg, sizeof pr->msg, fmt, ap);
	va_end(ap);
}

static void
srv_http_push_free(struct srv_push_req *pr)
{
	size_t i;

	if (pr == NULL)
		return;
	for (i = 0; i < pr->n; i++)
		srv_push_item_clear(&pr->items[i]);
	free(pr->items);
	json_decref(pr->root);
	json_decref(pr->results);
	free(pr);
}

/* Pool thread: parse the body; the number of changes to check. */
static size_t
srv_http_push_parse(void *arg)
{
	struct srv_push_req *pr = arg;
	json_error_t err;
	size_t n;

	/* A request as ferryd writes it is read without jansson's lexer;
	 * any other goes the general way (which says what is wrong). */
	if (wire_push_req_scan((const char *)pr->rq.body, pr->rq.len,
	    SRV_PUSH_MAX_CHANGES, &pr->changes) == 0) {
		if ((pr->root = json_pack("{s:o}", "changes", pr->changes)) ==
		    NULL) {
			srv_http_push_fail(pr, 500, "out of memory");
			return 0;
		}
	} else
		pr->root = json_loadb((const char *)pr->rq.body, pr->rq.len,
		    JSON_REJECT_DUPLICATES, &err);
	if (pr->root == NULL) {
		srv_http_push_fail(pr, 400, "malformed JSON: %s (line %d, "
		    "column %d)", err.text, err.line, err.column);
		return 0;
	}
	pr->changes = json_object_get(pr->root, "changes");
	if (!json_is_object(pr->root) || !json_is_array(pr->changes)) {
		srv_http_push_fail(pr, 400, "the body must be an object "
		    "{\"changes\":[...]}");
		return 0;
	}
	n = json_array_size(pr->changes);
	if (n > SRV_PUSH_MAX_CHANGES) {
		srv_http_push_fail(pr, 413, "too many changes in one push (%zu; "
		    "at most %d)", n, SRV_PUSH_MAX_CHANGES);
		return 0;
	}
	if (n > 0 && (pr->items = calloc(n, sizeof *pr->items)) == NULL) {
		srv_http_push_fail(pr, 500, "out of memory");
		return 0;
	}
	pr->n = n;
	return n;
}

/* Pool thread: check change i (its own slot only). */
static void
srv_http_push_check(void *arg, size_t i)
{
	struct srv_push_req *pr = arg;

	srv_push_check(pr->rq.key, json_array_get(pr->changes, i),
	    &pr->items[i]);
}

/*
 * Apply a checked push in one transaction on db: the loop's handle, or a
 * worker thread's (srv_db_worker).  A transaction the store aborted to
 * break a deadlock or a serialization failure (-EAGAIN: nothing of it was
 * applied) is run again, up to SRV_HTTP_PUSH_TRIES times in all, before
 * the device is told 503.  The outcome stays in pr, for
 * srv_http_push_answer on the loop.
 */
static void
srv_http_push_store(struct srv_push_req *pr, struct srv_db *db)
{
	int r, tries = 0;

	if (pr->code != 0 || pr->n == 0)
		return;
again:
	if ((r = srv_db_begin(db)) < 0 ||
	    (r = srv_push_apply(db, pr->rq.key, pr->items, pr->n,
	    &pr->results, &pr->st, pr->why, sizeof pr->why)) < 0 ||
	    (r = srv_db_commit(db)) < 0) {
		srv_db_rollback(db);
		snprintf(pr->dberr, sizeof pr->dberr, "%s", srv_db_errmsg(db));
		json_decref(pr->results);
		pr->results = NULL;
		if (r == -EAGAIN && ++tries < SRV_HTTP_PUSH_TRIES) {
			log_info("push from %s: the store aborted the batch, "
			    "running it again: %s", pr->rq.key, pr->dberr);
			goto again;
		}
		pr->r = r;
	}
}

/* Loop thread: answer a stored push, then wake the watchers. */
static void
srv_http_push_answer(struct srv_push_req *pr)
{
	struct srv_req *rq = &pr->rq;
	struct srv_http *h = rq->h;
	json_t *results;

	if (pr->code != 0) {
		srv_http_error(rq, pr->code, "%s", pr->msg);
		return;
	}
	if (pr->r == -EBADMSG) {
		log_err("push from %s failed, nothing applied: %s; the store "
		    "is damaged or was written by another program", rq->key,
		    pr->why);
		srv_http_error(rq, 500, "%s; nothing was applied", pr->why);
		return;
	}
	if (pr->r < 0) {
		log_err("push from %s failed, nothing applied: %s (%s)",
		    rq->key, strerror(-pr->r), pr->dberr);
		srv_http_error(rq, 503, "storage error, nothing was "
		    "applied: %s", strerror(-pr->r));
		return;
	}
	if (pr->n == 0 && (pr->results = json_array()) == NULL) {
		srv_http_error(rq, 500, "out of memory");
		return;
	}
	log_debug("push from %s: %zu changes: %zu applied, %zu duplicate, "
	    "%zu conflict, %zu rejected", rq->key, pr->n, pr->st.applied,
	    pr->st.duplicate, pr->st.conflict, pr->st.rejected);
	if (pr->st.rejected > 0)
		log_info("push from %s: %zu of %zu changes rejected", rq->key,
		    pr->st.rejected, pr->n);
	results = pr->results;
	pr->results = NULL;
	srv_http_reply(rq->req, 200, json_pack("{s:o}", "results", results));
	/* Reply first, then wake the watchers. */
	if (srv_db_head(h->db) != pr->head)
		srv_http_wake(h);
}

/* Worker thread: apply a push on this thread's own store handle. */
static void
srv_http_push_store_item(void *arg, size_t i)
{
	struct srv_push_req *pr = arg;
	struct srv_db *db;
	int r;

	if ((r = srv_db_worker(pr->rq.h->db, &db)) < 0) {
		snprintf(pr->dberr, sizeof pr->dberr, "no store handle");
		pr->r = r;
		return;
	}
	srv_http_push_store(pr, db);
}

/* Loop thread: a push was stored on a worker. */
static void
srv_http_push_stored(void *arg)
{
	struct srv_push_req *pr = arg;

	srv_http_push_answer(pr);
	srv_http_push_free(pr);
}

static void
srv_http_push_drop(void *arg)
{
	srv_http_push_free(arg);
}

/*
 * Loop thread: records signed by a revoked key are rejected, whoever
 * pushes them (the set is the loop's, so this runs here, just before the
 * batch is stored).
 */
static void
srv_http_push_revoked(struct srv_push_req *pr)
{
	const struct srv_revocation *rv;
	char words[512];
	size_t i;

	if (pr->code != 0 || srv_revoked_count(pr->rq.h->revoked) == 0)
		return;
	for (i = 0; i < pr->n; i++) {
		rv = srv_revoked_find(pr->rq.h->revoked, pr->items[i].signer);
		if (rv == NULL)
			continue;
		srv_revocation_words(rv, words, sizeof words);
		srv_push_item_revoked(&pr->items[i], words);
	}
}

/*
 * The grant of the key a request is signed by (NULL: it may do
 * everything).  A key a device rotated to holds the grant of the key it
 * follows (its chain of rotations, newest first) until the operator gives
 * it one of its own: a rotation never widens a device's access.
 */
static struct srv_grant *
srv_http_grant(const struct srv_http *h, const char *key)
{
	struct srv_grant *g;
	size_t hops;

	if (srv_grants_count(h->grants) == 0)
		return NULL;
	for (hops = 0; key != NULL && hops <= srv_retired_count(h->retired);
	    hops++) {
		if ((g = srv_grants_get(h->grants, key)) != NULL)
			return g;
		key = srv_retired_predecessor(h->retired, key);
	}
	return NULL;
}

/*
 * Loop thread: records for a collection the pushing key may not write
 * are rejected, each saying so; the others in the batch go on (a record
 * is the pushing key's own: srv_push_check refuses others).  The grants
 * are the loop's, as the revocations are; each check is a lookup in
 * memory, never a query.
 */
static void
srv_http_push_grants(struct srv_push_req *pr)
{
	struct srv_push_item *it;
	struct srv_grant *g;
	size_t i;

	if (pr->code != 0 || (g = srv_http_grant(pr->rq.h,
	    pr->rq.key)) == NULL)
		return;
	for (i = 0; i < pr->n; i++) {
		it = &pr->items[i];
		if (it->err == 0 && it->result == NULL &&
		    !srv_grant_can_write(g, it->f.collection))
			srv_push_item_forbidden(it, pr->rq.key,
			    srv_grant_can_read(g, it->f.collection));
	}
	srv_grant_unref(g);
}

/*
 * Loop thread: a push is checked; store those at the head, in order: on
 * the loop (SQLite), or handed to a worker thread when the store takes
 * batches there (PostgreSQL), so the loop never waits for the database.
 */
static void
srv_http_push_checked(void *arg)
{
	struct srv_push_req *pr = arg, *first;
	struct srv_http *h = pr->rq.h;

	pr->checked = true;
	while ((first = TAILQ_FIRST(&h->pushes)) != NULL && first->checked) {
		TAILQ_REMOVE(&h->pushes, first, entry);
		if (first->code == 0)
			srv_rotate_push_admit(h->retired, first->rq.key,
			    first->items, first->n);
		srv_http_push_revoked(first);
		srv_http_push_grants(first);
		first->head = srv_db_head(h->db);
		if (srv_db_has_workers(h->db) && first->code == 0 &&
		    first->n > 0) {
			if (jobq_submit(h->pool, NULL, srv_http_push_store_item,
			    srv_http_push_stored, srv_http_push_drop,
			    first) == 0)
				continue;
			srv_http_push_fail(first, 500, "out of memory");
		}
		srv_http_push_store(first, h->db);
		srv_http_push_answer(first);
		srv_http_push_free(first);
	}
}

/* The header field name of rq, if it came once; NULL if never. */
static int
srv_http_header_once(struct srv_req *rq, const char *name,
    const char **ret_value)
{
	struct evkeyval *kv;
	int n = 0;

	*ret_value = NULL;
	TAILQ_FOREACH(kv, evhttp_request_get_input_headers(rq->req), next)
		if (strcasecmp(kv->key, name) == 0) {
			*ret_value = kv->value;
			n++;
		}
	if (n > 1) {
		srv_http_error(rq, 400, "the request has more than one %s "
		    "header", name);
		return -EINVAL;
	}
	return 0;
}

/*
 * A request body is JSON: a Content-Type, if there is one, must name
 * application/json (in any case; a charset parameter, if any, must be
 * UTF-8, and other parameters are ignored); a body without one is taken
 * as JSON too, since it can be nothing else.  A Content-Encoding other
 * than identity is refused: the body is read as it came.  0, or -EINVAL
 * after answering (415, or 400 for a repeated header).
 */
static int
srv_http_check_json(struct srv_req *rq)
{
	const char *ct, *ce, *p, *name, *value;
	size_t n, nlen, vlen;

	if (srv_http_header_once(rq, "Content-Type", &ct) < 0 ||
	    srv_http_header_once(rq, "Content-Encoding", &ce) < 0)
		return -EINVAL;
	if (ce != NULL && *ce != '\0' && strcasecmp(ce, "identity") != 0) {
		srv_http_error(rq, 415, "Content-Encoding '%.64s' is not "
		    "supported: send the body as it is", ce);
		return -EINVAL;
	}
	if (ct == NULL)
		return 0;
	n = strcspn(ct, ";");
	while (n > 0 && (ct[n - 1] == ' ' || ct[n - 1] == '\t'))
		n--;
	if (n != strlen("application/json") ||
	    strncasecmp(ct, "application/json", n) != 0)
		goto refuse;
	for (p = ct + strcspn(ct, ";"); *p == ';'; ) {
		p += 1 + strspn(p + 1, " \t");
		name = p;
		nlen = strcspn(p, "=; \t");
		p += nlen;
		if (*p != '=') {
			p += strcspn(p, ";");
			continue;
		}
		value = ++p;
		if (*value == '"')
			value++;
		vlen = strcspn(value, "\"; \t");
		p += strcspn(p, ";");
		if (nlen == 7 && strncasecmp(name, "charset", 7) == 0 &&
		    (vlen != 5 || strncasecmp(value, "utf-8", 5) != 0))
			goto refuse;
	}
	return 0;
refuse:
	srv_http_error(rq, 415, "Content-Type '%.64s' is not supported: the "
	    "body must be application/json (UTF-8)", ct);
	return -EINVAL;
}

static void
srv_http_push(struct srv_req *rq)
{
	struct srv_http *h = rq->h;
	struct srv_push_req *pr;

	if (srv_http_params(rq, NULL, 0) < 0 || srv_http_check_json(rq) < 0)
		return;
	if (rq->len == 0) {
		srv_http_error(rq, 400, "empty body: POST /v1/push takes a JSON "
		    "object {\"changes\":[...]}");
		return;
	}
	if ((pr = calloc(1, sizeof *pr)) == NULL) {
		srv_http_error(rq, 500, "out of memory");
		return;
	}
	pr->rq = *rq;
	if (jobq_submit(h->pool, srv_http_push_parse, srv_http_push_check,
	    srv_http_push_checked, NULL, pr) < 0) {
		free(pr);
		srv_http_error(rq, 500, "out of memory");
		return;
	}
	TAILQ_INSERT_TAIL(&h->pushes, pr, entry);
}

/* --- POST /v1/keys/rotate --- */

/* A rotation statement being stored. */
struct srv_rotate_req {
	struct srv_req		 rq;		/* valid while rq.req is */
	struct srv_rotate_stmt	 st;
	int			 r;
	char			 dberr[256];
};

static void
srv_http_rotate_free(struct srv_rotate_req *rr)
{
	srv_rotate_stmt_clear(&rr->st);
	free(rr);
}

/* Loop thread: the statement is stored (or not): take it, answer. */
static void
srv_http_rotate_stored(void *arg)
{
	struct srv_rotate_req *rr = arg;
	struct srv_http *h = rr->rq.h;
	struct srv_keys *ks;
	struct srv_retired *rt;
	const struct srv_retirement *re;
	int r = rr->r;

	if (r == -EEXIST && (re = srv_retired_find(h->retired,
	    rr->st.ret.old_key)) != NULL &&
	    strcmp(re->new_key, rr->st.ret.new_key) == 0) {
		/* The same rotation, stored meanwhile (a retry). */
		srv_http_reply(rr->rq.req, 200, srv_rotate_answer(re));
		goto out;
	}
	if (r == -EEXIST) {
		srv_http_error(&rr->rq, 409, "key %s or %s is in a rotation "
		    "already", rr->st.ret.old_key, rr->st.ret.new_key);
		goto out;
	}
	if (r < 0) {
		log_err("cannot store the rotation of key %s: %s (%s)",
		    rr->st.ret.old_key, strerror(-r), rr->dberr);
		srv_http_error(&rr->rq, 503, "cannot store the rotation now: "
		    "try again");
		goto out;
	}
	if ((r = srv_rotate_apply(h->keys, h->retired, &rr->st, &ks,
	    &rt)) < 0) {
		/* Stored: the next reload of the keys takes it. */
		srv_http_error(&rr->rq, 500, "out of memory");
		goto out;
	}
	srv_http_set_keys(h, ks);
	srv_http_set_retired(h, rt);
	log_notice("key %s retired in favour of %s (after its seq %lld)",
	    rr->st.ret.old_key, rr->st.ret.new_key,
	    (long long)rr->st.ret.seq);
	srv_http_reply(rr->rq.req, 200, srv_rotate_answer(&rr->st.ret));
out:
	srv_http_rotate_free(rr);
}

/* Worker thread: store the statement on this thread's handle. */
static void
srv_http_rotate_item(void *arg, size_t i)
{
	struct srv_rotate_req *rr = arg;
	struct srv_db *db;

	(void)i;
	if ((rr->r = srv_db_worker(rr->rq.h->db, &db)) == 0 &&
	    (rr->r = srv_db_rotate(db, &rr->st.row)) < 0)
		snprintf(rr->dberr, sizeof rr->dberr, "%s", srv_db_errmsg(db));
}

static void
srv_http_rotate_drop(void *arg)
{
	srv_http_rotate_free(arg);
}

static void
srv_http_rotate(struct srv_req *rq)
{
	struct srv_http *h = rq->h;
	const struct srv_retirement *done = NULL;
	struct srv_rotate_req *rr;
	char why[512];
	int code = 0, r;

	if (srv_http_params(rq, NULL, 0) < 0 || srv_http_check_json(rq) < 0)
		return;
	if ((rr = calloc(1, sizeof *rr)) == NULL) {
		srv_http_error(rq, 500, "out of memory");
		return;
	}
	rr->rq = *rq;
	r = srv_rotate_check(rq->key, rq->body, rq->len, h->keys, h->revoked,
	    h->retired, util_now_ms(), &rr->st, &done, &code, why,
	    sizeof why);
	if (r != 0) {
		if (r > 0)
			srv_http_reply(rq->req, 200, srv_rotate_answer(done));
		else
			srv_http_error(rq, code, "%s", why);
		srv_http_rotate_free(rr);
		return;
	}
	/* Rare, but never a database round trip on the loop when the
	 * store has workers (PostgreSQL). */
	if (srv_db_has_workers(h->db)) {
		if (jobq_submit(h->pool, NULL, srv_http_rotate_item,
		    srv_http_rotate_stored, srv_http_rotate_drop, rr) < 0) {
			srv_http_error(rq, 500, "out of memory");
			srv_http_rotate_free(rr);
		}
		return;
	}
	if ((rr->r = srv_db_rotate(h->db, &rr->st.row)) < 0)
		snprintf(rr->dberr, sizeof rr->dberr, "%s",
		    srv_db_errmsg(h->db));
	srv_http_rotate_stored(rr);
}

/* --- GET /v1/changes --- */

struct srv_changes_ctx {
	struct evbuffer		*out;
	size_t			 bytes;
	int64_t			 last;
	int			 n;
	int			 rows;		/* read, sent or not */
	int			 skipped;	/* read and not sent */
	const struct srv_grant	*grant;		/* NULL: everything */
	const struct srv_filter	*filter;	/* NULL: everything */
};

/*
 * Append the body a put carried, from its signed record: the record's own
 * bytes when it has record_make's layout (an applied put's base is its
 * version - 1; *exact is set), else parsed and dumped.  0 or -errno.
 */
static int
srv_http_change_body(struct evbuffer *out, const struct srv_change_row *row,
    bool *exact)
{
	json_t *rec, *body;
	size_t off, blen;
	char *text;
	int r;

	*exact = false;
	if (record_body_span(row->record, row->record_len, row->version - 1,
	    row->collection, row->device, row->id, row->dseq, row->ts, &off,
	    &blen) == 0) {
		*exact = true;
		return evbuffer_add(out, row->record + off, blen) == 0 ? 0 :
		    -ENOMEM;
	}
	rec = json_loadb(row->record, row->record_len, JSON_REJECT_DUPLICATES,
	    NULL);
	body = json_object_get(rec, "body");
	if (!json_is_object(body)) {
		json_decref(rec);
		return -EIO;
	}
	text = json_dumps(body, SRV_HTTP_DUMP_FLAGS);
	r = text != NULL && evbuffer_add(out, text, strlen(text)) == 0 ? 0 :
	    -ENOMEM;
	free(text);
	json_decref(rec);
	return r;
}

/* Is a delete's record the text record_make writes for its fields? */
static bool
srv_http_delete_exact(const struct srv_change_row *row)
{
	char *text;
	size_t len;
	bool same;

	if (record_rebuild(row->version - 1, NULL, 0, row->collection,
	    row->device, row->id, row->dseq, row->ts, &text, &len) < 0)
		return false;
	same = len == row->record_len && memcmp(text, row->record, len) == 0;
	free(text);
	return same;
}

static int
srv_http_evbuffer_dump_cb(const char *buf, size_t len, void *arg)
{
	return evbuffer_add(arg, buf, len) == 0 ? 0 : -1;
}

/* Append the record's text as a JSON string (the signed bytes, escaped). */
static int
srv_http_change_record(struct evbuffer *out, const struct srv_change_row *row)
{
	json_t *str;
	int r;

	if ((str = json_stringn(row->record, row->record_len)) == NULL)
		return -EIO;	/* not UTF-8: never stored */
	r = evbuffer_add(out, "\"record\":", 9) == 0 &&
	    json_dump_callback(str, srv_http_evbuffer_dump_cb, out,
	    JSON_ENCODE_ANY | JSON_COMPACT) == 0 &&
	    evbuffer_add(out, ",", 1) == 0 ? 0 : -ENOMEM;
	json_decref(str);
	return r;
}

/*
 * One entry of /v1/changes, written as jansson would write it (compact,
 * keys sorted) without building it: the names, the device key and the
 * signature come from verified records and need no escaping.  Each entry
 * carries its record's signature and ts, so that a reader can check it:
 * it rebuilds the record from the entry (record_rebuild); an entry whose
 * record has another layout than record_make's also carries "record", the
 * signed text itself (docs/protocol.md).
 */
static int
srv_http_change_cb(const struct srv_change_row *row, void *arg)
{
	struct srv_changes_ctx *c = arg;
	bool deleted, exact;
	int r;

	if (c->n > 0 && c->bytes + row->record_len > SRV_HTTP_REPLY_BUDGET)
		return SRV_HTTP_STOP;
	c->rows++;
	/* Not the reader's: not a byte of it is sent, but the cursor moves
	 * past it, so the reader never asks for it again. */
	if (!srv_filter_wants(c->filter, row->collection, row->seq) ||
	    !srv_grant_can_read(c->grant, row->collection)) {
		c->last = row->seq;
		c->skipped++;
		return 0;
	}
	deleted = strcmp(row->op, "delete") == 0;
	if (evbuffer_add(c->out, c->n > 0 ? ",{" : "{", c->n > 0 ? 2 : 1) < 0)
		return -ENOMEM;
	if (!deleted) {
		if (evbuffer_add(c->out, "\"body\":", 7) < 0)
			return -ENOMEM;
		if ((r = srv_http_change_body(c->out, row, &exact)) < 0)
			return r;
		if (evbuffer_add(c->out, ",", 1) < 0)
			return -ENOMEM;
	} else
		exact = srv_http_delete_exact(row);
	if (evbuffer_add_printf(c->out, "\"change\":\"%s:%" PRId64 "\","
	    "\"collection\":\"%s\",\"deleted\":%s,\"id\":\"%s\",",
	    row->device, row->dseq, row->collection,
	    deleted ? "true" : "false", row->id) < 0)
		return -ENOMEM;
	if (!exact && (r = srv_http_change_record(c->out, row)) < 0)
		return r;
	if (evbuffer_add_printf(c->out, "\"seq\":%" PRId64 ",\"sig\":\"%s\","
	    "\"ts\":%" PRId64 ",\"version\":%" PRId64 "}", row->seq, row->sig,
	    row->ts, row->version) < 0)
		return -ENOMEM;
	/* What the page costs: the record (body included) once, or twice
	 * when it travels as itself too. */
	c->bytes += exact ? row->record_len : 2 * row->record_len;
	c->last = row->seq;
	c->n++;
	return 0;
}

/*
 * The reply to /v1/changes?since=since&limit=limit as it stands now, as
 * JSON text appended to out, with only the changes grant and filter let
 * through (NULL: all).  Rows that are not let through are read on, at
 * most max_scan of them (docs/protocol.md "Filtered pages"), so a page
 * holds up to limit changes the reader may have even when many others
 * lie between them: the log is read in chunks no larger than what is left
 * of either bound, so neither is ever passed, and a page that reaches
 * max_scan ends there, its last_seq at the last row read; the reader
 * pages on from it.  Returns the number of changes in it (>= 0), or
 * -errno (out then holds garbage); *ret_last gets last_seq, *ret_end
 * whether the log was read to its end.
 */
static int
srv_http_changes_text(struct srv_db *db, int64_t since, int limit,
    int max_scan, const struct srv_grant *grant,
    const struct srv_filter *filter, struct evbuffer *out, int64_t *ret_last,
    bool *ret_end)
{
	struct srv_changes_ctx c;
	int asked, r;
	bool end = false;

	memset(&c, 0, sizeof c);
	c.out = out;
	c.last = since;
	c.grant = grant;
	c.filter = filter;
	if (evbuffer_add(out, "{\"changes\":[", 12) < 0)
		return -ENOMEM;
	while (c.n < limit && c.skipped < max_scan) {
		/* Every row of the chunk may be sent, or every one not. */
		asked = limit - c.n;
		if (asked > max_scan - c.skipped)
			asked = max_scan - c.skipped;
		c.rows = 0;
		r = srv_db_changes(db, c.last, asked, srv_http_change_cb, &c);
		if (r == SRV_HTTP_STOP)
			break;
		if (r < 0)
			return r;
		if (c.rows < asked) {
			end = true;
			break;
		}
	}
	if (evbuffer_add_printf(out, "],\"head\":%" PRId64 ",\"last_seq\":%"
	    PRId64 "}", srv_db_head(db), c.last) < 0)
		return -ENOMEM;
	*ret_last = c.last;
	*ret_end = end;
	return c.n;
}

/* Take w off the list and stop its events; w itself is the caller's. */
static void
srv_http_waiter_unlink(struct srv_waiter *w)
{
	TAILQ_REMOVE(&w->h->waiters, w, entry);
	if (w->presence)
		w->h->npresence--;
	else
		w->h->nwaiters--;
	event_free(w->timer);
	if (w->gone != NULL)
		event_free(w->gone);
}

static void
srv_http_waiter_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_waiter *w = arg;

	w->expired = true;
	srv_http_waiter_answer(w);
}

/*
 * A waiting long-poll's socket is readable: evhttp reads nothing while a
 * request is in hand, so look.  End of file or an error: the client has
 * gone, and its connection is closed now rather than when the wait ends.
 * Bytes: a pipelined request; stop looking, the wait ends as it would.
 */
static void
srv_http_waiter_gone_cb(evutil_socket_t fd, short what, void *arg)
{
	struct srv_waiter *w = arg;
	struct evhttp_connection *evcon;
	char c;
	ssize_t n;

	n = recv(fd, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n > 0) {
		event_del(w->gone);
		return;
	}
	evcon = evhttp_request_get_connection(w->req);
	srv_http_waiter_unlink(w);
	log_debug("changes: long-poll since=%" PRId64 " dropped: its client "
	    "went away (%d waiting)", w->since, w->h->nwaiters);
	srv_grant_unref(w->grant);
	srv_filter_free(w->filter);
	free(w);
	/* Frees the request too. */
	evhttp_connection_free(evcon);
}

/*
 * A read of the store for a request or a waiter: run on a worker thread's
 * own store handle when the backend has them (srv_db_worker: the loop
 * never waits for a database server), else on the loop; answered on the
 * loop either way.  struct srv_read is the first member of each kind.
 */
struct srv_read {
	struct srv_http	*h;
	void		 (*run)(struct srv_read *, struct srv_db *);
	void		 (*answer)(struct srv_read *);
	void		 (*free)(struct srv_read *);
	int		 r;		/* >= 0, or -errno */
	char		 dberr[256];
};

/* Worker thread: read on this thread's own store handle. */
static void
srv_http_read_item(void *arg, size_t i)
{
	struct srv_read *rd = arg;
	struct srv_db *db;
	int r;

	if ((r = srv_db_worker(rd->h->db, &db)) < 0) {
		snprintf(rd->dberr, sizeof rd->dberr, "no store handle");
		rd->r = r;
		return;
	}
	rd->run(rd, db);
}

static void
srv_http_read_done(void *arg)
{
	struct srv_read *rd = arg;

	rd->answer(rd);
	rd->free(rd);
}

static void
srv_http_read_drop(void *arg)
{
	struct srv_read *rd = arg;

	rd->free(rd);
}

/* Read and answer rd (which this takes). */
static void
srv_http_read(struct srv_read *rd)
{
	struct srv_http *h = rd->h;

	/* Stopping: read on the loop, so waiters are answered in time. */
	if (srv_db_has_workers(h->db) && !h->shutting_down &&
	    jobq_submit(h->pool, NULL, srv_http_read_item, srv_http_read_done,
	    srv_http_read_drop, rd) == 0)
		return;
	rd->run(rd, h->db);
	srv_http_read_done(rd);
}

/* A read of the change log, for GET /v1/changes or a waiter. */
struct srv_changes_read {
	struct srv_read		 rd;		/* first */
	struct srv_req		 rq;		/* the request, or ... */
	struct srv_waiter	*w;		/* ... a waiter, unlinked */
	int64_t			 since;
	int			 limit;
	int			 wait;
	struct evbuffer		*buf;
	struct srv_grant	*grant;		/* a reference, or NULL */
	struct srv_filter	*filter;	/* owned, or NULL */
	int64_t			 last;		/* the page's last_seq */
	bool			 end;		/* read to the log's end */
};

static void srv_http_changes_answer(struct srv_read *rd);

static void
srv_http_changes_read_free(struct srv_read *rd)
{
	struct srv_changes_read *cr = (struct srv_changes_read *)rd;

	if (cr->buf != NULL)
		evbuffer_free(cr->buf);
	free(cr->w);
	srv_grant_unref(cr->grant);
	srv_filter_free(cr->filter);
	free(cr);
}

static void
srv_http_changes_run(struct srv_read *rd, struct srv_db *db)
{
	struct srv_changes_read *cr = (struct srv_changes_read *)rd;

	rd->r = cr->buf != NULL ? srv_http_changes_text(db, cr->since,
	    cr->limit, rd->h->cfg.max_scan, cr->grant, cr->filter, cr->buf,
	    &cr->last, &cr->end) : -ENOMEM;
	if (rd->r < 0)
		snprintf(rd->dberr, sizeof rd->dberr, "%s", srv_db_errmsg(db));
}

/* A new read of the change log; NULL when out of memory. */
static struct srv_changes_read *
srv_http_changes_read_new(struct srv_http *h)
{
	struct srv_changes_read *cr;

	if ((cr = calloc(1, sizeof *cr)) == NULL)
		return NULL;
	if ((cr->buf = evbuffer_new()) == NULL) {
		free(cr);
		return NULL;
	}
	cr->rd.h = h;
	cr->rd.run = srv_http_changes_run;
	cr->rd.answer = srv_http_changes_answer;
	cr->rd.free = srv_http_changes_read_free;
	return cr;
}

static void srv_http_presence_reply(struct srv_http *h,
    struct evhttp_request *req, const char *key);

/* Answer a waiting long-poll with what there is now, and forget it. */
static void
srv_http_waiter_answer(struct srv_waiter *w)
{
	struct srv_changes_read *cr;
	json_t *obj;

	srv_http_waiter_unlink(w);
	if (w->presence) {
		srv_http_presence_reply(w->h, w->req, w->key);
		free(w);
		return;
	}
	if ((cr = srv_http_changes_read_new(w->h)) == NULL) {
		obj = json_pack("{s:s}", "error", "out of memory");
		srv_http_reply(w->req, 500, obj);
		srv_grant_unref(w->grant);
		srv_filter_free(w->filter);
		free(w);
		return;
	}
	cr->w = w;
	cr->since = w->since;
	cr->limit = w->limit;
	cr->grant = w->grant;
	cr->filter = w->filter;
	w->grant = NULL;
	w->filter = NULL;
	srv_http_read(&cr->rd);
}

static int srv_http_park(struct srv_http *h, struct evhttp_request *req,
    int64_t since, int limit, int64_t deadline_ms, struct srv_changes_read *cr);

/*
 * A waiter's read is done: answer it, or, when it found nothing this
 * reader may have (changes of collections it may not read, or asked not
 * to have, woke it) and its time is not up, wait on from past them.
 */
static void
srv_http_waiter_reply(struct srv_changes_read *cr)
{
	struct srv_waiter *w = cr->w;
	json_t *obj;

	if (cr->rd.r == 0 && cr->end && !w->expired &&
	    !cr->rd.h->shutting_down && w->deadline_ms > util_now_ms() &&
	    srv_http_park(cr->rd.h, w->req, cr->last, w->limit,
	    w->deadline_ms, cr) == 0) {
		log_debug("changes: long-poll since=%" PRId64 " woken by "
		    "changes it may not have; waits on since=%" PRId64,
		    w->since, cr->last);
		/* Read on a worker: a commit may have come meanwhile (on the
		 * loop the head is where the read ended). */
		if (srv_db_head(cr->rd.h->db) > cr->last)
			srv_http_wake(cr->rd.h);
		return;
	}

	log_debug("changes: long-poll since=%" PRId64 " answered with %d "
	    "changes (%d waiting)", w->since, cr->rd.r, cr->rd.h->nwaiters);
	if (cr->rd.r < 0) {
		log_err("cannot read the change log: %s (%s)",
		    strerror(-cr->rd.r), cr->rd.dberr);
		evhttp_add_header(evhttp_request_get_output_headers(w->req),
		    "Retry-After", "1");
		obj = json_pack("{s:s}", "error", "storage error");
		srv_http_reply(w->req, 503, obj);
	} else {
		log_debug("changes: since=%" PRId64 ": %d changes sent, "
		    "last_seq %" PRId64, cr->since, cr->rd.r, cr->last);
		srv_http_reply_buf(w->req, cr->buf);
	}
}

/* Answer every long-poll that waits for something older than the head. */
static void
srv_http_wake(struct srv_http *h)
{
	struct srv_waiter *w, *next;

	for (w = TAILQ_FIRST(&h->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (!w->presence && w->since < srv_db_head(h->db))
			srv_http_waiter_answer(w);
	}
}

static void
srv_http_wake_cb(void *arg)
{
	srv_http_wake(arg);
}

/*
 * Park req until deadline_ms (Unix ms), watching for its client to go: a
 * new waiter on the list (counted by the caller), or NULL on ENOMEM.
 */
static struct srv_waiter *
srv_http_park_until(struct srv_http *h, struct evhttp_request *req,
    int64_t deadline_ms)
{
	struct srv_waiter *w;
	struct timeval tv;
	evutil_socket_t fd;
	int64_t left;

	if ((w = calloc(1, sizeof *w)) == NULL)
		return NULL;
	w->h = h;
	w->req = req;
	w->deadline_ms = deadline_ms;
	if ((w->timer = evtimer_new(h->base, srv_http_waiter_timeout_cb,
	    w)) == NULL) {
		free(w);
		return NULL;
	}
	left = deadline_ms - util_now_ms();
	if (left < 0)
		left = 0;
	tv.tv_sec = (time_t)(left / 1000);
	tv.tv_usec = (suseconds_t)(left % 1000) * 1000;
	if (evtimer_add(w->timer, &tv) < 0) {
		event_free(w->timer);
		free(w);
		return NULL;
	}
	fd = bufferevent_getfd(evhttp_connection_get_bufferevent(
	    evhttp_request_get_connection(req)));
	if (fd != -1 && ((w->gone = event_new(h->base, fd, EV_READ | EV_PERSIST,
	    srv_http_waiter_gone_cb, w)) == NULL ||
	    event_add(w->gone, NULL) < 0)) {
		if (w->gone != NULL)
			event_free(w->gone);
		event_free(w->timer);
		free(w);
		return NULL;
	}
	TAILQ_INSERT_TAIL(&h->waiters, w, entry);
	return w;
}

/*
 * Park req until a push commits something newer than since or the
 * deadline passes; the waiter takes cr's grant and filter.
 */
static int
srv_http_park(struct srv_http *h, struct evhttp_request *req, int64_t since,
    int limit, int64_t deadline_ms, struct srv_changes_read *cr)
{
	struct srv_waiter *w;

	if ((w = srv_http_park_until(h, req, deadline_ms)) == NULL)
		return -ENOMEM;
	w->since = since;
	w->limit = limit;
	h->nwaiters++;
	w->grant = cr->grant;
	w->filter = cr->filter;
	cr->grant = NULL;
	cr->filter = NULL;
	/* In whole seconds, rounded up, as the wait= it was asked for. */
	log_debug("changes: long-poll waiting since=%" PRId64 " for %lld s "
	    "(%d waiting)", since, (long long)((deadline_ms - util_now_ms() +
	    999) / 1000), h->nwaiters);
	return 0;
}

static void
srv_http_changes(struct srv_req *rq)
{
	struct srv_http *h = rq->h;
	struct srv_param p[] = {
		{ "since", 0, INT64_MAX, 0, false },
		{ "limit", 1, SRV_HTTP_LIMIT_MAX, SRV_HTTP_CHANGES_LIMIT,
		    false },
		{ "wait", 0, h->cfg.max_wait, 0, false },
	};
	struct srv_changes_read *cr;
	struct srv_filter *filter = NULL;
	char why[256], *text = NULL;
	int r;

	r = srv_http_params_text(rq, p, 3, "collections", &text);
	if (r == 0 && text != NULL &&
	    (r = srv_filter_parse(text, &filter, why, sizeof why)) < 0)
		srv_http_error(rq, r == -ENOMEM ? 500 : 400, "query parameter "
		    "'collections': %s", r == -ENOMEM ? "out of memory" : why);
	free(text);
	if (r < 0)
		return;
	if ((cr = srv_http_changes_read_new(h)) == NULL) {
		srv_filter_free(filter);
		srv_http_error(rq, 500, "out of memory");
		return;
	}
	cr->filter = filter;
	cr->grant = srv_http_grant(h, rq->key);
	cr->rq = *rq;
	cr->since = p[0].value;
	cr->limit = (int)p[1].value;
	cr->wait = (int)p[2].value;
	srv_http_read(&cr->rd);
}

/* The read for GET /v1/changes is done: answer, or wait for changes. */
static void
srv_http_changes_answer(struct srv_read *rd)
{
	struct srv_changes_read *cr = (struct srv_changes_read *)rd;
	struct srv_http *h = rd->h;
	struct srv_req *rq = &cr->rq;

	int64_t head;

	if (cr->w != NULL) {
		srv_http_waiter_reply(cr);
		return;
	}
	if (rd->r < 0) {
		log_err("cannot read the change log: %s (%s)",
		    strerror(-rd->r), rd->dberr);
		srv_http_error(rq, 503, "storage error");
		return;
	}
	/* Checked after the read: with several instances this one's head
	 * may lag, and a read that found nothing after since refreshed it
	 * from the database (srv_db.h). */
	if (cr->since > (head = srv_db_head(h->db))) {
		/* Pages after it would be empty until the log grew past it,
		 * and then skip what came in between: refuse it. */
		srv_http_error(rq, 409, "since %" PRId64 " is beyond this "
		    "server's head %" PRId64 ": the cursor comes from another "
		    "server, or from before this server's data was restored "
		    "from a backup; pull again from a since of at most the "
		    "head", cr->since, head);
		return;
	}
	/* Nothing for this reader up to the end of the log: wait, from
	 * past what it may not have.  Read up to the scan bound without
	 * reaching the end: answer at once, the reader pages on. */
	if (rd->r == 0 && cr->end && cr->wait > 0 && !h->shutting_down) {
		if (h->nwaiters >= h->cfg.max_waiters) {
			srv_http_error(rq, 429, "too many waiting requests "
			    "(%d); retry later", h->nwaiters);
			return;
		}
		if (srv_http_park(h, rq->req, cr->last, cr->limit,
		    util_now_ms() + cr->wait * 1000LL, cr) < 0) {
			srv_http_error(rq, 500, "out of memory");
			return;
		}
		/* Read on a worker: a commit may have come meanwhile. */
		if (srv_db_head(h->db) > cr->last)
			srv_http_wake(h);
		return;
	}
	log_debug("changes: since=%" PRId64 ": %d changes sent, last_seq %"
	    PRId64, cr->since, rd->r, cr->last);
	srv_http_reply_buf(rq->req, cr->buf);
}

/* --- GET /v1/docs/{collection}/{id}[/history] --- */

struct srv_history_ctx {
	json_t		*entries;
	size_t		 bytes;
	int64_t		 last;
	int		 n;
	int		 limit;
	bool		 more;
};

/* A read of one document or of its history. */
struct srv_doc_read {
	struct srv_read		 rd;		/* first */
	struct srv_req		 rq;
	char			*collection;	/* our own copies */
	char			*id;
	bool			 history;
	int64_t			 after;
	struct srv_doc		 doc;
	struct srv_history_ctx	 c;
};

/* One history entry; device_name is filled in on the loop (the keys are
 * the loop's). */
static int
srv_http_history_cb(const struct srv_change_row *row, void *arg)
{
	struct srv_history_ctx *c = arg;
	json_t *entry, *record;
	char change[KEYS_PUB_B64_LEN + 32];

	if (c->n == c->limit || (c->n > 0 &&
	    c->bytes + row->record_len > SRV_HTTP_REPLY_BUDGET)) {
		c->more = true;
		return SRV_HTTP_STOP;
	}
	/* The record as stored, byte for byte: verifiable offline. */
	if ((record = json_stringn(row->record, row->record_len)) == NULL)
		return -EIO;
	snprintf(change, sizeof change, "%s:%" PRId64, row->device, row->dseq);
	entry = json_pack("{s:I, s:s, s:s, s:n, s:I, s:s, s:o, s:s, s:I}",
	    "version", (json_int_t)row->version, "change", change,
	    "device", row->device, "device_name",
	    "ts", (json_int_t)row->ts, "op", row->op, "record", record,
	    "sig", row->sig, "seq", (json_int_t)row->seq);
	if (entry == NULL || json_array_append_new(c->entries, entry) != 0)
		return -ENOMEM;
	c->bytes += row->record_len;
	c->last = row->version;
	c->n++;
	return 0;
}

static void
srv_http_doc_read_free(struct srv_read *rd)
{
	struct srv_doc_read *dr = (struct srv_doc_read *)rd;

	free(dr->collection);
	free(dr->id);
	srv_doc_clear(&dr->doc);
	json_decref(dr->c.entries);
	free(dr);
}

static void
srv_http_doc_run(struct srv_read *rd, struct srv_db *db)
{
	struct srv_doc_read *dr = (struct srv_doc_read *)rd;

	if (!dr->history)
		rd->r = srv_db_doc_get(db, dr->collection, dr->id, &dr->doc);
	else if ((dr->c.entries = json_array()) == NULL)
		rd->r = -ENOMEM;
	else {
		rd->r = srv_db_history(db, dr->collection, dr->id, dr->after,
		    dr->c.limit + 1, srv_http_history_cb, &dr->c);
		if (rd->r == SRV_HTTP_STOP)
			rd->r = 0;
	}
	if (rd->r < 0)
		snprintf(rd->dberr, sizeof rd->dberr, "%s", srv_db_errmsg(db));
}

/* The document's reply. */
static void
srv_http_doc_reply(struct srv_doc_read *dr)
{
	struct srv_doc *d = &dr->doc;
	json_t *obj, *body;
	char why[512];
	int r;

	if (d->version == 0) {
		srv_http_error(&dr->rq, 404, "no such document");
		return;
	}
	obj = json_pack("{s:I, s:b}", "version", (json_int_t)d->version,
	    "deleted", d->deleted);
	if (obj != NULL && !d->deleted) {
		r = srv_push_stored_body(dr->collection, dr->id, d, &body, why,
		    sizeof why);
		if (r == -EBADMSG) {
			json_decref(obj);
			log_err("%s; the store is damaged or was written by "
			    "another program", why);
			srv_http_error(&dr->rq, 500, "%s", why);
			return;
		}
		if (r < 0 || json_object_set_new(obj, "body", body) != 0) {
			json_decref(obj);
			obj = NULL;
		}
	}
	/* NULL: out of memory, which it says. */
	srv_http_reply(dr->rq.req, 200, obj);
}

/* The history's reply, each entry with its device's name. */
static void
srv_http_history_reply(struct srv_doc_read *dr)
{
	struct srv_history_ctx *c = &dr->c;
	const struct srv_revocation *rv;
	const char *name, *device;
	json_t *obj, *entry;
	size_t i;

	if (c->n == 0 && dr->after == 0) {
		srv_http_error(&dr->rq, 404, "no such document");
		return;
	}
	json_array_foreach(c->entries, i, entry) {
		device = json_string_value(json_object_get(entry, "device"));
		name = srv_keys_name(dr->rd.h->keys, device);
		/* Signed before the revocation: verifiable, and marked. */
		rv = srv_revoked_find(dr->rd.h->revoked, device);
		if ((name != NULL && json_object_set_new(entry, "device_name",
		    json_string(name)) != 0) || (rv != NULL &&
		    json_object_set_new(entry, "revoked",
		    srv_revocation_json(rv)) != 0)) {
			srv_http_error(&dr->rq, 500, "out of memory");
			return;
		}
	}
	obj = json_pack("{s:O}", "entries", c->entries);
	if (obj != NULL && c->more &&
	    json_object_set_new(obj, "next", json_integer(c->last)) != 0) {
		json_decref(obj);
		obj = NULL;
	}
	srv_http_reply(dr->rq.req, 200, obj);
}

static void
srv_http_doc_answer(struct srv_read *rd)
{
	struct srv_doc_read *dr = (struct srv_doc_read *)rd;

	if (rd->r < 0) {
		log_err("cannot read %s%s/%s: %s (%s)", dr->history ?
		    "the history of " : "", dr->collection, dr->id,
		    strerror(-rd->r), rd->dberr);
		srv_http_error(&dr->rq, 503, "storage error");
	} else if (dr->history)
		srv_http_history_reply(dr);
	else
		srv_http_doc_reply(dr);
}

/* Read a document (after >= 0: its history after that version). */
static void
srv_http_doc_read(struct srv_req *rq, const char *collection, const char *id,
    int64_t after, int limit)
{
	struct srv_doc_read *dr;

	if ((dr = calloc(1, sizeof *dr)) == NULL ||
	    (dr->collection = strdup(collection)) == NULL ||
	    (dr->id = strdup(id)) == NULL) {
		if (dr != NULL)
			free(dr->collection);
		free(dr);
		srv_http_error(rq, 500, "out of memory");
		return;
	}
	dr->rd.h = rq->h;
	dr->rd.run = srv_http_doc_run;
	dr->rd.answer = srv_http_doc_answer;
	dr->rd.free = srv_http_doc_read_free;
	dr->rq = *rq;
	dr->history = after >= 0;
	dr->after = after;
	dr->c.limit = limit;
	srv_http_read(&dr->rd);
}

static void
srv_http_doc(struct srv_req *rq, const char *collection, const char *id)
{
	if (srv_http_params(rq, NULL, 0) < 0)
		return;
	srv_http_doc_read(rq, collection, id, -1, 0);
}

static void
srv_http_history(struct srv_req *rq, const char *collection, const char *id)
{
	struct srv_param p[] = {
		{ "after", 0, INT64_MAX, 0, false },
		{ "limit", 1, SRV_HTTP_LIMIT_MAX, SRV_HTTP_LIMIT_MAX, false },
	};

	if (srv_http_params(rq, p, 2) < 0)
		return;
	srv_http_doc_read(rq, collection, id, p[0].value, (int)p[1].value);
}

/*
 * Whether rq's key may read collection; if not, it is answered 403
 * (naming only what the request itself named).
 */
static bool
srv_http_may_read(struct srv_req *rq, const char *collection)
{
	struct srv_grant *g;
	bool ok;

	if ((g = srv_http_grant(rq->h, rq->key)) == NULL)
		return true;
	ok = srv_grant_can_read(g, collection);
	srv_grant_unref(g);
	if (!ok)
		srv_http_error(rq, 403, "forbidden: key %s may not read "
		    "collection '%s' on this server", rq->key, collection);
	return ok;
}

/*
 * GET /v1/docs/{collection}/{id}[/history]: check the method and the
 * names (decoded), and hand over (or answer the error).
 */
static void
srv_http_docs(struct srv_req *rq, const char *collection, const char *id,
    bool history)
{
	const char *why;

	if (rq->cmd != EVHTTP_REQ_GET && rq->cmd != EVHTTP_REQ_HEAD) {
		evhttp_add_header(evhttp_request_get_output_headers(rq->req),
		    "Allow", "GET, HEAD");
		srv_http_error(rq, 405, "method not allowed (use GET)");
		return;
	}
	if (names_check_collection(collection, &why) < 0) {
		srv_http_error(rq, 400, "collection %s", why);
		return;
	}
	if (names_check_id(id, &why) < 0) {
		srv_http_error(rq, 400, "id %s", why);
		return;
	}
	if (!srv_http_may_read(rq, collection))
		return;
	if (history)
		srv_http_history(rq, collection, id);
	else
		srv_http_doc(rq, collection, id);
}

/* --- dispatch --- */

static bool
srv_http_method_is(struct srv_req *rq, const char *allowed)
{
	bool ok;

	if (strcmp(allowed, "GET") == 0)
		ok = rq->cmd == EVHTTP_REQ_GET || rq->cmd == EVHTTP_REQ_HEAD;
	else
		ok = rq->cmd == EVHTTP_REQ_POST;
	if (!ok) {
		evhttp_add_header(evhttp_request_get_output_headers(rq->req),
		    "Allow", strcmp(allowed, "GET") == 0 ? "GET, HEAD" :
		    allowed);
		srv_http_error(rq, 405, "method not allowed (use %s)",
		    allowed);
	}
	return ok;
}

static void
srv_path_clear(struct srv_path *sp)
{
	size_t i;

	for (i = 0; i < sp->n; i++)
		free(sp->seg[i]);
	sp->n = 0;
}

/*
 * Split rq's path (as sent) at each '/' and percent-decode each segment
 * (RFC 3986: /v1/docs/c/%6E1 is /v1/docs/c/n1).  A segment with a '%' not
 * followed by two hex digits, or that decodes to a '/' or a NUL, is
 * refused with 400 naming it; a path of more segments than any endpoint
 * has gets 404.  0 and *ret filled in, or -EINVAL after answering.
 */
static int
srv_http_split_path(struct srv_req *rq, struct srv_path *ret)
{
	struct srv_path sp;
	const char *p, *end;
	char raw[256], *dec;
	size_t len, i, size;

	memset(&sp, 0, sizeof sp);
	if (rq->path == NULL || rq->path[0] != '/') {
		srv_http_error(rq, 404, "no such endpoint");
		return -EINVAL;
	}
	for (p = rq->path + 1; ; p = end + 1) {
		end = p + strcspn(p, "/");
		len = (size_t)(end - p);
		snprintf(raw, sizeof raw, "%.*s", len > 200 ? 200 : (int)len, p);
		if (sp.n == SRV_HTTP_SEGMENTS_MAX) {
			srv_http_error(rq, 404, "no such endpoint");
			goto fail;
		}
		for (i = 0; i < len; i++)
			if (p[i] == '%' && (i + 2 >= len ||
			    !isxdigit((unsigned char)p[i + 1]) ||
			    !isxdigit((unsigned char)p[i + 2]))) {
				srv_http_error(rq, 400, "path segment '%s' has "
				    "a '%%' not followed by two hex digits",
				    raw);
				goto fail;
			}
		if ((dec = strndup(p, len)) == NULL || (sp.seg[sp.n] =
		    evhttp_uridecode(dec, 0, &size)) == NULL) {
			free(dec);
			srv_http_error(rq, 500, "out of memory");
			goto fail;
		}
		free(dec);
		sp.n++;
		if (strlen(sp.seg[sp.n - 1]) != size ||
		    strchr(sp.seg[sp.n - 1], '/') != NULL) {
			srv_http_error(rq, 400, "path segment '%s' decodes to "
			    "a %s, which no name holds", raw,
			    strlen(sp.seg[sp.n - 1]) != size ? "NUL byte" :
			    "'/'");
			goto fail;
		}
		if (*end == '\0')
			break;
	}
	*ret = sp;
	return 0;
fail:
	srv_path_clear(&sp);
	return -EINVAL;
}

/* --- /v1/presence (srv_presence.h, docs/protocol.md "Presence") --- */

/* GET's answer for key, now. */
static void
srv_http_presence_reply(struct srv_http *h, struct evhttp_request *req,
    const char *key)
{
	struct evbuffer *buf;
	char *text;
	json_t *obj;

	buf = NULL;
	if ((text = srv_presence_reply(h->presence, key)) == NULL ||
	    (buf = evbuffer_new()) == NULL ||
	    evbuffer_add(buf, text, strlen(text)) < 0) {
		free(text);
		if (buf != NULL)
			evbuffer_free(buf);
		obj = json_pack("{s:s}", "error", "out of memory");
		srv_http_reply(req, 500, obj);
		return;
	}
	free(text);
	srv_http_reply_buf(req, buf);
	evbuffer_free(buf);
}

/* The table changed: answer the long-polls that saw an older one. */
static void
srv_http_presence_changed(void *arg)
{
	struct srv_http *h = arg;
	struct srv_waiter *w, *next;

	for (w = TAILQ_FIRST(&h->waiters); w != NULL; w = next) {
		next = TAILQ_NEXT(w, entry);
		if (w->presence && w->rev != srv_presence_rev(h->presence))
			srv_http_waiter_answer(w);
	}
}

/* GET /v1/presence?rev=R&wait=W: the other devices' entries, held up to
 * W seconds while the table is still at revision R. */
static void
srv_http_presence_get(struct srv_req *rq)
{
	struct srv_http *h = rq->h;
	struct srv_param p[] = {
		{ "rev", 0, INT64_MAX, 0, false },
		{ "wait", 0, h->cfg.max_wait, 0, false },
	};
	struct srv_waiter *w;

	if (srv_http_params(rq, p, 2) < 0)
		return;
	if (p[1].value == 0 || h->shutting_down ||
	    p[0].value != srv_presence_rev(h->presence)) {
		srv_http_presence_reply(h, rq->req, rq->key);
		return;
	}
	if (h->npresence >= h->cfg.max_waiters) {
		srv_http_error(rq, 429, "too many waiting presence requests "
		    "(%d); retry later", h->npresence);
		return;
	}
	if ((w = srv_http_park_until(h, rq->req, util_now_ms() +
	    p[1].value * 1000)) == NULL) {
		srv_http_error(rq, 500, "out of memory");
		return;
	}
	w->presence = true;
	w->rev = p[0].value;
	snprintf(w->key, sizeof w->key, "%s", rq->key);
	h->npresence++;
}

/* A list to share through the store (PostgreSQL), written on a worker. */
struct srv_presence_write {
	struct srv_read	 rd;		/* first */
	char		 key[KEYS_PUB_B64_LEN + 1];
	char		*list;
	int64_t		 expires_ms;
};

static void
srv_http_presence_write_run(struct srv_read *rd, struct srv_db *db)
{
	struct srv_presence_write *pw = (struct srv_presence_write *)rd;

	rd->r = srv_db_presence_put(db, pw->key, pw->list, pw->expires_ms,
	    util_now_ms());
	if (rd->r < 0)
		snprintf(rd->dberr, sizeof rd->dberr, "%s", srv_db_errmsg(db));
}

static void
srv_http_presence_write_done(struct srv_read *rd)
{
	if (rd->r < 0)
		log_warn("presence: cannot share a list with the other "
		    "instances: %s (%s)", strerror(-rd->r), rd->dberr);
}

static void
srv_http_presence_write_free(struct srv_read *rd)
{
	struct srv_presence_write *pw = (struct srv_presence_write *)rd;

	free(pw->list);
	free(pw);
}

/* POST /v1/presence: this device's whole list (empty: it left). */
static void
srv_http_presence_post(struct srv_req *rq)
{
	struct srv_http *h = rq->h;
	struct srv_presence_write *pw;
	char why[256], *list = NULL;
	int64_t expires;
	json_t *obj;
	int r;

	if (srv_http_check_json(rq) < 0)
		return;
	r = srv_presence_put(h->presence, rq->key, (const char *)rq->body,
	    rq->len, util_now_ms(), &list, &expires, why, sizeof why);
	if (r == -ENOSPC) {
		srv_http_error(rq, 503, "%s", why);
		return;
	}
	if (r < 0) {
		srv_http_error(rq, r == -ENOMEM ? 500 : 400, "%s", why);
		return;
	}
	if (srv_db_shares_presence(h->db) && !h->shutting_down &&
	    (pw = calloc(1, sizeof *pw)) != NULL) {
		pw->rd.h = h;
		pw->rd.run = srv_http_presence_write_run;
		pw->rd.answer = srv_http_presence_write_done;
		pw->rd.free = srv_http_presence_write_free;
		snprintf(pw->key, sizeof pw->key, "%s", rq->key);
		pw->list = list;
		pw->expires_ms = expires;
		list = NULL;
		srv_http_read(&pw->rd);
	}
	free(list);
	obj = json_pack("{s:I}", "rev", (json_int_t)srv_presence_rev(
	    h->presence));
	srv_http_reply(rq->req, 200, obj);
}

/* Another instance's lists, read on a worker, taken on the loop. */
struct srv_presence_load {
	struct srv_read	 rd;		/* first */
	char		*device;	/* NULL: all of them */
	json_t		*rows;		/* [[device, list, expires_ms]] */
};

static int
srv_http_presence_row(const char *device, const char *list,
    int64_t expires_ms, void *arg)
{
	return json_array_append_new(arg, json_pack("[s,s,I]", device, list,
	    (json_int_t)expires_ms)) < 0 ? -ENOMEM : 0;
}

static void
srv_http_presence_load_run(struct srv_read *rd, struct srv_db *db)
{
	struct srv_presence_load *pl = (struct srv_presence_load *)rd;

	rd->r = pl->rows == NULL ? -ENOMEM : srv_db_presence_load(db,
	    pl->device, srv_http_presence_row, pl->rows);
	if (rd->r < 0)
		snprintf(rd->dberr, sizeof rd->dberr, "%s", srv_db_errmsg(db));
}

static void
srv_http_presence_load_done(struct srv_read *rd)
{
	struct srv_presence_load *pl = (struct srv_presence_load *)rd;
	struct srv_presence *p = rd->h->presence;
	int64_t now = util_now_ms();
	json_t *row;
	size_t i;

	if (rd->r < 0) {
		log_warn("presence: cannot read the other instances' lists: "
		    "%s (%s)", strerror(-rd->r), rd->dberr);
		return;
	}
	if (pl->device == NULL)
		srv_presence_import_begin(p);
	else if (json_array_size(pl->rows) == 0)
		(void)srv_presence_import(p, pl->device, NULL, 0, now);
	json_array_foreach(pl->rows, i, row)
		(void)srv_presence_import(p,
		    json_string_value(json_array_get(row, 0)),
		    json_string_value(json_array_get(row, 1)),
		    json_integer_value(json_array_get(row, 2)), now);
	if (pl->device == NULL)
		srv_presence_import_end(p);
}

static void
srv_http_presence_load_free(struct srv_read *rd)
{
	struct srv_presence_load *pl = (struct srv_presence_load *)rd;

	json_decref(pl->rows);
	free(pl->device);
	free(pl);
}

/* A list changed on some instance (device NULL: any may have). */
static void
srv_http_presence_notified(const char *device, void *arg)
{
	struct srv_http *h = arg;
	struct srv_presence_load *pl;

	if (h->shutting_down || (pl = calloc(1, sizeof *pl)) == NULL)
		return;
	pl->rd.h = h;
	pl->rd.run = srv_http_presence_load_run;
	pl->rd.answer = srv_http_presence_load_done;
	pl->rd.free = srv_http_presence_load_free;
	pl->rows = json_array();
	if (device != NULL && (pl->device = strdup(device)) == NULL) {
		srv_http_presence_load_free(&pl->rd);
		return;
	}
	srv_http_read(&pl->rd);
}

/* Route a request by its decoded path. */
static void
srv_http_route(struct srv_req *rq, const struct srv_path *sp)
{
	const char *const *seg = (const char *const *)sp->seg;

	if (sp->n < 2 || strcmp(seg[0], "v1") != 0)
		srv_http_error(rq, 404, "no such endpoint");
	else if (sp->n == 2 && strcmp(seg[1], "info") == 0) {
		if (srv_http_method_is(rq, "GET"))
			srv_http_info(rq);
	} else if (sp->n == 2 && strcmp(seg[1], "push") == 0) {
		if (srv_http_method_is(rq, "POST"))
			srv_http_push(rq);
	} else if (sp->n == 2 && strcmp(seg[1], "changes") == 0) {
		if (srv_http_method_is(rq, "GET"))
			srv_http_changes(rq);
	} else if (sp->n == 2 && strcmp(seg[1], "presence") == 0) {
		if (rq->cmd == EVHTTP_REQ_POST)
			srv_http_presence_post(rq);
		else if (rq->cmd == EVHTTP_REQ_GET ||
		    rq->cmd == EVHTTP_REQ_HEAD)
			srv_http_presence_get(rq);
		else {
			evhttp_add_header(evhttp_request_get_output_headers(
			    rq->req), "Allow", "GET, HEAD, POST");
			srv_http_error(rq, 405, "method not allowed (use GET "
			    "or POST)");
		}
	} else if (sp->n == 3 && strcmp(seg[1], "keys") == 0 &&
	    strcmp(seg[2], "rotate") == 0) {
		if (srv_http_method_is(rq, "POST"))
			srv_http_rotate(rq);
	} else if (strcmp(seg[1], "docs") == 0 && (sp->n == 4 ||
	    (sp->n == 5 && strcmp(seg[4], "history") == 0)))
		srv_http_docs(rq, seg[2], seg[3], sp->n == 5);
	else
		srv_http_error(rq, 404, "no such endpoint");
}

static void
srv_http_handle(struct srv_http *h, struct evhttp_request *req)
{
	const struct evhttp_uri *uri;
	struct evbuffer *in;
	struct srv_path sp;
	struct srv_req rq;
	const char *refusal = NULL;
	int refused;

	/* First: the connection is busy until req is answered. */
	refused = srv_conn_request(h->conns, req, &refusal);
	memset(&rq, 0, sizeof rq);
	rq.h = h;
	rq.req = req;
	rq.cmd = evhttp_request_get_command(req);
	rq.method = srv_http_method_name(rq.cmd);
	rq.target = evhttp_request_get_uri(req);
	if (rq.method == NULL || rq.target == NULL ||
	    (uri = evhttp_request_get_evhttp_uri(req)) == NULL) {
		srv_http_error(&rq, 400, "malformed request");
		return;
	}
	if (refused != 0) {
		/* Refused before its body was read (srv_conn), which then
		 * closes the connection. */
		srv_http_error(&rq, refused, "%s", refusal);
		return;
	}
	rq.path = evhttp_uri_get_path(uri);
	rq.query = evhttp_uri_get_query(uri);
	in = evhttp_request_get_input_buffer(req);
	rq.len = evbuffer_get_length(in);
	if (rq.len > 0 && (rq.body = evbuffer_pullup(in, -1)) == NULL) {
		srv_http_error(&rq, 500, "out of memory");
		return;
	}
	if (srv_http_authenticate(&rq) < 0)
		return;
	log_debug("%s %.200s from %s", rq.method, rq.target, rq.key);
	if (srv_http_split_path(&rq, &sp) < 0)
		return;
	srv_http_route(&rq, &sp);
	srv_path_clear(&sp);
}

static void
srv_http_request_cb(struct evhttp_request *req, void *arg)
{
	srv_http_handle(arg, req);
}

/* --- last seen --- */

/* Worker thread: write the taken rows on this thread's store handle. */
static void
srv_http_seen_item(void *arg, size_t i)
{
	struct srv_http *h = arg;
	struct srv_db *db;

	if ((h->seen_r = srv_db_worker(h->db, &db)) == 0)
		h->seen_r = srv_db_seen_write(db, h->seen_rows, h->seen_n);
}

/* Loop thread: the rows are written, or go back to be tried again. */
static void
srv_http_seen_done(void *arg)
{
	struct srv_http *h = arg;

	h->seen_writing = false;
	if (h->seen_r < 0) {
		log_warn("cannot write when keys were last seen: %s; trying "
		    "again", strerror(-h->seen_r));
		srv_seen_untake(h->lastseen, h->seen_rows, h->seen_n);
	}
}

static void
srv_http_seen_drop(void *arg)
{
	struct srv_http *h = arg;

	h->seen_writing = false;
}

/*
 * Write the keys seen since the last time: on a worker when the store has
 * them (the loop never waits for PostgreSQL), else one short SQLite
 * transaction here.  sync: on the loop's handle whatever the store
 * (stopping).
 */
static void
srv_http_seen_flush(struct srv_http *h, bool sync)
{
	if (h->seen_writing || h->lastseen == NULL)
		return;
	if ((h->seen_n = srv_seen_take(h->lastseen, &h->seen_rows)) == 0)
		return;
	if (!sync && srv_db_has_workers(h->db)) {
		h->seen_writing = true;
		if (jobq_submit(h->pool, NULL, srv_http_seen_item,
		    srv_http_seen_done, srv_http_seen_drop, h) == 0)
			return;
		h->seen_writing = false;
		h->seen_r = -ENOMEM;
	} else
		h->seen_r = srv_db_seen_write(h->db, h->seen_rows, h->seen_n);
	srv_http_seen_done(h);
}

static void
srv_http_seen_cb(evutil_socket_t fd, short what, void *arg)
{
	srv_http_seen_flush(arg, false);
}

/* --- life cycle --- */

int
srv_http_new(struct event_base *base, struct srv_db *db,
    const struct srv_http_config *cfg, struct srv_http **ret)
{
	struct srv_conns_config cc;
	struct srv_http *h;
	int r;

	if ((h = calloc(1, sizeof *h)) == NULL)
		return -ENOMEM;
	h->base = base;
	h->db = db;
	h->cfg = *cfg;
	if (h->cfg.max_waiters <= 0)
		h->cfg.max_waiters = SRV_HTTP_MAX_WAITERS;
	if (h->cfg.max_wait <= 0)
		h->cfg.max_wait = SRV_HTTP_MAX_WAIT;
	if (h->cfg.max_scan <= 0)
		h->cfg.max_scan = SRV_HTTP_SCAN_MAX;
	TAILQ_INIT(&h->waiters);
	TAILQ_INIT(&h->pushes);
	if ((r = srv_keys_empty(&h->keys)) < 0 ||
	    (r = srv_seen_new(SRV_HTTP_SEEN_MAX, &h->lastseen)) < 0)
		goto fail;
	if (h->cfg.threads <= 0) {
		long ncpu = sysconf(_SC_NPROCESSORS_ONLN);

		h->cfg.threads = ncpu < 1 ? 1 : ncpu > JOBQ_MAX_THREADS ?
		    JOBQ_MAX_THREADS : (int)ncpu;
	}
	if ((r = jobq_new(base, h->cfg.threads, &h->pool)) < 0)
		goto fail;
	/* Other instances' pushes wake our long-polls too. */
	if ((r = srv_db_watch(db, base, srv_http_wake_cb, h)) < 0)
		goto fail;
	if ((r = srv_presence_new(base, srv_http_presence_changed, h,
	    &h->presence)) < 0 ||
	    (r = srv_db_watch_presence(db, srv_http_presence_notified, h)) < 0)
		goto fail;
	/* The lists other instances hold already. */
	if (srv_db_shares_presence(db))
		srv_http_presence_notified(NULL, h);
	if ((h->http = evhttp_new(base)) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	evhttp_set_max_body_size(h->http, SRV_HTTP_BODY_MAX);
	evhttp_set_max_headers_size(h->http, SRV_HTTP_HEADERS_MAX);
	evhttp_set_timeout(h->http, SRV_HTTP_TIMEOUT);
	/* Let every method through, so a wrong one gets our JSON 405. */
	evhttp_set_allowed_methods(h->http, EVHTTP_REQ_GET | EVHTTP_REQ_POST |
	    EVHTTP_REQ_HEAD | EVHTTP_REQ_PUT | EVHTTP_REQ_DELETE |
	    EVHTTP_REQ_OPTIONS | EVHTTP_REQ_TRACE | EVHTTP_REQ_CONNECT |
	    EVHTTP_REQ_PATCH);
	evhttp_set_gencb(h->http, srv_http_request_cb, h);
	memset(&cc, 0, sizeof cc);
	cc.max_connections = h->cfg.max_connections;
	cc.max_inflight = h->cfg.max_inflight > 0 ? h->cfg.max_inflight :
	    (size_t)SRV_CONN_INFLIGHT_MIB * 1024 * 1024;
	cc.body_max = SRV_HTTP_BODY_MAX;
	cc.admit_key = srv_http_admit_key;
	cc.arg = h;
	if ((r = srv_conns_new(base, h->http, &cc, &h->conns)) < 0)
		goto fail;
	{
		struct timeval tv = { SRV_HTTP_SEEN_FLUSH_S, 0 };

		if ((h->seen_ev = event_new(base, -1, EV_PERSIST,
		    srv_http_seen_cb, h)) == NULL ||
		    event_add(h->seen_ev, &tv) < 0) {
			r = -ENOMEM;
			goto fail;
		}
	}
	*ret = h;
	return 0;
fail:
	srv_http_free(h);
	return r;
}

int
srv_http_listen(struct srv_http *h, const char *addr, int port,
    int *ret_port)
{
	struct sockaddr_storage ss;
	socklen_t sslen = sizeof ss;
	evutil_socket_t fd;

	if (port < 0 || port > 65535)
		return -EINVAL;
	errno = 0;
	h->bound = evhttp_bind_socket_with_handle(h->http, addr,
	    (ev_uint16_t)port);
	if (h->bound == NULL)
		return errno != 0 ? -errno : -EADDRNOTAVAIL;
	if (srv_conns_listen(h->conns, h->bound) < 0)
		return -EINVAL;
	fd = evhttp_bound_socket_get_fd(h->bound);
	if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == -1)
		return -errno;
	if (ss.ss_family == AF_INET)
		*ret_port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
	else if (ss.ss_family == AF_INET6)
		*ret_port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
	else
		*ret_port = port;
	return 0;
}

void
srv_http_set_keys(struct srv_http *h, struct srv_keys *ks)
{
	srv_keys_free(h->keys);
	h->keys = ks;
}

void
srv_http_set_retired(struct srv_http *h, struct srv_retired *rt)
{
	srv_retired_free(h->retired);
	h->retired = rt;
}

void
srv_http_set_revoked(struct srv_http *h, struct srv_revoked *rv)
{
	srv_revoked_free(h->revoked);
	h->revoked = rv;
}

void
srv_http_set_grants(struct srv_http *h, struct srv_grants *gs)
{
	srv_grants_free(h->grants);
	h->grants = gs;
}

void
srv_http_shutdown(struct srv_http *h)
{
	h->shutting_down = true;
	if (h->bound != NULL) {
		srv_conns_unlisten(h->conns);
		evhttp_del_accept_socket(h->http, h->bound);
		h->bound = NULL;
	}
	while (!TAILQ_EMPTY(&h->waiters))
		srv_http_waiter_answer(TAILQ_FIRST(&h->waiters));
}

void
srv_http_free(struct srv_http *h)
{
	struct srv_push_req *pr;

	if (h == NULL)
		return;
	h->shutting_down = true;
	/* Pushes not yet applied are dropped unanswered: nothing of them
	 * was stored, and their connections close with evhttp. */
	jobq_free(h->pool);
	h->pool = NULL;
	/* What was seen since the last write is not lost at a clean stop. */
	if (h->db != NULL)
		srv_http_seen_flush(h, true);
	while ((pr = TAILQ_FIRST(&h->pushes)) != NULL) {
		TAILQ_REMOVE(&h->pushes, pr, entry);
		srv_http_push_free(pr);
	}
	while (!TAILQ_EMPTY(&h->waiters))
		srv_http_waiter_answer(TAILQ_FIRST(&h->waiters));
	srv_conns_unlisten(h->conns);
	if (h->http != NULL)
		evhttp_free(h->http);
	srv_conns_free(h->conns);
	srv_keys_free(h->keys);
	srv_revoked_free(h->revoked);
	srv_presence_free(h->presence);
	srv_retired_free(h->retired);
	srv_grants_free(h->grants);
	if (h->seen_ev != NULL)
		event_free(h->seen_ev);
	srv_seen_free(h->lastseen);
	free(h->seen);
	free(h);
}
