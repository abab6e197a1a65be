//! `hpts token`: prints a development bearer token, signed with the dev key of `--data-dir`
//! (created if missing), that `hpts serve --dev` accepts. Exit 0, or 2 on a bad argument.

use std::process::ExitCode;

use crate::auth::Scope;
use crate::auth::dev::{DevKey, parse_ttl};
use crate::config::TokenArgs;
use crate::ledger::ids::TenantId;

/// Runs the subcommand.
pub fn run(args: &TokenArgs) -> ExitCode {
    match mint(args) {
        Ok(token) => {
            println!("{token}");
            ExitCode::SUCCESS
        }
        Err(e) => super::fail_with(&e, 2),
    }
}

fn mint(args: &TokenArgs) -> Result<String, String> {
    let tenant = TenantId::parse(&args.tenant).ok_or("--tenant must be a UUID")?;
    let ttl = parse_ttl(&args.ttl)?;
    let scopes = args.scope.clone().unwrap_or_else(|| {
        let all: Vec<&str> = Scope::ALL.iter().map(|s| s.as_str()).collect();
        all.join(" ")
    });
    let key = DevKey::load_or_create(&args.data_dir)?;
    // A CLI token's iat/exp are wall-clock.
    let now = super::wall_clock().as_secs();
    key.mint(&tenant.to_string(), &scopes, ttl, &args.subject, now)
}
