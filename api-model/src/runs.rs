//! `GET /v1/runs?limit=`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One `sync_runs` row: kind, trigger, outcome, times and counts. Never `details` (the
/// skipped keys); `error` is the job's own message, which never carries a token or a key.
/// Counts a kind does not produce are `None`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    /// `sync_runs.id`.
    pub run_id: String,
    /// `sync`, `cleanup`, `reencrypt`, `restore` or `renew`.
    pub kind: String,
    /// `http` or `cron`.
    pub trigger: String,
    /// `running`, `succeeded` or `failed`.
    pub status: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it ended; `None` while running.
    pub finished_at: Option<DateTime<Utc>>,
    /// Tokens read from Redis.
    pub tokens_seen: Option<i64>,
    /// New tokens stored.
    pub inserted: Option<i64>,
    /// Changed tokens rewritten.
    pub updated: Option<i64>,
    /// Tokens that had not changed.
    pub unchanged: Option<i64>,
    /// Tokens made inactive because their key left Redis.
    pub deactivated: Option<i64>,
    /// Redis keys not stored.
    pub skipped: Option<i64>,
    /// Expired tokens made inactive (a cleanup).
    pub cleaned: Option<i64>,
    /// A sync's `synced` or `redis_loss_suspected`; a restore's `restored` or `partial`.
    pub outcome: Option<String>,
    /// Keys a restore wrote.
    pub restored: Option<i64>,
    /// Keys a restore found present (left as they were).
    pub already_present: Option<i64>,
    /// Why a failed run failed, in words.
    pub error: Option<String>,
    /// `finished_at - started_at` in milliseconds (the Worker computes it; not a column);
    /// `None` while running.
    #[serde(default)]
    pub duration_ms: Option<i64>,
}

/// The runs answer: the newest runs first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunsReport {
    /// Always `true` on a 200.
    pub success: bool,
    /// Most runs asked for.
    pub limit: usize,
    /// The runs, newest first.
    pub runs: Vec<RunSummary>,
}
