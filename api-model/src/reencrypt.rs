//! `POST /v1/reencrypt`.

use serde::{Deserialize, Serialize};

/// The re-encryption answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReencryptReport {
    /// `true` when every row is now under the current key.
    pub success: bool,
    /// E.g. "Re-encrypted 22 tokens under key 1a2b3c4d".
    pub message: String,
    /// Rows rewritten.
    pub reencrypted: u64,
    /// The current key's id.
    pub key_id: String,
    /// Accounts whose token no configured key decrypts (left as they are).
    pub failed: Vec<String>,
    /// The run's id in `sync_runs`.
    pub run_id: String,
}
