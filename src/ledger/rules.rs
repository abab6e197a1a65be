//! The business rules of every write, as pure functions: given the command and the facts the
//! writer holds about it (the loan's state, whether an external reference or an accrual date is
//! taken, the entry a reversal names), each returns either a typed refusal ([`LedgerError`]) or a
//! [`Decision`] — the complete, balanced entry and what it changes. [`apply`] then moves the
//! loans' balances and the tenant's GL totals, refusing anything negative or out of range. No
//! I/O, no ids, no clock: the store assigns those and writes what was decided.

use std::collections::{BTreeSet, HashMap};

use time::Date;

use crate::ledger::LedgerError;
use crate::ledger::accrual::daily_interest;
use crate::ledger::allocation::{ALLOCATION_POLICY_VERSION, Allocation, allocate};
use crate::ledger::commands::{AccrualBatch, Disbursement, EventType, Fee, Payment, Reversal};
use crate::ledger::error::ItemProblem;
use crate::ledger::ids::{EntryId, EventId, LoanId};
use crate::ledger::journal::JournalEntry;
use crate::ledger::money::{Currency, Money};
use crate::ledger::posting::{self, AccrualPosting};
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
    /// How the payment was split.
    Payment(Allocation),
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
            entry,
            opens: None,
            outcome,
        }
    }

    /// Every loan the entry touches, in id order.
    pub fn loans(&self) -> BTreeSet<LoanId> {
        self.entry
            .lines()
            .iter()
            .filter_map(|l| l.loan_id)
            .collect()
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

/// POST /v1/disbursements: the first disbursement opens the loan and binds borrower and
/// currency; later ones must match and may not predate it.
pub fn disburse(loan: Option<&LoanState>, d: &Disbursement) -> Result<Decision, LedgerError> {
    let opens = match loan {
        Some(loan) => {
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
            (EventType::PaymentReceived, Outcome::Payment(allocation)),
            p.loan_id,
            p.effective_at,
            description,
            posting::payment(p, &allocation)?,
        )
    })
}

/// POST /v1/fees.
pub fn assess_fee(loan: Option<&LoanState>, f: &Fee) -> Result<Decision, LedgerError> {
    let loan = existing(loan, f.loan_id, None, f.currency, f.effective_at)?;
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
        entry: posting::accrual(currency, &postings)?,
        opens: None,
        outcome: Outcome::Accrual {
            loan_count: a.loans.len(),
            total,
        },
    })
}

/// The entry a reversal names, as the writer found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OriginalEntry {
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

/// POST /v1/reversals: the exact mirror of the original's lines, dated on or after it.
pub fn reverse(original: Option<&OriginalEntry>, r: &Reversal) -> Result<Decision, LedgerError> {
    let original = original.ok_or(LedgerError::EntryNotFound)?;
    if original.event_type == EventType::Reversal {
        return Err(LedgerError::CannotReverseReversal);
    }
    if original.reversed {
        return Err(LedgerError::AlreadyReversed);
    }
    let effective_at = r.effective_at.unwrap_or(original.effective_at);
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
        state.balances.apply(loan_id, line).map_err(refuse)?;
    }
    let mut next_gl = gl.clone();
    let moved_keys = next_gl.post(&decision.entry).map_err(refuse)?;
    *gl = next_gl;
    loans.extend(moved);
    Ok(moved_keys)
}
