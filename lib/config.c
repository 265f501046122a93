/*
 * config: ferryd's settings from the environment and INI files; see config.h.
 *
 * Defaults follow the XDG base directory specification (a variable that is
 * unset, empty or not an absolute path is ignored, as the specification
 * says).  A file is parsed by libinih into a copy of the settings, and the
 * copy replaces them only when the whole file was valid, so a bad file
 * never leaves half of its values applied.  Parsing stops at the first
 * error, and the message names the file, the physical line, the key and
 * the value.  Lines are read here (libinih only sees them one at a time)
 * so the line number is known in the handler and a line too long for
 * libinih's fixed buffer is refused instead of being split in two.
 *
 * Nothing here creates directories or checks that paths exist: that is
 * the daemon's business when it starts.
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/un.h>
#include <unistd.h>

#include <ini.h>

#include "config.h"
#include "log.h"
#include "sockpath.h"

#define CONFIG_DIR_NAME		"ferry"
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
	{ "remote", "url", CONFIG_T_URL,
	    offsetof(struct config, remote_url), 0, 0 },
	{ "remote", "backoff_max", CONFIG_T_INT,
	    offsetof(struct config, backoff_max),
	    1, CONFIG_BACKOFF_MAX_MAX },
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

/* State of one config_load(), shared by the reader and the handler. */
struct config_parse {
	FILE		*fp;
	const char	*path;
	struct config	 next;		/* the settings being built */
	char		*line;		/* getline(3) buffer */
	size_t		 linesz;
	int		 lineno;	/* physical line being handled */
	int		 error;		/* first error, -errno, or 0 */
	int		 error_line;
	char		*message;	/* malloc'd message for error */
};

static char	*config_format(const char *, ...)
		    __attribute__((format(printf, 1, 2)));

/* A malloc'd string built as printf would, or NULL without memory. */
static char *
config_format(const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || (s = malloc((size_t)n + 1)) == NULL)
		return NULL;
	va_start(ap, fmt);
	vsnprintf(s, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return s;
}

/* The value of an XDG variable if it is an absolute path, else NULL. */
static const char *
config_xdg(const char *var)
{
	const char *v;

	v = getenv(var);
	if (v == NULL || v[0] != '/')
		return NULL;
	return v;
}

/* $HOME if set and not empty, else NULL. */
static const char *
config_home(void)
{
	const char *v;

	v = getenv("HOME");
	if (v == NULL || *v == '\0')
		return NULL;
	return v;
}

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
	const char *v;

	if ((v = config_xdg("XDG_CONFIG_HOME")) != NULL)
		return config_format("%s/%s/%s", v, CONFIG_DIR_NAME,
		    CONFIG_FILE_NAME);
	if ((v = config_home()) != NULL)
		return config_format("%s/.config/%s/%s", v, CONFIG_DIR_NAME,
		    CONFIG_FILE_NAME);
	return NULL;
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
	c->data_dir = c->socket_path = c->device_name = c->remote_url = NULL;
}

/* A deep copy of *from into *to.  0 or -ENOMEM (and *to holds nothing). */
static int
config_copy(struct config *to, const struct config *from)
{
	*to = *from;
	to->data_dir = to->socket_path = to->device_name = NULL;
	to->remote_url = NULL;
	if ((from->data_dir != NULL &&
	    (to->data_dir = strdup(from->data_dir)) == NULL) ||
	    (from->socket_path != NULL &&
	    (to->socket_path = strdup(from->socket_path)) == NULL) ||
	    (from->device_name != NULL &&
	    (to->device_name = strdup(from->device_name)) == NULL) ||
	    (from->remote_url != NULL &&
	    (to->remote_url = strdup(from->remote_url)) == NULL)) {
		config_free(to);
		return -ENOMEM;
	}
	return 0;
}

/*
 * Parse a path value: "~" or "~/..." is relative to $HOME, anything else
 * must be absolute.  On -EINVAL *why says what is wrong.
 */
static int
config_parse_path(const char *value, char **ret, const char **why)
{
	const char *home;
	char *s;

	if (*value == '\0') {
		*why = "empty";
		return -EINVAL;
	}
	if (value[0] == '~' && (value[1] == '\0' || value[1] == '/')) {
		if ((home = config_home()) == NULL) {
			*why = "starts with ~ but HOME is not set";
			return -EINVAL;
		}
		s = config_format("%s%s", home, value + 1);
	} else if (value[0] != '/') {
		*why = "not an absolute path";
		return -EINVAL;
	} else
		s = strdup(value);
	if (s == NULL)
		return -ENOMEM;
	*ret = s;
	return 0;
}

/*
 * Parse a decimal integer in [min, max].  On -EINVAL *why says what is
 * wrong, in buf when it quotes the range.
 */
static int
config_parse_int(const char *value, int min, int max, int *ret,
    char *buf, size_t bufsz, const char **why)
{
	char *end;
	long long n;

	if (*value == '\0' || (*value != '-' && (*value < '0' || *value > '9'))) {
		*why = "not a number";
		return -EINVAL;
	}
	errno = 0;
	n = strtoll(value, &end, 10);
	if (*end != '\0') {
		*why = "not a number";
		return -EINVAL;
	}
	if (errno == ERANGE || n < min || n > max) {
		snprintf(buf, bufsz, "out of range %d-%d", min, max);
		*why = buf;
		return -EINVAL;
	}
	*ret = (int)n;
	return 0;
}

/* Set one key of c from value.  0, -ENOMEM, or -EINVAL with *why set. */
static int
config_set(struct config *c, const struct config_key *k, const char *value,
    char *buf, size_t bufsz, const char **why)
{
	char **sp = (char **)(void *)((char *)c + k->offset);
	int *ip = (int *)(void *)((char *)c + k->offset);
	char *s = NULL;
	const unsigned char *p;
	size_t i;
	int r;

	switch (k->type) {
	case CONFIG_T_PATH:
	case CONFIG_T_SOCKET:
		if ((r = config_parse_path(value, &s, why)) < 0)
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
		return config_parse_int(value, k->min, k->max, ip, buf, bufsz,
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
	}
	free(*sp);
	*sp = s;
	return 0;
}

/*
 * Record the first error of a parse and take message (NULL: out of
 * memory); later errors are dropped.
 */
static void
config_fail(struct config_parse *p, int error, int line, char *message)
{
	if (p->error != 0) {
		free(message);
		return;
	}
	p->error = message == NULL ? -ENOMEM : error;
	p->error_line = line;
	p->message = message;
}

/* libinih handler: one "name = value" line of section. */
static int
config_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct config_parse *p = user;
	const struct config_key *k = NULL;
	const char *why = NULL;
	char buf[64];
	size_t i;
	int r, section_known = 0;

	if (p->error != 0)
		return 0;
	if (name == NULL)
		name = "";
	if (value == NULL)
		value = "";
	for (i = 0; i < sizeof config_keys / sizeof config_keys[0]; i++) {
		if (strcmp(section, config_keys[i].section) != 0)
			continue;
		section_known = 1;
		if (strcmp(name, config_keys[i].name) == 0) {
			k = &config_keys[i];
			break;
		}
	}
	if (k == NULL) {
		if (*section == '\0')
			why = "outside any section ([ferryd] or [remote])";
		else if (section_known)
			snprintf(buf, sizeof buf, "unknown key in [%.40s]",
			    section);
		else
			snprintf(buf, sizeof buf, "in unknown section [%.30s]",
			    section);
		r = -EINVAL;
	} else
		r = config_set(&p->next, k, value, buf, sizeof buf, &why);
	if (r == -ENOMEM)
		config_fail(p, r, p->lineno, NULL);
	else if (r < 0)
		config_fail(p, r, p->lineno, config_format("%s:%d: %s: %s: '%s'",
		    p->path, p->lineno, name, why != NULL ? why : buf, value));
	return r == 0;
}

/*
 * libinih reader: hand over one physical line, counting it.  Stops the
 * parse (returns NULL) at end of file, on a read error, after the first
 * error, and at a line too long for libinih's buffer.
 */
static char *
config_reader(char *str, int num, void *stream)
{
	struct config_parse *p = stream;
	char *start;
	ssize_t n;

	if (p->error != 0)
		return NULL;
	errno = 0;
	if ((n = getline(&p->line, &p->linesz, p->fp)) == -1) {
		if (ferror(p->fp))
			config_fail(p, errno != 0 ? -errno : -EIO, 0,
			    config_format("%s: cannot read: %s", p->path,
			    strerror(errno != 0 ? errno : EIO)));
		return NULL;
	}
	p->lineno++;
	/*
	 * Leading blanks go: libinih would take an indented line for the
	 * continuation of the previous value, and no key here has several
	 * lines, so an indented key means what it says.
	 */
	for (start = p->line; *start == ' ' || *start == '\t'; start++)
		n--;
	/* The text, its newline and a NUL must fit libinih's num bytes. */
	if (n - (n > 0 && start[n - 1] == '\n') > num - 2) {
		config_fail(p, -EINVAL, p->lineno, config_format(
		    "%s:%d: line longer than %d bytes", p->path, p->lineno,
		    num - 2));
		return NULL;
	}
	memcpy(str, start, (size_t)n + 1);
	return str;
}

/*
 * libinih found a line it cannot parse at line.  Read that line again to
 * quote it, if the file can be rewound.
 */
static void
config_syntax_error(struct config_parse *p, int line)
{
	const char *start;
	ssize_t n = -1;
	int i;

	if (fseek(p->fp, 0, SEEK_SET) == 0) {
		for (i = 0; i < line; i++)
			if ((n = getline(&p->line, &p->linesz, p->fp)) == -1)
				break;
	}
	if (n == -1) {
		config_fail(p, -EINVAL, line, config_format(
		    "%s:%d: not a [section] or a 'key = value' line",
		    p->path, line));
		return;
	}
	while (n > 0 && (p->line[n - 1] == '\n' || p->line[n - 1] == '\r'))
		p->line[--n] = '\0';
	for (start = p->line; *start == ' ' || *start == '\t'; start++)
		continue;
	config_fail(p, -EINVAL, line, config_format(
	    "%s:%d: not a [section] or a 'key = value' line: '%s'",
	    p->path, line, start));
}

int
config_load(struct config *c, const char *path, bool must_exist,
    char **ret_error)
{
	struct config_parse p;
	struct stat st;
	int r, line;

	memset(&p, 0, sizeof p);
	p.path = path;
	if ((p.fp = fopen(path, "re")) == NULL) {
		r = -errno;
		if (r == -ENOENT && !must_exist)
			return 0;
		config_fail(&p, r, 0, config_format("%s: cannot open: %s",
		    path, strerror(-r)));
		goto done;
	}
	if (fstat(fileno(p.fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		config_fail(&p, -EISDIR, 0, config_format("%s: cannot read: %s",
		    path, strerror(EISDIR)));
		goto done;
	}
	if (config_copy(&p.next, c) < 0) {
		config_fail(&p, -ENOMEM, 0, NULL);
		goto done;
	}
	line = ini_parse_stream(config_reader, &p, config_handler, &p);
	/*
	 * libinih returns the first line it found wrong: either the line the
	 * handler refused (already reported) or an earlier malformed line.
	 */
	if (line > 0 && (p.error == 0 || (p.error_line > 0 &&
	    line < p.error_line))) {
		if (p.error != 0) {
			free(p.message);
			p.message = NULL;
			p.error = 0;
		}
		config_syntax_error(&p, line);
	} else if (line < 0 && p.error == 0)
		config_fail(&p, -ENOMEM, 0, NULL);
	if (p.error == 0) {
		config_free(c);
		*c = p.next;
		memset(&p.next, 0, sizeof p.next);
	}

done:
	r = p.error;
	if (r < 0 && ret_error != NULL)
		*ret_error = p.message;
	else
		free(p.message);
	config_free(&p.next);
	free(p.line);
	if (p.fp != NULL)
		fclose(p.fp);
	return r;
}
