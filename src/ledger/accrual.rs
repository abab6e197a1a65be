//! Daily interest arithmetic. Integer only: `principal × rate_bps / (10 000 × days_in_year)`,
//! computed in `i128` and rounded half-to-even (banker's rounding) to the minor unit.
//!
//! Conventions: `ACT_365` divides by 365 (ACT/365 Fixed), `ACT_360` and `30_360` by 360. One
//! day of 30/360 interest is 1/360 of the annual amount on every calendar date; see
//! `docs/adr/0006-accrual-arithmetic.md` for why the month-end adjustment is not applied per day.

use crate::ledger::LedgerError;
use crate::ledger::money::Money;

wire_enum!(
    /// Day-count convention.
    DayCount {
        /// Actual/365 fixed.
        Act365 => "ACT_365",
        /// Actual/360.
        Act360 => "ACT_360",
        /// 30/360.
        Thirty360 => "30_360",
    }
);

impl DayCount {
    const fn year_days(self) -> i128 {
        match self {
            DayCount::Act365 => 365,
            DayCount::Act360 | DayCount::Thirty360 => 360,
        }
    }
}

/// Rounds `numerator / denominator` (both non-negative, denominator > 0) half to even.
fn div_round_half_even(numerator: i128, denominator: i128) -> i128 {
    let q = numerator / denominator;
    let r = numerator % denominator;
    match (2 * r).cmp(&denominator) {
        std::cmp::Ordering::Less => q,
        std::cmp::Ordering::Greater => q + 1,
        std::cmp::Ordering::Equal => q + (q & 1),
    }
}

/// One day's interest on `principal` at `annual_rate_bps` basis points.
pub fn daily_interest(
    principal: Money,
    annual_rate_bps: u32,
    convention: DayCount,
) -> Result<Money, LedgerError> {
    if principal.is_negative() {
        return Err(LedgerError::Overflow);
    }
    let numerator = i128::from(principal.minor()) * i128::from(annual_rate_bps);
    let interest = div_round_half_even(numerator, 10_000 * convention.year_days());
    i64::try_from(interest)
        .map(Money::from_minor)
        .map_err(|_| LedgerError::Overflow)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_known_value_matches_hand_arithmetic() {
        // 1,000,000.00 at 12.00% ACT/365: 100000000 * 1200 / 3650000 = 32876.71... -> 32877
        let i = daily_interest(Money::from_minor(100_000_000), 1200, DayCount::Act365).expect("ok");
        assert_eq!(i.minor(), 32_877);
        // ACT/360: 100000000 * 1200 / 3600000 = 33333.33 -> 33333
        let i = daily_interest(Money::from_minor(100_000_000), 1200, DayCount::Act360).expect("ok");
        assert_eq!(i.minor(), 33_333);
    }

    #[test]
    fn exact_halves_round_to_the_even_neighbour() {
        assert_eq!(div_round_half_even(5, 2), 2);
        assert_eq!(div_round_half_even(7, 2), 4);
        assert_eq!(div_round_half_even(9, 2), 4);
        assert_eq!(div_round_half_even(11, 2), 6);
        // 36000 * 5 bps / 3600000 = 0.05 -> 0 ; 180_000_0 * 1 / 3_600_000 = 0.5 -> 0; 5_400_000 -> 1.5 -> 2
        assert_eq!(
            daily_interest(Money::from_minor(1_800_000), 1, DayCount::Act360)
                .expect("ok")
                .minor(),
            0
        );
        assert_eq!(
            daily_interest(Money::from_minor(5_400_000), 1, DayCount::Act360)
                .expect("ok")
                .minor(),
            2
        );
    }

    proptest! {
        #[test]
        fn rounding_error_is_at_most_half_a_minor_unit(principal in 0i64..i64::MAX, bps in 0u32..100_000) {
            for conv in [DayCount::Act365, DayCount::Act360, DayCount::Thirty360] {
                let got = i128::from(daily_interest(Money::from_minor(principal), bps, conv).expect("fits").minor());
                let d = 10_000 * conv.year_days();
                let exact2 = 2 * i128::from(principal) * i128::from(bps);
                // |2*d*got - 2*n| <= d
                prop_assert!((2 * d * got - exact2).abs() <= d);
            }
        }

        #[test]
        fn interest_never_decreases_with_principal(p in 0i64..1_000_000_000_000, bps in 0u32..50_000) {
            let a = daily_interest(Money::from_minor(p), bps, DayCount::Act365).expect("fits");
            let b = daily_interest(Money::from_minor(p + 1), bps, DayCount::Act365).expect("fits");
            prop_assert!(a <= b);
        }
    }
}
