#!/bin/sh
# Guards "never auto-retry a definitive answer": a server that does not
# know this device's key answers 401; ferryd then says paused (not
# offline) with the status code in last_error, Sync(wait) answers
# io.ferry.Offline at once with that reason instead of hanging, local
# writes go on, and nothing is lost: once the key is allowed (the server
# reloads its keys on SIGHUP) a Sync call leaves the paused state and
# everything drains.  Also (issue 11): `ferryctl sync --wait` on a paused
# sync says why in a sentence and prints the state it ended in, and
# SIGHUP to ferryd (a reload) resumes a paused sync, as ferryd(8) says.

. "$(dirname "$0")/sync-lib.sh"

state_is() {
	status_of "$1" | grep -q "\"state\":\"$2\""
}

test_expect_success 'setup: a server that knows no key, ferryd A writing' '
	server_start s &&
	syncd_start A s &&
	put_ok A notes n1 "{\"t\":1}" &&
	test_wait_until 10 "state_is A paused"
'

test_expect_success 'Status says paused, with the 401 in last_error' '
	status_of A >st &&
	test_grep "\"state\":\"paused\"" st &&
	test_grep "\"last_error\":\"[^\"]*401" st &&
	test_equal pending 1 "$(json_int pending st)"
'

test_expect_success 'Sync(wait) answers Offline at once, naming the refusal' '
	t0=$(now_ms) &&
	vlcall A "{\"method\":\"io.ferry.Sync\",\"parameters\":{\"wait\":true}}" \
	    --timeout 20000 >sync.out &&
	test $(( $(now_ms) - t0 )) -lt 5000 &&
	test_grep "^{\"error\":\"io.ferry.Offline\"" sync.out &&
	test_grep "401" sync.out &&
	test_expect_code 1 ctl_bounded 20 A sync --wait &&
	state_is A paused
'

test_expect_success 'ferryctl sync --wait: why, then the state it ended in' '
	test_expect_code 1 ctl_bounded 20 A sync --wait >out 2>err &&
	cat out err &&
	test_grep "^ferryctl: the remote cannot be reached: .*401" err &&
	test_grep "^state: *paused" out &&
	test_grep "^pending: *1" out &&
	test_expect_code 1 ctl_bounded 20 A --json sync --wait >out 2>err &&
	test_grep "io.ferry.Offline" err &&
	test ! -s out
'

test_expect_success 'local writes go on while paused' '
	put_ok A notes n2 "{\"t\":2}" &&
	get A notes n2 >doc &&
	test_grep "\"pending\":true" doc &&
	test_equal pending 2 "$(status_int A pending)" &&
	ferryd_works A
'

test_expect_success 'the key allowed, a Sync call drains everything' '
	key=$(status_str A device) &&
	"$FERRY_SERVER" --data-dir "$(server_datadir s)" allow "$key" A &&
	server_allow s probe &&
	kill -HUP "$(server_pid s)" &&
	test_wait_log "$(server_log s)" "reloaded 2 authorized keys" &&
	sync_wait A &&
	sync_settle A &&
	status_of A >st &&
	test_grep "\"state\":\"idle\"" st &&
	test_equal pending 0 "$(json_int pending st)" &&
	test_grep "\"last_error\":null" st &&
	server_doc s notes n1 >srv &&
	test_grep "^{\"body\":{\"t\":1}" srv &&
	server_doc s notes n2 >srv &&
	test_grep "^{\"body\":{\"t\":2}" srv
'

test_expect_success 'SIGHUP resumes a paused sync (no Sync call)' '
	syncd_start B s &&
	put_ok B notes b1 "{\"b\":1}" &&
	test_wait_until 10 "state_is B paused" &&
	key=$(status_str B device) &&
	"$FERRY_SERVER" --data-dir "$(server_datadir s)" allow "$key" B &&
	kill -HUP "$(server_pid s)" &&
	test_wait_log "$(server_log s)" "reloaded 3 authorized keys" &&
	kill -HUP "$(ferryd_pid B)" &&
	test_wait_log "$(ferryd_log B)" "resumed after reload" &&
	test_wait_until 20 "status_of B | grep -q \"\\\"pending\\\":0\"" &&
	server_doc s notes b1 >srv &&
	test_grep "^{\"body\":{\"b\":1}" srv &&
	ferryd_stop B
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	server_stop s
'

test_done
