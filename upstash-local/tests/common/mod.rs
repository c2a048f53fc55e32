//! Test harness: a private `redis-server` per test and the server running in-process on an
//! ephemeral port.

#![allow(dead_code)]

use std::net::{TcpListener as StdListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Parser as _;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value as Json;
use tokio::sync::oneshot;

/// Full-access token used by the tests.
pub const TOKEN: &str = "test-token-full-0123456789";
/// Read-only token used by the tests.
pub const READ_ONLY_TOKEN: &str = "test-token-read-9876543210";

/// A `redis-server` of its own: a free port, no persistence, a temporary directory.
/// Killed by its pid when dropped.
pub struct TestRedis {
    child: Child,
    /// The port it listens on (127.0.0.1).
    pub port: u16,
    _dir: tempfile::TempDir,
}

fn redis_server_binary() -> PathBuf {
    if let Some(path) = std::env::var_os("REDIS_SERVER") {
        return PathBuf::from(path);
    }
    let debian = PathBuf::from("/usr/bin/redis-server");
    if debian.exists() {
        debian
    } else {
        PathBuf::from("redis-server")
    }
}

/// A port that was free a moment ago.
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind an ephemeral port")
        .port()
}

impl TestRedis {
    /// Starts redis-server and waits until it answers PING.
    pub fn start() -> Self {
        let mut last_error = String::new();
        for _ in 0..5 {
            let dir = tempfile::tempdir().expect("temp dir");
            let port = free_port();
            let mut child = Command::new(redis_server_binary())
                .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
                .args(["--save", "", "--appendonly", "no"])
                .arg("--dir")
                .arg(dir.path())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|err| {
                    panic!("cannot start redis-server ({err}); install it: apt-get install -y redis-server")
                });
            let deadline = Instant::now() + Duration::from_secs(10);
            loop {
                if let Ok(Some(status)) = child.try_wait() {
                    last_error = format!("redis-server on port {port} exited: {status}");
                    break;
                }
                // The PING must come from this child, not another test's server on a reused port.
                if redis_pid(port) == Some(child.id()) {
                    return Self {
                        child,
                        port,
                        _dir: dir,
                    };
                }
                if Instant::now() > deadline {
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!("redis-server on port {port} did not answer PING");
                    break;
                }
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("{last_error}");
    }

    /// `redis://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }
}

/// The `process_id` that the Redis on `port` reports in `INFO server`, once it answers.
fn redis_pid(port: u16) -> Option<u32> {
    use std::io::{Read as _, Write as _};
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_millis(500)))
        .ok()?;
    stream.write_all(b"INFO server\r\n").ok()?;
    let mut reply = String::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).ok()?;
        if n == 0 {
            return None;
        }
        reply.push_str(&String::from_utf8_lossy(&buf[..n]));
        if let Some((_, rest)) = reply.split_once("process_id:") {
            if let Some((pid, _)) = rest.split_once("\r\n") {
                return pid.trim().parse().ok();
            }
        }
    }
}

impl Drop for TestRedis {
    fn drop(&mut self) {
        // Child::kill signals this child's pid only.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Options for [`TestServer::start_with`].
pub struct Options {
    /// `--max-request-bytes`.
    pub max_request_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_request_bytes: upstash_local::config::DEFAULT_MAX_REQUEST_BYTES,
        }
    }
}

/// The server in-process on 127.0.0.1:0, in front of its own [`TestRedis`].
pub struct TestServer {
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    client: reqwest::Client,
    shutdown: Option<oneshot::Sender<()>>,
    /// The Redis behind it.
    pub redis: TestRedis,
    log: Arc<Mutex<Vec<String>>>,
}

/// A response: status and parsed JSON body (`Json::Null` when the body is not JSON).
pub struct Reply {
    pub status: u16,
    pub json: Json,
    pub headers: HeaderMap,
    /// The raw body.
    pub body: Vec<u8>,
}

impl TestServer {
    /// Starts with default options.
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    /// Starts with `options`, a full token [`TOKEN`] and a read-only token [`READ_ONLY_TOKEN`].
    pub async fn start_with(options: Options) -> Self {
        let redis = TestRedis::start();
        let max = options.max_request_bytes.to_string();
        let config = upstash_local::Config::try_parse_from([
            "upstash-local",
            "--listen",
            "127.0.0.1:0",
            "--redis-url",
            &redis.url(),
            "--token",
            TOKEN,
            "--read-only-token",
            READ_ONLY_TOKEN,
            "--max-request-bytes",
            &max,
        ])
        .expect("flags parse");
        let mut state = upstash_local::AppState::connect(&config)
            .await
            .expect("connect to redis");
        let log = Arc::new(Mutex::new(Vec::new()));
        state.request_log = upstash_local::RequestLog::Memory(log.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let base = format!("http://{}", listener.local_addr().unwrap());
        let (tx, rx) = oneshot::channel();
        tokio::spawn(upstash_local::serve(listener, state, async {
            let _ = rx.await;
        }));
        Self {
            base,
            client: reqwest::Client::new(),
            shutdown: Some(tx),
            redis,
            log,
        }
    }

    /// Sends a request with the full token as a bearer header.
    pub async fn call(&self, method: &str, path: &str, body: impl Into<Vec<u8>>) -> Reply {
        let auth = format!("Bearer {TOKEN}");
        self.call_with(method, path, body, &[("authorization", auth.as_str())])
            .await
    }

    /// Sends a request with exactly the given headers.
    pub async fn call_with(
        &self,
        method: &str,
        path: &str,
        body: impl Into<Vec<u8>>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap();
        let mut request = self
            .client
            .request(method, format!("{}{}", self.base, path))
            .body(body.into());
        for (name, value) in headers {
            request = request.header(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let response = request.send().await.expect("request sent");
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let bytes = response.bytes().await.expect("body read");
        let json = serde_json::from_slice(&bytes).unwrap_or(Json::Null);
        Reply {
            status,
            json,
            headers,
            body: bytes.to_vec(),
        }
    }

    /// The request log lines written so far.
    pub fn log_lines(&self) -> Vec<String> {
        self.log.lock().unwrap().clone()
    }

    /// POSTs a JSON value with the full token.
    pub async fn post(&self, path: &str, body: Json) -> Reply {
        self.call("POST", path, body.to_string()).await
    }

    /// Runs one command via `POST /` and returns its `result`, panicking on anything else.
    pub async fn cmd(&self, command: Json) -> Json {
        let reply = self.post("/", command.clone()).await;
        assert_eq!(reply.status, 200, "{command} -> {}", reply.json);
        reply.json["result"].clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}
