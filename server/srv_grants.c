/*
 * srv_grants: compiled grants and reader filters; see srv_grants.h.
 *
 * Invariants: a sealed set is sorted by key and never changes; a grant's
 * patterns are valid (srv_grants_list_norm) and its read list holds its
 * write patterns too (write implies read), so a read check looks at one
 * list; a filter's exact entries are sorted by name.
 */
#include "autoconfig.h"

#include <errno.h>
#include <fnmatch.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "names.h"
#include "srv_grants.h"

struct srv_grant {
	int	  refs;
	char	**rd;		/* read patterns, then the write ones */
	size_t	  nrd;
	char	**wr;		/* points into rd */
	size_t	  nwr;
};

struct srv_grant_entry {
	char			*key;
	struct srv_grant	*g;
};

struct srv_grants {
	struct srv_grant_entry	*v;
	size_t			 n;
	size_t			 cap;
};

struct srv_filter_entry {
	char	*name;
	int64_t	 floor;
};

struct srv_filter {
	struct srv_filter_entry	 v[SRV_FILTER_MAX];
	size_t			 n;
	bool			 star;
	int64_t			 star_floor;
};

/* A pattern: 1-128 bytes of [A-Za-z0-9._-*].  0 or -EINVAL. */
static int
srv_grants_check_pattern(const char *p, size_t len)
{
	size_t i;
	char c;

	if (len == 0 || len > SRV_GRANTS_PATTERN_MAX)
		return -EINVAL;
	for (i = 0; i < len; i++) {
		c = p[i];
		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		    (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		    c == '-' || c == '*'))
			return -EINVAL;
	}
	return 0;
}

/* Is the pattern [p, p + len) in the comma list s already? */
static bool
srv_grants_list_has(const char *s, const char *p, size_t len)
{
	const char *q;

	while (*s != '\0') {
		q = strchr(s, ',');
		if (q == NULL)
			q = s + strlen(s);
		if ((size_t)(q - s) == len && memcmp(s, p, len) == 0)
			return true;
		s = *q == ',' ? q + 1 : q;
	}
	return false;
}

int
srv_grants_list_norm(const char *list, char **ret, char *why, size_t size)
{
	const char *p, *end;
	char *out;
	size_t len, o = 0, n = 0;

	if ((out = malloc(strlen(list) + 1)) == NULL)
		return -ENOMEM;
	out[0] = '\0';
	p = list;
	while (*p != '\0') {
		while (*p == ' ' || *p == '\t')
			p++;
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		if (len == 0 && *end == '\0' && n == 0 && o == 0)
			break;		/* "" or blanks: the empty list */
		if (srv_grants_check_pattern(p, len) < 0) {
			snprintf(why, size, "the pattern '%.*s' is not a "
			    "collection name or a name with '*' (1-128 bytes "
			    "of A-Z a-z 0-9 . _ - *)", (int)(len > 140 ? 140 :
			    len), p);
			free(out);
			return -EINVAL;
		}
		if (!srv_grants_list_has(out, p, len)) {
			if (++n > SRV_GRANTS_LIST_MAX) {
				snprintf(why, size, "more than %d patterns",
				    SRV_GRANTS_LIST_MAX);
				free(out);
				return -EINVAL;
			}
			if (o > 0)
				out[o++] = ',';
			memcpy(out + o, p, len);
			o += len;
			out[o] = '\0';
		}
		p = *end == ',' ? end + 1 : end;
	}
	*ret = out;
	return 0;
}

/* Split a normalised list onto the end of v (n entries so far). */
static int
srv_grants_split(const char *list, char **v, size_t *n)
{
	const char *p = list, *end;

	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if ((v[*n] = strndup(p, (size_t)(end - p))) == NULL)
			return -ENOMEM;
		(*n)++;
		p = *end == ',' ? end + 1 : end;
	}
	return 0;
}

void
srv_grant_unref(struct srv_grant *g)
{
	size_t i;

	if (g == NULL || --g->refs > 0)
		return;
	for (i = 0; i < g->nrd; i++)
		free(g->rd[i]);
	free(g->rd);
	free(g);
}

/* A grant from two normalised lists.  0, -EINVAL, -ENOMEM. */
static int
srv_grant_make(const char *rd, const char *wr, struct srv_grant **ret)
{
	struct srv_grant *g;
	char *nrd = NULL, *nwr = NULL, why[8];
	size_t cap;
	int r;

	if ((r = srv_grants_list_norm(rd, &nrd, why, sizeof why)) < 0 ||
	    (r = srv_grants_list_norm(wr, &nwr, why, sizeof why)) < 0)
		goto out;
	r = -ENOMEM;
	if ((g = calloc(1, sizeof *g)) == NULL)
		goto out;
	g->refs = 1;
	cap = 2 * SRV_GRANTS_LIST_MAX;
	if ((g->rd = calloc(cap, sizeof *g->rd)) == NULL ||
	    srv_grants_split(nrd, g->rd, &g->nrd) < 0) {
		srv_grant_unref(g);
		goto out;
	}
	/* Write implies read: the write patterns close the read list. */
	g->wr = g->rd + g->nrd;
	if (srv_grants_split(nwr, g->rd, &g->nrd) < 0) {
		srv_grant_unref(g);
		goto out;
	}
	g->nwr = g->nrd - (size_t)(g->wr - g->rd);
	*ret = g;
	r = 0;
out:
	free(nrd);
	free(nwr);
	return r;
}

static bool
srv_grant_match(char *const *v, size_t n, const char *collection)
{
	size_t i;

	/* Patterns hold no '?', '[' or '\': fnmatch does '*' alone. */
	for (i = 0; i < n; i++)
		if (fnmatch(v[i], collection, 0) == 0)
			return true;
	return false;
}

bool
srv_grant_can_read(const struct srv_grant *g, const char *collection)
{
	return g == NULL || srv_grant_match(g->rd, g->nrd, collection);
}

bool
srv_grant_can_write(const struct srv_grant *g, const char *collection)
{
	return g == NULL || srv_grant_match(g->wr, g->nwr, collection);
}

/* A normalised list as a JSON array of its patterns. */
static json_t *
srv_grants_list_json(const char *list)
{
	const char *p = list, *end;
	json_t *a;

	if ((a = json_array()) == NULL)
		return NULL;
	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		json_array_append_new(a, json_stringn(p, (size_t)(end - p)));
		p = *end == ',' ? end + 1 : end;
	}
	return a;
}

json_t *
srv_grants_json(const char *rd, const char *wr)
{
	return json_pack("{s:o, s:o}", "read", srv_grants_list_json(rd),
	    "write", srv_grants_list_json(wr));
}

int
srv_grants_new(struct srv_grants **ret)
{
	if ((*ret = calloc(1, sizeof **ret)) == NULL)
		return -ENOMEM;
	return 0;
}

void
srv_grants_free(struct srv_grants *gs)
{
	size_t i;

	if (gs == NULL)
		return;
	for (i = 0; i < gs->n; i++) {
		free(gs->v[i].key);
		srv_grant_unref(gs->v[i].g);
	}
	free(gs->v);
	free(gs);
}

int
srv_grants_add(struct srv_grants *gs, const char *key, const char *rd,
    const char *wr)
{
	struct srv_grant_entry *v;
	struct srv_grant *g;
	char *k;
	int r;

	if (gs->n == gs->cap) {
		size_t cap = gs->cap == 0 ? 8 : gs->cap * 2;

		if ((v = reallocarray(gs->v, cap, sizeof *v)) == NULL)
			return -ENOMEM;
		gs->v = v;
		gs->cap = cap;
	}
	if ((r = srv_grant_make(rd, wr, &g)) < 0)
		return r;
	if ((k = strdup(key)) == NULL) {
		srv_grant_unref(g);
		return -ENOMEM;
	}
	gs->v[gs->n].key = k;
	gs->v[gs->n].g = g;
	gs->n++;
	return 0;
}

static int
srv_grant_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct srv_grant_entry *)a)->key,
	    ((const struct srv_grant_entry *)b)->key);
}

void
srv_grants_seal(struct srv_grants *gs)
{
	if (gs->n > 1)
		qsort(gs->v, gs->n, sizeof *gs->v, srv_grant_entry_cmp);
}

size_t
srv_grants_count(const struct srv_grants *gs)
{
	return gs != NULL ? gs->n : 0;
}

struct srv_grant *
srv_grants_get(const struct srv_grants *gs, const char *key)
{
	struct srv_grant_entry k, *e;

	if (gs == NULL || gs->n == 0 || key == NULL)
		return NULL;
	k.key = (char *)key;
	if ((e = bsearch(&k, gs->v, gs->n, sizeof *gs->v,
	    srv_grant_entry_cmp)) == NULL)
		return NULL;
	e->g->refs++;
	return e->g;
}

/* --- filters --- */

static int
srv_filter_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct srv_filter_entry *)a)->name,
	    ((const struct srv_filter_entry *)b)->name);
}

void
srv_filter_free(struct srv_filter *f)
{
	size_t i;

	if (f == NULL)
		return;
	for (i = 0; i < f->n; i++)
		free(f->v[i].name);
	free(f);
}

/* One entry [p, end): NAME[:FLOOR] or *[:FLOOR].  0 or -EINVAL/-ENOMEM. */
static int
srv_filter_entry(struct srv_filter *f, const char *p, const char *end,
    char *why, size_t size)
{
	const char *colon, *reason;
	char name[NAMES_MAX + 1], *e;
	long long floor = 0;
	size_t len, i;

	colon = memchr(p, ':', (size_t)(end - p));
	len = (size_t)((colon != NULL ? colon : end) - p);
	if (colon != NULL) {
		errno = 0;
		floor = strtoll(colon + 1, &e, 10);
		if (errno != 0 || e != end || colon + 1 == end ||
		    colon[1] < '0' || colon[1] > '9') {
			snprintf(why, size, "the entry '%.*s' has a floor that "
			    "is not a non-negative number", (int)(end - p >
			    160 ? 160 : end - p), p);
			return -EINVAL;
		}
	}
	if (len == 1 && p[0] == '*') {
		if (f->star) {
			snprintf(why, size, "'*' is given twice");
			return -EINVAL;
		}
		f->star = true;
		f->star_floor = floor;
		return 0;
	}
	if (len > NAMES_MAX)
		len = NAMES_MAX + 1;	/* too long, and said so below */
	memcpy(name, p, len > NAMES_MAX ? NAMES_MAX : len);
	name[len > NAMES_MAX ? NAMES_MAX : len] = '\0';
	if (len > NAMES_MAX || names_check_collection(name, &reason) < 0) {
		snprintf(why, size, "the collection '%.*s' %s", (int)(len >
		    NAMES_MAX ? NAMES_MAX : len), p, len > NAMES_MAX ?
		    "is longer than 128 bytes" : reason);
		return -EINVAL;
	}
	for (i = 0; i < f->n; i++)
		if (strcmp(f->v[i].name, name) == 0) {
			snprintf(why, size, "the collection '%s' is given "
			    "twice", name);
			return -EINVAL;
		}
	if (f->n == SRV_FILTER_MAX) {
		snprintf(why, size, "more than %d collections",
		    SRV_FILTER_MAX);
		return -EINVAL;
	}
	if ((f->v[f->n].name = strdup(name)) == NULL)
		return -ENOMEM;
	f->v[f->n].floor = floor;
	f->n++;
	return 0;
}

int
srv_filter_parse(const char *text, struct srv_filter **ret, char *why,
    size_t size)
{
	struct srv_filter *f;
	const char *p = text, *end;
	int r;

	if ((f = calloc(1, sizeof *f)) == NULL)
		return -ENOMEM;
	for (;;) {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		if (end == p) {
			snprintf(why, size, "an entry is empty");
			r = -EINVAL;
			goto fail;
		}
		if ((r = srv_filter_entry(f, p, end, why, size)) < 0)
			goto fail;
		if (*end == '\0')
			break;
		p = end + 1;
	}
	if (f->n > 1)
		qsort(f->v, f->n, sizeof *f->v, srv_filter_entry_cmp);
	*ret = f;
	return 0;
fail:
	srv_filter_free(f);
	return r;
}

bool
srv_filter_wants(const struct srv_filter *f, const char *collection,
    int64_t seq)
{
	struct srv_filter_entry k, *e;

	if (f == NULL)
		return true;
	k.name = (char *)collection;
	e = f->n > 0 ? bsearch(&k, f->v, f->n, sizeof *f->v,
	    srv_filter_entry_cmp) : NULL;
	if (e != NULL)
		return seq > e->floor;
	return f->star && seq > f->star_floor;
}
