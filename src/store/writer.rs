//! The single writer. One thread owns the only read-write connection; every write of the service
//! is a `Job` on its bounded queue. This file is the only place a write transaction begins.
//!
//! Group commit: the thread takes every job already waiting into a per-tenant fair queue
//! (`store::schedule`), picks the next batch from it — fair across tenants, bounded by job
//! count (`max_batch`) and by journal lines (`max_batch_cost`) — and runs it inside ONE
//! `BEGIN IMMEDIATE`: every job is decided in memory against the committed state the writer
//! keeps (`store::cache`) and the batch's own overlay (`store::batch`), a refused job leaving no
//! trace, then the accepted jobs' rows are written with a few multi-row statements and the batch
//! commits — one fsync with `synchronous=FULL`. Only after COMMIT returns is any job answered and
//! the cache updated; if a statement or the COMMIT fails, the batch rolls back and its jobs run
//! again one per transaction. A crash at any point before COMMIT loses only unanswered jobs.
//! With group commit off, every job gets its own transaction (kept to benchmark against).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError, sync_channel};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{Connection, TransactionBehavior, params};
use tokio::sync::oneshot;

use crate::clock::{Sources, unix_ms};
use crate::ledger::commands::Command;
use crate::ledger::ids::{LoanId, TenantId};
use crate::report::Chain;
use crate::store::StoreError;
use crate::store::batch::Batch;
use crate::store::cache::WriterCache;
use crate::store::outbox::{self, DeliveryOutcome, OutboxRetention};
use crate::store::replication::Waiter;
use crate::store::schedule::FairQueue;

/// One write as the HTTP layer hands it over: already authenticated and parsed.
#[derive(Debug, Clone)]
pub struct WriteRequest {
    /// Tenant from the verified token.
    pub tenant: TenantId,
    /// The token's `sub`, recorded as the entry's actor.
    pub actor: Option<String>,
    /// Route template, part of the idempotency fingerprint.
    pub route: &'static str,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// Canonical JSON of the request body (stored as the event payload).
    pub payload: String,
    /// The request's `metadata` object, serialised, if any.
    pub metadata: Option<String>,
    /// The W3C `traceparent` of the request's span when spans are exported: the webhook of the
    /// entry is delivered in the same trace.
    pub traceparent: Option<String>,
    /// What to do.
    pub command: Command,
}

impl WriteRequest {
    /// SHA-256 of route and canonical body: what "the same request" means for idempotency.
    pub fn fingerprint(&self) -> String {
        crate::store::batch::fingerprint(self.route, &self.payload)
    }
}

/// What a write answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Newly committed; the body to answer with 201.
    Created(Vec<u8>),
    /// Same key and request as an earlier commit; its stored body, answered with 200.
    Replayed(Vec<u8>),
}

/// Tunables of the writer.
#[derive(Debug, Clone)]
pub struct WriterConfig {
    /// Batch many jobs into one transaction.
    pub group_commit: bool,
    /// Most jobs in one transaction.
    pub max_batch: usize,
    /// Queue capacity; a full queue answers 503 `overloaded`.
    pub queue_capacity: usize,
    /// Most loans the writer keeps in memory (`HPTS_WRITER_CACHE_LOANS`).
    pub cache_loans: usize,
    /// Most journal lines one transaction takes (a single larger job runs alone): what bounds
    /// how long one tenant's large batches can hold another tenant's single writes.
    pub max_batch_cost: usize,
    /// How long idempotency records are kept.
    pub idempotency_retention: Duration,
    /// How often expired idempotency records and old webhook outbox rows are purged.
    pub purge_interval: Duration,
    /// How long webhook outbox rows are kept.
    pub outbox_retention: OutboxRetention,
}

/// Counters the writer keeps for `/metrics`.
#[derive(Debug, Default)]
pub struct WriterStats {
    /// Jobs waiting in the queue.
    pub queue_depth: AtomicUsize,
    /// The queue's capacity (`HPTS_WRITER_QUEUE`): with the queue full, writes are refused.
    pub queue_capacity: AtomicUsize,
    /// Transactions committed.
    pub commits: AtomicU64,
    /// Jobs answered from committed transactions (new writes and replays).
    pub jobs_committed: AtomicU64,
    /// Jobs that failed (business refusals and errors).
    pub jobs_failed: AtomicU64,
    /// Jobs refused because the disk was full (`SQLITE_FULL`); also counted in `jobs_failed`.
    pub storage_full_refusals: AtomicU64,
    /// Idempotent replays answered.
    pub idempotent_replays: AtomicU64,
    /// Idempotency mismatches answered.
    pub idempotency_mismatches: AtomicU64,
    /// Idempotency records purged.
    pub idempotency_purged: AtomicU64,
    /// Webhook outbox rows purged past their retention.
    pub webhook_purged: AtomicU64,
    /// Passive WAL checkpoints run by the checkpoint thread.
    pub checkpoints: AtomicU64,
    /// The WAL's length as the checkpoint thread last saw it.
    pub wal: crate::store::checkpoint::WalProgress,
    /// Checkpoints the writer finished itself so the WAL could start over.
    pub wal_resets: AtomicU64,
    /// Loans the writer holds in memory.
    pub cached_loans: AtomicUsize,
    /// Largest batch so far.
    pub max_batch_seen: AtomicUsize,
    /// Total microseconds jobs spent waiting in the queue.
    pub queue_wait_micros: AtomicU64,
    /// True while the writer thread runs.
    pub alive: AtomicBool,
    /// Signalled after each commit (new webhook outbox rows may be due).
    pub outbox_signal: tokio::sync::Notify,
    /// Reconciliation runs and how many found a mismatch.
    pub reconciliations: crate::store::reconcile::RunStats,
}

/// Where a job's answer goes.
pub(crate) type Reply = oneshot::Sender<Result<WriteOutcome, StoreError>>;

/// A queued job.
pub(crate) struct Job {
    req: WriteRequest,
    /// The request's idempotency fingerprint, hashed by the submitting HTTP worker so the
    /// writer thread does not.
    fingerprint: String,
    reply: Reply,
    enqueued: Instant,
    /// The requester's span: the batch span's parent (for the batch's first job) and link.
    span: tracing::Span,
    /// `writer.queue_wait`, from enqueue to the start of the job's batch.
    queue_wait: tracing::Span,
}

pub(crate) enum Msg {
    Job(Box<Job>),
    /// Webhook delivery outcomes to record (its own small transaction).
    Deliveries(
        Vec<DeliveryOutcome>,
        oneshot::Sender<Result<(), StoreError>>,
    ),
    /// What the writer holds in memory for one loan (diagnostics and tests).
    Inspect(
        TenantId,
        LoanId,
        oneshot::Sender<Option<crate::ledger::state::LoanState>>,
    ),
    Shutdown,
}

/// The sending side, held by the [`super::Store`].
pub(crate) struct WriterHandle {
    tx: SyncSender<Msg>,
    stats: Arc<WriterStats>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl WriterHandle {
    /// Starts the writer thread on an open, migrated connection.
    pub(crate) fn spawn(
        conn: Connection,
        config: WriterConfig,
        sources: Sources,
        stats: Arc<WriterStats>,
        replication: Option<Arc<Waiter>>,
    ) -> Result<Self, StoreError> {
        let next_entry_seq: i64 = conn.query_row(
            "SELECT coalesce(max(entry_seq), 0) + 1 FROM journal_entries",
            [],
            |r| r.get(0),
        )?;
        let (tx, rx) = sync_channel(config.queue_capacity.max(1));
        stats
            .queue_capacity
            .store(config.queue_capacity.max(1), Ordering::Relaxed);
        stats.alive.store(true, Ordering::SeqCst);
        let thread_stats = Arc::clone(&stats);
        let thread = std::thread::Builder::new()
            .name("hpts-writer".into())
            .spawn(move || {
                // Clears `alive` however the thread ends, panics included, so readiness is honest.
                let _alive = AliveGuard(Arc::clone(&thread_stats));
                let mut writer = Writer {
                    cache: WriterCache::new(config.cache_loans),
                    conn,
                    config,
                    sources,
                    stats: thread_stats,
                    next_entry_seq,
                    replication,
                };
                writer.run(&rx);
            })
            .map_err(|e| StoreError::failed("cannot start writer thread", e))?;
        Ok(WriterHandle {
            tx,
            stats,
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Enqueues a job without waiting for room; a full queue is [`StoreError::Overloaded`].
    pub(crate) async fn submit(&self, req: WriteRequest) -> Result<WriteOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Box::new(Job {
            fingerprint: req.fingerprint(),
            req,
            reply,
            enqueued: Instant::now(),
            span: tracing::Span::current(),
            queue_wait: tracing::debug_span!("writer.queue_wait"),
        });
        self.stats.queue_depth.fetch_add(1, Ordering::Relaxed);
        if let Err(e) = self.tx.try_send(Msg::Job(job)) {
            self.stats.queue_depth.fetch_sub(1, Ordering::Relaxed);
            return Err(match e {
                TrySendError::Full(_) => StoreError::Overloaded,
                TrySendError::Disconnected(_) => StoreError::Unavailable,
            });
        }
        // A dropped reply means the writer stopped before answering: nothing was committed.
        answer.await.unwrap_or(Err(StoreError::Unavailable))
    }

    /// The loan's state as the writer holds it in memory, if it holds it (answered between
    /// batches, so it is always committed state).
    pub(crate) async fn inspect_loan(
        &self,
        tenant: TenantId,
        loan: LoanId,
    ) -> Result<Option<crate::ledger::state::LoanState>, StoreError> {
        let (reply, answer) = oneshot::channel();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(Msg::Inspect(tenant, loan, reply)))
            .await
            .map_err(|_| StoreError::Unavailable)?
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.map_err(|_| StoreError::Unavailable)
    }

    /// Records webhook delivery outcomes through the writer.
    pub(crate) async fn record_deliveries(
        &self,
        outcomes: Vec<DeliveryOutcome>,
    ) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        // Blocking is fine: outcomes are few, and waiting for queue room is the right backpressure.
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || tx.send(Msg::Deliveries(outcomes, reply)))
            .await
            .map_err(|_| StoreError::Unavailable)?
            .map_err(|_| StoreError::Unavailable)?;
        answer.await.unwrap_or(Err(StoreError::Unavailable))
    }

    /// Lets the writer finish every queued job, then stops it and waits for the thread.
    pub(crate) fn shutdown(&self) {
        let Some(thread) = self.thread.lock().take() else {
            return;
        };
        // Blocking send: queued jobs ahead of the marker are all committed and answered first.
        if self.tx.send(Msg::Shutdown).is_ok() {
            let _ = thread.join();
        }
    }
}

struct AliveGuard(Arc<WriterStats>);

impl Drop for AliveGuard {
    fn drop(&mut self) {
        self.0.alive.store(false, Ordering::SeqCst);
    }
}

struct Writer {
    conn: Connection,
    config: WriterConfig,
    sources: Sources,
    stats: Arc<WriterStats>,
    cache: WriterCache,
    /// Posting sequence of the next entry (entries are numbered by the writer, so a batch can
    /// link loans to entries before writing them).
    next_entry_seq: i64,
    /// With replicated acknowledgements, where committed answers wait for the replica.
    replication: Option<Arc<Waiter>>,
}

impl Writer {
    fn run(&mut self, rx: &Receiver<Msg>) {
        let mut next_purge = Instant::now();
        let max_batch = if self.config.group_commit {
            self.config.max_batch.max(1)
        } else {
            1
        };
        let mut queue: FairQueue<TenantId, Job> = FairQueue::new();
        let mut stopping = false;
        loop {
            if Instant::now() >= next_purge {
                self.purge_expired_keys();
                let more = self.purge_webhook_outbox();
                let interval = self.config.purge_interval;
                next_purge = Instant::now()
                    + if more {
                        OUTBOX_PURGE_CATCH_UP.min(interval)
                    } else {
                        interval
                    };
            }
            if queue.is_empty() {
                if stopping {
                    return;
                }
                let timeout = next_purge.saturating_duration_since(Instant::now());
                match rx.recv_timeout(timeout) {
                    Ok(msg) => stopping |= self.accept(msg, &mut queue),
                    Err(RecvTimeoutError::Disconnected) => return,
                    Err(RecvTimeoutError::Timeout) => continue,
                }
            }
            // Take in everything already waiting (up to the queue's capacity), so the fair
            // order below sees every tenant that is waiting now, not just the oldest job.
            while !stopping && queue.len() < self.config.queue_capacity.max(1) {
                match rx.try_recv() {
                    Ok(msg) => stopping |= self.accept(msg, &mut queue),
                    Err(_) => break,
                }
            }
            let batch = queue.next_batch(max_batch, self.config.max_batch_cost);
            if batch.is_empty() {
                continue;
            }
            self.stats
                .queue_depth
                .fetch_sub(batch.len(), Ordering::Relaxed);
            self.stats
                .max_batch_seen
                .fetch_max(batch.len(), Ordering::Relaxed);
            self.run_batch(batch);
            self.let_the_wal_start_over();
        }
    }

    /// Between two batches, once the WAL is long, finishes the background thread's checkpoint
    /// (only the frames written since it last ran remain to copy), so the next transaction
    /// starts the WAL from the beginning instead of growing it forever.
    /// Never in replicated mode, where Litestream owns the WAL (see [`crate::store::Store::open`]).
    fn let_the_wal_start_over(&mut self) {
        if self.replication.is_some() || !self.stats.wal.wants_reset() {
            return;
        }
        // Whatever the answer, wait for the background thread's next numbers before trying
        // again (a reader holding an old snapshot would otherwise make every batch try).
        self.stats.wal.frames.store(0, Ordering::Relaxed);
        match crate::store::pragmas::checkpoint_passive(&self.conn) {
            Ok(run) if run.copied_everything() => {
                tracing::debug!(frames = run.frames, "writer finished a WAL checkpoint");
                self.stats.wal_resets.fetch_add(1, Ordering::Relaxed);
            }
            // Busy (another checkpoint holds the lock) or not every frame copied (a reader still
            // needs an old one): the WAL does not start over, so it is not counted as a reset.
            Ok(run) => tracing::debug!(?run, "writer's WAL checkpoint did not finish"),
            Err(e) => tracing::warn!(error = %e, "passive WAL checkpoint failed"),
        }
    }

    /// Handles one message from the channel: a job joins the fair queue, delivery outcomes are
    /// recorded at once. Returns true for the shutdown marker.
    fn accept(&mut self, msg: Msg, queue: &mut FairQueue<TenantId, Job>) -> bool {
        match msg {
            Msg::Job(job) => {
                let cost = job.req.command.cost();
                queue.push(job.req.tenant, *job, cost);
                false
            }
            Msg::Deliveries(outcomes, reply) => {
                let _ = reply.send(self.record_deliveries(&outcomes));
                false
            }
            Msg::Inspect(tenant, loan, reply) => {
                let _ = reply.send(self.cache.peek_loan(tenant, loan));
                false
            }
            Msg::Shutdown => true,
        }
    }

    /// Records webhook delivery outcomes in one transaction.
    fn record_deliveries(&mut self, outcomes: &[DeliveryOutcome]) -> Result<(), StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        outbox::record(&tx, outcomes, unix_ms(self.sources.clock.now()))?;
        tx.commit()?;
        Ok(())
    }

    /// One transaction for the whole batch, answers after COMMIT. Refusals are decided in
    /// memory and leave no trace, so a batch needs no savepoint per job; if a statement still
    /// fails, the batch is rolled back and each of its jobs runs again in a transaction of its
    /// own, so no job fails because of a neighbour.
    fn run_batch(&mut self, mut batch: Vec<Job>) {
        let started = Instant::now();
        for job in &mut batch {
            job.queue_wait = tracing::Span::none(); // closes `writer.queue_wait`
            let waited = started.saturating_duration_since(job.enqueued);
            self.stats.queue_wait_micros.fetch_add(
                u64::try_from(waited.as_micros()).unwrap_or(u64::MAX),
                Ordering::Relaxed,
            );
        }
        let results = match self.commit_batch(&batch) {
            Ok(results) => results,
            Err(e) if batch.len() > 1 && !matches!(e, StoreError::StorageFull) => {
                tracing::warn!(error = %Chain(&e), jobs = batch.len(), "write batch failed; running its jobs one by one");
                batch
                    .iter()
                    .map(|job| match self.commit_batch(std::slice::from_ref(job)) {
                        Ok(mut one) => one.pop().unwrap_or(Err(StoreError::Unavailable)),
                        Err(e) => Err(refused_by_failed_commit(&e, &self.stats)),
                    })
                    .collect()
            }
            Err(e) => batch
                .iter()
                .map(|_| Err(refused_by_failed_commit(&e, &self.stats)))
                .collect(),
        };
        // Let go of the requesters' spans before answering, so each closes on its own thread.
        for job in &mut batch {
            job.span = tracing::Span::none();
        }
        let mut held = Vec::new();
        for (job, result) in batch.into_iter().zip(results) {
            match &result {
                Ok(WriteOutcome::Replayed(_)) => {
                    self.stats
                        .idempotent_replays
                        .fetch_add(1, Ordering::Relaxed);
                    self.stats.jobs_committed.fetch_add(1, Ordering::Relaxed);
                }
                Ok(WriteOutcome::Created(_)) => {
                    self.stats.jobs_committed.fetch_add(1, Ordering::Relaxed);
                }
                Err(StoreError::IdempotencyMismatch) => {
                    self.stats
                        .idempotency_mismatches
                        .fetch_add(1, Ordering::Relaxed);
                    self.stats.jobs_failed.fetch_add(1, Ordering::Relaxed);
                }
                Err(_) => {
                    self.stats.jobs_failed.fetch_add(1, Ordering::Relaxed);
                }
            }
            if self.replication.is_some() && decided_on_committed_state(&result) {
                held.push((job.reply, result));
            } else {
                // The requester may have gone away; its write is committed regardless.
                let _ = job.reply.send(result);
            }
        }
        if let Some(waiter) = &self.replication {
            waiter.hold(held);
        }
    }

    /// Decides every job of `jobs` against the committed state, writes the accepted ones in one
    /// transaction, and only after its COMMIT lets the cache take in what they decided.
    fn commit_batch(
        &mut self,
        jobs: &[Job],
    ) -> Result<Vec<Result<WriteOutcome, StoreError>>, StoreError> {
        // A child of the first request it serves, linked to every one (a batch serves many
        // traces; exported links point from it to each).
        let span = tracing::debug_span!(
            parent: jobs.first().and_then(|j| j.span.id()),
            "sqlite.transaction",
            jobs = jobs.len()
        );
        for job in jobs {
            span.follows_from(&job.span);
        }
        let _guard = span.enter();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut batch = Batch::new(
            &tx,
            &mut self.cache,
            &self.sources,
            self.config.idempotency_retention,
            self.next_entry_seq,
        );
        let results: Vec<_> = jobs
            .iter()
            .map(|job| batch.execute(&job.req, &job.fingerprint))
            .collect();
        batch.write()?;
        let next_entry_seq = batch.next_entry_seq();
        let (tenants, loans) = batch.into_committed();
        tx.commit()?;
        self.next_entry_seq = next_entry_seq;
        self.cache.absorb(tenants, loans);
        self.stats.commits.fetch_add(1, Ordering::Relaxed);
        self.stats
            .cached_loans
            .store(self.cache.loan_count(), Ordering::Relaxed);
        // New outbox rows are committed: wake the webhook delivery worker.
        self.stats.outbox_signal.notify_one();
        Ok(results)
    }

    fn purge_expired_keys(&mut self) {
        let now = self.sources.clock.now().unix_timestamp();
        for _ in 0..20 {
            let deleted = self.conn.execute(
                "DELETE FROM idempotency_keys WHERE (tenant_id, idempotency_key) IN \
                 (SELECT tenant_id, idempotency_key FROM idempotency_keys WHERE expires_at <= ?1 LIMIT 5000)",
                params![now],
            );
            match deleted {
                Ok(n) => {
                    self.stats
                        .idempotency_purged
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if n < 5000 {
                        return;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "purging expired idempotency keys failed");
                    return;
                }
            }
        }
    }
}

/// Outbox rows one purge statement deletes at most, and statements one tick runs at most: small
/// transactions, so a tick holds writes for a few milliseconds only.
const OUTBOX_PURGE_ROWS: u32 = 2000;
const OUTBOX_PURGE_STATEMENTS: usize = 5;
/// While rows past retention remain after a tick, the next one comes this soon (instead of
/// after the purge interval), so any backlog is worked off at up to 10,000 rows a second.
const OUTBOX_PURGE_CATCH_UP: Duration = Duration::from_secs(1);

impl Writer {
    /// Deletes webhook outbox rows past retention, a batch per statement, each its own
    /// transaction (between write batches, like the idempotency purge). True when the tick
    /// stopped at its statement limit with rows possibly left.
    fn purge_webhook_outbox(&mut self) -> bool {
        let retention = self.config.outbox_retention;
        let cutoff_ms = retention.cutoff_ms(unix_ms(self.sources.clock.now()));
        for _ in 0..OUTBOX_PURGE_STATEMENTS {
            match outbox::purge(
                &self.conn,
                cutoff_ms,
                retention.discard_undelivered,
                OUTBOX_PURGE_ROWS,
            ) {
                Ok(n) => {
                    self.stats
                        .webhook_purged
                        .fetch_add(n as u64, Ordering::Relaxed);
                    if n < OUTBOX_PURGE_ROWS as usize {
                        return false;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %Chain(&e), "purging old webhook outbox rows failed");
                    return false;
                }
            }
        }
        true
    }
}

/// Whether an answer rests on committed state (a write, a replay, or a refusal decided against
/// what earlier transactions committed), so that with replicated acknowledgements it waits for
/// the replica; failures of the transaction itself are answered at once.
fn decided_on_committed_state(result: &Result<WriteOutcome, StoreError>) -> bool {
    matches!(
        result,
        Ok(_) | Err(StoreError::Ledger(_) | StoreError::IdempotencyMismatch)
    )
}

/// What a job of a batch whose transaction failed is told: nothing of it was written.
fn refused_by_failed_commit(e: &StoreError, stats: &WriterStats) -> StoreError {
    tracing::error!(error = %Chain(e), "write transaction failed; its jobs are refused");
    match e {
        StoreError::StorageFull => {
            stats.storage_full_refusals.fetch_add(1, Ordering::Relaxed);
            StoreError::StorageFull
        }
        // Every job of the batch is told; each keeps the cause as text (the error itself
        // belongs to the batch).
        _ => StoreError::failed("transaction failed", Chain(e).to_string()),
    }
}

/// Re-queues webhook deliveries of entries posted at or after `since`, from another process
/// (`hpts webhooks replay`): one `BEGIN IMMEDIATE` transaction on the database file.
pub fn requeue_webhooks(
    path: &std::path::Path,
    since: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    let mut conn = crate::store::open_existing(path, true)?;
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let n = outbox::requeue_since(&tx, since, now_ms)?;
    tx.commit()?;
    Ok(n)
}
