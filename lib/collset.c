/*
 * collset: collection sets and pull filters; see collset.h.
 *
 * Invariant: a set or filter this module writes is sorted by name with
 * "*" last, each name once, so two equal sets are equal strings.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collset.h"
#include "names.h"

struct collset_entry {
	char	 name[NAMES_MAX + 1];
	int64_t	 floor;
};

static int
collset_entry_cmp(const void *a, const void *b)
{
	return strcmp(((const struct collset_entry *)a)->name,
	    ((const struct collset_entry *)b)->name);
}

bool
collset_all(const char *set)
{
	return set == NULL || strcmp(set, "*") == 0;
}

bool
collset_has(const char *set, const char *collection)
{
	const char *p, *end;
	size_t len;

	if (collset_all(set))
		return true;
	len = strlen(collection);
	for (p = set; *p != '\0'; p = *end == ',' ? end + 1 : end) {
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		if ((size_t)(end - p) == len && memcmp(p, collection, len) == 0)
			return true;
	}
	return false;
}

/*
 * Split text into v (at most COLLSET_MAX entries, blanks around each
 * dropped), "NAME[:FLOOR]" when floors is true.  *ret_star: "*" was
 * there (its floor in *ret_star_floor).  The count, or -EINVAL (why).
 */
static int
collset_split(const char *text, bool floors, struct collset_entry *v,
    bool *ret_star, int64_t *ret_star_floor, char *why, size_t size)
{
	const char *p = text, *end, *colon, *reason;
	char *e;
	size_t len;
	int64_t fl;
	int n = 0, i;

	*ret_star = false;
	*ret_star_floor = 0;
	for (;;) {
		while (*p == ' ' || *p == '\t')
			p++;
		if ((end = strchr(p, ',')) == NULL)
			end = p + strlen(p);
		len = (size_t)(end - p);
		while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
			len--;
		colon = floors ? memchr(p, ':', len) : NULL;
		fl = 0;
		if (colon != NULL) {
			fl = strtoll(colon + 1, &e, 10);
			if (e != p + len || fl < 0 || colon + 1 == e) {
				snprintf(why, size, "a bad floor in '%.*s'",
				    (int)(len > 150 ? 150 : len), p);
				return -EINVAL;
			}
			len = (size_t)(colon - p);
		}
		if (len == 1 && *p == '*') {
			*ret_star = true;
			*ret_star_floor = fl;
		} else {
			if (len == 0) {
				snprintf(why, size, "an empty collection name "
				    "(names are separated by commas; '*' is "
				    "every collection)");
				return -EINVAL;
			}
			if (n == COLLSET_MAX) {
				snprintf(why, size, "more than %d "
				    "collections", COLLSET_MAX);
				return -EINVAL;
			}
			memcpy(v[n].name, p, len > NAMES_MAX ? NAMES_MAX : len);
			v[n].name[len > NAMES_MAX ? NAMES_MAX : len] = '\0';
			if (len > NAMES_MAX || names_check_collection(v[n].name,
			    &reason) < 0) {
				snprintf(why, size, "the collection '%.*s' %s",
				    (int)(len > NAMES_MAX ? NAMES_MAX : len), p,
				    len > NAMES_MAX ? "is longer than 128 bytes"
				    : reason);
				return -EINVAL;
			}
			for (i = 0; i < n; i++)
				if (strcmp(v[i].name, v[n].name) == 0)
					break;
			if (i == n) {
				v[n].floor = fl;
				n++;
			}
		}
		if (*end == '\0')
			break;
		p = end + 1;
	}
	qsort(v, (size_t)n, sizeof *v, collset_entry_cmp);
	return n;
}

/* Write entries (and "*" when star) as text: names, then floors above
 * cursor.  Malloc'd, NULL on ENOMEM. */
static char *
collset_join(const struct collset_entry *v, int n, bool star,
    int64_t star_floor, bool floors, int64_t cursor)
{
	size_t cap = (size_t)(n + 1) * (NAMES_MAX + 24) + 1, o = 0;
	char *s;
	int i;

	if ((s = malloc(cap)) == NULL)
		return NULL;
	s[0] = '\0';
	for (i = 0; i < n; i++) {
		o += (size_t)snprintf(s + o, cap - o, "%s%s", o > 0 ? "," : "",
		    v[i].name);
		if (floors && v[i].floor > cursor)
			o += (size_t)snprintf(s + o, cap - o, ":%" PRId64,
			    v[i].floor);
	}
	if (star) {
		o += (size_t)snprintf(s + o, cap - o, "%s*", o > 0 ? "," : "");
		if (floors && star_floor > cursor)
			snprintf(s + o, cap - o, ":%" PRId64, star_floor);
	}
	return s;
}

int
collset_norm(const char *text, char **ret, char *why, size_t size)
{
	struct collset_entry *v;
	int64_t sf;
	bool star;
	int n;

	if ((v = calloc(COLLSET_MAX, sizeof *v)) == NULL)
		return -ENOMEM;
	if ((n = collset_split(text, false, v, &star, &sf, why, size)) < 0) {
		free(v);
		return n;
	}
	if (star && n > 0) {
		snprintf(why, size, "'*' (every collection) cannot be given "
		    "with names");
		free(v);
		return -EINVAL;
	}
	*ret = star ? strdup("*") : collset_join(v, n, false, 0, false, 0);
	free(v);
	return *ret != NULL ? 0 : -ENOMEM;
}

/* The floor collection name had in the old filter, or -1 if it was not
 * pulled. */
static int64_t
collset_old_floor(const struct collset_entry *v, int n, bool star,
    int64_t star_floor, const char *name)
{
	struct collset_entry k, *e;

	snprintf(k.name, sizeof k.name, "%s", name);
	e = n > 0 ? bsearch(&k, v, (size_t)n, sizeof *v, collset_entry_cmp) :
	    NULL;
	if (e != NULL)
		return e->floor;
	return star ? star_floor : -1;
}

int
collset_move(const char *filter, const char *set, int64_t cursor,
    char **ret_filter, int64_t *ret_cursor)
{
	struct collset_entry *ov = NULL, *nv = NULL;
	int64_t osf, nsf = 0, f, low;
	bool ostar, nstar;
	char why[8];
	int on, nn, i, r;

	if ((ov = calloc(COLLSET_MAX, sizeof *ov)) == NULL ||
	    (nv = calloc(COLLSET_MAX, sizeof *nv)) == NULL) {
		r = -ENOMEM;
		goto out;
	}
	if (filter == NULL) {
		on = 0;
		ostar = true;
		osf = 0;
	} else if ((on = collset_split(filter, true, ov, &ostar, &osf, why,
	    sizeof why)) < 0) {
		r = on;
		goto out;
	}
	nstar = collset_all(set);
	if (nstar) {
		/* Every collection: the ones named before keep theirs. */
		nn = on;
		memcpy(nv, ov, (size_t)on * sizeof *nv);
	} else if ((nn = collset_split(set, false, nv, &nstar, &nsf, why,
	    sizeof why)) < 0) {
		r = nn;
		goto out;
	}
	/* Pulled up to cursor already: from there (or its own floor). */
	low = cursor;
	for (i = 0; i < nn; i++) {
		f = collset_old_floor(ov, on, ostar, osf, nv[i].name);
		nv[i].floor = f < 0 ? 0 : f > cursor ? f : cursor;
		if (nv[i].floor < low)
			low = nv[i].floor;
	}
	if (nstar) {
		nsf = ostar ? (osf > cursor ? osf : cursor) : 0;
		if (nsf < low)
			low = nsf;
	}
	for (i = 0; i < nn && nv[i].floor <= low; i++)
		;
	if (nstar && i == nn && nsf <= low) {
		*ret_filter = NULL;	/* everything, no floor */
		*ret_cursor = low;
		r = 0;
		goto out;
	}
	if ((*ret_filter = collset_join(nv, nn, nstar, nsf, true, low)) ==
	    NULL) {
		r = -ENOMEM;
		goto out;
	}
	*ret_cursor = low;
	r = 0;
out:
	free(ov);
	free(nv);
	return r;
}
