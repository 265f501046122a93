#!/bin/sh
# Set up and run ferry on its embedded default, from a fresh clone: install
# the build dependencies, build, start ferryd on a private data directory
# and socket under build/demo/, write a document, read it back, and show
# `ferryctl status`.  ferryd keeps running; the last lines say how to use
# and stop it.  No remote is configured yet (state "unconfigured").
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"
sh tests/deps.sh
[ -f configure ] || autoreconf -fi >/dev/null 2>&1
mkdir -p build/quickstart
(cd build/quickstart && { [ -f Makefile ] || "$top/configure" -q; } && make -j"$(nproc)" >/dev/null)
bin="$top/build/quickstart"
demo="$top/build/demo"
mkdir -p "$demo"
sock="$demo/ferryd.sock"
if [ -f "$demo/ferryd.pid" ] && kill -0 "$(cat "$demo/ferryd.pid")" 2>/dev/null; then
	echo "ferryd already running (pid $(cat "$demo/ferryd.pid"))"
else
	"$bin/ferryd" --data-dir "$demo/data" --socket "$sock" \
	    </dev/null >"$demo/ferryd.log" 2>&1 &
	echo $! >"$demo/ferryd.pid"
	i=0
	until grep -q "ready: socket" "$demo/ferryd.log" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -gt 100 ] || ! kill -0 "$(cat "$demo/ferryd.pid")" 2>/dev/null; then
			cat "$demo/ferryd.log"; echo "ferryd did not start" >&2; exit 1
		fi
		sleep 0.1
	done
fi
ctl="$bin/ferryctl --socket $sock"
echo '{"title":"hello from ferry","done":false}' | $ctl put notes welcome -
$ctl get notes welcome
$ctl status
cat <<MSG

ferryd is running (pid $(cat "$demo/ferryd.pid"), log $demo/ferryd.log).
  $bin/ferryctl --socket $sock ls notes
  $bin/ferryctl --socket $sock watch
Stop it with: kill $(cat "$demo/ferryd.pid")
MSG
