#!/bin/sh
# POST /v1/keys/rotate (issue 13, "Keys over their whole life";
# docs/protocol.md "Rotating a key").  Bugs guarded: a device had no way
# to change its key short of a new allow line and a new device identity.
# Promises: a statement signed by the old key and the new one makes the
# new key allowed under the old one's name and the old key retired: its
# requests get 401 saying so and naming its successor; a retry of the same
# statement gets the same answer (a lost reply is harmless) but a second
# rotation of the key is refused; the successor may push the old key's
# records up to the statement's seq (a resent one is "duplicate", one that
# never arrived is applied), and none beyond it; history verifies old and
# new entries alike; it all holds after a restart.  Bad statements (a
# wrong signature, a new key already allowed, revoked or retired, a
# revoked old key, another shape, a far clock) are refused with a clear
# error and change nothing.  t5025 runs this script against PostgreSQL.

. "$(dirname "$0")/server-lib.sh"

# rotation OLD NEW SEQ [SRVCLIENT-OPTIONS]: a rotate body into NAME.json.
rotation() {
	_o=$1 _n=$2 _s=$3
	shift 3
	"$SRVCLIENT" --key-dir "$TEST_DIR/keys/$_o" "$@" rotation \
	    "$TEST_DIR/keys/$_n" "$_s"
}

# rotate KEY FILE: POST FILE to /v1/keys/rotate, signed by KEY.
rotate() {
	req s "$1" POST /v1/keys/rotate "$2"
}

# first_ok KEY: GET /v1/info by KEY after a rotation on another instance
# or process: at once with SQLite, bounded (10 s) with PostgreSQL's
# notification.
first_ok() {
	test_wait_until 10 "req s $1 GET /v1/info >out && \
	    head -n 1 out | grep -q 200"
}

test_expect_success 'setup: alice (named) and bob allowed; alice pushes seq 1' '
	A=$(key_of alice) && A2=$(key_of alice2) && B=$(key_of bob) &&
	C=$(key_of carol) &&
	server_allow s alice "Alice laptop" && server_allow s bob &&
	server_allow s carol &&
	server_start s &&
	item alice put notes n1 0 1 "{\"t\":1}" >rec1 &&
	push s alice "$(cat rec1)" >out &&
	test_grep "\"status\":\"applied\",\"version\":1" out &&
	item alice put notes n1 1 2 "{\"t\":2}" >rec2 &&
	item alice put notes n2 0 3 "{\"t\":3}" >rec3 &&
	item alice put notes n3 0 4 "{\"t\":4}" >rec4
'

test_expect_success 'bad statements are refused, clearly, and change nothing' '
	rotation alice alice2 3 >good.json &&
	rotation alice carol 3 >other.json &&
	sed "s/\"sig_new\":\"[^\"]*\"/$(grep -o "\"sig_new\":\"[^\"]*\"" other.json)/" \
	    good.json >badnew.json &&
	rotate alice badnew.json >out && status_is 400 out &&
	test_grep "bad rotation statement: the new key.s signature does not verify" out &&
	sed "s/\"sig_old\":\"[^\"]*\"/$(grep -o "\"sig_old\":\"[^\"]*\"" other.json)/" \
	    good.json >badold.json &&
	rotate alice badold.json >out && status_is 400 out &&
	test_grep "the old key.s signature does not verify" out &&
	rotate bob good.json >out && status_is 400 out &&
	test_grep "the old key.s signature does not verify" out &&
	rotation alice bob 3 >known.json &&
	rotate alice known.json >out && status_is 409 out &&
	test_grep "the new key $B is already allowed on this server" out &&
	rotation alice alice 3 >self.json &&
	rotate alice self.json >out && status_is 400 out &&
	test_grep "new_key is the old key" out &&
	rotation alice alice2 3 --ts-offset -3600 >old.json &&
	rotate alice old.json >out && status_is 400 out &&
	test_grep "its ts is more than 300 s from the server.s clock" out &&
	printf "{\"statement\":1}" >shape.json &&
	rotate alice shape.json >out && status_is 400 out &&
	test_grep "expected {\\\\\"statement\\\\\":string" out &&
	printf "{" >broken.json &&
	rotate alice broken.json >out && status_is 400 out &&
	test_grep "malformed JSON" out &&
	req s alice GET /v1/info >out && status_is 200 out &&
	req s alice2 GET /v1/info >out && status_is 401 out
'

test_expect_success 'a revoked new key, or a revoked old key, is refused' '
	D=$(key_of dave) &&
	server_admin s revoke "$D" --reason lost >/dev/null &&
	rotation alice dave 3 >revnew.json &&
	test_wait_until 10 "rotate alice revnew.json >out && \
	    head -n 1 out | grep -q 409" &&
	test_grep "the new key $D was revoked on this server" out &&
	server_admin s revoke "$C" --reason stolen >/dev/null &&
	rotation carol dave 0 >revold.json &&
	test_wait_until 10 "rotate carol revold.json >out && \
	    head -n 1 out | grep -q 401" &&
	test_grep "key $C was revoked on .* (stolen)" out
'

test_expect_success 'a good statement: the new key is in, under the old name' '
	rotate alice good.json >out && status_is 200 out &&
	test_grep "{\"new_key\":\"$A2\",\"old_key\":\"$A\",\"seq\":3,\"time\":[0-9]*}" out &&
	tail -n 1 out >first.answer &&
	req s alice2 GET /v1/info >out && status_is 200 out
'

test_expect_success 'the old key is refused, saying it was retired and for which key' '
	req s alice GET /v1/info >out && status_is 401 out &&
	test_grep "key $A was retired on 20[0-9-]* [0-9:]* UTC in favour of $A2: sign with the new key" out &&
	test_grep "\"retired\":{\"new_key\":\"$A2\",\"time\":[0-9]*}" out &&
	push s alice "$(cat rec2)" >out && status_is 401 out
'

test_expect_success 'the same statement again: the same answer; another rotation: refused' '
	rotate alice good.json >out && status_is 200 out &&
	tail -n 1 out >again.answer && test_cmp first.answer again.answer &&
	rotation alice alice2 3 >fresh.json &&
	rotate alice fresh.json >out && status_is 200 out &&
	tail -n 1 out >again.answer && test_cmp first.answer again.answer &&
	rotation alice carol 3 >second.json &&
	rotate alice second.json >out && status_is 409 out &&
	test_grep "key $A was retired already, in favour of $A2" out &&
	rotation bob alice2 0 >taken.json &&
	rotate bob taken.json >out && status_is 409 out &&
	test_grep "the new key $A2 is already allowed" out
'

test_expect_success 'the successor pushes the old key.s records up to its seq, none beyond' '
	push s alice2 "$(cat rec1)" \
	    "$(cat rec2)" "$(cat rec3)" "$(cat rec4)" \
	    "$(item alice2 put notes n4 0 4 "{\"t\":5}")" >out &&
	status_is 200 out &&
	tail -n 1 out >res &&
	test_grep "^{\"results\":\[{\"status\":\"duplicate\",\"version\":1},{\"status\":\"applied\",\"version\":2},{\"status\":\"applied\",\"version\":1},{\"error\":\"retired: the record.s device key $A was retired on [^\"]* in favour of $A2 after seq 3; this record (seq 4) came later\",\"status\":\"rejected\"},{\"status\":\"applied\",\"version\":1}\]}\$" res &&
	push s alice2 "$(cat rec2)" >out &&
	test_grep "\"status\":\"duplicate\",\"version\":2" out &&
	push s bob "$(cat rec3)" >out &&
	test_grep "record device does not match the requesting key (the record.s key was retired on .* in favour of $A2, not the requesting key)" out &&
	req s bob GET /v1/docs/notes/n3 >out && status_is 404 out
'

test_expect_success 'history verifies old and new entries, under one name' '
	push s alice2 "$(item alice2 put notes n1 2 5 "{\"t\":6}")" >out &&
	test_grep "\"status\":\"applied\",\"version\":3" out &&
	req s bob GET /v1/docs/notes/n1/history >out && status_is 200 out &&
	tail -n +2 out >hist.json &&
	"$SRVCLIENT" verify-history hist.json >v &&
	test_grep "^verified 3\$" v &&
	test_equal "entries by the old key" 2 \
	    "$(grep -o "\"device\":\"$A\"" hist.json | wc -l)" &&
	test_equal "entries by the new key" 1 \
	    "$(grep -o "\"device\":\"$A2\"" hist.json | wc -l)" &&
	test_equal "named Alice laptop" 3 \
	    "$(grep -o "\"device_name\":\"Alice laptop\"" hist.json | wc -l)" &&
	test_grep ! "revoked" hist.json
'

test_expect_success 'after a restart: still retired, the successor still in' '
	server_stop s && server_start s &&
	req s alice GET /v1/info >out && status_is 401 out &&
	test_grep "retired on .* in favour of $A2" out &&
	req s alice2 GET /v1/info >out && status_is 200 out &&
	rotate alice good.json >out && status_is 200 out &&
	tail -n 1 out >again.answer && test_cmp first.answer again.answer
'

test_expect_success 'a chain: the successor rotates again; the first key.s records still go in' '
	A3=$(key_of alice3) &&
	rotation alice2 alice3 5 >chain.json &&
	rotate alice2 chain.json >out && status_is 200 out &&
	first_ok alice3 &&
	push s alice3 "$(item alice put notes n5 0 2 "{\"t\":7}")" >out &&
	test_grep "\"status\":\"rejected\"" out &&
	push s alice3 "$(cat rec2)" >out &&
	test_grep "\"status\":\"duplicate\",\"version\":2" out &&
	req s alice2 GET /v1/info >out && status_is 401 out &&
	test_grep "in favour of $A3" out
'

test_expect_success 'keys lists the new keys under the old name, and when each old one retired' '
	server_admin s keys --json >keys.json &&
	test_grep "{\"added_ms\":[0-9]*,\"key\":\"$A2\",\"name\":\"Alice laptop\",\"retired\":{\"new_key\":\"$A3\",\"time\":[0-9]*},\"revoked\":null,\"seen_ms\":[0-9null]*,\"sources\":\[\"rotation\"\]}" keys.json &&
	test_grep "{\"added_ms\":[0-9]*,\"key\":\"$A3\",\"name\":\"Alice laptop\",\"revoked\":null,\"seen_ms\":[0-9null]*,\"sources\":\[\"rotation\"\]}" keys.json &&
	test_grep "\"key\":\"$A\",\"name\":\"Alice laptop\",\"retired\":{\"new_key\":\"$A2\"" keys.json &&
	server_admin s keys >keys.txt &&
	test_grep "^$A3  Alice laptop  " keys.txt &&
	test_grep "^ *retired 20[0-9-]* [0-9:]* for $A2\$" keys.txt
'

test_expect_success 'the server stops cleanly' '
	server_stop s
'

test_done
