#!/usr/bin/env bash
# Memory of the journal export at scale (issue 15: exporting 1,000,000 entries keeps RSS under
# 100 MB). Builds the release binaries, starts `hpts serve --dev` on a fresh temporary data
# directory and a free loopback port, posts ENTRIES disbursements for one tenant with
# hpts-loadgen, then measures:
#   1. `hpts export` from the database file (peak RSS of the process, /usr/bin/time -v), and
#   2. `GET /v1/exports/journal` from a freshly restarted server (its peak RSS, VmHWM, after
#      streaming the whole journal to /dev/null),
# for both formats, prints a table, and fails if any peak is at or above LIMIT_MB.
# Stops by itself; removes its temp files (KEEP=1 keeps them).
#
# Environment: ENTRIES (default 1000000), LIMIT_MB (default 100), CLIENTS (default 64).
set -euo pipefail
cd "$(dirname "$0")/.."

ENTRIES=${ENTRIES:-1000000}
LIMIT_MB=${LIMIT_MB:-100}
CLIENTS=${CLIENTS:-64}
for tool in cargo curl sqlite3 /usr/bin/time; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-export.sh: $tool is required" >&2; exit 1; }
done
for var in $(compgen -e | grep '^HPTS_' || true); do
  unset "$var"
done

echo "== cargo build --release --bins"
cargo build --release --bins
TARGET=${CARGO_TARGET_DIR:-$(pwd)/target}
BIN=$TARGET/release/hpts
LOADGEN=$TARGET/release/hpts-loadgen
WORK=$(mktemp -d "${TMPDIR:-/tmp}/hpts-bench-export.XXXXXX")
SERVER_PID=""
cleanup() {
  if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
    kill -TERM "$SERVER_PID" 2>/dev/null || true
    wait "$SERVER_PID" 2>/dev/null || true
  fi
  if [ "${KEEP:-0}" != 1 ]; then rm -rf "$WORK"; else echo "kept $WORK"; fi
}
trap cleanup EXIT

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
start_server() {
  (cd "$WORK" && exec env HPTS_SYNCHRONOUS=normal "$BIN" serve --dev --listen "127.0.0.1:$PORT" >>"$WORK/serve.log" 2>&1) &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    curl -fsS "http://127.0.0.1:$PORT/v1/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "bench-export.sh: the server did not become ready" >&2
  exit 1
}
stop_server() {
  kill -TERM "$SERVER_PID"
  wait "$SERVER_PID" 2>/dev/null || true
  SERVER_PID=""
}

start_server
echo "== posting $ENTRIES disbursements for one tenant (hpts-loadgen, $CLIENTS clients)"
"$LOADGEN" --url "http://127.0.0.1:$PORT" --data-dir "$WORK/data" --scenario disburse \
  --tenants 1 --clients "$CLIENTS" --requests "$ENTRIES" --duration 100000 | tail -3
stop_server
DB="$WORK/data/hpts.db"
TENANT=$(sqlite3 "$DB" "SELECT tenant_id FROM journal_entries GROUP BY tenant_id ORDER BY count(*) DESC LIMIT 1")
COUNT=$(sqlite3 "$DB" "SELECT count(*) FROM journal_entries WHERE tenant_id = '$TENANT'")
echo "tenant $TENANT: $COUNT entries, database $(du -m "$DB" | cut -f1) MB"

FAILED=0
declare -a ROWS
for format in beancount hledger; do
  /usr/bin/time -v "$BIN" export --format "$format" --tenant "$TENANT" --database "$DB" \
    --out "$WORK/export.$format" 2>"$WORK/time.$format" >/dev/null
  cli_kb=$(awk -F: '/Maximum resident set size/ {gsub(/ /,"",$2); print $2}' "$WORK/time.$format")
  size_mb=$(du -m "$WORK/export.$format" | cut -f1)
  rm -f "$WORK/export.$format"

  start_server
  TOKEN=$("$BIN" token --data-dir "$WORK/data" --tenant "$TENANT" --scope "hpts:ledger:read")
  curl -fsS -o /dev/null -H "Authorization: Bearer $TOKEN" \
    "http://127.0.0.1:$PORT/v1/exports/journal?format=$format"
  http_kb=$(awk '/VmHWM/ {print $2}' "/proc/$SERVER_PID/status")
  stop_server
  ROWS+=("| $format | $COUNT | $size_mb MB | $((cli_kb / 1024)) MB | $((http_kb / 1024)) MB |")
  for kb in "$cli_kb" "$http_kb"; do
    if [ "$kb" -ge $((LIMIT_MB * 1024)) ]; then FAILED=1; fi
  done
done

echo
echo "| format | entries | file | hpts export peak RSS | server peak RSS (VmHWM) during GET /v1/exports/journal |"
echo "|---|---:|---:|---:|---:|"
printf '%s\n' "${ROWS[@]}"
if [ "$FAILED" -ne 0 ]; then
  echo "bench-export.sh: a peak RSS reached ${LIMIT_MB} MB" >&2
  exit 1
fi
echo "every peak RSS is under ${LIMIT_MB} MB"
