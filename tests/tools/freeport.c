/*
 * freeport: print a TCP port on 127.0.0.1 that the kernel picked as free
 * (bind to port 0, read it back, close), for a test that must tell a
 * ferryd where a server will be before that server starts.  The port is
 * free when printed; someone else may take it before the server binds it,
 * but two runs of the same test no longer ask for the same fixed port.
 *
 *   freeport        prints the port and a newline; exit 1 with a reason
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

int
main(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) == -1) {
		fprintf(stderr, "freeport: socket: %s\n", strerror(errno));
		return 1;
	}
	memset(&sin, 0, sizeof sin);
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sin.sin_port = 0;
	if (bind(fd, (struct sockaddr *)&sin, sizeof sin) == -1 ||
	    getsockname(fd, (struct sockaddr *)&sin, &len) == -1) {
		fprintf(stderr, "freeport: cannot bind 127.0.0.1:0: %s\n",
		    strerror(errno));
		close(fd);
		return 1;
	}
	printf("%u\n", (unsigned)ntohs(sin.sin_port));
	close(fd);
	return 0;
}
