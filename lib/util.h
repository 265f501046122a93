/*
 * util: small helpers every part shares: clocks, file-descriptor flags and
 * private directories.  Nothing here allocates except where the comment
 * says so.
 */
#ifndef FERRY_UTIL_H
#define FERRY_UTIL_H

#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

/* Wall clock in milliseconds since the epoch (CLOCK_REALTIME). */
int64_t	util_now_ms(void);
/* Monotonic clock in microseconds (CLOCK_MONOTONIC), for durations. */
int64_t	util_mono_us(void);
/* Set O_NONBLOCK and FD_CLOEXEC on fd.  Returns 0 or -errno. */
int	util_fd_nonblock_cloexec(int fd);
/* mkdir -p with the given mode for each created component.  0 or -errno. */
int	util_mkdir_p(const char *path, unsigned int mode);
/*
 * Open directory path and check that it is private to uid: a directory
 * (not a symbolic link: the last component is not followed) owned by uid,
 * with no permission bits for group or others.  The checks are made with
 * fstat on the open descriptor, so they hold for the directory returned
 * whatever happens to the path later.  Returns the descriptor (read-only,
 * O_DIRECTORY, close-on-exec; the caller closes it) or -errno: -ELOOP a
 * symbolic link, -ENOTDIR not a directory, -EPERM owned by another uid,
 * -EACCES open to group or others, or what open(2) said.  st, if not NULL,
 * receives what fstat (or, for a link, lstat) found, to name in a message.
 * Does not block beyond the file system calls.
 */
int	util_dir_open_private(const char *path, uid_t uid, struct stat *st);

#endif
