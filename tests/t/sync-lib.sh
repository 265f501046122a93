# sync-lib.sh: what the sync end-to-end tests (t2xxx-sync-*.sh) share, on
# top of server-lib.sh (which it sources, and which sources test-lib.sh: a
# script sources only this file).
#
# A script runs one or more ferry-server (server_start NAME --open) and
# ferryd daemons synced with it (syncd_start NAME SERVER), all on 127.0.0.1.
# Everything waits with a bound: sync_wait is io.ferry.Sync {"wait":true}
# through vlsend with a deadline, ctl_bounded runs ferryctl under timeout(1)
# so a daemon that never answers fails the test instead of hanging it.
#
# Bodies in these tests are written compact with sorted keys, as the server
# stores them in its signed records, so the replicas' and the server's texts
# of one body compare equal as strings (no JSON tool needed).
#
# Reading the server (srvclient, signed by the key "probe"):
#     server_doc SERVER C ID >out        GET /v1/docs/C/ID (status, then body)
#     server_changes SERVER >out         every change of its log, one a line
#     server_heads SERVER >out           "collection/id version body" per
#                                        document, from the log (sorted)
# and the same view of a replica: replica_heads NAME C >out.

. "$(dirname "$0")/server-lib.sh"

# syncd_start NAME SERVER [ARGS...]: ferryd NAME syncing with SERVER (whose
# port is assigned now if it was not: the server may start later).
syncd_start() {
	_sd_name=$1
	_sd_srv=$2
	shift 2
	server_port "$_sd_srv" >/dev/null	# assigns it in this shell
	ferryd_start "$_sd_name" --remote "$(server_url "$_sd_srv")" "$@"
}

# sync_wait NAME [SECONDS]: Sync {"wait":true} on NAME; succeeds only on a
# status reply within SECONDS (default 30).  The reply is in
# $TEST_DIR/.sync.
sync_wait() {
	_sw_t=${2:-30}
	vlcall "$1" '{"method":"io.ferry.Sync","parameters":{"wait":true}}' \
	    --timeout $((_sw_t * 1000)) >"$TEST_DIR/.sync" || {
		cat "$TEST_DIR/.sync"
		return 1
	}
	if ! grep -q '^{"parameters":{"status":{' "$TEST_DIR/.sync"; then
		echo "sync_wait $1: no status reply:"
		cat "$TEST_DIR/.sync"
		return 1
	fi
	return 0
}

# sync_all NAME...: sync_wait each in turn (push, then pull what the
# earlier ones pushed).
sync_all() {
	for _sa in "$@"; do
		sync_wait "$_sa" || return 1
	done
}

# ctl_bounded SECONDS NAME ARGS...: ferryctl under timeout(1) (exit 124
# when it had to be stopped).
ctl_bounded() {
	_cb_t=$1
	_cb_sock=$(ferryd_sock "$2")
	shift 2
	timeout -k 2 "$_cb_t" "$FERRYCTL" --socket "$_cb_sock" "$@"
}

# timed_log NAME C ID: ferryctl log on NAME, bounded at 20 s; the seconds
# it took in $took, its output in log.out and err (in the current
# directory), then printed.
timed_log() {
	_t0=$(date +%s)
	ctl_bounded 20 "$1" log "$2" "$3" >log.out 2>err
	_rc=$?
	took=$(( $(date +%s) - _t0 ))
	cat log.out err
	return $_rc
}

# now_ms: the clock in milliseconds.
now_ms() {
	echo $(( $(date +%s%N) / 1000000 ))
}

# put NAME C ID BODY / del NAME C ID / get NAME C ID: one call, the reply
# printed.
put() {
	fcall "$1" Put "{\"collection\":\"$2\",\"id\":\"$3\",\"body\":$4}"
}

del() {
	fcall "$1" Delete "{\"collection\":\"$2\",\"id\":\"$3\"}"
}

get() {
	fcall "$1" Get "{\"collection\":\"$2\",\"id\":\"$3\"}"
}

# put_ok NAME C ID BODY: a Put that must succeed.
put_ok() {
	put "$@" >"$TEST_DIR/.put" &&
	test_grep '^{"parameters":{"doc":{' "$TEST_DIR/.put"
}

# body_of FILE: the "body" object of a doc or event reply in FILE (it is
# the last member), or nothing for a tombstone.
body_of() {
	grep -o '"body":{.*' "$1" | head -n 1 |
	    sed 's/^"body"://; s/}},"continues":true}$//; s/}}}$//'
}

# status_of NAME: Status of NAME into $TEST_DIR/.status (and stdout).
status_of() {
	fcall "$1" Status >"$TEST_DIR/.status" &&
	test_grep '"status":{' "$TEST_DIR/.status" >&2 &&
	cat "$TEST_DIR/.status"
}

# status_int NAME FIELD / status_str NAME FIELD
status_int() {
	status_of "$1" | json_int "$2"
}

status_str() {
	status_of "$1" | json_str "$2"
}

# --- the server's view (requests signed by the key "probe") ---

# server_doc SERVER C ID: GET /v1/docs/C/ID (status line, then body).
server_doc() {
	req "$1" probe GET "/v1/docs/$2/$3"
}

# server_changes SERVER: every change of the server's log, one JSON object
# a line (keys sorted: {["body":..,]"change":..,"collection":..,
# "deleted":..,"id":..,"seq":..,"version":..}), paged (bounded: at most
# 200 pages).
server_changes() {
	_sc_since=0
	_sc_i=0
	while [ $_sc_i -lt 200 ]; do
		req "$1" probe GET "/v1/changes?since=$_sc_since&limit=1000" \
		    >"$TEST_DIR/.page" || return 1
		status_is 200 "$TEST_DIR/.page" >&2 || return 1
		tail -n +2 "$TEST_DIR/.page" | changes_unsigned |
		    sed 's/^{"changes":\[//; s/\],"head":[0-9]*,"last_seq":[0-9]*}$//' |
		    sed 's/},{"\(body\|change\)":/}\n{"\1":/g' | grep '^{"'
		_sc_tail=$(tail -n +2 "$TEST_DIR/.page" |
		    grep -o '"head":[0-9]*,"last_seq":[0-9]*}$')
		_sc_head=${_sc_tail#\"head\":}
		_sc_head=${_sc_head%%,*}
		_sc_last=${_sc_tail##*:}
		_sc_last=${_sc_last%\}}
		[ -n "$_sc_last" ] && [ -n "$_sc_head" ] || {
			echo "server_changes: cannot read the page:" >&2
			cat "$TEST_DIR/.page" >&2
			return 1
		}
		[ "$_sc_last" -ge "$_sc_head" ] && return 0
		_sc_since=$_sc_last
		_sc_i=$((_sc_i + 1))
	done
	echo "server_changes: more than 200 pages" >&2
	return 1
}

# change_ids FILE: the change id of every line of a server_changes output.
change_ids() {
	grep -o '"change":"[^"]*"' "$1" | cut -d'"' -f4
}

# change_lines FILE [COLLECTION]: a server_changes output as
# "collection/id version deleted body" lines (body empty for a tombstone),
# in log order.
change_lines() {
	sed -n 's/^{\("body":\(.*\),\)\{0,1\}"change":"[^"]*","collection":"\([^"]*\)","deleted":\([a-z]*\),"id":"\([^"]*\)","seq":[0-9]*,"version":\([0-9]*\)}$/\3\/\5 \6 \4 \2/p' \
	    "$1" | awk -v c="${2:-}" 'c == "" || index($1, c "/") == 1'
}

# server_heads SERVER [COLLECTION]: the latest state of every document in
# the server's log: "collection/id version body" (body "-" for a
# tombstone), sorted.
server_heads() {
	server_changes "$1" >"$TEST_DIR/.changes" || return 1
	_sh_n=$(change_lines "$TEST_DIR/.changes" | wc -l)
	if [ "$_sh_n" -ne "$(wc -l <"$TEST_DIR/.changes")" ]; then
		echo "server_heads: cannot read every change of:" >&2
		head -n 5 "$TEST_DIR/.changes" >&2
		return 1
	fi
	change_lines "$TEST_DIR/.changes" "${2:-}" | awk '
		{
			k = $1; v[k] = $2
			b = $0; sub(/^[^ ]* [^ ]* [^ ]* /, "", b)
			body[k] = ($3 == "true") ? "-" : b
		}
		END { for (k in v) print k, v[k], body[k] }' | LC_ALL=C sort
}

# replica_heads NAME COLLECTION: the same view of ferryd NAME (documents,
# not tombstones, of one collection; List pages followed): "C/ID version
# body", sorted.
replica_heads() {
	_rh_after=""
	_rh_i=0
	: >"$TEST_DIR/.rheads"
	while [ $_rh_i -lt 1000 ]; do
		if [ -z "$_rh_after" ]; then
			_rh_p="{\"collection\":\"$2\",\"limit\":1000}"
		else
			_rh_p="{\"collection\":\"$2\",\"limit\":1000,\"after\":\"$_rh_after\"}"
		fi
		fcall "$1" List "$_rh_p" >"$TEST_DIR/.list" || return 1
		test_grep '^{"parameters":{"docs":\[' "$TEST_DIR/.list" >&2 ||
		    return 1
		sed 's/^{"parameters":{"docs":\[//; s/\]\(,"next":"[^"]*"\)\{0,1\}}}$//' \
		    "$TEST_DIR/.list" | sed 's/},{"collection":/}\n{"collection":/g' |
		    sed -n 's/^{"collection":"\([^"]*\)","id":"\([^"]*\)","rev":[0-9]*,"version":\([0-9]*\),.*"body":\(.*\)}$/\1\/\2 \3 \4/p' \
		    >>"$TEST_DIR/.rheads"
		_rh_after=$(json_str next "$TEST_DIR/.list")
		[ -z "$_rh_after" ] && break
		_rh_i=$((_rh_i + 1))
	done
	LC_ALL=C sort "$TEST_DIR/.rheads"
}

# watch_bg NAME OUT N [PARAMS]: a background Watch on ferryd NAME that
# stops after N replies (the ready reply included), up to 30 s; its pid is
# in $wpid.  Returns once the subscription is confirmed.
watch_bg() {
	_wb_p=${4-}
	[ -n "$_wb_p" ] || _wb_p='{}'
	printf '%s\0' "{\"method\":\"io.ferry.Watch\",\"parameters\":$_wb_p,\"more\":true}" \
	    >"$TEST_DIR/.watch.call"
	# Empty OUT first: the redirection below happens in the background,
	# and the wait must not see an earlier watcher's ready line.
	: >"$2"
	test_bg "$VLSEND" "$(ferryd_sock "$1")" -n "$3" --timeout 30000 \
	    <"$TEST_DIR/.watch.call" >"$2" 2>&1
	wpid=$test_bg_pid
	test_wait_until 10 "grep -q '\"ready\":true' '$2'"
}

# watch_done OUT: the watcher got all it waited for.
watch_done() {
	test_wait_exit "$wpid" 40 || return 1
	if [ "$(tail -n 1 "$1")" != DONE ]; then
		echo "watcher did not get its replies:"
		cat "$1"
		return 1
	fi
	return 0
}

# edit_conflict SERVER A B C ID BASE BODY_A BODY_B: one open conflict on B
# for C/ID, deterministically: both hold BASE, then with SERVER down A
# writes BODY_A and B BODY_B, B stops, SERVER comes back, A syncs first,
# then B starts again and syncs (its stale push conflicts).  The conflict
# ids are left in $TEST_DIR/.ids.
edit_conflict() {
	put_ok "$2" "$4" "$5" "$6" &&
	sync_all "$2" "$3" &&
	server_stop "$1" &&
	put_ok "$2" "$4" "$5" "$7" &&
	put_ok "$3" "$4" "$5" "$8" &&
	ferryd_stop "$3" &&
	server_start "$1" --open &&
	sync_wait "$2" &&
	syncd_start "$3" "$1" &&
	sync_wait "$3" &&
	conflict_ids "$3" >"$TEST_DIR/.ids"
}

# conflict_ids NAME: the conflict_id of every open conflict on NAME (ids
# may be numbers or strings).
conflict_ids() {
	fcall "$1" Conflicts >"$TEST_DIR/.conflicts" || return 1
	test_grep '^{"parameters":{"conflicts":\[' "$TEST_DIR/.conflicts" >&2 ||
	    return 1
	grep -o '"conflict_id":\("[^"]*"\|[0-9]*\)' "$TEST_DIR/.conflicts" |
	    sed 's/^"conflict_id"://; s/"//g'
}

# conflict_json ID: ID as a JSON value (a number stays a number).
conflict_json() {
	case $1 in
	''|*[!0-9]*) echo "\"$1\"" ;;
	*) echo "$1" ;;
	esac
}

# offline_edits 'COMMANDS ON A' 'COMMANDS ON B': a deterministic race
# between ferryd A and B on server s: with the server down A and B both
# write, B stops, the server comes back, A syncs first, then B starts and
# syncs (so B's edits meet A's as conflicts on B).
offline_edits() {
	server_stop s &&
	eval "$1" &&
	eval "$2" &&
	ferryd_stop B &&
	server_start s --open &&
	sync_wait A &&
	syncd_start B s &&
	sync_wait B
}

# Skip the script when the tools are missing.
command -v timeout >/dev/null 2>&1 || skip_all "timeout(1) is missing"

# sync_settle NAME: until NAME's engine says idle (bounded, 10 s).  After
# Sync(wait) the puller may still be taking the device's own changes back
# from the server (a page, then an immediate next page): that is syncing.
sync_settle() {
	test_wait_until 10 "status_of $1 | grep -q '\"state\":\"idle\"'"
}
