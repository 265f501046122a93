#!/bin/sh
# Request bodies cost the server memory only when it chose to read them
# (issue 8, break 5).  Bug: 60 connections without an Authorization
# header, each sending 15 MiB of a declared 16 MB body, took ferry-server
# from 52 MB to 1.36 GB: evhttp read every body before the handler could
# refuse it.  Promise: a request with a body and a missing, malformed,
# stale or unknown-key Authorization header is refused (401) before its
# body is read; bodies that pass those checks (a known key with a forged
# signature, say) are admitted only within --max-inflight-mib (503 with
# Retry-After beyond); 40 such uploads of either kind grow the server by
# less than 100 MB, and a signed client is still served.

. "$(dirname "$0")/server-lib.sh"

CONNFLOOD=$FERRY_BUILD_DIR/tests/tools/connflood
[ -x "$CONNFLOOD" ] || skip_all "$CONNFLOOD is not built (run make check)"

# Under AddressSanitizer freed memory waits in a quarantine (256 MB by
# default) that would count as growth here.
ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}quarantine_size_mb=1
export ASAN_OPTIONS

SEND=15728640		# 15 MiB sent of
DECLARED=16000000	# a declared 16 MB

rss_kb() {
	sed -n 's/^VmRSS:[^0-9]*\([0-9]*\) kB/\1/p' "/proc/$(server_pid s)/status"
}

# uploads N [HEADER...]: N connections uploading at once, held open.
uploads() {
	_n=$1
	shift
	test_bg "$CONNFLOOD" --hold 120 "$(server_port s)" upload "$_n" \
	    "$SEND" "$DECLARED" "$@" </dev/null >"$TEST_DIR/up.out" &&
	up_pid=$test_bg_pid &&
	test_wait_until 60 "grep -q \"^done \" \"$TEST_DIR/up.out\"" &&
	cat "$TEST_DIR/up.out"
}

uploads_stop() {
	kill -TERM "$up_pid" && test_wait_exit "$up_pid"
}

# grown_less_than MB: the server's RSS grew by less than MB since rss0.
grown_less_than() {
	rss=$(rss_kb) &&
	echo "RSS $rss0 kB -> $rss kB" &&
	[ $(( (rss - rss0) / 1024 )) -lt "$1" ]
}

# log_count PATTERN: lines of the server log matching PATTERN.
log_count() {
	grep -c -- "$1" "$(server_log s)" || :
}

test_expect_success 'setup' '
	server_allow s alice &&
	server_start s &&
	req s alice GET /v1/info >out &&
	status_is 200 out &&
	rss0=$(rss_kb) &&
	[ -n "$rss0" ]
'

test_expect_success '40 uploads without Authorization: 401 unread, RSS < +100 MB' '
	uploads 40 &&
	grown_less_than 100 &&
	test_wait_until 20 "[ \$(log_count \"POST /v1/push from .*: 401 the request has no Authorization header\") = 40 ]" &&
	req s alice GET /v1/info >out &&
	status_is 200 out &&
	uploads_stop
'

test_expect_success 'unknown key, stale ts, malformed header: refused before the body' '
	M=$(key_of mallory) && now=$(date +%s) &&
	sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA &&
	uploads 3 "Authorization: Ferry-Ed25519 key=\"$M\", ts=\"$now\", sig=\"$sig\"" &&
	test_wait_until 20 "[ \$(log_count \"401 key $M is not authorized\") = 3 ]" &&
	uploads_stop &&
	A=$(key_of alice) &&
	uploads 3 "Authorization: Ferry-Ed25519 key=\"$A\", ts=\"$((now - 1000))\", sig=\"$sig\"" &&
	test_wait_until 20 "[ \$(log_count \"401 the request timestamp is too far\") = 3 ]" &&
	uploads_stop &&
	uploads 3 "Authorization: Basic YWxhZGRpbjpvcGVuc2VzYW1l" &&
	test_wait_until 20 "[ \$(log_count \"401 the Authorization scheme is not\") = 3 ]" &&
	uploads_stop &&
	grown_less_than 100
'

test_expect_success '40 uploads with a known key, forged sig: 503 beyond the cap' '
	A=$(key_of alice) && now=$(date +%s) &&
	sig=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA &&
	uploads 40 "Authorization: Ferry-Ed25519 key=\"$A\", ts=\"$now\", sig=\"$sig\"" &&
	test_wait_until 20 "[ \$(log_count \"503 the server is receiving too many request bodies\") = 36 ]" &&
	grown_less_than 100 &&
	req s alice GET /v1/info >out &&
	status_is 200 out &&
	push s alice "$(item alice put notes n1 0 1 "{\"a\":1}")" >out &&
	status_is 200 out &&
	test_grep "\"status\":\"applied\"" out &&
	uploads_stop
'

test_expect_success 'Transfer-Encoding and doubled Content-Length are refused' '
	req s alice GET /v1/info >out && status_is 200 out &&
	uploads 1 "Transfer-Encoding: chunked" &&
	test_wait_until 20 "[ \$(log_count \"411 Transfer-Encoding is not accepted\") = 1 ]" &&
	uploads_stop &&
	uploads 1 "Content-Length: 5" &&
	test_wait_until 20 "[ \$(log_count \"400 the Content-Length header is repeated\") = 1 ]" &&
	uploads_stop &&
	server_stop s
'

test_done
