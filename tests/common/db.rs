//! The database file read directly: a read-only connection, single-number queries, and the
//! previous release's database (the dump the upgrade tests start from).

use std::path::Path;

/// A read-only connection to the database file (beside a running service or not).
pub fn read_only(db: &Path) -> rusqlite::Connection {
    rusqlite::Connection::open_with_flags(db, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .expect("open database read-only")
}

/// The one integer `sql` selects (e.g. a `count(*)`).
pub fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0))
        .unwrap_or_else(|e| panic!("{sql}: {e}"))
}

/// The previous release's database, as that release left it (schema V3, with data).
const PREVIOUS_RELEASE: &str = include_str!("../fixtures/release-0.1.0-v3.sql");

/// Writes the previous release's database to `path` (WAL mode, as the service runs it) and
/// returns a connection to it.
pub fn previous_release(path: &Path) -> rusqlite::Connection {
    let conn = rusqlite::Connection::open(path).expect("create");
    conn.execute_batch(PREVIOUS_RELEASE)
        .expect("load the previous release's dump");
    conn.execute_batch("PRAGMA journal_mode = WAL;")
        .expect("WAL");
    conn
}
