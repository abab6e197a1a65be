//! Pieces shared by the store-level property tests (`ledger_properties.rs`, `writer_state.rs`),
//! which drive random histories through the real `Store` without HTTP: the case's book of
//! loans, the store settings, the route of a command, dates, reversals and the lifecycle writes
//! (settlements, payment returns, fee waivers, charge-offs, manual adjustments) with the record
//! of posted events they name.

use std::path::Path;
use std::time::Duration;

use hpts::clock::parse_date;
use hpts::ledger::accounts::Direction;
use hpts::ledger::commands::{
    Adjustment, AdjustmentLine, ChargeOff, ChargeOffReason, Command, FeeWaiver, PaymentReturn,
    ReasonCode, ReturnReason, Reversal, Settlement,
};
use hpts::ledger::ids::{BorrowerId, EntryId, EventId, LoanId, TenantId};
use hpts::ledger::money::{Currency, Money};
use hpts::store::{LoanView, Store, StoreSettings, Synchronous, WriterConfig};
use proptest::sample::Index;
use serde_json::Value;
use uuid::Uuid;

/// The loans of a case: fixed ids, one borrower each; loan 2 is in EUR, the others in USD, so
/// per-currency balancing and mixed-currency batches are exercised.
pub struct Book {
    pub tenant: TenantId,
    pub loans: Vec<(LoanId, BorrowerId, Currency)>,
}

impl Book {
    pub fn new(count: usize) -> Book {
        let loans = (0..count)
            .map(|i| {
                let n = u128::try_from(i).expect("small");
                let currency = if i == 2 { "EUR" } else { "USD" };
                (
                    LoanId::from_uuid(Uuid::from_u128(
                        0x0190_0000_0000_7000_8000_0000_0000_1000 + n,
                    )),
                    BorrowerId::from_uuid(Uuid::from_u128(
                        0x0190_0000_0000_7000_8000_0000_0000_2000 + n,
                    )),
                    Currency::parse(currency).expect("currency"),
                )
            })
            .collect();
        Book {
            tenant: TenantId::from_uuid(Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0001)),
            loans,
        }
    }
}

/// A store on `path` with group commit and a writer cache of `cache_loans` loans.
pub fn settings(path: &Path, cache_loans: usize) -> StoreSettings {
    StoreSettings {
        path: path.to_path_buf(),
        synchronous: Synchronous::Normal,
        writer: WriterConfig {
            group_commit: true,
            max_batch: 64,
            max_batch_cost: 4096,
            cache_loans,
            queue_capacity: 1024,
            idempotency_retention: Duration::from_hours(24),
            purge_interval: Duration::from_hours(1),
            outbox_retention: hpts::store::outbox::OutboxRetention::default(),
        },
        read_pool_size: 2,
        heavy_reads_per_tenant: 1,
        replication: None,
    }
}

/// The route a command is posted on (part of the idempotency fingerprint).
pub fn route(command: &Command) -> &'static str {
    match command {
        Command::Disburse(_) => "POST /v1/disbursements",
        Command::Pay(_) => "POST /v1/payments",
        Command::AssessFee(_) => "POST /v1/fees",
        Command::Accrue(_) => "POST /v1/accruals/batch",
        Command::Reverse(_) => "POST /v1/reversals",
        Command::Settle(_) => "POST /v1/disbursement-settlements",
        Command::ReturnPayment(_) => "POST /v1/payment-returns",
        Command::WaiveFee(_) => "POST /v1/fee-waivers",
        Command::ChargeOff(_) => "POST /v1/charge-offs",
        Command::Adjust(_) => "POST /v1/adjustments",
        Command::ClosePeriod(_) => "POST /v1/period-closes",
    }
}

/// Day `day` of a case's calendar (2026-11-10 onwards).
pub fn date(day: u8) -> time::Date {
    parse_date(&format!("2026-11-{:02}", 10 + day)).expect("date")
}

/// A reversal of `entry`, dated like its original.
pub fn reversal(entry: EntryId) -> Command {
    Command::Reverse(Reversal {
        reverses_entry_id: entry,
        reason_code: ReasonCode::ErrorCorrection,
        reason_description: None,
        effective_at: None,
    })
}

/// What a history has posted so far: every entry, and the business events later writes may
/// name (disbursements, payments and recoveries, fees), taken from the receipts.
#[derive(Default)]
pub struct Posted {
    pub entries: Vec<EntryId>,
    pub disbursements: Vec<EventId>,
    pub payments: Vec<EventId>,
    pub fees: Vec<EventId>,
}

impl Posted {
    /// Records a committed write's receipt.
    pub fn record(&mut self, receipt: &Value) {
        let id = |field: &str| receipt[field].as_str().and_then(EventId::parse);
        if let Some(e) = receipt["journal_entry_id"]
            .as_str()
            .and_then(EntryId::parse)
        {
            self.entries.push(e);
        }
        if let Some(e) =
            id("disbursement_event_id").filter(|_| receipt.get("settlement_event_id").is_none())
        {
            self.disbursements.push(e);
        }
        if let Some(e) = id("payment_event_id").filter(|_| receipt.get("return_event_id").is_none())
        {
            self.payments.push(e);
        }
        if let Some(e) = id("fee_event_id").filter(|_| receipt.get("waiver_event_id").is_none()) {
            self.fees.push(e);
        }
    }

    /// One of `from` (none posted yet: `None`).
    pub fn pick(from: &[EventId], i: Index) -> Option<EventId> {
        (!from.is_empty()).then(|| *i.get(from))
    }
}

/// A settlement of `disbursement` on `date`.
pub fn settlement(disbursement: EventId, date: time::Date) -> Command {
    Command::Settle(Settlement {
        disbursement_event_id: disbursement,
        effective_at: date,
        bank_account_ref: None,
    })
}

/// An NSF return (code R01) of `payment` on `date`, with a returned-payment fee of `nsf_fee`.
pub fn payment_return(payment: EventId, nsf_fee: Option<i64>, date: time::Date) -> Command {
    Command::ReturnPayment(PaymentReturn {
        payment_event_id: payment,
        return_reason: ReturnReason::InsufficientFunds,
        return_code: Some("R01".into()),
        effective_at: date,
        nsf_fee: nsf_fee.map(Money::from_minor),
    })
}

/// A goodwill waiver of `amount` (all that is waivable without one) of `fee` on `date`.
pub fn fee_waiver(fee: EventId, amount: Option<i64>, date: time::Date) -> Command {
    Command::WaiveFee(FeeWaiver {
        fee_event_id: fee,
        amount: amount.map(Money::from_minor),
        reason: "goodwill".into(),
        effective_at: date,
    })
}

/// A charge-off (for delinquency) of `loan` on `date`.
pub fn charge_off(loan: LoanId, date: time::Date) -> Command {
    Command::ChargeOff(ChargeOff {
        loan_id: loan,
        effective_at: date,
        reason_code: ChargeOffReason::Delinquency,
    })
}

/// The accounts a manual adjustment may touch (every chart account but the loan controls).
pub const ADJUSTABLE: [&str; 6] = ["1000", "2000", "4000", "4100", "4200", "5000"];

/// A manual adjustment (a bank charge) of `amount` in `currency` on `date`: Dr one of
/// [`ADJUSTABLE`], Cr another (or the same).
pub fn adjustment(
    (debit, credit): (Index, Index),
    amount: i64,
    currency: Currency,
    date: time::Date,
) -> Command {
    let line = |account: &str, direction| AdjustmentLine {
        account_code: account.to_owned(),
        direction,
        amount: Money::from_minor(amount),
        currency,
    };
    Command::Adjust(Adjustment {
        effective_at: date,
        description: "bank charge".into(),
        lines: vec![
            line(debit.get::<&str>(&ADJUSTABLE), Direction::Dr),
            line(credit.get::<&str>(&ADJUSTABLE), Direction::Cr),
        ],
    })
}

/// What a loan owes now, as the store reads it.
pub async fn principal_now(store: &Store, book: &Book, loan: usize) -> Money {
    store
        .loan_balance(book.tenant, book.loans[loan].0, None)
        .await
        .expect("balance read")
        .map_or(Money::ZERO, |v| v.balances.principal)
}

/// Every loan's figures — `[principal, interest, fees, suspense, disbursed, paid, charged_off,
/// recovered]` — summed from its journal lines by SQL, independently of the service's own
/// projection: a line counts by its account, except that a settlement's lines (and their
/// reversal's) move no loan figure, and a charge-off's credits to 1100/1200/1300 (and their
/// reversal's debits) also count as written off. `tenant` limits it to one tenant.
pub fn loan_figures_from_journal(
    db: &rusqlite::Connection,
    tenant: Option<&str>,
) -> std::collections::BTreeMap<String, [i64; 8]> {
    let mut stmt = db
        .prepare(
            "SELECT l.loan_id, l.account_code, coalesce(o.event_type, e.event_type), \
                    sum(CASE l.direction WHEN 'DR' THEN l.amount_minor ELSE -l.amount_minor END) \
             FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
             LEFT JOIN journal_entries o ON o.entry_id = e.reverses_entry_id \
             WHERE l.loan_id IS NOT NULL AND (?1 IS NULL OR l.tenant_id = ?1) \
             GROUP BY 1, 2, 3",
        )
        .expect("prepare");
    let rows = stmt
        .query_map([tenant], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, i64>(3)?,
            ))
        })
        .expect("query");
    let mut out: std::collections::BTreeMap<String, [i64; 8]> = std::collections::BTreeMap::new();
    for row in rows {
        let (loan, account, kind, dr_minus_cr) = row.expect("row");
        let m = out.entry(loan).or_default();
        if kind == "disbursement_settled" {
            continue;
        }
        match account.as_str() {
            "1100" => m[0] += dr_minus_cr,
            "1200" => m[1] += dr_minus_cr,
            "1300" => m[2] += dr_minus_cr,
            "2100" => m[3] -= dr_minus_cr,
            "2000" => m[4] -= dr_minus_cr,
            "1000" => m[5] += dr_minus_cr,
            "4200" => m[7] -= dr_minus_cr,
            "4000" | "4100" | "5000" => {}
            other => panic!("unexpected account {other} on a loan line"),
        }
        if kind == "chargeoff" && matches!(account.as_str(), "1100" | "1200" | "1300") {
            m[6] -= dr_minus_cr;
        }
    }
    out
}

/// An accrual batch over `(loan, interest)` of the book on day `day`, each loan's outstanding
/// principal read from the store right before.
pub async fn accrual(store: &Store, book: &Book, loans: &[(usize, i64)], day: u8) -> Command {
    let mut items = Vec::with_capacity(loans.len());
    for (loan, interest) in loans {
        items.push(hpts::ledger::commands::AccrualItem {
            loan_id: book.loans[*loan].0,
            outstanding_principal: principal_now(store, book, *loan).await,
            interest: Money::from_minor(*interest),
            annual_rate_bps: None,
        });
    }
    Command::Accrue(hpts::ledger::commands::AccrualBatch {
        program_id: hpts::ledger::ids::ProgramId::from_uuid(Uuid::from_u128(7)),
        accrual_date: date(day),
        convention: hpts::ledger::accrual::DayCount::Act365,
        loans: items,
    })
}

/// A loan's balances as the store reads them: principal, interest, fees, suspense, disbursed,
/// paid, charged off, recovered.
pub fn balance_parts(v: &LoanView) -> [Money; 8] {
    v.balances.minor_parts().map(Money::from_minor)
}
