//! Cleanup: every active token past its `expires_at` becomes inactive; the run is recorded.

use serde::Serialize;

use super::{JobError, Services, Trigger};

/// The cleanup answer, with the seed's fields.
#[derive(Debug, Clone, Serialize)]
pub struct CleanupReport {
    pub success: bool,
    pub cleaned: u64,
    pub message: String,
    pub run_id: String,
}

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
