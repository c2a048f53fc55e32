//! The jobs (sync, restore, renew, status, get, list, accounts, cleanup, reencrypt, runs, audit), over
//! Upstash, Supabase and Tradovate.
//! Each returns a serialisable report or a [`JobError`]; the HTTP layer and the cron
//! handler only translate.

pub mod accounts;
pub mod audit;
pub mod cleanup;
pub mod get;
pub mod list;
pub mod lock;
pub mod reencrypt;
pub mod renew;
pub mod restore;
pub mod runs;
pub mod status;
pub mod sync;

use crate::config::Config;
use crate::crypto::DecryptError;
use crate::store::{Store, StoreError};
use crate::subrequests::Subrequests;
use crate::tradovate::Tradovate;
use crate::upstash::{Upstash, UpstashError};

/// What started a job; recorded in `sync_runs.trigger`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Trigger {
    Http,
    Cron,
}

impl Trigger {
    /// The value stored in `sync_runs.trigger`.
    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Cron => "cron",
        }
    }
}

/// Why a job could not finish. Upstream errors keep the upstream's own message.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    #[error(transparent)]
    Upstash(#[from] UpstashError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a sync or restore is already running; try again when it finishes (the lock expires after {ttl_seconds} s if a run dies)")]
    SyncInProgress { ttl_seconds: u64 },
    #[error("a renew pass is already running; try again when it finishes (the lock expires after {ttl_seconds} s if a pass dies)")]
    RenewInProgress { ttl_seconds: u64 },
    #[error("token renewal is off; set RENEW_ENABLED=true (and TRADOVATE_ENV, TRADOVATE_LIVE_ACCOUNTS if some accounts are live) to turn it on, or ask for a dry run")]
    RenewDisabled,
    #[error("account {account:?} is not valid: {reason}")]
    InvalidAccount { account: String, reason: String },
    #[error("{parameter} is out of range; use a smaller value")]
    OutOfRange { parameter: &'static str },
    #[error("no token stored for account {0:?}; run a sync or check the name")]
    UnknownAccount(String),
    #[error("the token for {0:?} has expired; the trading app must log in again and a sync will store the new token")]
    Expired(String),
    #[error(
        "the token for {0:?} is inactive: its key is no longer in Redis or cleanup expired it"
    )]
    Inactive(String),
    #[error("the stored token for {account:?} cannot be decrypted: {source}")]
    Decrypt {
        account: String,
        source: DecryptError,
    },
}

/// The configured clients every job uses.
#[derive(Clone)]
pub struct Services {
    pub config: Config,
    pub upstash: Upstash,
    pub store: Store,
    /// Requests both clients have sent in this invocation.
    pub subrequests: Subrequests,
    pub tradovate: Tradovate,
}

impl Services {
    /// Clients for the configured Upstash and Supabase endpoints, counting their requests.
    pub fn new(config: Config) -> Self {
        let timeout = config.upstream_timeout_ms;
        let subrequests = Subrequests::new();
        let upstash = Upstash::new(
            reqwest::Client::new(),
            &config.upstash_url,
            config.upstash_token.clone(),
            timeout,
        )
        .counting(subrequests.clone());
        let store = Store::new(
            &config.supabase_rest_url,
            &config.supabase_service_role_key,
            timeout,
        )
        .counting(subrequests.clone());
        Self {
            tradovate: Tradovate::new(reqwest::Client::new(), timeout),
            config,
            upstash,
            store,
            subrequests,
        }
    }

    /// Subrequests a job that started when [`Subrequests::count`] was `since` may still make
    /// (`SUBREQUEST_BUDGET` minus those sent since). A job is one invocation in the Worker;
    /// counting from its start lets tests reuse one `Services` for many jobs.
    pub fn subrequests_left(&self, since: usize) -> usize {
        let used = self.subrequests.count().saturating_sub(since);
        self.config.subrequest_budget.saturating_sub(used)
    }
}

/// Runs the job a cron trigger names (sync or cleanup, per `SYNC_CRON`/`CLEANUP_CRON`) with
/// trigger=cron and logs its outcome as one JSON line. Failed syncs are also in `sync_runs`.
/// Returns the alerts to send, for the scheduled event's `wait_until`.
pub async fn scheduled(
    config: Result<Config, crate::config::ConfigError>,
    cron: &str,
) -> crate::deferred::Deferred {
    use crate::alerts;
    use serde_json::json;
    let mut deferred = crate::deferred::Deferred::default();
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            crate::logging::log(
                json!({ "event": "cron", "cron": cron, "ok": false, "error": e.to_string() }),
            );
            return deferred;
        }
    };
    let services = Services::new(config);
    let outcome = if cron == services.config.sync_cron {
        let result = sync::sync(&services, Trigger::Cron).await;
        let seen = alerts::after_sync(&result);
        deferred.push(alerts::notify_sync(services.clone(), 0, seen));
        result.map(|r| json!({
            "job": "sync", "run_id": r.run_id, "outcome": r.outcome, "tokens_synced": r.tokens_synced,
            "inserted": r.inserted, "updated": r.updated, "unchanged": r.unchanged,
            "deactivated": r.deactivated, "skipped": r.skipped.len(),
            "restored": r.restore.as_ref().map(|x| x.restored.len()), "duration_ms": r.duration_ms,
        }))
    } else if cron == services.config.cleanup_cron {
        cleanup::cleanup(&services, Trigger::Cron)
            .await
            .map(|r| json!({ "job": "cleanup", "run_id": r.run_id, "cleaned": r.cleaned, "pruned_runs": r.pruned_runs, "audit_pruned": r.audit_pruned }))
    } else if cron == services.config.renew_cron {
        if !services.config.renew.enabled {
            crate::logging::log(json!({
                "event": "cron", "cron": cron, "job": "renew", "ok": true,
                "skipped": "RENEW_ENABLED is off",
            }));
            return deferred;
        }
        let result = Box::pin(renew::renew(&services, Trigger::Cron, false)).await;
        deferred.push(alerts::notify(
            services.clone(),
            0,
            alerts::after_renew(&result),
        ));
        result.map(|r| renew::log_fields(&r))
    } else {
        let message = format!(
            "cron {cron:?} matches none of SYNC_CRON ({:?}), CLEANUP_CRON ({:?}), RENEW_CRON ({:?})",
            services.config.sync_cron, services.config.cleanup_cron, services.config.renew_cron
        );
        crate::logging::log(
            json!({ "event": "cron", "cron": cron, "ok": false, "error": message }),
        );
        return deferred;
    };
    let line = match outcome {
        Ok(mut fields) => {
            fields["event"] = json!("cron");
            fields["cron"] = json!(cron);
            fields["ok"] = json!(true);
            fields
        }
        Err(e) => json!({ "event": "cron", "cron": cron, "ok": false, "error": e.to_string() }),
    };
    crate::logging::log(line);
    deferred
}
