#!/bin/sh
# Run every ferry test, from a fresh clone: install the build dependencies,
# build twice (warnings as errors; then ASan+UBSan), both with the example
# app (--with-examples: t7001 runs it), and run `make check` in each build.
# The last line is "N passed, M failed" over both builds; the exit status
# is non-zero if anything failed.
#   sh tests/run.sh            both builds
#   FERRY_BUILDS=werror sh tests/run.sh   only the first
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
sh tests/deps.sh || { echo "0 passed, 1 failed"; exit 1; }
jobs=$(nproc 2>/dev/null || echo 2)
passed=0
failed=0
status=0
[ -f configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] ||
	autoreconf -fi >/dev/null 2>&1 || { echo "autoreconf failed"; echo "0 passed, 1 failed"; exit 1; }

run_build() {
	name=$1; shift
	dir="$top/build/$name"
	mkdir -p "$dir"
	echo "=== build $name: configure $*"
	if ! (cd "$dir" && "$top/configure" -q "$@" >configure.out 2>&1); then
		cat "$dir/configure.out"; failed=$((failed + 1)); status=1; return
	fi
	if ! (cd "$dir" && make -j"$jobs" >make.out 2>&1); then
		tail -50 "$dir/make.out"; failed=$((failed + 1)); status=1; return
	fi
	echo "=== build $name: make check"
	(cd "$dir" && make -j"$jobs" check >check.out 2>&1)
	rc=$?
	grep -E '^(PASS|FAIL|ERROR|XPASS|SKIP)' "$dir/check.out" | grep -v '^PASS' | head -100
	p=$(sed -n 's/^# PASS: *\([0-9]*\)/\1/p' "$dir/check.out" | tail -1)
	f=$(sed -n 's/^# FAIL: *\([0-9]*\)/\1/p' "$dir/check.out" | tail -1)
	e=$(sed -n 's/^# ERROR: *\([0-9]*\)/\1/p' "$dir/check.out" | tail -1)
	x=$(sed -n 's/^# XPASS: *\([0-9]*\)/\1/p' "$dir/check.out" | tail -1)
	p=${p:-0}; f=${f:-0}; e=${e:-0}; x=${x:-0}
	echo "=== build $name: $p passed, $((f + e + x)) failed"
	passed=$((passed + p))
	failed=$((failed + f + e + x))
	if [ "$rc" -ne 0 ]; then
		status=1
		[ $((f + e + x)) -eq 0 ] && { tail -30 "$dir/check.out"; failed=$((failed + 1)); }
		for log in $(grep -lE '^(FAIL|ERROR|not ok)' "$dir"/tests/*/*.log "$dir"/tests/*.log 2>/dev/null | head -5); do
			echo "--- $log"; tail -40 "$log"
		done
	fi
}

builds=${FERRY_BUILDS:-"werror sanitize"}
for b in $builds; do
	case $b in
	werror) run_build werror --enable-werror --with-examples ;;
	sanitize) run_build sanitize --enable-werror --enable-sanitizers \
	    --with-examples ;;
	esac
done
echo "$passed passed, $failed failed"
exit $status
