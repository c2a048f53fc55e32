//! Alerts: a signed POST to each `ALERT_WEBHOOK_URL` when something changes state — a sync
//! starts failing or works again, Redis looks lost, a restore completes, renewals fail or
//! pause, tokens will expire unrenewed, a token cannot be decrypted.
//!
//! - [`state`]: which alert a change of state sends (pure); the state is in Postgres
//!   (`alert_states`), so each change alerts once, not once per run.
//! - [`format`]: the body (`ALERT_FORMAT`: json, slack, discord).
//! - [`signature`]: the HMAC-SHA256 signature header.
//! - [`delivery`]: sending, bounded by the timeout, one retry, every outcome logged (the URL's
//!   host only), within the invocation's subrequest budget.
//!
//! The jobs never wait for an alert: the HTTP layer and the cron handler turn a job's result
//! into [`Observed`] conditions (`after_*`) and defer [`notify`] until after the response
//! (`wait_until`). An alert names accounts and runs, never a token, a key or a secret.

pub mod delivery;
pub mod format;
pub mod signature;
pub mod state;

use chrono::{DateTime, Utc};
use serde::Serialize;
use serde_json::{json, Value};

use crate::jobs::reencrypt::ReencryptReport;
use crate::jobs::renew::RenewReport;
use crate::jobs::restore::RestoreReport;
use crate::jobs::sync::SyncReport;
use crate::jobs::{JobError, Services};
use crate::store::AlertTransition;
pub use delivery::Delivery;
pub use state::Condition;

/// Accounts listed in one alert at most; `accounts_total` says how many there were.
pub const MAX_ACCOUNTS: usize = 100;

/// What an alert is about (its `type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    SyncFailed,
    SyncRecovered,
    RedisLossSuspected,
    RestoreDone,
    RenewFailed,
    RenewalsPaused,
    TokenExpiringUnrenewed,
    DecryptionFailed,
    /// Sent by `POST /v1/alerts/test`, never by a job.
    Test,
}

impl Kind {
    /// The `type` field's value.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::SyncFailed => "sync_failed",
            Kind::SyncRecovered => "sync_recovered",
            Kind::RedisLossSuspected => "redis_loss_suspected",
            Kind::RestoreDone => "restore_done",
            Kind::RenewFailed => "renew_failed",
            Kind::RenewalsPaused => "renewals_paused",
            Kind::TokenExpiringUnrenewed => "token_expiring_unrenewed",
            Kind::DecryptionFailed => "decryption_failed",
            Kind::Test => "test",
        }
    }

    /// True for the kinds that say something is wrong (Slack and Discord show them red).
    pub fn is_problem(self) -> bool {
        !matches!(self, Kind::SyncRecovered | Kind::RestoreDone | Kind::Test)
    }
}

/// One alert as the JSON format sends it. Never a token, a key or a secret.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Event {
    /// `evt_` and 32 hex digits, unique per event (also in `X-Token-Manager-Event-Id`): a
    /// receiver that saw it already can drop a replay or a retry.
    pub id: String,
    #[serde(rename = "type")]
    pub kind: Kind,
    pub occurred_at: DateTime<Utc>,
    /// One line for people.
    pub summary: String,
    /// The accounts concerned (at most [`MAX_ACCOUNTS`]).
    pub accounts: Vec<String>,
    /// How many accounts are concerned.
    pub accounts_total: usize,
    /// The `sync_runs` row, when a run is concerned.
    pub run_id: Option<String>,
    /// Counts and reasons, per kind.
    pub details: Value,
    /// Always `token-manager`.
    pub source: &'static str,
}

impl Event {
    /// A new event with a fresh id.
    pub fn new(
        kind: Kind,
        summary: String,
        accounts: Vec<String>,
        run_id: Option<String>,
        details: Value,
    ) -> Self {
        let accounts_total = accounts.len();
        let mut accounts = accounts;
        accounts.truncate(MAX_ACCOUNTS);
        Event {
            id: event_id(),
            kind,
            occurred_at: Utc::now(),
            summary,
            accounts,
            accounts_total,
            run_id,
            details,
            source: "token-manager",
        }
    }
}

/// `evt_` + 32 random hex digits.
fn event_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the platform has a random source");
    format!("evt_{}", hex::encode(bytes))
}

/// A condition as one job saw it, with what its alert says if this changes its state.
#[derive(Debug, Clone, PartialEq)]
pub struct Observed {
    pub condition: Condition,
    pub firing: bool,
    pub summary: String,
    pub accounts: Vec<String>,
    pub run_id: Option<String>,
    pub details: Value,
}

impl Observed {
    fn new(condition: Condition, firing: bool, summary: impl Into<String>) -> Self {
        Observed {
            condition,
            firing,
            summary: summary.into(),
            accounts: Vec::new(),
            run_id: None,
            details: json!({}),
        }
    }

    fn accounts(mut self, accounts: Vec<String>) -> Self {
        self.accounts = accounts;
        self
    }

    fn run(mut self, run_id: Option<String>) -> Self {
        self.run_id = run_id.filter(|r| !r.is_empty());
        self
    }

    fn details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }
}

/// What a sync's result says: failing or working (a sync already running says nothing), a
/// suspected loss, and what the restore it ran completed or could not decrypt.
pub fn after_sync(result: &Result<SyncReport, JobError>) -> Vec<Observed> {
    match result {
        Err(JobError::SyncInProgress { .. }) => Vec::new(),
        Err(e) => vec![
            Observed::new(Condition::Sync, true, format!("Sync failed: {e}"))
                .details(json!({ "error": e.to_string() })),
        ],
        Ok(report) => {
            let run = Some(report.run_id.clone());
            let mut seen = vec![Observed::new(
                Condition::Sync,
                false,
                format!("Sync works again: {}", report.message),
            )
            .run(run.clone())
            .details(json!({ "tokens_synced": report.tokens_synced }))];
            if let Some(loss) = &report.redis_loss {
                seen.push(
                    Observed::new(
                        Condition::RedisLoss,
                        true,
                        format!(
                            "Redis lost its keys ({}): {} of {} active tokens are missing; none was deactivated",
                            loss.reason, loss.missing, loss.active_unexpired
                        ),
                    )
                    .run(run)
                    .details(json!({
                        "reason": loss.reason, "missing": loss.missing,
                        "active_unexpired": loss.active_unexpired,
                        "redis_token_keys": loss.redis_token_keys,
                        "restore_error": report.restore_error,
                    })),
                );
            }
            if let Some(restore) = &report.restore {
                seen.extend(after_restore(&Ok(restore.clone())));
            }
            seen
        }
    }
}

/// What a restore's result says: a completed restore (nothing deferred) ends a suspected
/// loss; tokens it could not decrypt start a decryption alert.
pub fn after_restore(result: &Result<RestoreReport, JobError>) -> Vec<Observed> {
    let Ok(report) = result else {
        return Vec::new();
    };
    if report.dry_run {
        return Vec::new();
    }
    let mut seen = Vec::new();
    let undecryptable: Vec<String> = report
        .skipped
        .iter()
        .filter(|s| s.reason.contains("decrypt"))
        .map(|s| s.account.clone())
        .collect();
    if !undecryptable.is_empty() {
        seen.push(
            Observed::new(
                Condition::Decryption,
                true,
                format!(
                    "{} stored tokens cannot be decrypted with the configured keys (restore skipped them); check TOKEN_ENCRYPTION_KEY and TOKEN_ENCRYPTION_PREVIOUS_KEYS",
                    undecryptable.len()
                ),
            )
            .accounts(undecryptable)
            .run(report.run_id.clone()),
        );
    }
    if report.deferred == 0 {
        let restored: Vec<String> = report.restored.iter().map(|r| r.account.clone()).collect();
        seen.push(
            Observed::new(
                Condition::RedisLoss,
                false,
                format!(
                    "Restore done: {} tokens written back to Redis, {} already present, {} skipped",
                    restored.len(),
                    report.already_present.len(),
                    report.skipped.len()
                ),
            )
            .details(json!({
                "restored": restored.len(), "already_present": report.already_present.len(),
                "skipped": report.skipped.len(),
            }))
            .accounts(restored)
            .run(report.run_id.clone()),
        );
    }
    seen
}

/// What a renew pass says: failed sessions, paused renewals, and tokens inside the window
/// that this pass did not renew (failed or not tried). A dry run, a pass already running or
/// renewal switched off say nothing.
pub fn after_renew(result: &Result<RenewReport, JobError>) -> Vec<Observed> {
    use api_model::RenewOutcome;
    match result {
        Err(JobError::RenewInProgress { .. } | JobError::RenewDisabled) => Vec::new(),
        Err(e) => vec![
            Observed::new(Condition::Renew, true, format!("Renew pass failed: {e}"))
                .details(json!({ "error": e.to_string() })),
        ],
        Ok(report) if report.dry_run => Vec::new(),
        Ok(report) => {
            let accounts_where = |outcomes: &[RenewOutcome]| -> Vec<String> {
                let mut accounts: Vec<String> = report
                    .results
                    .iter()
                    .filter(|r| outcomes.contains(&r.outcome))
                    .flat_map(|r| r.accounts.iter().cloned())
                    .collect();
                accounts.sort();
                accounts.dedup();
                accounts
            };
            let failed = accounts_where(&[RenewOutcome::Failed]);
            let reasons: Vec<&str> = report
                .results
                .iter()
                .filter(|r| r.outcome == RenewOutcome::Failed)
                .filter_map(|r| r.reason.as_deref())
                .take(5)
                .collect();
            let unrenewed = accounts_where(&[RenewOutcome::Failed, RenewOutcome::Skipped]);
            let run = report.run_id.clone();
            vec![
                Observed::new(
                    Condition::Renew,
                    !failed.is_empty(),
                    format!("Renewal failed for {} sessions", report.failed),
                )
                .details(json!({ "failed_sessions": report.failed, "reasons": reasons }))
                .accounts(failed)
                .run(run.clone()),
                Observed::new(
                    Condition::RenewalsPaused,
                    report.renewals_paused_until.is_some(),
                    format!(
                        "Renewals are paused until {}: {}",
                        report
                            .renewals_paused_until
                            .map(|t| t.to_rfc3339())
                            .unwrap_or_default(),
                        report
                            .renewals_paused_reason
                            .as_deref()
                            .unwrap_or("no reason given")
                    ),
                )
                .details(json!({
                    "paused_until": report.renewals_paused_until,
                    "reason": report.renewals_paused_reason,
                }))
                .run(run.clone()),
                Observed::new(
                    Condition::TokenExpiringUnrenewed,
                    !unrenewed.is_empty(),
                    format!(
                        "{} active tokens expire within the renewal window and were not renewed",
                        unrenewed.len()
                    ),
                )
                .accounts(unrenewed)
                .run(run),
            ]
        }
    }
}

/// Tokens expiring within `window_seconds` while renewal is off: `expiring` are the active
/// ones found (account names).
pub fn expiring_while_renewal_off(expiring: Vec<String>, window_seconds: i64) -> Observed {
    Observed::new(
        Condition::TokenExpiringUnrenewed,
        !expiring.is_empty(),
        format!(
            "{} active tokens expire within {} minutes and renewal is off (RENEW_ENABLED)",
            expiring.len(),
            window_seconds / 60
        ),
    )
    .accounts(expiring)
}

/// What a re-encryption says: rows no key could open start a decryption alert; a clean run
/// ends it.
pub fn after_reencrypt(result: &Result<ReencryptReport, JobError>) -> Vec<Observed> {
    let Ok(report) = result else {
        return Vec::new();
    };
    vec![Observed::new(
        Condition::Decryption,
        !report.failed.is_empty(),
        format!(
            "{} stored tokens cannot be decrypted with the configured keys (re-encryption skipped them); check TOKEN_ENCRYPTION_KEY and TOKEN_ENCRYPTION_PREVIOUS_KEYS",
            report.failed.len()
        ),
    )
    .accounts(report.failed.clone())
    .run(Some(report.run_id.clone()))]
}

/// What a token read says: a token that cannot be decrypted starts a decryption alert.
pub fn after_get<T>(result: &Result<T, JobError>) -> Vec<Observed> {
    match result {
        Err(JobError::Decrypt { account, .. }) => vec![Observed::new(
            Condition::Decryption,
            true,
            format!("The stored token of {account} cannot be decrypted with the configured keys; check TOKEN_ENCRYPTION_KEY and TOKEN_ENCRYPTION_PREVIOUS_KEYS"),
        )
        .accounts(vec![account.clone()])],
        _ => Vec::new(),
    }
}

/// Subrequests one invocation's alerts may need: the state update, and one event sent to every
/// URL with its retry. Jobs that spend the budget (a restore) leave this much.
/// With renewal off, a sync also lists the tokens expiring unrenewed (one more).
pub fn reserve(services: &Services) -> usize {
    let config = &services.config;
    if !config.alerts.enabled() {
        return 0;
    }
    1 + usize::from(!config.renew.enabled) + 2 * config.alerts.urls.len()
}

/// Records `observed` in `alert_states` and sends an alert for each change of state. Never
/// fails: a state or delivery failure is logged. `since` is the invocation's subrequest count
/// when its job started; nothing is sent beyond `SUBREQUEST_BUDGET`.
pub async fn notify(services: Services, since: usize, observed: Vec<Observed>) {
    let alerts = &services.config.alerts;
    if !alerts.enabled() || observed.is_empty() {
        return;
    }
    if services.subrequests_left(since) == 0 {
        log_skipped(&observed, "the invocation's subrequest budget is spent");
        return;
    }
    let asked: Vec<AlertTransition> = observed
        .iter()
        .map(|o| AlertTransition {
            condition: o.condition.as_str().to_string(),
            firing: o.firing,
            changed: false,
        })
        .collect();
    let answered = match services.store.alert_transitions(&asked).await {
        Ok(answered) => answered,
        Err(e) => {
            log_skipped(
                &observed,
                &format!("the alert state could not be read from Supabase: {e}"),
            );
            return;
        }
    };
    let events: Vec<Event> = observed
        .into_iter()
        .zip(answered)
        .filter(|(_, t)| t.changed)
        .filter_map(|(o, _)| {
            let kind = state::decide(o.condition, !o.firing, o.firing)?;
            Some(Event::new(kind, o.summary, o.accounts, o.run_id, o.details))
        })
        .collect();
    if !events.is_empty() {
        delivery::send(&services, since, &events).await;
    }
}

fn log_skipped(observed: &[Observed], why: &str) {
    crate::logging::log(json!({
        "event": "alert_skipped",
        "conditions": observed.iter().map(|o| o.condition.as_str()).collect::<Vec<_>>(),
        "error": why,
    }));
}

/// Sends a test event to every configured URL now and answers what each returned.
pub async fn test(services: &Services) -> Vec<Delivery> {
    let event = Event::new(
        Kind::Test,
        "Test alert from token-manager: this webhook receives its alerts".into(),
        Vec::new(),
        None,
        json!({ "format": services.config.alerts.format.as_str() }),
    );
    let since = services.subrequests.count();
    delivery::send(services, since, std::slice::from_ref(&event)).await
}

/// While renewal is off (`RENEW_ENABLED`), the active tokens that expire within the renewal
/// window (`RENEW_BEFORE_MINUTES`): one listing, run after a cron sync. `None` when renewal
/// is on (the renew pass observes this itself) or the listing fails (logged).
pub async fn expiring_unrenewed(services: &Services, now: DateTime<Utc>) -> Option<Observed> {
    let renew = &services.config.renew;
    if renew.enabled || !services.config.alerts.enabled() {
        return None;
    }
    let filter = crate::store::ListFilter {
        active: Some(true),
        expires_before: Some(now + chrono::Duration::seconds(renew.before_seconds)),
        limit: 1000,
        ..Default::default()
    };
    match services.store.list(&filter).await {
        Ok((rows, _)) => {
            let expiring = rows
                .into_iter()
                .filter(|r| r.expires_at.is_some_and(|at| at > now))
                .map(|r| r.account_name)
                .collect();
            Some(expiring_while_renewal_off(expiring, renew.before_seconds))
        }
        Err(e) => {
            crate::logging::log(json!({
                "event": "alert_skipped", "conditions": [Condition::TokenExpiringUnrenewed.as_str()],
                "error": format!("the expiring tokens could not be listed: {e}"),
            }));
            None
        }
    }
}

/// After a sync: `seen` (from [`after_sync`]) plus, while renewal is off, the tokens expiring
/// unrenewed; then [`notify`]. What the HTTP layer and the cron handler defer.
pub async fn notify_sync(services: Services, since: usize, mut seen: Vec<Observed>) {
    if !services.config.alerts.enabled() {
        return;
    }
    if services.subrequests_left(since) >= reserve(&services) {
        if let Some(expiring) = expiring_unrenewed(&services, Utc::now()).await {
            seen.push(expiring);
        }
    }
    notify(services, since, seen).await;
}

/// The answer of `POST /v1/alerts/test`.
#[derive(Debug, Clone, Serialize)]
pub struct TestReport {
    /// True when every URL answered 2xx.
    pub success: bool,
    pub message: String,
    /// `ALERT_FORMAT`.
    pub format: &'static str,
    /// Whether bodies are signed (`ALERT_WEBHOOK_SECRET` is set).
    pub signed: bool,
    /// One per configured URL.
    pub deliveries: Vec<Delivery>,
}

/// Sends the test event and reports it.
pub async fn test_report(services: &Services) -> TestReport {
    let deliveries = test(services).await;
    let delivered = deliveries.iter().filter(|d| d.ok).count();
    TestReport {
        success: delivered == deliveries.len(),
        message: format!(
            "Test alert delivered to {delivered} of {} webhooks",
            deliveries.len()
        ),
        format: services.config.alerts.format.as_str(),
        signed: services.config.alerts.secret.is_some(),
        deliveries,
    }
}
