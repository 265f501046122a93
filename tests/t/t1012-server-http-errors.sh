#!/bin/sh
# Every refusal is JSON, by RFC 9110's status codes.  Bugs guarded: evhttp
# answered some requests itself with an HTML page (an unknown method got
# 501, a request line or header it could not parse 400, a header section
# over 64 KiB 413, an Expect it did not know 417, all text/html); an empty
# push body was "malformed JSON: ... (line -1 ...)"; and a push with any
# Content-Type was read as JSON.  Promise: each of these answers the
# server's usual {"error":"..."} with Content-Type application/json and a
# reason naming what was wrong; a push whose Content-Type is not
# application/json (a charset, if given, UTF-8) is 415; none at all is
# taken as JSON; and the server goes on serving.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup' '
	server_allow s alice &&
	server_start s
'

# json_error CODE PATTERN: out (rawhttp's) is one answer CODE whose body
# is a JSON error matching PATTERN.
json_error() {
	test_grep "^status $1\$" out &&
	test_grep "^header content-type: application/json\$" out &&
	test_grep "^body {\"error\":\"$2" out
}

# still_serves: a signed GET /v1/info on a new connection answers 200.
still_serves() {
	raw_req alice GET /v1/info >ok.req &&
	raw s GET <ok.req >ok.out &&
	test_grep "^status 200\$" ok.out
}

test_expect_success 'an unknown method: 501, JSON' '
	printf "FROB /v1/info HTTP/1.1\r\nHost: x\r\n\r\n" >req &&
	raw s FROB <req >out &&
	json_error 501 "method FROB is not implemented" &&
	still_serves
'

test_expect_success 'a method evhttp knows but no endpoint takes: 405, JSON' '
	raw_req alice PUT /v1/info >req &&
	raw s PUT <req >out &&
	json_error 405 "method not allowed" &&
	test_grep "^header allow: GET, HEAD\$" out
'

test_expect_success 'an unknown path: 404, JSON' '
	raw_req alice GET /v2/info >req &&
	raw s GET <req >out &&
	json_error 404 "no such endpoint"
'

# refused CODE PATTERN FORMAT: the bytes printf FORMAT makes, sent raw,
# get a JSON error CODE matching PATTERN.
refused() {
	printf "$3" >req &&
	raw s GET <req >out &&
	json_error "$1" "$2"
}

test_expect_success 'unparsable request lines: 400, JSON' '
	refused 400 "malformed request line" "GET\r\n\r\n" &&
	refused 400 "malformed request line" "GET /v1/info\r\n\r\n" &&
	refused 400 "malformed request line" \
	    "GET /v1/info HTTP/1.1 x\r\n\r\n" &&
	refused 400 "malformed request line" "GET /v1/info HTTX/1.1\r\n\r\n" &&
	refused 400 "malformed request line" "G(T /v1/info HTTP/1.1\r\n\r\n" &&
	still_serves
'

test_expect_success 'HTTP/2.0 on an HTTP/1 connection: 505, JSON' '
	refused 505 "HTTP version 2.0 is not supported" \
	    "GET /v1/info HTTP/2.0\r\n\r\n"
'

test_expect_success 'unparsable header lines: 400, JSON' '
	refused 400 "malformed header line" \
	    "GET /v1/info HTTP/1.1\r\nHost x\r\n\r\n" &&
	refused 400 "malformed header line" \
	    "GET /v1/info HTTP/1.1\r\nHost : x\r\n\r\n" &&
	refused 400 "malformed header line" \
	    "GET /v1/info HTTP/1.1\r\n: x\r\n\r\n" &&
	still_serves
'

test_expect_success 'a header section over 64 KiB: 431, JSON' '
	{ printf "GET /v1/info HTTP/1.1\r\nX-Pad: " &&
	  head -c 70000 /dev/zero | tr "\\0" x && printf "\r\n\r\n"; } >req &&
	raw s GET <req >out &&
	json_error 431 "the request header section is larger than 65536" &&
	still_serves
'

test_expect_success 'an Expect other than 100-continue: 417, JSON' '
	printf "GET /v1/info HTTP/1.1\r\nExpect: teapot\r\n\r\n" >req &&
	raw s GET <req >out &&
	json_error 417 "Expect: teapot is not supported"
'

test_expect_success 'bodies refused before they are read: 413, 411, JSON' '
	printf "POST /v1/push HTTP/1.1\r\nContent-Length: 20000000\r\n\r\n" \
	    >req &&
	raw s POST <req >out &&
	json_error 413 "the request body is too large" &&
	printf "POST /v1/push HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n" \
	    >req &&
	raw s POST <req >out &&
	json_error 411 "Transfer-Encoding is not accepted"
'

test_expect_success 'an empty line before the request line is ignored' '
	printf "\r\n" >req && raw_req alice GET /v1/info >>req &&
	raw s GET <req >out &&
	test_grep "^status 200\$" out
'

test_expect_success 'an empty push body: 400 "empty body"' '
	: >empty.json &&
	req s alice POST /v1/push empty.json >out &&
	status_is 400 out &&
	test_grep "^{\"error\":\"empty body: POST /v1/push takes a JSON object" out
'

test_expect_success 'a push that is not application/json: 415, JSON' '
	printf "{\"changes\":[]}" >p.json &&
	req s alice --header "Content-Type: text/plain" POST /v1/push p.json \
	    >out &&
	status_is 415 out &&
	test_grep "^{\"error\":\"Content-Type .text/plain. is not supported" out &&
	req s alice --header "Content-Type: application/json; charset=latin1" \
	    POST /v1/push p.json >out &&
	status_is 415 out &&
	req s alice --header "Content-Encoding: gzip" POST /v1/push p.json \
	    >out &&
	status_is 415 out &&
	test_grep "Content-Encoding .gzip. is not supported" out
'

test_expect_success 'application/json in any case, with UTF-8, or none: 200' '
	req s alice --header "Content-Type: Application/JSON; charset=\"UTF-8\"" \
	    POST /v1/push p.json >out &&
	status_is 200 out &&
	req s alice --header "Content-Type:" POST /v1/push p.json >out &&
	status_is 200 out &&
	test_grep "^{\"results\":\[\]}" out
'

test_done
