/*
 * srv_db: the seam over ferry-server's storage backends; see srv_db.h for
 * the contract and srv_db_impl.h for what a backend provides.  This file
 * only chooses the backend (a URL is PostgreSQL, anything else a SQLite
 * file), checks what is the same for every backend, and calls through.
 */
#include "autoconfig.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "srv_db.h"
#include "srv_db_impl.h"

bool
srv_db_is_url(const char *path)
{
	return strncmp(path, "postgresql://", 13) == 0 ||
	    strncmp(path, "postgres://", 11) == 0;
}

int
srv_db_open(const char *path, struct srv_db **ret, char **ret_error)
{
	if (!srv_db_is_url(path))
		return srv_db_sqlite_open(path, ret, ret_error);
#ifdef HAVE_LIBPQ
	return srv_db_pg_open(path, ret, ret_error);
#else
	if (ret_error != NULL)
		*ret_error = strdup("this ferry-server was built without "
		    "PostgreSQL support (configure --with-postgresql, "
		    "Debian package libpq-dev)");
	return -EPROTONOSUPPORT;
#endif
}

void
srv_db_close(struct srv_db *db)
{
	if (db != NULL)
		db->ops->close(db);
}

const char *
srv_db_errmsg(const struct srv_db *db)
{
	return db->ops->errmsg(db);
}

int64_t
srv_db_head(const struct srv_db *db)
{
	return db->ops->head(db);
}

int
srv_db_worker(struct srv_db *db, struct srv_db **ret)
{
	if (db->ops->worker == NULL)
		return -EOPNOTSUPP;
	return db->ops->worker(db, ret);
}

bool
srv_db_has_workers(const struct srv_db *db)
{
	return db->ops->worker != NULL;
}

int
srv_db_watch(struct srv_db *db, struct event_base *base, srv_db_wake_cb cb,
    void *arg)
{
	if (db->ops->watch == NULL)
		return 0;
	return db->ops->watch(db, base, cb, arg);
}

int
srv_db_keys(struct srv_db *db, srv_db_key_cb cb, void *arg)
{
	if (db->ops->keys == NULL)
		return -EOPNOTSUPP;
	return db->ops->keys(db, cb, arg);
}

int
srv_db_allow(struct srv_db *db, const char *key, const char *name)
{
	if (db->ops->allow == NULL)
		return -EOPNOTSUPP;
	return db->ops->allow(db, key, name);
}

int
srv_db_watch_keys(struct srv_db *db, srv_db_wake_cb cb, void *arg)
{
	if (db->ops->watch_keys == NULL)
		return 0;
	return db->ops->watch_keys(db, cb, arg);
}

int
srv_db_revoke(struct srv_db *db, const char *key, int64_t ms,
    const char *reason)
{
	return db->ops->revoke(db, key, ms, reason);
}

int
srv_db_unrevoke(struct srv_db *db, const char *key)
{
	return db->ops->unrevoke(db, key);
}

int
srv_db_revocations(struct srv_db *db, srv_db_revoked_cb cb, void *arg)
{
	return db->ops->revocations(db, cb, arg);
}

int
srv_db_rotate(struct srv_db *db, const struct srv_rotation *rot)
{
	return db->ops->rotate(db, rot);
}

int
srv_db_rotations(struct srv_db *db, srv_db_rotation_cb cb, void *arg)
{
	return db->ops->rotations(db, cb, arg);
}

int
srv_db_key_times(struct srv_db *db, srv_db_times_cb cb, void *arg)
{
	return db->ops->key_times(db, cb, arg);
}

int
srv_db_note_added(struct srv_db *db, const char *key, int64_t ms)
{
	return db->ops->note_added(db, key, ms);
}

int
srv_db_seen_write(struct srv_db *db, const struct srv_key_seen *v, size_t n)
{
	if (n == 0)
		return 0;
	return db->ops->seen_write(db, v, n);
}

bool
srv_db_outside_change(struct srv_db *db)
{
	return db->ops->outside_change != NULL && db->ops->outside_change(db);
}

int
srv_db_grants(struct srv_db *db, srv_db_grant_cb cb, void *arg)
{
	return db->ops->grants(db, cb, arg);
}

int
srv_db_grant_set(struct srv_db *db, const char *key, const char *rd,
    const char *wr)
{
	return db->ops->grant_set(db, key, rd, wr);
}

int
srv_db_begin(struct srv_db *db)
{
	return db->ops->begin(db);
}

int
srv_db_commit(struct srv_db *db)
{
	return db->ops->commit(db);
}

void
srv_db_rollback(struct srv_db *db)
{
	db->ops->rollback(db);
}

int
srv_db_doc_get(struct srv_db *db, const char *collection, const char *id,
    struct srv_doc *ret)
{
	return db->ops->doc_read(db, collection, id, true, ret);
}

int
srv_db_doc_state(struct srv_db *db, const char *collection, const char *id,
    struct srv_doc *ret)
{
	return db->ops->doc_read(db, collection, id, false, ret);
}

void
srv_doc_clear(struct srv_doc *d)
{
	if (d == NULL)
		return;
	free(d->body);
	memset(d, 0, sizeof *d);
}

int
srv_db_change_id_get(struct srv_db *db, const char *device, int64_t dseq,
    struct srv_change_id *ret)
{
	return db->ops->change_id_get(db, device, dseq, ret);
}

void
srv_change_id_clear(struct srv_change_id *c)
{
	if (c == NULL)
		return;
	free(c->record);
	memset(c, 0, sizeof *c);
}

int
srv_db_max_seq(struct srv_db *db, const char *device, int64_t *ret)
{
	return db->ops->max_seq(db, device, ret);
}

int
srv_db_batch_read(struct srv_db *db, const struct srv_batch_key *keys,
    size_t n)
{
	if (db->ops->batch_read == NULL || n == 0)
		return 0;
	return db->ops->batch_read(db, keys, n);
}

int
srv_db_apply(struct srv_db *db, const struct srv_apply *a, int64_t *ret_seq)
{
	return db->ops->apply(db, a, ret_seq);
}

int
srv_db_note_conflict(struct srv_db *db, const char *device, int64_t dseq)
{
	return db->ops->note_conflict(db, device, dseq);
}

int
srv_db_forget_conflict(struct srv_db *db, const char *device, int64_t dseq)
{
	return db->ops->forget_conflict(db, device, dseq);
}

int
srv_db_set_max_seq(struct srv_db *db, const char *device, int64_t dseq)
{
	return db->ops->set_max_seq(db, device, dseq);
}

int
srv_db_changes(struct srv_db *db, int64_t since, int limit, srv_change_cb cb,
    void *arg)
{
	return db->ops->changes(db, since, limit, cb, arg);
}

int
srv_db_history(struct srv_db *db, const char *collection, const char *id,
    int64_t after, int limit, srv_change_cb cb, void *arg)
{
	return db->ops->history(db, collection, id, after, limit, cb, arg);
}

int
srv_db_presence_put(struct srv_db *db, const char *device, const char *list,
    int64_t expires_ms, int64_t now_ms)
{
	if (db->ops->presence_put == NULL)
		return -EOPNOTSUPP;
	return db->ops->presence_put(db, device, list, expires_ms, now_ms);
}

int
srv_db_presence_load(struct srv_db *db, const char *device,
    srv_db_presence_row_cb cb, void *arg)
{
	if (db->ops->presence_load == NULL)
		return -EOPNOTSUPP;
	return db->ops->presence_load(db, device, cb, arg);
}

int
srv_db_watch_presence(struct srv_db *db, srv_db_presence_cb cb, void *arg)
{
	if (db->ops->watch_presence == NULL)
		return 0;
	return db->ops->watch_presence(db, cb, arg);
}

bool
srv_db_shares_presence(const struct srv_db *db)
{
	return db->ops->presence_put != NULL;
}
