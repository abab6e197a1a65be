//! Durable acknowledgements (SPEC §1.4): the real `hpts` binary is killed with SIGKILL right
//! after answering 2xx and restarted on the same database file; every acknowledged write is
//! still there, byte for byte (ids, amounts, `posted_at`), and its idempotency key still replays.

use std::path::Path;
use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

use crate::common::http::{blocking_client, get_ok};
use crate::common::server::{Server, Site};
use crate::helpers::{disbursement_body, key, uuid};

fn client() -> reqwest::blocking::Client {
    blocking_client(Duration::from_mins(1))
}

/// One acknowledged disbursement.
struct Acked {
    loan: Uuid,
    amount: String,
    key: String,
    body: Value,
    receipt_text: String,
}

fn disburse(
    client: &reqwest::blocking::Client,
    server: &Server,
    token: &str,
    amount: &str,
) -> Acked {
    let (loan, idempotency_key) = (uuid(), key("disbursement"));
    let body = disbursement_body(loan, uuid(), amount);
    let r = client
        .post(server.url("/v1/disbursements"))
        .bearer_auth(token)
        .header("Idempotency-Key", &idempotency_key)
        .json(&body)
        .send()
        .expect("request sent");
    let status = r.status().as_u16();
    let receipt_text = r.text().expect("body");
    assert_eq!(status, 201, "{receipt_text}");
    Acked {
        loan,
        amount: amount.to_owned(),
        key: idempotency_key,
        body,
        receipt_text,
    }
}

fn get_json(client: &reqwest::blocking::Client, server: &Server, token: &str, path: &str) -> Value {
    get_ok(client, &server.url(path), token)
}

/// After a restart: the loan balance, the entry and the idempotency replay all match the ack.
fn assert_survived(
    client: &reqwest::blocking::Client,
    server: &Server,
    token: &str,
    acked: &Acked,
) {
    let receipt: Value = serde_json::from_str(&acked.receipt_text).expect("receipt");
    let balance = get_json(
        client,
        server,
        token,
        &format!("/v1/loans/{}/balance", acked.loan),
    );
    assert_eq!(
        balance["principal_outstanding_minor"],
        acked.amount.as_str(),
        "loan {}",
        acked.loan
    );
    assert_eq!(balance["disbursed_total_minor"], acked.amount.as_str());
    assert_eq!(balance["last_activity_at"], receipt["posted_at"]);
    let entry_id = receipt["journal_entry_id"].as_str().expect("entry id");
    let entry = get_json(
        client,
        server,
        token,
        &format!("/v1/journal-entries/{entry_id}"),
    );
    assert_eq!(entry["journal_entry_id"], receipt["journal_entry_id"]);
    assert_eq!(entry["correlation_id"], receipt["disbursement_event_id"]);
    assert_eq!(
        entry["posted_at"], receipt["posted_at"],
        "posted_at survives the crash unchanged"
    );
    let lines = entry["lines"].as_array().expect("lines");
    assert_eq!(lines.len(), 2);
    assert!(
        lines
            .iter()
            .all(|l| l["amount_minor"] == acked.amount.as_str()),
        "{entry}"
    );

    let replay = client
        .post(server.url("/v1/disbursements"))
        .bearer_auth(token)
        .header("Idempotency-Key", &acked.key)
        .json(&acked.body)
        .send()
        .expect("request sent");
    assert_eq!(
        replay.status().as_u16(),
        200,
        "the idempotency record survived too"
    );
    assert_eq!(
        replay.text().expect("body"),
        acked.receipt_text,
        "identical bytes after the crash"
    );
}

fn count_entries(db: &Path) -> i64 {
    let conn =
        rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("open");
    conn.query_row("SELECT count(*) FROM journal_entries", [], |r| r.get(0))
        .expect("count")
}

#[test]
fn an_acknowledged_disbursement_survives_kill_9() {
    let site = Site::new();
    let token = site.token(uuid());
    let client = client();
    let mut server = site.start();

    let acked = disburse(&client, &server, &token, "250000");
    server.kill_9();

    let restarted = site.start();
    assert_survived(&client, &restarted, &token, &acked);
    assert_eq!(
        count_entries(&site.db),
        1,
        "the replay after restart wrote nothing new"
    );
}

#[test]
fn fifty_concurrent_acknowledged_writes_survive_kill_9() {
    let site = Site::new();
    let token = site.token(uuid());
    let mut server = site.start();

    let acked: Vec<Acked> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|worker| {
                let (server, token) = (&server, token.as_str());
                scope.spawn(move || {
                    let client = client();
                    (0..50)
                        .filter(|i| i % 8 == worker)
                        .map(|i| disburse(&client, server, token, &(1000 + i).to_string()))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("worker"))
            .collect()
    });
    assert_eq!(acked.len(), 50);
    server.kill_9();

    assert_eq!(
        count_entries(&site.db),
        50,
        "every acknowledged write is in the file"
    );
    let restarted = site.start();
    let client = client();
    for write in &acked {
        assert_survived(&client, &restarted, &token, write);
    }
    assert_eq!(count_entries(&site.db), 50);
}

#[test]
fn a_restarted_server_keeps_posting_to_surviving_loans() {
    let site = Site::new();
    let token = site.token(uuid());
    let client = client();
    let mut server = site.start();
    let acked = disburse(&client, &server, &token, "1000");
    server.kill_9();

    let restarted = site.start();
    let mut body = acked.body.clone();
    body["amount_minor"] = "500".into();
    let r = client
        .post(restarted.url("/v1/disbursements"))
        .bearer_auth(&token)
        .header("Idempotency-Key", key("disbursement"))
        .json(&body)
        .send()
        .expect("request sent");
    assert_eq!(r.status().as_u16(), 201, "{}", r.text().unwrap_or_default());
    let balance = get_json(
        &client,
        &restarted,
        &token,
        &format!("/v1/loans/{}/balance", acked.loan),
    );
    assert_eq!(balance["principal_outstanding_minor"], "1500");
    let mut other_borrower = acked.body.clone();
    other_borrower["borrower_id"] = uuid().to_string().into();
    let refused = client
        .post(restarted.url("/v1/disbursements"))
        .bearer_auth(&token)
        .header("Idempotency-Key", key("disbursement"))
        .json(&other_borrower)
        .send()
        .expect("request sent");
    assert_eq!(
        refused.status().as_u16(),
        422,
        "the borrower binding survived the crash"
    );
}
