//! Logging: structured JSON lines by default (`HPTS_LOG_FORMAT=pretty` for humans), filtered by
//! `HPTS_LOG` (an `EnvFilter` directive such as `info` or `hpts=debug`). Each finished request
//! logs one line from its root span: trace id, route, status, tenant and latency. Tokens and
//! bodies are never logged.

use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::format::FmtSpan;

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line.
    Json,
    /// Human-readable.
    Pretty,
}

/// Installs the global subscriber (once; later calls are ignored, which tests rely on).
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_span_events(FmtSpan::CLOSE)
        .with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Pretty => builder.compact().try_init(),
    };
}
