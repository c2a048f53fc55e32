//! `POST /v1/renew[?dry_run=true]` (and `?action=renew`), and the renewal parts of the other
//! answers: the Tradovate environment and the renewal status.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Tradovate's two environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Environment {
    /// `https://demo.tradovateapi.com/v1` (simulated accounts).
    Demo,
    /// `https://live.tradovateapi.com/v1` (funded accounts).
    Live,
}

impl Environment {
    /// Reads `demo` or `live` (any case, surrounding spaces ignored).
    pub fn parse(value: &str) -> Option<Environment> {
        match value.trim().to_ascii_lowercase().as_str() {
            "demo" => Some(Environment::Demo),
            "live" => Some(Environment::Live),
            _ => None,
        }
    }

    /// `demo` or `live`.
    pub fn as_str(self) -> &'static str {
        match self {
            Environment::Demo => "demo",
            Environment::Live => "live",
        }
    }
}

impl fmt::Display for Environment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a renew pass did with one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RenewOutcome {
    /// Renewed; the new token is in Redis and Supabase.
    Renewed,
    /// Dry run: it would be renewed now.
    WouldRenew,
    /// Tradovate was asked and the renewal failed (`reason` says how).
    Failed,
    /// Not tried (`reason` says why).
    Skipped,
}

/// One session's result (the accounts holding one token). Never carries a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SessionResult {
    /// The session's first account name, standing for the session.
    pub session: String,
    /// Its main account.
    pub main_account: String,
    /// The environment it was (or would be) renewed in.
    pub environment: Environment,
    /// Every account holding this session's token.
    pub accounts: Vec<String>,
    /// When the old token expires.
    pub expires_at: DateTime<Utc>,
    /// What happened.
    pub outcome: RenewOutcome,
    /// Why it failed or was skipped, or a note.
    pub reason: Option<String>,
    /// The renewed token's expiry.
    pub new_expires_at: Option<DateTime<Utc>>,
}

/// The renew answer. Never carries a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewReport {
    /// False when a session failed or this pass met a penalty (which paused renewals).
    pub success: bool,
    /// For people.
    pub message: String,
    /// Whether this was a dry run (nothing asked, nothing written).
    pub dry_run: bool,
    /// The `sync_runs` row (none for a dry run).
    pub run_id: Option<String>,
    /// Tokens inside the window.
    pub candidates: usize,
    /// Distinct tokens among them.
    pub sessions: usize,
    /// Sessions renewed.
    pub renewed: usize,
    /// Sessions whose renewal failed.
    pub failed: usize,
    /// Sessions not tried.
    pub skipped: usize,
    /// Supabase rows that now hold a renewed token.
    pub tokens_updated: u64,
    /// Redis keys that got a renewed token.
    pub keys_written: usize,
    /// Redis keys a bot rewrote before the renewed token could be written (left alone).
    pub keys_conflicted: usize,
    /// `RENEW_HOURLY_BUDGET`.
    pub hourly_budget: u64,
    /// Renewals in the last rolling hour, this pass included.
    pub renewals_last_hour: u64,
    /// Until when every renewal is paused.
    pub renewals_paused_until: Option<DateTime<Utc>>,
    /// Why renewals are paused.
    pub renewals_paused_reason: Option<String>,
    /// One entry per session.
    pub results: Vec<SessionResult>,
    /// How long the pass took.
    pub duration_ms: i64,
}

/// The last renew run, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRenew {
    /// The run's id in `sync_runs`.
    pub run_id: String,
    /// `http` or `cron`.
    pub trigger: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended.
    pub finished_at: Option<DateTime<Utc>>,
    /// Rows that got a renewed token.
    pub tokens_renewed: Option<i64>,
    /// Why it failed; never a token.
    pub error: Option<String>,
}

/// The renewal settings and state, in status.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RenewalStatus {
    /// `RENEW_ENABLED`.
    pub enabled: bool,
    /// `TRADOVATE_ENV`: the environment of every main account not listed as live.
    pub environment: Environment,
    /// `TRADOVATE_LIVE_ACCOUNTS`.
    pub live_accounts: Vec<String>,
    /// `RENEW_BEFORE_MINUTES`.
    pub renew_before_minutes: i64,
    /// `RENEW_HOURLY_BUDGET`.
    pub hourly_budget: u64,
    /// Renewals in the last rolling hour (none while renewal is off).
    pub renewals_last_hour: Option<u64>,
    /// The last renew run.
    pub last_run: Option<LastRenew>,
    /// Active tokens that came from a renewal.
    pub renewed_tokens: u64,
    /// Active tokens Tradovate refused (401), waiting for a bot to log in again.
    pub renew_failed_tokens: u64,
}
