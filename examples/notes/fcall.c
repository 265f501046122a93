/*
 * fcall: libferry calls from a GLib main loop (see fcall.h).
 *
 * Invariants: at most one call is on the wire (inflight); the queue holds
 * the calls not sent yet, oldest first, at most FCALL_QUEUE_MAX in all; the
 * descriptor source exists exactly while the connection is open.  With one
 * call on the wire, a readable descriptor means its reply (or EOF) is
 * arriving, so ferry_recv reads only what ferryd is already sending; with
 * none, readable means ferryd closed the connection.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>
#include <glib-unix.h>

#include "ferry.h"
#include "fcall.h"

struct pending {
	char		*method;
	char		*params;	/* JSON text */
	fcall_done_fn	 done;
	void		*arg;
};

struct fcall {
	char		*socket;
	ferry		*f;
	guint		 src;
	GQueue		 queue;		/* struct pending *, not sent yet */
	struct pending	*inflight;
	fcall_lost_fn	 lost;
	void		*lost_arg;
};

static void	fcall_send_next(struct fcall *);

static void
pending_free(struct pending *p)
{
	if (p == NULL)
		return;
	g_free(p->method);
	free(p->params);
	g_free(p);
}

/* Run p's callback with a failure that did not come from a reply. */
static void
pending_fail(struct pending *p, int r, const char *msg)
{
	struct fcall_result res = { r, NULL, NULL, NULL, msg };

	if (p->done != NULL)
		p->done(&res, p->arg);
	pending_free(p);
}

/* Close the connection, fail everything queued, say why once. */
static void
fcall_drop(struct fcall *fc, int r, const char *why)
{
	struct pending *p;
	char *msg = g_strdup(why);

	if (fc->src != 0) {
		g_source_remove(fc->src);
		fc->src = 0;
	}
	ferry_close(fc->f);
	fc->f = NULL;
	if (fc->inflight != NULL) {
		p = fc->inflight;
		fc->inflight = NULL;
		pending_fail(p, r, msg);
	}
	while ((p = g_queue_pop_head(&fc->queue)) != NULL)
		pending_fail(p, r, msg);
	if (fc->lost != NULL && r != -ECANCELED)
		fc->lost(msg, fc->lost_arg);
	g_free(msg);
}

/* The reply to the call in flight, handed to its callback. */
static void
fcall_take_reply(struct fcall *fc)
{
	struct fcall_result res = { 0, NULL, NULL, NULL, NULL };
	struct pending *p = fc->inflight;
	json_error_t jerr;
	char *text = NULL;
	const char *ep;
	int r, continues = 0;

	r = ferry_recv(fc->f, &text, &continues);
	if (r < 0 && ferry_errname(fc->f) == NULL) {
		fcall_drop(fc, r, ferry_errmsg(fc->f));
		return;
	}
	fc->inflight = NULL;
	res.r = r;
	if (r >= 0) {
		res.reply = json_loads(text, JSON_REJECT_DUPLICATES, &jerr);
		if (res.reply == NULL) {
			res.r = -EPROTO;
			res.msg = "reply is not JSON";
		}
	} else {
		res.errname = ferry_errname(fc->f);
		res.msg = ferry_errmsg(fc->f);
		if ((ep = ferry_errparams(fc->f)) != NULL)
			res.errparams = json_loads(ep, 0, &jerr);
	}
	if (p->done != NULL)
		p->done(&res, p->arg);
	json_decref(res.reply);
	json_decref(res.errparams);
	free(text);
	pending_free(p);
}

static gboolean
fcall_readable_cb(gint fd, GIOCondition cond, gpointer data)
{
	struct fcall *fc = data;

	if (fc->inflight == NULL) {
		/* Nothing asked: only EOF or garbage can be here. */
		fc->src = 0;
		fcall_drop(fc, -ECONNRESET, "ferryd closed the connection");
		return G_SOURCE_REMOVE;
	}
	fcall_take_reply(fc);
	if (fc->f == NULL)
		return G_SOURCE_REMOVE;
	fcall_send_next(fc);
	return fc->src != 0 ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}

/* Connect if not connected.  Returns 0 or -errno (message in ret_msg). */
static int
fcall_open(struct fcall *fc, char **ret_msg)
{
	int r;

	if (fc->f != NULL)
		return 0;
	if ((r = ferry_connect(fc->socket, &fc->f)) < 0) {
		*ret_msg = g_strdup(ferry_errmsg(NULL));
		return r;
	}
	fc->src = g_unix_fd_add(ferry_fd(fc->f), G_IO_IN | G_IO_HUP | G_IO_ERR,
	    fcall_readable_cb, fc);
	return 0;
}

/* Put the oldest queued call on the wire if none is. */
static void
fcall_send_next(struct fcall *fc)
{
	struct pending *p;
	int r;

	if (fc->inflight != NULL || fc->f == NULL)
		return;
	if ((p = g_queue_pop_head(&fc->queue)) == NULL)
		return;
	if ((r = ferry_send(fc->f, p->method, p->params)) < 0 ||
	    (r = ferry_flush(fc->f)) < 0) {
		fc->inflight = p;
		fcall_drop(fc, r, ferry_errmsg(fc->f));
		return;
	}
	fc->inflight = p;
}

struct fcall *
fcall_new(const char *socket_path, fcall_lost_fn lost, void *arg)
{
	struct fcall *fc = g_new0(struct fcall, 1);

	fc->socket = g_strdup(socket_path);
	fc->lost = lost;
	fc->lost_arg = arg;
	g_queue_init(&fc->queue);
	return fc;
}

void
fcall_free(struct fcall *fc)
{
	if (fc == NULL)
		return;
	fcall_drop(fc, -ECANCELED, "closing");
	g_free(fc->socket);
	g_free(fc);
}

int
fcall_connected(const struct fcall *fc)
{
	return fc->f != NULL;
}

void
fcall_call(struct fcall *fc, const char *method, json_t *params,
    fcall_done_fn done, void *arg)
{
	struct pending *p;
	char *msg = NULL;
	int r;

	p = g_new0(struct pending, 1);
	p->method = g_strdup(method);
	p->done = done;
	p->arg = arg;
	p->params = params != NULL ? json_dumps(params, JSON_COMPACT) :
	    strdup("{}");
	json_decref(params);
	if (p->params == NULL) {
		pending_fail(p, -ENOMEM, "out of memory");
		return;
	}
	if (g_queue_get_length(&fc->queue) + (fc->inflight != NULL) >=
	    FCALL_QUEUE_MAX) {
		pending_fail(p, -ENOBUFS, "too many calls waiting for ferryd");
		return;
	}
	if ((r = fcall_open(fc, &msg)) < 0) {
		pending_fail(p, r, msg);
		g_free(msg);
		return;
	}
	g_queue_push_tail(&fc->queue, p);
	fcall_send_next(fc);
}
