#!/bin/sh
# Key rotation across ferry-server instances on one PostgreSQL database
# (issue 13, docs/protocol.md "Rotating a key").  Bug guarded: a rotation
# taken by one instance must not leave the others serving the old key, or
# refusing the new one, until a restart.  Promise: once instance A took
# alice's rotation, instance B refuses the old key (401, retired) and
# serves the new one at once (the keys' notification, bounded here at 10 s
# for a loaded machine), answers a retry of the statement as A did, takes
# alice's old records from the new key up to its last seq; an instance
# started later knows it from its first request.

FERRY_TEST_DB=postgresql
. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup: instances A and B on one database, alice allowed' '
	pg_createdb shared && URL=$(pg_url shared) &&
	K=$(key_of alice) && K2=$(key_of alice2) &&
	"$FERRY_SERVER" --db "$URL" allow "$K" "Alice laptop" >/dev/null &&
	server_start A --db "$URL" && server_start B --db "$URL" &&
	item alice put notes n1 0 1 "{\"t\":1}" >rec1 &&
	item alice put notes n2 0 2 "{\"t\":2}" >rec2 &&
	push A alice "$(cat rec1)" >out &&
	test_grep "\"status\":\"applied\",\"version\":1" out &&
	req B alice GET /v1/info >out && status_is 200 out
'

test_expect_success 'rotated on A: B refuses the old key and serves the new one' '
	"$SRVCLIENT" --key-dir "$TEST_DIR/keys/alice" rotation \
	    "$TEST_DIR/keys/alice2" 2 >rot.json &&
	req A alice POST /v1/keys/rotate rot.json >out && status_is 200 out &&
	tail -n 1 out >a.answer &&
	test_wait_until 10 "req B alice GET /v1/info >b && \
	    head -n 1 b | grep -q 401" &&
	test_grep "key $K was retired on .* in favour of $K2" b &&
	test_wait_until 10 "req B alice2 GET /v1/info >b && \
	    head -n 1 b | grep -q 200"
'

test_expect_success 'B answers a retry of the statement as A did' '
	req B alice POST /v1/keys/rotate rot.json >out && status_is 200 out &&
	tail -n 1 out >b.answer && test_cmp a.answer b.answer
'

test_expect_success 'B takes the old key.s records from the new key, up to its seq' '
	push B alice2 "$(cat rec1)" "$(cat rec2)" \
	    "$(item alice put notes n3 0 3 "{}")" >out &&
	status_is 200 out &&
	test_grep "^{\"results\":\[{\"status\":\"duplicate\",\"version\":1},{\"status\":\"applied\",\"version\":1},{\"error\":\"retired: [^\"]*\",\"status\":\"rejected\"}\]}\$" out
'

test_expect_success 'an instance started later knows the rotation from its first request' '
	server_start C --db "$URL" &&
	req C alice GET /v1/info >out && status_is 401 out &&
	test_grep "in favour of $K2" out &&
	req C alice2 GET /v1/docs/notes/n2/history >out && status_is 200 out &&
	tail -n +2 out >hist.json &&
	"$SRVCLIENT" verify-history hist.json >v && test_grep "^verified 1\$" v &&
	test_grep "\"device_name\":\"Alice laptop\"" hist.json
'

test_done
