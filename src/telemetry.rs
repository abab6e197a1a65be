//! Logging and traces. Logs: structured JSON lines by default (`HPTS_LOG_FORMAT=pretty` for
//! humans), filtered by `HPTS_LOG` (an `EnvFilter` directive such as `info` or `hpts=debug`).
//! Each finished request logs one line from its root span: trace id, route, status, tenant and
//! latency. Tokens and bodies are never logged.
//!
//! Traces: with `HPTS_OTLP_ENDPOINT` set, the crate's spans (every level down to `debug`,
//! whatever `HPTS_LOG` says) are also exported over OTLP/HTTP (`telemetry/otlp.rs`). This
//! module is the only place that names the OpenTelemetry crates: the HTTP layer, the writer and
//! the webhook worker make plain `tracing` spans (the writer's batch span links to its requests
//! with `follows_from`), and the HTTP layer and the webhook worker use the helpers below for what
//! `tracing` cannot say (a remote parent, W3C ids, attributes that are not log fields). With
//! export off, the helpers return at once and no OpenTelemetry code runs.

mod otlp;

use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState};
use tracing::{Level, Metadata, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::FmtSpan;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use otlp::{OtlpSettings, Tracer, otlp_stats, traces_url};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// True once the OTLP export layer is installed.
static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are being exported.
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

fn log_layer(filter: &str, format: LogFormat) -> BoxedLayer {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let base = tracing_subscriber::fmt::layer()
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Json => base
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(filter)
            .boxed(),
        LogFormat::Pretty => base.compact().with_filter(filter).boxed(),
    }
}

/// What the export layer sees: this crate's spans down to `debug` and its events at `info` and
/// above (they become span events; an `error` one marks its span failed).
fn exported(meta: &Metadata<'_>) -> bool {
    let ours = meta.target() == "hpts" || meta.target().starts_with("hpts::");
    ours && if meta.is_span() {
        *meta.level() <= Level::DEBUG
    } else {
        *meta.level() <= Level::INFO
    }
}

/// Installs the global subscriber with logs only (once; later calls are ignored, which tests
/// rely on).
pub fn init(filter: &str, format: LogFormat) {
    let _ = tracing_subscriber::registry()
        .with(log_layer(filter, format))
        .try_init();
}

/// Installs the global subscriber: logs and, with `otlp`, span export. Must run inside the
/// tokio runtime that will carry the export requests (the server's); the returned [`Tracer`]
/// flushes what is still queued when it is shut down.
pub fn init_serving(
    filter: &str,
    format: LogFormat,
    otlp: Option<&OtlpSettings>,
) -> Result<Option<Tracer>, String> {
    let Some(settings) = otlp else {
        init(filter, format);
        return Ok(None);
    };
    let (tracer, sdk_tracer) = otlp::start(settings, tokio::runtime::Handle::current())?;
    let export_layer = tracing_opentelemetry::layer()
        .with_tracer(sdk_tracer)
        .with_filter(tracing_subscriber::filter::filter_fn(exported))
        .boxed();
    tracing_subscriber::registry()
        .with(log_layer(filter, format))
        .with(export_layer)
        .try_init()
        .map_err(|e| format!("tracing subscriber: {e}"))?;
    EXPORTING.store(true, Ordering::Relaxed);
    Ok(Some(tracer))
}

/// The W3C ids of a span as exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpanIds {
    /// 16-byte trace id.
    pub trace_id: [u8; 16],
    /// 8-byte span id.
    pub span_id: [u8; 8],
    /// Trace flags (`01`: sampled).
    pub flags: u8,
}

impl SpanIds {
    /// The span's `traceparent` header value.
    pub fn traceparent(&self) -> String {
        traceparent(self.trace_id, self.span_id, self.flags)
    }
}

/// A `traceparent` header value (version `00`).
pub fn traceparent(trace_id: [u8; 16], span_id: [u8; 8], flags: u8) -> String {
    format!(
        "00-{}-{}-{flags:02x}",
        hex::encode(trace_id),
        hex::encode(span_id)
    )
}

/// Parses `^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$` with all-zero ids refused (W3C rule).
pub fn parse_traceparent(s: &str) -> Option<([u8; 16], [u8; 8], u8)> {
    let b = s.as_bytes();
    if b.len() != 55 || &b[0..3] != b"00-" || b[35] != b'-' || b[52] != b'-' {
        return None;
    }
    let lower_hex = |r: &[u8]| {
        r.iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    };
    if !lower_hex(&b[3..35]) || !lower_hex(&b[36..52]) || !lower_hex(&b[53..55]) {
        return None;
    }
    let mut trace = [0u8; 16];
    let mut parent = [0u8; 8];
    let mut flags = [0u8; 1];
    hex::decode_to_slice(&s[3..35], &mut trace).ok()?;
    hex::decode_to_slice(&s[36..52], &mut parent).ok()?;
    hex::decode_to_slice(&s[53..55], &mut flags).ok()?;
    if trace == [0; 16] || parent == [0; 8] {
        return None;
    }
    Some((trace, parent, flags[0]))
}

/// A caller's span, from a valid `traceparent` (and its `tracestate`, if any).
#[derive(Debug, Clone, Copy)]
pub struct RemoteParent<'a> {
    /// The caller's trace id.
    pub trace_id: [u8; 16],
    /// The caller's span id.
    pub span_id: [u8; 8],
    /// The caller's trace flags.
    pub flags: u8,
    /// The caller's `tracestate`, verbatim.
    pub tracestate: Option<&'a str>,
}

impl RemoteParent<'_> {
    /// The span a stored `traceparent` names (no `tracestate`); `None` when it is malformed.
    pub fn from_traceparent(value: &str) -> Option<RemoteParent<'static>> {
        let (trace_id, span_id, flags) = parse_traceparent(value)?;
        Some(RemoteParent {
            trace_id,
            span_id,
            flags,
            tracestate: None,
        })
    }
}

/// When exporting: makes `span` (not yet entered) a child of `parent` (a new trace without
/// one) and returns the ids it is exported with. `None` when export is off.
pub fn start_span(span: &Span, parent: Option<RemoteParent<'_>>) -> Option<SpanIds> {
    if !exporting() {
        return None;
    }
    if let Some(p) = parent {
        let state = p
            .tracestate
            .and_then(|s| s.parse::<TraceState>().ok())
            .unwrap_or_default();
        let remote = SpanContext::new(
            TraceId::from_bytes(p.trace_id),
            SpanId::from_bytes(p.span_id),
            TraceFlags::new(p.flags),
            true,
            state,
        );
        let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(remote));
    }
    span_ids(span)
}

/// The ids `span` is exported with; `None` when export is off or the span is not exported.
pub fn span_ids(span: &Span) -> Option<SpanIds> {
    if !exporting() {
        return None;
    }
    let cx = span.context();
    let sc = cx.span().span_context().clone();
    sc.is_valid().then(|| SpanIds {
        trace_id: sc.trace_id().to_bytes(),
        span_id: sc.span_id().to_bytes(),
        flags: sc.trace_flags().to_u8(),
    })
}

/// Sets a string attribute on the exported span (not a log field); nothing when export is off.
pub fn set_str_attribute(span: &Span, key: &'static str, value: String) {
    if exporting() {
        span.set_attribute(key, value);
    }
}

/// Sets an integer attribute on the exported span (not a log field); nothing when export is off.
pub fn set_int_attribute(span: &Span, key: &'static str, value: i64) {
    if exporting() {
        span.set_attribute(key, value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_traceparent_is_version_00_with_lowercase_hex() {
        assert_eq!(
            traceparent([0xab; 16], [0x01; 8], 1),
            "00-abababababababababababababababab-0101010101010101-01"
        );
    }

    #[test]
    fn the_export_filter_takes_this_crates_debug_spans_and_info_events() {
        use tracing::callsite::Identifier;
        use tracing::field::FieldSet;
        use tracing::metadata::Kind;
        struct Cs;
        impl tracing::Callsite for Cs {
            fn set_interest(&self, _: tracing::subscriber::Interest) {}
            fn metadata(&self) -> &Metadata<'_> {
                unreachable!()
            }
        }
        static CS: Cs = Cs;
        let meta = |target: &'static str, level: Level, kind: Kind| {
            Metadata::new(
                "m",
                target,
                level,
                None,
                None,
                None,
                FieldSet::new(&[], Identifier(&CS)),
                kind,
            )
        };
        assert!(exported(&meta(
            "hpts::store::writer",
            Level::DEBUG,
            Kind::SPAN
        )));
        assert!(exported(&meta("hpts", Level::INFO, Kind::SPAN)));
        assert!(!exported(&meta(
            "hpts::store::writer",
            Level::TRACE,
            Kind::SPAN
        )));
        assert!(!exported(&meta(
            "hpts::store::writer",
            Level::DEBUG,
            Kind::EVENT
        )));
        assert!(exported(&meta("hpts::http", Level::WARN, Kind::EVENT)));
        assert!(!exported(&meta("h2::proto", Level::INFO, Kind::SPAN)));
        assert!(!exported(&meta("hptsx", Level::INFO, Kind::SPAN)));
    }
}
