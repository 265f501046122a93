#!/bin/sh
# What a device sees when its key goes bad (issue 13).  Bugs guarded: a
# device whose key the server revoked only showed "answered 401" in
# last_error, and a device.key chmod'ed open to others went unremarked
# until ferryd refused to start.  Promises: once the server answers
# "revoked", ferryd is paused (no retry on a backoff) and `ferryctl
# status` says when and why the key was revoked and what to do, in words
# (also as key_revoked for --json); local writes still work; another
# device's `ferryctl log` still verifies the revoked device's entries and
# marks them "by a revoked device"; a device.key readable by group or
# others is reported with the chmod that fixes it; after `unrevoke`, Sync
# resumes and what was written meanwhile is pushed.

. "$(dirname "$0")/sync-lib.sh"

test_expect_success 'setup: a server, devices A and B, A writes n1' '
	server_start s --open &&
	syncd_start A s && syncd_start B s &&
	KA=$(ctl A key) && test -n "$KA" &&
	put_ok A notes n1 "{\"t\":1}" &&
	sync_all A B
'

test_expect_success 'revoked: ferryd pauses and status says when, why and what to do' '
	server_admin s revoke "$KA" --reason "stolen laptop" >/dev/null &&
	put_ok A notes n2 "{\"t\":2}" &&
	test_wait_until 30 "ctl A status >st && grep -q \"^state: *paused\" st" &&
	test_grep "^key problem: *this device.s key was revoked by the server on 20[0-9-]* [0-9:]* UTC (stolen laptop); nothing is sent or pulled until that changes: ask the server.s admin (ferry-server unrevoke $KA), or make this device a new key" st &&
	ctl A --json status >st.json &&
	test_grep "\"key_revoked\":{\"time\":[0-9]*,\"reason\":\"stolen laptop\"}" st.json &&
	test_grep "\"pending\":1" st.json &&
	get A notes n2 >out && test_grep "\"t\":2" out
'

test_expect_success 'B still verifies A.s entries, marked by a revoked device' '
	ctl B log notes n1 >log.txt &&
	test_grep "verified .*(by a revoked device)" log.txt &&
	fcall B History "{\"collection\":\"notes\",\"id\":\"n1\"}" >h.out &&
	test_grep "\"verified\":true" h.out &&
	test_grep "\"revoked\":{\"time\":[0-9]*,\"reason\":\"stolen laptop\"}" h.out
'

test_expect_success 'a device.key open to others is reported with the fix' '
	ctl B status >st && test_grep ! "key problem" st &&
	chmod 644 "$(ferryd_datadir B)/device.key" &&
	ctl B status >st &&
	test_grep "^key problem: *the device key file .*/device.key is open to group or others (mode 0644): .* run: chmod 600 .*/device.key\$" st &&
	chmod 600 "$(ferryd_datadir B)/device.key" &&
	ctl B status >st && test_grep ! "key problem" st
'

test_expect_success 'unrevoked: Sync resumes and pushes what waited' '
	server_admin s unrevoke "$KA" >/dev/null &&
	sync_wait A &&
	ctl A status >st && test_grep ! "key problem" st &&
	server_doc s notes n2 >out && status_is 200 out
'

test_done
