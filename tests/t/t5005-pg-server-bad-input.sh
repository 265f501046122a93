#!/bin/sh
# t5005-pg-server-bad-input: what t1005 checks (bad input is refused and changes nothing) holds on the PostgreSQL backend too: t1005-server-bad-input.sh run
# unchanged against a ferry-server whose store is a throwaway
# PostgreSQL 15 (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh).
# Guards the storage seam (server/srv_db.h): a handler or a promise that
# only the SQLite backend keeps fails here.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1005-server-bad-input.sh"
