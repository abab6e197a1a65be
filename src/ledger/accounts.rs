//! The chart of accounts (SPEC §8): ten GL accounts, each with a normal side. The same table is
//! seeded into the database by migration and copied per tenant on first use.

use std::fmt;

wire_enum!(
    /// Debit or credit; `"DR"` or `"CR"`, as stored and shown on the wire.
    #[derive(Hash, PartialOrd, Ord)]
    Direction {
        /// Debit.
        Dr => "DR",
        /// Credit.
        Cr => "CR",
    }
);

impl Direction {
    /// The other side.
    #[must_use]
    pub const fn opposite(self) -> Self {
        match self {
            Direction::Dr => Direction::Cr,
            Direction::Cr => Direction::Dr,
        }
    }
}

/// One GL account of the chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Account {
    /// 1000 Cash – operating (payments land here).
    Cash,
    /// 1100 Principal receivable.
    PrincipalReceivable,
    /// 1200 Interest receivable.
    InterestReceivable,
    /// 1300 Fees receivable.
    FeesReceivable,
    /// 2000 Disbursement clearing.
    DisbursementClearing,
    /// 2100 Borrower suspense (unapplied funds).
    BorrowerSuspense,
    /// 4000 Interest income.
    InterestIncome,
    /// 4100 Fee income.
    FeeIncome,
    /// 4200 Recoveries (cash received on charged-off loans).
    Recoveries,
    /// 5000 Credit losses (charge-offs).
    CreditLosses,
}

impl Account {
    /// Every account, in code order.
    pub const ALL: [Account; 10] = [
        Account::Cash,
        Account::PrincipalReceivable,
        Account::InterestReceivable,
        Account::FeesReceivable,
        Account::DisbursementClearing,
        Account::BorrowerSuspense,
        Account::InterestIncome,
        Account::FeeIncome,
        Account::Recoveries,
        Account::CreditLosses,
    ];

    /// The loan control accounts ([`Account::is_loan_control`]), in the order of a loan's first
    /// four figures (principal, interest, fees, suspense).
    pub const LOAN_CONTROL: [Account; 4] = [
        Account::PrincipalReceivable,
        Account::InterestReceivable,
        Account::FeesReceivable,
        Account::BorrowerSuspense,
    ];

    /// The four-digit account code.
    pub const fn code(self) -> &'static str {
        match self {
            Account::Cash => "1000",
            Account::PrincipalReceivable => "1100",
            Account::InterestReceivable => "1200",
            Account::FeesReceivable => "1300",
            Account::DisbursementClearing => "2000",
            Account::BorrowerSuspense => "2100",
            Account::InterestIncome => "4000",
            Account::FeeIncome => "4100",
            Account::Recoveries => "4200",
            Account::CreditLosses => "5000",
        }
    }

    /// The account's display name.
    pub const fn name(self) -> &'static str {
        match self {
            Account::Cash => "Cash – operating",
            Account::PrincipalReceivable => "Principal receivable",
            Account::InterestReceivable => "Interest receivable",
            Account::FeesReceivable => "Fees receivable",
            Account::DisbursementClearing => "Disbursement clearing",
            Account::BorrowerSuspense => "Borrower suspense (unapplied funds)",
            Account::InterestIncome => "Interest income",
            Account::FeeIncome => "Fee income",
            Account::Recoveries => "Recoveries",
            Account::CreditLosses => "Credit losses",
        }
    }

    /// The side on which the account's balance is normally carried.
    pub const fn normal_side(self) -> Direction {
        match self {
            Account::Cash
            | Account::PrincipalReceivable
            | Account::InterestReceivable
            | Account::FeesReceivable
            | Account::CreditLosses => Direction::Dr,
            Account::DisbursementClearing
            | Account::BorrowerSuspense
            | Account::InterestIncome
            | Account::FeeIncome
            | Account::Recoveries => Direction::Cr,
        }
    }

    /// The loan control accounts: they move only with loan lines, so the sum of every loan's
    /// balances always equals them (and a manual adjustment may not touch them).
    pub const fn is_loan_control(self) -> bool {
        matches!(
            self,
            Account::PrincipalReceivable
                | Account::InterestReceivable
                | Account::FeesReceivable
                | Account::BorrowerSuspense
        )
    }

    /// Looks an account up by its code.
    pub fn from_code(code: &str) -> Option<Self> {
        Account::ALL.into_iter().find(|a| a.code() == code)
    }
}

impl fmt::Display for Account {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

wire_enum!(
    /// A balance layer (wire and storage form). Every posting today is `Settled`; the others
    /// exist for holds.
    #[derive(Hash)]
    Layer {
        /// Final postings.
        Settled => "SETTLED",
        /// Pending postings.
        Pending => "PENDING",
        /// Encumbrances (holds).
        Encumbrance => "ENCUMBRANCE",
    }
);
