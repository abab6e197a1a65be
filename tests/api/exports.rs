//! `GET /v1/exports/journal` and `hpts export` (SPEC §6d), checked by the accountant's own
//! tools: a tenant with three currencies (USD, JPY with exponent 0, BHD with exponent 3), every
//! event type and two period closes is exported in both formats; `bean-check` and `hledger
//! check` accept the files with their balance assertions, and the balances each tool computes —
//! in total and as of each close — equal `GET /v1/trial-balance`. The CLI writes the same bytes
//! from the database file beside the running service.

use std::path::Path;
use std::process::Command;

use hpts::ledger::accounts::Account;
use hpts::ledger::export::account_name;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::accounting_tools::{
    Balances, assert_tools_accept, beancount_balances, hledger_balances,
};
use crate::helpers::{Caller, key, spawn_app, text, uuid};

/// Posts `body` to `path`, asserting 201; returns the answer.
async fn created(c: &Caller<'_>, path: &str, body: Value) -> Value {
    let a = c.post(path, &key("export-test"), &body).await;
    assert_eq!(a.status, 201, "{path}: {}", a.text);
    a.json()
}

/// A loan opened by a disbursement in `currency` on `date`.
async fn open(c: &Caller<'_>, amount: &str, currency: &str, date: &str) -> (Uuid, Uuid, Value) {
    let (loan, borrower) = (uuid(), uuid());
    let d = created(
        c,
        "/v1/disbursements",
        json!({"loan_id": loan, "borrower_id": borrower, "amount_minor": amount,
               "currency": currency, "effective_at": date, "method": "ach"}),
    )
    .await;
    (loan, borrower, d)
}

async fn pay(
    c: &Caller<'_>,
    loan: (Uuid, Uuid),
    amount: &str,
    currency: &str,
    date: &str,
) -> Value {
    created(
        c,
        "/v1/payments",
        json!({"loan_id": loan.0, "borrower_id": loan.1, "amount_minor": amount,
               "currency": currency, "effective_at": date, "source_method": "ach"}),
    )
    .await
}

async fn fee(c: &Caller<'_>, loan: Uuid, amount: &str, currency: &str, date: &str) -> Value {
    created(
        c,
        "/v1/fees",
        json!({"loan_id": loan, "fee_type": "late", "amount_minor": amount,
               "currency": currency, "effective_at": date}),
    )
    .await
}

/// January and February of a small lender, with a close after each month.
async fn a_lenders_first_two_months(c: &Caller<'_>) {
    // USD: a loan through its whole life.
    let (usd, usd_borrower, disbursed) = open(c, "100000", "USD", "2026-01-05").await;
    created(
        c,
        "/v1/disbursement-settlements",
        json!({"disbursement_event_id": text(&disbursed, "disbursement_event_id"),
               "effective_at": "2026-01-06", "bank_account_ref": "ops-1"}),
    )
    .await;
    let late = fee(c, usd, "2500", "USD", "2026-01-07").await;
    let wrong = fee(c, usd, "999", "USD", "2026-01-07").await;
    created(
        c,
        "/v1/reversals",
        json!({"reverses_entry_id": text(&wrong, "journal_entry_id"), "reason_code": "duplicate"}),
    )
    .await;
    created(
        c,
        "/v1/accruals/batch",
        json!({"program_id": uuid(), "accrual_date": "2026-01-08", "day_count_convention": "ACT_365",
               "loans": [{"loan_id": usd, "outstanding_principal_minor": "100000", "interest_minor": "27"}]}),
    )
    .await;
    let paid = pay(c, (usd, usd_borrower), "10000", "USD", "2026-01-10").await;
    created(
        c,
        "/v1/payment-returns",
        json!({"payment_event_id": text(&paid, "payment_event_id"), "return_reason": "insufficient_funds",
               "return_code": "R01", "effective_at": "2026-01-12", "nsf_fee_minor": "3000"}),
    )
    .await;
    created(
        c,
        "/v1/fee-waivers",
        json!({"fee_event_id": text(&late, "fee_event_id"), "amount_minor": "1000",
               "reason": "goodwill; \"first\" late fee", "effective_at": "2026-01-13"}),
    )
    .await;
    created(
        c,
        "/v1/adjustments",
        json!({"effective_at": "2026-01-20", "description": "bank charge: wire fee",
               "lines": [{"account_code": "5000", "direction": "DR", "amount_minor": "1500", "currency": "USD"},
                         {"account_code": "1000", "direction": "CR", "amount_minor": "1500", "currency": "USD"}]}),
    )
    .await;
    // JPY (exponent 0) and BHD (exponent 3).
    let (jpy, jpy_borrower, _) = open(c, "700000", "JPY", "2026-01-09").await;
    pay(c, (jpy, jpy_borrower), "12345", "JPY", "2026-01-25").await;
    let (bhd, bhd_borrower, _) = open(c, "1234567", "BHD", "2026-01-15").await;
    pay(c, (bhd, bhd_borrower), "1001", "BHD", "2026-01-30").await;
    created(
        c,
        "/v1/period-closes",
        json!({"through_date": "2026-01-31"}),
    )
    .await;

    // February: the USD loan is written off and partly recovered.
    created(
        c,
        "/v1/charge-offs",
        json!({"loan_id": usd, "effective_at": "2026-02-15", "reason_code": "delinquency"}),
    )
    .await;
    let recovered = pay(c, (usd, usd_borrower), "4000", "USD", "2026-02-20").await;
    assert_eq!(text(&recovered, "recovery_minor"), "4000");
    pay(c, (jpy, jpy_borrower), "5000", "JPY", "2026-02-10").await;
    created(
        c,
        "/v1/period-closes",
        json!({"through_date": "2026-02-28"}),
    )
    .await;
    // March, after the lock.
    pay(c, (jpy, jpy_borrower), "100", "JPY", "2026-03-02").await;
}

/// `GET /v1/trial-balance` of every currency as of `date`, as the tools report balances:
/// tool account name and currency, debit-positive minor units, zeros left out.
async fn trial_balances(c: &Caller<'_>, date: &str) -> Balances {
    let mut out = Balances::new();
    for currency in ["BHD", "JPY", "USD"] {
        let a = c
            .get(&format!(
                "/v1/trial-balance?currency={currency}&as_of_date={date}"
            ))
            .await;
        assert_eq!(a.status, 200, "{}", a.text);
        let tb = a.json();
        assert_eq!(tb["balanced"], true, "{tb}");
        for row in tb["accounts"].as_array().expect("accounts") {
            let account = Account::from_code(row["account_code"].as_str().expect("code"))
                .expect("a chart account");
            let dr: i128 = text(row, "dr_total_minor").parse().expect("dr");
            let cr: i128 = text(row, "cr_total_minor").parse().expect("cr");
            if dr != cr {
                out.insert(
                    (account_name(account).to_owned(), currency.to_owned()),
                    dr - cr,
                );
            }
        }
    }
    out
}

async fn export(c: &Caller<'_>, format: &str, dir: &Path) -> std::path::PathBuf {
    let a = c.get(&format!("/v1/exports/journal?format={format}")).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert_eq!(
        a.headers.get("content-type").and_then(|v| v.to_str().ok()),
        Some("text/plain; charset=utf-8")
    );
    let path = dir.join(format!("ledger.{format}"));
    std::fs::write(&path, &a.text).expect("write the export");
    path
}

#[tokio::test]
async fn both_exports_pass_their_tools_checks_and_the_tools_balances_equal_the_trial_balance() {
    let app = spawn_app().await;
    let c = app.tenant();
    a_lenders_first_two_months(&c).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let beancount = export(&c, "beancount", dir.path()).await;
    let hledger = export(&c, "hledger", dir.path()).await;

    // Each tool's own check, balance assertions at both closes included.
    assert_tools_accept(&beancount, &hledger);
    let bean = std::fs::read_to_string(&beancount).expect("read");
    // Each close is asserted: Beancount checks a balance at the start of a day, so the day after.
    for day in ["2026-02-01 balance ", "2026-03-01 balance "] {
        assert!(bean.contains(day), "no assertions dated {day}");
    }
    let ledger = std::fs::read_to_string(&hledger).expect("read");
    assert!(
        ledger.matches(" = ").count() >= 2 * 10,
        "hledger assertions at both closes"
    );

    // The balances each tool computes equal the trial balance: now, and as of each close.
    let now = trial_balances(&c, "2026-12-01").await;
    assert!(now.keys().any(|(_, cur)| cur == "JPY") && now.keys().any(|(_, cur)| cur == "BHD"));
    assert_eq!(
        beancount_balances(&beancount, None),
        now,
        "beancount, all entries"
    );
    assert_eq!(
        hledger_balances(&hledger, None),
        now,
        "hledger, all entries"
    );
    for (through, next_day) in [("2026-01-31", "2026-02-01"), ("2026-02-28", "2026-03-01")] {
        let day = hpts::clock::parse_date(next_day).expect("date");
        let expected = trial_balances(&c, through).await;
        assert_eq!(
            beancount_balances(&beancount, Some(day)),
            expected,
            "beancount as of {through}"
        );
        assert_eq!(
            hledger_balances(&hledger, Some(day)),
            expected,
            "hledger as of {through}"
        );
    }

    // Every entry is in the file with its id and event type.
    for event_type in [
        "disbursement",
        "disbursement_settled",
        "fee_assessed",
        "reversal",
        "accrual",
        "payment_received",
        "payment_returned",
        "fee_waived",
        "manual_adjustment",
        "chargeoff",
        "recovery",
    ] {
        assert!(bean.contains(event_type), "beancount lacks {event_type}");
    }
}

#[tokio::test]
async fn hpts_export_writes_the_same_journal_from_the_file_beside_the_running_service() {
    let app = spawn_app().await;
    let c = app.tenant();
    a_lenders_first_two_months(&c).await;
    let dir = tempfile::tempdir().expect("tempdir");
    for format in ["beancount", "hledger"] {
        let served = std::fs::read_to_string(export(&c, format, dir.path()).await).expect("read");
        let out = dir.path().join(format!("cli.{format}"));
        let run = Command::new(env!("CARGO_BIN_EXE_hpts"))
            .args([
                "export",
                "--format",
                format,
                "--tenant",
                &c.tenant.to_string(),
                "--database",
            ])
            .arg(&app.db_path)
            .arg("--out")
            .arg(&out)
            .env_remove("HPTS_DATABASE")
            .env_remove("HPTS_DATA_DIR")
            .output()
            .expect("run hpts export");
        let stderr = String::from_utf8_lossy(&run.stderr);
        assert!(run.status.success(), "hpts export failed: {stderr}");
        assert!(stderr.contains("entries"), "progress on stderr: {stderr}");
        assert_eq!(
            std::fs::read_to_string(&out).expect("the CLI's file"),
            served,
            "{format}: the CLI and the API write the same journal"
        );
    }
}

#[tokio::test]
async fn an_export_needs_a_known_format_and_the_ledger_read_scope() {
    let app = spawn_app().await;
    let c = app.tenant();
    for query in ["", "?format=csv", "?format=beancount&from_date=2026-13-01"] {
        let a = c.get(&format!("/v1/exports/journal{query}")).await;
        assert_eq!(a.status, 400, "{query}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{query}");
    }
    let no_scope = app.caller(c.tenant, &["hpts:balances:read"]);
    let a = no_scope.get("/v1/exports/journal?format=hledger").await;
    assert_eq!(a.status, 403, "{}", a.text);
    // Another tenant's export holds none of this tenant's entries.
    a_lenders_first_two_months(&c).await;
    let other = app.tenant();
    let a = other.get("/v1/exports/journal?format=beancount").await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(!a.text.contains("Disbursement of"), "{}", a.text);
}
