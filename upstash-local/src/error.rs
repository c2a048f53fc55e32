//! Request-level failures and the HTTP responses they become (always `{"error": "..."}`).

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::backend::{BackendError, TransactionError};
use crate::command::CommandError;

/// Methods Upstash's REST API accepts; anything else answers 405.
pub const ALLOWED_METHODS: &str = "HEAD, GET, POST, PUT";

/// Why a request failed as a whole.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// Missing or wrong token: 401, with Upstash's wording.
    #[error("WRONGPASS invalid or missing auth token")]
    Unauthorized,
    /// A method other than HEAD, GET, POST or PUT (or GET on `/pipeline`, `/multi-exec`): 405.
    #[error("ERR method {method} is not allowed here: use {allowed}")]
    MethodNotAllowed {
        /// The method that was used.
        method: String,
        /// Methods that this path accepts.
        allowed: &'static str,
    },
    /// The body is larger than `--max-request-bytes`: 413.
    #[error("ERR max request size exceeded: the request body is larger than {limit} bytes (see --max-request-bytes)")]
    PayloadTooLarge {
        /// The configured limit in bytes.
        limit: usize,
    },
    /// The body could not be read from the connection: 400.
    #[error("ERR could not read the request body: {0}")]
    BodyRead(String),
    /// The body is not valid JSON: 400.
    #[error("ERR the request body is not valid JSON ({0}); send a JSON array like [\"SET\",\"k\",\"v\"]")]
    MalformedJson(String),
    /// An `Upstash-Response-Format` other than `json` or `resp2`: 400.
    #[error("ERR unsupported Upstash-Response-Format {0:?}: use json (the default) or resp2")]
    ResponseFormat(String),
    /// `Upstash-Response-Format: resp2` together with `Upstash-Encoding: base64`: 400, as
    /// Upstash documents.
    #[error("ERR Upstash-Encoding: base64 cannot be combined with Upstash-Response-Format: resp2")]
    Resp2WithBase64,
    /// The JSON or path does not describe a command: 400.
    #[error(transparent)]
    BadCommand(#[from] CommandError),
    /// Redis (or the proxy) rejected the single command: 400 with the Redis error text.
    #[error("{0}")]
    Command(String),
    /// A `/multi-exec` transaction was discarded as a whole: 400.
    #[error("{0}")]
    TransactionDiscarded(String),
    /// Redis is unreachable: 502.
    #[error("ERR {0}")]
    Backend(#[from] BackendError),
}

impl From<TransactionError> for ApiError {
    fn from(err: TransactionError) -> Self {
        match err {
            TransactionError::Discarded(message) => Self::TransactionDiscarded(message),
            TransactionError::Backend(err) => Self::Backend(err),
        }
    }
}

impl ApiError {
    /// The HTTP status this error answers with.
    pub fn status(&self) -> StatusCode {
        match self {
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::BodyRead(_)
            | Self::MalformedJson(_)
            | Self::ResponseFormat(_)
            | Self::Resp2WithBase64
            | Self::BadCommand(_)
            | Self::Command(_)
            | Self::TransactionDiscarded(_) => StatusCode::BAD_REQUEST,
            Self::Backend(_) => StatusCode::BAD_GATEWAY,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let allow = match &self {
            Self::MethodNotAllowed { allowed, .. } => Some(*allowed),
            _ => None,
        };
        let mut response = (
            status,
            crate::routes::json_body(&json!({ "error": self.to_string() })),
        )
            .into_response();
        if let Some(allowed) = allow {
            response
                .headers_mut()
                .insert(header::ALLOW, HeaderValue::from_static(allowed));
        }
        response
    }
}
