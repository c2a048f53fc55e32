//! HTTP routing: Upstash's REST endpoints, authentication, body limits and the request log.

use std::io::Write as _;
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::Router;
use http_body_util::BodyExt as _;
use percent_encoding::percent_decode_str;
use serde_json::Value as Json;
use subtle::ConstantTimeEq as _;

use crate::backend::{Access, Backend};
use crate::command::{query_pairs, Command};
use crate::encoding::{reply_to_json, result_to_json, write_resp2, Encoding, Format, Reply};
use crate::error::{ApiError, ALLOWED_METHODS};
use crate::events::{Feed, Shutdown};
use crate::sync_token::{self, SyncTokens};

/// Everything a request handler needs; shared by all requests.
pub struct AppState {
    /// The Redis connection.
    pub backend: Backend,
    /// Full-access token.
    pub token: String,
    /// Optional read-only token.
    pub read_only_token: Option<String>,
    /// Largest accepted body in bytes.
    pub max_request_bytes: usize,
    /// Where the one-line-per-request log goes.
    pub request_log: RequestLog,
    /// The read-your-writes tokens answered in `upstash-sync-token`.
    pub sync_tokens: SyncTokens,
    /// Ends the event streams on shutdown.
    pub shutdown: Shutdown,
}

/// Destination of the request log lines (format in [`log_request`]).
#[derive(Clone, Debug, Default)]
pub enum RequestLog {
    /// Standard error, one `write` per line (the binary's behaviour).
    #[default]
    Stderr,
    /// Kept in memory, without the trailing newline (for tests).
    Memory(Arc<Mutex<Vec<String>>>),
}

impl RequestLog {
    fn write(&self, line: String) {
        match self {
            Self::Stderr => {
                // One write per line so that lines of concurrent requests never interleave.
                let _ = std::io::stderr()
                    .lock()
                    .write_all(format!("{line}\n").as_bytes());
            }
            Self::Memory(lines) => lines.lock().expect("log buffer poisoned").push(line),
        }
    }
}

/// Number of Redis commands a request carried, attached to the response for the request log.
#[derive(Clone, Copy, Debug)]
struct CommandCount(usize);

/// The endpoint a path selects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Endpoint {
    /// `/`: the command is the JSON array in the body.
    Root,
    /// `/pipeline`: a JSON array of commands, run in order, not atomically.
    Pipeline,
    /// `/multi-exec`: a JSON array of commands, run atomically.
    MultiExec,
    /// `/COMMAND/arg1/...`: the command is in the path.
    PathStyle,
}

impl Endpoint {
    fn of(path: &str) -> Self {
        match path {
            "" | "/" => Self::Root,
            "/pipeline" => Self::Pipeline,
            "/multi-exec" => Self::MultiExec,
            _ => Self::PathStyle,
        }
    }
}

/// The application: every path goes to one dispatcher, wrapped in the request log.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .fallback(handle)
        .layer(middleware::from_fn_with_state(state.clone(), log_request))
        .with_state(state)
}

async fn handle(State(state): State<Arc<AppState>>, request: Request) -> Response {
    let mut commands = 0;
    let mut response = match dispatch(&state, request, &mut commands).await {
        Ok(response) => response,
        Err(err) => err.into_response(),
    };
    // Every answer carries a sync token; one that ran commands a new, larger one. A token a
    // client sends back needs no wait: its writes ran on the one Redis before it was issued.
    let token = if commands > 0 {
        state.sync_tokens.advance()
    } else {
        state.sync_tokens.current()
    };
    response.headers_mut().insert(
        sync_token::HEADER,
        HeaderValue::from_str(&token.to_string()).expect("digits are a valid header value"),
    );
    response.extensions_mut().insert(CommandCount(commands));
    response
}

async fn dispatch(
    state: &AppState,
    request: Request,
    commands: &mut usize,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path();
    let query = parts.uri.query();
    let endpoint = Endpoint::of(path);
    let method = &parts.method;

    let has_body = match *method {
        Method::POST | Method::PUT => true,
        Method::GET | Method::HEAD => false,
        _ => {
            return Err(ApiError::MethodNotAllowed {
                method: method.to_string(),
                allowed: ALLOWED_METHODS,
            })
        }
    };
    if !has_body && matches!(endpoint, Endpoint::Pipeline | Endpoint::MultiExec) {
        return Err(ApiError::MethodNotAllowed {
            method: method.to_string(),
            allowed: "POST, PUT",
        });
    }

    let access = authorize(state, &parts.headers, query)?;
    let body = if has_body {
        read_body(body, &parts.headers, state.max_request_bytes).await?
    } else {
        Vec::new()
    };
    if endpoint == Endpoint::PathStyle {
        // Server-sent events; a body (the TypeScript client sends `[]`) is ignored.
        if let Some(feed) = Feed::from_path(path) {
            *commands = 1;
            return crate::events::open(&state.backend, feed?, access, &state.shutdown).await;
        }
    }
    let encoding = Encoding::from_header(
        parts
            .headers
            .get("upstash-encoding")
            .map(HeaderValue::as_bytes),
    );
    // Upstash ignores the response format on /multi-exec, which always answers JSON.
    let format = if endpoint == Endpoint::MultiExec {
        Format::Json
    } else {
        Format::from_header(
            parts
                .headers
                .get("upstash-response-format")
                .map(HeaderValue::as_bytes),
        )
        .map_err(ApiError::ResponseFormat)?
    };
    let shape = match format {
        Format::Json => Shape::Json(encoding),
        Format::Resp2 if encoding == Encoding::Base64 => return Err(ApiError::Resp2WithBase64),
        Format::Resp2 => Shape::Resp2,
    };

    match endpoint {
        Endpoint::Root => {
            if body.is_empty() {
                return Err(crate::command::CommandError::Empty.into());
            }
            let command = Command::from_json(&parse_json(&body)?)?;
            *commands = 1;
            single(state, command, access, shape).await
        }
        Endpoint::PathStyle => {
            let command = Command::from_path(path, &body, query)?;
            *commands = 1;
            single(state, command, access, shape).await
        }
        Endpoint::Pipeline => {
            // A malformed item answers its error in place, like a failing command.
            let batch = Command::batch_from_json(&parse_json(&body)?)?;
            *commands = batch.len();
            let replies = state.backend.run(&batch, access).await?;
            Ok(batch_response(&replies, shape))
        }
        Endpoint::MultiExec => {
            let items = Command::batch_from_json(&parse_json(&body)?)?;
            *commands = items.len();
            // A malformed item discards the whole transaction, as a syntax error does.
            let batch = items
                .into_iter()
                .collect::<Result<Vec<_>, _>>()
                .map_err(|err| ApiError::TransactionDiscarded(err.to_string()))?;
            let replies = state.backend.multi_exec(&batch, access).await?;
            Ok(batch_response(&replies, shape))
        }
    }
}

/// How replies are written: JSON with its string encoding, or raw RESP2.
#[derive(Clone, Copy, Debug)]
enum Shape {
    Json(Encoding),
    Resp2,
}

/// Runs one command. JSON: 200 `{"result": ...}`, or 400 `{"error": "..."}` with the Redis
/// error. RESP2: the reply's bytes, 200, or 400 for an error reply.
async fn single(
    state: &AppState,
    command: Command,
    access: Access,
    shape: Shape,
) -> Result<Response, ApiError> {
    let reply = state
        .backend
        .run(&[Ok(command)], access)
        .await?
        .pop()
        .expect("one reply per command");
    match (shape, reply) {
        (Shape::Json(encoding), Ok(value)) => Ok(json_response(
            StatusCode::OK,
            &serde_json::json!({ "result": result_to_json(&value, encoding) }),
        )),
        (Shape::Json(_), Err(message)) => Err(ApiError::Command(message)),
        (Shape::Resp2, reply) => {
            let status = if reply.is_ok() {
                StatusCode::OK
            } else {
                StatusCode::BAD_REQUEST
            };
            Ok(resp2_response(status, std::slice::from_ref(&reply)))
        }
    }
}

/// The answer of `/pipeline` or `/multi-exec`: 200 with a JSON array of `{"result"}` /
/// `{"error"}` items, or the replies' RESP2 bytes one after another.
fn batch_response(replies: &[Reply], shape: Shape) -> Response {
    match shape {
        Shape::Json(encoding) => json_response(
            StatusCode::OK,
            &Json::Array(replies.iter().map(|r| reply_to_json(r, encoding)).collect()),
        ),
        Shape::Resp2 => resp2_response(StatusCode::OK, replies),
    }
}

fn resp2_response(status: StatusCode, replies: &[Reply]) -> Response {
    let mut body = Vec::new();
    for reply in replies {
        write_resp2(reply, &mut body);
    }
    (
        status,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/octet-stream"),
        )],
        body,
    )
        .into_response()
}

/// Checks `Authorization: Bearer TOKEN`, or `?_token=TOKEN` when there is no such header.
fn authorize(
    state: &AppState,
    headers: &HeaderMap,
    query: Option<&str>,
) -> Result<Access, ApiError> {
    let presented: Option<Vec<u8>> = match headers.get(header::AUTHORIZATION) {
        Some(value) => {
            let value = value.as_bytes();
            (value.len() > 7 && value[..7].eq_ignore_ascii_case(b"bearer "))
                .then(|| value[7..].trim_ascii().to_vec())
        }
        None => query_pairs(query.unwrap_or(""))
            .find(|(name, _)| name == b"_token")
            .map(|(_, value)| value),
    };
    let presented = presented.ok_or(ApiError::Unauthorized)?;
    let matches = |token: &str| bool::from(presented.as_slice().ct_eq(token.as_bytes()));
    if matches(&state.token) {
        Ok(Access::Full)
    } else if state.read_only_token.as_deref().is_some_and(matches) {
        Ok(Access::ReadOnly)
    } else {
        Err(ApiError::Unauthorized)
    }
}

/// Reads the whole body, refusing it with 413 as soon as it is known to exceed `limit`.
async fn read_body(mut body: Body, headers: &HeaderMap, limit: usize) -> Result<Vec<u8>, ApiError> {
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut bytes = Vec::with_capacity(declared.unwrap_or(0) as usize);
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|err| ApiError::BodyRead(err.to_string()))?;
        if let Ok(data) = frame.into_data() {
            if bytes.len() + data.len() > limit {
                return Err(ApiError::PayloadTooLarge { limit });
            }
            bytes.extend_from_slice(&data);
        }
    }
    Ok(bytes)
}

fn parse_json(body: &[u8]) -> Result<Json, ApiError> {
    serde_json::from_slice(body).map_err(|err| ApiError::MalformedJson(err.to_string()))
}

/// A JSON response body with `Content-Type: application/json`.
pub(crate) fn json_body(value: &Json) -> impl IntoResponse {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        value.to_string(),
    )
}

fn json_response(status: StatusCode, value: &Json) -> Response {
    (status, json_body(value)).into_response()
}

/// Writes one line per request to the [`RequestLog`] (stderr in the binary); the format,
/// documented in README.md, is stable:
///
/// `upstash-local request ts=<unix secs.millis> method=<M> path=<P> status=<code> commands=<n> duration_ms=<ms>`
///
/// `path` is `/`, `/pipeline`, `/multi-exec`, or for path-style requests only `/<command>`;
/// the query string, token, keys and values are never logged.
async fn log_request(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    let started = Instant::now();
    let method = request.method().clone();
    let path = log_path(request.uri().path());
    let mut response = next.run(request).await;
    let commands = response
        .extensions_mut()
        .remove::<CommandCount>()
        .map_or(0, |c| c.0);
    let ts = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_millis();
    let line = format!(
        "upstash-local request ts={}.{:03} method={} path={} status={} commands={} duration_ms={:.3}",
        ts / 1000,
        ts % 1000,
        method,
        path,
        response.status().as_u16(),
        commands,
        started.elapsed().as_secs_f64() * 1000.0,
    );
    state.request_log.write(line);
    response
}

/// The path as logged: fixed endpoints as they are, path-style requests as `/<command>`
/// (lower case, or `/?` when the first segment does not look like a command name).
fn log_path(path: &str) -> String {
    match Endpoint::of(path) {
        Endpoint::Root => "/".to_owned(),
        Endpoint::Pipeline | Endpoint::MultiExec => path.to_owned(),
        Endpoint::PathStyle => {
            let first = path.trim_start_matches('/').split('/').next().unwrap_or("");
            let name = percent_decode_str(first).decode_utf8_lossy();
            let looks_like_command = !name.is_empty()
                && name.len() <= 32
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'));
            if looks_like_command {
                format!("/{}", name.to_ascii_lowercase())
            } else {
                "/?".to_owned()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::log_path;

    #[test]
    fn log_path_keeps_only_the_command_name() {
        assert_eq!(log_path("/"), "/");
        assert_eq!(log_path("/pipeline"), "/pipeline");
        assert_eq!(log_path("/multi-exec"), "/multi-exec");
        assert_eq!(log_path("/SET/secret-key/secret-value"), "/set");
        assert_eq!(log_path("/%FF/x"), "/?");
        assert_eq!(log_path("/a%20b"), "/?");
    }
}
