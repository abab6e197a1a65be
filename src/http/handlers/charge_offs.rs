//! `POST /v1/charge-offs` (`hpts:chargeoffs:write`): writes a loan off — principal to credit
//! losses (5000), accrued interest and fees back against their income accounts.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{ChargeOff, ChargeOffReason, Command};
use crate::ledger::ids::LoanId;

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let loan_id = o.uuid("loan_id", true, &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    let reason_code = o.one_of(
        "reason_code",
        true,
        ChargeOffReason::parse,
        ChargeOffReason::WIRE,
        &mut r,
    );
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (loan_id, effective_at, reason_code) {
        (Some(loan_id), Some(effective_at), Some(reason_code)) => {
            Ok(Command::ChargeOff(ChargeOff {
                loan_id: LoanId::from_uuid(loan_id),
                effective_at,
                reason_code,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::ChargeoffsWrite,
    route: "POST /v1/charge-offs",
    limit: SMALL_LIMIT,
};
