//! The one way tests call the API: [`Api`] sends a request either natively (to
//! `token_manager::http::handle`, the code the Worker runs) or over HTTP to the built Worker
//! under `wrangler dev`, and returns an [`Answer`]. A method per route sends it with the test
//! stack's key for that route; [`Api::request`] sends anything at all.

use chrono::Utc;
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::Value;
use token_manager::config::Loaded;
use token_manager::http::{handle, Request};

use super::var;

/// The stack's admin key.
pub fn admin_key() -> String {
    var("TM_TEST_ADMIN_KEY")
}

/// The stack's read key.
pub fn read_key() -> String {
    var("TM_TEST_READ_KEY")
}

/// `Bearer {key}`: an `Authorization` header value.
pub fn bearer(key: &str) -> String {
    format!("Bearer {key}")
}

/// The `Authorization` value with the admin key.
pub fn admin() -> String {
    bearer(&admin_key())
}

/// The `Authorization` value with the read key.
pub fn reader() -> String {
    bearer(&read_key())
}

/// Percent-encodes everything but ASCII letters and digits (a path segment or query value).
pub fn enc(s: &str) -> String {
    utf8_percent_encode(s, NON_ALPHANUMERIC).to_string()
}

/// One answer of the API; the body must be JSON.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    /// The `Allow` header (a 405 carries it).
    pub allow: Option<String>,
    /// `Content-Type`; set by the Workers adapter, so `None` natively.
    pub content_type: Option<String>,
    /// `Cache-Control`; set by the Workers adapter, so `None` natively.
    pub cache_control: Option<String>,
    /// The body as sent.
    pub text: String,
    /// The body parsed.
    pub body: Value,
}

impl Answer {
    fn new(what: &str, status: u16, headers: [Option<String>; 3], text: String) -> Self {
        let body = serde_json::from_str(&text)
            .unwrap_or_else(|_| panic!("{what} answered non-JSON: {text}"));
        let [allow, content_type, cache_control] = headers;
        Self {
            status,
            allow,
            content_type,
            cache_control,
            text,
            body,
        }
    }

    /// Status and parsed body.
    pub fn into_parts(self) -> (u16, Value) {
        (self.status, self.body)
    }

    /// The error code of an error answer.
    pub fn code(&self) -> Option<&str> {
        self.body["error"]["code"].as_str()
    }

    /// The error message of an error answer ("" if none).
    pub fn message(&self) -> &str {
        self.body["error"]["message"].as_str().unwrap_or("")
    }

    /// Asserts a documented error: the status, the code, and a non-empty message.
    pub fn assert_error(&self, status: u16, code: &str, case: &str) {
        assert_eq!(
            (self.status, self.code()),
            (status, Some(code)),
            "{case}: {}",
            self.body
        );
        assert!(!self.message().is_empty(), "{case}: error without message");
    }
}

/// A request as a client sends it to the Worker: the URL parsed first, as workerd does (dot
/// segments resolved, `%2E` included); a body only declared by `Content-Length`, since the
/// API never reads one.
fn native_request(
    method: &str,
    path_and_query: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Request {
    let url = reqwest::Url::parse(&format!("http://worker{path_and_query}"))
        .unwrap_or_else(|e| panic!("{path_and_query} is a valid URL: {e}"));
    let mut request = Request::builder().method(method).uri(url.as_str());
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if !body.is_empty() {
        request = request.header("content-length", body.len());
    }
    request
        .body(())
        .unwrap_or_else(|e| panic!("{method} {path_and_query} is a valid request: {e}"))
}

#[derive(Clone)]
enum Target {
    /// `http::handle` in this process, with this configuration.
    Native(Box<Loaded>),
    /// The Worker under `wrangler dev` at this base URL.
    Worker(String),
}

/// A client of the API (cheap to clone).
#[derive(Clone)]
pub struct Api {
    target: Target,
}

impl Api {
    /// The API natively with `config`: a [`token_manager::config::Config`], the
    /// configuration error the Worker would have, or what it loaded of a broken one.
    pub fn native(config: impl Into<Loaded>) -> Self {
        Self {
            target: Target::Native(Box::new(config.into())),
        }
    }

    /// The built Worker under `wrangler dev` at `TM_TEST_WORKER_URL`.
    pub fn worker() -> Self {
        Self {
            target: Target::Worker(var("TM_TEST_WORKER_URL")),
        }
    }

    /// Sends one request; `authorization` is the raw header value.
    pub async fn request(
        &self,
        method: &str,
        path_and_query: &str,
        authorization: Option<&str>,
        body: &[u8],
    ) -> Answer {
        let headers: Vec<(&str, &str)> = authorization
            .map(|value| ("authorization", value))
            .into_iter()
            .collect();
        self.send(method, path_and_query, &headers, body).await
    }

    /// Sends one request with exactly these headers (and `body`, which the API never reads:
    /// natively only its length is declared).
    pub async fn send(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Answer {
        let what = format!("{method} {path_and_query}");
        match &self.target {
            Target::Native(loaded) => {
                let request = native_request(method, path_and_query, headers, body);
                let loaded = (**loaded).clone();
                // On a runtime of its own: `handle`'s future is not `Send` (its deferred work
                // is boxed without it), and tests spawn their requests.
                let response = tokio::task::spawn_blocking(move || {
                    tokio::runtime::Builder::new_current_thread()
                        .enable_all()
                        .build()
                        .expect("a runtime for one request")
                        .block_on(handle(request, loaded, Utc::now()))
                })
                .await
                .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_string())
                };
                let headers = [header("allow"), None, None];
                let status = response.status().as_u16();
                Answer::new(&what, status, headers, response.into_body())
            }
            Target::Worker(base) => {
                let mut request = reqwest::Client::new()
                    .request(method.parse().unwrap(), format!("{base}{path_and_query}"));
                for (name, value) in headers {
                    request = request.header(*name, *value);
                }
                if !body.is_empty() {
                    request = request.body(body.to_vec());
                }
                let response = request
                    .send()
                    .await
                    .expect("the Worker under wrangler dev answers");
                let header = |name: &str| {
                    response
                        .headers()
                        .get(name)
                        .map(|v| v.to_str().unwrap().to_string())
                };
                let headers = [
                    header("allow"),
                    header("content-type"),
                    header("cache-control"),
                ];
                let status = response.status().as_u16();
                Answer::new(&what, status, headers, response.text().await.unwrap())
            }
        }
    }

    /// Sends one request without a body, with `key` (if any) as its bearer key.
    pub async fn call(&self, method: &str, path_and_query: &str, key: Option<&str>) -> Answer {
        let authorization = key.map(bearer);
        self.request(method, path_and_query, authorization.as_deref(), b"")
            .await
    }

    /// `POST /v1/sync` with the admin key.
    pub async fn sync(&self) -> Answer {
        self.call("POST", "/v1/sync", Some(&admin_key())).await
    }

    /// `GET /v1/status` with the read key.
    pub async fn status(&self) -> Answer {
        self.call("GET", "/v1/status", Some(&read_key())).await
    }

    /// `GET /v1/tokens/{account}` (percent-encoded) with the read key.
    pub async fn token(&self, account: &str) -> Answer {
        let path = format!("/v1/tokens/{}", enc(account));
        self.call("GET", &path, Some(&read_key())).await
    }

    /// `GET /v1/tokens{query}` with the read key; `query` is `""` or starts with `?`.
    pub async fn list(&self, query: &str) -> Answer {
        let path = format!("/v1/tokens{query}");
        self.call("GET", &path, Some(&read_key())).await
    }

    /// `GET /v1/runs{query}` with the read key; `query` is `""` or starts with `?`.
    pub async fn runs(&self, query: &str) -> Answer {
        let path = format!("/v1/runs{query}");
        self.call("GET", &path, Some(&read_key())).await
    }

    /// `POST /v1/cleanup` with the admin key.
    pub async fn cleanup(&self) -> Answer {
        self.call("POST", "/v1/cleanup", Some(&admin_key())).await
    }

    /// `POST /v1/reencrypt` with the admin key.
    pub async fn reencrypt(&self) -> Answer {
        self.call("POST", "/v1/reencrypt", Some(&admin_key())).await
    }

    /// The seed's interface, `GET /token-manager?action={action}[&account=…]`, with the key the
    /// action needs (admin for sync and cleanup, read otherwise).
    pub async fn seed_action(&self, action: &str, account: Option<&str>) -> Answer {
        let key = match action {
            "sync" | "cleanup" => admin_key(),
            _ => read_key(),
        };
        let account = account.map_or(String::new(), |a| format!("&account={}", enc(a)));
        let path = format!("/token-manager?action={action}{account}");
        self.call("GET", &path, Some(&key)).await
    }

    /// Fires the cron trigger `expression` through wrangler dev's `/__scheduled` (the Worker
    /// runs with `--test-scheduled`); natively there is no scheduler: call the jobs instead.
    pub async fn cron(&self, expression: &str) {
        let Target::Worker(base) = &self.target else {
            panic!("cron triggers run in the Worker under wrangler dev, not natively")
        };
        let url = format!("{base}/__scheduled?cron={}", expression.replace(' ', "+"));
        let response = reqwest::get(url).await.unwrap();
        assert!(
            response.status().is_success(),
            "scheduled trigger: {}",
            response.status()
        );
    }

    /// `GET /health` without a key.
    pub async fn health(&self) -> Answer {
        self.call("GET", "/health", None).await
    }
}
