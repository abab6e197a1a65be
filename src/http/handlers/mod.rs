//! Thin handlers, one file per resource: parse into domain types, call the store, shape the
//! answer. Shared query-string parsing lives here.

pub mod accounts;
pub mod accruals;
pub mod disbursements;
pub mod fees;
pub mod health;
pub mod journal_entries;
pub mod loans;
pub mod payments;
pub mod reconciliation;
pub mod reversals;

use std::collections::HashMap;

use actix_web::HttpRequest;

use crate::http::problem::{ApiError, FieldError};

/// Parses the query string; unknown or repeated parameters are 400 `validation_failed`.
pub fn query_params(
    req: &HttpRequest,
    allowed: &[&str],
) -> Result<HashMap<String, String>, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(req.query_string()).map_err(|_| {
            ApiError::validation(vec![FieldError::new(
                "query",
                "invalid_format",
                "query string is not valid",
            )])
        })?;
    let mut out = HashMap::new();
    let mut errors = Vec::new();
    for (k, v) in pairs {
        if !allowed.contains(&k.as_str()) {
            errors.push(FieldError::new(
                k,
                "unknown_field",
                "is not a known query parameter",
            ));
            continue;
        }
        match out.entry(k) {
            std::collections::hash_map::Entry::Occupied(e) => {
                errors.push(FieldError::new(
                    e.key().clone(),
                    "duplicate",
                    "must appear at most once",
                ));
            }
            std::collections::hash_map::Entry::Vacant(e) => {
                e.insert(v);
            }
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::validation(errors))
    }
}
