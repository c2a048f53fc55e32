//! `POST /v1/sync` (and `?action=sync`).

use serde::{Deserialize, Serialize};

/// A Redis key that was not synced, and why. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The key, e.g. `token:BROKEN`.
    pub redis_key: String,
    /// Why it was skipped, e.g. "value is not a token"; never the value itself.
    pub reason: String,
}

/// The sync answer: the seed's fields plus what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// `true` when the run finished.
    pub success: bool,
    /// The seed's message, e.g. "Synced 22 tokens from Redis to Supabase".
    pub message: String,
    /// Tokens read from Redis and stored (new, changed or unchanged).
    pub tokens_synced: usize,
    /// Rows inserted.
    pub inserted: u64,
    /// Rows whose token changed.
    pub updated: u64,
    /// Rows left as they were.
    pub unchanged: usize,
    /// Rows made inactive because their key left Redis.
    pub deactivated: u64,
    /// Keys not stored, each with its reason.
    pub skipped: Vec<Skipped>,
    /// Redis keys mapped to accounts.
    pub key_mappings: usize,
    /// The accounts synced, in key order.
    pub accounts: Vec<String>,
    /// The run's id in `sync_runs`.
    pub run_id: String,
    /// How long the run took.
    pub duration_ms: i64,
}
