//! `tradovate-local`: a local stand-in for Tradovate's documented auth endpoints, so the
//! token manager's renewal can be developed and tested offline.
//!
//! - `POST /v1/auth/accesstokenrequest`: a login; opens a session and mints a JWT-shaped token
//!   whose `exp` is issue + 80 minutes (used only by the dev and test scripts).
//! - `GET /v1/auth/renewaccesstoken` (`Authorization: Bearer <token>`): the same session, a new
//!   token and `expirationTime`; unknown, expired or kicked tokens answer 401; 15 requests per
//!   rolling hour per client, then penalty tickets (`p-ticket`, `p-time`).
//! - `/__admin/…` (loopback peers only): switches a test flips (see [`faults`]), settings,
//!   statistics, reset.
//!
//! Modules: [`config`] (flags), [`sessions`] (users, sessions, tokens), [`limits`] (rolling
//! hourly limits and penalties), [`faults`] (switches), [`routes`] (HTTP and the request log).

#![warn(missing_docs)]

pub mod config;
pub mod faults;
pub mod limits;
pub mod routes;
pub mod sessions;

use std::future::Future;
use std::io::Write as _;
use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

pub use config::{Config, ConfigError};
pub use faults::{Fault, FaultMode};
pub use routes::{router, AppState, Settings, Stats};

/// Why the server could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The configuration is unusable.
    #[error("invalid configuration: {0}")]
    Config(#[from] ConfigError),
    /// The listen address could not be bound, or serving failed.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address from `--listen`.
        addr: String,
        /// The operating system's error.
        source: std::io::Error,
    },
}

/// Serves `state` on `listener` until `shutdown` completes.
pub async fn serve(
    listener: TcpListener,
    state: Arc<AppState>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(
        listener,
        router(state).into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(shutdown)
    .await
}

/// A server running in this process (tests): its address and state; stops when dropped.
pub struct Running {
    /// Where it listens.
    pub addr: SocketAddr,
    /// Its state: set faults and settings, read statistics directly.
    pub state: Arc<AppState>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Running {
    /// The base URL Tradovate's docs call `{base}`: `http://ADDR/v1`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Starts a server on an ephemeral loopback port inside the current tokio runtime; its
/// request log is kept in memory (`state.log`).
pub async fn spawn(config: Config) -> Result<Running, ServeError> {
    config.validate()?;
    let listen_error = |source| ServeError::Listen {
        addr: "127.0.0.1:0".into(),
        source,
    };
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let mut state = AppState::new(config);
    state.log = Some(Default::default());
    let state = Arc::new(state);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = state.clone();
    tokio::spawn(async move {
        let _ = serve(listener, serving, async {
            let _ = stopped.await;
        })
        .await;
    });
    Ok(Running {
        addr,
        state,
        stop: Some(stop),
    })
}

/// Runs the server as the binary does: bind `--listen`, print one `tradovate-local listening
/// ...` line to stderr, serve until SIGINT or SIGTERM.
pub async fn run(config: Config) -> Result<(), ServeError> {
    config.validate()?;
    let wanted = config.listen.to_string();
    let listen_error = |source| ServeError::Listen {
        addr: wanted.clone(),
        source,
    };
    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(listen_error)?;
    let addr = listener.local_addr().map_err(listen_error)?;
    let line = format!(
        "tradovate-local listening addr={addr} token_lifetime_seconds={} renew_limit_per_hour={} access_limit_per_hour={} backoff_seconds={}\n",
        config.token_lifetime_seconds,
        config.renew_limit_per_hour,
        config.access_limit_per_hour,
        config.backoff_seconds,
    );
    let _ = std::io::stderr().lock().write_all(line.as_bytes());
    serve(listener, Arc::new(AppState::new(config)), shutdown_signal())
        .await
        .map_err(listen_error)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM.
async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {}
        () = terminate => {}
    }
}
