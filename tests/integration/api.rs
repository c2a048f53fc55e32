//! The HTTP API natively (the same code the Worker runs), against the real services:
//! statuses, JSON errors and scopes as the README's API section lists them.

use chrono::{Duration, Utc};
use token_manager::config::{Config, Loaded};

use crate::support::{admin, admin_key, demo_tokens, enc, jwt, read_key, Api, TestStack};

#[tokio::test]
async fn the_seed_walkthrough_answers_like_the_edge_function() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let api = stack.api();

    let sync = api.seed_action("sync", None).await;
    assert_eq!(sync.status, 200, "{}", sync.body);
    assert_eq!(
        sync.body["message"],
        "Synced 22 tokens from Redis to Supabase"
    );
    assert_eq!(sync.body["tokens_synced"], 22);
    assert_eq!(sync.body["key_mappings"], 22);

    let status = api.seed_action("status", None).await;
    assert_eq!(status.status, 200);
    assert_eq!(
        (
            status.body["supabase_tokens"].as_u64(),
            status.body["redis_tokens"].as_u64()
        ),
        (Some(22), Some(22))
    );
    assert_eq!(status.body["sync_needed"], false);
    assert!(status.body["last_updated"].is_string());

    let get = api.seed_action("get", Some("APEX_136189")).await;
    assert_eq!(get.status, 200);
    assert_eq!(get.body["account"], "APEX_136189");
    assert!(get.body["token"].as_str().unwrap().starts_with("eyJ"));
    assert_eq!(get.body["expired"], false);

    let cleanup = api
        .call("POST", "/token-manager?action=cleanup", Some(&admin_key()))
        .await;
    assert_eq!(
        (
            cleanup.status,
            cleanup.body["success"].as_bool(),
            cleanup.body["cleaned"].as_u64()
        ),
        (200, Some(true), Some(0))
    );
}

#[tokio::test]
async fn v1_routes_list_metadata_only_and_filter_literally() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:APEX_5000001",
        jwt("soon", Utc::now() + Duration::minutes(3)).as_str(),
    );
    stack.set(
        "token:a,b",
        jwt("comma", Utc::now() + Duration::hours(1)).as_str(),
    );
    let api = stack.api();
    assert_eq!(api.sync().await.status, 200);

    let list = api.list("?main_account=APEX_136189").await;
    assert_eq!((list.status, list.body["count"].as_u64()), (200, Some(8)));
    assert!(
        !list.text.contains("eyJ"),
        "a listing never carries a token"
    );
    assert!(list.body["tokens"][0].get("access_token").is_none());

    let list = api.list("?expiring_within=10m&active=true").await;
    assert_eq!(list.body["count"], 1);
    assert_eq!(list.body["tokens"][0]["account_name"], "APEX_5000001");

    // Filter syntax in a value is data, not syntax.
    for hostile in [
        "a,b",
        "*",
        "APEX_136189,APEX_266668",
        "APEX_136189)",
        "\"APEX_136189\"",
    ] {
        let list = api.list(&format!("?main_account={}", enc(hostile))).await;
        let expected = u64::from(hostile == "a,b");
        assert_eq!(
            (list.status, list.body["count"].as_u64()),
            (200, Some(expected)),
            "{hostile}: {}",
            list.body
        );
    }
    let token = api.token("a,b").await;
    assert_eq!(
        (token.status, token.body["account"].as_str()),
        (200, Some("a,b"))
    );
    let token = api.token("*").await;
    assert_eq!(
        (token.status, token.code()),
        (404, Some("account_not_found"))
    );
}

#[tokio::test]
async fn keys_scopes_methods_and_bad_input_get_their_documented_status() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:APEX_6000001",
        jwt("old", Utc::now() - Duration::minutes(1)).as_str(),
    );
    let (admin_key, read) = (admin_key(), read_key());
    let api = stack.api();
    api.sync().await;

    let cases: &[(&str, &str, Option<&str>, u16, &str)] = &[
        ("GET", "/v1/status", None, 401, "unauthorized"),
        (
            "GET",
            "/v1/status",
            Some("not-a-key-but-long-enough-to-look-like-one"),
            401,
            "unauthorized",
        ),
        ("POST", "/v1/sync", Some(&read), 403, "forbidden"),
        ("POST", "/v1/cleanup", Some(&read), 403, "forbidden"),
        ("POST", "/v1/reencrypt", Some(&read), 403, "forbidden"),
        (
            "GET",
            "/token-manager?action=sync",
            Some(&read),
            403,
            "forbidden",
        ),
        (
            "GET",
            "/token-manager?action=drop",
            Some(&read),
            400,
            "invalid_action",
        ),
        (
            "GET",
            "/token-manager?action=get",
            Some(&read),
            400,
            "missing_account",
        ),
        (
            "GET",
            "/token-manager?action=get&account=NOPE",
            Some(&read),
            404,
            "account_not_found",
        ),
        (
            "GET",
            "/v1/tokens/APEX_6000001",
            Some(&read),
            410,
            "token_expired",
        ),
        (
            "GET",
            "/v1/sync",
            Some(&admin_key),
            405,
            "method_not_allowed",
        ),
        (
            "DELETE",
            "/v1/tokens/APEX_136189",
            Some(&admin_key),
            405,
            "method_not_allowed",
        ),
        (
            "GET",
            "/v2/anything",
            Some(&admin_key),
            404,
            "route_not_found",
        ),
        (
            "GET",
            "/v1/tokens?limit=0",
            Some(&read),
            400,
            "invalid_query",
        ),
    ];
    for (method, path, key, status, code) in cases {
        api.call(method, path, *key)
            .await
            .assert_error(*status, code, &format!("{method} {path}"));
    }

    // No route takes a body: one is never read (a malformed one changes nothing), and one
    // declared over the limit is refused.
    let answer = api
        .request("POST", "/v1/sync", Some(&admin()), b"{oops")
        .await;
    assert_eq!(
        (answer.status, answer.body["success"].as_bool()),
        (200, Some(true)),
        "{}",
        answer.body
    );
    let answer = api
        .request("POST", "/v1/sync", Some(&admin()), &vec![b'x'; 70_000])
        .await;
    assert_eq!(answer.status, 413);
}

#[tokio::test]
async fn missing_configuration_answers_503_naming_the_setting_and_health_still_answers() {
    let stack = TestStack::start().await;
    let mut settings = stack.settings();
    settings.remove("TOKEN_ENCRYPTION_KEY");
    let config = Config::from_lookup(|name| settings.get(name).cloned());
    assert!(config.is_err());
    // The caller with a key learns which setting; a caller without one only that it is not
    // configured.
    let api = Api::native(Loaded::from_lookup(|name| settings.get(name).cloned()));
    let status = api.status().await;
    assert_eq!(status.status, 503);
    assert!(
        status.text.contains("TOKEN_ENCRYPTION_KEY"),
        "{}",
        status.text
    );
    for key in [None, Some("not-a-configured-key-0000000000000000")] {
        let status = api.call("GET", "/v1/status", key).await;
        assert_eq!(status.status, 503);
        assert!(
            status.text.contains("not configured") && !status.text.contains("TOKEN_ENCRYPTION_KEY"),
            "{}",
            status.text
        );
    }
    assert_eq!(Api::native(config).health().await.status, 200);
}

#[tokio::test]
async fn an_unreachable_upstream_answers_502_naming_it_and_changes_nothing() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.api().sync().await;
    let before = stack.dump().await;
    stack.del("token:APEX_136189");

    let down = stack.api_with(&[("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:9")]);
    let answer = down.sync().await;
    assert_eq!((answer.status, answer.code()), (502, Some("upstash_error")));
    let down = stack.api_with(&[("SUPABASE_REST_URL", "http://127.0.0.1:9")]);
    let answer = down.call("GET", "/v1/status", Some(&admin_key())).await;
    assert_eq!(
        (answer.status, answer.code()),
        (502, Some("supabase_error"))
    );
    assert_eq!(stack.dump().await, before, "no token changed");
}
