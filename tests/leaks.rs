//! No error path carries a token. Each upstream fault and wrong-shape answer is driven with a
//! known secret token in it (a fake Upstash or PostgREST in front of the real stack), then the
//! answer, `sync_runs`, status (`last_sync.error`) and the Worker's log lines are searched for
//! the secret, raw and base64. Needs the test stack (./scripts/test.sh).

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::Utc;
use serde_json::{json, Value};
use support::{var, TestStack};
use token_manager::config::Config;
use token_manager::http::{handle, Request};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// The token every fault carries.
const SECRET: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWxlYWstY2FuYXJ5.TOP-SECRET-CANARY";

/// What a fake upstream answers: status and body for a request path and its JSON body.
type Answer = Arc<dyn Fn(&str, &Value) -> (u16, String) + Send + Sync>;

/// A minimal HTTP/1.1 server answering every request with `answer` (one request per
/// connection); returns its base URL.
async fn fake(answer: Answer) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut data = Vec::new();
                let mut buf = [0u8; 8192];
                let (head_end, length) = loop {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    data.extend_from_slice(&buf[..n]);
                    let text = String::from_utf8_lossy(&data);
                    if let Some(end) = text.find("\r\n\r\n") {
                        let length = text[..end]
                            .lines()
                            .find_map(|l| {
                                let (name, value) = l.split_once(':')?;
                                name.eq_ignore_ascii_case("content-length")
                                    .then(|| value.trim().parse::<usize>().ok())?
                            })
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while data.len() < head_end + length {
                    let n = stream.read(&mut buf).await.unwrap_or(0);
                    if n == 0 {
                        break;
                    }
                    data.extend_from_slice(&buf[..n]);
                }
                let head = String::from_utf8_lossy(&data[..head_end]).to_string();
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let body: Value = serde_json::from_slice(&data[head_end..]).unwrap_or(Value::Null);
                let (status, text) = answer(&path, &body);
                if status == 0 {
                    // Drop the connection after half an answer.
                    let partial = format!("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{text}");
                    let _ = stream.write_all(partial.as_bytes()).await;
                    return;
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}

fn b64(s: &str) -> String {
    STANDARD.encode(s)
}

/// A fake Upstash: the lock and unlock succeed, SCAN finds `token:LEAK_1`, and the pipeline
/// that reads its value answers `values` (STRLEN, GETRANGE, PTTL, or anything else).
fn upstash_answering(values: Value) -> Answer {
    Arc::new(move |path, body| {
        if path != "/pipeline" {
            return (200, json!({ "result": "OK" }).to_string());
        }
        let first = body[0][0].as_str().unwrap_or_default();
        if first == "SCAN" {
            let page = json!([{ "result": [b64("0"), [b64("token:LEAK_1")]] }]);
            return (200, page.to_string());
        }
        match &values {
            Value::String(raw) => (200, raw.clone()),
            other => (200, other.to_string()),
        }
    })
}

async fn call(config: &Config, method: &str, path: &str, key: &str) -> (u16, String) {
    let request = Request::builder()
        .method(method)
        .uri(format!("http://worker{path}"))
        .header("authorization", format!("Bearer {key}"))
        .body(())
        .unwrap();
    let response = handle(request, Ok(config.clone()), Utc::now()).await;
    (response.status().as_u16(), response.into_body())
}

/// Fails if `text` holds the secret or any recognisable part of it, raw or base64.
fn assert_clean(case: &str, what: &str, text: &str) {
    for needle in [
        SECRET.to_string(),
        "TOP-SECRET-CANARY".to_string(),
        "c2VjcmV0LWxlYWstY2FuYXJ5".to_string(),
        b64(SECRET),
        b64(&format!("{{\"accessToken\":\"{SECRET}\"}}")),
    ] {
        assert!(
            !text.contains(&needle),
            "{case}: the {what} carries the secret: {text}"
        );
    }
}

#[tokio::test]
async fn no_upstream_fault_puts_a_token_in_an_answer_a_run_status_or_the_log() {
    token_manager::logging::capture::start();
    let stack = TestStack::start().await;
    let admin = var("TM_TEST_ADMIN_KEY");
    let value = b64(SECRET);
    let json_value = b64(&format!("{{\"accessToken\":\"{SECRET}\"}}"));
    let len = SECRET.len();

    let upstash_faults: Vec<(&str, Value)> = vec![
        (
            "one result too many",
            json!([{ "result": len }, { "result": value }, { "result": -1 }, { "result": value }]),
        ),
        (
            "STRLEN answered by an array holding the value",
            json!([{ "result": [value, json_value] }, { "result": value }, { "result": -1 }]),
        ),
        (
            "GETRANGE answered by an object",
            json!([{ "result": len }, { "result": { "token": SECRET } }, { "result": -1 }]),
        ),
        (
            "PTTL answered by the value",
            json!([{ "result": len }, { "result": value }, { "result": value }]),
        ),
        (
            "a value that is not base64",
            json!([{ "result": len }, { "result": format!("{SECRET}!") }, { "result": -1 }]),
        ),
        (
            "an answer that is an object",
            json!({ "result": [value], "token": SECRET }),
        ),
        (
            "an error naming the value",
            json!([{ "result": len }, { "error": "ERR unexpected" }, { "result": -1 }]),
        ),
        (
            "one result too few",
            json!([{ "result": len }, { "result": value }]),
        ),
        (
            "a body that is not JSON",
            Value::String(format!("<html>{}", "x".repeat(10))),
        ),
    ];
    let mut cases = Vec::new();
    for (case, answer) in upstash_faults {
        let url = fake(upstash_answering(answer)).await;
        cases.push((
            case.to_string(),
            stack.config_with(&[("UPSTASH_REDIS_REST_URL", &url)]),
        ));
    }
    // Upstash that drops the connection half-way through the value.
    let dropping: Answer = Arc::new(move |path, body| {
        if path != "/pipeline" {
            return (200, json!({ "result": "OK" }).to_string());
        }
        if body[0][0] == "SCAN" {
            return (
                200,
                json!([{ "result": [b64("0"), [b64("token:LEAK_1")]] }]).to_string(),
            );
        }
        (
            0,
            format!("[{{\"result\":{len}}},{{\"result\":\"{}", b64(SECRET)),
        )
    });
    let url = fake(dropping).await;
    cases.push((
        "the connection drops mid-value".into(),
        stack.config_with(&[("UPSTASH_REDIS_REST_URL", &url)]),
    ));
    // PostgREST answering the run's start with the secret where a field has the wrong type.
    let postgrest: Answer = Arc::new(|_, _| {
        (200, json!({ "run_id": SECRET, "tokens": { "A": { "fingerprint": "f", "is_active": SECRET } } }).to_string())
    });
    let url = fake(postgrest).await;
    cases.push((
        "PostgREST answers a wrong shape".into(),
        stack.config_with(&[("SUPABASE_REST_URL", &url)]),
    ));
    let postgrest_error: Answer = Arc::new(|_, _| {
        (
            500,
            json!({ "code": "XX000", "message": "boom", "details": "Failing row contains (…)" })
                .to_string(),
        )
    });
    let url = fake(postgrest_error).await;
    cases.push((
        "PostgREST fails".into(),
        stack.config_with(&[("SUPABASE_REST_URL", &url)]),
    ));

    let real = stack.config_with(&[]);
    for (case, config) in &cases {
        let (status, answer) = call(config, "POST", "/v1/sync", &admin).await;
        assert_eq!(status, 502, "{case}: {answer}");
        assert_clean(case, "answer", &answer);
        let (_, status_answer) = call(&real, "GET", "/v1/status", &admin).await;
        assert_clean(case, "status answer", &status_answer);
    }
    let runs = stack.query("select * from sync_runs").await;
    assert!(
        runs.iter().filter(|r| r["status"] == "failed").count() >= cases.len() - 2,
        "the Upstash faults are recorded as failed runs: {runs:?}"
    );
    for run in &runs {
        assert_clean("sync_runs", "row", &run.to_string());
    }
    let log = token_manager::logging::capture::lines().join("\n");
    assert!(log.contains("\"status\":502"), "the requests were logged");
    assert_clean("log", "log", &log);
}
