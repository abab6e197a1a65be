//! The payment allocation waterfall (policy version [`ALLOCATION_POLICY_VERSION`]): fees
//! receivable, then interest receivable, then principal, each capped at what the loan owes at
//! commit time; whatever is left goes to borrower suspense. The parts always sum to the payment.

use serde::Serialize;

use crate::ledger::loan::LoanBalances;
use crate::ledger::money::Money;

/// Stored with every payment event so a later policy change can be told apart.
pub const ALLOCATION_POLICY_VERSION: &str = "fees-interest-principal-suspense/v1";

/// How one payment was split. Parts are non-negative and sum to the payment amount.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Allocation {
    /// Applied to fees receivable (1300).
    #[serde(rename = "fees_minor")]
    pub fees: Money,
    /// Applied to interest receivable (1200).
    #[serde(rename = "interest_minor")]
    pub interest: Money,
    /// Applied to principal receivable (1100).
    #[serde(rename = "principal_minor")]
    pub principal: Money,
    /// Left over, held in borrower suspense (2100).
    #[serde(rename = "suspense_minor")]
    pub suspense: Money,
}

/// Splits a non-negative `amount` over what the loan owes.
pub fn allocate(amount: Money, owed: &LoanBalances) -> Allocation {
    let mut left = amount.minor().max(0);
    let mut take = |owed: Money| {
        let part = left.min(owed.minor().max(0));
        left -= part;
        Money::from_minor(part)
    };
    let fees = take(owed.fees);
    let interest = take(owed.interest);
    let principal = take(owed.principal);
    Allocation {
        fees,
        interest,
        principal,
        suspense: Money::from_minor(left),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn owed(fees: i64, interest: i64, principal: i64) -> LoanBalances {
        LoanBalances {
            fees: Money::from_minor(fees),
            interest: Money::from_minor(interest),
            principal: Money::from_minor(principal),
            ..LoanBalances::default()
        }
    }

    #[test]
    fn the_hpts_example_pays_fees_then_interest_then_principal() {
        let a = allocate(Money::from_minor(88_849), &owed(500, 10_000, 1_000_000));
        assert_eq!(
            (
                a.fees.minor(),
                a.interest.minor(),
                a.principal.minor(),
                a.suspense.minor()
            ),
            (500, 10_000, 78_349, 0)
        );
    }

    #[test]
    fn an_overpayment_of_a_repaid_loan_goes_entirely_to_suspense() {
        let a = allocate(Money::from_minor(1_234), &owed(0, 0, 0));
        assert_eq!(a.suspense.minor(), 1_234);
        assert_eq!(a.fees.minor() + a.interest.minor() + a.principal.minor(), 0);
    }

    proptest! {
        #[test]
        fn parts_sum_to_the_payment_and_never_exceed_what_is_owed(
            amount in 0i64..i64::MAX / 4, fees in 0i64..i64::MAX / 4,
            interest in 0i64..i64::MAX / 4, principal in 0i64..i64::MAX / 4,
        ) {
            let a = allocate(Money::from_minor(amount), &owed(fees, interest, principal));
            prop_assert_eq!(a.fees.minor() + a.interest.minor() + a.principal.minor() + a.suspense.minor(), amount);
            prop_assert!(a.fees.minor() <= fees && a.interest.minor() <= interest && a.principal.minor() <= principal);
            prop_assert!(a.suspense.minor() == 0 || (a.fees.minor() == fees && a.interest.minor() == interest && a.principal.minor() == principal));
        }
    }
}
