#!/bin/sh
# Guards "never lost" when two devices edit one document: B's stale edit of
# a field A changed too becomes exactly one conflict (not one for the
# rejected push and another for the pulled change) carrying base, mine,
# theirs, their_version and the conflicting path; the document keeps
# showing mine, marked conflicted, and its push waits.  Each resolution
# (mine, theirs, a merged body) ends with both replicas equal and the
# chosen content on the server, as an ordinary signed change; a newer
# change on the server updates the open conflict instead of adding one.
# A document deleted on the server while edited on B is a conflict that
# says their_deleted (a deleted document is not a missing one).  Edits to
# different fields merge without a conflict.
#
# The race is made deterministic: with the server down A and B both write,
# B stops, the server comes back, A syncs first, then B starts and syncs
# (offline_edits, in sync-lib.sh).

. "$(dirname "$0")/sync-lib.sh"

# conflict_of NAME C ID: the id of the open conflict on C/ID (exactly one),
# its GetConflict reply in conflict.out.
conflict_of() {
	conflict_ids "$1" >ids || return 1
	_found=""
	for _cid in $(cat ids); do
		fcall "$1" GetConflict "{\"conflict_id\":$(conflict_json "$_cid")}" \
		    >"$TEST_DIR/.cf" || return 1
		if grep -q "\"collection\":\"$2\"" "$TEST_DIR/.cf" &&
		    grep -q "\"id\":\"$3\"" "$TEST_DIR/.cf"; then
			[ -z "$_found" ] || {
				echo "two open conflicts for $2/$3: $_found $_cid"
				return 1
			}
			_found=$_cid
			cp "$TEST_DIR/.cf" conflict.out
		fi
	done
	[ -n "$_found" ] || {
		echo "no open conflict for $2/$3 among: $(cat ids)"
		return 1
	}
	echo "$_found"
}

# same_everywhere C ID BODY VERSION: A, B and the server all hold BODY at
# VERSION, nothing pending or conflicted on either replica.
same_everywhere() {
	for _n in A B; do
		get $_n "$1" "$2" >"$_n.doc" &&
		test_equal "body on $_n" "$3" "$(body_of "$_n.doc")" &&
		test_equal "version on $_n" "$4" "$(json_int version "$_n.doc")" &&
		test_grep "\"pending\":false" "$_n.doc" &&
		test_grep "\"conflicted\":false" "$_n.doc" || return 1
	done
	server_doc s "$1" "$2" >srv.doc &&
	status_is 200 srv.doc &&
	test_grep "^{\"body\":$3,\"deleted\":false,\"version\":$4}\$" srv.doc
}

test_expect_success 'setup: server, A and B share six documents' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	for d in c1 t1 m1 d1 d2; do
		put_ok A notes $d "{\"title\":\"orig\"}" || return 1
	done &&
	put_ok A notes cm "{\"a\":1,\"b\":1}" &&
	sync_all A B &&
	get B notes cm >b.doc &&
	test_equal version 1 "$(json_int version b.doc)"
'

test_expect_success 'the same field edited on A and on B, A first' '
	offline_edits "put_ok A notes c1 \"{\\\"title\\\":\\\"from A\\\"}\"" \
	    "put_ok B notes c1 \"{\\\"title\\\":\\\"from B\\\"}\"" &&
	server_doc s notes c1 >srv.doc &&
	test_grep "^{\"body\":{\"title\":\"from A\"},\"deleted\":false,\"version\":2}\$" srv.doc
'

test_expect_success 'B has one conflict (not two), A none' '
	conflict_ids B >ids &&
	test_equal "open conflicts on B" 1 "$(grep -c . ids)" &&
	test_equal "Status conflicts on B" 1 "$(status_int B conflicts)" &&
	test_equal "Status conflicts on A" 0 "$(status_int A conflicts)" &&
	conflict_ids A >ids.a &&
	test_equal "open conflicts on A" 0 "$(grep -c . ids.a)"
'

test_expect_success 'the conflict holds base, mine, theirs, their_version' '
	cid=$(conflict_of B notes c1) &&
	test_grep "^{\"parameters\":{\"conflict\":{" conflict.out &&
	test_grep "\"base\":{\"title\":\"orig\"}" conflict.out &&
	test_grep "\"mine\":{\"title\":\"from B\"}" conflict.out &&
	test_grep "\"theirs\":{\"title\":\"from A\"}" conflict.out &&
	test_equal their_version 2 "$(json_int their_version conflict.out)" &&
	test_grep "\"their_deleted\":false" conflict.out &&
	created=$(json_int created_ms conflict.out) &&
	now=$(now_ms) &&
	test "$created" -gt $((now - 120000)) && test "$created" -le "$now" &&
	fcall B Conflicts >list.out &&
	test_grep "\"mine\":{\"title\":\"from B\"}" list.out &&
	test_grep "\"their_version\":2" list.out
'

# DESIGN "Merge and conflicts": the paths that clash, as JSON Pointers.
test_expect_success 'the conflict names the path that clashes (/title)' '
	test_grep "\"paths\":\[\"/title\"\]" conflict.out
'

test_expect_success 'the document shows mine, conflicted, and its push waits' '
	get B notes c1 >b.doc &&
	test_equal "body on B" "{\"title\":\"from B\"}" "$(body_of b.doc)" &&
	test_grep "\"conflicted\":true" b.doc &&
	sync_wait B &&
	sync_wait B &&
	server_doc s notes c1 >srv.doc &&
	test_grep "^{\"body\":{\"title\":\"from A\"},\"deleted\":false,\"version\":2}\$" srv.doc &&
	get A notes c1 >a.doc &&
	test_equal "body on A" "{\"title\":\"from A\"}" "$(body_of a.doc)" &&
	test_grep "\"conflicted\":false" a.doc &&
	test_equal "conflicts on B after more syncs" 1 "$(status_int B conflicts)"
'

test_expect_success 'ferryctl lists and shows the conflict' '
	ctl_bounded 10 B conflicts >ls.out &&
	test_grep "notes/c1" ls.out &&
	ctl_bounded 10 B conflicts show "$cid" >show.out &&
	test_grep "notes/c1" show.out &&
	test_grep "from A" show.out &&
	test_grep "from B" show.out
'

test_expect_success 'a newer change on A updates the open conflict in place' '
	put_ok A notes c1 "{\"title\":\"from A again\"}" &&
	sync_all A B &&
	conflict_ids B >ids &&
	test_equal "open conflicts on B" "$cid" "$(cat ids)" &&
	conflict_of B notes c1 >/dev/null &&
	test_equal their_version 3 "$(json_int their_version conflict.out)" &&
	test_grep "\"theirs\":{\"title\":\"from A again\"}" conflict.out &&
	test_grep "\"mine\":{\"title\":\"from B\"}" conflict.out &&
	test_grep "\"base\":{\"title\":\"orig\"}" conflict.out &&
	get B notes c1 >b.doc &&
	test_equal "body on B" "{\"title\":\"from B\"}" "$(body_of b.doc)"
'

test_expect_success 'resolve --mine: B'"'"'s body on top of theirs, everywhere' '
	ctl_bounded 10 B --json resolve "$cid" --mine >res.out &&
	test_grep "\"doc\":{" res.out &&
	test_grep "\"conflicted\":false" res.out &&
	sync_all B A &&
	same_everywhere notes c1 "{\"title\":\"from B\"}" 4 &&
	test_equal "conflicts on B" 0 "$(status_int B conflicts)" &&
	conflict_ids B >ids &&
	test_equal "open conflicts" "" "$(cat ids)"
'

test_expect_success 'a resolved conflict is gone; bad Resolve calls are refused' '
	fcall B GetConflict "{\"conflict_id\":$(conflict_json "$cid")}" >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out &&
	fcall B Resolve "{\"conflict_id\":$(conflict_json "$cid"),\"strategy\":\"mine\"}" >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out &&
	test_expect_code 3 ctl_bounded 10 B resolve "$cid" --theirs &&
	fcall B Resolve "{\"conflict_id\":999999,\"strategy\":\"bogus\"}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\"" out &&
	ferryd_works B
'

test_expect_success 'more offline edits: changes against changes and against deletes' '
	offline_edits "
		put_ok A notes t1 \"{\\\"title\\\":\\\"from A\\\"}\" &&
		put_ok A notes m1 \"{\\\"title\\\":\\\"from A\\\"}\" &&
		del A notes d1 >/dev/null &&
		del A notes d2 >/dev/null" "
		put_ok B notes t1 \"{\\\"title\\\":\\\"from B\\\"}\" &&
		put_ok B notes m1 \"{\\\"title\\\":\\\"from B\\\"}\" &&
		put_ok B notes d1 \"{\\\"title\\\":\\\"edited on B\\\"}\" &&
		put_ok B notes d2 \"{\\\"title\\\":\\\"edited on B\\\"}\"" &&
	conflict_ids B >ids &&
	test_equal "open conflicts on B" 4 "$(grep -c . ids)" &&
	test_equal "Status conflicts on B" 4 "$(status_int B conflicts)"
'

test_expect_success 'a document deleted on the server: their_deleted, not missing' '
	server_doc s notes d1 >srv.doc &&
	status_is 200 srv.doc &&
	test_grep "^{\"deleted\":true,\"version\":2}\$" srv.doc &&
	did=$(conflict_of B notes d1) &&
	test_grep "\"their_deleted\":true" conflict.out &&
	test_grep ! "\"theirs\":{" conflict.out &&
	test_equal their_version 2 "$(json_int their_version conflict.out)" &&
	test_grep "\"mine\":{\"title\":\"edited on B\"}" conflict.out &&
	test_grep "\"base\":{\"title\":\"orig\"}" conflict.out &&
	get B notes d1 >b.doc &&
	test_grep "\"deleted\":false" b.doc &&
	test_grep "\"conflicted\":true" b.doc &&
	conflict_of B notes t1 >/dev/null &&
	test_grep "\"their_deleted\":false" conflict.out
'

test_expect_success 'resolve --theirs: B takes A'"'"'s body, nothing is pushed' '
	tid=$(conflict_of B notes t1) &&
	put_ok B notes t1 "{\"title\":\"B again\"}" &&
	get B notes t1 >b.doc &&
	test_grep "\"conflicted\":true" b.doc &&
	ctl_bounded 10 B --json resolve "$tid" --theirs >res.out &&
	test_grep "\"doc\":{" res.out &&
	sync_all B A &&
	same_everywhere notes t1 "{\"title\":\"from A\"}" 2
'

test_expect_success 'resolve with a merged body: that body everywhere, origin resolve' '
	mid=$(conflict_of B notes m1) &&
	printf "{\"title\":\"A and B\"}" >merged.json &&
	head=$(status_int B seq) &&
	ctl_bounded 10 B --json resolve "$mid" --body merged.json >res.out &&
	test_grep "\"doc\":{" res.out &&
	watch_bg B w.out 2 "{\"since\":$head}" &&
	watch_done w.out &&
	sed -n 2p w.out >ev &&
	test_grep "\"id\":\"m1\"" ev &&
	test_grep "\"origin\":\"resolve\"" ev &&
	test_equal "event body" "{\"title\":\"A and B\"}" "$(body_of ev)" &&
	sync_all B A &&
	same_everywhere notes m1 "{\"title\":\"A and B\"}" 3
'

test_expect_success 'the resolution is a signed change in the audit trail' '
	req s probe GET /v1/docs/notes/m1/history >hist &&
	status_is 200 hist &&
	tail -n +2 hist >hist.json &&
	"$SRVCLIENT" verify-history hist.json >verify.out &&
	test_grep "^verified 3$" verify.out &&
	test_grep -F -e "$(status_str B device)" hist.json
'

# mine is the local body at the time of the resolution, including writes
# made after the conflict was recorded.
test_expect_success 'resolve --mine of an edit against a delete brings it back' '
	put_ok B notes d1 "{\"title\":\"edited again\"}" &&
	get B notes d1 >b.doc &&
	test_grep "\"conflicted\":true" b.doc &&
	sync_wait B &&
	server_doc s notes d1 >srv.doc &&
	test_grep "^{\"deleted\":true,\"version\":2}\$" srv.doc &&
	ctl_bounded 10 B --json resolve "$did" --mine >res.out &&
	test_grep "\"doc\":{" res.out &&
	sync_all B A &&
	same_everywhere notes d1 "{\"title\":\"edited again\"}" 3
'

test_expect_success 'resolve --theirs of an edit against a delete deletes it on B' '
	eid=$(conflict_of B notes d2) &&
	ej=$(conflict_json "$eid") &&
	fcall B Resolve "{\"conflict_id\":$ej,\"strategy\":\"bogus\"}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"strategy\"}}\$" out &&
	fcall B Resolve "{\"conflict_id\":$ej,\"strategy\":\"merged\"}" >out &&
	test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" out &&
	test "$(conflict_of B notes d2)" = "$eid" &&
	ctl_bounded 10 B --json resolve "$eid" --theirs >res.out &&
	sync_all B A &&
	get B notes d2 >b.doc &&
	test_grep "\"deleted\":true" b.doc &&
	test_grep "\"conflicted\":false" b.doc &&
	test_grep "\"pending\":false" b.doc &&
	test_equal "version on B" 2 "$(json_int version b.doc)" &&
	server_doc s notes d2 >srv.doc &&
	test_grep "^{\"deleted\":true,\"version\":2}\$" srv.doc &&
	test_equal "conflicts left on B" 0 "$(status_int B conflicts)" &&
	test_equal "pending on B" 0 "$(status_int B pending)"
'

test_expect_success 'no rejected changes, nothing pending, on either side' '
	for n in A B; do
		status_of $n >st &&
		test_equal "rejected on $n" 0 "$(json_int rejected st)" &&
		test_equal "pending on $n" 0 "$(json_int pending st)" &&
		test_equal "conflicts on $n" 0 "$(json_int conflicts st)" || return 1
	done &&
	server_changes s >changes &&
	change_ids changes | sort | uniq -d >doubles &&
	test_equal "doubled change ids" "" "$(cat doubles)"
'

test_expect_success 'edits to different fields merge cleanly (no conflict)' '
	head=$(status_int B seq) &&
	offline_edits "put_ok A notes cm \"{\\\"a\\\":2,\\\"b\\\":1}\"" \
	    "put_ok B notes cm \"{\\\"a\\\":1,\\\"b\\\":2}\"" &&
	test_equal "conflicts on B" 0 "$(status_int B conflicts)" &&
	sync_all B A &&
	same_everywhere notes cm "{\"a\":2,\"b\":2}" 3 &&
	head2=$(status_int B seq) &&
	watch_bg B w.out $((1 + head2 - head)) "{\"since\":$head}" &&
	watch_done w.out &&
	grep "\"origin\":\"merge\"" w.out >ev &&
	test_equal "merge events" 1 "$(grep -c . ev)" &&
	test_equal "merged body" "{\"a\":2,\"b\":2}" "$(body_of ev)"
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	ferryd_stop B &&
	server_stop s
'

test_done
