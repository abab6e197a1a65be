//! Group commit under SIGKILL (SPEC §1.3–1.4, issue 7): the real `hpts` binary takes writes
//! from 32 concurrent clients, so the writer commits them in batches, and is killed with SIGKILL
//! in the middle of that load — three times, on the same database file. After each restart every
//! acknowledged write is there unchanged, no half-written batch survived, the ledger reconciles,
//! and every acknowledged request replays its stored answer.

mod common;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::db::{count, read_only};
use common::http::blocking_client;
use common::inprocess::disbursement_body;
use common::server::{Server, Site};
use common::tokens::{key, uuid};

const CLIENTS: usize = 32;
const TENANTS: usize = 4;
const CYCLES: usize = 3;
/// Load runs at least this long before the kill.
const LOAD_FOR: Duration = Duration::from_millis(1500);
/// ... and until at least this many writes were acknowledged, so the kill lands mid-load.
const MIN_ACKED_PER_CYCLE: usize = 200;

fn client() -> reqwest::blocking::Client {
    blocking_client(Duration::from_secs(30))
}

/// One write the server answered 201.
struct Acked {
    tenant: usize,
    key: String,
    body: Value,
    receipt_text: String,
    entry_id: String,
    posted_at: String,
}

/// 32 clients post disbursements as fast as they can; the server gets SIGKILL mid-load.
/// Returns every write that was answered 201 before the kill.
fn load_then_kill(mut server: Server, tokens: &[String], cycle: usize) -> Vec<Acked> {
    let killing = AtomicBool::new(false);
    let acked_count = AtomicUsize::new(0);
    let acked = Mutex::new(Vec::new());
    let url = server.url("/v1/disbursements");
    std::thread::scope(|scope| {
        for worker in 0..CLIENTS {
            let (url, killing, acked_count, acked) = (&url, &killing, &acked_count, &acked);
            scope.spawn(move || {
                let client = client();
                let tenant = worker % TENANTS;
                let mut amount = 1000 + cycle * 100_000 + worker * 1000;
                // Keeps the load on until the kill lands; stops at the first failure after it.
                loop {
                    amount += 1;
                    let idempotency_key = key("disbursement");
                    let body = disbursement_body(uuid(), uuid(), &amount.to_string());
                    let sent = client
                        .post(url)
                        .bearer_auth(&tokens[tenant])
                        .header("Idempotency-Key", &idempotency_key)
                        .json(&body)
                        .send()
                        .and_then(|r| {
                            let status = r.status().as_u16();
                            r.text().map(|t| (status, t))
                        });
                    match sent {
                        Ok((201, receipt_text)) => {
                            let receipt: Value =
                                serde_json::from_str(&receipt_text).expect("201 body is JSON");
                            let entry = Acked {
                                tenant,
                                key: idempotency_key,
                                body,
                                entry_id: receipt["journal_entry_id"]
                                    .as_str()
                                    .expect("journal_entry_id")
                                    .to_owned(),
                                posted_at: receipt["posted_at"]
                                    .as_str()
                                    .expect("posted_at")
                                    .to_owned(),
                                receipt_text,
                            };
                            acked.lock().expect("acked").push(entry);
                            acked_count.fetch_add(1, Ordering::SeqCst);
                        }
                        Ok((status, text)) => {
                            assert!(
                                killing.load(Ordering::SeqCst),
                                "before the kill every write succeeds: {status} {text}"
                            );
                            return;
                        }
                        Err(e) => {
                            assert!(
                                killing.load(Ordering::SeqCst),
                                "the server failed before the kill: {e}"
                            );
                            return;
                        }
                    }
                }
            });
        }
        let started = Instant::now();
        while started.elapsed() < LOAD_FOR
            || acked_count.load(Ordering::SeqCst) < MIN_ACKED_PER_CYCLE
        {
            assert!(
                started.elapsed() < Duration::from_mins(1),
                "only {} writes acknowledged in a minute",
                acked_count.load(Ordering::SeqCst)
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let max_batch = server.metric(&client(), "hpts_writer_max_batch_size");
        assert!(
            max_batch > 1,
            "the load is committed in batches before the kill (largest batch {max_batch})"
        );
        killing.store(true, Ordering::SeqCst);
        server.kill_9();
    });
    acked.into_inner().expect("acked")
}

/// The file, read directly: every acknowledged entry with its `posted_at`, and no torn batch.
fn assert_file_is_whole(db: &Path, acked: &[Acked]) {
    let conn = read_only(db);
    let mut posted = conn
        .prepare("SELECT posted_at FROM journal_entries WHERE entry_id = ?1")
        .expect("prepare");
    for a in acked {
        let posted_at: String = posted
            .query_row([&a.entry_id], |r| r.get(0))
            .unwrap_or_else(|e| panic!("acknowledged entry {} is gone: {e}", a.entry_id));
        assert_eq!(posted_at, a.posted_at, "entry {}", a.entry_id);
    }
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM events e WHERE \
             (SELECT count(*) FROM journal_entries j WHERE j.event_id = e.event_id) != 1"
        ),
        0,
        "every event has exactly one journal entry"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM journal_entries j WHERE NOT EXISTS \
             (SELECT 1 FROM events e WHERE e.event_id = j.event_id)"
        ),
        0,
        "every entry has its event"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM journal_entries j WHERE j.line_count != \
             (SELECT count(*) FROM journal_lines l WHERE l.entry_id = j.entry_id) \
             OR EXISTS (SELECT 1 FROM journal_lines l WHERE l.entry_id = j.entry_id GROUP BY l.currency \
               HAVING sum(CASE l.direction WHEN 'DR' THEN l.amount_minor ELSE 0 END) \
                   != sum(CASE l.direction WHEN 'CR' THEN l.amount_minor ELSE 0 END))"
        ),
        0,
        "every entry is complete and balanced"
    );
    assert_eq!(
        count(
            &conn,
            "SELECT count(*) FROM journal_lines l WHERE NOT EXISTS \
             (SELECT 1 FROM journal_entries j WHERE j.entry_id = l.entry_id)"
        ),
        0,
        "no lines without their entry"
    );
    let events = count(&conn, "SELECT count(*) FROM events");
    assert_eq!(
        count(&conn, "SELECT count(*) FROM idempotency_keys"),
        events,
        "every committed write has its idempotency record, and no record lacks its write"
    );
    assert!(
        events >= i64::try_from(acked.len()).expect("count"),
        "{events} events for {} acknowledged writes",
        acked.len()
    );
}

/// Through the API of the restarted server: entries, replays, reconciliation.
fn assert_api_agrees(server: &Server, tokens: &[String], acked: &[Acked]) {
    let chunk = acked.len().div_ceil(16).max(1);
    std::thread::scope(|scope| {
        for part in acked.chunks(chunk) {
            scope.spawn(move || {
                let client = client();
                for a in part {
                    let token = &tokens[a.tenant];
                    let r = client
                        .get(server.url(&format!("/v1/journal-entries/{}", a.entry_id)))
                        .bearer_auth(token)
                        .send()
                        .expect("request sent");
                    assert_eq!(r.status().as_u16(), 200, "entry {}", a.entry_id);
                    let entry: Value = r.json().expect("json");
                    assert_eq!(entry["journal_entry_id"], a.entry_id.as_str());
                    assert_eq!(
                        entry["posted_at"],
                        a.posted_at.as_str(),
                        "posted_at survives the crash unchanged"
                    );
                    let replay = client
                        .post(server.url("/v1/disbursements"))
                        .bearer_auth(token)
                        .header("Idempotency-Key", &a.key)
                        .json(&a.body)
                        .send()
                        .expect("request sent");
                    assert_eq!(replay.status().as_u16(), 200, "replay of {}", a.key);
                    assert_eq!(
                        replay
                            .headers()
                            .get("idempotent-replayed")
                            .and_then(|v| v.to_str().ok()),
                        Some("true")
                    );
                    assert_eq!(
                        replay.text().expect("body"),
                        a.receipt_text,
                        "the stored body, byte for byte"
                    );
                }
            });
        }
    });
    let client = client();
    for token in tokens {
        let r = client
            .get(server.url("/v1/reconciliation/status"))
            .bearer_auth(token)
            .send()
            .expect("request sent");
        assert_eq!(r.status().as_u16(), 200);
        let report: Value = r.json().expect("json");
        assert_eq!(report["ledger_integrity"]["status"], "ok", "{report}");
        assert_eq!(report["portfolio_rollup"]["status"], "ok", "{report}");
    }
}

#[test]
fn acknowledged_batched_writes_survive_sigkill_mid_load_three_times() {
    let site = Site::new();
    let tokens: Vec<String> = (0..TENANTS).map(|_| site.token(uuid())).collect();
    let mut acked: Vec<Acked> = Vec::new();
    let mut server = site.start();
    for cycle in 0..CYCLES {
        let before = acked.len();
        acked.extend(load_then_kill(server, &tokens, cycle));
        assert!(
            acked.len() - before >= MIN_ACKED_PER_CYCLE,
            "cycle {cycle} acknowledged writes"
        );
        server = site.start();
        assert_file_is_whole(&site.db, &acked);
        assert_api_agrees(&server, &tokens, &acked[before..]);
        if cycle + 1 == CYCLES {
            // The earlier cycles' writes went through two or three more crashes and restarts.
            assert_api_agrees(&server, &tokens, &acked[..before]);
        }
    }
    // Replays wrote nothing: still one event per journal entry and key.
    assert_file_is_whole(&site.db, &acked);
}
