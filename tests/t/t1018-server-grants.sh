#!/bin/sh
# Per-collection access (issue 13, "Per-collection access and selective
# sync").  Bug guarded: once allowed, a key could read and write every
# collection on the server; a team server could not keep one device to
# the collections it is meant for.  Now `ferry-server allow KEY NAME
# --read 'team-*' --write notes` limits it: a push to a collection it may
# not write is rejected per record with the reason while the rest of the
# batch applies; changes, documents and history of collections it may not
# read are never sent to it (checked on the wire: the collection's name
# and its bodies never appear in what it receives), while its cursor moves
# past them so it neither loops nor stalls, and a long-poll is not woken
# by them; `keys` shows each key's grants; a key with no grants may do
# everything, as before; the grants reach a running server from the next
# request on.  /v1/changes also takes collections= (what the reader wants,
# with a floor per collection).  ferry-server --max-scan N bounds the rows
# one page reads and does not send: a page stops after at most N of them
# with its cursor where it stopped, whatever the page limit (bug guarded:
# the bound was checked only between reads of a page's worth of rows, so
# a page of limit 1000 read 1000 rows past a --max-scan of 10), and
# paging on still reaches every row the key may read.  t5027 runs this
# script against PostgreSQL.

. "$(dirname "$0")/server-lib.sh"

# on_wire FILE WORD: WORD appears in the bytes of FILE (what srvclient
# received: status line, then the body exactly as sent).
on_wire() {
	grep -F -q -- "$2" "$1"
}

# until_status KEY PATH CODE: GET PATH as KEY into out, the very next
# request with SQLite; with PostgreSQL a change of grants comes by
# notification and races it, so again until CODE, bounded (10 s).
until_status() {
	if [ "${FERRY_TEST_DB:-sqlite}" = postgresql ]; then
		test_wait_until 10 "req s $1 GET \"$2\" >out && \
		    head -n 1 out | grep -q $3"
	else
		req s "$1" GET "$2" >out
	fi
}

# scan_pages KEY SINCE [QUERY]: page /v1/changes as KEY from SINCE with
# limit=1000 (and QUERY) until a page neither sends nor moves; each page
# must skip at most 10 positions (last_seq - since - entries, seqs having
# no gaps).  The pages land in pages.out.  At most 50 pages.
scan_pages() {
	_s=$2
	_i=0
	: >pages.out
	while [ "$_i" -lt 50 ]; do
		req s "$1" GET "/v1/changes?since=$_s&limit=1000${3:-}" >page &&
		    status_is 200 page || return 1
		cat page >>pages.out
		_n=$(grep -o '"seq":' page | wc -l)
		_l=$(tail -n +2 page | json_int last_seq)
		if [ $((_l - _s - _n)) -gt 10 ]; then
			echo "the page since=$_s read $((_l - _s - _n)) rows it did not send (--max-scan 10)"
			return 1
		fi
		[ "$_n" -eq 0 ] && [ "$_l" -eq "$_s" ] && return 0
		_s=$_l
		_i=$((_i + 1))
	done
	echo "no end after 50 pages"
	return 1
}

test_expect_success 'setup: alice limited, bob everything; bob writes five collections' '
	A=$(key_of alice) && B=$(key_of bob) &&
	server_allow s alice "Alice" && server_allow s bob &&
	server_start s &&
	server_admin s allow "$A" --read "team-*" --write notes >out &&
	test_grep "may read team-\*, and write notes" out &&
	until_status alice /v1/docs/secretcoll/s1 403 && status_is 403 out &&
	push s bob "$(item bob put notes n1 0 1 "{\"t\":\"note one\"}")" \
	    "$(item bob put team-a t1 0 2 "{\"t\":\"team body\"}")" \
	    "$(item bob put secretcoll s1 0 3 "{\"t\":\"TOPSECRETBODY1\"}")" \
	    "$(item bob put payroll p1 0 4 "{\"t\":\"PAYROLLBODY\"}")" \
	    "$(item bob put secretcoll s2 0 5 "{\"t\":\"TOPSECRETBODY2\"}")" \
	    >out &&
	test "$(grep -o "\"status\":\"applied\"" out | wc -l)" -eq 5
'

test_expect_success 'keys shows each key'"'"'s grants' '
	server_admin s keys >out &&
	grep "^$A" out >line &&
	test_grep "read team-\*; write notes" line &&
	grep "^$B" out >line && test_grep " all\$" line &&
	server_admin s keys --json >out &&
	test_grep "\"grants\":{\"read\":\[\"team-\*\"\],\"write\":\[\"notes\"\]}" out &&
	test "$(grep -o "\"grants\"" out | wc -l)" -eq 1
'

test_expect_success 'changes: not a byte of what alice may not read, and the cursor moves past it' '
	req s alice GET "/v1/changes?since=0" >out && status_is 200 out &&
	test_grep "\"collection\":\"notes\"" out &&
	test_grep "\"collection\":\"team-a\"" out &&
	! on_wire out secretcoll && ! on_wire out TOPSECRETBODY &&
	! on_wire out payroll && ! on_wire out PAYROLLBODY &&
	test "$(tail -n +2 out | json_int last_seq)" -eq 5 &&
	req s bob GET "/v1/changes?since=0" >out &&
	on_wire out TOPSECRETBODY1 && on_wire out PAYROLLBODY
'

test_expect_success 'a page of only unreadable rows is empty and ends past them (no loop, no stall)' '
	req s alice GET "/v1/changes?since=2&limit=1" >out && status_is 200 out &&
	test_grep "\"changes\":\[\]" out &&
	test "$(tail -n +2 out | json_int last_seq)" -eq 5 &&
	req s alice GET "/v1/changes?since=5&limit=1" >out &&
	test_grep "\"changes\":\[\]" out &&
	test "$(tail -n +2 out | json_int last_seq)" -eq 5
'

test_expect_success 'documents and history of a collection alice may not read: 403, no body' '
	req s alice GET /v1/docs/secretcoll/s1 >out && status_is 403 out &&
	test_grep "may not read collection .secretcoll." out &&
	! on_wire out TOPSECRETBODY &&
	req s alice GET /v1/docs/secretcoll/s1/history >out &&
	status_is 403 out && ! on_wire out TOPSECRETBODY &&
	req s alice GET /v1/docs/team-a/t1/history >out && status_is 200 out &&
	req s alice GET /v1/docs/notes/n1 >out && status_is 200 out
'

test_expect_success 'a push to collections alice may not write: rejected per record with the reason, the rest applies' '
	push s alice "$(item alice put notes n2 0 1 "{}")" \
	    "$(item alice put team-a t2 0 2 "{}")" \
	    "$(item alice put secretcoll s9 0 3 "{}")" \
	    "$(item alice put notes n3 0 4 "{}")" >out &&
	status_is 200 out &&
	tail -n +2 out >res.json &&
	test "$(grep -o "\"status\":\"applied\"" res.json | wc -l)" -eq 2 &&
	test_grep "forbidden: key $A may not write collection .team-a. (it may only read it" res.json &&
	test_grep "forbidden: key $A may not write collection .secretcoll. (it has no access to it" res.json &&
	req s bob GET /v1/docs/team-a/t2 >out && status_is 404 out &&
	req s bob GET /v1/docs/notes/n3 >out && status_is 200 out
'

test_expect_success 'a long-poll is not answered for changes alice may not read, and is for hers' '
	H=$(server_head s bob) &&
	test_bg "$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" \
	    --url "$(server_url s)" GET "/v1/changes?since=$H&wait=30" \
	    >poll.out 2>poll.err &&
	POLL=$test_bg_pid &&
	test_wait_until 10 "grep -q \"long-poll waiting since=$H\" \"$(server_log s)\"" &&
	push s bob "$(item bob put secretcoll s3 0 6 "{\"t\":\"TOPSECRETBODY3\"}")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	test_wait_until 10 "grep -q \"woken by changes it may not have\" \"$(server_log s)\"" &&
	req s bob GET /v1/info >out &&
	kill -0 "$POLL" && test ! -s poll.out &&
	push s bob "$(item bob put team-b tb 0 7 "{\"t\":\"for the team\"}")" >out &&
	test_wait_until 20 "! kill -0 $POLL 2>/dev/null" &&
	status_is 200 poll.out &&
	test_grep "\"collection\":\"team-b\"" poll.out &&
	! on_wire poll.out secretcoll && ! on_wire poll.out TOPSECRETBODY
'

test_expect_success 'collections=: only what the reader asks for, each above its floor' '
	req s bob GET "/v1/changes?since=0&collections=secretcoll,notes:5" >out &&
	status_is 200 out &&
	test_grep "\"collection\":\"secretcoll\"" out &&
	test_grep "\"id\":\"n3\"" out && test_grep ! "\"id\":\"n1\"" out &&
	! on_wire out team-a && ! on_wire out payroll &&
	req s bob GET "/v1/changes?since=0&collections=payroll,*:6" >out &&
	test_grep "\"collection\":\"payroll\"" out &&
	test_grep "\"collection\":\"team-b\"" out &&
	test_grep "TOPSECRETBODY3" out && test_grep ! "TOPSECRETBODY1" out &&
	req s alice GET "/v1/changes?since=0&collections=secretcoll" >out &&
	status_is 200 out && ! on_wire out TOPSECRETBODY
'

test_expect_success 'a bad collections= is 400 naming what is wrong' '
	req s bob GET "/v1/changes?since=0&collections=a/b" >out &&
	status_is 400 out && test_grep "collection .a/b. contains byte" out &&
	req s bob GET "/v1/changes?since=0&collections=a:x" >out &&
	status_is 400 out && test_grep "floor that is not a non-negative number" out &&
	req s bob GET "/v1/changes?since=0&collections=a,a" >out &&
	status_is 400 out && test_grep "given twice" out &&
	req s bob GET "/v1/changes?since=0&collections=" >out &&
	status_is 400 out && test_grep "an entry is empty" out &&
	server_running s
'

test_expect_success 'bad grants are refused by allow with the reason' '
	test_expect_code 1 server_admin s allow "$A" --read "a/b" 2>err &&
	test_grep "the pattern .a/b. is not a collection name" err &&
	test_expect_code 2 server_admin s allow "$A" --all --read x 2>err &&
	test_grep "cannot go with --read" err &&
	test_expect_code 2 server_admin s allow "$A" --read 2>err &&
	test_grep "usage:" err
'

test_expect_success 'grants change on a running server from the next request: --all, then nothing' '
	server_admin s allow "$A" --all >out &&
	test_grep "may read and write every collection" out &&
	until_status alice /v1/docs/secretcoll/s1 200 && status_is 200 out &&
	test_grep TOPSECRETBODY1 out &&
	server_admin s allow "$A" --read "" >out &&
	until_status alice /v1/docs/notes/n1 403 && status_is 403 out &&
	req s alice GET "/v1/changes?since=0" >out &&
	test_grep "\"changes\":\[\]" out
'

test_expect_success 'grants survive a restart' '
	server_stop s && server_start s &&
	req s alice GET /v1/docs/notes/n1 >out && status_is 403 out &&
	req s bob GET /v1/docs/notes/n1 >out && status_is 200 out
'

# A limited device that rotates its key (ferryctl key rotate) must not
# come out with a key that may do everything: the new key holds the old
# one's grant until the operator gives it one of its own.
test_expect_success 'a key rotated to holds the grant of the key it follows' '
	server_admin s allow "$A" --read "team-*" --write notes >out &&
	until_status alice /v1/docs/secretcoll/s1 403 &&
	A2=$(key_of alice2) &&
	"$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" rotation \
	    "$TEST_DIR/keys/alice2" 4 >rot.json &&
	req s alice POST /v1/keys/rotate rot.json >out && status_is 200 out &&
	test_wait_until 10 "req s alice2 GET /v1/docs/notes/n1 >out && \
	    head -n 1 out | grep -q 200" &&
	req s alice2 GET /v1/docs/secretcoll/s1 >out && status_is 403 out &&
	! on_wire out TOPSECRETBODY1 &&
	req s alice2 GET "/v1/changes?since=0" >out && status_is 200 out &&
	! on_wire out TOPSECRETBODY && ! on_wire out PAYROLLBODY &&
	push s alice2 "$(item alice2 put notes n7 0 5 "{}")" \
	    "$(item alice2 put payroll p7 0 6 "{}")" >out &&
	tail -n +2 out >res.json &&
	test "$(grep -o "\"status\":\"applied\"" res.json | wc -l)" -eq 1 &&
	test_grep "forbidden: key $A2 may not write collection .payroll." \
	    res.json
'

test_expect_success '--max-scan 10: a page reads at most 10 rows it does not send; paging on reaches every row' '
	server_stop s && server_start s --max-scan 10 &&
	H=$(server_head s bob) &&
	set -- && i=0 &&
	while [ $i -lt 45 ]; do
		case $i in
		12|30|44) it=$(item bob put team-scan "t$i" 0 $((100 + i)) "{}") ;;
		*) it=$(item bob put scanned "s$i" 0 $((100 + i)) "{}") ;;
		esac &&
		set -- "$@" "$it" && i=$((i + 1)) || return 1
	done &&
	push s bob "$@" >out &&
	test "$(grep -o "\"status\":\"applied\"" out | wc -l)" -eq 45 &&
	scan_pages alice2 "$H" &&
	test "$(grep -o "\"collection\":\"team-scan\"" pages.out | wc -l)" -eq 3 &&
	! on_wire pages.out "\"scanned\"" &&
	test "$(grep -c "^200\$" pages.out)" -ge 5 &&
	scan_pages bob "$H" "&collections=team-scan" &&
	test "$(grep -o "\"collection\":\"team-scan\"" pages.out | wc -l)" -eq 3 &&
	! on_wire pages.out "\"scanned\"" &&
	test "$(tail -n +2 page | json_int last_seq)" -eq "$(server_head s bob)"
'

test_done
