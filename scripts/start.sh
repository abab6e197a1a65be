#!/usr/bin/env bash
# Production entry point of hpts (container ENTRYPOINT, systemd ExecStart):
#
#   1. if the database file does not exist, restore it from the Litestream replica
#      (a fresh volume or a replaced machine comes back with every replicated write);
#      with no replica yet (first boot ever), start with an empty database;
#   2. exec `litestream replicate -exec "hpts serve ..."`: Litestream ships the WAL to object
#      storage every second and supervises hpts. SIGTERM to this process (it becomes
#      Litestream) is forwarded to hpts, which drains in-flight writes (up to 30 s) and exits 0;
#      Litestream then makes a final sync and exits.
#
# Usage: scripts/start.sh [extra `hpts serve` arguments, e.g. --dev for a local trial]
#
# Environment (everything else, e.g. HPTS_LISTEN and HPTS_AUTH_*, is read by hpts itself; see
# README and docs/OPERATIONS.md):
#   HPTS_BIN              hpts binary (default: `hpts` on PATH)
#   LITESTREAM_BIN        litestream binary (default: `litestream` on PATH)
#   LITESTREAM_CONFIG     config file (default: litestream.yml in the parent of scripts/)
#   HPTS_DATABASE         database file (default: ${HPTS_DATA_DIR:-./data}/hpts.db, made absolute)
#   LITESTREAM_BUCKET     bucket (required; falls back to BUCKET_NAME, set by `fly storage create`)
#   LITESTREAM_PATH       key prefix in the bucket (default "hpts")
#   LITESTREAM_ENDPOINT   S3 endpoint (falls back to AWS_ENDPOINT_URL_S3; empty = AWS S3)
#   LITESTREAM_REGION     region (falls back to AWS_REGION; empty = look it up, AWS only)
#   LITESTREAM_FORCE_PATH_STYLE  true/false (empty = Litestream's per-provider default)
#   LITESTREAM_METRICS_ADDR      Litestream's Prometheus listener (empty = off)
#   LITESTREAM_L0_RETENTION      how long L0 files are kept, at least until compacted (30s with
#                         HPTS_DURABILITY=replicated, where every write asks for a sync; empty,
#                         i.e. Litestream's 5 minutes, otherwise)
#   HPTS_LITESTREAM_SOCKET       Litestream's control socket (default: litestream.sock beside
#                         the database); with HPTS_DURABILITY=replicated, hpts waits through it
#                         for the replica before answering a write
#   AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY  bucket credentials
#   HPTS_RUN_AS           only when started as root (containers): chown the database directory
#                         to this user, then drop to it before anything else runs
set -euo pipefail

log() { printf 'start.sh: %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 64
}

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
HPTS_BIN=${HPTS_BIN:-hpts}
LITESTREAM_BIN=${LITESTREAM_BIN:-litestream}
LITESTREAM_CONFIG=${LITESTREAM_CONFIG:-$script_dir/../litestream.yml}

# hpts and litestream.yml both read HPTS_DATABASE, so they always name the same file.
db=${HPTS_DATABASE:-${HPTS_DATA_DIR:-./data}/hpts.db}
case "$db" in
  /*) ;;
  *) db="$(pwd)/$db" ;;
esac
export HPTS_DATABASE="$db"
db_dir=$(dirname "$HPTS_DATABASE")
# Litestream's control socket (litestream.yml `socket:`); hpts' default is the same path, so
# HPTS_DURABILITY=replicated works with no further setting.
export HPTS_LITESTREAM_SOCKET=${HPTS_LITESTREAM_SOCKET:-$db_dir/litestream.sock}

# Containers start as root only so that a freshly mounted volume (root-owned on Fly) can be
# handed to the service user; the ledger itself never runs as root.
if [ "$(id -u)" = 0 ] && [ -n "${HPTS_RUN_AS:-}" ]; then
  command -v setpriv >/dev/null 2>&1 || die "setpriv (util-linux) is needed to drop to $HPTS_RUN_AS"
  uid=$(id -u "$HPTS_RUN_AS") || die "HPTS_RUN_AS=$HPTS_RUN_AS is not a user"
  gid=$(id -g "$HPTS_RUN_AS")
  mkdir -p "$db_dir"
  chown -R "$uid:$gid" "$db_dir"
  log "dropping privileges to $HPTS_RUN_AS ($uid:$gid)"
  exec setpriv --reuid="$uid" --regid="$gid" --init-groups -- "$0" "$@"
fi
if [ "$(id -u)" = 0 ]; then
  log "warning: running as root (set HPTS_RUN_AS, or User= in systemd, to a service account)"
fi

command -v "$LITESTREAM_BIN" >/dev/null 2>&1 ||
  die "litestream not found (LITESTREAM_BIN=$LITESTREAM_BIN); install Litestream 0.5.x or set LITESTREAM_BIN"
command -v "$HPTS_BIN" >/dev/null 2>&1 ||
  die "hpts not found (HPTS_BIN=$HPTS_BIN); put it on PATH or set HPTS_BIN"
[ -r "$LITESTREAM_CONFIG" ] || die "cannot read the Litestream config $LITESTREAM_CONFIG (set LITESTREAM_CONFIG)"

export LITESTREAM_BUCKET=${LITESTREAM_BUCKET:-${BUCKET_NAME:-}}
[ -n "$LITESTREAM_BUCKET" ] ||
  die "LITESTREAM_BUCKET is not set: refusing to run the ledger without off-site replication (run \`hpts serve\` directly if that is really intended)"
export LITESTREAM_PATH=${LITESTREAM_PATH:-hpts}
export LITESTREAM_ENDPOINT=${LITESTREAM_ENDPOINT:-${AWS_ENDPOINT_URL_S3:-}}
export LITESTREAM_REGION=${LITESTREAM_REGION:-${AWS_REGION:-}}
export LITESTREAM_FORCE_PATH_STYLE=${LITESTREAM_FORCE_PATH_STYLE:-}
export LITESTREAM_METRICS_ADDR=${LITESTREAM_METRICS_ADDR:-}
# Replicated acknowledgements make a sync (one L0 file) per group of writes, tens per second;
# Litestream lists its L0 directory on every sync, so they must not pile up for 5 minutes; 30 s
# still leaves a restore taken while the service runs the time to fetch the newest of them.
durability=${HPTS_DURABILITY:-local}
prev=""
for arg in "$@"; do
  case "$arg" in
    --durability=*) durability=${arg#--durability=} ;;
    *) [ "$prev" = --durability ] && durability=$arg ;;
  esac
  prev=$arg
done
if [ "$durability" = replicated ]; then
  export LITESTREAM_L0_RETENTION=${LITESTREAM_L0_RETENTION:-30s}
else
  export LITESTREAM_L0_RETENTION=${LITESTREAM_L0_RETENTION:-}
fi

# Litestream's AWS SDK refuses a custom HTTP client together with AWS_CA_BUNDLE
# ("unable to add custom RootCAs HTTPClient"); hpts does not use it either.
if [ -n "${AWS_CA_BUNDLE+set}" ]; then
  log "ignoring AWS_CA_BUNDLE (Litestream cannot use it)"
  unset AWS_CA_BUNDLE
fi

mkdir -p "$db_dir"
log "database $HPTS_DATABASE, replica s3://$LITESTREAM_BUCKET/$LITESTREAM_PATH${LITESTREAM_ENDPOINT:+ at $LITESTREAM_ENDPOINT}"
if [ -e "$HPTS_DATABASE" ]; then
  log "database exists; not restoring"
else
  log "database missing; restoring from the replica if one exists"
fi
# -if-db-not-exists: an existing database is never overwritten. -if-replica-exists: the very
# first boot (empty bucket) starts with a new database. Any other failure (credentials, network,
# a missing bucket, leftover -wal/-shm files without a database) stops here: serving an empty
# ledger in place of a lost one would be far worse than not starting.
"$LITESTREAM_BIN" restore -config "$LITESTREAM_CONFIG" -if-db-not-exists -if-replica-exists \
  -integrity-check quick "$HPTS_DATABASE"

# -exec takes one command line, split by Litestream with shell-like quoting (no shell runs it):
# quote every word in single quotes so paths and arguments with spaces survive.
quote() { printf "'%s'" "$(printf '%s' "$1" | sed "s/'/'\\\\''/g")"; }
child="$(quote "$HPTS_BIN") serve"
for arg in "$@"; do
  child="$child $(quote "$arg")"
done

log "starting: litestream replicate -exec $child"
exec "$LITESTREAM_BIN" replicate -config "$LITESTREAM_CONFIG" -exec "$child"
