#!/usr/bin/env bash
# The reliability and security suite (issue 8; what it proves: docs/RELIABILITY.md).
#
# Runs `cargo test --test faults --test hostile --test security`: random SIGKILLs under
# concurrent load, a full disk, unusable database locations, a hostile-input corpus plus a
# property test, token hardening, tenant isolation and rate limiting.
# The storage-fault tests mount tmpfs, so run this as root (they fail, never skip, otherwise).
#
# Usage: scripts/fault-suite.sh [--cycles N] [-- extra test-binary arguments, e.g. --nocapture]
#   --cycles N   SIGKILL cycles of the crash test (default: $HPTS_FAULT_CYCLES, else 20)
# Environment: HPTS_FAULT_CYCLES (as --cycles), HPTS_FAULT_SEED (crash schedule seed).
#
# Prints cargo's output, then a final line exactly `N passed, N failed` (summed over the three
# test binaries). Exits non-zero if any test failed or a binary did not build or run.
set -uo pipefail
cd "$(dirname "$0")/.."

cycles="${HPTS_FAULT_CYCLES:-20}"
extra=()
while [ $# -gt 0 ]; do
  case "$1" in
    --cycles)
      [ $# -ge 2 ] || { echo "fault-suite.sh: --cycles needs a number" >&2; exit 2; }
      cycles="$2"
      shift 2
      ;;
    --cycles=*)
      cycles="${1#--cycles=}"
      shift
      ;;
    --)
      shift
      extra=("$@")
      break
      ;;
    -h|--help)
      sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'
      exit 0
      ;;
    *)
      echo "fault-suite.sh: unknown argument $1 (try --help)" >&2
      exit 2
      ;;
  esac
done
case "$cycles" in
  ''|*[!0-9]*|0) echo "fault-suite.sh: --cycles must be a positive integer, got '$cycles'" >&2; exit 2 ;;
esac
if [ "$(id -u)" != 0 ]; then
  echo "fault-suite.sh: warning: not root; the storage-fault tests need to mount tmpfs and will fail" >&2
fi

log=$(mktemp)
trap 'rm -f "$log"' EXIT
export HPTS_FAULT_CYCLES="$cycles"
echo "== cargo test --test faults --test hostile --test security (HPTS_FAULT_CYCLES=$cycles)"
# --no-fail-fast: a failure in one binary must not hide the results of the others.
cargo test --locked --no-fail-fast --test faults --test hostile --test security -- "${extra[@]}" 2>&1 \
  | tee "$log"
status=${PIPESTATUS[0]}

# cargo prints one "test result: ok. 12 passed; 0 failed; ..." line per test binary.
passed=0
failed=0
binaries=0
while IFS= read -r line; do
  p=$(sed -n 's/.* \([0-9][0-9]*\) passed;.*/\1/p' <<<"$line")
  f=$(sed -n 's/.* \([0-9][0-9]*\) failed;.*/\1/p' <<<"$line")
  passed=$((passed + ${p:-0}))
  failed=$((failed + ${f:-0}))
  binaries=$((binaries + 1))
done < <(grep -E '^test result: ' "$log")

if [ "$status" -ne 0 ] && [ "$failed" -eq 0 ]; then
  echo "fault-suite.sh: cargo test exited with $status (build error or a test binary crashed)" >&2
elif [ "$binaries" -lt 3 ] && [ "$status" -eq 0 ]; then
  echo "fault-suite.sh: only $binaries of 3 test binaries reported results" >&2
  status=1
fi
echo "$passed passed, $failed failed"
if [ "$status" -ne 0 ] || [ "$failed" -ne 0 ]; then
  exit 1
fi
exit 0
