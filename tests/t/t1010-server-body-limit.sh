#!/bin/sh
# Guards the body limit on ferry-server's push (issue 8, break 2): a
# properly signed record whose body is nested deeper than 64 levels (65,
# or 2,046, which jansson still parses but no reply wrapping it could be
# read) or is larger than 4 MiB of compact JSON is "rejected" with a
# reason naming the limit; the server's state is unchanged, the device's
# seq does not move, and the records after it in the same push, and
# later pushes, are still applied.  A body exactly at the limit (64
# levels, 4 MiB) is applied and served by /v1/changes and /v1/docs.

. "$(dirname "$0")/server-lib.sh"

# applied FILE: the push reply in FILE is one result, applied at version 1.
applied() {
	test_grep '^{"results":\[{"status":"applied","version":1}\]}$' "$1"
}

test_expect_success 'setup: alice is allowed, one document exists' '
	server_allow s alice Alice &&
	server_start s &&
	push s alice "$(item alice put notes n1 0 1 "{\"t\":1}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	server_state s alice >before
'

test_expect_success 'a body 65 levels deep is rejected with the reason' '
	json_nested 65 >d65.json &&
	push s alice "$(item alice put notes deep 0 2 @d65.json)" >out &&
	status_is 200 out &&
	test_grep "\"error\":\"too large: body is nested deeper than 64 levels (the limit is 64 levels and 4194304 bytes of compact JSON)\",\"status\":\"rejected\"" out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'a body 2,046 levels deep is rejected, the next one applied' '
	json_nested 2046 >d2046.json &&
	push s alice "$(item alice put notes deep 0 3 @d2046.json)" \
	    "$(item alice put notes n2 0 4 "{\"t\":2}")" >out &&
	status_is 200 out &&
	test_grep "^{\"results\":\[{\"error\":\"too large: body is nested deeper than 64 levels" out &&
	test_grep "\"status\":\"rejected\"},{\"status\":\"applied\",\"version\":1}\]}\$" out &&
	req s alice GET /v1/docs/notes/deep >doc &&
	status_is 404 doc
'

test_expect_success 'a body of 4 MiB + 1 bytes is rejected, state unchanged' '
	server_state s alice >before &&
	json_sized 4194305 >big.json &&
	test "$(wc -c <big.json)" = 4194305 &&
	item alice put notes big 0 5 @big.json >big.item &&
	push s alice "$(cat big.item)" >out &&
	status_is 200 out &&
	test_grep "\"error\":\"too large: body is larger than 4194304 bytes of compact JSON (the limit is 64 levels and 4194304 bytes of compact JSON)\",\"status\":\"rejected\"" out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'a rejected record leaves the seq free: a later one applies' '
	push s alice "$(item alice put notes n3 0 5 "{\"t\":3}")" >out &&
	applied out
'

test_expect_success 'a body at the limit (64 levels; 4 MiB) is applied and served' '
	json_nested 64 >d64.json &&
	push s alice "$(item alice put notes deep 0 6 @d64.json)" >out &&
	applied out &&
	req s alice GET /v1/docs/notes/deep >doc &&
	status_is 200 doc &&
	test_grep -F "\"body\":$(cat d64.json)," doc &&
	json_sized 4194304 >max.json &&
	item alice put notes max 0 7 @max.json >max.item &&
	push s alice "$(cat max.item)" >out &&
	applied out &&
	req s alice GET "/v1/changes?since=0&limit=1000" >changes &&
	status_is 200 changes &&
	test_grep -F "$(cat d64.json)" changes &&
	test "$(wc -c <changes)" -gt 4194304
'

test_expect_success 'the server still runs' '
	server_running s &&
	req s alice GET /v1/info >info &&
	status_is 200 info
'

test_done
