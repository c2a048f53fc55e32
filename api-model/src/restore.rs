//! `POST /v1/restore` (and `?action=restore`), and the restore a sync runs after suspecting
//! that Redis lost its keys.

use serde::{Deserialize, Serialize};

/// A key the restore wrote (in a dry run: would write). Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoredKey {
    /// The account.
    pub account: String,
    /// The Redis key the token was read from, and is written back to.
    pub redis_key: String,
    /// The TTL it was written with (`PX`): the token's time left.
    pub ttl_ms: u64,
    /// `raw` or `json`: written as it was read.
    pub value_format: String,
}

/// A key that exists in Redis already (a bot wrote it): left as it is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PresentKey {
    /// The account.
    pub account: String,
    /// The key.
    pub redis_key: String,
}

/// An active token the restore did not write, and why. Never carries the value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkippedToken {
    /// The account.
    pub account: String,
    /// The key it was read from; `None` when none is recorded.
    pub redis_key: Option<String>,
    /// Why, e.g. "the token has expired (or has less than a second left)".
    pub reason: String,
}

/// The restore answer. Never carries a token or a value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RestoreReport {
    /// Always `true` on a 200.
    pub success: bool,
    /// True when nothing was written or recorded.
    pub dry_run: bool,
    /// For people, e.g. "Restored 22 tokens to Redis (0 already present, 0 skipped)".
    pub message: String,
    /// Keys written (dry run: keys absent now, which would be written).
    pub restored: Vec<RestoredKey>,
    /// Keys that exist already: never overwritten.
    pub already_present: Vec<PresentKey>,
    /// Active tokens not written, with the reason.
    pub skipped: Vec<SkippedToken>,
    /// Tokens not tried because the invocation's subrequest budget ran out: run restore again.
    #[serde(default)]
    pub deferred: usize,
    /// Inactive tokens, which a restore never writes.
    #[serde(default)]
    pub inactive: u64,
    /// The run's id in `sync_runs`; `None` for a dry run.
    pub run_id: Option<String>,
    /// How long the restore took.
    pub duration_ms: i64,
}
