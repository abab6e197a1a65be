//! Response shapes of the read endpoints (SPEC §7). Money is a decimal string; ids lowercase.
//! Each is the type the handler serialises and derives its `OpenAPI` schema next to its serde
//! shape, so the two cannot drift.

use serde::Serialize;
use serde_json::value::RawValue;
use utoipa::ToSchema;

use crate::http::schema::{AccountCode, CurrencyCode, Metadata, MinorUnits, SignedMinorUnits};
use crate::ledger::accounts::{Direction, Layer};
use crate::ledger::commands::EventType;
use crate::ledger::loan::LoanStatus;

use crate::ledger::ids::{BorrowerId, EntryId, EventId, LoanId};
use crate::ledger::money::{Currency, Money};
use crate::ledger::trial_balance;
use crate::store::readers::PeriodCloseView;
use crate::store::{EntryView, LoanView};

/// `GET /v1/loans/{loan_id}/balance`. Amounts in minor units.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoanBalance {
    /// The loan.
    #[schema(value_type = String, format = "uuid")]
    loan_id: LoanId,
    /// Its borrower.
    #[schema(value_type = String, format = "uuid")]
    borrower_id: BorrowerId,
    /// Its currency.
    #[schema(value_type = CurrencyCode)]
    currency: Currency,
    #[schema(value_type = LoanStatus)]
    status: &'static str,
    /// The date the balances are shown for (`as_of_date`, else today, UTC).
    #[schema(format = Date)]
    as_of_date: String,
    /// Principal receivable (1100).
    #[schema(value_type = MinorUnits)]
    principal_outstanding_minor: Money,
    /// Interest receivable (1200).
    #[schema(value_type = MinorUnits)]
    interest_receivable_minor: Money,
    /// Fees receivable (1300).
    #[schema(value_type = MinorUnits)]
    fees_receivable_minor: Money,
    /// Borrower suspense (2100): paid in beyond what was owed.
    #[schema(value_type = MinorUnits)]
    suspense_minor: Money,
    /// Principal + interest + fees.
    #[schema(value_type = MinorUnits)]
    total_exposure_minor: Money,
    /// Net disbursed (reversed disbursements excluded).
    #[schema(value_type = MinorUnits)]
    disbursed_total_minor: Money,
    /// Net paid in, recoveries included (reversed and returned payments excluded).
    #[schema(value_type = MinorUnits)]
    paid_total_minor: Money,
    /// Total written off by the loan's live charge-off (principal + interest + fees at the
    /// charge-off); `"0"` until a charge-off, and again once it is reversed.
    #[schema(value_type = MinorUnits)]
    charged_off_minor: Money,
    /// Recovered on the charged-off loan (credited to 4200), returned recoveries excluded;
    /// `"0"` until a charge-off.
    #[schema(value_type = MinorUnits)]
    recovered_minor: Money,
    /// `posted_at` of the latest entry counted; `null` when none is.
    #[schema(format = DateTime, required = true)]
    last_activity_at: Option<String>,
}

impl LoanBalance {
    /// Shapes a loan view.
    pub fn new(v: LoanView, as_of_date: String) -> Self {
        LoanBalance {
            total_exposure_minor: v.total_exposure(),
            loan_id: v.loan_id,
            borrower_id: v.borrower_id,
            currency: v.currency,
            status: v.status.as_str(),
            as_of_date,
            principal_outstanding_minor: v.balances.principal,
            interest_receivable_minor: v.balances.interest,
            fees_receivable_minor: v.balances.fees,
            suspense_minor: v.balances.suspense,
            disbursed_total_minor: v.balances.disbursed_total,
            paid_total_minor: v.balances.paid_total,
            charged_off_minor: v.balances.charged_off,
            recovered_minor: v.balances.recovered,
            last_activity_at: v.last_activity_at,
        }
    }
}

/// One journal line.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(as = JournalLine)]
pub struct Line {
    /// Position in the entry, from 1.
    #[schema(minimum = 1)]
    sequence: i64,
    /// GL account.
    #[schema(value_type = AccountCode)]
    account_code: &'static str,
    #[schema(value_type = Direction)]
    direction: &'static str,
    /// Always positive, in minor units.
    #[schema(value_type = MinorUnits)]
    amount_minor: Money,
    /// ISO 4217 code.
    #[schema(value_type = CurrencyCode)]
    currency: Currency,
    #[schema(value_type = Layer)]
    layer: &'static str,
    /// The loan the line belongs to, if any.
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    loan_id: Option<LoanId>,
    /// The loan's borrower, if any.
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    borrower_id: Option<BorrowerId>,
    /// The payment's `external_ref`, if any.
    #[schema(required = true)]
    external_ref: Option<String>,
}

/// `GET /v1/journal-entries/{journal_entry_id}`: one balanced journal entry.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[expect(
    clippy::struct_field_names,
    reason = "wire field names are fixed by the API contract"
)]
pub struct JournalEntry {
    /// The entry.
    #[schema(value_type = String, format = "uuid")]
    journal_entry_id: EntryId,
    #[schema(value_type = EventType)]
    event_type: &'static str,
    /// Effective date, `YYYY-MM-DD`.
    #[schema(format = Date)]
    effective_at: String,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    posted_at: String,
    /// The business event's id (for a reversal: the original's event).
    #[schema(value_type = String, format = "uuid")]
    correlation_id: EventId,
    /// The entry this one reverses, if it is a reversal.
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    reverses_entry_id: Option<EntryId>,
    /// The reversal of this entry, if it was reversed.
    #[schema(value_type = Option<String>, format = "uuid", required = true)]
    reversed_by_entry_id: Option<EntryId>,
    /// Human description composed by the service; for a manual adjustment, the request's
    /// `description`.
    description: String,
    /// The `sub` of the token that posted it.
    #[schema(required = true)]
    actor: Option<String>,
    /// The `metadata` sent with the write, verbatim, or `null`.
    #[schema(value_type = Option<Metadata>, required = true)]
    metadata: Option<Box<RawValue>>,
    /// At least two lines; per currency debits equal credits.
    #[schema(min_items = 2)]
    lines: Vec<Line>,
}

impl From<EntryView> for JournalEntry {
    fn from(v: EntryView) -> Self {
        JournalEntry {
            journal_entry_id: v.journal_entry_id,
            event_type: v.event_type.as_str(),
            effective_at: v.effective_at,
            posted_at: v.posted_at,
            correlation_id: v.correlation_id,
            reverses_entry_id: v.reverses_entry_id,
            reversed_by_entry_id: v.reversed_by_entry_id,
            description: v.description,
            actor: v.actor,
            // Stored as the client sent it (key order kept); returned verbatim.
            metadata: v.metadata.and_then(|m| RawValue::from_string(m).ok()),
            lines: v
                .lines
                .into_iter()
                .map(|l| Line {
                    sequence: l.sequence,
                    account_code: l.line.account.code(),
                    direction: l.line.direction.as_str(),
                    amount_minor: l.line.amount,
                    currency: l.line.currency,
                    layer: l.line.layer.as_str(),
                    loan_id: l.line.loan_id,
                    borrower_id: l.line.borrower_id,
                    external_ref: l.line.external_ref,
                })
                .collect(),
        }
    }
}

/// `GET /v1/accounts/{account_code}/balance`. Amounts in minor units.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AccountBalance {
    /// The GL account (chart of accounts: 1000, 1100, 1200, 1300, 2000, 2100, 4000, 4100,
    /// 4200, 5000).
    #[schema(value_type = AccountCode)]
    pub account_code: &'static str,
    /// Its name.
    #[schema(example = "Principal receivable")]
    pub account_name: &'static str,
    /// The currency asked for.
    #[schema(value_type = CurrencyCode)]
    pub currency: Currency,
    /// The layer asked for.
    #[schema(value_type = Layer)]
    pub layer: &'static str,
    /// The date the balance is shown for (`as_of_date`, else today, UTC).
    #[schema(format = Date)]
    pub as_of_date: String,
    /// Sum of debits.
    #[schema(value_type = MinorUnits)]
    pub dr_balance_minor: Money,
    /// Sum of credits.
    #[schema(value_type = MinorUnits)]
    pub cr_balance_minor: Money,
    /// Balance on the account's normal side; may be negative.
    #[schema(value_type = SignedMinorUnits)]
    pub normal_balance_minor: Money,
}

/// `GET /v1/loans/{loan_id}/journal-entries`: one page, in posting order.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct JournalEntryPage {
    /// Up to `page_size` entries.
    pub items: Vec<JournalEntry>,
    /// Pass as `page_token` (with the same filters) for the next page; `null` on the last.
    #[schema(required = true, min_length = 1)]
    pub next_page_token: Option<String>,
}

/// `GET /v1/period-closes`: the tenant's lock date and its period closes.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodCloseList {
    /// The latest `through_date`: no write may be dated on or before it. `null` if the
    /// tenant never closed a period.
    #[schema(format = Date, required = true, example = "2026-11-30")]
    pub lock_date: Option<String>,
    /// Every close, newest `through_date` first.
    pub items: Vec<PeriodCloseSummary>,
}

/// One period close as listed.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PeriodCloseSummary {
    /// The close.
    #[schema(format = "uuid")]
    pub period_close_id: String,
    /// The last day it closed.
    #[schema(format = Date)]
    pub through_date: String,
    /// Commit timestamp, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    pub closed_at: String,
}

impl From<PeriodCloseView> for PeriodCloseSummary {
    fn from(c: PeriodCloseView) -> Self {
        PeriodCloseSummary {
            period_close_id: c.period_close_id,
            through_date: c.through_date,
            closed_at: c.closed_at,
        }
    }
}

/// `GET /v1/health/live`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Liveness {
    #[schema(inline)]
    status: LiveStatus,
    /// The build's version.
    #[schema(example = "0.1.0")]
    version: &'static str,
    /// The build's git commit (`unknown` outside a checkout).
    git_sha: &'static str,
}

impl Liveness {
    /// The answer of a live process of this build.
    pub fn new(version: &'static str, git_sha: &'static str) -> Self {
        Liveness {
            status: LiveStatus::Ok,
            version,
            git_sha,
        }
    }
}

/// Always `ok`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "each variant is its wire value, described on the enum"
)]
pub enum LiveStatus {
    Ok,
}

/// `GET /v1/health/ready` when ready.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Readiness {
    #[schema(inline)]
    status: ReadyStatus,
}

impl Readiness {
    /// The answer of a ready service.
    pub const READY: Readiness = Readiness {
        status: ReadyStatus::Ready,
    };
}

/// Always `ready`.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "each variant is its wire value, described on the enum"
)]
pub enum ReadyStatus {
    Ready,
}

/// `GET /v1/trial-balance`: one currency's trial balance as of a date. Amounts in minor
/// units.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrialBalance {
    /// The date asked for, else today (UTC): only lines effective on or before it count.
    #[schema(format = Date)]
    as_of_date: String,
    /// The currency asked for.
    #[schema(value_type = CurrencyCode)]
    currency: Currency,
    /// Every account of the chart, in code order, zero balances included.
    #[schema(min_items = 1)]
    accounts: Vec<TrialBalanceAccount>,
    /// Sum of every account's debits.
    #[schema(value_type = MinorUnits)]
    dr_total_minor: String,
    /// Sum of every account's credits.
    #[schema(value_type = MinorUnits)]
    cr_total_minor: String,
    /// Whether `dr_total_minor` equals `cr_total_minor` (always, on a whole ledger).
    balanced: bool,
}

impl TrialBalance {
    /// Shapes a trial balance as of `as_of_date`.
    pub fn new(tb: &trial_balance::TrialBalance, as_of_date: String) -> Self {
        TrialBalance {
            as_of_date,
            currency: tb.currency,
            accounts: tb
                .accounts
                .iter()
                .map(|a| TrialBalanceAccount {
                    account_code: a.account.code(),
                    account_name: a.account.name(),
                    normal_balance: match a.account.normal_side() {
                        Direction::Dr => NormalBalance::Debit,
                        Direction::Cr => NormalBalance::Credit,
                    },
                    dr_total_minor: a.dr.to_string(),
                    cr_total_minor: a.cr.to_string(),
                    balance_minor: a.balance().to_string(),
                })
                .collect(),
            dr_total_minor: tb.dr_total().to_string(),
            cr_total_minor: tb.cr_total().to_string(),
            balanced: tb.balanced(),
        }
    }
}

/// One account of a trial balance.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TrialBalanceAccount {
    /// GL account.
    #[schema(value_type = AccountCode)]
    account_code: &'static str,
    /// Its name.
    #[schema(example = "Principal receivable")]
    account_name: &'static str,
    normal_balance: NormalBalance,
    /// Sum of its debits.
    #[schema(value_type = MinorUnits)]
    dr_total_minor: String,
    /// Sum of its credits.
    #[schema(value_type = MinorUnits)]
    cr_total_minor: String,
    /// Balance on the account's normal side (debits − credits for a debit account, credits
    /// − debits for a credit account); may be negative.
    #[schema(value_type = SignedMinorUnits)]
    balance_minor: String,
}

/// The side on which an account's balance is normally carried.
#[derive(Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "each variant is its wire value, described on the enum"
)]
pub enum NormalBalance {
    Debit,
    Credit,
}

/// `GET /v1/reconciliation/status`: the proof that the caller's ledger is whole, computed on
/// one read snapshot.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationStatus {
    /// The date asked for, else today (UTC).
    #[schema(format = Date)]
    pub as_of_date: String,
    /// Summary of the integrity checks.
    pub ledger_integrity: LedgerIntegrity,
    /// Bank statement matching per bank account (none configured today: empty).
    pub bank_reconciliation: Vec<BankReconciliation>,
    /// GL principal against the loans' principal.
    pub portfolio_rollup: PortfolioRollup,
    /// Every check, in a fixed order: `trial_balance`, `entries_balanced`,
    /// `loan_subledger_matches_gl`, `materialised_balances_match_lines`,
    /// `hash_chain_intact`, `append_only_guard_present`, `closed_periods_unchanged`.
    pub checks: Vec<ReconciliationCheck>,
}

/// Outcome of a check.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
#[allow(
    missing_docs,
    reason = "each variant is its wire value, described on the enum"
)]
pub enum CheckStatus {
    Ok,
    Mismatch,
}

impl From<bool> for CheckStatus {
    fn from(ok: bool) -> Self {
        if ok {
            CheckStatus::Ok
        } else {
            CheckStatus::Mismatch
        }
    }
}

/// Summary of the integrity checks.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LedgerIntegrity {
    /// `ok` when every check holds.
    pub status: CheckStatus,
    /// (account, currency) pairs whose balances disagree somewhere.
    #[schema(minimum = 0)]
    pub mismatched_account_count: usize,
    /// When the checks ran, RFC 3339 UTC with `Z`.
    #[schema(format = DateTime)]
    pub checked_at: String,
}

/// Bank statement matching of one bank account.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BankReconciliation {
    /// The bank account.
    pub bank_account_ref: String,
    /// `ok` when ledger and bank agree.
    pub status: CheckStatus,
    /// Ledger minus bank, in minor units.
    #[schema(value_type = SignedMinorUnits)]
    pub difference_minor: String,
}

/// GL principal (1100) against the sum of the loans' principal.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PortfolioRollup {
    /// `ok` when both sides are equal.
    pub status: CheckStatus,
    /// Net of account 1100, in minor units.
    #[schema(value_type = SignedMinorUnits)]
    pub gl_principal_minor: String,
    /// Sum of every loan's principal outstanding, in minor units.
    #[schema(value_type = SignedMinorUnits)]
    pub sum_of_loan_balances_minor: String,
}

/// One reconciliation check.
#[derive(Debug, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReconciliationCheck {
    /// Stable check name.
    #[schema(pattern = "^[a-z][a-z0-9_]*$", example = "trial_balance")]
    pub name: &'static str,
    /// Its outcome.
    pub status: CheckStatus,
    /// What was compared, or what differs.
    pub detail: String,
}
