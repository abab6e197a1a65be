//! Ledger invariants under random histories, driven through the real store (writer thread, group
//! commit, a database file) without HTTP. Each case opens a fresh database, applies up to 40
//! random writes of every type — disbursements, fees, accrual batches, payments (recoveries on a
//! charged-off loan), reversals, settlements, payment returns, fee waivers, charge-offs and
//! manual adjustments — over 1–4 loans (business refusals such as a blocked reversal are allowed
//! outcomes), then checks with a separate read-only connection that:
//!
//! - every journal entry has at least two lines and balances per currency;
//! - every loan's materialised balances are non-negative and equal the sum of its lines;
//! - every materialised GL balance equals the sum of its lines;
//! - every payment's stored allocation sums to its amount and matches its credit lines;
//!
//! and finally that reversing everything still standing returns every loan balance and every GL
//! account to zero.

mod common;

use common::store_history::{
    Book, Posted, accrual, adjustment, balance_parts, charge_off, date, fee_waiver,
    loan_figures_from_journal, payment_return, reversal, route, settings, settlement,
};

use std::collections::BTreeMap;

use hpts::clock::Sources;
use hpts::ledger::LedgerError;
use hpts::ledger::commands::{
    Command, Disbursement, DisbursementMethod, Fee, FeeType, Payment, PaymentMethod,
};
use hpts::ledger::ids::EntryId;
use hpts::ledger::money::Money;
use hpts::store::{Store, StoreError, WriteOutcome, WriteRequest};
use proptest::prelude::*;
use proptest::sample::Index;
use rusqlite::{Connection, OpenFlags};
use serde_json::Value;

/// One random step of a history. Loans are indexes into the case's 1–4 loans.
#[derive(Debug, Clone)]
enum Op {
    Disburse {
        loan: usize,
        amount: i64,
    },
    Fee {
        loan: usize,
        amount: i64,
    },
    /// `(loan, interest)` for every loan in the batch; `day` picks one of three accrual dates so
    /// that repeats (`already_accrued`) happen.
    Accrue {
        loans: Vec<(usize, i64)>,
        day: u8,
    },
    Pay {
        loan: usize,
        amount: i64,
    },
    /// Reverses one of the entries posted so far (possibly a reversal, or one already reversed).
    Reverse {
        pick: Index,
    },
    /// Settles one of the disbursements posted so far.
    Settle {
        pick: Index,
    },
    /// Returns one of the payments (or recoveries) posted so far, maybe with an NSF fee.
    Return {
        pick: Index,
        nsf_fee: Option<i64>,
    },
    /// Waives (part of) one of the fees posted so far.
    Waive {
        pick: Index,
        amount: Option<i64>,
    },
    ChargeOff {
        loan: usize,
    },
    /// A manual adjustment between two of the accounts an accountant may adjust.
    Adjust {
        accounts: (Index, Index),
        amount: i64,
    },
}

/// An amount below `small`, or — in the large-amounts histories — one near `i64::MAX`, half of
/// it or a third of it, so that totals meet the edge of the exact range.
fn amount(small: i64, large: bool) -> BoxedStrategy<i64> {
    if !large {
        return (1i64..small).boxed();
    }
    prop_oneof![
        2 => 1i64..small,
        1 => (i64::MAX - 1_000)..=i64::MAX,
        1 => (i64::MAX / 2 - 1_000)..(i64::MAX / 2 + 1_000),
        1 => (i64::MAX / 3 - 1_000)..(i64::MAX / 3 + 1_000),
    ]
    .boxed()
}

fn op(loans: usize, large: bool) -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0..loans, amount(1_000_000, large)).prop_map(|(loan, amount)| Op::Disburse { loan, amount }),
        2 => (0..loans, amount(50_000, large)).prop_map(|(loan, amount)| Op::Fee { loan, amount }),
        2 => (proptest::collection::vec((any::<bool>(), amount(20_000, large)), loans), 0u8..3).prop_map(|(picks, day)| {
            let mut chosen: Vec<(usize, i64)> =
                picks.iter().enumerate().filter(|(_, (take, _))| *take).map(|(i, (_, interest))| (i, *interest)).collect();
            if chosen.is_empty() {
                chosen.push((0, picks[0].1));
            }
            Op::Accrue { loans: chosen, day }
        }),
        3 => (0..loans, amount(1_200_000, large)).prop_map(|(loan, amount)| Op::Pay { loan, amount }),
        2 => any::<Index>().prop_map(|pick| Op::Reverse { pick }),
        2 => any::<Index>().prop_map(|pick| Op::Settle { pick }),
        2 => (any::<Index>(), proptest::option::of(amount(5_000, large))).prop_map(|(pick, nsf_fee)| Op::Return { pick, nsf_fee }),
        2 => (any::<Index>(), proptest::option::of(amount(30_000, large))).prop_map(|(pick, amount)| Op::Waive { pick, amount }),
        1 => (0..loans).prop_map(|loan| Op::ChargeOff { loan }),
        1 => (any::<Index>(), any::<Index>(), amount(100_000, large)).prop_map(|(a, b, amount)| Op::Adjust { accounts: (a, b), amount }),
    ]
}

fn history(large: bool) -> impl Strategy<Value = (usize, Vec<Op>)> {
    (1usize..=4).prop_flat_map(move |loans| {
        (
            Just(loans),
            proptest::collection::vec(op(loans, large), 1..=40),
        )
    })
}

fn request(book: &Book, n: usize, command: Command) -> WriteRequest {
    WriteRequest {
        tenant: book.tenant,
        actor: Some("proptest".into()),
        route: route(&command),
        idempotency_key: format!("op-{n:06}"),
        payload: format!("{{\"op\":{n}}}"),
        metadata: None,
        traceparent: None,
        command,
    }
}

/// Turns an op into a command; accrual principals are read from the current balance.
async fn command(store: &Store, book: &Book, op: &Op, posted: &Posted) -> Option<Command> {
    let money = Money::from_minor;
    Some(match op {
        Op::Disburse { loan, amount } => {
            let (loan_id, borrower_id, currency) = book.loans[*loan];
            Command::Disburse(Disbursement {
                loan_id,
                borrower_id,
                amount: money(*amount),
                currency,
                effective_at: date(0),
                method: DisbursementMethod::Ach,
                destination_ref: None,
            })
        }
        Op::Fee { loan, amount } => {
            let (loan_id, _, currency) = book.loans[*loan];
            Command::AssessFee(Fee {
                loan_id,
                fee_type: FeeType::Late,
                amount: money(*amount),
                currency,
                effective_at: date(1),
            })
        }
        Op::Accrue { loans, day } => accrual(store, book, loans, *day).await,
        Op::Pay { loan, amount } => {
            let (loan_id, borrower_id, currency) = book.loans[*loan];
            Command::Pay(Payment {
                loan_id,
                borrower_id,
                amount: money(*amount),
                currency,
                effective_at: date(2),
                source_method: PaymentMethod::Wire,
                external_ref: None,
            })
        }
        Op::Reverse { pick } => {
            if posted.entries.is_empty() {
                return None;
            }
            reversal(*pick.get(&posted.entries))
        }
        lifecycle => return lifecycle_command(book, lifecycle, posted),
    })
}

/// The lifecycle writes of a history: each names an event posted earlier (none yet: no write).
fn lifecycle_command(book: &Book, op: &Op, posted: &Posted) -> Option<Command> {
    let pick = Posted::pick;
    Some(match op {
        Op::Settle { pick: i } => settlement(pick(&posted.disbursements, *i)?, date(3)),
        Op::Return { pick: i, nsf_fee } => {
            payment_return(pick(&posted.payments, *i)?, *nsf_fee, date(3))
        }
        Op::Waive { pick: i, amount } => fee_waiver(pick(&posted.fees, *i)?, *amount, date(3)),
        Op::ChargeOff { loan } => charge_off(book.loans[*loan].0, date(3)),
        Op::Adjust {
            accounts: (a, b),
            amount,
        } => adjustment((*a, *b), *amount, book.loans[0].2, date(3)),
        Op::Disburse { .. }
        | Op::Fee { .. }
        | Op::Accrue { .. }
        | Op::Pay { .. }
        | Op::Reverse { .. } => return None,
    })
}

/// Refusals a random history may legitimately meet.
fn is_business_refusal(e: &StoreError) -> bool {
    match e {
        StoreError::Ledger(
            LedgerError::LoanNotFound(_)
            | LedgerError::ReversalBlocked
            | LedgerError::AlreadyReversed
            | LedgerError::CannotReverseReversal
            | LedgerError::OutOfRange { .. }
            | LedgerError::AlreadySettled
            | LedgerError::AlreadyReturned
            | LedgerError::AlreadyChargedOff
            | LedgerError::EventReversed
            | LedgerError::EventReturned
            | LedgerError::WaiverExceedsOutstanding { .. }
            | LedgerError::NothingToChargeOff
            | LedgerError::LoanChargedOff { .. },
        ) => true,
        // The principal is read right before submitting, so only these item problems can occur.
        StoreError::Ledger(LedgerError::BatchRejected(problems)) => problems.iter().all(|p| {
            matches!(
                p.code,
                "loan_not_found"
                    | "already_accrued"
                    | "mixed_currency_batch"
                    | "amount_out_of_range"
                    | "loan_charged_off"
            )
        }),
        _ => false,
    }
}

fn minor(v: &Value) -> i64 {
    v.as_str()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("not a money string: {v}"))
}

/// `[fees, interest, principal, suspense]` of a payment receipt.
fn allocation_parts(receipt: &Value) -> [i64; 4] {
    let a = &receipt["allocation"];
    [
        minor(&a["fees_minor"]),
        minor(&a["interest_minor"]),
        minor(&a["principal_minor"]),
        minor(&a["suspense_minor"]),
    ]
}

/// Checks a payment's allocation against what the loan owed just before it (a recovery on a
/// charged-off loan owes nothing: its allocation is suspense only, beside `recovery_minor`).
fn check_allocation(receipt: &Value, amount: i64, owed: [i64; 3]) {
    let parts = allocation_parts(receipt);
    let recovered = minor(&receipt["recovery_minor"]);
    assert!(parts.iter().all(|p| *p >= 0), "negative part: {receipt}");
    assert!(recovered >= 0, "negative recovery: {receipt}");
    assert_eq!(
        parts.iter().sum::<i64>() + recovered,
        amount,
        "allocation does not sum to the payment: {receipt}"
    );
    for (part, owed) in parts.iter().zip(owed) {
        assert!(*part <= owed, "allocated {part} of {owed} owed: {receipt}");
    }
    // A later part (interest, principal, suspense) is used only once every earlier one is paid.
    for (i, part) in parts.iter().enumerate().skip(1) {
        if *part > 0 {
            assert_eq!(parts[..i], owed[..i], "waterfall order broken: {receipt}");
        }
    }
}

/// Submits one command; returns the committed receipt, or `None` for an allowed refusal.
async fn submit(store: &Store, book: &Book, n: usize, command: Command) -> Option<Value> {
    let label = format!("op {n}: {command:?}");
    match store.write(request(book, n, command)).await {
        Ok(WriteOutcome::Created(body)) => {
            Some(serde_json::from_slice(&body).expect("receipt is JSON"))
        }
        Ok(WriteOutcome::Replayed(_)) => panic!("{label}: replayed although every key is new"),
        Err(e) if is_business_refusal(&e) => None,
        Err(e) => panic!("{label}: unexpected refusal {e:?}"),
    }
}

/// Applies a random history; returns how many writes were submitted.
async fn apply(store: &Store, book: &Book, ops: &[Op]) -> usize {
    let mut posted = Posted::default();
    for (n, op) in ops.iter().enumerate() {
        let Some(cmd) = command(store, book, op, &posted).await else {
            continue;
        };
        let owed_before = match op {
            Op::Pay { loan, .. } => store
                .loan_balance(book.tenant, book.loans[*loan].0, None)
                .await
                .expect("read")
                .map(|v| {
                    [
                        v.balances.fees.minor(),
                        v.balances.interest.minor(),
                        v.balances.principal.minor(),
                    ]
                }),
            _ => None,
        };
        let Some(receipt) = submit(store, book, n, cmd).await else {
            continue;
        };
        if let (Op::Pay { amount, .. }, Some(owed)) = (op, owed_before) {
            check_allocation(&receipt, *amount, owed);
        }
        assert!(
            receipt["journal_entry_id"]
                .as_str()
                .and_then(EntryId::parse)
                .is_some(),
            "op {n}: no journal_entry_id in {receipt}"
        );
        posted.record(&receipt);
        for (loan_id, _, _) in &book.loans {
            if let Some(v) = store
                .loan_balance(book.tenant, *loan_id, None)
                .await
                .expect("read")
            {
                for m in balance_parts(&v) {
                    assert!(
                        !m.is_negative(),
                        "after op {n} ({op:?}) loan {loan_id} has a negative balance: {v:?}"
                    );
                }
            }
        }
    }
    ops.len()
}

/// Reverses every entry still standing, latest first, in passes; returns whether everything
/// was reversed. Whatever stands on an entry (its settlement, return, waivers, a charge-off's
/// recoveries) is later than it, so latest first removes it before. A reversal blocked in one
/// pass (a fee or disbursement whose amount an earlier, still standing payment consumed)
/// succeeds in a later one. One history cannot be unwound at all, and rightly: a payment is
/// returned, which puts the interest it paid back on the loan, and then the accrual that interest
/// came from is reversed; the return can no longer be reversed (interest would go negative) nor
/// the payment (it was returned). Every entry left standing must be refused for exactly such a
/// reason, and the ledger must still hold every invariant.
async fn unwind(store: &Store, book: &Book, db: &Connection, mut n: usize) -> bool {
    for _pass in 0..4 {
        for entry in standing_entries(db) {
            n += 1;
            submit(store, book, n, reversal(entry)).await;
        }
    }
    let left = standing_entries(db);
    for entry in &left {
        n += 1;
        let refused = store.write(request(book, n, reversal(*entry))).await;
        assert!(
            matches!(
                refused,
                Err(StoreError::Ledger(
                    LedgerError::ReversalBlocked | LedgerError::EventReturned
                ))
            ),
            "entry {entry} still stands after four passes and its reversal answers {refused:?}"
        );
    }
    left.is_empty()
}

/// Non-reversal entries without a reversal, latest first.
fn standing_entries(db: &Connection) -> Vec<EntryId> {
    let mut stmt = db
        .prepare(
            "SELECT entry_id FROM journal_entries e WHERE event_type != 'reversal' \
             AND NOT EXISTS (SELECT 1 FROM journal_entries r WHERE r.reverses_entry_id = e.entry_id) \
             ORDER BY entry_seq DESC",
        )
        .expect("prepare");
    stmt.query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|id| EntryId::parse(&id.expect("row")).expect("entry id"))
        .collect()
}

fn strings(db: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = db.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    stmt.query_map([], |r| r.get::<_, String>(0))
        .expect("query")
        .map(|r| r.expect("row"))
        .collect()
}

/// Every entry has ≥ 2 lines, its header's count, and Σ DR = Σ CR per currency.
fn assert_entries_balance(db: &Connection) {
    let unbalanced = strings(
        db,
        "SELECT entry_id || ' ' || currency FROM journal_lines GROUP BY entry_id, currency \
         HAVING sum(CASE direction WHEN 'DR' THEN amount_minor ELSE 0 END) \
             != sum(CASE direction WHEN 'CR' THEN amount_minor ELSE 0 END)",
    );
    assert_eq!(unbalanced, Vec::<String>::new(), "unbalanced entries");
    let short = strings(
        db,
        "SELECT e.entry_id FROM journal_entries e \
         WHERE (SELECT count(*) FROM journal_lines l WHERE l.entry_id = e.entry_id) NOT IN (e.line_count) \
            OR e.line_count < 2",
    );
    assert_eq!(short, Vec::<String>::new(), "entries with missing lines");
    let orphans = strings(
        db,
        "SELECT l.entry_id FROM journal_lines l WHERE NOT EXISTS \
         (SELECT 1 FROM journal_entries e WHERE e.entry_id = l.entry_id)",
    );
    assert_eq!(orphans, Vec::<String>::new(), "lines without an entry");
}

/// The `loans` table: `[principal, interest, fees, suspense, disbursed, paid, charged_off,
/// recovered]` per loan.
fn materialised_loan_balances(db: &Connection) -> BTreeMap<String, [i64; 8]> {
    let mut stmt = db
        .prepare(
            "SELECT loan_id, principal_minor, interest_minor, fees_minor, suspense_minor, disbursed_total_minor, \
             paid_total_minor, charged_off_minor, recovered_minor FROM loans",
        )
        .expect("prepare");
    stmt.query_map([], |r| {
        let mut m = [0i64; 8];
        for (i, slot) in m.iter_mut().enumerate() {
            *slot = r.get(i + 1)?;
        }
        Ok((r.get(0)?, m))
    })
    .expect("query")
    .map(|r| r.expect("row"))
    .collect()
}

fn assert_loans_match_their_lines(db: &Connection) {
    let materialised = materialised_loan_balances(db);
    for (loan, balances) in &materialised {
        assert!(
            balances.iter().all(|m| *m >= 0),
            "loan {loan} has a negative balance: {balances:?}"
        );
    }
    let mut replayed = loan_figures_from_journal(db, None);
    for loan in materialised.keys() {
        replayed.entry(loan.clone()).or_default();
    }
    assert_eq!(
        materialised, replayed,
        "materialised loan balances differ from their lines"
    );
}

/// `(account, currency, layer) -> (dr, cr)`.
type GlBalances = BTreeMap<(String, String, String), (i64, i64)>;

fn gl(db: &Connection, sql: &str) -> GlBalances {
    let mut stmt = db.prepare(sql).expect("prepare");
    stmt.query_map([], |r| {
        Ok(((r.get(0)?, r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?)))
    })
    .expect("query")
    .map(|r| r.expect("row"))
    .collect()
}

fn assert_gl_matches_its_lines(db: &Connection) -> GlBalances {
    let materialised = gl(
        db,
        "SELECT account_code, currency, layer, dr_minor, cr_minor FROM account_balances",
    );
    let replayed = gl(
        db,
        "SELECT account_code, currency, layer, \
         sum(CASE direction WHEN 'DR' THEN amount_minor ELSE 0 END), \
         sum(CASE direction WHEN 'CR' THEN amount_minor ELSE 0 END) \
         FROM journal_lines GROUP BY account_code, currency, layer",
    );
    assert_eq!(
        materialised, replayed,
        "materialised GL balances differ from the lines"
    );
    materialised
}

/// Every stored payment receipt: its allocation sums to the entry's cash debit and each non-zero
/// part is exactly one credit line on its account.
fn assert_payment_receipts_match_their_lines(db: &Connection) {
    let receipts = strings(
        db,
        "SELECT CAST(response_body AS TEXT) FROM idempotency_keys WHERE route = 'POST /v1/payments'",
    );
    for text in receipts {
        let receipt: Value = serde_json::from_str(&text).expect("stored receipt");
        let entry = receipt["journal_entry_id"].as_str().expect("entry");
        let mut stmt = db
            .prepare("SELECT account_code, direction, amount_minor FROM journal_lines WHERE entry_id = ?1 ORDER BY sequence")
            .expect("prepare");
        let lines: Vec<(String, String, i64)> = stmt
            .query_map([entry], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
            .expect("query")
            .map(|r| r.expect("row"))
            .collect();
        let parts = allocation_parts(&receipt);
        let recovered = minor(&receipt["recovery_minor"]);
        let amount = parts.iter().sum::<i64>() + recovered;
        let mut expected = vec![("1000".to_owned(), "DR".to_owned(), amount)];
        for (account, part) in ["1300", "1200", "1100", "2100", "4200"]
            .into_iter()
            .zip(parts.into_iter().chain([recovered]))
        {
            if part > 0 {
                expected.push((account.to_owned(), "CR".to_owned(), part));
            }
        }
        let mut actual = lines;
        actual.sort();
        expected.sort();
        assert_eq!(
            actual, expected,
            "payment {entry}: lines differ from its allocation {receipt}"
        );
    }
}

/// No stored money value is anything but an INTEGER.
fn assert_money_is_integer(db: &Connection) {
    let not_integer = strings(
        db,
        "SELECT 'journal_lines' FROM journal_lines WHERE typeof(amount_minor) != 'integer' \
         UNION ALL SELECT 'account_balances' FROM account_balances \
           WHERE typeof(dr_minor) != 'integer' OR typeof(cr_minor) != 'integer' \
         UNION ALL SELECT 'loans' FROM loans WHERE typeof(principal_minor) != 'integer' \
           OR typeof(interest_minor) != 'integer' OR typeof(fees_minor) != 'integer' \
           OR typeof(suspense_minor) != 'integer' OR typeof(disbursed_total_minor) != 'integer' \
           OR typeof(paid_total_minor) != 'integer' OR typeof(charged_off_minor) != 'integer' \
           OR typeof(recovered_minor) != 'integer' \
         UNION ALL SELECT 'accrual_lines' FROM accrual_lines WHERE typeof(interest_minor) != 'integer' \
           OR typeof(outstanding_principal_minor) != 'integer'",
    );
    assert_eq!(
        not_integer,
        Vec::<String>::new(),
        "non-integer money values"
    );
}

fn assert_invariants(db: &Connection) -> GlBalances {
    assert_money_is_integer(db);
    assert_entries_balance(db);
    assert_loans_match_their_lines(db);
    assert_payment_receipts_match_their_lines(db);
    assert_gl_matches_its_lines(db)
}

/// Runs a history, checks every invariant and that the store's own reconciliation holds; then,
/// with `unwind`, reverses everything and checks every balance is back to zero. (Histories with
/// amounts near `i64::MAX` are not unwound: a reversal that would push a total out of range is
/// rightly refused.)
fn run_history(loan_count: usize, ops: &[Op], unwind_to_zero: bool) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let store = Store::open(&settings(&path, 10_000), Sources::default()).expect("store opens");
    let book = Book::new(loan_count);
    let db = Connection::open_with_flags(&path, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("read connection");

    runtime.block_on(async {
        let submitted = apply(&store, &book, ops).await;
        assert_invariants(&db);
        let proof = store
            .reconcile(book.tenant, None)
            .await
            .expect("reconciliation runs");
        assert!(proof.ok(), "reconciliation fails: {:?}", proof.checks);
        if !unwind_to_zero {
            return;
        }

        let unwound = unwind(&store, &book, &db, submitted).await;
        let gl = assert_invariants(&db);
        let proof = store
            .reconcile(book.tenant, None)
            .await
            .expect("reconciliation runs");
        assert!(
            proof.ok(),
            "reconciliation fails after the unwind: {:?}",
            proof.checks
        );
        if !unwound {
            return;
        }
        for (loan, balances) in materialised_loan_balances(&db) {
            assert_eq!(balances, [0; 8], "loan {loan} is not back to zero");
        }
        for ((account, currency, layer), (dr, cr)) in gl {
            assert_eq!(
                dr, cr,
                "GL {account} {currency} {layer} does not net to zero"
            );
        }
    });
    drop(db);
    store.shutdown();
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn random_histories_keep_the_ledger_balanced_and_unwind_to_zero((loans, ops) in history(false)) {
        run_history(loans, &ops, true);
    }

    #[test]
    fn histories_with_amounts_near_the_integer_limit_keep_every_total_exact((loans, ops) in history(true)) {
        run_history(loans, &ops, false);
    }
}
