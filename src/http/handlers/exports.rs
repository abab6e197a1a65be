//! `GET /v1/exports/journal?format=beancount|hledger[&from_date=&to_date=]`
//! (`hpts:ledger:read`): the caller's ledger as a plain-text accounting journal, streamed as it
//! is read. The export is a heavy read (admitted per tenant, 503 `overloaded` when busy, before
//! anything is sent); it runs on a read connection and hands 64 KiB chunks to the response
//! through a small bounded channel, so neither side holds more than a few chunks, and a client
//! that goes away stops it.

use std::io::{self, Write};

use actix_web::web::{Bytes, Data};
use actix_web::{HttpRequest, HttpResponse};
use tokio::sync::mpsc;
use utoipa::IntoParams;

use crate::auth::Scope;
use crate::http::AppState;
use crate::http::handlers::Query;
use crate::http::problem::{ApiError, FieldError, Problem};
use crate::ledger::export::Format;
use crate::store::export::ExportRange;

/// Bytes per chunk sent to the client.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the reader and the response.
const IN_FLIGHT: usize = 4;

/// A `Write` that hands full chunks to the response stream; a send to a client that has gone
/// fails with `BrokenPipe`, which ends the export.
struct ChunkWriter {
    tx: mpsc::Sender<Result<Bytes, io::Error>>,
    buf: Vec<u8>,
}

impl ChunkWriter {
    fn send(&mut self) -> io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(Ok(chunk))
            .map_err(|_| io::Error::new(io::ErrorKind::BrokenPipe, "the client went away"))
    }
}

impl Write for ChunkWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.send()
    }
}

/// Export the journal
///
/// Requires scope `hpts:ledger:read`. Streams the caller's ledger as a plain-text
/// accounting journal (`text/plain; charset=utf-8`) in the Beancount 3 or hledger format:
/// every chart account under a hierarchical name (e.g. `Assets:Loans:Principal-Receivable`)
/// with its code; one transaction per journal entry, dated `effective_at`, with the entry id
/// and event type; amounts in major units by the currency's ISO 4217 exponent; and, for
/// each period close, balance assertions of every account as of its `through_date`. A
/// whole-tenant export passes `bean-check` and `hledger check`, and the balances they report
/// equal `GET /v1/trial-balance`. A heavy read: bounded per tenant, and stopped when the
/// client disconnects.
#[utoipa::path(
    get,
    path = "/v1/exports/journal",
    operation_id = "export_journal",
    tag = "reads",
    params(ExportQuery),
    responses(
        (status = 200, description = "The journal file, streamed (`text/plain; charset=utf-8`).", body = String, content_type = "text/plain"),
        (status = 400, description = "`validation_failed`: a missing or unknown `format`, a malformed `from_date` or `to_date`, or an unknown or repeated query parameter.",
            body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`overloaded`: the tenant already runs its share of heavy reads, or no read connection was free within 1 s.",
            body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying"))),
    ),
    security(("bearer" = ["hpts:ledger:read"])),
)]
pub async fn journal(req: HttpRequest, state: Data<AppState>) -> Result<HttpResponse, ApiError> {
    let principal = state.authenticate(&req, Scope::LedgerRead).await?;
    let mut query = Query::parse(&req, &["format", "from_date", "to_date"])?;
    let format = match query.get("format") {
        None => {
            query.fail(FieldError::new("format", "required", "is required"));
            None
        }
        Some(raw) => {
            let parsed = Format::parse(raw);
            if parsed.is_none() {
                query.fail(FieldError::new(
                    "format",
                    "invalid_value",
                    "must be one of: beancount, hledger",
                ));
            }
            parsed
        }
    };
    let range = ExportRange {
        from: query.date("from_date"),
        to: query.date("to_date"),
    };
    query.finish()?;
    let Some(format) = format else {
        return Err(ApiError::validation(Vec::new()));
    };
    let (tx, rx) = mpsc::channel(IN_FLIGHT);
    let out = ChunkWriter {
        tx: tx.clone(),
        buf: Vec::with_capacity(CHUNK),
    };
    let export = state
        .store
        .export_journal(principal.tenant, format, range, out)?;
    actix_web::rt::spawn(async move {
        if let Err(e) = export.await {
            tracing::warn!(error = %e, "journal export ended early");
            // The client sees the stream fail instead of a silently truncated journal.
            let _ = tx
                .send(Err(io::Error::other(
                    "the export failed; see the service log",
                )))
                .await;
        }
    });
    let body = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (chunk, rx))
    });
    let extension = match format {
        Format::Beancount => "beancount",
        Format::Hledger => "journal",
    };
    Ok(HttpResponse::Ok()
        .content_type("text/plain; charset=utf-8")
        .insert_header((
            "Content-Disposition",
            format!("inline; filename=\"hpts-{}.{extension}\"", principal.tenant),
        ))
        .streaming(body))
}

// The query string, described for the `OpenAPI` document.

/// Query of `GET /v1/exports/journal`. Unknown or repeated parameters are 400.
#[derive(IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(
    dead_code,
    reason = "documentation-only: describes the wire, never built"
)]
pub struct ExportQuery {
    /// The file format (required; a missing or unknown one is 400 `validation_failed`).
    #[param(inline)]
    format: Format,
    /// Only entries effective on or after this date (`YYYY-MM-DD`).
    #[param(format = Date)]
    from_date: Option<String>,
    /// Only entries effective on or before this date (`YYYY-MM-DD`).
    #[param(format = Date)]
    to_date: Option<String>,
}
