//! Sync: Redis → Supabase. Each Upstash request is one pipeline carrying the next SCAN page
//! and the values and TTLs of a batch of keys already found; only new or changed tokens are
//! encrypted and upserted, in batches; keys gone from Redis make their tokens inactive — unless
//! so many vanished at once that Redis itself lost them ([`crate::domain::loss`]): then nothing
//! is deactivated, the run says so, and (`RESTORE_ON_LOSS`) the tokens are restored in the same
//! invocation. Every run is recorded. A Redis lock keeps runs (and restores) from overlapping.
//!
//! Fixed round trips: the lock rides in the first pipeline (with the first SCAN page) and its
//! release in the last (with the last batch of values); Supabase is called twice, to start the
//! run (its row, its lease, the stored fingerprints) and to finish it (the last upsert batch,
//! the deactivations and the run's record, in one transaction). A sync that fits one SCAN page
//! and one batch — the 22 demo tokens — costs 4 subrequests: Upstash 2, Supabase 2. How the
//! lease covers the writes made after the lock is released: [`super::lock`]. Failure paths may
//! cost more (recording the failed run, releasing the lock by itself), never less safety.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_json::json;

use super::lock::SyncLock;
use super::restore::{self, RestoreOptions};
use super::{JobError, Services, Trigger};
use crate::config::Config;
use crate::domain::account::{main_account_for, AccountName};
use crate::domain::candidate::Candidate;
use crate::domain::loss::{self, LossGuard, Observation, SuspectedLoss};
use crate::domain::token_value::{SkipReason, MAX_VALUE_BYTES};
use crate::store::{ExistingToken, SyncBegin, SyncStart, TokenRow};
use crate::upstash::{KeyValue, Reply, StepAnswers, UpstashError, ValueScan};

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
    let mut lock = SyncLock::new(services);
    // Boxed: the run's future is large (it holds the restore's), and callers join many syncs.
    let result = Box::pin(run(services, trigger, since, &mut lock)).await;
    // Still held after a failure, a suspected loss (the restore needed it) or an empty
    // keyspace (no value pipeline to carry the release).
    lock.release(services).await;
    result
}

async fn run(
    services: &Services,
    trigger: Trigger,
    since: usize,
    lock: &mut SyncLock,
) -> Result<SyncReport, JobError> {
    let started = Utc::now();
    let mut reader = RedisReader::new(&services.config);
    // Upstash: the lock and the first SCAN page in one pipeline. Until its answer is read the
    // lock may be ours (a lost answer may have taken it).
    lock.held = true;
    let first = reader
        .step(services, vec![lock.take_command()], Vec::new())
        .await?;
    match first.before.into_iter().next() {
        Some(Ok(Reply::Nil)) => {
            lock.held = false;
            return Err(lock.in_progress());
        }
        Some(Ok(_)) => {}
        Some(Err(e)) => {
            lock.held = false;
            return Err(UpstashError::Command(e).into());
        }
        None => return Err(UpstashError::Protocol("the lock was not answered".into()).into()),
    }
    // Supabase: the run, its lease and the stored rows. A sync still writing to Supabase after
    // releasing the lock holds the lease: this one is refused as if the lock were held.
    let start = match services
        .store
        .begin_sync(trigger.as_str(), lock.ttl_ms)
        .await?
    {
        SyncBegin::Started(start) => start,
        SyncBegin::Busy { .. } => return Err(lock.in_progress()),
    };
    let run_id = start.run_id.clone();
    let result = match first.scan {
        Ok(()) => apply(services, trigger, &start, started, reader, lock).await,
        // Redis refused the first SCAN page: the run is recorded as failed.
        Err(e) => Err(e.into()),
    };
    if let Err(error) = &result {
        // Record the failure (this ends the lease); if Supabase itself is what failed this
        // may fail too, and the lease then expires after the lock's TTL.
        let message = error.to_string();
        let recorded = services
            .store
            .finish_sync(&run_id, false, &[], &[], json!({}), Some(&message))
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
            // Under the sync's lock, so nothing else writes meanwhile. The lock is released
            // early only when the keys SCAN found did not suggest a loss; if values vanished
            // since, it is taken again.
            let locked = match lock.held {
                true => Ok(true),
                false => lock.retake(services).await,
            };
            match locked {
                Ok(true) => {
                    let restoring =
                        restore::run_locked(services, trigger, RestoreOptions::default(), since);
                    match Box::pin(restoring).await {
                        Ok(restored) => report.restore = Some(restored),
                        Err(e) => report.restore_error = Some(e.to_string()),
                    }
                }
                Ok(false) => report.restore_error = Some(lock.in_progress().to_string()),
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

/// Reads the rest of Redis (releasing the lock in the last pipeline unless a restore will need
/// it), writes what changed and finishes the run; returns the report.
async fn apply(
    services: &Services,
    trigger: Trigger,
    start: &SyncStart,
    now: DateTime<Utc>,
    mut reader: RedisReader,
    lock: &mut SyncLock,
) -> Result<SyncReport, JobError> {
    let existing = &start.tokens;
    while !reader.done() {
        // A suspected loss (from the keys found so far: values read later can only make more
        // keys missing) keeps the lock for the restore.
        let release = reader.next_is_last()
            && !(services.config.restore_on_loss
                && assess_loss(
                    services,
                    start,
                    now,
                    |a| reader.has_account(a),
                    reader.token_keys(),
                )
                .is_some());
        let after = if release {
            vec![lock.release_command()]
        } else {
            Vec::new()
        };
        let answers = reader.step(services, Vec::new(), after).await?;
        if release {
            lock.held = false;
            if let Some(Err(e)) = answers.after.first() {
                // Not retried: the lock expires after its TTL, as a dead run's does.
                crate::logging::log(json!({ "event": "sync_unlock_failed", "error": e }));
            }
        }
        answers.scan?;
    }
    let snapshot = reader.snapshot(now);
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

    // Every batch but the last on its own; the last goes with the run's finish.
    let mut batches: Vec<&[TokenRow]> = rows.chunks(services.config.batch_size).collect();
    let last_batch = batches.pop().unwrap_or(&[]);
    let (mut inserted, mut updated) = (0, 0);
    for batch in batches {
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
    let redis_loss = assess_loss(
        services,
        start,
        now,
        |a| snapshot.present.contains(a),
        snapshot.token_keys,
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
    let unchanged = synced - rows.len();
    let skipped = snapshot.skipped;
    // What Redis held, for status (which never scans Redis itself).
    let redis_accounts: u64 = redis_by_main.values().sum();
    let stats = json!({
        "outcome": outcome.as_str(),
        "tokens_seen": synced, "inserted": inserted, "updated": updated,
        "unchanged": unchanged, "skipped": skipped.len(),
        "details": {
            "skipped": skipped, "trigger": trigger.as_str(),
            "redis_loss": redis_loss,
            "redis_accounts": redis_accounts, "redis_by_main_account": redis_by_main,
        },
    });
    // Supabase: the last batch, the deactivations and the run's record, in one transaction.
    let finished = services
        .store
        .finish_sync(&start.run_id, true, last_batch, &deactivate, stats, None)
        .await?;
    Ok(SyncReport {
        outcome,
        success: true,
        message,
        tokens_synced: synced,
        inserted: inserted + finished.inserted,
        updated: updated + finished.updated,
        unchanged,
        deactivated: finished.deactivated,
        skipped,
        key_mappings: synced,
        accounts,
        run_id: start.run_id.clone(),
        duration_ms: (Utc::now() - now).num_milliseconds(),
        redis_loss,
        restore: None,
        restore_error: None,
    })
}

/// The loss guard's verdict on what Redis holds (`present` says which accounts have a key)
/// against the stored rows, as the answer shows it: with the missing accounts, sorted (they go
/// into `sync_runs.details` too: account health reads them).
fn assess_loss(
    services: &Services,
    start: &SyncStart,
    now: DateTime<Utc>,
    present: impl Fn(&str) -> bool,
    token_keys: usize,
) -> Option<RedisLoss> {
    let due: Vec<&String> = start
        .tokens
        .iter()
        .filter(|(_, e)| still_due(e, now))
        .map(|(account, _)| account)
        .collect();
    let mut missing: Vec<String> = due
        .iter()
        .filter(|a| !present(a))
        .map(|a| a.to_string())
        .collect();
    let guard = LossGuard {
        threshold_percent: services.config.redis_loss_threshold_percent,
        min_missing: services.config.redis_loss_min_missing,
    };
    let loss = loss::assess(
        guard,
        Observation {
            active_unexpired: due.len(),
            missing: missing.len(),
            redis_token_keys: token_keys,
            loss_pending: start.loss_pending,
        },
    )?;
    missing.sort();
    Some(loss_report(loss, missing))
}

/// Finds every token key under the configured patterns, one [`ValueScan`] per pattern in turn,
/// fetching values and TTLs; the first key naming an account wins, a second one is skipped.
struct RedisReader {
    patterns: Vec<String>,
    scans: Vec<ValueScan>,
    /// Per pattern: the accounts of the keys whose values are wanted, by key.
    accounts: Vec<HashMap<String, AccountName>>,
    skipped: Vec<Skipped>,
    first_key: HashMap<String, String>,
    /// Keys SCAN found and `wanted` saw (the unreadable ones are counted by their scans).
    seen_keys: usize,
}

impl RedisReader {
    fn new(config: &Config) -> Self {
        let patterns = config.key_patterns.clone();
        Self {
            scans: patterns
                .iter()
                .map(|p| ValueScan::new(p, config.scan_count, config.batch_size, MAX_VALUE_BYTES))
                .collect(),
            accounts: vec![HashMap::new(); patterns.len()],
            patterns,
            skipped: Vec::new(),
            first_key: HashMap::new(),
            seen_keys: 0,
        }
    }

    /// The scan the next request continues.
    fn current(&self) -> Option<usize> {
        self.scans.iter().position(|s| !s.done())
    }

    fn done(&self) -> bool {
        self.current().is_none()
    }

    /// True when the next request is the last one Redis needs.
    fn next_is_last(&self) -> bool {
        match self.current() {
            Some(i) => i + 1 == self.scans.len() && self.scans[i].next_is_last(),
            None => true,
        }
    }

    /// Whether a key naming `account` was found (its value may still be unread).
    fn has_account(&self, account: &str) -> bool {
        self.first_key.contains_key(account)
    }

    /// Keys found under the token patterns so far, usable or not.
    fn token_keys(&self) -> usize {
        self.seen_keys + self.scans.iter().map(ValueScan::unreadable).sum::<usize>()
    }

    /// Sends the next request with the caller's `before` and `after` commands (only those
    /// once every scan is done).
    async fn step(
        &mut self,
        services: &Services,
        before: Vec<Vec<String>>,
        after: Vec<Vec<String>>,
    ) -> Result<StepAnswers, UpstashError> {
        let Some(i) = self.current() else {
            let n_before = before.len();
            let mut commands = before;
            commands.extend(after);
            let mut before = services.upstash.pipeline(&commands).await?;
            let after = before.split_off(n_before);
            return Ok(StepAnswers {
                before,
                after,
                scan: Ok(()),
            });
        };
        let pattern = &self.patterns[i];
        let (accounts, skipped, first_key, seen_keys) = (
            &mut self.accounts[i],
            &mut self.skipped,
            &mut self.first_key,
            &mut self.seen_keys,
        );
        let mut wanted = |key: &str| {
            *seen_keys += 1;
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
        };
        self.scans[i]
            .step(&services.upstash, before, after, &mut wanted)
            .await
    }

    /// Parses what the scans read; bad values are skipped.
    fn snapshot(self, now: DateTime<Utc>) -> Snapshot {
        let mut skipped = self.skipped;
        let mut present = HashSet::new();
        let mut found: Vec<(AccountName, KeyValue)> = Vec::new();
        let mut token_keys = self.seen_keys;
        for (scan, mut accounts) in self.scans.into_iter().zip(self.accounts) {
            let scan = scan.finish();
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
        Snapshot {
            candidates,
            skipped,
            present,
            token_keys,
        }
    }
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
