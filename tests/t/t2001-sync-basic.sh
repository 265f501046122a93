#!/bin/sh
# Guards the basic promise of sync: a change written on one device is, after
# `sync --wait` there and then on another device, on the other device with
# the same body and the same server version, announced to its watchers with
# origin "remote"; a delete arrives as a tombstone, not as a missing
# document; Status after a sync says idle, nothing pending, no error, and
# when it last synced; and a burst of 1500 documents (more than one push
# batch, more than one pull page) arrives whole (List on both replicas
# equal, the server's log holding each change once).

. "$(dirname "$0")/sync-lib.sh"

test_expect_success 'setup: one server, daemons A and B syncing with it' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	sync_all A B
'

test_expect_success 'a put on A is on B after sync A, sync B' '
	put_ok A notes n1 "{\"tags\":[\"x\",\"y\"],\"title\":\"hello\"}" &&
	sync_all A B &&
	get A notes n1 >a.out &&
	get B notes n1 >b.out &&
	test_grep "\"deleted\":false" b.out &&
	test_equal body "{\"tags\":[\"x\",\"y\"],\"title\":\"hello\"}" \
	    "$(body_of b.out)" &&
	test_equal "bodies A and B" "$(body_of a.out)" "$(body_of b.out)" &&
	test_equal "version on A" 1 "$(json_int version a.out)" &&
	test_equal "version on B" 1 "$(json_int version b.out)" &&
	test_equal "rev on B" 1 "$(json_int rev b.out)" &&
	test_grep "\"pending\":false" a.out &&
	test_grep "\"pending\":false" b.out &&
	test_grep "\"conflicted\":false" b.out &&
	server_doc s notes n1 >srv.out &&
	status_is 200 srv.out &&
	test_grep "^{\"body\":{\"tags\":\[\"x\",\"y\"\],\"title\":\"hello\"},\"deleted\":false,\"version\":1}\$" srv.out
'

test_expect_success 'and the other way: a put on B reaches A' '
	put_ok B notes fromb "{\"by\":\"B\"}" &&
	sync_all B A &&
	get A notes fromb >a.out &&
	test_equal body "{\"by\":\"B\"}" "$(body_of a.out)" &&
	test_equal version 1 "$(json_int version a.out)"
'

test_expect_success 'B'"'"'s Watch sees the pulled update with origin remote' '
	watch_bg B w.out 2 &&
	put_ok A notes n1 "{\"title\":\"second\"}" &&
	sync_all A B &&
	watch_done w.out &&
	sed -n 2p w.out >ev &&
	test_grep "\"event\":{" ev &&
	test_grep "\"collection\":\"notes\"" ev &&
	test_grep "\"id\":\"n1\"" ev &&
	test_grep "\"origin\":\"remote\"" ev &&
	test_equal "event version" 2 "$(json_int version ev)" &&
	test_equal "event rev" 2 "$(json_int rev ev)" &&
	test_equal "event body" "{\"title\":\"second\"}" "$(body_of ev)" &&
	get B notes n1 >b.out &&
	test_equal "body on B" "{\"title\":\"second\"}" "$(body_of b.out)" &&
	test_equal "version on B" 2 "$(json_int version b.out)"
'

test_expect_success 'A'"'"'s own change is not echoed back to it as a remote event' '
	fcall A Status >st &&
	head=$(json_int seq st) &&
	put_ok A notes echo "{\"e\":1}" &&
	sync_all A B A &&
	watch_bg A w.out 3 "{\"since\":$head}" &&
	put_ok A notes marker "{}" &&
	watch_done w.out &&
	grep "\"event\":" w.out >evs &&
	test_equal "events on A" 2 "$(grep -c . evs)" &&
	test_grep ! "\"origin\":\"remote\"" evs &&
	get A notes echo >a.out &&
	test_equal "rev on A" 1 "$(json_int rev a.out)" &&
	test_equal "version on A" 1 "$(json_int version a.out)"
'

# The marker of the test above is on its way to B: settle it first, or
# B's watcher may see it instead of the delete.
test_expect_success 'a delete on A arrives on B as a tombstone' '
	sync_all A B &&
	watch_bg B w.out 2 &&
	del A notes n1 >del.out &&
	test_grep "\"deleted\":true" del.out &&
	sync_all A B &&
	watch_done w.out &&
	sed -n 2p w.out >ev &&
	test_grep "\"origin\":\"remote\"" ev &&
	test_grep "\"deleted\":true" ev &&
	test_equal "event version" 3 "$(json_int version ev)" &&
	get B notes n1 >b.out &&
	test_grep "^{\"parameters\":{\"doc\":{" b.out &&
	test_grep "\"deleted\":true" b.out &&
	test_grep ! "\"body\":{" b.out &&
	test_equal "version on B" 3 "$(json_int version b.out)" &&
	fcall B List "{\"collection\":\"notes\"}" >list.out &&
	test_grep ! "\"id\":\"n1\"" list.out &&
	server_doc s notes n1 >srv.out &&
	status_is 200 srv.out &&
	test_grep "^{\"deleted\":true,\"version\":3}\$" srv.out
'

test_expect_success 'a put after the delete brings the document back on both' '
	put_ok B notes n1 "{\"title\":\"again\"}" &&
	sync_all B A &&
	get A notes n1 >a.out &&
	test_grep "\"deleted\":false" a.out &&
	test_equal body "{\"title\":\"again\"}" "$(body_of a.out)" &&
	test_equal version 4 "$(json_int version a.out)"
'

test_expect_success 'B stopped while A writes gets the changes when it starts again' '
	ferryd_stop B &&
	put_ok A notes while-away "{\"w\":1}" &&
	del A notes fromb >/dev/null &&
	sync_wait A &&
	syncd_start B s &&
	sync_wait B &&
	get B notes while-away >b.out &&
	test_equal body "{\"w\":1}" "$(body_of b.out)" &&
	get B notes fromb >b.out &&
	test_grep "\"deleted\":true" b.out &&
	test_equal version 2 "$(json_int version b.out)"
'

# After sync --wait nothing is pending and the engine has settled.
check_synced_status() {
	sync_settle "$1" &&
	status_of "$1" >st &&
	test_grep "\"state\":\"idle\"" st &&
	test_equal "pending on $1" 0 "$(json_int pending st)" &&
	test_equal "conflicts on $1" 0 "$(json_int conflicts st)" &&
	test_equal "rejected on $1" 0 "$(json_int rejected st)" &&
	test_grep "\"last_error\":null" st &&
	test_grep "\"oldest_pending_ms\":null" st &&
	test_grep "\"remote\":\"$(server_url s)\"" st &&
	last=$(json_int last_sync_ms st) &&
	test -n "$last" &&
	now=$(now_ms) &&
	test "$last" -gt $((now - 60000)) &&
	test "$last" -le $((now + 1000)) || {
		echo "last_sync_ms $last, now $now"
		return 1
	}
}

test_expect_success 'Status after a sync: idle, pending 0, last_sync_ms set' '
	put_ok A notes st "{}" &&
	sync_wait A &&
	# The reply comes once everything is pushed and pulled; the puller
	# may still be taking back the change A made (syncing), never more.
	grep -E "\"state\":\"(idle|syncing)\"" "$TEST_DIR/.sync" &&
	test_equal "pending in the Sync reply" 0 \
	    "$(json_int pending "$TEST_DIR/.sync")" &&
	check_synced_status A &&
	sync_wait B &&
	check_synced_status B &&
	test_equal "docs on A" "$(status_int A docs)" "$(status_int B docs)"
'

test_expect_success '1500 documents written in one burst on A all arrive on B' '
	{ "$VLSEND" "$(ferryd_sock A)" --pipeline 3000 --timeout 60000 \
	    --collection many --prefix d >burst.out || { cat burst.out; false; }; } &&
	test_grep "^ok 3000 replies in order$" burst.out &&
	sync_wait A 60 &&
	sync_wait B 60 &&
	replica_heads A many >a.heads &&
	replica_heads B many >b.heads &&
	test_equal "documents on A" 1500 "$(grep -c . a.heads)" &&
	test_cmp a.heads b.heads &&
	{ grep -v " 1 {\"n\":[0-9]*}\$" a.heads >bad || :; } &&
	test_equal "documents not at version 1" "" "$(cat bad)" &&
	server_heads s many >s.heads &&
	test_cmp a.heads s.heads
'

test_expect_success 'List on A and B is the same, page by page' '
	for p in "{\"collection\":\"many\",\"limit\":1000}" \
	    "{\"collection\":\"many\",\"limit\":100,\"after\":\"d1250\"}" \
	    "{\"collection\":\"notes\"}"; do
		fcall A List "$p" >a.list &&
		fcall B List "$p" >b.list &&
		test_grep "^{\"parameters\":{\"docs\":\[{" a.list &&
		test_cmp a.list b.list || return 1
	done
'

test_expect_success 'the server holds every change once' '
	server_changes s >changes &&
	change_ids changes | sort | uniq -d >doubles &&
	test_equal "doubled change ids" "" "$(cat doubles)" &&
	test_equal "changes in the log" $((1500 + 10)) "$(grep -c . changes)" &&
	check_synced_status A &&
	check_synced_status B
'

test_expect_success 'both daemons stop cleanly' '
	ferryd_stop A &&
	ferryd_stop B &&
	server_stop s
'

test_done
