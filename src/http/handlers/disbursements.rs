//! `POST /v1/disbursements` (`hpts:disbursements:write`): Dr 1100 / Cr 2000; the first
//! disbursement opens the loan and binds borrower and currency.

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::commands::{Command, Disbursement, DisbursementMethod};
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
    let method = o.one_of(
        "method",
        true,
        DisbursementMethod::parse,
        DisbursementMethod::WIRE,
        &mut r,
    );
    let destination_ref = o.text("destination_ref", false, 1, 255, &mut r);
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (loan_id, borrower_id, amount, currency, effective_at, method) {
        (
            Some(loan_id),
            Some(borrower_id),
            Some(amount),
            Some(currency),
            Some(effective_at),
            Some(method),
        ) => Ok(Command::Disburse(Disbursement {
            loan_id: LoanId::from_uuid(loan_id),
            borrower_id: BorrowerId::from_uuid(borrower_id),
            amount,
            currency,
            effective_at,
            method,
            destination_ref,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::DisbursementsWrite,
    route: "POST /v1/disbursements",
    limit: SMALL_LIMIT,
};
