#!/bin/sh
# Guards ferryd as a process: SIGTERM stops it cleanly (exit 0, socket
# removed, acknowledged writes kept); one daemon per data directory and per
# socket; a stale socket left by kill -9 is replaced; SIGHUP rereads the
# configuration and keeps serving; a bad config names file:line; a device
# key readable by others is refused; the XDG default paths; and the
# connection limits (idle timeout, per-uid cap).

. "$(dirname "$0")/test-lib.sh"

[ -x "$DURAWRITER" ] && test_set_prereq DURAWRITER

# run_bounded OUT CMD...: run CMD in the background with output to OUT and
# wait for it (bounded); its status is in test_exit_status.
run_bounded() {
	_o=$1
	shift
	"$@" </dev/null >"$_o" 2>&1 &
	_rp=$!
	test_track $_rp
	test_wait_exit $_rp
}

# conf FILE LINES...: write a config file.
conf() {
	_f=$1
	shift
	printf '%s\n' "$@" >"$_f"
}

test_expect_success 'ferryd --version and --help exit 0; a bad option exits 2' '
	run_bounded out "$FERRYD" --version &&
	test "$test_exit_status" = 0 &&
	test_grep "^ferryd [0-9]" out &&
	run_bounded out "$FERRYD" --help &&
	test "$test_exit_status" = 0 &&
	test_grep "usage: ferryd" out &&
	run_bounded out "$FERRYD" --no-such-option &&
	test "$test_exit_status" = 2 &&
	run_bounded out "$FERRYD" extra-argument &&
	test "$test_exit_status" = 2
'

test_expect_success 'default paths come from XDG; socket 0600 in a 0700 dir' '
	"$FERRYD" </dev/null >def.log 2>&1 &
	dp=$! && test_track $dp &&
	test_wait_log def.log "ready: socket" $dp &&
	s=$XDG_RUNTIME_DIR/ferry/ferryd.sock &&
	test -S "$s" &&
	test_grep "ready: socket $s" def.log &&
	test "$(stat -c %a "$s")" = 600 &&
	test "$(stat -c %a "$XDG_RUNTIME_DIR/ferry")" = 700 &&
	test "$(stat -c %a "$XDG_DATA_HOME/ferry")" = 700 &&
	test "$(stat -c %a "$XDG_DATA_HOME/ferry/device.key")" = 600 &&
	test -f "$XDG_DATA_HOME/ferry/replica.db" &&
	printf "%s\0" "{\"method\":\"io.ferry.Status\"}" |
	    "$VLSEND" "$s" -n 1 >out &&
	test_grep "\"status\":{" out &&
	kill -TERM $dp &&
	test_wait_exit $dp &&
	test "$test_exit_status" = 0 &&
	test ! -e "$s"
'

test_expect_success 'the default config file is read' '
	mkdir -p "$XDG_CONFIG_HOME/ferry" &&
	conf "$XDG_CONFIG_HOME/ferry/ferryd.conf" "[ferryd]" "no_such_key = 1" &&
	run_bounded out "$FERRYD" &&
	test "$test_exit_status" = 1 &&
	test_grep "$XDG_CONFIG_HOME/ferry/ferryd.conf:2" out &&
	rm "$XDG_CONFIG_HOME/ferry/ferryd.conf"
'

test_expect_success 'SIGTERM: exit 0, socket removed, "stopped" logged' '
	ferryd_start A &&
	s=$(ferryd_sock A) &&
	fcall A Put "{\"collection\":\"c\",\"id\":\"x\",\"body\":{\"v\":1}}" >/dev/null &&
	ferryd_stop A &&
	test "$test_exit_status" = 0 &&
	test ! -e "$s" &&
	test_grep "SIGTERM: stopping" "$(ferryd_log A)" &&
	test_grep "stopped" "$(ferryd_log A)"
'

test_expect_success 'SIGINT stops cleanly too' '
	ferryd_start A &&
	kill -INT "$(ferryd_pid A)" &&
	test_wait_exit "$(ferryd_pid A)" &&
	test "$test_exit_status" = 0 &&
	test ! -e "$(ferryd_sock A)" &&
	ferryd_start A
'

test_expect_success DURAWRITER 'SIGTERM under load: every acknowledged write is kept' '
	"$DURAWRITER" "$(ferryd_sock A)" --prefix term --log term.log \
	    --count 1000000 >writer.out 2>&1 &
	wp=$! && test_track $wp &&
	test_wait_until 10 "test -s term.log" &&
	ferryd_stop A &&
	test_wait_exit $wp &&
	test "$test_exit_status" = 0 &&
	cat writer.out &&
	ferryd_start A &&
	"$DURAWRITER" "$(ferryd_sock A)" --verify term.log >verify.out;
	cat verify.out &&
	test_grep "^verified [1-9]" verify.out
'

# "Answer what is in hand" (daemon/main.c): a write committed at SIGTERM
# must also be acknowledged, or its client retries a write that happened.
test_expect_success DURAWRITER 'SIGTERM acknowledges every write it committed' '
	test_grep " (0 present)$" verify.out
'

test_expect_success 'a second ferryd on the same data directory is refused' '
	ferryd_running A &&
	pid=$(ferryd_pid A) &&
	run_bounded out "$FERRYD" --data-dir "$(ferryd_datadir A)" \
	    --socket "$XDG_RUNTIME_DIR/other.sock" &&
	test "$test_exit_status" = 1 &&
	test_grep "in use by another ferryd" out &&
	test ! -e "$XDG_RUNTIME_DIR/other.sock" &&
	test "$(ferryd_pid A)" = "$pid" &&
	ferryd_works A
'

test_expect_success 'a second ferryd on the same socket is refused' '
	run_bounded out "$FERRYD" --data-dir "$TEST_DIR/other" \
	    --socket "$(ferryd_sock A)" &&
	test "$test_exit_status" = 1 &&
	test_grep "another ferryd is listening on $(ferryd_sock A)" out &&
	test -S "$(ferryd_sock A)" &&
	ferryd_works A
'

test_expect_success 'kill -9 leaves the socket; a restart replaces it' '
	fcall A Put "{\"collection\":\"c\",\"id\":\"k9\",\"body\":{\"v\":9}}" >/dev/null &&
	ferryd_kill9 A &&
	test -S "$(ferryd_sock A)" &&
	printf "%s\0" "{\"method\":\"io.ferry.Status\"}" |
	    "$VLSEND" "$(ferryd_sock A)" -n 1 >out;
	test_grep "^CONNECT-ERROR" out &&
	ferryd_start A &&
	ferryd_works A &&
	fcall A Get "{\"collection\":\"c\",\"id\":\"k9\"}" >out &&
	test_grep "\"body\":{\"v\":9}" out
'

test_expect_success 'SIGHUP rereads the config and keeps serving' '
	ferryd_stop A &&
	conf a.conf "[ferryd]" "idle_timeout = 0" &&
	ferryd_start A --config "$TEST_DIR/a.conf" &&
	pid=$(ferryd_pid A) &&
	conf a.conf "[ferryd]" "idle_timeout = 1" &&
	kill -HUP "$pid" &&
	test_wait_log "$(ferryd_log A)" "configuration reloaded" "$pid" &&
	ferryd_works A &&
	test "$(ferryd_pid A)" = "$pid" &&
	: | "$VLSEND" "$(ferryd_sock A)" --timeout 10000 >out &&
	test "$(cat out)" = EOF
'

test_expect_success 'SIGHUP with a broken config keeps the running one' '
	pid=$(ferryd_pid A) &&
	conf a.conf "[ferryd]" "idle_timeout = soon" &&
	kill -HUP "$pid" &&
	test_wait_log "$(ferryd_log A)" "reload failed" "$pid" &&
	test_grep "a.conf:2" "$(ferryd_log A)" &&
	ferryd_works A &&
	: | "$VLSEND" "$(ferryd_sock A)" --timeout 10000 >out &&
	test "$(cat out)" = EOF &&
	ferryd_stop A
'

test_expect_success 'a bad config file is an error naming file:line' '
	for body in "idle_timeout = x" "idle_timeout = -1" "max_connections = 0" \
	    "no_such_key = 1" "log_level = loud" "socket = relative/path"; do
		conf bad.conf "; comment" "[ferryd]" "$body" &&
		run_bounded out "$FERRYD" --config "$TEST_DIR/bad.conf" \
		    --data-dir "$TEST_DIR/bad" --socket "$XDG_RUNTIME_DIR/bad.sock" &&
		test "$test_exit_status" = 1 &&
		test_grep "$TEST_DIR/bad.conf:3" out &&
		test ! -e "$XDG_RUNTIME_DIR/bad.sock" || { cat out; return 1; }
	done &&
	conf bad.conf "[nosection]" "a = 1" &&
	run_bounded out "$FERRYD" --config "$TEST_DIR/bad.conf" &&
	test "$test_exit_status" = 1 &&
	test_grep "$TEST_DIR/bad.conf:[12]" out
'

test_expect_success 'a config file named on the command line must exist' '
	run_bounded out "$FERRYD" --config "$TEST_DIR/missing.conf" \
	    --data-dir "$TEST_DIR/bad" --socket "$XDG_RUNTIME_DIR/bad.sock" &&
	test "$test_exit_status" = 1 &&
	test_grep "missing.conf" out
'

test_expect_success 'device.key readable by others is refused' '
	key=$(ferryd_datadir A)/device.key &&
	test "$(stat -c %a "$key")" = 600 &&
	for mode in 0644 0640 0604 0660; do
		chmod $mode "$key" &&
		run_bounded out "$FERRYD" --data-dir "$(ferryd_datadir A)" \
		    --socket "$(ferryd_sock A)" &&
		test "$test_exit_status" = 1 &&
		test_grep "device.key" out &&
		test_grep "0600" out &&
		test ! -e "$(ferryd_sock A)" || { cat out; return 1; }
	done &&
	chmod 0600 "$key" &&
	ferryd_start A &&
	ferryd_works A
'

test_expect_success 'idle timeout closes an idle client, not a busy one' '
	ferryd_stop A &&
	conf idle.conf "[ferryd]" "idle_timeout = 1" &&
	ferryd_start A --config "$TEST_DIR/idle.conf" &&
	: | "$VLSEND" "$(ferryd_sock A)" --timeout 10000 >out &&
	test "$(cat out)" = EOF &&
	printf "%s\0" "{\"method\":\"io.ferry.Status\"}" |
	    "$VLSEND" "$(ferryd_sock A)" --timeout 10000 >out &&
	test_grep "\"status\":{" out &&
	test "$(tail -n 1 out)" = EOF &&
	printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":{},\"more\":true}" |
	    "$VLSEND" "$(ferryd_sock A)" --timeout 2500 >out &&
	test_grep "\"ready\":true" out &&
	test "$(tail -n 1 out)" = TIMEOUT &&
	ferryd_works A
'

test_expect_success 'connection cap: the 4th of max_connections = 3 is refused' '
	ferryd_stop A &&
	conf cap.conf "[ferryd]" "max_connections = 3" &&
	ferryd_start A --config "$TEST_DIR/cap.conf" &&
	holders="" &&
	for i in 1 2 3; do
		printf "%s\0" "{\"method\":\"io.ferry.Status\"}" |
		    "$VLSEND" "$(ferryd_sock A)" --timeout 60000 >hold.$i &
		holders="$holders $!" && test_track $! &&
		test_wait_until 10 "grep -q status hold.$i" || return 1
	done &&
	printf "%s\0" "{\"method\":\"io.ferry.Status\"}" |
	    "$VLSEND" "$(ferryd_sock A)" --timeout 10000 >out &&
	cat out &&
	grep -v "^WRITE-ERROR" out | head -n 1 >first &&
	test_grep "^{\"error\":\"io.ferry.TooManyConnections\"" first &&
	test_equal limit 3 "$(json_int limit first)" &&
	test_equal "last line" EOF "$(tail -n 1 out)" &&
	test_grep "refused a connection" "$(ferryd_log A)" &&
	set -- $holders &&
	kill $1 && test_wait_exit $1 &&
	test_wait_until 10 "ferryd_works A >/dev/null 2>&1" &&
	for p in $holders; do
		kill $p 2>/dev/null; test_wait_exit $p
	done
'

test_expect_success 'stop' '
	ferryd_stop A
'

test_done
