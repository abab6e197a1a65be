//! The business rules of every write, as pure functions: given the command and the facts the
//! writer holds about it (the loan's state, whether an external reference or an accrual date is
//! taken, the entry a reversal names), each returns either a typed refusal ([`LedgerError`]) or a
//! [`Decision`] — the complete, balanced entry and what it changes. [`apply`] then moves the
//! loans' balances and the tenant's GL totals, refusing anything negative or out of range. No
//! I/O, no ids, no clock: the store assigns those and writes what was decided.

use std::collections::{BTreeSet, HashMap};

use time::Date;

use crate::ledger::LedgerError;
use crate::ledger::accounts::{Account, Direction};
use crate::ledger::accrual::daily_interest;
use crate::ledger::allocation::{ALLOCATION_POLICY_VERSION, Allocation, allocate};
use crate::ledger::commands::{
    AccrualBatch, Adjustment, AdjustmentLine, ChargeOff, Command, Disbursement, EventType, Fee,
    FeeWaiver, Payment, PaymentReturn, PeriodClose, Reversal, Settlement,
};
use crate::ledger::error::{FieldProblem, ItemProblem};
use crate::ledger::ids::{EntryId, EventId, LoanId};
use crate::ledger::journal::JournalEntry;
use crate::ledger::loan::LoanStatus;
use crate::ledger::money::{Currency, Money};
use crate::ledger::posting::{self, AccrualPosting, LoanParty, WrittenOff};
use crate::ledger::state::{GlTotals, LoanState};

/// What a decided write posts, before ids and timestamps are assigned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    /// The business event type.
    pub event_type: EventType,
    /// The loan the event is about, when it is about one.
    pub loan_id: Option<LoanId>,
    /// The entry's effective date.
    pub effective_at: Date,
    /// The entry's description.
    pub description: String,
    /// The payment's external reference.
    pub external_ref: Option<String>,
    /// The allocation policy version (payments).
    pub allocation_policy: Option<&'static str>,
    /// The original business event (reversals); the new event itself otherwise.
    pub correlation_id: Option<EventId>,
    /// The entry this one reverses.
    pub reverses: Option<EntryId>,
    /// For a reversal: the event type of the entry it reverses (what its mirrored lines are
    /// about, for the loan projection).
    pub mirrors: Option<EventType>,
    /// The earlier event this one acts on (the disbursement a settlement settles, the payment a
    /// return returns, the fee a waiver forgives).
    pub subject: Option<EventId>,
    /// The balanced entry.
    pub entry: JournalEntry,
    /// A loan this write opens.
    pub opens: Option<(LoanId, LoanState)>,
    /// What the answer carries beyond ids.
    pub outcome: Outcome,
}

/// The decided facts a write's answer shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A disbursement: nothing beyond ids.
    Disbursement,
    /// A fee: nothing beyond ids.
    Fee,
    /// How the payment was split, and what of it was recovered on a charged-off loan.
    Payment(Allocation, Money),
    /// The disbursement settled, its amount and currency.
    Settlement {
        /// The disbursement.
        disbursement: EventId,
        /// Its amount.
        amount: Money,
        /// Its currency.
        currency: Currency,
    },
    /// The payment returned, the parts that went back, the fee.
    Return {
        /// The payment.
        payment: EventId,
        /// Its allocation, now undone.
        returned: Allocation,
        /// The returned-payment fee ("0" without one).
        nsf_fee: Money,
    },
    /// The fee waived and by how much.
    Waiver {
        /// The fee.
        fee: EventId,
        /// Amount waived.
        waived: Money,
    },
    /// What a charge-off wrote off.
    ChargeOff {
        /// The loan.
        loan: LoanId,
        /// Per balance.
        written_off: WrittenOff,
        /// Their sum.
        total: Money,
    },
    /// A manual adjustment: nothing beyond ids.
    Adjustment,
    /// How many loans accrued and how much in total.
    Accrual {
        /// Loans in the batch.
        loan_count: usize,
        /// Sum of the batch's interest.
        total: Money,
    },
    /// The reversed entry and its business event.
    Reversal {
        /// The entry reversed.
        reverses: EntryId,
        /// Its business event.
        correlation_id: EventId,
    },
}

impl Decision {
    fn for_loan(
        (event_type, outcome): (EventType, Outcome),
        loan_id: LoanId,
        effective_at: Date,
        description: String,
        entry: JournalEntry,
    ) -> Self {
        Decision {
            event_type,
            loan_id: Some(loan_id),
            effective_at,
            description,
            external_ref: None,
            allocation_policy: None,
            correlation_id: None,
            reverses: None,
            mirrors: None,
            subject: None,
            entry,
            opens: None,
            outcome,
        }
    }

    /// What the entry's lines are about, for the loan projection
    /// ([`crate::ledger::loan::effects`]): the event type, or the reversed entry's for a
    /// reversal.
    pub fn kind(&self) -> EventType {
        self.mirrors.unwrap_or(self.event_type)
    }

    /// Every loan the entry touches, in id order.
    pub fn loans(&self) -> BTreeSet<LoanId> {
        self.entry.loan_spans().into_keys().collect()
    }
}

/// The loan a payment or fee names: it must exist, match, and have opened by `date`.
fn existing(
    loan: Option<&LoanState>,
    loan_id: LoanId,
    borrower: Option<crate::ledger::ids::BorrowerId>,
    currency: Currency,
    date: Date,
) -> Result<LoanState, LedgerError> {
    let loan = *loan.ok_or(LedgerError::LoanNotFound(loan_id))?;
    if borrower.is_some_and(|b| b != loan.borrower_id) {
        return Err(LedgerError::BorrowerMismatch(loan_id));
    }
    if loan.currency != currency {
        return Err(LedgerError::CurrencyMismatch(loan_id));
    }
    loan.check_dated(loan_id, date)?;
    Ok(loan)
}

/// Refuses new receivables on a charged-off loan.
fn not_charged_off(loan: &LoanState) -> Result<(), LedgerError> {
    if loan.balances.status() == LoanStatus::ChargedOff {
        Err(LedgerError::LoanChargedOff { field: "loan_id" })
    } else {
        Ok(())
    }
}

/// POST /v1/disbursements: the first disbursement opens the loan and binds borrower and
/// currency; later ones must match, may not predate it, and may not add to a charged-off loan.
pub fn disburse(loan: Option<&LoanState>, d: &Disbursement) -> Result<Decision, LedgerError> {
    let opens = match loan {
        Some(loan) => {
            not_charged_off(loan)?;
            if loan.borrower_id != d.borrower_id {
                return Err(LedgerError::BorrowerMismatch(d.loan_id));
            }
            if loan.currency != d.currency {
                return Err(LedgerError::CurrencyMismatch(d.loan_id));
            }
            loan.check_dated(d.loan_id, d.effective_at)?;
            None
        }
        None => Some((
            d.loan_id,
            LoanState::opened(d.borrower_id, d.currency, d.effective_at),
        )),
    };
    let description = format!(
        "Disbursement of {} {} via {}",
        d.amount,
        d.currency,
        d.method.as_str()
    );
    Ok(Decision {
        opens,
        ..Decision::for_loan(
            (EventType::Disbursement, Outcome::Disbursement),
            d.loan_id,
            d.effective_at,
            description,
            posting::disbursement(d)?,
        )
    })
}

/// POST /v1/payments: the allocation waterfall over what the loan owes now.
pub fn pay(
    loan: Option<&LoanState>,
    p: &Payment,
    external_ref_taken: bool,
) -> Result<Decision, LedgerError> {
    let loan = existing(
        loan,
        p.loan_id,
        Some(p.borrower_id),
        p.currency,
        p.effective_at,
    )?;
    if external_ref_taken {
        return Err(LedgerError::DuplicateExternalRef);
    }
    if loan.balances.status() == LoanStatus::ChargedOff {
        return recover(&loan, p);
    }
    let allocation = allocate(p.amount, &loan.balances);
    let description = format!(
        "Payment of {} {} via {}",
        p.amount,
        p.currency,
        p.source_method.as_str()
    );
    Ok(Decision {
        external_ref: p.external_ref.clone(),
        allocation_policy: Some(ALLOCATION_POLICY_VERSION),
        ..Decision::for_loan(
            (
                EventType::PaymentReceived,
                Outcome::Payment(allocation, Money::ZERO),
            ),
            p.loan_id,
            p.effective_at,
            description,
            posting::payment(p, &allocation)?,
        )
    })
}

/// A payment on a charged-off loan: Cr 4200 up to what is still unrecovered, the rest to
/// suspense.
fn recover(loan: &LoanState, p: &Payment) -> Result<Decision, LedgerError> {
    let unrecovered = loan
        .balances
        .charged_off
        .checked_sub(loan.balances.recovered)?
        .max(Money::ZERO);
    let recovered = if p.amount < unrecovered {
        p.amount
    } else {
        unrecovered
    };
    let suspense = p.amount.checked_sub(recovered)?;
    let allocation = Allocation {
        fees: Money::ZERO,
        interest: Money::ZERO,
        principal: Money::ZERO,
        suspense,
    };
    let description = format!(
        "Recovery of {} {} via {} on a charged-off loan",
        p.amount,
        p.currency,
        p.source_method.as_str()
    );
    Ok(Decision {
        external_ref: p.external_ref.clone(),
        ..Decision::for_loan(
            (EventType::Recovery, Outcome::Payment(allocation, recovered)),
            p.loan_id,
            p.effective_at,
            description,
            posting::recovery(p, recovered, suspense)?,
        )
    })
}

/// POST /v1/fees.
pub fn assess_fee(loan: Option<&LoanState>, f: &Fee) -> Result<Decision, LedgerError> {
    let loan = existing(loan, f.loan_id, None, f.currency, f.effective_at)?;
    not_charged_off(&loan)?;
    let description = format!("{} fee of {} {}", f.fee_type.as_str(), f.amount, f.currency);
    Ok(Decision::for_loan(
        (EventType::FeeAssessed, Outcome::Fee),
        f.loan_id,
        f.effective_at,
        description,
        posting::fee(f, loan.borrower_id)?,
    ))
}

/// What the writer knows about one loan of an accrual batch.
#[derive(Debug, Clone, Copy)]
pub struct AccrualFacts<'a> {
    /// The loan, if it exists in the tenant.
    pub loan: Option<&'a LoanState>,
    /// Whether it is already accrued (and not reversed) for the batch's date.
    pub already_accrued: bool,
}

/// The problems of one accrual item, given the batch's currency so far (set by the first loan
/// found). `None` when the loan does not exist or is in another currency (nothing else is
/// checked then).
fn accrual_item_problems(
    a: &AccrualBatch,
    index: usize,
    fact: &AccrualFacts<'_>,
    batch_currency: &mut Option<Currency>,
    date: &str,
) -> Result<Vec<ItemProblem>, LedgerError> {
    let item = &a.loans[index];
    let mut problems = Vec::new();
    let mut problem = |field: &'static str, code: &'static str, message: String| {
        problems.push(ItemProblem {
            index,
            field,
            code,
            message,
        });
    };
    let Some(loan) = fact.loan else {
        problem(
            "loan_id",
            "loan_not_found",
            format!("loan {} does not exist", item.loan_id),
        );
        return Ok(problems);
    };
    match *batch_currency {
        None => *batch_currency = Some(loan.currency),
        Some(c) if c != loan.currency => {
            problem(
                "loan_id",
                "mixed_currency_batch",
                format!("loan is in {} but the batch is in {c}", loan.currency),
            );
            return Ok(problems);
        }
        Some(_) => {}
    }
    if loan.balances.status() == LoanStatus::ChargedOff {
        problem(
            "loan_id",
            "loan_charged_off",
            "the loan is charged off and accrues no more interest".to_owned(),
        );
    }
    if loan.check_dated(item.loan_id, a.accrual_date).is_err() {
        problem(
            "loan_id",
            "effective_before_loan",
            format!("the loan's first disbursement is dated after {date}"),
        );
    }
    let exposure = loan.balances.total_exposure()?;
    if loan.balances.interest.checked_add(item.interest).is_err()
        || exposure.checked_add(item.interest).is_err()
    {
        problem(
            "interest_minor",
            "amount_out_of_range",
            format!(
                "the loan's interest receivable or total exposure would exceed {}",
                i64::MAX
            ),
        );
    }
    if loan.balances.principal != item.outstanding_principal {
        problem(
            "outstanding_principal_minor",
            "principal_mismatch",
            format!(
                "ledger principal outstanding is {}",
                loan.balances.principal
            ),
        );
    }
    if let Some(bps) = item.annual_rate_bps {
        let expected = daily_interest(item.outstanding_principal, bps, a.convention)?;
        if expected != item.interest {
            problem(
                "interest_minor",
                "interest_mismatch",
                format!("daily interest for this principal, rate and convention is {expected}"),
            );
        }
    }
    if fact.already_accrued {
        problem(
            "loan_id",
            "already_accrued",
            format!("loan is already accrued for {date}"),
        );
    }
    Ok(problems)
}

/// POST /v1/accruals/batch: all-or-nothing, every bad loan reported. `facts[i]` is about
/// `a.loans[i]`.
pub fn accrue(a: &AccrualBatch, facts: &[AccrualFacts<'_>]) -> Result<Decision, LedgerError> {
    let date = crate::ledger::iso_date(a.accrual_date);
    let mut problems = Vec::new();
    let mut postings = Vec::with_capacity(a.loans.len());
    let mut batch_currency: Option<Currency> = None;
    for (index, (item, fact)) in a.loans.iter().zip(facts).enumerate() {
        problems.extend(accrual_item_problems(
            a,
            index,
            fact,
            &mut batch_currency,
            &date,
        )?);
        if let Some(loan) = fact.loan {
            postings.push(AccrualPosting {
                loan_id: item.loan_id,
                borrower_id: loan.borrower_id,
                interest: item.interest,
            });
        }
    }
    if !problems.is_empty() {
        return Err(LedgerError::BatchRejected(problems));
    }
    let currency = batch_currency.ok_or(LedgerError::Unbalanced("an accrual batch needs loans"))?;
    let total = a
        .loans
        .iter()
        .try_fold(Money::ZERO, |t, item| t.checked_add(item.interest))
        .map_err(|_| LedgerError::OutOfRange {
            field: "loans".to_owned(),
            detail: format!("the batch total would exceed {}", i64::MAX),
        })?;
    let description = format!(
        "Interest accrual for {date}: {} loans, {}",
        a.loans.len(),
        a.convention.as_str()
    );
    Ok(Decision {
        event_type: EventType::Accrual,
        loan_id: None,
        effective_at: a.accrual_date,
        description,
        external_ref: None,
        allocation_policy: None,
        correlation_id: None,
        reverses: None,
        mirrors: None,
        subject: None,
        entry: posting::accrual(currency, &postings)?,
        opens: None,
        outcome: Outcome::Accrual {
            loan_count: a.loans.len(),
            total,
        },
    })
}

/// A posted business event and its entry, as the writer found it: the entry a reversal names,
/// the event a settlement, return or waiver acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PostedEvent {
    /// Its business event.
    pub event_id: EventId,
    /// Its event type.
    pub event_type: EventType,
    /// Its effective date.
    pub effective_at: Date,
    /// Its lines, in order.
    pub entry: JournalEntry,
    /// Whether a reversal of it already exists.
    pub reversed: bool,
}

impl PostedEvent {
    /// The loan, borrower and currency of its first loan line.
    fn party(&self) -> Option<LoanParty> {
        self.entry.lines().iter().find_map(|l| {
            Some(LoanParty {
                loan_id: l.loan_id?,
                borrower_id: l.borrower_id?,
                currency: l.currency,
            })
        })
    }

    /// The amount of its first line on `account` and `direction` (zero if none).
    fn amount_on(&self, account: Account, direction: Direction) -> Money {
        self.entry
            .lines()
            .iter()
            .find(|l| l.account == account && l.direction == direction)
            .map_or(Money::ZERO, |l| l.amount)
    }
}

/// What stands on an event now, gathered by the store: later events that depend on it and are
/// themselves in force (not reversed; a recovery also not returned).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Standing {
    /// A disbursement's settlement.
    pub settled: bool,
    /// A payment's (or recovery's) return.
    pub returned: bool,
    /// How much of a fee its waivers forgave.
    pub waived: Money,
    /// A charge-off: a recovery posted after it.
    pub recovered: bool,
}

/// The event a settlement, return or waiver names: it must exist as one of `kinds`, stand
/// unreversed, and not postdate the new entry.
fn subject<'a>(
    event: Option<&'a PostedEvent>,
    kinds: &[EventType],
    effective_at: Date,
) -> Result<(&'a PostedEvent, LoanParty), LedgerError> {
    let event = event
        .filter(|e| kinds.contains(&e.event_type))
        .ok_or(LedgerError::EventNotFound)?;
    if event.reversed {
        return Err(LedgerError::EventReversed);
    }
    if effective_at < event.effective_at {
        return Err(LedgerError::EffectiveBeforeOriginal);
    }
    let party = event.party().ok_or(LedgerError::EventNotFound)?;
    Ok((event, party))
}

/// POST /v1/disbursement-settlements: Dr 2000 / Cr 1000 for the disbursed amount, once.
pub fn settle(
    disbursement: Option<&PostedEvent>,
    standing: Standing,
    s: &Settlement,
) -> Result<Decision, LedgerError> {
    let (event, party) = subject(disbursement, &[EventType::Disbursement], s.effective_at)?;
    if standing.settled {
        return Err(LedgerError::AlreadySettled);
    }
    let amount = event.amount_on(Account::PrincipalReceivable, Direction::Dr);
    let description = match &s.bank_account_ref {
        Some(bank) => format!("Settlement of {amount} {} from {bank}", party.currency),
        None => format!("Settlement of {amount} {}", party.currency),
    };
    Ok(Decision {
        subject: Some(event.event_id),
        ..Decision::for_loan(
            (
                EventType::DisbursementSettled,
                Outcome::Settlement {
                    disbursement: event.event_id,
                    amount,
                    currency: party.currency,
                },
            ),
            party.loan_id,
            s.effective_at,
            description,
            posting::settlement(party, amount)?,
        )
    })
}

/// POST /v1/payment-returns: the payment's lines mirrored (its allocation undone), plus an
/// optional returned-payment fee. An ordinary payment on a loan charged off since cannot come
/// back (its parts were written off); a recovery's return takes back only the recovery.
pub fn return_payment(
    payment: Option<&PostedEvent>,
    standing: Standing,
    loan: Option<&LoanState>,
    r: &PaymentReturn,
) -> Result<Decision, LedgerError> {
    let (event, party) = subject(
        payment,
        &[EventType::PaymentReceived, EventType::Recovery],
        r.effective_at,
    )?;
    if standing.returned {
        return Err(LedgerError::AlreadyReturned);
    }
    let loan = loan.ok_or(LedgerError::LoanNotFound(party.loan_id))?;
    let charged_off = loan.balances.status() == LoanStatus::ChargedOff;
    if charged_off && event.event_type == EventType::PaymentReceived {
        return Err(LedgerError::LoanChargedOff {
            field: "payment_event_id",
        });
    }
    let nsf_fee = r.nsf_fee.unwrap_or(Money::ZERO);
    if charged_off && nsf_fee.is_positive() {
        return Err(LedgerError::LoanChargedOff {
            field: "nsf_fee_minor",
        });
    }
    let returned = Allocation {
        fees: event.amount_on(Account::FeesReceivable, Direction::Cr),
        interest: event.amount_on(Account::InterestReceivable, Direction::Cr),
        principal: event.amount_on(Account::PrincipalReceivable, Direction::Cr),
        suspense: event.amount_on(Account::BorrowerSuspense, Direction::Cr),
    };
    let amount = event.amount_on(Account::Cash, Direction::Dr);
    let description = format!(
        "Return of a payment of {amount} {} ({}{})",
        party.currency,
        r.return_reason.as_str(),
        r.return_code
            .as_deref()
            .map(|c| format!(", {c}"))
            .unwrap_or_default()
    );
    Ok(Decision {
        subject: Some(event.event_id),
        ..Decision::for_loan(
            (
                EventType::PaymentReturned,
                Outcome::Return {
                    payment: event.event_id,
                    returned,
                    nsf_fee,
                },
            ),
            party.loan_id,
            r.effective_at,
            description,
            posting::payment_return(&event.entry, party, nsf_fee)?,
        )
    })
}

/// POST /v1/fee-waivers: Dr 4100 / Cr 1300, at most what is still waivable — the fee less
/// what its waivers forgave, and no more than the loan's fees receivable now.
pub fn waive_fee(
    fee: Option<&PostedEvent>,
    standing: Standing,
    loan: Option<&LoanState>,
    w: &FeeWaiver,
) -> Result<Decision, LedgerError> {
    let (event, party) = subject(fee, &[EventType::FeeAssessed], w.effective_at)?;
    let loan = loan.ok_or(LedgerError::LoanNotFound(party.loan_id))?;
    let assessed = event.amount_on(Account::FeesReceivable, Direction::Dr);
    let left = assessed.checked_sub(standing.waived)?.max(Money::ZERO);
    let waivable = left.min(loan.balances.fees);
    let waived = w.amount.unwrap_or(waivable);
    if !waivable.is_positive() || waived > waivable {
        return Err(LedgerError::WaiverExceedsOutstanding { waivable });
    }
    let description = format!("Waiver of {waived} {}: {}", party.currency, w.reason);
    Ok(Decision {
        subject: Some(event.event_id),
        ..Decision::for_loan(
            (
                EventType::FeeWaived,
                Outcome::Waiver {
                    fee: event.event_id,
                    waived,
                },
            ),
            party.loan_id,
            w.effective_at,
            description,
            posting::fee_waiver(party, waived)?,
        )
    })
}

/// POST /v1/charge-offs: every non-zero principal, interest and fees balance written off.
pub fn charge_off(loan: Option<&LoanState>, c: &ChargeOff) -> Result<Decision, LedgerError> {
    let loan = *loan.ok_or(LedgerError::LoanNotFound(c.loan_id))?;
    loan.check_dated(c.loan_id, c.effective_at)?;
    if loan.balances.status() == LoanStatus::ChargedOff {
        return Err(LedgerError::AlreadyChargedOff);
    }
    let total = loan.balances.total_exposure()?;
    if !total.is_positive() {
        return Err(LedgerError::NothingToChargeOff);
    }
    let written_off = WrittenOff {
        principal: loan.balances.principal,
        interest: loan.balances.interest,
        fees: loan.balances.fees,
    };
    let party = LoanParty {
        loan_id: c.loan_id,
        borrower_id: loan.borrower_id,
        currency: loan.currency,
    };
    Ok(Decision::for_loan(
        (
            EventType::Chargeoff,
            Outcome::ChargeOff {
                loan: c.loan_id,
                written_off,
                total,
            },
        ),
        c.loan_id,
        c.effective_at,
        format!(
            "Charge-off of {total} {} ({})",
            loan.currency,
            c.reason_code.as_str()
        ),
        posting::charge_off(party, written_off)?,
    ))
}

/// POST /v1/adjustments: the accountant's balanced lines on chart accounts other than the loan
/// control accounts, every refused line reported.
pub fn adjust(a: &Adjustment) -> Result<Decision, LedgerError> {
    let mut problems = Vec::new();
    let mut lines = Vec::with_capacity(a.lines.len());
    for (i, line) in a.lines.iter().enumerate() {
        let field = format!("lines[{i}].account_code");
        match Account::from_code(&line.account_code) {
            None => problems.push(FieldProblem {
                field,
                code: "account_not_found",
                message: format!("account {} is not in the chart", line.account_code),
            }),
            Some(account) if account.is_loan_control() => problems.push(FieldProblem {
                field,
                code: "account_not_adjustable",
                message: format!(
                    "account {} moves only with loan events (use reversals and the lifecycle endpoints)",
                    line.account_code
                ),
            }),
            Some(account) => lines.push((account, line)),
        }
    }
    let entry = if problems.is_empty() {
        match posting::adjustment(&lines) {
            Ok(entry) => Some(entry),
            Err(LedgerError::Unbalanced(_)) => {
                problems.push(FieldProblem {
                    field: "lines".to_owned(),
                    code: "entry_unbalanced",
                    message: "debits and credits must be equal in each currency".to_owned(),
                });
                None
            }
            Err(e) => return Err(e.at_field("lines")),
        }
    } else {
        if !balances_per_currency(&a.lines) {
            problems.push(FieldProblem {
                field: "lines".to_owned(),
                code: "entry_unbalanced",
                message: "debits and credits must be equal in each currency".to_owned(),
            });
        }
        None
    };
    let Some(entry) = entry.filter(|_| problems.is_empty()) else {
        return Err(LedgerError::LinesRejected(problems));
    };
    Ok(Decision {
        event_type: EventType::ManualAdjustment,
        loan_id: None,
        effective_at: a.effective_at,
        description: a.description.clone(),
        external_ref: None,
        allocation_policy: None,
        correlation_id: None,
        reverses: None,
        mirrors: None,
        subject: None,
        entry,
        opens: None,
        outcome: Outcome::Adjustment,
    })
}

/// Whether the lines' debits equal their credits in every currency (exact, in `i128`).
fn balances_per_currency(lines: &[AdjustmentLine]) -> bool {
    let mut net: HashMap<Currency, i128> = HashMap::new();
    for l in lines {
        let amount = i128::from(l.amount.minor());
        *net.entry(l.currency).or_default() += if l.direction == Direction::Dr {
            amount
        } else {
            -amount
        };
    }
    net.values().all(|n| *n == 0)
}

/// The period lock (SPEC §6d): no write dated on or before the tenant's lock date.
pub fn check_open(lock: Option<Date>, command: &Command) -> Result<(), LedgerError> {
    let Some(lock) = lock else {
        return Ok(());
    };
    match command
        .dated_fields()
        .into_iter()
        .find(|(_, date)| *date <= lock)
    {
        Some((field, _)) => Err(LedgerError::PeriodClosed { field, lock }),
        None => Ok(()),
    }
}

/// POST /v1/period-closes: a day before `today`, after the current lock date.
pub fn close_period(lock: Option<Date>, today: Date, c: &PeriodClose) -> Result<(), LedgerError> {
    if c.through_date >= today {
        return Err(LedgerError::CloseDateNotPast);
    }
    match lock {
        Some(lock) if c.through_date <= lock => Err(LedgerError::PeriodAlreadyClosed { lock }),
        _ => Ok(()),
    }
}

/// POST /v1/reversals: the exact mirror of the original's lines, dated on or after it, once
/// nothing stands on it any more (its settlement, return, waivers or recoveries are reversed
/// first). Without `effective_at` it takes the original's date, or — when that lies in a
/// closed period — the first open day (the lock date + 1).
pub fn reverse(
    original: Option<&PostedEvent>,
    standing: Standing,
    lock: Option<Date>,
    r: &Reversal,
) -> Result<Decision, LedgerError> {
    let original = original.ok_or(LedgerError::EntryNotFound)?;
    if original.event_type == EventType::Reversal {
        return Err(LedgerError::CannotReverseReversal);
    }
    if original.reversed {
        return Err(LedgerError::AlreadyReversed);
    }
    if standing.returned {
        return Err(LedgerError::EventReturned);
    }
    if standing.settled || standing.waived.is_positive() || standing.recovered {
        return Err(LedgerError::ReversalBlocked);
    }
    let effective_at = match (r.effective_at, lock) {
        (Some(date), _) => date,
        (None, Some(lock)) if original.effective_at <= lock => {
            lock.next_day().ok_or(LedgerError::PeriodClosed {
                field: "effective_at",
                lock,
            })?
        }
        (None, _) => original.effective_at,
    };
    if effective_at < original.effective_at {
        return Err(LedgerError::EffectiveBeforeOriginal);
    }
    let mirror = original.entry.mirrored();
    let loans: BTreeSet<LoanId> = mirror.lines().iter().filter_map(|l| l.loan_id).collect();
    let id = r.reverses_entry_id;
    let description = match &r.reason_description {
        Some(text) => format!("Reversal of {id} ({}): {text}", r.reason_code.as_str()),
        None => format!("Reversal of {id} ({})", r.reason_code.as_str()),
    };
    Ok(Decision {
        event_type: EventType::Reversal,
        loan_id: if loans.len() == 1 {
            loans.first().copied()
        } else {
            None
        },
        effective_at,
        description,
        external_ref: None,
        allocation_policy: None,
        correlation_id: Some(original.event_id),
        reverses: Some(id),
        mirrors: Some(original.event_type),
        subject: None,
        entry: mirror,
        opens: None,
        outcome: Outcome::Reversal {
            reverses: id,
            correlation_id: original.event_id,
        },
    })
}

/// Applies a decision to the loans it touches and to the tenant's GL totals, all or nothing:
/// on a refusal neither `loans` nor `gl` has changed. `loans` holds the current state of every
/// loan the entry touches (the one a disbursement opens is added here). A reversal that would
/// drive a balance negative is [`LedgerError::ReversalBlocked`]; an out-of-range total names
/// `amount_field`. Returns the GL keys the entry moved.
pub fn apply<S: std::hash::BuildHasher>(
    decision: &Decision,
    loans: &mut HashMap<LoanId, LoanState, S>,
    gl: &mut GlTotals,
    amount_field: &str,
) -> Result<Vec<crate::ledger::state::GlKey>, LedgerError> {
    let refuse = |e: LedgerError| match e {
        LedgerError::NegativeBalance(_) if decision.event_type == EventType::Reversal => {
            LedgerError::ReversalBlocked
        }
        LedgerError::Overflow => LedgerError::OutOfRange {
            field: amount_field.to_owned(),
            detail: format!("a loan balance would exceed {}", i64::MAX),
        },
        other => other.at_field(amount_field),
    };
    let mut moved: HashMap<LoanId, LoanState> = HashMap::new();
    if let Some((id, opened)) = decision.opens {
        moved.insert(id, opened);
    }
    for line in decision.entry.lines() {
        let Some(loan_id) = line.loan_id else {
            continue;
        };
        let state = match moved.entry(loan_id) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(
                *loans
                    .get(&loan_id)
                    .ok_or(LedgerError::LoanNotFound(loan_id))?,
            ),
        };
        state
            .balances
            .apply(loan_id, line, decision.kind())
            .map_err(refuse)?;
    }
    // A charged-off loan owes nothing until its charge-off is reversed: an entry that would put
    // principal, interest or fees back on it (the reversal of a payment received before the
    // charge-off) waits for that reversal.
    // Nor can more be recovered than was written off (reviving a returned recovery after
    // others took its place, or after the charge-off itself was reversed).
    for state in moved.values() {
        let owes_again = state.balances.status() == LoanStatus::ChargedOff
            && state.balances.total_exposure()?.is_positive();
        if owes_again || state.balances.recovered > state.balances.charged_off {
            return Err(if decision.event_type == EventType::Reversal {
                LedgerError::ReversalBlocked
            } else {
                LedgerError::LoanChargedOff { field: "loan_id" }
            });
        }
    }
    let mut next_gl = gl.clone();
    let moved_keys = next_gl.post(&decision.entry).map_err(refuse)?;
    *gl = next_gl;
    loans.extend(moved);
    Ok(moved_keys)
}
