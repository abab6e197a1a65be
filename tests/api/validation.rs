//! Body validation of POST /v1/disbursements (SPEC §2, §6): every field rule has a failing input
//! that names the field in `errors[]`; JSON, media-type and size problems have their own codes;
//! every error is problem+json and nothing refused is ever written.

use std::io::{Read, Write};

use serde_json::{Value, json};

use crate::helpers::{
    Answer, Caller, assert_full_problem, disbursement_body, key, spawn_app, uuid,
};

/// Asserts a 400 `validation_failed` whose `errors[]` names exactly `fields`.
fn assert_invalid_fields(a: &Answer, fields: &[&str]) {
    assert_full_problem(a, 400, "validation_failed");
    let mut got = a.error_fields();
    got.sort();
    let mut want: Vec<String> = fields.iter().map(|f| (*f).to_owned()).collect();
    want.sort();
    assert_eq!(got, want, "{}", a.text);
    for item in a.json()["errors"].as_array().expect("errors") {
        assert!(
            item["code"].as_str().is_some_and(|c| !c.is_empty()),
            "errors[].code: {item}"
        );
        assert!(
            item["message"].as_str().is_some_and(|m| !m.is_empty()),
            "errors[].message: {item}"
        );
    }
}

/// The `errors[].code` reported for `field`.
fn error_code_of(a: &Answer, field: &str) -> String {
    a.json()["errors"]
        .as_array()
        .expect("errors")
        .iter()
        .find(|e| e["field"] == field)
        .and_then(|e| e["code"].as_str())
        .unwrap_or_else(|| panic!("no error for {field}: {}", a.text))
        .to_owned()
}

/// A valid body with `field` replaced by `value`.
fn with(field: &str, value: Value) -> Value {
    let mut body = disbursement_body(uuid(), uuid(), "1000");
    body[field] = value;
    body
}

/// A valid body without `field`.
fn without(field: &str) -> Value {
    let mut body = disbursement_body(uuid(), uuid(), "1000");
    body.as_object_mut().expect("object").remove(field);
    body
}

/// POST /v1/disbursements with a raw body and content type.
async fn post_raw_body(
    caller: &Caller<'_>,
    content_type: Option<&str>,
    body: impl Into<reqwest::Body>,
) -> Answer {
    let mut req = caller
        .app
        .client
        .post(format!("{}/v1/disbursements", caller.app.address))
        .bearer_auth(&caller.token)
        .header("Idempotency-Key", key("disbursement"))
        .body(body);
    if let Some(ct) = content_type {
        req = req.header("Content-Type", ct);
    }
    Answer::from(req.send().await.expect("request sent")).await
}

#[tokio::test]
async fn ids_that_are_not_uuids_are_refused_as_invalid_format() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for field in ["loan_id", "borrower_id"] {
        for bad in [
            json!("not-a-uuid"),
            json!("0190a1b2c3d47e5f8a9b0c1d2e3f4a51"),
            json!(""),
            json!(42),
        ] {
            let a = caller
                .post_disbursement(&key("disb"), &with(field, bad.clone()))
                .await;
            assert_invalid_fields(&a, &[field]);
            if bad.is_string() {
                assert_eq!(
                    error_code_of(&a, field),
                    "invalid_format",
                    "{field} = {bad}"
                );
            }
        }
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn each_missing_required_field_is_named() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for field in [
        "loan_id",
        "borrower_id",
        "amount_minor",
        "currency",
        "effective_at",
        "method",
    ] {
        let a = caller
            .post_disbursement(&key("disb"), &without(field))
            .await;
        assert_invalid_fields(&a, &[field]);
        assert_eq!(error_code_of(&a, field), "required", "{field}");
        let null = caller
            .post_disbursement(&key("disb"), &with(field, Value::Null))
            .await;
        assert_invalid_fields(&null, &[field]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn optional_fields_may_be_left_out() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let mut body = without("metadata");
    body.as_object_mut()
        .expect("object")
        .remove("destination_ref");
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn an_amount_above_i64_max_is_a_400_not_a_wrap() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for bad in [
        "9223372036854775808",
        "9999999999999999999",
        "18446744073709551616",
    ] {
        let a = caller
            .post_disbursement(&key("disb"), &with("amount_minor", json!(bad)))
            .await;
        assert_invalid_fields(&a, &["amount_minor"]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn a_zero_amount_is_amount_must_be_positive() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let a = caller
        .post_disbursement(&key("disb"), &with("amount_minor", json!("0")))
        .await;
    assert_full_problem(&a, 422, "amount_must_be_positive");
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn a_zero_amount_with_a_format_error_elsewhere_is_a_400() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let mut body = with("amount_minor", json!("0"));
    body["currency"] = json!("usd");
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_eq!(a.status, 400, "{}", a.text);
    assert!(
        a.error_fields().contains(&"currency".to_owned()),
        "{}",
        a.text
    );
}

#[tokio::test]
async fn malformed_amounts_are_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let bad = [
        json!("01"),
        json!("-5"),
        json!("1.5"),
        json!("1e3"),
        json!("+5"),
        json!(" 5"),
        json!("5 "),
        json!(""),
        json!("1,000"),
        json!("12345678901234567890"),
        json!(100),
        json!(1.5),
        json!(true),
        json!(["100"]),
    ];
    for value in bad {
        let a = caller
            .post_disbursement(&key("disb"), &with("amount_minor", value.clone()))
            .await;
        assert_eq!(a.status, 400, "amount_minor = {value}: {}", a.text);
        assert_invalid_fields(&a, &["amount_minor"]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn currencies_that_are_not_three_uppercase_letters_are_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for bad in [
        json!("usd"),
        json!("US"),
        json!("USDT"),
        json!("U5D"),
        json!(""),
        json!(840),
    ] {
        let a = caller
            .post_disbursement(&key("disb"), &with("currency", bad.clone()))
            .await;
        assert_eq!(a.status, 400, "currency = {bad}: {}", a.text);
        assert_invalid_fields(&a, &["currency"]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn effective_dates_that_are_not_calendar_dates_are_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for bad in [
        "2026-02-30",
        "2026-11-25T00:00:00Z",
        "2026-13-01",
        "2025-02-29",
        "26-11-25",
        "2026/11/25",
        "2026-1-5",
        "",
    ] {
        let a = caller
            .post_disbursement(&key("disb"), &with("effective_at", json!(bad)))
            .await;
        assert_eq!(a.status, 400, "effective_at = {bad}: {}", a.text);
        assert_invalid_fields(&a, &["effective_at"]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn unknown_methods_are_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for bad in [json!("cheque"), json!("ACH"), json!(""), json!(1)] {
        let a = caller
            .post_disbursement(&key("disb"), &with("method", bad.clone()))
            .await;
        assert_eq!(a.status, 400, "method = {bad}: {}", a.text);
        assert_invalid_fields(&a, &["method"]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn destination_ref_must_be_1_to_255_characters() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for bad in [String::new(), "x".repeat(256)] {
        let a = caller
            .post_disbursement(&key("disb"), &with("destination_ref", json!(bad)))
            .await;
        assert_invalid_fields(&a, &["destination_ref"]);
    }
    assert_eq!(app.written(), [0; 5]);
    for good in ["x".to_owned(), "x".repeat(255)] {
        let a = caller
            .post_disbursement(&key("disb"), &with("destination_ref", json!(good)))
            .await;
        assert_eq!(a.status, 201, "{} characters: {}", good.len(), a.text);
    }
}

#[tokio::test]
async fn metadata_that_is_not_an_object_is_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for bad in [json!("text"), json!([1, 2]), json!(5), json!(true)] {
        let a = caller
            .post_disbursement(&key("disb"), &with("metadata", bad.clone()))
            .await;
        assert_eq!(a.status, 400, "metadata = {bad}: {}", a.text);
        assert_invalid_fields(&a, &["metadata"]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn metadata_keys_must_be_identifiers() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for bad in ["1abc", "bad-key", "_lead", "sp ace", ""] {
        let mut metadata = serde_json::Map::new();
        metadata.insert("fine_Key1".into(), json!(1));
        metadata.insert(bad.into(), json!("x"));
        let a = caller
            .post_disbursement(&key("disb"), &with("metadata", Value::Object(metadata)))
            .await;
        assert_invalid_fields(&a, &[&format!("metadata.{bad}")]);
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn metadata_may_serialise_to_2048_bytes_but_not_more() {
    let app = spawn_app().await;
    let caller = app.tenant();
    // {"k":"<n>"} serialises to n + 8 bytes.
    let at_limit = json!({ "k": "x".repeat(2040) });
    assert_eq!(at_limit.to_string().len(), 2048);
    let over = json!({ "k": "x".repeat(2041) });

    let refused = caller
        .post_disbursement(&key("disb"), &with("metadata", over))
        .await;
    assert_invalid_fields(&refused, &["metadata"]);
    assert_eq!(app.written(), [0; 5]);

    let accepted = caller
        .post_disbursement(&key("disb"), &with("metadata", at_limit))
        .await;
    assert_eq!(accepted.status, 201, "{}", accepted.text);
}

#[tokio::test]
async fn an_unknown_field_is_named() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let a = caller
        .post_disbursement(&key("disb"), &with("foo", json!("bar")))
        .await;
    assert_invalid_fields(&a, &["foo"]);
    assert_eq!(error_code_of(&a, "foo"), "unknown_field");
    let tenant = caller
        .post_disbursement(&key("disb"), &with("tenant_id", json!(uuid().to_string())))
        .await;
    assert_invalid_fields(&tenant, &["tenant_id"]);
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn every_failing_field_is_listed_at_once() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let body = json!({
        "loan_id": "nope",
        "amount_minor": "01",
        "currency": "usd",
        "effective_at": "2026-02-30",
        "method": "cheque",
        "destination_ref": "",
        "metadata": { "bad-key": 1 },
        "foo": 1
    });
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_invalid_fields(
        &a,
        &[
            "loan_id",
            "borrower_id",
            "amount_minor",
            "currency",
            "effective_at",
            "method",
            "destination_ref",
            "metadata.bad-key",
            "foo",
        ],
    );
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn a_body_that_is_not_json_is_malformed_json() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let valid = disbursement_body(uuid(), uuid(), "100").to_string();
    for bad in [
        "not json".to_owned(),
        String::new(),
        "{".to_owned(),
        format!("{valid} trailing"),
        "{'a':1}".to_owned(),
    ] {
        let a = post_raw_body(&caller, Some("application/json"), bad.clone()).await;
        assert_full_problem(&a, 400, "malformed_json");
    }
    let invalid_utf8 = post_raw_body(
        &caller,
        Some("application/json"),
        b"{\"loan_id\":\"\xff\"}".to_vec(),
    )
    .await;
    assert_full_problem(&invalid_utf8, 400, "malformed_json");
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn duplicate_json_keys_are_malformed_json() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, borrower) = (uuid(), uuid());
    let top = format!(
        r#"{{"loan_id":"{loan}","borrower_id":"{borrower}","amount_minor":"100","amount_minor":"900000","currency":"USD","effective_at":"2026-11-01","method":"ach"}}"#
    );
    let nested = format!(
        r#"{{"loan_id":"{loan}","borrower_id":"{borrower}","amount_minor":"100","currency":"USD","effective_at":"2026-11-01","method":"ach","metadata":{{"a":1,"a":2}}}}"#
    );
    for body in [top, nested] {
        let a = post_raw_body(&caller, Some("application/json"), body).await;
        assert_full_problem(&a, 400, "malformed_json");
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn a_body_that_is_not_an_object_is_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let object = disbursement_body(uuid(), uuid(), "100");
    for body in [json!([object]), json!("text"), json!(1), Value::Null] {
        let a = caller.post_disbursement(&key("disb"), &body).await;
        assert_eq!(a.status, 400, "{body}: {}", a.text);
        let code = a.code();
        assert!(
            code == "validation_failed" || code == "malformed_json",
            "{}",
            a.text
        );
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn a_body_that_is_not_declared_json_is_unsupported_media_type() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let body = disbursement_body(uuid(), uuid(), "100").to_string();
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("application/jsonx"),
        None,
    ] {
        let a = post_raw_body(&caller, content_type, body.clone()).await;
        assert_full_problem(&a, 415, "unsupported_media_type");
    }
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn json_with_a_charset_parameter_is_accepted() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let body = disbursement_body(uuid(), uuid(), "100").to_string();
    let a = post_raw_body(&caller, Some("application/json; charset=utf-8"), body).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn a_body_over_64_kib_is_payload_too_large() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let mut body = disbursement_body(uuid(), uuid(), "100");
    body["destination_ref"] = json!("x".repeat(64 * 1024));
    let a = caller.post_disbursement(&key("disb"), &body).await;
    assert_full_problem(&a, 413, "payload_too_large");
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn a_chunked_body_over_64_kib_is_payload_too_large() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let port = app.port;
    let token = caller.token.clone();
    let (status, text) = tokio::task::spawn_blocking(move || {
        let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).expect("timeout");
        let head = format!(
            "POST /v1/disbursements HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {token}\r\n\
             Idempotency-Key: chunked-body-1\r\nContent-Type: application/json\r\n\
             Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n"
        );
        stream.write_all(head.as_bytes()).expect("write head");
        let chunk = vec![b' '; 8 * 1024];
        // Up to 128 KiB of whitespace; the server may answer and close before reading it all.
        for _ in 0..16 {
            let framed = [format!("{:x}\r\n", chunk.len()).as_bytes(), &chunk, b"\r\n"].concat();
            if stream.write_all(&framed).is_err() {
                break;
            }
        }
        let _ = stream.write_all(b"0\r\n\r\n");
        let mut response = Vec::new();
        let _ = stream.read_to_end(&mut response);
        let response = String::from_utf8_lossy(&response).into_owned();
        let status = response.split(' ').nth(1).and_then(|s| s.parse::<u16>().ok()).unwrap_or(0);
        (status, response)
    })
    .await
    .expect("blocking task");
    assert_eq!(status, 413, "{text}");
    assert!(text.contains("payload_too_large"), "{text}");
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn a_body_just_under_the_limit_is_read() {
    let app = spawn_app().await;
    let caller = app.tenant();
    // Valid JSON padded with insignificant whitespace to just under 64 KiB.
    let compact = disbursement_body(uuid(), uuid(), "100").to_string();
    let padded = format!("{compact}{}", " ".repeat(64 * 1024 - compact.len()));
    assert_eq!(padded.len(), 64 * 1024);
    let a = post_raw_body(&caller, Some("application/json"), padded).await;
    assert_eq!(a.status, 201, "{}", a.text);
}
