//! `GET /v1/tokens?main_account=&active=&expiring_within=&limit=&offset=`.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::renew::Environment;

/// A row of the token listing: metadata only, never the token.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TokenSummary {
    /// The account.
    pub account_name: String,
    /// Its main account.
    pub main_account: String,
    /// `bearer` for now.
    pub token_type: String,
    /// Length of the plaintext token (the seed's column).
    pub token_length: i64,
    /// When the token expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Whether the token is active.
    pub is_active: bool,
    /// When the row was created.
    pub created_at: DateTime<Utc>,
    /// When the token last changed.
    pub updated_at: DateTime<Utc>,
    /// When a sync last saw the token in Redis.
    pub last_synced_at: Option<DateTime<Utc>>,
    /// When the renew pass wrote this token (none if a bot wrote it).
    #[serde(default)]
    pub renewed_at: Option<DateTime<Utc>>,
    /// Renewals since a bot last wrote a new token.
    #[serde(default)]
    pub renewal_count: Option<u64>,
    /// `renewed`, `renew_error` (retried) or `renew_failed` (401: waits for a new token).
    #[serde(default)]
    pub renew_state: Option<String>,
    /// The Tradovate environment it belongs to.
    #[serde(default)]
    pub environment: Option<Environment>,
}

/// The list answer: one page of matches and their total count.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListReport {
    /// Always `true` on a 200.
    pub success: bool,
    /// Matches in all (not only this page).
    pub count: u64,
    /// Most rows in this page.
    pub limit: usize,
    /// Rows skipped before this page.
    pub offset: usize,
    /// This page's rows.
    pub tokens: Vec<TokenSummary>,
}
