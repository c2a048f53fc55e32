//! The audit trail of token reads: who (the API key's name), which account, when, from where
//! (`CF-Connecting-IP`, `User-Agent`) and with what outcome. Written off the response path by
//! default; with `AUDIT_REQUIRED=true` before the answer, failing the read closed.
//!
//! A failed write is logged and counted ([`write_failures`], shown by status); it never turns
//! a good read into an error unless `AUDIT_REQUIRED` says so.

use std::sync::atomic::{AtomicU64, Ordering};

use serde_json::json;

use crate::store::{Store, StoreError, TokenRead};

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
            let failures = FAILURES.fetch_add(1, Ordering::Relaxed) + 1;
            crate::logging::log(json!({
                "event": "audit_write_failed",
                "reads": reads.len(),
                "accounts": reads.iter().map(|r| r.account_name.as_str()).collect::<Vec<_>>(),
                "error": e.to_string(),
                "failures": failures,
            }));
            Err(e)
        }
    }
}
