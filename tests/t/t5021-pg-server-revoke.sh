#!/bin/sh
# t5021-pg-server-revoke: what t1015 checks (revoke, unrevoke, keys on a
# running server) holds on the PostgreSQL backend too: t1015 run unchanged
# against a ferry-server whose store is a throwaway PostgreSQL (server-lib.sh
# with FERRY_TEST_DB=postgresql, pg-lib.sh).  There the revocation reaches
# the running server by notification, not by the store's data version.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1015-server-revoke.sh"
