//! The HTTP API natively (the same code the Worker runs), against the real services:
//! statuses, JSON errors and scopes as DESIGN.md lists them.

use chrono::{Duration, Utc};
use serde_json::Value;
use token_manager::config::Config;
use token_manager::http::{handle, Request};

/// A request as a client sends it: `Content-Length` declares the body, which the API never reads.
fn request(method: &str, path: &str, key: Option<&str>, body: &[u8]) -> Request {
    let mut request = http::Request::builder()
        .method(method)
        // Parsed as a URL first, as workerd does (dot segments resolved, `%2E` included).
        .uri(
            reqwest::Url::parse(&format!("http://worker{path}"))
                .unwrap()
                .as_str(),
        );
    if let Some(key) = key {
        request = request.header("authorization", format!("Bearer {key}"));
    }
    if !body.is_empty() {
        request = request.header("content-length", body.len());
    }
    request.body(()).unwrap()
}

use crate::support::{demo_tokens, jwt, var, TestStack};

/// Calls the API natively with the test stack's configuration: status and JSON body.
pub(crate) async fn call(
    stack: &TestStack,
    method: &str,
    path: &str,
    key: Option<&str>,
) -> (u16, Value) {
    call_with(stack.config_with(&[]), method, path, key, b"").await
}

async fn call_with(
    config: Config,
    method: &str,
    path: &str,
    key: Option<&str>,
    body: &[u8],
) -> (u16, Value) {
    let response = handle(request(method, path, key, body), Ok(config), Utc::now()).await;
    (
        response.status().as_u16(),
        serde_json::from_str(response.body()).expect("every answer is JSON"),
    )
}

#[tokio::test]
async fn the_seed_walkthrough_answers_like_the_edge_function() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let (admin, read) = (var("TM_TEST_ADMIN_KEY"), var("TM_TEST_READ_KEY"));

    let (status, sync) = call(&stack, "GET", "/token-manager?action=sync", Some(&admin)).await;
    assert_eq!(status, 200, "{sync}");
    assert_eq!(sync["message"], "Synced 22 tokens from Redis to Supabase");
    assert_eq!(sync["tokens_synced"], 22);
    assert_eq!(sync["key_mappings"], 22);

    let (status, body) = call(&stack, "GET", "/token-manager?action=status", Some(&read)).await;
    assert_eq!(status, 200);
    assert_eq!(
        (
            body["supabase_tokens"].as_u64(),
            body["redis_tokens"].as_u64()
        ),
        (Some(22), Some(22))
    );
    assert_eq!(body["sync_needed"], false);
    assert!(body["last_updated"].is_string());

    let (status, body) = call(
        &stack,
        "GET",
        "/token-manager?action=get&account=APEX_136189",
        Some(&read),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["account"], "APEX_136189");
    assert!(body["token"].as_str().unwrap().starts_with("eyJ"));
    assert_eq!(body["expired"], false);

    let (status, body) = call(
        &stack,
        "POST",
        "/token-manager?action=cleanup",
        Some(&admin),
    )
    .await;
    assert_eq!(
        (status, body["success"].as_bool(), body["cleaned"].as_u64()),
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
    let (admin, read) = (var("TM_TEST_ADMIN_KEY"), var("TM_TEST_READ_KEY"));
    assert_eq!(call(&stack, "POST", "/v1/sync", Some(&admin)).await.0, 200);

    let (status, body) = call(
        &stack,
        "GET",
        "/v1/tokens?main_account=APEX_136189",
        Some(&read),
    )
    .await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(8)));
    assert!(
        !body.to_string().contains("eyJ"),
        "a listing never carries a token"
    );
    assert!(body["tokens"][0].get("access_token").is_none());

    let (_, body) = call(
        &stack,
        "GET",
        "/v1/tokens?expiring_within=10m&active=true",
        Some(&read),
    )
    .await;
    assert_eq!(body["count"], 1);
    assert_eq!(body["tokens"][0]["account_name"], "APEX_5000001");

    // Filter syntax in a value is data, not syntax.
    for hostile in [
        "a,b",
        "*",
        "APEX_136189,APEX_266668",
        "APEX_136189)",
        "\"APEX_136189\"",
    ] {
        let path = format!("/v1/tokens?main_account={}", urlencode(hostile));
        let (status, body) = call(&stack, "GET", &path, Some(&read)).await;
        let expected = u64::from(hostile == "a,b");
        assert_eq!(
            (status, body["count"].as_u64()),
            (200, Some(expected)),
            "{hostile}: {body}"
        );
    }
    let (status, body) = call(&stack, "GET", "/v1/tokens/a%2Cb", Some(&read)).await;
    assert_eq!((status, body["account"].as_str()), (200, Some("a,b")));
    let (status, body) = call(&stack, "GET", "/v1/tokens/%2A", Some(&read)).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
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
    let (admin, read) = (var("TM_TEST_ADMIN_KEY"), var("TM_TEST_READ_KEY"));
    call(&stack, "POST", "/v1/sync", Some(&admin)).await;

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
        ("GET", "/v1/sync", Some(&admin), 405, "method_not_allowed"),
        (
            "DELETE",
            "/v1/tokens/APEX_136189",
            Some(&admin),
            405,
            "method_not_allowed",
        ),
        ("GET", "/v2/anything", Some(&admin), 404, "route_not_found"),
        (
            "GET",
            "/v1/tokens?limit=0",
            Some(&read),
            400,
            "invalid_query",
        ),
    ];
    for (method, path, key, status, code) in cases {
        let (got, body) = call(&stack, method, path, *key).await;
        assert_eq!(
            (got, body["error"]["code"].as_str()),
            (*status, Some(*code)),
            "{method} {path}"
        );
        assert!(body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()));
    }

    // No route takes a body: one is never read (a malformed one changes nothing), and one
    // declared over the limit is refused.
    let config = stack.config_with(&[]);
    let (status, body) =
        call_with(config.clone(), "POST", "/v1/sync", Some(&admin), b"{oops").await;
    assert_eq!(
        (status, body["success"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    let (status, _) = call_with(
        config,
        "POST",
        "/v1/sync",
        Some(&admin),
        &vec![b'x'; 70_000],
    )
    .await;
    assert_eq!(status, 413);
}

#[tokio::test]
async fn missing_configuration_answers_503_naming_the_setting_and_health_still_answers() {
    let stack = TestStack::start().await;
    let mut settings = stack.settings();
    settings.remove("TOKEN_ENCRYPTION_KEY");
    let config = Config::from_lookup(|name| settings.get(name).cloned());
    let read = var("TM_TEST_READ_KEY");
    let loaded = || token_manager::config::Loaded::from_lookup(|name| settings.get(name).cloned());
    assert!(config.is_err());
    // The caller with a key learns which setting; a caller without one only that it is not
    // configured.
    let response = handle(
        request("GET", "/v1/status", Some(&read), b""),
        loaded(),
        Utc::now(),
    )
    .await;
    assert_eq!(response.status(), 503);
    assert!(
        response.body().contains("TOKEN_ENCRYPTION_KEY"),
        "{}",
        response.body()
    );
    for key in [None, Some("not-a-configured-key-0000000000000000")] {
        let response = handle(request("GET", "/v1/status", key, b""), loaded(), Utc::now()).await;
        assert_eq!(response.status(), 503);
        assert!(
            response.body().contains("not configured")
                && !response.body().contains("TOKEN_ENCRYPTION_KEY"),
            "{}",
            response.body()
        );
    }

    let health = handle(request("GET", "/health", None, b""), config, Utc::now()).await;
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn an_unreachable_upstream_answers_502_naming_it_and_changes_nothing() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let admin = var("TM_TEST_ADMIN_KEY");
    call(&stack, "POST", "/v1/sync", Some(&admin)).await;
    let before = stack.dump().await;
    stack.del("token:APEX_136189");

    let down = stack.config_with(&[("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:9")]);
    let (status, body) = call_with(down, "POST", "/v1/sync", Some(&admin), b"").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("upstash_error"))
    );
    let down = stack.config_with(&[("SUPABASE_REST_URL", "http://127.0.0.1:9")]);
    let (status, body) = call_with(down, "GET", "/v1/status", Some(&admin), b"").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (502, Some("supabase_error"))
    );
    assert_eq!(stack.dump().await, before, "no token changed");
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b == b'_' {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
