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
# usage: bench/idle.sh BUILD-DIR [SECONDS]   (needs strace; port 28797)
set -eu
build=${1:?usage: bench/idle.sh BUILD-DIR [SECONDS]}
secs=${2:-30}
port=${BENCH_IDLE_PORT:-28797}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-idle.XXXXXX")
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
"$build/ferry-server" --listen "127.0.0.1:$port" --data-dir "$tmp/srv" \
    --open </dev/null >"$tmp/s.log" 2>&1 &
spid=$!
wait_line "$tmp/s.log" "ready: listening"
"$build/ferryd" --data-dir "$tmp/d" --socket "$tmp/s" \
    --remote "http://127.0.0.1:$port" </dev/null >"$tmp/d.log" 2>&1 &
dpid=$!
wait_line "$tmp/d.log" "ready: socket"
echo '{"idle":true}' | "$build/ferryctl" --socket "$tmp/s" put bench idle - \
    >/dev/null
"$build/ferryctl" --socket "$tmp/s" sync --wait >/dev/null
timeout "$secs" strace -f -tt -e trace=epoll_wait -p "$dpid" \
    2>"$tmp/trace" || :
# A wait that blocked (timeout > 0) and came back with nothing is a timer.
wakeups=$(grep -c 'epoll_wait(.*) = [1-9]' "$tmp/trace" || :)
timers=$(grep 'epoll_wait(.*\[\], [0-9]*, [1-9][0-9]*) = 0' "$tmp/trace" |
    grep -c . || :)
echo "RESULT idle_wakeups $wakeups in ${secs}s timer_wakeups=$timers" \
    "cmd=bench/idle.sh $build $secs"
grep 'epoll_wait' "$tmp/trace" | sed 's/^/  /'
