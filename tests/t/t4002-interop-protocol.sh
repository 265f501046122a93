#!/bin/sh
# The remote protocol as a document (issue 9).  Promise: docs/protocol.md
# is enough to write a client: a Python client written from it alone
# (tests/interop/protocol/client.py: the standard library and PyNaCl, no
# code or constant of ferry's that the document does not state) signs
# requests and records that a real ferry-server accepts, and gets from it
# exactly the answers the document promises: applied, duplicate, conflict,
# delete and tombstones, paged and long-polled pulls (every pulled entry's
# signature checked, its record rebuilt from the entry or carried in it),
# the history, HEAD,
# percent-encoded names, a cursor above the head, and
# each refusal (bad signature, unknown key, clock skew, malformed record,
# wrong base type, too big a body) with its status and error body.  And
# the worked examples in the document are right: they are what ferry's
# own signing code prints (tests/tools/protoexample), and they check out
# from the document alone.  Without python3 and python3-nacl this test
# fails: it does not skip.

. "$(dirname "$0")/server-lib.sh"

CLIENT=$FERRY_SRC_DIR/tests/interop/protocol/client.py
PROTOEXAMPLE=$FERRY_BUILD_DIR/tests/tools/protoexample
DOC=$FERRY_SRC_DIR/docs/protocol.md

# A python3 that has PyNaCl: the first on PATH, else Debian's own (or
# the first of $FERRY_PYTHON, a list of interpreters to try instead).
PY=""
for _py in ${FERRY_PYTHON:-python3 /usr/bin/python3}; do
	if command -v "$_py" >/dev/null 2>&1 &&
	    "$_py" -c 'import nacl.signing' >/dev/null 2>&1; then
		PY=$_py
		break
	fi
done

test_expect_success 'python3 with PyNaCl is installed (Debian: python3 python3-nacl)' '
	test -n "$PY" || {
		echo "no python3 that can import nacl: install the Debian" \
		    "packages python3 and python3-nacl (tests/deps.sh does)"
		false
	}
'
# Nothing below can run without it; the failure above says why.
[ -n "$PY" ] || test_done

# Device seeds (hex): alice and bob are allowed, mallory is not.
SEED_A=1111111111111111111111111111111111111111111111111111111111111111
SEED_B=2222222222222222222222222222222222222222222222222222222222222222
SEED_M=3333333333333333333333333333333333333333333333333333333333333333

# py SEED COMMAND ARGS...: the client as that device, against server s.
py() {
	_seed=$1
	shift
	"$PY" "$CLIENT" --url "$(server_url s)" --seed "$_seed" "$@"
}

# reply_is FILE STATUS BODY: the reply in FILE is exactly that.
reply_is() {
	printf '%s\n%s\n' "$2" "$3" >"$TEST_DIR/.expected"
	test_cmp "$TEST_DIR/.expected" "$1"
}

test_expect_success 'the worked examples are what ferry signing code prints' '
	"$PROTOEXAMPLE" >ex.md &&
	"$PY" "$CLIENT" examples ex.md >from-c &&
	"$PY" "$CLIENT" examples "$DOC" >from-doc &&
	test_equal "example count" 16 "$(wc -l <from-doc)" &&
	test_cmp from-c from-doc
'

test_expect_success 'the worked examples check out from the document alone' '
	"$PY" "$CLIENT" check-examples "$DOC" >out &&
	test_grep "^examples ok 16\$" out
'

test_expect_success 'setup: the Python devices alice and bob are allowed' '
	A=$(py $SEED_A key) && B=$(py $SEED_B key) && M=$(py $SEED_M key) &&
	"$FERRY_SERVER" --data-dir "$(server_datadir s)" allow "$A" Alice &&
	"$FERRY_SERVER" --data-dir "$(server_datadir s)" allow "$B" &&
	server_start s
'

test_expect_success 'info: protocol 1, the server clock in seconds, head 0' '
	py $SEED_A request GET /v1/info >out &&
	status_is 200 out &&
	test_grep "^{\"head\":0,\"protocol\":1,\"server\":\"ferry-server/[^\"]*\",\"time\":[0-9]*}\$" out &&
	t=$(json_int time out) && now=$(date +%s) &&
	[ $((t - now)) -lt 60 ] && [ $((now - t)) -lt 60 ]
'

test_expect_success 'push: a create is applied at version 1' '
	c1=$(py $SEED_A item put notes n1 0 1 "{\"title\":\"shopping\"}") &&
	py $SEED_A push "$c1" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"applied\",\"version\":1}]}" &&
	py $SEED_A request GET /v1/docs/notes/n1 >out &&
	reply_is out 200 "{\"body\":{\"title\":\"shopping\"},\"deleted\":false,\"version\":1}"
'

test_expect_success 'push: the same record again is a duplicate of version 1' '
	py $SEED_A push "$c1" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"duplicate\",\"version\":1}]}" &&
	py $SEED_A request GET /v1/info >out &&
	test_equal head 1 "$(json_int head out)"
'

test_expect_success 'push: a stale base is a conflict with the current state' '
	py $SEED_A push "$(py $SEED_A item put notes n1 1 2 "{\"title\":\"groceries\"}")" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"applied\",\"version\":2}]}" &&
	py $SEED_B push "$(py $SEED_B item put notes n1 1 1 "{\"title\":\"food\"}")" >out &&
	reply_is out 200 "{\"results\":[{\"current\":{\"body\":{\"title\":\"groceries\"},\"deleted\":false,\"version\":2},\"status\":\"conflict\"}]}" &&
	py $SEED_B push "$(py $SEED_B item put notes n1 0 2 "{\"title\":\"new\"}")" >out &&
	reply_is out 200 "{\"results\":[{\"current\":{\"body\":{\"title\":\"groceries\"},\"deleted\":false,\"version\":2},\"status\":\"conflict\"}]}"
'

test_expect_success 'delete: a tombstone with its own version, no body' '
	py $SEED_A push "$(py $SEED_A item delete notes n1 2 3)" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"applied\",\"version\":3}]}" &&
	py $SEED_A request GET /v1/docs/notes/n1 >out &&
	reply_is out 200 "{\"deleted\":true,\"version\":3}" &&
	py $SEED_A request GET "/v1/changes?since=2" >out &&
	changes_unsigned out >u &&
	reply_is u 200 "{\"changes\":[{\"change\":\"$A:3\",\"collection\":\"notes\",\"deleted\":true,\"id\":\"n1\",\"seq\":3,\"version\":3}],\"head\":3,\"last_seq\":3}"
'

test_expect_success 'delete: a stale put onto a tombstone is a conflict saying deleted' '
	py $SEED_B push "$(py $SEED_B item put notes n1 2 3 "{\"title\":\"x\"}")" >out &&
	reply_is out 200 "{\"results\":[{\"current\":{\"deleted\":true,\"version\":3},\"status\":\"conflict\"}]}" &&
	py $SEED_B push "$(py $SEED_B item delete notes nope 0 4)" >out &&
	reply_is out 200 "{\"results\":[{\"error\":\"nothing to delete: notes/nope does not exist\",\"status\":\"rejected\"}]}" &&
	py $SEED_B push "$(py $SEED_B item put notes n1 3 5 "{\"title\":\"back\"}")" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"applied\",\"version\":4}]}"
'

test_expect_success 'pull: paging with limit walks the log without gaps or repeats' '
	py $SEED_A push \
	    "$(py $SEED_A item put notes p1 0 4 "{\"i\":1}")" \
	    "$(py $SEED_A item put notes p2 0 5 "{\"i\":2}")" \
	    "$(py $SEED_A item put notes p3 0 6 "{\"i\":3}")" >out &&
	test_equal applied 3 "$(grep -o "\"applied\"" out | wc -l)" &&
	py $SEED_A --limit 1000 pull >all &&
	test_grep "^pages 1\$" all &&
	test_grep "^verified 7 (0 with their record)\$" all &&
	test_equal changes 7 "$(grep -c "^[^ ]*:" all)" &&
	py $SEED_B --limit 3 pull >paged &&
	test_grep "^pages 3\$" paged &&
	test_grep "^verified 7 " paged &&
	test_equal "ids, paged and not" "$(sed 1,2d all)" "$(sed 1,2d paged)" &&
	test_equal "the last change" "$A:6" "$(tail -n 1 paged)"
'

test_expect_success 'pull: a long-poll is answered when another client pushes' '
	test_bg "$PY" "$CLIENT" --url "$(server_url s)" --seed $SEED_A \
	    --elapsed request GET "/v1/changes?since=7&wait=30" >lp.out \
	    2>lp.err &&
	lp=$test_bg_pid &&
	test_wait_log "$(server_log s)" "long-poll waiting since=7 " &&
	py $SEED_B push "$(py $SEED_B item put notes b1 0 6 "{\"from\":\"bob\"}")" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"applied\",\"version\":1}]}" &&
	test_wait_exit "$lp" 25 &&
	test_equal status 0 "$test_exit_status" &&
	changes_unsigned lp.out >u &&
	reply_is u 200 "{\"changes\":[{\"body\":{\"from\":\"bob\"},\"change\":\"$B:6\",\"collection\":\"notes\",\"deleted\":false,\"id\":\"b1\",\"seq\":8,\"version\":1}],\"head\":8,\"last_seq\":8}" &&
	ms=$(sed -n "s/^elapsed_ms //p" lp.err) &&
	[ "$ms" -lt 25000 ]
'

test_expect_success 'history: every accepted record, signed, checkable offline' '
	py $SEED_A request GET /v1/docs/notes/n1/history >out &&
	status_is 200 out &&
	sed 1d out >history.json &&
	"$PY" "$CLIENT" verify-history history.json >v &&
	test_grep "^verified 4\$" v &&
	test_grep "\"device_name\":\"Alice\"" history.json &&
	test_grep "\"device_name\":null" history.json &&
	test_grep ! "\"next\"" history.json &&
	py $SEED_A request GET "/v1/docs/notes/n1/history?limit=3" >out &&
	test_grep "\"next\":3}\$" out &&
	py $SEED_A request GET "/v1/docs/notes/n1/history?after=3" >out &&
	sed 1d out >rest.json &&
	test_grep "^{\"entries\":\[{\"change\":\"$B:5\",.*\"version\":4}\]}\$" rest.json &&
	py $SEED_A request GET /v1/docs/notes/none/history >out &&
	reply_is out 404 "{\"error\":\"no such document\"}"
'

test_expect_success 'HTTP: HEAD has no content, names are percent-decoded, since above head is 409' '
	py $SEED_A request HEAD /v1/docs/notes/n1 >out &&
	status_is 200 out &&
	test_equal "bytes after the status line" 4 "$(wc -c <out)" &&
	py $SEED_A request GET /v1/docs/notes/n1 >plain &&
	py $SEED_A request GET /v1/docs/notes/%6e%31 >encoded &&
	test_cmp plain encoded &&
	py $SEED_A request GET /v1/docs/notes/a%2Fb >out &&
	status_is 400 out &&
	py $SEED_A request GET "/v1/changes?since=999" >out &&
	status_is 409 out &&
	test_grep "^{\"error\":\"since 999 is beyond this server.s head [0-9]*:" out
'

test_expect_success 'refused: a request signature that does not verify (401)' '
	py $SEED_A request GET /v1/changes >before &&
	py $SEED_A --bad-sig request GET /v1/info >out &&
	reply_is out 401 "{\"error\":\"the request signature does not verify\"}" &&
	py $SEED_A --bad-sig push "$(py $SEED_A item put notes r1 0 7 "{}")" >out &&
	reply_is out 401 "{\"error\":\"the request signature does not verify\"}"
'

test_expect_success 'refused: a record signature that does not verify (rejected)' '
	good=$(py $SEED_A item put notes r1 0 7 "{\"a\":1}") &&
	other=$(py $SEED_A item put notes r1 0 7 "{\"a\":2}") &&
	forged=$(printf "%s" "$good" | sed "s/\"sig\":\"[^\"]*\"/$(printf "%s" "$other" | grep -o "\"sig\":\"[^\"]*\"")/") &&
	py $SEED_A push "$forged" >out &&
	reply_is out 200 "{\"results\":[{\"error\":\"bad signature: the record does not verify against its device key\",\"status\":\"rejected\"}]}"
'

test_expect_success 'refused: a key the server does not know (401)' '
	py $SEED_M request GET /v1/info >out &&
	reply_is out 401 "{\"error\":\"key $M is not authorized on this server\"}" &&
	py $SEED_M push "$(py $SEED_M item put notes m1 0 1 "{}")" >out &&
	reply_is out 401 "{\"error\":\"key $M is not authorized on this server\"}"
'

test_expect_success 'refused: a clock more than 300 s off (401); within it, accepted' '
	skew="the request timestamp is too far from the server'"'"'s clock (check the clock, or the request is a replay)" &&
	py $SEED_A --ts-offset 400 request GET /v1/info >out &&
	reply_is out 401 "{\"error\":\"$skew\"}" &&
	py $SEED_A --ts-offset -400 push "$(py $SEED_A item put notes r1 0 7 "{}")" >out &&
	reply_is out 401 "{\"error\":\"$skew\"}" &&
	py $SEED_A --ts-offset -250 request GET /v1/info >out &&
	status_is 200 out &&
	py $SEED_A --ts-offset 250 request GET /v1/info >out &&
	status_is 200 out
'

malformed="malformed record: not a valid v1 change record (fields, types, names or device key)"

test_expect_success 'refused: malformed records (rejected, seq not used)' '
	py $SEED_A push \
	    "$(py $SEED_A sign-record "{\"base\":0,\"collection\":\"notes\",\"device\":\"$A\",\"id\":\"r1\",\"op\":\"put\",\"seq\":7,\"ts\":1,\"v\":1}")" \
	    "$(py $SEED_A sign-record "{\"base\":0,\"body\":{},\"collection\":\"notes\",\"device\":\"$A\",\"extra\":1,\"id\":\"r1\",\"op\":\"put\",\"seq\":7,\"ts\":1,\"v\":1}")" \
	    "$(py $SEED_A sign-record "{\"base\":0,\"body\":{},\"collection\":\"no tes\",\"device\":\"$A\",\"id\":\"r1\",\"op\":\"put\",\"seq\":7,\"ts\":1,\"v\":1}")" \
	    "$(py $SEED_A sign-record "not json")" \
	    "{\"record\":1}" >out &&
	reply_is out 200 "{\"results\":[{\"error\":\"$malformed\",\"status\":\"rejected\"},{\"error\":\"$malformed\",\"status\":\"rejected\"},{\"error\":\"$malformed\",\"status\":\"rejected\"},{\"error\":\"$malformed\",\"status\":\"rejected\"},{\"error\":\"malformed change: expected {\\\"record\\\":string,\\\"sig\\\":string}\",\"status\":\"rejected\"}]}"
'

test_expect_success 'refused: a base that is not an integer (rejected)' '
	py $SEED_A push \
	    "$(py $SEED_A sign-record "{\"base\":\"0\",\"body\":{},\"collection\":\"notes\",\"device\":\"$A\",\"id\":\"r1\",\"op\":\"put\",\"seq\":7,\"ts\":1,\"v\":1}")" \
	    "$(py $SEED_A sign-record "{\"base\":-1,\"body\":{},\"collection\":\"notes\",\"device\":\"$A\",\"id\":\"r1\",\"op\":\"put\",\"seq\":7,\"ts\":1,\"v\":1}")" \
	    "$(py $SEED_A sign-record "{\"base\":0.5,\"body\":{},\"collection\":\"notes\",\"device\":\"$A\",\"id\":\"r1\",\"op\":\"put\",\"seq\":7,\"ts\":1,\"v\":1}")" >out &&
	reply_is out 200 "{\"results\":[{\"error\":\"$malformed\",\"status\":\"rejected\"},{\"error\":\"$malformed\",\"status\":\"rejected\"},{\"error\":\"$malformed\",\"status\":\"rejected\"}]}"
'

test_expect_success 'refused: a body over 4 MiB (rejected), a request over 16 MiB (413)' '
	json_sized 4194305 >big-body.json &&
	py $SEED_A item put notes r1 0 7 @big-body.json >big-item.json &&
	py $SEED_A push @big-item.json >out &&
	reply_is out 200 "{\"results\":[{\"error\":\"too large: body is larger than 4194304 bytes of compact JSON (the limit is 64 levels and 4194304 bytes of compact JSON)\",\"status\":\"rejected\"}]}" &&
	head -c 16777217 /dev/zero | tr "\0" " " >huge.json &&
	py $SEED_A request POST /v1/push huge.json >out &&
	reply_is out 413 "{\"error\":\"the request body is too large (16777217 bytes; at most 16777216)\"}"
'

test_expect_success 'refused requests and records changed nothing; a refused seq stays free' '
	py $SEED_A request GET /v1/changes >after &&
	test_cmp before after &&
	py $SEED_A push "$(py $SEED_A item put notes r1 0 7 "{\"ok\":true}")" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"applied\",\"version\":1}]}" &&
	py $SEED_A push "$(py $SEED_A item put notes r2 0 7 "{}")" >out &&
	reply_is out 200 "{\"results\":[{\"error\":\"seq 7 of this device was already used by another record\",\"status\":\"rejected\"}]}" &&
	py $SEED_B push "$(py $SEED_B item put notes r2 0 4 "{}")" >out &&
	reply_is out 200 "{\"results\":[{\"error\":\"stale seq 4 (device is at 6): replay or reordered\",\"status\":\"rejected\"}]}"
'

# A record in another layout than ferryd's (a space, keys out of order)
# is valid; its entry then carries the signed text itself, and a reader
# verifies that instead of a rebuilt one.
test_expect_success 'pull: a record in another layout travels as itself, verified' '
	py $SEED_A push \
	    "$(py $SEED_A sign-record "{\"v\":1,\"base\":0,\"body\": {\"b\":1,\"a\":2},\"collection\":\"notes\",\"device\":\"$A\",\"id\":\"lay\",\"op\":\"put\",\"seq\":8,\"ts\":5}")" \
	    "$(py $SEED_A sign-record "{\"base\":1,\"collection\":\"notes\",\"device\":\"$A\",\"id\":\"lay\",\"op\":\"delete\",\"seq\":9,\"ts\":6,\"v\":1} ")" >out &&
	reply_is out 200 "{\"results\":[{\"status\":\"applied\",\"version\":1},{\"status\":\"applied\",\"version\":2}]}" &&
	py $SEED_B --limit 1000 pull >all &&
	test_grep "^verified 11 (2 with their record)\$" all &&
	test_grep "^$A:9\$" all
'

test_expect_success 'the server stopped for none of it' '
	server_stop s
'

test_done
