//! Reliability under faults, against the real `hpts` executable:
//!
//! - crash consistency: the binary runs under a concurrent write load (disbursements, fees and
//!   payments from eight threads) and is killed with SIGKILL at random moments (seeded xorshift, delay
//!   100–800 ms), `HPTS_FAULT_CYCLES` times (default 20). After every restart every acknowledged
//!   write is present with its original `posted_at`, nothing half-written exists, reconciliation
//!   is ok, and acknowledged requests replay byte for byte;
//! - storage faults: a full disk (a 4 MiB tmpfs) answers 503 problem+json and writes nothing,
//!   and writes resume once space is freed, without a restart; a COMMIT that fails on a full
//!   disk (a burst of writes batched together) leaves nothing in the writer's memory: once a
//!   filler file is deleted, a payment on the loan sees exactly the writes answered 201, refused
//!   keys are free again, and `hpts verify` passes; an unusable database location
//!   stops startup with a clear message naming the path; a missing directory is created.
//!
//! The storage tests mount tmpfs, so they must run as root (they fail, never skip, otherwise).

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hpts::auth::dev::generate_signing_key;
use serde_json::{Value, json};
use tempfile::TempDir;
use uuid::Uuid;

use common::db::{count, read_only};
use common::http::{Reply, blocking_client as client, get_json, post};
use common::server::{
    Server, Site, free_port, hpts_command as hpts, output_text, run_verify, serve_flags,
};
use common::tokens::{KID, token, uuid, write_jwks};

/// Load threads per crash cycle.
const LOAD_THREADS: usize = 8;
/// Acknowledged requests replayed after each restart, at most.
const REPLAY_SAMPLE: usize = 50;
/// Unanswered requests retried after each restart, at most.
const RETRY_SAMPLE: usize = 10;

/// A tiny xorshift64 generator: reproducible fault schedules without another crate.
struct XorShift(u64);

impl XorShift {
    fn new(seed: u64) -> Self {
        XorShift(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform-enough value in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).expect("fits")
    }

    /// Value in `lo..=hi`.
    fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a non-negative integer")),
        Err(_) => default,
    }
}

/// Asserts `/v1/reconciliation/status` is ok in every part.
fn assert_reconciled(client: &reqwest::blocking::Client, server: &Server, token: &str, when: &str) {
    let (status, report) = get_json(client, &server.url("/v1/reconciliation/status"), token);
    assert_eq!(status, 200, "{when}: {report}");
    assert_eq!(
        report["ledger_integrity"]["status"], "ok",
        "{when}: {report}"
    );
    assert_eq!(
        report["portfolio_rollup"]["status"], "ok",
        "{when}: {report}"
    );
    let checks = report["checks"].as_array().expect("checks");
    assert!(!checks.is_empty(), "{when}: {report}");
    for check in checks {
        assert_eq!(check["status"], "ok", "{when}: {check}");
    }
}

/// No partial write anywhere in the file: every event has exactly one entry, every entry has
/// its lines and balances per currency, no orphan lines, one idempotency record per event.
/// Returns the number of journal entries.
fn assert_ledger_whole(db: &Path, when: &str) -> i64 {
    let conn = read_only(db);
    let quick: String = conn
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .expect("quick_check");
    assert_eq!(quick, "ok", "{when}: SQLite quick_check");
    let checks = [
        (
            "events without a journal entry",
            "SELECT count(*) FROM events WHERE event_id NOT IN (SELECT event_id FROM journal_entries)",
        ),
        (
            "events with more than one journal entry",
            "SELECT count(*) FROM (SELECT event_id FROM journal_entries GROUP BY event_id \
             HAVING count(*) > 1)",
        ),
        (
            "journal entries without their event",
            "SELECT count(*) FROM journal_entries WHERE event_id NOT IN (SELECT event_id FROM events)",
        ),
        (
            "entries whose line count differs from line_count",
            "SELECT count(*) FROM journal_entries j \
             WHERE j.line_count != (SELECT count(*) FROM journal_lines l WHERE l.entry_id = j.entry_id)",
        ),
        (
            "entries that do not balance per currency",
            "SELECT count(*) FROM (SELECT entry_id FROM journal_lines GROUP BY entry_id, currency \
             HAVING sum(CASE direction WHEN 'DR' THEN amount_minor ELSE -amount_minor END) != 0)",
        ),
        (
            "lines without a journal entry",
            "SELECT count(*) FROM journal_lines WHERE entry_id NOT IN (SELECT entry_id FROM journal_entries)",
        ),
        (
            "entries with fewer than two lines",
            "SELECT count(*) FROM journal_entries WHERE line_count < 2",
        ),
    ];
    for (what, sql) in checks {
        assert_eq!(count(&conn, sql), 0, "{when}: {what}");
    }
    let events = count(&conn, "SELECT count(*) FROM events");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM idempotency_keys"),
        events,
        "{when}: every committed write stores exactly one idempotency record with its event"
    );
    count(&conn, "SELECT count(*) FROM journal_entries")
}

// ---------------------------------------------------------------------------------------------
// Crash consistency.

/// Where each write kind is posted and which field of its receipt names its event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Disbursement,
    Fee,
    Payment,
}

impl Kind {
    fn path(self) -> &'static str {
        match self {
            Kind::Disbursement => "/v1/disbursements",
            Kind::Fee => "/v1/fees",
            Kind::Payment => "/v1/payments",
        }
    }

    fn event_field(self) -> &'static str {
        match self {
            Kind::Disbursement => "disbursement_event_id",
            Kind::Fee => "fee_event_id",
            Kind::Payment => "payment_event_id",
        }
    }
}

/// One request of the load.
#[derive(Debug, Clone)]
struct Sent {
    kind: Kind,
    key: String,
    body: Value,
}

/// An acknowledged (201) request with the body it was answered.
#[derive(Debug, Clone)]
struct Ack {
    sent: Sent,
    text: String,
    receipt: Value,
}

/// What one load thread saw before the kill.
#[derive(Default)]
struct WorkerReport {
    acked: Vec<Ack>,
    /// Sent, but no complete answer arrived: committed or not, unknown to the client.
    unanswered: Vec<Sent>,
    /// Any answer other than 201 (none is expected).
    unexpected: Vec<String>,
}

type Loans = Arc<Mutex<Vec<(Uuid, Uuid)>>>;

fn next_request(rng: &mut XorShift, loans: &Loans) -> Sent {
    let known = {
        let loans = loans.lock().expect("loans");
        (!loans.is_empty()).then(|| loans[rng.below(loans.len())])
    };
    let amount = rng.between(1, 50_000).to_string();
    let roll = rng.below(10);
    let (kind, body) = match known {
        Some((loan, _)) if (4..7).contains(&roll) => (
            Kind::Fee,
            json!({
                "loan_id": loan, "fee_type": "late", "amount_minor": amount,
                "currency": "USD", "effective_at": "2026-11-02",
            }),
        ),
        Some((loan, borrower)) if roll >= 7 => (
            Kind::Payment,
            json!({
                "loan_id": loan, "borrower_id": borrower, "amount_minor": amount,
                "currency": "USD", "effective_at": "2026-11-03", "source_method": "ach",
            }),
        ),
        _ => (
            Kind::Disbursement,
            json!({
                "loan_id": uuid(), "borrower_id": uuid(), "amount_minor": amount,
                "currency": "USD", "effective_at": "2026-11-01", "method": "ach",
                "metadata": { "suite": "faults" },
            }),
        ),
    };
    Sent {
        kind,
        key: format!("{kind:?}:{}", uuid()).to_lowercase(),
        body,
    }
}

/// Posts writes until `stop`; records what was acknowledged.
fn load_worker(
    address: &str,
    token: &str,
    loans: &Loans,
    stop: &AtomicBool,
    seed: u64,
) -> WorkerReport {
    let client = client(Duration::from_secs(20));
    let mut rng = XorShift::new(seed);
    let mut report = WorkerReport::default();
    while !stop.load(Ordering::SeqCst) {
        let sent = next_request(&mut rng, loans);
        let url = format!("{address}{}", sent.kind.path());
        match post(&client, &url, token, &sent.key, &sent.body) {
            Ok(reply) if reply.status == 201 => {
                let receipt: Value = serde_json::from_str(&reply.text)
                    .unwrap_or_else(|e| panic!("201 without a JSON receipt ({e}): {}", reply.text));
                if sent.kind == Kind::Disbursement {
                    let id = |f: &str| sent.body[f].as_str().and_then(|s| s.parse().ok());
                    if let (Some(loan), Some(borrower)) = (id("loan_id"), id("borrower_id")) {
                        loans.lock().expect("loans").push((loan, borrower));
                    }
                }
                report.acked.push(Ack {
                    sent,
                    text: reply.text,
                    receipt,
                });
            }
            Ok(reply) => report.unexpected.push(format!(
                "{} {} -> {}: {}",
                sent.kind.path(),
                sent.key,
                reply.status,
                reply.text
            )),
            Err(_) => {
                // The server was killed (or is being killed): the outcome is unknown.
                report.unanswered.push(sent);
                std::thread::sleep(Duration::from_millis(5));
            }
        }
    }
    report
}

/// Runs the load against `server`, SIGKILLs it after `delay`, and gathers what happened.
fn load_then_kill(
    server: &mut Server,
    token: &str,
    loans: &Loans,
    delay: Duration,
    rng: &mut XorShift,
) -> WorkerReport {
    let stop = Arc::new(AtomicBool::new(false));
    let workers: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            let (address, token, loans, stop) = (
                server.address.clone(),
                token.to_owned(),
                Arc::clone(loans),
                Arc::clone(&stop),
            );
            let seed = rng.next();
            std::thread::spawn(move || load_worker(&address, &token, &loans, &stop, seed))
        })
        .collect();
    std::thread::sleep(delay);
    server.kill_9();
    stop.store(true, Ordering::SeqCst);
    let mut total = WorkerReport::default();
    for worker in workers {
        let report = worker.join().expect("load thread");
        total.acked.extend(report.acked);
        total.unanswered.extend(report.unanswered);
        total.unexpected.extend(report.unexpected);
    }
    total
}

/// After a restart: each acknowledged write of the last cycle is readable with its original
/// `posted_at`; a sample replays byte for byte; a sample of unanswered requests can be retried
/// safely (201 if it never committed, 200 replay if it did). Returns the retried acks.
fn verify_acknowledged(
    server: &Server,
    token: &str,
    acked: &[Ack],
    unanswered: &[Sent],
    rng: &mut XorShift,
    cycle: u64,
) -> Vec<Ack> {
    let client = client(Duration::from_secs(30));
    for ack in acked {
        let entry_id = ack.receipt["journal_entry_id"].as_str().expect("entry id");
        let (status, entry) = get_json(
            &client,
            &server.url(&format!("/v1/journal-entries/{entry_id}")),
            token,
        );
        assert_eq!(
            status,
            200,
            "cycle {cycle}: acknowledged {} {} lost after SIGKILL: {entry}",
            ack.sent.kind.path(),
            ack.sent.key
        );
        assert_eq!(entry["journal_entry_id"], ack.receipt["journal_entry_id"]);
        assert_eq!(
            entry["posted_at"], ack.receipt["posted_at"],
            "cycle {cycle}: posted_at survives the crash unchanged"
        );
        assert_eq!(
            entry["correlation_id"],
            ack.receipt[ack.sent.kind.event_field()],
            "cycle {cycle}: {entry}"
        );
        assert!(
            entry["lines"].as_array().is_some_and(|l| l.len() >= 2),
            "cycle {cycle}: {entry}"
        );
    }
    let mut sample: Vec<&Ack> = acked.iter().collect();
    while sample.len() > REPLAY_SAMPLE {
        let i = rng.below(sample.len());
        sample.swap_remove(i);
    }
    for ack in sample {
        let reply = post(
            &client,
            &server.url(ack.sent.kind.path()),
            token,
            &ack.sent.key,
            &ack.sent.body,
        )
        .expect("replay");
        assert_eq!(
            reply.status, 200,
            "cycle {cycle}: replay of {}: {}",
            ack.sent.key, reply.text
        );
        assert!(reply.replayed, "cycle {cycle}: Idempotent-Replayed: true");
        assert_eq!(
            reply.text, ack.text,
            "cycle {cycle}: the replay is the stored body, byte for byte"
        );
    }
    let mut retried = Vec::new();
    for sent in unanswered.iter().take(RETRY_SAMPLE) {
        let reply = post(
            &client,
            &server.url(sent.kind.path()),
            token,
            &sent.key,
            &sent.body,
        )
        .expect("retry");
        assert!(
            reply.status == 201 || (reply.status == 200 && reply.replayed),
            "cycle {cycle}: retrying unanswered {} {} after the crash must be a fresh 201 \
             or a 200 replay, got {} {}: {}",
            sent.kind.path(),
            sent.key,
            reply.status,
            reply.content_type,
            reply.text
        );
        retried.push(Ack {
            sent: sent.clone(),
            receipt: serde_json::from_str(&reply.text).expect("receipt"),
            text: reply.text,
        });
    }
    retried
}

/// Every entry id ever acknowledged is in the file.
fn assert_entries_present(db: &Path, entry_ids: &[String], cycle: u64) {
    let conn = read_only(db);
    let mut stmt = conn
        .prepare("SELECT count(*) FROM journal_entries WHERE entry_id = ?1")
        .expect("prepare");
    for id in entry_ids {
        let n: i64 = stmt.query_row([id], |r| r.get(0)).expect("lookup");
        assert_eq!(n, 1, "cycle {cycle}: acknowledged entry {id} is missing");
    }
}

#[test]
fn acknowledged_writes_survive_random_sigkills_under_concurrent_load() {
    let cycles = env_number("HPTS_FAULT_CYCLES", 20);
    assert!(cycles >= 1, "HPTS_FAULT_CYCLES must be at least 1");
    let seed = env_number("HPTS_FAULT_SEED", 0x5EED_F00D_CAFE_0001);
    eprintln!(
        "crash suite: {cycles} SIGKILL cycles, seed {seed} (set HPTS_FAULT_SEED to reproduce)"
    );
    let dir = tempfile::tempdir().expect("tempdir");
    let (db, jwks) = (dir.path().join("ledger.db"), dir.path().join("jwks.json"));
    let signing = generate_signing_key().expect("key");
    write_jwks(&jwks, &[(KID, &signing)]);
    let token = token(&signing, uuid());
    let loans: Loans = Arc::new(Mutex::new(Vec::new()));
    let mut rng = XorShift::new(seed);
    let (mut last_acked, mut last_unanswered) = (Vec::<Ack>::new(), Vec::<Sent>::new());
    let mut every_entry: Vec<String> = Vec::new();
    let (mut total_acked, mut total_unanswered) = (0usize, 0usize);
    let http = client(Duration::from_secs(30));
    for cycle in 0..=cycles {
        let log = dir.path().join(format!("hpts-{cycle}.log"));
        let mut server = Server::start(&db, &jwks, Some(&log));
        if cycle > 0 {
            let previous = dir.path().join(format!("hpts-{}.log", cycle - 1));
            let text = std::fs::read_to_string(&previous).unwrap_or_default();
            assert!(
                !text.contains("panicked"),
                "cycle {cycle}: the killed process panicked: {text}"
            );
        }
        let when = format!("after SIGKILL #{cycle}");
        let entries = assert_ledger_whole(&db, &when);
        assert!(
            usize::try_from(entries).expect("count") >= every_entry.len(),
            "{when}: fewer entries than acknowledged"
        );
        assert_entries_present(&db, &every_entry, cycle);
        let retried = verify_acknowledged(
            &server,
            &token,
            &last_acked,
            &last_unanswered,
            &mut rng,
            cycle,
        );
        every_entry.extend(retried.iter().map(|a| {
            a.receipt["journal_entry_id"]
                .as_str()
                .expect("entry id")
                .to_owned()
        }));
        assert_reconciled(&http, &server, &token, &when);
        assert_ledger_whole(&db, &format!("{when}, after replays and retries"));
        if cycle == cycles {
            server.kill_9();
            break;
        }
        let delay = Duration::from_millis(rng.between(100, 800));
        let report = load_then_kill(&mut server, &token, &loans, delay, &mut rng);
        assert!(
            report.unexpected.is_empty(),
            "cycle {cycle}: answers other than 201 under load: {:#?}",
            report.unexpected
        );
        eprintln!(
            "cycle {cycle}: killed after {delay:?}: {} acknowledged, {} unanswered",
            report.acked.len(),
            report.unanswered.len()
        );
        total_acked += report.acked.len();
        total_unanswered += report.unanswered.len();
        every_entry.extend(report.acked.iter().map(|a| {
            a.receipt["journal_entry_id"]
                .as_str()
                .expect("entry id")
                .to_owned()
        }));
        last_acked = report.acked;
        last_unanswered = report.unanswered;
    }
    eprintln!(
        "crash suite: {total_acked} writes acknowledged and verified, {total_unanswered} unanswered at kill time"
    );
    assert!(
        total_acked >= usize::try_from(cycles).expect("cycles"),
        "the load acknowledged too few writes ({total_acked}) to prove anything"
    );
    let verify = run_verify(&db);
    assert!(
        verify.status.success(),
        "hpts verify after {cycles} crashes: {}",
        output_text(&verify)
    );
}

// ---------------------------------------------------------------------------------------------
// Storage faults.

fn uid() -> String {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(1).map(str::to_owned))
        })
        .unwrap_or_else(|| "unknown".into())
}

fn run_mount(args: &[&str], dir: &Path) -> Result<(), String> {
    let out = Command::new("mount")
        .args(args)
        .arg(dir)
        .output()
        .map_err(|e| format!("cannot run mount: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// A tmpfs mounted on a fresh directory, unmounted when dropped.
struct Tmpfs {
    dir: TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().expect("tempdir");
        if let Err(e) = run_mount(
            &["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"],
            dir.path(),
        ) {
            panic!(
                "storage fault tests must run as root with permission to mount tmpfs \
                 (running as uid {}); `mount -t tmpfs` failed: {e}",
                uid()
            );
        }
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn remount(&self, options: &str) {
        run_mount(&["-o", &format!("remount,{options}")], self.path())
            .unwrap_or_else(|e| panic!("remount {options}: {e}"));
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let ok = Command::new("umount")
            .arg(self.dir.path())
            .status()
            .is_ok_and(|s| s.success());
        if !ok {
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
        }
    }
}

/// A database on a tmpfs of a given size; the trusted key and the server log live in a
/// directory of their own (a `Site`, whose own database is unused).
struct SmallDisk {
    disk: Tmpfs,
    keys: Site,
    db: PathBuf,
}

impl SmallDisk {
    fn mount(size: &str) -> SmallDisk {
        let disk = Tmpfs::mount(size);
        let db = disk.path().join("ledger.db");
        SmallDisk {
            disk,
            keys: Site::new(),
            db,
        }
    }

    /// `hpts serve` on the database, logging beside the key.
    fn start(&self) -> Server {
        Server::start(&self.db, &self.keys.jwks, Some(&self.keys.path("hpts.log")))
    }
}

/// A disbursement of about 2.5 KB (long `destination_ref` and `metadata`), to fill space fast.
fn padded_disbursement() -> Value {
    json!({
        "loan_id": uuid(), "borrower_id": uuid(), "amount_minor": "1000",
        "currency": "USD", "effective_at": "2026-11-01", "method": "wire",
        "destination_ref": "d".repeat(255),
        "metadata": { "note": "n".repeat(1900) },
    })
}

#[test]
fn a_full_disk_refuses_writes_with_503_and_writes_resume_when_space_is_freed() {
    let small = SmallDisk::mount("4m");
    let (disk, db) = (&small.disk, small.db.clone());
    let server = small.start();
    let token = small.keys.token(uuid());
    let http = client(Duration::from_secs(30));
    let url = server.url("/v1/disbursements");

    let mut created = 0i64;
    let mut refused: Option<(String, Value)> = None;
    let mut after_full = 0;
    for attempt in 0..20_000 {
        let (key, body) = (format!("disk-full:{}", uuid()), padded_disbursement());
        let reply = post(&http, &url, &token, &key, &body).expect("answer");
        match reply.status {
            201 => created += 1,
            503 => {
                assert_storage_full(&reply, "a write on the full disk");
                assert_eq!(reply.json()["status"], 503, "{}", reply.text);
                assert!(
                    reply
                        .retry_after
                        .as_deref()
                        .is_some_and(|s| s.parse::<u32>().is_ok_and(|n| n >= 1)),
                    "503 carries Retry-After in seconds: {:?}",
                    reply.retry_after
                );
                refused.get_or_insert((key, body));
                after_full += 1;
            }
            other => panic!(
                "attempt {attempt} on a filling disk: expected 201 or 503, got {other}: {}",
                reply.text
            ),
        }
        if after_full == 5 {
            break;
        }
    }
    let (refused_key, refused_body) =
        refused.expect("a 4 MiB disk fills up within 20 000 padded writes");
    assert!(created > 0, "some writes fit before the disk was full");
    eprintln!("disk full after {created} writes");
    assert_eq!(
        metric(&http, &server, "hpts_writer_storage_full_total"),
        after_full,
        "every write refused for space is counted for the disk-full alert"
    );

    let when = "with the disk full";
    assert_eq!(
        assert_ledger_whole(&db, when),
        created,
        "{when}: journal entries = acknowledged writes (nothing half-written)"
    );
    assert_eq!(
        count(&read_only(&db), "SELECT count(*) FROM events"),
        created
    );
    assert_reconciled(&http, &server, &token, when);
    let (status, live) = get_json(&http, &server.url("/v1/health/live"), &token);
    assert_eq!(status, 200, "{live}");

    disk.remount("size=64m");
    let retry = post(&http, &url, &token, &refused_key, &refused_body).expect("answer");
    assert_eq!(
        retry.status, 201,
        "the refused request's key was not consumed: {}",
        retry.text
    );
    for _ in 0..20 {
        let reply = post(
            &http,
            &url,
            &token,
            &format!("disk-freed:{}", uuid()),
            &padded_disbursement(),
        )
        .expect("answer");
        assert_eq!(
            reply.status, 201,
            "writes resume once space is freed, without a restart: {}",
            reply.text
        );
    }
    let when = "after space was freed";
    assert_eq!(assert_ledger_whole(&db, when), created + 21, "{when}");
    assert_reconciled(&http, &server, &token, when);
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
}

#[test]
fn concurrent_writes_on_a_filling_disk_are_each_committed_or_refused_never_half_written() {
    let small = SmallDisk::mount("4m");
    let db = small.db.clone();
    let server = small.start();
    let token = small.keys.token(uuid());
    let url = server.url("/v1/disbursements");
    // Eight writers share group-commit batches; each stops after its fifth 503.
    let workers: Vec<_> = (0..LOAD_THREADS)
        .map(|_| {
            let (url, token) = (url.clone(), token.clone());
            std::thread::spawn(move || {
                let http = client(Duration::from_secs(30));
                let (mut created, mut refused) = (0i64, 0);
                for _ in 0..5_000 {
                    let key = format!("disk-full:{}", uuid());
                    let reply =
                        post(&http, &url, &token, &key, &padded_disbursement()).expect("answer");
                    match reply.status {
                        201 => created += 1,
                        503 if reply.content_type == "application/problem+json"
                            && reply.text.contains("\"not_ready\"") =>
                        {
                            refused += 1;
                        }
                        other => panic!(
                            "concurrent write on a filling disk: expected 201 or 503 \
                             not_ready, got {other} {}: {}",
                            reply.content_type, reply.text
                        ),
                    }
                    if refused == 5 {
                        break;
                    }
                }
                (created, refused)
            })
        })
        .collect();
    let mut created = 0;
    for worker in workers {
        let (c, refused) = worker.join().expect("writer thread");
        assert_eq!(refused, 5, "every writer met the full disk");
        created += c;
    }
    let when = "after concurrent writes filled the disk";
    assert_eq!(
        assert_ledger_whole(&db, when),
        created,
        "{when}: journal entries = acknowledged writes"
    );
    assert_reconciled(&client(Duration::from_secs(30)), &server, &token, when);
}

/// Fills the file system holding `dir` with one file until the kernel refuses another byte
/// (ENOSPC); returns the file. Writes shrink from 64 KiB to one byte, so no space is left over.
fn fill_the_disk(dir: &Path) -> PathBuf {
    use std::io::Write;
    const ENOSPC: i32 = 28;
    let path = dir.join("filler");
    let mut file = File::create(&path).expect("filler file");
    let mut written = 0usize;
    for size in [64 * 1024, 4096, 512, 1] {
        let chunk = vec![0xa5u8; size];
        loop {
            assert!(written < 1 << 30, "a small tmpfs took 1 GiB of filler");
            match file.write(&chunk) {
                Ok(0) => break,
                Ok(n) => written += n,
                Err(e) if e.raw_os_error() == Some(ENOSPC) => break,
                Err(e) => panic!("filling {}: {e}", path.display()),
            }
        }
    }
    assert!(written > 0, "the filler took some space");
    path
}

/// A padded disbursement (as [`padded_disbursement`]) on a given loan.
fn padded_disbursement_on(loan: Uuid, borrower: Uuid, amount: i64) -> Value {
    let mut body = padded_disbursement();
    body["loan_id"] = json!(loan);
    body["borrower_id"] = json!(borrower);
    body["amount_minor"] = json!(amount.to_string());
    body
}

/// One unlabelled integer series of `GET /metrics`.
fn metric(client: &reqwest::blocking::Client, server: &Server, name: &str) -> usize {
    usize::try_from(server.metric(client, name)).expect("fits")
}

/// The answer to a write on a full disk: 503 problem+json `not_ready` about space.
fn assert_storage_full(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 503, "{what}: {}", reply.text);
    assert_eq!(
        reply.content_type, "application/problem+json",
        "{what}: {}",
        reply.text
    );
    let problem: Value = serde_json::from_str(&reply.text).expect("problem json");
    assert_eq!(problem["code"], "not_ready", "{what}: {problem}");
    assert!(
        problem["detail"]
            .as_str()
            .is_some_and(|d| d.contains("space")),
        "{what}: the detail mentions space: {problem}"
    );
}

/// One disbursement of a burst: its amount, key, body and answer.
struct BurstWrite {
    amount: i64,
    key: String,
    body: Value,
    reply: Reply,
}

/// Writes in one burst.
const BURST: usize = 8;

/// Fires [`BURST`] concurrent padded disbursements on `loan`. Meanwhile a write lock on the file
/// keeps the writer waiting in `BEGIN IMMEDIATE` (its busy timeout is 5 s; the lock is held at
/// most 1.5 s) until the burst is in its queue, so the burst is decided in few batches of several
/// writes. Returns every write with its answer, and the most writes seen queued together.
fn burst_of_disbursements(
    server: &Server,
    db: &Path,
    token: &str,
    (loan, borrower): (Uuid, Uuid),
    round: i64,
) -> (Vec<BurstWrite>, usize) {
    let lock =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_WRITE)
            .expect("lock connection");
    lock.pragma_update(None, "busy_timeout", 5000)
        .expect("busy timeout");
    lock.execute_batch("BEGIN IMMEDIATE")
        .expect("take the write lock");
    let url = server.url("/v1/disbursements");
    std::thread::scope(|scope| {
        let writers: Vec<_> = (0..BURST)
            .map(|j| {
                let url = &url;
                scope.spawn(move || {
                    let amount = 1_000 + 100 * round + i64::try_from(j).expect("small");
                    let key = format!("burst:{round}:{j}:{}", uuid());
                    let body = padded_disbursement_on(loan, borrower, amount);
                    let reply = post(&client(Duration::from_secs(30)), url, token, &key, &body)
                        .expect("answer");
                    BurstWrite {
                        amount,
                        key,
                        body,
                        reply,
                    }
                })
            })
            .collect();
        // Every write but the (at most one) batch the writer took before it blocked.
        let probe = client(Duration::from_secs(1));
        let started = Instant::now();
        let mut queued = 0;
        while queued < BURST - 1 && started.elapsed() < Duration::from_millis(1500) {
            queued = queued.max(metric(&probe, server, "hpts_writer_queue_depth"));
            std::thread::sleep(Duration::from_millis(5));
        }
        lock.execute_batch("ROLLBACK")
            .expect("release the write lock");
        let answered = writers
            .into_iter()
            .map(|w| w.join().expect("burst writer"))
            .collect();
        (answered, queued)
    })
}

/// What a full disk did to the bursts on one loan.
struct FullDisk {
    /// Burst writes answered 201.
    committed: Vec<BurstWrite>,
    /// Burst writes answered 503 (their batch's COMMIT failed).
    refused: Vec<BurstWrite>,
    /// The loan a refused probe tried to open.
    refused_probe_loan: String,
    /// Most writes of the refused burst seen waiting for the writer together.
    queued_together: usize,
}

/// On a full disk, writes may still commit into WAL space `SQLite` reuses: probes (padded
/// disbursements on new loans) until one fails, then a burst on `loan`; again if every write of
/// the burst happened to fit, or if no two of its writes were seen waiting together (at most
/// ten rounds).
fn burst_until_a_commit_fails(
    server: &Server,
    db: &Path,
    token: &str,
    loan: (Uuid, Uuid),
) -> FullDisk {
    let http = client(Duration::from_secs(30));
    let url = server.url("/v1/disbursements");
    let (mut committed, mut refused) = (Vec::new(), Vec::new());
    for round in 0..10 {
        let failed_probe = (0..5_000).find_map(|_| {
            let body = padded_disbursement();
            let reply =
                post(&http, &url, token, &format!("probe:{}", uuid()), &body).expect("answer");
            if reply.status == 201 {
                return None;
            }
            assert_storage_full(&reply, "a write on the full disk");
            Some(body["loan_id"].as_str().expect("loan id").to_owned())
        });
        let refused_probe_loan =
            failed_probe.expect("a write fails on the full disk within 5 000 attempts");
        let (burst, queued_together) = burst_of_disbursements(server, db, token, loan, round);
        for w in burst {
            if w.reply.status == 201 {
                committed.push(w);
            } else {
                assert_storage_full(&w.reply, "a burst write on the full disk");
                refused.push(w);
            }
        }
        // A round counts once a COMMIT failed with several burst writes waiting for the writer
        // together. On a busy machine the writer can instead take the whole burst in one go
        // before it blocks (nothing is then seen queued); that round's writes are kept and
        // another round runs.
        if !refused.is_empty() && queued_together >= 2 {
            return FullDisk {
                committed,
                refused,
                refused_probe_loan,
                queued_together,
            };
        }
    }
    panic!(
        "no burst on the full disk met a failing COMMIT with its writes queued together in ten rounds"
    );
}

/// The loan's balance: `(principal, disbursed, suspense, paid)`.
fn loan_balance(
    http: &reqwest::blocking::Client,
    server: &Server,
    token: &str,
    loan: Uuid,
) -> [String; 4] {
    let (status, balance) = get_json(
        http,
        &server.url(&format!("/v1/loans/{loan}/balance")),
        token,
    );
    assert_eq!(status, 200, "{balance}");
    [
        "principal_outstanding_minor",
        "disbursed_total_minor",
        "suspense_minor",
        "paid_total_minor",
    ]
    .map(|f| {
        balance[f]
            .as_str()
            .unwrap_or_else(|| panic!("{f}: {balance}"))
            .to_owned()
    })
}

/// After space returned: a refused burst request's key was never taken (sent again it is a new
/// write, committed), every committed request replays its first answer, and new writes commit.
fn assert_keys_after_the_full_disk(
    server: &Server,
    token: &str,
    loan: Uuid,
    (opening, opened): (&Value, &Reply),
    full: &FullDisk,
) {
    let http = client(Duration::from_secs(30));
    let url = server.url("/v1/disbursements");
    // A refused request's key was never taken: sent again it is a new write, now committed.
    let again = &full.refused[0];
    let retried = post(&http, &url, token, &again.key, &again.body).expect("answer");
    assert_eq!(retried.status, 201, "{}", retried.text);
    assert!(!retried.replayed, "a refused request is not replayed");
    assert_eq!(
        loan_balance(&http, server, token, loan)[0],
        again.amount.to_string(),
        "the retried disbursement is all the loan owes"
    );
    // Committed requests replay their first answer.
    let first_answers = std::iter::once(("commit-fails:open", opening, opened)).chain(
        full.committed
            .iter()
            .map(|w| (w.key.as_str(), &w.body, &w.reply)),
    );
    for (key, body, first) in first_answers {
        let answer = post(&http, &url, token, key, body).expect("answer");
        assert_eq!(
            (answer.status, answer.replayed, answer.text.as_str()),
            (200, true, first.text.as_str()),
            "key {key} replays its first answer"
        );
    }
    for _ in 0..5 {
        let fresh = post(
            &http,
            &url,
            token,
            &format!("space-returned:{}", uuid()),
            &padded_disbursement(),
        )
        .expect("answer");
        assert_eq!(fresh.status, 201, "{}", fresh.text);
    }
}

/// Pays `paid` (more than the loan can owe) on `loan`: exactly `principal` goes to principal, the
/// rest to suspense, and the loan's balance agrees.
fn assert_a_payment_of_everything_pays_exactly(
    server: &Server,
    token: &str,
    (loan, borrower): (Uuid, Uuid),
    paid: i64,
    principal: i64,
) {
    let http = client(Duration::from_secs(30));
    let payment = json!({
        "loan_id": loan, "borrower_id": borrower, "amount_minor": paid.to_string(),
        "currency": "USD", "effective_at": "2026-11-03", "source_method": "ach",
    });
    let paid_reply = post(
        &http,
        &server.url("/v1/payments"),
        token,
        "commit-fails:pay",
        &payment,
    )
    .expect("answer");
    assert_eq!(
        paid_reply.status, 201,
        "writes resume once space returns: {}",
        paid_reply.text
    );
    let receipt: Value = serde_json::from_str(&paid_reply.text).expect("receipt");
    let allocation = [
        "fees_minor",
        "interest_minor",
        "principal_minor",
        "suspense_minor",
    ]
    .map(|f| receipt["allocation"][f].as_str().map(str::to_owned));
    assert_eq!(
        allocation,
        [0, 0, principal, paid - principal].map(|m| Some(m.to_string())),
        "the payment pays exactly the opening and the burst writes answered 201, none refused: {receipt}"
    );
    assert_eq!(
        loan_balance(&http, server, token, loan),
        [0, principal, paid - principal, paid].map(|m| m.to_string()),
        "the loan's balance agrees"
    );
}

/// SIGTERM, a graceful exit without a panic, then `hpts verify` on the file exits 0.
fn stop_and_verify(server: &mut Server, db: &Path) {
    server.stop();
    assert!(
        !server.log_text().contains("panicked"),
        "{}",
        server.log_text()
    );
    let verify = run_verify(db);
    assert!(
        verify.status.success(),
        "hpts verify: {}",
        output_text(&verify)
    );
}

#[test]
fn a_commit_that_fails_on_a_full_disk_leaves_nothing_in_the_writers_memory_and_writes_resume_when_space_returns()
 {
    const OPENING: i64 = 250_000;
    let small = SmallDisk::mount("8m");
    let (disk, db) = (&small.disk, small.db.clone());
    let mut server = small.start();
    let token = small.keys.token(uuid());
    let http = client(Duration::from_secs(30));
    let url = server.url("/v1/disbursements");
    let (loan, borrower) = (uuid(), uuid());
    let opening = json!({
        "loan_id": loan, "borrower_id": borrower, "amount_minor": OPENING.to_string(),
        "currency": "USD", "effective_at": "2026-11-01", "method": "ach",
    });
    let opened = post(&http, &url, &token, "commit-fails:open", &opening).expect("answer");
    assert_eq!(opened.status, 201, "{}", opened.text);

    let filler = fill_the_disk(disk.path());
    let full = burst_until_a_commit_fails(&server, &db, &token, (loan, borrower));
    assert!(
        metric(&http, &server, "hpts_writer_max_batch_size") >= 2,
        "the writer took several burst writes into one batch"
    );
    eprintln!(
        "full disk: {} burst writes refused, {} committed, {} queued together",
        full.refused.len(),
        full.committed.len(),
        full.queued_together
    );

    // Space returns; the service is not restarted. A payment larger than every possible
    // principal shows what the writer believes the loan owes.
    std::fs::remove_file(&filler).expect("remove the filler");
    let principal = OPENING + full.committed.iter().map(|w| w.amount).sum::<i64>();
    let paid = OPENING
        + full
            .committed
            .iter()
            .chain(&full.refused)
            .map(|w| w.amount)
            .sum::<i64>()
        + 1_000_000;
    assert_a_payment_of_everything_pays_exactly(&server, &token, (loan, borrower), paid, principal);
    let (status, body) = get_json(
        &http,
        &server.url(&format!("/v1/loans/{}/balance", full.refused_probe_loan)),
        &token,
    );
    assert_eq!(status, 404, "a refused write opened no loan: {body}");

    assert_keys_after_the_full_disk(&server, &token, loan, (&opening, &opened), &full);
    let when = "after space returned";
    assert_reconciled(&http, &server, &token, when);
    assert_ledger_whole(&db, when);
    let disbursements: i64 = read_only(&db)
        .query_row(
            "SELECT count(*) FROM events WHERE loan_id = ?1 AND event_type = 'disbursement'",
            [loan.to_string()],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(
        disbursements,
        i64::try_from(full.committed.len() + 2).expect("small"),
        "{when}: the loan holds the opening, the burst writes answered 201 and the retry"
    );

    stop_and_verify(&mut server, &db);
}

/// Runs `hpts serve` on `db`, which must fail to start within 30 s; returns status and stderr.
fn serve_must_fail(db: &Path) -> (ExitStatus, String) {
    let keys = tempfile::tempdir().expect("tempdir");
    let jwks = keys.path().join("jwks.json");
    write_jwks(&jwks, &[(KID, &generate_signing_key().expect("key"))]);
    let err_path = keys.path().join("stderr");
    let mut child = hpts()
        .args(serve_flags(
            &format!("127.0.0.1:{}", free_port()),
            db,
            &jwks,
            "warn",
            &[],
        ))
        .stdout(Stdio::null())
        .stderr(File::create(&err_path).expect("stderr file"))
        .spawn()
        .expect("spawn");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "hpts kept running on an unusable database location {}",
                db.display()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (
        status,
        std::fs::read_to_string(&err_path).unwrap_or_default(),
    )
}

fn assert_clear_startup_failure(db: &Path, names: &Path, what: &str) {
    let (status, stderr) = serve_must_fail(db);
    assert!(!status.success(), "{what}: exit status {status}");
    assert!(
        status.code().is_some(),
        "{what}: exits with a code, not a signal: {status}"
    );
    assert!(
        stderr.contains(&names.display().to_string()),
        "{what}: stderr names {}: {stderr}",
        names.display()
    );
    assert!(!stderr.contains("panicked"), "{what}: no panic: {stderr}");
}

#[test]
fn a_database_path_under_a_regular_file_stops_startup_with_a_message_naming_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("regular_file");
    std::fs::write(&file, b"not a directory").expect("file");
    let parent = file.join("sub");
    assert_clear_startup_failure(
        &parent.join("hpts.db"),
        &parent,
        "database under a regular file",
    );
}

#[test]
fn a_read_only_database_directory_stops_startup_with_a_message_naming_the_path() {
    let disk = Tmpfs::mount("4m");
    disk.remount("ro");
    let db = disk.path().join("hpts.db");
    assert_clear_startup_failure(&db, &db, "new database on a read-only mount");
}

#[test]
fn an_existing_database_on_a_read_only_mount_stops_startup_with_a_message_naming_it() {
    let disk = Tmpfs::mount("8m");
    let keys = tempfile::tempdir().expect("tempdir");
    let jwks = keys.path().join("jwks.json");
    write_jwks(&jwks, &[(KID, &generate_signing_key().expect("key"))]);
    let db = disk.path().join("hpts.db");
    let migrate = hpts()
        .args(["migrate", "--database"])
        .arg(&db)
        .output()
        .expect("migrate");
    assert!(migrate.status.success(), "{migrate:?}");
    disk.remount("ro");
    assert_clear_startup_failure(&db, &db, "existing database on a read-only mount");
}

#[test]
fn a_missing_database_directory_is_created_and_the_service_starts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let jwks = dir.path().join("jwks.json");
    let signing = generate_signing_key().expect("key");
    write_jwks(&jwks, &[(KID, &signing)]);
    let db = dir
        .path()
        .join("not")
        .join("yet")
        .join("there")
        .join("hpts.db");
    let server = Server::start(&db, &jwks, Some(&dir.path().join("hpts.log")));
    let reply = post(
        &client(Duration::from_secs(30)),
        &server.url("/v1/disbursements"),
        &token(&signing, uuid()),
        &format!("new-dir:{}", uuid()),
        &padded_disbursement(),
    )
    .expect("answer");
    assert_eq!(reply.status, 201, "{}", reply.text);
    assert!(db.is_file(), "{} was created", db.display());
    assert_eq!(assert_ledger_whole(&db, "new directory"), 1);
}
