#!/usr/bin/env bash
# Benchmarks hpts with hpts-loadgen (issue 7; results and method in docs/PERFORMANCE.md).
#
# Builds the release binaries, then for group commit on and then off starts
# `hpts serve --dev` on a fresh temporary data directory and a free loopback port, runs the
# load scenarios against it, stops exactly that server (SIGTERM, then waits), and prints a
# markdown table plus the on/off throughput ratio. Stops by itself; removes its temp files.
#
# Environment: DURATION (measured seconds per scenario, default 20), CLIENTS (default 64),
# WARMUP (seconds before measuring, default 2), TENANTS (default 4), KEEP (=1 keeps the temp dir).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-64}
WARMUP=${WARMUP:-2}
TENANTS=${TENANTS:-4}

for tool in cargo curl jq; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench.sh: $tool is required" >&2; exit 1; }
done

# The server must see only the settings given here (an exported HPTS_DATABASE would redirect it).
for var in $(compgen -e | grep '^HPTS_' || true); do
  unset "$var"
done

echo "== cargo build --release --bins"
cargo build --release --bins
BIN=target/release/hpts
LOADGEN=target/release/hpts-loadgen

WORK=$(mktemp -d "${TMPDIR:-/tmp}/hpts-bench.XXXXXX")
SERVER_PID=""
FAILED=0

stop_server() {
  if [ -n "$SERVER_PID" ]; then
    if kill -0 "$SERVER_PID" 2>/dev/null; then
      kill -TERM "$SERVER_PID" 2>/dev/null || true
      for _ in $(seq 1 300); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.1
      done
      if kill -0 "$SERVER_PID" 2>/dev/null; then
        echo "bench.sh: server $SERVER_PID ignored SIGTERM for 30 s; sending SIGKILL" >&2
        kill -KILL "$SERVER_PID" 2>/dev/null || true
      fi
    fi
    wait "$SERVER_PID" 2>/dev/null || true
    SERVER_PID=""
  fi
}

cleanup() {
  stop_server
  if [ "${KEEP:-0}" = 1 ]; then
    echo "bench.sh: kept $WORK"
  else
    rm -rf "$WORK"
  fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A loopback port nobody listens on (probed through bash's /dev/tcp).
free_port() {
  local port
  for _ in $(seq 1 200); do
    port=$((20000 + RANDOM % 40000))
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      echo "$port"
      return 0
    fi
  done
  echo "bench.sh: no free port found" >&2
  return 1
}

# start_server on|off: fresh data dir, free port; sets SERVER_PID, URL, DATA.
start_server() {
  local mode=$1
  DATA="$WORK/data-$mode"
  mkdir -p "$DATA"
  local port
  port=$(free_port)
  URL="http://127.0.0.1:$port"
  HPTS_GROUP_COMMIT=$mode HPTS_LOG=warn "$BIN" serve --dev --data-dir "$DATA" --listen "127.0.0.1:$port" \
    >"$WORK/server-$mode.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    if curl -fsS "$URL/v1/health/ready" >/dev/null 2>&1; then
      echo "== hpts (group commit $mode) ready at $URL, pid $SERVER_PID"
      return 0
    fi
    if ! kill -0 "$SERVER_PID" 2>/dev/null; then
      echo "bench.sh: hpts exited during startup:" >&2
      cat "$WORK/server-$mode.log" >&2
      exit 1
    fi
    sleep 0.1
  done
  echo "bench.sh: hpts did not become ready within 30 s" >&2
  cat "$WORK/server-$mode.log" >&2
  exit 1
}

# run_scenario MODE SCENARIO: one loadgen run; its JSON report lands in $WORK/MODE-SCENARIO.json.
run_scenario() {
  local mode=$1 scenario=$2
  echo "== $scenario (group commit $mode, $CLIENTS clients, ${DURATION}s + ${WARMUP}s warmup)"
  if ! "$LOADGEN" --url "$URL" --data-dir "$DATA" --scenario "$scenario" --clients "$CLIENTS" \
    --tenants "$TENANTS" --duration "$DURATION" --warmup "$WARMUP" --pid "$SERVER_PID" \
    --json "$WORK/$mode-$scenario.json"; then
    echo "bench.sh: $scenario (group commit $mode) failed" >&2
    FAILED=1
  fi
  echo
}

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo "== temp dir $WORK on $(df -T "$WORK" | awk 'NR==2 {print $2}')"

for mode in on off; do
  start_server "$mode"
  run_scenario "$mode" mixed
  run_scenario "$mode" disburse
  run_scenario "$mode" reads-under-writes
  if [ "$mode" = on ]; then
    run_scenario "$mode" accrual-10k
  fi
  stop_server
done

# One markdown row per report.
row() {
  local mode=$1 scenario=$2 file="$WORK/$1-$2.json"
  [ -f "$file" ] || return 0
  jq -r --arg mode "$mode" '
    def f: if . == null then "n/a" else tostring end;
    def notes:
      if .scenario == "reads-under-writes" then
        "reads \(.kinds.balance_read.req_per_sec // 0 | floor)/s, writes \(.kinds.disbursement.req_per_sec // 0 | floor)/s"
      elif .scenario == "accrual-10k" then
        "one batch of \(.setup.loans) loans: \(.overall.max_ms) ms; setup \(.setup.disbursements_per_sec | floor) disbursements/s"
      elif .scenario == "mixed" then
        "\(.expected_refusals) expected principal_mismatch"
      else "" end;
    def rps: if .scenario == "accrual-10k" then "-" else (.req_per_sec | floor | tostring) end;
    "| \(.scenario) | \($mode) | \(rps) | \(.overall.p50_ms) | \(.overall.p99_ms) | \(.errors) | \(.max_rss_mb | f) | \(.server_cpu_cores | f) | \(.loadgen_cpu_cores | f) | \(notes) |"
  ' "$file"
}

rate() { jq -r '.req_per_sec' "$WORK/$1-$2.json" 2>/dev/null || echo 0; }

echo
echo "## Results ($(date -u +%Y-%m-%d), DURATION=${DURATION}s, WARMUP=${WARMUP}s, CLIENTS=$CLIENTS, TENANTS=$TENANTS)"
echo
echo "Machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo
echo "| scenario | group commit | req/s | p50 ms | p99 ms | errors | max RSS MB | server CPU (cores) | loadgen CPU (cores) | notes |"
echo "|---|---|---:|---:|---:|---:|---:|---:|---:|---|"
for scenario in mixed disburse reads-under-writes accrual-10k; do
  for mode in on off; do
    row "$mode" "$scenario"
  done
done
echo
for scenario in disburse mixed; do
  awk -v s="$scenario" -v on="$(rate on "$scenario")" -v off="$(rate off "$scenario")" \
    'BEGIN { if (off > 0) printf "group commit on/off, %s: %.1fx (%.0f vs %.0f req/s)\n", s, on / off, on, off; else printf "group commit on/off, %s: n/a\n", s }'
done
if [ "$FAILED" != 0 ]; then
  echo "bench.sh: at least one scenario failed (see above)" >&2
  exit 1
fi
