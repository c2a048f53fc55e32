//! Account health: every main account and its sub-accounts with their state, expiry, when
//! Redis last held them, when a sync last wrote them, the latest read and the renewal state.
//! One PostgREST call; never a token.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::{JobError, Services};
use crate::domain::access::AccountScope;
use crate::domain::health::{self, AccountState, HealthFacts};
use crate::store::AccountFacts;

pub use api_model::{AccountHealth, AccountsReport, LastRead, MainAccountHealth, RenewalInfo};

/// The health of every account `scope` may see, grouped by main account. States are derived
/// at Postgres's clock (the one the facts were read at), `expiring` meaning within
/// `EXPIRING_SOON_MINUTES` like status.
pub async fn accounts(
    services: &Services,
    scope: &AccountScope,
) -> Result<AccountsReport, JobError> {
    let facts = services.store.accounts(scope.main_accounts()).await?;
    let window_seconds = services.config.expiring_soon_seconds;
    Ok(report(
        facts.accounts,
        facts.now,
        facts.last_sync_at,
        window_seconds,
    ))
}

/// Groups `rows` (ordered by main account, its own token first) into the answer.
pub fn report(
    rows: Vec<AccountFacts>,
    now: DateTime<Utc>,
    last_sync_at: Option<DateTime<Utc>>,
    window_seconds: i64,
) -> AccountsReport {
    let window = Duration::try_seconds(window_seconds).unwrap_or(Duration::zero());
    let mut states: BTreeMap<String, usize> = AccountState::ALL
        .iter()
        .map(|s| (s.as_str().to_string(), 0))
        .collect();
    let mut main: Vec<MainAccountHealth> = Vec::new();
    let count = rows.len();
    for row in rows {
        let main_account = row.main_account.clone();
        let account = health_of(row, now, window);
        *states
            .entry(account.state.as_str().to_string())
            .or_default() += 1;
        match main.last_mut() {
            Some(group) if group.main_account == main_account => {
                group.state = health::worst([group.state, account.state]);
                group.accounts.push(account);
            }
            _ => main.push(MainAccountHealth {
                main_account,
                state: account.state,
                accounts: vec![account],
            }),
        }
    }
    AccountsReport {
        success: true,
        generated_at: now,
        expiring_within_seconds: window_seconds,
        last_sync_at,
        main_accounts: main.len(),
        accounts: count,
        states,
        main,
    }
}

fn health_of(row: AccountFacts, now: DateTime<Utc>, window: Duration) -> AccountHealth {
    let state = health::state(
        &HealthFacts {
            is_active: row.is_active,
            expires_at: row.expires_at,
            missing_in_redis: row.missing_in_redis,
            renew_state: row.renew_state.as_deref(),
        },
        now,
        window,
    );
    let time = |t: &Option<String>| t.as_deref().and_then(|t| t.parse::<DateTime<Utc>>().ok());
    let renewal = (row.renew_state.is_some() || row.renewed_at.is_some()).then(|| RenewalInfo {
        state: row.renew_state.clone(),
        error: row.renew_error.clone(),
        renewed_at: time(&row.renewed_at),
        attempted_at: time(&row.renew_attempted_at),
        renewal_count: row.renewal_count,
    });
    let last_read = match (row.last_read_at, row.last_read_outcome, row.last_read_key) {
        (Some(read_at), Some(outcome), Some(key_name)) => Some(LastRead {
            read_at,
            outcome,
            key_name,
        }),
        _ => None,
    };
    AccountHealth {
        account: row.account_name,
        key_type: row.key_type,
        redis_key: row.redis_key,
        state,
        is_active: row.is_active,
        expires_at: row.expires_at,
        expires_in_seconds: row.expires_at.map(|at| (at - now).num_seconds()),
        last_seen_at: row.last_seen_at,
        last_synced_at: row.last_synced_at,
        last_read,
        renewal,
    }
}
