//! Alerts, natively against the real stack and a recording webhook receiver on loopback:
//! signed bodies, Slack and Discord shapes, one alert per change of state across repeated
//! failing runs and one recovery, a suspected loss and its restore, decryption failures, the
//! subrequest budget, and a dead or slow receiver costing no more than its timeout.

use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use token_manager::alerts::{self, signature};
use token_manager::http::handle_deferred;
use token_manager::jobs::sync::sync;
use token_manager::jobs::{Services, Trigger};

use crate::support::faults::{closed_port, ScanDenied, Silent};
use crate::support::webhook::{Answer, Received, Receiver, SECRET_PATH};
use crate::support::{admin_key, demo_tokens, many_tokens, tradovate_login, Api, TestStack};

const SECRET: &str = "whsec-test-0123456789abcdef";

fn flushdb(stack: &mut TestStack) {
    redis::cmd("FLUSHDB").exec(&mut stack.redis).unwrap();
}

/// Asserts the body is signed with [`SECRET`], its id is the header's, and it names no token.
fn assert_signed(received: &Received, tokens: &[(String, String)]) {
    let header = received
        .header(signature::HEADER)
        .expect("a signature header");
    assert!(
        signature::verify(SECRET, header, &received.body),
        "signature {header} does not verify"
    );
    let t: i64 = header
        .split(',')
        .find_map(|p| p.strip_prefix("t="))
        .unwrap()
        .parse()
        .unwrap();
    assert!((Utc::now().timestamp() - t).abs() < 120, "timestamp is now");
    let body = received.json();
    assert_eq!(
        received.header("x-token-manager-event-id"),
        body["id"].as_str()
    );
    assert_eq!(received.header("content-type"), Some("application/json"));
    assert_eq!(received.method, "POST");
    for (_, value) in tokens {
        assert!(
            !received.body.contains(value.as_str()),
            "a token in an alert"
        );
    }
}

/// The demo tokens synced, by an API whose alerts go, signed, to a fresh receiver.
async fn synced_with_receiver() -> (TestStack, Vec<(String, String)>, Receiver, Api) {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(2));
    stack.seed(&tokens);
    let rx = Receiver::start().await;
    let api = stack.api_with(&[
        ("ALERT_WEBHOOK_URL", &rx.url),
        ("ALERT_WEBHOOK_SECRET", SECRET),
    ]);
    assert_eq!(api.sync().await.status, 200);
    (stack, tokens, rx, api)
}

#[tokio::test]
async fn a_failing_sync_alerts_once_and_recovers_once() {
    let (stack, tokens, rx, api) = synced_with_receiver().await;
    assert!(
        rx.received().is_empty(),
        "a working sync is no change of state"
    );

    {
        let _denied = ScanDenied::start();
        for _ in 0..3 {
            assert_eq!(api.sync().await.status, 502);
        }
    }
    let received = rx.received();
    assert_eq!(
        rx.kinds(),
        ["sync_failed"],
        "one alert for three failing runs"
    );
    assert_signed(&received[0], &tokens);
    let body = received[0].json();
    assert_eq!(body["type"], "sync_failed");
    assert_eq!(body["source"], "token-manager");
    assert!(body["summary"].as_str().unwrap().starts_with("Sync failed"));
    assert!(body["details"]["error"].is_string(), "{body}");
    assert_eq!(
        received[0].path, SECRET_PATH,
        "sent to the URL as configured"
    );

    for _ in 0..2 {
        assert_eq!(api.sync().await.status, 200);
    }
    assert_eq!(rx.kinds(), ["sync_failed", "sync_recovered"]);
    let recovered = &rx.received()[1];
    assert_signed(recovered, &tokens);
    let body = recovered.json();
    let run = body["run_id"].as_str().unwrap();
    assert_eq!(
        stack
            .count(&format!(
                "select * from sync_runs where id = '{run}' and status = 'succeeded'"
            ))
            .await,
        1,
        "the recovery names its run"
    );
    assert_ne!(
        body["id"],
        received[0].json()["id"],
        "each event has its own id"
    );
    let state = stack
        .query("select condition, firing from alert_states where condition = 'sync'")
        .await;
    assert_eq!(state, [json!({"condition": "sync", "firing": false})]);
}

#[tokio::test]
async fn the_test_route_sends_json_slack_and_discord_shapes_and_reports_each_webhook() {
    let stack = TestStack::start().await;
    let (a, b) = (Receiver::start().await, Receiver::start().await);
    let urls = format!("{}, {}", a.url, b.url);
    let admin = admin_key();

    let api = stack.api_with(&[
        ("ALERT_WEBHOOK_URL", &urls),
        ("ALERT_WEBHOOK_SECRET", SECRET),
    ]);
    let answer = api.call("POST", "/v1/alerts/test", Some(&admin)).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(answer.body["success"], true);
    assert_eq!(answer.body["format"], "json");
    assert_eq!(answer.body["signed"], true);
    let deliveries = answer.body["deliveries"].as_array().unwrap();
    assert_eq!(deliveries.len(), 2);
    for d in deliveries {
        assert_eq!(
            (&d["ok"], &d["status"], &d["attempts"]),
            (&json!(true), &json!(200), &json!(1))
        );
        assert!(d["host"].as_str().unwrap().starts_with("127.0.0.1:"));
    }
    assert!(!answer.text.contains("path-secret") && !answer.text.contains("query-secret"));
    for rx in [&a, &b] {
        let received = rx.received();
        assert_eq!(rx.kinds(), ["test"]);
        assert_signed(&received[0], &[]);
        assert_eq!(received[0].json()["type"], "test");
    }
    assert_eq!(
        stack.count("select * from alert_states").await,
        0,
        "a test changes no state"
    );

    a.clear();
    let slack = stack.api_with(&[("ALERT_WEBHOOK_URL", &a.url), ("ALERT_FORMAT", "slack")]);
    let answer = slack.call("POST", "/v1/alerts/test", Some(&admin)).await;
    assert_eq!(
        (answer.status, &answer.body["signed"]),
        (200, &json!(false))
    );
    let body = a.received()[0].json();
    assert!(body["text"].as_str().unwrap().contains("test"), "{body}");
    assert_eq!(body["blocks"][0]["type"], "section");
    assert_eq!(body["blocks"][0]["text"]["type"], "mrkdwn");
    assert_eq!(body["blocks"][1]["type"], "context");
    assert!(
        a.received()[0].header(signature::HEADER).is_none(),
        "unsigned without a secret"
    );

    a.clear();
    let discord = stack.api_with(&[("ALERT_WEBHOOK_URL", &a.url), ("ALERT_FORMAT", "Discord")]);
    assert_eq!(
        discord
            .call("POST", "/v1/alerts/test", Some(&admin))
            .await
            .status,
        200
    );
    let body = a.received()[0].json();
    assert!(
        body["content"].as_str().unwrap().contains("**test**"),
        "{body}"
    );
    assert_eq!(body["embeds"][0]["title"], "test");
    assert!(body["embeds"][0]["color"].is_u64());
    assert_eq!(body["allowed_mentions"], json!({"parse": []}));

    // A 500 is retried once, a 404 is not; with one webhook working the answer is 200.
    a.clear();
    b.clear();
    a.answer(Answer::Status(500));
    b.answer(Answer::Status(404));
    let answer = api.call("POST", "/v1/alerts/test", Some(&admin)).await;
    assert_eq!(
        answer.status, 502,
        "no webhook accepted it: {}",
        answer.text
    );
    assert_eq!(answer.code(), Some("alert_delivery_failed"));
    assert!(
        answer.message().contains("HTTP 500") && answer.message().contains("HTTP 404"),
        "{}",
        answer.text
    );
    assert!(!answer.text.contains("path-secret"));
    assert_eq!((a.received().len(), b.received().len()), (2, 1));
    b.answer(Answer::Status(204));
    let answer = api.call("POST", "/v1/alerts/test", Some(&admin)).await;
    assert_eq!(
        (answer.status, &answer.body["success"]),
        (200, &json!(false))
    );
    assert_eq!(
        answer.body["message"],
        "Test alert delivered to 1 of 2 webhooks"
    );

    // Not configured: 503 naming the setting; the read key: 403.
    let off = stack.api();
    let answer = off.call("POST", "/v1/alerts/test", Some(&admin)).await;
    answer.assert_error(503, "alerts_not_configured", "no webhook");
    assert!(answer.message().contains("ALERT_WEBHOOK_URL"));
    let answer = api
        .call("POST", "/v1/alerts/test", Some(&crate::support::read_key()))
        .await;
    assert_eq!(answer.status, 403);
}

#[tokio::test]
async fn a_dead_or_slow_receiver_slows_nothing_beyond_its_timeout() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(2)));
    let slow = Receiver::start().await;
    slow.answer(Answer::Hang);
    let silent = Silent::start().await;
    let closed = format!("http://127.0.0.1:{}/hook", closed_port());
    let urls = format!("{},{}/x,{closed}", slow.url, silent.url);
    let timeout_ms = 1500;
    let config = stack.config_with(&[
        ("ALERT_WEBHOOK_URL", &urls),
        ("UPSTREAM_TIMEOUT_MS", &timeout_ms.to_string()),
    ]);
    let request = |path: &str| {
        http::Request::builder()
            .method("POST")
            .uri(format!("http://worker{path}"))
            .header("authorization", format!("Bearer {}", admin_key()))
            .body(())
            .unwrap()
    };
    let _denied = ScanDenied::start();
    let started = Instant::now();
    let (response, deferred) =
        handle_deferred(request("/v1/sync"), config.clone(), Utc::now()).await;
    let answered = started.elapsed();
    assert_eq!(response.status(), 502);
    assert!(!deferred.is_empty(), "the alert waits for after the answer");
    let started = Instant::now();
    deferred.run().await;
    let delivering = started.elapsed();
    println!("alerts: answer in {answered:?}; delivery to a hanging, a silent and a closed webhook took {delivering:?} (timeout {timeout_ms} ms)");
    assert!(
        delivering < StdDuration::from_millis(timeout_ms + 1000),
        "delivery took {delivering:?}, over the {timeout_ms} ms timeout (plus the state update)"
    );
    assert!(
        delivering >= StdDuration::from_millis(timeout_ms - 100),
        "it waited for the slow ones"
    );
    assert_eq!(
        slow.kinds(),
        ["sync_failed"],
        "the slow receiver got the alert once, no retry after a timeout"
    );

    // The test route answers within the timeout too, saying what each did.
    let started = Instant::now();
    let (response, _) = handle_deferred(request("/v1/alerts/test"), config, Utc::now()).await;
    let took = started.elapsed();
    assert_eq!(response.status(), 502);
    let body: Value = serde_json::from_str(response.body()).unwrap();
    let message = body["error"]["message"].as_str().unwrap();
    assert!(message.contains("no answer within 1500 ms"), "{message}");
    assert!(
        message.contains("could not reach the receiver"),
        "{message}"
    );
    assert!(
        !message.contains("/hook"),
        "no URL path in the answer: {message}"
    );
    assert!(
        took < StdDuration::from_millis(timeout_ms + 1000),
        "{took:?}"
    );
}

#[tokio::test]
async fn a_suspected_loss_and_its_restore_alert_once_each() {
    let (mut stack, tokens, rx, api) = synced_with_receiver().await;
    flushdb(&mut stack);
    let answer = api.sync().await;
    assert_eq!(answer.body["outcome"], "redis_loss_suspected");
    assert_eq!(rx.kinds(), ["redis_loss_suspected", "restore_done"]);
    let received = rx.received();
    let loss = received[0].json();
    assert_eq!(loss["details"]["reason"], "redis_empty");
    assert_eq!(loss["details"]["missing"], 22);
    assert_eq!(loss["run_id"], answer.body["run_id"]);
    let done = received[1].json();
    assert_eq!(done["details"]["restored"], 22);
    assert_eq!(done["accounts_total"], 22);
    assert_eq!(done["run_id"], answer.body["restore"]["run_id"]);
    for r in &received {
        assert_signed(r, &tokens);
    }
    assert_eq!(api.sync().await.status, 200);
    assert_eq!(rx.received().len(), 2, "nothing changed since");
}

#[tokio::test]
async fn undecryptable_tokens_alert_once() {
    use base64::Engine as _;
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(2)));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let rx = Receiver::start().await;
    let other_key = base64::engine::general_purpose::STANDARD.encode([9u8; 32]);
    let wrong = stack.api_with(&[
        ("ALERT_WEBHOOK_URL", &rx.url),
        ("TOKEN_ENCRYPTION_KEY", &other_key),
    ]);
    for _ in 0..2 {
        assert_eq!(wrong.reencrypt().await.body["success"], false);
    }
    assert_eq!(rx.kinds(), ["decryption_failed"]);
    let body = rx.received()[0].json();
    assert_eq!(body["accounts_total"], 22);
    assert!(body["accounts"]
        .as_array()
        .unwrap()
        .contains(&json!("APEX_136189")));
    assert!(body["summary"]
        .as_str()
        .unwrap()
        .contains("TOKEN_ENCRYPTION_PREVIOUS_KEYS"));
    // A read of one of them is the same condition: no second alert.
    assert_eq!(wrong.token("APEX_136189").await.status, 503);
    assert_eq!(rx.received().len(), 1);
    // Fixed: a clean re-encryption clears the condition (silently); a new failure alerts again.
    let right = stack.api_with(&[("ALERT_WEBHOOK_URL", &rx.url)]);
    assert_eq!(right.reencrypt().await.body["success"], true);
    assert_eq!(wrong.token("APEX_136189").await.status, 503);
    assert_eq!(rx.kinds(), ["decryption_failed", "decryption_failed"]);
}

#[tokio::test]
async fn alerts_fit_in_the_subrequest_budget_of_a_sync_that_restores() {
    let mut stack = TestStack::start().await;
    let tokens = many_tokens("ALERTBUDGET", 440, "v1");
    stack.seed(&tokens);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    flushdb(&mut stack);
    let rx = Receiver::start().await;
    let services = Services::new(
        stack.config_with(&[("SYNC_BATCH_SIZE", "10"), ("ALERT_WEBHOOK_URL", &rx.url)]),
    );
    let result = sync(&services, Trigger::Cron).await;
    let restore = result.as_ref().unwrap().restore.clone().unwrap();
    alerts::notify_sync(services.clone(), 0, alerts::after_sync(&result)).await;
    println!(
        "alerts: a sync + restore of 440 tokens (10 per pipeline) used {} of 50 subrequests, alerts included; {} restored, {} deferred",
        services.subrequests.count(),
        restore.restored.len(),
        restore.deferred
    );
    assert!(
        services.subrequests.count() <= 50,
        "{}",
        services.subrequests.count()
    );
    assert!(restore.deferred > 0, "the restore left room for the alerts");
    assert_eq!(
        rx.kinds(),
        ["redis_loss_suspected"],
        "the restore is not done yet"
    );
}

#[tokio::test]
async fn tokens_expiring_while_renewal_is_off_alert_once() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::minutes(10)));
    let rx = Receiver::start().await;
    let api = stack.api_with(&[("ALERT_WEBHOOK_URL", &rx.url)]);
    for _ in 0..2 {
        assert_eq!(api.sync().await.status, 200);
    }
    assert_eq!(rx.kinds(), ["token_expiring_unrenewed"]);
    let body = rx.received()[0].json();
    assert_eq!(body["accounts_total"], 22);
    assert!(
        body["summary"].as_str().unwrap().contains("renewal is off"),
        "{body}"
    );
}

#[tokio::test]
async fn a_renewal_refused_with_429_alerts_failed_paused_and_unrenewed_once() {
    use tradovate_local::{Fault, FaultMode};
    let mut stack = TestStack::start().await;
    let standin = tradovate_local::spawn(tradovate_local::Config::default())
        .await
        .expect("tradovate-local starts");
    let url = standin.base_url();
    let session = tradovate_login(&url, "apex136189").await;
    let token = session["accessToken"].as_str().unwrap().to_string();
    let value = json!({ "accessToken": token, "expirationTime": session["expirationTime"] });
    stack.set("token:APEX_136189", value.to_string().as_str());
    let rx = Receiver::start().await;
    let api = stack.api_with(&[
        ("ALERT_WEBHOOK_URL", &rx.url),
        ("RENEW_ENABLED", "true"),
        ("RENEW_BEFORE_MINUTES", "1440"),
        ("TRADOVATE_DEMO_URL", &url),
        ("TRADOVATE_LIVE_URL", &url),
    ]);
    assert_eq!(api.sync().await.status, 200);
    assert!(
        rx.received().is_empty(),
        "renewal is on: the sync leaves expiry to the renew pass"
    );
    standin.state.set_fault(Some(
        serde_json::from_value::<Fault>(json!({ "mode": FaultMode::TooManyRequests, "times": 1 }))
            .unwrap(),
    ));
    let admin = admin_key();
    for _ in 0..2 {
        assert_eq!(
            api.call("POST", "/v1/renew", Some(&admin)).await.status,
            200
        );
    }
    assert_eq!(
        rx.kinds(),
        [
            "renew_failed",
            "renewals_paused",
            "token_expiring_unrenewed"
        ],
        "one of each for two passes"
    );
    let received = rx.received();
    let failed = received[0].json();
    assert_eq!(failed["accounts"], json!(["APEX_136189"]));
    assert!(
        failed["details"]["reasons"][0]
            .as_str()
            .unwrap()
            .contains("429"),
        "{failed}"
    );
    let paused = received[1].json();
    assert!(paused["details"]["paused_until"].is_string(), "{paused}");
    assert_eq!(received[2].json()["accounts"], json!(["APEX_136189"]));
    for r in &received {
        assert!(!r.body.contains(&token), "a token in an alert");
    }
    // A dry run says nothing.
    assert_eq!(
        api.call("POST", "/v1/renew?dry_run=true", Some(&admin))
            .await
            .status,
        200
    );
    assert_eq!(rx.received().len(), 3);
}
