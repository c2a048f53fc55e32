//! One huge value in Redis cannot exhaust the Worker's memory: the sync reads each value's
//! size (STRLEN) with a bounded read (GETRANGE) in the same pipeline, skips and reports the
//! oversized one, and never transfers it. A counting proxy in front of upstash-local measures
//! what crossed the wire. Needs the test stack (./scripts/test.sh).

use std::sync::atomic::Ordering;

use chrono::{Duration, Utc};
use token_manager::jobs::{sync::sync, Services, Trigger};

use crate::support::faults::counting_proxy;
use crate::support::{demo_tokens, var, TestStack};

#[tokio::test]
async fn a_huge_value_is_skipped_by_its_size_without_being_fetched() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    const HUGE: usize = 16 << 20;
    stack.set("token:APEX_7000001", "x".repeat(HUGE).as_str());

    let upstash = reqwest::Url::parse(&var("TM_TEST_UPSTASH_URL")).unwrap();
    let address = format!(
        "{}:{}",
        upstash.host_str().unwrap(),
        upstash.port().unwrap()
    );
    let (proxy, received) = counting_proxy(address).await;
    let services = Services::new(stack.config_with(&[("UPSTASH_REDIS_REST_URL", &proxy)]));
    let report = sync(&services, Trigger::Http).await.unwrap();

    assert_eq!(report.tokens_synced, 22, "every good token still lands");
    let skipped = report
        .skipped
        .iter()
        .find(|s| s.redis_key == "token:APEX_7000001")
        .expect("the huge value is skipped and reported");
    assert!(
        skipped.reason.contains(&HUGE.to_string()),
        "the reason gives its size: {}",
        skipped.reason
    );
    let bytes = received.load(Ordering::Relaxed);
    assert!(
        bytes < 1 << 20,
        "{bytes} bytes came from Upstash: the {HUGE}-byte value was fetched"
    );
}
