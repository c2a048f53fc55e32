//! Alerts through the built Worker under `wrangler dev`: the test stack's Worker sends its
//! alerts to `TM_TEST_ALERT_WEBHOOK_PORT` (scripts/lib.sh writes ALERT_WEBHOOK_URL and
//! ALERT_WEBHOOK_SECRET into its env), where a recording receiver listens. Upstash breaks
//! (Redis refuses SCAN), the sync cron fires twice: one signed `sync_failed`; Upstash works
//! again, the cron fires: one `sync_recovered`; `POST /v1/alerts/test` reaches it too. The
//! Worker's log names the webhook's host, never its path.

use std::time::Duration as StdDuration;

use chrono::{Duration, Utc};
use token_manager::alerts::signature;

use crate::support::faults::ScanDenied;
use crate::support::webhook::Receiver;
use crate::support::{admin_key, demo_tokens, var, TestStack};

const SYNC_CRON: &str = "*/30 * * * *";

#[tokio::test]
async fn a_broken_upstash_sends_one_alert_and_one_recovery_from_the_cron() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let port: u16 = var("TM_TEST_ALERT_WEBHOOK_PORT").parse().unwrap();
    let secret = var("TM_TEST_ALERT_WEBHOOK_SECRET");
    let log_path = var("TM_TEST_WRANGLER_LOG");
    let log_start = std::fs::metadata(&log_path).map_or(0, |m| m.len() as usize);
    let rx = Receiver::bind(port).await;
    let worker = stack.worker();
    assert_eq!(worker.sync().await.status, 200);

    {
        let _denied = ScanDenied::start();
        worker.cron(SYNC_CRON).await;
        worker.cron(SYNC_CRON).await;
        assert_eq!(rx.wait_for(1, 20).await.len(), 1, "one sync_failed");
        // The second failing run has finished too (its alert state is recorded): nothing more.
        tokio::time::sleep(StdDuration::from_secs(2)).await;
    }
    let failed = stack
        .count("select * from sync_runs where kind = 'sync' and status = 'failed' and trigger = 'cron'")
        .await;
    assert_eq!(failed, 2, "both cron runs failed");
    assert_eq!(rx.kinds(), ["sync_failed"]);
    let first = &rx.received()[0];
    assert_eq!(first.path, "/alerts/test-hook");
    let header = first.header(signature::HEADER).expect("signed");
    assert!(signature::verify(&secret, header, &first.body), "{header}");
    assert_eq!(first.json()["type"], "sync_failed");

    worker.cron(SYNC_CRON).await;
    let received = rx.wait_for(2, 20).await;
    assert_eq!(
        rx.kinds(),
        ["sync_failed", "sync_recovered"],
        "{received:?}"
    );
    let recovered = &received[1];
    assert!(signature::verify(
        &secret,
        recovered.header(signature::HEADER).unwrap(),
        &recovered.body
    ));

    let answer = worker
        .call("POST", "/v1/alerts/test", Some(&admin_key()))
        .await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(
        answer.body["deliveries"][0]["host"],
        format!("127.0.0.1:{port}")
    );
    assert_eq!(answer.body["deliveries"][0]["status"], 200);
    assert_eq!(rx.kinds(), ["sync_failed", "sync_recovered", "test"]);

    tokio::time::sleep(StdDuration::from_millis(500)).await;
    let log = std::fs::read_to_string(&log_path).expect("wrangler dev's log");
    let log = &log[log_start.min(log.len())..];
    assert!(log.contains("alert_delivery"), "deliveries are logged");
    assert!(
        !log.contains("test-hook"),
        "the webhook's path is never logged"
    );
    assert!(!log.contains(&secret), "the signing secret is never logged");
}
