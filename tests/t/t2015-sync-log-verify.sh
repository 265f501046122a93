#!/bin/sh
# Guards issue 11's last item: `ferryctl log` offline showed pulled
# changes as bare "rev N remote" lines that nothing had checked; only this
# device's own applied changes were verified.  A pulled change now keeps
# its change id, version, signature and the record's ts (and the record
# itself when the remote sent it, a record not in ferryd's layout), each
# past revision keeps its body when a write replaces it, and History
# verifies every signed entry of the local log when asked (never at pull
# time): with the server gone, B's log lists A's changes and its own, each
# verified, within a few seconds; a body or signature altered in B's
# replica shows as NOT VERIFIED with why, never as verified; a record in
# another layout verifies too; with the server back, the remote's entries
# and the local ones carry the same change ids, and a local copy that
# fails is still reported.

. "$(dirname "$0")/sync-lib.sh"

command -v sqlite3 >/dev/null 2>&1 || skip_all "sqlite3 (the CLI) is missing"

# replica_sql NAME SQL: SQL on NAME's replica while ferryd runs.
replica_sql() {
	sqlite3 -cmd ".timeout 10000" "$(ferryd_datadir "$1")/replica.db" "$2"
}

# local_of FILE: History's "local" array in FILE, one entry a line.
local_of() {
	sed -n 's/.*"local":\[\(.*\)\].*/\1/p' "$1" | sed 's/},{/}\n{/g'
}

test_expect_success 'setup: A writes n1 twice, B pulls both and writes on top' '
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	KA=$(ctl A key) && KB=$(ctl B key) &&
	put_ok A notes n1 "{\"v\":1}" &&
	sync_wait A &&
	put_ok A notes n1 "{\"v\":2,\"w\":[1,2]}" &&
	sync_all A B &&
	put_ok B notes n1 "{\"v\":3}" &&
	sync_all B &&
	replica_sql B "SELECT rev, dseq, version, length(device), length(sig) FROM changes WHERE id = '\''n1'\'' ORDER BY seq" >rows &&
	cat rows &&
	test_grep "^1|1|1|32|64\$" rows &&
	test_grep "^2|2|2|32|64\$" rows &&
	test_grep "^3||||\$" rows
'

test_expect_success 'setup: a record in another layout than ferryd writes (the server sends it)' '
	KP=$(key_of probe) &&
	rec="{\"v\":1, \"base\":0,\"body\":{\"b\":1,\"a\":0.5},\"collection\":\"notes\",\"device\":\"$KP\",\"id\":\"n2\",\"op\":\"put\",\"seq\":1,\"ts\":5}" &&
	push s probe "$("$SRVCLIENT" --key-dir "$TEST_DIR/keys/probe" sign-record "$rec")" >out &&
	test_grep "\"status\":\"applied\"" out &&
	sync_wait B &&
	replica_sql B "SELECT count(*) FROM changes WHERE id = '\''n2'\'' AND record IS NOT NULL" >rows &&
	test_grep "^1\$" rows
'

test_expect_success 'server gone: B logs A.s changes and its own, each verified, at once' '
	server_kill9 s &&
	timed_log B notes n1 &&
	test "$took" -le 10 &&
	test_grep "cannot reach the remote" err &&
	test_grep "rev 1 *remote *v1  put  verified" log.out &&
	test_grep "rev 2 *remote *v2  put  verified" log.out &&
	test_grep "rev 3 *local *v3  put  verified" log.out &&
	test_grep ! "NOT VERIFIED" log.out &&
	test_grep ! "did not verify" err
'

test_expect_success 'History over varlink: pulled entries carry their change ids, verified' '
	fcall B History "{\"collection\":\"notes\",\"id\":\"n1\"}" >h.out &&
	local_of h.out >local &&
	cat local &&
	test_grep "\"rev\":1,\"origin\":\"remote\",.*\"version\":1,\"change\":\"$KA:1\",\"device\":\"$KA\",\"op\":\"put\",\"verified\":true}" local &&
	test_grep "\"rev\":2,\"origin\":\"remote\",.*\"change\":\"$KA:2\",.*\"verified\":true}" local &&
	test_grep "\"rev\":3,\"origin\":\"local\",.*\"change\":\"$KB:1\",.*\"verified\":true}" local
'

test_expect_success 'a record in another layout verifies offline' '
	timed_log B notes n2 &&
	test_grep "rev 1 *remote *v1  put  verified" log.out
'

test_expect_success 'a past body altered in the replica: NOT VERIFIED, the rest verified' '
	replica_sql B "UPDATE changes SET body = '\''{\"v\":9}'\'' WHERE id = '\''n1'\'' AND rev = 1" &&
	timed_log B notes n1 &&
	test_grep "rev 1 *remote *v1  -  NOT VERIFIED  (the signature does not verify)" log.out &&
	test_grep "rev 2 *remote *v2  put  verified" log.out &&
	test_grep "1 change of notes/n1 kept in this replica did not verify" err &&
	replica_sql B "UPDATE changes SET body = '\''{\"v\":1}'\'' WHERE id = '\''n1'\'' AND rev = 1" &&
	timed_log B notes n1 &&
	test_grep ! "NOT VERIFIED" log.out
'

test_expect_success 'a signature altered in the replica: NOT VERIFIED' '
	replica_sql B "UPDATE changes SET sig = (SELECT sig FROM changes c WHERE c.id = '\''n1'\'' AND c.rev = 1) WHERE id = '\''n1'\'' AND rev = 2" &&
	timed_log B notes n1 &&
	test_grep "rev 1 *remote *v1  put  verified" log.out &&
	test_grep "rev 2 *remote *v2  -  NOT VERIFIED  (the signature does not verify)" log.out
'

test_expect_success 'the current body altered beside a record sent whole: NOT VERIFIED' '
	replica_sql B "UPDATE docs SET body = '\''{\"a\":0.5,\"b\":2}'\'' WHERE id = '\''n2'\''" &&
	timed_log B notes n2 &&
	test_grep "rev 1 *remote *v1  -  NOT VERIFIED  (the record is not this change)" log.out
'

test_expect_success 'a change id naming no key: not verifiable, said so' '
	keyhex=$(replica_sql B "SELECT hex(device) FROM changes WHERE id = '\''n1'\'' AND rev = 1") &&
	replica_sql B "UPDATE changes SET device = NULL WHERE id = '\''n1'\'' AND rev = 1" &&
	timed_log B notes n1 &&
	test_grep "rev 1 *remote *(not verifiable: unknown key)" log.out
'

test_expect_success 'a pulled change with no signature kept: not verifiable, said so' '
	replica_sql B "UPDATE changes SET sig = NULL WHERE id = '\''n2'\'' AND rev = 1" &&
	timed_log B notes n2 &&
	test_grep "rev 1 *remote *(not verifiable: no signature kept)" log.out
'

test_expect_success 'server back: the same change ids both ways, the failing copy still reported' '
	server_start s --open &&
	replica_sql B "UPDATE changes SET device = X'\''$keyhex'\'' WHERE id = '\''n1'\'' AND rev = 1" &&
	fcall B History "{\"collection\":\"notes\",\"id\":\"n1\"}" >h.out &&
	test_grep ! "remote_error" h.out &&
	sed -n "s/.*\"entries\":\[\(.*\)\],\"local\".*/\1/p" h.out |
	    grep -o "\"change\":\"[^\"]*\"" >remote.ids &&
	local_of h.out | grep -o "\"change\":\"[^\"]*\"" >local.ids &&
	test_cmp remote.ids local.ids &&
	timed_log B notes n1 &&
	test_grep "this replica.s copy of change $KA:2 (rev 2) does not verify: the signature does not verify" err &&
	test_grep "1 change of notes/n1 kept in this replica did not verify" err
'

test_done
