//! `GET /v1/journal-entries/{journal_entry_id}` (`hpts:ledger:read`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};

use crate::auth::Scope;
use crate::http::AppState;
use crate::http::dto::JournalEntry;
use crate::http::handlers::loans::path_id;
use crate::http::handlers::query_params;
use crate::http::problem::{ApiError, Problem};
use crate::ledger::ids::EntryId;

/// Get a journal entry
///
/// Requires scope `hpts:ledger:read`. The entry with its lines; `posted_at` is identical to
/// the write answer's.
#[utoipa::path(
    get,
    path = "/v1/journal-entries/{journal_entry_id}",
    operation_id = "get_journal_entry",
    tag = "reads",
    params(
        ("journal_entry_id" = String, Path, format = "uuid", description = "The entry (any case)."),
    ),
    responses(
        (status = 200, description = "The entry.", body = crate::http::dto::JournalEntry),
        (status = 400, description = "`validation_failed`: a malformed `journal_entry_id`, or any query parameter.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such entry in this tenant.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:ledger:read"])),
)]
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
