/*
 * sync_http: the sync engine's default transport (struct sync_transport,
 * sync.h): lib/http, libcurl multi on the daemon's event loop, with each
 * request signed by the device key (lib/auth, DESIGN "Remote protocol v1").
 *
 * A request is a small wrapper around lib/http's, kept on a list so that
 * freeing the transport cancels what is under way and frees the wrappers
 * whose callbacks will now never run.  Nothing here blocks; nothing here
 * knows what the engine asks for: that is sync_push.c's and sync_pull.c's.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include "auth.h"
#include "http.h"
#include "sync_int.h"
#include "util.h"

struct sync_http {
	struct http		*http;
	const struct keys	*keys;		/* borrowed */
	char			*remote;	/* no trailing slash */
	TAILQ_HEAD(, sync_req)	 reqs;
};

struct sync_req {
	struct sync_http	*h;
	struct http_req		*req;
	sync_req_done_fn	 cb;
	void			*arg;
	TAILQ_ENTRY(sync_req)	 entry;
};

static void
sync_http_req_free(struct sync_req *rq)
{
	TAILQ_REMOVE(&rq->h->reqs, rq, entry);
	free(rq);
}

static void
sync_http_done_cb(struct http_req *req, const struct http_result *res,
    void *arg)
{
	struct sync_req *rq = arg;
	sync_req_done_fn cb = rq->cb;
	void *cb_arg = rq->arg;

	/* Gone before the callback, which may start the next request. */
	sync_http_req_free(rq);
	cb(res, cb_arg);
}

static int
sync_http_start(void *ctx, const char *method, const char *path_query,
    const char *body, size_t len, long timeout_ms, long connect_timeout_ms,
    sync_req_done_fn cb, void *arg, struct sync_req **ret)
{
	struct sync_http *h = ctx;
	struct sync_req *rq;
	const char *headers[3];
	char *auth = NULL, *hdr = NULL, *url = NULL;
	int r;

	if ((rq = calloc(1, sizeof *rq)) == NULL)
		return -ENOMEM;
	if ((r = auth_header_make(h->keys, method, path_query, body, len,
	    util_now_ms() / 1000, &auth)) < 0)
		goto out;
	if (asprintf(&hdr, "Authorization: %s", auth) < 0 ||
	    asprintf(&url, "%s%s", h->remote, path_query) < 0) {
		hdr = url = NULL;
		r = -ENOMEM;
		goto out;
	}
	headers[0] = hdr;
	headers[1] = "Content-Type: application/json";
	headers[2] = NULL;
	rq->h = h;
	rq->cb = cb;
	rq->arg = arg;
	if ((r = http_start(h->http, method, url, headers, body, len,
	    timeout_ms, connect_timeout_ms, sync_http_done_cb, rq,
	    &rq->req)) < 0)
		goto out;
	TAILQ_INSERT_TAIL(&h->reqs, rq, entry);
	if (ret != NULL)
		*ret = rq;
	rq = NULL;
out:
	free(rq);
	free(auth);
	free(hdr);
	free(url);
	return r;
}

static void
sync_http_cancel(void *ctx, struct sync_req *rq)
{
	if (rq == NULL)
		return;
	http_cancel(rq->req);
	sync_http_req_free(rq);
}

static void
sync_http_free(void *ctx)
{
	struct sync_http *h = ctx;
	struct sync_req *rq;

	if (h == NULL)
		return;
	while ((rq = TAILQ_FIRST(&h->reqs)) != NULL)
		sync_http_cancel(h, rq);
	http_free(h->http);
	free(h->remote);
	free(h);
}

int
sync_http_new(struct event_base *base, const struct keys *keys,
    const char *remote, struct sync_transport *ret)
{
	struct sync_http *h;
	size_t n;
	int r;

	if ((h = calloc(1, sizeof *h)) == NULL)
		return -ENOMEM;
	TAILQ_INIT(&h->reqs);
	h->keys = keys;
	if ((h->remote = strdup(remote)) == NULL) {
		free(h);
		return -ENOMEM;
	}
	n = strlen(h->remote);
	while (n > 0 && h->remote[n - 1] == '/')
		h->remote[--n] = '\0';
	if ((r = http_new(base, &h->http)) < 0) {
		sync_http_free(h);
		return r;
	}
	ret->start = sync_http_start;
	ret->cancel = sync_http_cancel;
	ret->free = sync_http_free;
	ret->ctx = h;
	return 0;
}
