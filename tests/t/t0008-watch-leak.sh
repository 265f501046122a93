#!/bin/sh
# Guards issue 8, break 3: a Watch client that exits (or crashes, or calls
# ferry_close) kept its connection slot until an event arrived for its
# collections; with max_connections reached nobody could write, so no event
# ever came and ferryd refused every client until restarted.  The close of
# a connection must end it at once and cancel its calls, streaming or not:
# 1,000 watchers that exit leave "watchers": 0 within 1 s, and with
# max_connections = 5, 50 watchers killed with SIGKILL do not lock out a
# writer.  A client that only half-closes (no more calls) still gets its
# stream, and its slot goes when it closes for good.

. "$(dirname "$0")/test-lib.sh"

WATCHERS=$FERRY_BUILD_DIR/tests/tools/watchers
sock=

# watchers_now: the "watchers" count of a Status call.
watchers_now() {
	fcall A Status >st.out && json_int watchers st.out
}

# gone_count: how many documents of the collection "gone" List shows.
gone_count() {
	fcall A List '{"collection":"gone","limit":1000}' >list.out &&
	grep -o '"id":"g[0-9]*"' list.out | wc -l
}

test_expect_success 'start ferryd' '
	ferryd_start A &&
	sock=$(ferryd_sock A) &&
	test "$(watchers_now)" = 0
'

# The watchers tool closes its 1,000 sockets when its stdin ends, that is
# when the left side of the pipe has seen them all and asked Status.
test_expect_success '1,000 watchers that exit leave watchers: 0 within 1 s' '
	{
		test_wait_until 120 "grep -qx \"ready 1000\" w.out" &&
		fcall A Status >st1000.out
	} | "$WATCHERS" "$sock" 1000 --count 1000 --timeout 120000 >w.out;
	st=$? &&
	cat w.out &&
	test_equal "watchers while open" 1000 "$(json_int watchers st1000.out)" &&
	test_grep "^watchers 0 after [0-9]* ms$" w.out &&
	test $st = 0 &&
	ferryd_works A
'

test_expect_success 'a half-closed watcher still gets its events' '
	printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":{\"collections\":[\"hc\"]},\"more\":true}" |
	    "$VLSEND" "$sock" --half-close -n 2 --timeout 30000 >hc.out 2>&1 &
	hp=$! &&
	test_track $hp &&
	test_wait_until 10 "grep -q \"ready\" hc.out" &&
	fcall A Put "{\"collection\":\"hc\",\"id\":\"a\",\"body\":{\"v\":1}}" >/dev/null &&
	test_wait_exit $hp 30 &&
	cat hc.out &&
	test_grep "\"event\":{.*\"id\":\"a\"" hc.out &&
	test "$(tail -n 1 hc.out)" = DONE
'

test_expect_success '50 half-closed watchers that then exit leave watchers: 0 within 1 s' '
	{
		test_wait_until 60 "grep -qx \"ready 50\" hw.out" &&
		fcall A Status >st50.out
	} | "$WATCHERS" "$sock" 50 --half-close --count 1000 --timeout 60000 \
	    >hw.out;
	st=$? &&
	cat hw.out &&
	test_equal "half-closed watchers are still watching" 50 \
	    "$(json_int watchers st50.out)" &&
	test_grep "^watchers 0 after [0-9]* ms$" hw.out &&
	test $st = 0
'

# The calls a client sent before it left are read before its close is
# seen; closing at once must not lose the writes among them or trip over
# their replies coming back to a connection that is gone.
test_expect_success 'Puts sent just before the client closed still commit' '
	i=0 &&
	: >puts.bin &&
	while [ $i -lt 100 ]; do
		printf "%s\0" "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"gone\",\"id\":\"g$i\",\"body\":{\"i\":$i}}}" >>puts.bin
		i=$((i + 1))
	done &&
	"$VLSEND" "$sock" --timeout 1 <puts.bin >gone.out &&
	test_wait_until 10 "[ \"\$(gone_count)\" -eq 100 ]" &&
	test_grep "\"id\":\"g99\",.*\"body\":{\"i\":99}" list.out &&
	ferryd_works A
'

test_expect_success 'restart ferryd with max_connections = 5' '
	ferryd_stop A &&
	printf "[ferryd]\nmax_connections = 5\n" >five.conf &&
	ferryd_start A --config "$TEST_DIR/five.conf" &&
	test "$(watchers_now)" = 0
'

# Each round fills every slot with watchers and kills them (SIGKILL, from
# the tool itself once all 5 are ready); the next round can only connect
# if ferryd let the dead ones go.
test_expect_success 'with max_connections = 5, 50 crashed watchers do not lock out a writer' '
	round=1 &&
	while [ $round -le 10 ]; do
		"$WATCHERS" "$sock" 5 --crash --timeout 10000 >round.out 2>&1
		st=$?
		if [ $st != 137 ] || ! grep -qx "ready 5" round.out; then
			echo "round $round: exit $st"
			cat round.out
			return 1
		fi
		round=$((round + 1))
	done &&
	test_wait_until 5 "echo \"{\\\"w\\\":1}\" | ctl A put notes w - >put.out 2>&1" &&
	cat put.out &&
	test_grep "rev 1" put.out &&
	test_wait_until 5 "[ \"\$(watchers_now)\" = 0 ]" &&
	ferryd_running A &&
	test_grep ! "Too many open files" "$(ferryd_log A)"
'

test_expect_success 'stop ferryd' '
	ferryd_stop A
'

test_done
