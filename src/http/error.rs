//! API errors: each has an HTTP status, a snake_case code and a message saying what to do.

use serde_json::json;

use crate::config::ConfigError;
use crate::jobs::JobError;

/// An error answer of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiError {
    Unauthorized,
    Forbidden,
    BadRequest { code: &'static str, message: String },
    NotFound { code: &'static str, message: String },
    MethodNotAllowed { allow: &'static str },
    PayloadTooLarge { limit: usize },
    Conflict(String),
    Gone { code: &'static str, message: String },
    Upstream { code: &'static str, message: String },
    Unavailable { code: &'static str, message: String },
}

impl ApiError {
    /// The HTTP status code.
    pub fn status(&self) -> u16 {
        match self {
            ApiError::Unauthorized => 401,
            ApiError::Forbidden => 403,
            ApiError::BadRequest { .. } => 400,
            ApiError::NotFound { .. } => 404,
            ApiError::MethodNotAllowed { .. } => 405,
            ApiError::PayloadTooLarge { .. } => 413,
            ApiError::Conflict(_) => 409,
            ApiError::Gone { .. } => 410,
            ApiError::Upstream { .. } => 502,
            ApiError::Unavailable { .. } => 503,
        }
    }

    /// The machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Unauthorized => "unauthorized",
            ApiError::Forbidden => "forbidden",
            ApiError::MethodNotAllowed { .. } => "method_not_allowed",
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::Conflict(_) => "sync_in_progress",
            ApiError::BadRequest { code, .. }
            | ApiError::NotFound { code, .. }
            | ApiError::Gone { code, .. }
            | ApiError::Upstream { code, .. }
            | ApiError::Unavailable { code, .. } => code,
        }
    }

    /// The human message.
    pub fn message(&self) -> String {
        match self {
            ApiError::Unauthorized => {
                "missing or unknown API key: send `Authorization: Bearer <key>` with a read or admin key".into()
            }
            ApiError::Forbidden => "this API key may only read (status, get, list); use the admin key".into(),
            ApiError::MethodNotAllowed { allow } => format!("method not allowed here; use {allow}"),
            ApiError::PayloadTooLarge { limit } => format!("request body larger than {limit} bytes"),
            ApiError::Conflict(m) => m.clone(),
            ApiError::BadRequest { message, .. }
            | ApiError::NotFound { message, .. }
            | ApiError::Gone { message, .. }
            | ApiError::Upstream { message, .. }
            | ApiError::Unavailable { message, .. } => message.clone(),
        }
    }

    /// The JSON body: `{"error": {"code", "message"}}`.
    pub fn body(&self) -> String {
        json!({ "error": { "code": self.code(), "message": self.message() } }).to_string()
    }
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
            JobError::SyncInProgress { .. } => ApiError::Conflict(message),
            JobError::InvalidAccount { .. } => ApiError::BadRequest {
                code: "invalid_account",
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
