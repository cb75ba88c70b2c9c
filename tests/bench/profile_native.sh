#!/bin/sh
# Instructions per question of pdns_server with the native module, under callgrind: a figure
# that does not depend on how busy the machine is, and the profile that says where they go.
#
# Usage: tests/bench/profile_native.sh [DATA_DIR] [QUERIES] [SET]
#   DATA_DIR  a dns_bench.py data set (default: the newest under /tmp/smimea-bench), made with
#             dns_bench.py --generate-only
#   QUERIES   how many questions of its query set to profile (default 12000)
#   SET       the query set (default hits); in a signed data set (dns_bench.py --signed
#             --generate-only) also nxdomain or ent, asked with the DO bit
# PROFILE_BACKEND=gsqlite3 profiles pdns's gsqlite3 backend on the data set's database instead
# (its signed copy, with gsqlite3-dnssec, in a signed data set), for comparison.
# Needs valgrind, dnsperf and a build with the module (SMIMEA_BUILD_DIR, default build-bench).
# Prints Ir per question for the whole of pdns and for the module's lookup(), and leaves
# callgrind.out.* in the run directory for callgrind_annotate / kcachegrind.
set -eu
cd "$(dirname "$0")/../.."
build=$(realpath "${SMIMEA_BUILD_DIR:-build-bench}")
data=${1:-$(ls -dt /tmp/smimea-bench/data-* 2>/dev/null | head -1)}
queries=${2:-12000}
set=${3:-hits}
do_bit=
case $data in *-signed) do_bit=-D ;; esac
[ -n "$data" ] && [ -f "$data/smimea.yaml" ] || {
  echo "profile_native: no data set; run dns_bench.py --generate-only first" >&2
  exit 2
}
if [ "${PROFILE_BACKEND:-native}" = gsqlite3 ]; then
  launch="launch=gsqlite3
gsqlite3-database=$data/pdns.sqlite3"
  [ -z "$do_bit" ] || launch="launch=gsqlite3
gsqlite3-database=$data/pdns-signed.sqlite3
gsqlite3-dnssec=yes"
  lookup_fn='GSQLBackend::lookup'
else
  [ -f "$build/libsmimeabackend.so" ] || { echo "profile_native: $build/libsmimeabackend.so not built" >&2; exit 2; }
  launch="launch=smimea
load-modules=$build/libsmimeabackend.so
smimea-config=$data/smimea.yaml"
  lookup_fn='SmimeaBackend::lookup'
fi
run=$(mktemp -d /tmp/smimea-profile.XXXXXX)
port=$(/usr/bin/python3 -c 'import sys; sys.path.insert(0, "tests/integration"); from smimea_test import free_port; print(free_port())')
cat >"$run/pdns.conf" <<EOF
$launch
local-address=127.0.0.1
local-port=$port
socket-dir=$run
daemon=no
guardian=no
write-pid=no
disable-syslog=yes
security-poll-suffix=
cache-ttl=0
query-cache-ttl=0
negquery-cache-ttl=0
distributor-threads=1
loglevel=4
EOF
head -n "$queries" "$data/queries-$set.txt" >"$run/queries.txt"
cd "$run"
valgrind --tool=callgrind --dump-instr=no /usr/sbin/pdns_server --config-dir="$run" >pdns.log 2>&1 &
vg=$!
trap 'kill $vg 2>/dev/null || true' EXIT
i=0
until kdig +short +timeout=1 +retry=0 -p "$port" @127.0.0.1 . SOA >/dev/null 2>&1; do
  i=$((i + 1))
  [ $i -lt 120 ] || { echo "profile_native: pdns did not start" >&2; cat pdns.log >&2; exit 1; }
  sleep 1
done
rate=300  # questions per second: well below what pdns manages under callgrind
# Warm up (the store's pages, pdns's own caches of metadata), then count only the measured run.
dnsperf $do_bit -s 127.0.0.1 -p "$port" -d queries.txt -Q $rate -l 5 >/dev/null 2>&1
callgrind_control -z "$vg" >/dev/null 2>&1
dnsperf $do_bit -s 127.0.0.1 -p "$port" -d queries.txt -Q $rate -n 1 -l $((queries / rate + 30)) >dnsperf.txt 2>&1
callgrind_control -d "$vg" >/dev/null 2>&1
sleep 2
answered=$(sed -n 's/^ *Queries completed: *\([0-9]*\).*/\1/p' dnsperf.txt)
profile=$(ls -t callgrind.out.*.* | head -1)
callgrind_annotate --inclusive=yes "$profile" >annotate.txt 2>/dev/null
total=$(sed -n 's/^ *\([0-9,]*\) .*PROGRAM TOTALS.*/\1/p' annotate.txt | tr -d ,)
module=$(grep -m1 "$lookup_fn" annotate.txt | sed 's/^ *\([0-9,]*\) .*/\1/' | tr -d ,)
echo "questions answered: $answered"
echo "pdns_server, Ir per question:     $((total / answered))"
echo "backend lookup(), Ir per question: $((module / answered))"
if [ -n "$do_bit" ]; then
  signing=$(grep -m1 ':addRRSigs(' annotate.txt | sed 's/^ *\([0-9,]*\) .*/\1/' | tr -d ,)
  echo "pdns addRRSigs(), Ir per question: $((${signing:-0} / answered))"
fi
echo "profile: $run/$profile (callgrind_annotate --inclusive=yes $run/$profile)"
