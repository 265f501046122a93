#!/bin/sh
# Set up and run ferry on its embedded default, from a fresh clone: install
# the build dependencies, build, then create this device's key, authorise
# it on a local ferry-server, start that server on 127.0.0.1:8765 and only
# then a ferryd syncing with it (data, keys and sockets under build/demo/),
# so the daemon's first contact with the server succeeds; write a document,
# read it back, sync, and show `ferryctl status`.  Both keep running; the
# last lines say how to use and stop them.
#
# For tests and for trying without rebuilding: FERRY_QUICKSTART_BIN names a
# directory with built ferryd, ferryctl and ferry-server (then nothing is
# installed or built), FERRY_DEMO_DIR the demo directory, and
# FERRY_DEMO_LISTEN the server's address (127.0.0.1:0: any free port, the
# one the server reports is used).
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
if [ -n "${FERRY_QUICKSTART_BIN:-}" ]; then
	bin=$FERRY_QUICKSTART_BIN
else
	sh tests/deps.sh
	[ -f configure ] || autoreconf -fi >/dev/null 2>&1
	mkdir -p build/quickstart
	(cd build/quickstart && { [ -f Makefile ] || "$top/configure" -q; } &&
	    make -j"$(nproc)" >/dev/null)
	bin="$top/build/quickstart"
fi
demo=${FERRY_DEMO_DIR:-$top/build/demo}
listen=${FERRY_DEMO_LISTEN:-127.0.0.1:8765}
mkdir -p "$demo"
# The socket lives in $demo: ferryd wants its directory private.
chmod 700 "$demo"
sock="$demo/ferryd.sock"
ctl="$bin/ferryctl --socket $sock"

# Wait (bounded) for a ready line in a log, or give up showing it.
wait_ready() {
	i=0
	until grep -q "$2" "$1" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$3" 2>/dev/null; then
			cat "$1"; echo "quickstart: $4 did not start" >&2; exit 1
		fi
		sleep 0.1
	done
}

running() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

if ! running "$demo/ferry-server.pid"; then
	# The device key, made by a ferryd without a remote that stops
	# again, so the server knows it before the real ferryd calls.
	if ! running "$demo/ferryd.pid"; then
		"$bin/ferryd" --data-dir "$demo/data" --socket "$sock" \
		    </dev/null >"$demo/ferryd.log" 2>&1 &
		pid=$!
		wait_ready "$demo/ferryd.log" "ready: socket" "$pid" ferryd
		key=$($ctl key)
		name=$($ctl key --name)
		kill "$pid"
		wait "$pid" || true
	else
		key=$($ctl key)
		name=$($ctl key --name)
	fi
	# Under the device's own name: one name everywhere.
	"$bin/ferry-server" --data-dir "$demo/server" allow "$key" "$name" \
	    >/dev/null
	"$bin/ferry-server" --listen "$listen" --data-dir "$demo/server" \
	    </dev/null >"$demo/ferry-server.log" 2>&1 &
	echo $! >"$demo/ferry-server.pid"
	wait_ready "$demo/ferry-server.log" "ready: listening" \
	    "$(cat "$demo/ferry-server.pid")" ferry-server
fi
# The address the server listens on, from its ready line (port 0 asks
# the kernel for a free one).
url=http://$(sed -n 's/.*ready: listening on \([^,]*\),.*/\1/p' \
    "$demo/ferry-server.log" | tail -n 1)
if running "$demo/ferryd.pid"; then
	echo "ferryd already running (pid $(cat "$demo/ferryd.pid"))"
else
	"$bin/ferryd" --data-dir "$demo/data" --socket "$sock" \
	    --remote "$url" </dev/null >"$demo/ferryd.log" 2>&1 &
	echo $! >"$demo/ferryd.pid"
	wait_ready "$demo/ferryd.log" "ready: socket" \
	    "$(cat "$demo/ferryd.pid")" ferryd
fi
echo '{"title":"hello from ferry","done":false}' | $ctl put notes welcome -
$ctl get notes welcome
$ctl sync --wait >/dev/null
$ctl status
cat <<MSG

ferry-server ($url, pid $(cat "$demo/ferry-server.pid"), log $demo/ferry-server.log) and
ferryd (pid $(cat "$demo/ferryd.pid"), log $demo/ferryd.log) are running.
  $bin/ferryctl --socket $sock ls notes
  $bin/ferryctl --socket $sock watch
Stop them with: kill $(cat "$demo/ferryd.pid") $(cat "$demo/ferry-server.pid")
MSG
