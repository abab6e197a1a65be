//! The database file read directly: a read-only connection and single-number queries.

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
