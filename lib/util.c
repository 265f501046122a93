/*
 * util: clocks, descriptor flags, directory creation and checks; see
 * util.h.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "util.h"

int64_t
util_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t
util_mono_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int
util_fd_nonblock_cloexec(int fd)
{
	int fl;

	if ((fl = fcntl(fd, F_GETFL)) == -1 ||
	    fcntl(fd, F_SETFL, fl | O_NONBLOCK) == -1)
		return -errno;
	if ((fl = fcntl(fd, F_GETFD)) == -1 ||
	    fcntl(fd, F_SETFD, fl | FD_CLOEXEC) == -1)
		return -errno;
	return 0;
}

int
util_mkdir_p(const char *path, unsigned int mode)
{
	char buf[PATH_MAX];
	size_t len;
	char *p;

	len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	for (p = buf + 1; ; p++) {
		if (*p != '/' && *p != '\0')
			continue;
		char c = *p;
		*p = '\0';
		if (mkdir(buf, mode) == -1 && errno != EEXIST)
			return -errno;
		*p = c;
		if (c == '\0')
			break;
	}
	return 0;
}

int
util_dir_open_private(const char *path, uid_t uid, struct stat *st)
{
	char buf[PATH_MAX];
	struct stat sb;
	size_t len;
	int fd, r;

	if (st == NULL)
		st = &sb;
	memset(st, 0, sizeof *st);
	/* "dir/" would follow a link named dir: drop trailing slashes. */
	len = strlen(path);
	if (len == 0 || len >= sizeof buf)
		return len == 0 ? -ENOENT : -ENAMETOOLONG;
	memcpy(buf, path, len + 1);
	while (len > 1 && buf[len - 1] == '/')
		buf[--len] = '\0';
	fd = open(buf, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (fd == -1) {
		r = -errno;
		/* O_NOFOLLOW reports a link as ELOOP or, with O_DIRECTORY,
		 * as ENOTDIR on some kernels: say which it is. */
		if ((r == -ELOOP || r == -ENOTDIR) && lstat(buf, st) == 0)
			r = S_ISLNK(st->st_mode) ? -ELOOP : -ENOTDIR;
		return r;
	}
	if (fstat(fd, st) == -1) {
		r = -errno;
		close(fd);
		return r;
	}
	if (st->st_uid != uid)
		r = -EPERM;
	else if ((st->st_mode & 077) != 0)
		r = -EACCES;
	else
		return fd;
	close(fd);
	return r;
}
