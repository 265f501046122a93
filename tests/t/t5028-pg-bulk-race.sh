#!/bin/sh
# A push batch on PostgreSQL reads its documents ahead and writes them at
# commit in a few statements (issue 10, srv_pg_batch).  Guards the races
# that opens:
# - a document the batch finds absent is created by another writer
#   before the batch commits: the batch must not overwrite it nor log a
#   change for it; it waits for that writer (the placeholder row it
#   inserts for a new document queues behind the other's), then answers
#   the change on it "conflict" with the other writer's body and applies
#   its other changes once each, with no rerun and the feed's seqs still
#   1..N without a gap.  The other writer is a psql session holding its
#   INSERT open until the instance waits on it;
# - two devices creating the same documents at once, in opposite orders,
#   through two instances: every push is answered at the first try (no
#   deadlock for PostgreSQL to break, no batch run again), each document
#   is created once, by one of them, the other told "conflict".
FERRY_TEST_DB=postgresql
. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup: an instance on PostgreSQL, n1 at version 1' '
	pg_createdb race &&
	server_start A --open --db "$(pg_url race)" &&
	key_of alice >/dev/null &&
	push A alice "$(item alice put notes n1 0 1 "{\"t\":\"n1\"}")" >out &&
	test_grep "\"status\":\"applied\",\"version\":1" out
'

test_expect_success 'a document created while the batch runs is not overwritten' '
	pg_session_begin race other.out "INSERT INTO docs VALUES
	    ('"'notes'"', '"'r1'"', 1, false,
	    json_build_object('"'t'"', '"'other'"')::text);" &&
	test_wait_until 10 "grep -q 1 other.out" &&
	test_bg push A alice "$(item alice put notes r1 0 2 "{\"t\":\"mine\"}")" \
	    "$(item alice put notes r2 0 3 "{\"t\":\"new\"}")" \
	    "$(item alice put notes n1 1 4 "{\"t\":\"n1 again\"}")" \
	    >push.out 2>&1 &&
	pusher=$test_bg_pid &&
	test_wait_until 30 "test \$(pg_lock_waiters race) -ge 1" &&
	pg_session_commit &&
	test_wait_exit "$pusher" 30 &&
	status_is 200 push.out &&
	test_grep ! "running it again" "$(server_log A)" &&
	tail -n 1 push.out >results &&
	test_grep "{\"results\":\[{\"current\":{\"body\":{\"t\":\"other\"},\"deleted\":false,\"version\":1},\"status\":\"conflict\"},{\"status\":\"applied\",\"version\":1},{\"status\":\"applied\",\"version\":2}\]}" results
'

test_expect_success 'the store holds the other writer'"'"'s r1 and each change once' '
	req A alice GET /v1/docs/notes/r1 >doc &&
	test_grep "other" doc &&
	pg_sql race "SELECT id, version, dseq FROM changes ORDER BY seq" >log &&
	printf "n1|1|1\nr2|1|3\nn1|2|4\n" >expect &&
	test_cmp expect log &&
	pg_sql race "SELECT count(*), min(seq), max(seq), (SELECT seq FROM head)
	    FROM changes" >seqs &&
	echo "3|1|3|3" >expect && test_cmp expect seqs
'

test_expect_success 'the change sent again after the other commit: conflict again' '
	push A alice "$(item alice put notes r1 0 2 "{\"t\":\"mine\"}")" >out &&
	test_grep "\"status\":\"conflict\"" out &&
	test_grep "other" out
'

# creator.sh DEVICE URL ORDER: 8 pushes of 100 new documents k<r>-<i>
# (r the push, i 1..100 ascending or descending), made first, sent once
# the test says go (both creators made theirs), each answered 200 the
# first time; the numbers of "applied" and "conflict" answers go to
# $TEST_DIR/count-DEVICE.
cat >"$TEST_DIR/creator.sh" <<'CREATOR'
#!/bin/sh
dev=$1 url=$2 order=$3
kd=$TEST_DIR/keys/$dev out=$TEST_DIR/create-$dev
seq=100 r=1
while [ "$r" -le 8 ]; do
	sep="" i=1
	printf '{"changes":[' >"$out.$r"
	while [ "$i" -le 100 ]; do
		if [ "$order" = up ]; then d=$i; else d=$((101 - i)); fi
		seq=$((seq + 1))
		printf '%s' "$sep" >>"$out.$r"
		"$SRVCLIENT" --key-dir "$kd" change put race "k$r-$d" 0 \
		    "$seq" "{\"by\":\"$dev\"}" >>"$out.$r" || exit 1
		sep=, i=$((i + 1))
	done
	printf ']}' >>"$out.$r"
	r=$((r + 1))
done
# Both made: push at once (at most 60 s for the other).
: >"$TEST_DIR/ready-$dev"
t=0
while [ ! -e "$TEST_DIR/go" ]; do
	t=$((t + 1)) && [ "$t" -le 6000 ] || exit 1
	sleep 0.01
done
r=1
while [ "$r" -le 8 ]; do
	"$SRVCLIENT" --key-dir "$kd" --url "$url" --timeout 60 \
	    POST /v1/push "$out.$r" >"$out.reply.$r" || exit 1
	[ "$(head -n 1 "$out.reply.$r")" = 200 ] ||
	    { echo "$dev: push $r:"; cat "$out.reply.$r"; exit 1; }
	r=$((r + 1))
done
echo "$(cat "$out".reply.* | grep -o '"status":"applied"' | wc -l)" \
    "$(cat "$out".reply.* | grep -o '"status":"conflict"' | wc -l)" \
    >"$TEST_DIR/count-$dev"
CREATOR

test_expect_success 'two devices create the same documents at once: no deadlock, once each' '
	server_start B --open --db "$(pg_url race)" &&
	key_of xan >/dev/null && key_of yve >/dev/null &&
	export SRVCLIENT TEST_DIR &&
	test_bg sh "$TEST_DIR/creator.sh" xan "$(server_url A)" up \
	    >creator-xan.log 2>&1 </dev/null &&
	cx=$test_bg_pid &&
	test_bg sh "$TEST_DIR/creator.sh" yve "$(server_url B)" down \
	    >creator-yve.log 2>&1 </dev/null &&
	cy=$test_bg_pid &&
	test_wait_until 120 "test -e \"$TEST_DIR/ready-xan\" &&
	    test -e \"$TEST_DIR/ready-yve\"" &&
	: >"$TEST_DIR/go" &&
	test_wait_exit "$cx" 300 && { test "$test_exit_status" = 0 ||
	    { cat creator-xan.log; false; }; } &&
	test_wait_exit "$cy" 300 && { test "$test_exit_status" = 0 ||
	    { cat creator-yve.log; false; }; } &&
	read ax cx <"$TEST_DIR/count-xan" && read ay cy <"$TEST_DIR/count-yve" &&
	test_equal "applied" 800 $((ax + ay)) &&
	test_equal "conflicts" 800 $((cx + cy)) &&
	test_grep ! "running it again" "$(server_log A)" "$(server_log B)" &&
	test_grep ! "deadlock detected" "$pg_dir/log" &&
	pg_sql race "SELECT count(*), count(DISTINCT id), max(version)
	    FROM changes WHERE collection = '"'race'"'" >counts &&
	echo "800|800|1" >expect && test_cmp expect counts &&
	pg_sql race "SELECT count(*) FROM docs WHERE version = 0" >zero &&
	echo 0 >expect && test_cmp expect zero &&
	pg_sql race "SELECT count(*), min(seq), max(seq), (SELECT seq FROM head)
	    FROM changes" >seqs &&
	echo "803|1|803|803" >expect && test_cmp expect seqs
'

test_expect_success 'the instances stop cleanly' '
	server_stop A && server_stop B
'

test_done
