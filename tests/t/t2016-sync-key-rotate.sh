#!/bin/sh
# `ferryctl key rotate` in the middle of a 10,000-change push (issue 13,
# "Keys over their whole life"; docs/protocol.md "Rotating a key").  Bugs
# guarded: a device could not change its key; a rotation must neither lose
# nor double a change it had queued, signed or sent.  Promises: with the
# server down, A holds 10,000 changes, some already made into records
# signed by its old key; `key rotate` then says the remote cannot be
# reached and keeps the rotation (device.key.next) through a kill -9;
# restarted, A completes it once the server is up and switches to the new
# key; the push goes on: the server's log holds exactly the 10,000 changes,
# each change id once, the first ones signed by the old key (taken from
# the new key up to the old key's last seq) and the rest by the new key,
# with seqs going on; every change verifies against the key that signed it,
# and a document's history across the rotation verifies in `ferryctl log`;
# the old key is refused (401, retired); a second rotation with the server
# up answers with the new key at once.

. "$(dirname "$0")/sync-lib.sh"

N=10000

# calls N COLLECTION: N Put calls, one new document each.
calls() {
	awk -v n="$1" -v c="$2" 'BEGIN {
		for (i = 0; i < n; i++)
			printf "{\"method\":\"io.ferry.Put\",\"parameters\":" \
			    "{\"collection\":\"%s\",\"id\":\"d%d\",\"body\":" \
			    "{\"i\":%d}}}%c", c, i, i, 0
	}'
}

# raw_pages SERVER: every page of /v1/changes, as srvclient prints them,
# into page.1, page.2... (bounded: at most 100 pages).
raw_pages() {
	_rp_since=0
	_rp_i=1
	rm -f page.*
	while [ $_rp_i -le 100 ]; do
		req "$1" probe GET "/v1/changes?since=$_rp_since&limit=1000" \
		    >page.$_rp_i || return 1
		status_is 200 page.$_rp_i || return 1
		_rp_tail=$(grep -o '"head":[0-9]*,"last_seq":[0-9]*}$' page.$_rp_i)
		_rp_head=${_rp_tail#\"head\":}
		_rp_head=${_rp_head%%,*}
		_rp_since=${_rp_tail##*:}
		_rp_since=${_rp_since%\}}
		[ "$_rp_since" -ge "$_rp_head" ] && return 0
		_rp_i=$((_rp_i + 1))
	done
	return 1
}

# exactly_once COLLECTION OLD NEW: after a drain, COLLECTION holds $N
# changes on the server, each change id once, some signed by key OLD and
# the rest by NEW, the OLD ones first in seq; the replica and the server
# agree on every document.  Sets old and new (how many by each).
exactly_once() {
	server_changes s >changes &&
	grep "\"collection\":\"$1\"" changes >coll &&
	change_ids coll >ids &&
	test_equal "changes on the server" $N "$(grep -c . ids)" &&
	test_equal "distinct change ids" $N "$(sort -u ids | wc -l)" &&
	old=$(grep -c "^$2:" ids) && new=$(grep -c "^$3:" ids) &&
	echo "# $1: $old by the old key, $new by the new key" &&
	test "$old" -gt 0 && test "$new" -gt 0 &&
	test_equal "old + new" $N $((old + new)) &&
	last_old=$(grep "^$2:" ids | cut -d: -f2 | sort -n | tail -n 1) &&
	first_new=$(grep "^$3:" ids | cut -d: -f2 | sort -n | head -n 1) &&
	test "$last_old" -lt "$first_new" &&
	server_heads s "$1" >s.heads &&
	replica_heads A "$1" >a.heads &&
	test_equal "documents" $N "$(grep -c . a.heads)" &&
	test_cmp s.heads a.heads
}

test_expect_success 'setup: A syncs with s, whose keys file allows A' '
	syncd_start A s &&
	KA=$(ctl A key) && test -n "$KA" &&
	server_admin s allow "$KA" "laptop A" >/dev/null &&
	server_allow s probe &&
	mkdir -p "$TEST_DIR/keys/oldA" &&
	cp "$(ferryd_datadir A)/device.key" "$TEST_DIR/keys/oldA/" &&
	chmod 600 "$TEST_DIR/keys/oldA/device.key"
'

test_expect_success "server down: A takes $N changes and makes the first records" '
	calls $N big >calls &&
	"$VLSEND" "$(ferryd_sock A)" -n $N --timeout 120000 <calls >w &&
	test_equal "acknowledged" $N \
	    "$(grep -c "^{\"parameters\":{\"doc\":" w)" &&
	test_wait_until 60 "grep -q \"push: cannot reach\" \"$(ferryd_log A)\""
'

test_expect_success 'rotate with the server down: said, and kept on disk' '
	test_expect_code 1 ctl_bounded 60 A key rotate >out 2>err &&
	test_grep "the remote cannot be reached" err &&
	test_grep "the rotation is kept and completes when the remote is back" err &&
	test -f "$(ferryd_datadir A)/device.key.next" &&
	test_equal "key in use" "$KA" "$(ctl A key)" &&
	ctl A status >st &&
	test_grep "^key rotation: *\\(waiting to tell\\|telling\\) the remote" st
'

test_expect_success 'kill -9 during the rotation; restarted, A completes it' '
	ferryd_kill9 A &&
	ferryd_start A --remote "$(server_url s)" &&
	test_grep "a rotation of the device key $KA to .* is pending" \
	    "$(ferryd_log A)" &&
	server_start s &&
	test_wait_until 120 "ctl A key >key && ! grep -q -- \"^$KA\\\$\" key" &&
	KB=$(cat key) && test -n "$KB" &&
	! test -e "$(ferryd_datadir A)/device.key.next" &&
	test_grep "the device key is now $KB ($KA retired)" "$(ferryd_log A)"
'

test_expect_success "the push goes on: $N changes on the server, each once, by both keys" '
	sync_wait A 240 &&
	status_of A >st &&
	test_equal "pending" 0 "$(json_int pending st)" &&
	test_equal "rejected" 0 "$(json_int rejected st)" &&
	test_equal "conflicts" 0 "$(json_int conflicts st)" &&
	exactly_once big "$KA" "$KB" &&
	test_equal "changes on the server, all told" $N \
	    "$(grep -c . changes)"
'

test_expect_success 'every change verifies against the key that signed it' '
	raw_pages s &&
	"$SRVCLIENT" verify-changes page.* >v &&
	test_grep "^verified $old by $KA\$" v &&
	test_grep "^verified $new by $KB\$" v
'

test_expect_success 'a document edited across the rotation: its history verifies' '
	d=$(grep "\"change\":\"$KA:" changes | head -n 1 |
	    sed "s/.*\"id\":\"\([^\"]*\)\".*/\1/") && test -n "$d" &&
	put_ok A big "$d" "{\"i\":-1}" &&
	sync_wait A &&
	ctl_bounded 30 A --json log big "$d" >log.json &&
	sed "s/,\"local\":.*//" log.json >remote.json &&
	test_equal "remote entries verified" 2 \
	    "$(grep -o "\"verified\":true" remote.json | wc -l)" &&
	test_grep ! "\"verified\":false" log.json &&
	test_grep "\"version\":1,\"change\":\"$KA:[0-9]*\",\"device\":\"$KA\",\"device_name\":\"laptop A\"" remote.json &&
	test_grep "\"version\":2,\"change\":\"$KB:[0-9]*\",\"device\":\"$KB\",\"device_name\":\"laptop A\"" remote.json
'

test_expect_success 'the old key is refused: retired, in favour of the new one' '
	req s oldA GET /v1/info >out && status_is 401 out &&
	test_grep "key $KA was retired on .* in favour of $KB" out
'

test_expect_success 'a second rotation with the server up answers with the new key' '
	ctl_bounded 60 A key rotate >out &&
	KC=$(ctl A key) && test "$KC" != "$KB" &&
	test_grep "^new device key $KC (the remote retired $KB)\$" out &&
	! test -e "$(ferryd_datadir A)/device.key.next" &&
	put_ok A notes after "{\"t\":1}" &&
	sync_wait A &&
	server_changes s >changes &&
	test_grep "\"change\":\"$KC:$((N + 2))\",\"collection\":\"notes\"" changes
'

test_expect_success "rotate while a live push of $N changes drains: exactly once" '
	calls $N live >calls2 &&
	pushes=$(grep -c "POST /v1/push from $KC" "$(server_log s)") &&
	test_bg "$VLSEND" "$(ferryd_sock A)" -n $N --timeout 120000 \
	    <calls2 >w2 &&
	writer=$test_bg_pid &&
	test_wait_until 60 "test \$(grep -c \"POST /v1/push from $KC\" \
	    \"$(server_log s)\") -gt $pushes" &&
	ctl_bounded 60 A key rotate >out &&
	KD=$(ctl A key) &&
	test_grep "^new device key $KD (the remote retired $KC)\$" out &&
	test_wait_exit $writer &&
	test_equal "acknowledged" $N \
	    "$(grep -c "^{\"parameters\":{\"doc\":" w2)" &&
	sync_wait A 240 &&
	exactly_once live "$KC" "$KD" &&
	raw_pages s &&
	"$SRVCLIENT" verify-changes page.* >v &&
	test_grep "^verified [0-9]* by $KC\$" v &&
	test_grep "^verified $new by $KD\$" v
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	server_stop s
'

test_done
