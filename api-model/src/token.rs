//! `GET /v1/tokens/{account}` (and `?action=get&account=`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::renew::Environment;

/// The get answer. Carries a plaintext token: the Worker sends it with `Cache-Control: no-store`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenReport {
    /// Always `true` on a 200.
    pub success: bool,
    /// The account asked for.
    pub account: String,
    /// Its main account.
    pub main_account: String,
    /// The Tradovate environment it belongs to (a Worker before renewal leaves it out).
    #[serde(default)]
    pub environment: Option<Environment>,
    /// The access token, decrypted.
    pub token: String,
    /// `bearer` for now.
    pub token_type: String,
    /// The market-data token, decrypted, when the value had one.
    pub md_access_token: Option<String>,
    /// When the token expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Always `false` on a 200 (expired tokens answer 410).
    pub expired: bool,
    /// Seconds until `expires_at`, if known.
    pub expires_in_seconds: Option<i64>,
    /// When the token last changed.
    pub updated_at: DateTime<Utc>,
    /// Where the token came from (`redis_key`, `expires_source`, `value_format`, ...); no secret.
    pub metadata: Value,
}
