#!/bin/sh
# ferry-server under a connection flood (issue 8, break 4).  Bug: 1,100
# idle connections against `ulimit -n 1024` left a signed client waiting
# out the whole idle timeout while accept() failed in a loop, logging "Too
# many open files" each time (2 GB of log in 2 minutes).  Promise: with
# its descriptors taken by idle connections a signed GET is still answered
# within 1 s, at the connection cap (or when accept() runs out of
# descriptors anyway) the connections idle longest are closed to make
# room, accept failures back off, repeated lines are logged at most once a
# second, and the log stays small.  Scaled down: 256 descriptors, 400
# connections.

. "$(dirname "$0")/server-lib.sh"

CONNFLOOD=$FERRY_BUILD_DIR/tests/tools/connflood
[ -x "$CONNFLOOD" ] || skip_all "$CONNFLOOD is not built (run make check)"

# The server alone runs with 256 descriptors (soft limit: connflood
# raises its own back to the hard one).
limited_server() {
	cat >"$TEST_DIR/limited-server" <<-END
	#!/bin/sh
	ulimit -S -n 256 || exit 1
	exec "$FERRY_SERVER" "\$@"
	END
	chmod +x "$TEST_DIR/limited-server"
}

# flood SERVER N: N idle connections to SERVER, held until killed.
flood() {
	test_bg "$CONNFLOOD" --hold 120 "$(server_port "$1")" idle "$2" \
	    </dev/null >"$TEST_DIR/flood.out" &&
	flood_pid=$test_bg_pid &&
	test_wait_until 20 "grep -q \"^open \" \"$TEST_DIR/flood.out\""
}

flood_stop() {
	kill -TERM "$flood_pid" && test_wait_exit "$flood_pid"
}

# signed_get_fast SERVER: a signed GET answered 200 within 1 s.
signed_get_fast() {
	req "$1" alice --timeout 10 --elapsed GET /v1/info >out 2>err &&
	status_is 200 out &&
	ms=$(sed -n "s/^elapsed_ms //p" err) &&
	echo "signed GET answered in $ms ms" &&
	[ "$ms" -lt 1000 ]
}

# log_small SERVER: the log is under 1 MB and says each kind of line at
# most about once a second.
log_small() {
	size=$(wc -c <"$(server_log "$1")") &&
	echo "log: $size bytes" &&
	[ "$size" -lt 1000000 ] &&
	n=$(grep -c "cannot accept connections" "$(server_log "$1")" || :) &&
	[ "$n" -le $(( $(date +%s) - started + 2 )) ] &&
	n=$(grep -c "to make room" "$(server_log "$1")" || :) &&
	[ "$n" -le $(( $(date +%s) - started + 2 )) ]
}

test_expect_success 'setup' '
	server_allow s alice &&
	limited_server
'

test_expect_success 'idle connections beyond the cap: a signed GET within 1 s' '
	real=$FERRY_SERVER && FERRY_SERVER=$TEST_DIR/limited-server &&
	server_start s; r=$?; FERRY_SERVER=$real; [ $r = 0 ] &&
	started=$(date +%s) &&
	flood s 400 &&
	signed_get_fast s &&
	test_grep "closed the one idle longest to make room" "$(server_log s)" &&
	log_small s &&
	flood_stop &&
	server_stop s
'

test_expect_success 'a cap above the descriptors: accept backs off, GET within 1 s' '
	real=$FERRY_SERVER && FERRY_SERVER=$TEST_DIR/limited-server &&
	server_start s --max-connections 5000; r=$?; FERRY_SERVER=$real;
	[ $r = 0 ] &&
	test_grep "max-connections 5000 leaves fewer than" "$(server_log s)" &&
	started=$(date +%s) &&
	flood s 400 &&
	signed_get_fast s &&
	test_grep "cannot accept connections: Too many open files" \
	    "$(server_log s)" &&
	log_small s &&
	flood_stop &&
	req s alice GET /v1/info >out &&
	status_is 200 out &&
	server_stop s
'

test_expect_success '--max-connections wants a positive number' '
	{ "$FERRY_SERVER" --max-connections 0 2>err; test $? = 2; } &&
	test_grep "max-connections wants a positive number" err &&
	{ "$FERRY_SERVER" --max-inflight-mib x 2>err; test $? = 2; } &&
	test_grep "max-inflight-mib wants a positive number" err
'

test_done
