/*
 * vl_server: varlink connections over libevent bufferevents; see
 * vl_server.h for the state machine and limits.
 *
 * Reading: the input buffer is scanned for NUL from where the last scan
 * stopped, so a large message arriving in pieces costs linear time.  Every
 * complete message becomes a struct vl_call queued on its connection; a
 * message that cannot be parsed becomes a call already finished with its
 * error, so the error keeps its place in the reply order.
 *
 * Writing: the head call's replies go straight to the bufferevent; replies
 * of later calls wait in the call's own buffer.  Finishing the head call
 * moves the next call's buffered replies out, and so on.
 *
 * End of input: a peer that closed its socket (exited, crashed, or called
 * ferry_close) can read nothing we would say, so its connection is closed
 * at once and its calls are cancelled, streaming or not: a Watch must not
 * keep its slot until an event happens to fail on the dead socket.  A peer
 * that only shut down its sending side (shutdown(SHUT_WR): "no more calls")
 * still reads, so its outstanding calls are answered (DRAINING); while they
 * are, a second descriptor of the socket, edge-triggered, tells us when the
 * peer closes after all.  The two cases differ in poll(2): an AF_UNIX
 * socket reports POLLHUP only once both directions are shut.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/listener.h>

#include "log.h"
#include "util.h"
#include "vl_server.h"

#define VL_OUTPUT_HIGH		(16u * 1024 * 1024)	/* stop reading */
#define VL_OUTPUT_LOW		(1u * 1024 * 1024)	/* resume, drain cbs */
#define VL_CALLS_MAX		4096	/* outstanding calls per connection */

enum vl_conn_state {
	VL_OPEN,
	VL_DRAINING,
	VL_DEAD,
};

struct vl_call {
	struct vl_conn		*conn;
	struct vl_msg		 m;
	struct evbuffer		*pending;	/* replies not yet at the head */
	bool			 done;
	bool			 cancelled;
	vl_cancel_fn		 cancel_cb;
	void			*cancel_arg;
	vl_drain_fn		 drain_cb;
	void			*drain_arg;
	void			*data;
	TAILQ_ENTRY(vl_call)	 entry;
};

TAILQ_HEAD(vl_call_list, vl_call);

struct vl_conn {
	struct vl_server	*srv;
	struct bufferevent	*bev;
	enum vl_conn_state	 state;
	unsigned long		 id;
	uid_t			 uid;
	pid_t			 pid;		/* at accept, 0: unknown */
	size_t			 scan_pos;	/* input bytes known NUL-free */
	struct vl_call_list	 calls;		/* not yet removed */
	int			 ncalls;	/* unfinished */
	bool			 read_paused;
	bool			 dirty;		/* on the server's flush list */
	bool			 resume;	/* read what the input holds */
	uint64_t		 tag;		/* the handler's */
	TAILQ_ENTRY(vl_conn)	 dirty_entry;
	struct event		*idle_ev;
	struct event		*hup_ev;	/* DRAINING: the peer's close */
	int			 hup_fd;	/* a dup of the socket, or -1 */
	TAILQ_ENTRY(vl_conn)	 entry;
};

TAILQ_HEAD(vl_conn_list, vl_conn);

struct vl_listener {
	struct evconnlistener	*l;
	char			*path;	/* unlinked on free, if we made it */
	TAILQ_ENTRY(vl_listener) entry;
};

struct vl_server {
	struct event_base	*base;
	struct vl_server_config	 cfg;
	vl_dispatch_fn		 dispatch;
	void			*arg;
	vl_check_fn		 check;
	void			*check_arg;
	vl_close_fn		 close_cb;
	void			*close_arg;
	struct vl_conn_list	 conns;
	struct vl_conn_list	 dead;
	int			 nconns;
	unsigned long		 next_id;
	struct event		*reap_ev;
	struct event		*flush_ev;
	struct event		*accept_retry_ev;
	struct vl_conn_list	 dirty;
	TAILQ_HEAD(, vl_listener) listeners;
};

static void vl_conn_close(struct vl_conn *c);
static void vl_conn_write_cb(struct bufferevent *bev, void *arg);
static void vl_conn_read(struct vl_conn *c);
static void vl_conn_advance(struct vl_conn *c);

/* --- calls --- */

const struct vl_msg *
vl_call_msg(const struct vl_call *call)
{
	return &call->m;
}

void
vl_call_set_data(struct vl_call *call, void *data)
{
	call->data = data;
}

void *
vl_call_get_data(const struct vl_call *call)
{
	return call->data;
}

unsigned long
vl_call_conn_id(const struct vl_call *call)
{
	return call->conn->id;
}

pid_t
vl_call_conn_pid(const struct vl_call *call)
{
	return call->conn->pid;
}

uint64_t *
vl_call_conn_tag(struct vl_call *call)
{
	return &call->conn->tag;
}

void
vl_call_set_cancel(struct vl_call *call, vl_cancel_fn cb, void *arg)
{
	call->cancel_cb = cb;
	call->cancel_arg = arg;
}

void
vl_call_set_drain(struct vl_call *call, vl_drain_fn cb, void *arg)
{
	call->drain_cb = cb;
	call->drain_arg = arg;
}

size_t
vl_call_output_size(const struct vl_call *call)
{
	size_t n = call->pending != NULL ?
	    evbuffer_get_length(call->pending) : 0;

	if (call->conn->bev != NULL)
		n += evbuffer_get_length(bufferevent_get_output(call->conn->bev));
	return n;
}

bool
vl_call_cancelled(const struct vl_call *call)
{
	return call->cancelled;
}

static bool
vl_call_is_head(const struct vl_call *call)
{
	return TAILQ_FIRST(&call->conn->calls) == call;
}

static void
vl_call_free(struct vl_call *call)
{
	vl_msg_clear(&call->m);
	if (call->pending != NULL)
		evbuffer_free(call->pending);
	free(call);
}

static struct vl_call *
vl_call_new(struct vl_conn *c)
{
	struct vl_call *call;

	if ((call = calloc(1, sizeof *call)) == NULL)
		return NULL;
	call->conn = c;
	TAILQ_INSERT_TAIL(&c->calls, call, entry);
	c->ncalls++;
	if (c->idle_ev != NULL)
		event_del(c->idle_ev);
	return call;
}

/*
 * Replies are written at the end of the loop turn that made them, straight
 * from the connection's output buffer, instead of waiting for the next turn
 * to report the socket writable: one write(2) per connection per turn, and
 * no epoll round trip per reply.  What the socket does not take now is left
 * to the bufferevent as usual.
 */
static void
vl_conn_mark_dirty(struct vl_conn *c)
{
	if (c->dirty || c->state == VL_DEAD)
		return;
	c->dirty = true;
	TAILQ_INSERT_TAIL(&c->srv->dirty, c, dirty_entry);
	event_active(c->srv->flush_ev, 0, 0);
}

static void
vl_flush_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vl_server *s = arg;
	struct evbuffer *out;
	struct vl_conn *c;
	int n;

	while ((c = TAILQ_FIRST(&s->dirty)) != NULL) {
		TAILQ_REMOVE(&s->dirty, c, dirty_entry);
		c->dirty = false;
		if (c->bev == NULL)
			continue;
		if (c->resume) {
			c->resume = false;
			vl_conn_read(c);
			if (c->bev == NULL)
				continue;
		}
		out = bufferevent_get_output(c->bev);
		if (evbuffer_get_length(out) == 0)
			continue;
		/* A socket bufferevent keeps its output's front frozen
		 * while it is not writing itself. */
		evbuffer_unfreeze(out, 1);
		n = evbuffer_write(out, bufferevent_getfd(c->bev));
		evbuffer_freeze(out, 1);
		if (n > 0 && evbuffer_get_length(out) <= VL_OUTPUT_LOW)
			vl_conn_write_cb(c->bev, c);
		/* On an error the bufferevent finds it at its next write. */
	}
}

struct vl_part {
	const char	*p;
	size_t		 len;
};

/*
 * Queue a reply made of n pieces for call: straight into the socket's
 * output buffer if the call is at the head, else into the call's own
 * buffer (made on first use: most calls are answered at the head).  The
 * pieces are copied once, into one reserved extent.
 */
static int
vl_call_emit_parts(struct vl_call *call, const struct vl_part *parts, int n,
    bool last)
{
	struct vl_conn *c = call->conn;
	struct evbuffer_iovec v;
	struct evbuffer *dst;
	size_t total = 0, off = 0;
	bool head;
	int i, r = 0;

	if (call->done)
		return -EALREADY;
	for (i = 0; i < n; i++)
		total += parts[i].len;
	if (!call->cancelled && !call->m.oneway && total > 0) {
		head = vl_call_is_head(call) && c->bev != NULL;
		if (head)
			dst = bufferevent_get_output(c->bev);
		else {
			if (call->pending == NULL)
				call->pending = evbuffer_new();
			dst = call->pending;
		}
		if (dst == NULL || evbuffer_reserve_space(dst,
		    (ev_ssize_t)total, &v, 1) != 1)
			r = -ENOMEM;
		else {
			for (i = 0; i < n; i++) {
				memcpy((char *)v.iov_base + off, parts[i].p,
				    parts[i].len);
				off += parts[i].len;
			}
			v.iov_len = total;
			if (evbuffer_commit_space(dst, &v, 1) < 0)
				r = -ENOMEM;
		}
		if (head && r == 0)
			vl_conn_mark_dirty(c);
	}
	if (last) {
		call->done = true;
		c->ncalls--;
		vl_conn_advance(c);
	}
	return r;
}

/* Queue encoded reply bytes for call (takes ownership of buf). */
static int
vl_call_emit(struct vl_call *call, char *buf, size_t len, bool last)
{
	struct vl_part part = { buf, len };
	int r;

	r = vl_call_emit_parts(call, &part, buf != NULL ? 1 : 0, last);
	free(buf);
	return r;
}

/* Show a reply to the server's check, if it has one and anyone will read
 * the reply. */
static void
vl_call_check(struct vl_call *call, const char *error, json_t *params,
    const char *text, size_t len)
{
	struct vl_server *s = call->conn->srv;

	if (s->check != NULL && !call->done && !call->cancelled &&
	    !call->m.oneway)
		s->check(call, error, params, text, len, s->check_arg);
}

int
vl_reply(struct vl_call *call, json_t *params, bool continues)
{
	size_t len;
	char *buf;
	int r;

	if (continues && !call->m.more)
		continues = false;
	vl_call_check(call, NULL, params, NULL, 0);
	if ((r = vl_encode_reply(params, continues, &buf, &len)) < 0) {
		vl_call_emit(call, NULL, 0, !continues);
		return r;
	}
	return vl_call_emit(call, buf, len, !continues);
}

int
vl_reply_raw(struct vl_call *call, const char *params, size_t len,
    bool continues)
{
	static const char head[] = "{\"parameters\":";
	static const char more[] = ",\"continues\":true}";
	struct vl_part parts[3];

	if (continues && !call->m.more)
		continues = false;
	vl_call_check(call, NULL, NULL, params, len);
	parts[0].p = head;
	parts[0].len = sizeof head - 1;
	parts[1].p = params;
	parts[1].len = len;
	/* Both tails end with the NUL that delimits the message. */
	parts[2].p = continues ? more : "}";
	parts[2].len = continues ? sizeof more : 2;
	return vl_call_emit_parts(call, parts, 3, !continues);
}

int
vl_error(struct vl_call *call, const char *name, json_t *params)
{
	size_t len;
	char *buf;
	int r;

	vl_call_check(call, name, params, NULL, 0);
	if ((r = vl_encode_error(name, params, &buf, &len)) < 0) {
		vl_call_emit(call, NULL, 0, true);
		return r;
	}
	return vl_call_emit(call, buf, len, true);
}

int
vl_error_invalid(struct vl_call *call, const char *param)
{
	json_t *p;
	int r;

	p = json_pack("{s:s}", "parameter", param);
	r = vl_error(call, "org.varlink.service.InvalidParameter", p);
	json_decref(p);
	return r;
}

/* --- connections --- */

static void
vl_reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vl_server *s = arg;
	struct vl_conn *c, *next;
	struct vl_call *call;

	for (c = TAILQ_FIRST(&s->dead); c != NULL; c = next) {
		next = TAILQ_NEXT(c, entry);
		if (c->ncalls > 0)
			continue;	/* a handler still holds a call */
		while ((call = TAILQ_FIRST(&c->calls)) != NULL) {
			TAILQ_REMOVE(&c->calls, call, entry);
			vl_call_free(call);
		}
		TAILQ_REMOVE(&s->dead, c, entry);
		free(c);
	}
}

/*
 * Remove finished calls from the head and move the next call's buffered
 * replies to the socket.  Then decide whether a draining connection can
 * close and whether reading can resume.
 */
static void
vl_conn_advance(struct vl_conn *c)
{
	struct vl_call *call;

	while ((call = TAILQ_FIRST(&c->calls)) != NULL) {
		if (c->bev != NULL && call->pending != NULL &&
		    evbuffer_get_length(call->pending) > 0) {
			bufferevent_write_buffer(c->bev, call->pending);
			vl_conn_mark_dirty(c);
		}
		if (!call->done)
			break;
		if (c->state == VL_DEAD)
			break;	/* the reaper frees them */
		TAILQ_REMOVE(&c->calls, call, entry);
		vl_call_free(call);
	}
	if (c->state == VL_DEAD) {
		if (c->ncalls == 0)
			event_active(c->srv->reap_ev, 0, 0);
		return;
	}
	if (c->ncalls == 0 && c->srv->cfg.idle_timeout > 0 &&
	    c->state == VL_OPEN) {
		struct timeval tv = { c->srv->cfg.idle_timeout, 0 };

		event_add(c->idle_ev, &tv);
	}
	if (c->state == VL_DRAINING && c->ncalls == 0 &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) == 0) {
		vl_conn_close(c);
		return;
	}
	if (c->read_paused && c->state == VL_OPEN && c->ncalls < VL_CALLS_MAX &&
	    evbuffer_get_length(bufferevent_get_output(c->bev)) <
	    VL_OUTPUT_HIGH) {
		c->read_paused = false;
		bufferevent_enable(c->bev, EV_READ);
		/*
		 * Messages may already wait in the input buffer.  They are
		 * read later in this turn, never from here: a handler that is
		 * answering calls must not see new ones dispatched under it.
		 */
		c->resume = true;
		vl_conn_mark_dirty(c);
	}
}

/*
 * Close the socket now; cancel the calls handlers still hold.  The struct
 * itself is freed later by the reaper.
 */
static void
vl_conn_close(struct vl_conn *c)
{
	struct vl_server *s = c->srv;
	struct vl_call *call;

	if (c->state == VL_DEAD)
		return;
	c->state = VL_DEAD;
	if (c->dirty) {
		TAILQ_REMOVE(&s->dirty, c, dirty_entry);
		c->dirty = false;
	}
	bufferevent_free(c->bev);
	c->bev = NULL;
	event_free(c->idle_ev);
	c->idle_ev = NULL;
	if (c->hup_ev != NULL) {
		event_free(c->hup_ev);
		c->hup_ev = NULL;
	}
	if (c->hup_fd != -1) {
		close(c->hup_fd);
		c->hup_fd = -1;
	}
	TAILQ_REMOVE(&s->conns, c, entry);
	TAILQ_INSERT_TAIL(&s->dead, c, entry);
	s->nconns--;
	log_debug("connection %lu closed", c->id);
	if (s->close_cb != NULL)
		s->close_cb(c->id, s->close_arg);
	TAILQ_FOREACH(call, &c->calls, entry) {
		if (call->done || call->cancelled)
			continue;
		call->cancelled = true;
		if (call->cancel_cb != NULL)
			call->cancel_cb(call, call->cancel_arg);
	}
	event_active(s->reap_ev, 0, 0);
}

/*
 * Has the peer closed its socket, not only its sending side?  poll(2)
 * reports POLLHUP whatever events are asked for.
 */
static bool
vl_peer_gone(int fd)
{
	struct pollfd pfd;

	pfd.fd = fd;
	pfd.events = 0;
	pfd.revents = 0;
	return poll(&pfd, 1, 0) == 1 &&
	    (pfd.revents & (POLLHUP | POLLERR)) != 0;
}

static void
vl_conn_hup_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vl_conn *c = arg;

	if (!vl_peer_gone(fd))
		return;		/* the edge of the half-close itself */
	log_debug("connection %lu: peer closed with %d calls outstanding",
	    c->id, c->ncalls);
	vl_conn_close(c);
}

/*
 * A half-closed peer may still close for good while we owe it replies (a
 * Watch that never ends).  The socket's own events belong to the
 * bufferevent and are level-triggered, and a socket at end of input is
 * always readable; so the close is watched on a duplicate descriptor,
 * edge-triggered: it fires once for the half-close we already saw, then
 * at the peer's close.  Without a descriptor to spare, the close is
 * found at the next write instead.
 */
static void
vl_conn_watch_hup(struct vl_conn *c)
{
	int fd;

	fd = fcntl(bufferevent_getfd(c->bev), F_DUPFD_CLOEXEC, 3);
	if (fd == -1) {
		log_debug("connection %lu: cannot watch for the peer's close: "
		    "%s", c->id, strerror(errno));
		return;
	}
	c->hup_ev = event_new(c->srv->base, fd, EV_READ | EV_ET | EV_PERSIST,
	    vl_conn_hup_cb, c);
	if (c->hup_ev == NULL || event_add(c->hup_ev, NULL) == -1) {
		if (c->hup_ev != NULL)
			event_free(c->hup_ev);
		c->hup_ev = NULL;
		close(fd);
		return;
	}
	c->hup_fd = fd;
}

/* Stop reading; close once the replies owed have been written. */
static void
vl_conn_drain(struct vl_conn *c)
{
	if (c->state != VL_OPEN)
		return;
	c->state = VL_DRAINING;
	bufferevent_disable(c->bev, EV_READ);
	vl_conn_advance(c);
	if (c->state == VL_DRAINING)
		vl_conn_watch_hup(c);
}

/* A message that cannot be delimited: say why, then close. */
static void
vl_conn_fatal(struct vl_conn *c, const char *param, const char *reason)
{
	struct vl_call *call;

	log_debug("connection %lu: %s", c->id, reason);
	evbuffer_drain(bufferevent_get_input(c->bev),
	    evbuffer_get_length(bufferevent_get_input(c->bev)));
	if ((call = vl_call_new(c)) != NULL) {
		call->m.oneway = false;
		vl_error_invalid(call, param);
	}
	vl_conn_drain(c);
}

static void
vl_conn_message(struct vl_conn *c, const char *buf, size_t len)
{
	struct vl_server *s = c->srv;
	const char *ename, *param;
	struct vl_call *call;
	char why[256];
	int r;

	if ((call = vl_call_new(c)) == NULL) {
		vl_conn_fatal(c, "message", "out of memory");
		return;
	}
	r = vl_msg_parse(buf, len, &call->m, &ename, &param, why, sizeof why);
	if (r < 0) {
		log_debug("connection %lu: bad message: %s", c->id, why);
		vl_error_invalid(call, param);
		return;
	}
	s->dispatch(call, s->arg);
}

static void
vl_conn_read(struct vl_conn *c)
{
	struct evbuffer *in;
	struct evbuffer_ptr pos;
	size_t len;
	char *buf;

	if (c->state != VL_OPEN)
		return;
	in = bufferevent_get_input(c->bev);
	while (c->state == VL_OPEN) {
		if (c->ncalls >= VL_CALLS_MAX ||
		    evbuffer_get_length(bufferevent_get_output(c->bev)) >=
		    VL_OUTPUT_HIGH) {
			c->read_paused = true;
			bufferevent_disable(c->bev, EV_READ);
			return;
		}
		len = evbuffer_get_length(in);
		if (len == 0)
			return;
		if (evbuffer_ptr_set(in, &pos, c->scan_pos,
		    EVBUFFER_PTR_SET) < 0)
			return;
		pos = evbuffer_search(in, "", 1, &pos);
		if (pos.pos < 0) {
			c->scan_pos = len;
			if (len > VL_MESSAGE_MAX)
				vl_conn_fatal(c, "message",
				    "message exceeds 8388608 bytes");
			return;
		}
		c->scan_pos = 0;
		if ((size_t)pos.pos > VL_MESSAGE_MAX) {
			vl_conn_fatal(c, "message",
			    "message exceeds 8388608 bytes");
			return;
		}
		buf = (char *)evbuffer_pullup(in, pos.pos + 1);
		if (buf == NULL) {
			vl_conn_fatal(c, "message", "out of memory");
			return;
		}
		vl_conn_message(c, buf, pos.pos);
		if (c->bev != NULL)
			evbuffer_drain(in, pos.pos + 1);
	}
}

static void
vl_conn_read_cb(struct bufferevent *bev, void *arg)
{
	vl_conn_read(arg);
}

static void
vl_conn_write_cb(struct bufferevent *bev, void *arg)
{
	struct vl_conn *c = arg;
	struct vl_call *call, *next;

	if (c->state == VL_DRAINING && c->ncalls == 0) {
		/* Called at every write at or below the low mark: close
		 * only once everything owed has left. */
		if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
			vl_conn_close(c);
		return;
	}
	/* Streaming calls that paused for a slow reader may go on. */
	for (call = TAILQ_FIRST(&c->calls); call != NULL; call = next) {
		next = TAILQ_NEXT(call, entry);
		if (!call->done && call->drain_cb != NULL)
			call->drain_cb(call, call->drain_arg);
		if (c->state == VL_DEAD)
			return;
	}
	if (c->read_paused)
		vl_conn_advance(c);
}

static void
vl_conn_event_cb(struct bufferevent *bev, short what, void *arg)
{
	struct vl_conn *c = arg;
	struct evbuffer *in;

	if (what & BEV_EVENT_EOF) {
		if (vl_peer_gone(bufferevent_getfd(bev))) {
			/* Nobody will read our replies: close now, cancel
			 * every call, streaming or not. */
			vl_conn_close(c);
			return;
		}
		in = bufferevent_get_input(bev);
		if (evbuffer_get_length(in) > 0 && c->state == VL_OPEN) {
			/* A truncated frame: no NUL before EOF. */
			vl_conn_fatal(c, "message",
			    "connection closed inside a message (no NUL "
			    "terminator)");
			return;
		}
		vl_conn_drain(c);
		return;
	}
	/* BEV_EVENT_ERROR or a timeout: the peer is gone. */
	vl_conn_close(c);
}

static void
vl_conn_idle_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vl_conn *c = arg;

	if (c->ncalls == 0) {
		log_debug("connection %lu idle, closing", c->id);
		vl_conn_close(c);
	}
}

static bool
vl_peer_uid(int fd, uid_t *ret)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return false;
	*ret = cred.uid;
	return true;
}

static pid_t
vl_peer_pid(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof cred;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == -1)
		return 0;
	return cred.pid;
}

static void
vl_refuse(int fd, const char *name, json_t *params)
{
	size_t len;
	char *buf;

	if (vl_encode_error(name, params, &buf, &len) == 0) {
		(void)!send(fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		free(buf);
	}
	close(fd);
}

static void
vl_accept_cb(struct evconnlistener *l, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct vl_server *s = arg;
	struct vl_conn *c;
	uid_t uid;
	json_t *p;

	if (!vl_peer_uid(fd, &uid) || uid != geteuid()) {
		log_notice("refused a connection from uid %ld",
		    (long)(vl_peer_uid(fd, &uid) ? (long)uid : -1L));
		close(fd);
		return;
	}
	if (s->nconns >= s->cfg.max_connections) {
		log_warn("refused a connection: %d connections already open",
		    s->nconns);
		p = json_pack("{s:i}", "limit", s->cfg.max_connections);
		vl_refuse(fd, "io.ferry.TooManyConnections", p);
		json_decref(p);
		return;
	}
	if ((c = calloc(1, sizeof *c)) == NULL) {
		close(fd);
		return;
	}
	c->srv = s;
	c->uid = uid;
	c->pid = vl_peer_pid(fd);
	c->id = ++s->next_id;
	c->hup_fd = -1;
	TAILQ_INIT(&c->calls);
	c->bev = bufferevent_socket_new(s->base, fd, BEV_OPT_CLOSE_ON_FREE);
	c->idle_ev = evtimer_new(s->base, vl_conn_idle_cb, c);
	if (c->bev == NULL || c->idle_ev == NULL) {
		if (c->bev != NULL)
			bufferevent_free(c->bev);
		else
			close(fd);
		if (c->idle_ev != NULL)
			event_free(c->idle_ev);
		free(c);
		return;
	}
	bufferevent_setcb(c->bev, vl_conn_read_cb, vl_conn_write_cb,
	    vl_conn_event_cb, c);
	/* The write callback fires when output falls to the low mark. */
	bufferevent_setwatermark(c->bev, EV_WRITE, VL_OUTPUT_LOW, 0);
	bufferevent_enable(c->bev, EV_READ | EV_WRITE);
	TAILQ_INSERT_TAIL(&s->conns, c, entry);
	s->nconns++;
	if (s->cfg.idle_timeout > 0) {
		struct timeval tv = { s->cfg.idle_timeout, 0 };

		event_add(c->idle_ev, &tv);
	}
	log_debug("connection %lu accepted", c->id);
}

static void
vl_accept_retry_cb(evutil_socket_t fd, short what, void *arg)
{
	struct vl_server *s = arg;
	struct vl_listener *vl;

	TAILQ_FOREACH(vl, &s->listeners, entry)
		evconnlistener_enable(vl->l);
}

static void
vl_accept_error_cb(struct evconnlistener *l, void *arg)
{
	struct vl_server *s = arg;
	struct timeval tv = { 1, 0 };
	int err = EVUTIL_SOCKET_ERROR();

	/* Out of descriptors: pause accepting for a second, do not spin. */
	log_warn("accept: %s", evutil_socket_error_to_string(err));
	evconnlistener_disable(l);
	evtimer_add(s->accept_retry_ev, &tv);
}

/* --- server --- */

int
vl_server_new(struct event_base *base, const struct vl_server_config *cfg,
    vl_dispatch_fn dispatch, void *arg, struct vl_server **ret)
{
	struct vl_server *s;

	if ((s = calloc(1, sizeof *s)) == NULL)
		return -ENOMEM;
	s->base = base;
	s->cfg = *cfg;
	s->dispatch = dispatch;
	s->arg = arg;
	TAILQ_INIT(&s->conns);
	TAILQ_INIT(&s->dead);
	TAILQ_INIT(&s->listeners);
	TAILQ_INIT(&s->dirty);
	s->reap_ev = event_new(base, -1, 0, vl_reap_cb, s);
	s->flush_ev = event_new(base, -1, 0, vl_flush_cb, s);
	s->accept_retry_ev = evtimer_new(base, vl_accept_retry_cb, s);
	if (s->reap_ev == NULL || s->flush_ev == NULL ||
	    s->accept_retry_ev == NULL) {
		vl_server_free(s);
		return -ENOMEM;
	}
	*ret = s;
	return 0;
}

void
vl_server_set_close(struct vl_server *s, vl_close_fn fn, void *arg)
{
	s->close_cb = fn;
	s->close_arg = arg;
}

void
vl_server_set_check(struct vl_server *s, vl_check_fn fn, void *arg)
{
	s->check = fn;
	s->check_arg = arg;
}

void
vl_server_configure(struct vl_server *s, const struct vl_server_config *cfg)
{
	s->cfg = *cfg;
}

int
vl_server_connection_count(const struct vl_server *s)
{
	return s->nconns;
}

static int
vl_server_add_listener(struct vl_server *s, int fd, const char *path)
{
	struct vl_listener *vl;

	if ((vl = calloc(1, sizeof *vl)) == NULL)
		return -ENOMEM;
	vl->l = evconnlistener_new(s->base, vl_accept_cb, s,
	    LEV_OPT_CLOSE_ON_FREE, -1, fd);
	if (vl->l == NULL || (path != NULL &&
	    (vl->path = strdup(path)) == NULL)) {
		if (vl->l != NULL)
			evconnlistener_free(vl->l);
		free(vl);
		return -ENOMEM;
	}
	evconnlistener_set_error_cb(vl->l, vl_accept_error_cb);
	TAILQ_INSERT_TAIL(&s->listeners, vl, entry);
	return 0;
}

int
vl_server_listen_fd(struct vl_server *s, int fd)
{
	int r;

	if ((r = util_fd_nonblock_cloexec(fd)) < 0)
		return r;
	return vl_server_add_listener(s, fd, NULL);
}

/* Bind a new socket at bind_path and listen; path is its name to unlink
 * when the server goes. */
static int
vl_server_bind(struct vl_server *s, const char *bind_path, const char *path)
{
	struct sockaddr_un sun;
	mode_t old;
	int fd, r;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(bind_path) >= sizeof sun.sun_path)
		return -ENAMETOOLONG;
	strcpy(sun.sun_path, bind_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd == -1)
		return -errno;
	/* Create the socket file 0600 from the start: no window. */
	old = umask(0177);
	r = bind(fd, (struct sockaddr *)&sun, sizeof sun);
	umask(old);
	if (r == -1 || listen(fd, 512) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	if ((r = vl_server_add_listener(s, fd, path)) < 0) {
		close(fd);
		unlink(path);
	}
	return r;
}

int
vl_server_listen_path(struct vl_server *s, const char *path)
{
	return vl_server_bind(s, path, path);
}

int
vl_server_listen_at(struct vl_server *s, int dirfd, const char *name,
    const char *path)
{
	char via[sizeof ((struct sockaddr_un *)0)->sun_path];
	int n;

	/* The directory's name could be made to point elsewhere after it
	 * was checked; the descriptor cannot. */
	n = snprintf(via, sizeof via, "/proc/self/fd/%d/%s", dirfd, name);
	if (n < 0 || (size_t)n >= sizeof via ||
	    access("/proc/self/fd", X_OK) == -1)
		return vl_server_bind(s, path, path);
	return vl_server_bind(s, via, path);
}

void
vl_server_flush(struct vl_server *s, int timeout_ms)
{
	int64_t deadline = util_mono_us() + (int64_t)timeout_ms * 1000;
	struct evbuffer *out;
	struct pollfd pfd;
	struct vl_conn *c;
	int64_t left;

	TAILQ_FOREACH(c, &s->conns, entry) {
		out = bufferevent_get_output(c->bev);
		pfd.fd = bufferevent_getfd(c->bev);
		pfd.events = POLLOUT;
		evbuffer_unfreeze(out, 1);
		while (evbuffer_get_length(out) > 0) {
			if (evbuffer_write(out, pfd.fd) < 0 &&
			    errno != EAGAIN && errno != EINTR)
				break;
			if (evbuffer_get_length(out) == 0)
				break;
			left = (deadline - util_mono_us()) / 1000;
			if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
				break;
		}
		evbuffer_freeze(out, 1);
	}
}

void
vl_server_free(struct vl_server *s)
{
	struct vl_listener *vl;
	struct vl_conn *c;

	if (s == NULL)
		return;
	while ((vl = TAILQ_FIRST(&s->listeners)) != NULL) {
		TAILQ_REMOVE(&s->listeners, vl, entry);
		evconnlistener_free(vl->l);
		if (vl->path != NULL)
			unlink(vl->path);
		free(vl->path);
		free(vl);
	}
	while ((c = TAILQ_FIRST(&s->conns)) != NULL)
		vl_conn_close(c);
	/* Handlers had their cancel callbacks; whatever remains is ours. */
	while ((c = TAILQ_FIRST(&s->dead)) != NULL) {
		struct vl_call *call;

		while ((call = TAILQ_FIRST(&c->calls)) != NULL) {
			TAILQ_REMOVE(&c->calls, call, entry);
			vl_call_free(call);
		}
		TAILQ_REMOVE(&s->dead, c, entry);
		free(c);
	}
	if (s->reap_ev != NULL)
		event_free(s->reap_ev);
	if (s->flush_ev != NULL)
		event_free(s->flush_ev);
	if (s->accept_retry_ev != NULL)
		event_free(s->accept_retry_ev);
	free(s);
}
