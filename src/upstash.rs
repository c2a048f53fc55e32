//! Client for Upstash Redis's REST API: single commands, pipelines, SCAN with cursors, and
//! the sync lock. Every request asks for `Upstash-Encoding: base64`, so values are binary-safe.
//!
//! (The `upstash-redis-rs` crate is not used: it needs nightly Rust and has no SCAN,
//! pipeline or TTL commands, all of which a sync needs.)

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use serde_json::Value;

use crate::config::Secret;

/// A Redis reply as Upstash returns it, with base64 strings decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Int(i64),
    Bytes(Vec<u8>),
    Array(Vec<Reply>),
}

impl Reply {
    fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }
}

/// What went wrong talking to Upstash; messages name the setting to check.
#[derive(Debug, thiserror::Error)]
pub enum UpstashError {
    #[error("Upstash Redis is unreachable ({0}); check UPSTASH_REDIS_REST_URL and that the database is up")]
    Unreachable(String),
    #[error("Upstash Redis rejected the token; check UPSTASH_REDIS_REST_TOKEN")]
    Unauthorized,
    #[error("Upstash Redis answered an error: {0}")]
    Command(String),
    #[error("Upstash Redis answered HTTP {status}: {body}")]
    Http { status: u16, body: String },
    #[error("unexpected answer from Upstash Redis: {0}")]
    Protocol(String),
}

/// One key's value and remaining lifetime, fetched together.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    /// `None` when the key vanished between SCAN and GET.
    pub value: Option<Vec<u8>>,
    /// Milliseconds to live as PTTL reports it: -1 no expiry, -2 missing.
    pub pttl_ms: i64,
}

/// Keys a SCAN found, split into usable (UTF-8) keys and those that cannot be addressed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanResult {
    pub keys: Vec<String>,
    /// Keys whose bytes are not UTF-8, shown lossily.
    pub unreadable: Vec<String>,
    /// Requests the scan took.
    pub pages: usize,
}

/// An Upstash REST endpoint with its token.
#[derive(Debug, Clone)]
pub struct Upstash {
    http: reqwest::Client,
    url: String,
    token: Secret,
}

impl Upstash {
    /// A client for `url` (no trailing slash) authenticating with `token`.
    pub fn new(http: reqwest::Client, url: impl Into<String>, token: Secret) -> Self {
        Self {
            http,
            url: url.into(),
            token,
        }
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, UpstashError> {
        let response = self
            .http
            .post(format!("{}{}", self.url, path))
            .bearer_auth(self.token.expose())
            .header("Upstash-Encoding", "base64")
            .json(body)
            .send()
            .await
            .map_err(|e| UpstashError::Unreachable(without_url(&e)))?;
        let status = response.status().as_u16();
        let text = response
            .text()
            .await
            .map_err(|e| UpstashError::Unreachable(without_url(&e)))?;
        let parsed: Option<Value> = serde_json::from_str(&text).ok();
        let error = parsed
            .as_ref()
            .and_then(|v| v.get("error"))
            .and_then(Value::as_str)
            .map(str::to_string);
        match (status, parsed, error) {
            (401, _, _) => Err(UpstashError::Unauthorized),
            (200, Some(v), _) => Ok(v),
            (_, _, Some(message)) => Err(UpstashError::Command(message)),
            (status, _, None) => Err(UpstashError::Http {
                status,
                body: text.chars().take(200).collect(),
            }),
        }
    }

    /// Runs one command, e.g. `["PTTL", "token:A"]`.
    pub async fn command(&self, args: &[&str]) -> Result<Reply, UpstashError> {
        let body = self.post("", &serde_json::json!(args)).await?;
        decode_result(&body)
    }

    /// Runs commands in one `/pipeline` request; each answer is its own result or error.
    pub async fn pipeline(
        &self,
        commands: &[Vec<String>],
    ) -> Result<Vec<Result<Reply, String>>, UpstashError> {
        if commands.is_empty() {
            return Ok(Vec::new());
        }
        let body = self.post("/pipeline", &serde_json::json!(commands)).await?;
        let items = body
            .as_array()
            .ok_or_else(|| UpstashError::Protocol("pipeline answer is not an array".into()))?;
        if items.len() != commands.len() {
            return Err(UpstashError::Protocol(format!(
                "pipeline answered {} results for {} commands",
                items.len(),
                commands.len()
            )));
        }
        items
            .iter()
            .map(|item| match item.get("error").and_then(Value::as_str) {
                Some(e) => Ok(Err(e.to_string())),
                None => decode_result(item).map(Ok),
            })
            .collect()
    }

    /// Every key matching `pattern`, following SCAN cursors (opaque strings) until "0".
    pub async fn scan(&self, pattern: &str, count: usize) -> Result<ScanResult, UpstashError> {
        let mut result = ScanResult::default();
        let mut seen = std::collections::HashSet::new();
        let mut cursor = "0".to_string();
        let count = count.to_string();
        loop {
            let reply = self
                .command(&["SCAN", &cursor, "MATCH", pattern, "COUNT", &count])
                .await?;
            result.pages += 1;
            let (next, keys) = match reply {
                Reply::Array(mut parts) if parts.len() == 2 => {
                    let keys = parts.pop();
                    (parts.pop(), keys)
                }
                other => return Err(UpstashError::Protocol(format!("SCAN answered {other:?}"))),
            };
            let (Some(Reply::Bytes(next)), Some(Reply::Array(keys))) = (next, keys) else {
                return Err(UpstashError::Protocol(
                    "SCAN answer has no cursor and key list".into(),
                ));
            };
            for key in keys {
                let Reply::Bytes(bytes) = key else {
                    return Err(UpstashError::Protocol(
                        "SCAN returned a key that is not a string".into(),
                    ));
                };
                // SCAN may return a key more than once; keep the first.
                if !seen.insert(bytes.clone()) {
                    continue;
                }
                match String::from_utf8(bytes) {
                    Ok(key) => result.keys.push(key),
                    Err(e) => result
                        .unreadable
                        .push(String::from_utf8_lossy(e.as_bytes()).into_owned()),
                }
            }
            cursor = String::from_utf8(next)
                .map_err(|_| UpstashError::Protocol("SCAN cursor is not text".into()))?;
            if cursor == "0" {
                return Ok(result);
            }
        }
    }

    /// Values and PTTLs of `keys`, one pipeline (MGET + PTTL each) per `batch` keys.
    pub async fn values(
        &self,
        keys: &[String],
        batch: usize,
    ) -> Result<Vec<KeyValue>, UpstashError> {
        let mut out = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(batch.max(1)) {
            let mut commands = Vec::with_capacity(chunk.len() + 1);
            commands.push(
                std::iter::once("MGET".to_string())
                    .chain(chunk.iter().cloned())
                    .collect(),
            );
            commands.extend(chunk.iter().map(|k| vec!["PTTL".to_string(), k.clone()]));
            let mut answers = self.pipeline(&commands).await?.into_iter();
            let values = match answers.next() {
                Some(Ok(Reply::Array(values))) if values.len() == chunk.len() => values,
                Some(Err(e)) => return Err(UpstashError::Command(e)),
                other => return Err(UpstashError::Protocol(format!("MGET answered {other:?}"))),
            };
            for ((key, value), pttl) in chunk.iter().zip(values).zip(answers) {
                let pttl = pttl.map_err(UpstashError::Command)?;
                out.push(KeyValue {
                    key: key.clone(),
                    value: match value {
                        Reply::Bytes(b) => Some(b),
                        _ => None,
                    },
                    pttl_ms: pttl
                        .as_int()
                        .ok_or_else(|| UpstashError::Protocol("PTTL is not an integer".into()))?,
                });
            }
        }
        Ok(out)
    }

    /// Takes the lock `key` for `owner` unless someone holds it (SET NX PX). True if taken.
    pub async fn try_lock(
        &self,
        key: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<bool, UpstashError> {
        let reply = self
            .command(&["SET", key, owner, "NX", "PX", &ttl_ms.to_string()])
            .await?;
        Ok(reply != Reply::Nil)
    }

    /// Releases the lock `key` only if `owner` still holds it (compare-and-delete in Lua).
    pub async fn unlock(&self, key: &str, owner: &str) -> Result<(), UpstashError> {
        const SCRIPT: &str =
            "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";
        self.command(&["EVAL", SCRIPT, "1", key, owner])
            .await
            .map(|_| ())
    }
}

/// The error text of a reqwest error without the URL (which may carry a `_token`).
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<upstash>");
    }
    text
}

fn decode_result(body: &Value) -> Result<Reply, UpstashError> {
    match body.get("result") {
        Some(result) => decode(result),
        None => Err(UpstashError::Protocol("answer has no result".into())),
    }
}

/// Decodes a base64-encoded reply. Upstash leaves a plain "OK" unencoded (it is not valid
/// base64, so it cannot be mistaken for an encoded value).
fn decode(value: &Value) -> Result<Reply, UpstashError> {
    Ok(match value {
        Value::Null => Reply::Nil,
        Value::Number(n) => Reply::Int(
            n.as_i64()
                .ok_or_else(|| UpstashError::Protocol(format!("number {n}")))?,
        ),
        Value::String(s) => match STANDARD.decode(s) {
            Ok(bytes) => Reply::Bytes(bytes),
            Err(_) if s == "OK" => Reply::Bytes(b"OK".to_vec()),
            Err(_) => {
                return Err(UpstashError::Protocol(
                    "a string in the answer is not base64".into(),
                ))
            }
        },
        Value::Array(items) => Reply::Array(items.iter().map(decode).collect::<Result<_, _>>()?),
        Value::Bool(b) => Reply::Int(i64::from(*b)),
        Value::Object(_) => {
            return Err(UpstashError::Protocol(
                "unexpected object in the answer".into(),
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_nested_base64_and_plain_ok() {
        let reply = decode(&json!(["MA==", ["dG9rZW46QQ==", null], 5])).unwrap();
        assert_eq!(
            reply,
            Reply::Array(vec![
                Reply::Bytes(b"0".to_vec()),
                Reply::Array(vec![Reply::Bytes(b"token:A".to_vec()), Reply::Nil]),
                Reply::Int(5)
            ])
        );
        assert_eq!(decode(&json!("OK")).unwrap(), Reply::Bytes(b"OK".to_vec()));
        assert!(decode(&json!("not base64!")).is_err());
    }
}
