//! Wiring: [`Application::build`] opens the store (running migrations), loads the auth keys,
//! binds the listener (port 0 picks a free port, which the tests use) and assembles the actix
//! app. Tests run exactly this wiring.

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::middleware::from_fn;
use actix_web::web::{self, Data};
use actix_web::{App, HttpServer};
use tracing_actix_web::TracingLogger;

use crate::auth::Authenticator;
use crate::auth::dev::DevKey;
use crate::clock::Sources;
use crate::config::Settings;
use crate::http::edge::request_rules;
use crate::http::trace::{HptsRootSpan, trace_context};
use crate::http::write::InFlight;
use crate::http::{AppState, routes, unknown_route};
use crate::store::{Store, StoreError};

/// Longest time a client may take to send a request's headers (actix answers 408 and closes).
/// The body has its own read timeouts ([`crate::http::body::BODY_IDLE_TIMEOUT`],
/// [`crate::http::body::BODY_READ_DEADLINE`]).
pub const REQUEST_HEAD_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a connection that is being closed (for example after a 408 with part of the body
/// unread) may linger before it is dropped.
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(1);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    /// Database could not be opened or migrated.
    #[error("database")]
    Store(#[from] StoreError),
    /// Auth keys could not be loaded.
    #[error("auth: {0}")]
    Auth(String),
    /// TLS files could not be loaded.
    #[error("tls: {0}")]
    Tls(String),
    /// Metrics could not be set up.
    #[error("metrics: {0}")]
    Metrics(String),
    /// Listener could not be bound.
    #[error("listen")]
    Io(#[from] std::io::Error),
}

/// A built, bound, not yet running service.
pub struct Application {
    port: u16,
    server: Server,
    store: Store,
}

impl Application {
    /// Builds the service with the system clock and `UUIDv7` ids.
    pub async fn build(settings: Settings) -> Result<Self, StartupError> {
        Self::build_with(settings, Sources::default()).await
    }

    /// Builds the service with injected clock and id sources.
    pub async fn build_with(settings: Settings, sources: Sources) -> Result<Self, StartupError> {
        if let Some(dev) = &settings.dev {
            let key = DevKey::load_or_create(&dev.data_dir).map_err(StartupError::Auth)?;
            tracing::info!(
                jwks = %key.jwks_path.display(),
                "dev mode: mint a token with `hpts token --tenant <uuid> --scope \"<scopes>\"` (same --data-dir)"
            );
        }
        let store = Store::open(&settings.store, sources.clone())?;
        let auth = Authenticator::new(settings.auth.clone())
            .await
            .map_err(StartupError::Auth)?;
        let in_flight = Arc::new(InFlight::default());
        let webhook_stats = Arc::new(crate::webhooks::WebhookStats::default());
        if let Some(webhook) = settings.webhook.clone() {
            tokio::spawn(crate::webhooks::run(
                store.clone(),
                webhook,
                sources.clone(),
                Arc::clone(&webhook_stats),
            ));
        }
        let prometheus =
            crate::http::metrics::build(store.clone(), Arc::clone(&in_flight), webhook_stats)
                .map_err(StartupError::Metrics)?;
        let rate_limiter = settings
            .rate_limit
            .map(crate::http::rate_limit::RateLimiter::new);
        let state = Data::new(AppState {
            store: store.clone(),
            auth,
            in_flight,
            sources,
            rate_limiter,
        });
        let listener = TcpListener::bind(&settings.listen)?;
        let port = listener.local_addr()?.port();
        let mut server = HttpServer::new(move || {
            // `wrap` order: the last one is outermost. Request-head rules run outside the
            // metrics middleware, which answers `GET /metrics` itself whatever the routes said
            // (so a repeated header is refused there too), and the method they settle on is
            // the one the metrics record; their answers are still logged and traced.
            App::new()
                .wrap(prometheus.clone())
                .wrap(from_fn(request_rules))
                .wrap(TracingLogger::<HptsRootSpan>::new())
                .wrap(from_fn(trace_context))
                .app_data(state.clone())
                .configure(routes)
                .default_service(web::to(unknown_route))
        })
        // Signals are handled by the binary (SIGTERM and SIGINT both stop gracefully); a test
        // process keeps its own Ctrl-C behaviour.
        .disable_signals()
        // A client that closes its connection has abandoned its request: with half-closed
        // connections refused, actix drops the handler at once, and a read behind it (a
        // reconciliation) stops instead of holding a pooled connection until it finishes.
        .h1_allow_half_closed(false)
        .shutdown_timeout(30)
        .client_request_timeout(REQUEST_HEAD_TIMEOUT)
        .client_disconnect_timeout(LINGER_TIMEOUT);
        if let Some(workers) = settings.workers {
            server = server.workers(workers);
        }
        let server = match &settings.tls {
            Some(tls) => {
                let config = crate::tls::server_config(tls).map_err(StartupError::Tls)?;
                tracing::info!(mutual_tls = tls.client_ca.is_some(), "TLS enabled");
                server.listen_rustls_0_23(listener, config)?.run()
            }
            None => server.listen(listener)?.run(),
        };
        tracing::info!(
            listen = %settings.listen,
            port,
            database = %settings.store.path.display(),
            "hpts listening"
        );
        Ok(Application {
            port,
            server,
            store,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// A handle that can stop the server gracefully.
    pub fn handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or a handle stops it): stops accepting, lets in-flight
    /// requests finish, then lets the writer commit and answer everything queued, then returns.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        let store = self.store.clone();
        let _ = tokio::task::spawn_blocking(move || store.shutdown()).await;
        tracing::info!("hpts stopped");
        result
    }
}

/// Why `hpts serve` ended with an error.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The log subscriber or span export could not be set up.
    #[error("{0}")]
    Telemetry(String),
    /// The service could not start.
    #[error(transparent)]
    Startup(#[from] StartupError),
    /// The server failed while running.
    #[error(transparent)]
    Serve(std::io::Error),
}

impl Application {
    /// `hpts serve`: starts the runtime, the telemetry and the service, and serves until
    /// `stop_signal()` resolves (the binary passes SIGTERM/SIGINT), then stops gracefully
    /// ([`Application::run_until_stopped`]) and flushes the spans still queued for export.
    pub fn run_blocking<S, F>(settings: Settings, stop_signal: S) -> Result<(), RunError>
    where
        S: FnOnce() -> F + 'static,
        F: Future<Output = &'static str> + 'static,
    {
        actix_web::rt::System::new().block_on(async move {
            // Inside the runtime: span export requests run on it.
            let tracer = crate::telemetry::init_serving(
                &settings.log_filter,
                settings.log_format,
                settings.otlp.as_ref(),
            )
            .map_err(RunError::Telemetry)?;
            let app = Application::build(settings).await?;
            let handle = app.handle();
            actix_web::rt::spawn(async move {
                let signal = stop_signal().await;
                tracing::info!(
                    signal,
                    "stopping: finishing in-flight requests and queued writes"
                );
                handle.stop(true).await;
            });
            let served = app.run_until_stopped().await.map_err(RunError::Serve);
            if let Some(tracer) = tracer {
                // Blocking (it waits for the last exports, which run on this runtime).
                let _ = tokio::task::spawn_blocking(move || tracer.shutdown()).await;
            }
            served
        })
    }
}
