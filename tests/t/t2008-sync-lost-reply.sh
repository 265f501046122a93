#!/bin/sh
# Guards issue 8, break 1: a lost push reply must not make a phantom
# conflict.  A pushes fa=1 through a fault-injecting proxy that lets the
# server apply it and drops the reply; A writes fa=2 while its pushes are
# refused; B writes fb=1 on top of fa=1; the network heals.  A pulls its
# own fa=1 back before any push answer: that is the answer (version and
# merge base move to it), so B's change merges cleanly and every device
# and the server end with {"fa":2,"fb":1} at version 3.  Before the fix A
# skipped its own change, merged B's against a stale base, and queued a
# conflict on /fa naming its own fa=1 as "theirs".  Also: the pulled-back
# change settles the document while every push is refused (nothing is
# sent twice once the network heals), a delete likewise, and a push answer
# that arrives after the pull settled the record (a trickled reply)
# changes nothing.

. "$(dirname "$0")/fault-lib.sh"

# fp COMMAND: one control command to the proxy "px"; it must accept it.
fp() {
	proxy_ctl px "$1" >"$TEST_DIR/.fp" || {
		echo "faultproxy $1:"
		cat "$TEST_DIR/.fp"
		return 1
	}
}

# doc_is NAME C ID VERSION BODY: NAME holds C/ID at VERSION with BODY, not
# pending, not conflicted.
doc_is() {
	get "$1" "$2" "$3" >"$TEST_DIR/.doc" &&
	test_equal "$1 $2/$3 body" "$5" "$(body_of "$TEST_DIR/.doc")" &&
	test_equal "$1 $2/$3 version" "$4" "$(json_int version "$TEST_DIR/.doc")" &&
	test_grep '"pending":false' "$TEST_DIR/.doc" &&
	test_grep '"conflicted":false' "$TEST_DIR/.doc"
}

test_expect_success 'setup: server, proxy, A through the proxy, B direct' '
	server_start s --open &&
	proxy_start px s &&
	printf "[remote]\nbackoff_max = 1\n" >a.conf &&
	ferryd_start A --config "$TEST_DIR/a.conf" \
	    --remote "$(proxy_url px)" &&
	syncd_start B s &&
	sync_all A B
'

test_expect_success 'A pushes fa=1: the server applies it, the reply is lost' '
	fp "set /v1/push refuse" &&
	fp "set /v1/push drop-after 1" &&
	put_ok A f d1 "{\"fa\":1}" &&
	test_wait_until 20 "test \"\$(proxy_stat px drop-after)\" = 1" &&
	server_doc s f d1 >srv.out &&
	test_grep "^{\"body\":{\"fa\":1},\"deleted\":false,\"version\":1}\$" srv.out
'

test_expect_success 'A writes fa=2 cut off from pushing; B writes fb=1 on fa=1' '
	put_ok A f d1 "{\"fa\":2}" &&
	sync_wait B &&
	doc_is B f d1 1 "{\"fa\":1}" &&
	put_ok B f d1 "{\"fa\":1,\"fb\":1}" &&
	sync_wait B &&
	doc_is B f d1 2 "{\"fa\":1,\"fb\":1}"
'

# A pulls fa=1 (its own) and fb=1 (B's) while every push is refused.
test_expect_success 'A merges B'"'"'s change cleanly: no phantom conflict on /fa' '
	test_wait_until 30 "get A f d1 >a.out && { test \"\$(json_int version a.out)\" -ge 2 || grep -q \"\\\"conflicted\\\":true\" a.out; }" &&
	test_grep "\"conflicted\":false" a.out &&
	test_equal "A body" "{\"fa\":2,\"fb\":1}" "$(body_of a.out)" &&
	test_equal "A version" 2 "$(json_int version a.out)" &&
	conflict_ids A >cids &&
	test_equal "conflicts on A" "" "$(cat cids)"
'

test_expect_success 'the network heals: {fa:2,fb:1} at version 3 everywhere' '
	fp clear &&
	sync_wait A &&
	sync_wait B &&
	doc_is A f d1 3 "{\"fa\":2,\"fb\":1}" &&
	doc_is B f d1 3 "{\"fa\":2,\"fb\":1}" &&
	server_doc s f d1 >srv.out &&
	test_grep "^{\"body\":{\"fa\":2,\"fb\":1},\"deleted\":false,\"version\":3}\$" srv.out &&
	conflict_ids A >cids &&
	test_equal "conflicts on A" "" "$(cat cids)" &&
	conflict_ids B >cids &&
	test_equal "conflicts on B" "" "$(cat cids)" &&
	status_of A >st &&
	test_equal "A pending" 0 "$(json_int pending st)" &&
	test_equal "A conflicts" 0 "$(json_int conflicts st)" &&
	test_equal "A rejected" 0 "$(json_int rejected st)"
'

# The pull alone settles a change whose reply was lost: while every push
# is refused, the document takes the server's version and is no longer
# pending; once the network heals nothing is sent again.
test_expect_success 'a pulled-back change is the answer while pushes are refused' '
	fp "set /v1/push refuse" &&
	fp "set /v1/push drop-after 1" &&
	put_ok A g d1 "{\"g\":1}" &&
	test_wait_until 20 "test \"\$(proxy_stat px drop-after)\" = 2" &&
	test_wait_until 30 "get A g d1 >g.out && test \"\$(json_int version g.out)\" = 1" &&
	test_grep "\"pending\":false" g.out &&
	test_equal "A pending" 0 "$(status_int A pending)" &&
	fp clear &&
	sync_wait A &&
	doc_is A g d1 1 "{\"g\":1}" &&
	server_changes s >changes &&
	test_equal "g/d1 changes on the server" 1 \
	    "$(grep -c "\"collection\":\"g\"" changes)"
'

# The same for a delete: its tombstone coming back is its answer.
test_expect_success 'a pulled-back delete is its answer too' '
	fp clear &&
	fp "set /v1/push refuse" &&
	fp "set /v1/push drop-after 1" &&
	n=$(proxy_stat px drop-after) &&
	del A g d1 >del.out &&
	test_grep "\"deleted\":true" del.out &&
	test_wait_until 20 "test \"\$(proxy_stat px drop-after)\" = $((n + 1))" &&
	test_wait_until 30 "get A g d1 >g.out && test \"\$(json_int version g.out)\" = 2" &&
	test_grep "\"deleted\":true" g.out &&
	test_grep "\"pending\":false" g.out &&
	test_equal "A pending" 0 "$(status_int A pending)" &&
	fp clear &&
	sync_wait A &&
	server_doc s g d1 >srv.out &&
	test_grep "^{\"deleted\":true,\"version\":2}\$" srv.out &&
	conflict_ids A >cids &&
	test_equal "conflicts on A" "" "$(cat cids)"
'

# A trickled reply arrives after the long-poll has brought the change
# back: the answer finds the record settled and changes nothing.
test_expect_success 'a push answer after the pull settled the record is harmless' '
	fp clear &&
	fp "set /v1/push trickle 1" &&
	put_ok A h d1 "{\"h\":1}" &&
	put_ok A h d2 "{\"h\":2}" &&
	sync_wait A &&
	sync_wait B &&
	doc_is A h d1 1 "{\"h\":1}" &&
	doc_is B h d1 1 "{\"h\":1}" &&
	doc_is A h d2 1 "{\"h\":2}" &&
	put_ok A h d1 "{\"h\":3}" &&
	sync_wait A &&
	doc_is A h d1 2 "{\"h\":3}" &&
	status_of A >st &&
	test_equal "A pending" 0 "$(json_int pending st)" &&
	test_equal "A conflicts" 0 "$(json_int conflicts st)" &&
	server_changes s >changes &&
	change_ids changes | sort | uniq -d >doubles &&
	test_equal "change ids applied twice" "" "$(cat doubles)"
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	ferryd_stop B &&
	server_stop s
'

test_done
