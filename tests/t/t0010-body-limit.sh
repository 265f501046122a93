#!/bin/sh
# Guards the one body limit in ferryd (issue 8, break 2): a body nested
# 2,046 levels fitted in a varlink frame (2,048) and was stored, but every
# reply that wraps a body (Get, Watch, the server's /v1/changes) adds
# levels, so no reader could parse it and every device's pull failed on it.
# Now a body is at most 64 levels deep and 4 MiB of compact JSON: one at
# the limit is accepted and readable through Get and Watch; one level
# deeper (65), 2,046 levels, or one byte larger is refused on Put, on
# Patch (the patched body), and on Resolve (the merged body) with
# io.ferry.InvalidArgument naming the field and the limit; nothing is
# written, the conflict stays open, and ferryd keeps running.

. "$(dirname "$0")/sync-lib.sh"

# refused OUT FIELD WHY: the reply in OUT is InvalidArgument for FIELD
# whose reason says WHY and names the limit.
refused() {
	test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" "$1" &&
	test_grep "\"field\":\"$2\"" "$1" &&
	test_grep "$3 (the limit is 64 levels and 4194304 bytes of compact JSON)" "$1"
}

deeper="is nested deeper than 64 levels"
larger="is larger than 4194304 bytes of compact JSON"

# refused_all NAME METHOD PARAMS FIELD WHAT: METHOD on NAME, with each body
# past the limit (65 and 2,046 levels, 4 MiB + 1 bytes) after PARAMS (which
# ends with the key of the body's field), is refused naming FIELD and WHAT.
refused_all() {
	for _b in d65 d2046 big; do
		case $_b in
		big) _why=$larger ;;
		*) _why=$deeper ;;
		esac
		fcall "$1" "$2" "$3$(cat $_b.json)}" >out &&
		refused out "$4" "$5 $_why" || return 1
	done
}

test_expect_success 'setup: a server, A and B synced with it' '
	json_nested 64 >d64.json &&
	json_nested 65 >d65.json &&
	json_nested 2046 >d2046.json &&
	json_sized 4194305 >big.json &&
	test "$(wc -c <big.json)" = 4194305 &&
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	pid0=$(ferryd_pid A)
'

test_expect_success 'a body 64 levels deep is accepted, and Watch carries it' '
	watch_bg A watch.out 2 "{\"collections\":[\"deep\"]}" &&
	put A deep d64 "$(cat d64.json)" >out &&
	test_grep "^{\"parameters\":{\"doc\":{" out &&
	watch_done watch.out &&
	test_grep -F "\"id\":\"d64\"" watch.out &&
	test_grep -F "\"body\":$(cat d64.json)}" watch.out
'

test_expect_success 'Get reads the 64-level body back whole' '
	get A deep d64 >out &&
	test_equal body "$(cat d64.json)" "$(body_of out)"
'

test_expect_success 'Put: 65 and 2,046 levels, 4 MiB + 1 bytes are refused' '
	refused_all A Put "{\"collection\":\"deep\",\"id\":\"over\",\"body\":" \
	    body body &&
	get A deep over >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out
'

test_expect_success 'Put: a body of exactly 4 MiB is taken' '
	json_sized 4194304 >max.json &&
	put A big max "$(cat max.json)" >out &&
	test_grep "^{\"parameters\":{\"doc\":{" out
'

test_expect_success 'Patch: a patched body past the limit is refused, the doc kept' '
	put_ok A deep p "{\"t\":1}" &&
	refused_all A Patch "{\"collection\":\"deep\",\"id\":\"p\",\"patch\":" \
	    patch "the patched body" &&
	get A deep p >out &&
	test_equal rev 1 "$(json_int rev out)" &&
	test_equal body "{\"t\":1}" "$(body_of out)" &&
	fcall A Patch "{\"collection\":\"deep\",\"id\":\"p\",\"patch\":{\"e\":$(json_nested 63)}}" >out &&
	test_equal rev 2 "$(json_int rev out)"
'

test_expect_success 'a conflict on B: the same field edited on A and on B' '
	edit_conflict s A B notes c1 "{\"title\":\"orig\"}" \
	    "{\"title\":\"from A\"}" "{\"title\":\"from B\"}" &&
	test_equal "open conflicts" 1 "$(grep -c . "$TEST_DIR/.ids")" &&
	cid=$(conflict_json "$(cat "$TEST_DIR/.ids")")
'

test_expect_success 'Resolve: a merged body past the limit is refused, the conflict stays' '
	refused_all B Resolve "{\"conflict_id\":$cid,\"strategy\":\"merged\",\"body\":" \
	    body body &&
	conflict_ids B >ids &&
	test_equal "open conflicts" 1 "$(grep -c . ids)" &&
	get B notes c1 >out &&
	test_grep "\"conflicted\":true" out
'

test_expect_success 'Resolve: a merged body at the limit resolves and syncs' '
	fcall B Resolve "{\"conflict_id\":$cid,\"strategy\":\"merged\",\"body\":$(cat d64.json)}" >out &&
	test_grep "^{\"parameters\":{\"doc\":{" out &&
	sync_wait B &&
	sync_wait A &&
	get A notes c1 >out &&
	test_equal body "$(cat d64.json)" "$(body_of out)"
'

test_expect_success 'ferryd A is the same process and still serves' '
	ferryd_running A &&
	test_equal "ferryd pid" "$pid0" "$(ferryd_pid A)" &&
	ferryd_works A &&
	ferryd_works B
'

test_done
