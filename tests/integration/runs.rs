//! GET /v1/runs natively against the real services: the recorded runs of every kind, newest
//! first, with counts, duration and a failed run's error in words; never a token or a key.

use chrono::{Duration, Utc};

use crate::api::call;
use crate::support::{demo_tokens, token_of, var, ScanDenied, TestStack};

#[tokio::test]
async fn runs_lists_syncs_failures_and_cleanups_newest_first() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let (admin, read) = (var("TM_TEST_ADMIN_KEY"), var("TM_TEST_READ_KEY"));

    let (status, body) = call(&stack, "GET", "/v1/runs", Some(&read)).await;
    assert_eq!(
        (status, body["runs"].as_array().map(Vec::len)),
        (200, Some(0))
    );

    assert_eq!(call(&stack, "POST", "/v1/sync", Some(&admin)).await.0, 200);
    {
        let _denied = ScanDenied::start();
        let (status, body) = call(&stack, "POST", "/v1/sync", Some(&admin)).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (502, Some("upstash_error"))
        );
    }
    assert_eq!(
        call(&stack, "POST", "/v1/cleanup", Some(&admin)).await.0,
        200
    );

    let (status, body) = call(&stack, "GET", "/v1/runs", Some(&read)).await;
    assert_eq!(status, 200, "{body}");
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

    let (_, two) = call(&stack, "GET", "/v1/runs?limit=2", Some(&read)).await;
    assert_eq!(two["runs"].as_array().unwrap().len(), 2);
    assert_eq!(two["runs"][0]["run_id"], runs[0]["run_id"]);
    assert_eq!(
        call(&stack, "GET", "/v1/runs?limit=0", Some(&read)).await.0,
        400
    );
    assert_eq!(call(&stack, "GET", "/v1/runs", None).await.0, 401);
    assert_eq!(call(&stack, "POST", "/v1/runs", Some(&admin)).await.0, 405);
}
