#!/bin/sh
#
# bench/presence.sh: issue 12's figures.  Two ferryds (a, b) syncing with
# one ferry-server on 127.0.0.1; a's presence_ttl is TTL seconds.
#   1. An app on a sets its presence COUNT times (one at a time, 60 ms
#      apart so none is coalesced with the next); b's presence watcher
#      sees each: p50, p99 and max of set-to-seen (target p99 <= 100 ms).
#   2. An app on a killed with SIGKILL, then one that closes cleanly:
#      the time until b's watcher sees each go (target <= 1 s).
#   3. ferryd a itself killed with SIGKILL (nobody says goodbye): the time
#      until b's watcher sees a's app go (target <= TTL + 1 s).
# All from tests/tools/presencer (make check builds it).
#
# usage: bench/presence.sh BUILD-DIR [COUNT] [TTL]   (default 200, 3)
set -eu
build=${1:?usage: bench/presence.sh BUILD-DIR [COUNT] [TTL]}
n=${2:-200}
ttl=${3:-3}
port=${BENCH_PRESENCE_PORT:-}
presencer=$build/tests/tools/presencer
[ -x "$presencer" ] || { echo "$0: build $presencer (make check)" >&2; exit 2; }
. "$(dirname "$0")/sync-lib.sh"
cmd="cmd=bench/presence.sh $build $n $ttl"
now_ms() { date +%s%3N; }

start_server
printf '[ferryd]\npresence_ttl = %s\n' "$ttl" >"$tmp/a.conf"
"$build/ferryd" --config "$tmp/a.conf" --data-dir "$tmp/a" \
    --socket "$tmp/a.sock" --remote "http://127.0.0.1:$port" \
    </dev/null >"$tmp/a.log" 2>&1 &
apid=$!
pids="$pids $apid"
wait_line "$tmp/a.log" "ready: socket"
start_ferryd b

# 1 and 2.
"$presencer" --timeout 20 bench "$tmp/a.sock" "$tmp/b.sock" "$n" |
    sed "s|^|RESULT |; s|\$| $cmd|"

# 3.
"$presencer" --timeout 60 "$tmp/b.sock" watch >"$tmp/w.out" 2>&1 &
pids="$pids $!"
wait_line "$tmp/w.out" "^ready"
"$presencer" --until "$tmp/never" "$tmp/a.sock" set bench crash \
    '{"i":"device-crash"}' >"$tmp/app.out" 2>&1 &
pids="$pids $!"
wait_line "$tmp/w.out" '"device-crash"}.*"gone":false'
t0=$(now_ms)
kill -9 "$apid"
i=0
until grep -q '"device-crash"}.*"gone":true' "$tmp/w.out"; do
	i=$((i + 1)); [ $i -le $((ttl * 20 + 200)) ] || {
		echo "RESULT no departure seen within $((ttl + 10)) s $cmd"
		exit 1
	}
	sleep 0.05
done
t1=$(grep '"device-crash"}.*"gone":true' "$tmp/w.out" | head -n 1 | cut -d' ' -f1)
echo "RESULT departure after kill -9 of ferryd a (TTL $ttl s): $((t1 - t0)) ms $cmd"
