//! The reconciliation proof (SPEC §7): for one tenant, on ONE read snapshot, the checks that
//! show the ledger is whole — trial balance per currency, every entry balanced, loan sub-ledger
//! equal to the GL control accounts, materialised balances equal to a replay of the lines, the
//! hash chain intact, and the append-only triggers present. Used by
//! `GET /v1/reconciliation/status` and, for every tenant, by `hpts verify`.

use std::collections::BTreeMap;

use rusqlite::{Connection, params};

use crate::store::StoreError;
use crate::store::chain::{self, ChainedEntry, ChainedLine};

/// Outcome of one check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    /// Stable check name.
    pub name: &'static str,
    /// True when the check holds.
    pub ok: bool,
    /// What was compared, or what differs.
    pub detail: String,
}

/// Everything the reconciliation endpoint reports for one tenant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reconciliation {
    /// Every check, in a fixed order.
    pub checks: Vec<Check>,
    /// Accounts (account, currency) whose balances disagree somewhere.
    pub mismatched_account_count: usize,
    /// GL 1100 net (lines), as of the date when given.
    pub gl_principal_minor: i64,
    /// Sum of loan principal balances (replayed from lines), as of the date when given.
    pub sum_of_loan_balances_minor: i64,
    /// Entries checked.
    pub entries_checked: u64,
}

impl Reconciliation {
    /// True when every check holds.
    pub fn ok(&self) -> bool {
        self.checks.iter().all(|c| c.ok)
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

const CONTROL_ACCOUNTS: [(&str, bool); 4] = [
    ("1100", true),
    ("1200", true),
    ("1300", true),
    ("2100", false),
];

fn check(name: &'static str, problems: &[String], ok_detail: String) -> Check {
    if problems.is_empty() {
        Check {
            name,
            ok: true,
            detail: ok_detail,
        }
    } else {
        let shown: Vec<&str> = problems.iter().take(5).map(String::as_str).collect();
        let more = if problems.len() > 5 {
            format!(" (+{} more)", problems.len() - 5)
        } else {
            String::new()
        };
        Check {
            name,
            ok: false,
            detail: format!("{}{more}", shown.join("; ")),
        }
    }
}

/// Runs every check for `tenant` inside one read transaction (one snapshot). `as_of` (a
/// `YYYY-MM-DD` string) limits the trial balance and the portfolio roll-up to entries effective
/// on or before it; the integrity checks always cover the whole ledger.
pub fn reconcile(
    conn: &Connection,
    tenant: &str,
    as_of: Option<&str>,
) -> Result<Reconciliation, StoreError> {
    if !conn.is_autocommit() {
        // Already inside the caller's read transaction: one snapshot either way.
        return reconcile_in_snapshot(conn, tenant, as_of);
    }
    conn.execute_batch("BEGIN")?;
    let result = reconcile_in_snapshot(conn, tenant, as_of);
    // A read transaction: nothing to keep; ending it releases the snapshot for checkpoints.
    let _ = conn.execute_batch("COMMIT");
    result
}

#[expect(
    clippy::too_many_lines,
    reason = "the checks read as one list; each block is one check"
)]
fn reconcile_in_snapshot(
    conn: &Connection,
    tenant: &str,
    as_of: Option<&str>,
) -> Result<Reconciliation, StoreError> {
    let mut checks = Vec::new();
    let mut mismatched: std::collections::BTreeSet<(String, String)> =
        std::collections::BTreeSet::new();

    // 1. Trial balance per currency.
    let mut tb_problems = Vec::new();
    let mut currencies = 0;
    {
        let mut stmt = conn.prepare(
            "SELECT currency, coalesce(sum(CASE direction WHEN 'DR' THEN amount_minor END), 0), \
                    coalesce(sum(CASE direction WHEN 'CR' THEN amount_minor END), 0) \
             FROM journal_lines WHERE tenant_id = ?1 AND (?2 IS NULL OR effective_at <= ?2) GROUP BY currency",
        )?;
        let mut rows = stmt.query(params![tenant, as_of])?;
        while let Some(r) = rows.next()? {
            currencies += 1;
            let (cur, dr, cr): (String, i64, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            if dr != cr {
                tb_problems.push(format!("{cur}: debits {dr} != credits {cr}"));
            }
        }
    }
    checks.push(check(
        "trial_balance",
        &tb_problems,
        format!("debits equal credits in {currencies} currencies"),
    ));

    // 2. Every entry balanced, with the line count it declares.
    let mut unbalanced = Vec::new();
    let mut entries_checked = 0u64;
    {
        let mut stmt = conn.prepare(
            "SELECT e.entry_id, e.line_count, \
               (SELECT count(*) FROM journal_lines l WHERE l.entry_id = e.entry_id), \
               (SELECT count(*) FROM (SELECT 1 FROM journal_lines l WHERE l.entry_id = e.entry_id GROUP BY l.currency \
                  HAVING sum(CASE direction WHEN 'DR' THEN amount_minor ELSE 0 END) \
                      != sum(CASE direction WHEN 'CR' THEN amount_minor ELSE 0 END))) \
             FROM journal_entries e WHERE e.tenant_id = ?1",
        )?;
        let mut rows = stmt.query(params![tenant])?;
        while let Some(r) = rows.next()? {
            entries_checked += 1;
            let (id, declared, actual, bad): (String, i64, i64, i64) =
                (r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?);
            if declared != actual || actual < 2 || bad > 0 {
                unbalanced.push(format!(
                    "entry {id} does not balance ({actual} lines, {declared} declared)"
                ));
            }
        }
        let orphans: i64 = conn.query_row(
            "SELECT count(*) FROM journal_lines l WHERE l.tenant_id = ?1 \
             AND NOT EXISTS (SELECT 1 FROM journal_entries e WHERE e.entry_id = l.entry_id)",
            params![tenant],
            |r| r.get(0),
        )?;
        if orphans > 0 {
            unbalanced.push(format!("{orphans} lines belong to no entry"));
        }
    }
    checks.push(check(
        "entries_balanced",
        &unbalanced,
        format!("{entries_checked} entries balanced"),
    ));

    // Replay of the lines: GL per (account, currency) and loan balances per loan.
    let mut replay_gl: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT account_code, currency, layer, coalesce(sum(CASE direction WHEN 'DR' THEN amount_minor END), 0), \
                    coalesce(sum(CASE direction WHEN 'CR' THEN amount_minor END), 0) \
             FROM journal_lines WHERE tenant_id = ?1 GROUP BY account_code, currency, layer",
        )?;
        let mut rows = stmt.query(params![tenant])?;
        while let Some(r) = rows.next()? {
            replay_gl.insert((r.get(0)?, r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?));
        }
    }
    let mut stored_gl: BTreeMap<(String, String, String), (i64, i64)> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT account_code, currency, layer, dr_minor, cr_minor FROM account_balances WHERE tenant_id = ?1",
        )?;
        let mut rows = stmt.query(params![tenant])?;
        while let Some(r) = rows.next()? {
            stored_gl.insert((r.get(0)?, r.get(1)?, r.get(2)?), (r.get(3)?, r.get(4)?));
        }
    }
    // Loans: per loan, per control account, net from the lines.
    let mut replay_loans: BTreeMap<String, [i64; 6]> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT loan_id, account_code, coalesce(sum(CASE direction WHEN 'DR' THEN amount_minor ELSE -amount_minor END), 0) \
             FROM journal_lines WHERE tenant_id = ?1 AND loan_id IS NOT NULL GROUP BY loan_id, account_code",
        )?;
        let mut rows = stmt.query(params![tenant])?;
        while let Some(r) = rows.next()? {
            let (loan, account, net): (String, String, i64) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let slot = replay_loans.entry(loan).or_default();
            match account.as_str() {
                "1100" => slot[0] = net,
                "1200" => slot[1] = net,
                "1300" => slot[2] = net,
                "2100" => slot[3] = -net,
                "2000" => slot[4] = -net,
                "1000" => slot[5] = net,
                _ => {}
            }
        }
    }
    let mut stored_loans: BTreeMap<String, ([i64; 6], String)> = BTreeMap::new();
    {
        let mut stmt = conn.prepare(
            "SELECT loan_id, currency, principal_minor, interest_minor, fees_minor, suspense_minor, \
             disbursed_total_minor, paid_total_minor FROM loans WHERE tenant_id = ?1",
        )?;
        let mut rows = stmt.query(params![tenant])?;
        while let Some(r) = rows.next()? {
            stored_loans.insert(
                r.get(0)?,
                (
                    [
                        r.get(2)?,
                        r.get(3)?,
                        r.get(4)?,
                        r.get(5)?,
                        r.get(6)?,
                        r.get(7)?,
                    ],
                    r.get(1)?,
                ),
            );
        }
    }

    // 3. Loan sub-ledger = GL control accounts (per currency).
    let mut sub_problems = Vec::new();
    for (i, (account, debit_normal)) in CONTROL_ACCOUNTS.iter().enumerate() {
        let mut by_currency: BTreeMap<String, i64> = BTreeMap::new();
        for (balances, currency) in stored_loans.values() {
            *by_currency.entry(currency.clone()).or_default() += balances[i];
        }
        let mut currencies: std::collections::BTreeSet<String> =
            by_currency.keys().cloned().collect();
        currencies.extend(
            replay_gl
                .keys()
                .filter(|k| k.0 == *account)
                .map(|k| k.1.clone()),
        );
        for currency in currencies {
            let (dr, cr) = replay_gl
                .iter()
                .filter(|(k, _)| k.0 == *account && k.1 == currency)
                .fold((0i64, 0i64), |acc, (_, v)| (acc.0 + v.0, acc.1 + v.1));
            let gl = if *debit_normal { dr - cr } else { cr - dr };
            let sub = by_currency.get(&currency).copied().unwrap_or(0);
            if gl != sub {
                sub_problems.push(format!(
                    "{account} {currency}: GL {gl} != sum of loans {sub}"
                ));
                mismatched.insert(((*account).to_owned(), currency));
            }
        }
    }
    checks.push(check(
        "loan_subledger_matches_gl",
        &sub_problems,
        format!(
            "{} loans agree with 1100, 1200, 1300 and 2100",
            stored_loans.len()
        ),
    ));

    // 4. Materialised balances = replay of the lines.
    let mut mat_problems = Vec::new();
    let keys: std::collections::BTreeSet<_> =
        replay_gl.keys().chain(stored_gl.keys()).cloned().collect();
    for key in keys {
        let replay = replay_gl.get(&key).copied().unwrap_or((0, 0));
        let stored = stored_gl.get(&key).copied().unwrap_or((0, 0));
        if replay != stored {
            mat_problems.push(format!(
                "account {} {} {}: stored {}/{} != lines {}/{}",
                key.0, key.1, key.2, stored.0, stored.1, replay.0, replay.1
            ));
            mismatched.insert((key.0.clone(), key.1.clone()));
        }
    }
    for (loan, (stored, _)) in &stored_loans {
        let replay = replay_loans.get(loan).copied().unwrap_or_default();
        if *stored != replay {
            mat_problems.push(format!(
                "loan {loan}: stored {stored:?} != lines {replay:?}"
            ));
        }
    }
    for loan in replay_loans
        .keys()
        .filter(|l| !stored_loans.contains_key(*l))
    {
        mat_problems.push(format!("loan {loan} has lines but no loan record"));
    }
    checks.push(check(
        "materialised_balances_match_lines",
        &mat_problems,
        format!(
            "{} account balances and {} loans replayed",
            stored_gl.len(),
            stored_loans.len()
        ),
    ));

    // 5. Hash chain.
    let chain_problems = verify_chain(conn, tenant)?;
    checks.push(check(
        "hash_chain_intact",
        &chain_problems,
        format!("{entries_checked} entries chained"),
    ));

    // 6. Append-only guards present.
    let mut guard_problems = Vec::new();
    for trigger in APPEND_ONLY_TRIGGERS {
        let present: bool = conn
            .prepare_cached("SELECT 1 FROM sqlite_master WHERE type = 'trigger' AND name = ?1")?
            .exists(params![trigger])?;
        if !present {
            guard_problems.push(format!("trigger {trigger} is missing"));
        }
    }
    checks.push(check(
        "append_only_guard_present",
        &guard_problems,
        format!(
            "{} append-only triggers present",
            APPEND_ONLY_TRIGGERS.len()
        ),
    ));

    // Portfolio roll-up (as of the date when given).
    let (gl_principal_minor, sum_of_loan_balances_minor) = match as_of {
        None => {
            let gl = replay_gl
                .iter()
                .filter(|(k, _)| k.0 == "1100")
                .fold(0i64, |acc, (_, v)| acc + v.0 - v.1);
            let sum = stored_loans.values().map(|(b, _)| b[0]).sum();
            (gl, sum)
        }
        Some(date) => {
            let gl: i64 = conn.query_row(
                "SELECT coalesce(sum(CASE direction WHEN 'DR' THEN amount_minor ELSE -amount_minor END), 0) \
                 FROM journal_lines WHERE tenant_id = ?1 AND account_code = '1100' AND effective_at <= ?2",
                params![tenant, date],
                |r| r.get(0),
            )?;
            let sum: i64 = conn.query_row(
                "SELECT coalesce(sum(net), 0) FROM (SELECT sum(CASE direction WHEN 'DR' THEN amount_minor ELSE -amount_minor END) AS net \
                 FROM journal_lines WHERE tenant_id = ?1 AND account_code = '1100' AND loan_id IS NOT NULL \
                 AND effective_at <= ?2 GROUP BY loan_id)",
                params![tenant, date],
                |r| r.get(0),
            )?;
            (gl, sum)
        }
    };
    Ok(Reconciliation {
        checks,
        mismatched_account_count: mismatched.len(),
        gl_principal_minor,
        sum_of_loan_balances_minor,
        entries_checked,
    })
}

/// One journal line as read for the chain.
type LineRow = (
    i64,
    String,
    String,
    i64,
    String,
    String,
    Option<String>,
    Option<String>,
    Option<String>,
);

/// Recomputes a tenant's hash chain; returns the problems found.
fn verify_chain(conn: &Connection, tenant: &str) -> Result<Vec<String>, StoreError> {
    let mut problems = Vec::new();
    let mut entries = conn.prepare(
        "SELECT entry_id, event_id, event_type, effective_at, posted_at, correlation_id, reverses_entry_id, \
         metadata, prev_hash, hash FROM journal_entries WHERE tenant_id = ?1 ORDER BY entry_seq",
    )?;
    let mut lines_stmt = conn.prepare(
        "SELECT sequence, account_code, direction, amount_minor, currency, layer, loan_id, borrower_id, external_ref \
         FROM journal_lines WHERE entry_id = ?1 ORDER BY sequence",
    )?;
    let mut rows = entries.query(params![tenant])?;
    let mut expected_prev = chain::GENESIS.to_owned();
    while let Some(r) = rows.next()? {
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
        let s = |i: usize| e[i].as_deref().unwrap_or_default();
        let lines: Vec<LineRow> = lines_stmt
            .query_map(params![s(0)], |l| {
                Ok((
                    l.get(0)?,
                    l.get(1)?,
                    l.get(2)?,
                    l.get(3)?,
                    l.get(4)?,
                    l.get(5)?,
                    l.get(6)?,
                    l.get(7)?,
                    l.get(8)?,
                ))
            })?
            .collect::<Result<_, _>>()?;
        let chained: Vec<ChainedLine<'_>> = lines
            .iter()
            .map(|l| ChainedLine {
                sequence: l.0,
                account_code: &l.1,
                direction: &l.2,
                amount_minor: l.3,
                currency: &l.4,
                layer: &l.5,
                loan_id: l.6.as_deref(),
                borrower_id: l.7.as_deref(),
                external_ref: l.8.as_deref(),
            })
            .collect();
        let computed = chain::entry_hash(
            &expected_prev,
            &ChainedEntry {
                entry_id: s(0),
                tenant_id: tenant,
                event_id: s(1),
                event_type: s(2),
                effective_at: s(3),
                posted_at: s(4),
                correlation_id: s(5),
                reverses_entry_id: e[6].as_deref(),
                metadata: e[7].as_deref(),
            },
            &chained,
        );
        if s(8) != expected_prev {
            problems.push(format!("entry {} does not link to its predecessor", s(0)));
        }
        if s(9) != computed {
            problems.push(format!("entry {} content does not match its hash", s(0)));
        }
        s(9).clone_into(&mut expected_prev);
    }
    Ok(problems)
}

/// Every tenant in the database (for `hpts verify`).
pub fn tenants(conn: &Connection) -> Result<Vec<String>, StoreError> {
    let mut stmt = conn.prepare("SELECT tenant_id FROM tenants ORDER BY tenant_id")?;
    let rows = stmt.query_map([], |r| r.get(0))?;
    Ok(rows.collect::<Result<_, _>>()?)
}
