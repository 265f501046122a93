#!/bin/sh
# The seed scenarios of the merge issue, end to end: the cases where "last
# write wins" used to lose somebody's work, each with real daemons syncing
# through one real ferry-server.  Promise: edits that do not overlap all
# survive, without anybody being asked; edits that do overlap are queued as
# a conflict naming the field, with base, mine and theirs, and the audit
# log shows every change.
#
#   1. planner and designer edit stages and styling of one record, within
#      the same second, both online;
#   2. two windows on one machine: a stale if_rev is refused with the
#      current doc, and two Patches both land;
#   3. two tabs on two devices autosave X and Y: X from one, Y from the
#      other (the seed's "X REVERTED");
#   4. three devices add cameras and sources to id-keyed lists; a replica
#      that was cut off makes a small edit and loses nothing;
#   5. support edits notes while billing changes status: both kept; the
#      same field on both sides is a conflict at /status, and the log shows
#      both changes.
# And two edges: deleted on both sides (one tombstone, nothing pushed)
# and one id created on two devices (merged as over {}).

. "$(dirname "$0")/sync-lib.sh"

# server_body C ID: the server's body of C/ID (sorted keys, compact).
server_body() {
	server_doc s "$1" "$2" >"$TEST_DIR/.sdoc" &&
	status_is 200 "$TEST_DIR/.sdoc" >&2 &&
	sed -n 's/^{"body":\(.*\),"deleted":false,"version":[0-9]*}$/\1/p' \
	    "$TEST_DIR/.sdoc"
}

# converged C ID BODY NAME...: the server and every replica NAME hold BODY,
# none of them pending or conflicted.
converged() {
	_cv_c=$1
	_cv_id=$2
	_cv_body=$3
	shift 3
	test_equal "server body of $_cv_c/$_cv_id" "$_cv_body" \
	    "$(server_body "$_cv_c" "$_cv_id")" || return 1
	for _cv_n in "$@"; do
		get "$_cv_n" "$_cv_c" "$_cv_id" >"$_cv_n.doc" &&
		test_equal "body on $_cv_n" "$_cv_body" "$(body_of "$_cv_n.doc")" &&
		test_grep "\"pending\":false" "$_cv_n.doc" &&
		test_grep "\"conflicted\":false" "$_cv_n.doc" || return 1
	done
}

# no_conflicts NAME...
no_conflicts() {
	for _nc in "$@"; do
		test_equal "conflicts on $_nc" 0 "$(status_int "$_nc" conflicts)" ||
		    return 1
	done
}

test_expect_success 'setup: one server, devices A, B and C' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	syncd_start C s
'

# --- 1 ---

# save NAME C ID REV BODY PATCH: what an editor does on save: write the
# whole record it loaded at REV, with if_rev; when the record moved on
# meanwhile (RevMismatch: the other editor's change arrived), re-apply
# only its own edit, as a merge patch.  Counts the retries in retries.
save() {
	fcall "$1" Put "{\"collection\":\"$2\",\"id\":\"$3\",\"body\":$5,\"if_rev\":$4}" \
	    >"$TEST_DIR/.save" || return 1
	grep -q "^{\"parameters\":{\"doc\":{" "$TEST_DIR/.save" && return 0
	test_grep "io.ferry.RevMismatch" "$TEST_DIR/.save" || return 1
	echo "$1 $3" >>"$TEST_DIR/retries"
	fcall "$1" Patch "{\"collection\":\"$2\",\"id\":\"$3\",\"patch\":$6}" \
	    >"$TEST_DIR/.save" &&
	test_grep "^{\"parameters\":{\"doc\":{" "$TEST_DIR/.save"
}

test_expect_success '1: planner and designer save disjoint fields at once' '
	i=0 &&
	while [ $i -lt 10 ]; do
		put_ok A plans p$i "{\"stages\":[\"draft\"],\"styling\":{\"color\":\"red\",\"font\":\"serif\"},\"title\":\"Q$i\"}" ||
		    return 1
		i=$((i + 1))
	done &&
	sync_all A B C &&
	i=0 &&
	while [ $i -lt 10 ]; do
		ra=$(get A plans p$i | json_int rev) &&
		rb=$(get B plans p$i | json_int rev) &&
		save A plans p$i $ra "{\"stages\":[\"draft\",\"review\"],\"styling\":{\"color\":\"red\",\"font\":\"serif\"},\"title\":\"Q$i\"}" \
		    "{\"stages\":[\"draft\",\"review\"]}" &&
		save B plans p$i $rb "{\"stages\":[\"draft\"],\"styling\":{\"color\":\"blue\",\"font\":\"serif\"},\"title\":\"Q$i\"}" \
		    "{\"styling\":{\"color\":\"blue\"}}" || return 1
		i=$((i + 1))
	done &&
	sync_all A B A B C &&
	i=0 &&
	while [ $i -lt 10 ]; do
		converged plans p$i "{\"stages\":[\"draft\",\"review\"],\"styling\":{\"color\":\"blue\",\"font\":\"serif\"},\"title\":\"Q$i\"}" \
		    A B C || return 1
		i=$((i + 1))
	done &&
	no_conflicts A B C
'

# Each pair of saves met in one of two ways: the later save was made on
# the replica before the earlier one arrived and the daemon merged them
# (a Watch event with origin merge), or it arrived first and the later
# save was refused with the current doc and re-applied by the editor.
test_expect_success '1: each pair merged in a daemon or was retried by the app' '
	: >merge.ev &&
	for n in A B; do
		head=$(status_int $n seq) &&
		watch_bg $n w.$n.out $((head + 1)) "{\"since\":0}" &&
		watch_done w.$n.out &&
		{ grep "\"collection\":\"plans\"" w.$n.out |
		    grep "\"origin\":\"merge\"" >>merge.ev || :; }
	done &&
	touch "$TEST_DIR/retries" &&
	test_equal "merges + retries" 10 \
	    $(( $(grep -c . merge.ev) + $(grep -c . "$TEST_DIR/retries") ))
'

# --- 2 ---

test_expect_success '2: two windows: a stale if_rev is refused with the doc' '
	put_ok A drafts d1 "{\"text\":\"v1\"}" &&
	rev=$(json_int rev "$TEST_DIR/.put") &&
	fcall A Put "{\"collection\":\"drafts\",\"id\":\"d1\",\"body\":{\"text\":\"window 1\"},\"if_rev\":$rev}" >w1 &&
	test_grep "^{\"parameters\":{\"doc\":{" w1 &&
	fcall A Put "{\"collection\":\"drafts\",\"id\":\"d1\",\"body\":{\"text\":\"window 2\"},\"if_rev\":$rev}" >w2 &&
	test_grep "^{\"error\":\"io.ferry.RevMismatch\"" w2 &&
	test_grep "\"body\":{\"text\":\"window 1\"}" w2 &&
	test_equal "current rev" $((rev + 1)) "$(json_int rev w2)"
'

test_expect_success '2: two windows patching different fields both land' '
	fcall A Patch "{\"collection\":\"drafts\",\"id\":\"d1\",\"patch\":{\"title\":\"from window 1\"}}" >p1 &&
	fcall A Patch "{\"collection\":\"drafts\",\"id\":\"d1\",\"patch\":{\"text\":\"from window 2\"}}" >p2 &&
	test_grep "^{\"parameters\":{\"doc\":{" p1 &&
	test_grep "^{\"parameters\":{\"doc\":{" p2 &&
	sync_all A B &&
	converged drafts d1 "{\"text\":\"from window 2\",\"title\":\"from window 1\"}" A B
'

# --- 3 ---

# autosave NAME FIELD VALUE: what a tab does: read the doc, set its own
# field, write the whole doc back with if_rev; read again on RevMismatch
# (bounded).
autosave() {
	_as_try=0
	while [ $_as_try -lt 20 ]; do
		get "$1" tabs t1 >"$TEST_DIR/.as" || return 1
		_as_rev=$(json_int rev "$TEST_DIR/.as")
		_as_x=$(body_of "$TEST_DIR/.as" | json_str x)
		_as_y=$(body_of "$TEST_DIR/.as" | json_str y)
		if [ "$2" = x ]; then _as_x=$3; else _as_y=$3; fi
		fcall "$1" Put "{\"collection\":\"tabs\",\"id\":\"t1\",\"body\":{\"x\":\"$_as_x\",\"y\":\"$_as_y\"},\"if_rev\":$_as_rev}" \
		    >"$TEST_DIR/.as.put" || return 1
		grep -q "^{\"parameters\":{\"doc\":{" "$TEST_DIR/.as.put" &&
		    return 0
		grep -q "io.ferry.RevMismatch" "$TEST_DIR/.as.put" || {
			cat "$TEST_DIR/.as.put"
			return 1
		}
		_as_try=$((_as_try + 1))
	done
	echo "autosave: 20 RevMismatch in a row"
	return 1
}

test_expect_success '3: two tabs autosave X and Y on two devices, live' '
	put_ok A tabs t1 "{\"x\":\"x0\",\"y\":\"y0\"}" &&
	sync_all A B &&
	i=1 &&
	while [ $i -le 8 ]; do
		autosave A x "xA$i" && autosave B y "yB$i" || return 1
		i=$((i + 1))
	done &&
	sync_all A B A B &&
	converged tabs t1 "{\"x\":\"xA8\",\"y\":\"yB8\"}" A B &&
	no_conflicts A B
'

test_expect_success '3: the same with both tabs offline, then syncing' '
	server_stop s &&
	i=1 &&
	while [ $i -le 5 ]; do
		autosave A x "xoff$i" && autosave B y "yoff$i" || return 1
		i=$((i + 1))
	done &&
	server_start s --open &&
	sync_all A B A B &&
	converged tabs t1 "{\"x\":\"xoff5\",\"y\":\"yoff5\"}" A B &&
	no_conflicts A B
'

# --- 4 ---

# cams PREFIX N: N camera elements PREFIX1..PREFIXN, comma separated.
cams() {
	_cm_i=1
	_cm_out=""
	while [ $_cm_i -le "$2" ]; do
		_cm_out="$_cm_out${_cm_out:+,}{\"id\":\"$1$_cm_i\",\"model\":\"m$_cm_i\"}"
		_cm_i=$((_cm_i + 1))
	done
	echo "$_cm_out"
}

test_expect_success '4: three devices add to id-keyed lists concurrently' '
	put_ok A scenes s1 "{\"cameras\":[],\"sources\":[],\"title\":\"show\"}" &&
	sync_all A B C &&
	server_stop s &&
	i=1 &&
	while [ $i -le 5 ]; do
		put_ok A scenes s1 "{\"cameras\":[$(cams cam-a $i)],\"sources\":[],\"title\":\"show\"}" ||
		    return 1
		i=$((i + 1))
	done &&
	put_ok B scenes s1 "{\"cameras\":[],\"sources\":[$(cams src-b 3)],\"title\":\"show\"}" &&
	put_ok C scenes s1 "{\"cameras\":[$(cams cam-c 2)],\"sources\":[],\"title\":\"show\"}" &&
	server_start s --open &&
	sync_all A B C A B C &&
	server_body scenes s1 >srv.body &&
	for c in cam-a1 cam-a2 cam-a3 cam-a4 cam-a5 cam-c1 cam-c2 src-b1 src-b2 src-b3; do
		test_grep "\"id\":\"$c\"" srv.body || return 1
	done &&
	test_equal "elements" 10 "$(grep -o "\"id\":" srv.body | wc -l)" &&
	no_conflicts A B C &&
	converged scenes s1 "$(cat srv.body)" A B C
'

test_expect_success '4: each device'"'"'s own additions keep their order' '
	grep -o "\"id\":\"cam-a[0-9]\"" srv.body | tr -d "\n" >a.order &&
	test_equal "order of A'"'"'s cameras" \
	    "\"id\":\"cam-a1\"\"id\":\"cam-a2\"\"id\":\"cam-a3\"\"id\":\"cam-a4\"\"id\":\"cam-a5\"" \
	    "$(cat a.order)" &&
	grep -o "\"id\":\"src-b[0-9]\"" srv.body | tr -d "\n" >b.order &&
	test_equal "order of B'"'"'s sources" \
	    "\"id\":\"src-b1\"\"id\":\"src-b2\"\"id\":\"src-b3\"" "$(cat b.order)"
'

test_expect_success '4: a replica cut off for a long time loses nothing' '
	ferryd_stop C &&
	dead=$(( $(server_port s) + 5 )) &&
	ferryd_start C --remote "http://127.0.0.1:$dead" &&
	i=1 &&
	while [ $i -le 20 ]; do
		body=$(server_body scenes s1 | sed "s/\"title\":\"[^\"]*\"/\"title\":\"take $i\"/") &&
		put_ok A scenes s1 "$body" &&
		sync_all A || return 1
		i=$((i + 1))
	done &&
	server_body scenes s1 >srv.body &&
	stale=$(get C scenes s1 | body_of /dev/stdin) &&
	small=$(echo "$stale" | sed "s/\"sources\":\[/\"sources\":[{\"id\":\"src-c1\",\"model\":\"late\"},/") &&
	put_ok C scenes s1 "$small" &&
	ferryd_stop C &&
	syncd_start C s &&
	sync_all C A B C &&
	server_body scenes s1 >final.body &&
	test_grep "\"title\":\"take 20\"" final.body &&
	test_grep "\"id\":\"src-c1\",\"model\":\"late\"" final.body &&
	test_equal "elements" 11 "$(grep -o "\"id\":" final.body | wc -l)" &&
	no_conflicts A B C &&
	converged scenes s1 "$(cat final.body)" A B C
'

# --- 5 ---

test_expect_success '5: support edits notes while billing changes status' '
	put_ok A tickets t1 "{\"notes\":\"\",\"status\":\"open\"}" &&
	sync_all A B &&
	server_stop s &&
	put_ok A tickets t1 "{\"notes\":\"customer called\",\"status\":\"open\"}" &&
	put_ok B tickets t1 "{\"notes\":\"\",\"status\":\"paid\"}" &&
	server_start s --open &&
	sync_all A B A B &&
	converged tickets t1 "{\"notes\":\"customer called\",\"status\":\"paid\"}" A B &&
	no_conflicts A B
'

# A reaches the server first (B is stopped until A has synced), so B is
# the one whose change clashes.
test_expect_success '5: the same field on both sides is a conflict at /status' '
	server_stop s &&
	put_ok A tickets t1 "{\"notes\":\"customer called\",\"status\":\"refunded\"}" &&
	put_ok B tickets t1 "{\"notes\":\"customer called back\",\"status\":\"closed\"}" &&
	ferryd_stop B &&
	server_start s --open &&
	sync_wait A &&
	syncd_start B s &&
	sync_all B A B &&
	test_equal "conflicts on A" 0 "$(status_int A conflicts)" &&
	test_equal "conflicts on B" 1 "$(status_int B conflicts)" &&
	cid=$(conflict_ids B) &&
	fcall B GetConflict "{\"conflict_id\":$(conflict_json "$cid")}" >cf.out &&
	test_grep "\"paths\":\[\"/status\"\]" cf.out &&
	test_grep "\"base\":{\"notes\":\"customer called\",\"status\":\"paid\"}" cf.out &&
	test_grep "\"mine\":{\"notes\":\"customer called back\",\"status\":\"closed\"}" cf.out &&
	test_grep "\"theirs\":{\"notes\":\"customer called\",\"status\":\"refunded\"}" cf.out &&
	get B tickets t1 >b.doc &&
	test_grep "\"conflicted\":true" b.doc
'

test_expect_success '5: ferryctl conflicts show names the field, with the three values' '
	ctl_bounded 10 B conflicts show "$cid" >show.out &&
	test_grep "/status" show.out &&
	test_grep "paid" show.out &&
	test_grep "closed" show.out &&
	test_grep "refunded" show.out
'

test_expect_success '5: resolving mine keeps both sides'"'"' other edits' '
	ctl_bounded 10 B --json resolve "$cid" --mine >res.out &&
	sync_all B A &&
	converged tickets t1 "{\"notes\":\"customer called back\",\"status\":\"closed\"}" A B
'

test_expect_success '5: ferryctl log shows both devices'"'"' changes and their fields' '
	ctl_bounded 10 A --json log tickets t1 >log.json &&
	test_grep "\"changed_paths\":\[\"/status\"\]" log.json &&
	test_grep "\"changed_paths\":\[\"/notes\"\]" log.json &&
	test_grep -F -e "$(status_str A device)" log.json &&
	test_grep -F -e "$(status_str B device)" log.json &&
	test_grep ! "\"verified\":false" log.json &&
	ctl_bounded 10 A log tickets t1 >log.out &&
	test_grep "/status" log.out
'

# Not a seed, the edge of one: the same document deleted on both sides
# merges into the one deletion already on the server; nothing is pushed.
test_expect_success 'deleted on both sides: one tombstone, no conflict' '
	put_ok A gone g1 "{\"x\":1}" &&
	sync_all A B &&
	server_stop s &&
	del A gone g1 >/dev/null &&
	del B gone g1 >/dev/null &&
	ferryd_stop B &&
	server_start s --open &&
	sync_wait A &&
	syncd_start B s &&
	sync_all B A &&
	server_doc s gone g1 >srv.doc &&
	test_grep "^{\"deleted\":true,\"version\":2}\$" srv.doc &&
	get B gone g1 >b.doc &&
	test_grep "\"deleted\":true" b.doc &&
	test_grep "\"pending\":false" b.doc &&
	test_grep "\"conflicted\":false" b.doc &&
	test_equal "version on B" 2 "$(json_int version b.doc)" &&
	no_conflicts A B
'

# And the other edge: one id created on two devices before either synced
# merges as if the base were {}.
test_expect_success 'created on both sides: disjoint fields merge' '
	server_stop s &&
	put_ok A born b1 "{\"a\":1}" &&
	put_ok B born b1 "{\"b\":2}" &&
	ferryd_stop B &&
	server_start s --open &&
	sync_wait A &&
	syncd_start B s &&
	sync_all B A &&
	converged born b1 "{\"a\":1,\"b\":2}" A B &&
	no_conflicts A B
'

test_expect_success 'nothing pending, rejected or doubled anywhere' '
	for n in A B C; do
		status_of $n >st &&
		test_equal "rejected on $n" 0 "$(json_int rejected st)" &&
		test_equal "pending on $n" 0 "$(json_int pending st)" || return 1
	done &&
	server_changes s >changes &&
	change_ids changes | sort | uniq -d >doubles &&
	test_equal "doubled change ids" "" "$(cat doubles)"
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	ferryd_stop B &&
	ferryd_stop C &&
	server_stop s
'

test_done
