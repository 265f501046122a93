/*
 * srv_conn: the connections of ferry-server's HTTP front, and what they
 * may cost before a request reaches srv_http.
 *
 * evhttp (libevent 2.1) accepts without limit, reads a whole body before
 * any handler runs and spins on accept() when descriptors run out.  This
 * module puts bounds around it without replacing it:
 *
 *   - Connections are counted from accept to close, at most
 *     max_connections.  At the cap the connection idle longest (no request
 *     in hand: between requests, or still sending its headers) is closed
 *     to make room; if every one is busy, accepting pauses until one
 *     closes.
 *   - accept() failing with EMFILE, ENFILE, ENOBUFS or ENOMEM closes a few
 *     idle connections and pauses accepting (briefly if that freed some,
 *     else for SRV_CONN_BACKOFF_MS) instead of retrying at once; the failure is logged at most once a
 *     second, with the number of repeats left out.
 *   - Every connection reads through a bufferevent filter that holds a
 *     request's header block until it is complete (at most
 *     SRV_CONN_HEADERS_MAX bytes) and decides there, before one byte of
 *     the body is read: a body needs a Content-Length (no
 *     Transfer-Encoding) within body_max, an Authorization header whose
 *     form, key and timestamp pass auth_header_precheck and whose key
 *     admit_key accepts, and room in the max_inflight bytes of bodies
 *     admitted at once across all connections.  A refused request reaches
 *     evhttp without its body and with a SRV_CONN_ADMISSION header saying
 *     why; srv_conn_request reports it so srv_http answers it.  The
 *     rest of what the client sends is discarded unread; once the answer
 *     is out the server half-closes (FIN) and the connection ends when
 *     the client closes or after SRV_CONN_LINGER_S seconds: closing at
 *     once would reset it under a client still sending, and lose the
 *     answer.  A client cannot forge the header: it is removed from every
 *     header block.
 *   - The filter also checks the request line and the header lines by RFC
 *     9112 before evhttp parses them, so that nothing reaches evhttp that
 *     it would answer itself (with an HTML page): a malformed request line
 *     or header line is 400, a method evhttp does not know (or CONNECT)
 *     501, an HTTP version other than 1.x 505, a header section over
 *     SRV_CONN_HEADERS_MAX bytes 431, an Expect other than 100-continue
 *     417.  Such a request reaches evhttp as a stand-in "GET / HTTP/1.1"
 *     (HEAD if the client's method was HEAD, so the answer is framed as
 *     it expects) with the SRV_CONN_ADMISSION header, and the connection
 *     ends as for any refusal.  Empty lines before a request line are
 *     ignored (RFC 9112 section 2.2); they count against the bound.
 *   - An admitted body's bytes count against max_inflight until the
 *     request is answered or its connection closes.
 *
 * The signature itself covers the body and is checked by srv_http when the
 * body is in; a key that passes here is only known, not proven.
 *
 * Runs on the caller's event_base; nothing here blocks.  Requests are
 * logged by srv_http; this module logs accept failures and evictions,
 * rate-limited.
 */
#ifndef FERRY_SRV_CONN_H
#define FERRY_SRV_CONN_H

#include <stdbool.h>
#include <stddef.h>

#include <event2/event.h>
#include <event2/http.h>

#define SRV_CONN_HEADERS_MAX	(64 * 1024)
#define SRV_CONN_BACKOFF_MS	100
#define SRV_CONN_LINGER_S	5	/* a refused connection, at most */
#define SRV_CONN_MAX_DEFAULT	1024
#define SRV_CONN_FD_RESERVE	64	/* descriptors kept for the rest */
#define SRV_CONN_INFLIGHT_MIB	64	/* default max_inflight, MiB */
#define SRV_CONN_ADMISSION	"Ferry-Admission"

struct srv_conns_config {
	int	 max_connections;	/* <= 0: srv_conn_default_max() */
	size_t	 max_inflight;		/* body bytes admitted at once */
	size_t	 body_max;		/* largest body of one request */
	/* true if requests signed by key may send a body */
	bool	(*admit_key)(void *arg, const char *key);
	void	*arg;
};

struct srv_conns;

/* min(SRV_CONN_MAX_DEFAULT, RLIMIT_NOFILE - SRV_CONN_FD_RESERVE), >= 1. */
int	srv_conn_default_max(void);
/*
 * Manage http's connections (http and base are borrowed and must outlive
 * the result, except that srv_conns_free may come after evhttp_free).
 * 0 or -ENOMEM.
 */
int	srv_conns_new(struct event_base *base, struct evhttp *http,
	    const struct srv_conns_config *cfg, struct srv_conns **ret);
/* Watch bound's listener for accept failures.  0 or -EINVAL. */
int	srv_conns_listen(struct srv_conns *cs,
	    struct evhttp_bound_socket *bound);
/* The listener is about to go (evhttp_del_accept_socket). */
void	srv_conns_unlisten(struct srv_conns *cs);
/*
 * Called by the request handler first: marks req's connection busy until
 * req is answered.  Returns 0 if the request was admitted, or the HTTP
 * status to refuse it with and *ret_reason (valid while req is); the
 * caller answers it, and the connection is then closed.
 */
int	srv_conn_request(struct srv_conns *cs, struct evhttp_request *req,
	    const char **ret_reason);
/* Connections open now (for logs and tests). */
int	srv_conns_count(const struct srv_conns *cs);
void	srv_conns_free(struct srv_conns *cs);

#endif
