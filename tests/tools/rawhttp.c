/*
 * rawhttp: a strict HTTP/1.1 client on one raw TCP connection, for the
 * end-to-end tests of ferry-server's HTTP framing (t1011, t1012).
 *
 *   rawhttp [--timeout S] PORT METHOD...
 *	sends the bytes on stdin, exactly as the test wrote them (one or
 *	more requests, well formed or not), to 127.0.0.1:PORT, then reads
 *	one response for each METHOD named, in order, parsing it as RFC 9112
 *	says: a status line, header fields each ending in CRLF, then a body
 *	of Content-Length bytes, none for a response to HEAD (whatever its
 *	Content-Length says) or with status 1xx, 204 or 304, and up to the
 *	close without a Content-Length.  For each it prints
 *		status CODE
 *		header NAME: VALUE	(NAME in lower case)
 *		body TEXT		(bytes outside printable ASCII as \xNN)
 *	After the last, it shuts its side down and reads to the end: any
 *	byte the server sends then ("extra N bytes: TEXT") means a response
 *	carried more than its framing said, which would desynchronise a
 *	keep-alive client.
 *
 * Exit status: 0 when every response parsed and nothing followed, 1 when
 * one did not ("malformed: WHY") or something followed, 2 on usage
 * errors, 3 when the server could not be reached.  Every wait is bounded
 * by --timeout (default 10 s) in all.
 */
#include "autoconfig.h"

#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <ctype.h>
#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "toolutil.h"

#define IN_MAX		(1024 * 1024)	/* bytes of requests on stdin */
#define BUF_MAX		(4 * 1024 * 1024)	/* bytes of responses */

struct conn {
	int	 fd;
	char	*buf;
	size_t	 len;		/* bytes received */
	size_t	 off;		/* bytes parsed */
	bool	 eof;
	int64_t	 deadline;
};

static void
usage(void)
{
	fprintf(stderr, "usage: rawhttp [--timeout S] PORT METHOD...\n");
	exit(2);
}

/* Print n bytes, printable ASCII as is, the rest as \xNN. */
static void
print_text(const char *p, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (p[i] >= 0x20 && p[i] < 0x7f && p[i] != '\\')
			putchar(p[i]);
		else
			printf("\\x%02x", (unsigned char)p[i]);
	}
	putchar('\n');
}

static void
malformed(struct conn *c, const char *why)
{
	size_t n = c->len - c->off;

	printf("malformed: %s near ", why);
	print_text(c->buf + c->off, n > 80 ? 80 : n);
	exit(1);
}

/* Read more; false at the end of the stream.  Dies at the deadline. */
static bool
fill(struct conn *c)
{
	struct pollfd pfd;
	int64_t left;
	ssize_t n;

	if (c->eof)
		return false;
	if (c->len == BUF_MAX)
		malformed(c, "more than 4 MiB of responses");
	for (;;) {
		left = c->deadline - tool_now_ms();
		if (left <= 0) {
			printf("timeout: the server sent no more within the "
			    "bound\n");
			exit(1);
		}
		pfd.fd = c->fd;
		pfd.events = POLLIN;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			tool_die("poll");
		n = recv(c->fd, c->buf + c->len, BUF_MAX - c->len,
		    MSG_DONTWAIT);
		if (n > 0) {
			c->len += (size_t)n;
			return true;
		}
		if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
			c->eof = true;
			return false;
		}
	}
}

/* The next line ending in CRLF, without it (NUL-terminated in place). */
static char *
get_line(struct conn *c)
{
	char *line, *cr;

	for (;;) {
		line = c->buf + c->off;
		cr = memchr(line, '\r', c->len - c->off);
		if (cr != NULL && (size_t)(cr - c->buf) + 1 < c->len) {
			if (cr[1] != '\n')
				malformed(c, "a CR not followed by LF");
			*cr = '\0';
			if (memchr(line, '\n', (size_t)(cr - line)) != NULL)
				malformed(c, "a bare LF");
			c->off = (size_t)(cr - c->buf) + 2;
			return line;
		}
		if (!fill(c))
			malformed(c, "the connection ended inside the header");
	}
}

/* Read and print one response to a request with method; false at EOF. */
static bool
response(struct conn *c, const char *method)
{
	char *line, *colon, *v, *end;
	long long clen = -1;
	int code;
	size_t i, n;

	if (c->off == c->len && !fill(c))
		return false;
	line = get_line(c);
	if (strncmp(line, "HTTP/1.", 7) != 0 || (line[7] != '0' &&
	    line[7] != '1') || line[8] != ' ' || !isdigit((unsigned char)
	    line[9]) || !isdigit((unsigned char)line[10]) ||
	    !isdigit((unsigned char)line[11]) || line[12] != ' ') {
		printf("malformed: not a status line: ");
		print_text(line, strlen(line));
		exit(1);
	}
	code = atoi(line + 9);
	printf("status %d\n", code);
	while (*(line = get_line(c)) != '\0') {
		if ((colon = strchr(line, ':')) == NULL || colon == line) {
			printf("malformed: not a header field: ");
			print_text(line, strlen(line));
			exit(1);
		}
		*colon = '\0';
		for (i = 0; line[i] != '\0'; i++)
			line[i] = (char)tolower((unsigned char)line[i]);
		for (v = colon + 1; *v == ' ' || *v == '\t'; v++)
			;
		printf("header %s: %s\n", line, v);
		if (strcmp(line, "transfer-encoding") == 0) {
			printf("malformed: a Transfer-Encoding in a reply\n");
			exit(1);
		}
		if (strcmp(line, "content-length") == 0) {
			errno = 0;
			clen = strtoll(v, &end, 10);
			if (errno != 0 || end == v || *end != '\0' || clen < 0) {
				printf("malformed: Content-Length %s\n", v);
				exit(1);
			}
		}
	}
	if (strcmp(method, "HEAD") == 0 || code / 100 == 1 || code == 204 ||
	    code == 304)
		return true;
	if (clen < 0) {
		while (fill(c))
			;
		n = c->len - c->off;
	} else {
		while (c->len - c->off < (size_t)clen)
			if (!fill(c))
				malformed(c, "the connection ended inside a "
				    "body");
		n = (size_t)clen;
	}
	printf("body ");
	print_text(c->buf + c->off, n);
	c->off += n;
	return true;
}

int
main(int argc, char **argv)
{
	struct sockaddr_in sin;
	struct conn c;
	char *in;
	size_t inlen = 0, sent = 0;
	ssize_t n;
	long port, timeout = 10;
	int i;

	tool_name = "rawhttp";
	if (argc > 2 && strcmp(argv[1], "--timeout") == 0) {
		timeout = tool_parse_long(argv[2], 1, 600, usage);
		argv += 2;
		argc -= 2;
	}
	if (argc < 3)
		usage();
	port = tool_parse_long(argv[1], 1, 65535, usage);
	if ((in = malloc(IN_MAX)) == NULL || (c.buf = malloc(BUF_MAX)) ==
	    NULL)
		tool_die("malloc");
	while ((n = read(0, in + inlen, IN_MAX - inlen)) > 0)
		inlen += (size_t)n;
	if (n < 0)
		tool_die("stdin");
	c.len = c.off = 0;
	c.eof = false;
	c.deadline = tool_now_ms() + timeout * 1000;
	if ((c.fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		tool_die("socket");
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(c.fd, (struct sockaddr *)&sin, sizeof sin) == -1) {
		printf("CONNECT-ERROR %s\n", strerror(errno));
		return 3;
	}
	while (sent < inlen) {
		if ((n = send(c.fd, in + sent, inlen - sent, MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			/* The server may refuse and close early: read on. */
			break;
		}
		sent += (size_t)n;
	}
	for (i = 2; i < argc; i++)
		if (!response(&c, argv[i])) {
			printf("closed: no response to request %d\n", i - 1);
			return 1;
		}
	(void)shutdown(c.fd, SHUT_WR);
	while (fill(&c))
		;
	if (c.len > c.off) {
		printf("extra %zu bytes: ", c.len - c.off);
		print_text(c.buf + c.off, c.len - c.off);
		return 1;
	}
	close(c.fd);
	free(c.buf);
	free(in);
	return 0;
}
