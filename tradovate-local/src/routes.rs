//! HTTP: Tradovate's two auth endpoints, the admin switches (loopback peers only) and the
//! one-line-per-request log (never a token).

use std::io::Write as _;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, State};
use axum::http::{header, HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::Router;
use chrono::{Duration, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::Config;
use crate::faults::{Fault, FaultMode, Faults};
use crate::limits::{Penalty, RollingLimit};
use crate::sessions::{hex, random, SessionInfo, Sessions};

/// Settings a test may change at run time (`POST /__admin/settings`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    /// Lifetime of tokens minted or renewed from now on.
    pub token_lifetime_seconds: u64,
    /// Renewal answers leave out `mdAccessToken`.
    #[serde(default)]
    pub omit_md_access_token: bool,
}

/// Counters and sessions (`GET /__admin/stats`); never a token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Stats {
    /// `accesstokenrequest` calls.
    pub access_token_requests: u64,
    /// `renewaccesstoken` calls, whatever they answered.
    pub renew_requests: u64,
    /// Renewals that handed out a new token.
    pub renewed: u64,
    /// The fault in force.
    pub fault: Option<Fault>,
    /// The run-time settings.
    pub settings: Settings,
    /// Every session, oldest first.
    pub sessions: Vec<SessionInfo>,
}

struct Inner {
    sessions: Sessions,
    renew_limit: RollingLimit,
    access_limit: RollingLimit,
    faults: Faults,
    settings: Settings,
    access_token_requests: u64,
    renew_requests: u64,
    renewed: u64,
}

/// Shared state of the server.
pub struct AppState {
    config: Config,
    inner: Mutex<Inner>,
    /// Request log lines go to stderr, or are kept here when set (tests).
    pub log: Option<Arc<Mutex<Vec<String>>>>,
}

impl AppState {
    /// A fresh server state under `config`.
    pub fn new(config: Config) -> Self {
        let inner = Mutex::new(Self::fresh(&config));
        Self {
            config,
            inner,
            log: None,
        }
    }

    fn fresh(config: &Config) -> Inner {
        Inner {
            sessions: Sessions::default(),
            renew_limit: RollingLimit::new(config.renew_limit_per_hour, config.backoff_seconds),
            access_limit: RollingLimit::new(config.access_limit_per_hour, config.backoff_seconds),
            faults: Faults::default(),
            settings: Settings {
                token_lifetime_seconds: config.token_lifetime_seconds,
                omit_md_access_token: false,
            },
            access_token_requests: 0,
            renew_requests: 0,
            renewed: 0,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Sets (or with `None` clears) the fault renewals answer with.
    pub fn set_fault(&self, fault: Option<Fault>) {
        self.lock().faults.set(fault);
    }

    /// Replaces the run-time settings.
    pub fn set_settings(&self, settings: Settings) {
        self.lock().settings = settings;
    }

    /// Forgets every session, token, counter, limit and fault.
    pub fn reset(&self) {
        *self.lock() = Self::fresh(&self.config);
    }

    /// The counters and sessions.
    pub fn stats(&self) -> Stats {
        let inner = self.lock();
        Stats {
            access_token_requests: inner.access_token_requests,
            renew_requests: inner.renew_requests,
            renewed: inner.renewed,
            fault: inner.faults.current().cloned(),
            settings: inner.settings.clone(),
            sessions: inner.sessions.info(),
        }
    }

    fn write_log(&self, line: String) {
        match &self.log {
            Some(lines) => lines.lock().unwrap_or_else(|e| e.into_inner()).push(line),
            None => {
                let _ = std::io::stderr()
                    .lock()
                    .write_all(format!("{line}\n").as_bytes());
            }
        }
    }
}

/// The application: one dispatcher for every path (matched case-insensitively, as
/// Tradovate's API is), with the request log.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new().fallback(handle).with_state(state)
}

/// An answer plus the word the request log shows for it.
struct Answer {
    status: StatusCode,
    body: Option<Value>,
    text: Option<&'static str>,
    outcome: &'static str,
}

impl Answer {
    fn json(body: Value, outcome: &'static str) -> Self {
        Self {
            status: StatusCode::OK,
            body: Some(body),
            text: None,
            outcome,
        }
    }

    fn status(status: StatusCode, text: Option<&'static str>, outcome: &'static str) -> Self {
        Self {
            status,
            body: None,
            text,
            outcome,
        }
    }
}

async fn handle(
    State(state): State<Arc<AppState>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let started = Instant::now();
    let path = uri.path().to_ascii_lowercase();
    let path = path.trim_end_matches('/');
    let answer = match (path, &method) {
        ("/v1/auth/accesstokenrequest", &Method::POST) => {
            access_token_request(&state, peer.ip(), &body)
        }
        ("/v1/auth/renewaccesstoken", &Method::GET) => renew(&state, peer.ip(), &headers).await,
        ("/v1/auth/accesstokenrequest" | "/v1/auth/renewaccesstoken", _) => {
            Answer::status(StatusCode::METHOD_NOT_ALLOWED, None, "method_not_allowed")
        }
        (admin, _) if admin.starts_with("/__admin/") => {
            if peer.ip().is_loopback() {
                admin_request(&state, admin, &method, &body)
            } else {
                Answer::status(
                    StatusCode::FORBIDDEN,
                    Some("admin is for loopback peers only"),
                    "forbidden",
                )
            }
        }
        _ => Answer::status(StatusCode::NOT_FOUND, Some("Not Found"), "not_found"),
    };
    state.write_log(format!(
        "tradovate-local request method={method} path={path} status={} outcome={} duration_ms={}",
        answer.status.as_u16(),
        answer.outcome,
        started.elapsed().as_millis(),
    ));
    let mut response = match (answer.body, answer.text) {
        (Some(body), _) => (
            answer.status,
            [(header::CONTENT_TYPE, "application/json; charset=utf-8")],
            body.to_string(),
        )
            .into_response(),
        (None, Some(text)) => (answer.status, text).into_response(),
        (None, None) => (answer.status, Body::empty()).into_response(),
    };
    response.headers_mut().remove(header::SERVER);
    response
}

/// The documented credentials body (only `name` and `password` are checked here).
#[derive(Deserialize)]
struct Credentials {
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
}

/// `POST /v1/auth/accesstokenrequest`: any non-empty name and password log in (a new session
/// for that user). Failed logins count toward the hourly limit; past it, a penalty ticket.
fn access_token_request(state: &AppState, client: IpAddr, body: &[u8]) -> Answer {
    let now = Instant::now();
    let mut inner = state.lock();
    inner.access_token_requests += 1;
    if let Some(penalty) = inner.access_limit.penalty(client, now) {
        return penalty_answer(penalty, false, "p_ticket");
    }
    let Ok(credentials) = serde_json::from_slice::<Credentials>(body) else {
        return Answer::status(
            StatusCode::BAD_REQUEST,
            Some("the body must be a JSON object"),
            "bad_request",
        );
    };
    if credentials.name.is_empty() || credentials.password.is_empty() {
        if let Some(penalty) = inner.access_limit.count(client, now) {
            return penalty_answer(penalty, false, "p_ticket");
        }
        return Answer::json(
            json!({ "errorText": "Incorrect username or password. Please try again." }),
            "error_text",
        );
    }
    let lifetime = Duration::seconds(inner.settings.token_lifetime_seconds as i64);
    let max = state.config.max_sessions_per_user;
    let issued = inner
        .sessions
        .login(&credentials.name, lifetime, max, Utc::now());
    Answer::json(issued.body(false), "logged_in")
}

/// `GET /v1/auth/renewaccesstoken` with `Authorization: Bearer <token>`.
async fn renew(state: &AppState, client: IpAddr, headers: &HeaderMap) -> Answer {
    let fault = {
        let mut inner = state.lock();
        inner.renew_requests += 1;
        if let Some(penalty) = inner.renew_limit.count(client, Instant::now()) {
            return penalty_answer(penalty, false, "p_ticket_limit");
        }
        inner.faults.take()
    };
    if let Some(fault) = fault {
        match fault.mode {
            FaultMode::Slow => {
                tokio::time::sleep(std::time::Duration::from_millis(fault.delay_ms)).await
            }
            FaultMode::ErrorText => {
                return Answer::json(json!({ "errorText": fault.error_text }), "error_text")
            }
            FaultMode::PTicket => {
                return penalty_answer(
                    Penalty {
                        p_time: fault.p_time,
                    },
                    false,
                    "p_ticket",
                )
            }
            FaultMode::Captcha => {
                return penalty_answer(
                    Penalty {
                        p_time: fault.p_time,
                    },
                    true,
                    "p_captcha",
                )
            }
            FaultMode::TooManyRequests => {
                return Answer::status(StatusCode::TOO_MANY_REQUESTS, None, "too_many_requests")
            }
            FaultMode::Unauthorized => {
                return Answer::status(
                    StatusCode::UNAUTHORIZED,
                    Some("Access is denied"),
                    "unauthorized",
                )
            }
        }
    }
    let Some(token) = bearer(headers) else {
        return Answer::status(
            StatusCode::UNAUTHORIZED,
            Some("Access is denied"),
            "no_token",
        );
    };
    let mut inner = state.lock();
    let lifetime = Duration::seconds(inner.settings.token_lifetime_seconds as i64);
    match inner.sessions.renew(token, lifetime, Utc::now()) {
        Ok(issued) => {
            inner.renewed += 1;
            Answer::json(issued.body(inner.settings.omit_md_access_token), "renewed")
        }
        Err(rejected) => Answer::status(
            StatusCode::UNAUTHORIZED,
            Some("Access is denied"),
            rejected.as_str(),
        ),
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let token = value
        .strip_prefix("Bearer ")
        .or_else(|| value.strip_prefix("bearer "))?
        .trim();
    (!token.is_empty()).then_some(token)
}

/// The documented penalty answer: HTTP 200, `p-ticket`, `p-time` and, for captcha,
/// `p-captcha: true`. The request was not handled.
fn penalty_answer(penalty: Penalty, captcha: bool, outcome: &'static str) -> Answer {
    let mut body = json!({ "p-ticket": hex(&random::<24>()), "p-time": penalty.p_time });
    if captcha {
        body["p-captcha"] = json!(true);
    }
    Answer::json(body, outcome)
}

fn admin_request(state: &AppState, path: &str, method: &Method, body: &[u8]) -> Answer {
    let stats = |outcome| Answer::json(json!(state.stats()), outcome);
    match (path, method) {
        ("/__admin/stats", &Method::GET) => stats("stats"),
        ("/__admin/faults", &Method::POST) => match serde_json::from_slice::<Fault>(body) {
            Ok(fault) => {
                state.set_fault(Some(fault));
                stats("fault_set")
            }
            Err(_) => Answer::status(
                StatusCode::BAD_REQUEST,
                Some("expected {\"mode\": \"slow|error_text|p_ticket|captcha|too_many_requests|unauthorized\", \"times\"?, \"delay_ms\"?, \"p_time\"?, \"error_text\"?}"),
                "bad_request",
            ),
        },
        ("/__admin/faults", &Method::DELETE) => {
            state.set_fault(None);
            stats("fault_cleared")
        }
        ("/__admin/settings", &Method::POST) => match serde_json::from_slice::<Settings>(body) {
            Ok(settings) if settings.token_lifetime_seconds > 0 => {
                state.set_settings(settings);
                stats("settings_set")
            }
            _ => Answer::status(
                StatusCode::BAD_REQUEST,
                Some("expected {\"token_lifetime_seconds\": n >= 1, \"omit_md_access_token\"?: bool}"),
                "bad_request",
            ),
        },
        ("/__admin/reset", &Method::POST) => {
            state.reset();
            stats("reset")
        }
        _ => Answer::status(StatusCode::NOT_FOUND, Some("Not Found"), "not_found"),
    }
}
