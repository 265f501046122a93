# fault-lib.sh: what the fault tests (t3xxx-*.sh) share, on top of
# sync-lib.sh (which it sources, with server-lib.sh and test-lib.sh: a
# script sources only this file).
#
# A fault test puts tests/tools/faultproxy between its ferryd daemons and
# ferry-server and tells it, request by request or by chance, to drop,
# reset, duplicate, slow or hold what passes (see faultproxy.c for the
# commands):
#     server_start srv --open
#     proxy_start px srv [--seed N]      faultproxy in front of srv
#     ferryd_start a --remote "$(proxy_url px)"
#     proxy_ctl px 'set /v1/push drop-after 1'
# The proxy listens on a port the kernel picks (its ready line names it),
# its control socket is $TEST_DIR/NAME/ctl.sock and its log (a line per
# request and the action it got) $TEST_DIR/NAME/faultproxy.log, shown with
# the daemons' logs when a test fails.

. "$(dirname "$0")/sync-lib.sh"

FAULTPROXY=$FERRY_BUILD_DIR/tests/tools/faultproxy

[ -x "$FAULTPROXY" ] || skip_all "$FAULTPROXY is not built (run make check)"

# On failure, show the proxies' logs too.
test_dump_logs() {
	for _log in "$TEST_DIR"/*/ferryd.log "$TEST_DIR"/*/ferry-server.log \
	    "$TEST_DIR"/*/faultproxy.log; do
		[ -f "$_log" ] || continue
		echo "--- last lines of $_log:"
		tail -n 25 "$_log"
	done
}

proxy_sock() {
	echo "$TEST_DIR/$1/ctl.sock"
}

proxy_log() {
	echo "$TEST_DIR/$1/faultproxy.log"
}

proxy_pid() {
	eval "echo \"\${proxy_pid_$1:-}\""
}

proxy_port() {
	eval "echo \"\${proxy_port_$1:-}\""
}

proxy_url() {
	echo "http://127.0.0.1:$(proxy_port "$1")"
}

# proxy_start NAME SERVER [ARGS...]: faultproxy NAME in front of the
# running ferry-server SERVER; ARGS (e.g. --seed N) are passed on.  Waits
# (bounded) for its ready line and reads its port from it.
proxy_start() {
	_pn=$1
	_ps=$2
	shift 2
	case $_pn in
	*[!A-Za-z0-9_]*|"")
		echo "proxy_start: bad name '$_pn'"
		return 1
		;;
	esac
	mkdir -p "$TEST_DIR/$_pn"
	rm -f "$(proxy_sock "$_pn")"
	: >"$TEST_DIR/$_pn/faultproxy.err"
	test_bg "$FAULTPROXY" --listen 127.0.0.1:0 \
	    --target "127.0.0.1:$(server_port "$_ps")" \
	    --control "$(proxy_sock "$_pn")" --log "$(proxy_log "$_pn")" \
	    "$@" </dev/null 2>"$TEST_DIR/$_pn/faultproxy.err"
	eval "proxy_pid_$_pn=$test_bg_pid"
	if ! test_wait_log "$TEST_DIR/$_pn/faultproxy.err" \
	    "ready: listening on 127.0.0.1:" "$test_bg_pid"; then
		cat "$TEST_DIR/$_pn/faultproxy.err"
		return 1
	fi
	_pp=$(sed -n 's/^ready: listening on 127\.0\.0\.1:\([0-9][0-9]*\)$/\1/p' \
	    "$TEST_DIR/$_pn/faultproxy.err")
	[ -n "$_pp" ] || {
		echo "proxy_start: no port in:"
		cat "$TEST_DIR/$_pn/faultproxy.err"
		return 1
	}
	eval "proxy_port_$_pn=$_pp"
}

# proxy_ctl NAME COMMAND: one control command; prints the answer and
# fails unless the proxy accepted it.
proxy_ctl() {
	"$FAULTPROXY" --ctl "$(proxy_sock "$1")" "$2"
}

# proxy_stat NAME KEY: one counter of the proxy's stats line.
proxy_stat() {
	proxy_ctl "$1" stats | tr ' ' '\n' | sed -n "s/^$2=//p"
}

# proxy_stop NAME: SIGTERM; succeeds only if it exited 0 within the bound.
proxy_stop() {
	_pid=$(proxy_pid "$1")
	test_pid_ours "$_pid" || {
		echo "faultproxy $1 (pid ${_pid:-none}) is not running"
		return 1
	}
	kill -TERM "$_pid" && test_wait_exit "$_pid" || return 1
	eval "proxy_pid_$1="
	test_equal "faultproxy $1's exit status" 0 "$test_exit_status"
}

# preq PROXY KEY [SRVCLIENT-OPTIONS] METHOD PATH [BODYFILE] and
# ppush PROXY KEY ITEM...: server-lib's req and push, through the proxy
# (to them it is a server named via_PROXY).
preq() {
	eval "server_port_via_$1=$(proxy_port "$1")"
	_pq=$1
	shift
	req "via_$_pq" "$@"
}

ppush() {
	eval "server_port_via_$1=$(proxy_port "$1")"
	_pq=$1
	shift
	push "via_$_pq" "$@"
}
