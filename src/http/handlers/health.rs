//! `GET /v1/health/live` (process up) and `GET /v1/health/ready` (writer running, migrations
//! applied, and with replicated acknowledgements the replica confirming). No authentication.

use actix_web::HttpResponse;
use actix_web::web::Data;
use serde_json::json;

use crate::http::AppState;
use crate::http::problem::{ApiError, Code};

/// Build version and commit.
pub fn version_info() -> (&'static str, &'static str) {
    (env!("CARGO_PKG_VERSION"), env!("HPTS_GIT_SHA"))
}

/// Liveness.
pub async fn live() -> HttpResponse {
    let (version, git_sha) = version_info();
    HttpResponse::Ok().json(json!({ "status": "ok", "version": version, "git_sha": git_sha }))
}

/// Readiness.
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
        Ok(HttpResponse::Ok().json(json!({ "status": "ready" })))
    }
}
