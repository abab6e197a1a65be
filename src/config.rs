//! One typed settings tree, built from flags and environment variables (flags win), validated
//! once at start. A missing or invalid value stops startup with an error that names the
//! variable. Secrets never print: `check-config` and `Debug` show them redacted.

use std::net::ToSocketAddrs;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde_json::json;

use crate::auth::dev::{DEV_AUDIENCE, DEV_ISSUER};
use crate::auth::{AuthSettings, JwksSource, parse_algorithms};
use crate::store::outbox::OutboxRetention;
use crate::store::{StoreSettings, Synchronous, WriterConfig};
use crate::telemetry::LogFormat;

/// `hpts`: a self-hosted lending ledger.
#[derive(Debug, Parser)]
#[command(
    name = "hpts",
    version,
    about = "HPTS lending ledger: a single-binary HTTP ledger for loans on SQLite"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the HTTP service (`--dev` for zero-configuration local use).
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Print a development bearer token accepted by `hpts serve --dev`.
    Token(TokenArgs),
    /// Validate the configuration and print it (secrets redacted); exit 2 if invalid.
    CheckConfig(ServeArgs),
    /// Consistent online copy of the database (`VACUUM INTO`), then verify the copy.
    Backup(BackupArgs),
    /// Run the reconciliation checks offline on a database file; exit 1 on any mismatch.
    Verify(DatabaseArgs),
    /// Write a tenant's journal as a plain-text accounting file (beancount or hledger) from a
    /// database file; read-only, safe beside a running service.
    Export(ExportArgs),
    /// Webhook maintenance.
    #[command(subcommand)]
    Webhooks(WebhooksCommand),
}

/// `hpts webhooks ...`.
#[derive(Debug, Subcommand)]
pub enum WebhooksCommand {
    /// Re-queue `journalEntryPosted` deliveries of entries posted since a time (for a consumer
    /// that lost data); a running service sends them again within a second.
    Replay(ReplayArgs),
}

/// Options of `webhooks replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// RFC 3339 UTC timestamp (e.g. 2026-11-25T10:00:00Z) or date (2026-11-25).
    #[arg(long)]
    pub since: String,
    /// The database.
    #[command(flatten)]
    pub db: DatabaseArgs,
}

/// Options of `export`.
#[derive(Debug, Clone, Args)]
pub struct ExportArgs {
    /// `beancount` or `hledger`.
    #[arg(long)]
    pub format: String,
    /// The tenant whose journal to write.
    #[arg(long)]
    pub tenant: String,
    /// First effective date included (YYYY-MM-DD); balance assertions need the whole history,
    /// so an export with `--from` carries none.
    #[arg(long)]
    pub from: Option<String>,
    /// Last effective date included (YYYY-MM-DD).
    #[arg(long)]
    pub to: Option<String>,
    /// The database.
    #[command(flatten)]
    pub db: DatabaseArgs,
    /// Write here (via a `.partial` file renamed when complete) instead of stdout.
    #[arg(long)]
    pub out: Option<PathBuf>,
}

/// Options of `backup`.
#[derive(Debug, Clone, Args)]
pub struct BackupArgs {
    /// Database to copy (may be in use by a running service).
    #[command(flatten)]
    pub source: DatabaseArgs,
    /// Where to write the copy (must not exist).
    #[arg(long)]
    pub out: PathBuf,
}

/// Options of `serve` and `check-config`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Zero-configuration mode: ./data/hpts.db, a local Ed25519 dev key, issuer hpts-dev, audience hpts.
    #[arg(long)]
    pub dev: bool,
    /// Directory for the dev key, its JWKS and the default database.
    #[arg(long, env = "HPTS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Address to listen on.
    #[arg(long, env = "HPTS_LISTEN", default_value = "127.0.0.1:8080")]
    pub listen: String,
    /// `SQLite` database file [default: `DATA_DIR/hpts.db`].
    #[arg(long, env = "HPTS_DATABASE")]
    pub database: Option<PathBuf>,
    /// Expected JWT issuer (`iss`).
    #[arg(long, env = "HPTS_AUTH_ISSUER")]
    pub auth_issuer: Option<String>,
    /// Expected JWT audience (`aud`).
    #[arg(long, env = "HPTS_AUTH_AUDIENCE")]
    pub auth_audience: Option<String>,
    /// JWKS location: an https:// or http:// URL, or a file path.
    #[arg(long, env = "HPTS_AUTH_JWKS")]
    pub auth_jwks: Option<String>,
    /// Allowed JWT algorithms, comma-separated (subset of RS256, ES256, `EdDSA`).
    #[arg(
        long,
        env = "HPTS_AUTH_ALGORITHMS",
        default_value = "RS256,ES256,EdDSA"
    )]
    pub auth_algorithms: String,
    /// Clock skew tolerated on exp/nbf, in seconds.
    #[arg(long, env = "HPTS_AUTH_LEEWAY_SECONDS", default_value_t = 60)]
    pub auth_leeway_seconds: u64,
    /// Minimum seconds between JWKS refreshes triggered by an unknown kid.
    #[arg(long, env = "HPTS_AUTH_JWKS_REFRESH_SECONDS", default_value_t = 1)]
    pub auth_jwks_refresh_seconds: u64,
    /// Commit durability: full (fsync every commit) or normal.
    #[arg(long, env = "HPTS_SYNCHRONOUS", default_value = "full",
          value_parser = |s: &str| one_of::<Synchronous>("HPTS_SYNCHRONOUS", s))]
    pub synchronous: Synchronous,
    /// When a write is answered: `local` (after the fsynced COMMIT) or `replicated` (once
    /// Litestream's object-storage replica has it too).
    #[arg(long, env = "HPTS_DURABILITY", default_value = "local",
          value_parser = |s: &str| one_of::<Durability>("HPTS_DURABILITY", s))]
    pub durability: Durability,
    /// Litestream's control socket (`socket: path:` in litestream.yml), used with
    /// `HPTS_DURABILITY=replicated` [default: litestream.sock beside the database].
    #[arg(long, env = "HPTS_LITESTREAM_SOCKET")]
    pub litestream_socket: Option<PathBuf>,
    /// Longest a write waits for the replica before it is answered 503
    /// `replication_unavailable`, in milliseconds.
    #[arg(long, env = "HPTS_REPLICATION_TIMEOUT_MS", default_value_t = 10_000)]
    pub replication_timeout_ms: u64,
    /// How long idempotency keys are kept, in hours (at least 24).
    #[arg(long, env = "HPTS_IDEMPOTENCY_RETENTION_HOURS", default_value_t = 24)]
    pub idempotency_retention_hours: u64,
    /// Group commit in the writer: on, or off (one transaction per request, for benchmarks).
    #[arg(long, env = "HPTS_GROUP_COMMIT", default_value = "on",
          value_parser = |s: &str| one_of::<GroupCommit>("HPTS_GROUP_COMMIT", s))]
    pub group_commit: GroupCommit,
    /// Writer queue capacity; a full queue answers 503 overloaded.
    #[arg(long, env = "HPTS_WRITER_QUEUE", default_value_t = 4096)]
    pub writer_queue: usize,
    /// Most requests committed in one transaction.
    #[arg(long, env = "HPTS_WRITER_MAX_BATCH", default_value_t = 512)]
    pub writer_max_batch: usize,
    /// Most loans the writer keeps in memory to decide writes without reading them back.
    #[arg(long, env = "HPTS_WRITER_CACHE_LOANS", default_value_t = 200_000)]
    pub writer_cache_loans: usize,
    /// Most journal lines committed in one transaction (a larger single request runs alone).
    #[arg(long, env = "HPTS_WRITER_MAX_BATCH_COST", default_value_t = 4096)]
    pub writer_max_batch_cost: usize,
    /// HTTP worker threads [default: number of CPU cores].
    #[arg(long, env = "HPTS_WORKERS")]
    pub workers: Option<usize>,
    /// Per-tenant rate limit in requests per second (0 = off).
    #[arg(long, env = "HPTS_RATE_LIMIT_RPS", default_value_t = 0)]
    pub rate_limit_rps: u32,
    /// Per-tenant burst size [default: one second's worth of requests].
    #[arg(long, env = "HPTS_RATE_LIMIT_BURST")]
    pub rate_limit_burst: Option<u32>,
    /// Read-only database connections.
    #[arg(long, env = "HPTS_READ_POOL_SIZE", default_value_t = 8)]
    pub read_pool_size: u32,
    /// Heavy reads (reconciliation, exports) one tenant may run at once; more are 503.
    #[arg(long, env = "HPTS_HEAVY_READS_PER_TENANT", default_value_t = 1)]
    pub heavy_reads_per_tenant: u32,
    /// Log filter (e.g. info, hpts=debug).
    #[arg(long, env = "HPTS_LOG", default_value = "info")]
    pub log: String,
    /// Log format: json or pretty [default: json; pretty with --dev].
    #[arg(long, env = "HPTS_LOG_FORMAT",
          value_parser = |s: &str| one_of::<LogFormat>("HPTS_LOG_FORMAT", s))]
    pub log_format: Option<LogFormat>,
    /// OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`; spans go to its
    /// `/v1/traces`); unset: no span export.
    #[arg(long, env = "HPTS_OTLP_ENDPOINT")]
    pub otlp_endpoint: Option<String>,
    /// `service.name` of exported spans.
    #[arg(long, env = "OTEL_SERVICE_NAME", default_value = "hpts")]
    pub otel_service_name: String,
    /// Timeout of one OTLP export request, in milliseconds.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT", default_value_t = 2000)]
    pub otel_exporter_otlp_timeout: u64,
    /// Most spans waiting for export; more are dropped (and counted in /metrics).
    #[arg(long, env = "OTEL_BSP_MAX_QUEUE_SIZE", default_value_t = 2048)]
    pub otel_bsp_max_queue_size: usize,
    /// Webhook endpoint for `journalEntryPosted` (with `HPTS_WEBHOOK_SECRET`).
    #[arg(long, env = "HPTS_WEBHOOK_URL")]
    pub webhook_url: Option<String>,
    /// Webhook signing secret (`whsec_<base64>` or any string).
    #[arg(long, env = "HPTS_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Give up a webhook delivery after this many hours.
    #[arg(long, env = "HPTS_WEBHOOK_MAX_AGE_HOURS", default_value_t = 72)]
    pub webhook_max_age_hours: u64,
    /// First webhook retry delay, in milliseconds (doubles per attempt).
    #[arg(long, env = "HPTS_WEBHOOK_BACKOFF_MS", default_value_t = 1000)]
    pub webhook_backoff_ms: u64,
    /// Longest webhook retry delay, in seconds.
    #[arg(long, env = "HPTS_WEBHOOK_BACKOFF_MAX_SECONDS", default_value_t = 300)]
    pub webhook_backoff_max_seconds: u64,
    /// Webhook request timeout, in seconds.
    #[arg(long, env = "HPTS_WEBHOOK_TIMEOUT_SECONDS", default_value_t = 10)]
    pub webhook_timeout_seconds: u64,
    /// Hours a delivered (or given-up) webhook outbox row is kept before the writer purges it
    /// (at least 1); `hpts webhooks replay` reaches back only this far.
    #[arg(long, env = "HPTS_WEBHOOK_RETENTION_HOURS", default_value = "168")]
    pub webhook_retention_hours: String,
    /// Undelivered webhook rows while no `HPTS_WEBHOOK_URL` is set: `keep` them for a later
    /// consumer, or `discard` them once older than the retention (no effect with a URL).
    #[arg(long, env = "HPTS_WEBHOOK_BACKLOG", default_value = "keep", value_parser = parse_backlog)]
    pub webhook_backlog: WebhookBacklog,
    /// TLS certificate chain (PEM); with `HPTS_TLS_KEY` the listener speaks HTTPS.
    #[arg(long, env = "HPTS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,
    /// TLS private key (PEM).
    #[arg(long, env = "HPTS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,
    /// CA bundle for client certificates: mutual TLS required on the listener.
    #[arg(long, env = "HPTS_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
}

/// What happens to undelivered webhook outbox rows while no webhook URL is configured
/// (`HPTS_WEBHOOK_BACKLOG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum WebhookBacklog {
    /// Keep them: a URL configured later delivers them, `hpts webhooks replay` re-queues them.
    Keep,
    /// Purge them once older than `HPTS_WEBHOOK_RETENTION_HOURS`: no consumer will come.
    Discard,
}

/// When a write is answered (`HPTS_DURABILITY`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Durability {
    /// After the local, fsynced COMMIT.
    Local,
    /// Once Litestream's object-storage replica has the write too.
    Replicated,
}

/// Group commit in the writer (`HPTS_GROUP_COMMIT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum GroupCommit {
    /// Many requests per transaction (default).
    #[value(alias = "true", alias = "1")]
    On,
    /// One transaction per request, for benchmarks.
    #[value(alias = "false", alias = "0")]
    Off,
}

/// `value` as one of `T`'s names (any case); the error names the variable and the choices.
fn one_of<T: ValueEnum>(var: &str, value: &str) -> Result<T, String> {
    T::from_str(value, true).map_err(|_| {
        let names: Vec<String> = T::value_variants()
            .iter()
            .filter_map(|v| v.to_possible_value().map(|p| p.get_name().to_owned()))
            .collect();
        format!(
            "{var}: {:?} must be {}",
            value.to_ascii_lowercase(),
            names.join(" or ")
        )
    })
}

/// `keep` or `discard` (any case); the error names the variable.
fn parse_backlog(s: &str) -> Result<WebhookBacklog, String> {
    WebhookBacklog::from_str(s, true)
        .map_err(|_| "HPTS_WEBHOOK_BACKLOG must be keep or discard".to_owned())
}

/// Options naming a database file.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// `SQLite` database file [default: `DATA_DIR/hpts.db`].
    #[arg(long, env = "HPTS_DATABASE")]
    pub database: Option<PathBuf>,
    /// Data directory (as for `serve`).
    #[arg(long, env = "HPTS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

impl DatabaseArgs {
    /// The database file these options name.
    pub fn path(&self) -> PathBuf {
        self.database
            .clone()
            .unwrap_or_else(|| self.data_dir.join("hpts.db"))
    }
}

/// Options of `token`.
#[derive(Debug, Clone, Args)]
pub struct TokenArgs {
    /// Tenant id (UUID) the token acts for.
    #[arg(long)]
    pub tenant: String,
    /// Space-separated scopes [default: every hpts scope].
    #[arg(long)]
    pub scope: Option<String>,
    /// Lifetime, e.g. 90s, 15m, 1h, 7d.
    #[arg(long, default_value = "1h")]
    pub ttl: String,
    /// Subject (`sub`), recorded as the actor of entries.
    #[arg(long, default_value = "dev-user")]
    pub subject: String,
    /// Directory holding the dev key (same as `serve --dev`).
    #[arg(long, env = "HPTS_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// Dev-mode settings.
#[derive(Debug, Clone)]
pub struct DevSettings {
    /// Where the dev key lives.
    pub data_dir: PathBuf,
}

/// Everything the service needs, validated.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Listen address (`host:port`; port 0 picks a free port).
    pub listen: String,
    /// HTTP workers (None: one per core).
    pub workers: Option<usize>,
    /// Database and writer.
    pub store: StoreSettings,
    /// Token verification.
    pub auth: AuthSettings,
    /// Dev mode, if on.
    pub dev: Option<DevSettings>,
    /// Log filter.
    pub log_filter: String,
    /// Log format.
    pub log_format: LogFormat,
    /// In-process TLS, if configured.
    pub tls: Option<crate::tls::TlsSettings>,
    /// `journalEntryPosted` delivery, if configured.
    pub webhook: Option<crate::webhooks::WebhookSettings>,
    /// OTLP span export, if configured.
    pub otlp: Option<crate::telemetry::OtlpSettings>,
    /// `HPTS_WEBHOOK_BACKLOG` as configured (it takes effect only without a webhook URL).
    pub webhook_backlog: WebhookBacklog,
    /// Per-tenant rate limit, if on.
    pub rate_limit: Option<crate::http::rate_limit::RateLimit>,
}

/// A configuration problem, naming the variable.
#[derive(Debug, thiserror::Error)]
#[error("configuration error: {0}")]
pub struct ConfigError(pub String);

fn err(msg: impl Into<String>) -> ConfigError {
    ConfigError(msg.into())
}

/// The database, the writer and the read pool (`HPTS_DATABASE`, `HPTS_SYNCHRONOUS`,
/// `HPTS_GROUP_COMMIT`, `HPTS_IDEMPOTENCY_RETENTION_HOURS`, `HPTS_WRITER_*`, `HPTS_READ_POOL_SIZE`,
/// `HPTS_HEAVY_READS_PER_TENANT`, and the webhook outbox retention the writer applies).
fn store_settings(a: &ServeArgs, problems: &mut Vec<String>) -> StoreSettings {
    if a.idempotency_retention_hours < 24 {
        problems.push(format!(
            "HPTS_IDEMPOTENCY_RETENTION_HOURS: {} is below the minimum of 24",
            a.idempotency_retention_hours
        ));
    }
    if a.writer_queue == 0 || a.writer_max_batch == 0 || a.writer_max_batch_cost == 0 {
        problems.push(
            "HPTS_WRITER_QUEUE, HPTS_WRITER_MAX_BATCH and HPTS_WRITER_MAX_BATCH_COST must be at least 1"
                .into(),
        );
    }
    let path = a
        .database
        .clone()
        .unwrap_or_else(|| a.data_dir.join("hpts.db"));
    let replication = replication_settings(a, &path, problems);
    StoreSettings {
        path,
        synchronous: a.synchronous,
        writer: WriterConfig {
            group_commit: a.group_commit == GroupCommit::On,
            max_batch: a.writer_max_batch,
            max_batch_cost: a.writer_max_batch_cost,
            cache_loans: a.writer_cache_loans,
            queue_capacity: a.writer_queue,
            idempotency_retention: Duration::from_hours(a.idempotency_retention_hours),
            purge_interval: Duration::from_mins(10),
            outbox_retention: outbox_retention(a, problems),
        },
        read_pool_size: a.read_pool_size,
        heavy_reads_per_tenant: a.heavy_reads_per_tenant,
        replication,
    }
}

/// Replicated acknowledgements (`HPTS_DURABILITY`, `HPTS_LITESTREAM_SOCKET`,
/// `HPTS_REPLICATION_TIMEOUT_MS`): `None` for `local`.
fn replication_settings(
    a: &ServeArgs,
    database: &std::path::Path,
    problems: &mut Vec<String>,
) -> Option<crate::store::ReplicationSettings> {
    if !(100..=600_000).contains(&a.replication_timeout_ms) {
        problems.push(format!(
            "HPTS_REPLICATION_TIMEOUT_MS: {} must be between 100 and 600000",
            a.replication_timeout_ms
        ));
    }
    match a.durability {
        Durability::Local => None,
        Durability::Replicated => {
            let socket = match &a.litestream_socket {
                Some(path) => path.clone(),
                None => std::path::absolute(database)
                    .unwrap_or_else(|_| database.to_path_buf())
                    .with_file_name("litestream.sock"),
            };
            if socket.as_os_str().len() > 107 {
                problems.push(format!(
                    "HPTS_LITESTREAM_SOCKET: {} is longer than a unix socket path may be (107 bytes)",
                    socket.display()
                ));
            } else if !socket.is_absolute() {
                problems.push(format!(
                    "HPTS_LITESTREAM_SOCKET: {} must be an absolute path (the `socket: path:` of \
                     litestream.yml)",
                    socket.display()
                ));
            }
            Some(crate::store::ReplicationSettings {
                socket,
                timeout: Duration::from_millis(a.replication_timeout_ms),
            })
        }
    }
}

/// How long webhook outbox rows are kept (`HPTS_WEBHOOK_RETENTION_HOURS`, and
/// `HPTS_WEBHOOK_BACKLOG` when no `HPTS_WEBHOOK_URL` is set).
fn outbox_retention(a: &ServeArgs, problems: &mut Vec<String>) -> OutboxRetention {
    let hours = match a.webhook_retention_hours.trim().parse::<u64>() {
        Ok(h) if h >= 1 => h,
        _ => {
            problems.push(format!(
                "HPTS_WEBHOOK_RETENTION_HOURS: {:?} must be a whole number of hours, at least 1",
                a.webhook_retention_hours
            ));
            168
        }
    };
    OutboxRetention {
        // Saturating: an absurd number of hours means "never", not a panic.
        keep_finished: Duration::from_secs(hours.saturating_mul(3600)),
        discard_undelivered: a.webhook_url.is_none()
            && a.webhook_backlog == WebhookBacklog::Discard,
    }
}

/// The TLS listener settings (`HPTS_TLS_CERT`, `HPTS_TLS_KEY`, `HPTS_TLS_CLIENT_CA`).
fn tls_settings(a: &ServeArgs, problems: &mut Vec<String>) -> Option<crate::tls::TlsSettings> {
    match (&a.tls_cert, &a.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::TlsSettings {
            cert: cert.clone(),
            key: key.clone(),
            client_ca: a.tls_client_ca.clone(),
        }),
        (None, None) => {
            if a.tls_client_ca.is_some() {
                problems.push("HPTS_TLS_CLIENT_CA needs HPTS_TLS_CERT and HPTS_TLS_KEY".into());
            }
            None
        }
        (Some(_), None) => {
            problems.push("HPTS_TLS_KEY must be set when HPTS_TLS_CERT is".into());
            None
        }
        (None, Some(_)) => {
            problems.push("HPTS_TLS_CERT must be set when HPTS_TLS_KEY is".into());
            None
        }
    }
}

/// The webhook delivery settings (`HPTS_WEBHOOK_*`).
fn webhook_settings(
    a: &ServeArgs,
    problems: &mut Vec<String>,
) -> Option<crate::webhooks::WebhookSettings> {
    match (&a.webhook_url, &a.webhook_secret) {
        (None, None) => None,
        (Some(url), Some(secret)) => {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                problems.push("HPTS_WEBHOOK_URL: must be an http:// or https:// URL".into());
            }
            if secret.is_empty() {
                problems.push("HPTS_WEBHOOK_SECRET: must not be empty".into());
            }
            Some(crate::webhooks::WebhookSettings {
                url: url.clone(),
                key: crate::webhooks::signing_key(secret),
                max_age: Duration::from_hours(a.webhook_max_age_hours.max(1)),
                backoff_base: Duration::from_millis(a.webhook_backoff_ms.max(1)),
                backoff_max: Duration::from_secs(a.webhook_backoff_max_seconds.max(1)),
                timeout: Duration::from_secs(a.webhook_timeout_seconds.max(1)),
            })
        }
        (Some(_), None) => {
            problems.push("HPTS_WEBHOOK_SECRET must be set when HPTS_WEBHOOK_URL is".into());
            None
        }
        (None, Some(_)) => {
            problems.push("HPTS_WEBHOOK_URL must be set when HPTS_WEBHOOK_SECRET is".into());
            None
        }
    }
}

/// OTLP span export (`HPTS_OTLP_ENDPOINT`, `OTEL_SERVICE_NAME`, `OTEL_EXPORTER_OTLP_TIMEOUT`,
/// `OTEL_BSP_MAX_QUEUE_SIZE`).
fn otlp_settings(
    a: &ServeArgs,
    problems: &mut Vec<String>,
) -> Option<crate::telemetry::OtlpSettings> {
    let raw = a.otlp_endpoint.as_ref()?;
    let traces_url = crate::telemetry::traces_url(raw)
        .map_err(|e| problems.push(format!("HPTS_OTLP_ENDPOINT: {e}")))
        .ok()?;
    if a.otel_service_name.trim().is_empty() {
        problems.push("OTEL_SERVICE_NAME: must not be empty".into());
    }
    if a.otel_exporter_otlp_timeout == 0 {
        problems.push("OTEL_EXPORTER_OTLP_TIMEOUT: must be at least 1 (milliseconds)".into());
    }
    if a.otel_bsp_max_queue_size == 0 {
        problems.push("OTEL_BSP_MAX_QUEUE_SIZE: must be at least 1".into());
    }
    Some(crate::telemetry::OtlpSettings {
        traces_url,
        service_name: a.otel_service_name.trim().to_owned(),
        timeout: Duration::from_millis(a.otel_exporter_otlp_timeout),
        max_queue: a.otel_bsp_max_queue_size,
    })
}

/// Token verification: the dev key in `--dev`, else `HPTS_AUTH_*` (all three required).
fn auth_settings(a: &ServeArgs, problems: &mut Vec<String>) -> (AuthSettings, Option<DevSettings>) {
    let mut algorithms = parse_algorithms(&a.auth_algorithms).unwrap_or_else(|e| {
        problems.push(format!("HPTS_AUTH_ALGORITHMS: {e}"));
        Vec::new()
    });
    let (issuer, audience, jwks, dev) = if a.dev {
        if !algorithms.contains(&jsonwebtoken::Algorithm::EdDSA) {
            algorithms.push(jsonwebtoken::Algorithm::EdDSA);
        }
        (
            DEV_ISSUER.to_owned(),
            DEV_AUDIENCE.to_owned(),
            JwksSource::File(a.data_dir.join("dev-jwks.json")),
            Some(DevSettings {
                data_dir: a.data_dir.clone(),
            }),
        )
    } else {
        let missing: Vec<&str> = [
            ("HPTS_AUTH_ISSUER", a.auth_issuer.is_none()),
            ("HPTS_AUTH_AUDIENCE", a.auth_audience.is_none()),
            ("HPTS_AUTH_JWKS", a.auth_jwks.is_none()),
        ]
        .into_iter()
        .filter_map(|(n, m)| m.then_some(n))
        .collect();
        if !missing.is_empty() {
            problems.push(format!(
                "{} must be set (or run `hpts serve --dev` for local development)",
                missing.join(", ")
            ));
        }
        (
            a.auth_issuer.clone().unwrap_or_default(),
            a.auth_audience.clone().unwrap_or_default(),
            JwksSource::parse(a.auth_jwks.as_deref().unwrap_or_default()),
            None,
        )
    };
    let auth = AuthSettings {
        issuer,
        audience,
        jwks,
        algorithms,
        leeway_seconds: a.auth_leeway_seconds,
        refresh_min_interval: Duration::from_secs(a.auth_jwks_refresh_seconds),
    };
    (auth, dev)
}

impl Settings {
    /// Builds and validates the settings: every problem is collected (each naming its
    /// variable) and reported together.
    pub fn from_args(a: &ServeArgs) -> Result<Settings, ConfigError> {
        let mut problems: Vec<String> = Vec::new();
        if !a
            .listen
            .to_socket_addrs()
            .is_ok_and(|mut it| it.next().is_some())
        {
            problems.push(format!(
                "HPTS_LISTEN: {:?} is not a host:port address",
                a.listen
            ));
        }
        if a.workers == Some(0) {
            problems.push("HPTS_WORKERS must be at least 1".into());
        }
        let log_format = match a.log_format {
            Some(format) => format,
            None if a.dev => LogFormat::Pretty,
            None => LogFormat::Json,
        };
        let otlp = otlp_settings(a, &mut problems);
        let store = store_settings(a, &mut problems);
        let tls = tls_settings(a, &mut problems);
        let webhook = webhook_settings(a, &mut problems);
        let (auth, dev) = auth_settings(a, &mut problems);
        if !problems.is_empty() {
            return Err(err(problems.join("; ")));
        }
        Ok(Settings {
            listen: a.listen.clone(),
            workers: a.workers,
            store,
            auth,
            dev,
            log_filter: a.log.clone(),
            log_format,
            webhook,
            otlp,
            webhook_backlog: a.webhook_backlog,
            tls,
            rate_limit: (a.rate_limit_rps > 0).then(|| crate::http::rate_limit::RateLimit {
                per_second: f64::from(a.rate_limit_rps),
                burst: f64::from(a.rate_limit_burst.unwrap_or(a.rate_limit_rps).max(1)),
            }),
        })
    }

    /// The effective configuration as JSON, secrets redacted.
    pub fn redacted(&self) -> serde_json::Value {
        json!({
            "dev": self.dev.is_some(),
            "listen": self.listen,
            "workers": self.workers,
            "database": self.store.path,
            "synchronous": format!("{:?}", self.store.synchronous).to_lowercase(),
            "group_commit": self.store.writer.group_commit,
            "writer_queue": self.store.writer.queue_capacity,
            "writer_max_batch": self.store.writer.max_batch,
            "writer_max_batch_cost": self.store.writer.max_batch_cost,
            "writer_cache_loans": self.store.writer.cache_loans,
            "read_pool_size": self.store.read_pool_size,
            "heavy_reads_per_tenant": self.store.heavy_reads_per_tenant,
            "idempotency_retention_hours": self.store.writer.idempotency_retention.as_secs() / 3600,
            "durability": if self.store.replication.is_some() { "replicated" } else { "local" },
            "replication": self.store.replication.as_ref().map(|r| json!({
                "litestream_socket": r.socket.display().to_string(),
                "timeout_ms": r.timeout.as_millis(),
            })),
            "auth": {
                "issuer": self.auth.issuer,
                "audience": self.auth.audience,
                "jwks": match &self.auth.jwks { JwksSource::File(p) => p.display().to_string(), JwksSource::Url(u) => u.clone() },
                "algorithms": self.auth.algorithms.iter().map(|a| format!("{a:?}")).collect::<Vec<_>>(),
                "leeway_seconds": self.auth.leeway_seconds,
                "jwks_refresh_min_seconds": self.auth.refresh_min_interval.as_secs(),
            },
            "log": self.log_filter,
            "log_format": format!("{:?}", self.log_format).to_lowercase(),
            "webhook": self.webhook.as_ref().map(|w| json!({
                "url": w.url,
                "secret": "***redacted***",
                "max_age_hours": w.max_age.as_secs() / 3600,
                "backoff_ms": w.backoff_base.as_millis(),
                "backoff_max_seconds": w.backoff_max.as_secs(),
                "timeout_seconds": w.timeout.as_secs(),
            })),
            "otlp": self.otlp.as_ref().map(|o| json!({
                "traces_url": o.traces_url,
                "service_name": o.service_name,
                "timeout_ms": o.timeout.as_millis(),
                "max_queue": o.max_queue,
            })),
            "webhook_retention_hours": self.store.writer.outbox_retention.keep_finished.as_secs() / 3600,
            "webhook_backlog": self.webhook_backlog.to_possible_value().map(|v| v.get_name().to_owned()),
            "tls": self.tls.as_ref().map(|t| json!({
                "cert": t.cert.display().to_string(),
                "key": t.key.display().to_string(),
                "client_ca": t.client_ca.as_ref().map(|c| c.display().to_string()),
                "mutual_tls": t.client_ca.is_some(),
            })),
            "rate_limit": self.rate_limit.map(|r| json!({ "per_second": r.per_second, "burst": r.burst })),
        })
    }
}
