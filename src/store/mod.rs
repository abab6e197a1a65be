//! All SQL lives here. Writes go through [`Store::write`] to the single writer thread
//! ([`writer`], the only place a write transaction begins); reads go through the read-only r2d2
//! pool ([`readers`]). Nothing outside this module names rusqlite.
//!
//! Reads are bounded so that no tenant can take the pool from the others ([`read_control`]): a
//! read that cannot get a connection within [`READ_CHECKOUT_WAIT`] is `ReadBusy` (503), heavy
//! reads (reconciliation, exports) are admitted per tenant and in all or refused at once, and a
//! read whose caller went away (or whose deadline passed) is interrupted and answers
//! `Cancelled`, leaving its connection clean.

pub(crate) mod batch;
pub(crate) mod cache;
pub mod chain;
pub(crate) mod checkpoint;
pub mod error;
pub mod export;
pub mod migrate;
pub mod outbox;
pub mod pragmas;
pub mod read_control;
pub mod readers;
pub mod reconcile;
pub mod replication;
pub(crate) mod rows;
pub(crate) mod schedule;
pub(crate) mod trial_balance;
pub mod writer;

/// How `SQLite` would run `sql` (`EXPLAIN QUERY PLAN`), one step per `; `-separated part: what the
/// unit tests assert index use on.
#[cfg(test)]
pub(crate) fn query_plan(
    conn: &rusqlite::Connection,
    sql: &str,
    params: impl rusqlite::Params,
) -> String {
    let mut stmt = conn
        .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
        .expect("plan");
    let rows: Vec<String> = stmt
        .query_map(params, |r| r.get(3))
        .expect("plan rows")
        .collect::<Result<_, _>>()
        .expect("plan row");
    rows.join("; ")
}

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use r2d2_sqlite::SqliteConnectionManager;
use rusqlite::{Connection, OpenFlags};
use time::Date;

pub use error::{ItemProblem, StoreError};
pub use pragmas::Synchronous;
pub use read_control::ReadStop;
pub use readers::{AccountBalanceView, EntryPage, EntryPageQuery, EntryView, LineView, LoanView};
pub use reconcile::{Check, CurrencyRollup, Reconciliation, Rollup};
pub use replication::{ReplicationSettings, ReplicationStats};
pub use writer::{WriteOutcome, WriteRequest, WriterConfig, WriterStats, requeue_webhooks};

use crate::clock::Sources;
use crate::ledger::accounts::Account;
use crate::ledger::ids::{EntryId, LoanId, TenantId};
use read_control::{HeavyPermit, HeavyReads};
use writer::WriterHandle;

/// How long a read waits for a pooled connection before it answers `ReadBusy` (503
/// `overloaded` with `Retry-After`): short, so a caller learns quickly that it should retry
/// instead of holding its request (and a blocking thread) open.
pub const READ_CHECKOUT_WAIT: Duration = Duration::from_secs(1);

/// The longest a heavy read (reconciliation, export) may run; it is then interrupted and
/// answers `Cancelled`. Generous: a large tenant's reconciliation takes seconds, not minutes.
pub const HEAVY_READ_DEADLINE: Duration = Duration::from_mins(2);
/// Longest a journal export may run (it streams to its client, which also stops it by going
/// away; the bound keeps one export from holding a read snapshot, and WAL growth, forever).
pub const EXPORT_DEADLINE: Duration = Duration::from_hours(1);

/// Where and how the database is opened.
#[derive(Debug, Clone)]
pub struct StoreSettings {
    /// Database file.
    pub path: PathBuf,
    /// Commit durability.
    pub synchronous: Synchronous,
    /// Writer tunables.
    pub writer: WriterConfig,
    /// Read-only connections in the pool.
    pub read_pool_size: u32,
    /// Heavy reads (reconciliation, exports) one tenant may run at a time; heavy reads of all
    /// tenants together never take more than half the pool.
    pub heavy_reads_per_tenant: u32,
    /// With `HPTS_DURABILITY=replicated`: how to reach Litestream, whose replica must confirm a
    /// write before it is answered. `None` answers after the local COMMIT.
    pub replication: Option<ReplicationSettings>,
}

/// The ledger's storage: one writer thread, a read-only pool. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    inner: Arc<Inner>,
}

struct Inner {
    writer: WriterHandle,
    /// The background checkpoint thread; none while Litestream owns the WAL (replicated mode).
    checkpointer: Option<checkpoint::Checkpointer>,
    readers: r2d2::Pool<SqliteConnectionManager>,
    heavy: Arc<HeavyReads>,
    stats: Arc<WriterStats>,
    replication: Option<(Arc<replication::Waiter>, Arc<ReplicationStats>)>,
    path: PathBuf,
    page_token_key: [u8; 32],
}

/// Loads (or creates, once) a named 32-byte service key.
fn service_key(conn: &Connection, name: &str, sources: &Sources) -> Result<[u8; 32], StoreError> {
    let existing: Option<Vec<u8>> = conn
        .query_row(
            "SELECT key FROM service_keys WHERE name = ?1",
            [name],
            |r| r.get(0),
        )
        .map(Some)
        .or_else(|e| {
            if matches!(e, rusqlite::Error::QueryReturnedNoRows) {
                Ok(None)
            } else {
                Err(e)
            }
        })?;
    if let Some(key) = existing {
        return key
            .try_into()
            .map_err(|_| StoreError::Invalid(format!("service key {name} is malformed")));
    }
    let mut key = [0u8; 32];
    getrandom::fill(&mut key)
        .map_err(|e| StoreError::failed(format!("no randomness for {name}"), e))?;
    conn.execute(
        "INSERT INTO service_keys (name, key, created_at) VALUES (?1, ?2, ?3)",
        rusqlite::params![
            name,
            key.to_vec(),
            crate::clock::format_timestamp(sources.clock.now())
        ],
    )?;
    Ok(key)
}

/// Opens an existing database file from a command beside the service (`verify`, `export`,
/// `backup`, `webhooks replay`): read-only with the readers' pragmas, or read-write with those
/// of a side connection. Never creates the file.
pub(crate) fn open_existing(path: &Path, writable: bool) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::Invalid(format!(
            "{} does not exist",
            path.display()
        )));
    }
    let access = if writable {
        OpenFlags::SQLITE_OPEN_READ_WRITE
    } else {
        OpenFlags::SQLITE_OPEN_READ_ONLY
    };
    let conn = Connection::open_with_flags(path, access | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .map_err(|e| StoreError::failed(format!("cannot open {}", path.display()), e))?;
    if writable {
        pragmas::apply_side(&conn)?;
    } else {
        pragmas::apply_reader(&conn)?;
    }
    Ok(conn)
}

/// Opens a database file read-only (for `verify` and `export`).
fn open_read_only(path: &Path) -> Result<Connection, StoreError> {
    open_existing(path, false)
}

/// One tenant's outcome in [`verify_file`]: its checks, or why they could not be run at all.
pub type TenantVerification = (String, Result<Reconciliation, StoreError>);

/// Offline verification of a database file: every tenant's reconciliation checks. A tenant
/// whose checks fail (or cannot even start) is reported and the next tenant is checked all the
/// same; the outer error means the file itself is unusable (missing, not a database).
/// `progress` is called before each tenant with (index, count, tenant).
pub fn verify_file(
    path: &Path,
    mut progress: impl FnMut(usize, usize, &str),
) -> Result<Vec<TenantVerification>, StoreError> {
    let conn = open_read_only(path)?;
    let tenants = reconcile::tenants(&conn)?;
    let stop = ReadStop::new();
    let mut out = Vec::with_capacity(tenants.len());
    for (i, tenant) in tenants.iter().enumerate() {
        progress(i, tenants.len(), tenant);
        let outcome = reconcile::reconcile(&conn, tenant, None, &stop);
        if !conn.is_autocommit() {
            // A tenant that failed half-way must not leave its snapshot to the next one.
            let _ = conn.execute_batch("ROLLBACK");
        }
        out.push((tenant.clone(), outcome));
    }
    Ok(out)
}

/// `hpts export`: the tenant's journal from a database file (read-only, one snapshot, safe
/// beside a running service), written to `out`. `progress(done, total)` is called as entries
/// are written.
pub fn export_file<W: std::io::Write>(
    path: &Path,
    tenant: TenantId,
    format: crate::ledger::export::Format,
    range: export::ExportRange,
    out: W,
    progress: &mut dyn FnMut(u64, u64),
) -> Result<W, StoreError> {
    let conn = open_read_only(path)?;
    conn.execute_batch("BEGIN")?;
    let tenant = tenant.to_string();
    let total = export::count_entries(&conn, &tenant, range)?;
    let result = export::write_journal(
        &conn,
        &tenant,
        format,
        range,
        out,
        &ReadStop::new(),
        &mut |done| progress(done, total),
    );
    let _ = conn.execute_batch("COMMIT");
    result
}

/// A consistent copy of a live database (`VACUUM INTO`), safe while the service writes.
pub fn backup_file(path: &Path, out: &Path) -> Result<(), StoreError> {
    if out.exists() {
        return Err(StoreError::Invalid(format!(
            "{} already exists; refusing to overwrite",
            out.display()
        )));
    }
    // VACUUM INTO needs a read-write handle on the source, although it only reads it: it copies
    // one consistent snapshot, and WAL mode lets the service keep writing meanwhile.
    let conn = open_existing(path, true)?;
    conn.execute("VACUUM INTO ?1", [out.display().to_string()])
        .map_err(|e| StoreError::failed("backup failed", e))?;
    Ok(())
}

/// Opens (creating if needed) the read-write connection with the writer's pragmas.
fn open_writer_connection(path: &Path, synchronous: Synchronous) -> Result<Connection, StoreError> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| {
            StoreError::failed(
                format!("cannot create database directory {}", dir.display()),
                e,
            )
        })?;
    }
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError::failed(format!("cannot open database {}", path.display()), e))?;
    pragmas::apply_writer(&conn, synchronous).map_err(|e| {
        StoreError::failed(format!("cannot configure database {}", path.display()), e)
    })?;
    Ok(conn)
}

/// One read on one pooled connection, inside one read transaction (one WAL snapshot), watched
/// by `stop`. However it ends, the connection goes back to the pool with no progress handler
/// and no open transaction.
fn read_on_pool<T>(
    pool: &r2d2::Pool<SqliteConnectionManager>,
    stop: &ReadStop,
    f: impl FnOnce(&Connection, &ReadStop) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    let conn = pool.get().map_err(|e| {
        tracing::debug!(error = %e, "no read connection within the checkout wait");
        StoreError::ReadBusy
    })?;
    // The caller may have gone while this read waited for a thread or a connection.
    stop.check()?;
    read_on(&conn, stop, f)
}

/// Runs `f` inside one read transaction on `conn`, watched by `stop`; the connection ends with
/// no progress handler and no open transaction.
fn read_on<T>(
    conn: &Connection,
    stop: &ReadStop,
    f: impl FnOnce(&Connection, &ReadStop) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    // BEGIN and ROLLBACK stay prepared: parsing them again was a visible share of a read.
    let end = || conn.prepare_cached("ROLLBACK")?.execute([]).map(drop);
    if !conn.is_autocommit() {
        // Never expected (every read ends its transaction below), but a connection must not
        // carry an old snapshot into the next read.
        end()?;
    }
    stop.watch(conn)?;
    let result = conn
        .prepare_cached("BEGIN")
        .and_then(|mut begin| begin.execute([]))
        .map_err(StoreError::from)
        .and_then(|_| f(conn, stop));
    // Handler first, so ending the transaction cannot itself be interrupted.
    let unwatched = ReadStop::unwatch(conn);
    // Nothing to keep: ending the read transaction releases the snapshot for checkpoints.
    let ended = if conn.is_autocommit() { Ok(()) } else { end() };
    match result {
        Err(_) if stop.is_raised() => Err(StoreError::Cancelled),
        Err(e) => Err(e),
        Ok(value) => {
            unwatched?;
            ended?;
            Ok(value)
        }
    }
}

impl Store {
    /// Opens the database, runs pending migrations, starts the writer and the read pool.
    pub fn open(settings: &StoreSettings, sources: Sources) -> Result<Store, StoreError> {
        let mut conn = open_writer_connection(&settings.path, settings.synchronous)?;
        let applied = migrate::run(&mut conn)?;
        if applied > 0 {
            tracing::info!(applied, "database migrations applied");
        }
        let page_token_key = service_key(&conn, "page_token", &sources)?;
        let manager = SqliteConnectionManager::file(&settings.path)
            .with_flags(OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
            .with_init(|c| pragmas::apply_reader(c));
        let pool_size = settings.read_pool_size.max(1);
        let readers = r2d2::Pool::builder()
            .max_size(pool_size)
            .connection_timeout(READ_CHECKOUT_WAIT)
            .build(manager)?;
        let heavy = HeavyReads::new(
            settings.heavy_reads_per_tenant,
            HeavyReads::global_bound(pool_size),
        );
        let stats = Arc::new(WriterStats::default());
        let replication = match &settings.replication {
            Some(r) => {
                let replication_stats = Arc::new(ReplicationStats::default());
                let waiter =
                    replication::Waiter::spawn(r, &settings.path, Arc::clone(&replication_stats))?;
                Some((Arc::new(waiter), replication_stats))
            }
            None => None,
        };
        let writer = WriterHandle::spawn(
            conn,
            settings.writer.clone(),
            sources,
            Arc::clone(&stats),
            replication.as_ref().map(|(w, _)| Arc::clone(w)),
        )?;
        // With replicated acknowledgements Litestream is known to run, and it owns the WAL: it
        // checkpoints when it has shipped the frames and restarts the WAL itself. A checkpoint
        // of ours can complete between two of its syncs and let our next write restart the WAL
        // behind its back, which Litestream answers with a full snapshot of the database, and
        // every write would wait for that upload (docs/OPERATIONS.md, "Checkpoints").
        let checkpointer = if settings.replication.is_some() {
            None
        } else {
            Some(checkpoint::Checkpointer::spawn(
                &settings.path,
                Arc::clone(&stats),
            )?)
        };
        Ok(Store {
            inner: Arc::new(Inner {
                writer,
                checkpointer,
                readers,
                heavy,
                stats,
                replication,
                path: settings.path.clone(),
                page_token_key,
            }),
        })
    }

    /// Applies pending migrations to a database file and returns how many ran.
    pub fn migrate(path: &Path) -> Result<usize, StoreError> {
        let mut conn = open_writer_connection(path, Synchronous::Full)?;
        migrate::run(&mut conn)
    }

    /// Submits a write to the writer; answers after its transaction committed.
    pub async fn write(&self, req: WriteRequest) -> Result<WriteOutcome, StoreError> {
        self.inner.writer.submit(req).await
    }

    /// Runs a light read (one loan, one entry, one page) on a pooled read-only connection, off
    /// the async executor. It stops if this future is dropped (the client went away).
    async fn read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        self.run_read(ReadStop::new(), None, move |c, _| f(c)).await
    }

    /// Runs a heavy read for `tenant` (reconciliation; the journal export uses the same path).
    /// It is admitted only while the tenant runs fewer than `heavy_reads_per_tenant` heavy
    /// reads and all tenants together fewer than half the pool, else `ReadBusy` at once. It
    /// stops when this future is dropped or after [`HEAVY_READ_DEADLINE`]: SQL statements are
    /// interrupted by the connection's progress handler, and `f` must call
    /// [`ReadStop::check`] between its own steps. A streaming producer (an export writing
    /// chunks into a channel) also stops when its receiver is gone and its send fails.
    async fn heavy_read<T, F>(&self, tenant: TenantId, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &ReadStop) -> Result<T, StoreError> + Send + 'static,
    {
        let permit = self.inner.heavy.admit(tenant)?;
        let stop = ReadStop::with_deadline(Instant::now() + HEAVY_READ_DEADLINE);
        self.run_read(stop, Some(permit), f).await
    }

    /// Runs a point read (a few indexed rows, no replay) at once on the calling thread when a
    /// pooled connection is free this moment, else as a light read. A point read takes tens of
    /// microseconds; handing it to a blocking thread and back cost more than the read, in
    /// thread wake-ups on both sides. Nothing can interrupt it midway, and nothing needs to. The
    /// one wait it can meet is `SQLite`'s busy handler while a WAL reset or recovery is under
    /// way (rare and short; bounded by the readers' `busy_timeout`), which then holds this HTTP
    /// worker's other requests too.
    async fn point_read<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        match self.inner.readers.try_get() {
            Some(conn) => read_on(&conn, &ReadStop::new(), move |c, _| f(c)),
            None => self.read(f).await,
        }
    }

    /// The shared read path: the stop is raised when this future is dropped; the permit (if
    /// any) is released only when the blocking read has really ended.
    async fn run_read<T, F>(
        &self,
        stop: ReadStop,
        permit: Option<HeavyPermit>,
        f: F,
    ) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection, &ReadStop) -> Result<T, StoreError> + Send + 'static,
    {
        let pool = self.inner.readers.clone();
        let _stop_on_drop = stop.raise_on_drop();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            read_on_pool(&pool, &stop, f)
        })
        .await
        .map_err(|e| StoreError::failed("read task failed", e))?
    }

    /// `GET /v1/exports/journal`: admits the export as a heavy read now (or `ReadBusy`), then
    /// returns the future that writes the tenant's journal into `out` on a read connection —
    /// one snapshot, one entry in memory at a time. It stops when the future is dropped, when
    /// `out` fails with `BrokenPipe` (the client went away), or after [`EXPORT_DEADLINE`].
    pub fn export_journal<W: std::io::Write + Send + 'static>(
        &self,
        tenant: TenantId,
        format: crate::ledger::export::Format,
        range: export::ExportRange,
        out: W,
    ) -> Result<impl Future<Output = Result<W, StoreError>> + Send + 'static, StoreError> {
        let permit = self.inner.heavy.admit(tenant)?;
        let stop = ReadStop::with_deadline(Instant::now() + EXPORT_DEADLINE);
        let store = self.clone();
        Ok(async move {
            store
                .run_read(stop, Some(permit), move |c, stop| {
                    export::write_journal(
                        c,
                        &tenant.to_string(),
                        format,
                        range,
                        out,
                        stop,
                        &mut |_| {},
                    )
                })
                .await
        })
    }

    /// A loan's balances, now or as of an effective date.
    pub async fn loan_balance(
        &self,
        tenant: TenantId,
        loan_id: LoanId,
        as_of: Option<Date>,
    ) -> Result<Option<LoanView>, StoreError> {
        let read = move |c: &Connection| readers::loan_balance(c, tenant, loan_id, as_of);
        if as_of.is_some() {
            // As of a date the balance replays the loan's entries: not a point read.
            self.read(read).await
        } else {
            self.point_read(read).await
        }
    }

    /// The tenant's lock date and period closes, newest first.
    pub async fn period_closes(
        &self,
        tenant: TenantId,
    ) -> Result<(Option<String>, Vec<readers::PeriodCloseView>), StoreError> {
        self.read(move |c| readers::period_closes(c, tenant)).await
    }

    /// The trial balance of one currency as of a date, on one read snapshot.
    pub async fn trial_balance(
        &self,
        tenant: TenantId,
        currency: crate::ledger::money::Currency,
        as_of: Date,
    ) -> Result<crate::ledger::trial_balance::TrialBalance, StoreError> {
        self.read(move |c| readers::trial_balance(c, tenant, currency, as_of))
            .await
    }

    /// One journal entry with its lines.
    pub async fn journal_entry(
        &self,
        tenant: TenantId,
        entry_id: EntryId,
    ) -> Result<Option<EntryView>, StoreError> {
        self.read(move |c| readers::journal_entry(c, tenant, entry_id))
            .await
    }

    /// A GL account's balance in one currency and layer.
    pub async fn account_balance(
        &self,
        tenant: TenantId,
        account: Account,
        currency: String,
        layer: &'static str,
        as_of: Option<Date>,
    ) -> Result<AccountBalanceView, StoreError> {
        self.read(move |c| readers::account_balance(c, tenant, account, &currency, layer, as_of))
            .await
    }

    /// One page of a loan's journal entries; `None` if the loan is not the tenant's.
    pub async fn loan_entries(
        &self,
        tenant: TenantId,
        loan_id: LoanId,
        query: EntryPageQuery,
    ) -> Result<Option<EntryPage>, StoreError> {
        self.read(move |c| readers::loan_entries(c, tenant, loan_id, &query))
            .await
    }

    /// The reconciliation proof for one tenant, on one read snapshot.
    pub async fn reconcile(
        &self,
        tenant: TenantId,
        as_of: Option<Date>,
    ) -> Result<Reconciliation, StoreError> {
        self.heavy_read(tenant, move |c, stop| {
            reconcile::reconcile(
                c,
                &tenant.to_string(),
                as_of.map(crate::clock::format_date).as_deref(),
                stop,
            )
        })
        .await
    }

    /// Up to `limit` webhook deliveries due at `now_ms`.
    pub async fn due_deliveries(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> Result<Vec<outbox::Delivery>, StoreError> {
        let due = self.read(move |c| outbox::due(c, now_ms, limit)).await?;
        // With replicated acknowledgements a webhook announces only replicated entries: the
        // rows read above were committed before the barrier was asked for.
        if let Some((waiter, _)) = &self.inner.replication
            && !due.is_empty()
            && !waiter.barrier().await.unwrap_or(false)
        {
            return Err(StoreError::ReplicationUnavailable);
        }
        Ok(due)
    }

    /// (pending, failed) webhook deliveries, and the earliest pending attempt time.
    pub async fn outbox_state(&self) -> Result<(i64, i64, Option<i64>), StoreError> {
        self.read(|c| {
            let (pending, failed) = outbox::counts(c)?;
            Ok((pending, failed, outbox::next_due_ms(c)?))
        })
        .await
    }

    /// The loan's state as the writer holds it in memory to decide writes (`None` when it is not
    /// cached). For diagnostics and for the tests proving that state equals the journal.
    pub async fn writer_loan_state(
        &self,
        tenant: TenantId,
        loan: LoanId,
    ) -> Result<Option<crate::ledger::state::LoanState>, StoreError> {
        self.inner.writer.inspect_loan(tenant, loan).await
    }

    /// Records delivery outcomes (through the writer).
    pub async fn record_deliveries(
        &self,
        outcomes: Vec<outbox::DeliveryOutcome>,
    ) -> Result<(), StoreError> {
        self.inner.writer.record_deliveries(outcomes).await
    }

    /// Resolves after the next commit (webhook worker wake-up).
    pub async fn committed(&self) {
        self.inner.stats.outbox_signal.notified().await;
    }

    /// The key that signs page tokens (per database, kept across restarts).
    pub fn page_token_key(&self) -> &[u8; 32] {
        &self.inner.page_token_key
    }

    /// True while the writer thread runs (migrations are done before it starts).
    pub fn is_ready(&self) -> bool {
        self.inner.stats.alive.load(Ordering::SeqCst)
    }

    /// With replicated acknowledgements, the replication waiter's state (readiness, metrics);
    /// `None` when writes are answered after the local COMMIT.
    pub fn replication(&self) -> Option<&ReplicationStats> {
        self.inner.replication.as_ref().map(|(_, s)| s.as_ref())
    }

    /// Ready to take writes: the writer runs and, with replicated acknowledgements, the last
    /// replication sync succeeded.
    pub fn accepts_writes(&self) -> bool {
        self.is_ready()
            && self
                .replication()
                .is_none_or(|r| r.up.load(Ordering::Relaxed))
    }

    /// The writer's counters.
    pub fn stats(&self) -> &WriterStats {
        &self.inner.stats
    }

    /// The database file.
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// Finishes queued writes and stops the writer. Later writes answer `Unavailable`.
    pub fn shutdown(&self) {
        self.inner.writer.shutdown();
        // After the writer: the last batches' answers still wait for the replica (or time out).
        if let Some((waiter, _)) = &self.inner.replication {
            waiter.shutdown();
        }
        if let Some(checkpointer) = &self.inner.checkpointer {
            checkpointer.shutdown();
        }
    }
}
