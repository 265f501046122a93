#!/bin/sh
# POST /v1/push.  Promise: each change gets exactly one of DESIGN's answers,
# in order: "applied" (base matched: version + 1), "duplicate" (this change
# id was applied before: the version it made, so a retry is harmless),
# "conflict" (stale base, or base 0 on an existing or deleted document: the
# current state, deleted:true for a tombstone) or "rejected" (a bad
# signature, a record of another device, a stale or reused seq, a malformed
# or oversized record, nothing to delete), and a refused change leaves the
# server's state, including the device's seq, as it was.  Nothing is
# applied twice and nothing unverified is stored.

. "$(dirname "$0")/server-lib.sh"

# result N FILE: the N-th result object of a push reply (each starts with
# "current", "error" or "status": keys are sorted).
result() {
	tail -n +2 "$2" | sed 's/^{"results":\[//; s/\]}$//' |
	    sed -E 's/\},\{"(current|error|status)"/}\n{"\1"/g' |
	    sed -n "${1}p"
}

test_expect_success 'setup: alice and bob are allowed' '
	A=$(key_of alice) && B=$(key_of bob) &&
	server_allow s alice Alice && server_allow s bob Bob &&
	server_start s
'

test_expect_success 'a create is applied at version 1' '
	c1=$(item alice put notes n1 0 1 "{\"t\":1}") &&
	push s alice "$c1" >out &&
	status_is 200 out &&
	test_equal result "{\"status\":\"applied\",\"version\":1}" \
	    "$(result 1 out)" &&
	req s alice GET /v1/docs/notes/n1 >doc &&
	status_is 200 doc &&
	test_grep "^{\"body\":{\"t\":1},\"deleted\":false,\"version\":1}\$" doc
'

test_expect_success 'the same change again is a duplicate with its version' '
	push s alice "$c1" >out &&
	test_equal result "{\"status\":\"duplicate\",\"version\":1}" \
	    "$(result 1 out)" &&
	test_equal head 1 "$(server_head s alice)"
'

test_expect_success 'an update on the current version is applied (v2)' '
	c2=$(item alice put notes n1 1 2 "{\"t\":2}") &&
	push s alice "$c2" >out &&
	test_equal result "{\"status\":\"applied\",\"version\":2}" \
	    "$(result 1 out)"
'

test_expect_success 'an update on a stale version is a conflict with the current state' '
	c3=$(item alice put notes n1 1 3 "{\"t\":3}") &&
	push s alice "$c3" >out &&
	test_equal result "{\"current\":{\"body\":{\"t\":2},\"deleted\":false,\"version\":2},\"status\":\"conflict\"}" \
	    "$(result 1 out)"
'

test_expect_success 'a conflict sent again is judged again, not refused as stale' '
	server_state s alice >before &&
	push s alice "$c3" >out &&
	test_grep "\"status\":\"conflict\"" out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'base 0 on an existing document is a conflict' '
	push s bob "$(item bob put notes n1 0 1 "{\"mine\":true}")" >out &&
	test_equal result "{\"current\":{\"body\":{\"t\":2},\"deleted\":false,\"version\":2},\"status\":\"conflict\"}" \
	    "$(result 1 out)"
'

test_expect_success 'an old record replayed is a duplicate of what it made' '
	server_state s alice >before &&
	push s alice "$c1" >out &&
	test_equal result "{\"status\":\"duplicate\",\"version\":1}" \
	    "$(result 1 out)" &&
	req s alice GET /v1/docs/notes/n1 >doc &&
	test_grep "\"version\":2" doc &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'a seq going backwards is rejected and changes nothing' '
	push s bob "$(item bob put notes b5 0 5 "{\"b\":5}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	server_state s alice >before &&
	push s bob "$(item bob put notes b4 0 4 "{\"b\":4}")" >out &&
	status_is 200 out &&
	test_equal result "{\"error\":\"stale seq 4 (device is at 5): replay or reordered\",\"status\":\"rejected\"}" \
	    "$(result 1 out)" &&
	server_state s alice >after &&
	test_cmp before after &&
	req s alice GET /v1/docs/notes/b4 >doc &&
	status_is 404 doc
'

test_expect_success 'a seq reused for another record is rejected' '
	server_state s alice >before &&
	push s alice "$(item alice put notes other 0 2 "{\"x\":1}")" >out &&
	test_grep "\"status\":\"rejected\"" out &&
	test_grep "already used by another record" out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'a record whose bytes were altered is rejected (bad signature)' '
	c6=$(item alice put notes n1 2 6 "{\"t\":6}") &&
	forged=$(printf "%s" "$c6" | sed "s/\\\\\"t\\\\\":6/\\\\\"t\\\\\":9/") &&
	test "$forged" != "$c6" &&
	push s alice "$forged" >out &&
	test_equal result "{\"error\":\"bad signature: the record does not verify against its device key\",\"status\":\"rejected\"}" \
	    "$(result 1 out)" &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'a record of another device is rejected, and leaves its seq alone' '
	c9=$(item bob put notes n1 2 9 "{\"by\":\"bob\"}") &&
	push s alice "$c9" >out &&
	test_equal result "{\"error\":\"record device does not match the requesting key\",\"status\":\"rejected\"}" \
	    "$(result 1 out)" &&
	server_state s alice >after &&
	test_cmp before after &&
	c7=$(item bob put notes b7 0 7 "{\"b\":7}") &&
	push s bob "$c7" >out &&
	test_grep "\"status\":\"applied\"" out &&
	push s bob "$c9" >out &&
	test_grep "\"status\":\"applied\",\"version\":3" out
'

test_expect_success 'delete, then a put on a stale base: conflict with deleted:true' '
	push s alice "$(item alice delete notes n1 3 10)" >out &&
	test_equal result "{\"status\":\"applied\",\"version\":4}" \
	    "$(result 1 out)" &&
	req s alice GET /v1/docs/notes/n1 >doc &&
	status_is 200 doc &&
	test_grep "^{\"deleted\":true,\"version\":4}\$" doc &&
	push s bob "$(item bob put notes n1 3 11 "{\"late\":1}")" >out &&
	test_equal result "{\"current\":{\"deleted\":true,\"version\":4},\"status\":\"conflict\"}" \
	    "$(result 1 out)" &&
	push s bob "$(item bob put notes n1 0 12 "{\"new\":1}")" >out &&
	test_equal result "{\"current\":{\"deleted\":true,\"version\":4},\"status\":\"conflict\"}" \
	    "$(result 1 out)"
'

test_expect_success 'a put on the tombstone'"'"'s version brings the document back' '
	push s bob "$(item bob put notes n1 4 13 "{\"back\":1}")" >out &&
	test_equal result "{\"status\":\"applied\",\"version\":5}" \
	    "$(result 1 out)" &&
	req s bob GET /v1/docs/notes/n1 >doc &&
	test_grep "^{\"body\":{\"back\":1},\"deleted\":false,\"version\":5}\$" doc
'

test_expect_success 'deleting what does not exist: rejected (base 0) or conflict' '
	server_state s alice >before &&
	push s alice "$(item alice delete notes ghost 0 20)" >out &&
	test_equal result "{\"error\":\"nothing to delete: notes/ghost does not exist\",\"status\":\"rejected\"}" \
	    "$(result 1 out)" &&
	server_state s alice >after &&
	test_cmp before after &&
	push s alice "$(item alice delete notes ghost 3 21)" >out &&
	test_equal result "{\"current\":{\"deleted\":true,\"version\":0},\"status\":\"conflict\"}" \
	    "$(result 1 out)"
'

test_expect_success 'malformed items and records are rejected one by one' '
	server_state s alice >before &&
	rec="{\"base\":0,\"body\":{},\"collection\":\"notes\",\"device\":\"$A\",\"extra\":1,\"id\":\"m\",\"op\":\"put\",\"seq\":30,\"ts\":1,\"v\":1}" &&
	signed=$("$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" sign-record "$rec") &&
	push s alice 1 "\"x\"" "{\"record\":1,\"sig\":\"x\"}" \
	    "{\"record\":\"{}\",\"sig\":\"AAAA\"}" "$signed" >out &&
	status_is 200 out &&
	test "$(grep -o "malformed change: expected" out | wc -l)" = 3 &&
	test_grep "malformed signature: not base64url" out &&
	test "$(grep -o "\"status\":\"rejected\"" out | wc -l)" = 5 &&
	test_grep "malformed record: not a valid v1 change record" out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'a record over 4 MiB + 4 KiB is rejected as too large' '
	{
		printf "{\"s\":\"" &&
		head -c 8392800 /dev/zero | tr "\\0" x &&
		printf "\"}"
	} >big.json &&
	item alice put notes big 0 31 @big.json >big.item &&
	{ printf "{\"changes\":[" && cat big.item && printf "]}"; } >p.json &&
	req s alice POST /v1/push p.json >out &&
	status_is 200 out &&
	test_grep "\"error\":\"too large: the record is [0-9]* bytes (at most 4198400)\",\"status\":\"rejected\"" out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'a batch is answered in order, one result per change' '
	x1=$(item alice put notes b1 0 40 "{\"i\":1}") &&
	push s alice "$x1" "$x1" "$(item alice put notes b1 0 41 "{\"i\":2}")" \
	    "$(item bob put notes b1 0 42 "{\"i\":3}")" \
	    "$(item alice put notes b1 1 43 "{\"i\":4}")" >out &&
	test_equal 1 "{\"status\":\"applied\",\"version\":1}" "$(result 1 out)" &&
	test_equal 2 "{\"status\":\"duplicate\",\"version\":1}" "$(result 2 out)" &&
	test_equal 3 "{\"current\":{\"body\":{\"i\":1},\"deleted\":false,\"version\":1},\"status\":\"conflict\"}" \
	    "$(result 3 out)" &&
	test_equal 4 "{\"error\":\"record device does not match the requesting key\",\"status\":\"rejected\"}" \
	    "$(result 4 out)" &&
	test_equal 5 "{\"status\":\"applied\",\"version\":2}" "$(result 5 out)" &&
	test -z "$(result 6 out)"
'

test_expect_success 'an empty batch is fine and changes nothing' '
	server_state s alice >before &&
	push s alice >out &&
	status_is 200 out &&
	test_grep "^{\"results\":\[\]}\$" out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'ids may hold : and @; bad names are rejected' '
	push s alice "$(item alice put notes "u@example.org:1" 0 50 "{}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	req s alice GET "/v1/docs/notes/u@example.org:1" >doc &&
	status_is 200 doc &&
	req s alice GET "/v1/docs/no:tes/x" >doc &&
	status_is 400 doc &&
	test_grep "collection contains byte 0x3a" doc
'

test_expect_success 'every applied change is in the log once' '
	server_state s alice >state &&
	test "$(grep -o "\"seq\":" state | wc -l)" = "$(json_int head state)"
'

test_done
