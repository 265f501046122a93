/*
 * libferry: the client side of ferryd's varlink socket (see ferry.h).
 *
 * A struct ferry owns one Unix stream socket, an output buffer of queued
 * calls and an input buffer of bytes read but not yet handed out.  Messages
 * are JSON objects each followed by one NUL byte; the input buffer is
 * scanned for NULs and grows as needed, but never holds more than
 * FERRY_MSG_MAX bytes of one unterminated message: a larger reply is a
 * protocol error that ends the connection.  Calls are built and replies
 * parsed with jansson (JSON_REJECT_DUPLICATES), so nothing here escapes or
 * scans JSON by hand.
 *
 * Invariants: in_off <= in_tail <= in_len <= in_size, where in_tail is just
 * past the last NUL read (every complete message lies in [in_off, in_tail));
 * out_off <= out_len; "outstanding" counts calls whose final reply has not
 * been read yet, so a blocking call never picks up a pipelined call's reply.
 * The descriptor stays blocking; non-blocking reads and writes use
 * MSG_DONTWAIT per call and every send uses MSG_NOSIGNAL, so an app never
 * gets SIGPIPE from us.  Once the connection fails (EOF, I/O error, a reply
 * too large or malformed) it is dead and every later call fails at once.
 * A send that finds ferryd gone (EPIPE) ends only the sending side
 * (wclosed): replies ferryd made before it went are still read, then EOF
 * makes the connection dead; ferry_recv still hands out complete replies
 * that were read before the EOF.
 *
 * This is not a server: the daemon side of the protocol lives in vl_server.
 * Nothing here logs, exits, or touches signal dispositions.
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "ferry.h"
#include "sockpath.h"

#define FERRY_MSG_MAX		(8u * 1024 * 1024)	/* bytes, without the NUL */
#define FERRY_READ_MIN		(64u * 1024)		/* free space per recv */
#define FERRY_OUT_FLUSH		(256u * 1024)		/* ferry_send flushes past this */
#define FERRY_ERRMSG_MAX	1024

enum ferry_mode {
	FERRY_MODE_CALLS = 0,	/* ordinary calls, pipelining allowed */
	FERRY_MODE_WATCH,	/* a Watch stream is running */
	FERRY_MODE_WATCH_DONE,	/* the Watch stream ended with an error */
};

struct ferry {
	int		 fd;
	char		*path;		/* socket path, for messages */
	enum ferry_mode	 mode;
	int		 dead;		/* -errno once the connection failed */
	int		 wclosed;	/* ferryd stopped taking calls; its
					 * replies may still be read */
	size_t		 outstanding;	/* calls still waiting for their last reply */

	char		*in;
	size_t		 in_size;
	size_t		 in_off;
	size_t		 in_tail;
	size_t		 in_len;

	char		*out;
	size_t		 out_size;
	size_t		 out_off;
	size_t		 out_len;

	char		 errmsg[FERRY_ERRMSG_MAX];
	char		*errname;
	char		*errparams;
};

/*
 * Why the last ferry_connect in this thread failed: there is no struct
 * ferry to carry the message then, so ferry_errmsg(NULL) returns this.
 */
static _Thread_local char connect_errmsg[FERRY_ERRMSG_MAX];

static void
clear_error(ferry *f)
{
	f->errmsg[0] = '\0';
	free(f->errname);
	f->errname = NULL;
	free(f->errparams);
	f->errparams = NULL;
}

/* Record a message for an error this library detected; returns err. */
static int __attribute__((format(printf, 3, 4)))
set_error(ferry *f, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
	va_end(ap);
	return err;
}

/* Like set_error, and the connection is unusable from now on. */
static int __attribute__((format(printf, 3, 4)))
conn_fail(ferry *f, int err, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f->errmsg, sizeof(f->errmsg), fmt, ap);
	va_end(ap);
	f->dead = err;
	return err;
}

/* Fail at once if the connection died earlier. */
static int
check_usable(ferry *f)
{
	if (f->dead != 0)
		return set_error(f, f->dead,
		    "connection to %s is closed after an earlier error",
		    f->path);
	return 0;
}

static int
oom(ferry *f)
{
	return set_error(f, -ENOMEM, "out of memory");
}

/* Parse JSON text an app handed us; it must be an object. */
static int
parse_object_arg(ferry *f, const char *what, const char *text,
    json_t **ret)
{
	json_error_t jerr;
	json_t *v;

	if (text == NULL)
		return set_error(f, -EINVAL, "%s is missing", what);
	v = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
	if (v == NULL)
		return set_error(f, -EINVAL,
		    "%s is not valid JSON: line %d column %d: %s",
		    what, jerr.line, jerr.column, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return set_error(f, -EINVAL, "%s is not a JSON object", what);
	}
	*ret = v;
	return 0;
}

/* Dump v as compact JSON text, malloc'd. */
static int
dump_compact(ferry *f, const json_t *v, char **ret)
{
	char *s;

	s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (s == NULL)
		return oom(f);
	*ret = s;
	return 0;
}

/*
 * Input.
 */

/*
 * Read what the socket has into the input buffer.  flags is 0 (block until
 * something arrives) or MSG_DONTWAIT.  Returns the number of bytes read, 0
 * if a non-blocking read found nothing, or -errno (the connection is then
 * dead).
 */
static int
conn_fill(ferry *f, int flags)
{
	ssize_t n;
	size_t want;
	char *p, *nul;

	if (f->in_off > 0) {
		memmove(f->in, f->in + f->in_off, f->in_len - f->in_off);
		f->in_len -= f->in_off;
		f->in_tail -= f->in_off;
		f->in_off = 0;
	}
	if (f->in_size - f->in_len < FERRY_READ_MIN) {
		want = f->in_size * 2;
		if (want < f->in_len + FERRY_READ_MIN)
			want = f->in_len + FERRY_READ_MIN;
		p = realloc(f->in, want);
		if (p == NULL)
			return conn_fail(f, -ENOMEM, "out of memory");
		f->in = p;
		f->in_size = want;
	}
	do
		n = recv(f->fd, f->in + f->in_len, f->in_size - f->in_len,
		    flags);
	while (n < 0 && errno == EINTR);
	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			return 0;
		if (errno == ECONNRESET)
			return conn_fail(f, -ECONNRESET,
			    "ferryd closed the connection");
		return conn_fail(f, -errno, "cannot read from %s: %s",
		    f->path, strerror(errno));
	}
	if (n == 0)
		return conn_fail(f, -ECONNRESET, "ferryd closed the connection");
	nul = memrchr(f->in + f->in_len, '\0', (size_t)n);
	f->in_len += (size_t)n;
	if (nul != NULL)
		f->in_tail = (size_t)(nul - f->in) + 1;
	if (f->in_len - f->in_tail > FERRY_MSG_MAX)
		return conn_fail(f, -EMSGSIZE,
		    "reply from ferryd is larger than 8 MiB");
	return n > INT_MAX ? INT_MAX : (int)n;
}

/*
 * Take the next complete message out of the input buffer, without reading.
 * Returns 1 and *ret (a JSON object, caller's reference), 0 if no complete
 * message is buffered, or -EPROTO for a malformed one (connection dead).
 */
static int
conn_next(ferry *f, json_t **ret)
{
	json_error_t jerr;
	json_t *v;
	char *start, *nul;
	size_t len;

	if (f->in_tail <= f->in_off)
		return 0;
	start = f->in + f->in_off;
	nul = memchr(start, '\0', f->in_tail - f->in_off);
	if (nul == NULL)	/* cannot happen: in_tail follows a NUL */
		return conn_fail(f, -EPROTO, "input buffer out of step");
	len = (size_t)(nul - start);
	v = json_loadb(start, len, JSON_REJECT_DUPLICATES, &jerr);
	f->in_off += len + 1;
	if (f->in_off == f->in_len)
		f->in_off = f->in_tail = f->in_len = 0;
	if (v == NULL)
		return conn_fail(f, -EPROTO,
		    "malformed reply from ferryd: line %d column %d: %s",
		    jerr.line, jerr.column, jerr.text);
	if (!json_is_object(v)) {
		json_decref(v);
		return conn_fail(f, -EPROTO,
		    "malformed reply from ferryd: not a JSON object");
	}
	*ret = v;
	return 1;
}

/*
 * Output.
 */

/*
 * Make room for len more bytes at the end of the output buffer; returns
 * where they go (the caller fills them and adds len to out_len), or NULL.
 */
static char *
out_reserve(ferry *f, size_t len)
{
	size_t want;
	char *p;

	if (f->out_off > 0 && f->out_off == f->out_len)
		f->out_off = f->out_len = 0;
	if (f->out_size - f->out_len < len) {
		want = f->out_size > 0 ? f->out_size : 4096;
		while (want - f->out_len < len)
			want *= 2;
		p = realloc(f->out, want);
		if (p == NULL) {
			oom(f);
			return NULL;
		}
		f->out = p;
		f->out_size = want;
	}
	return f->out + f->out_len;
}

/* Append one message (JSON text plus NUL) to the output buffer. */
static int
out_append(ferry *f, const char *text, size_t len)
{
	char *p;

	if ((p = out_reserve(f, len + 1)) == NULL)
		return -ENOMEM;
	memcpy(p, text, len);
	p[len] = '\0';
	f->out_len += len + 1;
	return 0;
}

/*
 * Write the output buffer out, blocking until it is all sent.  While the
 * socket is full, replies that arrive are read into the input buffer, so a
 * long pipeline cannot deadlock against a daemon that stops reading until
 * its replies are taken.
 */
static int
conn_flush(ferry *f)
{
	struct pollfd pfd;
	ssize_t n;
	int r;

	while (f->out_off < f->out_len) {
		n = send(f->fd, f->out + f->out_off, f->out_len - f->out_off,
		    MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n >= 0) {
			f->out_off += (size_t)n;
			continue;
		}
		if (errno == EINTR)
			continue;
		if (errno == EPIPE || errno == ECONNRESET) {
			/* What ferryd answered before it went is still to
			 * be read: only sending is over. */
			f->wclosed = 1;
			f->out_off = f->out_len = 0;
			return set_error(f, -ECONNRESET,
			    "ferryd closed the connection");
		}
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return conn_fail(f, -errno, "cannot write to %s: %s",
			    f->path, strerror(errno));
		pfd.fd = f->fd;
		pfd.events = POLLOUT | POLLIN;
		pfd.revents = 0;
		if (poll(&pfd, 1, -1) < 0) {
			if (errno == EINTR)
				continue;
			return conn_fail(f, -errno, "poll: %s",
			    strerror(errno));
		}
		if (pfd.revents & (POLLIN | POLLHUP)) {
			r = conn_fill(f, MSG_DONTWAIT);
			if (r < 0)
				return r;
		}
	}
	f->out_off = f->out_len = 0;
	return 0;
}

/*
 * Queue {"method":method,"parameters":params[,"more":true]}.  Takes a
 * reference to params (NULL: {}).
 */
static int
queue_call(ferry *f, const char *method, json_t *params, int more)
{
	json_t *msg = NULL;
	char *text = NULL;
	size_t len;
	int r;

	if (f->wclosed) {
		json_decref(params);
		return set_error(f, -ECONNRESET,
		    "ferryd closed the connection");
	}
	if (method == NULL || *method == '\0') {
		json_decref(params);
		return set_error(f, -EINVAL, "method name is missing");
	}
	if (params == NULL && (params = json_object()) == NULL)
		return oom(f);
	msg = json_object();
	if (msg == NULL) {
		json_decref(params);
		r = oom(f);
		goto out;
	}
	if (json_object_set_new(msg, "parameters", params) < 0) {
		r = oom(f);
		goto out;
	}
	if (json_object_set_new(msg, "method", json_string(method)) < 0) {
		r = set_error(f, -EINVAL, "method name is not valid UTF-8");
		goto out;
	}
	if (more && json_object_set_new(msg, "more", json_true()) < 0) {
		r = oom(f);
		goto out;
	}
	text = json_dumps(msg, JSON_COMPACT);
	if (text == NULL) {
		r = oom(f);
		goto out;
	}
	len = strlen(text);
	if (len > FERRY_MSG_MAX) {
		r = set_error(f, -EMSGSIZE,
		    "call to %s is larger than the 8 MiB message limit",
		    method);
		goto out;
	}
	r = out_append(f, text, len);
	if (r < 0)
		goto out;
	f->outstanding++;
out:
	free(text);
	json_decref(msg);
	return r;
}

/*
 * The pipelining path: params_json is spliced into the call as it is, not
 * parsed and re-encoded (that doubled a pipelining client's CPU per call).
 * The daemon parses it anyway and answers InvalidParameter, mapped to
 * -EINVAL, if it is not one JSON object.  Method names are checked to be
 * plain varlink names so they need no escaping.
 */
static int
queue_call_text(ferry *f, const char *method, const char *params_json)
{
	static const char head[] = "{\"method\":\"";
	static const char mid[] = "\",\"parameters\":";
	const char *p;
	size_t mlen, plen, len;
	char *text;

	if (f->wclosed)
		return set_error(f, -ECONNRESET,
		    "ferryd closed the connection");
	if (method == NULL || *method == '\0')
		return set_error(f, -EINVAL, "method name is missing");
	for (p = method; *p != '\0'; p++)
		if (!(*p == '.' || *p == '_' || (*p >= '0' && *p <= '9') ||
		    (*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z')))
			return set_error(f, -EINVAL,
			    "method name '%s' is not a varlink name", method);
	if (params_json == NULL)
		params_json = "{}";
	for (p = params_json; *p == ' ' || *p == '\t' || *p == '\n' ||
	    *p == '\r'; p++)
		;
	if (*p != '{')
		return set_error(f, -EINVAL,
		    "parameters must be a JSON object");
	mlen = strlen(method);
	plen = strlen(params_json);
	len = sizeof head - 1 + mlen + sizeof mid - 1 + plen + 1;
	if (len > FERRY_MSG_MAX)
		return set_error(f, -EMSGSIZE,
		    "call to %s is larger than the 8 MiB message limit",
		    method);
	/* Built in place at the end of the output buffer. */
	if ((text = out_reserve(f, len + 1)) == NULL)
		return -ENOMEM;
	memcpy(text, head, sizeof head - 1);
	memcpy(text + sizeof head - 1, method, mlen);
	memcpy(text + sizeof head - 1 + mlen, mid, sizeof mid - 1);
	memcpy(text + sizeof head - 1 + mlen + sizeof mid - 1, params_json,
	    plen);
	text[len - 1] = '}';
	text[len] = '\0';
	f->out_len += len + 1;
	f->outstanding++;
	return 0;
}

/*
 * Replies.
 */

/* A string member of o, or NULL. */
static const char *
member_str(const json_t *o, const char *key)
{
	return json_string_value(json_object_get(o, key));
}

static int
map_error(const char *name)
{
	if (strcmp(name, "io.ferry.NotFound") == 0)
		return -ENOENT;
	if (strcmp(name, "io.ferry.RevMismatch") == 0)
		return -ESTALE;
	if (strcmp(name, "io.ferry.InvalidArgument") == 0 ||
	    strcmp(name, "org.varlink.service.InvalidParameter") == 0)
		return -EINVAL;
	if (strcmp(name, "io.ferry.Offline") == 0)
		return -ENETDOWN;
	if (strcmp(name, "io.ferry.LimitExceeded") == 0)
		return -EDQUOT;
	return -EPROTO;
}

/*
 * Turn an error reply into errname, errparams, a sentence in errmsg, and
 * the mapped -errno, which it returns.
 */
static int
take_error_reply(ferry *f, const char *name, json_t *params)
{
	const json_t *cur;
	const char *a, *b, *c;
	char *text = NULL;

	f->errname = strdup(name);
	if (f->errname == NULL)
		return oom(f);
	if (params == NULL)
		params = json_object();	/* an empty one, for errparams */
	else
		json_incref(params);
	if (params == NULL)
		return oom(f);
	f->errparams = json_dumps(params, JSON_COMPACT);
	if (f->errparams == NULL) {
		json_decref(params);
		return oom(f);
	}

	cur = json_object_get(params, "current");
	if (strcmp(name, "io.ferry.RevMismatch") == 0 && json_is_object(cur) &&
	    (a = member_str(cur, "collection")) != NULL &&
	    (b = member_str(cur, "id")) != NULL)
		snprintf(f->errmsg, sizeof(f->errmsg),
		    "%s: document %s/%s is at rev %" JSON_INTEGER_FORMAT "%s",
		    name, a, b, json_integer_value(json_object_get(cur, "rev")),
		    json_is_true(json_object_get(cur, "deleted")) ?
		    " (deleted)" : "");
	else if (strcmp(name, "io.ferry.NotFound") == 0 &&
	    (a = member_str(params, "collection")) != NULL &&
	    (b = member_str(params, "id")) != NULL)
		snprintf(f->errmsg, sizeof(f->errmsg),
		    "%s: no document %s/%s", name, a, b);
	else if ((a = member_str(params, "field")) != NULL &&
	    (b = member_str(params, "reason")) != NULL)
		snprintf(f->errmsg, sizeof(f->errmsg), "%s: %s: %s",
		    name, a, b);
	else if ((c = member_str(params, "reason")) != NULL ||
	    (c = member_str(params, "message")) != NULL ||
	    (c = member_str(params, "error")) != NULL)
		snprintf(f->errmsg, sizeof(f->errmsg), "%s: %s", name, c);
	else if ((c = member_str(params, "parameter")) != NULL)
		snprintf(f->errmsg, sizeof(f->errmsg),
		    "%s: bad parameter '%s'", name, c);
	else if ((c = member_str(params, "method")) != NULL)
		snprintf(f->errmsg, sizeof(f->errmsg),
		    "%s: unknown method %s", name, c);
	else if (json_object_size(params) > 0 &&
	    (text = json_dumps(params, JSON_COMPACT)) != NULL)
		snprintf(f->errmsg, sizeof(f->errmsg), "%s: %s", name, text);
	else
		snprintf(f->errmsg, sizeof(f->errmsg), "%s", name);
	free(text);
	json_decref(params);
	return map_error(name);
}

/*
 * Block until the next reply is read.  Returns 0 with *ret_params (a new
 * reference to the reply's parameters, {} when absent) and *ret_continues,
 * or the mapped error of an error reply, or -errno.  Keeps the outstanding
 * count.
 */
static int
read_reply(ferry *f, int block, json_t **ret_params, int *ret_continues)
{
	json_t *msg = NULL, *params, *err;
	int r, continues;

	for (;;) {
		r = conn_next(f, &msg);
		if (r < 0)
			return r;
		if (r > 0)
			break;
		r = conn_fill(f, block ? 0 : MSG_DONTWAIT);
		if (r < 0)
			return r;
		if (r == 0 && !block)
			return -EAGAIN;
	}

	continues = json_is_true(json_object_get(msg, "continues"));
	params = json_object_get(msg, "parameters");
	err = json_object_get(msg, "error");
	if (params != NULL && !json_is_object(params)) {
		r = conn_fail(f, -EPROTO,
		    "malformed reply from ferryd: parameters is not an object");
		goto out;
	}
	if (err != NULL) {
		if (!json_is_string(err)) {
			r = conn_fail(f, -EPROTO,
			    "malformed reply from ferryd: error is not a string");
			goto out;
		}
		if (f->outstanding > 0)
			f->outstanding--;
		r = take_error_reply(f, json_string_value(err), params);
		goto out;
	}
	if (!continues && f->outstanding > 0)
		f->outstanding--;
	if (params == NULL)
		params = json_object();
	else
		json_incref(params);
	if (params == NULL) {
		r = oom(f);
		goto out;
	}
	*ret_params = params;
	*ret_continues = continues;
	r = 0;
out:
	json_decref(msg);
	return r;
}

/*
 * One blocking call: queue, flush, read the single reply.  Takes a
 * reference to params.  On success *ret_params is the reply's parameters.
 */
static int
call(ferry *f, const char *method, json_t *params, json_t **ret_params)
{
	json_t *reply = NULL;
	int r, continues = 0;

	if (f->mode != FERRY_MODE_CALLS) {
		json_decref(params);
		return set_error(f, -EBUSY,
		    "connection is a watch stream; open another for calls");
	}
	if (f->outstanding > 0) {
		json_decref(params);
		return set_error(f, -EBUSY,
		    "%zu pipelined replies are not received yet",
		    f->outstanding);
	}
	r = queue_call(f, method, params, 0);
	if (r < 0)
		return r;
	/* If ferryd closed the connection, what it said before (say,
	 * TooManyConnections) is still to be read: that is the why. */
	if ((r = conn_flush(f)) < 0 && !f->wclosed)
		return r;
	r = read_reply(f, 1, &reply, &continues);
	if (r < 0)
		return r;
	if (f->wclosed) {
		/* A reply to a call never sent: not ours to give. */
		json_decref(reply);
		return conn_fail(f, -ECONNRESET, "ferryd closed the "
		    "connection");
	}
	if (continues) {
		json_decref(reply);
		return conn_fail(f, -EPROTO,
		    "malformed reply from ferryd: a single call continues");
	}
	*ret_params = reply;
	return 0;
}

/*
 * Call and take one member of the reply's parameters (an object) as JSON
 * text; ret may be NULL to discard.
 */
static int
call_member(ferry *f, const char *method, json_t *params, const char *key,
    char **ret)
{
	json_t *reply = NULL, *v;
	char *text = NULL;
	int r;

	r = call(f, method, params, &reply);
	if (r < 0)
		return r;
	if (key != NULL) {
		v = json_object_get(reply, key);
		if (!json_is_object(v) && !json_is_array(v)) {
			r = set_error(f, -EPROTO,
			    "malformed reply from ferryd: %s without '%s'",
			    method, key);
			goto out;
		}
	} else
		v = reply;
	if (ret != NULL) {
		r = dump_compact(f, v, &text);
		if (r < 0)
			goto out;
		*ret = text;
	}
	r = 0;
out:
	json_decref(reply);
	return r;
}

/* {"collection":c,"id":id}, checked for presence and UTF-8. */
static int
doc_params(ferry *f, const char *collection, const char *id, json_t **ret)
{
	json_t *p;

	if (collection == NULL || id == NULL)
		return set_error(f, -EINVAL, "collection and id are required");
	p = json_object();
	if (p == NULL)
		return oom(f);
	if (json_object_set_new(p, "collection", json_string(collection)) < 0 ||
	    json_object_set_new(p, "id", json_string(id)) < 0) {
		json_decref(p);
		return set_error(f, -EINVAL,
		    "collection and id must be valid UTF-8");
	}
	*ret = p;
	return 0;
}

static int
set_if_rev(ferry *f, json_t *p, int64_t if_rev)
{
	if (if_rev < 0)
		return 0;
	if (json_object_set_new(p, "if_rev", json_integer(if_rev)) < 0)
		return oom(f);
	return 0;
}

/*
 * Public API.
 */

FERRY_API char *
ferry_default_socket(void)
{
	char *path;

	/* The rule ferryd follows too (lib/sockpath.c). */
	if (sockpath_default(&path) < 0)
		return NULL;
	return path;
}

/* Say why connecting to path failed; returns r. */
static int
connect_error(const char *path, int r)
{
	snprintf(connect_errmsg, sizeof(connect_errmsg),
	    "cannot connect to %s: %s", path, strerror(-r));
	return r;
}

/*
 * Is the socket served by our own uid?  Whoever can create files where the
 * socket lives could otherwise listen there and answer our calls as
 * ferryd would; so this is asked before anything is sent.  0, or -errno
 * with connect_errmsg set.
 */
static int
check_peer(int fd, const char *path)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);
	int r;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) {
		r = -errno;
		snprintf(connect_errmsg, sizeof(connect_errmsg),
		    "cannot tell who listens on %s: %s", path, strerror(-r));
		return r;
	}
	if (cred.uid != geteuid()) {
		snprintf(connect_errmsg, sizeof(connect_errmsg),
		    "refusing %s: it is served by uid %lu, not by you (uid "
		    "%lu), so it is not your ferryd; nothing was sent", path,
		    (unsigned long)cred.uid, (unsigned long)geteuid());
		return -EPERM;
	}
	return 0;
}

FERRY_API int
ferry_connect(const char *socket_path, ferry **ret)
{
	struct sockaddr_un sa;
	struct pollfd pfd;
	socklen_t len;
	ferry *f = NULL;
	char *path = NULL;
	int fd = -1, r, soerr;

	connect_errmsg[0] = '\0';
	if (ret == NULL) {
		snprintf(connect_errmsg, sizeof(connect_errmsg),
		    "ferry_connect: ret is NULL");
		return -EINVAL;
	}
	if (socket_path != NULL)
		r = (path = strdup(socket_path)) != NULL ? 0 : -ENOMEM;
	else
		r = sockpath_default(&path);
	if (r < 0) {
		snprintf(connect_errmsg, sizeof(connect_errmsg), "%s",
		    r == -ENOENT ? "cannot find ferryd's socket: none of "
		    "FERRY_SOCKET, XDG_RUNTIME_DIR and HOME is set" :
		    "out of memory");
		goto fail;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sun_family = AF_UNIX;
	if (*path == '\0' || strlen(path) >= sizeof(sa.sun_path)) {
		r = connect_error(path, *path == '\0' ? -EINVAL :
		    -ENAMETOOLONG);
		goto fail;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);

	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		r = -errno;
		snprintf(connect_errmsg, sizeof(connect_errmsg),
		    "cannot create a socket: %s", strerror(errno));
		goto fail;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		if (errno != EINTR) {
			r = connect_error(path, -errno);
			goto fail;
		}
		/* Interrupted: the connection goes on; wait for its end. */
		pfd.fd = fd;
		pfd.events = POLLOUT;
		while (poll(&pfd, 1, -1) < 0)
			if (errno != EINTR) {
				r = connect_error(path, -errno);
				goto fail;
			}
		len = sizeof(soerr);
		if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0) {
			r = connect_error(path, -errno);
			goto fail;
		}
		if (soerr != 0) {
			r = connect_error(path, -soerr);
			goto fail;
		}
	}
	if ((r = check_peer(fd, path)) < 0)
		goto fail;

	f = calloc(1, sizeof(*f));
	if (f == NULL) {
		r = -ENOMEM;
		snprintf(connect_errmsg, sizeof(connect_errmsg),
		    "out of memory");
		goto fail;
	}
	f->fd = fd;
	f->path = path;
	*ret = f;
	return 0;

fail:
	if (fd >= 0)
		close(fd);
	free(path);
	return r;
}

FERRY_API void
ferry_close(ferry *f)
{
	if (f == NULL)
		return;
	if (f->fd >= 0)
		close(f->fd);
	free(f->path);
	free(f->in);
	free(f->out);
	free(f->errname);
	free(f->errparams);
	free(f);
}

FERRY_API const char *
ferry_errmsg(const ferry *f)
{
	if (f == NULL)
		return connect_errmsg;
	return f->errmsg;
}

FERRY_API const char *
ferry_errname(const ferry *f)
{
	return f != NULL ? f->errname : NULL;
}

FERRY_API const char *
ferry_errparams(const ferry *f)
{
	return f != NULL ? f->errparams : NULL;
}

FERRY_API int
ferry_fd(const ferry *f)
{
	return f != NULL ? f->fd : -EBADF;
}

FERRY_API int
ferry_call(ferry *f, const char *method, const char *params_json,
    char **ret_params)
{
	json_t *params = NULL;
	int r;

	if (f == NULL)
		return -EINVAL;
	clear_error(f);
	if ((r = check_usable(f)) < 0)
		return r;
	if (params_json != NULL &&
	    (r = parse_object_arg(f, "parameters", params_json, &params)) < 0)
		return r;
	return call_member(f, method, params, NULL, ret_params);
}

FERRY_API int
ferry_send(ferry *f, const char *method, const char *params_json)
{
	int r;

	if (f == NULL)
		return -EINVAL;
	clear_error(f);
	if ((r = check_usable(f)) < 0)
		return r;
	if (f->mode != FERRY_MODE_CALLS)
		return set_error(f, -EBUSY,
		    "connection is a watch stream; open another for calls");
	if ((r = queue_call_text(f, method, params_json)) < 0)
		return r;
	if (f->out_len - f->out_off >= FERRY_OUT_FLUSH)
		return conn_flush(f);
	return 0;
}

FERRY_API int
ferry_flush(ferry *f)
{
	int r;

	if (f == NULL)
		return -EINVAL;
	clear_error(f);
	if ((r = check_usable(f)) < 0)
		return r;
	return conn_flush(f);
}

FERRY_API int
ferry_recv(ferry *f, char **ret_params, int *ret_continues)
{
	json_t *params = NULL;
	char *text = NULL;
	int r, continues = 0;
	bool drain;

	if (f == NULL)
		return -EINVAL;
	clear_error(f);
	/* ferryd closed the connection, but its last replies were read
	 * before the end: they are still given out. */
	drain = f->dead == -ECONNRESET && f->in_tail > f->in_off;
	if (!drain && (r = check_usable(f)) < 0)
		return r;
	if (f->mode != FERRY_MODE_CALLS)
		return set_error(f, -EBUSY,
		    "connection is a watch stream; use ferry_watch_next");
	if (f->outstanding == 0)
		return set_error(f, -EINVAL, "no call is waiting for a reply");
	/* Calls still queued here are sent first; if ferryd has gone, the
	 * replies it made to earlier ones may still be waiting: read on. */
	if (!drain && (r = conn_flush(f)) < 0 && !f->wclosed)
		return r;
	r = read_reply(f, 1, &params, &continues);
	if (r < 0)
		return r;
	if (ret_params != NULL) {
		r = dump_compact(f, params, &text);
		if (r < 0)
			goto out;
		*ret_params = text;
	}
	if (ret_continues != NULL)
		*ret_continues = continues;
	r = 0;
out:
	json_decref(params);
	return r;
}

/* The start of every document call: f usable, in call mode. */
static int
begin(ferry *f)
{
	if (f == NULL)
		return -EINVAL;
	clear_error(f);
	return check_usable(f);
}

FERRY_API int
ferry_get(ferry *f, const char *collection, const char *id, char **ret_doc)
{
	json_t *p;
	int r;

	if ((r = begin(f)) < 0)
		return r;
	if ((r = doc_params(f, collection, id, &p)) < 0)
		return r;
	return call_member(f, "io.ferry.Get", p, "doc", ret_doc);
}

/* Put and Patch: the same shape with the object under a different key. */
static int
write_call(ferry *f, const char *method, const char *key,
    const char *collection, const char *id, const char *json_text,
    int64_t if_rev, char **ret_doc)
{
	json_t *p = NULL, *obj = NULL;
	int r;

	if ((r = begin(f)) < 0)
		return r;
	if ((r = parse_object_arg(f, key, json_text, &obj)) < 0)
		return r;
	if ((r = doc_params(f, collection, id, &p)) < 0)
		goto fail;
	if (json_object_set_new(p, key, obj) < 0) {
		obj = NULL;
		r = oom(f);
		goto fail;
	}
	obj = NULL;
	if ((r = set_if_rev(f, p, if_rev)) < 0)
		goto fail;
	return call_member(f, method, p, "doc", ret_doc);
fail:
	json_decref(obj);
	json_decref(p);
	return r;
}

FERRY_API int
ferry_put(ferry *f, const char *collection, const char *id,
    const char *body_json, int64_t if_rev, char **ret_doc)
{
	return write_call(f, "io.ferry.Put", "body", collection, id,
	    body_json, if_rev, ret_doc);
}

FERRY_API int
ferry_patch(ferry *f, const char *collection, const char *id,
    const char *patch_json, int64_t if_rev, char **ret_doc)
{
	return write_call(f, "io.ferry.Patch", "patch", collection, id,
	    patch_json, if_rev, ret_doc);
}

FERRY_API int
ferry_delete(ferry *f, const char *collection, const char *id,
    int64_t if_rev, char **ret_doc)
{
	json_t *p;
	int r;

	if ((r = begin(f)) < 0)
		return r;
	if ((r = doc_params(f, collection, id, &p)) < 0)
		return r;
	if ((r = set_if_rev(f, p, if_rev)) < 0) {
		json_decref(p);
		return r;
	}
	return call_member(f, "io.ferry.Delete", p, "doc", ret_doc);
}

FERRY_API int
ferry_list(ferry *f, const char *collection, const char *after, int limit,
    char **ret_reply)
{
	json_t *p;
	int r;

	if ((r = begin(f)) < 0)
		return r;
	if (collection == NULL)
		return set_error(f, -EINVAL, "collection is required");
	p = json_object();
	if (p == NULL)
		return oom(f);
	if (json_object_set_new(p, "collection", json_string(collection)) < 0 ||
	    (after != NULL &&
	    json_object_set_new(p, "after", json_string(after)) < 0)) {
		json_decref(p);
		return set_error(f, -EINVAL,
		    "collection and after must be valid UTF-8");
	}
	if (limit > 0 &&
	    json_object_set_new(p, "limit", json_integer(limit)) < 0) {
		json_decref(p);
		return oom(f);
	}
	return call_member(f, "io.ferry.List", p, NULL, ret_reply);
}

FERRY_API int
ferry_status(ferry *f, char **ret_status)
{
	int r;

	if ((r = begin(f)) < 0)
		return r;
	return call_member(f, "io.ferry.Status", NULL, "status", ret_status);
}

FERRY_API int
ferry_watch(ferry *f, const char *const *collections, int64_t since)
{
	return ferry_watch_presence(f, collections, since, 0);
}

FERRY_API int
ferry_watch_presence(ferry *f, const char *const *collections, int64_t since,
    int presence)
{
	json_t *p = NULL, *arr, *reply = NULL;
	size_t i;
	int r, continues = 0;

	if ((r = begin(f)) < 0)
		return r;
	if (f->mode != FERRY_MODE_CALLS)
		return set_error(f, -EBUSY, "connection is already watching");
	if (f->outstanding > 0)
		return set_error(f, -EBUSY,
		    "%zu pipelined replies are not received yet",
		    f->outstanding);
	p = json_object();
	if (p == NULL)
		return oom(f);
	if (collections != NULL && collections[0] != NULL) {
		arr = json_array();
		if (arr == NULL || json_object_set_new(p, "collections",
		    arr) < 0) {
			r = oom(f);
			goto out;
		}
		for (i = 0; collections[i] != NULL; i++)
			if (json_array_append_new(arr,
			    json_string(collections[i])) < 0) {
				r = set_error(f, -EINVAL,
				    "collection names must be valid UTF-8");
				goto out;
			}
	}
	if (since >= 0 &&
	    json_object_set_new(p, "since", json_integer(since)) < 0) {
		r = oom(f);
		goto out;
	}
	if (presence &&
	    json_object_set_new(p, "presence", json_true()) < 0) {
		r = oom(f);
		goto out;
	}
	r = queue_call(f, "io.ferry.Watch", p, 1);
	p = NULL;
	if (r < 0)
		goto out;
	/* As in call(): an error ferryd sent before closing is the why. */
	if ((r = conn_flush(f)) < 0 && !f->wclosed)
		goto out;
	if ((r = read_reply(f, 1, &reply, &continues)) < 0)
		goto out;
	if (f->wclosed) {
		r = conn_fail(f, -ECONNRESET, "ferryd closed the connection");
		goto out;
	}
	if (!continues || !json_is_true(json_object_get(reply, "ready"))) {
		r = conn_fail(f, -EPROTO,
		    "malformed reply from ferryd: Watch did not confirm");
		goto out;
	}
	f->mode = FERRY_MODE_WATCH;
	r = 0;
out:
	json_decref(reply);
	json_decref(p);
	return r;
}

FERRY_API int
ferry_watch_next(ferry *f, char **ret_event)
{
	json_t *reply = NULL, *ev;
	char *text = NULL;
	int r, continues;

	if ((r = begin(f)) < 0)
		return r;
	if (f->mode == FERRY_MODE_CALLS)
		return set_error(f, -EINVAL, "connection is not watching");
	if (f->mode == FERRY_MODE_WATCH_DONE)
		return set_error(f, -ECONNRESET, "the watch has ended");
	for (;;) {
		continues = 0;
		r = read_reply(f, 0, &reply, &continues);
		if (r == -EAGAIN)
			return 0;
		if (r < 0) {
			/* An error reply ends the stream, its text stays. */
			f->mode = FERRY_MODE_WATCH_DONE;
			return r;
		}
		ev = json_object_get(reply, "event");
		if (json_is_object(ev))
			break;
		/* A presence reply is handed over whole: {presence, gone}. */
		if (json_is_object(json_object_get(reply, "presence"))) {
			ev = reply;
			break;
		}
		json_decref(reply);
		reply = NULL;
		if (!continues) {
			f->mode = FERRY_MODE_WATCH_DONE;
			return set_error(f, -ECONNRESET,
			    "ferryd ended the watch");
		}
		/* A reply without an event (another "ready"): skip it. */
	}
	if (ret_event != NULL) {
		r = dump_compact(f, ev, &text);
		if (r < 0)
			goto out;
		*ret_event = text;
	}
	if (!continues)
		f->mode = FERRY_MODE_WATCH_DONE;
	r = 1;
out:
	json_decref(reply);
	return r;
}

static int64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

FERRY_API int
ferry_watch_wait(ferry *f, int timeout_ms, char **ret_event)
{
	struct pollfd pfd;
	int64_t deadline = 0, left;
	int r, wait_ms;

	if (timeout_ms >= 0)
		deadline = mono_ms() + timeout_ms;
	for (;;) {
		r = ferry_watch_next(f, ret_event);
		if (r != 0)
			return r;
		wait_ms = -1;
		if (timeout_ms >= 0) {
			left = deadline - mono_ms();
			if (left <= 0)
				return 0;
			wait_ms = left > INT_MAX ? INT_MAX : (int)left;
		}
		pfd.fd = f->fd;
		pfd.events = POLLIN;
		pfd.revents = 0;
		r = poll(&pfd, 1, wait_ms);
		if (r < 0 && errno != EINTR)
			return set_error(f, -errno, "poll: %s",
			    strerror(errno));
		if (r == 0)
			return 0;
	}
}

FERRY_API int
ferry_set_presence(ferry *f, const char *collection, const char *id,
    const char *state_json)
{
	json_t *p, *state = NULL;
	int r;

	if ((r = begin(f)) < 0)
		return r;
	if (collection == NULL)
		return set_error(f, -EINVAL, "collection is required");
	if (state_json != NULL &&
	    (r = parse_object_arg(f, "state", state_json, &state)) < 0)
		return r;
	if ((p = json_object()) == NULL) {
		json_decref(state);
		return oom(f);
	}
	if (json_object_set_new(p, "collection", json_string(collection)) < 0 ||
	    (id != NULL && json_object_set_new(p, "id", json_string(id)) < 0)) {
		json_decref(state);
		json_decref(p);
		return set_error(f, -EINVAL,
		    "collection and id must be valid UTF-8");
	}
	if (state != NULL && json_object_set_new(p, "state", state) < 0) {
		json_decref(p);
		return oom(f);
	}
	return call_member(f, "io.ferry.SetPresence", p, NULL, NULL);
}

FERRY_API int
ferry_who(ferry *f, const char *collection, const char *id,
    char **ret_present)
{
	json_t *p;
	int r;

	if ((r = begin(f)) < 0)
		return r;
	if (id != NULL && collection == NULL)
		return set_error(f, -EINVAL, "an id needs its collection");
	if ((p = json_object()) == NULL)
		return oom(f);
	if ((collection != NULL && json_object_set_new(p, "collection",
	    json_string(collection)) < 0) ||
	    (id != NULL && json_object_set_new(p, "id", json_string(id)) < 0)) {
		json_decref(p);
		return set_error(f, -EINVAL,
		    "collection and id must be valid UTF-8");
	}
	return call_member(f, "io.ferry.Who", p, "present", ret_present);
}
