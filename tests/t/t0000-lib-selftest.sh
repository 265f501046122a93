#!/bin/sh
# Guards the test library itself: a failing assertion makes a test fail
# (tests that cannot fail prove nothing), the plan counts every test, each
# script runs in its own directory with its own XDG_* and HOME, and the
# EXIT trap kills the daemons a script started and removes its directory.

. "$(dirname "$0")/test-lib.sh"

# Run a small script that sources the library; its TAP goes to $1.out.
run_sub() {
	cat >"$TEST_DIR/$1.sh" &&
	FERRY_TEST_KEEP= TMPDIR=$TEST_DIR sh "$TEST_DIR/$1.sh" \
	    >"$TEST_DIR/$1.out" 2>&1
}

test_expect_success 'environment is private to the script' '
	case $TEST_DIR in "${TMPDIR:-/tmp}"/ferry-t0000-lib-selftest.*) ;;
	*) echo "TEST_DIR=$TEST_DIR"; false ;; esac &&
	test "$XDG_RUNTIME_DIR" = "$TEST_DIR/run" &&
	test "$XDG_DATA_HOME" = "$TEST_DIR/data" &&
	test "$XDG_CONFIG_HOME" = "$TEST_DIR/config" &&
	test "$HOME" = "$TEST_DIR/home" &&
	test "$(pwd)" = "$TEST_DIR" &&
	test -z "${FERRY_SOCKET:-}"
'

test_expect_success 'a failing assertion fails the test and the script' '
	sed "s|@LIB@|$FERRY_SRC_DIR/tests/t/test-lib.sh|" <<-\EOF |
	. "@LIB@"
	test_expect_success "passes" "true"
	test_expect_success "fails" "test_equal answer 42 41"
	test_expect_success "chain stops" "true && false && true"
	test_expect_success NO_SUCH_PREREQ "skipped" "false"
	test_skip "skipped too" "no reason"
	test_done
	EOF
	{ run_sub sub1; test $? = 1; } &&
	test_grep "^ok 1 - passes$" sub1.out &&
	test_grep "^not ok 2 - fails$" sub1.out &&
	test_grep "^# answer: expected .42., got .41.$" sub1.out &&
	test_grep "^not ok 3 - chain stops$" sub1.out &&
	test_grep "^ok 4 - skipped # SKIP missing NO_SUCH_PREREQ$" sub1.out &&
	test_grep "^ok 5 - skipped too # SKIP no reason$" sub1.out &&
	test_grep "^1\.\.5$" sub1.out &&
	test_grep "^# failed 2 of 5$" sub1.out
'

test_expect_success 'skip_all prints an empty plan' '
	sed "s|@LIB@|$FERRY_SRC_DIR/tests/t/test-lib.sh|" <<-\EOF |
	. "@LIB@"
	skip_all "not today"
	EOF
	run_sub sub2 &&
	test_grep "^1\.\.0 # SKIP not today$" sub2.out
'

test_expect_success 'the EXIT trap kills our daemon and removes the directory' '
	sed "s|@LIB@|$FERRY_SRC_DIR/tests/t/test-lib.sh|" <<-\EOF |
	. "@LIB@"
	test_expect_success "start" "ferryd_start A && ferryd_works A"
	echo "PID $(ferryd_pid A)"
	echo "DIR $TEST_DIR"
	test_done
	EOF
	run_sub sub3 &&
	test_grep "^ok 1 - start$" sub3.out &&
	pid=$(sed -n "s/^PID //p" sub3.out) &&
	dir=$(sed -n "s/^DIR //p" sub3.out) &&
	test -n "$pid" && test -n "$dir" &&
	test_wait_until 5 "! kill -0 $pid 2>/dev/null" &&
	test ! -e "$dir"
'

test_expect_success 'ferryd_start, ferryd_stop and the JSON helpers' '
	ferryd_start A &&
	ferryd_works A &&
	test -S "$(ferryd_sock A)" &&
	vlcall A "{\"method\":\"io.ferry.Status\"}" >status &&
	test "$(json_str state status)" = unconfigured &&
	test "$(json_int docs status)" = 0 &&
	ferryd_stop A &&
	test "$test_exit_status" = 0 &&
	test_grep "ready: socket" "$(ferryd_log A)" &&
	test ! -e "$(ferryd_sock A)"
'

test_expect_success 'ferryd_start reports a daemon that cannot start' '
	printf "[ferryd]\nno_such_key = 1\n" >bad.conf &&
	! ferryd_start B --config "$TEST_DIR/bad.conf" >start.out &&
	test_grep "exited (1) before" start.out &&
	test_grep "bad.conf:2" start.out
'

test_expect_success 'test_bg: stdin, pid, and the exit status' '
	echo hello >in &&
	test_bg sh -c "read x && test \"\$x\" = hello && exit 7" <in &&
	test -n "$test_bg_pid" &&
	test_wait_exit $test_bg_pid &&
	test "$test_exit_status" = 7
'

test_expect_success 'check_run finds a gap, a duplicate and a short run' '
	printf "1\n2\n3\n" >seqrun && check_run seqrun 1 3 &&
	printf "1\n3\n" >seqrun && ! check_run seqrun 1 3 &&
	printf "1\n2\n2\n3\n" >seqrun && ! check_run seqrun 1 3 &&
	printf "1\n2\n" >seqrun && ! check_run seqrun 1 3
'

test_expect_success 'test_expect_code and test_wait_until are bounded' '
	test_expect_code 3 sh -c "exit 3" &&
	! test_expect_code 0 sh -c "exit 3" &&
	! test_wait_until 1 false
'

test_done
