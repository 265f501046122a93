#!/bin/sh
# GET /v1/docs/{collection}/{id}/history: the audit trail.  Promise: it
# lists every accepted change of the document in version order with the
# record bytes exactly as they were signed and the signature, so anyone can
# verify it offline (a record whose text was not jansson's canonical form,
# such as 0.1, still verifies: nothing is re-serialized); each entry names
# the device, the device's name from the keys file (null without one), the
# op and the record's time; rejected and conflicting changes leave no
# trace; it pages with after/limit; an unknown document is 404.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup: alice (named) and bob (unnamed) edit one document' '
	A=$(key_of alice) && B=$(key_of bob) &&
	server_allow s alice "Alice desktop" && server_allow s bob &&
	server_start s &&
	h1=$(item alice put notes n1 0 1 "{\"t\":\"first\"}") &&
	h2=$(item bob put notes n1 1 1 "{\"t\":\"second\"}") &&
	h3=$(item alice delete notes n1 2 2) &&
	h4=$(item bob put notes n1 3 4 "{\"t\":\"again\"}") &&
	push s alice "$h1" >out && test_grep "\"version\":1" out &&
	push s bob "$h2" >out && test_grep "\"version\":2" out &&
	push s bob "$(item bob put notes n1 1 3 "{\"lost\":1}")" >out &&
	test_grep "\"status\":\"conflict\"" out &&
	push s alice "$h3" >out && test_grep "\"version\":3" out &&
	push s alice "$(item alice put notes n1 0 9 "{}")" >out &&
	test_grep "\"status\":\"conflict\"" out &&
	push s bob "$h4" >out && test_grep "\"version\":4" out
'

test_expect_success 'history lists the accepted changes in version order' '
	req s alice GET /v1/docs/notes/n1/history >out &&
	status_is 200 out &&
	tail -n +2 out >hist.json &&
	test "$(grep -o "\"version\":[0-9]*" hist.json | tr "\n" " ")" = \
	    "\"version\":1 \"version\":2 \"version\":3 \"version\":4 " &&
	test "$(grep -o "\"op\":\"[a-z]*\"" hist.json | tr "\n" " ")" = \
	    "\"op\":\"put\" \"op\":\"put\" \"op\":\"delete\" \"op\":\"put\" " &&
	test "$(grep -o "\"change\":\"[^\"]*\"" hist.json | tr "\n" " ")" = \
	    "\"change\":\"$A:1\" \"change\":\"$B:1\" \"change\":\"$A:2\" \"change\":\"$B:4\" " &&
	test_grep ! "lost" hist.json
'

test_expect_success 'device names come from the keys file' '
	test "$(grep -o "\"device_name\":[^,]*" hist.json | tr "\n" " ")" = \
	    "\"device_name\":\"Alice desktop\" \"device_name\":null \"device_name\":\"Alice desktop\" \"device_name\":null "
'

test_expect_success 'every entry verifies offline, with the pushed signature' '
	"$SRVCLIENT" verify-history hist.json >v &&
	test_grep "^verified 4\$" v &&
	for it in "$h1" "$h2" "$h3" "$h4"; do
		sig=$(printf "%s" "$it" | json_str sig) &&
		grep -q "\"sig\":\"$sig\"" hist.json || echo "missing $sig"
	done >missing &&
	test_cmp /dev/null missing
'

test_expect_success 'the verifier catches a tampered trail' '
	sed "s/\\\\\"t\\\\\":\\\\\"first\\\\\"/\\\\\"t\\\\\":\\\\\"FIRST\\\\\"/" \
	    hist.json >bad.json &&
	! cmp -s hist.json bad.json &&
	test_expect_code 1 "$SRVCLIENT" verify-history bad.json
'

test_expect_success 'record bytes are kept exactly (0.1 stays 0.1)' '
	rec="{\"base\":0,\"body\":{\"x\":0.1},\"collection\":\"notes\",\"device\":\"$A\",\"id\":\"real\",\"op\":\"put\",\"seq\":10,\"ts\":1000,\"v\":1}" &&
	signed=$("$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" sign-record "$rec") &&
	push s alice "$signed" >out &&
	test_grep "\"status\":\"applied\",\"version\":1" out &&
	req s alice GET /v1/docs/notes/real/history >out &&
	tail -n +2 out >real.json &&
	test_grep "\\\\\"x\\\\\":0.1}" real.json &&
	test_grep "\"ts\":1000" real.json &&
	"$SRVCLIENT" verify-history real.json >v &&
	test_grep "^verified 1\$" v
'

test_expect_success 'history pages with after and limit' '
	req s alice GET "/v1/docs/notes/n1/history?after=2" >out &&
	status_is 200 out &&
	test "$(grep -o "\"version\":[0-9]*" out | tr "\n" " ")" = \
	    "\"version\":3 \"version\":4 " &&
	test_grep ! "\"next\"" out &&
	req s alice GET "/v1/docs/notes/n1/history?limit=3" >out &&
	test "$(grep -o "\"version\":[0-9]*" out | tr "\n" " ")" = \
	    "\"version\":1 \"version\":2 \"version\":3 " &&
	test_grep "\"next\":3" out &&
	req s alice GET "/v1/docs/notes/n1/history?after=4" >out &&
	status_is 200 out &&
	test_grep "^{\"entries\":\[\]}\$" out
'

test_expect_success 'an unknown document is 404; bad names are 400' '
	req s alice GET /v1/docs/notes/nope/history >out &&
	status_is 404 out &&
	test_grep "\"error\":\"no such document\"" out &&
	req s alice GET "/v1/docs/notes/a%2Fb/history" >out &&
	status_is 400 out &&
	test_grep "\"error\":\"path segment .a%2Fb. decodes to a ./." out
'

test_expect_success 'a renamed device shows its new name (names are read live)' '
	keys=$(server_datadir s)/authorized_keys &&
	sed "s/Alice desktop/Alice laptop/" "$keys" >keys.new &&
	cat keys.new >"$keys" &&
	kill -HUP "$(server_pid s)" &&
	test_wait_log "$(server_log s)" "reloaded 2 authorized keys" &&
	req s bob GET /v1/docs/notes/n1/history >out &&
	test_grep "\"device_name\":\"Alice laptop\"" out &&
	test_grep ! "Alice desktop" out
'

test_done
