#!/bin/sh
#
# bench/pull.sh: the sync issue's initial-pull figure: a new device with an
# empty replica pulls N documents (1 KB) from ferry-server on 127.0.0.1.
# Device A writes them and syncs first (not timed); then device B starts
# and the time from its start to `sync --wait` returning is the pull.
#
# usage: bench/pull.sh BUILD-DIR [N]     (default 100000; port 28798)
set -eu
build=${1:?usage: bench/pull.sh BUILD-DIR [N]}
n=${2:-100000}
port=${BENCH_PULL_PORT:-28798}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-pull.XXXXXX")
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
start_ferryd() {
	"$build/ferryd" --data-dir "$tmp/$1" --socket "$tmp/$1.sock" \
	    --remote "http://127.0.0.1:$port" </dev/null >"$tmp/$1.log" 2>&1 &
	pids="$pids $!"
	wait_line "$tmp/$1.log" "ready: socket"
}
"$build/ferry-server" --listen "127.0.0.1:$port" --data-dir "$tmp/srv" \
    --open </dev/null >"$tmp/s.log" 2>&1 &
pids="$pids $!"
wait_line "$tmp/s.log" "ready: listening"
start_ferryd a
"$build/bench/bench_put" -s "$tmp/a.sock" -m pipe -c 16 -d 32 -n "$n" -w 0 \
    -t 600 -N fill >/dev/null 2>&1
"$build/ferryctl" --socket "$tmp/a.sock" sync --wait >/dev/null
t0=$(date +%s.%N)
start_ferryd b
"$build/ferryctl" --socket "$tmp/b.sock" sync --wait >/dev/null
t1=$(date +%s.%N)
docs=$("$build/ferryctl" --socket "$tmp/b.sock" --json status |
    sed -n 's/.*"docs":\([0-9]*\).*/\1/p')
secs=$(echo "$t1 - $t0" | bc -l)
echo "RESULT initial_pull_rate $(echo "$docs / $secs" | bc) docs/s n=$n" \
    "docs_on_b=$docs seconds=$secs cmd=bench/pull.sh $build $n"
