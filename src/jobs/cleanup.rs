//! Cleanup: every active token past its `expires_at` becomes inactive; the run is recorded;
//! runs older than `SYNC_RUNS_RETENTION_DAYS` and audit rows older than
//! `AUDIT_RETENTION_DAYS` are deleted.

use super::{JobError, Services, Trigger};

pub use api_model::CleanupReport;

/// Marks expired tokens inactive in one round trip, then prunes old runs. Running it twice
/// cleans once.
pub async fn cleanup(services: &Services, trigger: Trigger) -> Result<CleanupReport, JobError> {
    let cleaned = services.store.cleanup(trigger.as_str()).await?;
    let pruned_runs = services
        .store
        .prune_runs(services.config.sync_runs_retention_days)
        .await?;
    let audit_pruned = services
        .store
        .prune_reads(services.config.audit_retention_days)
        .await?;
    Ok(CleanupReport {
        success: true,
        cleaned: cleaned.cleaned,
        message: format!("Cleaned up {} expired tokens", cleaned.cleaned),
        run_id: cleaned.run_id,
        pruned_runs,
        audit_pruned,
    })
}
