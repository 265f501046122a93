#!/bin/sh
# Guards issue 12 on one machine, with no remote at all: two apps on one
# ferryd see each other's presence (SetPresence, Who, ferryctl who, Watch
# with presence: true); an app's entries go at once when it closes its
# connection cleanly or is killed with SIGKILL, and at the TTL when it
# stays connected but stops refreshing; presence is never written to the
# replica; every bound (state size, entries per connection, update rate)
# is a clear error naming it, a flood is coalesced (the latest state
# wins), and Puts on another connection keep their latency during a flood.

. "$(dirname "$0")/test-lib.sh"

. "$FERRY_SRC_DIR/tests/t/presence-lib.sh"

test_expect_success 'start ferryd (no remote) and a watcher' '
	ferryd_start A &&
	sockA=$(ferryd_sock A) &&
	watcher w1 A
'

test_expect_success 'an app announces itself: the watcher, Who and ferryctl who see it' '
	app ana A notes n1 "{\"user\":\"ana\"}" &&
	test_wait_until 10 "grep -q \"\\\"gone\\\":false\" w1.out" &&
	grep "\"user\":\"ana\"" w1.out >seen.out &&
	test_grep "\"app\":\"presencer\"" seen.out &&
	test_grep "\"collection\":\"notes\"" seen.out &&
	test_grep "\"id\":\"n1\"" seen.out &&
	test_grep "\"local\":true" seen.out &&
	fcall A Who "{\"collection\":\"notes\",\"id\":\"n1\"}" >who.out &&
	test_grep "\"state\":{\"user\":\"ana\"}" who.out &&
	ctl A who notes >who.txt &&
	cat who.txt &&
	test_grep "presencer.*notes/n1.*{\"user\":\"ana\"}" who.txt &&
	ctl A --json who other >who-other.out &&
	test_grep "^{\"present\":\[\]}$" who-other.out
'

test_expect_success 'a second app sees the first in its own Watch, as it starts' '
	watcher w2 A &&
	test_wait_until 10 "grep -q \"\\\"user\\\":\\\"ana\\\"\" w2.out"
'

test_expect_success 'presence is never written to the replica' '
	fcall A Status >st.out &&
	test_equal "docs" 0 "$(json_int docs st.out)" &&
	test_equal "seq" 0 "$(json_int seq st.out)" &&
	test "$(sqlite3 "$(ferryd_datadir A)/replica.db" \
	    "SELECT count(*) FROM docs")" = 0
'

# The bounds below are generous (the CI machine is 2 shared cores): the
# figures themselves are bench/presence.sh's.
test_expect_success 'a clean disconnect: gone at once (well within 3 s)' '
	t0=$(date +%s%3N) &&
	app_close ana &&
	test_wait_until 10 "grep -q \"\\\"gone\\\":true\" w1.out" &&
	t1=$(grep "\"gone\":true" w1.out | head -n 1 | cut -d" " -f1) &&
	echo "gone after $((t1 - t0)) ms" &&
	test $((t1 - t0)) -lt 3000 &&
	test_wait_exit $app_pid_ana &&
	fcall A Who >who.out &&
	test_grep "^{\"parameters\":{\"present\":\[\]}}$" who.out
'

test_expect_success 'an app killed with SIGKILL: gone at once' '
	app bo A notes n2 "{\"user\":\"bo\"}" &&
	test_wait_until 10 "grep -q \"\\\"user\\\":\\\"bo\\\".*\\\"gone\\\":false\" w1.out" &&
	kill -9 $app_pid_bo &&
	test_wait_exit $app_pid_bo &&
	test_wait_until 5 "grep -q \"\\\"user\\\":\\\"bo\\\".*\\\"gone\\\":true\" w1.out"
'

test_expect_success 'state over 1024 bytes: InvalidArgument naming state and the limit' '
	big=$(printf "%01100d" 0) &&
	fcall A SetPresence "{\"collection\":\"notes\",\"state\":{\"s\":\"$big\"}}" >big.out &&
	test_grep "\"error\":\"io.ferry.InvalidArgument\"" big.out &&
	test_grep "\"field\":\"state\"" big.out &&
	test_grep "the limit is 1024" big.out &&
	fcall A SetPresence "{\"collection\":\"bad name\"}" >bad.out &&
	test_grep "\"field\":\"collection\"" bad.out &&
	fcall A Who "{\"id\":\"n1\"}" >bad2.out &&
	test_grep "an id needs its collection" bad2.out &&
	fcall A SetPresence "{\"collection\":\"notes\",\"state\":[1]}" >bad3.out &&
	test_grep "InvalidParameter" bad3.out &&
	ferryd_works A
'

test_expect_success 'more than 16 entries on one connection: LimitExceeded presence_entries' '
	i=0 && : >many.in &&
	while [ $i -lt 17 ]; do
		printf "{\"method\":\"io.ferry.SetPresence\",\"parameters\":{\"collection\":\"notes\",\"id\":\"d$i\",\"state\":{}}}\0" >>many.in
		i=$((i + 1))
	done &&
	"$VLSEND" "$sockA" -n 17 <many.in >many.out &&
	test "$(grep -c "^{\"parameters\":{}}$" many.out)" = 16 &&
	test_grep "\"error\":\"io.ferry.LimitExceeded\",\"parameters\":{\"limit\":\"presence_entries\",\"max\":16," many.out &&
	test_grep "already holds 16 presence entries" many.out
'

test_expect_success 'a flood: LimitExceeded presence_rate, coalesced, the latest state wins' '
	watcher w3 A &&
	"$PRESENCER" "$sockA" flood flood 2000 >flood.out &&
	cat flood.out &&
	test_grep "^ok [0-9]* limited [1-9][0-9]* last [0-9]*$" flood.out &&
	test_grep "^error: io.ferry.LimitExceeded: more than 100 SetPresence calls a second" flood.out &&
	last=$(sed -n "s/^ok .* last \([0-9]*\)$/\1/p" flood.out) &&
	ok=$(sed -n "s/^ok \([0-9]*\) .*/\1/p" flood.out) &&
	test_wait_until 10 "grep -q \"\\\"collection\\\":\\\"flood\\\".*\\\"gone\\\":true\" w3.out" &&
	told=$(grep -c "\"collection\":\"flood\".*\"gone\":false" w3.out) &&
	echo "accepted $ok, watchers told $told" &&
	test $told -lt $((ok / 2)) &&
	grep "\"collection\":\"flood\".*\"gone\":false" w3.out | tail -n 1 >last.out &&
	test_grep "\"state\":{\"n\":$last}" last.out
'

test_expect_success 'Puts on another connection keep their latency during a presence flood' '
	"$PRESENCER" "$sockA" puts 200 >base.out &&
	cat base.out &&
	test_bg "$PRESENCER" "$sockA" flood f1 100000000 </dev/null >/dev/null 2>&1 &&
	f1=$test_bg_pid &&
	test_bg "$PRESENCER" "$sockA" flood f2 100000000 </dev/null >/dev/null 2>&1 &&
	f2=$test_bg_pid &&
	"$PRESENCER" "$sockA" puts 200 >flood-puts.out &&
	kill $f1 $f2 && test_wait_exit $f1 && test_wait_exit $f2 &&
	cat flood-puts.out &&
	b99=$(sed -n "s/.* p99 \([0-9]*\)\..*/\1/p" base.out) &&
	f99=$(sed -n "s/.* p99 \([0-9]*\)\..*/\1/p" flood-puts.out) &&
	test "$f99" -le $((b99 * 4 + 50))
'

test_expect_success 'TTL: an entry not set again goes after presence_ttl, with its app still connected' '
	printf "[ferryd]\npresence_ttl = 3\n" >ttl.conf &&
	ferryd_start B --config "$PWD/ttl.conf" &&
	watcher wb B &&
	app cy B notes n3 "{\"user\":\"cy\"}" &&
	test_wait_until 10 "grep -q \"\\\"gone\\\":false\" wb.out" &&
	t0=$(grep "\"gone\":false" wb.out | head -n 1 | cut -d" " -f1) &&
	test_wait_until 10 "grep -q \"\\\"gone\\\":true\" wb.out" &&
	t1=$(grep "\"gone\":true" wb.out | head -n 1 | cut -d" " -f1) &&
	echo "gone after $((t1 - t0)) ms" &&
	test $((t1 - t0)) -ge 2900 && test $((t1 - t0)) -lt 6000 &&
	ferryd_running B &&
	app_close cy &&
	test_wait_exit $app_pid_cy
'

test_expect_success 'TTL: an app that sets it again every second keeps it' '
	watcher wb2 B &&
	app dee B notes n4 "{\"user\":\"dee\"}" 1000 &&
	test_wait_until 10 "grep -q \"\\\"gone\\\":false\" wb2.out" &&
	test_wait_until 10 "ctl B --json who notes n4 | grep -q dee" &&
	t0=$(date +%s) &&
	test_poll 6 "test \$((\$(date +%s) - $t0)) -ge 5" &&
	ctl B --json who notes n4 >who4.out &&
	test_grep "\"user\":\"dee\"" who4.out &&
	! grep -q "\"gone\":true" wb2.out &&
	app_close dee &&
	test_wait_exit $app_pid_dee
'

test_expect_success 'stop cleanly with presence watchers connected' '
	ferryd_stop A &&
	ferryd_stop B
'

test_done
