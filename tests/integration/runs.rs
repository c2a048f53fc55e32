//! GET /v1/runs natively against the real services: the recorded runs of every kind, newest
//! first, with counts, duration and a failed run's error in words; never a token or a key.

use chrono::{Duration, Utc};

use crate::support::faults::ScanDenied;
use crate::support::{admin_key, demo_tokens, token_of, var, TestStack};

#[tokio::test]
async fn runs_lists_syncs_failures_and_cleanups_newest_first() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let api = stack.api();

    let runs = api.runs("").await;
    assert_eq!(
        (runs.status, runs.body["runs"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    assert_eq!(api.sync().await.status, 200);
    {
        let _denied = ScanDenied::start();
        let failed = api.sync().await;
        assert_eq!((failed.status, failed.code()), (502, Some("upstash_error")));
    }
    assert_eq!(api.cleanup().await.status, 200);

    let answer = api.runs("").await;
    let body = &answer.body;
    assert_eq!(answer.status, 200, "{body}");
    assert_eq!(body["limit"], 20);
    let runs = body["runs"].as_array().unwrap();
    let shape: Vec<(&str, &str, &str)> = runs
        .iter()
        .map(|r| {
            (
                r["kind"].as_str().unwrap(),
                r["trigger"].as_str().unwrap(),
                r["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        shape,
        [
            ("cleanup", "http", "succeeded"),
            ("sync", "http", "failed"),
            ("sync", "http", "succeeded")
        ]
    );
    let (cleanup, failed, synced) = (&runs[0], &runs[1], &runs[2]);
    assert_eq!(
        (cleanup["cleaned"].as_i64(), cleanup["tokens_seen"].as_i64()),
        (Some(0), None)
    );
    assert_eq!(
        (
            synced["tokens_seen"].as_i64(),
            synced["inserted"].as_i64(),
            synced["skipped"].as_i64()
        ),
        (Some(22), Some(22), Some(0))
    );
    assert!(synced["error"].is_null());
    let error = failed["error"].as_str().unwrap();
    assert!(
        error.contains("Upstash") && error.contains("NOPERM"),
        "the error says what failed: {error}"
    );
    for run in runs {
        assert!(run["duration_ms"].as_i64().unwrap() >= 0, "{run}");
        assert!(
            run["run_id"].is_string() && run.get("details").is_none(),
            "{run}"
        );
    }
    let text = body.to_string();
    for (key, value) in &tokens {
        assert!(
            !text.contains(&token_of(value)),
            "{key}'s token is in /v1/runs"
        );
    }
    for secret in [
        "TM_TEST_ADMIN_KEY",
        "TM_TEST_READ_KEY",
        "TM_TEST_UPSTASH_TOKEN",
    ] {
        assert!(!text.contains(&var(secret)), "{secret} is in /v1/runs");
    }

    let two = api.runs("?limit=2").await.body;
    assert_eq!(two["runs"].as_array().unwrap().len(), 2);
    assert_eq!(two["runs"][0]["run_id"], runs[0]["run_id"]);
    assert_eq!(api.runs("?limit=0").await.status, 400);
    assert_eq!(api.call("GET", "/v1/runs", None).await.status, 401);
    assert_eq!(
        api.call("POST", "/v1/runs", Some(&admin_key()))
            .await
            .status,
        405
    );
}
