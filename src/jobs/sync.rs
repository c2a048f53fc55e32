//! Sync: Redis → Supabase. Each Upstash request is one pipeline carrying the next SCAN page
//! and the values and TTLs of a batch of keys already found; only new or changed tokens are
//! encrypted and upserted, in batches; keys gone from Redis make their tokens inactive — unless
//! so many vanished at once that Redis itself lost them ([`crate::domain::loss`]): then nothing
//! is deactivated, the run says so, and (`RESTORE_ON_LOSS`) the tokens are restored in the same
//! invocation. Every run is recorded. A Redis lock keeps runs (and restores) from overlapping.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::restore::{self, RestoreOptions};
use super::{lock, JobError, Services, Trigger};
use crate::domain::account::{main_account_for, AccountName};
use crate::domain::candidate::Candidate;
use crate::domain::loss::{self, LossGuard, Observation, SuspectedLoss};
use crate::domain::token_value::{SkipReason, MAX_VALUE_BYTES};
use crate::store::{ExistingToken, SyncStart};
use crate::upstash::KeyValue;

pub use super::lock::LOCK_KEY;
/// Stored expiries closer than this are the same (a TTL-derived expiry drifts by latency).
const EXPIRY_TOLERANCE_SECONDS: i64 = 30;

pub use api_model::{Outcome, RedisLoss, Skipped, SyncReport};

/// What Redis holds now.
struct Snapshot {
    candidates: Vec<Candidate>,
    skipped: Vec<Skipped>,
    /// Every account whose key exists, including skipped malformed ones (their stored token
    /// stays active: a bad write in Redis must not take an account offline).
    present: HashSet<String>,
    /// Keys SCAN found under the token patterns, usable or not.
    token_keys: usize,
}

/// Runs a sync unless a sync or restore is running (then [`JobError::SyncInProgress`]).
pub async fn sync(services: &Services, trigger: Trigger) -> Result<SyncReport, JobError> {
    let since = services.subrequests.count();
    // Boxed: the run's future is large (it holds the restore's), and callers join many syncs.
    lock::exclusive(services, "sync", Box::pin(run(services, trigger, since))).await
}

async fn run(services: &Services, trigger: Trigger, since: usize) -> Result<SyncReport, JobError> {
    let started = Utc::now();
    let start = services.store.begin_sync(trigger.as_str()).await?;
    let run_id = start.run_id.clone();
    let result = match apply(services, &start, started).await {
        Ok((mut report, deactivate, redis_by_main)) => {
            // What Redis held, for status (which never scans Redis itself).
            let redis_accounts: u64 = redis_by_main.values().sum();
            let stats = json!({
                "outcome": report.outcome.as_str(),
                "tokens_seen": report.tokens_synced, "inserted": report.inserted,
                "updated": report.updated, "unchanged": report.unchanged,
                "skipped": report.skipped.len(),
                "details": {
                    "skipped": report.skipped, "trigger": trigger.as_str(),
                    "redis_loss": report.redis_loss,
                    "redis_accounts": redis_accounts, "redis_by_main_account": redis_by_main,
                },
            });
            let store = &services.store;
            store
                .finish_sync(&run_id, true, &deactivate, stats, None)
                .await
                .map(|deactivated| {
                    report.deactivated = deactivated;
                    report.run_id = run_id.clone();
                    report.duration_ms = (Utc::now() - started).num_milliseconds();
                    report
                })
                .map_err(JobError::from)
        }
        Err(error) => Err(error),
    };
    if let Err(error) = &result {
        // Record the failure; if Supabase itself is what failed this may fail too.
        let message = error.to_string();
        let recorded = services
            .store
            .finish_sync(&run_id, false, &[], json!({}), Some(&message))
            .await;
        if let Err(e) = recorded {
            crate::logging::log(
                json!({ "event": "sync_record_failed", "run_id": run_id, "error": e.to_string() }),
            );
        }
    }
    let mut report = result?;
    if let Some(loss) = report.redis_loss.clone() {
        if services.config.restore_on_loss {
            // Still under the sync's lock: nothing else writes meanwhile.
            let restoring =
                restore::run_locked(services, trigger, RestoreOptions::default(), since);
            match Box::pin(restoring).await {
                Ok(restored) => report.restore = Some(restored),
                Err(e) => report.restore_error = Some(e.to_string()),
            }
        }
        crate::logging::log(json!({
            "event": "redis_loss_suspected", "run_id": report.run_id, "trigger": trigger.as_str(),
            "reason": loss.reason, "missing": loss.missing, "active_unexpired": loss.active_unexpired,
            "redis_token_keys": loss.redis_token_keys, "threshold_percent": loss.threshold_percent,
            "min_missing": loss.min_missing, "restore_on_loss": services.config.restore_on_loss,
            "restored": report.restore.as_ref().map(|r| r.restored.len()),
            "already_present": report.restore.as_ref().map(|r| r.already_present.len()),
            "restore_skipped": report.restore.as_ref().map(|r| r.skipped.len()),
            "restore_deferred": report.restore.as_ref().map(|r| r.deferred),
            "restore_error": report.restore_error,
        }));
    }
    Ok(report)
}

/// Reads Redis, writes what changed; returns the report so far, the accounts to deactivate,
/// and how many accounts Redis holds per main account.
async fn apply(
    services: &Services,
    start: &SyncStart,
    now: DateTime<Utc>,
) -> Result<(SyncReport, Vec<String>, BTreeMap<String, u64>), JobError> {
    let existing = &start.tokens;
    let snapshot = read_redis(services, now).await?;
    let keyring = &services.config.keyring;

    let mut rows = Vec::new();
    for c in &snapshot.candidates {
        let fingerprint = c.fingerprint(keyring);
        if existing
            .get(c.account().as_str())
            .is_some_and(|e| unchanged(e, c, &fingerprint, now))
        {
            continue;
        }
        rows.push(c.seal(keyring, fingerprint));
    }

    let (mut inserted, mut updated) = (0, 0);
    for batch in rows.chunks(services.config.batch_size) {
        let applied = services.store.apply_sync(batch).await?;
        inserted += applied.inserted;
        updated += applied.updated;
    }

    let mut deactivate: Vec<String> = existing
        .iter()
        .filter(|(account, e)| e.is_active && !snapshot.present.contains(*account))
        .map(|(account, _)| account.clone())
        .collect();
    deactivate.sort();
    let due: Vec<&String> = existing
        .iter()
        .filter(|(_, e)| still_due(e, now))
        .map(|(account, _)| account)
        .collect();
    let guard = LossGuard {
        threshold_percent: services.config.redis_loss_threshold_percent,
        min_missing: services.config.redis_loss_min_missing,
    };
    let mut missing: Vec<String> = due
        .iter()
        .filter(|a| !snapshot.present.contains(a.as_str()))
        .map(|a| a.to_string())
        .collect();
    missing.sort();
    let redis_loss = loss::assess(
        guard,
        Observation {
            active_unexpired: due.len(),
            missing: missing.len(),
            redis_token_keys: snapshot.token_keys,
            loss_pending: start.loss_pending,
        },
    );
    if redis_loss.is_some() {
        // Redis lost the keys, not the bots their tokens: keep every token active.
        deactivate.clear();
    }

    // Each account in Redis counts under its main account: the parsed value's, else the
    // stored row's, else the Apex rule's.
    let parsed: HashMap<&str, &str> = snapshot
        .candidates
        .iter()
        .map(|c| (c.account().as_str(), c.main_account().as_str()))
        .collect();
    let mut redis_by_main: BTreeMap<String, u64> = BTreeMap::new();
    for account in &snapshot.present {
        let main = match (parsed.get(account.as_str()), existing.get(account)) {
            (Some(main), _) => main.to_string(),
            (None, Some(stored)) => stored.main_account.clone(),
            (None, None) => AccountName::parse(account)
                .map(|a| main_account_for(&a, None).into_string())
                .unwrap_or_else(|_| account.clone()),
        };
        *redis_by_main.entry(main).or_default() += 1;
    }

    let mut accounts: Vec<String> = snapshot
        .candidates
        .iter()
        .map(|c| c.account().as_str().to_string())
        .collect();
    accounts.sort();
    let synced = accounts.len();
    let (outcome, message) = match &redis_loss {
        None => (
            Outcome::Synced,
            format!("Synced {synced} tokens from Redis to Supabase"),
        ),
        Some(l) => (
            Outcome::RedisLossSuspected,
            format!(
                "Synced {synced} tokens from Redis to Supabase; suspected Redis loss: the keys of {} of {} active tokens are gone, so none was deactivated",
                l.missing, l.active_unexpired
            ),
        ),
    };
    let report = SyncReport {
        outcome,
        success: true,
        message,
        tokens_synced: synced,
        inserted,
        updated,
        unchanged: synced - rows.len(),
        deactivated: 0,
        skipped: snapshot.skipped,
        key_mappings: synced,
        accounts,
        run_id: String::new(),
        duration_ms: 0,
        // The accounts go into sync_runs.details too: account health reads them.
        redis_loss: redis_loss.map(|l| loss_report(l, missing)),
        restore: None,
        restore_error: None,
    };
    Ok((report, deactivate, redis_by_main))
}

/// Finds every token key, fetches values and TTLs, and parses them; bad ones are skipped.
async fn read_redis(services: &Services, now: DateTime<Utc>) -> Result<Snapshot, JobError> {
    let config = &services.config;
    let mut skipped = Vec::new();
    let mut present = HashSet::new();
    // The first key naming an account wins; a second one is skipped.
    let mut first_key: HashMap<String, String> = HashMap::new();
    let mut found: Vec<(AccountName, KeyValue)> = Vec::new();
    let mut token_keys = 0;
    for pattern in &config.key_patterns {
        let mut accounts: HashMap<String, AccountName> = HashMap::new();
        let scan = services
            .upstash
            .scan_values(
                pattern,
                config.scan_count,
                config.batch_size,
                MAX_VALUE_BYTES,
                |key| {
                    token_keys += 1;
                    let reason = match AccountName::from_redis_key(key, pattern) {
                        Ok(account) => match first_key.get(account.as_str()) {
                            Some(first) => {
                                format!("account {account} is already stored from key {first}")
                            }
                            None => {
                                first_key.insert(account.as_str().to_string(), key.to_string());
                                accounts.insert(key.to_string(), account);
                                return true;
                            }
                        },
                        Err(e) => e.to_string(),
                    };
                    skipped.push(Skipped {
                        redis_key: key.to_string(),
                        reason,
                    });
                    false
                },
            )
            .await?;
        token_keys += scan.unreadable.len();
        skipped.extend(scan.unreadable.into_iter().map(|redis_key| Skipped {
            redis_key,
            reason: "key is not valid UTF-8".to_string(),
        }));
        found.extend(
            scan.values
                .into_iter()
                .filter_map(|kv| Some((accounts.remove(&kv.key)?, kv))),
        );
    }
    // Account order makes batches, and so partial failures, reproducible.
    found.sort_by(|a, b| a.0.cmp(&b.0));

    let mut candidates = Vec::with_capacity(found.len());
    for (account, kv) in found {
        let Some(bytes) = kv.value else {
            skipped.push(Skipped {
                redis_key: kv.key,
                reason: "key expired or was deleted during the sync".into(),
            });
            continue;
        };
        present.insert(account.as_str().to_string());
        // Only the first MAX_VALUE_BYTES were read: a longer value is skipped by its size.
        if kv.size > MAX_VALUE_BYTES as u64 {
            skipped.push(Skipped {
                redis_key: kv.key,
                reason: SkipReason::TooLarge {
                    bytes: usize::try_from(kv.size).unwrap_or(usize::MAX),
                }
                .to_string(),
            });
            continue;
        }
        match Candidate::parse(account, kv.key.clone(), &bytes, kv.ttl, now) {
            Ok(candidate) => candidates.push(candidate),
            Err(reason) => skipped.push(Skipped {
                redis_key: kv.key,
                reason: reason.to_string(),
            }),
        }
    }
    Ok(Snapshot {
        candidates,
        skipped,
        present,
        token_keys,
    })
}

/// True when the stored row already says what Redis says (nothing to write). An inactive row
/// counts as unchanged while its token is expired: cleanup made it inactive, and rewriting it
/// would only make it active again until the next cleanup.
fn unchanged(stored: &ExistingToken, c: &Candidate, fingerprint: &str, now: DateTime<Utc>) -> bool {
    let same_expiry = match (stored.expires_at, c.expires_at()) {
        (None, None) => true,
        (Some(a), Some(b)) => (a - b).num_seconds().abs() <= EXPIRY_TOLERANCE_SECONDS,
        _ => false,
    };
    let expired = c.expires_at().is_some_and(|at| at <= now);
    (stored.is_active || expired)
        && stored.mapped
        && stored.fingerprint == fingerprint
        && stored.main_account == c.main_account().as_str()
        && stored.token_type == c.token_type()
        && same_expiry
}

/// The answer's view of a suspected loss.
fn loss_report(loss: SuspectedLoss, accounts: Vec<String>) -> RedisLoss {
    RedisLoss {
        accounts,
        missing: loss.missing,
        active_unexpired: loss.active_unexpired,
        redis_token_keys: loss.redis_token_keys,
        threshold_percent: loss.threshold_percent,
        min_missing: loss.min_missing,
        reason: loss.reason.to_string(),
    }
}

/// True for an active token whose key Redis should still hold: neither the token nor (as far as
/// the last write saw) the key's TTL runs out within [`EXPIRY_TOLERANCE_SECONDS`]. Only these
/// count when deciding whether Redis lost its keys: keys whose TTL ran out left on their own.
fn still_due(stored: &ExistingToken, now: DateTime<Utc>) -> bool {
    let soon = now + chrono::Duration::seconds(EXPIRY_TOLERANCE_SECONDS);
    stored.is_active
        && stored.expires_at.is_none_or(|at| at > soon)
        && stored.key_expires_at.is_none_or(|at| at > soon)
}
