#!/bin/sh
# Guards issue 12 across devices: an app's presence on ferryd A reaches a
# presence watcher on ferryd B through ferry-server (local: false, A's
# device key and name), and B's Who lists it; a clean disconnect of the
# app on A is seen on B within a second or two (ferryd sends its new list
# at once, the remote's long-poll answers at once); a kill -9 of ferryd A
# itself (nobody says goodbye) is seen on B once A's TTL runs out on the
# server; presence is never in the server's change log; the server's
# endpoint refuses bad input with a 400 naming what was wrong, and
# answers nothing without a valid signature.  t5040 runs this script with
# A and B on two ferry-server instances sharing one PostgreSQL database.

. "$(dirname "$0")/sync-lib.sh"

. "$FERRY_SRC_DIR/tests/t/presence-lib.sh"

SRV_B=s

test_expect_success 'setup: a server (or two instances), A and B syncing' '
	server_start s --open &&
	if [ -n "${PRESENCE_TWO_INSTANCES:-}" ]; then
		server_start s2 --open --db "$(pg_url srv_s)" &&
		SRV_B=s2
	fi &&
	printf "[ferryd]\ndevice_name = laptop-a\npresence_ttl = 3\n" >a.conf &&
	printf "[ferryd]\ndevice_name = laptop-b\n" >b.conf &&
	syncd_start A s --config "$PWD/a.conf" &&
	syncd_start B $SRV_B --config "$PWD/b.conf" &&
	sync_all A B &&
	watcher wb B
'

test_expect_success 'an app on A: B watcher sees it, not local, with A key and name' '
	app ana A notes n1 "{\"user\":\"ana\"}" &&
	test_wait_until 20 "grep -q \"\\\"user\\\":\\\"ana\\\".*\\\"gone\\\":false\" wb.out" &&
	grep "\"user\":\"ana\"" wb.out | head -n 1 >seen.out &&
	fcall A Status >sta.out &&
	keyA=$(json_str device sta.out) &&
	test_grep "\"device\":\"$keyA\"" seen.out &&
	test_grep "\"device_name\":\"laptop-a\"" seen.out &&
	test_grep "\"local\":false" seen.out &&
	test_grep "\"app\":\"presencer\"" seen.out &&
	ctl B --json who notes n1 >who.out &&
	test_grep "\"user\":\"ana\"" who.out &&
	ctl B who >who.txt &&
	cat who.txt &&
	test_grep "^laptop-a .*presencer.*notes/n1" who.txt
'

test_expect_success 'and the other way: an app on B is seen on A' '
	watcher wa A &&
	app bo B notes n1 "{\"user\":\"bo\"}" &&
	test_wait_until 20 "grep -q \"\\\"user\\\":\\\"bo\\\".*\\\"gone\\\":false\" wa.out" &&
	test_grep "\"device_name\":\"laptop-b\"" wa.out
'

test_expect_success 'presence is not in the server change log nor a replica' '
	server_changes s >changes.out &&
	! grep -q "ana\|presence" changes.out &&
	fcall B Status >stb.out &&
	test_equal "docs on B" 0 "$(json_int docs stb.out)"
'

test_expect_success 'a clean disconnect of the app on A is seen on B within 3 s' '
	t0=$(now_ms) &&
	app_close ana &&
	test_wait_until 10 "grep -q \"\\\"user\\\":\\\"ana\\\".*\\\"gone\\\":true\" wb.out" &&
	t1=$(grep "\"user\":\"ana\".*\"gone\":true" wb.out | head -n 1 | cut -d" " -f1) &&
	echo "seen gone after $((t1 - t0)) ms" &&
	test $((t1 - t0)) -lt 3000 &&
	test_wait_exit $app_pid_ana
'

test_expect_success 'kill -9 of ferryd A: B sees its app go after the TTL (3 s)' '
	app cy A notes n2 "{\"user\":\"cy\"}" &&
	test_wait_until 20 "grep -q \"\\\"user\\\":\\\"cy\\\".*\\\"gone\\\":false\" wb.out" &&
	t0=$(now_ms) &&
	ferryd_kill9 A &&
	test_wait_until 15 "grep -q \"\\\"user\\\":\\\"cy\\\".*\\\"gone\\\":true\" wb.out" &&
	t1=$(grep "\"user\":\"cy\".*\"gone\":true" wb.out | head -n 1 | cut -d" " -f1) &&
	echo "seen gone after $((t1 - t0)) ms" &&
	test $((t1 - t0)) -lt 6000 &&
	app_close cy &&
	test_wait_exit $app_pid_cy
'

test_expect_success 'the endpoint refuses bad input with 400 naming it, and unsigned requests' '
	key_of probe >/dev/null &&
	printf "{\"ttl_ms\":5,\"entries\":[]}" >bad1.json &&
	req s probe POST /v1/presence bad1.json >bad1.out &&
	status_is 400 bad1.out && test_grep "ttl_ms" bad1.out &&
	printf "{\"ttl_ms\":3000,\"entries\":[{\"app\":\"x\",\"session\":\"s\",\"collection\":\"bad name\",\"state\":{},\"since_ms\":1}]}" >bad2.json &&
	req s probe POST /v1/presence bad2.json >bad2.out &&
	status_is 400 bad2.out && test_grep "entries\[0\]" bad2.out &&
	big=$(printf "%01100d" 0) &&
	printf "{\"ttl_ms\":3000,\"entries\":[{\"app\":\"x\",\"session\":\"s\",\"collection\":\"c\",\"state\":{\"s\":\"$big\"},\"since_ms\":1}]}" >bad3.json &&
	req s probe POST /v1/presence bad3.json >bad3.out &&
	status_is 400 bad3.out && test_grep "limit is 1024" bad3.out &&
	printf "not json" >bad4.json &&
	req s probe POST /v1/presence bad4.json >bad4.out &&
	status_is 400 bad4.out &&
	printf "GET /v1/presence HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n" |
	    raw s GET >unsigned.out &&
	cat unsigned.out &&
	grep -q "401" unsigned.out &&
	req s probe GET "/v1/presence?rev=0&wait=0" >get.out &&
	status_is 200 get.out &&
	test_grep "\"entries\":\[" get.out &&
	ferryd_works B
'

test_done
