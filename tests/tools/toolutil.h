/*
 * toolutil: what the small programs in tests/tools share: a monotonic
 * clock, strict number parsing, dying with a message, and connecting to a
 * Unix socket.  These are test tools, so every failure exits (status 2,
 * or 3 for a socket that cannot be reached) with one line that names it.
 */
#ifndef FERRY_TOOLUTIL_H
#define FERRY_TOOLUTIL_H

#include <stdint.h>

/* The program's name in messages; main sets it first. */
extern const char *tool_name;

/* CLOCK_MONOTONIC in milliseconds. */
int64_t	tool_now_ms(void);
/* s as a decimal in [min, max]; otherwise say so and call usage(), which
 * must not return. */
long	tool_parse_long(const char *s, long min, long max,
	    void (*usage)(void));
/* "<name>: <what>: <strerror(errno)>" on stderr, then exit 2. */
void	tool_die(const char *what) __attribute__((noreturn));
/* A blocking, close-on-exec connection to the Unix socket at path; if it
 * cannot be made, print "CONNECT-ERROR <why>" on stdout and exit 3. */
int	tool_connect(const char *path);

#endif
