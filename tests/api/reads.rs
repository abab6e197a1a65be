//! The read API (SPEC §7): loan and account balances now and as of an effective date (checked
//! against hand-computed numbers), the loan journal's keyset pagination (stable under concurrent
//! writes, tamper-proof tokens, filters), the reconciliation report, and `/metrics`.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ALL_SCOPES, Answer, Caller, TestApp, assert_problem, key, minor, now, spawn_app,
    spawn_app_with, uuid,
};
use crate::payments::Owed;

// ---------------------------------------------------------------------------------------------
// Request bodies with explicit effective dates.

fn disbursement(loan: Uuid, borrower: Uuid, amount: i64, date: &str) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": date,
        "method": "ach",
    })
}

fn fee(loan: Uuid, amount: i64, date: &str) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "fee_type": "late",
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": date,
    })
}

fn payment(loan: Uuid, borrower: Uuid, amount: i64, date: &str) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": date,
        "source_method": "ach",
    })
}

fn accrual(date: &str, loans: &[(Uuid, i64, i64)]) -> Value {
    let items: Vec<Value> = loans
        .iter()
        .map(|(loan, principal, interest)| {
            json!({
                "loan_id": loan.to_string(),
                "outstanding_principal_minor": principal.to_string(),
                "interest_minor": interest.to_string(),
            })
        })
        .collect();
    json!({
        "program_id": uuid().to_string(),
        "accrual_date": date,
        "day_count_convention": "ACT_365",
        "loans": items,
    })
}

// ---------------------------------------------------------------------------------------------
// Small helpers.

/// POSTs `body` to `path` with a fresh key, asserts 201 and returns the `journal_entry_id`.
async fn post(c: &Caller<'_>, path: &str, body: &Value) -> String {
    let a = c.post(path, &key("reads"), body).await;
    assert_eq!(a.status, 201, "POST {path} {body}: {}", a.text);
    a.json()["journal_entry_id"]
        .as_str()
        .expect("journal_entry_id")
        .to_owned()
}

/// GETs `path`, asserts 200 and returns the body.
async fn get_ok(c: &Caller<'_>, path: &str) -> Value {
    let a = c.get(path).await;
    assert_eq!(a.status, 200, "GET {path}: {}", a.text);
    a.json()
}

/// A loan's balance as the API shows it, in minor units.
#[derive(Debug, PartialEq, Eq)]
struct LoanBalance {
    principal: i64,
    interest: i64,
    fees: i64,
    suspense: i64,
    total_exposure: i64,
    disbursed_total: i64,
    paid_total: i64,
}

async fn loan_balance(c: &Caller<'_>, loan: Uuid, as_of: Option<&str>) -> LoanBalance {
    let path = match as_of {
        None => format!("/v1/loans/{loan}/balance"),
        Some(d) => format!("/v1/loans/{loan}/balance?as_of_date={d}"),
    };
    let b = get_ok(c, &path).await;
    assert_eq!(b["loan_id"], loan.to_string(), "{b}");
    assert_eq!(b["currency"], "USD", "{b}");
    if let Some(d) = as_of {
        assert_eq!(b["as_of_date"], d, "{b}");
    }
    let owed = Owed::of(&b);
    LoanBalance {
        principal: owed.principal,
        interest: owed.interest,
        fees: owed.fees,
        suspense: owed.suspense,
        total_exposure: minor(&b, "total_exposure_minor"),
        disbursed_total: owed.disbursed,
        paid_total: owed.paid,
    }
}

/// `(dr, cr, normal)` of a USD SETTLED account balance, checking the echoed fields.
async fn account_balance(c: &Caller<'_>, code: &str, as_of: Option<&str>) -> (i64, i64, i64) {
    let path = match as_of {
        None => format!("/v1/accounts/{code}/balance?currency=USD"),
        Some(d) => format!("/v1/accounts/{code}/balance?currency=USD&as_of_date={d}"),
    };
    let b = get_ok(c, &path).await;
    assert_eq!(b["account_code"], code, "{b}");
    assert_eq!(b["currency"], "USD", "{b}");
    assert_eq!(b["layer"], "SETTLED", "the default layer: {b}");
    assert!(
        b["account_name"].as_str().is_some_and(|n| !n.is_empty()),
        "{b}"
    );
    if let Some(d) = as_of {
        assert_eq!(b["as_of_date"], d, "{b}");
    }
    (
        minor(&b, "dr_balance_minor"),
        minor(&b, "cr_balance_minor"),
        minor(&b, "normal_balance_minor"),
    )
}

/// The reconciliation report (asserting 200).
async fn reconciliation(c: &Caller<'_>, as_of: Option<&str>) -> Value {
    let path = match as_of {
        None => "/v1/reconciliation/status".to_owned(),
        Some(d) => format!("/v1/reconciliation/status?as_of_date={d}"),
    };
    get_ok(c, &path).await
}

/// `name → status` of the report's checks.
fn check_statuses(report: &Value) -> HashMap<String, String> {
    report["checks"]
        .as_array()
        .unwrap_or_else(|| panic!("no checks: {report}"))
        .iter()
        .map(|c| {
            assert!(c["detail"].is_string(), "{c}");
            (
                c["name"].as_str().expect("name").to_owned(),
                c["status"].as_str().expect("status").to_owned(),
            )
        })
        .collect()
}

use crate::helpers::RECONCILIATION_CHECKS as CHECK_NAMES;

/// Asserts a clean report: integrity ok, every one of the seven checks ok, roll-up ok.
fn assert_all_ok(report: &Value) {
    assert_eq!(report["ledger_integrity"]["status"], "ok", "{report}");
    assert_eq!(
        report["ledger_integrity"]["mismatched_account_count"], 0,
        "{report}"
    );
    let statuses = check_statuses(report);
    let mut names: Vec<&str> = statuses.keys().map(String::as_str).collect();
    names.sort_unstable();
    let mut expected = CHECK_NAMES.to_vec();
    expected.sort_unstable();
    assert_eq!(names, expected, "{report}");
    for (name, status) in &statuses {
        assert_eq!(status, "ok", "check {name}: {report}");
    }
    assert_eq!(report["portfolio_rollup"]["status"], "ok", "{report}");
    assert_eq!(
        report["portfolio_rollup"]["gl_principal_minor"],
        report["portfolio_rollup"]["sum_of_loan_balances_minor"],
        "{report}"
    );
}

// ---------------------------------------------------------------------------------------------
// Balances.

/// Posts the five-step scenario: a disbursement, a fee, an accrual, a payment (whose allocation
/// is checked) and a second disbursement, each on its own date.
async fn post_the_dated_disbursements_fee_accrual_and_payment(
    c: &Caller<'_>,
    loan: Uuid,
    borrower: Uuid,
) {
    // 2026-01-10 disburse 1,000,000: Dr 1100 / Cr 2000.
    post(
        c,
        "/v1/disbursements",
        &disbursement(loan, borrower, 1_000_000, "2026-01-10"),
    )
    .await;
    // 2026-01-15 fee 2,500: Dr 1300 / Cr 4100.
    post(c, "/v1/fees", &fee(loan, 2_500, "2026-01-15")).await;
    // 2026-01-20 interest 3,000 on the exact principal: Dr 1200 / Cr 4000.
    post(
        c,
        "/v1/accruals/batch",
        &accrual("2026-01-20", &[(loan, 1_000_000, 3_000)]),
    )
    .await;
    // 2026-02-01 payment 50,000: fees 2,500, interest 3,000, principal 44,500.
    let a = c
        .post_payment(&key("pay"), &payment(loan, borrower, 50_000, "2026-02-01"))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        a.json()["allocation"],
        json!({
            "fees_minor": "2500",
            "interest_minor": "3000",
            "principal_minor": "44500",
            "suspense_minor": "0"
        })
    );
    // 2026-02-10 second disbursement 200,000.
    post(
        c,
        "/v1/disbursements",
        &disbursement(loan, borrower, 200_000, "2026-02-10"),
    )
    .await;
}

/// The loan balance now, and as of 2026-01-12 (before the fee and accrual).
async fn assert_loan_balances_now_and_as_of_jan_12(c: &Caller<'_>, loan: Uuid) {
    assert_eq!(
        loan_balance(c, loan, None).await,
        LoanBalance {
            principal: 1_155_500,
            interest: 0,
            fees: 0,
            suspense: 0,
            total_exposure: 1_155_500,
            disbursed_total: 1_200_000,
            paid_total: 50_000,
        },
        "now"
    );
    assert_eq!(
        loan_balance(c, loan, Some("2026-01-12")).await,
        LoanBalance {
            principal: 1_000_000,
            interest: 0,
            fees: 0,
            suspense: 0,
            total_exposure: 1_000_000,
            disbursed_total: 1_000_000,
            paid_total: 0,
        },
        "as of 2026-01-12: only the first disbursement"
    );
}

/// The loan balance as of 2026-01-31, 2026-02-05 and the days either side of the first
/// disbursement.
async fn assert_loan_balances_as_of_past_dates(c: &Caller<'_>, loan: Uuid) {
    assert_eq!(
        loan_balance(c, loan, Some("2026-01-31")).await,
        LoanBalance {
            principal: 1_000_000,
            interest: 3_000,
            fees: 2_500,
            suspense: 0,
            total_exposure: 1_005_500,
            disbursed_total: 1_000_000,
            paid_total: 0,
        },
        "as of 2026-01-31: disbursement, fee and accrual"
    );
    assert_eq!(
        loan_balance(c, loan, Some("2026-02-05")).await,
        LoanBalance {
            principal: 955_500,
            interest: 0,
            fees: 0,
            suspense: 0,
            total_exposure: 955_500,
            disbursed_total: 1_000_000,
            paid_total: 50_000,
        },
        "as of 2026-02-05: after the payment, before the second disbursement"
    );
    assert_eq!(
        loan_balance(c, loan, Some("2026-01-09")).await,
        LoanBalance {
            principal: 0,
            interest: 0,
            fees: 0,
            suspense: 0,
            total_exposure: 0,
            disbursed_total: 0,
            paid_total: 0,
        },
        "as of the day before the first disbursement"
    );
    // The edge of the date filter is inclusive: an entry effective on the date counts.
    assert_eq!(
        loan_balance(c, loan, Some("2026-01-10")).await.principal,
        1_000_000
    );
}

/// Every account's balance now.
async fn assert_account_balances_now(c: &Caller<'_>) {
    // Account balances: (dr, cr, normal). Debit-normal: DR − CR; credit-normal: CR − DR.
    let now: [(&str, (i64, i64, i64)); 8] = [
        ("1000", (50_000, 0, 50_000)),
        ("1100", (1_200_000, 44_500, 1_155_500)),
        ("1200", (3_000, 3_000, 0)),
        ("1300", (2_500, 2_500, 0)),
        ("2000", (0, 1_200_000, 1_200_000)),
        ("2100", (0, 0, 0)),
        ("4000", (0, 3_000, 3_000)),
        ("4100", (0, 2_500, 2_500)),
    ];
    for (code, expected) in now {
        assert_eq!(
            account_balance(c, code, None).await,
            expected,
            "account {code} now"
        );
    }
}

/// Every account's balance as of 2026-01-31.
async fn assert_account_balances_as_of_jan_31(c: &Caller<'_>) {
    let end_of_january: [(&str, (i64, i64, i64)); 8] = [
        ("1000", (0, 0, 0)),
        ("1100", (1_000_000, 0, 1_000_000)),
        ("1200", (3_000, 0, 3_000)),
        ("1300", (2_500, 0, 2_500)),
        ("2000", (0, 1_000_000, 1_000_000)),
        ("2100", (0, 0, 0)),
        ("4000", (0, 3_000, 3_000)),
        ("4100", (0, 2_500, 2_500)),
    ];
    for (code, expected) in end_of_january {
        assert_eq!(
            account_balance(c, code, Some("2026-01-31")).await,
            expected,
            "account {code} as of 2026-01-31"
        );
    }
}

#[tokio::test]
async fn loan_and_account_balances_match_a_hand_computed_scenario_now_and_as_of_past_dates() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    post_the_dated_disbursements_fee_accrual_and_payment(&c, loan, borrower).await;
    assert_loan_balances_now_and_as_of_jan_12(&c, loan).await;
    assert_loan_balances_as_of_past_dates(&c, loan).await;
    assert_account_balances_now(&c).await;
    assert_account_balances_as_of_jan_31(&c).await;

    // The report agrees, now and as of the end of January.
    let report = reconciliation(&c, None).await;
    assert_all_ok(&report);
    assert_eq!(report["portfolio_rollup"]["gl_principal_minor"], "1155500");
    let report = reconciliation(&c, Some("2026-01-31")).await;
    assert_all_ok(&report);
    assert_eq!(report["as_of_date"], "2026-01-31");
    assert_eq!(report["portfolio_rollup"]["gl_principal_minor"], "1000000");
    assert_eq!(
        report["portfolio_rollup"]["sum_of_loan_balances_minor"],
        "1000000"
    );
}

#[tokio::test]
async fn gl_principal_receivable_equals_the_sum_of_loan_principal_balances() {
    let app = spawn_app().await;
    let c = app.tenant();
    // Five loans: some repaid in part, one overpaid (suspense), one with fees.
    let mut loans = Vec::new();
    for (i, amount) in [100_000_i64, 250_000, 75_000, 1_000_000, 33_333]
        .into_iter()
        .enumerate()
    {
        let (loan, borrower) = (uuid(), uuid());
        post(
            &c,
            "/v1/disbursements",
            &disbursement(loan, borrower, amount, "2026-03-01"),
        )
        .await;
        match i {
            0 => {
                post(
                    &c,
                    "/v1/payments",
                    &payment(loan, borrower, 40_000, "2026-03-05"),
                )
                .await;
            }
            1 => {
                post(&c, "/v1/fees", &fee(loan, 1_000, "2026-03-02")).await;
                post(
                    &c,
                    "/v1/payments",
                    &payment(loan, borrower, 11_000, "2026-03-06"),
                )
                .await;
            }
            2 => {
                // Overpaid by 5,000: principal 0, suspense 5,000.
                post(
                    &c,
                    "/v1/payments",
                    &payment(loan, borrower, 80_000, "2026-03-07"),
                )
                .await;
            }
            _ => {}
        }
        loans.push(loan);
    }
    // Another tenant's loan must not count.
    let other = app.tenant();
    other.open_loan("999999").await;

    let mut sum = 0;
    for loan in &loans {
        sum += loan_balance(&c, *loan, None).await.principal;
    }
    assert_eq!(
        sum,
        60_000 + 240_000 + 1_000_000 + 33_333,
        "hand-computed principal balances"
    );
    let (_, _, gl_1100) = account_balance(&c, "1100", None).await;
    assert_eq!(
        gl_1100, sum,
        "GL 1100 equals the sum of loan principal balances"
    );
    let (_, _, suspense) = account_balance(&c, "2100", None).await;
    assert_eq!(suspense, 5_000);

    let report = reconciliation(&c, None).await;
    assert_all_ok(&report);
    assert_eq!(
        report["portfolio_rollup"]["gl_principal_minor"],
        sum.to_string()
    );
    assert_eq!(
        report["portfolio_rollup"]["sum_of_loan_balances_minor"],
        sum.to_string()
    );
}

#[tokio::test]
async fn account_balance_query_rules_are_enforced() {
    let app = spawn_app().await;
    let c = app.tenant();
    c.open_loan("5000").await;

    let a = c.get("/v1/accounts/1100/balance").await;
    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["currency"], "{}", a.text);

    for bad_code in ["110", "11000", "11a0", "abcd"] {
        let a = c
            .get(&format!("/v1/accounts/{bad_code}/balance?currency=USD"))
            .await;
        assert_problem(&a, 400, "validation_failed");
        assert_eq!(a.error_fields(), ["account_code"], "{bad_code}: {}", a.text);
    }

    let a = c.get("/v1/accounts/9999/balance?currency=USD").await;
    assert_problem(&a, 404, "not_found");

    for bad_layer in ["settled", "HOLD", ""] {
        let a = c
            .get(&format!(
                "/v1/accounts/1100/balance?currency=USD&layer={bad_layer}"
            ))
            .await;
        assert_problem(&a, 400, "validation_failed");
        assert_eq!(a.error_fields(), ["layer"], "{bad_layer:?}: {}", a.text);
    }

    for bad_currency in ["usd", "US", "DOLLAR"] {
        let a = c
            .get(&format!(
                "/v1/accounts/1100/balance?currency={bad_currency}"
            ))
            .await;
        assert_problem(&a, 400, "validation_failed");
        assert_eq!(a.error_fields(), ["currency"], "{}", a.text);
    }

    let a = c
        .get("/v1/accounts/1100/balance?currency=USD&as_of_date=2026-02-30")
        .await;
    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["as_of_date"], "{}", a.text);

    // Every posting is SETTLED: the other layers are empty, and so is another currency.
    let b = get_ok(&c, "/v1/accounts/1100/balance?currency=USD&layer=PENDING").await;
    assert_eq!(b["layer"], "PENDING");
    assert_eq!(
        (
            b["dr_balance_minor"].clone(),
            b["normal_balance_minor"].clone()
        ),
        (json!("0"), json!("0"))
    );
    let b = get_ok(&c, "/v1/accounts/1100/balance?currency=EUR").await;
    assert_eq!(b["normal_balance_minor"], "0", "{b}");
    let b = get_ok(&c, "/v1/accounts/1100/balance?currency=USD&layer=SETTLED").await;
    assert_eq!(b["normal_balance_minor"], "5000", "{b}");
    assert_eq!(b["account_name"], "Principal receivable", "{b}");

    // Another tenant sees its own (empty) books, not ours.
    let other = app.tenant();
    let b = get_ok(&other, "/v1/accounts/1100/balance?currency=USD").await;
    assert_eq!(b["dr_balance_minor"], "0", "{b}");

    // Scope.
    let no_scope = app.caller(
        c.tenant,
        &ALL_SCOPES
            .iter()
            .copied()
            .filter(|s| *s != "hpts:balances:read")
            .collect::<Vec<_>>(),
    );
    let a = no_scope.get("/v1/accounts/1100/balance?currency=USD").await;
    assert_problem(&a, 403, "insufficient_scope");
}

#[tokio::test]
async fn a_loan_balance_of_another_tenant_or_an_unknown_loan_is_not_found() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("5000").await;
    let other = app.tenant();

    assert_problem(&other.get_loan_balance(loan).await, 404, "not_found");
    assert_problem(&c.get_loan_balance(uuid()).await, 404, "not_found");
    let a = c
        .get(&format!("/v1/loans/{loan}/balance?as_of_date=2026-13-01"))
        .await;
    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["as_of_date"], "{}", a.text);
    // Ids are accepted in any case.
    let upper = loan.to_string().to_uppercase();
    let b = get_ok(&c, &format!("/v1/loans/{upper}/balance")).await;
    assert_eq!(b["loan_id"], loan.to_string());
}

// ---------------------------------------------------------------------------------------------
// Loan journal pagination.

/// The loan's journal listing at `query` (asserting 200): `(items, next_page_token)`.
async fn journal_page(c: &Caller<'_>, loan: Uuid, query: &str) -> (Vec<Value>, Option<String>) {
    let b = get_ok(c, &format!("/v1/loans/{loan}/journal-entries?{query}")).await;
    let items = b["items"]
        .as_array()
        .unwrap_or_else(|| panic!("no items: {b}"))
        .clone();
    let next = match &b["next_page_token"] {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        other => panic!("next_page_token is neither null nor a string: {other}"),
    };
    (items, next)
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|e| {
            e["journal_entry_id"]
                .as_str()
                .expect("journal_entry_id")
                .to_owned()
        })
        .collect()
}

/// Every entry id of the loan at `filters`, following `next_page_token` with `page_size`.
async fn all_ids(c: &Caller<'_>, loan: Uuid, filters: &str, page_size: u32) -> Vec<String> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let query = match &token {
            None => format!("page_size={page_size}{filters}"),
            Some(t) => format!("page_size={page_size}{filters}&page_token={t}"),
        };
        let (items, next) = journal_page(c, loan, &query).await;
        assert!(items.len() <= page_size as usize);
        out.extend(ids(&items));
        match next {
            None => return out,
            Some(t) => {
                assert_eq!(
                    items.len(),
                    page_size as usize,
                    "a page with a next token is full"
                );
                token = Some(t);
            }
        }
    }
}

/// Opens a loan and posts 1,000 fees on it: the disbursement's and the fees' entry ids.
async fn open_a_loan_with_a_thousand_fees(c: &Caller<'_>) -> (Uuid, Vec<String>) {
    let (loan, _, receipt) = c.open_loan("1000000").await;
    let mut initial: Vec<String> = vec![
        receipt["journal_entry_id"]
            .as_str()
            .expect("entry")
            .to_owned(),
    ];
    let fees: Vec<String> = stream::iter(0..1000)
        .map(|_| {
            let c = &c;
            async move { post(c, "/v1/fees", &fee(loan, 10, "2026-11-10")).await }
        })
        .buffer_unordered(16)
        .collect()
        .await;
    initial.extend(fees);
    assert_eq!(initial.len(), 1001);
    (loan, initial)
}

/// Starts a task that keeps posting fees on the loan until told to stop (at most 2,000), and
/// returns once it has demonstrably posted one: the stop flag and the task, which answers the
/// ids it posted.
async fn start_posting_fees_in_the_background(
    app: &TestApp,
    c: &Caller<'_>,
    loan: Uuid,
) -> (Arc<AtomicBool>, tokio::task::JoinHandle<Vec<String>>) {
    // A separate task keeps posting fees on the same loan while we page.
    let stop = Arc::new(AtomicBool::new(false));
    let posted_during = Arc::new(AtomicUsize::new(0));
    let writer = {
        let (client, address, token) = (app.client.clone(), app.address.clone(), c.token.clone());
        let (stop, posted_during) = (Arc::clone(&stop), Arc::clone(&posted_during));
        tokio::spawn(async move {
            let mut posted = Vec::new();
            while !stop.load(Ordering::SeqCst) && posted.len() < 2000 {
                let r = client
                    .post(format!("{address}/v1/fees"))
                    .bearer_auth(&token)
                    .header("Idempotency-Key", key("fee-during"))
                    .json(&fee(loan, 7, "2026-11-11"))
                    .send()
                    .await
                    .expect("request sent");
                assert_eq!(r.status().as_u16(), 201);
                let body: Value = r.json().await.expect("json");
                posted.push(body["journal_entry_id"].as_str().expect("id").to_owned());
                posted_during.fetch_add(1, Ordering::SeqCst);
            }
            posted
        })
    };
    // Start paging only once the writer is demonstrably running.
    while posted_during.load(Ordering::SeqCst) == 0 && !writer.is_finished() {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    (stop, writer)
}

/// Pages through the loan's journal seven at a time, checking each page's size: the ids in the
/// order the pages gave them.
async fn page_through_the_journal_by_sevens(c: &Caller<'_>, loan: Uuid) -> Vec<String> {
    let mut collected: Vec<String> = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let query = match &token {
            None => "page_size=7".to_owned(),
            Some(t) => format!("page_size=7&page_token={t}"),
        };
        let (items, next) = journal_page(c, loan, &query).await;
        pages += 1;
        assert!(items.len() <= 7, "page {pages} has {} items", items.len());
        collected.extend(ids(&items));
        match next {
            None => break,
            Some(t) => {
                assert_eq!(items.len(), 7, "page {pages} has a next token but is short");
                token = Some(t);
            }
        }
        assert!(pages < 10_000, "paging does not end");
    }
    collected
}

/// The complete listing after everything settled has every entry once, the ones from before
/// paging first, in the order the database records them: that listing.
async fn assert_the_complete_listing_is_every_entry_once_in_posting_order(
    app: &TestApp,
    c: &Caller<'_>,
    loan: Uuid,
    initial: &[String],
    during: &[String],
) -> Vec<String> {
    // The complete listing, in posting order, after everything settled.
    let complete = all_ids(c, loan, "", 500).await;
    assert_eq!(
        complete.len(),
        1001 + during.len(),
        "every posted entry is listed"
    );
    let unique: HashSet<&String> = complete.iter().collect();
    assert_eq!(
        unique.len(),
        complete.len(),
        "the complete listing has no duplicates"
    );
    assert_eq!(complete[0], initial[0], "the disbursement came first");
    let during_set: HashSet<&String> = during.iter().collect();
    assert!(
        complete[..1001].iter().all(|id| !during_set.contains(id)),
        "the entries that existed before paging come before those posted during it"
    );

    // Posting order as the database records it agrees with the listing.
    let db_order: Vec<String> = {
        let db = app.db();
        let mut stmt = db
            .prepare(
                "SELECT e.entry_id FROM loan_entries le JOIN journal_entries e ON e.entry_seq = le.entry_seq \
                 WHERE le.loan_id = ?1 ORDER BY le.entry_seq",
            )
            .expect("prepare");
        stmt.query_map([loan.to_string()], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(complete, db_order, "listing order is posting order");
    complete
}

/// What was collected while writes went on is a gap-free prefix of the final listing.
fn assert_the_pages_are_a_gap_free_prefix(
    collected: &[String],
    initial: &[String],
    complete: &[String],
) {
    // What we collected while writes went on: every entry that existed when paging started,
    // plus possibly some of the later ones; each once; no gaps: exactly a prefix of the final
    // listing (so strictly increasing in posting order).
    let collected_set: HashSet<&String> = collected.iter().collect();
    assert_eq!(
        collected_set.len(),
        collected.len(),
        "no duplicates while paging"
    );
    for id in initial {
        assert!(collected_set.contains(id), "entry {id} was skipped");
    }
    assert!(collected.len() >= initial.len());
    assert_eq!(
        *collected,
        complete[..collected.len()],
        "the pages are a gap-free prefix of the posting order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn paging_a_loans_journal_while_fees_keep_arriving_returns_every_entry_once_in_posting_order()
{
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, initial) = open_a_loan_with_a_thousand_fees(&c).await;
    let (stop, writer) = start_posting_fees_in_the_background(&app, &c, loan).await;
    let collected = page_through_the_journal_by_sevens(&c, loan).await;
    stop.store(true, Ordering::SeqCst);
    let during = writer.await.expect("writer task");
    assert!(!during.is_empty());

    let complete = assert_the_complete_listing_is_every_entry_once_in_posting_order(
        &app, &c, loan, &initial, &during,
    )
    .await;
    assert_the_pages_are_a_gap_free_prefix(&collected, &initial, &complete);

    // Items are the same objects as GET /v1/journal-entries/{id}.
    let (first_page, _) = journal_page(&c, loan, "page_size=3").await;
    for item in &first_page {
        let id = item["journal_entry_id"].as_str().expect("id");
        assert_eq!(
            *item,
            get_ok(&c, &format!("/v1/journal-entries/{id}")).await
        );
    }
    // The default page size is 100.
    let (default_page, next) = journal_page(&c, loan, "").await;
    assert_eq!(default_page.len(), 100);
    assert!(next.is_some());
}

#[tokio::test]
async fn the_loan_journal_filters_by_event_type_and_effective_date_range() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let d1 = post(
        &c,
        "/v1/disbursements",
        &disbursement(loan, borrower, 100_000, "2026-01-10"),
    )
    .await;
    let f1 = post(&c, "/v1/fees", &fee(loan, 500, "2026-01-15")).await;
    let acc = post(
        &c,
        "/v1/accruals/batch",
        &accrual("2026-01-20", &[(loan, 100_000, 30)]),
    )
    .await;
    let f2 = post(&c, "/v1/fees", &fee(loan, 700, "2026-01-20")).await;
    let p = post(
        &c,
        "/v1/payments",
        &payment(loan, borrower, 10_000, "2026-02-01"),
    )
    .await;
    let d2 = post(
        &c,
        "/v1/disbursements",
        &disbursement(loan, borrower, 20_000, "2026-02-10"),
    )
    .await;
    // Another loan's entries never show up.
    let (other_loan, other_borrower) = (uuid(), uuid());
    post(
        &c,
        "/v1/disbursements",
        &disbursement(other_loan, other_borrower, 1_000, "2026-01-15"),
    )
    .await;

    let list = |filters: &'static str| all_ids(&c, loan, filters, 2);
    assert_eq!(list("").await, owned(&[&d1, &f1, &acc, &f2, &p, &d2]));
    assert_eq!(list("&event_type=fee_assessed").await, owned(&[&f1, &f2]));
    assert_eq!(list("&event_type=disbursement").await, owned(&[&d1, &d2]));
    assert_eq!(list("&event_type=payment_received").await, owned(&[&p]));
    assert_eq!(list("&event_type=accrual").await, owned(&[&acc]));
    assert!(list("&event_type=reversal").await.is_empty());
    assert_eq!(
        list("&from_date=2026-01-15&to_date=2026-01-20").await,
        owned(&[&f1, &acc, &f2]),
        "both bounds are inclusive"
    );
    assert_eq!(list("&from_date=2026-02-01").await, owned(&[&p, &d2]));
    assert_eq!(list("&to_date=2026-01-14").await, owned(&[&d1]));
    assert_eq!(
        list("&from_date=2026-01-16&to_date=2026-02-09&event_type=fee_assessed").await,
        owned(&[&f2])
    );
    assert!(
        list("&from_date=2026-03-01").await.is_empty(),
        "an empty listing is one page with a null token"
    );

    // Every item of a filtered page is of that type.
    let (items, _) = journal_page(&c, loan, "event_type=fee_assessed").await;
    assert!(items.iter().all(|e| e["event_type"] == "fee_assessed"));

    for bad in ["event_type=fee", "from_date=2026-1-15", "to_date=yesterday"] {
        let a = c
            .get(&format!("/v1/loans/{loan}/journal-entries?{bad}"))
            .await;
        assert_problem(&a, 400, "validation_failed");
        let field = bad.split('=').next().expect("field");
        assert_eq!(a.error_fields(), [field], "{bad}: {}", a.text);
    }
}

fn owned(ids: &[&String]) -> Vec<String> {
    ids.iter().map(|s| (*s).clone()).collect()
}

/// Changes one character of `token` at `at` to another URL-safe base64 character.
fn flip(token: &str, at: usize) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    chars[at] = if chars[at] == 'A' { 'B' } else { 'A' };
    let flipped: String = chars.into_iter().collect();
    assert_ne!(flipped, token);
    flipped
}

#[tokio::test]
async fn a_modified_or_foreign_page_token_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("100000").await;
    let mut fees = Vec::new();
    for _ in 0..5 {
        fees.push(post(&c, "/v1/fees", &fee(loan, 100, "2026-11-10")).await);
    }
    let (first, token) = journal_page(&c, loan, "page_size=2").await;
    assert_eq!(first.len(), 2);
    let token = token.expect("a next page");

    // The genuine token continues where the first page ended.
    let (second, _) = journal_page(&c, loan, &format!("page_size=2&page_token={token}")).await;
    assert_eq!(ids(&second), fees[1..3]);

    let refused = |a: &Answer| assert_problem(a, 400, "invalid_page_token");
    let path = |loan: Uuid, query: &str| format!("/v1/loans/{loan}/journal-entries?{query}");

    // Modified: a character of the position, of the signature, truncated, garbage.
    let dot = token.find('.').expect("token has two parts");
    for forged in [
        flip(&token, 0),
        flip(&token, dot - 2),
        flip(&token, dot + 1),
        flip(&token, token.len() - 2),
        token[..token.len() - 1].to_owned(),
        format!("{token}A"),
        "not-a-token".to_owned(),
        String::new(),
    ] {
        let a = c
            .get(&path(loan, &format!("page_size=2&page_token={forged}")))
            .await;
        refused(&a);
    }

    // Another loan of the same tenant.
    let (loan_b, _, _) = c.open_loan("100000").await;
    for _ in 0..3 {
        post(&c, "/v1/fees", &fee(loan_b, 100, "2026-11-10")).await;
    }
    refused(
        &c.get(&path(loan_b, &format!("page_size=2&page_token={token}")))
            .await,
    );

    // Another tenant, even on a loan with the same id.
    let other = app.tenant();
    let a = other
        .post_disbursement(
            &key("disb"),
            &disbursement(loan, uuid(), 5_000, "2026-11-01"),
        )
        .await;
    assert_eq!(a.status, 201, "loan ids are per tenant: {}", a.text);
    for _ in 0..3 {
        post(&other, "/v1/fees", &fee(loan, 100, "2026-11-10")).await;
    }
    refused(
        &other
            .get(&path(loan, &format!("page_size=2&page_token={token}")))
            .await,
    );

    // Other filters than the ones the token was issued for.
    for filters in [
        "event_type=fee_assessed",
        "from_date=2026-01-01",
        "to_date=2026-12-31",
    ] {
        refused(
            &c.get(&path(
                loan,
                &format!("page_size=2&{filters}&page_token={token}"),
            ))
            .await,
        );
    }
    // A different page size is not a different listing: the token still works.
    let (items, _) = journal_page(&c, loan, &format!("page_size=3&page_token={token}")).await;
    assert_eq!(ids(&items), fees[1..4]);
}

#[tokio::test]
async fn page_size_outside_one_to_five_hundred_is_a_validation_error() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("100000").await;
    for bad in ["0", "501", "abc", "-1", "1.5", ""] {
        let a = c
            .get(&format!("/v1/loans/{loan}/journal-entries?page_size={bad}"))
            .await;
        assert_problem(&a, 400, "validation_failed");
        assert_eq!(a.error_fields(), ["page_size"], "{bad:?}: {}", a.text);
    }
    for good in ["1", "500"] {
        let (items, next) = journal_page(&c, loan, &format!("page_size={good}")).await;
        assert_eq!(items.len(), 1);
        assert!(next.is_none());
    }
}

#[tokio::test]
async fn the_journal_of_an_unknown_or_foreign_loan_is_not_found() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("100000").await;
    let other = app.tenant();
    assert_problem(
        &other
            .get(&format!("/v1/loans/{loan}/journal-entries"))
            .await,
        404,
        "not_found",
    );
    assert_problem(
        &c.get(&format!("/v1/loans/{}/journal-entries", uuid()))
            .await,
        404,
        "not_found",
    );
    let no_scope = app.caller(c.tenant, &["hpts:balances:read"]);
    assert_problem(
        &no_scope
            .get(&format!("/v1/loans/{loan}/journal-entries"))
            .await,
        403,
        "insufficient_scope",
    );
}

// ---------------------------------------------------------------------------------------------
// Reconciliation.

#[tokio::test]
async fn reconciliation_is_ok_on_a_clean_ledger_with_every_check_ok() {
    let app = spawn_app().await;
    let c = app.tenant();

    // Empty ledger.
    let report = reconciliation(&c, None).await;
    assert_all_ok(&report);
    assert_eq!(report["portfolio_rollup"]["gl_principal_minor"], "0");
    assert_eq!(report["bank_reconciliation"], json!([]));

    // Every kind of entry, including a reversal.
    let (loan, borrower) = (uuid(), uuid());
    post(
        &c,
        "/v1/disbursements",
        &disbursement(loan, borrower, 500_000, "2026-01-10"),
    )
    .await;
    let fee_entry = post(&c, "/v1/fees", &fee(loan, 1_500, "2026-01-15")).await;
    post(
        &c,
        "/v1/accruals/batch",
        &accrual("2026-01-20", &[(loan, 500_000, 1_200)]),
    )
    .await;
    post(
        &c,
        "/v1/payments",
        &payment(loan, borrower, 600_000, "2026-02-01"),
    )
    .await;
    // A later fee, reversed (the first fee was repaid, so reversing it would be blocked).
    let late_fee = post(&c, "/v1/fees", &fee(loan, 900, "2026-02-15")).await;
    let a = c
        .post_reversal(
            &key("rev"),
            &json!({
                "reverses_entry_id": late_fee,
                "reason_code": "error_correction",
                "reason_description": "fee posted in error",
            }),
        )
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_ne!(fee_entry, late_fee);

    // Other tenants' data is not counted.
    let other = app.tenant();
    other.open_loan("777777").await;

    let report = reconciliation(&c, None).await;
    assert_all_ok(&report);
    // The payment of 600,000 covered fees 1,500, interest 1,200 and all 500,000 of principal.
    assert_eq!(report["portfolio_rollup"]["gl_principal_minor"], "0");
    assert_eq!(
        report["portfolio_rollup"]["sum_of_loan_balances_minor"],
        "0"
    );
    let checked_at = report["ledger_integrity"]["checked_at"]
        .as_str()
        .expect("checked_at");
    assert!(
        checked_at.ends_with('Z') && checked_at.contains('T'),
        "{checked_at}"
    );
    let today = report["as_of_date"].as_str().expect("as_of_date");
    assert_eq!(today.len(), 10, "{today}");
    assert!(checked_at.starts_with(today), "{checked_at} vs {today}");

    // As of a date: the roll-up counts entries effective on or before it.
    let report = reconciliation(&c, Some("2026-01-31")).await;
    assert_all_ok(&report);
    assert_eq!(report["as_of_date"], "2026-01-31");
    assert_eq!(report["portfolio_rollup"]["gl_principal_minor"], "500000");
    assert_eq!(
        report["portfolio_rollup"]["sum_of_loan_balances_minor"],
        "500000"
    );
    let report = reconciliation(&c, Some("2025-12-31")).await;
    assert_all_ok(&report);
    assert_eq!(report["portfolio_rollup"]["gl_principal_minor"], "0");

    // The other tenant sees only its own loan.
    let report = reconciliation(&other, None).await;
    assert_all_ok(&report);
    assert_eq!(report["portfolio_rollup"]["gl_principal_minor"], "777777");

    let a = c
        .get("/v1/reconciliation/status?as_of_date=31-01-2026")
        .await;
    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["as_of_date"], "{}", a.text);
    let no_scope = app.caller(c.tenant, &["hpts:balances:read", "hpts:ledger:read"]);
    assert_problem(
        &no_scope.get("/v1/reconciliation/status").await,
        403,
        "insufficient_scope",
    );
}

// ---------------------------------------------------------------------------------------------
// Metrics.

/// The value of the first sample line of `series` (exact name and, if given, label text).
fn sample(metrics: &str, series: &str, labels: &str) -> Option<f64> {
    metrics
        .lines()
        .filter(|l| !l.starts_with('#'))
        .find(|l| {
            l.starts_with(series) && l[series.len()..].starts_with(['{', ' ']) && l.contains(labels)
        })
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get_raw("/metrics", None).await;
    assert_eq!(r.status().as_u16(), 200, "/metrics needs no token");
    r.text().await.expect("body")
}

/// Series `/metrics` always exposes once a write and a read were answered.
const NAMED_SERIES: [&str; 14] = [
    "hpts_http_requests_total",
    "hpts_http_request_duration_seconds_bucket",
    "hpts_writer_queue_depth",
    "hpts_writer_queue_capacity",
    "hpts_writer_storage_full_total",
    "hpts_writer_queue_wait_seconds_total",
    "hpts_reconciliation_failures_total",
    "hpts_reconciliation_last_run_timestamp_seconds",
    "hpts_writer_commits_total",
    "hpts_writer_jobs_total",
    "hpts_writer_requests_per_commit",
    "hpts_writer_max_batch_size",
    "hpts_idempotency_replays_total",
    "hpts_writer_up",
];

#[tokio::test]
async fn metrics_show_the_configured_queue_capacity_and_when_reconciliation_last_ran() {
    let app = spawn_app_with(&["--writer-queue", "77"]).await;
    let text = scrape(&app).await;
    assert_eq!(
        sample(&text, "hpts_writer_queue_capacity", ""),
        Some(77.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, "hpts_reconciliation_last_run_timestamp_seconds", ""),
        Some(0.0),
        "no reconciliation ran yet:\n{text}"
    );

    let before = now();
    let report = app.tenant().get("/v1/reconciliation/status").await;
    assert_eq!(report.status, 200, "{}", report.text);
    let after = now();
    let text = scrape(&app).await;
    let last_run = sample(&text, "hpts_reconciliation_last_run_timestamp_seconds", "")
        .expect("the timestamp is exported");
    #[expect(
        clippy::cast_precision_loss,
        reason = "Unix seconds fit an f64 exactly"
    )]
    let (before, after) = (before as f64, after as f64);
    assert!(
        (before..=after).contains(&last_run),
        "last run {last_run} is not between {before} and {after}"
    );
    assert_eq!(
        sample(&text, "hpts_reconciliation_failures_total", ""),
        Some(0.0),
        "a whole ledger is no reconciliation failure:\n{text}"
    );
}

#[tokio::test]
async fn metrics_expose_every_named_series_with_route_templates() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let body = disbursement(loan, borrower, 10_000, "2026-11-01");
    let k = key("disb");
    assert_eq!(c.post_disbursement(&k, &body).await.status, 201);
    let replay = c.post_disbursement(&k, &body).await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    let mut changed = body.clone();
    changed["amount_minor"] = json!("10001");
    assert_problem(
        &c.post_disbursement(&k, &changed).await,
        422,
        "idempotency_mismatch",
    );
    assert_eq!(c.get_loan_balance(loan).await.status, 200);
    let unknown = uuid();
    assert_problem(&c.get_loan_balance(unknown).await, 404, "not_found");
    let unrouted = uuid();
    assert_problem(
        &c.get(&format!("/v1/no-such-route/{unrouted}")).await,
        404,
        "not_found",
    );

    let text = scrape(&app).await;
    for series in NAMED_SERIES {
        assert!(
            sample(&text, series, "").is_some(),
            "series {series} is missing:\n{text}"
        );
    }
    assert!(
        sample(
            &text,
            "hpts_idempotency_conflicts_total",
            "kind=\"mismatch\""
        )
        .is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "hpts_idempotency_conflicts_total",
            "kind=\"in_progress\""
        )
        .is_some(),
        "{text}"
    );
    assert!(
        sample(&text, "hpts_idempotency_replays_total", "").is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert!(
        sample(&text, "hpts_writer_commits_total", "").is_some_and(|v| v >= 1.0),
        "{text}"
    );
    assert_eq!(sample(&text, "hpts_writer_up", ""), Some(1.0), "{text}");

    // Route templates, not raw ids.
    let balance_200 = sample(
        &text,
        "hpts_http_requests_total",
        "endpoint=\"/v1/loans/{loan_id}/balance\"",
    );
    assert!(balance_200.is_some(), "{text}");
    for status in ["200", "404"] {
        let found = text.lines().any(|l| {
            l.starts_with("hpts_http_requests_total{")
                && l.contains("endpoint=\"/v1/loans/{loan_id}/balance\"")
                && l.contains("method=\"GET\"")
                && l.contains(&format!("status=\"{status}\""))
        });
        assert!(found, "no GET balance {status} sample:\n{text}");
    }
    let found = text.lines().any(|l| {
        l.starts_with("hpts_http_requests_total{")
            && l.contains("endpoint=\"/v1/disbursements\"")
            && l.contains("method=\"POST\"")
            && l.contains("status=\"422\"")
    });
    assert!(found, "no POST disbursements 422 sample:\n{text}");
    assert!(
        [loan, unknown, unrouted]
            .iter()
            .all(|id| !text.contains(&id.to_string())),
        "raw ids leak into labels:\n{text}"
    );
}
