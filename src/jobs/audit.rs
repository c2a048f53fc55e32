//! The audit listing: who read which token, when, from where. Never a token or a key.

use super::{JobError, Services};
use crate::store::AuditFilter;

/// Reads a listing returns unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 100;
/// The most reads one listing returns.
pub const MAX_LIMIT: usize = 1000;

pub use api_model::AuditReport;

/// The reads matching `filter`, newest first.
pub async fn audit(services: &Services, filter: &AuditFilter) -> Result<AuditReport, JobError> {
    let reads = services.store.reads(filter).await?;
    Ok(AuditReport {
        success: true,
        count: reads.len(),
        reads,
    })
}
