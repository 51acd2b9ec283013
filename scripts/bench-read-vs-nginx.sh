#!/usr/bin/env bash
# The read path against the machine's limit: `souk bench read` on SQLite and then on
# PostgreSQL (when a server answers), each run printing, per endpoint, nginx serving the
# same response bytes from files next to Souk (wrk -t2 -c32 -d10s, loopback): req/s, p50,
# p99 and the ratio. Needs nginx and wrk (Debian: apt-get install nginx wrk; installed
# here when run as root). Usage:
#   scripts/bench-read-vs-nginx.sh [--seconds N] [--connections N] [--merchants N]
# PostgreSQL: SOUK_BENCH_PG_URL (default postgres://postgres@127.0.0.1:5432); a database
# souk_bench_read is created for the run and dropped afterwards.
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v wrk >/dev/null 2>&1 || ! { command -v nginx >/dev/null 2>&1 || [ -x /usr/sbin/nginx ]; }; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get install -y nginx wrk </dev/null >/dev/null
  else
    echo "nginx and wrk are needed: apt-get install nginx wrk" >&2
    exit 1
  fi
fi

cargo build --release --quiet
BIN=target/release/souk
echo "== $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr)"
echo "== SQLite"
"$BIN" bench read "$@"

PG="${SOUK_BENCH_PG_URL:-postgres://postgres@127.0.0.1:5432}"
if command -v psql >/dev/null 2>&1 && psql "$PG/postgres" -qtAc 'select 1' >/dev/null 2>&1; then
  psql "$PG/postgres" -qc 'drop database if exists souk_bench_read' >/dev/null
  psql "$PG/postgres" -qc 'create database souk_bench_read' >/dev/null
  echo "== PostgreSQL"
  SOUK_DATABASE_URL="$PG/souk_bench_read" "$BIN" bench read "$@" || status=$?
  psql "$PG/postgres" -qc 'drop database if exists souk_bench_read with (force)' >/dev/null
  exit "${status:-0}"
else
  echo "SKIPPED: PostgreSQL run (no server at $PG)"
fi
