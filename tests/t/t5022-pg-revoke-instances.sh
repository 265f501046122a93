#!/bin/sh
# Revocation across ferry-server instances on one PostgreSQL database
# (issue 13).  Bug guarded: a key revoked with `ferry-server --db URL
# revoke` was still served by the other running instances until each was
# sent SIGHUP.  Promise: every instance refuses it at once (a
# notification, bounded here at 10 s for a loaded machine, while the
# other key keeps working), each one rejects its records pushed by
# another key, and the revocation holds for an instance started later.

FERRY_TEST_DB=postgresql
. "$(dirname "$0")/server-lib.sh"

test_expect_success 'setup: instances A and B on one database, alice and bob allowed there' '
	pg_createdb shared && URL=$(pg_url shared) &&
	A=$(key_of alice) && B=$(key_of bob) &&
	"$FERRY_SERVER" --db "$URL" allow "$A" alice >/dev/null &&
	"$FERRY_SERVER" --db "$URL" allow "$B" bob >/dev/null &&
	server_start A --db "$URL" && server_start B --db "$URL" &&
	req A alice GET /v1/info >out && status_is 200 out &&
	req B alice GET /v1/info >out && status_is 200 out
'

test_expect_success 'revoked through the database: both instances refuse it at once' '
	"$FERRY_SERVER" --db "$URL" revoke "$A" --reason "left the team" \
	    >out &&
	test_grep "by every server on this database" out &&
	test_wait_until 10 "req A alice GET /v1/info >a && \
	    head -n 1 a | grep -q 401" &&
	test_wait_until 10 "req B alice GET /v1/info >b && \
	    head -n 1 b | grep -q 401" &&
	test_grep "revoked on .* (left the team)" a &&
	test_grep "\"revoked\":{\"reason\":\"left the team\"" b &&
	req A bob GET /v1/info >out && status_is 200 out &&
	req B bob GET /v1/info >out && status_is 200 out
'

test_expect_success 'each instance rejects its records pushed by another key' '
	for s in A B; do
		push $s bob "$(item alice put notes "n$s" 0 7 "{}")" >out &&
		status_is 200 out &&
		test_grep "\"error\":\"revoked: .*(left the team)\",\"status\":\"rejected\"" out ||
		return 1
	done
'

test_expect_success 'an instance started later refuses it from its first request' '
	server_start C --db "$URL" &&
	req C alice GET /v1/info >out && status_is 401 out &&
	test_grep "left the team" out &&
	"$FERRY_SERVER" --db "$URL" keys >keys.txt &&
	test_grep "^$A  alice .*(left the team)\$" keys.txt
'

test_expect_success 'allow through the database refuses it too' '
	test_expect_code 1 "$FERRY_SERVER" --db "$URL" allow "$A" alice \
	    2>err &&
	test_grep "it stays refused" err
'

test_done
