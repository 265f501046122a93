/*
 * connflood: many raw TCP connections to ferry-server at once, for the
 * end-to-end tests of its resource bounds (t1007, t1008).
 *
 *   connflood [--hold SECONDS] PORT idle N
 *	opens N connections to 127.0.0.1:PORT that send nothing, prints
 *	"open K" (how many were established within 10 s) and holds them.
 *   connflood [--hold SECONDS] PORT upload N SEND DECLARED [HEADER...]
 *	opens N connections; each sends "POST /v1/push HTTP/1.1" with
 *	"Content-Length: DECLARED" and the HEADERs given ("Name: value"),
 *	then up to SEND bytes of body for as long as the server takes them
 *	(at most 30 s), reading whatever the server answers.  Then prints
 *	"done sent BYTES answered K" and one "status CODE COUNT" line per
 *	status seen, and holds the connections still open.
 *
 * Holding ends after --hold seconds (default 60) or at SIGTERM; nothing
 * is printed then.  The soft descriptor limit is raised to the hard one
 * first.  Exit status 0, 1 on a system error, 2 on usage errors.
 */
#include "autoconfig.h"

#include <sys/resource.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define CONNECT_MS	10000
#define UPLOAD_MS	30000
#define CODES		600

struct conn {
	int		fd;
	bool		connected;
	bool		finished;	/* nothing more to send */
	bool		closed;
	char		*head;		/* request line and headers */
	size_t		head_len;
	size_t		head_off;
	uint64_t	body_sent;
	char		reply[16];
	size_t		reply_len;
	int		status;
};

static volatile sig_atomic_t stop;

static void
on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void
usage(void)
{
	fprintf(stderr, "usage: connflood [--hold SECONDS] PORT idle N\n"
	    "       connflood [--hold SECONDS] PORT upload N SEND DECLARED "
	    "[HEADER...]\n");
	exit(2);
}

static long
number(const char *s)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < 0)
		usage();
	return v;
}

static int64_t
now_ms(void)
{
	return util_mono_us() / 1000;
}

static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		(void)setrlimit(RLIMIT_NOFILE, &rl);
	}
}

/* Start a non-blocking connect; -1 on a system error. */
static int
open_one(struct conn *c, int port)
{
	struct sockaddr_in sin;

	memset(c, 0, sizeof *c);
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c->fd, (struct sockaddr *)&sin, sizeof sin) == -1 &&
	    errno != EINPROGRESS)
		return -1;
	return 0;
}

static void
close_one(struct conn *c)
{
	if (!c->closed) {
		close(c->fd);
		c->closed = true;
	}
	c->finished = true;
}

/* Wait until every connection is established or CONNECT_MS pass. */
static size_t
connect_all(struct conn *cs, size_t n, struct pollfd *pfd)
{
	int64_t end = now_ms() + CONNECT_MS;
	size_t i, k, open = 0;
	socklen_t len;
	int err;

	for (;;) {
		for (i = 0, k = 0; i < n; i++) {
			if (cs[i].connected || cs[i].closed)
				continue;
			pfd[k].fd = cs[i].fd;
			pfd[k].events = POLLOUT;
			k++;
		}
		if (k == 0 || now_ms() >= end || stop)
			break;
		if (poll(pfd, k, 100) < 0 && errno != EINTR)
			return open;
		for (i = 0, k = 0; i < n; i++) {
			if (cs[i].connected || cs[i].closed)
				continue;
			if (pfd[k].revents != 0) {
				len = sizeof err;
				err = 0;
				getsockopt(cs[i].fd, SOL_SOCKET, SO_ERROR, &err,
				    &len);
				if (err == 0) {
					cs[i].connected = true;
					open++;
				} else
					close_one(&cs[i]);
			}
			k++;
		}
	}
	return open;
}

/* Read what the server says; note its status line. */
static void
read_reply(struct conn *c)
{
	char buf[4096];
	ssize_t r;

	while ((r = read(c->fd, buf, sizeof buf)) > 0) {
		if (c->reply_len < sizeof c->reply - 1) {
			size_t take = (size_t)r;

			if (take > sizeof c->reply - 1 - c->reply_len)
				take = sizeof c->reply - 1 - c->reply_len;
			memcpy(c->reply + c->reply_len, buf, take);
			c->reply_len += take;
			c->reply[c->reply_len] = '\0';
			if (c->reply_len >= 12 &&
			    strncmp(c->reply, "HTTP/1.", 7) == 0)
				c->status = atoi(c->reply + 9);
		}
	}
	if (r == 0 || (r < 0 && errno != EAGAIN && errno != EINTR))
		close_one(c);
	else if (c->status != 0)
		c->finished = true;	/* answered: stop sending */
}

/* Send the header block, then body bytes up to send_max. */
static void
write_some(struct conn *c, uint64_t send_max)
{
	static char body[65536];
	size_t want;
	ssize_t w;

	if (body[0] != 'x')
		memset(body, 'x', sizeof body);
	while (!c->finished) {
		if (c->head_off < c->head_len)
			w = write(c->fd, c->head + c->head_off,
			    c->head_len - c->head_off);
		else {
			want = sizeof body;
			if (send_max - c->body_sent < want)
				want = (size_t)(send_max - c->body_sent);
			if (want == 0) {
				c->finished = true;
				return;
			}
			w = write(c->fd, body, want);
		}
		if (w < 0) {
			if (errno != EAGAIN && errno != EINTR)
				c->finished = true;	/* reset: read why */
			return;
		}
		if (c->head_off < c->head_len)
			c->head_off += (size_t)w;
		else
			c->body_sent += (uint64_t)w;
	}
}

static void
upload(struct conn *cs, size_t n, struct pollfd *pfd, uint64_t send_max)
{
	int64_t end = now_ms() + UPLOAD_MS;
	size_t i, k;

	for (;;) {
		for (i = 0, k = 0; i < n; i++) {
			if (cs[i].closed || (cs[i].finished &&
			    cs[i].status != 0))
				continue;
			pfd[k].fd = cs[i].fd;
			pfd[k].events = POLLIN | (cs[i].finished ? 0 : POLLOUT);
			k++;
		}
		/* Done when every connection has sent all or was answered
		 * or closed; those sent in full may wait for an answer no
		 * longer. */
		for (i = 0; i < n; i++)
			if (!cs[i].finished)
				break;
		if (i == n || k == 0 || now_ms() >= end || stop)
			break;
		if (poll(pfd, k, 100) < 0 && errno != EINTR)
			return;
		for (i = 0, k = 0; i < n; i++) {
			if (cs[i].closed || (cs[i].finished &&
			    cs[i].status != 0))
				continue;
			if (pfd[k].revents & (POLLIN | POLLHUP | POLLERR))
				read_reply(&cs[i]);
			if (!cs[i].closed && (pfd[k].revents & POLLOUT))
				write_some(&cs[i], send_max);
			k++;
		}
	}
	/* Answers that came with the last bytes. */
	for (i = 0; i < n; i++)
		if (!cs[i].closed && cs[i].status == 0)
			read_reply(&cs[i]);
}

int
main(int argc, char **argv)
{
	struct conn *cs;
	struct pollfd *pfd;
	long hold = 60, port, n, counts[CODES];
	uint64_t send_max = 0, declared = 0, sent = 0;
	size_t i, answered = 0, open;
	bool up;
	int64_t end;
	char *head;
	size_t hlen;
	FILE *f;
	int a;

	if (argc > 2 && strcmp(argv[1], "--hold") == 0) {
		hold = number(argv[2]);
		argv += 2;
		argc -= 2;
	}
	if (argc < 4)
		usage();
	port = number(argv[1]);
	up = strcmp(argv[2], "upload") == 0;
	if (!up && strcmp(argv[2], "idle") != 0)
		usage();
	n = number(argv[3]);
	if (port < 1 || port > 65535 || n < 1 || n > 100000 ||
	    (up && argc < 6) || (!up && argc != 4))
		usage();
	if (up) {
		send_max = (uint64_t)number(argv[4]);
		declared = (uint64_t)number(argv[5]);
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	raise_nofile();

	/* The request's header block, the same for every connection. */
	head = NULL;
	hlen = 0;
	if ((f = open_memstream(&head, &hlen)) == NULL)
		return 1;
	fprintf(f, "POST /v1/push HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\n"
	    "Content-Type: application/json\r\nContent-Length: %llu\r\n",
	    port, (unsigned long long)declared);
	for (a = 6; up && a < argc; a++)
		fprintf(f, "%s\r\n", argv[a]);
	fprintf(f, "\r\n");
	fclose(f);

	if ((cs = calloc((size_t)n, sizeof *cs)) == NULL ||
	    (pfd = calloc((size_t)n, sizeof *pfd)) == NULL)
		return 1;
	for (i = 0; i < (size_t)n; i++) {
		if (open_one(&cs[i], (int)port) < 0) {
			fprintf(stderr, "connflood: connection %zu: %s\n", i,
			    strerror(errno));
			return 1;
		}
		cs[i].head = head;
		cs[i].head_len = hlen;
	}
	open = connect_all(cs, (size_t)n, pfd);
	if (!up) {
		printf("open %zu\n", open);
	} else {
		upload(cs, (size_t)n, pfd, send_max);
		memset(counts, 0, sizeof counts);
		for (i = 0; i < (size_t)n; i++) {
			sent += cs[i].body_sent;
			if (cs[i].status > 0 && cs[i].status < CODES) {
				counts[cs[i].status]++;
				answered++;
			}
		}
		printf("done sent %llu answered %zu\n",
		    (unsigned long long)sent, answered);
		for (a = 0; a < CODES; a++)
			if (counts[a] > 0)
				printf("status %d %ld\n", a, counts[a]);
	}
	fflush(stdout);
	end = now_ms() + hold * 1000;
	while (!stop && now_ms() < end)
		(void)poll(NULL, 0, 100);
	for (i = 0; i < (size_t)n; i++)
		if (!cs[i].closed)
			close(cs[i].fd);
	free(cs);
	free(pfd);
	free(head);
	return 0;
}
