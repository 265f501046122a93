#!/bin/sh
# Rereading the keys on PostgreSQL never stops the instance.  Bug guarded:
# on a ferry_keys notification, SIGHUP or a listener reconnect, ferry-server
# reread the allowed keys, revocations, rotations and grants with
# synchronous queries on its event loop's own connection, so while
# PostgreSQL was slow to answer them (here: a session holding
# allowed_keys locked) every request of the instance waited, up to the
# lock's release.  Promise: the reread runs off the loop; meanwhile the
# instance answers reads and pushes at once (1 s here) with the keys in
# use; a burst of announcements while one reread waits leads to at most
# one more, never a queue; once the lock goes, the new key is taken.
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/server-lib.sh"

# fast WHAT FILE: FILE's request (made with --elapsed, its stderr in
# FILE.err) was answered within 1 s.
fast() {
	_ms=$(sed -n "s/^elapsed_ms //p" "$2.err") &&
	if [ -z "$_ms" ] || [ "$_ms" -ge 1000 ]; then
		echo "$1 took ${_ms:-?} ms (its stderr:)"
		cat "$2.err"
		return 1
	fi
}

test_expect_success 'setup: an instance on PostgreSQL, alice allowed, n1 stored' '
	pg_createdb keys && URL=$(pg_url keys) &&
	A=$(key_of alice) && B=$(key_of bob) &&
	"$FERRY_SERVER" --db "$URL" allow "$A" alice >/dev/null &&
	server_start A --db "$URL" &&
	push A alice "$(item alice put notes n1 0 1 "{\"t\":1}")" >out &&
	test_grep "\"status\":\"applied\",\"version\":1" out &&
	req A bob GET /v1/info >out && status_is 401 out
'

test_expect_success 'a reread waiting on allowed_keys: the instance keeps answering' '
	pg_session_begin keys locker.out "LOCK TABLE allowed_keys IN ACCESS EXCLUSIVE MODE;
	    INSERT INTO allowed_keys (key, name, added_ms)
	    VALUES ('"'$B'"', '"'bob'"', 0);
	    NOTIFY ferry_keys;" &&
	test_wait_until 10 "grep -q 1 locker.out" &&
	n0=$(grep -c "reloaded .* authorized key" "$(server_log A)" || :) &&
	kill -HUP "$(server_pid A)" &&
	test_wait_until 10 "test \$(pg_lock_waiters keys) -ge 1" &&
	req A alice --elapsed --timeout 5 GET "/v1/changes?since=0" \
	    >changes 2>changes.err &&
	status_is 200 changes && test_grep "\"id\":\"n1\"" changes &&
	fast "GET /v1/changes" changes &&
	req A alice --elapsed --timeout 5 GET /v1/docs/notes/n1 \
	    >doc 2>doc.err &&
	status_is 200 doc && fast "GET /v1/docs/notes/n1" doc &&
	printf "{\"changes\":[%s]}" \
	    "$(item alice put notes n2 0 2 "{\"t\":2}")" >n2.json &&
	req A alice --elapsed --timeout 5 POST /v1/push n2.json \
	    >pushed 2>pushed.err &&
	test_grep "\"status\":\"applied\",\"version\":1" pushed &&
	fast "POST /v1/push" pushed &&
	req A bob --elapsed --timeout 5 GET /v1/info >bob 2>bob.err &&
	status_is 401 bob && fast "bob'"'"'s GET /v1/info" bob
'

test_expect_success 'announcements meanwhile are coalesced, not queued' '
	pid=$(server_pid A) &&
	for i in 1 2 3 4 5; do kill -HUP "$pid" || return 1; done &&
	req A alice --elapsed --timeout 5 GET /v1/info >info 2>info.err &&
	status_is 200 info && fast "GET /v1/info" info &&
	w=$(pg_lock_waiters keys) &&
	{ test "$w" = 1 || { echo "$w connections wait on the lock"; false; }; }
'

test_expect_success 'the lock released: bob is taken; six SIGHUPs and a notification made at most three rereads' '
	pg_session_commit &&
	test_wait_until 10 "req A bob GET /v1/info >out && status_is 200 out" &&
	test_wait_until 10 "test \$(pg_lock_waiters keys) = 0" &&
	n=$(grep -c "reloaded .* authorized key" "$(server_log A)") &&
	{ test "$n" -gt "$n0" && test "$n" -le $((n0 + 3)) ||
	{ echo "$((n - n0)) rereads for 6 SIGHUPs and a notification"; false; }; }
'

test_expect_success 'the instance stops cleanly' '
	server_stop A
'

test_done
