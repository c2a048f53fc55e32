//! The stand-in over HTTP, as the Worker and the dev scripts call it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use tradovate_local::{spawn, Config, Running};

async fn server(config: Config) -> Running {
    spawn(config).await.expect("the stand-in starts")
}

async fn login(server: &Running, name: &str) -> Value {
    let answer = reqwest::Client::new()
        .post(format!("{}/auth/accesstokenrequest", server.base_url()))
        .json(&json!({
            "name": name, "password": "demo-password", "appId": "token-manager-dev",
            "appVersion": "1.0", "cid": 0, "sec": "dev", "deviceId": "dev"
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    answer.json().await.unwrap()
}

/// (status, body text) of a renewal with `token`.
async fn renew(server: &Running, token: Option<&str>) -> (u16, String) {
    let mut request =
        reqwest::Client::new().get(format!("{}/auth/renewaccesstoken", server.base_url()));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let answer = request.send().await.unwrap();
    (answer.status().as_u16(), answer.text().await.unwrap())
}

async fn admin(server: &Running, method: &str, path: &str, body: Value) -> (u16, Value) {
    let answer = reqwest::Client::new()
        .request(
            method.parse().unwrap(),
            format!("http://{}{path}", server.addr),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(Value::Null))
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

fn exp_claim(token: &str) -> i64 {
    let payload = token.split('.').nth(1).unwrap();
    let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    claims["exp"].as_i64().unwrap()
}

#[tokio::test]
async fn login_answers_the_documented_fields_with_an_80_minute_jwt() {
    let server = server(Config::default()).await;
    let before = Utc::now();
    let body = login(&server, "apex136189").await;
    for field in [
        "accessToken",
        "mdAccessToken",
        "expirationTime",
        "passwordExpirationTime",
        "userStatus",
        "userId",
        "name",
        "hasLive",
    ] {
        assert!(body.get(field).is_some(), "{field} missing: {body}");
    }
    assert_eq!(body["userId"], 136189);
    assert_eq!(body["name"], "apex136189");
    let expires = time(&body["expirationTime"]);
    let lifetime = (expires - before).num_seconds();
    assert!((4795..=4805).contains(&lifetime), "{lifetime}");
    assert_eq!(
        exp_claim(body["accessToken"].as_str().unwrap()),
        expires.timestamp()
    );

    let bad = reqwest::Client::new()
        .post(format!("{}/auth/accessTokenRequest", server.base_url()))
        .json(&json!({ "name": "apex136189", "password": "" }))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 200, "the path is case-insensitive");
    let bad: Value = bad.json().await.unwrap();
    assert!(bad["errorText"].as_str().unwrap().contains("password"));
    assert!(bad.get("accessToken").is_none());
}

#[tokio::test]
async fn renewal_extends_the_same_session_and_refuses_unknown_expired_and_kicked_tokens() {
    let server = server(Config::default()).await;
    let first = login(&server, "apex266668").await;
    let token = first["accessToken"].as_str().unwrap();
    let (status, text) = renew(&server, Some(token)).await;
    assert_eq!(status, 200, "{text}");
    let renewed: Value = serde_json::from_str(&text).unwrap();
    let new_token = renewed["accessToken"].as_str().unwrap();
    assert_ne!(new_token, token);
    assert!(time(&renewed["expirationTime"]) >= time(&first["expirationTime"]));
    assert!(renewed["mdAccessToken"].is_string());
    let stats = server.state.stats();
    assert_eq!(stats.sessions.len(), 1, "a renewal opens no session");
    assert_eq!(stats.sessions[0].renewals, 1);

    assert_eq!(renew(&server, None).await.0, 401);
    assert_eq!(renew(&server, Some("eyJunknown.x.y")).await.0, 401);

    // Two more logins of the same user close the first session: its tokens stop working.
    login(&server, "apex266668").await;
    login(&server, "apex266668").await;
    assert_eq!(renew(&server, Some(new_token)).await.0, 401);

    // A token past its expirationTime cannot be renewed.
    let (status, _) = admin(
        &server,
        "POST",
        "/__admin/settings",
        json!({ "token_lifetime_seconds": 1 }),
    )
    .await;
    assert_eq!(status, 200);
    let short = login(&server, "someone").await;
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert_eq!(
        renew(&server, Some(short["accessToken"].as_str().unwrap()))
            .await
            .0,
        401
    );
    let log = server
        .state
        .log
        .as_ref()
        .unwrap()
        .lock()
        .unwrap()
        .join("\n");
    assert!(log.contains("outcome=expired_token") && log.contains("outcome=session_closed"));
    assert!(
        !log.contains(token) && !log.contains(new_token),
        "a token reached the log"
    );
}

#[tokio::test]
async fn past_the_hourly_limit_renewals_get_penalty_tickets() {
    let server = server(Config {
        renew_limit_per_hour: 3,
        ..Config::default()
    })
    .await;
    let token = login(&server, "limited").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    for _ in 0..3 {
        assert_eq!(renew(&server, Some(&token)).await.0, 200);
    }
    let (status, text) = renew(&server, Some(&token)).await;
    assert_eq!(status, 200, "penalty tickets come with HTTP 200");
    let body: Value = serde_json::from_str(&text).unwrap();
    assert!(body["p-ticket"].is_string(), "{body}");
    assert_eq!(body["p-time"], 15);
    assert!(body.get("accessToken").is_none());
    // During the penalty every request answers the time left, and is not handled.
    let body: Value = serde_json::from_str(&renew(&server, Some(&token)).await.1).unwrap();
    assert!(body["p-time"].as_u64().unwrap() <= 15);
    assert_eq!(server.state.stats().renewed, 3);
}

#[tokio::test]
async fn switches_make_renewal_answer_each_documented_failure() {
    let server = server(Config::default()).await;
    let token = login(&server, "switched").await["accessToken"]
        .as_str()
        .unwrap()
        .to_string();
    let set = |fault: Value| {
        let server = &server;
        async move {
            let (status, _) = admin(server, "POST", "/__admin/faults", fault).await;
            assert_eq!(status, 200);
        }
    };

    set(json!({ "mode": "error_text", "error_text": "Session expired", "times": 1 })).await;
    let (status, text) = renew(&server, Some(&token)).await;
    assert_eq!(
        (status, text.as_str()),
        (200, r#"{"errorText":"Session expired"}"#)
    );

    set(json!({ "mode": "p_ticket", "p_time": 42, "times": 1 })).await;
    let body: Value = serde_json::from_str(&renew(&server, Some(&token)).await.1).unwrap();
    assert_eq!(
        (body["p-time"].clone(), body.get("p-captcha")),
        (json!(42), None)
    );

    set(json!({ "mode": "captcha", "times": 1 })).await;
    let body: Value = serde_json::from_str(&renew(&server, Some(&token)).await.1).unwrap();
    assert_eq!(body["p-captcha"], true);
    assert!(body["p-ticket"].is_string());

    set(json!({ "mode": "too_many_requests", "times": 1 })).await;
    assert_eq!(renew(&server, Some(&token)).await, (429, String::new()));

    set(json!({ "mode": "unauthorized", "times": 1 })).await;
    assert_eq!(renew(&server, Some(&token)).await.0, 401);

    set(json!({ "mode": "slow", "delay_ms": 400, "times": 1 })).await;
    let started = std::time::Instant::now();
    assert_eq!(renew(&server, Some(&token)).await.0, 200);
    assert!(started.elapsed() >= std::time::Duration::from_millis(400));

    // Every fault above was for one request only: the next renewal works.
    assert_eq!(renew(&server, Some(&token)).await.0, 200);
    let (status, _) = admin(
        &server,
        "POST",
        "/__admin/faults",
        json!({ "mode": "bogus" }),
    )
    .await;
    assert_eq!(status, 400);

    admin(
        &server,
        "POST",
        "/__admin/settings",
        json!({ "token_lifetime_seconds": 4800, "omit_md_access_token": true }),
    )
    .await;
    let body: Value = serde_json::from_str(&renew(&server, Some(&token)).await.1).unwrap();
    assert!(body.get("mdAccessToken").is_none() && body["accessToken"].is_string());

    let (_, stats) = admin(&server, "POST", "/__admin/reset", Value::Null).await;
    assert_eq!(stats["sessions"], json!([]));
    assert_eq!(
        renew(&server, Some(&token)).await.0,
        401,
        "reset forgets tokens"
    );
}

#[tokio::test]
async fn wrong_methods_and_paths_are_refused() {
    let server = server(Config::default()).await;
    let client = reqwest::Client::new();
    let base = server.base_url();
    let post_renew = client
        .post(format!("{base}/auth/renewaccesstoken"))
        .send()
        .await
        .unwrap();
    assert_eq!(post_renew.status(), 405);
    let get_login = client
        .get(format!("{base}/auth/accesstokenrequest"))
        .send()
        .await
        .unwrap();
    assert_eq!(get_login.status(), 405);
    let other = client
        .get(format!("{base}/account/list"))
        .send()
        .await
        .unwrap();
    assert_eq!(other.status(), 404);
    let not_json = client
        .post(format!("{base}/auth/accesstokenrequest"))
        .body("name=x")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), 400);
}
