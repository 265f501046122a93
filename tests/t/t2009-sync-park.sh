#!/bin/sh
# Guards issue 8, break 2 (second half): a change pulled from the remote
# that cannot be applied (here a body over the documented body limit: one
# nested 65 levels deep, one of more than 4 MiB; ferry-server refuses
# such bodies on push, so the test writes them into its database with the
# sqlite3 tool, as a server without the limit or a damaged one would serve
# them) is
# parked, counted in Status.parked and listed (Status.parked_changes,
# `ferryctl status`, `ferryctl --json status`) with its reason, and never
# blocks the changes behind it: they apply, in the same page and later,
# the pull cursor moves past it, and a restart does not park it twice.
# Before the fix the over-limit bodies were stored as if valid and nothing
# was parked.

. "$(dirname "$0")/sync-lib.sh"

# deep N: an object N levels deep ({"a":{"a":...{"a":1}...}}).
deep() {
	awk -v n="$1" 'BEGIN {
		for (i = 0; i < n; i++) printf "{\"a\":"
		printf "1"
		for (i = 0; i < n; i++) printf "}"
	}'
}

# big BYTES: {"s":"xxx..."}, BYTES of x.
big() {
	awk -v n="$1" 'BEGIN {
		s = "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
		s = s s s s s s s s s s s s s s s s	# 1008
		printf "{\"s\":\""
		for (i = 0; i + 1008 <= n; i += 1008) printf "%s", s
		for (; i < n; i++) printf "x"
		printf "\"}"
	}'
}

test_expect_success 'setup: a server, daemon A syncing with it' '
	server_start s --open &&
	syncd_start A s &&
	sync_wait A
'

# One push by key "other": two placeholders between normal changes, so one
# pull page holds them all; A is stopped meanwhile so that it pulls them
# only once they are over the limit.
test_expect_success 'the server holds two over-limit bodies among normal changes' '
	ferryd_stop A &&
	key_of other >/dev/null &&
	deep 65 >deep.json &&
	big $((4 * 1024 * 1024 + 100)) >big.json &&
	item other put park before 0 1 "{\"n\":0}" >i1 &&
	item other put park deep 0 2 "{\"p\":\"DEEP\"}" >i2 &&
	item other put park after1 0 3 "{\"n\":1}" >i3 &&
	item other put park big 0 4 "{\"p\":\"BIG\"}" >i4 &&
	item other put park after2 0 5 "{\"n\":2}" >i5 &&
	{
		printf "{\"changes\":[" &&
		cat i1 && printf , && cat i2 && printf , && cat i3 &&
		printf , && cat i4 && printf , && cat i5 && printf "]}"
	} >push.json &&
	req s other POST /v1/push push.json >push.out &&
	status_is 200 push.out &&
	test_equal "applied" 5 "$(grep -o "\"status\":\"applied\"" push.out |
	    grep -c .)" &&
	server_stop s &&
	sqlite3 "$(server_datadir s)/server.db" "
	    UPDATE changes SET record = CAST(replace(CAST(record AS TEXT),
	        '"'"'{\"p\":\"DEEP\"}'"'"', readfile('"'"'deep.json'"'"')) AS BLOB)
	        WHERE collection = '"'"'park'"'"' AND id = '"'"'deep'"'"';
	    UPDATE changes SET record = CAST(replace(CAST(record AS TEXT),
	        '"'"'{\"p\":\"BIG\"}'"'"', readfile('"'"'big.json'"'"')) AS BLOB)
	        WHERE collection = '"'"'park'"'"' AND id = '"'"'big'"'"';" &&
	server_start s --open &&
	syncd_start A s
'

test_expect_success 'A pulls past them: the changes behind them apply' '
	sync_wait A 60 &&
	get A park before >b.out &&
	test_equal "before" "{\"n\":0}" "$(body_of b.out)" &&
	get A park after1 >a1.out &&
	test_equal "after1" "{\"n\":1}" "$(body_of a1.out)" &&
	test_equal "after1 version" 1 "$(json_int version a1.out)" &&
	get A park after2 >a2.out &&
	test_equal "after2" "{\"n\":2}" "$(body_of a2.out)"
'

test_expect_success 'the over-limit bodies are not in the replica' '
	get A park deep >d.out &&
	test_grep "io.ferry.NotFound" d.out &&
	get A park big >g.out &&
	test_grep "io.ferry.NotFound" g.out
'

test_expect_success 'Status counts and lists them with the reason' '
	status_of A >st &&
	test_equal parked 2 "$(json_int parked st)" &&
	test_equal rejected 0 "$(json_int rejected st)" &&
	test_equal conflicts 0 "$(json_int conflicts st)" &&
	test_grep "\"parked_changes\":\[" st &&
	test_grep "{\"collection\":\"park\",\"id\":\"deep\",\"version\":1,\"change\":\"[^\"]*:2\",\"reason\":\"body is nested deeper than 64 levels\"" st &&
	test_grep "{\"collection\":\"park\",\"id\":\"big\",\"version\":1,\"change\":\"[^\"]*:4\",\"reason\":\"body is larger than 4194304 bytes of compact JSON\"" st
'

test_expect_success 'ferryctl status and ferryctl parked show them, also as --json' '
	ctl_bounded 10 A status >ctl.out &&
	test_grep "^parked: *2\$" ctl.out &&
	test_grep "^  park/deep version 1: body is nested deeper than 64 levels\$" ctl.out &&
	test_grep "^  park/big version 1: body is larger than 4194304 bytes" ctl.out &&
	ctl_bounded 10 A --json status >ctl.json &&
	test_grep "\"parked\": *2" ctl.json &&
	test_grep "\"reason\": *\"body is nested deeper than 64 levels\"" ctl.json &&
	ctl_bounded 10 A parked >parked.out &&
	test_equal "parked lines" 2 "$(grep -c . parked.out)" &&
	test_grep "^park/deep version 1 ([^)]*:2): body is nested deeper than 64 levels\$" parked.out &&
	test_grep "^park/big version 1 ([^)]*:4): body is larger than 4194304 bytes" parked.out &&
	ctl_bounded 10 A --json parked >parked.json &&
	test_grep "\"parked\": *\[" parked.json &&
	test_grep "\"id\": *\"big\"" parked.json
'

test_expect_success 'a later change to a parked document, inside the limit, applies' '
	item other put park deep 1 6 "{\"fixed\":true}" >i6 &&
	printf "{\"changes\":[%s]}" "$(cat i6)" >push6.json &&
	req s other POST /v1/push push6.json >push6.out &&
	status_is 200 push6.out &&
	test_grep "\"status\":\"applied\",\"version\":2" push6.out &&
	sync_wait A &&
	get A park deep >d2.out &&
	test_equal "deep now" "{\"fixed\":true}" "$(body_of d2.out)" &&
	test_equal "deep version" 2 "$(json_int version d2.out)" &&
	test_equal parked 2 "$(status_int A parked)"
'

test_expect_success 'after a restart the cursor is past them: nothing parked twice' '
	ferryd_stop A &&
	ferryd_start A --remote "$(server_url s)" &&
	sync_wait A &&
	test_equal parked 2 "$(status_int A parked)" &&
	put_ok A park mine "{\"m\":1}" &&
	sync_wait A &&
	server_doc s park mine >m.out &&
	test_grep "^{\"body\":{\"m\":1},\"deleted\":false,\"version\":1}\$" m.out
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	server_stop s
'

test_done
