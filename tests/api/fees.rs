//! `POST /v1/fees`: Dr 1300 fees receivable / Cr 4100 fee income, the loan's fees receivable,
//! the business refusals, idempotency, scope, tenant isolation and every field rule.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{key, spawn_app, uuid};
use crate::payments::{
    Owed, assert_problem, entry, expected_lines, ledger_state, lines_of, owed, scopes_without,
};

pub use crate::helpers::fee_body;

#[tokio::test]
async fn a_fee_posts_fees_receivable_against_fee_income() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("50000").await;

    let a = c.post_fee(&key("fee"), &fee_body(loan, "1500")).await;

    assert_eq!(a.status, 201, "{}", a.text);
    let body = a.json();
    let fee_event_id = body["fee_event_id"].as_str().expect("fee_event_id");
    let entry_id = body["journal_entry_id"].as_str().expect("journal_entry_id");
    assert!(
        Uuid::parse_str(fee_event_id).is_ok() && Uuid::parse_str(entry_id).is_ok(),
        "{body}"
    );
    let e = entry(&c, entry_id).await;
    assert_eq!(e["event_type"], "fee_assessed");
    assert_eq!(e["correlation_id"], fee_event_id);
    assert_eq!(e["effective_at"], "2026-11-10");
    assert_eq!(e["posted_at"], body["posted_at"]);
    assert_eq!(
        e["metadata"],
        json!({ "reason": "payment_missed", "days_late": 12 })
    );
    assert_eq!(
        lines_of(&e),
        expected_lines(&[("1300", "DR", 1500), ("4100", "CR", 1500)])
    );
    for line in e["lines"].as_array().expect("lines") {
        assert_eq!(line["loan_id"], loan.to_string().as_str(), "{line}");
        assert_eq!(line["borrower_id"], borrower.to_string().as_str(), "{line}");
    }
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 50_000,
            fees: 1500,
            disbursed: 50_000,
            ..Owed::default()
        }
    );
    let b = crate::payments::balance(&c, loan).await;
    assert_eq!(b["total_exposure_minor"], "51500");
}

#[tokio::test]
async fn every_fee_type_is_accepted_and_fees_add_up() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("50000").await;
    for (fee_type, amount) in [
        ("origination", "1000"),
        ("late", "200"),
        ("nsf", "30"),
        ("other", "4"),
    ] {
        let mut body = fee_body(loan, amount);
        body["fee_type"] = json!(fee_type);

        let a = c.post_fee(&key("fee"), &body).await;

        assert_eq!(a.status, 201, "{fee_type}: {}", a.text);
    }
    assert_eq!(owed(&c, loan).await.fees, 1234);
}

#[tokio::test]
async fn a_fee_on_a_fully_repaid_loan_is_still_receivable() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let paid = c
        .post_payment(
            &key("pay"),
            &crate::payments::payment_body(loan, borrower, "1000"),
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.text);

    let a = c.post_fee(&key("fee"), &fee_body(loan, "75")).await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            fees: 75,
            disbursed: 1000,
            paid: 1000,
            ..Owed::default()
        }
    );
}

#[tokio::test]
async fn a_fee_on_an_unknown_loan_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c.post_fee(&key("fee"), &fee_body(uuid(), "100")).await;

    assert_problem(&a, 422, "loan_not_found");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_fee_in_another_currency_is_refused_with_currency_mismatch() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let mut body = fee_body(loan, "100");
    body["currency"] = json!("GBP");
    let before = ledger_state(&app);

    let a = c.post_fee(&key("fee"), &body).await;

    assert_problem(&a, 422, "currency_mismatch");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn replaying_a_fee_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let k = key("fee");
    let body = fee_body(loan, "100");
    let first = c.post_fee(&k, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = ledger_state(&app);

    let replay = c.post_fee(&k, &body).await;

    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.text, first.text);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&c, loan).await.fees, 100);
}

#[tokio::test]
async fn reusing_a_fee_key_with_another_body_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let k = key("fee");
    assert_eq!(c.post_fee(&k, &fee_body(loan, "100")).await.status, 201);
    let mut other = fee_body(loan, "100");
    other["fee_type"] = json!("nsf");
    let before = ledger_state(&app);

    let a = c.post_fee(&k, &other).await;

    assert_problem(&a, 422, "idempotency_mismatch");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_fee_without_the_fees_scope_is_forbidden() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let limited = app.caller(c.tenant, &scopes_without("hpts:fees:write"));
    let before = ledger_state(&app);

    let a = limited.post_fee(&key("fee"), &fee_body(loan, "100")).await;

    assert_problem(&a, 403, "insufficient_scope");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_fee_on_another_tenants_loan_is_refused_as_loan_not_found() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let (loan, _, _) = a.open_loan("1000").await;
    let before = ledger_state(&app);

    let answer = b.post_fee(&key("fee"), &fee_body(loan, "100")).await;

    assert_problem(&answer, 422, "loan_not_found");
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&a, loan).await.fees, 0);
}

#[tokio::test]
async fn a_zero_fee_is_refused_as_amount_must_be_positive() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c.post_fee(&key("fee"), &fee_body(loan, "0")).await;

    assert_problem(&a, 422, "amount_must_be_positive");
    assert_eq!(a.error_fields(), ["amount_minor"]);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn each_invalid_fee_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let cases: Vec<(&str, Value)> = vec![
        ("loan_id", json!("0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5")),
        ("loan_id", json!(null)),
        ("fee_type", json!("penalty")),
        ("fee_type", json!("LATE")),
        ("fee_type", json!(["late"])),
        ("amount_minor", json!("1,000")),
        ("amount_minor", json!(" 100")),
        ("amount_minor", json!(100)),
        ("amount_minor", json!("99999999999999999999")),
        ("currency", json!("EURO")),
        ("currency", json!(978)),
        ("effective_at", json!("2026-11-10T00:00:00Z")),
        ("metadata", json!([1, 2])),
        ("waived", json!(false)),
    ];
    let before = ledger_state(&app);
    for (field, value) in cases {
        let mut body = fee_body(loan, "100");
        body[field] = value.clone();

        let a = c.post_fee(&key("fee"), &body).await;

        assert_eq!(a.status, 400, "{field} = {value}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{field} = {value}");
        assert_eq!(a.error_fields(), [field], "{field} = {value}: {}", a.text);
    }
    let mut bad_key = fee_body(loan, "100");
    bad_key["metadata"] = json!({ "9lives": true });
    let a = c.post_fee(&key("fee"), &bad_key).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert_eq!(a.error_fields(), ["metadata.9lives"]);
    for required in [
        "loan_id",
        "fee_type",
        "amount_minor",
        "currency",
        "effective_at",
    ] {
        let mut body = fee_body(loan, "100");
        body.as_object_mut().expect("object").remove(required);

        let a = c.post_fee(&key("fee"), &body).await;

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
