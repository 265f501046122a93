#!/bin/sh
# A pull cursor beyond the server's head.  Bug guarded: when a server was
# restored from an older backup (or the remote URL pointed at another
# server), ferryd's cursor lay beyond the server's head; the server
# answered GET /v1/changes?since=<cursor> as if nothing were newer, ferryd
# said idle, and the changes that later took the seqs up to its cursor
# were never pulled: lost without a word.  Promise: the server answers 409
# naming since and its head, and ferryd pauses (no retry loop) with that
# reason in last_error; Sync says so at once; local writes go on.

. "$(dirname "$0")/sync-lib.sh"

state_is() {
	status_of "$1" | grep -q "\"state\":\"$2\""
}

test_expect_success 'setup: A syncs one change; the server is backed up' '
	server_start s --open &&
	syncd_start A s &&
	put_ok A notes n1 "{\"t\":1}" &&
	sync_wait A &&
	server_stop s &&
	cp -R "$(server_datadir s)" backup &&
	server_start s --open
'

test_expect_success 'two more changes: A pulls up to seq 3' '
	put_ok A notes n2 "{\"t\":2}" &&
	put_ok A notes n3 "{\"t\":3}" &&
	sync_wait A &&
	sync_settle A &&
	status_of A >st &&
	test_grep "\"state\":\"idle\"" st &&
	test_equal head 3 "$(server_head s probe)"
'

test_expect_success 'the server restored from the backup: head 1' '
	server_stop s &&
	rm -rf "$(server_datadir s)" &&
	cp -R backup "$(server_datadir s)" &&
	server_start s --open &&
	test_equal head 1 "$(server_head s probe)"
'

test_expect_success 'the next pull is refused with 409; A pauses, naming since' '
	test_expect_code 1 ctl_bounded 20 A sync --wait &&
	test_wait_until 20 "state_is A paused" &&
	status_of A >st &&
	test_grep "\"last_error\":\"pull: [^\"]* answered 409: since 3 is beyond this server.s head 1" st &&
	test_grep "answered 409" "$(ferryd_log A)"
'

test_expect_success 'Sync answers Offline at once with that reason; writes go on' '
	vlcall A "{\"method\":\"io.ferry.Sync\",\"parameters\":{\"wait\":true}}" \
	    --timeout 20000 >sync.out &&
	test_grep "^{\"error\":\"io.ferry.Offline\"" sync.out &&
	test_grep "since 3 is beyond" sync.out &&
	put_ok A notes n4 "{\"t\":4}" &&
	ferryd_works A &&
	state_is A paused
'

test_done
