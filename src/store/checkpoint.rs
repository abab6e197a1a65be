//! WAL checkpoints off the commit path. The writer connection runs with
//! `wal_autocheckpoint = 0`, so no COMMIT ever pays for copying WAL frames back into the
//! database file; instead this thread, on its own connection, runs a `PASSIVE` checkpoint every
//! [`INTERVAL`]. `PASSIVE` never waits for or blocks the writer or readers — it copies what no
//! reader still needs and stops — and it is the only kind this service ever runs: TRUNCATE and
//! RESTART would fight Litestream, which owns the WAL's lifecycle when it replicates the file
//! (docs/OPERATIONS.md, "Checkpoints"). With replicated acknowledgements the store starts no
//! checkpoint thread at all: Litestream is known to run and checkpoints alone.
//!
//! Under steady writes a checkpoint running beside the writer never quite finishes (new frames
//! arrive while it copies), and `SQLite` only starts the WAL over once a checkpoint has copied
//! every frame. So this thread publishes the WAL's length ([`WalProgress`]), and when it passes
//! [`RESET_FRAMES`] and this thread has copied all but a quarter of that, the writer runs one
//! `PASSIVE` checkpoint itself between two batches: only the last few frames remain to copy, so
//! it is short (a long one would stall every queued write), it completes, and the writer's next
//! transaction starts the WAL from the beginning.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::{StoreError, WriterStats};

/// How often a PASSIVE checkpoint runs.
pub const INTERVAL: Duration = Duration::from_millis(200);

/// WAL length (frames, one page each) past which the writer finishes a checkpoint itself.
pub const RESET_FRAMES: i64 = 4096;

/// What the last background checkpoint saw: frames in the WAL and frames copied back.
#[derive(Debug, Default)]
pub struct WalProgress {
    /// Frames in the WAL.
    pub frames: std::sync::atomic::AtomicI64,
    /// Frames already copied into the database file.
    pub checkpointed: std::sync::atomic::AtomicI64,
}

impl WalProgress {
    /// True when the WAL is long enough that the writer should let it start over, and the
    /// background thread has copied nearly all of it, so finishing costs the writer little.
    pub fn wants_reset(&self) -> bool {
        let frames = self.frames.load(Ordering::Relaxed);
        let done = self.checkpointed.load(Ordering::Relaxed);
        frames >= RESET_FRAMES && frames - done <= RESET_FRAMES / 4
    }
}

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
        crate::store::pragmas::apply_side(&conn)?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread_stop = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name("hpts-checkpoint".into())
            .spawn(move || {
                while !thread_stop.load(Ordering::Acquire) {
                    std::thread::park_timeout(INTERVAL);
                    match crate::store::pragmas::checkpoint_passive(&conn) {
                        Ok(run) if run.busy => {}
                        Ok(run) => {
                            stats.wal.frames.store(run.frames, Ordering::Relaxed);
                            stats.wal.checkpointed.store(run.done, Ordering::Relaxed);
                        }
                        Err(e) => tracing::warn!(error = %e, "passive WAL checkpoint failed"),
                    }
                    stats.checkpoints.fetch_add(1, Ordering::Relaxed);
                }
            })
            .map_err(|e| StoreError::failed("cannot start checkpoint thread", e))?;
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
