/*
 * srv_access: revocation sets and the last-seen map; see srv_access.h.
 *
 * Invariants: a sealed set is sorted by key and never changes; the seen
 * map is always sorted by key (an insert moves the tail), holds at most
 * its max entries, and an entry is "moved" from its note until a take.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "keys.h"
#include "srv_access.h"
#include "srv_keys.h"

struct srv_revoked {
	struct srv_revocation	*v;
	size_t			 n;
	size_t			 cap;
};

struct srv_seen_entry {
	char	 key[KEYS_PUB_B64_LEN + 1];
	int64_t	 ms;
	bool	 moved;
};

struct srv_seen {
	struct srv_seen_entry	*v;
	size_t			 n;
	size_t			 max;
	struct srv_key_seen	*out;		/* the last take, */
	char			(*outkey)[KEYS_PUB_B64_LEN + 1]; /* its keys */
};

int
srv_revoked_new(struct srv_revoked **ret)
{
	if ((*ret = calloc(1, sizeof **ret)) == NULL)
		return -ENOMEM;
	return 0;
}

void
srv_revoked_free(struct srv_revoked *rv)
{
	size_t i;

	if (rv == NULL)
		return;
	for (i = 0; i < rv->n; i++) {
		free((char *)rv->v[i].key);
		free((char *)rv->v[i].reason);
	}
	free(rv->v);
	free(rv);
}

int
srv_revoked_add(struct srv_revoked *rv, const char *key, int64_t ms,
    const char *reason)
{
	struct srv_revocation *v;
	char *k, *why = NULL;

	if (rv->n == rv->cap) {
		size_t cap = rv->cap == 0 ? 8 : rv->cap * 2;

		if ((v = reallocarray(rv->v, cap, sizeof *v)) == NULL)
			return -ENOMEM;
		rv->v = v;
		rv->cap = cap;
	}
	if ((k = strdup(key)) == NULL ||
	    (reason != NULL && (why = strdup(reason)) == NULL)) {
		free(k);
		return -ENOMEM;
	}
	rv->v[rv->n].key = k;
	rv->v[rv->n].ms = ms;
	rv->v[rv->n].reason = why;
	rv->n++;
	return 0;
}

static int
srv_revocation_cmp(const void *a, const void *b)
{
	return strcmp(((const struct srv_revocation *)a)->key,
	    ((const struct srv_revocation *)b)->key);
}

void
srv_revoked_seal(struct srv_revoked *rv)
{
	if (rv->n > 1)
		qsort(rv->v, rv->n, sizeof *rv->v, srv_revocation_cmp);
}

size_t
srv_revoked_count(const struct srv_revoked *rv)
{
	return rv != NULL ? rv->n : 0;
}

const struct srv_revocation *
srv_revoked_find(const struct srv_revoked *rv, const char *key)
{
	struct srv_revocation k;

	if (rv == NULL || rv->n == 0 || key == NULL)
		return NULL;
	k.key = key;
	return bsearch(&k, rv->v, rv->n, sizeof *rv->v, srv_revocation_cmp);
}

void
srv_access_when(int64_t ms, char *buf, size_t size)
{
	time_t t = (time_t)(ms / 1000);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, size, "%Y-%m-%d %H:%M:%S UTC", &tm) == 0)
		snprintf(buf, size, "%lld ms", (long long)ms);
}

void
srv_revocation_words(const struct srv_revocation *rv, char *buf, size_t size)
{
	char when[64];

	srv_access_when(rv->ms, when, sizeof when);
	snprintf(buf, size, "revoked on %s%s%s%s", when,
	    rv->reason != NULL ? " (" : "", rv->reason != NULL ? rv->reason :
	    "", rv->reason != NULL ? ")" : "");
}

json_t *
srv_revocation_json(const struct srv_revocation *rv)
{
	return json_pack("{s:I, s:s?}", "time", (json_int_t)rv->ms,
	    "reason", rv->reason);
}

int
srv_access_check_reason(const char *reason, const char **ret_why)
{
	size_t len = strlen(reason);

	if (len == 0 || len > SRV_ACCESS_REASON_MAX) {
		if (ret_why != NULL)
			*ret_why = "must be 1-200 bytes";
		return -EINVAL;
	}
	return srv_keys_check_text(reason, ret_why);
}

int
srv_seen_new(size_t max, struct srv_seen **ret)
{
	struct srv_seen *sn;

	if ((sn = calloc(1, sizeof *sn)) == NULL)
		return -ENOMEM;
	sn->max = max;
	if ((sn->v = calloc(max, sizeof *sn->v)) == NULL ||
	    (sn->out = calloc(max, sizeof *sn->out)) == NULL ||
	    (sn->outkey = calloc(max, sizeof *sn->outkey)) == NULL) {
		srv_seen_free(sn);
		return -ENOMEM;
	}
	*ret = sn;
	return 0;
}

void
srv_seen_free(struct srv_seen *sn)
{
	if (sn == NULL)
		return;
	free(sn->v);
	free(sn->out);
	free(sn->outkey);
	free(sn);
}

/* The index of key, or where it would go (*ret_found false). */
static size_t
srv_seen_index(const struct srv_seen *sn, const char *key, bool *ret_found)
{
	size_t lo = 0, hi = sn->n, mid;
	int c;

	while (lo < hi) {
		mid = lo + (hi - lo) / 2;
		if ((c = strcmp(key, sn->v[mid].key)) == 0) {
			*ret_found = true;
			return mid;
		}
		if (c < 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	*ret_found = false;
	return lo;
}

void
srv_seen_note(struct srv_seen *sn, const char *key, int64_t ms)
{
	struct srv_seen_entry *e;
	bool found;
	size_t i;

	if (strlen(key) != KEYS_PUB_B64_LEN)
		return;
	i = srv_seen_index(sn, key, &found);
	if (!found) {
		if (sn->n == sn->max)
			return;
		memmove(&sn->v[i + 1], &sn->v[i], (sn->n - i) * sizeof *sn->v);
		sn->n++;
		memcpy(sn->v[i].key, key, KEYS_PUB_B64_LEN + 1);
		sn->v[i].ms = 0;
	}
	e = &sn->v[i];
	if (ms > e->ms) {
		e->ms = ms;
		e->moved = true;
	}
}

size_t
srv_seen_take(struct srv_seen *sn, const struct srv_key_seen **ret)
{
	size_t i, n = 0;

	for (i = 0; i < sn->n; i++) {
		if (!sn->v[i].moved)
			continue;
		sn->v[i].moved = false;
		/* Copied: notes may move the entries while it is written. */
		memcpy(sn->outkey[n], sn->v[i].key, KEYS_PUB_B64_LEN + 1);
		sn->out[n].key = sn->outkey[n];
		sn->out[n].ms = sn->v[i].ms;
		n++;
	}
	*ret = sn->out;
	return n;
}

void
srv_seen_untake(struct srv_seen *sn, const struct srv_key_seen *v, size_t n)
{
	bool found;
	size_t i, j;

	for (i = 0; i < n; i++) {
		j = srv_seen_index(sn, v[i].key, &found);
		if (found)
			sn->v[j].moved = true;
	}
}
