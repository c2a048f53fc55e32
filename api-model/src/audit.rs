//! `GET /v1/audit`: who read which token. Never a token or an API key.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One row of the audit trail: a token read, by whom, from where, with what outcome.
/// `key_name` is the key's configured name or an unnamed key's short keyed fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenRead {
    /// When the read was answered.
    pub read_at: DateTime<Utc>,
    /// The account asked for.
    pub account_name: String,
    /// The HTTP status the read answered: 200, 404, 410 (or 502/503 when it failed).
    pub outcome: u16,
    /// The API key's name, never the key.
    pub key_name: String,
    /// `CF-Connecting-IP` of the request, if any.
    pub client_ip: Option<String>,
    /// `User-Agent` of the request, if any.
    pub user_agent: Option<String>,
}

/// The audit answer: matching reads, newest first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditReport {
    /// Always `true` on a 200.
    pub success: bool,
    /// How many reads follow.
    pub count: usize,
    /// The reads, newest first.
    pub reads: Vec<TokenRead>,
}
