//! `GET /v1/accounts`: the health of every main account and its sub-accounts. Never a token.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The health of one stored token, worst first in [`AccountState::ALL`]'s order of
/// precedence: when several apply, the one listed first wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AccountState {
    /// Its expiry has passed (active or not): the trading app must log in again.
    Expired,
    /// Not expired, but inactive: its key left Redis while Redis looked healthy, or cleanup
    /// expired it. Not served.
    Inactive,
    /// Active in Supabase, but its key is among those a suspected Redis loss took, and no
    /// restore has written it back yet. Bots reading Redis do not find it.
    MissingInRedis,
    /// Tradovate refused to renew its session (401): it will expire unless a bot logs in.
    RenewFailed,
    /// Active and expiring within the status window (`EXPIRING_SOON_MINUTES`).
    Expiring,
    /// Active, in Redis, and not expiring soon (or its expiry is unknown).
    Fresh,
}

impl AccountState {
    /// Every state, in order of precedence (the worst first).
    pub const ALL: [AccountState; 6] = [
        AccountState::Expired,
        AccountState::Inactive,
        AccountState::MissingInRedis,
        AccountState::RenewFailed,
        AccountState::Expiring,
        AccountState::Fresh,
    ];

    /// The state's name as the API writes it, e.g. `missing_in_redis`.
    pub fn as_str(self) -> &'static str {
        match self {
            AccountState::Expired => "expired",
            AccountState::Inactive => "inactive",
            AccountState::MissingInRedis => "missing_in_redis",
            AccountState::RenewFailed => "renew_failed",
            AccountState::Expiring => "expiring",
            AccountState::Fresh => "fresh",
        }
    }
}

/// What the audit trail last recorded for an account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastRead {
    /// When.
    pub read_at: DateTime<Utc>,
    /// The HTTP status it answered (200, 404, 410, ...).
    pub outcome: u16,
    /// Which key (its name, e.g. `bot-eu`) or job (`job:restore`, `job:renew`) read it.
    pub key_name: String,
}

/// The renewal state of a token the renew pass has tried (absent before any try).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewalInfo {
    /// `renewed`, `renew_error` (retried) or `renew_failed` (401: waits for a new token).
    pub state: Option<String>,
    /// Why the last try failed, as Tradovate or the pass said it. Never a token.
    #[serde(default)]
    pub error: Option<String>,
    /// When the pass last wrote a renewed token.
    #[serde(default)]
    pub renewed_at: Option<DateTime<Utc>>,
    /// When the pass last tried.
    #[serde(default)]
    pub attempted_at: Option<DateTime<Utc>>,
    /// Renewals since a bot last wrote a new token.
    #[serde(default)]
    pub renewal_count: Option<u64>,
}

/// The health of one account (a main account's own token or a sub-account's).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountHealth {
    /// The account, e.g. `PAAPEX1361890000001`.
    pub account: String,
    /// `main`, `sub_account` or `auth`.
    pub key_type: String,
    /// The Redis key it was read from, if recorded.
    pub redis_key: Option<String>,
    /// Its state (see [`AccountState`] for which wins).
    pub state: AccountState,
    /// Whether Supabase serves it.
    pub is_active: bool,
    /// When it expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// Seconds until it expires (negative once expired), if known.
    pub expires_in_seconds: Option<i64>,
    /// When a successful sync last saw its key in Redis.
    pub last_seen_at: Option<DateTime<Utc>>,
    /// When a sync last wrote it from Redis (it changed).
    pub last_synced_at: Option<DateTime<Utc>>,
    /// The latest read the audit trail holds, if any.
    pub last_read: Option<LastRead>,
    /// Renewal state, when the renew pass has tried it.
    pub renewal: Option<RenewalInfo>,
}

/// One main account: its worst state and its accounts (its own token first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MainAccountHealth {
    /// The main account, e.g. `APEX_136189`.
    pub main_account: String,
    /// The worst state among its accounts.
    pub state: AccountState,
    /// Its accounts: the main account's own token first, then its sub-accounts by name.
    pub accounts: Vec<AccountHealth>,
}

/// The accounts answer: every main account the caller may see.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountsReport {
    /// Always `true` on a 200.
    pub success: bool,
    /// When the states were computed.
    pub generated_at: DateTime<Utc>,
    /// The window `expiring` means, in seconds.
    pub expiring_within_seconds: i64,
    /// When the latest successful sync started, if any.
    pub last_sync_at: Option<DateTime<Utc>>,
    /// Main accounts listed.
    pub main_accounts: usize,
    /// Accounts (tokens) listed.
    pub accounts: usize,
    /// How many accounts are in each state (every state named, zeros included).
    pub states: std::collections::BTreeMap<String, usize>,
    /// The main accounts, by name.
    pub main: Vec<MainAccountHealth>,
}
