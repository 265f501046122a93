#!/bin/sh
# t5023-pg-convergence: four devices on two ferry-server instances sharing
# one PostgreSQL database converge (issue 10, "Convergence").  Guards the
# whole path across instances: pushes that conflict on one instance with
# what another applied, merges, pulls woken by another instance's NOTIFY.
# Promise: after 10,000 random writes (seeded; the seed is printed, rerun
# with FERRY_TEST_SEED=S) from 4 ferryd, d1 and d2 on instance A, d3 and
# d4 on B, racing their background sync, with same-document clashes on
# disjoint fields (each device its own keys: merged cleanly) and on the
# same field ("s": a real conflict), and `sync --wait` everywhere until
# quiet (bounded): every replica holds the same documents with the same
# versions and bodies as the server's log; every History entry of every
# document verifies on every device (its signature checked over the
# stored bytes); the server's seq runs 1..N without a gap; no change id
# is stored twice.  Real conflicts are resolved by this test with Resolve
# "theirs" (the server's side at the conflicting paths, everything else
# of both sides kept), pass after pass, so the replicas can converge: a
# conflict is a visible, held state by design, never resolved by the
# daemon on its own.  Also guards a bug it found: two instances' push
# transactions locked the same documents in different orders and
# PostgreSQL broke the deadlock by aborting one (503 to its device, and
# `sync --wait` failing Offline); batches now lock their documents in
# one order first (srv_db_lock_docs), and no push may be refused here.
#
# FERRY_CONVERGE_WRITES sets the number of writes (default 10000).

FERRY_TEST_DB=postgresql
. "$(dirname "$0")/sync-lib.sh"

writes=${FERRY_CONVERGE_WRITES:-10000}
seed=${FERRY_TEST_SEED:-$(date +%s)}
ndocs=40
rounds=10
devs="d1 d2 d3 d4"
echo "# seed $seed, $writes writes, $ndocs documents, $rounds rounds" \
    "(rerun: FERRY_TEST_SEED=$seed)"

# gen: the calls of every round, per device, in w.ROUND.DEV (NUL after
# each call); a quarter of the writes set the shared field "s".
gen() {
	awk -v seed="$seed" -v n="$writes" -v nd="$ndocs" -v r="$rounds" '
	BEGIN {
		srand(seed)
		for (i = 0; i < n; i++) {
			d = 1 + int(rand() * 4)
			doc = sprintf("c%02d", int(rand() * nd))
			if (rand() < 0.25)
				f = "s"
			else
				f = sprintf("d%d_%d", d, int(rand() * 3))
			out = sprintf("w.%d.d%d", int(i * r / n), d)
			printf "{\"method\":\"io.ferry.Patch\",\"parameters\":" \
			    "{\"collection\":\"conv\",\"id\":\"%s\"," \
			    "\"patch\":{\"%s\":%d}}}\n", doc, f,
			    int(rand() * 1000000) > out
			calls[out]++
		}
		for (o in calls)
			print o, calls[o]
	}' >counts &&
	for _f in w.*; do
		tr "\n" "\000" <"$_f" >"$_f.nul" || return 1
	done
}

# round R: every device sends its calls of round R at once, pipelined on
# one connection each; every call must be answered with a doc.
round() {
	_pids=""
	for _d in $devs; do
		_n=$(awk -v f="w.$1.$_d" '$1 == f { print $2 }' counts)
		[ -n "$_n" ] || continue
		test_bg "$VLSEND" "$(ferryd_sock "$_d")" -n "$_n" \
		    --timeout 120000 <"w.$1.$_d.nul" >"r.$1.$_d" 2>&1
		_pids="$_pids $test_bg_pid:$_d:$_n"
	done
	for _p in $_pids; do
		_pid=${_p%%:*} _rest=${_p#*:}
		_d=${_rest%%:*} _n=${_rest#*:}
		test_wait_exit "$_pid" 150 || return 1
		_ok=$(grep -c '^{"parameters":{"doc":{' "r.$1.$_d")
		if [ "$_ok" != "$_n" ] || [ "$(tail -n 1 "r.$1.$_d")" != DONE ]
		then
			echo "round $1, $_d: $_ok of $_n writes answered with a doc:"
			grep -v '^{"parameters":{"doc":{' "r.$1.$_d" | head -n 5
			return 1
		fi
	done
}

# resolve_all: every open conflict on every device, resolved "theirs";
# the number resolved in $resolved.
resolve_all() {
	resolved=0
	for _d in $devs; do
		for _c in $(conflict_ids "$_d"); do
			fcall "$_d" Resolve "{\"conflict_id\":$(conflict_json "$_c"),\"strategy\":\"theirs\"}" \
			    >res.out || return 1
			if ! grep -q '^{"parameters":{"doc":{' res.out; then
				# Resolved meanwhile by a pull: gone is fine.
				test_grep "io.ferry.NotFound" res.out || return 1
			fi
			resolved=$((resolved + 1))
		done
	done
}

# canon: "C/ID version body" lines with each body's members in sorted
# order.  A replica keeps a patched body's members in the order they came
# (a key a patch adds goes last); the server's text is the signed
# record's, keys sorted: the same object.  Bodies here are flat objects
# of integers, so members split at commas.
canon() {
	awk '{
		b = $3; sub(/^\{/, "", b); sub(/\}$/, "", b)
		n = split(b, m, ",")
		for (i = 2; i <= n; i++) {
			v = m[i]
			for (j = i - 1; j >= 1 && m[j] > v; j--)
				m[j + 1] = m[j]
			m[j + 1] = v
		}
		out = ""
		for (i = 1; i <= n; i++)
			out = out (i > 1 ? "," : "") m[i]
		print $1, $2, "{" out "}"
	}'
}

# same_everywhere: every replica's documents (version and body) equal
# the server's, as read from instance A's log.
same_everywhere() {
	server_heads A conv >heads.raw || return 1
	canon <heads.raw >heads.server || return 1
	_same=0
	for _d in $devs; do
		replica_heads "$_d" conv >heads.raw || return 1
		canon <heads.raw >"heads.$_d" || return 1
		cmp -s heads.server "heads.$_d" || _same=1
	done
	return $_same
}

test_expect_success 'two instances on one database, two devices on each' '
	pg_createdb shared &&
	server_start A --open --db "$(pg_url shared)" &&
	server_start B --open --db "$(pg_url shared)" &&
	syncd_start d1 A && syncd_start d2 A &&
	syncd_start d3 B && syncd_start d4 B &&
	i=0 &&
	while [ $i -lt $ndocs ]; do
		put_ok d1 conv "$(printf c%02d $i)" "{\"s\":0}" || return 1
		i=$((i + 1))
	done &&
	sync_all d1 d2 d3 d4 &&
	replica_heads d4 conv >h4 &&
	test_equal "documents on d4" $ndocs "$(wc -l <h4)"
'

test_expect_success "$writes random writes, racing the sync" '
	gen &&
	test_equal "writes generated" "$writes" \
	    "$(awk "{ s += \$2 } END { print s }" counts)" &&
	r=0 &&
	while [ $r -lt $rounds ]; do
		round $r || return 1
		r=$((r + 1))
	done
'

test_expect_success 'sync --wait everywhere, conflicts resolved, until quiet' '
	pass=0 && total=0 &&
	while :; do
		pass=$((pass + 1))
		if [ $pass -gt 30 ]; then
			echo "not quiet after 30 passes"
			for d in $devs; do
				status_of $d; echo
				diff heads.server heads.$d | head -n 10
			done
			return 1
		fi
		for d in $devs; do
			ctl_bounded 120 $d sync --wait >/dev/null || return 1
		done
		resolve_all || return 1
		total=$((total + resolved))
		[ $resolved -eq 0 ] || continue
		for d in $devs; do
			ctl_bounded 120 $d sync --wait >/dev/null || return 1
		done
		same_everywhere && break
	done &&
	echo "quiet after $pass passes, $total conflicts resolved" >quiet.txt
'

# What the run went through: conflicts answered by the servers (the
# disjoint-field ones merged by the devices, the same-field ones held),
# and how long it took to be quiet.
[ -f quiet.txt ] && echo "# $(cat quiet.txt);" \
    "$(cat "$(server_log A)" "$(server_log B)" |
    sed -n 's/.*changes: [0-9]* applied, [0-9]* duplicate, \([0-9]*\) conflict.*/\1/p' |
    awk '{ s += $1 } END { print s + 0 }') push conflicts answered"

test_expect_success 'every replica identical to the server, no conflict left' '
	test_equal "documents" $ndocs "$(wc -l <heads.server)" &&
	for d in $devs; do
		test_cmp heads.server heads.$d || return 1
		test_equal "conflicts on $d" 0 "$(status_int $d conflicts)" ||
		    return 1
		test_equal "pending on $d" 0 "$(status_int $d pending)" ||
		    return 1
	done &&
	test_equal "rejected on d1" 0 "$(status_int d1 rejected)"
'

test_expect_success 'no push was refused: no deadlock between instances' '
	test_grep ! "deadlock detected" "$(server_log A)" "$(server_log B)" &&
	for d in $devs; do
		test_grep ! "answered 503" "$(ferryd_log $d)" || return 1
	done
'

test_expect_success 'the log: seq 1..N without a gap, no change id twice' '
	pg_sql shared "SELECT count(*), count(DISTINCT seq), min(seq), max(seq),
	    count(DISTINCT (device, dseq)), (SELECT seq FROM head),
	    count(*) FILTER (WHERE seq IS NULL) FROM changes" >log.sum &&
	IFS="|" read -r n nseq lo hi nid head unseq <log.sum &&
	echo "# $n changes in the log" &&
	test_equal "distinct seqs" "$n" "$nseq" &&
	test_equal "lowest seq" 1 "$lo" &&
	test_equal "highest seq" "$n" "$hi" &&
	test_equal "distinct change ids" "$n" "$nid" &&
	test_equal "head" "$n" "$head" &&
	test_equal "changes without a seq" 0 "$unseq" &&
	server_changes B >feed.b &&
	test_equal "changes in the feed of B" "$n" "$(wc -l <feed.b)" &&
	test_equal "change ids in the feed" "$n" \
	    "$(change_ids feed.b | sort -u | wc -l)"
'

# history_check DEV DOC VERSION: History of conv/DOC on DEV lists
# versions 1..VERSION in order, each verified (pages followed, bounded;
# the replica's own change log, "local", is not part of the audit trail).
history_check() {
	_after="" _v=0 _pages=0
	while [ $_pages -lt 100 ]; do
		if [ -n "$_after" ]; then
			_p="{\"collection\":\"conv\",\"id\":\"$2\",\"after\":$_after}"
		else
			_p="{\"collection\":\"conv\",\"id\":\"$2\"}"
		fi
		fcall "$1" History "$_p" >h.out || return 1
		test_grep '^{"parameters":{"entries":\[' h.out || return 1
		sed 's/,"local":.*$//; s/},{"version"/}\n{"version"/g' h.out |
		    grep '"version"' >h.entries
		if grep -v '"verified":true' h.entries | grep -q .; then
			echo "$1: conv/$2: an entry did not verify:"
			grep -v '"verified":true' h.entries
			return 1
		fi
		for _e in $(sed -n 's/^.*{"version":\([0-9]*\),.*$/\1/p' h.entries); do
			_v=$((_v + 1))
			test_equal "conv/$2 on $1: entry $_v" "$_v" "$_e" ||
			    return 1
		done
		_after=$(sed 's/,"local":.*$//' h.out | grep -o '"next":[0-9]*' |
		    cut -d: -f2)
		[ -n "$_after" ] || break
		_pages=$((_pages + 1))
	done
	test_equal "verified entries of conv/$2 on $1" "$3" "$_v"
}

test_expect_success 'every History entry verifies, on every device' '
	while read -r key version body; do
		doc=${key#conv/}
		for d in $devs; do
			history_check $d "$doc" "$version" || return 1
		done
	done <heads.server
'

test_done
