# server-lib.sh: what ferry-server's end-to-end tests (t1xxx-server-*.sh)
# share, on top of test-lib.sh (which it sources: a script sources only
# this file).
#
# server_start NAME [ARGS...] starts ferry-server with its data directory
# in $TEST_DIR/NAME/data, its log in $TEST_DIR/NAME/ferry-server.log and
# --debug, on 127.0.0.1 and a port the kernel picks (--listen
# 127.0.0.1:0; the ready line names it), kept across restarts of NAME.  A
# port asked for before NAME's first start (a ferryd told where its server
# will be) is one the kernel reports free at that moment
# (tests/tools/freeport); no test uses a fixed port.
# Readiness is the "ready: listening on" log line, polled with a bound.  Keys live in $TEST_DIR/keys/KEY (srvclient makes them).
#
# The store is SQLite in the data directory, unless FERRY_TEST_DB is
# "postgresql": then each NAME gets its own database srv_NAME on a
# throwaway PostgreSQL cluster of this script (pg-lib.sh), so the same
# tests run against the PostgreSQL backend (t5xxx-pg-*.sh set it and
# source a t1xxx or t2xxx script).  A --db given to server_start wins.
#
# Requests go through tests/tools/srvclient, whose output is the status
# code on the first line and the body after it:
#     req SERVER KEY [SRVCLIENT-OPTIONS] METHOD PATH [BODYFILE] >out
#     item KEY OP COLLECTION ID BASE SEQ [BODY]    one signed push item
#     push SERVER KEY ITEM... >out                 POST /v1/push of items
# Requests written byte by byte go through tests/tools/rawhttp, a strict
# client on one raw connection (see its head comment for its output):
#     sign KEY METHOD TARGET [BODYFILE]   the Authorization value
#     raw_req KEY METHOD TARGET           a signed request without a body
#     raw SERVER METHOD... <REQUESTS       one answer read per METHOD
# and the server's whole visible state (change log with bodies, and head)
# is `server_state SERVER KEY >file`, compared before and after a refused
# request to show it changed nothing.

. "$(dirname "$0")/test-lib.sh"
. "$FERRY_SRC_DIR/tests/t/pg-lib.sh"

FERRY_SERVER=$FERRY_BUILD_DIR/ferry-server
SRVCLIENT=$FERRY_BUILD_DIR/tests/tools/srvclient
RAWHTTP=$FERRY_BUILD_DIR/tests/tools/rawhttp

for _bin in "$FERRY_SERVER" "$SRVCLIENT" "$RAWHTTP" \
    "$FERRY_BUILD_DIR/tests/tools/freeport"; do
	[ -x "$_bin" ] || skip_all "$_bin is not built (run make check)"
done


# On failure, show the servers' logs too.
test_dump_logs() {
	for _log in "$TEST_DIR"/*/ferryd.log "$TEST_DIR"/*/ferry-server.log; do
		[ -f "$_log" ] || continue
		echo "--- last lines of $_log:"
		tail -n 25 "$_log"
	done
}

server_log() {
	echo "$TEST_DIR/$1/ferry-server.log"
}

server_datadir() {
	echo "$TEST_DIR/$1/data"
}

server_pid() {
	eval "echo \"\${server_pid_$1:-}\""
}

# server_port NAME: NAME's port: the one the kernel gave its first start
# (port 0), or, asked before NAME ever started (a ferryd told where a
# server will be), one the kernel says is free now (tests/tools/freeport),
# which its start then uses.  No port is fixed, so two runs of one test
# on a machine do not collide.
server_port() {
	eval "_p=\${server_port_$1:-}"
	if [ -z "$_p" ]; then
		_p=$("$FERRY_BUILD_DIR/tests/tools/freeport") || return 1
		eval "server_port_$1=$_p"
	fi
	echo "$_p"
}

server_url() {
	echo "http://127.0.0.1:$(server_port "$1")"
}

server_running() {
	_pid=$(server_pid "$1")
	if [ -z "$_pid" ] || ! test_pid_ours "$_pid"; then
		echo "ferry-server $1 (pid ${_pid:-none}) is not running"
		return 1
	fi
	return 0
}

# server_start NAME [ARGS...]: ARGS come after the defaults and override
# them.  Earlier logs of NAME are kept in ferry-server.log.old.
server_start() {
	_name=$1
	shift
	case $_name in
	*[!A-Za-z0-9_]*|"")
		echo "server_start: bad name '$_name'"
		return 1
		;;
	esac
	mkdir -p "$TEST_DIR/$_name"
	_log=$(server_log "$_name")
	# Empty the log here, not in the child: until the child runs, the
	# previous run's ready line would satisfy the wait below.
	[ -f "$_log" ] && cat "$_log" >>"$_log.old"
	: >"$_log"
	# Port 0 on a first start: the kernel picks a free port and the
	# ready line says which, so two runs of a test never collide.  A
	# restart, or a server whose port a ferryd was given before it
	# started, keeps the port it has.
	eval "_port=\${server_port_$_name:-0}"
	set -- --debug "$@"
	if [ "${FERRY_TEST_DB:-sqlite}" = postgresql ]; then
		eval "_made=\${server_db_$_name:-}"
		if [ -z "$_made" ]; then
			pg_createdb "srv_$_name" || return 1
			eval "server_db_$_name=1"
		fi
		set -- --db "$(pg_url "srv_$_name")" "$@"
	fi
	"$FERRY_SERVER" --data-dir "$(server_datadir "$_name")" \
	    --listen "127.0.0.1:$_port" "$@" </dev/null >"$_log" 2>&1 &
	_pid=$!
	test_track "$_pid"
	eval "server_pid_$_name=$_pid"
	if ! test_wait_log "$_log" "ready: listening on 127.0.0.1:" "$_pid"; then
		echo "ferry-server $_name did not become ready; its log:"
		cat "$_log"
		return 1
	fi
	_port=$(sed -n 's/.*ready: listening on 127\.0\.0\.1:\([0-9][0-9]*\).*/\1/p' \
	    "$_log" | head -n 1)
	case $_port in
	""|0|*[!0-9]*)
		echo "ferry-server $_name: no port in its ready line:"
		cat "$_log"
		return 1
		;;
	esac
	eval "server_port_$_name=$_port"
	return 0
}

# server_stop NAME: SIGTERM; succeeds only if it exited 0 within the bound.
server_stop() {
	_pid=$(server_pid "$1")
	server_running "$1" || return 1
	kill -TERM "$_pid" || return 1
	test_wait_exit "$_pid" || return 1
	eval "server_pid_$1="
	if [ "$test_exit_status" != 0 ]; then
		echo "ferry-server $1 exited with status $test_exit_status"
		return 1
	fi
	return 0
}

server_kill9() {
	_pid=$(server_pid "$1")
	server_running "$1" || return 1
	kill -KILL "$_pid" || return 1
	test_wait_exit "$_pid"
	eval "server_pid_$1="
	return 0
}

# key_of KEY: the public key of $TEST_DIR/keys/KEY (made if missing).
key_of() {
	"$SRVCLIENT" --key-dir "$TEST_DIR/keys/$1" key
}

# server_allow NAME KEY [DEVICE-NAME]: add KEY to NAME's keys file (the
# server must be sent SIGHUP if it runs).
server_allow() {
	_k=$(key_of "$2") || return 1
	if [ $# -ge 3 ]; then
		"$FERRY_SERVER" --data-dir "$(server_datadir "$1")" allow "$_k" "$3"
	else
		"$FERRY_SERVER" --data-dir "$(server_datadir "$1")" allow "$_k"
	fi
}

# server_admin NAME COMMAND...: a ferry-server command (revoke, keys...)
# on NAME's store: its data directory (SQLite), or its PostgreSQL
# database under FERRY_TEST_DB=postgresql.
server_admin() {
	_name=$1
	shift
	if [ "${FERRY_TEST_DB:-sqlite}" = postgresql ]; then
		"$FERRY_SERVER" --data-dir "$(server_datadir "$_name")" \
		    --db "$(pg_url "srv_$_name")" "$@"
	else
		"$FERRY_SERVER" --data-dir "$(server_datadir "$_name")" "$@"
	fi
}

# req SERVER KEY [SRVCLIENT-OPTIONS] METHOD PATH [BODYFILE]
req() {
	_url=$(server_url "$1")
	_kd=$TEST_DIR/keys/$2
	shift 2
	"$SRVCLIENT" --key-dir "$_kd" --url "$_url" "$@"
}

# changes_unsigned [FILE]: /v1/changes text with each entry's "record"
# (only there when the record has another layout than ferryd's) and its
# "sig" and "ts" taken out, for tests that check the rest of an entry.  A
# record is a JSON string: it ends at the first quote not escaped.
changes_unsigned() {
	sed 's/"record":"\([^"\\]\|\\.\)*",//g; s/,"sig":"[A-Za-z0-9_-]*","ts":[0-9]*//g' "$@"
}

# item KEY OP COLLECTION ID BASE SEQ [BODY]: one signed push item.
item() {
	_kd=$TEST_DIR/keys/$1
	shift
	"$SRVCLIENT" --key-dir "$_kd" change "$@"
}

# push SERVER KEY ITEM...: POST {"changes":[ITEM,...]} as KEY.
push() {
	_srv=$1
	_key=$2
	shift 2
	{
		printf '{"changes":['
		_sep=""
		for _it in "$@"; do
			printf '%s%s' "$_sep" "$_it"
			_sep=","
		done
		printf ']}'
	} >"$TEST_DIR/.push.json"
	req "$_srv" "$_key" POST /v1/push "$TEST_DIR/.push.json"
}

# sign KEY METHOD TARGET [BODYFILE]: the Authorization header value.
sign() {
	_kd=$TEST_DIR/keys/$1
	shift
	"$SRVCLIENT" --key-dir "$_kd" sign "$@"
}

# raw_req KEY METHOD TARGET: a signed HTTP/1.1 request without a body.
raw_req() {
	_auth=$(sign "$1" "$2" "$3") || return 1
	printf '%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: %s\r\n\r\n' \
	    "$2" "$3" "$_auth"
}

# raw SERVER METHOD... <REQUESTS: send REQUESTS on one connection and read
# one answer per METHOD strictly (tests/tools/rawhttp).
raw() {
	_port=$(server_port "$1")
	shift
	"$RAWHTTP" "$_port" "$@"
}

# status_is CODE FILE: the reply in FILE has status CODE.
status_is() {
	_got=$(head -n 1 "$2")
	if [ "$_got" != "$1" ]; then
		echo "expected status $1, got:"
		cat "$2"
		return 1
	fi
	return 0
}

# server_state SERVER KEY: everything the server shows (its change log
# with bodies, and its head), for before/after comparisons.
server_state() {
	req "$1" "$2" GET '/v1/changes?since=0&limit=1000' >"$TEST_DIR/.state" &&
	status_is 200 "$TEST_DIR/.state" >&2 &&
	cat "$TEST_DIR/.state"
}

# server_head SERVER KEY: the server's head seq.
server_head() {
	server_state "$1" "$2" | json_int head
}
