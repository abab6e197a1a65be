//! The webhook outbox: rows written by the writer with each journal entry (same transaction),
//! read by the delivery worker through the read pool, and updated — delivered, retried later,
//! or failed — through the writer again, so the single-writer rule holds. The writer also
//! purges old rows, per [`OutboxRetention`]: the outbox is a delivery queue, not part of the
//! ledger, so it may be deleted from. A row holds only the delivery state of one entry (keyed
//! by the entry's `entry_seq`); the webhook's body and id are made from the entry itself.

use std::time::Duration;

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;

/// One due delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Row key: the entry's `entry_seq`.
    pub outbox_seq: i64,
    /// `webhook-id` (the same on every attempt, so consumers can dedupe).
    pub webhook_id: String,
    /// The JSON body, made of the entry's own fields (so fixed at posting time).
    pub payload: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When the row was written (ms since the epoch).
    pub created_ms: i64,
    /// The posting request's `traceparent`, when its spans were exported.
    pub traceparent: Option<String>,
}

/// What happened to one delivery attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// The consumer answered 2xx.
    Delivered {
        /// Row key.
        outbox_seq: i64,
        /// When (RFC 3339).
        at: String,
    },
    /// Try again at `next_attempt_ms`.
    Retry {
        /// Row key.
        outbox_seq: i64,
        /// Next attempt (ms since the epoch).
        next_attempt_ms: i64,
        /// Why this attempt failed.
        error: String,
    },
    /// Past the maximum age: give up.
    Failed {
        /// Row key.
        outbox_seq: i64,
        /// Why the last attempt failed.
        error: String,
    },
}

/// The `journalEntryPosted` webhook body of an entry: fixed when the entry is posted, since
/// it is made of the entry's own (append-only) fields, which the delivery reads with the
/// entry's outbox row.
pub(crate) fn payload(
    entry_id: &str,
    tenant: &str,
    event_type: &str,
    occurred_at: &str,
    correlation_id: &str,
) -> String {
    serde_json::json!({
        "journal_entry_id": entry_id,
        "tenant_id": tenant,
        "event_type": event_type,
        "occurred_at": occurred_at,
        "correlation_id": correlation_id,
    })
    .to_string()
}

/// Up to `limit` pending deliveries due at `now_ms`, oldest first.
pub fn due(conn: &Connection, now_ms: i64, limit: u32) -> Result<Vec<Delivery>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT o.outbox_seq, o.attempts, o.created_ms, o.traceparent, \
                e.entry_id, e.tenant_id, e.event_type, e.posted_at, e.correlation_id \
         FROM webhook_outbox o JOIN journal_entries e ON e.entry_seq = o.outbox_seq \
         WHERE o.status = 'pending' AND o.next_attempt_ms <= ?1 \
         ORDER BY o.next_attempt_ms, o.outbox_seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now_ms, limit], |r| {
        let entry: String = r.get(4)?;
        let (tenant, event_type): (String, String) = (r.get(5)?, r.get(6)?);
        let (posted_at, correlation): (String, String) = (r.get(7)?, r.get(8)?);
        Ok(Delivery {
            outbox_seq: r.get(0)?,
            webhook_id: format!("msg_{entry}"),
            payload: payload(&entry, &tenant, &event_type, &posted_at, &correlation),
            attempts: r.get(1)?,
            created_ms: r.get(2)?,
            traceparent: r.get(3)?,
        })
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// (pending, failed) row counts.
pub fn counts(conn: &Connection) -> Result<(i64, i64), StoreError> {
    let pending = conn.query_row(
        "SELECT count(*) FROM webhook_outbox WHERE status = 'pending'",
        [],
        |r| r.get(0),
    )?;
    let failed = conn.query_row(
        "SELECT count(*) FROM webhook_outbox WHERE status = 'failed'",
        [],
        |r| r.get(0),
    )?;
    Ok((pending, failed))
}

/// The earliest pending attempt time, if any.
pub fn next_due_ms(conn: &Connection) -> Result<Option<i64>, StoreError> {
    Ok(conn
        .query_row(
            "SELECT min(next_attempt_ms) FROM webhook_outbox WHERE status = 'pending'",
            [],
            |r| r.get(0),
        )
        .optional()?
        .flatten())
}

/// Records delivery outcomes at `now_ms` (runs inside a writer transaction). A delivered or
/// given-up row is finished at `now_ms`, the time retention counts from.
pub(crate) fn record(
    conn: &Connection,
    outcomes: &[DeliveryOutcome],
    now_ms: i64,
) -> Result<(), StoreError> {
    for o in outcomes {
        match o {
            DeliveryOutcome::Delivered { outbox_seq, at } => {
                conn.prepare_cached(
                    "UPDATE webhook_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?2, last_error = NULL, \
                     finished_ms = ?3 WHERE outbox_seq = ?1",
                )?
                .execute(params![outbox_seq, at, now_ms])?;
            }
            DeliveryOutcome::Retry {
                outbox_seq,
                next_attempt_ms,
                error,
            } => {
                conn.prepare_cached(
                    "UPDATE webhook_outbox SET attempts = attempts + 1, next_attempt_ms = ?2, last_error = ?3 \
                     WHERE outbox_seq = ?1 AND status = 'pending'",
                )?
                .execute(params![outbox_seq, next_attempt_ms, error])?;
            }
            DeliveryOutcome::Failed { outbox_seq, error } => {
                conn.prepare_cached(
                    "UPDATE webhook_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2, finished_ms = ?3 \
                     WHERE outbox_seq = ?1",
                )?
                .execute(params![outbox_seq, error, now_ms])?;
            }
        }
    }
    Ok(())
}

/// Re-queues every delivery of entries posted at or after `since` (RFC 3339 or date prefix)
/// that is still in the outbox: rows purged by retention are gone. The entries are found by a
/// scan of `journal_entries` (an operator's command, not a hot path: no index is kept for it).
pub(crate) fn requeue_since(
    conn: &Connection,
    since: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_ms = ?2, created_ms = ?2, \
         last_error = NULL, delivered_at = NULL, finished_ms = NULL \
         WHERE outbox_seq IN (SELECT entry_seq FROM journal_entries WHERE posted_at >= ?1)",
        params![since, now_ms],
    )?)
}

/// How long the writer keeps outbox rows (`HPTS_WEBHOOK_RETENTION_HOURS`,
/// `HPTS_WEBHOOK_BACKLOG`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OutboxRetention {
    /// Finished rows (delivered, or given up after the maximum age) are purged this long after
    /// they finished.
    pub keep_finished: Duration,
    /// Also purge undelivered rows written (or re-queued) longer than `keep_finished` ago: only
    /// when no webhook URL is configured and the backlog is to be discarded, since no consumer
    /// will come for them.
    pub discard_undelivered: bool,
}

impl Default for OutboxRetention {
    /// A week; undelivered rows kept.
    fn default() -> Self {
        OutboxRetention {
            keep_finished: Duration::from_hours(168),
            discard_undelivered: false,
        }
    }
}

impl OutboxRetention {
    /// Rows older than this (ms since the epoch) are past retention at `now_ms`.
    pub(crate) fn cutoff_ms(&self, now_ms: i64) -> i64 {
        let keep = i64::try_from(self.keep_finished.as_millis()).unwrap_or(i64::MAX);
        now_ms.saturating_sub(keep)
    }
}

/// Deletes up to `limit` rows past retention (older than `cutoff_ms`) in one statement: finished
/// rows, and also undelivered ones when `undelivered` (an undelivered row's last scheduled
/// attempt is never before it was written, so the pending index bounds that scan). Returns how
/// many rows went.
pub(crate) fn purge(
    conn: &Connection,
    cutoff_ms: i64,
    undelivered: bool,
    limit: u32,
) -> Result<usize, StoreError> {
    let finished = conn
        .prepare_cached(
            "DELETE FROM webhook_outbox WHERE outbox_seq IN (SELECT outbox_seq FROM webhook_outbox \
             WHERE finished_ms < ?1 LIMIT ?2)",
        )?
        .execute(params![cutoff_ms, limit])?;
    let left = limit.saturating_sub(u32::try_from(finished).unwrap_or(u32::MAX));
    if !undelivered || left == 0 {
        return Ok(finished);
    }
    let pending = conn
        .prepare_cached(
            "DELETE FROM webhook_outbox WHERE outbox_seq IN (SELECT outbox_seq FROM webhook_outbox \
             WHERE status = 'pending' AND next_attempt_ms < ?1 AND created_ms < ?1 LIMIT ?2)",
        )?
        .execute(params![cutoff_ms, left])?;
    Ok(finished + pending)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(conn: &Connection, sql: &str) -> String {
        crate::store::query_plan(conn, sql, params![0_i64, 1000_i64])
    }

    #[test]
    fn the_purge_finds_its_rows_through_indexes_without_scanning_the_outbox() {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::store::migrate::run(&mut conn).expect("migrations");
        let finished = plan(
            &conn,
            "SELECT outbox_seq FROM webhook_outbox WHERE finished_ms < ?1 LIMIT ?2",
        );
        assert!(finished.contains("webhook_outbox_finished"), "{finished}");
        let pending = plan(
            &conn,
            "SELECT outbox_seq FROM webhook_outbox \
             WHERE status = 'pending' AND next_attempt_ms < ?1 AND created_ms < ?1 LIMIT ?2",
        );
        assert!(pending.contains("webhook_outbox_due"), "{pending}");
    }

    /// A migrated database holding outbox rows of the given (status, `created_ms`,
    /// `next_attempt_ms`, `finished_ms`), row `i` keyed `i`; the rows name no journal entry
    /// (foreign keys are off on this connection), which the purge never looks at.
    fn outbox_of(rows: &[(&str, i64, i64, Option<i64>)]) -> Connection {
        let mut conn = Connection::open_in_memory().expect("db");
        crate::store::migrate::run(&mut conn).expect("migrations");
        conn.pragma_update(None, "foreign_keys", false)
            .expect("pragma");
        for (i, (status, created, next, finished)) in (0_i64..).zip(rows) {
            conn.execute(
                "INSERT INTO webhook_outbox (outbox_seq, status, next_attempt_ms, created_ms, finished_ms) \
                 VALUES (?1, ?2, ?3, ?4, ?5)",
                params![i, status, next, created, finished],
            )
            .expect("insert");
        }
        conn
    }

    /// The keys of the rows left, as `e{key}`.
    fn left(conn: &Connection) -> Vec<String> {
        let mut stmt = conn
            .prepare("SELECT 'e' || outbox_seq FROM webhook_outbox ORDER BY outbox_seq")
            .expect("prepare");
        stmt.query_map([], |r| r.get(0))
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows")
    }

    #[test]
    fn a_purge_takes_finished_rows_before_the_cutoff_and_undelivered_ones_only_when_asked() {
        let conn = outbox_of(&[
            ("delivered", 10, 10, Some(99)),  // e0: finished before the cutoff
            ("failed", 10, 50, Some(100)),    // e1: finished at the cutoff: kept
            ("delivered", 10, 10, Some(500)), // e2: finished after it
            ("pending", 10, 10, None),        // e3: old and undelivered
            ("pending", 10, 200, None),       // e4: written before, retried after the cutoff
            ("pending", 300, 300, None),      // e5: written after the cutoff
        ]);
        assert_eq!(purge(&conn, 100, false, 1000).expect("purge"), 1);
        assert_eq!(left(&conn), ["e1", "e2", "e3", "e4", "e5"]);
        assert_eq!(purge(&conn, 101, true, 1000).expect("purge"), 2);
        assert_eq!(left(&conn), ["e2", "e4", "e5"]);
    }

    #[test]
    fn one_purge_statement_deletes_at_most_its_limit() {
        let rows: Vec<_> = (0..7).map(|_| ("delivered", 1, 1, Some(2))).collect();
        let conn = outbox_of(&rows);
        assert_eq!(purge(&conn, 10, false, 3).expect("purge"), 3);
        assert_eq!(left(&conn).len(), 4);
        let conn = outbox_of(&[
            ("delivered", 1, 1, Some(2)),
            ("pending", 1, 1, None),
            ("pending", 1, 1, None),
        ]);
        assert_eq!(purge(&conn, 10, true, 2).expect("purge"), 2);
        assert_eq!(left(&conn), ["e2"]);
    }

    #[test]
    fn the_retention_cutoff_is_the_kept_time_before_now() {
        let r = OutboxRetention {
            keep_finished: Duration::from_hours(2),
            discard_undelivered: false,
        };
        assert_eq!(r.cutoff_ms(10_000_000), 10_000_000 - 7_200_000);
        assert_eq!(r.cutoff_ms(i64::MIN), i64::MIN);
    }
}
