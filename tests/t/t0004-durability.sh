#!/bin/sh
# Guards "acknowledged means durable": a write ferryd acknowledged survives
# kill -9 of the daemon, intact (exact rev and body); a write in flight at
# the kill either fully happened or not at all; the change log stays
# gapless (Watch since=0 replays seq 1..N, one change per write); and the
# replica passes PRAGMA integrity_check after it all.
#
# Each round: durawriter pipelines Puts, ferryd gets SIGKILL after a random
# delay (the sleep is the fault injection, not synchronisation), ferryd
# restarts on the same data directory, and that round's log is verified;
# every 10th round and at the end, every log so far.  Reproduce a failure
# with FERRY_TEST_SEED (printed below); FERRY_DURABILITY_ROUNDS (default 50)
# and FERRY_DURABILITY_WRITES (per round, default 5000: more than a
# writer gets through before the kill) size the run.

. "$(dirname "$0")/test-lib.sh"

[ -x "$DURAWRITER" ] || skip_all "durawriter is not built"

seed=${FERRY_TEST_SEED:-1763856000}
rounds=${FERRY_DURABILITY_ROUNDS:-50}
writes=${FERRY_DURABILITY_WRITES:-5000}
echo "# seed $seed, $rounds rounds of up to $writes writes"

# A linear congruential generator, so a seed replays the same delays.
rand_state=$((seed % 2147483648))
# next_delay: set delay to the next pseudo-random 3..200 (ms).
next_delay() {
	rand_state=$(( (rand_state * 1103515245 + 12345) % 2147483648 ))
	delay=$(( 3 + (rand_state / 65536) % 198 ))
}

sock=$(ferryd_sock D)
acked_total=0
present_total=0

# verify_logs FILE...: every write in the logs is as it should be.
verify_logs() {
	"$DURAWRITER" "$sock" --verify "$@" >verify.out
	_st=$?
	head -n 20 verify.out
	[ $_st = 0 ] && test_grep "^verified " verify.out
}

# The number of documents must be exactly what the logs account for.
check_doc_count() {
	fcall D Status >status &&
	test_equal "documents" $((acked_total + present_total)) \
	    "$(json_int docs status)"
}

test_expect_success 'start ferryd' '
	ferryd_start D
'

round=1
while [ $round -le "$rounds" ]; do
	next_delay
	test_expect_success "round $round: kill -9 after $delay ms, restart, verify" '
		"$DURAWRITER" "$sock" --prefix "r$round" --log "log.$round" \
		    --count "$writes" >"writer.$round" 2>&1 &
		wpid=$! &&
		test_track $wpid &&
		sleep "$(printf "%d.%03d" $((delay / 1000)) $((delay % 1000)))" &&
		ferryd_kill9 D &&
		test_wait_exit $wpid 20 &&
		test_equal "writer status" 0 "$test_exit_status" &&
		test_grep "^wrote [0-9]" "writer.$round" &&
		touch "log.$round" &&
		test_grep ! "^!" "log.$round" &&
		test -S "$sock" &&
		ferryd_start D &&
		verify_logs "log.$round" &&
		n=$(sed -n "s/^verified \([0-9]*\) acknowledged.*/\1/p" verify.out) &&
		p=$(sed -n "s/.*(\([0-9]*\) present)$/\1/p" verify.out) &&
		test_equal "acknowledged" "$(sed -n "s/^wrote //p" "writer.$round")" "$n" &&
		acked_total=$((acked_total + n)) &&
		present_total=$((present_total + p)) &&
		check_doc_count &&
		if [ $((round % 10)) = 0 ]; then
			verify_logs $(i=1; while [ $i -le $round ]; do
			    echo "log.$i"; i=$((i + 1)); done)
		fi
	'
	round=$((round + 1))
done

test_expect_success 'writes were acknowledged, and some were killed in flight' '
	cat log.* | grep -c "^?" >inflight
	echo "acknowledged $acked_total; in flight at a kill $(cat inflight)," \
	    "of which present $present_total" &&
	test "$acked_total" -gt 0 &&
	if [ "$rounds" -ge 5 ]; then
		test "$(cat inflight)" -gt 0
	fi
'

test_expect_success 'every acknowledged write of every round is intact' '
	verify_logs log.* &&
	check_doc_count
'

test_expect_success 'Watch since=0 replays the change log 1..N without a gap' '
	fcall D Status >status &&
	head=$(json_int seq status) &&
	test_equal "change log head" $((acked_total + present_total)) "$head" &&
	printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":{\"since\":0},\"more\":true}" |
	    "$VLSEND" "$sock" -n $((head + 1)) --timeout 60000 >watch.out &&
	test "$(tail -n 1 watch.out)" = DONE &&
	head -n 1 watch.out >ready &&
	test_grep "\"ready\":true" ready &&
	test "$(json_int seq ready)" = "$head" &&
	grep "\"event\":" watch.out | grep -o "\"seq\":[0-9]*" |
	    cut -d: -f2 >seqs &&
	check_run seqs 1 "$head" &&
	test "$(grep -c "\"origin\":\"local\"" watch.out)" = "$head"
'

# durawriter runs PRAGMA integrity_check only when built with sqlite3.
"$DURAWRITER" --integrity /dev/null >/dev/null 2>&1
[ $? != 77 ] && test_set_prereq INTEGRITY

test_expect_success 'stop ferryd' '
	ferryd_stop D
'

test_expect_success INTEGRITY 'the replica passes PRAGMA integrity_check' '
	"$DURAWRITER" --integrity "$(ferryd_datadir D)/replica.db" >integrity.out
	status=$?
	cat integrity.out &&
	test $status = 0 &&
	test_grep "^integrity ok$" integrity.out
'

test_done
