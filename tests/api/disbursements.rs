//! POST /v1/disbursements end to end: the 201 receipt, the journal entry it posts (Dr 1100 /
//! Cr 2000, balanced, actor and metadata kept), the loan balance it opens, later disbursements to
//! the same loan, and the borrower/currency bindings (422, nothing written).

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use uuid::Uuid;

use crate::helpers::{
    Caller, LOAN_BALANCE_KEYS, assert_full_problem, disbursement_body, key, now, spawn_app, uuid,
};

/// A lowercase, hyphenated UUID string.
fn assert_lower_uuid(v: &Value, what: &str) -> Uuid {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {v}"));
    let id = Uuid::try_parse(s).unwrap_or_else(|e| panic!("{what} is not a UUID ({e}): {s}"));
    assert_eq!(
        s,
        id.hyphenated().to_string(),
        "{what} must be lowercase and hyphenated"
    );
    id
}

/// An RFC 3339 UTC timestamp ending in `Z`.
fn assert_utc_timestamp(v: &Value) -> OffsetDateTime {
    let s = v
        .as_str()
        .unwrap_or_else(|| panic!("posted_at is not a string: {v}"));
    assert!(s.ends_with('Z'), "posted_at must end in Z: {s}");
    let t = OffsetDateTime::parse(s, &Rfc3339)
        .unwrap_or_else(|e| panic!("posted_at is not RFC 3339 ({e}): {s}"));
    assert!(t.offset().is_utc(), "posted_at must be UTC: {s}");
    t
}

/// The README's example body with metadata whose key order and nesting must survive.
fn example_body(loan: Uuid, borrower: Uuid) -> Value {
    serde_json::from_str(&format!(
        r#"{{"loan_id":"{loan}","borrower_id":"{borrower}","amount_minor":"250000","currency":"USD",
            "effective_at":"2026-11-25","method":"ach","destination_ref":"acct-123",
            "metadata":{{"zeta":1,"alpha":{{"b":[1,2.5,null],"a":"x"}},"note":"caf\u00e9 \"q\"","flag":true}}}}"#
    ))
    .expect("example body")
}

async fn entry_of(caller: &Caller<'_>, receipt: &Value) -> Value {
    let a = caller
        .get_entry(receipt["journal_entry_id"].as_str().expect("entry id"))
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}

async fn balance_of(caller: &Caller<'_>, loan: Uuid) -> Value {
    let a = caller.get_loan_balance(loan).await;
    assert_eq!(a.status, 200, "{}", a.text);
    a.json()
}

#[tokio::test]
async fn a_disbursement_answers_201_with_exactly_the_three_receipt_fields() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let a = caller
        .post_disbursement(&key("disb"), &example_body(uuid(), uuid()))
        .await;

    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.header("content-type"), Some("application/json"));
    assert_eq!(
        a.header("idempotent-replayed"),
        None,
        "a first write is not a replay"
    );
    let body = a.json();
    let fields: Vec<&str> = body
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    let mut sorted = fields.clone();
    sorted.sort_unstable();
    assert_eq!(
        sorted,
        ["disbursement_event_id", "journal_entry_id", "posted_at"],
        "{}",
        a.text
    );
    let event = assert_lower_uuid(&body["disbursement_event_id"], "disbursement_event_id");
    let entry = assert_lower_uuid(&body["journal_entry_id"], "journal_entry_id");
    assert_ne!(event, entry);
    assert_eq!(event.get_version_num(), 7, "service ids are UUIDv7");
    assert_eq!(entry.get_version_num(), 7, "service ids are UUIDv7");
    assert_utc_timestamp(&body["posted_at"]);
}

#[tokio::test]
async fn the_journal_entry_debits_principal_receivable_and_credits_disbursement_clearing() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let a = caller
        .post_disbursement(&key("disb"), &example_body(loan, borrower))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let receipt = a.json();

    let entry = entry_of(&caller, &receipt).await;
    assert_eq!(entry["journal_entry_id"], receipt["journal_entry_id"]);
    assert_eq!(entry["event_type"], "disbursement");
    assert_eq!(entry["effective_at"], "2026-11-25");
    assert_eq!(
        entry["posted_at"], receipt["posted_at"],
        "posted_at is identical wherever the entry is shown"
    );
    assert_eq!(entry["correlation_id"], receipt["disbursement_event_id"]);
    assert_eq!(entry["reverses_entry_id"], Value::Null);
    assert_eq!(entry["reversed_by_entry_id"], Value::Null);
    assert_eq!(entry["actor"], "test-user", "actor is the token's sub");

    let lines = entry["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2, "{entry}");
    let by_direction = |dir: &str| {
        lines
            .iter()
            .find(|l| l["direction"] == dir)
            .unwrap_or_else(|| panic!("no {dir}"))
    };
    let (dr, cr) = (by_direction("DR"), by_direction("CR"));
    assert_eq!(dr["account_code"], "1100");
    assert_eq!(cr["account_code"], "2000");
    for line in [dr, cr] {
        assert_eq!(line["amount_minor"], "250000", "{line}");
        assert_eq!(line["currency"], "USD", "{line}");
        assert_eq!(line["layer"], "SETTLED", "{line}");
        assert_eq!(line["loan_id"], loan.to_string(), "{line}");
        assert_eq!(line["borrower_id"], borrower.to_string(), "{line}");
    }
    let mut sequences: Vec<i64> = lines
        .iter()
        .map(|l| l["sequence"].as_i64().expect("sequence"))
        .collect();
    sequences.sort_unstable();
    assert_eq!(sequences, [1, 2]);
}

#[tokio::test]
async fn the_journal_entry_balances() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (_, _, receipt) = caller.open_loan("987654321").await;
    let entry = entry_of(&caller, &receipt).await;
    let sum = |dir: &str| -> i64 {
        entry["lines"]
            .as_array()
            .expect("lines")
            .iter()
            .filter(|l| l["direction"] == dir)
            .map(|l| {
                l["amount_minor"]
                    .as_str()
                    .expect("money is a string")
                    .parse::<i64>()
                    .expect("integer")
            })
            .sum()
    };
    assert_eq!(sum("DR"), 987_654_321);
    assert_eq!(sum("DR"), sum("CR"));
}

#[tokio::test]
async fn metadata_is_returned_verbatim_on_the_entry() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let body = example_body(uuid(), uuid());
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_eq!(a.status, 201, "{}", a.text);

    let entry = entry_of(&caller, &a.json()).await;
    assert_eq!(
        serde_json::to_string(&entry["metadata"]).expect("json"),
        serde_json::to_string(&body["metadata"]).expect("json"),
        "same keys, same order, same values"
    );
}

#[tokio::test]
async fn an_entry_without_metadata_shows_null_metadata() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let mut body = disbursement_body(uuid(), uuid(), "100");
    body.as_object_mut().expect("object").remove("metadata");
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let entry = entry_of(&caller, &a.json()).await;
    assert_eq!(entry["metadata"], Value::Null, "{entry}");
}

#[tokio::test]
async fn the_loan_balance_shows_the_disbursed_principal_with_every_field() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let a = caller
        .post_disbursement(&key("disb"), &example_body(loan, borrower))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let receipt = a.json();

    let balance = balance_of(&caller, loan).await;
    let expected_fields = LOAN_BALANCE_KEYS;
    for field in expected_fields {
        assert!(balance.get(field).is_some(), "{field} missing: {balance}");
    }
    assert_eq!(balance["loan_id"], loan.to_string());
    assert_eq!(balance["borrower_id"], borrower.to_string());
    assert_eq!(balance["currency"], "USD");
    assert_eq!(balance["status"], "active");
    assert_eq!(balance["principal_outstanding_minor"], "250000");
    assert_eq!(balance["interest_receivable_minor"], "0");
    assert_eq!(balance["fees_receivable_minor"], "0");
    assert_eq!(balance["suspense_minor"], "0");
    assert_eq!(balance["total_exposure_minor"], "250000");
    assert_eq!(balance["disbursed_total_minor"], "250000");
    assert_eq!(balance["paid_total_minor"], "0");
    assert_eq!(balance["last_activity_at"], receipt["posted_at"]);
    let as_of = balance["as_of_date"].as_str().expect("as_of_date");
    let posted_day = assert_utc_timestamp(&receipt["posted_at"]).date();
    let today = OffsetDateTime::from_unix_timestamp(i64::try_from(now()).expect("time"))
        .expect("time")
        .date();
    assert!(
        [posted_day, today].iter().any(|d| d.to_string() == as_of),
        "as_of_date defaults to today (UTC): {as_of}"
    );
    for field in expected_fields.iter().filter(|f| f.ends_with("_minor")) {
        assert!(
            balance[*field].is_string(),
            "money is a string on the wire: {field} = {}",
            balance[*field]
        );
    }
}

#[tokio::test]
async fn uppercase_ids_are_accepted_and_returned_lowercase() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let mut body = disbursement_body(loan, borrower, "5000");
    body["loan_id"] = json!(loan.to_string().to_uppercase());
    body["borrower_id"] = json!(borrower.to_string().to_uppercase());
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_eq!(a.status, 201, "{}", a.text);

    let balance = balance_of(&caller, loan).await;
    assert_eq!(balance["loan_id"], loan.to_string());
    assert_eq!(balance["borrower_id"], borrower.to_string());
    let upper = caller
        .get(&format!(
            "/v1/loans/{}/balance",
            loan.to_string().to_uppercase()
        ))
        .await;
    assert_eq!(upper.status, 200, "{}", upper.text);
    assert_eq!(upper.json()["loan_id"], loan.to_string());
    let entry = entry_of(&caller, &a.json()).await;
    for line in entry["lines"].as_array().expect("lines") {
        assert_eq!(line["loan_id"], loan.to_string());
        assert_eq!(line["borrower_id"], borrower.to_string());
    }
}

#[tokio::test]
async fn every_disbursement_method_is_accepted() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for method in ["ach", "wire", "card_push", "internal_transfer"] {
        let mut body = disbursement_body(uuid(), uuid(), "100");
        body["method"] = json!(method);
        let a = caller.post_disbursement(&key("disb"), &body).await;
        assert_eq!(a.status, 201, "{method}: {}", a.text);
    }
    assert_eq!(app.count("journal_entries"), 4);
}

#[tokio::test]
async fn a_second_disbursement_to_the_same_loan_adds_principal() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower, first) = caller.open_loan("100000").await;
    let a = caller
        .post_disbursement(&key("disb"), &disbursement_body(loan, borrower, "50000"))
        .await;
    assert_eq!(a.status, 201, "{}", a.text);
    let second = a.json();
    assert_ne!(first["journal_entry_id"], second["journal_entry_id"]);
    assert_ne!(
        first["disbursement_event_id"],
        second["disbursement_event_id"]
    );

    let balance = balance_of(&caller, loan).await;
    assert_eq!(balance["principal_outstanding_minor"], "150000");
    assert_eq!(balance["disbursed_total_minor"], "150000");
    assert_eq!(balance["total_exposure_minor"], "150000");
    assert_eq!(balance["last_activity_at"], second["posted_at"]);
    assert_eq!(app.count("journal_entries"), 2);
}

#[tokio::test]
async fn a_disbursement_to_the_loan_with_another_borrower_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, _, _) = caller.open_loan("100000").await;
    let before = app.written();

    let a = caller
        .post_disbursement(&key("disb"), &disbursement_body(loan, uuid(), "50000"))
        .await;

    assert_full_problem(&a, 422, "borrower_mismatch");
    assert_eq!(app.written(), before);
    assert_eq!(
        balance_of(&caller, loan).await["principal_outstanding_minor"],
        "100000"
    );
}

#[tokio::test]
async fn a_disbursement_to_the_loan_in_another_currency_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower, _) = caller.open_loan("100000").await;
    let before = app.written();
    let mut body = disbursement_body(loan, borrower, "50000");
    body["currency"] = json!("EUR");

    let a = caller.post_disbursement(&key("disb"), &body).await;

    assert_full_problem(&a, 422, "currency_mismatch");
    assert_eq!(app.written(), before);
    let balance = balance_of(&caller, loan).await;
    assert_eq!(balance["currency"], "USD");
    assert_eq!(balance["principal_outstanding_minor"], "100000");
}

#[tokio::test]
async fn the_largest_amount_is_accepted_exactly() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, _, receipt) = caller.open_loan("9223372036854775807").await;
    assert_eq!(
        balance_of(&caller, loan).await["principal_outstanding_minor"],
        "9223372036854775807"
    );
    let entry = entry_of(&caller, &receipt).await;
    for line in entry["lines"].as_array().expect("lines") {
        assert_eq!(line["amount_minor"], "9223372036854775807");
    }
}

#[tokio::test]
async fn a_disbursement_that_would_overflow_the_loan_principal_is_refused_and_writes_nothing() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower, _) = caller.open_loan("9223372036854775807").await;
    let before = app.written();

    let a = caller
        .post_disbursement(&key("disb"), &disbursement_body(loan, borrower, "1"))
        .await;

    assert!(
        matches!(a.status, 400 | 422),
        "a client error, never a wrap or a 500: {} {}",
        a.status,
        a.text
    );
    assert_eq!(a.header("content-type"), Some("application/problem+json"));
    assert_eq!(app.written(), before);
    assert_eq!(
        balance_of(&caller, loan).await["principal_outstanding_minor"],
        "9223372036854775807"
    );
}

#[tokio::test]
async fn the_effective_date_is_recorded_as_sent() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let mut body = disbursement_body(uuid(), uuid(), "700");
    body["effective_at"] = json!("2024-02-29");
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(
        entry_of(&caller, &a.json()).await["effective_at"],
        "2024-02-29"
    );
}
