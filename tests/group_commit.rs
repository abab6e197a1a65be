//! Group commit keeps the write semantics (SPEC §1.3–1.4, issue 7). The real [`Store`] is
//! driven directly, without HTTP, so batch composition is deterministic.
//!
//! How a batch is formed on purpose: a second connection to the same file holds the `SQLite`
//! write lock (`BEGIN IMMEDIATE`, the way a Litestream checkpoint does). The writer takes the
//! first job and waits in its own `BEGIN IMMEDIATE` (busy timeout 5 s); every job under test is
//! enqueued meanwhile (each submission is polled once on the spot, so it is in the queue, in
//! order, before the next line runs); then the lock is released and the writer drains the
//! queued jobs into one transaction. Every test also asserts `max_batch_seen`, so it proves a
//! batch really formed.

mod common;

use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use hpts::clock::{IdGenerator, Sources, UuidV7};
use hpts::ledger::LedgerError;
use hpts::ledger::commands::{
    Command, Disbursement, DisbursementMethod, Payment, PaymentMethod, ReasonCode, Reversal,
};
use hpts::ledger::ids::{BorrowerId, EntryId, LoanId, TenantId};
use hpts::ledger::money::{Currency, Money};
use hpts::store::{
    Store, StoreError, StoreSettings, Synchronous, WriteOutcome, WriteRequest, WriterConfig,
};
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use common::db::read_only;
use common::store_history;

const DISBURSEMENTS: &str = "/v1/disbursements";
const PAYMENTS: &str = "/v1/payments";
const REVERSALS: &str = "/v1/reversals";

type Answer = Result<WriteOutcome, StoreError>;

fn new_uuid() -> Uuid {
    UuidV7.new_id()
}

fn usd() -> Currency {
    Currency::parse("USD").expect("USD")
}

/// A store on a fresh temp file, with the writer configuration of the brief.
struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    store: Store,
}

impl Fixture {
    /// Opens the store and commits one warm-up write (its own tenant): once that is answered,
    /// the writer has finished its start-up purge of expired keys, which would otherwise wait
    /// on the lock the tests hold. Stats therefore start at one commit, one job.
    async fn new(group_commit: bool) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.db");
        let base = store_history::settings(&path, 10_000);
        let store = Store::open(
            &StoreSettings {
                synchronous: Synchronous::Full,
                writer: WriterConfig {
                    group_commit,
                    max_batch: 256,
                    queue_capacity: 4096,
                    ..base.writer
                },
                ..base
            },
            Sources::default(),
        )
        .expect("store opens");
        let fx = Fixture {
            _dir: dir,
            path,
            store,
        };
        let warm_up = TenantId::from_uuid(new_uuid());
        fx.write(disbursement(warm_up, new_uuid(), new_uuid(), 1))
            .await;
        fx
    }

    /// Enqueues `req` now (the returned future only waits for the answer).
    fn enqueue(&self, req: WriteRequest) -> impl Future<Output = Answer> + Send + 'static {
        let store = self.store.clone();
        let mut fut = Box::pin(async move { store.write(req).await });
        // The first poll runs `try_send`: the job is in the writer's queue when this returns.
        let first = fut.as_mut().poll(&mut Context::from_waker(Waker::noop()));
        async move {
            match first {
                Poll::Ready(answer) => answer,
                Poll::Pending => fut.await,
            }
        }
    }

    /// Enqueues every request in order behind a held write lock, then waits for every answer
    /// (in the same order).
    async fn batch(&self, reqs: Vec<WriteRequest>) -> Vec<Answer> {
        let pending = self
            .behind_a_held_write_lock(|| {
                reqs.into_iter()
                    .map(|r| tokio::spawn(self.enqueue(r)))
                    .collect::<Vec<_>>()
            })
            .await;
        let mut answers = Vec::with_capacity(pending.len());
        for p in pending {
            answers.push(p.await.expect("task"));
        }
        answers
    }

    /// One job, committed on its own.
    async fn write(&self, req: WriteRequest) -> Value {
        match self.store.write(req).await {
            Ok(WriteOutcome::Created(body)) => serde_json::from_slice(&body).expect("json"),
            other => panic!("setup write failed: {other:?}"),
        }
    }

    /// A fresh connection to the file: it sees exactly what is committed.
    fn db(&self) -> Connection {
        read_only(&self.path)
    }

    fn count(&self, sql: &str, params: impl rusqlite::Params) -> i64 {
        self.db().query_row(sql, params, |r| r.get(0)).expect(sql)
    }

    /// Runs `enqueue_jobs` while another connection holds the write lock, so that everything
    /// it enqueues waits in the queue and is drained into as few transactions as possible.
    /// A plug job (its own tenant) goes first and is committed alone. Returns whatever
    /// `enqueue_jobs` returned, once the lock is released and the plug is answered.
    async fn behind_a_held_write_lock<T>(&self, enqueue_jobs: impl FnOnce() -> T) -> T {
        let plug = disbursement(TenantId::from_uuid(new_uuid()), new_uuid(), new_uuid(), 1);
        let gate = Connection::open(&self.path).expect("gate connection");
        gate.busy_timeout(Duration::from_secs(5))
            .expect("busy timeout");
        gate.execute_batch("BEGIN IMMEDIATE")
            .expect("gate takes the write lock");
        let plug = self.enqueue(plug);
        // Wait until the writer has taken the first job out of the queue: it is now blocked in
        // its own BEGIN IMMEDIATE, so every later job queues behind it.
        let started = Instant::now();
        while self.store.stats().queue_depth.load(Ordering::SeqCst) > 0 {
            assert!(
                started.elapsed() < Duration::from_secs(2),
                "the writer never took the first job"
            );
            std::thread::yield_now();
        }
        let out = enqueue_jobs();
        gate.execute_batch("COMMIT")
            .expect("gate releases the write lock");
        created(&plug.await);
        out
    }
}

fn request(
    tenant: TenantId,
    route: &'static str,
    key: &str,
    payload: &Value,
    command: Command,
) -> WriteRequest {
    WriteRequest {
        tenant,
        actor: Some("group-commit-test".into()),
        route,
        idempotency_key: key.to_owned(),
        payload: payload.to_string(),
        metadata: None,
        traceparent: None,
        command,
    }
}

fn disbursement(tenant: TenantId, loan: Uuid, borrower: Uuid, amount: i64) -> WriteRequest {
    let payload = json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": "2026-11-01",
        "method": "ach",
    });
    request(
        tenant,
        DISBURSEMENTS,
        &format!("disbursement:{loan}:{}", new_uuid()),
        &payload,
        Command::Disburse(Disbursement {
            loan_id: LoanId::from_uuid(loan),
            borrower_id: BorrowerId::from_uuid(borrower),
            amount: Money::from_minor(amount),
            currency: usd(),
            effective_at: time::macros::date!(2026 - 11 - 01),
            method: DisbursementMethod::Ach,
            destination_ref: None,
        }),
    )
}

fn payment(tenant: TenantId, loan: Uuid, borrower: Uuid, amount: i64) -> WriteRequest {
    let payload = json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": "2026-11-02",
        "source_method": "ach",
    });
    request(
        tenant,
        PAYMENTS,
        &format!("payment:{loan}:{}", new_uuid()),
        &payload,
        Command::Pay(Payment {
            loan_id: LoanId::from_uuid(loan),
            borrower_id: BorrowerId::from_uuid(borrower),
            amount: Money::from_minor(amount),
            currency: usd(),
            effective_at: time::macros::date!(2026 - 11 - 02),
            source_method: PaymentMethod::Ach,
            external_ref: None,
        }),
    )
}

fn reversal(tenant: TenantId, entry: Uuid) -> WriteRequest {
    let payload = json!({
        "reverses_entry_id": entry.to_string(),
        "reason_code": "error_correction",
    });
    request(
        tenant,
        REVERSALS,
        &format!("reversal:{entry}:{}", new_uuid()),
        &payload,
        Command::Reverse(Reversal {
            reverses_entry_id: EntryId::from_uuid(entry),
            reason_code: ReasonCode::ErrorCorrection,
            reason_description: None,
            effective_at: None,
        }),
    )
}

fn created(answer: &Answer) -> Value {
    match answer {
        Ok(WriteOutcome::Created(body)) => serde_json::from_slice(body).expect("json body"),
        other => panic!("expected Created, got {other:?}"),
    }
}

fn entry_id(receipt: &Value) -> Uuid {
    Uuid::parse_str(
        receipt["journal_entry_id"]
            .as_str()
            .expect("journal_entry_id"),
    )
    .expect("uuid")
}

/// What one job of the batch is expected to do.
enum Expect {
    Commit,
    Fail(fn(&StoreError) -> bool, &'static str),
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failing_job_in_a_batch_does_not_affect_its_neighbours() {
    let fx = Fixture::new(true).await;
    let tenant = TenantId::from_uuid(new_uuid());

    // Loan A: open, borrower BA. Loan P: disbursed and fully repaid, so reversing its
    // disbursement fails only after the reversal's event, lines and header were inserted.
    let (loan_a, borrower_a) = (new_uuid(), new_uuid());
    fx.write(disbursement(tenant, loan_a, borrower_a, 1000))
        .await;
    let (loan_p, borrower_p) = (new_uuid(), new_uuid());
    let p_disbursed = fx
        .write(disbursement(tenant, loan_p, borrower_p, 700))
        .await;
    fx.write(payment(tenant, loan_p, borrower_p, 700)).await;
    let setup_events = 3;
    let entries_before = fx.count(
        "SELECT count(*) FROM journal_entries WHERE tenant_id = ?1",
        [tenant.to_string()],
    );
    assert_eq!(entries_before, setup_events);

    let unknown_loan = new_uuid();
    let zero_loan = new_uuid();
    let jobs = the_mixed_batch(
        tenant,
        (loan_a, borrower_a),
        unknown_loan,
        zero_loan,
        &p_disbursed,
    );

    let (reqs, expects): (Vec<_>, Vec<_>) = jobs.into_iter().unzip();
    let batch_size = reqs.len();
    let answers = fx.batch(reqs.clone()).await;

    let stats = fx.store.stats();
    assert!(
        stats.max_batch_seen.load(Ordering::SeqCst) >= batch_size,
        "all {batch_size} jobs ran in one transaction (max batch {})",
        stats.max_batch_seen.load(Ordering::SeqCst)
    );

    let db = fx.db();
    let mut committed = 0;
    for ((req, expect), answer) in reqs.iter().zip(&expects).zip(&answers) {
        let (key_rows, events_with_payload) = rows_of(&db, tenant, req);
        match expect {
            Expect::Commit => {
                committed += 1;
                assert_committed(&db, tenant, req, answer, (key_rows, events_with_payload));
            }
            Expect::Fail(is_expected, code) => {
                match answer {
                    Err(e) => assert!(
                        is_expected(e),
                        "{} expected its own {code} error, got {e:?}",
                        req.idempotency_key
                    ),
                    Ok(o) => panic!("{} expected {code}, got {o:?}", req.idempotency_key),
                }
                assert_eq!(key_rows, 0, "{code}: the key was not consumed");
                assert_eq!(events_with_payload, 0, "{code}: no event was left behind");
            }
        }
    }
    assert_eq!(committed, 6);
    assert_eq!(
        stats.jobs_failed.load(Ordering::SeqCst),
        5,
        "exactly the five bad jobs failed"
    );

    assert_only_the_committed_jobs_left_rows(
        &fx,
        tenant,
        setup_events + committed,
        [zero_loan, unknown_loan],
    );

    // Balances moved only by the committed jobs.
    let a = fx
        .store
        .loan_balance(tenant, LoanId::from_uuid(loan_a), None)
        .await
        .expect("read")
        .expect("loan A");
    assert_eq!(
        a.balances.principal,
        Money::from_minor(1400),
        "1000 + 500 − 100"
    );
    assert_eq!(a.balances.disbursed_total, Money::from_minor(1500));
    let p = fx
        .store
        .loan_balance(tenant, LoanId::from_uuid(loan_p), None)
        .await
        .expect("read")
        .expect("loan P");
    assert_eq!(
        p.balances.principal,
        Money::ZERO,
        "the blocked reversal moved nothing"
    );
    assert_eq!(p.balances.disbursed_total, Money::from_minor(700));

    // Materialised balances, hash chain and trial balance all agree with the committed lines.
    let proof = fx.store.reconcile(tenant, None).await.expect("reconcile");
    assert!(proof.ok(), "{:?}", proof.checks);
    fx.store.shutdown();
}

/// The batch of `a_failing_job_in_a_batch_does_not_affect_its_neighbours`: six good jobs and
/// five that each fail for their own reason, interleaved.
fn the_mixed_batch(
    tenant: TenantId,
    (loan_a, borrower_a): (Uuid, Uuid),
    unknown_loan: Uuid,
    zero_loan: Uuid,
    p_disbursed: &Value,
) -> Vec<(WriteRequest, Expect)> {
    let mut jobs: Vec<(WriteRequest, Expect)> = Vec::new();
    let valid_new = |jobs: &mut Vec<(WriteRequest, Expect)>, amount| {
        jobs.push((
            disbursement(tenant, new_uuid(), new_uuid(), amount),
            Expect::Commit,
        ));
    };
    valid_new(&mut jobs, 101);
    jobs.push((
        disbursement(tenant, loan_a, new_uuid(), 50),
        Expect::Fail(
            |e| matches!(e, StoreError::Ledger(LedgerError::BorrowerMismatch(_))),
            "borrower_mismatch",
        ),
    ));
    jobs.push((
        disbursement(tenant, loan_a, borrower_a, 500),
        Expect::Commit,
    ));
    jobs.push((
        payment(tenant, unknown_loan, new_uuid(), 10),
        Expect::Fail(
            |e| matches!(e, StoreError::Ledger(LedgerError::LoanNotFound(_))),
            "loan_not_found",
        ),
    ));
    valid_new(&mut jobs, 102);
    jobs.push((
        reversal(tenant, new_uuid()),
        Expect::Fail(
            |e| matches!(e, StoreError::Ledger(LedgerError::EntryNotFound)),
            "not_found",
        ),
    ));
    jobs.push((payment(tenant, loan_a, borrower_a, 100), Expect::Commit));
    // Opens the loan row, then refuses the zero amount: the loan row must roll back too.
    jobs.push((
        disbursement(tenant, zero_loan, new_uuid(), 0),
        Expect::Fail(
            |e| matches!(e, StoreError::Ledger(LedgerError::AmountMustBePositive)),
            "amount_must_be_positive",
        ),
    ));
    valid_new(&mut jobs, 103);
    jobs.push((
        reversal(tenant, entry_id(p_disbursed)),
        Expect::Fail(
            |e| matches!(e, StoreError::Ledger(LedgerError::ReversalBlocked)),
            "reversal_blocked_by_later_activity",
        ),
    ));
    valid_new(&mut jobs, 104);
    jobs
}

/// How many idempotency rows and events `req` left: (keys, events with its payload).
fn rows_of(db: &Connection, tenant: TenantId, req: &WriteRequest) -> (i64, i64) {
    let key_rows: i64 = db
        .query_row(
            "SELECT count(*) FROM idempotency_keys WHERE tenant_id = ?1 AND idempotency_key = ?2",
            params![tenant.to_string(), req.idempotency_key],
            |r| r.get(0),
        )
        .expect("key count");
    let events_with_payload: i64 = db
        .query_row(
            "SELECT count(*) FROM events WHERE tenant_id = ?1 AND payload = ?2",
            params![tenant.to_string(), req.payload],
            |r| r.get(0),
        )
        .expect("event count");
    (key_rows, events_with_payload)
}

/// A committed job: its entry with its lines, its key and event, and the stored answer is the
/// one given.
fn assert_committed(
    db: &Connection,
    tenant: TenantId,
    req: &WriteRequest,
    answer: &Answer,
    (key_rows, events_with_payload): (i64, i64),
) {
    let receipt = created(answer);
    let entry = entry_id(&receipt).to_string();
    let posted_at: Option<String> = db
        .query_row(
            "SELECT posted_at FROM journal_entries WHERE entry_id = ?1",
            [&entry],
            |r| r.get(0),
        )
        .optional()
        .expect("entry");
    assert_eq!(
        posted_at.as_deref(),
        receipt["posted_at"].as_str(),
        "{} committed its entry",
        req.idempotency_key
    );
    let lines: i64 = db
        .query_row(
            "SELECT count(*) FROM journal_lines WHERE entry_id = ?1",
            [&entry],
            |r| r.get(0),
        )
        .expect("lines");
    assert!(lines >= 2, "{entry} has its lines");
    assert_eq!(key_rows, 1, "{} stored its key", req.idempotency_key);
    assert_eq!(
        events_with_payload, 1,
        "{} stored its event",
        req.idempotency_key
    );
    let stored: Vec<u8> = db
        .query_row(
            "SELECT response_body FROM idempotency_keys WHERE tenant_id = ?1 AND idempotency_key = ?2",
            params![tenant.to_string(), req.idempotency_key],
            |r| r.get(0),
        )
        .expect("stored body");
    assert!(
        matches!(answer, Ok(WriteOutcome::Created(body)) if *body == stored),
        "the stored answer is the one given"
    );
}

/// Nothing of the failing jobs survives anywhere: one entry per event, no stray rows.
fn assert_only_the_committed_jobs_left_rows(
    fx: &Fixture,
    tenant: TenantId,
    expected_entries: i64,
    refused_loans: [Uuid; 2],
) {
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM events WHERE tenant_id = ?1",
            [tenant.to_string()]
        ),
        expected_entries
    );
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM journal_entries WHERE tenant_id = ?1",
            [tenant.to_string()]
        ),
        expected_entries
    );
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM idempotency_keys WHERE tenant_id = ?1",
            [tenant.to_string()]
        ),
        expected_entries
    );
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM journal_lines l WHERE NOT EXISTS \
             (SELECT 1 FROM journal_entries e WHERE e.entry_id = l.entry_id)",
            []
        ),
        0,
        "no orphan lines from the rolled-back reversal"
    );
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM journal_entries WHERE reverses_entry_id IS NOT NULL",
            []
        ),
        0,
        "the blocked reversal left no entry"
    );
    for loan in refused_loans {
        assert_eq!(
            fx.count(
                "SELECT count(*) FROM loans WHERE loan_id = ?1",
                [loan.to_string()]
            ),
            0,
            "no loan row for {loan}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn same_key_requests_inside_one_batch_produce_one_entry() {
    let fx = Fixture::new(true).await;
    let tenant = TenantId::from_uuid(new_uuid());

    let one = disbursement(tenant, new_uuid(), new_uuid(), 2500);
    let copies: Vec<WriteRequest> = (0..20).map(|_| one.clone()).collect();
    let answers = fx.batch(copies).await;
    assert!(
        fx.store.stats().max_batch_seen.load(Ordering::SeqCst) >= 20,
        "the 20 copies ran in one transaction"
    );

    let Ok(WriteOutcome::Created(first)) = &answers[0] else {
        panic!(
            "the first copy in the queue is the one that commits: {:?}",
            answers[0]
        );
    };
    for (i, a) in answers.iter().enumerate().skip(1) {
        assert_eq!(
            a.as_ref().ok(),
            Some(&WriteOutcome::Replayed(first.clone())),
            "copy {i} replays the identical bytes"
        );
    }
    assert_eq!(
        fx.store.stats().idempotent_replays.load(Ordering::SeqCst),
        19
    );
    let receipt: Value = serde_json::from_slice(first).expect("json");
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM events WHERE tenant_id = ?1 AND payload = ?2",
            params![tenant.to_string(), one.payload]
        ),
        1,
        "one event"
    );
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM journal_entries WHERE tenant_id = ?1",
            [tenant.to_string()]
        ),
        1,
        "one entry for the twenty copies"
    );
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM journal_entries WHERE entry_id = ?1",
            [entry_id(&receipt).to_string()]
        ),
        1
    );

    // Same key, different payload, in one batch: the first commits, the second is refused.
    let original = disbursement(tenant, new_uuid(), new_uuid(), 900);
    let mut different = disbursement(tenant, new_uuid(), new_uuid(), 901);
    different
        .idempotency_key
        .clone_from(&original.idempotency_key);
    let batches_before = fx.store.stats().commits.load(Ordering::SeqCst);
    let [a, b]: [Answer; 2] = fx
        .batch(vec![original.clone(), different.clone()])
        .await
        .try_into()
        .expect("two answers");
    assert_eq!(
        fx.store.stats().commits.load(Ordering::SeqCst) - batches_before,
        2,
        "the plug, then both requests in one transaction"
    );
    let receipt = created(&a);
    assert!(
        matches!(b, Err(StoreError::IdempotencyMismatch)),
        "same key, other body: {b:?}"
    );
    assert_eq!(
        fx.count(
            "SELECT count(*) FROM events WHERE tenant_id = ?1 AND payload = ?2",
            params![tenant.to_string(), different.payload]
        ),
        0,
        "the mismatching request wrote nothing"
    );
    let stored: Vec<u8> = fx
        .db()
        .query_row(
            "SELECT response_body FROM idempotency_keys WHERE tenant_id = ?1 AND idempotency_key = ?2",
            params![tenant.to_string(), original.idempotency_key],
            |r| r.get(0),
        )
        .expect("key");
    assert_eq!(
        serde_json::from_slice::<Value>(&stored).expect("json"),
        receipt,
        "the key still holds the first request's answer"
    );
    fx.store.shutdown();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn no_job_is_answered_before_its_batch_commits() {
    let fx = Fixture::new(true).await;
    let tenant = TenantId::from_uuid(new_uuid());
    let jobs = 200;
    let reqs: Vec<WriteRequest> = (0..jobs)
        .map(|i| disbursement(tenant, new_uuid(), new_uuid(), 1000 + i))
        .collect();
    let path = fx.path.clone();
    let pending = fx.behind_a_held_write_lock(|| {
        reqs.iter()
            .map(|r| {
                let answer = fx.enqueue(r.clone());
                let (path, key) = (path.clone(), r.idempotency_key.clone());
                tokio::spawn(async move {
                    let answer = answer.await;
                    // Right when the answer arrives: a brand-new connection must already see
                    // the entry and the key, i.e. the transaction has committed.
                    let receipt = created(&answer);
                    let db = read_only(&path);
                    let posted_at: Option<String> = db
                        .query_row(
                            "SELECT posted_at FROM journal_entries WHERE entry_id = ?1",
                            [entry_id(&receipt).to_string()],
                            |r| r.get(0),
                        )
                        .optional()
                        .expect("query");
                    let key_stored: bool = db
                        .query_row(
                            "SELECT count(*) = 1 FROM idempotency_keys WHERE tenant_id = ?1 AND idempotency_key = ?2",
                            params![tenant.to_string(), key],
                            |r| r.get(0),
                        )
                        .expect("query");
                    (receipt, posted_at, key_stored)
                })
            })
            .collect::<Vec<_>>()
    }).await;
    for p in pending {
        let (receipt, posted_at, key_stored) = p.await.expect("task");
        assert_eq!(
            posted_at.as_deref(),
            receipt["posted_at"].as_str(),
            "entry {} was visible to another connection when its answer arrived",
            receipt["journal_entry_id"]
        );
        assert!(key_stored, "the idempotency record was committed with it");
    }
    let stats = fx.store.stats();
    assert!(
        stats.max_batch_seen.load(Ordering::SeqCst) >= 200,
        "the 200 jobs shared one transaction"
    );
    assert_eq!(
        stats.jobs_committed.load(Ordering::SeqCst),
        1 + 1 + 200,
        "warm-up, plug and the 200 jobs"
    );
    fx.store.shutdown();
}

/// Submits `n` disbursements while the write lock is held; returns (commits, jobs, max batch).
async fn run_contended(fx: &Fixture, n: i64) -> (u64, u64, usize) {
    let tenant = TenantId::from_uuid(new_uuid());
    let reqs: Vec<WriteRequest> = (0..n)
        .map(|i| disbursement(tenant, new_uuid(), new_uuid(), 10 + i))
        .collect();
    for answer in fx.batch(reqs).await {
        created(&answer);
    }
    let stats = fx.store.stats();
    (
        stats.commits.load(Ordering::SeqCst),
        stats.jobs_committed.load(Ordering::SeqCst),
        stats.max_batch_seen.load(Ordering::SeqCst),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn group_commit_off_commits_one_job_per_transaction() {
    let n = 60;
    // The fixture's warm-up write, the plug, then the n contended jobs.
    let jobs = u64::try_from(n + 2).expect("count");

    let off = Fixture::new(false).await;
    let (commits, committed, max_batch) = run_contended(&off, n).await;
    assert_eq!(committed, jobs);
    assert_eq!(
        commits, jobs,
        "one transaction per job with group commit off"
    );
    assert_eq!(max_batch, 1);
    assert_eq!(
        off.count("SELECT count(*) FROM journal_entries", []),
        i64::try_from(jobs).expect("count")
    );
    off.store.shutdown();

    let on = Fixture::new(true).await;
    let (commits, committed, max_batch) = run_contended(&on, n).await;
    assert_eq!(committed, jobs);
    assert!(
        commits < jobs,
        "group commit shares transactions under load: {commits} commits for {jobs} jobs"
    );
    assert!(max_batch > 1, "a batch formed: max {max_batch}");
    assert_eq!(
        on.count("SELECT count(*) FROM journal_entries", []),
        i64::try_from(jobs).expect("count")
    );

    // And when nothing is contended, group commit on still answers each job alone, promptly.
    let before = on.store.stats().commits.load(Ordering::SeqCst);
    let tenant = TenantId::from_uuid(new_uuid());
    on.write(disbursement(tenant, new_uuid(), new_uuid(), 5))
        .await;
    assert_eq!(on.store.stats().commits.load(Ordering::SeqCst), before + 1);
    on.store.shutdown();
}
