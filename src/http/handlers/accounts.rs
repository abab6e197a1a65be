//! `GET /v1/accounts/{account_code}/balance?currency=USD[&layer=SETTLED&as_of_date=]`
//! (`hpts:balances:read`).

use actix_web::web::{Data, Path};
use actix_web::{HttpRequest, HttpResponse};
use utoipa::IntoParams;

use crate::auth::Scope;
use crate::clock::format_date;
use crate::http::AppState;
use crate::http::dto::AccountBalance;
use crate::http::handlers::Query;
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::http::schema::{ACCOUNT_CODE_PATTERN, AccountCode, CurrencyCode};
use crate::ledger::accounts::{Account, Direction, Layer};
use crate::ledger::money::Money;

/// Get a GL account's balance
///
/// Requires scope `hpts:balances:read`. The balance of one account of the chart, in one
/// currency and layer.
#[utoipa::path(
    get,
    path = "/v1/accounts/{account_code}/balance",
    operation_id = "get_account_balance",
    tag = "reads",
    params(
        ("account_code" = inline(AccountCode), Path,
            description = "A code of the chart of accounts: 1000, 1100, 1200, 1300, 2000, 2100, 4000, 4100, 4200 or 5000."),
        AccountBalanceQuery,
    ),
    responses(
        (status = 200, description = "The account's balance.", body = AccountBalance),
        (status = 400, description = "`validation_failed`: an `account_code` not of four digits, a missing or malformed `currency`, an unknown `layer`, a malformed `as_of_date`, or an unknown or repeated query parameter.",
            body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "`not_found`: no such account in the chart.",
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
    let mut query = Query::parse(&req, &["currency", "layer", "as_of_date"])?;
    let code = path.as_str();
    if !(code.len() == 4 && code.bytes().all(|b| b.is_ascii_digit())) {
        query.fail(FieldError::new(
            "account_code",
            "invalid_format",
            format!("must match {ACCOUNT_CODE_PATTERN}"),
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
    Ok(HttpResponse::Ok().json(AccountBalance {
        account_code: account.code(),
        account_name: account.name(),
        currency,
        layer: layer.as_str(),
        as_of_date: format_date(as_of.unwrap_or_else(|| state.sources.clock.now().date())),
        dr_balance_minor: view.dr,
        cr_balance_minor: view.cr,
        normal_balance_minor: Money::from_minor(normal),
    }))
}

// The query string, described for the `OpenAPI` document.

/// Query of `GET /v1/accounts/{account_code}/balance`. Unknown or repeated parameters are
/// 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct AccountBalanceQuery {
    /// Active ISO 4217 code of the balance (required; an unknown code is 400
    /// `unknown_currency`).
    #[param(inline)]
    currency: CurrencyCode,
    /// Balance layer; `SETTLED` when absent.
    #[param(inline)]
    layer: Option<Layer>,
    /// Balance counting only entries effective on or before this date (`YYYY-MM-DD`).
    #[param(format = Date)]
    as_of_date: Option<String>,
}
