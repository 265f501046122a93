#!/bin/sh
# t5027-pg-server-grants: what t1018 checks (per-collection grants: pushes
# rejected per record, changes, documents, history and long-poll wake-ups
# of collections a key may not read never sent to it, collections=) holds
# on the PostgreSQL backend too: t1018 run unchanged against a
# ferry-server whose store is a throwaway PostgreSQL (server-lib.sh with
# FERRY_TEST_DB=postgresql).  There a change of grants reaches every
# instance by notification.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1018-server-grants.sh"
