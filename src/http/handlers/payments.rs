//! `POST /v1/payments` (`hpts:payments:write`): Dr 1000, credits allocated fees → interest →
//! principal → suspense.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Payment, PaymentMethod};
use crate::ledger::ids::{BorrowerId, LoanId};

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let loan_id = o.uuid("loan_id", true, &mut r);
    let borrower_id = o.uuid("borrower_id", true, &mut r);
    let amount = o.money("amount_minor", true, &mut r);
    let currency = o.currency("currency", &mut r);
    let effective_at = o.date("effective_at", true, &mut r);
    let source_method = o.one_of(
        "source_method",
        true,
        PaymentMethod::parse,
        PaymentMethod::WIRE,
        &mut r,
    );
    let external_ref = o.text("external_ref", false, 1, 255, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (
        loan_id,
        borrower_id,
        amount,
        currency,
        effective_at,
        source_method,
    ) {
        (
            Some(loan_id),
            Some(borrower_id),
            Some(amount),
            Some(currency),
            Some(effective_at),
            Some(source_method),
        ) => Ok(Command::Pay(Payment {
            loan_id: LoanId::from_uuid(loan_id),
            borrower_id: BorrowerId::from_uuid(borrower_id),
            amount,
            currency,
            effective_at,
            source_method,
            external_ref,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::PaymentsWrite,
    route: "POST /v1/payments",
    limit: SMALL_LIMIT,
};
