#!/bin/sh
#
# bench/push.sh: the sync issue's push figure: N queued changes (1 KB
# docs, written while the remote is down) pushed to ferry-server on
# 127.0.0.1 until the outbox is empty.  Prints changes/s end to end (from
# the server's start to `sync --wait` returning) and the CPU seconds each
# process spent.
#
# usage: bench/push.sh BUILD-DIR [N]      (default N = 100000)
# Starts its own ferry-server (--open) and ferryd in a temp dir, on port
# 28790, and stops both by PID.
set -eu
build=${1:?usage: bench/push.sh BUILD-DIR [N]}
n=${2:-100000}
port=${BENCH_PUSH_PORT:-28790}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-push.XXXXXX")
dpid= spid=
cleanup() {
	[ -n "$dpid" ] && kill "$dpid" 2>/dev/null || :
	[ -n "$spid" ] && kill "$spid" 2>/dev/null || :
	[ -n "$dpid" ] && wait "$dpid" 2>/dev/null || :
	[ -n "$spid" ] && wait "$spid" 2>/dev/null || :
	rm -rf "$tmp"
}
trap cleanup EXIT INT TERM
wait_line() {
	i=0
	until grep -q "$2" "$1"; do
		i=$((i + 1)); [ $i -le 200 ] || { cat "$1"; exit 1; }
		sleep 0.05
	done
}
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
"$build/ferryd" --data-dir "$tmp/d" --socket "$tmp/s" \
    --remote "http://127.0.0.1:$port" </dev/null >"$tmp/d.log" 2>&1 &
dpid=$!
wait_line "$tmp/d.log" "ready: socket"
"$build/bench/bench_put" -s "$tmp/s" -m pipe -c 16 -d 32 -n "$n" -w 0 \
    -t 600 -N fill >/dev/null 2>&1
d0=$(cpu "$dpid")
t0=$(date +%s.%N)
"$build/ferry-server" --listen "127.0.0.1:$port" --data-dir "$tmp/srv" \
    --open </dev/null >"$tmp/s.log" 2>&1 &
spid=$!
wait_line "$tmp/s.log" "ready: listening"
"$build/ferryctl" --socket "$tmp/s" sync --wait >/dev/null
t1=$(date +%s.%N)
pending=$("$build/ferryctl" --socket "$tmp/s" --json status |
    sed -n 's/.*"pending":\([0-9]*\).*/\1/p')
secs=$(echo "$t1 - $t0" | bc -l)
echo "RESULT push_drain_rate $(echo "$n / $secs" | bc) changes/s n=$n" \
    "seconds=$secs pending_after=$pending" \
    "ferryd_cpu_s=$(echo "$(cpu "$dpid") - $d0" | bc -l)" \
    "server_cpu_s=$(cpu "$spid") cmd=bench/push.sh $build $n"
