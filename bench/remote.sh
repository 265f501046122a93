#!/bin/sh
#
# bench/remote.sh: the sync issue's live figure: device A's acknowledged
# Put to device B's Watch event through ferry-server on 127.0.0.1 (A
# pushes, the server commits and answers B's waiting long-poll, B applies
# and notifies).  Runs bench_watch with the writer on A and the watcher on
# B (-S), one Put at a time.
#
# usage: bench/remote.sh BUILD-DIR [COUNT]     (default 2000)
set -eu
build=${1:?usage: bench/remote.sh BUILD-DIR [COUNT]}
n=${2:-2000}
port=${BENCH_REMOTE_PORT:-}
. "$(dirname "$0")/sync-lib.sh"
start_server
for d in a b; do
	start_ferryd $d
	"$build/ferryctl" --socket "$tmp/$d.sock" sync --wait >/dev/null
done
"$build/bench/bench_watch" -s "$tmp/a.sock" -S "$tmp/b.sock" -n "$n" \
    -w 100 -t 300 | grep '^RESULT' | sed "s|\$| cmd=bench/remote.sh $build $n|"
