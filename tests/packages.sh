#!/bin/sh
# Build ferry's Debian packages and check them the way a user gets them
# (issue 11, "Packages" and "systemd units"); `make distcheck` too.  For
# CI (.ci/run) on a throwaway Debian 12, as root.  Each step prints
# "packages STEP: ok" or "packages STEP: FAILED ..." with what went
# wrong; the last line is "N passed, M failed" (one per step) and the exit
# status is non-zero if a step failed.
#
# What it does to the machine (read this before running it on yours):
#   - installs the build dependencies (tests/deps.sh; systemd among them,
#     for systemd-analyze) and debhelper, lintian, dpkg-dev, fakeroot and
#     build-essential;
#   - installs the packages it built (dpkg -i ferry ferry-server libferry0
#     libferry-dev, then apt-get install -f for their dependencies), which
#     creates the system user ferry-server (sysusers.d) and, where systemd
#     runs, enables ferry-server.service;
#   - at the end purges those four packages again (FERRY_PACKAGES_KEEP=1
#     keeps them); the ferry-server user, its empty /var/lib/ferry-server
#     and the dependencies stay.
# The source tree is not written to: the packages are built from a copy
# and everything else happens in a temporary directory (kept, and named,
# when a step fails).
#
# Steps: units-variants (the units of a build without libsystemd and of
# --with-...unitdir=no), build (dpkg-buildpackage -us -uc -b), lintian
# (fails on errors; warnings are listed), install, units (systemd-analyze
# verify and security of the installed units), run (ferry-server, ferryd
# and ferryctl from /usr/bin: start, write, sync --wait, status), distcheck.
#   sh tests/packages.sh
#   FERRY_PACKAGES_STEPS="build lintian" sh tests/packages.sh
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top" || exit 1
steps=${FERRY_PACKAGES_STEPS:-"units-variants build lintian install units run distcheck"}
nsteps=$(echo $steps | wc -w)
passed=0
failed=0
jobs=$(nproc 2>/dev/null || echo 2)
# How long (seconds) to wait for a program to become ready or to sync.
wait_s=${FERRY_PACKAGES_WAIT:-60}

fail_all() {
	echo "packages: $1"
	echo "0 passed, $nsteps failed"
	exit 1
}

[ "$(id -u)" -eq 0 ] || fail_all "run me as root (I install packages)"
sh tests/deps.sh debhelper lintian dpkg-dev fakeroot build-essential ||
	fail_all "cannot install the dependencies"
[ -f configure ] && [ configure -nt configure.ac ] && [ configure -nt Makefile.am ] ||
	autoreconf -fi >/dev/null 2>&1 || fail_all "autoreconf failed"
work=$(mktemp -d "${TMPDIR:-/tmp}/ferry-packages.XXXXXX") ||
	fail_all "no temporary directory"
chmod 711 "$work"
cleanup() {
	if [ "$failed" -eq 0 ]; then
		rm -rf "$work"
	else
		echo "packages: logs kept in $work"
	fi
}
trap cleanup EXIT
trap 'exit 143' TERM INT

# wait_line FILE PATTERN PID: poll (bounded) until FILE has a line
# matching PATTERN; fail early if PID exits.
wait_line() {
	i=0
	while ! grep -q -- "$2" "$1" 2>/dev/null; do
		kill -0 "$3" 2>/dev/null || { echo "pid $3 exited:"; cat "$1"; return 1; }
		i=$((i + 1))
		[ $i -le $((wait_s * 10)) ] ||
		    { echo "no '$2' in $1 after $wait_s s:"; cat "$1"; return 1; }
		sleep 0.1
	done
}

# stop PID: SIGTERM, then wait (bounded) for it; fails unless it exited 0.
stop() {
	kill -TERM "$1" || return 1
	i=0
	while kill -0 "$1" 2>/dev/null; do
		i=$((i + 1))
		[ $i -le $((wait_s * 10)) ] ||
		    { echo "pid $1 did not stop"; kill -KILL "$1"; return 1; }
		sleep 0.1
	done
	wait "$1"
	st=$?
	pids=$(echo " $pids " | sed "s/ $1 / /")
	[ "$st" -eq 0 ] || { echo "pid $1 exited $st"; return 1; }
}

# exposure [--user] UNITFILE MAX: systemd-analyze's offline "Overall
# exposure level" of the unit is at most MAX.
exposure() {
	mode=""
	[ "$1" = --user ] && { mode=--user; shift; }
	e=$(systemd-analyze $mode security --offline=yes "$1" 2>&1 |
	    sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
	echo "$(basename "$1"): exposure ${e:-none} (at most $2)"
	awk -v v="$e" -v m="$2" 'BEGIN { exit !(v != "" && v + 0 <= m + 0) }'
}

# conf_install DIR CONFIGURE-ARGS...: configure a build in DIR and install
# its data (units, man pages, ...) in DIR/root; nothing is compiled.
conf_install() {
	cb=$1
	shift
	mkdir -p "$cb" && cd "$cb" &&
	"$top/configure" -q "$@" >configure.out 2>&1 ||
	    { cat configure.out; return 1; }
	make -s install-data DESTDIR="$cb/root" >make.out 2>&1 ||
	    { cat make.out; return 1; }
}

# What a build without libsystemd installs as ferryd.service, and what
# --with-...=no and =DIR install.
step_units_variants() {
	conf_install "$work/nosd" --without-systemd || return 1
	u=$(find "$work/nosd/root" -name ferryd.service -type f)
	t=$(sed -n 's/^Type=//p' "${u:-/dev/null}")
	[ "$t" = exec ] || { echo "without libsystemd the installed" \
	    "ferryd.service (${u:-none}) is Type=${t:-none}"; return 1; }
	b=$work/nounits
	conf_install "$b" --with-systemduserunitdir=no \
	    --with-systemdsystemunitdir="$b/sys" --with-sysusersdir=no ||
	    return 1
	found=$(cd "$b/root" && find . -name ferryd.service -o \
	    -name ferryd.socket -o -path '*sysusers*' -type f)
	[ -z "$found" ] || { echo "installed despite =no: $found"; return 1; }
	[ -f "$b/root$b/sys/ferry-server.service" ] || { echo \
	    "ferry-server.service is not in --with-systemdsystemunitdir"; return 1; }
}

# dpkg-buildpackage -us -uc -b in a copy of the tree (packaging/debs.sh,
# the README's command, without its apt-get install).
step_build() {
	sh packaging/debs.sh --build-only "$work/deb"
}

step_lintian() {
	lintian --fail-on error "$work"/deb/*.changes >"$work/deb/lintian.txt" 2>&1
	st=$?
	grep -v "root privileges" "$work/deb/lintian.txt"
	return $st
}

debs() {
	for p in ferry ferry-server libferry0 libferry-dev; do
		echo "$work/deb/${p}_"*.deb
	done
}

step_install() {
	# shellcheck disable=SC2046
	dpkg -i $(debs) >"$work/install.log" 2>&1 ||
	    DEBIAN_FRONTEND=noninteractive apt-get install -f -y -qq \
	    >>"$work/install.log" 2>&1 || { cat "$work/install.log"; return 1; }
	for p in ferry ferry-server libferry0 libferry-dev; do
		dpkg-query -W -f='${Status}' "$p" | grep -q "ok installed" ||
		    { echo "$p is not installed"; cat "$work/install.log"; return 1; }
	done
	getent passwd ferry-server >/dev/null ||
	    { echo "no user ferry-server"; return 1; }
	[ "$(stat -c %U:%a /var/lib/ferry-server 2>&1)" = ferry-server:700 ] ||
	    { echo "/var/lib/ferry-server is not ferry-server's, mode 700:"
	    ls -ld /var/lib/ferry-server; return 1; }
	pkg-config --exists libferry ||
	    { echo "pkg-config does not find libferry"; return 1; }
}

step_units() {
	u=/usr/lib/systemd/user/ferryd.service
	s=/lib/systemd/system/ferry-server.service
	rt=$work/units-run
	mkdir -p "$rt" && chmod 700 "$rt" || return 1
	XDG_RUNTIME_DIR=$rt systemd-analyze --user verify "$u" \
	    /usr/lib/systemd/user/ferryd.socket >"$work/verify.out" 2>&1
	systemd-analyze verify "$s" >>"$work/verify.out" 2>&1
	if [ -s "$work/verify.out" ]; then
		cat "$work/verify.out"
		return 1
	fi
	XDG_RUNTIME_DIR=$rt exposure --user "$u" 4.0 && exposure "$s" 2.5
}

# The installed programs, with the arguments of their units' ExecStart=:
# ferry-server as its user on port 0 with a temporary state directory,
# ferryd with a temporary home pointing at it.
step_run() {
	pids=""
	trap 'for p in $pids; do kill -TERM $p 2>/dev/null; done' EXIT
	r=$work/run
	mkdir -p "$r/state" "$r/home" "$r/run" "$r/config/ferry" "$r/data" &&
	chmod 700 "$r/run" "$r/state" && chmod 711 "$r" &&
	chown ferry-server:ferry-server "$r/state" || return 1
	export HOME="$r/home" XDG_RUNTIME_DIR="$r/run" \
	    XDG_CONFIG_HOME="$r/config" XDG_DATA_HOME="$r/data"
	unset FERRY_SOCKET NOTIFY_SOCKET LISTEN_PID LISTEN_FDS
	srv="setpriv --reuid=ferry-server --regid=ferry-server --clear-groups"
	dargs=$(sed -n 's/^ExecStart=[^ ]*//p' /usr/lib/systemd/user/ferryd.service)
	sargs=$(sed -n 's/^ExecStart=[^ ]* //p' /lib/systemd/system/ferry-server.service |
	    sed -e "s|%S/ferry-server|$r/state|" -e 's|:8765|:0|')
	# The device key comes with ferryd's first start; the server must
	# know it before ferryd first calls.
	# shellcheck disable=SC2086
	/usr/bin/ferryd $dargs </dev/null >"$r/ferryd0.log" 2>&1 &
	d=$!
	pids="$pids $d"
	wait_line "$r/ferryd0.log" "ready: socket" $d &&
	key=$(/usr/bin/ferryctl key) && stop $d &&
	$srv /usr/bin/ferry-server --data-dir "$r/state" allow "$key" ci ||
	    return 1
	# shellcheck disable=SC2086
	$srv /usr/bin/ferry-server $sargs </dev/null >"$r/server.log" 2>&1 &
	s=$!
	pids="$pids $s"
	wait_line "$r/server.log" "ready: listening on 127.0.0.1:" $s ||
	    return 1
	port=$(sed -n 's/.*ready: listening on 127\.0\.0\.1:\([0-9]*\).*/\1/p' \
	    "$r/server.log" | head -n 1)
	printf '[remote]\nurl = http://127.0.0.1:%s\n' "$port" \
	    >"$r/config/ferry/ferryd.conf"
	# shellcheck disable=SC2086
	/usr/bin/ferryd $dargs </dev/null >"$r/ferryd.log" 2>&1 &
	d=$!
	pids="$pids $d"
	wait_line "$r/ferryd.log" "ready: socket" $d &&
	echo '{"title":"from the packages"}' >"$r/doc.json" &&
	/usr/bin/ferryctl put notes pkg "$r/doc.json" &&
	timeout "$wait_s" /usr/bin/ferryctl sync --wait &&
	/usr/bin/ferryctl status &&
	/usr/bin/ferryctl --json status >"$r/status.json" ||
	    { cat "$r/ferryd.log" "$r/server.log"; return 1; }
	grep -q '"state": *"idle"' "$r/status.json" &&
	grep -q '"pending": *0[,}]' "$r/status.json" ||
	    { echo "not synced:"; cat "$r/status.json"; return 1; }
	test -f "$r/state/server.db" || { echo "no $r/state/server.db"; return 1; }
	stop $d && stop $s
}

step_distcheck() {
	b=$work/distcheck
	mkdir -p "$b" && cd "$b" &&
	"$top/configure" -q >configure.out 2>&1 &&
	make -j"$jobs" distcheck >distcheck.out 2>&1 || {
		cat configure.out
		grep -E '^(FAIL|ERROR|XPASS)' distcheck.out
		tail -n 20 distcheck.out
		for log in $(grep -lE '^(not ok|FAIL|ERROR)' \
		    ferry-*/_build/sub/tests/*/*.log 2>/dev/null | head -3); do
			echo "--- $log"
			grep -A 30 '^not ok' "$log" | head -n 40
		done
		return 1
	}
	grep -E '^=+$|archives ready|\.tar\.gz' distcheck.out | tail -3
}

for step in $steps; do
	start=$(date +%s)
	fn=step_$(echo "$step" | tr - _)
	if ! command -v "$fn" >/dev/null 2>&1; then
		echo "packages $step: FAILED (no such step)"
		failed=$((failed + 1))
		continue
	fi
	out=$work/$step.out
	(cd "$top" && "$fn") >"$out" 2>&1
	st=$?
	secs=$(($(date +%s) - start))
	if [ "$st" -eq 0 ]; then
		echo "packages $step: ok ($secs s)"
		passed=$((passed + 1))
	else
		echo "packages $step: FAILED ($secs s)"
		sed -e 's/^/    /' "$out" | tail -80
		failed=$((failed + 1))
	fi
done
if [ -z "${FERRY_PACKAGES_KEEP:-}" ]; then
	DEBIAN_FRONTEND=noninteractive dpkg --purge ferry ferry-server \
	    libferry-dev libferry0 >/dev/null 2>&1
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
