//! List: token metadata filtered by main account, state and expiry. Never a token.

use super::{JobError, Services};
use crate::domain::access::AccountScope;
use crate::store::ListFilter;
use chrono::{DateTime, Duration, Utc};

pub use api_model::ListReport;

/// Most rows one listing returns.
pub const MAX_LIMIT: usize = 1000;
/// The largest `offset` accepted (far past any real account count).
pub const MAX_OFFSET: usize = 1_000_000;

/// What the caller asked for, already validated by the HTTP layer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub main_account: Option<String>,
    pub active: Option<bool>,
    /// Only tokens expiring within this many seconds from now (expired ones included).
    pub expiring_within_seconds: Option<i64>,
    pub limit: usize,
    pub offset: usize,
    /// The accounts the caller may see (a scoped read key's main accounts).
    pub scope: AccountScope,
}

/// Lists token metadata matching `query`, with the total count of matches.
pub async fn list(
    services: &Services,
    query: &ListQuery,
    now: DateTime<Utc>,
) -> Result<ListReport, JobError> {
    let expires_before = match query.expiring_within_seconds {
        Some(seconds) => Some(
            Duration::try_seconds(seconds)
                .and_then(|d| now.checked_add_signed(d))
                .ok_or(JobError::OutOfRange {
                    parameter: "expiring_within",
                })?,
        ),
        None => None,
    };
    let filter = ListFilter {
        main_account: query.main_account.clone(),
        main_accounts: query.scope.main_accounts().cloned(),
        active: query.active,
        expires_before,
        limit: query.limit.clamp(1, MAX_LIMIT),
        offset: query.offset.min(MAX_OFFSET),
    };
    let (mut tokens, count) = services.store.list(&filter).await?;
    for token in &mut tokens {
        token.environment = Some(services.config.renew.environment_for(&token.main_account));
    }
    Ok(ListReport {
        success: true,
        count,
        limit: filter.limit,
        offset: filter.offset,
        tokens,
    })
}
