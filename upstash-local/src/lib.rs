//! `upstash-local`: a local server speaking Upstash's Redis REST API
//! (<https://upstash.com/docs/redis/features/restapi>), proxying every command to a real
//! `redis-server`.
//!
//! Modules, one per concern:
//! - [`config`]: flags and environment variables;
//! - [`command`]: commands parsed from JSON arrays or URL paths;
//! - [`encoding`]: Redis replies to Upstash's JSON (plain or base64);
//! - [`backend`]: the Redis connection, pipelines and MULTI/EXEC;
//! - [`events`]: pub/sub and `MONITOR` as server-sent events;
//! - [`sync_token`]: the read-your-writes `upstash-sync-token` header;
//! - [`routes`]: HTTP endpoints, authentication, body limit and the request log;
//! - [`error`]: request failures and their HTTP statuses.

#![warn(missing_docs)]

pub mod backend;
pub mod command;
pub mod config;
pub mod encoding;
pub mod error;
pub mod events;
pub mod routes;
pub mod sync_token;

use std::future::Future;
use std::io::Write as _;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use backend::{Backend, BackendError};
pub use config::{Config, ConfigError};
pub use routes::{router, AppState, RequestLog};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// Redis is unreachable at start-up.
    #[error(transparent)]
    Backend(#[from] BackendError),
    /// The listen address could not be bound, or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address from `--listen`.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

impl AppState {
    /// Connects to Redis as configured and builds the shared state.
    pub async fn connect(config: &Config) -> Result<Self, ServeError> {
        config.validate()?;
        let backend = Backend::connect(&config.redis_url, &config.redis_url_redacted()).await?;
        Ok(Self {
            backend,
            token: config.token.clone(),
            read_only_token: config.read_only_token.clone(),
            max_request_bytes: config.max_request_bytes,
            request_log: routes::RequestLog::Stderr,
            sync_tokens: sync_token::SyncTokens::default(),
            shutdown: events::Shutdown::default(),
        })
    }
}

/// Serves `state` on `listener` until `shutdown` completes; then ends the open event streams
/// and waits for the other requests in flight.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let state = Arc::new(state);
    let stopping = state.clone();
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move {
            shutdown.await;
            stopping.shutdown.begin();
        })
        .await
}

/// Runs the server as the binary does: connect to Redis, bind `--listen`, print one
/// `upstash-local listening ...` line to stderr, serve until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), ServeError> {
    let state = AppState::connect(&config).await?;
    let listen_error = |source| ServeError::Listen {
        addr: config.listen.to_string(),
        source,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let line =
        format!(
        "upstash-local listening addr={addr} redis={} max_request_bytes={} read_only_token={}\n",
        config.redis_url_redacted(),
        config.max_request_bytes,
        if config.read_only_token.is_some() { "set" } else { "unset" },
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    serve(listener, state, shutdown_signal())
        .await
        .map_err(listen_error)
}

/// Completes on SIGINT (Ctrl-C) or, on Unix, SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
