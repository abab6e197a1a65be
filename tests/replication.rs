//! Replicated acknowledgements (`HPTS_DURABILITY=replicated`, SPEC §9) at the store level: the
//! real [`Store`] and its replication waiter, against a stand-in for Litestream's control
//! socket that speaks its `/sync` protocol (HTTP/1.1 on a unix socket) and that each test can
//! hold, fail or slow down. Real Litestream and a real S3 server are driven by the operations
//! tests (`tests/ops/test_replicated_durability.py`).

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use hpts::clock::{IdGenerator, Sources, UuidV7};
use hpts::ledger::commands::{Command, Disbursement, DisbursementMethod};
use hpts::ledger::ids::{BorrowerId, LoanId, TenantId};
use hpts::ledger::money::{Currency, Money};
use hpts::store::{
    ReplicationSettings, Store, StoreError, StoreSettings, WriteOutcome, WriteRequest,
};
use rusqlite::{Connection, OpenFlags};
use serde_json::json;
use tempfile::TempDir;
use uuid::Uuid;

mod common;
use common::store_history;

/// How the stand-in answers `/sync`.
const CONFIRM: u8 = 0;
const FAIL: u8 = 1;
const HOLD: u8 = 2;

/// A stand-in for `litestream replicate`'s control socket.
struct FakeLitestream {
    mode: Arc<AtomicU8>,
    calls: Arc<AtomicU64>,
    socket: PathBuf,
}

impl FakeLitestream {
    /// Listens on `socket`, answering as `mode` says; each `/sync` first waits `delay` (an
    /// upload's time).
    fn start(socket: &Path, mode: u8, delay: Duration) -> FakeLitestream {
        let listener = UnixListener::bind(socket).expect("bind the control socket");
        let mode = Arc::new(AtomicU8::new(mode));
        let calls = Arc::new(AtomicU64::new(0));
        let (m, c) = (Arc::clone(&mode), Arc::clone(&calls));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { return };
                let (m, c) = (Arc::clone(&m), Arc::clone(&c));
                std::thread::spawn(move || answer(stream, &m, &c, delay));
            }
        });
        FakeLitestream {
            mode,
            calls,
            socket: socket.to_path_buf(),
        }
    }

    fn set(&self, mode: u8) {
        self.mode.store(mode, Ordering::SeqCst);
    }

    fn calls(&self) -> u64 {
        self.calls.load(Ordering::SeqCst)
    }
}

/// Reads one request (head and `Content-Length` body) and answers it as Litestream would.
fn answer(stream: UnixStream, mode: &AtomicU8, calls: &AtomicU64, delay: Duration) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut head = String::new();
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line).unwrap_or(0) == 0 {
            return;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().expect("length");
        }
        if line == "\r\n" {
            break;
        }
        head.push_str(&line);
    }
    let mut body = vec![0u8; length];
    reader.read_exact(&mut body).expect("body");
    assert!(head.starts_with("POST /sync HTTP/1.1"), "{head}");
    let request: serde_json::Value = serde_json::from_slice(&body).expect("json body");
    assert_eq!(
        request["wait"], true,
        "the waiter asks Litestream to wait: {request}"
    );
    let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
    std::thread::sleep(delay);
    while mode.load(Ordering::SeqCst) == HOLD {
        std::thread::sleep(Duration::from_millis(5));
    }
    let (status, text) = if mode.load(Ordering::SeqCst) == FAIL {
        (
            "500 Internal Server Error",
            json!({"error": "sync database: replica sync: connection refused"}),
        )
    } else {
        (
            "200 OK",
            json!({"status": "synced", "path": request["path"], "txid": n, "replicated_txid": n}),
        )
    };
    let text = text.to_string();
    let mut stream = stream;
    let _ = write!(
        stream,
        "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{text}",
        text.len()
    );
}

struct Fixture {
    _dir: TempDir,
    path: PathBuf,
    store: Store,
    litestream: FakeLitestream,
}

impl Fixture {
    fn new(delay: Duration, timeout: Duration) -> Fixture {
        Fixture::with_litestream(CONFIRM, delay, timeout)
    }

    /// A store whose Litestream starts out answering as `mode` says.
    fn with_litestream(mode: u8, delay: Duration, timeout: Duration) -> Fixture {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.db");
        let litestream = FakeLitestream::start(&dir.path().join("litestream.sock"), mode, delay);
        let settings = StoreSettings {
            replication: Some(ReplicationSettings {
                socket: litestream.socket.clone(),
                timeout,
            }),
            ..store_history::settings(&path, 10_000)
        };
        let store = Store::open(&settings, Sources::default()).expect("store opens");
        Fixture {
            _dir: dir,
            path,
            store,
            litestream,
        }
    }

    /// Waits until readiness for writes is `ready` (the waiter probes on its own).
    async fn until_accepting(&self, ready: bool) {
        let started = Instant::now();
        while self.store.accepts_writes() != ready {
            assert!(
                started.elapsed() < Duration::from_secs(5),
                "readiness for writes never became {ready}"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    fn entries(&self) -> i64 {
        Connection::open_with_flags(&self.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open")
            .query_row("SELECT count(*) FROM journal_entries", [], |r| r.get(0))
            .expect("count")
    }
}

fn disbursement() -> WriteRequest {
    let (tenant, loan, borrower) = (UuidV7.new_id(), UuidV7.new_id(), UuidV7.new_id());
    let payload = json!({
        "loan_id": loan.to_string(),
        "borrower_id": borrower.to_string(),
        "amount_minor": "10000",
        "currency": "USD",
        "effective_at": "2026-11-01",
        "method": "ach",
    });
    WriteRequest {
        tenant: TenantId::from_uuid(tenant),
        actor: Some("replication-test".into()),
        route: "/v1/disbursements",
        idempotency_key: format!("disbursement:{loan}"),
        payload: payload.to_string(),
        metadata: None,
        traceparent: None,
        command: Command::Disburse(Disbursement {
            loan_id: LoanId::from_uuid(loan),
            borrower_id: BorrowerId::from_uuid(borrower),
            amount: Money::from_minor(10_000),
            currency: Currency::parse("USD").expect("USD"),
            effective_at: time::macros::date!(2026 - 11 - 01),
            method: DisbursementMethod::Ach,
            destination_ref: None,
        }),
    }
}

fn uuid_of(body: &[u8], field: &str) -> Uuid {
    let v: serde_json::Value = serde_json::from_slice(body).expect("json");
    v[field].as_str().expect(field).parse().expect("uuid")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_waits_for_the_first_sync_that_reaches_the_replica() {
    let fx = Fixture::with_litestream(FAIL, Duration::ZERO, Duration::from_secs(2));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(fx.store.is_ready(), "the writer runs");
    assert!(!fx.store.accepts_writes(), "no sync has succeeded yet");
    fx.litestream.set(CONFIRM);
    fx.until_accepting(true).await;
    let stats = fx.store.replication().expect("replicated");
    assert!(stats.up.load(Ordering::SeqCst));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_write_is_committed_at_once_but_answered_only_once_the_replica_confirms_it() {
    let fx = Fixture::new(Duration::ZERO, Duration::from_secs(10));
    fx.until_accepting(true).await;
    let before = fx.litestream.calls();
    fx.litestream.set(HOLD);
    let store = fx.store.clone();
    let pending = tokio::spawn(async move { store.write(disbursement()).await });
    // Committed locally, but not answered while the replica has not confirmed it.
    let started = Instant::now();
    while fx.entries() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the write was never committed"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !pending.is_finished(),
        "answered before the replica confirmed it"
    );
    assert!(
        fx.litestream.calls() > before,
        "the waiter asked Litestream to sync"
    );
    fx.litestream.set(CONFIRM);
    let answer = pending.await.expect("task");
    assert!(matches!(answer, Ok(WriteOutcome::Created(_))), "{answer:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_sync_serves_every_batch_committed_before_it_began() {
    // Each sync takes 50 ms, as an object-store upload would; 400 writes from 200 clients.
    let fx = Fixture::new(Duration::from_millis(50), Duration::from_secs(10));
    fx.until_accepting(true).await;
    let before = fx.litestream.calls();
    let commits_before = fx.store.stats().commits.load(Ordering::SeqCst);
    let clients: Vec<_> = (0..200)
        .map(|_| {
            let store = fx.store.clone();
            tokio::spawn(async move {
                for _ in 0..2 {
                    let answer = store.write(disbursement()).await;
                    assert!(matches!(answer, Ok(WriteOutcome::Created(_))), "{answer:?}");
                }
            })
        })
        .collect();
    for c in clients {
        c.await.expect("client");
    }
    let syncs = fx.litestream.calls() - before;
    let commits = fx.store.stats().commits.load(Ordering::SeqCst) - commits_before;
    assert_eq!(fx.entries(), 400);
    assert!(syncs >= 2, "every write waited for a sync ({syncs})");
    assert!(
        syncs * 10 <= 400,
        "{syncs} syncs for 400 writes: waits are not shared"
    );
    assert!(
        syncs <= commits,
        "{syncs} syncs for {commits} batches: one sync must serve several batches"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unconfirmed_write_is_refused_in_time_stays_committed_and_replays_once_replication_returns()
 {
    let fx = Fixture::new(Duration::ZERO, Duration::from_millis(400));
    fx.until_accepting(true).await;
    fx.litestream.set(FAIL);
    let request = disbursement();
    let started = Instant::now();
    let answer = fx.store.write(request.clone()).await;
    let took = started.elapsed();
    assert!(
        matches!(answer, Err(StoreError::ReplicationUnavailable)),
        "{answer:?}"
    );
    assert!(
        took >= Duration::from_millis(400) && took < Duration::from_millis(1500),
        "refused after {took:?}, the timeout is 400 ms"
    );
    assert_eq!(fx.entries(), 1, "the refused write stays committed locally");
    assert!(
        !fx.store.accepts_writes(),
        "readiness is false while syncs fail"
    );
    let stats = fx.store.replication().expect("replicated");
    assert!(stats.failures.load(Ordering::SeqCst) >= 1);
    assert_eq!(stats.timed_out.load(Ordering::SeqCst), 1);

    // Replication comes back: readiness recovers with no traffic, and the same request is a
    // replay of the committed write.
    fx.litestream.set(CONFIRM);
    fx.until_accepting(true).await;
    match fx.store.write(request).await {
        Ok(WriteOutcome::Replayed(body)) => {
            let entry = uuid_of(&body, "journal_entry_id");
            let stored: String =
                Connection::open_with_flags(&fx.path, OpenFlags::SQLITE_OPEN_READ_ONLY)
                    .expect("open")
                    .query_row("SELECT entry_id FROM journal_entries", [], |r| r.get(0))
                    .expect("entry");
            assert_eq!(stored, entry.to_string());
        }
        other => panic!("expected the stored answer, got {other:?}"),
    }
    assert_eq!(fx.entries(), 1, "the retry wrote nothing new");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn webhooks_are_read_only_for_entries_the_replica_has() {
    let fx = Fixture::new(Duration::ZERO, Duration::from_millis(300));
    fx.until_accepting(true).await;
    let answer = fx.store.write(disbursement()).await;
    assert!(matches!(answer, Ok(WriteOutcome::Created(_))), "{answer:?}");
    let now_ms = i64::MAX / 2;
    let due = fx.store.due_deliveries(now_ms, 10).await.expect("due");
    assert_eq!(due.len(), 1, "the replicated entry's webhook is due");

    fx.litestream.set(FAIL);
    let due = fx.store.due_deliveries(now_ms, 10).await;
    assert!(
        matches!(due, Err(StoreError::ReplicationUnavailable)),
        "with the replica unreachable no webhook is handed out: {due:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_answers_every_write_still_waiting_for_the_replica() {
    let fx = Fixture::new(Duration::from_millis(20), Duration::from_millis(500));
    fx.until_accepting(true).await;
    fx.litestream.set(HOLD);
    let pending: Vec<_> = (0..20)
        .map(|_| {
            let store = fx.store.clone();
            tokio::spawn(async move { store.write(disbursement()).await })
        })
        .collect();
    tokio::time::sleep(Duration::from_millis(100)).await;
    let store = fx.store.clone();
    tokio::task::spawn_blocking(move || store.shutdown())
        .await
        .expect("shutdown");
    for p in pending {
        let answer = p.await.expect("task");
        assert!(
            matches!(answer, Err(StoreError::ReplicationUnavailable)),
            "{answer:?}"
        );
    }
    assert_eq!(fx.entries(), 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_replicated_acknowledgements_litestream_alone_checkpoints_the_wal() {
    // A local store with the same settings checkpoints on its own every 200 ms...
    let dir = tempfile::tempdir().expect("tempdir");
    let local = Store::open(
        &store_history::settings(&dir.path().join("local.db"), 10_000),
        Sources::default(),
    )
    .expect("store opens");
    let fx = Fixture::new(Duration::ZERO, Duration::from_secs(10));
    fx.until_accepting(true).await;
    for store in [&local, &fx.store] {
        for _ in 0..50 {
            let answer = store.write(disbursement()).await;
            assert!(matches!(answer, Ok(WriteOutcome::Created(_))), "{answer:?}");
        }
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert!(
        local.stats().checkpoints.load(Ordering::SeqCst) > 0,
        "the local store checkpoints its WAL itself"
    );
    // ...while a replicated one leaves every checkpoint, and the WAL's restarts, to Litestream.
    assert_eq!(fx.store.stats().checkpoints.load(Ordering::SeqCst), 0);
    assert_eq!(fx.store.stats().wal_resets.load(Ordering::SeqCst), 0);
    let wal = std::fs::metadata(fx.path.with_extension("db-wal")).expect("the WAL file");
    assert!(
        wal.len() > 0,
        "the committed frames stay in the WAL for Litestream"
    );
}
