//! The one table of routes: the router matches requests against [`ROUTES`], and the OpenAPI
//! coverage test checks that `openapi.json` documents exactly these paths and methods.
//!
//! To add a route: add an [`Action`] (and its scope), a row here, and its arm in
//! `super::run`; document it in `openapi.json` and the README.

use http::Method;
use percent_encoding::percent_decode_str;

use super::auth::Scope;
use super::error::ApiError;
use crate::domain::account::AccountName;
use crate::jobs::list::{ListQuery, MAX_LIMIT, MAX_OFFSET};
use crate::jobs::restore::RestoreOptions;
use crate::store::AuditFilter;

/// Rows a listing returns unless `limit` says otherwise.
pub const DEFAULT_LIST_LIMIT: usize = 100;
/// The longest `expiring_within` accepted: ten years, far inside `DateTime`'s range.
pub const MAX_EXPIRING_WITHIN_SECONDS: i64 = 10 * 366 * 86_400;

/// One route: a path template as `openapi.json` writes it, its methods, and how its
/// parameters become an [`Endpoint`].
pub struct Route {
    /// The path template; a `{name}` part matches one non-empty path segment.
    pub path: &'static str,
    /// The methods the route answers; any other gets 405 with these in `Allow`.
    pub methods: &'static [Method],
    /// Reads the request's parameters (the query, and the path segment the template's
    /// `{name}` matched). An error here is answered only after authentication.
    parse: fn(&Params) -> Result<Endpoint, ApiError>,
}

const GET: &[Method] = &[Method::GET];
const POST: &[Method] = &[Method::POST];
const GET_POST: &[Method] = &[Method::GET, Method::POST];

/// Every route the API answers. Paths are matched after trailing slashes are removed
/// (`/v1/status/` is `/v1/status`, and the empty path is `/`).
pub static ROUTES: &[Route] = &[
    Route {
        path: "/health",
        methods: GET,
        parse: |_| Ok(Endpoint::Health),
    },
    Route {
        path: "/openapi.json",
        methods: GET,
        parse: |_| Ok(Endpoint::OpenApi),
    },
    Route {
        path: "/",
        methods: GET_POST,
        parse: seed_action,
    },
    Route {
        path: "/token-manager",
        methods: GET_POST,
        parse: seed_action,
    },
    Route {
        path: "/functions/v1/token-manager",
        methods: GET_POST,
        parse: seed_action,
    },
    Route {
        path: "/v1/sync",
        methods: POST,
        parse: |_| Ok(Endpoint::Job(Action::Sync)),
    },
    Route {
        path: "/v1/cleanup",
        methods: POST,
        parse: |_| Ok(Endpoint::Job(Action::Cleanup)),
    },
    Route {
        path: "/v1/reencrypt",
        methods: POST,
        parse: |_| Ok(Endpoint::Job(Action::Reencrypt)),
    },
    Route {
        path: "/v1/restore",
        methods: POST,
        parse: |p| restore_options(p).map(|o| Endpoint::Job(Action::Restore(o))),
    },
    Route {
        path: "/v1/renew",
        methods: POST,
        parse: |p| dry_run(p).map(|dry_run| Endpoint::Job(Action::Renew { dry_run })),
    },
    Route {
        path: "/v1/alerts/test",
        methods: POST,
        parse: |_| Ok(Endpoint::Job(Action::AlertsTest)),
    },
    Route {
        path: "/v1/status",
        methods: GET,
        parse: |_| Ok(Endpoint::Job(Action::Status)),
    },
    Route {
        path: "/v1/tokens",
        methods: GET,
        parse: |p| list_query(p).map(|q| Endpoint::Job(Action::List(q))),
    },
    Route {
        path: "/v1/runs",
        methods: GET,
        parse: |p| runs_limit(p).map(|n| Endpoint::Job(Action::Runs(n))),
    },
    Route {
        path: "/v1/accounts",
        methods: GET,
        parse: |_| Ok(Endpoint::Job(Action::Accounts)),
    },
    Route {
        path: "/v1/audit",
        methods: GET,
        parse: |p| audit_filter(p).map(|f| Endpoint::Job(Action::Audit(f))),
    },
    Route {
        path: "/v1/tokens/{account}",
        methods: GET,
        parse: |p| {
            decode_segment(p.segment.as_deref().unwrap_or_default())
                .map(|a| Endpoint::Job(Action::Get(a)))
        },
    },
];

/// What a request asks for once its route and parameters are read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// `GET /health`: liveness, no key needed.
    Health,
    /// `GET /openapi.json`: the API description, no key needed.
    OpenApi,
    /// A job, for a caller whose key has the action's scope.
    Job(Action),
}

/// The jobs the API runs for an authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Sync,
    Status,
    Get(String),
    List(ListQuery),
    Cleanup,
    Reencrypt,
    /// The most recent runs, at most this many.
    Runs(usize),
    Restore(RestoreOptions),
    /// The audit trail of token reads.
    Audit(AuditFilter),
    /// The health of every account the caller may see.
    Accounts,
    /// A renew pass; `dry_run` only reports what one would do.
    Renew {
        dry_run: bool,
    },
    /// Sends a test alert to every configured webhook.
    AlertsTest,
}

impl Action {
    /// The scope a key needs for this action.
    pub fn scope(&self) -> Scope {
        match self {
            Action::Sync
            | Action::Cleanup
            | Action::Reencrypt
            | Action::Restore(_)
            | Action::Audit(_) => Scope::Admin,
            Action::Renew { .. } | Action::AlertsTest => Scope::Admin,
            Action::Status
            | Action::Get(_)
            | Action::List(_)
            | Action::Runs(_)
            | Action::Accounts => Scope::Read,
        }
    }

    /// The action's name in logs (never its parameters).
    pub fn name(&self) -> &'static str {
        match self {
            Action::Sync => "sync",
            Action::Status => "status",
            Action::Get(_) => "get",
            Action::List(_) => "list",
            Action::Cleanup => "cleanup",
            Action::Reencrypt => "reencrypt",
            Action::Runs(_) => "runs",
            Action::Restore(_) => "restore",
            Action::Audit(_) => "audit",
            Action::Accounts => "accounts",
            Action::Renew { dry_run: false } => "renew",
            Action::Renew { dry_run: true } => "renew_dry_run",
            Action::AlertsTest => "alerts_test",
        }
    }
}

/// A request's parameters as a route's parser sees them.
pub struct Params {
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    /// The (still percent-encoded) segment a `{name}` in the template matched.
    pub segment: Option<String>,
}

impl Params {
    /// The first value of query parameter `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// The route matching `path` (percent-encoded, as received) and the segment its `{name}`
/// matched; 404 `route_not_found` when none does.
pub fn find(path: &str) -> Result<(&'static Route, Option<String>), ApiError> {
    let trimmed = path.trim_end_matches('/');
    ROUTES
        .iter()
        .find_map(|route| Some((route, matches(route.path, trimmed)?)))
        .ok_or_else(|| ApiError::NotFound {
            code: "route_not_found",
            message: format!("no route {trimmed}; see GET /openapi.json or the README for the API"),
        })
}

impl Route {
    /// Reads `params` into what the request asks for.
    pub fn endpoint(&self, params: &Params) -> Result<Endpoint, ApiError> {
        (self.parse)(params)
    }
}

/// `Some(segment)` when `path` (without trailing slashes) matches `template`: `Some(None)`
/// for a template without a parameter.
fn matches(template: &str, path: &str) -> Option<Option<String>> {
    let template = template.trim_end_matches('/');
    match template.split_once('{') {
        None => (template == path).then_some(None),
        Some((prefix, _)) => {
            let segment = path.strip_prefix(prefix)?;
            (!segment.is_empty() && !segment.contains('/')).then(|| Some(segment.to_string()))
        }
    }
}

fn seed_action(params: &Params) -> Result<Endpoint, ApiError> {
    let bad = |message: String| ApiError::BadRequest {
        code: "invalid_action",
        message,
    };
    let action = match params.get("action") {
        Some("sync") => Action::Sync,
        Some("status") => Action::Status,
        Some("cleanup") => Action::Cleanup,
        Some("restore") => Action::Restore(restore_options(params)?),
        Some("renew") => Action::Renew {
            dry_run: dry_run(params)?,
        },
        Some("get") => match params.get("account") {
            Some(account) => Action::Get(account.to_string()),
            None => {
                return Err(ApiError::BadRequest {
                    code: "missing_account",
                    message: "action=get needs &account=NAME, e.g. ?action=get&account=APEX_136189"
                        .into(),
                })
            }
        },
        Some(other) => {
            return Err(bad(format!(
                "unknown action {:?}; use sync, status, get, cleanup, restore or renew",
                truncate(other)
            )))
        }
        None => {
            return Err(bad(
                "missing ?action=; use sync, status, get, cleanup, restore or renew".into(),
            ))
        }
    };
    Ok(Endpoint::Job(action))
}

/// `dry_run=true|false` (absent: false).
fn dry_run(params: &Params) -> Result<bool, ApiError> {
    match params.get("dry_run") {
        None | Some("false") => Ok(false),
        Some("true") => Ok(true),
        Some(_) => Err(ApiError::BadRequest {
            code: "invalid_query",
            message: "query parameter dry_run must be true or false".into(),
        }),
    }
}

/// At most 64 characters of caller input, for echoing it in a message.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// `dry_run` and `include_unknown_expiry`, each `true` or `false` (default false).
fn restore_options(params: &Params) -> Result<RestoreOptions, ApiError> {
    let flag = |name: &str| match params.get(name) {
        None => Ok(false),
        Some(value) => value.parse().map_err(|_| ApiError::BadRequest {
            code: "invalid_query",
            message: format!("query parameter {name} must be true or false"),
        }),
    };
    Ok(RestoreOptions {
        dry_run: flag("dry_run")?,
        include_unknown_expiry: flag("include_unknown_expiry")?,
    })
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

fn list_query(params: &Params) -> Result<ListQuery, ApiError> {
    let bad = |name: &str, expected: &str| ApiError::BadRequest {
        code: "invalid_query",
        message: format!("query parameter {name} must be {expected}"),
    };
    let mut query = ListQuery {
        limit: DEFAULT_LIST_LIMIT,
        ..ListQuery::default()
    };
    for (name, value) in &params.query {
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
                        .filter(|s| *s <= MAX_EXPIRING_WITHIN_SECONDS)
                        .ok_or_else(|| {
                            bad(
                                name,
                                "a duration up to ten years, such as 600, 90s, 10m, 2h or 1d",
                            )
                        })?,
                )
            }
            "limit" => {
                query.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(name, "a whole number from 1 to 1000"))?
            }
            "offset" => {
                query.offset = value
                    .parse()
                    .ok()
                    .filter(|n| *n <= MAX_OFFSET)
                    .ok_or_else(|| bad(name, "a whole number from 0 to 1000000"))?
            }
            _ => {}
        }
    }
    Ok(query)
}

/// `?limit=` of the runs listing: 1 to [`crate::jobs::runs::MAX_LIMIT`], default
/// [`crate::jobs::runs::DEFAULT_LIMIT`].
fn runs_limit(params: &Params) -> Result<usize, ApiError> {
    use crate::jobs::runs::{DEFAULT_LIMIT, MAX_LIMIT};
    match params.get("limit") {
        None => Ok(DEFAULT_LIMIT),
        Some(value) => value
            .parse()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| ApiError::BadRequest {
                code: "invalid_query",
                message: format!(
                    "query parameter limit must be a whole number from 1 to {MAX_LIMIT}"
                ),
            }),
    }
}

/// `?account=&key=&since=&until=&limit=` of the audit listing: a valid account name, a key
/// name, RFC 3339 times, a limit from 1 to [`crate::jobs::audit::MAX_LIMIT`].
fn audit_filter(params: &Params) -> Result<AuditFilter, ApiError> {
    use crate::jobs::audit::{DEFAULT_LIMIT, MAX_LIMIT};
    let bad = |name: &str, expected: &str| ApiError::BadRequest {
        code: "invalid_query",
        message: format!("query parameter {name} must be {expected}"),
    };
    let time = |name: &str, value: &str| {
        chrono::DateTime::parse_from_rfc3339(value)
            .map(|t| t.with_timezone(&chrono::Utc))
            .map_err(|_| bad(name, "an RFC 3339 time such as 2026-12-01T09:00:00Z"))
    };
    let mut filter = AuditFilter {
        limit: DEFAULT_LIMIT,
        ..AuditFilter::default()
    };
    for (name, value) in &params.query {
        match name.as_str() {
            "account" => {
                let account =
                    AccountName::parse(value).map_err(|_| bad(name, "a valid account name"))?;
                filter.account = Some(account.into_string());
            }
            "key" => {
                let valid = (1..=64).contains(&value.len())
                    && value.bytes().all(|b| {
                        b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.' | b':')
                    });
                if !valid {
                    return Err(bad(
                        name,
                        "a key name (1 to 64 letters, digits, _ - . or :, e.g. bot-eu or job:restore)",
                    ));
                }
                filter.key = Some(value.clone());
            }
            "since" => filter.since = Some(time(name, value)?),
            "until" => filter.until = Some(time(name, value)?),
            "limit" => {
                filter.limit = value
                    .parse()
                    .ok()
                    .filter(|n| (1..=MAX_LIMIT).contains(n))
                    .ok_or_else(|| bad(name, "a whole number from 1 to 1000"))?
            }
            _ => {}
        }
    }
    Ok(filter)
}

/// Seconds from `600`, `90s`, `10m`, `2h` or `1d`; `None` for anything else or an overflow.
fn parse_duration(value: &str) -> Option<i64> {
    let (digits, unit) = match value.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&value[..i], c),
        _ => (value, 's'),
    };
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: i64 = digits.parse().ok()?;
    let factor = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(url: &str) -> Params {
        let (path, query) = url.split_once('?').unwrap_or((url, ""));
        let (_, segment) = find(path).unwrap();
        Params {
            query: form_urlencoded::parse(query.as_bytes())
                .into_owned()
                .collect(),
            segment,
        }
    }

    fn endpoint(url: &str) -> Result<Endpoint, ApiError> {
        let path = url.split('?').next().unwrap();
        find(path).unwrap().0.endpoint(&params(url))
    }

    #[test]
    fn paths_find_their_route() {
        let path_of = |p: &str| find(p).map(|(r, _)| r.path);
        assert_eq!(path_of("/health"), Ok("/health"));
        assert_eq!(path_of(""), Ok("/"));
        assert_eq!(path_of("/"), Ok("/"));
        assert_eq!(path_of("/v1/status/"), Ok("/v1/status"));
        assert_eq!(path_of("/v1/tokens/"), Ok("/v1/tokens"));
        assert_eq!(path_of("/v1/tokens/A/"), Ok("/v1/tokens/{account}"));
        for missing in ["/v1/nope", "/v1/tokens/a/b", "/v1", "/healthz"] {
            assert_eq!(
                find(missing).err().map(|e| e.code()),
                Some("route_not_found"),
                "{missing}"
            );
        }
    }

    #[test]
    fn templates_are_distinct_and_methods_listed() {
        for (i, route) in ROUTES.iter().enumerate() {
            assert!(!route.methods.is_empty(), "{}", route.path);
            assert!(
                ROUTES[..i].iter().all(|r| r.path != route.path),
                "{} twice",
                route.path
            );
        }
    }

    #[test]
    fn account_in_path_is_percent_decoded() {
        assert_eq!(
            endpoint("/v1/tokens/PA%2CAPEX%20%C3%A9").unwrap(),
            Endpoint::Job(Action::Get("PA,APEX é".into()))
        );
        assert_eq!(
            endpoint("/v1/tokens/%FF").unwrap_err().code(),
            "invalid_account"
        );
    }

    #[test]
    fn seed_actions_need_their_parameters() {
        assert_eq!(
            endpoint("/?action=get&account=APEX_1").unwrap(),
            Endpoint::Job(Action::Get("APEX_1".into()))
        );
        assert_eq!(
            endpoint("/?action=get").unwrap_err().code(),
            "missing_account"
        );
        assert_eq!(
            endpoint("/?action=drop").unwrap_err().code(),
            "invalid_action"
        );
        assert_eq!(endpoint("/").unwrap_err().code(), "invalid_action");
        assert_eq!(
            endpoint("/?action=restore&dry_run=true").unwrap(),
            Endpoint::Job(Action::Restore(RestoreOptions {
                dry_run: true,
                include_unknown_expiry: false
            }))
        );
        assert_eq!(
            endpoint("/v1/restore?include_unknown_expiry=true").unwrap(),
            Endpoint::Job(Action::Restore(RestoreOptions {
                dry_run: false,
                include_unknown_expiry: true
            }))
        );
        assert_eq!(
            endpoint("/?action=restore&dry_run=maybe")
                .unwrap_err()
                .code(),
            "invalid_query"
        );
        assert_eq!(
            endpoint("/?action=renew&dry_run=true").unwrap(),
            Endpoint::Job(Action::Renew { dry_run: true })
        );
        assert_eq!(
            endpoint("/v1/renew").unwrap(),
            Endpoint::Job(Action::Renew { dry_run: false })
        );
        assert_eq!(
            endpoint("/v1/renew?dry_run=yes").unwrap_err().code(),
            "invalid_query"
        );
    }

    #[test]
    fn list_query_parses_and_rejects() {
        let Endpoint::Job(Action::List(q)) =
            endpoint("/v1/tokens?main_account=APEX_1&active=true&expiring_within=10m&limit=5")
                .unwrap()
        else {
            panic!("a listing")
        };
        assert_eq!(q.main_account.as_deref(), Some("APEX_1"));
        assert_eq!(
            (q.active, q.expiring_within_seconds, q.limit),
            (Some(true), Some(600), 5)
        );
        for bad in [
            "active=yes",
            "expiring_within=soon",
            "expiring_within=10000000000000",
            "expiring_within=106751992d",
            "expiring_within=+5",
            "limit=0",
            "limit=5000",
            "offset=-1",
            "offset=18446744073709551615",
            "offset=1000001",
            "main_account=",
        ] {
            assert_eq!(
                endpoint(&format!("/v1/tokens?{bad}"))
                    .unwrap_err()
                    .status()
                    .as_u16(),
                400,
                "{bad}"
            );
        }
    }

    #[test]
    fn runs_limit_defaults_and_bounds() {
        let limit = |u: &str| match endpoint(u) {
            Ok(Endpoint::Job(Action::Runs(n))) => Ok(n),
            Ok(other) => panic!("{other:?}"),
            Err(e) => Err(e.code()),
        };
        assert_eq!(limit("/v1/runs"), Ok(crate::jobs::runs::DEFAULT_LIMIT));
        assert_eq!(limit("/v1/runs?limit=200"), Ok(200));
        for bad in ["0", "201", "-1", "ten", ""] {
            assert_eq!(
                limit(&format!("/v1/runs?limit={bad}")),
                Err("invalid_query"),
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
        assert_eq!(parse_duration("+5"), None);
        assert_eq!(parse_duration("9223372036854775807d"), None);
    }
}
