/*
 * srv_rotate: key rotation on ferry-server (docs/protocol.md "Rotating a
 * key"): POST /v1/keys/rotate takes a statement (lib/rotation.h) signed by
 * the old key and the new one; the new key is then allowed under the old
 * one's name and the old key is retired.
 *
 * A retired key is not a revoked one: what it signed before stays good
 * (its records verify, history shows them as any other), but it can no
 * longer authenticate (401 saying it was retired and for which key) or
 * sign anything new.  Its records up to the statement's seq, which it may
 * have sent with the reply lost, are still taken when its successor (or a
 * successor of that) pushes them: a duplicate is answered as one, a record
 * that never arrived is judged as it would have been.  A record it signed
 * beyond that seq is rejected.
 *
 * The retired set (struct srv_retired) is built whole from the store
 * (srv_rotate_load, which also adds each new key to the allowed set being
 * built), sealed and only looked up, like srv_revoked: a change builds a
 * new one and swaps it.  Neither logs nor blocks, except srv_rotate_load
 * which reads the store.
 */
#ifndef FERRY_SRV_ROTATE_H
#define FERRY_SRV_ROTATE_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "keys.h"
#include "srv_access.h"
#include "srv_db.h"
#include "srv_keys.h"
#include "srv_push.h"

struct srv_retired;

struct srv_retirement {
	char	old_key[KEYS_PUB_B64_LEN + 1];
	char	new_key[KEYS_PUB_B64_LEN + 1];
	int64_t	seq;		/* the old key's last seq */
	int64_t	ms;		/* when it was retired */
};

/* A statement checked and ready to store (strings owned). */
struct srv_rotate_stmt {
	struct srv_rotation	 row;
	char			*text;
	char			*sig_old;
	char			*sig_new;
	struct srv_retirement	 ret;
};

void	srv_retired_free(struct srv_retired *rt);
size_t	srv_retired_count(const struct srv_retired *rt);
/* The retirement of key, or NULL (rt NULL too: nothing is retired). */
const struct srv_retirement *srv_retired_find(const struct srv_retired *rt,
	    const char *key);
/* The key retired in favour of key, or NULL (none; rt NULL too). */
const char *srv_retired_predecessor(const struct srv_retired *rt,
	    const char *key);
/* "retired on 2026-12-03 10:40:00 UTC in favour of <key>" into buf. */
void	srv_retirement_words(const struct srv_retirement *re, char *buf,
	    size_t size);
/* {"time": ms, "new_key": key}: new reference, NULL on ENOMEM. */
json_t	*srv_retirement_json(const struct srv_retirement *re);

/*
 * Read the store's rotations, in the order they were made: add each new
 * key to ks (being built, as srv_keys_merge wants) under the name of the
 * key it follows, and build the retired set in *ret.  0 or -errno (the
 * store's, or -ENOMEM).
 */
int	srv_rotate_load(struct srv_db *db, struct srv_keys *ks,
	    struct srv_retired **ret);

/*
 * Check a POST /v1/keys/rotate body sent by key.  1: this very rotation
 * is recorded already (a retry), *ret_done points at it; 0: *ret filled,
 * to store (srv_db_rotate) and then srv_rotate_apply; < 0: refused, with
 * the HTTP status in *ret_code and the reason in why.  ks, rv and rt are
 * the sets in use.  now_ms is the server's clock.
 */
int	srv_rotate_check(const char *key, const unsigned char *body,
	    size_t len, const struct srv_keys *ks, const struct srv_revoked *rv,
	    const struct srv_retired *rt, int64_t now_ms,
	    struct srv_rotate_stmt *ret, const struct srv_retirement **ret_done,
	    int *ret_code, char *why, size_t whysize);
void	srv_rotate_stmt_clear(struct srv_rotate_stmt *st);

/*
 * A stored rotation takes effect in memory: new sets in *ret_keys and
 * *ret_retired, copies of ks and rt with st added (the caller swaps them
 * in).  0 or -ENOMEM.
 */
int	srv_rotate_apply(const struct srv_keys *ks, const struct srv_retired *rt,
	    const struct srv_rotate_stmt *st, struct srv_keys **ret_keys,
	    struct srv_retired **ret_retired);

/* The answer to a rotation: new reference, NULL on ENOMEM. */
json_t	*srv_rotate_answer(const struct srv_retirement *re);

/*
 * Items of a push by key that carry another device key (srv_push_item
 * "foreign"): admitted when that key was retired, in one or more steps,
 * in favour of key and the record's seq is within what it signed before;
 * a retired key's other records are rejected saying so.
 */
void	srv_rotate_push_admit(const struct srv_retired *rt, const char *key,
	    struct srv_push_item *items, size_t n);

#endif
