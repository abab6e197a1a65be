//! The real plain-text accounting tools, run on exported journals (SPEC §6d): `bean-check` and
//! Beancount's Python API (beancount 3.2.3 in the test venv, `$HPTS_TEST_VENV`, which
//! `scripts/test.sh` sets up) and `hledger` (Debian's 1.25, found on `PATH`). A missing tool
//! panics with what to run; these tests never skip.
//!
//! Balances are keyed by (tool account name, currency code) and held in minor units,
//! debit-positive, with zero balances left out, so a tool's report compares directly with
//! balances computed from the ledger (or read from `GET /v1/trial-balance`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use hpts::ledger::money::Currency;

/// Balances per (account name, currency code), minor units, debit-positive, no zeros.
pub type Balances = BTreeMap<(String, String), i128>;

/// What a tool run printed and whether it succeeded.
#[derive(Debug)]
pub struct ToolRun {
    /// The exit status was success.
    pub success: bool,
    /// Standard output followed by standard error.
    pub output: String,
}

/// The test venv (`$HPTS_TEST_VENV`); panics when it is not set or not a directory.
pub fn venv() -> PathBuf {
    let Some(dir) = std::env::var_os("HPTS_TEST_VENV") else {
        panic!(
            "HPTS_TEST_VENV is not set: run the tests through scripts/test.sh, which creates the \
             venv with beancount==3.2.3 and sets it (or set it to such a venv yourself)"
        );
    };
    let dir = PathBuf::from(dir);
    assert!(
        dir.is_dir(),
        "HPTS_TEST_VENV={} is not a directory: run scripts/test.sh to create it",
        dir.display()
    );
    dir
}

/// `$HPTS_TEST_VENV/bin/<name>`; panics when it is missing.
fn venv_tool(name: &str) -> PathBuf {
    let path = venv().join("bin").join(name);
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test.sh, which installs beancount==3.2.3 into the venv \
         (or `$HPTS_TEST_VENV/bin/pip install beancount==3.2.3`)",
        path.display()
    );
    path
}

/// The `bean-check` of the test venv.
pub fn bean_check_path() -> PathBuf {
    venv_tool("bean-check")
}

/// The venv's Python, which has beancount's API.
pub fn venv_python() -> PathBuf {
    venv_tool("python")
}

/// `hledger` on `PATH`; panics when there is none.
pub fn hledger_path() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .map(|dir| dir.join("hledger"))
        .find(|candidate| candidate.is_file())
        .unwrap_or_else(|| {
            panic!(
                "hledger is not on PATH: run scripts/test.sh, which installs it \
                 (`apt-get install -y hledger`, Debian's 1.25)"
            )
        })
}

fn run(command: &mut Command) -> ToolRun {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("cannot run {command:?}: {e}"));
    let mut text = String::from_utf8_lossy(&output.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    ToolRun {
        success: output.status.success(),
        output: text,
    }
}

/// `bean-check FILE`: parses, books and validates the file, balance assertions included.
pub fn bean_check(file: &Path) -> ToolRun {
    run(Command::new(bean_check_path()).arg(file))
}

/// `hledger check --strict -f FILE`: hledger's default checks (parses, every transaction
/// balances, every balance assertion holds) plus the strict ones (every account and commodity
/// declared).
pub fn hledger_check(file: &Path) -> ToolRun {
    run(Command::new(hledger_path())
        .args(["check", "--strict", "-f"])
        .arg(file))
}

/// Panics with the tool's output unless both `bean-check` (on `beancount`) and `hledger check`
/// (on `hledger`) pass.
pub fn assert_tools_accept(beancount: &Path, hledger: &Path) {
    let run = bean_check(beancount);
    assert!(
        run.success,
        "bean-check rejected {}:\n{}",
        beancount.display(),
        run.output
    );
    let run = hledger_check(hledger);
    assert!(
        run.success,
        "hledger check rejected {}:\n{}",
        hledger.display(),
        run.output
    );
}

/// Loads the file with `beancount.loader` (as bean-check does: parse, book, plugins,
/// validation), exits non-zero on any error, and prints the sum of every transaction posting
/// per account and currency, optionally only of transactions dated before a cutoff.
const BEANCOUNT_BALANCES: &str = r#"
import datetime, sys
from collections import defaultdict
from decimal import Decimal
from beancount import loader
from beancount.core import data
from beancount.parser import printer

entries, errors, _options = loader.load_file(sys.argv[1])
if errors:
    printer.print_errors(errors, file=sys.stderr)
    sys.exit(1)
cutoff = datetime.date.fromisoformat(sys.argv[2]) if len(sys.argv) > 2 else None
sums = defaultdict(Decimal)
for entry in entries:
    if isinstance(entry, data.Transaction) and (cutoff is None or entry.date < cutoff):
        for posting in entry.postings:
            sums[(posting.account, posting.units.currency)] += posting.units.number
for (account, currency), number in sorted(sums.items()):
    print(f"{account}\t{currency}\t{number:f}")
"#;

/// The balances Beancount's Python API computes from the file: every posting summed per
/// account and currency, of the transactions dated before `before` (all of them with `None`).
/// Panics when the file does not load cleanly.
pub fn beancount_balances(file: &Path, before: Option<time::Date>) -> Balances {
    let mut command = Command::new(venv_python());
    command.arg("-c").arg(BEANCOUNT_BALANCES).arg(file);
    if let Some(date) = before {
        command.arg(hpts::ledger::iso_date(date));
    }
    let run = run(&mut command);
    assert!(
        run.success,
        "beancount.loader rejected {}:\n{}",
        file.display(),
        run.output
    );
    let mut balances = Balances::new();
    for line in run.output.lines().filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let [account, currency, number] = fields[..] else {
            panic!("unexpected beancount balance line {line:?}");
        };
        add(&mut balances, account, currency, number);
    }
    balances
}

/// The balances `hledger bal` prints for the file (`-O csv --layout=bare`, one row per account
/// and commodity), of the postings dated before `before` (`-e`, exclusive) or all of them.
pub fn hledger_balances(file: &Path, before: Option<time::Date>) -> Balances {
    let mut command = Command::new(hledger_path());
    command
        .args(["bal", "-O", "csv", "--layout=bare", "--no-total", "-f"])
        .arg(file);
    if let Some(date) = before {
        command.args(["-e", &hpts::ledger::iso_date(date)]);
    }
    let run = run(&mut command);
    assert!(
        run.success,
        "hledger bal rejected {}:\n{}",
        file.display(),
        run.output
    );
    let mut lines = run.output.lines();
    assert_eq!(
        lines.next(),
        Some(r#""account","commodity","balance""#),
        "unexpected hledger bal output:\n{}",
        run.output
    );
    let mut balances = Balances::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let fields: Vec<&str> = line
            .strip_prefix('"')
            .and_then(|l| l.strip_suffix('"'))
            .unwrap_or_else(|| panic!("unexpected hledger bal line {line:?}"))
            .split(r#"",""#)
            .collect();
        let [account, currency, number] = fields[..] else {
            panic!("unexpected hledger bal line {line:?}");
        };
        add(&mut balances, account, currency, number);
    }
    balances
}

fn add(balances: &mut Balances, account: &str, currency: &str, number: &str) {
    let code =
        Currency::parse(currency).unwrap_or_else(|| panic!("unexpected currency {currency:?}"));
    let minor = parse_major(number, code.exponent());
    if minor != 0 {
        let slot = balances
            .entry((account.to_owned(), currency.to_owned()))
            .or_insert(0);
        *slot += minor;
        if *slot == 0 {
            balances.remove(&(account.to_owned(), currency.to_owned()));
        }
    }
}

/// A decimal in major units (`-123.45`, `7000`, `0.001`, `1.5`) as an exact count of minor
/// units at `exponent`; panics on anything else, including digits finer than the minor unit
/// that are not zero.
pub fn parse_major(number: &str, exponent: u8) -> i128 {
    let (negative, digits) = match number.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let all_digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    assert!(
        !whole.is_empty() && all_digits(whole) && all_digits(fraction),
        "not a decimal number: {number:?}"
    );
    let exponent = usize::from(exponent);
    let (kept, finer) = fraction.split_at(fraction.len().min(exponent));
    assert!(
        finer.bytes().all(|b| b == b'0'),
        "{number:?} is finer than the minor unit (exponent {exponent})"
    );
    let text = format!("{whole}{kept:0<exponent$}");
    let magnitude: i128 = text
        .parse()
        .unwrap_or_else(|e| panic!("{number:?} is out of range: {e}"));
    if negative { -magnitude } else { magnitude }
}
