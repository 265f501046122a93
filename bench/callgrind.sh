#!/bin/sh
#
# bench/callgrind.sh: instructions, not seconds: one sync figure with one
# process under valgrind's callgrind, so that two builds can be compared
# on a loaded machine (instruction counts do not depend on the load;
# times do).  Prints the process's total instructions and writes the
# callgrind file for callgrind_annotate.
#
# usage: bench/callgrind.sh BUILD-DIR WHAT N OUT
#   WHAT = pull     ferryd B during an initial pull of N documents
#          push     ferryd during the drain of N queued changes
#          server   ferry-server during that drain
# Needs valgrind.  N of 20000 takes a few minutes (callgrind runs the
# process about 50 times slower).  Same ports and cleanup as push.sh.
set -eu
build=${1:?usage: bench/callgrind.sh BUILD-DIR pull|push|server N OUT}
what=${2:?usage}
n=${3:?usage}
out=${4:?usage}
port=${BENCH_PORT:-}
. "$(dirname "$0")/sync-lib.sh"
cg="valgrind --tool=callgrind --callgrind-out-file=$out"

fill() {
	"$build/bench/bench_put" -s "$tmp/$1.sock" -m pipe -c 16 -d 32 \
	    -n "$n" -w 0 -t 600 -N fill >/dev/null 2>&1
}

case $what in
pull)
	start_server
	start_ferryd a
	fill a
	"$build/ferryctl" --socket "$tmp/a.sock" sync --wait >/dev/null
	$cg "$build/ferryd" --data-dir "$tmp/b" --socket "$tmp/b.sock" \
	    --remote "http://127.0.0.1:$port" </dev/null >"$tmp/b.log" 2>&1 &
	vpid=$!
	pids="$pids $vpid"
	wait_line "$tmp/b.log" "ready: socket" 1200
	"$build/ferryctl" --socket "$tmp/b.sock" sync --wait >/dev/null
	;;
push)
	# Fill with a ferryd of its own, then drain under callgrind.
	start_ferryd d
	fill d
	kill "$dpid"
	wait "$dpid" || :
	$cg "$build/ferryd" --data-dir "$tmp/d" --socket "$tmp/d.sock" \
	    --remote "http://127.0.0.1:$port" </dev/null >"$tmp/v.log" 2>&1 &
	vpid=$!
	pids="$pids $vpid"
	wait_line "$tmp/v.log" "ready: socket" 1200
	start_server
	"$build/ferryctl" --socket "$tmp/d.sock" sync --wait >/dev/null
	;;
server)
	start_ferryd d
	fill d
	$cg "$build/ferry-server" --listen "127.0.0.1:$port" \
	    --data-dir "$tmp/srv" --open </dev/null >"$tmp/s.log" 2>&1 &
	vpid=$!
	pids="$pids $vpid"
	wait_line "$tmp/s.log" "ready: listening" 1200
	"$build/ferryctl" --socket "$tmp/d.sock" sync --wait >/dev/null
	;;
*)
	echo "bench/callgrind.sh: WHAT must be pull, push or server" >&2
	exit 2
	;;
esac
kill "$vpid"
wait "$vpid" || :
echo "RESULT instructions_$what $(callgrind_annotate "$out" 2>/dev/null |
    sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p') n=$n" \
    "cmd=bench/callgrind.sh $build $what $n $out"
