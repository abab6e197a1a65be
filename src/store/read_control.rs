//! Read admission and cancellation (SPEC §9, "fair under abuse"). Every read runs on a blocking
//! thread with one pooled read-only connection; this module decides whether a *heavy* read
//! (reconciliation, and the journal export to come) may start at all, and tells a running read
//! to stop.
//!
//! - [`HeavyReads`] admits at most `per_tenant` heavy reads of one tenant and `global` heavy
//!   reads in all (about half the read pool, so light reads such as balances always find a
//!   connection). Over either bound the answer is [`StoreError::ReadBusy`] at once: a heavy
//!   read is never queued. A [`HeavyPermit`] is held by the blocking read itself, so it counts
//!   reads that really run, not requests whose client is still waiting.
//! - [`ReadStop`] is shared by the async caller and the blocking read. The caller's
//!   [`StopOnDrop`] guard raises it when the request future is dropped (actix drops the handler
//!   when the client disconnects); a heavy read's deadline raises it when time runs out. The
//!   read sees it through an `SQLite` progress handler, which interrupts the running statement,
//!   and at the checkpoints between its steps ([`ReadStop::check`]); it then ends with
//!   [`StoreError::Cancelled`].
//!
//! Invariant: the progress handler is installed only for the duration of one read and removed
//! before its connection goes back to the pool (see `Store::read` in the parent module).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::Mutex;
use rusqlite::Connection;

use crate::ledger::ids::TenantId;
use crate::store::StoreError;

/// `SQLite` virtual-machine steps between two looks at the stop flag: frequent enough that an
/// interrupted statement ends within microseconds, rare enough to cost nothing measurable.
const PROGRESS_STEPS: std::os::raw::c_int = 4096;

/// Tells a running read to stop: raised by its caller going away, or by its deadline.
#[derive(Debug, Clone)]
pub struct ReadStop {
    inner: Arc<StopState>,
}

#[derive(Debug)]
struct StopState {
    raised: AtomicBool,
    deadline: Option<Instant>,
}

impl ReadStop {
    /// A stop that only its caller can raise (offline `verify`, light reads).
    pub fn new() -> Self {
        Self::until(None)
    }

    /// A stop that is also raised at `deadline`.
    pub fn with_deadline(deadline: Instant) -> Self {
        Self::until(Some(deadline))
    }

    fn until(deadline: Option<Instant>) -> Self {
        ReadStop {
            inner: Arc::new(StopState {
                raised: AtomicBool::new(false),
                deadline,
            }),
        }
    }

    /// Raises the stop: the read ends at its next look.
    pub fn raise(&self) {
        self.inner.raised.store(true, Ordering::Relaxed);
    }

    /// True once raised or past the deadline.
    pub fn is_raised(&self) -> bool {
        self.inner.raised.load(Ordering::Relaxed)
            || self.inner.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// A checkpoint between two steps of a read: `Cancelled` once the stop is raised.
    pub fn check(&self) -> Result<(), StoreError> {
        if self.is_raised() {
            Err(StoreError::Cancelled)
        } else {
            Ok(())
        }
    }

    /// A guard that raises this stop when dropped: held by the async caller, so dropping the
    /// request future (the client went away) stops the blocking read behind it.
    pub fn raise_on_drop(&self) -> StopOnDrop {
        StopOnDrop(self.clone())
    }

    /// Makes `conn` interrupt whatever statement it runs once this stop is raised.
    pub(crate) fn watch(&self, conn: &Connection) -> Result<(), StoreError> {
        let stop = self.clone();
        conn.progress_handler(PROGRESS_STEPS, Some(move || stop.is_raised()))?;
        Ok(())
    }

    /// Removes the progress handler [`ReadStop::watch`] installed.
    pub(crate) fn unwatch(conn: &Connection) -> Result<(), StoreError> {
        conn.progress_handler(0, None::<fn() -> bool>)?;
        Ok(())
    }
}

impl Default for ReadStop {
    fn default() -> Self {
        Self::new()
    }
}

/// Raises its [`ReadStop`] when dropped.
#[derive(Debug)]
pub struct StopOnDrop(ReadStop);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.raise();
    }
}

/// Admission of heavy reads: bounded per tenant and in all, refused (never queued) over either.
#[derive(Debug)]
pub struct HeavyReads {
    per_tenant: u32,
    global: u32,
    running: Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    total: u32,
    /// Only tenants with a heavy read running: the map never outgrows `global` entries.
    by_tenant: HashMap<TenantId, u32>,
}

impl HeavyReads {
    /// At most `per_tenant` heavy reads per tenant and `global` in all (each at least 1).
    pub fn new(per_tenant: u32, global: u32) -> Arc<Self> {
        Arc::new(HeavyReads {
            per_tenant: per_tenant.max(1),
            global: global.max(1),
            running: Mutex::new(Running::default()),
        })
    }

    /// The global bound for a read pool of `pool_size` connections: half of it, at least one,
    /// so light reads always keep the other half.
    pub fn global_bound(pool_size: u32) -> u32 {
        (pool_size / 2).max(1)
    }

    /// A permit for one heavy read of `tenant`, or `ReadBusy` if either bound is reached.
    pub fn admit(self: &Arc<Self>, tenant: TenantId) -> Result<HeavyPermit, StoreError> {
        let mut running = self.running.lock();
        let mine = running.by_tenant.get(&tenant).copied().unwrap_or(0);
        if mine >= self.per_tenant || running.total >= self.global {
            return Err(StoreError::ReadBusy);
        }
        running.total += 1;
        running.by_tenant.insert(tenant, mine + 1);
        Ok(HeavyPermit {
            gate: Arc::clone(self),
            tenant,
        })
    }

    /// Heavy reads running now (all tenants).
    pub fn running(&self) -> u32 {
        self.running.lock().total
    }
}

/// One admitted heavy read; dropping it frees the slot.
#[derive(Debug)]
pub struct HeavyPermit {
    gate: Arc<HeavyReads>,
    tenant: TenantId,
}

impl Drop for HeavyPermit {
    fn drop(&mut self) {
        let mut running = self.gate.running.lock();
        running.total = running.total.saturating_sub(1);
        if let Some(n) = running.by_tenant.get_mut(&self.tenant) {
            *n -= 1;
            if *n == 0 {
                running.by_tenant.remove(&self.tenant);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(n: u128) -> TenantId {
        TenantId::from_uuid(uuid::Uuid::from_u128(n))
    }

    #[test]
    fn a_second_heavy_read_of_one_tenant_is_refused_until_the_first_ends() {
        let gate = HeavyReads::new(1, 4);
        let first = gate.admit(tenant(1)).expect("first is admitted");
        assert!(matches!(gate.admit(tenant(1)), Err(StoreError::ReadBusy)));
        assert!(gate.admit(tenant(2)).is_ok(), "another tenant is admitted");
        drop(first);
        assert!(
            gate.admit(tenant(1)).is_ok(),
            "admitted again once it ended"
        );
    }

    #[test]
    fn heavy_reads_of_all_tenants_together_stay_within_the_global_bound() {
        let gate = HeavyReads::new(2, 3);
        let permits: Vec<_> = (1..=3)
            .map(|n| gate.admit(tenant(n)).expect("within the bound"))
            .collect();
        assert_eq!(gate.running(), 3);
        assert!(matches!(gate.admit(tenant(4)), Err(StoreError::ReadBusy)));
        drop(permits);
        assert_eq!(gate.running(), 0);
        assert!(gate.admit(tenant(4)).is_ok());
    }

    #[test]
    fn the_global_bound_is_half_the_pool_and_never_zero() {
        assert_eq!(HeavyReads::global_bound(8), 4);
        assert_eq!(HeavyReads::global_bound(2), 1);
        assert_eq!(HeavyReads::global_bound(1), 1);
    }

    #[test]
    fn dropping_the_callers_guard_raises_the_stop() {
        let stop = ReadStop::new();
        let guard = stop.raise_on_drop();
        assert!(stop.check().is_ok());
        drop(guard);
        assert!(matches!(stop.check(), Err(StoreError::Cancelled)));
    }

    #[test]
    fn a_stop_whose_deadline_has_passed_is_raised() {
        let stop = ReadStop::with_deadline(Instant::now());
        assert!(stop.is_raised());
    }

    #[test]
    fn a_raised_stop_interrupts_a_running_statement_and_a_removed_handler_no_longer_does() {
        let conn = Connection::open_in_memory().expect("memory db");
        let stop = ReadStop::new();
        stop.watch(&conn).expect("watch");
        stop.raise();
        // A statement of a few million steps: interrupted at its first progress callback.
        let counted: Result<i64, _> = conn.query_row(
            "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5000000) \
             SELECT count(*) FROM n",
            [],
            |r| r.get(0),
        );
        let err = counted.expect_err("interrupted");
        assert_eq!(
            err.sqlite_error_code(),
            Some(rusqlite::ErrorCode::OperationInterrupted),
            "{err}"
        );
        ReadStop::unwatch(&conn).expect("unwatch");
        let counted: i64 = conn
            .query_row(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 100000) \
                 SELECT count(*) FROM n",
                [],
                |r| r.get(0),
            )
            .expect("runs to the end without the handler");
        assert_eq!(counted, 100_000);
    }
}
