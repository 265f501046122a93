#!/bin/sh
# Build the libFuzzer harnesses with clang (libFuzzer + ASan + UBSan) in
# build/fuzz and run each for SECONDS (default 60) on a copy of its
# committed corpus, tests/fuzz/corpus/NAME/ (the committed corpus is never
# written to).  Prints one line per harness, "fuzz NAME: ok, N execs" or
# "fuzz NAME: FAILED ..." with the report and the input that crashed (kept
# in build/fuzz/crashes/), then "N passed, M failed"; exits non-zero if a
# harness crashed, leaked, broke a promise or did not build.
#   sh tests/fuzz/run.sh 60
#   FUZZ_ONLY="merge record" sh tests/fuzz/run.sh 10
set -u
secs=${1:-60}
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top" || exit 1
harnesses=${FUZZ_ONLY:-"vl_frame record merge push_reply push_req changes_page"}
n=$(echo $harnesses | wc -w)
jobs=$(nproc 2>/dev/null || echo 2)
dir="$top/build/fuzz"

fail_all() {
	echo "$1"
	echo "0 passed, $n failed"
	exit 1
}

# clang, libFuzzer's runtime (not pulled in without recommends) and
# llvm-symbolizer for readable reports.
sh tests/deps.sh clang libclang-rt-dev llvm ||
	fail_all "fuzz: cannot install the dependencies"
[ -f configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] ||
	autoreconf -fi >/dev/null 2>&1 || fail_all "fuzz: autoreconf failed"
mkdir -p "$dir/crashes" || fail_all "fuzz: cannot make $dir"
start=$(date +%s)
if ! (cd "$dir" && { [ -f Makefile ] ||
    CC=clang "$top/configure" -q --enable-fuzz >configure.out 2>&1; } &&
    make -j"$jobs" fuzz >make.out 2>&1); then
	tail -30 "$dir/configure.out" "$dir/make.out" 2>/dev/null
	fail_all "fuzz: the harnesses did not build (see $dir/make.out)"
fi
echo "fuzz: built in $(($(date +%s) - start)) s; $secs s per harness"

symbolizer=$(command -v llvm-symbolizer || true)
export ASAN_OPTIONS="abort_on_error=1:detect_leaks=1:symbolize=1${symbolizer:+:external_symbolizer_path=$symbolizer}"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
passed=0
failed=0
for h in $harnesses; do
	work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-fuzz-$h.XXXXXX") ||
		{ failed=$((failed + 1)); echo "fuzz $h: FAILED (no temp dir)"; continue; }
	mkdir "$work/corpus" "$work/artifacts"
	cp "tests/fuzz/corpus/$h"/* "$work/corpus/" 2>/dev/null
	"$dir/tests/fuzz/fuzz_$h" -max_total_time="$secs" -timeout=10 \
	    -rss_limit_mb=2048 -print_final_stats=1 \
	    -dict="$top/tests/fuzz/ferry.dict" \
	    -artifact_prefix="$work/artifacts/" "$work/corpus" \
	    >"$work/log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log" | tail -1)
	if [ "$rc" -eq 0 ] && [ -n "$execs" ]; then
		echo "fuzz $h: ok, $execs execs"
		passed=$((passed + 1))
	else
		echo "fuzz $h: FAILED (exit $rc) after ${execs:-?} execs"
		grep -v '^#[0-9]' "$work/log" | tail -60
		for a in "$work/artifacts"/*; do
			[ -f "$a" ] || continue
			cp "$a" "$dir/crashes/$h-$(basename "$a")"
			echo "fuzz $h: input kept in $dir/crashes/$h-$(basename "$a");" \
			    "rerun: $dir/tests/fuzz/fuzz_$h $dir/crashes/$h-$(basename "$a")"
		done
		failed=$((failed + 1))
	fi
	rm -rf "$work"
done
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
