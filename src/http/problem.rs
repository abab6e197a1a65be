//! RFC 9457 problem details. ONE table ([`Code::meta`]) gives every error its status, stable
//! `code` and title; every error the service answers with — its own, the store's, the auth
//! layer's and actix's (unknown route, wrong method) — becomes an [`ApiError`] and goes through it.
//! 5xx bodies never carry internals: the cause is logged once, here.

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

use crate::auth::{AuthError, Scope};
use crate::ledger::LedgerError;
use crate::store::StoreError;

/// One failing field of a request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct FieldError {
    /// JSON-pointer-like path of the field, e.g. `amount_minor`, `loans[3].interest_minor`,
    /// `metadata.bad-key`; for query strings and paths, the parameter name.
    #[schema(example = "loans[3].interest_minor")]
    pub field: String,
    /// Stable reason: `required`, `invalid_type`, `invalid_format`, `invalid_value`,
    /// `out_of_range`, `too_short`, `too_long`, `unknown_field`, `duplicate`,
    /// `unknown_currency`, `duplicate_header`, `amount_must_be_positive`,
    /// `amount_out_of_range`, `effective_before_loan`, `effective_before_original`, a
    /// batch item code (`loan_not_found`, `principal_mismatch`, `interest_mismatch`,
    /// `already_accrued`, `mixed_currency_batch`, `loan_charged_off`), or the code of a
    /// refusal that names its field (`loan_charged_off`, `waiver_exceeds_outstanding`,
    /// `entry_unbalanced`, `account_not_found`, `account_not_adjustable`, `period_closed`,
    /// `close_date_not_past`, `period_already_closed`).
    #[schema(pattern = "^[a-z][a-z0-9_]*$", example = "invalid_format")]
    pub code: &'static str,
    /// Human explanation.
    pub message: String,
}

impl FieldError {
    /// A field error.
    pub fn new(field: impl Into<String>, code: &'static str, message: impl Into<String>) -> Self {
        FieldError {
            field: field.into(),
            code,
            message: message.into(),
        }
    }
}

/// Declares [`Code`] and its table from one list, so a code's status, wire name and title are
/// written exactly once.
macro_rules! error_codes {
    ($($variant:ident => $status:ident, $code:literal, $title:literal;)*) => {
        /// Every error code the API answers with (SPEC §10).
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        #[allow(
            missing_docs,
            reason = "each variant is its snake_case code, documented in the table"
        )]
        pub enum Code {
            $($variant,)*
        }

        impl Code {
            /// Every code, in table order.
            pub const ALL: &'static [Code] = &[$(Code::$variant,)*];

            /// THE table: status, wire code, title.
            pub const fn meta(self) -> (StatusCode, &'static str, &'static str) {
                match self {
                    $(Code::$variant => (StatusCode::$status, $code, $title),)*
                }
            }
        }
    };
}

error_codes! {
    ValidationFailed => BAD_REQUEST, "validation_failed", "Request validation failed";
    MalformedJson => BAD_REQUEST, "malformed_json", "Request body is not valid JSON";
    IdempotencyKeyMissing => BAD_REQUEST, "idempotency_key_missing", "Idempotency-Key header is required";
    IdempotencyKeyInvalid => BAD_REQUEST, "idempotency_key_invalid", "Idempotency-Key header is invalid";
    DuplicateHeader => BAD_REQUEST, "duplicate_header", "A header that must appear once appears more than once";
    InvalidPageToken => BAD_REQUEST, "invalid_page_token", "Page token is invalid";
    Unauthenticated => UNAUTHORIZED, "unauthenticated", "Authentication required";
    InsufficientScope => FORBIDDEN, "insufficient_scope", "Token lacks the required scope";
    NotFound => NOT_FOUND, "not_found", "Resource not found";
    MethodNotAllowed => METHOD_NOT_ALLOWED, "method_not_allowed", "Method not allowed";
    IdempotencyInProgress => CONFLICT, "idempotency_in_progress", "A request with this idempotency key is in progress";
    AlreadyReversed => CONFLICT, "already_reversed", "Journal entry is already reversed";
    DuplicateExternalRef => CONFLICT, "duplicate_external_ref", "external_ref is already used";
    AlreadySettled => CONFLICT, "already_settled", "Disbursement is already settled";
    AlreadyReturned => CONFLICT, "already_returned", "Payment is already returned";
    AlreadyChargedOff => CONFLICT, "already_charged_off", "Loan is already charged off";
    PeriodAlreadyClosed => CONFLICT, "period_already_closed", "The period is already closed";
    RequestTimeout => REQUEST_TIMEOUT, "request_timeout", "The request body was not received in time";
    PayloadTooLarge => PAYLOAD_TOO_LARGE, "payload_too_large", "Request body is too large";
    UnsupportedMediaType => UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type", "Content-Type must be application/json";
    HeadersTooLarge => REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large", "Request headers are too large";
    IdempotencyMismatch => UNPROCESSABLE_ENTITY, "idempotency_mismatch", "Idempotency key was used with a different request";
    BorrowerMismatch => UNPROCESSABLE_ENTITY, "borrower_mismatch", "Borrower does not match the loan";
    CurrencyMismatch => UNPROCESSABLE_ENTITY, "currency_mismatch", "Currency does not match the loan";
    LoanNotFound => UNPROCESSABLE_ENTITY, "loan_not_found", "Loan not found";
    AmountMustBePositive => UNPROCESSABLE_ENTITY, "amount_must_be_positive", "Amount must be positive";
    AmountOutOfRange => UNPROCESSABLE_ENTITY, "amount_out_of_range", "A balance or total would leave the exact integer range";
    EffectiveBeforeLoan => UNPROCESSABLE_ENTITY, "effective_before_loan", "Effective date is before the loan's first disbursement";
    EffectiveBeforeOriginal => UNPROCESSABLE_ENTITY, "effective_before_original", "A reversal cannot be dated before its original";
    PrincipalMismatch => UNPROCESSABLE_ENTITY, "principal_mismatch", "Outstanding principal does not match the ledger";
    InterestMismatch => UNPROCESSABLE_ENTITY, "interest_mismatch", "Interest does not match the computed daily interest";
    AlreadyAccrued => UNPROCESSABLE_ENTITY, "already_accrued", "Loan already accrued for this date";
    MixedCurrencyBatch => UNPROCESSABLE_ENTITY, "mixed_currency_batch", "Accrual batch mixes currencies";
    CannotReverseReversal => UNPROCESSABLE_ENTITY, "cannot_reverse_reversal", "A reversal cannot be reversed";
    ReversalBlockedByLaterActivity => UNPROCESSABLE_ENTITY, "reversal_blocked_by_later_activity", "Reversal blocked by later activity";
    EventReversed => UNPROCESSABLE_ENTITY, "event_reversed", "The referenced event is reversed";
    EventReturned => UNPROCESSABLE_ENTITY, "event_returned", "The payment was returned";
    WaiverExceedsOutstanding => UNPROCESSABLE_ENTITY, "waiver_exceeds_outstanding", "Waiver exceeds what can be waived";
    NothingToChargeOff => UNPROCESSABLE_ENTITY, "nothing_to_charge_off", "Loan has nothing outstanding";
    LoanChargedOff => UNPROCESSABLE_ENTITY, "loan_charged_off", "Loan is charged off";
    EntryUnbalanced => UNPROCESSABLE_ENTITY, "entry_unbalanced", "Entry does not balance";
    AccountNotFound => UNPROCESSABLE_ENTITY, "account_not_found", "Account is not in the chart";
    AccountNotAdjustable => UNPROCESSABLE_ENTITY, "account_not_adjustable", "Account cannot be adjusted manually";
    PeriodClosed => UNPROCESSABLE_ENTITY, "period_closed", "The period is closed";
    CloseDateNotPast => UNPROCESSABLE_ENTITY, "close_date_not_past", "Only a past day can be closed";
    RateLimited => TOO_MANY_REQUESTS, "rate_limited", "Too many requests";
    NotReady => SERVICE_UNAVAILABLE, "not_ready", "Service not ready";
    ReplicationUnavailable => SERVICE_UNAVAILABLE, "replication_unavailable", "The replica could not confirm the write in time";
    Overloaded => SERVICE_UNAVAILABLE, "overloaded", "Service overloaded";
    Internal => INTERNAL_SERVER_ERROR, "internal", "Internal error";
}

/// The `OpenAPI` schema of the stable error codes: every wire code of [`Code::ALL`].
pub struct ProblemCode;

impl PartialSchema for ProblemCode {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .description(Some(
                "Stable error code (SPEC §10, plus `method_not_allowed`, `request_timeout` and \
                 `headers_too_large`).",
            ))
            .enum_values(Some(Code::ALL.iter().map(|c| c.meta().1)))
            .into()
    }
}

impl ToSchema for ProblemCode {
    fn name() -> std::borrow::Cow<'static, str> {
        std::borrow::Cow::Borrowed("ProblemCode")
    }
}

impl Code {
    /// Looks a code up by its wire name (used for batch item codes).
    pub fn from_wire(s: &str) -> Option<Code> {
        Code::ALL.iter().copied().find(|c| c.meta().1 == s)
    }
}

/// An error answered as `application/problem+json`.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// Which row of the table.
    pub code: Code,
    /// Human explanation, safe to show.
    pub detail: String,
    /// Failing fields, if any.
    pub errors: Vec<FieldError>,
    /// `Retry-After` seconds.
    pub retry_after: Option<u32>,
    /// Extra `WWW-Authenticate` parameters.
    pub www_authenticate: Option<String>,
    /// `Allow` header (405).
    pub allow: Option<&'static str>,
}

impl ApiError {
    /// An error with a detail message.
    pub fn new(code: Code, detail: impl Into<String>) -> Self {
        ApiError {
            code,
            detail: detail.into(),
            errors: Vec::new(),
            retry_after: None,
            www_authenticate: None,
            allow: None,
        }
    }

    /// 400 `validation_failed` listing every failing field.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.len() {
            1 => format!("{}: {}", errors[0].field, errors[0].message),
            n => format!("{n} fields are invalid"),
        };
        ApiError {
            errors,
            ..ApiError::new(Code::ValidationFailed, detail)
        }
    }

    /// Adds field errors.
    #[must_use]
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors = errors;
        self
    }

    /// Adds a `Retry-After`.
    #[must_use]
    pub fn retry_after(mut self, seconds: u32) -> Self {
        self.retry_after = Some(seconds);
        self
    }

    /// 404 for anything the caller's tenant cannot see.
    pub fn not_found() -> Self {
        ApiError::new(Code::NotFound, "no such resource")
    }

    /// 401.
    pub fn unauthenticated(detail: &str, token_given: bool) -> Self {
        ApiError {
            www_authenticate: token_given.then(|| "error=\"invalid_token\"".to_owned()),
            ..ApiError::new(Code::Unauthenticated, detail)
        }
    }

    /// 403 for a missing scope.
    pub fn insufficient_scope(scope: Scope) -> Self {
        ApiError {
            www_authenticate: Some(format!(
                "error=\"insufficient_scope\", scope=\"{}\"",
                scope.as_str()
            )),
            ..ApiError::new(
                Code::InsufficientScope,
                format!("this operation requires scope {}", scope.as_str()),
            )
        }
    }

    /// 500 with nothing internal shown; the cause is logged here, once.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        ApiError::new(
            Code::Internal,
            "an internal error occurred; it has been logged",
        )
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.code.meta().1, self.detail)
    }
}

/// RFC 9457 problem details. Every error the service answers has this shape.
#[derive(Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "type": "urn:hpts:problem:validation_failed",
    "title": "Request validation failed",
    "status": 400,
    "detail": "amount_minor: must match ^(0|[1-9][0-9]{0,18})$ (minor units, no sign, no leading zeros)",
    "code": "validation_failed",
    "errors": [{ "field": "amount_minor", "code": "invalid_format", "message": "must match ^(0|[1-9][0-9]{0,18})$ (minor units, no sign, no leading zeros)" }]
}))]
pub struct Problem<'a> {
    /// `urn:hpts:problem:<code>`.
    #[serde(rename = "type")]
    #[schema(format = "uri", pattern = "^urn:hpts:problem:[a-z_]+$")]
    kind: String,
    /// Short summary of the code; the same for every occurrence of the code.
    title: &'static str,
    /// The HTTP status.
    #[schema(minimum = 400, maximum = 599)]
    status: u16,
    /// Explanation of this occurrence, safe to show; never internals.
    detail: &'a str,
    /// The stable machine-readable code.
    #[schema(value_type = ProblemCode)]
    code: &'static str,
    /// Every failing field, for `validation_failed` and per-field business errors (e.g. one
    /// item per refused loan of an accrual batch). Absent when there is none.
    #[serde(skip_serializing_if = "<[FieldError]>::is_empty")]
    #[schema(value_type = Vec<FieldError>, required = false, min_items = 1)]
    errors: &'a [FieldError],
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.code.meta().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, code, title) = self.code.meta();
        let body = Problem {
            kind: format!("urn:hpts:problem:{code}"),
            title,
            status: status.as_u16(),
            detail: &self.detail,
            code,
            errors: &self.errors,
        };
        let mut res = HttpResponse::build(status);
        res.insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        ));
        if let Some(allow) = self.allow {
            res.insert_header((header::ALLOW, allow));
        }
        if let Some(secs) = self.retry_after {
            res.insert_header((header::RETRY_AFTER, secs.to_string()));
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            let value = match &self.www_authenticate {
                Some(params) => format!("Bearer {params}"),
                None => "Bearer".to_owned(),
            };
            res.insert_header((header::WWW_AUTHENTICATE, value));
        }
        res.body(serde_json::to_vec(&body).unwrap_or_default())
    }
}

impl From<LedgerError> for ApiError {
    fn from(e: LedgerError) -> Self {
        let field = |field: &str, code: &'static str, message: &str| {
            vec![FieldError::new(field, code, message)]
        };
        let (code, detail, errors) = match e {
            LedgerError::AmountMustBePositive => (Code::AmountMustBePositive, e.to_string(), vec![]),
            LedgerError::BorrowerMismatch(_) => (Code::BorrowerMismatch, e.to_string(), vec![]),
            LedgerError::CurrencyMismatch(_) => (Code::CurrencyMismatch, e.to_string(), vec![]),
            LedgerError::LoanNotFound(_) => (
                Code::LoanNotFound,
                e.to_string(),
                field("loan_id", "loan_not_found", "no such loan in this tenant"),
            ),
            LedgerError::NegativeBalance(_) | LedgerError::ReversalBlocked => (
                Code::ReversalBlockedByLaterActivity,
                "later activity stands on this entry (a settlement, waiver or recovery) or reversing it would make a loan balance negative; reverse the later entries first".into(),
                vec![],
            ),
            LedgerError::EffectiveBeforeLoan(_) => (
                Code::EffectiveBeforeLoan,
                e.to_string(),
                field("effective_at", "effective_before_loan", "no entry on a loan may be dated before its first disbursement"),
            ),
            LedgerError::EffectiveBeforeOriginal => (
                Code::EffectiveBeforeOriginal,
                "an entry that reverses, settles, returns or waives an earlier one is dated on or after it".into(),
                field("effective_at", "effective_before_original", "must be on or after the original entry's effective_at"),
            ),
            LedgerError::Overflow => (
                Code::AmountOutOfRange,
                "a balance or total would leave the exact integer range; nothing was written".into(),
                vec![],
            ),
            LedgerError::OutOfRange { field: name, detail } => {
                let errors = field(&name, "amount_out_of_range", &detail);
                (Code::AmountOutOfRange, format!("{detail}; nothing was written"), errors)
            }
            LedgerError::Unbalanced(_) => (Code::ValidationFailed, e.to_string(), vec![]),
            LedgerError::EntryNotFound | LedgerError::EventNotFound => return ApiError::not_found(),
            LedgerError::AlreadyReversed => {
                (Code::AlreadyReversed, "this journal entry is already reversed".into(), vec![])
            }
            LedgerError::CannotReverseReversal => {
                (Code::CannotReverseReversal, "a reversal cannot be reversed".into(), vec![])
            }
            LedgerError::DuplicateExternalRef => (
                Code::DuplicateExternalRef,
                "external_ref is already used by another payment".into(),
                vec![],
            ),
            LedgerError::LinesRejected(problems) => {
                let code = problems.first().and_then(|p| Code::from_wire(p.code)).unwrap_or(Code::ValidationFailed);
                let errors: Vec<FieldError> = problems
                    .into_iter()
                    .map(|p| FieldError::new(p.field, p.code, p.message))
                    .collect();
                (code, "the entry's lines were refused; nothing was written".into(), errors)
            }
            LedgerError::BatchRejected(problems) => {
                let code = problems.first().and_then(|p| Code::from_wire(p.code)).unwrap_or(Code::ValidationFailed);
                let errors: Vec<FieldError> = problems
                    .into_iter()
                    .map(|p| FieldError::new(format!("loans[{}].{}", p.index, p.field), p.code, p.message))
                    .collect();
                let loans: std::collections::BTreeSet<&str> =
                    errors.iter().filter_map(|e| e.field.split('.').next()).collect();
                let detail =
                    format!("{} loan(s) of the batch were refused; nothing was written", loans.len());
                (code, detail, errors)
            }
            other => return lifecycle_refusal(other),
        };
        ApiError::new(code, detail).with_errors(errors)
    }
}

/// The refusals of the loan lifecycle writes (SPEC §6c).
fn lifecycle_refusal(e: LedgerError) -> ApiError {
    let field = |field: &str, code: &'static str, message: &str| {
        vec![FieldError::new(field, code, message)]
    };
    let (code, detail, errors) = match e {
        LedgerError::AlreadySettled => (
            Code::AlreadySettled,
            "this disbursement is already settled".into(),
            vec![],
        ),
        LedgerError::AlreadyReturned => (
            Code::AlreadyReturned,
            "this payment is already returned".into(),
            vec![],
        ),
        LedgerError::AlreadyChargedOff => (
            Code::AlreadyChargedOff,
            "this loan is already charged off".into(),
            vec![],
        ),
        LedgerError::EventReversed => (
            Code::EventReversed,
            "the referenced event is reversed".into(),
            vec![],
        ),
        LedgerError::EventReturned => (
            Code::EventReturned,
            "this payment was returned; reverse the return first".into(),
            vec![],
        ),
        LedgerError::WaiverExceedsOutstanding { waivable } => {
            let detail = format!("at most {waivable} of this fee can be waived now");
            let errors = field("amount_minor", "waiver_exceeds_outstanding", &detail);
            (Code::WaiverExceedsOutstanding, detail, errors)
        }
        LedgerError::NothingToChargeOff => (
            Code::NothingToChargeOff,
            "the loan owes no principal, interest or fees".into(),
            vec![],
        ),
        LedgerError::LoanChargedOff { field: name } => {
            let detail = "the loan is charged off".to_owned();
            let errors = field(name, "loan_charged_off", &detail);
            (Code::LoanChargedOff, detail, errors)
        }
        other => return month_end_refusal(other),
    };
    ApiError::new(code, detail).with_errors(errors)
}

/// The refusals of month-end (SPEC §6d): the period lock and the close itself.
fn month_end_refusal(e: LedgerError) -> ApiError {
    let field = |field: &str, code: &'static str, message: &str| {
        vec![FieldError::new(field, code, message)]
    };
    let (code, detail, errors) = match e {
        LedgerError::PeriodClosed { field: name, lock } => {
            let detail = format!(
                "the books are closed through {}; date the write after it",
                crate::ledger::iso_date(lock)
            );
            let errors = field(name, "period_closed", &detail);
            (Code::PeriodClosed, detail, errors)
        }
        LedgerError::CloseDateNotPast => {
            let detail = "through_date must be before today (UTC)".to_owned();
            let errors = field("through_date", "close_date_not_past", &detail);
            (Code::CloseDateNotPast, detail, errors)
        }
        LedgerError::PeriodAlreadyClosed { lock } => {
            let detail = format!(
                "the books are already closed through {}; close a later day",
                crate::ledger::iso_date(lock)
            );
            let errors = field("through_date", "period_already_closed", &detail);
            (Code::PeriodAlreadyClosed, detail, errors)
        }
        other => (Code::Internal, other.to_string(), vec![]),
    };
    ApiError::new(code, detail).with_errors(errors)
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Ledger(l) => l.into(),
            StoreError::IdempotencyMismatch => ApiError::new(
                Code::IdempotencyMismatch,
                "this Idempotency-Key was already used with a different request body or route",
            ),
            StoreError::NotFound => ApiError::not_found(),
            StoreError::ReadBusy => ApiError::new(
                Code::Overloaded,
                "read capacity is exhausted; retry shortly",
            )
            .retry_after(1),
            StoreError::Cancelled => ApiError::new(
                Code::Overloaded,
                "the read was cancelled before it finished; retry shortly",
            )
            .retry_after(1),
            StoreError::Overloaded => {
                ApiError::new(Code::Overloaded, "the writer queue is full; retry shortly").retry_after(1)
            }
            StoreError::Unavailable => ApiError::new(Code::NotReady, "the writer is not running").retry_after(1),
            StoreError::StorageFull => ApiError::new(
                Code::NotReady,
                "the database has no space left; nothing was written; writes resume when space is freed",
            )
            .retry_after(5),
            StoreError::ReplicationUnavailable => ApiError::new(
                Code::ReplicationUnavailable,
                "the write is committed on this machine, but the object-storage replica did not \
                 confirm it within the replication timeout; retry with the same Idempotency-Key: \
                 it is answered with the stored result once the replica has it",
            )
            .retry_after(2),
            e @ (StoreError::Database(_)
            | StoreError::Pool(_)
            | StoreError::Failed { .. }
            | StoreError::Invalid(_)) => ApiError::internal(&crate::report::Chain(&e)),
        }
    }
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        tracing::info!(reason = %e, "authentication refused");
        match e {
            AuthError::Missing => ApiError::unauthenticated("a bearer token is required", false),
            AuthError::Invalid(_) => {
                ApiError::unauthenticated("the bearer token is invalid or expired", true)
            }
        }
    }
}
