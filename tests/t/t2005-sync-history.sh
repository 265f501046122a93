#!/bin/sh
# Guards the audit trail (DESIGN "History", "Signed change records"): after
# two daemons edit one document through the server, History on either
# lists every accepted change in version order, with both devices (the
# server's name for one, none for the other), each record verified on this
# machine, and the field-level changed_paths (a create lists its fields,
# an edit the field it changed, a delete ""); `ferryctl log` prints the
# same for people and --json prints the reply.  History of an unknown
# document is NotFound (ferryctl exit 3); with the server down it is the
# local change log with the reason (t2011 has more), with no remote and no
# local change Offline (exit 1); a client that goes away while the
# daemon fetches costs nothing.  A record altered on the server shows up
# as verified false, and its body is not trusted for the next diff.
# Also: `ferryctl conflicts show` puts base, mine and theirs side by side
# per conflicting path, with the rest merged; and ids or collections that
# begin with '-' need no "--" in ferryctl.

. "$(dirname "$0")/sync-lib.sh"

# history NAME C ID [AFTER]: History's reply, into h.out.
history() {
	if [ -n "${4:-}" ]; then
		fcall "$1" History \
		    "{\"collection\":\"$2\",\"id\":\"$3\",\"after\":$4}" >h.out
	else
		fcall "$1" History "{\"collection\":\"$2\",\"id\":\"$3\"}" >h.out
	fi
	test_grep '^{"parameters":{"entries":\[' h.out
}

# entries FILE: a History reply as lines
# "VERSION DEVICE NAME OP VERIFIED PATHS", devices shown as A and B.
entries() {
	sed 's/},{"version"/}\n{"version"/g' "$1" |
	    sed -n 's/^.*"version":\([0-9]*\),"change":"[^"]*","device":"\([^"]*\)","device_name":\(null\|"[^"]*"\),"ts":[0-9]*,"op":"\([a-z]*\)","verified":\([a-z]*\),"changed_paths":\(\[[^]]*\]\).*$/\1 \2 \3 \4 \5 \6/p' |
	    sed "s|$KA|A|; s|$KB|B|"
}

test_expect_success 'setup: a server, A (named "Alice laptop") and B' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	KA=$(ctl A key) && KB=$(ctl B key) &&
	test -n "$KA" && test -n "$KB" &&
	"$FERRY_SERVER" --data-dir "$(server_datadir s)" allow "$KA" \
	    "Alice laptop" &&
	kill -HUP "$(server_pid s)" &&
	test_wait_log "$(server_log s)" "reloaded 1 authorized key"
'

test_expect_success 'A creates, B edits a field, A adds one, B deletes' '
	put_ok A notes n1 "{\"body\":\"hello\",\"title\":\"first\"}" &&
	sync_all A B &&
	put_ok B notes n1 "{\"body\":\"hello\",\"title\":\"second\"}" &&
	sync_all B A &&
	put_ok A notes n1 "{\"body\":\"hello\",\"tags\":[\"x\"],\"title\":\"second\"}" &&
	sync_all A B &&
	del B notes n1 >del.out &&
	test_grep "\"deleted\":true" del.out &&
	sync_all B A &&
	get A notes n1 >a.doc &&
	test_equal "version on A" 4 "$(json_int version a.doc)"
'

test_expect_success 'History lists every change in order, verified, with its paths' '
	history A notes n1 &&
	entries h.out >got &&
	cat >want <<-\EOF &&
	1 A "Alice laptop" put true ["/body","/title"]
	2 B null put true ["/title"]
	3 A "Alice laptop" put true ["/tags"]
	4 B null delete true [""]
	EOF
	test_cmp want got &&
	test_grep ! "\"next\"" h.out &&
	test_grep "\"change\":\"$KA:[0-9]*\"" h.out &&
	history B notes n1 &&
	entries h.out >got.b &&
	test_cmp want got.b
'

test_expect_success 'History(after) goes on from a version, diffing against it' '
	history A notes n1 2 &&
	entries h.out >got &&
	cat >want <<-\EOF &&
	3 A "Alice laptop" put true ["/tags"]
	4 B null delete true [""]
	EOF
	test_cmp want got &&
	history A notes n1 4 &&
	test_grep "^{\"parameters\":{\"entries\":\[\]}}\$" h.out
'

# wide_body V: 999 members with 60-byte names, every value V.  A change
# to all of them makes a 64 KB path list, so 80 such changes cannot fit
# one History reply (4 MiB).
wide_body() {
	awk -v v="$1" 'BEGIN {
		printf "{"
		for (i = 0; i < 999; i++)
			printf "%s\"k%059d\":%d", i ? "," : "", i, v
		printf "}"
	}'
}

# big_body: 1500 members under /big, and /small.  top_body: 1500
# top-level members, and /small.
big_body() {
	awk 'BEGIN {
		printf "{\"big\":{"
		for (i = 0; i < 1500; i++)
			printf "%s\"k%d\":%d", i ? "," : "", i, i
		printf "},\"small\":1}"
	}'
}

top_body() {
	awk 'BEGIN {
		printf "{"
		for (i = 0; i < 1500; i++)
			printf "\"t%d\":%d,", i, i
		printf "\"small\":1}"
	}'
}

test_expect_success 'a long history comes in more than one reply' '
	: >items &&
	for v in $(seq 1 80); do
		wide_body $v >body.json &&
		{ [ $v = 1 ] || printf "," >>items; } &&
		item writer put notes wide $((v - 1)) $v @body.json >>items ||
		return 1
	done &&
	{ printf "{\"changes\":["; cat items; printf "]}"; } >push.json &&
	req s writer POST /v1/push push.json >push.out &&
	status_is 200 push.out &&
	test_equal applied 80 "$(grep -o "\"applied\"" push.out | wc -l)" &&
	history A notes wide &&
	next=$(json_int next h.out) &&
	test -n "$next" && test "$next" -gt 1 && test "$next" -lt 80 &&
	entries h.out | cut -d" " -f1 >v1 &&
	check_run v1 1 "$next" &&
	history A notes wide "$next" &&
	test_grep ! "\"next\"" h.out &&
	entries h.out >page2 &&
	cut -d" " -f1 page2 >v2 &&
	check_run v2 $((next + 1)) 80 &&
	{ grep -v " true \[\"/k0*\",\"/k0*1\",.*\"/k0*998\"\]\$" page2 || :; } >bad &&
	test_equal "entries of page 2 without the 999 paths" "" "$(cat bad)" &&
	ctl_bounded 30 A log notes wide >log.out &&
	test_equal "log lines" 80 "$(grep -c . log.out)" &&
	ctl_bounded 30 A --json log notes wide >log.json &&
	test_equal "--json replies" 2 "$(grep -c . log.json)"
'

test_expect_success 'a change to very many paths is summarised' '
	big_body >big.json &&
	item writer put notes many 0 81 @big.json >it1 &&
	top_body >top.json &&
	item writer put notes many 1 82 @top.json >it2 &&
	push s writer "$(cat it1)" "$(cat it2)" >push.out &&
	test_equal applied 2 "$(grep -o "\"applied\"" push.out | wc -l)" &&
	history A notes many &&
	entries h.out | cut -d" " -f1,5,6 >got &&
	printf "%s\n" "1 true [\"/big\",\"/small\"]" "2 true [\"\"]" >want &&
	test_cmp want got
'

test_expect_success 'ferryctl log: time, version, op, device, verified, paths' '
	ctl_bounded 10 A log notes n1 >log.out &&
	cat log.out &&
	test_equal lines 4 "$(grep -c . log.out)" &&
	short=$(printf "%s" "$KB" | cut -c1-12) &&
	grep -E "^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9:]{8}  v1  put +Alice laptop +verified +/body, /title\$" log.out &&
	grep -E "  v2  put +$short +verified +/title\$" log.out &&
	grep -E "  v3  put +Alice laptop +verified +/tags\$" log.out &&
	grep -E "  v4  delete +$short +verified +\(whole document\)\$" log.out &&
	test_grep ! UNVERIFIED log.out
'

test_expect_success 'ferryctl --json log prints the reply' '
	ctl_bounded 10 A --json log notes n1 >log.json &&
	history A notes n1 &&
	test_equal "--json output" \
	    "$(sed "s/^{\"parameters\"://; s/}\$//" h.out)" "$(cat log.json)"
'

test_expect_success 'an unknown document is NotFound: ferryctl exits 3' '
	fcall A History "{\"collection\":\"notes\",\"id\":\"nope\"}" >nf.out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\",\"parameters\":{\"collection\":\"notes\",\"id\":\"nope\"}}\$" nf.out &&
	test_expect_code 3 ctl_bounded 10 A log notes nope 2>err &&
	test_grep "nope" err
'

test_expect_success 'bad values are InvalidArgument, ill-typed ones InvalidParameter' '
	fcall A History "{\"collection\":\"no/slash\",\"id\":\"x\"}" >bad.out &&
	test_grep "\"error\":\"io.ferry.InvalidArgument\"" bad.out &&
	test_grep "\"field\":\"collection\"" bad.out &&
	fcall A History "{\"collection\":\"notes\",\"id\":\"n1\",\"after\":-1}" >bad.out &&
	test_grep "\"error\":\"io.ferry.InvalidArgument\"" bad.out &&
	test_grep "\"field\":\"after\"" bad.out &&
	fcall A History "{\"collection\":\"notes\"}" >bad.out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"id\"}}\$" bad.out &&
	fcall A History "{\"collection\":\"notes\",\"id\":\"n1\",\"x\":1}" >bad.out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"x\"}}\$" bad.out &&
	test_expect_code 1 ctl_bounded 10 A log "no/slash" x
'

test_expect_success 'a daemon without a remote answers Offline: exit 1' '
	ferryd_start C &&
	fcall C History "{\"collection\":\"notes\",\"id\":\"n1\"}" >off.out &&
	test_grep "^{\"error\":\"io.ferry.Offline\",\"parameters\":{\"reason\":\"no remote is configured\"}}\$" off.out &&
	test_expect_code 1 ctl_bounded 10 C log notes n1 2>err &&
	test_grep "no remote is configured" err &&
	ferryd_stop C
'

test_expect_success 'with the server stopped History is the local log, and why' '
	server_stop s &&
	fcall A History "{\"collection\":\"notes\",\"id\":\"n1\"}" >off.out &&
	test_grep "^{\"parameters\":{\"entries\":\[\],\"local\":\[{" off.out &&
	test_grep "\"remote_error\":\"cannot reach the remote: " off.out &&
	ctl_bounded 10 A log notes n1 >log.out 2>err &&
	test_grep "cannot reach the remote" err &&
	test_grep "this device.s change log" log.out &&
	server_start s --open &&
	history A notes n1 &&
	test_equal entries 4 "$(entries h.out | grep -c .)"
'

test_expect_success 'a client that leaves while the daemon fetches costs nothing' '
	kill -STOP "$(server_pid s)" &&
	printf "%s\0" "{\"method\":\"io.ferry.History\",\"parameters\":{\"collection\":\"notes\",\"id\":\"n1\"}}" >call &&
	"$VLSEND" "$(ferryd_sock A)" -n 1 --timeout 300 <call >gone.out;
	kill -CONT "$(server_pid s)" &&
	test_grep "^TIMEOUT" gone.out &&
	ferryd_works A &&
	history A notes n1 &&
	test_equal entries 4 "$(entries h.out | grep -c .)"
'

test_expect_success 'a daemon stopping while a History fetch waits stops cleanly' '
	syncd_start D s --debug &&
	sync_wait D &&
	kill -STOP "$(server_pid s)" &&
	test_bg "$VLSEND" "$(ferryd_sock D)" -n 1 --timeout 20000 <call \
	    >stop.out &&
	vp=$test_bg_pid &&
	test_wait_log "$(ferryd_log D)" "call io.ferry.History" &&
	ferryd_stop D;
	st=$?;
	kill -CONT "$(server_pid s)" &&
	test_wait_exit $vp &&
	test "$st" = 0 &&
	test_grep ! "^{\"parameters\"" stop.out
'

test_expect_success 'ids and collections that begin with - need no --' '
	echo "{\"dash\":1}" >dash.json &&
	ctl A put notes -x dash.json >out &&
	test_grep "notes/-x rev 1" out &&
	sync_wait A &&
	ctl A get notes -x >out &&
	test_grep "\"dash\": 1" out &&
	ctl A put -dashed -y dash.json >out &&
	test_grep "^-dashed/-y rev 1" out &&
	ctl A --json get -dashed -y >out &&
	test_grep "\"collection\":\"-dashed\"" out &&
	echo "{\"dash\":2}" | ctl A patch notes -x - --if-rev 1 >out &&
	test_grep "notes/-x rev 2" out &&
	sync_wait A &&
	ctl_bounded 10 A log notes -x >log.out &&
	test_grep "v1  put" log.out &&
	test_grep "v2  put.*/dash\$" log.out &&
	ctl A delete notes -x --if-rev 2 >out &&
	test_grep "deleted" out
'

test_expect_success '-- still ends the options; a name like --id needs it' '
	ctl A --json get -- notes -x >out &&
	test_grep "\"id\":\"-x\"" out &&
	ctl A --json get notes -- -x >out &&
	test_grep "\"deleted\":true" out &&
	test_expect_code 2 ctl A put notes --id dash.json 2>err &&
	test_grep "unknown option .--id." err &&
	ctl A put -- notes --id dash.json >out &&
	test_grep "notes/--id rev 1" out &&
	test_expect_code 2 ctl A get notes -x -y &&
	test_expect_code 2 ctl A put notes n9 dash.json --if-rev
'

test_expect_success 'conflicts show: base, mine, theirs per path, then the merge' '
	put_ok A notes cf "{\"n\":1,\"title\":\"orig\"}" &&
	sync_all A B &&
	server_stop s &&
	put_ok A notes cf "{\"n\":1,\"title\":\"from A\"}" &&
	put_ok B notes cf "{\"extra\":true,\"n\":1,\"title\":\"from B\"}" &&
	ferryd_stop B &&
	server_start s --open &&
	sync_wait A &&
	syncd_start B s &&
	sync_wait B &&
	cid=$(conflict_ids B | head -n 1) &&
	test -n "$cid" &&
	ctl_bounded 10 B conflicts show "$cid" >show.out &&
	cat show.out &&
	test_grep "^conflict: *$cid\$" show.out &&
	test_grep "^document: *notes/cf\$" show.out &&
	test_grep "^their version: *2\$" show.out &&
	test_grep "^paths:" show.out &&
	test_grep "^PATH  *BASE  *MINE  *THEIRS\$" show.out &&
	grep -E "^/title +\"orig\" +\"from B\" +\"from A\"\$" show.out &&
	test_grep ! "^/n " show.out &&
	test_grep "^merged, with mine at the conflicts:\$" show.out &&
	sed -n "/^merged/,\$p" show.out >merged &&
	test_grep "\"extra\": true" merged &&
	test_grep "\"title\": \"from B\"" merged &&
	test_grep ! "\\033" show.out
'

test_expect_success 'conflicts show cuts long values to the width; --json is the reply' '
	COLUMNS=30 LC_ALL=C ctl_bounded 10 B conflicts show "$cid" >show.out &&
	cat show.out &&
	sed -n "/^PATH/,/^\$/p" show.out >table &&
	test_equal "table lines" 2 "$(grep -c . table)" &&
	awk "length > 30 { print; bad = 1 } END { exit bad }" table &&
	grep -E "^/title +\"orig\" +\"fr\.\.\. +\"fr\.\.\.\$" table &&
	ctl_bounded 10 B --json conflicts show "$cid" >show.json &&
	fcall B GetConflict "{\"conflict_id\":$(conflict_json "$cid")}" >gc.out &&
	test_equal "--json output" \
	    "$(sed "s/^{\"parameters\"://; s/}\$//" gc.out)" "$(cat show.json)"
'

test_expect_success 'a record altered on the server: verified false, not trusted' '
	server_stop s &&
	sqlite3 "$(server_datadir s)/server.db" \
	    "UPDATE changes SET record = CAST(replace(CAST(record AS TEXT), \"second\", \"SECOND\") AS BLOB) WHERE collection = \"notes\" AND id = \"n1\" AND version = 2" &&
	server_start s --open &&
	history A notes n1 &&
	entries h.out >got &&
	cat >want <<-\EOF &&
	1 A "Alice laptop" put true ["/body","/title"]
	2 B null put false []
	3 A "Alice laptop" put true [""]
	4 B null delete true [""]
	EOF
	test_cmp want got &&
	test_grep "did not verify" "$(ferryd_log A)" &&
	ctl_bounded 10 A log notes n1 >log.out 2>err &&
	grep -E "  v2  put +[^ ]+ +UNVERIFIED +-\$" log.out &&
	test_grep "1 change of notes/n1 did not verify" err
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	ferryd_stop B &&
	server_stop s
'

test_done
