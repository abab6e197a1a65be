//! Tamper evidence (SPEC §1.2, §7, §9): an edit made behind the service's back — with the
//! `sqlite3` shell, after dropping an append-only trigger — is reported by
//! `GET /v1/reconciliation/status` and by `hpts verify` (exit 1, naming the failing checks),
//! while a clean copy taken before the edit with `hpts backup` verifies (exit 0).
//!
//! Needs the `sqlite3` command-line shell on `PATH`.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use serde_json::{Value, json};
use uuid::Uuid;

use common::http::{blocking_client, get_ok, post};
use common::server::{Server, Site, output_text, run_hpts, run_verify};
use common::tokens::{key, uuid};

/// Runs SQL through the `sqlite3` shell, failing loudly when the shell is missing.
fn sqlite3(db: &Path, sql: &str) {
    let out = Command::new("sqlite3")
        .arg(db)
        .arg(sql)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "the tamper tests need the `sqlite3` command-line shell on PATH \
                 (e.g. `apt-get install sqlite3`); running it failed: {e}"
            )
        });
    assert!(
        out.status.success(),
        "sqlite3 {sql:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `hpts verify --database <db>`: (exit code, stdout + stderr).
fn verify(db: &Path) -> (i32, String) {
    let out = run_verify(db);
    (out.status.code().expect("exit code"), output_text(&out))
}

/// Asserts the verify report has a line naming `check` with the given outcome.
fn assert_reported(report: &str, check: &str, outcome: &str) {
    assert!(
        report.lines().any(|l| {
            let mut words = l.split_whitespace();
            words.next() == Some(check) && words.next() == Some(outcome)
        }),
        "`hpts verify` does not report {check} as {outcome}:\n{report}"
    );
}

/// `hpts backup` of the site's database to `name` beside it: the copy and the output.
fn backup(site: &Site, name: &str) -> (PathBuf, Output) {
    let copy = site.path(name);
    let out = run_hpts(&[
        "backup",
        "--database",
        &site.db.display().to_string(),
        "--out",
        &copy.display().to_string(),
    ]);
    (copy, out)
}

/// A site for the tamper tests: fails before doing anything else if the `sqlite3` shell is
/// missing.
fn site() -> Site {
    sqlite3(Path::new(":memory:"), "SELECT 1;");
    Site::new()
}

/// The requests the tamper tests make of a running server.
trait Requests {
    /// POST with a fresh idempotency key, asserting 201: the receipt.
    fn post(&self, token: &str, path: &str, body: &Value) -> Value;
    /// GET asserting 200: the body.
    fn get(&self, token: &str, path: &str) -> Value;
    /// `name → status` of the tenant's reconciliation checks, and the whole report.
    fn reconciliation(&self, token: &str) -> (HashMap<String, String>, Value);
}

impl Requests for Server {
    fn post(&self, token: &str, path: &str, body: &Value) -> Value {
        let reply =
            post(&client(), &self.url(path), token, &key("tamper"), body).expect("request sent");
        assert_eq!(reply.status, 201, "POST {path}: {}", reply.text);
        reply.json()
    }

    fn get(&self, token: &str, path: &str) -> Value {
        get_ok(&client(), &self.url(path), token)
    }

    fn reconciliation(&self, token: &str) -> (HashMap<String, String>, Value) {
        let report = self.get(token, "/v1/reconciliation/status");
        let statuses = report["checks"]
            .as_array()
            .unwrap_or_else(|| panic!("no checks: {report}"))
            .iter()
            .map(|c| {
                (
                    c["name"].as_str().expect("name").to_owned(),
                    c["status"].as_str().expect("status").to_owned(),
                )
            })
            .collect();
        (statuses, report)
    }
}

fn client() -> reqwest::blocking::Client {
    blocking_client(Duration::from_mins(1))
}

use common::inprocess::RECONCILIATION_CHECKS as CHECKS;

/// Asserts the checks named in `failing` are "mismatch"; every other check in `must_hold` is
/// "ok"; checks in neither list are not asserted.
fn assert_checks(
    statuses: &HashMap<String, String>,
    report: &Value,
    failing: &[&str],
    must_hold: &[&str],
) {
    for name in CHECKS {
        assert!(
            statuses.contains_key(name),
            "check {name} missing: {report}"
        );
    }
    for name in failing {
        assert_eq!(statuses[*name], "mismatch", "check {name}: {report}");
    }
    for name in must_hold {
        assert_eq!(statuses[*name], "ok", "check {name}: {report}");
    }
}

/// Two tenants with a few entries each; returns (token A, token B, A's disbursement entry id).
fn post_some_entries(site: &Site, server: &Server) -> (String, String, String) {
    let (tenant_a, tenant_b) = (uuid(), uuid());
    let (token_a, token_b) = (site.token(tenant_a), site.token(tenant_b));
    let (loan, borrower) = (uuid(), uuid());
    let disbursement = server.post(
        &token_a,
        "/v1/disbursements",
        &json!({
            "loan_id": loan.to_string(),
            "borrower_id": borrower.to_string(),
            "amount_minor": "100000",
            "currency": "USD",
            "effective_at": "2026-01-10",
            "method": "ach",
        }),
    );
    server.post(
        &token_a,
        "/v1/fees",
        &json!({
            "loan_id": loan.to_string(),
            "fee_type": "late",
            "amount_minor": "500",
            "currency": "USD",
            "effective_at": "2026-01-15",
        }),
    );
    server.post(
        &token_a,
        "/v1/payments",
        &json!({
            "loan_id": loan.to_string(),
            "borrower_id": borrower.to_string(),
            "amount_minor": "2000",
            "currency": "USD",
            "effective_at": "2026-02-01",
            "source_method": "ach",
        }),
    );
    server.post(
        &token_b,
        "/v1/disbursements",
        &json!({
            "loan_id": uuid().to_string(),
            "borrower_id": uuid().to_string(),
            "amount_minor": "5000",
            "currency": "USD",
            "effective_at": "2026-01-10",
            "method": "wire",
        }),
    );
    let entry = disbursement["journal_entry_id"]
        .as_str()
        .expect("journal_entry_id")
        .to_owned();
    (token_a, token_b, entry)
}

#[test]
fn an_edited_journal_line_is_reported_by_reconciliation_and_by_verify() {
    let site = site();
    let mut server = site.start();
    let (token_a, token_b, entry) = post_some_entries(&site, &server);
    let (statuses, report) = server.reconciliation(&token_a);
    assert_checks(&statuses, &report, &[], &CHECKS);
    assert_eq!(
        server.metric(&client(), "hpts_reconciliation_failures_total"),
        0
    );
    server.stop();

    // A clean copy, taken before the edit.
    let (clean, out) = backup(&site, "clean.db");
    assert!(
        out.status.success(),
        "hpts backup failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (code, text) = verify(&site.db);
    assert_eq!(code, 0, "the untouched database verifies:\n{text}");

    // The edit: one more minor unit on the first line of the disbursement.
    sqlite3(
        &site.db,
        &format!(
            "DROP TRIGGER journal_lines_no_update; \
             UPDATE journal_lines SET amount_minor = amount_minor + 1 \
             WHERE entry_id = '{entry}' AND sequence = 1;"
        ),
    );

    // Offline: the clean copy still verifies; the edited file does not, and says why.
    let (code, text) = verify(&clean);
    assert_eq!(
        code, 0,
        "the backup taken before the edit verifies:\n{text}"
    );
    for check in CHECKS {
        assert_reported(&text, check, "ok");
    }
    let (code, text) = verify(&site.db);
    assert_eq!(code, 1, "verify exits 1 on a mismatch:\n{text}");
    for check in [
        "trial_balance",
        "entries_balanced",
        "hash_chain_intact",
        "append_only_guard_present",
    ] {
        assert_reported(&text, check, "MISMATCH");
    }
    assert!(
        text.contains(&entry),
        "the report names the edited entry:\n{text}"
    );
    assert!(
        text.contains("journal_lines_no_update"),
        "the report names the missing trigger:\n{text}"
    );

    // Online: the service starts on the edited file and its report shows the mismatch.
    let mut server = site.start();
    let (statuses, report) = server.reconciliation(&token_a);
    assert_eq!(report["ledger_integrity"]["status"], "mismatch", "{report}");
    assert!(
        report["ledger_integrity"]["mismatched_account_count"]
            .as_u64()
            .is_some_and(|n| n >= 1),
        "{report}"
    );
    assert_checks(
        &statuses,
        &report,
        &[
            "trial_balance",
            "entries_balanced",
            "hash_chain_intact",
            "append_only_guard_present",
        ],
        &[],
    );
    // The other tenant's books are intact; only the schema-wide guard is missing for it too.
    let (statuses, report) = server.reconciliation(&token_b);
    assert_eq!(report["ledger_integrity"]["status"], "mismatch", "{report}");
    assert_checks(
        &statuses,
        &report,
        &["append_only_guard_present"],
        &[
            "trial_balance",
            "entries_balanced",
            "loan_subledger_matches_gl",
            "materialised_balances_match_lines",
            "hash_chain_intact",
        ],
    );
    // Both reports had a check `mismatch`: each counts once for the alert on it.
    assert_eq!(
        server.metric(&client(), "hpts_reconciliation_failures_total"),
        2
    );
    server.stop();
}

#[test]
fn an_edited_posted_at_breaks_only_the_hash_chain_and_the_guard() {
    let site = site();
    let mut server = site.start();
    let (token_a, _, entry) = post_some_entries(&site, &server);
    server.stop();

    sqlite3(
        &site.db,
        &format!(
            "DROP TRIGGER journal_entries_no_update; \
             UPDATE journal_entries SET posted_at = '2020-01-01T00:00:00.000000Z' \
             WHERE entry_id = '{entry}';"
        ),
    );

    let (code, text) = verify(&site.db);
    assert_eq!(code, 1, "verify exits 1 on a mismatch:\n{text}");
    for check in ["hash_chain_intact", "append_only_guard_present"] {
        assert_reported(&text, check, "MISMATCH");
    }
    for check in [
        "trial_balance",
        "entries_balanced",
        "loan_subledger_matches_gl",
        "materialised_balances_match_lines",
    ] {
        assert_reported(&text, check, "ok");
    }
    assert!(text.contains(&entry), "{text}");

    let mut server = site.start();
    let (statuses, report) = server.reconciliation(&token_a);
    assert_eq!(report["ledger_integrity"]["status"], "mismatch", "{report}");
    assert_checks(
        &statuses,
        &report,
        &["hash_chain_intact", "append_only_guard_present"],
        &[
            "trial_balance",
            "entries_balanced",
            "loan_subledger_matches_gl",
            "materialised_balances_match_lines",
        ],
    );
    server.stop();
}

/// The report lines of each tenant in `hpts verify`'s output, by tenant id.
fn tenant_sections(report: &str) -> HashMap<String, Vec<String>> {
    let mut sections: HashMap<String, Vec<String>> = HashMap::new();
    let mut current = None;
    for line in report.lines() {
        if let Some(rest) = line.strip_prefix("tenant ") {
            let tenant = rest.split(':').next().unwrap_or_default().to_owned();
            sections
                .entry(tenant.clone())
                .or_default()
                .push(line.to_owned());
            current = Some(tenant);
        } else if line.starts_with("  ")
            && let Some(tenant) = &current
        {
            sections
                .get_mut(tenant)
                .expect("section")
                .push(line.to_owned());
        } else {
            current = None;
        }
    }
    sections
}

/// Three tenants with two loans each (100,000 and 250,000), in the order verify checks them.
fn three_tenants(site: &Site, server: &Server) -> [Uuid; 3] {
    let mut tenants = [uuid(), uuid(), uuid()];
    tenants.sort();
    for tenant in tenants {
        let token = site.token(tenant);
        for amount in ["100000", "250000"] {
            server.post(
                &token,
                "/v1/disbursements",
                &json!({
                    "loan_id": uuid().to_string(),
                    "borrower_id": uuid().to_string(),
                    "amount_minor": amount,
                    "currency": "USD",
                    "effective_at": "2026-01-10",
                    "method": "ach",
                }),
            );
        }
    }
    tenants
}

/// The report of the tenant whose total became a REAL and whose lines sum beyond i64.
fn assert_overflowed_tenant_reported(section: &str) {
    for check in [
        "trial_balance",
        "entries_balanced",
        "materialised_balances_match_lines",
        "hash_chain_intact",
    ] {
        assert_reported(section, check, "MISMATCH");
    }
    assert_reported(section, "append_only_guard_present", "ok");
    assert!(
        section.contains("does not balance: debits differ from credits in USD"),
        "the unbalanced entries are named:\n{section}"
    );
    assert!(
        section.contains("account_balances.dr_minor is REAL for 1100 USD SETTLED"),
        "the REAL total is named:\n{section}"
    );
    assert!(
        section.contains("USD: debits 10000000000000000000 != credits 350000"),
        "the overflowing sum is computed exactly:\n{section}"
    );
}

#[test]
fn verify_checks_every_tenant_and_names_the_failed_checks_of_a_tampered_middle_one() {
    let site = site();
    let mut server = site.start();
    let tenants = three_tenants(&site, &server);
    server.stop();
    let (code, text) = verify(&site.db);
    assert_eq!(code, 0, "the untouched database verifies:\n{text}");

    // The middle tenant as an older release (before V4's typeof CHECKs, which the edit
    // switches off) could leave it after an overflow: its stored 1100 total is a REAL beyond
    // i64, and its two principal lines sum beyond i64 (where SQLite's sum() fails). The
    // append-only trigger is put back, so the schema guard still holds.
    let middle = tenants[1];
    sqlite3(
        &site.db,
        &format!(
            "PRAGMA ignore_check_constraints = ON; UPDATE account_balances SET dr_minor = 9.3e18 \
             WHERE tenant_id = '{middle}' AND account_code = '1100'; \
             DROP TRIGGER journal_lines_no_update; \
             UPDATE journal_lines SET amount_minor = 5000000000000000000 \
             WHERE tenant_id = '{middle}' AND account_code = '1100'; \
             CREATE TRIGGER journal_lines_no_update BEFORE UPDATE ON journal_lines \
             BEGIN SELECT RAISE(ABORT, 'journal_lines is append-only'); END;"
        ),
    );

    let (code, text) = verify(&site.db);
    assert_eq!(code, 1, "a failed check is exit 1, not 2:\n{text}");
    let sections = tenant_sections(&text);
    for (i, tenant) in tenants.iter().enumerate() {
        let lines = sections
            .get(&tenant.to_string())
            .unwrap_or_else(|| panic!("tenant {tenant} is not reported:\n{text}"));
        let section = lines.join("\n");
        if i == 1 {
            assert_overflowed_tenant_reported(&section);
        } else {
            for check in CHECKS {
                assert_reported(&section, check, "ok");
            }
        }
    }
    assert!(
        text.contains("MISMATCH: 3 tenant(s), 1 failing"),
        "the summary counts the failing tenant:\n{text}"
    );
    assert!(
        text.contains("[3/3] tenant"),
        "progress is shown per tenant:\n{text}"
    );

    // `hpts backup` copies the file and reports the same, for every tenant.
    let (_, out) = backup(&site, "copy.db");
    let backup_text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{backup_text}");
    assert_eq!(tenant_sections(&backup_text).len(), 3, "{backup_text}");

    // Online, the tampered tenant's report is a 200 that says what is wrong, with the exact
    // roll-up; the other tenants are whole.
    let mut server = site.start();
    let (statuses, report) = server.reconciliation(&site.token(middle));
    assert_eq!(report["ledger_integrity"]["status"], "mismatch", "{report}");
    assert_eq!(statuses["materialised_balances_match_lines"], "mismatch");
    assert_eq!(
        report["portfolio_rollup"]["gl_principal_minor"], "10000000000000000000",
        "{report}"
    );
    assert_eq!(report["portfolio_rollup"]["status"], "mismatch", "{report}");
    for tenant in [tenants[0], tenants[2]] {
        let (statuses, report) = server.reconciliation(&site.token(tenant));
        assert_checks(&statuses, &report, &[], &CHECKS);
    }
    server.stop();
}

#[test]
fn verify_reads_a_previous_release_file_whose_total_overflowed_into_a_real_and_checks_every_tenant()
{
    // The previous release's file (schema V1–V3, see tests/migrations.rs), not migrated: verify
    // is read-only and runs on it as it is.
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.db");
    let conn = rusqlite::Connection::open(&db).expect("create");
    conn.execute_batch(include_str!("fixtures/release-0.1.0-v3.sql"))
        .expect("load the fixture dump");
    // What that release's `dr_minor = dr_minor + ?` did on overflow: SQLite turned the total
    // into a REAL, which its schema accepted.
    let (first, second) = (
        "01900000-0000-7000-8000-00000000a001",
        "01900000-0000-7000-8000-00000000a002",
    );
    conn.execute_batch(&format!(
        "UPDATE account_balances SET dr_minor = dr_minor + 9223372036854775807 \
         WHERE tenant_id = '{first}' AND account_code = '1100' AND currency = 'USD'"
    ))
    .expect("overflow");
    let class: String = conn
        .query_row(
            &format!(
                "SELECT typeof(dr_minor) FROM account_balances \
                 WHERE tenant_id = '{first}' AND account_code = '1100' AND currency = 'USD'"
            ),
            [],
            |r| r.get(0),
        )
        .expect("typeof");
    assert_eq!(class, "real", "the overflow left a REAL behind");
    drop(conn);

    let (code, text) = verify(&db);
    assert_eq!(code, 1, "a failed check is exit 1, never 2:\n{text}");
    let sections = tenant_sections(&text);
    let section = sections[first].join("\n");
    assert_reported(&section, "materialised_balances_match_lines", "MISMATCH");
    assert!(
        section.contains("account_balances.dr_minor is REAL for 1100 USD SETTLED"),
        "{section}"
    );
    for check in CHECKS
        .iter()
        .filter(|c| **c != "materialised_balances_match_lines")
    {
        assert_reported(&section, check, "ok");
    }
    let section = sections
        .get(second)
        .unwrap_or_else(|| panic!("the later tenant is checked too:\n{text}"))
        .join("\n");
    for check in CHECKS {
        assert_reported(&section, check, "ok");
    }
}

#[test]
fn verify_exits_2_only_for_a_missing_file_or_one_that_is_not_a_database() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (code, text) = verify(&dir.path().join("missing.db"));
    assert_eq!(code, 2, "{text}");
    let not_a_database = dir.path().join("notes.db");
    std::fs::write(&not_a_database, "these are notes, not a ledger\n").expect("write");
    let (code, text) = verify(&not_a_database);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("not a database"), "{text}");
}
