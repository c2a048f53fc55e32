//! The built Worker's routes: the seed's walkthrough, the `/v1` routes and errors, both cron
//! triggers, and a leak check over wrangler's log and the database.

use chrono::{Duration, Utc};

use crate::support::{admin_key, demo_tokens, jwt, read_key, token_of, var, Api, TestStack};

#[tokio::test]
async fn health_answers_without_a_key_and_without_secrets() {
    let answer = Api::worker().health().await;
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
    let worker = stack.worker();
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);

    let sync = worker.seed_action("sync", None).await;
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

    let status = worker.seed_action("status", None).await;
    assert_eq!(status.status, 200);
    assert_eq!(
        (
            status.body["supabase_tokens"].as_u64(),
            status.body["redis_tokens"].as_u64()
        ),
        (Some(22), Some(22))
    );
    assert_eq!(status.body["sync_needed"], false);

    let get = worker.seed_action("get", Some("APEX_136189")).await;
    assert_eq!(get.status, 200);
    let expected = tokens
        .iter()
        .find(|(k, _)| k == "token:APEX_136189")
        .map(|(_, v)| token_of(v))
        .unwrap();
    assert_eq!(get.body["token"].as_str(), Some(expected.as_str()));
    assert_eq!(get.cache_control.as_deref(), Some("no-store"));

    let cleanup = worker.seed_action("cleanup", None).await;
    assert_eq!(
        (cleanup.status, cleanup.body["cleaned"].as_u64()),
        (200, Some(0))
    );
}

#[tokio::test]
async fn v1_routes_and_errors_on_the_built_worker() {
    let mut stack = TestStack::start().await;
    let worker = stack.worker();
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:APEX_8000001",
        jwt("expired", Utc::now() - Duration::minutes(1)).as_str(),
    );
    let (admin, read) = (admin_key(), read_key());

    assert_eq!(worker.sync().await.body["inserted"], 23);
    let again = worker.sync().await;
    assert_eq!(
        (
            again.body["inserted"].as_u64(),
            again.body["updated"].as_u64()
        ),
        (Some(0), Some(0))
    );
    let status = worker.status().await;
    assert_eq!(status.body["active_tokens"], 23);
    let one = worker.token("PAAPEX2666680000001").await;
    assert_eq!(
        (one.status, one.body["main_account"].as_str()),
        (200, Some("APEX_266668"))
    );
    let list = worker.list("?main_account=APEX_272045").await;
    assert_eq!(list.body["count"], 7);
    assert!(!list.body.to_string().contains("eyJ"));

    for (method, path, key, status) in [
        ("GET", "/v1/status", None, 401),
        ("POST", "/v1/cleanup", Some(read.as_str()), 403),
        ("GET", "/v1/tokens/NOPE", Some(read.as_str()), 404),
        ("PUT", "/v1/sync", Some(admin.as_str()), 405),
        ("GET", "/v1/tokens/APEX_8000001", Some(read.as_str()), 410),
    ] {
        let answer = worker.call(method, path, key).await;
        assert_eq!(answer.status, status, "{method} {path}: {}", answer.body);
        assert!(answer.body["error"]["code"].is_string());
    }
    let cleanup = worker.cleanup().await;
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

    stack.worker().cron("*/30 * * * *").await;
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

    stack.worker().cron("0 2 * * *").await;
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
    let worker = stack.worker();
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    worker.sync().await;
    worker.status().await;
    worker.list("").await;
    for (key, _) in &tokens {
        worker.token(key.trim_start_matches("token:")).await;
    }
    worker.cleanup().await;
    stack.worker().cron("*/30 * * * *").await;
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
