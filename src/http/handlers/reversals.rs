//! `POST /v1/reversals` (`hpts:reversals:write`): posts the exact mirror of an entry.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, ReasonCode, Reversal};
use crate::ledger::ids::EntryId;

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let reverses = o.uuid("reverses_entry_id", true, &mut r);
    let reason_code = o.one_of(
        "reason_code",
        true,
        ReasonCode::parse,
        ReasonCode::WIRE,
        &mut r,
    );
    let reason_description = o.text("reason_description", false, 0, 500, &mut r);
    let effective_at = o.date("effective_at", false, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (reverses, reason_code) {
        (Some(reverses), Some(reason_code)) => Ok(Command::Reverse(Reversal {
            reverses_entry_id: EntryId::from_uuid(reverses),
            reason_code,
            reason_description,
            effective_at,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::ReversalsWrite,
    route: "POST /v1/reversals",
    limit: SMALL_LIMIT,
};
