/*
 * wire: the checks a client makes on the remote's answers before it trusts
 * them (DESIGN "Remote protocol v1"): the results of POST /v1/push, a page
 * of GET /v1/changes, and the last_seq hint read off the end of a page
 * without parsing it.
 *
 * These are pure functions over bytes and parse trees, kept apart from the
 * sync engine so that unit tests and fuzzers can reach every branch with
 * no HTTP, no event loop and no store.  A check that passes promises
 * exactly the shape listed at each function, no more: a caller that reads
 * anything else from the tree checks it itself.
 *
 * Nothing here blocks, logs or keeps state between calls; the functions
 * are safe to call from any thread.
 */
#ifndef FERRY_WIRE_H
#define FERRY_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

/*
 * Check the "results" member of a push answer for a push of n changes:
 * an array of exactly n objects, each with a string "status" that is
 * "applied" or "duplicate" with an integer "version" >= 1, "conflict" with
 * an object "current" holding either "deleted" true and an integer
 * "version" >= 0 (0: the server does not have the document) or an integer
 * "version" >= 1 and an object "body", or "rejected" with a string
 * "error".  results is borrowed and may be NULL (member absent).
 * Returns NULL if it holds, else a static sentence saying what is wrong
 * ("results do not match the changes sent", ...).
 */
const char	*wire_push_results_check(json_t *results, size_t n);

/*
 * The body of POST /v1/push, {"changes":[{"record":R,"sig":S},...]},
 * written as the records are made: each record is the signed text itself,
 * escaped as a JSON string in one pass (building a jansson tree of the
 * batch only to write it, with a UTF-8 check of every record, was a tenth
 * of the push's CPU).  Start with a zeroed struct; wire_push_req_add
 * appends one change, wire_push_req_end closes the text (NUL-terminated)
 * and hands it over in text/len (free()); wire_push_req_free drops it.
 * record must be UTF-8 (it is what record_make wrote); sig a signature in
 * base64, which needs no escaping.  0 or -ENOMEM (the text is then freed).
 */
struct wire_push_req {
	char	*text;
	size_t	 len, cap;
	size_t	 n;		/* changes in it */
};

int	wire_push_req_add(struct wire_push_req *q, const char *record,
	    size_t len, const char *sig);
int	wire_push_req_end(struct wire_push_req *q);
void	wire_push_req_free(struct wire_push_req *q);

/*
 * ferry-server's side: the changes of a push request laid out exactly as
 * wire_push_req writes it (no white space but at the end, each change
 * {"record":R,"sig":S} with R using no \u escape and S none at all),
 * read without jansson's lexer.  Returns 0 with *ret_changes, a new array
 * of {"record":string,"sig":string} objects, exactly what json_loadb of
 * the text would hold under "changes"; -ENOTSUP for any other text (the
 * caller parses it with jansson, which says what is wrong); -ENOMEM.
 * More than max changes is -E2BIG (the caller's general path says so).
 */
int	wire_push_req_scan(const char *text, size_t len, size_t max,
	    json_t **ret_changes);

/*
 * Parse one page of GET /v1/changes, text[0..len) (no NUL needed), with
 * JSON_REJECT_DUPLICATES, and check its shape before any of it is
 * applied: an integer "last_seq" and a "changes" array.  Each change is
 * checked on its own (wire_change_check), so that one the replica cannot
 * apply is parked and never blocks the rest of the page.
 *
 * Returns 0 with *ret_changes (a new reference to the page's changes
 * array; the rest of the page is freed) and *ret_last_seq; or -EBADMSG
 * (-ENOMEM when jansson ran out of memory) with a sentence saying why in
 * reason (reason_size bytes, always NUL-terminated when reason_size > 0).
 * Nothing else is written on failure.
 */
/*
 * One change of a page: an object with a string "collection" and "id"
 * that are valid names, an integer "version" >= 1, and an object "body"
 * unless "deleted" is true.  NULL if so, else a static phrase saying what
 * is wrong with the field named in *ret_field (may be NULL): "change",
 * "collection", "id", "version" or "body", so that "<field> <phrase>"
 * reads as a sentence ("version is missing or not positive").
 */
const char	*wire_change_check(const json_t *ch, const char **ret_field);
/* The same for a change whose body is held apart (as text, see
 * wire_changes_page_scan): has_body says whether it has one. */
const char	*wire_change_check_apart(const json_t *ch, bool has_body,
		    const char **ret_field);

int	wire_changes_page_parse(const char *text, size_t len,
	    json_t **ret_changes, int64_t *ret_last_seq, char *reason,
	    size_t reason_size);

/*
 * The same page read without building its bodies, when it is laid out as
 * ferry-server writes it (compact, keys sorted, each change with "sig"
 * and "ts" and no "record") and each body is already in the form ferryd
 * stores (lib/jscan: jansson's compact writing, at most
 * BODYLIMIT_MAX_DEPTH deep).  Returns 0 with *ret_changes (as
 * wire_changes_page_parse's, but no change has a "body"), *ret_bodies (a
 * malloc'd array of as many malloc'd strings: each put's body as jansson
 * would write it, NULL for a delete; the caller frees both) and
 * *ret_last_seq; -ENOTSUP if the page is laid out otherwise (the caller
 * then calls wire_changes_page_parse, which also says what is wrong with
 * a page that is not valid); -ENOMEM.  What it accepts, it accepts as
 * wire_changes_page_parse would, with the same changes and, written
 * compact, the same bodies (tests/fuzz/fuzz_changes_page.c).
 */
int	wire_changes_page_scan(const char *text, size_t len,
	    json_t **ret_changes, char ***ret_bodies, int64_t *ret_last_seq);

/*
 * The last_seq of a page laid out as ferry-server writes it (compact, keys
 * sorted, so the text ends with "last_seq":N} and maybe white space), read
 * without parsing: only a hint, which the caller checks against the parsed
 * page.  At most 18 digits are read, so it cannot overflow.  Returns 0 and
 * *ret, or -ENOENT if the text ends otherwise.
 */
int	wire_last_seq_hint(const char *text, size_t len, int64_t *ret);

#endif
