//! `hpts webhooks replay --since T`: marks the deliveries of every entry posted at or after `T`
//! as due again, from a second process beside the service. Exit 0 (printing how many), 1 on a
//! database error, 2 if `--since` is malformed.

use std::process::ExitCode;

use crate::clock::{format_timestamp, parse_date};
use crate::config::ReplayArgs;
use crate::store::requeue_webhooks;

/// Runs `webhooks replay`.
pub fn replay(args: &ReplayArgs) -> ExitCode {
    // Normalised to the stored form (RFC 3339 UTC with microseconds) so the comparison with
    // posted_at is exact: a date means its first microsecond.
    let raw = args.since.trim();
    let parsed = parse_date(raw)
        .map(|d| d.midnight().assume_utc())
        .or_else(|| {
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()
        });
    let Some(since) = parsed.map(format_timestamp) else {
        return super::fail_with(
            "--since must be a date (YYYY-MM-DD) or an RFC 3339 timestamp",
            2,
        );
    };
    let now_ms = i64::try_from(super::wall_clock().as_millis()).unwrap_or(i64::MAX);
    match requeue_webhooks(&args.db.path(), &since, now_ms) {
        Ok(n) => {
            println!("re-queued {n} webhook deliveries posted since {since}");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(&e, 1),
    }
}
