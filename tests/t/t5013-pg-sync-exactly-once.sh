#!/bin/sh
# t5013-pg-sync-exactly-once: what t2003 checks (every change lands exactly
# once) holds on the PostgreSQL backend too: t2003-sync-exactly-once.sh run
# unchanged against a ferry-server whose store is a throwaway
# PostgreSQL 15 (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh).
# Guards the storage seam (server/srv_db.h): a handler or a promise that
# only the SQLite backend keeps fails here.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t2003-sync-exactly-once.sh"
