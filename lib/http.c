/*
 * http: libcurl multi over libevent; see http.h.
 *
 * curl tells us, per socket, what to wait for (CURLMOPT_SOCKETFUNCTION) and
 * when it next needs a timeout (CURLMOPT_TIMERFUNCTION); we mirror that in
 * one event per socket and one timer, and hand readiness back with
 * curl_multi_socket_action().  Finished transfers are collected with
 * curl_multi_info_read() after each action, outside curl's callbacks, so a
 * done callback may start or cancel requests freely.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/queue.h>

#include <curl/curl.h>

#include "http.h"
#include "log.h"

struct http {
	struct event_base	*base;
	CURLM			*multi;
	struct event		*timer;
	int			 running;
	TAILQ_HEAD(, http_req)	 reqs;
};

struct http_req {
	struct http		*h;
	CURL			*easy;
	struct curl_slist	*headers;
	char			*body;
	char			*resp;
	size_t			 resp_len;
	size_t			 resp_cap;
	bool			 too_big;
	char			 errbuf[CURL_ERROR_SIZE];
	http_done_fn		 cb;
	void			*arg;
	bool			 listed;
	TAILQ_ENTRY(http_req)	 entry;
};

struct http_sock {
	struct event	*ev;
};

static void http_check_done(struct http *h);

static void
http_req_free(struct http_req *req)
{
	if (req == NULL)
		return;
	if (req->listed)
		TAILQ_REMOVE(&req->h->reqs, req, entry);
	if (req->easy != NULL) {
		curl_multi_remove_handle(req->h->multi, req->easy);
		curl_easy_cleanup(req->easy);
	}
	curl_slist_free_all(req->headers);
	free(req->body);
	free(req->resp);
	free(req);
}

static void
http_sock_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;
	int flags = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	curl_multi_socket_action(h->multi, fd, flags, &h->running);
	http_check_done(h);
}

static void
http_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct http *h = arg;

	curl_multi_socket_action(h->multi, CURL_SOCKET_TIMEOUT, 0, &h->running);
	http_check_done(h);
}

static int
http_curl_socket(CURL *easy, curl_socket_t s, int what, void *userp,
    void *socketp)
{
	struct http *h = userp;
	struct http_sock *hs = socketp;
	short kind;

	if (what == CURL_POLL_REMOVE) {
		if (hs != NULL) {
			event_free(hs->ev);
			free(hs);
			curl_multi_assign(h->multi, s, NULL);
		}
		return 0;
	}
	kind = EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
	    ((what & CURL_POLL_OUT) ? EV_WRITE : 0);
	if (hs == NULL) {
		if ((hs = calloc(1, sizeof *hs)) == NULL)
			return -1;
		curl_multi_assign(h->multi, s, hs);
	} else {
		event_free(hs->ev);
	}
	hs->ev = event_new(h->base, s, kind, http_sock_cb, h);
	if (hs->ev == NULL)
		return -1;
	event_add(hs->ev, NULL);
	return 0;
}

static int
http_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
	struct http *h = userp;
	struct timeval tv;

	if (timeout_ms < 0) {
		evtimer_del(h->timer);
		return 0;
	}
	tv.tv_sec = timeout_ms / 1000;
	tv.tv_usec = (timeout_ms % 1000) * 1000;
	evtimer_add(h->timer, &tv);
	return 0;
}

static size_t
http_write_cb(char *data, size_t size, size_t n, void *arg)
{
	struct http_req *req = arg;
	size_t len = size * n, cap;
	char *p;

	if (req->resp_len + len + 1 > HTTP_RESPONSE_MAX) {
		req->too_big = true;
		return 0;	/* aborts the transfer */
	}
	if (req->resp_len + len + 1 > req->resp_cap) {
		cap = req->resp_cap ? req->resp_cap : 4096;
		while (cap < req->resp_len + len + 1)
			cap *= 2;
		if ((p = realloc(req->resp, cap)) == NULL)
			return 0;
		req->resp = p;
		req->resp_cap = cap;
	}
	memcpy(req->resp + req->resp_len, data, len);
	req->resp_len += len;
	req->resp[req->resp_len] = '\0';
	return len;
}

static int
http_errno(CURLcode rc)
{
	switch (rc) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY:
		return -EHOSTUNREACH;
	case CURLE_COULDNT_CONNECT:
		return -ECONNREFUSED;
	case CURLE_OPERATION_TIMEDOUT:
		return -ETIMEDOUT;
	case CURLE_OUT_OF_MEMORY:
		return -ENOMEM;
	case CURLE_WRITE_ERROR:
		return -EFBIG;
	case CURLE_URL_MALFORMAT:
	case CURLE_UNSUPPORTED_PROTOCOL:
		return -EINVAL;
	default:
		return -EIO;
	}
}

static void
http_check_done(struct http *h)
{
	struct http_result res;
	struct http_req *req;
	CURLMsg *msg;
	int left;

	while ((msg = curl_multi_info_read(h->multi, &left)) != NULL) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE,
		    (char **)&req);
		memset(&res, 0, sizeof res);
		if (msg->data.result != CURLE_OK) {
			res.err = req->too_big ? -EFBIG :
			    http_errno(msg->data.result);
			res.errmsg = req->too_big ? "response too large" :
			    req->errbuf[0] != '\0' ? req->errbuf :
			    curl_easy_strerror(msg->data.result);
		} else
			curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE,
			    &res.status);
		res.body = req->resp != NULL ? req->resp : "";
		res.len = req->resp_len;
		curl_multi_remove_handle(h->multi, req->easy);
		req->cb(req, &res, req->arg);
		http_req_free(req);
	}
}

int
http_new(struct event_base *base, struct http **ret)
{
	struct http *h;

	if ((h = calloc(1, sizeof *h)) == NULL)
		return -ENOMEM;
	h->base = base;
	TAILQ_INIT(&h->reqs);
	h->multi = curl_multi_init();
	h->timer = evtimer_new(base, http_timer_cb, h);
	if (h->multi == NULL || h->timer == NULL) {
		http_free(h);
		return -ENOMEM;
	}
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETFUNCTION, http_curl_socket);
	curl_multi_setopt(h->multi, CURLMOPT_SOCKETDATA, h);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERFUNCTION, http_curl_timer);
	curl_multi_setopt(h->multi, CURLMOPT_TIMERDATA, h);
	*ret = h;
	return 0;
}

int
http_start(struct http *h, const char *method, const char *url,
    const char *const *headers, const void *body, size_t len,
    long timeout_ms, long connect_timeout_ms, http_done_fn cb, void *arg,
    struct http_req **ret)
{
	struct curl_slist *l;
	struct http_req *req;
	CURL *e;
	size_t i;

	if ((req = calloc(1, sizeof *req)) == NULL)
		return -ENOMEM;
	req->h = h;
	req->cb = cb;
	req->arg = arg;
	if ((req->easy = e = curl_easy_init()) == NULL)
		goto nomem;
	for (i = 0; headers != NULL && headers[i] != NULL; i++) {
		if ((l = curl_slist_append(req->headers, headers[i])) == NULL)
			goto nomem;
		req->headers = l;
	}
	/* No "Expect: 100-continue" round trip before a push body. */
	if ((l = curl_slist_append(req->headers, "Expect:")) == NULL)
		goto nomem;
	req->headers = l;
	if (body != NULL) {
		if ((req->body = malloc(len + 1)) == NULL)
			goto nomem;
		memcpy(req->body, body, len);
		req->body[len] = '\0';
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, req->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
		    (curl_off_t)len);
	}
	curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "GET") == 0)
		curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
	if (curl_easy_setopt(e, CURLOPT_URL, url) != CURLE_OK)
		goto inval;
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, req->headers);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, http_write_cb);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
	curl_easy_setopt(e, CURLOPT_PRIVATE, req);
	/* Document names may be "." or "..": send paths as they are. */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	if (curl_multi_add_handle(h->multi, e) != CURLM_OK)
		goto nomem;
	TAILQ_INSERT_TAIL(&h->reqs, req, entry);
	req->listed = true;
	if (ret != NULL)
		*ret = req;
	return 0;
inval:
	http_req_free(req);
	return -EINVAL;
nomem:
	http_req_free(req);
	return -ENOMEM;
}

void
http_cancel(struct http_req *req)
{
	http_req_free(req);
}

void
http_free(struct http *h)
{
	struct http_req *req;

	if (h == NULL)
		return;
	while ((req = TAILQ_FIRST(&h->reqs)) != NULL)
		http_req_free(req);
	if (h->multi != NULL)
		curl_multi_cleanup(h->multi);
	if (h->timer != NULL)
		event_free(h->timer);
	free(h);
}
