//! Request bodies: `Content-Type: application/json` (else 415), no `Content-Encoding` but
//! `identity` (else 415: bodies are never decompressed), a size limit per route (else 413,
//! checked while streaming so a huge body is never buffered), a read timeout (408, so a
//! stalled or drip-fed body never holds a handler), strict JSON (duplicate keys and invalid
//! UTF-8 are 400 `malformed_json`), and the canonical form used for fingerprints.
//!
//! The body is read from the raw [`web::Payload`], which actix never decompresses (only its
//! `Bytes`/`Json` extractors would), so the `Content-Encoding` check is the only gate.

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::http::header;
use actix_web::web::{self, BytesMut};
use actix_web::{HttpRequest, HttpResponse};
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

/// Reads and parses the body as JSON. On 408 `request_timeout` the caller should answer with
/// [`closing_response`], so the connection is closed rather than left draining.
pub async fn read_json(
    req: &HttpRequest,
    payload: &mut web::Payload,
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
    let raw = read_limited(payload, declared, limit, ReadTimeouts::BODY)
        .await?
        .ok_or_else(too_large)?;
    let value = parse_strict(&raw)?;
    Ok(JsonBody { raw, value })
}

/// How long a body read may wait.
#[derive(Debug, Clone, Copy)]
struct ReadTimeouts {
    /// Longest pause between two pieces of the body.
    idle: Duration,
    /// Longest time for the whole body.
    deadline: Duration,
}

impl ReadTimeouts {
    const BODY: ReadTimeouts = ReadTimeouts {
        idle: BODY_IDLE_TIMEOUT,
        deadline: BODY_READ_DEADLINE,
    };
}

/// Streams the body into memory: `None` as soon as it exceeds `limit`, 408 if it pauses for
/// longer than `timeouts.idle` or is not complete within `timeouts.deadline`.
async fn read_limited<S, E>(
    payload: &mut S,
    declared: Option<usize>,
    limit: usize,
    timeouts: ReadTimeouts,
) -> Result<Option<web::Bytes>, ApiError>
where
    S: futures_util::Stream<Item = Result<web::Bytes, E>> + Unpin,
    E: fmt::Display,
{
    let deadline = tokio::time::Instant::now() + timeouts.deadline;
    let timed_out = || {
        ApiError::new(
            Code::RequestTimeout,
            format!(
                "the request body was not received in time (at most {}s without data, {}s in all)",
                timeouts.idle.as_secs(),
                timeouts.deadline.as_secs()
            ),
        )
    };
    let mut buf = BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    loop {
        let wait_until = deadline.min(tokio::time::Instant::now() + timeouts.idle);
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

/// `problem` as a response that closes the connection once it is sent.
///
/// When a handler answers before the body has fully arrived, actix-http keeps reading (and
/// discarding) a chunked body whose payload was dropped, with no timer: a client that stalled
/// would hold the connection for ever. Keeping the unread payload alive until the answer is
/// written makes actix close the connection instead (`Connection: close`, then a short linger).
pub fn closing_response(problem: &ApiError, payload: web::Payload) -> HttpResponse {
    use actix_web::ResponseError;
    problem
        .error_response()
        .map_body(|_, body| HoldPayload {
            body,
            _payload: payload,
        })
        .map_into_boxed_body()
}

/// A response body that owns the request payload until it has been sent.
struct HoldPayload {
    body: BoxBody,
    _payload: web::Payload,
}

impl MessageBody for HoldPayload {
    type Error = <BoxBody as MessageBody>::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<web::Bytes, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_next(cx)
    }
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
    fn write(v: &Value, out: &mut Vec<u8>) {
        match v {
            Value::Object(map) => {
                let mut entries: Vec<(&String, &Value)> = map.iter().collect();
                entries.sort_unstable_by(|a, b| a.0.cmp(b.0));
                out.push(b'{');
                for (i, (k, item)) in entries.into_iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    scalar(k, out);
                    out.push(b':');
                    write(item, out);
                }
                out.push(b'}');
            }
            Value::Array(items) => {
                out.push(b'[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    write(item, out);
                }
                out.push(b']');
            }
            other => scalar(other, out),
        }
    }
    /// A string, number, bool or null as compact JSON, straight into `out`.
    fn scalar<T: serde::Serialize + ?Sized>(v: &T, out: &mut Vec<u8>) {
        // Writing a string, number, bool or null into a Vec cannot fail.
        let _ = serde_json::to_writer(&mut *out, v);
    }
    let mut out = Vec::with_capacity(256);
    write(value, &mut out);
    // serde_json writes UTF-8 only, and the brackets and separators are ASCII, so the lossy
    // branch never runs.
    String::from_utf8(out).unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())
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

    /// A body arriving as `pieces`, each after `gap`, then (if `then_stall`) never finishing.
    fn trickle(
        pieces: usize,
        gap: Duration,
        then_stall: bool,
    ) -> impl futures_util::Stream<Item = Result<web::Bytes, std::convert::Infallible>> + Unpin
    {
        let body = futures_util::stream::unfold(0, move |n| async move {
            if n == pieces {
                if then_stall {
                    std::future::pending::<()>().await;
                }
                return None;
            }
            tokio::time::sleep(gap).await;
            Some((Ok(web::Bytes::from_static(b" ")), n + 1))
        });
        Box::pin(body)
    }

    const FAST: ReadTimeouts = ReadTimeouts {
        idle: Duration::from_millis(200),
        deadline: Duration::from_millis(800),
    };

    #[actix_web::rt::test]
    async fn a_body_that_arrives_in_time_is_read_whole() {
        let mut body = trickle(5, Duration::from_millis(10), false);
        let read = read_limited(&mut body, None, 100, FAST)
            .await
            .expect("read");
        assert_eq!(read.as_deref(), Some(&b"     "[..]));
        let mut big = trickle(5, Duration::from_millis(1), false);
        let read = read_limited(&mut big, None, 4, FAST).await.expect("read");
        assert!(read.is_none(), "over the limit");
    }

    #[actix_web::rt::test]
    async fn a_body_that_stops_arriving_is_a_408_after_the_idle_timeout() {
        let started = std::time::Instant::now();
        let mut body = trickle(1, Duration::from_millis(1), true);
        let err = read_limited(&mut body, None, 100, FAST)
            .await
            .expect_err("timed out");
        assert_eq!(err.code, Code::RequestTimeout);
        let waited = started.elapsed();
        assert!(waited >= FAST.idle && waited < FAST.deadline, "{waited:?}");
    }

    #[actix_web::rt::test]
    async fn a_body_that_trickles_is_a_408_at_the_deadline_however_steady() {
        let started = std::time::Instant::now();
        // A byte every 100 ms never trips the 200 ms idle timeout, but runs past 800 ms.
        let mut body = trickle(1_000, Duration::from_millis(100), false);
        let err = read_limited(&mut body, None, 10_000, FAST)
            .await
            .expect_err("timed out");
        assert_eq!(err.code, Code::RequestTimeout);
        let waited = started.elapsed();
        assert!(
            waited >= FAST.deadline && waited < FAST.deadline * 2,
            "{waited:?}"
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

    #[test]
    fn canonical_form_escapes_keys_and_strings_and_writes_numbers_as_serde_json_does() {
        let v = parse_strict(
            br#"{"z": [true, null, -1.5e10, 12345678901234567890], "\u00e9\n\"": "\u0001\t/", "": {}}"#,
        )
        .expect("json");
        // Keys sort by their UTF-8 bytes: "" < "z" < "é…".
        let expected = concat!(
            r#"{"":{},"z":[true,null,-15000000000.0,12345678901234567890],"#,
            "\"\u{e9}\\n\\\"\":\"\\u0001\\t/\"}"
        );
        assert_eq!(canonical(&v), expected);
    }
}
