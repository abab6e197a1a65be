//! `GET /v1/loans/{loan_id}/balance[?as_of_date=]` (`hpts:balances:read`) and
//! `GET /v1/loans/{loan_id}/journal-entries` (`hpts:ledger:read`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};

use crate::auth::Scope;
use crate::clock::{format_date, parse_date};
use crate::http::AppState;
use crate::http::dto::{JournalEntry, LoanBalance};
use crate::http::handlers::query_params;
use crate::http::page_token;
use crate::http::problem::{ApiError, FieldError};
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

/// Handler.
pub async fn balance(
    req: HttpRequest,
    path: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::BalancesRead).await?;
    let loan_id = path_id(&path, "loan_id", LoanId::parse)?;
    let query = query_params(&req, &["as_of_date"])?;
    let as_of = match query.get("as_of_date") {
        None => None,
        Some(s) => Some(parse_date(s).ok_or_else(|| {
            ApiError::validation(vec![FieldError::new(
                "as_of_date",
                "invalid_format",
                "must be a date YYYY-MM-DD",
            )])
        })?),
    };
    let view = state
        .store
        .loan_balance(principal.tenant, loan_id, as_of)
        .await?
        .ok_or_else(ApiError::not_found)?;
    let as_of_date = format_date(as_of.unwrap_or_else(|| state.sources.clock.now().date()));
    Ok(HttpResponse::Ok().json(LoanBalance::new(view, as_of_date)))
}

/// Every event type the API knows (SPEC §7), including the reserved ones.
pub const EVENT_TYPES: [&str; 14] = [
    "disbursement",
    "payment_received",
    "fee_assessed",
    "accrual",
    "reversal",
    "disbursement_settled",
    "payment_allocated",
    "payment_returned",
    "fee_waived",
    "chargeoff",
    "recovery",
    "refinance",
    "restructure",
    "manual_adjustment",
];

/// `GET /v1/loans/{loan_id}/journal-entries` (`hpts:ledger:read`): keyset pages in posting order.
pub async fn journal_entries(
    req: HttpRequest,
    path: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::LedgerRead).await?;
    let loan_id = path_id(&path, "loan_id", LoanId::parse)?;
    let query = query_params(
        &req,
        &[
            "from_date",
            "to_date",
            "event_type",
            "page_size",
            "page_token",
        ],
    )?;
    let mut errors = Vec::new();
    let mut date = |name: &'static str| {
        query.get(name).and_then(|s| {
            let d = parse_date(s);
            if d.is_none() {
                errors.push(FieldError::new(
                    name,
                    "invalid_format",
                    "must be a date YYYY-MM-DD",
                ));
            }
            d
        })
    };
    let from_date = date("from_date");
    let to_date = date("to_date");
    let event_type = query.get("event_type").cloned();
    if event_type
        .as_deref()
        .is_some_and(|t| !EVENT_TYPES.contains(&t))
    {
        errors.push(FieldError::new(
            "event_type",
            "invalid_value",
            format!("must be one of: {}", EVENT_TYPES.join(", ")),
        ));
    }
    let page_size = match query.get("page_size") {
        None => 100,
        Some(s) => match s.parse::<u32>() {
            Ok(n) if (1..=500).contains(&n) && !s.starts_with('+') => n,
            _ => {
                errors.push(FieldError::new(
                    "page_size",
                    "out_of_range",
                    "must be an integer from 1 to 500",
                ));
                100
            }
        },
    };
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let scope = format!(
        "{}|{loan_id}|{}|{}|{}",
        principal.tenant,
        from_date.map(format_date).unwrap_or_default(),
        to_date.map(format_date).unwrap_or_default(),
        event_type.as_deref().unwrap_or_default()
    );
    let key = state.store.page_token_key();
    let after_seq = match query.get("page_token") {
        None => 0,
        Some(t) => page_token::decode(key, &scope, t)?,
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
        .map(|seq| page_token::encode(key, &scope, seq));
    Ok(HttpResponse::Ok()
        .json(serde_json::json!({ "items": items, "next_page_token": next_page_token })))
}
