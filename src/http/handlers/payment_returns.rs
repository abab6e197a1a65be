//! `POST /v1/payment-returns` (`hpts:payments:write`): a received payment came back; its
//! allocation goes back on the loan, optionally with a returned-payment fee.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, PaymentReturn, ReturnReason};
use crate::ledger::ids::EventId;

/// `^R[0-9]{2}$`, the ACH return code.
fn ach_return_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 3 && b[0] == b'R' && b[1..].iter().all(u8::is_ascii_digit)
}

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let payment = o.uuid("payment_event_id", true, &mut r);
    let return_reason = o.one_of(
        "return_reason",
        true,
        ReturnReason::parse,
        ReturnReason::WIRE,
        &mut r,
    );
    let return_code = o.token(
        "return_code",
        false,
        3,
        ach_return_code,
        "^R[0-9]{2}$",
        &mut r,
    );
    let effective_at = o.date("effective_at", true, &mut r);
    let nsf_fee = o.optional_money("nsf_fee_minor", &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (payment, return_reason, effective_at) {
        (Some(payment), Some(return_reason), Some(effective_at)) => {
            Ok(Command::ReturnPayment(PaymentReturn {
                payment_event_id: EventId::from_uuid(payment),
                return_reason,
                return_code,
                effective_at,
                nsf_fee,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::PaymentsWrite,
    route: "POST /v1/payment-returns",
    limit: SMALL_LIMIT,
};
