//! Security: bearer-token hardening (every kind of bad token is a 401 with a `Bearer`
//! challenge; keys rotate without a restart, from a file or over HTTP; the issuer going down
//! keeps cached keys working; clock-skew leeway is exactly as configured), tenant isolation
//! across every route, and per-tenant rate limiting. (The dependency policy, `deny.toml`, is
//! checked by `cargo deny` in scripts/test.sh.)

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hpts::auth::dev::{generate_signing_key, sign};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};
use uuid::Uuid;

use common::inprocess::{TestApp, assert_unauthenticated, spawn_app_trusting};
use common::tokens::{ALL_SCOPES, KID, claims, jwks_document, key, now, uuid};

const ACCOUNTS: [&str; 8] = [
    "1000", "1100", "1200", "1300", "2000", "2100", "4000", "4100",
];

// ---------------------------------------------------------------------------------------------
// Harness: the shared in-process app (`tests/common`).

fn disbursement(loan: Uuid, borrower: Uuid, amount: &str) -> Value {
    json!({
        "loan_id": loan, "borrower_id": borrower, "amount_minor": amount,
        "currency": "USD", "effective_at": "2026-11-01", "method": "ach",
    })
}

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

// ---------------------------------------------------------------------------------------------
// A tiny JWKS issuer over HTTP (std only): answers every GET with the current document and
// closes the connection; counts the fetches; stops listening on `stop()`.

struct JwksServer {
    port: u16,
    document: Arc<Mutex<String>>,
    fetches: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl JwksServer {
    fn start(document: String) -> JwksServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let port = listener.local_addr().expect("addr").port();
        let document = Arc::new(Mutex::new(document));
        let fetches = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (document, fetches, stop) = (
                Arc::clone(&document),
                Arc::clone(&fetches),
                Arc::clone(&stop),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::SeqCst) {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let body = document.lock().expect("document").clone();
                            fetches.fetch_add(1, Ordering::SeqCst);
                            answer(&stream, &body);
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                // Dropping the listener here: later connections are refused.
            })
        };
        JwksServer {
            port,
            document,
            fetches,
            stop,
            thread: Some(thread),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/jwks.json", self.port)
    }

    fn fetches(&self) -> usize {
        self.fetches.load(Ordering::SeqCst)
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            t.join().expect("jwks server thread");
        }
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn answer(stream: &std::net::TcpStream, body: &str) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    // Read the request head (up to the blank line); the body of a GET is empty.
    while reader.read_line(&mut line).is_ok_and(|n| n > 0) {
        if line == "\r\n" || line == "\n" {
            break;
        }
        line.clear();
    }
    let mut out = stream;
    let _ = write!(
        out,
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = out.flush();
}

// ---------------------------------------------------------------------------------------------
// Auth hardening.

/// Tokens that are not well-formed signed JWTs, or that are signed the wrong way (alg none,
/// HS256 keyed with the public key).
fn malformed_and_wrongly_signed_tokens(
    app: &TestApp,
    good: &Value,
) -> Vec<(&'static str, Option<String>)> {
    let verifying = app.signing.verifying_key();
    let hs256_with_public_key = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        jsonwebtoken::encode(
            &header,
            good,
            &EncodingKey::from_secret(verifying.as_bytes()),
        )
        .expect("hs256")
    };
    let hs256_with_jwk_x = {
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(KID.to_owned());
        let x = URL_SAFE_NO_PAD.encode(verifying.as_bytes());
        jsonwebtoken::encode(&header, good, &EncodingKey::from_secret(x.as_bytes())).expect("hs256")
    };
    let genuine = app.sign(good);
    let parts: Vec<&str> = genuine.split('.').collect();
    let alg_none = format!(
        "{}.{}.",
        b64_json(&json!({ "alg": "none", "typ": "JWT", "kid": KID })),
        b64_json(good)
    );
    let alg_none_borrowed_signature = format!(
        "{}.{}.{}",
        b64_json(&json!({ "alg": "none", "typ": "JWT", "kid": KID })),
        b64_json(good),
        parts[2]
    );
    vec![
        ("no token", None),
        ("garbage", Some("garbage".into())),
        ("three garbage segments", Some("a.b.c".into())),
        ("alg none", Some(alg_none)),
        (
            "alg none with a real signature",
            Some(alg_none_borrowed_signature),
        ),
        (
            "HS256 keyed with the public key",
            Some(hs256_with_public_key),
        ),
        ("HS256 keyed with the JWK x", Some(hs256_with_jwk_x)),
    ]
}

/// Properly signed tokens whose claims are wrong: issuer, audience, lifetime, tenant.
fn tokens_with_bad_claims(app: &TestApp, good: &Value) -> Vec<(&'static str, Option<String>)> {
    let edited = |edit: &dyn Fn(&mut Value)| {
        let mut c = good.clone();
        edit(&mut c);
        app.sign(&c)
    };
    let now = now();
    vec![
        (
            "wrong iss",
            Some(edited(&|c| c["iss"] = json!("https://evil.test"))),
        ),
        (
            "wrong aud",
            Some(edited(&|c| c["aud"] = json!("someone-else"))),
        ),
        (
            "expired an hour ago",
            Some(edited(&|c| c["exp"] = json!(now - 3600))),
        ),
        (
            "without exp",
            Some(edited(&|c| {
                if let Some(o) = c.as_object_mut() {
                    o.remove("exp");
                }
            })),
        ),
        (
            "nbf an hour ahead",
            Some(edited(&|c| c["nbf"] = json!(now + 3600))),
        ),
        (
            "without tenant_id",
            Some(edited(&|c| {
                if let Some(o) = c.as_object_mut() {
                    o.remove("tenant_id");
                }
            })),
        ),
        (
            "tenant_id not a UUID",
            Some(edited(&|c| c["tenant_id"] = json!("acme-bank"))),
        ),
        (
            "tenant_id a number",
            Some(edited(&|c| c["tenant_id"] = json!(42))),
        ),
        (
            "tenant_id null",
            Some(edited(&|c| c["tenant_id"] = Value::Null)),
        ),
    ]
}

/// Tokens with good claims but an untrusted key, a tampered payload or no signature.
fn tokens_with_untrusted_keys_or_tampering(
    app: &TestApp,
    good: &Value,
) -> Vec<(&'static str, Option<String>)> {
    let untrusted = generate_signing_key().expect("key");
    let genuine = app.sign(good);
    let parts: Vec<&str> = genuine.split('.').collect();
    let mut other_tenant = good.clone();
    other_tenant["tenant_id"] = json!(uuid().to_string());
    let tampered = format!("{}.{}.{}", parts[0], b64_json(&other_tenant), parts[2]);
    vec![
        (
            "unknown kid",
            Some(sign(&untrusted, "never-published", good).expect("sign")),
        ),
        (
            "trusted kid, untrusted key",
            Some(sign(&untrusted, KID, good).expect("sign")),
        ),
        ("tampered payload", Some(tampered)),
        (
            "signature stripped",
            Some(format!("{}.{}.", parts[0], parts[1])),
        ),
    ]
}

/// Each token is refused with a 401 and a bearer challenge, on a write and on a read.
async fn assert_each_token_is_unauthenticated(app: &TestApp, cases: &[(&str, Option<String>)]) {
    for (what, token) in cases {
        let write = app
            .post_as(
                token.as_deref(),
                "/v1/disbursements",
                &key("disb"),
                &disbursement(uuid(), uuid(), "1000"),
            )
            .await;
        assert_unauthenticated(&write, &format!("{what} (write)"));
        let read = app
            .get_as(token.as_deref(), "/v1/reconciliation/status")
            .await;
        assert_unauthenticated(&read, &format!("{what} (read)"));
    }
}

#[tokio::test]
async fn every_kind_of_bad_token_is_a_401_with_a_bearer_challenge_and_writes_nothing() {
    let app = spawn_app_trusting(None, &[]).await;
    let tenant = uuid();
    let good = claims(tenant, ALL_SCOPES);
    let genuine = app.sign(&good);
    let mut cases = malformed_and_wrongly_signed_tokens(&app, &good);
    cases.extend(tokens_with_bad_claims(&app, &good));
    cases.extend(tokens_with_untrusted_keys_or_tampering(&app, &good));
    assert_each_token_is_unauthenticated(&app, &cases).await;
    assert_eq!(app.written(), [0; 5], "refused requests write nothing");
    let ok = app
        .post_as(
            Some(&genuine),
            "/v1/disbursements",
            &key("disb"),
            &disbursement(uuid(), uuid(), "1000"),
        )
        .await;
    assert_eq!(ok.status, 201, "the untampered token works: {}", ok.text);
}

#[tokio::test]
async fn a_key_added_to_the_jwks_file_is_trusted_without_a_restart() {
    let app = spawn_app_trusting(None, &[]).await;
    let tenant = uuid();
    let rotated = generate_signing_key().expect("key");
    let new_token = sign(&rotated, "test-key-2", &claims(tenant, ALL_SCOPES)).expect("sign");
    let before = app
        .get_as(Some(&new_token), "/v1/reconciliation/status")
        .await;
    assert_unauthenticated(&before, "a key not yet published");

    std::fs::write(
        &app.jwks_path,
        jwks_document(&[(KID, &app.signing), ("test-key-2", &rotated)]),
    )
    .expect("rotate jwks");
    // Unknown kids refresh the key set at most once per HPTS_AUTH_JWKS_REFRESH_SECONDS (1 s).
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let fresh_token = sign(&rotated, "test-key-2", &claims(tenant, ALL_SCOPES)).expect("sign");
    let after = app
        .get_as(Some(&fresh_token), "/v1/reconciliation/status")
        .await;
    assert_eq!(after.status, 200, "the new kid works: {}", after.text);
    let old = app
        .get_as(
            Some(&app.token(tenant, ALL_SCOPES)),
            "/v1/reconciliation/status",
        )
        .await;
    assert_eq!(old.status, 200, "the old kid still works: {}", old.text);
}

#[tokio::test]
async fn jwks_over_http_keeps_cached_keys_when_the_issuer_goes_down() {
    let signing = generate_signing_key().expect("key");
    let mut issuer = JwksServer::start(jwks_document(&[(KID, &signing)]));
    let app = spawn_app_trusting(Some(&issuer.url()), &[]).await;
    assert!(issuer.fetches() >= 1, "the key set was fetched at start");
    let tenant = uuid();
    let first = sign(&signing, KID, &claims(tenant, ALL_SCOPES)).expect("sign");
    let a = app.get_as(Some(&first), "/v1/reconciliation/status").await;
    assert_eq!(
        a.status, 200,
        "a token signed with the served key: {}",
        a.text
    );

    issuer.stop();
    let mut later = claims(tenant, ALL_SCOPES);
    later["sub"] = json!("another-subject");
    let second = sign(&signing, KID, &later).expect("sign");
    let b = app.get_as(Some(&second), "/v1/reconciliation/status").await;
    assert_eq!(
        b.status, 200,
        "a new token with a cached kid works while the issuer is down: {}",
        b.text
    );
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let stranger = generate_signing_key().expect("key");
    let unknown = sign(&stranger, "test-key-9", &claims(tenant, ALL_SCOPES)).expect("sign");
    let started = Instant::now();
    let c = app
        .get_as(Some(&unknown), "/v1/reconciliation/status")
        .await;
    assert_unauthenticated(
        &c,
        "an unknown kid while the issuer is down (refresh fails)",
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "a failed refresh answers promptly"
    );
    let d = app.get_as(Some(&second), "/v1/reconciliation/status").await;
    assert_eq!(
        d.status, 200,
        "cached keys survive the failed refresh: {}",
        d.text
    );
}

#[tokio::test]
async fn a_key_published_over_http_is_trusted_without_a_restart() {
    let signing = generate_signing_key().expect("key");
    let issuer = JwksServer::start(jwks_document(&[(KID, &signing)]));
    let app = spawn_app_trusting(Some(&issuer.url()), &[]).await;
    let rotated = generate_signing_key().expect("key");
    *issuer.document.lock().expect("document") =
        jwks_document(&[(KID, &signing), ("test-key-2", &rotated)]);
    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let token = sign(&rotated, "test-key-2", &claims(uuid(), ALL_SCOPES)).expect("sign");
    let a = app.get_as(Some(&token), "/v1/reconciliation/status").await;
    assert_eq!(a.status, 200, "{}", a.text);
}

#[tokio::test]
async fn unknown_kids_refresh_the_jwks_at_most_once_per_interval() {
    let signing = generate_signing_key().expect("key");
    let issuer = JwksServer::start(jwks_document(&[(KID, &signing)]));
    let app = spawn_app_trusting(Some(&issuer.url()), &["--auth-jwks-refresh-seconds", "3"]).await;
    tokio::time::sleep(Duration::from_millis(3_200)).await;
    let before = issuer.fetches();
    let stranger = generate_signing_key().expect("key");
    let started = Instant::now();
    for i in 0..20 {
        let token = sign(
            &stranger,
            &format!("forged-{i}"),
            &claims(uuid(), ALL_SCOPES),
        )
        .expect("sign");
        let a = app.get_as(Some(&token), "/v1/reconciliation/status").await;
        assert_unauthenticated(&a, "forged kid");
    }
    let elapsed = started.elapsed();
    assert_eq!(
        issuer.fetches() - before,
        1,
        "20 forged kids within {elapsed:?} cause exactly one JWKS fetch"
    );
}

#[tokio::test]
async fn clock_skew_within_the_60_second_leeway_is_accepted_and_beyond_it_refused() {
    let app = spawn_app_trusting(None, &[]).await;
    let tenant = uuid();
    let now = now();
    let cases = [
        ("exp 30 s ago", "exp", now - 30, 200),
        ("exp 120 s ago", "exp", now - 120, 401),
        ("nbf 30 s ahead", "nbf", now + 30, 200),
        ("nbf 120 s ahead", "nbf", now + 120, 401),
    ];
    for (what, claim, value, want) in cases {
        let mut c = claims(tenant, ALL_SCOPES);
        c[claim] = json!(value);
        let a = app
            .get_as(Some(&app.sign(&c)), "/v1/reconciliation/status")
            .await;
        if want == 401 {
            assert_unauthenticated(&a, what);
        } else {
            assert_eq!(a.status, want, "{what}: {}", a.text);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Tenant isolation.

/// Everything tenant A owns after a loan's full life: a disbursement, a fee, an accrual, a
/// payment and a reversal (of the payment).
struct TenantData {
    loan: Uuid,
    borrower: Uuid,
    entries: Vec<String>,
    disbursement_key: String,
    disbursement_body: Value,
    disbursement_receipt: String,
}

async fn build_tenant_a(app: &TestApp, token: &str) -> TenantData {
    let (loan, borrower) = (uuid(), uuid());
    let disbursement_key = key("disb");
    let disbursement_body = disbursement(loan, borrower, "100000");
    let d = app
        .post_as(
            Some(token),
            "/v1/disbursements",
            &disbursement_key,
            &disbursement_body,
        )
        .await;
    assert_eq!(d.status, 201, "{}", d.text);
    let fee = app
        .post_as(
            Some(token),
            "/v1/fees",
            &key("fee"),
            &json!({
                "loan_id": loan, "fee_type": "late", "amount_minor": "500",
                "currency": "USD", "effective_at": "2026-11-02",
            }),
        )
        .await;
    assert_eq!(fee.status, 201, "{}", fee.text);
    let accrual = app
        .post_as(
            Some(token),
            "/v1/accruals/batch",
            &key("accrual"),
            &json!({
                "program_id": uuid(), "accrual_date": "2026-11-03",
                "day_count_convention": "ACT_365",
                "loans": [{ "loan_id": loan, "outstanding_principal_minor": "100000",
                            "interest_minor": "27" }],
            }),
        )
        .await;
    assert_eq!(accrual.status, 201, "{}", accrual.text);
    let payment = app
        .post_as(
            Some(token),
            "/v1/payments",
            &key("payment"),
            &json!({
                "loan_id": loan, "borrower_id": borrower, "amount_minor": "2000",
                "currency": "USD", "effective_at": "2026-11-04", "source_method": "ach",
                "external_ref": format!("bank-{}", uuid()),
            }),
        )
        .await;
    assert_eq!(payment.status, 201, "{}", payment.text);
    let payment_entry = payment.json()["journal_entry_id"]
        .as_str()
        .expect("entry")
        .to_owned();
    let reversal = app
        .post_as(
            Some(token),
            "/v1/reversals",
            &key("reversal"),
            &json!({ "reverses_entry_id": payment_entry, "reason_code": "error_correction" }),
        )
        .await;
    assert_eq!(reversal.status, 201, "{}", reversal.text);
    let entries = [&d, &fee, &accrual, &payment, &reversal]
        .iter()
        .map(|a| {
            a.json()["journal_entry_id"]
                .as_str()
                .expect("entry")
                .to_owned()
        })
        .collect();
    TenantData {
        loan,
        borrower,
        entries,
        disbursement_key,
        disbursement_receipt: d.text.clone(),
        disbursement_body,
    }
}

/// What tenant A can see of its own data (compared before and after B's attempts).
async fn snapshot(app: &TestApp, token: &str, a: &TenantData) -> Vec<Value> {
    let mut out = Vec::new();
    let mut balance = app
        .get_as(Some(token), &format!("/v1/loans/{}/balance", a.loan))
        .await
        .json();
    balance["as_of_date"] = Value::Null;
    out.push(balance);
    out.push(
        app.get_as(
            Some(token),
            &format!("/v1/loans/{}/journal-entries", a.loan),
        )
        .await
        .json(),
    );
    for code in ACCOUNTS {
        let mut b = app
            .get_as(
                Some(token),
                &format!("/v1/accounts/{code}/balance?currency=USD"),
            )
            .await
            .json();
        b["as_of_date"] = Value::Null;
        out.push(b);
    }
    for entry in &a.entries {
        out.push(
            app.get_as(Some(token), &format!("/v1/journal-entries/{entry}"))
                .await
                .json(),
        );
    }
    out
}

/// B reading any of A's ids gets the same 404 as for an id that never existed, and A's page
/// token is worthless to B.
async fn assert_b_cannot_read_any_of_as_ids(
    app: &TestApp,
    token_a: &str,
    token_b: &str,
    a: &TenantData,
) {
    // Reads of A's ids by B: 404, the same body as for an id that never existed.
    let missing = app
        .get_as(Some(token_b), &format!("/v1/loans/{}/balance", uuid()))
        .await;
    assert_eq!(missing.status, 404);
    let mut reads = vec![
        format!("/v1/loans/{}/balance", a.loan),
        format!("/v1/loans/{}/balance?as_of_date=2026-11-03", a.loan),
        format!("/v1/loans/{}/journal-entries", a.loan),
        format!(
            "/v1/loans/{}/journal-entries?event_type=disbursement",
            a.loan
        ),
    ];
    reads.extend(a.entries.iter().map(|e| format!("/v1/journal-entries/{e}")));
    for path in &reads {
        let r = app.get_as(Some(token_b), path).await;
        assert_eq!(r.status, 404, "B reads {path}: {}", r.text);
        assert_eq!(r.code(), "not_found", "{path}");
        let (mut theirs, mut missing_body) = (r.json(), missing.json());
        theirs["detail"] = Value::Null;
        missing_body["detail"] = Value::Null;
        assert_eq!(
            theirs, missing_body,
            "{path}: indistinguishable from a missing id"
        );
    }
    // A's page token is worthless to B.
    let page = app
        .get_as(
            Some(token_a),
            &format!("/v1/loans/{}/journal-entries?page_size=1", a.loan),
        )
        .await
        .json();
    let page_token = page["next_page_token"].as_str().expect("a second page");
    let r = app
        .get_as(
            Some(token_b),
            &format!(
                "/v1/loans/{}/journal-entries?page_size=1&page_token={page_token}",
                a.loan
            ),
        )
        .await;
    assert!(
        r.status == 400 || r.status == 404,
        "B with A's page token: {} {}",
        r.status,
        r.text
    );
}

/// B's writes naming A's loan or entries are refused as if they did not exist.
async fn assert_b_cannot_write_against_as_loan_or_entries(
    app: &TestApp,
    token_b: &str,
    a: &TenantData,
) {
    // Writes naming A's loan or entries: as if they did not exist.
    let fee = app
        .post_as(
            Some(token_b),
            "/v1/fees",
            &key("fee"),
            &json!({
                "loan_id": a.loan, "fee_type": "late", "amount_minor": "1",
                "currency": "USD", "effective_at": "2026-11-05",
            }),
        )
        .await;
    assert_eq!(
        (fee.status, fee.code()),
        (422, "loan_not_found".into()),
        "{}",
        fee.text
    );
    let payment = app
        .post_as(
            Some(token_b),
            "/v1/payments",
            &key("payment"),
            &json!({
                "loan_id": a.loan, "borrower_id": a.borrower, "amount_minor": "1",
                "currency": "USD", "effective_at": "2026-11-05", "source_method": "ach",
            }),
        )
        .await;
    assert_eq!(
        (payment.status, payment.code()),
        (422, "loan_not_found".into()),
        "{}",
        payment.text
    );
    let accrual = app
        .post_as(
            Some(token_b),
            "/v1/accruals/batch",
            &key("accrual"),
            &json!({
                "program_id": uuid(), "accrual_date": "2026-11-06",
                "day_count_convention": "ACT_365",
                "loans": [{ "loan_id": a.loan, "outstanding_principal_minor": "100000",
                            "interest_minor": "27" }],
            }),
        )
        .await;
    assert_eq!(
        (accrual.status, accrual.code()),
        (422, "loan_not_found".into()),
        "{}",
        accrual.text
    );
    for entry in &a.entries {
        let r = app
            .post_as(
                Some(token_b),
                "/v1/reversals",
                &key("reversal"),
                &json!({ "reverses_entry_id": entry, "reason_code": "fraud" }),
            )
            .await;
        assert_eq!(r.status, 404, "B reverses A's entry {entry}: {}", r.text);
        assert_eq!(r.code(), "not_found");
    }
}

/// B's own books (accounts and reconciliation) show none of A's amounts.
async fn assert_bs_books_show_none_of_as_amounts(app: &TestApp, token_b: &str) {
    // B's own books show none of A's amounts.
    for code in ACCOUNTS {
        let b = app
            .get_as(
                Some(token_b),
                &format!("/v1/accounts/{code}/balance?currency=USD"),
            )
            .await;
        assert_eq!(b.status, 200, "{}", b.text);
        let b = b.json();
        assert_eq!(
            (&b["dr_balance_minor"], &b["cr_balance_minor"]),
            (&json!("0"), &json!("0")),
            "B's account {code}: {b}"
        );
    }
    let rec = app
        .get_as(Some(token_b), "/v1/reconciliation/status")
        .await
        .json();
    assert_eq!(rec["ledger_integrity"]["status"], "ok", "{rec}");
    assert_eq!(rec["portfolio_rollup"]["gl_principal_minor"], "0", "{rec}");
    assert_eq!(
        rec["portfolio_rollup"]["sum_of_loan_balances_minor"], "0",
        "{rec}"
    );
}

/// B replaying A's exact disbursement gets its own new loan, never A's stored answer.
async fn assert_b_replaying_as_disbursement_gets_its_own_loan(
    app: &TestApp,
    token_b: &str,
    a: &TenantData,
) {
    // Ids and idempotency keys are per tenant: B replaying A's exact request (same key, same
    // body, same loan id) gets its own new loan, never A's stored answer.
    let mine = app
        .post_as(
            Some(token_b),
            "/v1/disbursements",
            &a.disbursement_key,
            &a.disbursement_body,
        )
        .await;
    assert_eq!(
        mine.status, 201,
        "a fresh write for B, not a replay: {}",
        mine.text
    );
    assert_ne!(
        mine.text, a.disbursement_receipt,
        "A's receipt never leaks to B"
    );
    let b_loan = app
        .get_as(Some(token_b), &format!("/v1/loans/{}/balance", a.loan))
        .await
        .json();
    assert_eq!(b_loan["principal_outstanding_minor"], "100000", "{b_loan}");
    assert_eq!(
        b_loan["fees_receivable_minor"], "0",
        "B sees only its own loan: {b_loan}"
    );
}

#[tokio::test]
async fn another_tenant_cannot_read_or_touch_any_resource_on_any_route() {
    let app = spawn_app_trusting(None, &[]).await;
    let token_a = app.token(uuid(), ALL_SCOPES);
    let token_b = app.token(uuid(), ALL_SCOPES);
    let a = build_tenant_a(&app, &token_a).await;
    let before = snapshot(&app, &token_a, &a).await;
    let rows_before = app.written();

    assert_b_cannot_read_any_of_as_ids(&app, &token_a, &token_b, &a).await;
    assert_b_cannot_write_against_as_loan_or_entries(&app, &token_b, &a).await;
    assert_eq!(
        app.written(),
        rows_before,
        "B's refused writes wrote nothing"
    );
    assert_bs_books_show_none_of_as_amounts(&app, &token_b).await;
    assert_b_replaying_as_disbursement_gets_its_own_loan(&app, &token_b, &a).await;

    // And A's data is exactly as it was.
    assert_eq!(
        snapshot(&app, &token_a, &a).await,
        before,
        "A's balances, entries and accounts are unchanged"
    );
    let rec_a = app
        .get_as(Some(&token_a), "/v1/reconciliation/status")
        .await
        .json();
    assert_eq!(rec_a["ledger_integrity"]["status"], "ok", "{rec_a}");
}

#[tokio::test]
async fn a_token_for_one_tenant_cannot_name_another_tenants_loan_in_a_body_or_path() {
    let app = spawn_app_trusting(None, &[]).await;
    let (token_a, token_b) = (app.token(uuid(), ALL_SCOPES), app.token(uuid(), ALL_SCOPES));
    let (loan_b, borrower_b) = (uuid(), uuid());
    let d = app
        .post_as(
            Some(&token_b),
            "/v1/disbursements",
            &key("disb"),
            &disbursement(loan_b, borrower_b, "5000"),
        )
        .await;
    assert_eq!(d.status, 201, "{}", d.text);
    let rows = app.written();
    let payment = app
        .post_as(
            Some(&token_a),
            "/v1/payments",
            &key("payment"),
            &json!({
                "loan_id": loan_b, "borrower_id": borrower_b, "amount_minor": "100",
                "currency": "USD", "effective_at": "2026-11-05", "source_method": "ach",
            }),
        )
        .await;
    assert_eq!(
        (payment.status, payment.code()),
        (422, "loan_not_found".into())
    );
    let fee = app
        .post_as(
            Some(&token_a),
            "/v1/fees",
            &key("fee"),
            &json!({
                "loan_id": loan_b, "fee_type": "nsf", "amount_minor": "100",
                "currency": "USD", "effective_at": "2026-11-05",
            }),
        )
        .await;
    assert_eq!((fee.status, fee.code()), (422, "loan_not_found".into()));
    for path in [
        format!("/v1/loans/{loan_b}/balance"),
        format!("/v1/loans/{loan_b}/journal-entries"),
    ] {
        let r = app.get_as(Some(&token_a), &path).await;
        assert_eq!((r.status, r.code()), (404, "not_found".into()), "{path}");
    }
    assert_eq!(app.written(), rows, "nothing written");
}

// ---------------------------------------------------------------------------------------------
// Rate limiting.

#[tokio::test]
async fn a_tenant_over_its_rate_limit_gets_429_while_other_tenants_are_unaffected() {
    let app = spawn_app_trusting(None, &["--rate-limit-rps", "5", "--rate-limit-burst", "5"]).await;
    let (token_a, token_b) = (app.token(uuid(), ALL_SCOPES), app.token(uuid(), ALL_SCOPES));
    let path = "/v1/accounts/1000/balance?currency=USD";
    let started = Instant::now();
    for i in 1..=5 {
        let r = app.get_as(Some(&token_a), path).await;
        assert_eq!(r.status, 200, "request {i} of the burst: {}", r.text);
    }
    let sixth = app.get_as(Some(&token_a), path).await;
    let elapsed = started.elapsed();
    assert_eq!(
        sixth.status, 429,
        "the 6th request within {elapsed:?}: {}",
        sixth.text
    );
    assert_eq!(sixth.code(), "rate_limited");
    let retry_after: u64 = sixth
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("Retry-After in seconds");
    assert!((1..=60).contains(&retry_after), "Retry-After {retry_after}");

    let rows = app.written();
    let write = app
        .post_as(
            Some(&token_a),
            "/v1/disbursements",
            &key("disb"),
            &disbursement(uuid(), uuid(), "100"),
        )
        .await;
    assert_eq!(write.status, 429, "writes are limited too: {}", write.text);
    assert_eq!(app.written(), rows, "a limited write writes nothing");
    for _ in 0..10 {
        let r = app.get_as(Some("not-a-token"), path).await;
        assert_unauthenticated(&r, "bad tokens are refused before rate limiting");
    }
    for i in 1..=5 {
        let r = app.get_as(Some(&token_b), path).await;
        assert_eq!(r.status, 200, "tenant B request {i}: {}", r.text);
    }
    tokio::time::sleep(Duration::from_secs(retry_after)).await;
    let later = app.get_as(Some(&token_a), path).await;
    assert_eq!(later.status, 200, "after Retry-After: {}", later.text);
}

#[tokio::test]
async fn without_a_rate_limit_fifty_quick_requests_are_all_served() {
    let app = spawn_app_trusting(None, &[]).await;
    let token = app.token(uuid(), ALL_SCOPES);
    for i in 1..=50 {
        let r = app
            .get_as(Some(&token), "/v1/accounts/1000/balance?currency=USD")
            .await;
        assert_eq!(r.status, 200, "request {i}: {}", r.text);
    }
}
