/*
 * srv_grants: which collections a key may read and write (issue 13,
 * docs/protocol.md "Per-collection access"), and the collections a
 * reader asks for (the collections= filter of /v1/changes).
 *
 * A key's grants are two lists of patterns: read and write.  A pattern is
 * a collection name, or a name with '*' in it, which matches any run of
 * characters (none included): "team-*", "*-notes", "*".  Nothing else is
 * special: a pattern is 1-128 bytes of [A-Za-z0-9._-*].  Write implies
 * read.  A key with no grants at all (no row in the store) may read and
 * write everything, as before grants existed; a key with grants may touch
 * only what they name, so "--read ''" (empty lists) shuts it out of every
 * collection while it may still authenticate.
 *
 * The grants of all keys are compiled into a set (struct srv_grants) once
 * whenever they change (a reload builds a new set and swaps it, like
 * srv_keys and srv_revoked); a request looks its key up once (a binary
 * search) and keeps a reference to the key's grant (struct srv_grant) for
 * as long as it needs it, so a reload never frees a grant a read on a
 * worker thread still uses.  References are taken and dropped on the
 * loop's thread only; a grant itself never changes and is safe to read on
 * any thread.  A check is a few pattern matches over the key's lists, no
 * I/O.
 *
 * A filter (struct srv_filter) is what a reader asks for: entries
 * "NAME[:FLOOR]" or "*[:FLOOR]", comma-separated: a change of collection
 * NAME is sent when its seq is above FLOOR (0 when absent); "*" stands for
 * every collection no other entry names.  No filter: everything.
 *
 * Nothing here logs or blocks.
 */
#ifndef FERRY_SRV_GRANTS_H
#define FERRY_SRV_GRANTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#define SRV_GRANTS_PATTERN_MAX	128	/* bytes in one pattern */
#define SRV_GRANTS_LIST_MAX	64	/* patterns in one list */
#define SRV_FILTER_MAX		64	/* entries in a filter */

struct srv_grant;
struct srv_grants;
struct srv_filter;

/*
 * Normalise a comma-separated list of patterns (blanks around each are
 * dropped, duplicates kept once, order kept) into *ret (malloc'd; "" for
 * an empty list).  0, -EINVAL with a reason naming the bad pattern in
 * why (size bytes), -ENOMEM.
 */
int	srv_grants_list_norm(const char *list, char **ret, char *why,
	    size_t size);

/* An empty set.  0 or -ENOMEM. */
int	srv_grants_new(struct srv_grants **ret);
/*
 * While building: the grants of key (lists as srv_grants_list_norm
 * writes them).  -EINVAL for a malformed list (the key keeps no grant:
 * the caller says so and decides), -ENOMEM.
 */
int	srv_grants_add(struct srv_grants *gs, const char *key, const char *rd,
	    const char *wr);
/* Done building: sort for lookups. */
void	srv_grants_seal(struct srv_grants *gs);
/* Drops the set's references; grants still referenced live on. */
void	srv_grants_free(struct srv_grants *gs);
size_t	srv_grants_count(const struct srv_grants *gs);
/* key's grant, a reference the caller drops with srv_grant_unref; NULL:
 * the key may do everything (gs NULL too). */
struct srv_grant *srv_grants_get(const struct srv_grants *gs,
	    const char *key);

void	srv_grant_unref(struct srv_grant *g);
/* NULL is everything. */
bool	srv_grant_can_read(const struct srv_grant *g, const char *collection);
bool	srv_grant_can_write(const struct srv_grant *g, const char *collection);
/* {"read": [...], "write": [...]} of a set's lists, new reference. */
json_t	*srv_grants_json(const char *rd, const char *wr);

/*
 * Parse a collections= value into *ret.  0, -EINVAL with a reason in why
 * (an entry that is not NAME[:FLOOR] or *[:FLOOR], more than
 * SRV_FILTER_MAX entries, a name twice), -ENOMEM.
 */
int	srv_filter_parse(const char *text, struct srv_filter **ret, char *why,
	    size_t size);
void	srv_filter_free(struct srv_filter *f);
/* Is a change (collection, seq) asked for?  f NULL: yes. */
bool	srv_filter_wants(const struct srv_filter *f, const char *collection,
	    int64_t seq);

#endif
