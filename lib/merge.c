/*
 * merge: three-way JSON merge and field-level diff; see merge.h for the
 * contract and DESIGN.md "Merge and conflicts" for why.
 *
 * The merge is one walk over mine, looking up the same place in base and
 * theirs, then over the members only theirs has.  At every place the
 * rules are, with "absent" a value like any other: mine equal to theirs,
 * take it; mine equal to base, take theirs (which may be a deletion);
 * theirs equal to base, take mine; otherwise both changed it, and two
 * objects (over an object or nothing) merge member by member, two keyed
 * arrays (over a keyed array or nothing) merge element by element, and
 * anything else is a conflict that keeps mine's value.  Recursing into two
 * objects gives the same result as those rules would, so objects are never
 * compared whole: each leaf is compared at most three times, and members
 * are found by walking the objects in step (documents parsed from the same
 * source keep their member order) before falling back to a lookup.  Arrays
 * go through the plain rules first, so a keyed merge only runs when both
 * sides changed the array.
 *
 * Invariants the callers rely on:
 * - The inputs are never modified.  The result shares every subtree that
 *   came through unchanged (json_incref, no copies), and a merged object or
 *   array that would be identical to mine's is mine's own value.  So the
 *   result is read-only for the caller.
 * - Paths are rendered only when a conflict is found: the walk keeps the
 *   current JSON Pointer as a chain of tokens on the C stack.
 * - A keyed array element is named by its index in the merged array, and
 *   every choice of order is symmetric in mine and theirs, so swapping the
 *   two gives the same conflict paths and, for a clean merge, an equal
 *   document.
 *
 * Keyed arrays: all elements objects with a string "id", unique within the
 * array; an empty array is keyed when the others at that place are.  Ids
 * are indexed in a small open-addressing table per array (jansson keeps its
 * own hash table private, and a json object used as a map would cost two
 * allocations per element), so merging is linear in the array's length.
 * Order of the merged array: the elements both sides keep ("common") follow
 * the order both sides agree on, or the order of the side that moved them
 * when the other kept base's order; when both moved them differently (or
 * the order cannot be told because base lacks some of them) the whole array
 * is a conflict at its own path and mine's array is kept.  Each element
 * only one side has (added there, or deleted by the other side but changed
 * here, which is a conflict at its index that keeps it with this side's
 * value) is placed right after the nearest element before it in that
 * side's array that is in the result (or at the front), keeping that
 * side's order; when both sides put elements at the same place, the run
 * whose first id is smaller bytewise goes first.  An id added on both
 * sides merges as two objects over {}.
 *
 * This is not a general JSON Patch engine, and it does not resolve
 * conflicts: it reports them.
 */
#include "autoconfig.h"

#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "merge.h"

#define NONE	SIZE_MAX

/* One token of a JSON Pointer, innermost first: a member, or an index. */
struct ptok {
	const struct ptok	*up;
	const char		*key;	/* NULL for an array index */
	size_t			 index;
};

/* A conflict (or, for the diff, a changed path) as recorded. */
struct found {
	char	*path;
	json_t	*base;
	json_t	*mine;
	json_t	*theirs;
};

struct mctx {
	struct found	*v;
	size_t		 n;
	size_t		 cap;
};

/* One element of a keyed array, with what the merge learns about it. */
struct kelem {
	json_t		*v;
	const char	*id;
	size_t		 len;
	uint32_t	 hash;
	size_t		 other;	/* same id on the other side, or NONE */
	size_t		 base;	/* same id in base, or NONE */
	size_t		 sp;	/* position among the common elements */
	int		 alive;	/* in the merged array */
};

/* A keyed array with its id index; n == 0 for an empty or absent one. */
struct kside {
	json_t		*arr;
	size_t		 n;
	struct kelem	*e;
	size_t		*slot;	/* element index + 1, 0 for free */
	size_t		 mask;
};

static int	merge_value(struct mctx *, const struct ptok *, json_t *,
		    json_t *, json_t *, json_t **);
static int	diff_value(struct mctx *, const struct ptok *, json_t *,
		    json_t *);

/*
 * The value of key in obj (NULL if obj is NULL or lacks it).  *it walks obj
 * in step with the caller's walk: when it is at key, that costs a string
 * compare; otherwise one lookup, which also moves *it past the key found.
 */
static json_t *
obj_find(json_t *obj, void **it, const char *key)
{
	void *at;
	json_t *v;

	if (obj == NULL)
		return NULL;
	if (*it != NULL && strcmp(json_object_iter_key(*it), key) == 0)
		at = *it;
	else if ((at = json_object_iter_at(obj, key)) == NULL)
		return NULL;
	v = json_object_iter_value(at);
	*it = json_object_iter_next(obj, at);
	return v;
}

/*
 * json_equal() with NULL as "absent", equal only to itself, and members
 * found by walking both objects in step rather than by a lookup each.
 * Scalars compare as json_equal() says (1 and 1.0 differ).
 */
static int
same(json_t *a, json_t *b)
{
	void *ai, *bi;
	size_t i, n;

	if (a == b)
		return 1;
	if (a == NULL || b == NULL || json_typeof(a) != json_typeof(b))
		return 0;
	switch (json_typeof(a)) {
	case JSON_OBJECT:
		if (json_object_size(a) != json_object_size(b))
			return 0;
		bi = json_object_iter(b);
		for (ai = json_object_iter(a); ai != NULL;
		    ai = json_object_iter_next(a, ai)) {
			if (!same(json_object_iter_value(ai), obj_find(b, &bi,
			    json_object_iter_key(ai))))
				return 0;
		}
		return 1;
	case JSON_ARRAY:
		if ((n = json_array_size(a)) != json_array_size(b))
			return 0;
		for (i = 0; i < n; i++)
			if (!same(json_array_get(a, i), json_array_get(b, i)))
				return 0;
		return 1;
	default:
		return json_equal(a, b);
	}
}

/*
 * Render the pointer ending at p ("" for NULL), escaping ~ and / as RFC
 * 6901 says.  Returns a string to free, or NULL when memory runs out.
 */
static char *
path_render(const struct ptok *p)
{
	const struct ptok *q;
	const char *s;
	char num[32], *buf, *w;
	size_t len = 0, n;

	for (q = p; q != NULL; q = q->up) {
		len++;
		if (q->key == NULL) {
			len += (size_t)snprintf(num, sizeof num, "%zu",
			    q->index);
			continue;
		}
		for (s = q->key; *s != '\0'; s++)
			len += (*s == '~' || *s == '/') ? 2 : 1;
	}
	if ((buf = malloc(len + 1)) == NULL)
		return NULL;
	w = buf + len;
	*w = '\0';
	for (q = p; q != NULL; q = q->up) {
		if (q->key == NULL) {
			n = (size_t)snprintf(num, sizeof num, "%zu", q->index);
			w -= n;
			memcpy(w, num, n);
		} else {
			for (s = q->key + strlen(q->key); s > q->key;) {
				s--;
				if (*s == '~' || *s == '/') {
					*--w = *s == '~' ? '0' : '1';
					*--w = '~';
				} else
					*--w = *s;
			}
		}
		*--w = '/';
	}
	return buf;
}

static int
found_add(struct mctx *mc, const struct ptok *p, json_t *base, json_t *mine,
    json_t *theirs)
{
	struct found *v, *f;
	size_t cap;

	if (mc->n == mc->cap) {
		cap = mc->cap == 0 ? 8 : mc->cap * 2;
		if ((v = realloc(mc->v, cap * sizeof *v)) == NULL)
			return -ENOMEM;
		mc->v = v;
		mc->cap = cap;
	}
	f = &mc->v[mc->n];
	if ((f->path = path_render(p)) == NULL)
		return -ENOMEM;
	f->base = base;
	f->mine = mine;
	f->theirs = theirs;
	mc->n++;
	return 0;
}

static int
found_cmp(const void *a, const void *b)
{
	return strcmp(((const struct found *)a)->path,
	    ((const struct found *)b)->path);
}

/* Sort bytewise (strcmp compares as unsigned char) and drop repeats. */
static void
found_sort(struct mctx *mc)
{
	size_t i, n = 0;

	if (mc->n < 2)
		return;
	qsort(mc->v, mc->n, sizeof *mc->v, found_cmp);
	for (i = 0; i < mc->n; i++) {
		if (n > 0 && strcmp(mc->v[n - 1].path, mc->v[i].path) == 0)
			free(mc->v[i].path);
		else
			mc->v[n++] = mc->v[i];
	}
	mc->n = n;
}

static json_t *
found_paths(const struct mctx *mc)
{
	json_t *a;
	size_t i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < mc->n; i++) {
		if (json_array_append_new(a, json_string(mc->v[i].path)) ==
		    -1) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

static void
found_free(struct mctx *mc)
{
	size_t i;

	for (i = 0; i < mc->n; i++)
		free(mc->v[i].path);
	free(mc->v);
}

/* A new object with mine's members before stop (NULL: all), shared. */
static json_t *
obj_prefix(json_t *m, void *stop)
{
	json_t *o;
	void *it;

	if ((o = json_object()) == NULL)
		return NULL;
	for (it = json_object_iter(m); it != stop;
	    it = json_object_iter_next(m, it)) {
		if (json_object_set_nocheck(o, json_object_iter_key(it),
		    json_object_iter_value(it)) == -1) {
			json_decref(o);
			return NULL;
		}
	}
	return o;
}

/*
 * Merge two objects over base (an object or NULL for {}).  The result is
 * built only once it differs from mine; until then nothing is allocated.
 */
static int
merge_object(struct mctx *mc, const struct ptok *path, json_t *b, json_t *m,
    json_t *t, json_t **ret)
{
	struct ptok tok;
	json_t *res = NULL, *mv, *bv, *tv, *r;
	void *mi, *bi, *ti;
	const char *k;
	size_t common = 0;
	int rc;

	tok.up = path;
	tok.index = 0;
	bi = b != NULL ? json_object_iter(b) : NULL;
	ti = json_object_iter(t);
	for (mi = json_object_iter(m); mi != NULL;
	    mi = json_object_iter_next(m, mi)) {
		k = json_object_iter_key(mi);
		mv = json_object_iter_value(mi);
		bv = obj_find(b, &bi, k);
		if ((tv = obj_find(t, &ti, k)) != NULL)
			common++;
		tok.key = k;
		if ((rc = merge_value(mc, &tok, bv, mv, tv, &r)) < 0)
			goto fail;
		if (res == NULL) {
			if (r == mv) {
				json_decref(r);
				continue;
			}
			if ((res = obj_prefix(m, mi)) == NULL) {
				json_decref(r);
				rc = -ENOMEM;
				goto fail;
			}
		}
		if (r != NULL && json_object_set_new_nocheck(res, k, r) == -1) {
			rc = -ENOMEM;
			goto fail;
		}
	}

	if (common < json_object_size(t)) {
		/* Members theirs has and mine has not. */
		mi = json_object_iter(m);
		bi = b != NULL ? json_object_iter(b) : NULL;
		for (ti = json_object_iter(t); ti != NULL;
		    ti = json_object_iter_next(t, ti)) {
			k = json_object_iter_key(ti);
			if (obj_find(m, &mi, k) != NULL)
				continue;
			tv = json_object_iter_value(ti);
			bv = obj_find(b, &bi, k);
			tok.key = k;
			if ((rc = merge_value(mc, &tok, bv, NULL, tv, &r)) < 0)
				goto fail;
			if (r == NULL)
				continue;
			if (res == NULL && (res = obj_prefix(m, NULL)) == NULL) {
				json_decref(r);
				rc = -ENOMEM;
				goto fail;
			}
			if (json_object_set_new_nocheck(res, k, r) == -1) {
				rc = -ENOMEM;
				goto fail;
			}
		}
	}
	*ret = res != NULL ? res : json_incref(m);
	return 0;

fail:
	json_decref(res);
	return rc;
}

/* FNV-1a, enough to spread ids over a table sized twice the array. */
static uint32_t
id_hash(const char *s, size_t len)
{
	uint32_t h = 2166136261u;
	size_t i;

	for (i = 0; i < len; i++) {
		h ^= (unsigned char)s[i];
		h *= 16777619u;
	}
	return h;
}

static size_t
kside_find(const struct kside *ks, const char *id, size_t len, uint32_t hash)
{
	const struct kelem *e;
	size_t h, s;

	if (ks->slot == NULL)
		return NONE;
	for (h = hash & ks->mask; (s = ks->slot[h]) != 0;
	    h = (h + 1) & ks->mask) {
		e = &ks->e[s - 1];
		if (e->hash == hash && e->len == len &&
		    memcmp(e->id, id, len) == 0)
			return s - 1;
	}
	return NONE;
}

static void
kside_free(struct kside *ks)
{
	free(ks->e);
	free(ks->slot);
	ks->e = NULL;
	ks->slot = NULL;
}

/*
 * Index arr (NULL: absent, taken as empty) by id.  Returns 1 if it is a
 * keyed array (or empty), 0 if it is a plain value, -ENOMEM.  The index
 * borrows the id strings from arr.
 */
static int
kside_load(struct kside *ks, json_t *arr)
{
	struct kelem *e;
	json_t *id;
	size_t i, cap, h;

	memset(ks, 0, sizeof *ks);
	ks->arr = arr;
	if (arr == NULL || (ks->n = json_array_size(arr)) == 0)
		return 1;
	for (cap = 8; cap < 2 * ks->n; cap <<= 1)
		;
	ks->e = malloc(ks->n * sizeof *ks->e);
	ks->slot = calloc(cap, sizeof *ks->slot);
	if (ks->e == NULL || ks->slot == NULL) {
		kside_free(ks);
		return -ENOMEM;
	}
	ks->mask = cap - 1;
	for (i = 0; i < ks->n; i++) {
		e = &ks->e[i];
		e->v = json_array_get(arr, i);
		if (!json_is_object(e->v) ||
		    !json_is_string(id = json_object_get(e->v, "id")))
			goto plain;
		e->id = json_string_value(id);
		e->len = json_string_length(id);
		e->hash = id_hash(e->id, e->len);
		e->other = e->base = e->sp = NONE;
		e->alive = 0;
		for (h = e->hash & ks->mask; ks->slot[h] != 0;
		    h = (h + 1) & ks->mask) {
			if (ks->e[ks->slot[h] - 1].hash == e->hash &&
			    ks->e[ks->slot[h] - 1].len == e->len &&
			    memcmp(ks->e[ks->slot[h] - 1].id, e->id,
			    e->len) == 0)
				goto plain;	/* duplicate id */
		}
		ks->slot[h] = i + 1;
	}
	return 1;

plain:
	kside_free(ks);
	return 0;
}

/* Bytewise order of two ids. */
static int
id_cmp(const struct kelem *a, const struct kelem *b)
{
	int c;

	c = memcmp(a->id, b->id, a->len < b->len ? a->len : b->len);
	if (c != 0)
		return c;
	return a->len < b->len ? -1 : a->len > b->len;
}

/*
 * Whether the common elements of s, in s's order, are in increasing order
 * on the other side (by_base 0) or in base (by_base 1; all must be there).
 */
static int
kside_in_order(const struct kside *s, int by_base)
{
	size_t i, x, prev = NONE;

	for (i = 0; i < s->n; i++) {
		if (s->e[i].other == NONE)
			continue;
		x = by_base ? s->e[i].base : s->e[i].other;
		if (x == NONE || (prev != NONE && x <= prev))
			return 0;
		prev = x;
	}
	return 1;
}

/* Whether an element only s has stays: added, or changed from base. */
static int
kelem_alive(const struct kelem *e, const struct kside *kb)
{
	if (e->other != NONE || e->base == NONE)
		return 1;
	return !same(e->v, kb->e[e->base].v);
}

/*
 * Append to out (as encoded indexes: i for mine, nm + j for theirs) the
 * elements of s that stay, from start up to its next common element.
 */
static size_t
kside_run(const struct kside *s, size_t start, size_t off, size_t *out,
    size_t n)
{
	size_t i;

	for (i = start; i < s->n && s->e[i].other == NONE; i++)
		if (s->e[i].alive)
			out[n++] = off + i;
	return n;
}

/* Merge two keyed arrays over kb (possibly empty); see the top comment. */
static int
merge_keyed(struct mctx *mc, const struct ptok *path, struct kside *kb,
    struct kside *km, struct kside *kt, json_t **ret)
{
	struct kside *sp_side, *s;
	struct kelem *e;
	struct ptok tok;
	json_t *arr = NULL, **res = NULL, *be, *me, *te;
	size_t *scratch = NULL, *run_m, *run_t, *run, *spine, *out;
	size_t i, nc = 0, nout = 0, nm = km->n, nt = kt->n, k, x, anchor;
	int rc = 0;

	for (i = 0; i < nm; i++) {
		e = &km->e[i];
		e->other = kside_find(kt, e->id, e->len, e->hash);
		e->base = kside_find(kb, e->id, e->len, e->hash);
		if (e->other != NONE)
			nc++;
	}
	for (i = 0; i < nt; i++) {
		e = &kt->e[i];
		e->other = kside_find(km, e->id, e->len, e->hash);
		e->base = kside_find(kb, e->id, e->len, e->hash);
	}

	if (kside_in_order(km, 0) || kside_in_order(kt, 1))
		sp_side = km;
	else if (kside_in_order(km, 1))
		sp_side = kt;
	else {
		/* Both sides moved the common elements, differently. */
		if ((rc = found_add(mc, path, kb->arr, km->arr, kt->arr)) < 0)
			return rc;
		*ret = json_incref(km->arr);
		return 0;
	}

	for (i = 0; i < nm; i++)
		km->e[i].alive = kelem_alive(&km->e[i], kb);
	for (i = 0; i < nt; i++)
		kt->e[i].alive = kelem_alive(&kt->e[i], kb);

	scratch = malloc((3 * nc + 2 + nm + nt) * sizeof *scratch);
	res = calloc(nm + nt + 1, sizeof *res);
	if (scratch == NULL || res == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	run_m = scratch;
	run_t = run_m + nc + 1;
	spine = run_t + nc + 1;
	out = spine + nc;

	/* The common elements in the order chosen, numbered. */
	for (i = 0, k = 0; i < sp_side->n; i++) {
		e = &sp_side->e[i];
		if (e->other == NONE)
			continue;
		e->sp = k;
		(sp_side == km ? kt : km)->e[e->other].sp = k;
		spine[k++] = sp_side == km ? i : nm + i;
	}

	/* Where each side's own run starts: after which common element. */
	for (k = 0; k <= nc; k++)
		run_m[k] = run_t[k] = NONE;
	for (s = km; s != NULL; s = s == km ? kt : NULL) {
		run = s == km ? run_m : run_t;
		anchor = 0;
		for (i = 0; i < s->n; i++) {
			if (s->e[i].other != NONE)
				anchor = s->e[i].sp + 1;
			else if (s->e[i].alive && run[anchor] == NONE)
				run[anchor] = i;
		}
	}

	for (k = 0; k <= nc; k++) {
		if (k > 0)
			out[nout++] = spine[k - 1];
		if (run_m[k] != NONE && run_t[k] != NONE &&
		    id_cmp(&km->e[run_m[k]], &kt->e[run_t[k]]) > 0) {
			nout = kside_run(kt, run_t[k], nm, out, nout);
			nout = kside_run(km, run_m[k], 0, out, nout);
		} else {
			if (run_m[k] != NONE)
				nout = kside_run(km, run_m[k], 0, out, nout);
			if (run_t[k] != NONE)
				nout = kside_run(kt, run_t[k], nm, out, nout);
		}
	}

	tok.up = path;
	tok.key = NULL;
	for (k = 0; k < nout; k++) {
		tok.index = k;
		x = out[k];
		if (x < nm) {
			e = &km->e[x];
			me = e->v;
			te = e->other != NONE ? kt->e[e->other].v : NULL;
		} else {
			e = &kt->e[x - nm];
			te = e->v;
			me = e->other != NONE ? km->e[e->other].v : NULL;
		}
		be = e->base != NONE ? kb->e[e->base].v : NULL;
		if (me != NULL && te != NULL) {
			if ((rc = merge_value(mc, &tok, be, me, te,
			    &res[k])) < 0)
				goto out;
			continue;
		}
		if (be != NULL) {
			/* Deleted on one side, changed on the other. */
			if ((rc = found_add(mc, &tok, be, me, te)) < 0)
				goto out;
		}
		res[k] = json_incref(e->v);
	}

	/* Mine's or theirs' own array when the result is exactly that. */
	for (s = km; s != NULL; s = s == km ? kt : NULL) {
		if (nout != s->n)
			continue;
		for (k = 0; k < nout && res[k] == s->e[k].v; k++)
			;
		if (k == nout) {
			*ret = json_incref(s->arr);
			goto out;
		}
	}
	if ((arr = json_array()) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	for (k = 0; k < nout; k++) {
		if (json_array_append(arr, res[k]) == -1) {
			json_decref(arr);
			rc = -ENOMEM;
			goto out;
		}
	}
	*ret = arr;

out:
	if (res != NULL)
		for (k = 0; k < nout; k++)
			json_decref(res[k]);
	free(res);
	free(scratch);
	return rc;
}

/*
 * The rules for values that are not merged piece by piece: equal sides,
 * or one side unchanged, or else a conflict that keeps mine's value.
 */
static int
merge_plain(struct mctx *mc, const struct ptok *path, json_t *b, json_t *m,
    json_t *t, json_t **ret)
{
	json_t *r = m;
	int rc;

	if (same(m, t) || same(t, b))
		r = m;
	else if (same(m, b))
		r = t;
	else if ((rc = found_add(mc, path, b, m, t)) < 0)
		return rc;
	*ret = json_incref(r);
	return 0;
}

/*
 * Two arrays over an array or nothing.  The plain rules first (a keyed
 * merge would agree with them, but they are cheaper and share more), then
 * a keyed merge if all three are keyed, else a conflict.
 */
static int
merge_array(struct mctx *mc, const struct ptok *path, json_t *b, json_t *m,
    json_t *t, json_t **ret)
{
	struct kside kb, km, kt;
	int rc, kmr, ktr, kbr;

	if (same(m, t) || same(t, b)) {
		*ret = json_incref(m);
		return 0;
	}
	if (same(m, b)) {
		*ret = json_incref(t);
		return 0;
	}
	kmr = kside_load(&km, m);
	ktr = kside_load(&kt, t);
	kbr = kside_load(&kb, b);
	if (kmr < 0 || ktr < 0 || kbr < 0)
		rc = -ENOMEM;
	else if (kmr == 1 && ktr == 1 && kbr == 1)
		rc = merge_keyed(mc, path, &kb, &km, &kt, ret);
	else if ((rc = found_add(mc, path, b, m, t)) == 0)
		*ret = json_incref(m);
	kside_free(&km);
	kside_free(&kt);
	kside_free(&kb);
	return rc;
}

/*
 * Merge the values at path (any of them NULL for absent).  *ret gets a new
 * reference, or NULL for absent; it is mine's own value whenever the
 * result is identical to it.
 */
static int
merge_value(struct mctx *mc, const struct ptok *path, json_t *b, json_t *m,
    json_t *t, json_t **ret)
{
	if (m == t) {
		*ret = json_incref(m);
		return 0;
	}
	if (json_is_object(m) && json_is_object(t) &&
	    (b == NULL || json_is_object(b)))
		return merge_object(mc, path, b, m, t, ret);
	if (json_is_array(m) && json_is_array(t) &&
	    (b == NULL || json_is_array(b)))
		return merge_array(mc, path, b, m, t, ret);
	return merge_plain(mc, path, b, m, t, ret);
}

static int
is_doc(const json_t *v)
{
	return v == NULL || json_is_object(v);
}

int
merge_three_cb(json_t *base, json_t *mine, json_t *theirs,
    merge_conflict_cb cb, void *arg, json_t **ret_merged,
    json_t **ret_conflicts)
{
	struct mctx mc = { NULL, 0, 0 };
	struct merge_conflict c;
	json_t *merged = NULL, *paths = NULL;
	size_t i;
	int rc;

	if (!is_doc(base) || !is_doc(mine) || !is_doc(theirs))
		return -EINVAL;
	if ((rc = merge_value(&mc, NULL, base, mine, theirs, &merged)) < 0)
		goto out;
	found_sort(&mc);
	if (mc.n > INT_MAX) {
		rc = -EOVERFLOW;
		goto out;
	}
	for (i = 0; cb != NULL && i < mc.n; i++) {
		c.path = mc.v[i].path;
		c.base = mc.v[i].base;
		c.mine = mc.v[i].mine;
		c.theirs = mc.v[i].theirs;
		if ((rc = cb(&c, arg)) < 0)
			goto out;
	}
	if (ret_conflicts != NULL && (paths = found_paths(&mc)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	rc = (int)mc.n;
	if (ret_conflicts != NULL)
		*ret_conflicts = paths;
	if (ret_merged != NULL) {
		*ret_merged = merged;
		merged = NULL;
	}

out:
	json_decref(merged);
	found_free(&mc);
	return rc;
}

int
merge_three(json_t *base, json_t *mine, json_t *theirs, json_t **ret_merged,
    json_t **ret_conflicts)
{
	return merge_three_cb(base, mine, theirs, NULL, NULL, ret_merged,
	    ret_conflicts);
}

static int
diff_object(struct mctx *mc, const struct ptok *path, json_t *a, json_t *b)
{
	struct ptok tok;
	json_t *bv;
	void *ai, *bi;
	const char *k;
	size_t common = 0;
	int rc;

	tok.up = path;
	tok.index = 0;
	bi = json_object_iter(b);
	for (ai = json_object_iter(a); ai != NULL;
	    ai = json_object_iter_next(a, ai)) {
		tok.key = json_object_iter_key(ai);
		if ((bv = obj_find(b, &bi, tok.key)) != NULL)
			common++;
		if ((rc = diff_value(mc, &tok, json_object_iter_value(ai),
		    bv)) < 0)
			return rc;
	}
	if (common == json_object_size(b))
		return 0;
	ai = json_object_iter(a);
	for (bi = json_object_iter(b); bi != NULL;
	    bi = json_object_iter_next(b, bi)) {
		k = json_object_iter_key(bi);
		if (obj_find(a, &ai, k) != NULL)
			continue;
		tok.key = k;
		if ((rc = found_add(mc, &tok, NULL, NULL, NULL)) < 0)
			return rc;
	}
	return 0;
}

static int
diff_keyed(struct mctx *mc, const struct ptok *path, struct kside *ka,
    struct kside *kb)
{
	struct kelem *e;
	struct ptok tok;
	size_t i, j, prev = NONE;
	int rc, moved = 0;

	tok.up = path;
	tok.key = NULL;
	for (j = 0; j < kb->n; j++) {
		e = &kb->e[j];
		tok.index = j;
		i = kside_find(ka, e->id, e->len, e->hash);
		if (i == NONE)
			rc = found_add(mc, &tok, NULL, NULL, NULL);
		else {
			if (prev != NONE && i < prev)
				moved = 1;
			prev = i;
			rc = diff_value(mc, &tok, ka->e[i].v, e->v);
		}
		if (rc < 0)
			return rc;
	}
	for (i = 0; i < ka->n; i++) {
		e = &ka->e[i];
		tok.index = i;
		if (kside_find(kb, e->id, e->len, e->hash) == NONE &&
		    (rc = found_add(mc, &tok, NULL, NULL, NULL)) < 0)
			return rc;
	}
	if (moved)
		return found_add(mc, path, NULL, NULL, NULL);
	return 0;
}

static int
diff_value(struct mctx *mc, const struct ptok *path, json_t *a, json_t *b)
{
	struct kside ka, kb;
	int rc, kar, kbr;

	if (a == b)
		return 0;
	if (json_is_object(a) && json_is_object(b))
		return diff_object(mc, path, a, b);
	if (json_is_array(a) && json_is_array(b) &&
	    json_array_size(a) + json_array_size(b) > 0) {
		kar = kside_load(&ka, a);
		kbr = kside_load(&kb, b);
		if (kar < 0 || kbr < 0)
			rc = -ENOMEM;
		else if (kar == 1 && kbr == 1)
			rc = diff_keyed(mc, path, &ka, &kb);
		else
			rc = json_equal(a, b) ? 0 :
			    found_add(mc, path, NULL, NULL, NULL);
		kside_free(&ka);
		kside_free(&kb);
		return rc;
	}
	if (same(a, b))
		return 0;
	return found_add(mc, path, NULL, NULL, NULL);
}

int
merge_diff(json_t *a, json_t *b, json_t **ret_paths)
{
	struct mctx mc = { NULL, 0, 0 };
	json_t *paths;
	int rc;

	if (!is_doc(a) || !is_doc(b) || ret_paths == NULL)
		return -EINVAL;
	if ((rc = diff_value(&mc, NULL, a, b)) < 0)
		goto out;
	found_sort(&mc);
	if ((paths = found_paths(&mc)) == NULL) {
		rc = -ENOMEM;
		goto out;
	}
	*ret_paths = paths;

out:
	found_free(&mc);
	return rc;
}
