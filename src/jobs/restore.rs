//! Restore: Supabase → Redis, for when Redis forgot. Every active, unexpired token is written
//! back to the key it was read from, in the format it was read in (a raw token as itself, a
//! JSON value as the exact bytes the bot wrote, kept sealed in the row), with
//! `SET key value NX PX <time left>`: never over a key that exists (a bot that logged in again
//! wins), never an expired, inactive or undecryptable token, always with a TTL. Writes go in
//! pipelines of up to `SYNC_BATCH_SIZE` keys, within the invocation's subrequest budget; the
//! run is recorded in `sync_runs` (kind `restore`). A dry run only reports what it would do.

use std::num::NonZeroU64;

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::{lock, JobError, Services, Trigger};
use crate::audit;
use crate::crypto::DecryptError;
use crate::domain::account::AccountName;
use crate::store::{RestorableToken, TokenRead};
use crate::upstash::{NewKey, SetOutcome};

pub use api_model::{PresentKey, RestoreReport, RestoredKey, SkippedToken};

/// The largest pipeline request body a restore sends (values are up to 64 KiB each; Upstash
/// refuses requests over 10 MB).
pub const MAX_PIPELINE_BYTES: usize = 4 * 1024 * 1024;
/// A token with less time left than this is not restored (it would be gone before a bot reads it).
pub const MIN_TTL_MS: i64 = 1000;

/// What a restore is asked to do.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// Only report what would be written; write nothing, record nothing.
    pub dry_run: bool,
    /// Also restore tokens whose expiry is unknown, with `RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS`.
    pub include_unknown_expiry: bool,
}

/// Why an active token is not restored. Messages never carry the token or the value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RestoreSkip {
    #[error("no Redis key is recorded for this token; a sync from Redis records it")]
    NoRedisKey,
    #[error("its Redis key does not name this account under TOKEN_KEY_PATTERNS (the patterns changed since it was synced)")]
    OutsidePatterns,
    #[error("the token has expired (or has less than a second left)")]
    Expired,
    #[error("its expiry is unknown; ask with include_unknown_expiry=true to restore it with RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS as its TTL")]
    UnknownExpiry,
    #[error(
        "its JSON value was stored before values were kept; the next sync from Redis keeps it"
    )]
    ValueNotKept,
    #[error("the stored token cannot be decrypted: {0}")]
    Undecryptable(DecryptError),
    #[error("Upstash refused the write: {0}")]
    Refused(String),
}

/// A token ready to be written: its key, its value as read, and when it expires.
struct Planned {
    account: String,
    redis_key: String,
    /// Secret.
    value: String,
    value_format: &'static str,
    /// `None`: unknown expiry, written with the configured TTL.
    expires_at: Option<DateTime<Utc>>,
}

/// Runs a restore. A real one takes the lock syncs take (a sync or restore already running:
/// [`JobError::SyncInProgress`]); a dry run only reads.
pub async fn restore(
    services: &Services,
    trigger: Trigger,
    options: RestoreOptions,
) -> Result<RestoreReport, JobError> {
    let since = services.subrequests.count();
    let job = Box::pin(run_locked(services, trigger, options, since));
    if options.dry_run {
        return job.await;
    }
    lock::exclusive(services, "restore", job).await
}

/// Runs a restore while the caller holds the lock (a sync that suspected a loss does), within
/// the subrequest budget of the invocation that started when the count was `since`.
pub(crate) async fn run_locked(
    services: &Services,
    trigger: Trigger,
    options: RestoreOptions,
    since: usize,
) -> Result<RestoreReport, JobError> {
    let started = Utc::now();
    let record = !options.dry_run;
    let start = services
        .store
        .begin_restore(trigger.as_str(), record)
        .await?;
    if start.locked_until.is_some() {
        // A sync released the Redis lock after reading Redis but is still writing to
        // Supabase (its lease in Postgres): it must finish first.
        return Err(JobError::SyncInProgress {
            ttl_seconds: services.config.lock_ttl_ms / 1000,
        });
    }
    let mut report = RestoreReport {
        success: true,
        dry_run: options.dry_run,
        message: String::new(),
        restored: Vec::new(),
        already_present: Vec::new(),
        skipped: Vec::new(),
        deferred: 0,
        inactive: start.inactive,
        run_id: start.run_id.clone(),
        duration_ms: 0,
    };
    let seen = start.tokens.len();
    let mut reads = Vec::new();
    let planned = plan(
        services,
        start.tokens,
        options,
        &mut report.skipped,
        &mut reads,
    );
    // Every secret opened is in the audit trail before it is used (one write per pass).
    let required = services.config.audit_required;
    let audited = audit::write_job_reads(&services.store, &reads, required).await;
    // Keep room for recording the run, releasing the lock, and the alerts sent after it.
    let reserve = if record {
        2 + crate::alerts::reserve(services)
    } else {
        0
    };
    let written = match audited {
        Ok(()) => write(services, planned, options, (since, reserve), &mut report).await,
        Err(e) => Err(e.into()),
    };
    report.duration_ms = (Utc::now() - started).num_milliseconds();
    let Some(run_id) = start.run_id else {
        written?;
        report.message = message(&report);
        return Ok(report);
    };
    let error = written.as_ref().err().map(ToString::to_string);
    let finished = services
        .store
        .finish_restore(
            &run_id,
            error.is_none(),
            stats(&report, seen, trigger),
            error.as_deref(),
        )
        .await;
    crate::logging::log(json!({
        "event": "restore", "run_id": run_id, "trigger": trigger.as_str(), "ok": error.is_none(),
        "restored": report.restored.len(), "already_present": report.already_present.len(),
        "skipped": report.skipped.len(), "deferred": report.deferred, "error": error,
    }));
    if let Err(e) = written {
        if let Err(recorded) = finished {
            crate::logging::log(json!({
                "event": "restore_record_failed", "run_id": run_id, "error": recorded.to_string(),
            }));
        }
        return Err(e);
    }
    finished?;
    report.message = message(&report);
    Ok(report)
}

/// Decides for each active row whether and what to write; the rest go to `skipped`. Each row
/// whose secret was opened (or failed to open) is one of `reads`.
fn plan(
    services: &Services,
    rows: Vec<RestorableToken>,
    options: RestoreOptions,
    skipped: &mut Vec<SkippedToken>,
    reads: &mut Vec<TokenRead>,
) -> Vec<Planned> {
    let config = &services.config;
    let unknown_allowed =
        options.include_unknown_expiry && config.restore_unknown_expiry_ttl_ms.is_some();
    let now = Utc::now();
    let mut planned = Vec::with_capacity(rows.len());
    for row in rows {
        let redis_key = row
            .metadata
            .get("redis_key")
            .and_then(Value::as_str)
            .map(str::to_string);
        let decided = prepare(&row, redis_key.as_deref(), config, unknown_allowed, now);
        let outcome = match &decided {
            Ok(_) | Err(RestoreSkip::ValueNotKept) => Some(audit::OPENED),
            Err(RestoreSkip::Undecryptable(_)) => Some(audit::UNDECRYPTABLE),
            Err(_) => None,
        };
        if let Some(outcome) = outcome {
            reads.push(audit::job_read(
                audit::RESTORE_JOB,
                &row.account_name,
                outcome,
                now,
            ));
        }
        match decided {
            Ok((value, value_format)) => planned.push(Planned {
                account: row.account_name,
                redis_key: redis_key.expect("prepare checked the key"),
                value,
                value_format,
                expires_at: row.expires_at,
            }),
            Err(reason) => skipped.push(SkippedToken {
                account: row.account_name,
                redis_key,
                reason: reason.to_string(),
            }),
        }
    }
    planned
}

/// The value to write for `row` and its format, or why it is not written.
fn prepare(
    row: &RestorableToken,
    redis_key: Option<&str>,
    config: &crate::config::Config,
    unknown_allowed: bool,
    now: DateTime<Utc>,
) -> Result<(String, &'static str), RestoreSkip> {
    let account = row.account_name.as_str();
    let key = redis_key.ok_or(RestoreSkip::NoRedisKey)?;
    let names_account = config.key_patterns.iter().any(|pattern| {
        AccountName::from_redis_key(key, pattern).is_ok_and(|a| a.as_str() == account)
    });
    if !names_account {
        return Err(RestoreSkip::OutsidePatterns);
    }
    match row.expires_at {
        Some(at) if (at - now).num_milliseconds() < MIN_TTL_MS => return Err(RestoreSkip::Expired),
        None if !unknown_allowed => return Err(RestoreSkip::UnknownExpiry),
        _ => {}
    }
    let secrets = row
        .sealed
        .open(&config.keyring, account)
        .map_err(RestoreSkip::Undecryptable)?;
    if row.metadata.get("value_format").and_then(Value::as_str) == Some("json") {
        let value = secrets.redis_value.ok_or(RestoreSkip::ValueNotKept)?;
        return Ok((value, "json"));
    }
    Ok((secrets.access_token, "raw"))
}

/// Writes (or, in a dry run, checks) the planned keys in pipelines bounded by the batch size,
/// [`MAX_PIPELINE_BYTES`] and the subrequests left (counted `since`) after `reserve`. A failed
/// pipeline stops the restore: nothing of that batch is reported restored.
async fn write(
    services: &Services,
    planned: Vec<Planned>,
    options: RestoreOptions,
    (since, reserve): (usize, usize),
    report: &mut RestoreReport,
) -> Result<(), JobError> {
    let unknown_ttl_ms = services.config.restore_unknown_expiry_ttl_ms;
    let mut rest = planned.as_slice();
    while !rest.is_empty() {
        if services.subrequests_left(since) <= reserve {
            report.deferred = rest.len();
            return Ok(());
        }
        let len = batch_len(rest, services.config.batch_size);
        let (batch, tail) = rest.split_at(len);
        rest = tail;
        let now = Utc::now();
        let mut writes = Vec::with_capacity(batch.len());
        let mut sent = Vec::with_capacity(batch.len());
        for p in batch {
            let ttl_ms = match p.expires_at {
                Some(at) => (at - now).num_milliseconds(),
                None => unknown_ttl_ms.map_or(0, |ttl| ttl as i64),
            };
            match NonZeroU64::new(ttl_ms.max(0) as u64).filter(|_| ttl_ms >= MIN_TTL_MS) {
                Some(ttl_ms) => {
                    writes.push(NewKey {
                        key: p.redis_key.clone(),
                        value: p.value.clone(),
                        ttl_ms,
                    });
                    sent.push(p);
                }
                None => report.skipped.push(SkippedToken {
                    account: p.account.clone(),
                    redis_key: Some(p.redis_key.clone()),
                    reason: RestoreSkip::Expired.to_string(),
                }),
            }
        }
        if writes.is_empty() {
            continue;
        }
        let outcomes = if options.dry_run {
            let keys: Vec<String> = writes.iter().map(|w| w.key.clone()).collect();
            services
                .upstash
                .exists(&keys)
                .await?
                .into_iter()
                .map(|exists| {
                    if exists {
                        SetOutcome::Exists
                    } else {
                        SetOutcome::Written
                    }
                })
                .collect()
        } else {
            services.upstash.set_nx_px(&writes).await?
        };
        for ((p, w), outcome) in sent.into_iter().zip(&writes).zip(outcomes) {
            match outcome {
                SetOutcome::Written => report.restored.push(RestoredKey {
                    account: p.account.clone(),
                    redis_key: p.redis_key.clone(),
                    ttl_ms: w.ttl_ms.get(),
                    value_format: p.value_format.to_string(),
                }),
                SetOutcome::Exists => report.already_present.push(PresentKey {
                    account: p.account.clone(),
                    redis_key: p.redis_key.clone(),
                }),
                SetOutcome::Refused(e) => report.skipped.push(SkippedToken {
                    account: p.account.clone(),
                    redis_key: Some(p.redis_key.clone()),
                    reason: RestoreSkip::Refused(e).to_string(),
                }),
            }
        }
    }
    Ok(())
}

/// How many of `planned` go into the next pipeline: at most `batch_size`, and no more than
/// [`MAX_PIPELINE_BYTES`] of keys and values (at least one).
fn batch_len(planned: &[Planned], batch_size: usize) -> usize {
    let mut bytes = 0;
    let mut len = 0;
    for p in planned.iter().take(batch_size.max(1)) {
        // The command's JSON: the strings plus quoting, escapes and the other arguments.
        bytes += p.redis_key.len() + p.value.len() * 2 + 48;
        if len > 0 && bytes > MAX_PIPELINE_BYTES {
            break;
        }
        len += 1;
    }
    len
}

fn message(report: &RestoreReport) -> String {
    let (restored, present, skipped) = (
        report.restored.len(),
        report.already_present.len(),
        report.skipped.len(),
    );
    let mut message = if report.dry_run {
        format!("Would restore {restored} tokens to Redis ({present} already present, {skipped} skipped); nothing was written")
    } else {
        format!(
            "Restored {restored} tokens to Redis ({present} already present, {skipped} skipped)"
        )
    };
    if report.deferred > 0 {
        message.push_str(&format!(
            "; {} more did not fit this invocation's subrequest budget (SUBREQUEST_BUDGET): run restore again",
            report.deferred
        ));
    }
    message
}

/// What `sync_runs` records: counts, and keys with reasons, never a value.
fn stats(report: &RestoreReport, seen: usize, trigger: Trigger) -> Value {
    json!({
        "tokens_seen": seen,
        "restored": report.restored.len(),
        "already_present": report.already_present.len(),
        "skipped": report.skipped.len(),
        "deferred": report.deferred,
        "details": {
            "trigger": trigger.as_str(),
            "restored": report.restored,
            "already_present": report.already_present,
            "skipped": report.skipped,
            "deferred": report.deferred,
            "inactive": report.inactive,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn planned(value_len: usize) -> Planned {
        Planned {
            account: "A".into(),
            redis_key: "token:A".into(),
            value: "x".repeat(value_len),
            value_format: "raw",
            expires_at: None,
        }
    }

    #[test]
    fn batches_are_bounded_by_count_and_bytes_and_never_empty() {
        let small: Vec<Planned> = (0..30).map(|_| planned(1000)).collect();
        assert_eq!(batch_len(&small, 1000), 30);
        assert_eq!(batch_len(&small, 7), 7);
        let big: Vec<Planned> = (0..100).map(|_| planned(64 * 1024)).collect();
        let len = batch_len(&big, 1000);
        assert!((1..100).contains(&len), "{len}");
        let huge = vec![planned(MAX_PIPELINE_BYTES)];
        assert_eq!(batch_len(&huge, 1000), 1);
    }

    #[test]
    fn skip_reasons_name_what_to_do() {
        assert!(RestoreSkip::UnknownExpiry
            .to_string()
            .contains("include_unknown_expiry"));
        assert!(RestoreSkip::Refused("ERR x".into())
            .to_string()
            .contains("ERR x"));
    }
}
