//! Redis forgets, through the built Worker under `wrangler dev`: a cron sync after `FLUSHDB`
//! keeps every token, says so in status, and writes the tokens back byte for byte; the restore
//! route, its dry run and its seed-interface form; scopes; and the Worker's log, its answers
//! and the tables carry no token.

use chrono::{Duration, Utc};
use serde_json::json;

use crate::support::{admin_key, demo_tokens, read_key, token_of, var, TestStack};

fn flushdb(stack: &mut TestStack) {
    redis::cmd("FLUSHDB").exec(&mut stack.redis).unwrap();
}

fn redis_get(stack: &mut TestStack, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(&mut stack.redis).unwrap()
}

#[tokio::test]
async fn a_cron_sync_after_flushdb_keeps_every_token_and_writes_them_back() {
    let mut stack = TestStack::start().await;
    let worker = stack.worker();
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let (admin, read) = (admin_key(), read_key());
    assert_eq!(
        worker.call("POST", "/v1/sync", Some(&admin)).await.body["inserted"],
        22
    );

    flushdb(&mut stack);
    worker.cron("*/30 * * * *").await;
    let runs = stack
        .query("select kind, trigger, status, outcome, deactivated, restored from sync_runs order by started_at")
        .await;
    assert_eq!(
        runs[1..],
        [
            json!({"kind": "sync", "trigger": "cron", "status": "succeeded", "outcome": "redis_loss_suspected", "deactivated": 0, "restored": null}),
            json!({"kind": "restore", "trigger": "cron", "status": "succeeded", "outcome": "restored", "deactivated": null, "restored": 22}),
        ]
    );
    for (key, value) in &tokens {
        assert_eq!(
            redis_get(&mut stack, key).as_deref(),
            Some(value.as_bytes()),
            "{key} not restored byte for byte"
        );
    }
    let status = worker.call("GET", "/v1/status", Some(&read)).await;
    assert_eq!(status.status, 200);
    assert_eq!(
        (
            &status.body["redis_loss_suspected"],
            &status.body["redis_loss_missing"],
            &status.body["last_restore"]["restored"]
        ),
        (&json!(true), &json!(22), &json!(22))
    );
    assert!(status.body["redis_loss_since"].is_string());
    let get = worker
        .call("GET", "/v1/tokens/APEX_136189", Some(&read))
        .await;
    assert_eq!(get.status, 200, "{}", get.body);

    // The next sync finds Redis healthy again: every token unchanged, the loss cleared.
    let again = worker
        .call("POST", "/token-manager?action=sync", Some(&admin))
        .await;
    assert_eq!(
        (
            &again.body["outcome"],
            &again.body["unchanged"],
            &again.body["updated"]
        ),
        (&json!("synced"), &json!(22), &json!(0))
    );
    let status = worker.call("GET", "/v1/status", Some(&read)).await;
    assert_eq!(status.body["redis_loss_suspected"], false);
}

#[tokio::test]
async fn the_restore_route_its_dry_run_and_the_seed_action_on_the_built_worker() {
    let mut stack = TestStack::start().await;
    let worker = stack.worker();
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let (admin, read) = (admin_key(), read_key());
    worker.call("POST", "/v1/sync", Some(&admin)).await;
    flushdb(&mut stack);

    for path in [
        "/v1/restore",
        "/token-manager?action=restore",
        "/?action=restore&dry_run=true",
    ] {
        let answer = worker.call("POST", path, Some(&read)).await;
        assert_eq!(
            (answer.status, answer.body["error"]["code"].as_str()),
            (403, Some("forbidden")),
            "{path}"
        );
        assert_eq!(worker.call("POST", path, None).await.status, 401, "{path}");
    }
    assert_eq!(
        worker.call("GET", "/v1/restore", Some(&admin)).await.status,
        405
    );

    let dry = worker
        .call("POST", "/v1/restore?dry_run=true", Some(&admin))
        .await;
    assert_eq!(dry.status, 200, "{}", dry.body);
    assert_eq!(
        (&dry.body["dry_run"], &dry.body["run_id"]),
        (&json!(true), &json!(null))
    );
    assert_eq!(dry.body["restored"].as_array().unwrap().len(), 22);
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("token:*")
        .query(&mut stack.redis)
        .unwrap();
    assert!(keys.is_empty(), "the dry run wrote {keys:?}");
    assert_eq!(
        stack
            .query("select 1 from sync_runs where kind = 'restore'")
            .await
            .len(),
        0,
        "the dry run recorded a run"
    );

    let restored = worker
        .call("POST", "/token-manager?action=restore", Some(&admin))
        .await;
    assert_eq!(restored.status, 200, "{}", restored.body);
    assert_eq!(restored.body["restored"].as_array().unwrap().len(), 22);
    assert_eq!(restored.cache_control.as_deref(), Some("no-store"));
    for (key, value) in &tokens {
        assert_eq!(
            redis_get(&mut stack, key).as_deref(),
            Some(value.as_bytes()),
            "{key}"
        );
    }
    let again = worker.call("POST", "/v1/restore", Some(&admin)).await;
    assert_eq!(again.body["already_present"].as_array().unwrap().len(), 22);
    assert_eq!(again.body["restored"].as_array().unwrap().len(), 0);

    // Give wrangler a moment to flush its log file, then look for any token anywhere.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(var("TM_TEST_WRANGLER_LOG")).expect("wrangler dev's log");
    assert!(
        log.contains("\"event\":\"restore\""),
        "the Worker logs its restores"
    );
    let dump = stack.dump().await;
    let answers = [dry.text, restored.text, again.text].concat();
    for (key, value) in &tokens {
        let token = token_of(value);
        for (what, text) in [
            ("the Worker log", &log),
            ("Postgres", &dump),
            ("an answer", &answers),
        ] {
            assert!(!text.contains(&token), "{key}'s token is in {what}");
            assert!(!text.contains(value.as_str()), "{key}'s value is in {what}");
        }
    }
}
