#!/bin/sh
# An abandoned long-poll gives its slot back at once (issue 8, break 6).
# Bug: evhttp reads nothing while a request is in hand, so a long-poll
# whose client closed its connection held its --max-waiters slot until
# --max-wait ran out; clients that gave up (or were killed) locked the
# others out with 429 meanwhile.  Promise: when the clients of waiting
# long-polls go away their slots are freed at once, a new long-poll is
# accepted (not 429), and the waiting ones that remain still wake on a
# push.

. "$(dirname "$0")/server-lib.sh"

# longpoll N: a long-poll (wait 60 s) in the background as w<N>.
longpoll() {
	test_bg "$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" \
	    --url "$(server_url s)" --timeout 90 \
	    GET "/v1/changes?since=0&wait=60" </dev/null >"w$1.out" 2>&1 &&
	eval "w$1=\$test_bg_pid"
}

test_expect_success 'setup: --max-waiters 3, all taken' '
	server_allow s alice &&
	server_start s --max-waiters 3 --max-wait 60 &&
	longpoll 1 && longpoll 2 && longpoll 3 &&
	test_wait_until 10 "grep -q \"(3 waiting)\" \"$(server_log s)\"" &&
	req s alice GET "/v1/changes?since=0&wait=60" >out &&
	status_is 429 out
'

test_expect_success 'the clients go away: their slots are free at once' '
	kill -TERM "$w1" "$w2" &&
	test_wait_exit "$w1" && test_wait_exit "$w2" &&
	test_wait_until 5 "req s alice --timeout 5 GET \"/v1/changes?since=0&wait=1\" >out && status_is 200 out" &&
	test_grep "dropped: its client went away" "$(server_log s)" &&
	longpoll 4 && longpoll 5 &&
	test_wait_until 10 "[ \$(grep -c \"(3 waiting)\" \"$(server_log s)\") -ge 2 ]" &&
	req s alice --elapsed GET "/v1/changes?since=0&wait=60" >out 2>err &&
	status_is 429 out
'

test_expect_success 'a killed client too; a new long-poll is not refused' '
	kill -KILL "$w4" &&
	test_wait_exit "$w4" &&
	test_wait_until 5 "req s alice --timeout 5 GET \"/v1/changes?since=0&wait=1\" >out && status_is 200 out" &&
	test_grep "^{\"changes\":\[\],\"head\":0,\"last_seq\":0}\$" out
'

test_expect_success 'the long-polls still waiting wake on a push' '
	push s alice "$(item alice put notes x 0 1 "{}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	test_wait_exit "$w3" 10 && test_wait_exit "$w5" 10 &&
	status_is 200 w3.out && test_grep "\"id\":\"x\"" w3.out &&
	status_is 200 w5.out && test_grep "\"id\":\"x\"" w5.out &&
	server_stop s
'

test_done
