//! Integer money: [`Money`] is a signed count of minor units (`i64`), [`Currency`] an ISO 4217
//! alphabetic code. No floating point, no implicit conversions; every operation is checked.
//! [`ACTIVE_CURRENCIES`] is the one table of codes a loan can be made in, with the exponent
//! that converts minor units to major units.
//!
//! On the wire money is a decimal string (`"12345"`), never a JSON number, so no client's float
//! parser can round it.

use std::fmt;

use serde::{Serialize, Serializer};

use crate::ledger::LedgerError;

/// An amount in the currency's minor unit (cents for USD). May be negative in balances; amounts
/// on journal lines are always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(i64);

/// Why a wire amount was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MoneyParseError {
    /// Not `^(0|[1-9][0-9]{0,18})$`.
    Format,
    /// Nineteen digits above `i64::MAX`.
    OutOfRange,
}

impl Money {
    /// Zero minor units.
    pub const ZERO: Money = Money(0);

    /// Wraps a count of minor units.
    pub const fn from_minor(minor: i64) -> Self {
        Money(minor)
    }

    /// The count of minor units.
    pub const fn minor(self) -> i64 {
        self.0
    }

    /// Parses the wire form `^(0|[1-9][0-9]{0,18})$` that must also fit in `i64`.
    pub fn parse_wire(s: &str) -> Result<Self, MoneyParseError> {
        let bytes = s.as_bytes();
        let well_formed = !bytes.is_empty()
            && bytes.len() <= 19
            && bytes.iter().all(u8::is_ascii_digit)
            && (bytes[0] != b'0' || bytes.len() == 1);
        if !well_formed {
            return Err(MoneyParseError::Format);
        }
        s.parse::<i64>()
            .map(Money)
            .map_err(|_| MoneyParseError::OutOfRange)
    }

    /// `self + other`, or [`LedgerError::Overflow`].
    pub fn checked_add(self, other: Money) -> Result<Money, LedgerError> {
        self.0
            .checked_add(other.0)
            .map(Money)
            .ok_or(LedgerError::Overflow)
    }

    /// `self - other`, or [`LedgerError::Overflow`].
    pub fn checked_sub(self, other: Money) -> Result<Money, LedgerError> {
        self.0
            .checked_sub(other.0)
            .map(Money)
            .ok_or(LedgerError::Overflow)
    }

    /// True for strictly positive amounts.
    pub const fn is_positive(self) -> bool {
        self.0 > 0
    }

    /// True for negative amounts.
    pub const fn is_negative(self) -> bool {
        self.0 < 0
    }

    /// The smaller of two amounts.
    #[must_use]
    pub fn min(self, other: Money) -> Money {
        Money(self.0.min(other.0))
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(&self.0)
    }
}

/// An ISO 4217 alphabetic currency code: exactly three ASCII capitals.
///
/// New input is parsed with [`Currency::parse_wire`], which also requires an active code of
/// [`ACTIVE_CURRENCIES`]; [`Currency::parse`] only checks the shape, for values already stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

/// Why a wire currency code was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CurrencyParseError {
    /// Not `^[A-Z]{3}$`.
    Format,
    /// Well-formed, but not an active ISO 4217 code a loan can be made in.
    Unknown,
}

/// THE table of currencies a loan can be made in: every active code of ISO 4217 List One
/// (as published on 2026-01-01) with its minor-unit exponent, sorted by code.
///
/// Left out on purpose: precious metals (XAU, XAG, XPT, XPD), bond-market and accounting units
/// (XBA, XBB, XBC, XBD, XDR, XSU, XUA, XAD), and the testing and no-currency codes (XTS, XXX).
/// Withdrawn codes are absent too, e.g. ANG (replaced by XCG in 2025), BGN (Bulgaria joined
/// the euro on 2026-01-01), HRK, SLL and ZWL. Funds codes (BOV, CHE, CHW, CLF, COU, MXV, USN,
/// UYI, UYW) are loan-denominating units and stay.
#[rustfmt::skip]
pub const ACTIVE_CURRENCIES: &[([u8; 3], u8)] = &[
    (*b"AED", 2), (*b"AFN", 2), (*b"ALL", 2), (*b"AMD", 2), (*b"AOA", 2), (*b"ARS", 2),
    (*b"AUD", 2), (*b"AWG", 2), (*b"AZN", 2),
    (*b"BAM", 2), (*b"BBD", 2), (*b"BDT", 2), (*b"BHD", 3), (*b"BIF", 0), (*b"BMD", 2),
    (*b"BND", 2), (*b"BOB", 2), (*b"BOV", 2), (*b"BRL", 2), (*b"BSD", 2), (*b"BTN", 2),
    (*b"BWP", 2), (*b"BYN", 2), (*b"BZD", 2),
    (*b"CAD", 2), (*b"CDF", 2), (*b"CHE", 2), (*b"CHF", 2), (*b"CHW", 2), (*b"CLF", 4),
    (*b"CLP", 0), (*b"CNY", 2), (*b"COP", 2), (*b"COU", 2), (*b"CRC", 2), (*b"CUP", 2),
    (*b"CVE", 2), (*b"CZK", 2),
    (*b"DJF", 0), (*b"DKK", 2), (*b"DOP", 2), (*b"DZD", 2),
    (*b"EGP", 2), (*b"ERN", 2), (*b"ETB", 2), (*b"EUR", 2),
    (*b"FJD", 2), (*b"FKP", 2),
    (*b"GBP", 2), (*b"GEL", 2), (*b"GHS", 2), (*b"GIP", 2), (*b"GMD", 2), (*b"GNF", 0),
    (*b"GTQ", 2), (*b"GYD", 2),
    (*b"HKD", 2), (*b"HNL", 2), (*b"HTG", 2), (*b"HUF", 2),
    (*b"IDR", 2), (*b"ILS", 2), (*b"INR", 2), (*b"IQD", 3), (*b"IRR", 2), (*b"ISK", 0),
    (*b"JMD", 2), (*b"JOD", 3), (*b"JPY", 0),
    (*b"KES", 2), (*b"KGS", 2), (*b"KHR", 2), (*b"KMF", 0), (*b"KPW", 2), (*b"KRW", 0),
    (*b"KWD", 3), (*b"KYD", 2), (*b"KZT", 2),
    (*b"LAK", 2), (*b"LBP", 2), (*b"LKR", 2), (*b"LRD", 2), (*b"LSL", 2), (*b"LYD", 3),
    (*b"MAD", 2), (*b"MDL", 2), (*b"MGA", 2), (*b"MKD", 2), (*b"MMK", 2), (*b"MNT", 2),
    (*b"MOP", 2), (*b"MRU", 2), (*b"MUR", 2), (*b"MVR", 2), (*b"MWK", 2), (*b"MXN", 2),
    (*b"MXV", 2), (*b"MYR", 2), (*b"MZN", 2),
    (*b"NAD", 2), (*b"NGN", 2), (*b"NIO", 2), (*b"NOK", 2), (*b"NPR", 2), (*b"NZD", 2),
    (*b"OMR", 3),
    (*b"PAB", 2), (*b"PEN", 2), (*b"PGK", 2), (*b"PHP", 2), (*b"PKR", 2), (*b"PLN", 2),
    (*b"PYG", 0),
    (*b"QAR", 2),
    (*b"RON", 2), (*b"RSD", 2), (*b"RUB", 2), (*b"RWF", 0),
    (*b"SAR", 2), (*b"SBD", 2), (*b"SCR", 2), (*b"SDG", 2), (*b"SEK", 2), (*b"SGD", 2),
    (*b"SHP", 2), (*b"SLE", 2), (*b"SOS", 2), (*b"SRD", 2), (*b"SSP", 2), (*b"STN", 2),
    (*b"SVC", 2), (*b"SYP", 2), (*b"SZL", 2),
    (*b"THB", 2), (*b"TJS", 2), (*b"TMT", 2), (*b"TND", 3), (*b"TOP", 2), (*b"TRY", 2),
    (*b"TTD", 2), (*b"TWD", 2), (*b"TZS", 2),
    (*b"UAH", 2), (*b"UGX", 0), (*b"USD", 2), (*b"USN", 2), (*b"UYI", 0), (*b"UYU", 2),
    (*b"UYW", 4), (*b"UZS", 2),
    (*b"VED", 2), (*b"VES", 2), (*b"VND", 0), (*b"VUV", 0),
    (*b"WST", 2),
    (*b"XAF", 0), (*b"XCD", 2), (*b"XCG", 2), (*b"XOF", 0), (*b"XPF", 0),
    (*b"YER", 2),
    (*b"ZAR", 2), (*b"ZMW", 2), (*b"ZWG", 2),
];

/// The exponent [`Currency::exponent`] reports for a code outside [`ACTIVE_CURRENCIES`] (only a
/// row stored before codes were checked can hold one): the most common ISO 4217 exponent.
pub const FALLBACK_EXPONENT: u8 = 2;

impl Currency {
    /// Parses client input: `^[A-Z]{3}$` ([`CurrencyParseError::Format`]) naming an active
    /// code of [`ACTIVE_CURRENCIES`] ([`CurrencyParseError::Unknown`]).
    pub fn parse_wire(s: &str) -> Result<Self, CurrencyParseError> {
        let currency = Currency::parse(s).ok_or(CurrencyParseError::Format)?;
        if currency.is_active() {
            Ok(currency)
        } else {
            Err(CurrencyParseError::Unknown)
        }
    }

    /// Parses `^[A-Z]{3}$` without consulting the table: for values read back from storage,
    /// which must keep reading even if they were written before codes were checked. Client
    /// input goes through [`Currency::parse_wire`].
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_uppercase)).then(|| Currency([b[0], b[1], b[2]]))
    }

    fn entry(self) -> Option<u8> {
        ACTIVE_CURRENCIES
            .binary_search_by(|(code, _)| code.cmp(&self.0))
            .ok()
            .map(|i| ACTIVE_CURRENCIES[i].1)
    }

    /// True for a code of [`ACTIVE_CURRENCIES`].
    pub fn is_active(self) -> bool {
        self.entry().is_some()
    }

    /// The ISO 4217 minor-unit exponent: one major unit is `10^exponent` minor units (USD 2,
    /// JPY 0, BHD 3, CLF 4). [`FALLBACK_EXPONENT`] for a stored code outside the table.
    pub fn exponent(self) -> u8 {
        self.entry().unwrap_or(FALLBACK_EXPONENT)
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        // Constructed only from ASCII capitals, so this is always valid UTF-8.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Currency {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_amounts_follow_the_contract_pattern() {
        assert_eq!(Money::parse_wire("0"), Ok(Money(0)));
        assert_eq!(Money::parse_wire("12345"), Ok(Money(12345)));
        assert_eq!(
            Money::parse_wire("9223372036854775807"),
            Ok(Money(i64::MAX))
        );
        assert_eq!(
            Money::parse_wire("9223372036854775808"),
            Err(MoneyParseError::OutOfRange)
        );
        assert_eq!(
            Money::parse_wire("9999999999999999999"),
            Err(MoneyParseError::OutOfRange)
        );
        for bad in [
            "",
            "01",
            "-1",
            "+1",
            "1.0",
            "1e3",
            " 1",
            "10000000000000000000",
            "１",
        ] {
            assert_eq!(
                Money::parse_wire(bad),
                Err(MoneyParseError::Format),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn currency_codes_are_three_capitals() {
        assert!(Currency::parse("USD").is_some());
        for bad in ["usd", "US", "USDT", "U$D", "", "ÜSD"] {
            assert!(Currency::parse(bad).is_none(), "{bad:?}");
            assert_eq!(
                Currency::parse_wire(bad),
                Err(CurrencyParseError::Format),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn a_well_formed_code_that_is_not_an_active_currency_is_unknown() {
        for unknown in [
            "ZZZ", "ABC", "XAU", "XAG", "XPT", "XPD", "XBA", "XBB", "XBC", "XBD", "XDR", "XSU",
            "XUA", "XAD", "XTS", "XXX", "ANG", "BGN", "HRK", "SLL", "ZWL", "CUC", "VEF",
        ] {
            assert_eq!(
                Currency::parse_wire(unknown),
                Err(CurrencyParseError::Unknown),
                "{unknown}"
            );
        }
    }

    #[test]
    fn a_stored_code_outside_the_table_still_reads_back() {
        let legacy = Currency::parse("ZZZ").expect("three capitals");
        assert!(!legacy.is_active());
        assert_eq!(legacy.as_str(), "ZZZ");
        assert_eq!(legacy.exponent(), FALLBACK_EXPONENT);
    }

    #[test]
    fn active_currencies_carry_their_iso_exponent() {
        for (code, exponent) in [
            ("USD", 2),
            ("EUR", 2),
            ("GBP", 2),
            ("JPY", 0),
            ("BHD", 3),
            ("KWD", 3),
            ("CLF", 4),
            ("UYW", 4),
            ("ISK", 0),
            ("KRW", 0),
            ("VND", 0),
            ("XAF", 0),
            ("XOF", 0),
            ("XPF", 0),
            ("XCD", 2),
            ("XCG", 2),
            ("ZWG", 2),
        ] {
            let currency = Currency::parse_wire(code).expect(code);
            assert_eq!(currency.exponent(), exponent, "{code}");
        }
    }

    #[test]
    fn the_currency_table_is_sorted_without_duplicates_and_holds_only_capitals() {
        for pair in ACTIVE_CURRENCIES.windows(2) {
            assert!(pair[0].0 < pair[1].0, "{:?} before {:?}", pair[0], pair[1]);
        }
        for (code, exponent) in ACTIVE_CURRENCIES {
            assert!(code.iter().all(u8::is_ascii_uppercase), "{code:?}");
            assert!(*exponent <= 4, "{code:?}");
        }
    }

    #[test]
    fn arithmetic_overflow_is_an_error_not_a_wrap() {
        assert_eq!(
            Money(i64::MAX).checked_add(Money(1)),
            Err(LedgerError::Overflow)
        );
        assert_eq!(
            Money(i64::MIN).checked_sub(Money(1)),
            Err(LedgerError::Overflow)
        );
    }
}
