/*
 * config: ferryd's settings from the environment and INI files; see config.h.
 *
 * Defaults follow the XDG base directory specification (a variable that is
 * unset, empty or not an absolute path is ignored, as the specification
 * says).  A file is parsed by libinih into a copy of the settings, and the
 * copy replaces them only when the whole file was valid, so a bad file
 * never leaves half of its values applied.  Reading the file, and the
 * messages that name its line, key and value, are lib/inifile's (shared
 * with ferry-server's configuration); this file says what each key means.
 *
 * Nothing here creates directories or checks that paths exist: that is
 * the daemon's business when it starts.
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include "collset.h"
#include "config.h"
#include "inifile.h"
#include "log.h"
#include "sockpath.h"

#define CONFIG_FILE_NAME	"ferryd.conf"
#define CONFIG_DEVICE_NAME_MAX	128
/* A socket path must fit sockaddr_un.sun_path with its NUL. */
#define CONFIG_SOCKET_PATH_MAX \
	(sizeof(((struct sockaddr_un *)NULL)->sun_path) - 1)

enum config_type {
	CONFIG_T_PATH,		/* absolute path, "~/" expanded */
	CONFIG_T_SOCKET,	/* a path that must also fit sun_path */
	CONFIG_T_NAME,		/* printable text, 1-128 bytes */
	CONFIG_T_URL,		/* http(s) URL, empty for none */
	CONFIG_T_INT,		/* decimal integer in [min, max] */
	CONFIG_T_LEVEL,		/* log level name */
	CONFIG_T_COLLECTIONS,	/* a collection set (collset) */
};

static const struct config_key {
	const char		*section;
	const char		*name;
	enum config_type	 type;
	size_t			 offset;
	int			 min;
	int			 max;
} config_keys[] = {
	{ "ferryd", "data_dir", CONFIG_T_PATH,
	    offsetof(struct config, data_dir), 0, 0 },
	{ "ferryd", "socket", CONFIG_T_SOCKET,
	    offsetof(struct config, socket_path), 0, 0 },
	{ "ferryd", "device_name", CONFIG_T_NAME,
	    offsetof(struct config, device_name), 0, 0 },
	{ "ferryd", "idle_timeout", CONFIG_T_INT,
	    offsetof(struct config, idle_timeout),
	    0, CONFIG_IDLE_TIMEOUT_MAX },
	{ "ferryd", "max_connections", CONFIG_T_INT,
	    offsetof(struct config, max_connections),
	    1, CONFIG_MAX_CONNECTIONS_MAX },
	{ "ferryd", "log_level", CONFIG_T_LEVEL,
	    offsetof(struct config, log_level), 0, 0 },
	{ "ferryd", "presence_ttl", CONFIG_T_INT,
	    offsetof(struct config, presence_ttl),
	    1, CONFIG_PRESENCE_TTL_MAX },
	{ "remote", "url", CONFIG_T_URL,
	    offsetof(struct config, remote_url), 0, 0 },
	{ "remote", "backoff_max", CONFIG_T_INT,
	    offsetof(struct config, backoff_max),
	    1, CONFIG_BACKOFF_MAX_MAX },
	{ "sync", "collections", CONFIG_T_COLLECTIONS,
	    offsetof(struct config, sync_collections), 0, 0 },
};

static const struct {
	const char	*name;
	int		 level;
} config_levels[] = {
	{ "err", LOG_ERR },
	{ "error", LOG_ERR },
	{ "warning", LOG_WARNING },
	{ "warn", LOG_WARNING },
	{ "notice", LOG_NOTICE },
	{ "info", LOG_INFO },
	{ "debug", LOG_DEBUG },
};

/* The host name, or "localhost" if it cannot be read. */
static char *
config_hostname(void)
{
	char buf[HOST_NAME_MAX + 1];

	if (gethostname(buf, sizeof buf) == -1 || buf[0] == '\0')
		return strdup("localhost");
	buf[sizeof buf - 1] = '\0';
	return strdup(buf);
}

int
config_defaults(struct config *c)
{
	struct config d;
	int r;

	memset(&d, 0, sizeof d);
	/* Shared with libferry, so ferryd and its clients agree. */
	if ((r = sockpath_data_dir(&d.data_dir)) < 0 ||
	    (r = sockpath_default(&d.socket_path)) < 0)
		goto fail;
	if ((d.device_name = config_hostname()) == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	d.remote_url = NULL;
	d.idle_timeout = CONFIG_IDLE_TIMEOUT_DEFAULT;
	d.max_connections = CONFIG_MAX_CONNECTIONS_DEFAULT;
	d.backoff_max = CONFIG_BACKOFF_MAX_DEFAULT;
	d.presence_ttl = CONFIG_PRESENCE_TTL_DEFAULT;
	d.log_level = LOG_INFO;
	*c = d;
	return 0;

fail:
	config_free(&d);
	return r;
}

char *
config_default_path(void)
{
	return inifile_user_path(CONFIG_FILE_NAME);
}

void
config_free(struct config *c)
{
	if (c == NULL)
		return;
	free(c->data_dir);
	free(c->socket_path);
	free(c->device_name);
	free(c->remote_url);
	free(c->sync_collections);
	c->data_dir = c->socket_path = c->device_name = c->remote_url = NULL;
	c->sync_collections = NULL;
}

/* A deep copy of *from into *to.  0 or -ENOMEM (and *to holds nothing). */
static int
config_copy(struct config *to, const struct config *from)
{
	*to = *from;
	to->data_dir = to->socket_path = to->device_name = NULL;
	to->remote_url = to->sync_collections = NULL;
	if ((from->data_dir != NULL &&
	    (to->data_dir = strdup(from->data_dir)) == NULL) ||
	    (from->socket_path != NULL &&
	    (to->socket_path = strdup(from->socket_path)) == NULL) ||
	    (from->device_name != NULL &&
	    (to->device_name = strdup(from->device_name)) == NULL) ||
	    (from->remote_url != NULL &&
	    (to->remote_url = strdup(from->remote_url)) == NULL) ||
	    (from->sync_collections != NULL &&
	    (to->sync_collections = strdup(from->sync_collections)) == NULL)) {
		config_free(to);
		return -ENOMEM;
	}
	return 0;
}

/* Set one key of c from value.  0, -ENOMEM, or -EINVAL with *why set. */
static int
config_set(struct config *c, const struct config_key *k, const char *value,
    char *buf, size_t bufsz, const char **why)
{
	char **sp = (char **)(void *)((char *)c + k->offset);
	int *ip = (int *)(void *)((char *)c + k->offset);
	char *s = NULL, cwhy[256];
	const unsigned char *p;
	size_t i;
	int r;

	switch (k->type) {
	case CONFIG_T_PATH:
	case CONFIG_T_SOCKET:
		if ((r = inifile_path(value, &s, why)) < 0)
			return r;
		if (k->type == CONFIG_T_SOCKET &&
		    strlen(s) > CONFIG_SOCKET_PATH_MAX) {
			snprintf(buf, bufsz, "longer than %zu bytes",
			    CONFIG_SOCKET_PATH_MAX);
			*why = buf;
			free(s);
			return -EINVAL;
		}
		break;
	case CONFIG_T_NAME:
		if (*value == '\0') {
			*why = "empty";
			return -EINVAL;
		}
		if (strlen(value) > CONFIG_DEVICE_NAME_MAX) {
			snprintf(buf, bufsz, "longer than %d bytes",
			    CONFIG_DEVICE_NAME_MAX);
			*why = buf;
			return -EINVAL;
		}
		for (p = (const unsigned char *)value; *p != '\0'; p++) {
			if (*p < 0x20 || *p == 0x7f) {
				*why = "contains a control character";
				return -EINVAL;
			}
		}
		if ((s = strdup(value)) == NULL)
			return -ENOMEM;
		break;
	case CONFIG_T_URL:
		if (*value != '\0') {
			if ((strncmp(value, "http://", 7) != 0 ||
			    value[7] == '\0') &&
			    (strncmp(value, "https://", 8) != 0 ||
			    value[8] == '\0')) {
				*why = "not an http:// or https:// URL";
				return -EINVAL;
			}
			if ((s = strdup(value)) == NULL)
				return -ENOMEM;
		}
		break;
	case CONFIG_T_INT:
		return inifile_int(value, k->min, k->max, ip, buf, bufsz,
		    why);
	case CONFIG_T_LEVEL:
		for (i = 0; i < sizeof config_levels / sizeof config_levels[0];
		    i++) {
			if (strcmp(value, config_levels[i].name) == 0) {
				*ip = config_levels[i].level;
				return 0;
			}
		}
		*why = "not one of err, warning, notice, info, debug";
		return -EINVAL;
	case CONFIG_T_COLLECTIONS:
		if ((r = collset_norm(value, &s, cwhy, sizeof cwhy)) < 0) {
			/* buf is small: the reason if it fits, else the rule
			 * (the value follows in the message either way). */
			if (strlen(cwhy) < bufsz) {
				snprintf(buf, bufsz, "%s", cwhy);
				*why = buf;
			} else
				*why = "not collection names (1-128 bytes of "
				    "A-Z a-z 0-9 . _ -) separated by commas, "
				    "nor *";
			return r;
		}
		break;
	}
	free(*sp);
	*sp = s;
	return 0;
}

/*
 * inifile callback: one "name = value" line of section, into the
 * settings being built (arg).
 */
static int
config_key_cb(void *arg, const char *section, const char *name,
    const char *value, char *buf, size_t bufsz, const char **ret_why)
{
	const struct config_key *k = NULL;
	size_t i;
	bool section_known = false;

	for (i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
		if (strcmp(section, config_keys[i].section) != 0)
			continue;
		section_known = true;
		if (strcmp(name, config_keys[i].name) == 0) {
			k = &config_keys[i];
			break;
		}
	}
	if (k != NULL)
		return config_set(arg, k, value, buf, bufsz, ret_why);
	if (*section == '\0')
		*ret_why = "outside any section ([ferryd], [remote] or "
		    "[sync])";
	else {
		if (section_known)
			snprintf(buf, bufsz, "unknown key in [%.40s]", section);
		else
			snprintf(buf, bufsz, "in unknown section [%.30s]",
			    section);
		*ret_why = buf;
	}
	return -EINVAL;
}

int
config_load(struct config *c, const char *path, bool must_exist,
    char **ret_error)
{
	struct config next;
	int r;

	if (config_copy(&next, c) < 0) {
		if (ret_error != NULL)
			*ret_error = NULL;
		return -ENOMEM;
	}
	r = inifile_parse(path, must_exist, config_key_cb, &next, ret_error);
	if (r == 0) {
		config_free(c);
		*c = next;
	} else
		config_free(&next);
	return r;
}
