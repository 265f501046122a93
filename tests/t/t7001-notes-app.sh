#!/bin/sh
# Guards issue 12's promise of a desktop app on libferry (examples/notes,
# ferry-notes, GTK 4), run as a person would under Xvfb: two windows on
# two devices (ferryd A and B, one ferry-server).  Text typed into A's
# window with real X keystrokes is saved as you type (A's replica has it
# without any save command), reaches B's replica (ferryctl get) and shows
# in B's open editor without a reload; typing in B comes back to A; both
# header bars say "synced"; B's window finds its ferryd again after a
# restart; a conflict on B shows in B's banner with both values at the
# conflicting field, and "Keep theirs" (Alt+T) settles it through
# Resolve; what a third window (C, on A) is typing is not overwritten by
# a change made elsewhere meanwhile: the change is held, the save (Ctrl+S)
# finds it and asks, and "Keep mine" (Alt+M) saves on top of it; presence
# ("also here: ...") shows in both windows when ferryd has it, another
# window on the same device too, and a closed window leaves the others'
# header bars.  A screenshot of each window is saved (PNG); with
# FERRY_NOTES_SHOTS=DIR they are copied there (examples/notes/screenshot.sh
# regenerates docs/screenshots/ so).
#
# The app tells what it shows through FERRY_NOTES_STATE (a JSON file it
# rewrites when its window changes); every wait on it is bounded.

. "$(dirname "$0")/sync-lib.sh"

NOTES=$FERRY_BUILD_DIR/examples/notes/ferry-notes
[ -x "$NOTES" ] ||
    skip_all "examples/notes is not built (configure --with-examples; Debian: libgtk-4-dev)"
unset FERRY_NOTES_SAVE_MS
for _p in Xvfb xdotool import; do
	command -v "$_p" >/dev/null 2>&1 ||
	    skip_all "$_p is missing (tests/deps.sh installs xvfb xdotool imagemagick)"
done

# GTK on Xvfb's X11, drawn in software, with no session bus, settings
# daemon or accessibility bus to reach (none runs here).
GDK_BACKEND=x11
GSK_RENDERER=cairo
GTK_A11Y=none
NO_AT_BRIDGE=1
GSETTINGS_BACKEND=memory
DBUS_SESSION_BUS_ADDRESS=unix:path=$TEST_DIR/no-session-bus
export GDK_BACKEND GSK_RENDERER GTK_A11Y NO_AT_BRIDGE GSETTINGS_BACKEND \
    DBUS_SESSION_BUS_ADDRESS

# syncd_start NAME SERVER [ARGS...]: sync-lib's, with NAME.conf (the
# device's name), also when offline_edits starts B again.
syncd_start() {
	_sd_name=$1
	_sd_srv=$2
	shift 2
	server_port "$_sd_srv" >/dev/null
	ferryd_start "$_sd_name" --remote "$(server_url "$_sd_srv")" \
	    --config "$TEST_DIR/$_sd_name.conf" "$@"
}

# On failure, the apps' output too, after the daemons' and servers' logs.
test_dump_logs() {
	for _log in "$TEST_DIR"/*/ferryd.log "$TEST_DIR"/*/ferry-server.log \
	    "$TEST_DIR"/*.app.log; do
		[ -f "$_log" ] || continue
		echo "--- last lines of $_log:"
		tail -n 25 "$_log"
	done
}

# notes_start NAME: ferry-notes on ferryd NAME, window title
# "ferry notes: NAME"; its window id in $TEST_DIR/NAME.wid.  In a
# sanitizer build ASan and UBSan errors in the app still fail it, but not
# LeakSanitizer: it would report what GTK, Pango and fontconfig keep for
# the life of the process (theirs, not the app's).
# notes_start_as WINDOW NAME: the same, a window named WINDOW on NAME;
# FERRY_NOTES_SAVE_MS is passed on if set.
notes_start() {
	notes_start_as "$1" "$1"
}

notes_start_as() {
	rm -f "$TEST_DIR/$1.state"
	test_bg env FERRY_NOTES_STATE="$TEST_DIR/$1.state" \
	    FERRY_NOTES_SAVE_MS="${FERRY_NOTES_SAVE_MS:-300}" \
	    ASAN_OPTIONS="$ASAN_OPTIONS:detect_leaks=0" "$NOTES" \
	    --socket "$(ferryd_sock "$2")" --title "ferry notes: $1" \
	    --name "window-$1" >"$TEST_DIR/$1.app.log" 2>&1
	eval "notes_pid_$1=$test_bg_pid"
	test_wait_until 30 "xdotool search --name '^ferry notes: $1\$' \
	    >'$TEST_DIR/$1.wid' 2>/dev/null && test -s '$TEST_DIR/$1.wid'" &&
	test_wait_until 30 "test -s '$TEST_DIR/$1.state'"
}

# shows NAME EXTENDED-REGEX: NAME's window state matches (bounded wait).
shows() {
	test_wait_until 30 "grep -Eq -- '$2' '$TEST_DIR/$1.state'" || {
		echo "ferry-notes $1 shows:"
		cat "$TEST_DIR/$1.state"
		echo
		cat "$TEST_DIR/$1.app.log"
		return 1
	}
}

# type_into NAME TEXT: focus NAME's window, type TEXT with X keystrokes.
type_into() {
	_wid=$(head -n 1 "$TEST_DIR/$1.wid")
	timeout 20 xdotool windowfocus --sync "$_wid" &&
	timeout 60 xdotool type --delay 40 "$2"
}

# key_into NAME KEYS: press KEYS (xdotool key names) in NAME's window.
key_into() {
	_wid=$(head -n 1 "$TEST_DIR/$1.wid")
	timeout 20 xdotool windowfocus --sync "$_wid" &&
	timeout 20 xdotool key "$2"
}

# click_in NAME X Y: raise NAME's window (the windows overlap: there is
# no window manager) and click at X,Y in it.
click_in() {
	_wid=$(head -n 1 "$TEST_DIR/$1.wid")
	timeout 20 xdotool windowraise "$_wid" &&
	timeout 20 xdotool mousemove --window "$_wid" --sync "$2" "$3" &&
	timeout 20 xdotool click 1
}

# shot NAME FILE: a PNG of NAME's window, copied to $FERRY_NOTES_SHOTS.
shot() {
	timeout 20 xdotool windowraise "$(head -n 1 "$TEST_DIR/$1.wid")" &&
	timeout 30 import -window "$(head -n 1 "$TEST_DIR/$1.wid")" "$2" &&
	test -s "$2" &&
	if [ -n "${FERRY_NOTES_SHOTS:-}" ]; then
		cp "$2" "$FERRY_NOTES_SHOTS/$2"
	fi
}

# note_text NAME: the text of notes/n1 on ferryd NAME, via ferryctl.
note_text() {
	ctl_bounded 10 "$1" --json get notes n1 >"$TEST_DIR/.get" &&
	grep -o '"text":"[^"]*"' "$TEST_DIR/.get" | cut -d'"' -f4
}

test_expect_success 'setup: Xvfb, one server, ferryd A and B syncing' '
	test_bg Xvfb -displayfd 1 -screen 0 1024x768x24 -nolisten tcp \
	    >xvfb.out 2>xvfb.log &&
	test_wait_until 30 "grep -q \"^[0-9]\" xvfb.out" &&
	DISPLAY=:$(head -n 1 xvfb.out) && export DISPLAY &&
	printf "[ferryd]\ndevice_name = laptop-1\n" >A.conf &&
	printf "[ferryd]\ndevice_name = laptop-2\n" >B.conf &&
	server_start s --open &&
	syncd_start A s &&
	syncd_start B s &&
	put_ok A notes n1 "{\"text\":\"\",\"title\":\"Groceries\"}" &&
	put_ok A notes n2 "{\"text\":\"Tram 28, Alfama\",\"title\":\"Trip to Lisbon\"}" &&
	sync_all A B
'

fcall A Who '{"collection":"notes"}' >who.out 2>&1
grep -q '"present":' who.out && test_set_prereq PRESENCE

test_expect_success 'both windows open, list the note and edit it' '
	notes_start A &&
	notes_start B &&
	shows A "\"note\":\"n1\"" &&
	shows B "\"note\":\"n1\"" &&
	shows A "\"notes\":\\[\"Groceries\",\"Trip to Lisbon\"\\]" &&
	shows B "\"note_title\":\"Groceries\""
'

test_expect_success 'text typed in A is saved as it is typed, without a save' '
	type_into A "milk and bread" &&
	shows A "\"text\":\"milk and bread\"" &&
	test_wait_until 30 "test \"\$(note_text A)\" = \"milk and bread\""
'

test_expect_success 'it reaches B'"'"'s replica and B'"'"'s open editor' '
	test_wait_until 30 "test \"\$(note_text B)\" = \"milk and bread\"" &&
	shows B "\"text\":\"milk and bread\"" &&
	shows B "\"dirty\":false"
'

test_expect_success 'typing in B comes back to A' '
	key_into B "ctrl+End" &&
	type_into B ", eggs" &&
	test_wait_until 30 \
	    "test \"\$(note_text A)\" = \"milk and bread, eggs\"" &&
	shows A "\"text\":\"milk and bread, eggs\""
'

test_expect_success 'both header bars say synced' '
	shows A "\"sync\":\"synced\"" &&
	shows B "\"sync\":\"synced\""
'

test_expect_success PRESENCE 'presence: each window sees the other device' '
	{ shows A "\"presence\":\"also here: [^\"]*laptop-2" &&
	  shows B "\"presence\":\"also here: [^\"]*laptop-1"; } || {
		echo "who on A:"; ctl_bounded 10 A --json who
		echo "who on B:"; ctl_bounded 10 B --json who
		false
	}
'

test_expect_success 'a screenshot of each window' '
	shot A notes-a.png &&
	shot B notes-b.png
'

test_expect_success 'a conflict on B shows both values; Keep theirs resolves it' '
	offline_edits \
	    "put_ok A notes n1 \"{\\\"text\\\":\\\"A side\\\",\\\"title\\\":\\\"Groceries\\\"}\"" \
	    "put_ok B notes n1 \"{\\\"text\\\":\\\"B side\\\",\\\"title\\\":\\\"Groceries\\\"}\"" &&
	shows B "\"sync\":\"1 conflict\"" &&
	shows B "\"error\":\"\"" &&
	shows B "\"banner\":\"Conflict at /text.nmine: B side.ntheirs: A side\"" &&
	shot B notes-conflict.png &&
	key_into B "alt+t" &&
	shows B "\"banner\":null" &&
	shows B "\"text\":\"A side\"" &&
	test_wait_until 30 "test \"\$(note_text B)\" = \"A side\"" &&
	conflict_ids B >ids &&
	test_equal "open conflicts on B" "" "$(cat ids)" &&
	shows B "\"sync\":\"synced\""
'

test_expect_success 'what is being typed is not overwritten by a change from elsewhere' '
	FERRY_NOTES_SAVE_MS=3600000 notes_start_as C A &&
	shows C "\"note\":\"n1\",\"note_title\":\"Groceries\",\"text\":\"A side\"" &&
	key_into C "ctrl+End" &&
	type_into C " and C" &&
	shows C "\"text\":\"A side and C\",\"dirty\":true" &&
	put_ok A notes n1 "{\"text\":\"from elsewhere\",\"title\":\"Groceries\"}" &&
	shows A "\"text\":\"from elsewhere\"" &&
	shows C "\"text\":\"A side and C\",\"dirty\":true,\"held\":true" &&
	key_into C "ctrl+s" &&
	shows C "\"banner\":\"Changed elsewhere while you typed at /text.nmine: A side and C.ntheirs: from elsewhere\"" &&
	test_equal "n1 on A while C asks" "from elsewhere" "$(note_text A)" &&
	shot C notes-typing.png &&
	key_into C "alt+m" &&
	shows C "\"banner\":null" &&
	shows C "\"text\":\"A side and C\",\"dirty\":false" &&
	test_wait_until 30 "test \"\$(note_text A)\" = \"A side and C\"" &&
	shows A "\"text\":\"A side and C\""
'

test_expect_success PRESENCE 'presence: A lists the other window on its device' '
	shows A "\"presence\":\"also here: [^\"]*window-C" &&
	shows C "\"presence\":\"also here: [^\"]*laptop-2"
'

# presence_at NAME WINDOW ID: ferryd NAME holds one presence entry of
# the window named WINDOW, and it is at note ID (ferryctl who).
presence_at() {
	ctl_bounded 10 "$1" --json who >"$TEST_DIR/.who" &&
	sed 's/},{"device"/}\n{"device"/g' "$TEST_DIR/.who" |
	    grep "\"name\":\"$2\"" >"$TEST_DIR/.at"
	test "$(wc -l <"$TEST_DIR/.at")" -eq 1 &&
	grep -q "\"id\":\"$3\"" "$TEST_DIR/.at"
}

# The second row of the list ("Trip to Lisbon") is at 50,80 in a window
# of the app's default size.  The entry at the note left must go at once,
# not when its TTL (30 s) runs out: the wait is well below that.
test_expect_success PRESENCE 'opening another note moves the window'"'"'s presence, edits saved first' '
	test_wait_until 30 "presence_at A window-A n1" &&
	key_into A "ctrl+End" &&
	type_into A " and A" &&
	click_in A 50 80 &&
	shows A "\"note\":\"n2\",\"note_title\":\"Trip to Lisbon\"" &&
	test_equal "n1 on A" "A side and C and A" "$(note_text A)" &&
	test_wait_until 10 "presence_at A window-A n2" || {
		cat "$TEST_DIR/.who"
		false
	}
'

# One connection holding two entries (a raw client fed from a FIFO on fd
# 4, opened here at the top level so it outlives the test bodies); its
# entry at n1 goes, the one at n2 stays: A's window must still list it.
# An app that kept entries by session alone dropped both.
if test_have_prereq PRESENCE; then
	. "$FERRY_SRC_DIR/tests/t/presence-lib.sh"
	mkfifo pfifo
	"$VLSEND" "$(ferryd_sock A)" --stream --timeout 120000 <pfifo \
	    >helper.out 2>&1 &
	test_track $!
	exec 4>pfifo
fi

# set_helper ID STATE: SetPresence on the FIFO's connection.
set_helper() {
	printf '%s\0' "{\"method\":\"io.ferry.SetPresence\",\"parameters\":{\"collection\":\"notes\",\"id\":\"$1\",\"state\":$2}}" >&4
}

# seen ID GONE: the watcher obs saw helper's entry at ID come or go.
seen() {
	grep "\"name\":\"helper\"" obs.out | grep "\"id\":\"$1\"" |
	    grep -q "\"gone\":$2"
}

test_expect_success PRESENCE 'presence: one of a connection'"'"'s entries going leaves its others' '
	watcher obs A &&
	set_helper n1 "{\"name\":\"helper\"}" &&
	test_wait_until 10 "seen n1 false" &&
	set_helper n2 "{\"name\":\"helper\"}" &&
	test_wait_until 10 "seen n2 false" &&
	set_helper n1 null &&
	test_wait_until 10 "seen n1 true" &&
	app mark A notes - "{\"name\":\"marker\"}" &&
	shows A "\"presence\":\"also here: [^\"]*marker" &&
	shows A "\"presence\":\"also here: [^\"]*helper" &&
	exec 4>&- &&
	app_close mark &&
	shows A "\"presence\":\"also here: laptop-2, window-C\""
'

test_expect_success 'window C stops on SIGTERM' '
	kill -TERM "$notes_pid_C" &&
	test_wait_exit "$notes_pid_C" 20 &&
	test_equal "C exit status" 0 "$test_exit_status"
'

test_expect_success PRESENCE 'presence: the closed window leaves A'"'"'s header bar' '
	shows A "\"presence\":\"also here: laptop-2\""
'

test_expect_success 'A and B stop on SIGTERM' '
	kill -TERM "$notes_pid_A" "$notes_pid_B" &&
	test_wait_exit "$notes_pid_A" 20 &&
	test_equal "A exit status" 0 "$test_exit_status" &&
	test_wait_exit "$notes_pid_B" 20 &&
	test_equal "B exit status" 0 "$test_exit_status"
'

test_done
