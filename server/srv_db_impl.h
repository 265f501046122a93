/*
 * srv_db_impl: the seam between srv_db's callers and its backends, for
 * backends only (srv_db_sqlite.c, srv_db_pg.c).  A backend's handle
 * starts with a struct srv_db whose ops point at its functions; srv_db.c
 * checks what every backend would check alike (a batch is open for a
 * write) and calls through.  Each op has the contract of the srv_db_*
 * function of the same name in srv_db.h.  worker and watch may be NULL:
 * then the backend is used from the loop's thread only, and nothing but
 * this process writes its store; keys, allow and watch_keys may be NULL:
 * then the keys file is the only list; outside_change may be NULL (never:
 * the backend notifies instead); batch_read may be NULL: then batches
 * never run at once.  Every backend keeps revocations and key times
 * (revoke ... seen_write), rotations (rotate, rotations) and grants
 * (grants, grant_set).
 */
#ifndef FERRY_SRV_DB_IMPL_H
#define FERRY_SRV_DB_IMPL_H

#include <stdbool.h>

#include "srv_db.h"

struct srv_db_ops {
	void	 (*close)(struct srv_db *);
	const char *(*errmsg)(const struct srv_db *);
	int64_t	 (*head)(const struct srv_db *);
	int	 (*begin)(struct srv_db *);
	int	 (*commit)(struct srv_db *);
	void	 (*rollback)(struct srv_db *);
	int	 (*doc_read)(struct srv_db *, const char *, const char *, bool,
		    struct srv_doc *);
	int	 (*change_id_get)(struct srv_db *, const char *, int64_t,
		    struct srv_change_id *);
	int	 (*batch_read)(struct srv_db *, const struct srv_batch_key *,
		    size_t);
	int	 (*max_seq)(struct srv_db *, const char *, int64_t *);
	int	 (*set_max_seq)(struct srv_db *, const char *, int64_t);
	int	 (*apply)(struct srv_db *, const struct srv_apply *, int64_t *);
	int	 (*note_conflict)(struct srv_db *, const char *, int64_t);
	int	 (*forget_conflict)(struct srv_db *, const char *, int64_t);
	int	 (*changes)(struct srv_db *, int64_t, int, srv_change_cb,
		    void *);
	int	 (*history)(struct srv_db *, const char *, const char *,
		    int64_t, int, srv_change_cb, void *);
	int	 (*worker)(struct srv_db *, struct srv_db **);
	int	 (*watch)(struct srv_db *, struct event_base *,
		    srv_db_wake_cb, void *);
	int	 (*keys)(struct srv_db *, srv_db_key_cb, void *);
	int	 (*allow)(struct srv_db *, const char *, const char *);
	int	 (*watch_keys)(struct srv_db *, srv_db_wake_cb, void *);
	int	 (*revoke)(struct srv_db *, const char *, int64_t,
		    const char *);
	int	 (*unrevoke)(struct srv_db *, const char *);
	int	 (*revocations)(struct srv_db *, srv_db_revoked_cb, void *);
	int	 (*key_times)(struct srv_db *, srv_db_times_cb, void *);
	int	 (*note_added)(struct srv_db *, const char *, int64_t);
	int	 (*seen_write)(struct srv_db *, const struct srv_key_seen *,
		    size_t);
	bool	 (*outside_change)(struct srv_db *);
	int	 (*rotate)(struct srv_db *, const struct srv_rotation *);
	int	 (*rotations)(struct srv_db *, srv_db_rotation_cb, void *);
	int	 (*grants)(struct srv_db *, srv_db_grant_cb, void *);
	int	 (*grant_set)(struct srv_db *, const char *, const char *,
		    const char *);
	/* May be NULL: presence is not shared (one instance). */
	int	 (*presence_put)(struct srv_db *, const char *, const char *,
		    int64_t, int64_t);
	int	 (*presence_load)(struct srv_db *, const char *,
		    srv_db_presence_row_cb, void *);
	int	 (*watch_presence)(struct srv_db *, srv_db_presence_cb,
		    void *);
};

struct srv_db {
	const struct srv_db_ops	*ops;
};

int	srv_db_sqlite_open(const char *path, struct srv_db **ret,
	    char **ret_error);
#ifdef HAVE_LIBPQ
int	srv_db_pg_open(const char *conninfo, struct srv_db **ret,
	    char **ret_error);
#endif

#endif
