#!/bin/sh
#
# bench/pull.sh: the sync issue's initial-pull figure: a new device with an
# empty replica pulls N documents (1 KB) from ferry-server on 127.0.0.1.
# Device A writes them and syncs first (not timed); then device B starts
# and the time from its start to `sync --wait` returning is the pull.
#
# usage: bench/pull.sh BUILD-DIR [N]     (default 100000)
set -eu
build=${1:?usage: bench/pull.sh BUILD-DIR [N]}
n=${2:-100000}
port=${BENCH_PULL_PORT:-}
. "$(dirname "$0")/sync-lib.sh"
start_server
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
