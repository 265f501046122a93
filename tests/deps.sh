#!/bin/sh
# Install what building and testing ferry needs on Debian 12, if missing.
# Used by tests/run.sh and packaging/quickstart.sh; safe to run repeatedly,
# silent when everything is there.  The ground truth for "missing" is a
# minimal Debian 12 (debootstrap --variant=minbase bookworm):
# tests/fresh-machine.sh runs the README's commands on one, so a program
# used by a test, a benchmark or quickstart but not listed here shows up
# there as a failure, not only on a machine that lacks it by chance.
# Arguments are more packages to install the same way (tests/fuzz/run.sh:
# clang and libFuzzer).
set -eu
# Building: the autotools, the compiler, the libraries configure asks for.
build="autoconf automake libtool pkg-config make gcc libc6-dev
libsqlite3-dev libevent-dev libcurl4-openssl-dev libsodium-dev
libjansson-dev libinih-dev libcmocka-dev libsystemd-dev libpq-dev
libgtk-4-dev"
# Programs the tests and benchmarks run that minbase lacks or may drop:
# sqlite3 (t2005 alters a server record behind its back), bc (bench/push.sh,
# bench/pull.sh), strace (bench/idle.sh), git (bench/run.sh names the
# revision it measured), util-linux (setpriv, prlimit: t0003, t0007),
# procps, systemd (systemd-analyze verify and security: t6001), Go with
# Debian's varlink/go (t4001 builds a varlink client on an implementation
# independent of ferry's, offline, from /usr/share/gocode), python3
# with python3-nacl (t4002: a protocol client written from
# docs/protocol.md in another language), and postgresql (15 in bookworm:
# initdb, pg_ctl and psql for the throwaway database of the
# t5xxx-pg-*.sh tests, tests/t/pg-lib.sh), and haproxy (t5024 runs two
# instances behind docs/deploy.md's example configuration), and xvfb,
# xdotool and imagemagick (t7001 runs examples/notes, built from
# libgtk-4-dev above, under Xvfb, types into it and takes screenshots).
run="sqlite3 bc strace git util-linux procps systemd golang-go golang-github-varlink-go-dev python3 python3-nacl postgresql haproxy xvfb xdotool imagemagick"
run="$run $*"
missing=""
for p in $build $run; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then
	sudo=""
elif command -v sudo >/dev/null 2>&1; then
	sudo="sudo"
else
	echo "deps.sh: not root and no sudo; as root run: apt-get install$missing" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
