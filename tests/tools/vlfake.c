/*
 * vlfake: an impostor ferryd for the socket-trust test (t0009).
 *
 *   vlfake PATH [--connections C] [--timeout MS]
 *
 * It binds a Unix socket at PATH (the test runs it as another uid, in a
 * directory that uid owns) and prints "listening PATH".  Every client that
 * connects is answered at once, before it says anything, with the reply
 * a Put would get ({"parameters":{"doc":{... "rev":1 ...}}}), as an
 * attacker would; then everything the client sends is read and counted
 * until it closes, and one line "connection K: B bytes" is printed.  A
 * client that checks whom it talks to sends nothing: B is 0.  After C
 * connections (default 1) it prints "done" and exits 0; at the deadline
 * (--timeout, default 10 s) it prints "TIMEOUT" and exits 1.
 *
 * One connection at a time, plain sockets, bounded waits; the socket file
 * is removed at exit.  Exit status 2: usage or system errors.
 */
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "toolutil.h"

static const char fake_reply[] =
    "{\"parameters\":{\"doc\":{\"collection\":\"notes\",\"id\":\"n1\","
    "\"rev\":1,\"version\":1,\"deleted\":false,\"pending\":false,"
    "\"conflicted\":false}}}";

static const char *sock_path;
static int64_t deadline;

static void __attribute__((noreturn))
usage(void)
{
	fprintf(stderr, "usage: vlfake PATH [--connections C] "
	    "[--timeout MS]\n");
	exit(2);
}

static void
die(const char *what)
{
	int e = errno;

	if (sock_path != NULL)
		unlink(sock_path);
	errno = e;
	tool_die(what);
}

/* Wait for fd to be readable; 0 at the deadline. */
static int
wait_readable(int fd)
{
	struct pollfd pfd;
	int64_t left;
	int r;

	for (;;) {
		left = deadline - tool_now_ms();
		if (left <= 0)
			return 0;
		pfd.fd = fd;
		pfd.events = POLLIN;
		if ((r = poll(&pfd, 1, (int)left)) > 0)
			return 1;
		if (r < 0 && errno != EINTR)
			die("poll");
	}
}

static void
timeout(void)
{
	printf("TIMEOUT\n");
	unlink(sock_path);
	exit(1);
}

/* Answer like ferryd, then count what the client sends until it closes. */
static void
serve(int fd, long k)
{
	char buf[65536];
	uint64_t total = 0;
	ssize_t n;

	(void)!send(fd, fake_reply, sizeof fake_reply, MSG_NOSIGNAL);
	for (;;) {
		if (!wait_readable(fd))
			timeout();
		n = recv(fd, buf, sizeof buf, 0);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		total += (uint64_t)n;
	}
	printf("connection %ld: %" PRIu64 " bytes\n", k, total);
	fflush(stdout);
}

int
main(int argc, char **argv)
{
	struct sockaddr_un sun;
	long conns = 1, k, timeout_ms = 10000;
	int i, lfd, fd;

	tool_name = "vlfake";
	if (argc < 2 || argv[1][0] == '-')
		usage();
	for (i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--connections") == 0 && i + 1 < argc)
			conns = tool_parse_long(argv[++i], 1, 1000, usage);
		else if (strcmp(argv[i], "--timeout") == 0 && i + 1 < argc)
			timeout_ms = tool_parse_long(argv[++i], 1, 3600000,
			    usage);
		else
			usage();
	}
	signal(SIGPIPE, SIG_IGN);
	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(argv[1]) >= sizeof sun.sun_path)
		usage();
	memcpy(sun.sun_path, argv[1], strlen(argv[1]) + 1);
	if ((lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		die("socket");
	/* Anyone may connect: the victim must not rely on file modes. */
	umask(0);
	if (bind(lfd, (struct sockaddr *)&sun, sizeof sun) == -1)
		die("bind");
	sock_path = argv[1];
	if (listen(lfd, 16) == -1)
		die("listen");
	deadline = tool_now_ms() + timeout_ms;
	printf("listening %s\n", sock_path);
	fflush(stdout);
	for (k = 1; k <= conns; k++) {
		if (!wait_readable(lfd))
			timeout();
		if ((fd = accept(lfd, NULL, NULL)) == -1) {
			if (errno == EINTR || errno == ECONNABORTED) {
				k--;
				continue;
			}
			die("accept");
		}
		serve(fd, k);
		close(fd);
	}
	printf("done\n");
	unlink(sock_path);
	close(lfd);
	return 0;
}
