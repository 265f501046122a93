#!/bin/sh
# HEAD by RFC 9110 section 9.3.2.  Bug guarded: ferry-server sent the
# whole JSON body after the header of a HEAD answer (without a
# Content-Length), so a keep-alive client that asked HEAD then GET on one
# connection read the body as the next status line and desynchronised.
# Promise: every endpoint that takes GET takes HEAD and answers it with
# GET's status and header, Content-Length the length GET's body has, and
# no content; error answers to HEAD carry none either; the next answer on
# the connection parses.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup' '
	server_allow s alice &&
	server_start s &&
	push s alice "$(item alice put notes n1 0 1 "{\"t\":1}")" >out &&
	test_grep "\"status\":\"applied\"" out
'

# head_then_get TARGET: HEAD then GET TARGET on one connection; out holds
# both answers, parsed strictly.
head_then_get() {
	{ raw_req alice HEAD "$1" && raw_req alice GET "$1"; } >req &&
	raw s HEAD GET <req >out
}

# The Content-Length of the first answer in out (HEAD), and of the second
# (GET, whose body rawhttp read by it).
head_len() {
	sed -n "s/^header content-length: //p" out | sed -n 1p
}
get_len() {
	sed -n "s/^header content-length: //p" out | sed -n 2p
}

test_expect_success 'HEAD then GET /v1/info on one connection' '
	head_then_get /v1/info &&
	test "$(grep -c "^status 200\$" out)" = 2 &&
	test "$(grep -c "^body " out)" = 1 &&
	test_grep "^body {\"head\":1,\"protocol\":1," out &&
	test_equal length "$(get_len)" "$(head_len)"
'

test_expect_success 'HEAD on the change log, a document and its history' '
	for t in "/v1/changes?since=0" /v1/docs/notes/n1 \
	    /v1/docs/notes/n1/history; do
		head_then_get "$t" &&
		test "$(grep -c "^status 200\$" out)" = 2 &&
		test_grep "^header content-type: application/json\$" out &&
		test_equal "length of $t" "$(get_len)" "$(head_len)" ||
		return 1
	done
'

test_expect_success 'error answers to HEAD carry no content either' '
	{ raw_req alice HEAD /v1/nothing &&
	  raw_req alice HEAD /v1/docs/notes/none &&
	  raw_req alice GET /v1/info; } >req &&
	raw s HEAD HEAD GET <req >out &&
	test "$(grep -c "^status 404\$" out)" = 2 &&
	test "$(grep -c "^body " out)" = 1 &&
	test_grep "^body {\"head\":1," out &&
	printf "HEAD /v1/info HTTP/1.1\r\nHost: x\r\n\r\n" >req &&
	raw_req alice GET /v1/info >>req &&
	raw s HEAD GET <req >out &&
	test_grep "^status 401\$" out &&
	test_grep "^body {\"head\":1," out
'

test_expect_success 'POST-only endpoints refuse HEAD with 405 and Allow' '
	raw_req alice HEAD /v1/push >req &&
	raw_req alice GET /v1/info >>req &&
	raw s HEAD GET <req >out &&
	test_grep "^status 405\$" out &&
	test_grep "^header allow: POST\$" out &&
	test_grep "^body {\"head\":1," out
'

test_done
