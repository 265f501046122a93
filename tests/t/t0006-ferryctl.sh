#!/bin/sh
# Guards ferryctl's contract with scripts: each command does what it says
# against a local ferryd, --json prints the reply objects one per line, and
# the exit codes are 0 ok, 1 error, 2 usage, 3 not found, 4 rev mismatch,
# 5 daemon not reachable; a refused command changes nothing.

. "$(dirname "$0")/test-lib.sh"

[ -x "$FERRYCTL" ] || skip_all "ferryctl is not built"

test_expect_success 'start ferryd' '
	ferryd_start A
'

test_expect_success 'put from a file and get it back' '
	printf "{\"title\":\"one\",\"n\":[1,2]}\n" >b1.json &&
	ctl A put notes n1 b1.json >out &&
	test_grep "notes/n1" out &&
	test_grep "rev 1" out &&
	ctl A --json get notes n1 >out &&
	test "$(grep -c . out)" = 1 &&
	test_grep "^{\"doc\":{" out &&
	test_grep "\"body\":{\"title\":\"one\",\"n\":\[1,2\]}" out &&
	test "$(json_int rev out)" = 1
'

test_expect_success 'get prints the body as JSON' '
	ctl A get notes n1 >out &&
	test_grep "\"title\": *\"one\"" out &&
	test_grep ! "\"rev\"" out
'

test_expect_success 'put from stdin, with - and without a file' '
	echo "{\"v\":2}" | ctl A put notes n2 - >out &&
	echo "{\"v\":3}" | ctl A --json put notes n3 >out &&
	test_grep "^{\"doc\":{" out &&
	test_grep ! "\"body\"" out &&
	ctl A --json get notes n2 >out &&
	test_grep "\"body\":{\"v\":2}" out &&
	ctl A --json get notes n3 >out &&
	test_grep "\"body\":{\"v\":3}" out
'

test_expect_success 'patch applies a merge patch' '
	echo "{\"n\":null,\"extra\":{\"k\":true}}" | ctl A patch notes n1 - >out &&
	test_grep "rev 2" out &&
	ctl A --json get notes n1 >out &&
	test_grep "\"body\":{\"title\":\"one\",\"extra\":{\"k\":true}}" out
'

test_expect_success 'get of a missing document exits 3' '
	test_expect_code 3 ctl A get notes nope >out 2>err &&
	test_grep "nope" err &&
	test ! -s out
'

test_expect_success 'patch and delete of a missing document exit 3' '
	echo "{}" >empty.json &&
	test_expect_code 3 ctl A patch notes nope empty.json &&
	test_expect_code 3 ctl A delete notes nope
'

test_expect_success '--if-rev: a stale rev exits 4 and changes nothing' '
	test_expect_code 4 ctl A put notes n1 b1.json --if-rev 1 2>err &&
	test_grep "rev 2" err &&
	test_expect_code 4 ctl A patch notes n1 empty.json --if-rev 5 &&
	test_expect_code 4 ctl A delete notes n1 --if-rev 1 &&
	ctl A --json get notes n1 >out &&
	test "$(json_int rev out)" = 2 &&
	test_grep "\"extra\":{\"k\":true}" out
'

test_expect_success '--if-rev: the current rev writes; 0 creates only' '
	ctl A put notes n1 b1.json --if-rev 2 >out &&
	test_grep "rev 3" out &&
	test_expect_code 4 ctl A put notes n1 b1.json --if-rev 0 &&
	ctl A put notes brandnew b1.json --if-rev 0 >out &&
	test_grep "rev 1" out
'

test_expect_success 'delete leaves a tombstone: get exits 3, --json shows it' '
	ctl A delete notes n2 >out &&
	test_grep "deleted" out &&
	test_expect_code 3 ctl A get notes n2 &&
	ctl A --json get notes n2 >out &&
	test_grep "\"deleted\":true" out &&
	test_expect_code 3 ctl A delete notes n2
'

test_expect_success 'ls lists live documents; paging with --limit/--after/--all' '
	for i in 1 2 3 4 5; do
		echo "{\"i\":$i}" | ctl A put page p$i >/dev/null || return 1
	done &&
	ctl A ls page >out &&
	test "$(grep -c . out)" = 6 &&
	test_grep "^ID  *REV  *VERSION  *STATE$" out &&
	test_grep "^p1\b" out &&
	ctl A --json ls page --limit 2 >out &&
	test "$(grep -o "\"id\":\"p[0-9]\"" out | wc -l)" = 2 &&
	test "$(json_str next out)" = p2 &&
	ctl A --json ls page --limit 2 --after p4 >out &&
	test "$(grep -o "\"id\":\"p[0-9]\"" out | wc -l)" = 1 &&
	test_grep ! "\"next\"" out &&
	ctl A ls page --all --limit 2 >out &&
	test "$(grep -c . out)" = 6 &&
	ctl A ls notes >out &&
	test_grep ! "^n2\b" out &&
	ctl A ls empty >out &&
	test ! -s out
'

test_expect_success 'status and key' '
	ctl A --json status >out &&
	test "$(json_str state out)" = unconfigured &&
	test "$(json_int docs out)" = 8 &&
	ctl A status >out &&
	test_grep "unconfigured" out &&
	ctl A key >key &&
	test "$(grep -c . key)" = 1 &&
	test_grep "device $(cat key)" "$(ferryd_log A)" &&
	ctl A --json key >out &&
	test "$(json_str device out)" = "$(cat key)"
'

test_expect_success 'watch --json prints each change as one event line' '
	"$FERRYCTL" --socket "$(ferryd_sock A)" --json watch --since 0 \
	    >w.out 2>w.err &
	wp=$! && test_track $wp &&
	echo "{\"live\":1}" | ctl A put live l1 >/dev/null &&
	n=$(($(ctl A --json status | json_int seq) + 0)) &&
	test_wait_until 10 "[ \$(grep -c . w.out) -ge $n ]" &&
	kill $wp && test_wait_exit $wp &&
	test_equal "lines of w.out" "$n" "$(grep -c . w.out)" &&
	grep -o "\"seq\":[0-9]*" w.out | cut -d: -f2 >got &&
	check_run got 1 "$n" &&
	tail -n 1 w.out >last &&
	test_grep "\"collection\":\"live\"" last &&
	test_grep "\"origin\":\"local\"" last &&
	test_grep "\"body\":{\"live\":1}" last
'

test_expect_success 'watch C filters; human output names seq, doc, rev, origin' '
	"$FERRYCTL" --socket "$(ferryd_sock A)" watch live --since 0 \
	    >wc.out 2>w.err &
	wp=$! && test_track $wp &&
	echo "{\"live\":2}" | ctl A put live l2 >/dev/null &&
	test_wait_until 10 "[ \$(grep -c . wc.out) -ge 2 ]" &&
	kill $wp && test_wait_exit $wp &&
	cat wc.out &&
	test_equal "lines of wc.out" 2 "$(grep -c . wc.out)" &&
	test_grep "live/l1 rev 1 local" wc.out &&
	test_grep "live/l2 rev 1 local" wc.out
'

test_expect_success 'watch ends with an error when ferryd stops' '
	"$FERRYCTL" --socket "$(ferryd_sock A)" watch --since 0 >ws.out 2>ws.err &
	wp=$! && test_track $wp &&
	test_wait_until 10 "test -s ws.out" &&
	ferryd_stop A &&
	test_wait_exit $wp &&
	test "$test_exit_status" != 0 &&
	test -s ws.err &&
	ferryd_start A
'

test_expect_success 'usage errors exit 2 and send nothing' '
	test_expect_code 2 ctl A &&
	test_expect_code 2 ctl A bogus &&
	test_expect_code 2 ctl A get notes &&
	test_expect_code 2 ctl A get notes a b &&
	test_expect_code 2 ctl A put notes x b1.json --if-rev abc &&
	test_expect_code 2 ctl A ls page --limit x &&
	test_expect_code 2 ctl A --no-such-option status &&
	test_expect_code 2 ctl A watch --since -1
'

test_expect_success 'bad input files exit 1 and write nothing' '
	echo "not json" >bad.json &&
	test_expect_code 1 ctl A put notes bad bad.json 2>err &&
	test_grep "line 1" err &&
	echo "[1,2]" >arr.json &&
	test_expect_code 1 ctl A put notes bad arr.json &&
	test_expect_code 1 ctl A put notes bad "$TEST_DIR/no-such-file" &&
	test_expect_code 3 ctl A get notes bad
'

test_expect_success 'a bad name exits 1 with the reason' '
	test_expect_code 1 ctl A put "bad/coll" x b1.json 2>err &&
	test_grep "collection" err &&
	test_expect_code 1 ctl A get notes "sp ace" 2>err &&
	test_grep "id" err
'

test_expect_success 'an unreachable daemon exits 5' '
	test_expect_code 5 "$FERRYCTL" --socket "$TEST_DIR/nothing.sock" status &&
	: >"$TEST_DIR/notasocket" &&
	test_expect_code 5 "$FERRYCTL" --socket "$TEST_DIR/notasocket" get a b
'

test_expect_success 'the socket comes from FERRY_SOCKET, else XDG_RUNTIME_DIR' '
	FERRY_SOCKET=$(ferryd_sock A) "$FERRYCTL" --json get notes n1 >out &&
	test_grep "\"id\":\"n1\"" out &&
	test_expect_code 5 "$FERRYCTL" status &&
	mkdir -p "$XDG_RUNTIME_DIR/ferry" &&
	ln -s "$(ferryd_sock A)" "$XDG_RUNTIME_DIR/ferry/ferryd.sock" &&
	"$FERRYCTL" --json get notes n1 >out &&
	test_grep "\"id\":\"n1\"" out &&
	rm "$XDG_RUNTIME_DIR/ferry/ferryd.sock"
'

test_expect_success 'stop' '
	ferryd_stop A
'

test_done
