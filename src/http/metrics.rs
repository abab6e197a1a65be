//! `GET /metrics` (Prometheus text). HTTP request counts and latency histograms by route
//! template, method and status come from actix-web-prom; the writer's and idempotency counters
//! are read from their atomics at scrape time by [`LedgerCollector`].
//!
//! Series: `hpts_http_requests_total`, `hpts_http_request_duration_seconds`,
//! `hpts_writer_queue_depth`, `hpts_writer_queue_capacity`, `hpts_writer_commits_total`,
//! `hpts_writer_jobs_total`, `hpts_writer_jobs_failed_total`, `hpts_writer_storage_full_total`,
//! `hpts_writer_requests_per_commit`,
//! `hpts_writer_max_batch_size`, `hpts_writer_queue_wait_seconds_total`,
//! `hpts_writer_up`, `hpts_writer_cached_loans`, `hpts_writer_wal_frames`,
//! `hpts_writer_checkpoints_total`, `hpts_writer_wal_resets_total`,
//! `hpts_idempotency_replays_total`,
//! `hpts_idempotency_conflicts_total{kind="mismatch"|"in_progress"}`,
//! `hpts_idempotency_purged_total`, `hpts_webhook_deliveries_total`,
//! `hpts_webhook_attempt_failures_total`, `hpts_webhook_given_up_total`, `hpts_webhook_pending`,
//! `hpts_webhook_failed`, `hpts_webhook_purged_total`, `hpts_reconciliation_failures_total`,
//! `hpts_reconciliation_last_run_timestamp_seconds`, `hpts_otlp_spans_exported_total`,
//! `hpts_otlp_spans_dropped_total`; with replicated acknowledgements also
//! `hpts_replication_up`, `hpts_replication_failures_total`, `hpts_replication_unavailable_total`
//! and `hpts_replication_wait_seconds`. Names follow the Prometheus conventions (base units in
//! the name, `_total` only on counters); `deploy/prometheus/alerts.yml` alerts on them.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web_prom::{ActixMetricsConfiguration, PrometheusMetrics, PrometheusMetricsBuilder};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{
    Counter, Gauge, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
};

use crate::http::write::InFlight;
use crate::store::{Store, WriterStats};
use crate::webhooks::WebhookStats;

/// Reads the store's and the idempotency registry's counters at scrape time.
pub struct LedgerCollector {
    store: Store,
    in_flight: Arc<InFlight>,
    webhooks: Arc<WebhookStats>,
    wh_delivered: IntCounter,
    wh_attempt_failures: IntCounter,
    wh_given_up: IntCounter,
    wh_pending: IntGauge,
    wh_failed: IntGauge,
    wh_purged: IntCounter,
    queue_depth: IntGauge,
    commits: IntCounter,
    jobs: IntCounter,
    jobs_failed: IntCounter,
    per_commit: Gauge,
    max_batch: IntGauge,
    queue_wait: Counter,
    up: IntGauge,
    cached_loans: IntGauge,
    wal_frames: IntGauge,
    checkpoints: IntCounter,
    wal_resets: IntCounter,
    replays: IntCounter,
    conflicts: IntCounterVec,
    purged: IntCounter,
    alerting: AlertingSeries,
    descs: Vec<Desc>,
}

/// Series that exist for the alerts of `deploy/prometheus/alerts.yml`: the queue's capacity
/// (so "near full" is a ratio), disk-full refusals and reconciliation outcomes.
struct AlertingSeries {
    queue_capacity: IntGauge,
    storage_full: IntCounter,
    reconciliation_failures: IntCounter,
    reconciliation_last_run: IntGauge,
}

impl AlertingSeries {
    fn new() -> Self {
        AlertingSeries {
            queue_capacity: int_gauge(
                "writer_queue_capacity",
                "Capacity of the writer queue (HPTS_WRITER_QUEUE)",
            ),
            storage_full: counter(
                "writer_storage_full_total",
                "Write requests refused because the disk was full",
            ),
            reconciliation_failures: counter(
                "reconciliation_failures_total",
                "Reconciliation runs that found a check or the roll-up not ok",
            ),
            reconciliation_last_run: int_gauge(
                "reconciliation_last_run_timestamp_seconds",
                "When the last reconciliation run finished (Unix time; 0 before the first)",
            ),
        }
    }

    fn collectors(&self) -> [&dyn Collector; 4] {
        [
            &self.queue_capacity,
            &self.storage_full,
            &self.reconciliation_failures,
            &self.reconciliation_last_run,
        ]
    }

    /// Reads the store's atomics (at scrape time).
    fn update(&self, s: &WriterStats) {
        self.queue_capacity
            .set(i64::try_from(s.queue_capacity.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        sync_counter(
            &self.storage_full,
            s.storage_full_refusals.load(Ordering::Relaxed),
        );
        sync_counter(
            &self.reconciliation_failures,
            s.reconciliations.failures.load(Ordering::Relaxed),
        );
        self.reconciliation_last_run
            .set(s.reconciliations.last_run_unix.load(Ordering::Relaxed));
    }
}

fn counter(name: &str, help: &str) -> IntCounter {
    IntCounter::with_opts(Opts::new(name, help).namespace("hpts")).expect("valid metric name")
}

fn int_gauge(name: &str, help: &str) -> IntGauge {
    IntGauge::with_opts(Opts::new(name, help).namespace("hpts")).expect("valid metric name")
}

fn gauge(name: &str, help: &str) -> Gauge {
    Gauge::with_opts(Opts::new(name, help).namespace("hpts")).expect("valid metric name")
}

/// Raises a counter to `value` (counters only move up; the atomics they mirror do too).
fn sync_counter(c: &IntCounter, value: u64) {
    let current = c.get();
    if value > current {
        c.inc_by(value - current);
    }
}

impl LedgerCollector {
    /// A collector over the store's writer stats and the in-flight registry.
    pub fn new(store: Store, in_flight: Arc<InFlight>, webhooks: Arc<WebhookStats>) -> Self {
        let conflicts = IntCounterVec::new(
            Opts::new(
                "idempotency_conflicts_total",
                "Idempotency conflicts answered, by kind",
            )
            .namespace("hpts"),
            &["kind"],
        )
        .expect("valid metric name");
        let mut c = LedgerCollector {
            store,
            in_flight,
            webhooks,
            wh_delivered: counter(
                "webhook_deliveries_total",
                "Webhook deliveries acknowledged by the consumer",
            ),
            wh_attempt_failures: counter(
                "webhook_attempt_failures_total",
                "Webhook delivery attempts that failed",
            ),
            wh_given_up: counter(
                "webhook_given_up_total",
                "Webhook deliveries given up after the maximum age",
            ),
            wh_pending: int_gauge(
                "webhook_pending",
                "Webhook deliveries waiting to be sent or retried",
            ),
            wh_failed: int_gauge("webhook_failed", "Webhook deliveries marked failed"),
            wh_purged: counter(
                "webhook_purged_total",
                "Webhook outbox rows purged past their retention",
            ),
            queue_depth: int_gauge(
                "writer_queue_depth",
                "Write requests waiting for the writer",
            ),
            commits: counter("writer_commits_total", "Write transactions committed"),
            jobs: counter(
                "writer_jobs_total",
                "Write requests answered from committed transactions",
            ),
            jobs_failed: counter(
                "writer_jobs_failed_total",
                "Write requests refused or failed in the writer",
            ),
            per_commit: gauge(
                "writer_requests_per_commit",
                "Average write requests per committed transaction",
            ),
            max_batch: int_gauge(
                "writer_max_batch_size",
                "Largest number of requests committed together",
            ),
            queue_wait: Counter::with_opts(
                Opts::new(
                    "writer_queue_wait_seconds_total",
                    "Total time write requests waited in the queue",
                )
                .namespace("hpts"),
            )
            .expect("valid metric name"),
            up: int_gauge("writer_up", "1 while the writer thread runs"),
            cached_loans: int_gauge(
                "writer_cached_loans",
                "Loans the writer holds in memory to decide writes",
            ),
            wal_frames: int_gauge(
                "writer_wal_frames",
                "Frames in the WAL when the checkpoint thread last looked",
            ),
            checkpoints: counter(
                "writer_checkpoints_total",
                "Passive WAL checkpoints run by the checkpoint thread",
            ),
            wal_resets: counter(
                "writer_wal_resets_total",
                "Checkpoints the writer finished between batches so the WAL could start over",
            ),
            replays: counter(
                "idempotency_replays_total",
                "Idempotent replays answered with the stored body",
            ),
            conflicts,
            purged: counter(
                "idempotency_purged_total",
                "Expired idempotency records purged",
            ),
            alerting: AlertingSeries::new(),
            descs: Vec::new(),
        };
        let mut descs = Vec::new();
        for m in c.collectors() {
            descs.extend(m.desc().into_iter().cloned());
        }
        c.descs = descs;
        c
    }

    fn collectors(&self) -> Vec<&dyn Collector> {
        let mut all: Vec<&dyn Collector> = vec![
            &self.queue_depth,
            &self.commits,
            &self.jobs,
            &self.jobs_failed,
            &self.per_commit,
            &self.max_batch,
            &self.queue_wait,
            &self.up,
            &self.cached_loans,
            &self.wal_frames,
            &self.checkpoints,
            &self.wal_resets,
            &self.replays,
            &self.conflicts,
            &self.purged,
            &self.wh_delivered,
            &self.wh_attempt_failures,
            &self.wh_given_up,
            &self.wh_pending,
            &self.wh_failed,
            &self.wh_purged,
        ];
        all.extend(self.alerting.collectors());
        all
    }
}

impl Collector for LedgerCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    #[expect(
        clippy::cast_precision_loss,
        reason = "metrics are approximate by nature"
    )]
    fn collect(&self) -> Vec<MetricFamily> {
        let s = self.store.stats();
        self.queue_depth
            .set(i64::try_from(s.queue_depth.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        let commits = s.commits.load(Ordering::Relaxed);
        let jobs = s.jobs_committed.load(Ordering::Relaxed);
        sync_counter(&self.commits, commits);
        sync_counter(&self.jobs, jobs);
        sync_counter(&self.jobs_failed, s.jobs_failed.load(Ordering::Relaxed));
        self.per_commit.set(if commits == 0 {
            0.0
        } else {
            jobs as f64 / commits as f64
        });
        self.max_batch
            .set(i64::try_from(s.max_batch_seen.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        let waited = s.queue_wait_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let counted = self.queue_wait.get();
        if waited > counted {
            self.queue_wait.inc_by(waited - counted);
        }
        self.up.set(i64::from(self.store.is_ready()));
        self.cached_loans
            .set(i64::try_from(s.cached_loans.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        self.wal_frames.set(s.wal.frames.load(Ordering::Relaxed));
        sync_counter(&self.checkpoints, s.checkpoints.load(Ordering::Relaxed));
        sync_counter(&self.wal_resets, s.wal_resets.load(Ordering::Relaxed));
        sync_counter(&self.replays, s.idempotent_replays.load(Ordering::Relaxed));
        sync_counter(
            &self.conflicts.with_label_values(&["mismatch"]),
            s.idempotency_mismatches.load(Ordering::Relaxed),
        );
        sync_counter(
            &self.conflicts.with_label_values(&["in_progress"]),
            self.in_flight.conflicts(),
        );
        sync_counter(&self.purged, s.idempotency_purged.load(Ordering::Relaxed));
        self.alerting.update(s);
        sync_counter(&self.wh_purged, s.webhook_purged.load(Ordering::Relaxed));
        let w = &self.webhooks;
        sync_counter(&self.wh_delivered, w.delivered.load(Ordering::Relaxed));
        sync_counter(
            &self.wh_attempt_failures,
            w.attempt_failures.load(Ordering::Relaxed),
        );
        sync_counter(&self.wh_given_up, w.given_up.load(Ordering::Relaxed));
        self.wh_pending
            .set(i64::try_from(w.pending.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        self.wh_failed
            .set(i64::try_from(w.failed.load(Ordering::Relaxed)).unwrap_or(i64::MAX));
        self.collectors()
            .into_iter()
            .flat_map(Collector::collect)
            .collect()
    }
}

/// Span export counters (zero while `HPTS_OTLP_ENDPOINT` is unset), read at scrape time.
struct OtlpCollector {
    exported: IntCounter,
    dropped: IntCounter,
}

impl OtlpCollector {
    fn new() -> Self {
        OtlpCollector {
            exported: counter(
                "otlp_spans_exported_total",
                "Spans the OTLP collector accepted",
            ),
            dropped: counter(
                "otlp_spans_dropped_total",
                "Spans lost to a full export queue or a failed export",
            ),
        }
    }
}

impl Collector for OtlpCollector {
    fn desc(&self) -> Vec<&Desc> {
        [&self.exported, &self.dropped]
            .into_iter()
            .flat_map(Collector::desc)
            .collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        let stats = crate::telemetry::otlp_stats();
        sync_counter(&self.exported, stats.exported.load(Ordering::Relaxed));
        sync_counter(&self.dropped, stats.dropped.load(Ordering::Relaxed));
        [&self.exported, &self.dropped]
            .into_iter()
            .flat_map(Collector::collect)
            .collect()
    }
}

/// The metrics middleware (serves `/metrics`) with the ledger collector registered.
pub fn build(
    store: Store,
    in_flight: Arc<InFlight>,
    webhooks: Arc<WebhookStats>,
) -> Result<PrometheusMetrics, String> {
    let registry = Registry::new();
    if let Some(replication) = ReplicationCollector::new(&store) {
        registry
            .register(Box::new(replication))
            .map_err(|e| format!("metrics registry: {e}"))?;
    }
    registry
        .register(Box::new(LedgerCollector::new(store, in_flight, webhooks)))
        .map_err(|e| format!("metrics registry: {e}"))?;
    registry
        .register(Box::new(OtlpCollector::new()))
        .map_err(|e| format!("metrics registry: {e}"))?;
    PrometheusMetricsBuilder::new("hpts")
        .registry(registry)
        .endpoint("/metrics")
        .mask_unmatched_patterns("UNKNOWN")
        .metrics_configuration(
            ActixMetricsConfiguration::default()
                .http_requests_duration_seconds_name("http_request_duration_seconds"),
        )
        .buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .build()
        .map_err(|e| format!("metrics: {e}"))
}

/// `hpts_replication_*`, present only with `HPTS_DURABILITY=replicated`: whether the last sync
/// reached the replica, failed syncs, writes answered 503 `replication_unavailable`, and how
/// long each released write waited for the replica after its COMMIT.
struct ReplicationCollector {
    store: Store,
    up: IntGauge,
    failures: IntCounter,
    unavailable: IntCounter,
    wait: Histogram,
    descs: Vec<Desc>,
}

impl ReplicationCollector {
    fn new(store: &Store) -> Option<Self> {
        let stats = store.replication()?;
        let wait = Histogram::with_opts(
            HistogramOpts::new(
                "replication_wait_seconds",
                "Time from a write's COMMIT until Litestream's replica confirmed it",
            )
            .namespace("hpts")
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
            ]),
        )
        .expect("valid metric name");
        let observed = wait.clone();
        stats.observe_waits(Box::new(move |d| observed.observe(d.as_secs_f64())));
        let mut c = ReplicationCollector {
            store: store.clone(),
            up: int_gauge(
                "replication_up",
                "1 while Litestream's replica confirms writes (the last sync succeeded)",
            ),
            failures: counter(
                "replication_failures_total",
                "Replication syncs that failed or did not reach the replica",
            ),
            unavailable: counter(
                "replication_unavailable_total",
                "Writes answered 503 replication_unavailable (committed locally, not confirmed)",
            ),
            wait,
            descs: Vec::new(),
        };
        c.descs = c
            .collectors()
            .iter()
            .flat_map(|m| m.desc())
            .cloned()
            .collect();
        Some(c)
    }

    fn collectors(&self) -> [&dyn Collector; 4] {
        [&self.up, &self.failures, &self.unavailable, &self.wait]
    }
}

impl Collector for ReplicationCollector {
    fn desc(&self) -> Vec<&Desc> {
        self.descs.iter().collect()
    }

    fn collect(&self) -> Vec<MetricFamily> {
        if let Some(r) = self.store.replication() {
            self.up.set(i64::from(r.up.load(Ordering::Relaxed)));
            sync_counter(&self.failures, r.failures.load(Ordering::Relaxed));
            sync_counter(&self.unavailable, r.timed_out.load(Ordering::Relaxed));
        }
        self.collectors()
            .into_iter()
            .flat_map(Collector::collect)
            .collect()
    }
}
