//! Realistic token data: JWT-shaped tokens, the seed's 22 demo accounts, bulk accounts.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};

/// A JWT-shaped token with `exp` (signature is random-looking; nobody verifies it here).
pub fn jwt(subject: &str, exp: DateTime<Utc>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        json!({ "sub": subject, "exp": exp.timestamp(), "iat": exp.timestamp() - 4800 })
            .to_string(),
    );
    let signature = URL_SAFE_NO_PAD.encode(format!("sig-{subject}-{}", exp.timestamp()));
    format!("{header}.{payload}.{signature}")
}

/// The seed's 22 accounts: 3 main Apex accounts and 19 PA sub-accounts.
pub fn demo_accounts() -> Vec<String> {
    let mut accounts = Vec::new();
    for (main, subs) in [("136189", 7), ("266668", 6), ("272045", 6)] {
        accounts.push(format!("APEX_{main}"));
        for n in 1..=subs {
            accounts.push(format!("PAAPEX{main}{n:07}"));
        }
    }
    accounts
}

/// Redis keys and values for the demo accounts, expiring at `exp`: mostly raw JWTs, every
/// third one a Tradovate-style JSON blob with `expirationTime`.
pub fn demo_tokens(exp: DateTime<Utc>) -> Vec<(String, String)> {
    demo_accounts()
        .into_iter()
        .enumerate()
        .map(|(i, account)| {
            let token = jwt(&account, exp);
            let value = if i % 3 == 2 {
                json!({
                    "accessToken": token, "mdAccessToken": jwt(&format!("md-{account}"), exp),
                    "expirationTime": exp.to_rfc3339(), "userId": 100_000 + i, "name": account,
                })
                .to_string()
            } else {
                token
            };
            (format!("token:{account}"), value)
        })
        .collect()
}

/// The plaintext access token inside a demo value.
pub fn token_of(value: &str) -> String {
    match serde_json::from_str::<Value>(value) {
        Ok(v) => v["accessToken"].as_str().unwrap().to_string(),
        Err(_) => value.to_string(),
    }
}

/// `n` accounts `{prefix}_{i:04}` with distinct JWTs (per `version`) valid for an hour.
pub fn many_tokens(prefix: &str, n: usize, version: &str) -> Vec<(String, String)> {
    let exp = Utc::now() + Duration::hours(1);
    (0..n)
        .map(|i| {
            let account = format!("{prefix}_{i:04}");
            let token = jwt(&format!("{account}-{version}"), exp);
            (format!("token:{account}"), token)
        })
        .collect()
}

/// A JWT-shaped token with exactly `payload` (any text) as its claims segment.
pub fn jwt_with_payload(payload: &str) -> String {
    format!(
        "{}.{}.{}",
        URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        URL_SAFE_NO_PAD.encode(payload),
        URL_SAFE_NO_PAD.encode("signature")
    )
}

/// A login at Tradovate's auth endpoint (`{base_url}/auth/accesstokenrequest`, e.g. a
/// tradovate-local): its documented answer (accessToken, mdAccessToken, expirationTime, …).
pub async fn tradovate_login(base_url: &str, name: &str) -> Value {
    reqwest::Client::new()
        .post(format!("{base_url}/auth/accesstokenrequest"))
        .json(&json!({ "name": name, "password": "test", "appId": "t", "appVersion": "1", "cid": 0, "sec": "s" }))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}
