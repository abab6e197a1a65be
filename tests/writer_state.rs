//! The writer decides every write from state it holds in memory (tenants, GL totals and an LRU
//! of loans), so that memory must always be exactly what the journal says. Driven through the
//! real store (writer thread, group commit, a database file) without HTTP, as
//! `tests/ledger_properties.rs` does:
//!
//! - random histories of every write type — disbursements (on varying dates), payments (some
//!   with an `external_ref`, repeated ones included; recoveries on a charged-off loan), fees,
//!   accrual batches (sometimes for a date already accrued), reversals (of reversals, of already
//!   reversed entries and of lifecycle writes too), the lifecycle writes of SPEC §6c —
//!   settlements, payment returns (some with an NSF fee), fee waivers, charge-offs and manual
//!   adjustments, each naming an event id from an earlier receipt — and requests repeating an
//!   earlier idempotency key with the same body (a replay) or another (a mismatch) — some
//!   submitted one by one, some several at once so they share a group-commit batch;
//! - a model, fed only the writes and their answers in submission order, keeps each loan's eight
//!   figures (`[principal, interest, fees, suspense, disbursed, paid, charged_off, recovered]`)
//!   and what stands on each event: it predicts every receipt (allocation or recovery, returned
//!   allocation, waived amount, what a charge-off writes off, a settlement's amount), checks that
//!   a committed write is one the rules allow, and that every refusal is a business refusal the
//!   history explains (already settled / returned / charged off, event reversed / returned,
//!   waiver above the waivable amount the model computes, nothing to charge off, loan charged
//!   off, reversal blocked, …); anything else fails;
//! - after every step, for every loan, the figures recomputed from `journal_lines` /
//!   `journal_entries` by a separate read-only connection equal the model's, and so do the
//!   `loans` row and what `Store::writer_loan_state` holds (when it holds the loan). Each case
//!   ends with the store's reconciliation and `hpts verify` on the file;
//! - a writer whose cache holds two loans, written round-robin on five, answers exactly what was
//!   posted: eviction never loses or corrupts a loan's state.

mod common;

use common::server::hpts_command;
use common::store_history::{
    Book, Posted, accrual, adjustment, balance_parts, charge_off, date, fee_waiver,
    loan_figures_from_journal, payment_return, reversal, route, settings, settlement,
};

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::pin::pin;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use hpts::clock::{Sources, parse_date};
use hpts::ledger::accrual::DayCount;
use hpts::ledger::commands::{
    AccrualBatch, AccrualItem, ChargeOff, ChargeOffReason, Command, Disbursement,
    DisbursementMethod, Fee, FeeType, FeeWaiver, Payment, PaymentMethod, PaymentReturn, Reversal,
    Settlement,
};
use hpts::ledger::ids::{BorrowerId, EntryId, EventId, LoanId, ProgramId, TenantId};
use hpts::ledger::loan::LoanBalances;
use hpts::ledger::money::{Currency, Money};
use hpts::ledger::state::LoanState;
use hpts::ledger::{ItemProblem, LedgerError};
use hpts::store::{Store, StoreError, WriteOutcome, WriteRequest};
use proptest::prelude::*;
use proptest::sample::Index;
use rusqlite::{Connection, OpenFlags, OptionalExtension, params};
use serde_json::Value;
use uuid::Uuid;

// ---------------------------------------------------------------------------------------------
// Shared pieces: the book of loans, the store, requests, the journal replay.

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime")
}

/// The body a client would send for `command`: two requests have the same body exactly when
/// they carry the same command.
fn payload(command: &Command) -> String {
    serde_json::json!({ "command": format!("{command:?}") }).to_string()
}

fn entry_of(receipt: &Value) -> EntryId {
    receipt["journal_entry_id"]
        .as_str()
        .and_then(EntryId::parse)
        .unwrap_or_else(|| panic!("receipt without journal_entry_id: {receipt}"))
}

fn money_field(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a money string: {v}"))
}

/// A loan's state recomputed from the journal alone: the six balances from its lines (1100,
/// 1200, 1300 debit-normal; 2100 credit-normal as suspense; 2000 credit-normal as disbursed;
/// 1000 debit-normal as paid), borrower and currency from its lines, and the opening date from
/// its first disbursement entry in posting order. `None` for a loan with no disbursement (which
/// then has no line at all).
fn state_from_journal(db: &Connection, tenant: &str, loan: &str) -> Option<LoanState> {
    let first_disbursement: Option<String> = db
        .query_row(
            "SELECT e.effective_at FROM journal_entries e WHERE e.tenant_id = ?1 \
             AND e.event_type = 'disbursement' AND EXISTS \
             (SELECT 1 FROM journal_lines l WHERE l.entry_id = e.entry_id AND l.loan_id = ?2) \
             ORDER BY e.entry_seq LIMIT 1",
            params![tenant, loan],
            |r| r.get(0),
        )
        .optional()
        .expect("first disbursement");
    // The loan's entry links (loan journal paging) must name the same first disbursement.
    let first_linked: Option<String> = db
        .query_row(
            "SELECT e.effective_at FROM loan_entries le JOIN journal_entries e \
             ON e.tenant_id = le.tenant_id AND e.entry_seq = le.entry_seq \
             WHERE le.tenant_id = ?1 AND le.loan_id = ?2 AND e.event_type = 'disbursement' \
             ORDER BY le.entry_seq LIMIT 1",
            params![tenant, loan],
            |r| r.get(0),
        )
        .optional()
        .expect("first linked disbursement");
    assert_eq!(
        first_disbursement, first_linked,
        "loan {loan}: loan_entries and the journal disagree on its first disbursement"
    );
    let Some(opened) = first_disbursement else {
        let lines: i64 = db
            .query_row(
                "SELECT count(*) FROM journal_lines WHERE tenant_id = ?1 AND loan_id = ?2",
                params![tenant, loan],
                |r| r.get(0),
            )
            .expect("count lines");
        assert_eq!(lines, 0, "loan {loan} has lines but no disbursement");
        return None;
    };
    let distinct = |column: &str| -> Vec<Option<String>> {
        let sql = format!(
            "SELECT DISTINCT {column} FROM journal_lines WHERE tenant_id = ?1 AND loan_id = ?2"
        );
        let mut stmt = db.prepare(&sql).expect("prepare");
        stmt.query_map(params![tenant, loan], |r| r.get(0))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect()
    };
    let borrowers = distinct("borrower_id");
    let currencies = distinct("currency");
    let [Some(borrower)] = borrowers.as_slice() else {
        panic!("loan {loan}: its lines name borrowers {borrowers:?}, not exactly one");
    };
    let [Some(currency)] = currencies.as_slice() else {
        panic!("loan {loan}: its lines are in currencies {currencies:?}, not exactly one");
    };
    let m = loan_figures_from_journal(db, Some(tenant))
        .remove(loan)
        .unwrap_or_default();
    Some(LoanState {
        borrower_id: BorrowerId::parse(borrower).expect("borrower id"),
        currency: Currency::parse(currency).expect("currency"),
        opened_on: Some(parse_date(&opened).expect("effective_at")),
        balances: LoanBalances::from_minor_parts(m),
    })
}

/// A loan's state as its `loans` row stores it.
fn state_from_row(db: &Connection, tenant: &str, loan: &str) -> Option<LoanState> {
    db.query_row(
        "SELECT borrower_id, currency, opened_on, principal_minor, interest_minor, fees_minor, \
         suspense_minor, disbursed_total_minor, paid_total_minor, charged_off_minor, recovered_minor \
         FROM loans WHERE tenant_id = ?1 AND loan_id = ?2",
        params![tenant, loan],
        |r| {
            let mut m = [0i64; 8];
            for (i, slot) in m.iter_mut().enumerate() {
                *slot = r.get(i + 3)?;
            }
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, Option<String>>(2)?,
                m,
            ))
        },
    )
    .optional()
    .expect("loans row")
    .map(|(borrower, currency, opened_on, m)| LoanState {
        borrower_id: BorrowerId::parse(&borrower).expect("borrower id"),
        currency: Currency::parse(&currency).expect("currency"),
        opened_on: opened_on.map(|d| parse_date(&d).expect("opened_on")),
        balances: LoanBalances::from_minor_parts(m),
    })
}

/// For every loan of the book: the journal's figures are the model's (`expected`, `None` for a
/// loan not opened yet), the `loans` row equals the journal, and what the writer holds in memory
/// (when it holds the loan) equals both. With `all_cached` (a cache larger than the book) the
/// writer must hold exactly the loans that exist.
async fn assert_writer_state_is_the_journal(
    store: &Store,
    book: &Book,
    db: &Connection,
    all_cached: bool,
    expected: &[Option<Owed>],
    when: &str,
) {
    let tenant = book.tenant.to_string();
    for ((loan_id, _, _), expected) in book.loans.iter().zip(expected) {
        let held = store
            .writer_loan_state(book.tenant, *loan_id)
            .await
            .expect("the writer answers what it holds");
        let loan = loan_id.to_string();
        // One read snapshot for both views (every write of the step has been answered already).
        db.execute_batch("BEGIN").expect("begin read");
        let journal = state_from_journal(db, &tenant, &loan);
        let row = state_from_row(db, &tenant, &loan);
        db.execute_batch("COMMIT").expect("end read");
        assert_eq!(
            journal.map(|s| s.balances.minor_parts()),
            *expected,
            "{when}: loan {loan}: the journal's figures differ from the model's"
        );
        assert_eq!(
            row, journal,
            "{when}: loan {loan}: the loans row differs from the journal"
        );
        if let Some(held) = held {
            assert_eq!(
                Some(held),
                journal,
                "{when}: loan {loan}: the writer's memory differs from the journal"
            );
        }
        if all_cached {
            assert_eq!(
                held.is_some(),
                journal.is_some(),
                "{when}: loan {loan}: with room for every loan the writer holds exactly the loans that exist"
            );
        }
    }
}

/// Runs `hpts verify --database <path>` (bounded) and expects exit 0.
fn assert_hpts_verify_passes(path: &Path) {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let (stdout, stderr) = (out_dir.path().join("out"), out_dir.path().join("err"));
    let mut child = hpts_command()
        .args(["verify", "--database"])
        .arg(path)
        .stdout(std::fs::File::create(&stdout).expect("stdout file"))
        .stderr(std::fs::File::create(&stderr).expect("stderr file"))
        .spawn()
        .expect("run hpts verify");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for hpts verify") {
            break status;
        }
        if started.elapsed() > Duration::from_mins(2) {
            let _ = child.kill();
            let _ = child.wait();
            panic!("hpts verify did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    assert!(
        status.success(),
        "hpts verify {}: {status}\n{}{}",
        path.display(),
        std::fs::read_to_string(&stdout).unwrap_or_default(),
        std::fs::read_to_string(&stderr).unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------------------------
// Random histories.

/// Which earlier entries a reversal picks from.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Any committed entry.
    Any,
    /// A committed reversal (must be refused: a reversal cannot be reversed).
    Reversal,
    /// An entry already reversed (must be refused: already reversed).
    Reversed,
    /// A committed lifecycle write: a settlement, return, waiver, charge-off, recovery or
    /// adjustment (so that their reversals, and what those unblock, are common).
    Lifecycle,
}

/// One random write. Loans are indexes into the case's 1–4 loans; `day` picks a date
/// (2026-11-10 plus `day`: disbursements on days 0–2, fees 1–4, accruals 1–3, payments 2–6, the
/// lifecycle writes 2–7), so loans open on different dates, and some entries predate a loan's
/// opening, and some settlements, returns and waivers the event they name, and are refused. A
/// lifecycle write names an event (`pick`) from the receipts committed before its step.
#[derive(Debug, Clone)]
enum Op {
    Disburse {
        loan: usize,
        amount: i64,
        day: u8,
    },
    Fee {
        loan: usize,
        amount: i64,
        day: u8,
    },
    /// `(loan, interest)` per accrued loan; three possible dates, so repeats happen.
    Accrue {
        loans: Vec<(usize, i64)>,
        day: u8,
    },
    /// `external_ref` picks one of three references, so duplicates happen.
    Pay {
        loan: usize,
        amount: i64,
        day: u8,
        external_ref: Option<u8>,
    },
    /// With `twice`, two requests reverse the same entry one after the other (in one batch when
    /// the step sends writes together): the second must be refused.
    Reverse {
        pick: Index,
        target: Target,
        twice: bool,
    },
    /// Sends an earlier request's idempotency key again, with the same body or another.
    Repeat {
        pick: Index,
        same_body: bool,
    },
    /// Settles a disbursement (`disbursement_event_id`).
    Settle {
        pick: Index,
        day: u8,
    },
    /// Returns a payment or recovery (`payment_event_id`), maybe with an NSF fee.
    Return {
        pick: Index,
        nsf_fee: Option<i64>,
        day: u8,
    },
    /// Waives part of a fee (`fee_event_id`), or all that is waivable (`amount: None`).
    Waive {
        pick: Index,
        amount: Option<i64>,
        day: u8,
    },
    ChargeOff {
        loan: usize,
        day: u8,
    },
    /// A manual adjustment (USD) between two of the accounts an accountant may adjust.
    Adjust {
        accounts: (Index, Index),
        amount: i64,
        day: u8,
    },
}

/// One step: a single write, or 2–8 writes submitted at once. With `hold`, the writer is kept
/// out of the database (a write lock on the file) while they are queued, so they are certain to
/// share batches.
#[derive(Debug, Clone)]
enum Step {
    One(Op),
    Together { ops: Vec<Op>, hold: bool },
}

fn op(loans: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..loans, 1i64..1_000_000, 0u8..3)
            .prop_map(|(loan, amount, day)| Op::Disburse { loan, amount, day }),
        2 => (0..loans, 1i64..50_000, 1u8..5)
            .prop_map(|(loan, amount, day)| Op::Fee { loan, amount, day }),
        2 => (proptest::collection::vec((any::<bool>(), 1i64..20_000), loans), 1u8..4).prop_map(
            |(picks, day)| {
                let mut chosen: Vec<(usize, i64)> = picks
                    .iter()
                    .enumerate()
                    .filter(|(_, (take, _))| *take)
                    .map(|(i, (_, interest))| (i, *interest))
                    .collect();
                if chosen.is_empty() {
                    chosen.push((0, picks[0].1));
                }
                Op::Accrue { loans: chosen, day }
            }
        ),
        3 => (0..loans, 1i64..1_200_000, 2u8..7, proptest::option::of(0u8..3)).prop_map(
            |(loan, amount, day, external_ref)| Op::Pay { loan, amount, day, external_ref }
        ),
        3 => (
            any::<Index>(),
            prop_oneof![
                4 => Just(Target::Any),
                1 => Just(Target::Reversal),
                1 => Just(Target::Reversed),
                2 => Just(Target::Lifecycle),
            ],
            proptest::bool::weighted(0.25),
        )
            .prop_map(|(pick, target, twice)| Op::Reverse { pick, target, twice }),
        2 => (any::<Index>(), any::<bool>())
            .prop_map(|(pick, same_body)| Op::Repeat { pick, same_body }),
        2 => (any::<Index>(), 2u8..8).prop_map(|(pick, day)| Op::Settle { pick, day }),
        2 => (any::<Index>(), proptest::option::of(1i64..5_000), 2u8..8)
            .prop_map(|(pick, nsf_fee, day)| Op::Return { pick, nsf_fee, day }),
        2 => (any::<Index>(), proptest::option::of(1i64..30_000), 2u8..8)
            .prop_map(|(pick, amount, day)| Op::Waive { pick, amount, day }),
        1 => (0..loans, 2u8..8).prop_map(|(loan, day)| Op::ChargeOff { loan, day }),
        1 => (any::<Index>(), any::<Index>(), 1i64..100_000, 2u8..8)
            .prop_map(|(a, b, amount, day)| Op::Adjust { accounts: (a, b), amount, day }),
    ]
}

fn step(loans: usize) -> impl Strategy<Value = Step> {
    prop_oneof![
        3 => op(loans).prop_map(Step::One),
        1 => (proptest::collection::vec(op(loans), 2..=8), any::<bool>())
            .prop_map(|(ops, hold)| Step::Together { ops, hold }),
    ]
}

/// `(loans, writer cache size, steps)`: the cache holds every loan, or just two (so a case with
/// 3–4 loans evicts and reloads them).
fn history() -> impl Strategy<Value = (usize, usize, Vec<Step>)> {
    (1usize..=4).prop_flat_map(|loans| {
        (
            Just(loans),
            prop_oneof![2 => Just(10_000usize), 1 => Just(2usize)],
            proptest::collection::vec(step(loans), 1..=40),
        )
    })
}

/// One request as sent.
#[derive(Debug, Clone)]
struct Sent {
    key: String,
    route: &'static str,
    payload: String,
    command: Command,
    /// Its accrual principals were read right before it was submitted, alone (a request sent
    /// with others, or repeated later, may meet a principal that moved meanwhile).
    fresh: bool,
}

impl Sent {
    fn new(key: String, command: Command, fresh: bool) -> Sent {
        Sent {
            key,
            route: route(&command),
            payload: payload(&command),
            command,
            fresh,
        }
    }

    fn request(&self, book: &Book) -> WriteRequest {
        WriteRequest {
            tenant: book.tenant,
            actor: Some("writer-state".into()),
            route: self.route,
            idempotency_key: self.key.clone(),
            payload: self.payload.clone(),
            metadata: None,
            traceparent: None,
            command: self.command.clone(),
        }
    }
}

/// The same kind of request with another body (an amount one higher, or a reason text).
fn altered(command: &Command) -> Command {
    let mut c = command.clone();
    let bump = |m: &mut Money| *m = Money::from_minor(m.minor() + 1);
    match &mut c {
        Command::Disburse(d) => bump(&mut d.amount),
        Command::Pay(p) => bump(&mut p.amount),
        Command::AssessFee(f) => bump(&mut f.amount),
        Command::Accrue(a) => bump(&mut a.loans[0].interest),
        Command::Reverse(r) => r.reason_description = Some("sent again with another body".into()),
        Command::Settle(st) => st.bank_account_ref = Some("another-account".into()),
        Command::ReturnPayment(r) => r.return_code = Some("R99".into()),
        Command::WaiveFee(w) => w.reason.push_str(" (again)"),
        Command::ChargeOff(co) => co.reason_code = ChargeOffReason::Other,
        Command::Adjust(a) => a.description.push_str(" (again)"),
        Command::ClosePeriod(c) => c.through_date = c.through_date.previous_day().expect("date"),
    }
    c
}

/// A loan's eight figures, `[principal, interest, fees, suspense, disbursed, paid, charged_off,
/// recovered]` (the order of `LoanBalances::minor_parts`), kept by the test.
type Owed = [i64; 8];

/// What a committed write is and does in the model: its kind, its business event, its loan, its
/// date and what it moves on each loan.
type Predicted = (
    Kind,
    Option<EventId>,
    Option<usize>,
    time::Date,
    Vec<(usize, Owed)>,
);

/// The waterfall: fees, then interest, then principal, the rest to suspense.
fn allocate(owed: &Owed, amount: i64) -> [i64; 4] {
    let fees = amount.min(owed[2]);
    let interest = (amount - fees).min(owed[1]);
    let principal = (amount - fees - interest).min(owed[0]);
    [
        fees,
        interest,
        principal,
        amount - fees - interest - principal,
    ]
}

/// `[fees, interest, principal, suspense]` of an allocation in a receipt.
fn parts_of(allocation: &Value) -> [i64; 4] {
    [
        "fees_minor",
        "interest_minor",
        "principal_minor",
        "suspense_minor",
    ]
    .map(|f| money_field(&allocation[f]))
}

fn event_of(receipt: &Value, field: &str) -> EventId {
    receipt[field]
        .as_str()
        .and_then(EventId::parse)
        .unwrap_or_else(|| panic!("receipt without {field}: {receipt}"))
}

/// What kind of business event a committed entry is, with what later writes need of it.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Disbursement {
        amount: i64,
    },
    /// An ordinary payment, or (`recovery`) one on a charged-off loan; `parts` is its allocation
    /// `[fees, interest, principal, suspense]` (a recovery's: suspense only).
    Payment {
        recovery: bool,
        parts: [i64; 4],
    },
    Fee {
        amount: i64,
    },
    Accrual,
    Settlement {
        of: EventId,
    },
    Return {
        of: EventId,
    },
    Waiver {
        of: EventId,
        amount: i64,
    },
    ChargeOff,
    Adjustment,
    Reversal,
}

/// A committed entry as the model knows it.
#[derive(Debug, Clone)]
struct Posting {
    /// Commit order.
    seq: usize,
    kind: Kind,
    /// Its business event, for the kinds a later write may name (disbursement, payment, fee).
    event: Option<EventId>,
    /// The loan it is about (none for an accrual batch or an adjustment).
    loan: Option<usize>,
    effective_at: time::Date,
    /// What it moved on each loan (a reversal: the negation of its original's).
    moves: Vec<(usize, Owed)>,
    reversed: bool,
}

/// What the history has committed so far, as the client saw it, and every loan's figures as
/// the model computes them from the writes alone.
struct Model {
    /// The book's loan ids (a loan's index is its position).
    loans: Vec<LoanId>,
    /// Every request built, in submission order (repeats pick from these).
    sent: Vec<Sent>,
    /// Committed idempotency keys: route, body and the answer given.
    answered: HashMap<String, (&'static str, String, Vec<u8>)>,
    /// Committed entries and the events later writes may name, from the receipts.
    posted: Posted,
    /// Committed reversals, entries that have been reversed, and committed lifecycle writes
    /// (recoveries among them).
    reversals: Vec<EntryId>,
    reversed: Vec<EntryId>,
    lifecycle: Vec<EntryId>,
    /// External references of committed payments.
    refs: HashSet<String>,
    /// Requests submitted so far (for fresh idempotency keys).
    n: usize,
    /// Every committed entry, and the entry of every event a later write may name.
    entries: HashMap<EntryId, Posting>,
    events: HashMap<EventId, EntryId>,
    /// Each loan's figures; `None` until its first disbursement commits.
    figures: Vec<Option<Owed>>,
}

/// The command of a disbursement, fee, accrual or payment op; accrual principals are read from
/// the current balance.
async fn new_command(store: &Store, book: &Book, op: &Op) -> Command {
    let money = Money::from_minor;
    match op {
        Op::Disburse { loan, amount, day } => {
            let (loan_id, borrower_id, currency) = book.loans[*loan];
            Command::Disburse(Disbursement {
                loan_id,
                borrower_id,
                amount: money(*amount),
                currency,
                effective_at: date(*day),
                method: DisbursementMethod::Ach,
                destination_ref: None,
            })
        }
        Op::Fee { loan, amount, day } => {
            let (loan_id, _, currency) = book.loans[*loan];
            Command::AssessFee(Fee {
                loan_id,
                fee_type: FeeType::Late,
                amount: money(*amount),
                currency,
                effective_at: date(*day),
            })
        }
        Op::Accrue { loans, day } => accrual(store, book, loans, *day).await,
        Op::Pay {
            loan,
            amount,
            day,
            external_ref,
        } => {
            let (loan_id, borrower_id, currency) = book.loans[*loan];
            Command::Pay(Payment {
                loan_id,
                borrower_id,
                amount: money(*amount),
                currency,
                effective_at: date(*day),
                source_method: PaymentMethod::Wire,
                external_ref: external_ref.map(|r| format!("ref-{r}")),
            })
        }
        Op::ChargeOff { loan, day } => charge_off(book.loans[*loan].0, date(*day)),
        Op::Adjust {
            accounts: (a, b),
            amount,
            day,
        } => adjustment((*a, *b), *amount, book.loans[0].2, date(*day)),
        Op::Reverse { .. }
        | Op::Repeat { .. }
        | Op::Settle { .. }
        | Op::Return { .. }
        | Op::Waive { .. } => unreachable!("built from the history"),
    }
}

impl Model {
    fn new(book: &Book) -> Model {
        Model {
            loans: book.loans.iter().map(|(id, _, _)| *id).collect(),
            sent: Vec::new(),
            answered: HashMap::new(),
            posted: Posted::default(),
            reversals: Vec::new(),
            reversed: Vec::new(),
            lifecycle: Vec::new(),
            refs: HashSet::new(),
            n: 0,
            entries: HashMap::new(),
            events: HashMap::new(),
            figures: vec![None; book.loans.len()],
        }
    }

    fn new_key(&mut self) -> String {
        self.n += 1;
        format!("op-{:06}", self.n)
    }

    fn loan(&self, id: LoanId) -> usize {
        self.loans
            .iter()
            .position(|l| *l == id)
            .unwrap_or_else(|| panic!("loan {id} is not in the book"))
    }

    fn owed(&self, loan: usize) -> Owed {
        self.figures[loan].unwrap_or_default()
    }

    fn charged_off(&self, loan: usize) -> bool {
        self.owed(loan)[6] > 0
    }

    /// The committed event `id` (the history names only events from earlier receipts).
    fn event(&self, id: EventId) -> &Posting {
        let entry = self
            .events
            .get(&id)
            .unwrap_or_else(|| panic!("event {id} was never committed"));
        &self.entries[entry]
    }

    fn live(&self) -> impl Iterator<Item = &Posting> {
        self.entries.values().filter(|p| !p.reversed)
    }

    fn settled(&self, disbursement: EventId) -> bool {
        self.live()
            .any(|p| matches!(p.kind, Kind::Settlement { of } if of == disbursement))
    }

    fn returned(&self, payment: EventId) -> bool {
        self.live()
            .any(|p| matches!(p.kind, Kind::Return { of } if of == payment))
    }

    /// What the standing waivers of `fee` forgave.
    fn waived(&self, fee: EventId) -> i64 {
        self.live()
            .filter_map(|p| match p.kind {
                Kind::Waiver { of, amount } if of == fee => Some(amount),
                _ => None,
            })
            .sum()
    }

    /// min(the fee less what its standing waivers forgave, the loan's fees now).
    fn waivable(&self, fee: EventId) -> i64 {
        let posting = self.event(fee);
        let Kind::Fee { amount } = posting.kind else {
            panic!("event {fee} is not a fee: {posting:?}");
        };
        let loan = posting.loan.expect("a fee is on a loan");
        (amount - self.waived(fee)).max(0).min(self.owed(loan)[2])
    }

    /// Whether a recovery posted after charge-off `chargeoff` stands on `loan` (neither
    /// reversed nor returned).
    fn recovered_after(&self, chargeoff: &Posting, loan: usize) -> bool {
        self.live().any(|p| {
            matches!(p.kind, Kind::Payment { recovery: true, .. })
                && p.loan == Some(loan)
                && p.seq > chargeoff.seq
                && p.event.is_some_and(|e| !self.returned(e))
        })
    }

    /// The event a settlement, return or waiver names.
    fn subject_of(command: &Command) -> Option<(EventId, time::Date)> {
        match command {
            Command::Settle(s) => Some((s.disbursement_event_id, s.effective_at)),
            Command::ReturnPayment(r) => Some((r.payment_event_id, r.effective_at)),
            Command::WaiveFee(w) => Some((w.fee_event_id, w.effective_at)),
            _ => None,
        }
    }

    /// The command of a settlement, return or waiver op: it names an event committed before
    /// this step (none yet: no write).
    fn lifecycle_command(&self, op: &Op) -> Option<Command> {
        let pick = Posted::pick;
        Some(match op {
            Op::Settle { pick: i, day } => {
                settlement(pick(&self.posted.disbursements, *i)?, date(*day))
            }
            Op::Return {
                pick: i,
                nsf_fee,
                day,
            } => payment_return(pick(&self.posted.payments, *i)?, *nsf_fee, date(*day)),
            Op::Waive {
                pick: i,
                amount,
                day,
            } => fee_waiver(pick(&self.posted.fees, *i)?, *amount, date(*day)),
            _ => unreachable!("not a write naming an event"),
        })
    }

    /// Builds the requests of `op` (and remembers them): none when the op has nothing to act on
    /// yet (a reversal, repeat, settlement, return or waiver before there is anything to name),
    /// two for a reversal sent twice, one otherwise.
    async fn build(&mut self, store: &Store, book: &Book, op: &Op, alone: bool) -> Vec<Sent> {
        let command = match op {
            Op::Reverse {
                pick,
                target,
                twice,
            } => {
                let from = match target {
                    Target::Reversal if !self.reversals.is_empty() => &self.reversals,
                    Target::Reversed if !self.reversed.is_empty() => &self.reversed,
                    Target::Lifecycle if !self.lifecycle.is_empty() => &self.lifecycle,
                    _ => &self.posted.entries,
                };
                if from.is_empty() {
                    return Vec::new();
                }
                let entry = *pick.get(from);
                if *twice {
                    let first = Sent::new(self.new_key(), reversal(entry), alone);
                    let second = Sent::new(self.new_key(), reversal(entry), alone);
                    self.sent.extend([first.clone(), second.clone()]);
                    return vec![first, second];
                }
                reversal(entry)
            }
            Op::Repeat { pick, same_body } => {
                if self.sent.is_empty() {
                    return Vec::new();
                }
                let earlier = pick.get(&self.sent).clone();
                let command = if *same_body {
                    earlier.command
                } else {
                    altered(&earlier.command)
                };
                let sent = Sent::new(earlier.key, command, false);
                self.sent.push(sent.clone());
                return vec![sent];
            }
            Op::Settle { .. } | Op::Return { .. } | Op::Waive { .. } => {
                let Some(command) = self.lifecycle_command(op) else {
                    return Vec::new();
                };
                command
            }
            _ => new_command(store, book, op).await,
        };
        let key = self.new_key();
        let sent = Sent::new(key, command, alone);
        self.sent.push(sent.clone());
        vec![sent]
    }

    /// Judges one answer, in submission order (within one tenant the writer keeps that order,
    /// across batches and inside one): a committed key replays its first answer byte for byte
    /// or is a mismatch; a new one is committed — with the receipt and the figures the model
    /// predicts — or refused for a business reason that the history explains.
    fn judge(&mut self, sent: &Sent, result: Result<WriteOutcome, StoreError>, label: &str) {
        if let Some((route, payload, body)) = self.answered.get(&sent.key) {
            if *route == sent.route && *payload == sent.payload {
                match result {
                    Ok(WriteOutcome::Replayed(replayed)) => assert!(
                        replayed == *body,
                        "{label}: a replay answers the first answer byte for byte"
                    ),
                    other => panic!(
                        "{label}: expected a replay of key {}, got {other:?}",
                        sent.key
                    ),
                }
            } else {
                assert!(
                    matches!(result, Err(StoreError::IdempotencyMismatch)),
                    "{label}: key {} reused with another body must be a mismatch, got {result:?}",
                    sent.key
                );
            }
            return;
        }
        match result {
            Ok(WriteOutcome::Created(body)) => {
                let receipt: Value = serde_json::from_slice(&body).expect("receipt is JSON");
                self.commit(&sent.command, &receipt, label);
                self.posted.record(&receipt);
                self.answered
                    .insert(sent.key.clone(), (sent.route, sent.payload.clone(), body));
            }
            Ok(WriteOutcome::Replayed(_)) => {
                panic!(
                    "{label}: replayed although key {} never committed",
                    sent.key
                )
            }
            Err(e) => self.judge_refusal(sent, &e, label),
        }
    }

    /// A committed write: its receipt must say what the model predicts from the figures and
    /// events so far, the write must be one the rules allow on them, and the model moves the
    /// figures as the write does.
    fn commit(&mut self, command: &Command, receipt: &Value, label: &str) {
        let entry = entry_of(receipt);
        let (kind, event, loan, effective_at, moves) = self.predict(command, entry, receipt, label);
        self.apply_moves(&moves, label);
        self.record_posting(entry, kind, event, loan, effective_at, moves);
    }

    /// What a committed write is and moves, checked against the rules and its receipt.
    fn predict(
        &mut self,
        command: &Command,
        entry: EntryId,
        receipt: &Value,
        label: &str,
    ) -> Predicted {
        match command {
            Command::Disburse(d) => self.predict_disbursement(d, receipt, label),
            Command::AssessFee(f) => self.predict_fee(f, receipt, label),
            Command::Accrue(a) => self.predict_accrual(a, label),
            Command::Pay(p) => self.predict_payment(p, receipt, label),
            Command::Settle(s) => self.predict_settlement(s, receipt, label),
            Command::ReturnPayment(r) => self.predict_return(r, receipt, label),
            Command::WaiveFee(w) => self.predict_waiver(w, receipt, label),
            Command::ChargeOff(c) => self.predict_charge_off(c, receipt, label),
            Command::Adjust(a) => (Kind::Adjustment, None, None, a.effective_at, vec![]),
            Command::ClosePeriod(_) => panic!("{label}: this history closes no period"),
            Command::Reverse(r) => self.predict_reversal(r, entry, label),
        }
    }

    /// A disbursement: principal owed and disbursed on an open loan.
    fn predict_disbursement(
        &mut self,
        d: &Disbursement,
        receipt: &Value,
        label: &str,
    ) -> Predicted {
        let i = self.loan(d.loan_id);
        assert!(
            !self.charged_off(i),
            "{label}: disbursed on a charged-off loan"
        );
        let a = d.amount.minor();
        self.figures[i].get_or_insert_default();
        (
            Kind::Disbursement { amount: a },
            Some(event_of(receipt, "disbursement_event_id")),
            Some(i),
            d.effective_at,
            vec![(i, [a, 0, 0, 0, a, 0, 0, 0])],
        )
    }

    /// A fee: fees owed on an open loan.
    fn predict_fee(&self, f: &Fee, receipt: &Value, label: &str) -> Predicted {
        let i = self.loan(f.loan_id);
        assert!(!self.charged_off(i), "{label}: fee on a charged-off loan");
        let a = f.amount.minor();
        (
            Kind::Fee { amount: a },
            Some(event_of(receipt, "fee_event_id")),
            Some(i),
            f.effective_at,
            vec![(i, [0, 0, a, 0, 0, 0, 0, 0])],
        )
    }

    /// An accrual batch: interest owed on each of its open loans.
    fn predict_accrual(&self, a: &AccrualBatch, label: &str) -> Predicted {
        let mut moves = Vec::with_capacity(a.loans.len());
        for item in &a.loans {
            let i = self.loan(item.loan_id);
            assert!(
                !self.charged_off(i),
                "{label}: accrued on a charged-off loan"
            );
            moves.push((i, [0, item.interest.minor(), 0, 0, 0, 0, 0, 0]));
        }
        (Kind::Accrual, None, None, a.accrual_date, moves)
    }

    /// A payment: the waterfall on an open loan, a recovery on a charged-off one.
    fn predict_payment(&mut self, p: &Payment, receipt: &Value, label: &str) -> Predicted {
        if let Some(r) = &p.external_ref {
            assert!(
                self.refs.insert(r.clone()),
                "{label}: external_ref {r} accepted twice"
            );
        }
        let i = self.loan(p.loan_id);
        let owed = self.owed(i);
        let amount = p.amount.minor();
        // On a charged-off loan a payment is a recovery: Cr 4200 min(amount, charged_off
        // - recovered) if that is > 0, the rest Cr 2100 (lifecycle decisions); otherwise
        // the waterfall.
        let recovery = owed[6] > 0;
        let (parts, recovered) = if recovery {
            let r = amount.min(owed[6] - owed[7]).max(0);
            ([0, 0, 0, amount - r], r)
        } else {
            (allocate(&owed, amount), 0)
        };
        assert_eq!(
            (
                parts_of(&receipt["allocation"]),
                money_field(&receipt["recovery_minor"])
            ),
            (parts, recovered),
            "{label}: allocation and recovery of a payment on a loan owing {owed:?}"
        );
        (
            Kind::Payment { recovery, parts },
            Some(event_of(receipt, "payment_event_id")),
            Some(i),
            p.effective_at,
            vec![(
                i,
                [
                    -parts[2], -parts[1], -parts[0], parts[3], 0, amount, 0, recovered,
                ],
            )],
        )
    }

    /// A settlement of a live, unsettled, earlier disbursement (moves no figure).
    fn predict_settlement(&self, s: &Settlement, receipt: &Value, label: &str) -> Predicted {
        let of = s.disbursement_event_id;
        let d = self.event(of);
        let Kind::Disbursement { amount } = d.kind else {
            panic!("{label}: settled {d:?}, not a disbursement");
        };
        assert!(
            !d.reversed && !self.settled(of) && s.effective_at >= d.effective_at,
            "{label}: settled a reversed, settled or later disbursement {d:?}"
        );
        assert_eq!(
            (
                money_field(&receipt["amount_minor"]),
                event_of(receipt, "disbursement_event_id")
            ),
            (amount, of),
            "{label}: the settlement receipt names the disbursement and its amount"
        );
        (
            Kind::Settlement { of },
            None,
            d.loan,
            s.effective_at,
            vec![],
        )
    }

    /// A payment return: the payment's moves mirrored, plus any NSF fee.
    fn predict_return(&self, r: &PaymentReturn, receipt: &Value, label: &str) -> Predicted {
        let of = r.payment_event_id;
        let p = self.event(of).clone();
        let Kind::Payment { recovery, parts } = p.kind else {
            panic!("{label}: returned {p:?}, not a payment");
        };
        let i = p.loan.expect("a payment is on a loan");
        assert!(
            !p.reversed && !self.returned(of) && r.effective_at >= p.effective_at,
            "{label}: returned a reversed, returned or later payment {p:?}"
        );
        assert!(
            !self.charged_off(i) || (recovery && r.nsf_fee.is_none()),
            "{label}: returned a payment or charged an NSF fee on a charged-off loan"
        );
        let nsf = r.nsf_fee.map_or(0, Money::minor);
        assert_eq!(
            (
                parts_of(&receipt["returned_allocation"]),
                money_field(&receipt["nsf_fee_minor"]),
                event_of(receipt, "payment_event_id")
            ),
            (parts, nsf, of),
            "{label}: the return gives back the payment's allocation"
        );
        // The payment's lines mirrored, plus the fee (Dr 1300).
        let mut back = p.moves[0].1.map(|m| -m);
        back[2] += nsf;
        (
            Kind::Return { of },
            None,
            Some(i),
            r.effective_at,
            vec![(i, back)],
        )
    }

    /// A fee waiver of at most what is still waivable.
    fn predict_waiver(&self, w: &FeeWaiver, receipt: &Value, label: &str) -> Predicted {
        let of = w.fee_event_id;
        let f = self.event(of);
        let i = f.loan.expect("a fee is on a loan");
        assert!(
            !f.reversed && w.effective_at >= f.effective_at,
            "{label}: waived a reversed or later fee {f:?}"
        );
        let waivable = self.waivable(of);
        let waived = w.amount.map_or(waivable, Money::minor);
        assert!(
            waivable > 0 && waived <= waivable,
            "{label}: waived {waived} of a fee of which {waivable} is waivable"
        );
        assert_eq!(
            (
                money_field(&receipt["waived_minor"]),
                event_of(receipt, "fee_event_id")
            ),
            (waived, of),
            "{label}: the waiver receipt"
        );
        (
            Kind::Waiver { of, amount: waived },
            None,
            Some(i),
            w.effective_at,
            vec![(i, [0, 0, -waived, 0, 0, 0, 0, 0])],
        )
    }

    /// A charge-off of everything a loan owes.
    fn predict_charge_off(&self, c: &ChargeOff, receipt: &Value, label: &str) -> Predicted {
        let i = self.loan(c.loan_id);
        let [principal, interest, fees, ..] = self.owed(i);
        let total = principal + interest + fees;
        assert!(
            !self.charged_off(i) && total > 0,
            "{label}: charged off a loan charged off already or owing nothing"
        );
        let w = &receipt["charged_off"];
        assert_eq!(
            [
                money_field(&w["principal_minor"]),
                money_field(&w["interest_minor"]),
                money_field(&w["fees_minor"]),
                money_field(&receipt["total_minor"]),
            ],
            [principal, interest, fees, total],
            "{label}: the charge-off writes off everything owed"
        );
        (
            Kind::ChargeOff,
            None,
            Some(i),
            c.effective_at,
            vec![(i, [-principal, -interest, -fees, 0, 0, 0, total, 0])],
        )
    }

    /// A reversal of a live entry nothing later stands on: its moves negated.
    fn predict_reversal(&mut self, r: &Reversal, entry: EntryId, label: &str) -> Predicted {
        let target = r.reverses_entry_id;
        assert!(
            !self.reversals.contains(&target) && !self.reversed.contains(&target),
            "{label}: reversed {target}, which is a reversal or already reversed"
        );
        let original = self
            .entries
            .get(&target)
            .unwrap_or_else(|| panic!("{label}: reversed {target}, never committed"))
            .clone();
        let blocked = match (original.kind, original.event, original.loan) {
            (Kind::Disbursement { .. }, Some(e), _) => self.settled(e),
            (Kind::Payment { .. }, Some(e), _) => self.returned(e),
            (Kind::Fee { .. }, Some(e), _) => self.waived(e) > 0,
            (Kind::ChargeOff, _, Some(i)) => self.recovered_after(&original, i),
            _ => false,
        };
        assert!(
            !blocked,
            "{label}: reversed {original:?} although a settlement, return, waiver or \
             later recovery stands on it"
        );
        self.entries.get_mut(&target).expect("committed").reversed = true;
        self.reversals.push(entry);
        self.reversed.push(target);
        (
            Kind::Reversal,
            None,
            original.loan,
            original.effective_at,
            original
                .moves
                .iter()
                .map(|(i, m)| (*i, m.map(|x| -x)))
                .collect(),
        )
    }

    /// Moves the model's figures as a committed write does; none may go negative, and a
    /// charged-off loan may not owe again.
    fn apply_moves(&mut self, moves: &[(usize, Owed)], label: &str) {
        for (i, m) in moves {
            let figures = self.figures[*i]
                .as_mut()
                .unwrap_or_else(|| panic!("{label}: committed on loan {i}, which does not exist"));
            for (f, d) in figures.iter_mut().zip(m) {
                *f += d;
            }
            assert!(
                figures.iter().all(|f| *f >= 0),
                "{label}: committed although loan {i} goes negative: {figures:?}"
            );
            assert!(
                figures[6] == 0 || figures[..3] == [0, 0, 0],
                "{label}: committed although charged-off loan {i} owes again: {figures:?}"
            );
        }
    }

    /// Books a committed write: as lifecycle activity where it is, under its event, and as an
    /// entry in commit order.
    fn record_posting(
        &mut self,
        entry: EntryId,
        kind: Kind,
        event: Option<EventId>,
        loan: Option<usize>,
        effective_at: time::Date,
        moves: Vec<(usize, Owed)>,
    ) {
        if matches!(
            kind,
            Kind::Settlement { .. }
                | Kind::Return { .. }
                | Kind::Waiver { .. }
                | Kind::ChargeOff
                | Kind::Adjustment
                | Kind::Payment { recovery: true, .. }
        ) {
            self.lifecycle.push(entry);
        }
        if let Some(e) = event {
            self.events.insert(e, entry);
        }
        let seq = self.entries.len();
        self.entries.insert(
            entry,
            Posting {
                seq,
                kind,
                event,
                loan,
                effective_at,
                moves,
                reversed: false,
            },
        );
    }

    /// A refusal must be one a random history can meet, and one its history explains.
    fn judge_refusal(&self, sent: &Sent, e: &StoreError, label: &str) {
        let command = &sent.command;
        let target = match command {
            Command::Reverse(r) => Some(r.reverses_entry_id),
            _ => None,
        };
        let subject = Self::subject_of(command);
        let charged_off = |id: LoanId| self.charged_off(self.loan(id));
        match e {
            StoreError::Ledger(LedgerError::AlreadyReversed) => assert!(
                target.is_some_and(|t| self.reversed.contains(&t)),
                "{label}: 'already reversed' for an entry never reversed"
            ),
            StoreError::Ledger(LedgerError::CannotReverseReversal) => assert!(
                target.is_some_and(|t| self.reversals.contains(&t)),
                "{label}: 'cannot reverse a reversal' for an entry that is not one"
            ),
            StoreError::Ledger(LedgerError::DuplicateExternalRef) => {
                self.judge_duplicate_external_ref(command, label);
            }
            StoreError::Ledger(
                LedgerError::LoanNotFound(_) | LedgerError::EffectiveBeforeLoan(_),
            ) => {}
            // Later activity a reversal's mirror would undercut (a balance would go negative,
            // a charged-off loan would owe again), or a settlement, waiver or later recovery
            // standing on it.
            StoreError::Ledger(LedgerError::ReversalBlocked) => assert!(
                target.is_some(),
                "{label}: 'reversal blocked' for a write that is not a reversal"
            ),
            StoreError::Ledger(LedgerError::EventReturned) => assert!(
                target
                    .and_then(|t| self.entries.get(&t))
                    .is_some_and(|p| matches!(p.kind, Kind::Payment { .. })
                        && p.event.is_some_and(|e| self.returned(e))),
                "{label}: 'event returned' for an entry that is not a returned payment"
            ),
            StoreError::Ledger(LedgerError::AlreadySettled) => assert!(
                matches!(command, Command::Settle(s) if self.settled(s.disbursement_event_id)),
                "{label}: 'already settled' for a disbursement not settled"
            ),
            StoreError::Ledger(LedgerError::AlreadyReturned) => assert!(
                matches!(command, Command::ReturnPayment(r) if self.returned(r.payment_event_id)),
                "{label}: 'already returned' for a payment not returned"
            ),
            StoreError::Ledger(LedgerError::EventReversed) => assert!(
                subject.is_some_and(|(e, _)| self.event(e).reversed),
                "{label}: 'event reversed' for an event not reversed"
            ),
            StoreError::Ledger(LedgerError::EffectiveBeforeOriginal) => assert!(
                subject.is_some_and(|(e, date)| date < self.event(e).effective_at),
                "{label}: 'effective before original' for a write not dated before its event"
            ),
            StoreError::Ledger(LedgerError::WaiverExceedsOutstanding { waivable }) => {
                self.judge_waiver_exceeding_outstanding(command, *waivable, label);
            }
            StoreError::Ledger(LedgerError::AlreadyChargedOff) => assert!(
                matches!(command, Command::ChargeOff(c) if charged_off(c.loan_id)),
                "{label}: 'already charged off' for a loan not charged off"
            ),
            StoreError::Ledger(LedgerError::NothingToChargeOff) => assert!(
                matches!(command, Command::ChargeOff(c) if self.owed(self.loan(c.loan_id))[..3] == [0, 0, 0]),
                "{label}: 'nothing to charge off' for a loan that owes"
            ),
            StoreError::Ledger(LedgerError::LoanChargedOff { .. }) => {
                self.judge_loan_charged_off(command, label);
            }
            StoreError::Ledger(LedgerError::BatchRejected(problems)) => {
                self.judge_batch_rejected(sent, problems, label);
            }
            other => panic!("{label}: unexpected refusal {other:?}"),
        }
    }

    /// A duplicate `external_ref` only on a payment whose reference was accepted before.
    fn judge_duplicate_external_ref(&self, command: &Command, label: &str) {
        let Command::Pay(p) = command else {
            panic!("{label}: duplicate external_ref on a non-payment");
        };
        assert!(
            p.external_ref
                .as_ref()
                .is_some_and(|r| self.refs.contains(r)),
            "{label}: duplicate external_ref for a reference never accepted"
        );
    }

    /// A waiver refused only beyond what is waivable, naming the waivable amount.
    fn judge_waiver_exceeding_outstanding(&self, command: &Command, waivable: Money, label: &str) {
        let Command::WaiveFee(w) = command else {
            panic!("{label}: 'waiver exceeds outstanding' for a non-waiver");
        };
        let expected = self.waivable(w.fee_event_id);
        assert_eq!(
            waivable.minor(),
            expected,
            "{label}: the waivable amount a refusal names"
        );
        assert!(
            expected == 0 || w.amount.is_some_and(|a| a.minor() > expected),
            "{label}: refused a waiver within the waivable {expected}"
        );
    }

    /// A write refused as on a charged-off loan names one.
    fn judge_loan_charged_off(&self, command: &Command, label: &str) {
        let loan = match command {
            Command::Disburse(d) => Some(self.loan(d.loan_id)),
            Command::AssessFee(f) => Some(self.loan(f.loan_id)),
            Command::ReturnPayment(r) => self.event(r.payment_event_id).loan,
            _ => None,
        };
        assert!(
            loan.is_some_and(|i| self.charged_off(i)),
            "{label}: 'loan charged off' for a write on no charged-off loan"
        );
    }

    /// Each item problem of a refused accrual batch is one its history explains.
    fn judge_batch_rejected(&self, sent: &Sent, problems: &[ItemProblem], label: &str) {
        let command = &sent.command;
        let charged_off = |id: LoanId| self.charged_off(self.loan(id));
        let Command::Accrue(a) = command else {
            panic!("{label}: item problems for a non-accrual");
        };
        for p in problems {
            let explained = matches!(
                p.code,
                "loan_not_found"
                    | "already_accrued"
                    | "mixed_currency_batch"
                    | "effective_before_loan"
            ) || (!sent.fresh && p.code == "principal_mismatch")
                || (p.code == "loan_charged_off"
                    && a.loans.get(p.index).is_some_and(|l| charged_off(l.loan_id)));
            assert!(explained, "{label}: unexpected accrual problem {p:?}");
        }
    }
}

/// Submits `requests` at once and answers in their order. Each write is queued when its future
/// is first polled, so one poll of the joined futures queues all of them, in order, before any
/// is answered. With `hold`, a write lock on the file keeps the writer from starting a
/// transaction meanwhile (it waits in `BEGIN IMMEDIATE`, within its busy timeout), so with three
/// or more writes at least two share a batch.
async fn submit_together(
    store: &Store,
    lock: &Connection,
    requests: Vec<WriteRequest>,
    hold: bool,
) -> Vec<Result<WriteOutcome, StoreError>> {
    if hold {
        lock.execute_batch("BEGIN IMMEDIATE")
            .expect("take the write lock");
    }
    let mut all = pin!(join_all(requests.into_iter().map(|r| store.write(r))));
    let mut early = None;
    std::future::poll_fn(|cx| {
        if let Poll::Ready(out) = all.as_mut().poll(cx) {
            early = Some(out);
        }
        Poll::Ready(())
    })
    .await;
    if hold {
        lock.execute_batch("ROLLBACK")
            .expect("release the write lock");
    }
    match early {
        Some(out) => out,
        None => all.await,
    }
}

fn run_history(loan_count: usize, cache_loans: usize, steps: &[Step]) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let runtime = runtime();
    let store =
        Store::open(&settings(&path, cache_loans), Sources::default()).expect("store opens");
    let book = Book::new(loan_count);
    let db = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("read connection");
    let lock = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_WRITE)
        .expect("lock connection");
    lock.pragma_update(None, "busy_timeout", 5000)
        .expect("busy timeout");
    let all_cached = cache_loans >= loan_count;

    runtime.block_on(async {
        let mut model = Model::new(&book);
        let mut held_three = false;
        for (s, step) in steps.iter().enumerate() {
            match step {
                Step::One(op) => {
                    for sent in model.build(&store, &book, op, true).await {
                        let result = store.write(sent.request(&book)).await;
                        model.judge(&sent, result, &format!("step {s} ({op:?}) {sent:?}"));
                    }
                }
                Step::Together { ops, hold } => {
                    let mut sents = Vec::with_capacity(ops.len());
                    for op in ops {
                        sents.extend(model.build(&store, &book, op, false).await);
                    }
                    held_three |= *hold && sents.len() >= 3;
                    let requests = sents.iter().map(|s| s.request(&book)).collect();
                    let results = submit_together(&store, &lock, requests, *hold).await;
                    for (i, (sent, result)) in sents.iter().zip(results).enumerate() {
                        model.judge(
                            &sent.clone(),
                            result,
                            &format!("step {s} write {i} of a group: {sent:?}"),
                        );
                    }
                }
            }
            assert_writer_state_is_the_journal(
                &store,
                &book,
                &db,
                all_cached,
                &model.figures,
                &format!("after step {s} ({step:?})"),
            )
            .await;
        }
        if held_three {
            assert!(
                store.stats().max_batch_seen.load(Ordering::Relaxed) >= 2,
                "writes queued together while the writer waited shared a batch"
            );
        }
        let proof = store
            .reconcile(book.tenant, None)
            .await
            .expect("reconciliation runs");
        assert!(proof.ok(), "reconciliation fails: {:?}", proof.checks);
    });
    drop(lock);
    drop(db);
    store.shutdown();
    assert_hpts_verify_passes(&path);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn the_writers_memory_of_every_loan_equals_the_journal_after_every_write_and_every_batch(
        (loans, cache_loans, steps) in history()
    ) {
        run_history(loans, cache_loans, &steps);
    }
}

// ---------------------------------------------------------------------------------------------
// Eviction.

/// Five USD loans of one tenant behind a writer that holds two, and what the test posted on
/// each.
struct RoundRobin {
    store: Store,
    tenant: TenantId,
    usd: Currency,
    opened_on: time::Date,
    loans: Vec<(LoanId, BorrowerId)>,
    owed: Vec<Owed>,
    writes: usize,
    /// Whether some existing loan was, at some check, not held by the writer.
    evicted_seen: bool,
}

impl RoundRobin {
    const LOANS: usize = 5;

    fn open(path: &Path) -> RoundRobin {
        let loans = (0..Self::LOANS)
            .map(|i| {
                let n = u128::try_from(i).expect("small");
                (
                    LoanId::from_uuid(Uuid::from_u128(
                        0x0190_0000_0000_7000_8000_0000_0000_3000 + n,
                    )),
                    BorrowerId::from_uuid(Uuid::from_u128(
                        0x0190_0000_0000_7000_8000_0000_0000_4000 + n,
                    )),
                )
            })
            .collect();
        RoundRobin {
            store: Store::open(&settings(path, 2), Sources::default()).expect("store opens"),
            tenant: TenantId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0002)),
            usd: Currency::parse("USD").expect("usd"),
            opened_on: parse_date("2026-11-01").expect("date"),
            loans,
            owed: vec![[0; 8]; Self::LOANS],
            writes: 0,
            evicted_seen: false,
        }
    }

    /// Writes `command`, which must be committed; returns its receipt.
    async fn write(&mut self, command: Command) -> Value {
        self.writes += 1;
        let req = WriteRequest {
            tenant: self.tenant,
            actor: Some("eviction".into()),
            route: route(&command),
            idempotency_key: format!("evict-{:04}", self.writes),
            payload: payload(&command),
            metadata: None,
            traceparent: None,
            command,
        };
        match self.store.write(req).await {
            Ok(WriteOutcome::Created(body)) => serde_json::from_slice(&body).expect("receipt"),
            other => panic!("write {} was not committed: {other:?}", self.writes),
        }
    }

    /// Every loan reads back what the test posted, the writer holds at most two loans, and any
    /// loan it holds is held exactly.
    async fn check(&mut self, when: &str) {
        for (i, (loan_id, borrower_id)) in self.loans.iter().enumerate() {
            let view = self
                .store
                .loan_balance(self.tenant, *loan_id, None)
                .await
                .expect("read");
            let read = view.map(|v| balance_parts(&v).map(Money::minor));
            let expected = (self.owed[i][4] > 0).then_some(self.owed[i]);
            assert_eq!(
                read, expected,
                "{when}: loan {i} reads back what was posted"
            );
            let held = self
                .store
                .writer_loan_state(self.tenant, *loan_id)
                .await
                .expect("inspect");
            match held {
                Some(held) => assert_eq!(
                    held,
                    LoanState {
                        borrower_id: *borrower_id,
                        currency: self.usd,
                        opened_on: Some(self.opened_on),
                        balances: LoanBalances::from_minor_parts(self.owed[i]),
                    },
                    "{when}: loan {i} as the writer holds it"
                ),
                None => self.evicted_seen |= expected.is_some(),
            }
        }
        let cached = self.store.stats().cached_loans.load(Ordering::Relaxed);
        assert!(
            cached <= 2,
            "{when}: the writer holds {cached} loans, more than 2"
        );
    }

    async fn disburse(&mut self, i: usize, amount: i64) {
        let (loan_id, borrower_id) = self.loans[i];
        self.write(Command::Disburse(Disbursement {
            loan_id,
            borrower_id,
            amount: Money::from_minor(amount),
            currency: self.usd,
            effective_at: self.opened_on,
            method: DisbursementMethod::Ach,
            destination_ref: None,
        }))
        .await;
        self.owed[i][0] += amount;
        self.owed[i][4] += amount;
    }

    async fn fee(&mut self, i: usize, amount: i64) {
        self.write(Command::AssessFee(Fee {
            loan_id: self.loans[i].0,
            fee_type: FeeType::Late,
            amount: Money::from_minor(amount),
            currency: self.usd,
            effective_at: parse_date("2026-11-02").expect("date"),
        }))
        .await;
        self.owed[i][2] += amount;
    }

    /// One accrual over every loan (more than the cache holds), stating the principals the test
    /// expects: a writer deciding from a stale principal would refuse it.
    async fn accrue_all(&mut self, day: u8, interest: impl Fn(usize) -> i64) {
        let items = self
            .loans
            .iter()
            .enumerate()
            .map(|(i, (loan_id, _))| AccrualItem {
                loan_id: *loan_id,
                outstanding_principal: Money::from_minor(self.owed[i][0]),
                interest: Money::from_minor(interest(i)),
                annual_rate_bps: None,
            })
            .collect();
        self.write(Command::Accrue(AccrualBatch {
            program_id: ProgramId::from_uuid(Uuid::from_u128(7)),
            accrual_date: date(day),
            convention: DayCount::Act365,
            loans: items,
        }))
        .await;
        for (i, o) in self.owed.iter_mut().enumerate() {
            o[1] += interest(i);
        }
    }

    /// Pays `amount` on loan `i`; the allocation must follow what the test says is owed.
    /// Returns the entry and its allocation.
    async fn pay(&mut self, i: usize, amount: i64) -> (EntryId, [i64; 4]) {
        let (loan_id, borrower_id) = self.loans[i];
        let receipt = self
            .write(Command::Pay(Payment {
                loan_id,
                borrower_id,
                amount: Money::from_minor(amount),
                currency: self.usd,
                effective_at: parse_date("2026-11-20").expect("date"),
                source_method: PaymentMethod::Ach,
                external_ref: None,
            }))
            .await;
        let parts = allocate(&self.owed[i], amount);
        let a = &receipt["allocation"];
        let got = [
            "fees_minor",
            "interest_minor",
            "principal_minor",
            "suspense_minor",
        ]
        .map(|f| money_field(&a[f]));
        assert_eq!(got, parts, "loan {i}'s payment allocation");
        let o = &mut self.owed[i];
        o[2] -= parts[0];
        o[1] -= parts[1];
        o[0] -= parts[2];
        o[3] += parts[3];
        o[5] += amount;
        (entry_of(&receipt), parts)
    }

    /// Reverses payment `entry` of `amount` on loan `i`, allocated as `parts`.
    async fn reverse_payment(&mut self, i: usize, entry: EntryId, parts: [i64; 4], amount: i64) {
        self.write(reversal(entry)).await;
        let o = &mut self.owed[i];
        o[2] += parts[0];
        o[1] += parts[1];
        o[0] += parts[2];
        o[3] -= parts[3];
        o[5] -= amount;
    }
}

#[test]
fn a_writer_cache_of_two_loans_written_round_robin_on_five_never_loses_or_corrupts_a_loan() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let runtime = runtime();
    let mut book = RoundRobin::open(&path);
    runtime.block_on(async {
        let mut first_payments = Vec::new();
        for round in 0..4u8 {
            let r = i64::from(round);
            for i in 0..RoundRobin::LOANS {
                let k = i64::try_from(i).expect("small");
                book.disburse(i, 100_000 + 1_000 * k + r).await;
                book.check(&format!("round {round}, disbursement on loan {i}"))
                    .await;
                book.fee(i, 500 + k).await;
                book.check(&format!("round {round}, fee on loan {i}")).await;
            }
            book.accrue_all(round, |i| 100 + i64::try_from(i).expect("small"))
                .await;
            book.check(&format!("round {round}, accrual")).await;
            for i in 0..RoundRobin::LOANS {
                let k = i64::try_from(i).expect("small");
                // Every fourth payment overpays, so suspense moves too.
                let amount = if (k + r) % 4 == 0 {
                    3 * book.owed[i][0]
                } else {
                    40_000 + 7 * k + r
                };
                let (entry, parts) = book.pay(i, amount).await;
                if round == 0 {
                    first_payments.push((i, entry, parts, amount));
                }
                book.check(&format!("round {round}, payment on loan {i}"))
                    .await;
            }
        }
        // Reversing the first round's payments reaches back into loans long evicted.
        for (i, entry, parts, amount) in first_payments {
            book.reverse_payment(i, entry, parts, amount).await;
            book.check(&format!("reversal of loan {i}'s first payment"))
                .await;
        }
        assert!(
            book.evicted_seen,
            "five loans through a two-loan cache evict some of them"
        );
        let proof = book
            .store
            .reconcile(book.tenant, None)
            .await
            .expect("reconciliation runs");
        assert!(proof.ok(), "reconciliation fails: {:?}", proof.checks);
    });
    book.store.shutdown();
    assert_hpts_verify_passes(&path);
}
