/*
 * srv_access: what ferry-server knows of device keys beyond the allow list
 * (issue 13): which keys are revoked (when, and why), and when each key
 * was last seen (its last authenticated request).
 *
 * A revocation set (struct srv_revoked) is built whole from the store
 * (srv_db_revocations), then sealed and only looked up, like srv_keys:
 * a reload builds a new one and swaps it.  Lookups are a binary search,
 * cheap enough for every request and every pushed record.
 *
 * The last-seen map (struct srv_seen) is the server's memory of requests:
 * srv_seen_note on every authenticated request (a binary search, no I/O),
 * srv_seen_take every few seconds for the keys whose time moved, which the
 * caller writes to the store in one statement.  It holds at most max keys
 * (open mode accepts any key): a key beyond that is not remembered.
 *
 * Neither logs nor blocks; both belong to the loop's thread.
 */
#ifndef FERRY_SRV_ACCESS_H
#define FERRY_SRV_ACCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "srv_db.h"

/* A reason given to `ferry-server revoke --reason`: at most this. */
#define SRV_ACCESS_REASON_MAX	200

struct srv_revoked;
struct srv_seen;

struct srv_revocation {
	const char	*key;
	int64_t		 ms;		/* when (Unix ms) */
	const char	*reason;	/* NULL: none given */
};

/* An empty set.  0 or -ENOMEM. */
int	srv_revoked_new(struct srv_revoked **ret);
/* While building: add a revocation (strings copied).  0 or -ENOMEM. */
int	srv_revoked_add(struct srv_revoked *rv, const char *key, int64_t ms,
	    const char *reason);
/* Done building: sort for lookups. */
void	srv_revoked_seal(struct srv_revoked *rv);
void	srv_revoked_free(struct srv_revoked *rv);
size_t	srv_revoked_count(const struct srv_revoked *rv);
/* The revocation of key, or NULL (rv NULL too: nothing is revoked). */
const struct srv_revocation *srv_revoked_find(const struct srv_revoked *rv,
	    const char *key);

/* A time (Unix ms) as "2026-12-03 10:40:00 UTC" into buf. */
void	srv_access_when(int64_t ms, char *buf, size_t size);
/*
 * "revoked on 2026-12-03 10:40:00 UTC (stolen laptop)" (or without the
 * parenthesis when no reason was given) into buf.
 */
void	srv_revocation_words(const struct srv_revocation *rv, char *buf,
	    size_t size);
/* {"time": ms, "reason": string|null}, new reference, NULL on ENOMEM. */
json_t	*srv_revocation_json(const struct srv_revocation *rv);

/* 0 for a reason of 1-SRV_ACCESS_REASON_MAX bytes of printable UTF-8,
 * else -EINVAL and a reason. */
int	srv_access_check_reason(const char *reason, const char **ret_why);

/* An empty map for at most max keys.  0 or -ENOMEM. */
int	srv_seen_new(size_t max, struct srv_seen **ret);
void	srv_seen_free(struct srv_seen *sn);
/* key made a request at ms. */
void	srv_seen_note(struct srv_seen *sn, const char *key, int64_t ms);
/*
 * The keys whose time moved since the last take, in *ret (copies, valid
 * until the next take, whatever notes come meanwhile: they may be written
 * on another thread); they count as written from now on.  Their number.
 */
size_t	srv_seen_take(struct srv_seen *sn, const struct srv_key_seen **ret);
/* A take's rows could not be written: mark them moved again. */
void	srv_seen_untake(struct srv_seen *sn, const struct srv_key_seen *v,
	    size_t n);

#endif
