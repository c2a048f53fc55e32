//! Renew: keeps Tradovate sessions alive. Active tokens whose known expiry falls within
//! `RENEW_BEFORE_MINUTES` (and is not past) are read from Supabase in one query and grouped by
//! token: tokens that are equal are one session (a main account and its sub-accounts often
//! share one), renewed once with `GET /auth/renewaccesstoken`. The new token goes to every
//! Redis key that still holds the old one, by compare-and-set, in the value's own format with
//! the new lifetime as TTL; then the rows are written to Supabase, encrypted, exactly as the
//! next sync would write them (so it finds nothing to change).
//!
//! Round trips per pass: Upstash 3 (lock + pause state; budget + current values; writes +
//! unlock), Supabase 3 (candidates; the audit of the tokens it opened, when any; results),
//! Tradovate 1 per renewed session.
//!
//! Rate-limit safety: a rolling hourly budget in Redis for the whole deployment (below
//! Tradovate's documented 15 per hour), a minimum interval per session, sessions tried one
//! after the other, and a pause of every renewal after a penalty ticket, a captcha or a 429,
//! until the documented wait has passed. A 401 marks the session `renew_failed` until a bot
//! writes a different token. Never a password, never `accesstokenrequest`, never a token in a
//! report, a log line or `sync_runs`.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use super::lock::owner as lock_owner;
use super::{JobError, Services, Trigger};
use crate::audit;
use crate::domain::account::AccountName;
use crate::domain::candidate::Candidate;
use crate::domain::expiry::Ttl;
use crate::domain::renewal::{renewed_value, NewToken};
use crate::domain::sealed::SealedToken;
use crate::domain::token_value::parse_token_value;
use crate::store::{RenewCandidate, RenewMark, RenewedRow};
use crate::tradovate::{Environment, RenewAnswer, Renewed};
use crate::upstash::{self, Reply};

pub use api_model::{RenewOutcome, RenewReport, SessionResult};

/// The Redis key holding the renew lock (two passes never run at once).
pub const LOCK_KEY: &str = "token-manager:renew-lock";
/// The Redis key holding the pause after a penalty (`{"until", "reason"}`, expiring with it).
pub const PAUSE_KEY: &str = "token-manager:renew:paused";
/// The Redis sorted set of renewals in the last hour (the deployment's budget).
pub const BUDGET_KEY: &str = "token-manager:renew:budget";
/// Subrequests of a pass besides the Tradovate calls (Upstash 3, Supabase 3).
pub const FIXED_SUBREQUESTS: usize = 6;
/// Sessions one pass renews at most: the free plan's 50 subrequests less the fixed ones.
pub const MAX_SESSIONS_PER_RUN: usize = 50 - FIXED_SUBREQUESTS;
/// How long 429 and captcha penalties pause renewals: the docs say to wait an hour.
pub const LONG_PAUSE_SECONDS: i64 = 3600;
const HOUR_MS: i64 = 3_600_000;
/// A renewal answering an expiry closer than this is refused (it would die at once).
const MIN_NEW_LIFETIME_SECONDS: i64 = 60;

/// A pause of every renewal, kept in Redis at [`PAUSE_KEY`] until it ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pause {
    pub until: DateTime<Utc>,
    pub reason: String,
}

impl Pause {
    /// Reads the stored pause; a value that does not parse is no pause.
    pub fn from_reply(reply: &Reply) -> Option<Pause> {
        match reply {
            Reply::Bytes(bytes) => serde_json::from_slice(bytes).ok(),
            _ => None,
        }
    }
}

/// The fields the cron log line shows for a pass.
pub fn log_fields(r: &RenewReport) -> Value {
    json!({
        "job": "renew", "run_id": r.run_id, "candidates": r.candidates, "sessions": r.sessions,
        "renewed": r.renewed, "failed": r.failed, "skipped": r.skipped,
        "tokens_updated": r.tokens_updated, "keys_written": r.keys_written,
        "keys_conflicted": r.keys_conflicted, "renewals_last_hour": r.renewals_last_hour,
        "renewals_paused_until": r.renewals_paused_until, "duration_ms": r.duration_ms,
    })
}

/// Runs a renew pass, or with `dry_run` says what one would do without locking, spending
/// budget, calling Tradovate or writing anything. A real pass needs `RENEW_ENABLED`.
pub async fn renew(
    services: &Services,
    trigger: Trigger,
    dry_run: bool,
) -> Result<RenewReport, JobError> {
    let settings = &services.config.renew;
    if !settings.enabled && !dry_run {
        return Err(JobError::RenewDisabled);
    }
    let started = Utc::now();
    let owner = lock_owner();
    let lock_ttl_ms = services
        .config
        .lock_ttl_ms
        .max((settings.hourly_budget + 5) * services.config.upstream_timeout_ms);
    let mut commands = Vec::new();
    if !dry_run {
        commands.push(
            [
                "SET",
                LOCK_KEY,
                &owner,
                "NX",
                "PX",
                &lock_ttl_ms.to_string(),
            ]
            .map(String::from)
            .to_vec(),
        );
    }
    commands.push(vec!["GET".to_string(), PAUSE_KEY.to_string()]);
    let mut answers = services.upstash.pipeline(&commands).await?.into_iter();
    if !dry_run {
        let locked = answers
            .next()
            .expect("one answer per command")
            .map_err(upstash::UpstashError::Command)?;
        if locked == Reply::Nil {
            return Err(JobError::RenewInProgress {
                ttl_seconds: lock_ttl_ms / 1000,
            });
        }
    }
    let pause = answers
        .next()
        .expect("one answer per command")
        .map_err(upstash::UpstashError::Command)?;
    let pause = Pause::from_reply(&pause).filter(|p| p.until > started);
    let pass = Pass {
        services,
        dry_run,
        owner,
        started,
        pause,
    };
    let result = pass.run(trigger).await;
    if result.is_err() && !dry_run {
        // The last pipeline releases the lock; after a failure, release it here (else it
        // expires after its TTL).
        if let Err(e) = services.upstash.unlock(LOCK_KEY, &pass.owner).await {
            crate::logging::log(json!({ "event": "renew_unlock_failed", "error": e.to_string() }));
        }
    }
    result
}

/// One account of a session: the stored row and what its Redis key holds now.
struct Row {
    candidate: RenewCandidate,
    redis_key: Option<String>,
    /// The key's value when it still holds the session's token.
    value: Option<Vec<u8>>,
}

/// Accounts holding one token.
struct Session {
    token: String,
    rows: Vec<Row>,
    environment: Environment,
    expires_at: DateTime<Utc>,
    renewal_count: u64,
    last_attempt: Option<DateTime<Utc>>,
    refused: bool,
    result: SessionResult,
}

impl Session {
    fn skip(&mut self, reason: String) {
        self.result.outcome = RenewOutcome::Skipped;
        self.result.reason = Some(reason);
    }

    fn fail(&mut self, reason: String) {
        self.result.outcome = RenewOutcome::Failed;
        self.result.reason = Some(reason);
    }

    /// Metadata to merge into every row of the session after a failed try.
    fn marks(&self, state: &str, error: &str, now: DateTime<Utc>) -> Vec<RenewMark> {
        self.rows
            .iter()
            .map(|row| RenewMark {
                account_name: row.candidate.account_name.clone(),
                fingerprint: row.candidate.token_fingerprint.clone(),
                patch: json!({ "renew_state": state, "renew_error": error, "renew_attempted_at": now }),
            })
            .collect()
    }
}

/// A renewed value waiting for its compare-and-set.
struct Write {
    session: usize,
    redis_key: String,
    old: String,
    new: String,
    ttl_ms: u64,
    row: RenewedRow,
}

struct Pass<'a> {
    services: &'a Services,
    dry_run: bool,
    owner: String,
    started: DateTime<Utc>,
    pause: Option<Pause>,
}

impl Pass<'_> {
    async fn run(&self, trigger: Trigger) -> Result<RenewReport, JobError> {
        let settings = &self.services.config.renew;
        let store = &self.services.store;
        let start = store
            .begin_renew(trigger.as_str(), settings.before_seconds, self.dry_run)
            .await?;
        let run_id = start.run_id.clone();
        let result = self.apply(start.candidates, run_id.as_deref()).await;
        if let (Err(error), Some(run_id)) = (&result, &run_id) {
            let message = error.to_string();
            if let Err(e) = store
                .finish_renew(run_id, &[], &[], json!({}), Some(&message))
                .await
            {
                crate::logging::log(
                    json!({ "event": "renew_record_failed", "run_id": run_id, "error": e.to_string() }),
                );
            }
        }
        result
    }

    async fn apply(
        &self,
        candidates: Vec<RenewCandidate>,
        run_id: Option<&str>,
    ) -> Result<RenewReport, JobError> {
        let config = &self.services.config;
        let settings = &config.renew;
        let now = self.started;
        let candidate_count = candidates.len();
        let (mut sessions, undecryptable) = self.sessions(candidates);
        // Every secret opened is in the audit trail before it is used (one write per pass).
        let reads: Vec<_> = sessions
            .iter()
            .flat_map(|s| &s.rows)
            .map(|row| (row.candidate.account_name.as_str(), audit::OPENED))
            .chain(
                undecryptable
                    .iter()
                    .map(|r| (r.session.as_str(), audit::UNDECRYPTABLE)),
            )
            .map(|(account, outcome)| audit::job_read(audit::RENEW_JOB, account, outcome, now))
            .collect();
        audit::write_job_reads(&self.services.store, &reads, config.audit_required).await?;

        // Decide what needs no I/O.
        let mut eligible = Vec::new();
        for (i, s) in sessions.iter_mut().enumerate() {
            if let Some(pause) = &self.pause {
                s.skip(format!(
                    "renewals are paused until {}: {}",
                    pause.until.to_rfc3339(),
                    pause.reason
                ));
            } else if s.refused {
                s.skip("Tradovate refused this token (401); it is not tried again until a bot writes a new token to Redis".into());
            } else if s.expires_at <= now {
                s.skip(
                    "already expired: a renewal cannot bring it back; the bot must log in again"
                        .into(),
                );
            } else if let Some(at) = s
                .last_attempt
                .filter(|at| (now - *at).num_seconds() < settings.min_interval_seconds)
            {
                s.skip(format!(
                    "tried {} s ago; one try per {} min (RENEW_MIN_INTERVAL_MINUTES)",
                    (now - at).num_seconds(),
                    settings.min_interval_seconds / 60
                ));
            } else if s.rows.iter().all(|r| r.redis_key.is_none()) {
                s.skip("no Redis key is known for it; run a sync".into());
            } else {
                eligible.push(i);
            }
        }

        // One pipeline: the budget (reserve, or count for a dry run) and the keys' values.
        let wanted = eligible.len().min(MAX_SESSIONS_PER_RUN);
        let now_ms = now.timestamp_millis();
        let mut commands = vec![if self.dry_run || wanted == 0 {
            upstash::used_command(BUDGET_KEY, now_ms, HOUR_MS)
        } else {
            upstash::reserve_command(
                BUDGET_KEY,
                now_ms,
                HOUR_MS,
                settings.hourly_budget,
                wanted,
                &self.owner,
            )
        }];
        let keys: Vec<(usize, usize, String)> = eligible
            .iter()
            .flat_map(|&i| {
                sessions[i]
                    .rows
                    .iter()
                    .enumerate()
                    .filter_map(move |(j, r)| r.redis_key.clone().map(|k| (i, j, k)))
            })
            .collect();
        if !keys.is_empty() {
            commands.push(
                std::iter::once("MGET".to_string())
                    .chain(keys.iter().map(|(_, _, k)| k.clone()))
                    .collect(),
            );
        }
        let mut answers = self.services.upstash.pipeline(&commands).await?.into_iter();
        let budget = answers
            .next()
            .expect("one answer per command")
            .map_err(upstash::UpstashError::Command)?;
        let (mut granted, used_before) = match (&budget, self.dry_run || wanted == 0) {
            (Reply::Int(used), true) => {
                let used = (*used).max(0) as u64;
                (settings.hourly_budget.saturating_sub(used) as usize, used)
            }
            (Reply::Array(parts), false) => match parts.as_slice() {
                [Reply::Int(granted), Reply::Int(used)] => {
                    ((*granted).max(0) as usize, (*used).max(0) as u64)
                }
                _ => return Err(protocol("the budget script answered an unexpected shape")),
            },
            _ => return Err(protocol("the budget command answered an unexpected shape")),
        };
        if self.dry_run {
            granted = granted.min(wanted);
        }
        if let Some(values) = answers.next() {
            let values = match values.map_err(upstash::UpstashError::Command)? {
                Reply::Array(values) if values.len() == keys.len() => values,
                _ => return Err(protocol("MGET answered an unexpected shape")),
            };
            for ((i, j, _), value) in keys.iter().zip(values) {
                let session = &mut sessions[*i];
                if let Reply::Bytes(bytes) = value {
                    let holds =
                        parse_token_value(&bytes).is_ok_and(|v| v.access_token == session.token);
                    if holds {
                        session.rows[*j].value = Some(bytes);
                    }
                }
            }
        }

        // Try the sessions one after another, within the budget; stop at a penalty.
        let mut writes: Vec<Write> = Vec::new();
        let mut marks: Vec<RenewMark> = Vec::new();
        let mut new_pause: Option<(Pause, i64)> = None;
        let mut stop: Option<String> = None;
        let mut used_slots = 0usize;
        let mut keys_stale = 0usize;
        for &i in &eligible {
            let session = &mut sessions[i];
            let holding = session.rows.iter().filter(|r| r.value.is_some()).count();
            keys_stale += session
                .rows
                .iter()
                .filter(|r| r.redis_key.is_some())
                .count()
                - holding;
            if holding == 0 {
                session.skip("no Redis key holds this token any more (a bot logged in again); the next sync stores the new token".into());
                continue;
            }
            if let Some(reason) = &stop {
                session.skip(reason.clone());
                continue;
            }
            if used_slots >= granted {
                session.skip(format!(
                    "the hourly renewal budget ({} per rolling hour, RENEW_HOURLY_BUDGET) is used up; a later pass renews it",
                    settings.hourly_budget
                ));
                continue;
            }
            used_slots += 1;
            if self.dry_run {
                session.result.outcome = RenewOutcome::WouldRenew;
                continue;
            }
            let base_url = settings.base_url(session.environment);
            let answer = self
                .services
                .tradovate
                .renew(base_url, &session.token)
                .await;
            let at = Utc::now();
            match answer {
                Ok(RenewAnswer::Renewed(renewed))
                    if (renewed.expiration_time - at).num_seconds() >= MIN_NEW_LIFETIME_SECONDS =>
                {
                    session.result.outcome = RenewOutcome::Renewed;
                    session.result.new_expires_at = Some(renewed.expiration_time);
                    writes.extend(self.writes(i, session, &renewed, at)?);
                }
                Ok(RenewAnswer::Renewed(_)) => {
                    let reason =
                        "Tradovate answered a new token that expires within a minute; not stored";
                    session.fail(reason.into());
                    marks.extend(session.marks("renew_error", reason, at));
                }
                Ok(RenewAnswer::ErrorText(text)) => {
                    session.fail(format!("Tradovate answered errorText: {text}"));
                    marks.extend(session.marks("renew_error", &format!("errorText: {text}"), at));
                }
                Ok(RenewAnswer::Unauthorized) => {
                    let reason = "Tradovate answered 401: the token is expired, revoked or its session closed; the bot must log in again";
                    session.fail(reason.into());
                    marks.extend(session.marks("renew_failed", reason, at));
                }
                Ok(RenewAnswer::Penalty {
                    p_time_seconds,
                    captcha,
                }) => {
                    let (seconds, reason) = if captcha {
                        (
                            (p_time_seconds as i64).max(LONG_PAUSE_SECONDS),
                            format!("Tradovate answered a penalty ticket with a captcha (p-time {p_time_seconds} s), which only a person can solve; waiting an hour"),
                        )
                    } else {
                        (
                            (p_time_seconds as i64).max(1),
                            format!(
                                "Tradovate answered a penalty ticket (p-time {p_time_seconds} s)"
                            ),
                        )
                    };
                    session.fail(format!("{reason}; every renewal is paused"));
                    let pause = Pause {
                        until: at + Duration::seconds(seconds),
                        reason,
                    };
                    stop = Some(format!(
                        "renewals are paused until {}: {}",
                        pause.until.to_rfc3339(),
                        pause.reason
                    ));
                    new_pause = Some((pause, seconds));
                }
                Ok(RenewAnswer::TooManyRequests) => {
                    let reason =
                        "Tradovate answered 429 Too Many Requests; the docs say to wait an hour"
                            .to_string();
                    session.fail(format!("{reason}; every renewal is paused"));
                    let pause = Pause {
                        until: at + Duration::seconds(LONG_PAUSE_SECONDS),
                        reason,
                    };
                    stop = Some(format!(
                        "renewals are paused until {}: {}",
                        pause.until.to_rfc3339(),
                        pause.reason
                    ));
                    new_pause = Some((pause, LONG_PAUSE_SECONDS));
                }
                Err(e) => {
                    let reason = e.to_string();
                    session.fail(reason.clone());
                    marks.extend(session.marks("renew_error", &reason, at));
                    stop = Some(format!(
                        "not tried after Tradovate failed for {}: {reason}",
                        session.result.session
                    ));
                }
            }
        }
        let renewals_last_hour = used_before + used_slots as u64;

        let mut keys_written = 0;
        let mut keys_conflicted = keys_stale;
        let mut rows = Vec::new();
        let mut tokens_updated = 0;
        if run_id.is_some() {
            // One pipeline: every compare-and-set, the pause, unused budget back, unlock.
            let mut commands: Vec<Vec<String>> = writes
                .iter()
                .map(|w| upstash::compare_and_set_command(&w.redis_key, &w.old, &w.new, w.ttl_ms))
                .collect();
            if let Some((pause, seconds)) = &new_pause {
                let value = serde_json::to_string(pause).expect("a pause serialises");
                commands.push(vec![
                    "SET".into(),
                    PAUSE_KEY.into(),
                    value,
                    "PX".into(),
                    (seconds * 1000).to_string(),
                ]);
            }
            if granted > used_slots {
                commands.push(upstash::release_command(
                    BUDGET_KEY,
                    &self.owner,
                    used_slots + 1,
                    granted,
                ));
            }
            commands.push(upstash::unlock_command(LOCK_KEY, &self.owner));
            let answers = self.services.upstash.pipeline(&commands).await?;
            for (write, answer) in writes.into_iter().zip(answers) {
                if answer == Ok(Reply::Int(1)) {
                    keys_written += 1;
                    rows.push(write.row);
                } else {
                    keys_conflicted += 1;
                    let session = &mut sessions[write.session];
                    session.result.reason = Some(
                        "some keys were rewritten by a bot while renewing; they were left alone"
                            .into(),
                    );
                }
            }
        }

        let mut results: Vec<SessionResult> = sessions.into_iter().map(|s| s.result).collect();
        results.extend(undecryptable);
        let count = |o: RenewOutcome| results.iter().filter(|r| r.outcome == o).count();
        let (renewed, would, failed, skipped) = (
            count(RenewOutcome::Renewed),
            count(RenewOutcome::WouldRenew),
            count(RenewOutcome::Failed),
            count(RenewOutcome::Skipped),
        );
        let imposed_pause = new_pause.is_some();
        let pause = new_pause.map(|(p, _)| p).or_else(|| self.pause.clone());
        let message = if self.dry_run {
            format!(
                "Would renew {would} of {} sessions ({candidate_count} tokens in the window)",
                results.len()
            )
        } else {
            format!(
                "Renewed {renewed} of {} sessions ({} tokens); {failed} failed, {skipped} skipped",
                results.len(),
                rows.len()
            )
        };
        if let Some(run_id) = run_id {
            let stats = json!({
                "tokens_seen": candidate_count, "skipped": skipped,
                "details": {
                    "renewed": renewed, "failed": failed, "skipped": skipped,
                    "keys_written": keys_written, "keys_conflicted": keys_conflicted,
                    "hourly_budget": settings.hourly_budget, "renewals_last_hour": renewals_last_hour,
                    "paused_until": pause.as_ref().map(|p| p.until),
                    "paused_reason": pause.as_ref().map(|p| p.reason.clone()),
                    "sessions": results,
                },
            });
            tokens_updated = self
                .services
                .store
                .finish_renew(run_id, &rows, &marks, stats, None)
                .await?;
        }
        Ok(RenewReport {
            success: failed == 0 && !imposed_pause,
            message,
            dry_run: self.dry_run,
            run_id: run_id.map(str::to_string),
            candidates: candidate_count,
            sessions: results.len(),
            renewed,
            failed,
            skipped,
            tokens_updated,
            keys_written,
            keys_conflicted,
            hourly_budget: settings.hourly_budget,
            renewals_last_hour,
            renewals_paused_until: pause.as_ref().map(|p| p.until),
            renewals_paused_reason: pause.map(|p| p.reason),
            results,
            duration_ms: (Utc::now() - self.started).num_milliseconds(),
        })
    }

    /// Decrypts the candidates and groups equal tokens into sessions (in account order);
    /// rows no configured key opens are reported as skipped.
    fn sessions(&self, candidates: Vec<RenewCandidate>) -> (Vec<Session>, Vec<SessionResult>) {
        let config = &self.services.config;
        let mut sessions: Vec<Session> = Vec::new();
        let mut by_token: HashMap<String, usize> = HashMap::new();
        let mut undecryptable = Vec::new();
        for candidate in candidates {
            let environment = config.renew.environment_for(&candidate.main_account);
            let mut metadata = candidate.metadata.clone();
            let sealed = SealedToken::from_row(candidate.access_token.clone(), &mut metadata);
            let Ok(secrets) = sealed.open(&config.keyring, &candidate.account_name) else {
                undecryptable.push(SessionResult {
                    session: candidate.account_name.clone(),
                    main_account: candidate.main_account.clone(),
                    environment,
                    accounts: vec![candidate.account_name.clone()],
                    expires_at: candidate.expires_at,
                    outcome: RenewOutcome::Skipped,
                    reason: Some(
                        "the stored token cannot be decrypted with the configured keys".into(),
                    ),
                    new_expires_at: None,
                });
                continue;
            };
            let token = secrets.access_token;
            let metadata = &candidate.metadata;
            let renewal_count = metadata
                .get("renewal_count")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            let last_attempt = metadata
                .get("renew_attempted_at")
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc));
            let refused =
                metadata.get("renew_state").and_then(Value::as_str) == Some("renew_failed");
            let redis_key = metadata
                .get("redis_key")
                .and_then(Value::as_str)
                .map(str::to_string);
            let index = *by_token.entry(token.clone()).or_insert_with(|| {
                sessions.push(Session {
                    token,
                    rows: Vec::new(),
                    environment,
                    expires_at: candidate.expires_at,
                    renewal_count: 0,
                    last_attempt: None,
                    refused: false,
                    result: SessionResult {
                        session: candidate.account_name.clone(),
                        main_account: candidate.main_account.clone(),
                        environment,
                        accounts: Vec::new(),
                        expires_at: candidate.expires_at,
                        outcome: RenewOutcome::Skipped,
                        reason: None,
                        new_expires_at: None,
                    },
                });
                sessions.len() - 1
            });
            let session = &mut sessions[index];
            session.expires_at = session.expires_at.min(candidate.expires_at);
            session.result.expires_at = session.expires_at;
            session.renewal_count = session.renewal_count.max(renewal_count);
            session.last_attempt = session.last_attempt.max(last_attempt);
            session.refused |= refused;
            session.result.accounts.push(candidate.account_name.clone());
            session.rows.push(Row {
                candidate,
                redis_key,
                value: None,
            });
        }
        (sessions, undecryptable)
    }

    /// The new values and rows for every key of `session` that holds its token.
    fn writes(
        &self,
        index: usize,
        session: &Session,
        renewed: &Renewed,
        at: DateTime<Utc>,
    ) -> Result<Vec<Write>, JobError> {
        let keyring = &self.services.config.keyring;
        let ttl_ms = (renewed.expiration_time - at).num_milliseconds().max(1);
        let new_token = NewToken {
            access_token: &renewed.access_token,
            md_access_token: renewed.md_access_token.as_deref(),
            expiration_time: renewed.expiration_time,
            expiration_text: &renewed.expiration_text,
        };
        let mut writes = Vec::new();
        for row in &session.rows {
            let (Some(key), Some(old)) = (&row.redis_key, &row.value) else {
                continue;
            };
            let Ok(value) = renewed_value(old, &new_token) else {
                continue;
            };
            let (Ok(old_text), Ok(new_text)) = (
                String::from_utf8(old.clone()),
                String::from_utf8(value.clone()),
            ) else {
                continue;
            };
            let account = AccountName::parse(&row.candidate.account_name).map_err(|e| {
                JobError::InvalidAccount {
                    account: row.candidate.account_name.clone(),
                    reason: e.to_string(),
                }
            })?;
            // The row exactly as the next sync would build it from the new value.
            let ttl = Ttl::Millis(ttl_ms as u64);
            let Ok(candidate) = Candidate::parse(account, key.clone(), &value, ttl, at) else {
                continue;
            };
            let fingerprint = candidate.fingerprint(keyring);
            let mut token_row = candidate.seal(keyring, fingerprint);
            token_row.metadata.renewed_at = Some(at);
            token_row.metadata.renewal_count = Some(session.renewal_count + 1);
            token_row.metadata.renew_state = Some("renewed".into());
            token_row.metadata.renew_attempted_at = Some(at);
            writes.push(Write {
                session: index,
                redis_key: key.clone(),
                old: old_text,
                new: new_text,
                ttl_ms: ttl_ms as u64,
                row: RenewedRow {
                    row: token_row,
                    previous_fingerprint: row.candidate.token_fingerprint.clone(),
                },
            });
        }
        Ok(writes)
    }
}

fn protocol(message: &str) -> JobError {
    JobError::Upstash(upstash::UpstashError::Protocol(message.into()))
}
