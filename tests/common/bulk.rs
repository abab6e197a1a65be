//! Set-up and load helpers shared by the fairness tests (`read_fairness.rs`, `fairness.rs`):
//! a server started on a given database file with the production wiring, tenants with many
//! loans opened through the API, accrual batches over them, and latency summaries. Loopback
//! only; every request has a timeout.

use std::path::Path;
use std::time::{Duration, Instant};

use futures_util::{StreamExt, stream};
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use super::inprocess::{TestApp, spawn_app_in};
use super::tokens::{ALL_SCOPES, key, uuid};

/// Principal of every loan the helpers open.
pub const PRINCIPAL: i64 = 1_000_000;

/// A running service on a database file of its own directory, with a client for many
/// requests in flight.
pub struct Server {
    pub app: TestApp,
    pub client: reqwest::Client,
}

impl Server {
    /// Starts the production wiring (`Application::build`) on `dir/ledger.db` (created if
    /// missing) with extra `serve` flags.
    pub async fn start(dir: TempDir, extra: &[&str]) -> Server {
        Server {
            app: spawn_app_in(dir, None, extra).await,
            client: reqwest::Client::builder()
                .timeout(Duration::from_mins(2))
                .pool_max_idle_per_host(256)
                .build()
                .expect("client"),
        }
    }

    /// Starts a server on a consistent copy of `template` (`VACUUM INTO`).
    pub async fn start_on_copy(template: &Path, extra: &[&str]) -> Server {
        let dir = tempfile::tempdir().expect("tempdir");
        hpts::store::backup_file(template, &dir.path().join("ledger.db")).expect("copy");
        Server::start(dir, extra).await
    }

    /// A bearer token for `tenant` with every scope, signed by this server's trusted key.
    pub fn token(&self, tenant: Uuid) -> String {
        self.app.token(tenant, ALL_SCOPES)
    }

    /// POST with a fresh idempotency key: (status, body).
    pub async fn post(&self, token: &str, path: &str, body: &Value) -> (u16, String) {
        let r = self
            .client
            .post(format!("{}{path}", self.app.address))
            .bearer_auth(token)
            .header("Idempotency-Key", key("bulk"))
            .json(body)
            .send()
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
        let status = r.status().as_u16();
        (status, r.text().await.expect("body"))
    }

    /// GET: (status, `Retry-After`, body).
    pub async fn get(&self, token: &str, path: &str) -> (u16, Option<String>, String) {
        let r = self
            .client
            .get(format!("{}{path}", self.app.address))
            .bearer_auth(token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let status = r.status().as_u16();
        let retry_after = r
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        (status, retry_after, r.text().await.expect("body"))
    }

    /// Stops the server gracefully.
    pub async fn stop(&self) {
        self.app.stop().await;
    }
}

/// A disbursement of [`PRINCIPAL`] opening `loan`.
pub fn disbursement(loan: Uuid) -> Value {
    json!({
        "loan_id": loan.to_string(),
        "borrower_id": uuid().to_string(),
        "amount_minor": PRINCIPAL.to_string(),
        "currency": "USD",
        "effective_at": "2026-01-05",
        "method": "ach",
    })
}

/// Opens `count` loans for `token`'s tenant, `in_flight` requests at a time.
pub async fn open_loans(server: &Server, token: &str, count: usize, in_flight: usize) -> Vec<Uuid> {
    let loans: Vec<Uuid> = (0..count).map(|_| uuid()).collect();
    let statuses: Vec<(u16, String)> = stream::iter(&loans)
        .map(|loan| async move {
            server
                .post(token, "/v1/disbursements", &disbursement(*loan))
                .await
        })
        .buffer_unordered(in_flight)
        .collect()
        .await;
    for (status, text) in statuses {
        assert_eq!(status, 201, "disbursement: {text}");
    }
    loans
}

/// An accrual batch of 1 minor unit of interest on each loan (whose principal is still
/// [`PRINCIPAL`]) for `date`.
pub fn accrual_batch(loans: &[Uuid], date: &str) -> Value {
    let items: Vec<Value> = loans
        .iter()
        .map(|loan| {
            json!({
                "loan_id": loan.to_string(),
                "outstanding_principal_minor": PRINCIPAL.to_string(),
                "interest_minor": "1",
            })
        })
        .collect();
    json!({
        "program_id": uuid().to_string(),
        "accrual_date": date,
        "day_count_convention": "ACT_365",
        "loans": items,
    })
}

/// The `n`-th accrual date (one day apart from 2026-02-01).
pub fn accrual_date(n: usize) -> String {
    let day = time::macros::date!(2026 - 02 - 01)
        + time::Duration::days(i64::try_from(n).expect("small"));
    hpts::clock::format_date(day)
}

/// Posts the `n`-th accrual batch over `loans`: (status, body).
pub async fn post_accrual(server: &Server, token: &str, loans: &[Uuid], n: usize) -> (u16, String) {
    server
        .post(
            token,
            "/v1/accruals/batch",
            &accrual_batch(loans, &accrual_date(n)),
        )
        .await
}

/// Posts accrual batches `first..first + count` over `loans`, asserting each is 201.
pub async fn accrue(server: &Server, token: &str, loans: &[Uuid], first: usize, count: usize) {
    for n in first..first + count {
        let (status, text) = post_accrual(server, token, loans, n).await;
        assert_eq!(status, 201, "accrual batch {n}: {text}");
    }
}

/// `GET /v1/reconciliation/status`: (status, `Retry-After`, body, time taken).
pub async fn reconcile(server: &Server, token: &str) -> (u16, Option<String>, String, Duration) {
    let started = Instant::now();
    let (status, retry_after, text) = server.get(token, "/v1/reconciliation/status").await;
    (status, retry_after, text, started.elapsed())
}

/// The problem `code` of a body, if it is one.
pub fn problem_code(text: &str) -> Option<String> {
    serde_json::from_str::<Value>(text)
        .ok()
        .and_then(|v| v["code"].as_str().map(str::to_owned))
}

/// Latency figures of one kind of request.
#[derive(Debug, Clone, Copy)]
pub struct Summary {
    pub count: usize,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

/// Nearest-rank percentiles over every sample.
pub fn summarise(samples: &mut [Duration]) -> Summary {
    samples.sort_unstable();
    let rank = |p: f64| {
        if samples.is_empty() {
            return Duration::ZERO;
        }
        #[expect(
            clippy::cast_possible_truncation,
            clippy::cast_sign_loss,
            clippy::cast_precision_loss,
            reason = "a rank among at most a few hundred thousand samples"
        )]
        let i = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len()) - 1;
        samples[i]
    };
    Summary {
        count: samples.len(),
        p50: rank(0.50),
        p99: rank(0.99),
        max: samples.last().copied().unwrap_or_default(),
    }
}

impl std::fmt::Display for Summary {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "count {}, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            self.count,
            self.p50.as_secs_f64() * 1e3,
            self.p99.as_secs_f64() * 1e3,
            self.max.as_secs_f64() * 1e3
        )
    }
}
