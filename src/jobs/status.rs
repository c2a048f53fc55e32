//! Status: the seed's figures (Supabase and Redis counts, whether a sync is needed) plus the
//! last sync, active and expiring-soon counts and recent tokens, for every account or a read
//! key's main accounts. Never returns a token, and never scans Redis: its figure is what the
//! last successful sync counted (`redis_tokens_source` says so).

use super::{JobError, Services};
use crate::domain::access::AccountScope;

pub use api_model::{RedisTokensSource, StatusReport};

/// How many recent tokens status lists.
pub const RECENT_TOKENS: usize = 10;

/// Status over every account.
pub async fn status(services: &Services) -> Result<StatusReport, JobError> {
    status_in(services, &AccountScope::All).await
}

/// Status over the accounts `scope` may see: one PostgREST call, no Redis.
pub async fn status_in(
    services: &Services,
    scope: &AccountScope,
) -> Result<StatusReport, JobError> {
    let config = &services.config;
    let figures = services
        .store
        .status(
            config.expiring_soon_seconds,
            RECENT_TOKENS,
            scope.main_accounts(),
        )
        .await?;
    let last_failed = figures
        .last_sync
        .as_ref()
        .is_some_and(|run| run.status == "failed");
    let (redis_tokens, source) = match figures.redis_tokens {
        Some(n) => (n, RedisTokensSource::LastSync),
        None => (0, RedisTokensSource::None),
    };
    Ok(StatusReport {
        success: true,
        supabase_tokens: figures.supabase_tokens,
        active_tokens: figures.active_tokens,
        redis_tokens,
        redis_tokens_source: source,
        redis_counted_at: figures.redis_counted_at,
        sync_needed: figures.redis_tokens.is_none()
            || last_failed
            || redis_tokens != figures.active_tokens,
        last_updated: figures.last_updated,
        last_sync: figures.last_sync,
        expiring_soon: figures.expiring_soon,
        expiring_within_seconds: config.expiring_soon_seconds,
        recent_tokens: figures.recent_tokens,
        redis_loss_suspected: figures.redis_loss.is_some(),
        redis_loss_missing: figures.redis_loss.as_ref().map_or(0, |l| l.missing),
        redis_loss_since: figures.redis_loss.and_then(|l| l.since),
        last_restore: figures.last_restore,
        audit_write_failures: crate::audit::write_failures(),
    })
}
