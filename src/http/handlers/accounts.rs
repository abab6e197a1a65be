//! `GET /v1/accounts/{account_code}/balance?currency=USD[&layer=SETTLED&as_of_date=]`
//! (`hpts:balances:read`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::json;

use crate::auth::Scope;
use crate::clock::format_date;
use crate::http::AppState;
use crate::http::handlers::Query;
use crate::http::problem::{ApiError, FieldError};
use crate::ledger::accounts::{Account, Direction, Layer};
use crate::ledger::money::Money;

/// Handler.
pub async fn balance(
    req: HttpRequest,
    path: Path<String>,
    state: Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::BalancesRead).await?;
    let mut query = Query::parse(&req, &["currency", "layer", "as_of_date"])?;
    let code = path.as_str();
    if !(code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit())) {
        query.fail(FieldError::new(
            "account_code",
            "invalid_format",
            "must match ^[0-9]{4}$",
        ));
    }
    let currency = query.currency();
    let layer = query
        .get("layer")
        .map_or(Some(Layer::Settled), Layer::parse);
    if layer.is_none() {
        query.fail(FieldError::new(
            "layer",
            "invalid_value",
            "must be one of: SETTLED, PENDING, ENCUMBRANCE",
        ));
    }
    let as_of = query.date("as_of_date");
    query.finish()?;
    let (Some(currency), Some(layer)) = (currency, layer) else {
        return Err(ApiError::validation(Vec::new()));
    };
    let account = Account::from_code(code).ok_or_else(ApiError::not_found)?;
    let view = state
        .store
        .account_balance(
            principal.tenant,
            account,
            currency.to_string(),
            layer.as_str(),
            as_of,
        )
        .await?;
    let normal = match account.normal_side() {
        Direction::Dr => view.dr.minor().saturating_sub(view.cr.minor()),
        Direction::Cr => view.cr.minor().saturating_sub(view.dr.minor()),
    };
    Ok(HttpResponse::Ok().json(json!({
        "account_code": account.code(),
        "account_name": account.name(),
        "currency": currency,
        "layer": layer.as_str(),
        "as_of_date": format_date(as_of.unwrap_or_else(|| state.sources.clock.now().date())),
        "dr_balance_minor": view.dr,
        "cr_balance_minor": view.cr,
        "normal_balance_minor": Money::from_minor(normal),
    })))
}
