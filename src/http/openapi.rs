//! The `OpenAPI` 3.1 document of the whole API (`GET /openapi.json`) and Swagger UI (`/docs`).
//!
//! The handlers are not annotated: they parse JSON by hand ([`crate::http::validate`]) so that
//! every failing field is reported. The document is therefore described here, on its own, with
//! utoipa's derives, and kept honest by the contract test `tests/api/openapi.rs`, which calls
//! every endpoint for real and validates each answer against the schema documented for its
//! operation, status and content type.
//!
//! Layout of this file:
//!
//! 1. [`configure`]: the routes `GET /openapi.json` (no authentication) and `/docs` (Swagger UI;
//!    `/docs` redirects to `/docs/`). [`document`] builds the document.
//! 2. `ApiDoc`: the document root — info, tags, the list of operations and components.
//! 3. `CommonParts`: a modifier for what is the same everywhere — the bearer (JWT) security
//!    scheme, the `traceparent` header on every response, `Idempotent-Replayed: true`.
//! 4. `schemas`: documentation-only types (never constructed): request bodies (closed, with every
//!    wire rule the parser enforces), receipts, read responses and the problem body.
//! 5. `responses`: reusable error responses (401, 403, 405, 408, 413, 415, 429, 500, 503).
//! 6. `params`: the `Idempotency-Key` header and the query strings.
//! 7. `operations`: one stub per route of [`crate::http::routes`] plus `/metrics` and
//!    `/openapi.json`, each with its scope (in the security requirement and the description) and
//!    every status it can answer.
//!
//! Wire rules, stated once here and repeated literally in the attributes below (utoipa only
//! takes string literals there):
//!
//! | what | rule |
//! |---|---|
//! | money in a request, and non-negative money in a response | `^(0\|[1-9][0-9]{0,18})$`, a string |
//! | money that may be negative (account balances, reconciliation) | `^(0\|-?[1-9][0-9]{0,18})$` |
//! | currency | `^[A-Z]{3}$` and an active ISO 4217 code (else `unknown_currency`) |
//! | account code | `^[0-9]{4}$` |
//! | `Idempotency-Key` | `^[A-Za-z0-9][A-Za-z0-9._:\-]{7,254}$` |
//! | `traceparent` | `^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$` |
//! | `metadata` keys | `^[a-zA-Z][a-zA-Z0-9_]*$`, the object at most 2048 bytes serialised |

use std::sync::LazyLock;

use actix_web::http::header;
use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpResponse, Responder};
use utoipa::openapi::header::HeaderBuilder;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Ref, RefOr, Response};
use utoipa::{IntoParams, Modify, OpenApi};
use utoipa_swagger_ui::{Config, SwaggerUi};

use crate::http::problem::{ApiError, Code};

// ---------------------------------------------------------------------------------------------
// 1. Routes
// ---------------------------------------------------------------------------------------------

/// Where the document is served.
pub const DOCUMENT_PATH: &str = "/openapi.json";

/// The serialised document, built once per process.
static DOCUMENT_JSON: LazyLock<String> = LazyLock::new(|| {
    document()
        .to_json()
        .expect("the OpenAPI document serialises to JSON")
});

/// The `OpenAPI` 3.1 document of the whole API.
pub fn document() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Registers `GET /openapi.json` and Swagger UI at `/docs` (and `/docs/`). Neither needs a token.
pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(
        web::resource(DOCUMENT_PATH)
            .route(web::get().to(serve_document))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/docs").route(web::get().to(redirect_to_docs)))
    .service(SwaggerUi::new("/docs/{_:.*}").config(Config::new([DOCUMENT_PATH])));
}

async fn serve_document() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(DOCUMENT_JSON.as_str())
}

/// Swagger UI loads its assets relative to `/docs/`, so the bare path redirects there.
async fn redirect_to_docs() -> impl Responder {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/docs/"))
        .finish()
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError {
        allow: Some(crate::http::ALLOW_GET),
        ..ApiError::new(
            Code::MethodNotAllowed,
            "this method is not allowed on this resource",
        )
    })
}

// ---------------------------------------------------------------------------------------------
// 2. The document root
// ---------------------------------------------------------------------------------------------

#[derive(OpenApi)]
#[openapi(
    info(
        title = "HPTS lending ledger API",
        version = env!("CARGO_PKG_VERSION"),
        description = "A double-entry lending ledger (the HPTS API). Clients post financial \
events (disbursements, payments, fees, accrual batches, reversals, and the loan lifecycle: \
disbursement settlements, payment returns, fee waivers, charge-offs and recoveries, manual \
adjustments); each becomes one business event and exactly one balanced journal entry, durable \
before the answer.\n\n\
**Month-end**: a period close locks every day up to its `through_date` (a write dated on or \
before the lock date is 422 `period_closed`) and stores the trial balance of every currency; \
the trial balance can be read for any date, and the journal exported as a Beancount or hledger \
file.\n\n\
**Money** is an integer count of the currency's minor unit, sent and returned as a decimal \
string (`\"150000\"` is 1500.00 USD), never a JSON number.\n\n\
**Authentication**: `Authorization: Bearer <JWT>`; each operation needs one scope, named in its \
security requirement and description. The tenant comes from the token's `tenant_id` claim; \
another tenant's resource is a 404.\n\n\
**Idempotency**: every POST requires `Idempotency-Key`. The first success answers 201; the same \
key with the same body answers 200 with the identical stored body and `Idempotent-Replayed: \
true`; the same key with another body is 422 `idempotency_mismatch`.\n\n\
**Errors** are RFC 9457 `application/problem+json` with a stable `code`; validation errors list \
every failing field in `errors[]`.\n\n\
**Headers**: `Authorization`, `Idempotency-Key` and `Content-Type` may each appear once; a \
repeated one is 400 `duplicate_header` on any route. `HEAD` is answered wherever `GET` is. A \
request body must not be compressed (`Content-Encoding` other than `identity` is 415) and must \
arrive in time (408 `request_timeout` after 10 s without data or 60 s in all).\n\n\
**Tracing**: send a W3C `traceparent` to join your trace; every response carries the server \
span's `traceparent`, and `tracestate` is echoed unchanged.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    tags(
        (name = "writes", description = "Post financial events. Every write is idempotent."),
        (name = "reads", description = "Balances, journal entries, the trial balance, period closes, the journal export and the reconciliation proof."),
        (name = "operations", description = "Health, metrics and this document. No token needed."),
    ),
    paths(
        operations::create_disbursement,
        operations::create_payment,
        operations::create_fee,
        operations::create_accrual_batch,
        operations::create_reversal,
        operations::create_disbursement_settlement,
        operations::create_payment_return,
        operations::create_fee_waiver,
        operations::create_charge_off,
        operations::create_adjustment,
        operations::create_period_close,
        operations::get_loan_balance,
        operations::list_loan_journal_entries,
        operations::get_account_balance,
        operations::get_journal_entry,
        operations::get_reconciliation_status,
        operations::list_period_closes,
        operations::get_trial_balance,
        operations::export_journal,
        operations::health_live,
        operations::health_ready,
        operations::metrics,
        operations::openapi_document,
    ),
    components(
        schemas(
            schemas::Problem,
            schemas::ProblemCode,
            schemas::FieldError,
            schemas::Metadata,
            schemas::DisbursementRequest,
            schemas::DisbursementMethod,
            schemas::PaymentRequest,
            schemas::PaymentMethod,
            schemas::FeeRequest,
            schemas::FeeType,
            schemas::AccrualBatchRequest,
            schemas::AccrualBatchLoan,
            schemas::DayCountConvention,
            schemas::ReversalRequest,
            schemas::ReasonCode,
            schemas::DisbursementSettlementRequest,
            schemas::PaymentReturnRequest,
            schemas::ReturnReason,
            schemas::FeeWaiverRequest,
            schemas::ChargeOffRequest,
            schemas::ChargeOffReason,
            schemas::AdjustmentRequest,
            schemas::AdjustmentLine,
            schemas::PeriodCloseRequest,
            schemas::DisbursementReceipt,
            schemas::PaymentReceipt,
            schemas::Allocation,
            schemas::FeeReceipt,
            schemas::AccrualReceipt,
            schemas::ReversalReceipt,
            schemas::DisbursementSettlementReceipt,
            schemas::PaymentReturnReceipt,
            schemas::FeeWaiverReceipt,
            schemas::ChargeOffReceipt,
            schemas::ChargedOffAmounts,
            schemas::AdjustmentReceipt,
            schemas::PeriodCloseReceipt,
            schemas::ClosingTrialBalance,
            schemas::ClosingAccountBalance,
            schemas::LoanBalance,
            schemas::LoanStatus,
            schemas::AccountBalance,
            schemas::Layer,
            schemas::JournalEntry,
            schemas::JournalLine,
            schemas::Direction,
            schemas::EventType,
            schemas::JournalEntryPage,
            schemas::ReconciliationStatus,
            schemas::CheckStatus,
            schemas::LedgerIntegrity,
            schemas::BankReconciliation,
            schemas::PortfolioRollup,
            schemas::ReconciliationCheck,
            schemas::PeriodCloseList,
            schemas::PeriodCloseSummary,
            schemas::TrialBalance,
            schemas::TrialBalanceAccount,
            schemas::NormalBalance,
            schemas::ExportFormat,
            schemas::Liveness,
            schemas::Readiness,
        ),
        responses(
            responses::Unauthenticated,
            responses::Forbidden,
            responses::MethodNotAllowed,
            responses::RequestTimeout,
            responses::PayloadTooLarge,
            responses::UnsupportedMediaType,
            responses::RateLimited,
            responses::ServiceUnavailable,
            responses::InternalError,
        ),
    ),
    modifiers(&CommonParts),
)]
struct ApiDoc;

// ---------------------------------------------------------------------------------------------
// 3. What is the same everywhere
// ---------------------------------------------------------------------------------------------

/// Name of the security scheme (the operations below spell it literally in `security(...)`).
const BEARER: &str = "bearer";

/// Adds what is the same on many operations, so no operation states it again: the bearer
/// security scheme; on every operation that needs a token, the reusable 401, 403, 405, 429 and
/// 500 answers; on every POST, the `Idempotency-Key` header, the 200 replay (the 201 body with
/// `Idempotent-Replayed: true`) and the reusable 408, 413, 415 and 503 answers; and the
/// `traceparent` response header on every response (inline ones and the reusable ones in
/// `components.responses`).
struct CommonParts;

/// The reusable answers of every operation that needs a token.
const AUTHENTICATED: [(&str, &str); 5] = [
    ("401", "Unauthenticated"),
    ("403", "Forbidden"),
    ("405", "MethodNotAllowed"),
    ("429", "RateLimited"),
    ("500", "InternalError"),
];

/// The reusable answers every POST adds.
const WRITES: [(&str, &str); 4] = [
    ("408", "RequestTimeout"),
    ("413", "PayloadTooLarge"),
    ("415", "UnsupportedMediaType"),
    ("503", "ServiceUnavailable"),
];

/// Adds the shared parameters and answers to one operation (see [`CommonParts`]).
fn add_common_answers(operation: &mut Operation, post: bool) {
    let responses = &mut operation.responses.responses;
    if operation.security.is_some() {
        for (status, name) in AUTHENTICATED {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
        }
    }
    if !post {
        return;
    }
    for (status, name) in WRITES {
        responses
            .entry(status.to_owned())
            .or_insert_with(|| RefOr::Ref(Ref::from_response_name(name)));
    }
    if let Some(RefOr::T(created)) = responses.get("201") {
        let mut replayed = created.clone();
        "Replay of an earlier success with this key and body: the identical stored body."
            .clone_into(&mut replayed.description);
        let header = HeaderBuilder::new()
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["true"])),
            ))
            .description(Some("`true`"))
            .build();
        replayed
            .headers
            .insert("Idempotent-Replayed".to_owned(), header.into());
        responses.insert("200".to_owned(), RefOr::T(replayed));
    }
    let key = params::IdempotencyKey::into_params(|| Some(ParameterIn::Header));
    operation
        .parameters
        .get_or_insert_with(Vec::new)
        .splice(0..0, key.into_iter().map(RefOr::T));
}

impl Modify for CommonParts {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            BEARER,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "A JWT signed by the configured issuer (RS256, ES256 or EdDSA) with \
                         `iss`, `aud`, `exp` and a `tenant_id` (UUID) claim. Scopes come from \
                         `scope` (space-separated) or `scp` (array). A missing, invalid or \
                         expired token is 401; a valid token without the operation's scope is \
                         403 `insufficient_scope`.",
                    ))
                    .build(),
            ),
        );
        for response in components.responses.values_mut() {
            add_shared_headers(response);
        }
        for item in doc.paths.paths.values_mut() {
            let operations = [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ];
            for (i, operation) in operations.into_iter().enumerate() {
                let Some(operation) = operation else { continue };
                add_common_answers(operation, i == 2);
                for response in operation.responses.responses.values_mut() {
                    add_shared_headers(response);
                }
            }
        }
    }
}

fn add_shared_headers(response: &mut RefOr<Response>) {
    // A `$ref` points at a reusable response, which gets the header itself.
    if let RefOr::T(response) = response {
        let schema = ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some(crate::http::schema::TRACEPARENT_PATTERN))
            .build();
        let header = HeaderBuilder::new()
            .schema(Some(schema))
            .description(Some(
                "W3C trace context of the server span: a child of the request's valid \
                 `traceparent` (same trace id), or a new trace.",
            ))
            .build();
        response
            .headers
            .insert("traceparent".to_owned(), RefOr::T(header));
    }
}

// ---------------------------------------------------------------------------------------------
// 4. Schemas
// ---------------------------------------------------------------------------------------------

mod schemas {
    //! Documentation-only types: they derive `ToSchema` and are never built. The handlers parse
    //! requests by hand; these describe exactly what that parsing accepts and what the handlers
    //! and receipts serialise.
    #![expect(
        dead_code,
        reason = "documentation-only types: never constructed, only described"
    )]
    #![expect(
        clippy::struct_field_names,
        reason = "wire field names are fixed by the API contract"
    )]

    use utoipa::ToSchema;

    pub use crate::http::schema::{
        AccountCode, CurrencyCode, Metadata, MinorUnits, SignedMinorUnits,
    };
    pub use crate::ledger::accounts::{Direction, Layer};
    pub use crate::ledger::accrual::DayCount as DayCountConvention;
    pub use crate::ledger::commands::{
        ChargeOffReason, DisbursementMethod, EventType, FeeType, PaymentMethod, ReasonCode,
        ReturnReason,
    };
    pub use crate::ledger::export::Format as ExportFormat;
    pub use crate::ledger::loan::LoanStatus;

    pub use crate::http::dto::{JournalEntry, Line as JournalLine, LoanBalance};
    pub use crate::http::problem::{FieldError, Problem, ProblemCode};

    // ----- Request bodies ---------------------------------------------------------------------

    /// `POST /v1/disbursements`. The first disbursement of a loan opens it and binds its borrower
    /// and currency; later ones must match them. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DisbursementRequest {
        /// The loan, chosen by the client (any case; returned lowercase).
        #[schema(format = "uuid")]
        loan_id: String,
        /// The borrower (bound by the first disbursement).
        #[schema(format = "uuid")]
        borrower_id: String,
        /// Amount in minor units, greater than 0 (`"0"` is 422 `amount_must_be_positive`), at
        /// most 9223372036854775807.
        amount_minor: MinorUnits,
        /// An active ISO 4217 code (else 400, `errors[].code` `unknown_currency`); bound by the
        /// first disbursement.
        currency: CurrencyCode,
        /// Effective date, `YYYY-MM-DD`.
        #[schema(format = Date, example = "2026-11-01")]
        effective_at: String,
        /// How the money was paid out.
        method: DisbursementMethod,
        /// Reference of the payout, 1–255 characters without control characters.
        #[schema(min_length = 1, max_length = 255)]
        destination_ref: Option<String>,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/payments`. Allocated fees → interest → principal, each capped at what the loan
    /// owes; the rest goes to borrower suspense. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PaymentRequest {
        /// The loan paid (must exist: else 422 `loan_not_found`).
        #[schema(format = "uuid")]
        loan_id: String,
        /// Must be the loan's borrower (else 422 `borrower_mismatch`).
        #[schema(format = "uuid")]
        borrower_id: String,
        /// Amount in minor units, greater than 0.
        amount_minor: MinorUnits,
        /// An active ISO 4217 code (else 400 `unknown_currency`) and the loan's currency (else
        /// 422 `currency_mismatch`).
        currency: CurrencyCode,
        /// Effective date, `YYYY-MM-DD`.
        #[schema(format = Date, example = "2026-12-01")]
        effective_at: String,
        /// How the money arrived.
        source_method: PaymentMethod,
        /// The processor's reference, 1–255 characters without control characters; unique per
        /// tenant (a second use is 409 `duplicate_external_ref`).
        #[schema(min_length = 1, max_length = 255)]
        external_ref: Option<String>,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/fees`. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct FeeRequest {
        /// The loan charged (must exist: else 422 `loan_not_found`).
        #[schema(format = "uuid")]
        loan_id: String,
        /// Kind of fee.
        fee_type: FeeType,
        /// Amount in minor units, greater than 0.
        amount_minor: MinorUnits,
        /// An active ISO 4217 code (else 400 `unknown_currency`) and the loan's currency (else
        /// 422 `currency_mismatch`).
        currency: CurrencyCode,
        /// Effective date, `YYYY-MM-DD`.
        #[schema(format = Date, example = "2026-11-15")]
        effective_at: String,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/accruals/batch`: all or nothing. Every loan must exist in the tenant, share one
    /// currency, carry the ledger's principal outstanding at commit time, and not be accrued
    /// yet for `accrual_date` (else 422 with one `errors[]` item per refused loan). Body limit
    /// 4 MiB.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AccrualBatchRequest {
        /// The accrual program (the client's identifier).
        #[schema(format = "uuid")]
        program_id: String,
        /// The day accrued, `YYYY-MM-DD`.
        #[schema(format = Date, example = "2026-11-30")]
        accrual_date: String,
        /// Day-count convention of the daily interest.
        day_count_convention: DayCountConvention,
        /// One item per loan, each loan at most once.
        #[schema(min_items = 1, max_items = 10000)]
        loans: Vec<AccrualBatchLoan>,
    }

    /// One loan of an accrual batch.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AccrualBatchLoan {
        /// The loan.
        #[schema(format = "uuid")]
        loan_id: String,
        /// Must equal the ledger's principal outstanding at commit time (else 422
        /// `principal_mismatch`).
        outstanding_principal_minor: MinorUnits,
        /// The day's interest in minor units, greater than 0.
        interest_minor: MinorUnits,
        /// Annual rate in basis points. When present, `interest_minor` must equal principal ×
        /// rate ÷ days-in-year of the convention, rounded half to even (else 422
        /// `interest_mismatch`).
        #[schema(minimum = 0, maximum = 100_000, example = 1000)]
        annual_rate_bps: Option<u32>,
    }

    /// `POST /v1/reversals`: posts the exact mirror of an entry's lines. An entry is reversed at
    /// most once; a reversal cannot be reversed. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ReversalRequest {
        /// The journal entry to reverse (another tenant's or a missing one is 404).
        #[schema(format = "uuid")]
        reverses_entry_id: String,
        /// Why.
        reason_code: ReasonCode,
        /// Free text, at most 500 characters, without control characters.
        #[schema(max_length = 500)]
        reason_description: Option<String>,
        /// Effective date of the reversal, `YYYY-MM-DD`; after the tenant's lock date (else 422
        /// `period_closed`). Defaults to the original's, or, when the original lies in a closed
        /// period, to the day after the lock date.
        #[schema(format = Date)]
        effective_at: Option<String>,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/disbursement-settlements`: the disbursed money left the lender's bank account.
    /// A disbursement settles at most once. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DisbursementSettlementRequest {
        /// The disbursement settled (a `disbursement` event of this tenant: else 404
        /// `not_found`).
        #[schema(format = "uuid")]
        disbursement_event_id: String,
        /// Effective date, `YYYY-MM-DD`; not before the disbursement's (else 422
        /// `effective_before_original`).
        #[schema(format = Date, example = "2026-11-02")]
        effective_at: String,
        /// The bank account the money left, 1–64 characters.
        #[schema(
            min_length = 1,
            max_length = 64,
            pattern = r"^[A-Za-z0-9._:\-]+$",
            example = "bank:operating-1"
        )]
        bank_account_ref: Option<String>,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/payment-returns`: a received payment (or a recovery) came back. A payment is
    /// returned at most once. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PaymentReturnRequest {
        /// The payment returned (a `payment_received` or `recovery` event of this tenant: else
        /// 404 `not_found`).
        #[schema(format = "uuid")]
        payment_event_id: String,
        /// Why the payment came back.
        return_reason: ReturnReason,
        /// The ACH return code.
        #[schema(pattern = "^R[0-9]{2}$", example = "R01")]
        return_code: Option<String>,
        /// Effective date, `YYYY-MM-DD`; not before the payment's (else 422
        /// `effective_before_original`).
        #[schema(format = Date, example = "2026-12-06")]
        effective_at: String,
        /// A returned-payment fee to assess with the return, in minor units, greater than 0
        /// (`"0"` is 422 `amount_must_be_positive`); refused on a charged-off loan (422
        /// `loan_charged_off`).
        nsf_fee_minor: Option<MinorUnits>,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/fee-waivers`: forgive all or part of an assessed fee. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct FeeWaiverRequest {
        /// The fee waived (a `fee_assessed` event of this tenant: else 404 `not_found`).
        #[schema(format = "uuid")]
        fee_event_id: String,
        /// Amount waived in minor units, greater than 0, at most the waivable amount: the fee's
        /// amount less what live waivers already waived of it, capped at the loan's fees
        /// receivable now (else 422 `waiver_exceeds_outstanding`). Absent: the whole waivable
        /// amount.
        amount_minor: Option<MinorUnits>,
        /// Why, 1–500 characters without control characters.
        #[schema(
            min_length = 1,
            max_length = 500,
            example = "goodwill: first late payment"
        )]
        reason: String,
        /// Effective date, `YYYY-MM-DD`; not before the fee's (else 422
        /// `effective_before_original`).
        #[schema(format = Date, example = "2026-12-03")]
        effective_at: String,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/charge-offs`: write a loan off as uncollectable. A loan is charged off at most
    /// once. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ChargeOffRequest {
        /// The loan (must exist: else 422 `loan_not_found`).
        #[schema(format = "uuid")]
        loan_id: String,
        /// Effective date, `YYYY-MM-DD`; not before the loan's first disbursement (else 422
        /// `effective_before_loan`).
        #[schema(format = Date, example = "2026-12-10")]
        effective_at: String,
        /// Why the loan is written off.
        reason_code: ChargeOffReason,
        metadata: Option<Metadata>,
    }

    /// `POST /v1/adjustments`: a manual journal entry for the accountant. The lines are posted
    /// in request order and carry no `loan_id`. `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AdjustmentRequest {
        /// Effective date, `YYYY-MM-DD`.
        #[schema(format = Date, example = "2026-12-20")]
        effective_at: String,
        /// Becomes the entry's `description`; 1–500 characters without control characters.
        #[schema(
            min_length = 1,
            max_length = 500,
            example = "bank charges, November statement"
        )]
        description: String,
        /// 2–50 lines (else 400 `validation_failed`, field `lines`); per currency, debits must
        /// equal credits (else 422 `entry_unbalanced`, field `lines`).
        #[schema(min_items = 2, max_items = 50)]
        lines: Vec<AdjustmentLine>,
        metadata: Option<Metadata>,
    }

    /// One line of a manual adjustment.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AdjustmentLine {
        /// A GL account of the chart (else 422 `account_not_found`), not one of the loan control
        /// accounts 1100, 1200, 1300 and 2100 (else 422 `account_not_adjustable`).
        account_code: AccountCode,
        direction: Direction,
        /// Amount in minor units, greater than 0 (`"0"` is 422 `amount_must_be_positive`).
        amount_minor: MinorUnits,
        /// An active ISO 4217 code (else 400, `errors[].code` `unknown_currency`).
        currency: CurrencyCode,
    }

    /// `POST /v1/period-closes`: close every day up to and including `through_date`. The
    /// `metadata` is stored with the close (no read returns it today). `null` counts as absent.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PeriodCloseRequest {
        /// The last day closed, `YYYY-MM-DD`: before today, UTC (else 422
        /// `close_date_not_past`), and after the tenant's current lock date (else 409
        /// `period_already_closed`).
        #[schema(format = Date, example = "2026-11-30")]
        through_date: String,
        metadata: Option<Metadata>,
    }

    // ----- Receipts (write answers; a replay returns the identical body) ----------------------

    /// Answer of `POST /v1/disbursements`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DisbursementReceipt {
        /// The business event (`UUIDv7`).
        #[schema(format = "uuid")]
        disbursement_event_id: String,
        /// Its journal entry (`UUIDv7`).
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// Commit timestamp, RFC 3339 UTC with `Z`; the same wherever the entry is shown.
        #[schema(format = DateTime, example = "2026-11-01T09:30:00.123456Z")]
        posted_at: String,
    }

    /// Answer of `POST /v1/payments`, for an ordinary payment and for a recovery (a payment on a
    /// charged-off loan) alike.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PaymentReceipt {
        /// The business event (`payment_received`, or `recovery` on a charged-off loan).
        #[schema(format = "uuid")]
        payment_event_id: String,
        /// Its journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// For a recovery: every part `"0"` except `suspense_minor`.
        allocation: Allocation,
        /// Credited to recoveries (4200): at most the loan's `charged_off_minor` less its
        /// `recovered_minor`. `"0"` for an ordinary payment.
        recovery_minor: MinorUnits,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// How a payment was split. The parts (plus `recovery_minor` for a recovery) sum to the
    /// payment amount.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Allocation {
        /// Applied to fees receivable (1300).
        fees_minor: MinorUnits,
        /// Applied to interest receivable (1200).
        interest_minor: MinorUnits,
        /// Applied to principal receivable (1100).
        principal_minor: MinorUnits,
        /// Left over, held in borrower suspense (2100).
        suspense_minor: MinorUnits,
    }

    /// Answer of `POST /v1/fees`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct FeeReceipt {
        /// The business event.
        #[schema(format = "uuid")]
        fee_event_id: String,
        /// Its journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// Answer of `POST /v1/accruals/batch`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AccrualReceipt {
        /// The business event.
        #[schema(format = "uuid")]
        accrual_event_id: String,
        /// The one journal entry of the batch.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// Loans accrued.
        #[schema(minimum = 1, maximum = 10000)]
        loan_count: u32,
        /// Sum of the interest accrued, in minor units.
        total_accrued_minor: MinorUnits,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// Answer of `POST /v1/reversals`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ReversalReceipt {
        /// The reversal's journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// The entry it reverses.
        #[schema(format = "uuid")]
        reverses_entry_id: String,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
        /// The original business event's id.
        #[schema(format = "uuid")]
        correlation_id: String,
    }

    /// Answer of `POST /v1/disbursement-settlements`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct DisbursementSettlementReceipt {
        /// The business event (`disbursement_settled`).
        #[schema(format = "uuid")]
        settlement_event_id: String,
        /// Its journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// The disbursement settled.
        #[schema(format = "uuid")]
        disbursement_event_id: String,
        /// The disbursement's amount, in minor units.
        amount_minor: MinorUnits,
        /// The loan's currency.
        currency: CurrencyCode,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// Answer of `POST /v1/payment-returns`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PaymentReturnReceipt {
        /// The business event (`payment_returned`).
        #[schema(format = "uuid")]
        return_event_id: String,
        /// Its journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// The payment returned.
        #[schema(format = "uuid")]
        payment_event_id: String,
        /// What went back onto the loan: the returned payment's own allocation. For a returned
        /// recovery: fees, interest and principal `"0"`, suspense its suspense part.
        returned_allocation: Allocation,
        /// The fee assessed with the return, `"0"` without one.
        nsf_fee_minor: MinorUnits,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// Answer of `POST /v1/fee-waivers`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct FeeWaiverReceipt {
        /// The business event (`fee_waived`).
        #[schema(format = "uuid")]
        waiver_event_id: String,
        /// Its journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// The fee waived.
        #[schema(format = "uuid")]
        fee_event_id: String,
        /// Amount waived, in minor units.
        waived_minor: MinorUnits,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// Answer of `POST /v1/charge-offs`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ChargeOffReceipt {
        /// The business event (`chargeoff`).
        #[schema(format = "uuid")]
        chargeoff_event_id: String,
        /// Its journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// The loan written off.
        #[schema(format = "uuid")]
        loan_id: String,
        charged_off: ChargedOffAmounts,
        /// Principal + interest + fees written off; the loan's `charged_off_minor`.
        total_minor: MinorUnits,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// What a charge-off wrote off: the loan's balances at the charge-off.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ChargedOffAmounts {
        /// Principal receivable (Cr 1100, Dr 5000 credit losses).
        principal_minor: MinorUnits,
        /// Interest receivable (Cr 1200, Dr 4000 interest income).
        interest_minor: MinorUnits,
        /// Fees receivable (Cr 1300, Dr 4100 fee income).
        fees_minor: MinorUnits,
    }

    /// Answer of `POST /v1/adjustments`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AdjustmentReceipt {
        /// The business event (`manual_adjustment`).
        #[schema(format = "uuid")]
        adjustment_event_id: String,
        /// Its journal entry.
        #[schema(format = "uuid")]
        journal_entry_id: String,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        posted_at: String,
    }

    /// Answer of `POST /v1/period-closes`. A close posts no journal entry and sends no webhook.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PeriodCloseReceipt {
        /// The close (`UUIDv7`).
        #[schema(format = "uuid")]
        period_close_id: String,
        /// The last day closed: the tenant's lock date from now on.
        #[schema(format = Date, example = "2026-11-30")]
        through_date: String,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime, example = "2026-12-01T08:00:00.123456Z")]
        closed_at: String,
        /// The trial balance as of `through_date` of every currency the tenant has posted in,
        /// in currency-code order; empty for a tenant without entries. Stored with the close
        /// and recomputed by the reconciliation check `closed_periods_unchanged`.
        trial_balance: Vec<ClosingTrialBalance>,
    }

    /// One currency's trial balance as stored by a period close.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ClosingTrialBalance {
        /// ISO 4217 code.
        currency: CurrencyCode,
        /// Every account of the chart, in code order, zero balances included.
        #[schema(min_items = 1)]
        accounts: Vec<ClosingAccountBalance>,
    }

    /// One account's balance in a stored trial balance.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ClosingAccountBalance {
        /// GL account.
        account_code: AccountCode,
        /// Balance on the account's normal side, in minor units; may be negative.
        balance_minor: SignedMinorUnits,
    }

    // ----- Read answers -----------------------------------------------------------------------

    /// `GET /v1/accounts/{account_code}/balance`. Amounts in minor units.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct AccountBalance {
        /// The GL account (chart of accounts: 1000, 1100, 1200, 1300, 2000, 2100, 4000, 4100,
        /// 4200, 5000).
        account_code: AccountCode,
        /// Its name.
        #[schema(example = "Principal receivable")]
        account_name: String,
        /// The currency asked for.
        currency: CurrencyCode,
        layer: Layer,
        /// The date the balance is shown for (`as_of_date`, else today, UTC).
        #[schema(format = Date)]
        as_of_date: String,
        /// Sum of debits.
        dr_balance_minor: MinorUnits,
        /// Sum of credits.
        cr_balance_minor: MinorUnits,
        /// Balance on the account's normal side; may be negative.
        normal_balance_minor: SignedMinorUnits,
    }

    /// `GET /v1/loans/{loan_id}/journal-entries`: one page, in posting order.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct JournalEntryPage {
        /// Up to `page_size` entries.
        items: Vec<JournalEntry>,
        /// Pass as `page_token` (with the same filters) for the next page; `null` on the last.
        #[schema(required = true, min_length = 1)]
        next_page_token: Option<String>,
    }

    /// `GET /v1/reconciliation/status`: the proof that the caller's ledger is whole, computed on
    /// one read snapshot.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ReconciliationStatus {
        /// The date asked for, else today (UTC).
        #[schema(format = Date)]
        as_of_date: String,
        ledger_integrity: LedgerIntegrity,
        /// Bank statement matching per bank account (none configured today: empty).
        bank_reconciliation: Vec<BankReconciliation>,
        portfolio_rollup: PortfolioRollup,
        /// Every check, in a fixed order: `trial_balance`, `entries_balanced`,
        /// `loan_subledger_matches_gl`, `materialised_balances_match_lines`,
        /// `hash_chain_intact`, `append_only_guard_present`, `closed_periods_unchanged`.
        checks: Vec<ReconciliationCheck>,
    }

    /// Outcome of a check.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum CheckStatus {
        Ok,
        Mismatch,
    }

    /// Summary of the integrity checks.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct LedgerIntegrity {
        /// `ok` when every check holds.
        status: CheckStatus,
        /// (account, currency) pairs whose balances disagree somewhere.
        #[schema(minimum = 0)]
        mismatched_account_count: u64,
        /// When the checks ran, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        checked_at: String,
    }

    /// Bank statement matching of one bank account.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct BankReconciliation {
        /// The bank account.
        bank_account_ref: String,
        status: CheckStatus,
        /// Ledger minus bank, in minor units.
        difference_minor: SignedMinorUnits,
    }

    /// GL principal (1100) against the sum of the loans' principal.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PortfolioRollup {
        /// `ok` when both sides are equal.
        status: CheckStatus,
        /// Net of account 1100, in minor units.
        gl_principal_minor: SignedMinorUnits,
        /// Sum of every loan's principal outstanding, in minor units.
        sum_of_loan_balances_minor: SignedMinorUnits,
    }

    /// One reconciliation check.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct ReconciliationCheck {
        /// Stable check name.
        #[schema(pattern = "^[a-z][a-z0-9_]*$", example = "trial_balance")]
        name: String,
        status: CheckStatus,
        /// What was compared, or what differs.
        detail: String,
    }

    /// `GET /v1/period-closes`: the tenant's lock date and its period closes.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PeriodCloseList {
        /// The latest `through_date`: no write may be dated on or before it. `null` if the
        /// tenant never closed a period.
        #[schema(format = Date, required = true, example = "2026-11-30")]
        lock_date: Option<String>,
        /// Every close, newest `through_date` first.
        items: Vec<PeriodCloseSummary>,
    }

    /// One period close as listed.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct PeriodCloseSummary {
        /// The close.
        #[schema(format = "uuid")]
        period_close_id: String,
        /// The last day it closed.
        #[schema(format = Date)]
        through_date: String,
        /// Commit timestamp, RFC 3339 UTC with `Z`.
        #[schema(format = DateTime)]
        closed_at: String,
    }

    /// `GET /v1/trial-balance`: one currency's trial balance as of a date. Amounts in minor
    /// units.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TrialBalance {
        /// The date asked for, else today (UTC): only lines effective on or before it count.
        #[schema(format = Date)]
        as_of_date: String,
        /// The currency asked for.
        currency: CurrencyCode,
        /// Every account of the chart, in code order, zero balances included.
        #[schema(min_items = 1)]
        accounts: Vec<TrialBalanceAccount>,
        /// Sum of every account's debits.
        dr_total_minor: MinorUnits,
        /// Sum of every account's credits.
        cr_total_minor: MinorUnits,
        /// Whether `dr_total_minor` equals `cr_total_minor` (always, on a whole ledger).
        balanced: bool,
    }

    /// One account of a trial balance.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct TrialBalanceAccount {
        /// GL account.
        account_code: AccountCode,
        /// Its name.
        #[schema(example = "Principal receivable")]
        account_name: String,
        normal_balance: NormalBalance,
        /// Sum of its debits.
        dr_total_minor: MinorUnits,
        /// Sum of its credits.
        cr_total_minor: MinorUnits,
        /// Balance on the account's normal side (debits − credits for a debit account, credits
        /// − debits for a credit account); may be negative.
        balance_minor: SignedMinorUnits,
    }

    /// The side on which an account's balance is normally carried.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum NormalBalance {
        Debit,
        Credit,
    }

    /// `GET /v1/health/live`.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Liveness {
        #[schema(inline)]
        status: LiveStatus,
        /// The build's version.
        #[schema(example = "0.1.0")]
        version: String,
        /// The build's git commit (`unknown` outside a checkout).
        git_sha: String,
    }

    /// Always `ok`.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum LiveStatus {
        Ok,
    }

    /// `GET /v1/health/ready` when ready.
    #[derive(ToSchema)]
    #[serde(deny_unknown_fields)]
    pub struct Readiness {
        #[schema(inline)]
        status: ReadyStatus,
    }

    /// Always `ready`.
    #[derive(ToSchema)]
    #[serde(rename_all = "snake_case")]
    pub enum ReadyStatus {
        Ready,
    }
}

// ---------------------------------------------------------------------------------------------
// 5. Reusable error responses
// ---------------------------------------------------------------------------------------------

mod responses {
    //! Error responses that read the same on every operation that can answer them.
    #![expect(
        dead_code,
        reason = "documentation-only types: never constructed, only described"
    )]

    use utoipa::ToResponse;

    /// The problem body every error response carries.
    type Problem = super::schemas::Problem<'static>;

    /// 401 `unauthenticated`: the bearer token is missing, invalid or expired.
    #[derive(ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "`Bearer`, plus `error=\"invalid_token\"` when a token was given"))
    )]
    pub struct Unauthenticated(Problem);

    /// 403 `insufficient_scope`: the token is valid but lacks the operation's scope.
    #[derive(ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("WWW-Authenticate" = String, description = "`Bearer error=\"insufficient_scope\", scope=\"<the scope>\"`"))
    )]
    pub struct Forbidden(Problem);

    /// 405 `method_not_allowed`: the path exists but not with this method.
    #[derive(ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("Allow" = String, description = "The methods the path answers: `GET, HEAD`, `POST`, or `GET, HEAD, POST` (`/v1/period-closes`)"))
    )]
    pub struct MethodNotAllowed(Problem);

    /// 413 `payload_too_large`: the body exceeds 64 KiB (4 MiB for `/v1/accruals/batch`).
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct PayloadTooLarge(Problem);

    /// 408 `request_timeout`: the request body stalled (10 s without data) or took longer than
    /// 60 s in all. Nothing was written and the key was not used; the connection is closed.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct RequestTimeout(Problem);

    /// 415 `unsupported_media_type`: `Content-Type` is not `application/json`, or the body has
    /// a `Content-Encoding` other than `identity` (bodies are never decompressed).
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct UnsupportedMediaType(Problem);

    /// 503 `overloaded` (the writer queue is full) or `not_ready` (the writer is stopped, or
    /// the disk is full): nothing was written. Or, with `HPTS_DURABILITY=replicated`,
    /// `replication_unavailable`: the write is committed on the server but the object-storage
    /// replica did not confirm it in time. Either way, retry after `Retry-After` seconds with
    /// the same `Idempotency-Key` (a committed write is then answered 200 with its stored body).
    #[derive(ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
    )]
    pub struct ServiceUnavailable(Problem);

    /// 429 `rate_limited`: this tenant's request rate limit is exceeded (only when the
    /// operator enables per-tenant rate limiting; checked right after authentication). Nothing
    /// was done; retry after `Retry-After` seconds.
    #[derive(ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("Retry-After" = u32, description = "Seconds until the tenant's bucket has a token again"))
    )]
    pub struct RateLimited(Problem);

    /// 500 `internal`: an unexpected failure; logged, no internals shown. For a write, nothing
    /// was written.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct InternalError(Problem);
}

// ---------------------------------------------------------------------------------------------
// 6. Parameters
// ---------------------------------------------------------------------------------------------

mod params {
    //! Header and query parameters shared by several operations.
    #![expect(
        dead_code,
        reason = "documentation-only types: never constructed, only described"
    )]

    use utoipa::IntoParams;

    /// The `Idempotency-Key` header of every POST.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Header)]
    pub struct IdempotencyKey {
        /// Required (else 400 `idempotency_key_missing`); 8–255 characters (else 400
        /// `idempotency_key_invalid`). Scoped per tenant, kept at least 24 h. Recommended form
        /// `<event_type>:<resource_id>:<natural_key>`.
        #[param(rename = "Idempotency-Key", inline)]
        idempotency_key: crate::http::schema::IdempotencyKeyValue,
    }

    /// Query of `GET /v1/loans/{loan_id}/balance`. Unknown or repeated parameters are 400.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct LoanBalanceQuery {
        /// Balances counting only entries effective on or before this date (`YYYY-MM-DD`).
        #[param(format = Date)]
        as_of_date: Option<String>,
    }

    /// Query of `GET /v1/accounts/{account_code}/balance`. Unknown or repeated parameters are
    /// 400.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct AccountBalanceQuery {
        /// Active ISO 4217 code of the balance (required; an unknown code is 400
        /// `unknown_currency`).
        #[param(inline)]
        currency: super::schemas::CurrencyCode,
        /// Balance layer; `SETTLED` when absent.
        #[param(inline)]
        layer: Option<super::schemas::Layer>,
        /// Balance counting only entries effective on or before this date (`YYYY-MM-DD`).
        #[param(format = Date)]
        as_of_date: Option<String>,
    }

    /// Query of `GET /v1/loans/{loan_id}/journal-entries`. Unknown or repeated parameters are
    /// 400.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct JournalEntriesQuery {
        /// Only entries effective on or after this date (`YYYY-MM-DD`).
        #[param(format = Date)]
        from_date: Option<String>,
        /// Only entries effective on or before this date (`YYYY-MM-DD`).
        #[param(format = Date)]
        to_date: Option<String>,
        /// Only entries of this event type.
        #[param(inline)]
        event_type: Option<super::schemas::EventType>,
        /// Entries per page, 1–500 (default 100); outside that range 400 `validation_failed`.
        #[param(minimum = 1, maximum = 500, default = 100)]
        page_size: Option<u32>,
        /// `next_page_token` of the previous page, used with the same filters. A modified token,
        /// or one from another tenant, loan or filter set, is 400 `invalid_page_token`.
        page_token: Option<String>,
    }

    /// Query of `GET /v1/trial-balance`. Unknown or repeated parameters are 400.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct TrialBalanceQuery {
        /// Active ISO 4217 code of the trial balance (required; an unknown code is 400
        /// `unknown_currency`). A currency the tenant never used answers zeros.
        #[param(inline)]
        currency: super::schemas::CurrencyCode,
        /// Count only lines effective on or before this date (`YYYY-MM-DD`); today (UTC) when
        /// absent.
        #[param(format = Date)]
        as_of_date: Option<String>,
    }

    /// Query of `GET /v1/exports/journal`. Unknown or repeated parameters are 400.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct ExportQuery {
        /// The file format (required; a missing or unknown one is 400 `validation_failed`).
        #[param(inline)]
        format: super::schemas::ExportFormat,
        /// Only entries effective on or after this date (`YYYY-MM-DD`).
        #[param(format = Date)]
        from_date: Option<String>,
        /// Only entries effective on or before this date (`YYYY-MM-DD`).
        #[param(format = Date)]
        to_date: Option<String>,
    }

    /// Query of `GET /v1/reconciliation/status`. Unknown or repeated parameters are 400.
    #[derive(IntoParams)]
    #[into_params(parameter_in = Query)]
    pub struct ReconciliationQuery {
        /// Limit the trial balance and the portfolio roll-up to entries effective on or before
        /// this date (`YYYY-MM-DD`); the integrity checks always cover the whole ledger.
        #[param(format = Date)]
        as_of_date: Option<String>,
    }
}

// ---------------------------------------------------------------------------------------------
// 7. Operations
// ---------------------------------------------------------------------------------------------

mod operations {
    //! One stub per route; never called. The doc comment of each is the operation's summary
    //! (first line) and description (the rest).
    #![expect(
        dead_code,
        reason = "documentation-only stubs: utoipa reads their attributes, nobody calls them"
    )]

    use super::params::{
        AccountBalanceQuery, ExportQuery, JournalEntriesQuery, LoanBalanceQuery,
        ReconciliationQuery, TrialBalanceQuery,
    };
    use super::responses::MethodNotAllowed;
    #[allow(
        clippy::wildcard_imports,
        reason = "the operations below name most of the schemas (the lint fires in some profiles only)"
    )]
    use super::schemas::*;

    // ----- Writes -----------------------------------------------------------------------------

    /// Record a disbursement
    ///
    /// Requires scope `hpts:disbursements:write`. Posts Dr 1100 principal receivable / Cr 2000
    /// disbursement clearing. The first disbursement of a loan opens it and binds its borrower
    /// and currency.
    #[utoipa::path(
        post,
        path = "/v1/disbursements",
        tag = "writes",
        request_body(content = DisbursementRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = DisbursementReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`idempotency_in_progress`: the first request with this key is still being processed.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `borrower_mismatch`, `currency_mismatch`, `amount_must_be_positive` or `loan_charged_off` (the loan is charged off).",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:disbursements:write"])),
    )]
    pub(super) fn create_disbursement() {}

    /// Record a payment
    ///
    /// Requires scope `hpts:payments:write`. Posts Dr 1000 cash for the amount and, for each
    /// non-zero part of the allocation waterfall (fees → interest → principal → suspense), Cr
    /// 1300 / 1200 / 1100 / 2100 (event type `payment_received`, `recovery_minor` `"0"`). On a
    /// charged-off loan the payment is a recovery (event type `recovery`): Dr 1000 / Cr 4200
    /// recoveries up to `charged_off_minor − recovered_minor`, any rest Cr 2100 suspense; the
    /// answer has `recovery_minor` and an allocation that is `"0"` except `suspense_minor`.
    #[utoipa::path(
        post,
        path = "/v1/payments",
        tag = "writes",
        request_body(content = PaymentRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = PaymentReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`duplicate_external_ref` (another payment of this tenant has this `external_ref`), or `idempotency_in_progress` (with `Retry-After`).",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `loan_not_found`, `borrower_mismatch`, `currency_mismatch` or `amount_must_be_positive`.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:payments:write"])),
    )]
    pub(super) fn create_payment() {}

    /// Assess a fee
    ///
    /// Requires scope `hpts:fees:write`. Posts Dr 1300 fees receivable / Cr 4100 fee income.
    #[utoipa::path(
        post,
        path = "/v1/fees",
        tag = "writes",
        request_body(content = FeeRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = FeeReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`idempotency_in_progress`: the first request with this key is still being processed.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `loan_not_found`, `currency_mismatch`, `amount_must_be_positive` or `loan_charged_off` (the loan is charged off).",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:fees:write"])),
    )]
    pub(super) fn create_fee() {}

    /// Accrue daily interest for a batch of loans
    ///
    /// Requires scope `hpts:accruals:write`. All or nothing: one journal entry with, per loan,
    /// Dr 1200 interest receivable / Cr 4000 interest income; the inputs of every line are
    /// stored. Body limit 4 MiB.
    #[utoipa::path(
        post,
        path = "/v1/accruals/batch",
        tag = "writes",
        request_body(content = AccrualBatchRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = AccrualReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. `loans[3].interest_minor`; a loan listed twice is `duplicate`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`idempotency_in_progress`: the first request with this key is still being processed.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `accrual_date`: on or before the tenant's lock date), `amount_must_be_positive`, or a refused batch: `loan_not_found`, `principal_mismatch`, `interest_mismatch`, `already_accrued`, `mixed_currency_batch` or `loan_charged_off` (field `loans[i].loan_id`) (the code of the first refused loan), with one `errors[]` item per refused loan. Nothing is written.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:accruals:write"])),
    )]
    pub(super) fn create_accrual_batch() {}

    /// Reverse a journal entry
    ///
    /// Requires scope `hpts:reversals:write`. Posts the exact mirror of the original entry's
    /// lines and undoes its effect on loan balances. An entry is reversed at most once; a
    /// reversal cannot be reversed; reverse later activity first when the reversal would make a
    /// loan balance negative. An event with live dependents is reversed only after them: a
    /// disbursement after its settlement, a fee after its waivers, a charge-off after the
    /// recoveries posted after it, and a payment or recovery after its return.
    #[utoipa::path(
        post,
        path = "/v1/reversals",
        tag = "writes",
        request_body(content = ReversalRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = ReversalReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no such journal entry in this tenant.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`already_reversed`, or `idempotency_in_progress` (with `Retry-After`).",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: an `effective_at` on or before the tenant's lock date; without `effective_at`, an entry in a closed period is reversed on the day after the lock date), `cannot_reverse_reversal`, `event_returned` (a payment or recovery with a live return) or `reversal_blocked_by_later_activity` (a loan balance would go negative, or the entry has a live dependent: a disbursement's settlement, a fee's waiver, a recovery posted after a charge-off).",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:reversals:write"])),
    )]
    pub(super) fn create_reversal() {}

    /// Settle a disbursement
    ///
    /// Requires scope `hpts:disbursements:write`. The disbursed money has left the lender's bank
    /// account: posts Dr 2000 disbursement clearing / Cr 1000 cash for the disbursement's
    /// amount (event type `disbursement_settled`). Both lines carry the loan's `loan_id` and
    /// `borrower_id`, but the loan's balances do not change. A disbursement settles at most
    /// once; while its settlement is live the disbursement cannot be reversed.
    #[utoipa::path(
        post,
        path = "/v1/disbursement-settlements",
        tag = "writes",
        request_body(content = DisbursementSettlementRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = DisbursementSettlementReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a `bank_account_ref` outside 1–64 characters of `^[A-Za-z0-9._:\\-]+$`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no disbursement with this `disbursement_event_id` in this tenant (also when the id is another kind of event).",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`already_settled` (the disbursement has a live settlement; reverse it to settle again), or `idempotency_in_progress` (with `Retry-After`).",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `event_reversed` (the disbursement is reversed), `effective_before_original` (field `effective_at`: dated before the disbursement) or `amount_out_of_range`.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:disbursements:write"])),
    )]
    pub(super) fn create_disbursement_settlement() {}

    /// Return a payment
    ///
    /// Requires scope `hpts:payments:write`. A received payment came back (ACH return, bounced
    /// cheque); event type `payment_returned`. For an ordinary payment, posts Cr 1000 cash for
    /// its amount, then Dr 1300 / 1200 / 1100 / 2100 for each non-zero part of its original
    /// allocation, then, with `nsf_fee_minor`, Dr 1300 / Cr 4100 for the fee; the loan's
    /// balances go back up by those parts (plus the fee) and `paid_total_minor` down by the
    /// amount. A returned recovery posts the mirror of the recovery's lines (Cr 1000, Dr 4200,
    /// Dr 2100) and lowers `recovered_minor`. A payment is returned at most once; a returned
    /// payment cannot be reversed until its return is reversed.
    #[utoipa::path(
        post,
        path = "/v1/payment-returns",
        tag = "writes",
        request_body(content = PaymentReturnRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = PaymentReturnReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a `return_code` not matching `^R[0-9]{2}$`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no payment (`payment_received` or `recovery` event) with this `payment_event_id` in this tenant (also when the id is another kind of event).",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`already_returned` (the payment has a live return), or `idempotency_in_progress` (with `Retry-After`).",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `event_reversed` (the payment is reversed), `loan_charged_off` (field `payment_event_id`: an ordinary payment of a loan that is charged off now, reverse the charge-off first; field `nsf_fee_minor`: a fee on a charged-off loan), `amount_must_be_positive` (`nsf_fee_minor` `\"0\"`), `effective_before_original` (field `effective_at`: dated before the payment) or `amount_out_of_range`.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:payments:write"])),
    )]
    pub(super) fn create_payment_return() {}

    /// Waive a fee
    ///
    /// Requires scope `hpts:fees:write`. Forgives all or part of an assessed fee: posts Dr 4100
    /// fee income / Cr 1300 fees receivable (event type `fee_waived`). Waivable now = the fee's
    /// amount less what live waivers already waived of it, capped at the loan's fees
    /// receivable; without `amount_minor` all of it is waived. While a waiver is live the fee
    /// cannot be reversed.
    #[utoipa::path(
        post,
        path = "/v1/fee-waivers",
        tag = "writes",
        request_body(content = FeeWaiverRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = FeeWaiverReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a missing or empty `reason`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no fee (`fee_assessed` event) with this `fee_event_id` in this tenant (also when the id is another kind of event).",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`idempotency_in_progress`: the first request with this key is still being processed.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `waiver_exceeds_outstanding` (field `amount_minor`: above the waivable amount, or nothing is waivable, e.g. on a charged-off loan), `event_reversed` (the fee is reversed), `amount_must_be_positive` or `effective_before_original` (field `effective_at`: dated before the fee).",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:fees:write"])),
    )]
    pub(super) fn create_fee_waiver() {}

    /// Charge off a loan
    ///
    /// Requires scope `hpts:chargeoffs:write`. Writes the loan off as uncollectable (event type
    /// `chargeoff`): for each non-zero balance, in this order, Dr 5000 credit losses / Cr 1100
    /// principal, Dr 4000 interest income / Cr 1200 interest, Dr 4100 fee income / Cr 1300
    /// fees. Afterwards the loan is `charged_off`, its principal, interest and fees are 0 and
    /// its balance shows `charged_off_minor`. Payments on it are then recoveries (see `POST
    /// /v1/payments`); disbursements, fees and accruals on it are refused with
    /// `loan_charged_off`. The charge-off can be reversed while no recovery posted after it is
    /// live.
    #[utoipa::path(
        post,
        path = "/v1/charge-offs",
        tag = "writes",
        request_body(content = ChargeOffRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = ChargeOffReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`already_charged_off` (the loan has a live charge-off), or `idempotency_in_progress` (with `Retry-After`).",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `loan_not_found` (field `loan_id`), `nothing_to_charge_off` (principal, interest and fees are all 0), `effective_before_loan` (field `effective_at`) or `amount_out_of_range`.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:chargeoffs:write"])),
    )]
    pub(super) fn create_charge_off() {}

    /// Post a manual adjustment
    ///
    /// Requires scope `hpts:adjustments:write`. A manual journal entry for the accountant (bank
    /// charges, clearing corrections): the request's lines in request order (sequence 1..n),
    /// with no `loan_id`, event type `manual_adjustment`, and the request's `description` as the
    /// entry's. The loan control accounts 1100, 1200, 1300 and 2100 are refused: loans are
    /// corrected with reversals and the loan lifecycle writes.
    #[utoipa::path(
        post,
        path = "/v1/adjustments",
        tag = "writes",
        request_body(content = AdjustmentRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Posted.", body = AdjustmentReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`: fewer than 2 or more than 50 `lines`, a malformed `lines[i].account_code` or `lines[i].direction`, an unknown currency with `errors[].code` `unknown_currency`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`idempotency_in_progress`: the first request with this key is still being processed.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
            (status = 422, description = "`idempotency_mismatch`, `period_closed` (field `effective_at`: on or before the tenant's lock date), `entry_unbalanced` (field `lines`: debits differ from credits in some currency), `account_not_found` (field `lines[i].account_code`: not in the chart), `account_not_adjustable` (field `lines[i].account_code`: 1100, 1200, 1300 or 2100), `amount_must_be_positive` (field `lines[i].amount_minor`) or `amount_out_of_range`.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:adjustments:write"])),
    )]
    pub(super) fn create_adjustment() {}

    /// Close a period
    ///
    /// Requires scope `hpts:periods:write`. Closes every day up to and including
    /// `through_date` for the caller's tenant: from the commit on, `through_date` is the
    /// tenant's lock date, and every write dated on or before it (`effective_at`, or an accrual
    /// batch's `accrual_date`) is 422 `period_closed`; a reversal without `effective_at` of an
    /// entry in a closed period is dated the day after the lock date. The close stores the trial
    /// balance as of `through_date` of every currency the tenant has posted in, which the
    /// reconciliation check `closed_periods_unchanged` recomputes. It posts no journal entry and
    /// sends no webhook. A closed period cannot be reopened.
    #[utoipa::path(
        post,
        path = "/v1/period-closes",
        tag = "writes",
        request_body(content = PeriodCloseRequest, content_type = "application/json"),
        responses(
            (status = 201, description = "Closed.", body = PeriodCloseReceipt),
            (status = 400, description = "`validation_failed` (every failing field in `errors[]`, e.g. a missing or malformed `through_date`), `malformed_json`, `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 409, description = "`period_already_closed` (field `through_date`: on or before the tenant's lock date), or `idempotency_in_progress` (with `Retry-After`).",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying (`idempotency_in_progress` only)"))),
            (status = 422, description = "`idempotency_mismatch` or `close_date_not_past` (field `through_date`: today or later, UTC).",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:periods:write"])),
    )]
    pub(super) fn create_period_close() {}

    // ----- Reads ------------------------------------------------------------------------------

    /// Get a loan's balances
    ///
    /// Requires scope `hpts:balances:read`. Current balances, or as of an effective date.
    #[utoipa::path(
        get,
        path = "/v1/loans/{loan_id}/balance",
        tag = "reads",
        params(
            ("loan_id" = String, Path, format = "uuid", description = "The loan (any case)."),
            LoanBalanceQuery,
        ),
        responses(
            (status = 200, description = "The loan's balances.", body = LoanBalance),
            (status = 400, description = "`validation_failed`: a malformed `loan_id` or `as_of_date`, or an unknown or repeated query parameter.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no such loan in this tenant.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:balances:read"])),
    )]
    pub(super) fn get_loan_balance() {}

    /// List a loan's journal entries
    ///
    /// Requires scope `hpts:ledger:read`. Keyset pages in posting order; follow
    /// `next_page_token` until it is `null`.
    #[utoipa::path(
        get,
        path = "/v1/loans/{loan_id}/journal-entries",
        tag = "reads",
        params(
            ("loan_id" = String, Path, format = "uuid", description = "The loan (any case)."),
            JournalEntriesQuery,
        ),
        responses(
            (status = 200, description = "One page of entries.", body = JournalEntryPage),
            (status = 400, description = "`validation_failed` (a malformed `loan_id`, date or `event_type`, `page_size` outside 1–500, an unknown or repeated query parameter) or `invalid_page_token`.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no such loan in this tenant.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:ledger:read"])),
    )]
    pub(super) fn list_loan_journal_entries() {}

    /// Get a GL account's balance
    ///
    /// Requires scope `hpts:balances:read`. The balance of one account of the chart, in one
    /// currency and layer.
    #[utoipa::path(
        get,
        path = "/v1/accounts/{account_code}/balance",
        tag = "reads",
        params(
            ("account_code" = inline(AccountCode), Path,
                description = "A code of the chart of accounts: 1000, 1100, 1200, 1300, 2000, 2100, 4000, 4100, 4200 or 5000."),
            AccountBalanceQuery,
        ),
        responses(
            (status = 200, description = "The account's balance.", body = AccountBalance),
            (status = 400, description = "`validation_failed`: an `account_code` not of four digits, a missing or malformed `currency`, an unknown `layer`, a malformed `as_of_date`, or an unknown or repeated query parameter.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no such account in the chart.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:balances:read"])),
    )]
    pub(super) fn get_account_balance() {}

    /// Get a journal entry
    ///
    /// Requires scope `hpts:ledger:read`. The entry with its lines; `posted_at` is identical to
    /// the write answer's.
    #[utoipa::path(
        get,
        path = "/v1/journal-entries/{journal_entry_id}",
        tag = "reads",
        params(
            ("journal_entry_id" = String, Path, format = "uuid", description = "The entry (any case)."),
        ),
        responses(
            (status = 200, description = "The entry.", body = JournalEntry),
            (status = 400, description = "`validation_failed`: a malformed `journal_entry_id`, or any query parameter.",
                body = Problem, content_type = "application/problem+json"),
            (status = 404, description = "`not_found`: no such entry in this tenant.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:ledger:read"])),
    )]
    pub(super) fn get_journal_entry() {}

    /// Get the reconciliation status
    ///
    /// Requires scope `hpts:reconciliation:read`. For the caller's tenant, on one read snapshot
    /// (never blocks writers): trial balance per currency, every entry balanced, loan
    /// sub-ledger against the GL control accounts, materialised balances against a replay of
    /// the lines, the hash chain, the append-only guard, and every period close's stored trial
    /// balance against one recomputed as of its `through_date`.
    #[utoipa::path(
        get,
        path = "/v1/reconciliation/status",
        tag = "reads",
        params(ReconciliationQuery),
        responses(
            (status = 200, description = "The checks and their outcome.", body = ReconciliationStatus),
            (status = 400, description = "`validation_failed`: a malformed `as_of_date`, or an unknown or repeated query parameter.",
                body = Problem, content_type = "application/problem+json"),
        ),
        security(("bearer" = ["hpts:reconciliation:read"])),
    )]
    pub(super) fn get_reconciliation_status() {}

    /// List the period closes
    ///
    /// Requires scope `hpts:ledger:read`. The tenant's lock date (the latest `through_date`, or
    /// `null`) and every period close, newest first. No query parameters.
    #[utoipa::path(
        get,
        path = "/v1/period-closes",
        tag = "reads",
        responses(
            (status = 200, description = "The lock date and the closes.", body = PeriodCloseList),
            (status = 400, description = "`validation_failed`: any query parameter.",
                body = Problem, content_type = "application/problem+json"),
            (status = 503, description = "`overloaded`: no read connection was free within 1 s.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        ),
        security(("bearer" = ["hpts:ledger:read"])),
    )]
    pub(super) fn list_period_closes() {}

    /// Get the trial balance
    ///
    /// Requires scope `hpts:balances:read`. Every account of the chart in code order, zero
    /// balances included, with its debit and credit totals and its balance on its normal side,
    /// over the tenant's lines in one currency effective on or before `as_of_date` (default
    /// today, UTC), on one read snapshot.
    #[utoipa::path(
        get,
        path = "/v1/trial-balance",
        tag = "reads",
        params(TrialBalanceQuery),
        responses(
            (status = 200, description = "The trial balance.", body = TrialBalance),
            (status = 400, description = "`validation_failed`: a missing, malformed or unknown (`unknown_currency`) `currency`, a malformed `as_of_date`, or an unknown or repeated query parameter.",
                body = Problem, content_type = "application/problem+json"),
            (status = 503, description = "`overloaded`: no read connection was free within 1 s.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        ),
        security(("bearer" = ["hpts:balances:read"])),
    )]
    pub(super) fn get_trial_balance() {}

    /// Export the journal
    ///
    /// Requires scope `hpts:ledger:read`. Streams the caller's ledger as a plain-text
    /// accounting journal (`text/plain; charset=utf-8`) in the Beancount 3 or hledger format:
    /// every chart account under a hierarchical name (e.g. `Assets:Loans:Principal-Receivable`)
    /// with its code; one transaction per journal entry, dated `effective_at`, with the entry id
    /// and event type; amounts in major units by the currency's ISO 4217 exponent; and, for
    /// each period close, balance assertions of every account as of its `through_date`. A
    /// whole-tenant export passes `bean-check` and `hledger check`, and the balances they report
    /// equal `GET /v1/trial-balance`. A heavy read: bounded per tenant, and stopped when the
    /// client disconnects.
    #[utoipa::path(
        get,
        path = "/v1/exports/journal",
        tag = "reads",
        params(ExportQuery),
        responses(
            (status = 200, description = "The journal file, streamed (`text/plain; charset=utf-8`).", body = String, content_type = "text/plain"),
            (status = 400, description = "`validation_failed`: a missing or unknown `format`, a malformed `from_date` or `to_date`, or an unknown or repeated query parameter.",
                body = Problem, content_type = "application/problem+json"),
            (status = 503, description = "`overloaded`: the tenant already runs its share of heavy reads, or no read connection was free within 1 s.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
        ),
        security(("bearer" = ["hpts:ledger:read"])),
    )]
    pub(super) fn export_journal() {}

    // ----- Operations (no token) --------------------------------------------------------------

    /// Liveness
    ///
    /// No authentication. 200 while the process serves HTTP.
    #[utoipa::path(
        get,
        path = "/v1/health/live",
        tag = "operations",
        responses(
            (status = 200, description = "The process is up.", body = Liveness),
            (status = 405, response = MethodNotAllowed),
        ),
    )]
    pub(super) fn health_live() {}

    /// Readiness
    ///
    /// No authentication. 200 when the writer runs and migrations are applied (and, with
    /// `HPTS_DURABILITY=replicated`, the last replication sync succeeded), else 503.
    #[utoipa::path(
        get,
        path = "/v1/health/ready",
        tag = "operations",
        responses(
            (status = 200, description = "Ready to serve writes.", body = Readiness),
            (status = 405, response = MethodNotAllowed),
            (status = 503, description = "`not_ready`: the writer is not running, or (replicated durability) Litestream's replica cannot confirm writes.",
                body = Problem, content_type = "application/problem+json",
                headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
        ),
    )]
    pub(super) fn health_ready() {}

    /// Prometheus metrics
    ///
    /// No authentication. The Prometheus text exposition format.
    #[utoipa::path(
        get,
        path = "/metrics",
        tag = "operations",
        responses(
            (status = 200, description = "Metrics in the Prometheus text format.", body = String, content_type = "text/plain"),
        ),
    )]
    pub(super) fn metrics() {}

    /// This document
    ///
    /// No authentication. The `OpenAPI` 3.1 document of the whole API; Swagger UI at `/docs/`.
    #[utoipa::path(
        get,
        path = "/openapi.json",
        tag = "operations",
        responses(
            (status = 200, description = "The OpenAPI document.", body = serde_json::Value, content_type = "application/json"),
            (status = 405, response = MethodNotAllowed),
        ),
    )]
    pub(super) fn openapi_document() {}
}
