#!/bin/sh
# t5001-pg-server-basics: what t1001 checks (info, auth, the keys file) holds on the PostgreSQL backend too: t1001-server-basics.sh run
# unchanged against a ferry-server whose store is a throwaway
# PostgreSQL 15 (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh).
# Guards the storage seam (server/srv_db.h): a handler or a promise that
# only the SQLite backend keeps fails here.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1001-server-basics.sh"
