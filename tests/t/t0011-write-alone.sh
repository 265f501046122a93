#!/bin/sh
# Guards issue 8: a sync failure must not fail an app's write.  Sync steps
# (preparing a push, applying a pull) share the writer's batches with app
# Puts; a sync step that failed used to roll back the whole batch, so the
# unrelated Puts in it were answered WriteFailed.  Here a document changed
# on both A and B holds on B a body no merge can read (written behind
# ferryd's back with sqlite3: duplicate keys, which ferry's parser
# refuses), so every sync step that meets it (the push answer "conflict",
# the pulled change) fails, again and again, while an app pipelines
# thousands of Puts on B and Sync keeps restarting the sync: every Put
# must be acknowledged and readable, the failing sync step must really
# have run, and B's change is still pending, not lost.

. "$(dirname "$0")/sync-lib.sh"

[ -x "$DURAWRITER" ] || skip_all "durawriter is not built"
command -v sqlite3 >/dev/null 2>&1 || skip_all "sqlite3 (the CLI) is missing"

sock=$(ferryd_sock B)
writes=20000

test_expect_success 'setup: A and B sync x with the server' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	put_ok A notes x "{\"t\":1}" &&
	sync_all A B &&
	get B notes x >out &&
	test_equal version 1 "$(json_int version out)"
'

# B's x is pending with a body no merge can read; A's x is on the server.
test_expect_success 'x changes on both sides offline; B'\''s body is broken' '
	server_stop s &&
	put_ok A notes x "{\"t\":\"a\"}" &&
	put_ok B notes x "{\"t\":\"b\"}" &&
	ferryd_stop B &&
	sqlite3 "$(ferryd_datadir B)/replica.db" \
	    "UPDATE docs SET body = '\''{\"t\":\"b\",\"t\":\"c\"}'\'' WHERE collection = '\''notes'\'' AND id = '\''x'\''" &&
	server_start s --open &&
	sync_wait A &&
	syncd_start B s
'

test_expect_success 'Puts pipelined while the sync steps on x fail all succeed' '
	"$DURAWRITER" "$sock" --prefix w --log w.log --count $writes \
	    --collection app >writer.out 2>&1 &
	wpid=$! &&
	test_track $wpid &&
	n=0 &&
	while test_pid_ours $wpid && [ $n -lt 2000 ]; do
		fcall B Sync "{}" >/dev/null || break
		n=$((n + 1))
	done &&
	test_wait_exit $wpid 120 &&
	test_equal "writer status" 0 "$test_exit_status" &&
	cat writer.out &&
	test_equal "acknowledged" "wrote $writes" "$(grep "^wrote" writer.out)" &&
	test_grep ! "^!" w.log &&
	"$DURAWRITER" "$sock" --verify w.log >verify.out &&
	test_grep "^verified $writes acknowledged, 0 refused" verify.out
'

test_expect_success 'the sync step did fail meanwhile; x is still pending' '
	test_grep -e "sync: push: cannot record the results" \
	    -e "sync: pull: cannot apply changes" "$(ferryd_log B)" &&
	get B notes x >out &&
	test_grep "\"pending\":true" out
'

test_done
