//! `POST /v1/reversals`: the exact mirror of an entry, linked both ways; at most once; never of
//! a reversal; refused while later activity depends on the original; undoing accruals so they
//! can be posted again; unwinding a whole history to zero; idempotency, scope, tenant isolation
//! and every field rule.

use serde_json::{Value, json};
use uuid::Uuid;

use crate::accruals::accrual_body;
use crate::fees::fee_body;
use crate::helpers::{Caller, TestApp, disbursement_body, key, spawn_app, uuid};
use crate::payments::{
    Owed, assert_problem, entry, entry_lines, expected_lines, ledger_state, lines_of, owed,
    payment_body, scopes_without,
};

/// A valid reversal body.
fn reversal_body(entry_id: &str) -> Value {
    json!({
        "reverses_entry_id": entry_id,
        "reason_code": "error_correction",
        "reason_description": "posted against the wrong loan",
        "metadata": { "ticket": "OPS-1234" }
    })
}

/// The `journal_entry_id` of a 201 answer.
fn entry_id_of(a: &crate::helpers::Answer) -> String {
    assert_eq!(a.status, 201, "{}", a.text);
    a.json()["journal_entry_id"]
        .as_str()
        .expect("journal_entry_id")
        .to_owned()
}

/// Reverses `entry_id`, asserting 201; returns the reversal's answer body.
async fn reverse(c: &Caller<'_>, entry_id: &str) -> Value {
    let a = c.post_reversal(&key("rev"), &reversal_body(entry_id)).await;
    assert_eq!(a.status, 201, "reversing {entry_id}: {}", a.text);
    a.json()
}

/// The same lines with every direction flipped.
fn mirrored(lines: &[(String, String, String)]) -> Vec<(String, String, String)> {
    let mut m: Vec<(String, String, String)> = lines
        .iter()
        .map(|(a, d, m)| {
            (
                a.clone(),
                if d == "DR" {
                    "CR".to_owned()
                } else {
                    "DR".to_owned()
                },
                m.clone(),
            )
        })
        .collect();
    m.sort();
    m
}

/// `(account, currency, dr, cr)` of every materialised GL balance of `tenant`.
fn gl_balances(app: &TestApp, tenant: Uuid) -> Vec<(String, String, i64, i64)> {
    let db = app.db();
    let mut stmt = db
        .prepare(
            "SELECT account_code, currency, dr_minor, cr_minor FROM account_balances WHERE tenant_id = ?1 \
             ORDER BY account_code, currency",
        )
        .expect("prepare");
    stmt.query_map([tenant.to_string()], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?))
    })
    .expect("query")
    .collect::<Result<_, _>>()
    .expect("rows")
}

#[tokio::test]
async fn reversing_a_disbursement_posts_the_mirror_and_links_both_entries() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, disbursed) = c.open_loan("250000").await;
    let original_id = disbursed["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();

    let a = c
        .post_reversal(&key("rev"), &reversal_body(&original_id))
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    let receipt = a.json();
    assert_eq!(receipt["reverses_entry_id"], original_id.as_str());
    assert_eq!(
        receipt["correlation_id"],
        disbursed["disbursement_event_id"]
    );
    let reversal_id = receipt["journal_entry_id"].as_str().expect("entry");
    let original = entry(&c, &original_id).await;
    let reversal = entry(&c, reversal_id).await;
    assert_eq!(original["reversed_by_entry_id"], reversal_id);
    assert_eq!(original["reverses_entry_id"], Value::Null);
    assert_eq!(reversal["reverses_entry_id"], original_id.as_str());
    assert_eq!(reversal["reversed_by_entry_id"], Value::Null);
    assert_eq!(reversal["event_type"], "reversal");
    assert_eq!(
        reversal["correlation_id"],
        disbursed["disbursement_event_id"]
    );
    assert_eq!(reversal["posted_at"], receipt["posted_at"]);
    assert_eq!(reversal["effective_at"], original["effective_at"]);
    assert_eq!(reversal["metadata"], json!({ "ticket": "OPS-1234" }));
    assert_eq!(
        lines_of(&original),
        expected_lines(&[("1100", "DR", 250_000), ("2000", "CR", 250_000)])
    );
    assert_eq!(lines_of(&reversal), mirrored(&lines_of(&original)));
    for line in reversal["lines"].as_array().expect("lines") {
        assert_eq!(line["loan_id"], loan.to_string().as_str(), "{line}");
    }
    assert_eq!(owed(&c, loan).await, Owed::default());
}

#[tokio::test]
async fn a_reversal_may_carry_its_own_effective_date() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let fee_id = entry_id_of(&c.post_fee(&key("fee"), &fee_body(loan, "300")).await);
    let mut body = reversal_body(&fee_id);
    body["effective_at"] = json!("2026-12-01");
    body["reason_code"] = json!("customer_request");

    let a = c.post_reversal(&key("rev"), &body).await;

    let reversal = entry(&c, &entry_id_of(&a)).await;
    assert_eq!(reversal["effective_at"], "2026-12-01");
    assert_eq!(
        lines_of(&reversal),
        expected_lines(&[("1300", "CR", 300), ("4100", "DR", 300)])
    );
    assert_eq!(owed(&c, loan).await.fees, 0);
}

#[tokio::test]
async fn every_reason_code_is_accepted() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    for reason in [
        "error_correction",
        "duplicate",
        "fraud",
        "customer_request",
        "other",
    ] {
        let fee_id = entry_id_of(&c.post_fee(&key("fee"), &fee_body(loan, "10")).await);
        let mut body = reversal_body(&fee_id);
        body["reason_code"] = json!(reason);
        body.as_object_mut()
            .expect("object")
            .remove("reason_description");

        let a = c.post_reversal(&key("rev"), &body).await;

        assert_eq!(a.status, 201, "{reason}: {}", a.text);
    }
    assert_eq!(owed(&c, loan).await.fees, 0);
}

#[tokio::test]
async fn reversing_a_payment_restores_what_it_paid_off() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("10000").await;
    assert_eq!(
        c.post_fee(&key("fee"), &fee_body(loan, "200")).await.status,
        201
    );
    let accrued = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-14", &[(loan, 10_000, 50)]),
        )
        .await;
    assert_eq!(accrued.status, 201, "{}", accrued.text);
    let payment = c
        .post_payment(&key("pay"), &payment_body(loan, borrower, "10300"))
        .await;
    let payment_id = entry_id_of(&payment);
    let before_reversal = entry_lines(&c, &payment_id).await;
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 0,
            interest: 0,
            fees: 0,
            suspense: 50,
            disbursed: 10_000,
            paid: 10_300
        }
    );

    let receipt = reverse(&c, &payment_id).await;

    assert_eq!(
        receipt["correlation_id"],
        payment.json()["payment_event_id"]
    );
    let reversal_lines =
        entry_lines(&c, receipt["journal_entry_id"].as_str().expect("entry")).await;
    assert_eq!(reversal_lines, mirrored(&before_reversal));
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 10_000,
            interest: 50,
            fees: 200,
            suspense: 0,
            disbursed: 10_000,
            paid: 0
        }
    );
}

#[tokio::test]
async fn an_entry_can_be_reversed_only_once() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (_, _, disbursed) = c.open_loan("1000").await;
    let original_id = disbursed["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    let first_key = key("rev");
    let first = c
        .post_reversal(&first_key, &reversal_body(&original_id))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = ledger_state(&app);

    let again = c
        .post_reversal(&key("rev"), &reversal_body(&original_id))
        .await;

    assert_problem(&again, 409, "already_reversed");
    assert_eq!(ledger_state(&app), before);
    let replay = c
        .post_reversal(&first_key, &reversal_body(&original_id))
        .await;
    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.text, first.text);
}

#[tokio::test]
async fn a_reversal_cannot_be_reversed() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, disbursed) = c.open_loan("1000").await;
    let receipt = reverse(&c, disbursed["journal_entry_id"].as_str().expect("entry")).await;
    let reversal_id = receipt["journal_entry_id"].as_str().expect("entry");
    let before = ledger_state(&app);

    let a = c
        .post_reversal(&key("rev"), &reversal_body(reversal_id))
        .await;

    assert_problem(&a, 422, "cannot_reverse_reversal");
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&c, loan).await, Owed::default());
}

#[tokio::test]
async fn a_disbursement_whose_principal_was_repaid_can_be_reversed_only_after_the_payment() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, disbursed) = c.open_loan("1000").await;
    let disbursement_id = disbursed["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    let payment_id = entry_id_of(
        &c.post_payment(&key("pay"), &payment_body(loan, borrower, "1000"))
            .await,
    );
    let before = ledger_state(&app);
    let retry_key = key("rev");

    let blocked = c
        .post_reversal(&retry_key, &reversal_body(&disbursement_id))
        .await;

    assert_problem(&blocked, 422, "reversal_blocked_by_later_activity");
    assert_eq!(ledger_state(&app), before);
    assert_eq!(
        entry(&c, &disbursement_id).await["reversed_by_entry_id"],
        Value::Null
    );

    reverse(&c, &payment_id).await;
    // The refused attempt did not consume its key: the same key now reverses the disbursement.
    let retried = c
        .post_reversal(&retry_key, &reversal_body(&disbursement_id))
        .await;
    assert_eq!(retried.status, 201, "{}", retried.text);

    assert_eq!(owed(&c, loan).await, Owed::default());
}

#[tokio::test]
async fn a_fee_that_was_paid_cannot_be_reversed_before_the_payment() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("1000").await;
    let fee_id = entry_id_of(&c.post_fee(&key("fee"), &fee_body(loan, "500")).await);
    let payment_id = entry_id_of(
        &c.post_payment(&key("pay"), &payment_body(loan, borrower, "500"))
            .await,
    );
    let before = ledger_state(&app);

    let blocked = c.post_reversal(&key("rev"), &reversal_body(&fee_id)).await;

    assert_problem(&blocked, 422, "reversal_blocked_by_later_activity");
    assert_eq!(ledger_state(&app), before);
    reverse(&c, &payment_id).await;
    reverse(&c, &fee_id).await;
    assert_eq!(
        owed(&c, loan).await,
        Owed {
            principal: 1000,
            disbursed: 1000,
            ..Owed::default()
        }
    );
}

#[tokio::test]
async fn reversing_an_accrual_unaccrues_every_loan_and_allows_accruing_that_date_again() {
    let app = spawn_app().await;
    let c = app.tenant();
    let mut triples = Vec::new();
    for (principal, interest) in [(10_000, 11), (20_000, 22), (30_000, 33)] {
        let (loan, _, _) = c.open_loan(&principal.to_string()).await;
        triples.push((loan, principal, interest));
    }
    let accrual = c
        .post_accruals(&key("accrual"), &accrual_body("2026-11-20", &triples))
        .await;
    let accrual_id = entry_id_of(&accrual);

    let receipt = reverse(&c, &accrual_id).await;

    assert_eq!(
        receipt["correlation_id"],
        accrual.json()["accrual_event_id"]
    );
    let reversal_lines =
        entry_lines(&c, receipt["journal_entry_id"].as_str().expect("entry")).await;
    assert_eq!(
        reversal_lines,
        expected_lines(&[
            ("1200", "CR", 11),
            ("4000", "DR", 11),
            ("1200", "CR", 22),
            ("4000", "DR", 22),
            ("1200", "CR", 33),
            ("4000", "DR", 33),
        ])
    );
    for (loan, principal, _) in &triples {
        assert_eq!(
            owed(&c, *loan).await,
            Owed {
                principal: *principal,
                disbursed: *principal,
                ..Owed::default()
            }
        );
    }
    let again = c
        .post_accruals(&key("accrual"), &accrual_body("2026-11-20", &triples))
        .await;
    assert_eq!(again.status, 201, "{}", again.text);
    for (loan, principal, interest) in &triples {
        assert_eq!(
            owed(&c, *loan).await,
            Owed {
                principal: *principal,
                interest: *interest,
                disbursed: *principal,
                ..Owed::default()
            }
        );
    }
}

#[tokio::test]
async fn reversing_every_entry_in_reverse_order_returns_every_balance_to_zero() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (one, one_borrower) = (uuid(), uuid());
    let (two, two_borrower) = (uuid(), uuid());
    let mut entries = vec![
        entry_id_of(
            &c.post_disbursement(
                &key("disb"),
                &disbursement_body(one, one_borrower, "100000"),
            )
            .await,
        ),
        entry_id_of(
            &c.post_disbursement(&key("disb"), &disbursement_body(two, two_borrower, "50000"))
                .await,
        ),
        entry_id_of(&c.post_fee(&key("fee"), &fee_body(one, "700")).await),
        entry_id_of(
            &c.post_accruals(
                &key("accrual"),
                &accrual_body("2026-11-20", &[(one, 100_000, 30), (two, 50_000, 15)]),
            )
            .await,
        ),
    ];
    let pay_one = c
        .post_payment(&key("pay"), &payment_body(one, one_borrower, "20000"))
        .await;
    assert_eq!(
        pay_one.json()["allocation"]["principal_minor"],
        "19270",
        "{}",
        pay_one.text
    );
    entries.push(entry_id_of(&pay_one));
    let pay_two = c
        .post_payment(&key("pay"), &payment_body(two, two_borrower, "60000"))
        .await;
    assert_eq!(
        pay_two.json()["allocation"]["suspense_minor"],
        "9985",
        "{}",
        pay_two.text
    );
    entries.push(entry_id_of(&pay_two));
    entries.push(entry_id_of(
        &c.post_disbursement(&key("disb"), &disbursement_body(one, one_borrower, "5000"))
            .await,
    ));
    entries.push(entry_id_of(
        &c.post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-21", &[(one, 85_730, 28)]),
        )
        .await,
    ));

    for entry_id in entries.iter().rev() {
        reverse(&c, entry_id).await;
    }

    assert_eq!(owed(&c, one).await, Owed::default());
    assert_eq!(owed(&c, two).await, Owed::default());
    let gl = gl_balances(&app, c.tenant);
    assert!(!gl.is_empty());
    for (account, currency, dr, cr) in gl {
        assert_eq!(dr, cr, "account {account} {currency} does not net to zero");
    }
}

#[tokio::test]
async fn reversing_an_unknown_entry_is_not_found() {
    let app = spawn_app().await;
    let c = app.tenant();
    c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c
        .post_reversal(&key("rev"), &reversal_body(&uuid().to_string()))
        .await;

    assert_problem(&a, 404, "not_found");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn reversing_another_tenants_entry_is_not_found_and_leaves_it_alone() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let (loan, _, disbursed) = a.open_loan("1000").await;
    let original_id = disbursed["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    let before = ledger_state(&app);

    let answer = b
        .post_reversal(&key("rev"), &reversal_body(&original_id))
        .await;

    assert_problem(&answer, 404, "not_found");
    assert_eq!(ledger_state(&app), before);
    assert_eq!(
        entry(&a, &original_id).await["reversed_by_entry_id"],
        Value::Null
    );
    assert_eq!(owed(&a, loan).await.principal, 1000);
}

#[tokio::test]
async fn replaying_a_reversal_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (_, _, disbursed) = c.open_loan("1000").await;
    let k = key("rev");
    let body = reversal_body(disbursed["journal_entry_id"].as_str().expect("entry"));
    let first = c.post_reversal(&k, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = ledger_state(&app);

    let replay = c.post_reversal(&k, &body).await;

    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.text, first.text);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn reusing_a_reversal_key_with_another_body_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (_, _, disbursed) = c.open_loan("1000").await;
    let k = key("rev");
    let body = reversal_body(disbursed["journal_entry_id"].as_str().expect("entry"));
    assert_eq!(c.post_reversal(&k, &body).await.status, 201);
    let mut other = body.clone();
    other["reason_code"] = json!("fraud");
    let before = ledger_state(&app);

    let a = c.post_reversal(&k, &other).await;

    assert_problem(&a, 422, "idempotency_mismatch");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_reversal_without_the_reversals_scope_is_forbidden() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (_, _, disbursed) = c.open_loan("1000").await;
    let limited = app.caller(c.tenant, &scopes_without("hpts:reversals:write"));
    let before = ledger_state(&app);

    let a = limited
        .post_reversal(
            &key("rev"),
            &reversal_body(disbursed["journal_entry_id"].as_str().expect("entry")),
        )
        .await;

    assert_problem(&a, 403, "insufficient_scope");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn each_invalid_reversal_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (_, _, disbursed) = c.open_loan("1000").await;
    let original_id = disbursed["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    let cases: Vec<(&str, Value)> = vec![
        ("reverses_entry_id", json!("entry-1")),
        ("reverses_entry_id", json!(7)),
        ("reason_code", json!("mistake")),
        ("reason_code", json!("FRAUD")),
        ("reason_description", json!("x".repeat(501))),
        ("reason_description", json!(42)),
        ("effective_at", json!("2026-11-31")),
        ("effective_at", json!("2026-11-1")),
        ("metadata", json!(true)),
        ("amount_minor", json!("1000")),
    ];
    let before = ledger_state(&app);
    for (field, value) in cases {
        let mut body = reversal_body(&original_id);
        body[field] = value.clone();

        let a = c.post_reversal(&key("rev"), &body).await;

        assert_eq!(a.status, 400, "{field} = {value}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{field} = {value}");
        assert_eq!(a.error_fields(), [field], "{field} = {value}: {}", a.text);
    }
    for required in ["reverses_entry_id", "reason_code"] {
        let mut body = reversal_body(&original_id);
        body.as_object_mut().expect("object").remove(required);

        let a = c.post_reversal(&key("rev"), &body).await;

        assert_eq!(a.status, 400, "without {required}: {}", a.text);
        assert_eq!(
            a.error_fields(),
            [required],
            "without {required}: {}",
            a.text
        );
    }
    assert_eq!(ledger_state(&app), before);
    let mut longest = reversal_body(&original_id);
    longest["reason_description"] = json!("x".repeat(500));
    let a = c.post_reversal(&key("rev"), &longest).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn no_refused_write_on_any_endpoint_writes_anything() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, disbursed) = c.open_loan("1000").await;
    let disbursement_id = disbursed["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    let payment_id = entry_id_of(
        &c.post_payment(&key("pay"), &payment_body(loan, borrower, "1000"))
            .await,
    );
    let reversal = reverse(&c, &payment_id).await;
    let before = ledger_state(&app);
    let mut bad_currency = fee_body(loan, "10");
    bad_currency["currency"] = json!("JPY");

    let answers = [
        c.post_payment(&key("pay"), &payment_body(loan, uuid(), "10"))
            .await,
        c.post_payment(&key("pay"), &payment_body(uuid(), borrower, "10"))
            .await,
        c.post_fee(&key("fee"), &bad_currency).await,
        c.post_fee(&key("fee"), &fee_body(loan, "0")).await,
        c.post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 1, 1)]),
        )
        .await,
        c.post_reversal(&key("rev"), &reversal_body(&payment_id))
            .await,
        c.post_reversal(
            &key("rev"),
            &reversal_body(reversal["journal_entry_id"].as_str().expect("entry")),
        )
        .await,
        c.post_reversal(&key("rev"), &reversal_body(&uuid().to_string()))
            .await,
    ];

    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(
        statuses,
        [422, 422, 422, 422, 422, 409, 422, 404],
        "{answers:#?}"
    );
    assert_eq!(ledger_state(&app), before);
    assert_eq!(
        entry(&c, &disbursement_id).await["reversed_by_entry_id"],
        Value::Null
    );
}
