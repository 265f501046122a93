#!/bin/sh
# Guards issue 11: with XDG_RUNTIME_DIR unset, ferryd listened on one path
# (/run/user/<uid>/..., else its data directory) while ferryctl and
# ferry_connect(NULL) gave up ("neither FERRY_SOCKET nor XDG_RUNTIME_DIR
# is set"): a new user's ferryctl could not find a running ferryd.  Both
# ends now compute the default from one function (lib/sockpath.c), and a
# ferryctl that cannot connect names the path it tried and says how to
# start ferryd.

. "$(dirname "$0")/test-lib.sh"

# Without XDG_RUNTIME_DIR the default is /run/user/<uid>/... when that is
# ours: a place shared with the rest of the machine, not for a test.
uid=$(id -u)
if [ -d "/run/user/$uid" ] && [ "$(stat -c %u "/run/user/$uid")" = "$uid" ]
then
	skip_all "/run/user/$uid exists: the default socket would be there"
fi

# The bodies run in this shell: each unsets what it needs gone, and the
# last one puts XDG_RUNTIME_DIR back.
run_dir=$XDG_RUNTIME_DIR

# bare_ferryd: ferryd with no --socket and no --data-dir, in the
# environment of this shell; its pid in $bare_pid, its log in bare.log.
bare_ferryd() {
	: >bare.log
	"$FERRYD" </dev/null >>bare.log 2>&1 &
	bare_pid=$!
	test_track "$bare_pid"
	test_wait_log bare.log 'ready: socket' "$bare_pid"
}

test_expect_success 'without XDG_RUNTIME_DIR ferryd listens in its data dir' '
	unset XDG_RUNTIME_DIR XDG_DATA_HOME FERRY_SOCKET &&
	bare_ferryd &&
	test_grep "ready: socket $HOME/.local/share/ferry/ferryd.sock," bare.log &&
	test -S "$HOME/.local/share/ferry/ferryd.sock"
'

test_expect_success 'ferryctl (ferry_connect(NULL)) finds it there' '
	unset XDG_RUNTIME_DIR XDG_DATA_HOME FERRY_SOCKET &&
	timeout 10 "$FERRYCTL" put notes s1 >out 2>err <<-\EOF &&
	{"a":1}
	EOF
	timeout 10 "$FERRYCTL" --json get notes s1 >out 2>err &&
	test_grep "\"a\":1" out &&
	timeout 10 "$FERRYCTL" status >out 2>&1 &&
	test_grep "unconfigured" out
'

test_expect_success 'XDG_DATA_HOME moves the default on both ends alike' '
	unset XDG_RUNTIME_DIR FERRY_SOCKET &&
	kill -TERM "$bare_pid" && test_wait_exit "$bare_pid" &&
	XDG_DATA_HOME=$TEST_DIR/xdgdata && export XDG_DATA_HOME &&
	bare_ferryd &&
	test_grep "ready: socket $TEST_DIR/xdgdata/ferry/ferryd.sock," bare.log &&
	timeout 10 "$FERRYCTL" --json status >out 2>err &&
	test_grep "\"status\":{" out
'

test_expect_success 'no ferryd: ferryctl names the path and how to start one' '
	unset XDG_RUNTIME_DIR FERRY_SOCKET &&
	XDG_DATA_HOME=$TEST_DIR/xdgdata && export XDG_DATA_HOME &&
	kill -TERM "$bare_pid" && test_wait_exit "$bare_pid" &&
	test_expect_code 5 timeout 10 "$FERRYCTL" status >out 2>err &&
	cat err &&
	test_grep "$TEST_DIR/xdgdata/ferry/ferryd.sock" err &&
	test_grep "systemctl --user start ferryd" err &&
	test_grep "ferryd &" err
'

test_expect_success 'with XDG_RUNTIME_DIR both ends still use it' '
	XDG_RUNTIME_DIR=$run_dir && export XDG_RUNTIME_DIR &&
	bare_ferryd &&
	test_grep "ready: socket $XDG_RUNTIME_DIR/ferry/ferryd.sock," bare.log &&
	timeout 10 "$FERRYCTL" --json status >out 2>err &&
	test_grep "\"status\":{" out &&
	kill -TERM "$bare_pid" && test_wait_exit "$bare_pid"
'

test_done
