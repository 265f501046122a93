#!/bin/sh
# t5004-pg-server-history: what t1004 checks (a document's signed history) holds on the PostgreSQL backend too: t1004-server-history.sh run
# unchanged against a ferry-server whose store is a throwaway
# PostgreSQL 15 (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh).
# Guards the storage seam (server/srv_db.h): a handler or a promise that
# only the SQLite backend keeps fails here.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1004-server-history.sh"
