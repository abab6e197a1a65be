//! `hpts`: thin entry point. Parses the command line and hands over to the library.

use std::process::ExitCode;

use clap::Parser;
use hpts::app::Application;
use hpts::auth::Scope;
use hpts::auth::dev::{DevKey, parse_ttl};
use hpts::config::{Cli, Command, Settings};
use hpts::ledger::ids::TenantId;
use hpts::store::Store;
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
            telemetry::init(&settings.log_filter, settings.log_format);
            let result = actix_web::rt::System::new().block_on(async move {
                let app = Application::build(settings)
                    .await
                    .map_err(|e| e.to_string())?;
                app.run_until_stopped().await.map_err(|e| e.to_string())
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
        Command::Migrate(args) => match Store::migrate(&args.database) {
            Ok(n) => {
                println!("applied {n} migration(s) to {}", args.database.display());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("hpts: {e}");
                ExitCode::FAILURE
            }
        },
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
