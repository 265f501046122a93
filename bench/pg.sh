#!/bin/sh
#
# bench/pg.sh: issue 10's figures, both backends in one run, on a
# throwaway PostgreSQL 15 cluster it starts in its temp dir (fsync on, a
# Unix socket only; as the postgres user when run as root), stopped by
# PID at exit:
#   push_drain      one ferryd's N queued changes drained into one
#                   instance: SQLite, then PostgreSQL (changes/s, and
#                   the ratio);
#   cross_watch     a Put on device A (on instance 1) to the Watch event
#                   on device B (on instance 2), one Put at a time
#                   (bench_watch -S): p50 and p99 in ms;
#   two_instances   two ferryds, N/2 queued changes each, drained into one
#                   instance, then each into its own instance (both
#                   instances on one database): aggregate changes/s.
#
# usage: bench/pg.sh BUILD-DIR [N] [WATCH-COUNT]   (default 20000, 1000)
# Ports: BENCH_PG_PORT (default 28810) and the next one.  Needs the
# Debian package postgresql (initdb, pg_ctl, createdb in
# /usr/lib/postgresql/15/bin, or FERRY_PG_BIN).
set -eu
build=${1:?usage: bench/pg.sh BUILD-DIR [N] [WATCH-COUNT]}
n=${2:-20000}
nwatch=${3:-1000}
port=${BENCH_PG_PORT:-28810}
port2=$((port + 1))
pgbin=${FERRY_PG_BIN:-/usr/lib/postgresql/15/bin}
. "$(dirname "$0")/sync-lib.sh"

# The cluster's own temp dir: its owner must reach it, and ferryd wants
# the sockets' directory ($tmp) private.
pgroot=$(mktemp -d "${TMPDIR:-/tmp}/ferry-bench-pg.XXXXXX")
pgdir=$pgroot/pg
pgpid=
as_pg() { if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_cleanup() {
	if [ -n "$pgpid" ]; then
		as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -m fast -w stop \
		    >/dev/null 2>&1 || kill -KILL "$pgpid" 2>/dev/null || :
	fi
	rm -rf "$pgroot"
	bench_cleanup
}
trap pg_cleanup EXIT INT TERM

mkdir -p "$pgdir"
if [ "$(id -u)" -eq 0 ]; then
	chmod 0711 "$pgroot"
	chown postgres:postgres "$pgdir"
fi
as_pg "$pgbin/initdb" -D "$pgdir/data" -A trust -U postgres -E UTF8 \
    --locale=C >"$tmp/initdb.log" 2>&1
cat >>"$pgdir/data/postgresql.conf" <<PGCONF
listen_addresses = ''
unix_socket_directories = '$pgdir'
max_connections = 100
PGCONF
as_pg "$pgbin/pg_ctl" -D "$pgdir/data" -l "$pgdir/log" -w start \
    >/dev/null 2>&1
pgpid=$(head -n 1 "$pgdir/data/postmaster.pid")
# newdb NAME: a new, empty database's URL.
newdb() {
	"$pgbin/psql" -X -q -h "$pgdir" -U postgres -d postgres \
	    -c "CREATE DATABASE $1" >/dev/null
	echo "postgresql:///$1?host=$pgdir&user=postgres"
}

# srv NAME PORT [DB]: ferry-server NAME on PORT (SQLite without DB); its
# PID in $spid.
srv() {
	set -- "$1" "$2" ${3:+--db "$3"}
	_name=$1 _port=$2
	shift 2
	"$build/ferry-server" --listen "127.0.0.1:$_port" --data-dir \
	    "$tmp/$_name" --open "$@" </dev/null >"$tmp/$_name.log" 2>&1 &
	spid=$!
	pids="$pids $spid"
	phase="$phase $spid"
	wait_line "$tmp/$_name.log" "ready: listening"
}

# dev NAME PORT COUNT: ferryd NAME syncing with 127.0.0.1:PORT (not
# running yet), COUNT 1 KB documents queued in its outbox.
dev() {
	_keep=$port
	port=$2
	start_ferryd "$1"
	port=$_keep
	phase="$phase $dpid"
	[ "$3" -eq 0 ] ||
	"$build/bench/bench_put" -s "$tmp/$1.sock" -m pipe -c 16 -d 32 \
	    -n "$3" -w 0 -t 600 -N "fill$1" >/dev/null 2>&1
}

# drain NAME...: seconds until every named ferryd's outbox is empty
# (sync --wait on each, at once).
drain() {
	_t0=$(date +%s.%N)
	_w=
	for _d in "$@"; do
		"$build/ferryctl" --socket "$tmp/$_d.sock" sync --wait \
		    >/dev/null &
		_w="$_w $!"
	done
	for _p in $_w; do wait "$_p"; done
	echo "$(date +%s.%N) - $_t0" | bc -l
}

# stop: the processes of the phase that ended (ferryds, servers), so
# none syncs with the next phase's servers on the same ports.
phase=
stop() {
	for _p in $phase; do kill "$_p" 2>/dev/null || :; done
	for _p in $phase; do wait "$_p" 2>/dev/null || :; done
	phase=
}

# one_drain NAME [DB]: push_drain on one backend; changes/s.
one_drain() {
	dev "p$1" "$port" "$n"
	srv "s$1" "$port" "${2:-}"
	_s=$(drain "p$1")
	stop
	echo "$n / $_s" | bc
}

sq=$(one_drain sqlite)
pq=$(one_drain pg "$(newdb drain)")
echo "RESULT push_drain sqlite=$sq pg=$pq changes/s ratio=$(echo \
    "scale=2; $pq / $sq" | bc) n=$n cmd=bench/pg.sh $build $n"

# cross_watch: two instances on one database, A on 1, B on 2.
db=$(newdb watch)
srv w1 "$port" "$db"
srv w2 "$port2" "$db"
dev wa "$port" 0
dev wb "$port2" 0
"$build/ferryctl" --socket "$tmp/wa.sock" sync --wait >/dev/null
"$build/ferryctl" --socket "$tmp/wb.sock" sync --wait >/dev/null
"$build/bench/bench_watch" -s "$tmp/wa.sock" -S "$tmp/wb.sock" \
    -n "$nwatch" -w 50 -t 300 | grep '^RESULT' |
    sed "s|remote_delay|cross_instance_delay|g; s|\$| cmd=bench/pg.sh $build|"
stop

# two_instances: the same 2 x N/2 changes into one instance, then two.
half=$((n / 2))
db=$(newdb one)
dev o1 "$port" "$half"; dev o2 "$port" "$half"
srv one "$port" "$db"
s1=$(drain o1 o2)
stop
db=$(newdb two)
dev t1 "$port" "$half"; dev t2 "$port2" "$half"
srv two1 "$port" "$db"
srv two2 "$port2" "$db"
s2=$(drain t1 t2)
echo "RESULT two_instances one=$(echo "$n / $s1" | bc) two=$(echo \
    "$n / $s2" | bc) changes/s (2 devices, $half each) cmd=bench/pg.sh $build $n"
