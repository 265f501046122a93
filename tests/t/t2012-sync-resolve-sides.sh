#!/bin/sh
# Guards issue 11: "ferryctl resolve ID --mine" kept all of mine and
# silently dropped the other side's non-conflicting edits (and --theirs
# dropped mine), while "conflicts show" presents "merged, with mine at the
# conflicts".  --mine and --theirs choose a side at the conflicting paths
# only and keep every non-conflicting change of both sides; replacing the
# whole document is its own option (--all-mine, --all-theirs); the reply
# and ferryctl's output show the body written; after a sync both devices
# and the server hold that body.
#
# A and B edit one field each (disjoint) and one field both (the conflict)
# with the server down; A syncs first, then B, so the conflict is on B:
# mine is B's, theirs is A's.

. "$(dirname "$0")/sync-lib.sh"

# conflict_on NAME ID: the id of the open conflict on notes/ID.
conflict_on() {
	conflict_ids "$1" >ids || return 1
	for _cid in $(cat ids); do
		fcall "$1" GetConflict \
		    "{\"conflict_id\":$(conflict_json "$_cid")}" >cf.out ||
		    return 1
		if grep -q "\"id\":\"$2\"" cf.out; then
			echo "$_cid"
			return 0
		fi
	done
	echo "no open conflict for notes/$2 among: $(cat ids)"
	return 1
}

# flat_body FILE: the "body" of a reply in FILE, ferryctl's --json or a
# varlink reply (the bodies here have no nested objects).
flat_body() {
	grep -o '"body":{[^{}]*}' "$1" | head -n 1 | sed 's/^"body"://'
}

# converged ID BODY: A, B and the server hold BODY, nothing pending or
# conflicted.
converged() {
	for _n in A B; do
		get $_n notes "$1" >"$_n.doc" &&
		test_equal "body on $_n" "$2" "$(body_of "$_n.doc")" &&
		test_grep "\"pending\":false" "$_n.doc" &&
		test_grep "\"conflicted\":false" "$_n.doc" || return 1
	done
	server_doc s notes "$1" >srv.doc &&
	status_is 200 srv.doc &&
	test_grep "^{\"body\":$2,\"deleted\":false," srv.doc
}

test_expect_success 'setup: A and B share three documents' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	for d in r1 r2 r3; do
		put_ok A notes $d "{\"a\":0,\"b\":0,\"c\":0}" || return 1
	done &&
	sync_all A B &&
	get B notes r3 >b.doc &&
	test_equal version 1 "$(json_int version b.doc)"
'

test_expect_success 'A edits a and c, B edits b and c: one conflict each, at /c' '
	offline_edits "
		for d in r1 r2 r3; do
			put_ok A notes \$d \"{\\\"a\\\":1,\\\"b\\\":0,\\\"c\\\":\\\"A\\\"}\" ||
			    return 1
		done" "
		for d in r1 r2 r3; do
			put_ok B notes \$d \"{\\\"a\\\":0,\\\"b\\\":2,\\\"c\\\":\\\"B\\\"}\" ||
			    return 1
		done" &&
	conflict_ids B >ids &&
	test_equal "open conflicts on B" 3 "$(grep -c . ids)" &&
	cid=$(conflict_on B r1) &&
	test_grep "\"paths\":\[\"/c\"\]" cf.out
'

# The conflicted documents are pending (their push waits) although their
# outbox rows are gone: Status said pending 3 with no oldest pending.
test_expect_success 'status and ls while in conflict: pending has an oldest; marked' '
	status_of B >st &&
	test_equal pending 3 "$(json_int pending st)" &&
	test_grep ! "\"oldest_pending_ms\":null" st &&
	ctl_bounded 10 B ls notes >ls.out &&
	cat ls.out &&
	test "$(grep -c "pending, conflicted\$" ls.out)" = 3
'

test_expect_success 'resolve --mine keeps A'"'"'s disjoint edit and B'"'"'s, mine at /c' '
	cid=$(conflict_on B r1) &&
	ctl_bounded 10 B resolve "$cid" --mine >res.out &&
	cat res.out &&
	test_grep "^notes/r1 rev" res.out &&
	test_grep "^body written:" res.out &&
	test_grep "\"a\": 1" res.out &&
	test_grep "\"b\": 2" res.out &&
	test_grep "\"c\": \"B\"" res.out &&
	get B notes r1 >b.doc &&
	test_equal "body on B" "{\"a\":1,\"b\":2,\"c\":\"B\"}" "$(body_of b.doc)"
'

test_expect_success 'resolve --theirs keeps B'"'"'s disjoint edit and A'"'"'s, theirs at /c' '
	cid=$(conflict_on B r2) &&
	ctl_bounded 10 B --json resolve "$cid" --theirs >res.out &&
	test_grep "\"pending\":true" res.out &&
	test_equal "reply body" "{\"a\":1,\"b\":2,\"c\":\"A\"}" \
	    "$(flat_body res.out)" &&
	get B notes r2 >b.doc &&
	test_equal "body on B" "{\"a\":1,\"b\":2,\"c\":\"A\"}" "$(body_of b.doc)"
'

test_expect_success 'resolve --all-theirs replaces the whole document with theirs' '
	cid=$(conflict_on B r3) &&
	ctl_bounded 10 B --json resolve "$cid" --all-theirs >res.out &&
	test_grep "\"pending\":false" res.out &&
	test_equal "reply body" "{\"a\":1,\"b\":0,\"c\":\"A\"}" \
	    "$(flat_body res.out)"
'

test_expect_success 'after a sync both devices and the server converge' '
	sync_all B A &&
	converged r1 "{\"a\":1,\"b\":2,\"c\":\"B\"}" &&
	converged r2 "{\"a\":1,\"b\":2,\"c\":\"A\"}" &&
	converged r3 "{\"a\":1,\"b\":0,\"c\":\"A\"}" &&
	test_equal "conflicts on B" 0 "$(status_int B conflicts)"
'

test_expect_success 'all_mine through varlink; an unknown strategy is InvalidParameter on strategy' '
	offline_edits "
		put_ok A notes r1 \"{\\\"a\\\":5,\\\"b\\\":2,\\\"c\\\":\\\"A2\\\"}\"" "
		put_ok B notes r1 \"{\\\"a\\\":1,\\\"b\\\":3,\\\"c\\\":\\\"B2\\\"}\"" &&
	cid=$(conflict_on B r1) &&
	fcall B Resolve "{\"conflict_id\":$(conflict_json "$cid"),\"strategy\":\"both\"}" >out &&
	test_grep "org.varlink.service.InvalidParameter" out &&
	test_grep "\"parameter\":\"strategy\"" out &&
	fcall B Resolve "{\"conflict_id\":$(conflict_json "$cid"),\"strategy\":\"all_mine\"}" >out &&
	test_equal "reply body" "{\"a\":1,\"b\":3,\"c\":\"B2\"}" "$(flat_body out)" &&
	sync_all B A &&
	converged r1 "{\"a\":1,\"b\":3,\"c\":\"B2\"}"
'

test_done
