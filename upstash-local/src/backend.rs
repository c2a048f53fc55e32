//! The Redis side: runs commands on the real `redis-server` over one shared, auto-reconnecting
//! multiplexed connection.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use redis::aio::{ConnectionLike as _, ConnectionManager, ConnectionManagerConfig};
use redis::Value;

use crate::command::{BatchItem, Command};
use crate::encoding::{server_error_text, Reply};

/// How long one request may wait for Redis before it fails with 502.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(30);

/// What a token may do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Any supported command.
    Full,
    /// Read commands only: Redis ACL category `@read`, minus `@dangerous` ones and `SCAN`,
    /// plus `PING` and `ECHO` (Upstash's "Read Only" token).
    ReadOnly,
}

/// Redis could not be reached or answered something that is not a reply.
#[derive(Debug, thiserror::Error)]
pub enum BackendError {
    /// The first connection attempt failed (bad URL, server down, wrong password).
    #[error("cannot connect to Redis at {url}: {source}")]
    Connect {
        /// The Redis URL, password redacted.
        url: String,
        /// The client's error.
        source: redis::RedisError,
    },
    /// A request failed below the reply level (I/O, timeout, protocol).
    #[error("Redis is unavailable: {0}")]
    Unavailable(#[from] redis::RedisError),
}

/// Why a `/multi-exec` transaction did not run.
#[derive(Debug, thiserror::Error)]
pub enum TransactionError {
    /// Redis (or the proxy) discarded the transaction as a whole, e.g. an unknown command or a
    /// wrong argument count (`EXECABORT`); nothing was executed.
    #[error("{0}")]
    Discarded(String),
    /// Redis could not be reached.
    #[error(transparent)]
    Backend(#[from] BackendError),
}

/// A handle on the Redis server; cheap to share between requests.
pub struct Backend {
    client: redis::Client,
    conn: ConnectionManager,
    read_only_verdicts: Mutex<HashMap<String, bool>>,
}

impl Backend {
    /// Connects to `url` (a `redis://` URL). `redacted_url` is what error messages show.
    pub async fn connect(url: &str, redacted_url: &str) -> Result<Self, BackendError> {
        let connect_error = |source| BackendError::Connect {
            url: redacted_url.to_owned(),
            source,
        };
        let client = redis::Client::open(url).map_err(connect_error)?;
        let config = ConnectionManagerConfig::new()
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(2);
        let conn = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(connect_error)?;
        Ok(Self {
            client,
            conn,
            read_only_verdicts: Mutex::new(HashMap::new()),
        })
    }

    /// Runs `commands` in order as one Redis pipeline (not atomic) and returns one reply per
    /// item. A failing command, or an item that is not a command, yields its error in place
    /// and does not stop the others.
    pub async fn run(
        &self,
        commands: &[BatchItem],
        access: Access,
    ) -> Result<Vec<Reply>, BackendError> {
        let mut replies: Vec<Option<Reply>> = Vec::with_capacity(commands.len());
        let mut pipe = redis::pipe();
        let mut sent = 0;
        for item in commands {
            let command = match item {
                Ok(command) => command,
                Err(malformed) => {
                    replies.push(Some(Err(malformed.to_string())));
                    continue;
                }
            };
            match self.admit(command, access).await? {
                Ok(()) => {
                    pipe.add_command(command.to_redis());
                    sent += 1;
                    replies.push(None);
                }
                Err(refusal) => replies.push(Some(Err(refusal))),
            }
        }
        let mut answers = if sent == 0 {
            Vec::new().into_iter()
        } else {
            self.conn
                .clone()
                .req_packed_commands(&pipe, 0, sent)
                .await?
                .into_iter()
        };
        replies
            .into_iter()
            .map(|reply| match reply {
                Some(refused) => Ok(refused),
                None => answers
                    .next()
                    .map(into_reply)
                    .ok_or_else(|| missing_reply().into()),
            })
            .collect()
    }

    /// Opens a connection of its own for pub/sub, subscribed to `channels` (or to the
    /// `patterns`, when `patterns` is true), for one server-sent events stream.
    pub async fn subscribe(
        &self,
        names: &[Vec<u8>],
        patterns: bool,
    ) -> Result<redis::aio::PubSub, BackendError> {
        let open = async {
            let mut pubsub = self.client.get_async_pubsub().await?;
            for name in names {
                if patterns {
                    pubsub.psubscribe(name.as_slice()).await?;
                } else {
                    pubsub.subscribe(name.as_slice()).await?;
                }
            }
            Ok::<_, redis::RedisError>(pubsub)
        };
        Ok(tokio::time::timeout(RESPONSE_TIMEOUT, open)
            .await
            .map_err(|_| timed_out())??)
    }

    /// Opens a connection of its own in `MONITOR` mode, for one server-sent events stream.
    pub async fn monitor(&self) -> Result<redis::aio::Monitor, BackendError> {
        Ok(
            tokio::time::timeout(RESPONSE_TIMEOUT, self.client.get_async_monitor())
                .await
                .map_err(|_| timed_out())??,
        )
    }

    /// Runs `commands` atomically inside `MULTI`/`EXEC` and returns one reply per command.
    /// A command failing at run time (e.g. `INCR` on a non-number) yields its error in place
    /// while the others still run, as in Redis; a command Redis rejects while queueing
    /// discards the whole transaction.
    pub async fn multi_exec(
        &self,
        commands: &[Command],
        access: Access,
    ) -> Result<Vec<Reply>, TransactionError> {
        for command in commands {
            if let Err(refusal) = self.admit(command, access).await? {
                return Err(TransactionError::Discarded(refusal));
            }
        }
        // MULTI, the commands and EXEC go out as one packed write on the shared connection, so
        // no other request's command can land inside the transaction.
        let mut pipe = redis::pipe();
        pipe.cmd("MULTI");
        for command in commands {
            pipe.add_command(command.to_redis());
        }
        pipe.cmd("EXEC");
        let answers = self
            .conn
            .clone()
            .req_packed_commands(&pipe, 0, commands.len() + 2)
            .await
            .map_err(BackendError::from)?;
        let queue_error = answers[..answers.len() - 1]
            .iter()
            .find_map(|answer| match answer {
                Value::ServerError(err) => Some(server_error_text(err)),
                _ => None,
            });
        match answers.last() {
            Some(Value::Array(results)) if results.len() == commands.len() => {
                Ok(results.iter().cloned().map(into_reply).collect())
            }
            Some(Value::ServerError(err)) => Err(TransactionError::Discarded(
                queue_error.unwrap_or_else(|| server_error_text(err)),
            )),
            _ => Err(TransactionError::Discarded(
                queue_error.unwrap_or_else(|| "EXECABORT Transaction discarded".to_owned()),
            )),
        }
    }

    /// Decides whether `command` may run: supported by the proxy and allowed for `access`.
    /// The outer `Err` is a Redis failure while looking up a command's ACL categories.
    async fn admit(
        &self,
        command: &Command,
        access: Access,
    ) -> Result<Result<(), String>, BackendError> {
        if let Err(refusal) = command.check_supported() {
            return Ok(Err(refusal));
        }
        if access == Access::Full || self.read_allowed(command).await? {
            Ok(Ok(()))
        } else {
            Ok(Err(no_permission(&command.name())))
        }
    }

    /// Whether a read-only token may run `command`, from `COMMAND INFO` (cached per name).
    async fn read_allowed(&self, command: &Command) -> Result<bool, BackendError> {
        let name = command.name();
        match name.as_str() {
            "ping" | "echo" => return Ok(true),
            "scan" | "keys" => return Ok(false),
            _ => {}
        }
        let (allowed, has_subcommands) = self.categories_verdict(&name).await?;
        match command.args().get(1) {
            Some(sub) if has_subcommands => {
                let full = format!(
                    "{name}|{}",
                    String::from_utf8_lossy(sub).to_ascii_lowercase()
                );
                Ok(self.categories_verdict(&full).await?.0)
            }
            _ => Ok(allowed),
        }
    }

    /// `(allowed for read-only, has subcommands)` for a command name or `container|sub`.
    async fn categories_verdict(&self, name: &str) -> Result<(bool, bool), BackendError> {
        let cache_key_sub = format!("{name}#sub");
        {
            let cache = self
                .read_only_verdicts
                .lock()
                .expect("verdict cache poisoned");
            if let (Some(allowed), Some(sub)) = (cache.get(name), cache.get(&cache_key_sub)) {
                return Ok((*allowed, *sub));
            }
        }
        let info: Value = redis::cmd("COMMAND")
            .arg("INFO")
            .arg(name)
            .query_async(&mut self.conn.clone())
            .await?;
        let (allowed, has_subcommands) = read_verdict_from_info(&info);
        let mut cache = self
            .read_only_verdicts
            .lock()
            .expect("verdict cache poisoned");
        cache.insert(name.to_owned(), allowed);
        cache.insert(cache_key_sub, has_subcommands);
        Ok((allowed, has_subcommands))
    }
}

/// Reads `COMMAND INFO` output (Redis 7): ACL categories at index 6, subcommands at 9.
/// An unknown command is allowed so that Redis answers it with its own error.
fn read_verdict_from_info(info: &Value) -> (bool, bool) {
    let Some(Value::Array(doc)) = (match info {
        Value::Array(items) => items.first(),
        _ => None,
    }) else {
        return (true, false);
    };
    let categories: Vec<String> = match doc.get(6) {
        Some(Value::Array(items)) | Some(Value::Set(items)) => {
            items.iter().filter_map(text).collect()
        }
        _ => Vec::new(),
    };
    let has = |c: &str| categories.iter().any(|x| x.eq_ignore_ascii_case(c));
    let has_subcommands = matches!(doc.get(9), Some(Value::Array(subs)) if !subs.is_empty());
    (has("@read") && !has("@dangerous"), has_subcommands)
}

fn text(value: &Value) -> Option<String> {
    match value {
        Value::SimpleString(s) => Some(s.clone()),
        Value::BulkString(b) => Some(String::from_utf8_lossy(b).into_owned()),
        _ => None,
    }
}

fn into_reply(value: Value) -> Reply {
    match value {
        Value::ServerError(err) => Err(server_error_text(&err)),
        other => Ok(other),
    }
}

fn missing_reply() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Io,
        "Redis sent fewer replies than commands",
    ))
}

/// The error a read-only token gets for a command it may not run (Redis's `NOPERM` wording).
pub(crate) fn no_permission(command: &str) -> String {
    format!("NOPERM this user has no permissions to run the '{command}' command or its subcommand")
}

fn timed_out() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::Io, "no answer from Redis within 30 s"))
}
