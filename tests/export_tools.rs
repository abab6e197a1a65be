//! The plain-text accounting export (SPEC §6d), checked by the real tools: a ledger built with
//! the pure API only (three currencies of exponents 2, 0 and 3, every event type's entry
//! shape, entries out of date order, two period closes computed here from the entries) is
//! written in both formats, then `bean-check` and `hledger check` must pass, the balances
//! Beancount's Python API and `hledger bal` report must equal the ones computed here, and a
//! wrong assertion must make each tool fail.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use hpts::ledger::accounts::{Account, Direction};
use hpts::ledger::commands::EventType;
use hpts::ledger::export::{ClosedPeriod, ExportEntry, ExportLine, Exporter, Format, account_name};
use hpts::ledger::money::{Currency, Money};
use tempfile::TempDir;
use time::Date;
use time::macros::date;
use uuid::Uuid;

use common::accounting_tools::{
    Balances, assert_tools_accept, bean_check, beancount_balances, hledger_balances, hledger_check,
};

/// First close: through the last day of January.
const CLOSE_1: Date = date!(2024 - 01 - 31);
/// Second close: through the last day of February.
const CLOSE_2: Date = date!(2024 - 02 - 29);

fn currency(code: &str) -> Currency {
    Currency::parse(code).expect("three capitals")
}

/// A journal entry; `lines` is `DIRECTION CODE MINOR CURRENCY` items separated by `/`.
fn entry(n: u128, event: EventType, date: Date, description: &str, lines: &str) -> ExportEntry {
    ExportEntry {
        entry_id: Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 | n).to_string(),
        event_type: event.as_str().to_owned(),
        effective_at: date,
        posted_at: format!("2024-04-01T00:00:{n:02}.000000Z"),
        description: description.to_owned(),
        lines: lines
            .split('/')
            .map(|item| {
                let fields: Vec<&str> = item.split_whitespace().collect();
                let [direction, code, minor, currency_code] = fields[..] else {
                    panic!("bad line {item:?}");
                };
                ExportLine {
                    account: Account::from_code(code).expect("chart account"),
                    direction: Direction::parse(direction).expect("DR or CR"),
                    amount: Money::from_minor(minor.parse().expect("minor units")),
                    currency: currency(currency_code),
                }
            })
            .collect(),
    }
}

/// The ledger's journal entries in POSTING order, which is not date order: the JPY and BHD
/// loans are back-dated after the USD activity, entries dated on a close's `through_date` come
/// after entries dated the day after it, and the ledger ends with its earliest entry. Each is
/// (event type, `effective_at`, description, lines as [`entry`] reads them).
const LEDGER: &[(EventType, Date, &str, &str)] = {
    use EventType as E;
    &[
        // USD loan (exponent 2).
        (
            E::Disbursement,
            date!(2024 - 01 - 05),
            "Disbursement",
            "DR 1100 100000 USD / CR 2000 100000 USD",
        ),
        (
            E::DisbursementSettled,
            date!(2024 - 01 - 06),
            "Disbursement settled",
            "DR 2000 100000 USD / CR 1000 100000 USD",
        ),
        (
            E::FeeAssessed,
            date!(2024 - 01 - 10),
            "Fee origination",
            "DR 1300 2500 USD / CR 4100 2500 USD",
        ),
        // Dated the day after the first close, posted before that close's last-day entries.
        (
            E::PaymentReceived,
            date!(2024 - 02 - 01),
            "Payment",
            "DR 1000 30000 USD / CR 1300 2500 USD / CR 1200 54 USD / CR 1100 27000 USD \
             / CR 2100 446 USD",
        ),
        // An accrual batch of two loans, dated on the first close's through_date.
        (
            E::Accrual,
            CLOSE_1,
            "Accrual 2024-01-31",
            "DR 1200 41 USD / CR 4000 41 USD / DR 1200 13 USD / CR 4000 13 USD",
        ),
        // A return with an NSF fee, its Dr 1300 on a line of its own.
        (
            E::PaymentReturned,
            date!(2024 - 02 - 15),
            "Payment returned: insufficient_funds",
            "CR 1000 30000 USD / DR 1300 2500 USD / DR 1200 54 USD / DR 1100 27000 USD \
             / DR 2100 446 USD / DR 1300 1500 USD / CR 4100 1500 USD",
        ),
        (
            E::FeeWaived,
            date!(2024 - 02 - 20),
            "Fee waived",
            "DR 4100 1500 USD / CR 1300 1500 USD",
        ),
        // The mirror of the origination fee.
        (
            E::Reversal,
            date!(2024 - 02 - 21),
            "Reversal of fee_assessed: error_correction",
            "DR 4100 2500 USD / CR 1300 2500 USD",
        ),
        (
            E::Chargeoff,
            date!(2024 - 03 - 10),
            "Charge-off: delinquency",
            "DR 5000 100000 USD / CR 1100 100000 USD / DR 4000 54 USD / CR 1200 54 USD",
        ),
        (
            E::Recovery,
            date!(2024 - 03 - 20),
            "Recovery",
            "DR 1000 50000 USD / CR 4200 40000 USD / CR 2100 10000 USD",
        ),
        // JPY loan (exponent 0), back-dated.
        (
            E::Disbursement,
            date!(2024 - 01 - 15),
            "Disbursement",
            "DR 1100 500000 JPY / CR 2000 500000 JPY",
        ),
        (
            E::DisbursementSettled,
            date!(2024 - 01 - 16),
            "Disbursement settled",
            "DR 2000 500000 JPY / CR 1000 500000 JPY",
        ),
        (
            E::PaymentReceived,
            date!(2024 - 02 - 28),
            "Payment",
            "DR 1000 10000 JPY / CR 1200 137 JPY / CR 1100 9863 JPY",
        ),
        // Dated the day after the second close.
        (
            E::Reversal,
            date!(2024 - 03 - 01),
            "Reversal of payment_received: duplicate",
            "CR 1000 10000 JPY / DR 1200 137 JPY / DR 1100 9863 JPY",
        ),
        // BHD loan (exponent 3).
        (
            E::Disbursement,
            date!(2024 - 01 - 20),
            "Disbursement",
            "DR 1100 250000 BHD / CR 2000 250000 BHD",
        ),
        (
            E::PaymentReceived,
            date!(2024 - 02 - 01),
            "Payment",
            "DR 1000 100001 BHD / CR 1300 1 BHD / CR 1100 100000 BHD",
        ),
        // Posted after February activity, dated on the first close's through_date.
        (
            E::FeeAssessed,
            CLOSE_1,
            "Fee late",
            "DR 1300 1 BHD / CR 4100 1 BHD",
        ),
        (
            E::Accrual,
            CLOSE_2,
            "Accrual 2024-02-29",
            "DR 1200 137 JPY / CR 4000 137 JPY",
        ),
        // A manual adjustment in three currencies, its description full of syntax.
        (
            E::ManualAdjustment,
            CLOSE_1,
            "Bank charge; \"wire\" fee \\ (ref 7) # 50% | x\n2024-01-01 * next",
            "DR 5000 1234 USD / CR 1000 1234 USD / DR 1000 500 JPY / CR 2000 500 JPY \
             / DR 5000 7 BHD / CR 1000 7 BHD",
        ),
        // The earliest entry, posted last.
        (
            E::Disbursement,
            date!(2024 - 01 - 02),
            "Disbursement",
            "DR 1100 1500 JPY / CR 2000 1500 JPY",
        ),
    ]
};

/// The ledger's entries, numbered in posting order.
fn ledger() -> Vec<ExportEntry> {
    (1..)
        .zip(LEDGER)
        .map(|(n, &(event, date, description, lines))| entry(n, event, date, description, lines))
        .collect()
}

/// Debit-positive balances per (currency, account) of the entries dated on or before
/// `through` (all of them with `None`).
fn balances_through(
    entries: &[ExportEntry],
    through: Option<Date>,
) -> BTreeMap<(Currency, Account), i128> {
    let mut balances = BTreeMap::new();
    for e in entries
        .iter()
        .filter(|e| through.is_none_or(|d| e.effective_at <= d))
    {
        for line in &e.lines {
            let minor = i128::from(line.amount.minor());
            let signed = if line.direction == Direction::Dr {
                minor
            } else {
                -minor
            };
            *balances.entry((line.currency, line.account)).or_insert(0) += signed;
        }
    }
    balances
}

/// The same balances as the tools name and report them (zeros left out).
fn as_tool_balances(balances: &BTreeMap<(Currency, Account), i128>) -> Balances {
    balances
        .iter()
        .filter(|&(_, &minor)| minor != 0)
        .map(|(&(currency, account), &minor)| {
            (
                (account_name(account).to_owned(), currency.to_string()),
                minor,
            )
        })
        .collect()
}

/// The close a trial balance as of `as_of` would store, labelled as a close through
/// `through`: every chart account in every currency of the ledger, on its normal side.
fn close(n: u128, through: Date, as_of: Date, entries: &[ExportEntry]) -> ClosedPeriod {
    let currencies: BTreeSet<Currency> = entries
        .iter()
        .flat_map(|e| e.lines.iter().map(|l| l.currency))
        .collect();
    let balances = balances_through(entries, Some(as_of));
    ClosedPeriod {
        period_close_id: Uuid::from_u128(0x0190_0000_0000_7000_9000_0000_0000_0000 | n).to_string(),
        through_date: through,
        balances: currencies
            .into_iter()
            .map(|currency| {
                let accounts = Account::ALL
                    .into_iter()
                    .map(|account| {
                        let debit = balances.get(&(currency, account)).copied().unwrap_or(0);
                        let normal = if account.normal_side() == Direction::Dr {
                            debit
                        } else {
                            -debit
                        };
                        (account, normal)
                    })
                    .collect();
                (currency, accounts)
            })
            .collect(),
    }
}

/// The two closes of the ledger, each as of its own `through_date`.
fn period_closes(entries: &[ExportEntry]) -> Vec<ClosedPeriod> {
    vec![
        close(1, CLOSE_1, CLOSE_1, entries),
        close(2, CLOSE_2, CLOSE_2, entries),
    ]
}

/// Writes the export in both formats; returns the Beancount and the hledger file.
fn write_exports(
    dir: &TempDir,
    entries: &[ExportEntry],
    closes: &[ClosedPeriod],
) -> (PathBuf, PathBuf) {
    let write = |format: Format, name: &str| -> PathBuf {
        let path = dir.path().join(name);
        let file = std::io::BufWriter::new(std::fs::File::create(&path).expect("create"));
        let mut exporter =
            Exporter::new(file, format, "0190aaaa-0000-7000-8000-00000000000t").expect("header");
        for e in entries {
            exporter.entry(e).expect("entry");
        }
        exporter
            .finish(closes)
            .expect("finish")
            .into_inner()
            .expect("flush")
            .sync_all()
            .expect("sync");
        path
    };
    (
        write(Format::Beancount, "ledger.beancount"),
        write(Format::Hledger, "ledger.journal"),
    )
}

fn day_after(d: Date) -> Date {
    d.next_day().expect("a later day")
}

/// The (account name, currency) pairs whose balance differs between two closes.
fn wrong_pairs(right: &ClosedPeriod, wrong: &ClosedPeriod) -> Vec<(String, String)> {
    let mut pairs = Vec::new();
    for ((currency, good), (_, bad)) in right.balances.iter().zip(&wrong.balances) {
        for (&(account, g), &(_, b)) in good.iter().zip(bad) {
            if g != b {
                pairs.push((account_name(account).to_owned(), currency.to_string()));
            }
        }
    }
    assert!(!pairs.is_empty(), "the wrong close must differ");
    pairs
}

/// Both tools reject the file because of the close through `through`: bean-check reports
/// exactly the `wrong` (account, currency) assertions failing, hledger (which stops at the
/// first failure) one of them.
fn assert_both_reject(beancount: &Path, hledger: &Path, through: Date, wrong: &[(String, String)]) {
    let run = bean_check(beancount);
    assert!(
        !run.success,
        "bean-check accepted a wrong balance:\n{}",
        run.output
    );
    let failures: Vec<&str> = run
        .output
        .lines()
        .filter(|l| l.contains("Balance failed for "))
        .collect();
    assert_eq!(
        failures.len(),
        wrong.len(),
        "bean-check failed otherwise:\n{}",
        run.output
    );
    let day = hpts::ledger::iso_date(day_after(through));
    for (account, currency_code) in wrong {
        assert!(
            failures.iter().any(|l| l
                .contains(&format!("Balance failed for '{account}': expected "))
                && l.contains(&format!(" {currency_code} != "))),
            "bean-check did not report {account} {currency_code}:\n{}",
            run.output
        );
        assert!(
            run.output.contains(&format!("{day} balance {account} ")),
            "{}",
            run.output
        );
    }
    let run = hledger_check(hledger);
    assert!(
        !run.success,
        "hledger check accepted a wrong balance:\n{}",
        run.output
    );
    assert!(
        run.output.contains("balance assertion")
            && run
                .output
                .contains(&format!("date:       {}", hpts::ledger::iso_date(through)))
            && wrong.iter().any(|(account, currency_code)| {
                run.output.contains(&format!("account:    {account}\n"))
                    && run
                        .output
                        .contains(&format!("commodity:  {currency_code}\n"))
            }),
        "hledger check failed otherwise:\n{}",
        run.output
    );
}

#[test]
fn the_ledger_covers_every_event_type_and_every_exponent() {
    let entries = ledger();
    let types: BTreeSet<&str> = entries.iter().map(|e| e.event_type.as_str()).collect();
    assert_eq!(types, EventType::WIRE.iter().copied().collect());
    let exponents: BTreeSet<u8> = entries
        .iter()
        .flat_map(|e| e.lines.iter().map(|l| l.currency.exponent()))
        .collect();
    assert_eq!(exponents, BTreeSet::from([0, 2, 3]));
    assert!(
        entries
            .windows(2)
            .any(|w| w[0].effective_at > w[1].effective_at),
        "entries must come out of date order"
    );
    for e in &entries {
        for currency_code in ["USD", "JPY", "BHD"] {
            let side = |d: Direction| -> i64 {
                e.lines
                    .iter()
                    .filter(|l| l.direction == d && l.currency.as_str() == currency_code)
                    .map(|l| l.amount.minor())
                    .sum()
            };
            assert_eq!(
                side(Direction::Dr),
                side(Direction::Cr),
                "{} unbalanced in {currency_code}",
                e.entry_id
            );
        }
    }
}

#[test]
fn both_tools_accept_the_export_and_report_the_ledgers_balances() {
    let entries = ledger();
    let closes = period_closes(&entries);
    let dir = TempDir::new().expect("temp dir");
    let (beancount, hledger) = write_exports(&dir, &entries, &closes);
    assert_tools_accept(&beancount, &hledger);

    let everything = as_tool_balances(&balances_through(&entries, None));
    assert!(
        everything.keys().any(|(_, c)| c == "JPY") && everything.keys().any(|(_, c)| c == "BHD")
    );
    assert_eq!(
        beancount_balances(&beancount, None),
        everything,
        "beancount, all entries"
    );
    assert_eq!(
        hledger_balances(&hledger, None),
        everything,
        "hledger, all entries"
    );
    for through in [CLOSE_1, CLOSE_2] {
        let expected = as_tool_balances(&balances_through(&entries, Some(through)));
        assert_ne!(expected, everything);
        let before = Some(day_after(through));
        assert_eq!(
            beancount_balances(&beancount, before),
            expected,
            "beancount through {through}"
        );
        assert_eq!(
            hledger_balances(&hledger, before),
            expected,
            "hledger through {through}"
        );
    }
}

#[test]
fn a_close_balance_off_by_one_minor_unit_fails_in_both_tools() {
    let entries = ledger();
    for currency_code in ["USD", "JPY", "BHD"] {
        let mut closes = period_closes(&entries);
        let (_, accounts) = closes[1]
            .balances
            .iter_mut()
            .find(|(c, _)| c.as_str() == currency_code)
            .expect("currency in the close");
        let (_, cash) = accounts
            .iter_mut()
            .find(|(a, _)| *a == Account::Cash)
            .expect("cash");
        *cash += 1;
        let dir = TempDir::new().expect("temp dir");
        let (beancount, hledger) = write_exports(&dir, &entries, &closes);
        let wrong = [(
            account_name(Account::Cash).to_owned(),
            currency_code.to_owned(),
        )];
        assert_both_reject(&beancount, &hledger, CLOSE_2, &wrong);
    }
}

#[test]
fn a_close_that_counts_the_next_days_entries_fails_in_both_tools() {
    // The entries dated the day after the first close come BEFORE its last-day entries in the
    // file; a close that counted them would pass only if the tools checked in file order.
    let entries = ledger();
    let mut closes = period_closes(&entries);
    closes[0] = close(1, CLOSE_1, day_after(CLOSE_1), &entries);
    let wrong = wrong_pairs(&period_closes(&entries)[0], &closes[0]);
    let dir = TempDir::new().expect("temp dir");
    let (beancount, hledger) = write_exports(&dir, &entries, &closes);
    assert_both_reject(&beancount, &hledger, CLOSE_1, &wrong);
}

#[test]
fn a_close_that_leaves_out_its_last_days_entries_fails_in_both_tools() {
    // The first close's last-day entries (accrual, late fee, adjustment) are posted after later
    // dates; the assertions must count them all, and nothing dated after.
    let entries = ledger();
    let mut closes = period_closes(&entries);
    closes[0] = close(
        1,
        CLOSE_1,
        CLOSE_1.previous_day().expect("a day before"),
        &entries,
    );
    let wrong = wrong_pairs(&period_closes(&entries)[0], &closes[0]);
    let dir = TempDir::new().expect("temp dir");
    let (beancount, hledger) = write_exports(&dir, &entries, &closes);
    assert_both_reject(&beancount, &hledger, CLOSE_1, &wrong);
}
