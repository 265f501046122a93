#!/bin/sh
# A remote that no longer has a document ferryd synced with it (restored
# from an older backup, or the document removed by its operator) answers
# a push based on that version with a conflict whose current state is
# {"deleted":true,"version":0}, as docs/protocol.md says.  Bug guarded:
# ferryd took that answer for an unreadable one ("a conflict result has
# no current state"), went offline and re-sent the same push forever,
# so no change of any document reached the remote again.  Promise: the
# answer is a conflict like any other (the local edit against the
# remote's deletion, at path ""), the other documents go on syncing, and
# resolving with --mine creates the document again on the remote.

. "$(dirname "$0")/sync-lib.sh"

command -v sqlite3 >/dev/null 2>&1 || skip_all "sqlite3 is missing"

test_expect_success 'setup: n1 then n2 synced to the remote' '
	server_allow s probe &&
	server_start s --open &&
	syncd_start A s &&
	put_ok A notes n1 "{\"t\":1}" &&
	sync_wait A &&
	put_ok A notes n2 "{\"t\":2}" &&
	sync_wait A &&
	server_doc s notes n1 >doc &&
	test_grep "\"version\":1" doc
'

test_expect_success 'the remote forgets n1 (its rows removed while it is down)' '
	server_stop s &&
	sqlite3 "$(server_datadir s)/server.db" \
	    "DELETE FROM docs WHERE id = \"n1\"; DELETE FROM changes WHERE id = \"n1\"" &&
	server_start s --open &&
	server_doc s notes n1 >doc &&
	test_grep "^404\$" doc
'

test_expect_success 'an edit of n1 is a conflict with the deletion, not an endless retry' '
	put_ok A notes n1 "{\"t\":3}" &&
	sync_wait A &&
	status_of A >st &&
	test_equal conflicts 1 "$(json_int conflicts st)" &&
	test_grep ! "has no current state" st &&
	test_grep ! "\"state\":\"offline\"" st &&
	fcall A Conflicts >c &&
	test_grep "\"paths\":\[\"\"\]" c &&
	test_grep "\"their_version\":0" c
'

test_expect_success 'the other documents go on syncing' '
	put_ok A notes n3 "{\"t\":4}" &&
	sync_wait A &&
	server_doc s notes n3 >doc &&
	test_grep "\"body\":{\"t\":4}" doc
'

test_expect_success 'resolve --mine creates n1 again on the remote' '
	cid=$(conflict_ids A) &&
	ctl_bounded 10 A resolve "$cid" --mine &&
	sync_wait A &&
	server_doc s notes n1 >doc &&
	test_grep "^{\"body\":{\"t\":3},\"deleted\":false,\"version\":1}\$" doc &&
	get A notes n1 >got &&
	test_grep "\"version\":1" got &&
	test_grep "\"pending\":false" got &&
	test_grep "\"conflicted\":false" got
'

test_done
