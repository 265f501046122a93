/*
 * inifile: an INI file, key by key, with errors that say where; see
 * inifile.h.
 *
 * Lines are read here (libinih only sees them one at a time through its
 * stream reader) so the physical line number is known in the handler and
 * a line too long for libinih's fixed buffer is refused instead of being
 * split in two.  The first error wins: the handler and the reader stop
 * once one is recorded, and a malformed line libinih reports before the
 * line a key was refused on replaces that key's error.
 */
#include "autoconfig.h"

#include <sys/stat.h>
#include <sys/types.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <ini.h>

#include "inifile.h"

/* State of one inifile_parse(), shared by the reader and the handler. */
struct inifile {
	FILE		*fp;
	const char	*path;
	inifile_key_fn	 fn;
	void		*arg;
	char		*line;		/* getline(3) buffer */
	size_t		 linesz;
	int		 lineno;	/* physical line being handled */
	int		 error;		/* first error, -errno, or 0 */
	int		 error_line;
	char		*message;	/* malloc'd message for error */
};

char *
inifile_format(const char *fmt, ...)
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

char *
inifile_user_path(const char *name)
{
	const char *v;

	if ((v = getenv("XDG_CONFIG_HOME")) != NULL && v[0] == '/')
		return inifile_format("%s/ferry/%s", v, name);
	if ((v = getenv("HOME")) != NULL && *v != '\0')
		return inifile_format("%s/.config/ferry/%s", v, name);
	return NULL;
}

int
inifile_path(const char *value, char **ret, const char **ret_why)
{
	const char *home;
	char *s;

	if (*value == '\0') {
		*ret_why = "empty";
		return -EINVAL;
	}
	if (value[0] == '~' && (value[1] == '\0' || value[1] == '/')) {
		home = getenv("HOME");
		if (home == NULL || *home == '\0') {
			*ret_why = "starts with ~ but HOME is not set";
			return -EINVAL;
		}
		s = inifile_format("%s%s", home, value + 1);
	} else if (value[0] != '/') {
		*ret_why = "not an absolute path";
		return -EINVAL;
	} else
		s = strdup(value);
	if (s == NULL)
		return -ENOMEM;
	*ret = s;
	return 0;
}

int
inifile_int(const char *value, int min, int max, int *ret, char *buf,
    size_t bufsz, const char **ret_why)
{
	char *end;
	long long n;

	if (*value == '\0' ||
	    (*value != '-' && (*value < '0' || *value > '9'))) {
		*ret_why = "not a number";
		return -EINVAL;
	}
	errno = 0;
	n = strtoll(value, &end, 10);
	if (*end != '\0') {
		*ret_why = "not a number";
		return -EINVAL;
	}
	if (errno == ERANGE || n < min || n > max) {
		snprintf(buf, bufsz, "out of range %d-%d", min, max);
		*ret_why = buf;
		return -EINVAL;
	}
	*ret = (int)n;
	return 0;
}

/*
 * Record the first error of a parse and take message (NULL: out of
 * memory); later errors are dropped.
 */
static void
inifile_fail(struct inifile *p, int error, int line, char *message)
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
inifile_handler(void *user, const char *section, const char *name,
    const char *value)
{
	struct inifile *p = user;
	const char *why = NULL;
	char buf[64];
	int r;

	if (p->error != 0)
		return 0;
	if (name == NULL)
		name = "";
	if (value == NULL)
		value = "";
	buf[0] = '\0';
	r = p->fn(p->arg, section, name, value, buf, sizeof buf, &why);
	if (r == -ENOMEM)
		inifile_fail(p, r, p->lineno, NULL);
	else if (r == -EACCES)
		inifile_fail(p, -EINVAL, p->lineno, inifile_format("%s:%d: "
		    "%s: %s", p->path, p->lineno, name, why != NULL ? why :
		    buf));
	else if (r < 0)
		inifile_fail(p, r, p->lineno, inifile_format("%s:%d: %s: %s: "
		    "'%s'", p->path, p->lineno, name, why != NULL ? why : buf,
		    value));
	return r == 0;
}

/*
 * libinih reader: hand over one physical line, counting it.  Stops the
 * parse (returns NULL) at end of file, on a read error, after the first
 * error, and at a line too long for libinih's buffer.
 */
static char *
inifile_reader(char *str, int num, void *stream)
{
	struct inifile *p = stream;
	char *start;
	ssize_t n;

	if (p->error != 0)
		return NULL;
	errno = 0;
	if ((n = getline(&p->line, &p->linesz, p->fp)) == -1) {
		if (ferror(p->fp))
			inifile_fail(p, errno != 0 ? -errno : -EIO, 0,
			    inifile_format("%s: cannot read: %s", p->path,
			    strerror(errno != 0 ? errno : EIO)));
		return NULL;
	}
	p->lineno++;
	/*
	 * Leading blanks go: libinih would take an indented line for the
	 * continuation of the previous value, and no key has several
	 * lines, so an indented key means what it says.
	 */
	for (start = p->line; *start == ' ' || *start == '\t'; start++)
		n--;
	/* The text, its newline and a NUL must fit libinih's num bytes. */
	if (n - (n > 0 && start[n - 1] == '\n') > num - 2) {
		inifile_fail(p, -EINVAL, p->lineno, inifile_format(
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
inifile_syntax_error(struct inifile *p, int line)
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
		inifile_fail(p, -EINVAL, line, inifile_format(
		    "%s:%d: not a [section] or a 'key = value' line",
		    p->path, line));
		return;
	}
	while (n > 0 && (p->line[n - 1] == '\n' || p->line[n - 1] == '\r'))
		p->line[--n] = '\0';
	for (start = p->line; *start == ' ' || *start == '\t'; start++)
		continue;
	inifile_fail(p, -EINVAL, line, inifile_format(
	    "%s:%d: not a [section] or a 'key = value' line: '%s'",
	    p->path, line, start));
}

int
inifile_parse(const char *path, bool must_exist, inifile_key_fn fn,
    void *arg, char **ret_error)
{
	struct inifile p;
	struct stat st;
	int r, line;

	memset(&p, 0, sizeof p);
	p.path = path;
	p.fn = fn;
	p.arg = arg;
	if ((p.fp = fopen(path, "re")) == NULL) {
		r = -errno;
		if (r == -ENOENT && !must_exist)
			return 0;
		inifile_fail(&p, r, 0, inifile_format("%s: cannot open: %s",
		    path, strerror(-r)));
		goto done;
	}
	if (fstat(fileno(p.fp), &st) == 0 && S_ISDIR(st.st_mode)) {
		inifile_fail(&p, -EISDIR, 0, inifile_format("%s: cannot "
		    "read: %s", path, strerror(EISDIR)));
		goto done;
	}
	line = ini_parse_stream(inifile_reader, &p, inifile_handler, &p);
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
		inifile_syntax_error(&p, line);
	} else if (line < 0 && p.error == 0)
		inifile_fail(&p, -ENOMEM, 0, NULL);

done:
	r = p.error;
	if (r < 0 && ret_error != NULL)
		*ret_error = p.message;
	else
		free(p.message);
	free(p.line);
	if (p.fp != NULL)
		fclose(p.fp);
	return r;
}
