//! Executes ledger commands inside the writer's current savepoint: reads the loan state the
//! posting rules need, asks `ledger` for the balanced entry, and inserts event, lines, header,
//! materialised balances and hash-chain link. Called only from [`super::writer`].

use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};

use rusqlite::{Connection, OptionalExtension, params};
use time::Date;

use crate::clock::{Sources, format_date};
use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction, Layer};
use crate::ledger::accrual::daily_interest;
use crate::ledger::allocation::{ALLOCATION_POLICY_VERSION, allocate};
use crate::ledger::commands::{AccrualBatch, Disbursement, EventType, Fee, Payment, Reversal};
use crate::ledger::ids::{BorrowerId, EntryId, EventId, LoanId};
use crate::ledger::journal::{JournalEntry, JournalLine};
use crate::ledger::loan::LoanBalances;
use crate::ledger::money::{Currency, Money};
use crate::ledger::posting::{self, AccrualPosting};
use crate::ledger::receipts::{
    AccrualReceipt, DisbursementReceipt, FeeReceipt, PaymentReceipt, Receipt, ReversalReceipt,
};
use crate::store::StoreError;
use crate::store::chain::{self, ChainedEntry, ChainedLine};
use crate::store::error::ItemProblem;
use crate::store::outbox;

/// What every posting needs to know about the job it runs in.
pub(crate) struct Ctx<'a> {
    pub conn: &'a Connection,
    pub tenant: &'a str,
    pub actor: Option<&'a str>,
    pub posted_at: String,
    pub now_ms: i64,
    pub payload: &'a str,
    pub metadata: Option<&'a str>,
    pub sources: &'a Sources,
    /// Loans this job has already read or written, so no loan is loaded twice per job. It lives
    /// exactly as long as the job's savepoint: a rolled-back job takes its cache with it.
    pub loans: RefCell<HashMap<LoanId, LoanRow>>,
}

impl Ctx<'_> {
    fn new_event_id(&self) -> EventId {
        EventId::from_uuid(self.sources.ids.new_id())
    }

    fn new_entry_id(&self) -> EntryId {
        EntryId::from_uuid(self.sources.ids.new_id())
    }

    /// The loan as this job last saw it (read from the database once).
    fn loan(&self, loan_id: LoanId) -> Result<Option<LoanRow>, StoreError> {
        if let Some(row) = self.loans.borrow().get(&loan_id) {
            return Ok(Some(row.clone()));
        }
        let row = load_loan(self.conn, self.tenant, loan_id)?;
        if let Some(row) = &row {
            self.remember(loan_id, row.clone());
        }
        Ok(row)
    }

    /// Records the loan's state as this job just wrote it.
    fn remember(&self, loan_id: LoanId, row: LoanRow) {
        self.loans.borrow_mut().insert(loan_id, row);
    }
}

/// A loan as stored.
#[derive(Debug, Clone)]
pub(crate) struct LoanRow {
    pub borrower_id: BorrowerId,
    pub currency: Currency,
    /// Effective date of the disbursement that opened the loan (none on rows that predate it).
    pub opened_on: Option<Date>,
    pub balances: LoanBalances,
}

impl LoanRow {
    /// Refuses an entry on this loan dated before the loan opened.
    fn check_dated_after_opening(&self, loan_id: LoanId, date: Date) -> Result<(), LedgerError> {
        crate::ledger::loan::check_not_before_opening(loan_id, self.opened_on, date)
    }
}

/// A balance or total would leave the exact `i64` range. The request field is filled in by the
/// writer, which knows which command this is.
pub(crate) fn out_of_range(detail: String) -> StoreError {
    StoreError::AmountOutOfRange {
        field: String::new(),
        detail,
    }
}

/// Creates the tenant and copies the chart of accounts on its first write.
pub(crate) fn ensure_tenant(ctx: &Ctx<'_>) -> Result<(), StoreError> {
    let known = ctx
        .conn
        .prepare_cached("SELECT 1 FROM tenants WHERE tenant_id = ?1")?
        .exists(params![ctx.tenant])?;
    if !known {
        ctx.conn
            .prepare_cached("INSERT INTO tenants (tenant_id, created_at) VALUES (?1, ?2)")?
            .execute(params![ctx.tenant, ctx.posted_at])?;
        ctx.conn
            .prepare_cached(
                "INSERT INTO accounts (tenant_id, code, name, normal_side) \
                 SELECT ?1, code, name, normal_side FROM account_templates",
            )?
            .execute(params![ctx.tenant])?;
    }
    Ok(())
}

fn corrupt(what: &str) -> StoreError {
    StoreError::Database(format!("stored row is not valid: {what}"))
}

pub(crate) fn load_loan(
    conn: &Connection,
    tenant: &str,
    loan_id: LoanId,
) -> Result<Option<LoanRow>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT borrower_id, currency, principal_minor, interest_minor, fees_minor, suspense_minor, \
             disbursed_total_minor, paid_total_minor, opened_on FROM loans WHERE tenant_id = ?1 AND loan_id = ?2",
        )?
        .query_row(params![tenant, loan_id.to_string()], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                [r.get(2)?, r.get(3)?, r.get(4)?, r.get(5)?, r.get(6)?, r.get::<_, i64>(7)?],
                r.get::<_, Option<String>>(8)?,
            ))
        })
        .optional()?;
    let Some((borrower, currency, m, opened_on)) = row else {
        return Ok(None);
    };
    Ok(Some(LoanRow {
        borrower_id: BorrowerId::parse(&borrower).ok_or_else(|| corrupt("loans.borrower_id"))?,
        currency: Currency::parse(&currency).ok_or_else(|| corrupt("loans.currency"))?,
        opened_on: opened_on
            .map(|d| crate::clock::parse_date(&d).ok_or_else(|| corrupt("loans.opened_on")))
            .transpose()?,
        balances: LoanBalances {
            principal: Money::from_minor(m[0]),
            interest: Money::from_minor(m[1]),
            fees: Money::from_minor(m[2]),
            suspense: Money::from_minor(m[3]),
            disbursed_total: Money::from_minor(m[4]),
            paid_total: Money::from_minor(m[5]),
        },
    }))
}

/// One business event and its journal entry, recorded together.
struct NewPosting<'a> {
    event_type: EventType,
    loan_id: Option<LoanId>,
    external_ref: Option<&'a str>,
    allocation_policy: Option<&'a str>,
    effective_at: Date,
    /// The original business event, for a reversal; the new event itself otherwise.
    correlation_id: Option<EventId>,
    reverses: Option<EntryId>,
    description: String,
}

impl NewPosting<'_> {
    /// A posting about one loan with nothing optional set.
    fn for_loan(
        event_type: EventType,
        loan_id: Option<LoanId>,
        effective_at: Date,
        description: String,
    ) -> Self {
        NewPosting {
            event_type,
            loan_id,
            external_ref: None,
            allocation_policy: None,
            effective_at,
            correlation_id: None,
            reverses: None,
            description,
        }
    }
}

/// Inserts the business event and posts its entry; returns (event id, entry id).
fn record(
    ctx: &Ctx<'_>,
    p: &NewPosting<'_>,
    entry: &JournalEntry,
) -> Result<(EventId, EntryId), StoreError> {
    let event_id = ctx.new_event_id();
    insert_event(ctx, event_id, p)?;
    let header = NewEntry {
        event_id,
        event_type: p.event_type,
        effective_at: p.effective_at,
        correlation_id: p.correlation_id.unwrap_or(event_id),
        reverses: p.reverses,
        description: p.description.clone(),
    };
    Ok((event_id, post_entry(ctx, &header, entry)?))
}

fn insert_event(ctx: &Ctx<'_>, event_id: EventId, e: &NewPosting<'_>) -> Result<(), StoreError> {
    ctx.conn
        .prepare_cached(
            "INSERT INTO events (event_id, tenant_id, event_type, loan_id, payload, metadata, external_ref, \
             allocation_policy, recorded_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
        )?
        .execute(params![
            event_id.to_string(),
            ctx.tenant,
            e.event_type.as_str(),
            e.loan_id.map(|l| l.to_string()),
            ctx.payload,
            ctx.metadata,
            e.external_ref,
            e.allocation_policy,
            ctx.posted_at,
        ])?;
    Ok(())
}

struct NewEntry {
    event_id: EventId,
    event_type: EventType,
    effective_at: Date,
    correlation_id: EventId,
    reverses: Option<EntryId>,
    description: String,
}

/// Inserts a balanced entry and moves every balance it touches. A loan balance that would go
/// negative is [`LedgerError::NegativeBalance`] (the caller decides what that means).
fn post_entry(ctx: &Ctx<'_>, h: &NewEntry, entry: &JournalEntry) -> Result<EntryId, StoreError> {
    let entry_id = ctx.new_entry_id();
    let entry_seq = insert_entry(ctx, h, entry_id, entry)?;
    outbox::enqueue(
        ctx.conn,
        ctx.tenant,
        &entry_id.to_string(),
        h.event_type.as_str(),
        &ctx.posted_at,
        &h.correlation_id.to_string(),
        ctx.now_ms,
    )?;
    update_gl_balances(ctx, entry)?;
    update_loan_balances(ctx, h, entry, entry_seq)?;
    Ok(entry_id)
}

/// Lines first (the header's trigger checks the finished set balances), then the header with
/// its hash-chain link. Returns the entry's posting sequence number.
fn insert_entry(
    ctx: &Ctx<'_>,
    h: &NewEntry,
    entry_id: EntryId,
    entry: &JournalEntry,
) -> Result<i64, StoreError> {
    let conn = ctx.conn;
    let entry_id_s = entry_id.to_string();
    let event_id_s = h.event_id.to_string();
    let correlation_s = h.correlation_id.to_string();
    let reverses_s = h.reverses.map(|r| r.to_string());
    let effective = format_date(h.effective_at);
    let texts: Vec<(Option<String>, Option<String>)> = entry
        .lines()
        .iter()
        .map(|l| {
            (
                l.loan_id.map(|id| id.to_string()),
                l.borrower_id.map(|b| b.to_string()),
            )
        })
        .collect();
    let mut chained = Vec::with_capacity(entry.lines().len());
    let mut insert = conn.prepare_cached(
        "INSERT INTO journal_lines (entry_id, sequence, tenant_id, account_code, direction, amount_minor, \
         currency, layer, effective_at, loan_id, borrower_id, external_ref) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for (i, (line, (loan, borrower))) in entry.lines().iter().zip(&texts).enumerate() {
        let sequence = i64::try_from(i + 1).unwrap_or(i64::MAX);
        insert.execute(params![
            entry_id_s,
            sequence,
            ctx.tenant,
            line.account.code(),
            line.direction.as_str(),
            line.amount.minor(),
            line.currency.as_str(),
            line.layer.as_str(),
            effective,
            loan,
            borrower,
            line.external_ref,
        ])?;
        chained.push(ChainedLine {
            sequence,
            account_code: line.account.code(),
            direction: line.direction.as_str(),
            amount_minor: line.amount.minor(),
            currency: line.currency.as_str(),
            layer: line.layer.as_str(),
            loan_id: loan.as_deref(),
            borrower_id: borrower.as_deref(),
            external_ref: line.external_ref.as_deref(),
        });
    }
    let prev_hash: String = conn
        .prepare_cached(
            "SELECT hash FROM journal_entries WHERE tenant_id = ?1 ORDER BY entry_seq DESC LIMIT 1",
        )?
        .query_row(params![ctx.tenant], |r| r.get(0))
        .optional()?
        .unwrap_or_else(|| chain::GENESIS.to_owned());
    let hash = chain::entry_hash(
        &prev_hash,
        &ChainedEntry {
            entry_id: &entry_id_s,
            tenant_id: ctx.tenant,
            event_id: &event_id_s,
            event_type: h.event_type.as_str(),
            effective_at: &effective,
            posted_at: &ctx.posted_at,
            correlation_id: &correlation_s,
            reverses_entry_id: reverses_s.as_deref(),
            metadata: ctx.metadata,
        },
        &chained,
    );
    conn.prepare_cached(
        "INSERT INTO journal_entries (entry_id, tenant_id, event_id, event_type, effective_at, posted_at, \
         correlation_id, reverses_entry_id, description, actor, metadata, line_count, prev_hash, hash) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14)",
    )?
    .execute(params![
        entry_id_s,
        ctx.tenant,
        event_id_s,
        h.event_type.as_str(),
        effective,
        ctx.posted_at,
        correlation_s,
        reverses_s,
        h.description,
        ctx.actor,
        ctx.metadata,
        i64::try_from(entry.lines().len()).unwrap_or(i64::MAX),
        prev_hash,
        hash,
    ])?;
    Ok(conn.last_insert_rowid())
}

/// Materialised GL balances, one upsert per (account, currency, layer). New totals are computed
/// here with checked `i64` arithmetic and written as values — never as SQL `x + ?`, which `SQLite`
/// would turn into a REAL on overflow. Before any of them is written, the currency's
/// trial-balance total (the sum of every account's debits, which equals the sum of credits) must
/// stay in range too; since every account total and every loan balance is bounded by it, this
/// one check keeps all of them exact.
fn update_gl_balances(ctx: &Ctx<'_>, entry: &JournalEntry) -> Result<(), StoreError> {
    let mut gl: BTreeMap<(Account, Currency, &'static str), (Money, Money)> = BTreeMap::new();
    let mut debits: BTreeMap<Currency, Money> = BTreeMap::new();
    for line in entry.lines() {
        let slot = gl
            .entry((line.account, line.currency, line.layer.as_str()))
            .or_default();
        if line.direction == Direction::Dr {
            slot.0 = slot.0.checked_add(line.amount)?;
            let d = debits.entry(line.currency).or_default();
            *d = d.checked_add(line.amount)?;
        } else {
            slot.1 = slot.1.checked_add(line.amount)?;
        }
    }
    let mut totals = ctx.conn.prepare_cached(
        "SELECT coalesce(sum(dr_minor), 0) FROM account_balances WHERE tenant_id = ?1 AND currency = ?2",
    )?;
    for (currency, added) in &debits {
        let current: i64 =
            totals.query_row(params![ctx.tenant, currency.as_str()], |r| r.get(0))?;
        Money::from_minor(current)
            .checked_add(*added)
            .map_err(|_| {
                out_of_range(format!(
                    "the {currency} trial-balance total ({current}) cannot grow by {added}"
                ))
            })?;
    }
    let mut read = ctx.conn.prepare_cached(
        "SELECT dr_minor, cr_minor FROM account_balances \
         WHERE tenant_id = ?1 AND account_code = ?2 AND currency = ?3 AND layer = ?4",
    )?;
    let mut upsert = ctx.conn.prepare_cached(
        "INSERT INTO account_balances (tenant_id, account_code, currency, layer, dr_minor, cr_minor) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT (tenant_id, account_code, currency, layer) \
         DO UPDATE SET dr_minor = excluded.dr_minor, cr_minor = excluded.cr_minor",
    )?;
    for ((account, currency, layer), (dr, cr)) in gl {
        let (debited, credited): (i64, i64) = read
            .query_row(
                params![ctx.tenant, account.code(), currency.as_str(), layer],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .optional()?
            .unwrap_or((0, 0));
        let overflow = |_| {
            out_of_range(format!(
                "the total of account {} in {currency} would exceed {}",
                account.code(),
                i64::MAX
            ))
        };
        let dr_total = Money::from_minor(debited)
            .checked_add(dr)
            .map_err(overflow)?;
        let cr_total = Money::from_minor(credited)
            .checked_add(cr)
            .map_err(overflow)?;
        upsert.execute(params![
            ctx.tenant,
            account.code(),
            currency.as_str(),
            layer,
            dr_total.minor(),
            cr_total.minor()
        ])?;
    }
    Ok(())
}

/// Loan sub-ledger balances: replays this entry's lines onto each touched loan, refusing any
/// balance that would go negative, and links the entry to the loan for paging.
fn update_loan_balances(
    ctx: &Ctx<'_>,
    h: &NewEntry,
    entry: &JournalEntry,
    entry_seq: i64,
) -> Result<(), StoreError> {
    let mut by_loan: BTreeMap<LoanId, Vec<&JournalLine>> = BTreeMap::new();
    for line in entry.lines() {
        if let Some(loan) = line.loan_id {
            by_loan.entry(loan).or_default().push(line);
        }
    }
    let effective = format_date(h.effective_at);
    let mut update = ctx.conn.prepare_cached(
        "UPDATE loans SET principal_minor = ?3, interest_minor = ?4, fees_minor = ?5, suspense_minor = ?6, \
         disbursed_total_minor = ?7, paid_total_minor = ?8, last_activity_at = ?9 \
         WHERE tenant_id = ?1 AND loan_id = ?2",
    )?;
    let mut link = ctx.conn.prepare_cached(
        "INSERT INTO loan_entries (tenant_id, loan_id, entry_seq, event_type, effective_at) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?;
    for (loan_id, lines) in by_loan {
        let mut loan = ctx
            .loan(loan_id)?
            .ok_or(LedgerError::LoanNotFound(loan_id))?;
        for line in lines {
            loan.balances.apply(loan_id, line).map_err(|e| match e {
                LedgerError::Overflow => out_of_range(format!(
                    "a balance of loan {loan_id} would exceed {}",
                    i64::MAX
                )),
                other => other.into(),
            })?;
        }
        let b = loan.balances;
        let loan_s = loan_id.to_string();
        update.execute(params![
            ctx.tenant,
            loan_s,
            b.principal.minor(),
            b.interest.minor(),
            b.fees.minor(),
            b.suspense.minor(),
            b.disbursed_total.minor(),
            b.paid_total.minor(),
            ctx.posted_at,
        ])?;
        link.execute(params![
            ctx.tenant,
            loan_s,
            entry_seq,
            h.event_type.as_str(),
            effective
        ])?;
        ctx.remember(loan_id, loan);
    }
    Ok(())
}

/// Loads the loan a payment or fee names, checking it exists, matches, and opened on or before
/// the entry's date.
fn existing_loan(
    ctx: &Ctx<'_>,
    loan_id: LoanId,
    borrower: Option<BorrowerId>,
    currency: Currency,
    effective_at: Date,
) -> Result<LoanRow, StoreError> {
    let loan = ctx
        .loan(loan_id)?
        .ok_or(LedgerError::LoanNotFound(loan_id))?;
    if borrower.is_some_and(|b| b != loan.borrower_id) {
        return Err(LedgerError::BorrowerMismatch(loan_id).into());
    }
    if loan.currency != currency {
        return Err(LedgerError::CurrencyMismatch(loan_id).into());
    }
    loan.check_dated_after_opening(loan_id, effective_at)?;
    Ok(loan)
}

/// POST /v1/disbursements: opens the loan on first use, binding borrower and currency.
pub(crate) fn disburse(ctx: &Ctx<'_>, d: &Disbursement) -> Result<Receipt, StoreError> {
    if let Some(loan) = ctx.loan(d.loan_id)? {
        if loan.borrower_id != d.borrower_id {
            return Err(LedgerError::BorrowerMismatch(d.loan_id).into());
        }
        if loan.currency != d.currency {
            return Err(LedgerError::CurrencyMismatch(d.loan_id).into());
        }
        loan.check_dated_after_opening(d.loan_id, d.effective_at)?;
    } else {
        ctx.conn
            .prepare_cached(
                "INSERT INTO loans (tenant_id, loan_id, borrower_id, currency, opened_at, last_activity_at, opened_on) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?5, ?6)",
            )?
            .execute(params![
                ctx.tenant,
                d.loan_id.to_string(),
                d.borrower_id.to_string(),
                d.currency.as_str(),
                ctx.posted_at,
                format_date(d.effective_at),
            ])?;
        ctx.remember(
            d.loan_id,
            LoanRow {
                borrower_id: d.borrower_id,
                currency: d.currency,
                opened_on: Some(d.effective_at),
                balances: LoanBalances::default(),
            },
        );
    }
    let entry = posting::disbursement(d)?;
    let description = format!(
        "Disbursement of {} {} via {}",
        d.amount,
        d.currency,
        d.method.as_str()
    );
    let (event_id, journal_entry_id) = record(
        ctx,
        &NewPosting::for_loan(
            EventType::Disbursement,
            Some(d.loan_id),
            d.effective_at,
            description,
        ),
        &entry,
    )?;
    Ok(Receipt::Disbursement(DisbursementReceipt {
        disbursement_event_id: event_id,
        journal_entry_id,
        posted_at: ctx.posted_at.clone(),
    }))
}

/// POST /v1/payments: allocation waterfall over what the loan owes now.
pub(crate) fn pay(ctx: &Ctx<'_>, p: &Payment) -> Result<Receipt, StoreError> {
    let loan = existing_loan(
        ctx,
        p.loan_id,
        Some(p.borrower_id),
        p.currency,
        p.effective_at,
    )?;
    if let Some(external_ref) = &p.external_ref {
        let used = ctx
            .conn
            .prepare_cached("SELECT 1 FROM events WHERE tenant_id = ?1 AND external_ref = ?2")?
            .exists(params![ctx.tenant, external_ref])?;
        if used {
            return Err(StoreError::DuplicateExternalRef);
        }
    }
    let allocation = allocate(p.amount, &loan.balances);
    let entry = posting::payment(p, &allocation)?;
    let description = format!(
        "Payment of {} {} via {}",
        p.amount,
        p.currency,
        p.source_method.as_str()
    );
    let (event_id, journal_entry_id) = record(
        ctx,
        &NewPosting {
            external_ref: p.external_ref.as_deref(),
            allocation_policy: Some(ALLOCATION_POLICY_VERSION),
            ..NewPosting::for_loan(
                EventType::PaymentReceived,
                Some(p.loan_id),
                p.effective_at,
                description,
            )
        },
        &entry,
    )?;
    Ok(Receipt::Payment(PaymentReceipt {
        payment_event_id: event_id,
        journal_entry_id,
        allocation,
        posted_at: ctx.posted_at.clone(),
    }))
}

/// POST /v1/fees.
pub(crate) fn assess_fee(ctx: &Ctx<'_>, f: &Fee) -> Result<Receipt, StoreError> {
    let loan = existing_loan(ctx, f.loan_id, None, f.currency, f.effective_at)?;
    let entry = posting::fee(f, loan.borrower_id)?;
    let description = format!("{} fee of {} {}", f.fee_type.as_str(), f.amount, f.currency);
    let (event_id, journal_entry_id) = record(
        ctx,
        &NewPosting::for_loan(
            EventType::FeeAssessed,
            Some(f.loan_id),
            f.effective_at,
            description,
        ),
        &entry,
    )?;
    Ok(Receipt::Fee(FeeReceipt {
        fee_event_id: event_id,
        journal_entry_id,
        posted_at: ctx.posted_at.clone(),
    }))
}

/// Checks every loan of a batch against the ledger; returns the postings and the batch currency,
/// or every problem found.
fn check_accrual_items(
    ctx: &Ctx<'_>,
    a: &AccrualBatch,
    date: &str,
) -> Result<(Vec<AccrualPosting>, Currency), StoreError> {
    let mut problems = Vec::new();
    let mut postings = Vec::with_capacity(a.loans.len());
    let mut batch_currency: Option<Currency> = None;
    let mut accrued = ctx.conn.prepare_cached(
        "SELECT 1 FROM accrual_lines a WHERE a.tenant_id = ?1 AND a.loan_id = ?2 AND a.accrual_date = ?3 \
         AND NOT EXISTS (SELECT 1 FROM journal_entries r WHERE r.reverses_entry_id = a.entry_id)",
    )?;
    for (index, item) in a.loans.iter().enumerate() {
        let mut problem = |field: &'static str, code: &'static str, message: String| {
            problems.push(ItemProblem {
                index,
                field,
                code,
                message,
            });
        };
        let Some(loan) = ctx.loan(item.loan_id)? else {
            problem(
                "loan_id",
                "loan_not_found",
                format!("loan {} does not exist", item.loan_id),
            );
            continue;
        };
        match batch_currency {
            None => batch_currency = Some(loan.currency),
            Some(c) if c != loan.currency => {
                problem(
                    "loan_id",
                    "mixed_currency_batch",
                    format!("loan is in {} but the batch is in {c}", loan.currency),
                );
                continue;
            }
            Some(_) => {}
        }
        if loan
            .check_dated_after_opening(item.loan_id, a.accrual_date)
            .is_err()
        {
            problem(
                "loan_id",
                "effective_before_loan",
                format!("the loan's first disbursement is dated after {date}"),
            );
        }
        if loan.balances.interest.checked_add(item.interest).is_err()
            || loan
                .balances
                .total_exposure()?
                .checked_add(item.interest)
                .is_err()
        {
            problem(
                "interest_minor",
                "amount_out_of_range",
                format!(
                    "the loan's interest receivable or total exposure would exceed {}",
                    i64::MAX
                ),
            );
        }
        if loan.balances.principal != item.outstanding_principal {
            problem(
                "outstanding_principal_minor",
                "principal_mismatch",
                format!(
                    "ledger principal outstanding is {}",
                    loan.balances.principal
                ),
            );
        }
        if let Some(bps) = item.annual_rate_bps {
            let expected = daily_interest(item.outstanding_principal, bps, a.convention)?;
            if expected != item.interest {
                problem(
                    "interest_minor",
                    "interest_mismatch",
                    format!("daily interest for this principal, rate and convention is {expected}"),
                );
            }
        }
        if accrued.exists(params![ctx.tenant, item.loan_id.to_string(), date])? {
            problem(
                "loan_id",
                "already_accrued",
                format!("loan is already accrued for {date}"),
            );
        }
        postings.push(AccrualPosting {
            loan_id: item.loan_id,
            borrower_id: loan.borrower_id,
            interest: item.interest,
        });
    }
    if !problems.is_empty() {
        return Err(StoreError::BatchRejected(problems));
    }
    let currency = batch_currency.ok_or(LedgerError::Unbalanced("an accrual batch needs loans"))?;
    Ok((postings, currency))
}

/// POST /v1/accruals/batch: all-or-nothing; every bad loan is reported.
pub(crate) fn accrue(ctx: &Ctx<'_>, a: &AccrualBatch) -> Result<Receipt, StoreError> {
    let date = format_date(a.accrual_date);
    let (postings, currency) = check_accrual_items(ctx, a, &date)?;
    let total = a
        .loans
        .iter()
        .try_fold(Money::ZERO, |t, item| t.checked_add(item.interest))
        .map_err(|_| out_of_range(format!("the batch total would exceed {}", i64::MAX)))?;
    let entry = posting::accrual(currency, &postings)?;
    let description = format!(
        "Interest accrual for {date}: {} loans, {}",
        a.loans.len(),
        a.convention.as_str()
    );
    let (event_id, journal_entry_id) = record(
        ctx,
        &NewPosting::for_loan(EventType::Accrual, None, a.accrual_date, description),
        &entry,
    )?;
    let entry_s = journal_entry_id.to_string();
    let program = a.program_id.to_string();
    let mut insert = ctx.conn.prepare_cached(
        "INSERT INTO accrual_lines (entry_id, loan_id, tenant_id, program_id, accrual_date, day_count_convention, \
         outstanding_principal_minor, annual_rate_bps, interest_minor) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )?;
    for item in &a.loans {
        insert.execute(params![
            entry_s,
            item.loan_id.to_string(),
            ctx.tenant,
            program,
            date,
            a.convention.as_str(),
            item.outstanding_principal.minor(),
            item.annual_rate_bps,
            item.interest.minor(),
        ])?;
    }
    Ok(Receipt::Accrual(AccrualReceipt {
        accrual_event_id: event_id,
        journal_entry_id,
        loan_count: a.loans.len(),
        total_accrued_minor: total,
        posted_at: ctx.posted_at.clone(),
    }))
}

/// POST /v1/reversals: the exact mirror of the original's lines.
pub(crate) fn reverse(ctx: &Ctx<'_>, r: &Reversal) -> Result<Receipt, StoreError> {
    let original_s = r.reverses_entry_id.to_string();
    let original: Option<(String, String, String)> = ctx
        .conn
        .prepare_cached(
            "SELECT event_id, event_type, effective_at FROM journal_entries WHERE tenant_id = ?1 AND entry_id = ?2",
        )?
        .query_row(params![ctx.tenant, original_s], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
    let Some((original_event, original_type, original_effective)) = original else {
        return Err(StoreError::NotFound);
    };
    if original_type == EventType::Reversal.as_str() {
        return Err(StoreError::CannotReverseReversal);
    }
    let reversed = ctx
        .conn
        .prepare_cached("SELECT 1 FROM journal_entries WHERE reverses_entry_id = ?1")?
        .exists(params![original_s])?;
    if reversed {
        return Err(StoreError::AlreadyReversed);
    }
    let lines = load_lines(ctx.conn, &original_s)?;
    let mirror = JournalEntry::new(lines)?.mirrored();
    let correlation_id =
        EventId::parse(&original_event).ok_or_else(|| corrupt("journal_entries.event_id"))?;
    let original_date = crate::clock::parse_date(&original_effective)
        .ok_or_else(|| corrupt("journal_entries.effective_at"))?;
    let effective_at = r.effective_at.unwrap_or(original_date);
    if effective_at < original_date {
        return Err(StoreError::EffectiveBeforeOriginal);
    }
    let loans: std::collections::BTreeSet<LoanId> =
        mirror.lines().iter().filter_map(|l| l.loan_id).collect();
    let description = match &r.reason_description {
        Some(text) => format!(
            "Reversal of {original_s} ({}): {text}",
            r.reason_code.as_str()
        ),
        None => format!("Reversal of {original_s} ({})", r.reason_code.as_str()),
    };
    let single_loan = if loans.len() == 1 {
        loans.first().copied()
    } else {
        None
    };
    let (_, journal_entry_id) = record(
        ctx,
        &NewPosting {
            correlation_id: Some(correlation_id),
            reverses: Some(r.reverses_entry_id),
            ..NewPosting::for_loan(EventType::Reversal, single_loan, effective_at, description)
        },
        &mirror,
    )
    .map_err(|e| match e {
        StoreError::Ledger(LedgerError::NegativeBalance(_)) => StoreError::ReversalBlocked,
        other => other,
    })?;
    Ok(Receipt::Reversal(ReversalReceipt {
        journal_entry_id,
        reverses_entry_id: r.reverses_entry_id,
        posted_at: ctx.posted_at.clone(),
        correlation_id,
    }))
}

/// An entry's lines as domain values, in sequence order.
pub(crate) fn load_lines(
    conn: &Connection,
    entry_id: &str,
) -> Result<Vec<JournalLine>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT account_code, direction, amount_minor, currency, layer, loan_id, borrower_id, external_ref \
         FROM journal_lines WHERE entry_id = ?1 ORDER BY sequence",
    )?;
    let rows = stmt.query_map(params![entry_id], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, String>(1)?,
            r.get::<_, i64>(2)?,
            r.get::<_, String>(3)?,
            r.get::<_, String>(4)?,
            r.get::<_, Option<String>>(5)?,
            r.get::<_, Option<String>>(6)?,
            r.get::<_, Option<String>>(7)?,
        ))
    })?;
    let mut lines = Vec::new();
    for row in rows {
        let (account, direction, amount, currency, layer, loan, borrower, external_ref) = row?;
        lines.push(JournalLine {
            account: Account::from_code(&account)
                .ok_or_else(|| corrupt("journal_lines.account_code"))?,
            direction: Direction::parse(&direction)
                .ok_or_else(|| corrupt("journal_lines.direction"))?,
            amount: Money::from_minor(amount),
            currency: Currency::parse(&currency)
                .ok_or_else(|| corrupt("journal_lines.currency"))?,
            layer: Layer::parse(&layer).ok_or_else(|| corrupt("journal_lines.layer"))?,
            loan_id: loan
                .as_deref()
                .map(|l| LoanId::parse(l).ok_or_else(|| corrupt("journal_lines.loan_id")))
                .transpose()?,
            borrower_id: borrower
                .as_deref()
                .map(|b| BorrowerId::parse(b).ok_or_else(|| corrupt("journal_lines.borrower_id")))
                .transpose()?,
            external_ref,
        });
    }
    Ok(lines)
}
