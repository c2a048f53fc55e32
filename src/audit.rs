//! The audit trail of token reads: who (the API key's name), which account, when, from where
//! (`CF-Connecting-IP`, `User-Agent`) and with what outcome. A get records its read in the
//! same database call that reads the token ([`crate::jobs::get::get_recorded`]); only when that
//! call fails, or its outcome is not the answer's, is a row written here: off the response path
//! by default, before the answer with `AUDIT_REQUIRED=true`, failing the read closed.
//!
//! A failed write is logged and counted ([`write_failures`], shown by status); it never turns
//! a good read into an error unless `AUDIT_REQUIRED` says so.
//!
//! The jobs that open stored secrets (restore and renew) record what they opened too, under a
//! job's name ([`RESTORE_JOB`], [`RENEW_JOB`]: a colon no configured key name can hold), in one
//! write per pass, before the secrets are used.

use std::sync::atomic::{AtomicU64, Ordering};

use chrono::{DateTime, Utc};
use serde_json::json;

use crate::store::{Store, StoreError, TokenRead};

/// The key name restore's reads are recorded under.
pub const RESTORE_JOB: &str = "job:restore";
/// The key name renew's reads are recorded under.
pub const RENEW_JOB: &str = "job:renew";
/// The outcome of a job's read that opened the secret.
pub const OPENED: u16 = 200;
/// The outcome of a job's read whose secret no configured key opens (as the API answers it).
pub const UNDECRYPTABLE: u16 = 503;

/// A job's read of `account`'s stored secret at `at`, with `outcome` ([`OPENED`] or
/// [`UNDECRYPTABLE`]); no client IP or user agent.
pub fn job_read(job: &str, account: &str, outcome: u16, at: DateTime<Utc>) -> TokenRead {
    TokenRead {
        read_at: at,
        account_name: account.chars().take(256).collect(),
        outcome,
        key_name: job.to_string(),
        client_ip: None,
        user_agent: None,
    }
}

/// Records a job's `reads` in one round trip (none for no reads). A failure is logged and
/// counted, and returned only when `required` (`AUDIT_REQUIRED=true`): the job then stops
/// before it uses the secrets.
pub async fn write_job_reads(
    store: &Store,
    reads: &[TokenRead],
    required: bool,
) -> Result<(), StoreError> {
    match write(store, reads).await {
        Err(e) if required => Err(e),
        _ => Ok(()),
    }
}

/// Audit writes that failed since this isolate (or process) started.
static FAILURES: AtomicU64 = AtomicU64::new(0);

/// How many audit writes failed in this isolate since it started (status shows it).
pub fn write_failures() -> u64 {
    FAILURES.load(Ordering::Relaxed)
}

/// Writes `reads` in one round trip. On failure logs one line (accounts and the error, never
/// a token), counts it, and returns the error for a caller that must fail closed.
pub async fn write(store: &Store, reads: &[TokenRead]) -> Result<(), StoreError> {
    match store.record_reads(reads).await {
        Ok(_) => Ok(()),
        Err(e) => {
            failed(reads, &e.to_string());
            Err(e)
        }
    }
}

/// Logs one line for `reads` that could not be recorded (accounts and `error`, never a token)
/// and counts it in [`write_failures`].
pub fn failed(reads: &[TokenRead], error: &str) {
    let failures = FAILURES.fetch_add(1, Ordering::Relaxed) + 1;
    crate::logging::log(json!({
        "event": "audit_write_failed",
        "reads": reads.len(),
        "accounts": reads.iter().map(|r| r.account_name.as_str()).collect::<Vec<_>>(),
        "error": error,
        "failures": failures,
    }));
}
