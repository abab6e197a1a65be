//! Plain-text accounting export (SPEC §6d): a tenant's journal as a Beancount 3 or hledger
//! journal that the real tools accept, with the period closes as balance assertions.
//!
//! Invariants owned here:
//! - amounts are exact decimals in major units by the currency's ISO 4217 exponent
//!   ([`major_units`]), never floating point; debits are positive, credits negative;
//! - every chart account is declared once, under a readable hierarchical name valid in both
//!   tools ([`account_name`]), with its code as metadata;
//! - one transaction per journal entry, dated `effective_at`, carrying the entry id and event
//!   type; entries may arrive in any date order (both tools sort by date);
//! - each period close becomes balance assertions of every account it stores, placed where
//!   each tool evaluates them after every posting dated on or before `through_date` and before
//!   any later one (see [`Exporter::finish`]);
//! - text from clients (descriptions) can never break the syntax: it is escaped for Beancount
//!   and made single-line and comment-free for hledger;
//! - memory does not grow with the number of entries: [`Exporter::entry`] writes each entry
//!   through at once and keeps only the set of currencies seen.
//!
//! Must not import: anything doing I/O beyond the [`std::io::Write`] it is given (no rusqlite,
//! no actix, no clock).

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};

use crate::ledger::accounts::{Account, Direction};
use crate::ledger::iso_date;
use crate::ledger::money::{Currency, Money};

wire_enum!(
    /// The plain-text accounting format of an export: the `format` query parameter and the
    /// `--format` value.
    #[derive(Hash)]
    Format {
        /// Beancount 3 (`bean-check`).
        Beancount => "beancount",
        /// hledger journal (checked with hledger 1.25).
        Hledger => "hledger",
    }
);

impl Format {
    /// The usual file extension of the format (without the dot).
    pub const fn file_extension(self) -> &'static str {
        match self {
            Format::Beancount => "beancount",
            Format::Hledger => "journal",
        }
    }
}

/// The account's name in both formats: colon-separated components under one of the five
/// Beancount roots (`Assets`, `Liabilities`, `Equity`, `Income`, `Expenses`), each component a
/// capital letter followed by letters, digits and dashes, so hledger infers the same account
/// types Beancount requires.
pub const fn account_name(a: Account) -> &'static str {
    match a {
        Account::Cash => "Assets:Cash:Operating",
        Account::PrincipalReceivable => "Assets:Loans:Principal-Receivable",
        Account::InterestReceivable => "Assets:Loans:Interest-Receivable",
        Account::FeesReceivable => "Assets:Loans:Fees-Receivable",
        Account::DisbursementClearing => "Liabilities:Disbursement-Clearing",
        Account::BorrowerSuspense => "Liabilities:Borrower-Suspense",
        Account::InterestIncome => "Income:Interest",
        Account::FeeIncome => "Income:Fees",
        Account::Recoveries => "Income:Recoveries",
        Account::CreditLosses => "Expenses:Credit-Losses",
    }
}

/// hledger's account type code for the account (`C` cash, `A` asset, `L` liability,
/// `R` revenue, `X` expense).
const fn hledger_account_type(a: Account) -> &'static str {
    match a {
        Account::Cash => "C",
        Account::PrincipalReceivable | Account::InterestReceivable | Account::FeesReceivable => "A",
        Account::DisbursementClearing | Account::BorrowerSuspense => "L",
        Account::InterestIncome | Account::FeeIncome | Account::Recoveries => "R",
        Account::CreditLosses => "X",
    }
}

/// `minor` minor units as an exact decimal in major units with exactly `exponent` fraction
/// digits: `(-12345, 2)` → `"-123.45"`, `(7000, 0)` → `"7000"`, `(1, 3)` → `"0.001"`. Pure
/// digit shuffling on the decimal string, so any `i128` and any exponent are exact.
pub fn major_units(minor: i128, exponent: u8) -> String {
    let digits = minor.unsigned_abs().to_string();
    let exponent = usize::from(exponent);
    let mut out = String::with_capacity(digits.len() + exponent + 3);
    if minor < 0 {
        out.push('-');
    }
    if exponent == 0 {
        out.push_str(&digits);
    } else if digits.len() <= exponent {
        out.push_str("0.");
        out.extend(std::iter::repeat_n('0', exponent - digits.len()));
        out.push_str(&digits);
    } else {
        let (whole, fraction) = digits.split_at(digits.len() - exponent);
        out.push_str(whole);
        out.push('.');
        out.push_str(fraction);
    }
    out
}

/// One line of an exported journal entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportLine {
    /// The GL account.
    pub account: Account,
    /// Debit or credit.
    pub direction: Direction,
    /// The line's amount in minor units (positive, as on every journal line).
    pub amount: Money,
    /// The line's currency.
    pub currency: Currency,
}

/// One journal entry to export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportEntry {
    /// The journal entry id (lowercase UUID).
    pub entry_id: String,
    /// The entry's event type (`disbursement`, `payment_received`, ...).
    pub event_type: String,
    /// The accounting date the transaction is dated.
    pub effective_at: time::Date,
    /// When the service committed the entry (RFC 3339 UTC).
    pub posted_at: String,
    /// The entry's description (client text for adjustments; escaped on output).
    pub description: String,
    /// The entry's lines, in sequence order.
    pub lines: Vec<ExportLine>,
}

/// A period close: the trial balance it stored, exported as balance assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClosedPeriod {
    /// The period close id.
    pub period_close_id: String,
    /// The last closed day.
    pub through_date: time::Date,
    /// Per currency, each account's balance as of `through_date` in minor units, on the
    /// account's NORMAL side (as the trial balance stores it; may be negative).
    pub balances: Vec<(Currency, Vec<(Account, i128)>)>,
}

/// Writes one export: [`Exporter::new`] (header and account declarations), then
/// [`Exporter::entry`] once per journal entry in any order, then [`Exporter::finish`] (period
/// close assertions and commodity declarations).
pub struct Exporter<W: Write> {
    out: W,
    format: Format,
    /// Reused for every entry, so formatting allocates once per export, not per entry.
    buf: String,
    /// Currencies seen so far (bounded by the ISO 4217 list, not by the entry count).
    currencies: BTreeSet<Currency>,
}

/// Column the account names are padded to on posting lines (the longest name is 33 long).
const ACCOUNT_WIDTH: usize = 36;
/// Column the amounts are right-aligned to (an `i64` in major units with its sign fits).
const AMOUNT_WIDTH: usize = 22;

impl<W: Write> Exporter<W> {
    /// Starts an export for `tenant`: writes the header comment, the format's options and a
    /// declaration of every chart account (Beancount `open` dated 1970-01-01 with `code` and
    /// `name` metadata; hledger `account` directives with `code`, `type` and `name` tags).
    pub fn new(out: W, format: Format, tenant: &str) -> io::Result<Self> {
        let mut exporter = Exporter {
            out,
            format,
            buf: String::with_capacity(1024),
            currencies: BTreeSet::new(),
        };
        let tenant = single_line(tenant);
        let b = &mut exporter.buf;
        let _ = writeln!(
            b,
            "; hpts journal export ({}) for tenant {tenant}",
            format.as_str()
        );
        b.push_str(
            "; One transaction per journal entry, dated effective_at; amounts in major units by\n\
             ; the currency's ISO 4217 exponent, debits positive, credits negative. Each period\n\
             ; close is a set of balance assertions of every account, as of its through_date.\n\n",
        );
        match format {
            Format::Beancount => {
                let _ = writeln!(
                    b,
                    "option \"title\" {}\n",
                    beancount_string(&format!("hpts tenant {tenant}"))
                );
                for account in Account::ALL {
                    let _ = writeln!(
                        b,
                        "1970-01-01 open {}\n  code: \"{}\"\n  name: {}",
                        account_name(account),
                        account.code(),
                        beancount_string(account.name())
                    );
                }
            }
            Format::Hledger => {
                // Amounts never carry digit-group marks, so `.` is always the decimal mark.
                b.push_str("decimal-mark .\n\n");
                for account in Account::ALL {
                    let _ = writeln!(
                        b,
                        "account {}  ; code: {}, type: {}, name: {}",
                        account_name(account),
                        account.code(),
                        hledger_account_type(account),
                        hledger_tag_value(account.name())
                    );
                }
            }
        }
        b.push('\n');
        exporter.flush_buf()?;
        Ok(exporter)
    }

    /// Writes one journal entry as one transaction.
    pub fn entry(&mut self, e: &ExportEntry) -> io::Result<()> {
        let date = iso_date(e.effective_at);
        let b = &mut self.buf;
        match self.format {
            Format::Beancount => {
                let _ = writeln!(
                    b,
                    "{date} * {}\n  entry_id: {}\n  event_type: {}\n  posted_at: {}",
                    beancount_string(&e.description),
                    beancount_string(&e.entry_id),
                    beancount_string(&e.event_type),
                    beancount_string(&e.posted_at)
                );
            }
            Format::Hledger => {
                // The entry id is the transaction code, so a description starting with `(`
                // can never be taken for one.
                let _ = writeln!(
                    b,
                    "{date} * ({}) {}\n    ; entry_id: {}\n    ; event_type: {}\n    ; posted_at: {}",
                    hledger_code(&e.entry_id),
                    hledger_description(&e.description),
                    hledger_tag_value(&e.entry_id),
                    hledger_tag_value(&e.event_type),
                    hledger_tag_value(&e.posted_at)
                );
            }
        }
        let indent = match self.format {
            Format::Beancount => "  ",
            Format::Hledger => "    ",
        };
        for line in &e.lines {
            let minor = i128::from(line.amount.minor());
            let signed = match line.direction {
                Direction::Dr => minor,
                Direction::Cr => -minor,
            };
            posting(
                b,
                indent,
                line.account,
                &major_units(signed, line.currency.exponent()),
                line.currency,
                None,
            );
            self.currencies.insert(line.currency);
        }
        b.push('\n');
        self.flush_buf()
    }

    /// Writes the balance assertions of every close and the commodity declarations, flushes,
    /// and hands the writer back.
    ///
    /// Balances are written debit-positive (converted from the normal side the close stores).
    /// - Beancount checks a `balance` directive at the START of its date, against every posting
    ///   dated before it, so each assertion is dated `through_date + 1`. Each carries an explicit
    ///   `~ 0` tolerance: without it Beancount would accept a difference of one minor unit.
    /// - hledger checks assertions in date order and, within a date, in file order. So each
    ///   close is a transaction dated `through_date` at the END of the file, after every entry:
    ///   its zero-amount postings with `= balance` assertions are evaluated after every posting
    ///   dated on or before `through_date` (same-day entries included, since they come earlier
    ///   in the file) and before every posting dated later, wherever those appear in the file.
    ///   `=` asserts one commodity of the account, so each currency is asserted on its own.
    pub fn finish(mut self, closes: &[ClosedPeriod]) -> io::Result<W> {
        for close in closes {
            for (currency, _) in &close.balances {
                self.currencies.insert(*currency);
            }
            let mut balances: Vec<(Currency, Account, i128)> = close
                .balances
                .iter()
                .flat_map(|(currency, accounts)| {
                    accounts
                        .iter()
                        .map(move |&(account, normal)| (*currency, account, normal))
                })
                .collect();
            balances.sort_by_key(|&(currency, account, _)| (currency, account));
            let through = iso_date(close.through_date);
            let b = &mut self.buf;
            match self.format {
                Format::Beancount => {
                    let next_day = close.through_date.next_day().ok_or_else(|| {
                        io::Error::new(
                            io::ErrorKind::InvalidInput,
                            "a period close through the last representable date",
                        )
                    })?;
                    let day = iso_date(next_day);
                    let _ = writeln!(
                        b,
                        "; period close {} through {through}: balances at the start of {day}",
                        single_line(&close.period_close_id)
                    );
                    for (currency, account, normal) in balances {
                        let _ = writeln!(
                            b,
                            "{day} balance {:<ACCOUNT_WIDTH$} {:>AMOUNT_WIDTH$} ~ 0 {currency}\n  period_close_id: {}",
                            account_name(account),
                            major_units(debit_positive(account, normal), currency.exponent()),
                            beancount_string(&close.period_close_id)
                        );
                    }
                }
                Format::Hledger => {
                    let _ = writeln!(
                        b,
                        "{through} * ({}) period close through {through}: balance assertions\n    ; period_close_id: {}",
                        hledger_code(&close.period_close_id),
                        hledger_tag_value(&close.period_close_id)
                    );
                    for (currency, account, normal) in balances {
                        let exponent = currency.exponent();
                        posting(
                            b,
                            "    ",
                            account,
                            &major_units(0, exponent),
                            currency,
                            Some(&major_units(debit_positive(account, normal), exponent)),
                        );
                    }
                }
            }
            b.push('\n');
            self.flush_buf()?;
        }
        let b = &mut self.buf;
        for currency in &self.currencies {
            match self.format {
                Format::Beancount => {
                    let _ = writeln!(b, "1970-01-01 commodity {currency}");
                }
                Format::Hledger => {
                    // `commodity 1.00 USD`; a zero exponent still needs the decimal mark.
                    let exponent = usize::from(currency.exponent());
                    let _ = writeln!(b, "commodity 1.{:0<exponent$} {currency}", "");
                }
            }
        }
        self.flush_buf()?;
        self.out.flush()?;
        Ok(self.out)
    }

    /// Writes the formatted text through and empties the buffer (keeping its capacity).
    fn flush_buf(&mut self) -> io::Result<()> {
        let result = self.out.write_all(self.buf.as_bytes());
        self.buf.clear();
        result
    }
}

/// One posting line: indent, padded account name, right-aligned amount, currency, and for
/// hledger an optional `= balance` assertion.
fn posting(
    b: &mut String,
    indent: &str,
    account: Account,
    amount: &str,
    currency: Currency,
    assertion: Option<&str>,
) {
    let _ = write!(
        b,
        "{indent}{:<ACCOUNT_WIDTH$}  {amount:>AMOUNT_WIDTH$} {currency}",
        account_name(account)
    );
    if let Some(balance) = assertion {
        let _ = write!(b, " = {balance} {currency}");
    }
    b.push('\n');
}

/// A normal-side balance as the debit-positive number both tools report.
fn debit_positive(account: Account, normal: i128) -> i128 {
    match account.normal_side() {
        Direction::Dr => normal,
        Direction::Cr => -normal,
    }
}

/// Line and paragraph separators and other control characters become spaces: no client text
/// can start a new line (a new directive) in either format.
fn single_line(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_control() || c == '\u{2028}' || c == '\u{2029}' {
                ' '
            } else {
                c
            }
        })
        .collect()
}

/// A Beancount string literal: double-quoted, with `\` and `"` backslash-escaped and made
/// single-line (Beancount reads back exactly the text, less its control characters).
fn beancount_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in single_line(s).chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// An hledger transaction description. hledger has no escapes: the description runs to the
/// end of the line or to a `;` (which starts a comment), so it is made single-line, every `;`
/// becomes `,` and surrounding spaces go (hledger would trim them anyway).
fn hledger_description(s: &str) -> String {
    single_line(s).replace(';', ",").trim().to_owned()
}

/// An hledger tag value: single-line and without `,` (which ends a tag value).
fn hledger_tag_value(s: &str) -> String {
    single_line(s).replace(',', " ").trim().to_owned()
}

/// An hledger transaction code (written inside parentheses): single-line, without `)`.
fn hledger_code(s: &str) -> String {
    single_line(s).replace(')', " ").trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::date;

    fn currency(code: &str) -> Currency {
        Currency::parse(code).expect("three capitals")
    }

    fn line(account: Account, direction: Direction, minor: i64, code: &str) -> ExportLine {
        ExportLine {
            account,
            direction,
            amount: Money::from_minor(minor),
            currency: currency(code),
        }
    }

    fn sample_entry(description: &str) -> ExportEntry {
        ExportEntry {
            entry_id: "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b".to_owned(),
            event_type: "manual_adjustment".to_owned(),
            effective_at: date!(2024 - 03 - 31),
            posted_at: "2024-04-01T09:30:00.123456Z".to_owned(),
            description: description.to_owned(),
            lines: vec![
                line(Account::CreditLosses, Direction::Dr, 12_345, "USD"),
                line(Account::Cash, Direction::Cr, 12_345, "USD"),
                line(Account::Cash, Direction::Dr, 7_000, "JPY"),
                line(Account::DisbursementClearing, Direction::Cr, 7_000, "JPY"),
            ],
        }
    }

    fn sample_close() -> ClosedPeriod {
        ClosedPeriod {
            period_close_id: "0190a1b2-0000-7000-8000-000000000001".to_owned(),
            through_date: date!(2024 - 03 - 31),
            balances: vec![(
                currency("BHD"),
                vec![(Account::Cash, -1), (Account::FeeIncome, 2_500)],
            )],
        }
    }

    fn export(format: Format, entries: &[ExportEntry], closes: &[ClosedPeriod]) -> String {
        let mut exporter = Exporter::new(Vec::new(), format, "tenant-1").expect("header");
        for e in entries {
            exporter.entry(e).expect("entry");
        }
        String::from_utf8(exporter.finish(closes).expect("finish")).expect("utf-8")
    }

    #[test]
    fn major_units_of_zero_keep_the_currency_precision() {
        assert_eq!(major_units(0, 0), "0");
        assert_eq!(major_units(0, 2), "0.00");
        assert_eq!(major_units(0, 3), "0.000");
    }

    #[test]
    fn major_units_pad_small_amounts_with_leading_zeros() {
        assert_eq!(major_units(1, 3), "0.001");
        assert_eq!(major_units(5, 2), "0.05");
        assert_eq!(major_units(99, 2), "0.99");
        assert_eq!(major_units(100, 2), "1.00");
        assert_eq!(major_units(7_000, 0), "7000");
        assert_eq!(major_units(1, 4), "0.0001");
    }

    #[test]
    fn major_units_of_negative_amounts_put_the_sign_before_the_leading_zero() {
        assert_eq!(major_units(-12_345, 2), "-123.45");
        assert_eq!(major_units(-1, 3), "-0.001");
        assert_eq!(major_units(-7, 0), "-7");
        assert_eq!(major_units(-5, 2), "-0.05");
    }

    #[test]
    fn major_units_of_the_largest_i64_are_exact_at_every_exponent() {
        let max = i128::from(i64::MAX);
        assert_eq!(major_units(max, 0), "9223372036854775807");
        assert_eq!(major_units(max, 2), "92233720368547758.07");
        assert_eq!(major_units(max, 3), "9223372036854775.807");
        assert_eq!(major_units(max, 4), "922337203685477.5807");
        assert_eq!(
            major_units(i128::from(i64::MIN), 2),
            "-92233720368547758.08"
        );
        assert_eq!(
            major_units(i128::MIN, 0),
            "-170141183460469231731687303715884105728"
        );
    }

    #[test]
    fn account_names_are_valid_in_both_tools_and_distinct() {
        let roots = ["Assets", "Liabilities", "Equity", "Income", "Expenses"];
        let mut seen = BTreeSet::new();
        for account in Account::ALL {
            let name = account_name(account);
            assert!(seen.insert(name), "{name} is used twice");
            let mut parts = name.split(':');
            assert!(roots.contains(&parts.next().expect("root")), "{name}");
            for part in name.split(':') {
                let mut chars = part.chars();
                assert!(
                    chars.next().is_some_and(|c| c.is_ascii_uppercase()),
                    "{name}"
                );
                assert!(
                    chars.all(|c| c.is_ascii_alphanumeric() || c == '-'),
                    "{name}"
                );
            }
        }
        assert_eq!(
            account_name(Account::PrincipalReceivable),
            "Assets:Loans:Principal-Receivable"
        );
    }

    #[test]
    fn formats_parse_from_their_names_only() {
        assert_eq!(Format::parse("beancount"), Some(Format::Beancount));
        assert_eq!(Format::parse("hledger"), Some(Format::Hledger));
        for bad in ["", "Beancount", "ledger", "csv", "hledger "] {
            assert_eq!(Format::parse(bad), None, "{bad:?}");
        }
        for format in [Format::Beancount, Format::Hledger] {
            assert_eq!(Format::parse(format.as_str()), Some(format));
        }
    }

    #[test]
    fn beancount_strings_escape_quotes_and_backslashes_and_stay_on_one_line() {
        assert_eq!(beancount_string("plain"), "\"plain\"");
        assert_eq!(
            beancount_string("say \"hi\" \\ bye"),
            "\"say \\\"hi\\\" \\\\ bye\""
        );
        assert_eq!(beancount_string("a\nb\r\tc\u{2028}d"), "\"a b  c d\"");
        assert_eq!(beancount_string("trailing \\"), "\"trailing \\\\\"");
    }

    #[test]
    fn hledger_descriptions_cannot_open_a_comment_or_a_new_line() {
        assert_eq!(
            hledger_description("fee; reversed\n2024-01-01 * injected"),
            "fee, reversed 2024-01-01 * injected"
        );
        assert_eq!(hledger_description("  (bank) charge  "), "(bank) charge");
        assert_eq!(hledger_tag_value("a,b\nc"), "a b c");
        assert_eq!(hledger_code("id) x"), "id  x");
    }

    #[test]
    fn a_description_with_syntax_characters_stays_inside_its_transaction() {
        let hostile = "x\"; \\\n2024-01-01 open Assets:Evil\n    Assets:Evil  1 USD";
        for format in [Format::Beancount, Format::Hledger] {
            let text = export(format, &[sample_entry(hostile)], &[]);
            assert!(
                !text.lines().any(|l| l.starts_with("2024-01-01")),
                "{format:?}:\n{text}"
            );
            assert!(
                !text
                    .lines()
                    .any(|l| l.trim_start().starts_with("Assets:Evil")),
                "{format:?}:\n{text}"
            );
        }
    }

    #[test]
    fn a_beancount_entry_is_one_transaction_with_signed_major_units_and_metadata() {
        let text = export(Format::Beancount, &[sample_entry("Bank charge")], &[]);
        let expected = "\
2024-03-31 * \"Bank charge\"
  entry_id: \"0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\"
  event_type: \"manual_adjustment\"
  posted_at: \"2024-04-01T09:30:00.123456Z\"
  Expenses:Credit-Losses                                123.45 USD
  Assets:Cash:Operating                                -123.45 USD
  Assets:Cash:Operating                                   7000 JPY
  Liabilities:Disbursement-Clearing                      -7000 JPY
";
        assert!(text.contains(expected), "{text}");
        assert!(
            text.contains("1970-01-01 open Assets:Loans:Principal-Receivable\n  code: \"1100\"")
        );
        assert!(text.contains("1970-01-01 commodity JPY\n1970-01-01 commodity USD\n"));
        assert!(!text.contains("operating_currency"));
    }

    #[test]
    fn an_hledger_entry_carries_its_id_as_code_and_tags() {
        let text = export(Format::Hledger, &[sample_entry("Bank charge")], &[]);
        assert!(
            text.contains(
                "2024-03-31 * (0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b) Bank charge\n    \
                 ; entry_id: 0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b\n    \
                 ; event_type: manual_adjustment\n"
            ),
            "{text}"
        );
        assert!(text.contains("account Assets:Loans:Principal-Receivable  ; code: 1100, type: A"));
        assert!(
            text.contains("commodity 1. JPY\ncommodity 1.00 USD\n"),
            "{text}"
        );
    }

    #[test]
    fn close_balances_are_written_debit_positive_where_each_tool_checks_them() {
        let beancount = export(Format::Beancount, &[], &[sample_close()]);
        assert!(
            beancount.contains("2024-04-01 balance Assets:Cash:Operating"),
            "{beancount}"
        );
        assert!(beancount.contains("-0.001 ~ 0 BHD"), "{beancount}");
        assert!(beancount.contains("-2.500 ~ 0 BHD"), "{beancount}");
        let hledger = export(Format::Hledger, &[], &[sample_close()]);
        assert!(
            hledger.contains("2024-03-31 * (0190a1b2-0000-7000-8000-000000000001) period close")
        );
        assert!(hledger.contains("0.000 BHD = -0.001 BHD\n"), "{hledger}");
        assert!(hledger.contains("0.000 BHD = -2.500 BHD\n"), "{hledger}");
        assert!(hledger.contains("commodity 1.000 BHD\n"), "{hledger}");
    }

    #[test]
    fn the_same_input_always_gives_the_same_bytes() {
        for format in [Format::Beancount, Format::Hledger] {
            let entries = [sample_entry("a"), sample_entry("b")];
            let closes = [sample_close()];
            assert_eq!(
                export(format, &entries, &closes),
                export(format, &entries, &closes)
            );
        }
    }

    #[test]
    fn close_assertions_come_in_currency_then_account_order_whatever_the_input_order() {
        let mut shuffled = sample_close();
        shuffled.balances = vec![
            (
                currency("USD"),
                vec![(Account::FeeIncome, 1), (Account::Cash, 2)],
            ),
            (currency("BHD"), vec![(Account::Cash, 3)]),
        ];
        let mut sorted = shuffled.clone();
        sorted.balances = vec![
            (currency("BHD"), vec![(Account::Cash, 3)]),
            (
                currency("USD"),
                vec![(Account::Cash, 2), (Account::FeeIncome, 1)],
            ),
        ];
        for format in [Format::Beancount, Format::Hledger] {
            assert_eq!(
                export(format, &[], std::slice::from_ref(&shuffled)),
                export(format, &[], std::slice::from_ref(&sorted))
            );
        }
    }

    #[test]
    fn a_failing_writer_reports_its_error() {
        struct Broken;
        impl Write for Broken {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::Error::other("disk full"))
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        assert!(Exporter::new(Broken, Format::Hledger, "t").is_err());
    }
}
