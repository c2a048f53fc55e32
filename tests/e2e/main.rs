//! End-to-end tests: the built wasm under `wrangler dev` (workerd), started by
//! ./scripts/test.sh, against the same real local stack. Cron triggers go through
//! `/__scheduled?cron=…` (wrangler dev runs with --test-scheduled).

#[path = "../support/mod.rs"]
mod support;

mod audit;
mod dashboard;
mod restore;

use chrono::{Duration, Utc};
use support::{call_worker as call, demo_tokens, jwt, token_of, var, TestStack};

mod renew;

async fn cron(expression: &str) {
    let url = format!(
        "{}/__scheduled?cron={}",
        var("TM_TEST_WORKER_URL"),
        expression.replace(' ', "+")
    );
    let response = reqwest::get(url).await.unwrap();
    assert!(
        response.status().is_success(),
        "scheduled trigger: {}",
        response.status()
    );
}

#[tokio::test]
async fn health_answers_without_a_key_and_without_secrets() {
    let answer = call("GET", "/health", None).await;
    assert_eq!(
        (answer.status, answer.body["status"].as_str()),
        (200, Some("ok"))
    );
    let text = answer.body.to_string();
    for secret in [
        "TM_TEST_ADMIN_KEY",
        "TM_TEST_READ_KEY",
        "TM_TEST_ENCRYPTION_KEY",
        "TM_TEST_UPSTASH_TOKEN",
    ] {
        assert!(!text.contains(&var(secret)));
    }
}

#[tokio::test]
async fn the_seed_walkthrough_on_the_built_worker() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let (admin, read) = (var("TM_TEST_ADMIN_KEY"), var("TM_TEST_READ_KEY"));

    let sync = call("GET", "/token-manager?action=sync", Some(&admin)).await;
    assert_eq!(sync.status, 200, "{}", sync.body);
    assert_eq!(
        sync.body["message"],
        "Synced 22 tokens from Redis to Supabase"
    );
    assert_eq!(
        (
            sync.body["tokens_synced"].as_u64(),
            sync.body["key_mappings"].as_u64()
        ),
        (Some(22), Some(22))
    );
    assert_eq!(&sync.body["accounts"][0], "APEX_136189");

    let status = call("GET", "/token-manager?action=status", Some(&read)).await;
    assert_eq!(status.status, 200);
    assert_eq!(
        (
            status.body["supabase_tokens"].as_u64(),
            status.body["redis_tokens"].as_u64()
        ),
        (Some(22), Some(22))
    );
    assert_eq!(status.body["sync_needed"], false);

    let get = call(
        "GET",
        "/token-manager?action=get&account=APEX_136189",
        Some(&read),
    )
    .await;
    assert_eq!(get.status, 200);
    let expected = tokens
        .iter()
        .find(|(k, _)| k == "token:APEX_136189")
        .map(|(_, v)| token_of(v))
        .unwrap();
    assert_eq!(get.body["token"].as_str(), Some(expected.as_str()));
    assert_eq!(get.cache_control.as_deref(), Some("no-store"));

    let cleanup = call("GET", "/token-manager?action=cleanup", Some(&admin)).await;
    assert_eq!(
        (cleanup.status, cleanup.body["cleaned"].as_u64()),
        (200, Some(0))
    );
}

#[tokio::test]
async fn v1_routes_and_errors_on_the_built_worker() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:APEX_8000001",
        jwt("expired", Utc::now() - Duration::minutes(1)).as_str(),
    );
    let (admin, read) = (var("TM_TEST_ADMIN_KEY"), var("TM_TEST_READ_KEY"));

    assert_eq!(
        call("POST", "/v1/sync", Some(&admin)).await.body["inserted"],
        23
    );
    let again = call("POST", "/v1/sync", Some(&admin)).await;
    assert_eq!(
        (
            again.body["inserted"].as_u64(),
            again.body["updated"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let status = call("GET", "/v1/status", Some(&read)).await;
    assert_eq!(status.body["active_tokens"], 23);
    let one = call("GET", "/v1/tokens/PAAPEX2666680000001", Some(&read)).await;
    assert_eq!(
        (one.status, one.body["main_account"].as_str()),
        (200, Some("APEX_266668"))
    );
    let list = call("GET", "/v1/tokens?main_account=APEX_272045", Some(&read)).await;
    assert_eq!(list.body["count"], 7);
    assert!(!list.body.to_string().contains("eyJ"));

    for (method, path, key, status) in [
        ("GET", "/v1/status", None, 401),
        ("POST", "/v1/cleanup", Some(read.as_str()), 403),
        ("GET", "/v1/tokens/NOPE", Some(read.as_str()), 404),
        ("PUT", "/v1/sync", Some(admin.as_str()), 405),
        ("GET", "/v1/tokens/APEX_8000001", Some(read.as_str()), 410),
    ] {
        let answer = call(method, path, key).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert!(answer.body["error"]["code"].is_string());
    }
    let cleanup = call("POST", "/v1/cleanup", Some(&admin)).await;
    assert_eq!(cleanup.body["cleaned"], 1);
}

#[tokio::test]
async fn cron_triggers_run_sync_and_cleanup_recorded_as_cron() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:APEX_8100001",
        jwt("expired", Utc::now() - Duration::minutes(1)).as_str(),
    );

    cron("*/30 * * * *").await;
    let runs = stack
        .query("select kind, trigger, status, tokens_seen from sync_runs")
        .await;
    assert_eq!(
        runs,
        vec![
            serde_json::json!({"kind": "sync", "trigger": "cron", "status": "succeeded", "tokens_seen": 23})
        ]
    );
    assert_eq!(
        stack
            .query("select count(*) as n from tradovate_tokens where is_active")
            .await[0]["n"],
        23
    );

    cron("0 2 * * *").await;
    let cleanup = stack
        .query("select trigger, cleaned from sync_runs where kind = 'cleanup'")
        .await;
    assert_eq!(
        cleanup,
        vec![serde_json::json!({"trigger": "cron", "cleaned": 1})]
    );
    assert_eq!(stack.token_row("APEX_8100001").await["is_active"], false);
}

#[tokio::test]
async fn no_plaintext_token_in_the_worker_log_or_the_database() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let (admin, read) = (var("TM_TEST_ADMIN_KEY"), var("TM_TEST_READ_KEY"));
    call("POST", "/v1/sync", Some(&admin)).await;
    call("GET", "/v1/status", Some(&read)).await;
    call("GET", "/v1/tokens", Some(&read)).await;
    for (key, _) in &tokens {
        call(
            "GET",
            &format!("/v1/tokens/{}", key.trim_start_matches("token:")),
            Some(&read),
        )
        .await;
    }
    call("POST", "/v1/cleanup", Some(&admin)).await;
    cron("*/30 * * * *").await;
    // Give wrangler a moment to flush its log file.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;

    let log = std::fs::read_to_string(var("TM_TEST_WRANGLER_LOG")).expect("wrangler dev's log");
    assert!(
        log.contains("\"event\":\"request\""),
        "the Worker logs its requests"
    );
    let dump = stack.dump().await;
    for (key, value) in &tokens {
        let token = token_of(value);
        assert!(!log.contains(&token), "{key}'s token is in the Worker log");
        assert!(!dump.contains(&token), "{key}'s token is in Postgres");
    }
    for secret in [
        "TM_TEST_ADMIN_KEY",
        "TM_TEST_READ_KEY",
        "TM_TEST_ENCRYPTION_KEY",
        "TM_TEST_SERVICE_ROLE_KEY",
    ] {
        assert!(!log.contains(&var(secret)), "{secret} is in the Worker log");
    }
}
