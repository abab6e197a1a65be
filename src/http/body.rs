//! Request bodies: `Content-Type: application/json` (else 415), no `Content-Encoding` but
//! `identity` (else 415: bodies are never decompressed), a size limit per route (else 413,
//! checked while streaming so a huge body is never buffered), a read timeout (408, so a
//! stalled or drip-fed body never holds a handler), strict JSON (duplicate keys and invalid
//! UTF-8 are 400 `malformed_json`), and the canonical form used for fingerprints.
//!
//! The body is read from the raw [`web::Payload`], which actix never decompresses (only its
//! `Bytes`/`Json` extractors would), so the `Content-Encoding` check is the only gate.

use std::fmt;
use std::time::Duration;

use actix_web::HttpRequest;
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use futures_util::StreamExt;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::http::problem::{ApiError, Code};

/// Default body limit (64 KiB).
pub const SMALL_LIMIT: usize = 64 * 1024;
/// Limit for `/v1/accruals/batch` (4 MiB).
pub const BATCH_LIMIT: usize = 4 * 1024 * 1024;

/// Longest wait for the next bytes of a body once its headers have arrived: a client that sends
/// nothing for this long is answered 408 `request_timeout` and the connection is closed.
pub const BODY_IDLE_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest time a whole body may take, however steadily it trickles in (a 4 MiB accrual batch
/// needs about 0.6 Mbit/s to make it); past it, 408 `request_timeout`.
pub const BODY_READ_DEADLINE: Duration = Duration::from_mins(1);

/// True unless the body carries a content coding other than `identity` (in any header line).
fn is_identity_encoded(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::CONTENT_ENCODING)
        .all(|value| {
            value.to_str().is_ok_and(|v| {
                v.split(',')
                    .map(str::trim)
                    .all(|coding| coding.is_empty() || coding.eq_ignore_ascii_case("identity"))
            })
        })
}

fn is_json(req: &HttpRequest) -> bool {
    req.headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json"))
}

/// A request body: the bytes as received and their parsed value.
pub struct JsonBody {
    /// The bytes as received.
    pub raw: actix_web::web::Bytes,
    /// The parsed value.
    pub value: Value,
}

impl JsonBody {
    /// The `metadata` member exactly as the client sent it (verbatim text), if present and not null.
    pub fn raw_metadata(&self) -> Option<String> {
        #[derive(serde::Deserialize)]
        struct Members<'a> {
            #[serde(borrow)]
            metadata: Option<&'a serde_json::value::RawValue>,
        }
        let members: Members<'_> = serde_json::from_slice(&self.raw).ok()?;
        members
            .metadata
            .map(|m| m.get().to_owned())
            .filter(|m| m != "null")
    }
}

/// Reads and parses the body as JSON.
pub async fn read_json(
    req: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<JsonBody, ApiError> {
    if !is_json(req) {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "Content-Type must be application/json",
        ));
    }
    if !is_identity_encoded(req) {
        return Err(ApiError::new(
            Code::UnsupportedMediaType,
            "Content-Encoding is not supported: send the body uncompressed (identity)",
        ));
    }
    let too_large = || {
        ApiError::new(
            Code::PayloadTooLarge,
            format!("the request body exceeds {limit} bytes"),
        )
    };
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large());
    }
    let raw = read_limited(&mut payload, declared, limit)
        .await?
        .ok_or_else(too_large)?;
    let value = parse_strict(&raw)?;
    Ok(JsonBody { raw, value })
}

/// Streams the body into memory: `None` as soon as it exceeds `limit`, 408 if it stalls for
/// [`BODY_IDLE_TIMEOUT`] or is not complete within [`BODY_READ_DEADLINE`].
async fn read_limited(
    payload: &mut web::Payload,
    declared: Option<usize>,
    limit: usize,
) -> Result<Option<web::Bytes>, ApiError> {
    let deadline = tokio::time::Instant::now() + BODY_READ_DEADLINE;
    let timed_out = || {
        ApiError::new(
            Code::RequestTimeout,
            format!(
                "the request body was not received in time (at most {}s without data, {}s in all)",
                BODY_IDLE_TIMEOUT.as_secs(),
                BODY_READ_DEADLINE.as_secs()
            ),
        )
    };
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    loop {
        let wait_until = deadline.min(tokio::time::Instant::now() + BODY_IDLE_TIMEOUT);
        let next = tokio::time::timeout_at(wait_until, payload.next())
            .await
            .map_err(|_| timed_out())?;
        let Some(chunk) = next else { break };
        let chunk = chunk.map_err(|e| {
            ApiError::new(Code::MalformedJson, format!("could not read the body: {e}"))
        })?;
        if buf.len() + chunk.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(buf.freeze()))
}

/// Parses JSON, refusing duplicate object keys.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, ApiError> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize_into(&mut de)
        .and_then(|v| de.end().map(|()| v))
        .map_err(|e| {
            ApiError::new(
                Code::MalformedJson,
                format!("the body is not valid JSON: {e}"),
            )
        })?;
    Ok(value)
}

struct StrictValue;

impl StrictValue {
    fn deserialize_into<'de, D: Deserializer<'de>>(d: D) -> Result<Value, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictSeed;

impl<'de> de::DeserializeSeed<'de> for StrictSeed {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        StrictValue::deserialize_into(d)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(StrictSeed)? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            if out.contains_key(&key) {
                return Err(de::Error::custom(format_args!("duplicate key {key:?}")));
            }
            let value = map.next_value_seed(StrictSeed)?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Canonical JSON: object keys sorted at every level, no insignificant whitespace.
pub fn canonical(value: &Value) -> String {
    fn write(v: &Value, out: &mut String) {
        match v {
            Value::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                out.push('{');
                for (i, k) in keys.into_iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&Value::String(k.clone()).to_string());
                    out.push(':');
                    write(&map[k.as_str()], out);
                }
                out.push('}');
            }
            Value::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write(item, out);
                }
                out.push(']');
            }
            scalar => out.push_str(&scalar.to_string()),
        }
    }
    let mut out = String::new();
    write(value, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_identity_or_no_content_encoding_counts_as_uncompressed() {
        use actix_web::test::TestRequest;
        let with = |values: &[&str]| {
            let mut req = TestRequest::default();
            for v in values {
                req = req.append_header((header::CONTENT_ENCODING, *v));
            }
            is_identity_encoded(&req.to_http_request())
        };
        assert!(with(&[]));
        assert!(with(&["identity"]));
        assert!(with(&["IDENTITY"]));
        assert!(with(&["identity, identity"]));
        for coded in [
            "gzip",
            "br",
            "deflate",
            "zstd",
            "x-gzip",
            "compress",
            "identity, gzip",
        ] {
            assert!(!with(&[coded]), "{coded}");
        }
        assert!(
            !with(&["identity", "gzip"]),
            "a second header line counts too"
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        assert!(parse_strict(br#"{"a":1,"a":2}"#).is_err());
        assert!(parse_strict(br#"{"a":{"b":1,"b":1}}"#).is_err());
        assert!(parse_strict(br#"{"a":[{"b":1},{"b":2}]}"#).is_ok());
    }

    #[test]
    fn trailing_garbage_and_invalid_utf8_are_refused() {
        assert!(parse_strict(br#"{"a":1} x"#).is_err());
        assert!(parse_strict(b"{\"a\":\"\xff\"}").is_err());
    }

    #[test]
    fn canonical_form_ignores_key_order_and_whitespace() {
        let a = parse_strict(br#"{"b": 1, "a": {"d": [1, 2], "c": "x"}}"#).expect("json");
        let b = parse_strict(br#"{"a":{"c":"x","d":[1,2]},"b":1}"#).expect("json");
        assert_eq!(canonical(&a), canonical(&b));
        assert_eq!(canonical(&a), r#"{"a":{"c":"x","d":[1,2]},"b":1}"#);
    }
}
