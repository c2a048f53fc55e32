//! `POST /v1/sync` (and `?action=sync`).

use serde::{Deserialize, Serialize};

use crate::restore::RestoreReport;

/// A Redis key that was not synced, and why. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Skipped {
    /// The key, e.g. `token:BROKEN`.
    pub redis_key: String,
    /// Why it was skipped, e.g. "value is not a token"; never the value itself.
    pub reason: String,
}

/// How a sync ended.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// Redis looked healthy: tokens whose key left Redis were deactivated. (A Worker from
    /// before loss detection sends no outcome: this.)
    #[default]
    Synced,
    /// Redis is empty, or so many keys vanished at once that Redis itself lost them: nothing
    /// was deactivated.
    RedisLossSuspected,
}

impl Outcome {
    /// `synced` or `redis_loss_suspected` (also `sync_runs.outcome`).
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Synced => "synced",
            Outcome::RedisLossSuspected => "redis_loss_suspected",
        }
    }
}

/// Why a sync suspected that Redis lost its keys, with the counts it decided on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RedisLoss {
    /// Active, unexpired tokens whose key is gone.
    pub missing: usize,
    /// Active, unexpired tokens Supabase holds.
    pub active_unexpired: usize,
    /// Keys Redis holds under the token patterns.
    pub redis_token_keys: usize,
    /// `REDIS_LOSS_THRESHOLD` in force.
    pub threshold_percent: u64,
    /// `REDIS_LOSS_MIN_MISSING` in force.
    pub min_missing: usize,
    /// `redis_empty`, `mass_disappearance`, or `restore_pending` (an earlier loss no restore
    /// has finished yet).
    pub reason: String,
    /// The accounts whose keys are gone (active, unexpired tokens), by name.
    #[serde(default)]
    pub accounts: Vec<String>,
}

/// The sync answer: the seed's fields plus what changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SyncReport {
    /// `true` when the run finished.
    pub success: bool,
    /// The seed's message, e.g. "Synced 22 tokens from Redis to Supabase".
    pub message: String,
    /// Whether Redis looked healthy, or lost its keys.
    #[serde(default)]
    pub outcome: Outcome,
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
    /// Why a loss is suspected; `None` when Redis looked healthy.
    #[serde(default)]
    pub redis_loss: Option<RedisLoss>,
    /// The restore the sync ran in the same invocation after suspecting a loss
    /// (`RESTORE_ON_LOSS`).
    #[serde(default)]
    pub restore: Option<RestoreReport>,
    /// Why that restore failed (the sync is recorded either way; run restore again).
    #[serde(default)]
    pub restore_error: Option<String>,
}
