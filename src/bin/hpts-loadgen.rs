//! `hpts-loadgen`: a load generator for a running `hpts` (issue 7).
//!
//! It starts nothing itself. It talks real HTTP to `--url` (loopback only), mints real JWTs with
//! the dev key under `--data-dir` (so it works against `hpts serve --dev --data-dir X`), runs one
//! scenario bounded by `--duration` and `--requests`, and prints a report: throughput, latency
//! percentiles per operation kind and overall, counts by HTTP status, errors, and the server's
//! peak RSS when `--pid` is given. `--json PATH` also writes the report as JSON.
//!
//! Scenarios:
//! - `disburse`: every operation is a disbursement; about one in ten opens a new loan.
//! - `mixed`: a small lender's servicing day. A pool of loans per tenant (plus a segment of
//!   delinquent loans that only charge-offs and recoveries touch), then, per 1000 operations
//!   ([`MIXED`]):
//!   - 265 disbursements, 225 disbursement settlements (most disbursements settle),
//!     200 payments, 68 late fees, 50 accrual batches of 10 loans (principal read with
//!     `GET /v1/loans/{id}/balance` just before; a 422 `principal_mismatch` from a race is
//!     counted as expected, not as an error), 150 balance reads: today's traffic;
//!   - 17 payment returns (about 2 per 100 writes; most `insufficient_funds`, half of those
//!     with an `nsf_fee_minor`), 9 fee waivers (about 1 per 100 writes; a 422
//!     `waiver_exceeds_outstanding`, when a payment paid the fee off first, is expected),
//!     4 charge-offs and 8 recoveries (payments on charged-off loans), and 4 manual
//!     adjustments (a clearing correction, Dr 1000 / Cr 2000).
//!
//!   Settlements, returns and waivers name events from earlier responses of the same run,
//!   kept in small bounded pools per tenant; each id is taken out of its pool when used, so no
//!   event is settled, returned or waived twice (no `already_settled`, `already_returned`). While
//!   a pool is still empty the operation posts the event it would refer to instead (a
//!   disbursement, a payment, a fee); a recovery before the first charge-off is a payment.
//! - `reads-under-writes`: half the clients read balances, half post disbursements.
//! - `accrual-10k`: 10 000 loans, then ONE accrual batch over all of them.
#![expect(
    clippy::disallowed_methods,
    reason = "a load generator reads the wall clock for token times and mints its own UUIDv7 ids"
)]

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use futures_util::future::join_all;
use hpts::auth::Scope;
use hpts::auth::dev::DevKey;
use hpts::ledger::accounts::Account;
use parking_lot::Mutex;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde_json::{Value, json};
use uuid::Uuid;

/// Effective date of every disbursement, payment and fee the generator posts.
const EFFECTIVE_AT: &str = "2025-06-02";
/// Loans in one accrual batch of the `mixed` scenario.
const SMALL_BATCH: usize = 10;
/// The late fee each delinquent loan of `mixed` carries before it is charged off, so its
/// charge-off writes off fees as well as principal.
const DELINQUENT_LATE_FEE: u64 = 3_500;
/// Scopes of the SPEC §6c routes (settlements, returns and waivers share the disbursement,
/// payment and fee scopes); tokens carry them besides every scope `hpts` knows, and a server
/// ignores scopes it does not know.
const LIFECYCLE_SCOPES: [&str; 5] = [
    "hpts:disbursements:write",
    "hpts:payments:write",
    "hpts:fees:write",
    "hpts:chargeoffs:write",
    "hpts:adjustments:write",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    /// Disbursements only (a new loan about every 10th).
    Disburse,
    /// Servicing traffic, per 1000 operations: 265 disbursements, 225 settlements, 200 payments,
    /// 68 fees, 50 accrual batches, 150 balance reads, 17 payment returns, 9 fee waivers,
    /// 4 charge-offs, 8 recoveries, 4 manual adjustments.
    Mixed,
    /// Half the clients read balances, half post disbursements.
    ReadsUnderWrites,
    /// One accrual batch over 10 000 loans.
    #[value(name = "accrual-10k")]
    Accrual10k,
}

impl Scenario {
    fn name(self) -> &'static str {
        match self {
            Scenario::Disburse => "disburse",
            Scenario::Mixed => "mixed",
            Scenario::ReadsUnderWrites => "reads-under-writes",
            Scenario::Accrual10k => "accrual-10k",
        }
    }
}

/// Load generator for a running hpts (loopback only).
#[derive(Debug, Parser)]
#[command(name = "hpts-loadgen", version, about)]
struct Args {
    /// Base URL of the running hpts; the host must be loopback (127.0.0.0/8, localhost, `[::1]`).
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    url: String,
    /// Data directory of `hpts serve --dev` (its dev signing key mints the tokens).
    #[arg(long, default_value = "./data")]
    data_dir: PathBuf,
    /// What load to generate.
    #[arg(long, value_enum, default_value = "mixed")]
    scenario: Scenario,
    /// Concurrent clients (one task and one keep-alive connection each).
    #[arg(long, default_value_t = 64)]
    clients: usize,
    /// Measured seconds (after the warmup).
    #[arg(long, default_value_t = 10)]
    duration: u64,
    /// Stop after this many measured operations (an accrual batch with its reads is one).
    #[arg(long)]
    requests: Option<u64>,
    /// Tenants the load is spread over.
    #[arg(long, default_value_t = 4)]
    tenants: usize,
    /// Seconds of load before measuring starts.
    #[arg(long, default_value_t = 0)]
    warmup: u64,
    /// Also write the report as JSON to this file.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Server process id: sample `/proc/<pid>/status` `VmRSS` and report the maximum.
    #[arg(long)]
    pid: Option<u32>,
    /// Loans created per tenant before `mixed` and `reads-under-writes`.
    #[arg(long, default_value_t = 500)]
    pool_loans: usize,
    /// Delinquent loans per tenant opened before `mixed` (a disbursement and a late fee each)
    /// that only its charge-offs and recoveries touch; once they are all charged off, a
    /// charge-off opens its loan first.
    #[arg(long, default_value_t = 200)]
    chargeoff_loans: usize,
    /// Loans in the `accrual-10k` batch.
    #[arg(long, default_value_t = 10_000)]
    accrual_loans: usize,
}

// ---------------------------------------------------------------------------------------------
// Operation kinds, outcomes and statistics
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Disbursement,
    Settlement,
    Payment,
    PaymentReturn,
    /// A payment on a charged-off loan.
    Recovery,
    Fee,
    FeeWaiver,
    ChargeOff,
    Adjustment,
    AccrualBatch,
    BalanceRead,
    /// The balance reads that precede an accrual batch in `mixed`.
    AccrualPrepRead,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Disbursement => "disbursement",
            Kind::Settlement => "settlement",
            Kind::Payment => "payment",
            Kind::PaymentReturn => "payment_return",
            Kind::Recovery => "recovery",
            Kind::Fee => "fee",
            Kind::FeeWaiver => "fee_waiver",
            Kind::ChargeOff => "charge_off",
            Kind::Adjustment => "adjustment",
            Kind::AccrualBatch => "accrual_batch",
            Kind::BalanceRead => "balance_read",
            Kind::AccrualPrepRead => "balance_read_for_accrual",
        }
    }
}

/// How one request ended.
#[derive(Debug)]
enum Outcome {
    /// 2xx.
    Ok(u16),
    /// A refusal the scenario expects (a racing `principal_mismatch` or
    /// `waiver_exceeds_outstanding`).
    Expected(u16),
    /// Anything else: status (or `transport`) and a short description.
    Error(String, String),
}

/// One finished request.
struct Sample {
    kind: Kind,
    latency: Duration,
    outcome: Outcome,
}

#[derive(Debug, Default)]
struct Stats {
    latencies: BTreeMap<Kind, Vec<u32>>,
    statuses: BTreeMap<String, u64>,
    errors: u64,
    expected: u64,
    error_samples: Vec<String>,
}

const MAX_ERROR_SAMPLES: usize = 10;

impl Stats {
    fn record(&mut self, sample: Sample) {
        let micros = u32::try_from(sample.latency.as_micros()).unwrap_or(u32::MAX);
        self.latencies.entry(sample.kind).or_default().push(micros);
        let status = match sample.outcome {
            Outcome::Ok(s) => s.to_string(),
            Outcome::Expected(s) => {
                self.expected += 1;
                s.to_string()
            }
            Outcome::Error(status, detail) => {
                self.errors += 1;
                if self.error_samples.len() < MAX_ERROR_SAMPLES {
                    self.error_samples
                        .push(format!("{} {status}: {detail}", sample.kind.name()));
                }
                status
            }
        };
        *self.statuses.entry(status).or_default() += 1;
    }

    fn merge(&mut self, other: Stats) {
        for (kind, mut v) in other.latencies {
            self.latencies.entry(kind).or_default().append(&mut v);
        }
        for (status, n) in other.statuses {
            *self.statuses.entry(status).or_default() += n;
        }
        self.errors += other.errors;
        self.expected += other.expected;
        for s in other.error_samples {
            if self.error_samples.len() < MAX_ERROR_SAMPLES {
                self.error_samples.push(s);
            }
        }
    }

    fn total(&self) -> usize {
        self.latencies.values().map(Vec::len).sum()
    }
}

/// Latency summary of one sorted set of samples (microseconds in, milliseconds out).
struct Summary {
    count: usize,
    p50: f64,
    p95: f64,
    p99: f64,
    max: f64,
}

/// Nearest-rank percentile (`permille` = 500 for p50, 990 for p99) of sorted microseconds, in ms.
fn percentile(sorted: &[u32], permille: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    // The smallest sample with at least `permille`/1000 of the samples at or below it.
    let rank = (permille * sorted.len())
        .div_ceil(1000)
        .clamp(1, sorted.len());
    f64::from(sorted[rank - 1]) / 1000.0
}

fn to_f64(n: usize) -> f64 {
    // Counts in a load run stay far below 2^52, so this is exact.
    u32::try_from(n).map_or(f64::from(u32::MAX), f64::from)
}

fn summarise(mut v: Vec<u32>) -> Summary {
    v.sort_unstable();
    Summary {
        count: v.len(),
        p50: percentile(&v, 500),
        p95: percentile(&v, 950),
        p99: percentile(&v, 990),
        max: v.last().map_or(0.0, |m| f64::from(*m) / 1000.0),
    }
}

// ---------------------------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------------------------

/// Refuses any URL whose host is not loopback.
fn loopback_base(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw).map_err(|e| format!("--url {raw:?} is not a URL: {e}"))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "--url must be http:// or https://, not {}",
            url.scheme()
        ));
    }
    let host = url
        .host_str()
        .ok_or_else(|| format!("--url {raw:?} has no host"))?;
    let bare = host.trim_start_matches('[').trim_end_matches(']');
    let loopback = host.eq_ignore_ascii_case("localhost")
        || bare.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback());
    if !loopback {
        return Err(format!(
            "--url host {host} is not loopback (127.0.0.0/8, localhost, [::1]); refusing"
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[derive(Debug, Clone)]
struct Loan {
    id: String,
    borrower: String,
}

impl Loan {
    fn new() -> Self {
        Loan {
            id: Uuid::now_v7().to_string(),
            borrower: Uuid::now_v7().to_string(),
        }
    }
}

struct Tenant {
    auth: HeaderValue,
    /// Loans created during setup (empty for `disburse`).
    pool: Vec<Loan>,
    /// `mixed`: delinquent loans created during setup for charge-offs, never in `pool`, so no
    /// disbursement, fee or accrual of the run meets a charged-off loan.
    delinquent: Vec<Loan>,
    /// Index of the next `delinquent` loan to charge off (each is charged off once).
    next_delinquent: AtomicUsize,
    /// `mixed`: ids from this run's responses that later events refer to.
    recent: Mutex<Recent>,
    /// Days after the opening date of this tenant's next accrual batch (one date per batch, so two
    /// batches never accrue the same loan for the same date).
    next_accrual_day: AtomicU64,
}

impl Tenant {
    fn new(auth: HeaderValue, pool: Vec<Loan>, delinquent: Vec<Loan>) -> Self {
        Tenant {
            auth,
            pool,
            delinquent,
            next_delinquent: AtomicUsize::new(0),
            recent: Mutex::new(Recent::default()),
            next_accrual_day: AtomicU64::new(0),
        }
    }
}

/// How many ids each pool of [`Recent`] keeps; the oldest falls out when a new one comes in.
const RECENT_CAP: usize = 1024;

/// Bounded pools of event ids (and loans) from earlier `mixed` responses of one tenant. Each
/// settlement, return or waiver takes its id out, so no id is used twice. The lock is held only
/// to push or pop, never across a request.
#[derive(Debug, Default)]
struct Recent {
    /// Disbursements of pool loans not yet settled, oldest first (settled oldest first: the
    /// bank confirms them in order).
    unsettled: VecDeque<String>,
    /// Ordinary payments on pool loans not yet returned, oldest first.
    payments: VecDeque<String>,
    /// Late fees on pool loans not yet waived, with their amounts, oldest first (waived newest
    /// first: a courtesy waiver follows the fee closely).
    fees: VecDeque<(String, u64)>,
    /// Loans charged off in this run, for recoveries (not taken out: a charged-off loan keeps
    /// receiving the occasional recovery).
    charged_off: VecDeque<Loan>,
}

fn push_bounded<T>(pool: &mut VecDeque<T>, item: T) {
    if pool.len() >= RECENT_CAP {
        pool.pop_front();
    }
    pool.push_back(item);
}

struct Api {
    client: reqwest::Client,
    base: String,
    /// Prefix of every idempotency key of this run.
    run: String,
    seq: AtomicU64,
}

impl Api {
    fn key(&self) -> String {
        format!(
            "lg-{}-{}",
            self.run,
            self.seq.fetch_add(1, Ordering::Relaxed)
        )
    }

    /// Sends one request; returns status and body, or a transport error.
    async fn send(&self, req: reqwest::RequestBuilder) -> Result<(u16, Vec<u8>), String> {
        let resp = req.send().await.map_err(|e| transport_error(&e))?;
        let status = resp.status().as_u16();
        let body = resp.bytes().await.map_err(|e| transport_error(&e))?;
        Ok((status, body.to_vec()))
    }

    async fn post(
        &self,
        tenant: &Tenant,
        path: &str,
        body: String,
        timeout: Option<Duration>,
    ) -> Timed {
        let mut req = self
            .client
            .post(format!("{}{path}", self.base))
            .header(AUTHORIZATION, tenant.auth.clone())
            .header(CONTENT_TYPE, "application/json")
            .header("idempotency-key", self.key())
            .body(body);
        if let Some(t) = timeout {
            req = req.timeout(t);
        }
        let started = Instant::now();
        let result = self.send(req).await;
        Timed {
            latency: started.elapsed(),
            result,
        }
    }

    async fn get(&self, tenant: &Tenant, path: &str) -> Timed {
        let req = self
            .client
            .get(format!("{}{path}", self.base))
            .header(AUTHORIZATION, tenant.auth.clone());
        let started = Instant::now();
        let result = self.send(req).await;
        Timed {
            latency: started.elapsed(),
            result,
        }
    }
}

fn transport_error(e: &reqwest::Error) -> String {
    let mut s = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        let _ = write!(s, ": {inner}");
        source = inner.source();
    }
    s
}

/// A finished request with its latency.
struct Timed {
    latency: Duration,
    result: Result<(u16, Vec<u8>), String>,
}

impl Timed {
    /// Classifies the answer; `expected` lists problem codes that count as expected refusals.
    fn sample(&self, kind: Kind, expected: &[&str]) -> Sample {
        let outcome = match &self.result {
            Err(e) => Outcome::Error("transport".into(), e.clone()),
            Ok((status, _)) if (200..300).contains(status) => Outcome::Ok(*status),
            Ok((status, body)) => {
                let problem: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
                let code = problem.get("code").and_then(Value::as_str).unwrap_or("");
                if expected.contains(&code) {
                    Outcome::Expected(*status)
                } else {
                    let detail = problem.get("detail").and_then(Value::as_str).unwrap_or("");
                    let mut detail = format!("{code} {detail}");
                    detail.truncate(200);
                    Outcome::Error(status.to_string(), detail)
                }
            }
        };
        Sample {
            kind,
            latency: self.latency,
            outcome,
        }
    }

    fn is_success(&self) -> bool {
        matches!(&self.result, Ok((s, _)) if (200..300).contains(s))
    }

    /// The string field `field` (an event id) of a 2xx answer.
    fn event_id(&self, field: &str) -> Option<String> {
        self.json()
            .filter(|_| self.is_success())
            .and_then(|v| v.get(field).and_then(Value::as_str).map(str::to_owned))
    }

    fn json(&self) -> Option<Value> {
        self.result
            .as_ref()
            .ok()
            .and_then(|(_, body)| serde_json::from_slice(body).ok())
    }

    fn describe(&self) -> String {
        match &self.result {
            Err(e) => format!("transport error: {e}"),
            Ok((status, body)) => format!(
                "HTTP {status}: {}",
                String::from_utf8_lossy(&body[..body.len().min(300)])
            ),
        }
    }
}

fn disbursement_body(loan: &Loan, amount: u64) -> String {
    json!({
        "loan_id": loan.id,
        "borrower_id": loan.borrower,
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": EFFECTIVE_AT,
        "method": "ach",
    })
    .to_string()
}

fn payment_body(loan: &Loan, amount: u64) -> String {
    json!({
        "loan_id": loan.id,
        "borrower_id": loan.borrower,
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": EFFECTIVE_AT,
        "source_method": "ach",
    })
    .to_string()
}

fn fee_body(loan: &Loan, amount: u64) -> String {
    json!({
        "loan_id": loan.id,
        "fee_type": "late",
        "amount_minor": amount.to_string(),
        "currency": "USD",
        "effective_at": EFFECTIVE_AT,
    })
    .to_string()
}

fn settlement_body(disbursement_event_id: &str) -> String {
    json!({
        "disbursement_event_id": disbursement_event_id,
        "effective_at": EFFECTIVE_AT,
        "bank_account_ref": "operating-001",
    })
    .to_string()
}

/// Why a payment came back, with its ACH return code, and whether an NSF fee is charged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ReturnReason {
    reason: &'static str,
    code: &'static str,
    nsf_fee: bool,
}

/// Picks a return reason the way ACH returns of consumer loan payments are spread: most are
/// insufficient funds (R01), half of those with the lender's NSF fee; then closed accounts (R02),
/// stopped payments (R08), unlocatable accounts (R03) and unauthorized debits (R10).
fn return_reason(roll: usize) -> ReturnReason {
    let (reason, code, nsf_fee) = match roll % 20 {
        0..6 => ("insufficient_funds", "R01", true),
        6..12 => ("insufficient_funds", "R01", false),
        12..15 => ("account_closed", "R02", false),
        15..17 => ("stopped", "R08", false),
        17..19 => ("no_account", "R03", false),
        _ => ("unauthorized", "R10", false),
    };
    ReturnReason {
        reason,
        code,
        nsf_fee,
    }
}

/// The NSF fee a returned payment carries when [`ReturnReason::nsf_fee`] is set.
const NSF_FEE_MINOR: u64 = 2_500;

fn payment_return_body(payment_event_id: &str, why: ReturnReason) -> String {
    let mut body = json!({
        "payment_event_id": payment_event_id,
        "return_reason": why.reason,
        "return_code": why.code,
        "effective_at": EFFECTIVE_AT,
    });
    if why.nsf_fee {
        body["nsf_fee_minor"] = json!(NSF_FEE_MINOR.to_string());
    }
    body.to_string()
}

/// A waiver of the whole waivable amount, or of `amount` when given.
fn fee_waiver_body(fee_event_id: &str, amount: Option<u64>) -> String {
    let mut body = json!({
        "fee_event_id": fee_event_id,
        "reason": "Courtesy waiver: first late payment",
        "effective_at": EFFECTIVE_AT,
    });
    if let Some(amount) = amount {
        body["amount_minor"] = json!(amount.to_string());
    }
    body.to_string()
}

fn chargeoff_body(loan: &Loan, reason_code: &str) -> String {
    json!({
        "loan_id": loan.id,
        "effective_at": EFFECTIVE_AT,
        "reason_code": reason_code,
    })
    .to_string()
}

/// A manual adjustment as an accountant posts one. The chart has no bank-charge expense account,
/// and the loan control accounts (1100, 1200, 1300, 2100) cannot be adjusted, so the entry is a
/// clearing correction: the bank refunded a duplicate debit on a settled disbursement, so cash
/// (1000) comes back up and disbursement clearing (2000) holds it until the duplicate is
/// resolved. Dr 1000 / Cr 2000, both in USD: balanced, and only accounts adjustments may use.
fn adjustment_body(amount: u64) -> String {
    let amount = amount.to_string();
    json!({
        "effective_at": EFFECTIVE_AT,
        "description": "Clearing correction: bank refunded a duplicate disbursement debit",
        "lines": [
            {"account_code": Account::Cash.code(), "direction": "DR", "amount_minor": amount, "currency": "USD"},
            {"account_code": Account::DisbursementClearing.code(), "direction": "CR", "amount_minor": amount, "currency": "USD"},
        ],
    })
    .to_string()
}

fn accrual_body(program: &str, date: &str, loans: &[(&Loan, String)]) -> String {
    let items: Vec<Value> = loans
        .iter()
        .map(|(loan, principal)| {
            json!({"loan_id": loan.id, "outstanding_principal_minor": principal, "interest_minor": "1"})
        })
        .collect();
    json!({
        "program_id": program,
        "accrual_date": date,
        "day_count_convention": "ACT_365",
        "loans": items,
    })
    .to_string()
}

/// `YYYY-MM-DD` of `days` after [`EFFECTIVE_AT`], the date every loan opens: an accrual may not
/// be dated before its loan's first disbursement.
fn day_string(days: u64) -> String {
    let opening =
        time::Date::from_calendar_date(2025, time::Month::June, 2).unwrap_or(time::Date::MIN);
    let days = i64::try_from(days).unwrap_or(i64::MAX);
    let date = opening
        .checked_add(time::Duration::days(days))
        .unwrap_or(time::Date::MAX);
    format!(
        "{:04}-{:02}-{:02}",
        date.year(),
        u8::from(date.month()),
        date.day()
    )
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// xorshift64*: a small, fast, good-enough generator for picking operations and loans.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform-enough in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX).max(1);
        usize::try_from(self.next() % n64).unwrap_or(0)
    }

    /// Uniform-enough in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

struct Shared {
    api: Arc<Api>,
    scenario: Scenario,
    tenants: Vec<Tenant>,
    program: String,
    measure_from: Instant,
    end: Instant,
    cap: Option<u64>,
    issued: AtomicU64,
    seed: u64,
}

impl Shared {
    fn tenant_of(&self, client: usize) -> &Tenant {
        &self.tenants[(client / 2) % self.tenants.len()]
    }
}

/// One client: one task issuing one operation at a time until the time or the cap runs out.
async fn client(shared: Arc<Shared>, index: usize) -> Stats {
    let mut stats = Stats::default();
    let mut rng =
        Rng::new(shared.seed ^ (u64::try_from(index).unwrap_or(0) + 1).wrapping_mul(0x1000_0001));
    let tenant = shared.tenant_of(index);
    let mut own_loans: Vec<Loan> = Vec::new();
    let reader = index.is_multiple_of(2);
    let mut samples: Vec<Sample> = Vec::with_capacity(SMALL_BATCH + 1);
    loop {
        let now = Instant::now();
        if now >= shared.end {
            break;
        }
        let measuring = now >= shared.measure_from;
        if measuring
            && let Some(cap) = shared.cap
            && shared.issued.fetch_add(1, Ordering::Relaxed) >= cap
        {
            break;
        }
        samples.clear();
        match shared.scenario {
            Scenario::Disburse => {
                let new = own_loans.is_empty() || rng.below(10) == 0;
                if new {
                    own_loans.push(Loan::new());
                }
                let loan = if new {
                    &own_loans[own_loans.len() - 1]
                } else {
                    &own_loans[rng.below(own_loans.len())]
                };
                let amount = if new {
                    1_000_000
                } else {
                    rng.between(1_000, 100_000)
                };
                let t = shared
                    .api
                    .post(
                        tenant,
                        "/v1/disbursements",
                        disbursement_body(loan, amount),
                        None,
                    )
                    .await;
                samples.push(t.sample(Kind::Disbursement, &[]));
            }
            Scenario::ReadsUnderWrites => {
                let loan = &tenant.pool[rng.below(tenant.pool.len())];
                if reader {
                    samples.push(
                        read_balance(&shared.api, tenant, loan)
                            .await
                            .sample(Kind::BalanceRead, &[]),
                    );
                } else {
                    let body = disbursement_body(loan, rng.between(1_000, 100_000));
                    let t = shared
                        .api
                        .post(tenant, "/v1/disbursements", body, None)
                        .await;
                    samples.push(t.sample(Kind::Disbursement, &[]));
                }
            }
            Scenario::Mixed => mixed_operation(&shared, tenant, &mut rng, &mut samples).await,
            Scenario::Accrual10k => unreachable!("accrual-10k runs no client loop"),
        }
        if measuring {
            for s in samples.drain(..) {
                stats.record(s);
            }
        }
    }
    stats
}

async fn read_balance(api: &Api, tenant: &Tenant, loan: &Loan) -> Timed {
    api.get(tenant, &format!("/v1/loans/{}/balance", loan.id))
        .await
}

/// What one `mixed` operation does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MixedOp {
    Disbursement,
    Settlement,
    Payment,
    Fee,
    AccrualBatch,
    PaymentReturn,
    FeeWaiver,
    ChargeOff,
    Recovery,
    Adjustment,
    BalanceRead,
}

/// The `mixed` operation mix, per 1000 operations (the weights add up to 1000). Without the
/// reads, 850 of 1000 operations are writes; per 100 writes that is about 31 disbursements, 26
/// settlements (85 % of disbursements settle), 24 payments, 8 fees, 6 accrual batches, 2 payment
/// returns, 1 fee waiver, 0.5 charge-offs, 1 recovery and 0.5 manual adjustments.
const MIXED: [(MixedOp, usize); 11] = [
    (MixedOp::Disbursement, 265),
    (MixedOp::Settlement, 225),
    (MixedOp::Payment, 200),
    (MixedOp::Fee, 68),
    (MixedOp::AccrualBatch, 50),
    (MixedOp::PaymentReturn, 17),
    (MixedOp::FeeWaiver, 9),
    (MixedOp::ChargeOff, 4),
    (MixedOp::Recovery, 8),
    (MixedOp::Adjustment, 4),
    (MixedOp::BalanceRead, 150),
];

/// The operation of a roll in `0..1000`.
fn mixed_op(roll: usize) -> MixedOp {
    let mut rest = roll;
    for (op, weight) in MIXED {
        if rest < weight {
            return op;
        }
        rest -= weight;
    }
    MixedOp::BalanceRead
}

/// A disbursement on `loan`; a pool loan's disbursement id joins the ones to settle.
async fn disburse(api: &Api, tenant: &Tenant, loan: &Loan, amount: u64, settle: bool) -> Timed {
    let t = api
        .post(
            tenant,
            "/v1/disbursements",
            disbursement_body(loan, amount),
            None,
        )
        .await;
    if settle && let Some(id) = t.event_id("disbursement_event_id") {
        push_bounded(&mut tenant.recent.lock().unsettled, id);
    }
    t
}

/// An ordinary payment on a pool loan; its id joins the ones that may be returned.
async fn pay(api: &Api, tenant: &Tenant, loan: &Loan, amount: u64) -> Sample {
    let t = api
        .post(tenant, "/v1/payments", payment_body(loan, amount), None)
        .await;
    if let Some(id) = t.event_id("payment_event_id") {
        push_bounded(&mut tenant.recent.lock().payments, id);
    }
    t.sample(Kind::Payment, &[])
}

/// A late fee on a pool loan; its id joins the ones that may be waived.
async fn assess_fee(api: &Api, tenant: &Tenant, loan: &Loan, amount: u64) -> Sample {
    let t = api
        .post(tenant, "/v1/fees", fee_body(loan, amount), None)
        .await;
    if let Some(id) = t.event_id("fee_event_id") {
        push_bounded(&mut tenant.recent.lock().fees, (id, amount));
    }
    t.sample(Kind::Fee, &[])
}

/// One `mixed` operation, drawn from [`MIXED`].
async fn mixed_operation(
    shared: &Shared,
    tenant: &Tenant,
    rng: &mut Rng,
    samples: &mut Vec<Sample>,
) {
    let api = &shared.api;
    let pool = &tenant.pool;
    let op = mixed_op(rng.below(1000));
    let loan = &pool[rng.below(pool.len())];
    match op {
        MixedOp::Disbursement => {
            let t = disburse(api, tenant, loan, rng.between(1_000, 100_000), true).await;
            samples.push(t.sample(Kind::Disbursement, &[]));
        }
        MixedOp::Settlement => {
            let next = tenant.recent.lock().unsettled.pop_front();
            if let Some(id) = next {
                let t = api
                    .post(
                        tenant,
                        "/v1/disbursement-settlements",
                        settlement_body(&id),
                        None,
                    )
                    .await;
                samples.push(t.sample(Kind::Settlement, &[]));
            } else {
                // Nothing to settle yet: post the disbursement a settlement would follow.
                let t = disburse(api, tenant, loan, rng.between(1_000, 100_000), true).await;
                samples.push(t.sample(Kind::Disbursement, &[]));
            }
        }
        MixedOp::Payment => samples.push(pay(api, tenant, loan, rng.between(100, 5_000)).await),
        MixedOp::Fee => {
            samples.push(assess_fee(api, tenant, loan, rng.between(100, 2_500)).await);
        }
        MixedOp::PaymentReturn => {
            let next = tenant.recent.lock().payments.pop_front();
            if let Some(id) = next {
                let body = payment_return_body(&id, return_reason(rng.below(1000)));
                let t = api.post(tenant, "/v1/payment-returns", body, None).await;
                samples.push(t.sample(Kind::PaymentReturn, &[]));
            } else {
                samples.push(pay(api, tenant, loan, rng.between(100, 5_000)).await);
            }
        }
        MixedOp::FeeWaiver => {
            let next = tenant.recent.lock().fees.pop_back();
            if let Some((id, amount)) = next {
                // Three in four waive the whole fee (no amount: whatever is still waivable), one
                // in four half of it. A payment on the loan may have paid the fee off since it was
                // assessed (fees come first in the waterfall); the waivable amount is then
                // smaller or 0, and 422 `waiver_exceeds_outstanding` is the right answer.
                let partial = (rng.below(4) == 0).then_some(amount / 2);
                let t = api
                    .post(
                        tenant,
                        "/v1/fee-waivers",
                        fee_waiver_body(&id, partial),
                        None,
                    )
                    .await;
                samples.push(t.sample(Kind::FeeWaiver, &["waiver_exceeds_outstanding"]));
            } else {
                samples.push(assess_fee(api, tenant, loan, rng.between(100, 2_500)).await);
            }
        }
        MixedOp::ChargeOff => charge_off(api, tenant, rng, samples).await,
        MixedOp::Recovery => {
            let charged_off = {
                let recent = tenant.recent.lock();
                let n = recent.charged_off.len();
                (n > 0).then(|| recent.charged_off[rng.below(n)].clone())
            };
            if let Some(written_off) = charged_off {
                // A payment on a charged-off loan is a recovery (Dr 1000 / Cr 4200).
                let t = api
                    .post(
                        tenant,
                        "/v1/payments",
                        payment_body(&written_off, rng.between(100, 5_000)),
                        None,
                    )
                    .await;
                samples.push(t.sample(Kind::Recovery, &[]));
            } else {
                samples.push(pay(api, tenant, loan, rng.between(100, 5_000)).await);
            }
        }
        MixedOp::Adjustment => {
            let t = api
                .post(
                    tenant,
                    "/v1/adjustments",
                    adjustment_body(rng.between(100, 2_500)),
                    None,
                )
                .await;
            samples.push(t.sample(Kind::Adjustment, &[]));
        }
        MixedOp::AccrualBatch => accrual_batch(shared, tenant, rng, samples).await,
        MixedOp::BalanceRead => samples.push(
            read_balance(api, tenant, loan)
                .await
                .sample(Kind::BalanceRead, &[]),
        ),
    }
}

/// A `mixed` accrual batch: read 10 distinct pool loans' principal, then accrue them.
async fn accrual_batch(shared: &Shared, tenant: &Tenant, rng: &mut Rng, samples: &mut Vec<Sample>) {
    let api = &shared.api;
    let pool = &tenant.pool;
    let mut picked: Vec<&Loan> = Vec::with_capacity(SMALL_BATCH);
    while picked.len() < SMALL_BATCH.min(pool.len()) {
        let candidate = &pool[rng.below(pool.len())];
        if !picked.iter().any(|l| l.id == candidate.id) {
            picked.push(candidate);
        }
    }
    let reads = join_all(picked.iter().map(|l| read_balance(api, tenant, l))).await;
    let mut items = Vec::with_capacity(picked.len());
    for (loan, read) in picked.iter().zip(&reads) {
        samples.push(read.sample(Kind::AccrualPrepRead, &[]));
        let principal = read.json().and_then(|v| {
            v.get("principal_outstanding_minor")
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        if let Some(p) = principal.filter(|_| read.is_success()) {
            items.push((*loan, p));
        }
    }
    if items.len() == picked.len() {
        let day = tenant.next_accrual_day.fetch_add(1, Ordering::Relaxed);
        let body = accrual_body(&shared.program, &day_string(day), &items);
        let t = api.post(tenant, "/v1/accruals/batch", body, None).await;
        samples.push(t.sample(Kind::AccrualBatch, &["principal_mismatch"]));
    }
}

/// Charges off the next delinquent loan (opened with a disbursement and a late fee in setup).
/// Once the segment is used up, a fresh loan is opened first (its disbursement is reported as
/// one), so every charge-off finds something outstanding and none is a second one.
async fn charge_off(api: &Api, tenant: &Tenant, rng: &mut Rng, samples: &mut Vec<Sample>) {
    let next = tenant.next_delinquent.fetch_add(1, Ordering::Relaxed);
    let loan = if let Some(loan) = tenant.delinquent.get(next) {
        loan.clone()
    } else {
        let loan = Loan::new();
        let t = disburse(api, tenant, &loan, 1_000_000, false).await;
        let opened = t.is_success();
        samples.push(t.sample(Kind::Disbursement, &[]));
        if !opened {
            return;
        }
        loan
    };
    let reason_code = match rng.below(10) {
        0..8 => "delinquency",
        8 => "bankruptcy",
        _ => "deceased",
    };
    let t = api
        .post(
            tenant,
            "/v1/charge-offs",
            chargeoff_body(&loan, reason_code),
            None,
        )
        .await;
    if t.is_success() {
        push_bounded(&mut tenant.recent.lock().charged_off, loan);
    }
    samples.push(t.sample(Kind::ChargeOff, &[]));
}

// ---------------------------------------------------------------------------------------------
// Setup
// ---------------------------------------------------------------------------------------------

/// Opens `per_tenant` loans in each tenant with one disbursement each (and then a late fee of
/// `late_fee` minor units, if given), `concurrency` at a time. Returns the loans per tenant.
async fn open_loans(
    api: &Arc<Api>,
    auths: &[HeaderValue],
    per_tenant: usize,
    concurrency: usize,
    late_fee: Option<u64>,
) -> Result<Vec<Vec<Loan>>, String> {
    let pools: Vec<Vec<Loan>> = auths
        .iter()
        .map(|_| (0..per_tenant).map(|_| Loan::new()).collect())
        .collect();
    let work: Arc<Vec<(usize, Loan)>> = Arc::new(
        pools
            .iter()
            .enumerate()
            .flat_map(|(t, loans)| loans.iter().map(move |l| (t, l.clone())))
            .collect(),
    );
    let tenants: Arc<Vec<Tenant>> = Arc::new(
        auths
            .iter()
            .map(|a| Tenant::new(a.clone(), Vec::new(), Vec::new()))
            .collect(),
    );
    let next = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (api, work, tenants, next, failed) = (
            Arc::clone(api),
            Arc::clone(&work),
            Arc::clone(&tenants),
            Arc::clone(&next),
            Arc::clone(&failed),
        );
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= work.len() || failed.load(Ordering::Relaxed) {
                    return Ok(());
                }
                let (t, loan) = &work[i];
                let answer = api
                    .post(
                        &tenants[*t],
                        "/v1/disbursements",
                        disbursement_body(loan, 1_000_000),
                        None,
                    )
                    .await;
                if !answer.is_success() {
                    failed.store(true, Ordering::Relaxed);
                    return Err(format!("setup disbursement failed: {}", answer.describe()));
                }
                if let Some(amount) = late_fee {
                    let answer = api
                        .post(&tenants[*t], "/v1/fees", fee_body(loan, amount), None)
                        .await;
                    if !answer.is_success() {
                        failed.store(true, Ordering::Relaxed);
                        return Err(format!("setup fee failed: {}", answer.describe()));
                    }
                }
            }
        }));
    }
    for task in tasks {
        task.await
            .map_err(|e| format!("setup task failed: {e}"))??;
    }
    Ok(pools)
}

/// Reads every loan's principal outstanding, `concurrency` at a time.
async fn read_principals(
    api: &Arc<Api>,
    tenant: &Arc<Tenant>,
    loans: &Arc<Vec<Loan>>,
    concurrency: usize,
) -> Result<Vec<String>, String> {
    let next = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..concurrency.max(1) {
        let (api, tenant, loans, next) = (
            Arc::clone(api),
            Arc::clone(tenant),
            Arc::clone(loans),
            Arc::clone(&next),
        );
        tasks.push(tokio::spawn(async move {
            let mut found = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= loans.len() {
                    return Ok::<_, String>(found);
                }
                let answer = read_balance(&api, &tenant, &loans[i]).await;
                let principal = answer
                    .json()
                    .filter(|_| answer.is_success())
                    .and_then(|v| {
                        v.get("principal_outstanding_minor")
                            .and_then(Value::as_str)
                            .map(str::to_owned)
                    })
                    .ok_or_else(|| format!("setup balance read failed: {}", answer.describe()))?;
                found.push((i, principal));
            }
        }));
    }
    let mut principals = vec![String::new(); loans.len()];
    for task in tasks {
        for (i, p) in task
            .await
            .map_err(|e| format!("setup task failed: {e}"))??
        {
            principals[i] = p;
        }
    }
    Ok(principals)
}

// ---------------------------------------------------------------------------------------------
// RSS sampling
// ---------------------------------------------------------------------------------------------

fn read_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Samples the server's RSS every 100 ms until `stop`; returns the maximum seen (kB).
fn spawn_rss_sampler(
    pid: u32,
    stop: Arc<AtomicBool>,
    max_kb: Arc<AtomicU64>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            if let Some(kb) = read_rss_kb(pid) {
                max_kb.fetch_max(kb, Ordering::Relaxed);
            }
            if stop.load(Ordering::Relaxed) {
                return;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    })
}

/// CPU time (user + system, in clock ticks of 1/100 s) of a process, from `/proc/<pid>/stat`.
fn cpu_ticks(pid: &str) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the parenthesised command name: state is field 3, utime 14, stime 15.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// Average cores used by the server and by this load generator over a window.
#[derive(Debug, Clone, Copy, Default)]
struct CpuUse {
    server: Option<f64>,
    loadgen: Option<f64>,
}

struct CpuMeter {
    started: Instant,
    server_pid: Option<String>,
    server: Option<u64>,
    own: Option<u64>,
}

impl CpuMeter {
    fn start(pid: Option<u32>) -> Self {
        let server_pid = pid.map(|p| p.to_string());
        CpuMeter {
            started: Instant::now(),
            server: server_pid.as_deref().and_then(cpu_ticks),
            server_pid,
            own: cpu_ticks("self"),
        }
    }

    fn finish(&self) -> CpuUse {
        let secs = self.started.elapsed().as_secs_f64().max(1e-9);
        // USER_HZ is 100 on every Linux this runs on.
        let cores = |before: Option<u64>, after: Option<u64>| {
            let ticks = after?.checked_sub(before?)?;
            Some(round2(to_f64(usize::try_from(ticks).ok()?) / 100.0 / secs))
        };
        CpuUse {
            server: cores(self.server, self.server_pid.as_deref().and_then(cpu_ticks)),
            loadgen: cores(self.own, cpu_ticks("self")),
        }
    }
}

/// What a scenario measured.
struct Measured {
    stats: Stats,
    elapsed: Duration,
    setup: Option<Value>,
    cpu: CpuUse,
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------

struct Report {
    scenario: Scenario,
    clients: usize,
    tenants: usize,
    warmup: u64,
    measured: Duration,
    stats: Stats,
    setup: Option<Value>,
    pid: Option<u32>,
    max_rss_kb: Option<u64>,
    cpu: CpuUse,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

impl Report {
    /// Statuses, server RSS and CPU, error samples; returns the peak RSS in MB.
    fn write_footer(&self, text: &mut String) -> Option<f64> {
        let statuses: Vec<String> = self
            .stats
            .statuses
            .iter()
            .map(|(s, n)| format!("{s}={n}"))
            .collect();
        let _ = writeln!(text, "statuses: {}", statuses.join(" "));
        let max_rss_mb = self
            .max_rss_kb
            .map(|kb| round2(to_f64(usize::try_from(kb).unwrap_or(usize::MAX)) / 1024.0));
        if let (Some(pid), Some(mb)) = (self.pid, max_rss_mb) {
            let _ = writeln!(text, "server max RSS: {mb:.1} MB (pid {pid})");
        } else if let Some(pid) = self.pid {
            let _ = writeln!(
                text,
                "server max RSS: unknown (could not read /proc/{pid}/status)"
            );
        }
        if let Some(cores) = self.cpu.server {
            let _ = writeln!(
                text,
                "server CPU: {cores:.2} cores on average while measuring"
            );
        }
        if let Some(cores) = self.cpu.loadgen {
            let _ = writeln!(
                text,
                "loadgen CPU: {cores:.2} cores on average while measuring"
            );
        }
        if !self.stats.error_samples.is_empty() {
            let _ = writeln!(text, "error samples:");
            for s in &self.stats.error_samples {
                let _ = writeln!(text, "  {s}");
            }
        }
        max_rss_mb
    }

    fn into_text_and_json(mut self) -> (String, Value) {
        let secs = self.measured.as_secs_f64().max(1e-9);
        let total = self.stats.total();
        let mut text = String::new();
        let _ = writeln!(
            text,
            "hpts-loadgen: scenario {}, {} clients, {} tenant(s), {:.2} s measured (warmup {} s)",
            self.scenario.name(),
            self.clients,
            self.tenants,
            secs,
            self.warmup
        );
        if let Some(setup) = &self.setup {
            let _ = writeln!(text, "setup: {setup}");
        }
        let _ = writeln!(
            text,
            "total: {total} requests, {:.1} req/s, errors {}, expected refusals {}",
            to_f64(total) / secs,
            self.stats.errors,
            self.stats.expected
        );
        let _ = writeln!(
            text,
            "{:<26} {:>9} {:>10} {:>9} {:>9} {:>9} {:>9}",
            "kind", "count", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"
        );
        let mut kinds = serde_json::Map::new();
        let mut all = Vec::with_capacity(total);
        let line = |name: &str, s: &Summary, text: &mut String| {
            let rps = to_f64(s.count) / secs;
            let _ = writeln!(
                text,
                "{name:<26} {:>9} {rps:>10.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2}",
                s.count, s.p50, s.p95, s.p99, s.max
            );
            json!({
                "count": s.count,
                "req_per_sec": round2(rps),
                "p50_ms": round2(s.p50),
                "p95_ms": round2(s.p95),
                "p99_ms": round2(s.p99),
                "max_ms": round2(s.max),
            })
        };
        for (kind, v) in std::mem::take(&mut self.stats.latencies) {
            all.extend_from_slice(&v);
            let s = summarise(v);
            kinds.insert(kind.name().to_owned(), line(kind.name(), &s, &mut text));
        }
        let overall_summary = summarise(all);
        let overall = line("overall", &overall_summary, &mut text);
        let max_rss_mb = self.write_footer(&mut text);
        let report = json!({
            "scenario": self.scenario.name(),
            "clients": self.clients,
            "tenants": self.tenants,
            "warmup_secs": self.warmup,
            "duration_secs": round2(secs),
            "total_requests": total,
            "req_per_sec": round2(to_f64(total) / secs),
            "errors": self.stats.errors,
            "expected_refusals": self.stats.expected,
            "statuses": self.stats.statuses,
            "overall": overall,
            "kinds": kinds,
            "max_rss_mb": max_rss_mb,
            "server_cpu_cores": self.cpu.server,
            "loadgen_cpu_cores": self.cpu.loadgen,
            "setup": self.setup,
            "error_samples": self.stats.error_samples,
        });
        (text, report)
    }
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------

fn main() -> ExitCode {
    let args = Args::parse();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("hpts-loadgen: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hpts-loadgen: {e}");
            ExitCode::FAILURE
        }
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// One `Authorization` header per fresh tenant, each token holding every scope.
fn mint_tokens(args: &Args, tenant_count: usize) -> Result<Vec<HeaderValue>, String> {
    let key = DevKey::load_or_create(&args.data_dir)?;
    let mut scopes: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
    for extra in LIFECYCLE_SCOPES {
        if !scopes.contains(&extra) {
            scopes.push(extra);
        }
    }
    let scopes = scopes.join(" ");
    let ttl = args.warmup + args.duration + 3600;
    (0..tenant_count)
        .map(|_| {
            let tenant = Uuid::now_v7().to_string();
            let token = key.mint(&tenant, &scopes, ttl, "hpts-loadgen", unix_now())?;
            HeaderValue::from_str(&format!("Bearer {token}")).map_err(|e| e.to_string())
        })
        .collect()
}

async fn run(args: Args) -> Result<(), String> {
    let base = loopback_base(&args.url)?;
    if args.clients == 0 || args.tenants == 0 {
        return Err("--clients and --tenants must be at least 1".into());
    }
    if matches!(args.scenario, Scenario::Mixed | Scenario::ReadsUnderWrites)
        && args.pool_loans < SMALL_BATCH
    {
        return Err(format!("--pool-loans must be at least {SMALL_BATCH}"));
    }
    let tenant_count = if args.scenario == Scenario::Accrual10k {
        1
    } else {
        args.tenants
    };
    let auths = mint_tokens(&args, tenant_count)?;

    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(args.clients * 2 + SMALL_BATCH)
        .tcp_nodelay(true)
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    let api = Arc::new(Api {
        client,
        base: base.clone(),
        run: Uuid::now_v7().simple().to_string(),
        seq: AtomicU64::new(0),
    });

    let ready = api
        .client
        .get(format!("{base}/v1/health/ready"))
        .send()
        .await
        .map_err(|e| {
            format!(
                "{base} is not answering ({}); start it with `hpts serve --dev --data-dir ...`",
                transport_error(&e)
            )
        })?;
    if !ready.status().is_success() {
        return Err(format!(
            "{base}/v1/health/ready answered {}",
            ready.status()
        ));
    }

    let stop_rss = Arc::new(AtomicBool::new(false));
    let max_rss = Arc::new(AtomicU64::new(0));
    let sampler = args
        .pid
        .map(|pid| spawn_rss_sampler(pid, Arc::clone(&stop_rss), Arc::clone(&max_rss)));

    let measured = if args.scenario == Scenario::Accrual10k {
        accrual_10k(&api, &auths[0], &args).await?
    } else {
        load(&api, auths, &args).await?
    };

    stop_rss.store(true, Ordering::Relaxed);
    if let Some(s) = sampler {
        let _ = s.await;
    }
    let max_rss_kb = args
        .pid
        .and_then(|_| Some(max_rss.load(Ordering::Relaxed)).filter(|kb| *kb > 0));
    let report = Report {
        scenario: args.scenario,
        clients: if args.scenario == Scenario::Accrual10k {
            1
        } else {
            args.clients
        },
        tenants: tenant_count,
        warmup: if args.scenario == Scenario::Accrual10k {
            0
        } else {
            args.warmup
        },
        measured: measured.elapsed,
        stats: measured.stats,
        setup: measured.setup,
        pid: args.pid,
        max_rss_kb,
        cpu: measured.cpu,
    };
    let (text, json) = report.into_text_and_json();
    print!("{text}");
    if let Some(path) = &args.json {
        let pretty = serde_json::to_string_pretty(&json).map_err(|e| e.to_string())?;
        std::fs::write(path, pretty + "\n")
            .map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(())
}

/// The client-loop scenarios: optional setup, then `clients` tasks until time or cap runs out.
async fn load(api: &Arc<Api>, auths: Vec<HeaderValue>, args: &Args) -> Result<Measured, String> {
    let needs_pool = matches!(args.scenario, Scenario::Mixed | Scenario::ReadsUnderWrites);
    let (pools, delinquent, setup) = if needs_pool {
        let started = Instant::now();
        let pools = open_loans(api, &auths, args.pool_loans, args.clients, None).await?;
        let secs = started.elapsed().as_secs_f64();
        let n = args.pool_loans * auths.len();
        let mut setup = json!({
            "loans": n,
            "secs": round2(secs),
            "disbursements_per_sec": round2(to_f64(n) / secs.max(1e-9)),
        });
        let delinquent = if args.scenario == Scenario::Mixed {
            let started = Instant::now();
            let delinquent = open_loans(
                api,
                &auths,
                args.chargeoff_loans,
                args.clients,
                Some(DELINQUENT_LATE_FEE),
            )
            .await?;
            if let Some(obj) = setup.as_object_mut() {
                obj.insert(
                    "chargeoff_loans".into(),
                    json!(args.chargeoff_loans * auths.len()),
                );
                obj.insert(
                    "chargeoff_loans_secs".into(),
                    json!(round2(started.elapsed().as_secs_f64())),
                );
            }
            delinquent
        } else {
            auths.iter().map(|_| Vec::new()).collect()
        };
        (pools, delinquent, Some(setup))
    } else {
        let none = || auths.iter().map(|_| Vec::new()).collect::<Vec<_>>();
        (none(), none(), None)
    };
    let tenants: Vec<Tenant> = auths
        .into_iter()
        .zip(pools.into_iter().zip(delinquent))
        .map(|(auth, (pool, delinquent))| Tenant::new(auth, pool, delinquent))
        .collect();
    let start = Instant::now();
    let measure_from = start + Duration::from_secs(args.warmup);
    let shared = Arc::new(Shared {
        api: Arc::clone(api),
        scenario: args.scenario,
        tenants,
        program: Uuid::now_v7().to_string(),
        measure_from,
        end: measure_from + Duration::from_secs(args.duration),
        cap: args.requests,
        issued: AtomicU64::new(0),
        seed: unix_now() ^ u64::from(std::process::id()).rotate_left(32),
    });
    let tasks: Vec<_> = (0..args.clients)
        .map(|i| tokio::spawn(client(Arc::clone(&shared), i)))
        .collect();
    // The clients run while this task sleeps through the warmup; CPU is metered after it.
    tokio::time::sleep_until(measure_from.into()).await;
    let meter = CpuMeter::start(args.pid);
    let mut stats = Stats::default();
    for t in tasks {
        stats.merge(t.await.map_err(|e| format!("client task failed: {e}"))?);
    }
    let cpu = meter.finish();
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    Ok(Measured {
        stats,
        elapsed,
        setup,
        cpu,
    })
}

/// `accrual-10k`: open the loans (concurrently), read their principal, post ONE batch.
async fn accrual_10k(api: &Arc<Api>, auth: &HeaderValue, args: &Args) -> Result<Measured, String> {
    let started = Instant::now();
    let mut pools = open_loans(
        api,
        std::slice::from_ref(auth),
        args.accrual_loans,
        args.clients,
        None,
    )
    .await?;
    let open_secs = started.elapsed().as_secs_f64();
    let loans = Arc::new(pools.pop().unwrap_or_default());
    let tenant = Arc::new(Tenant::new(auth.clone(), Vec::new(), Vec::new()));
    let read_started = Instant::now();
    let principals = read_principals(api, &tenant, &loans, args.clients).await?;
    let read_secs = read_started.elapsed().as_secs_f64();
    let items: Vec<(&Loan, String)> = loans.iter().zip(principals).collect();
    let body = accrual_body(&Uuid::now_v7().to_string(), "2025-06-30", &items);
    let body_bytes = body.len();
    let meter = CpuMeter::start(args.pid);
    let measured_from = Instant::now();
    let answer = api
        .post(
            &tenant,
            "/v1/accruals/batch",
            body,
            Some(Duration::from_mins(5)),
        )
        .await;
    let elapsed = measured_from.elapsed();
    let cpu = meter.finish();
    let n = loans.len();
    let mut setup = json!({
        "loans": n,
        "open_secs": round2(open_secs),
        "disbursements_per_sec": round2(to_f64(n) / open_secs.max(1e-9)),
        "balance_read_secs": round2(read_secs),
        "balance_reads_per_sec": round2(to_f64(n) / read_secs.max(1e-9)),
        "batch_body_bytes": body_bytes,
    });
    if let Some(v) = answer.json().filter(|_| answer.is_success())
        && let Some(obj) = setup.as_object_mut()
    {
        obj.insert(
            "batch_loan_count".into(),
            v.get("loan_count").cloned().unwrap_or(Value::Null),
        );
        obj.insert(
            "batch_total_accrued_minor".into(),
            v.get("total_accrued_minor").cloned().unwrap_or(Value::Null),
        );
    }
    let mut stats = Stats::default();
    stats.record(answer.sample(Kind::AccrualBatch, &[]));
    Ok(Measured {
        stats,
        elapsed,
        setup: Some(setup),
        cpu,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_urls_are_accepted() {
        for ok in [
            "http://127.0.0.1:8080",
            "http://127.1.2.3:1/",
            "http://localhost:9000",
            "http://[::1]:8080",
        ] {
            assert!(loopback_base(ok).is_ok(), "{ok} should be accepted");
        }
        for bad in [
            "http://10.0.0.1:8080",
            "http://example.com",
            "http://[::2]:80",
            "ftp://127.0.0.1/",
            "nonsense",
        ] {
            assert!(loopback_base(bad).is_err(), "{bad} should be refused");
        }
        assert_eq!(
            loopback_base("http://127.0.0.1:8080/").as_deref(),
            Ok("http://127.0.0.1:8080")
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank() {
        let v: Vec<u32> = (1..=100).map(|ms| ms * 1000).collect();
        let s = summarise(v);
        assert_eq!(
            (s.count, s.p50, s.p95, s.p99, s.max),
            (100, 50.0, 95.0, 99.0, 100.0)
        );
        assert!((percentile(&[7000], 990) - 7.0).abs() < f64::EPSILON);
    }

    #[test]
    fn the_mixed_weights_cover_a_thousand_rolls_in_order() {
        assert_eq!(MIXED.iter().map(|(_, w)| w).sum::<usize>(), 1000);
        let mut counts = BTreeMap::new();
        for roll in 0..1000 {
            *counts.entry(format!("{:?}", mixed_op(roll))).or_insert(0) += 1;
        }
        for (op, weight) in MIXED {
            assert_eq!(counts[&format!("{op:?}")], weight, "{op:?}");
        }
        assert_eq!(mixed_op(0), MixedOp::Disbursement);
        assert_eq!(mixed_op(999), MixedOp::BalanceRead);
    }

    #[test]
    fn returns_are_mostly_insufficient_funds_and_half_of_those_carry_an_nsf_fee() {
        let reasons: Vec<ReturnReason> = (0..1000).map(return_reason).collect();
        let nsf = reasons
            .iter()
            .filter(|r| r.reason == "insufficient_funds")
            .count();
        let with_fee = reasons.iter().filter(|r| r.nsf_fee).count();
        assert_eq!((nsf, with_fee), (600, 300));
        assert!(
            reasons
                .iter()
                .all(|r| !r.nsf_fee || r.reason == "insufficient_funds")
        );
        for r in &reasons {
            assert!(r.code.len() == 3 && r.code.starts_with('R'), "{r:?}");
        }
        let body: Value =
            serde_json::from_str(&payment_return_body("p", return_reason(0))).expect("json");
        assert_eq!(body["nsf_fee_minor"], "2500");
        let body: Value =
            serde_json::from_str(&payment_return_body("p", return_reason(19))).expect("json");
        assert_eq!(body.get("nsf_fee_minor"), None);
    }

    #[test]
    fn the_adjustment_balances_and_leaves_the_loan_control_accounts_alone() {
        let body: Value = serde_json::from_str(&adjustment_body(1234)).expect("json");
        let lines = body["lines"].as_array().expect("lines");
        assert_eq!(lines.len(), 2);
        let mut net = 0i64;
        for line in lines {
            let code = line["account_code"].as_str().expect("code");
            let account = Account::from_code(code).expect("an account of the chart");
            assert!(!account.is_loan_control(), "{code}");
            let amount: i64 = line["amount_minor"]
                .as_str()
                .expect("amount")
                .parse()
                .expect("digits");
            net += if line["direction"] == "DR" {
                amount
            } else {
                -amount
            };
            assert_eq!(line["currency"], "USD");
        }
        assert_eq!(net, 0);
        assert!(
            !body["description"]
                .as_str()
                .expect("description")
                .is_empty()
        );
    }

    #[test]
    fn bounded_pools_drop_their_oldest_id() {
        let mut pool = VecDeque::new();
        for i in 0..RECENT_CAP + 3 {
            push_bounded(&mut pool, i);
        }
        assert_eq!(pool.len(), RECENT_CAP);
        assert_eq!(pool.front(), Some(&3));
    }

    #[test]
    fn accrual_dates_count_days_from_the_loans_opening_date() {
        assert_eq!(day_string(0), EFFECTIVE_AT);
        assert_eq!(day_string(365), "2026-06-02");
    }
}
