//! `GET /v1/journal-entries/{journal_entry_id}` (`hpts:ledger:read`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};

use crate::auth::Scope;
use crate::http::AppState;
use crate::http::dto::JournalEntry;
use crate::http::handlers::loans::path_id;
use crate::http::handlers::query_params;
use crate::http::problem::ApiError;
use crate::ledger::ids::EntryId;

/// Handler.
pub async fn show(
    req: HttpRequest,
    path: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::LedgerRead).await?;
    let entry_id = path_id(&path, "journal_entry_id", EntryId::parse)?;
    query_params(&req, &[])?;
    let view = state
        .store
        .journal_entry(principal.tenant, entry_id)
        .await?
        .ok_or_else(ApiError::not_found)?;
    Ok(HttpResponse::Ok().json(JournalEntry::from(view)))
}
