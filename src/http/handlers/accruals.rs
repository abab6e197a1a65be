//! `POST /v1/accruals/batch` (`hpts:accruals:write`): up to 10 000 loans in one all-or-nothing
//! entry, per loan Dr 1200 / Cr 4000. Body limit 4 MiB.

use std::collections::HashMap;

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::BATCH_LIMIT;
use crate::http::problem::{ApiError, FieldError};
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::accrual::DayCount;
use crate::ledger::commands::{AccrualBatch, AccrualItem, Command};
use crate::ledger::ids::{LoanId, ProgramId};

/// Most loans in one batch.
pub const MAX_LOANS: usize = 10_000;
/// Highest accepted annual rate (1000 % in basis points).
pub const MAX_RATE_BPS: u32 = 100_000;

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let program_id = o.uuid("program_id", true, &mut r);
    let accrual_date = o.date("accrual_date", true, &mut r);
    let convention = o.one_of(
        "day_count_convention",
        true,
        DayCount::parse,
        &["ACT_365", "ACT_360", "30_360"],
        &mut r,
    );
    let items = o.array("loans", 1, MAX_LOANS, &mut r);
    let mut loans = Vec::with_capacity(items.map_or(0, <[Value]>::len));
    let mut seen: HashMap<LoanId, usize> = HashMap::new();
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        let path = format!("loans[{i}]");
        let Some(mut lo) = Obj::new(item, &path, &mut r) else {
            continue;
        };
        let loan_id = lo.uuid("loan_id", true, &mut r).map(LoanId::from_uuid);
        let principal = lo.money("outstanding_principal_minor", false, &mut r);
        let interest = lo.money("interest_minor", true, &mut r);
        let rate = lo.small_uint("annual_rate_bps", MAX_RATE_BPS, &mut r);
        lo.finish(&mut r);
        if let Some(id) = loan_id
            && let Some(first) = seen.insert(id, i)
        {
            r.errors.push(FieldError::new(
                format!("{path}.loan_id"),
                "duplicate",
                format!("loan already appears at loans[{first}]"),
            ));
        }
        if let (Some(loan_id), Some(outstanding_principal), Some(interest)) =
            (loan_id, principal, interest)
        {
            loans.push(AccrualItem {
                loan_id,
                outstanding_principal,
                interest,
                annual_rate_bps: rate,
            });
        }
    }
    o.finish(&mut r);
    finish_report(r)?;
    match (program_id, accrual_date, convention) {
        (Some(program_id), Some(accrual_date), Some(convention)) => {
            Ok(Command::Accrue(AccrualBatch {
                program_id: ProgramId::from_uuid(program_id),
                accrual_date,
                convention,
                loans,
            }))
        }
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::AccrualsWrite,
    route: "POST /v1/accruals/batch",
    limit: BATCH_LIMIT,
};
