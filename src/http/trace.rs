//! W3C trace context. An incoming valid `traceparent` makes the request span its child (same
//! trace id, new span id); a missing or malformed one starts a new trace (never a 4xx). Every
//! response, success or error, carries the server span's `traceparent`; `tracestate` is passed
//! through unchanged. The root span (tracing-actix-web) carries trace id, span id, route, status,
//! latency and, once authenticated, the tenant — never the token or the body.
//!
//! With span export on, the ids are the exported server span's (the OpenTelemetry SDK assigns
//! them when the root span starts, as a child of the caller's remote span), so the log line, the
//! response's `traceparent` and the exported span all name the same trace and span. The span
//! also gets `http.request.method`, `http.response.status_code` and (in `AppState::authenticate`)
//! `hpts.tenant_id` as exported attributes.

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage, ResponseError};

use crate::http::problem::{ApiError, Code};
use crate::telemetry::{self, RemoteParent};
use tracing::Span;
use tracing_actix_web::{DefaultRootSpanBuilder, RootSpanBuilder};

/// Most bytes of request headers (names and values) accepted; more is 431 `headers_too_large`.
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// The trace context of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// 16-byte trace id (inherited or new).
    pub trace_id: [u8; 16],
    /// This server span's 8-byte id.
    pub span_id: [u8; 8],
    /// The caller's span id, when a valid `traceparent` came in.
    pub parent_id: Option<[u8; 8]>,
    /// Trace flags.
    pub flags: u8,
}

impl TraceContext {
    /// The `traceparent` header value of the server span.
    pub fn header_value(&self) -> String {
        crate::telemetry::traceparent(self.trace_id, self.span_id, self.flags)
    }
}

pub use crate::telemetry::parse_traceparent;

/// Random bytes for trace and span ids, from the OS but not one `getrandom` call per id: each
/// worker thread draws a block of 4 KiB at a time and hands it out (two ids a request made the
/// system call about 2 % of a worker's time).
fn random<const N: usize>() -> [u8; N] {
    thread_local! {
        static POOL: std::cell::RefCell<(Box<[u8; 4096]>, usize)> =
            std::cell::RefCell::new((Box::new([0; 4096]), 4096));
    }
    let mut out = [0u8; N];
    POOL.with_borrow_mut(|(block, used)| {
        if *used + N > block.len() {
            // If the OS has no randomness left we still answer; ids then only need to be
            // non-zero (below).
            if getrandom::fill(&mut block[..]).is_err() {
                block.fill(0);
            }
            *used = 0;
        }
        out.copy_from_slice(&block[*used..*used + N]);
        *used += N;
    });
    if out.iter().all(|b| *b == 0) {
        out[N - 1] = 1;
    }
    out
}

/// Middleware: derive the trace context, then stamp `traceparent`/`tracestate` on the response.
pub async fn trace_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let incoming = req
        .headers()
        .get("traceparent")
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent);
    let ctx = TraceContext {
        trace_id: incoming.map_or_else(random, |(t, _, _)| t),
        span_id: random(),
        parent_id: incoming.map(|(_, p, _)| p),
        flags: incoming.map_or(1, |(_, _, f)| f),
    };
    let tracestate = req.headers().get("tracestate").cloned();
    let header_bytes: usize = req
        .headers()
        .iter()
        .map(|(n, v)| n.as_str().len() + v.len())
        .sum();
    req.extensions_mut().insert(ctx);
    // Handler and extractor errors arrive here already rendered as responses (problem+json), so
    // they get the headers too. (The request must not be cloned before routing.)
    let mut res = if header_bytes > MAX_HEADER_BYTES {
        // Refused before routing: nothing downstream ever sees (or logs) the oversized headers.
        let problem = ApiError::new(
            Code::HeadersTooLarge,
            format!(
                "request headers total {header_bytes} bytes; at most {MAX_HEADER_BYTES} are accepted"
            ),
        );
        req.into_response(problem.error_response())
            .map_into_boxed_body()
    } else {
        next.call(req).await?.map_into_boxed_body()
    };
    // The root span may have taken the exported span's ids (see `HptsRootSpan`).
    let ctx = res
        .request()
        .extensions()
        .get::<TraceContext>()
        .copied()
        .unwrap_or(ctx);
    if let Ok(v) = HeaderValue::from_str(&ctx.header_value()) {
        res.headers_mut()
            .insert(HeaderName::from_static("traceparent"), v);
    }
    if let Some(ts) = tracestate {
        res.headers_mut()
            .insert(HeaderName::from_static("tracestate"), ts);
    }
    Ok(res)
}

/// Root span with trace context and an (initially empty) tenant field.
pub struct HptsRootSpan;

impl RootSpanBuilder for HptsRootSpan {
    fn on_request_start(request: &ServiceRequest) -> Span {
        let ctx = request.extensions().get::<TraceContext>().copied();
        let span = tracing_actix_web::root_span!(
            request,
            span_id = tracing::field::Empty,
            parent_span_id = tracing::field::Empty,
            tenant_id = tracing::field::Empty
        );
        if let Some(mut ctx) = ctx {
            let parent = ctx.parent_id.map(|span_id| RemoteParent {
                trace_id: ctx.trace_id,
                span_id,
                flags: ctx.flags,
                tracestate: request
                    .headers()
                    .get("tracestate")
                    .and_then(|v| v.to_str().ok()),
            });
            if let Some(ids) = telemetry::start_span(&span, parent) {
                ctx.trace_id = ids.trace_id;
                ctx.span_id = ids.span_id;
                ctx.flags = ids.flags;
                request.extensions_mut().insert(ctx);
                telemetry::set_str_attribute(
                    &span,
                    "http.request.method",
                    request.method().as_str().to_owned(),
                );
            }
            span.record("trace_id", hex::encode(ctx.trace_id));
            span.record("span_id", hex::encode(ctx.span_id));
            if let Some(p) = ctx.parent_id {
                span.record("parent_span_id", hex::encode(p));
            }
        }
        span
    }

    fn on_request_end<B: MessageBody>(span: Span, outcome: &Result<ServiceResponse<B>, Error>) {
        if telemetry::exporting() {
            let status = match outcome {
                Ok(res) => res.status(),
                Err(e) => e.as_response_error().status_code(),
            };
            telemetry::set_int_attribute(
                &span,
                "http.response.status_code",
                i64::from(status.as_u16()),
            );
        }
        DefaultRootSpanBuilder::on_request_end(span, outcome);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_valid_traceparent_is_parsed() {
        let (t, p, f) =
            parse_traceparent("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
                .expect("valid");
        assert_eq!(hex::encode(t), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex::encode(p), "00f067aa0ba902b7");
        assert_eq!(f, 1);
    }

    #[test]
    fn malformed_traceparents_are_ignored() {
        for bad in [
            "",
            "garbage",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
        ] {
            assert!(parse_traceparent(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn new_ids_are_never_zero_and_never_repeat_across_many_pool_refills() {
        let mut seen = std::collections::HashSet::new();
        // 3,000 of each: the 4 KiB block is drawn again about ten times.
        for _ in 0..3_000 {
            let trace: [u8; 16] = random();
            let span: [u8; 8] = random();
            assert!(trace.iter().any(|b| *b != 0) && span.iter().any(|b| *b != 0));
            assert!(seen.insert(trace.to_vec()), "a trace id came twice");
            assert!(seen.insert(span.to_vec()), "a span id came twice");
        }
    }
}
