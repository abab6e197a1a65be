//! Exact totals and dated entries (SPEC §2, §6): every balance and total the ledger keeps stays an
//! exact `i64` — a write that would push one out of range is 422 `amount_out_of_range` naming
//! the field and writes nothing — and no entry is dated before its loan opened or before the
//! entry it reverses. Each test is one of the hostile reproductions of the money-integrity issue.

use serde_json::{Value, json};

use crate::helpers::{Answer, Caller, TestApp, disbursement_body, key, spawn_app, uuid};

const MAX: &str = "9223372036854775807";

/// Asserts a 422 `amount_out_of_range` naming `field`, and that nothing new was written.
fn assert_out_of_range(app: &TestApp, a: &Answer, field: &str, entries_before: i64) {
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.code(), "amount_out_of_range");
    assert_eq!(a.error_fields(), vec![field.to_owned()], "{}", a.text);
    assert_eq!(
        app.count("journal_entries"),
        entries_before,
        "nothing written"
    );
}

/// Every stored money value is an INTEGER (never a REAL that overflowed).
fn assert_every_money_column_is_integer(app: &TestApp) {
    let db = app.db();
    for (table, column) in [
        ("journal_lines", "amount_minor"),
        ("account_balances", "dr_minor"),
        ("account_balances", "cr_minor"),
        ("loans", "principal_minor"),
        ("loans", "interest_minor"),
        ("loans", "fees_minor"),
        ("loans", "suspense_minor"),
        ("loans", "disbursed_total_minor"),
        ("loans", "paid_total_minor"),
        ("accrual_lines", "interest_minor"),
        ("accrual_lines", "outstanding_principal_minor"),
    ] {
        let not_integer: i64 = db
            .query_row(
                &format!("SELECT count(*) FROM {table} WHERE typeof({column}) != 'integer'"),
                [],
                |r| r.get(0),
            )
            .expect("query");
        assert_eq!(not_integer, 0, "{table}.{column} holds a non-integer");
    }
}

/// The whole file passes `hpts verify` (every tenant, every check).
fn assert_verify_passes(app: &TestApp) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_hpts"))
        .args(["verify", "--database"])
        .arg(&app.db_path)
        .output()
        .expect("run hpts verify");
    assert!(
        out.status.success(),
        "hpts verify failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The tenant's reconciliation is 200 and every check holds.
async fn assert_reconciles(t: &Caller<'_>) {
    let r = t.get("/v1/reconciliation/status").await;
    assert_eq!(r.status, 200, "{}", r.text);
    let body = r.json();
    for check in body["checks"].as_array().expect("checks") {
        assert_eq!(check["status"], "ok", "{check}");
    }
}

async fn disburse(t: &Caller<'_>, loan: uuid::Uuid, borrower: uuid::Uuid, amount: &str) -> Answer {
    t.post_disbursement(&key("disb"), &disbursement_body(loan, borrower, amount))
        .await
}

async fn reverse(t: &Caller<'_>, entry: &Value) -> Answer {
    t.post_reversal(
        &key("rev"),
        &json!({ "reverses_entry_id": entry, "reason_code": "error_correction" }),
    )
    .await
}

fn fee_body(loan: uuid::Uuid, amount: &str) -> Value {
    json!({
        "loan_id": loan.to_string(), "fee_type": "late", "amount_minor": amount,
        "currency": "USD", "effective_at": "2026-11-02"
    })
}

#[tokio::test]
async fn a_disbursement_that_would_overflow_the_gl_totals_is_refused_and_the_file_stays_clean() {
    let app = spawn_app().await;
    let t = app.tenant();
    let (_, _, _) = t.open_loan(MAX).await;
    let before = app.count("journal_entries");
    let a = disburse(&t, uuid(), uuid(), "1").await;
    assert_out_of_range(&app, &a, "amount_minor", before);
    assert_eq!(app.count("loans"), 1, "the refused loan was not opened");

    let balance = t.get("/v1/accounts/1100/balance?currency=USD").await;
    assert_eq!(balance.status, 200, "{}", balance.text);
    assert_eq!(balance.json()["dr_balance_minor"], MAX);
    assert_reconciles(&t).await;
    assert_every_money_column_is_integer(&app);
    assert_verify_passes(&app);
}

#[tokio::test]
async fn a_fee_on_a_loan_holding_the_largest_principal_is_refused() {
    let app = spawn_app().await;
    let t = app.tenant();
    let (loan, _, _) = t.open_loan(MAX).await;
    let before = app.count("journal_entries");
    let a = t.post_fee(&key("fee"), &fee_body(loan, "1")).await;
    assert_out_of_range(&app, &a, "amount_minor", before);
    let b = t.get_loan_balance(loan).await.json();
    assert_eq!(b["fees_receivable_minor"], "0");
    assert_eq!(b["total_exposure_minor"], MAX);
    assert_verify_passes(&app);
}

#[tokio::test]
async fn total_exposure_never_saturates_a_second_large_amount_is_refused() {
    let app = spawn_app().await;
    let t = app.tenant();
    let half = "4611686018427387903"; // (MAX - 1) / 2
    let (loan, _, _) = t.open_loan(half).await;
    let fee = t.post_fee(&key("fee"), &fee_body(loan, half)).await;
    assert_eq!(fee.status, 201, "{}", fee.text);
    let before = app.count("journal_entries");
    let a = t.post_fee(&key("fee"), &fee_body(loan, "2")).await;
    assert_out_of_range(&app, &a, "amount_minor", before);
    let b = t.get_loan_balance(loan).await.json();
    assert_eq!(b["total_exposure_minor"], "9223372036854775806");
    assert_verify_passes(&app);
}

#[tokio::test]
async fn an_accrual_that_would_overflow_interest_names_the_loan_item() {
    let app = spawn_app().await;
    let t = app.tenant();
    let (loan, _, _) = t.open_loan("1").await;
    let accrue = |date: &str, interest: &str| {
        json!({
            "program_id": uuid().to_string(), "accrual_date": date, "day_count_convention": "ACT_365",
            "loans": [{ "loan_id": loan.to_string(), "outstanding_principal_minor": "1", "interest_minor": interest }]
        })
    };
    // 1 of principal plus MAX - 1 of interest is exactly the largest trial-balance total.
    let first = t
        .post_accruals(&key("acc"), &accrue("2026-11-02", "9223372036854775806"))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = app.count("journal_entries");
    let a = t
        .post_accruals(&key("acc"), &accrue("2026-11-03", "1"))
        .await;
    assert_out_of_range(&app, &a, "loans[0].interest_minor", before);
    let income = t.get("/v1/accounts/4000/balance?currency=USD").await;
    assert_eq!(income.json()["cr_balance_minor"], "9223372036854775806");
    assert_every_money_column_is_integer(&app);
    assert_verify_passes(&app);
}

#[tokio::test]
async fn reversing_and_disbursing_again_cannot_push_the_gl_totals_past_the_range() {
    let app = spawn_app().await;
    let t = app.tenant();
    // Reversing MAX would make the debit total of the currency 2 × MAX: refused.
    let (_, _, big) = t.open_loan(MAX).await;
    let before = app.count("journal_entries");
    let refused = reverse(&t, &big["journal_entry_id"]).await;
    assert_out_of_range(&app, &refused, "reverses_entry_id", before);

    let t = app.tenant();
    let third = "3074457345618258602"; // MAX / 3
    let (loan, borrower, first) = t.open_loan(third).await;
    assert_eq!(reverse(&t, &first["journal_entry_id"]).await.status, 201);
    let again = disburse(&t, loan, borrower, third).await;
    assert_eq!(again.status, 201, "{}", again.text);
    let before = app.count("journal_entries");
    let over = disburse(&t, loan, borrower, "2").await;
    assert_out_of_range(&app, &over, "amount_minor", before);
    assert_reconciles(&t).await;
    assert_every_money_column_is_integer(&app);
    assert_verify_passes(&app);
}

#[tokio::test]
async fn each_currency_keeps_its_own_exact_totals() {
    let app = spawn_app().await;
    let t = app.tenant();
    t.open_loan(MAX).await;
    let mut eur = disbursement_body(uuid(), uuid(), MAX);
    eur["currency"] = json!("EUR");
    let a = t.post_disbursement(&key("disb"), &eur).await;
    assert_eq!(a.status, 201, "{}", a.text);
    for currency in ["USD", "EUR"] {
        let tb = t
            .get(&format!("/v1/accounts/1100/balance?currency={currency}"))
            .await;
        assert_eq!(tb.json()["normal_balance_minor"], MAX, "{currency}");
    }
    assert_reconciles(&t).await;
    assert_verify_passes(&app);
}

#[tokio::test]
async fn one_tenants_totals_do_not_limit_another_tenant() {
    let app = spawn_app().await;
    app.tenant().open_loan(MAX).await;
    app.tenant().open_loan(MAX).await;
    assert_verify_passes(&app);
}

#[tokio::test]
async fn a_payment_dated_before_the_loans_first_disbursement_is_refused() {
    let app = spawn_app().await;
    let t = app.tenant();
    let (loan, borrower, _) = t.open_loan("10000").await; // effective 2026-11-01
    let before = app.count("journal_entries");
    let a = t
        .post_payment(
            &key("pay"),
            &json!({
                "loan_id": loan.to_string(), "borrower_id": borrower.to_string(), "amount_minor": "100",
                "currency": "USD", "effective_at": "2026-10-31", "source_method": "ach"
            }),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.code(), "effective_before_loan");
    assert_eq!(a.error_fields(), vec!["effective_at".to_owned()]);
    assert_eq!(app.count("journal_entries"), before);
    let as_of = t
        .get(&format!("/v1/loans/{loan}/balance?as_of_date=2026-10-31"))
        .await
        .json();
    assert_eq!(as_of["principal_outstanding_minor"], "0");
    assert_eq!(as_of["paid_total_minor"], "0");
}

#[tokio::test]
async fn fees_accruals_and_later_disbursements_cannot_predate_the_loan() {
    let app = spawn_app().await;
    let t = app.tenant();
    let (loan, borrower, _) = t.open_loan("10000").await;
    let mut fee = fee_body(loan, "100");
    fee["effective_at"] = json!("2026-01-01");
    let a = t.post_fee(&key("fee"), &fee).await;
    assert_eq!(a.code(), "effective_before_loan");

    let mut second = disbursement_body(loan, borrower, "500");
    second["effective_at"] = json!("2026-10-01");
    let a = t.post_disbursement(&key("disb"), &second).await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.code(), "effective_before_loan");

    let a = t
        .post_accruals(
            &key("acc"),
            &json!({
                "program_id": uuid().to_string(), "accrual_date": "2026-10-15", "day_count_convention": "ACT_365",
                "loans": [{ "loan_id": loan.to_string(), "outstanding_principal_minor": "10000", "interest_minor": "3" }]
            }),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.code(), "effective_before_loan");
    assert_eq!(a.error_fields(), vec!["loans[0].loan_id".to_owned()]);
    assert_eq!(app.count("journal_entries"), 1);

    // On the opening day itself everything is allowed.
    fee["effective_at"] = json!("2026-11-01");
    assert_eq!(t.post_fee(&key("fee"), &fee).await.status, 201);
}

#[tokio::test]
async fn a_reversal_dated_before_its_original_is_refused() {
    let app = spawn_app().await;
    let t = app.tenant();
    let (_, _, first) = t.open_loan("10000").await;
    let before = app.count("journal_entries");
    let a = t
        .post_reversal(
            &key("rev"),
            &json!({
                "reverses_entry_id": first["journal_entry_id"], "reason_code": "error_correction",
                "effective_at": "1900-01-01"
            }),
        )
        .await;
    assert_eq!(a.status, 422, "{}", a.text);
    assert_eq!(a.code(), "effective_before_original");
    assert_eq!(a.error_fields(), vec!["effective_at".to_owned()]);
    assert_eq!(app.count("journal_entries"), before);

    let same_day = t
        .post_reversal(
            &key("rev"),
            &json!({
                "reverses_entry_id": first["journal_entry_id"], "reason_code": "error_correction",
                "effective_at": "2026-11-01"
            }),
        )
        .await;
    assert_eq!(same_day.status, 201, "{}", same_day.text);
}
