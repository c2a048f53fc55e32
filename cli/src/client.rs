//! The HTTP side: which route each command calls, and one blocking request with timeout,
//! bearer auth, and (for read commands only) one retry on connection errors.

use std::time::Duration;

use reqwest::blocking::Client as Http;
use reqwest::{Method, Url};

use crate::config::{ApiKey, Settings};
use crate::error::{ApiError, CliError, NetworkError};

/// Filters for `GET /v1/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListFilter {
    /// `main_account=`
    pub main_account: Option<String>,
    /// `active=true|false`
    pub active: Option<bool>,
    /// `expiring_within=` in seconds.
    pub expiring_within_secs: Option<u64>,
}

/// What `tokenctl restore` asks for.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RestoreOptions {
    /// `dry_run=true`: only list what would be written.
    pub dry_run: bool,
    /// `include_unknown_expiry=true`.
    pub include_unknown_expiry: bool,
}

/// Filters for `GET /v1/audit`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditFilter {
    /// `account=`
    pub account: Option<String>,
    /// `key=`
    pub key: Option<String>,
    /// `since=` (sent as RFC 3339).
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// `until=`
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// `limit=`
    pub limit: Option<u16>,
}

/// One API call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Call {
    /// `POST /v1/sync` (admin key).
    Sync,
    /// `GET /v1/status`.
    Status,
    /// `GET /v1/tokens/{account}`.
    Get(String),
    /// `GET /v1/tokens?...`.
    List(ListFilter),
    /// `POST /v1/cleanup` (admin key).
    Cleanup,
    /// `POST /v1/restore[?dry_run=true][&include_unknown_expiry=true]` (admin key).
    Restore(RestoreOptions),
    /// `POST /v1/renew[?dry_run=true]` (admin key).
    Renew { dry_run: bool },
    /// `GET /v1/accounts`.
    Accounts,
    /// `GET /v1/audit?...` (admin key).
    Audit(AuditFilter),
    /// `GET /health` (no key).
    Health,
}

impl Call {
    /// The HTTP method.
    pub fn method(&self) -> Method {
        match self {
            Call::Sync | Call::Cleanup | Call::Restore(_) | Call::Renew { .. } => Method::POST,
            _ => Method::GET,
        }
    }

    /// The subcommand's name, for messages.
    pub fn name(&self) -> &'static str {
        match self {
            Call::Sync => "sync",
            Call::Status => "status",
            Call::Get(_) => "get",
            Call::List(_) => "list",
            Call::Cleanup => "cleanup",
            Call::Restore(_) => "restore",
            Call::Renew { .. } => "renew",
            Call::Accounts => "accounts",
            Call::Audit(_) => "audit",
            Call::Health => "health",
        }
    }

    /// Whether the route requires an API key.
    pub fn needs_key(&self) -> bool {
        !matches!(self, Call::Health)
    }

    /// Reads are safe to repeat; sync, cleanup, restore and renew are never retried (a
    /// restore's dry run is a read).
    pub fn is_read(&self) -> bool {
        match self {
            Call::Sync | Call::Cleanup | Call::Renew { .. } => false,
            Call::Restore(o) => o.dry_run,
            _ => true,
        }
    }

    /// What the spinner says while waiting.
    pub fn spinner_label(&self) -> &'static str {
        match self {
            Call::Sync => "Syncing tokens from Redis to Supabase…",
            Call::Status => "Fetching status…",
            Call::Get(_) => "Fetching token…",
            Call::List(_) => "Listing tokens…",
            Call::Cleanup => "Cleaning up expired tokens…",
            Call::Restore(o) if o.dry_run => "Checking what a restore would write…",
            Call::Restore(_) => "Restoring tokens to Redis…",
            Call::Renew { .. } => "Renewing tokens with Tradovate…",
            Call::Accounts => "Fetching account health…",
            Call::Audit(_) => "Fetching the audit trail…",
            Call::Health => "Checking health…",
        }
    }

    /// The full URL under `base` (which may have a path prefix). The account is one
    /// percent-encoded path segment, so `/`, `?`, `#`, `%` and spaces cannot change the route.
    pub fn url(&self, base: &Url) -> Url {
        let mut url = base.clone();
        url.set_query(None);
        url.set_fragment(None);
        {
            let mut segs = url
                .path_segments_mut()
                .expect("base URL was checked to be http(s) with a host");
            segs.pop_if_empty();
            match self {
                Call::Sync => {
                    segs.extend(["v1", "sync"]);
                }
                Call::Status => {
                    segs.extend(["v1", "status"]);
                }
                Call::Get(account) => {
                    segs.extend(["v1", "tokens", account.as_str()]);
                }
                Call::List(_) => {
                    segs.extend(["v1", "tokens"]);
                }
                Call::Cleanup => {
                    segs.extend(["v1", "cleanup"]);
                }
                Call::Restore(_) => {
                    segs.extend(["v1", "restore"]);
                }
                Call::Renew { .. } => {
                    segs.extend(["v1", "renew"]);
                }
                Call::Accounts => {
                    segs.extend(["v1", "accounts"]);
                }
                Call::Audit(_) => {
                    segs.extend(["v1", "audit"]);
                }
                Call::Health => {
                    segs.push("health");
                }
            }
        }
        if let Call::Restore(o) = self {
            if o.dry_run || o.include_unknown_expiry {
                let mut q = url.query_pairs_mut();
                if o.dry_run {
                    q.append_pair("dry_run", "true");
                }
                if o.include_unknown_expiry {
                    q.append_pair("include_unknown_expiry", "true");
                }
            }
        }
        if let Call::Renew { dry_run: true } = self {
            url.query_pairs_mut().append_pair("dry_run", "true");
        }
        if let Call::Audit(f) = self {
            let time = |t: &chrono::DateTime<chrono::Utc>| {
                t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)
            };
            let pairs = [
                ("account", f.account.clone()),
                ("key", f.key.clone()),
                ("since", f.since.as_ref().map(time)),
                ("until", f.until.as_ref().map(time)),
                ("limit", f.limit.map(|n| n.to_string())),
            ];
            if pairs.iter().any(|(_, v)| v.is_some()) {
                let mut q = url.query_pairs_mut();
                for (name, value) in &pairs {
                    if let Some(v) = value {
                        q.append_pair(name, v);
                    }
                }
            }
        }
        if let Call::List(f) = self {
            if f.main_account.is_some() || f.active.is_some() || f.expiring_within_secs.is_some() {
                let mut q = url.query_pairs_mut();
                if let Some(m) = &f.main_account {
                    q.append_pair("main_account", m);
                }
                if let Some(a) = f.active {
                    q.append_pair("active", if a { "true" } else { "false" });
                }
                if let Some(s) = f.expiring_within_secs {
                    q.append_pair("expiring_within", &s.to_string());
                }
            }
        }
        url
    }
}

/// Checks an account name before it goes into a path: not empty, not `.`/`..` (which URL
/// normalisation would swallow), no control characters.
pub fn validate_account(account: &str) -> Result<(), CliError> {
    if account.trim().is_empty() {
        return Err(CliError::Usage("the account name is empty".into()));
    }
    if account == "." || account == ".." {
        return Err(CliError::Usage(format!(
            "{account:?} is not an account name"
        )));
    }
    if account.chars().any(char::is_control) {
        return Err(CliError::Usage(
            "the account name contains control characters".into(),
        ));
    }
    Ok(())
}

/// A 2xx answer.
#[derive(Debug, Clone)]
pub struct Response {
    /// HTTP status.
    pub status: u16,
    /// The body exactly as received.
    pub body: Vec<u8>,
}

/// A configured API client.
pub struct Client {
    http: Http,
    base_url: Url,
    api_key: Option<ApiKey>,
    timeout: Duration,
    retry_delay: Duration,
}

impl Client {
    /// Builds a client; `timeout` bounds each attempt from connect to the last body byte.
    pub fn new(settings: &Settings, timeout: Duration) -> Result<Self, CliError> {
        let http = Http::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("tokenctl/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| {
                CliError::Unexpected(format!("cannot set up the HTTP client: {}", root_cause(&e)))
            })?;
        Ok(Client {
            http,
            base_url: settings.base_url.clone(),
            api_key: settings.api_key.clone(),
            timeout,
            retry_delay: Duration::from_millis(500),
        })
    }

    /// Performs `call`. Non-2xx answers become [`CliError::Api`]; failures to reach the Worker
    /// become [`CliError::Network`]. Read calls are retried once after a connection error.
    pub fn execute(&self, call: &Call) -> Result<Response, CliError> {
        let url = call.url(&self.base_url);
        let attempts = if call.is_read() { 2 } else { 1 };
        let mut last = None;
        for attempt in 0..attempts {
            if attempt > 0 {
                std::thread::sleep(self.retry_delay);
            }
            match self.once(call, &url) {
                Ok(resp) => return Ok(resp),
                Err(Failure::Connect(e)) => last = Some(e),
                Err(Failure::Final(e)) => return Err(e),
            }
        }
        Err(CliError::Network(last.expect("at least one attempt")))
    }

    fn once(&self, call: &Call, url: &Url) -> Result<Response, Failure> {
        let mut req = self
            .http
            .request(call.method(), url.clone())
            .header(reqwest::header::ACCEPT, "application/json");
        if call.needs_key() {
            if let Some(key) = &self.api_key {
                req = req.bearer_auth(key.expose());
            }
        }
        if call.method() == Method::POST {
            req = req.header(reqwest::header::CONTENT_LENGTH, "0");
        }
        let shown = shown_url(url);
        let resp = req.send().map_err(|e| self.classify(e, &shown))?;
        let status = resp.status().as_u16();
        let body = resp
            .bytes()
            .map_err(|e| match self.classify(e, &shown) {
                Failure::Connect(n) => Failure::Final(CliError::Network(n)),
                other => other,
            })?
            .to_vec();
        if (200..300).contains(&status) {
            Ok(Response { status, body })
        } else {
            Err(Failure::Final(CliError::Api(ApiError::from_response(
                status, body,
            ))))
        }
    }

    fn classify(&self, e: reqwest::Error, url: &str) -> Failure {
        let url = url.to_string();
        if e.is_timeout() {
            Failure::Final(CliError::Network(NetworkError::Timeout {
                url,
                after: self.timeout,
            }))
        } else if e.is_connect() {
            Failure::Connect(NetworkError::Connect {
                url,
                cause: root_cause(&e),
            })
        } else {
            Failure::Final(CliError::Network(NetworkError::Other {
                url,
                cause: root_cause(&e),
            }))
        }
    }
}

enum Failure {
    /// Worth one retry for reads.
    Connect(NetworkError),
    Final(CliError),
}

/// The URL as shown to people: no credentials (there are none; `config` refuses them) and no
/// fragment.
fn shown_url(url: &Url) -> String {
    let mut u = url.clone();
    u.set_fragment(None);
    u.to_string()
}

/// The innermost cause of an error, which is what a person can act on
/// ("Connection refused (os error 111)", "failed to lookup address information: ...").
fn root_cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut cur = e;
    while let Some(next) = cur.source() {
        cur = next;
    }
    cur.to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base(s: &str) -> Url {
        Url::parse(s).unwrap()
    }

    #[test]
    fn routes_and_methods() {
        let b = base("http://127.0.0.1:8787");
        let cases = [
            (Call::Sync, "POST", "http://127.0.0.1:8787/v1/sync"),
            (Call::Status, "GET", "http://127.0.0.1:8787/v1/status"),
            (
                Call::Get("APEX_136189".into()),
                "GET",
                "http://127.0.0.1:8787/v1/tokens/APEX_136189",
            ),
            (
                Call::List(ListFilter::default()),
                "GET",
                "http://127.0.0.1:8787/v1/tokens",
            ),
            (Call::Cleanup, "POST", "http://127.0.0.1:8787/v1/cleanup"),
            (
                Call::Restore(RestoreOptions::default()),
                "POST",
                "http://127.0.0.1:8787/v1/restore",
            ),
            (
                Call::Restore(RestoreOptions {
                    dry_run: true,
                    include_unknown_expiry: true,
                }),
                "POST",
                "http://127.0.0.1:8787/v1/restore?dry_run=true&include_unknown_expiry=true",
            ),
            (
                Call::Renew { dry_run: true },
                "POST",
                "http://127.0.0.1:8787/v1/renew?dry_run=true",
            ),
            (Call::Health, "GET", "http://127.0.0.1:8787/health"),
        ];
        for (call, method, url) in cases {
            assert_eq!(call.method().as_str(), method);
            assert_eq!(call.url(&b).as_str(), url);
        }
    }

    #[test]
    fn keeps_a_base_path_prefix() {
        let b = base("https://example.com/tm/");
        assert_eq!(
            Call::Status.url(&b).as_str(),
            "https://example.com/tm/v1/status"
        );
        let b = base("https://example.com/tm?x=1#frag");
        assert_eq!(
            Call::Health.url(&b).as_str(),
            "https://example.com/tm/health"
        );
    }

    #[test]
    fn account_is_one_encoded_segment() {
        let b = base("http://h.example");
        let url = Call::Get("a/b?c#d %e".into()).url(&b);
        assert_eq!(
            url.as_str(),
            "http://h.example/v1/tokens/a%2Fb%3Fc%23d%20%25e"
        );
        assert_eq!(url.path_segments().unwrap().count(), 3);
    }

    #[test]
    fn list_query() {
        let b = base("http://h.example");
        let f = ListFilter {
            main_account: Some("APEX_136189".into()),
            active: Some(false),
            expiring_within_secs: Some(600),
        };
        assert_eq!(
            Call::List(f).url(&b).as_str(),
            "http://h.example/v1/tokens?main_account=APEX_136189&active=false&expiring_within=600"
        );
        let f = ListFilter {
            main_account: Some("A&B".into()),
            ..Default::default()
        };
        assert_eq!(
            Call::List(f).url(&b).as_str(),
            "http://h.example/v1/tokens?main_account=A%26B"
        );
    }

    #[test]
    fn only_reads_are_retried_and_health_needs_no_key() {
        assert!(!Call::Sync.is_read());
        assert!(!Call::Cleanup.is_read());
        assert!(!Call::Restore(RestoreOptions::default()).is_read());
        assert!(Call::Restore(RestoreOptions {
            dry_run: true,
            include_unknown_expiry: false
        })
        .is_read());
        assert!(!Call::Renew { dry_run: false }.is_read());
        assert!(Call::Status.is_read() && Call::Health.is_read());
        assert!(Call::Get("x".into()).is_read());
        assert!(Call::List(ListFilter::default()).is_read());
        assert!(!Call::Health.needs_key() && Call::Status.needs_key());
    }

    #[test]
    fn account_validation() {
        assert!(validate_account("APEX_136189").is_ok());
        assert!(validate_account("PAAPEX1361890000001").is_ok());
        for bad in ["", "  ", ".", "..", "a\nb"] {
            let e = validate_account(bad).unwrap_err();
            assert_eq!(e.exit_code(), 2, "{bad:?}");
        }
    }

    #[test]
    fn connection_refused_is_a_network_error_after_one_retry() {
        // Bind then drop a listener to find a port nobody listens on.
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let settings = Settings {
            base_url: base(&format!("http://127.0.0.1:{port}")),
            api_key: ApiKey::new("k"),
            warnings: Vec::new(),
        };
        let mut client = Client::new(&settings, Duration::from_secs(5)).unwrap();
        client.retry_delay = Duration::from_millis(10);
        let err = client.execute(&Call::Status).unwrap_err();
        assert_eq!(err.exit_code(), 3, "{err}");
        assert!(matches!(
            err,
            CliError::Network(NetworkError::Connect { .. })
        ));
        let err = client.execute(&Call::Sync).unwrap_err();
        assert_eq!(err.exit_code(), 3, "{err}");
    }
}
