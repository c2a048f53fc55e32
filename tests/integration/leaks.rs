//! No error path carries a token. Each upstream fault and wrong-shape answer is driven with a
//! known secret token in it (a fake Upstash or PostgREST in front of the real stack), then the
//! answer, `sync_runs`, status (`last_sync.error`) and the Worker's log lines are searched for
//! the secret, raw and base64 — and so are the alerts each failing sync sends to a webhook
//! receiver, whose URL's secret path never reaches the log. Needs the test stack
//! (./scripts/test.sh).

use std::sync::Arc;

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::support::faults::{fake_upstream as fake, Respond as Answer};
use crate::support::webhook::Receiver;
use crate::support::{admin_key, TestStack};

/// The token every fault carries.
const SECRET: &str = "eyJhbGciOiJIUzI1NiJ9.c2VjcmV0LWxlYWstY2FuYXJ5.TOP-SECRET-CANARY";

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
        if let Some(page) = scan_page(body) {
            return (200, page);
        }
        // The value pipeline: the fault answers its reads; the unlock riding after them is
        // answered as Redis would.
        match &values {
            Value::String(raw) => (200, raw.clone()),
            Value::Array(items) => {
                let mut items = items.clone();
                items.extend(riders(body).map(|_| json!({ "result": 1 })));
                (200, Value::Array(items).to_string())
            }
            other => (200, other.to_string()),
        }
    })
}

/// The sync's lock and unlock commands riding in a pipeline.
fn riders(body: &Value) -> impl Iterator<Item = &Value> {
    body.as_array()
        .into_iter()
        .flatten()
        .filter(|c| matches!(c[0].as_str(), Some("SET" | "EVAL")))
}

/// For a pipeline holding a SCAN page (and the lock riding before it): one page finding
/// `token:LEAK_1`, the lock taken.
fn scan_page(body: &Value) -> Option<String> {
    let commands = body.as_array()?;
    commands.iter().any(|c| c[0] == "SCAN").then(|| {
        let answers: Vec<Value> = commands
            .iter()
            .map(|c| match c[0].as_str() {
                Some("SCAN") => json!({ "result": [b64("0"), [b64("token:LEAK_1")]] }),
                _ => json!({ "result": "OK" }),
            })
            .collect();
        Value::Array(answers).to_string()
    })
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
    let admin = admin_key();
    let rx = Receiver::start().await;
    let alerting = |upstream: &'static str, url: &str| {
        stack.api_with(&[
            (upstream, url),
            ("ALERT_WEBHOOK_URL", &rx.url),
            ("ALERT_WEBHOOK_SECRET", "leak-test-signing-secret"),
        ])
    };
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
        cases.push((case.to_string(), alerting("UPSTASH_REDIS_REST_URL", &url)));
    }
    // Upstash that drops the connection half-way through the value.
    let dropping: Answer = Arc::new(move |path, body| {
        if path != "/pipeline" {
            return (200, json!({ "result": "OK" }).to_string());
        }
        if let Some(page) = scan_page(body) {
            return (200, page);
        }
        (
            0,
            format!("[{{\"result\":{len}}},{{\"result\":\"{}", b64(SECRET)),
        )
    });
    let url = fake(dropping).await;
    cases.push((
        "the connection drops mid-value".into(),
        alerting("UPSTASH_REDIS_REST_URL", &url),
    ));
    // PostgREST answering the run's start with the secret where a field has the wrong type.
    let postgrest: Answer = Arc::new(|_, _| {
        (200, json!({ "run_id": SECRET, "tokens": { "A": { "fingerprint": "f", "is_active": SECRET } } }).to_string())
    });
    let url = fake(postgrest).await;
    cases.push((
        "PostgREST answers a wrong shape".into(),
        alerting("SUPABASE_REST_URL", &url),
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
        alerting("SUPABASE_REST_URL", &url),
    ));

    let real = stack.api();
    for (case, api) in &cases {
        // Each case starts from a working sync, so each failure is a change of state.
        stack
            .pg
            .batch_execute("truncate alert_states")
            .await
            .unwrap();
        let answer = api.call("POST", "/v1/sync", Some(&admin)).await;
        assert_eq!(answer.status, 502, "{case}: {}", answer.text);
        assert_clean(case, "answer", &answer.text);
        let status_answer = real.call("GET", "/v1/status", Some(&admin)).await;
        assert_clean(case, "status answer", &status_answer.text);
    }
    let runs = stack.query("select * from sync_runs").await;
    assert!(
        runs.iter().filter(|r| r["status"] == "failed").count() >= cases.len() - 2,
        "the Upstash faults are recorded as failed runs: {runs:?}"
    );
    for run in &runs {
        assert_clean("sync_runs", "row", &run.to_string());
    }
    let alerts = rx.received();
    assert!(
        alerts.len() >= cases.len() - 3,
        "the failing syncs alerted: {} alerts for {} cases",
        alerts.len(),
        cases.len()
    );
    for alert in &alerts {
        assert_eq!(alert.kind(), "sync_failed");
        assert_clean("alert", "alert body", &alert.body);
        assert_clean("alert", "alert headers", &format!("{:?}", alert.headers));
    }
    let log = token_manager::logging::capture::lines().join("\n");
    assert!(log.contains("\"status\":502"), "the requests were logged");
    assert!(log.contains("alert_delivery"), "the alerts were logged");
    assert_clean("log", "log", &log);
    for part in ["path-secret", "query-secret", "leak-test-signing-secret"] {
        assert!(!log.contains(part), "the log carries the webhook's {part}");
    }
}
