//! Rules of the HTTP edge (SPEC §2, §3, §7, §9): repeated singleton headers, bounded metric
//! labels, opaque page tokens, stalled bodies, `HEAD`, the bearer scheme's case, JWS `crit`,
//! JWKS key use, active ISO 4217 currencies and `Content-Encoding`.

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hpts::auth::dev::{generate_signing_key, jwks_json};
use jsonwebtoken::{Algorithm, Header};
use reqwest::Method;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{
    ALL_SCOPES, Answer, KID, TestApp, claims, disbursement_body, key, spawn_app, spawn_app_with,
    uuid,
};

/// Rows in every table a write touches.
fn written(app: &TestApp) -> [i64; 4] {
    ["events", "journal_entries", "idempotency_keys", "loans"].map(|t| app.count(t))
}

/// A problem answer with `status` and `code`.
fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.code(), code, "{}", a.text);
    assert_eq!(a.json()["status"], json!(status), "{}", a.text);
}

async fn send(request: reqwest::RequestBuilder) -> Answer {
    Answer::from(request.send().await.expect("request sent")).await
}

/// A POST of a valid disbursement with the given headers (each added, so a name may repeat).
fn disbursement_with(app: &TestApp, headers: &[(&str, &str)]) -> reqwest::RequestBuilder {
    let body = serde_json::to_vec(&disbursement_body(uuid(), uuid(), "1000")).expect("json");
    let mut req = app
        .client
        .post(format!("{}/v1/disbursements", app.address))
        .body(body);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req
}

// ---------------------------------------------------------------------------------------------
// 1. Repeated singleton headers.

#[tokio::test]
async fn a_second_idempotency_key_header_is_refused_not_ignored() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let bearer = format!("Bearer {}", caller.token);
    for (first, second) in [
        (key("disbursement"), key("disbursement")),
        (key("disbursement"), String::new()),
    ] {
        let a = send(disbursement_with(
            &app,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", &first),
                ("Idempotency-Key", &second),
            ],
        ))
        .await;
        assert_problem(&a, 400, "duplicate_header");
        assert_eq!(a.error_fields(), ["Idempotency-Key"], "{}", a.text);
        assert_eq!(a.error_codes(), ["duplicate_header"], "{}", a.text);
    }
    assert_eq!(written(&app), [0; 4], "nothing was written");
}

#[tokio::test]
async fn a_second_authorization_header_is_refused_even_on_a_get_and_before_authentication() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let bearer = format!("Bearer {}", caller.token);
    let stranger = format!("Bearer {}", app.tenant().token);
    let loan = uuid();
    for (path, first, second) in [
        (format!("/v1/loans/{loan}/balance"), &bearer, &bearer),
        (format!("/v1/loans/{loan}/balance"), &bearer, &stranger),
        ("/v1/reconciliation/status".to_owned(), &bearer, &stranger),
        // Not even a token: refused as repeated, not as unauthenticated.
        (
            "/v1/reconciliation/status".to_owned(),
            &"Bearer x".to_owned(),
            &"Basic y".to_owned(),
        ),
        ("/v1/health/live".to_owned(), &bearer, &bearer),
        ("/metrics".to_owned(), &bearer, &bearer),
        ("/openapi.json".to_owned(), &bearer, &bearer),
    ] {
        let a = send(
            app.client
                .get(format!("{}{path}", app.address))
                .header("Authorization", first.as_str())
                .header("Authorization", second.as_str()),
        )
        .await;
        assert_problem(&a, 400, "duplicate_header");
        assert_eq!(a.error_fields(), ["Authorization"], "{path}: {}", a.text);
        assert!(a.header("traceparent").is_some(), "{path}: still traced");
    }
    let a = send(disbursement_with(
        &app,
        &[
            ("Authorization", &bearer),
            ("Authorization", &stranger),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", &key("disbursement")),
        ],
    ))
    .await;
    assert_problem(&a, 400, "duplicate_header");
    assert_eq!(a.error_fields(), ["Authorization"], "{}", a.text);
    assert_eq!(written(&app), [0; 4], "nothing was written");
}

#[tokio::test]
async fn a_second_content_type_header_is_refused_and_every_repeated_header_is_named() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let bearer = format!("Bearer {}", caller.token);
    let k = key("disbursement");
    let a = send(disbursement_with(
        &app,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", &k),
        ],
    ))
    .await;
    assert_problem(&a, 400, "duplicate_header");
    assert_eq!(a.error_fields(), ["Content-Type"], "{}", a.text);

    let all_three = send(disbursement_with(
        &app,
        &[
            ("Authorization", &bearer),
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Content-Type", "text/plain"),
            ("Idempotency-Key", &k),
            ("Idempotency-Key", &k),
        ],
    ))
    .await;
    assert_problem(&all_three, 400, "duplicate_header");
    assert_eq!(
        all_three.error_fields(),
        ["Authorization", "Idempotency-Key", "Content-Type"],
        "{}",
        all_three.text
    );
    assert_eq!(written(&app), [0; 4], "nothing was written");

    // The key was not consumed: the same request with each header once is created.
    let ok = send(disbursement_with(
        &app,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", &k),
        ],
    ))
    .await;
    assert_eq!(ok.status, 201, "{}", ok.text);
}

// ---------------------------------------------------------------------------------------------
// 2. Metric labels stay bounded.

/// The `hpts_http_requests_total` samples of a scrape, without the scrape's own series.
fn request_series(metrics: &str) -> BTreeSet<String> {
    metrics
        .lines()
        .filter(|l| l.starts_with("hpts_http_requests_total{"))
        .filter(|l| !l.contains("endpoint=\"/metrics\""))
        .map(|l| {
            l.rsplit_once(' ')
                .map_or(l, |(series, _)| series)
                .to_owned()
        })
        .collect()
}

/// The value of `label` in a series line.
fn label<'a>(series: &'a str, label: &str) -> &'a str {
    let start = series
        .find(&format!("{label}=\""))
        .unwrap_or_else(|| panic!("no {label} in {series}"))
        + label.len()
        + 2;
    let len = series[start..].find('"').expect("closing quote");
    &series[start..start + len]
}

async fn scrape(app: &TestApp) -> String {
    let r = app.get_raw("/metrics", None).await;
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.expect("body")
}

/// `n` requests with invented methods and paths: `Mxxxxxx /v1/health/live`, `GET /<random>`,
/// `Mxxxxxx /<random>`.
async fn invented_requests(app: &TestApp, n: usize) {
    for i in 0..n {
        let id = uuid().simple().to_string();
        let method = Method::from_bytes(format!("M{}", &id[24..]).as_bytes()).expect("method");
        let (method, path) = match i % 3 {
            0 => (method, "/v1/health/live".to_owned()),
            1 => (Method::GET, format!("/{id}/{i}")),
            _ => (method, format!("/v1/{id}")),
        };
        let r = app
            .client
            .request(method.clone(), format!("{}{path}", app.address))
            .send()
            .await
            .expect("request sent");
        assert!(
            [404, 405].contains(&r.status().as_u16()),
            "{method} {path}: {}",
            r.status()
        );
    }
}

#[tokio::test]
async fn random_methods_and_unknown_paths_do_not_create_new_metric_series() {
    let app = spawn_app().await;
    invented_requests(&app, 30).await;
    let before = request_series(&scrape(&app).await);
    invented_requests(&app, 300).await;
    let after = request_series(&scrape(&app).await);
    assert_eq!(
        before, after,
        "300 more invented methods and paths added series"
    );
    assert!(after.len() <= 4, "{after:#?}");
    let known = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "OTHER",
    ];
    for series in &after {
        assert!(known.contains(&label(series, "method")), "{series}");
        let endpoint = label(series, "endpoint");
        assert!(
            endpoint == "UNKNOWN" || endpoint.starts_with("/v1/"),
            "{series}"
        );
    }
    assert!(
        after
            .iter()
            .any(|s| label(s, "method") == "OTHER" && label(s, "endpoint") == "/v1/health/live"),
        "an invented method on a known path is counted once, as OTHER: {after:#?}"
    );
}

// ---------------------------------------------------------------------------------------------
// 3. Opaque page tokens.

fn fee(loan: Uuid) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "fee_type": "late",
        "amount_minor": "100",
        "currency": "USD",
        "effective_at": "2026-11-10",
    })
}

#[tokio::test]
async fn a_page_token_is_opaque_and_differs_each_time_it_is_issued() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, _) = c.open_loan("100000").await;
    for _ in 0..3 {
        let a = c.post_fee(&key("fee"), &fee(loan)).await;
        assert_eq!(a.status, 201, "{}", a.text);
    }
    let listing = format!("/v1/loans/{loan}/journal-entries?page_size=1");
    let token = |a: &Answer| {
        assert_eq!(a.status, 200, "{}", a.text);
        a.json()["next_page_token"]
            .as_str()
            .expect("a next page")
            .to_owned()
    };
    let first = token(&c.get(&listing).await);
    let again = token(&c.get(&listing).await);
    assert_ne!(first, again, "two tokens for one position differ");
    for t in [&first, &again] {
        for seq in 0i64..100 {
            assert!(
                !t.contains(&URL_SAFE_NO_PAD.encode(seq.to_be_bytes())),
                "{t} shows a posting sequence"
            );
        }
    }
    // Both lead to the same second page.
    let second = c.get(&format!("{listing}&page_token={first}")).await;
    let second_again = c.get(&format!("{listing}&page_token={again}")).await;
    assert_eq!(second.status, 200, "{}", second.text);
    assert_eq!(second.json()["items"], second_again.json()["items"]);
    // Any changed character is refused.
    for at in 0..first.len() {
        let mut chars: Vec<char> = first.chars().collect();
        chars[at] = match chars[at] {
            '.' => continue,
            'A' => 'B',
            _ => 'A',
        };
        let forged: String = chars.into_iter().collect();
        let a = c.get(&format!("{listing}&page_token={forged}")).await;
        assert_problem(&a, 400, "invalid_page_token");
    }
}

// ---------------------------------------------------------------------------------------------
// 4. A stalled body is cut off.

/// Reads from `stream` until the server closes it or `limit` passes; returns what arrived.
fn read_until_closed(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let started = Instant::now();
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = limit.saturating_sub(started.elapsed());
        if left.is_zero() {
            return (received, false);
        }
        stream.set_read_timeout(Some(left)).expect("timeout");
        match stream.read(&mut buf) {
            Ok(0) => return (received, true),
            Ok(n) => received.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => return (received, true),
            Err(_) => return (received, false),
        }
    }
}

/// Sends `head` and the first byte of a body, then stalls; returns how long the server took to
/// close the connection (if it did within 30 s) and what it answered.
async fn stall_after(app: &TestApp, head: String) -> (Duration, Vec<u8>, bool) {
    let port = app.port;
    tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream.write_all(head.as_bytes()).expect("write");
        let started = Instant::now();
        let (received, closed) = read_until_closed(&mut stream, Duration::from_secs(30));
        (started.elapsed(), received, closed)
    })
    .await
    .expect("client thread")
}

#[tokio::test]
async fn a_body_that_stalls_is_cut_off_with_408_within_the_read_timeout() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let head = |framing: &str, first_bytes: &str| {
        format!(
            "POST /v1/disbursements HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {}\r\n\
             Idempotency-Key: {}\r\nContent-Type: application/json\r\n{framing}\r\n\r\n\
             {first_bytes}",
            caller.token,
            key("stall")
        )
    };
    // One byte of a declared 1000-byte body; one chunk of a chunked body. Both then stall.
    let (sized, chunked) = tokio::join!(
        stall_after(&app, head("Content-Length: 1000", "{")),
        stall_after(&app, head("Transfer-Encoding: chunked", "1\r\n{\r\n")),
    );
    for (framing, (elapsed, received, closed)) in [("sized", sized), ("chunked", chunked)] {
        assert!(
            closed,
            "{framing}: the connection was not closed within 30 s"
        );
        assert!(elapsed < Duration::from_secs(30), "{framing}: {elapsed:?}");
        assert!(
            elapsed >= Duration::from_secs(5),
            "{framing}: cut off too early ({elapsed:?}); a slow client deserves the timeout"
        );
        let text = String::from_utf8_lossy(&received);
        if !received.is_empty() {
            assert!(text.starts_with("HTTP/1.1 408"), "{framing}: {text}");
            assert!(
                text.contains("\"code\":\"request_timeout\""),
                "{framing}: {text}"
            );
            assert!(
                text.contains("application/problem+json"),
                "{framing}: {text}"
            );
        }
    }
    assert_eq!(written(&app), [0; 4], "nothing was written");
}

// ---------------------------------------------------------------------------------------------
// 5. HEAD.

#[tokio::test]
async fn head_is_answered_on_every_get_route_like_get_without_a_body() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, _, created) = c.open_loan("5000").await;
    let entry = created["journal_entry_id"].as_str().expect("entry");
    let routes = [
        "/v1/health/live".to_owned(),
        "/v1/health/ready".to_owned(),
        format!("/v1/loans/{loan}/balance"),
        format!("/v1/loans/{loan}/journal-entries"),
        "/v1/accounts/1100/balance?currency=USD".to_owned(),
        format!("/v1/journal-entries/{entry}"),
        "/v1/reconciliation/status".to_owned(),
        format!("/v1/loans/{}/balance", uuid()),
        "/v1/loans/not-a-uuid/balance".to_owned(),
        "/metrics".to_owned(),
        "/openapi.json".to_owned(),
        "/docs/".to_owned(),
    ];
    for path in &routes {
        let url = format!("{}{path}", app.address);
        let get = app
            .client
            .get(&url)
            .bearer_auth(&c.token)
            .send()
            .await
            .expect("GET");
        let head = app
            .client
            .head(&url)
            .bearer_auth(&c.token)
            .send()
            .await
            .expect("HEAD");
        assert_eq!(head.status(), get.status(), "HEAD {path}");
        assert_ne!(head.status().as_u16(), 405, "HEAD {path}");
        let content_type = |r: &reqwest::Response| r.headers().get("content-type").cloned();
        assert_eq!(content_type(&head), content_type(&get), "HEAD {path}");
        assert!(head.headers().get("traceparent").is_some(), "HEAD {path}");
        let length = |r: &reqwest::Response| {
            r.headers()
                .get("content-length")
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<usize>().ok())
        };
        let (head_length, get_length) = (length(&head), length(&get));
        assert!(
            head_length.is_some_and(|n| n > 0),
            "HEAD {path}: {head_length:?}"
        );
        if !["/metrics", "/v1/reconciliation/status"].contains(&path.as_str()) {
            // (Those two change between calls: counters, the check time.)
            assert_eq!(head_length, get_length, "HEAD {path}");
        }
        assert!(head.bytes().await.expect("body").is_empty(), "HEAD {path}");
    }
    // On the wire: the head of the answer and nothing after it.
    let port = app.port;
    let raw = tokio::task::spawn_blocking(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).expect("connect");
        stream
            .write_all(b"HEAD /v1/health/live HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .expect("write");
        read_until_closed(&mut stream, Duration::from_secs(10))
    })
    .await
    .expect("client thread");
    let text = String::from_utf8_lossy(&raw.0);
    assert!(raw.1, "closed");
    assert!(text.starts_with("HTTP/1.1 200"), "{text}");
    assert!(
        text.ends_with("\r\n\r\n"),
        "no body after the head: {text:?}"
    );
}

#[tokio::test]
async fn a_405_on_a_get_route_lists_head_and_head_on_a_write_route_is_405() {
    let app = spawn_app().await;
    let c = app.tenant();
    for path in [
        format!("/v1/loans/{}/balance", uuid()),
        "/v1/health/live".to_owned(),
        "/openapi.json".to_owned(),
    ] {
        let a = send(
            app.client
                .delete(format!("{}{path}", app.address))
                .bearer_auth(&c.token),
        )
        .await;
        assert_problem(&a, 405, "method_not_allowed");
        assert_eq!(a.header("allow"), Some("GET, HEAD"), "{path}");
    }
    let head = app
        .client
        .head(format!("{}/v1/disbursements", app.address))
        .bearer_auth(&c.token)
        .send()
        .await
        .expect("HEAD");
    assert_eq!(head.status().as_u16(), 405);
    assert_eq!(
        head.headers().get("allow").and_then(|v| v.to_str().ok()),
        Some("POST")
    );
}

// ---------------------------------------------------------------------------------------------
// 6. The bearer scheme's case.

#[tokio::test]
async fn the_bearer_scheme_is_accepted_in_any_letter_case() {
    let app = spawn_app().await;
    let c = app.tenant();
    for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
        let a = send(disbursement_with(
            &app,
            &[
                ("Authorization", &format!("{scheme} {}", c.token)),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", &key("disbursement")),
            ],
        ))
        .await;
        assert_eq!(a.status, 201, "{scheme}: {}", a.text);
        let read = send(
            app.client
                .get(format!("{}/v1/reconciliation/status", app.address))
                .header("Authorization", format!("{scheme} {}", c.token)),
        )
        .await;
        assert_eq!(read.status, 200, "{scheme}: {}", read.text);
    }
    for not_bearer in [format!("Bearers {}", c.token), format!("Bear {}", c.token)] {
        let a = send(
            app.client
                .get(format!("{}/v1/reconciliation/status", app.address))
                .header("Authorization", not_bearer.as_str()),
        )
        .await;
        assert_problem(&a, 401, "unauthenticated");
    }
}

// ---------------------------------------------------------------------------------------------
// 7. JWS `crit`.

/// Signs `claims` with the app's key under a protected header `header_json` (JSON text, so
/// members a JWT library would drop can be set).
fn sign_with_header(app: &TestApp, header_json: &Value, claims: &Value) -> String {
    let encoding = hpts::auth::dev::encoding_key(&app.signing).expect("key");
    let signing_input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(header_json).expect("json")),
        URL_SAFE_NO_PAD.encode(serde_json::to_vec(claims).expect("json"))
    );
    let signature =
        jsonwebtoken::crypto::sign(signing_input.as_bytes(), &encoding, Algorithm::EdDSA)
            .expect("sign");
    format!("{signing_input}.{signature}")
}

#[tokio::test]
async fn a_token_whose_header_has_crit_is_unauthenticated() {
    let app = spawn_app().await;
    let tenant = uuid();
    let c = claims(tenant, ALL_SCOPES);
    let plain = sign_with_header(
        &app,
        &json!({ "alg": "EdDSA", "typ": "JWT", "kid": KID }),
        &c,
    );
    let ok = send(
        app.client
            .get(format!("{}/v1/reconciliation/status", app.address))
            .bearer_auth(&plain),
    )
    .await;
    assert_eq!(
        ok.status, 200,
        "the same signing without crit works: {}",
        ok.text
    );
    for crit in [json!(["exp"]), json!(["b64"]), json!([]), json!(null)] {
        let token = sign_with_header(
            &app,
            &json!({ "alg": "EdDSA", "typ": "JWT", "kid": KID, "crit": crit }),
            &claims(uuid(), ALL_SCOPES),
        );
        let read = send(
            app.client
                .get(format!("{}/v1/reconciliation/status", app.address))
                .bearer_auth(&token),
        )
        .await;
        assert_problem(&read, 401, "unauthenticated");
        assert!(
            read.header("www-authenticate")
                .is_some_and(|v| v.starts_with("Bearer")),
            "{crit}"
        );
        let write = send(disbursement_with(
            &app,
            &[
                ("Authorization", &format!("Bearer {token}")),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", &key("disbursement")),
            ],
        ))
        .await;
        assert_problem(&write, 401, "unauthenticated");
    }
    assert_eq!(written(&app), [0; 4], "nothing was written");
}

// ---------------------------------------------------------------------------------------------
// 8. JWKS key use.

#[tokio::test]
async fn a_jwks_key_not_meant_for_signatures_never_verifies_a_token() {
    // Every unknown kid may reload the key set at once, so the rewritten file is read.
    let app = spawn_app_with(&["--auth-jwks-refresh-seconds", "0"]).await;
    let trusted = app.tenant();
    let mut keys = vec![jwks_json(&app.signing, KID)["keys"][0].clone()];
    let mut signers = Vec::new();
    for (kid, use_and_ops) in [
        ("enc-key", json!({ "use": "enc" })),
        ("other-use", json!({ "use": "wrap" })),
        ("sign-only", json!({ "key_ops": ["sign"] })),
        ("no-ops", json!({ "key_ops": [] })),
        (
            "sig-but-sign-only",
            json!({ "use": "sig", "key_ops": ["sign"] }),
        ),
    ] {
        let signer = generate_signing_key().expect("key");
        let mut jwk = jwks_json(&signer, kid)["keys"][0].clone();
        jwk.as_object_mut().expect("object").remove("use");
        for (name, value) in use_and_ops.as_object().expect("object") {
            jwk[name] = value.clone();
        }
        keys.push(jwk);
        signers.push((kid, signer));
    }
    let verify_ok = generate_signing_key().expect("key");
    let mut jwk = jwks_json(&verify_ok, "verify-ok")["keys"][0].clone();
    jwk["key_ops"] = json!(["verify"]);
    keys.push(jwk);
    std::fs::write(
        &app.jwks_path,
        serde_json::to_vec(&json!({ "keys": keys })).expect("json"),
    )
    .expect("write jwks");

    let read = |token: String| {
        let app = &app;
        async move {
            send(
                app.client
                    .get(format!("{}/v1/reconciliation/status", app.address))
                    .bearer_auth(token),
            )
            .await
        }
    };
    // A key with `key_ops: ["verify"]` (loaded by the refresh an unknown kid triggers) works.
    let good =
        hpts::auth::dev::sign(&verify_ok, "verify-ok", &claims(uuid(), ALL_SCOPES)).expect("sign");
    assert_eq!(read(good).await.status, 200, "a verify key verifies");
    for (kid, signer) in &signers {
        let token = hpts::auth::dev::sign(signer, kid, &claims(uuid(), ALL_SCOPES)).expect("sign");
        assert_problem(&read(token).await, 401, "unauthenticated");
    }
    // The key without `use`/`key_ops` constraints still verifies.
    assert_eq!(read(trusted.token.clone()).await.status, 200);
    // Under a plain header too (a JWT library header with kid only).
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some("enc-key".into());
    let enc_signer = &signers[0].1;
    let token = jsonwebtoken::encode(
        &header,
        &claims(uuid(), ALL_SCOPES),
        &hpts::auth::dev::encoding_key(enc_signer).expect("key"),
    )
    .expect("sign");
    assert_problem(&read(token).await, 401, "unauthenticated");
}

// ---------------------------------------------------------------------------------------------
// 9. Active ISO 4217 currencies.

#[tokio::test]
async fn a_well_formed_but_unknown_currency_is_refused_on_every_write_and_read() {
    let app = spawn_app().await;
    let c = app.tenant();
    let (loan, borrower, _) = c.open_loan("100000").await;
    let before = written(&app);
    for code in ["ZZZ", "ABC", "XAU", "XTS", "XXX"] {
        let mut disbursement = disbursement_body(uuid(), uuid(), "1000");
        disbursement["currency"] = json!(code);
        let payment = json!({
            "loan_id": loan.to_string(),
            "borrower_id": borrower.to_string(),
            "amount_minor": "100",
            "currency": code,
            "effective_at": "2026-11-10",
            "source_method": "ach",
        });
        let mut fee_body = fee(loan);
        fee_body["currency"] = json!(code);
        for (path, body) in [
            ("/v1/disbursements", disbursement),
            ("/v1/payments", payment),
            ("/v1/fees", fee_body),
        ] {
            let a = c.post(path, &key("currency"), &body).await;
            assert_problem(&a, 400, "validation_failed");
            assert_eq!(a.error_fields(), ["currency"], "{path} {code}: {}", a.text);
            assert_eq!(a.error_codes(), ["unknown_currency"], "{path} {code}");
        }
        let read = c
            .get(&format!("/v1/accounts/1100/balance?currency={code}"))
            .await;
        assert_problem(&read, 400, "validation_failed");
        assert_eq!(read.error_fields(), ["currency"], "{}", read.text);
        assert_eq!(read.error_codes(), ["unknown_currency"], "{}", read.text);
    }
    assert_eq!(written(&app), before, "nothing was written");

    // A malformed code is still a format error, distinguishable from an unknown one.
    let mut malformed = disbursement_body(uuid(), uuid(), "1000");
    malformed["currency"] = json!("usd");
    let a = c.post_disbursement(&key("currency"), &malformed).await;
    assert_problem(&a, 400, "validation_failed");
    assert_eq!(a.error_codes(), ["invalid_format"], "{}", a.text);
    let read = c.get("/v1/accounts/1100/balance?currency=usd").await;
    assert_eq!(read.error_codes(), ["invalid_format"], "{}", read.text);

    // Active codes of every exponent are accepted.
    for code in ["JPY", "BHD", "CLF", "EUR", "XOF"] {
        let mut body = disbursement_body(uuid(), uuid(), "1000");
        body["currency"] = json!(code);
        let a = c.post_disbursement(&key("currency"), &body).await;
        assert_eq!(a.status, 201, "{code}: {}", a.text);
        let read = c
            .get(&format!("/v1/accounts/1100/balance?currency={code}"))
            .await;
        assert_eq!(read.status, 200, "{code}: {}", read.text);
    }
}

// ---------------------------------------------------------------------------------------------
// 10. Content-Encoding.

#[tokio::test]
async fn a_compressed_request_body_is_415_whatever_the_coding() {
    let app = spawn_app().await;
    let c = app.tenant();
    let bearer = format!("Bearer {}", c.token);
    for coding in [
        "gzip",
        "br",
        "deflate",
        "zstd",
        "x-gzip",
        "compress",
        "identity, gzip",
    ] {
        let a = send(disbursement_with(
            &app,
            &[
                ("Authorization", &bearer),
                ("Content-Type", "application/json"),
                ("Idempotency-Key", &key("disbursement")),
                ("Content-Encoding", coding),
            ],
        ))
        .await;
        assert_problem(&a, 415, "unsupported_media_type");
    }
    // Real gzip bytes are refused too, not decompressed.
    let gzip_of_json: &[u8] = &[
        0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03, 0xab, 0xae, 0x05, 0x00, 0x43,
        0xbf, 0xa6, 0xa3, 0x02, 0x00, 0x00, 0x00,
    ];
    let a = send(
        app.client
            .post(format!("{}/v1/disbursements", app.address))
            .header("Authorization", bearer.as_str())
            .header("Content-Type", "application/json")
            .header("Idempotency-Key", key("disbursement"))
            .header("Content-Encoding", "gzip")
            .body(gzip_of_json.to_vec()),
    )
    .await;
    assert_problem(&a, 415, "unsupported_media_type");
    assert_eq!(written(&app), [0; 4], "nothing was written");
    // `identity` is no coding at all.
    let a = send(disbursement_with(
        &app,
        &[
            ("Authorization", &bearer),
            ("Content-Type", "application/json"),
            ("Idempotency-Key", &key("disbursement")),
            ("Content-Encoding", "identity"),
        ],
    ))
    .await;
    assert_eq!(a.status, 201, "{}", a.text);
}
