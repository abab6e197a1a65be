//! `POST /v1/period-closes` (`hpts:periods:write`): closes every day up to and including
//! `through_date` — from the commit on, no write may be dated on or before it — and stores the
//! trial balance of every currency as of that day; it posts no journal entry. `GET
//! /v1/period-closes` (`hpts:ledger:read`) lists the closes, newest first, with the lock date.

use actix_web::web::Data;
use actix_web::{HttpRequest, HttpResponse};
use serde_json::{Value, json};

use crate::auth::Scope;
use crate::http::AppState;
use crate::http::body::SMALL_LIMIT;
use crate::http::handlers::Query;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, PeriodClose};

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let through_date = o.date("through_date", true, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match through_date {
        Some(through_date) => Ok(Command::ClosePeriod(PeriodClose { through_date })),
        None => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::PeriodsWrite,
    route: "POST /v1/period-closes",
    limit: SMALL_LIMIT,
};

/// `GET /v1/period-closes`.
pub async fn list(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::LedgerRead).await?;
    Query::parse(&req, &[])?.finish()?;
    let (lock_date, items) = state.store.period_closes(principal.tenant).await?;
    let items: Vec<Value> = items
        .into_iter()
        .map(|c| {
            json!({
                "period_close_id": c.period_close_id,
                "through_date": c.through_date,
                "closed_at": c.closed_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok().json(json!({ "lock_date": lock_date, "items": items })))
}
