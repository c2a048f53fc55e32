//! Tradovate's auth API, the one call the Worker makes: `GET {base}/auth/renewaccesstoken`
//! with `Authorization: Bearer <current token>`. It extends the same session and answers a
//! new `accessToken` with a new `expirationTime` (partner docs, "Renew Access Token").
//!
//! The Worker never calls `accesstokenrequest` and never holds a password. Every answer the
//! docs describe is a [`RenewAnswer`]: a renewal, HTTP 200 with `errorText`, a penalty ticket
//! (`p-ticket`, `p-time`, `p-captcha`, in a 200), 429, or 401. Errors never carry a token.

use std::fmt;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// Tradovate's two environments (shared with the API's answers).
pub use api_model::Environment;

/// A renewed token. `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct Renewed {
    /// The new access token. Secret.
    pub access_token: String,
    /// The new market-data token, when the answer has one. Secret.
    pub md_access_token: Option<String>,
    /// When the new token expires, as Tradovate said.
    pub expiration_time: DateTime<Utc>,
    /// `expirationTime` exactly as Tradovate wrote it (kept in values that held a string).
    pub expiration_text: String,
}

impl fmt::Debug for Renewed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Renewed")
            .field("access_token", &"<redacted>")
            .field(
                "md_access_token",
                &self.md_access_token.as_ref().map(|_| "<redacted>"),
            )
            .field("expiration_time", &self.expiration_time)
            .finish()
    }
}

/// What `renewaccesstoken` answered, in the forms the partner docs describe.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RenewAnswer {
    /// HTTP 200 with a new `accessToken` and `expirationTime`.
    Renewed(Renewed),
    /// HTTP 200 with `errorText`: the renewal failed.
    ErrorText(String),
    /// HTTP 200 with `p-ticket` and `p-time` (seconds), maybe `p-captcha`: the request was
    /// not handled and a time penalty is in force.
    Penalty { p_time_seconds: u64, captcha: bool },
    /// HTTP 429: the user-level limit is reached; the docs say to wait an hour.
    TooManyRequests,
    /// HTTP 401: Tradovate does not accept the token (expired, revoked, or its session closed).
    Unauthorized,
}

/// A renewal that got no usable answer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TradovateError {
    #[error("Tradovate is unreachable ({0}); check TRADOVATE_DEMO_URL / TRADOVATE_LIVE_URL")]
    Unreachable(String),
    #[error("Tradovate did not answer within {0} ms; raise UPSTREAM_TIMEOUT_MS if this persists")]
    Timeout(u64),
    #[error("Tradovate answered HTTP {0}")]
    Http(u16),
    #[error("unexpected answer from Tradovate: {0}")]
    Malformed(String),
}

/// Longest `errorText` kept (the rest is cut).
const MAX_ERROR_TEXT: usize = 200;

/// Reads one answer of `renewaccesstoken`: `status` and body `text`.
pub fn parse_answer(status: u16, text: &str) -> Result<RenewAnswer, TradovateError> {
    match status {
        401 => return Ok(RenewAnswer::Unauthorized),
        429 => return Ok(RenewAnswer::TooManyRequests),
        200 => {}
        other => return Err(TradovateError::Http(other)),
    }
    let body: Value = serde_json::from_str(text)
        .map_err(|_| TradovateError::Malformed("the body is not JSON".into()))?;
    let Value::Object(body) = body else {
        return Err(TradovateError::Malformed(
            "the body is not a JSON object".into(),
        ));
    };
    if body.contains_key("p-ticket") || body.contains_key("p-time") {
        let p_time_seconds = match body.get("p-time") {
            Some(Value::Number(n)) => n.as_f64().filter(|t| *t >= 0.0).map(|t| t.ceil() as u64),
            Some(Value::String(s)) => s.trim().parse().ok(),
            _ => None,
        }
        .ok_or_else(|| {
            TradovateError::Malformed("a penalty ticket without a usable p-time".into())
        })?;
        let captcha = matches!(body.get("p-captcha"), Some(Value::Bool(true)));
        return Ok(RenewAnswer::Penalty {
            p_time_seconds,
            captcha,
        });
    }
    if let Some(text) = body.get("errorText").and_then(Value::as_str) {
        if !text.trim().is_empty() {
            return Ok(RenewAnswer::ErrorText(
                text.chars().take(MAX_ERROR_TEXT).collect(),
            ));
        }
    }
    let token = |field: &str| {
        body.get(field)
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.bytes().all(|b| b.is_ascii_graphic()))
            .map(str::to_string)
    };
    let access_token = token("accessToken")
        .ok_or_else(|| TradovateError::Malformed("no accessToken in a 200 answer".into()))?;
    let expiration_text = body
        .get("expirationTime")
        .and_then(Value::as_str)
        .ok_or_else(|| TradovateError::Malformed("no expirationTime in a 200 answer".into()))?
        .to_string();
    let expiration_time = DateTime::parse_from_rfc3339(&expiration_text)
        .map_err(|_| TradovateError::Malformed("expirationTime is not an RFC 3339 time".into()))?
        .with_timezone(&Utc);
    Ok(RenewAnswer::Renewed(Renewed {
        access_token,
        md_access_token: token("mdAccessToken"),
        expiration_time,
        expiration_text,
    }))
}

/// A client for Tradovate's auth API; every request is bounded by `timeout_ms`.
#[derive(Debug, Clone)]
pub struct Tradovate {
    http: reqwest::Client,
    timeout_ms: u64,
}

impl Tradovate {
    /// A client whose requests give up after `timeout_ms`.
    pub fn new(http: reqwest::Client, timeout_ms: u64) -> Self {
        Self { http, timeout_ms }
    }

    /// `GET {base_url}/auth/renewaccesstoken` with `token` as the bearer.
    pub async fn renew(&self, base_url: &str, token: &str) -> Result<RenewAnswer, TradovateError> {
        let request = async {
            let response = self
                .http
                .get(format!("{base_url}/auth/renewaccesstoken"))
                .bearer_auth(token)
                .header("Accept", "application/json")
                .send()
                .await
                .map_err(|e| TradovateError::Unreachable(without_url(&e)))?;
            let status = response.status().as_u16();
            let text = response
                .text()
                .await
                .map_err(|e| TradovateError::Unreachable(without_url(&e)))?;
            parse_answer(status, &text)
        };
        crate::timeout::within(self.timeout_ms, request)
            .await
            .map_err(|_| TradovateError::Timeout(self.timeout_ms))?
    }
}

fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<tradovate>");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_documented_answer_is_read() {
        let renewed = parse_answer(
            200,
            r#"{"accessToken":"eyJ.a.b","mdAccessToken":"eyJ.m.d","expirationTime":"2026-12-01T10:20:00.000Z","userId":1}"#,
        )
        .unwrap();
        let RenewAnswer::Renewed(r) = renewed else {
            panic!("{renewed:?}")
        };
        assert_eq!(r.access_token, "eyJ.a.b");
        assert_eq!(r.md_access_token.as_deref(), Some("eyJ.m.d"));
        assert_eq!(r.expiration_text, "2026-12-01T10:20:00.000Z");
        assert!(!format!("{r:?}").contains("eyJ"), "Debug shows no token");

        assert_eq!(
            parse_answer(200, r#"{"errorText":"Access is denied"}"#).unwrap(),
            RenewAnswer::ErrorText("Access is denied".into())
        );
        assert_eq!(
            parse_answer(200, r#"{"p-ticket":"abc","p-time":60}"#).unwrap(),
            RenewAnswer::Penalty {
                p_time_seconds: 60,
                captcha: false
            }
        );
        assert_eq!(
            parse_answer(200, r#"{"p-ticket":"abc","p-time":15,"p-captcha":true}"#).unwrap(),
            RenewAnswer::Penalty {
                p_time_seconds: 15,
                captcha: true
            }
        );
        assert_eq!(parse_answer(429, "").unwrap(), RenewAnswer::TooManyRequests);
        assert_eq!(
            parse_answer(401, "Access is denied").unwrap(),
            RenewAnswer::Unauthorized
        );
    }

    #[test]
    fn unusable_answers_are_errors_without_the_body() {
        assert_eq!(
            parse_answer(503, "down").unwrap_err(),
            TradovateError::Http(503)
        );
        for body in [
            "not json",
            "[1]",
            r#"{"accessToken":"t"}"#,
            r#"{"accessToken":"t","expirationTime":"soon"}"#,
            r#"{"accessToken":"has space","expirationTime":"2026-12-01T10:20:00Z"}"#,
            r#"{"p-ticket":"x"}"#,
        ] {
            let err = parse_answer(200, body).unwrap_err();
            assert!(!err.to_string().contains("has space"), "{err}");
        }
        assert_eq!(Environment::parse(" LIVE "), Some(Environment::Live));
        assert_eq!(Environment::parse("prod"), None);
    }
}
