//! The HTTP API, independent of the Workers runtime: an [`http::Request`] goes in, an
//! [`http::Response`] comes out. The routes are the table in [`routes::ROUTES`]: the seed's
//! `/token-manager?action=…` (also at `/`) and `/v1/…`.
//!
//! No route takes a body, so the request type has none: the Worker never reads a body, and a
//! declared `Content-Length` over [`MAX_BODY_BYTES`] is refused (413) without reading it.

pub mod auth;
pub mod error;
pub mod routes;

use chrono::{DateTime, Utc};
use http::header::{
    HeaderValue, ALLOW, AUTHORIZATION, CACHE_CONTROL, CONTENT_LENGTH, CONTENT_TYPE,
};
use http::StatusCode;
use serde::Serialize;
use serde_json::json;

use crate::alerts;
use crate::audit;
use crate::config::Loaded;
use crate::deferred::Deferred;
use crate::domain::access::AccountScope;
use crate::jobs::{self, Services, Trigger};
use crate::store::TokenRead;
use auth::{authenticate, Caller};
use error::ApiError;
use routes::{Action, Endpoint, Params};

/// Largest request body a caller may declare (no route reads one).
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// The OpenAPI 3.1 description of this API, served at `GET /openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// A request as the API sees it: method, URI (path and query; an absolute URI is fine) and
/// headers. There is no body: no route takes one.
pub type Request = http::Request<()>;
/// An answer: always JSON, with `Cache-Control: no-store` (and `Allow` on a 405).
pub type Response = http::Response<String>;

/// Answers one request, then runs the work it deferred (audit rows) before returning, so a
/// native caller sees its effects. The Worker uses [`handle_deferred`] instead. `loaded` is
/// the Worker's configuration (or why it is unusable) and the API keys; a
/// `Result<Config, ConfigError>` converts into it.
pub async fn handle(req: Request, loaded: impl Into<Loaded>, now: DateTime<Utc>) -> Response {
    let (response, deferred) = handle_deferred(req, loaded, now).await;
    deferred.run().await;
    response
}

/// Answers one request and hands back the work to run after the answer is sent (the Worker
/// passes it to `ctx.wait_until`). The deferred work never changes the answer.
pub async fn handle_deferred(
    req: Request,
    loaded: impl Into<Loaded>,
    now: DateTime<Utc>,
) -> (Response, Deferred) {
    let started = Utc::now();
    let loaded = loaded.into();
    let mut log = json!({
        "event": "request", "method": req.method().as_str(), "path": req.uri().path(),
    });
    let mut deferred = Deferred::default();
    let response = match respond(&req, loaded, now, &mut log, &mut deferred).await {
        Ok(response) => response,
        Err(e) => error_response(&e),
    };
    log["status"] = json!(response.status().as_u16());
    log["duration_ms"] = json!((Utc::now() - started).num_milliseconds());
    crate::logging::log(log);
    (response, deferred)
}

/// Routes, authenticates and runs the request; `log` collects what the request log line says
/// (the action, the caller's key name, a configuration error).
async fn respond(
    req: &Request,
    loaded: Loaded,
    now: DateTime<Utc>,
    log: &mut serde_json::Value,
    deferred: &mut Deferred,
) -> Result<Response, ApiError> {
    // The status page's files (and `/` for a browser) are not API routes.
    if let Some(page) = crate::dashboard::serve(req) {
        return page;
    }
    let (route, segment) = routes::find(req.uri().path())?;
    // Method names are compared as the Worker always did: ignoring ASCII case.
    let method = req.method().as_str();
    if !route
        .methods
        .iter()
        .any(|m| m.as_str().eq_ignore_ascii_case(method))
    {
        return Err(ApiError::MethodNotAllowed {
            allow: route.methods,
        });
    }
    let params = Params {
        query: form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes())
            .into_owned()
            .collect(),
        segment,
    };
    if let Some(action) = params.get("action") {
        log["action"] = json!(action.chars().take(32).collect::<String>());
    }
    let action = match route.endpoint(&params) {
        Ok(Endpoint::Health) => {
            let health = api_model::HealthReport::ok(env!("CARGO_PKG_VERSION"));
            return Ok(ok(&health));
        }
        Ok(Endpoint::OpenApi) => return Ok(json_response(StatusCode::OK, OPENAPI_JSON.into())),
        Ok(Endpoint::Job(action)) => Ok(action),
        Err(e) => Err(e),
    };
    // Authenticate before validating anything else, so callers without a key learn nothing.
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let caller = loaded
        .keys
        .as_ref()
        .map_or(Err(ApiError::Unauthorized), |keys| {
            authenticate(keys, authorization)
        });
    let config = match (loaded.config, &caller) {
        (Ok(config), _) => config,
        (Err(e), authenticated) => {
            log["config_error"] = json!(e.to_string());
            return Err(match authenticated {
                Ok(_) => ApiError::from(e),
                Err(_) => not_configured(),
            });
        }
    };
    let caller = caller?;
    log["key"] = json!(caller.key_name);
    if let Ok(action) = &action {
        caller.permit(action.scope())?;
    }
    check_declared_body(req)?;
    let action = action?;
    log["action"] = json!(action.name());
    let reader = Reader::of(req, &caller);
    run(action, &reader, Services::new(config), now, deferred).await
}

/// Who asks, as the audit trail records it: the key's name, the client's IP and user agent.
struct Reader {
    key_name: String,
    accounts: AccountScope,
    client_ip: Option<String>,
    user_agent: Option<String>,
}

impl Reader {
    fn of(req: &Request, caller: &Caller) -> Reader {
        let header = |name: &str, max: usize| {
            req.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(|v| v.trim().chars().take(max).collect::<String>())
                .filter(|v| !v.is_empty())
        };
        Reader {
            key_name: caller.key_name.clone(),
            accounts: caller.accounts.clone(),
            client_ip: header("cf-connecting-ip", 64),
            user_agent: header("user-agent", 512),
        }
    }
}

/// Reads one token and records the read in the audit trail, in one database call. Only when
/// that call failed (PostgREST down: nothing was recorded) or recorded another outcome than the
/// answer's (a token that does not decrypt: 500) is a row written separately: after the answer
/// (deferred), or before it with `AUDIT_REQUIRED=true`. With `AUDIT_REQUIRED=true` a read whose
/// audit row could not be written withholds the token. A read refused as bad input (400) read
/// nothing and is not recorded.
async fn get_token(
    account: &str,
    reader: &Reader,
    services: &Services,
    now: DateTime<Utc>,
    deferred: &mut Deferred,
) -> Result<Response, ApiError> {
    let read = TokenRead {
        read_at: now,
        account_name: account.chars().take(256).collect(),
        outcome: 0,
        key_name: reader.key_name.clone(),
        client_ip: reader.client_ip.clone(),
        user_agent: reader.user_agent.clone(),
    };
    let (result, recorded) =
        jobs::get::get_recorded(services, account, now, &reader.accounts, Some(&read)).await;
    let seen = alerts::after_get(&result);
    if !seen.is_empty() {
        deferred.push(alerts::notify(services.clone(), 0, seen));
    }
    let result = result.map_err(ApiError::from);
    let outcome = match &result {
        Ok(_) => StatusCode::OK,
        Err(e) => e.status(),
    };
    if outcome == StatusCode::BAD_REQUEST {
        return result.map(|report| ok(&report));
    }
    let read = TokenRead {
        outcome: outcome.as_u16(),
        ..read
    };
    let audited = match recorded {
        Some((true, recorded)) if recorded == read.outcome => true,
        Some((false, _)) => {
            audit::failed(std::slice::from_ref(&read), "the audit insert failed");
            false
        }
        // Nothing recorded, or another outcome: write this read's row on its own.
        _ => {
            let store = services.store.clone();
            if !services.config.audit_required {
                deferred.push(async move {
                    // Logged and counted inside; a failed audit write never fails the read.
                    let _ = audit::write(&store, &[read]).await;
                });
                true
            } else {
                audit::write(&store, &[read]).await.is_ok()
            }
        }
    };
    match result {
        Ok(_) if !audited && services.config.audit_required => Err(ApiError::Unavailable {
            code: "audit_unavailable",
            message: "the read could not be recorded in the audit trail and AUDIT_REQUIRED=true, so the token is withheld; check Supabase and retry".into(),
        }),
        result => result.map(|report| ok(&report)),
    }
}

/// Runs an authenticated, permitted action; reads see only the caller's accounts.
async fn run(
    action: Action,
    reader: &Reader,
    services: Services,
    now: DateTime<Utc>,
    deferred: &mut Deferred,
) -> Result<Response, ApiError> {
    let accounts = &reader.accounts;
    // Alerts go out after the answer, and may use what is left of this invocation's budget.
    let since = services.subrequests.count();
    Ok(match action {
        Action::Sync => {
            let result = jobs::sync::sync(&services, Trigger::Http).await;
            let seen = alerts::after_sync(&result);
            deferred.push(alerts::notify_sync(services.clone(), since, seen));
            ok(&result?)
        }
        Action::AlertsTest => {
            if !services.config.alerts.enabled() {
                return Err(ApiError::Unavailable {
                    code: "alerts_not_configured",
                    message: "no alert webhook is configured: set ALERT_WEBHOOK_URL (and ALERT_WEBHOOK_SECRET, ALERT_FORMAT)".into(),
                });
            }
            let report = alerts::test_report(&services).await;
            if !report.deliveries.iter().any(|d| d.ok) {
                let each: Vec<String> = report
                    .deliveries
                    .iter()
                    .map(|d| format!("{}: {}", d.host, d.error.as_deref().unwrap_or("failed")))
                    .collect();
                return Err(ApiError::Upstream {
                    code: "alert_delivery_failed",
                    message: format!(
                        "no webhook accepted the test alert ({}); check ALERT_WEBHOOK_URL and the receiver",
                        each.join("; ")
                    ),
                });
            }
            ok(&report)
        }
        Action::Status => ok(&jobs::status::status_in(&services, accounts).await?),
        Action::Get(account) => get_token(&account, reader, &services, now, deferred).await?,
        Action::List(mut query) => {
            query.scope = accounts.clone();
            ok(&jobs::list::list(&services, &query, now).await?)
        }
        Action::Cleanup => ok(&jobs::cleanup::cleanup(&services, Trigger::Http).await?),
        Action::Reencrypt => {
            let result = jobs::reencrypt::reencrypt(&services, Trigger::Http).await;
            deferred.push(alerts::notify(
                services.clone(),
                since,
                alerts::after_reencrypt(&result),
            ));
            ok(&result?)
        }
        Action::Runs(limit) => ok(&jobs::runs::runs_in(&services, limit, accounts).await?),
        Action::Restore(options) => {
            if options.include_unknown_expiry
                && services.config.restore_unknown_expiry_ttl_ms.is_none()
            {
                return Err(ApiError::BadRequest {
                    code: "invalid_query",
                    message: "include_unknown_expiry needs a TTL for those tokens: set RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS".into(),
                });
            }
            let result = jobs::restore::restore(&services, Trigger::Http, options).await;
            deferred.push(alerts::notify(
                services.clone(),
                since,
                alerts::after_restore(&result),
            ));
            ok(&result?)
        }
        Action::Audit(filter) => ok(&jobs::audit::audit(&services, &filter).await?),
        Action::Accounts => ok(&jobs::accounts::accounts(&services, accounts).await?),
        // Boxed: the pass's state machine is large, and handlers' futures are often joined.
        Action::Renew { dry_run } => {
            let result = Box::pin(jobs::renew::renew(&services, Trigger::Http, dry_run)).await;
            deferred.push(alerts::notify(
                services.clone(),
                since,
                alerts::after_renew(&result),
            ));
            ok(&result?)
        }
    })
}

/// The 503 for a caller that is not authenticated: says nothing about which secret is
/// missing or wrong (the log line does).
fn not_configured() -> ApiError {
    ApiError::Unavailable {
        code: "configuration_error",
        message: "the token manager is not configured; its operator finds the setting to fix in the Worker's log".into(),
    }
}

/// 413 when the caller declares a body over [`MAX_BODY_BYTES`]; the body is never read.
fn check_declared_body(req: &Request) -> Result<(), ApiError> {
    let Some(length) = req.headers().get(CONTENT_LENGTH) else {
        return Ok(());
    };
    let length: u64 = length
        .to_str()
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .ok_or_else(|| ApiError::BadRequest {
            code: "invalid_body",
            message: "the Content-Length header is not a number".into(),
        })?;
    if length > MAX_BODY_BYTES as u64 {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    Ok(())
}

fn ok(report: &impl Serialize) -> Response {
    json_response(
        StatusCode::OK,
        serde_json::to_string(report).expect("reports serialise"),
    )
}

/// The answer for `error`: its status, JSON body and, for a 405, `Allow`.
pub fn error_response(error: &ApiError) -> Response {
    let mut response = json_response(error.status(), error.body());
    if let Some(allow) = error.allow() {
        let allow = HeaderValue::from_str(&allow).expect("method names are header-safe");
        response.headers_mut().insert(ALLOW, allow);
    }
    response
}

fn json_response(status: StatusCode, body: String) -> Response {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}
