//! API errors: each has an HTTP status, a snake_case code and a message saying what to do,
//! all three decided in [`ApiError::parts`].

use std::borrow::Cow;

use http::{Method, StatusCode};

use crate::config::ConfigError;
use crate::jobs::JobError;

/// An error answer of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    /// No key, or a key that is not configured (401).
    Unauthorized,
    /// A read key on a route that needs the admin key (403).
    Forbidden,
    /// Bad query parameters, action or account name (400).
    BadRequest { code: &'static str, message: String },
    /// No such route, or no such account for this caller (404).
    NotFound { code: &'static str, message: String },
    /// The route exists but not with this method (405, `Allow` lists `allow`).
    MethodNotAllowed { allow: &'static [Method] },
    /// The declared body is larger than `limit` bytes (413); it was not read.
    PayloadTooLarge { limit: usize },
    /// A job that must not overlap itself is already running (409).
    AlreadyRunning { code: &'static str, message: String },
    /// The token exists but is expired or inactive (410).
    Gone { code: &'static str, message: String },
    /// Upstash or Supabase failed (502).
    Upstream { code: &'static str, message: String },
    /// The Worker's configuration is missing or unusable, or a stored token cannot be
    /// decrypted (503).
    Unavailable { code: &'static str, message: String },
}

impl ApiError {
    /// The status, code and message: the one place that decides them.
    pub fn parts(&self) -> (StatusCode, &'static str, Cow<'_, str>) {
        use ApiError::*;
        match self {
            Unauthorized => (
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "missing or unknown API key: send `Authorization: Bearer <key>` with a read or admin key".into(),
            ),
            Forbidden => (
                StatusCode::FORBIDDEN,
                "forbidden",
                "this API key may only read (status, get, list); use the admin key".into(),
            ),
            MethodNotAllowed { allow } => (
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                format!("method not allowed here; use {}", allow_header(allow)).into(),
            ),
            PayloadTooLarge { limit } => (
                StatusCode::PAYLOAD_TOO_LARGE,
                "payload_too_large",
                format!("request body larger than {limit} bytes; no route takes a body").into(),
            ),
            BadRequest { code, message } => (StatusCode::BAD_REQUEST, code, message.into()),
            NotFound { code, message } => (StatusCode::NOT_FOUND, code, message.into()),
            AlreadyRunning { code, message } => (StatusCode::CONFLICT, code, message.into()),
            Gone { code, message } => (StatusCode::GONE, code, message.into()),
            Upstream { code, message } => (StatusCode::BAD_GATEWAY, code, message.into()),
            Unavailable { code, message } => {
                (StatusCode::SERVICE_UNAVAILABLE, code, message.into())
            }
        }
    }

    /// The HTTP status code.
    pub fn status(&self) -> StatusCode {
        self.parts().0
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        self.parts().1
    }

    /// The human message.
    pub fn message(&self) -> String {
        self.parts().2.into_owned()
    }

    /// The JSON body: `{"error": {"code", "message"}}`.
    pub fn body(&self) -> String {
        let (_, code, message) = self.parts();
        let body = api_model::ErrorBody::new(code, message);
        serde_json::to_string(&body).expect("an error body serialises")
    }

    /// The `Allow` header value of a 405.
    pub fn allow(&self) -> Option<String> {
        match self {
            ApiError::MethodNotAllowed { allow } => Some(allow_header(allow)),
            _ => None,
        }
    }
}

/// Methods as an `Allow` header lists them: `GET, POST`.
pub fn allow_header(methods: &[Method]) -> String {
    methods
        .iter()
        .map(Method::as_str)
        .collect::<Vec<_>>()
        .join(", ")
}

impl From<ConfigError> for ApiError {
    fn from(e: ConfigError) -> Self {
        ApiError::Unavailable {
            code: "configuration_error",
            message: e.to_string(),
        }
    }
}

impl From<JobError> for ApiError {
    fn from(e: JobError) -> Self {
        let message = e.to_string();
        match e {
            JobError::Upstash(_) => ApiError::Upstream {
                code: "upstash_error",
                message,
            },
            JobError::Store(_) => ApiError::Upstream {
                code: "supabase_error",
                message,
            },
            JobError::SyncInProgress { .. } => ApiError::AlreadyRunning {
                code: "sync_in_progress",
                message,
            },
            JobError::RenewInProgress { .. } => ApiError::AlreadyRunning {
                code: "renew_in_progress",
                message,
            },
            JobError::RenewDisabled => ApiError::Unavailable {
                code: "renewal_disabled",
                message,
            },
            JobError::InvalidAccount { .. } => ApiError::BadRequest {
                code: "invalid_account",
                message,
            },
            JobError::OutOfRange { .. } => ApiError::BadRequest {
                code: "invalid_query",
                message,
            },
            JobError::UnknownAccount(_) => ApiError::NotFound {
                code: "account_not_found",
                message,
            },
            JobError::Expired(_) => ApiError::Gone {
                code: "token_expired",
                message,
            },
            JobError::Inactive(_) => ApiError::Gone {
                code: "token_inactive",
                message,
            },
            JobError::Decrypt { .. } => ApiError::Unavailable {
                code: "decryption_failed",
                message,
            },
        }
    }
}
