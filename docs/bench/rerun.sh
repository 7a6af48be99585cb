#!/usr/bin/env bash
# rerun.sh [OUT] — every measurement BENCHMARKS.md reports, in one go: the
# scenario tables (SQLite, then PostgreSQL), the bare reference endpoint
# against Castellan in alternating pairs, the concurrency sweeps with their
# charts, the sign-in flood, the open model, start to healthy with idle RSS,
# and the go test micro-benchmarks; then the report's tables, rendered from
# those results by castellan-bench --table. About 15 minutes on two cores.
#
# Without OUT it replaces docs/bench/results/ and the generated tables in
# BENCHMARKS.md: that is how the report is remeasured. With OUT (a new or empty
# directory) it writes there only, the tables into OUT/table.md.
#
# Knobs, for a quick smoke run (the report then says it is one):
#   DURATION=1s  the measured window of every run (default: 3s for the tables
#                and pairs, 2s per sweep level, 8s for the flood, 4s open model)
#   WARMUP=0.5s  the warm-up before every run (default 1s, 3s for the flood)
#   REPEAT=1     runs per table cell, the median reported (default 3)
#
# Run it on a quiet machine: it notes the load average before it starts
# (machine.txt, with what else was running in top.txt). PostgreSQL is used
# when psql reaches $PGURL (default postgres://postgres@127.0.0.1:5432); the
# script creates and drops the databases bench and startup there. Nothing else
# may listen on 127.0.0.1:19400 and 19401.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
report_dir=$root/docs/bench/results
out=${1:-$report_dir}
pgurl=${PGURL:-postgres://postgres@127.0.0.1:5432}
repeat=${REPEAT:-3}
# win DEFAULT / warm DEFAULT: a run's window and warm-up, unless overridden.
win() { echo "${DURATION:-$1}"; }
warm() { echo "${WARMUP:-$1}"; }

mkdir -p "$out"
out=$(cd "$out" && pwd)
if [ "$out" = "$report_dir" ]; then
  find "$out" -mindepth 1 -delete
elif [ -n "$(ls -A "$out")" ]; then
  echo "rerun.sh: $out is not empty; give a new or empty directory" >&2
  exit 2
fi
mkdir -p "$out/charts"
work=$(mktemp -d)
trap 'jobs -p | xargs -r kill 2>/dev/null; rm -rf "$work"' EXIT

# The machine as found, before this script adds any load of its own.
{
  echo "cores: $(nproc)"
  echo "cpu: $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -1)"
  echo "memory: $(awk '/^MemTotal:/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo)"
  echo "kernel: $(uname -sr)"
  echo "go: $(go env GOVERSION)"
  echo "load: $(cat /proc/loadavg)"
} > "$out/machine.txt"
# top's second frame: CPU shares over one second (the first has none yet).
if command -v top > /dev/null; then
  top -b -n 2 -d 1 -w 200 | awk '/^top - /{ n++ } n == 2' | head -20 > "$out/top.txt"
fi
date -u '+started %FT%TZ' > "$out/when.txt"
git rev-parse --short HEAD > "$out/commit.txt" 2>/dev/null || true

bin=$work/castellan
benchbin=$work/castellan-bench
go build -o "$bin" ./cmd/castellan
go build -o "$benchbin" ./cmd/castellan-bench
cd "$work"
"$benchbin" --print-config --target http://127.0.0.1:19400 > bench.yaml
bench() { "$benchbin" --config bench.yaml --quiet "$@"; }

backends=(sqlite)
if psql "$pgurl/postgres" -qAtc 'SELECT 1' > /dev/null 2>&1; then
  backends+=(postgres)
else
  echo "rerun.sh: no PostgreSQL at $pgurl: SQLite only" >&2
fi

# start BACKEND: a fresh provider on a fresh database; sets SERVER.
start() {
  rm -f castellan-bench.db*
  if [ "$1" = postgres ]; then
    psql "$pgurl/postgres" -qc 'DROP DATABASE IF EXISTS bench' -c 'CREATE DATABASE bench' 2> /dev/null
    CASTELLAN_STORAGE="$pgurl/bench?sslmode=disable" "$bin" serve --config bench.yaml 2>> "server-$1.log" &
  else
    "$bin" serve --config bench.yaml 2>> "server-$1.log" &
  fi
  SERVER=$!
  until curl -sf -o /dev/null http://127.0.0.1:19400/healthz; do sleep 0.05; done
}
stop() { kill "$SERVER"; wait "$SERVER" || true; }

# The scenario tables: one server per backend runs every scenario in turn.
for b in "${backends[@]}"; do
  start "$b"
  for s in client_credentials refresh silent signin introspect userinfo mixed; do
    bench --server-pid "$SERVER" --label "$b" --scenario "$s" --concurrency 32 \
      --duration "$(win 3s)" --warmup "$(warm 1s)" --repeat "$repeat" --json > "$out/$b-$s.json"
  done
  stop
done

# The bare reference endpoint and Castellan, alternating, a fresh server each.
for pair in 1 2 3; do
  "$benchbin" --config bench.yaml --serve-reference 127.0.0.1:19401 2> /dev/null & ref=$!
  until curl -sf -o /dev/null http://127.0.0.1:19401/.well-known/openid-configuration; do sleep 0.05; done
  bench --target http://127.0.0.1:19401 --server-pid "$ref" --scenario client_credentials \
    --concurrency 32 --duration "$(win 3s)" --warmup "$(warm 1s)" --json > "$out/ref$pair-reference.json"
  kill "$ref"; wait "$ref" || true
  start sqlite
  bench --server-pid "$SERVER" --scenario client_credentials \
    --concurrency 32 --duration "$(win 3s)" --warmup "$(warm 1s)" --json > "$out/ref$pair-castellan.json"
  stop
done

for b in "${backends[@]}"; do
  # Throughput and latency against concurrency, with the charts.
  start "$b"
  for s in client_credentials refresh silent introspect userinfo mixed; do
    bench --server-pid "$SERVER" --label "$b" --scenario "$s" --sweep 1,2,4,8,16,32 \
      --duration "$(win 2s)" --warmup "$(warm 1s)" --chart-dir "$out/charts" > /dev/null 2>&1
  done
  stop
  # The sign-in flood beside refreshes (a fresh server: its sessions stay).
  start "$b"
  bench --server-pid "$SERVER" --label "$b" --scenario refresh --concurrency 8 \
    --flood-signins 1000 --duration "$(win 8s)" --warmup "$(warm 3s)" --json > "$out/$b-flood.json"
  stop
  # The open model, below saturation.
  start "$b"
  rate=1000; [ "$b" = postgres ] && rate=800
  bench --server-pid "$SERVER" --label "$b" --scenario client_credentials --rate 4000 \
    --concurrency 128 --duration "$(win 4s)" --warmup "$(warm 1s)" --json > "$out/$b-open-cc.json"
  bench --server-pid "$SERVER" --label "$b" --scenario refresh --rate "$rate" \
    --concurrency 128 --duration "$(win 4s)" --warmup "$(warm 1s)" --json > "$out/$b-open-refresh.json"
  stop
done
if [ "${#backends[@]}" = 2 ]; then psql "$pgurl/postgres" -qc 'DROP DATABASE IF EXISTS bench' 2> /dev/null; fi

# Start to healthy and idle RSS, with a config that provisions no users (the
# bench config's four argon2id hashes would be verified on every start).
printf 'issuer: http://127.0.0.1:19401\nlisten: 127.0.0.1:19401\nstorage: sqlite:startup.db\nkey_file: startup.key\nlog: {level: warn}\n' > startup.yaml
for b in "${backends[@]}"; do
  if [ "$b" = postgres ]; then
    psql "$pgurl/postgres" -qc 'DROP DATABASE IF EXISTS startup' -c 'CREATE DATABASE startup' 2> /dev/null
    export CASTELLAN_STORAGE="$pgurl/startup?sslmode=disable"
  fi
  "$bin" serve --config startup.yaml 2> /dev/null & pid=$!   # the first start makes keys
  until curl -sf -o /dev/null http://127.0.0.1:19401/healthz; do sleep 0.01; done
  kill "$pid"; wait "$pid" || true
  echo "== $b"
  for i in 1 2 3 4 5; do
    t0=$(date +%s%N)
    "$bin" serve --config startup.yaml 2> /dev/null & pid=$!
    until curl -sf -o /dev/null http://127.0.0.1:19401/healthz; do sleep 0.002; done
    echo "healthy after $((($(date +%s%N) - t0) / 1000000)) ms"
    if [ "$i" = 5 ]; then sleep 3; grep VmRSS "/proc/$pid/status"; fi
    kill "$pid"; wait "$pid" || true
  done
  unset CASTELLAN_STORAGE
done > "$out/startup.txt"
if [ "${#backends[@]}" = 2 ]; then psql "$pgurl/postgres" -qc 'DROP DATABASE IF EXISTS startup' 2> /dev/null; fi

cd "$root"
# The micro-benchmarks (BenchmarkStorage's PostgreSQL half uses the database
# test, as the tests do). A failure is written into the file, not fatal.
{
  go test -run '^$' -bench 'TokenEndpoint' -benchtime 1000x -count 2 ./internal/token || echo "FAILED"
  go test -run '^$' -bench 'SignES256|Verify' -count 2 ./internal/signing || echo "FAILED"
  go test -run '^$' -bench 'SessionLookup' -count 2 ./internal/session || echo "FAILED"
  if [ "${#backends[@]}" = 2 ]; then export CASTELLAN_TEST_POSTGRES="$pgurl/test?sslmode=disable"; fi
  go test -run '^$' -bench 'Storage' -benchtime 3000x -count 2 ./internal/storage/sqlstore || echo "FAILED"
} > "$out/microbench.txt" 2>&1
date -u '+ended %FT%TZ' >> "$out/when.txt"

# The report's tables, from the files above.
"$benchbin" --table "$out" > "$out/table.md"
if [ "$out" = "$report_dir" ]; then
  "$benchbin" --table "$out" --report BENCHMARKS.md
  echo "rerun.sh: results in $out, tables in BENCHMARKS.md" >&2
else
  echo "rerun.sh: results in $out, tables in $out/table.md" >&2
fi
