//! `hpts migrate`: applies the pending migrations to a database file and exits (0, or 1 if
//! they could not be applied). `serve` runs them at start anyway.

use std::process::ExitCode;

use crate::config::DatabaseArgs;
use crate::store::Store;

/// Runs the subcommand.
pub fn run(args: &DatabaseArgs) -> ExitCode {
    let path = args.path();
    match Store::migrate(&path) {
        Ok(n) => {
            println!("applied {n} migration(s) to {}", path.display());
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(&e, 1),
    }
}
