#!/bin/sh
# The Authorization scheme by RFC 9110 section 11.1.  Bug guarded:
# ferry-server compared the scheme byte for byte, so a client that wrote
# "ferry-ed25519" or "FERRY-ED25519" (equal names, the RFC says) got 401.
# Promise: the scheme and the parameter names are matched in any case,
# one or more spaces may follow the scheme, both on requests without a
# body and on pushes (whose header is checked before the body is read);
# another scheme is still a 401 that names the one expected.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup' '
	server_allow s alice &&
	server_start s
'

# respell SED-EXPR METHOD TARGET [BODYFILE]: alice's header for that
# request, rewritten.
respell() {
	_e=$1
	shift
	sign alice "$@" | sed "$_e"
}

test_expect_success 'the scheme in lower and in upper case: 200' '
	req s alice --auth "$(respell "s/^Ferry-Ed25519 /ferry-ed25519 /" \
	    GET /v1/info)" GET /v1/info >out &&
	status_is 200 out &&
	req s alice --auth "$(respell "s/^Ferry-Ed25519 /FERRY-ED25519 /" \
	    GET /v1/info)" GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'parameter names in any case, two spaces after the scheme' '
	req s alice --auth "$(respell "s/^Ferry-Ed25519 key=/Ferry-Ed25519  KEY=/; s/ ts=/ Ts=/" \
	    GET /v1/info)" GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a push with the scheme in lower case is applied' '
	printf "{\"changes\":[%s]}" \
	    "$(item alice put notes n1 0 1 "{\"t\":1}")" >push.json &&
	req s alice --auth "$(respell "s/^Ferry-Ed25519 /ferry-ed25519 /" \
	    POST /v1/push push.json)" POST /v1/push push.json >out &&
	status_is 200 out &&
	test_grep "\"status\":\"applied\"" out
'

test_expect_success 'another scheme is refused, naming the one expected' '
	req s alice --auth "$(respell "s/^Ferry-Ed25519 /Ferry-Ed25519x /" \
	    GET /v1/info)" GET /v1/info >out &&
	status_is 401 out &&
	test_grep "not Ferry-Ed25519" out &&
	req s alice --auth "Bearer abc" GET /v1/info >out &&
	status_is 401 out &&
	test_grep "^{\"error\":\"the Authorization scheme is not Ferry-Ed25519\"}" out
'

test_done
