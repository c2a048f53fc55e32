//! token-manager: a Cloudflare Worker that copies Tradovate access tokens from Upstash Redis
//! into Supabase Postgres (encrypted), tracks expiry and account links, and serves them back.
//!
//! Everything but [`entry`] runs natively as well, so tests drive it against real services.

pub mod alerts;
pub mod audit;
pub mod config;
pub mod crypto;
pub mod dashboard;
pub mod deferred;
pub mod domain;
pub mod http;
pub mod jobs;
pub mod logging;
pub mod store;
pub mod subrequests;
pub mod timeout;
pub mod tradovate;
pub mod upstash;

#[cfg(target_arch = "wasm32")]
mod entry;
