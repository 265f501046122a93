#!/bin/sh
#
# bench/remote.sh: the sync issue's live figure: device A's acknowledged
# Put to device B's Watch event through ferry-server on 127.0.0.1 (A
# pushes, the server commits and answers B's waiting long-poll, B applies
# and notifies).  Runs bench_watch with the writer on A and the watcher on
# B (-S), one Put at a time.
#
# usage: bench/remote.sh BUILD-DIR [COUNT]     (default 2000; port 28799)
set -eu
build=${1:?usage: bench/remote.sh BUILD-DIR [COUNT]}
n=${2:-2000}
port=${BENCH_REMOTE_PORT:-28799}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-remote.XXXXXX")
pids=
cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || :; done
	for p in $pids; do wait "$p" 2>/dev/null || :; done
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
pids="$pids $!"
wait_line "$tmp/s.log" "ready: listening"
for d in a b; do
	"$build/ferryd" --data-dir "$tmp/$d" --socket "$tmp/$d.sock" \
	    --remote "http://127.0.0.1:$port" </dev/null >"$tmp/$d.log" 2>&1 &
	pids="$pids $!"
	wait_line "$tmp/$d.log" "ready: socket"
	"$build/ferryctl" --socket "$tmp/$d.sock" sync --wait >/dev/null
done
"$build/bench/bench_watch" -s "$tmp/a.sock" -S "$tmp/b.sock" -n "$n" \
    -w 100 -t 300 | grep '^RESULT' | sed "s|\$| cmd=bench/remote.sh $build $n|"
