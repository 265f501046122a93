# test-lib.sh: the library every end-to-end test (tests/t/tNNNN-*.sh)
# sources, after git's t/test-lib.sh, much smaller.
#
# A test script is a list of
#     test_expect_success [PREREQ] 'what it checks' '
#         commands chained with && ...
#     '
# and ends with test_done, which prints the TAP plan.  Output is TAP for
# automake's tap-driver: "ok N - ..." / "not ok N - ..."; a failing test
# prints its commands, their output and the tail of every ferryd log as
# "#" lines.  Bodies run in this shell (so they can start daemons and set
# variables) with stdout and stderr in $TEST_DIR/out.N.
#
# Every script gets its own directory (mktemp -d; removed at exit unless
# FERRY_TEST_KEEP is set), HOME and XDG_* inside it, and starts its daemons
# with ferryd_start NAME (data dir $TEST_DIR/NAME/data, socket
# $XDG_RUNTIME_DIR/NAME.sock, log $TEST_DIR/NAME/ferryd.log).  Readiness is
# the "ready: socket" log line, polled with a bound; nothing here sleeps to
# synchronise.  The EXIT trap kills only processes this script started and
# still owns (children recorded with test_track), never anything by name.
#
# Environment: FERRY_BUILD_DIR (binaries), FERRY_SRC_DIR (sources), both set
# by `make check`; FERRY_TEST_KEEP=1 keeps the directory; FERRY_TEST_VERBOSE=1
# shows every test's output.  The library is POSIX sh plus Linux's /proc.

TEST_NAME=$(basename "$0" .sh)
test_here=$(cd "$(dirname "$0")" && pwd)
: "${FERRY_SRC_DIR:=$(cd "$test_here/../.." && pwd)}"
: "${FERRY_BUILD_DIR:=$FERRY_SRC_DIR}"
export FERRY_SRC_DIR FERRY_BUILD_DIR

FERRYD=$FERRY_BUILD_DIR/ferryd
FERRYCTL=$FERRY_BUILD_DIR/ferryctl
VLSEND=$FERRY_BUILD_DIR/tests/tools/vlsend
DURAWRITER=$FERRY_BUILD_DIR/tests/tools/durawriter

# How long (seconds) to wait for a daemon to become ready or to stop.
: "${FERRY_TEST_WAIT:=10}"

test_count=0
test_failures=0
test_pids=""
test_prereqs=" "
test_planned=false

# --- the temp directory and environment ---

TEST_DIR=$(mktemp -d "${TMPDIR:-/tmp}/ferry-$TEST_NAME.XXXXXX") || {
	echo "Bail out! cannot create a temporary directory"
	exit 1
}
mkdir -p "$TEST_DIR/home" "$TEST_DIR/run" "$TEST_DIR/data" "$TEST_DIR/config"
chmod 0700 "$TEST_DIR/run"
HOME=$TEST_DIR/home
XDG_RUNTIME_DIR=$TEST_DIR/run
XDG_DATA_HOME=$TEST_DIR/data
XDG_CONFIG_HOME=$TEST_DIR/config
export HOME XDG_RUNTIME_DIR XDG_DATA_HOME XDG_CONFIG_HOME
unset FERRY_SOCKET NOTIFY_SOCKET LISTEN_PID LISTEN_FDS LISTEN_FDNAMES
# Every reply ferryd sends must fit the interface it serves; one that
# does not makes it abort (daemon/control.h), so no test can miss it.
FERRY_CHECK_REPLIES=1
export FERRY_CHECK_REPLIES
# Sanitizer builds: a leak or error is a failure, reported in the log.
: "${ASAN_OPTIONS:=abort_on_error=0}"
export ASAN_OPTIONS
cd "$TEST_DIR" || exit 1

# --- processes we own ---

# Is pid alive, not a zombie, and our child?  (Guards against killing a
# process that reused the number of one we already reaped.)  Reads
# /proc/PID/stat ("pid (comm) state ppid ..."), not /proc/PID/status:
# reading status can stall a sanitizer build's exit-time leak check for
# seconds.
test_pid_ours() {
	_stat=$(sed 's/.*) //' "/proc/$1/stat" 2>/dev/null)
	_st=${_stat%% *}
	_ppid=${_stat#* }
	_ppid=${_ppid%% *}
	[ "$_ppid" = "$$" ] && [ -n "$_st" ] && [ "$_st" != Z ]
}

# test_poll SECONDS COMMANDS: run COMMANDS every 50 ms until they succeed.
# Fails after SECONDS, counted both in rounds and by the clock, so a slow
# round cannot stretch the bound.
test_poll() {
	_pl_n=$(( $1 * 20 ))
	_pl_i=0
	_pl_end=$(( $(date +%s) + $1 + 1 ))
	while [ "$_pl_i" -lt "$_pl_n" ] && [ "$(date +%s)" -le "$_pl_end" ]; do
		eval "$2" && return 0
		sleep 0.05
		_pl_i=$((_pl_i + 1))
	done
	eval "$2"
}

# Record a background child ($!) so the EXIT trap kills it.
test_track() {
	test_pids="$test_pids $1"
}

# test_bg CMD [ARGS...]: start CMD in the background, tracked; its pid is
# in $test_bg_pid.  Use it inside a && chain: a bare "cmd &" there would
# put the whole chain before it in the background.  Redirections given to
# test_bg apply to CMD, stdin included; stdin must be a file, not a pipe
# (a pipeline would run test_bg in a subshell).
test_bg() {
	# Without job control the shell gives an asynchronous command
	# /dev/null as stdin before its own redirections; pass ours on fd 9.
	{ "$@" <&9 9<&- & } 9<&0
	test_bg_pid=$!
	test_track $test_bg_pid
}

test_untrack() {
	_keep=""
	for _p in $test_pids; do
		[ "$_p" = "$1" ] || _keep="$_keep $_p"
	done
	test_pids=$_keep
}

# Wait (bounded) for a child to exit, reap it and set test_exit_status.
# Returns 1 if it is still running after $2 seconds (default
# $FERRY_TEST_WAIT); it is then killed with SIGKILL.
test_wait_exit() {
	if ! test_poll "${2:-$FERRY_TEST_WAIT}" "! test_pid_ours $1"; then
		echo "process $1 still running after ${2:-$FERRY_TEST_WAIT} s;" \
		    "killing it"
		test_pid_ours "$1" && kill -9 "$1" 2>/dev/null
		wait "$1" 2>/dev/null
		test_exit_status=$?
		test_untrack "$1"
		return 1
	fi
	wait "$1" 2>/dev/null
	test_exit_status=$?
	test_untrack "$1"
	return 0
}

test_cleanup() {
	for _p in $test_pids; do
		test_pid_ours "$_p" && kill -9 "$_p" 2>/dev/null
	done
	for _p in $test_pids; do
		wait "$_p" 2>/dev/null
	done
	test_pids=""
	$test_planned || echo "Bail out! $TEST_NAME ended before test_done"
	if [ -n "${FERRY_TEST_KEEP:-}" ]; then
		echo "# kept $TEST_DIR"
	else
		# Files a test made read-only (or another uid made) go too.
		chmod -R u+rwx "$TEST_DIR" 2>/dev/null
		rm -rf "$TEST_DIR"
	fi
}
trap 'test_cleanup' EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# --- TAP ---

test_set_prereq() {
	test_prereqs="$test_prereqs$1 "
}

# test_have_prereq A[,B...]: all of them are set.
test_have_prereq() {
	for _pr in $(echo "$1" | tr , " "); do
		case $test_prereqs in
		*" $_pr "*) ;;
		*) return 1 ;;
		esac
	done
	return 0
}

[ "$(id -u)" = 0 ] && test_set_prereq ROOT
command -v setpriv >/dev/null 2>&1 && test_set_prereq SETPRIV

# Print a file (or stdin) as TAP comments (lines cut at 2000 bytes).
test_comment() {
	cut -c 1-2000 "$@" | sed -e 's/^/# /'
}

test_dump_logs() {
	for _log in "$TEST_DIR"/*/ferryd.log; do
		[ -f "$_log" ] || continue
		echo "--- last lines of $_log:"
		tail -n 15 "$_log"
	done
}

# The body runs in a function so that "return 1" in it (the way to fail
# from inside a loop) ends the body, not test_expect_success.
test_run_body() {
	eval "$1"
}

# test_expect_success [PREREQ] DESCRIPTION BODY
test_expect_success() {
	_prereq=""
	if [ $# = 3 ]; then
		_prereq=$1
		shift
	fi
	[ $# = 2 ] || { echo "Bail out! bad test_expect_success call"; exit 1; }
	test_count=$((test_count + 1))
	if [ -n "$_prereq" ] && ! test_have_prereq "$_prereq"; then
		echo "ok $test_count - $1 # SKIP missing $_prereq"
		return 0
	fi
	_out=$TEST_DIR/out.$test_count
	test_run_body "$2" >"$_out" 2>&1 </dev/null
	_status=$?
	if [ "$_status" = 0 ]; then
		echo "ok $test_count - $1"
		[ -n "${FERRY_TEST_VERBOSE:-}" ] && test_comment "$_out"
	else
		test_failures=$((test_failures + 1))
		echo "not ok $test_count - $1"
		{
			echo "failed with status $_status:"
			printf '%s\n' "$2"
			echo "--- output:"
			# Bounded: a reply line can be megabytes.
			head -n 200 "$_out" | cut -c 1-2000
			[ "$(wc -l <"$_out")" -le 200 ] ||
			    echo "(... $(wc -l <"$_out") lines in all)"
			test_dump_logs
		} | test_comment
	fi
	return 0
}

# test_expect_failure 'desc' 'commands': a promise not kept yet (a known
# breakage, named in desc with the issue that will keep it).  Reported as
# TAP "# TODO": a failure is expected (automake counts XFAIL); a pass is
# XPASS, which fails the run, so the marker is removed when the work lands.
test_expect_failure() {
	[ $# = 2 ] || { echo "Bail out! bad test_expect_failure call"; exit 1; }
	test_count=$((test_count + 1))
	_out=$TEST_DIR/out.$test_count
	test_run_body "$2" >"$_out" 2>&1 </dev/null
	if [ $? = 0 ]; then
		echo "ok $test_count - $1 # TODO known breakage vanished"
	else
		echo "not ok $test_count - $1 # TODO known breakage"
	fi
	return 0
}

# test_skip DESCRIPTION REASON: a test that cannot run here.
test_skip() {
	test_count=$((test_count + 1))
	echo "ok $test_count - $1 # SKIP $2"
}

# Skip the whole script (before any test ran).
skip_all() {
	echo "1..0 # SKIP $1"
	test_planned=true
	exit 0
}

test_done() {
	echo "1..$test_count"
	test_planned=true
	if [ "$test_failures" -gt 0 ]; then
		echo "# failed $test_failures of $test_count"
		exit 1
	fi
	exit 0
}

# --- assertions (print what was wrong; for use in bodies with &&) ---

# test_cmp EXPECTED ACTUAL
test_cmp() {
	diff -u "$1" "$2"
}

# test_grep [GREP-OPTIONS] PATTERN FILE: like grep, but on failure show
# the file.  With "!" first: the pattern must not occur.
test_grep() {
	if [ "$1" = "!" ]; then
		shift
		if grep "$@" >/dev/null; then
			echo "test_grep: unexpected match for '$*' in:"
			eval "_f=\${$#}"
			cat "$_f"
			return 1
		fi
		return 0
	fi
	if ! grep "$@" >/dev/null; then
		echo "test_grep: no match for '$*' in:"
		eval "_f=\${$#}"
		cat "$_f"
		return 1
	fi
	return 0
}

# test_expect_code CODE COMMAND...: the command must exit with CODE.
test_expect_code() {
	_want=$1
	shift
	"$@"
	_got=$?
	if [ "$_got" != "$_want" ]; then
		echo "test_expect_code: '$*' exited $_got, expected $_want"
		return 1
	fi
	return 0
}

# test_wait_until SECONDS 'COMMANDS': poll (every 50 ms, bounded) until the
# commands succeed.  For conditions another process makes true.
test_wait_until() {
	test_poll "$1" "$2" && return 0
	echo "test_wait_until: still false after $1 s: $2"
	return 1
}

# test_equal WHAT EXPECTED ACTUAL
test_equal() {
	if [ "$2" != "$3" ]; then
		echo "$1: expected '$2', got '$3'"
		return 1
	fi
	return 0
}

# --- JSON scraping (replies are compact: "key":value, no spaces) ---

# json_int KEY [FILE]: the first integer value of "KEY" in the input.
json_int() {
	grep -o "\"$1\":-\{0,1\}[0-9][0-9]*" ${2:+"$2"} | head -n 1 | cut -d: -f2
}

# json_str KEY [FILE]: the first string value of "KEY" (no escapes).
json_str() {
	grep -o "\"$1\":\"[^\"]*\"" ${2:+"$2"} | head -n 1 |
	    sed 's/^[^:]*:"\(.*\)"$/\1/'
}

# json_nested N: a JSON object nested N levels deep ({} is one level), as
# the body limit counts them (lib/bodylimit.h).
json_nested() {
	awk -v n="$1" 'BEGIN {
		for (i = 1; i < n; i++) printf "{\"d\":";
		printf "{}";
		for (i = 1; i < n; i++) printf "}";
	}'
}

# json_sized N: {"s":"xx...x"}, an object of N bytes of compact JSON.
json_sized() {
	printf '{"s":"' &&
	head -c $(($1 - 8)) /dev/zero | tr '\0' x &&
	printf '"}'
}

# check_run FILE FIRST LAST: FILE holds exactly the integers FIRST..LAST,
# one a line, in order; else say where it first differs (no huge diffs).
check_run() {
	awk -v first="$2" -v last="$3" '
		$0 != first + NR - 1 {
			printf "line %d: expected %d, got %s\n", NR, first + NR - 1, $0
			bad = 1; exit 1
		}
		END {
			if (bad) exit 1
			if (NR != last - first + 1) {
				printf "%d lines, expected %d (%d..%d)\n", NR,
				    last - first + 1, first, last
				exit 1
			}
		}' "$1"
}

# --- ferryd ---

ferryd_sock() {
	echo "$XDG_RUNTIME_DIR/$1.sock"
}

ferryd_pid() {
	eval "echo \"\${ferryd_pid_$1:-}\""
}

ferryd_log() {
	echo "$TEST_DIR/$1/ferryd.log"
}

ferryd_datadir() {
	echo "$TEST_DIR/$1/data"
}

# ferryd_running NAME: the daemon started as NAME is still alive.
ferryd_running() {
	_pid=$(ferryd_pid "$1")
	if [ -z "$_pid" ] || ! test_pid_ours "$_pid"; then
		echo "ferryd $1 (pid ${_pid:-none}) is not running"
		return 1
	fi
	return 0
}

# ferryd_start NAME [ARGS...]: start ferryd in the background and wait
# until it is ready.  ARGS come after --data-dir and --socket, so they can
# override them.  The log of every earlier start of NAME is kept in
# ferryd.log.old.
ferryd_start() {
	_name=$1
	shift
	case $_name in
	*[!A-Za-z0-9_]*|"")
		echo "ferryd_start: bad name '$_name'"
		return 1
		;;
	esac
	mkdir -p "$TEST_DIR/$_name"
	_log=$(ferryd_log "$_name")
	[ -f "$_log" ] && cat "$_log" >>"$_log.old"
	# Empty the log here, not in the child: the wait below must not see
	# the ready line of an earlier start.
	: >"$_log"
	"$FERRYD" --data-dir "$(ferryd_datadir "$_name")" \
	    --socket "$(ferryd_sock "$_name")" "$@" </dev/null >>"$_log" 2>&1 &
	_pid=$!
	test_track "$_pid"
	eval "ferryd_pid_$_name=$_pid"
	if ! test_wait_log "$_log" 'ready: socket' "$_pid"; then
		echo "ferryd $_name did not become ready; its log:"
		cat "$_log"
		return 1
	fi
	return 0
}

# test_wait_log FILE PATTERN [PID]: poll FILE (bounded) until a line
# matches PATTERN; fail early if PID exits first.
test_wait_log() {
	_wl_file=$1
	_wl_pat=$2
	_wl_pid=${3:-}
	# Stop polling when the line appears or the process is gone.
	test_poll "$FERRY_TEST_WAIT" 'grep -q -- "$_wl_pat" "$_wl_file" \
	    2>/dev/null || { [ -n "$_wl_pid" ] && ! test_pid_ours "$_wl_pid"; }'
	grep -q -- "$_wl_pat" "$_wl_file" 2>/dev/null && return 0
	if [ -n "$_wl_pid" ] && ! test_pid_ours "$_wl_pid"; then
		test_wait_exit "$_wl_pid" 1
		echo "process $_wl_pid exited ($test_exit_status) before" \
		    "'$_wl_pat' appeared in $_wl_file"
		return 1
	fi
	echo "'$_wl_pat' did not appear in $_wl_file within $FERRY_TEST_WAIT s"
	return 1
}

# ferryd_stop NAME: SIGTERM, wait (bounded); succeeds only if ferryd
# exited 0 within the bound.  Its exit status is in test_exit_status.
ferryd_stop() {
	_pid=$(ferryd_pid "$1")
	ferryd_running "$1" || return 1
	kill -TERM "$_pid" || return 1
	test_wait_exit "$_pid" || return 1
	eval "ferryd_pid_$1="
	if [ "$test_exit_status" != 0 ]; then
		echo "ferryd $1 exited with status $test_exit_status"
		return 1
	fi
	return 0
}

# ferryd_kill9 NAME: SIGKILL and reap.
ferryd_kill9() {
	_pid=$(ferryd_pid "$1")
	ferryd_running "$1" || return 1
	kill -KILL "$_pid" || return 1
	test_wait_exit "$_pid"
	eval "ferryd_pid_$1="
	return 0
}

# --- talking to ferryd ---

# vlcall NAME JSON [VLSEND-OPTIONS]: send one call to ferryd NAME and
# print its reply (one line).  Fails if no reply came.
vlcall() {
	_sock=$(ferryd_sock "$1")
	_msg=$2
	shift 2
	printf '%s\0' "$_msg" | "$VLSEND" "$_sock" -n 1 "$@" \
	    >"$TEST_DIR/.vlcall" || {
		cat "$TEST_DIR/.vlcall"
		return 1
	}
	if [ "$(tail -n 1 "$TEST_DIR/.vlcall")" != DONE ]; then
		echo "vlcall: no reply to $_msg:"
		cat "$TEST_DIR/.vlcall"
		return 1
	fi
	sed '$d' "$TEST_DIR/.vlcall"
}

# fcall NAME METHOD [PARAMS-JSON]: call io.ferry.METHOD (or METHOD if it
# has a dot) on ferryd NAME; print the reply.
fcall() {
	case $2 in
	*.*) _m=$2 ;;
	*) _m=io.ferry.$2 ;;
	esac
	_p=${3-}
	[ -n "$_p" ] || _p='{}'
	vlcall "$1" "{\"method\":\"$_m\",\"parameters\":$_p}"
}

# ctl NAME ARGS...: ferryctl against ferryd NAME.  (A shell function: to
# run ferryctl in the background, call "$FERRYCTL" itself, so that $! is
# ferryctl and not a subshell.)
ctl() {
	_sock=$(ferryd_sock "$1")
	shift
	"$FERRYCTL" --socket "$_sock" "$@"
}

# ferryd_works NAME: a fresh client gets a Status reply from NAME, and the
# process is the one we started.
ferryd_works() {
	ferryd_running "$1" &&
	vlcall "$1" '{"method":"io.ferry.Status"}' >"$TEST_DIR/.works" &&
	test_grep '"status":{' "$TEST_DIR/.works"
}

for _bin in "$FERRYD" "$VLSEND"; do
	[ -x "$_bin" ] || skip_all "$_bin is not built (run make check)"
done
