/*
 * util: small helpers every part shares: clocks and file-descriptor flags.
 * Nothing here allocates except where the comment says so.
 */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdint.h>

/* Wall clock in milliseconds since the epoch (CLOCK_REALTIME). */
int64_t	util_now_ms(void);
/* Monotonic clock in microseconds (CLOCK_MONOTONIC), for durations. */
int64_t	util_mono_us(void);
/* Set O_NONBLOCK and FD_CLOEXEC on fd.  Returns 0 or -errno. */
int	util_fd_nonblock_cloexec(int fd);
/* mkdir -p with the given mode for each created component.  0 or -errno. */
int	util_mkdir_p(const char *path, unsigned int mode);

#endif
