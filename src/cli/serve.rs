//! `hpts serve`: validates the settings (exit 2 if they are invalid), then runs the service
//! until SIGTERM or SIGINT, both a graceful stop ([`Application::run_blocking`] owns the
//! runtime, so this module names no actix). Exit 0 after a graceful stop, 1 if it could not
//! start.

use std::process::ExitCode;

use crate::app::Application;
use crate::config::{ServeArgs, Settings};
use crate::report::Chain;

/// Runs the subcommand.
pub fn run(args: &ServeArgs) -> ExitCode {
    let settings = match Settings::from_args(args) {
        Ok(s) => s,
        Err(e) => return super::fail(&e, 2),
    };
    match Application::run_blocking(settings, wait_for_stop_signal) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %Chain(&e), "hpts failed to start");
            super::fail(&e, 1)
        }
    }
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
