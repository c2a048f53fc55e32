//! List: token metadata filtered by main account, state and expiry. Never a token.

use chrono::{DateTime, Duration, Utc};
use serde::Serialize;

use super::{JobError, Services};
use crate::store::{ListFilter, TokenSummary};

/// Most rows one listing returns.
pub const MAX_LIMIT: usize = 1000;

/// What the caller asked for, already validated by the HTTP layer.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListQuery {
    pub main_account: Option<String>,
    pub active: Option<bool>,
    /// Only tokens expiring within this many seconds from now (expired ones included).
    pub expiring_within_seconds: Option<i64>,
    pub limit: usize,
    pub offset: usize,
}

/// The list answer.
#[derive(Debug, Clone, Serialize)]
pub struct ListReport {
    pub success: bool,
    pub count: u64,
    pub limit: usize,
    pub offset: usize,
    pub tokens: Vec<TokenSummary>,
}

/// Lists token metadata matching `query`, with the total count of matches.
pub async fn list(
    services: &Services,
    query: &ListQuery,
    now: DateTime<Utc>,
) -> Result<ListReport, JobError> {
    let filter = ListFilter {
        main_account: query.main_account.clone(),
        active: query.active,
        expires_before: query
            .expiring_within_seconds
            .map(|s| now + Duration::seconds(s)),
        limit: query.limit.clamp(1, MAX_LIMIT),
        offset: query.offset,
    };
    let (tokens, count) = services.store.list(&filter).await?;
    Ok(ListReport {
        success: true,
        count,
        limit: filter.limit,
        offset: filter.offset,
        tokens,
    })
}
