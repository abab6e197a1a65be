//! `POST /v1/adjustments` (`hpts:adjustments:write`): a manual, balanced journal entry on chart
//! accounts other than the loan control accounts (bank charges, clearing corrections).

use serde_json::Value;

use crate::auth::Scope;
use crate::http::body::SMALL_LIMIT;
use crate::http::problem::ApiError;
use crate::http::validate::{Obj, Report};
use crate::http::write::{WriteRoute, finish_report};
use crate::ledger::accounts::Direction;
use crate::ledger::commands::{Adjustment, AdjustmentLine, Command};

/// Fewest and most lines of one adjustment.
pub const LINES: (usize, usize) = (2, 50);

/// `^[0-9]{4}$`.
fn account_code(s: &str) -> bool {
    s.len() == 4 && s.bytes().all(|c| c.is_ascii_digit())
}

/// Parses the body.
pub fn parse(body: &Value) -> Result<Command, ApiError> {
    let mut r = Report::default();
    let Some(mut o) = Obj::new(body, "", &mut r) else {
        return Err(ApiError::validation(r.errors));
    };
    let effective_at = o.date("effective_at", true, &mut r);
    let description = o.text("description", true, 1, 500, &mut r);
    let items = o.array("lines", LINES.0, LINES.1, &mut r);
    let mut lines = Vec::with_capacity(items.map_or(0, <[Value]>::len));
    for (i, item) in items.unwrap_or_default().iter().enumerate() {
        let path = format!("lines[{i}]");
        let Some(mut lo) = Obj::new(item, &path, &mut r) else {
            continue;
        };
        let code = lo.token("account_code", true, 4, account_code, "^[0-9]{4}$", &mut r);
        let direction = lo.one_of("direction", true, Direction::parse, &["DR", "CR"], &mut r);
        let amount = lo.money("amount_minor", true, &mut r);
        let currency = lo.currency("currency", &mut r);
        lo.finish(&mut r);
        if let (Some(account_code), Some(direction), Some(amount), Some(currency)) =
            (code, direction, amount, currency)
        {
            lines.push(AdjustmentLine {
                account_code,
                direction,
                amount,
                currency,
            });
        }
    }
    o.metadata(&mut r);
    o.finish(&mut r);
    finish_report(r)?;
    match (effective_at, description) {
        (Some(effective_at), Some(description)) => Ok(Command::Adjust(Adjustment {
            effective_at,
            description,
            lines,
        })),
        _ => Err(ApiError::validation(Vec::new())),
    }
}

/// How the shared write path serves this route.
pub const ROUTE: WriteRoute = WriteRoute {
    scope: Scope::AdjustmentsWrite,
    route: "POST /v1/adjustments",
    limit: SMALL_LIMIT,
};
