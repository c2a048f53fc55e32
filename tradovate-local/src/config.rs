//! Command-line flags and environment variables of the `tradovate-local` binary. The
//! defaults are Tradovate's documented figures (partner docs: authentication, rate limits).

use std::net::SocketAddr;

use clap::Parser;

/// Default listen address: loopback only (the admin switches answer loopback peers only).
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8088";
/// A token lives 80 minutes (`expirationTime` = issue + 80 min).
pub const DEFAULT_TOKEN_LIFETIME_SECONDS: u64 = 80 * 60;
/// `renewaccesstoken`: 15 requests per rolling hour per client address, successes counted.
pub const DEFAULT_RENEW_LIMIT_PER_HOUR: u32 = 15;
/// `accesstokenrequest`: 5 failed requests per rolling hour per client address.
pub const DEFAULT_ACCESS_LIMIT_PER_HOUR: u32 = 5;
/// Back-off of both endpoints once their limit is exceeded (`p-time`, seconds).
pub const DEFAULT_BACKOFF_SECONDS: u64 = 15;
/// A user has at most two sessions: a third login closes the oldest.
pub const DEFAULT_MAX_SESSIONS_PER_USER: usize = 2;

/// Configuration of the server, read from flags or the matching environment variables.
#[derive(Clone, Debug, Parser)]
#[command(
    name = "tradovate-local",
    version,
    about = "A local stand-in for Tradovate's auth endpoints (accesstokenrequest, renewaccesstoken)."
)]
pub struct Config {
    /// Address to listen on (host:port). Binds loopback by default.
    #[arg(long, env = "TRADOVATE_LOCAL_LISTEN", default_value = DEFAULT_LISTEN)]
    pub listen: SocketAddr,

    /// Lifetime of every token minted or renewed, in seconds.
    #[arg(long, env = "TRADOVATE_LOCAL_TOKEN_LIFETIME_SECONDS", default_value_t = DEFAULT_TOKEN_LIFETIME_SECONDS)]
    pub token_lifetime_seconds: u64,

    /// renewaccesstoken requests allowed per rolling hour per client address.
    #[arg(long, env = "TRADOVATE_LOCAL_RENEW_LIMIT_PER_HOUR", default_value_t = DEFAULT_RENEW_LIMIT_PER_HOUR)]
    pub renew_limit_per_hour: u32,

    /// Failed accesstokenrequest requests allowed per rolling hour per client address.
    #[arg(long, env = "TRADOVATE_LOCAL_ACCESS_LIMIT_PER_HOUR", default_value_t = DEFAULT_ACCESS_LIMIT_PER_HOUR)]
    pub access_limit_per_hour: u32,

    /// Penalty (`p-time`, seconds) for the first violation of a limit; repeated violations
    /// within the hour multiply it.
    #[arg(long, env = "TRADOVATE_LOCAL_BACKOFF_SECONDS", default_value_t = DEFAULT_BACKOFF_SECONDS)]
    pub backoff_seconds: u64,

    /// Sessions a user may hold at once; a login beyond it closes the oldest.
    #[arg(long, env = "TRADOVATE_LOCAL_MAX_SESSIONS_PER_USER", default_value_t = DEFAULT_MAX_SESSIONS_PER_USER)]
    pub max_sessions_per_user: usize,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: DEFAULT_LISTEN.parse().expect("valid default address"),
            token_lifetime_seconds: DEFAULT_TOKEN_LIFETIME_SECONDS,
            renew_limit_per_hour: DEFAULT_RENEW_LIMIT_PER_HOUR,
            access_limit_per_hour: DEFAULT_ACCESS_LIMIT_PER_HOUR,
            backoff_seconds: DEFAULT_BACKOFF_SECONDS,
            max_sessions_per_user: DEFAULT_MAX_SESSIONS_PER_USER,
        }
    }
}

/// A configuration that parsed but cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    /// A number that must be positive is zero.
    #[error("{0} must be at least 1")]
    Zero(&'static str),
}

impl Config {
    /// Checks what clap cannot: the figures must be positive.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token_lifetime_seconds == 0 {
            return Err(ConfigError::Zero("--token-lifetime-seconds"));
        }
        if self.max_sessions_per_user == 0 {
            return Err(ConfigError::Zero("--max-sessions-per-user"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_the_documented_figures_on_loopback() {
        let config = Config::try_parse_from(["tradovate-local"]).unwrap();
        assert!(config.listen.ip().is_loopback());
        assert_eq!(config.token_lifetime_seconds, 4800);
        assert_eq!(
            (config.renew_limit_per_hour, config.access_limit_per_hour),
            (15, 5)
        );
        assert_eq!(config.validate(), Ok(()));
        let zero =
            Config::try_parse_from(["tradovate-local", "--token-lifetime-seconds", "0"]).unwrap();
        assert!(zero.validate().is_err());
    }
}
