#!/bin/sh
# Guards issue 8, break 7: the socket directory was trusted blindly.  When
# $XDG_RUNTIME_DIR/ferry (or the data directory) already existed owned by
# another user, or was a symbolic link, that user could put their own
# socket there, and "ferryctl put" then reported a fake "rev 1 (synced)"
# made up by them.  ferryd refuses a socket or data directory that is not
# owned by its uid, is open to group or others, or is a symbolic link,
# with an error naming the path and what is wrong, and creates nothing in
# it; libferry (so ferryctl and every app) checks that the process behind
# the socket runs as its own uid (SO_PEERCRED) before sending anything.

. "$(dirname "$0")/test-lib.sh"

VLFAKE=$FERRY_BUILD_DIR/tests/tools/vlfake

# refused ARGS...: ferryd with ARGS must exit 1 at once (bounded); its
# log is in out.
refused() {
	"$FERRYD" "$@" </dev/null >out 2>&1 &
	_fd_pid=$!
	test_track $_fd_pid
	test_wait_exit $_fd_pid
	if [ "$test_exit_status" != 1 ]; then
		echo "ferryd $* exited $test_exit_status, expected 1:"
		cat out
		return 1
	fi
}

# empty DIR: nothing was created in DIR.
empty() {
	if [ -n "$(ls -A "$1")" ]; then
		echo "$1 is not empty:"
		ls -la "$1"
		return 1
	fi
}

# Run as uid 65534 (unquoted, so that test_bg's $! is the program).
NOBODY="setpriv --reuid=65534 --regid=65534 --clear-groups"

# Can uid 65534 run the fake server from the build tree?
if test_have_prereq ROOT,SETPRIV && [ -x "$VLFAKE" ]; then
	$NOBODY "$VLFAKE" >/dev/null 2>&1
	[ $? = 2 ] && test_set_prereq NOBODY
fi
[ -x "$DURAWRITER" ] && test_set_prereq DURAWRITER

test_expect_success 'a socket directory open to group or others is refused' '
	for mode in 0755 0750 0701; do
		rm -rf sd-open && mkdir sd-open && chmod $mode sd-open &&
		refused --data-dir "$TEST_DIR/d1" \
		    --socket "$TEST_DIR/sd-open/f.sock" &&
		test_grep "socket directory $TEST_DIR/sd-open is open to group or others (mode $mode)" out &&
		test_grep "chmod 0700 $TEST_DIR/sd-open" out &&
		empty sd-open || return 1
	done
'

test_expect_success 'a socket directory that is a symbolic link is refused' '
	mkdir -m 0700 sd-real &&
	ln -s sd-real sd-link &&
	refused --data-dir "$TEST_DIR/d2" --socket "$TEST_DIR/sd-link/f.sock" &&
	test_grep "socket directory $TEST_DIR/sd-link is a symbolic link" out &&
	empty sd-real
'

test_expect_success ROOT 'a socket directory owned by another uid is refused' '
	mkdir -m 0700 sd-other &&
	chown 65534:65534 sd-other &&
	refused --data-dir "$TEST_DIR/d3" --socket "$TEST_DIR/sd-other/f.sock" &&
	test_grep "socket directory $TEST_DIR/sd-other is owned by uid 65534, not by ferryd.s uid $(id -u)" out &&
	empty sd-other
'

test_expect_success ROOT 'the default $XDG_RUNTIME_DIR/ferry made by another uid is refused' '
	mkdir -m 0700 "$XDG_RUNTIME_DIR/ferry" &&
	chown 65534:65534 "$XDG_RUNTIME_DIR/ferry" &&
	refused --data-dir "$TEST_DIR/d4" &&
	test_grep "socket directory $XDG_RUNTIME_DIR/ferry is owned by uid 65534" out &&
	empty "$XDG_RUNTIME_DIR/ferry" &&
	rmdir "$XDG_RUNTIME_DIR/ferry"
'

test_expect_success 'a data directory open to group or others is refused' '
	mkdir -m 0700 run-d &&
	mkdir dd-open && chmod 0770 dd-open &&
	refused --data-dir "$TEST_DIR/dd-open" --socket "$TEST_DIR/run-d/f.sock" &&
	test_grep "data directory $TEST_DIR/dd-open is open to group or others (mode 0770)" out &&
	empty dd-open &&
	empty run-d
'

test_expect_success 'a data directory that is a symbolic link is refused' '
	mkdir -m 0700 dd-real &&
	ln -s dd-real dd-link &&
	refused --data-dir "$TEST_DIR/dd-link/" --socket "$TEST_DIR/run-d/f.sock" &&
	test_grep "data directory $TEST_DIR/dd-link/ is a symbolic link" out &&
	empty dd-real &&
	empty run-d
'

test_expect_success ROOT 'a data directory owned by another uid is refused' '
	mkdir -m 0700 dd-other &&
	chown 65534:65534 dd-other &&
	refused --data-dir "$TEST_DIR/dd-other" --socket "$TEST_DIR/run-d/f.sock" &&
	test_grep "data directory $TEST_DIR/dd-other is owned by uid 65534" out &&
	empty dd-other &&
	empty run-d
'

test_expect_success 'private directories, new or existing, are accepted' '
	mkdir -m 0700 sd-mine &&
	ferryd_start A --socket "$TEST_DIR/sd-mine/f.sock" &&
	test -S sd-mine/f.sock &&
	test "$(stat -c %a "$(ferryd_datadir A)")" = 700 &&
	"$FERRYCTL" --socket "$TEST_DIR/sd-mine/f.sock" status >st.out &&
	ferryd_stop A &&
	ferryd_start A &&
	ferryd_works A &&
	ferryd_stop A
'

# The impostor: vlfake as uid 65534 in a directory it owns, answering
# every client at once with a Put's reply; it counts what each sends.
evil=
test_expect_success NOBODY 'start a fake ferryd as uid 65534' '
	chmod 0711 "$TEST_DIR" &&
	mkdir -m 0755 evil &&
	chown 65534:65534 evil &&
	evil=$TEST_DIR/evil/ferryd.sock &&
	test_bg $NOBODY "$VLFAKE" "$evil" --connections 3 --timeout 60000 \
	    >fake.out 2>&1 </dev/null &&
	fake=$test_bg_pid &&
	test_wait_until 10 "grep -q ^listening fake.out"
'

test_expect_success NOBODY 'ferryctl put refuses it and sends nothing' '
	echo "{\"a\":1}" >body.json &&
	"$FERRYCTL" --socket "$evil" put notes n1 body.json >put.out 2>&1;
	st=$?;
	cat put.out &&
	test_wait_until 10 "grep -q \"^connection 1:\" fake.out" &&
	cat fake.out &&
	test_equal "ferryctl put exit status" 5 "$st" &&
	test_grep "refusing $evil: it is served by uid 65534, not by you" put.out &&
	test_grep ! "rev 1" put.out &&
	test_grep "^connection 1: 0 bytes$" fake.out
'

test_expect_success NOBODY,DURAWRITER 'a libferry app refuses it and sends nothing' '
	"$DURAWRITER" "$evil" --prefix x --log dw.log --count 1 \
	    >dw.out 2>dw.err &&
	cat dw.out dw.err &&
	test_grep "refusing $evil: it is served by uid 65534" dw.err &&
	test_grep "^wrote 0$" dw.out &&
	test_wait_until 10 "grep -q \"^connection 2:\" fake.out" &&
	test_grep "^connection 2: 0 bytes$" fake.out
'

test_expect_success NOBODY 'ferryctl watch refuses it too; the fake got nothing' '
	test_expect_code 5 "$FERRYCTL" --socket "$evil" watch >watch.out 2>&1 &&
	test_grep "refusing $evil" watch.out &&
	test_wait_exit $fake &&
	cat fake.out &&
	test_grep "^connection 3: 0 bytes$" fake.out &&
	test_grep "^done$" fake.out &&
	test "$(grep -c "^connection [123]: 0 bytes$" fake.out)" = 3 &&
	chmod 0700 "$TEST_DIR"
'

test_done
