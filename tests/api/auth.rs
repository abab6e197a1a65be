//! Authentication and authorisation (SPEC §1.5, §3): every kind of bad bearer token is a 401 with
//! `WWW-Authenticate: Bearer` and writes nothing; a missing scope is a 403; tenants never see or
//! touch each other's loans and entries (404, same body as a missing resource).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::pkcs8::EncodePublicKey;
use ed25519_dalek::pkcs8::spki::der::pem::LineEnding;
use hpts::auth::dev::{generate_signing_key, sign};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

use crate::helpers::{
    ALL_SCOPES, Answer, KID, TestApp, claims, disbursement_body, key, now, spawn_app, uuid,
};

fn b64_json(v: &Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).expect("json"))
}

/// Good claims for a fresh tenant with every scope.
fn good_claims() -> Value {
    claims(uuid(), ALL_SCOPES)
}

/// POST a valid disbursement with the given `Authorization` header value (or none).
async fn post_with_authorization(app: &TestApp, authorization: Option<&str>) -> Answer {
    let mut req = app
        .client
        .post(format!("{}/v1/disbursements", app.address))
        .header("Idempotency-Key", key("disbursement"))
        .json(&disbursement_body(uuid(), uuid(), "1000"));
    if let Some(value) = authorization {
        req = req.header("Authorization", value);
    }
    Answer::from(req.send().await.expect("request sent")).await
}

async fn post_with_token(app: &TestApp, token: &str) -> Answer {
    post_with_authorization(app, Some(&format!("Bearer {token}"))).await
}

/// 401 `unauthenticated`, `WWW-Authenticate: Bearer…`, problem+json, nothing written.
fn assert_unauthenticated(app: &TestApp, a: &Answer, what: &str) {
    crate::helpers::assert_unauthenticated(a, what);
    crate::helpers::assert_problem_body(a, 401);
    assert_eq!(
        app.written(),
        [0; 5],
        "{what}: a refused request writes nothing"
    );
}

/// Signs `claims` with the app's trusted key after `edit`.
fn signed_with(app: &TestApp, edit: impl FnOnce(&mut Value)) -> String {
    let mut c = good_claims();
    edit(&mut c);
    app.sign(&c)
}

#[tokio::test]
async fn a_request_without_a_token_is_unauthenticated() {
    let app = spawn_app().await;
    let a = post_with_authorization(&app, None).await;
    assert_unauthenticated(&app, &a, "no Authorization header");
}

#[tokio::test]
async fn a_request_with_a_malformed_authorization_header_is_unauthenticated() {
    let app = spawn_app().await;
    let good = app.sign(&good_claims());
    let headers = [
        "Bearer garbage".to_owned(),
        "Bearer a.b.c".to_owned(),
        "Bearer ".to_owned(),
        "Bearer".to_owned(),
        format!("Basic {}", URL_SAFE_NO_PAD.encode("user:pass")),
        good.clone(),
        format!("Token {good}"),
    ];
    for header in &headers {
        let a = post_with_authorization(&app, Some(header)).await;
        assert_unauthenticated(&app, &a, header);
    }
}

#[tokio::test]
async fn an_unsigned_alg_none_token_is_unauthenticated() {
    let app = spawn_app().await;
    let c = good_claims();
    let real_signature = app
        .sign(&c)
        .rsplit('.')
        .next()
        .expect("signature")
        .to_owned();
    for header in [
        json!({ "alg": "none", "typ": "JWT" }),
        json!({ "alg": "none", "typ": "JWT", "kid": KID }),
    ] {
        let unsigned = format!("{}.{}.", b64_json(&header), b64_json(&c));
        assert_unauthenticated(
            &app,
            &post_with_token(&app, &unsigned).await,
            "alg none, empty signature",
        );
        let borrowed = format!("{}.{}.{real_signature}", b64_json(&header), b64_json(&c));
        assert_unauthenticated(
            &app,
            &post_with_token(&app, &borrowed).await,
            "alg none, borrowed signature",
        );
    }
}

#[tokio::test]
async fn an_hs256_token_keyed_with_the_public_key_is_unauthenticated() {
    let app = spawn_app().await;
    let verifying = app.signing.verifying_key();
    let x = URL_SAFE_NO_PAD.encode(verifying.as_bytes());
    let pem = verifying.to_public_key_pem(LineEnding::LF).expect("pem");
    let jwks = std::fs::read(&app.jwks_path).expect("jwks");
    let secrets: [(&str, Vec<u8>); 4] = [
        ("raw public key", verifying.as_bytes().to_vec()),
        ("JWK x", x.into_bytes()),
        ("SPKI PEM", pem.into_bytes()),
        ("JWKS document", jwks),
    ];
    for (what, secret) in secrets {
        for alg in [Algorithm::HS256, Algorithm::HS384, Algorithm::HS512] {
            let mut header = Header::new(alg);
            header.kid = Some(KID.to_owned());
            let token =
                jsonwebtoken::encode(&header, &good_claims(), &EncodingKey::from_secret(&secret))
                    .expect("hs");
            let a = post_with_token(&app, &token).await;
            assert_unauthenticated(&app, &a, &format!("{alg:?} keyed with the {what}"));
        }
    }
}

#[tokio::test]
async fn a_token_from_another_issuer_is_unauthenticated() {
    let app = spawn_app().await;
    let wrong = signed_with(&app, |c| c["iss"] = json!("https://evil.test"));
    assert_unauthenticated(&app, &post_with_token(&app, &wrong).await, "wrong iss");
    let missing = signed_with(&app, |c| {
        c.as_object_mut().expect("claims").remove("iss");
    });
    assert_unauthenticated(&app, &post_with_token(&app, &missing).await, "no iss");
}

#[tokio::test]
async fn a_token_for_another_audience_is_unauthenticated() {
    let app = spawn_app().await;
    let wrong = signed_with(&app, |c| c["aud"] = json!("someone-else"));
    assert_unauthenticated(&app, &post_with_token(&app, &wrong).await, "wrong aud");
    let missing = signed_with(&app, |c| {
        c.as_object_mut().expect("claims").remove("aud");
    });
    assert_unauthenticated(&app, &post_with_token(&app, &missing).await, "no aud");
}

#[tokio::test]
async fn an_expired_token_is_unauthenticated() {
    let app = spawn_app().await;
    let t = now();
    let expired = signed_with(&app, |c| {
        c["iat"] = json!(t - 7200);
        c["nbf"] = json!(t - 7200);
        c["exp"] = json!(t - 3600);
    });
    assert_unauthenticated(
        &app,
        &post_with_token(&app, &expired).await,
        "expired an hour ago",
    );
}

#[tokio::test]
async fn a_token_without_exp_is_unauthenticated() {
    let app = spawn_app().await;
    let no_exp = signed_with(&app, |c| {
        c.as_object_mut().expect("claims").remove("exp");
    });
    assert_unauthenticated(&app, &post_with_token(&app, &no_exp).await, "no exp");
}

#[tokio::test]
async fn a_token_not_yet_valid_is_unauthenticated() {
    let app = spawn_app().await;
    let t = now();
    let future = signed_with(&app, |c| {
        c["nbf"] = json!(t + 3600);
        c["exp"] = json!(t + 7200);
    });
    assert_unauthenticated(
        &app,
        &post_with_token(&app, &future).await,
        "nbf in an hour",
    );
}

#[tokio::test]
async fn a_token_valid_a_few_seconds_from_now_is_accepted_within_the_leeway() {
    let app = spawn_app().await;
    let t = now();
    let skewed = signed_with(&app, |c| c["nbf"] = json!(t + 5));
    let a = post_with_token(&app, &skewed).await;
    assert_eq!(
        a.status, 201,
        "small clock skew on nbf is tolerated: {}",
        a.text
    );
}

#[tokio::test]
async fn a_token_without_a_uuid_tenant_is_unauthenticated() {
    let app = spawn_app().await;
    let missing = signed_with(&app, |c| {
        c.as_object_mut().expect("claims").remove("tenant_id");
    });
    assert_unauthenticated(&app, &post_with_token(&app, &missing).await, "no tenant_id");
    for bad in [
        json!("tenant-a"),
        json!(""),
        json!(42),
        json!(null),
        json!([uuid().to_string()]),
    ] {
        let token = signed_with(&app, |c| c["tenant_id"] = bad.clone());
        assert_unauthenticated(
            &app,
            &post_with_token(&app, &token).await,
            &format!("tenant_id = {bad}"),
        );
    }
}

#[tokio::test]
async fn a_token_with_an_unknown_kid_is_unauthenticated() {
    let app = spawn_app().await;
    let token = sign(&app.signing, "no-such-kid", &good_claims()).expect("sign");
    assert_unauthenticated(&app, &post_with_token(&app, &token).await, "unknown kid");
}

#[tokio::test]
async fn a_token_signed_by_an_untrusted_key_is_unauthenticated() {
    let app = spawn_app().await;
    let untrusted = generate_signing_key().expect("key");
    let same_kid = sign(&untrusted, KID, &good_claims()).expect("sign");
    assert_unauthenticated(
        &app,
        &post_with_token(&app, &same_kid).await,
        "untrusted key under the trusted kid",
    );
    let own_kid = sign(&untrusted, "attacker-key", &good_claims()).expect("sign");
    assert_unauthenticated(
        &app,
        &post_with_token(&app, &own_kid).await,
        "untrusted key under its own kid",
    );
}

#[tokio::test]
async fn a_token_with_a_tampered_payload_is_unauthenticated() {
    let app = spawn_app().await;
    let c = claims(uuid(), &["hpts:balances:read"]);
    let token = app.sign(&c);
    let parts: Vec<&str> = token.split('.').collect();
    assert_eq!(parts.len(), 3);
    let edits: [(&str, Value); 4] = [
        ("scope", json!(ALL_SCOPES.join(" "))),
        ("tenant_id", json!(uuid().to_string())),
        ("exp", json!(now() + 86_400 * 365)),
        ("sub", json!("admin")),
    ];
    for (claim, value) in edits {
        let mut tampered = c.clone();
        tampered[claim] = value;
        let forged = format!("{}.{}.{}", parts[0], b64_json(&tampered), parts[2]);
        assert_unauthenticated(
            &app,
            &post_with_token(&app, &forged).await,
            &format!("tampered {claim}"),
        );
    }
}

#[tokio::test]
async fn the_untampered_token_is_accepted() {
    let app = spawn_app().await;
    let a = post_with_token(&app, &app.sign(&good_claims())).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn reads_without_a_token_are_unauthenticated() {
    let app = spawn_app().await;
    let caller = app.tenant();
    let (loan, _, receipt) = caller.open_loan("1000").await;
    let entry = receipt["journal_entry_id"].as_str().expect("entry id");
    for path in [
        format!("/v1/loans/{loan}/balance"),
        format!("/v1/journal-entries/{entry}"),
    ] {
        let a = Answer::from(app.get_raw(&path, None).await).await;
        assert_eq!(a.status, 401, "{path}: {}", a.text);
        assert_eq!(a.code(), "unauthenticated");
        assert!(
            a.header("www-authenticate")
                .is_some_and(|h| h.starts_with("Bearer")),
            "{path}"
        );
        let bad = Answer::from(app.get_raw(&path, Some("garbage")).await).await;
        assert_eq!(bad.status, 401, "{path}: {}", bad.text);
    }
}

#[tokio::test]
async fn a_write_without_its_scope_is_forbidden_and_writes_nothing() {
    let app = spawn_app().await;
    let others: Vec<&str> = ALL_SCOPES
        .iter()
        .copied()
        .filter(|s| *s != "hpts:disbursements:write")
        .collect();
    let caller = app.caller(uuid(), &others);

    let a = caller
        .post_disbursement(&key("disb"), &disbursement_body(uuid(), uuid(), "1000"))
        .await;

    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(a.code(), "insufficient_scope");
    assert!(
        a.header("www-authenticate")
            .is_some_and(|h| h.starts_with("Bearer")),
        "{:?}",
        a.headers
    );
    assert_eq!(app.written(), [0; 5]);
}

#[tokio::test]
async fn reads_without_their_scope_are_forbidden() {
    let app = spawn_app().await;
    let tenant = uuid();
    let writer = app.caller(tenant, &["hpts:disbursements:write"]);
    let (loan, _, receipt) = writer.open_loan("1000").await;
    let entry = receipt["journal_entry_id"].as_str().expect("entry id");

    let balance = writer.get_loan_balance(loan).await;
    assert_eq!(balance.status, 403, "{}", balance.text);
    assert_eq!(balance.code(), "insufficient_scope");
    let ledger_only = app.caller(tenant, &["hpts:ledger:read"]);
    assert_eq!(ledger_only.get_loan_balance(loan).await.status, 403);
    assert_eq!(ledger_only.get_entry(entry).await.status, 200);
    let balances_only = app.caller(tenant, &["hpts:balances:read"]);
    assert_eq!(balances_only.get_entry(entry).await.status, 403);
    assert_eq!(balances_only.get_loan_balance(loan).await.status, 200);
}

#[tokio::test]
async fn an_unknown_or_look_alike_scope_grants_nothing() {
    let app = spawn_app().await;
    let caller = app.caller(
        uuid(),
        &[
            "hpts:disbursements:write:extra",
            "HPTS:DISBURSEMENTS:WRITE",
            "hpts:*",
            "admin",
        ],
    );
    let a = caller
        .post_disbursement(&key("disb"), &disbursement_body(uuid(), uuid(), "1000"))
        .await;
    assert_eq!(a.status, 403, "{}", a.text);
    assert_eq!(a.code(), "insufficient_scope");
}

#[tokio::test]
async fn scopes_may_come_from_an_scp_array() {
    let app = spawn_app().await;
    let token = signed_with(&app, |c| {
        c.as_object_mut().expect("claims").remove("scope");
        c["scp"] = json!(["hpts:balances:read", "hpts:disbursements:write"]);
    });
    let a = post_with_token(&app, &token).await;
    assert_eq!(a.status, 201, "{}", a.text);
}

#[tokio::test]
async fn a_tenant_cannot_read_another_tenants_loan_balance() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let (loan, _, _) = a.open_loan("1000").await;

    let foreign = b.get_loan_balance(loan).await;
    let missing = b.get_loan_balance(uuid()).await;

    assert_eq!(foreign.status, 404, "{}", foreign.text);
    assert_eq!(foreign.code(), "not_found");
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(
        foreign.json(),
        missing.json(),
        "another tenant's loan looks exactly like a missing one"
    );
    assert_eq!(a.get_loan_balance(loan).await.status, 200);
}

#[tokio::test]
async fn a_tenant_cannot_read_another_tenants_journal_entry() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let (_, _, receipt) = a.open_loan("1000").await;
    let entry = receipt["journal_entry_id"].as_str().expect("entry id");

    let foreign = b.get_entry(entry).await;
    let missing = b.get_entry(&uuid().to_string()).await;

    assert_eq!(foreign.status, 404, "{}", foreign.text);
    assert_eq!(foreign.code(), "not_found");
    assert_eq!(missing.status, 404, "{}", missing.text);
    assert_eq!(
        foreign.json(),
        missing.json(),
        "another tenant's entry looks exactly like a missing one"
    );
    assert_eq!(a.get_entry(entry).await.status, 200);
}

#[tokio::test]
async fn a_tenant_disbursing_to_another_tenants_loan_id_opens_its_own_loan() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let (loan, _, _) = a.open_loan("1000").await;
    let mut body = disbursement_body(loan, uuid(), "777");
    body["currency"] = json!("EUR");

    let other = b.post_disbursement(&key("disb"), &body).await;

    assert_eq!(
        other.status, 201,
        "no borrower/currency binding leaks across tenants: {}",
        other.text
    );
    let mine = a.get_loan_balance(loan).await.json();
    assert_eq!(mine["principal_outstanding_minor"], "1000");
    assert_eq!(mine["currency"], "USD");
    let theirs = b.get_loan_balance(loan).await.json();
    assert_eq!(theirs["principal_outstanding_minor"], "777");
    assert_eq!(theirs["currency"], "EUR");
}

#[tokio::test]
async fn the_tenant_comes_from_the_token_not_the_body() {
    let app = spawn_app().await;
    let (a, b) = (app.tenant(), app.tenant());
    let mut body = disbursement_body(uuid(), uuid(), "1000");
    body["tenant_id"] = json!(b.tenant.to_string());
    let refused = a.post_disbursement(&key("disb"), &body).await;
    assert_eq!(
        refused.status, 400,
        "a tenant_id in the body is an unknown field: {}",
        refused.text
    );
    assert_eq!(app.written(), [0; 5]);
}
