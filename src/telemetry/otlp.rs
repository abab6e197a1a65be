//! OTLP trace export: OTLP/HTTP with protobuf bodies (`opentelemetry-otlp`), sent by the
//! service's own `reqwest` client on the server's tokio runtime (no second runtime, no second
//! HTTP stack). Spans are batched by the SDK's `BatchSpanProcessor` on its own thread, off the
//! request path, behind a bounded queue: a span that finds the queue full is dropped at once,
//! and so is a batch whose export fails (collector down, timeout, non-2xx). Both count in
//! `hpts_otlp_spans_dropped_total`; spans the collector accepted count in
//! `hpts_otlp_spans_exported_total`. [`Tracer::shutdown`] exports what is still queued.
//!
//! Standard variables: `OTEL_SERVICE_NAME` (default `hpts`), `OTEL_EXPORTER_OTLP_TIMEOUT` and
//! `OTEL_BSP_MAX_QUEUE_SIZE` come through the configuration; the SDK itself reads
//! `OTEL_EXPORTER_OTLP_HEADERS` (and `OTEL_EXPORTER_OTLP_TRACES_HEADERS`),
//! `OTEL_TRACES_SAMPLER`/`OTEL_TRACES_SAMPLER_ARG`, `OTEL_BSP_SCHEDULE_DELAY`,
//! `OTEL_BSP_MAX_EXPORT_BATCH_SIZE`, `OTEL_RESOURCE_ATTRIBUTES` and the span limits.

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use opentelemetry::KeyValue;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_http::{HttpClient, HttpError};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{
    BatchConfigBuilder, BatchSpanProcessor, SdkTracer, SdkTracerProvider, Span, SpanData,
    SpanExporter, SpanProcessor,
};

/// Export settings (validated by the configuration).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtlpSettings {
    /// Where spans are sent (the `/v1/traces` URL, see [`traces_url`]).
    pub traces_url: String,
    /// `service.name` of the exported resource.
    pub service_name: String,
    /// Longest one export request may take (connect, send, answer).
    pub timeout: Duration,
    /// Most spans waiting for export; more are dropped.
    pub max_queue: usize,
}

/// Export counters for `/metrics`.
#[derive(Debug, Default)]
pub struct OtlpStats {
    /// Spans the collector accepted.
    pub exported: AtomicU64,
    /// Spans lost: the queue was full, or their batch's export failed.
    pub dropped: AtomicU64,
    /// Spans handed to the batch processor and not yet taken for export.
    queued: AtomicUsize,
}

static STATS: OtlpStats = OtlpStats {
    exported: AtomicU64::new(0),
    dropped: AtomicU64::new(0),
    queued: AtomicUsize::new(0),
};

/// The process's export counters (zero while export is off).
pub fn otlp_stats() -> &'static OtlpStats {
    &STATS
}

/// The URL spans are sent to, from `HPTS_OTLP_ENDPOINT`: a base URL (as
/// `OTEL_EXPORTER_OTLP_ENDPOINT` in the OTLP specification) gets `/v1/traces` appended to its
/// path; a URL whose path already ends in `/v1/traces` is used as it is.
pub fn traces_url(raw: &str) -> Result<String, String> {
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| format!("{raw:?} is not a URL ({e}); expected e.g. http://127.0.0.1:4318"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(format!(
            "{raw:?} must be an http:// or https:// URL with a host"
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(format!("{raw:?} must not have a query or a fragment"));
    }
    if url.path().ends_with("/v1/traces") {
        return Ok(url.to_string());
    }
    let mut url = url;
    let path = format!("{}/v1/traces", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok(url.to_string())
}

/// The running export pipeline.
#[derive(Debug)]
pub struct Tracer {
    provider: SdkTracerProvider,
}

impl Tracer {
    /// Exports every span still queued (each batch bounded by the export timeout, the whole
    /// by the SDK's five-second shutdown limit), then stops. Blocking: call it off the runtime
    /// thread (the export requests run there).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::warn!(error = %e, "flushing spans at shutdown did not finish");
        }
    }
}

/// Builds the pipeline; export requests will run on `runtime`.
pub(super) fn start(
    settings: &OtlpSettings,
    runtime: tokio::runtime::Handle,
) -> Result<(Tracer, SdkTracer), String> {
    let client = reqwest::Client::builder()
        .timeout(settings.timeout)
        .connect_timeout(settings.timeout)
        .build()
        .map_err(|e| format!("OTLP HTTP client: {e}"))?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(RuntimeClient { client, runtime })
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(settings.traces_url.clone())
        .with_timeout(settings.timeout)
        .build()
        .map_err(|e| format!("OTLP exporter: {e}"))?;
    // The builder reads the OTEL_BSP_* variables; the queue bound is ours, so both agree.
    let config = BatchConfigBuilder::default()
        .with_max_queue_size(settings.max_queue)
        .build();
    let batch = BatchSpanProcessor::new(CountingExporter { inner: exporter }, config);
    let resource = Resource::builder()
        .with_service_name(settings.service_name.clone())
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(BoundedQueue {
            inner: batch,
            max_queue: settings.max_queue.max(1),
        })
        .with_resource(resource)
        .build();
    let tracer = provider.tracer("hpts");
    Ok((Tracer { provider }, tracer))
}

/// Sends export requests with the service's `reqwest` client on the server's runtime (the
/// batch processor's thread only waits for the answer).
#[derive(Debug)]
struct RuntimeClient {
    client: reqwest::Client,
    runtime: tokio::runtime::Handle,
}

/// Largest collector answer read (an `ExportTraceServiceResponse` is a few bytes).
const MAX_ANSWER_BYTES: usize = 64 * 1024;

#[async_trait::async_trait]
impl HttpClient for RuntimeClient {
    async fn send_bytes(
        &self,
        request: http::Request<Bytes>,
    ) -> Result<http::Response<Bytes>, HttpError> {
        let (parts, body) = request.into_parts();
        let client = self.client.clone();
        let sent = self.runtime.spawn(async move {
            let mut answer = client
                .request(parts.method, parts.uri.to_string())
                .headers(parts.headers)
                .body(body)
                .send()
                .await?;
            let status = answer.status();
            let headers = answer.headers().clone();
            let mut bytes = Vec::new();
            while let Some(chunk) = answer.chunk().await? {
                if bytes.len() + chunk.len() > MAX_ANSWER_BYTES {
                    break;
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok::<_, reqwest::Error>((status, headers, bytes))
        });
        let (status, headers, bytes) = sent.await??;
        let mut response = http::Response::new(Bytes::from(bytes));
        *response.status_mut() = status;
        *response.headers_mut() = headers;
        Ok(response)
    }
}

/// The OTLP exporter, counting what the collector took and what was lost.
#[derive(Debug)]
struct CountingExporter<E> {
    inner: E,
}

impl<E: SpanExporter> SpanExporter for CountingExporter<E> {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        let n = batch.len();
        STATS.queued.fetch_sub(n, Ordering::Relaxed);
        let result = self.inner.export(batch).await;
        let counter = if result.is_ok() {
            &STATS.exported
        } else {
            &STATS.dropped
        };
        counter.fetch_add(n as u64, Ordering::Relaxed);
        result
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn shutdown(&self) -> OTelSdkResult {
        self.inner.shutdown()
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The batch processor behind a counted bound: a span that would exceed `max_queue` waiting
/// spans is dropped here and counted (the SDK drops it silently otherwise). Since at most
/// `max_queue` spans are ever handed over and not yet taken, the SDK's own queue of the same
/// size never refuses one.
#[derive(Debug)]
struct BoundedQueue {
    inner: BatchSpanProcessor,
    max_queue: usize,
}

impl SpanProcessor for BoundedQueue {
    fn on_start(&self, span: &mut Span, cx: &opentelemetry::Context) {
        self.inner.on_start(span, cx);
    }

    fn on_end(&self, span: SpanData) {
        if STATS.queued.fetch_add(1, Ordering::Relaxed) >= self.max_queue {
            STATS.queued.fetch_sub(1, Ordering::Relaxed);
            STATS.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        self.inner.on_end(span);
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_base_url_gets_the_traces_path() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
        assert_eq!(
            traces_url("http://collector:4318/").unwrap(),
            "http://collector:4318/v1/traces"
        );
        assert_eq!(
            traces_url("https://otel.example/prefix/").unwrap(),
            "https://otel.example/prefix/v1/traces"
        );
    }

    #[test]
    fn a_full_traces_url_is_kept() {
        assert_eq!(
            traces_url("http://127.0.0.1:4318/v1/traces").unwrap(),
            "http://127.0.0.1:4318/v1/traces"
        );
    }

    #[test]
    fn malformed_endpoints_are_refused() {
        for bad in [
            "",
            "127.0.0.1:4318",
            "grpc://127.0.0.1:4317",
            "ftp://host/",
            "http://",
            "http://host:4318/?x=1",
            "not a url",
        ] {
            assert!(traces_url(bad).is_err(), "{bad:?} was accepted");
        }
    }
}
