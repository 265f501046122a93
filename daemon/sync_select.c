/*
 * sync_select: selective sync (issue 13; docs/sync.md "Selective sync"):
 * which collections this device syncs, kept in step with the pull
 * cursor and filter (collset.h), and changed at run time by
 * `ferryctl sync --collections` (Sync's collections parameter).
 *
 * The set wanted is the replica's meta "sync_collections" when
 * `ferryctl sync --collections` set one (it persists, and wins over the
 * configuration file), else ferryd.conf's [sync] collections, else every
 * collection.  The set pulled is meta "pull_filter" (collset filter,
 * "*" or absent: every collection) at meta "pull_cursor".  Whenever they
 * may differ (at start, and at a change), one writer op moves the filter
 * and the cursor together (collset_move): an added collection is then
 * pulled from its start, the others from where they were.  Outbox rows
 * of collections not in the set are never sent (store_set_synced); they
 * stay in the outbox, counted in Status as local_only.
 *
 * A change at run time holds the pull (no new page is fetched or queued
 * to the writer) from the moment it is asked until its op is done, and
 * drops the pages fetched before, so no page fetched under the old
 * filter is applied on top of the new cursor.
 */
#include "autoconfig.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "collset.h"
#include "log.h"
#include "sync_int.h"

struct select_op {
	struct sync	*sy;
	char		*asked;		/* run time: the new set; else NULL */
	struct vl_call	*call;		/* the Sync call that asked */
	bool		 wait;
	struct sync_select sel;		/* the outcome */
};

void
sync_select_clear(struct sync_select *sel)
{
	free(sel->set);
	free(sel->filter);
	memset(sel, 0, sizeof *sel);
}

int
sync_select_settle(struct store *st, const char *cfg_set, const char *asked,
    struct sync_select *ret)
{
	struct sync_select sel;
	char *want = NULL, *filter = NULL, *v = NULL, buf[32];
	int64_t cursor = 0;
	int r;

	memset(&sel, 0, sizeof sel);
	if (asked != NULL &&
	    (r = store_meta_set(st, "sync_collections", asked)) < 0)
		goto out;
	if (store_meta_get(st, "sync_collections", &want) < 0) {
		want = strdup(cfg_set != NULL ? cfg_set : "*");
		if (want == NULL) {
			r = -ENOMEM;
			goto out;
		}
	}
	if (store_meta_get(st, "pull_filter", &filter) == 0 &&
	    strcmp(filter, "*") == 0) {
		free(filter);
		filter = NULL;
	}
	if (store_meta_get(st, "pull_cursor", &v) == 0) {
		cursor = strtoll(v, NULL, 10);
		free(v);
	}
	if ((r = collset_move(filter, want, cursor, &sel.filter,
	    &sel.cursor)) < 0)
		goto out;
	sel.moved = sel.cursor != cursor;
	if ((r = store_meta_set(st, "pull_filter", sel.filter != NULL ?
	    sel.filter : "*")) < 0)
		goto out;
	if (sel.moved) {
		snprintf(buf, sizeof buf, "%" PRId64, sel.cursor);
		if ((r = store_meta_set(st, "pull_cursor", buf)) < 0)
			goto out;
	}
	if ((r = store_set_synced(st, true, want)) < 0)
		goto out;
	sel.set = want;
	want = NULL;
	*ret = sel;
	memset(&sel, 0, sizeof sel);
	r = 0;
out:
	free(want);
	free(filter);
	sync_select_clear(&sel);
	return r;
}

void
sync_select_take(struct sync *sy, struct sync_select *sel)
{
	free(sy->sync_set);
	free(sy->pull_filter);
	sy->sync_set = sel->set;
	sy->pull_filter = sel->filter;
	sel->set = sel->filter = NULL;
	(void)store_set_synced(sy->st, false, sy->sync_set);
	if (sel->moved)
		log_info("sync: collections %s: pulling %s from seq %" PRId64,
		    sy->sync_set, sy->pull_filter != NULL ? sy->pull_filter :
		    "everything", sel->cursor);
}

static void
select_run(struct writer_batch *b, struct writer_op *op)
{
	struct select_op *so = op->arg;
	int r;

	if ((r = sync_select_settle(b->st, so->sy->cfg_collections,
	    so->asked, &so->sel)) < 0)
		writer_op_fail(op, r, r == -EINVAL ? "the stored pull filter "
		    "cannot be read" : store_errmsg(b->st));
}

static void
select_done(struct writer_op *op, int err, void *arg)
{
	struct select_op *so = arg;
	struct sync *sy = so->sy;
	json_t *p;

	sy->pull_hold = false;
	if (sy->state == SYNC_STOPPING) {
		sync_select_clear(&so->sel);
		free(so->asked);
		free(so);
		return;
	}
	if (err != 0) {
		p = json_pack("{s:s,s:s}", "field", "collections", "reason",
		    "the replica could not store the new set");
		sy->reply(sy->arg, so->call, "io.ferry.InvalidArgument", p);
		json_decref(p);
	} else {
		sync_select_take(sy, &so->sel);
		sy->cursor = so->sel.cursor;
		log_notice("sync: collections set to %s (ferryctl sync "
		    "--collections)", sy->sync_set);
		/* Local-only rows may be sendable now, or no longer. */
		sy->push_need = true;
		sync_push_start(sy);
		sync_pull_restart(sy);
		sync_request(sy, so->call, so->wait);
	}
	sync_select_clear(&so->sel);
	free(so->asked);
	free(so);
	sync_update(sy, "collections changed");
}

int
sync_select_change(struct sync *sy, const char *set, struct vl_call *call,
    bool wait)
{
	struct select_op *so;

	if ((so = calloc(1, sizeof *so)) == NULL ||
	    (so->asked = strdup(set)) == NULL) {
		free(so);
		return -ENOMEM;
	}
	so->sy = sy;
	so->call = call;
	so->wait = wait;
	/* No page fetched under the old filter is applied after this. */
	sy->pull_hold = true;
	sync_pull_restart(sy);
	if (sync_writer_add(sy, select_run, select_done, so) < 0) {
		sy->pull_hold = false;
		free(so->asked);
		free(so);
		return -ENOMEM;
	}
	return 0;
}
