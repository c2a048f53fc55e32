//! Typed configuration, read from the Worker's vars and secrets (or any lookup natively).
//!
//! A missing or malformed setting is a [`ConfigError`] naming it; the HTTP layer answers 503
//! with that message instead of panicking.

use std::fmt;

use crate::crypto::{constant_time_eq, Keyring};
use crate::domain::access::AccountScope;
use crate::domain::account::AccountName;
use crate::tradovate::Environment;

/// Redis glob used when `TOKEN_KEY_PATTERNS` is not set.
pub const DEFAULT_KEY_PATTERN: &str = "token:*";
/// Cron expression that runs a sync unless `SYNC_CRON` says otherwise (wrangler.toml).
pub const DEFAULT_SYNC_CRON: &str = "*/30 * * * *";
/// Cron expression that runs a cleanup unless `CLEANUP_CRON` says otherwise (wrangler.toml).
pub const DEFAULT_CLEANUP_CRON: &str = "0 2 * * *";
/// Shortest API key accepted: anything weaker answers 503 naming the setting.
pub const MIN_API_KEY_LEN: usize = 32;
/// Cron expression that runs a renew pass unless `RENEW_CRON` says otherwise (wrangler.toml).
pub const DEFAULT_RENEW_CRON: &str = "*/5 * * * *";
/// Tradovate's demo environment (`TRADOVATE_DEMO_URL` default).
pub const DEFAULT_TRADOVATE_DEMO_URL: &str = "https://demo.tradovateapi.com/v1";
/// Tradovate's live environment (`TRADOVATE_LIVE_URL` default).
pub const DEFAULT_TRADOVATE_LIVE_URL: &str = "https://live.tradovateapi.com/v1";
/// Tradovate's documented limit for `renewaccesstoken`: 15 requests per rolling hour. The
/// hourly budget may not exceed it.
pub const TRADOVATE_RENEW_LIMIT_PER_HOUR: u64 = 15;

/// A setting that is missing or malformed; the message names it and says how to fix it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("setting {name} is missing: set it with `wrangler secret put {name}` (or in .dev.vars locally)")]
    Missing { name: &'static str },
    #[error("setting {name} is invalid: {reason}")]
    Invalid { name: &'static str, reason: String },
}

/// A secret string whose `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }
    /// The value, for the one place that must send it (an HTTP header, a comparison).
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// One configured API key: its name (for logs and the audit), the secret, and the accounts
/// it may read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// `name:` before the key, else `admin-XXXXXXXX` / `read-XXXXXXXX`: a short keyed
    /// fingerprint of the key ([`crate::crypto::key_fingerprint`]), never the key.
    pub name: String,
    pub secret: Secret,
    /// `@MAIN|MAIN` after a read key; admin keys always see every account.
    pub accounts: AccountScope,
}

/// The admin and read keys, checked together: names are unique and no key is in both lists.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKeys {
    /// Keys allowed to call every route (several allow rotation without downtime).
    pub admin: Vec<ApiKey>,
    /// Keys allowed to call status, get and list (each possibly limited to main accounts).
    pub read: Vec<ApiKey>,
}

/// Everything the jobs and the HTTP layer need, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// PostgREST base URL (`SUPABASE_REST_URL`, else `SUPABASE_URL` + `/rest/v1`).
    pub supabase_rest_url: String,
    pub supabase_service_role_key: Secret,
    pub upstash_url: String,
    pub upstash_token: Secret,
    /// The API keys callers present.
    pub api_keys: ApiKeys,
    pub keyring: Keyring,
    /// Redis globs whose keys hold tokens; each ends with `*`.
    pub key_patterns: Vec<String>,
    /// Tokens per Redis pipeline and per PostgREST upsert.
    pub batch_size: usize,
    /// COUNT of the first SCAN page; sparse pages grow the next ([`crate::upstash::ScanPace`]).
    pub scan_count: usize,
    /// Window for `expiring_soon` in status, in seconds.
    pub expiring_soon_seconds: i64,
    /// How long the sync lock lives if a run dies without releasing it.
    pub lock_ttl_ms: u64,
    /// How long one Upstash or PostgREST request may take before the job gives up.
    pub upstream_timeout_ms: u64,
    /// Days `sync_runs` rows are kept; the daily cleanup deletes older ones.
    pub sync_runs_retention_days: u64,
    pub sync_cron: String,
    pub cleanup_cron: String,
    /// A sync suspects a Redis loss when more than this percentage of the active, unexpired
    /// tokens' keys vanished at once (`REDIS_LOSS_THRESHOLD`, 1–100, default 50).
    pub redis_loss_threshold_percent: u64,
    /// ... and at least this many of them (`REDIS_LOSS_MIN_MISSING`, default 3), so one key of
    /// two is not a loss. An empty Redis is a loss whatever the counts.
    pub redis_loss_min_missing: usize,
    /// Whether a sync that suspects a loss restores the tokens in the same invocation
    /// (`RESTORE_ON_LOSS`, default true).
    pub restore_on_loss: bool,
    /// The TTL a restore gives tokens whose expiry is unknown, when asked to include them
    /// (`RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS`; unset: they are never restored).
    pub restore_unknown_expiry_ttl_ms: Option<u64>,
    /// Subrequests one invocation may make (`SUBREQUEST_BUDGET`, default 50: the Workers free
    /// plan); a restore stops before exceeding it and reports what it deferred.
    pub subrequest_budget: usize,
    /// `AUDIT_REQUIRED=true`: a token read fails closed (503) when its audit row cannot be
    /// written, and the row is written before answering. Default false: written after.
    pub audit_required: bool,
    /// Days the audit trail keeps a read (`AUDIT_RETENTION_DAYS`, default 90); the daily
    /// cleanup deletes older rows.
    pub audit_retention_days: u32,
    pub renew_cron: String,
    /// Token renewal against Tradovate (opt-in).
    pub renew: RenewSettings,
    /// Webhooks alerts go to (none: alerts are off).
    pub alerts: AlertSettings,
}

/// What an alert body looks like (`ALERT_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AlertFormat {
    /// The event as JSON (`id`, `type`, `summary`, `accounts`, `run_id`, ...): for programs.
    #[default]
    Json,
    /// A Slack incoming webhook's `{"text": ..., "blocks": [...]}`.
    Slack,
    /// A Discord webhook's `{"content": ..., "embeds": [...]}`.
    Discord,
}

impl AlertFormat {
    /// The setting's value for this format.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertFormat::Json => "json",
            AlertFormat::Slack => "slack",
            AlertFormat::Discord => "discord",
        }
    }
}

/// One webhook URL: https, or http to a loopback host. Slack and Discord URLs carry their
/// secret in the path, so `Debug` (and every log line) shows only the host.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookUrl {
    url: String,
    host: String,
}

impl WebhookUrl {
    /// The whole URL, for the one place that sends to it.
    pub fn expose(&self) -> &str {
        &self.url
    }
    /// The host (and port), safe to log and to answer.
    pub fn host(&self) -> &str {
        &self.host
    }
}

impl fmt::Debug for WebhookUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "WebhookUrl({}/***)", self.host)
    }
}

/// Where and how alerts are sent.
#[derive(Debug, Clone, Default)]
pub struct AlertSettings {
    /// `ALERT_WEBHOOK_URL`, comma-separated; empty: alerts are off.
    pub urls: Vec<WebhookUrl>,
    /// `ALERT_WEBHOOK_SECRET`: signs every body (HMAC-SHA256) when set.
    pub secret: Option<Secret>,
    /// `ALERT_FORMAT`.
    pub format: AlertFormat,
    /// How long delivering one invocation's alerts may take, every URL and retry included
    /// (`UPSTREAM_TIMEOUT_MS`).
    pub timeout_ms: u64,
}

impl AlertSettings {
    /// True when at least one webhook is configured.
    pub fn enabled(&self) -> bool {
        !self.urls.is_empty()
    }
}

/// Settings of the renew pass.
#[derive(Debug, Clone)]
pub struct RenewSettings {
    /// `RENEW_ENABLED`: off unless set to true.
    pub enabled: bool,
    /// `TRADOVATE_DEMO_URL`, without a trailing slash.
    pub demo_url: String,
    /// `TRADOVATE_LIVE_URL`, without a trailing slash.
    pub live_url: String,
    /// `TRADOVATE_ENV`: the environment of every main account not listed as live.
    pub default_environment: Environment,
    /// `TRADOVATE_LIVE_ACCOUNTS`: main accounts in the live environment whatever the default.
    pub live_accounts: Vec<String>,
    /// `RENEW_BEFORE_MINUTES`, in seconds: tokens expiring within this are renewed.
    pub before_seconds: i64,
    /// `RENEW_HOURLY_BUDGET`: renewals per rolling hour for the whole deployment.
    pub hourly_budget: u64,
    /// `RENEW_MIN_INTERVAL_MINUTES`, in seconds: a session is not tried again sooner.
    pub min_interval_seconds: i64,
}

impl RenewSettings {
    /// The environment of `main_account`'s tokens.
    pub fn environment_for(&self, main_account: &str) -> Environment {
        if self.live_accounts.iter().any(|a| a == main_account) {
            Environment::Live
        } else {
            self.default_environment
        }
    }

    /// Tradovate's base URL (`{base}` in the docs) for `environment`.
    pub fn base_url(&self, environment: Environment) -> &str {
        match environment {
            Environment::Demo => &self.demo_url,
            Environment::Live => &self.live_url,
        }
    }
}

impl Config {
    /// Reads and validates every setting through `lookup` (the Worker's env, or a map in tests).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let required = |name: &'static str| get(name).ok_or(ConfigError::Missing { name });

        let (supabase_rest_url, supabase_local) = match get("SUPABASE_REST_URL") {
            Some(url) => http_url("SUPABASE_REST_URL", &url)?,
            None => {
                let (url, local) = http_url("SUPABASE_URL", &required("SUPABASE_URL")?)?;
                (format!("{url}/rest/v1"), local)
            }
        };
        let (upstash_url, upstash_local) = http_url(
            "UPSTASH_REDIS_REST_URL",
            &required("UPSTASH_REDIS_REST_URL")?,
        )?;
        let previous = get("TOKEN_ENCRYPTION_PREVIOUS_KEYS").unwrap_or_default();
        let previous: Vec<&str> = list(&previous).collect();
        let current = required("TOKEN_ENCRYPTION_KEY")?;
        let keyring = Keyring::from_base64(&current, &previous)
            .map_err(|e| invalid(e.slot().setting(), e.to_string()))?;
        let api_keys = ApiKeys::from_lookup(&lookup)?;
        if !(supabase_local && upstash_local) {
            refuse_local_only_values(&keyring, &current, &api_keys)?;
        }
        let key_patterns = match get("TOKEN_KEY_PATTERNS") {
            Some(v) => list(&v).map(key_pattern).collect::<Result<Vec<_>, _>>()?,
            None => vec![DEFAULT_KEY_PATTERN.to_string()],
        };
        if key_patterns.is_empty() {
            return Err(invalid(
                "TOKEN_KEY_PATTERNS",
                "list at least one pattern, e.g. token:*",
            ));
        }
        let renew = RenewSettings {
            enabled: boolean("RENEW_ENABLED", get("RENEW_ENABLED"), false)?,
            demo_url: match get("TRADOVATE_DEMO_URL") {
                Some(url) => http_url("TRADOVATE_DEMO_URL", &url)?.0,
                None => DEFAULT_TRADOVATE_DEMO_URL.to_string(),
            },
            live_url: match get("TRADOVATE_LIVE_URL") {
                Some(url) => http_url("TRADOVATE_LIVE_URL", &url)?.0,
                None => DEFAULT_TRADOVATE_LIVE_URL.to_string(),
            },
            default_environment: match get("TRADOVATE_ENV") {
                Some(v) => Environment::parse(&v).ok_or_else(|| {
                    invalid("TRADOVATE_ENV", format!("expected demo or live, got {v:?}"))
                })?,
                None => Environment::Demo,
            },
            live_accounts: match get("TRADOVATE_LIVE_ACCOUNTS") {
                Some(v) => list(&v)
                    .map(|a| {
                        AccountName::parse(a)
                            .map(AccountName::into_string)
                            .map_err(|e| invalid("TRADOVATE_LIVE_ACCOUNTS", format!("{a:?}: {e}")))
                    })
                    .collect::<Result<_, _>>()?,
                None => Vec::new(),
            },
            before_seconds: number(
                "RENEW_BEFORE_MINUTES",
                get("RENEW_BEFORE_MINUTES"),
                15,
                1,
                1440,
            )? as i64
                * 60,
            hourly_budget: number(
                "RENEW_HOURLY_BUDGET",
                get("RENEW_HOURLY_BUDGET"),
                10,
                1,
                TRADOVATE_RENEW_LIMIT_PER_HOUR,
            )?,
            min_interval_seconds: number(
                "RENEW_MIN_INTERVAL_MINUTES",
                get("RENEW_MIN_INTERVAL_MINUTES"),
                30,
                1,
                1440,
            )? as i64
                * 60,
        };
        let upstream_timeout_ms = number(
            "UPSTREAM_TIMEOUT_MS",
            get("UPSTREAM_TIMEOUT_MS"),
            10_000,
            100,
            120_000,
        )?;
        let alerts = alert_settings(&get, upstream_timeout_ms)?;
        Ok(Self {
            alerts,
            renew,
            renew_cron: get("RENEW_CRON").unwrap_or_else(|| DEFAULT_RENEW_CRON.to_string()),
            supabase_rest_url,
            supabase_service_role_key: Secret::new(required("SUPABASE_SERVICE_ROLE_KEY")?),
            upstash_url,
            upstash_token: Secret::new(required("UPSTASH_REDIS_REST_TOKEN")?),
            api_keys,
            keyring,
            key_patterns,
            batch_size: number("SYNC_BATCH_SIZE", get("SYNC_BATCH_SIZE"), 1000, 1, 5000)? as usize,
            scan_count: number("SCAN_COUNT", get("SCAN_COUNT"), 1000, 10, 10_000)? as usize,
            expiring_soon_seconds: number(
                "EXPIRING_SOON_MINUTES",
                get("EXPIRING_SOON_MINUTES"),
                10,
                0,
                10_080,
            )? as i64
                * 60,
            lock_ttl_ms: number(
                "SYNC_LOCK_TTL_SECONDS",
                get("SYNC_LOCK_TTL_SECONDS"),
                120,
                5,
                3600,
            )? * 1000,
            upstream_timeout_ms,
            sync_runs_retention_days: number(
                "SYNC_RUNS_RETENTION_DAYS",
                get("SYNC_RUNS_RETENTION_DAYS"),
                90,
                1,
                3650,
            )?,
            sync_cron: get("SYNC_CRON").unwrap_or_else(|| DEFAULT_SYNC_CRON.to_string()),
            cleanup_cron: get("CLEANUP_CRON").unwrap_or_else(|| DEFAULT_CLEANUP_CRON.to_string()),
            redis_loss_threshold_percent: percent(
                "REDIS_LOSS_THRESHOLD",
                get("REDIS_LOSS_THRESHOLD"),
                50,
            )?,
            redis_loss_min_missing: number(
                "REDIS_LOSS_MIN_MISSING",
                get("REDIS_LOSS_MIN_MISSING"),
                3,
                1,
                1_000_000,
            )? as usize,
            restore_on_loss: boolean("RESTORE_ON_LOSS", get("RESTORE_ON_LOSS"), true)?,
            restore_unknown_expiry_ttl_ms: match get("RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS") {
                Some(v) => Some(
                    number(
                        "RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS",
                        Some(v),
                        0,
                        1,
                        30 * 86_400,
                    )? * 1000,
                ),
                None => None,
            },
            subrequest_budget: number(
                "SUBREQUEST_BUDGET",
                get("SUBREQUEST_BUDGET"),
                50,
                10,
                100_000,
            )? as usize,
            audit_required: boolean("AUDIT_REQUIRED", get("AUDIT_REQUIRED"), false)?,
            audit_retention_days: number(
                "AUDIT_RETENTION_DAYS",
                get("AUDIT_RETENTION_DAYS"),
                90,
                1,
                3650,
            )? as u32,
        })
    }
}

/// The configuration as the Worker loaded it, plus the API keys whenever they are usable on
/// their own: a caller can then be authenticated, and told which setting is wrong, while
/// another setting is broken. Unauthenticated callers only learn "not configured".
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Result<Config, ConfigError>,
    /// The keys to authenticate callers with: all of them when they parse, else the admin
    /// keys alone when those do, else none.
    pub keys: Option<ApiKeys>,
}

impl Loaded {
    /// Reads every setting through `lookup`, like [`Config::from_lookup`].
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Loaded {
        let config = Config::from_lookup(&lookup);
        let keys = match &config {
            Ok(config) => Some(config.api_keys.clone()),
            Err(_) => ApiKeys::from_lookup(&lookup).ok().or_else(|| {
                let admin = lookup(ADMIN_KEYS)?;
                let admin = api_keys(ADMIN_KEYS, &admin).ok()?;
                Some(ApiKeys {
                    admin,
                    read: Vec::new(),
                })
            }),
        };
        Loaded { config, keys }
    }
}

impl From<Result<Config, ConfigError>> for Loaded {
    fn from(config: Result<Config, ConfigError>) -> Loaded {
        let keys = config.as_ref().ok().map(|c| c.api_keys.clone());
        Loaded { config, keys }
    }
}

impl From<Config> for Loaded {
    fn from(config: Config) -> Loaded {
        Loaded::from(Ok(config))
    }
}

fn invalid(name: &'static str, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid {
        name,
        reason: reason.into(),
    }
}

/// Comma-separated items, trimmed, empty ones dropped.
fn list(value: &str) -> impl Iterator<Item = &str> {
    value.split(',').map(str::trim).filter(|s| !s.is_empty())
}

/// The URL without trailing slashes, and whether its host is loopback. `http://` is accepted
/// only for a loopback host: anything else must be `https://`.
fn http_url(name: &'static str, value: &str) -> Result<(String, bool), ConfigError> {
    let value = value.trim().trim_end_matches('/');
    let url = reqwest::Url::parse(value)
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .ok_or_else(|| {
            invalid(
                name,
                "expected an https URL such as https://example.supabase.co",
            )
        })?;
    let local = is_loopback(&url);
    if url.scheme() == "http" && !local {
        return Err(invalid(
            name,
            "http:// is allowed only for a loopback host (127.0.0.0/8, ::1, localhost); use https:// so the secrets sent to it are encrypted",
        ));
    }
    Ok((value.to_string(), local))
}

/// Whether `url` names this machine: `localhost`, 127.0.0.0/8 or ::1 (the only hosts plain
/// `http://` is accepted for).
fn is_loopback(url: &reqwest::Url) -> bool {
    let host = url.host_str().unwrap_or_default();
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// The alert settings: `ALERT_WEBHOOK_URL` (comma-separated, each https or loopback http),
/// `ALERT_WEBHOOK_SECRET`, `ALERT_FORMAT`.
fn alert_settings(
    get: &impl Fn(&'static str) -> Option<String>,
    timeout_ms: u64,
) -> Result<AlertSettings, ConfigError> {
    const URLS: &str = "ALERT_WEBHOOK_URL";
    let mut urls = Vec::new();
    for value in list(&get(URLS).unwrap_or_default()) {
        let parsed = reqwest::Url::parse(value)
            .ok()
            .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
            .ok_or_else(|| {
                invalid(
                    URLS,
                    format!(
                        "item {} is not a URL: expected https://hooks.slack.com/services/…, https://discord.com/api/webhooks/… or your own https endpoint",
                        urls.len() + 1
                    ),
                )
            })?;
        let host = match parsed.port() {
            Some(port) => format!("{}:{port}", parsed.host_str().unwrap_or_default()),
            None => parsed.host_str().unwrap_or_default().to_string(),
        };
        if parsed.scheme() == "http" && !is_loopback(&parsed) {
            return Err(invalid(
                URLS,
                format!("{host}: http:// is allowed only for a loopback host; use https:// (webhook URLs and bodies must be encrypted in transit)"),
            ));
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(invalid(
                URLS,
                format!("{host}: credentials in the URL are not supported; use ALERT_WEBHOOK_SECRET to sign the bodies"),
            ));
        }
        if urls.iter().any(|u: &WebhookUrl| u.url == parsed.as_str()) {
            return Err(invalid(
                URLS,
                format!("{host}: the same URL is listed twice"),
            ));
        }
        urls.push(WebhookUrl {
            url: parsed.to_string(),
            host,
        });
    }
    if urls.len() > 5 {
        return Err(invalid(URLS, "list at most 5 webhook URLs"));
    }
    let format = match get("ALERT_FORMAT").map(|v| v.trim().to_ascii_lowercase()) {
        None => AlertFormat::Json,
        Some(v) => match v.as_str() {
            "json" => AlertFormat::Json,
            "slack" => AlertFormat::Slack,
            "discord" => AlertFormat::Discord,
            _ => {
                return Err(invalid(
                    "ALERT_FORMAT",
                    format!("expected json, slack or discord, got {v:?}"),
                ))
            }
        },
    };
    let secret = get("ALERT_WEBHOOK_SECRET").map(|v| v.trim().to_string());
    if let Some(secret) = &secret {
        if secret.len() < 16 {
            return Err(invalid(
                "ALERT_WEBHOOK_SECRET",
                "use at least 16 characters (e.g. `openssl rand -hex 32`)",
            ));
        }
    }
    Ok(AlertSettings {
        urls,
        secret: secret.map(Secret::new),
        format,
        timeout_ms,
    })
}

/// The committed development settings (`.dev.vars.example`): refused unless every upstream
/// is on this machine.
const DEV_VARS: &str = include_str!("../.dev.vars.example");

/// A value `.dev.vars.example` sets for `name` (none for `@…@` placeholders).
fn dev_value(name: &str) -> Option<&'static str> {
    DEV_VARS
        .lines()
        .filter_map(|line| line.strip_prefix(name)?.strip_prefix('='))
        .map(str::trim)
        .find(|v| !v.is_empty() && !v.contains('@'))
}

/// Refuses, for upstreams that are not all loopback, the committed dev API keys and dev
/// encryption key, and an encryption key whose 32 bytes are all printable ASCII (typed text,
/// not `openssl rand`: a random key is that by chance with probability (95/256)^32 ≈ 1.6e-14).
fn refuse_local_only_values(
    keyring: &Keyring,
    current: &str,
    api_keys: &ApiKeys,
) -> Result<(), ConfigError> {
    const WHY: &str = "committed in .dev.vars.example and allowed only while every upstream URL is loopback; generate a real one";
    for (setting, key) in api_keys.all() {
        if dev_value(setting) == Some(key.secret.expose()) {
            return Err(invalid(
                setting,
                format!(
                    "key {:?} is the development key {WHY} with `openssl rand -base64 32`",
                    key.name
                ),
            ));
        }
    }
    let dev_key = dev_value("TOKEN_ENCRYPTION_KEY")
        .and_then(|dev| Keyring::from_base64(dev, &[]).ok())
        .map(|dev| dev.current_key_id().to_string());
    let ids = std::iter::once(keyring.current_key_id()).chain(keyring.previous_key_ids());
    if let Some(dev_key) = dev_key {
        if ids.into_iter().any(|id| id == dev_key) {
            return Err(invalid(
                "TOKEN_ENCRYPTION_KEY",
                format!("the development encryption key is {WHY} with `openssl rand -base64 32` (keep the dev key in TOKEN_ENCRYPTION_PREVIOUS_KEYS only locally)"),
            ));
        }
    }
    if printable_ascii_key(current) {
        return Err(invalid(
            "TOKEN_ENCRYPTION_KEY",
            "the key decodes to printable text, i.e. a passphrase rather than 32 random bytes; generate one with `openssl rand -base64 32`",
        ));
    }
    Ok(())
}

/// True when `b64` decodes (standard or url-safe alphabet, padding optional) to bytes that are
/// all printable ASCII.
fn printable_ascii_key(b64: &str) -> bool {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    let unpadded = b64.trim().trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(unpadded)
        .or_else(|_| URL_SAFE_NO_PAD.decode(unpadded))
        .is_ok_and(|bytes| bytes.iter().all(|b| (0x20..=0x7e).contains(b)))
}

fn key_pattern(pattern: &str) -> Result<String, ConfigError> {
    let prefix = pattern.strip_suffix('*').unwrap_or(pattern);
    if !pattern.ends_with('*') || prefix.is_empty() || prefix.contains(['*', '?', '[', ']', '\\']) {
        return Err(invalid(
            "TOKEN_KEY_PATTERNS",
            format!("pattern {pattern:?} must be a literal prefix followed by one trailing *, e.g. token:*"),
        ));
    }
    Ok(pattern.to_string())
}

/// The settings that hold API keys.
const ADMIN_KEYS: &str = "TOKEN_MANAGER_ADMIN_KEY";
const READ_KEYS: &str = "TOKEN_MANAGER_READ_KEY";

impl ApiKeys {
    /// Reads `TOKEN_MANAGER_ADMIN_KEY` (required) and `TOKEN_MANAGER_READ_KEY` (optional):
    /// comma-separated entries `[name:]key[@MAIN|MAIN…]`. A key is at least
    /// [`MIN_API_KEY_LEN`] characters and holds none of `, : @ |`; a name is 1 to 64 of
    /// `A-Z a-z 0-9 _ - .`. Only read keys take `@…`. Errors name the setting and the entry's
    /// position, never a key.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<ApiKeys, ConfigError> {
        let get = |name: &'static str| lookup(name).filter(|v| !v.trim().is_empty());
        let admin = api_keys(
            ADMIN_KEYS,
            &get(ADMIN_KEYS).ok_or(ConfigError::Missing { name: ADMIN_KEYS })?,
        )?;
        let read = match get(READ_KEYS) {
            Some(v) => api_keys(READ_KEYS, &v)?,
            None => Vec::new(),
        };
        let keys = ApiKeys { admin, read };
        keys.check_distinct()?;
        Ok(keys)
    }

    /// Every key with the setting it came from.
    pub fn all(&self) -> impl Iterator<Item = (&'static str, &ApiKey)> {
        let admin = self.admin.iter().map(|k| (ADMIN_KEYS, k));
        admin.chain(self.read.iter().map(|k| (READ_KEYS, k)))
    }

    fn check_distinct(&self) -> Result<(), ConfigError> {
        let all: Vec<_> = self.all().collect();
        for (i, (setting, key)) in all.iter().enumerate() {
            for (other_setting, other) in &all[..i] {
                if constant_time_eq(
                    key.secret.expose().as_bytes(),
                    other.secret.expose().as_bytes(),
                ) && setting != other_setting
                {
                    return Err(invalid(
                        READ_KEYS,
                        format!(
                            "read key {:?} is also listed in {ADMIN_KEYS} (as {:?}); a key is either read or admin: give each caller its own key",
                            key.name, other.name
                        ),
                    ));
                }
                if key.name == other.name {
                    return Err(invalid(
                        setting,
                        format!(
                            "the key name {:?} is used twice; give each key its own name",
                            key.name
                        ),
                    ));
                }
            }
        }
        Ok(())
    }
}

fn api_keys(setting: &'static str, value: &str) -> Result<Vec<ApiKey>, ConfigError> {
    let prefix = if setting == ADMIN_KEYS {
        "admin"
    } else {
        "read"
    };
    let keys = list(value)
        .enumerate()
        .map(|(i, entry)| api_key(setting, prefix, i + 1, entry))
        .collect::<Result<Vec<_>, _>>()?;
    if keys.is_empty() {
        return Err(ConfigError::Missing { name: setting });
    }
    Ok(keys)
}

/// One `[name:]key[@MAIN|MAIN…]` entry, the `position`-th (from 1) of `setting`.
fn api_key(
    setting: &'static str,
    prefix: &str,
    position: usize,
    entry: &str,
) -> Result<ApiKey, ConfigError> {
    let bad = |reason: String| invalid(setting, format!("key #{position}: {reason}"));
    let (rest, accounts) = match entry.split_once('@') {
        None => (entry, AccountScope::All),
        Some(_) if setting == ADMIN_KEYS => {
            return Err(bad(
                "admin keys see every account; remove the @… (scope read keys instead)".into(),
            ))
        }
        Some((rest, list)) => (
            rest,
            AccountScope::parse(list).map_err(|e| bad(e.to_string()))?,
        ),
    };
    let (name, secret) = match rest.split_once(':') {
        Some((name, secret)) => {
            let valid = (1..=64).contains(&name.len())
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !valid {
                return Err(bad(
                    "the name before : must be 1 to 64 letters, digits, _ - or .".into(),
                ));
            }
            (name.to_string(), secret.trim())
        }
        // An unnamed key is named by a short keyed fingerprint (stable when keys are
        // reordered, added or removed; never the key).
        None => (
            format!("{prefix}-{}", crate::crypto::key_fingerprint(rest.trim())),
            rest.trim(),
        ),
    };
    if secret.contains(['|', ':', '@']) {
        return Err(bad(
            "a key may not contain | : or @ (they separate the name and the accounts)".into(),
        ));
    }
    if secret.chars().count() < MIN_API_KEY_LEN {
        return Err(bad(format!(
            "the key is shorter than {MIN_API_KEY_LEN} characters; generate one with `openssl rand -base64 32`"
        )));
    }
    Ok(ApiKey {
        name,
        secret: Secret::new(secret),
        accounts,
    })
}

fn number(
    name: &'static str,
    value: Option<String>,
    default: u64,
    min: u64,
    max: u64,
) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(invalid(
            name,
            format!("expected a whole number from {min} to {max}, got {value:?}"),
        )),
    }
}

/// A percentage from 1 to 100, written `50` or `50%`.
fn percent(name: &'static str, value: Option<String>, default: u64) -> Result<u64, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    let digits = value.trim().trim_end_matches('%').trim_end();
    match digits.parse::<u64>() {
        Ok(n) if (1..=100).contains(&n) => Ok(n),
        _ => Err(invalid(
            name,
            format!("expected a percentage from 1 to 100 such as 50 or 50%, got {value:?}"),
        )),
    }
}

/// `true`/`false` (also `1`/`0`, `yes`/`no`, `on`/`off`, any case).
fn boolean(name: &'static str, value: Option<String>, default: bool) -> Result<bool, ConfigError> {
    let Some(value) = value else {
        return Ok(default);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Ok(true),
        "false" | "0" | "no" | "off" => Ok(false),
        _ => Err(invalid(
            name,
            format!("expected true or false, got {value:?}"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// Bytes 0..32: not printable, not the dev key.
    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn base() -> HashMap<&'static str, String> {
        HashMap::from([
            ("SUPABASE_URL", "https://abc.supabase.co".to_string()),
            ("SUPABASE_SERVICE_ROLE_KEY", "service-role-jwt".to_string()),
            (
                "UPSTASH_REDIS_REST_URL",
                "https://eu1.upstash.io/".to_string(),
            ),
            ("UPSTASH_REDIS_REST_TOKEN", "upstash-token".to_string()),
            ("TOKEN_MANAGER_ADMIN_KEY", "a".repeat(32)),
            ("TOKEN_MANAGER_READ_KEY", "r".repeat(40)),
            ("TOKEN_ENCRYPTION_KEY", KEY.to_string()),
        ])
    }

    fn load(vars: &HashMap<&'static str, String>) -> Result<Config, ConfigError> {
        Config::from_lookup(|name| vars.get(name).cloned())
    }

    #[test]
    fn defaults_fill_everything_optional() {
        let c = load(&base()).unwrap();
        assert_eq!(c.supabase_rest_url, "https://abc.supabase.co/rest/v1");
        assert_eq!(c.upstash_url, "https://eu1.upstash.io");
        assert_eq!(c.key_patterns, vec!["token:*"]);
        assert_eq!(
            (c.batch_size, c.scan_count, c.expiring_soon_seconds),
            (1000, 1000, 600)
        );
        assert_eq!(c.sync_cron, DEFAULT_SYNC_CRON);
        assert_eq!(c.upstream_timeout_ms, 10_000);
        assert!(!c.renew.enabled, "renewal is opt-in");
        assert_eq!(c.renew_cron, DEFAULT_RENEW_CRON);
        assert_eq!(
            (
                c.renew.before_seconds,
                c.renew.hourly_budget,
                c.renew.min_interval_seconds
            ),
            (900, 10, 1800)
        );
        assert_eq!(
            c.renew.base_url(Environment::Demo),
            DEFAULT_TRADOVATE_DEMO_URL
        );
        assert_eq!(c.renew.environment_for("APEX_1"), Environment::Demo);
        assert_eq!(
            (c.redis_loss_threshold_percent, c.redis_loss_min_missing),
            (50, 3)
        );
        assert!(c.restore_on_loss);
        assert_eq!(c.restore_unknown_expiry_ttl_ms, None);
        assert_eq!(c.subrequest_budget, 50);
    }

    #[test]
    fn loss_and_restore_settings_parse() {
        let mut vars = base();
        vars.insert("REDIS_LOSS_THRESHOLD", "30%".to_string());
        vars.insert("RESTORE_ON_LOSS", "off".to_string());
        vars.insert("RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS", "3600".to_string());
        let c = load(&vars).unwrap();
        assert_eq!(c.redis_loss_threshold_percent, 30);
        assert!(!c.restore_on_loss);
        assert_eq!(c.restore_unknown_expiry_ttl_ms, Some(3_600_000));
    }

    #[test]
    fn renewal_settings_parse_and_refuse() {
        let mut vars = base();
        vars.insert("RENEW_ENABLED", "TRUE".into());
        vars.insert("TRADOVATE_ENV", "live".into());
        vars.insert("TRADOVATE_DEMO_URL", "http://127.0.0.1:8088/v1/".into());
        vars.insert("TRADOVATE_LIVE_ACCOUNTS", "APEX_136189, APEX_266668".into());
        let c = load(&vars).unwrap();
        assert!(c.renew.enabled);
        assert_eq!(c.renew.demo_url, "http://127.0.0.1:8088/v1");
        assert_eq!(c.renew.environment_for("APEX_1"), Environment::Live);
        vars.insert("TRADOVATE_ENV", "demo".into());
        let c = load(&vars).unwrap();
        assert_eq!(c.renew.environment_for("APEX_266668"), Environment::Live);
        assert_eq!(c.renew.environment_for("APEX_1"), Environment::Demo);
        for (name, value) in [
            ("RENEW_ENABLED", "sometimes"),
            ("TRADOVATE_ENV", "prod"),
            ("TRADOVATE_LIVE_URL", "live"),
            ("TRADOVATE_LIVE_ACCOUNTS", "APEX 1"),
            ("RENEW_BEFORE_MINUTES", "0"),
            ("RENEW_HOURLY_BUDGET", "16"),
            ("RENEW_MIN_INTERVAL_MINUTES", "x"),
        ] {
            let mut vars = base();
            vars.insert(name, value.to_string());
            let err = load(&vars).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { name: n, .. } if *n == name),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn each_required_setting_is_named_when_missing() {
        for name in [
            "SUPABASE_URL",
            "SUPABASE_SERVICE_ROLE_KEY",
            "UPSTASH_REDIS_REST_URL",
            "UPSTASH_REDIS_REST_TOKEN",
            "TOKEN_MANAGER_ADMIN_KEY",
            "TOKEN_ENCRYPTION_KEY",
        ] {
            let mut vars = base();
            vars.remove(name);
            assert_eq!(
                load(&vars).unwrap_err(),
                ConfigError::Missing { name },
                "{name}"
            );
        }
    }

    #[test]
    fn short_api_keys_are_refused_by_name() {
        let mut vars = base();
        vars.insert(
            "TOKEN_MANAGER_READ_KEY",
            format!("{},tiny-key-xyz", "r".repeat(40)),
        );
        let err = load(&vars).unwrap_err();
        assert!(
            matches!(
                err,
                ConfigError::Invalid {
                    name: "TOKEN_MANAGER_READ_KEY",
                    ..
                }
            ),
            "{err}"
        );
        assert!(err.to_string().contains("key #2"), "{err}");
        assert!(
            !err.to_string().contains("tiny-key-xyz"),
            "the key itself must not be echoed: {err}"
        );
    }

    #[test]
    fn several_keys_per_scope_are_accepted() {
        let mut vars = base();
        vars.insert(
            "TOKEN_MANAGER_ADMIN_KEY",
            format!("{}, {}", "a".repeat(32), "b".repeat(32)),
        );
        assert_eq!(load(&vars).unwrap().api_keys.admin.len(), 2);
    }

    #[test]
    fn malformed_values_are_named() {
        for (name, value) in [
            ("SUPABASE_URL", "not a url"),
            ("UPSTASH_REDIS_REST_URL", "ftp://x"),
            ("TOKEN_ENCRYPTION_KEY", "c2hvcnQ="),
            ("TOKEN_KEY_PATTERNS", "token:"),
            ("TOKEN_KEY_PATTERNS", "tok*en:*"),
            ("SYNC_BATCH_SIZE", "0"),
            ("SCAN_COUNT", "lots"),
            ("UPSTREAM_TIMEOUT_MS", "5"),
            ("REDIS_LOSS_THRESHOLD", "0"),
            ("REDIS_LOSS_THRESHOLD", "150%"),
            ("REDIS_LOSS_MIN_MISSING", "0"),
            ("RESTORE_ON_LOSS", "maybe"),
            ("RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS", "0"),
            ("SUBREQUEST_BUDGET", "5"),
        ] {
            let mut vars = base();
            vars.insert(name, value.to_string());
            let err = load(&vars).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { name: n, .. } if *n == name),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn alert_settings_parse_into_urls_that_never_show_their_path() {
        let mut vars = base();
        let c = load(&vars).unwrap();
        assert!(!c.alerts.enabled());
        assert_eq!(c.alerts.format, AlertFormat::Json);
        vars.insert(
            "ALERT_WEBHOOK_URL",
            " https://hooks.slack.com/services/T0/B0/path-secret , http://127.0.0.1:9000/hook?k=query-secret ,".into(),
        );
        vars.insert("ALERT_WEBHOOK_SECRET", "0123456789abcdef-signing".into());
        vars.insert("ALERT_FORMAT", "Slack".into());
        let c = load(&vars).unwrap();
        let hosts: Vec<&str> = c.alerts.urls.iter().map(WebhookUrl::host).collect();
        assert_eq!(hosts, ["hooks.slack.com", "127.0.0.1:9000"]);
        assert_eq!(
            c.alerts.urls[1].expose(),
            "http://127.0.0.1:9000/hook?k=query-secret"
        );
        assert_eq!(c.alerts.format, AlertFormat::Slack);
        assert_eq!(c.alerts.timeout_ms, c.upstream_timeout_ms);
        let debug = format!("{c:?}");
        for secret in ["path-secret", "query-secret", "signing"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn bad_alert_settings_are_named_with_what_to_do() {
        for (name, value, says) in [
            (
                "ALERT_WEBHOOK_URL",
                "hooks.slack.com/services/x",
                "not a URL",
            ),
            (
                "ALERT_WEBHOOK_URL",
                "http://hooks.example.com/x",
                "loopback",
            ),
            ("ALERT_WEBHOOK_URL", "ftp://example.com/x", "not a URL"),
            (
                "ALERT_WEBHOOK_URL",
                "https://u:p@example.com/x",
                "credentials",
            ),
            (
                "ALERT_WEBHOOK_URL",
                "https://a.example/x,https://a.example/x",
                "twice",
            ),
            ("ALERT_FORMAT", "teams", "json, slack or discord"),
            ("ALERT_WEBHOOK_SECRET", "short", "16 characters"),
        ] {
            let mut vars = base();
            vars.insert(name, value.to_string());
            let err = load(&vars).unwrap_err();
            assert!(
                matches!(&err, ConfigError::Invalid { name: n, .. } if *n == name),
                "{name}: {err}"
            );
            assert!(err.to_string().contains(says), "{name}={value}: {err}");
            assert!(!err.to_string().contains("/x"), "no URL path in {err}");
        }
    }

    #[test]
    fn rest_url_override_wins_and_debug_hides_secrets() {
        let mut vars = base();
        vars.insert("SUPABASE_REST_URL", "http://127.0.0.1:54321".to_string());
        let c = load(&vars).unwrap();
        assert_eq!(c.supabase_rest_url, "http://127.0.0.1:54321");
        let debug = format!("{c:?}");
        assert!(
            !debug.contains("upstash-token")
                && !debug.contains("service-role-jwt")
                && !debug.contains(&"a".repeat(32))
        );
    }

    fn loopback(mut vars: HashMap<&'static str, String>) -> HashMap<&'static str, String> {
        vars.insert("SUPABASE_URL", "http://127.0.0.1:54321".into());
        vars.insert("UPSTASH_REDIS_REST_URL", "http://localhost:8079".into());
        vars
    }

    fn invalid_setting(vars: &HashMap<&'static str, String>) -> (&'static str, String) {
        match load(vars).unwrap_err() {
            ConfigError::Invalid { name, reason } => (name, reason),
            other => panic!("{other}"),
        }
    }

    #[test]
    fn committed_dev_values_only_serve_loopback_upstreams() {
        for (name, value) in [
            (
                "TOKEN_MANAGER_ADMIN_KEY",
                dev_value("TOKEN_MANAGER_ADMIN_KEY").unwrap(),
            ),
            (
                "TOKEN_MANAGER_READ_KEY",
                dev_value("TOKEN_MANAGER_READ_KEY").unwrap(),
            ),
            (
                "TOKEN_ENCRYPTION_KEY",
                dev_value("TOKEN_ENCRYPTION_KEY").unwrap(),
            ),
        ] {
            let mut vars = base();
            vars.insert(name, value.to_string());
            let (setting, reason) = invalid_setting(&vars);
            assert_eq!(setting, name, "{reason}");
            assert!(
                reason.contains(".dev.vars.example") && !reason.contains(value),
                "{reason}"
            );
            assert!(load(&loopback(vars)).is_ok(), "{name} locally");
        }
        // The dev encryption key as a previous key is refused too.
        let mut vars = base();
        vars.insert(
            "TOKEN_ENCRYPTION_PREVIOUS_KEYS",
            dev_value("TOKEN_ENCRYPTION_KEY").unwrap().to_string(),
        );
        assert_eq!(invalid_setting(&vars).0, "TOKEN_ENCRYPTION_KEY");
    }

    #[test]
    fn a_passphrase_shaped_encryption_key_only_serves_loopback_upstreams() {
        use base64::Engine as _;
        let typed =
            base64::engine::general_purpose::STANDARD.encode("correct horse battery staple 12!");
        let mut vars = base();
        vars.insert("TOKEN_ENCRYPTION_KEY", typed);
        let (setting, reason) = invalid_setting(&vars);
        assert_eq!(setting, "TOKEN_ENCRYPTION_KEY");
        assert!(reason.contains("printable"), "{reason}");
        assert!(load(&loopback(vars)).is_ok());
        // Exactly 32 bytes, whatever the alphabet or padding.
        let mut vars = base();
        vars.insert(
            "TOKEN_ENCRYPTION_KEY",
            "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHg==".into(),
        );
        assert_eq!(invalid_setting(&vars).0, "TOKEN_ENCRYPTION_KEY");
    }

    #[test]
    fn plain_http_only_for_loopback_hosts() {
        for url in [
            "http://abc.supabase.co",
            "http://10.0.0.1:54321",
            "http://127.example.com",
        ] {
            let mut vars = base();
            vars.insert("SUPABASE_URL", url.into());
            let (setting, reason) = invalid_setting(&vars);
            assert_eq!(setting, "SUPABASE_URL", "{url}");
            assert!(reason.contains("https://"), "{reason}");
        }
        for url in [
            "http://127.0.0.1:1",
            "http://127.8.9.10",
            "http://[::1]:80",
            "http://LOCALHOST",
        ] {
            let mut vars = base();
            vars.insert("UPSTASH_REDIS_REST_URL", url.into());
            assert!(load(&vars).is_ok(), "{url}");
        }
    }

    #[test]
    fn a_key_both_read_and_admin_is_refused_naming_both_settings() {
        let mut vars = base();
        vars.insert("TOKEN_MANAGER_READ_KEY", format!("bot:{}", "a".repeat(32)));
        let (setting, reason) = invalid_setting(&vars);
        assert_eq!(setting, "TOKEN_MANAGER_READ_KEY");
        assert!(
            reason.contains("TOKEN_MANAGER_ADMIN_KEY") && reason.contains("\"bot\""),
            "{reason}"
        );
        assert!(!reason.contains(&"a".repeat(32)), "{reason}");
        // The keys that still parse authenticate the operator, who then learns the setting.
        let loaded = Loaded::from_lookup(|name| vars.get(name).cloned());
        assert!(loaded.config.is_err());
        let admin = &loaded.keys.unwrap().admin[0];
        assert_eq!(admin.name, unnamed("admin", admin.secret.expose()));
    }

    /// The name of an unnamed key: its kind and a short keyed fingerprint, never the key.
    fn unnamed(kind: &str, key: &str) -> String {
        let name = format!("{kind}-{}", crate::crypto::key_fingerprint(key));
        assert!(!name.contains(key));
        name
    }

    #[test]
    fn keys_carry_names_and_read_keys_main_accounts() {
        let mut vars = base();
        vars.insert(
            "TOKEN_MANAGER_READ_KEY",
            format!(
                "bot-eu:{}@APEX_136189|APEX_272045, {}",
                "e".repeat(32),
                "r".repeat(40)
            ),
        );
        let keys = load(&vars).unwrap().api_keys;
        assert_eq!(keys.admin[0].name, unnamed("admin", &"a".repeat(32)));
        let (eu, plain) = (&keys.read[0], &keys.read[1]);
        assert_eq!(
            (eu.name.as_str(), eu.secret.expose()),
            ("bot-eu", "e".repeat(32).as_str())
        );
        assert!(eu.accounts.allows("APEX_272045") && !eu.accounts.allows("APEX_266668"));
        assert_eq!(
            (plain.name.as_str(), &plain.accounts),
            (
                unnamed("read", &"r".repeat(40)).as_str(),
                &AccountScope::All
            )
        );
        for bad in [
            format!("{}@APEX_1", "a".repeat(32)),
            format!("x:{}, x:{}", "b".repeat(32), "c".repeat(32)),
            format!("bad name:{}", "b".repeat(32)),
        ] {
            let mut vars = base();
            vars.insert("TOKEN_MANAGER_ADMIN_KEY", bad.clone());
            assert_eq!(invalid_setting(&vars).0, "TOKEN_MANAGER_ADMIN_KEY", "{bad}");
        }
        let mut vars = base();
        vars.insert(
            "TOKEN_MANAGER_READ_KEY",
            format!("{}@APEX_1|(x)", "b".repeat(32)),
        );
        assert_eq!(invalid_setting(&vars).0, "TOKEN_MANAGER_READ_KEY");
    }
}
