/*
 * sockpath: the default socket and data directory; see sockpath.h.
 *
 * This file is compiled into both libferrycore (ferryd) and libferry (the
 * client library, where -fvisibility=hidden keeps these names private), so
 * that there is one rule for both ends of the socket.  It depends on libc
 * only.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include "sockpath.h"

#define SOCKPATH_DIR	"ferry"
#define SOCKPATH_NAME	"ferryd.sock"

/* The value of an XDG variable if it is an absolute path, else NULL. */
static const char *
sockpath_xdg(const char *var)
{
	const char *v = getenv(var);

	return v != NULL && v[0] == '/' ? v : NULL;
}

/* 0 and *ret malloc'd as "a/b[/c]", or -ENOMEM. */
static int
sockpath_join(char **ret, const char *a, const char *b, const char *c)
{
	if (asprintf(ret, "%s/%s%s%s", a, b, c != NULL ? "/" : "",
	    c != NULL ? c : "") < 0)
		return -ENOMEM;
	return 0;
}

int
sockpath_data_dir(char **ret_dir)
{
	const char *v;

	if ((v = sockpath_xdg("XDG_DATA_HOME")) != NULL)
		return sockpath_join(ret_dir, v, SOCKPATH_DIR, NULL);
	v = getenv("HOME");
	if (v == NULL || *v == '\0')
		return -ENOENT;
	return sockpath_join(ret_dir, v, ".local/share", SOCKPATH_DIR);
}

int
sockpath_default(char **ret_path)
{
	char dir[64], *data;
	struct stat st;
	const char *v;
	int r;

	v = getenv("FERRY_SOCKET");
	if (v != NULL && *v != '\0') {
		if ((*ret_path = strdup(v)) == NULL)
			return -ENOMEM;
		return 0;
	}
	if ((v = sockpath_xdg("XDG_RUNTIME_DIR")) != NULL)
		return sockpath_join(ret_path, v, SOCKPATH_DIR, SOCKPATH_NAME);
	snprintf(dir, sizeof dir, "/run/user/%lu", (unsigned long)getuid());
	if (stat(dir, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_uid == getuid())
		return sockpath_join(ret_path, dir, SOCKPATH_DIR,
		    SOCKPATH_NAME);
	if ((r = sockpath_data_dir(&data)) < 0)
		return r;
	r = sockpath_join(ret_path, data, SOCKPATH_NAME, NULL);
	free(data);
	return r;
}
