//! Runs: the most recent `sync_runs` rows (sync, cleanup, re-encryption, restore, renewal),
//! newest first, with their duration. Never a token, a key or the skipped keys' details.

use super::{JobError, Services};
use crate::domain::access::AccountScope;
use crate::store::RunSummary;
pub use api_model::RunsReport;

/// Runs a listing returns unless `limit` says otherwise.
pub const DEFAULT_LIMIT: usize = 20;
/// Most runs one listing returns.
pub const MAX_LIMIT: usize = 200;

/// `row` with its duration: `finished_at - started_at` in milliseconds (never negative),
/// `None` while the run is running.
pub fn with_duration(mut row: RunSummary) -> RunSummary {
    row.duration_ms = row
        .finished_at
        .map(|finished| (finished - row.started_at).num_milliseconds().max(0));
    row
}

/// The `limit` (1..=[`MAX_LIMIT`]) most recent runs, newest first.
pub async fn runs(services: &Services, limit: usize) -> Result<RunsReport, JobError> {
    runs_in(services, limit, &AccountScope::All).await
}

/// Like [`runs`], for a caller that may see only `scope`: a read key limited to main accounts
/// sees when runs ran and how they ended, but not their counts (which cover every account).
pub async fn runs_in(
    services: &Services,
    limit: usize,
    scope: &AccountScope,
) -> Result<RunsReport, JobError> {
    let limit = limit.clamp(1, MAX_LIMIT);
    let mut rows = services.store.runs(limit).await?;
    if scope.main_accounts().is_some() {
        for row in &mut rows {
            for count in [
                &mut row.tokens_seen,
                &mut row.inserted,
                &mut row.updated,
                &mut row.unchanged,
                &mut row.deactivated,
                &mut row.skipped,
                &mut row.cleaned,
                &mut row.restored,
                &mut row.already_present,
            ] {
                *count = None;
            }
        }
    }
    Ok(RunsReport {
        success: true,
        limit,
        runs: rows.into_iter().map(with_duration).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone, Utc};

    fn row(finished_after_ms: Option<i64>) -> RunSummary {
        let started_at = Utc.with_ymd_and_hms(2026, 12, 1, 9, 0, 0).unwrap();
        RunSummary {
            run_id: "r".into(),
            kind: "sync".into(),
            trigger: "cron".into(),
            status: "succeeded".into(),
            started_at,
            finished_at: finished_after_ms.map(|ms| started_at + Duration::milliseconds(ms)),
            tokens_seen: Some(22),
            inserted: None,
            updated: None,
            unchanged: None,
            deactivated: None,
            skipped: None,
            cleaned: None,
            outcome: Some("synced".into()),
            restored: None,
            already_present: None,
            error: None,
            duration_ms: None,
        }
    }

    #[test]
    fn duration_is_finished_minus_started_and_none_while_running() {
        assert_eq!(with_duration(row(Some(1234))).duration_ms, Some(1234));
        assert_eq!(with_duration(row(None)).duration_ms, None);
        // A clock step backwards never shows a negative duration.
        assert_eq!(with_duration(row(Some(-5))).duration_ms, Some(0));
        let json = serde_json::to_value(with_duration(row(Some(7)))).unwrap();
        assert_eq!(
            (json["run_id"].as_str(), json["duration_ms"].as_i64()),
            (Some("r"), Some(7))
        );
    }
}
