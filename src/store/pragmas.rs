//! Every `SQLite` pragma the service sets or runs, each with the reason: the writer's, the
//! readers', those of the side connections beside the writer (checkpoint thread, `hpts backup`,
//! `hpts webhooks replay`), the PASSIVE checkpoint and the schema probe `hpts verify` needs for
//! files of older releases. No other module names a pragma.

use rusqlite::Connection;

/// Durability of a commit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    /// fsync the WAL on every commit: a 2xx means the data is on disk (default).
    Full,
    /// fsync only at checkpoints: faster, but the last commits can be lost on power failure.
    Normal,
}

/// How long a connection waits for a lock before it fails (milliseconds): Litestream briefly
/// locks the database during its checkpoints, `hpts webhooks replay` may hold the write lock for
/// a moment, and a reader may meet a checkpoint or WAL reset in progress.
const BUSY_TIMEOUT_MS: i64 = 5000;

/// The writer's page cache (KiB): 16 MiB, room for every B-tree's interior pages and right
/// edges. Not more, because `SQLite` walks the whole page cache at almost every COMMIT while the
/// file is under 1 GiB: a B-tree split that reorders its new pages parks one under the page
/// number of the lock byte (page 262,145 at 4 KiB pages, past the end of the file), and the
/// truncation at the end of the transaction then scans every hash slot instead of the last few.
/// With 64 MiB (16,000 pages) that scan was about 8 % of the writer's time, more than the page
/// reads the smaller cache adds (the writer's loan state is in memory, not in pages).
/// Measured in docs/PERFORMANCE.md ("The writer's page cache").
const WRITER_CACHE_KIB: i64 = 16 * 1024;

/// Pragmas of the single read-write connection.
pub fn apply_writer(conn: &Connection, sync: Synchronous) -> rusqlite::Result<()> {
    // WAL: readers never block the writer and the writer never blocks readers; Litestream
    // replicates by shipping WAL frames, so WAL is also what replication needs.
    conn.pragma_update(None, "journal_mode", "WAL")?;
    // FULL syncs the WAL on every COMMIT, which is what makes a 2xx a durable acknowledgement.
    conn.pragma_update(
        None,
        "synchronous",
        match sync {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        },
    )?;
    // Litestream briefly locks the database during its checkpoints; wait instead of failing.
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    // Lines must reference known accounts, entries their events: the schema enforces it.
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.pragma_update(None, "cache_size", -WRITER_CACHE_KIB)?;
    // Statement journals in memory: every multi-row INSERT of a batch keeps one (so a constraint
    // failure can undo that statement alone), and writing it to a temp file was a fifth of the
    // writer's time. (While each job ran in its own SAVEPOINT this had to stay FILE: the
    // savepoint's in-memory journal was walked from its start after every statement, which made
    // a 10,000-loan accrual quadratic. The writer runs no savepoints any more.)
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // No checkpoint inside COMMIT: the checkpoint thread (store::checkpoint) runs PASSIVE
    // checkpoints on its own connection, so a commit only appends to the WAL and fsyncs it.
    conn.pragma_update(None, "wal_autocheckpoint", 0)?;
    // The writer's statements: a few multi-row INSERTs per table and chunk size, the lookups and
    // the upserts; all of them stay prepared (the default cache of 16 made it re-parse SQL).
    conn.set_prepared_statement_cache_capacity(256);
    // Keep the WAL file from staying huge after a burst (bytes; checkpoints still PASSIVE).
    conn.pragma_update(None, "journal_size_limit", 64 * 1024 * 1024)?;
    Ok(())
}

/// Pragmas of every read-only pool connection.
pub fn apply_reader(conn: &Connection) -> rusqlite::Result<()> {
    // Opened read-only already; query_only makes an accidental write fail loudly even so.
    conn.pragma_update(None, "query_only", "ON")?;
    // A reader may meet a checkpoint or WAL reset in progress; wait instead of failing.
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)?;
    // 64 MiB per reader.
    conn.pragma_update(None, "cache_size", -65_536)?;
    // Reads run no savepoints, so in-memory temp tables (GROUP BY, ORDER BY) are only faster.
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    // Every read's BEGIN and ROLLBACK and the readers' statements stay prepared; a
    // reconciliation alone runs more than the default 16.
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

/// Pragmas of a read-write connection beside the writer (the checkpoint thread, `hpts backup`'s
/// `VACUUM INTO`, `hpts webhooks replay`): it waits for a lock the service (or Litestream)
/// holds for a moment instead of failing.
pub fn apply_side(conn: &Connection) -> rusqlite::Result<()> {
    conn.pragma_update(None, "busy_timeout", BUSY_TIMEOUT_MS)
}

/// What one `PRAGMA wal_checkpoint(PASSIVE)` answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CheckpointRun {
    /// Another connection (the other checkpointing thread, or Litestream) held the checkpoint
    /// lock, so nothing was copied; `SQLite` then reports -1 for both counts.
    pub(crate) busy: bool,
    /// Frames in the WAL.
    pub(crate) frames: i64,
    /// Frames copied back into the database file.
    pub(crate) done: i64,
}

impl CheckpointRun {
    /// True when every frame of the WAL is in the database file, so the next write
    /// transaction starts the WAL from the beginning.
    pub(crate) fn copied_everything(&self) -> bool {
        !self.busy && self.frames >= 0 && self.done == self.frames
    }
}

/// Runs one PASSIVE checkpoint (never `TRUNCATE` or `RESTART`, which would fight Litestream).
pub(crate) fn checkpoint_passive(conn: &Connection) -> rusqlite::Result<CheckpointRun> {
    conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
        let frames: i64 = r.get(1)?;
        let done: i64 = r.get(2)?;
        Ok(CheckpointRun {
            busy: r.get::<_, i64>(0)? != 0 || frames < 0 || done < 0,
            frames,
            done,
        })
    })
}

/// Whether `table` has the column `column` (a file of an older release, which `hpts verify`
/// reads as it is, may lack one).
pub(crate) fn has_column(conn: &Connection, table: &str, column: &str) -> rusqlite::Result<bool> {
    conn.prepare("SELECT 1 FROM pragma_table_info(?1) WHERE name = ?2")?
        .exists([table, column])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wal_db(dir: &tempfile::TempDir) -> (Connection, Connection) {
        let path = dir.path().join("wal.db");
        let writer = Connection::open(&path).unwrap();
        writer
            .execute_batch(
                "PRAGMA journal_mode = WAL; PRAGMA wal_autocheckpoint = 0;
                 CREATE TABLE t (x INTEGER);",
            )
            .unwrap();
        let reader = Connection::open(&path).unwrap();
        (writer, reader)
    }

    #[test]
    fn a_checkpoint_with_no_reader_in_the_way_copies_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, _reader) = wal_db(&dir);
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        let run = checkpoint_passive(&writer).unwrap();
        assert!(!run.busy, "{run:?}");
        assert!(run.frames > 0, "{run:?}");
        assert!(run.copied_everything(), "{run:?}");
    }

    #[test]
    fn a_checkpoint_behind_a_reader_on_an_old_snapshot_does_not_copy_everything() {
        let dir = tempfile::tempdir().unwrap();
        let (writer, reader) = wal_db(&dir);
        writer.execute("INSERT INTO t VALUES (1)", []).unwrap();
        reader.execute_batch("BEGIN").unwrap();
        let _: i64 = reader
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        writer.execute("INSERT INTO t VALUES (2)", []).unwrap();
        let run = checkpoint_passive(&writer).unwrap();
        assert!(!run.busy, "{run:?}");
        assert!(run.done < run.frames, "{run:?}");
        assert!(!run.copied_everything(), "{run:?}");
        reader.execute_batch("COMMIT").unwrap();
        assert!(checkpoint_passive(&writer).unwrap().copied_everything());
    }

    #[test]
    fn a_checkpoint_that_reports_minus_one_counts_as_busy_and_copied_nothing() {
        // SQLite answers -1 for both counts when it ran no checkpoint: a database not in WAL
        // mode here, another checkpointer holding the lock in the service.
        let conn = Connection::open_in_memory().unwrap();
        let run = checkpoint_passive(&conn).unwrap();
        assert_eq!((run.frames, run.done), (-1, -1), "{run:?}");
        assert!(run.busy);
        assert!(!run.copied_everything());
    }
}

#[cfg(test)]
mod build_tests {
    use rusqlite::Connection;

    fn compile_options() -> Vec<String> {
        let conn = Connection::open_in_memory().unwrap();
        let mut stmt = conn.prepare("PRAGMA compile_options").unwrap();
        stmt.query_map([], |r| r.get(0))
            .unwrap()
            .map(Result::unwrap)
            .collect()
    }

    #[test]
    fn sqlite_is_built_without_the_process_wide_page_cache_and_memory_statistics_mutexes() {
        // .cargo/config.toml's LIBSQLITE3_FLAGS (docs/PERFORMANCE.md, "SQLite's global mutexes").
        let options = compile_options();
        assert!(
            !options.iter().any(|o| o == "ENABLE_MEMORY_MANAGEMENT"),
            "{options:?}"
        );
        assert!(
            options.iter().any(|o| o == "DEFAULT_MEMSTATUS=0"),
            "{options:?}"
        );
        // The rest of rusqlite's bundled build stays as it was.
        assert!(options.iter().any(|o| o == "THREADSAFE=1"), "{options:?}");
        assert!(
            options.iter().any(|o| o == "DEFAULT_FOREIGN_KEYS"),
            "{options:?}"
        );
    }
}
