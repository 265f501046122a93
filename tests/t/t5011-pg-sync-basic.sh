#!/bin/sh
# t5011-pg-sync-basic: what t2001 checks (two ferryd converge through the server) holds on the PostgreSQL backend too: t2001-sync-basic.sh run
# unchanged against a ferry-server whose store is a throwaway
# PostgreSQL 15 (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh).
# Guards the storage seam (server/srv_db.h): a handler or a promise that
# only the SQLite backend keeps fails here.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t2001-sync-basic.sh"
