//! `hpts check-config`: validates the configuration of `serve` and prints it as JSON, secrets
//! redacted. Exit 0 if it is valid, 2 (naming each bad variable) if not.

use std::process::ExitCode;

use crate::config::{ServeArgs, Settings};

/// Runs the subcommand.
pub fn run(args: &ServeArgs) -> ExitCode {
    match Settings::from_args(args) {
        Ok(s) => {
            println!(
                "{}",
                serde_json::to_string_pretty(&s.redacted()).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Err(e) => super::fail(&e, 2),
    }
}
