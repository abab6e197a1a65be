//! `hpts`: thin entry point. Parses the command line, runs the subcommand (one module each in
//! [`hpts::cli`]) and exits with its code; jemalloc is the process's allocator.

use std::process::ExitCode;

use clap::Parser;
use hpts::cli;
use hpts::config::{Cli, Command, WebhooksCommand};

/// jemalloc instead of glibc's malloc: the writer thread allocates and frees many small,
/// short-lived buffers per job (`SQLite`'s records and statement journals, Rust's rows), and
/// glibc spent 12-16 % of its samples in malloc/free and their consolidation. Measured in
/// docs/PERFORMANCE.md ("jemalloc"): less CPU per write, the same tail latency and RSS. The
/// crate's `unprefixed_malloc_on_supported_platforms` feature makes it the C `malloc` as well,
/// which `SQLite` calls directly.
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

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
