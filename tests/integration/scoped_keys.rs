//! Read keys limited to main accounts (`TOKEN_MANAGER_READ_KEY=name:key@MAIN|MAIN`): such a key
//! reads, lists and counts only its accounts; every other account answers 404 exactly like
//! one that does not exist (no existence oracle); the request log names the key, never the
//! key itself. Against the test stack (./scripts/test.sh).

use chrono::{Duration, Utc};
use token_manager::jobs::{cleanup::cleanup, sync::sync, Services, Trigger};

use crate::support::{demo_tokens, jwt, read_key, TestStack};

const BOT_KEY: &str = "bot-key-for-apex-136189-only-000000000000";

#[tokio::test]
async fn a_scoped_read_key_sees_only_its_main_accounts() {
    token_manager::logging::capture::start();
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    // Another main account's tokens in every state: expired, inactive (cleaned), active.
    stack.set(
        "token:PAAPEX2666680000009",
        jwt("old", Utc::now() - Duration::minutes(5)).as_str(),
    );
    let services = Services::new(stack.config_with(&[]));
    sync(&services, Trigger::Http).await.unwrap();
    stack.set(
        "token:PAAPEX2720450000009",
        jwt("gone", Utc::now() - Duration::minutes(5)).as_str(),
    );
    sync(&services, Trigger::Http).await.unwrap();
    cleanup(&services, Trigger::Http).await.unwrap();

    let read_keys = format!("bot:{BOT_KEY}@APEX_136189,{}", read_key());
    let api = stack.api_with(&[("TOKEN_MANAGER_READ_KEY", &read_keys)]);

    // Its own accounts read as usual.
    for account in ["APEX_136189", "PAAPEX1361890000007"] {
        let (status, body) = api
            .call("GET", &format!("/v1/tokens/{account}"), Some(BOT_KEY))
            .await
            .into_parts();
        assert_eq!((status, body["account"].as_str()), (200, Some(account)));
    }
    // Every other account, in every state, answers like an account that does not exist.
    let (_, unknown) = api
        .call("GET", "/v1/tokens/APEX_999999", Some(BOT_KEY))
        .await
        .into_parts();
    for account in [
        "APEX_266668",
        "PAAPEX2666680000009",
        "PAAPEX2720450000009",
        "PAAPEX2720450000001",
    ] {
        for path in [
            format!("/v1/tokens/{account}"),
            format!("/token-manager?action=get&account={account}"),
        ] {
            let (status, body) = api.call("GET", &path, Some(BOT_KEY)).await.into_parts();
            assert_eq!(status, 404, "{path}: {body}");
            assert_eq!(
                body["error"]["message"]
                    .as_str()
                    .unwrap()
                    .replace(account, "?"),
                unknown["error"]["message"]
                    .as_str()
                    .unwrap()
                    .replace("APEX_999999", "?"),
                "{path}"
            );
        }
        // The unscoped read key still reads them (expired and inactive: 410).
        let unscoped = api.token(account).await;
        assert_ne!(unscoped.status, 404, "{account} exists");
    }

    // Listing: only its 8 accounts, whatever the filter asks for.
    let (status, list) = api
        .call("GET", "/v1/tokens?limit=1000", Some(BOT_KEY))
        .await
        .into_parts();
    assert_eq!((status, list["count"].as_u64()), (200, Some(8)), "{list}");
    assert!(list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["main_account"] == "APEX_136189"));
    let (_, other) = api
        .call("GET", "/v1/tokens?main_account=APEX_266668", Some(BOT_KEY))
        .await
        .into_parts();
    assert_eq!(other["count"], 0);

    // Status: its figures only, and no global total.
    let (status, report) = api
        .call("GET", "/v1/status", Some(BOT_KEY))
        .await
        .into_parts();
    assert_eq!(status, 200, "{report}");
    assert_eq!(
        (
            report["supabase_tokens"].as_u64(),
            report["active_tokens"].as_u64(),
            report["redis_tokens"].as_u64(),
            report["sync_needed"].as_bool(),
        ),
        (Some(8), Some(8), Some(8), Some(false)),
        "{report}"
    );
    assert!(report["last_sync"]["tokens_synced"].is_null(), "{report}");
    assert!(report["recent_tokens"]
        .as_array()
        .unwrap()
        .iter()
        .all(|t| t["main_account"] == "APEX_136189"));
    let (_, everything) = api.status().await.into_parts();
    assert_eq!(everything["supabase_tokens"], 24, "{everything}");

    // Runs: when and how they ended, not their counts (which cover every account).
    let (status, runs) = api
        .call("GET", "/v1/runs", Some(BOT_KEY))
        .await
        .into_parts();
    assert_eq!(status, 200, "{runs}");
    let runs = runs["runs"].as_array().unwrap();
    assert!(!runs.is_empty());
    assert!(runs
        .iter()
        .all(|r| r["tokens_seen"].is_null() && r["cleaned"].is_null()));

    // The log names the key that called, never the key.
    let lines = token_manager::logging::capture::lines();
    assert!(
        lines
            .iter()
            .any(|l| l.contains("\"key\":\"bot\"") && l.contains("/v1/status")),
        "no request line names the key"
    );
    assert!(lines.iter().all(|l| !l.contains(BOT_KEY)));
}
