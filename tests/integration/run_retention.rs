//! The daily cleanup prunes `sync_runs` older than SYNC_RUNS_RETENTION_DAYS, keeping the
//! latest sync run and the latest successful one (status reads both). Test stack needed.

use token_manager::jobs::{cleanup::cleanup, Services, Trigger};

use crate::support::TestStack;

#[tokio::test]
async fn cleanup_prunes_runs_past_the_retention_and_keeps_what_status_reads() {
    let stack = TestStack::start().await;
    stack
        .pg
        .batch_execute(
            "insert into sync_runs (kind, trigger, status, started_at, finished_at, details) values
               ('sync', 'cron', 'succeeded', now() - interval '50 days', now() - interval '50 days', '{\"redis_accounts\": 3}'),
               ('sync', 'cron', 'failed', now() - interval '40 days', now() - interval '40 days', '{}'),
               ('sync', 'cron', 'succeeded', now() - interval '60 days', now() - interval '60 days', '{}'),
               ('cleanup', 'cron', 'succeeded', now() - interval '45 days', now() - interval '45 days', '{}'),
               ('reencrypt', 'http', 'succeeded', now() - interval '31 days', now() - interval '31 days', '{}'),
               ('cleanup', 'cron', 'succeeded', now() - interval '29 days', now() - interval '29 days', '{}'),
               ('sync', 'cron', 'running', now() - interval '90 days', null, '{}')",
        )
        .await
        .unwrap();
    let services = Services::new(stack.config_with(&[("SYNC_RUNS_RETENTION_DAYS", "30")]));
    let report = cleanup(&services, Trigger::Cron).await.unwrap();
    assert_eq!(
        report.pruned_runs, 3,
        "the 60-day sync, the 45-day cleanup, the 31-day reencrypt"
    );
    let left: Vec<String> = stack
        .query(
            "select kind || ':' || status || ':' || coalesce(extract(day from now() - started_at)::int, 0) as run
               from sync_runs order by started_at",
        )
        .await
        .into_iter()
        .map(|row| row["run"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        left,
        [
            "sync:running:90",   // never pruned while running
            "sync:succeeded:50", // the latest successful sync: status's Redis count
            "sync:failed:40",    // the latest sync: status's last_sync
            "cleanup:succeeded:29",
            "cleanup:succeeded:0", // this cleanup's own run
        ]
    );
    // Twice prunes once.
    assert_eq!(
        cleanup(&services, Trigger::Cron).await.unwrap().pruned_runs,
        0
    );
}
