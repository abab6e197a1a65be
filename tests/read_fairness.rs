//! Read fairness (SPEC §9): heavy reads are bounded per tenant, an abandoned one stops, and an
//! exhausted read pool answers 503 `overloaded` with `Retry-After`, never a 500.
//!
//! Every test runs the production wiring on a copy of one template database, built once per
//! run through the API: a tenant with 10,000 loans and 20 accrual batches (about 420,000
//! journal lines, so that one reconciliation of it takes more than a second) and a small
//! tenant with one loan. The tests run one at a time (they measure durations) on loopback, and
//! each stops by itself.

mod common;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use futures_util::future::join_all;
use tokio::io::AsyncWriteExt;
use tokio::sync::{Mutex, Notify, OnceCell};
use uuid::Uuid;

use common::bulk::{Server, accrue, open_loans, problem_code, reconcile};
use common::tokens::uuid;

/// The template: where it is and who is in it.
struct Template {
    db: PathBuf,
    big: Uuid,
    small: Uuid,
    small_loan: Uuid,
}

const BIG_LOANS: usize = 10_000;
const BIG_BATCHES: usize = 20;

/// One test at a time: they measure how long reads take.
static SERIAL: Mutex<()> = Mutex::const_new(());
static TEMPLATE: OnceCell<Template> = OnceCell::const_new();

/// Builds the template database once (in the target directory's scratch space, replaced on
/// every run) and returns it.
async fn template() -> &'static Template {
    TEMPLATE
        .get_or_init(|| async {
            let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("read-fairness-template");
            let _ = std::fs::remove_dir_all(&dir);
            std::fs::create_dir_all(&dir).expect("template dir");
            let scratch = tempfile::tempdir().expect("tempdir");
            let server = Server::start(scratch, &[]).await;
            let started = Instant::now();
            let (big, small) = (uuid(), uuid());
            let token = server.token(big);
            let loans = open_loans(&server, &token, BIG_LOANS, 64).await;
            accrue(&server, &token, &loans, 0, BIG_BATCHES).await;
            let small_loan = open_loans(&server, &server.token(small), 1, 1).await[0];
            let db = dir.join("ledger.db");
            hpts::store::backup_file(&server.app.db_path, &db).expect("template copy");
            server.stop().await;
            eprintln!(
                "template: {BIG_LOANS} loans, {BIG_BATCHES} accrual batches in {:.1} s",
                started.elapsed().as_secs_f64()
            );
            Template {
                db,
                big,
                small,
                small_loan,
            }
        })
        .await
}

/// Asserts an answer is a 503 `overloaded` with a whole-seconds `Retry-After`.
fn assert_overloaded(status: u16, retry_after: Option<&str>, text: &str) {
    assert_eq!(status, 503, "{text}");
    assert_eq!(problem_code(text).as_deref(), Some("overloaded"), "{text}");
    assert!(
        retry_after.is_some_and(|s| s.parse::<u64>().is_ok()),
        "503 without a Retry-After: {text}"
    );
}

/// The shortest of two full reconciliations of `token`'s tenant.
async fn reconciliation_time(server: &Server, token: &str) -> Duration {
    let mut best = Duration::MAX;
    for _ in 0..2 {
        let (status, _, text, took) = reconcile(server, token).await;
        assert_eq!(status, 200, "{text}");
        best = best.min(took);
    }
    best
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parallel_reconciliations_of_one_tenant_get_200_or_503_overloaded_while_another_tenants_balance_reads_all_succeed()
 {
    let _serial = SERIAL.lock().await;
    let t = template().await;
    let server = Server::start_on_copy(&t.db, &["--read-pool-size", "2"]).await;
    let (big, small) = (server.token(t.big), server.token(t.small));
    let balance = format!("/v1/loans/{}/balance", t.small_loan);

    let done = AtomicBool::new(false);
    let storm = async {
        let mut answers = Vec::new();
        for _ in 0..3 {
            let round = join_all((0..16).map(|_| reconcile(&server, &big))).await;
            answers.extend(round);
        }
        done.store(true, Ordering::SeqCst);
        answers
    };
    let reads = async {
        let mut answers = Vec::new();
        while !done.load(Ordering::SeqCst) {
            answers.push(server.get(&small, &balance).await);
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        answers
    };
    let (storm, reads) = tokio::join!(storm, reads);

    let admitted = storm.iter().filter(|a| a.0 == 200).count();
    for (status, retry_after, text, _) in &storm {
        if *status != 200 {
            assert_overloaded(*status, retry_after.as_deref(), text);
        }
    }
    assert!(
        admitted >= 3,
        "at least one reconciliation per round ran: {admitted}"
    );
    assert!(
        admitted < storm.len(),
        "16 at once by one tenant are not all admitted ({admitted} of {})",
        storm.len()
    );
    assert!(reads.len() >= 10, "the other tenant read during the storm");
    for (status, _, text) in &reads {
        assert_eq!(*status, 200, "another tenant's balance read: {text}");
    }
    eprintln!(
        "{admitted} of {} reconciliations admitted; {} balance reads of another tenant, all 200",
        storm.len(),
        reads.len()
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reconciliation_whose_client_disconnects_stops_and_frees_its_tenants_slot_at_once() {
    let _serial = SERIAL.lock().await;
    let t = template().await;
    let server = Server::start_on_copy(&t.db, &[]).await;
    let token = server.token(t.big);
    let full = reconciliation_time(&server, &token).await;
    assert!(
        full >= Duration::from_millis(600),
        "the tenant is too small to observe a stop: a reconciliation takes {full:?}"
    );

    // A client that sends the request and goes away without reading the answer. It runs once
    // the tenant's next reconciliation is refused; if that one was admitted instead (the raw
    // request arrived second), it has run to its end, and the attempt is made again.
    let host = server.app.address.trim_start_matches("http://").to_owned();
    let mut attempts = 0;
    let (abandoned, started) = loop {
        attempts += 1;
        assert!(
            attempts <= 5,
            "the abandoned reconciliation never ran first"
        );
        let started = Instant::now();
        let mut stream = tokio::net::TcpStream::connect(&host)
            .await
            .expect("connect");
        stream
            .write_all(
                format!(
                    "GET /v1/reconciliation/status HTTP/1.1\r\nHost: {host}\r\n\
                     Authorization: Bearer {token}\r\n\r\n"
                )
                .as_bytes(),
            )
            .await
            .expect("request sent");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let (status, retry_after, text, _) = reconcile(&server, &token).await;
        if status == 503 {
            assert_overloaded(status, retry_after.as_deref(), &text);
            break (stream, started);
        }
        assert_eq!(status, 200, "{text}");
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(abandoned);
    let disconnected = Instant::now();
    let left = full.saturating_sub(disconnected - started);

    // The slot frees as soon as the abandoned read stops, long before it would have finished.
    let admitted_after = loop {
        let sent = disconnected.elapsed();
        let (status, retry_after, text, _) = reconcile(&server, &token).await;
        if status == 503 {
            assert_overloaded(status, retry_after.as_deref(), &text);
            assert!(
                disconnected.elapsed() < full * 2,
                "the tenant's slot was never freed after the disconnect"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
            continue;
        }
        assert_eq!(status, 200, "{text}");
        break sent;
    };
    eprintln!(
        "a full reconciliation takes {full:?}; after the disconnect the next one was admitted \
         within {admitted_after:?} (the abandoned one had about {left:?} left)"
    );
    assert!(
        admitted_after < left / 2,
        "admitted {admitted_after:?} after the disconnect, but the abandoned reconciliation \
         had only {left:?} left: it was not stopped"
    );
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_pool_held_by_a_long_read_answers_503_overloaded_with_retry_after_not_500() {
    let _serial = SERIAL.lock().await;
    let t = template().await;
    // One connection: the big tenant's reconciliation holds the whole pool while it runs.
    let server = Server::start_on_copy(&t.db, &["--read-pool-size", "1"]).await;
    let (big, small) = (server.token(t.big), server.token(t.small));
    let balance = format!("/v1/loans/{}/balance", t.small_loan);
    let full = reconciliation_time(&server, &big).await;
    assert!(
        full >= Duration::from_millis(1200),
        "a reconciliation must outlast the 1 s checkout wait clearly; it takes {full:?}"
    );

    // Two at once: one is admitted and holds the pool; the other is refused at once, which
    // tells the starved reader to ask while the long read still has most of its time left.
    let running = Notify::new();
    let finished = AtomicBool::new(false);
    let reconciliation = || async {
        let answer = reconcile(&server, &big).await;
        match answer.0 {
            503 => running.notify_one(),
            _ => finished.store(true, Ordering::SeqCst),
        }
        answer
    };
    // Balance reads while the long read runs: answered at once while the connection is still
    // free (the admitted read may not have checked it out yet), then refused once it is held.
    let starved = async {
        running.notified().await;
        let mut answers = Vec::new();
        while !finished.load(Ordering::SeqCst) {
            let asked = Instant::now();
            let (status, retry_after, text) = server.get(&small, &balance).await;
            answers.push((status, retry_after, text, asked.elapsed()));
            if status != 200 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        answers
    };
    let (first, second, answers) = tokio::join!(reconciliation(), reconciliation(), starved);
    let mut statuses = [first.0, second.0];
    statuses.sort_unstable();
    assert_eq!(statuses, [200, 503], "{} / {}", first.2, second.2);
    let (status, retry_after, text, waited) = answers
        .iter()
        .find(|a| a.0 != 200)
        .unwrap_or_else(|| panic!("no read was refused while the pool was held: {answers:?}"));
    assert_overloaded(*status, retry_after.as_deref(), text);
    assert!(
        *waited < Duration::from_secs(3),
        "the refusal came quickly, not after the long read: {waited:?}"
    );
    eprintln!("while the pool was held, a balance read was refused after {waited:?}");

    // Once the pool is free again, the same read succeeds.
    let (status, _, text) = server.get(&small, &balance).await;
    assert_eq!(status, 200, "{text}");
    server.stop().await;
}
