//! Integer money: [`Money`] is a signed count of minor units (`i64`), [`Currency`] an ISO 4217
//! alphabetic code. No floating point, no implicit conversions; every operation is checked.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses `^[A-Z]{3}$`.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        (b.len() == 3 && b.iter().all(u8::is_ascii_uppercase)).then(|| Currency([b[0], b[1], b[2]]))
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
        for bad in ["usd", "US", "USDT", "U$D", ""] {
            assert!(Currency::parse(bad).is_none(), "{bad:?}");
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
