//! The webhook outbox: rows written by the writer with each journal entry (same transaction),
//! read by the delivery worker through the read pool, and updated — delivered, retried later,
//! or failed — through the writer again, so the single-writer rule holds.

use rusqlite::{Connection, OptionalExtension, params};

use crate::store::StoreError;

/// One due delivery.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Row key.
    pub outbox_seq: i64,
    /// `webhook-id` (the same on every attempt, so consumers can dedupe).
    pub webhook_id: String,
    /// The JSON body, fixed at posting time.
    pub payload: String,
    /// Attempts so far.
    pub attempts: i64,
    /// When the row was written (ms since the epoch).
    pub created_ms: i64,
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

/// The `journalEntryPosted` webhook body of an entry, fixed when the entry is posted (the
/// writer stores it in the entry's outbox row, in the entry's own transaction).
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
        "SELECT outbox_seq, webhook_id, payload, attempts, created_ms FROM webhook_outbox \
         WHERE status = 'pending' AND next_attempt_ms <= ?1 ORDER BY next_attempt_ms, outbox_seq LIMIT ?2",
    )?;
    let rows = stmt.query_map(params![now_ms, limit], |r| {
        Ok(Delivery {
            outbox_seq: r.get(0)?,
            webhook_id: r.get(1)?,
            payload: r.get(2)?,
            attempts: r.get(3)?,
            created_ms: r.get(4)?,
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

/// Records delivery outcomes (runs inside a writer transaction).
pub(crate) fn record(conn: &Connection, outcomes: &[DeliveryOutcome]) -> Result<(), StoreError> {
    for o in outcomes {
        match o {
            DeliveryOutcome::Delivered { outbox_seq, at } => {
                conn.prepare_cached(
                    "UPDATE webhook_outbox SET status = 'delivered', attempts = attempts + 1, delivered_at = ?2, last_error = NULL \
                     WHERE outbox_seq = ?1",
                )?
                .execute(params![outbox_seq, at])?;
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
                    "UPDATE webhook_outbox SET status = 'failed', attempts = attempts + 1, last_error = ?2 WHERE outbox_seq = ?1",
                )?
                .execute(params![outbox_seq, error])?;
            }
        }
    }
    Ok(())
}

/// Re-queues every delivery of entries posted at or after `since` (RFC 3339 or date prefix).
pub(crate) fn requeue_since(
    conn: &Connection,
    since: &str,
    now_ms: i64,
) -> Result<usize, StoreError> {
    Ok(conn.execute(
        "UPDATE webhook_outbox SET status = 'pending', attempts = 0, next_attempt_ms = ?2, created_ms = ?2, \
         last_error = NULL, delivered_at = NULL WHERE occurred_at >= ?1",
        params![since, now_ms],
    )?)
}
