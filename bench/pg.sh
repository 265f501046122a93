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
# Each drain also prints a CPU line: the CPU seconds the ferryds, the
# ferry-servers and PostgreSQL's processes used during it (from /proc),
# so that a figure comes with where its time went.
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
	srvs="$srvs $spid"
	wait_line "$tmp/$_name.log" "ready: listening"
}

# dev NAME PORT COUNT: ferryd NAME syncing with 127.0.0.1:PORT (not
# running yet), COUNT new 1 KB documents queued in its outbox, named
# after the device (two devices' drains do not clash: a throughput
# figure, not one of conflicts).
dev() {
	_keep=$port
	port=$2
	start_ferryd "$1"
	port=$_keep
	phase="$phase $dpid"
	devs="$devs $dpid"
	[ "$3" -eq 0 ] ||
	"$build/bench/bench_put" -s "$tmp/$1.sock" -m pipe -c 16 -d 32 \
	    -n "$3" -w 0 -t 600 -i "$1-" -N "fill$1" >/dev/null 2>&1
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

# ticks PID...: their CPU time so far (user + system, clock ticks).
ticks() {
	_t=0
	for _p in "$@"; do
		[ -r "/proc/$_p/stat" ] || continue
		_t=$((_t + $(sed 's/.*) //' "/proc/$_p/stat" |
		    awk '{ print $12 + $13 }')))
	done
	echo "$_t"
}
# cpu: the CPU ticks of the phase's ferryds, ferry-servers and PostgreSQL
# (the postmaster and its children: the instances' connections last as
# long as the phase), as three numbers.
cpu() {
	_pg=$(for _s in /proc/[0-9]*/stat; do
		sed 's/.*) //' "$_s" 2>/dev/null | awk -v p="$pgpid" \
		    -v f="$_s" '$2 == p { split(f, a, "/"); print a[3] }'
	done)
	echo "$(ticks $devs) $(ticks $srvs) $(ticks $pgpid $_pg)"
}
# cpu_since "BEFORE": what each used since BEFORE (cpu's output), in
# seconds, as "ferryd=S ferry-server=S postgres=S".
cpu_since() {
	echo "$1 $(cpu)" | awk -v hz="$(getconf CLK_TCK)" '{ printf \
	    "ferryd=%.1f ferry-server=%.1f postgres=%.1f", ($4 - $1) / hz,
	    ($5 - $2) / hz, ($6 - $3) / hz }'
}

# stop: the processes of the phase that ended (ferryds, servers), so
# none syncs with the next phase's servers on the same ports.
phase= devs= srvs=
stop() {
	for _p in $phase; do kill "$_p" 2>/dev/null || :; done
	for _p in $phase; do wait "$_p" 2>/dev/null || :; done
	phase= devs= srvs=
}

# one_drain NAME [DB]: push_drain on one backend; changes/s.
one_drain() {
	dev "p$1" "$port" "$n"
	srv "s$1" "$port" "${2:-}"
	_c=$(cpu)
	_s=$(drain "p$1")
	echo "CPU push_drain $1: $(cpu_since "$_c") seconds" >&2
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
_c=$(cpu)
s1=$(drain o1 o2)
echo "CPU two_instances one: $(cpu_since "$_c") seconds"
stop
db=$(newdb two)
dev t1 "$port" "$half"; dev t2 "$port2" "$half"
srv two1 "$port" "$db"
srv two2 "$port2" "$db"
_c=$(cpu)
s2=$(drain t1 t2)
echo "CPU two_instances two: $(cpu_since "$_c") seconds"
echo "RESULT two_instances one=$(echo "$n / $s1" | bc) two=$(echo \
    "$n / $s2" | bc) changes/s (2 devices, $half each) cmd=bench/pg.sh $build $n"
