#!/bin/sh
# Set up and run ferry on its embedded default, from a fresh clone: install
# the build dependencies, build, start a local ferry-server on
# 127.0.0.1:8765 and a ferryd syncing with it (data, keys and sockets under
# build/demo/), authorise the daemon's device key on the server, write a
# document, read it back, sync, and show `ferryctl status`.  Both keep
# running; the last lines say how to use and stop them.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh tests/deps.sh
[ -f configure ] || autoreconf -fi >/dev/null 2>&1
mkdir -p build/quickstart
(cd build/quickstart && { [ -f Makefile ] || "$top/configure" -q; } && make -j"$(nproc)" >/dev/null)
bin="$top/build/quickstart"
demo="$top/build/demo"
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

if running "$demo/ferryd.pid"; then
	echo "ferryd already running (pid $(cat "$demo/ferryd.pid"))"
else
	"$bin/ferryd" --data-dir "$demo/data" --socket "$sock" \
	    --remote "http://$listen" </dev/null >"$demo/ferryd.log" 2>&1 &
	echo $! >"$demo/ferryd.pid"
	wait_ready "$demo/ferryd.log" "ready: socket" "$(cat "$demo/ferryd.pid")" ferryd
fi
# The server accepts only keys it was told about: this device's.
"$bin/ferry-server" --data-dir "$demo/server" allow "$($ctl key)" demo
if running "$demo/ferry-server.pid"; then
	kill -HUP "$(cat "$demo/ferry-server.pid")"
else
	"$bin/ferry-server" --listen "$listen" --data-dir "$demo/server" \
	    </dev/null >"$demo/ferry-server.log" 2>&1 &
	echo $! >"$demo/ferry-server.pid"
	wait_ready "$demo/ferry-server.log" "ready: listening" \
	    "$(cat "$demo/ferry-server.pid")" ferry-server
fi
echo '{"title":"hello from ferry","done":false}' | $ctl put notes welcome -
$ctl get notes welcome
$ctl sync --wait >/dev/null
$ctl status
cat <<MSG

ferry-server (pid $(cat "$demo/ferry-server.pid"), log $demo/ferry-server.log) and
ferryd (pid $(cat "$demo/ferryd.pid"), log $demo/ferryd.log) are running.
  $bin/ferryctl --socket $sock ls notes
  $bin/ferryctl --socket $sock watch
Stop them with: kill $(cat "$demo/ferryd.pid") $(cat "$demo/ferry-server.pid")
MSG
