#!/bin/sh
# t1016-server-http-close: a client that asks for the connection to be
# closed gets its whole answer first (RFC 9112 section 9.6).  Bug
# guarded: evhttp closed the connection as soon as the answer had left
# the connection filter, shutting the socket down before the answer was
# sent, so every HTTP/1.0 request and every "Connection: close" request
# got an empty reply: haproxy's health check (docs/deploy.md's example)
# marked every instance down.  Promise: such a request is answered in
# full, then the server closes (a request pipelined after it is not
# answered); an HTTP/1.0 client that asks for keep-alive keeps it.

. "$(dirname "$0")/server-lib.sh"

# req10 KEY METHOD TARGET [CONNECTION]: a signed HTTP/1.0 request.
req10() {
	_auth=$(sign "$1" "$2" "$3") || return 1
	printf '%s %s HTTP/1.0\r\nAuthorization: %s\r\n%s\r\n' "$2" "$3" \
	    "$_auth" "${4:+Connection: $4
}" | sed 's/$/\r/; s/\r\r$/\r/'
}

test_expect_success 'setup' '
	server_allow s alice &&
	server_start s
'

test_expect_success 'HTTP/1.0: the whole answer, then the close' '
	req10 alice GET /v1/info >req &&
	raw s GET <req >out &&
	test_grep "^status 200$" out &&
	test_grep "^body {.*\"protocol\":1," out
'

test_expect_success 'an unsigned HTTP/1.0 GET (a health check): its 401, in full' '
	printf "GET /v1/info HTTP/1.0\r\n\r\n" >req &&
	raw s GET <req >out &&
	test_grep "^status 401$" out &&
	test_grep "^body {\"error\":\"the request has no Authorization header\"}" out
'

test_expect_success 'Connection: close: answered in full, nothing after it read' '
	{
		auth=$(sign alice GET /v1/info) &&
		printf "GET /v1/info HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: %s\r\n\r\n" "$auth" &&
		raw_req alice GET /v1/info
	} >req &&
	raw s GET <req >out &&
	test_grep "^status 200$" out &&
	test_grep "^body {.*\"protocol\":1," out &&
	test_grep ! "^extra" out
'

test_expect_success 'HTTP/1.0 with keep-alive: both requests answered' '
	{ req10 alice GET /v1/info keep-alive && req10 alice GET /v1/info keep-alive; } >req &&
	raw s GET GET <req >out &&
	test "$(grep -c "^status 200$" out)" = 2
'

test_expect_success 'the server is still serving' '
	req s alice GET /v1/info >out &&
	status_is 200 out
'

test_done
