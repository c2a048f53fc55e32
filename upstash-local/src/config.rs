//! Command-line flags and environment variables of the `upstash-local` binary.

use std::fmt;
use std::net::SocketAddr;

use clap::Parser;

/// Default listen address: loopback only, so the server is never reachable from the network
/// unless asked for explicitly.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8079";
/// Default Redis URL: the project's local `redis-server` on port 6380.
pub const DEFAULT_REDIS_URL: &str = "redis://127.0.0.1:6380";
/// Default request body limit: 10 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: usize = 10 * 1024 * 1024;

/// Configuration of the server, read from flags or the matching environment variables.
///
/// `Debug` is implemented by hand so that tokens never reach a log.
#[derive(Clone, Parser)]
#[command(
    name = "upstash-local",
    version,
    about = "A local server speaking Upstash's Redis REST API, proxying to a real redis-server."
)]
pub struct Config {
    /// Address to listen on (host:port). Binds loopback by default.
    #[arg(long, env = "UPSTASH_LOCAL_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Redis server to proxy to (redis://[user:password@]host:port[/db]).
    #[arg(long, env = "UPSTASH_LOCAL_REDIS_URL", default_value = DEFAULT_REDIS_URL)]
    pub redis_url: String,

    /// Token with full access (Authorization: Bearer TOKEN, or ?_token=TOKEN).
    #[arg(long, env = "UPSTASH_LOCAL_TOKEN", hide_env_values = true)]
    pub token: String,

    /// Optional token that may run read commands only (like Upstash's "Read Only" token).
    #[arg(long, env = "UPSTASH_LOCAL_READ_ONLY_TOKEN", hide_env_values = true)]
    pub read_only_token: Option<String>,

    /// Largest accepted request body in bytes; larger requests answer 413.
    #[arg(long, env = "UPSTASH_LOCAL_MAX_REQUEST_BYTES", default_value_t = DEFAULT_MAX_REQUEST_BYTES)]
    pub max_request_bytes: usize,
}

impl Config {
    /// Checks what clap cannot: tokens must be non-empty and distinct.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token.is_empty() {
            return Err(ConfigError::EmptyToken("--token / UPSTASH_LOCAL_TOKEN"));
        }
        if let Some(read_only) = &self.read_only_token {
            if read_only.is_empty() {
                return Err(ConfigError::EmptyToken(
                    "--read-only-token / UPSTASH_LOCAL_READ_ONLY_TOKEN",
                ));
            }
            if read_only == &self.token {
                return Err(ConfigError::SameTokens);
            }
        }
        Ok(())
    }

    /// The Redis URL with any password replaced by `***`, safe to print.
    pub fn redis_url_redacted(&self) -> String {
        redact_url(&self.redis_url)
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("listen", &self.listen)
            .field("redis_url", &self.redis_url_redacted())
            .field("token", &"***")
            .field(
                "read_only_token",
                &self.read_only_token.as_ref().map(|_| "***"),
            )
            .field("max_request_bytes", &self.max_request_bytes)
            .finish()
    }
}

/// A configuration that parsed but cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A token flag was given an empty value.
    #[error("{0} must not be empty")]
    EmptyToken(&'static str),
    /// The read-only token equals the full-access token, which would make it full-access.
    #[error("--read-only-token must differ from --token")]
    SameTokens,
}

/// Replaces the userinfo part (`user:password@`) of a URL with `***@`.
fn redact_url(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{scheme}://***@{}", &rest[at + 1..]),
        None => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        Config::try_parse_from(std::iter::once("upstash-local").chain(args.iter().copied()))
            .expect("flags parse")
    }

    #[test]
    fn defaults_bind_loopback() {
        let config = parse(&["--token", "t"]);
        assert_eq!(config.listen.to_string(), DEFAULT_LISTEN);
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.redis_url, DEFAULT_REDIS_URL);
        assert_eq!(config.max_request_bytes, 10 * 1024 * 1024);
        assert!(config.read_only_token.is_none());
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn debug_and_redaction_hide_secrets() {
        let config = parse(&[
            "--token",
            "sekrit-token",
            "--redis-url",
            "redis://user:pw@localhost:6380/0",
        ]);
        let shown = format!("{config:?}");
        assert!(!shown.contains("sekrit-token"), "{shown}");
        assert!(!shown.contains("pw@"), "{shown}");
        assert_eq!(config.redis_url_redacted(), "redis://***@localhost:6380/0");
    }

    #[test]
    fn rejects_empty_or_equal_tokens() {
        assert!(parse(&["--token", ""]).validate().is_err());
        let same = parse(&["--token", "a", "--read-only-token", "a"]);
        assert_eq!(same.validate(), Err(ConfigError::SameTokens));
    }
}
