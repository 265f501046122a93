# pg-lib.sh: a throwaway PostgreSQL 15 for the tests of ferry-server's
# PostgreSQL backend (t5xxx-pg-*.sh, and t1xxx/t2xxx run again with
# FERRY_TEST_DB=postgresql).  Sourced by server-lib.sh, which sources
# test-lib.sh first.
#
# pg_start makes a cluster with initdb in $TEST_DIR/pg/data and starts it
# with pg_ctl, listening on a Unix socket in $TEST_DIR/pg only (no TCP:
# listen_addresses=''), as the postgres user when the tests run as root
# (PostgreSQL refuses to run as root).  It is stopped at exit by PID:
# pg_ctl stop -m fast, then SIGKILL to the postmaster's PID if it is still
# there; never anything by name.  pg_url DB is a URL ferry-server --db
# takes; pg_createdb DB makes that database; pg_sql DB SQL runs a query
# and prints its rows unaligned.  Missing PostgreSQL is a failure naming
# the package, not a skip: tests/deps.sh installs it.

PG_BIN=${FERRY_PG_BIN:-/usr/lib/postgresql/15/bin}
pg_dir=""
pg_pid=""

# pg_as CMD [ARGS...]: run CMD as the cluster's owner.
pg_as() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

pg_start() {
	[ -n "$pg_pid" ] && return 0
	for _b in initdb pg_ctl psql; do
		if [ ! -x "$PG_BIN/$_b" ]; then
			echo "PostgreSQL 15 is not installed ($PG_BIN/$_b is" \
			    "missing): install the Debian packages postgresql" \
			    "and libpq-dev (tests/deps.sh does)"
			return 1
		fi
	done
	pg_dir=$TEST_DIR/pg
	mkdir -p "$pg_dir" || return 1
	if [ "$(id -u)" -eq 0 ]; then
		# The cluster's owner must reach its directory.
		chmod 0711 "$TEST_DIR" &&
		chown postgres:postgres "$pg_dir" || return 1
	fi
	chmod 0700 "$pg_dir"
	if ! pg_as "$PG_BIN/initdb" -D "$pg_dir/data" -A trust -U postgres \
	    --no-sync -E UTF8 --locale=C >"$pg_dir/initdb.log" 2>&1; then
		echo "initdb failed:"
		cat "$pg_dir/initdb.log"
		return 1
	fi
	# In the configuration file, so a restart keeps it.
	cat >>"$pg_dir/data/postgresql.conf" <<PGCONF
listen_addresses = ''
unix_socket_directories = '$pg_dir'
fsync = off
max_connections = 200
PGCONF
	# Stop it at exit, before test-lib removes the directory.
	trap 'pg_stop; test_cleanup' EXIT
	pg_ctl_start
}

# pg_ctl_start: start the cluster made by pg_start; its PID in $pg_pid.
pg_ctl_start() {
	if ! pg_as "$PG_BIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/log" -w \
	    -t "$((FERRY_TEST_WAIT * 3))" start >"$pg_dir/pg_ctl.log" 2>&1; then
		echo "pg_ctl start failed:"
		cat "$pg_dir/pg_ctl.log" "$pg_dir/log"
		return 1
	fi
	pg_pid=$(head -n 1 "$pg_dir/data/postmaster.pid")
	case $pg_pid in
	""|*[!0-9]*)
		echo "no postmaster PID in $pg_dir/data/postmaster.pid"
		pg_pid=""
		return 1
		;;
	esac
	return 0
}

# pg_stop: fast shutdown, then the postmaster's PID if it lingers.
pg_stop() {
	[ -n "$pg_pid" ] || return 0
	pg_as "$PG_BIN/pg_ctl" -D "$pg_dir/data" -m fast -w \
	    -t "$FERRY_TEST_WAIT" stop >/dev/null 2>&1
	if kill -0 "$pg_pid" 2>/dev/null &&
	    grep -q "^$pg_pid\$" "$pg_dir/data/postmaster.pid" 2>/dev/null; then
		kill -KILL "$pg_pid" 2>/dev/null
	fi
	pg_pid=""
}

# pg_restart: stop (fast) and start the same cluster again.
pg_restart() {
	pg_stop
	pg_ctl_start
}

pg_url() {
	echo "postgresql:///$1?host=$pg_dir&user=postgres"
}

# pg_sql DB SQL: the rows, unaligned, "|" between columns.
pg_sql() {
	"$PG_BIN/psql" -X -q -A -t -h "$pg_dir" -U postgres -d "$1" \
	    -v ON_ERROR_STOP=1 -c "$2"
}

pg_createdb() {
	pg_start || return 1
	pg_sql postgres "CREATE DATABASE \"$1\"" >/dev/null
}

# pg_session_begin DB OUT SQL: a psql session on DB that runs SQL in a
# transaction it keeps open (holding its locks) until pg_session_commit,
# its output in OUT ("1" once SQL ran).  It reads a FIFO this shell holds
# open on fd 3 (read-write: opening it so does not wait for a reader).
# One session at a time.
pg_session_begin() {
	rm -f "$TEST_DIR/pg-session.in" && mkfifo "$TEST_DIR/pg-session.in" &&
	exec 3<>"$TEST_DIR/pg-session.in" &&
	test_bg "$PG_BIN/psql" -X -q -A -t -h "$pg_dir" -U postgres -d "$1" \
	    -v ON_ERROR_STOP=1 <"$TEST_DIR/pg-session.in" >"$2" 2>&1 3>&- &&
	pg_session_pid=$test_bg_pid &&
	printf 'BEGIN;\n%s\nSELECT 1;\n' "$3" >&3
}

# pg_session_commit: COMMIT the session's transaction; it exits 0.
pg_session_commit() {
	printf 'COMMIT;\n\\q\n' >&3 && exec 3>&- &&
	test_wait_exit "$pg_session_pid" 30 && test "$test_exit_status" = 0
}

# pg_lock_waiters DB: how many ferry-server connections to DB wait on a
# lock.
pg_lock_waiters() {
	pg_sql "$1" "SELECT count(*) FROM pg_stat_activity
	    WHERE application_name = 'ferry-server' AND wait_event_type = 'Lock'"
}
