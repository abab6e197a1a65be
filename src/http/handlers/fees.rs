//! `POST /v1/fees` (`hpts:fees:write`): Dr 1300 / Cr 4100.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Fee, FeeType};
use crate::ledger::ids::LoanId;

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let loan_id = o.uuid("loan_id", true, &mut r);
    let fee_type = o.one_of("fee_type", true, FeeType::parse, FeeType::WIRE, &mut r);
    let amount = o.money("amount_minor", true, &mut r);
    let currency = o.currency("currency", &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (loan_id, fee_type, amount, currency, effective_at) {
        (Some(loan_id), Some(fee_type), Some(amount), Some(currency), Some(effective_at)) => {
            Ok(Command::AssessFee(Fee {
                loan_id: LoanId::from_uuid(loan_id),
                fee_type,
                amount,
                currency,
                effective_at,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::FeesWrite,
    route: "POST /v1/fees",
    limit: SMALL_LIMIT,
};
