//! Optional in-process TLS (SPEC §9): `--tls-cert`/`--tls-key` make the listener HTTPS;
//! `--tls-client-ca` adds mutual TLS (the HPTS partner-endpoint rule: a client certificate from
//! that CA, plus the bearer token, which is still checked).
//!
//! Every certificate is made here with rcgen: a CA, a server certificate for 127.0.0.1 and
//! localhost signed by it, a client certificate signed by it, and a client certificate from
//! another CA. Clients are reqwest with rustls, trusting only the test CA.

mod common;

use std::path::PathBuf;
use std::time::Duration;

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use reqwest::{Certificate, Client, Identity};
use serde_json::Value;
use tempfile::TempDir;

use common::inprocess::{TestApp, disbursement_body, spawn_app_with};
use common::server::{self, output_text};
use common::tokens::{key, uuid};

/// The test PKI, written to files the service reads.
struct Pki {
    _dir: TempDir,
    /// The CA that issued the server and the good client certificate (PEM).
    ca_pem: String,
    ca_path: PathBuf,
    server_cert: PathBuf,
    server_key: PathBuf,
    /// Client certificate + key issued by the CA (PEM, for `Identity::from_pem`).
    client: Vec<u8>,
    /// Client certificate + key issued by another CA.
    stranger: Vec<u8>,
}

fn new_ca(name: &str) -> CertifiedIssuer<'static, KeyPair> {
    let mut params = CertificateParams::new(Vec::new()).expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("CA")
}

/// A leaf signed by `ca`: (certificate PEM, key PEM).
fn leaf(
    ca: &CertifiedIssuer<'static, KeyPair>,
    name: &str,
    sans: &[&str],
    usage: ExtendedKeyUsagePurpose,
) -> (String, String) {
    let mut params = CertificateParams::new(
        sans.iter()
            .map(|s| (*s).to_owned())
            .collect::<Vec<String>>(),
    )
    .expect("params");
    params.distinguished_name.push(DnType::CommonName, name);
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![usage];
    params.use_authority_key_identifier_extension = true;
    let key = KeyPair::generate().expect("key");
    let cert = params.signed_by(&key, ca).expect("leaf");
    (cert.pem(), key.serialize_pem())
}

fn pki() -> Pki {
    let dir = tempfile::tempdir().expect("tempdir");
    let ca = new_ca("hpts test CA");
    let other_ca = new_ca("some other CA");
    let (server_cert, server_key) = leaf(
        &ca,
        "hpts test server",
        &["127.0.0.1", "localhost"],
        ExtendedKeyUsagePurpose::ServerAuth,
    );
    let (client_cert, client_key) = leaf(
        &ca,
        "partner-a",
        &["partner-a.test"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let (stranger_cert, stranger_key) = leaf(
        &other_ca,
        "partner-a",
        &["partner-a.test"],
        ExtendedKeyUsagePurpose::ClientAuth,
    );
    let write = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write pem");
        path
    };
    Pki {
        ca_pem: ca.pem(),
        ca_path: write("ca.pem", &ca.pem()),
        server_cert: write("server.pem", &server_cert),
        server_key: write("server-key.pem", &server_key),
        client: format!("{client_cert}{client_key}").into_bytes(),
        stranger: format!("{stranger_cert}{stranger_key}").into_bytes(),
        _dir: dir,
    }
}

/// The app over HTTPS; with `mutual`, client certificates from the test CA are required.
async fn spawn_tls_app(pki: &Pki, mutual: bool) -> TestApp {
    let mut flags = vec![
        "--tls-cert".to_owned(),
        pki.server_cert.display().to_string(),
        "--tls-key".to_owned(),
        pki.server_key.display().to_string(),
    ];
    if mutual {
        flags.extend([
            "--tls-client-ca".to_owned(),
            pki.ca_path.display().to_string(),
        ]);
    }
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    spawn_app_with(&flags).await
}

/// A rustls client trusting only the test CA, presenting `identity` if given.
fn https_client(pki: &Pki, identity: Option<&[u8]>) -> Client {
    let mut builder = Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(Certificate::from_pem(pki.ca_pem.as_bytes()).expect("CA"))
        .timeout(Duration::from_secs(20));
    if let Some(pem) = identity {
        builder = builder.identity(Identity::from_pem(pem).expect("identity"));
    }
    builder.build().expect("client")
}

fn https(app: &TestApp, path: &str) -> String {
    format!("https://127.0.0.1:{}{path}", app.port)
}

/// Posts a disbursement to a new loan; `token` optional.
async fn disburse(
    client: &Client,
    app: &TestApp,
    token: Option<&str>,
) -> Result<reqwest::Response, reqwest::Error> {
    let mut req = client
        .post(https(app, "/v1/disbursements"))
        .header("Idempotency-Key", key("disb"))
        .json(&disbursement_body(uuid(), uuid(), "10000"));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    req.send().await
}

/// Asserts the request never got an HTTP answer, failing for `reason` (a TLS alert or
/// certificate error as rustls names it; "" for any).
fn assert_refused(result: Result<reqwest::Response, reqwest::Error>, what: &str, reason: &str) {
    match result {
        Ok(r) => panic!("{what}: expected no HTTP answer, got {}", r.status()),
        Err(e) => {
            assert!(e.status().is_none(), "{what}: {e:?}");
            assert!(format!("{e:?}").contains(reason), "{what}: {e:?}");
        }
    }
}

#[tokio::test]
async fn https_without_a_client_ca_serves_the_api_and_still_checks_the_token() {
    let pki = pki();
    let app = spawn_tls_app(&pki, false).await;
    let client = https_client(&pki, None);
    let token = app.tenant().token;

    let r = disburse(&client, &app, Some(&token))
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 201);
    let body: Value = r.json().await.expect("json");
    assert!(body["journal_entry_id"].is_string(), "{body}");

    let r = disburse(&client, &app, None).await.expect("answered");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(app.count("journal_entries"), 1);

    let live = client
        .get(https(&app, "/v1/health/live"))
        .send()
        .await
        .expect("answered");
    assert_eq!(live.status().as_u16(), 200);
}

#[tokio::test]
async fn a_client_that_does_not_trust_the_ca_cannot_connect_over_https() {
    let pki = pki();
    let app = spawn_tls_app(&pki, false).await;
    let stranger = Client::builder()
        .use_rustls_tls()
        .timeout(Duration::from_secs(20))
        .build()
        .expect("client");
    let token = app.tenant().token;
    assert_refused(
        disburse(&stranger, &app, Some(&token)).await,
        "untrusted server certificate",
        "UnknownIssuer",
    );
    assert_eq!(app.count("journal_entries"), 0);
}

#[tokio::test]
async fn plain_http_to_the_tls_port_gets_no_http_answer() {
    let pki = pki();
    for mutual in [false, true] {
        let app = spawn_tls_app(&pki, mutual).await;
        let token = app.tenant().token;
        let r = app
            .client
            .post(format!("http://127.0.0.1:{}/v1/disbursements", app.port))
            .bearer_auth(&token)
            .header("Idempotency-Key", key("disb"))
            .json(&disbursement_body(uuid(), uuid(), "10000"))
            .send()
            .await;
        assert_refused(r, &format!("plain HTTP (mutual TLS {mutual})"), "");
        assert_eq!(app.count("journal_entries"), 0);
    }
}

#[tokio::test]
async fn with_mutual_tls_a_client_without_a_certificate_is_refused_in_the_handshake() {
    let pki = pki();
    let app = spawn_tls_app(&pki, true).await;
    let token = app.tenant().token;
    assert_refused(
        disburse(&https_client(&pki, None), &app, Some(&token)).await,
        "no client certificate",
        "CertificateRequired",
    );
    assert_refused(
        https_client(&pki, None)
            .get(https(&app, "/v1/health/live"))
            .send()
            .await,
        "no client certificate, health",
        "CertificateRequired",
    );
    assert_eq!(app.count("journal_entries"), 0);
}

#[tokio::test]
async fn with_mutual_tls_a_certificate_from_another_ca_is_refused_in_the_handshake() {
    let pki = pki();
    let app = spawn_tls_app(&pki, true).await;
    let token = app.tenant().token;
    assert_refused(
        disburse(&https_client(&pki, Some(&pki.stranger)), &app, Some(&token)).await,
        "certificate from another CA",
        "UnknownCA",
    );
    assert_eq!(app.count("journal_entries"), 0);
}

#[tokio::test]
async fn with_mutual_tls_the_right_certificate_without_a_token_is_401() {
    let pki = pki();
    let app = spawn_tls_app(&pki, true).await;
    let r = disburse(&https_client(&pki, Some(&pki.client)), &app, None)
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    assert_eq!(app.count("journal_entries"), 0);
}

#[tokio::test]
async fn with_mutual_tls_the_right_certificate_and_a_token_write_201() {
    let pki = pki();
    let app = spawn_tls_app(&pki, true).await;
    let c = app.tenant();
    let client = https_client(&pki, Some(&pki.client));
    let r = disburse(&client, &app, Some(&c.token))
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 201);
    let body: Value = r.json().await.expect("json");
    let entry_id = body["journal_entry_id"].as_str().expect("id");

    let r = client
        .get(https(&app, &format!("/v1/journal-entries/{entry_id}")))
        .bearer_auth(&c.token)
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(app.count("journal_entries"), 1);
}

/// `hpts check-config` with auth flags and `flags`: (exit code, stdout + stderr).
fn check_config(flags: &[&str]) -> (Option<i32>, String) {
    let out = server::check_config(flags, &[]);
    (out.status.code(), output_text(&out))
}

#[test]
fn an_incomplete_tls_configuration_is_refused_naming_the_missing_variable() {
    let (code, text) = check_config(&["--tls-cert", "/etc/hpts/cert.pem"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("HPTS_TLS_KEY"), "{text}");

    let (code, text) = check_config(&["--tls-key", "/etc/hpts/key.pem"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("HPTS_TLS_CERT"), "{text}");

    let (code, text) = check_config(&["--tls-client-ca", "/etc/hpts/ca.pem"]);
    assert_eq!(code, Some(2), "{text}");
    assert!(text.contains("HPTS_TLS_CLIENT_CA"), "{text}");

    let (code, text) = check_config(&[
        "--tls-cert",
        "/etc/hpts/cert.pem",
        "--tls-key",
        "/etc/hpts/key.pem",
        "--tls-client-ca",
        "/etc/hpts/ca.pem",
    ]);
    assert_eq!(code, Some(0), "{text}");
    assert!(text.contains("\"mutual_tls\": true"), "{text}");
}
