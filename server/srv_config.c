/*
 * srv_config: ferry-server's configuration file; see srv_config.h.
 *
 * One section, [ferry-server], and a table of its keys.  A file is
 * parsed (lib/inifile) into a copy that replaces the settings only when
 * every line was valid, so a bad file never leaves half of it applied.
 * What the values mean (a database that opens, an address that binds) is
 * checked where they are used, at start.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "inifile.h"
#include "srv_config.h"
#include "srv_db.h"

#define SRV_CONFIG_SECTION	"ferry-server"

enum srv_config_type {
	SRV_CONFIG_T_LISTEN,
	SRV_CONFIG_T_PATH,
	SRV_CONFIG_T_DB,
	SRV_CONFIG_T_BOOL,
	SRV_CONFIG_T_COUNT,
};

static const struct srv_config_key {
	const char		*name;
	enum srv_config_type	 type;
	size_t			 offset;
} srv_config_keys[] = {
	{ "listen", SRV_CONFIG_T_LISTEN, offsetof(struct srv_config, listen) },
	{ "data_dir", SRV_CONFIG_T_PATH, offsetof(struct srv_config, data_dir) },
	{ "keys", SRV_CONFIG_T_PATH, offsetof(struct srv_config, keys) },
	{ "db", SRV_CONFIG_T_DB, offsetof(struct srv_config, db) },
	{ "open", SRV_CONFIG_T_BOOL, offsetof(struct srv_config, open) },
	{ "debug", SRV_CONFIG_T_BOOL, offsetof(struct srv_config, debug) },
	{ "max_waiters", SRV_CONFIG_T_COUNT,
	    offsetof(struct srv_config, max_waiters) },
	{ "max_wait", SRV_CONFIG_T_COUNT,
	    offsetof(struct srv_config, max_wait) },
	{ "max_connections", SRV_CONFIG_T_COUNT,
	    offsetof(struct srv_config, max_connections) },
	{ "max_inflight_mib", SRV_CONFIG_T_COUNT,
	    offsetof(struct srv_config, max_inflight_mib) },
};

static const struct {
	const char	*word;
	bool		 value;
} srv_config_bools[] = {
	{ "yes", true }, { "no", false }, { "true", true }, { "false", false },
	{ "on", true }, { "off", false }, { "1", true }, { "0", false },
};

int
srv_config_listen(const char *spec, char *addr, size_t addrsz,
    int *ret_port)
{
	const char *colon, *host, *host_end;
	char *end;
	long port;
	size_t len;

	if (spec[0] == '[') {
		host = spec + 1;
		if ((host_end = strchr(host, ']')) == NULL ||
		    host_end[1] != ':')
			return -EINVAL;
		colon = host_end + 1;
	} else {
		host = spec;
		if ((colon = strrchr(spec, ':')) == NULL)
			return -EINVAL;
		host_end = colon;
	}
	len = (size_t)(host_end - host);
	if (len == 0 || len >= addrsz)
		return -EINVAL;
	errno = 0;
	port = strtol(colon + 1, &end, 10);
	if (errno != 0 || end == colon + 1 || *end != '\0' || port < 0 ||
	    port > 65535)
		return -EINVAL;
	memcpy(addr, host, len);
	addr[len] = '\0';
	*ret_port = (int)port;
	return 0;
}

char *
srv_config_default_path(void)
{
	return inifile_user_path("ferry-server.conf");
}

void
srv_config_free(struct srv_config *c)
{
	if (c == NULL)
		return;
	free(c->listen);
	free(c->data_dir);
	free(c->keys);
	free(c->db);
	c->listen = c->data_dir = c->keys = c->db = NULL;
}

/* A deep copy of *from into *to.  0 or -ENOMEM (and *to holds nothing). */
static int
srv_config_copy(struct srv_config *to, const struct srv_config *from)
{
	*to = *from;
	to->listen = to->data_dir = to->keys = to->db = NULL;
	if ((from->listen != NULL &&
	    (to->listen = strdup(from->listen)) == NULL) ||
	    (from->data_dir != NULL &&
	    (to->data_dir = strdup(from->data_dir)) == NULL) ||
	    (from->keys != NULL && (to->keys = strdup(from->keys)) == NULL) ||
	    (from->db != NULL && (to->db = strdup(from->db)) == NULL)) {
		srv_config_free(to);
		return -ENOMEM;
	}
	return 0;
}

/* A string value of key k: checked, malloc'd into *ret. */
static int
srv_config_string(const struct srv_config_key *k, const char *value,
    char **ret, const char **ret_why)
{
	char addr[256];
	int port;

	switch (k->type) {
	case SRV_CONFIG_T_LISTEN:
		if (srv_config_listen(value, addr, sizeof addr, &port) < 0) {
			*ret_why = "not ADDR:PORT or [ADDR]:PORT";
			return -EINVAL;
		}
		break;
	case SRV_CONFIG_T_DB:
		if (srv_db_is_url(value))
			break;
		if (strstr(value, "://") != NULL) {
			/* Perhaps a URL with a password: not quoted. */
			*ret_why = "not a postgresql:// URL (nor a path)";
			return -EACCES;
		}
		return inifile_path(value, ret, ret_why);
	default:
		return inifile_path(value, ret, ret_why);
	}
	return (*ret = strdup(value)) == NULL ? -ENOMEM : 0;
}

/* inifile callback: one "name = value" line, into *arg. */
static int
srv_config_key_cb(void *arg, const char *section, const char *name,
    const char *value, char *buf, size_t bufsz, const char **ret_why)
{
	struct srv_config *c = arg;
	const struct srv_config_key *k = NULL;
	char **sp, *s = NULL;
	size_t i;
	int r;

	if (strcmp(section, SRV_CONFIG_SECTION) != 0) {
		if (*section == '\0')
			*ret_why = "outside the [ferry-server] section";
		else {
			snprintf(buf, bufsz, "in unknown section [%.30s]",
			    section);
			*ret_why = buf;
		}
		return -EINVAL;
	}
	for (i = 0; i < sizeof srv_config_keys / sizeof srv_config_keys[0];
	    i++)
		if (strcmp(name, srv_config_keys[i].name) == 0)
			k = &srv_config_keys[i];
	if (k == NULL) {
		*ret_why = "unknown key in [ferry-server]";
		return -EINVAL;
	}
	switch (k->type) {
	case SRV_CONFIG_T_BOOL:
		for (i = 0; i < sizeof srv_config_bools /
		    sizeof srv_config_bools[0]; i++) {
			if (strcmp(value, srv_config_bools[i].word) == 0) {
				*(bool *)(void *)((char *)c + k->offset) =
				    srv_config_bools[i].value;
				return 0;
			}
		}
		*ret_why = "not yes or no";
		return -EINVAL;
	case SRV_CONFIG_T_COUNT:
		return inifile_int(value, 1, SRV_CONFIG_COUNT_MAX,
		    (int *)(void *)((char *)c + k->offset), buf, bufsz,
		    ret_why);
	default:
		if ((r = srv_config_string(k, value, &s, ret_why)) < 0)
			return r;
		sp = (char **)(void *)((char *)c + k->offset);
		free(*sp);
		*sp = s;
		return 0;
	}
}

int
srv_config_load(struct srv_config *c, const char *path, bool must_exist,
    char **ret_error)
{
	struct srv_config next;
	int r;

	if (srv_config_copy(&next, c) < 0) {
		if (ret_error != NULL)
			*ret_error = NULL;
		return -ENOMEM;
	}
	r = inifile_parse(path, must_exist, srv_config_key_cb, &next,
	    ret_error);
	if (r == 0) {
		srv_config_free(c);
		*c = next;
	} else
		srv_config_free(&next);
	return r;
}
