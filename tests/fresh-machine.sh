#!/bin/sh
# tests/fresh-machine.sh: run the README's two commands as a new user would,
# on a minimal Debian 12 (`debootstrap --variant=minbase bookworm`, nothing
# else installed), to catch what tests/deps.sh forgets to install.  CI
# machines carry more than a fresh one does, so a missing program there
# goes unnoticed; this is the check that it does not.
#
# It builds the minimal root once and keeps it (FERRY_FRESH_CACHE, default
# /var/cache/ferry-fresh/bookworm-minbase; delete it to rebuild), from the
# mirror the host's apt uses.  Each run copies that root to a scratch
# directory, clones this repository into it at REV (default HEAD: the
# committed state, not the working tree), and chroots in as root with a
# clean environment to run
#     sh packaging/quickstart.sh
#     sh tests/run.sh
# The ferry-server and ferryd that quickstart leaves running are stopped by
# their PIDs (build/demo/*.pid) before the tests.  Everything runs in its own
# mount and PID namespaces (unshare): the bind mounts of /proc, /dev and /sys
# never show outside, and when the run ends the kernel kills whatever it
# started and is still alive, and drops the mounts.  The network namespace
# is the host's, so the tests' fixed ports on 127.0.0.1 can collide with
# tests other people run on the same machine at the same moment.
#
# The last line is the test command's last line, "N passed, M failed"; the
# exit status is 0 only if quickstart succeeded and that line says 0 failed.
# Needs root, debootstrap (installed if missing), unshare and chroot; takes
# 15 to 30 minutes (two builds and the whole suite), so it is not part of CI.
#
#   sh tests/fresh-machine.sh [REV]
#   FERRY_BUILDS=werror sh tests/fresh-machine.sh   only the first build
# Environment: FERRY_FRESH_CACHE (the cached root), FERRY_FRESH_MIRROR (the
# Debian mirror; default the host's), FERRY_FRESH_TMPDIR (where the scratch
# copy goes, default /var/tmp), FERRY_FRESH_KEEP=1 (keep the scratch copy
# and say where it is), FERRY_BUILDS (passed to tests/run.sh).
set -u

me=fresh-machine

die() {
	echo "$me: $*" >&2
	exit 2
}

# --- inside the namespaces: mount, chroot, run ---

# in_namespace ROOT: we are PID 1 of a new PID namespace with a private
# mount namespace.  Mount what the tests need under ROOT and run the
# commands in it.  The mounts go when the namespace does.
in_namespace() {
	root=$1
	mount -t proc proc "$root/proc" &&
	    mount -t sysfs sysfs "$root/sys" &&
	    mount --bind /dev "$root/dev" &&
	    mount -t devpts -o newinstance,ptmxmode=0666 devpts \
		"$root/dev/pts" &&
	    mount -t tmpfs -o mode=1777,nosuid,nodev tmpfs "$root/dev/shm" ||
	    die "cannot mount /proc, /sys, /dev under $root"
	# A fresh devpts instance needs its own ptmx.
	mount --bind "$root/dev/pts/ptmx" "$root/dev/ptmx" 2>/dev/null || :
	set -- PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
	    HOME=/root LANG=C.UTF-8 TERM=dumb
	[ -n "${FERRY_BUILDS:-}" ] && set -- "$@" "FERRY_BUILDS=$FERRY_BUILDS"
	exec chroot "$root" /usr/bin/env -i "$@" /bin/sh /root/fresh-run.sh
}

if [ "${1:-}" = --in-namespace ]; then
	in_namespace "$2"
	exit 2
fi

# --- on the host ---

[ $# -le 1 ] || die "usage: sh tests/fresh-machine.sh [REV]"
[ "$(id -u)" -eq 0 ] || die "needs root (debootstrap, mount, chroot)"
for p in git unshare chroot; do
	command -v $p >/dev/null 2>&1 || die "$p is missing"
done
self=$(cd "$(dirname "$0")" && pwd)/$(basename "$0")
top=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) ||
	die "$(dirname "$0") is not in a git checkout"
rev=$(git -C "$top" rev-parse --verify -q "${1:-HEAD}^{commit}") ||
	die "no such commit: ${1:-HEAD}"

# The mirror the host's apt uses for bookworm, from its deb822 .sources
# files or its one-line sources.list; Debian's own if there is none.
host_mirror() {
	for f in /etc/apt/sources.list.d/*.sources; do
		[ -f "$f" ] || continue
		# deb822: stanzas split by blank lines; the first URI of a
		# "deb" stanza whose Suites has bookworm itself.
		awk 'BEGIN { RS = ""; FS = "\n" }
		{
			deb = 0; suite = 0; uri = ""
			for (i = 1; i <= NF; i++) {
				if ($i ~ /^Types:.*[ \t]deb([ \t]|$)/) deb = 1
				if ($i ~ /^Suites:.*[ \t]bookworm([ \t]|$)/) suite = 1
				if ($i ~ /^URIs:/) { split($i, w, /[ \t]+/); uri = w[2] }
			}
			if (deb && suite && uri != "") { print uri; exit }
		}' "$f"
	done
	if [ -f /etc/apt/sources.list ]; then
		sed -n 's/^deb[ \t]\{1,\}\(\[[^]]*\][ \t]\{1,\}\)\{0,1\}\([^ \t]*\)[ \t]\{1,\}bookworm[ \t].*/\2/p' \
		    /etc/apt/sources.list
	fi
	echo http://deb.debian.org/debian
}
mirror=${FERRY_FRESH_MIRROR:-$(host_mirror | head -1)}
cache=${FERRY_FRESH_CACHE:-/var/cache/ferry-fresh/bookworm-minbase}

# The cached root: built once, marked complete only when debootstrap
# finished, so an interrupted build is redone rather than used.
if [ ! -f "$cache/.ferry-fresh-complete" ]; then
	if ! command -v debootstrap >/dev/null 2>&1; then
		echo "$me: installing debootstrap"
		DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
		    --no-install-recommends debootstrap >/dev/null ||
			die "cannot install debootstrap"
	fi
	echo "$me: building $cache from $mirror (once; a few minutes)"
	rm -rf --one-file-system "$cache.new"
	mkdir -p "$(dirname "$cache")" || die "cannot create $(dirname "$cache")"
	debootstrap --variant=minbase bookworm "$cache.new" "$mirror" \
	    >"$cache.log" 2>&1 || {
		tail -20 "$cache.log"
		die "debootstrap failed (log $cache.log)"
	}
	# What a fresh install's apt has: the release and its updates.
	printf 'deb %s bookworm main\ndeb %s bookworm-updates main\n' \
	    "$mirror" "$mirror" >"$cache.new/etc/apt/sources.list"
	rm -rf --one-file-system "$cache"
	mv "$cache.new" "$cache" && touch "$cache/.ferry-fresh-complete" ||
		die "cannot move the new root to $cache"
fi

work=$(mktemp -d "${FERRY_FRESH_TMPDIR:-/var/tmp}/ferry-fresh.XXXXXX") ||
	die "cannot create a scratch directory"
root=$work/root
cleanup() {
	if [ "${FERRY_FRESH_KEEP:-0}" = 1 ]; then
		echo "$me: kept $work" >&2
	else
		# The mounts were in the namespace, gone with it; never cross
		# into another file system all the same.
		rm -rf --one-file-system "$work"
	fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

echo "$me: copying $cache to $root"
cp -a "$cache" "$root" || die "cannot copy $cache"
cp /etc/resolv.conf "$root/etc/resolv.conf" 2>/dev/null || :
[ -f "$root/etc/hosts" ] ||
	printf '127.0.0.1\tlocalhost\n::1\tlocalhost\n' >"$root/etc/hosts"
echo "$me: cloning $top at $(git -C "$top" log -1 --format='%h %s' "$rev")"
git clone -q --no-hardlinks "$top" "$root/root/ferry" &&
    git -C "$root/root/ferry" checkout -q --detach "$rev" ||
	die "cannot clone $top at $rev"

# Run as the chroot's /bin/sh: quickstart, stop what it left running (by
# the PIDs it wrote), then the tests, their output also in /root/run.out.
cat >"$root/root/fresh-run.sh" <<'EOF'
cd /root/ferry || exit 1
echo "=== sh packaging/quickstart.sh"
sh packaging/quickstart.sh
echo "quickstart exit status $?" >/root/quickstart.status
for f in build/demo/ferryd.pid build/demo/ferry-server.pid; do
	[ -f "$f" ] || continue
	pid=$(cat "$f")
	kill "$pid" 2>/dev/null || continue
	i=0
	while kill -0 "$pid" 2>/dev/null && [ $i -lt 100 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
	echo "stopped $f ($pid)"
done
echo "=== sh tests/run.sh"
sh tests/run.sh 2>&1 | tee /root/run.out
EOF

unshare --mount --propagation private --pid --fork --kill-child \
    sh "$self" --in-namespace "$root"

qs=$(cat "$root/root/quickstart.status" 2>/dev/null ||
	echo "quickstart did not run")
last=$(tail -1 "$root/root/run.out" 2>/dev/null)
status=0
[ "$qs" = "quickstart exit status 0" ] || { echo "$me: $qs" >&2; status=1; }
echo "${last:-tests/run.sh printed nothing}"
printf "%s\n" "$last" | grep -Eqx "[0-9]+ passed, 0 failed" || status=1
exit $status
