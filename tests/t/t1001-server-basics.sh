#!/bin/sh
# ferry-server's front door.  Promise: only a request signed by a key in
# authorized_keys, within 300 s of the server's clock, gets anything; every
# other request (no header, forged or stale signature, unknown key,
# malformed or doubled header) is a 401 with a JSON error that reveals no
# data and changes nothing.  `allow` validates keys and keeps the file
# 0600, SIGHUP rereads it (a bad file keeps the old keys), --open admits
# any key but says so, a group-writable keys file or a second server on
# the same data directory is refused, unknown paths are 404, wrong methods
# 405, and SIGTERM stops the server with status 0.

. "$(dirname "$0")/server-lib.sh"

test_expect_success 'allow refuses malformed keys and writes a 0600 file' '
	A=$(key_of alice) &&
	keys=$(server_datadir s)/authorized_keys &&
	test_expect_code 1 "$FERRY_SERVER" --data-dir "$(server_datadir s)" \
	    allow not-a-key &&
	test_expect_code 1 "$FERRY_SERVER" --data-dir "$(server_datadir s)" \
	    allow "${A}A" &&
	test_expect_code 1 "$FERRY_SERVER" --data-dir "$(server_datadir s)" \
	    allow "$A" "$(printf "bad\tname")" &&
	test_expect_code 2 "$FERRY_SERVER" --data-dir "$(server_datadir s)" \
	    allow &&
	! test -e "$keys" &&
	server_allow s alice "Alice laptop" >out &&
	test_grep "allowed $A as Alice laptop" out &&
	test "$(stat -c %a "$keys")" = 600 &&
	test_grep "^$A Alice laptop\$" "$keys" &&
	server_allow s alice >out &&
	test_grep "already allowed" out &&
	test "$(grep -c -e "$A" "$keys")" = 1
'

test_expect_success 'the server starts and answers GET /v1/info' '
	server_start s &&
	test_grep "loaded 1 authorized key" "$(server_log s)" &&
	req s alice GET /v1/info >out &&
	status_is 200 out &&
	test_grep "\"protocol\":1" out &&
	test_grep "\"server\":\"ferry-server/" out &&
	now=$(date +%s) &&
	t=$(json_int time out) &&
	[ $((t - now)) -le 5 ] && [ $((now - t)) -le 5 ] &&
	req s alice HEAD /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a clock within the window is fine, both ways' '
	req s alice --ts-offset 290 GET /v1/info >out &&
	status_is 200 out &&
	req s alice --ts-offset -290 GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a document to protect' '
	push s alice "$(item alice put notes secret 0 1 "{\"pin\":\"4711\"}")" \
	    >out &&
	status_is 200 out &&
	test_grep "\"status\":\"applied\"" out &&
	server_state s alice >before &&
	test_grep 4711 before
'

# Every refusal: 401, a JSON error, the secret not in the reply.
refused() {
	status_is 401 out &&
	test_grep "^{\"error\":\"" out &&
	test_grep ! 4711 out
}

test_expect_success 'no Authorization header: 401' '
	req s alice --no-auth GET /v1/docs/notes/secret >out &&
	refused &&
	test_grep "no Authorization header" out
'

test_expect_success 'a signature over another request: 401' '
	req s alice --bad-sig GET /v1/docs/notes/secret >out &&
	refused &&
	test_grep "signature does not verify" out
'

test_expect_success 'a timestamp 301 s off, either way: 401' '
	req s alice --ts-offset 301 GET /v1/docs/notes/secret >out &&
	refused &&
	test_grep "timestamp" out &&
	req s alice --ts-offset -301 GET /v1/changes >out &&
	refused &&
	req s alice --ts-offset -100000 GET /v1/info >out &&
	refused
'

test_expect_success 'a well-signed request from an unlisted key: 401' '
	M=$(key_of mallory) &&
	req s mallory GET /v1/docs/notes/secret >out &&
	refused &&
	test_grep "key $M is not authorized" out &&
	req s mallory GET "/v1/changes?since=0" >out &&
	refused
'

test_expect_success 'malformed or doubled Authorization headers: 401' '
	req s alice --auth "Bearer abc" GET /v1/info >out &&
	refused &&
	test_grep "scheme" out &&
	req s alice --auth "Ferry-Ed25519 key=\"$A\"" GET /v1/info >out &&
	refused &&
	req s alice --auth "Ferry-Ed25519 key=\"$A\", key=\"$A\", ts=\"1\", sig=\"x\"" \
	    GET /v1/info >out &&
	refused &&
	test_grep "repeats" out &&
	req s alice --header "Authorization: Ferry-Ed25519 x=\"1\"" \
	    GET /v1/info >out &&
	refused &&
	test_grep "more than one" out
'

test_expect_success 'refused pushes change nothing' '
	it=$(item alice put notes n2 0 2 "{\"t\":2}") &&
	printf "{\"changes\":[%s]}" "$it" >p.json &&
	req s alice --no-auth POST /v1/push p.json >out && refused &&
	req s alice --bad-sig POST /v1/push p.json >out && refused &&
	req s alice --ts-offset 400 POST /v1/push p.json >out && refused &&
	req s mallory POST /v1/push p.json >out && refused &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'unknown paths are 404, wrong methods 405 (after auth)' '
	req s alice GET /v1/nope >out &&
	status_is 404 out && test_grep "\"error\":" out &&
	req s alice GET /v1/info/ >out && status_is 404 out &&
	req s alice GET /v2/info >out && status_is 404 out &&
	req s alice GET /v1/docs/notes >out && status_is 404 out &&
	req s alice GET /v1/docs/notes/secret/other >out && status_is 404 out &&
	req s alice POST /v1/info >out &&
	status_is 405 out && test_grep "\"error\":" out &&
	req s alice GET /v1/push >out && status_is 405 out &&
	req s alice PUT /v1/docs/notes/secret p.json >out &&
	status_is 405 out &&
	req s alice DELETE /v1/docs/notes/secret >out && status_is 405 out &&
	req s mallory GET /v1/nope >out && refused &&
	server_state s alice >after &&
	test_cmp before after
'

test_expect_success 'SIGHUP rereads the keys file' '
	B=$(key_of bob) &&
	req s bob GET /v1/info >out && refused &&
	server_allow s bob Bob >out &&
	req s bob GET /v1/info >out && refused &&
	kill -HUP "$(server_pid s)" &&
	test_wait_log "$(server_log s)" "reloaded 2 authorized keys" &&
	req s bob GET /v1/info >out &&
	status_is 200 out
'

test_expect_success 'a bad keys file on SIGHUP keeps the keys in use' '
	cp "$keys" keys.good &&
	echo "garbage line" >>"$keys" &&
	kill -HUP "$(server_pid s)" &&
	test_wait_log "$(server_log s)" "keeping the keys in use" &&
	test_grep "authorized_keys:3: the key" "$(server_log s)" &&
	req s bob GET /v1/info >out &&
	status_is 200 out &&
	req s mallory GET /v1/info >out &&
	refused &&
	cp keys.good "$keys"
'

test_expect_success 'a second server on the same data directory is refused' '
	test_expect_code 1 "$FERRY_SERVER" --data-dir "$(server_datadir s)" \
	    --listen 127.0.0.1:0 2>err &&
	test_grep "in use by another ferry-server" err
'

test_expect_success 'SIGTERM stops the server with status 0' '
	server_stop s &&
	test_grep "SIGTERM: stopping" "$(server_log s)" &&
	test_grep "stopped" "$(server_log s)"
'

test_expect_success 'a keys file writable by others is refused at start' '
	chmod 0620 "$keys" &&
	test_expect_code 1 "$FERRY_SERVER" --data-dir "$(server_datadir s)" \
	    --listen 127.0.0.1:0 2>err &&
	test_grep "writable by group or others" err &&
	chmod 0600 "$keys"
'

test_expect_success '--open admits any well-formed key, loudly' '
	server_start o --open &&
	test_grep "OPEN MODE" "$(server_log o)" &&
	req o mallory GET /v1/info >out &&
	status_is 200 out &&
	test_grep "open mode: accepting new key $M" "$(server_log o)" &&
	req o mallory --bad-sig GET /v1/info >out &&
	refused &&
	req o mallory --no-auth GET /v1/info >out &&
	refused &&
	server_stop o
'

test_done
