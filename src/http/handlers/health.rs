//! `GET /v1/health/live` (process up) and `GET /v1/health/ready` (writer running, migrations
//! applied, and with replicated acknowledgements the replica confirming). No authentication.

use actix_web::HttpResponse;
use actix_web::web::Data;

use crate::http::AppState;
use crate::http::dto::{Liveness, Readiness};
use crate::http::problem::{ApiError, Code, Problem};

/// Build version and commit.
pub fn version_info() -> (&'static str, &'static str) {
    (env!("CARGO_PKG_VERSION"), env!("HPTS_GIT_SHA"))
}

/// Liveness
///
/// No authentication. 200 while the process serves HTTP.
#[utoipa::path(
    get,
    path = "/v1/health/live",
    operation_id = "health_live",
    tag = "operations",
    responses(
        (status = 200, description = "The process is up.", body = Liveness),
        (status = 405, response = crate::http::openapi::responses::MethodNotAllowed),
    ),
)]
pub async fn live() -> HttpResponse {
    let (version, git_sha) = version_info();
    HttpResponse::Ok().json(Liveness::new(version, git_sha))
}

/// Readiness
///
/// No authentication. 200 when the writer runs and migrations are applied (and, with
/// `HPTS_DURABILITY=replicated`, the last replication sync succeeded), else 503.
#[utoipa::path(
    get,
    path = "/v1/health/ready",
    operation_id = "health_ready",
    tag = "operations",
    responses(
        (status = 200, description = "Ready to serve writes.", body = Readiness),
        (status = 405, response = crate::http::openapi::responses::MethodNotAllowed),
        (status = 503, description = "`not_ready`: the writer is not running, or (replicated durability) Litestream's replica cannot confirm writes.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before asking again"))),
    ),
)]
pub async fn ready(state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    if !state.store.is_ready() {
        Err(ApiError::new(Code::NotReady, "the writer is not running").retry_after(1))
    } else if !state.store.accepts_writes() {
        Err(ApiError::new(
            Code::NotReady,
            "replication is unavailable: Litestream's replica cannot confirm writes",
        )
        .retry_after(2))
    } else {
        Ok(HttpResponse::Ok().json(Readiness::READY))
    }
}
