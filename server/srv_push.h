/*
 * srv_push: what POST /v1/push does with a batch of signed changes (DESIGN
 * "Remote protocol v1" and "Signed change records").
 *
 * For each change, in order, inside one transaction:
 *  1. the item must be {"record":string,"sig":string} and the record at most
 *     SRV_PUSH_RECORD_MAX bytes, else "rejected";
 *  2. the signature is checked over the exact record bytes (record_verify)
 *     before anything in the record is believed; a record whose device
 *     key is revoked is "rejected" saying so (srv_push_item_revoked, by the
 *     caller, who holds the revocations); then the record's device
 *     must be the key that signed the request (or one retired in its
 *     favour, up to its last seq: srv_rotate.h, srv_push_item_admit), and a
 *     put's body must be
 *     inside the one body limit (bodylimit.h: depth and size), else
 *     "rejected" with the reason: a body every reader can parse wrapped in
 *     /v1/changes or a ferryd reply;
 *  3. the change id <device>:<seq>: applied before with these same bytes ->
 *     "duplicate" with the version it made; applied before with other
 *     bytes -> "rejected" (a seq reused); answered "conflict" before -> judged
 *     again; never seen and seq <= the device's max_seq -> "rejected" (stale
 *     seq: a replay or a reordering);
 *  4. judged: base must equal the document's current version (0 for a
 *     document that does not exist; a tombstone has its own version), else
 *     "conflict" with the current state; on a match the change is applied
 *     at version + 1.  A delete of a document that does not exist with
 *     base 0 is "rejected" ("nothing to delete").
 * An applied or conflicting change raises the device's max_seq; a rejected
 * one changes nothing.  The caller commits only if this returns 0 and
 * answers only after the commit.
 *
 * Steps 1 and 2 need no store and are most of the CPU (Ed25519 verify,
 * parsing the record): srv_push_check does them for one change and is
 * safe to run on many threads at once, each on its own item.  Steps 3 and
 * 4 run in order on the store's handle (srv_push_apply), on the checked
 * items: the loop's with SQLite, a worker thread's with PostgreSQL (where
 * the device's row lock orders batches of one device across instances).  A put's body is stored as the record's own bytes when the record
 * has record_make's layout (record_body_span), so it is never dumped again.
 *
 * srv_push_apply blocks on the store only; nothing logs (the caller logs the
 * stats).
 */
#ifndef FERRY_SRV_PUSH_H
#define FERRY_SRV_PUSH_H

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "bodylimit.h"
#include "keys.h"
#include "record.h"
#include "srv_db.h"

#define SRV_PUSH_MAX_CHANGES	1000
/* Room for a body at the limit (bodylimit.h) and the record around it. */
#define SRV_PUSH_RECORD_MAX	(BODYLIMIT_MAX_BYTES + 4096)

struct srv_push_stats {
	size_t	applied;
	size_t	duplicate;
	size_t	conflict;
	size_t	rejected;
};

/* One change of a batch once checked.  Strings point into the request's
 * parse tree, which must outlive the item. */
struct srv_push_item {
	int			 err;		/* < 0: cannot check (-ENOMEM) */
	json_t			*result;	/* rejected already, or NULL */
	struct record_fields	 f;		/* verified, when result NULL */
	const char		*text;		/* the record's bytes */
	size_t			 len;
	const char		*sig;
	const char		*body;		/* put: the body's JSON text */
	size_t			 body_len;
	char			*body_buf;	/* body, if it had to be dumped */
	/* The key whose signature the record bears, once it verified
	 * (even when it is not the requesting key); "" before. */
	char			 signer[KEYS_PUB_B64_LEN + 1];
	/* Verified, but signed by another key than the requesting one:
	 * rejected unless srv_push_item_admit lets it in (a key retired in
	 * favour of the requesting one: srv_rotate.h). */
	bool			 foreign;
};

/*
 * Check change item (borrowed) pushed by key: shape, size, signature over
 * the exact bytes, fields, device == key, and the body text.  Fills *ret
 * (clear it with srv_push_item_clear).  Thread-safe; touches no store.
 */
void	srv_push_check(const char *key, json_t *item,
	    struct srv_push_item *ret);
void	srv_push_item_clear(struct srv_push_item *it);
/*
 * The item's signer is revoked (words: "revoked on ... (why)"): it is
 * rejected, saying so, whatever it was judged before.
 */
void	srv_push_item_revoked(struct srv_push_item *it, const char *words);
/* A foreign item is let in after all: judged as its own key's record. */
void	srv_push_item_admit(struct srv_push_item *it);
/* The item is rejected with this reason, whatever it was judged before. */
void	srv_push_item_refuse(struct srv_push_item *it, const char *fmt, ...)
	    __attribute__((format(printf, 2, 3)));
/*
 * The pushing key (key) may not write the item's collection (srv_grants;
 * readable says whether it may read it): it is rejected, saying so,
 * whatever it was judged before.
 */
void	srv_push_item_forbidden(struct srv_push_item *it, const char *key,
	    bool readable);

/*
 * Judge and apply n checked changes of key, in order, inside an open
 * srv_db batch.  Returns 0 with *ret_results a new array holding one result
 * object per change, in order, and *ret_stats filled; or -errno when the
 * store failed or an item could not be checked (the caller rolls back;
 * nothing happened).  -EBADMSG: a conflict's answer needed a document
 * whose stored body is not a JSON object, and why (why_len bytes) names
 * the document and says what it holds (srv_push_stored_body).
 */
int	srv_push_apply(struct srv_db *db, const char *key,
	    struct srv_push_item *items, size_t n, json_t **ret_results,
	    struct srv_push_stats *ret_stats, char *why, size_t why_len);

/*
 * Parse the stored body of collection/id (d: a live document as the store
 * gave it) into *ret, a new reference.  Every body was checked to be a
 * JSON object before it was stored, so anything else means the store was
 * damaged or written by another program: -EBADMSG, with why (why_len
 * bytes) naming the document and saying what is wrong ("the stored body of
 * C/ID is not JSON: <reason> (line L, column C)", or "... is not a JSON
 * object but an array").  -ENOMEM when jansson could not allocate.
 * Thread-safe; touches no store.
 */
int	srv_push_stored_body(const char *collection, const char *id,
	    const struct srv_doc *d, json_t **ret, char *why, size_t why_len);

#endif
