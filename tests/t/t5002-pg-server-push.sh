#!/bin/sh
# t5002-pg-server-push: what t1002 checks (push outcomes: applied, duplicate, conflict, rejected) holds on the PostgreSQL backend too: t1002-server-push.sh run
# unchanged against a ferry-server whose store is a throwaway
# PostgreSQL 15 (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh).
# Guards the storage seam (server/srv_db.h): a handler or a promise that
# only the SQLite backend keeps fails here.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1002-server-push.sh"
