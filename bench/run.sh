#!/bin/sh
#
# bench/run.sh: run the Local core benchmarks and print the figures.
#
# usage: bench/run.sh [BUILD-DIR]     (or FERRY_BUILD_DIR=BUILD-DIR)
#
# Builds nothing: BUILD-DIR must hold ferryd and bench/bench_{put,watch,get}
# (make ferryd bench/bench_put bench/bench_watch bench/bench_get), ideally an
# optimised build without sanitizers.  For each benchmark a fresh ferryd is
# started on an empty data directory under a temporary directory, waited for
# (its "ready: socket" line), measured, and stopped with SIGTERM by its PID;
# nothing else is touched.  The figures are the RESULT lines the programs
# print; the summary at the end compares them with the issue's targets and
# names the machine (CPU, kernel, filesystem of the data directory).
#
# BENCH_ONLY="watch get" runs only the benchmarks named (put_seq put_pipe
# put_raw watch get rss), e.g. to compare one figure across builds.
# BENCH_QUICK=1 runs small counts (a smoke run of a few seconds); figures
# from it mean little.  BENCH_TMPDIR picks where the data directories go
# (default $TMPDIR or /tmp): its filesystem decides what an fsync costs.
# Exit status: 0 if every benchmark ran (targets missed or not), 1 if one
# failed, 2 on bad usage.

set -u

BUILD=${1:-${FERRY_BUILD_DIR:-}}
if [ -z "$BUILD" ] || [ $# -gt 1 ]; then
	echo "usage: bench/run.sh BUILD-DIR (or set FERRY_BUILD_DIR)" >&2
	exit 2
fi
for p in ferryd bench/bench_put bench/bench_watch bench/bench_get; do
	if [ ! -x "$BUILD/$p" ]; then
		echo "run.sh: $BUILD/$p is missing; build it first:" >&2
		echo "  make ferryd bench/bench_put bench/bench_watch" \
		    "bench/bench_get" >&2
		exit 2
	fi
done

if [ "${BENCH_QUICK:-0}" = 1 ]; then
	MODE=quick
	N_SEQ=300 W_SEQ=50
	N_PIPE=8000 W_PIPE=32
	N_WATCH=300 W_WATCH=50
	N_GET=3000 W_GET=300
	N_FILL=20000
	LIMIT=30 LIMIT_FILL=60
else
	MODE=full
	N_SEQ=20000 W_SEQ=500
	N_PIPE=640000 W_PIPE=200
	N_WATCH=10000 W_WATCH=500
	N_GET=200000 W_GET=2000
	N_FILL=1000000
	LIMIT=120 LIMIT_FILL=900
fi

SRC=$(cd "$(dirname "$0")/.." && pwd)
REV=$(git -C "$SRC" describe --always --dirty 2>/dev/null || echo unknown)
LOAD_START=$(cut -d' ' -f1-3 /proc/loadavg)
TMP=$(mktemp -d "${BENCH_TMPDIR:-${TMPDIR:-/tmp}}/ferry-bench.XXXXXX") || exit 1
RESULTS=$TMP/results
: >"$RESULTS"
PID=
SOCK=
FAILED=0

stop_ferryd() {
	[ -n "$PID" ] || return 0
	kill -TERM "$PID" 2>/dev/null
	i=0
	while kill -0 "$PID" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if kill -0 "$PID" 2>/dev/null; then
		echo "run.sh: ferryd $PID ignored SIGTERM for 10 s; killing it" >&2
		kill -KILL "$PID" 2>/dev/null
	fi
	wait "$PID" 2>/dev/null
	PID=
}

# shellcheck disable=SC2317 # called from the EXIT trap
cleanup() {
	stop_ferryd
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# start_ferryd NAME: a fresh daemon in $TMP/NAME; sets PID and SOCK.
start_ferryd() {
	dir=$TMP/$1
	mkdir -p "$dir/config" "$dir/run" || return 1
	# The socket's directory must be private, or ferryd refuses it.
	chmod 700 "$dir" "$dir/run"
	SOCK=$dir/ferryd.sock
	XDG_CONFIG_HOME=$dir/config XDG_RUNTIME_DIR=$dir/run \
	    XDG_DATA_HOME=$dir/data "$BUILD/ferryd" --data-dir "$dir/data" \
	    --socket "$SOCK" 2>"$dir/ferryd.log" &
	PID=$!
	i=0
	until grep -q 'ready: socket' "$dir/ferryd.log" 2>/dev/null; do
		if ! kill -0 "$PID" 2>/dev/null || [ $i -ge 200 ]; then
			echo "run.sh: ferryd did not get ready; its log:" >&2
			cat "$dir/ferryd.log" >&2
			stop_ferryd
			return 1
		fi
		sleep 0.05
		i=$((i + 1))
	done
}

# bench NAME PROGRAM ARGS...: one benchmark against its own ferryd.
# "@PID@" in ARGS stands for the daemon's PID.
bench() {
	name=$1
	prog=$2
	shift 2
	case " ${BENCH_ONLY:-$name} " in
	*" $name "*) ;;
	*) return ;;
	esac
	echo "== $name" >&2
	if ! start_ferryd "$name"; then
		FAILED=1
		return
	fi
	args=
	for a in "$@"; do
		[ "$a" = @PID@ ] && a=$PID
		args="$args $a"
	done
	echo "\$ $prog -s SOCK$args" >&2
	# shellcheck disable=SC2086 # args are words without blanks
	if ! "$BUILD/bench/$prog" -s "$SOCK" $args >"$TMP/$name.out"; then
		echo "run.sh: $name failed; ferryd's log:" >&2
		tail -20 "$TMP/$name/ferryd.log" >&2
		FAILED=1
	fi
	cat "$TMP/$name.out"
	grep '^RESULT ' "$TMP/$name.out" | sed "s|\$| cmd=$prog$args|" \
	    >>"$RESULTS"
	stop_ferryd
}

# 1. sequential durable Put latency, one client
bench put_seq bench_put -m seq -n $N_SEQ -w $W_SEQ -t $LIMIT
# 2. pipelined Put throughput through libferry, 16 clients x 32 in flight
bench put_pipe bench_put -m pipe -c 16 -d 32 -n $N_PIPE -w $W_PIPE -t $LIMIT
# 2b. the same load on the raw socket: the daemon's own ceiling
bench put_raw bench_put -m raw -c 16 -d 32 -n $N_PIPE -w $W_PIPE -t $LIMIT
# 3. Put reply to Watch event delay
bench watch bench_watch -n $N_WATCH -w $W_WATCH -t $LIMIT
# 4. Get of a hot document
bench get bench_get -n $N_GET -w $W_GET -t $LIMIT
# 5. daemon memory after 1,000,000 documents (16 x 32 pipelined Puts)
bench rss bench_put -m pipe -c 16 -d 32 -n $N_FILL -w 0 -t $LIMIT_FILL \
    -N fill_put -p @PID@

fs=$(df -PT "$TMP" 2>/dev/null | awk 'NR == 2 { print $2 " on " $1 }')
echo
echo "ferry benchmarks ($MODE), $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "machine: $(nproc) CPUs, $(sed -n 's/^model name[[:space:]]*: //p' \
    /proc/cpuinfo | head -1), $(uname -srm)"
echo "data dirs: $TMP ($fs)"
echo "source: $SRC at $REV; build: $BUILD"
echo "load average (1/5/15 min): $LOAD_START at start," \
    "$(cut -d' ' -f1-3 /proc/loadavg) at end"
awk '
BEGIN {
	target["put_seq_p50"] = "<= 1 ms"
	target["put_pipe_rate"] = ">= 50000 puts/s"
	target["watch_delay_p99"] = "<= 2 ms"
	target["get_hot_p50"] = "<= 100 us"
	target["ferryd_vmrss"] = "<= 40 MB"
	printf "%-16s %14s %-7s %-16s %-5s %s\n", "figure", "value", "unit", \
	    "target", "", "parameters"
}
{
	name = $2; v = $3 + 0; t = target[name]; verdict = ""
	if (t != "") {
		split(t, tt, " ")
		ok = (tt[1] == "<=") ? (v <= tt[2] + 0) : (v >= tt[2] + 0)
		verdict = ok ? "ok" : "MISS"
	}
	params = ""
	for (i = 5; i <= NF; i++)
		params = params " " $i
	printf "%-16s %14s %-7s %-16s %-5s%s\n", name, $3, $4, t, verdict, \
	    params
}' "$RESULTS"
exit $FAILED
