/*
 * srv_push: what POST /v1/push does with a batch of signed changes (DESIGN
 * "Remote protocol v1" and "Signed change records").
 *
 * For each change, in order, inside one transaction:
 *  1. the item must be {"record":string,"sig":string} and the record at most
 *     SRV_PUSH_RECORD_MAX bytes, else "rejected";
 *  2. the signature is checked over the exact record bytes (record_verify)
 *     before anything in the record is believed; then the record's device
 *     must be the key that signed the request;
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
 * Blocks on SQLite only; logs nothing (the caller logs the stats).
 */
#ifndef FERRY_SRV_PUSH_H
#define FERRY_SRV_PUSH_H

#include <stddef.h>

#include <jansson.h>

#include "srv_db.h"

#define SRV_PUSH_MAX_CHANGES	1000
/* Room for any document ferryd stores (8 MiB less 4 KiB of JSON) and the
 * record around it. */
#define SRV_PUSH_RECORD_MAX	(8 * 1024 * 1024 + 4096)

struct srv_push_stats {
	size_t	applied;
	size_t	duplicate;
	size_t	conflict;
	size_t	rejected;
};

/*
 * Judge and apply changes (a JSON array, borrowed) pushed by key, inside
 * an open srv_db batch.  Returns 0 with *ret_results a new array holding
 * one result object per change, in order, and *ret_stats filled; or
 * -errno when the store failed (the caller rolls back; nothing happened).
 */
int	srv_push_batch(struct srv_db *db, const char *key, json_t *changes,
	    json_t **ret_results, struct srv_push_stats *ret_stats);

#endif
