#!/bin/sh
# Selective sync (issue 13, "Per-collection access and selective sync").
# Bug guarded: every device pulled every collection and pushed every
# local change; a device could not be told to sync only some of them.
# Now ferryd syncs only the collections ferryd.conf's [sync] collections
# names: told two of five, it stores only those two; a collection added
# at run time (`ferryctl sync --collections`) is pulled from its start
# without pulling the others again (counted: the rows the server sent);
# the setting persists across restarts; changes to collections it does
# not sync stay in the outbox and never reach the server, counted by
# Status and `ferryctl status` as local only, and go once their
# collection is added; a page the server stopped reading at its bound
# of rows it does not send (--max-scan 100: it stops after 100 of them,
# whatever the page's limit; some 2400 such rows lie in between) is not
# taken for the end of the log, so
# `sync --wait` still returns only once all is pulled (bug guarded:
# pull_more in sync_pull.c counted such a page, empty but not full, as
# caught up, and Sync(wait) answered with the change past the bound not
# pulled).  Bad sets are refused naming what is wrong.

. "$(dirname "$0")/fault-lib.sh"

command -v sqlite3 >/dev/null 2>&1 || skip_all "sqlite3 is missing"

# sent SERVER: the changes the server has sent (its debug log, "N changes
# sent"), summed: only ferryd D pulls in this script.
sent() {
	sed -n 's/.*changes: since=[0-9]*: \([0-9]*\) changes sent.*/\1/p' \
	    "$(server_log "$1")" | awk '{ n += $1 } END { print n + 0 }'
}

# cursor NAME: the pull cursor in NAME's replica (meta "pull_cursor").
cursor() {
	sqlite3 "$(ferryd_datadir "$1")/replica.db" \
	    "SELECT value FROM meta WHERE key = 'pull_cursor'"
}

# stopped_short SERVER: how many pages the server sent empty though it
# read rows (last_seq past since): pages that stopped at its bound.
stopped_short() {
	sed -n 's/.*changes: since=\([0-9]*\): 0 changes sent, last_seq \([0-9]*\).*/\1 \2/p' \
	    "$(server_log "$1")" | awk '$2 > $1 { n++ } END { print n + 0 }'
}

# count NAME C: how many documents replica NAME lists in C.
count() {
	fcall "$1" List "{\"collection\":\"$2\"}" >"$TEST_DIR/.list" &&
	grep -o '"collection":"'"$2"'"' "$TEST_DIR/.list" | wc -l
}

test_expect_success 'setup: a server holding 3 documents in each of c1..c5' '
	server_start s --open &&
	_items="" && _seq=0 &&
	for c in c1 c2 c3 c4 c5; do
		for i in 1 2 3; do
			_seq=$((_seq + 1)) &&
			_items="$_items $(item bob put $c d$i 0 $_seq "{\"in\":\"$c\"}")" ||
			return 1
		done
	done &&
	push s bob $_items >out &&
	test "$(grep -o "\"status\":\"applied\"" out | wc -l)" -eq 15
'

test_expect_success 'a device told to sync two of five collections stores only those two' '
	printf "[sync]\ncollections = c2, c1\n" >d.conf &&
	syncd_start D s --config "$TEST_DIR/d.conf" &&
	sync_wait D &&
	test "$(count D c1)" -eq 3 && test "$(count D c2)" -eq 3 &&
	test "$(count D c3)" -eq 0 && test "$(count D c4)" -eq 0 &&
	test "$(count D c5)" -eq 0 &&
	test "$(sent s)" -eq 6 &&
	grep "changes?since=0&.*collections=c1,c2" "$(server_log s)"
'

test_expect_success 'changes to a collection not synced stay in the outbox, counted as local only' '
	put_ok D c4 mine "{\"local\":true}" &&
	put_ok D c1 shared "{\"local\":false}" &&
	sync_wait D &&
	server_doc s c1 shared >out && status_is 200 out &&
	server_doc s c4 mine >out && status_is 404 out &&
	status_of D >st &&
	test_grep "\"collections\":\[\"c1\",\"c2\"\]" st &&
	test "$(json_int local_only <st)" -eq 1 &&
	test "$(json_int pending <st)" -eq 1 &&
	ctl_bounded 30 D status >out &&
	test_grep "^local only: *1 " out &&
	test_grep "^collections: *c1, c2 " out
'

test_expect_success 'adding c3 at run time pulls it from its start, and nothing of c1, c2 again' '
	before=$(sent s) &&
	ctl_bounded 30 D sync --wait --collections c1,c2,c3 >out &&
	test "$(count D c3)" -eq 3 &&
	test "$(count D c1)" -eq 4 && test "$(count D c5)" -eq 0 &&
	test "$(( $(sent s) - before ))" -eq 3 &&
	grep "collections=c1:[0-9]*,c2:[0-9]*,c3" "$(server_log s)" &&
	server_doc s c4 mine >out && status_is 404 out
'

test_expect_success 'the set persists across a restart and wins over ferryd.conf' '
	ferryd_stop D &&
	syncd_start D s --config "$TEST_DIR/d.conf" &&
	sync_wait D &&
	status_of D >st &&
	test_grep "\"collections\":\[\"c1\",\"c2\",\"c3\"\]" st &&
	before=$(sent s) &&
	push s bob "$(item bob put c3 d9 0 16 "{\"late\":1}")" \
	    "$(item bob put c5 d9 0 17 "{\"late\":1}")" >out &&
	sync_wait D &&
	test "$(count D c3)" -eq 4 && test "$(count D c5)" -eq 0 &&
	test "$(( $(sent s) - before ))" -eq 1
'

test_expect_success 'adding c4 sends its local-only change' '
	ctl_bounded 30 D sync --wait --collections c1,c2,c3,c4 >out &&
	server_doc s c4 mine >out && status_is 200 out &&
	test "$(count D c4)" -eq 4 &&
	status_of D >st && test "$(json_int local_only <st)" -eq 0
'

test_expect_success '"*" syncs everything again, pulling only c5' '
	before=$(sent s) &&
	ctl_bounded 30 D sync --wait --collections "*" >out &&
	test "$(count D c5)" -eq 4 &&
	test "$(( $(sent s) - before ))" -eq 4 &&
	status_of D >st && test_grep ! "local_only" st
'

# The page that stops at the bound must be the first one a Sync(wait)
# counts, and the next page must come back only once it is applied (else
# the next page, fetched while the first is applied, holds the answer
# back by chance).  So F is held paused (its key revoked: a definitive
# refusal, no retry of its own) from its start until the bound is in
# place and its key is allowed again: the Sync below resumes it, and its
# first pull reads 1000 rows of bulk, none of them sent.  faultproxy
# holds the reply to the second pull until F's replica has applied the
# first page (its pull cursor is at the bound).  The Sync reply's status
# counts F's documents when it was answered: "after" must be among them.
test_expect_success 'a page'"'"'s bound of other changes in between: sync --wait still gets all' '
	printf "[sync]\ncollections = c1\n" >f.conf &&
	syncd_start F s --config "$TEST_DIR/f.conf" &&
	sync_wait F && KF=$(ctl F key) && test -n "$KF" && ferryd_stop F &&
	c0=$(cursor F) && test "$c0" -gt 0 &&
	syncd_start W s &&
	{ "$VLSEND" "$(ferryd_sock W)" --pipeline 2400 --timeout 60000 \
	    --collection bulk --prefix b >burst.out ||
	    { cat burst.out; false; }; } &&
	test_grep "^ok 2400 replies in order\$" burst.out &&
	sync_wait W 60 && ferryd_stop W &&
	push s bob "$(item bob put c1 after 0 18 "{\"after\":\"bulk\"}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	server_stop s && server_start s --open --max-scan 100 &&
	proxy_start px s &&
	server_admin s revoke "$KF" --reason "held for the test" >/dev/null &&
	ferryd_start F --remote "$(proxy_url px)" --config "$TEST_DIR/f.conf" &&
	test_wait_until 30 "ctl F status >st && grep -q \"^state: *paused\" st" &&
	proxy_ctl px "set /v1/changes hold" >/dev/null &&
	proxy_ctl px "set /v1/changes pass 1" >/dev/null &&
	server_admin s unrevoke "$KF" >/dev/null &&
	printf "%s\0" "{\"method\":\"io.ferry.Sync\",\"parameters\":{\"wait\":true}}" >sync.in &&
	test_bg "$VLSEND" "$(ferryd_sock F)" -n 1 --timeout 120000 \
	    <sync.in >sync.out &&
	syncer=$test_bg_pid &&
	test_wait_until 60 "grep -q \"held GET /v1/changes?since=$((c0 + 100))&\" \"$(proxy_log px)\"" &&
	test_wait_until 60 "test \"\$(cursor F)\" = $((c0 + 100))" &&
	proxy_ctl px "set /v1/changes pass" >/dev/null &&
	proxy_ctl px release >/dev/null &&
	test_wait_exit "$syncer" 130 && cat sync.out &&
	test_grep "^{\"parameters\":{\"status\":{" sync.out &&
	get F c1 after >out && test_grep "\"after\":\"bulk\"" out &&
	test "$(json_int docs <sync.out)" -eq "$(count F c1)" &&
	test "$(count F bulk)" -eq 0 &&
	test "$(stopped_short s)" -ge 1
'

test_expect_success 'bad sets are refused, naming what is wrong; the daemon keeps running' '
	test_expect_code 1 ctl_bounded 30 D sync --collections "c1,a/b" 2>err &&
	test_grep "collections.*the collection .a/b. contains byte" err &&
	test_expect_code 1 ctl_bounded 30 D sync --collections "c1,,c2" 2>err &&
	test_grep "empty" err &&
	test_expect_code 1 ctl_bounded 30 D sync --collections "c1,*" 2>err &&
	test_grep "cannot be given with names" err &&
	ferryd_running D &&
	printf "[sync]\ncollections = ok, bad/name\n" >bad.conf &&
	! ferryd_start E --config "$TEST_DIR/bad.conf" >start.out 2>&1 &&
	test_grep "bad.conf:2: collections: .*bad/name" "$(ferryd_log E)"
'

test_done
