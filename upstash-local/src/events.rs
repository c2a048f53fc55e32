//! Pub/sub and `MONITOR` as server-sent events: `/subscribe/<channel>...`,
//! `/psubscribe/<pattern>...` and `/monitor`, as Upstash's REST API serves them.
//!
//! Each stream has a Redis connection of its own (the shared one never leaves normal mode),
//! opened when the request arrives and closed when the client goes away. Events are
//! `data: subscribe,<channel>,<count>`, `data: message,<channel>,<message>`,
//! `data: psubscribe,<pattern>,<count>`, `data: pmessage,<pattern>,<channel>,<message>`, and
//! for `/monitor` `data: "OK"` then one `data: <monitor line>` per command Redis runs.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse as _, Response};
use futures_util::stream::{self, BoxStream, StreamExt as _};
use tokio::sync::watch;

use crate::backend::{no_permission, Access, Backend};
use crate::command::Command;
use crate::error::ApiError;

/// How long an idle stream waits before it sends an SSE comment line (`: keepalive`), so that
/// proxies keep it open and a client that went away is noticed.
pub const HEARTBEAT: Duration = Duration::from_secs(15);

/// Ends the open event streams when the server shuts down: a graceful shutdown waits for
/// every response to finish, and a subscriber's never does by itself.
#[derive(Debug)]
pub struct Shutdown(watch::Sender<bool>);

impl Default for Shutdown {
    fn default() -> Self {
        Self(watch::channel(false).0)
    }
}

impl Shutdown {
    /// Ends every open stream (and any opened later).
    pub fn begin(&self) {
        self.0.send_replace(true);
    }

    fn watch(&self) -> watch::Receiver<bool> {
        self.0.subscribe()
    }
}

/// What one event stream carries.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Feed {
    /// Messages published on these channels (`/subscribe/a/b`).
    Channels(Vec<Vec<u8>>),
    /// Messages published on channels matching these glob patterns (`/psubscribe/news.*`).
    Patterns(Vec<Vec<u8>>),
    /// Every command Redis runs (`/monitor`).
    Monitor,
}

impl Feed {
    /// The feed a path asks for, if its first segment (any case) is `subscribe`,
    /// `psubscribe` or `monitor`. The other segments, percent-decoded, are the channels or
    /// patterns.
    pub fn from_path(raw_path: &str) -> Option<Result<Self, ApiError>> {
        let command = match Command::from_path(raw_path, b"", None) {
            Ok(command) => command,
            Err(_) => return None,
        };
        let name = command.name();
        let names = command.args()[1..].to_vec();
        let feed = match name.as_str() {
            "subscribe" => Self::Channels(names),
            "psubscribe" => Self::Patterns(names),
            "monitor" => {
                if !names.is_empty() {
                    return Some(Err(arity_error("monitor")));
                }
                Self::Monitor
            }
            _ => return None,
        };
        match &feed {
            Self::Channels(names) | Self::Patterns(names) if names.is_empty() => {
                Some(Err(arity_error(&name)))
            }
            _ => Some(Ok(feed)),
        }
    }

    fn command_name(&self) -> &'static str {
        match self {
            Self::Channels(_) => "subscribe",
            Self::Patterns(_) => "psubscribe",
            Self::Monitor => "monitor",
        }
    }
}

fn arity_error(name: &str) -> ApiError {
    ApiError::Command(format!(
        "ERR wrong number of arguments for '{name}' command"
    ))
}

/// Opens the stream: `200 text/event-stream` once Redis confirmed the subscription (or
/// `MONITOR`), then one event per message until the client disconnects or Redis closes the
/// connection or `shutdown` begins. The read-only token may subscribe but not monitor.
pub async fn open(
    backend: &Backend,
    feed: Feed,
    access: Access,
    shutdown: &Shutdown,
) -> Result<Response, ApiError> {
    let stop = shutdown.watch();
    match feed {
        Feed::Monitor => {
            if access == Access::ReadOnly {
                return Err(ApiError::Command(no_permission(feed.command_name())));
            }
            let monitor = backend.monitor().await?;
            let lines = monitor
                .into_on_message::<String>()
                .map(|line| event(&[line.as_bytes()]));
            Ok(stream_response(
                vec![event(&[b"\"OK\""])],
                lines.boxed(),
                stop,
            ))
        }
        Feed::Channels(ref names) | Feed::Patterns(ref names) => {
            let patterns = matches!(feed, Feed::Patterns(_));
            let pubsub = backend.subscribe(names, patterns).await?;
            // Redis's count: the subscriptions this connection holds after each one.
            let mut held = HashSet::new();
            let confirmations = names
                .iter()
                .map(|name| {
                    held.insert(name.as_slice());
                    let count = held.len().to_string();
                    event(&[feed.command_name().as_bytes(), name, count.as_bytes()])
                })
                .collect();
            let messages = pubsub.into_on_message().map(|msg| {
                let channel: Vec<u8> = msg.get_channel().unwrap_or_default();
                match msg.get_pattern::<Option<Vec<u8>>>().ok().flatten() {
                    Some(pattern) => {
                        event(&[b"pmessage", &pattern, &channel, msg.get_payload_bytes()])
                    }
                    None => event(&[b"message", &channel, msg.get_payload_bytes()]),
                }
            });
            Ok(stream_response(confirmations, messages.boxed(), stop))
        }
    }
}

/// One server-sent event whose data is `fields` joined by commas. Bytes that are not UTF-8
/// become U+FFFD; a line break inside the data continues it on a further `data:` line, as the
/// SSE format requires.
fn event(fields: &[&[u8]]) -> Bytes {
    let data = String::from_utf8_lossy(&fields.join(&b","[..])).into_owned();
    let mut out = String::with_capacity(data.len() + 8);
    for line in data.split("\r\n").flat_map(|l| l.split(['\r', '\n'])) {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Bytes::from(out)
}

fn stream_response(
    first: Vec<Bytes>,
    events: BoxStream<'static, Bytes>,
    stop: watch::Receiver<bool>,
) -> Response {
    let body = stream::iter(first)
        .chain(with_heartbeat(events, stop))
        .map(Ok::<_, Infallible>);
    let mut response = (StatusCode::OK, Body::from_stream(body)).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// `events`, with a `: keepalive` comment whenever [`HEARTBEAT`] passes without one, until
/// `stop` turns true.
fn with_heartbeat(
    events: BoxStream<'static, Bytes>,
    stop: watch::Receiver<bool>,
) -> BoxStream<'static, Bytes> {
    stream::unfold((events, stop), |(mut events, mut stop)| async move {
        let item = tokio::select! {
            next = events.next() => next,
            () = tokio::time::sleep(HEARTBEAT) => Some(Bytes::from_static(b": keepalive\n\n")),
            _ = stop.wait_for(|stopping| *stopping) => None,
        };
        item.map(|item| (item, (events, stop)))
    })
    .boxed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_select_feeds() {
        assert_eq!(
            Feed::from_path("/subscribe/chat/news%2Fall")
                .unwrap()
                .unwrap(),
            Feed::Channels(vec![b"chat".to_vec(), b"news/all".to_vec()])
        );
        assert_eq!(
            Feed::from_path("/PSUBSCRIBE/news.*").unwrap().unwrap(),
            Feed::Patterns(vec![b"news.*".to_vec()])
        );
        assert_eq!(Feed::from_path("/monitor").unwrap().unwrap(), Feed::Monitor);
        assert!(Feed::from_path("/subscribe").unwrap().is_err());
        assert!(Feed::from_path("/monitor/x").unwrap().is_err());
        assert!(Feed::from_path("/publish/chat/hi").is_none());
        assert!(Feed::from_path("/").is_none());
    }

    #[test]
    fn events_are_comma_joined_data_lines() {
        assert_eq!(
            event(&[b"message", b"chat", b"hello, world"]),
            Bytes::from_static(b"data: message,chat,hello, world\n\n")
        );
        assert_eq!(
            event(&[b"message", b"chat", b"two\nlines\r\nthree"]),
            Bytes::from_static(b"data: message,chat,two\ndata: lines\ndata: three\n\n")
        );
        assert_eq!(
            event(&[b"message", b"c", &[0xff, b'x']]),
            Bytes::from("data: message,c,\u{FFFD}x\n\n")
        );
    }
}
