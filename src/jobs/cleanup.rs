//! Cleanup: every active token past its `expires_at` becomes inactive; the run is recorded.

use super::{JobError, Services, Trigger};

pub use api_model::CleanupReport;

/// Marks expired tokens inactive in one round trip. Running it twice cleans once.
pub async fn cleanup(services: &Services, trigger: Trigger) -> Result<CleanupReport, JobError> {
    let cleaned = services.store.cleanup(trigger.as_str()).await?;
    Ok(CleanupReport {
        success: true,
        cleaned: cleaned.cleaned,
        message: format!("Cleaned up {} expired tokens", cleaned.cleaned),
        run_id: cleaned.run_id,
    })
}
