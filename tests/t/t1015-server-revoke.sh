#!/bin/sh
# ferry-server revoke / unrevoke / keys (issue 13, "Keys over their whole
# life").  Bugs guarded: a stolen device's key stayed good until someone
# edited the keys file and sent SIGHUP; now `ferry-server revoke KEY
# --reason TEXT` on a running server makes its very next request get 401
# saying it was revoked, when and why (no SIGHUP; "within one request"),
# rejects records it signed even when another key pushes them, keeps the
# entries it signed before verifiable and marked "revoked" in history,
# survives a restart, and `allow` will not quietly let it in again (only
# `unrevoke` does).  `keys` lists every key with name, added, last seen
# (written by the server every few seconds, never per request) and
# revoked.  Bad input to the commands is refused with a clear error.
# t5021 runs this script against PostgreSQL.

. "$(dirname "$0")/server-lib.sh"

# first_info KEY: GET /v1/info by KEY just after a revocation, into out:
# the very next request with SQLite; with PostgreSQL the notification
# races it, so at once but bounded (10 s) until it is refused.
first_info() {
	info_is "$1" 401
}

# info_is KEY STATUS: GET /v1/info as KEY answers STATUS, in out; under
# PostgreSQL a revoke or unrevoke reaches the instance by notification
# and a reread off its loop, so within a bound rather than at once.
info_is() {
	if [ "${FERRY_TEST_DB:-sqlite}" = postgresql ]; then
		test_wait_until 10 "req s $1 GET /v1/info >out && \
		    head -n 1 out | grep -q $2"
	else
		req s "$1" GET /v1/info >out
	fi
}

test_expect_success 'setup: alice (named) and bob allowed; alice writes n1' '
	A=$(key_of alice) && B=$(key_of bob) &&
	server_allow s alice "Alice laptop" && server_allow s bob &&
	server_start s &&
	push s alice "$(item alice put notes n1 0 1 "{\"t\":\"by alice\"}")" \
	    >out &&
	test_grep "\"status\":\"applied\",\"version\":1" out &&
	req s alice GET /v1/info >out && status_is 200 out
'

test_expect_success 'revoke on a running server: the next request is 401, saying when and why' '
	server_admin s revoke "$A" --reason "stolen laptop" >out &&
	test_grep "revoked $A: stolen laptop" out &&
	first_info alice &&
	status_is 401 out &&
	test_grep "was revoked on 20[0-9-]* [0-9:]* UTC (stolen laptop)" out &&
	test_grep "\"revoked\":{\"reason\":\"stolen laptop\",\"time\":[0-9]*}" out
'

test_expect_success 'the revoked key can neither push nor read' '
	push s alice "$(item alice put notes n2 0 2 "{}")" >out &&
	status_is 401 out && test_grep "stolen laptop" out &&
	req s alice GET "/v1/changes?since=0" >out && status_is 401 out &&
	req s alice GET /v1/docs/notes/n1/history >out && status_is 401 out
'

test_expect_success 'its records pushed by another key are rejected with the reason' '
	push s bob "$(item alice put notes n3 0 3 "{}")" \
	    "$(item bob put notes n4 0 1 "{}")" >out &&
	status_is 200 out &&
	test_grep "\"error\":\"revoked: the record.s device key $A was revoked on [^\"]*(stolen laptop)\",\"status\":\"rejected\"" out &&
	test_grep "\"status\":\"applied\",\"version\":1" out &&
	req s bob GET /v1/docs/notes/n3 >out && status_is 404 out
'

test_expect_success 'history: its entries still verify, marked revoked' '
	req s bob GET /v1/docs/notes/n1/history >out && status_is 200 out &&
	tail -n +2 out >hist.json &&
	test_grep "\"revoked\":{\"reason\":\"stolen laptop\",\"time\":[0-9]*}" hist.json &&
	test_grep "\"device_name\":\"Alice laptop\"" hist.json &&
	"$SRVCLIENT" verify-history hist.json >v &&
	test_grep "^verified 1\$" v &&
	req s bob GET /v1/docs/notes/n4/history >out &&
	test_grep ! "revoked" out
'

test_expect_success 'allow refuses a revoked key; revoking twice changes nothing' '
	test_expect_code 1 server_admin s allow "$A" again 2>err &&
	test_grep "was revoked on .* (stolen laptop); it stays refused" err &&
	test_grep "ferry-server unrevoke $A" err &&
	server_admin s revoke "$A" --reason other >out &&
	test_grep "already; nothing changed" out &&
	test_grep "stolen laptop" out &&
	req s alice GET /v1/info >out && status_is 401 out
'

test_expect_success 'bad input to revoke, unrevoke and keys is refused, clearly' '
	test_expect_code 1 server_admin s revoke not-a-key 2>err &&
	test_grep "is not an Ed25519 public key" err &&
	test_expect_code 1 server_admin s revoke "$B" --reason "" 2>err &&
	test_grep "the reason .. must be 1-200 bytes" err &&
	test_expect_code 1 server_admin s revoke "$B" \
	    --reason "$(printf "a\tb")" 2>err &&
	test_grep "must not contain control characters" err &&
	test_expect_code 2 server_admin s revoke 2>err &&
	test_grep "usage: .*revoke PUBKEY" err &&
	test_expect_code 2 server_admin s revoke "$B" --bogus 2>err &&
	test_expect_code 2 server_admin s unrevoke 2>err &&
	test_expect_code 2 server_admin s keys --bogus 2>err &&
	req s bob GET /v1/info >out && status_is 200 out
'

# One key in 64 begins with "-" (base64url): it is a key, not an option.
test_expect_success 'a key that begins with - is revoked like any other' '
	K=-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA &&
	server_admin s revoke "$K" --reason dash >out &&
	test_grep "revoked $K: dash" out &&
	server_admin s revoke --reason dash "$K" >out &&
	test_grep "already; nothing changed" out &&
	server_admin s unrevoke "$K" >out && test_grep "is lifted" out
'

# `allow` into the keys file records when in server.db: under PostgreSQL
# (keys file, database elsewhere) "added" is not known.
if [ "${FERRY_TEST_DB:-sqlite}" = postgresql ]; then
	added=null added_col="- *"
else
	added="[0-9]*" added_col="20[0-9-]* [0-9:]*"
fi

test_expect_success 'keys lists name, added, last seen and revoked' '
	test_wait_until 30 "server_admin s keys --json >keys.json && \
	    grep -q \"\\\"key\\\":\\\"$B\\\"[^}]*\\\"seen_ms\\\":[0-9]\" keys.json" &&
	test_grep "{\"added_ms\":$added,\"key\":\"$A\",\"name\":\"Alice laptop\",\"revoked\":{\"reason\":\"stolen laptop\",\"time\":[0-9]*},\"seen_ms\":[0-9]*,\"sources\":\[\"file\"\]}" keys.json &&
	server_admin s keys >keys.txt &&
	test_grep "^KEY  *NAME  *ADDED (UTC)  *LAST SEEN (UTC)  *REVOKED (UTC)" keys.txt &&
	test_grep "^$A  Alice laptop  *$added_col  20[0-9-]* [0-9:]*  20[0-9-]* [0-9:]* (stolen laptop)\$" keys.txt &&
	test_grep "^$B  -  *$added_col  20[0-9-]* [0-9:]*  -\$" keys.txt
'

test_expect_success 'the revocation survives a restart' '
	server_stop s && server_start s &&
	req s alice GET /v1/info >out && status_is 401 out &&
	test_grep "stolen laptop" out &&
	req s bob GET /v1/info >out && status_is 200 out
'

test_expect_success 'revoked after a start, before any request: the first one is refused' '
	server_allow s carol >/dev/null && C=$(key_of carol) &&
	server_stop s && server_start s &&
	server_admin s revoke "$C" --reason "never used" >/dev/null &&
	first_info carol &&
	status_is 401 out && test_grep "never used" out
'

test_expect_success 'unrevoke lifts it, from the next request on' '
	server_admin s unrevoke "$A" >out &&
	test_grep "is lifted" out &&
	info_is alice 200 && status_is 200 out &&
	server_admin s unrevoke "$A" >out &&
	test_grep "is not revoked; nothing changed" out
'

test_done
