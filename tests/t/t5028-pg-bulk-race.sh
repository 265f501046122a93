#!/bin/sh
# A push batch on PostgreSQL reads its documents ahead and writes them at
# commit in a few statements (issue 10, srv_pg_batch).  Guards the race
# that leaves open: a document the batch read as absent is created by
# another writer before the batch commits.  The batch must not overwrite
# it, nor log a change for it: the batch is run again, the change on the
# raced document is answered "conflict" with the other writer's body,
# and the batch's other changes are applied once each, with the feed's
# seqs still 1..N without a gap.  The other writer is a psql session
# holding its INSERT open until the instance waits on it.

FERRY_TEST_DB=postgresql
. "$(dirname "$0")/server-lib.sh"

# other_begin SQL: a psql session that runs SQL in a transaction it keeps
# open until other_commit.  It reads a FIFO this shell holds open on fd 3
# (read-write: opening it so does not wait for a reader).
other_begin() {
	rm -f "$TEST_DIR/other.in" && mkfifo "$TEST_DIR/other.in" &&
	exec 3<>"$TEST_DIR/other.in" &&
	test_bg "$PG_BIN/psql" -X -q -A -t -h "$pg_dir" -U postgres -d race \
	    -v ON_ERROR_STOP=1 <"$TEST_DIR/other.in" >other.out 2>&1 3>&- &&
	other_pid=$test_bg_pid &&
	printf 'BEGIN;\n%s\nSELECT 1;\n' "$1" >&3
}

other_commit() {
	printf 'COMMIT;\n\\q\n' >&3 && exec 3>&- &&
	test_wait_exit "$other_pid" 30 && test "$test_exit_status" = 0
}

# waiting: how many of the instance's connections wait on a lock.
waiting() {
	pg_sql race "SELECT count(*) FROM pg_stat_activity
	    WHERE application_name = 'ferry-server' AND wait_event_type = 'Lock'"
}

test_expect_success 'setup: an instance on PostgreSQL, n1 at version 1' '
	pg_createdb race &&
	server_start A --open --db "$(pg_url race)" &&
	key_of alice >/dev/null &&
	push A alice "$(item alice put notes n1 0 1 "{\"t\":\"n1\"}")" >out &&
	test_grep "\"status\":\"applied\",\"version\":1" out
'

test_expect_success 'a document created while the batch runs is not overwritten' '
	other_begin "INSERT INTO docs VALUES ('"'notes'"', '"'r1'"', 1, false,
	    json_build_object('"'t'"', '"'other'"')::text);" &&
	test_wait_until 10 "grep -q 1 other.out" &&
	test_bg push A alice "$(item alice put notes r1 0 2 "{\"t\":\"mine\"}")" \
	    "$(item alice put notes r2 0 3 "{\"t\":\"new\"}")" \
	    "$(item alice put notes n1 1 4 "{\"t\":\"n1 again\"}")" \
	    >push.out 2>&1 &&
	pusher=$test_bg_pid &&
	test_wait_until 30 "test \$(waiting) -ge 1" &&
	other_commit &&
	test_wait_exit "$pusher" 30 &&
	status_is 200 push.out &&
	test_grep "running it again: created 1 of 2 documents" \
	    "$(server_log A)" &&
	tail -n 1 push.out >results &&
	test_grep "{\"results\":\[{\"current\":{\"body\":{\"t\":\"other\"},\"deleted\":false,\"version\":1},\"status\":\"conflict\"},{\"status\":\"applied\",\"version\":1},{\"status\":\"applied\",\"version\":2}\]}" results
'

test_expect_success 'the store holds the other writer'"'"'s r1 and each change once' '
	req A alice GET /v1/docs/notes/r1 >doc &&
	test_grep "other" doc &&
	pg_sql race "SELECT id, version, dseq FROM changes ORDER BY seq" >log &&
	printf "n1|1|1\nr2|1|3\nn1|2|4\n" >expect &&
	test_cmp expect log &&
	pg_sql race "SELECT count(*), min(seq), max(seq), (SELECT seq FROM head)
	    FROM changes" >seqs &&
	echo "3|1|3|3" >expect && test_cmp expect seqs
'

test_expect_success 'the change sent again after the other commit: conflict again' '
	push A alice "$(item alice put notes r1 0 2 "{\"t\":\"mine\"}")" >out &&
	test_grep "\"status\":\"conflict\"" out &&
	test_grep "other" out
'

test_expect_success 'the instance stops cleanly' '
	server_stop A
'

test_done
