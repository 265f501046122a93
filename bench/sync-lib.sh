# bench/sync-lib.sh: sourced by the sync benchmarks (push, pull, remote,
# idle).  Gives each run a temp dir, starts ferry-server (--open) and
# ferryds on 127.0.0.1, waits (bounded) for their ready lines, and at exit
# stops only the processes it started, by PID.  Needs $build; $port, if
# empty, is one the kernel says is free now, from tests/tools/freeport
# ($BENCH_FREEPORT, else the one in $build: `make tests/tools/freeport`),
# so that two runs at once never ask for the same fixed port.

if [ -z "${port:-}" ]; then
	freeport=${BENCH_FREEPORT:-$build/tests/tools/freeport}
	if [ ! -x "$freeport" ]; then
		echo "$0: $freeport is missing: build it (make" \
		    "tests/tools/freeport) or set BENCH_FREEPORT" >&2
		exit 2
	fi
	port=$("$freeport") || exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench.XXXXXX")
pids=
bench_cleanup() {
	for p in $pids; do kill "$p" 2>/dev/null || :; done
	for p in $pids; do wait "$p" 2>/dev/null || :; done
	rm -rf "$tmp"
}
trap bench_cleanup EXIT INT TERM

# wait_line LOG TEXT [TRIES]: until TEXT is in LOG (TRIES checks 0.05 s
# apart, 200 = 10 s by default); LOG may not exist yet (the process
# started in the background creates it).
wait_line() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1)); [ $i -le "${3:-200}" ] || { cat "$1"; exit 1; }
		sleep 0.05
	done
}

# start_server: ferry-server on 127.0.0.1:$port; its PID in $spid.  Its
# store is SQLite in $tmp/srv, or the PostgreSQL database named by
# $BENCH_SERVER_DB (a postgresql:// URL of an empty database: the
# benchmark does not clear it).
start_server() {
	set -- --data-dir "$tmp/srv" --open
	[ -n "${BENCH_SERVER_DB:-}" ] && set -- "$@" --db "$BENCH_SERVER_DB"
	"$build/ferry-server" --listen "127.0.0.1:$port" "$@" \
	    </dev/null >"$tmp/s.log" 2>&1 &
	spid=$!
	pids="$pids $spid"
	wait_line "$tmp/s.log" "ready: listening"
}

# start_ferryd NAME: a ferryd syncing with it, socket $tmp/NAME.sock; its
# PID in $dpid.  With $BENCH_GRANTS (ferry-server allow options, say
# "--read team-*,shared-* --write notes,todo,b*"), its key is limited to
# those collections on the server (issue 13's figure: the access checks'
# cost with a realistic grant list); the server needs a build that knows
# grants.
start_ferryd() {
	"$build/ferryd" --data-dir "$tmp/$1" --socket "$tmp/$1.sock" \
	    --remote "http://127.0.0.1:$port" </dev/null >"$tmp/$1.log" 2>&1 &
	dpid=$!
	pids="$pids $dpid"
	wait_line "$tmp/$1.log" "ready: socket"
	if [ -n "${BENCH_GRANTS:-}" ]; then
		# shellcheck disable=SC2086 # the options, split on purpose
		"$build/ferry-server" --data-dir "$tmp/srv" allow \
		    "$("$build/ferryctl" --socket "$tmp/$1.sock" key)" "$1" \
		    $BENCH_GRANTS >/dev/null || exit 1
	fi
}

# cpu PID: CPU seconds the process has used.
cpu() { awk '{printf "%.2f", ($14 + $15) / 100}' "/proc/$1/stat"; }
