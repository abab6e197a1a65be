//! `GET /v1/loans/{loan_id}/balance[?as_of_date=]` (`hpts:balances:read`) and
//! `GET /v1/loans/{loan_id}/journal-entries` (`hpts:ledger:read`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use utoipa::IntoParams;

use crate::auth::Scope;
use crate::clock::format_date;
use crate::http::dto::{JournalEntry, JournalEntryPage, LoanBalance};
use crate::http::handlers::Query;
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::http::{AppState, page_token};
use crate::ledger::commands::EventType;
use crate::ledger::ids::LoanId;
use crate::store::EntryPageQuery;

/// Parses a path id; a malformed one is 400 naming the parameter.
pub fn path_id<T>(
    raw: &str,
    name: &'static str,
    parse: fn(&str) -> Option<T>,
) -> Result<T, ApiError> {
    parse(raw).ok_or_else(|| {
        ApiError::validation(vec![FieldError::new(
            name,
            "invalid_format",
            "must be a UUID",
        )])
    })
}

/// Get a loan's balances
///
/// Requires scope `hpts:balances:read`. Current balances, or as of an effective date.
#[utoipa::path(
    get,
    path = "/v1/loans/{loan_id}/balance",
    operation_id = "get_loan_balance",
    tag = "reads",
    params(
        ("loan_id" = String, Path, format = "uuid", description = "The loan (any case)."),
        LoanBalanceQuery,
    ),
    responses(
        (status = 200, description = "The loan's balances.", body = crate::http::dto::LoanBalance),
        (status = 400, description = "`validation_failed`: a malformed `loan_id` or `as_of_date`, or an unknown or repeated query parameter.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such loan in this tenant.",
            body = Problem, content_type = "application/problem+json"),
    ),
    security(("bearer" = ["hpts:balances:read"])),
)]
pub async fn balance(
    req: HttpRequest,
    path: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::BalancesRead).await?;
    let loan_id = path_id(&path, "loan_id", LoanId::parse)?;
    let mut query = Query::parse(&req, &["as_of_date"])?;
    let as_of = query.date("as_of_date");
    query.finish()?;
    let view = state
        .store
        .loan_balance(principal.tenant, loan_id, as_of)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let as_of_date = format_date(as_of.unwrap_or_else(|| state.sources.clock.now().date()));
    Ok(HttpResponse::Ok().json(LoanBalance::new(view, as_of_date)))
}

/// Whether `t` is an event type the API knows (SPEC §7): one a write posts, or a reserved one.
fn known_event_type(t: &str) -> bool {
    EventType::parse(t).is_some() || EventType::RESERVED.contains(&t)
}

/// List a loan's journal entries
///
/// Requires scope `hpts:ledger:read`. Keyset pages in posting order; follow
/// `next_page_token` until it is `null`.
#[utoipa::path(
    get,
    path = "/v1/loans/{loan_id}/journal-entries",
    operation_id = "list_loan_journal_entries",
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
pub async fn journal_entries(
    req: HttpRequest,
    path: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::LedgerRead).await?;
    let loan_id = path_id(&path, "loan_id", LoanId::parse)?;
    let mut query = Query::parse(
        &req,
        &[
            "from_date",
            "to_date",
            "event_type",
            "page_size",
            "page_token",
        ],
    )?;
    let from_date = query.date("from_date");
    let to_date = query.date("to_date");
    let event_type = query.get("event_type").map(str::to_owned);
    if event_type.as_deref().is_some_and(|t| !known_event_type(t)) {
        query.fail(FieldError::new(
            "event_type",
            "invalid_value",
            format!(
                "must be one of: {}, {}",
                EventType::WIRE.join(", "),
                EventType::RESERVED.join(", ")
            ),
        ));
    }
    let page_size = match query
        .get("page_size")
        .map(|s| (s.parse::<u32>(), s.starts_with('+')))
    {
        None => 100,
        Some((Ok(n), false)) if (1..=500).contains(&n) => n,
        Some(_) => {
            query.fail(FieldError::new(
                "page_size",
                "out_of_range",
                "must be an integer from 1 to 500",
            ));
            100
        }
    };
    let page_token = query.get("page_token").map(str::to_owned);
    query.finish()?;
    let scope = format!(
        "{}|{loan_id}|{}|{}|{}",
        principal.tenant,
        from_date.map(format_date).unwrap_or_default(),
        to_date.map(format_date).unwrap_or_default(),
        event_type.as_deref().unwrap_or_default()
    );
    let key = state.store.page_token_key();
    let after_seq = match page_token {
        None => 0,
        Some(t) => page_token::decode(key, &scope, &t)?,
    };
    let page = state
        .store
        .loan_entries(
            principal.tenant,
            loan_id,
            EntryPageQuery {
                from_date,
                to_date,
                event_type,
                page_size,
                after_seq,
            },
        )
        .await?
        .ok_or_else(ApiError::not_found)?;
    let items: Vec<JournalEntry> = page.items.into_iter().map(JournalEntry::from).collect();
    let next_page_token = page
        .next_after_seq
        .map(|seq| page_token::encode(key, &scope, seq))
        .transpose()?;
    Ok(HttpResponse::Ok().json(JournalEntryPage {
        items,
        next_page_token,
    }))
}

// The query string, described for the `OpenAPI` document.

/// Query of `GET /v1/loans/{loan_id}/balance`. Unknown or repeated parameters are 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct LoanBalanceQuery {
    /// Balances counting only entries effective on or before this date (`YYYY-MM-DD`).
    #[param(format = Date)]
    as_of_date: Option<String>,
}

/// Query of `GET /v1/loans/{loan_id}/journal-entries`. Unknown or repeated parameters are
/// 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct JournalEntriesQuery {
    /// Only entries effective on or after this date (`YYYY-MM-DD`).
    #[param(format = Date)]
    from_date: Option<String>,
    /// Only entries effective on or before this date (`YYYY-MM-DD`).
    #[param(format = Date)]
    to_date: Option<String>,
    /// Only entries of this event type.
    #[param(inline)]
    event_type: Option<EventType>,
    /// Entries per page, 1–500 (default 100); outside that range 400 `validation_failed`.
    #[param(minimum = 1, maximum = 500, default = 100)]
    page_size: Option<u32>,
    /// `next_page_token` of the previous page, used with the same filters. A modified token,
    /// or one from another tenant, loan or filter set, is 400 `invalid_page_token`.
    page_token: Option<String>,
}
