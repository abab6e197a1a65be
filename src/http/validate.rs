//! Field-by-field parsing of JSON request bodies into domain types, collecting EVERY failing
//! field (with its JSON path) instead of stopping at the first. Parse, don't validate: what
//! comes out is typed, and nothing downstream checks formats again.

use serde_json::{Map, Value};
use time::Date;
use uuid::Uuid;

use crate::clock::parse_date;
use crate::http::problem::FieldError;
use crate::http::schema::{CURRENCY_PATTERN, METADATA_KEY_PATTERN, MONEY_PATTERN};
use crate::ledger::ids::parse_uuid;
use crate::ledger::money::{Currency, CurrencyParseError, Money, MoneyParseError};

/// Most bytes a serialised `metadata` object may have.
pub const METADATA_MAX_BYTES: usize = 2048;

/// Parses a client's currency code: `invalid_format` unless `^[A-Z]{3}$`, `unknown_currency`
/// for a well-formed code that is not an active ISO 4217 currency. Shared by bodies and query
/// strings so both answer alike.
pub fn currency(raw: &str, field: String) -> Result<Currency, FieldError> {
    Currency::parse_wire(raw).map_err(|e| match e {
        CurrencyParseError::Format => FieldError::new(
            field,
            "invalid_format",
            format!("must match {CURRENCY_PATTERN}"),
        ),
        CurrencyParseError::Unknown => FieldError::new(
            field,
            "unknown_currency",
            "is not an active ISO 4217 currency code",
        ),
    })
}

/// Collected failures of one request.
#[derive(Debug, Default)]
pub struct Report {
    /// 400-class failures (format, type, unknown fields).
    pub errors: Vec<FieldError>,
    /// Amount fields that parsed but are zero (422 `amount_must_be_positive` if nothing else fails).
    pub zero_amounts: Vec<FieldError>,
}

/// A JSON object being parsed; records which fields were read to report unknown ones.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
    known: Vec<&'static str>,
}

impl<'a> Obj<'a> {
    /// Starts parsing `value` as an object at `path` (`""` for the body).
    pub fn new(value: &'a Value, path: &str, report: &mut Report) -> Option<Obj<'a>> {
        if let Value::Object(map) = value {
            Some(Obj {
                map,
                path: path.to_owned(),
                known: Vec::new(),
            })
        } else {
            let field = if path.is_empty() { "body" } else { path };
            report.errors.push(FieldError::new(
                field,
                "invalid_type",
                "must be a JSON object",
            ));
            None
        }
    }

    /// The path of a field of this object.
    pub fn path_of(&self, name: &str) -> String {
        if self.path.is_empty() {
            name.to_owned()
        } else {
            format!("{}.{name}", self.path)
        }
    }

    /// The raw value; `null` counts as absent.
    fn raw(
        &mut self,
        name: &'static str,
        required: bool,
        report: &mut Report,
    ) -> Option<&'a Value> {
        self.known.push(name);
        match self.map.get(name) {
            None | Some(Value::Null) => {
                if required {
                    report.errors.push(FieldError::new(
                        self.path_of(name),
                        "required",
                        "is required",
                    ));
                }
                None
            }
            Some(v) => Some(v),
        }
    }

    fn string(
        &mut self,
        name: &'static str,
        required: bool,
        report: &mut Report,
    ) -> Option<&'a str> {
        let v = self.raw(name, required, report)?;
        if let Value::String(s) = v {
            Some(s.as_str())
        } else {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_type",
                "must be a string",
            ));
            None
        }
    }

    /// A UUID (any case).
    pub fn uuid(
        &mut self,
        name: &'static str,
        required: bool,
        report: &mut Report,
    ) -> Option<Uuid> {
        let s = self.string(name, required, report)?;
        let parsed = parse_uuid(s);
        if parsed.is_none() {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_format",
                "must be a UUID",
            ));
        }
        parsed
    }

    /// A money string `^(0|[1-9][0-9]{0,18})$` that fits in i64; zero is noted separately when
    /// `positive` is set.
    pub fn money(
        &mut self,
        name: &'static str,
        positive: bool,
        report: &mut Report,
    ) -> Option<Money> {
        let v = self.raw(name, true, report)?;
        let Value::String(s) = v else {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_type",
                "must be a string of digits in minor units, e.g. \"12345\"",
            ));
            return None;
        };
        match Money::parse_wire(s) {
            Ok(m) => {
                if positive && !m.is_positive() {
                    report.zero_amounts.push(FieldError::new(
                        self.path_of(name),
                        "amount_must_be_positive",
                        "must be greater than 0",
                    ));
                }
                Some(m)
            }
            Err(MoneyParseError::Format) => {
                report.errors.push(FieldError::new(
                    self.path_of(name),
                    "invalid_format",
                    format!("must match {MONEY_PATTERN} (minor units, no sign, no leading zeros)"),
                ));
                None
            }
            Err(MoneyParseError::OutOfRange) => {
                report.errors.push(FieldError::new(
                    self.path_of(name),
                    "out_of_range",
                    "must not exceed 9223372036854775807",
                ));
                None
            }
        }
    }

    /// An optional money string (absent or `null` is `None`); zero is noted like [`Obj::money`]
    /// with `positive`.
    pub fn optional_money(&mut self, name: &'static str, report: &mut Report) -> Option<Money> {
        if self.map.get(name).is_none_or(Value::is_null) {
            self.known.push(name);
            return None;
        }
        self.money(name, true, report)
    }

    /// Text of 1..=`max` characters every one of which `allowed` accepts (`pattern` is what
    /// the error message shows).
    pub fn token(
        &mut self,
        name: &'static str,
        required: bool,
        max: usize,
        allowed: fn(&str) -> bool,
        pattern: &'static str,
        report: &mut Report,
    ) -> Option<String> {
        let s = self.string(name, required, report)?;
        if s.is_empty() || s.len() > max || !allowed(s) {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_format",
                format!("must match {pattern}"),
            ));
            return None;
        }
        Some(s.to_owned())
    }

    /// An active ISO 4217 code (see [`currency`]).
    pub fn currency(&mut self, name: &'static str, report: &mut Report) -> Option<Currency> {
        let s = self.string(name, true, report)?;
        currency(s, self.path_of(name))
            .map_err(|e| report.errors.push(e))
            .ok()
    }

    /// A `YYYY-MM-DD` calendar date.
    pub fn date(
        &mut self,
        name: &'static str,
        required: bool,
        report: &mut Report,
    ) -> Option<Date> {
        let s = self.string(name, required, report)?;
        let parsed = parse_date(s);
        if parsed.is_none() {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_format",
                "must be a date YYYY-MM-DD",
            ));
        }
        parsed
    }

    /// One of a fixed set of strings.
    pub fn one_of<T>(
        &mut self,
        name: &'static str,
        required: bool,
        parse: fn(&str) -> Option<T>,
        allowed: &[&str],
        report: &mut Report,
    ) -> Option<T> {
        let s = self.string(name, required, report)?;
        let parsed = parse(s);
        if parsed.is_none() {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_value",
                format!("must be one of: {}", allowed.join(", ")),
            ));
        }
        parsed
    }

    /// Free text of `min..=max` characters, without control characters.
    pub fn text(
        &mut self,
        name: &'static str,
        required: bool,
        min: usize,
        max: usize,
        report: &mut Report,
    ) -> Option<String> {
        let s = self.string(name, required, report)?;
        let len = s.chars().count();
        if len < min || len > max {
            report.errors.push(FieldError::new(
                self.path_of(name),
                if len < min { "too_short" } else { "too_long" },
                format!("must be {min} to {max} characters"),
            ));
            return None;
        }
        if s.chars().any(char::is_control) {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_format",
                "must not contain control characters",
            ));
            return None;
        }
        Some(s.to_owned())
    }

    /// A non-negative integer (JSON number) up to `max`.
    pub fn small_uint(&mut self, name: &'static str, max: u32, report: &mut Report) -> Option<u32> {
        let v = self.raw(name, false, report)?;
        let parsed = v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .filter(|n| *n <= max);
        if parsed.is_none() {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_value",
                format!("must be an integer from 0 to {max}"),
            ));
        }
        parsed
    }

    /// An array of `min..=max` items.
    pub fn array(
        &mut self,
        name: &'static str,
        min: usize,
        max: usize,
        report: &mut Report,
    ) -> Option<&'a [Value]> {
        let v = self.raw(name, true, report)?;
        let Value::Array(items) = v else {
            report.errors.push(FieldError::new(
                self.path_of(name),
                "invalid_type",
                "must be an array",
            ));
            return None;
        };
        if items.len() < min || items.len() > max {
            report.errors.push(FieldError::new(
                self.path_of(name),
                if items.len() < min {
                    "too_short"
                } else {
                    "too_long"
                },
                format!("must have {min} to {max} items"),
            ));
            return None;
        }
        Some(items)
    }

    /// Optional `metadata`: an object of at most 2048 serialised bytes whose keys match
    /// `^[a-zA-Z][a-zA-Z0-9_]*$`. Returned serialised, keys in the client's order.
    pub fn metadata(&mut self, report: &mut Report) -> Option<String> {
        let v = self.raw("metadata", false, report)?;
        let path = self.path_of("metadata");
        let Value::Object(map) = v else {
            report.errors.push(FieldError::new(
                path,
                "invalid_type",
                "must be a JSON object",
            ));
            return None;
        };
        let mut ok = true;
        for key in map.keys() {
            let mut chars = key.chars();
            let valid = chars.next().is_some_and(|c| c.is_ascii_alphabetic())
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                ok = false;
                report.errors.push(FieldError::new(
                    format!("{path}.{key}"),
                    "invalid_format",
                    format!("metadata keys must match {METADATA_KEY_PATTERN}"),
                ));
            }
        }
        let text = v.to_string();
        if text.len() > METADATA_MAX_BYTES {
            ok = false;
            report.errors.push(FieldError::new(
                path,
                "too_long",
                format!("must serialise to at most {METADATA_MAX_BYTES} bytes"),
            ));
        }
        ok.then_some(text)
    }

    /// Reports every field that was not read as `unknown_field`.
    pub fn finish(self, report: &mut Report) {
        for key in self.map.keys() {
            if !self.known.contains(&key.as_str()) {
                report.errors.push(FieldError::new(
                    self.path_of(key),
                    "unknown_field",
                    "is not a known field",
                ));
            }
        }
    }
}
