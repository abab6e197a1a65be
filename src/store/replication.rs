//! Replicated acknowledgements (`HPTS_DURABILITY=replicated`, SPEC §9): a committed batch's
//! answers are released only once Litestream says its replica holds everything committed so far.
//!
//! The writer never waits here. After each COMMIT it hands the batch's answers to the waiter
//! thread (`Waiter::hold`) and goes on with the next batch. The waiter takes every batch that
//! has arrived, asks Litestream once — `POST /sync {"wait": true}` on its control socket, the
//! call behind `litestream sync -wait -json DB` — and when it answers that the replica has
//! everything the WAL held when the call began (200, status `synced` or `no_change`), releases
//! all of them: one wait
//! serves every batch committed before it started, never one wait per request. Waits are
//! pipelined: up to `SYNCS_IN_FLIGHT` (2) syncs run at once on syncer threads, so the batches
//! committed while one sync uploads are already covered by the next. A sync that fails or
//! cannot finish is retried until a batch's own deadline (`HPTS_REPLICATION_TIMEOUT_MS` after
//! its COMMIT) passes; that batch's requests are then
//! answered [`StoreError::ReplicationUnavailable`] (503 `replication_unavailable`). Their writes
//! stay committed locally — nothing is rolled back or weakened — and a retry with the same key
//! is a replay, answered once the replica has it.
//!
//! While syncs fail, readiness is false (`/v1/health/ready` 503); the waiter keeps probing, also
//! with no traffic, so readiness recovers by itself. Readiness starts false and turns true after
//! the first sync that succeeds.

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::store::StoreError;
use crate::store::writer::{Reply, WriteOutcome};

/// How the waiter reaches Litestream.
#[derive(Debug, Clone)]
pub struct ReplicationSettings {
    /// Litestream's control socket (`HPTS_LITESTREAM_SOCKET`; `socket:` in litestream.yml).
    pub socket: PathBuf,
    /// Longest a write waits for the replica after its COMMIT (`HPTS_REPLICATION_TIMEOUT_MS`).
    pub timeout: Duration,
}

/// Pause between two failed syncs (and between probes while replication is down).
const RETRY_PAUSE: Duration = Duration::from_millis(200);

/// What `/metrics` and readiness read.
#[derive(Default)]
pub struct ReplicationStats {
    /// The last sync succeeded (false until the first one does).
    pub up: AtomicBool,
    /// Syncs that failed or did not reach the replica.
    pub failures: AtomicU64,
    /// Writes answered 503 `replication_unavailable`.
    pub timed_out: AtomicU64,
    /// Called with each released request's wait, from its COMMIT to its release.
    observer: OnceLock<Box<dyn Fn(Duration) + Send + Sync>>,
}

impl std::fmt::Debug for ReplicationStats {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReplicationStats")
            .field("up", &self.up)
            .field("failures", &self.failures)
            .field("timed_out", &self.timed_out)
            .finish_non_exhaustive()
    }
}

impl ReplicationStats {
    /// Installs the function that records each request's replication wait (once).
    pub fn observe_waits(&self, observer: Box<dyn Fn(Duration) + Send + Sync>) {
        let _ = self.observer.set(observer);
    }

    fn waited(&self, wait: Duration) {
        if let Some(observe) = self.observer.get() {
            observe(wait);
        }
    }
}

/// The answers of one committed batch, held until the replica has it; or a barrier, which a
/// reader waits on to learn that everything committed before it asked is replicated.
pub(crate) struct Committed {
    answers: Vec<(Reply, Result<WriteOutcome, StoreError>)>,
    barrier: Option<oneshot::Sender<bool>>,
    at: Instant,
}

/// What the waiter thread hears: a batch to hold, the end of a sync, or the end of service.
enum Event {
    Held(Committed),
    Synced { round: u64, ok: bool },
    Close,
}

/// Syncs that may be in flight at once. A second sync is already reading the newest commits
/// while the first one uploads, so a write committed during an upload waits for about one sync,
/// not for the rest of the current one and all of the next.
const SYNCS_IN_FLIGHT: usize = 2;

/// The sending side, kept by the writer; the thread stops after [`Waiter::shutdown`], once every
/// held answer is released or timed out.
pub(crate) struct Waiter {
    tx: parking_lot::Mutex<Sender<Event>>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Waiter {
    /// Starts the waiter thread and its syncers for the database at `db` (the path Litestream
    /// replicates).
    pub(crate) fn spawn(
        settings: &ReplicationSettings,
        db: &Path,
        stats: Arc<ReplicationStats>,
    ) -> Result<Waiter, StoreError> {
        let client = Arc::new(SyncClient {
            socket: settings.socket.clone(),
            db: std::path::absolute(db)
                .map_err(|e| StoreError::failed(format!("cannot resolve {}", db.display()), e))?,
        });
        let (tx, rx) = channel();
        let (jobs, job_rx) = channel::<(u64, Duration)>();
        let job_rx = Arc::new(parking_lot::Mutex::new(job_rx));
        for n in 0..SYNCS_IN_FLIGHT {
            let (client, stats, job_rx, done) = (
                Arc::clone(&client),
                Arc::clone(&stats),
                Arc::clone(&job_rx),
                tx.clone(),
            );
            std::thread::Builder::new()
                .name(format!("hpts-replica-sync-{n}"))
                .spawn(move || {
                    loop {
                        let job = job_rx.lock().recv();
                        let Ok((round, budget)) = job else { return };
                        let ok = sync(&client, &stats, budget);
                        if done.send(Event::Synced { round, ok }).is_err() {
                            return;
                        }
                    }
                })
                .map_err(|e| StoreError::failed("cannot start a syncer", e))?;
        }
        let timeout = settings.timeout;
        let thread = std::thread::Builder::new()
            .name("hpts-replication".into())
            .spawn(move || {
                Rounds {
                    timeout,
                    stats,
                    jobs,
                    held: Vec::new(),
                    in_flight: VecDeque::new(),
                    next_round: 0,
                    next_launch: Instant::now(),
                }
                .run(&rx);
            })
            .map_err(|e| StoreError::failed("cannot start replication thread", e))?;
        Ok(Waiter {
            tx: parking_lot::Mutex::new(tx),
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Holds a committed batch's answers until the replica has the batch.
    pub(crate) fn hold(&self, answers: Vec<(Reply, Result<WriteOutcome, StoreError>)>) {
        if answers.is_empty() {
            return;
        }
        self.send(Committed {
            answers,
            barrier: None,
            at: Instant::now(),
        });
    }

    /// Resolves to true once the replica holds everything committed before this call, or to
    /// false when it could not confirm that within the replication timeout.
    pub(crate) fn barrier(&self) -> oneshot::Receiver<bool> {
        let (tx, rx) = oneshot::channel();
        self.send(Committed {
            answers: Vec::new(),
            barrier: Some(tx),
            at: Instant::now(),
        });
        rx
    }

    fn send(&self, committed: Committed) {
        // The waiter is gone (after shutdown, or a panic): the writes are committed, but nobody
        // can vouch for the replica.
        if let Err(e) = self.tx.lock().send(Event::Held(committed))
            && let Event::Held(committed) = e.0
        {
            refuse(committed);
        }
    }

    /// Releases or times out every held answer, then stops the thread (after the writer).
    pub(crate) fn shutdown(&self) {
        let _ = self.tx.lock().send(Event::Close);
        if let Some(thread) = self.thread.lock().take() {
            let _ = thread.join();
        }
    }
}

/// Sends each request of `committed` its answer (the requester may have gone; its write stands).
fn release(committed: Committed) {
    for (reply, result) in committed.answers {
        let _ = reply.send(result);
    }
    if let Some(barrier) = committed.barrier {
        let _ = barrier.send(true);
    }
}

/// Answers each request of `committed` 503 `replication_unavailable` (its write stays committed).
fn refuse(committed: Committed) {
    for (reply, _) in committed.answers {
        let _ = reply.send(Err(StoreError::ReplicationUnavailable));
    }
    if let Some(barrier) = committed.barrier {
        let _ = barrier.send(false);
    }
}

/// One sync asked of Litestream and the batches it will vouch for (all committed before it).
struct Round {
    id: u64,
    started: Instant,
    batches: Vec<Committed>,
}

/// The waiter thread's state.
struct Rounds {
    timeout: Duration,
    stats: Arc<ReplicationStats>,
    /// Syncs to run: (round, time budget).
    jobs: Sender<(u64, Duration)>,
    /// Batches no sync in flight covers yet (they arrived after it began, or its sync failed).
    held: Vec<Committed>,
    /// Syncs in flight, oldest first.
    in_flight: VecDeque<Round>,
    next_round: u64,
    /// No sync starts before this (a pause after a failure, and between probes).
    next_launch: Instant,
}

impl Rounds {
    fn run(&mut self, rx: &Receiver<Event>) {
        let mut open = true;
        loop {
            self.launch();
            if !open && self.held.is_empty() && self.in_flight.is_empty() {
                return;
            }
            let event = match self.next_wake() {
                None => rx.recv().map_err(|_| RecvTimeoutError::Disconnected),
                Some(at) => rx.recv_timeout(at.saturating_duration_since(Instant::now())),
            };
            match event {
                Ok(Event::Held(c)) => self.held.push(c),
                Ok(Event::Synced { round, ok }) => self.synced(round, ok),
                Ok(Event::Close) | Err(RecvTimeoutError::Disconnected) => open = false,
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.expire();
        }
    }

    /// Starts a sync for the held batches when a syncer is free — or, while replication is
    /// down and nothing waits, a probe, so readiness recovers with no traffic.
    fn launch(&mut self) {
        let now = Instant::now();
        if self.in_flight.len() >= SYNCS_IN_FLIGHT || now < self.next_launch {
            return;
        }
        let probe = self.held.is_empty()
            && self.in_flight.is_empty()
            && !self.stats.up.load(Ordering::Relaxed);
        if self.held.is_empty() && !probe {
            return;
        }
        let batches = std::mem::take(&mut self.held);
        let budget = batches
            .iter()
            .map(|c| (c.at + self.timeout).saturating_duration_since(now))
            .min()
            .unwrap_or(self.timeout)
            .max(Duration::from_millis(1));
        let id = self.next_round;
        self.next_round += 1;
        if self.jobs.send((id, budget)).is_err() {
            batches.into_iter().for_each(refuse);
            return;
        }
        self.in_flight.push_back(Round {
            id,
            started: now,
            batches,
        });
        if probe {
            self.next_launch = now + RETRY_PAUSE;
        }
    }

    /// A sync ended. Success vouches for everything committed before it began, so its batches
    /// and those of every older round are released. A failed round's batches wait for a later
    /// sync (or their deadline), after a pause.
    fn synced(&mut self, round: u64, ok: bool) {
        if ok {
            let Some(started) = self
                .in_flight
                .iter()
                .find(|r| r.id == round)
                .map(|r| r.started)
            else {
                return;
            };
            let mut covered = Vec::new();
            while self.in_flight.front().is_some_and(|r| r.id <= round) {
                covered.extend(
                    self.in_flight
                        .pop_front()
                        .into_iter()
                        .flat_map(|r| r.batches),
                );
            }
            // Batches of an older round that failed, held again, were committed before it too.
            let (older, newer): (Vec<_>, Vec<_>) = std::mem::take(&mut self.held)
                .into_iter()
                .partition(|c| c.at < started);
            self.held = newer;
            covered.extend(older);
            let now = Instant::now();
            for committed in covered {
                let waited = now.saturating_duration_since(committed.at);
                for _ in &committed.answers {
                    self.stats.waited(waited);
                }
                release(committed);
            }
        } else if let Some(i) = self.in_flight.iter().position(|r| r.id == round) {
            if let Some(failed) = self.in_flight.remove(i) {
                self.held.extend(failed.batches);
            }
            self.next_launch = Instant::now() + RETRY_PAUSE;
        }
    }

    /// Answers 503 `replication_unavailable` to every batch whose deadline has passed.
    fn expire(&mut self) {
        let now = Instant::now();
        let timeout = self.timeout;
        let late = |c: &Committed| now >= c.at + timeout;
        let mut expired: Vec<Committed> = Vec::new();
        let (gone, kept): (Vec<_>, Vec<_>) =
            std::mem::take(&mut self.held).into_iter().partition(late);
        self.held = kept;
        expired.extend(gone);
        for round in &mut self.in_flight {
            let (gone, kept): (Vec<_>, Vec<_>) = std::mem::take(&mut round.batches)
                .into_iter()
                .partition(late);
            round.batches = kept;
            expired.extend(gone);
        }
        for committed in expired {
            self.stats
                .timed_out
                .fetch_add(committed.answers.len() as u64, Ordering::Relaxed);
            refuse(committed);
        }
    }

    /// When to look again without an event: the nearest deadline, or the next possible launch
    /// when something waits for one (or a probe is due). `None`: only an event can change
    /// anything.
    fn next_wake(&self) -> Option<Instant> {
        let deadline = self
            .held
            .iter()
            .chain(self.in_flight.iter().flat_map(|r| r.batches.iter()))
            .map(|c| c.at + self.timeout)
            .min();
        let wants_launch = self.in_flight.len() < SYNCS_IN_FLIGHT
            && (!self.held.is_empty()
                || (self.in_flight.is_empty() && !self.stats.up.load(Ordering::Relaxed)));
        let launch = wants_launch.then_some(self.next_launch);
        match (deadline, launch) {
            (Some(d), Some(l)) => Some(d.min(l)),
            (d, l) => d.or(l),
        }
    }
}

/// Asks Litestream to sync and wait; keeps `up` and the failure count true, and logs each
/// change between working and failing once.
fn sync(client: &SyncClient, stats: &ReplicationStats, budget: Duration) -> bool {
    let result = client.sync_and_wait(budget);
    let was_up = stats.up.swap(result.is_ok(), Ordering::Relaxed);
    match result {
        Ok(()) => {
            if !was_up {
                tracing::info!(
                    socket = %client.socket.display(),
                    "replication is working: writes are answered once Litestream's replica has them"
                );
            }
            true
        }
        Err(cause) => {
            stats.failures.fetch_add(1, Ordering::Relaxed);
            if was_up {
                tracing::error!(
                    socket = %client.socket.display(),
                    database = %client.db.display(),
                    %cause,
                    "replication unavailable: writes are committed locally but answered 503 \
                     replication_unavailable, and readiness is 503, until Litestream's replica \
                     can be reached again; check that `litestream replicate` runs with this \
                     socket enabled and that its bucket is reachable (litestream's own log says why)"
                );
            } else {
                tracing::debug!(%cause, "replication sync failed again");
            }
            false
        }
    }
}

/// A client of Litestream's control socket: HTTP/1.1 over a unix socket, one connection per call.
struct SyncClient {
    socket: PathBuf,
    db: PathBuf,
}

/// The part of Litestream's `/sync` answer the waiter needs.
#[derive(serde::Deserialize)]
struct SyncAnswer {
    status: String,
}

impl SyncClient {
    /// `POST /sync {"path": db, "wait": true, "timeout": s}`: returns once the replica holds
    /// every transaction committed before the call, or why not.
    fn sync_and_wait(&self, budget: Duration) -> Result<(), String> {
        let seconds = budget.as_secs() + u64::from(budget.subsec_nanos() > 0);
        let body = serde_json::json!({
            "path": self.db.to_string_lossy(),
            "wait": true,
            "timeout": seconds.max(1),
        })
        .to_string();
        let (status, answer) = self
            .post("/sync", &body, budget)
            .map_err(|e| format!("control socket {}: {e}", self.socket.display()))?;
        if status != 200 {
            let reason = serde_json::from_slice::<serde_json::Value>(&answer)
                .ok()
                .and_then(|v| v.get("error").and_then(|e| e.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&answer).into_owned());
            return Err(format!("litestream answered {status}: {reason}"));
        }
        // A 200 to a waiting sync means Litestream copied the WAL as it was when the call began
        // into its local files, then uploaded everything up to its position to the replica.
        // (Its `txid`, read after the upload, may already include a later sync of its own or of
        // another call, so `replicated_txid < txid` is no sign of failure.)
        let sync: SyncAnswer = serde_json::from_slice(&answer)
            .map_err(|e| format!("unexpected answer from litestream: {e}"))?;
        match sync.status.as_str() {
            "synced" | "no_change" => Ok(()),
            other => Err(format!(
                "litestream did not wait for the replica (status {other:?})"
            )),
        }
    }

    /// One request, `Connection: close`, the whole answer read within `budget`.
    fn post(&self, path: &str, body: &str, budget: Duration) -> std::io::Result<(u16, Vec<u8>)> {
        let deadline = Instant::now() + budget;
        let mut stream = UnixStream::connect(&self.socket)?;
        stream.set_write_timeout(Some(budget))?;
        write!(
            stream,
            "POST {path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )?;
        let mut raw = Vec::with_capacity(512);
        let mut chunk = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    "no answer within the replication timeout",
                ));
            }
            stream.set_read_timeout(Some(left))?;
            match stream.read(&mut chunk)? {
                0 => break,
                n => raw.extend_from_slice(&chunk[..n]),
            }
        }
        parse_response(&raw)
    }
}

/// Status and body of an HTTP/1.1 response read to its end (`Content-Length` or chunked).
fn parse_response(raw: &[u8]) -> std::io::Result<(u16, Vec<u8>)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_owned());
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("incomplete HTTP answer"))?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|_| bad("HTTP head is not text"))?;
    let body = &raw[split + 4..];
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse::<u16>().ok())
        .ok_or_else(|| bad("no HTTP status line"))?;
    let chunked = lines.any(|l| {
        l.split_once(':').is_some_and(|(k, v)| {
            k.trim().eq_ignore_ascii_case("transfer-encoding")
                && v.trim().eq_ignore_ascii_case("chunked")
        })
    });
    if !chunked {
        return Ok((status, body.to_vec()));
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let eol = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk"))?;
        let size_text = std::str::from_utf8(&rest[..eol]).map_err(|_| bad("bad chunk size"))?;
        let size = usize::from_str_radix(size_text.split(';').next().unwrap_or("").trim(), 16)
            .map_err(|_| bad("bad chunk size"))?;
        rest = &rest[eol + 2..];
        if size == 0 {
            return Ok((status, out));
        }
        let data = rest.get(..size).ok_or_else(|| bad("truncated chunk"))?;
        out.extend_from_slice(data);
        rest = rest.get(size + 2..).ok_or_else(|| bad("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::parse_response;

    #[test]
    fn a_content_length_answer_gives_its_status_and_body() {
        let raw = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"txid\":2,}\n";
        let (status, body) = parse_response(raw).unwrap();
        assert_eq!(status, 200);
        assert_eq!(body, b"{\"txid\":2,}\n");
    }

    #[test]
    fn a_chunked_answer_is_put_back_together() {
        let raw = b"HTTP/1.1 500 Internal Server Error\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n{\"er\r\n3\r\nr\":\r\n0\r\n\r\n";
        let (status, body) = parse_response(raw).unwrap();
        assert_eq!(status, 500);
        assert_eq!(body, b"{\"err\":");
    }

    #[test]
    fn an_answer_without_a_head_is_an_error() {
        assert!(parse_response(b"HTTP/1.1 200 OK\r\nContent-").is_err());
    }
}
