//! Redis commands as they arrive over REST: parsed from a JSON array or from a URL path.

use percent_encoding::percent_decode;
use serde_json::Value as Json;

/// One Redis command: a name and its arguments, each an arbitrary byte string.
///
/// Always holds at least the command name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Command {
    args: Vec<Vec<u8>>,
}

/// One item of a `/pipeline` or `/multi-exec` body: a command, or why that item is not one.
pub type BatchItem = Result<Command, CommandError>;

/// Why a request did not yield a command.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommandError {
    /// The JSON for a command was not an array.
    #[error("ERR a command must be a JSON array like [\"SET\", \"key\", \"value\"]")]
    NotAnArray,
    /// The array (or path) was empty.
    #[error("ERR empty command: give the command name first, e.g. [\"PING\"] or /ping")]
    Empty,
    /// An argument was not a string, a number or a boolean.
    #[error("ERR command arguments must be JSON strings, numbers or booleans, argument {index} is {kind}")]
    BadArgument {
        /// Zero-based position in the array (0 is the command name).
        index: usize,
        /// JSON type found there.
        kind: &'static str,
    },
    /// The body of `/pipeline` or `/multi-exec` was not an array of command arrays.
    #[error("ERR the body must be a JSON array of command arrays, e.g. [[\"SET\",\"k\",\"v\"],[\"GET\",\"k\"]]")]
    NotABatch,
    /// `/pipeline` or `/multi-exec` received no commands.
    #[error("ERR the batch is empty: send at least one command")]
    EmptyBatch,
}

impl Command {
    /// Builds a command from raw parts; `None` when `args` is empty.
    pub fn new(args: Vec<Vec<u8>>) -> Option<Self> {
        (!args.is_empty()).then_some(Self { args })
    }

    /// Parses one command from a JSON array whose items are strings, numbers or booleans.
    /// Numbers become their decimal text (`["SETEX","k",13,"v"]`) and booleans the text
    /// `true` / `false` (`["HSET","h","f",true]`), as Upstash does.
    pub fn from_json(value: &Json) -> Result<Self, CommandError> {
        let items = value.as_array().ok_or(CommandError::NotAnArray)?;
        let args = items
            .iter()
            .enumerate()
            .map(|(index, item)| match item {
                Json::String(s) => Ok(s.as_bytes().to_vec()),
                Json::Number(n) => Ok(n.to_string().into_bytes()),
                Json::Bool(b) => Ok(b.to_string().into_bytes()),
                other => Err(CommandError::BadArgument {
                    index,
                    kind: json_kind(other),
                }),
            })
            .collect::<Result<Vec<_>, _>>()?;
        Self::new(args).ok_or(CommandError::Empty)
    }

    /// Parses the body of `/pipeline` or `/multi-exec`: an array of command arrays.
    ///
    /// The outer `Err` refuses the body as a whole: not an array of arrays, or empty. Each
    /// command array is parsed on its own, so one with a bad argument (or an empty one) does
    /// not hide the others (`/pipeline` answers its error in place).
    pub fn batch_from_json(value: &Json) -> Result<Vec<BatchItem>, CommandError> {
        let items = value.as_array().ok_or(CommandError::NotABatch)?;
        if items.is_empty() {
            return Err(CommandError::EmptyBatch);
        }
        if !items.iter().all(Json::is_array) {
            return Err(CommandError::NotABatch);
        }
        Ok(items.iter().map(Self::from_json).collect())
    }

    /// Builds a path-style command: `/set/foo/bar` → `SET foo bar`.
    ///
    /// `raw_path` is the still percent-encoded path; each `/`-separated segment is decoded to
    /// bytes (which need not be UTF-8). `body`, when non-empty, is appended as the next
    /// argument, then each query parameter except `_token` as `NAME` and, when it has a
    /// non-empty value, `VALUE` (Upstash's `POST /set/foo?EX=100` with the value as body).
    pub fn from_path(
        raw_path: &str,
        body: &[u8],
        query: Option<&str>,
    ) -> Result<Self, CommandError> {
        let trimmed = raw_path.strip_prefix('/').unwrap_or(raw_path);
        if trimmed.is_empty() {
            return Err(CommandError::Empty);
        }
        let mut args: Vec<Vec<u8>> = trimmed
            .split('/')
            .map(|segment| percent_decode(segment.as_bytes()).collect())
            .collect();
        if args[0].is_empty() {
            return Err(CommandError::Empty);
        }
        if !body.is_empty() {
            args.push(body.to_vec());
        }
        for (name, value) in query_pairs(query.unwrap_or("")) {
            if name == b"_token" {
                continue;
            }
            args.push(name);
            if !value.is_empty() {
                args.push(value);
            }
        }
        Ok(Self { args })
    }

    /// The command name, lower-cased (`"set"`); lossy if not UTF-8.
    pub fn name(&self) -> String {
        String::from_utf8_lossy(&self.args[0]).to_ascii_lowercase()
    }

    /// All parts, the name first.
    pub fn args(&self) -> &[Vec<u8>] {
        &self.args
    }

    /// Converts to a `redis` crate command, sending every part as given.
    pub fn to_redis(&self) -> redis::Cmd {
        let mut cmd = redis::Cmd::new();
        for arg in &self.args {
            cmd.arg(arg.as_slice());
        }
        cmd
    }

    /// Checks whether this proxy can run the command over its shared, multiplexed Redis
    /// connection. Commands that block the connection, change its state (`SELECT`, `AUTH`,
    /// `MULTI`, `SUBSCRIBE`, ...) or are unsupported by Upstash's REST API are refused with
    /// the error Upstash gives for an unavailable command.
    pub fn check_supported(&self) -> Result<(), String> {
        let name = self.name();
        let blocked = UNSUPPORTED.contains(&name.as_str())
            || (matches!(name.as_str(), "xread" | "xreadgroup") && self.has_option(b"block"))
            || (name == "client" && !self.subcommand_is(&[b"id", b"info", b"list", b"getname"]));
        if !blocked {
            return Ok(());
        }
        let hint = match name.as_str() {
            "subscribe" | "psubscribe" | "monitor" => format!(
                "use the server-sent events endpoint instead: POST /{name}{} with Accept: text/event-stream",
                if name == "monitor" { "" } else { "/<channel>" }
            ),
            _ => "upstash-local runs commands over one shared connection, like Upstash's REST API, which does not support blocking, pub/sub, transaction-control or connection-state commands".to_owned(),
        };
        Err(format!("ERR Command is not available: '{name}'. {hint}"))
    }

    fn has_option(&self, option: &[u8]) -> bool {
        self.args[1..]
            .iter()
            .any(|arg| arg.eq_ignore_ascii_case(option))
    }

    fn subcommand_is(&self, allowed: &[&[u8]]) -> bool {
        self.args
            .get(1)
            .is_some_and(|sub| allowed.iter().any(|a| sub.eq_ignore_ascii_case(a)))
    }
}

/// Commands refused by [`Command::check_supported`] (lower-case names).
const UNSUPPORTED: &[&str] = &[
    // Blocking commands hold the shared connection.
    "blpop",
    "brpop",
    "brpoplpush",
    "blmove",
    "blmpop",
    "bzpopmin",
    "bzpopmax",
    "bzmpop",
    "wait",
    "waitaof",
    // Transactions are only available through /multi-exec.
    "multi",
    "exec",
    "discard",
    "watch",
    "unwatch",
    // Pub/sub other than PUBLISH and PUBSUB, and MONITOR.
    "subscribe",
    "psubscribe",
    "ssubscribe",
    "unsubscribe",
    "punsubscribe",
    "sunsubscribe",
    "monitor",
    // Connection state.
    "auth",
    "hello",
    "select",
    "quit",
    "reset",
    "readonly",
    "readwrite",
    "swapdb",
    // Replication, cluster and process control.
    "sync",
    "psync",
    "replconf",
    "replicaof",
    "slaveof",
    "cluster",
    "asking",
    "failover",
    "shutdown",
    "debug",
];

fn json_kind(value: &Json) -> &'static str {
    match value {
        Json::Null => "null",
        Json::Bool(_) => "a boolean",
        Json::Number(_) => "a number",
        Json::String(_) => "a string",
        Json::Array(_) => "an array",
        Json::Object(_) => "an object",
    }
}

/// Splits a query string into decoded `(name, value)` pairs; `+` means a space.
pub(crate) fn query_pairs(query: &str) -> impl Iterator<Item = (Vec<u8>, Vec<u8>)> + '_ {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_query_part(name), decode_query_part(value))
        })
}

fn decode_query_part(part: &str) -> Vec<u8> {
    let spaced = part.replace('+', " ");
    percent_decode(spaced.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn bytes(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn json_numbers_become_decimal_text() {
        let cmd = Command::from_json(&json!(["SETEX", "k", 13, "v", 1.5, -2])).unwrap();
        assert_eq!(cmd.args(), bytes(&["SETEX", "k", "13", "v", "1.5", "-2"]));
        assert_eq!(cmd.name(), "setex");
    }

    #[test]
    fn json_booleans_become_true_false_text() {
        let cmd = Command::from_json(&json!(["HSET", "h", "a", true, "b", false])).unwrap();
        assert_eq!(cmd.args(), bytes(&["HSET", "h", "a", "true", "b", "false"]));
    }

    #[test]
    fn json_rejects_other_types_and_empty() {
        assert_eq!(
            Command::from_json(&json!(["SET", "k", null])),
            Err(CommandError::BadArgument {
                index: 2,
                kind: "null"
            })
        );
        assert_eq!(
            Command::from_json(&json!(["SET", "k", {"a": 1}])),
            Err(CommandError::BadArgument {
                index: 2,
                kind: "an object"
            })
        );
        assert_eq!(Command::from_json(&json!([])), Err(CommandError::Empty));
        assert_eq!(
            Command::from_json(&json!({"cmd": "GET"})),
            Err(CommandError::NotAnArray)
        );
        // Each item of a batch stands alone: a bad one is an error in its place.
        assert_eq!(
            Command::batch_from_json(&json!([["GET", "k"], [], ["SET", "k", [1]]])),
            Ok(vec![
                Ok(Command::new(bytes(&["GET", "k"])).unwrap()),
                Err(CommandError::Empty),
                Err(CommandError::BadArgument {
                    index: 2,
                    kind: "an array"
                }),
            ])
        );
        for not_a_batch in [
            json!({"GET": "k"}),
            json!(["GET", "k"]),
            json!([["GET"], "x"]),
        ] {
            assert_eq!(
                Command::batch_from_json(&not_a_batch),
                Err(CommandError::NotABatch)
            );
        }
        assert_eq!(
            Command::batch_from_json(&json!([])),
            Err(CommandError::EmptyBatch)
        );
    }

    #[test]
    fn path_segments_are_percent_decoded_to_bytes() {
        let cmd = Command::from_path("/set/a%2Fb/%FF%00x%20y", b"", None).unwrap();
        assert_eq!(
            cmd.args(),
            vec![
                b"set".to_vec(),
                b"a/b".to_vec(),
                vec![0xff, 0x00, b'x', b' ', b'y']
            ]
        );
    }

    #[test]
    fn path_body_then_query_parameters() {
        let cmd = Command::from_path("/set/foo", b"{\"a\":1}", Some("EX=100&_token=t&NX")).unwrap();
        assert_eq!(
            cmd.args(),
            bytes(&["set", "foo", "{\"a\":1}", "EX", "100", "NX"])
        );
        assert!(Command::from_path("/", b"", None).is_err());
        let trailing = Command::from_path("/set/k/", b"", None).unwrap();
        assert_eq!(trailing.args(), bytes(&["set", "k", ""]));
        assert!(Command::from_path("//x", b"", None).is_err());
    }

    #[test]
    fn refuses_connection_state_and_blocking_commands() {
        for refused in [
            json!(["BLPOP", "q", 0]),
            json!(["select", 1]),
            json!(["MULTI"]),
            json!(["XREAD", "BLOCK", 0, "STREAMS", "s", "$"]),
            json!(["CLIENT", "KILL", "ID", 1]),
        ] {
            assert!(Command::from_json(&refused)
                .unwrap()
                .check_supported()
                .is_err());
        }
        for allowed in [
            json!(["GET", "k"]),
            json!(["XREAD", "STREAMS", "s", "0"]),
            json!(["client", "id"]),
        ] {
            assert!(Command::from_json(&allowed)
                .unwrap()
                .check_supported()
                .is_ok());
        }
    }
}
