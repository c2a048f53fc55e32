//! Pub/sub and MONITOR over server-sent events, against a real redis-server.

mod common;

use std::time::{Duration, Instant};

use common::{TestServer, READ_ONLY_TOKEN, TOKEN};
use serde_json::json;

/// An open event stream: reads `data:` lines as they come.
struct EventStream {
    response: reqwest::Response,
    pending: String,
    lines: std::collections::VecDeque<String>,
}

impl EventStream {
    async fn open(server: &TestServer, method: &str, path: &str, token: &str) -> Self {
        let response = reqwest::Client::new()
            .request(
                reqwest::Method::from_bytes(method.as_bytes()).unwrap(),
                format!("{}{path}", server.base),
            )
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "text/event-stream")
            // As the TypeScript client does: it asks for base64 and sends `[]` as the body.
            .header("upstash-encoding", "base64")
            .body("[]")
            .send()
            .await
            .expect("request sent");
        assert_eq!(response.status(), 200, "{path}");
        assert_eq!(response.headers()["content-type"], "text/event-stream");
        assert_eq!(response.headers()["cache-control"], "no-cache");
        assert!(response.headers().contains_key("upstash-sync-token"));
        Self {
            response,
            pending: String::new(),
            lines: Default::default(),
        }
    }

    /// The next non-empty line of the stream (a `data:` line or a comment).
    async fn line(&mut self) -> String {
        loop {
            if let Some(line) = self.lines.pop_front() {
                return line;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), self.response.chunk())
                .await
                .expect("an event within 10 s")
                .expect("stream readable")
                .expect("stream still open");
            self.pending.push_str(std::str::from_utf8(&chunk).unwrap());
            while let Some((line, rest)) = self.pending.split_once('\n') {
                if !line.is_empty() {
                    self.lines.push_back(line.to_owned());
                }
                self.pending = rest.to_owned();
            }
        }
    }
}

async fn publish(server: &TestServer, channel: &str, message: &str) -> i64 {
    server
        .cmd(json!(["PUBLISH", channel, message]))
        .await
        .as_i64()
        .unwrap()
}

/// Waits until `PUBSUB NUMSUB channel` is `want` (subscriptions are made and dropped by
/// other connections, so this is eventually true).
async fn wait_for_subscribers(server: &TestServer, channel: &str, want: i64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let reply = server.cmd(json!(["PUBSUB", "NUMSUB", channel])).await;
        if reply[1].as_i64() == Some(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{channel}: {reply} subscribers, want {want}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn subscribe_streams_confirmations_and_messages_in_order() {
    let server = TestServer::start().await;
    let mut stream = EventStream::open(&server, "POST", "/subscribe/chat/news", TOKEN).await;
    assert_eq!(stream.line().await, "data: subscribe,chat,1");
    assert_eq!(stream.line().await, "data: subscribe,news,2");

    assert_eq!(publish(&server, "chat", "hello").await, 1);
    assert_eq!(publish(&server, "other", "not for us").await, 0);
    assert_eq!(publish(&server, "news", r#"{"a":"b, c"}"#).await, 1);
    // Plain text, whatever Upstash-Encoding asked for: the clients parse events as text.
    assert_eq!(stream.line().await, "data: message,chat,hello");
    assert_eq!(stream.line().await, r#"data: message,news,{"a":"b, c"}"#);

    // A line break in a message continues on a further data line (the SSE format).
    publish(&server, "chat", "two\nlines").await;
    assert_eq!(stream.line().await, "data: message,chat,two");
    assert_eq!(stream.line().await, "data: lines");

    // Each stream is a subscriber of its own, counted from 1 like a Redis connection.
    let mut second = EventStream::open(&server, "GET", "/subscribe/chat", TOKEN).await;
    assert_eq!(second.line().await, "data: subscribe,chat,1");
    assert_eq!(publish(&server, "chat", "both").await, 2);
    assert_eq!(stream.line().await, "data: message,chat,both");
    assert_eq!(second.line().await, "data: message,chat,both");

    // A client that goes away is unsubscribed.
    drop(stream);
    wait_for_subscribers(&server, "chat", 1).await;
    wait_for_subscribers(&server, "news", 0).await;
}

#[tokio::test]
async fn psubscribe_streams_pattern_messages() {
    let server = TestServer::start().await;
    let mut stream = EventStream::open(&server, "POST", "/psubscribe/news.*", TOKEN).await;
    assert_eq!(stream.line().await, "data: psubscribe,news.*,1");
    assert_eq!(publish(&server, "news.sport", "goal").await, 1);
    assert_eq!(publish(&server, "weather", "rain").await, 0);
    assert_eq!(stream.line().await, "data: pmessage,news.*,news.sport,goal");
}

#[tokio::test]
async fn monitor_streams_every_command() {
    let server = TestServer::start().await;
    let mut stream = EventStream::open(&server, "POST", "/monitor", TOKEN).await;
    assert_eq!(stream.line().await, r#"data: "OK""#);
    server.cmd(json!(["SET", "watched", "value"])).await;
    let line = loop {
        let line = stream.line().await;
        if line.contains(r#""SET" "watched" "value""#) {
            break line;
        }
    };
    assert!(line.starts_with("data: "), "{line}");
}

#[tokio::test]
async fn event_endpoints_refuse_what_they_cannot_serve() {
    let server = TestServer::start().await;
    let no_channel = server.call("POST", "/subscribe", "").await;
    assert_eq!(no_channel.status, 400);
    assert_eq!(
        no_channel.json,
        json!({"error": "ERR wrong number of arguments for 'subscribe' command"})
    );
    let unauthorized = server
        .call_with(
            "POST",
            "/subscribe/chat",
            "",
            &[("authorization", "Bearer no")],
        )
        .await;
    assert_eq!(unauthorized.status, 401);

    // The read-only token may listen to channels, not watch every command.
    let read_only = format!("Bearer {READ_ONLY_TOKEN}");
    let monitor = server
        .call_with("POST", "/monitor", "", &[("authorization", &read_only)])
        .await;
    assert_eq!(monitor.status, 400);
    assert_eq!(
        monitor.json,
        json!({"error": "NOPERM this user has no permissions to run the 'monitor' command or its subcommand"})
    );
    let mut stream = EventStream::open(&server, "POST", "/subscribe/chat", READ_ONLY_TOKEN).await;
    assert_eq!(stream.line().await, "data: subscribe,chat,1");

    // SUBSCRIBE as a command points at the endpoint.
    let command = server.post("/", json!(["SUBSCRIBE", "chat"])).await;
    assert_eq!(command.status, 400);
    assert!(command.json["error"]
        .as_str()
        .unwrap()
        .contains("POST /subscribe/<channel>"));
}
