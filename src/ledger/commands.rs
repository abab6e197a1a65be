//! Business commands as parsed at the edge: every field is already a domain type, so nothing
//! downstream re-validates formats. Business rules that need ledger state (borrower match,
//! balances) are applied by the posting rules at commit time.

use time::Date;

use crate::ledger::accrual::DayCount;
use crate::ledger::ids::{BorrowerId, EntryId, LoanId, ProgramId};
use crate::ledger::money::{Currency, Money};

macro_rules! wire_enum {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident => $wire:literal),+ $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum $name { $($(#[$vdoc])* $variant),+ }

        impl $name {
            /// Every accepted wire value.
            pub const WIRE: &'static [&'static str] = &[$($wire),+];

            /// Wire form.
            pub const fn as_str(self) -> &'static str {
                match self { $($name::$variant => $wire),+ }
            }

            /// Parses the wire form.
            pub fn parse(s: &str) -> Option<Self> {
                match s { $($wire => Some($name::$variant),)+ _ => None }
            }
        }
    };
}

wire_enum!(
    /// How a disbursement was paid out.
    DisbursementMethod {
        /// ACH transfer.
        Ach => "ach",
        /// Wire transfer.
        Wire => "wire",
        /// Push to card.
        CardPush => "card_push",
        /// Book transfer.
        InternalTransfer => "internal_transfer",
    }
);

wire_enum!(
    /// How a payment arrived.
    PaymentMethod {
        /// ACH debit or credit.
        Ach => "ach",
        /// Wire transfer.
        Wire => "wire",
        /// Card payment.
        Card => "card",
        /// Cash.
        Cash => "cash",
        /// Book transfer.
        InternalTransfer => "internal_transfer",
    }
);

wire_enum!(
    /// Kind of fee.
    FeeType {
        /// Origination fee.
        Origination => "origination",
        /// Late fee.
        Late => "late",
        /// Returned payment fee.
        Nsf => "nsf",
        /// Anything else.
        Other => "other",
    }
);

wire_enum!(
    /// Why an entry is reversed.
    ReasonCode {
        /// The original was wrong.
        ErrorCorrection => "error_correction",
        /// The original was posted twice.
        Duplicate => "duplicate",
        /// Fraud.
        Fraud => "fraud",
        /// The customer asked.
        CustomerRequest => "customer_request",
        /// Anything else.
        Other => "other",
    }
);

wire_enum!(
    /// The business event type of a journal entry.
    EventType {
        /// Money out to the borrower.
        Disbursement => "disbursement",
        /// Money in from the borrower.
        PaymentReceived => "payment_received",
        /// A fee charged.
        FeeAssessed => "fee_assessed",
        /// Daily interest accrued.
        Accrual => "accrual",
        /// A reversal of an earlier entry.
        Reversal => "reversal",
        /// The disbursed money left the lender's bank account.
        DisbursementSettled => "disbursement_settled",
        /// A received payment came back.
        PaymentReturned => "payment_returned",
        /// All or part of a fee forgiven.
        FeeWaived => "fee_waived",
        /// A loan written off.
        Chargeoff => "chargeoff",
        /// Money in on a charged-off loan.
        Recovery => "recovery",
        /// A manual journal entry.
        ManualAdjustment => "manual_adjustment",
    }
);

/// POST /v1/disbursements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Disbursement {
    /// Loan (opened by its first disbursement).
    pub loan_id: LoanId,
    /// Borrower (bound by the first disbursement).
    pub borrower_id: BorrowerId,
    /// Positive amount.
    pub amount: Money,
    /// Currency (bound by the first disbursement).
    pub currency: Currency,
    /// Effective date.
    pub effective_at: Date,
    /// Payout method.
    pub method: DisbursementMethod,
    /// Optional reference of the payout.
    pub destination_ref: Option<String>,
}

/// POST /v1/payments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    /// Loan paid.
    pub loan_id: LoanId,
    /// Must match the loan's borrower.
    pub borrower_id: BorrowerId,
    /// Positive amount.
    pub amount: Money,
    /// Must match the loan's currency.
    pub currency: Currency,
    /// Effective date.
    pub effective_at: Date,
    /// How the money arrived.
    pub source_method: PaymentMethod,
    /// Unique per tenant when present.
    pub external_ref: Option<String>,
}

/// POST /v1/fees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fee {
    /// Loan charged.
    pub loan_id: LoanId,
    /// Kind of fee.
    pub fee_type: FeeType,
    /// Positive amount.
    pub amount: Money,
    /// Must match the loan's currency.
    pub currency: Currency,
    /// Effective date.
    pub effective_at: Date,
}

/// One loan of an accrual batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccrualItem {
    /// Loan accrued.
    pub loan_id: LoanId,
    /// Must equal the ledger's principal outstanding at commit.
    pub outstanding_principal: Money,
    /// Positive interest for the day.
    pub interest: Money,
    /// Optional annual rate; when present `interest` must equal the computed daily interest.
    pub annual_rate_bps: Option<u32>,
}

/// POST /v1/accruals/batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccrualBatch {
    /// Accrual program.
    pub program_id: ProgramId,
    /// The day accrued (also the entry's effective date).
    pub accrual_date: Date,
    /// Day-count convention.
    pub convention: DayCount,
    /// 1–10 000 loans.
    pub loans: Vec<AccrualItem>,
}

/// POST /v1/reversals.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reversal {
    /// Entry to reverse.
    pub reverses_entry_id: EntryId,
    /// Why.
    pub reason_code: ReasonCode,
    /// Free text, up to 500 characters.
    pub reason_description: Option<String>,
    /// Defaults to the original's effective date.
    pub effective_at: Option<Date>,
}

/// Any write the ledger accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// Disburse principal.
    Disburse(Disbursement),
    /// Receive a payment.
    Pay(Payment),
    /// Assess a fee.
    AssessFee(Fee),
    /// Accrue a batch of loans.
    Accrue(AccrualBatch),
    /// Reverse an entry.
    Reverse(Reversal),
}

impl Command {
    /// The event type the command posts.
    pub const fn event_type(&self) -> EventType {
        match self {
            Command::Disburse(_) => EventType::Disbursement,
            Command::Pay(_) => EventType::PaymentReceived,
            Command::AssessFee(_) => EventType::FeeAssessed,
            Command::Accrue(_) => EventType::Accrual,
            Command::Reverse(_) => EventType::Reversal,
        }
    }

    /// The request field an `amount_out_of_range` refusal names: the amount that would push a
    /// balance or total out of the exact `i64` range.
    pub const fn amount_field(&self) -> &'static str {
        match self {
            Command::Disburse(_) | Command::Pay(_) | Command::AssessFee(_) => "amount_minor",
            Command::Accrue(_) => "loans",
            Command::Reverse(_) => "reverses_entry_id",
        }
    }

    /// What the command costs the writer, in journal lines it posts (an accrual batch posts two
    /// per loan). The writer batches by this cost, not by job count, so one tenant's large
    /// batches cannot make a transaction that holds everyone else's single writes for long.
    pub fn cost(&self) -> usize {
        match self {
            Command::Accrue(a) => a.loans.len().saturating_mul(2).max(2),
            // A payment posts up to five lines (cash and four allocation parts).
            Command::Pay(_) => 5,
            Command::Disburse(_) | Command::AssessFee(_) | Command::Reverse(_) => 2,
        }
    }
}
