//! Client for Upstash Redis's REST API: single commands, pipelines, SCAN with cursors, and
//! the sync lock. Every request asks for `Upstash-Encoding: base64`, so values are binary-safe.
//!
//! (The `upstash-redis-rs` crate is not used: it needs nightly Rust and has no SCAN,
//! pipeline or TTL commands, all of which a sync needs.)

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use std::collections::{HashSet, VecDeque};
use std::fmt;

use serde_json::Value;

use crate::config::Secret;
use crate::domain::expiry::Ttl;
use crate::subrequests::Subrequests;

/// A Redis reply as Upstash returns it, with base64 strings decoded. Its `Debug` and
/// [`Reply::describe`] show only its shape (type and length), never its bytes: a reply may hold
/// tokens.
#[derive(Clone, PartialEq, Eq)]
pub enum Reply {
    Nil,
    Int(i64),
    Bytes(Vec<u8>),
    Array(Vec<Reply>),
}

impl Reply {
    /// The reply's type and size, for error messages: `nil`, `an integer`,
    /// `a string of 812 bytes`, `an array of 3 items`.
    pub fn describe(&self) -> String {
        match self {
            Reply::Nil => "nil".into(),
            Reply::Int(_) => "an integer".into(),
            Reply::Bytes(b) => format!("a string of {} bytes", b.len()),
            Reply::Array(items) => format!("an array of {} items", items.len()),
        }
    }

    fn as_int(&self) -> Option<i64> {
        match self {
            Reply::Int(n) => Some(*n),
            _ => None,
        }
    }
}

impl fmt::Debug for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reply::Nil => f.write_str("Nil"),
            Reply::Int(n) => write!(f, "Int({n})"),
            Reply::Bytes(b) => write!(f, "Bytes(<{} bytes>)", b.len()),
            Reply::Array(items) => f.debug_tuple("Array").field(items).finish(),
        }
    }
}

/// What went wrong talking to Upstash; messages name the setting to check and never carry a
/// value read from Redis.
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
    #[error("Upstash Redis did not answer within {0} ms; check UPSTASH_REDIS_REST_URL, or raise UPSTREAM_TIMEOUT_MS")]
    Timeout(u64),
    #[error("unexpected answer from Upstash Redis: {0}")]
    Protocol(String),
}

/// One key's value and remaining lifetime, fetched together. `Debug` shows the value's length,
/// never its bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyValue {
    pub key: String,
    /// `None` when the key vanished between SCAN and the read, or holds no string. At most
    /// the read's byte limit: compare [`KeyValue::size`] before using it.
    pub value: Option<Vec<u8>>,
    /// The value's full length in bytes (STRLEN), read in the same pipeline.
    pub size: u64,
    /// What PTTL answered.
    pub ttl: Ttl,
}

impl fmt::Debug for KeyValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValue")
            .field("key", &self.key)
            .field(
                "value",
                &self.value.as_ref().map(|v| format!("<{} bytes>", v.len())),
            )
            .field("ttl", &self.ttl)
            .finish()
    }
}

/// One write of a conditional-write pipeline ([`Upstash::set_nx_px`]): a key, its value and the
/// TTL it gets. A TTL is required: nothing is ever written to the bots' Redis without one.
#[derive(Clone, PartialEq, Eq)]
pub struct NewKey {
    pub key: String,
    /// Secret: `Debug` shows only its length.
    pub value: String,
    pub ttl_ms: std::num::NonZeroU64,
}

impl fmt::Debug for NewKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NewKey")
            .field("key", &self.key)
            .field("value", &format_args!("<{} bytes>", self.value.len()))
            .field("ttl_ms", &self.ttl_ms)
            .finish()
    }
}

/// What `SET key value NX PX ttl` did to one key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SetOutcome {
    /// The key did not exist and now holds the value.
    Written,
    /// The key exists (a bot wrote it): left as it is.
    Exists,
    /// Redis refused this one command; its error message (never the value).
    Refused(String),
}

/// Keys a SCAN found, split into usable (UTF-8) keys and those that cannot be addressed.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanResult {
    pub keys: Vec<String>,
    /// Keys whose bytes are not UTF-8, shown lossily.
    pub unreadable: Vec<String>,
}

/// Keys a SCAN found with their values and PTTLs.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ScanValues {
    /// In the order SCAN found them.
    pub values: Vec<KeyValue>,
    /// Keys whose bytes are not UTF-8, shown lossily.
    pub unreadable: Vec<String>,
}

/// One SCAN over a pattern that also reads the values it finds, one request at a time, so the
/// caller can send its own commands in the same requests (the sync's lock rides in the first,
/// its unlock in the last). Each request is one pipeline: the caller's `before` commands, the
/// next SCAN page (the first also asks DBSIZE), STRLEN, GETRANGE (at most `max_value` bytes)
/// and PTTL for up to `batch` keys found before, the caller's `after` commands. P pages over
/// N keys take about max(P, N / batch) + 1 requests, and no value larger than `max_value` is
/// ever transferred whole. Pages start at `count` keys and grow while they match fewer than `batch` keys
/// ([`ScanPace`], sized by the DBSIZE), so keys of other applications cost few requests.
#[derive(Debug)]
pub struct ValueScan {
    pattern: String,
    batch: usize,
    max_value: usize,
    /// The next cursor; `None` once SCAN answered "0".
    cursor: Option<String>,
    pending: VecDeque<String>,
    pace: ScanPace,
    seen: HashSet<Vec<u8>>,
    /// No page asked yet: the first also asks DBSIZE, which sizes the sparse pages.
    first: bool,
    result: ScanValues,
}

/// The answers to one [`ValueScan::step`]: the caller's commands' answers (in order, each its
/// own result or Redis's error) and whether the scan's own commands were answered as expected.
#[derive(Debug)]
pub struct StepAnswers {
    pub before: Vec<Result<Reply, String>>,
    pub after: Vec<Result<Reply, String>>,
    /// Redis refused the SCAN, or a value read was answered in an unexpected shape.
    pub scan: Result<(), UpstashError>,
}

impl ValueScan {
    /// A scan of `pattern` not started yet.
    pub fn new(pattern: &str, count: usize, batch: usize, max_value: usize) -> Self {
        Self {
            pattern: pattern.to_string(),
            batch: batch.max(1),
            max_value,
            cursor: Some("0".to_string()),
            pending: VecDeque::new(),
            pace: ScanPace::new(count, batch),
            seen: HashSet::new(),
            first: true,
            result: ScanValues::default(),
        }
    }

    /// True when every page is read and every key found has its value.
    pub fn done(&self) -> bool {
        self.cursor.is_none() && self.pending.is_empty()
    }

    /// True when the next [`ValueScan::step`] is the scan's last: SCAN has answered its last
    /// page and the keys still waiting fit one batch.
    pub fn next_is_last(&self) -> bool {
        self.cursor.is_none() && self.pending.len() <= self.batch
    }

    /// Keys found so far whose bytes are not UTF-8.
    pub fn unreadable(&self) -> usize {
        self.result.unreadable.len()
    }

    /// Sends the next request (see [`ValueScan`]); keys a page finds go through `wanted`.
    /// An error means the request as a whole failed: nothing of it is known, not even whether
    /// the caller's commands ran.
    pub async fn step(
        &mut self,
        upstash: &Upstash,
        before: Vec<Vec<String>>,
        after: Vec<Vec<String>>,
        wanted: &mut impl FnMut(&str) -> bool,
    ) -> Result<StepAnswers, UpstashError> {
        let fetch: Vec<String> = self
            .pending
            .drain(..self.pending.len().min(self.batch))
            .collect();
        let (n_before, n_after) = (before.len(), after.len());
        let mut commands = before;
        commands.reserve(3 * fetch.len() + 1 + n_after);
        if let Some(cursor) = &self.cursor {
            commands.push(scan_command(cursor, &self.pattern, self.pace.count));
            // The keyspace's size sizes the sparse pages; DBSIZE is O(1) in Redis.
            if self.first {
                commands.push(vec!["DBSIZE".into()]);
            }
        }
        let last_byte = self.max_value.saturating_sub(1).to_string();
        for key in &fetch {
            commands.push(vec!["STRLEN".into(), key.clone()]);
            commands.push(vec![
                "GETRANGE".into(),
                key.clone(),
                "0".into(),
                last_byte.clone(),
            ]);
            commands.push(vec!["PTTL".into(), key.clone()]);
        }
        commands.extend(after);
        let mut answers = upstash.pipeline(&commands).await?;
        let after = answers.split_off(answers.len() - n_after);
        let mut answers = answers.into_iter();
        let before: Vec<_> = answers.by_ref().take(n_before).collect();
        let scan = self.read_answers(fetch, answers, wanted);
        Ok(StepAnswers {
            before,
            after,
            scan,
        })
    }

    /// Takes in one request's SCAN page (if one was sent) and values.
    fn read_answers(
        &mut self,
        fetch: Vec<String>,
        mut answers: impl Iterator<Item = Result<Reply, String>>,
        wanted: &mut impl FnMut(&str) -> bool,
    ) -> Result<(), UpstashError> {
        if self.cursor.is_some() {
            let page = answers
                .next()
                .expect("one answer per command")
                .map_err(UpstashError::Command)?;
            if std::mem::take(&mut self.first) {
                // Without a size (an error, or a server without DBSIZE) pages grow fourfold.
                if let Some(Ok(Reply::Int(size))) = answers.next() {
                    self.pace.keyspace(u64::try_from(size).unwrap_or(0));
                }
            }
            let (next, keys) = parse_scan(page)?;
            self.pace.after(keys.len());
            for key in keys.into_iter().filter(|k| self.seen.insert(k.clone())) {
                match String::from_utf8(key) {
                    Ok(key) if wanted(&key) => self.pending.push_back(key),
                    Ok(_) => {}
                    Err(e) => self.result.unreadable.push(lossy(e)),
                }
            }
            self.cursor = Some(next).filter(|next| next != "0");
        }
        if !fetch.is_empty() {
            self.result.values.extend(read_values(fetch, answers)?);
        }
        Ok(())
    }

    /// What the scan found.
    pub fn finish(self) -> ScanValues {
        self.result
    }
}

/// An Upstash REST endpoint with its token.
#[derive(Debug, Clone)]
pub struct Upstash {
    http: reqwest::Client,
    url: String,
    token: Secret,
    timeout_ms: u64,
    subrequests: Subrequests,
}

impl Upstash {
    /// A client for `url` (no trailing slash) authenticating with `token`; a request that
    /// takes longer than `timeout_ms` fails with [`UpstashError::Timeout`].
    pub fn new(
        http: reqwest::Client,
        url: impl Into<String>,
        token: Secret,
        timeout_ms: u64,
    ) -> Self {
        Self {
            http,
            url: url.into(),
            token,
            timeout_ms,
            subrequests: Subrequests::new(),
        }
    }

    /// Counts every request this client sends in `subrequests`.
    pub fn counting(mut self, subrequests: Subrequests) -> Self {
        self.subrequests = subrequests;
        self
    }

    async fn post(&self, path: &str, body: &Value) -> Result<Value, UpstashError> {
        self.subrequests.add();
        crate::timeout::within(self.timeout_ms, self.send(path, body))
            .await
            .map_err(|_| UpstashError::Timeout(self.timeout_ms))?
    }

    async fn send(&self, path: &str, body: &Value) -> Result<Value, UpstashError> {
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
    pub async fn command<S: serde::Serialize>(&self, args: &[S]) -> Result<Reply, UpstashError> {
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

    /// Every key matching `pattern`, following SCAN cursors (opaque strings) until "0". Pages
    /// grow while they match few keys (see [`ScanPace`]), so the requests follow the matching
    /// keys more than the keyspace.
    pub async fn scan(&self, pattern: &str, count: usize) -> Result<ScanResult, UpstashError> {
        let mut result = ScanResult::default();
        let mut seen = HashSet::new();
        let mut cursor = "0".to_string();
        let mut pace = ScanPace::new(count, count);
        loop {
            let page = self
                .command(&scan_command(&cursor, pattern, pace.count))
                .await?;
            let (next, keys) = parse_scan(page)?;
            pace.after(keys.len());
            for key in keys.into_iter().filter(|k| seen.insert(k.clone())) {
                match String::from_utf8(key) {
                    Ok(key) => result.keys.push(key),
                    Err(e) => result.unreadable.push(lossy(e)),
                }
            }
            if next == "0" {
                return Ok(result);
            }
            cursor = next;
        }
    }

    /// Every key matching `pattern` that `wanted` accepts, with its value, size and PTTL, read
    /// by a [`ValueScan`] with no commands of the caller's alongside.
    pub async fn scan_values(
        &self,
        pattern: &str,
        count: usize,
        batch: usize,
        max_value: usize,
        mut wanted: impl FnMut(&str) -> bool,
    ) -> Result<ScanValues, UpstashError> {
        let mut scan = ValueScan::new(pattern, count, batch, max_value);
        while !scan.done() {
            scan.step(self, Vec::new(), Vec::new(), &mut wanted)
                .await?
                .scan?;
        }
        Ok(scan.finish())
    }

    /// Writes each key only where it does not exist (`SET key value NX PX ttl`), all in one
    /// pipeline request, and says per key what happened. An error means the request as a whole
    /// failed: any of the writes may or may not have happened (a rerun finds them `Exists`).
    pub async fn set_nx_px(&self, writes: &[NewKey]) -> Result<Vec<SetOutcome>, UpstashError> {
        self.pipeline(&set_nx_px_commands(writes))
            .await?
            .into_iter()
            .map(|answer| match answer {
                Ok(Reply::Nil) => Ok(SetOutcome::Exists),
                Ok(Reply::Bytes(b)) if b == b"OK" => Ok(SetOutcome::Written),
                Ok(other) => Err(UpstashError::Protocol(format!(
                    "SET NX answered {}",
                    reply_kind(&other)
                ))),
                Err(e) => Ok(SetOutcome::Refused(e)),
            })
            .collect()
    }

    /// Whether each key exists, in one pipeline request (`EXISTS key` per key).
    pub async fn exists(&self, keys: &[String]) -> Result<Vec<bool>, UpstashError> {
        let commands: Vec<Vec<String>> = keys
            .iter()
            .map(|k| vec!["EXISTS".to_string(), k.clone()])
            .collect();
        self.pipeline(&commands)
            .await?
            .into_iter()
            .map(|answer| match answer {
                Ok(Reply::Int(n)) => Ok(n > 0),
                Ok(other) => Err(UpstashError::Protocol(format!(
                    "EXISTS answered {}",
                    reply_kind(&other)
                ))),
                Err(e) => Err(UpstashError::Command(e)),
            })
            .collect()
    }

    /// Takes the lock `key` for `owner` unless someone holds it (SET NX PX). True if taken.
    pub async fn try_lock(
        &self,
        key: &str,
        owner: &str,
        ttl_ms: u64,
    ) -> Result<bool, UpstashError> {
        let reply = self.command(&lock_command(key, owner, ttl_ms)).await?;
        Ok(reply != Reply::Nil)
    }

    /// Releases the lock `key` only if `owner` still holds it (compare-and-delete in Lua).
    pub async fn unlock(&self, key: &str, owner: &str) -> Result<(), UpstashError> {
        self.command(&unlock_command(key, owner)).await.map(|_| ())
    }
}

/// The command (for a pipeline) that takes lock `key` for `owner` for `ttl_ms` unless someone
/// holds it (`SET key owner NX PX ttl`): answered `OK` if taken, nil if held.
pub fn lock_command(key: &str, owner: &str, ttl_ms: u64) -> Vec<String> {
    vec![
        "SET".into(),
        key.into(),
        owner.into(),
        "NX".into(),
        "PX".into(),
        ttl_ms.max(1).to_string(),
    ]
}

/// The pipeline [`Upstash::set_nx_px`] sends: `SET key value NX PX ttl` per write.
pub fn set_nx_px_commands(writes: &[NewKey]) -> Vec<Vec<String>> {
    writes
        .iter()
        .map(|w| {
            vec![
                "SET".into(),
                w.key.clone(),
                w.value.clone(),
                "NX".into(),
                "PX".into(),
                w.ttl_ms.to_string(),
            ]
        })
        .collect()
}

/// What kind of reply it is, for protocol errors (never its content, which may be a value).
fn reply_kind(reply: &Reply) -> &'static str {
    match reply {
        Reply::Nil => "nil",
        Reply::Int(_) => "an integer",
        Reply::Bytes(_) => "a string other than OK",
        Reply::Array(_) => "an array",
    }
}

/// The most keys one SCAN visits: what the page size grows to while pages match few keys.
/// One SCAN is one command Redis runs without serving anyone else, for a time that follows the
/// keys it visits (Redis 7.0: about 0.5 µs of CPU per key on the bench machine, so about 18 ms
/// for this many; the README's Benchmarks section has the figures). A Redis of 1,000,000 other
/// keys is walked in about 1,000,000 / 32,768 ≈ 31 pages, inside the free plan's 50 subrequests.
pub const MAX_SCAN_COUNT: usize = 32_768;

/// How many pages a walk over a sparse keyspace aims for while pages stay under
/// [`MAX_SCAN_COUNT`]: the fewer keys per page, the shorter Redis stalls per request, and 6
/// pages keep a Redis of 100,000 other keys within 10 Upstash requests.
pub const SPARSE_PAGES: usize = 6;

/// The COUNT of the next SCAN page. `base` (the SCAN_COUNT setting) while pages bring enough
/// matching keys to fill a value batch. Once a page brings fewer (a sparse keyspace), the next
/// visits the keyspace's size (DBSIZE, sent with the first page) over [`SPARSE_PAGES`], at
/// least `base` and at most [`MAX_SCAN_COUNT`]: the smallest page that walks the keyspace in
/// that many requests, so Redis stalls no longer per request than the request budget needs.
/// Without a size it grows fourfold per sparse page. Back to `base` once a page brings enough.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanPace {
    base: usize,
    enough: usize,
    /// The page size for sparse pages, once the keyspace's size is known.
    sparse: Option<usize>,
    /// The COUNT to send next.
    pub count: usize,
}

impl ScanPace {
    /// Starts at `base` (at least 1); pages matching fewer than `enough` keys grow the next.
    pub fn new(base: usize, enough: usize) -> Self {
        let base = base.clamp(1, MAX_SCAN_COUNT);
        Self {
            base,
            enough: enough.max(1),
            sparse: None,
            count: base,
        }
    }

    /// Takes the keyspace's size (DBSIZE) into account for the sparse pages that follow.
    pub fn keyspace(&mut self, keys: u64) {
        let per_page = usize::try_from(keys.div_ceil(SPARSE_PAGES as u64)).unwrap_or(usize::MAX);
        self.sparse = Some(per_page.clamp(self.base, MAX_SCAN_COUNT));
    }

    /// Adjusts the next COUNT after a page that matched `matched` keys.
    pub fn after(&mut self, matched: usize) {
        self.count = if matched >= self.enough {
            self.base
        } else if let Some(sparse) = self.sparse {
            sparse
        } else {
            self.count.saturating_mul(4).min(MAX_SCAN_COUNT)
        };
    }
}

/// Lua: delete KEYS[1] only if it holds ARGV[1]. Answers 1 if deleted.
const COMPARE_AND_DELETE: &str =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end";

/// Lua: replace KEYS[1] by ARGV[2] with a TTL of ARGV[3] ms only if it still holds exactly
/// ARGV[1]. Answers 1 if replaced, 0 if the key holds anything else (or nothing).
const COMPARE_AND_SET: &str = "if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3]) return 1 else return 0 end";

/// The command (for a pipeline) that releases lock `key` if `owner` still holds it.
pub fn unlock_command(key: &str, owner: &str) -> Vec<String> {
    ["EVAL", COMPARE_AND_DELETE, "1", key, owner]
        .map(String::from)
        .to_vec()
}

/// The command (for a pipeline) that replaces `key`'s value `old` by `new` with a TTL of
/// `ttl_ms` (at least 1), and does nothing if the key holds anything else: a value a bot wrote
/// in between is never overwritten. Its answer is `Int(1)` when it wrote.
pub fn compare_and_set_command(key: &str, old: &str, new: &str, ttl_ms: u64) -> Vec<String> {
    vec![
        "EVAL".into(),
        COMPARE_AND_SET.into(),
        "1".into(),
        key.into(),
        old.into(),
        new.into(),
        ttl_ms.max(1).to_string(),
    ]
}

/// Lua: a rolling-window budget in the sorted set KEYS[1]. Drops entries older than
/// ARGV[1] (now, ms) - ARGV[2] (window, ms), then grants min(ARGV[4] wanted, ARGV[3] limit -
/// used) slots named ARGV[5]:1..n. Answers [granted, used before].
const RESERVE: &str =
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2])) \
local used = redis.call('ZCARD', KEYS[1]) \
local grant = math.min(tonumber(ARGV[4]), tonumber(ARGV[3]) - used) \
if grant < 0 then grant = 0 end \
for i = 1, grant do redis.call('ZADD', KEYS[1], ARGV[1], ARGV[5] .. ':' .. i) end \
if grant > 0 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end \
return {grant, used}";

/// The command (for a pipeline) that reserves up to `wanted` of `limit` slots per rolling
/// `window_ms` in the sorted set `key`, naming them `owner:1`…; see [`release_command`].
pub fn reserve_command(
    key: &str,
    now_ms: i64,
    window_ms: i64,
    limit: u64,
    wanted: usize,
    owner: &str,
) -> Vec<String> {
    vec![
        "EVAL".into(),
        RESERVE.into(),
        "1".into(),
        key.into(),
        now_ms.to_string(),
        window_ms.to_string(),
        limit.to_string(),
        wanted.to_string(),
        owner.into(),
    ]
}

/// The command that gives back the slots `owner:from..=owner:to` reserved but not used.
pub fn release_command(key: &str, owner: &str, from: usize, to: usize) -> Vec<String> {
    std::iter::once("ZREM".to_string())
        .chain(std::iter::once(key.to_string()))
        .chain((from..=to).map(|i| format!("{owner}:{i}")))
        .collect()
}

/// The command that counts slots used in the rolling `window_ms` before `now_ms`.
pub fn used_command(key: &str, now_ms: i64, window_ms: i64) -> Vec<String> {
    vec![
        "ZCOUNT".into(),
        key.into(),
        format!("({}", now_ms - window_ms),
        "+inf".into(),
    ]
}

fn scan_command(cursor: &str, pattern: &str, count: usize) -> Vec<String> {
    vec![
        "SCAN".into(),
        cursor.into(),
        "MATCH".into(),
        pattern.into(),
        "COUNT".into(),
        count.to_string(),
    ]
}

/// The next cursor and the keys of one SCAN page.
fn parse_scan(reply: Reply) -> Result<(String, Vec<Vec<u8>>), UpstashError> {
    let Reply::Array(parts) = reply else {
        return Err(UpstashError::Protocol("SCAN answer is not an array".into()));
    };
    let mut parts = parts.into_iter();
    let (Some(Reply::Bytes(next)), Some(Reply::Array(keys)), None) =
        (parts.next(), parts.next(), parts.next())
    else {
        return Err(UpstashError::Protocol(
            "SCAN answer has no cursor and key list".into(),
        ));
    };
    let next = String::from_utf8(next)
        .map_err(|_| UpstashError::Protocol("SCAN cursor is not text".into()))?;
    let keys = keys
        .into_iter()
        .map(|key| match key {
            Reply::Bytes(bytes) => Ok(bytes),
            _ => Err(UpstashError::Protocol(
                "SCAN returned a key that is not a string".into(),
            )),
        })
        .collect::<Result<_, _>>()?;
    Ok((next, keys))
}

/// Pairs `keys` with the answers of `STRLEN key`, `GETRANGE key 0 n`, `PTTL key` for each key.
/// A key that holds no string (WRONGTYPE) or is gone (PTTL -2) has no value.
fn read_values(
    keys: Vec<String>,
    mut answers: impl Iterator<Item = Result<Reply, String>>,
) -> Result<Vec<KeyValue>, UpstashError> {
    let mut next = |command: &str| {
        answers
            .next()
            .ok_or_else(|| UpstashError::Protocol(format!("{command} answer missing")))
    };
    keys.into_iter()
        .map(|key| {
            let (size, range, pttl) = (next("STRLEN")?, next("GETRANGE")?, next("PTTL")?);
            let ttl = pttl
                .map_err(UpstashError::Command)?
                .as_int()
                .and_then(Ttl::from_pttl)
                .ok_or_else(|| {
                    UpstashError::Protocol("PTTL is not -1, -2 or a number of milliseconds".into())
                })?;
            let (size, value) = match (size, range) {
                (Ok(Reply::Int(size)), Ok(Reply::Bytes(bytes))) if ttl != Ttl::Missing => {
                    (u64::try_from(size).unwrap_or(0), Some(bytes))
                }
                (Ok(Reply::Int(_)), Ok(Reply::Bytes(_))) => (0, None),
                // WRONGTYPE: the key holds a hash, list, … and no string value.
                (Err(_), Err(_)) => (0, None),
                (size, range) => {
                    let shape = |r: &Result<Reply, String>| match r {
                        Ok(reply) => reply.describe(),
                        Err(_) => "an error".into(),
                    };
                    return Err(UpstashError::Protocol(format!(
                        "STRLEN and GETRANGE answered {} and {}",
                        shape(&size),
                        shape(&range)
                    )));
                }
            };
            Ok(KeyValue {
                key,
                value,
                size,
                ttl,
            })
        })
        .collect()
}

fn lossy(e: std::string::FromUtf8Error) -> String {
    String::from_utf8_lossy(e.as_bytes()).into_owned()
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
    fn replies_describe_their_shape_never_their_bytes() {
        let secret = b"eyJhbGciOiJIUzI1NiJ9.secret-token".to_vec();
        let reply = Reply::Array(vec![
            Reply::Bytes(secret.clone()),
            Reply::Nil,
            Reply::Int(5),
        ]);
        // A STRLEN answered by an array holding the value: a reply of the wrong shape.
        let answers = vec![
            Ok(reply.clone()),
            Ok(Reply::Bytes(secret.clone())),
            Ok(Reply::Int(-1)),
        ];
        let err = read_values(vec!["token:A".into()], answers.into_iter()).unwrap_err();
        for text in [
            err.to_string(),
            format!("{err:?}"),
            format!("{reply:?}"),
            reply.describe(),
        ] {
            assert!(!text.contains("secret-token"), "{text}");
        }
        assert!(err.to_string().contains("an array of 3 items"), "{err}");
        let kv = KeyValue {
            key: "token:A".into(),
            value: Some(secret),
            size: 33,
            ttl: Ttl::Persistent,
        };
        assert!(!format!("{kv:?}").contains("secret-token"));
    }

    #[test]
    fn scan_pages_grow_while_sparse_and_shrink_when_dense() {
        let mut pace = ScanPace::new(1000, 50);
        let mut counts = Vec::new();
        for matched in [0, 3, 0, 0, 0, 50, 0] {
            pace.after(matched);
            counts.push(pace.count);
        }
        assert_eq!(
            counts,
            [
                4000,
                16_000,
                MAX_SCAN_COUNT,
                MAX_SCAN_COUNT,
                MAX_SCAN_COUNT,
                1000,
                4000
            ]
        );
        assert_eq!(ScanPace::new(0, 0).count, 1);
        assert_eq!(ScanPace::new(usize::MAX, 1).count, MAX_SCAN_COUNT);
    }

    #[test]
    fn a_known_keyspace_is_walked_in_about_sparse_pages_of_bounded_size() {
        let next = |keys: u64, matched: usize| {
            let mut pace = ScanPace::new(1000, 50);
            pace.keyspace(keys);
            pace.after(matched);
            pace.count
        };
        // 100,000 keys: pages of a sixth; 1,000,000: the cap; small or dense: SCAN_COUNT.
        assert_eq!(next(100_000, 3), 16_667);
        assert_eq!(next(1_000_000, 0), MAX_SCAN_COUNT);
        assert_eq!(next(u64::MAX, 0), MAX_SCAN_COUNT);
        assert_eq!(next(2_000, 0), 1000);
        assert_eq!(next(100_000, 50), 1000);
    }

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
