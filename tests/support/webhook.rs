//! [`Receiver`]: a webhook receiver on loopback that records every request (method, path,
//! headers, body) and answers as the test says ([`Answer`]): 200, another status, or never.
//! Stops when dropped. The one receiver alert tests use, natively and through wrangler dev.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::faults::read_request;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// How the receiver answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    /// This HTTP status, with `{"ok": true}`.
    Status(u16),
    /// Reads the request, records it, and never answers.
    Hang,
}

/// One request as the receiver got it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    /// Header names in lower case.
    pub headers: HashMap<String, String>,
    pub body: String,
}

impl Received {
    /// The body as JSON (panics if it is not).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("alert body is not JSON ({e}): {}", self.body))
    }

    /// A header's value.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }

    /// The event's type, from `X-Token-Manager-Event`.
    pub fn kind(&self) -> &str {
        self.header("x-token-manager-event").unwrap_or_default()
    }
}

/// A recording webhook receiver.
pub struct Receiver {
    /// `http://127.0.0.1:PORT/hook/SECRET-PATH` (a path like Slack's, which must never be logged).
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    answer: Arc<Mutex<Answer>>,
    task: JoinHandle<()>,
}

/// The path part of every receiver's URL: it stands for the secret in a Slack or Discord URL.
pub const SECRET_PATH: &str = "/hook/T000-B000-path-secret-XYZ?token=query-secret";

impl Receiver {
    /// A receiver on a free loopback port, answering 200.
    pub async fn start() -> Self {
        Self::bind(0).await
    }

    /// A receiver on `port` (the test stack's Worker sends to a fixed one), answering 200.
    pub async fn bind(port: u16) -> Self {
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap_or_else(|e| panic!("bind the webhook receiver on port {port}: {e}"));
        let url = format!("http://{}{SECRET_PATH}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let answer = Arc::new(Mutex::new(Answer::Status(200)));
        let (log, how) = (received.clone(), answer.clone());
        let task = tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let (log, how) = (log.clone(), how.clone());
                tokio::spawn(async move {
                    serve(socket, &log, &how).await;
                });
            }
        });
        Self {
            url,
            received,
            answer,
            task,
        }
    }

    /// Answers every later request this way.
    pub fn answer(&self, answer: Answer) {
        *self.answer.lock().unwrap() = answer;
    }

    /// Every request so far.
    pub fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// The event types received so far, in order.
    pub fn kinds(&self) -> Vec<String> {
        self.received()
            .iter()
            .map(|r| r.kind().to_string())
            .collect()
    }

    /// Forgets what was received.
    pub fn clear(&self) {
        self.received.lock().unwrap().clear();
    }

    /// Waits up to `seconds` for at least `n` requests; returns them all (maybe fewer).
    pub async fn wait_for(&self, n: usize, seconds: u64) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(seconds);
        loop {
            let received = self.received();
            if received.len() >= n || tokio::time::Instant::now() >= deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Reads one request (head and `Content-Length` body), records it, answers.
async fn serve(mut socket: TcpStream, log: &Mutex<Vec<Received>>, how: &Mutex<Answer>) {
    let Some((head, body)) = read_request(&mut socket).await else {
        return;
    };
    let mut lines = head.lines();
    let mut request_line = lines.next().unwrap_or_default().split(' ');
    let method = request_line.next().unwrap_or_default().to_string();
    let path = request_line.next().unwrap_or_default().to_string();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body = String::from_utf8_lossy(&body).to_string();
    log.lock().unwrap().push(Received {
        method,
        path,
        headers,
        body,
    });
    let answer = *how.lock().unwrap();
    match answer {
        Answer::Hang => {
            // Hold the connection open until the sender gives up.
            let _ = socket.read(&mut [0u8; 64]).await;
            tokio::time::sleep(Duration::from_secs(60)).await;
        }
        Answer::Status(status) => {
            let text = r#"{"ok":true}"#;
            let response = format!(
                "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        }
    }
}
