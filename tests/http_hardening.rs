//! The HTTP layer against hostile input, with fake upstreams (a closed local port: every job
//! fails fast with 502 after authentication). No services needed.

use chrono::Utc;
use token_manager::config::Config;
use token_manager::http::{handle, Request, MAX_BODY_BYTES};

const ADMIN_KEY: &str = "admin-key-for-hardening-tests-0000000000";
const READ_KEY: &str = "read-key-for-hardening-tests-00000000000";

/// A configuration whose Upstash and Supabase are a closed local port.
fn config() -> Config {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    drop(listener);
    Config::from_lookup(|name| {
        Some(match name {
            "SUPABASE_URL" | "UPSTASH_REDIS_REST_URL" => closed.clone(),
            "SUPABASE_SERVICE_ROLE_KEY" | "UPSTASH_REDIS_REST_TOKEN" => "not-used".into(),
            "TOKEN_MANAGER_ADMIN_KEY" => ADMIN_KEY.into(),
            "TOKEN_MANAGER_READ_KEY" => READ_KEY.into(),
            "TOKEN_ENCRYPTION_KEY" => "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktMzJieXRlcyE=".into(),
            _ => return None,
        })
    })
    .expect("test configuration is valid")
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("https://worker.test{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap()
}

/// No route takes a body, so the request type has none; what a caller declares is checked:
/// over the limit is 413 before anything runs, a malformed length is 400.
#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_without_being_read() {
    let admin = format!("Bearer {ADMIN_KEY}");
    let over = (MAX_BODY_BYTES + 1).to_string();
    for (length, status, code) in [
        (over.as_str(), 413, Some("payload_too_large")),
        ("100000000000", 413, Some("payload_too_large")),
        ("18446744073709551616", 400, Some("invalid_body")),
        ("-1", 400, Some("invalid_body")),
        ("ten", 400, Some("invalid_body")),
        // At the limit: allowed (and not read); the job then fails on the closed port.
        ("65536", 502, Some("supabase_error")),
    ] {
        let response = handle(
            request(
                "POST",
                "/v1/cleanup",
                &[("authorization", &admin), ("content-length", length)],
            ),
            Ok(config()),
            Utc::now(),
        )
        .await;
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(
            (response.status().as_u16(), body["error"]["code"].as_str()),
            (status, code),
            "Content-Length: {length}"
        );
    }
}
