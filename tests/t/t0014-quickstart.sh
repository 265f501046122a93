#!/bin/sh
# Guards issue 11's quickstart: packaging/quickstart.sh started ferryd
# before ferry-server, so a fresh demo began with ferryd logging that it
# cannot reach the remote (and, before the key was allowed, a refusal).
# Now the key is made and allowed first, the server starts, then ferryd:
# the demo's logs and output hold no "cannot reach", no 401 and no
# paused, the document syncs and status ends idle with nothing pending.
# The device key is allowed under the device name (one name everywhere:
# status, log).  Also the README's build-by-hand steps create their build directory
# with mkdir -p (they failed as written in a fresh clone).

. "$(dirname "$0")/test-lib.sh"

QUICKSTART=$FERRY_SRC_DIR/packaging/quickstart.sh
demo=$TEST_DIR/demo

# stop_demo: the two daemons the quickstart left running (its pid files),
# each waited for with a bound.
stop_demo() {
	for _f in "$demo/ferryd.pid" "$demo/ferry-server.pid"; do
		[ -f "$_f" ] || continue
		_p=$(cat "$_f")
		kill "$_p" 2>/dev/null || continue
		test_poll 10 "! kill -0 $_p 2>/dev/null" || return 1
	done
}

test_expect_success 'the quickstart runs: server first, then ferryd, synced' '
	FERRY_QUICKSTART_BIN=$FERRY_BUILD_DIR FERRY_DEMO_DIR=$demo \
	    FERRY_DEMO_LISTEN=127.0.0.1:0 \
	    timeout 60 sh "$QUICKSTART" >out 2>err;
	rc=$?;
	cat out err;
	test "$rc" = 0 &&
	test_grep "hello from ferry" out &&
	test_grep "^state: *idle" out &&
	test_grep "^pending: *0" out &&
	test_grep "ferry-server (http://127.0.0.1:[1-9][0-9]*, pid" out
'

test_expect_success 'nothing misleading: no unreachable remote, no refusal' '
	cat "$demo/ferryd.log" &&
	test_grep ! "cannot reach" "$demo/ferryd.log" &&
	test_grep ! "answered 401\|paused\|refused" "$demo/ferryd.log" &&
	test_grep ! "cannot reach\|answered 401\|paused" out &&
	test ! -s err &&
	ctl_sock=$demo/ferryd.sock &&
	"$FERRYCTL" --socket "$ctl_sock" --json get notes welcome >doc &&
	test_grep "\"version\":1" doc &&
	name=$("$FERRYCTL" --socket "$ctl_sock" key --name) &&
	test -n "$name" &&
	test_grep "^device name: *$name\$" out &&
	"$FERRYCTL" --socket "$ctl_sock" log notes welcome >log.out &&
	cat log.out &&
	test_grep " $name " log.out
'

test_expect_success 'run again while both run: reuses them, still clean' '
	FERRY_QUICKSTART_BIN=$FERRY_BUILD_DIR FERRY_DEMO_DIR=$demo \
	    FERRY_DEMO_LISTEN=127.0.0.1:0 \
	    timeout 60 sh "$QUICKSTART" >out2 2>err2 &&
	test_grep "ferryd already running" out2 &&
	test_grep "^state: *idle" out2 &&
	stop_demo
'

test_expect_success 'README: the build-by-hand steps use mkdir -p' '
	sed -n "/^## Building by hand/,/^## /p" "$FERRY_SRC_DIR/README.md" >steps &&
	test_grep "mkdir -p build/dev" steps &&
	test_grep ! "mkdir build/" steps
'

# Whatever failed above, the demo's daemons do not outlive the script.
stop_demo >/dev/null 2>&1

test_done
