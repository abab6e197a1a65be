//! `hpts`: thin entry point. Parses the command line, runs the subcommand (one module each in
//! [`hpts::cli`]) and exits with its code.

use std::process::ExitCode;

use clap::Parser;
use hpts::cli;
use hpts::config::{Cli, Command, WebhooksCommand};

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => cli::serve::run(&args),
        Command::CheckConfig(args) => cli::check_config::run(&args),
        Command::Migrate(args) => cli::migrate::run(&args),
        Command::Verify(args) => cli::verify::run(&args),
        Command::Backup(args) => cli::backup::run(&args),
        Command::Export(args) => cli::export::run(&args),
        Command::Webhooks(WebhooksCommand::Replay(args)) => cli::webhooks::replay(&args),
        Command::Token(args) => cli::token::run(&args),
    }
}
