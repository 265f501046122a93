#!/bin/sh
# t5025-pg-server-rotate: what t1017 checks (key rotation: statements, the
# retired key refused, its records taken from its successor up to its
# seq, history, bad statements) holds on the PostgreSQL backend too: t1017
# run unchanged against a ferry-server whose store is a throwaway
# PostgreSQL (server-lib.sh with FERRY_TEST_DB=postgresql, pg-lib.sh),
# where the rotation is written on a worker and told by notification.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/t1017-server-rotate.sh"
