//! The one write path every POST shares: authenticate → scope → `Idempotency-Key` → body
//! (415/413/400) → parse into a ledger command (400/422) → in-flight guard (409) →
//! `store.write` → 201, or 200 with `Idempotent-Replayed: true` and the stored body.

use std::collections::HashSet;
use std::sync::Arc;

use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::web::{self, Data};
use actix_web::{HttpRequest, HttpResponse};
use serde_json::Value;
use tracing::Instrument;

use crate::auth::Scope;
use crate::http::AppState;
use crate::http::body::{canonical, closing_response, read_json};
use crate::http::problem::{ApiError, Code};
use crate::http::schema::IDEMPOTENCY_KEY_PATTERN;
use crate::http::validate::Report;
use crate::ledger::commands::Command;
use crate::ledger::ids::TenantId;
use crate::store::{WriteOutcome, WriteRequest};

/// Parses the `Idempotency-Key` header: 8–255 chars of `^[A-Za-z0-9][A-Za-z0-9._:\-]{7,254}$`.
/// (A repeated header never gets here: the edge refuses it with `duplicate_header`.)
pub fn idempotency_key(req: &HttpRequest) -> Result<String, ApiError> {
    let Some(raw) = req.headers().get("idempotency-key") else {
        return Err(ApiError::new(
            Code::IdempotencyKeyMissing,
            "the Idempotency-Key header is required on every POST",
        ));
    };
    let invalid = || {
        ApiError::new(
            Code::IdempotencyKeyInvalid,
            format!("Idempotency-Key must be 8-255 characters matching {IDEMPOTENCY_KEY_PATTERN}"),
        )
    };
    let key = raw.to_str().map_err(|_| invalid())?;
    let b = key.as_bytes();
    let valid = (8..=255).contains(&b.len())
        && b[0].is_ascii_alphanumeric()
        && b.iter()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'_' | b':' | b'-'));
    if valid {
        Ok(key.to_owned())
    } else {
        Err(invalid())
    }
}

/// Keys whose first request is still being processed, per tenant.
#[derive(Default)]
pub struct InFlight {
    keys: parking_lot::Mutex<HashSet<(TenantId, String)>>,
    conflicts: std::sync::atomic::AtomicU64,
}

/// Releases an in-flight key when the request finishes (or is dropped).
pub struct InFlightGuard {
    owner: Arc<InFlight>,
    key: (TenantId, String),
}

impl InFlight {
    /// Claims `key` for `tenant`, or 409 `idempotency_in_progress` if a request holds it.
    pub fn claim(self: &Arc<Self>, tenant: TenantId, key: &str) -> Result<InFlightGuard, ApiError> {
        let entry = (tenant, key.to_owned());
        if self.keys.lock().insert(entry.clone()) {
            Ok(InFlightGuard {
                owner: Arc::clone(self),
                key: entry,
            })
        } else {
            self.conflicts
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            Err(ApiError::new(
                Code::IdempotencyInProgress,
                "a request with this Idempotency-Key is still being processed; retry shortly",
            )
            .retry_after(1))
        }
    }
}

impl InFlight {
    /// How many requests were answered 409 `idempotency_in_progress`.
    pub fn conflicts(&self) -> u64 {
        self.conflicts.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.owner.keys.lock().remove(&self.key);
    }
}

/// Turns a parse report into the right error: 400 for format problems, else 422 for zero amounts.
pub fn finish_report(report: Report) -> Result<(), ApiError> {
    if !report.errors.is_empty() {
        return Err(ApiError::validation(report.errors));
    }
    if !report.zero_amounts.is_empty() {
        let detail = format!("{} must be greater than 0", report.zero_amounts[0].field);
        return Err(
            ApiError::new(Code::AmountMustBePositive, detail).with_errors(report.zero_amounts)
        );
    }
    Ok(())
}

/// How one write route is handled.
#[derive(Debug, Clone, Copy)]
pub struct WriteRoute {
    /// Scope required.
    pub scope: Scope,
    /// Route template (part of the fingerprint).
    pub route: &'static str,
    /// Body limit in bytes.
    pub limit: usize,
}

/// Runs the shared write path with a route-specific body parser.
pub async fn handle_write(
    req: HttpRequest,
    mut payload: web::Payload,
    state: Data<AppState>,
    route: WriteRoute,
    parse: fn(&Value) -> Result<Command, ApiError>,
) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, route.scope).await?;
    let key = idempotency_key(&req)?;
    let body = match read_json(&req, &mut payload, route.limit).await {
        Ok(body) => body,
        // A stalled body: answer 408 and close the connection (never keep draining it).
        Err(e) if e.code == Code::RequestTimeout => return Ok(closing_response(&e, payload)),
        Err(e) => return Err(e),
    };
    let command = parse(&body.value)?;
    // Stored and returned verbatim (the client's own text), never used for financial logic.
    let metadata = body.raw_metadata();
    let request = WriteRequest {
        tenant: principal.tenant,
        actor: principal.subject,
        route: route.route,
        idempotency_key: key,
        payload: canonical(&body.value),
        metadata,
        command,
        traceparent: crate::telemetry::span_ids(&tracing::Span::current())
            .map(|ids| ids.traceparent()),
    };
    let _guard = state
        .in_flight
        .claim(request.tenant, &request.idempotency_key)?;
    let outcome = state
        .store
        .write(request)
        .instrument(tracing::debug_span!("writer.queue_and_commit"))
        .await?;
    let json = HeaderValue::from_static("application/json");
    Ok(match outcome {
        WriteOutcome::Created(body) => HttpResponse::build(StatusCode::CREATED)
            .insert_header((header::CONTENT_TYPE, json))
            .body(body),
        WriteOutcome::Replayed(body) => HttpResponse::build(StatusCode::OK)
            .insert_header((header::CONTENT_TYPE, json))
            .insert_header(("Idempotent-Replayed", "true"))
            .body(body),
    })
}
