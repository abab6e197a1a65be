//! Read queries, run on the read-only pool. Each read is one short read transaction (one WAL
//! snapshot), so it never blocks the writer and never holds back checkpoints for long.
//!
//! Every number shown is exact: a balance replayed from lines is summed in `i128` and must fit
//! in `i64`, and a loan's total exposure is a checked sum. A stored value that does not fit (a
//! database damaged behind the service's back) is an error, never a clamped number.

use rusqlite::{Connection, OptionalExtension, params};
use time::Date;

use crate::clock::format_date;
use crate::ledger::accounts::{Account, Direction, Layer};
use crate::ledger::commands::EventType;
use crate::ledger::ids::{BorrowerId, EntryId, EventId, LoanId, TenantId};
use crate::ledger::journal::JournalLine;
use crate::ledger::loan::{FIELDS, LoanBalances, LoanStatus, Replay};
use crate::ledger::money::{Currency, Money};
use crate::ledger::trial_balance::TrialBalance;
use crate::store::StoreError;

/// A loan's balances (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoanView {
    /// Loan.
    pub loan_id: LoanId,
    /// Borrower.
    pub borrower_id: BorrowerId,
    /// Currency.
    pub currency: Currency,
    /// Derived from the balances (SPEC §7).
    pub status: LoanStatus,
    /// What it owes and has moved.
    pub balances: LoanBalances,
    /// `posted_at` of the latest entry counted.
    pub last_activity_at: Option<String>,
    /// principal + interest + fees, summed (checked) when the view was read.
    exposure: Money,
}

impl LoanView {
    /// principal + interest + fees (exact: the writer keeps it within `i64`, and the read
    /// refuses a loan whose sum does not fit).
    pub fn total_exposure(&self) -> Money {
        self.exposure
    }
}

/// A stored or replayed amount that does not fit in `i64`.
fn out_of_range(value: i128, what: &str, loan: &str) -> StoreError {
    StoreError::Invalid(format!("loan {loan}: {what} {value} is out of range"))
}

/// The way to loan lines (schema V9): a loan's `loan_entries` rows (`le`), each entry's header
/// (`e`, by rowid), the entry's lines between the row's `first_line` and `last_line` that name
/// the loan (`l`, a primary-key range), and the entry a reversal reverses (`o`), whose type
/// says what a reversal line undoes. The as-of balance and the reconciliation replay both read
/// lines this way.
macro_rules! loan_lines_from {
    () => {
        "FROM loan_entries le JOIN journal_entries e ON e.entry_seq = le.entry_seq \
         JOIN journal_lines l ON l.entry_id = e.entry_id \
              AND l.sequence BETWEEN le.first_line AND le.last_line AND l.loan_id = le.loan_id \
         LEFT JOIN journal_entries o ON o.entry_id = e.reverses_entry_id"
    };
}
pub(crate) use loan_lines_from;

/// Loan `?2`'s lines of tenant `?1` effective on or before `?3`, each with what its entry is
/// about (a reversal: the reversed entry's type).
const LOAN_LINES_AS_OF: &str = concat!(
    "SELECT l.account_code, l.direction, l.amount_minor, coalesce(o.event_type, e.event_type) ",
    loan_lines_from!(),
    " WHERE le.tenant_id = ?1 AND le.loan_id = ?2 AND le.effective_at <= ?3"
);

/// A loan's balances as of `date`, replayed from its lines through the one loan projection
/// ([`Replay`]). The lines are found through the loan's `loan_entries` rows: each says where in
/// its entry the loan's lines are, so even an accrual batch's entry is a short key range.
fn replay_loan(
    conn: &Connection,
    tenant: &str,
    loan: &str,
    date: &str,
) -> Result<[i64; FIELDS], StoreError> {
    let mut replay = Replay::default();
    let mut stmt = conn.prepare_cached(LOAN_LINES_AS_OF)?;
    let mut rows = stmt.query(params![tenant, loan, date])?;
    while let Some(r) = rows.next()? {
        let (Some(account), Some(direction), Some(kind)) = (
            Account::from_code(&r.get::<_, String>(0)?),
            Direction::parse(&r.get::<_, String>(1)?),
            EventType::parse(&r.get::<_, String>(3)?),
        ) else {
            continue;
        };
        replay.add(account, direction, kind, r.get(2)?);
    }
    let balances = replay
        .balances()
        .map_err(|value| out_of_range(value, "a replayed balance", loan))?;
    Ok(balances.minor_parts())
}

/// Current balances (materialised), or as of an effective date (replayed from the lines).
pub fn loan_balance(
    conn: &Connection,
    tenant: TenantId,
    loan_id: LoanId,
    as_of: Option<Date>,
) -> Result<Option<LoanView>, StoreError> {
    let tenant_s = tenant.to_string();
    let loan_s = loan_id.to_string();
    let row = conn
        .prepare_cached(
            "SELECT borrower_id, currency, last_activity_at, principal_minor, interest_minor, fees_minor, \
             suspense_minor, disbursed_total_minor, paid_total_minor, charged_off_minor, recovered_minor \
             FROM loans WHERE tenant_id = ?1 AND loan_id = ?2",
        )?
        .query_row(params![tenant_s, loan_s], |r| {
            let mut m = [0i64; FIELDS];
            for (i, slot) in m.iter_mut().enumerate() {
                *slot = r.get(3 + i)?;
            }
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                m,
                r.get::<_, String>(2)?,
            ))
        })
        .optional()?;
    let Some((borrower_id, currency, current, last_activity)) = row else {
        return Ok(None);
    };
    let (m, last_activity_at) = match as_of {
        None => (current, Some(last_activity)),
        Some(date) => {
            let date = format_date(date);
            let m = replay_loan(conn, &tenant_s, &loan_s, &date)?;
            let last: Option<String> = conn
                .prepare_cached(
                    "SELECT max(e.posted_at) FROM loan_entries le JOIN journal_entries e ON e.entry_seq = le.entry_seq \
                     WHERE le.tenant_id = ?1 AND le.loan_id = ?2 AND le.effective_at <= ?3",
                )?
                .query_row(params![tenant_s, loan_s, date], |r| r.get(0))?;
            (m, last)
        }
    };
    let b = LoanBalances::from_minor_parts(m);
    let exposure = b.total_exposure().map_err(|_| {
        StoreError::Invalid(format!("loan {loan_s}: total exposure is out of range"))
    })?;
    Ok(Some(LoanView {
        loan_id,
        borrower_id: BorrowerId::parse(&borrower_id)
            .ok_or_else(|| StoreError::corrupt("loans.borrower_id"))?,
        currency: Currency::parse(&currency)
            .ok_or_else(|| StoreError::corrupt("loans.currency"))?,
        status: b.status(),
        balances: b,
        last_activity_at,
        exposure,
    }))
}

/// One journal line as stored: its position and the posting line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineView {
    /// 1-based position.
    pub sequence: i64,
    /// The line.
    pub line: JournalLine,
}

/// A journal entry with its lines (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryView {
    /// Entry id.
    pub journal_entry_id: EntryId,
    /// Event type.
    pub event_type: EventType,
    /// Effective date.
    pub effective_at: String,
    /// Commit timestamp.
    pub posted_at: String,
    /// Business event id (the original's, for a reversal).
    pub correlation_id: EventId,
    /// Entry this one reverses.
    pub reverses_entry_id: Option<EntryId>,
    /// Entry that reverses this one.
    pub reversed_by_entry_id: Option<EntryId>,
    /// Text.
    pub description: String,
    /// Token subject that posted it.
    pub actor: Option<String>,
    /// Client metadata, verbatim JSON.
    pub metadata: Option<String>,
    /// Lines in sequence order.
    pub lines: Vec<LineView>,
}

/// One entry of the caller's tenant.
pub fn journal_entry(
    conn: &Connection,
    tenant: TenantId,
    entry_id: EntryId,
) -> Result<Option<EntryView>, StoreError> {
    let entry_s = entry_id.to_string();
    let header = conn
        .prepare_cached(
            "SELECT e.event_type, e.effective_at, e.posted_at, e.correlation_id, e.reverses_entry_id, \
             (SELECT r.entry_id FROM journal_entries r WHERE r.reverses_entry_id = e.entry_id), \
             e.description, e.actor, e.metadata FROM journal_entries e WHERE e.tenant_id = ?1 AND e.entry_id = ?2",
        )?
        .query_row(params![tenant.to_string(), entry_s], |r| {
            Ok((
                r.get::<_, String>(0)?,
                r.get::<_, String>(1)?,
                r.get::<_, String>(2)?,
                r.get::<_, String>(3)?,
                r.get::<_, Option<String>>(4)?,
                r.get::<_, Option<String>>(5)?,
                r.get::<_, String>(6)?,
                r.get::<_, Option<String>>(7)?,
                r.get::<_, Option<String>>(8)?,
            ))
        })
        .optional()?;
    let Some((
        kind,
        effective_at,
        posted_at,
        correlation,
        reverses,
        reversed_by,
        description,
        actor,
        metadata,
    )) = header
    else {
        return Ok(None);
    };
    let entry = |s: Option<String>, what: &str| -> Result<Option<EntryId>, StoreError> {
        s.map(|s| EntryId::parse(&s).ok_or_else(|| StoreError::corrupt(what)))
            .transpose()
    };
    let mut view = EntryView {
        journal_entry_id: entry_id,
        event_type: EventType::parse(&kind)
            .ok_or_else(|| StoreError::corrupt("journal_entries.event_type"))?,
        effective_at,
        posted_at,
        correlation_id: EventId::parse(&correlation)
            .ok_or_else(|| StoreError::corrupt("journal_entries.correlation_id"))?,
        reverses_entry_id: entry(reverses, "journal_entries.reverses_entry_id")?,
        reversed_by_entry_id: entry(reversed_by, "journal_entries.entry_id")?,
        description,
        actor,
        metadata,
        lines: Vec::new(),
    };
    let mut stmt = conn.prepare_cached(
        "SELECT sequence, account_code, direction, amount_minor, currency, layer, loan_id, borrower_id, external_ref \
         FROM journal_lines WHERE entry_id = ?1 ORDER BY sequence",
    )?;
    let mut rows = stmt.query(params![entry_s])?;
    while let Some(r) = rows.next()? {
        view.lines.push(line_view(r)?);
    }
    Ok(Some(view))
}

/// One stored line, parsed; a value the schema would not have let in is a corrupt row.
fn line_view(r: &rusqlite::Row<'_>) -> Result<LineView, StoreError> {
    let text = |i: usize, what: &str| -> Result<String, StoreError> {
        r.get::<_, String>(i).map_err(|_| StoreError::corrupt(what))
    };
    let optional = |i: usize| r.get::<_, Option<String>>(i);
    let line = JournalLine {
        account: Account::from_code(&text(1, "journal_lines.account_code")?)
            .ok_or_else(|| StoreError::corrupt("journal_lines.account_code"))?,
        direction: Direction::parse(&text(2, "journal_lines.direction")?)
            .ok_or_else(|| StoreError::corrupt("journal_lines.direction"))?,
        amount: Money::from_minor(r.get(3)?),
        currency: Currency::parse(&text(4, "journal_lines.currency")?)
            .ok_or_else(|| StoreError::corrupt("journal_lines.currency"))?,
        layer: Layer::parse(&text(5, "journal_lines.layer")?)
            .ok_or_else(|| StoreError::corrupt("journal_lines.layer"))?,
        loan_id: optional(6)?
            .map(|s| LoanId::parse(&s).ok_or_else(|| StoreError::corrupt("journal_lines.loan_id")))
            .transpose()?,
        borrower_id: optional(7)?
            .map(|s| {
                BorrowerId::parse(&s)
                    .ok_or_else(|| StoreError::corrupt("journal_lines.borrower_id"))
            })
            .transpose()?,
        external_ref: optional(8)?,
    };
    Ok(LineView {
        sequence: r.get(0)?,
        line,
    })
}

/// A GL account balance (SPEC §7).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountBalanceView {
    /// Total debits.
    pub dr: Money,
    /// Total credits.
    pub cr: Money,
}

/// An account's balance in one currency and layer, now (materialised) or as of a date (lines).
pub fn account_balance(
    conn: &Connection,
    tenant: TenantId,
    account: Account,
    currency: &str,
    layer: &str,
    as_of: Option<Date>,
) -> Result<AccountBalanceView, StoreError> {
    let tenant_s = tenant.to_string();
    let (dr, cr): (i64, i64) = match as_of {
        None => conn
            .prepare_cached(
                "SELECT dr_minor, cr_minor FROM account_balances \
                 WHERE tenant_id = ?1 AND account_code = ?2 AND currency = ?3 AND layer = ?4",
            )?
            .query_row(params![tenant_s, account.code(), currency, layer], |r| {
                Ok((r.get(0)?, r.get(1)?))
            })
            .optional()?
            .unwrap_or((0, 0)),
        Some(date) => conn
            .prepare_cached(
                "SELECT coalesce(sum(CASE direction WHEN 'DR' THEN amount_minor END), 0), \
                        coalesce(sum(CASE direction WHEN 'CR' THEN amount_minor END), 0) \
                 FROM journal_lines WHERE tenant_id = ?1 AND account_code = ?2 AND currency = ?3 \
                 AND layer = ?4 AND effective_at <= ?5",
            )?
            .query_row(
                params![tenant_s, account.code(), currency, layer, format_date(date)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?,
    };
    Ok(AccountBalanceView {
        dr: Money::from_minor(dr),
        cr: Money::from_minor(cr),
    })
}

/// Filters and position of one page of a loan's journal entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPageQuery {
    /// Only entries effective on or after.
    pub from_date: Option<Date>,
    /// Only entries effective on or before.
    pub to_date: Option<Date>,
    /// Only this event type.
    pub event_type: Option<String>,
    /// Page size (1–500).
    pub page_size: u32,
    /// Posting sequence of the last entry of the previous page.
    pub after_seq: i64,
}

/// One page: entries in posting order and the sequence of the last one, if more may follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EntryPage {
    /// Entries with their lines.
    pub items: Vec<EntryView>,
    /// Where the next page starts, when there is one.
    pub next_after_seq: Option<i64>,
}

/// Keyset pagination over a loan's entries in posting order. `None` if the loan is not the
/// tenant's.
pub fn loan_entries(
    conn: &Connection,
    tenant: TenantId,
    loan_id: LoanId,
    q: &EntryPageQuery,
) -> Result<Option<EntryPage>, StoreError> {
    let tenant_s = tenant.to_string();
    let loan_s = loan_id.to_string();
    let exists = conn
        .prepare_cached("SELECT 1 FROM loans WHERE tenant_id = ?1 AND loan_id = ?2")?
        .exists(params![tenant_s, loan_s])?;
    if !exists {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(
        "SELECT le.entry_seq, e.entry_id FROM loan_entries le JOIN journal_entries e ON e.entry_seq = le.entry_seq \
         WHERE le.tenant_id = ?1 AND le.loan_id = ?2 AND le.entry_seq > ?3 \
         AND (?4 IS NULL OR le.effective_at >= ?4) AND (?5 IS NULL OR le.effective_at <= ?5) \
         AND (?6 IS NULL OR le.event_type = ?6) ORDER BY le.entry_seq LIMIT ?7",
    )?;
    let limit = i64::from(q.page_size) + 1;
    let rows: Vec<(i64, String)> = stmt
        .query_map(
            params![
                tenant_s,
                loan_s,
                q.after_seq,
                q.from_date.map(format_date),
                q.to_date.map(format_date),
                q.event_type,
                limit
            ],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )?
        .collect::<Result<_, _>>()?;
    let has_more = rows.len() > q.page_size as usize;
    let mut items = Vec::with_capacity(rows.len().min(q.page_size as usize));
    let mut last_seq = None;
    for (seq, entry_id) in rows.into_iter().take(q.page_size as usize) {
        let id =
            EntryId::parse(&entry_id).ok_or_else(|| StoreError::Invalid("bad entry id".into()))?;
        if let Some(view) = journal_entry(conn, tenant, id)? {
            items.push(view);
        }
        last_seq = Some(seq);
    }
    Ok(Some(EntryPage {
        items,
        next_after_seq: if has_more { last_seq } else { None },
    }))
}

/// One period close as listed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodCloseView {
    /// Id.
    pub period_close_id: String,
    /// Last day closed.
    pub through_date: String,
    /// Commit timestamp.
    pub closed_at: String,
}

/// The tenant's period closes, newest first, and its lock date (the latest `through_date`).
pub fn period_closes(
    conn: &Connection,
    tenant: TenantId,
) -> Result<(Option<String>, Vec<PeriodCloseView>), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT period_close_id, through_date, closed_at FROM period_closes \
         WHERE tenant_id = ?1 ORDER BY through_date DESC",
    )?;
    let items: Vec<PeriodCloseView> = stmt
        .query_map(params![tenant.to_string()], |r| {
            Ok(PeriodCloseView {
                period_close_id: r.get(0)?,
                through_date: r.get(1)?,
                closed_at: r.get(2)?,
            })
        })?
        .collect::<Result<_, _>>()?;
    Ok((items.first().map(|c| c.through_date.clone()), items))
}

/// The trial balance of one currency as of `date` (SPEC §6d).
pub fn trial_balance(
    conn: &Connection,
    tenant: TenantId,
    currency: Currency,
    date: Date,
) -> Result<TrialBalance, StoreError> {
    let mut tb = crate::store::trial_balance::as_of(
        conn,
        &tenant.to_string(),
        &format_date(date),
        [currency],
    )?;
    tb.pop()
        .ok_or_else(|| StoreError::Invalid("no trial balance computed".into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_as_of_balance_reads_its_loans_lines_by_primary_keys_only() {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::store::migrate::run(&mut conn).expect("migrations");
        let plan =
            crate::store::query_plan(&conn, LOAN_LINES_AS_OF, params!["t", "l", "2026-11-30"]);
        assert!(
            plan.contains("SEARCH le USING PRIMARY KEY (tenant_id=? AND loan_id=?)"),
            "{plan}"
        );
        assert!(
            plan.contains("SEARCH l USING PRIMARY KEY (entry_id=? AND sequence>? AND sequence<?)"),
            "{plan}"
        );
        assert!(
            !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }
}
