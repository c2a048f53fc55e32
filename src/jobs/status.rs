//! Status: the seed's figures (Supabase and Redis counts, whether a sync is needed) plus the
//! last sync, active and expiring-soon counts and recent tokens, for every account or a read
//! key's main accounts. Never returns a token, and never scans Redis: its figure is what the
//! last successful sync counted (`redis_tokens_source` says so).

use chrono::Utc;

use super::renew::{Pause, BUDGET_KEY, PAUSE_KEY};
use super::{JobError, Services};
use crate::domain::access::AccountScope;
use crate::upstash::{self, Reply, UpstashError};

pub use api_model::{RedisTokensSource, RenewalStatus, StatusReport};

/// How many recent tokens status lists.
pub const RECENT_TOKENS: usize = 10;

/// Status over every account.
pub async fn status(services: &Services) -> Result<StatusReport, JobError> {
    status_in(services, &AccountScope::All).await
}

/// Status over the accounts `scope` may see: one PostgREST call, no Redis scan; while renewal
/// is on, also its state (one Upstash pipeline, and for every account one PostgREST call).
pub async fn status_in(
    services: &Services,
    scope: &AccountScope,
) -> Result<StatusReport, JobError> {
    let config = &services.config;
    let (figures, renewal) = futures_util::future::join(
        services.store.status(
            config.expiring_soon_seconds,
            RECENT_TOKENS,
            scope.main_accounts(),
        ),
        // Boxed: keeps the status future (and every handler joined with it) small.
        Box::pin(renewal(services, scope)),
    )
    .await;
    let (mut figures, (renewal, pause)) = (figures?, renewal?);
    for token in &mut figures.recent_tokens {
        token.environment = Some(config.renew.environment_for(&token.main_account));
    }
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
        renewals_paused_until: pause.as_ref().map(|p| p.until),
        renewals_paused_reason: pause.map(|p| p.reason),
        renewal: Some(renewal),
    })
}

/// The renewal settings, and while renewal is on its state: the pause and the budget used
/// (one Upstash pipeline) and, for a caller who sees every account, the last run and the
/// renewed/refused counts (one Supabase call).
async fn renewal(
    services: &Services,
    scope: &AccountScope,
) -> Result<(RenewalStatus, Option<Pause>), JobError> {
    let settings = &services.config.renew;
    let mut status = RenewalStatus {
        enabled: settings.enabled,
        environment: settings.default_environment,
        live_accounts: settings.live_accounts.clone(),
        renew_before_minutes: settings.before_seconds / 60,
        hourly_budget: settings.hourly_budget,
        renewals_last_hour: None,
        last_run: None,
        renewed_tokens: 0,
        renew_failed_tokens: 0,
    };
    if !settings.enabled {
        return Ok((status, None));
    }
    let now = Utc::now();
    let commands = vec![
        vec!["GET".to_string(), PAUSE_KEY.to_string()],
        upstash::used_command(BUDGET_KEY, now.timestamp_millis(), 3_600_000),
    ];
    let every_account = *scope == AccountScope::All;
    let (answers, figures) =
        futures_util::future::join(services.upstash.pipeline(&commands), async {
            if every_account {
                services.store.renew_status().await.map(Some)
            } else {
                Ok(None)
            }
        })
        .await;
    let (answers, figures) = (answers?, figures?);
    let mut answers = answers.into_iter();
    let mut next = || {
        answers
            .next()
            .expect("one answer per command")
            .map_err(UpstashError::Command)
    };
    let pause = Pause::from_reply(&next()?).filter(|p| p.until > now);
    status.renewals_last_hour = match next()? {
        Reply::Int(n) => Some(n.max(0) as u64),
        _ => None,
    };
    if let Some(figures) = figures {
        status.last_run = figures.last_run;
        status.renewed_tokens = figures.renewed_tokens;
        status.renew_failed_tokens = figures.renew_failed_tokens;
    }
    Ok((status, pause))
}
