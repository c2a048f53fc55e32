//! `GET /health`.

use serde::{Deserialize, Serialize};

/// The liveness answer; no secrets, and it answers even when configuration is broken.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HealthReport {
    /// `ok` when the Worker runs.
    pub status: String,
    /// `token-manager`.
    pub service: String,
    /// The Worker's crate version.
    pub version: String,
}

impl HealthReport {
    /// The Worker's own answer: `ok`, with its name and `version`.
    pub fn ok(version: &str) -> Self {
        Self {
            status: "ok".into(),
            service: "token-manager".into(),
            version: version.into(),
        }
    }
}
