#!/bin/sh
#
# bench/push.sh: the sync issue's push figure: N queued changes (1 KB
# docs, written while the remote is down) pushed to ferry-server on
# 127.0.0.1 until the outbox is empty.  Prints changes/s end to end (from
# the server's start to `sync --wait` returning) and the CPU seconds each
# process spent.
#
# usage: bench/push.sh BUILD-DIR [N]      (default N = 100000)
# Starts its own ferry-server (--open) and ferryd in a temp dir, on a port
# tests/tools/freeport picks (see sync-lib.sh; BENCH_PUSH_PORT sets one),
# and stops both by PID.
set -eu
build=${1:?usage: bench/push.sh BUILD-DIR [N]}
n=${2:-100000}
port=${BENCH_PUSH_PORT:-}
. "$(dirname "$0")/sync-lib.sh"
start_ferryd d
"$build/bench/bench_put" -s "$tmp/d.sock" -m pipe -c 16 -d 32 -n "$n" -w 0 \
    -t 600 -N fill >/dev/null 2>&1
d0=$(cpu "$dpid")
t0=$(date +%s.%N)
start_server
"$build/ferryctl" --socket "$tmp/d.sock" sync --wait >/dev/null
t1=$(date +%s.%N)
pending=$("$build/ferryctl" --socket "$tmp/d.sock" --json status |
    sed -n 's/.*"pending":\([0-9]*\).*/\1/p')
secs=$(echo "$t1 - $t0" | bc -l)
echo "RESULT push_drain_rate $(echo "$n / $secs" | bc) changes/s n=$n" \
    "seconds=$secs pending_after=$pending" \
    "ferryd_cpu_s=$(echo "$(cpu "$dpid") - $d0" | bc -l)" \
    "server_cpu_s=$(cpu "$spid") cmd=bench/push.sh $build $n"
