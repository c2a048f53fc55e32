//! Status: the seed's figures (Supabase and Redis counts, whether a sync is needed) plus the
//! last sync, active and expiring-soon counts and recent tokens. Never returns a token.

use std::collections::BTreeSet;

use super::{JobError, Services};
use crate::domain::account::AccountName;

pub use api_model::StatusReport;

/// How many recent tokens status lists.
pub const RECENT_TOKENS: usize = 10;

/// Reads Redis's key set and Supabase's figures concurrently and compares them.
pub async fn status(services: &Services) -> Result<StatusReport, JobError> {
    let config = &services.config;
    let (redis, figures) = futures_util::future::join(
        redis_accounts(services),
        services
            .store
            .status(config.expiring_soon_seconds, RECENT_TOKENS),
    )
    .await;
    let (redis, figures) = (redis?, figures?);
    let active: BTreeSet<String> = figures.active_accounts.into_iter().collect();
    Ok(StatusReport {
        success: true,
        supabase_tokens: figures.supabase_tokens,
        active_tokens: figures.active_tokens,
        redis_tokens: redis.len(),
        sync_needed: redis != active,
        last_updated: figures.last_updated,
        last_sync: figures.last_sync,
        expiring_soon: figures.expiring_soon,
        expiring_within_seconds: config.expiring_soon_seconds,
        recent_tokens: figures.recent_tokens,
        redis_loss_suspected: figures.redis_loss.is_some(),
        redis_loss_missing: figures.redis_loss.as_ref().map_or(0, |l| l.missing),
        redis_loss_since: figures.redis_loss.and_then(|l| l.since),
        last_restore: figures.last_restore,
    })
}

/// Account names of every token key in Redis (keys that name no account are left out).
async fn redis_accounts(services: &Services) -> Result<BTreeSet<String>, JobError> {
    let mut accounts = BTreeSet::new();
    for pattern in &services.config.key_patterns {
        let scan = services
            .upstash
            .scan(pattern, services.config.scan_count)
            .await?;
        accounts.extend(
            scan.keys
                .iter()
                .filter_map(|key| AccountName::from_redis_key(key, pattern).ok())
                .map(|a| a.as_str().to_string()),
        );
    }
    Ok(accounts)
}
