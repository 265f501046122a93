#!/bin/sh
# Guards the local document contract of io.ferry without a remote: Put, Get,
# Patch (RFC 7396), Delete (a tombstone Get still shows), List paging,
# if_rev (a stale writer gets RevMismatch with the current doc and changes
# nothing: no "last write wins"), Status counters, the varlink service
# methods, and refusals of unknown methods and bad names.

. "$(dirname "$0")/test-lib.sh"

# put NAME C ID BODY [IF_REV]
put() {
	fcall "$1" Put "{\"collection\":\"$2\",\"id\":\"$3\",\"body\":$4${5:+,\"if_rev\":$5}}"
}

get() {
	fcall "$1" Get "{\"collection\":\"$2\",\"id\":\"$3\"}"
}

test_expect_success 'start ferryd' '
	ferryd_start A
'

test_expect_success 'Put creates a document at rev 1 and omits the body' '
	put A notes n1 "{\"title\":\"one\",\"n\":1}" >out &&
	test_grep "^{\"parameters\":{\"doc\":{" out &&
	test "$(json_int rev out)" = 1 &&
	test "$(json_int version out)" = 0 &&
	test_grep "\"collection\":\"notes\"" out &&
	test_grep "\"id\":\"n1\"" out &&
	test_grep "\"deleted\":false" out &&
	test_grep "\"pending\":true" out &&
	test_grep "\"conflicted\":false" out &&
	test_grep ! "\"body\"" out
'

test_expect_success 'Get returns the body as written' '
	get A notes n1 >out &&
	test_grep "\"body\":{\"title\":\"one\",\"n\":1}" out &&
	test "$(json_int rev out)" = 1 &&
	test_grep "\"deleted\":false" out
'

test_expect_success 'Get of a missing document is NotFound' '
	get A notes nope >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out &&
	test_grep "\"id\":\"nope\"" out
'

test_expect_success 'a second Put replaces the body and bumps rev' '
	put A notes n1 "{\"title\":\"two\"}" >out &&
	test "$(json_int rev out)" = 2 &&
	get A notes n1 >out &&
	test_grep "\"body\":{\"title\":\"two\"}" out &&
	test "$(json_int rev out)" = 2
'

test_expect_success 'JSON values survive byte for byte' '
	cat >body.json <<-\EOF &&
	{"s":"café \"q\" \\ \n\t","f":0.5,"neg":-7,"big":9007199254740993,"t":true,"z":null,"e":{},"a":[[],{}]}
	EOF
	put A notes uni "$(cat body.json)" >out &&
	test "$(json_int rev out)" = 1 &&
	get A notes uni >out &&
	printf "\"body\":%s}}}\n" "$(cat body.json)" >want &&
	test_grep -F -f want out
'

test_expect_success 'Patch applies an RFC 7396 merge patch and returns the body' '
	put A notes p1 "{\"a\":1,\"b\":{\"c\":2,\"d\":3},\"e\":[1,2],\"keep\":\"k\"}" >out &&
	fcall A Patch "{\"collection\":\"notes\",\"id\":\"p1\",\"patch\":{\"a\":null,\"b\":{\"c\":null,\"x\":\"y\"},\"e\":[3],\"missing\":null,\"new\":{\"deep\":{\"v\":1}}}}" >out &&
	test "$(json_int rev out)" = 2 &&
	test_grep "\"body\":{" out &&
	get A notes p1 >got &&
	for f in out got; do
		test_grep "\"keep\":\"k\"" $f &&
		test_grep "\"d\":3" $f &&
		test_grep "\"x\":\"y\"" $f &&
		test_grep "\"e\":\[3\]" $f &&
		test_grep "\"new\":{\"deep\":{\"v\":1}}" $f &&
		test_grep ! "\"a\":" $f &&
		test_grep ! "\"c\":" $f &&
		test_grep ! "\"missing\"" $f || return 1
	done
'

test_expect_success 'Patch of a missing document is NotFound and creates nothing' '
	fcall A Patch "{\"collection\":\"notes\",\"id\":\"ghost\",\"patch\":{\"a\":1}}" >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out &&
	get A notes ghost >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out
'

test_expect_success 'Patch that is not an object is InvalidParameter' '
	fcall A Patch "{\"collection\":\"notes\",\"id\":\"p1\",\"patch\":[1]}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"patch\"}}\$" out &&
	get A notes p1 >out &&
	test "$(json_int rev out)" = 2
'

test_expect_success 'Delete leaves a tombstone that Get shows as deleted' '
	fcall A Delete "{\"collection\":\"notes\",\"id\":\"n1\"}" >out &&
	test "$(json_int rev out)" = 3 &&
	test_grep "\"deleted\":true" out &&
	test_grep ! "\"body\":{" out &&
	get A notes n1 >out &&
	test_grep "^{\"parameters\":{\"doc\":{" out &&
	test "$(json_int rev out)" = 3 &&
	test_grep "\"deleted\":true" out &&
	test_grep ! "\"body\":{" out
'

test_expect_success 'Delete and Patch of a tombstone are NotFound' '
	fcall A Delete "{\"collection\":\"notes\",\"id\":\"n1\"}" >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out &&
	fcall A Patch "{\"collection\":\"notes\",\"id\":\"n1\",\"patch\":{\"a\":1}}" >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out &&
	get A notes n1 >out &&
	test "$(json_int rev out)" = 3
'

test_expect_success 'Put on a tombstone brings the document back at the next rev' '
	put A notes n1 "{\"back\":true}" >out &&
	test "$(json_int rev out)" = 4 &&
	test_grep "\"deleted\":false" out &&
	get A notes n1 >out &&
	test_grep "\"body\":{\"back\":true}" out
'

test_expect_success 'Put with a stale if_rev is RevMismatch with the current doc' '
	put A notes n1 "{\"stale\":1}" 3 >out &&
	test_grep "^{\"error\":\"io.ferry.RevMismatch\"" out &&
	test_grep "\"current\":{" out &&
	test "$(json_int rev out)" = 4 &&
	test_grep "\"body\":{\"back\":true}" out &&
	get A notes n1 >out &&
	test "$(json_int rev out)" = 4 &&
	test_grep "\"body\":{\"back\":true}" out
'

test_expect_success 'if_rev 0 creates only if absent' '
	put A notes fresh "{\"v\":1}" 0 >out &&
	test "$(json_int rev out)" = 1 &&
	put A notes fresh "{\"v\":2}" 0 >out &&
	test_grep "^{\"error\":\"io.ferry.RevMismatch\"" out &&
	test "$(json_int rev out)" = 1 &&
	get A notes fresh >out &&
	test_grep "\"body\":{\"v\":1}" out
'

test_expect_success 'a matching if_rev writes' '
	put A notes fresh "{\"v\":3}" 1 >out &&
	test "$(json_int rev out)" = 2 &&
	fcall A Patch "{\"collection\":\"notes\",\"id\":\"fresh\",\"patch\":{\"w\":1},\"if_rev\":2}" >out &&
	test "$(json_int rev out)" = 3 &&
	test_grep "\"body\":{\"v\":3,\"w\":1}" out
'

test_expect_success 'Patch and Delete with a stale if_rev change nothing' '
	fcall A Patch "{\"collection\":\"notes\",\"id\":\"fresh\",\"patch\":{\"w\":2},\"if_rev\":2}" >out &&
	test_grep "^{\"error\":\"io.ferry.RevMismatch\"" out &&
	test "$(json_int rev out)" = 3 &&
	fcall A Delete "{\"collection\":\"notes\",\"id\":\"fresh\",\"if_rev\":1}" >out &&
	test_grep "^{\"error\":\"io.ferry.RevMismatch\"" out &&
	get A notes fresh >out &&
	test "$(json_int rev out)" = 3 &&
	test_grep "\"deleted\":false" out &&
	test_grep "\"body\":{\"v\":3,\"w\":1}" out
'

test_expect_success 'pipelined writes with if_rev see each other' '
	printf "%s\0" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"race\",\"id\":\"p\",\"body\":{\"w\":1},\"if_rev\":0}}" \
	    "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"race\",\"id\":\"p\",\"body\":{\"w\":2},\"if_rev\":0}}" \
	    "{\"method\":\"io.ferry.Get\",\"parameters\":{\"collection\":\"race\",\"id\":\"p\"}}" |
	    "$VLSEND" "$(ferryd_sock A)" -n 3 >out &&
	sed -n 1p out >r1 && sed -n 2p out >r2 && sed -n 3p out >r3 &&
	test "$(json_int rev r1)" = 1 &&
	test_grep "^{\"error\":\"io.ferry.RevMismatch\"" r2 &&
	test_grep "\"body\":{\"w\":1}" r2 &&
	test_grep "\"body\":{\"w\":1}" r3
'

# The promise ferry exists for: of many writers that all saw rev 1, exactly
# one wins; every other one is told, with the winner's document.
test_expect_success 'concurrent writers with the same if_rev: exactly one wins' '
	put A race c "{\"w\":0}" >out &&
	test "$(json_int rev out)" = 1 &&
	pids="" &&
	for i in $(seq 1 20); do
		printf "%s\0" "{\"method\":\"io.ferry.Put\",\"parameters\":{\"collection\":\"race\",\"id\":\"c\",\"body\":{\"w\":$i},\"if_rev\":1}}" >call.$i &&
		test_bg "$VLSEND" "$(ferryd_sock A)" -n 1 <call.$i >w.$i &&
		pids="$pids $test_bg_pid" || return 1
	done &&
	for p in $pids; do
		test_wait_exit $p || return 1
	done &&
	cat w.* | grep -c "^{\"parameters\":{\"doc\"" >wins &&
	cat w.* | grep -c "^{\"error\":\"io.ferry.RevMismatch\"" >lost &&
	test_equal winners 1 "$(cat wins)" &&
	test_equal losers 19 "$(cat lost)" &&
	winner=$(grep -l "^{\"parameters\"" w.* | sed "s/^w\.//") &&
	get A race c >out &&
	test "$(json_int rev out)" = 2 &&
	test_grep "\"body\":{\"w\":$winner}" out
'

test_expect_success 'if_rev must be a non-negative integer' '
	put A notes fresh "{\"v\":9}" -1 >out &&
	test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" out &&
	test_grep "\"field\":\"if_rev\"" out &&
	put A notes fresh "{\"v\":9}" "\"3\"" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"if_rev\"}}\$" out &&
	get A notes fresh >out &&
	test "$(json_int rev out)" = 3
'

test_expect_success 'saving an identical body is not a new revision' '
	put A notes same "{\"x\":1}" >out &&
	test "$(json_int rev out)" = 1 &&
	put A notes same "{\"x\":1}" >out &&
	test "$(json_int rev out)" = 1
'

# ids d00..d24 in collection "page"; one tombstone that List must skip.
test_expect_success 'set up a collection of 25 documents and a tombstone' '
	i=0 &&
	while [ $i -lt 25 ]; do
		id=$(printf "d%02d" $i) &&
		put A page $id "{\"i\":$i}" >out &&
		test "$(json_int rev out)" = 1 || return 1
		i=$((i + 1))
	done &&
	put A page d99 "{\"gone\":1}" >out &&
	fcall A Delete "{\"collection\":\"page\",\"id\":\"d99\"}" >out &&
	test_grep "\"deleted\":true" out
'

list_ids() {
	grep -o "\"id\":\"[^\"]*\"" "$1" | cut -d\" -f4
}

test_expect_success 'List pages in id order with limit, after and next' '
	fcall A List "{\"collection\":\"page\",\"limit\":10}" >p1 &&
	test "$(list_ids p1 | wc -l)" = 10 &&
	test "$(json_str next p1)" = d09 &&
	fcall A List "{\"collection\":\"page\",\"limit\":10,\"after\":\"d09\"}" >p2 &&
	test "$(list_ids p2 | wc -l)" = 10 &&
	test "$(json_str next p2)" = d19 &&
	fcall A List "{\"collection\":\"page\",\"limit\":10,\"after\":\"d19\"}" >p3 &&
	test "$(list_ids p3 | wc -l)" = 5 &&
	test_grep ! "\"next\"" p3 &&
	{ list_ids p1; list_ids p2; list_ids p3; } >all &&
	i=0 && : >want &&
	while [ $i -lt 25 ]; do printf "d%02d\n" $i >>want; i=$((i + 1)); done &&
	test_cmp want all &&
	test_grep "\"body\":{\"i\":0}" p1 &&
	test_grep "\"body\":{\"i\":24}" p3
'

test_expect_success 'List without a limit returns up to 100 and skips tombstones' '
	fcall A List "{\"collection\":\"page\"}" >out &&
	test "$(list_ids out | wc -l)" = 25 &&
	test_grep ! "d99" out &&
	test_grep ! "\"next\"" out
'

test_expect_success 'List: a page that ends exactly at the end has no next' '
	fcall A List "{\"collection\":\"page\",\"limit\":5,\"after\":\"d19\"}" >out &&
	test "$(list_ids out | wc -l)" = 5 &&
	test_grep ! "\"next\"" out &&
	fcall A List "{\"collection\":\"page\",\"after\":\"d24\"}" >out &&
	test_grep "\"docs\":\[\]" out &&
	fcall A List "{\"collection\":\"empty\"}" >out &&
	test_grep "\"docs\":\[\]" out &&
	test_grep ! "\"next\"" out
'

test_expect_success 'List refuses a limit outside 1..1000' '
	for l in 0 1001 -1; do
		fcall A List "{\"collection\":\"page\",\"limit\":$l}" >out &&
		test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" out &&
		test_grep "\"field\":\"limit\"" out || return 1
	done &&
	fcall A List "{\"collection\":\"page\",\"limit\":\"5\"}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"limit\"}}\$" out &&
	fcall A List "{\"collection\":\"page\",\"limit\":1000}" >out &&
	test "$(list_ids out | wc -l)" = 25
'

test_expect_success 'bad collection and id names are refused, good ones taken' '
	long=$(printf "%0128d" 0) &&
	for c in "\"\"" "\"a/b\"" "\"a b\"" "\"a:b\"" "\"${long}x\"" "\"caf\\u00e9\""; do
		fcall A Put "{\"collection\":$c,\"id\":\"x\",\"body\":{}}" >out &&
		test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" out &&
		test_grep "\"field\":\"collection\"" out || return 1
	done &&
	for c in 7 null; do
		fcall A Put "{\"collection\":$c,\"id\":\"x\",\"body\":{}}" >out &&
		test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"collection\"}}\$" out || return 1
	done &&
	for i in "\"\"" "\"a/b\"" "\"../x\"" "\"${long}x\""; do
		fcall A Put "{\"collection\":\"c\",\"id\":$i,\"body\":{}}" >out &&
		test_grep "^{\"error\":\"io.ferry.InvalidArgument\"" out &&
		test_grep "\"field\":\"id\"" out || return 1
	done &&
	fcall A Put "{\"collection\":\"c\",\"id\":\"a\\u0000b\",\"body\":{}}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\"" out &&
	put A "$long" "user@host:1.x_y-Z" "{}" >out &&
	test "$(json_int rev out)" = 1 &&
	get A "$long" "user@host:1.x_y-Z" >out &&
	test_grep "\"body\":{}" out
'

test_expect_success 'Put needs an object body and known parameters' '
	for b in "[]" "\"s\"" 1 null; do
		fcall A Put "{\"collection\":\"c\",\"id\":\"x\",\"body\":$b}" >out &&
		test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"body\"}}\$" out || return 1
	done &&
	fcall A Put "{\"collection\":\"c\",\"id\":\"x\"}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"body\"}}\$" out &&
	fcall A Put "{\"collection\":\"c\",\"id\":\"x\",\"body\":{},\"bogus\":1}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InvalidParameter\",\"parameters\":{\"parameter\":\"bogus\"}}\$" out &&
	get A c x >out &&
	test_grep "^{\"error\":\"io.ferry.NotFound\"" out
'

test_expect_success 'Status of a fresh daemon: unconfigured, counts, device' '
	ferryd_start S &&
	fcall S Status >out &&
	test "$(json_str state out)" = unconfigured &&
	test "$(json_int docs out)" = 0 &&
	test "$(json_int pending out)" = 0 &&
	test "$(json_int conflicts out)" = 0 &&
	test "$(json_int rejected out)" = 0 &&
	test_grep "\"remote\":null\|\"remote\" *:" out &&
	test_grep ! "\"remote\":\"" out &&
	dev=$(json_str device out) &&
	test -n "$dev" &&
	test_grep "device $dev" "$(ferryd_log S)" &&
	test_grep "\"version\":\"[0-9]" out
'

test_expect_success 'Status counts docs and pending changes' '
	put S a 1 "{}" >/dev/null && put S a 2 "{}" >/dev/null &&
	put S b 1 "{}" >/dev/null &&
	fcall S Status >out &&
	test "$(json_int docs out)" = 3 &&
	test "$(json_int pending out)" = 3 &&
	put S a 1 "{\"again\":1}" >/dev/null &&
	fcall S Status >out &&
	test "$(json_int docs out)" = 3 &&
	test "$(json_int pending out)" = 3 &&
	fcall S Delete "{\"collection\":\"b\",\"id\":\"1\"}" >/dev/null &&
	fcall S Status >out &&
	test "$(json_int docs out)" = 2
'

test_expect_success 'GetInfo names ferryd and its interfaces' '
	fcall A org.varlink.service.GetInfo >out &&
	test_grep "\"product\":\"ferryd\"" out &&
	test_grep "\"interfaces\":\[[^]]*\"io.ferry\"" out &&
	test_grep "\"interfaces\":\[[^]]*\"org.varlink.service\"" out
'

test_expect_success 'GetInterfaceDescription returns the interface text' '
	fcall A org.varlink.service.GetInterfaceDescription "{\"interface\":\"io.ferry\"}" >out &&
	test_grep "\"description\":\"[^\"]*interface io.ferry" out &&
	test_grep "method Watch" out &&
	fcall A org.varlink.service.GetInterfaceDescription "{\"interface\":\"org.varlink.service\"}" >out &&
	test_grep "interface org.varlink.service" out &&
	fcall A org.varlink.service.GetInterfaceDescription "{\"interface\":\"com.example.nope\"}" >out &&
	test_grep "^{\"error\":\"org.varlink.service.InterfaceNotFound\"" out
'

test_expect_success 'unknown methods and interfaces are named in the error' '
	fcall A io.ferry.Frobnicate >out &&
	test_grep "^{\"error\":\"org.varlink.service.MethodNotFound\"" out &&
	test_grep "io.ferry.Frobnicate" out &&
	fcall A com.example.Thing >out &&
	test_grep "^{\"error\":\"org.varlink.service.InterfaceNotFound\"" out &&
	fcall A Get >out &&
	test_grep "^{\"error\":\"" out &&
	ferryd_works A
'

test_expect_success 'documents survive a clean restart' '
	ferryd_stop A &&
	ferryd_start A &&
	get A notes p1 >out &&
	test "$(json_int rev out)" = 2 &&
	test_grep "\"x\":\"y\"" out &&
	get A notes n1 >out &&
	test "$(json_int rev out)" = 4 &&
	test_grep "\"body\":{\"back\":true}" out &&
	fcall A List "{\"collection\":\"page\"}" >out &&
	test "$(list_ids out | wc -l)" = 25
'

test_expect_success 'stop cleanly' '
	ferryd_stop A &&
	ferryd_stop S
'

test_done
