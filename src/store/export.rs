//! The journal export (SPEC §6d) read from the database: a tenant's entries streamed in posting
//! order through `ledger::export::Exporter`, then the balance assertions of its period closes.
//! Memory stays flat: one entry is held at a time, whatever the tenant's size. The same function
//! serves `GET /v1/exports/journal` (on the read pool, as a heavy read) and `hpts export` (on a
//! read-only connection to a file, beside a running service).

use std::io::Write;

use rusqlite::{Connection, params};
use time::Date;

use crate::clock::{format_date, parse_date};
use crate::ledger::accounts::{Account, Direction};
use crate::ledger::export::{ClosedPeriod, ExportEntry, ExportLine, Exporter, Format};
use crate::ledger::money::{Currency, Money};
use crate::store::{ReadStop, StoreError};

/// Which entries to export: effective on or after `from`, on or before `to`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ExportRange {
    /// First effective date included.
    pub from: Option<Date>,
    /// Last effective date included.
    pub to: Option<Date>,
}

impl ExportRange {
    /// A period close is asserted when the export holds everything up to its day: the export
    /// starts at the beginning of the ledger and reaches that day. (An export from a later
    /// date lacks the opening balances the assertion sums.)
    fn asserts(self, through: Date) -> bool {
        self.from.is_none() && self.to.is_none_or(|to| through <= to)
    }
}

fn io(e: std::io::Error) -> StoreError {
    if e.kind() == std::io::ErrorKind::BrokenPipe {
        // The client (or the pipe) went away: stop like an abandoned read.
        StoreError::Cancelled
    } else {
        StoreError::failed("export output failed", e)
    }
}

/// How many entries the export will hold (for progress).
pub fn count_entries(
    conn: &Connection,
    tenant: &str,
    range: ExportRange,
) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM journal_entries WHERE tenant_id = ?1 \
             AND (?2 IS NULL OR effective_at >= ?2) AND (?3 IS NULL OR effective_at <= ?3)",
        )?
        .query_row(
            params![
                tenant,
                range.from.map(format_date),
                range.to.map(format_date)
            ],
            |r| r.get(0),
        )?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// Writes the tenant's journal in `format` to `out` and returns it. `progress(done)` is called
/// every 10,000 entries; `stop` ends the export between entries (and interrupts its SQL).
pub fn write_journal<W: Write>(
    conn: &Connection,
    tenant: &str,
    format: Format,
    range: ExportRange,
    out: W,
    stop: &ReadStop,
    progress: &mut dyn FnMut(u64),
) -> Result<W, StoreError> {
    let mut exporter = Exporter::new(out, format, tenant).map_err(io)?;
    let mut stmt = conn.prepare(
        "SELECT e.entry_id, e.event_type, e.effective_at, e.posted_at, e.description, \
                l.account_code, l.direction, l.amount_minor, l.currency \
         FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.entry_id \
         WHERE e.tenant_id = ?1 AND (?2 IS NULL OR e.effective_at >= ?2) \
           AND (?3 IS NULL OR e.effective_at <= ?3) \
         ORDER BY e.entry_seq, l.sequence",
    )?;
    let mut rows = stmt.query(params![
        tenant,
        range.from.map(format_date),
        range.to.map(format_date)
    ])?;
    let mut current: Option<ExportEntry> = None;
    let mut done = 0u64;
    while let Some(r) = rows.next()? {
        let entry_id: String = r.get(0)?;
        if current.as_ref().is_none_or(|c| c.entry_id != entry_id) {
            if let Some(finished) = current.take() {
                exporter.entry(&finished).map_err(io)?;
                done += 1;
                if done.is_multiple_of(10_000) {
                    stop.check()?;
                    progress(done);
                }
            }
            let effective: String = r.get(2)?;
            current = Some(ExportEntry {
                entry_id,
                event_type: r.get(1)?,
                effective_at: parse_date(&effective)
                    .ok_or_else(|| StoreError::corrupt("journal_entries.effective_at"))?,
                posted_at: r.get(3)?,
                description: r.get(4)?,
                lines: Vec::new(),
            });
        }
        let line = ExportLine {
            account: Account::from_code(&r.get::<_, String>(5)?)
                .ok_or_else(|| StoreError::corrupt("journal_lines.account_code"))?,
            direction: Direction::parse(&r.get::<_, String>(6)?)
                .ok_or_else(|| StoreError::corrupt("journal_lines.direction"))?,
            amount: Money::from_minor(r.get(7)?),
            currency: Currency::parse(&r.get::<_, String>(8)?)
                .ok_or_else(|| StoreError::corrupt("journal_lines.currency"))?,
        };
        if let Some(c) = current.as_mut() {
            c.lines.push(line);
        }
    }
    if let Some(finished) = current.take() {
        exporter.entry(&finished).map_err(io)?;
        done += 1;
    }
    progress(done);
    let closes = closes(conn, tenant)?;
    let asserted: Vec<ClosedPeriod> = closes
        .into_iter()
        .filter(|c| range.asserts(c.through_date))
        .collect();
    let mut out = exporter.finish(&asserted).map_err(io)?;
    out.flush().map_err(io)?;
    Ok(out)
}

/// The tenant's period closes with their stored trial balances, oldest first (none in a file
/// written before month-end existed).
fn closes(conn: &Connection, tenant: &str) -> Result<Vec<ClosedPeriod>, StoreError> {
    let rows = crate::store::trial_balance::stored_closes(conn, tenant)?;
    rows.into_iter()
        .map(|(id, through, stored)| {
            let value: serde_json::Value = serde_json::from_str(&stored)
                .map_err(|_| StoreError::corrupt("period_closes.trial_balance"))?;
            let mut balances = Vec::new();
            for item in value.as_array().map_or(&[][..], Vec::as_slice) {
                let currency = item["currency"]
                    .as_str()
                    .and_then(Currency::parse)
                    .ok_or_else(|| StoreError::corrupt("period_closes.trial_balance currency"))?;
                let mut accounts = Vec::new();
                for a in item["accounts"].as_array().map_or(&[][..], Vec::as_slice) {
                    let account = a["account_code"]
                        .as_str()
                        .and_then(Account::from_code)
                        .ok_or_else(|| {
                            StoreError::corrupt("period_closes.trial_balance account")
                        })?;
                    let balance: i128 = a["balance_minor"]
                        .as_str()
                        .and_then(|b| b.parse().ok())
                        .ok_or_else(|| {
                            StoreError::corrupt("period_closes.trial_balance balance")
                        })?;
                    accounts.push((account, balance));
                }
                balances.push((currency, accounts));
            }
            Ok(ClosedPeriod {
                period_close_id: id,
                through_date: parse_date(&through)
                    .ok_or_else(|| StoreError::corrupt("period_closes.through_date"))?,
                balances,
            })
        })
        .collect()
}
