#!/bin/sh
# Guards issue 11: `ferryctl log` hung 60 s (the push transfer timeout)
# when the remote accepted the connection and never answered, and failed
# (Offline) with no remote at all.  The document's history now comes from
# the replica's own change log (its writes, pulled changes, merges,
# resolutions; this device's changes the remote applied and pulled
# changes keep what their signed record needs and are verified here, see
# t2015), extended from the remote when it answers within
# HISTORY_REMOTE_TIMEOUT_MS (3 s); otherwise the reply says why the
# remote's part is missing and ferryctl prints the local log.

. "$(dirname "$0")/sync-lib.sh"

# stalled CMD...: CMD while server s accepts connections and never
# answers (SIGSTOP), then the server goes on; CMD's status is returned.
stalled() {
	kill -STOP "$(server_pid s)" || return 1
	"$@"
	_st_rc=$?
	kill -CONT "$(server_pid s)"
	return $_st_rc
}

test_expect_success 'setup: A writes n1 twice and syncs; B pulls it' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	put_ok A notes n1 "{\"v\":1}" &&
	put_ok A notes n1 "{\"v\":2}" &&
	sync_all A B &&
	ctl_bounded 10 A log notes n1 >log.out &&
	test_grep " v1 " log.out
'

test_expect_success 'a remote that accepts and never answers: log within the bound' '
	stalled timed_log B notes n1 &&
	test "$took" -le 10 &&
	test_grep "this device.s change log" log.out &&
	test_grep "rev 1 *remote" log.out &&
	test_grep "timed out" err
'

test_expect_success 'History over varlink: the local log and remote_error' '
	stalled fcall A History "{\"collection\":\"notes\",\"id\":\"n1\"}" >h.out &&
	key=$(ctl A key) &&
	test_grep "^{\"parameters\":{\"entries\":\[\],\"local\":\[{\"seq\":[0-9]*,\"rev\":1,\"origin\":\"local\",\"ts\":[0-9]*,\"version\":1,\"change\":\"$key:1\",\"device\":\"$key\",\"op\":\"put\",\"verified\":true},{\"seq\":[0-9]*,\"rev\":2,\"origin\":\"local\",\"ts\":[0-9]*,\"version\":2,\"change\":\"$key:2\"," h.out &&
	test_grep "\"remote_error\":\"" h.out &&
	stalled fcall B History "{\"collection\":\"notes\",\"id\":\"n1\"}" >hb.out &&
	test_grep "\"origin\":\"remote\",\"ts\":[0-9]*,\"version\":1,\"change\":\"$key:1\",\"device\":\"$key\",\"op\":\"put\",\"verified\":true}" hb.out &&
	test_grep ! "\"verified\":false" hb.out
'

test_expect_success 'ferryctl log offline: own applied changes verified, with version' '
	stalled timed_log A notes n1 &&
	test_grep "rev 1 *local *v1  put  verified" log.out &&
	test_grep "rev 2 *local *v2  put  verified" log.out
'

test_expect_success 'no remote reachable at all: the local log, at once' '
	server_stop s &&
	put_ok A notes n2 "{\"v\":1}" &&
	timed_log A notes n2 &&
	test "$took" -le 10 &&
	test_grep "rev 1 *local" log.out &&
	test_grep "cannot reach the remote" err
'

test_expect_success 'a daemon without a remote: the local log' '
	ferryd_start C &&
	put_ok C notes c1 "{\"v\":1}" &&
	put_ok C notes c1 "{\"v\":2}" &&
	timed_log C notes c1 &&
	test_grep "rev 2 *local" log.out &&
	test_grep "no remote is configured" err &&
	test_expect_code 1 ctl_bounded 10 C log notes none
'

test_expect_success 'the remote back: the signed trail as before' '
	server_start s --open &&
	ctl_bounded 10 A log notes n1 >log.out 2>err &&
	test_grep " v2 " log.out &&
	test_grep ! "change log" log.out
'

test_done
