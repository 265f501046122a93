#!/bin/sh
#
# bench/idle.sh: how often an idle, synced ferryd wakes up.  Starts
# ferry-server (--open) and a ferryd syncing with it, writes and syncs one
# document, then traces the daemon with strace for SECONDS (default 30) and
# counts how many times its event loop returned from epoll_wait, and why:
# a wakeup with no ready descriptor is a timer.  The promise: nothing but
# the one long-poll (answered every 30 s by the server when nothing
# happens).
#
# usage: bench/idle.sh BUILD-DIR [SECONDS]   (needs strace)
set -eu
build=${1:?usage: bench/idle.sh BUILD-DIR [SECONDS]}
secs=${2:-30}
port=${BENCH_IDLE_PORT:-}
. "$(dirname "$0")/sync-lib.sh"
start_server
start_ferryd d
echo '{"idle":true}' | "$build/ferryctl" --socket "$tmp/d.sock" put bench idle - \
    >/dev/null
"$build/ferryctl" --socket "$tmp/d.sock" sync --wait >/dev/null
timeout "$secs" strace -f -tt -e trace=epoll_wait -p "$dpid" \
    2>"$tmp/trace" || :
# A wait that blocked (timeout > 0) and came back with nothing is a timer.
wakeups=$(grep -c 'epoll_wait(.*) = [1-9]' "$tmp/trace" || :)
timers=$(grep 'epoll_wait(.*\[\], [0-9]*, [1-9][0-9]*) = 0' "$tmp/trace" |
    grep -c . || :)
echo "RESULT idle_wakeups $wakeups in ${secs}s timer_wakeups=$timers" \
    "cmd=bench/idle.sh $build $secs"
grep 'epoll_wait' "$tmp/trace" | sed 's/^/  /'
