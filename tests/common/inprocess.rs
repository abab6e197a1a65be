//! The production wiring in the test's own runtime: `spawn_app()` starts it on port 0 with a
//! temp-file database and a test JWKS; `app.tenant()` gives a caller with a token for a fresh
//! tenant; one method per endpoint; answers read fully, and assertions on them.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use clap::Parser;
use ed25519_dalek::SigningKey;
use hpts::app::Application;
use hpts::auth::dev::{generate_signing_key, sign};
use hpts::config::{Cli, Command as CliCommand, Settings};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use super::db::read_only;
use super::server::{self, serve_flags, test_log};
use super::tokens::{ALL_SCOPES, KID, claims, key, uuid, write_jwks};

/// The tables every write touches.
pub const WRITTEN_TABLES: [&str; 5] = [
    "events",
    "journal_entries",
    "journal_lines",
    "idempotency_keys",
    "loans",
];

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub dir: TempDir,
    pub db_path: PathBuf,
    pub jwks_path: PathBuf,
    pub signing: SigningKey,
    pub client: reqwest::Client,
    pub handle: actix_web::dev::ServerHandle,
}

/// Serve arguments (from the program name on) for an in-process test instance on port 0.
pub fn serve_args(db: &Path, jwks: &Path, extra: &[&str]) -> Vec<String> {
    let mut args = vec!["hpts".to_owned()];
    args.extend(serve_flags("127.0.0.1:0", db, jwks, &test_log(), extra));
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
    spawn_app_trusting(None, extra).await
}

/// Starts the app with extra `serve` flags; `jwks` overrides the JWKS location (a URL or a
/// file; default: a file with the app's own key).
pub async fn spawn_app_trusting(jwks: Option<&str>, extra: &[&str]) -> TestApp {
    spawn_app_in(tempfile::tempdir().expect("tempdir"), jwks, extra).await
}

/// [`spawn_app_trusting`] on `dir/ledger.db` (created if missing).
pub async fn spawn_app_in(dir: TempDir, jwks: Option<&str>, extra: &[&str]) -> TestApp {
    let db_path = dir.path().join("ledger.db");
    let jwks_path = dir.path().join("jwks.json");
    let signing = generate_signing_key().expect("key");
    write_jwks(&jwks_path, &[(KID, &signing)]);
    let jwks_arg = jwks.map_or_else(|| jwks_path.clone(), PathBuf::from);
    let settings = settings_from(&serve_args(&db_path, &jwks_arg, extra));
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

    /// POST with an optional token and an idempotency key, read fully.
    pub async fn post_as(
        &self,
        token: Option<&str>,
        path: &str,
        key: &str,
        body: &Value,
    ) -> Answer {
        Answer::from(self.post_raw(path, token, Some(key), body).await).await
    }

    /// GET with an optional token, read fully.
    pub async fn get_as(&self, token: Option<&str>, path: &str) -> Answer {
        Answer::from(self.get_raw(path, token).await).await
    }

    /// A read-only connection to the database file, for counting rows.
    pub fn db(&self) -> rusqlite::Connection {
        read_only(&self.db_path)
    }

    /// `SELECT count(*) FROM table`.
    pub fn count(&self, table: &str) -> i64 {
        self.db()
            .query_row(&format!("SELECT count(*) FROM {table}"), [], |r| r.get(0))
            .expect("count")
    }

    /// Rows in every table a write touches ([`WRITTEN_TABLES`]), so "nothing was written" can
    /// be checked.
    pub fn written(&self) -> [i64; 5] {
        WRITTEN_TABLES.map(|t| self.count(t))
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
        self.error_items("field")
    }

    /// The `code` of every `errors[]` item.
    pub fn error_codes(&self) -> Vec<String> {
        self.error_items("code")
    }

    /// The string `key` of every `errors[]` item ("" where it has none).
    fn error_items(&self, key: &str) -> Vec<String> {
        self.json()["errors"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|e| e[key].as_str().unwrap_or_default().to_owned())
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

/// A valid USD late fee body.
pub fn fee_body(loan: Uuid, amount: &str) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "fee_type": "late",
        "amount_minor": amount,
        "currency": "USD",
        "effective_at": "2026-11-10",
        "metadata": { "reason": "payment_missed", "days_late": 12 }
    })
}

/// A valid USD payment body.
pub fn payment_body(loan: Uuid, borrower: Uuid, amount: &str) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": amount,
        "currency": "USD",
        "effective_at": "2026-11-15",
        "source_method": "ach",
        "metadata": { "channel": "lockbox" }
    })
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

/// The fields of `GET /v1/loans/{id}/balance`, in the order the answer (and its schema's
/// `required` list) has them.
pub const LOAN_BALANCE_KEYS: [&str; 15] = [
    "loan_id",
    "borrower_id",
    "currency",
    "status",
    "as_of_date",
    "principal_outstanding_minor",
    "interest_receivable_minor",
    "fees_receivable_minor",
    "suspense_minor",
    "total_exposure_minor",
    "disbursed_total_minor",
    "paid_total_minor",
    "charged_off_minor",
    "recovered_minor",
    "last_activity_at",
];

/// The checks of `GET /v1/reconciliation/status` (and `hpts verify`), in report order.
pub const RECONCILIATION_CHECKS: [&str; 7] = [
    "trial_balance",
    "entries_balanced",
    "loan_subledger_matches_gl",
    "materialised_balances_match_lines",
    "hash_chain_intact",
    "append_only_guard_present",
    "closed_periods_unchanged",
];

/// A problem answer: status and `code` (asserting problem+json).
pub fn assert_problem(a: &Answer, status: u16, code: &str) {
    assert_eq!(a.status, status, "{}", a.text);
    assert_eq!(a.code(), code, "{}", a.text);
}

/// The body of a problem answer: its `status`, and a non-empty `type`, `title` and `detail`.
pub fn assert_problem_body(a: &Answer, status: u16) {
    let body = a.json();
    assert_eq!(body["status"], json!(status), "{}", a.text);
    for field in ["type", "title", "detail"] {
        assert!(
            body[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field} missing: {}",
            a.text
        );
    }
}

/// [`assert_problem`] and [`assert_problem_body`].
pub fn assert_full_problem(a: &Answer, status: u16, code: &str) {
    assert_problem(a, status, code);
    assert_problem_body(a, status);
}

/// 401 `unauthenticated` with a `Bearer` challenge, as problem+json.
pub fn assert_unauthenticated(a: &Answer, what: &str) {
    assert_eq!(a.status, 401, "{what}: {}", a.text);
    assert_eq!(a.code(), "unauthenticated", "{what}");
    let challenge = a
        .header("www-authenticate")
        .unwrap_or_else(|| panic!("{what}: no WWW-Authenticate"));
    assert!(challenge.starts_with("Bearer"), "{what}: {challenge}");
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
    server::run_verify(&app.db_path)
}

/// `hpts verify --database <file>` exits 0.
pub fn assert_verify_passes(app: &TestApp, step: &str) {
    server::assert_verify_passes(&app.db_path, step);
}
