//! Renewal end to end: the renew cron trigger (`*/5 * * * *`) fired through `wrangler dev`
//! renews a session minted by the test stack's tradovate-local, shared by a main account and
//! its sub-accounts; Redis and Supabase hold the new token, status shows the run, and neither
//! token reaches wrangler dev's log.

use serde_json::{json, Value};

use crate::support::{tradovate_login, var, TestStack};

/// The stand-in's admin switches live beside its `/v1`.
fn admin_url(path: &str) -> String {
    format!(
        "{}{path}",
        var("TM_TEST_TRADOVATE_URL").trim_end_matches("/v1")
    )
}

async fn admin(path: &str, body: Value) -> Value {
    reqwest::Client::new()
        .post(admin_url(path))
        .json(&body)
        .send()
        .await
        .expect("tradovate-local answers")
        .json()
        .await
        .unwrap()
}

fn value_of(stack: &mut TestStack, key: &str) -> String {
    redis::cmd("GET").arg(key).query(&mut stack.redis).unwrap()
}

fn token_in(value: &str) -> String {
    token_manager::domain::token_value::parse_token_value(value.as_bytes())
        .unwrap()
        .access_token
}

#[tokio::test]
async fn the_renew_cron_renews_a_shared_session_through_wrangler_dev() {
    let mut stack = TestStack::start().await;
    let worker = stack.worker();
    admin("/__admin/reset", Value::Null).await;
    // A token 10 minutes from expiry: inside the default 15-minute window.
    admin(
        "/__admin/settings",
        json!({ "token_lifetime_seconds": 600 }),
    )
    .await;
    let session = tradovate_login(&var("TM_TEST_TRADOVATE_URL"), "apex136189").await;
    admin(
        "/__admin/settings",
        json!({ "token_lifetime_seconds": 4800 }),
    )
    .await;
    let old = session["accessToken"].as_str().unwrap().to_string();
    let json_value = json!({
        "accessToken": old, "mdAccessToken": session["mdAccessToken"],
        "expirationTime": session["expirationTime"], "userId": 136189, "name": "apex136189",
    })
    .to_string();
    let keys = [
        "token:APEX_136189",
        "token:PAAPEX1361890000001",
        "token:PAAPEX1361890000002",
        "token:PAAPEX1361890000003",
    ];
    for (i, key) in keys.iter().enumerate() {
        stack.set(
            key,
            if i % 2 == 0 {
                json_value.as_str()
            } else {
                old.as_str()
            },
        );
    }

    worker.cron("*/30 * * * *").await; // sync
    worker.cron("*/5 * * * *").await; // renew
    let stats: Value = reqwest::get(admin_url("/__admin/stats"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        stats["renew_requests"], 1,
        "one renewal for the shared session: {stats}"
    );
    assert_eq!(stats["sessions"][0]["renewals"], 1);

    let new = token_in(&value_of(&mut stack, keys[0]));
    assert_ne!(new, old);
    for (i, key) in keys.iter().enumerate() {
        let value = value_of(&mut stack, key);
        assert_eq!(token_in(&value), new, "{key}");
        assert_eq!(value.starts_with('{'), i % 2 == 0, "{key} kept its format");
    }
    let runs = stack
        .query("select trigger, status, tokens_seen, updated from sync_runs where kind = 'renew'")
        .await;
    assert_eq!(
        runs,
        vec![json!({ "trigger": "cron", "status": "succeeded", "tokens_seen": 4, "updated": 4 })]
    );

    let read = var("TM_TEST_READ_KEY");
    let got = worker
        .call("GET", "/v1/tokens/PAAPEX1361890000003", Some(&read))
        .await;
    assert_eq!(got.status, 200);
    assert_eq!(
        got.body["token"],
        new.as_str(),
        "Supabase holds the new token"
    );
    assert_eq!(got.body["environment"], "demo");
    assert_eq!(got.body["metadata"]["renewal_count"], 1);
    let status = worker.call("GET", "/v1/status", Some(&read)).await;
    assert_eq!(status.body["renewal"]["enabled"], true);
    assert_eq!(status.body["renewal"]["renewals_last_hour"], 1);
    assert_eq!(status.body["renewal"]["last_run"]["trigger"], "cron");
    assert_eq!(status.body["renewals_paused_until"], Value::Null);
    let listed = worker
        .call("GET", "/v1/tokens?main_account=APEX_136189", Some(&read))
        .await;
    assert!(listed.body["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["renew_state"] == "renewed" && t["environment"] == "demo"));

    // A sync then writes nothing; a dry run finds nothing left in the window.
    worker.cron("*/30 * * * *").await;
    let sync = stack
        .query("select inserted, updated, unchanged from sync_runs where kind = 'sync' order by started_at desc limit 1")
        .await;
    assert_eq!(
        sync,
        vec![json!({ "inserted": 0, "updated": 0, "unchanged": 4 })]
    );
    let dry = worker
        .call(
            "POST",
            "/v1/renew?dry_run=true",
            Some(&var("TM_TEST_ADMIN_KEY")),
        )
        .await;
    assert_eq!(
        (dry.status, dry.body["candidates"].clone()),
        (200, json!(0))
    );
    let refused = worker
        .call("POST", "/token-manager?action=renew", Some(&read))
        .await;
    assert_eq!(refused.status, 403);

    // Neither token, nor the market-data tokens, in wrangler dev's log or tradovate-local's.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let log = std::fs::read_to_string(var("TM_TEST_WRANGLER_LOG")).expect("wrangler dev's log");
    assert!(
        log.contains("\"job\":\"renew\""),
        "the renew cron logs its outcome"
    );
    let standin_log = std::fs::read_to_string(var("TM_TEST_TRADOVATE_LOG")).unwrap();
    let md = session["mdAccessToken"].as_str().unwrap();
    for secret in [old.as_str(), new.as_str(), md] {
        assert!(!log.contains(secret), "a token is in wrangler dev's log");
        assert!(
            !standin_log.contains(secret),
            "a token is in tradovate-local's log"
        );
    }
    assert!(
        !stack.dump().await.contains(&new),
        "a plaintext token is in Postgres"
    );
}
