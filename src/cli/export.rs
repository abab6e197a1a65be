//! `hpts export --format beancount|hledger --tenant UUID [--from D] [--to D] [--database PATH]
//! [--out FILE]`: the journal export of `GET /v1/exports/journal`, from a database file —
//! read-only and on one snapshot, so it is safe beside a running service. Progress goes to
//! stderr every 10,000 entries; the journal goes to `--out` (written to a temporary name and
//! renamed when complete) or to stdout.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::clock::parse_date;
use crate::config::ExportArgs;
use crate::ledger::export::Format;
use crate::ledger::ids::TenantId;
use crate::report::Chain;
use crate::store::export::ExportRange;
use crate::store::export_file;

/// Runs the subcommand: exit 0 when the journal was written, 2 on bad arguments or an
/// unreadable file.
pub fn run(args: &ExportArgs) -> ExitCode {
    match export(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("hpts: {e}");
            ExitCode::from(2)
        }
    }
}

fn export(args: &ExportArgs) -> Result<(), String> {
    let format = Format::parse(&args.format).ok_or("--format must be beancount or hledger")?;
    let tenant = TenantId::parse(&args.tenant).ok_or("--tenant must be a UUID")?;
    let date = |flag: &str, v: &Option<String>| {
        v.as_deref()
            .map(|d| parse_date(d).ok_or(format!("{flag} must be a date YYYY-MM-DD")))
            .transpose()
    };
    let range = ExportRange {
        from: date("--from", &args.from)?,
        to: date("--to", &args.to)?,
    };
    let path = args.db.path();
    if !path.exists() {
        return Err(format!("{} does not exist", path.display()));
    }
    eprintln!("exporting tenant {tenant} from {}", path.display());
    let mut progress = |done: u64, total: u64| {
        if done > 0 {
            eprintln!("  {done} of {total} entries");
        }
    };
    match &args.out {
        None => {
            let stdout = std::io::stdout().lock();
            let out = export_file(
                &path,
                tenant,
                format,
                range,
                BufWriter::new(stdout),
                &mut progress,
            )
            .map_err(|e| Chain(&e).to_string())?;
            drop(out);
        }
        Some(target) => {
            let partial = partial_name(target);
            let file = File::create(&partial)
                .map_err(|e| format!("cannot create {}: {e}", partial.display()))?;
            let written = export_file(
                &path,
                tenant,
                format,
                range,
                BufWriter::new(file),
                &mut progress,
            )
            .map_err(|e| Chain(&e).to_string())
            .and_then(|out| {
                out.into_inner()
                    .map_err(|e| e.to_string())
                    .and_then(|f| f.sync_all().map_err(|e| e.to_string()))
            });
            if let Err(e) = written {
                let _ = std::fs::remove_file(&partial);
                return Err(e);
            }
            std::fs::rename(&partial, target)
                .map_err(|e| format!("cannot rename to {}: {e}", target.display()))?;
            eprintln!("wrote {}", target.display());
        }
    }
    std::io::stderr().flush().map_err(|e| e.to_string())
}

/// Where an export is written until it is complete.
fn partial_name(target: &Path) -> PathBuf {
    let mut name = target.as_os_str().to_owned();
    name.push(".partial");
    PathBuf::from(name)
}
