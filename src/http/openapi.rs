//! The frame of the `OpenAPI` 3.1 document of the whole API (`GET /openapi.json`) and Swagger UI
//! (`/docs`). The document is generated from the types and handlers that serve the wire:
//!
//! - every operation is a `#[utoipa::path]` on its handler in [`crate::http::handlers`] (for a
//!   write, on its body parser `parse`), listed in `ApiDoc`; only `/metrics` (answered by the
//!   Prometheus middleware) and this document are stubs here;
//! - the schemas are derived next to what they describe: the read answers in
//!   [`crate::http::dto`] (on the types the handlers serialise), the problem body and its codes in [`crate::http::problem`] (from the
//!   one error table), the write answers in [`crate::http::receipts`], the request bodies and
//!   query strings next to the handler that parses them (the handlers parse JSON by hand,
//!   [`crate::http::validate`], so that every failing field is reported; those types describe
//!   what the parser accepts), every closed enum from its one wire list and every wire rule
//!   once, in [`crate::http::schema`]; `ApiDoc` collects the component schemas from the
//!   operations.
//!
//! The contract test `tests/api/openapi.rs` calls every endpoint for real and validates each
//! answer against the schema documented for its operation, status and content type.
//!
//! This file holds:
//!
//! 1. [`configure`]: the routes `GET /openapi.json` (no authentication) and `/docs` (Swagger UI;
//!    `/docs` redirects to `/docs/`). [`document`] builds the document.
//! 2. `ApiDoc`: the document root — info, tags and the list of operations.
//! 3. `CommonParts`: a modifier for what is the same on many operations — the bearer (JWT)
//!    security scheme, the answers every authenticated operation and every POST share, the
//!    `Idempotency-Key` header, the 200 replay and the `traceparent` header on every response.
//! 4. `responses`: reusable error responses (400, 401, 403, 405, 408, 409, 413, 415, 429, 500,
//!    503).
//! 5. `params`: the `Idempotency-Key` header.
//! 6. `operations`: the stubs of `/metrics` and `/openapi.json`.

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
        crate::http::handlers::disbursements::parse,
        crate::http::handlers::payments::parse,
        crate::http::handlers::fees::parse,
        crate::http::handlers::accruals::parse,
        crate::http::handlers::reversals::parse,
        crate::http::handlers::settlements::parse,
        crate::http::handlers::payment_returns::parse,
        crate::http::handlers::fee_waivers::parse,
        crate::http::handlers::charge_offs::parse,
        crate::http::handlers::adjustments::parse,
        crate::http::handlers::period_closes::parse,
        crate::http::handlers::loans::balance,
        crate::http::handlers::loans::journal_entries,
        crate::http::handlers::accounts::balance,
        crate::http::handlers::journal_entries::show,
        crate::http::handlers::reconciliation::status_report,
        crate::http::handlers::period_closes::list,
        crate::http::handlers::trial_balance::show,
        crate::http::handlers::exports::journal,
        crate::http::handlers::health::live,
        crate::http::handlers::health::ready,
        operations::metrics,
        operations::openapi_document,
    ),
    components(
        responses(
            responses::InvalidWrite,
            responses::WriteInProgress,
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

/// The reusable answers every POST adds (a POST that documents its own 400 or 409, naming more
/// codes, keeps it).
const WRITES: [(&str, &str); 6] = [
    ("400", "InvalidWrite"),
    ("409", "WriteInProgress"),
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
// 4. Reusable error responses
// ---------------------------------------------------------------------------------------------

pub(crate) mod responses {
    //! Error responses that read the same on every operation that can answer them.
    #![expect(
        dead_code,
        reason = "documentation-only types: never constructed, only described"
    )]

    use utoipa::ToResponse;

    /// The problem body every error response carries.
    type Problem = crate::http::problem::Problem<'static>;

    /// 400 `validation_failed` (every failing field in `errors[]`), `malformed_json`,
    /// `idempotency_key_missing`, `idempotency_key_invalid` or `duplicate_header`.
    #[derive(ToResponse)]
    #[response(content_type = "application/problem+json")]
    pub struct InvalidWrite(Problem);

    /// 409 `idempotency_in_progress`: the first request with this key is still being processed.
    #[derive(ToResponse)]
    #[response(
        content_type = "application/problem+json",
        headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))
    )]
    pub struct WriteInProgress(Problem);

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
// 5. Parameters
// ---------------------------------------------------------------------------------------------

pub(crate) mod params {
    //! The `Idempotency-Key` header, added to every POST by [`super::CommonParts`].
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
}

// ---------------------------------------------------------------------------------------------
// 6. Operations
// ---------------------------------------------------------------------------------------------

mod operations {
    //! The two routes without a handler of their own in `src/http/handlers`: `/metrics` (answered
    //! by the Prometheus middleware) and this document. Stubs, never called; every other
    //! operation is documented on its handler. The doc comment of each is the operation's summary
    //! (first line) and description (the rest).
    #![expect(
        dead_code,
        reason = "documentation-only stubs: utoipa reads their attributes, nobody calls them"
    )]

    use super::responses::MethodNotAllowed;

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
