//! `hpts`: thin entry point. Parses the command line and hands over to the library.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::Parser;
use hpts::app::Application;
use hpts::auth::Scope;
use hpts::auth::dev::{DevKey, parse_ttl};
use hpts::config::{Cli, Command, ReplayArgs, Settings, WebhooksCommand};
use hpts::ledger::ids::TenantId;
use hpts::report::Chain;
use hpts::store::{Store, backup_file, requeue_webhooks, verify_file};
use hpts::telemetry;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => {
            let settings = match Settings::from_args(&args) {
                Ok(s) => s,
                Err(e) => {
                    eprintln!("hpts: {e}");
                    return ExitCode::from(2);
                }
            };
            let result = actix_web::rt::System::new().block_on(async move {
                // Inside the runtime: span export requests run on it.
                let tracer = telemetry::init_serving(
                    &settings.log_filter,
                    settings.log_format,
                    settings.otlp.as_ref(),
                )?;
                let app = Application::build(settings)
                    .await
                    .map_err(|e| Chain(&e).to_string())?;
                let handle = app.handle();
                actix_web::rt::spawn(async move {
                    let signal = wait_for_stop_signal().await;
                    tracing::info!(
                        signal,
                        "stopping: finishing in-flight requests and queued writes"
                    );
                    handle.stop(true).await;
                });
                let served = app.run_until_stopped().await.map_err(|e| e.to_string());
                if let Some(tracer) = tracer {
                    // Blocking (it waits for the last exports, which run on this runtime).
                    let _ = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
                }
                served
            });
            match result {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!(error = %e, "hpts failed to start");
                    eprintln!("hpts: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::CheckConfig(args) => match Settings::from_args(&args) {
            Ok(s) => {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&s.redacted()).unwrap_or_default()
                );
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hpts: {e}");
                ExitCode::from(2)
            }
        },
        Command::Migrate(args) => match Store::migrate(&args.path()) {
            Ok(n) => {
                println!("applied {n} migration(s) to {}", args.path().display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hpts: {}", Chain(&e));
                ExitCode::FAILURE
            }
        },
        Command::Verify(args) => verify(&args.path()),
        Command::Export(args) => hpts::cli::export::run(&args),
        Command::Webhooks(WebhooksCommand::Replay(args)) => replay_webhooks(&args),
        Command::Backup(args) => backup(&args.source.path(), &args.out),
        Command::Token(args) => {
            let result = (|| -> Result<String, String> {
                let tenant = TenantId::parse(&args.tenant).ok_or("--tenant must be a UUID")?;
                let ttl = parse_ttl(&args.ttl)?;
                let all: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
                let scopes = args.scope.clone().unwrap_or_else(|| all.join(" "));
                let key = DevKey::load_or_create(&args.data_dir)?;
                #[expect(
                    clippy::disallowed_methods,
                    reason = "a CLI token's iat/exp are wall-clock"
                )]
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_err(|e| e.to_string())?
                    .as_secs();
                key.mint(&tenant.to_string(), &scopes, ttl, &args.subject, now)
            })();
            match result {
                Ok(token) => {
                    println!("{token}");
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    eprintln!("hpts: {e}");
                    ExitCode::from(2)
                }
            }
        }
    }
}

/// `hpts verify`: every tenant is checked and reported, whatever the earlier ones showed. Exit
/// 0 when every check of every tenant holds, 1 when any check fails (or a tenant cannot be
/// checked at all), 2 only when the file itself is unusable (missing, not a database).
fn verify(path: &Path) -> ExitCode {
    eprintln!("verifying {}", path.display());
    let started = Instant::now();
    let result = verify_file(path, |i, n, tenant| {
        eprintln!("[{}/{n}] tenant {tenant}", i + 1);
    });
    let reports = match result {
        Ok(reports) => reports,
        Err(e) => {
            eprintln!("hpts: {}", Chain(&e));
            return ExitCode::from(2);
        }
    };
    let mut failing = 0;
    let mut entries = 0;
    for (tenant, outcome) in &reports {
        match outcome {
            Ok(report) => {
                entries += report.entries_checked;
                println!("tenant {tenant}: {} entries", report.entries_checked);
                for check in &report.checks {
                    println!(
                        "  {:<34} {:<8} {}",
                        check.name,
                        if check.ok { "ok" } else { "MISMATCH" },
                        check.detail
                    );
                }
                if !report.ok() {
                    failing += 1;
                }
            }
            Err(e) => {
                println!("tenant {tenant}: could not be checked: {}", Chain(e));
                failing += 1;
            }
        }
    }
    println!(
        "{}: {} tenant(s), {failing} failing, {entries} entries checked in {:.1}s",
        if failing == 0 { "OK" } else { "MISMATCH" },
        reports.len(),
        started.elapsed().as_secs_f64()
    );
    if failing == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// `hpts backup`: VACUUM INTO with progress, then verify the copy (1 if no copy could be made;
/// otherwise the exit codes of `verify`).
fn backup(path: &Path, out: &Path) -> ExitCode {
    let wal = path.with_extension(format!(
        "{}-wal",
        path.extension().and_then(|e| e.to_str()).unwrap_or("db")
    ));
    let size_of = |p: &Path| std::fs::metadata(p).map_or(0, |m| m.len());
    let source_size = size_of(path) + size_of(&wal);
    eprintln!(
        "backing up {} ({} KiB) to {}",
        path.display(),
        source_size / 1024,
        out.display()
    );
    let done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (done, out) = (Arc::clone(&done), out.to_path_buf());
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
    };
    let started = Instant::now();
    let result = backup_file(path, out);
    done.store(true, Ordering::Relaxed);
    let _ = watcher.join();
    if let Err(e) = result {
        eprintln!("hpts: {}", Chain(&e));
        return ExitCode::FAILURE;
    }
    let size = std::fs::metadata(out).map_or(0, |m| m.len());
    eprintln!(
        "copy written: {} KiB in {:.1}s; verifying it",
        size / 1024,
        started.elapsed().as_secs_f64()
    );
    verify(out)
}

/// Resolves on SIGTERM or SIGINT (both mean a graceful stop).
async fn wait_for_stop_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    if let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
        }
    } else {
        let _ = tokio::signal::ctrl_c().await;
        "SIGINT"
    }
}

/// `hpts webhooks replay --since T`.
fn replay_webhooks(args: &ReplayArgs) -> ExitCode {
    // Normalised to the stored form (RFC 3339 UTC with microseconds) so the comparison with
    // posted_at is exact: a date means its first microsecond.
    let raw = args.since.trim();
    let parsed = hpts::clock::parse_date(raw)
        .map(|d| d.midnight().assume_utc())
        .or_else(|| {
            time::OffsetDateTime::parse(raw, &time::format_description::well_known::Rfc3339).ok()
        });
    let Some(since) = parsed.map(hpts::clock::format_timestamp) else {
        eprintln!("hpts: --since must be a date (YYYY-MM-DD) or an RFC 3339 timestamp");
        return ExitCode::from(2);
    };
    let since = since.as_str();
    #[expect(clippy::disallowed_methods, reason = "a CLI run's own wall-clock time")]
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    match requeue_webhooks(
        &args.db.path(),
        since,
        i64::try_from(now).unwrap_or(i64::MAX),
    ) {
        Ok(n) => {
            println!("re-queued {n} webhook deliveries posted since {since}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("hpts: {}", Chain(&e));
            ExitCode::FAILURE
        }
    }
}
