//! WAL checkpoints off the commit path. The writer connection runs with
//! `wal_autocheckpoint = 0`, so no COMMIT ever pays for copying WAL frames back into the
//! database file; instead this thread, on its own connection, runs a `PASSIVE` checkpoint every
//! [`INTERVAL`]. `PASSIVE` never waits for or blocks the writer or readers — it copies what no
//! reader still needs and stops — and it is the only kind this service ever runs: TRUNCATE and
//! RESTART would fight Litestream, which owns the WAL's lifecycle when it replicates the file
//! (docs/OPERATIONS.md, "Checkpoints").

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::{StoreError, WriterStats};

/// How often a PASSIVE checkpoint runs.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// The background checkpoint thread.
pub(crate) struct Checkpointer {
    stop: Arc<AtomicBool>,
    thread: parking_lot::Mutex<Option<JoinHandle<()>>>,
}

impl Checkpointer {
    /// Starts the thread on its own connection to `path`.
    pub(crate) fn spawn(path: &Path, stats: Arc<WriterStats>) -> Result<Self, StoreError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )?;
        // Litestream briefly locks the file during its own checkpoints; wait instead of failing.
        conn.pragma_update(None, "busy_timeout", 5000)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hpts-checkpoint".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(INTERVAL);
                    if let Err(e) = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())) {
                        tracing::warn!(error = %e, "passive WAL checkpoint failed");
                    }
                    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(|e| StoreError::Database(format!("cannot start checkpoint thread: {e}")))?;
        Ok(Checkpointer {
            stop,
            thread: parking_lot::Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread (after one last checkpoint) and waits for it.
    pub(crate) fn shutdown(&self) {
        if let Some(thread) = self.thread.lock().take() {
            self.stop.store(true, Ordering::Release);
            thread.thread().unpark();
            let _ = thread.join();
        }
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shutdown();
    }
}
