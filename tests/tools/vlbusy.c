/*
 * vlbusy: is ferryd's loop free while it works on a long call?  For the
 * end-to-end tests of calls that do much work (t2019: History of a long
 * log), with no JSON library: the calls are given as text.
 *
 *   vlbusy SOCKET SLOW-CALL PROBE-CALL [--timeout MS]
 *	Sends SLOW-CALL on one connection and, until its reply is in,
 *	PROBE-CALL on a second connection, back to back: each probe is sent
 *	when the one before is answered, and the first right after
 *	SLOW-CALL.  Prints the slow call's reply on one line, then
 *	"slow_ms S probes P probe_max_ms M": how long the slow call took,
 *	how many probes were answered (the last one's reply may come after
 *	the slow call's) and the longest a probe waited.  A loop that is
 *	free answers probes in a few ms all along; a loop that is busy
 *	with the slow call holds the probe sent meanwhile until it is done.
 *
 *   vlbusy SOCKET SLOW-CALL --close-after MS
 *	Sends SLOW-CALL, prints "sent", and closes the connection MS ms
 *	later without reading: a client that goes while its call is under
 *	way.  Prints "closed after MS ms", or "answered before close" if
 *	the reply came first, or "EOF" if ferryd closed first.
 *
 * Replies are NUL-terminated messages (varlink); at most 64 MiB are read
 * on one connection.  Everything is bounded by --timeout (default 60 s).
 * Exit status: 0 when it went as described (tests assert on the output),
 * 1 on a timeout or a connection closed by ferryd, 2 on usage errors, 3
 * when the socket cannot be reached.
 */
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "toolutil.h"

#define IN_MAX	(64u * 1024 * 1024)

/* One connection: what it has read of the reply it waits for. */
struct peer {
	int	 fd;
	char	*buf;
	size_t	 len;
	size_t	 cap;
};

static void
usage(void)
{
	fprintf(stderr, "usage: vlbusy SOCKET SLOW-CALL PROBE-CALL "
	    "[--timeout MS]\n"
	    "       vlbusy SOCKET SLOW-CALL --close-after MS "
	    "[--timeout MS]\n");
	exit(2);
}

/* Send text and its terminating NUL, whole. */
static void
send_call(int fd, const char *text)
{
	size_t len = strlen(text) + 1, off = 0;
	ssize_t n;

	while (off < len) {
		n = write(fd, text + off, len - off);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			tool_die("write");
		off += (size_t)n;
	}
}

/*
 * Read what is there; true once a whole message is in p->buf (its NUL
 * at p->len - 1).  A closed connection or a message over IN_MAX ends
 * the program.
 */
static bool
read_reply(struct peer *p)
{
	ssize_t n;
	char *v;

	if (p->cap - p->len < 65536) {
		if (p->cap >= IN_MAX) {
			printf("TOO-LONG\n");
			exit(1);
		}
		p->cap = p->cap == 0 ? 65536 * 2 : p->cap * 2;
		if ((v = realloc(p->buf, p->cap)) == NULL)
			tool_die("realloc");
		p->buf = v;
	}
	n = read(p->fd, p->buf + p->len, p->cap - p->len);
	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return false;
	if (n < 0)
		tool_die("read");
	if (n == 0) {
		printf("EOF\n");
		exit(1);
	}
	p->len += (size_t)n;
	return memchr(p->buf + p->len - (size_t)n, '\0', (size_t)n) != NULL;
}

/* Wait for fds' input until deadline (ms, tool_now_ms's clock). */
static void
wait_input(struct pollfd *pfd, nfds_t n, int64_t deadline)
{
	int64_t left = deadline - tool_now_ms();

	if (left <= 0) {
		printf("TIMEOUT\n");
		exit(1);
	}
	if (poll(pfd, n, (int)left) < 0 && errno != EINTR)
		tool_die("poll");
}

static int
close_after(const char *path, const char *slow, long ms, int64_t deadline)
{
	struct peer a = { -1, NULL, 0, 0 };
	struct pollfd pfd;
	int64_t t0, end;

	a.fd = tool_connect(path);
	t0 = tool_now_ms();
	send_call(a.fd, slow);
	printf("sent\n");
	fflush(stdout);
	end = t0 + ms < deadline ? t0 + ms : deadline;
	pfd.fd = a.fd;
	pfd.events = POLLIN;
	while (tool_now_ms() < end) {
		pfd.revents = 0;
		wait_input(&pfd, 1, end);
		if ((pfd.revents & (POLLIN | POLLHUP)) != 0 && read_reply(&a)) {
			printf("answered before close\n");
			close(a.fd);
			free(a.buf);
			return 0;
		}
	}
	close(a.fd);
	free(a.buf);
	printf("closed after %ld ms\n", ms);
	return 0;
}

static int
probe(const char *path, const char *slow, const char *call,
    int64_t deadline)
{
	struct peer a = { -1, NULL, 0, 0 }, b = { -1, NULL, 0, 0 };
	struct pollfd pfd[2];
	int64_t t0, sent, slow_ms = -1, max = 0, now;
	long probes = 0;
	bool waiting;

	a.fd = tool_connect(path);
	b.fd = tool_connect(path);
	t0 = tool_now_ms();
	send_call(a.fd, slow);
	sent = tool_now_ms();
	send_call(b.fd, call);
	waiting = true;
	pfd[0].fd = a.fd;
	pfd[1].fd = b.fd;
	while (slow_ms < 0 || waiting) {
		pfd[0].events = slow_ms < 0 ? POLLIN : 0;
		pfd[1].events = waiting ? POLLIN : 0;
		pfd[0].revents = pfd[1].revents = 0;
		wait_input(pfd, 2, deadline);
		if (pfd[0].revents != 0 && read_reply(&a))
			slow_ms = tool_now_ms() - t0;
		if (pfd[1].revents != 0 && read_reply(&b)) {
			now = tool_now_ms();
			if (now - sent > max)
				max = now - sent;
			probes++;
			b.len = 0;
			waiting = false;
			if (slow_ms < 0) {
				sent = now;
				send_call(b.fd, call);
				waiting = true;
			}
		}
	}
	printf("%s\n", a.buf);
	printf("slow_ms %lld probes %ld probe_max_ms %lld\n",
	    (long long)slow_ms, probes, (long long)max);
	close(a.fd);
	close(b.fd);
	free(a.buf);
	free(b.buf);
	return 0;
}

int
main(int argc, char **argv)
{
	const char *path, *slow, *call = NULL;
	long timeout = 60000, close_ms = -1;
	int i;

	tool_name = "vlbusy";
	if (argc < 4)
		usage();
	path = argv[1];
	slow = argv[2];
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout = tool_parse_long(argv[++i], 1, 3600000, usage);
		else if (strcmp(argv[i], "--close-after") == 0 && i + 1 < argc)
			close_ms = tool_parse_long(argv[++i], 0, 3600000,
			    usage);
		else if (argv[i][0] != '-' && call == NULL)
			call = argv[i];
		else
			usage();
	}
	if ((call == NULL) == (close_ms < 0))
		usage();
	if (close_ms >= 0)
		return close_after(path, slow, close_ms,
		    tool_now_ms() + timeout);
	return probe(path, slow, call, tool_now_ms() + timeout);
}
