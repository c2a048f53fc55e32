//! `GET /v1/status` (and `?action=status`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::renew::{Environment, RenewalStatus};

/// The last sync run, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastSync {
    /// The run's id in `sync_runs`.
    pub run_id: String,
    /// `http` or `cron`.
    pub trigger: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Tokens it synced, once finished; `None` for a read key limited to main accounts.
    pub tokens_synced: Option<i64>,
    /// Why it failed; never a token or a key.
    pub error: Option<String>,
}

/// The last restore run, as status shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LastRestore {
    /// The run's id in `sync_runs`.
    pub run_id: String,
    /// `http` or `cron` (a cron sync that restored after a loss).
    pub trigger: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// When it started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Keys written (before a failure, too).
    pub restored: Option<i64>,
    /// Keys found present.
    pub already_present: Option<i64>,
    /// Tokens not written.
    pub skipped: Option<i64>,
    /// Why it failed; never a token or a key.
    pub error: Option<String>,
}

/// A token's metadata for status's recent list: never the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentToken {
    /// The account.
    pub account_name: String,
    /// Its main account (the Apex rule, or the value's `main_account`).
    pub main_account: String,
    /// When the token expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the token is active.
    pub is_active: bool,
    /// The Tradovate environment it belongs to (a Worker before renewal leaves it out).
    #[serde(default)]
    pub environment: Option<Environment>,
}

/// Where status's Redis figure comes from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedisTokensSource {
    /// The last successful sync's count (also what an answer without this field means: a
    /// Worker from before it counted Redis itself).
    #[default]
    LastSync,
    /// No successful sync yet: no figure.
    None,
}

/// The status answer: the seed's figures plus the last sync and expiry counts. Never a token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    /// Always `true` on a 200.
    pub success: bool,
    /// Rows in `tradovate_tokens`.
    pub supabase_tokens: u64,
    /// Active rows.
    pub active_tokens: u64,
    /// Accounts with a token key in Redis, as the last successful sync counted them (0 before
    /// one): status never scans Redis. For a scoped read key, only its main accounts'.
    pub redis_tokens: u64,
    /// Where `redis_tokens` comes from.
    #[serde(default)]
    pub redis_tokens_source: RedisTokensSource,
    /// When the sync that counted `redis_tokens` finished.
    #[serde(default)]
    pub redis_counted_at: Option<DateTime<Utc>>,
    /// True when no sync has succeeded yet, the last one failed, or Redis held a different
    /// number of accounts at the last sync than Supabase has active tokens.
    pub sync_needed: bool,
    /// The newest `updated_at`, if any row exists.
    pub last_updated: Option<DateTime<Utc>>,
    /// The last sync run; `None` (null) before the first.
    pub last_sync: Option<LastSync>,
    /// Active tokens expiring within `expiring_within_seconds`.
    pub expiring_soon: u64,
    /// The window of `expiring_soon` (`EXPIRING_SOON_MINUTES`).
    pub expiring_within_seconds: i64,
    /// The most recently updated tokens, newest first.
    pub recent_tokens: Vec<RecentToken>,
    /// True while the last completed sync suspected that Redis lost its keys (it deactivated
    /// nothing); a sync that finds Redis healthy again clears it.
    #[serde(default)]
    pub redis_loss_suspected: bool,
    /// Active tokens whose key that sync found missing (0 when no loss is suspected).
    #[serde(default)]
    pub redis_loss_missing: u64,
    /// When the syncs started suspecting it (the first of the consecutive suspecting syncs).
    #[serde(default)]
    pub redis_loss_since: Option<DateTime<Utc>>,
    /// The most recent restore run; `None` before the first.
    #[serde(default)]
    pub last_restore: Option<LastRestore>,
    /// Audit writes that failed in this Worker isolate since it started (each also logged).
    #[serde(default)]
    pub audit_write_failures: u64,
    /// Until when every renewal is paused (after a penalty ticket, a captcha or a 429).
    #[serde(default)]
    pub renewals_paused_until: Option<DateTime<Utc>>,
    /// Why renewals are paused.
    #[serde(default)]
    pub renewals_paused_reason: Option<String>,
    /// The renewal settings and state (a Worker before renewal leaves it out).
    #[serde(default)]
    pub renewal: Option<RenewalStatus>,
}
