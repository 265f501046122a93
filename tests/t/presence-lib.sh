# presence-lib.sh: what the presence tests (t0040, t2040, t5040) share,
# sourced after test-lib.sh (or sync-lib.sh).  Apps and watchers are
# tests/tools/presencer processes in the background, tracked (test_bg):
#     app NAME DAEMON C ID STATE [REFRESH_MS]
#         an app on ferryd DAEMON holding presence at C/ID (ID "-": none)
#         with STATE, set again every REFRESH_MS if given; it closes its
#         connection cleanly once the file NAME.close exists (app_close
#         NAME); its pid is in app_pid_NAME.
#     watcher NAME DAEMON
#         a presence watcher on DAEMON whose replies go to NAME.out, one
#         a line: "<Unix ms> <reply JSON>".

PRESENCER=$FERRY_BUILD_DIR/tests/tools/presencer

app() {
	_n=$1
	_sock=$(ferryd_sock "$2")
	shift 2
	rm -f "$_n.close" &&
	test_bg "$PRESENCER" --until "$_n.close" "$_sock" set "$@" </dev/null \
	    >"$_n.out" 2>&1 &&
	eval "app_pid_$_n=$test_bg_pid" &&
	test_wait_until 10 "grep -qx set $_n.out"
}

app_close() {
	: >"$1.close"
}

watcher() {
	test_bg "$PRESENCER" --timeout 120 "$(ferryd_sock "$2")" watch \
	    </dev/null >"$1.out" 2>&1 &&
	test_wait_until 10 "grep -qx ready $1.out"
}
