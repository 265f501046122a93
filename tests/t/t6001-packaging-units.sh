#!/bin/sh
# Guards the systemd units `make install` puts on a machine (issue 11,
# "systemd units").  The bugs: ferryd.service said ExecStart=/usr/bin/ferryd
# whatever the prefix, so a /usr/local install started nothing; it was
# Type=notify even in a build without libsystemd, where ferryd cannot
# notify and systemd waits for the start timeout; the units went to
# PREFIX/lib/systemd/user whatever systemd said, ferry-server.service among
# them as a user unit waiting for network-online.target, which a user
# manager never reaches; and their hardening scored 6.6 in
# `systemd-analyze security`.  Promised now: ExecStart names the installed
# binary, Type matches the build, `systemd-analyze verify` of the installed
# units (man pages included) is clean, the exposure is at most 4.0 for the
# user unit ferryd.service and 2.5 for the system unit
# ferry-server.service, every setting the analysis counts against a unit
# is either set or named in a comment saying why not, and the command lines
# of ExecStart= start and serve.

. "$(dirname "$0")/test-lib.sh"

command -v systemd-analyze >/dev/null 2>&1 && test_set_prereq ANALYZE

# The build's own install, into $TEST_DIR/root.
root=$TEST_DIR/root

# unit NAME: the installed unit file NAME (one), or fail saying so.
unit() {
	_u=$(find "$root" -name "$1" -type f | head -n 1)
	if [ -z "$_u" ]; then
		echo "$1 was not installed under $root:"
		(cd "$root" && find . -type f)
		return 1
	fi
	echo "$_u"
}

# exec_path NAME: the program ExecStart= of NAME runs.
exec_path() {
	sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$(unit "$1")"
}

# The configured bindir, expanded as make does (configure writes it as
# ${exec_prefix}/bin).
mkvar() {
	sed -n "s/^$1 = //p" "$FERRY_BUILD_DIR/Makefile"
}
prefix=$(mkvar prefix)
exec_prefix=$(eval "echo \"$(mkvar exec_prefix)\"")
bindir=$(eval "echo \"$(mkvar bindir)\"")

test_expect_success 'make install puts the units and man pages in place' '
	make -s -C "$FERRY_BUILD_DIR" install DESTDIR="$root" >install.out 2>&1 ||
	    { cat install.out; false; } &&
	test -n "$bindir" &&
	unit ferryd.service && unit ferryd.socket &&
	unit ferry-server.service &&
	test -f "$root$bindir/ferryd" && test -f "$root$bindir/ferry-server"
'

test_expect_success 'ExecStart= names the installed binary' '
	test_equal "ferryd.service ExecStart" "$bindir/ferryd" \
	    "$(exec_path ferryd.service)" &&
	test_equal "ferry-server.service ExecStart" "$bindir/ferry-server" \
	    "$(exec_path ferry-server.service)"
'

test_expect_success 'Type=notify only in a build that can notify' '
	if grep -q "^#define HAVE_SYSTEMD 1" "$FERRY_BUILD_DIR/autoconfig.h"; then
		want=notify
	else
		want=exec
	fi &&
	test_equal "ferryd.service Type" "$want" \
	    "$(sed -n "s/^Type=//p" "$(unit ferryd.service)")"
'

test_expect_success 'user units do not wait for network-online.target' '
	for u in ferryd.service ferryd.socket; do
		test_grep ! "^[^#]*network-online" "$(unit $u)" || return 1
	done &&
	case $(unit ferryd.service) in
	*/systemd/user/ferryd.service) ;;
	*) echo "ferryd.service is not in a user unit directory"; false ;;
	esac &&
	case $(unit ferry-server.service) in
	*/systemd/system/ferry-server.service) ;;
	*) echo "ferry-server.service is not a system unit"; false ;;
	esac
'

# verify checks that ExecStart= is executable, on this machine's root: the
# copies point at the binaries installed in $root, and man looks there
# for the pages Documentation= names.
verify_copy() {
	mkdir -p "$TEST_DIR/verify" &&
	sed "s|^ExecStart=$bindir/|ExecStart=$root$bindir/|" "$(unit "$1")" \
	    >"$TEST_DIR/verify/$1"
}

test_expect_success ANALYZE 'systemd-analyze verify of the installed units is clean' '
	verify_copy ferryd.service && verify_copy ferryd.socket &&
	verify_copy ferry-server.service &&
	man=$(find "$root" -type d -name man | head -n 1) &&
	if command -v man >/dev/null 2>&1; then
		manopt=--man=yes
	else
		manopt=--man=no
	fi &&
	st=0 &&
	{ MANPATH=$man systemd-analyze --user verify $manopt \
	    verify/ferryd.service verify/ferryd.socket >verify.out 2>&1 ||
	    st=$?; } &&
	{ MANPATH=$man systemd-analyze verify $manopt \
	    verify/ferry-server.service >>verify.out 2>&1 || st=$?; } &&
	test_cmp /dev/null verify.out &&
	test_equal "systemd-analyze verify status" 0 "$st"
'

test_expect_success 'Documentation= names man pages that are installed' '
	for u in ferryd.service ferryd.socket ferry-server.service; do
		for page in $(sed -n "s/^Documentation=//p" "$(unit $u)"); do
			case $page in
			man:*"("*")")
				name=${page#man:}; sect=${name#*\(}; sect=${sect%\)}
				name=${name%%\(*}
				f=$(find "$root" -path "*/man$sect/$name.$sect")
				test -n "$f" ||
				    { echo "$u: $page is not installed"; return 1; }
				;;
			*) echo "$u: $page is not a man page"; return 1 ;;
			esac
		done
	done
'

# exposure USER|SYSTEM NAME: the "Overall exposure level" of unit NAME.
exposure() {
	_mode=
	[ "$1" = user ] && _mode=--user
	systemd-analyze $_mode security --offline=yes "$(unit "$2")" \
	    >"security.$2" 2>&1
	sed -n "s/.*Overall exposure level for $2: \([0-9.]*\).*/\1/p" \
	    "security.$2"
}

# at_most WHAT LIMIT VALUE
at_most() {
	awk -v v="$3" -v m="$2" 'BEGIN { exit !(v != "" && v + 0 <= m + 0) }' &&
	    return 0
	echo "$1: exposure '$3', want at most $2"
	return 1
}

# Every setting the analysis holds against NAME (an "✗" line) is set in
# the unit or named in one of its comments.
explained() {
	_f=$(unit "$1")
	for _s in $(sed -n "s/^✗ \([A-Za-z]*\)=.*/\1/p" "security.$1" | sort -u); do
		grep -q "^$_s=" "$_f" && continue
		grep -q "^#.*[^A-Za-z]$_s=" "$_f" && continue
		echo "$1: $_s= is left out without a comment saying why"
		return 1
	done
}

test_expect_success ANALYZE 'ferryd.service exposure is at most 4.0, gaps explained' '
	e=$(exposure user ferryd.service) &&
	echo "ferryd.service: $e" &&
	at_most ferryd.service 4.0 "$e" &&
	explained ferryd.service
'

test_expect_success ANALYZE 'ferry-server.service exposure is at most 2.5, gaps explained' '
	e=$(exposure system ferry-server.service) &&
	echo "ferry-server.service: $e" &&
	at_most ferry-server.service 2.5 "$e" &&
	explained ferry-server.service
'

# The command lines of ExecStart=, run as they are (ferry-server on port
# 0 and with %S, the state directory root, in the test directory).
test_expect_success 'ferry-server serves with the arguments of its ExecStart=' '
	args=$(sed -n "s/^ExecStart=[^ ]* //p" "$(unit ferry-server.service)" |
	    sed -e "s|%S|$TEST_DIR/state|g" -e "s|:8765|:0|") &&
	mkdir -p state/ferry-server && chmod 700 state/ferry-server &&
	test_bg "$FERRY_BUILD_DIR/ferry-server" $args </dev/null \
	    >server.log 2>&1 &&
	srv=$test_bg_pid &&
	test_wait_log server.log "ready: listening on 127.0.0.1:" $srv &&
	{ test -f state/ferry-server/server.db || { echo "ExecStart=" \
	    "did not keep the database in the StateDirectory: $args"; false; }; } &&
	kill -TERM $srv && test_wait_exit $srv && test_equal status 0 \
	    "$test_exit_status"
'

test_expect_success 'ferryd serves with the arguments of its ExecStart=' '
	args=$(sed -n "s/^ExecStart=[^ ]*//p" "$(unit ferryd.service)") &&
	test_bg "$FERRYD" $args </dev/null >ferryd.log 2>&1 &&
	d=$test_bg_pid &&
	test_wait_log ferryd.log "ready: socket" $d &&
	test -S "$XDG_RUNTIME_DIR/ferry/ferryd.sock" &&
	"$FERRYCTL" status >status.out &&
	kill -TERM $d && test_wait_exit $d && test_equal status 0 \
	    "$test_exit_status"
'

test_done
