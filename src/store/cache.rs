//! What the writer keeps in memory between batches: every tenant it has written for (its
//! hash-chain head and GL totals) and a bounded set of loans (`HPTS_WRITER_CACHE_LOANS`, least
//! recently used evicted first). Everything here is committed state: a batch works on its own
//! overlay and [`WriterCache::absorb`] takes it in only after the batch's COMMIT returned, so a
//! failed commit leaves the cache as it was. A cold loan or tenant costs one indexed read.

use std::collections::HashMap;

use crate::ledger::ids::{LoanId, TenantId};
use crate::ledger::state::{GlTotals, LoanState};

/// A tenant as the writer knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TenantState {
    /// Hash of the tenant's latest entry (the chain's genesis for a tenant without entries).
    pub chain_head: String,
    /// GL totals per account, currency and layer.
    pub gl: GlTotals,
    /// The last day of the latest period close (no write may be dated on or before it).
    pub lock_date: Option<time::Date>,
}

/// Committed state the writer decides with.
pub(crate) struct WriterCache {
    tenants: HashMap<TenantId, TenantState>,
    loans: HashMap<(TenantId, LoanId), (LoanState, u64)>,
    tick: u64,
    capacity: usize,
}

impl WriterCache {
    /// An empty cache holding at most `capacity` loans.
    pub(crate) fn new(capacity: usize) -> Self {
        WriterCache {
            tenants: HashMap::new(),
            loans: HashMap::new(),
            tick: 0,
            capacity: capacity.max(1),
        }
    }

    /// A known tenant.
    pub(crate) fn tenant(&self, tenant: TenantId) -> Option<&TenantState> {
        self.tenants.get(&tenant)
    }

    /// A cached loan (and marks it used).
    pub(crate) fn loan(&mut self, tenant: TenantId, loan: LoanId) -> Option<LoanState> {
        self.tick += 1;
        let tick = self.tick;
        self.loans.get_mut(&(tenant, loan)).map(|(state, used)| {
            *used = tick;
            *state
        })
    }

    /// A cached loan, without marking it used.
    pub(crate) fn peek_loan(&self, tenant: TenantId, loan: LoanId) -> Option<LoanState> {
        self.loans.get(&(tenant, loan)).map(|(state, _)| *state)
    }

    /// Remembers a tenant's committed state.
    pub(crate) fn put_tenant(&mut self, tenant: TenantId, state: TenantState) {
        self.tenants.insert(tenant, state);
    }

    /// Remembers a loan's committed state, evicting the least recently used tenth of the loans
    /// once the cache is full.
    pub(crate) fn put_loan(&mut self, tenant: TenantId, loan: LoanId, state: LoanState) {
        self.tick += 1;
        self.loans.insert((tenant, loan), (state, self.tick));
        if self.loans.len() > self.capacity {
            let mut ticks: Vec<u64> = self.loans.values().map(|(_, t)| *t).collect();
            let keep = self.capacity - self.capacity / 10;
            let cut = ticks.len() - keep;
            let (_, threshold, _) = ticks.select_nth_unstable(cut);
            let threshold = *threshold;
            self.loans.retain(|_, (_, t)| *t >= threshold);
        }
    }

    /// Takes in a committed batch's tenants and loans.
    pub(crate) fn absorb(
        &mut self,
        tenants: HashMap<TenantId, TenantState>,
        loans: HashMap<(TenantId, LoanId), LoanState>,
    ) {
        self.tenants.extend(tenants);
        for ((tenant, loan), state) in loans {
            self.put_loan(tenant, loan, state);
        }
    }

    /// Loans held now.
    pub(crate) fn loan_count(&self) -> usize {
        self.loans.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::ids::BorrowerId;
    use crate::ledger::money::Currency;
    use uuid::Uuid;

    fn loan(n: u128) -> LoanId {
        LoanId::from_uuid(Uuid::from_u128(n))
    }

    fn state() -> LoanState {
        LoanState::opened(
            BorrowerId::from_uuid(Uuid::from_u128(1)),
            Currency::parse("USD").expect("usd"),
            time::macros::date!(2026 - 11 - 01),
        )
    }

    #[test]
    fn the_cache_stays_bounded_and_keeps_the_recently_used_loans() {
        let t = TenantId::from_uuid(Uuid::from_u128(9));
        let mut cache = WriterCache::new(100);
        cache.put_loan(t, loan(0), state());
        for n in 1..=1_000 {
            cache.put_loan(t, loan(n), state());
            // Loan 0 is used all the time, so it is never the least recently used.
            assert!(cache.loan(t, loan(0)).is_some(), "evicted at {n}");
        }
        assert!(cache.loan_count() <= 100);
        assert!(cache.loan(t, loan(1)).is_none(), "an old loan was evicted");
        assert!(cache.loan(t, loan(1_000)).is_some());
    }
}
