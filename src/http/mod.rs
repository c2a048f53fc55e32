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

use crate::config::Loaded;
use crate::jobs::{self, Services, Trigger};
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

/// Answers one request. `loaded` is the Worker's configuration (or why it is unusable) and
/// the API keys; a `Result<Config, ConfigError>` converts into it.
pub async fn handle(req: Request, loaded: impl Into<Loaded>, now: DateTime<Utc>) -> Response {
    let started = Utc::now();
    let loaded = loaded.into();
    let mut log = json!({
        "event": "request", "method": req.method().as_str(), "path": req.uri().path(),
    });
    let response = match respond(&req, loaded, now, &mut log).await {
        Ok(response) => response,
        Err(e) => error_response(&e),
    };
    log["status"] = json!(response.status().as_u16());
    log["duration_ms"] = json!((Utc::now() - started).num_milliseconds());
    crate::logging::log(log);
    response
}

/// Routes, authenticates and runs the request; `log` collects what the request log line says
/// (the action, the caller's key name, a configuration error).
async fn respond(
    req: &Request,
    loaded: Loaded,
    now: DateTime<Utc>,
    log: &mut serde_json::Value,
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
    run(action, &caller, Services::new(config), now).await
}

/// Runs an authenticated, permitted action; reads see only the caller's accounts.
async fn run(
    action: Action,
    caller: &Caller,
    services: Services,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let accounts = &caller.accounts;
    Ok(match action {
        Action::Sync => ok(&jobs::sync::sync(&services, Trigger::Http).await?),
        Action::Status => ok(&jobs::status::status_in(&services, accounts).await?),
        Action::Get(account) => ok(&jobs::get::get_in(&services, &account, now, accounts).await?),
        Action::List(mut query) => {
            query.scope = accounts.clone();
            ok(&jobs::list::list(&services, &query, now).await?)
        }
        Action::Cleanup => ok(&jobs::cleanup::cleanup(&services, Trigger::Http).await?),
        Action::Reencrypt => ok(&jobs::reencrypt::reencrypt(&services, Trigger::Http).await?),
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
            ok(&jobs::restore::restore(&services, Trigger::Http, options).await?)
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
