//! Thin handlers, one file per resource: parse into domain types, call the store, shape the
//! answer. Shared query-string parsing lives here.

pub mod accounts;
pub mod accruals;
pub mod adjustments;
pub mod charge_offs;
pub mod disbursements;
pub mod exports;
pub mod fee_waivers;
pub mod fees;
pub mod health;
pub mod journal_entries;
pub mod loans;
pub mod payment_returns;
pub mod payments;
pub mod period_closes;
pub mod reconciliation;
pub mod reversals;
pub mod settlements;
pub mod trial_balance;

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

/// Query parameters being parsed, collecting every failing one.
pub struct Query {
    values: HashMap<String, String>,
    errors: Vec<FieldError>,
}

impl Query {
    /// Parses the query string (see [`query_params`]).
    pub fn parse(req: &HttpRequest, allowed: &[&str]) -> Result<Self, ApiError> {
        Ok(Query {
            values: query_params(req, allowed)?,
            errors: Vec::new(),
        })
    }

    /// A raw parameter.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// An optional `YYYY-MM-DD` parameter.
    pub fn date(&mut self, name: &'static str) -> Option<time::Date> {
        let raw = self.values.get(name)?;
        let parsed = crate::clock::parse_date(raw);
        if parsed.is_none() {
            self.errors.push(FieldError::new(
                name,
                "invalid_format",
                "must be a date YYYY-MM-DD",
            ));
        }
        parsed
    }

    /// The required `currency` parameter: an active ISO 4217 code.
    pub fn currency(&mut self) -> Option<crate::ledger::money::Currency> {
        match self.values.get("currency") {
            None => {
                self.errors
                    .push(FieldError::new("currency", "required", "is required"));
                None
            }
            Some(raw) => crate::http::validate::currency(raw, "currency".to_owned())
                .map_err(|e| self.errors.push(e))
                .ok(),
        }
    }

    /// Records a failing parameter.
    pub fn fail(&mut self, error: FieldError) {
        self.errors.push(error);
    }

    /// 400 `validation_failed` listing every failing parameter, if any.
    pub fn finish(self) -> Result<(), ApiError> {
        if self.errors.is_empty() {
            Ok(())
        } else {
            Err(ApiError::validation(self.errors))
        }
    }
}
