#!/bin/sh
# A change pushed under the old key, its reply lost, settled as the
# device's own after `ferryctl key rotate` and a restart (issue 13, "Keys
# over their whole life").  Bug guarded: ferryd knew the key it rotated
# from only in memory; restarted after the rotation, it took that change
# coming back in a pull (signed by the retired key) for another device's
# and merged it with itself: a second change on the server ("merge"),
# two entries in `ferryctl log` for one edit.  Promise: the key rotated
# from is stored in the replica (meta "key_prev", written before the
# statement is sent, so a kill -9 anywhere keeps it), loaded at start,
# and the change pulled back is settled as its own push's answer: version
# 1, nothing pending, no conflict, one entry in the log, nothing more on
# the server.  A replica from before (no key_prev) still starts and syncs;
# a key_prev that is not a key is named in the log and ignored.
#
# Bug guarded too: only that one previous key was kept; after two
# rotations in a row (KC -> KD -> KE) the change KC signed came back as
# another device's and conflicted with the device's own later edit.
# Promise: the replica keeps the keys the device rotated away from, the
# last 8, newest first (meta "keys_prev"; "key_prev" still names the
# newest), each stored before its statement is sent; a replica with only
# key_prev keeps that key and grows the list from it; past 8 rotations
# the oldest key is dropped; a stored value that is not a key is named and
# ignored.
#
# The reply is lost deterministically through faultproxy: the push is
# applied and its reply dropped (drop-after), every later push and pull
# is dropped until the restart, and after it pushes stay dropped until
# the pull has brought the change back.

. "$(dirname "$0")/fault-lib.sh"

command -v sqlite3 >/dev/null 2>&1 || skip_all "sqlite3 is missing"

# meta NAME KEY: a value of NAME's replica's meta table (empty if none).
meta() {
	sqlite3 "$(ferryd_datadir "$1")/replica.db" \
	    "SELECT value FROM meta WHERE key = '$2'"
}

# lose_reply ID: A puts notes/ID {"t":1}; its push is applied and the
# reply lost, every later push and pull dropped; then A edits it again
# ({"t":2}), which stays pending.
lose_reply() {
	_lost=$(cat "$(proxy_log px)" | grep -c "POST /v1/push -> drop-after")
	proxy_ctl px "set /v1/changes drop-before" &&
	proxy_ctl px cut &&
	proxy_ctl px "set /v1/push drop-before" &&
	proxy_ctl px "set /v1/push drop-after 1" &&
	put_ok A notes "$1" "{\"t\":1}" &&
	test_wait_until 30 "test \$(grep -c \"POST /v1/push -> drop-after\" \"$(proxy_log px)\") -gt $_lost" &&
	server_doc s notes "$1" >out && status_is 200 out &&
	test_grep "\"version\":1" out &&
	put_ok A notes "$1" "{\"t\":2}"
}

# rotate: ferryctl key rotate on A, which must succeed (its output in
# rotate.out).
rotate() {
	ctl_bounded 60 A key rotate >rotate.out &&
	test_grep "^new device key " rotate.out
}

# settle_pulled_back ID KEY: start A (its device key KEY) with pushes
# dropped until the pull has brought notes/ID's version 1 back (the pull
# cursor is at the server's head): that change is settled by the pull, not
# by the push's retry (answered "duplicate").  It must be A's own push's
# answer (version 1, not conflicted), the edit then pushed on top as
# version 2: one log entry each, nothing more on the server.
settle_pulled_back() {
	_head=$(server_head s probe) &&
	proxy_ctl px clear &&
	proxy_ctl px "set /v1/push drop-before" &&
	ferryd_start A --remote "$(proxy_url px)" &&
	test "$(ctl A key)" = "$2" &&
	test_wait_until 30 "test \"\$(meta A pull_cursor)\" = $_head" &&
	get A notes "$1" >doc && cat doc &&
	test_grep "\"version\":1,.*\"conflicted\":false" doc &&
	test_grep "\"body\":{\"t\":2}" doc &&
	status_of A >st && test "$(json_int conflicts <st)" -eq 0 &&
	proxy_ctl px clear &&
	sync_wait A &&
	status_of A >st &&
	test "$(json_int pending <st)" -eq 0 &&
	test "$(json_int conflicts <st)" -eq 0 &&
	server_doc s notes "$1" >out &&
	test_grep "\"body\":{\"t\":2},\"deleted\":false,\"version\":2" out &&
	server_changes s >changes &&
	test "$(grep -c "\"id\":\"$1\"" changes)" -eq 2 &&
	ctl A log notes "$1" >log.out && cat log.out &&
	test "$(grep -c " v1 .* verified" log.out)" -eq 1 &&
	test "$(grep -c " v2 .* verified" log.out)" -eq 1 &&
	test "$(grep -c . log.out)" -eq 2
}

test_expect_success 'setup: A syncs with s through a proxy' '
	server_start s --open &&
	proxy_start px s &&
	ferryd_start A --remote "$(proxy_url px)" &&
	KA=$(ctl A key) && test -n "$KA" &&
	put_ok A notes n0 "{\"t\":0}" &&
	sync_wait A &&
	test -z "$(meta A key_prev)"
'

test_expect_success 'a push under the old key is applied, its reply lost; n1 edited again; the key rotates' '
	lose_reply n1 &&
	rotate &&
	KB=$(ctl A key) && test "$KB" != "$KA" &&
	test_grep "^new device key $KB (the remote retired $KA)\$" rotate.out &&
	status_of A >st && test "$(json_int pending <st)" -eq 1 &&
	ferryd_stop A
'

test_expect_success 'restarted, A settles the change pulled back as its own' '
	test "$(server_head s probe)" -ge 2 &&
	settle_pulled_back n1 "$KB" &&
	test "$(meta A key_prev)" = "$KA"
'

test_expect_success 'a replica from before key_prev was kept starts and syncs' '
	proxy_ctl px clear &&
	ferryd_stop A &&
	sqlite3 "$(ferryd_datadir A)/replica.db" \
	    "DELETE FROM meta WHERE key IN ('"'"'key_prev'"'"', '"'"'keys_prev'"'"')" &&
	ferryd_start A --remote "$(proxy_url px)" &&
	put_ok A notes n2 "{\"t\":2}" &&
	sync_wait A &&
	server_doc s notes n2 >out && status_is 200 out &&
	test -z "$(meta A key_prev)" && test -z "$(meta A keys_prev)"
'

test_expect_success 'a key_prev that is no key is named and ignored; ferryd syncs on' '
	ferryd_stop A &&
	sqlite3 "$(ferryd_datadir A)/replica.db" \
	    "INSERT INTO meta VALUES ('"'"'key_prev'"'"', '"'"'not a key'"'"')" &&
	ferryd_start A --remote "$(proxy_url px)" &&
	put_ok A notes n3 "{\"t\":3}" &&
	sync_wait A &&
	server_doc s notes n3 >out && status_is 200 out &&
	test_grep "key_prev is not a public key: ignored" "$(ferryd_log A)"
'

test_expect_success 'kill -9 while the statement waits: key_prev is stored before it is sent' '
	proxy_ctl px "set /v1/keys/rotate drop-before" &&
	proxy_ctl px "set /v1/keys/rotate drop-after 1" &&
	test_expect_code 1 ctl_bounded 60 A key rotate >out 2>err &&
	test -e "$(ferryd_datadir A)/device.key.next" &&
	test "$(meta A key_prev)" = "$KB" &&
	ferryd_kill9 A &&
	proxy_ctl px clear &&
	ferryd_start A --remote "$(proxy_url px)" &&
	test_wait_until 30 "! test -e \"$(ferryd_datadir A)/device.key.next\"" &&
	KC=$(ctl A key) && test "$KC" != "$KB" &&
	test "$(meta A key_prev)" = "$KB" &&
	put_ok A notes n4 "{\"t\":4}" &&
	sync_wait A &&
	server_changes s >changes &&
	test_grep "\"change\":\"$KC:[0-9]*\",\"collection\":\"notes\",\"deleted\":false,\"id\":\"n4\"" changes
'

test_expect_success 'a push under KC is applied, its reply lost; n5 edited again; the key rotates twice' '
	lose_reply n5 &&
	rotate &&
	KD=$(ctl A key) && test "$KD" != "$KC" &&
	rotate &&
	KE=$(ctl A key) && test "$KE" != "$KD" && test "$KE" != "$KC" &&
	test_grep "^new device key $KE (the remote retired $KD)\$" rotate.out &&
	status_of A >st && test "$(json_int pending <st)" -eq 1 &&
	ferryd_stop A
'

test_expect_success 'restarted, A settles the change KC signed, two keys back, as its own' '
	settle_pulled_back n5 "$KE" &&
	test_grep "the device key $KE was rotated from $KC" "$(ferryd_log A)"
'

test_expect_success 'the keys rotated from are kept newest first; key_prev is the newest' '
	test "$(meta A keys_prev)" = "$KD $KC $KB" &&
	test "$(meta A key_prev)" = "$KD"
'

test_expect_success 'a replica with only key_prev keeps that key and grows the list from it' '
	ferryd_stop A &&
	sqlite3 "$(ferryd_datadir A)/replica.db" \
	    "DELETE FROM meta WHERE key = '"'"'keys_prev'"'"'" &&
	ferryd_start A --remote "$(proxy_url px)" &&
	test_wait_until 30 "grep -q \"device key $KE was rotated from $KD\" \"$(ferryd_log A)\"" &&
	test_grep ! "rotated from $KC" "$(ferryd_log A)" &&
	rotate &&
	KF=$(ctl A key) &&
	test "$(meta A keys_prev)" = "$KE $KD" &&
	test "$(meta A key_prev)" = "$KE" &&
	put_ok A notes n6 "{\"t\":6}" &&
	sync_wait A &&
	server_doc s notes n6 >out && status_is 200 out
'

test_expect_success 'past 8 keys rotated from, the oldest is dropped' '
	i=0 &&
	while [ $i -lt 7 ]; do
		rotate || return 1
		i=$((i + 1))
	done &&
	set -- $(meta A keys_prev) &&
	test $# -eq 8 &&
	test "$1" = "$(meta A key_prev)" &&
	test "$7" = "$KF" &&
	test "$8" = "$KE" &&
	! meta A keys_prev | grep -q "$KD"
'

test_expect_success 'a keys_prev value that is no key is named and ignored; ferryd syncs on' '
	ferryd_stop A &&
	KN=$(meta A key_prev) && test -n "$KN" &&
	sqlite3 "$(ferryd_datadir A)/replica.db" \
	    "UPDATE meta SET value = '"'"'not-a-key '"'"' || value WHERE key = '"'"'keys_prev'"'"'" &&
	ferryd_start A --remote "$(proxy_url px)" &&
	test_wait_until 30 "grep -q \"was rotated from $KN\" \"$(ferryd_log A)\"" &&
	test_grep "keys_prev holds a value that is not a public key: ignored" "$(ferryd_log A)" &&
	put_ok A notes n7 "{\"t\":7}" &&
	sync_wait A &&
	server_doc s notes n7 >out && status_is 200 out
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	proxy_stop px &&
	server_stop s
'

test_done
