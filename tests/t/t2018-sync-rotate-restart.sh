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
	proxy_ctl px "set /v1/changes drop-before" &&
	proxy_ctl px cut &&
	proxy_ctl px "set /v1/push drop-before" &&
	proxy_ctl px "set /v1/push drop-after 1" &&
	put_ok A notes n1 "{\"t\":1}" &&
	test_wait_until 30 "grep -q \"POST /v1/push -> drop-after\" \"$(proxy_log px)\"" &&
	server_doc s notes n1 >out && status_is 200 out &&
	test_grep "\"version\":1" out &&
	put_ok A notes n1 "{\"t\":2}" &&
	ctl_bounded 60 A key rotate >out &&
	KB=$(ctl A key) && test "$KB" != "$KA" &&
	test_grep "^new device key $KB (the remote retired $KA)\$" out &&
	status_of A >st && test "$(json_int pending <st)" -eq 1 &&
	ferryd_stop A
'

# Pushes stay dropped after the restart until the pull has brought n1's
# version 1 back (the pull cursor is at the server's head): that change is
# settled by the pull, not by the push's retry (answered "duplicate").
test_expect_success 'restarted, A settles the change pulled back as its own' '
	head=$(server_head s probe) && test "$head" -ge 2 &&
	proxy_ctl px clear &&
	proxy_ctl px "set /v1/push drop-before" &&
	ferryd_start A --remote "$(proxy_url px)" &&
	test "$(ctl A key)" = "$KB" &&
	test_wait_until 30 "test \"\$(meta A pull_cursor)\" = $head" &&
	get A notes n1 >doc && cat doc &&
	test_grep "\"version\":1,.*\"conflicted\":false" doc &&
	test_grep "\"body\":{\"t\":2}" doc &&
	status_of A >st && test "$(json_int conflicts <st)" -eq 0 &&
	proxy_ctl px clear &&
	sync_wait A &&
	status_of A >st &&
	test "$(json_int pending <st)" -eq 0 &&
	test "$(json_int conflicts <st)" -eq 0 &&
	server_doc s notes n1 >out &&
	test_grep "\"body\":{\"t\":2},\"deleted\":false,\"version\":2" out &&
	server_changes s >changes &&
	test "$(grep -c "\"id\":\"n1\"" changes)" -eq 2 &&
	ctl A log notes n1 >log.out && cat log.out &&
	test "$(grep -c " v1 .* verified" log.out)" -eq 1 &&
	test "$(grep -c " v2 .* verified" log.out)" -eq 1 &&
	test "$(grep -c . log.out)" -eq 2 &&
	test "$(meta A key_prev)" = "$KA"
'

test_expect_success 'a replica from before key_prev was kept starts and syncs' '
	proxy_ctl px clear &&
	ferryd_stop A &&
	sqlite3 "$(ferryd_datadir A)/replica.db" \
	    "DELETE FROM meta WHERE key = '"'"'key_prev'"'"'" &&
	ferryd_start A --remote "$(proxy_url px)" &&
	put_ok A notes n2 "{\"t\":2}" &&
	sync_wait A &&
	server_doc s notes n2 >out && status_is 200 out &&
	test -z "$(meta A key_prev)"
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

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	proxy_stop px &&
	server_stop s
'

test_done
