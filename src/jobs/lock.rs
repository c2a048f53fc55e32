//! The one Redis lock that keeps syncs and restores from overlapping: taken with
//! `SET NX PX` for a random owner, released only by that owner, expiring by itself
//! (`SYNC_LOCK_TTL_SECONDS`) if a run dies.

use std::future::Future;

use serde_json::json;

use super::{JobError, Services};

/// The Redis key holding the lock.
pub const LOCK_KEY: &str = "token-manager:sync-lock";

/// Runs `job` (named `name` in the log) holding the lock; when someone else holds it,
/// [`JobError::SyncInProgress`] without running it. The lock is released whatever `job`
/// returns; a release that fails is logged (the lock then expires after its TTL).
pub(crate) async fn exclusive<T>(
    services: &Services,
    name: &str,
    job: impl Future<Output = Result<T, JobError>>,
) -> Result<T, JobError> {
    let owner = owner();
    let ttl = services.config.lock_ttl_ms;
    if !services.upstash.try_lock(LOCK_KEY, &owner, ttl).await? {
        return Err(JobError::SyncInProgress {
            ttl_seconds: ttl / 1000,
        });
    }
    let result = job.await;
    if let Err(e) = services.upstash.unlock(LOCK_KEY, &owner).await {
        crate::logging::log(
            json!({ "event": format!("{name}_unlock_failed"), "error": e.to_string() }),
        );
    }
    result
}

/// A random id so only the run that took the lock releases it.
pub(crate) fn owner() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the platform has a random source");
    crate::crypto::to_hex(&bytes)
}
