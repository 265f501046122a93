#!/bin/sh
# Hostile and broken bodies.  Promise: the server never stops for bad
# input and never half-applies it: malformed or truncated JSON, duplicate
# keys, invalid UTF-8, absurd nesting or the wrong shape get 400 with a
# reason; a body over 16 MiB or a push of more than 1000 changes gets 413;
# unknown query parameters get 400; and after each the server's state is
# exactly what it was and it still answers.  Bad data in its own store is
# named too: a document whose stored body is not JSON is a 500 saying so,
# logged as an error, and the server answers the next request (bug
# guarded: it was answered "out of memory").  So is one whose stored body
# is JSON but not an object (every body ferry accepts is one), on GET and
# when a push's conflict answer would carry it (bugs guarded: GET sent it
# as the body, "body":5; the push was a bare "storage error").  t5005 runs
# this script against PostgreSQL.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup' '
	server_allow s alice &&
	server_start s &&
	push s alice "$(item alice put notes keep 0 1 "{\"k\":1}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	server_state s alice >before
'

# bad CODE FILE [PATTERN]: POST FILE to /v1/push, expect CODE and a JSON
# error (matching PATTERN), and no change of state.
bad() {
	req s alice POST /v1/push "$2" >out &&
	status_is "$1" out &&
	test_grep "^{\"error\":\"${3:-}" out &&
	server_state s alice >after &&
	test_cmp before after
}

test_expect_success 'malformed JSON: 400' '
	printf "{\"changes\":[" >b.json &&
	bad 400 b.json "malformed JSON: " &&
	printf "not json" >b.json &&
	bad 400 b.json "malformed JSON: "
'

test_expect_success 'a truncated push body: 400, nothing applied' '
	it=$(item alice put notes t1 0 2 "{\"t\":\"truncated\"}") &&
	printf "{\"changes\":[%s]}" "$it" >full.json &&
	size=$(wc -c <full.json) &&
	head -c $((size - 2)) full.json >b.json &&
	bad 400 b.json "malformed JSON: " &&
	head -c $((size / 2)) full.json >b.json &&
	bad 400 b.json "malformed JSON: "
'

test_expect_success 'duplicate keys, invalid UTF-8, deep nesting: 400' '
	printf "{\"changes\":[],\"changes\":[]}" >b.json &&
	bad 400 b.json "malformed JSON: duplicate" &&
	printf "{\"changes\":[],\"x\":\"\\377\"}" >b.json &&
	bad 400 b.json "malformed JSON: " &&
	{ head -c 100000 /dev/zero | tr "\\0" "["; } >b.json &&
	bad 400 b.json "malformed JSON: "
'

test_expect_success 'the wrong shape: 400' '
	printf "[]" >b.json && bad 400 b.json "the body must be" &&
	printf "{}" >b.json && bad 400 b.json "the body must be" &&
	printf "{\"changes\":{}}" >b.json && bad 400 b.json "the body must be" &&
	printf "{\"changes\":null}" >b.json && bad 400 b.json "the body must be"
'

test_expect_success 'a body over 16 MiB: 413, and the server goes on' '
	{ printf "{\"changes\":[],\"pad\":\"" &&
	  head -c 16777216 /dev/zero | tr "\\0" x && printf "\"}"; } >big.json &&
	req s alice POST /v1/push big.json >out &&
	status_is 413 out &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success '1001 changes in one push: 413; 1000 are fine' '
	it=$(item alice put notes many 0 3 "{}") &&
	{
		printf "{\"changes\":[%s" "$it" &&
		i=1 && while [ $i -lt 1001 ]; do
			printf ",%s" "$it"; i=$((i + 1))
		done &&
		printf "]}"
	} >b.json &&
	bad 413 b.json "too many changes in one push (1001; at most 1000)" &&
	{
		printf "{\"changes\":[%s" "$it" &&
		i=1 && while [ $i -lt 1000 ]; do
			printf ",%s" "$it"; i=$((i + 1))
		done &&
		printf "]}"
	} >ok.json &&
	req s alice POST /v1/push ok.json >out &&
	status_is 200 out &&
	test "$(grep -o "\"status\":\"applied\"" out | wc -l)" = 1 &&
	test "$(grep -o "\"status\":\"duplicate\"" out | wc -l)" = 999 &&
	server_state s alice >before
'

test_expect_success 'unknown or malformed query parameters: 400' '
	printf "{\"changes\":[]}" >e.json &&
	req s alice POST "/v1/push?x=1" e.json >out &&
	status_is 400 out && test_grep "unknown query parameter" out &&
	req s alice GET "/v1/info?verbose=1" >out &&
	status_is 400 out &&
	req s alice GET "/v1/docs/notes/keep?x" >out &&
	status_is 400 out &&
	server_state s alice >after &&
	test_cmp before after
'

# spoil_body ID [TEXT]: overwrite the stored body of notes/ID behind the
# running server's back with TEXT (default: text that is not JSON), as a
# damaged store or another program writing to it would leave it.
spoil_body() {
	_body='{"k":'
	[ $# -lt 2 ] || _body=$2
	_sql="UPDATE docs SET body = '$_body' WHERE collection = 'notes' AND id = '$1'"
	if [ "${FERRY_TEST_DB:-sqlite}" = postgresql ]; then
		pg_sql srv_s "$_sql"
	else
		sqlite3 -cmd ".timeout 10000" "$(server_datadir s)/server.db" \
		    "$_sql"
	fi
}

test_expect_success 'a stored body that is not JSON: 500 naming it, logged; the server goes on' '
	push s alice "$(item alice put notes spoilt 0 4 "{\"k\":4}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	spoil_body spoilt &&
	req s alice GET /v1/docs/notes/spoilt >out &&
	status_is 500 out &&
	test_grep "^{\"error\":\"the stored body of notes/spoilt is not JSON" out &&
	test_grep ! "out of memory" out &&
	test_grep "notes/spoilt is not JSON: .*(line 1, column" "$(server_log s)" &&
	server_running s &&
	req s alice GET /v1/docs/notes/keep >out && status_is 200 out
'

test_expect_success 'a stored body that is JSON but not an object: GET is a 500 naming it, logged' '
	push s alice "$(item alice put notes numeric 0 5 "{\"k\":5}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	push s alice "$(item alice put notes listed 0 6 "{\"k\":6}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	spoil_body numeric 5 &&
	spoil_body listed "[1]" &&
	req s alice GET /v1/docs/notes/listed >out &&
	status_is 500 out &&
	test_grep "^{\"error\":\"the stored body of notes/listed is not a JSON object but an array\"" out &&
	req s alice GET /v1/docs/notes/numeric >out &&
	status_is 500 out &&
	test_grep "^{\"error\":\"the stored body of notes/numeric is not a JSON object but a number\"" out &&
	test_grep "notes/listed is not a JSON object but an array; the store is damaged" "$(server_log s)" &&
	server_running s &&
	req s alice GET /v1/docs/notes/keep >out && status_is 200 out
'

test_expect_success 'a push conflicting with a stored body that is not an object: 500 naming it, nothing applied' '
	server_state s alice >before &&
	push s alice "$(item alice put notes listed 0 7 "{\"k\":7}")" >out &&
	status_is 500 out &&
	test_grep "^{\"error\":\"the stored body of notes/listed is not a JSON object but an array; nothing was applied\"" out &&
	test_grep "push from .* failed, nothing applied: the stored body of notes/listed is not a JSON object but an array" "$(server_log s)" &&
	push s alice "$(item alice put notes spoilt 0 7 "{\"k\":7}")" >out &&
	status_is 500 out &&
	test_grep "^{\"error\":\"the stored body of notes/spoilt is not JSON: .*(line 1, column [0-9]*); nothing was applied\"" out &&
	server_state s alice >after &&
	test_cmp before after &&
	server_running s
'

test_expect_success 'the server is still up and answering' '
	server_running s &&
	req s alice GET /v1/info >out &&
	status_is 200 out &&
	req s alice GET /v1/docs/notes/keep >out &&
	test_grep "^{\"body\":{\"k\":1},\"deleted\":false,\"version\":1}\$" out
'

test_done
