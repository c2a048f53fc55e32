//! The HTTP API, independent of the Workers runtime: a [`Request`] goes in, a [`Response`]
//! comes out. Routes: the seed's `/token-manager?action=…` (also at `/`) and `/v1/…`.

pub mod auth;
pub mod error;

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode_str;
use serde::Serialize;
use serde_json::json;

use crate::config::{Config, ConfigError};
use crate::domain::account::AccountName;
use crate::jobs::list::ListQuery;
use crate::jobs::{self, Services, Trigger};
use auth::{authorize, Scope};
use error::ApiError;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Rows a listing returns unless `limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The OpenAPI 3.1 description of this API, served at `GET /openapi.json`.
pub const OPENAPI_JSON: &str = include_str!("../../openapi.json");

/// An HTTP request as the API sees it.
#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    /// The URL path, still percent-encoded.
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    pub authorization: Option<String>,
    pub body: Vec<u8>,
}

impl Request {
    /// Builds a request from a full URL; `None` if the URL does not parse.
    pub fn new(
        method: &str,
        url: &str,
        authorization: Option<String>,
        body: Vec<u8>,
    ) -> Option<Self> {
        let url = reqwest::Url::parse(url).ok()?;
        Some(Self {
            method: method.to_ascii_uppercase(),
            path: url.path().to_string(),
            query: url
                .query_pairs()
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect(),
            authorization,
            body,
        })
    }

    fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// An HTTP response: always JSON and `Cache-Control: no-store`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub status: u16,
    pub body: String,
    /// The `Allow` header of a 405.
    pub allow: Option<&'static str>,
}

impl Response {
    fn ok(body: &impl Serialize) -> Self {
        let body = serde_json::to_string(body).expect("reports serialise");
        Self {
            status: 200,
            body,
            allow: None,
        }
    }

    fn error(e: &ApiError) -> Self {
        let allow = match e {
            ApiError::MethodNotAllowed { allow } => Some(*allow),
            _ => None,
        };
        Self {
            status: e.status(),
            body: e.body(),
            allow,
        }
    }
}

/// The jobs the API can run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Action {
    Sync,
    Status,
    Get(String),
    List(ListQuery),
    Cleanup,
    Reencrypt,
}

impl Action {
    fn scope(&self) -> Scope {
        match self {
            Action::Sync | Action::Cleanup | Action::Reencrypt => Scope::Admin,
            Action::Status | Action::Get(_) | Action::List(_) => Scope::Read,
        }
    }
}

/// Answers one request. `config` is the Worker's configuration or why it is unusable.
pub async fn handle(
    req: Request,
    config: Result<Config, ConfigError>,
    now: DateTime<Utc>,
) -> Response {
    let started = Utc::now();
    let response = match respond(&req, config, now).await {
        Ok(response) => response,
        Err(e) => Response::error(&e),
    };
    crate::logging::log(json!({
        "event": "request", "method": req.method, "path": req.path,
        "action": req.param("action"), "status": response.status,
        "duration_ms": (Utc::now() - started).num_milliseconds(),
    }));
    response
}

async fn respond(
    req: &Request,
    config: Result<Config, ConfigError>,
    now: DateTime<Utc>,
) -> Result<Response, ApiError> {
    let (allow, action) = route(req)?;
    if !allow.split(", ").any(|m| m == req.method) {
        return Err(ApiError::MethodNotAllowed { allow });
    }
    let Some(action) = action else {
        if req.path.trim_end_matches('/') == "/openapi.json" {
            return Ok(Response {
                status: 200,
                body: OPENAPI_JSON.to_string(),
                allow: None,
            });
        }
        return Ok(Response::ok(
            &json!({ "status": "ok", "service": "token-manager", "version": env!("CARGO_PKG_VERSION") }),
        ));
    };
    // Authenticate before validating anything else, so callers without a key learn nothing.
    let config = config?;
    let scope = action.as_ref().map_or(Scope::Read, Action::scope);
    authorize(&config, req.authorization.as_deref(), scope)?;
    check_body(&req.body)?;
    let action = action?;
    let services = Services::new(config);
    Ok(match action {
        Action::Sync => Response::ok(&jobs::sync::sync(&services, Trigger::Http).await?),
        Action::Status => Response::ok(&jobs::status::status(&services).await?),
        Action::Get(account) => Response::ok(&jobs::get::get(&services, &account, now).await?),
        Action::List(query) => Response::ok(&jobs::list::list(&services, &query, now).await?),
        Action::Cleanup => Response::ok(&jobs::cleanup::cleanup(&services, Trigger::Http).await?),
        Action::Reencrypt => {
            Response::ok(&jobs::reencrypt::reencrypt(&services, Trigger::Http).await?)
        }
    })
}

/// The allowed methods of the path and what it asks for (`None` for health and the OpenAPI
/// document). The action is an error when the route exists but its parameters are bad;
/// methods are checked first.
#[allow(clippy::type_complexity)]
fn route(req: &Request) -> Result<(&'static str, Option<Result<Action, ApiError>>), ApiError> {
    const GET: &str = "GET";
    const POST: &str = "POST";
    let path = req.path.trim_end_matches('/');
    Ok(match path {
        "/health" | "/openapi.json" => (GET, None),
        "" | "/token-manager" | "/functions/v1/token-manager" => {
            ("GET, POST", Some(seed_action(req)))
        }
        "/v1/sync" => (POST, Some(Ok(Action::Sync))),
        "/v1/cleanup" => (POST, Some(Ok(Action::Cleanup))),
        "/v1/reencrypt" => (POST, Some(Ok(Action::Reencrypt))),
        "/v1/status" => (GET, Some(Ok(Action::Status))),
        "/v1/tokens" => (GET, Some(list_query(req).map(Action::List))),
        _ => match path.strip_prefix("/v1/tokens/") {
            Some(segment) if !segment.contains('/') => {
                (GET, Some(decode_segment(segment).map(Action::Get)))
            }
            _ => {
                return Err(ApiError::NotFound {
                    code: "route_not_found",
                    message: format!(
                        "no route {path}; see GET /openapi.json or the README for the API"
                    ),
                });
            }
        },
    })
}

fn seed_action(req: &Request) -> Result<Action, ApiError> {
    let bad = |message: String| ApiError::BadRequest {
        code: "invalid_action",
        message,
    };
    match req.param("action") {
        Some("sync") => Ok(Action::Sync),
        Some("status") => Ok(Action::Status),
        Some("cleanup") => Ok(Action::Cleanup),
        Some("get") => match req.param("account") {
            Some(account) => Ok(Action::Get(account.to_string())),
            None => Err(ApiError::BadRequest {
                code: "missing_account",
                message: "action=get needs &account=NAME, e.g. ?action=get&account=APEX_136189"
                    .into(),
            }),
        },
        Some(other) => Err(bad(format!(
            "unknown action {other:?}; use sync, status, get or cleanup"
        ))),
        None => Err(bad(
            "missing ?action=; use sync, status, get or cleanup".into()
        )),
    }
}

fn decode_segment(segment: &str) -> Result<String, ApiError> {
    percent_decode_str(segment)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| ApiError::BadRequest {
            code: "invalid_account",
            message: "the account in the path is not valid percent-encoded UTF-8".into(),
        })
}

fn list_query(req: &Request) -> Result<ListQuery, ApiError> {
    let bad = |name: &str, expected: &str| ApiError::BadRequest {
        code: "invalid_query",
        message: format!("query parameter {name} must be {expected}"),
    };
    let mut query = ListQuery {
        limit: DEFAULT_LIST_LIMIT,
        ..ListQuery::default()
    };
    for (name, value) in &req.query {
        match name.as_str() {
            "main_account" => {
                // A valid account name holds no control characters (PostgREST would cut the
                // filter value at a NUL byte and match a shorter name).
                let account =
                    AccountName::parse(value).map_err(|_| bad(name, "a valid account name"))?;
                query.main_account = Some(account.into_string());
            }
            "active" => query.active = Some(value.parse().map_err(|_| bad(name, "true or false"))?),
            "expiring_within" => {
                query.expiring_within_seconds = Some(
                    parse_duration(value)
                        .ok_or_else(|| bad(name, "a duration such as 600, 90s, 10m, 2h or 1d"))?,
                )
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=jobs::list::MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(name, "a whole number from 1 to 1000"))?
            }
            "offset" => query.offset = value.parse().map_err(|_| bad(name, "a whole number"))?,
            _ => {}
        }
    }
    Ok(query)
}

/// Seconds from `600`, `90s`, `10m`, `2h` or `1d`.
fn parse_duration(value: &str) -> Option<i64> {
    let (digits, unit) = match value.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&value[..i], c),
        _ => (value, 's'),
    };
    let n: i64 = digits.parse().ok().filter(|n| *n >= 0)?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(factor)
}

fn check_body(body: &[u8]) -> Result<(), ApiError> {
    if body.len() > MAX_BODY_BYTES {
        return Err(ApiError::PayloadTooLarge {
            limit: MAX_BODY_BYTES,
        });
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(());
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(_)) => Ok(()),
        _ => Err(ApiError::BadRequest {
            code: "invalid_body",
            message: "the request body must be empty or a JSON object".into(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: &str, url: &str) -> Request {
        Request::new(method, &format!("http://w{url}"), None, Vec::new()).unwrap()
    }

    #[test]
    fn routes_and_methods() {
        let allow = |m: &str, u: &str| route(&req(m, u)).map(|(allow, _)| allow);
        assert_eq!(allow("GET", "/health"), Ok("GET"));
        assert_eq!(
            allow("GET", "/token-manager?action=status"),
            Ok("GET, POST")
        );
        assert_eq!(allow("GET", "/?action=status"), Ok("GET, POST"));
        assert_eq!(allow("POST", "/v1/sync"), Ok("POST"));
        assert_eq!(route(&req("GET", "/v1/nope")).unwrap_err().status(), 404);
        assert_eq!(
            route(&req("GET", "/v1/tokens/a/b")).unwrap_err().status(),
            404
        );
    }

    #[test]
    fn account_in_path_is_percent_decoded() {
        let (_, action) = route(&req("GET", "/v1/tokens/PA%2CAPEX%20%C3%A9")).unwrap();
        assert_eq!(action.unwrap().unwrap(), Action::Get("PA,APEX é".into()));
    }

    #[test]
    fn seed_actions_need_their_parameters() {
        let action = |u: &str| seed_action(&req("GET", u));
        assert_eq!(
            action("/?action=get&account=APEX_1").unwrap(),
            Action::Get("APEX_1".into())
        );
        assert_eq!(
            action("/?action=get").unwrap_err().code(),
            "missing_account"
        );
        assert_eq!(
            action("/?action=drop").unwrap_err().code(),
            "invalid_action"
        );
        assert_eq!(action("/").unwrap_err().code(), "invalid_action");
    }

    #[test]
    fn list_query_parses_and_rejects() {
        let q = list_query(&req(
            "GET",
            "/v1/tokens?main_account=APEX_1&active=true&expiring_within=10m&limit=5",
        ))
        .unwrap();
        assert_eq!(q.main_account.as_deref(), Some("APEX_1"));
        assert_eq!(
            (q.active, q.expiring_within_seconds, q.limit),
            (Some(true), Some(600), 5)
        );
        for bad in [
            "active=yes",
            "expiring_within=soon",
            "limit=0",
            "limit=5000",
            "offset=-1",
            "main_account=",
        ] {
            assert_eq!(
                list_query(&req("GET", &format!("/v1/tokens?{bad}")))
                    .unwrap_err()
                    .status(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("600"), Some(600));
        assert_eq!(parse_duration("90s"), Some(90));
        assert_eq!(parse_duration("2h"), Some(7200));
        assert_eq!(parse_duration("1d"), Some(86_400));
        assert_eq!(parse_duration("m"), None);
        assert_eq!(parse_duration("-5"), None);
    }

    #[test]
    fn bodies_must_be_empty_or_json_objects() {
        assert!(check_body(b"").is_ok());
        assert!(check_body(b" {} ").is_ok());
        assert_eq!(check_body(b"{").unwrap_err().code(), "invalid_body");
        assert_eq!(check_body(b"[1]").unwrap_err().code(), "invalid_body");
        assert_eq!(
            check_body(&vec![b' '; MAX_BODY_BYTES + 1])
                .unwrap_err()
                .status(),
            413
        );
    }
}
