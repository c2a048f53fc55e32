//! The test harness, one module per concern:
//!
//! - `stack`: [`TestStack`], one test's turn on the real local stack — Redis, SQL, and the API;
//! - [`api`]: [`Api`], the one client of the API (natively or the Worker), a method per route;
//! - [`data`]: realistic token data;
//! - [`faults`]: fault injection and measurement on loopback (a silent listener, a fault
//!   proxy, a counting proxy, a cuttable link to Postgres, a private PostgREST, Redis refusing
//!   SCAN);
//! - [`openapi`]: the committed openapi.json and validation of answers against it;
//! - [`webhook`]: a recording webhook receiver for alerts.
//!
//! Not every binary module uses every helper.
#![allow(dead_code)]

pub mod api;
pub mod data;
pub mod faults;
pub mod openapi;
mod stack;
pub mod webhook;

use std::time::Duration;

pub use api::{admin, admin_key, bearer, enc, read_key, reader, Api};
pub use data::{
    demo_accounts, demo_tokens, jwt, jwt_with_payload, many_tokens, token_of, tradovate_login,
};
pub use faults::unreachable_config;
pub use stack::{var, TestStack};

/// Awaits `fut`, failing the test instead of hanging it after `seconds`.
pub async fn bounded<T>(what: &str, seconds: u64, fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(Duration::from_secs(seconds), fut)
        .await
        .unwrap_or_else(|_| panic!("{what} did not return within {seconds} s"))
}
