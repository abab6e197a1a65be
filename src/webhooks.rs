//! `journalEntryPosted` webhooks: a delivery worker (a task outside the writer thread) that reads
//! due rows of the transactional outbox, POSTs each to the configured endpoint signed per the
//! Standard Webhooks convention, and records the outcome through the writer. At least once: a
//! crash between sending and recording resends with the same `webhook-id`. A slow or dead
//! consumer only delays its own deliveries; writes never wait for it.
//!
//! Signature: `webhook-signature: v1,<base64(HMAC-SHA256(key, "{id}.{timestamp}.{body}"))>`,
//! where the key is the base64 part of a `whsec_...` secret, or the secret's bytes otherwise.
//! Retries: exponential backoff with jitter from `backoff_base` up to `backoff_max`; a delivery
//! older than `max_age` is marked failed.
//!
//! Each attempt is a `webhook.deliver` span (kind client). With span export on, it is a child of
//! the server span of the request that posted the entry (its `traceparent` is stored in the
//! outbox row), in the caller's trace even on a retry hours later, and the consumer gets the
//! delivery span's `traceparent`.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use futures_util::StreamExt;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tracing::Instrument;

use crate::clock::{Sources, format_timestamp, unix_ms};
use crate::report::Chain;
use crate::store::Store;
use crate::store::outbox::{Delivery, DeliveryOutcome};

/// Webhook settings.
#[derive(Clone)]
pub struct WebhookSettings {
    /// Consumer endpoint.
    pub url: String,
    /// Signing key bytes.
    pub key: Vec<u8>,
    /// Give up after this long.
    pub max_age: Duration,
    /// First retry delay.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// Per-request timeout.
    pub timeout: Duration,
}

impl std::fmt::Debug for WebhookSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookSettings")
            .field("url", &self.url)
            .field("key", &"***redacted***")
            .field("max_age", &self.max_age)
            .field("backoff_base", &self.backoff_base)
            .field("backoff_max", &self.backoff_max)
            .finish_non_exhaustive()
    }
}

/// The signing key of a secret: base64 after `whsec_`, else the secret's own bytes.
pub fn signing_key(secret: &str) -> Vec<u8> {
    secret
        .strip_prefix("whsec_")
        .and_then(|b64| STANDARD.decode(b64).ok())
        .unwrap_or_else(|| secret.as_bytes().to_vec())
}

/// `v1,<base64 signature>` over `{id}.{timestamp}.{body}`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &str) -> String {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(format!("{id}.{timestamp}.{body}").as_bytes());
    format!("v1,{}", STANDARD.encode(mac.finalize().into_bytes()))
}

/// Delivery counters for `/metrics`.
#[derive(Debug, Default)]
pub struct WebhookStats {
    /// Deliveries acknowledged by the consumer.
    pub delivered: AtomicU64,
    /// Attempts that failed (will be retried or given up).
    pub attempt_failures: AtomicU64,
    /// Deliveries given up (past max age).
    pub given_up: AtomicU64,
    /// Pending deliveries at the last look.
    pub pending: AtomicU64,
    /// Failed deliveries at the last look.
    pub failed: AtomicU64,
}

fn now_ms(sources: &Sources) -> i64 {
    unix_ms(sources.clock.now())
}

/// Delay before attempt `attempts + 1`: base × 2^attempts, capped, with ±25 % jitter.
fn backoff(settings: &WebhookSettings, attempts: i64) -> Duration {
    let exp = u32::try_from(attempts.clamp(0, 20)).unwrap_or(20);
    let raw = settings
        .backoff_base
        .saturating_mul(2u32.saturating_pow(exp))
        .min(settings.backoff_max);
    let mut r = [0u8; 2];
    let _ = getrandom::fill(&mut r);
    let jitter = f64::from(u16::from_le_bytes(r)) / f64::from(u16::MAX); // 0..1
    raw.mul_f64(0.75 + jitter * 0.5)
}

async fn attempt(
    client: &reqwest::Client,
    settings: &WebhookSettings,
    d: &Delivery,
    sources: &Sources,
) -> DeliveryOutcome {
    let timestamp = sources.clock.now().unix_timestamp();
    let span = tracing::debug_span!(
        "webhook.deliver",
        otel.kind = "client",
        webhook.id = %d.webhook_id,
        http.request.method = "POST",
        url.full = %settings.url,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    let mut request = client.post(&settings.url);
    // The delivery joins the trace of the request that posted the entry, and the consumer
    // joins the delivery's (exported only; with export off there is none).
    let parent = d
        .traceparent
        .as_deref()
        .and_then(crate::telemetry::RemoteParent::from_traceparent);
    if let Some(ids) = crate::telemetry::start_span(&span, parent) {
        request = request.header("traceparent", ids.traceparent());
    }
    let result = request
        .header("content-type", "application/json")
        .header("webhook-id", &d.webhook_id)
        .header("webhook-timestamp", timestamp.to_string())
        .header(
            "webhook-signature",
            sign(&settings.key, &d.webhook_id, timestamp, &d.payload),
        )
        .body(d.payload.clone())
        .send()
        .instrument(span.clone())
        .await;
    if let Ok(resp) = &result {
        span.record(
            "http.response.status_code",
            i64::from(resp.status().as_u16()),
        );
    }
    if !result.as_ref().is_ok_and(|r| r.status().is_success()) {
        span.record("otel.status_code", "ERROR");
    }
    let error = match result {
        Ok(resp) if resp.status().is_success() => {
            return DeliveryOutcome::Delivered {
                outbox_seq: d.outbox_seq,
                at: format_timestamp(sources.clock.now()),
            };
        }
        Ok(resp) => format!("consumer answered {}", resp.status()),
        Err(e) => format!("request failed: {e}"),
    };
    let now = now_ms(sources);
    let age = Duration::from_millis(u64::try_from(now.saturating_sub(d.created_ms)).unwrap_or(0));
    if age >= settings.max_age {
        DeliveryOutcome::Failed {
            outbox_seq: d.outbox_seq,
            error,
        }
    } else {
        let delay = i64::try_from(backoff(settings, d.attempts).as_millis()).unwrap_or(i64::MAX);
        DeliveryOutcome::Retry {
            outbox_seq: d.outbox_seq,
            next_attempt_ms: now.saturating_add(delay),
            error,
        }
    }
}

/// Runs the delivery loop until the store's writer stops.
pub async fn run(
    store: Store,
    settings: WebhookSettings,
    sources: Sources,
    stats: Arc<WebhookStats>,
) {
    let client = match reqwest::Client::builder().timeout(settings.timeout).build() {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "webhook client could not be built; deliveries stay queued");
            return;
        }
    };
    tracing::info!(url = %settings.url, "webhook delivery worker started");
    let settings = Arc::new(settings);
    while store.is_ready() {
        let due = match store.due_deliveries(now_ms(&sources), 256).await {
            Ok(d) => d,
            Err(e) => {
                tracing::warn!(error = %Chain(&e), "reading the webhook outbox failed");
                tokio::time::sleep(Duration::from_secs(1)).await;
                continue;
            }
        };
        if due.is_empty() {
            if let Ok((pending, failed, next)) = store.outbox_state().await {
                stats
                    .pending
                    .store(u64::try_from(pending).unwrap_or(0), Ordering::Relaxed);
                stats
                    .failed
                    .store(u64::try_from(failed).unwrap_or(0), Ordering::Relaxed);
                let wait = next.map_or(Duration::from_secs(1), |at| {
                    Duration::from_millis(
                        u64::try_from(at.saturating_sub(now_ms(&sources))).unwrap_or(0),
                    )
                    .clamp(Duration::from_millis(10), Duration::from_secs(1))
                });
                // Wake on the next commit (new rows) or when the next retry is due.
                let _ = tokio::time::timeout(wait, store.committed()).await;
            }
            continue;
        }
        let outcomes: Vec<DeliveryOutcome> = futures_util::stream::iter(due)
            .map(|d| {
                let (client, settings, sources) =
                    (client.clone(), Arc::clone(&settings), sources.clone());
                async move { attempt(&client, &settings, &d, &sources).await }
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for o in &outcomes {
            match o {
                DeliveryOutcome::Delivered { .. } => {
                    stats.delivered.fetch_add(1, Ordering::Relaxed)
                }
                DeliveryOutcome::Retry { error, .. } => {
                    tracing::debug!(error = %error, "webhook delivery failed; will retry");
                    stats.attempt_failures.fetch_add(1, Ordering::Relaxed)
                }
                DeliveryOutcome::Failed { error, .. } => {
                    tracing::warn!(error = %error, "webhook delivery given up after max age");
                    stats.attempt_failures.fetch_add(1, Ordering::Relaxed);
                    stats.given_up.fetch_add(1, Ordering::Relaxed)
                }
            };
        }
        if let Err(e) = store.record_deliveries(outcomes).await {
            tracing::warn!(error = %Chain(&e), "recording webhook outcomes failed; they will be resent");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    tracing::info!("webhook delivery worker stopped");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_follow_the_standard_webhooks_example() {
        // The example from the Standard Webhooks specification.
        let key = signing_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
        let body = r#"{"test": 2432232314}"#;
        assert_eq!(
            sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1_614_265_330, body),
            "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
        );
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let s = WebhookSettings {
            url: String::new(),
            key: Vec::new(),
            max_age: Duration::from_hours(1),
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_mins(1),
            timeout: Duration::from_secs(5),
        };
        assert!(backoff(&s, 0) <= Duration::from_millis(1250));
        assert!(backoff(&s, 3) >= Duration::from_secs(6));
        assert!(backoff(&s, 30) <= Duration::from_secs(75));
    }
}
