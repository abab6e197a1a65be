//! `POST /v1/fee-waivers` (`hpts:fees:write`): forgives all or part of an assessed fee,
//! Dr 4100 / Cr 1300.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, FeeWaiver};
use crate::ledger::ids::EventId;

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let fee = o.uuid("fee_event_id", true, &mut r);
    let amount = o.optional_money("amount_minor", &mut r);
    let reason = o.text("reason", true, 1, 500, &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (fee, reason, effective_at) {
        (Some(fee), Some(reason), Some(effective_at)) => Ok(Command::WaiveFee(FeeWaiver {
            fee_event_id: EventId::from_uuid(fee),
            amount,
            reason,
            effective_at,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::FeesWrite,
    route: "POST /v1/fee-waivers",
    limit: SMALL_LIMIT,
};
