//! `POST /v1/payments`: the allocation waterfall (fees → interest → principal → suspense, each
//! capped at what the loan owes), its journal lines and the balances it leaves, the business
//! refusals, idempotency, scope, tenant isolation and every field rule.
//!
//! Also home of the small helpers the payment, fee, accrual and reversal modules share:
//! [`payment_body`], [`Owed`] (a loan's balances), [`entry_lines`] and [`ledger_state`] (row
//! counts and sums that prove a refused request wrote nothing).

use serde_json::{Value, json};
use uuid::Uuid;

use crate::accruals::accrual_body;
use crate::fees::fee_body;
use crate::helpers::{
    ALL_SCOPES, Answer, Caller, TestApp, disbursement_body, key, spawn_app, uuid,
};

use crate::helpers::minor;
pub use crate::helpers::{assert_problem, payment_body};

/// A loan's balances as `GET /v1/loans/{id}/balance` shows them, in minor units.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Owed {
    pub principal: i64,
    pub interest: i64,
    pub fees: i64,
    pub suspense: i64,
    pub disbursed: i64,
    pub paid: i64,
}

impl Owed {
    /// The balances of a `GET /v1/loans/{id}/balance` body.
    pub fn of(b: &Value) -> Owed {
        Owed {
            principal: minor(b, "principal_outstanding_minor"),
            interest: minor(b, "interest_receivable_minor"),
            fees: minor(b, "fees_receivable_minor"),
            suspense: minor(b, "suspense_minor"),
            disbursed: minor(b, "disbursed_total_minor"),
            paid: minor(b, "paid_total_minor"),
        }
    }
}

/// The loan's balance body (asserting 200).
pub async fn balance(c: &Caller<'_>, loan: Uuid) -> Value {
    let a = c.get_loan_balance(loan).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}

/// The loan's balances.
pub async fn owed(c: &Caller<'_>, loan: Uuid) -> Owed {
    Owed::of(&balance(c, loan).await)
}

/// A journal entry (asserting 200).
pub async fn entry(c: &Caller<'_>, entry_id: &str) -> Value {
    let a = c.get_entry(entry_id).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}

/// An entry's lines as sorted `(account_code, direction, amount_minor)` triples.
pub fn lines_of(entry: &Value) -> Vec<(String, String, String)> {
    let mut lines: Vec<(String, String, String)> = entry["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines: {entry}"))
        .iter()
        .map(|l| {
            let s = |f: &str| {
                l[f].as_str()
                    .unwrap_or_else(|| panic!("{f} missing: {l}"))
                    .to_owned()
            };
            (s("account_code"), s("direction"), s("amount_minor"))
        })
        .collect();
    lines.sort();
    lines
}

/// The lines of the entry `entry_id`, sorted.
pub async fn entry_lines(c: &Caller<'_>, entry_id: &str) -> Vec<(String, String, String)> {
    lines_of(&entry(c, entry_id).await)
}

/// Sorted `(account, direction, amount)` triples, for comparing with [`entry_lines`].
pub fn expected_lines(lines: &[(&str, &str, i64)]) -> Vec<(String, String, String)> {
    let mut v: Vec<(String, String, String)> = lines
        .iter()
        .map(|(a, d, m)| ((*a).to_owned(), (*d).to_owned(), m.to_string()))
        .collect();
    v.sort();
    v
}

/// Row counts of every table a write touches plus the sums of every materialised balance: if
/// this is unchanged, nothing was written.
pub fn ledger_state(app: &TestApp) -> Vec<(&'static str, i64)> {
    let db = app.db();
    let q = |sql: &str| {
        db.query_row(sql, [], |r| r.get::<_, i64>(0))
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
    };
    vec![
        ("journal_entries", q("SELECT count(*) FROM journal_entries")),
        ("journal_lines", q("SELECT count(*) FROM journal_lines")),
        ("events", q("SELECT count(*) FROM events")),
        (
            "idempotency_keys",
            q("SELECT count(*) FROM idempotency_keys"),
        ),
        ("loans", q("SELECT count(*) FROM loans")),
        ("loan_entries", q("SELECT count(*) FROM loan_entries")),
        ("accrual_lines", q("SELECT count(*) FROM accrual_lines")),
        ("tenants", q("SELECT count(*) FROM tenants")),
        (
            "loan balances",
            q(
                "SELECT coalesce(sum(principal_minor + interest_minor + fees_minor + suspense_minor \
               + disbursed_total_minor + paid_total_minor), 0) FROM loans",
            ),
        ),
        (
            "account balances",
            q("SELECT coalesce(sum(dr_minor + cr_minor), 0) FROM account_balances"),
        ),
    ]
}

/// Every scope except `missing`.
pub fn scopes_without(missing: &str) -> Vec<&'static str> {
    ALL_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != missing)
        .collect()
}

fn allocation(a: &Answer) -> Value {
    a.json()["allocation"].clone()
}

fn parts(fees: i64, interest: i64, principal: i64, suspense: i64) -> Value {
    json!({
        "fees_minor": fees.to_string(),
        "interest_minor": interest.to_string(),
        "principal_minor": principal.to_string(),
        "suspense_minor": suspense.to_string(),
    })
}

#[tokio::test]
async fn the_hpts_example_pays_fees_then_interest_then_principal() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000000").await;
    let fee = c.post_fee(&key("fee"), &fee_body(loan, "500")).await;
    assert_eq!(fee.status, 201, "{}", fee.text);
    let accrual = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-14", &[(loan, 1_000_000, 10_000)]),
        )
        .await;
    assert_eq!(accrual.status, 201, "{}", accrual.text);

    let a = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "88849"))
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.header("content-type"), Some("application/json"));
    let body = a.json();
    assert_eq!(body["allocation"], parts(500, 10_000, 78_349, 0));
    let entry_id = body["journal_entry_id"].as_str().expect("journal_entry_id");
    let event_id = body["payment_event_id"].as_str().expect("payment_event_id");
    assert!(
        Uuid::parse_str(entry_id).is_ok() && Uuid::parse_str(event_id).is_ok(),
        "{body}"
    );
    let posted_at = body["posted_at"].as_str().expect("posted_at");
    assert!(posted_at.ends_with('Z'), "{posted_at}");

    let e = entry(&c, entry_id).await;
    assert_eq!(e["event_type"], "payment_received");
    assert_eq!(e["correlation_id"], event_id);
    assert_eq!(e["effective_at"], "2026-11-15");
    assert_eq!(e["posted_at"], posted_at);
    assert_eq!(
        lines_of(&e),
        expected_lines(&[
            ("1000", "DR", 88_849),
            ("1300", "CR", 500),
            ("1200", "CR", 10_000),
            ("1100", "CR", 78_349)
        ])
    );
    for line in e["lines"].as_array().expect("lines") {
        assert_eq!(line["loan_id"], loan.to_string().as_str(), "{line}");
        assert_eq!(line["currency"], "USD", "{line}");
    }

    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 921_651,
            interest: 0,
            fees: 0,
            suspense: 0,
            disbursed: 1_000_000,
            paid: 88_849
        }
    );
    let b = balance(&c, loan).await;
    assert_eq!(b["total_exposure_minor"], "921651");
    assert_eq!(b["status"], "active");
    assert_eq!(b["currency"], "USD");
    assert_eq!(b["borrower_id"], borrower.to_string().as_str());
}

#[tokio::test]
async fn an_overpayment_of_a_fully_repaid_loan_goes_entirely_to_suspense() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let repaid = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "1000"))
        .await;
    assert_eq!(repaid.status, 201, "{}", repaid.text);
    assert_eq!(allocation(&repaid), parts(0, 0, 1000, 0));

    let a = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "250"))
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(allocation(&a), parts(0, 0, 0, 250));
    let entry_id = a.json()["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    assert_eq!(
        entry_lines(&c, &entry_id).await,
        expected_lines(&[("1000", "DR", 250), ("2100", "CR", 250)])
    );
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 0,
            interest: 0,
            fees: 0,
            suspense: 250,
            disbursed: 1000,
            paid: 1250
        }
    );
}

#[tokio::test]
async fn a_payment_larger_than_everything_owed_puts_only_the_remainder_in_suspense() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    assert_eq!(
        c.post_fee(&key("fee"), &fee_body(loan, "100")).await.status,
        201
    );

    let a = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "1500"))
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(allocation(&a), parts(100, 0, 1000, 400));
    let entry_id = a.json()["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    assert_eq!(
        entry_lines(&c, &entry_id).await,
        expected_lines(&[
            ("1000", "DR", 1500),
            ("1300", "CR", 100),
            ("1100", "CR", 1000),
            ("2100", "CR", 400)
        ])
    );
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 0,
            interest: 0,
            fees: 0,
            suspense: 400,
            disbursed: 1000,
            paid: 1500
        }
    );
}

#[tokio::test]
async fn a_partial_payment_covers_fees_before_interest_and_principal() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("100000").await;
    assert_eq!(
        c.post_fee(&key("fee"), &fee_body(loan, "500")).await.status,
        201
    );
    let accrual = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-14", &[(loan, 100_000, 200)]),
        )
        .await;
    assert_eq!(accrual.status, 201, "{}", accrual.text);

    let first = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "300"))
        .await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(allocation(&first), parts(300, 0, 0, 0));
    let entry_id = first.json()["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    assert_eq!(
        entry_lines(&c, &entry_id).await,
        expected_lines(&[("1000", "DR", 300), ("1300", "CR", 300)])
    );
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 100_000,
            interest: 200,
            fees: 200,
            suspense: 0,
            disbursed: 100_000,
            paid: 300
        }
    );

    let second = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "300"))
        .await;

    assert_eq!(second.status, 201, "{}", second.text);
    assert_eq!(allocation(&second), parts(200, 100, 0, 0));
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 100_000,
            interest: 100,
            fees: 0,
            suspense: 0,
            disbursed: 100_000,
            paid: 600
        }
    );
}

#[tokio::test]
async fn a_payment_on_an_unknown_loan_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c
        .post_payment(&key("pay"), &payment_body(uuid(), uuid(), "100"))
        .await;

    assert_problem(&a, 422, "loan_not_found");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_refused_payment_does_not_consume_its_idempotency_key() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let k = key("pay");
    let refused = c
        .post_payment(&k, &payment_body(uuid(), borrower, "100"))
        .await;
    assert_problem(&refused, 422, "loan_not_found");

    let a = c
        .post_payment(&k, &payment_body(loan, borrower, "100"))
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(owed(&c, loan).await.paid, 100);
}

#[tokio::test]
async fn a_payment_from_another_borrower_is_refused_with_borrower_mismatch() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c
        .post_payment(&key("pay"), &payment_body(loan, uuid(), "100"))
        .await;

    assert_problem(&a, 422, "borrower_mismatch");
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&c, loan).await.paid, 0);
}

#[tokio::test]
async fn a_payment_in_another_currency_is_refused_with_currency_mismatch() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let mut body = payment_body(loan, borrower, "100");
    body["currency"] = json!("EUR");
    let before = ledger_state(&app);

    let a = c.post_payment(&key("pay"), &body).await;

    assert_problem(&a, 422, "currency_mismatch");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn reusing_an_external_ref_under_another_key_is_a_conflict() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("100000").await;
    let (other_loan, other_borrower, _) = c.open_loan("100000").await;
    let mut body = payment_body(loan, borrower, "100");
    body["external_ref"] = json!("bank-tx-0001");
    let first_key = key("pay");
    let first = c.post_payment(&first_key, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let entry_id = first.json()["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    let e = entry(&c, &entry_id).await;
    assert!(
        e["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .all(|l| l["external_ref"] == "bank-tx-0001"),
        "{e}"
    );
    let before = ledger_state(&app);

    let same_loan = c.post_payment(&key("pay"), &body).await;
    let mut elsewhere = payment_body(other_loan, other_borrower, "700");
    elsewhere["external_ref"] = json!("bank-tx-0001");
    let other_loan_answer = c.post_payment(&key("pay"), &elsewhere).await;

    assert_problem(&same_loan, 409, "duplicate_external_ref");
    assert_problem(&other_loan_answer, 409, "duplicate_external_ref");
    assert_eq!(ledger_state(&app), before);
    let replay = c.post_payment(&first_key, &body).await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.text, first.text);
}

#[tokio::test]
async fn two_tenants_may_use_the_same_external_ref() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    for c in [&a, &b] {
        let (loan, borrower, _) = c.open_loan("1000").await;
        let mut body = payment_body(loan, borrower, "100");
        body["external_ref"] = json!("shared-ref-42");

        let answer = c.post_payment(&key("pay"), &body).await;

        assert_eq!(answer.status, 201, "{}", answer.text);
    }
}

#[tokio::test]
async fn uppercase_ids_in_a_payment_are_accepted() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let mut body = payment_body(loan, borrower, "100");
    body["loan_id"] = json!(loan.to_string().to_uppercase());
    body["borrower_id"] = json!(borrower.to_string().to_uppercase());

    let a = c.post_payment(&key("pay"), &body).await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(owed(&c, loan).await.principal, 900);
}

#[tokio::test]
async fn replaying_a_payment_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let k = key("pay");
    let body = payment_body(loan, borrower, "400");
    let first = c.post_payment(&k, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(first.header("idempotent-replayed"), None);
    let before = ledger_state(&app);

    let replay = c.post_payment(&k, &body).await;

    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.text, first.text);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 600,
            disbursed: 1000,
            paid: 400,
            ..Owed::default()
        }
    );
}

#[tokio::test]
async fn reusing_a_payment_key_with_another_body_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let k = key("pay");
    assert_eq!(
        c.post_payment(&k, &payment_body(loan, borrower, "400"))
            .await
            .status,
        201
    );
    let before = ledger_state(&app);

    let other_amount = c
        .post_payment(&k, &payment_body(loan, borrower, "401"))
        .await;
    let other_route = c.post_fee(&k, &fee_body(loan, "400")).await;

    assert_problem(&other_amount, 422, "idempotency_mismatch");
    assert_problem(&other_route, 422, "idempotency_mismatch");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_payment_without_the_payments_scope_is_forbidden() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let limited = app.caller(c.tenant, &scopes_without("hpts:payments:write"));
    let before = ledger_state(&app);

    let a = limited
        .post_payment(&key("pay"), &payment_body(loan, borrower, "100"))
        .await;

    assert_problem(&a, 403, "insufficient_scope");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_payment_on_another_tenants_loan_is_refused_as_loan_not_found() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let (loan, borrower, _) = a.open_loan("1000").await;
    let before = ledger_state(&app);

    let answer = b
        .post_payment(&key("pay"), &payment_body(loan, borrower, "100"))
        .await;

    assert_problem(&answer, 422, "loan_not_found");
    assert_eq!(ledger_state(&app), before);
    assert_eq!(
        owed(&a, loan).await,
        Owed {
            principal: 1000,
            disbursed: 1000,
            ..Owed::default()
        }
    );
}

#[tokio::test]
async fn a_zero_payment_is_refused_as_amount_must_be_positive() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "0"))
        .await;

    assert_problem(&a, 422, "amount_must_be_positive");
    assert_eq!(a.error_fields(), ["amount_minor"]);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn each_invalid_payment_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let cases: Vec<(&str, Value)> = vec![
        ("loan_id", json!("not-a-uuid")),
        ("loan_id", json!(12)),
        ("borrower_id", json!("0190a1b2c3d47e5f8a9b0c1d2e3f4a5b")),
        ("amount_minor", json!("12.50")),
        ("amount_minor", json!(1250)),
        ("amount_minor", json!("-5")),
        ("amount_minor", json!("007")),
        ("amount_minor", json!("9223372036854775808")),
        ("currency", json!("usd")),
        ("currency", json!("US")),
        ("effective_at", json!("2026-02-30")),
        ("effective_at", json!("15/11/2026")),
        ("source_method", json!("cheque")),
        ("source_method", json!("ACH")),
        ("external_ref", json!("")),
        ("external_ref", json!("x".repeat(256))),
        ("metadata", json!("not an object")),
        ("unexpected", json!(true)),
    ];
    let before = ledger_state(&app);
    for (field, value) in cases {
        let mut body = payment_body(loan, borrower, "100");
        body[field] = value.clone();

        let a = c.post_payment(&key("pay"), &body).await;

        assert_eq!(a.status, 400, "{field} = {value}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{field} = {value}");
        assert_eq!(a.error_fields(), [field], "{field} = {value}: {}", a.text);
    }
    for required in [
        "loan_id",
        "borrower_id",
        "amount_minor",
        "currency",
        "effective_at",
        "source_method",
    ] {
        let mut body = payment_body(loan, borrower, "100");
        body.as_object_mut().expect("object").remove(required);

        let a = c.post_payment(&key("pay"), &body).await;

        assert_eq!(a.status, 400, "without {required}: {}", a.text);
        assert_eq!(
            a.error_fields(),
            [required],
            "without {required}: {}",
            a.text
        );
    }
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn every_invalid_payment_field_is_listed_in_one_answer() {
    let app = spawn_app().await;
    let c = app.tenant();
    let body = json!({
        "loan_id": "nope",
        "borrower_id": uuid().to_string(),
        "amount_minor": "1e3",
        "currency": "usd",
        "effective_at": "2026-11-15",
        "source_method": "barter",
        "colour": "blue"
    });

    let a = c.post_payment(&key("pay"), &body).await;

    assert_problem(&a, 400, "validation_failed");
    let mut fields = a.error_fields();
    fields.sort();
    assert_eq!(
        fields,
        [
            "amount_minor",
            "colour",
            "currency",
            "loan_id",
            "source_method"
        ]
    );
}

#[tokio::test]
async fn an_external_ref_of_255_characters_is_accepted() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let mut body = payment_body(loan, borrower, "100");
    body["external_ref"] = json!("r".repeat(255));

    let a = c.post_payment(&key("pay"), &body).await;

    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn every_source_method_is_accepted() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("100000").await;
    for method in ["ach", "wire", "card", "cash", "internal_transfer"] {
        let mut body = payment_body(loan, borrower, "10");
        body["source_method"] = json!(method);

        let a = c.post_payment(&key("pay"), &body).await;

        assert_eq!(a.status, 201, "{method}: {}", a.text);
    }
    assert_eq!(owed(&c, loan).await.paid, 50);
}

#[tokio::test]
async fn principal_from_a_second_disbursement_is_available_to_the_waterfall() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let more = c
        .post_disbursement(&key("disb"), &disbursement_body(loan, borrower, "500"))
        .await;
    assert_eq!(more.status, 201, "{}", more.text);

    let a = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "1600"))
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(allocation(&a), parts(0, 0, 1500, 100));
}
