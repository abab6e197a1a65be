//! The `hpts` subcommands, one module each: [`serve`], [`check_config`], [`migrate`],
//! [`verify`], [`backup`], [`export`], [`webhooks`] (`webhooks replay`) and [`token`]. The
//! flags are declared in [`crate::config`]; `main.rs` parses them, calls the module's `run` and
//! returns its exit code. Every failure prints one line, `hpts: what: why`, on stderr.

pub mod backup;
pub mod check_config;
pub mod export;
pub mod migrate;
pub mod serve;
pub mod token;
pub mod verify;
pub mod webhooks;

use std::process::ExitCode;

use crate::report::Chain;

/// Prints `hpts: ` and the error with its sources on stderr; returns exit code `code`.
pub(crate) fn fail(e: &(dyn std::error::Error + 'static), code: u8) -> ExitCode {
    eprintln!("hpts: {}", Chain(e));
    ExitCode::from(code)
}

/// Prints `hpts: ` and `message` on stderr; returns exit code `code`.
pub(crate) fn fail_with(message: &str, code: u8) -> ExitCode {
    eprintln!("hpts: {message}");
    ExitCode::from(code)
}

/// Milliseconds (or seconds) since the Unix epoch by the wall clock: a command's own time.
#[expect(clippy::disallowed_methods, reason = "a CLI run's own wall-clock time")]
pub(crate) fn wall_clock() -> std::time::Duration {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default()
}
