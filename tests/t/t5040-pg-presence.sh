#!/bin/sh
# t5040-pg-presence: what t2040 checks (presence across devices through
# ferry-server) holds with two ferry-server instances on one PostgreSQL
# database: ferryd A talks to instance s, ferryd B to instance s2, and B's
# watcher still sees A's app arrive, leave cleanly, and go at the TTL
# after a kill -9 of A.  Guards the sharing of presence between instances
# (an UNLOGGED table and a NOTIFY per change, server/srv_db.h): without it
# each instance would only know the devices that talk to it.
FERRY_TEST_DB=postgresql
PRESENCE_TWO_INSTANCES=1
. "$(dirname "$0")/t2040-sync-presence.sh"
