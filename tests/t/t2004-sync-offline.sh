#!/bin/sh
# Guards "apps never wait for the network": with the remote down (never
# started, gone later, or hung), ferryd's Status says offline and names the
# remote in last_error, local writes and reads go on at local speed,
# `sync --wait` answers io.ferry.Offline (ferryctl exit 1) promptly instead
# of hanging, and everything written meanwhile drains once the server is
# back (at once on `sync --wait`, or by the retry timer alone): pending 0,
# the server holding every document.  A document created and deleted
# before it ever reached the server leaves nothing parked.

. "$(dirname "$0")/sync-lib.sh"

# state_is NAME STATE: Status of NAME says STATE.
state_is() {
	status_of "$1" | grep -q "\"state\":\"$2\""
}

# wait_offline NAME: until Status of NAME says offline (bounded).
wait_offline() {
	test_wait_until 10 "state_is $1 offline"
}

# timed COMMAND...: run it; its time in ms in $elapsed (and printed).
elapsed=0
timed() {
	_t0=$(now_ms)
	"$@"
	_st=$?
	elapsed=$(( $(now_ms) - _t0 ))
	echo "took $elapsed ms: $*"
	return $_st
}

test_expect_success 'setup: ferryd A whose server has not started' '
	syncd_start A s &&
	wait_offline A
'

test_expect_success 'Status says offline, with an error naming the remote' '
	status_of A >st &&
	test_grep "\"state\":\"offline\"" st &&
	test_grep "\"remote\":\"$(server_url s)\"" st &&
	test_grep "\"last_error\":\"[^\"]*127.0.0.1:$(server_port s)" st &&
	test_grep "\"last_sync_ms\":null" st
'

test_expect_success 'local writes go on at local speed while offline' '
	timed "$VLSEND" "$(ferryd_sock A)" --pipeline 2000 --collection off \
	    --prefix a --timeout 20000 >burst.out &&
	test_grep "^ok 2000 replies in order$" burst.out &&
	test "$elapsed" -lt 10000 &&
	timed put_ok A notes one "{\"x\":1}" &&
	test "$elapsed" -lt 2000 &&
	get A off a999 >doc &&
	test_equal body "{\"n\":999}" "$(body_of doc)" &&
	test_grep "\"pending\":true" doc &&
	status_of A >st &&
	test_grep "\"state\":\"offline\"" st &&
	test_equal pending 1001 "$(json_int pending st)" &&
	test -n "$(json_int oldest_pending_ms st)"
'

test_expect_success 'sync --wait answers Offline promptly (ferryctl exits 1)' '
	timed test_expect_code 1 ctl_bounded 20 A sync --wait >ctl.out 2>&1 &&
	cat ctl.out &&
	test "$elapsed" -lt 5000 &&
	timed vlcall A "{\"method\":\"io.ferry.Sync\",\"parameters\":{\"wait\":true}}" \
	    --timeout 20000 >sync.out &&
	test "$elapsed" -lt 5000 &&
	test_grep "^{\"error\":\"io.ferry.Offline\"" sync.out &&
	ctl_bounded 20 A sync >nowait.out &&
	ferryd_works A
'

test_expect_success 'the server starts: everything drains' '
	server_start s --open &&
	sync_wait A 60 &&
	sync_settle A &&
	status_of A >st &&
	test_grep "\"state\":\"idle\"" st &&
	test_equal pending 0 "$(json_int pending st)" &&
	test_grep "\"last_error\":null" st &&
	test -n "$(json_int last_sync_ms st)" &&
	replica_heads A off >a.heads &&
	test_equal "documents on A" 1000 "$(grep -c . a.heads)" &&
	server_heads s off >s.heads &&
	test_cmp a.heads s.heads &&
	server_doc s notes one >srv.doc &&
	test_grep "^{\"body\":{\"x\":1},\"deleted\":false,\"version\":1}\$" srv.doc
'

test_expect_success 'the server goes away later: offline again, writes go on' '
	sync_wait A &&
	server_stop s &&
	wait_offline A &&
	status_of A >st &&
	test_grep "\"last_error\":\"[^\"]*127.0.0.1:$(server_port s)" st &&
	test -n "$(json_int last_sync_ms st)" &&
	i=0 &&
	while [ $i -lt 50 ]; do
		put_ok A later "l$i" "{\"i\":$i}" || return 1
		i=$((i + 1))
	done &&
	timed test_expect_code 1 ctl_bounded 20 A sync --wait &&
	test "$elapsed" -lt 5000 &&
	test_equal pending 50 "$(status_int A pending)"
'

test_expect_success 'it comes back: the later writes drain too' '
	server_start s --open &&
	sync_wait A 60 &&
	test_equal pending 0 "$(status_int A pending)" &&
	replica_heads A later >a.heads &&
	server_heads s later >s.heads &&
	test_equal "documents" 50 "$(grep -c . s.heads)" &&
	test_cmp a.heads s.heads
'

# A server that accepts connections but never answers (stopped with
# SIGSTOP): requests hang until their timeouts; the replica must not.
test_expect_success 'a hung server: local writes and Status still answer at once' '
	kill -STOP "$(server_pid s)" &&
	timed "$VLSEND" "$(ferryd_sock A)" --pipeline 400 --collection hung \
	    --prefix h --timeout 20000 >burst.out &&
	burst_ms=$elapsed &&
	timed status_of A >st &&
	status_ms=$elapsed &&
	timed ctl_bounded 10 A sync >nowait.out &&
	kill -CONT "$(server_pid s)" &&
	test_grep "^ok 400 replies in order$" burst.out &&
	test "$burst_ms" -lt 10000 &&
	test_grep "\"pending\":200" st &&
	test "$status_ms" -lt 2000 &&
	test "$elapsed" -lt 2000
'

test_expect_success 'and once it answers again, those writes drain' '
	server_running s &&
	sync_wait A 60 &&
	test_equal pending 0 "$(status_int A pending)" &&
	replica_heads A hung >a.heads &&
	server_heads s hung >s.heads &&
	test_equal "documents" 200 "$(grep -c . s.heads)" &&
	test_cmp a.heads s.heads
'

# Without any Sync call, the retry timer brings the daemon back (with the
# backoff capped at 1 s by its configuration).
test_expect_success 'after an outage the daemon reconnects and drains by itself' '
	printf "[remote]\nbackoff_max = 1\n" >r.conf &&
	syncd_start R s --config "$TEST_DIR/r.conf" &&
	sync_wait R &&
	server_stop s &&
	wait_offline R &&
	i=0 &&
	while [ $i -lt 20 ]; do
		put_ok R auto "r$i" "{\"i\":$i}" || return 1
		i=$((i + 1))
	done &&
	test_equal pending 20 "$(status_int R pending)" &&
	server_start s --open &&
	test_wait_until 15 "test \"\$(status_int R pending)\" = 0" &&
	test_wait_until 15 "state_is R idle" &&
	server_heads s auto >s.heads &&
	test_equal "documents on the server" 20 "$(grep -c . s.heads)" &&
	ferryd_stop R
'

# Created and deleted before the first push: there is nothing to send (the
# server never saw it), so nothing may be parked as rejected or left
# pending.
test_expect_success 'a document created and deleted while offline: nothing parked' '
	server_stop s &&
	wait_offline A &&
	put_ok A notes ephemeral "{\"gone\":true}" &&
	del A notes ephemeral >del.out &&
	test_grep "\"deleted\":true" del.out &&
	server_start s --open &&
	sync_wait A 60 &&
	sync_settle A &&
	status_of A >st &&
	test_equal rejected 0 "$(json_int rejected st)" &&
	test_equal pending 0 "$(json_int pending st)" &&
	test_equal conflicts 0 "$(json_int conflicts st)" &&
	server_doc s notes ephemeral >srv.doc &&
	{ status_is 404 srv.doc || test_grep "\"deleted\":true" srv.doc; }
'

test_expect_success 'everything stops cleanly' '
	ferryd_stop A &&
	server_stop s
'

test_done
