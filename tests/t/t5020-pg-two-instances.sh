#!/bin/sh
# Two ferry-server instances on one PostgreSQL database (issue 10).
# Promises: a change pushed to A and retried on B is a "duplicate", never
# applied twice; a long-poll on B wakes when A commits; a cursor reader
# paging /v1/changes while 16 devices push to both instances at once sees
# every seq in order with no gap (seq order is commit order: a plain
# sequence would let a smaller seq commit after a reader passed it); and a
# PostgreSQL restart in the middle of pushes loses nothing and doubles
# nothing: every push is answered (503 with Retry-After while the database
# is away, then retried by its client), changes = distinct change ids =
# acknowledged changes, seqs 1..N without a gap.  A key allowed with
# `ferry-server --db URL allow` is taken by every running instance.

FERRY_TEST_DB=postgresql
. "$(dirname "$0")/server-lib.sh"

# pusher.sh DEVICE COLLECTION N B: N pushes of B new documents each, made
# first and then sent back to back (long transactions, many at once: a
# wide window for a seq to commit out of order), to A and B in turn, each
# retried until answered 200 (at most 300 tries, 0.1 s apart: a client
# honouring Retry-After, not a synchronisation); exits 0 only if no change
# was answered "conflict" or "rejected".
cat >"$TEST_DIR/pusher.sh" <<'PUSHER'
#!/bin/sh
dev=$1 coll=$2 n=$3 b=$4
kd=$TEST_DIR/keys/$dev out=$TEST_DIR/push-$dev
i=1 seq=0
while [ "$i" -le "$n" ]; do
	sep="" j=0
	printf '{"changes":[' >"$out.$i"
	while [ "$j" -lt "$b" ]; do
		seq=$((seq + 1)) j=$((j + 1))
		printf '%s' "$sep" >>"$out.$i"
		"$SRVCLIENT" --key-dir "$kd" change put "$coll" "$dev-$seq" 0 \
		    "$seq" "{\"i\":$seq}" >>"$out.$i" || exit 1
		sep=,
	done
	printf ']}' >>"$out.$i"
	i=$((i + 1))
done
i=1
while [ "$i" -le "$n" ]; do
	tries=0
	while :; do
		if [ $((i % 2)) -eq 0 ]; then u=$URL_A; else u=$URL_B; fi
		"$SRVCLIENT" --key-dir "$kd" --url "$u" --timeout 30 \
		    POST /v1/push "$out.$i" >"$out.reply" 2>/dev/null
		[ "$(head -n 1 "$out.reply")" = 200 ] && break
		tries=$((tries + 1))
		echo "$dev: push $i: $(head -n 1 "$out.reply"), retrying"
		[ "$tries" -ge 300 ] && { echo "$dev: push $i never answered"; exit 1; }
		sleep 0.1
	done
	if grep -q '"status":"\(conflict\|rejected\)"' "$out.reply"; then
		echo "$dev: push $i:"; cat "$out.reply"; exit 1
	fi
	i=$((i + 1))
done
PUSHER

# start_pushers COLLECTION COUNT N B: COUNT pushers; pids in $pushers.
start_pushers() {
	pushers=""
	_i=1
	while [ "$_i" -le "$2" ]; do
		key_of "$1$_i" >/dev/null || return 1
		test_bg sh "$TEST_DIR/pusher.sh" "$1$_i" "$1" "$3" "$4" \
		    >"$TEST_DIR/pusher-$1$_i.log" 2>&1 </dev/null
		pushers="$pushers $test_bg_pid"
		_i=$((_i + 1))
	done
}

# wait_pushers: every pusher exited 0 within the bound.
wait_pushers() {
	for _p in $pushers; do
		test_wait_exit "$_p" 180 || return 1
		if [ "$test_exit_status" != 0 ]; then
			cat "$TEST_DIR"/pusher-*.log
			return 1
		fi
	done
}

pushers_running() {
	for _p in $pushers; do
		test_pid_ours "$_p" && return 0
	done
	return 1
}

# longpoll_wakes WAITER PUSHER ID SEQ: a long-poll on WAITER is answered
# with alice's new document ID (her change SEQ) pushed to PUSHER, well
# before its 30 s are up.
longpoll_wakes() {
	_h=$(server_head "$1" reader) &&
	test_bg req "$1" reader --elapsed GET \
	    "/v1/changes?since=$_h&wait=30" >poll.out 2>poll.err &&
	_poll=$test_bg_pid &&
	test_wait_until 10 "grep -q \"long-poll waiting since=$_h\" \
	    \"$(server_log "$1")\"" &&
	_it=$(item alice put notes "$3" 0 "$4" "{\"t\":\"wake\"}") &&
	push "$2" alice "$_it" >out && test_grep "\"status\":\"applied\"" out &&
	test_wait_exit "$_poll" 15 &&
	test_grep "\"id\":\"$3\"" poll.out &&
	_ms=$(sed -n "s/^elapsed_ms //p" poll.err) &&
	test "$_ms" -lt 10000
}

# read_feed SERVER: page /v1/changes from $feed_last on; fail on a seq
# that is not the one after the last seen.
read_feed() {
	req "$1" reader GET "/v1/changes?since=$feed_last&limit=1000" \
	    >"$TEST_DIR/.page" || return 1
	# 503 while the database is away: read again later.
	[ "$(head -n 1 "$TEST_DIR/.page")" = 200 ] || return 0
	for _s in $(grep -o '"seq":[0-9]*' "$TEST_DIR/.page" | cut -d: -f2); do
		if [ "$_s" -ne $((feed_last + 1)) ]; then
			echo "the feed skipped: after $feed_last came $_s"
			return 1
		fi
		feed_last=$_s
	done
}

test_expect_success 'two instances start on one database' '
	pg_createdb shared &&
	server_start A --open --db "$(pg_url shared)" &&
	server_start B --open --db "$(pg_url shared)" &&
	URL_A=$(server_url A) && URL_B=$(server_url B) &&
	export URL_A URL_B SRVCLIENT TEST_DIR &&
	key_of alice >/dev/null && key_of reader >/dev/null
'

test_expect_success 'pushed to A, retried on B: duplicate, stored once' '
	it=$(item alice put notes n1 0 1 "{\"t\":\"hi\"}") &&
	push A alice "$it" >out &&
	status_is 200 out && test_grep "\"status\":\"applied\"" out &&
	push B alice "$it" >out &&
	status_is 200 out &&
	test_grep "\"status\":\"duplicate\",\"version\":1" out &&
	n=$(pg_sql shared "SELECT count(*) FROM changes") &&
	test_equal "rows in the log" 1 "$n"
'

test_expect_success 'the same base on B after A applied: conflict, no overwrite' '
	it=$(item alice put notes n1 1 2 "{\"t\":\"from A\"}") &&
	push A alice "$it" >out && test_grep "\"status\":\"applied\"" out &&
	key_of bob >/dev/null &&
	it=$(item bob put notes n1 1 1 "{\"t\":\"from B\"}") &&
	push B bob "$it" >out &&
	test_grep "\"status\":\"conflict\"" out &&
	test_grep "from A" out &&
	req B bob GET /v1/docs/notes/n1 >out && test_grep "from A" out
'

test_expect_success 'a long-poll on B wakes when A commits' '
	longpoll_wakes B A n2 3
'

test_expect_success 'a cursor reader during 16 concurrent pushers skips 0 rows' '
	feed_last=0 &&
	start_pushers p 16 5 20 &&
	while pushers_running; do
		read_feed B || return 1
	done &&
	wait_pushers &&
	read_feed A &&
	total=$(pg_sql shared "SELECT count(*) FROM changes") &&
	test_equal "rows the reader saw" "$total" "$feed_last" &&
	n=$(pg_sql shared "SELECT count(*) FROM changes WHERE collection = '"'p'"'") &&
	test_equal "rows pushed" 1600 "$n"
'

test_expect_success 'a PostgreSQL restart during pushes: no loss, no duplicate' '
	h0=$(pg_sql shared "SELECT seq FROM head") &&
	start_pushers r 4 40 3 &&
	test_wait_until 60 "test \$(pg_sql shared \"SELECT seq FROM head\") -ge \
	    $((h0 + 30))" &&
	pg_restart &&
	wait_pushers &&
	test_grep retrying "$TEST_DIR"/pusher-r*.log &&
	pg_sql shared "SELECT count(*), count(DISTINCT (device, dseq))
	    FROM changes WHERE collection = '"'r'"'" >counts &&
	echo "480|480" >expect && test_cmp expect counts &&
	pg_sql shared "SELECT count(*), min(seq), max(seq), (SELECT seq FROM head)
	    FROM changes" >seqs &&
	n=$(pg_sql shared "SELECT count(*) FROM changes") &&
	echo "$n|1|$n|$n" >expect && test_cmp expect seqs
'

test_expect_success 'both instances answer again after the restart' '
	it=$(item alice put notes n3 0 4 "{\"t\":\"after\"}") &&
	test_wait_until 30 "push B alice \"\$it\" >out; \
	    grep -q applied out" &&
	req A alice GET /v1/docs/notes/n3 >out && status_is 200 out &&
	longpoll_wakes A B n4 5
'

test_expect_success '"ferry-server --db URL allow" is seen by every instance' '
	server_start C --db "$(pg_url shared)" &&
	server_start D --db "$(pg_url shared)" &&
	carol=$(key_of carol) &&
	req D carol GET /v1/info >out && status_is 401 out &&
	"$FERRY_SERVER" --db "$(pg_url shared)" allow "$carol" carol >out &&
	test_grep "in the database" out &&
	test_wait_until 10 "req D carol GET /v1/info >out && \
	    head -n 1 out | grep -q 200" &&
	test_wait_until 10 "req C carol GET /v1/info >out && \
	    head -n 1 out | grep -q 200" &&
	"$FERRY_SERVER" --db "$(pg_url shared)" allow "$carol" carol >out &&
	test_grep "already allowed" out &&
	test_expect_code 1 "$FERRY_SERVER" --db "$(pg_url shared)" \
	    allow not-a-key &&
	server_stop C && server_stop D
'

# The head moved in the database with no notification (another
# instance's was lost): B must not call a cursor at that head "beyond"
# it (a 409 would pause the device) but read the head.  The bump is
# undone after, so the log stays without gaps.
test_expect_success 'a cursor at the database head is never beyond an instance that has not heard of it' '
	h=$(pg_sql shared "UPDATE head SET seq = seq + 5 RETURNING seq") &&
	req B reader GET "/v1/changes?since=$h" >out;
	pg_sql shared "UPDATE head SET seq = seq - 5" >/dev/null &&
	status_is 200 out &&
	test_grep "\"last_seq\":$h}" out
'

test_expect_success 'both instances stop cleanly' '
	server_stop A && server_stop B
'

test_done
