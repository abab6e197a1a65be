//! The sums behind a trial balance: per account and currency, the debits and credits of a
//! tenant's lines effective on or before a date, summed exactly (`i128`, row by row, never SQL
//! arithmetic). One query for the trial-balance read, a period close and the reconciliation
//! check that recomputes stored closes; the shape is `ledger::trial_balance`.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::ledger::accounts::Account;
use crate::ledger::money::Currency;
use crate::ledger::trial_balance::TrialBalance;
use crate::store::StoreError;

/// Per currency, `(account, debits, credits)` sums.
pub(crate) type Totals = BTreeMap<Currency, Vec<(Account, i128, i128)>>;

/// Per currency (in code order), the summed `(account, debits, credits)` of the tenant's lines
/// effective on or before `date` (`YYYY-MM-DD`). Lines on an account outside the chart or in a
/// malformed currency are an error (the journal is damaged).
pub(crate) fn totals_as_of(
    conn: &Connection,
    tenant: &str,
    date: &str,
) -> Result<Totals, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT account_code, currency, direction, amount_minor FROM journal_lines \
         WHERE tenant_id = ?1 AND effective_at <= ?2",
    )?;
    let mut rows = stmt.query(params![tenant, date])?;
    let mut sums: BTreeMap<(Currency, Account), (i128, i128)> = BTreeMap::new();
    while let Some(r) = rows.next()? {
        let code: String = r.get(0)?;
        let account = Account::from_code(&code).ok_or_else(|| {
            StoreError::Invalid(format!("journal line on unknown account {code}"))
        })?;
        let currency_text: String = r.get(1)?;
        let currency = Currency::parse(&currency_text).ok_or_else(|| {
            StoreError::Invalid(format!(
                "journal line in malformed currency {currency_text}"
            ))
        })?;
        let amount = i128::from(r.get::<_, i64>(3)?);
        let slot = sums.entry((currency, account)).or_default();
        if r.get::<_, String>(2)? == "DR" {
            slot.0 += amount;
        } else {
            slot.1 += amount;
        }
    }
    let mut out = Totals::new();
    for ((currency, account), (dr, cr)) in sums {
        out.entry(currency).or_default().push((account, dr, cr));
    }
    Ok(out)
}

/// The trial balance of every currency in `currencies` as of `date`.
pub(crate) fn as_of(
    conn: &Connection,
    tenant: &str,
    date: &str,
    currencies: impl IntoIterator<Item = Currency>,
) -> Result<Vec<TrialBalance>, StoreError> {
    let mut totals = totals_as_of(conn, tenant, date)?;
    Ok(currencies
        .into_iter()
        .map(|c| TrialBalance::from_totals(c, totals.remove(&c).unwrap_or_default()))
        .collect())
}

/// Whether the schema has period closes (a file written before month-end existed has none;
/// `hpts verify` and `hpts export` read such files as they are).
pub(crate) fn has_period_closes(conn: &Connection) -> Result<bool, StoreError> {
    Ok(conn
        .prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'period_closes'")?
        .exists([])?)
}

/// The tenant's period closes as stored — `(period_close_id, through_date, trial_balance
/// JSON)` — oldest first.
pub(crate) fn stored_closes(
    conn: &Connection,
    tenant: &str,
) -> Result<Vec<(String, String, String)>, StoreError> {
    if !has_period_closes(conn)? {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare(
        "SELECT period_close_id, through_date, trial_balance FROM period_closes \
         WHERE tenant_id = ?1 ORDER BY through_date",
    )?;
    let rows = stmt
        .query_map(params![tenant], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
        .collect::<Result<_, _>>()?;
    Ok(rows)
}
