/*
 * toolutil: helpers of the test tools; see toolutil.h.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "toolutil.h"

const char *tool_name = "tool";

int64_t
tool_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

long
tool_parse_long(const char *s, long min, long max, void (*usage)(void))
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || v < min || v > max) {
		fprintf(stderr, "%s: bad number '%s'\n", tool_name, s);
		usage();
	}
	return v;
}

void
tool_die(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", tool_name, what, strerror(errno));
	exit(2);
}

int
tool_connect(const char *path)
{
	struct sockaddr_un sun;
	int fd;

	memset(&sun, 0, sizeof sun);
	sun.sun_family = AF_UNIX;
	if (strlen(path) >= sizeof sun.sun_path) {
		printf("CONNECT-ERROR path too long\n");
		exit(3);
	}
	memcpy(sun.sun_path, path, strlen(path) + 1);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1)
		tool_die("socket");
	if (connect(fd, (struct sockaddr *)&sun, sizeof sun) == -1) {
		printf("CONNECT-ERROR %s\n", strerror(errno));
		exit(3);
	}
	return fd;
}
