#!/bin/sh
# Build ferry's Debian packages (ferry, ferry-server, libferry0,
# libferry-dev) from this tree and install them with apt-get: the
# README's one command for Debian 12.  Installs what building needs
# (tests/deps.sh plus debhelper, dpkg-dev, fakeroot, build-essential),
# with sudo when not root.  dpkg-buildpackage builds in place, so it
# builds in a copy of the tree (the files git knows, or everything but
# build/ outside a checkout): the checkout stays as it was.  The packages
# land in build/debs/ (or DIR), with the build log.
#   sh packaging/debs.sh                    build and install
#   sh packaging/debs.sh --build-only [DIR] build only, into DIR
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
install=yes
if [ "${1:-}" = --build-only ]; then
	install=no
	shift
fi
out=${1:-$top/build/debs}
sh "$top/tests/deps.sh" debhelper dpkg-dev fakeroot build-essential
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -rf "$out/src"
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo
mkdir "$out/src"
cd "$top"
if git rev-parse --git-dir >/dev/null 2>&1; then
	git ls-files -co --exclude-standard | tar -cf - -T -
else
	tar --exclude=./build -cf - .
fi | tar -C "$out/src" -xf -
if ! (cd "$out/src" && dpkg-buildpackage -us -uc -b) >"$out/build.log" 2>&1; then
	tail -40 "$out/build.log"
	echo "debs.sh: dpkg-buildpackage failed; the whole log is $out/build.log" >&2
	exit 1
fi
rm -rf "$out/src"
ls "$out"/*.deb
[ "$install" = yes ] || exit 0
sudo=""
[ "$(id -u)" -eq 0 ] || sudo=sudo
# apt-get, not dpkg -i: it installs the packages' dependencies too.
$sudo apt-get install -y "$out"/ferry_*.deb "$out"/ferry-server_*.deb \
    "$out"/libferry0_*.deb "$out"/libferry-dev_*.deb
