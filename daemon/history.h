/*
 * history: the History method, a document's signed audit trail as the
 * remote keeps it (DESIGN "Remote protocol v1", GET
 * /v1/docs/{collection}/{id}/history), checked on this machine.
 *
 * The trail is fetched page by page through sync_fetch (signed,
 * non-blocking GETs on the daemon's loop) and each record is verified
 * here, on the module's verifier thread: the Ed25519 signature over the exact record bytes the remote sent,
 * against the key the entry names, before the record is parsed at all
 * (with duplicate keys refused); then its fields must agree with the
 * entry's (collection, id, device, seq, op, ts).  A record that fails is
 * reported with verified false, not as an error.  changed_paths is the
 * field-level diff (merge_diff) against the previous version's body: a
 * create lists the fields it created, a delete is [""].  Bodies from
 * records that did not verify are never used: such an entry has no
 * changed_paths, and the next entry, whose predecessor is unknown, has
 * [""] (the whole document).
 *
 * One call answers at most HISTORY_ENTRIES_MAX entries, oldest first, and
 * at most about HISTORY_REPLY_MAX bytes; when more follow, the reply's
 * next is the last version it holds and History(after: next) goes on.  A
 * diff naming more than HISTORY_PATHS_MAX paths (or HISTORY_PATHS_BYTES
 * bytes of them) is summarised by the top-level members that changed, or
 * by "" if that is still too long.
 *
 * The replica's own change log (with after 0) is verified too, and a
 * document may have thousands of entries there (a signature check costs
 * ~50 us, a pulled change's record is rebuilt from its body first): so it
 * is read in short steps on the loop, newest first, and each step is
 * checked on the module's verifier thread (a lib/jobq, as the writer and
 * the pull parsers use), the loop serving other calls meanwhile; the
 * reply is made into text there too.
 *
 * Ownership: a request lives from history_start until it answers its
 * call, or until the call's connection goes away (the fetch is then
 * cancelled and everything freed; a job at the verifier is let finish
 * and freed with the request when it comes back, never answered).
 * Nothing here blocks.
 */
#ifndef FERRY_HISTORY_H
#define FERRY_HISTORY_H

#include <stdint.h>

#include <event2/event.h>

#include "store.h"
#include "sync.h"
#include "vl_server.h"

#define HISTORY_ENTRIES_MAX	10000
/*
 * The local change log is read in steps of at most HISTORY_STEP_ENTRIES
 * entries (or about HISTORY_STEP_BYTES of records and bodies: a step
 * holds at least one), each verified on the verifier thread while the
 * loop serves other calls; HISTORY_STEPS_OUT steps at most are held at
 * once, whatever the number of calls: the others wait their turn.
 */
#define HISTORY_STEP_ENTRIES	256
#define HISTORY_STEP_BYTES	(1024u * 1024)
#define HISTORY_STEPS_OUT	4
/* Records asked of the remote per page: each page is verified (~50 us a
 * signature) and diffed in one job of the verifier thread, so the reply
 * grows by bounded steps. */
#define HISTORY_PAGE	100
#define HISTORY_REPLY_MAX	(4u * 1024 * 1024)
#define HISTORY_PATHS_MAX	1000
#define HISTORY_PATHS_BYTES	(64u * 1024)

/*
 * How long one page of the remote's trail may take before History answers
 * with what it has (the local change log): a stalled remote costs the
 * caller 3 s, not the transfer timeout of a push.
 */
#define HISTORY_REMOTE_TIMEOUT_MS	3000

struct history;

/*
 * The module's state: the verifier thread (a lib/jobq on base, which must
 * have been made after evthread_use_pthreads()) and the requests waiting
 * for it.  0, -ENOMEM or -errno from jobq_new.
 */
int	history_new(struct event_base *base, struct history **ret);
/*
 * Stop the verifier; requests whose step it still held must be gone
 * already (their calls cancelled: free the varlink server first) and are
 * freed here.  Accepts NULL.
 */
void	history_free(struct history *h);

/*
 * Answer io.ferry.History for call: the entries of collection/id (valid
 * names, borrowed: they are copied) with a version above after (0: from
 * the start), from the remote; with after 0 also "local", the replica's
 * own change log of the document (store_doc_changes on st's reader: its
 * writes, pulled changes, merges and resolutions; this device's applied
 * changes with their signed record, verified here), which is answered even
 * when the remote cannot be: then "remote_error" says why the remote's
 * entries are missing or cut short (no remote, unreachable, no answer
 * within HISTORY_REMOTE_TIMEOUT_MS, an error, or a 404 for a document
 * never pushed).  Without local entries errors reach the call as
 * io.ferry.NotFound {collection, id} (the remote answered 404),
 * io.ferry.Offline {reason} (no remote, or the remote cannot be reached,
 * answered another error, or answered something unreadable) or
 * io.ferry.WriteFailed (out of memory).
 */
void	history_start(struct history *h, struct sync *sy, struct store *st,
	    struct vl_call *call, const char *collection, const char *id,
	    int64_t after);

#endif
