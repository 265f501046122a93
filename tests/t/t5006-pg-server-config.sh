#!/bin/sh
# t5006-pg-server-config: ferry-server reads a configuration file (issue
# 10: "also `db = ...` in its config").  Guards: before, ferry-server had
# no configuration file at all, so `db = postgresql://...` could not be
# said anywhere but on the command line.  Promises: --config FILE (or
# $XDG_CONFIG_HOME/ferry/ferry-server.conf) is read; an unknown key or a
# bad value stops the start with an error naming the file, the line and
# the key (and never quotes a db value, which may hold a password); the
# command line overrides the file; `db = postgresql://...` in the file
# selects the PostgreSQL backend, and `allow` with that file writes the
# key into the database.

. "$(dirname "$0")/server-lib.sh"

# start_refused CONF: ferry-server --config CONF exits 2 at once (bounded)
# without serving; its stderr in err.
start_refused() {
	test_expect_code 2 timeout 30 "$FERRY_SERVER" --config "$1" \
	    --data-dir "$TEST_DIR/refused" --listen 127.0.0.1:0 \
	    </dev/null >out 2>err &&
	test_grep ! "ready: listening" err
}

test_expect_success 'an unknown key: refused, naming file, line and key' '
	printf "[ferry-server]\nopen = yes\n\ncolour = blue\n" >wrongkey.conf &&
	start_refused wrongkey.conf &&
	test_grep "^ferry-server: wrongkey.conf:4: colour: unknown key in \[ferry-server\]: .blue.$" err
'

test_expect_success 'a key outside [ferry-server] or in another section: refused' '
	printf "db = /tmp/x.db\n" >nosect.conf &&
	start_refused nosect.conf &&
	test_grep "nosect.conf:1: db: outside the \[ferry-server\] section" err &&
	printf "[ferryd]\ndata_dir = /tmp\n" >othersect.conf &&
	start_refused othersect.conf &&
	test_grep "othersect.conf:2: data_dir: in unknown section \[ferryd\]" err
'

test_expect_success 'bad values: refused, naming the key and the value' '
	printf "[ferry-server]\nmax_wait = 10s\n" >nan.conf &&
	start_refused nan.conf &&
	test_grep "nan.conf:2: max_wait: not a number: .10s.$" err &&
	printf "[ferry-server]\nmax_waiters = 0\n" >range.conf &&
	start_refused range.conf &&
	test_grep "range.conf:2: max_waiters: out of range 1-1000000: .0.$" err &&
	printf "[ferry-server]\nlisten = localhost\n" >listen.conf &&
	start_refused listen.conf &&
	test_grep "listen.conf:2: listen: not ADDR:PORT or \[ADDR\]:PORT: .localhost.$" err &&
	printf "[ferry-server]\nopen = maybe\n" >bool.conf &&
	start_refused bool.conf &&
	test_grep "bool.conf:2: open: not yes or no: .maybe.$" err &&
	printf "[ferry-server]\ndata_dir = relative/dir\n" >rel.conf &&
	start_refused rel.conf &&
	test_grep "rel.conf:2: data_dir: not an absolute path: .relative/dir.$" err
'

test_expect_success 'a bad db value is named, its text (a password?) is not' '
	printf "[ferry-server]\ndb = mysql://ferry:s3cret@db/ferry\n" >db.conf &&
	start_refused db.conf &&
	test_grep "db.conf:2: db: not a postgresql:// URL" err &&
	test_grep ! s3cret err
'

test_expect_success 'a missing --config file is an error; a syntax error names its line' '
	start_refused "$TEST_DIR/nowhere.conf" &&
	test_grep "nowhere.conf: cannot open: No such file or directory" err &&
	printf "[ferry-server]\nopen yes\n" >syntax.conf &&
	start_refused syntax.conf &&
	test_grep "syntax.conf:2: not a \[section\] or a .key = value. line: .open yes.$" err
'

test_expect_success 'the default file is read without --config' '
	mkdir -p "$XDG_CONFIG_HOME/ferry" &&
	printf "[ferry-server]\nmax_wait = never\n" \
	    >"$XDG_CONFIG_HOME/ferry/ferry-server.conf" &&
	test_expect_code 2 timeout 30 "$FERRY_SERVER" \
	    --data-dir "$TEST_DIR/refused" --listen 127.0.0.1:0 \
	    </dev/null >out 2>err &&
	test_grep "config/ferry/ferry-server.conf:2: max_wait: not a number" err &&
	rm "$XDG_CONFIG_HOME/ferry/ferry-server.conf"
'

test_expect_success 'db = postgresql://... in the file selects PostgreSQL' '
	pg_createdb fromconf &&
	{
		echo "[ferry-server]" &&
		echo "; the store every instance shares" &&
		echo "db = $(pg_url fromconf)" &&
		echo "open = yes" &&
		echo "max_wait = 10" &&
		echo "listen = [::1]:9"
	} >pg.conf &&
	server_start P --config "$TEST_DIR/pg.conf" &&
	test_grep "ready: listening on 127.0.0.1:[0-9]*, database PostgreSQL" \
	    "$(server_log P)" &&
	test_grep "OPEN MODE" "$(server_log P)" &&
	test_grep ! "fromconf" "$(server_log P)" &&
	it=$(item alice put notes c1 0 1 "{\"t\":\"via the config\"}") &&
	push P alice "$it" >reply && test_grep "\"status\":\"applied\"" reply &&
	n=$(pg_sql fromconf "SELECT count(*) FROM changes") &&
	test_equal "changes rows in PostgreSQL" 1 "$n" &&
	test ! -e "$(server_datadir P)/server.db"
'

# held_ms SERVER SINCE: how long a long-poll asking for 30 s is held (a
# longer wait is cut to max_wait) with nothing after SINCE.
held_ms() {
	req "$1" alice --elapsed GET "/v1/changes?since=$2&wait=30" \
	    >poll 2>poll.err &&
	status_is 200 poll >&2 &&
	sed -n "s/^elapsed_ms //p" poll.err
}

test_expect_success 'the command line overrides the file (max_wait, db)' '
	ms=$(held_ms P 1) &&
	echo "held ${ms} ms with max_wait = 10 from the file" &&
	test "$ms" -ge 9000 && test "$ms" -lt 25000 &&
	server_stop P &&
	server_start Q --config "$TEST_DIR/pg.conf" --max-wait 1 \
	    --db "$TEST_DIR/q.db" &&
	test_grep "database $TEST_DIR/q.db" "$(server_log Q)" &&
	ms=$(held_ms Q 0) &&
	echo "held ${ms} ms with --max-wait 1" &&
	test "$ms" -lt 8000 &&
	server_stop Q
'

test_expect_success 'allow with the file writes the key into its database' '
	k=$(key_of bob) &&
	"$FERRY_SERVER" --config "$TEST_DIR/pg.conf" allow "$k" bob >out 2>&1 &&
	test_grep "in the database" out &&
	n=$(pg_sql fromconf "SELECT count(*) FROM allowed_keys") &&
	test_equal "allowed keys in PostgreSQL" 1 "$n"
'

test_done
