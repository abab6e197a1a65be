//! `journalEntryPosted` webhooks (SPEC §7b): every posted entry writes an outbox row in the same
//! transaction, and a delivery worker POSTs it at least once, signed per the Standard Webhooks
//! convention, retrying with exponential backoff.
//!
//! - a consumer that fails the first three attempts still receives every entry; every attempt
//!   carries the same `webhook-id`; the payload matches the entry; the signature verifies with an
//!   implementation written here (for a `whsec_` secret and for a plain one); metrics count it;
//! - a delivery still refused past the maximum age is marked failed (a test clock moves the
//!   service's time forward);
//! - the real binary, killed with SIGKILL mid-delivery and restarted, delivers every entry;
//! - 1,000 writes with the consumer down are as fast as without webhooks, and all 1,000 events
//!   arrive once the consumer is back;
//! - `hpts webhooks replay --since` re-queues delivered events for a running service;
//! - the outbox keeps delivered and given-up rows for the retention (counted from delivery or
//!   giving up) and then purges them, never an undelivered row unless no URL is set and the
//!   backlog is to be discarded; a kept backlog reaches a consumer configured later; replay
//!   reaches back only as far as the retention; `hpts verify` passes after purges;
//! - `hpts check-config` refuses a URL without a secret (and the reverse), never printing it,
//!   and a retention or backlog setting it cannot read, naming the variable.
//!
//! The consumer is a small HTTP/1.1 server run in the test on a loopback port.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use hpts::app::Application;
use hpts::auth::dev::{generate_signing_key, sign};
use hpts::clock::{Clock, Sources, SystemClock, UuidV7};
use serde_json::{Value, json};
use sha2::Sha256;

use common::inprocess::{
    Caller, TestApp, disbursement_body, fee_body, payment_body, serve_args, settings_from,
    spawn_app, spawn_app_with,
};
use common::metrics::metric;
use common::server::{
    AUTH_FLAGS, Server, assert_verify_passes, check_config, free_port, output_text,
    run_hpts_bounded,
};
use common::tokens::{ALL_SCOPES, KID, claims, key, now, uuid, write_jwks};

// ---------------------------------------------------------------------------------------------
// The consumer: a tiny HTTP server that records every request and answers as told.

/// How the consumer answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// 200 to everything.
    Ok,
    /// 503 to everything.
    Down,
    /// 503 to the first `n` requests of each `webhook-id`, then 200.
    FailFirst(u32),
    /// 200 to the first `n` requests overall, then holds each request unanswered until the mode
    /// changes, and then closes the connection without an answer.
    HangAfter(usize),
}

/// One request the consumer read.
#[derive(Debug, Clone)]
struct Received {
    /// Header names lowercased.
    headers: HashMap<String, String>,
    body: String,
    /// What the consumer answered; 0 = closed the connection without answering.
    status: u16,
    /// When the request had been read completely.
    at: Instant,
}

impl Received {
    fn header(&self, name: &str) -> &str {
        self.headers.get(name).map_or("", String::as_str)
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("webhook body is not JSON ({e}): {}", self.body))
    }

    fn entry_id(&self) -> String {
        self.json()["journal_entry_id"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }
}

struct Shared {
    mode: Mutex<Mode>,
    /// Requests seen per `webhook-id`.
    seen: Mutex<HashMap<String, u32>>,
    /// Requests seen overall.
    total: Mutex<usize>,
    received: Mutex<Vec<Received>>,
    stop: AtomicBool,
}

struct Consumer {
    url: String,
    port: u16,
    shared: Arc<Shared>,
}

impl Consumer {
    fn start(mode: Mode) -> Consumer {
        Self::start_on(0, mode)
    }

    /// Listens on `127.0.0.1:port` (0 = any free port).
    fn start_on(port: u16, mode: Mode) -> Consumer {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("consumer binds");
        let port = listener.local_addr().expect("addr").port();
        let shared = Arc::new(Shared {
            mode: Mutex::new(mode),
            seen: Mutex::new(HashMap::new()),
            total: Mutex::new(0),
            received: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        let s = Arc::clone(&shared);
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                if let Ok(stream) = stream {
                    let s = Arc::clone(&s);
                    std::thread::spawn(move || serve_one(stream, &s));
                }
            }
        });
        Consumer {
            url: format!("http://127.0.0.1:{port}/hooks/hpts"),
            port,
            shared,
        }
    }

    fn set_mode(&self, mode: Mode) {
        *self.shared.mode.lock().expect("mode") = mode;
    }

    fn received(&self) -> Vec<Received> {
        self.shared.received.lock().expect("received").clone()
    }

    /// Entry ids the consumer acknowledged (answered 2xx) at least once.
    fn acknowledged(&self) -> BTreeSet<String> {
        self.received()
            .iter()
            .filter(|r| r.status == 200)
            .map(Received::entry_id)
            .collect()
    }
}

impl Drop for Consumer {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop so it sees the flag.
        let _ = TcpStream::connect(("127.0.0.1", self.port));
    }
}

/// Reads one request, records it, answers per the mode, closes the connection.
fn serve_one(stream: TcpStream, s: &Shared) {
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut line = String::new();
    if reader.read_line(&mut line).unwrap_or(0) == 0 || !line.starts_with("POST ") {
        return;
    }
    let mut headers = HashMap::new();
    loop {
        let mut h = String::new();
        if reader.read_line(&mut h).unwrap_or(0) == 0 {
            return;
        }
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        if let Some((name, value)) = h.split_once(':') {
            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
        }
    }
    let length: usize = headers
        .get("content-length")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    if reader.read_exact(&mut body).is_err() {
        return;
    }
    let at = Instant::now();
    let id = headers.get("webhook-id").cloned().unwrap_or_default();
    let nth_overall = {
        let mut t = s.total.lock().expect("total");
        *t += 1;
        *t
    };
    let nth_of_id = {
        let mut seen = s.seen.lock().expect("seen");
        let n = seen.entry(id).or_insert(0);
        *n += 1;
        *n
    };
    let mode = *s.mode.lock().expect("mode");
    let status = match mode {
        Mode::Ok => 200,
        Mode::Down => 503,
        Mode::FailFirst(n) => {
            if nth_of_id <= n {
                503
            } else {
                200
            }
        }
        Mode::HangAfter(n) => {
            if nth_overall <= n {
                200
            } else {
                let held = Instant::now();
                while *s.mode.lock().expect("mode") == mode
                    && !s.stop.load(Ordering::SeqCst)
                    && held.elapsed() < Duration::from_mins(2)
                {
                    std::thread::sleep(Duration::from_millis(20));
                }
                0
            }
        }
    };
    s.received.lock().expect("received").push(Received {
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
        status,
        at,
    });
    if status != 0 {
        let mut stream = stream;
        let _ = write!(
            stream,
            "HTTP/1.1 {status} {}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            if status == 200 { "OK" } else { "Unavailable" }
        );
        let _ = stream.flush();
    }
}

// ---------------------------------------------------------------------------------------------
// Signatures, checked with an implementation of the Standard Webhooks rule written here.

/// The key of a secret: the base64 after `whsec_`, or the secret's own bytes.
fn key_of(secret: &str) -> Vec<u8> {
    match secret.strip_prefix("whsec_") {
        Some(b64) => STANDARD.decode(b64).expect("test secrets are valid base64"),
        None => secret.as_bytes().to_vec(),
    }
}

/// Whether `webhook-signature` holds a `v1,` HMAC-SHA256 of `{id}.{timestamp}.{body}`.
fn signature_valid(key: &[u8], id: &str, timestamp: &str, body: &str, header: &str) -> bool {
    let mut mac = Hmac::<Sha256>::new_from_slice(key).expect("any key length");
    mac.update(id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    let expected = STANDARD.encode(mac.finalize().into_bytes());
    header
        .split(' ')
        .any(|s| s.strip_prefix("v1,") == Some(expected.as_str()))
}

fn verifies(key: &[u8], r: &Received) -> bool {
    signature_valid(
        key,
        r.header("webhook-id"),
        r.header("webhook-timestamp"),
        &r.body,
        r.header("webhook-signature"),
    )
}

#[test]
fn the_signature_check_here_matches_the_standard_webhooks_example() {
    // The example of the Standard Webhooks specification, so the verifier itself is right.
    let key = key_of("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    let body = r#"{"test": 2432232314}"#;
    let header = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert!(signature_valid(
        &key,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265330",
        body,
        header
    ));
    assert!(!signature_valid(
        &key,
        "msg_p5jXN8AQM9LWM0D4loKWxJek",
        "1614265331",
        body,
        header
    ));
}

// ---------------------------------------------------------------------------------------------
// Small shared pieces.

/// `serve` flags pointing webhooks at `url`, with fast retries.
fn webhook_flags(url: &str, secret: &str) -> Vec<String> {
    [
        "--webhook-url",
        url,
        "--webhook-secret",
        secret,
        "--webhook-backoff-ms",
        "50",
        "--webhook-backoff-max-seconds",
        "1",
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect()
}

async fn spawn_with_webhooks(url: &str, secret: &str) -> TestApp {
    let flags = webhook_flags(url, secret);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    spawn_app_with(&flags).await
}

/// Polls `f` every 25 ms until it returns `Some`, failing after `limit`.
async fn eventually<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?}: {what}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The blocking twin of [`eventually`], for tests without a runtime.
fn eventually_blocking<T>(what: &str, limit: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let started = Instant::now();
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            started.elapsed() < limit,
            "timed out after {limit:?}: {what}"
        );
        std::thread::sleep(Duration::from_millis(25));
    }
}

async fn metrics(app: &TestApp) -> String {
    let r = app.get_raw("/metrics", None).await;
    assert_eq!(r.status().as_u16(), 200);
    r.text().await.expect("metrics body")
}

/// Polls `/metrics` until `ok` holds; returns that text.
async fn metrics_until(app: &TestApp, what: &str, ok: impl Fn(&str) -> bool) -> String {
    let started = Instant::now();
    loop {
        let text = metrics(app).await;
        if ok(&text) {
            return text;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "timed out waiting for {what}:\n{text}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// (pending, delivered, failed) outbox rows.
fn outbox_counts(db: &Path) -> (i64, i64, i64) {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open db");
    let count = |status: &str| -> i64 {
        conn.query_row(
            "SELECT count(*) FROM webhook_outbox WHERE status = ?1",
            [status],
            |r| r.get(0),
        )
        .expect("count")
    };
    (count("pending"), count("delivered"), count("failed"))
}

/// The (`journal_entry_id`, `posted_at`) of a 201 answer.
fn posted(a: &common::inprocess::Answer) -> (String, String) {
    assert_eq!(a.status, 201, "{}", a.text);
    let body = a.json();
    (
        body["journal_entry_id"]
            .as_str()
            .expect("journal_entry_id")
            .to_owned(),
        body["posted_at"].as_str().expect("posted_at").to_owned(),
    )
}

/// Posts one entry of each kind (disbursement, fee, payment, reversal); returns their
/// (`journal_entry_id`, `posted_at`).
async fn post_one_of_each(c: &Caller<'_>) -> Vec<(String, String)> {
    let (loan, borrower) = (uuid(), uuid());
    let disbursement = posted(
        &c.post_disbursement(&key("disb"), &disbursement_body(loan, borrower, "100000"))
            .await,
    );
    let fee = posted(&c.post_fee(&key("fee"), &fee_body(loan, "1500")).await);
    let payment = posted(
        &c.post_payment(&key("pay"), &payment_body(loan, borrower, "5000"))
            .await,
    );
    let reversal = posted(
        &c.post_reversal(
            &key("rev"),
            &json!({
                "reverses_entry_id": payment.0,
                "reason_code": "error_correction",
                "reason_description": "posted twice by the bank file",
            }),
        )
        .await,
    );
    vec![disbursement, fee, payment, reversal]
}

// ---------------------------------------------------------------------------------------------
// 1. Retries, webhook-id, payload, signature, metrics.

/// Every attempt of one entry: one `webhook-id`, one body, a valid signature, a current
/// timestamp, and growing delays between attempts.
fn check_attempts(key_bytes: &[u8], entry_id: &str, attempts: &[&Received]) {
    let webhook_id = format!("msg_{entry_id}");
    for r in attempts {
        assert_eq!(
            r.header("webhook-id"),
            webhook_id,
            "same id on every attempt"
        );
        assert_eq!(
            r.body, attempts[0].body,
            "the payload is fixed at posting time"
        );
        assert!(
            r.header("content-type").starts_with("application/json"),
            "{:?}",
            r.headers
        );
        assert!(
            verifies(key_bytes, r),
            "signature of {entry_id} does not verify: {:?}",
            r.headers
        );
        let mut tampered = (*r).clone();
        tampered.body = tampered.body.replace(entry_id, &uuid().to_string());
        assert!(
            !verifies(key_bytes, &tampered),
            "a changed body must not verify"
        );
        let ts: u64 = r
            .header("webhook-timestamp")
            .parse()
            .expect("webhook-timestamp is unix seconds");
        assert!(ts.abs_diff(now()) < 300, "timestamp {ts} is not now");
    }
    // Exponential backoff from 50 ms with ±25 % jitter: at least 37.5, 75, 150 ms apart.
    for (i, min_ms) in [(1, 30), (2, 70), (3, 140)] {
        let gap = attempts[i].at.duration_since(attempts[i - 1].at);
        assert!(
            gap >= Duration::from_millis(min_ms),
            "attempt {} of {entry_id} came {gap:?} after the previous one",
            i + 1
        );
    }
}

/// The payload holds exactly the five fields, matching `GET /v1/journal-entries/{id}` and the
/// 201 answer; returns its `event_type`.
async fn check_payload(c: &Caller<'_>, entry_id: &str, posted_at: &str, payload: &Value) -> String {
    let fields: BTreeSet<&str> = payload
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        fields,
        BTreeSet::from([
            "journal_entry_id",
            "tenant_id",
            "event_type",
            "occurred_at",
            "correlation_id"
        ]),
        "{payload}"
    );
    let entry = c.get_entry(entry_id).await;
    assert_eq!(entry.status, 200, "{}", entry.text);
    let entry = entry.json();
    assert_eq!(payload["journal_entry_id"], json!(entry_id));
    assert_eq!(payload["tenant_id"], json!(c.tenant.to_string()));
    assert_eq!(
        payload["event_type"], entry["event_type"],
        "{payload} vs {entry}"
    );
    assert_eq!(
        payload["occurred_at"], entry["posted_at"],
        "{payload} vs {entry}"
    );
    assert_eq!(
        payload["occurred_at"],
        json!(posted_at),
        "same as the 201 answer"
    );
    assert_eq!(
        payload["correlation_id"], entry["correlation_id"],
        "{payload} vs {entry}"
    );
    payload["event_type"]
        .as_str()
        .unwrap_or_default()
        .to_owned()
}

/// Runs the "fails three times, then succeeds" scenario with `secret`.
async fn a_consumer_failing_three_times_receives_every_entry(secret: &str) {
    let key_bytes = key_of(secret);
    let consumer = Consumer::start(Mode::FailFirst(3));
    let app = spawn_with_webhooks(&consumer.url, secret).await;
    let c = app.tenant();
    let entries = post_one_of_each(&c).await;
    let ids: BTreeSet<String> = entries.iter().map(|(id, _)| id.clone()).collect();

    eventually("every entry acknowledged", Duration::from_secs(30), || {
        (consumer.acknowledged() == ids).then_some(())
    })
    .await;

    let received = consumer.received();
    let mut event_types = BTreeSet::new();
    for (entry_id, posted_at) in &entries {
        let attempts: Vec<&Received> = received
            .iter()
            .filter(|r| &r.entry_id() == entry_id)
            .collect();
        let statuses: Vec<u16> = attempts.iter().map(|r| r.status).collect();
        assert_eq!(
            statuses,
            [503, 503, 503, 200],
            "entry {entry_id}: three refused attempts, then one delivered, then no more"
        );
        check_attempts(&key_bytes, entry_id, &attempts);

        event_types.insert(check_payload(&c, entry_id, posted_at, &attempts[0].json()).await);
    }
    assert_eq!(
        event_types,
        BTreeSet::from(
            [
                "disbursement",
                "fee_assessed",
                "payment_received",
                "reversal"
            ]
            .map(String::from)
        )
    );

    // The counters are exact: four deliveries, twelve refused attempts, nothing left.
    let text = metrics_until(&app, "4 deliveries and nothing pending", |t| {
        metric(t, "hpts_webhook_deliveries_total") == 4 && metric(t, "hpts_webhook_pending") == 0
    })
    .await;
    assert_eq!(metric(&text, "hpts_webhook_deliveries_total"), 4, "{text}");
    assert_eq!(
        metric(&text, "hpts_webhook_attempt_failures_total"),
        12,
        "{text}"
    );
    assert_eq!(metric(&text, "hpts_webhook_failed"), 0, "{text}");
    assert_eq!(metric(&text, "hpts_webhook_given_up_total"), 0, "{text}");
    eventually(
        "every outbox row delivered",
        Duration::from_secs(10),
        || (outbox_counts(&app.db_path) == (0, 4, 0)).then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_failing_three_times_gets_every_entry_under_one_webhook_id_signed_with_a_whsec_secret()
 {
    let raw: Vec<u8> = uuid()
        .as_bytes()
        .iter()
        .chain(uuid().as_bytes())
        .copied()
        .collect();
    let secret = format!("whsec_{}", STANDARD.encode(raw));
    a_consumer_failing_three_times_receives_every_entry(&secret).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_failing_three_times_gets_every_entry_under_one_webhook_id_signed_with_a_plain_secret()
 {
    a_consumer_failing_three_times_receives_every_entry("a plain shared secret, not base64!").await;
}

// ---------------------------------------------------------------------------------------------
// 1b. Giving up after the maximum age (a service clock the test moves forward).

/// The system clock plus an offset the test sets.
#[derive(Default)]
struct ShiftedClock {
    offset_secs: AtomicI64,
}

impl Clock for ShiftedClock {
    fn now(&self) -> time::OffsetDateTime {
        SystemClock.now() + time::Duration::seconds(self.offset_secs.load(Ordering::SeqCst))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delivery_still_failing_after_the_maximum_age_is_marked_failed_and_given_up() {
    let consumer = Consumer::start(Mode::Down);
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, jwks) = (dir.path().join("ledger.db"), dir.path().join("jwks.json"));
    let signing = generate_signing_key().expect("key");
    write_jwks(&jwks, &[(KID, &signing)]);
    let mut flags = webhook_flags(&consumer.url, "max age secret");
    flags.extend(["--webhook-max-age-hours".to_owned(), "1".to_owned()]);
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    let clock = Arc::new(ShiftedClock::default());
    let sources = Sources {
        clock: Arc::clone(&clock) as Arc<dyn Clock>,
        ids: Arc::new(UuidV7),
    };
    let app = Application::build_with(settings_from(&serve_args(&db, &jwks, &flags)), sources)
        .await
        .expect("app builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let handle = app.handle();
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let token = sign(&signing, KID, &claims(uuid(), ALL_SCOPES)).expect("token");
    let r = client
        .post(format!("{address}/v1/disbursements"))
        .bearer_auth(&token)
        .header("Idempotency-Key", key("disb"))
        .json(&disbursement_body(uuid(), uuid(), "25000"))
        .send()
        .await
        .expect("answered");
    assert_eq!(r.status().as_u16(), 201);
    let attempts = || *consumer.shared.total.lock().expect("total");
    eventually("a first refused attempt", Duration::from_secs(10), || {
        (attempts() >= 1).then_some(())
    })
    .await;

    // 59 minutes later the delivery is still retried: a refused attempt, then another one
    // (a failed row would never be sent again).
    clock.offset_secs.store(59 * 60, Ordering::SeqCst);
    let seen = attempts();
    eventually("two more attempts", Duration::from_secs(10), || {
        (attempts() >= seen + 2).then_some(())
    })
    .await;
    assert_eq!(outbox_counts(&db).2, 0, "not failed before the maximum age");

    // 61 minutes after posting, the next refused attempt gives up.
    clock.offset_secs.store(61 * 60, Ordering::SeqCst);
    eventually(
        "the delivery marked failed",
        Duration::from_secs(10),
        || (outbox_counts(&db) == (0, 0, 1)).then_some(()),
    )
    .await;
    let started = Instant::now();
    let text = loop {
        let text = reqwest::get(format!("{address}/metrics"))
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        if metric(&text, "hpts_webhook_failed") == 1 {
            break text;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "{text}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(metric(&text, "hpts_webhook_given_up_total"), 1, "{text}");
    assert_eq!(metric(&text, "hpts_webhook_pending"), 0, "{text}");
    assert_eq!(metric(&text, "hpts_webhook_deliveries_total"), 0, "{text}");
    handle.stop(true).await;
}

// ---------------------------------------------------------------------------------------------
// 2. A crash mid-delivery (the real binary).

/// Starts the compiled binary on `db` with extra `serve` flags; waits until it is ready.
fn spawn_service(db: &Path, jwks: &Path, extra: &[String]) -> Server {
    let extra: Vec<&str> = extra.iter().map(String::as_str).collect();
    Server::start_with(db, jwks, None, &extra)
}

#[test]
fn an_upgraded_database_delivers_its_old_pending_rows_with_the_ids_and_bodies_they_stored() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, jwks) = (dir.path().join("ledger.db"), dir.path().join("jwks.json"));
    // Before V10 every outbox row stored its webhook id and body; since, they are made from
    // the entry when it is delivered, and must come out the same.
    let stored: BTreeSet<(String, String)> = {
        let conn = common::db::previous_release(&db);
        let mut stmt = conn
            .prepare("SELECT webhook_id, payload FROM webhook_outbox WHERE status = 'pending'")
            .expect("prepare");
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    };
    assert_eq!(stored.len(), 10, "the dump has ten pending deliveries");
    let consumer = Consumer::start(Mode::Ok);
    let signing = generate_signing_key().expect("key");
    write_jwks(&jwks, &[(KID, &signing)]);
    let mut flags = webhook_flags(&consumer.url, "an upgrade secret");
    // The dump's rows were written on 2026-12-01: old enough, later, to be given up otherwise.
    flags.extend(["--webhook-max-age-hours".to_owned(), "1000000".to_owned()]);
    let service = spawn_service(&db, &jwks, &flags);
    let delivered = eventually_blocking("every old row delivered", Duration::from_secs(30), || {
        let got: BTreeSet<(String, String)> = consumer
            .received()
            .iter()
            .filter(|r| r.status == 200)
            .map(|r| (r.header("webhook-id").to_owned(), r.body.clone()))
            .collect();
        (got.len() >= stored.len()).then_some(got)
    });
    assert_eq!(delivered, stored);
    drop(service);
}

#[test]
fn a_service_killed_mid_delivery_delivers_every_entry_after_a_restart() {
    // The consumer acknowledges five requests, then holds every further one open.
    let consumer = Consumer::start(Mode::HangAfter(5));
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, jwks) = (dir.path().join("ledger.db"), dir.path().join("jwks.json"));
    let signing = generate_signing_key().expect("key");
    write_jwks(&jwks, &[(KID, &signing)]);
    let token = sign(&signing, KID, &claims(uuid(), ALL_SCOPES)).expect("token");
    let mut flags = webhook_flags(&consumer.url, "a crash-test secret");
    flags.extend(["--webhook-timeout-seconds".to_owned(), "60".to_owned()]);

    let service = spawn_service(&db, &jwks, &flags);
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(30))
        .build()
        .expect("client");
    let mut ids = BTreeSet::new();
    for _ in 0..20 {
        let r = client
            .post(format!("{}/v1/disbursements", service.address))
            .bearer_auth(&token)
            .header("Idempotency-Key", key("disb"))
            .json(&disbursement_body(uuid(), uuid(), "25000"))
            .send()
            .expect("write answered");
        assert_eq!(r.status().as_u16(), 201);
        let body: Value = r.json().expect("json");
        ids.insert(body["journal_entry_id"].as_str().expect("id").to_owned());
    }
    eventually_blocking("a delivery held open", Duration::from_secs(30), || {
        (*consumer.shared.total.lock().expect("total") > 5).then_some(())
    });
    let before_crash = consumer.acknowledged();
    assert!(
        before_crash.len() < ids.len(),
        "the crash must come mid-delivery ({} of {} acknowledged)",
        before_crash.len(),
        ids.len()
    );

    drop(service); // SIGKILL while the consumer holds a delivery open
    let (pending, _, failed) = outbox_counts(&db);
    assert!(
        pending >= 1 && failed == 0,
        "pending {pending}, failed {failed}"
    );
    consumer.set_mode(Mode::Ok);
    let seen_before_restart = *consumer.shared.total.lock().expect("total");
    let held: Vec<String> =
        eventually_blocking("held requests closed", Duration::from_secs(10), || {
            let received = consumer.received();
            (received.len() == seen_before_restart).then(|| {
                received
                    .iter()
                    .filter(|r| r.status == 0)
                    .map(Received::entry_id)
                    .collect()
            })
        });
    assert!(
        !held.is_empty(),
        "at least one delivery was in flight at the crash"
    );

    let _service = spawn_service(&db, &jwks, &flags);
    eventually_blocking(
        "every entry acknowledged after the restart",
        Duration::from_mins(1),
        || (consumer.acknowledged() == ids).then_some(()),
    );
    let received = consumer.received();
    for entry_id in &held {
        let attempts: Vec<&Received> = received
            .iter()
            .filter(|r| &r.entry_id() == entry_id)
            .collect();
        assert!(
            attempts.len() >= 2 && attempts.iter().any(|r| r.status == 200),
            "the delivery in flight at the crash is sent again: {:?}",
            attempts.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert!(
            attempts
                .iter()
                .all(|r| r.header("webhook-id") == format!("msg_{entry_id}")),
            "a resend keeps its webhook-id"
        );
    }
    eventually_blocking(
        "every outbox row delivered",
        Duration::from_secs(10),
        || (outbox_counts(&db) == (0, 20, 0)).then_some(()),
    );
}

// ---------------------------------------------------------------------------------------------
// 3. A dead consumer never slows writes.

/// One write's answer: (status, `journal_entry_id`, latency).
type WriteResult = (u16, String, Duration);

/// `n` disbursements to new loans, eight at a time; (total time, each write).
async fn write_many(c: &Caller<'_>, n: usize) -> (Duration, Vec<WriteResult>) {
    let started = Instant::now();
    let writes = futures_util::stream::iter(0..n)
        .map(|_| async {
            let t = Instant::now();
            let a = c
                .post_disbursement(&key("disb"), &disbursement_body(uuid(), uuid(), "10000"))
                .await;
            let id = if a.status == 201 {
                a.json()["journal_entry_id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned()
            } else {
                a.text.clone()
            };
            (a.status, id, t.elapsed())
        })
        .buffer_unordered(8)
        .collect()
        .await;
    (started.elapsed(), writes)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_writes_with_the_consumer_down_are_not_slowed_and_all_arrive_when_it_returns() {
    let baseline_app = spawn_app().await;
    let (baseline, _) = write_many(&baseline_app.tenant(), 1000).await;
    baseline_app.stop().await;

    let port = free_port(); // nothing listens there: the consumer is down
    let url = format!("http://127.0.0.1:{port}/hooks/hpts");
    let app = spawn_with_webhooks(&url, "whsec_c2VjcmV0LWtleS1mb3ItdGhlLWxvYWQtdGVzdA==").await;
    let c = app.tenant();
    let (took, writes) = write_many(&c, 1000).await;

    for (status, id, latency) in &writes {
        assert_eq!(*status, 201, "{id}");
        assert!(
            *latency < Duration::from_secs(1),
            "a write took {latency:?} with the consumer down"
        );
    }
    assert!(
        took <= baseline * 2 + Duration::from_secs(1),
        "1,000 writes took {took:?} with the consumer down, {baseline:?} without webhooks"
    );
    let ids: BTreeSet<String> = writes.into_iter().map(|(_, id, _)| id).collect();
    assert_eq!(ids.len(), 1000);
    assert_eq!(outbox_counts(&app.db_path), (1000, 0, 0));
    metrics_until(&app, "1,000 pending, each attempted", |t| {
        metric(t, "hpts_webhook_pending") == 1000
            && metric(t, "hpts_webhook_attempt_failures_total") >= 1000
    })
    .await;

    let consumer = Consumer::start_on(port, Mode::Ok);
    eventually("all 1,000 events received", Duration::from_mins(1), || {
        (consumer.acknowledged() == ids).then_some(())
    })
    .await;
    let text = metrics_until(&app, "nothing pending", |t| {
        metric(t, "hpts_webhook_pending") == 0 && metric(t, "hpts_webhook_deliveries_total") == 1000
    })
    .await;
    assert_eq!(metric(&text, "hpts_webhook_failed"), 0, "{text}");
    eventually(
        "every outbox row delivered",
        Duration::from_secs(10),
        || (outbox_counts(&app.db_path) == (0, 1000, 0)).then_some(()),
    )
    .await;
}

// ---------------------------------------------------------------------------------------------
// 4. `hpts webhooks replay`.

/// `hpts <args>` with a clean environment, waited for at most 60 s.
fn hpts(args: &[&str], env: &[(&str, &str)]) -> Output {
    run_hpts_bounded(args, env)
}

fn replay(db: &Path, since: &str) -> String {
    let out = hpts(
        &[
            "webhooks",
            "replay",
            "--since",
            since,
            "--database",
            &db.display().to_string(),
        ],
        &[],
    );
    assert!(out.status.success(), "replay failed: {}", output_text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Delivery requests per entry id.
fn by_entry(received: &[Received]) -> HashMap<String, Vec<Received>> {
    let mut map: HashMap<String, Vec<Received>> = HashMap::new();
    for r in received {
        map.entry(r.entry_id()).or_default().push(r.clone());
    }
    map
}

/// A service with a consumer that acknowledged one entry of each kind.
async fn delivered_entries(secret: &str) -> (Consumer, TestApp, Vec<(String, String)>) {
    let consumer = Consumer::start(Mode::Ok);
    let app = spawn_with_webhooks(&consumer.url, secret).await;
    let entries = post_one_of_each(&app.tenant()).await;
    let ids: BTreeSet<String> = entries.iter().map(|(id, _)| id.clone()).collect();
    eventually("every entry delivered", Duration::from_secs(30), || {
        (consumer.acknowledged() == ids && outbox_counts(&app.db_path) == (0, 4, 0)).then_some(())
    })
    .await;
    (consumer, app, entries)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_since_a_date_resends_every_event_to_a_running_service_with_the_same_webhook_ids() {
    let secret = "replay secret";
    let (consumer, app, entries) = delivered_entries(secret).await;
    let first = consumer.received();
    assert_eq!(first.len(), 4);

    let stdout = replay(&app.db_path, &entries[0].1[..10]);
    assert!(stdout.contains("re-queued 4"), "{stdout}");
    let resent = eventually("every event sent again", Duration::from_secs(5), || {
        let received = consumer.received();
        (received.len() == 8).then_some(received)
    })
    .await;
    for (entry_id, attempts) in by_entry(&resent) {
        assert_eq!(attempts.len(), 2, "{entry_id}");
        assert_eq!(
            attempts[0].header("webhook-id"),
            attempts[1].header("webhook-id")
        );
        assert_eq!(attempts[1].header("webhook-id"), format!("msg_{entry_id}"));
        assert_eq!(attempts[0].body, attempts[1].body);
        assert!(verifies(&key_of(secret), &attempts[1]));
    }
    eventually(
        "every outbox row delivered again",
        Duration::from_secs(10),
        || (outbox_counts(&app.db_path) == (0, 4, 0)).then_some(()),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_since_a_timestamp_resends_only_entries_posted_at_or_after_it() {
    let (consumer, app, entries) = delivered_entries("replay secret").await;

    // Since the payment's own posted_at: the payment and the reversal, not the two before.
    let stdout = replay(&app.db_path, &entries[2].1);
    assert!(stdout.contains("re-queued 2"), "{stdout}");
    let resent = eventually("two events sent again", Duration::from_secs(5), || {
        let received = consumer.received();
        (received.len() == 6).then_some(received)
    })
    .await;
    let per_entry = by_entry(&resent);
    let counts: Vec<usize> = entries.iter().map(|(id, _)| per_entry[id].len()).collect();
    assert_eq!(counts, [1, 1, 2, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_since_a_whole_second_includes_entries_posted_later_in_that_second() {
    let (consumer, app, entries) = delivered_entries("replay secret").await;

    // "…T10:00:00Z" is before "…T10:00:00.250000Z": every entry posted in the second of the
    // last one (at least the last one) was posted since then.
    let last = &entries[3].1;
    let since = format!("{}Z", &last[..19]);
    let expected: BTreeSet<String> = entries
        .iter()
        .filter(|(_, posted_at)| posted_at[..19] == last[..19])
        .map(|(id, _)| id.clone())
        .collect();
    let stdout = replay(&app.db_path, &since);
    assert!(
        stdout.contains(&format!("re-queued {} ", expected.len())),
        "replay --since {since} must re-queue the entries posted at or after it \
         ({entries:?}): {stdout}"
    );
    let resent = eventually("the events sent again", Duration::from_secs(5), || {
        let received = consumer.received();
        (received.len() == 4 + expected.len()).then_some(received)
    })
    .await;
    let again: BTreeSet<String> = resent[4..].iter().map(Received::entry_id).collect();
    assert_eq!(again, expected);
}

#[test]
fn replay_refuses_a_since_that_is_not_a_date_or_a_timestamp() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.db").display().to_string();
    for since in ["yesterday", "25/11/2026", "2026-13-45", "2026-11-25 10:00"] {
        let out = hpts(
            &["webhooks", "replay", "--since", since, "--database", &db],
            &[],
        );
        assert_eq!(out.status.code(), Some(2), "{since}: {}", output_text(&out));
        assert!(
            output_text(&out).contains("--since"),
            "{}",
            output_text(&out)
        );
    }
}

// ---------------------------------------------------------------------------------------------
// 4b. Outbox retention: the writer purges finished rows (delivered, or given up) once they are
// older than HPTS_WEBHOOK_RETENTION_HOURS, and never an undelivered row, unless no URL is set
// and HPTS_WEBHOOK_BACKLOG=discard. The service's clock is one the test moves forward.

/// An in-process service on a database file, on a clock the test moves, its writer purging
/// every 20 ms (the production interval is ten minutes).
struct ClockedService {
    address: String,
    token: String,
    client: reqwest::Client,
    handle: actix_web::dev::ServerHandle,
    run: tokio::task::JoinHandle<std::io::Result<()>>,
}

impl ClockedService {
    async fn start(dir: &Path, flags: &[String], clock: &Arc<ShiftedClock>) -> ClockedService {
        let (db, jwks) = (dir.join("ledger.db"), dir.join("jwks.json"));
        let signing = generate_signing_key().expect("key");
        write_jwks(&jwks, &[(KID, &signing)]);
        let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
        let mut settings = settings_from(&serve_args(&db, &jwks, &flags));
        settings.store.writer.purge_interval = Duration::from_millis(20);
        let sources = Sources {
            clock: Arc::clone(clock) as Arc<dyn Clock>,
            ids: Arc::new(UuidV7),
        };
        let app = Application::build_with(settings, sources)
            .await
            .expect("app builds");
        let address = format!("http://127.0.0.1:{}", app.port());
        let handle = app.handle();
        let run = tokio::spawn(app.run_until_stopped());
        ClockedService {
            address,
            token: sign(&signing, KID, &claims(uuid(), ALL_SCOPES)).expect("token"),
            client: reqwest::Client::new(),
            handle,
            run,
        }
    }

    /// Posts a disbursement of a new loan; returns its journal entry id.
    async fn post_entry(&self) -> String {
        let r = self
            .client
            .post(format!("{}/v1/disbursements", self.address))
            .bearer_auth(&self.token)
            .header("Idempotency-Key", key("disb"))
            .json(&disbursement_body(uuid(), uuid(), "25000"))
            .send()
            .await
            .expect("answered");
        assert_eq!(r.status().as_u16(), 201);
        let body: Value = r.json().await.expect("JSON");
        body["journal_entry_id"]
            .as_str()
            .expect("journal_entry_id")
            .to_owned()
    }

    /// Polls `/metrics` until `name` reads `want`.
    async fn metric_reaches(&self, name: &str, want: u64) {
        let started = Instant::now();
        loop {
            let text = reqwest::get(format!("{}/metrics", self.address))
                .await
                .expect("metrics")
                .text()
                .await
                .expect("body");
            if metric(&text, name) == want {
                return;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "{name} never reached {want}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Stops the server and waits until its writer has let go of the database.
    async fn stop(self) {
        self.handle.stop(true).await;
        self.run.await.expect("server task").expect("server ran");
    }
}

/// (`journal_entry_id`, status) of every outbox row, in posting order.
fn outbox_rows(db: &Path) -> Vec<(String, String)> {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open db");
    let mut stmt = conn
        .prepare(
            "SELECT e.entry_id, o.status FROM webhook_outbox o \
             JOIN journal_entries e ON e.entry_seq = o.outbox_seq ORDER BY o.outbox_seq",
        )
        .expect("prepare");
    stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))
        .expect("query")
        .collect::<Result<_, _>>()
        .expect("rows")
}

/// Polls the outbox until its rows are exactly `want`.
async fn outbox_becomes(db: &Path, what: &str, want: &[(&str, &str)]) {
    let want: Vec<(String, String)> = want
        .iter()
        .map(|(id, status)| ((*id).to_owned(), (*status).to_owned()))
        .collect();
    let started = Instant::now();
    loop {
        let rows = outbox_rows(db);
        if rows == want {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{what}: the outbox holds {rows:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

fn hours(h: i64) -> i64 {
    h * 3600
}

fn flags(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

/// A retention test's database directory and the clock its services run on.
struct Retention {
    dir: tempfile::TempDir,
    db: PathBuf,
    clock: Arc<ShiftedClock>,
}

impl Retention {
    fn new() -> Retention {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = dir.path().join("ledger.db");
        Retention {
            dir,
            db,
            clock: Arc::new(ShiftedClock::default()),
        }
    }

    /// A service on the directory with `flags` and a retention of 168 hours.
    async fn start(&self, mut flags: Vec<String>) -> ClockedService {
        flags.extend(["--webhook-retention-hours".to_owned(), "168".to_owned()]);
        ClockedService::start(self.dir.path(), &flags, &self.clock).await
    }

    /// Moves the services' clock to `secs` after the start.
    fn at(&self, secs: i64) {
        self.clock.offset_secs.store(secs, Ordering::SeqCst);
    }
}

/// Waits until `consumer` has refused (or been sent) an attempt for `entry`.
async fn attempted(consumer: &Consumer, entry: &str) {
    eventually("a refused attempt", Duration::from_secs(10), || {
        (consumer.received().iter().any(|r| r.entry_id() == entry)).then_some(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_rows_past_the_retention_are_purged_and_undelivered_rows_never_are() {
    let consumer = Consumer::start(Mode::Ok);
    let site = Retention::new();
    let db = &site.db;
    let mut f = webhook_flags(&consumer.url, "retention secret");
    // Deliveries are never given up here, so the undelivered one stays pending throughout.
    f.extend(flags(&["--webhook-max-age-hours", "1000000"]));
    let service = site.start(f).await;

    let old = service.post_entry().await;
    outbox_becomes(db, "the first entry delivered", &[(&old, "delivered")]).await;
    site.at(hours(100));
    let recent = service.post_entry().await;
    outbox_becomes(
        db,
        "the second entry delivered 100 hours later",
        &[(&old, "delivered"), (&recent, "delivered")],
    )
    .await;
    consumer.set_mode(Mode::Down);
    let undelivered = service.post_entry().await;
    attempted(&consumer, &undelivered).await;

    // 169 hours after the first delivery: only that row is past the retention.
    site.at(hours(169));
    outbox_becomes(
        db,
        "the delivery older than 168 hours purged",
        &[(&recent, "delivered"), (&undelivered, "pending")],
    )
    .await;
    service.metric_reaches("hpts_webhook_purged_total", 1).await;
    assert_verify_passes(db, "after the first purge");
    // Replay reaches back only as far as the retention: the purged row is not re-queued.
    let stdout = replay(db, "2000-01-01");
    assert!(stdout.contains("re-queued 2 "), "{stdout}");
    outbox_becomes(
        db,
        "both remaining rows re-queued",
        &[(&recent, "pending"), (&undelivered, "pending")],
    )
    .await;
    consumer.set_mode(Mode::Ok);
    outbox_becomes(
        db,
        "both delivered again",
        &[(&recent, "delivered"), (&undelivered, "delivered")],
    )
    .await;
    consumer.set_mode(Mode::Down);
    let never = service.post_entry().await;
    attempted(&consumer, &never).await;

    // Years later: every delivered row is gone in the same purge that leaves the undelivered
    // one, however old, in place.
    site.at(hours(100_000));
    outbox_becomes(db, "every delivered row purged", &[(&never, "pending")]).await;
    service.metric_reaches("hpts_webhook_purged_total", 3).await;
    assert_eq!(outbox_counts(db), (1, 0, 0));
    assert_verify_passes(db, "after the second purge");
    service.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_given_up_delivery_is_kept_for_the_retention_counted_from_when_it_was_given_up() {
    let consumer = Consumer::start(Mode::Down);
    let site = Retention::new();
    let db = &site.db;
    let mut f = webhook_flags(&consumer.url, "given up secret");
    f.extend(flags(&["--webhook-max-age-hours", "1"]));
    let service = site.start(f).await;

    let first = service.post_entry().await;
    site.at(hours(2));
    let second = service.post_entry().await;
    outbox_becomes(
        db,
        "the first given up two hours after posting",
        &[(&first, "failed"), (&second, "pending")],
    )
    .await;
    site.at(hours(4));
    outbox_becomes(
        db,
        "the second given up at hour 4",
        &[(&first, "failed"), (&second, "failed")],
    )
    .await;

    // Hour 170 and a minute: the first was given up 168 hours and a minute ago, the second 166
    // hours ago, although it was posted 168 hours ago: retention counts from giving up.
    site.at(hours(170) + 60);
    outbox_becomes(
        db,
        "the delivery given up first purged",
        &[(&second, "failed")],
    )
    .await;
    service.metric_reaches("hpts_webhook_purged_total", 1).await;
    site.at(hours(172) + 60);
    outbox_becomes(db, "both purged", &[]).await;
    service.metric_reaches("hpts_webhook_purged_total", 2).await;
    assert_verify_passes(db, "after purging given-up deliveries");
    service.stop().await;
}

/// A database holding one delivered row (posted at the clock's current time, through a service
/// with a consumer that answered it), the service stopped.
async fn one_delivered_row(dir: &Path, clock: &Arc<ShiftedClock>) -> String {
    let consumer = Consumer::start(Mode::Ok);
    let service = ClockedService::start(dir, &webhook_flags(&consumer.url, "s"), clock).await;
    let delivered = service.post_entry().await;
    outbox_becomes(
        &dir.join("ledger.db"),
        "the entry delivered",
        &[(&delivered, "delivered")],
    )
    .await;
    service.stop().await;
    delivered
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_url_the_kept_backlog_survives_the_retention_and_reaches_a_later_consumer()
 {
    let site = Retention::new();
    let db = &site.db;
    one_delivered_row(site.dir.path(), &site.clock).await;

    let service = site.start(flags(&["--webhook-backlog", "keep"])).await;
    let backlog = service.post_entry().await;
    site.at(hours(10_000));
    // The delivered row's purge shows the purge ran at a time the backlog row was past the
    // retention too.
    outbox_becomes(
        db,
        "the delivered row purged, the backlog kept",
        &[(&backlog, "pending")],
    )
    .await;
    service.metric_reaches("hpts_webhook_purged_total", 1).await;
    service.stop().await;

    let consumer = Consumer::start(Mode::Ok);
    let later = ClockedService::start(
        site.dir.path(),
        &webhook_flags(&consumer.url, "s"),
        &site.clock,
    )
    .await;
    outbox_becomes(
        db,
        "the backlog delivered once a URL is set",
        &[(&backlog, "delivered")],
    )
    .await;
    assert_eq!(consumer.acknowledged(), BTreeSet::from([backlog]));
    assert_verify_passes(db, "after the backlog was delivered");
    later.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_webhook_url_a_discarded_backlog_is_purged_after_the_retention() {
    let site = Retention::new();
    let db = &site.db;
    let delivered = one_delivered_row(site.dir.path(), &site.clock).await;

    let service = site.start(flags(&["--webhook-backlog", "discard"])).await;
    let old = service.post_entry().await;
    site.at(hours(100));
    let recent = service.post_entry().await;
    outbox_becomes(
        db,
        "nothing purged within the retention",
        &[
            (&delivered, "delivered"),
            (&old, "pending"),
            (&recent, "pending"),
        ],
    )
    .await;

    site.at(hours(169));
    outbox_becomes(
        db,
        "the rows older than 168 hours purged, delivered or not",
        &[(&recent, "pending")],
    )
    .await;
    service.metric_reaches("hpts_webhook_purged_total", 2).await;
    assert_verify_passes(db, "after discarding the backlog");
    service.stop().await;
}

// ---------------------------------------------------------------------------------------------
// 5. Configuration.

const SECRET: &str = "whsec_dG9wLXNlY3JldC1uZXZlci1wcmludC1tZQ==";

#[test]
fn a_webhook_url_without_a_secret_is_refused_naming_hpts_webhook_secret() {
    for out in [
        check_config(&["--webhook-url", "https://consumer.test/hooks"], &[]),
        check_config(&[], &[("HPTS_WEBHOOK_URL", "https://consumer.test/hooks")]),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("HPTS_WEBHOOK_SECRET"),
            "{}",
            output_text(&out)
        );
    }
}

#[test]
fn a_webhook_secret_without_a_url_is_refused_naming_hpts_webhook_url_without_printing_it() {
    for out in [
        check_config(&["--webhook-secret", SECRET], &[]),
        check_config(&[], &[("HPTS_WEBHOOK_SECRET", SECRET)]),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
        let text = output_text(&out);
        assert!(text.contains("HPTS_WEBHOOK_URL"), "{text}");
        assert!(
            !text.contains(SECRET) && !text.contains(&SECRET[6..]),
            "{text}"
        );
    }
}

#[test]
fn a_webhook_url_that_is_not_http_is_refused_without_printing_the_secret() {
    let out = check_config(
        &["--webhook-url", "ftp://consumer.test/hooks"],
        &[("HPTS_WEBHOOK_SECRET", SECRET)],
    );
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    let text = output_text(&out);
    assert!(text.contains("HPTS_WEBHOOK_URL"), "{text}");
    assert!(!text.contains(&SECRET[6..]), "{text}");
}

#[test]
fn check_config_shows_a_complete_webhook_configuration_with_the_secret_redacted() {
    let out = check_config(
        &["--webhook-backoff-ms", "250"],
        &[
            ("HPTS_WEBHOOK_URL", "https://consumer.test/hooks"),
            ("HPTS_WEBHOOK_SECRET", SECRET),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let text = output_text(&out);
    assert!(!text.contains(&SECRET[6..]), "{text}");
    let config: Value = serde_json::from_slice(&out.stdout).expect("JSON configuration");
    assert_eq!(config["webhook"]["url"], "https://consumer.test/hooks");
    assert_eq!(config["webhook"]["secret"], "***redacted***");
    assert_eq!(config["webhook"]["backoff_ms"], 250);
    assert_eq!(config["webhook"]["backoff_max_seconds"], 300);
    assert_eq!(config["webhook"]["max_age_hours"], 72);
}

#[test]
fn serve_refuses_to_start_with_a_webhook_url_but_no_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let db = dir.path().join("ledger.db").display().to_string();
    let mut args = vec!["serve", "--listen", "127.0.0.1:0", "--database", &db];
    args.extend_from_slice(AUTH_FLAGS);
    let out = hpts(
        &args,
        &[("HPTS_WEBHOOK_URL", "https://consumer.test/hooks")],
    );
    assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
    assert!(
        output_text(&out).contains("HPTS_WEBHOOK_SECRET"),
        "{}",
        output_text(&out)
    );
    assert!(
        !Path::new(&db).exists(),
        "nothing is created before the check"
    );
}

#[test]
fn check_config_shows_the_outbox_retention_and_backlog_with_or_without_a_url() {
    let out = check_config(&[], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let config: Value = serde_json::from_slice(&out.stdout).expect("JSON configuration");
    assert_eq!(config["webhook_retention_hours"], 168, "{config}");
    assert_eq!(config["webhook_backlog"], "keep", "{config}");

    let out = check_config(
        &["--webhook-retention-hours", "24"],
        &[
            ("HPTS_WEBHOOK_BACKLOG", "DISCARD"),
            ("HPTS_WEBHOOK_URL", "https://consumer.test/hooks"),
            ("HPTS_WEBHOOK_SECRET", SECRET),
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let config: Value = serde_json::from_slice(&out.stdout).expect("JSON configuration");
    assert_eq!(config["webhook_retention_hours"], 24, "{config}");
    assert_eq!(config["webhook_backlog"], "discard", "{config}");

    // An absurdly long retention is "never purge", not a crash.
    let out = check_config(&["--webhook-retention-hours", &u64::MAX.to_string()], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", output_text(&out));
    let config: Value = serde_json::from_slice(&out.stdout).expect("JSON configuration");
    assert!(
        config["webhook_retention_hours"].as_u64() > Some(1 << 50),
        "{config}"
    );
}

#[test]
fn a_retention_below_one_hour_or_not_a_number_is_refused_naming_the_variable() {
    for bad in ["0", "-3", "1.5", "a week"] {
        for out in [
            check_config(&[&format!("--webhook-retention-hours={bad}")], &[]),
            check_config(&[], &[("HPTS_WEBHOOK_RETENTION_HOURS", bad)]),
        ] {
            assert_eq!(out.status.code(), Some(2), "{bad:?}: {}", output_text(&out));
            assert!(
                output_text(&out).contains("HPTS_WEBHOOK_RETENTION_HOURS"),
                "{bad:?}: {}",
                output_text(&out)
            );
        }
    }
}

#[test]
fn a_backlog_other_than_keep_or_discard_is_refused_naming_the_variable() {
    for out in [
        check_config(&["--webhook-backlog", "drop"], &[]),
        check_config(&[], &[("HPTS_WEBHOOK_BACKLOG", "forever")]),
    ] {
        assert_eq!(out.status.code(), Some(2), "{}", output_text(&out));
        assert!(
            output_text(&out).contains("HPTS_WEBHOOK_BACKLOG must be keep or discard"),
            "{}",
            output_text(&out)
        );
    }
}
