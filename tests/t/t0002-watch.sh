#!/bin/sh
# Guards Watch: another client sees every local change as an event
# (origin local, with the body) right after it is acknowledged; Watch with
# since replays exactly the changes after since and then goes on live with
# no gap and no duplicate, even while writes race the switch from replay to
# live; the collection filter; and the refusals (no "more", since beyond
# the head, bad names).

. "$(dirname "$0")/test-lib.sh"

sock=
# watch_bg OUT N PARAMS: a background watcher that stops after N replies
# (the ready reply included); its pid is in $wpid.
watch_bg() {
	# Empty OUT first: the redirection below happens in the background,
	# and the wait must not see an earlier watcher's ready line.
	: >"$1"
	printf '%s\0' "{\"method\":\"io.ferry.Watch\",\"parameters\":$3,\"more\":true}" |
	    "$VLSEND" "$sock" -n "$2" --timeout 30000 >"$1" 2>&1 &
	wpid=$!
	test_track $wpid
	test_wait_until 10 "grep -q '\"ready\":true' '$1'"
}

# watch_done OUT: the watcher got all it waited for.
watch_done() {
	test_wait_exit $wpid 30 &&
	if [ "$(tail -n 1 "$1")" != DONE ]; then
		echo "watcher did not get its replies:"
		cat "$1"
		return 1
	fi
}

put() {
	fcall A Put "{\"collection\":\"$1\",\"id\":\"$2\",\"body\":$3}"
}

# seqs OUT: the seq of every event, one a line.
seqs() {
	grep "\"event\":" "$1" | grep -o "\"seq\":[0-9]*" | cut -d: -f2
}

test_expect_success 'start ferryd' '
	ferryd_start A &&
	sock=$(ferryd_sock A)
'

test_expect_success 'Watch confirms with ready and the head seq' '
	put notes a "{\"v\":1}" >/dev/null &&
	put notes b "{\"v\":1}" >/dev/null &&
	watch_bg w.out 1 "{}" &&
	watch_done w.out &&
	test "$(grep -c . w.out)" = 2 &&
	test_grep "\"continues\":true" w.out &&
	test "$(json_int seq w.out)" = 2
'

test_expect_success 'a second client sees a Put as a local event' '
	watch_bg w.out 2 "{}" &&
	put notes c "{\"title\":\"hello\"}" >put.out &&
	watch_done w.out &&
	sed -n 2p w.out >ev &&
	test_grep "^{\"parameters\":{\"event\":{" ev &&
	test_grep "\"continues\":true" ev &&
	test "$(json_int seq ev)" = 3 &&
	test_grep "\"collection\":\"notes\"" ev &&
	test_grep "\"id\":\"c\"" ev &&
	test "$(json_int rev ev)" = 1 &&
	test "$(json_int version ev)" = 0 &&
	test_grep "\"deleted\":false" ev &&
	test_grep "\"origin\":\"local\"" ev &&
	test_grep "\"body\":{\"title\":\"hello\"}" ev
'

test_expect_success 'Patch and Delete events carry the new body and the tombstone' '
	watch_bg w.out 3 "{}" &&
	fcall A Patch "{\"collection\":\"notes\",\"id\":\"c\",\"patch\":{\"x\":1}}" >/dev/null &&
	fcall A Delete "{\"collection\":\"notes\",\"id\":\"c\"}" >/dev/null &&
	watch_done w.out &&
	sed -n 2p w.out >ev1 && sed -n 3p w.out >ev2 &&
	test "$(json_int seq ev1)" = 4 &&
	test "$(json_int rev ev1)" = 2 &&
	test_grep "\"body\":{\"title\":\"hello\",\"x\":1}" ev1 &&
	test "$(json_int seq ev2)" = 5 &&
	test "$(json_int rev ev2)" = 3 &&
	test_grep "\"deleted\":true" ev2 &&
	test_grep ! "\"body\":{" ev2
'

test_expect_success 'a write that changes nothing is no event' '
	watch_bg w.out 2 "{}" &&
	put notes a "{\"v\":1}" >/dev/null &&
	put notes a "{\"v\":2}" >/dev/null &&
	watch_done w.out &&
	sed -n 2p w.out >ev &&
	test "$(json_int seq ev)" = 6 &&
	test_grep "\"body\":{\"v\":2}" ev
'

test_expect_success 'every watcher gets the event' '
	watch_bg w1.out 2 "{}" && w1=$wpid &&
	watch_bg w2.out 2 "{}" && w2=$wpid &&
	put notes d "{}" >/dev/null &&
	wpid=$w1 && watch_done w1.out &&
	wpid=$w2 && watch_done w2.out &&
	test "$(seqs w1.out)" = 7 &&
	test "$(seqs w2.out)" = 7
'

test_expect_success 'Watch since replays exactly the changes after since' '
	watch_bg w.out 5 "{\"since\":3}" &&
	watch_done w.out &&
	test "$(json_int seq w.out)" = 7 &&
	seqs w.out >got &&
	printf "4\n5\n6\n7\n" >want &&
	test_cmp want got &&
	sed -n 2p w.out >ev &&
	test_grep "\"id\":\"c\"" ev &&
	test_grep "\"origin\":\"local\"" ev
'

test_expect_success 'Watch since=head replays nothing, then goes live' '
	watch_bg w.out 2 "{\"since\":7}" &&
	put notes e "{}" >/dev/null &&
	watch_done w.out &&
	test "$(seqs w.out)" = 8
'

test_expect_success 'replay then live: no gap, no duplicate, writes racing' '
	"$VLSEND" "$sock" --pipeline 4000 --prefix pre --timeout 60000 \
	    >pre.out &&
	test_grep "^ok 4000 replies in order$" pre.out &&
	fcall A Status >st &&
	head=$(json_int seq st) &&
	test "$head" = 2008 &&
	test_bg "$VLSEND" "$sock" --pipeline 3000 --prefix race \
	    --timeout 60000 >race.out &&
	writer=$test_bg_pid &&
	watch_bg w.out $((1 + 2008 + 1500 - 5)) "{\"since\":5}" &&
	watch_done w.out &&
	test_wait_exit $writer &&
	test_grep "^ok 3000 replies in order$" race.out &&
	seqs w.out >got &&
	check_run got 6 3508
'

test_expect_success 'collection filter: only the named collections' '
	watch_bg w.out 3 "{\"collections\":[\"b\",\"c\"]}" &&
	put a 1 "{}" >/dev/null &&
	put b 1 "{}" >/dev/null &&
	put a 2 "{}" >/dev/null &&
	put c 1 "{}" >/dev/null &&
	watch_done w.out &&
	grep "\"event\":" w.out | grep -o "\"collection\":\"[a-z]*\"" >got &&
	printf "\"collection\":\"b\"\n\"collection\":\"c\"\n" >want &&
	test_cmp want got &&
	seqs w.out >got &&
	printf "3510\n3512\n" >want &&
	test_cmp want got
'

test_expect_success 'collection filter applies to the replay too' '
	watch_bg w.out 3 "{\"collections\":[\"a\"],\"since\":3508}" &&
	watch_done w.out &&
	seqs w.out >got &&
	printf "3509\n3511\n" >want &&
	test_cmp want got
'

test_expect_success 'an empty collections list means all' '
	watch_bg w.out 2 "{\"collections\":[]}" &&
	put zz 1 "{}" >/dev/null &&
	watch_done w.out &&
	test "$(seqs w.out)" = 3513
'

test_expect_success 'Watch without more is ExpectedMore' '
	fcall A Watch >out &&
	test_grep "^{\"error\":\"org.varlink.service.ExpectedMore\"" out
'

test_expect_success 'Watch refuses since beyond the head, and bad names' '
	printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":{\"since\":99999},\"more\":true}" |
	    "$VLSEND" "$sock" -n 1 >out &&
	test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" out &&
	test_grep "\"field\":\"since\"" out &&
	for p in "{\"since\":-1}" "{\"collections\":[\"a/b\"]}"; do
		printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":$p,\"more\":true}" |
		    "$VLSEND" "$sock" -n 1 >out &&
		test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" out || return 1
	done &&
	for p in "{\"since\":\"1\"}" "{\"collections\":\"a\"}" \
	    "{\"collections\":[1]}"; do
		printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":$p,\"more\":true}" |
		    "$VLSEND" "$sock" -n 1 >out &&
		test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\"" out || return 1
	done &&
	ferryd_works A
'

test_expect_success 'after a restart, Watch since resumes where it left off' '
	ferryd_stop A &&
	ferryd_start A &&
	watch_bg w.out 4 "{\"since\":3511}" &&
	put after restart "{}" >/dev/null &&
	watch_done w.out &&
	test_equal "head seq" 3513 "$(json_int seq w.out)" &&
	seqs w.out >got &&
	printf "3512\n3513\n3514\n" >want &&
	test_cmp want got
'

test_expect_success 'Status with more streams a new status when it changes' '
	printf "%s\0" "{\"method\":\"io.ferry.Status\",\"more\":true}" >st.call &&
	test_bg "$VLSEND" "$sock" -n 2 <st.call >st.out &&
	sp=$test_bg_pid &&
	test_wait_until 10 "grep -q status st.out" &&
	docs=$(json_int docs st.out) &&
	put statusdoc 1 "{}" >/dev/null &&
	test_wait_exit $sp &&
	test "$(tail -n 1 st.out)" = DONE &&
	sed -n 2p st.out >st2 &&
	test_grep "\"continues\":true" st2 &&
	test_equal docs $((docs + 1)) "$(json_int docs st2)"
'

[ -x "$DURAWRITER" ] && test_set_prereq DURAWRITER

# A watcher that stops reading while 5000 events of 2 KB pile up overflows
# the daemon's per-watcher output cap; it must then catch up from the log.
test_expect_success DURAWRITER 'a slow watcher catches up without a gap' '
	fcall A Status >st &&
	head=$(json_int seq st) &&
	printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":{},\"more\":true}" >watch.call &&
	test_bg "$VLSEND" "$sock" -n 5001 --timeout 60000 --hold-until go \
	    <watch.call >slow.out 2>&1 &&
	wpid=$test_bg_pid &&
	test_wait_until 10 "grep -q ready slow.out" &&
	"$DURAWRITER" "$sock" --prefix slow --log slow.log --count 5000 \
	    --size 2000 >writer.out &&
	test_grep "^wrote 5000$" writer.out &&
	touch go &&
	watch_done slow.out &&
	seqs slow.out >got &&
	check_run got $((head + 1)) $((head + 5000)) &&
	ferryd_works A
'

test_expect_success 'stop cleanly with a watcher connected' '
	watch_bg w.out 5 "{}" &&
	ferryd_stop A &&
	test_wait_exit $wpid &&
	test "$(tail -n 1 w.out)" = EOF
'

test_done
