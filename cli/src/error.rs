//! Everything that can go wrong in one tokenctl run, and the exit code each maps to.

use std::time::Duration;

use crate::config::ConfigError;

/// Exit code for success.
pub const EXIT_OK: i32 = 0;
/// Exit code when the API answered with an error (or with something tokenctl can't use).
pub const EXIT_API: i32 = 1;
/// Exit code for usage or configuration problems.
pub const EXIT_USAGE: i32 = 2;
/// Exit code when the Worker could not be reached (connection refused, DNS, timeout).
pub const EXIT_NETWORK: i32 = 3;

/// An error answer from the Worker (`api_model::ErrorBody`), or from something in front of it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{status} ({code}): {message}{}", hint_suffix(*.status))]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The API's snake_case code (or `http_<status>` when the body was not the API's).
    pub code: String,
    /// The API's message (or a cut of the body when it was not the API's JSON).
    pub message: String,
    /// The body exactly as received, for `--json`.
    pub body: Vec<u8>,
}

impl ApiError {
    /// Builds the error from a non-2xx answer: the Worker's `{"error": {"code", "message"}}`,
    /// or, for bodies that are not (a proxy's HTML page, an empty body), `http_<status>`
    /// with the start of the body.
    pub fn from_response(status: u16, body: Vec<u8>) -> Self {
        let (code, message) = match serde_json::from_slice::<api_model::ErrorBody>(&body) {
            Ok(api) => (api.error.code, api.error.message),
            Err(_) => {
                let text = String::from_utf8_lossy(&body);
                let text = text.trim();
                let message = if text.is_empty() {
                    default_reason(status).to_string()
                } else {
                    cut(text, 200)
                };
                (format!("http_{status}"), message)
            }
        };
        ApiError {
            status,
            code,
            message,
            body,
        }
    }

    /// A hint for statuses where the fix is usually on the caller's side.
    pub fn hint(&self) -> Option<&'static str> {
        hint(self.status)
    }
}

fn hint(status: u16) -> Option<&'static str> {
    match status {
        401 => Some("check --api-key-file / TOKEN_MANAGER_API_KEY"),
        403 => Some(
            "sync and cleanup need the admin key; the read key only allows status, get and list",
        ),
        409 => Some("another sync is running; try again in a moment"),
        503 => Some("the Worker is missing configuration; see its logs and secrets"),
        _ => None,
    }
}

fn hint_suffix(status: u16) -> String {
    hint(status)
        .map(|h| format!(" [hint: {h}]"))
        .unwrap_or_default()
}

fn default_reason(status: u16) -> &'static str {
    match status {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        409 => "Conflict",
        410 => "Gone",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "no message",
    }
}

/// Shortens `text` to at most `max` characters, marking the cut with `…`.
pub fn cut(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let mut s: String = text.chars().take(max).collect();
        s.push('…');
        s
    }
}

/// Why the Worker could not be reached.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NetworkError {
    /// TCP connect or DNS failed.
    #[error(
        "could not connect to {url}: {cause}. Is the Worker running there? \
         Check --url / TOKEN_MANAGER_URL"
    )]
    Connect {
        /// The URL we tried (never carries the key).
        url: String,
        /// The lowest-level cause, e.g. "Connection refused (os error 111)".
        cause: String,
    },
    /// No complete answer within `--timeout`.
    #[error("no answer from {url} within {}s; raise --timeout or check the Worker", .after.as_secs_f64())]
    Timeout {
        /// The URL we tried.
        url: String,
        /// The limit.
        after: Duration,
    },
    /// Anything else on the wire (TLS, connection reset, malformed HTTP).
    #[error("request to {url} failed: {cause}")]
    Other {
        /// The URL we tried.
        url: String,
        /// The cause.
        cause: String,
    },
}

/// A failed tokenctl run.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// Bad arguments that clap could not catch (e.g. an empty account name).
    #[error("usage error: {0}")]
    Usage(String),
    /// Missing or unusable configuration.
    #[error("configuration error: {0}")]
    Config(#[from] ConfigError),
    /// The API answered with an error status.
    #[error("API error {0}")]
    Api(ApiError),
    /// The API answered 2xx with something tokenctl cannot read.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
    /// The Worker could not be reached.
    #[error("network error: {0}")]
    Network(NetworkError),
    /// The API answered 2xx but reported failure (`success: false`, unhealthy).
    #[error("{0}")]
    Failed(String),
    /// Writing the output failed (other than a closed pipe).
    #[error("cannot write output: {0}")]
    Output(std::io::Error),
}

impl CliError {
    /// The process exit code: 1 API error, 2 usage/configuration, 3 network.
    pub fn exit_code(&self) -> i32 {
        match self {
            CliError::Usage(_) | CliError::Config(_) => EXIT_USAGE,
            CliError::Api(_)
            | CliError::Unexpected(_)
            | CliError::Failed(_)
            | CliError::Output(_) => EXIT_API,
            CliError::Network(_) => EXIT_NETWORK,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exit_codes_follow_the_contract() {
        assert_eq!(CliError::Usage("x".into()).exit_code(), 2);
        assert_eq!(CliError::Config(ConfigError::MissingUrl).exit_code(), 2);
        for status in [400, 401, 403, 404, 405, 409, 410, 502, 503] {
            let e = CliError::Api(ApiError::from_response(status, Vec::new()));
            assert_eq!(e.exit_code(), 1, "{status}");
        }
        assert_eq!(CliError::Unexpected("x".into()).exit_code(), 1);
        assert_eq!(CliError::Failed("sync failed: x".into()).exit_code(), 1);
        let net = [
            NetworkError::Connect {
                url: "u".into(),
                cause: "refused".into(),
            },
            NetworkError::Timeout {
                url: "u".into(),
                after: Duration::from_secs(1),
            },
            NetworkError::Other {
                url: "u".into(),
                cause: "reset".into(),
            },
        ];
        for n in net {
            assert_eq!(CliError::Network(n).exit_code(), 3);
        }
    }

    #[test]
    fn parses_the_api_error_shape() {
        let body =
            br#"{"error":{"code":"token_expired","message":"Token for X expired at T; run sync"}}"#;
        let e = ApiError::from_response(410, body.to_vec());
        assert_eq!(e.code, "token_expired");
        assert_eq!(e.message, "Token for X expired at T; run sync");
        assert_eq!(e.body, body.to_vec());
        assert_eq!(
            CliError::Api(e).to_string(),
            "API error 410 (token_expired): Token for X expired at T; run sync"
        );
        // What the Worker serialises is what tokenctl reads.
        let worker = serde_json::to_vec(&api_model::ErrorBody::new("unauthorized", "no key"))
            .expect("serialises");
        let e = ApiError::from_response(401, worker);
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("unauthorized", "no key")
        );
        assert!(CliError::Api(e)
            .to_string()
            .ends_with("no key [hint: check --api-key-file / TOKEN_MANAGER_API_KEY]"));
    }

    #[test]
    fn bodies_from_something_else_keep_their_status_and_text() {
        let e = ApiError::from_response(502, b"<html>Bad gateway</html>".to_vec());
        assert_eq!(e.code, "http_502");
        assert_eq!(e.message, "<html>Bad gateway</html>");

        let e = ApiError::from_response(404, Vec::new());
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("http_404", "Not Found")
        );

        // Not the Worker's shape: shown as text, not guessed at.
        let e = ApiError::from_response(400, br#"{"error":"plain string"}"#.to_vec());
        assert_eq!(
            (e.code.as_str(), e.message.as_str()),
            ("http_400", r#"{"error":"plain string"}"#)
        );

        let long = "x".repeat(500);
        let e = ApiError::from_response(500, long.into_bytes());
        assert_eq!(e.message.chars().count(), 201);
    }

    #[test]
    fn network_messages_name_the_url_and_the_fix() {
        let e = CliError::Network(NetworkError::Connect {
            url: "http://127.0.0.1:9/v1/status".into(),
            cause: "Connection refused (os error 111)".into(),
        });
        let s = e.to_string();
        assert!(s.contains("http://127.0.0.1:9/v1/status") && s.contains("TOKEN_MANAGER_URL"));
        let e = NetworkError::Timeout {
            url: "u".into(),
            after: Duration::from_millis(1500),
        };
        assert!(e.to_string().contains("within 1.5s"));
    }
}
