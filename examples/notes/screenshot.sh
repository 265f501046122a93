#!/bin/sh
# Regenerates the screenshots of examples/notes that README shows
# (docs/screenshots/notes-*.png): runs t7001, two ferry-notes windows on
# two devices under Xvfb, and keeps the PNGs it takes of each window.
#   sh examples/notes/screenshot.sh [BUILD_DIR]
# BUILD_DIR (default build/werror) is configured --with-examples; make
# builds what the test needs there first.  Needs what t7001 needs (Debian:
# xvfb xdotool imagemagick, as tests/deps.sh installs).
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build/werror}
shots=$top/docs/screenshots
if ! "$build/config.status" --config 2>/dev/null | grep -q -e --with-examples
then
	echo "screenshot.sh: $build is not a build configured --with-examples" >&2
	exit 1
fi
mkdir -p "$shots"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
FERRY_NOTES_SHOTS=$tmp make -C "$build" -s check \
    TESTS=tests/t/t7001-notes-app.sh >"$tmp/check.out" 2>&1 || {
	cat "$build/tests/t/t7001-notes-app.log" >&2
	exit 1
}
for f in notes-a.png notes-b.png notes-conflict.png notes-typing.png; do
	[ -s "$tmp/$f" ] || {
		echo "screenshot.sh: t7001 took no $f (skipped?):" >&2
		cat "$build/tests/t/t7001-notes-app.log" >&2
		exit 1
	}
	cp "$tmp/$f" "$shots/$f"
	echo "$shots/$f"
done
