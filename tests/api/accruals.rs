//! `POST /v1/accruals/batch`: one all-or-nothing entry with a Dr 1200 / Cr 4000 pair per loan,
//! up to 10 000 loans; per-loan refusals (`loans[i].<field>`), the banker's-rounded
//! `annual_rate_bps` check, idempotency, scope, tenant isolation and every field rule.

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Caller, disbursement_body, key, spawn_app, uuid};
use crate::payments::{
    Owed, assert_problem, entry, expected_lines, ledger_state, lines_of, owed, scopes_without,
};

/// One loan of a batch as JSON.
fn item(loan: Uuid, principal: i64, interest: i64) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "outstanding_principal_minor": principal.to_string(),
        "interest_minor": interest.to_string(),
    })
}

/// A valid `ACT_365` batch body for `(loan, outstanding principal, interest)` triples.
pub fn accrual_body(date: &str, loans: &[(Uuid, i64, i64)]) -> Value {
    let items: Vec<Value> = loans.iter().map(|(l, p, i)| item(*l, *p, *i)).collect();
    json!({
        "program_id": uuid().to_string(),
        "accrual_date": date,
        "day_count_convention": "ACT_365",
        "loans": items,
    })
}

/// A batch of one loan with an `annual_rate_bps`.
fn rated_body(convention: &str, loan: Uuid, principal: i64, interest: i64, bps: u32) -> Value {
    let mut loan_item = item(loan, principal, interest);
    loan_item["annual_rate_bps"] = json!(bps);
    json!({
        "program_id": uuid().to_string(),
        "accrual_date": "2026-11-20",
        "day_count_convention": convention,
        "loans": [loan_item],
    })
}

/// Opens `n` USD loans with `32` disbursements in flight at a time; returns `(loan, principal)`.
async fn open_loans(c: &Caller<'_>, n: i64) -> Vec<(Uuid, i64)> {
    stream::iter(0..n)
        .map(|i| async move {
            let (loan, principal) = (uuid(), 100_000 + i);
            let a = c
                .post_disbursement(
                    &key("disb"),
                    &disbursement_body(loan, uuid(), &principal.to_string()),
                )
                .await;
            assert_eq!(a.status, 201, "{}", a.text);
            (loan, principal)
        })
        .buffered(32)
        .collect()
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_ten_thousand_loans_is_accrued_in_one_request_all_or_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let loans = open_loans(&c, 10_000).await;
    let interest = |i: usize| 1 + i64::try_from(i % 97).expect("small");
    let mut triples: Vec<(Uuid, i64, i64)> = loans
        .iter()
        .enumerate()
        .map(|(i, (loan, principal))| (*loan, *principal, interest(i)))
        .collect();
    let expected_total: i64 = triples.iter().map(|t| t.2).sum();

    // One wrong principal among 10 000 refuses the whole batch and names that loan only.
    triples[5000].1 += 1;
    let before = ledger_state(&app);
    let refused = c
        .post_accruals(&key("accrual"), &accrual_body("2026-11-20", &triples))
        .await;
    assert_problem(&refused, 422, "principal_mismatch");
    assert_eq!(
        refused.error_fields(),
        ["loans[5000].outstanding_principal_minor"]
    );
    assert_eq!(refused.json()["errors"][0]["code"], "principal_mismatch");
    assert_eq!(ledger_state(&app), before);
    triples[5000].1 -= 1;

    let body = accrual_body("2026-11-20", &triples);
    let a = c.post_accruals(&key("accrual"), &body).await;

    assert_eq!(a.status, 201, "{}", a.text);
    let receipt = a.json();
    assert_eq!(receipt["loan_count"], 10_000);
    assert_eq!(
        receipt["total_accrued_minor"],
        expected_total.to_string().as_str()
    );
    let entry_id = receipt["journal_entry_id"].as_str().expect("entry");
    let db = app.db();
    let (lines, dr_1200, cr_4000): (i64, i64, i64) = db
        .query_row(
            "SELECT count(*), \
             coalesce(sum(CASE WHEN account_code = '1200' AND direction = 'DR' THEN amount_minor END), 0), \
             coalesce(sum(CASE WHEN account_code = '4000' AND direction = 'CR' THEN amount_minor END), 0) \
             FROM journal_lines WHERE entry_id = ?1",
            [entry_id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("lines");
    assert_eq!(
        (lines, dr_1200, cr_4000),
        (20_000, expected_total, expected_total)
    );
    assert_eq!(app.count("journal_entries") - before[0].1, 1);
    for i in [0, 5000, 9999] {
        let (loan, principal, interest) = triples[i];
        assert_eq!(
            owed(&c, loan).await,
            Owed {
                principal,
                interest,
                disbursed: principal,
                ..Owed::default()
            },
            "loan {i}"
        );
    }

    // The same loans and date again: every loan is already accrued.
    let after = ledger_state(&app);
    let again = c
        .post_accruals(&key("accrual"), &accrual_body("2026-11-20", &triples))
        .await;
    assert_problem(&again, 422, "already_accrued");
    let fields = again.error_fields();
    assert_eq!(fields.len(), 10_000);
    assert_eq!(fields[0], "loans[0].loan_id");
    assert_eq!(fields[9999], "loans[9999].loan_id");
    assert_eq!(ledger_state(&app), after);
}

#[tokio::test]
async fn an_accrual_posts_a_pair_per_loan_and_raises_interest_receivable() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (one, _, _) = c.open_loan("100000").await;
    let (two, _, _) = c.open_loan("250000").await;

    let a = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(one, 100_000, 27), (two, 250_000, 68)]),
        )
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    let receipt = a.json();
    assert_eq!(receipt["loan_count"], 2);
    assert_eq!(receipt["total_accrued_minor"], "95");
    assert!(
        Uuid::parse_str(receipt["accrual_event_id"].as_str().expect("event")).is_ok(),
        "{receipt}"
    );
    let e = entry(&c, receipt["journal_entry_id"].as_str().expect("entry")).await;
    assert_eq!(e["event_type"], "accrual");
    assert_eq!(e["effective_at"], "2026-11-20");
    assert_eq!(e["correlation_id"], receipt["accrual_event_id"]);
    assert_eq!(e["posted_at"], receipt["posted_at"]);
    assert_eq!(
        lines_of(&e),
        expected_lines(&[
            ("1200", "DR", 27),
            ("4000", "CR", 27),
            ("1200", "DR", 68),
            ("4000", "CR", 68)
        ])
    );
    let loans_on_lines: Vec<&str> = e["lines"]
        .as_array()
        .expect("lines")
        .iter()
        .filter_map(|l| l["loan_id"].as_str())
        .collect();
    assert_eq!(
        loans_on_lines
            .iter()
            .filter(|l| **l == one.to_string())
            .count(),
        2,
        "{e}"
    );
    assert_eq!(
        loans_on_lines
            .iter()
            .filter(|l| **l == two.to_string())
            .count(),
        2,
        "{e}"
    );
    assert_eq!(
        owed(&c, one).await,
        Owed {
            principal: 100_000,
            interest: 27,
            disbursed: 100_000,
            ..Owed::default()
        }
    );
    assert_eq!(
        owed(&c, two).await,
        Owed {
            principal: 250_000,
            interest: 68,
            disbursed: 250_000,
            ..Owed::default()
        }
    );
    let b = crate::payments::balance(&c, two).await;
    assert_eq!(b["total_exposure_minor"], "250068");
}

#[tokio::test]
async fn the_outstanding_principal_must_be_the_ledgers_principal_now() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("100000").await;
    let paid = c
        .post_payment(
            &key("pay"),
            &crate::payments::payment_body(loan, borrower, "40000"),
        )
        .await;
    assert_eq!(paid.status, 201, "{}", paid.text);
    let before = ledger_state(&app);

    let stale = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 100_000, 10)]),
        )
        .await;

    assert_problem(&stale, 422, "principal_mismatch");
    assert_eq!(
        stale.error_fields(),
        ["loans[0].outstanding_principal_minor"]
    );
    assert_eq!(ledger_state(&app), before);
    let current = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 60_000, 6)]),
        )
        .await;
    assert_eq!(current.status, 201, "{}", current.text);
}

#[tokio::test]
async fn a_loan_accrued_for_a_date_cannot_be_accrued_again_for_that_date() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("100000").await;
    let (fresh, _, _) = c.open_loan("5000").await;
    let first = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 100_000, 27)]),
        )
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = ledger_state(&app);

    let again = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(fresh, 5000, 1), (loan, 100_000, 27)]),
        )
        .await;

    assert_problem(&again, 422, "already_accrued");
    assert_eq!(again.error_fields(), ["loans[1].loan_id"]);
    assert_eq!(ledger_state(&app), before);
    let next_day = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-21", &[(loan, 100_000, 27)]),
        )
        .await;
    assert_eq!(next_day.status, 201, "{}", next_day.text);
    assert_eq!(owed(&c, loan).await.interest, 54);
    assert_eq!(owed(&c, fresh).await.interest, 0);
}

#[tokio::test]
async fn interest_must_match_the_rate_with_bankers_rounding_when_a_rate_is_given() {
    let app = spawn_app().await;
    let c = app.tenant();
    // (convention, principal, bps, computed daily interest):
    // 1 000 000 × 1200 / 3 650 000 = 328.77 → 329; / 3 600 000 = 333.33 → 333;
    // 9 000 000 × 1 / 3 600 000 = 2.5 → 2 (half to even); 5 400 000 × 1 / 3 600 000 = 1.5 → 2.
    let cases = [
        ("ACT_365", 1_000_000, 1200, 329),
        ("ACT_360", 1_000_000, 1200, 333),
        ("30_360", 1_000_000, 1200, 333),
        ("ACT_360", 9_000_000, 1, 2),
        ("30_360", 5_400_000, 1, 2),
    ];
    for (convention, principal, bps, expected) in cases {
        let (loan, _, _) = c.open_loan(&principal.to_string()).await;
        let before = ledger_state(&app);
        for wrong in [expected - 1, expected + 1] {
            let a = c
                .post_accruals(
                    &key("accrual"),
                    &rated_body(convention, loan, principal, wrong, bps),
                )
                .await;

            assert_problem(&a, 422, "interest_mismatch");
            assert_eq!(
                a.error_fields(),
                ["loans[0].interest_minor"],
                "{convention} {principal} {bps} {wrong}"
            );
        }
        assert_eq!(ledger_state(&app), before);

        let a = c
            .post_accruals(
                &key("accrual"),
                &rated_body(convention, loan, principal, expected, bps),
            )
            .await;

        assert_eq!(a.status, 201, "{convention} {principal} {bps}: {}", a.text);
        assert_eq!(owed(&c, loan).await.interest, expected);
    }
}

#[tokio::test]
async fn a_batch_mixing_currencies_is_refused() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (usd, _, _) = c.open_loan("1000").await;
    let eur = uuid();
    let mut body = disbursement_body(eur, uuid(), "2000");
    body["currency"] = json!("EUR");
    assert_eq!(c.post_disbursement(&key("disb"), &body).await.status, 201);
    let before = ledger_state(&app);

    let a = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(usd, 1000, 1), (eur, 2000, 2)]),
        )
        .await;

    assert_problem(&a, 422, "mixed_currency_batch");
    assert_eq!(a.error_fields(), ["loans[1].loan_id"]);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_batch_naming_an_unknown_loan_is_refused_with_one_error_per_bad_loan() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (good, _, _) = c.open_loan("1000").await;
    let (stale, _, _) = c.open_loan("3000").await;
    let before = ledger_state(&app);

    let a = c
        .post_accruals(
            &key("accrual"),
            &accrual_body(
                "2026-11-20",
                &[(good, 1000, 1), (uuid(), 500, 1), (stale, 2999, 1)],
            ),
        )
        .await;

    assert_problem(&a, 422, "loan_not_found");
    assert_eq!(
        a.error_fields(),
        ["loans[1].loan_id", "loans[2].outstanding_principal_minor"]
    );
    let errors = a.json()["errors"].clone();
    assert_eq!(errors[0]["code"], "loan_not_found");
    assert_eq!(errors[1]["code"], "principal_mismatch");
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&c, good).await.interest, 0);
}

#[tokio::test]
async fn a_loan_twice_in_one_batch_is_a_validation_error() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 1000, 1), (loan, 1000, 1)]),
        )
        .await;

    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["loans[1].loan_id"]);
    assert_eq!(a.json()["errors"][0]["code"], "duplicate");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn a_batch_of_more_than_ten_thousand_loans_is_a_validation_error() {
    let app = spawn_app().await;
    let c = app.tenant();
    let triples: Vec<(Uuid, i64, i64)> = (0..10_001).map(|_| (uuid(), 1000, 1)).collect();
    let before = ledger_state(&app);

    let a = c
        .post_accruals(&key("accrual"), &accrual_body("2026-11-20", &triples))
        .await;

    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["loans"]);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn an_empty_batch_is_a_validation_error() {
    let app = spawn_app().await;
    let c = app.tenant();

    let a = c
        .post_accruals(&key("accrual"), &accrual_body("2026-11-20", &[]))
        .await;

    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["loans"]);
    assert_eq!(app.count("journal_entries"), 0);
}

#[tokio::test]
async fn a_zero_interest_is_refused_as_amount_must_be_positive() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let before = ledger_state(&app);

    let a = c
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 1000, 0)]),
        )
        .await;

    assert_problem(&a, 422, "amount_must_be_positive");
    assert_eq!(a.error_fields(), ["loans[0].interest_minor"]);
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn replaying_an_accrual_batch_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let k = key("accrual");
    let body = accrual_body("2026-11-20", &[(loan, 1000, 3)]);
    let first = c.post_accruals(&k, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = ledger_state(&app);

    let replay = c.post_accruals(&k, &body).await;

    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.text, first.text);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&c, loan).await.interest, 3);
}

#[tokio::test]
async fn reusing_an_accrual_key_with_another_body_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let k = key("accrual");
    assert_eq!(
        c.post_accruals(&k, &accrual_body("2026-11-20", &[(loan, 1000, 3)]))
            .await
            .status,
        201
    );
    let before = ledger_state(&app);

    let a = c
        .post_accruals(&k, &accrual_body("2026-11-21", &[(loan, 1000, 3)]))
        .await;

    assert_problem(&a, 422, "idempotency_mismatch");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn an_accrual_without_the_accruals_scope_is_forbidden() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let limited = app.caller(c.tenant, &scopes_without("hpts:accruals:write"));
    let before = ledger_state(&app);

    let a = limited
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 1000, 3)]),
        )
        .await;

    assert_problem(&a, 403, "insufficient_scope");
    assert_eq!(ledger_state(&app), before);
}

#[tokio::test]
async fn an_accrual_of_another_tenants_loan_is_refused_as_loan_not_found() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let (loan, _, _) = a.open_loan("1000").await;
    let before = ledger_state(&app);

    let answer = b
        .post_accruals(
            &key("accrual"),
            &accrual_body("2026-11-20", &[(loan, 1000, 3)]),
        )
        .await;

    assert_problem(&answer, 422, "loan_not_found");
    assert_eq!(answer.error_fields(), ["loans[0].loan_id"]);
    assert_eq!(ledger_state(&app), before);
    assert_eq!(owed(&a, loan).await.interest, 0);
}

/// An edit of a valid batch body.
type Change = Box<dyn Fn(&mut Value)>;

#[tokio::test]
async fn each_invalid_accrual_field_is_a_400_naming_exactly_that_field() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("1000").await;
    let valid = || accrual_body("2026-11-20", &[(loan, 1000, 3)]);
    let cases: Vec<(&str, Change)> = vec![
        (
            "program_id",
            Box::new(|b| b["program_id"] = json!("program-7")),
        ),
        (
            "accrual_date",
            Box::new(|b| b["accrual_date"] = json!("2026-11-31")),
        ),
        (
            "day_count_convention",
            Box::new(|b| b["day_count_convention"] = json!("ACT_366")),
        ),
        (
            "day_count_convention",
            Box::new(|b| b["day_count_convention"] = json!("act_365")),
        ),
        (
            "loans",
            Box::new(|b| b["loans"] = json!({ "loan_id": "x" })),
        ),
        ("batch_size", Box::new(|b| b["batch_size"] = json!(1))),
        ("loans[0]", Box::new(|b| b["loans"][0] = json!("loan"))),
        (
            "loans[0].loan_id",
            Box::new(|b| b["loans"][0]["loan_id"] = json!("loan-1")),
        ),
        (
            "loans[0].outstanding_principal_minor",
            Box::new(|b| b["loans"][0]["outstanding_principal_minor"] = json!(1000)),
        ),
        (
            "loans[0].interest_minor",
            Box::new(|b| b["loans"][0]["interest_minor"] = json!("-3")),
        ),
        (
            "loans[0].annual_rate_bps",
            Box::new(|b| b["loans"][0]["annual_rate_bps"] = json!("1200")),
        ),
        (
            "loans[0].annual_rate_bps",
            Box::new(|b| b["loans"][0]["annual_rate_bps"] = json!(12.5)),
        ),
        (
            "loans[0].annual_rate_bps",
            Box::new(|b| b["loans"][0]["annual_rate_bps"] = json!(-1)),
        ),
        (
            "loans[0].currency",
            Box::new(|b| b["loans"][0]["currency"] = json!("USD")),
        ),
    ];
    let before = ledger_state(&app);
    for (field, change) in cases {
        let mut body = valid();
        change(&mut body);

        let a = c.post_accruals(&key("accrual"), &body).await;

        assert_eq!(a.status, 400, "{field}: {}", a.text);
        assert_eq!(a.code(), "validation_failed", "{field}");
        assert_eq!(a.error_fields(), [field], "{field}: {}", a.text);
    }
    for required in [
        "program_id",
        "accrual_date",
        "day_count_convention",
        "loans",
    ] {
        let mut body = valid();
        body.as_object_mut().expect("object").remove(required);

        let a = c.post_accruals(&key("accrual"), &body).await;

        assert_eq!(a.status, 400, "without {required}: {}", a.text);
        assert_eq!(
            a.error_fields(),
            [required],
            "without {required}: {}",
            a.text
        );
    }
    for required in ["loan_id", "outstanding_principal_minor", "interest_minor"] {
        let mut body = valid();
        body["loans"][0]
            .as_object_mut()
            .expect("object")
            .remove(required);

        let a = c.post_accruals(&key("accrual"), &body).await;

        assert_eq!(a.status, 400, "without {required}: {}", a.text);
        assert_eq!(
            a.error_fields(),
            [format!("loans[0].{required}")],
            "without {required}: {}",
            a.text
        );
    }
    assert_eq!(ledger_state(&app), before);
}
