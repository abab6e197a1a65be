//! `hpts verify`: the reconciliation checks of every tenant of a database file, read-only.
//! Every tenant is checked and reported, whatever the earlier ones showed. Exit 0 when every
//! check of every tenant holds, 1 when any check fails (or a tenant cannot be checked at all),
//! 2 only when the file itself is unusable (missing, not a database).

use std::path::Path;
use std::process::ExitCode;
use std::time::Instant;

use crate::config::DatabaseArgs;
use crate::report::Chain;
use crate::store::{TenantVerification, verify_file};

/// Runs the subcommand.
pub fn run(args: &DatabaseArgs) -> ExitCode {
    verify(&args.path())
}

/// Verifies the file at `path` (also `hpts backup`'s last step, on the copy).
pub(crate) fn verify(path: &Path) -> ExitCode {
    eprintln!("verifying {}", path.display());
    let started = Instant::now();
    let result = verify_file(path, |i, n, tenant| {
        eprintln!("[{}/{n}] tenant {tenant}", i + 1);
    });
    match result {
        Ok(reports) => report(&reports, started),
        Err(e) => super::fail(&e, 2),
    }
}

/// Prints every tenant's checks and the summary line; the exit code they call for.
fn report(reports: &[TenantVerification], started: Instant) -> ExitCode {
    let mut failing = 0;
    let mut entries = 0;
    for (tenant, outcome) in reports {
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
