//! `GET /metrics` (Prometheus text). HTTP request counts and latency histograms by route
//! template, method and status come from actix-web-prom; the writer's and idempotency counters
//! are read from their atomics at scrape time by [`LedgerCollector`].
//!
//! Series: `hpts_http_requests_total`, `hpts_http_requests_duration_seconds`,
//! `hpts_writer_queue_depth`, `hpts_writer_commits_total`, `hpts_writer_jobs_total`,
//! `hpts_writer_jobs_failed_total`, `hpts_writer_requests_per_commit`,
//! `hpts_writer_max_batch_size`, `hpts_writer_queue_wait_seconds_total`,
//! `hpts_writer_up`, `hpts_writer_cached_loans`, `hpts_writer_wal_frames`,
//! `hpts_writer_checkpoints_total`, `hpts_writer_wal_resets_total`,
//! `hpts_idempotency_replays_total`,
//! `hpts_idempotency_conflicts_total{kind="mismatch"|"in_progress"}`,
//! `hpts_idempotency_purged_total`, `hpts_webhook_deliveries_total`,
//! `hpts_webhook_attempt_failures_total`, `hpts_webhook_given_up_total`, `hpts_webhook_pending`,
//! `hpts_webhook_failed`, `hpts_webhook_purged_total`.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use actix_web_prom::{PrometheusMetrics, PrometheusMetricsBuilder};
use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{Gauge, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

use crate::http::write::InFlight;
use crate::store::Store;
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
    queue_wait: Gauge,
    up: IntGauge,
    cached_loans: IntGauge,
    wal_frames: IntGauge,
    checkpoints: IntCounter,
    wal_resets: IntCounter,
    replays: IntCounter,
    conflicts: IntCounterVec,
    purged: IntCounter,
    descs: Vec<Desc>,
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
            queue_wait: gauge(
                "writer_queue_wait_seconds_total",
                "Total time write requests waited in the queue",
            ),
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
        vec![
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
        ]
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
        self.queue_wait
            .set(s.queue_wait_micros.load(Ordering::Relaxed) as f64 / 1e6);
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

/// The metrics middleware (serves `/metrics`) with the ledger collector registered.
pub fn build(
    store: Store,
    in_flight: Arc<InFlight>,
    webhooks: Arc<WebhookStats>,
) -> Result<PrometheusMetrics, String> {
    let registry = Registry::new();
    registry
        .register(Box::new(LedgerCollector::new(store, in_flight, webhooks)))
        .map_err(|e| format!("metrics registry: {e}"))?;
    PrometheusMetricsBuilder::new("hpts")
        .registry(registry)
        .endpoint("/metrics")
        .mask_unmatched_patterns("UNKNOWN")
        .buckets(&[
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
        ])
        .build()
        .map_err(|e| format!("metrics: {e}"))
}
