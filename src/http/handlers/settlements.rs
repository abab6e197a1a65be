//! `POST /v1/disbursement-settlements` (`hpts:disbursements:write`): the disbursed money left
//! the lender's bank account, Dr 2000 / Cr 1000.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Settlement};
use crate::ledger::ids::EventId;

/// `^[A-Za-z0-9._:\-]+$`.
fn bank_ref_chars(s: &str) -> bool {
    s.bytes()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'))
}

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let disbursement = o.uuid("disbursement_event_id", true, &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    let bank_account_ref = o.token(
        "bank_account_ref",
        false,
        64,
        bank_ref_chars,
        "^[A-Za-z0-9._:\\-]{1,64}$",
        &mut r,
    );
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (disbursement, effective_at) {
        (Some(disbursement), Some(effective_at)) => Ok(Command::Settle(Settlement {
            disbursement_event_id: EventId::from_uuid(disbursement),
            effective_at,
            bank_account_ref,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::DisbursementsWrite,
    route: "POST /v1/disbursement-settlements",
    limit: SMALL_LIMIT,
};
