//! Fair batching for the single writer: which queued jobs go into the next transaction.
//!
//! Jobs wait in one FIFO per tenant. The next batch is filled by *start-time fair queuing* over
//! tenants, weighted by each job's cost (journal lines): every tenant has a virtual clock that
//! advances by the cost of each job it gets served, a tenant that becomes busy starts at the
//! current virtual time, and the tenant with the earliest clock goes next. So a tenant that just
//! had a 20,000-line accrual batch committed waits while another tenant's single fee goes first,
//! and a batch stops growing at `max_cost` lines (a single job over the budget runs alone).
//! Within one tenant the order is strictly FIFO, so a client's dependent writes (and two
//! requests with the same idempotency key) keep their order. Tenants share nothing the writer
//! decides with, so reordering across tenants is invisible to them except in latency.
//!
//! No SQL here: the writer thread owns the queue; this module only decides the order.

use std::collections::{HashMap, VecDeque};
use std::hash::Hash;

/// A per-key FIFO with cost-weighted fair selection across keys.
#[derive(Debug)]
pub(crate) struct FairQueue<K, T> {
    queues: HashMap<K, Lane<T>>,
    /// Virtual time: the start tag of the job served last.
    now: u64,
    /// Arrival counter, to break ties between lanes by who became busy first.
    arrivals: u64,
    len: usize,
}

#[derive(Debug)]
struct Lane<T> {
    jobs: VecDeque<(T, u64)>,
    /// Virtual time at which this lane's next job starts.
    start: u64,
    /// When this lane last became busy (tie-break).
    since: u64,
}

impl<K: Eq + Hash + Clone, T> FairQueue<K, T> {
    /// An empty queue.
    pub(crate) fn new() -> Self {
        FairQueue {
            queues: HashMap::new(),
            now: 0,
            arrivals: 0,
            len: 0,
        }
    }

    /// Jobs waiting, over every key.
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// True when nothing waits.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Queues `job` behind `key`'s earlier jobs.
    pub(crate) fn push(&mut self, key: K, job: T, cost: usize) {
        let cost = u64::try_from(cost.max(1)).unwrap_or(u64::MAX);
        self.arrivals += 1;
        let (now, arrivals) = (self.now, self.arrivals);
        let lane = self.queues.entry(key).or_insert_with(|| Lane {
            jobs: VecDeque::new(),
            start: now,
            since: arrivals,
        });
        if lane.jobs.is_empty() {
            // A lane that was idle does not bank credit for the time it was idle.
            lane.start = lane.start.max(now);
            lane.since = arrivals;
        }
        lane.jobs.push_back((job, cost));
        self.len += 1;
    }

    /// The next batch: at least one job (if any wait), at most `max_jobs`, and no more than
    /// `max_cost` in total unless a single job alone exceeds it.
    pub(crate) fn next_batch(&mut self, max_jobs: usize, max_cost: usize) -> Vec<T> {
        let max_cost = u64::try_from(max_cost).unwrap_or(u64::MAX);
        let mut batch = Vec::new();
        let mut cost = 0u64;
        while batch.len() < max_jobs.max(1) {
            let Some(key) = self
                .queues
                .iter()
                .filter(|(_, lane)| !lane.jobs.is_empty())
                .min_by_key(|(_, lane)| (lane.start, lane.since))
                .map(|(k, _)| k.clone())
            else {
                break;
            };
            let lane = self.queues.get_mut(&key).expect("key was just found");
            let job_cost = lane.jobs.front().map_or(0, |(_, c)| *c);
            if !batch.is_empty() && cost.saturating_add(job_cost) > max_cost {
                break;
            }
            let (job, _) = lane.jobs.pop_front().expect("lane is not empty");
            self.now = self.now.max(lane.start);
            lane.start = lane.start.saturating_add(job_cost);
            if lane.jobs.is_empty() {
                self.queues.remove(&key);
            }
            self.len -= 1;
            cost = cost.saturating_add(job_cost);
            batch.push(job);
        }
        batch
    }

    /// Every waiting job, in the fair order.
    #[cfg(test)]
    pub(crate) fn drain_all(&mut self) -> Vec<T> {
        let mut out = Vec::with_capacity(self.len);
        while !self.is_empty() {
            out.extend(self.next_batch(usize::MAX, usize::MAX));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_single_write_is_not_stuck_behind_another_tenants_large_batches() {
        let mut q = FairQueue::new();
        for i in 0..4 {
            q.push("heavy", format!("accrual-{i}"), 20_000);
        }
        // The first large batch is already running when the small write arrives.
        assert_eq!(q.next_batch(512, 4096), vec!["accrual-0".to_owned()]);
        q.push("light", "fee".to_owned(), 2);
        assert_eq!(q.next_batch(512, 4096), vec!["fee".to_owned()]);
        assert_eq!(q.next_batch(512, 4096), vec!["accrual-1".to_owned()]);
    }

    #[test]
    fn one_tenants_jobs_keep_their_order() {
        let mut q = FairQueue::new();
        for i in 0..10 {
            q.push("a", i, 1);
        }
        q.push("b", 100, 1);
        let order: Vec<i32> = q.drain_all();
        let a_only: Vec<i32> = order.iter().copied().filter(|&i| i < 100).collect();
        assert_eq!(a_only, (0..10).collect::<Vec<_>>());
        assert_eq!(order.len(), 11);
    }

    #[test]
    fn tenants_alternate_when_both_are_busy() {
        let mut q = FairQueue::new();
        for i in 0..3 {
            q.push("a", format!("a{i}"), 1);
            q.push("b", format!("b{i}"), 1);
        }
        assert_eq!(q.next_batch(4, 100), vec!["a0", "b0", "a1", "b1"]);
        assert_eq!(q.len(), 2);
    }

    #[test]
    fn a_batch_stops_at_its_cost_budget_but_always_takes_one_job() {
        let mut q = FairQueue::new();
        q.push("a", 1, 3000);
        q.push("a", 2, 3000);
        q.push("a", 3, 10_000);
        assert_eq!(q.next_batch(512, 4096), vec![1]);
        assert_eq!(q.next_batch(512, 4096), vec![2]);
        assert_eq!(q.next_batch(512, 4096), vec![3]);
        assert!(q.is_empty());
        assert!(q.next_batch(512, 4096).is_empty());
    }

    #[test]
    fn an_idle_tenant_banks_no_credit() {
        let mut q = FairQueue::new();
        q.push("a", "a0".to_owned(), 1);
        assert_eq!(q.next_batch(1, 100), vec!["a0"]);
        // b ran a lot earlier; a was idle meanwhile and now both are busy again.
        for i in 0..5 {
            q.push("b", format!("b{i}"), 1);
        }
        let _ = q.next_batch(5, 100);
        q.push("a", "a1".to_owned(), 1);
        q.push("a", "a2".to_owned(), 1);
        q.push("b", "b5".to_owned(), 1);
        q.push("b", "b6".to_owned(), 1);
        // Had `a` kept its old clock it would go twice in a row; it alternates instead.
        assert_eq!(q.drain_all(), vec!["a1", "b5", "a2", "b6"]);
    }
}
