#!/bin/sh
# Install what building and testing ferry needs on Debian 12, if missing.
# Used by tests/run.sh and packaging/quickstart.sh; safe to run repeatedly.
# Arguments are more packages to install the same way (tests/fuzz/run.sh:
# clang and libFuzzer).
set -eu
pkgs="autoconf automake libtool pkg-config make gcc libc6-dev
libsqlite3-dev libevent-dev libcurl4-openssl-dev libsodium-dev
libjansson-dev libinih-dev libcmocka-dev libsystemd-dev util-linux procps"
pkgs="$pkgs $*"
missing=""
for p in $pkgs; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "installing:$missing" >&2
if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
# shellcheck disable=SC2086
$sudo apt-get install -y -qq --no-install-recommends $missing >/dev/null
