//! Account health (`GET /v1/accounts`) natively against the real services: the demo data,
//! and each state (fresh, expiring, expired, inactive, missing_in_redis, renew_failed)
//! produced by real syncs, a suspected Redis loss, a restore and a refused renewal; the latest
//! read from the audit trail; scoped keys see only their accounts; never a token.

use chrono::{Duration, Utc};
use serde_json::Value;
use token_manager::jobs::restore::{restore, RestoreOptions};
use token_manager::jobs::sync::sync;
use token_manager::jobs::{Services, Trigger};

use super::renew::refused_session;
use crate::support::openapi::Spec;
use crate::support::{demo_accounts, demo_tokens, jwt, read_key, token_of, Api, TestStack};

const BOT_KEY: &str = "bot-key-for-apex-100001-only-00000000000000";

/// `GET /v1/accounts` with `key`: its status and body, validated against openapi.json.
async fn health(api: &Api, key: &str) -> (u16, Value) {
    let (status, body) = api
        .call("GET", "/v1/accounts", Some(key))
        .await
        .into_parts();
    Spec::load()
        .validate_response("GET", "/v1/accounts", status, &body)
        .unwrap_or_else(|e| panic!("{e}"));
    (status, body)
}

/// The accounts of the answer as (account, state), in the answer's order.
fn states(body: &Value) -> Vec<(String, String)> {
    body["main"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["accounts"].as_array().unwrap().iter())
        .map(|a| {
            (
                a["account"].as_str().unwrap().to_string(),
                a["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

fn account<'a>(body: &'a Value, name: &str) -> &'a Value {
    body["main"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|m| m["accounts"].as_array().unwrap().iter())
        .find(|a| a["account"] == name)
        .unwrap_or_else(|| panic!("{name} not in {body}"))
}

#[tokio::test]
async fn the_demo_accounts_are_fresh_and_grouped_by_main_account() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let api = stack.api();
    let (status, body) = health(&api, &read_key()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["main_accounts"], 3);
    assert_eq!(body["accounts"], 22);
    assert_eq!(body["states"]["fresh"], 22);
    assert_eq!(body["states"]["expired"], 0);
    let mains: Vec<&str> = body["main"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["main_account"].as_str().unwrap())
        .collect();
    assert_eq!(mains, ["APEX_136189", "APEX_266668", "APEX_272045"]);
    let mut listed: Vec<String> = states(&body).into_iter().map(|(a, _)| a).collect();
    for group in body["main"].as_array().unwrap() {
        // The main account's own token first, then its sub-accounts.
        let accounts = group["accounts"].as_array().unwrap();
        assert_eq!(accounts[0]["account"], group["main_account"]);
        assert_eq!(accounts[0]["key_type"], "main");
        assert!(accounts[1..].iter().all(|a| a["key_type"] == "sub_account"));
        assert_eq!(group["state"], "fresh");
    }
    listed.sort();
    let mut expected = demo_accounts();
    expected.sort();
    assert_eq!(listed, expected);
    let one = account(&body, "PAAPEX1361890000001");
    assert_eq!(one["redis_key"], "token:PAAPEX1361890000001");
    assert!(one["last_seen_at"].is_string() && one["last_synced_at"].is_string());
    assert!(one["last_read"].is_null() && one["renewal"].is_null());
    let text = body.to_string();
    for (_, value) in &tokens {
        assert!(!text.contains(&token_of(value)), "a token in the answer");
    }
}

#[tokio::test]
async fn each_state_comes_from_real_runs_and_a_scoped_key_sees_only_its_accounts() {
    let mut stack = TestStack::start().await;
    let now = Utc::now();
    let hours = now + Duration::hours(2);
    let mut tokens = vec![
        ("token:APEX_100001".to_string(), jwt("m", hours)),
        ("token:PAAPEX1000010000001".into(), jwt("fresh", hours)),
        (
            "token:PAAPEX1000010000002".into(),
            jwt("soon", now + Duration::minutes(5)),
        ),
        (
            "token:PAAPEX1000010000003".into(),
            jwt("old", now - Duration::minutes(5)),
        ),
        ("token:PAAPEX1000010000004".into(), jwt("gone", hours)),
        ("token:PAAPEX1000010000005".into(), jwt("lost-1", hours)),
        ("token:PAAPEX1000010000006".into(), jwt("lost-2", hours)),
    ];
    tokens.push(("token:APEX_200002".into(), jwt("other", hours)));
    stack.seed(&tokens);
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();
    // A key a bot removed while Redis is healthy: inactive.
    stack.del("token:PAAPEX1000010000004");
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(report.deactivated, 1);
    // Keys a suspected loss took, with no restore: missing_in_redis.
    stack.del("token:PAAPEX1000010000005");
    stack.del("token:PAAPEX1000010000006");
    let lossy = Services::new(stack.config_with(&[
        ("REDIS_LOSS_THRESHOLD", "10"),
        ("REDIS_LOSS_MIN_MISSING", "1"),
        ("RESTORE_ON_LOSS", "false"),
    ]));
    let report = sync(&lossy, Trigger::Http).await.unwrap();
    let loss = report.redis_loss.expect("a suspected loss");
    assert_eq!(
        loss.accounts,
        ["PAAPEX1000010000005", "PAAPEX1000010000006"]
    );

    let read_keys = format!("bot:{BOT_KEY}@APEX_100001,{}", read_key());
    let api = stack.api_with(&[("TOKEN_MANAGER_READ_KEY", &read_keys)]);
    let (status, _) = api
        .call("GET", "/v1/tokens/PAAPEX1000010000001", Some(BOT_KEY))
        .await
        .into_parts();
    assert_eq!(status, 200);
    let (status, body) = health(&api, &read_key()).await;
    assert_eq!(status, 200, "{body}");
    let expected = [
        ("APEX_100001", "fresh"),
        ("PAAPEX1000010000001", "fresh"),
        ("PAAPEX1000010000002", "expiring"),
        ("PAAPEX1000010000003", "expired"),
        ("PAAPEX1000010000004", "inactive"),
        ("PAAPEX1000010000005", "missing_in_redis"),
        ("PAAPEX1000010000006", "missing_in_redis"),
        ("APEX_200002", "fresh"),
    ];
    let got = states(&body);
    let got: Vec<(&str, &str)> = got.iter().map(|(a, s)| (a.as_str(), s.as_str())).collect();
    assert_eq!(got, expected);
    assert_eq!(body["main"][0]["state"], "expired", "the worst state wins");
    assert_eq!(body["states"]["missing_in_redis"], 2);
    // The read is in the audit trail; the lost keys were last seen before the loss.
    let read = &account(&body, "PAAPEX1000010000001")["last_read"];
    assert_eq!(
        (read["outcome"].as_u64(), read["key_name"].as_str()),
        (Some(200), Some("bot"))
    );
    let seen = |a: &str| {
        account(&body, a)["last_seen_at"]
            .as_str()
            .unwrap()
            .to_string()
    };
    assert!(seen("PAAPEX1000010000005") < seen("PAAPEX1000010000001"));
    assert!(seen("PAAPEX1000010000004") < seen("PAAPEX1000010000005"));
    assert!(
        account(&body, "PAAPEX1000010000002")["expires_in_seconds"]
            .as_i64()
            .unwrap()
            <= 300
    );
    let text = body.to_string();
    for (_, value) in &tokens {
        assert!(!text.contains(value.as_str()), "a token in the answer");
    }

    // A key limited to APEX_100001 sees only it.
    let (status, scoped) = health(&api, BOT_KEY).await;
    assert_eq!(status, 200, "{scoped}");
    assert_eq!(scoped["main_accounts"], 1);
    assert_eq!(scoped["main"][0]["main_account"], "APEX_100001");
    assert!(!scoped.to_string().contains("APEX_200002"));

    // A restore writes the lost keys back: no longer missing.
    restore(&services, Trigger::Http, RestoreOptions::default())
        .await
        .unwrap();
    let (_, body) = health(&api, &read_key()).await;
    assert_eq!(
        account(&body, "PAAPEX1000010000005")["state"],
        "fresh",
        "{body}"
    );
    assert_eq!(body["states"]["missing_in_redis"], 0);
}

#[tokio::test]
async fn a_refused_renewal_shows_as_renew_failed() {
    let mut stack = TestStack::start().await;
    let (_standin, _, keys) = refused_session(&mut stack).await;
    let (status, body) = health(&stack.api(), &read_key()).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["states"]["renew_failed"], keys.len());
    let main = account(&body, "APEX_136189");
    assert_eq!(main["state"], "renew_failed");
    assert_eq!(main["renewal"]["state"], "renew_failed");
    assert!(main["renewal"]["error"].as_str().unwrap().contains("401"));
    assert!(main["renewal"]["attempted_at"].is_string());
}
