//! The one Redis lock that keeps syncs and restores from overlapping: taken with
//! `SET NX PX` for a random owner, released only by that owner (compare-and-delete), expiring
//! by itself (`SYNC_LOCK_TTL_SECONDS`) if a run dies.
//!
//! A restore takes and releases it in requests of their own ([`exclusive`]). A sync sends no
//! request for it: [`SyncLock`] rides in the sync's pipelines — taken in the first (with the
//! first SCAN page), released in the last (with the last batch of values), which comes before
//! the sync's Supabase writes. Those writes are covered by the sync's lease in Postgres
//! instead (migration 20261202030000): `begin_sync` records the run with a lease as long as
//! the lock's TTL and refuses to start while another sync's lease is live, a real restore's
//! `begin_restore` refuses too, and `finish_sync` ends the lease and refuses to write if a
//! newer sync or restore started. From its first request to its last write a sync therefore
//! holds the Redis lock, the lease, or both; each expires by itself after the TTL.

use std::future::Future;

use serde_json::json;

use super::{JobError, Services};
use crate::upstash::{self, UpstashError};

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

/// A sync's hold on the lock, whose take and release commands ride in the sync's own
/// pipelines. `held` is true while the lock may be ours (taken, or the answer to the request
/// that took or released it was lost); [`SyncLock::release`] then releases it by itself.
#[derive(Debug)]
pub(crate) struct SyncLock {
    owner: String,
    /// The lock's TTL in ms (also the lease's in Postgres).
    pub ttl_ms: u64,
    pub held: bool,
}

impl SyncLock {
    /// A lock not taken yet, for a new random owner.
    pub fn new(services: &Services) -> Self {
        Self {
            owner: owner(),
            ttl_ms: services.config.lock_ttl_ms,
            held: false,
        }
    }

    /// The command that takes it (answered nil when someone else holds it).
    pub fn take_command(&self) -> Vec<String> {
        upstash::lock_command(LOCK_KEY, &self.owner, self.ttl_ms)
    }

    /// The command that releases it if it is still ours.
    pub fn release_command(&self) -> Vec<String> {
        upstash::unlock_command(LOCK_KEY, &self.owner)
    }

    /// The error a sync refused because someone holds the lock (or the lease) answers.
    pub fn in_progress(&self) -> JobError {
        JobError::SyncInProgress {
            ttl_seconds: self.ttl_ms / 1000,
        }
    }

    /// Takes it again in a request of its own (the sync released it early, then found it needs
    /// it for a restore); false when someone else took it meanwhile.
    pub async fn retake(&mut self, services: &Services) -> Result<bool, UpstashError> {
        // A lost answer may have taken it: held until known.
        self.held = true;
        let taken = services
            .upstash
            .try_lock(LOCK_KEY, &self.owner, self.ttl_ms)
            .await?;
        self.held = taken;
        Ok(taken)
    }

    /// Releases it in a request of its own if it may still be ours; a failure is logged (the
    /// lock then expires after its TTL).
    pub async fn release(&mut self, services: &Services) {
        if !self.held {
            return;
        }
        self.held = false;
        if let Err(e) = services.upstash.unlock(LOCK_KEY, &self.owner).await {
            crate::logging::log(json!({ "event": "sync_unlock_failed", "error": e.to_string() }));
        }
    }
}

/// A random id so only the run that took the lock releases it.
pub(crate) fn owner() -> String {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes).expect("the platform has a random source");
    crate::crypto::to_hex(&bytes)
}
