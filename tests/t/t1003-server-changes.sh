#!/bin/sh
# GET /v1/changes.  Promise: the change log pages without gaps or repeats
# (since/limit, last_seq = the last seq in the reply, or since when there is
# nothing newer), each entry carries the change's own version, body (none
# when deleted), change id, and its record's signature and ts, with which
# a reader rebuilds and checks the record (issue 11: a puller could not
# verify a pulled change); a since beyond the head is a 409 naming both
# (it was answered as if nothing were newer, so a client whose cursor came
# from another server or from before a restore silently missed changes); with wait > 0 and nothing newer the request
# is held and answered as soon as a push commits (well before the wait runs
# out), or empty when it does (dropped at once when its client goes); at most
# --max-waiters wait at once (429 beyond), --max-wait caps the wait, and
# SIGTERM answers the waiting ones.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup: five changes in one push' '
	A=$(key_of alice) &&
	server_allow s alice &&
	server_start s &&
	item alice put notes n1 0 1 "{\"i\":1}" >i1 &&
	push s alice \
	    "$(cat i1)" \
	    "$(item alice put notes n2 0 2 "{\"i\":2}")" \
	    "$(item alice put notes n3 0 3 "{\"i\":3}")" \
	    "$(item alice put notes n4 0 4 "{\"i\":4}")" \
	    "$(item alice put notes n1 1 5 "{\"i\":5}")" >out &&
	test "$(grep -o "\"status\":\"applied\"" out | wc -l)" = 5
'

test_expect_success 'an entry is the change itself: seq, version, body, change id' '
	req s alice GET "/v1/changes?since=0&limit=1" >out &&
	status_is 200 out &&
	changes_unsigned out >u &&
	test_grep "^{\"changes\":\[{\"body\":{\"i\":1},\"change\":\"$A:1\",\"collection\":\"notes\",\"deleted\":false,\"id\":\"n1\",\"seq\":1,\"version\":1}\],\"head\":5,\"last_seq\":1}\$" u &&
	req s alice GET "/v1/changes?since=4" >out &&
	changes_unsigned out >u &&
	test_grep "\"body\":{\"i\":5},\"change\":\"$A:5\",\"collection\":\"notes\",\"deleted\":false,\"id\":\"n1\",\"seq\":5,\"version\":2}" u
'

# The record a reader rebuilds from an entry is the one pushed: the entry's
# sig and ts are the pushed item's (t4002's client rebuilds and verifies).
test_expect_success 'an entry carries its signature and ts, as pushed' '
	sig=$(sed "s/.*,\"sig\":\"\([^\"]*\)\"}\$/\1/" i1) &&
	ts=$(sed "s/.*,\\\\\"ts\\\\\":\([0-9]*\),.*/\1/" i1) &&
	test -n "$sig" && test -n "$ts" && test "$ts" != "$(cat i1)" &&
	req s alice GET "/v1/changes?since=0&limit=1" >out &&
	status_is 200 out &&
	test_grep -F "\"id\":\"n1\",\"seq\":1,\"sig\":\"$sig\",\"ts\":$ts,\"version\":1}" out &&
	test_grep ! "\"record\":" out
'

test_expect_success 'paging with limit walks the log without gaps or repeats' '
	since=0 && seen="" && pages=0 && ok=yes &&
	while [ "$pages" -lt 10 ]; do
		req s alice GET "/v1/changes?since=$since&limit=2" >out &&
		status_is 200 out || { ok=no; break; }
		n=$(grep -o "\"seq\":[0-9]*" out | cut -d: -f2 | tr "\n" " ")
		[ -z "$n" ] && break
		seen="$seen$n"
		since=$(json_int last_seq out)
		pages=$((pages + 1))
	done &&
	test_equal ok yes "$ok" &&
	test_equal seqs "1 2 3 4 5 " "$seen" &&
	test_equal pages 3 "$pages" &&
	test_grep "^{\"changes\":\[\],\"head\":5,\"last_seq\":5}\$" out
'

test_expect_success 'since beyond the head: 409 naming since and the head' '
	req s alice GET "/v1/changes?since=100" >out &&
	status_is 409 out &&
	test_grep "^{\"error\":\"since 100 is beyond this server.s head 5: " out &&
	req s alice GET "/v1/changes?since=6&wait=30" >out &&
	status_is 409 out &&
	req s alice GET "/v1/changes?since=5" >out &&
	status_is 200 out
'

test_expect_success 'a deleted document shows as deleted, without a body' '
	push s alice "$(item alice delete notes n2 1 6)" >out &&
	test_grep "\"status\":\"applied\",\"version\":2" out &&
	req s alice GET "/v1/changes?since=5" >out &&
	changes_unsigned out >u &&
	test_grep "^{\"changes\":\[{\"change\":\"$A:6\",\"collection\":\"notes\",\"deleted\":true,\"id\":\"n2\",\"seq\":6,\"version\":2}\]" u
'

test_expect_success 'bad parameters are 400; a large limit is lowered' '
	req s alice GET "/v1/changes?limit=0" >out && status_is 400 out &&
	req s alice GET "/v1/changes?since=-1" >out && status_is 400 out &&
	req s alice GET "/v1/changes?since=1x" >out && status_is 400 out &&
	req s alice GET "/v1/changes?wait=1&wait=2" >out && status_is 400 out &&
	req s alice GET "/v1/changes?sinc=1" >out && status_is 400 out &&
	test_grep "unknown query parameter" out &&
	req s alice GET "/v1/changes?limit=100000" >out && status_is 200 out
'

test_expect_success 'with older changes there, wait does not hold the request' '
	req s alice --elapsed GET "/v1/changes?since=5&wait=30" >out 2>err &&
	status_is 200 out &&
	test_grep "\"seq\":6" out &&
	ms=$(sed -n "s/^elapsed_ms //p" err) &&
	[ "$ms" -lt 5000 ]
'

test_expect_success 'a long-poll is answered as soon as a push commits' '
	"$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" --url "$(server_url s)" \
	    --elapsed GET "/v1/changes?since=6&wait=30" >lp.out 2>lp.err &
	lp=$! && test_track "$lp" &&
	test_wait_log "$(server_log s)" "long-poll waiting since=6 " &&
	push s alice "$(item alice put notes n7 0 7 "{\"i\":7}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	test_wait_exit "$lp" 10 &&
	test_equal status 0 "$test_exit_status" &&
	status_is 200 lp.out &&
	changes_unsigned lp.out >u &&
	test_grep "\"id\":\"n7\",\"seq\":7,\"version\":1}\],\"head\":7,\"last_seq\":7}" u &&
	ms=$(sed -n "s/^elapsed_ms //p" lp.err) &&
	[ "$ms" -lt 25000 ]
'

test_expect_success 'a long-poll with nothing new ends empty when the wait runs out' '
	req s alice --elapsed GET "/v1/changes?since=7&wait=1" >out 2>err &&
	status_is 200 out &&
	test_grep "^{\"changes\":\[\],\"head\":7,\"last_seq\":7}\$" out &&
	ms=$(sed -n "s/^elapsed_ms //p" err) &&
	[ "$ms" -ge 900 ] && [ "$ms" -lt 10000 ]
'

test_expect_success 'a long-poll whose client went away is dropped harmlessly' '
	req s alice --timeout 1 GET "/v1/changes?since=7&wait=2" >out;
	test_grep "CURL-ERROR" out &&
	test_wait_log "$(server_log s)" \
	    "long-poll since=7 dropped: its client went away (0 waiting)" &&
	server_running s &&
	req s alice GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a second server caps long-polls (--max-waiters 2, --max-wait 2)' '
	server_allow c alice &&
	server_start c --max-waiters 2 --max-wait 2 &&
	req c alice --elapsed GET "/v1/changes?since=0&wait=30" >out 2>err &&
	status_is 200 out &&
	ms=$(sed -n "s/^elapsed_ms //p" err) &&
	[ "$ms" -ge 1900 ] && [ "$ms" -lt 10000 ]
'

test_expect_success 'beyond --max-waiters a long-poll gets 429, and the waiting ones still wake' '
	server_stop c &&
	server_start c --max-waiters 2 &&
	for i in 1 2; do
		"$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" \
		    --url "$(server_url c)" \
		    GET "/v1/changes?since=0&wait=30" >w$i.out 2>&1 &
		eval "w$i=\$!"
		test_track "$!"
	done &&
	test_wait_until 10 "grep -q \"(2 waiting)\" \"$(server_log c)\"" &&
	req c alice GET "/v1/changes?since=0&wait=30" >out &&
	status_is 429 out &&
	test_grep "too many waiting requests" out &&
	req c alice GET "/v1/changes?since=0" >out &&
	status_is 200 out &&
	push c alice "$(item alice put notes x 0 1 "{}")" >out &&
	test_wait_exit "$w1" 10 && test_wait_exit "$w2" 10 &&
	status_is 200 w1.out && test_grep "\"id\":\"x\"" w1.out &&
	status_is 200 w2.out && test_grep "\"id\":\"x\"" w2.out
'

test_expect_success 'SIGTERM answers a waiting long-poll and exits 0' '
	"$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" --url "$(server_url s)" \
	    GET "/v1/changes?since=7&wait=30" >lp.out 2>&1 &
	lp=$! && test_track "$lp" &&
	test_wait_log "$(server_log s)" "long-poll waiting since=7 for 30" &&
	server_stop s &&
	test_wait_exit "$lp" 10 &&
	status_is 200 lp.out &&
	test_grep "^{\"changes\":\[\],\"head\":7,\"last_seq\":7}\$" lp.out
'

test_done
