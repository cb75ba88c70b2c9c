#!/bin/sh
# Throughput and memory of `smimea-ctl cert import`: imports N generated certificates (one PEM
# file each, one shared EC key, 100 zones) into a fresh store and reports certificates per
# second and peak RSS. Run it for a small and a large N to see that memory stays flat.
#
#   tests/bench/import_bench.sh [N ...]        (default: 10000 100000)
#
# Needs a build with SMIMEA_BUILD_BENCH=ON (target gen_certs); the build directory is
# $SMIMEA_BUILD_DIR, else build/. Not part of CTest.
set -eu

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${SMIMEA_BUILD_DIR:-$ROOT/build}
CTL=$BUILD/smimea-ctl
GEN=$BUILD/tests/bench/gen_certs
ZONES=100
for tool in "$CTL" "$GEN" /usr/bin/time; do
  if [ ! -x "$tool" ]; then
    echo "import_bench: $tool not found (build with SMIMEA_BUILD_BENCH=ON, set SMIMEA_BUILD_DIR)" >&2
    exit 2
  fi
done

WORK=$(mktemp -d "${TMPDIR:-/tmp}/smimea-import-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT INT TERM

# Prints "elapsed_seconds cpu_seconds max_rss_kib" from a /usr/bin/time -v report.
time_report() {
  awk -F': ' '
    /Elapsed \(wall clock\) time/ {
      n = split($2, p, ":"); s = 0
      for (i = 1; i <= n; i++) s = s * 60 + p[i]
    }
    /User time \(seconds\)|System time \(seconds\)/ { cpu += $2 }
    /Maximum resident set size/ { rss = $2 }
    END { printf "%.3f %.3f %d\n", s, cpu, rss }' "$1"
}

# certs/s is wall clock; on a machine shared with other work, certs/CPU-s (user + system time)
# is the steadier figure.
printf '%8s %6s %9s %9s %9s %11s %10s\n' N run seconds certs/s cpu-s certs/cpu-s "peak RSS"
for N in ${*:-10000 100000}; do
  rm -rf "$WORK/certs" "$WORK/store.db" "$WORK/store.db-wal" "$WORK/store.db-shm"
  "$GEN" "$WORK/certs" "$N" "$ZONES"
  printf 'database: %s\n' "$WORK/store.db" > "$WORK/smimea.yaml"
  "$CTL" --config "$WORK/smimea.yaml" init > /dev/null
  z=0
  while [ "$z" -lt "$ZONES" ]; do
    "$CTL" --config "$WORK/smimea.yaml" zone add "d$z.bench.example" > /dev/null
    z=$((z + 1))
  done
  # First run: everything is new. Second run: everything is already there.
  for run in new again; do
    sync
    /usr/bin/time -v -o "$WORK/time.txt" "$CTL" --config "$WORK/smimea.yaml" cert import \
      "$WORK/certs" > "$WORK/out.txt"
    set -- $(time_report "$WORK/time.txt")
    awk -v n="$N" -v run="$run" -v s="$1" -v cpu="$2" -v rss="$3" 'BEGIN {
      printf "%8d %6s %9.2f %9.0f %9.2f %11.0f %6.1f MiB\n", n, run, s, (s > 0 ? n / s : 0), cpu,
        (cpu > 0 ? n / cpu : 0), rss / 1024 }'
    if [ "$run" = new ]; then expect="imported $N certificate"; else expect=" $N unchanged"; fi
    if ! grep -q "$expect" "$WORK/out.txt"; then
      echo "import_bench: unexpected result: $(cat "$WORK/out.txt")" >&2
      exit 1
    fi
  done
done
