#!/bin/sh
# Guards issue 11's "behaviour a user expects" for ferryctl's output:
# errors on a terminal read as sentences ("no conflict 99"), not
# "io.ferry.NotFound: {"conflict_id":99}", while --json keeps that raw
# form; when ferryd answers an error and closes the connection (its
# connection limit) ferryctl reports that error, not a bare "ferryd
# closed the connection"; ls aligns its columns under a header and marks
# each document pending, conflicted or synced; status shows the oldest
# pending change whenever something is pending; status and key --name
# call the device by one name, its key by "device key".

. "$(dirname "$0")/test-lib.sh"

test_expect_success 'setup: ferryd with room for two connections' '
	printf "[ferryd]\nmax_connections = 2\n" >cap.conf &&
	ferryd_start A --config "$TEST_DIR/cap.conf" &&
	echo "{\"t\":1}" | ctl A put notes n1 - >out
'

test_expect_success 'an unknown conflict is a sentence; --json keeps the raw error' '
	test_expect_code 3 ctl A resolve 99 --mine >out 2>err &&
	test_equal stderr "ferryctl: no conflict 99" "$(cat err)" &&
	test_expect_code 3 ctl A conflicts show 99 2>err &&
	test_equal stderr "ferryctl: no conflict 99" "$(cat err)" &&
	test_expect_code 3 ctl A --json resolve 99 --mine 2>err &&
	test_grep "io.ferry.NotFound: {\"conflict_id\":99}" err
'

test_expect_success 'missing documents, stale revs and bad names read as sentences' '
	test_expect_code 3 ctl A get notes nope 2>err &&
	test_equal stderr "ferryctl: no document notes/nope" "$(cat err)" &&
	echo "{}" >e.json &&
	test_expect_code 4 ctl A put notes n1 e.json --if-rev 7 2>err &&
	test_grep "^ferryctl: notes/n1 is at rev 1, not the rev given" err &&
	test_grep ! "io.ferry" err &&
	test_expect_code 1 ctl A put notes "sp ace" e.json 2>err &&
	test_grep ! "io.ferry" err &&
	test_grep "^ferryctl: id: " err
'

test_expect_success 'connection limit: ferryctl says what ferryd said, not only closed' '
	for i in 1 2; do
		printf "%s\0" "{\"method\":\"io.ferry.Watch\",\"parameters\":{},\"more\":true}" |
		    "$VLSEND" "$(ferryd_sock A)" --timeout 60000 >hold.$i &
		eval "hold_$i=$!" && test_track $! &&
		test_wait_until 10 "grep -q ready hold.$i" || return 1
	done &&
	test_expect_code 1 ctl A status >out 2>err &&
	test_expect_code 1 timeout 10 "$FERRYCTL" --socket "$(ferryd_sock A)" \
	    watch >out 2>err.watch;
	rc=$?;
	kill $hold_1 $hold_2; test_wait_exit $hold_1; test_wait_exit $hold_2;
	test "$rc" = 0 &&
	cat err &&
	test_grep "ferryd refused the connection: it has 2 connections open already" err &&
	test_grep ! "closed the connection" err &&
	cat err.watch &&
	test_grep "ferryd refused the connection" err.watch &&
	test_wait_until 10 "ferryd_works A >/dev/null 2>&1"
'

test_expect_success 'ls: a header, aligned columns, pending marked' '
	echo "{\"t\":2}" | ctl A put notes a-much-longer-id - >/dev/null &&
	echo "{\"t\":3}" | ctl A put notes x - >/dev/null &&
	ctl A ls notes >out &&
	cat out &&
	test_grep "^ID  *REV  *VERSION  *STATE\$" out &&
	test "$(grep -c " pending\$" out)" = 3 &&
	test "$(awk "{ print index(\$0, \$NF) }" out | sort -u | wc -l)" = 1 &&
	test "$(awk "{ match(\$0, /^[^ ]+ +[^ ]+/); print RLENGTH }" out | sort -u | wc -l)" = 1
'

test_expect_success 'status: pending with its oldest change, never pending without one' '
	ctl A status >out &&
	cat out &&
	test_grep "^pending: *3" out &&
	test_grep ! "^oldest pending: *-" out &&
	ctl A --json status >out &&
	test_grep ! "\"oldest_pending_ms\":null" out
'

test_expect_success 'one device name: status and key --name agree, key is the key' '
	printf "[ferryd]\nmax_connections = 2\ndevice_name = Alice laptop\n" >cap.conf &&
	ferryd_stop A &&
	ferryd_start A --config "$TEST_DIR/cap.conf" &&
	test_equal "key --name" "Alice laptop" "$(ctl A key --name)" &&
	ctl A status >out &&
	test_grep "^device name: *Alice laptop\$" out &&
	test_grep "^device key: *$(ctl A key)\$" out &&
	test_expect_code 2 ctl A status --name
'

test_done
