//! Upgrading a database written by the previous release. `tests/fixtures/release-0.1.0-v3.sql`
//! is the `sqlite3 .dump` of a database that release (schema V1–V3, commit a7043fd) wrote
//! through its own HTTP API: two tenants, USD, EUR and JPY loans, disbursements, a fee, an
//! accrual with its inputs, a payment with an `external_ref`, a reversal, metadata — and one
//! payment that release accepted although it is dated before its loan's first disbursement.
//! Each test loads the dump into a fresh file, lets the current binary migrate it, and checks
//! that nothing was lost, that `hpts verify` passes, and that the new rules hold on old data.

mod common;

use std::path::{Path, PathBuf};

use rusqlite::Connection;
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use common::server::{Server, output_text, run_hpts};
use common::tokens::{KID, token, write_jwks};

const TENANT_1: &str = "01900000-0000-7000-8000-00000000a001";
const LOAN_1: &str = "01900000-0000-7000-8000-00000000b001";
const BORROWER_1: &str = "01900000-0000-7000-8000-00000000c001";

/// A fresh file holding the previous release's database.
fn old_database() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.db");
    common::db::previous_release(&path);
    (dir, path)
}

/// The previous release's database, migrated by `hpts migrate` (which must succeed).
fn migrated_old_database() -> (TempDir, PathBuf) {
    let (dir, path) = old_database();
    let out = run_hpts(&["migrate", "--database", &db_arg(&path)]);
    assert!(out.status.success(), "{}", output_text(&out));
    (dir, path)
}

fn db_arg(path: &Path) -> String {
    path.display().to_string()
}

/// Every row of `sql`, each as a `|`-joined string, for before/after comparisons.
fn rows(conn: &Connection, sql: &str) -> Vec<String> {
    let mut stmt = conn.prepare(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
    let n = stmt.column_count();
    stmt.query_map([], |r| {
        (0..n)
            .map(|i| {
                r.get::<_, rusqlite::types::Value>(i)
                    .map(|v| format!("{v:?}"))
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|v| v.join("|"))
    })
    .expect("query")
    .map(|r| r.expect("row"))
    .collect()
}

const KEPT: [&str; 7] = [
    "SELECT * FROM journal_lines ORDER BY entry_id, sequence",
    "SELECT * FROM journal_entries ORDER BY entry_seq",
    "SELECT event_id, tenant_id, event_type, loan_id, payload, metadata, external_ref, \
     allocation_policy, recorded_at FROM events ORDER BY event_id",
    "SELECT tenant_id, account_code, currency, layer, dr_minor, cr_minor FROM account_balances ORDER BY 1, 2, 3, 4",
    "SELECT entry_id, loan_id, tenant_id, program_id, accrual_date, day_count_convention, \
     outstanding_principal_minor, annual_rate_bps, interest_minor FROM accrual_lines ORDER BY 1, 2",
    "SELECT * FROM idempotency_keys ORDER BY 1, 2",
    "SELECT tenant_id, loan_id, entry_seq, event_type, effective_at FROM loan_entries ORDER BY 1, 2, 3",
];

#[test]
fn migrating_the_previous_releases_database_keeps_every_row_and_verifies() {
    let (_dir, path) = old_database();
    let before: Vec<Vec<String>> = {
        let conn = Connection::open(&path).expect("open");
        KEPT.iter().map(|q| rows(&conn, q)).collect()
    };
    assert!(
        before.iter().all(|r| !r.is_empty()),
        "the fixture has data in every table"
    );

    let migrated = run_hpts(&["migrate", "--database", &db_arg(&path)]);
    assert!(migrated.status.success(), "{}", output_text(&migrated));
    let verified = run_hpts(&["verify", "--database", &db_arg(&path)]);
    assert!(verified.status.success(), "{}", output_text(&verified));

    let conn = Connection::open(&path).expect("open");
    let after: Vec<Vec<String>> = KEPT.iter().map(|q| rows(&conn, q)).collect();
    assert_eq!(before, after, "the migration changed recorded data");
    let version: i64 = conn
        .query_row(
            "SELECT max(version) FROM refinery_schema_history",
            [],
            |r| r.get(0),
        )
        .expect("version");
    assert!(version >= 4, "schema version {version}");
}

#[test]
fn every_existing_tenant_gets_the_recoveries_and_credit_losses_accounts() {
    let (_dir, path) = migrated_old_database();
    let conn = Connection::open(&path).expect("open");
    let tenants = rows(&conn, "SELECT tenant_id FROM tenants ORDER BY 1");
    assert!(!tenants.is_empty(), "the fixture has tenants");
    let charted = rows(
        &conn,
        "SELECT tenant_id || ' ' || code || ' ' || normal_side FROM accounts \
         WHERE code IN ('4200', '5000') ORDER BY 1",
    );
    assert_eq!(
        charted.len(),
        tenants.len() * 2,
        "4200 and 5000 for every tenant: {charted:?}"
    );
    assert!(
        charted
            .iter()
            .all(|r| r.contains(" 4200 CR") || r.contains(" 5000 DR")),
        "{charted:?}"
    );
    let figures = rows(
        &conn,
        "SELECT count(*) FROM loans WHERE charged_off_minor = 0 AND recovered_minor = 0",
    );
    let loans = rows(&conn, "SELECT count(*) FROM loans");
    assert_eq!(
        figures, loans,
        "every old loan starts with nothing charged off or recovered"
    );
    let unlinked = rows(
        &conn,
        "SELECT count(*) FROM events ev LEFT JOIN journal_entries je ON je.entry_seq = ev.entry_seq \
         WHERE je.event_id IS NOT ev.event_id",
    );
    assert_eq!(
        unlinked,
        vec!["Integer(0)".to_owned()],
        "every old event knows its entry"
    );
}

#[test]
fn every_old_loan_gets_the_opening_date_of_its_first_disbursement() {
    let (_dir, path) = migrated_old_database();
    let conn = Connection::open(&path).expect("open");
    let opened = rows(
        &conn,
        "SELECT loan_id, opened_on FROM loans ORDER BY loan_id",
    );
    assert_eq!(
        opened,
        vec![
            format!("Text(\"{LOAN_1}\")|Text(\"2026-10-01\")"),
            "Text(\"01900000-0000-7000-8000-00000000b002\")|Text(\"2026-10-03\")".to_owned(),
            // Its first disbursement was reversed and posted again; the loan opened with the first.
            "Text(\"01900000-0000-7000-8000-00000000b003\")|Text(\"2026-09-20\")".to_owned(),
        ]
    );
}

#[test]
fn every_old_loan_entry_learns_where_its_loans_lines_are_and_the_loan_line_index_goes() {
    let (_dir, path) = migrated_old_database();
    let conn = Connection::open(&path).expect("open");
    let spans = rows(
        &conn,
        "SELECT le.loan_id, le.entry_seq, le.first_line, le.last_line FROM loan_entries le ORDER BY 1, 2",
    );
    let expected = rows(
        &conn,
        "SELECT l.loan_id, e.entry_seq, min(l.sequence), max(l.sequence) \
         FROM journal_lines l JOIN journal_entries e ON e.entry_id = l.entry_id \
         WHERE l.loan_id IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2",
    );
    assert_eq!(spans.len(), 10, "{spans:?}");
    assert_eq!(spans, expected);
    let accrual = rows(
        &conn,
        "SELECT first_line, last_line FROM loan_entries WHERE event_type = 'accrual'",
    );
    assert_eq!(accrual, ["Integer(1)|Integer(2)"]);
    let index: i64 = conn
        .query_row(
            "SELECT count(*) FROM sqlite_master WHERE type = 'index' AND name = 'journal_lines_loan'",
            [],
            |r| r.get(0),
        )
        .expect("schema");
    assert_eq!(index, 0, "journal_lines_loan is dropped");
    let edit = conn.execute("UPDATE loan_entries SET first_line = 1", []);
    assert!(
        edit.expect_err("loan_entries stays append-only")
            .to_string()
            .contains("append-only")
    );
}

#[test]
fn after_the_upgrade_the_database_refuses_non_integer_money_and_keeps_its_guards() {
    let (_dir, path) = migrated_old_database();
    let conn = Connection::open(&path).expect("open");
    let real_total = conn.execute(
        "UPDATE account_balances SET dr_minor = 9223372036854775807.0 * 2 WHERE account_code = '1100'",
        [],
    );
    assert!(
        real_total
            .expect_err("a REAL total is refused")
            .to_string()
            .contains("CHECK constraint failed"),
    );
    let real_interest = conn.execute(
        "INSERT INTO accrual_lines SELECT entry_id, loan_id || 'x', tenant_id, program_id, accrual_date, \
         day_count_convention, outstanding_principal_minor, annual_rate_bps, 1.5 FROM accrual_lines LIMIT 1",
        [],
    );
    assert!(real_interest.is_err(), "a REAL interest is refused");
    let edit = conn.execute("UPDATE accrual_lines SET interest_minor = 1", []);
    assert!(
        edit.expect_err("accrual_lines stays append-only")
            .to_string()
            .contains("append-only")
    );
}

#[test]
fn the_upgraded_service_serves_old_loans_under_the_new_rules() {
    let (dir, path) = old_database();
    // The old release kept its answers for 24 h, and the dump's keys expired on 2026-12-02 by
    // the wall clock the service reads. The replay below is about a key still inside its
    // retention, so only the expiry moves (to 2100); the stored answers stay as written.
    Connection::open(&path)
        .expect("open")
        .execute("UPDATE idempotency_keys SET expires_at = 4102444800", [])
        .expect("keep the old keys inside their retention");
    let signing = hpts::auth::dev::generate_signing_key().expect("key");
    let jwks = dir.path().join("jwks.json");
    write_jwks(&jwks, &[(KID, &signing)]);
    let mut app = Server::start(&path, &jwks, None);
    let tenant = Uuid::parse_str(TENANT_1).expect("uuid");
    let token = token(&signing, tenant);
    let client = reqwest::blocking::Client::new();
    let post = |key: &str, body: &Value| {
        client
            .post(format!("{}/v1/payments", app.address))
            .bearer_auth(&token)
            .header("Idempotency-Key", key)
            .json(body)
            .send()
            .expect("send")
    };
    let payment = |date: &str| {
        json!({
            "loan_id": LOAN_1, "borrower_id": BORROWER_1, "amount_minor": "1000", "currency": "USD",
            "effective_at": date, "source_method": "ach"
        })
    };

    // A replay of a request the old release answered returns its stored body.
    let replay = client
        .post(format!("{}/v1/payments", app.address))
        .bearer_auth(&token)
        .header("Idempotency-Key", "pay:l1:1")
        .json(&json!({
            "loan_id": LOAN_1, "borrower_id": BORROWER_1, "amount_minor": "20000", "currency": "USD",
            "effective_at": "2026-10-15", "source_method": "ach", "external_ref": "ach-0001"
        }))
        .send()
        .expect("send");
    assert_eq!(replay.status().as_u16(), 200);

    let early = post("pay:l1:early", &payment("2026-09-30"));
    assert_eq!(early.status().as_u16(), 422);
    let body: Value = early.json().expect("json");
    assert_eq!(body["code"], "effective_before_loan");

    let on_time = post("pay:l1:2", &payment("2026-11-01"));
    assert_eq!(on_time.status().as_u16(), 201);

    let balance: Value = client
        .get(format!("{}/v1/loans/{LOAN_1}/balance", app.address))
        .bearer_auth(&token)
        .send()
        .expect("send")
        .json()
        .expect("json");
    // 150,000 disbursed + 1,500 fee + 36 interest − 20,000 − 1,000 paid.
    assert_eq!(balance["total_exposure_minor"], "130536");
    app.kill_9();
    let verified = run_hpts(&["verify", "--database", &db_arg(&path)]);
    assert!(verified.status.success(), "{}", output_text(&verified));
}

#[test]
fn finished_outbox_rows_of_the_previous_release_get_the_time_retention_counts_from() {
    let (_dir, path) = old_database();
    {
        // That release delivered and gave up rows too; the fixture's are all pending.
        let conn = Connection::open(&path).expect("open");
        conn.execute_batch(
            "UPDATE webhook_outbox SET status = 'delivered', attempts = 1, \
             delivered_at = '2026-12-01T09:46:01.500000Z' WHERE outbox_seq = 1; \
             UPDATE webhook_outbox SET status = 'failed', attempts = 9, \
             next_attempt_ms = 1796400000000 WHERE outbox_seq = 2;",
        )
        .expect("finish two rows");
    }

    let migrated = run_hpts(&["migrate", "--database", &db_arg(&path)]);
    assert!(migrated.status.success(), "{}", output_text(&migrated));

    let conn = Connection::open(&path).expect("open");
    let finished = rows(
        &conn,
        "SELECT outbox_seq, status, finished_ms FROM webhook_outbox ORDER BY outbox_seq",
    );
    assert_eq!(finished.len(), 10, "{finished:?}");
    // The delivered row from its delivered_at, the given-up one from its last attempt; the
    // pending rows have none, so retention never purges them.
    assert_eq!(
        finished[0],
        "Integer(1)|Text(\"delivered\")|Integer(1796118361500)"
    );
    assert_eq!(
        finished[1],
        "Integer(2)|Text(\"failed\")|Integer(1796400000000)"
    );
    for row in &finished[2..] {
        assert!(row.ends_with("Text(\"pending\")|Null"), "{row}");
    }
    let verified = run_hpts(&["verify", "--database", &db_arg(&path)]);
    assert!(verified.status.success(), "{}", output_text(&verified));
}

/// One journal line written by hand: tenant, account, direction, amount, currency.
type HandLine<'a> = (&'a str, &'a str, &'a str, i64, &'a str);

/// Writes `lines` and then a header claiming `line_count` of them for a new entry of
/// `TENANT_1`, straight into the file (as a tool or a bug could), inside a transaction that is
/// rolled back; the header insert's answer.
fn post_by_hand(
    conn: &mut Connection,
    lines: &[HandLine<'_>],
    line_count: i64,
) -> Result<(), String> {
    let tx = conn.transaction().expect("begin");
    // Every attempt is rolled back, so each can use the same new id.
    let entry_id = "01900000-0000-7000-8000-00000000e001";
    for (i, (tenant, account, direction, amount, currency)) in lines.iter().enumerate() {
        tx.execute(
            "INSERT INTO journal_lines (entry_id, sequence, tenant_id, account_code, direction, \
             amount_minor, currency, layer, effective_at) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 'SETTLED', '2026-01-15')",
            rusqlite::params![
                entry_id,
                i64::try_from(i + 1).expect("few lines"),
                tenant,
                account,
                direction,
                amount,
                currency
            ],
        )
        .expect("a line goes in before its header");
    }
    let header = tx.execute(
        "INSERT INTO journal_entries (entry_id, tenant_id, event_id, event_type, effective_at, \
         posted_at, correlation_id, description, line_count, prev_hash, hash) \
         SELECT ?1, tenant_id, event_id, event_type, effective_at, posted_at, correlation_id, \
         description, ?2, prev_hash, hash FROM journal_entries WHERE tenant_id = ?3 LIMIT 1",
        rusqlite::params![entry_id, line_count, TENANT_1],
    );
    tx.rollback().expect("rollback");
    match header {
        Ok(1) => Ok(()),
        Ok(n) => Err(format!("{n} headers written")),
        Err(e) => Err(e.to_string()),
    }
}

#[test]
fn after_the_upgrade_the_database_still_refuses_every_header_whose_lines_do_not_balance() {
    let (_dir, path) = migrated_old_database();
    let mut conn = Connection::open(&path).expect("open");
    let other = "01900000-0000-7000-8000-00000000a002";
    let t = TENANT_1;
    assert_eq!(
        post_by_hand(
            &mut conn,
            &[(t, "1100", "DR", 100, "USD"), (t, "2000", "CR", 100, "USD")],
            2
        ),
        Ok(()),
        "a balanced entry goes in"
    );
    let two_currencies = [
        (t, "1000", "DR", 100, "USD"),
        (t, "4100", "CR", 100, "USD"),
        (t, "1000", "DR", 7, "EUR"),
        (t, "4100", "CR", 7, "EUR"),
    ];
    assert_eq!(
        post_by_hand(&mut conn, &two_currencies, 4),
        Ok(()),
        "an entry balanced in each of two currencies goes in"
    );
    let refusals: [(&str, Vec<HandLine<'_>>, i64, &str); 6] = [
        (
            "a header claiming more lines than there are",
            vec![(t, "1100", "DR", 100, "USD"), (t, "2000", "CR", 100, "USD")],
            3,
            "unbalanced journal entry: line count",
        ),
        (
            "a header with no lines",
            vec![],
            2,
            "unbalanced journal entry: line count",
        ),
        (
            "debits one more than credits",
            vec![(t, "1100", "DR", 100, "USD"), (t, "2000", "CR", 99, "USD")],
            2,
            "unbalanced journal entry: debits differ from credits",
        ),
        (
            "equal totals across two currencies",
            vec![(t, "1000", "DR", 100, "USD"), (t, "4100", "CR", 100, "EUR")],
            2,
            "unbalanced journal entry: debits differ from credits",
        ),
        (
            "one of two currencies off by one",
            vec![
                (t, "1000", "DR", 100, "USD"),
                (t, "4100", "CR", 100, "USD"),
                (t, "1000", "DR", 7, "EUR"),
                (t, "4100", "CR", 6, "EUR"),
            ],
            4,
            "unbalanced journal entry: debits differ from credits",
        ),
        (
            "a balanced entry with a line of another tenant",
            vec![
                (t, "1100", "DR", 100, "USD"),
                (other, "2000", "CR", 100, "USD"),
            ],
            2,
            "journal lines belong to another tenant",
        ),
    ];
    for (what, lines, line_count, message) in refusals {
        let refused = post_by_hand(&mut conn, &lines, line_count).expect_err(what);
        assert!(refused.contains(message), "{what}: {refused}");
    }
}
