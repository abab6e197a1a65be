//! The HTTP edge: W3C trace context (SPEC §5), problem+json for unknown routes and wrong
//! methods, and the unauthenticated health endpoints (SPEC §9).

use serde_json::json;

use crate::helpers::{
    Answer, TestApp, assert_full_problem, disbursement_body, key, spawn_app, uuid,
};

const INCOMING: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Splits a `traceparent` matching `^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$` into
/// (trace id, span id, flags), panicking otherwise.
fn parse_traceparent(value: &str) -> (String, String, String) {
    let parts: Vec<&str> = value.split('-').collect();
    let lower_hex = |s: &str, len: usize| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert!(
        parts.len() == 4
            && parts[0] == "00"
            && lower_hex(parts[1], 32)
            && lower_hex(parts[2], 16)
            && lower_hex(parts[3], 2),
        "not a valid traceparent: {value:?}"
    );
    assert_ne!(parts[1], "0".repeat(32), "all-zero trace id");
    assert_ne!(parts[2], "0".repeat(16), "all-zero span id");
    (
        parts[1].to_owned(),
        parts[2].to_owned(),
        parts[3].to_owned(),
    )
}

fn traceparent_of(a: &Answer) -> (String, String, String) {
    let value = a
        .header("traceparent")
        .unwrap_or_else(|| panic!("no traceparent on a {} response", a.status));
    parse_traceparent(value)
}

/// GET with extra headers (no token).
async fn get_with(app: &TestApp, path: &str, headers: &[(&str, &str)]) -> Answer {
    let mut req = app.client.get(format!("{}{path}", app.address));
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    Answer::from(req.send().await.expect("request sent")).await
}

#[tokio::test]
async fn an_incoming_traceparent_makes_the_server_span_its_child() {
    let app = spawn_app().await;
    let a = get_with(&app, "/v1/health/live", &[("traceparent", INCOMING)]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    let (trace, span, flags) = traceparent_of(&a);
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736", "same trace id");
    assert_ne!(span, "00f067aa0ba902b7", "a new span id");
    assert_eq!(flags, "01");
}

#[tokio::test]
async fn a_write_continues_the_callers_trace() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let r = app
        .client
        .post(format!("{}/v1/disbursements", app.address))
        .bearer_auth(&caller.token)
        .header("Idempotency-Key", key("disbursement"))
        .header("traceparent", INCOMING)
        .json(&disbursement_body(uuid(), uuid(), "100"))
        .send()
        .await
        .expect("request sent");
    let a = Answer::from(r).await;
    assert_eq!(a.status, 201, "{}", a.text);
    let (trace, span, _) = traceparent_of(&a);
    assert_eq!(trace, "4bf92f3577b34da6a3ce929d0e0e4736");
    assert_ne!(span, "00f067aa0ba902b7");
}

#[tokio::test]
async fn a_malformed_traceparent_starts_a_new_trace_and_never_fails_the_request() {
    let app = spawn_app().await;
    let malformed = [
        "garbage",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01",
        "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
        "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        "",
    ];
    for bad in malformed {
        let a = get_with(&app, "/v1/health/live", &[("traceparent", bad)]).await;
        assert_eq!(a.status, 200, "{bad:?}: {}", a.text);
        let (trace, span, _) = traceparent_of(&a);
        assert_ne!(
            trace, "4bf92f3577b34da6a3ce929d0e0e4736",
            "{bad:?} must not be continued"
        );
        assert_ne!(span, "00f067aa0ba902b7");
    }
    let caller = app.tenant();
    let r = app
        .client
        .post(format!("{}/v1/disbursements", app.address))
        .bearer_auth(&caller.token)
        .header("Idempotency-Key", key("disbursement"))
        .header("traceparent", "not-a-traceparent")
        .json(&disbursement_body(uuid(), uuid(), "100"))
        .send()
        .await
        .expect("request sent");
    let write = Answer::from(r).await;
    assert_eq!(write.status, 201, "{}", write.text);
    traceparent_of(&write);
}

#[tokio::test]
async fn requests_without_a_traceparent_get_distinct_new_traces() {
    let app = spawn_app().await;
    let first = traceparent_of(&get_with(&app, "/v1/health/live", &[]).await);
    let second = traceparent_of(&get_with(&app, "/v1/health/live", &[]).await);
    assert_ne!(first.0, second.0, "each request starts its own trace");
    assert_ne!(first.1, second.1);
}

#[tokio::test]
async fn tracestate_is_passed_through_unchanged() {
    let app = spawn_app().await;
    let state = "congo=t61rcWkgMzE,rojo=00f067aa0ba902b7";
    let a = get_with(
        &app,
        "/v1/health/live",
        &[("traceparent", INCOMING), ("tracestate", state)],
    )
    .await;
    assert_eq!(a.header("tracestate"), Some(state));
    let unknown_route = get_with(&app, "/nowhere", &[("tracestate", state)]).await;
    assert_eq!(
        unknown_route.header("tracestate"),
        Some(state),
        "errors pass it through too"
    );
    let without = get_with(&app, "/v1/health/live", &[]).await;
    assert_eq!(without.header("tracestate"), None, "nothing is invented");
}

#[tokio::test]
async fn every_response_carries_a_traceparent() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let mut answers: Vec<(&str, Answer)> = Vec::new();
    answers.push(("200 live", get_with(&app, "/v1/health/live", &[]).await));
    answers.push(("200 ready", get_with(&app, "/v1/health/ready", &[]).await));
    let (loan, borrower, _) = caller.open_loan("100").await;
    let body = disbursement_body(loan, borrower, "100");
    answers.push(("201", caller.post_disbursement(&key("disb"), &body).await));
    let mut bad = body.clone();
    bad["currency"] = json!("usd");
    answers.push(("400", caller.post_disbursement(&key("disb"), &bad).await));
    answers.push((
        "401",
        Answer::from(
            app.post_raw("/v1/disbursements", None, Some("abcdefgh"), &body)
                .await,
        )
        .await,
    ));
    answers.push((
        "403",
        app.caller(uuid(), &[])
            .post_disbursement(&key("disb"), &body)
            .await,
    ));
    answers.push(("404 route", get_with(&app, "/v1/nothing-here", &[]).await));
    answers.push(("404 loan", caller.get_loan_balance(uuid()).await));
    answers.push(("405", get_with(&app, "/v1/disbursements", &[]).await));
    answers.push((
        "422",
        caller
            .post_disbursement(&key("disb"), &disbursement_body(loan, uuid(), "1"))
            .await,
    ));
    for (what, a) in &answers {
        assert_eq!(
            what[..3].parse::<u16>().expect("status"),
            a.status,
            "{what}: {}",
            a.text
        );
        traceparent_of(a);
    }
}

#[tokio::test]
async fn an_unknown_route_is_a_404_problem() {
    let app = spawn_app().await;
    let caller = app.tenant();
    for path in [
        "/",
        "/v1",
        "/v2/disbursements",
        "/v1/disbursement",
        "/v1/disbursements/extra",
        "/v1/loans",
    ] {
        let a = caller.get(path).await;
        assert_full_problem(&a, 404, "not_found");
    }
    let post = caller.post("/v1/nothing", &key("disb"), &json!({})).await;
    assert_full_problem(&post, 404, "not_found");
}

#[tokio::test]
async fn a_wrong_method_is_a_405_problem() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let a = caller.get("/v1/disbursements").await;
    assert_full_problem(&a, 405, "method_not_allowed");
    let delete = app
        .client
        .delete(format!("{}/v1/loans/{}/balance", app.address, uuid()))
        .bearer_auth(&caller.token)
        .send()
        .await
        .expect("request sent");
    assert_full_problem(&Answer::from(delete).await, 405, "method_not_allowed");
    let put = app
        .client
        .put(format!("{}/v1/disbursements", app.address))
        .bearer_auth(&caller.token)
        .json(&json!({}))
        .send()
        .await
        .expect("request sent");
    assert_full_problem(&Answer::from(put).await, 405, "method_not_allowed");
    assert_eq!(app.count("journal_entries"), 0);
}

#[tokio::test]
async fn liveness_answers_without_authentication() {
    let app = spawn_app().await;
    let a = get_with(&app, "/v1/health/live", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
    assert!(
        a.header("content-type")
            .is_some_and(|c| c.starts_with("application/json")),
        "{:?}",
        a.headers
    );
    let body = a.json();
    assert_eq!(body["status"], "ok");
    assert_eq!(body["version"], env!("CARGO_PKG_VERSION"));
    assert!(
        body["git_sha"].as_str().is_some_and(|s| !s.is_empty()),
        "{body}"
    );
}

#[tokio::test]
async fn readiness_answers_200_without_authentication() {
    let app = spawn_app().await;
    let a = get_with(&app, "/v1/health/ready", &[]).await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn a_malformed_id_in_the_path_is_a_400_naming_the_parameter() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let balance = caller.get("/v1/loans/not-a-uuid/balance").await;
    assert_full_problem(&balance, 400, "validation_failed");
    assert_eq!(balance.error_fields(), ["loan_id"]);
    let entry = caller.get_entry("not-a-uuid").await;
    assert_full_problem(&entry, 400, "validation_failed");
    assert_eq!(entry.error_fields(), ["journal_entry_id"]);
}

#[tokio::test]
async fn an_unknown_query_parameter_on_a_read_is_refused() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, _, _) = caller.open_loan("100").await;
    let a = caller.get(&format!("/v1/loans/{loan}/balance?foo=1")).await;
    assert_full_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_fields(), ["foo"]);
}
