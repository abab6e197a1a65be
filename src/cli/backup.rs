//! `hpts backup`: a consistent copy of a live database (`VACUUM INTO`), with progress on
//! stderr, then `verify` on the copy. Exit 1 if no copy could be made; otherwise the exit codes
//! of `verify`.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use crate::config::BackupArgs;
use crate::store::backup_file;

/// Runs the subcommand.
pub fn run(args: &BackupArgs) -> ExitCode {
    let (path, out) = (args.source.path(), args.out.as_path());
    let wal = path.with_extension(format!(
        "{}-wal",
        path.extension().and_then(|e| e.to_str()).unwrap_or("db")
    ));
    let source_size = size_of(&path) + size_of(&wal);
    eprintln!(
        "backing up {} ({} KiB) to {}",
        path.display(),
        source_size / 1024,
        out.display()
    );
    let done = Arc::new(AtomicBool::new(false));
    let watcher = progress(Arc::clone(&done), out, source_size);
    let started = Instant::now();
    let result = backup_file(&path, out);
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    if let Err(e) = result {
        return super::fail(&e, 1);
    }
    eprintln!(
        "copy written: {} KiB in {:.1}s; verifying it",
        size_of(out) / 1024,
        started.elapsed().as_secs_f64()
    );
    super::verify::verify(out)
}

fn size_of(p: &Path) -> u64 {
    std::fs::metadata(p).map_or(0, |m| m.len())
}

/// A thread printing how much of the copy is written, every half second until `done`.
fn progress(done: Arc<AtomicBool>, out: &Path, source_size: u64) -> std::thread::JoinHandle<()> {
    let out = out.to_path_buf();
    std::thread::spawn(move || {
        while !done.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(500));
            if let Ok(m) = std::fs::metadata(&out) {
                eprintln!(
                    "  copied {} KiB of about {} KiB",
                    m.len() / 1024,
                    source_size / 1024
                );
            }
        }
    })
}
