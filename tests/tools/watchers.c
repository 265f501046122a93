/*
 * watchers: many Watch clients in one process, for ferryd's tests of what
 * happens to a watcher's connection slot when its client goes.
 *
 * It opens N connections to SOCKET, one after the other, and makes a
 * Watch call (with "more") on each; a connection is counted once its
 * {"ready":true} reply has arrived, so ferryd holds N watchers when it
 * prints "ready N".  A connection that ferryd refuses because its
 * max_connections are taken (io.ferry.TooManyConnections, or closed before
 * any reply) is tried again every 20 ms until the deadline: a test that
 * kills one set of watchers and starts the next must not depend on which
 * of the two ferryd sees first.  With --half-close each connection then
 * shuts down its sending side (a client that sends no more calls but
 * still reads its stream).
 *
 * Then it waits for end of file on stdin and closes all N; with --crash it
 * kills itself with SIGKILL instead, so the kernel closes the sockets of a
 * client that never said goodbye.  With --count MS it goes on: on one new connection it asks
 * io.ferry.Status every 10 ms until "watchers" is 0 and prints
 * "watchers 0 after T ms", or prints "FAIL watchers K after MS ms" and
 * exits 1.  The time is counted from the moment the N sockets are closed.
 *
 * Every wait is bounded by --timeout (default 30 s).  Plain sockets and
 * string scanning, no JSON library: the replies looked at are ferryd's own
 * compact text.  Exit status: 0 done, 1 a fault found (a "FAIL" line),
 * 2 usage or system errors, 3 the socket cannot be reached, 4 the
 * descriptor limit is too low for N (a "SKIP" line).
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "toolutil.h"

#define REPLY_MAX	(64u * 1024)
#define RETRY_MS	20
#define STATUS_MS	10

static const char watch_call[] =
    "{\"method\":\"io.ferry.Watch\",\"parameters\":{},\"more\":true}";
static const char status_call[] = "{\"method\":\"io.ferry.Status\"}";

static int64_t deadline;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: watchers SOCKET N [--timeout MS] "
	    "[--half-close] [--crash | --count MS]\n");
	exit(2);
}

static void
pause_ms(int ms)
{
	poll(NULL, 0, ms);
}

/* N connections need N descriptors and a few: raise the soft limit. */
static void
fd_limit(long n)
{
	struct rlimit rl;
	rlim_t want = (rlim_t)n + 16;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		tool_die("getrlimit");
	if (rl.rlim_cur >= want)
		return;
	if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < want) {
		printf("SKIP descriptor limit %lu is below %lu\n",
		    (unsigned long)rl.rlim_max, (unsigned long)want);
		exit(4);
	}
	rl.rlim_cur = want;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		tool_die("setrlimit");
}

/* Send one message; -1 if ferryd has closed the connection. */
static int
send_msg(int fd, const char *msg)
{
	size_t len = strlen(msg) + 1, off = 0;
	ssize_t n;

	while (off < len) {
		n = send(fd, msg + off, len - off, MSG_NOSIGNAL);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EPIPE || errno == ECONNRESET))
			return -1;
		if (n < 0)
			tool_die("send");
		off += (size_t)n;
	}
	return 0;
}

/*
 * Read one NUL-terminated reply into buf.  1: a reply, 0: the connection
 * closed first.  Past the deadline: a FAIL line and exit.
 */
static int
read_reply(int fd, char *buf, size_t size)
{
	struct pollfd pfd;
	size_t len = 0;
	int64_t left;
	ssize_t n;

	for (;;) {
		left = deadline - tool_now_ms();
		if (left <= 0) {
			printf("FAIL no reply within the deadline\n");
			exit(1);
		}
		pfd.fd = fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) < 0) {
			if (errno == EINTR)
				continue;
			tool_die("poll");
		}
		if (pfd.revents == 0)
			continue;
		n = recv(fd, buf + len, 1, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == ECONNRESET)
			return 0;
		if (n < 0)
			tool_die("recv");
		if (n == 0)
			return 0;
		if (buf[len] == '\0')
			return 1;
		if (++len == size - 1) {
			printf("FAIL reply longer than %zu bytes\n", size);
			exit(1);
		}
	}
}

/* A connection whose first reply to call is not a refusal (retried). */
static int
open_call(const char *path, const char *call, char *reply, size_t size)
{
	int fd;

	for (;;) {
		fd = tool_connect(path);
		if (send_msg(fd, call) == 0 &&
		    read_reply(fd, reply, size) == 1 &&
		    strstr(reply, "io.ferry.TooManyConnections") == NULL)
			return fd;
		close(fd);
		if (tool_now_ms() + RETRY_MS >= deadline) {
			printf("FAIL still refused at the deadline\n");
			exit(1);
		}
		pause_ms(RETRY_MS);
	}
}

static void
wait_stdin_eof(void)
{
	char buf[256];
	ssize_t n;

	do
		n = read(STDIN_FILENO, buf, sizeof buf);
	while (n > 0 || (n < 0 && errno == EINTR));
}

/* Ask Status until no watcher is left; the exit status. */
static int
count_down(const char *path, int64_t start, long bound_ms)
{
	char *reply, *p;
	long watchers;
	int fd, rc = 1;

	if ((reply = malloc(REPLY_MAX)) == NULL)
		tool_die("malloc");
	fd = open_call(path, status_call, reply, REPLY_MAX);
	for (;;) {
		if ((p = strstr(reply, "\"watchers\":")) == NULL) {
			printf("FAIL no watchers in %s\n", reply);
			break;
		}
		watchers = strtol(p + strlen("\"watchers\":"), NULL, 10);
		if (watchers == 0) {
			printf("watchers 0 after %" PRId64 " ms\n",
			    tool_now_ms() - start);
			rc = 0;
			break;
		}
		if (tool_now_ms() - start > bound_ms) {
			printf("FAIL watchers %ld after %ld ms\n", watchers,
			    bound_ms);
			break;
		}
		pause_ms(STATUS_MS);
		if (send_msg(fd, status_call) < 0 ||
		    read_reply(fd, reply, REPLY_MAX) != 1) {
			printf("FAIL ferryd closed the Status connection\n");
			break;
		}
	}
	free(reply);
	close(fd);
	return rc;
}

int
main(int argc, char **argv)
{
	long n, i, timeout_ms = 30000, count_ms = -1;
	bool half_close = false, crash = false;
	char reply[REPLY_MAX];
	const char *path;
	int64_t closed;
	int *fds;

	tool_name = "watchers";
	if (argc < 3 || argv[1][0] == '-')
		usage();
	path = argv[1];
	n = tool_parse_long(argv[2], 1, 100000, usage);
	for (i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_ms = tool_parse_long(argv[++i], 1, 3600000,
			    usage);
		else if (strcmp(argv[i], "--count") == 0 && i + 1 < argc)
			count_ms = tool_parse_long(argv[++i], 1, 3600000,
			    usage);
		else if (strcmp(argv[i], "--half-close") == 0)
			half_close = true;
		else if (strcmp(argv[i], "--crash") == 0)
			crash = true;
		else
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	fd_limit(n);
	if ((fds = calloc((size_t)n, sizeof *fds)) == NULL)
		tool_die("calloc");
	deadline = tool_now_ms() + timeout_ms;

	for (i = 0; i < n; i++) {
		fds[i] = open_call(path, watch_call, reply, sizeof reply);
		if (strstr(reply, "\"ready\":true") == NULL) {
			printf("FAIL watcher %ld: %s\n", i, reply);
			return 1;
		}
		if (half_close && shutdown(fds[i], SHUT_WR) == -1)
			tool_die("shutdown");
	}
	printf("ready %ld\n", n);
	fflush(stdout);
	if (crash)
		raise(SIGKILL);

	wait_stdin_eof();
	for (i = 0; i < n; i++)
		close(fds[i]);
	closed = tool_now_ms();
	free(fds);
	if (count_ms < 0)
		return 0;
	/* A fresh deadline: the wait on stdin may have used the first. */
	deadline = closed + count_ms + timeout_ms;
	return count_down(path, closed, count_ms);
}
