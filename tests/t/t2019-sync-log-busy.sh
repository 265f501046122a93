#!/bin/sh
# Guards: History (`ferryctl log`, also offline) verified every signed
# entry of the replica's change log on ferryd's event-loop thread, in the
# callback that took the call: a document with 10,000 pulled changes held
# the loop for about a second, and every other client's Get waited that
# long.  The log is now read in short steps and verified on a worker
# thread (daemon/history.c): a Get on another connection answers at once
# while the History is under way, and the History's reply is the same
# (every entry, verified, oldest first).  The remote's trail, in pages
# of up to 8 MiB of records, was parsed and verified on the loop too:
# now on the worker, so the loop thread spends a small part of the CPU
# a History costs (measured in CPU ticks, which a loaded machine does
# not skew).  A client that goes while its History is being verified,
# or a daemon stopped meanwhile, leaves nothing behind: ferryd serves
# the next client, and stops cleanly (a sanitizer build's leak check
# passes).

. "$(dirname "$0")/sync-lib.sh"

VLBUSY=$FERRY_BUILD_DIR/tests/tools/vlbusy
[ -x "$VLBUSY" ] || skip_all "$VLBUSY is not built (run make check)"

N=10000
HISTORY='{"method":"io.ferry.History","parameters":{"collection":"notes","id":"big"}}'
GET='{"method":"io.ferry.Get","parameters":{"collection":"notes","id":"small"}}'

# ticks FILE: the CPU time (utime + stime, in clock ticks) in a /proc
# stat FILE (fields 14 and 15; the name in parentheses may hold spaces).
ticks() {
	set -- $(sed 's/.*) //' "$1") &&
	echo $(( ${12} + ${13} ))
}

# loop_share NAME CALL: make CALL on ferryd NAME (its reply in
# $TEST_DIR/.share); print the CPU ticks its loop thread (the main one)
# and the whole daemon used meanwhile, "LOOP ALL".  CPU time, unlike a
# latency, does not depend on how loaded the machine is.
loop_share() {
	_ls_pid=$(ferryd_pid "$1")
	_ls_m0=$(ticks "/proc/$_ls_pid/task/$_ls_pid/stat") &&
	_ls_a0=$(ticks "/proc/$_ls_pid/stat") &&
	vlcall "$1" "$2" --timeout 120000 >"$TEST_DIR/.share" &&
	_ls_m1=$(ticks "/proc/$_ls_pid/task/$_ls_pid/stat") &&
	_ls_a1=$(ticks "/proc/$_ls_pid/stat") &&
	echo "$((_ls_m1 - _ls_m0)) $((_ls_a1 - _ls_a0))"
}

# stat_of NAME FILE: the number after NAME in vlbusy's last line.
stat_of() {
	tail -n 1 "$2" | sed -n "s/.*$1 \\([0-9][0-9]*\\).*/\\1/p"
}

# check_history FILE: FILE's first line is the History reply with all N
# local entries, each verified, in rev order 1..N.
check_history() {
	head -n 1 "$1" >reply &&
	test_grep '"remote_error":"no remote is configured"' reply &&
	sed 's/},{/}\n{/g' reply >entries &&
	test_equal verified "$N" "$(grep -c '"verified":true' entries)" &&
	test_equal "not verified" 0 \
	    "$(grep -c '"verified":false' entries)" &&
	grep -o '"rev":[0-9]*' entries | sed 's/"rev"://' >revs &&
	seq 1 "$N" >want &&
	test_cmp want revs
}

test_expect_success "setup: B pulls $N signed changes of one document" '
	server_start s --open &&
	syncd_start B s &&
	for k in 0 1 2 3 4 5 6 7 8 9; do
		"$SRVCLIENT" --key-dir "$TEST_DIR/keys/w" changes notes big \
		    $((k * 1000)) $((k * 1000 + 1)) 1000 >push.json &&
		req s w POST /v1/push push.json >push.out &&
		test_grep "^200\$" push.out &&
		test_grep "\"version\":$((k * 1000 + 1000))}\\]}" push.out ||
		return 1
	done &&
	sync_wait B 60 &&
	fcall B Get "{\"collection\":\"notes\",\"id\":\"big\"}" >got &&
	test_grep "\"rev\":$N," got &&
	test_grep "\"body\":{\"n\":$N}" got
'

test_expect_success 'setup: B restarts without a remote (the offline log)' '
	server_stop s &&
	ferryd_stop B &&
	ferryd_start B &&
	put_ok B notes small "{\"s\":1}"
'

test_expect_success 'a Get answers at once while History verifies the log' '
	"$VLBUSY" "$(ferryd_sock B)" "$HISTORY" "$GET" >busy.out &&
	tail -n 1 busy.out &&
	slow=$(stat_of slow_ms busy.out) &&
	probes=$(stat_of probes busy.out) &&
	max=$(stat_of probe_max_ms busy.out) &&
	check_history busy.out &&
	test "$probes" -ge 2 &&
	# Held by the loop, the Get waits for nearly all of the History;
	# served meanwhile, it waits a small part of it even on a loaded
	# machine (a scheduling delay, never the whole verification).
	test $((max * 3)) -lt "$slow" &&
	# And the loop thread did a small part of the work.
	set -- $(loop_share B "$HISTORY") &&
	echo "loop thread: $1 of $2 ticks" &&
	check_history "$TEST_DIR/.share" &&
	test "$2" -ge 20 &&
	test $(($1 * 3)) -lt "$2"
'

test_expect_success 'a client that goes mid-History: ferryd serves the next' '
	"$VLBUSY" "$(ferryd_sock B)" "$HISTORY" --close-after 100 >gone.out &&
	test_grep "^closed after 100 ms\$" gone.out &&
	pids="" &&
	for i in 1 2 3 4 5 6; do
		test_bg "$VLBUSY" "$(ferryd_sock B)" "$HISTORY" \
		    --close-after 50 >"gone$i.out" </dev/null &&
		pids="$pids $test_bg_pid" || return 1
	done &&
	for p in $pids; do
		test_wait_exit "$p" 30 && test "$test_exit_status" = 0 ||
		return 1
	done &&
	ferryd_works B &&
	fcall B Get "{\"collection\":\"notes\",\"id\":\"small\"}" >got &&
	test_grep "\"body\":{\"s\":1}" got &&
	vlcall B "$HISTORY" --timeout 60000 >again &&
	check_history again
'

test_expect_success 'setup: the server keeps 240 bodies of 200 KB that B does not sync' '
	server_start s --open &&
	for k in 0 1 2 3 4 5; do
		"$SRVCLIENT" --key-dir "$TEST_DIR/keys/v" changes wide w1 \
		    $((k * 40)) $((k * 40 + 1)) 40 200000 >push.json &&
		req s v POST /v1/push push.json >push.out &&
		test_grep "^200\$" push.out &&
		test_grep "\"version\":$((k * 40 + 40))}\\]}" push.out ||
		return 1
	done &&
	printf "[sync]\ncollections = notes\n" >b.conf &&
	ferryd_stop B &&
	syncd_start B s --config "$TEST_DIR/b.conf" &&
	sync_wait B 60
'

test_expect_success 'the remote trail is verified off the loop too' '
	set -- $(loop_share B "{\"method\":\"io.ferry.History\",\"parameters\":{\"collection\":\"wide\",\"id\":\"w1\"}}") &&
	echo "loop thread: $1 of $2 ticks" &&
	test_equal verified 240 \
	    "$(grep -o "\"verified\":true" "$TEST_DIR/.share" | wc -l)" &&
	test_grep "\"changed_paths\":\\[\"/n\",\"/pad\"\\]" "$TEST_DIR/.share" &&
	test "$2" -ge 20 &&
	test $(($1 * 3)) -lt "$2"
'

test_expect_success 'ferryd stopped mid-History stops cleanly' '
	test_bg "$VLBUSY" "$(ferryd_sock B)" "$HISTORY" --close-after 20000 \
	    >stopped.out </dev/null &&
	busy=$test_bg_pid &&
	# Once the call is sent, a Get answered after it means ferryd has
	# read it too (both connections were ready in that loop turn).
	test_wait_until 10 "grep -q ^sent stopped.out" &&
	fcall B Get "{\"collection\":\"notes\",\"id\":\"small\"}" >got &&
	ferryd_stop B &&
	test_wait_exit "$busy" 30 &&
	test_grep "^EOF\$" stopped.out
'

test_done
