//! The reconciliation proof (SPEC §7): for one tenant, on ONE read snapshot, the checks that
//! show the ledger is whole — trial balance per currency, every entry balanced, loan sub-ledger
//! equal to the GL control accounts, materialised balances equal to a replay of the lines, the
//! hash chain intact, and the append-only triggers present — and the portfolio roll-up. Used by
//! `GET /v1/reconciliation/status` and, for every tenant, by `hpts verify`.
//!
//! How it stays cheap and robust on any database, including one written by an older release:
//!
//! - **Streaming, bounded memory.** Four passes read the raw rows in index order: the tenant's
//!   lines (GL totals per account, currency and layer), the loans merged with their lines (both
//!   ordered by `loan_id`, compared one loan at a time), the stored account balances, and the
//!   entries with their lines (balance and hash chain). Nothing is kept per loan or per entry
//!   beyond the one being compared, and a check keeps only its first few problems in full and
//!   counts the rest ([`SHOWN_PROBLEMS`]).
//! - **Exact sums.** Every sum is taken in Rust in `i128`, never with `SQLite`'s `sum()`, which
//!   raises "integer overflow" once a total leaves `i64`. At most 2^63 rows of at most 2^63 each
//!   fit in `i128`, so no sum here can overflow. The roll-up is computed and compared per
//!   currency (a sum across currencies means nothing) and reported as exact `i128` totals.
//! - **A value is checked, never trusted.** A stored amount or balance that is not an INTEGER
//!   (an older release let overflowed totals become REAL) is a problem of the checks that read
//!   it, named with its table, column and key.
//! - **One failure fails one check.** A pass that cannot run (a query error) makes the checks
//!   that need it fail with "could not be computed: why"; the other checks still run. Only a
//!   stop (the caller went away, the deadline passed) ends the whole reconciliation, with
//!   `Cancelled`, checked between passes and every [`CHECK_EVERY`] rows.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use rusqlite::types::ValueRef;
use rusqlite::{Connection, Row, Rows, params};

use crate::ledger::accounts::{Account, Direction};
use crate::ledger::commands::EventType;
use crate::ledger::loan::{FIELDS, Replay};
use crate::ledger::money::Currency;
use crate::ledger::trial_balance::TrialBalance;
use crate::store::chain::{self, ChainedEntry, ChainedLine};
use crate::store::readers::loan_lines_from;
use crate::store::{ReadStop, StoreError};

/// Problems a failed check shows in full; the rest are counted.
pub const SHOWN_PROBLEMS: usize = 5;

/// Rows between two looks at the stop flag in the loops below (SQL statements are also
/// interrupted by the connection's progress handler).
pub const CHECK_EVERY: u64 = 1024;

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable check name.
    pub name: &'static str,
    /// True when the check holds.
    pub ok: bool,
    /// What was compared, or what differs, or why it could not be computed.
    pub detail: String,
}

/// One currency of the portfolio roll-up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyRollup {
    /// Currency.
    pub currency: String,
    /// Net of GL 1100 replayed from the lines.
    pub gl_principal_minor: i128,
    /// Sum of the loans' principal balances.
    pub sum_of_loan_balances_minor: i128,
}

/// The portfolio roll-up: GL 1100 against the sum of the loans' principal, per currency (as
/// of the date when given).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rollup {
    /// Every currency the tenant's principal is held in.
    pub currencies: Vec<CurrencyRollup>,
    /// Why the roll-up could not be computed, when it could not.
    pub problem: Option<String>,
}

impl Rollup {
    /// True when computed and equal in every currency.
    pub fn ok(&self) -> bool {
        self.problem.is_none()
            && self
                .currencies
                .iter()
                .all(|c| c.gl_principal_minor == c.sum_of_loan_balances_minor)
    }

    /// GL 1100 summed over the currencies (the total the API reports).
    pub fn gl_principal_minor(&self) -> i128 {
        self.currencies.iter().map(|c| c.gl_principal_minor).sum()
    }

    /// Loan principal summed over the currencies (the total the API reports).
    pub fn sum_of_loan_balances_minor(&self) -> i128 {
        self.currencies
            .iter()
            .map(|c| c.sum_of_loan_balances_minor)
            .sum()
    }
}

/// Everything the reconciliation endpoint reports for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    /// Accounts (account, currency) whose balances disagree somewhere.
    pub mismatched_account_count: usize,
    /// GL 1100 against the loans' principal, per currency.
    pub rollup: Rollup,
    /// Entries checked.
    pub entries_checked: u64,
}

impl Reconciliation {
    /// True when every check holds.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
    }
}

/// The service's reconciliation runs, for `/metrics` (`hpts_reconciliation_*`).
#[derive(Debug, Default)]
pub struct RunStats {
    /// Runs whose report had a check or the portfolio roll-up not `ok`.
    pub failures: AtomicU64,
    /// When the last run finished, in Unix seconds; 0 before the first.
    pub last_run_unix: AtomicI64,
}

impl RunStats {
    /// Records one finished run that produced `report` at `at_unix` (Unix seconds).
    pub fn record(&self, report: &Reconciliation, at_unix: i64) {
        if !(report.ok() && report.rollup.ok()) {
            self.failures.fetch_add(1, Ordering::Relaxed);
        }
        self.last_run_unix.store(at_unix, Ordering::Relaxed);
    }
}

/// The guards that must exist in the schema.
pub const APPEND_ONLY_TRIGGERS: [&str; 10] = [
    "journal_entries_no_update",
    "journal_entries_no_delete",
    "journal_lines_no_update",
    "journal_lines_no_delete",
    "events_no_update",
    "events_no_delete",
    "loan_entries_no_update",
    "loan_entries_no_delete",
    "accrual_lines_no_update",
    "accrual_lines_no_delete",
];

/// A loan's stored figures, in `loans` column order ([`Field`] order).
const LOAN_COLUMNS: [&str; FIELDS] = [
    "principal_minor",
    "interest_minor",
    "fees_minor",
    "suspense_minor",
    "disbursed_total_minor",
    "paid_total_minor",
    "charged_off_minor",
    "recovered_minor",
];

/// Runs every check for `tenant` inside one read transaction (one snapshot). `as_of` (a
/// `YYYY-MM-DD` string) limits the trial balance and the portfolio roll-up to entries effective
/// on or before it; the integrity checks always cover the whole ledger. Fails only when
/// stopped (`Cancelled`) or when no read transaction can be begun.
pub fn reconcile(
    conn: &Connection,
    tenant: &str,
    as_of: Option<&str>,
    stop: &ReadStop,
) -> Result<Reconciliation, StoreError> {
    if !conn.is_autocommit() {
        // Already inside the caller's read transaction: one snapshot either way.
        return reconcile_in_snapshot(conn, tenant, as_of, stop);
    }
    conn.execute_batch("BEGIN")?;
    let result = reconcile_in_snapshot(conn, tenant, as_of, stop);
    // A read transaction: nothing to keep; ending it releases the snapshot for checkpoints.
    let _ = conn.execute_batch("COMMIT");
    result
}

/// What a pass produced, or why it could not run.
type Pass<T> = Result<T, String>;

fn reconcile_in_snapshot(
    conn: &Connection,
    tenant: &str,
    as_of: Option<&str>,
    stop: &ReadStop,
) -> Result<Reconciliation, StoreError> {
    let lines = attempt(stop, "journal lines", || {
        line_totals(conn, tenant, as_of, stop)
    })?;
    let loans = attempt(stop, "loans", || loan_totals(conn, tenant, as_of, stop))?;
    let stored_gl = attempt(stop, "account balances", || stored_gl(conn, tenant))?;
    let entries = attempt(stop, "journal entries", || walk_entries(conn, tenant, stop))?;
    let guards = attempt(stop, "schema", || missing_guards(conn))?;
    let closes = attempt(stop, "period closes", || closes_recomputed(conn, tenant))?;

    let mut mismatched = BTreeSet::new();
    let checks = vec![
        trial_balance_check(&lines),
        entries_balanced_check(&entries),
        subledger_check(&lines, &loans, &mut mismatched),
        materialised_check(&lines, &loans, &stored_gl, &mut mismatched),
        chain_check(&entries),
        guard_check(&guards),
        closes_check(&closes),
    ];
    Ok(Reconciliation {
        checks,
        mismatched_account_count: mismatched.len(),
        rollup: rollup(&lines, &loans, as_of.is_some()),
        entries_checked: entries.as_ref().map_or(0, |e| e.entries),
    })
}

/// Runs one pass. Its error becomes the reason why the checks that need it could not be
/// computed, unless the read is being stopped: then the reconciliation ends with `Cancelled`.
fn attempt<T>(
    stop: &ReadStop,
    what: &str,
    pass: impl FnOnce() -> Result<T, StoreError>,
) -> Result<Pass<T>, StoreError> {
    stop.check()?;
    match pass() {
        Ok(value) => Ok(Ok(value)),
        Err(StoreError::Cancelled) => Err(StoreError::Cancelled),
        Err(e) => {
            // An interrupted statement fails like any other; the stop tells them apart.
            stop.check()?;
            Ok(Err(format!("{what}: {}", crate::report::Chain(&e))))
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Problems and values.

/// The problems a check found: the first [`SHOWN_PROBLEMS`] in full, the others counted.
#[derive(Debug, Default)]
struct Problems {
    shown: Vec<String>,
    total: usize,
}

impl Problems {
    /// Records a problem; its text is only built when it will be shown.
    fn push(&mut self, problem: impl FnOnce() -> String) {
        if self.shown.len() < SHOWN_PROBLEMS {
            self.shown.push(problem());
        }
        self.total += 1;
    }

    fn extend(&mut self, other: &Problems) {
        for p in &other.shown {
            if self.shown.len() < SHOWN_PROBLEMS {
                self.shown.push(p.clone());
            }
        }
        self.total += other.total;
    }

    fn into_check(self, name: &'static str, ok_detail: impl FnOnce() -> String) -> Check {
        if self.total == 0 {
            return Check {
                name,
                ok: true,
                detail: ok_detail(),
            };
        }
        let more = if self.total > self.shown.len() {
            format!(" (+{} more)", self.total - self.shown.len())
        } else {
            String::new()
        };
        Check {
            name,
            ok: false,
            detail: format!("{}{more}", self.shown.join("; ")),
        }
    }
}

/// A check whose inputs could not be read.
fn uncomputable(name: &'static str, reasons: &[&String]) -> Check {
    let reasons: Vec<&str> = reasons.iter().map(|r| r.as_str()).collect();
    Check {
        name,
        ok: false,
        detail: format!("could not be computed: {}", reasons.join("; ")),
    }
}

/// A column that must hold an INTEGER: its value, or the storage class it holds instead.
fn integer(row: &Row<'_>, idx: usize) -> Result<Result<i64, &'static str>, StoreError> {
    Ok(match row.get_ref(idx)? {
        ValueRef::Integer(v) => Ok(v),
        ValueRef::Real(_) => Err("REAL"),
        ValueRef::Text(_) => Err("TEXT"),
        ValueRef::Blob(_) => Err("BLOB"),
        ValueRef::Null => Err("NULL"),
    })
}

/// A TEXT column, borrowed from the row.
fn text<'r>(row: &'r Row<'_>, idx: usize) -> Result<&'r str, StoreError> {
    row.get_ref(idx)?
        .as_str()
        .map_err(|e| StoreError::failed(format!("column {idx} is not text"), e))
}

/// `DR` → true, `CR` → false, anything else → `None`.
fn is_debit(direction: &str) -> Option<bool> {
    match direction {
        "DR" => Some(true),
        "CR" => Some(false),
        _ => None,
    }
}

/// Why a line cannot be counted: its amount is not an INTEGER, or its direction is neither
/// `DR` nor `CR`.
fn uncountable(amount: Result<i64, &'static str>, direction: &str) -> String {
    match amount {
        Err(class) => format!("amount_minor is {class}"),
        Ok(_) => format!("direction is {direction:?}"),
    }
}

/// Looks at the stop every [`CHECK_EVERY`] rows.
fn tick(seen: &mut u64, stop: &ReadStop) -> Result<(), StoreError> {
    *seen += 1;
    if (*seen).is_multiple_of(CHECK_EVERY) {
        stop.check()?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Pass 1: the tenant's lines, totalled per GL account.

/// Debits and credits of one (account, currency, layer) over all the tenant's lines.
#[derive(Debug)]
struct GlTotal {
    account: String,
    currency: String,
    layer: String,
    dr: i128,
    cr: i128,
}

#[derive(Debug, Default)]
struct LineTotals {
    /// Per (account, currency, layer), every line. Small: chart × currencies × layers.
    gl: Vec<GlTotal>,
    /// Per currency, (debits, credits) of the lines effective on or before the date.
    trial: BTreeMap<String, (i128, i128)>,
    /// Per currency, the net of 1100 over the lines effective on or before the date.
    principal: BTreeMap<String, i128>,
    /// Lines that name a loan.
    loan_lines: u64,
    /// Lines that cannot be counted (an amount that is not an INTEGER, a bad direction).
    bad_lines: Problems,
}

impl LineTotals {
    fn gl_slot(&mut self, account: &str, currency: &str, layer: &str) -> &mut GlTotal {
        let found = self
            .gl
            .iter()
            .position(|g| g.account == account && g.currency == currency && g.layer == layer);
        let i = found.unwrap_or_else(|| {
            self.gl.push(GlTotal {
                account: account.to_owned(),
                currency: currency.to_owned(),
                layer: layer.to_owned(),
                dr: 0,
                cr: 0,
            });
            self.gl.len() - 1
        });
        &mut self.gl[i]
    }

    /// The net of `account` in `currency` over every layer, on its normal side.
    fn gl_net(&self, account: &str, currency: &str, debit_normal: bool) -> i128 {
        self.gl
            .iter()
            .filter(|g| g.account == account && g.currency == currency)
            .map(|g| {
                if debit_normal {
                    g.dr - g.cr
                } else {
                    g.cr - g.dr
                }
            })
            .sum()
    }
}

/// Adds `amount` to the entry for `key` (allocating the key only the first time).
fn add_to<V: Default>(map: &mut BTreeMap<String, V>, key: &str, add: impl FnOnce(&mut V)) {
    if let Some(v) = map.get_mut(key) {
        add(v);
    } else {
        let mut v = V::default();
        add(&mut v);
        map.insert(key.to_owned(), v);
    }
}

fn line_totals(
    conn: &Connection,
    tenant: &str,
    as_of: Option<&str>,
    stop: &ReadStop,
) -> Result<LineTotals, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT account_code, currency, layer, direction, amount_minor, \
                (?2 IS NULL OR effective_at <= ?2), entry_id, sequence, loan_id IS NOT NULL \
         FROM journal_lines WHERE tenant_id = ?1",
    )?;
    let mut rows = stmt.query(params![tenant, as_of])?;
    let mut totals = LineTotals::default();
    let mut seen = 0;
    while let Some(r) = rows.next()? {
        tick(&mut seen, stop)?;
        if integer(r, 8)? == Ok(1) {
            totals.loan_lines += 1;
        }
        let (account, currency, layer) = (text(r, 0)?, text(r, 1)?, text(r, 2)?);
        let direction = text(r, 3)?;
        let (Ok(amount), Some(debit)) = (integer(r, 4)?, is_debit(direction)) else {
            let (entry, sequence) = (text(r, 6)?, integer(r, 7)?);
            let why = uncountable(integer(r, 4)?, direction);
            totals.bad_lines.push(|| {
                let sequence = sequence.map_or_else(str::to_owned, |n| n.to_string());
                format!("journal_lines entry {entry} line {sequence}: {why}")
            });
            continue;
        };
        let amount = i128::from(amount);
        let gl = totals.gl_slot(account, currency, layer);
        if debit {
            gl.dr += amount;
        } else {
            gl.cr += amount;
        }
        if integer(r, 5)? == Ok(1) {
            add_to(&mut totals.trial, currency, |(dr, cr)| {
                if debit {
                    *dr += amount;
                } else {
                    *cr += amount;
                }
            });
            if account == Account::PrincipalReceivable.code() {
                add_to(&mut totals.principal, currency, |net| {
                    *net += if debit { amount } else { -amount };
                });
            }
        }
    }
    Ok(totals)
}

// ---------------------------------------------------------------------------------------------
// Pass 2: loans and their lines, merged in loan_id order.

#[derive(Debug, Default)]
struct LoanTotals {
    /// Loans with a record.
    loans: u64,
    /// Loan lines read (each through its loan's `loan_entries` row).
    lines: u64,
    /// Per currency, the stored balances of 1100, 1200, 1300 and 2100 summed over loans.
    stored: BTreeMap<String, [i128; 4]>,
    /// Per currency, the 1100 net of loan lines effective on or before the date.
    principal_as_of: BTreeMap<String, i128>,
    /// Loans whose record differs from their lines (or has no lines, or lines but no record).
    mismatched: Problems,
    /// Stored balances that are not INTEGERs (they cannot be summed).
    bad_values: Problems,
}

/// One `loans` row.
#[derive(Debug)]
struct StoredLoan {
    loan_id: String,
    currency: String,
    balances: [Result<i64, &'static str>; FIELDS],
}

/// One loan's balances replayed from its lines.
#[derive(Debug, Default)]
struct ReplayedLoan {
    loan_id: String,
    lines: Replay,
    bad_lines: usize,
}

fn next_stored(rows: &mut Rows<'_>) -> Result<Option<StoredLoan>, StoreError> {
    let Some(r) = rows.next()? else {
        return Ok(None);
    };
    let mut balances = [Err("NULL"); FIELDS];
    for (i, b) in balances.iter_mut().enumerate() {
        *b = integer(r, i + 2)?;
    }
    Ok(Some(StoredLoan {
        loan_id: text(r, 0)?.to_owned(),
        currency: text(r, 1)?.to_owned(),
        balances,
    }))
}

impl LoanTotals {
    /// Compares one stored loan with its replay (zero when it has no lines).
    fn compare(&mut self, stored: &StoredLoan, replayed: Option<&ReplayedLoan>) {
        self.loans += 1;
        let mut values = [0i64; FIELDS];
        for (i, b) in stored.balances.iter().enumerate() {
            match b {
                Ok(v) => values[i] = *v,
                Err(class) => self.bad_values.push(|| {
                    format!(
                        "loans.{} is {class} for loan {}",
                        LOAN_COLUMNS[i], stored.loan_id
                    )
                }),
            }
        }
        let sums = self.stored.entry(stored.currency.clone()).or_default();
        for (sum, v) in sums.iter_mut().zip(values) {
            *sum += i128::from(v);
        }
        let replay = replayed.map_or([0; FIELDS], |r| r.lines.sums());
        if values.map(i128::from) != replay {
            self.mismatched.push(|| {
                format!(
                    "loan {}: stored {values:?} != lines {replay:?}",
                    stored.loan_id
                )
            });
        }
    }

    /// A replayed loan is finished: compares every stored loan up to it.
    fn finish(
        &mut self,
        replayed: &ReplayedLoan,
        ahead: &mut Option<StoredLoan>,
        rows: &mut Rows<'_>,
    ) -> Result<(), StoreError> {
        loop {
            match ahead.take() {
                Some(s) if s.loan_id < replayed.loan_id => {
                    self.compare(&s, None);
                    *ahead = next_stored(rows)?;
                }
                Some(s) if s.loan_id == replayed.loan_id => {
                    self.compare(&s, Some(replayed));
                    *ahead = next_stored(rows)?;
                    break;
                }
                later => {
                    *ahead = later;
                    self.mismatched
                        .push(|| format!("loan {} has lines but no loan record", replayed.loan_id));
                    break;
                }
            }
        }
        if replayed.bad_lines > 0 {
            self.mismatched.push(|| {
                format!(
                    "loan {}: {} lines cannot be counted",
                    replayed.loan_id, replayed.bad_lines
                )
            });
        }
        Ok(())
    }
}

/// Each loan line of tenant `?1` in `loan_id` order, with what its entry is about (a reversal:
/// the reversed entry's type), which the one loan projection (`ledger::loan::effects`) needs.
/// Since schema V9 the lines are reached through `loan_entries` (its primary key is in loan
/// order, and each row says where in its entry the loan's lines are); a file written before
/// (which `hpts verify` reads as it is) still has the `journal_lines_loan` index instead.
fn loan_lines_sql(conn: &Connection) -> Result<&'static str, StoreError> {
    Ok(
        if crate::store::pragmas::has_column(conn, "loan_entries", "first_line")? {
            concat!(
                "SELECT le.loan_id, l.account_code, l.direction, l.amount_minor, \
                        (?2 IS NULL OR l.effective_at <= ?2), l.currency, coalesce(o.event_type, e.event_type) ",
                loan_lines_from!(),
                " WHERE le.tenant_id = ?1 ORDER BY le.loan_id, le.entry_seq"
            )
        } else {
            "SELECT l.loan_id, l.account_code, l.direction, l.amount_minor, \
                    (?2 IS NULL OR l.effective_at <= ?2), l.currency, coalesce(o.event_type, e.event_type) \
             FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
             LEFT JOIN journal_entries o ON o.entry_id = e.reverses_entry_id \
             WHERE l.tenant_id = ?1 AND l.loan_id IS NOT NULL ORDER BY l.loan_id"
        },
    )
}

/// Streams the tenant's loans and its loan lines, both in `loan_id` order (the `loans` and
/// `loan_entries` primary keys, so neither needs a sort), and compares each loan with the
/// replay of its lines as soon as its last line is read. The lines read are counted: the
/// materialised check compares that with every loan line of the tenant, so a line outside its
/// loan's `loan_entries` range cannot escape the replay.
fn loan_totals(
    conn: &Connection,
    tenant: &str,
    as_of: Option<&str>,
    stop: &ReadStop,
) -> Result<LoanTotals, StoreError> {
    // A file written before the lifecycle (schema V4 and older, which `hpts verify` reads as
    // it is) has no charge-off figures: nothing was ever charged off or recovered there.
    let lifecycle = crate::store::pragmas::has_column(conn, "loans", "charged_off_minor")?;
    let figures = if lifecycle {
        "charged_off_minor, recovered_minor"
    } else {
        "0, 0"
    };
    let mut loans_stmt = conn.prepare(&format!(
        "SELECT loan_id, currency, principal_minor, interest_minor, fees_minor, suspense_minor, \
         disbursed_total_minor, paid_total_minor, {figures} \
         FROM loans WHERE tenant_id = ?1 ORDER BY loan_id"
    ))?;
    let mut lines_stmt = conn.prepare(loan_lines_sql(conn)?)?;
    let mut stored_rows = loans_stmt.query(params![tenant])?;
    let mut lines = lines_stmt.query(params![tenant, as_of])?;
    let mut totals = LoanTotals::default();
    let mut ahead = next_stored(&mut stored_rows)?;
    let mut current: Option<ReplayedLoan> = None;
    let mut seen = 0;
    while let Some(r) = lines.next()? {
        tick(&mut seen, stop)?;
        totals.lines += 1;
        let loan_id = text(r, 0)?;
        if current.as_ref().is_none_or(|c| c.loan_id != loan_id) {
            if let Some(done) = current.take() {
                totals.finish(&done, &mut ahead, &mut stored_rows)?;
            }
            current = Some(ReplayedLoan {
                loan_id: loan_id.to_owned(),
                ..ReplayedLoan::default()
            });
        }
        let Some(replay) = current.as_mut() else {
            continue;
        };
        let (Ok(amount), Some(debit), Some(kind)) = (
            integer(r, 3)?,
            is_debit(text(r, 2)?),
            EventType::parse(text(r, 6)?),
        ) else {
            replay.bad_lines += 1;
            continue;
        };
        let Some(account) = Account::from_code(text(r, 1)?) else {
            continue;
        };
        let direction = if debit { Direction::Dr } else { Direction::Cr };
        let principal = replay.lines.add(account, direction, kind, amount);
        if let Some(principal) = principal
            && integer(r, 4)? == Ok(1)
        {
            add_to(&mut totals.principal_as_of, text(r, 5)?, |net| {
                *net += principal;
            });
        }
    }
    if let Some(done) = current.take() {
        totals.finish(&done, &mut ahead, &mut stored_rows)?;
    }
    while let Some(s) = ahead.take() {
        tick(&mut seen, stop)?;
        totals.compare(&s, None);
        ahead = next_stored(&mut stored_rows)?;
    }
    Ok(totals)
}

// ---------------------------------------------------------------------------------------------
// Pass 3: the materialised GL balances.

/// One `account_balances` row.
#[derive(Debug)]
struct StoredGl {
    account: String,
    currency: String,
    layer: String,
    dr: Result<i64, &'static str>,
    cr: Result<i64, &'static str>,
}

fn stored_gl(conn: &Connection, tenant: &str) -> Result<Vec<StoredGl>, StoreError> {
    let mut stmt = conn.prepare(
        "SELECT account_code, currency, layer, dr_minor, cr_minor FROM account_balances \
         WHERE tenant_id = ?1",
    )?;
    let mut rows = stmt.query(params![tenant])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(StoredGl {
            account: text(r, 0)?.to_owned(),
            currency: text(r, 1)?.to_owned(),
            layer: text(r, 2)?.to_owned(),
            dr: integer(r, 3)?,
            cr: integer(r, 4)?,
        });
    }
    Ok(out)
}

// ---------------------------------------------------------------------------------------------
// Pass 4: entries with their lines (balance and hash chain), in posting order.

#[derive(Debug, Default)]
struct EntryWalk {
    entries: u64,
    unbalanced: Problems,
    chain: Problems,
}

/// One journal line as read for the chain.
#[derive(Debug)]
struct LineRow {
    sequence: Result<i64, &'static str>,
    account_code: String,
    direction: String,
    amount_minor: Result<i64, &'static str>,
    currency: String,
    layer: String,
    loan_id: Option<String>,
    borrower_id: Option<String>,
    external_ref: Option<String>,
}

fn read_line(l: &Row<'_>) -> Result<LineRow, StoreError> {
    Ok(LineRow {
        sequence: integer(l, 0)?,
        account_code: l.get(1)?,
        direction: l.get(2)?,
        amount_minor: integer(l, 3)?,
        currency: l.get(4)?,
        layer: l.get(5)?,
        loan_id: l.get(6)?,
        borrower_id: l.get(7)?,
        external_ref: l.get(8)?,
    })
}

/// What is wrong with an entry's lines: too few of them, not the number declared, or
/// currencies whose debits and credits differ (summed in `i128`); `None` when nothing is.
fn entry_problem(lines: &[LineRow], declared: Result<i64, &'static str>) -> Option<String> {
    let mut net: Vec<(&str, i128)> = Vec::new();
    for l in lines {
        let (Ok(amount), Some(debit)) = (l.amount_minor, is_debit(&l.direction)) else {
            let sequence = l.sequence.map_or_else(str::to_owned, |n| n.to_string());
            return Some(format!(
                "line {sequence}: {}",
                uncountable(l.amount_minor, &l.direction)
            ));
        };
        let signed = if debit {
            i128::from(amount)
        } else {
            -i128::from(amount)
        };
        match net.iter_mut().find(|(c, _)| *c == l.currency) {
            Some((_, n)) => *n += signed,
            None => net.push((l.currency.as_str(), signed)),
        }
    }
    let actual = lines.len();
    let count_ok = actual >= 2 && declared.is_ok_and(|d| usize::try_from(d) == Ok(actual));
    if !count_ok {
        let declared = declared.map_or_else(str::to_owned, |d| d.to_string());
        return Some(format!("{actual} lines, {declared} declared"));
    }
    let unbalanced: Vec<&str> = net
        .iter()
        .filter(|(_, n)| *n != 0)
        .map(|(c, _)| *c)
        .collect();
    (!unbalanced.is_empty())
        .then(|| format!("debits differ from credits in {}", unbalanced.join(", ")))
}

/// The entry's hash recomputed over `lines`, or why it cannot be.
fn recomputed_hash(
    prev: &str,
    entry: &ChainedEntry<'_>,
    lines: &[LineRow],
) -> Result<String, String> {
    let mut chained = Vec::with_capacity(lines.len());
    for l in lines {
        let (Ok(sequence), Ok(amount_minor)) = (l.sequence, l.amount_minor) else {
            return Err(format!(
                "entry {} cannot be hashed: a line's sequence or amount_minor is not an INTEGER",
                entry.entry_id
            ));
        };
        chained.push(ChainedLine {
            sequence,
            account_code: &l.account_code,
            direction: &l.direction,
            amount_minor,
            currency: &l.currency,
            layer: &l.layer,
            loan_id: l.loan_id.as_deref(),
            borrower_id: l.borrower_id.as_deref(),
            external_ref: l.external_ref.as_deref(),
        });
    }
    Ok(chain::entry_hash(prev, entry, &chained))
}

fn walk_entries(conn: &Connection, tenant: &str, stop: &ReadStop) -> Result<EntryWalk, StoreError> {
    let mut walk = EntryWalk::default();
    let mut entries = conn.prepare(
        "SELECT entry_id, event_id, event_type, effective_at, posted_at, correlation_id, \
         reverses_entry_id, metadata, prev_hash, hash, line_count \
         FROM journal_entries WHERE tenant_id = ?1 ORDER BY entry_seq",
    )?;
    let mut lines_stmt = conn.prepare(
        "SELECT sequence, account_code, direction, amount_minor, currency, layer, loan_id, \
         borrower_id, external_ref FROM journal_lines WHERE entry_id = ?1 ORDER BY sequence",
    )?;
    let mut rows = entries.query(params![tenant])?;
    let mut expected_prev = chain::GENESIS.to_owned();
    let mut seen = 0;
    while let Some(r) = rows.next()? {
        walk.entries += 1;
        let e: [Option<String>; 10] = [
            r.get(0)?,
            r.get(1)?,
            r.get(2)?,
            r.get(3)?,
            r.get(4)?,
            r.get(5)?,
            r.get(6)?,
            r.get(7)?,
            r.get(8)?,
            r.get(9)?,
        ];
        let declared = integer(r, 10)?;
        let s = |i: usize| e[i].as_deref().unwrap_or_default();
        let mut lines = Vec::new();
        let mut line_rows = lines_stmt.query(params![s(0)])?;
        while let Some(l) = line_rows.next()? {
            tick(&mut seen, stop)?;
            lines.push(read_line(l)?);
        }
        if let Some(why) = entry_problem(&lines, declared) {
            walk.unbalanced
                .push(|| format!("entry {} does not balance: {why}", s(0)));
        }
        let entry = ChainedEntry {
            entry_id: s(0),
            tenant_id: tenant,
            event_id: s(1),
            event_type: s(2),
            effective_at: s(3),
            posted_at: s(4),
            correlation_id: s(5),
            reverses_entry_id: e[6].as_deref(),
            metadata: e[7].as_deref(),
        };
        if s(8) != expected_prev {
            walk.chain
                .push(|| format!("entry {} does not link to its predecessor", s(0)));
        }
        match recomputed_hash(&expected_prev, &entry, &lines) {
            Ok(computed) if computed == s(9) => {}
            Ok(_) => walk
                .chain
                .push(|| format!("entry {} content does not match its hash", s(0))),
            Err(why) => walk.chain.push(|| why),
        }
        s(9).clone_into(&mut expected_prev);
    }
    let orphans: i64 = conn.query_row(
        "SELECT count(*) FROM journal_lines l WHERE l.tenant_id = ?1 \
         AND NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.entry_id = l.entry_id)",
        params![tenant],
        |r| r.get(0),
    )?;
    if orphans > 0 {
        walk.unbalanced
            .push(|| format!("{orphans} lines belong to no entry"));
    }
    Ok(walk)
}

// ---------------------------------------------------------------------------------------------
// Pass 5: the schema's append-only guards.

/// How many append-only triggers the schema must have, and which of them are missing.
fn missing_guards(conn: &Connection) -> Result<(usize, Vec<&'static str>), StoreError> {
    let mut stmt =
        conn.prepare("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?1")?;
    let mut missing = Vec::new();
    // Period closes are guarded too, once the schema has them (`hpts verify` also reads files
    // written before month-end existed).
    let closes: &[&'static str] = if crate::store::trial_balance::has_period_closes(conn)? {
        &PERIOD_CLOSE_TRIGGERS
    } else {
        &[]
    };
    for trigger in APPEND_ONLY_TRIGGERS.iter().chain(closes) {
        if !stmt.exists(params![trigger])? {
            missing.push(*trigger);
        }
    }
    Ok((APPEND_ONLY_TRIGGERS.len() + closes.len(), missing))
}

/// The append-only guards of `period_closes` (migration V6).
const PERIOD_CLOSE_TRIGGERS: [&str; 2] = ["period_closes_no_update", "period_closes_no_delete"];

// ---------------------------------------------------------------------------------------------
// Pass 6: the period closes.

/// Every period close whose stored trial balance differs from the one recomputed as of its
/// `through_date`, and how many closes were compared.
fn closes_recomputed(conn: &Connection, tenant: &str) -> Result<(usize, Problems), StoreError> {
    let mut problems = Problems::default();
    let closes = crate::store::trial_balance::stored_closes(conn, tenant)?;
    for (id, through, stored) in &closes {
        let Ok(stored) = serde_json::from_str::<serde_json::Value>(stored) else {
            problems.push(|| format!("close {id} ({through}): stored trial balance is not JSON"));
            continue;
        };
        let mut totals = crate::store::trial_balance::totals_as_of(conn, tenant, through)?;
        let mut recomputed = Vec::new();
        for item in stored.as_array().map_or(&[][..], Vec::as_slice) {
            let Some(currency) = item["currency"].as_str().and_then(Currency::parse) else {
                problems.push(|| format!("close {id} ({through}): a currency is malformed"));
                continue;
            };
            let tb =
                TrialBalance::from_totals(currency, totals.remove(&currency).unwrap_or_default());
            recomputed.push(serde_json::to_value(tb.closing()).unwrap_or_default());
        }
        for currency in totals.keys() {
            problems.push(|| {
                format!(
                    "close {id} ({through}): {currency} is missing from the stored trial balance"
                )
            });
        }
        if serde_json::Value::Array(recomputed) != stored {
            problems.push(|| {
                format!("close {id} ({through}): the trial balance recomputed as of {through} differs from the one stored")
            });
        }
    }
    Ok((closes.len(), problems))
}

fn closes_check(closes: &Pass<(usize, Problems)>) -> Check {
    const NAME: &str = "closed_periods_unchanged";
    match closes {
        Err(why) => uncomputable(NAME, &[why]),
        Ok((count, found)) => {
            let mut problems = Problems::default();
            problems.extend(found);
            problems.into_check(NAME, || {
                format!("{count} period closes recompute to their stored trial balances")
            })
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The checks, from the passes.

fn trial_balance_check(lines: &Pass<LineTotals>) -> Check {
    const NAME: &str = "trial_balance";
    let lines = match lines {
        Ok(l) => l,
        Err(why) => return uncomputable(NAME, &[why]),
    };
    let mut problems = Problems::default();
    problems.extend(&lines.bad_lines);
    for (currency, (dr, cr)) in &lines.trial {
        if dr != cr {
            problems.push(|| format!("{currency}: debits {dr} != credits {cr}"));
        }
    }
    problems.into_check(NAME, || {
        format!("debits equal credits in {} currencies", lines.trial.len())
    })
}

fn entries_balanced_check(entries: &Pass<EntryWalk>) -> Check {
    const NAME: &str = "entries_balanced";
    match entries {
        Err(why) => uncomputable(NAME, &[why]),
        Ok(walk) => {
            let mut problems = Problems::default();
            problems.extend(&walk.unbalanced);
            problems.into_check(NAME, || format!("{} entries balanced", walk.entries))
        }
    }
}

fn subledger_check(
    lines: &Pass<LineTotals>,
    loans: &Pass<LoanTotals>,
    mismatched: &mut BTreeSet<(String, String)>,
) -> Check {
    const NAME: &str = "loan_subledger_matches_gl";
    let (lines, loans) = match (lines, loans) {
        (Ok(l), Ok(s)) => (l, s),
        (l, s) => {
            let reasons: Vec<&String> = [l.as_ref().err(), s.as_ref().err()]
                .into_iter()
                .flatten()
                .collect();
            return uncomputable(NAME, &reasons);
        }
    };
    let mut problems = Problems::default();
    problems.extend(&lines.bad_lines);
    problems.extend(&loans.bad_values);
    for (i, control) in Account::LOAN_CONTROL.into_iter().enumerate() {
        let account = control.code();
        let debit_normal = control.normal_side() == Direction::Dr;
        let currencies: BTreeSet<&str> = loans
            .stored
            .keys()
            .map(String::as_str)
            .chain(
                lines
                    .gl
                    .iter()
                    .filter(|g| g.account == account)
                    .map(|g| g.currency.as_str()),
            )
            .collect();
        for currency in currencies {
            let gl = lines.gl_net(account, currency, debit_normal);
            let sub = loans.stored.get(currency).map_or(0, |s| s[i]);
            if gl != sub {
                problems.push(|| format!("{account} {currency}: GL {gl} != sum of loans {sub}"));
                mismatched.insert((account.to_owned(), currency.to_owned()));
            }
        }
    }
    problems.into_check(NAME, || {
        format!("{} loans agree with 1100, 1200, 1300 and 2100", loans.loans)
    })
}

fn materialised_check(
    lines: &Pass<LineTotals>,
    loans: &Pass<LoanTotals>,
    stored: &Pass<Vec<StoredGl>>,
    mismatched: &mut BTreeSet<(String, String)>,
) -> Check {
    const NAME: &str = "materialised_balances_match_lines";
    let (lines, loans, stored) = match (lines, loans, stored) {
        (Ok(l), Ok(s), Ok(g)) => (l, s, g),
        (l, s, g) => {
            let reasons: Vec<&String> = [l.as_ref().err(), s.as_ref().err(), g.as_ref().err()]
                .into_iter()
                .flatten()
                .collect();
            return uncomputable(NAME, &reasons);
        }
    };
    let mut problems = Problems::default();
    problems.extend(&lines.bad_lines);
    for row in stored {
        let key = format!("{} {} {}", row.account, row.currency, row.layer);
        let replay = lines
            .gl
            .iter()
            .find(|g| {
                g.account == row.account && g.currency == row.currency && g.layer == row.layer
            })
            .map_or((0, 0), |g| (g.dr, g.cr));
        let values = match (row.dr, row.cr) {
            (Ok(dr), Ok(cr)) => (i128::from(dr), i128::from(cr)),
            (dr, cr) => {
                for (column, value) in [("dr_minor", dr), ("cr_minor", cr)] {
                    if let Err(class) = value {
                        problems.push(|| format!("account_balances.{column} is {class} for {key}"));
                    }
                }
                mismatched.insert((row.account.clone(), row.currency.clone()));
                continue;
            }
        };
        if values != replay {
            problems.push(|| {
                format!(
                    "account {key}: stored {}/{} != lines {}/{}",
                    values.0, values.1, replay.0, replay.1
                )
            });
            mismatched.insert((row.account.clone(), row.currency.clone()));
        }
    }
    for g in &lines.gl {
        let has_row = stored
            .iter()
            .any(|s| s.account == g.account && s.currency == g.currency && s.layer == g.layer);
        if !has_row && (g.dr, g.cr) != (0, 0) {
            problems.push(|| {
                format!(
                    "account {} {} {}: no stored balance != lines {}/{}",
                    g.account, g.currency, g.layer, g.dr, g.cr
                )
            });
            mismatched.insert((g.account.clone(), g.currency.clone()));
        }
    }
    problems.extend(&loans.bad_values);
    problems.extend(&loans.mismatched);
    if lines.loan_lines != loans.lines {
        problems.push(|| {
            format!(
                "{} lines name a loan but {} are listed in their loan's entries (loan_entries)",
                lines.loan_lines, loans.lines
            )
        });
    }
    problems.into_check(NAME, || {
        format!(
            "{} account balances and {} loans replayed",
            stored.len(),
            loans.loans
        )
    })
}

fn chain_check(entries: &Pass<EntryWalk>) -> Check {
    const NAME: &str = "hash_chain_intact";
    match entries {
        Err(why) => uncomputable(NAME, &[why]),
        Ok(walk) => {
            let mut problems = Problems::default();
            problems.extend(&walk.chain);
            problems.into_check(NAME, || format!("{} entries chained", walk.entries))
        }
    }
}

fn guard_check(guards: &Pass<(usize, Vec<&'static str>)>) -> Check {
    const NAME: &str = "append_only_guard_present";
    match guards {
        Err(why) => uncomputable(NAME, &[why]),
        Ok((required, missing)) => {
            let mut problems = Problems::default();
            for trigger in missing {
                problems.push(|| format!("trigger {trigger} is missing"));
            }
            problems.into_check(NAME, || format!("{required} append-only triggers present"))
        }
    }
}

/// GL 1100 against the loans' principal, per currency: the stored principal now, or the loan
/// lines replayed as of the date.
fn rollup(lines: &Pass<LineTotals>, loans: &Pass<LoanTotals>, as_of: bool) -> Rollup {
    let (lines, loans) = match (lines, loans) {
        (Ok(l), Ok(s)) => (l, s),
        (l, s) => {
            let reasons: Vec<&str> = [l.as_ref().err(), s.as_ref().err()]
                .into_iter()
                .flatten()
                .map(String::as_str)
                .collect();
            return Rollup {
                currencies: Vec::new(),
                problem: Some(reasons.join("; ")),
            };
        }
    };
    let loan_principal: BTreeMap<&str, i128> = if as_of {
        loans
            .principal_as_of
            .iter()
            .map(|(c, p)| (c.as_str(), *p))
            .collect()
    } else {
        loans
            .stored
            .iter()
            .map(|(c, s)| (c.as_str(), s[0]))
            .collect()
    };
    let currencies: BTreeSet<&str> = lines
        .principal
        .keys()
        .map(String::as_str)
        .chain(loan_principal.keys().copied())
        .collect();
    let problem = (lines.bad_lines.total > 0 || (!as_of && loans.bad_values.total > 0))
        .then(|| "some amounts or balances are not INTEGERs".to_owned());
    Rollup {
        currencies: currencies
            .into_iter()
            .map(|c| CurrencyRollup {
                currency: c.to_owned(),
                gl_principal_minor: lines.principal.get(c).copied().unwrap_or(0),
                sum_of_loan_balances_minor: loan_principal.get(c).copied().unwrap_or(0),
            })
            .collect(),
        problem,
    }
}

/// Every tenant in the database (for `hpts verify`).
pub fn tenants(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT tenant_id FROM tenants ORDER BY tenant_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    //! The checks on a real store (writer thread, migrations, a database file), tampered with
    //! through a second connection the way someone with the file could.

    use std::path::PathBuf;

    use clap::Parser;
    use rusqlite::OpenFlags;
    use uuid::Uuid;

    use super::*;
    use crate::clock::Sources;
    use crate::config::{Cli, Command as CliCommand, Settings};
    use crate::ledger::commands::{Command, Disbursement, DisbursementMethod};
    use crate::ledger::ids::{BorrowerId, LoanId, TenantId};
    use crate::ledger::money::{Currency, Money};
    use crate::store::{Store, WriteOutcome, WriteRequest};

    struct Fixture {
        _dir: tempfile::TempDir,
        path: PathBuf,
        store: Store,
        tenant: TenantId,
    }

    /// A loan id that sorts by `n`.
    fn loan(n: u128) -> LoanId {
        LoanId::from_uuid(Uuid::from_u128(
            0x0190_0000_0000_7000_8000_0000_0000_0000 + n,
        ))
    }

    impl Fixture {
        /// A fresh database, opened with the production settings of a test command line.
        fn new() -> Fixture {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("ledger.db");
            let db = path.display().to_string();
            let cli = Cli::try_parse_from([
                "hpts",
                "serve",
                "--database",
                &db,
                "--auth-issuer",
                "https://issuer.test",
                "--auth-audience",
                "hpts-test",
                "--auth-jwks",
                "/nonexistent/jwks.json",
            ])
            .expect("arguments");
            let CliCommand::Serve(args) = cli.command else {
                panic!("not serve")
            };
            let settings = Settings::from_args(&args).expect("settings");
            let store = Store::open(&settings.store, Sources::default()).expect("store");
            Fixture {
                _dir: dir,
                path,
                store,
                tenant: TenantId::from_uuid(Uuid::from_u128(42)),
            }
        }

        async fn disburse(&self, loan_id: LoanId, amount: i64, currency: &str) {
            let request = WriteRequest {
                tenant: self.tenant,
                actor: None,
                route: "POST /v1/disbursements",
                idempotency_key: format!("disb-{loan_id}-{amount}"),
                payload: format!("{{\"loan\":\"{loan_id}\",\"amount\":{amount}}}"),
                metadata: None,
                traceparent: None,
                command: Command::Disburse(Disbursement {
                    loan_id,
                    borrower_id: BorrowerId::from_uuid(Uuid::from_u128(7)),
                    amount: Money::from_minor(amount),
                    currency: Currency::parse(currency).expect("currency"),
                    effective_at: crate::clock::parse_date("2026-01-10").expect("date"),
                    method: DisbursementMethod::Ach,
                    destination_ref: None,
                }),
            };
            let outcome = self.store.write(request).await.expect("written");
            assert!(matches!(outcome, WriteOutcome::Created(_)));
        }

        /// Runs SQL on the file behind the service's back.
        fn tamper(&self, sql: &str) {
            let conn = Connection::open(&self.path).expect("open");
            conn.busy_timeout(std::time::Duration::from_secs(5))
                .expect("busy timeout");
            conn.execute_batch(sql).expect("tamper");
        }

        fn reconcile_with(&self, stop: &ReadStop) -> Result<Reconciliation, StoreError> {
            let conn = Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                .expect("open read-only");
            reconcile(&conn, &self.tenant.to_string(), None, stop)
        }

        fn reconcile(&self) -> Reconciliation {
            self.reconcile_with(&ReadStop::new()).expect("reconciled")
        }
    }

    fn check<'r>(report: &'r Reconciliation, name: &str) -> &'r Check {
        report
            .checks
            .iter()
            .find(|c| c.name == name)
            .unwrap_or_else(|| panic!("no check {name}: {report:?}"))
    }

    /// Asserts the named checks fail and every other check holds.
    fn assert_failing(report: &Reconciliation, failing: &[&str]) {
        assert_eq!(report.checks.len(), 7, "{report:?}");
        for c in &report.checks {
            assert_eq!(
                c.ok,
                !failing.contains(&c.name),
                "{}: {}\n{report:#?}",
                c.name,
                c.detail
            );
        }
    }

    #[tokio::test]
    async fn a_clean_ledger_passes_every_check_and_rolls_up_each_currency_on_its_own() {
        let fx = Fixture::new();
        fx.disburse(loan(1), 100_000, "USD").await;
        fx.disburse(loan(2), 2_500, "EUR").await;
        fx.disburse(loan(3), 40_000, "USD").await;
        let report = fx.reconcile();
        assert_failing(&report, &[]);
        assert_eq!(report.entries_checked, 3);
        assert_eq!(report.mismatched_account_count, 0);
        assert!(report.rollup.ok(), "{:?}", report.rollup);
        let per_currency: Vec<(&str, i128, i128)> = report
            .rollup
            .currencies
            .iter()
            .map(|c| {
                (
                    c.currency.as_str(),
                    c.gl_principal_minor,
                    c.sum_of_loan_balances_minor,
                )
            })
            .collect();
        assert_eq!(
            per_currency,
            [("EUR", 2_500, 2_500), ("USD", 140_000, 140_000)]
        );
        assert_eq!(report.rollup.gl_principal_minor(), 142_500);
    }

    #[test]
    fn the_loan_lines_are_read_in_loan_order_by_primary_keys_without_a_sort() {
        let fx = Fixture::new();
        let conn = Connection::open_with_flags(&fx.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open read-only");
        let sql = loan_lines_sql(&conn).expect("sql");
        let plan = crate::store::query_plan(&conn, sql, params!["t", Option::<String>::None]);
        assert!(
            plan.contains("SEARCH le USING PRIMARY KEY (tenant_id=?)"),
            "{plan}"
        );
        assert!(
            !plan.contains("SCAN") && !plan.contains("TEMP B-TREE"),
            "{plan}"
        );
    }

    #[tokio::test]
    async fn a_loan_line_outside_its_loans_entry_range_fails_the_materialised_check() {
        let fx = Fixture::new();
        fx.disburse(loan(1), 100_000, "USD").await;
        fx.disburse(loan(2), 5_000, "USD").await;
        assert_failing(&fx.reconcile(), &[]);
        // Loan 2's link to its entry now says its lines start after the last one: the replay
        // reads none of them. Balances, chain and trial balance are untouched.
        fx.tamper(&format!(
            "DROP TRIGGER loan_entries_no_update; \
             UPDATE loan_entries SET first_line = 3, last_line = 3 \
             WHERE tenant_id = '{}' AND loan_id = '{}'; \
             CREATE TRIGGER loan_entries_no_update BEFORE UPDATE ON loan_entries \
             BEGIN SELECT RAISE(ABORT, 'loan_entries is append-only'); END;",
            fx.tenant,
            loan(2)
        ));
        let report = fx.reconcile();
        assert_failing(&report, &["materialised_balances_match_lines"]);
        let detail = &check(&report, "materialised_balances_match_lines").detail;
        assert!(
            detail.contains("4 lines name a loan but 2 are listed in their loan's entries"),
            "{detail}"
        );
        assert!(detail.contains(&loan(2).to_string()), "{detail}");
    }

    #[tokio::test]
    async fn a_real_stored_total_fails_only_the_materialised_check_and_names_the_column() {
        let fx = Fixture::new();
        fx.disburse(loan(1), 100_000, "USD").await;
        // What an older release (before V4's typeof CHECKs) left behind when a total
        // overflowed: a REAL in an INTEGER column. Today's schema refuses it, so the CHECK is
        // switched off for this edit, as someone with the file can.
        fx.tamper(&format!(
            "PRAGMA ignore_check_constraints = ON; UPDATE account_balances SET dr_minor = 9.3e18 \
             WHERE tenant_id = '{}' AND account_code = '1100'",
            fx.tenant
        ));
        let report = fx.reconcile();
        assert_failing(&report, &["materialised_balances_match_lines"]);
        let detail = &check(&report, "materialised_balances_match_lines").detail;
        assert!(
            detail.contains("account_balances.dr_minor is REAL for 1100 USD SETTLED"),
            "{detail}"
        );
        assert_eq!(report.mismatched_account_count, 1);
    }

    #[tokio::test]
    async fn a_check_whose_query_cannot_run_fails_with_its_reason_and_the_other_checks_still_run() {
        let fx = Fixture::new();
        fx.disburse(loan(1), 100_000, "USD").await;
        fx.tamper("DROP TABLE account_balances");
        let report = fx.reconcile();
        assert_failing(&report, &["materialised_balances_match_lines"]);
        let detail = &check(&report, "materialised_balances_match_lines").detail;
        assert!(
            detail.starts_with("could not be computed: account balances:")
                && detail.contains("no such table: account_balances"),
            "{detail}"
        );
        assert!(report.rollup.ok(), "the roll-up does not need that table");
    }

    #[tokio::test]
    async fn line_sums_beyond_i64_are_computed_exactly_instead_of_failing_the_reconciliation() {
        let fx = Fixture::new();
        fx.disburse(loan(1), 100_000, "USD").await;
        fx.disburse(loan(2), 200_000, "USD").await;
        // Two principal lines of 5·10^18: their sum (10^19) is beyond i64, where SQLite's
        // sum() raises "integer overflow". The trigger is put back, so only the numbers differ.
        fx.tamper(
            "DROP TRIGGER journal_lines_no_update; \
             UPDATE journal_lines SET amount_minor = 5000000000000000000 WHERE account_code = '1100'; \
             CREATE TRIGGER journal_lines_no_update BEFORE UPDATE ON journal_lines \
             BEGIN SELECT RAISE(ABORT, 'journal_lines is append-only'); END;",
        );
        let report = fx.reconcile();
        assert_failing(
            &report,
            &[
                "trial_balance",
                "entries_balanced",
                "loan_subledger_matches_gl",
                "materialised_balances_match_lines",
                "hash_chain_intact",
            ],
        );
        let detail = &check(&report, "trial_balance").detail;
        assert_eq!(detail, "USD: debits 10000000000000000000 != credits 300000");
        assert_eq!(
            report.rollup.gl_principal_minor(),
            10_000_000_000_000_000_000
        );
        assert_eq!(report.rollup.sum_of_loan_balances_minor(), 300_000);
        assert!(!report.rollup.ok());
    }

    #[tokio::test]
    async fn loans_without_lines_and_lines_without_a_loan_record_are_reported_wherever_they_sort() {
        let fx = Fixture::new();
        for n in [2, 4, 6] {
            fx.disburse(loan(n), 1_000, "USD").await;
        }
        // Loan 4 loses its record; loans 1, 5 and 7 (first, middle, last) have no lines.
        let tenant = fx.tenant;
        let fake = |n: u128| {
            format!(
                "INSERT INTO loans (tenant_id, loan_id, borrower_id, currency, opened_at, \
                 principal_minor, last_activity_at) VALUES ('{tenant}', '{}', '{}', 'USD', \
                 '2026-01-10', 500, '2026-01-10');",
                loan(n),
                Uuid::from_u128(7)
            )
        };
        fx.tamper(&format!(
            "DELETE FROM loans WHERE loan_id = '{}'; {} {} {}",
            loan(4),
            fake(1),
            fake(5),
            fake(7)
        ));
        let report = fx.reconcile();
        let detail = &check(&report, "materialised_balances_match_lines").detail;
        assert!(
            detail.contains(&format!("loan {} has lines but no loan record", loan(4))),
            "{detail}"
        );
        for n in [1, 5, 7] {
            assert!(
                detail.contains(&format!(
                    "loan {}: stored [500, 0, 0, 0, 0, 0, 0, 0] != lines [0, 0, 0, 0, 0, 0, 0, 0]",
                    loan(n)
                )),
                "{n}: {detail}"
            );
        }
        for n in [2, 6] {
            assert!(!detail.contains(&loan(n).to_string()), "{n}: {detail}");
        }
        assert_eq!(
            check(&report, "loan_subledger_matches_gl").detail,
            "1100 USD: GL 3000 != sum of loans 3500"
        );
    }

    #[tokio::test]
    async fn a_stopped_reconciliation_ends_with_cancelled_and_reports_nothing() {
        let fx = Fixture::new();
        fx.disburse(loan(1), 100_000, "USD").await;
        let stop = ReadStop::new();
        stop.raise();
        assert!(matches!(
            fx.reconcile_with(&stop),
            Err(StoreError::Cancelled)
        ));
    }

    #[test]
    fn a_failed_check_shows_its_first_five_problems_and_counts_the_rest() {
        let mut problems = Problems::default();
        for n in 1..=8 {
            problems.push(|| format!("p{n}"));
        }
        let c = problems.into_check("trial_balance", String::new);
        assert!(!c.ok);
        assert_eq!(c.detail, "p1; p2; p3; p4; p5 (+3 more)");
    }

    fn report(check_ok: bool, gl: i128, loans: i128) -> Reconciliation {
        Reconciliation {
            checks: vec![Check {
                name: "trial_balance",
                ok: check_ok,
                detail: String::new(),
            }],
            mismatched_account_count: 0,
            rollup: Rollup {
                currencies: vec![CurrencyRollup {
                    currency: "USD".into(),
                    gl_principal_minor: gl,
                    sum_of_loan_balances_minor: loans,
                }],
                problem: None,
            },
            entries_checked: 1,
        }
    }

    #[test]
    fn a_run_counts_as_a_failure_when_a_check_or_the_rollup_is_a_mismatch() {
        let runs = RunStats::default();
        runs.record(&report(true, 100, 100), 1_000);
        assert_eq!(runs.failures.load(Ordering::Relaxed), 0);
        assert_eq!(runs.last_run_unix.load(Ordering::Relaxed), 1_000);
        runs.record(&report(false, 100, 100), 2_000);
        runs.record(&report(true, 100, 99), 3_000);
        assert_eq!(runs.failures.load(Ordering::Relaxed), 2);
        assert_eq!(runs.last_run_unix.load(Ordering::Relaxed), 3_000);
    }
}
