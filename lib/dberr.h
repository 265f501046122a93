/*
 * dberr: SQLite result codes as -errno, the one mapping the replica
 * (lib/store) and ferry-server's database (server/srv_db) share, so a full
 * disk reads -ENOSPC and a damaged file -EBADMSG wherever it happens.
 */
#ifndef FERRY_DBERR_H
#define FERRY_DBERR_H

/* -errno for an SQLite (extended) result code other than OK/ROW/DONE. */
int	dberr_errno(int rc);

#endif
