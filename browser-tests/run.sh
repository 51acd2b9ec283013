#!/usr/bin/env bash
# Browser tests: builds souk if needed, installs playwright-core (npm ci, no browser
# download), and runs every tests/*.test.js with Node's built-in runner against Debian's
# chromium. Each test file starts its own `souk serve` on a free port with a temporary
# data dir. Screenshots: browser-tests/artifacts/screenshots/<test>/<nn-name>.png;
# server logs: browser-tests/artifacts/logs/<test>.log.
# Prints a SKIPPED line and exits 0 when chromium or node cannot be had.
set -euo pipefail
cd "$(dirname "$0")"
HERE="$(pwd)"
REPO="$(cd .. && pwd)"
CHROMIUM="${SOUK_CHROMIUM:-/usr/bin/chromium}"

if [ ! -x "$CHROMIUM" ]; then
  if [ "$(id -u)" = "0" ] && command -v apt-get >/dev/null 2>&1; then
    echo "== installing chromium (apt-get)"
    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || true
  fi
fi
if [ ! -x "$CHROMIUM" ]; then
  echo "SKIPPED: browser tests (no chromium at $CHROMIUM and it could not be installed)"
  exit 0
fi
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  echo "SKIPPED: browser tests (node/npm not installed)"
  exit 0
fi
# --test-concurrency needs Node 20.10.
if ! node -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 20 || (a === 20 && b >= 10) ? 0 : 1)'; then
  echo "SKIPPED: browser tests (node $(node --version) is older than 20.10)"
  exit 0
fi

if [ -z "${SOUK_BIN:-}" ]; then
  echo "== cargo build --bin souk"
  (cd "$REPO" && cargo build --bin souk)
  # A private copy: the shared target dir may be rebuilt while the tests run.
  SOUK_BIN="$(mktemp "${TMPDIR:-/tmp}/souk-browser-bin.XXXXXX")"
  cp "$REPO/target/debug/souk" "$SOUK_BIN"
  chmod +x "$SOUK_BIN"
  trap 'rm -f "$SOUK_BIN"' EXIT
  export SOUK_BIN
fi

echo "== npm ci (playwright-core, no browser download)"
if ! PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund --loglevel=error; then
  echo "SKIPPED: browser tests (npm ci failed: is the npm registry reachable?)"
  exit 0
fi
DATA="${SOUK_SHARED_DATA:-$REPO/../shared/data}"
if [ ! -d "$DATA" ]; then
  echo "SKIPPED: scenarios b and d (no sample data at $DATA; set SOUK_SHARED_DATA)"
fi

mkdir -p artifacts
echo "== node --test (chromium: $("$CHROMIUM" --version 2>/dev/null | head -1))"
# One file at a time: each starts its own server, and the machine has 2 cores.
if [ "$#" -gt 0 ]; then FILES=("$@"); else FILES=(tests/*.test.js); fi
status=0
node --test --test-concurrency=1 --test-reporter=spec "${FILES[@]}" || status=$?
echo "screenshots: $HERE/artifacts/screenshots/  server logs: $HERE/artifacts/logs/"
exit "$status"
