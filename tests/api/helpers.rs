//! Test harness: `spawn_app()` starts the production wiring on port 0 with a temp-file database
//! and a test JWKS; `app.tenant()` gives a caller with a token for a fresh tenant; one method per
//! endpoint. `spawn_binary()` runs the real `hpts` executable for crash tests.

#![allow(
    dead_code,
    reason = "each test module uses a different part of the harness"
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use ed25519_dalek::SigningKey;
use hpts::app::Application;
use hpts::auth::dev::{generate_signing_key, jwks_json, sign};
use hpts::config::{Cli, Command as CliCommand, Settings};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

pub const ISSUER: &str = "https://issuer.test";
pub const AUDIENCE: &str = "hpts-test";
pub const KID: &str = "test-key-1";

pub const ALL_SCOPES: &[&str] = &[
    "hpts:disbursements:write",
    "hpts:payments:write",
    "hpts:fees:write",
    "hpts:reversals:write",
    "hpts:accruals:write",
    "hpts:chargeoffs:write",
    "hpts:adjustments:write",
    "hpts:periods:write",
    "hpts:balances:read",
    "hpts:ledger:read",
    "hpts:reconciliation:read",
];

/// Seconds since the epoch.
#[expect(
    clippy::disallowed_methods,
    reason = "tokens in tests carry wall-clock times"
)]
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

/// A fresh random UUID (test data only).
#[expect(clippy::disallowed_methods, reason = "test data ids")]
pub fn uuid() -> Uuid {
    Uuid::now_v7()
}

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub dir: TempDir,
    pub db_path: PathBuf,
    pub jwks_path: PathBuf,
    pub signing: SigningKey,
    pub client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
}

/// Writes a JWKS with the given keys (kid, key) to `path`.
pub fn write_jwks(path: &Path, keys: &[(&str, &SigningKey)]) {
    let keys: Vec<Value> = keys
        .iter()
        .map(|(kid, k)| jwks_json(k, kid)["keys"][0].clone())
        .collect();
    std::fs::write(
        path,
        serde_json::to_vec(&json!({ "keys": keys })).expect("json"),
    )
    .expect("write jwks");
}

/// Serve arguments for a test instance (flags only, so the environment cannot interfere).
pub fn serve_args(db: &Path, jwks: &Path, extra: &[&str]) -> Vec<String> {
    let mut args: Vec<String> = vec![
        "hpts".into(),
        "serve".into(),
        "--listen".into(),
        "127.0.0.1:0".into(),
        "--database".into(),
        db.display().to_string(),
        "--auth-issuer".into(),
        ISSUER.into(),
        "--auth-audience".into(),
        AUDIENCE.into(),
        "--auth-jwks".into(),
        jwks.display().to_string(),
        "--workers".into(),
        "2".into(),
        "--log".into(),
        std::env::var("TEST_LOG").unwrap_or_else(|_| "off".into()),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    args
}

pub fn settings_from(args: &[String]) -> Settings {
    let cli = Cli::try_parse_from(args).expect("valid test arguments");
    let CliCommand::Serve(serve) = cli.command else {
        panic!("not serve")
    };
    Settings::from_args(&serve).expect("valid test settings")
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts the app with extra `serve` flags (e.g. `["--group-commit", "off"]`).
pub async fn spawn_app_with(extra: &[&str]) -> TestApp {
    let dir = tempfile::tempdir().expect("tempdir");
    let db_path = dir.path().join("ledger.db");
    let jwks_path = dir.path().join("jwks.json");
    let signing = generate_signing_key().expect("key");
    write_jwks(&jwks_path, &[(KID, &signing)]);
    let settings = settings_from(&serve_args(&db_path, &jwks_path, extra));
    if std::env::var("TEST_LOG").is_ok() {
        hpts::telemetry::init(&settings.log_filter, hpts::telemetry::LogFormat::Pretty);
    }
    let app = Application::build(settings).await.expect("app builds");
    let port = app.port();
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        dir,
        db_path,
        jwks_path,
        signing,
        client: reqwest::Client::builder()
            .timeout(Duration::from_mins(1))
            .build()
            .expect("client"),
        handle,
    }
}

/// Standard claims for a tenant and scopes, valid for an hour.
pub fn claims(tenant: Uuid, scopes: &[&str]) -> Value {
    let now = now();
    json!({
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": "test-user",
        "tenant_id": tenant.to_string(),
        "scope": scopes.join(" "),
        "iat": now,
        "nbf": now - 5,
        "exp": now + 3600,
    })
}

impl TestApp {
    /// Signs claims with the app's trusted key.
    pub fn sign(&self, claims: &Value) -> String {
        sign(&self.signing, KID, claims).expect("sign")
    }

    /// A token for `tenant` with `scopes`.
    pub fn token(&self, tenant: Uuid, scopes: &[&str]) -> String {
        self.sign(&claims(tenant, scopes))
    }

    /// A caller for a fresh tenant with every scope.
    pub fn tenant(&self) -> Caller<'_> {
        self.caller(uuid(), ALL_SCOPES)
    }

    /// A caller for `tenant` with `scopes`.
    pub fn caller(&self, tenant: Uuid, scopes: &[&str]) -> Caller<'_> {
        Caller {
            app: self,
            tenant,
            token: self.token(tenant, scopes),
        }
    }

    /// Raw POST with optional token and idempotency key.
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        key: Option<&str>,
        body: &Value,
    ) -> reqwest::Response {
        let mut req = self
            .client
            .post(format!("{}{path}", self.address))
            .json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(k) = key {
            req = req.header("Idempotency-Key", k);
        }
        req.send().await.expect("request sent")
    }

    /// Raw GET with optional token.
    pub async fn get_raw(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut req = self.client.get(format!("{}{path}", self.address));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send().await.expect("request sent")
    }

    /// A read-only connection to the database file, for counting rows.
    pub fn db(&self) -> rusqlite::Connection {
        rusqlite::Connection::open_with_flags(
            &self.db_path,
            rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
        )
        .expect("open db")
    }

    /// `SELECT count(*) FROM table`.
    pub fn count(&self, table: &str) -> i64 {
        self.db()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    /// Stops the server gracefully.
    pub async fn stop(&self) {
        self.handle.stop(true).await;
    }
}

/// An authenticated caller (one tenant, one token).
pub struct Caller<'a> {
    pub app: &'a TestApp,
    pub tenant: Uuid,
    pub token: String,
}

/// A response read fully.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        Answer {
            status,
            headers,
            text,
        }
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// The problem `code` (asserting problem+json).
    pub fn code(&self) -> String {
        assert_eq!(
            self.header("content-type"),
            Some("application/problem+json"),
            "{}",
            self.text
        );
        self.json()["code"].as_str().expect("code").to_owned()
    }

    /// The `field` of every `errors[]` item.
    pub fn error_fields(&self) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// A valid disbursement body for a new loan.
pub fn disbursement_body(loan: Uuid, borrower: Uuid, amount: &str) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": amount,
        "currency": "USD",
        "effective_at": "2026-11-01",
        "method": "ach",
        "destination_ref": "acct-123",
        "metadata": { "channel": "api" }
    })
}

/// A fresh idempotency key.
pub fn key(kind: &str) -> String {
    format!("{kind}:{}", uuid())
}

impl Caller<'_> {
    pub async fn post(&self, path: &str, key: &str, body: &Value) -> Answer {
        Answer::from(
            self.app
                .post_raw(path, Some(&self.token), Some(key), body)
                .await,
        )
        .await
    }

    pub async fn get(&self, path: &str) -> Answer {
        Answer::from(self.app.get_raw(path, Some(&self.token)).await).await
    }

    pub async fn post_disbursement(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/disbursements", key, body).await
    }

    pub async fn post_payment(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/payments", key, body).await
    }

    pub async fn post_fee(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/fees", key, body).await
    }

    pub async fn post_accruals(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/accruals/batch", key, body).await
    }

    pub async fn post_reversal(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/reversals", key, body).await
    }

    pub async fn post_settlement(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/disbursement-settlements", key, body).await
    }

    pub async fn post_payment_return(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/payment-returns", key, body).await
    }

    pub async fn post_fee_waiver(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/fee-waivers", key, body).await
    }

    pub async fn post_charge_off(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/charge-offs", key, body).await
    }

    pub async fn post_adjustment(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/adjustments", key, body).await
    }

    pub async fn post_period_close(&self, key: &str, body: &Value) -> Answer {
        self.post("/v1/period-closes", key, body).await
    }

    /// `GET /v1/trial-balance?currency={currency}[&as_of_date={as_of}]`.
    pub async fn get_trial_balance(&self, currency: &str, as_of: Option<&str>) -> Answer {
        let path = match as_of {
            Some(date) => format!("/v1/trial-balance?currency={currency}&as_of_date={date}"),
            None => format!("/v1/trial-balance?currency={currency}"),
        };
        self.get(&path).await
    }

    /// `GET /v1/accounts/{code}/balance?currency={currency}`.
    pub async fn get_account_balance(&self, code: &str, currency: &str) -> Answer {
        self.get(&format!("/v1/accounts/{code}/balance?currency={currency}"))
            .await
    }

    pub async fn get_loan_balance(&self, loan: Uuid) -> Answer {
        self.get(&format!("/v1/loans/{loan}/balance")).await
    }

    pub async fn get_entry(&self, entry: &str) -> Answer {
        self.get(&format!("/v1/journal-entries/{entry}")).await
    }

    /// Disburses `amount` USD to a new loan; returns (loan, borrower, 201 body).
    pub async fn open_loan(&self, amount: &str) -> (Uuid, Uuid, Value) {
        let (loan, borrower) = (uuid(), uuid());
        let a = self
            .post_disbursement(&key("disb"), &disbursement_body(loan, borrower, amount))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        (loan, borrower, a.json())
    }
}

/// The real `hpts` executable on a given database, for crash tests.
pub struct BinaryApp {
    pub child: Child,
    pub address: String,
}

/// Finds a free loopback port.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Starts `hpts serve` (the compiled binary) and waits until it is ready.
pub fn spawn_binary(db: &Path, jwks: &Path, port: u16) -> BinaryApp {
    let mut args = serve_args(db, jwks, &[]);
    args.drain(0..1);
    let listen_at = args
        .iter()
        .position(|a| a == "127.0.0.1:0")
        .expect("listen arg");
    args[listen_at] = format!("127.0.0.1:{port}");
    let child = Command::new(env!("CARGO_BIN_EXE_hpts"))
        .args(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn hpts");
    let address = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    loop {
        if let Ok(r) = reqwest::blocking::get(format!("{address}/v1/health/ready"))
            && r.status().as_u16() == 200
        {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "hpts did not become ready"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    BinaryApp { child, address }
}

/// The body of a first (201, not replayed) answer.
pub fn created(a: &Answer) -> Value {
    assert_eq!(a.status, 201, "{}", a.text);
    assert_eq!(a.header("idempotent-replayed"), None, "{}", a.text);
    a.json()
}

/// A string field of a body.
pub fn text(v: &Value, field: &str) -> String {
    v[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} is not a string: {v}"))
        .to_owned()
}

/// A money field of a body.
pub fn minor(v: &Value, field: &str) -> i64 {
    text(v, field)
        .parse()
        .unwrap_or_else(|e| panic!("{field} is not an integer ({e}): {v}"))
}

/// Asserts the exact set of keys of a JSON object.
pub fn assert_keys(v: &Value, keys: &[&str]) {
    let actual: BTreeSet<&str> = v
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {v}"))
        .keys()
        .map(String::as_str)
        .collect();
    let expected: BTreeSet<&str> = keys.iter().copied().collect();
    assert_eq!(actual, expected, "{v}");
}

/// Runs `hpts verify --database <file>` (the built binary, read-only beside the running
/// service) on the app's database.
pub fn run_verify(app: &TestApp) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_hpts"))
        .args(["verify", "--database"])
        .arg(&app.db_path)
        .env_remove("HPTS_DATABASE")
        .env_remove("HPTS_DATA_DIR")
        .output()
        .expect("run hpts verify")
}

/// `hpts verify --database <file>` exits 0.
pub fn assert_verify_passes(app: &TestApp, step: &str) {
    let out = run_verify(app);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{step}: hpts verify failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
