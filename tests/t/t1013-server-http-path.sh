#!/bin/sh
# Percent-encoded path segments (RFC 3986 section 2.1).  Bug guarded:
# ferry-server checked names on the path as sent, so /v1/docs/c/%6E1 was
# refused as a bad id instead of being the document n1.  Promise: each
# segment is decoded before routing and before names are checked (hex
# digits in either case); a segment with a '%' not followed by two hex
# digits, or that decodes to '/' or NUL, is a 400 naming the segment as
# sent; the signature covers the request target exactly as sent, so a
# request signed over the decoded spelling but sent encoded is a 401.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup: notes/n1 on the server' '
	server_allow s alice &&
	server_start s &&
	push s alice "$(item alice put notes n1 0 1 "{\"t\":1}")" >out &&
	test_grep "\"status\":\"applied\"" out
'

test_expect_success 'an encoded id, collection or endpoint is decoded' '
	req s alice GET /v1/docs/notes/%6E1 >out &&
	status_is 200 out &&
	test_grep "^{\"body\":{\"t\":1},\"deleted\":false,\"version\":1}" out &&
	req s alice GET /v1/docs/notes/%6e%31 >out &&
	status_is 200 out &&
	req s alice GET /v1/docs/%6Eotes/n1/%68istory >out &&
	status_is 200 out &&
	test_grep "^{\"entries\":\[{" out &&
	req s alice GET /v1/%69nfo >out &&
	status_is 200 out &&
	test_grep "\"protocol\":1" out
'

test_expect_success 'an encoded slash is no separator: 400 naming the segment' '
	req s alice GET /v1/docs/notes/a%2Fb >out &&
	status_is 400 out &&
	test_grep "^{\"error\":\"path segment .a%2Fb. decodes to a .\/." out &&
	req s alice GET /v1/docs/notes%2fn1/x >out &&
	status_is 400 out &&
	test_grep "path segment .notes%2fn1." out
'

test_expect_success 'an encoded NUL: 400 naming the segment' '
	req s alice GET /v1/docs/notes/n%001 >out &&
	status_is 400 out &&
	test_grep "^{\"error\":\"path segment .n%001. decodes to a NUL byte" out
'

test_expect_success 'a bad escape: 400 naming the segment' '
	req s alice GET /v1/docs/notes/n%zz >out &&
	status_is 400 out &&
	test_grep "^{\"error\":\"path segment .n%zz. has a .%. not followed" out &&
	req s alice GET /v1/docs/notes/n%4 >out &&
	status_is 400 out &&
	test_grep "path segment .n%4. has" out &&
	req s alice GET /v1/docs/notes/% >out &&
	status_is 400 out
'

test_expect_success 'decoded names are still checked' '
	req s alice GET /v1/docs/notes/n%20x >out &&
	status_is 400 out &&
	test_grep "^{\"error\":\"id " out
'

test_expect_success 'the signature is over the target as sent' '
	req s alice --auth "$(sign alice GET /v1/docs/notes/n1)" \
	    GET /v1/docs/notes/%6E1 >out &&
	status_is 401 out &&
	test_grep "does not verify" out
'

test_done
