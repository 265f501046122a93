/*
 * http: an asynchronous HTTP client: libcurl's multi interface driven by the
 * caller's libevent loop (curl's socket and timer callbacks become events),
 * so no call here blocks and no thread is needed.
 *
 * A request is started with http_start() and ends with exactly one call of
 * its done callback, from the event loop (never from inside http_start),
 * unless it is cancelled first with http_cancel(), after which the callback
 * is never called.  Connections are reused between requests (keep-alive).
 *
 * Ownership: http_start copies the method, URL, headers and body; the
 * response body passed to the callback is valid only during the call.
 * http_free cancels everything outstanding and accepts NULL.
 */
#ifndef FERRY_HTTP_H
#define FERRY_HTTP_H

#include <stddef.h>

#include <event2/event.h>

#define HTTP_RESPONSE_MAX	(64u * 1024 * 1024)

struct http;
struct http_req;

struct http_result {
	int		 err;		/* 0, or -errno: transport failed */
	const char	*errmsg;	/* curl's words when err != 0 */
	long		 status;	/* HTTP status when err == 0 */
	const char	*body;		/* NUL-terminated */
	size_t		 len;
};

typedef void (*http_done_fn)(struct http_req *req,
	    const struct http_result *res, void *arg);

int	http_new(struct event_base *base, struct http **ret);
void	http_free(struct http *h);

/*
 * Start method on url with extra headers (NULL-terminated "Name: value"
 * strings, may be NULL) and body (may be NULL).  timeout_ms bounds the whole
 * transfer (0: none), connect_timeout_ms the connection (curl keeps that
 * timer armed for the transfer's life, so a long-poll should pass its
 * whole timeout here, or it wakes the loop once for nothing).  Returns 0
 * and *ret (may be NULL to discard), or -ENOMEM / -EINVAL.
 */
int	http_start(struct http *h, const char *method, const char *url,
	    const char *const *headers, const void *body, size_t len,
	    long timeout_ms, long connect_timeout_ms, http_done_fn cb,
	    void *arg, struct http_req **ret);
/* Abort a request; its callback will not be called.  Accepts NULL. */
void	http_cancel(struct http_req *req);

#endif
