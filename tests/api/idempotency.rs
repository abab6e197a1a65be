//! `Idempotency-Key` on POST /v1/disbursements (SPEC §4): replays answer 200 with the stored
//! bytes and write nothing; a different body or route is 422; concurrent duplicates post once;
//! keys are per tenant; rejected requests do not consume the key; the header's format.

use futures_util::future::join_all;
use serde_json::{Value, json};

use crate::helpers::{
    Answer, Caller, assert_full_problem, disbursement_body, key, spawn_app, uuid,
};

/// POST /v1/disbursements with a raw body text (so byte-level variations reach the server).
async fn post_text(caller: &Caller<'_>, idempotency_key: &str, text: &str) -> Answer {
    let r = caller
        .app
        .client
        .post(format!("{}/v1/disbursements", caller.app.address))
        .bearer_auth(&caller.token)
        .header("Idempotency-Key", idempotency_key)
        .header("Content-Type", "application/json")
        .body(text.to_owned())
        .send()
        .await
        .expect("request sent");
    Answer::from(r).await
}

#[tokio::test]
async fn replaying_a_disbursement_returns_the_original_body_and_writes_nothing() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let k = key("disbursement");
    let body = disbursement_body(uuid(), uuid(), "25000");
    let first = caller.post_disbursement(&k, &body).await;
    assert_eq!(first.status, 201, "{}", first.text);
    let after_first = app.written();

    let replay = caller.post_disbursement(&k, &body).await;

    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(
        replay.text, first.text,
        "identical body bytes (same ids, same posted_at)"
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(replay.header("content-type"), Some("application/json"));
    assert_eq!(app.written(), after_first, "a replay writes nothing");
}

#[tokio::test]
async fn a_replay_leaves_the_loan_balance_unchanged() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let k = key("disbursement");
    let body = disbursement_body(loan, borrower, "25000");
    for _ in 0..3 {
        let a = caller.post_disbursement(&k, &body).await;
        assert!(matches!(a.status, 200 | 201), "{}", a.text);
    }
    let balance = caller.get_loan_balance(loan).await;
    assert_eq!(balance.json()["principal_outstanding_minor"], "25000");
    assert_eq!(app.count("journal_entries"), 1);
}

#[tokio::test]
async fn the_same_body_with_other_key_order_and_whitespace_is_a_replay() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let k = key("disbursement");
    let compact = format!(
        r#"{{"loan_id":"{loan}","borrower_id":"{borrower}","amount_minor":"100","currency":"USD","effective_at":"2026-11-01","method":"ach","metadata":{{"a":1,"b":2}}}}"#
    );
    let reordered = format!(
        "{{\n  \"metadata\": {{ \"b\": 2, \"a\": 1 }},\n  \"method\": \"ach\", \"effective_at\": \"2026-11-01\",\n  \
         \"currency\": \"USD\", \"amount_minor\": \"100\", \"borrower_id\": \"{borrower}\", \"loan_id\": \"{loan}\"\n}}"
    );
    let first = post_text(&caller, &k, &compact).await;
    assert_eq!(first.status, 201, "{}", first.text);

    let replay = post_text(&caller, &k, &reordered).await;

    assert_eq!(replay.status, 200, "{}", replay.text);
    assert_eq!(replay.text, first.text);
    assert_eq!(app.count("journal_entries"), 1);
}

#[tokio::test]
async fn the_same_key_with_another_body_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let k = key("disbursement");
    let first = caller
        .post_disbursement(&k, &disbursement_body(loan, borrower, "25000"))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = app.written();

    let other = caller
        .post_disbursement(&k, &disbursement_body(loan, borrower, "25001"))
        .await;

    assert_full_problem(&other, 422, "idempotency_mismatch");
    assert_eq!(other.header("idempotent-replayed"), None);
    assert_eq!(app.written(), before);
    assert_eq!(
        caller.get_loan_balance(loan).await.json()["principal_outstanding_minor"],
        "25000"
    );
}

#[tokio::test]
async fn the_same_key_on_another_route_is_an_idempotency_mismatch() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let k = key("shared");
    let first = caller
        .post_disbursement(&k, &disbursement_body(loan, borrower, "25000"))
        .await;
    assert_eq!(first.status, 201, "{}", first.text);
    let before = app.written();
    let fee = json!({
        "loan_id": loan.to_string(),
        "fee_type": "late",
        "amount_minor": "500",
        "currency": "USD",
        "effective_at": "2026-11-01"
    });

    let other = caller.post_fee(&k, &fee).await;

    assert_full_problem(&other, 422, "idempotency_mismatch");
    assert_eq!(app.written(), before);
}

#[tokio::test]
async fn twenty_concurrent_identical_requests_post_exactly_one_entry() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let k = key("disbursement");
    let body = disbursement_body(uuid(), uuid(), "42000");

    let answers = join_all((0..20).map(|_| caller.post_disbursement(&k, &body))).await;

    let created: Vec<&Answer> = answers.iter().filter(|a| a.status == 201).collect();
    assert_eq!(
        created.len(),
        1,
        "exactly one request creates: {:?}",
        answers.iter().map(|a| a.status).collect::<Vec<_>>()
    );
    let original = &created[0].text;
    for a in &answers {
        match a.status {
            201 => {}
            200 => {
                assert_eq!(&a.text, original, "a replay returns the stored body");
                assert_eq!(a.header("idempotent-replayed"), Some("true"));
            }
            409 => {
                assert_full_problem(a, 409, "idempotency_in_progress");
                let retry = a.header("retry-after").expect("409 carries Retry-After");
                assert!(
                    retry.parse::<u32>().is_ok(),
                    "Retry-After is delay-seconds: {retry}"
                );
            }
            other => panic!("unexpected status {other}: {}", a.text),
        }
    }
    assert_eq!(app.count("journal_entries"), 1);
    assert_eq!(app.count("events"), 1);
    assert_eq!(app.count("idempotency_keys"), 1);

    let later = caller.post_disbursement(&k, &body).await;
    assert_eq!(
        later.status, 200,
        "once settled, the key replays: {}",
        later.text
    );
    assert_eq!(&later.text, original);
}

#[tokio::test]
async fn two_tenants_may_use_the_same_key_independently() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let k = key("disbursement");
    let (loan, borrower) = (uuid(), uuid());
    let body = disbursement_body(loan, borrower, "1000");

    let first = a.post_disbursement(&k, &body).await;
    let second = b.post_disbursement(&k, &body).await;

    assert_eq!(first.status, 201, "{}", first.text);
    assert_eq!(
        second.status, 201,
        "another tenant's key is not a replay: {}",
        second.text
    );
    assert_eq!(second.header("idempotent-replayed"), None);
    assert_ne!(
        first.json()["journal_entry_id"],
        second.json()["journal_entry_id"]
    );
    assert_eq!(app.count("journal_entries"), 2);
    for caller in [&a, &b] {
        assert_eq!(
            caller.get_loan_balance(loan).await.json()["principal_outstanding_minor"],
            "1000"
        );
    }
}

#[tokio::test]
async fn a_request_refused_with_422_does_not_consume_the_key() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, _, _) = caller.open_loan("1000").await;
    let k = key("disbursement");
    let refused = caller
        .post_disbursement(&k, &disbursement_body(loan, uuid(), "500"))
        .await;
    assert_full_problem(&refused, 422, "borrower_mismatch");

    let retry = caller
        .post_disbursement(&k, &disbursement_body(uuid(), uuid(), "500"))
        .await;

    assert_eq!(retry.status, 201, "{}", retry.text);
    assert_eq!(retry.header("idempotent-replayed"), None);
}

#[tokio::test]
async fn a_request_refused_with_400_does_not_consume_the_key() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let k = key("disbursement");
    let mut bad = disbursement_body(uuid(), uuid(), "500");
    bad["currency"] = json!("usd");
    let refused = caller.post_disbursement(&k, &bad).await;
    assert_full_problem(&refused, 400, "validation_failed");
    let zero = caller
        .post_disbursement(&k, &disbursement_body(uuid(), uuid(), "0"))
        .await;
    assert_full_problem(&zero, 422, "amount_must_be_positive");
    assert_eq!(app.count("idempotency_keys"), 0);

    let retry = caller
        .post_disbursement(&k, &disbursement_body(uuid(), uuid(), "500"))
        .await;

    assert_eq!(retry.status, 201, "{}", retry.text);
}

#[tokio::test]
async fn a_post_without_an_idempotency_key_is_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let body = disbursement_body(uuid(), uuid(), "500");

    let a = Answer::from(
        app.post_raw("/v1/disbursements", Some(&caller.token), None, &body)
            .await,
    )
    .await;

    assert_full_problem(&a, 400, "idempotency_key_missing");
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn malformed_idempotency_keys_are_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let invalid = [
        "a".repeat(7),
        "a".repeat(256),
        "-abcdefgh".to_owned(),
        ".abcdefgh".to_owned(),
        "abcd efgh".to_owned(),
        "abcd/efgh".to_owned(),
        "abcd+efgh".to_owned(),
        String::new(),
    ];
    for k in &invalid {
        let a = caller
            .post_disbursement(k, &disbursement_body(uuid(), uuid(), "500"))
            .await;
        assert_full_problem(&a, 400, "idempotency_key_invalid");
    }
    assert_eq!(app.written(), [0; 5], "a refused key writes nothing");
}

#[tokio::test]
async fn keys_of_eight_and_of_255_characters_are_accepted() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let long = format!("a{}", "b.:_-".repeat(51))
        .chars()
        .take(255)
        .collect::<String>();
    assert_eq!(long.len(), 255);
    for k in ["abcdefgh", "0:._-zZ9", long.as_str()] {
        let body = disbursement_body(uuid(), uuid(), "500");
        let a = caller.post_disbursement(k, &body).await;
        assert_eq!(a.status, 201, "{k}: {}", a.text);
        let replay = caller.post_disbursement(k, &body).await;
        assert_eq!(replay.status, 200, "{k} is stored whole: {}", replay.text);
    }
}

#[tokio::test]
async fn the_retired_x_trace_id_header_is_ignored() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let r = app
        .client
        .post(format!("{}/v1/disbursements", app.address))
        .bearer_auth(&caller.token)
        .header("Idempotency-Key", key("disbursement"))
        .header("X-Trace-Id", "not even a valid trace id!")
        .json(&disbursement_body(uuid(), uuid(), "500"))
        .send()
        .await
        .expect("request sent");
    let a = Answer::from(r).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let body: Value = a.json();
    assert!(body["journal_entry_id"].is_string());
}
