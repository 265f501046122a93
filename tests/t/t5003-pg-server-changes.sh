#!/bin/sh
# t5003-pg-server-changes: what t1003 checks (the change feed, paging and long-polls) holds on the PostgreSQL backend too: t1003-server-changes.sh run
# unchanged against a ferry-server whose store is a throwaway
# PostgreSQL 15 (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh).
# Guards the storage seam (server/srv_db.h): a handler or a promise that
# only the SQLite backend keeps fails here.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1003-server-changes.sh"
