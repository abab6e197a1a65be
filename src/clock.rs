//! Injected time and id sources. Domain and store code never call `now()` or mint UUIDs
//! themselves (clippy.toml forbids it elsewhere), so tests can fix both.

use std::sync::Arc;

use time::OffsetDateTime;
use uuid::Uuid;

/// A source of the current time.
pub trait Clock: Send + Sync + 'static {
    /// The current UTC time.
    fn now(&self) -> OffsetDateTime;
}

/// The operating system's clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[expect(
        clippy::disallowed_methods,
        reason = "the one place that reads the system clock"
    )]
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A source of new unique ids.
pub trait IdGenerator: Send + Sync + 'static {
    /// A new, unique, time-ordered id.
    fn new_id(&self) -> Uuid;
}

/// `UUIDv7`: time-ordered, so new rows land at the right edge of B-tree indexes.
#[derive(Debug, Default, Clone, Copy)]
pub struct UuidV7;

impl IdGenerator for UuidV7 {
    #[expect(clippy::disallowed_methods, reason = "the one place that mints UUIDs")]
    fn new_id(&self) -> Uuid {
        Uuid::now_v7()
    }
}

/// Clock and id generator travelling together.
#[derive(Clone)]
pub struct Sources {
    /// Time source.
    pub clock: Arc<dyn Clock>,
    /// Id source.
    pub ids: Arc<dyn IdGenerator>,
}

impl Default for Sources {
    fn default() -> Self {
        Sources {
            clock: Arc::new(SystemClock),
            ids: Arc::new(UuidV7),
        }
    }
}

/// RFC 3339 UTC with microseconds and a `Z` suffix, e.g. `2026-11-25T22:12:33.123456Z`.
pub fn format_timestamp(t: OffsetDateTime) -> String {
    const FORMAT: &[time::format_description::BorrowedFormatItem<'static>] = time::macros::format_description!(
        "[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond digits:6]Z"
    );
    t.to_offset(time::UtcOffset::UTC)
        .format(FORMAT)
        .unwrap_or_default()
}

/// Milliseconds since the Unix epoch (saturating), as the outbox stores times.
pub fn unix_ms(t: OffsetDateTime) -> i64 {
    i64::try_from(t.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

/// `YYYY-MM-DD`.
pub fn format_date(d: time::Date) -> String {
    crate::ledger::iso_date(d)
}

/// Parses `YYYY-MM-DD` strictly (exactly ten characters, a real calendar date).
pub fn parse_date(s: &str) -> Option<time::Date> {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let digits = |r: std::ops::Range<usize>| {
        b[r.clone()]
            .iter()
            .all(u8::is_ascii_digit)
            .then(|| s[r].parse::<u32>().ok())
            .flatten()
    };
    let year = i32::try_from(digits(0..4)?).ok()?;
    let month = time::Month::try_from(u8::try_from(digits(5..7)?).ok()?).ok()?;
    let day = u8::try_from(digits(8..10)?).ok()?;
    time::Date::from_calendar_date(year, month, day).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_utc_with_microseconds_and_z() {
        let t = time::macros::datetime!(2026-11-25 22:12:33.5 UTC);
        assert_eq!(format_timestamp(t), "2026-11-25T22:12:33.500000Z");
    }

    #[test]
    fn dates_are_parsed_strictly() {
        assert_eq!(
            parse_date("2026-02-28").map(format_date).as_deref(),
            Some("2026-02-28")
        );
        for bad in [
            "2026-02-30",
            "2026-2-28",
            "26-02-28",
            "2026-02-28T00:00:00Z",
            "2026/02/28",
            "",
        ] {
            assert!(parse_date(bad).is_none(), "{bad}");
        }
    }
}
