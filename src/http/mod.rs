//! The HTTP edge (actix-web): the route table, shared state, authentication of requests, the
//! problem+json error table ([`problem`]), body parsing ([`body`], [`validate`]), the shared
//! write path ([`write`]), trace context ([`trace`]) and thin handlers ([`handlers`]).
//! Handlers parse into domain types, check scope, call the store, and shape the answer.

pub mod body;
pub mod dto;
pub mod handlers;
pub mod page_token;
pub mod problem;
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
}

impl AppState {
    /// Verifies the bearer token and the operation's scope; tags the request span with the tenant.
    pub async fn authenticate(
        &self,
        req: &HttpRequest,
        scope: Scope,
    ) -> Result<Principal, ApiError> {
        let header = req
            .headers()
            .get(actix_web::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        let principal = self
            .auth
            .authenticate(header)
            .instrument(tracing::debug_span!("auth.verify"))
            .await?;
        if let Some(span) = req.extensions().get::<tracing_actix_web::RootSpan>() {
            span.record("tenant_id", principal.tenant.to_string());
        }
        if !principal.scopes.contains(scope) {
            return Err(ApiError::insufficient_scope(scope));
        }
        Ok(principal)
    }
}

async fn method_not_allowed() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(
        Code::MethodNotAllowed,
        "this method is not allowed on this resource",
    ))
}

/// Unknown routes: 404 problem+json.
pub async fn unknown_route() -> Result<HttpResponse, ApiError> {
    Err(ApiError::new(Code::NotFound, "no such route"))
}

/// THE route table.
pub fn routes(cfg: &mut ServiceConfig) {
    use handlers::{
        accounts, accruals, disbursements, fees, health, journal_entries, loans, payments,
        reconciliation, reversals,
    };
    let resource =
        |path: &str| web::resource(path.to_owned()).default_service(web::to(method_not_allowed));
    cfg
        // Health: no authentication.
        .service(resource("/v1/health/live").route(web::get().to(health::live)))
        .service(resource("/v1/health/ready").route(web::get().to(health::ready)))
        // Writes: each posts one business event and one balanced journal entry.
        .service(resource("/v1/disbursements").route(web::post().to(disbursements::create)))
        .service(resource("/v1/payments").route(web::post().to(payments::create)))
        .service(resource("/v1/fees").route(web::post().to(fees::create)))
        .service(resource("/v1/accruals/batch").route(web::post().to(accruals::create_batch)))
        .service(resource("/v1/reversals").route(web::post().to(reversals::create)))
        // Reads: tenant-scoped; another tenant's resource is a 404.
        .service(resource("/v1/loans/{loan_id}/balance").route(web::get().to(loans::balance)))
        .service(resource("/v1/loans/{loan_id}/journal-entries").route(web::get().to(loans::journal_entries)))
        .service(resource("/v1/accounts/{account_code}/balance").route(web::get().to(accounts::balance)))
        .service(
            resource("/v1/journal-entries/{journal_entry_id}")
                .route(web::get().to(journal_entries::show)),
        )
        .service(resource("/v1/reconciliation/status").route(web::get().to(reconciliation::status_report)));
}
