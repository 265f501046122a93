#!/bin/sh
# Durability of ferry-server.  Promise: a push the server answered is on
# disk (it replies only after COMMIT with synchronous=FULL): after kill -9
# in the middle of a stream of pushes and a restart, every change it
# answered "applied" is there at the version it reported, the change log
# has no gap, and resending every change (the client's retry after a lost
# reply) applies each exactly once: what was applied is a duplicate, the
# rest applies now.  A clean SIGTERM restart keeps everything too.

. "$(dirname "$0")/server-lib.sh"

N=150

test_expect_success "setup: a server and $N signed changes" '
	server_allow s alice &&
	server_start s &&
	i=1 && while [ $i -le $N ]; do
		printf "{\"changes\":[%s]}" \
		    "$(item alice put notes "n$i" 0 "$i" "{\"i\":$i}")" \
		    >"p$i.json" || break
		i=$((i + 1))
	done &&
	test -s "p$N.json"
'

test_expect_success 'kill -9 while pushes stream in' '
	(
		i=1
		while [ $i -le $N ]; do
			"$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" \
			    --url "$(server_url s)" POST /v1/push "p$i.json" \
			    >"r$i" 2>&1 || break
			echo "$i" >>answered
			i=$((i + 1))
		done
	) &
	loop=$! && test_track "$loop" &&
	test_wait_until 20 "[ \$(cat answered 2>/dev/null | wc -l) -ge 30 ]" &&
	server_kill9 s &&
	test_wait_exit "$loop" 20 &&
	n=$(wc -l <answered) &&
	echo "$n answered before the kill" &&
	[ "$n" -ge 30 ] && [ "$n" -lt $N ]
'

test_expect_success 'after a restart every answered change is there' '
	server_start s &&
	missing="" &&
	for i in $(cat answered); do
		grep -q "\"status\":\"applied\",\"version\":1" "r$i" ||
		    missing="$missing bad-reply-$i"
		req s alice GET "/v1/docs/notes/n$i" >doc
		grep -q "^{\"body\":{\"i\":$i},\"deleted\":false,\"version\":1}\$" \
		    doc || missing="$missing n$i"
	done &&
	test_equal missing "" "$missing" &&
	head=$(server_head s alice) &&
	[ "$head" -ge "$n" ] && [ "$head" -le $((n + 1)) ] &&
	server_state s alice >state &&
	test "$(grep -o "\"seq\":" state | wc -l)" = "$head"
'

test_expect_success 'resending everything applies each change exactly once' '
	dup=0 && app=0 && other=0 &&
	i=1 && while [ $i -le $N ]; do
		req s alice POST /v1/push "p$i.json" >out || break
		if grep -q "\"status\":\"duplicate\",\"version\":1" out; then
			dup=$((dup + 1))
		elif grep -q "\"status\":\"applied\",\"version\":1" out; then
			app=$((app + 1))
		else
			other=$((other + 1)); cat out
		fi
		i=$((i + 1))
	done &&
	echo "duplicate $dup, applied $app" &&
	test_equal other 0 "$other" &&
	test_equal total $N $((dup + app)) &&
	test_equal duplicates "$head" "$dup" &&
	test_equal head $N "$(server_head s alice)"
'

test_expect_success 'a SIGTERM restart keeps everything' '
	server_state s alice >before &&
	server_stop s &&
	server_start s &&
	test_grep "head $N" "$(server_log s)" &&
	server_state s alice >after &&
	test_cmp before after
'

test_done
