/*
 * srv_keys: parse, look up and append to authorized_keys; see srv_keys.h.
 *
 * Invariant: every entry of a loaded set has a valid, distinct key and a
 * valid name or none.  srv_keys_append validates the whole existing file
 * with the same parser before it adds a line, so `ferry-server allow`
 * never appends to a file the server would refuse.
 */
#include "autoconfig.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <sodium.h>

#include "keys.h"
#include "srv_keys.h"

#define SRV_KEYS_LINE_MAX	4096

struct srv_key {
	char	 key[KEYS_PUB_B64_LEN + 1];
	char	*name;
};

struct srv_keys {
	struct srv_key	*v;
	size_t		 n;
	size_t		 cap;
};

static void
srv_keys_error(char **ret_error, const char *fmt, ...)
{
	va_list ap;
	char *s;

	if (ret_error == NULL)
		return;
	va_start(ap, fmt);
	if (vasprintf(&s, fmt, ap) == -1)
		s = NULL;
	va_end(ap);
	*ret_error = s;
}

int
srv_keys_empty(struct srv_keys **ret)
{
	struct srv_keys *ks;

	if ((ks = calloc(1, sizeof *ks)) == NULL)
		return -ENOMEM;
	*ret = ks;
	return 0;
}

void
srv_keys_free(struct srv_keys *ks)
{
	size_t i;

	if (ks == NULL)
		return;
	for (i = 0; i < ks->n; i++)
		free(ks->v[i].name);
	free(ks->v);
	free(ks);
}

size_t
srv_keys_count(const struct srv_keys *ks)
{
	return ks->n;
}

int
srv_keys_foreach(const struct srv_keys *ks,
    int (*cb)(const char *key, const char *name, void *arg), void *arg)
{
	size_t i;
	int r;

	for (i = 0; i < ks->n; i++)
		if ((r = cb(ks->v[i].key, ks->v[i].name, arg)) < 0)
			return r;
	return (int)ks->n;
}

static const struct srv_key *
srv_keys_find(const struct srv_keys *ks, const char *key)
{
	size_t i;

	if (key == NULL)
		return NULL;
	for (i = 0; i < ks->n; i++)
		if (strcmp(ks->v[i].key, key) == 0)
			return &ks->v[i];
	return NULL;
}

bool
srv_keys_allowed(const struct srv_keys *ks, const char *key)
{
	return srv_keys_find(ks, key) != NULL;
}

const char *
srv_keys_name(const struct srv_keys *ks, const char *key)
{
	const struct srv_key *e;

	e = srv_keys_find(ks, key);
	return e != NULL ? e->name : NULL;
}

int
srv_keys_check_key(const char *key, const char **ret_reason)
{
	unsigned char pk[crypto_sign_PUBLICKEYBYTES];

	if (key == NULL || strlen(key) != KEYS_PUB_B64_LEN ||
	    keys_b64_decode(key, pk, sizeof pk) < 0) {
		if (ret_reason != NULL)
			*ret_reason = "is not an Ed25519 public key (43 "
			    "characters of base64url without padding)";
		return -EINVAL;
	}
	return 0;
}

int
srv_keys_check_name(const char *name, const char **ret_reason)
{
	size_t len;

	len = strlen(name);
	if (len == 0 || len > SRV_KEYS_NAME_MAX) {
		if (ret_reason != NULL)
			*ret_reason = "must be 1-64 bytes";
		return -EINVAL;
	}
	return srv_keys_check_text(name, ret_reason);
}

int
srv_keys_check_text(const char *text, const char **ret_reason)
{
	const unsigned char *p;
	json_t *js;
	size_t len;

	len = strlen(text);
	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if (*p < 0x20 || *p == 0x7f) {
			if (ret_reason != NULL)
				*ret_reason = "must not contain control "
				    "characters";
			return -EINVAL;
		}
	/* It goes into JSON replies as it is: it must be UTF-8. */
	if ((js = json_string(text)) == NULL) {
		if (ret_reason != NULL)
			*ret_reason = "must be valid UTF-8";
		return -EINVAL;
	}
	json_decref(js);
	if (len > 0 && (text[0] == ' ' || text[len - 1] == ' ')) {
		if (ret_reason != NULL)
			*ret_reason = "must not start or end with a blank";
		return -EINVAL;
	}
	return 0;
}

static int
srv_keys_add(struct srv_keys *ks, const char *key, const char *name)
{
	struct srv_key *v;

	if (ks->n == ks->cap) {
		size_t cap = ks->cap == 0 ? 8 : ks->cap * 2;

		if ((v = reallocarray(ks->v, cap, sizeof *v)) == NULL)
			return -ENOMEM;
		ks->v = v;
		ks->cap = cap;
	}
	v = &ks->v[ks->n];
	memcpy(v->key, key, KEYS_PUB_B64_LEN + 1);
	v->name = NULL;
	if (name != NULL && (v->name = strdup(name)) == NULL)
		return -ENOMEM;
	ks->n++;
	return 0;
}

int
srv_keys_merge(struct srv_keys *ks, const char *key, const char *name)
{
	if (srv_keys_check_key(key, NULL) < 0 ||
	    (name != NULL && srv_keys_check_name(name, NULL) < 0))
		return -EINVAL;
	if (srv_keys_allowed(ks, key))
		return 0;
	return srv_keys_add(ks, key, name);
}

/*
 * Parse one line (no newline) into ks.  -EBADMSG with a reason, -EEXIST
 * for a key listed before, -ENOMEM.
 */
static int
srv_keys_parse_line(struct srv_keys *ks, char *line, const char **ret_what,
    const char **ret_reason)
{
	char *p, *key, *name, *end;
	const char *why;

	/* Trim trailing blanks (and a CR from a file edited elsewhere). */
	end = line + strlen(line);
	while (end > line && (end[-1] == ' ' || end[-1] == '\t' ||
	    end[-1] == '\r'))
		*--end = '\0';
	p = line;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	key = p;
	while (*p != '\0' && *p != ' ' && *p != '\t')
		p++;
	name = NULL;
	if (*p != '\0') {
		*p++ = '\0';
		while (*p == ' ' || *p == '\t')
			p++;
		name = p;
	}
	if (srv_keys_check_key(key, &why) < 0) {
		*ret_what = "key";
		*ret_reason = why;
		return -EBADMSG;
	}
	if (name != NULL && srv_keys_check_name(name, &why) < 0) {
		*ret_what = "name";
		*ret_reason = why;
		return -EBADMSG;
	}
	if (srv_keys_allowed(ks, key)) {
		*ret_what = "key";
		*ret_reason = "is listed twice";
		return -EEXIST;
	}
	return srv_keys_add(ks, key, name);
}

/* Parse an open file; path is for messages only. */
static int
srv_keys_read(FILE *f, const char *path, struct srv_keys **ret,
    char **ret_error)
{
	struct srv_keys *ks = NULL;
	struct stat sb;
	const char *what = NULL, *why = NULL;
	char *line = NULL;
	size_t cap = 0, lineno = 0;
	ssize_t n;
	int r;

	if (fstat(fileno(f), &sb) == -1) {
		r = -errno;
		srv_keys_error(ret_error, "cannot stat %s: %s", path,
		    strerror(-r));
		goto out;
	}
	if (!S_ISREG(sb.st_mode)) {
		r = -EBADMSG;
		srv_keys_error(ret_error, "%s is not a regular file", path);
		goto out;
	}
	if ((sb.st_mode & 022) != 0) {
		r = -EPERM;
		srv_keys_error(ret_error, "%s is writable by group or others "
		    "(mode %04o); chmod 600 it", path,
		    (unsigned int)(sb.st_mode & 07777));
		goto out;
	}
	if ((r = srv_keys_empty(&ks)) < 0)
		goto out;
	while ((n = getline(&line, &cap, f)) != -1) {
		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		if ((size_t)n > SRV_KEYS_LINE_MAX ||
		    strlen(line) != (size_t)n) {
			r = -EBADMSG;
			srv_keys_error(ret_error, "%s:%zu: line is too long or "
			    "holds a NUL byte", path, lineno);
			goto out;
		}
		if ((r = srv_keys_parse_line(ks, line, &what, &why)) < 0) {
			if (r == -ENOMEM) {
				srv_keys_error(ret_error, "out of memory");
				goto out;
			}
			srv_keys_error(ret_error, "%s:%zu: the %s %s", path,
			    lineno, what, why);
			r = -EBADMSG;
			goto out;
		}
	}
	if (ferror(f)) {
		r = -EIO;
		srv_keys_error(ret_error, "cannot read %s", path);
		goto out;
	}
	*ret = ks;
	ks = NULL;
	r = 0;
out:
	free(line);
	srv_keys_free(ks);
	return r;
}

int
srv_keys_load(const char *path, struct srv_keys **ret, char **ret_error)
{
	FILE *f;
	int r;

	if ((f = fopen(path, "re")) == NULL) {
		r = -errno;
		srv_keys_error(ret_error, "cannot open %s: %s", path,
		    strerror(-r));
		return r;
	}
	r = srv_keys_read(f, path, ret, ret_error);
	fclose(f);
	return r;
}

int
srv_keys_append(const char *path, const char *key, const char *name,
    char **ret_error)
{
	struct srv_keys *ks = NULL;
	const char *why, *old;
	char *line = NULL;
	FILE *f = NULL;
	off_t size;
	int fd = -1, n, r;

	if (srv_keys_check_key(key, &why) < 0) {
		srv_keys_error(ret_error, "key %s %s", key, why);
		return -EINVAL;
	}
	if (name != NULL && srv_keys_check_name(name, &why) < 0) {
		srv_keys_error(ret_error, "name '%s' %s", name, why);
		return -EINVAL;
	}
	fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC,
	    0600);
	if (fd == -1) {
		r = -errno;
		srv_keys_error(ret_error, "cannot open %s: %s%s", path,
		    strerror(-r), r == -ELOOP ? " (a symlink)" : "");
		goto out;
	}
	if ((f = fdopen(fd, "r")) == NULL) {
		r = -errno;
		srv_keys_error(ret_error, "cannot read %s: %s", path,
		    strerror(-r));
		goto out;
	}
	if ((r = srv_keys_read(f, path, &ks, ret_error)) < 0)
		goto out;
	if (srv_keys_allowed(ks, key)) {
		old = srv_keys_name(ks, key);
		srv_keys_error(ret_error, "key %s is already allowed in %s%s%s",
		    key, path, old != NULL ? " as " : "",
		    old != NULL ? old : "");
		r = -EEXIST;
		goto out;
	}
	/* A last line without a newline must not swallow ours. */
	if ((size = lseek(fd, 0, SEEK_END)) == -1) {
		r = -errno;
		goto io_fail;
	}
	if (size > 0) {
		char last;

		if (pread(fd, &last, 1, size - 1) != 1) {
			r = -EIO;
			goto io_fail;
		}
		if (last != '\n' && write(fd, "\n", 1) != 1) {
			r = -EIO;
			goto io_fail;
		}
	}
	n = asprintf(&line, "%s%s%s\n", key, name != NULL ? " " : "",
	    name != NULL ? name : "");
	if (n < 0) {
		line = NULL;
		r = -ENOMEM;
		goto io_fail;
	}
	errno = 0;
	if (write(fd, line, (size_t)n) != n || fsync(fd) == -1) {
		r = errno != 0 ? -errno : -EIO;
		goto io_fail;
	}
	r = 0;
	goto out;
io_fail:
	srv_keys_error(ret_error, "cannot write %s: %s", path, strerror(-r));
out:
	free(line);
	srv_keys_free(ks);
	if (f != NULL)
		fclose(f);
	else if (fd != -1)
		close(fd);
	return r;
}
