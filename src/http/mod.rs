//! The HTTP edge (actix-web): the route table, shared state, authentication of requests, the
//! problem+json error table ([`problem`]), request-head rules ([`edge`]: repeated headers,
//! `HEAD`, unknown methods), body parsing ([`body`], [`validate`]), the shared write path
//! ([`mod@write`]), trace context ([`trace`]) and thin handlers ([`handlers`]).
//! Handlers parse into domain types, check scope, call the store, and shape the answer.

pub mod body;
pub mod dto;
pub mod edge;
pub mod handlers;
pub mod metrics;
pub mod openapi;
pub mod page_token;
pub mod problem;
pub mod rate_limit;
pub mod receipts;
pub mod schema;
pub mod trace;
pub mod validate;
pub mod write;

use std::sync::Arc;

use actix_web::web::{self, ServiceConfig};
use actix_web::{HttpMessage, HttpRequest, HttpResponse};
use tracing::Instrument;

use crate::auth::{Authenticator, Principal, Scope};
use crate::clock::Sources;
use crate::store::Store;
use problem::{ApiError, Code};
use write::InFlight;

/// What every handler can reach.
pub struct AppState {
    /// The ledger store.
    pub store: Store,
    /// Token verification.
    pub auth: Arc<Authenticator>,
    /// Idempotency keys being processed right now.
    pub in_flight: Arc<InFlight>,
    /// Clock and ids.
    pub sources: Sources,
    /// Per-tenant rate limiting, when configured.
    pub rate_limiter: Option<rate_limit::RateLimiter>,
}

impl AppState {
    /// Verifies the bearer token and the operation's scope; tags the request span with the tenant.
    pub async fn authenticate(
        &self,
        req: &HttpRequest,
        scope: Scope,
    ) -> Result<Principal, ApiError> {
        // A repeated `Authorization` never gets here: the edge refuses it (`duplicate_header`).
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = self
            .auth
            .authenticate(header)
            .instrument(tracing::debug_span!("auth"))
            .await?;
        if let Some(span) = req.extensions().get::<tracing_actix_web::RootSpan>() {
            span.record("tenant_id", principal.tenant.to_string());
            crate::telemetry::set_str_attribute(
                span,
                "hpts.tenant_id",
                principal.tenant.to_string(),
            );
        }
        if let Some(limiter) = &self.rate_limiter
            && let Err(wait) = limiter.check(principal.tenant, std::time::Instant::now())
        {
            return Err(ApiError::new(
                Code::RateLimited,
                "this tenant's request rate limit is exceeded",
            )
            .retry_after(wait));
        }
        if !principal.scopes.contains(scope) {
            return Err(ApiError::insufficient_scope(scope));
        }
        Ok(principal)
    }
}

fn method_not_allowed(allow: &'static str) -> ApiError {
    ApiError {
        allow: Some(allow),
        ..ApiError::new(
            Code::MethodNotAllowed,
            "this method is not allowed on this resource",
        )
    }
}

/// Unknown routes: 404 problem+json.
pub async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(Code::NotFound, "no such route"))
}

/// The `Allow` header of a GET resource: `HEAD` is answered wherever `GET` is (the edge serves
/// it as `GET`, see [`edge`]).
pub const ALLOW_GET: &str = "GET, HEAD";

/// A resource answering `method` with `handler`, and 405 (with `Allow`) to any other method.
fn endpoint<F, Args>(path: &str, method: &'static str, handler: F) -> actix_web::Resource
where
    F: actix_web::Handler<Args>,
    Args: actix_web::FromRequest + 'static,
    F::Output: actix_web::Responder + 'static,
{
    let (route, allow) = if method == "POST" {
        (web::post(), "POST")
    } else {
        (web::get(), ALLOW_GET)
    };
    web::resource(path.to_owned())
        .route(route.to(handler))
        .default_service(web::to(move || async move {
            Err::<HttpResponse, _>(method_not_allowed(allow))
        }))
}

/// A POST resource served by the shared write path with a route-specific body parser.
fn write_endpoint(
    path: &str,
    route: write::WriteRoute,
    parse: fn(&serde_json::Value) -> Result<crate::ledger::commands::Command, ApiError>,
) -> actix_web::Resource {
    endpoint(
        path,
        "POST",
        move |req: HttpRequest, payload: web::Payload, state: web::Data<AppState>| {
            write::handle_write(req, payload, state, route, parse)
        },
    )
}

/// THE route table.
pub fn routes(cfg: &mut ServiceConfig) {
    use handlers::{
        accounts, accruals, adjustments, charge_offs, disbursements, exports, fee_waivers, fees,
        health, journal_entries, loans, payment_returns, payments, period_closes, reconciliation,
        reversals, settlements, trial_balance,
    };
    cfg
        // Health: no authentication.
        .service(endpoint("/v1/health/live", "GET", health::live))
        .service(endpoint("/v1/health/ready", "GET", health::ready))
        // Writes: each posts one business event and one balanced journal entry.
        .service(write_endpoint(
            "/v1/disbursements",
            disbursements::ROUTE,
            disbursements::parse,
        ))
        .service(write_endpoint(
            "/v1/payments",
            payments::ROUTE,
            payments::parse,
        ))
        .service(write_endpoint("/v1/fees", fees::ROUTE, fees::parse))
        .service(write_endpoint(
            "/v1/accruals/batch",
            accruals::ROUTE,
            accruals::parse,
        ))
        .service(write_endpoint(
            "/v1/reversals",
            reversals::ROUTE,
            reversals::parse,
        ))
        // The loan lifecycle (SPEC §6c).
        .service(write_endpoint(
            "/v1/disbursement-settlements",
            settlements::ROUTE,
            settlements::parse,
        ))
        .service(write_endpoint(
            "/v1/payment-returns",
            payment_returns::ROUTE,
            payment_returns::parse,
        ))
        .service(write_endpoint(
            "/v1/fee-waivers",
            fee_waivers::ROUTE,
            fee_waivers::parse,
        ))
        .service(write_endpoint(
            "/v1/charge-offs",
            charge_offs::ROUTE,
            charge_offs::parse,
        ))
        .service(write_endpoint(
            "/v1/adjustments",
            adjustments::ROUTE,
            adjustments::parse,
        ))
        // Month-end (SPEC §6d): POST closes a period, GET lists the closes.
        .service(
            web::resource("/v1/period-closes")
                .route(web::post().to(
                    |req: HttpRequest, payload: web::Payload, state: web::Data<AppState>| {
                        write::handle_write(
                            req,
                            payload,
                            state,
                            period_closes::ROUTE,
                            period_closes::parse,
                        )
                    },
                ))
                .route(web::get().to(period_closes::list))
                .default_service(web::to(|| async {
                    Err::<HttpResponse, _>(method_not_allowed("GET, HEAD, POST"))
                })),
        )
        .service(endpoint("/v1/trial-balance", "GET", trial_balance::show))
        .service(endpoint("/v1/exports/journal", "GET", exports::journal))
        // Reads: tenant-scoped; another tenant's resource is a 404.
        .service(endpoint(
            "/v1/loans/{loan_id}/balance",
            "GET",
            loans::balance,
        ))
        .service(endpoint(
            "/v1/loans/{loan_id}/journal-entries",
            "GET",
            loans::journal_entries,
        ))
        .service(endpoint(
            "/v1/accounts/{account_code}/balance",
            "GET",
            accounts::balance,
        ))
        .service(endpoint(
            "/v1/journal-entries/{journal_entry_id}",
            "GET",
            journal_entries::show,
        ))
        .service(endpoint(
            "/v1/reconciliation/status",
            "GET",
            reconciliation::status_report,
        ))
        // The API's own description: /openapi.json and Swagger UI at /docs.
        .configure(openapi::configure);
}
