//! The rows one write batch adds, and how they are written: each table gets a few multi-row
//! `INSERT`s per batch (chunks of up to 256 rows, so only a handful of distinct statements are
//! ever prepared and cached), in the order the schema's foreign keys and triggers need: tenants
//! and their accounts, events, lines, entry headers (whose trigger checks the lines balance),
//! outbox rows, accrual inputs, loan links, then the materialised balances and the stored
//! answers. Nothing here decides anything: every value was decided by the ledger rules first.

use rusqlite::{Connection, Statement, ToSql};

use crate::ledger::journal::LineSpan;
use crate::store::StoreError;

/// A row of one table: how many columns it binds and how.
pub(crate) trait Row {
    /// `INSERT INTO table (columns) VALUES` — the statement's head.
    const HEAD: &'static str;
    /// What follows the value lists (an upsert clause), or "".
    const TAIL: &'static str = "";
    /// Number of bound columns.
    const COLUMNS: usize;
    /// Binds this row's values at parameters `first ..= first + COLUMNS - 1`.
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()>;
}

/// Binds `values` one after another from parameter `first`.
pub(crate) fn bind_all(
    stmt: &mut Statement<'_>,
    first: usize,
    values: &[&dyn ToSql],
) -> rusqlite::Result<()> {
    for (i, v) in values.iter().enumerate() {
        stmt.raw_bind_parameter(first + i, v)?;
    }
    Ok(())
}

/// The chunk sizes statements are prepared for.
const CHUNKS: [usize; 5] = [256, 64, 16, 4, 1];

/// `HEAD (?,?,..),(..) TAIL` for `rows` rows of `columns` columns.
fn values_sql(head: &str, tail: &str, columns: usize, rows: usize) -> String {
    let one = format!("({})", vec!["?"; columns].join(","));
    let mut sql = String::with_capacity(head.len() + tail.len() + rows * (one.len() + 1) + 2);
    sql.push_str(head);
    sql.push(' ');
    for i in 0..rows {
        if i > 0 {
            sql.push(',');
        }
        sql.push_str(&one);
    }
    sql.push(' ');
    sql.push_str(tail);
    sql
}

/// Inserts every row, in order, with as few statements as the chunk sizes allow.
pub(crate) fn insert<R: Row>(conn: &Connection, rows: &[R]) -> Result<(), StoreError> {
    // SQLite binds at most 32,766 parameters per statement.
    let most = 32_766 / R::COLUMNS;
    let mut rest = rows;
    while !rest.is_empty() {
        let n = CHUNKS
            .into_iter()
            .find(|&c| c <= rest.len() && c <= most)
            .unwrap_or(1);
        let sql = values_sql(R::HEAD, R::TAIL, R::COLUMNS, n);
        let mut stmt = conn.prepare_cached(&sql)?;
        for (i, row) in rest[..n].iter().enumerate() {
            row.bind(&mut stmt, i * R::COLUMNS + 1)?;
        }
        stmt.raw_execute()?;
        rest = &rest[n..];
    }
    Ok(())
}

/// A new tenant (its chart of accounts is copied from the templates right after).
pub(crate) struct TenantRow {
    pub tenant_id: String,
    pub created_at: String,
}

impl Row for TenantRow {
    const HEAD: &'static str = "INSERT INTO tenants (tenant_id, created_at) VALUES";
    const COLUMNS: usize = 2;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(stmt, first, &[&self.tenant_id, &self.created_at])
    }
}

/// A period close with the trial balances it froze.
pub(crate) struct PeriodCloseRow {
    pub period_close_id: String,
    pub tenant_id: String,
    pub through_date: String,
    pub closed_at: String,
    pub actor: Option<String>,
    pub metadata: Option<String>,
    pub trial_balance: String,
}

impl Row for PeriodCloseRow {
    const HEAD: &'static str = "INSERT INTO period_closes (period_close_id, tenant_id, through_date, closed_at, \
         actor, metadata, trial_balance) VALUES";
    const COLUMNS: usize = 7;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.period_close_id,
                &self.tenant_id,
                &self.through_date,
                &self.closed_at,
                &self.actor,
                &self.metadata,
                &self.trial_balance,
            ],
        )
    }
}

/// A business event.
pub(crate) struct EventRow {
    pub event_id: String,
    pub tenant_id: String,
    pub event_type: &'static str,
    pub loan_id: Option<String>,
    pub payload: String,
    pub metadata: Option<String>,
    pub external_ref: Option<String>,
    pub allocation_policy: Option<&'static str>,
    pub recorded_at: String,
    pub subject_event_id: Option<String>,
    pub entry_seq: i64,
}

impl Row for EventRow {
    const HEAD: &'static str = "INSERT INTO events (event_id, tenant_id, event_type, loan_id, payload, metadata, \
         external_ref, allocation_policy, recorded_at, subject_event_id, entry_seq) VALUES";
    const COLUMNS: usize = 11;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.event_id,
                &self.tenant_id,
                &self.event_type,
                &self.loan_id,
                &self.payload,
                &self.metadata,
                &self.external_ref,
                &self.allocation_policy,
                &self.recorded_at,
                &self.subject_event_id,
                &self.entry_seq,
            ],
        )
    }
}

/// A journal line.
pub(crate) struct LineRow {
    pub entry_id: String,
    pub sequence: i64,
    pub tenant_id: String,
    pub account_code: &'static str,
    pub direction: &'static str,
    pub amount_minor: i64,
    pub currency: String,
    pub layer: &'static str,
    pub effective_at: String,
    pub loan_id: Option<String>,
    pub borrower_id: Option<String>,
    pub external_ref: Option<String>,
}

impl Row for LineRow {
    const HEAD: &'static str = "INSERT INTO journal_lines (entry_id, sequence, tenant_id, account_code, direction, \
         amount_minor, currency, layer, effective_at, loan_id, borrower_id, external_ref) VALUES";
    const COLUMNS: usize = 12;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.entry_id,
                &self.sequence,
                &self.tenant_id,
                &self.account_code,
                &self.direction,
                &self.amount_minor,
                &self.currency,
                &self.layer,
                &self.effective_at,
                &self.loan_id,
                &self.borrower_id,
                &self.external_ref,
            ],
        )
    }
}

/// A journal entry header, with its posting sequence and hash-chain link.
pub(crate) struct EntryRow {
    pub entry_seq: i64,
    pub entry_id: String,
    pub tenant_id: String,
    pub event_id: String,
    pub event_type: &'static str,
    pub effective_at: String,
    pub posted_at: String,
    pub correlation_id: String,
    pub reverses_entry_id: Option<String>,
    pub description: String,
    pub actor: Option<String>,
    pub metadata: Option<String>,
    pub line_count: i64,
    pub prev_hash: String,
    pub hash: String,
}

impl Row for EntryRow {
    const HEAD: &'static str = "INSERT INTO journal_entries (entry_seq, entry_id, tenant_id, event_id, event_type, \
         effective_at, posted_at, correlation_id, reverses_entry_id, description, actor, metadata, line_count, \
         prev_hash, hash) VALUES";
    const COLUMNS: usize = 15;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.entry_seq,
                &self.entry_id,
                &self.tenant_id,
                &self.event_id,
                &self.event_type,
                &self.effective_at,
                &self.posted_at,
                &self.correlation_id,
                &self.reverses_entry_id,
                &self.description,
                &self.actor,
                &self.metadata,
                &self.line_count,
                &self.prev_hash,
                &self.hash,
            ],
        )
    }
}

/// A webhook outbox row (due at once): the delivery state of the entry with this `entry_seq`
/// (its body is read from the entry when it is delivered).
pub(crate) struct OutboxRow {
    pub entry_seq: i64,
    pub now_ms: i64,
    pub traceparent: Option<String>,
}

impl Row for OutboxRow {
    const HEAD: &'static str =
        "INSERT INTO webhook_outbox (outbox_seq, next_attempt_ms, created_ms, traceparent) VALUES";
    const COLUMNS: usize = 4;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.entry_seq,
                &self.now_ms,
                &self.now_ms,
                &self.traceparent,
            ],
        )
    }
}

/// The inputs of one accrual line.
pub(crate) struct AccrualLineRow {
    pub entry_id: String,
    pub loan_id: String,
    pub tenant_id: String,
    pub program_id: String,
    pub accrual_date: String,
    pub convention: &'static str,
    pub outstanding_principal_minor: i64,
    pub annual_rate_bps: Option<u32>,
    pub interest_minor: i64,
}

impl Row for AccrualLineRow {
    const HEAD: &'static str = "INSERT INTO accrual_lines (entry_id, loan_id, tenant_id, program_id, accrual_date, \
         day_count_convention, outstanding_principal_minor, annual_rate_bps, interest_minor) VALUES";
    const COLUMNS: usize = 9;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.entry_id,
                &self.loan_id,
                &self.tenant_id,
                &self.program_id,
                &self.accrual_date,
                &self.convention,
                &self.outstanding_principal_minor,
                &self.annual_rate_bps,
                &self.interest_minor,
            ],
        )
    }
}

/// The link of an entry to a loan it touches (loan journal paging).
pub(crate) struct LoanEntryRow {
    pub tenant_id: String,
    pub loan_id: String,
    pub entry_seq: i64,
    pub event_type: &'static str,
    pub effective_at: String,
    /// Where the loan's lines are in the entry (their sequence numbers).
    pub lines: LineSpan,
}

impl Row for LoanEntryRow {
    const HEAD: &'static str = "INSERT INTO loan_entries (tenant_id, loan_id, entry_seq, event_type, effective_at, \
         first_line, last_line) VALUES";
    const COLUMNS: usize = 7;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.tenant_id,
                &self.loan_id,
                &self.entry_seq,
                &self.event_type,
                &self.effective_at,
                &self.lines.first,
                &self.lines.last,
            ],
        )
    }
}

/// A stored first answer, under its idempotency key.
pub(crate) struct IdempotencyRow {
    pub tenant_id: String,
    pub key: String,
    pub route: &'static str,
    pub fingerprint: String,
    pub body: Vec<u8>,
    pub created_at: String,
    pub expires_at: i64,
}

impl Row for IdempotencyRow {
    const HEAD: &'static str = "INSERT INTO idempotency_keys (tenant_id, idempotency_key, route, fingerprint, \
         status_code, response_body, created_at, expires_at) VALUES";
    const COLUMNS: usize = 8;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.tenant_id,
                &self.key,
                &self.route,
                &self.fingerprint,
                &201,
                &self.body,
                &self.created_at,
                &self.expires_at,
            ],
        )
    }
}

/// A loan's materialised balances after the batch (inserted when new, updated otherwise).
pub(crate) struct LoanRow {
    pub tenant_id: String,
    pub loan_id: String,
    pub borrower_id: String,
    pub currency: String,
    pub opened_at: String,
    pub opened_on: Option<String>,
    /// In [`crate::ledger::loan::Field`] order.
    pub balances: [i64; crate::ledger::loan::FIELDS],
    pub last_activity_at: String,
}

impl Row for LoanRow {
    const HEAD: &'static str = "INSERT INTO loans (tenant_id, loan_id, borrower_id, currency, opened_at, opened_on, \
         principal_minor, interest_minor, fees_minor, suspense_minor, disbursed_total_minor, paid_total_minor, \
         charged_off_minor, recovered_minor, last_activity_at) VALUES";
    const TAIL: &'static str = "ON CONFLICT (tenant_id, loan_id) DO UPDATE SET \
         principal_minor = excluded.principal_minor, interest_minor = excluded.interest_minor, \
         fees_minor = excluded.fees_minor, suspense_minor = excluded.suspense_minor, \
         disbursed_total_minor = excluded.disbursed_total_minor, paid_total_minor = excluded.paid_total_minor, \
         charged_off_minor = excluded.charged_off_minor, recovered_minor = excluded.recovered_minor, \
         last_activity_at = excluded.last_activity_at";
    const COLUMNS: usize = 15;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        let b = &self.balances;
        bind_all(
            stmt,
            first,
            &[
                &self.tenant_id,
                &self.loan_id,
                &self.borrower_id,
                &self.currency,
                &self.opened_at,
                &self.opened_on,
                &b[0],
                &b[1],
                &b[2],
                &b[3],
                &b[4],
                &b[5],
                &b[6],
                &b[7],
                &self.last_activity_at,
            ],
        )
    }
}

/// A GL account's totals after the batch — values computed with checked arithmetic, never SQL
/// `x + ?` (which `SQLite` turns into a REAL on overflow).
pub(crate) struct BalanceRow {
    pub tenant_id: String,
    pub account_code: &'static str,
    pub currency: String,
    pub layer: &'static str,
    pub dr_minor: i64,
    pub cr_minor: i64,
}

impl Row for BalanceRow {
    const HEAD: &'static str = "INSERT INTO account_balances (tenant_id, account_code, currency, layer, dr_minor, \
         cr_minor) VALUES";
    const TAIL: &'static str = "ON CONFLICT (tenant_id, account_code, currency, layer) DO UPDATE SET \
         dr_minor = excluded.dr_minor, cr_minor = excluded.cr_minor";
    const COLUMNS: usize = 6;
    fn bind(&self, stmt: &mut Statement<'_>, first: usize) -> rusqlite::Result<()> {
        bind_all(
            stmt,
            first,
            &[
                &self.tenant_id,
                &self.account_code,
                &self.currency,
                &self.layer,
                &self.dr_minor,
                &self.cr_minor,
            ],
        )
    }
}

/// Everything one batch adds, table by table, in job order.
#[derive(Default)]
pub(crate) struct BatchRows {
    pub expired_keys: Vec<(String, String)>,
    pub tenants: Vec<TenantRow>,
    pub events: Vec<EventRow>,
    pub lines: Vec<LineRow>,
    pub entries: Vec<EntryRow>,
    pub outbox: Vec<OutboxRow>,
    pub accrual_lines: Vec<AccrualLineRow>,
    pub loan_entries: Vec<LoanEntryRow>,
    pub idempotency: Vec<IdempotencyRow>,
    pub period_closes: Vec<PeriodCloseRow>,
}

impl BatchRows {
    /// Writes every row, then `loans` and `balances` (the batch's final materialised state).
    pub(crate) fn write(
        &self,
        conn: &Connection,
        loans: &[LoanRow],
        balances: &[BalanceRow],
    ) -> Result<(), StoreError> {
        for (tenant, key) in &self.expired_keys {
            // Past retention the key is free again; the purge task just had not reached it.
            conn.prepare_cached(
                "DELETE FROM idempotency_keys WHERE tenant_id = ?1 AND idempotency_key = ?2",
            )?
            .execute([tenant, key])?;
        }
        insert(conn, &self.tenants)?;
        for t in &self.tenants {
            conn.prepare_cached(
                "INSERT INTO accounts (tenant_id, code, name, normal_side) \
                 SELECT ?1, code, name, normal_side FROM account_templates",
            )?
            .execute([&t.tenant_id])?;
        }
        insert(conn, &self.events)?;
        insert(conn, &self.lines)?;
        insert(conn, &self.entries)?;
        insert(conn, &self.outbox)?;
        insert(conn, &self.accrual_lines)?;
        insert(conn, &self.loan_entries)?;
        insert(conn, loans)?;
        insert(conn, balances)?;
        insert(conn, &self.period_closes)?;
        insert(conn, &self.idempotency)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::values_sql;

    #[test]
    fn a_statement_lists_one_placeholder_group_per_row() {
        assert_eq!(
            values_sql("INSERT INTO t (a, b) VALUES", "", 2, 3),
            "INSERT INTO t (a, b) VALUES (?,?),(?,?),(?,?) "
        );
    }
}
