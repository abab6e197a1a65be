//! Business commands as parsed at the edge: every field is already a domain type, so nothing
//! downstream re-validates formats. Business rules that need ledger state (borrower match,
//! balances) are applied by the posting rules at commit time.

use time::Date;

use crate::ledger::accounts::Direction;
use crate::ledger::accrual::DayCount;
use crate::ledger::ids::{BorrowerId, EntryId, EventId, LoanId, ProgramId};
use crate::ledger::money::{Currency, Money};

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
        /// Disbursed money left the lender's bank account.
        DisbursementSettled => "disbursement_settled",
        /// A received payment came back.
        PaymentReturned => "payment_returned",
        /// An assessed fee forgiven, in whole or part.
        FeeWaived => "fee_waived",
        /// A loan written off as uncollectable.
        Chargeoff => "chargeoff",
        /// Money received on a charged-off loan.
        Recovery => "recovery",
        /// A manual journal entry by the accountant.
        ManualAdjustment => "manual_adjustment",
    }
);

impl EventType {
    /// The wire names the HPTS enum reserves without a write that posts them yet.
    pub const RESERVED: &'static [&'static str] =
        &["payment_allocated", "refinance", "restructure"];
}

wire_enum!(
    /// Why a payment came back.
    ReturnReason {
        /// Not enough money in the account.
        InsufficientFunds => "insufficient_funds",
        /// The account is closed.
        AccountClosed => "account_closed",
        /// No such account.
        NoAccount => "no_account",
        /// The account holder did not authorise the debit.
        Unauthorized => "unauthorized",
        /// Payment stopped.
        Stopped => "stopped",
        /// Anything else.
        Other => "other",
    }
);

wire_enum!(
    /// Why a loan is written off.
    ChargeOffReason {
        /// Long delinquency.
        Delinquency => "delinquency",
        /// Borrower bankruptcy.
        Bankruptcy => "bankruptcy",
        /// Fraud.
        Fraud => "fraud",
        /// Borrower deceased.
        Deceased => "deceased",
        /// Settled for less.
        Settlement => "settlement",
        /// Anything else.
        Other => "other",
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

/// POST /v1/disbursement-settlements.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settlement {
    /// The disbursement that left the bank.
    pub disbursement_event_id: EventId,
    /// Effective date.
    pub effective_at: Date,
    /// The bank account it left, if given.
    pub bank_account_ref: Option<String>,
}

/// POST /v1/payment-returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentReturn {
    /// The payment (or recovery) that came back.
    pub payment_event_id: EventId,
    /// Why.
    pub return_reason: ReturnReason,
    /// The ACH return code (`R01`...), if given.
    pub return_code: Option<String>,
    /// Effective date.
    pub effective_at: Date,
    /// A returned-payment fee assessed with the return.
    pub nsf_fee: Option<Money>,
}

/// POST /v1/fee-waivers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeeWaiver {
    /// The fee forgiven.
    pub fee_event_id: EventId,
    /// How much; the whole waivable amount when absent.
    pub amount: Option<Money>,
    /// Why (1–500 characters).
    pub reason: String,
    /// Effective date.
    pub effective_at: Date,
}

/// POST /v1/charge-offs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChargeOff {
    /// The loan written off.
    pub loan_id: LoanId,
    /// Effective date.
    pub effective_at: Date,
    /// Why.
    pub reason_code: ChargeOffReason,
}

/// One line of a manual adjustment, as the client wrote it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AdjustmentLine {
    /// Four-digit account code (checked against the chart by the rules).
    pub account_code: String,
    /// Debit or credit.
    pub direction: Direction,
    /// Positive amount.
    pub amount: Money,
    /// Currency.
    pub currency: Currency,
}

/// POST /v1/adjustments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Adjustment {
    /// Effective date.
    pub effective_at: Date,
    /// The entry's description (1–500 characters).
    pub description: String,
    /// 2–50 lines, balanced per currency.
    pub lines: Vec<AdjustmentLine>,
}

/// POST /v1/period-closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeriodClose {
    /// The last day closed.
    pub through_date: Date,
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
    /// Settle a disbursement.
    Settle(Settlement),
    /// Return a payment.
    ReturnPayment(PaymentReturn),
    /// Waive a fee.
    WaiveFee(FeeWaiver),
    /// Charge a loan off.
    ChargeOff(ChargeOff),
    /// Post a manual adjustment.
    Adjust(Adjustment),
    /// Close the books through a date (posts no entry).
    ClosePeriod(PeriodClose),
}

impl Command {
    /// The dates the write is dated on, each with the request field it comes from: what the
    /// period lock checks. (A reversal without `effective_at` takes its date from the original,
    /// which the reversal rule dates past the lock itself.)
    pub fn dated_fields(&self) -> Vec<(&'static str, Date)> {
        match self {
            Command::Disburse(d) => vec![("effective_at", d.effective_at)],
            Command::Pay(p) => vec![("effective_at", p.effective_at)],
            Command::AssessFee(f) => vec![("effective_at", f.effective_at)],
            Command::Accrue(a) => vec![("accrual_date", a.accrual_date)],
            Command::Reverse(r) => r
                .effective_at
                .map(|d| ("effective_at", d))
                .into_iter()
                .collect(),
            Command::Settle(s) => vec![("effective_at", s.effective_at)],
            Command::ReturnPayment(r) => vec![("effective_at", r.effective_at)],
            Command::WaiveFee(w) => vec![("effective_at", w.effective_at)],
            Command::ChargeOff(c) => vec![("effective_at", c.effective_at)],
            Command::Adjust(a) => vec![("effective_at", a.effective_at)],
            Command::ClosePeriod(_) => Vec::new(),
        }
    }

    /// The request field an `amount_out_of_range` refusal names: the amount that would push a
    /// balance or total out of the exact `i64` range.
    pub const fn amount_field(&self) -> &'static str {
        match self {
            Command::Disburse(_)
            | Command::Pay(_)
            | Command::AssessFee(_)
            | Command::WaiveFee(_) => "amount_minor",
            Command::Accrue(_) => "loans",
            Command::Reverse(_) => "reverses_entry_id",
            Command::Settle(_) => "disbursement_event_id",
            Command::ReturnPayment(r) if r.nsf_fee.is_some() => "nsf_fee_minor",
            Command::ReturnPayment(_) => "payment_event_id",
            Command::ChargeOff(_) => "loan_id",
            Command::Adjust(_) => "lines",
            Command::ClosePeriod(_) => "through_date",
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
            // Cash, four returned parts and two fee lines; six charge-off lines.
            Command::ReturnPayment(_) => 7,
            Command::ChargeOff(_) => 6,
            Command::Adjust(a) => a.lines.len().max(2),
            Command::Disburse(_)
            | Command::AssessFee(_)
            | Command::Reverse(_)
            | Command::Settle(_)
            | Command::WaiveFee(_)
            | Command::ClosePeriod(_) => 2,
        }
    }
}
