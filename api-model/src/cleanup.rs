//! `POST /v1/cleanup` (and `?action=cleanup`).

use serde::{Deserialize, Serialize};

/// The cleanup answer, with the seed's fields.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CleanupReport {
    /// `true` when the run finished.
    pub success: bool,
    /// Tokens made inactive because they expired.
    pub cleaned: u64,
    /// The seed's message, e.g. "Cleaned up 3 expired tokens".
    pub message: String,
    /// The run's id in `sync_runs`.
    pub run_id: String,
    /// `sync_runs` rows deleted for being older than `SYNC_RUNS_RETENTION_DAYS` (0 from a
    /// Worker before retention).
    #[serde(default)]
    pub pruned_runs: u64,
    /// Audit rows older than `AUDIT_RETENTION_DAYS` deleted by this run.
    #[serde(default)]
    pub audit_pruned: u64,
}
