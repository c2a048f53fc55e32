//! The values trading apps write under `token:*` keys: either a bare token or a JSON object
//! carrying the token and some metadata. [`parse_token_value`] turns the raw bytes into a
//! [`TokenValue`] or a [`SkipReason`] that the sync report shows to the user.

use std::fmt;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Number, Value};
use thiserror::Error;

/// The largest value accepted, in bytes (64 KiB). Tradovate tokens are well under 4 KiB.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;

/// JSON fields that may hold the token, in order of precedence.
pub const TOKEN_FIELDS: [&str; 3] = ["accessToken", "access_token", "token"];

/// JSON fields that may hold an explicit expiry, in order of precedence.
pub const EXPIRY_FIELDS: [&str; 2] = ["expirationTime", "expires_at"];

/// The last second that [`parse_token_value`] and the JWT reader accept as an expiry:
/// 9999-12-31T23:59:59Z. Anything later is treated as garbage.
pub(crate) const MAX_EPOCH_SECONDS: i64 = 253_402_300_799;

/// Epoch numbers at or above this are read as milliseconds, below as seconds. 10^11 seconds is
/// the year 5138; 10^11 milliseconds is March 1973, so no plausible expiry is ambiguous.
const EPOCH_MILLIS_THRESHOLD: f64 = 1e11;

/// How the value was written in Redis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueFormat {
    /// The value is the bare token.
    Raw,
    /// The value is a JSON object with the token in one of its fields.
    Json,
}

impl ValueFormat {
    /// `raw` or `json`.
    pub fn as_str(self) -> &'static str {
        match self {
            ValueFormat::Raw => "raw",
            ValueFormat::Json => "json",
        }
    }
}

/// The kind of token (`tradovate_tokens.token_type`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    /// An access token used as `Authorization: Bearer`. The default.
    #[default]
    Bearer,
    /// An `auth` token (JSON `token_type`/`tokenType` equal to `auth`, any case).
    Auth,
}

impl TokenType {
    /// `bearer` or `auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            TokenType::Bearer => "bearer",
            TokenType::Auth => "auth",
        }
    }

    /// Reads a `token_type` field value: `auth` (any case, surrounding spaces ignored) is
    /// [`TokenType::Auth`]; anything else, including `bearer`, is [`TokenType::Bearer`].
    pub fn from_field(s: &str) -> TokenType {
        if s.trim().eq_ignore_ascii_case("auth") {
            TokenType::Auth
        } else {
            TokenType::Bearer
        }
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A token value read from Redis.
///
/// Guarantees (for values produced by [`parse_token_value`]): `access_token` is non-empty,
/// printable ASCII without whitespace; the optional strings are non-empty; `explicit_expiry`
/// is between the Unix epoch and the end of year 9999. `Debug` never shows the tokens.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenValue {
    /// The access token itself. Secret.
    pub access_token: String,
    /// The market-data access token (`mdAccessToken`), if the value had one. Secret.
    pub md_access_token: Option<String>,
    /// `userId`, as a string even when the JSON had a number.
    pub user_id: Option<String>,
    /// `name`, as written.
    pub name: Option<String>,
    /// `main_account`, as written (not validated: see `main_account_for`).
    pub main_account: Option<String>,
    /// `token_type`/`tokenType`, default [`TokenType::Bearer`].
    pub token_type: TokenType,
    /// `expirationTime`/`expires_at`, if the value had one.
    pub explicit_expiry: Option<DateTime<Utc>>,
    /// Whether the value was a bare token or JSON.
    pub format: ValueFormat,
}

impl TokenValue {
    /// A bare token with no metadata, as if read from a raw value. Does not validate.
    pub fn raw(access_token: impl Into<String>) -> TokenValue {
        TokenValue {
            access_token: access_token.into(),
            md_access_token: None,
            user_id: None,
            name: None,
            main_account: None,
            token_type: TokenType::Bearer,
            explicit_expiry: None,
            format: ValueFormat::Raw,
        }
    }

    /// Number of characters in the access token (`tradovate_tokens.token_length`).
    pub fn token_length(&self) -> usize {
        self.access_token.chars().count()
    }
}

impl fmt::Debug for TokenValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use super::sealed::Redacted;
        f.debug_struct("TokenValue")
            .field("access_token", &Redacted(self.access_token.len()))
            .field(
                "md_access_token",
                &self.md_access_token.as_ref().map(|t| Redacted(t.len())),
            )
            .field("user_id", &self.user_id)
            .field("name", &self.name)
            .field("main_account", &self.main_account)
            .field("token_type", &self.token_type)
            .field("explicit_expiry", &self.explicit_expiry)
            .field("format", &self.format)
            .finish()
    }
}

/// Why a Redis value was skipped. `Display` is the short reason shown in the sync report; it
/// never contains the token or the value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SkipReason {
    /// The value is empty or only whitespace.
    #[error(
        "value is empty; store the access token (or a JSON object with accessToken) under this key"
    )]
    Empty,
    /// The value is not valid UTF-8.
    #[error("value is binary, not UTF-8 text; store the token as text")]
    NotUtf8,
    /// The value is larger than [`MAX_VALUE_BYTES`].
    #[error("value is {bytes} bytes, larger than the 64 KiB limit; store only the token and its metadata")]
    TooLarge {
        /// Size of the value in bytes.
        bytes: usize,
    },
    /// The value starts with `{`, `[` or `"` but is not valid JSON.
    #[error("value looks like JSON but does not parse (line {line}, column {column}); fix the JSON or store the bare token")]
    InvalidJson {
        /// 1-based line of the JSON syntax error.
        line: usize,
        /// 1-based column of the JSON syntax error.
        column: usize,
    },
    /// The value is valid JSON but not an object.
    #[error("value is a JSON {kind}, not an object; store a JSON object with an accessToken field, or the bare token")]
    JsonNotObject {
        /// `array`, `string`, ...
        kind: &'static str,
    },
    /// The JSON object has none of the token fields.
    #[error("JSON object has no accessToken, access_token or token field")]
    MissingTokenField,
    /// A token field is present but is not a non-empty string.
    #[error("JSON field `{field}` must be a non-empty string, but is {found}")]
    TokenFieldNotString {
        /// The first token field present.
        field: &'static str,
        /// What it held instead: `an empty string`, `a number`, `null`, ...
        found: &'static str,
    },
    /// The token inside a JSON value contains a character a token cannot have.
    #[error("JSON field `{field}` contains {what} at byte {position}; a token is printable ASCII without spaces")]
    InvalidTokenCharacter {
        /// The field holding the token.
        field: &'static str,
        /// `whitespace`, `a control character` or `a non-ASCII character`.
        what: &'static str,
        /// Byte offset inside the token.
        position: usize,
    },
    /// A bare (non-JSON) value contains a character a token cannot have.
    #[error("value contains {what} at byte {position}; a bare token is printable ASCII without spaces (or store a JSON object)")]
    InvalidRawValue {
        /// `whitespace`, `a control character` or `a non-ASCII character`.
        what: &'static str,
        /// Byte offset inside the value.
        position: usize,
    },
    /// The explicit expiry field is not a time this parser understands.
    #[error("JSON field `{field}` is not a valid time; use ISO-8601/RFC 3339 (2025-10-17T14:45:00Z) or epoch seconds or milliseconds")]
    InvalidExpiration {
        /// `expirationTime` or `expires_at`.
        field: &'static str,
    },
}

/// Parses a Redis value into a [`TokenValue`].
///
/// Accepts a bare token (printable ASCII, no whitespace: a JWT or an opaque string) or a JSON
/// object (detected by a first non-blank character of `{`, `[` or `"`) with the token in the
/// first of `accessToken`, `access_token`, `token` that holds a non-empty string, and optional
/// `expirationTime`/`expires_at` (RFC 3339 / ISO-8601, a naive time meaning UTC, or epoch
/// seconds or milliseconds as a number or numeric string, decided by magnitude),
/// `mdAccessToken`, `userId` (string or number), `name`, `main_account`,
/// `token_type`/`tokenType`. Optional fields that are null, empty or of another type are
/// ignored, except a malformed expiry, which is rejected.
///
/// Never panics; every rejection is a [`SkipReason`].
pub fn parse_token_value(raw: &[u8]) -> Result<TokenValue, SkipReason> {
    if raw.len() > MAX_VALUE_BYTES {
        return Err(SkipReason::TooLarge { bytes: raw.len() });
    }
    let text = std::str::from_utf8(raw).map_err(|_| SkipReason::NotUtf8)?;
    let start = text.trim_start();
    match start.as_bytes().first() {
        None => Err(SkipReason::Empty),
        Some(b'{' | b'[' | b'"') => parse_json(text),
        Some(_) => {
            if let Some((what, position)) = find_invalid_token_char(text) {
                return Err(SkipReason::InvalidRawValue { what, position });
            }
            Ok(TokenValue::raw(text))
        }
    }
}

/// The first character a token cannot contain, as (what it is, byte offset).
fn find_invalid_token_char(s: &str) -> Option<(&'static str, usize)> {
    s.char_indices().find_map(|(i, c)| {
        let what = if c.is_control() {
            "a control character"
        } else if c.is_whitespace() {
            "whitespace"
        } else if !c.is_ascii() {
            "a non-ASCII character"
        } else {
            return None;
        };
        Some((what, i))
    })
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(s) if s.is_empty() => "an empty string",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn parse_json(text: &str) -> Result<TokenValue, SkipReason> {
    let value: Value = serde_json::from_str(text).map_err(|e| SkipReason::InvalidJson {
        line: e.line(),
        column: e.column(),
    })?;
    let obj = match value {
        Value::Object(obj) => obj,
        Value::Array(_) => return Err(SkipReason::JsonNotObject { kind: "array" }),
        Value::String(_) => return Err(SkipReason::JsonNotObject { kind: "string" }),
        // Unreachable given the first-character dispatch, but kept total.
        Value::Number(_) => return Err(SkipReason::JsonNotObject { kind: "number" }),
        Value::Bool(_) => return Err(SkipReason::JsonNotObject { kind: "boolean" }),
        Value::Null => return Err(SkipReason::JsonNotObject { kind: "null" }),
    };

    let (field, access_token) = token_field(&obj)?;
    if let Some((what, position)) = find_invalid_token_char(access_token) {
        return Err(SkipReason::InvalidTokenCharacter {
            field,
            what,
            position,
        });
    }

    let explicit_expiry = match first_present(&obj, &EXPIRY_FIELDS) {
        None => None,
        Some((field, v)) => {
            Some(parse_expiry_value(v).ok_or(SkipReason::InvalidExpiration { field })?)
        }
    };

    let token_type = first_present(&obj, &["token_type", "tokenType"])
        .and_then(|(_, v)| v.as_str())
        .map(TokenType::from_field)
        .unwrap_or_default();

    Ok(TokenValue {
        access_token: access_token.to_owned(),
        md_access_token: non_empty_str(&obj, "mdAccessToken"),
        user_id: match obj.get("userId") {
            Some(Value::Number(n)) => Some(n.to_string()),
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            _ => None,
        },
        name: non_empty_str(&obj, "name"),
        main_account: non_empty_str(&obj, "main_account"),
        token_type,
        explicit_expiry,
        format: ValueFormat::Json,
    })
}

/// The first token field holding a non-empty string; otherwise why there is none.
fn token_field(obj: &Map<String, Value>) -> Result<(&'static str, &str), SkipReason> {
    let mut first_bad: Option<(&'static str, &Value)> = None;
    for field in TOKEN_FIELDS {
        match obj.get(field) {
            Some(Value::String(s)) if !s.is_empty() => return Ok((field, s)),
            Some(other) => {
                first_bad.get_or_insert((field, other));
            }
            None => {}
        }
    }
    Err(match first_bad {
        Some((field, v)) => SkipReason::TokenFieldNotString {
            field,
            found: json_kind(v),
        },
        None => SkipReason::MissingTokenField,
    })
}

/// The first of `fields` present with a non-null value.
fn first_present<'a>(
    obj: &'a Map<String, Value>,
    fields: &[&'static str],
) -> Option<(&'static str, &'a Value)> {
    fields
        .iter()
        .find_map(|f| obj.get(*f).filter(|v| !v.is_null()).map(|v| (*f, v)))
}

fn non_empty_str(obj: &Map<String, Value>, field: &str) -> Option<String> {
    obj.get(field)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
}

/// Reads an expiry given as a JSON number or string; `None` when it is not a plausible time.
fn parse_expiry_value(v: &Value) -> Option<DateTime<Utc>> {
    match v {
        Value::Number(n) => epoch_from_number(n),
        Value::String(s) => parse_time_str(s),
        _ => None,
    }
}

fn epoch_from_number(n: &Number) -> Option<DateTime<Utc>> {
    if let Some(i) = n.as_i64() {
        epoch_from_i64(i)
    } else if n.is_u64() {
        None // above i64::MAX: far beyond any plausible time
    } else {
        epoch_from_f64(n.as_f64()?)
    }
}

/// Epoch seconds or milliseconds (decided by magnitude) as an integer.
pub(crate) fn epoch_from_i64(i: i64) -> Option<DateTime<Utc>> {
    if i <= 0 {
        return None;
    }
    let dt = if (i as f64) < EPOCH_MILLIS_THRESHOLD {
        DateTime::from_timestamp(i, 0)?
    } else {
        DateTime::from_timestamp_millis(i)?
    };
    within_range(dt)
}

/// Epoch seconds or milliseconds (decided by magnitude), possibly fractional.
pub(crate) fn epoch_from_f64(f: f64) -> Option<DateTime<Utc>> {
    if !f.is_finite() || f <= 0.0 {
        return None;
    }
    let millis = if f < EPOCH_MILLIS_THRESHOLD {
        f * 1000.0
    } else {
        f
    };
    if millis > (MAX_EPOCH_SECONDS as f64 + 1.0) * 1000.0 {
        return None;
    }
    within_range(DateTime::from_timestamp_millis(millis.round() as i64)?)
}

/// A plausible expiry: from the Unix epoch to the end of year 9999 (an earlier date is as
/// much garbage as a zero or negative epoch number).
fn within_range(dt: DateTime<Utc>) -> Option<DateTime<Utc>> {
    (dt.timestamp() >= 0 && dt.year() <= 9999).then_some(dt)
}

/// Parses an expiry string: RFC 3339 (`2025-10-17T14:45:00Z`, `...+02:00`, fractional
/// seconds, `T` or space), a naive ISO-8601 time taken as UTC (`2025-10-17T14:45:00`), a
/// Postgres-style offset (`2025-10-17 14:45:00+00`), or an epoch number as a string.
pub(crate) fn parse_time_str(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    if s.bytes().all(|b| b.is_ascii_digit()) {
        return epoch_from_i64(s.parse().ok()?);
    }
    if s.bytes().all(|b| b.is_ascii_digit() || b == b'.') && s.bytes().any(|b| b.is_ascii_digit()) {
        return epoch_from_f64(s.parse().ok()?);
    }
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return within_range(dt.with_timezone(&Utc));
    }
    for fmt in ["%Y-%m-%d %H:%M:%S%.f%#z", "%Y-%m-%dT%H:%M:%S%.f%#z"] {
        if let Ok(dt) = DateTime::parse_from_str(s, fmt) {
            return within_range(dt.with_timezone(&Utc));
        }
    }
    for fmt in ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f"] {
        if let Ok(naive) = NaiveDateTime::parse_from_str(s, fmt) {
            return within_range(naive.and_utc());
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjE3MjkxNzYzMDB9.c2lnbmF0dXJl";

    fn ok(raw: &str) -> TokenValue {
        parse_token_value(raw.as_bytes()).unwrap()
    }

    fn skip(raw: &[u8]) -> SkipReason {
        parse_token_value(raw).unwrap_err()
    }

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32, s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, mo, d, h, mi, s).unwrap()
    }

    #[test]
    fn raw_jwt_and_opaque_tokens() {
        let v = ok(JWT);
        assert_eq!(v.access_token, JWT);
        assert_eq!(v.format, ValueFormat::Raw);
        assert_eq!(v.token_type, TokenType::Bearer);
        assert_eq!(v.explicit_expiry, None);
        assert_eq!(v.token_length(), JWT.len());
        assert_eq!(ok("abc123+/=~!").access_token, "abc123+/=~!");
        // Numbers and literals that are not objects are just opaque tokens.
        assert_eq!(ok("12345").access_token, "12345");
        assert_eq!(ok("true").access_token, "true");
    }

    #[test]
    fn json_with_seed_fields() {
        let v = ok(r#"{
            "accessToken": "tok-1",
            "mdAccessToken": "md-1",
            "expirationTime": "2025-10-17T14:45:00.000Z",
            "userId": 123456,
            "name": "trader",
            "main_account": "APEX_136189"
        }"#);
        assert_eq!(v.access_token, "tok-1");
        assert_eq!(v.md_access_token.as_deref(), Some("md-1"));
        assert_eq!(v.user_id.as_deref(), Some("123456"));
        assert_eq!(v.name.as_deref(), Some("trader"));
        assert_eq!(v.main_account.as_deref(), Some("APEX_136189"));
        assert_eq!(v.explicit_expiry, Some(utc(2025, 10, 17, 14, 45, 0)));
        assert_eq!(v.format, ValueFormat::Json);
        assert_eq!(v.token_type, TokenType::Bearer);
    }

    #[test]
    fn token_field_precedence() {
        assert_eq!(
            ok(r#"{"token":"c","access_token":"b","accessToken":"a"}"#).access_token,
            "a"
        );
        assert_eq!(ok(r#"{"token":"c","access_token":"b"}"#).access_token, "b");
        assert_eq!(ok(r#"{"token":"c"}"#).access_token, "c");
        // First present *non-empty string* wins.
        assert_eq!(
            ok(r#"{"accessToken":"","access_token":null,"token":"c"}"#).access_token,
            "c"
        );
        assert_eq!(ok(r#"{"accessToken":5,"token":"c"}"#).access_token, "c");
    }

    #[test]
    fn user_id_and_token_type() {
        assert_eq!(
            ok(r#"{"token":"t","userId":"u-7"}"#).user_id.as_deref(),
            Some("u-7")
        );
        assert_eq!(ok(r#"{"token":"t","userId":true}"#).user_id, None);
        assert_eq!(ok(r#"{"token":"t","userId":""}"#).user_id, None);
        assert_eq!(
            ok(r#"{"token":"t","token_type":"auth"}"#).token_type,
            TokenType::Auth
        );
        assert_eq!(
            ok(r#"{"token":"t","tokenType":"AUTH"}"#).token_type,
            TokenType::Auth
        );
        assert_eq!(
            ok(r#"{"token":"t","token_type":"Bearer"}"#).token_type,
            TokenType::Bearer
        );
        assert_eq!(
            ok(r#"{"token":"t","token_type":"weird"}"#).token_type,
            TokenType::Bearer
        );
        assert_eq!(TokenType::Auth.as_str(), "auth");
        assert_eq!(TokenType::Bearer.to_string(), "bearer");
        assert_eq!(ValueFormat::Json.as_str(), "json");
        assert_eq!(ValueFormat::Raw.as_str(), "raw");
    }

    #[test]
    fn optional_fields_of_wrong_type_are_ignored() {
        let v =
            ok(r#"{"token":"t","mdAccessToken":1,"name":[],"main_account":{},"expires_at":null}"#);
        assert_eq!(v.md_access_token, None);
        assert_eq!(v.name, None);
        assert_eq!(v.main_account, None);
        assert_eq!(v.explicit_expiry, None);
    }

    #[test]
    fn expiry_formats() {
        let t = utc(2024, 10, 17, 14, 45, 0);
        let secs = t.timestamp();
        let cases: Vec<(String, DateTime<Utc>)> = vec![
            (format!(r#""expirationTime":{secs}"#), t),
            (format!(r#""expirationTime":{}"#, secs * 1000), t),
            (format!(r#""expirationTime":"{secs}""#), t),
            (format!(r#""expirationTime":"{}""#, secs * 1000), t),
            (format!(r#""expirationTime":{secs}.0"#), t),
            (format!(r#""expires_at":{}.0"#, secs * 1000), t),
            (r#""expires_at":"2024-10-17T14:45:00Z""#.into(), t),
            (r#""expires_at":"2024-10-17T16:45:00+02:00""#.into(), t),
            (r#""expires_at":"2024-10-17T14:45:00""#.into(), t),
            (r#""expires_at":"2024-10-17 14:45:00""#.into(), t),
            (r#""expires_at":"2024-10-17 14:45:00+00""#.into(), t),
            (r#""expires_at":"2024-10-17 14:45:00+00:00""#.into(), t),
            (r#""expires_at":"2024-10-17T14:45:00.000Z""#.into(), t),
        ];
        for (field, want) in cases {
            let raw = format!(r#"{{"token":"t",{field}}}"#);
            assert_eq!(ok(&raw).explicit_expiry, Some(want), "{raw}");
        }
        // Fractional seconds and milliseconds keep their precision.
        let v = ok(r#"{"token":"t","expirationTime":1729176300.5}"#);
        assert_eq!(
            v.explicit_expiry.unwrap().timestamp_millis(),
            1_729_176_300_500
        );
        let v = ok(r#"{"token":"t","expirationTime":1729176300123}"#);
        assert_eq!(
            v.explicit_expiry.unwrap().timestamp_millis(),
            1_729_176_300_123
        );
    }

    #[test]
    fn epoch_seconds_vs_milliseconds_by_magnitude() {
        // Just below the threshold: seconds (year 5138).
        let s = epoch_from_i64(99_999_999_999).unwrap();
        assert_eq!(s.year(), 5138);
        // At the threshold: milliseconds (1973).
        let ms = epoch_from_i64(100_000_000_000).unwrap();
        assert_eq!(ms.year(), 1973);
        assert_eq!(
            epoch_from_i64(1_729_176_300),
            epoch_from_i64(1_729_176_300_000)
        );
    }

    #[test]
    fn expiration_field_precedence_and_null() {
        let v = ok(r#"{"token":"t","expirationTime":null,"expires_at":1729176300}"#);
        assert_eq!(v.explicit_expiry.unwrap().timestamp(), 1_729_176_300);
        let v = ok(r#"{"token":"t","expirationTime":1729176300,"expires_at":1}"#);
        assert_eq!(v.explicit_expiry.unwrap().timestamp(), 1_729_176_300);
    }

    #[test]
    fn skip_empty() {
        assert_eq!(skip(b""), SkipReason::Empty);
        assert_eq!(skip(b"   \n"), SkipReason::Empty);
    }

    #[test]
    fn skip_binary() {
        assert_eq!(skip(&[0xff, 0xfe, 0x00, 0x41]), SkipReason::NotUtf8);
    }

    #[test]
    fn skip_too_large() {
        let big = vec![b'a'; MAX_VALUE_BYTES + 1];
        assert_eq!(skip(&big), SkipReason::TooLarge { bytes: 65537 });
        let max = vec![b'a'; MAX_VALUE_BYTES];
        assert!(parse_token_value(&max).is_ok());
    }

    #[test]
    fn skip_json_not_object() {
        assert_eq!(skip(b"[1,2]"), SkipReason::JsonNotObject { kind: "array" });
        assert_eq!(
            skip(b"\"eyJ.a.b\""),
            SkipReason::JsonNotObject { kind: "string" }
        );
        assert_eq!(skip(b"  []"), SkipReason::JsonNotObject { kind: "array" });
    }

    #[test]
    fn skip_missing_token_field() {
        assert_eq!(skip(b"{}"), SkipReason::MissingTokenField);
        assert_eq!(
            skip(br#"{"AccessToken":"x","userId":1}"#),
            SkipReason::MissingTokenField
        );
    }

    #[test]
    fn skip_token_field_not_string() {
        assert_eq!(
            skip(br#"{"accessToken":""}"#),
            SkipReason::TokenFieldNotString {
                field: "accessToken",
                found: "an empty string"
            }
        );
        assert_eq!(
            skip(br#"{"access_token":123}"#),
            SkipReason::TokenFieldNotString {
                field: "access_token",
                found: "a number"
            }
        );
        assert_eq!(
            skip(br#"{"token":null}"#),
            SkipReason::TokenFieldNotString {
                field: "token",
                found: "null"
            }
        );
        assert_eq!(
            skip(br#"{"token":{"a":1}}"#),
            SkipReason::TokenFieldNotString {
                field: "token",
                found: "an object"
            }
        );
    }

    #[test]
    fn skip_invalid_expiration() {
        for bad in [
            r#""garbage""#,
            r#""""#,
            r#"true"#,
            r#"[]"#,
            r#"-5"#,
            r#"0"#,
            r#""2024-13-45T00:00:00Z""#,
            r#"1e300"#,
            r#"18446744073709551615"#,
            r#""99999999999999999999999""#,
            r#""1.2.3""#,
            r#""NaN""#,
            r#""inf""#,
            r#"300000000000000"#,
            r#""1900-10-01 00:00:00""#,
            r#""1969-12-31T23:59:59Z""#,
        ] {
            let raw = format!(r#"{{"token":"t","expirationTime":{bad}}}"#);
            assert_eq!(
                skip(raw.as_bytes()),
                SkipReason::InvalidExpiration {
                    field: "expirationTime"
                },
                "{raw}"
            );
        }
        assert_eq!(
            skip(br#"{"token":"t","expires_at":"soon"}"#),
            SkipReason::InvalidExpiration {
                field: "expires_at"
            }
        );
    }

    #[test]
    fn skip_raw_with_whitespace_or_control_characters() {
        assert_eq!(
            skip(b"Bearer abc"),
            SkipReason::InvalidRawValue {
                what: "whitespace",
                position: 6
            }
        );
        assert_eq!(
            skip(b"abc\n"),
            SkipReason::InvalidRawValue {
                what: "a control character",
                position: 3
            }
        );
        assert_eq!(
            skip(b" abc"),
            SkipReason::InvalidRawValue {
                what: "whitespace",
                position: 0
            }
        );
        assert_eq!(
            skip("tøken".as_bytes()),
            SkipReason::InvalidRawValue {
                what: "a non-ASCII character",
                position: 1
            }
        );
        assert_eq!(
            skip(b"a\x00b"),
            SkipReason::InvalidRawValue {
                what: "a control character",
                position: 1
            }
        );
    }

    #[test]
    fn skip_json_token_with_bad_characters() {
        assert_eq!(
            skip(br#"{"accessToken":"Bearer abc"}"#),
            SkipReason::InvalidTokenCharacter {
                field: "accessToken",
                what: "whitespace",
                position: 6
            }
        );
        assert_eq!(
            skip(br#"{"token":"a\nb"}"#),
            SkipReason::InvalidTokenCharacter {
                field: "token",
                what: "a control character",
                position: 1
            }
        );
    }

    #[test]
    fn skip_invalid_json() {
        assert!(matches!(
            skip(br#"{"accessToken": "abc""#),
            SkipReason::InvalidJson { line: 1, .. }
        ));
        assert!(matches!(skip(b"[1,"), SkipReason::InvalidJson { .. }));
        assert!(matches!(skip(b"{nope}"), SkipReason::InvalidJson { .. }));
        assert!(matches!(
            skip(b"\"unterminated"),
            SkipReason::InvalidJson { .. }
        ));
        assert!(matches!(
            skip(br#"{"token":"a"} trailing"#),
            SkipReason::InvalidJson { .. }
        ));
        // Deep nesting hits serde_json's recursion limit instead of overflowing the stack.
        let deep = "[".repeat(10_000);
        assert!(matches!(
            skip(deep.as_bytes()),
            SkipReason::InvalidJson { .. }
        ));
    }

    #[test]
    fn skip_reasons_never_contain_the_value() {
        let secret = "SuperSecretTokenValue123";
        let values: Vec<Vec<u8>> = vec![
            format!("{secret} x").into_bytes(),
            format!("{secret}\n").into_bytes(),
            format!(r#"{{"accessToken":"{secret} x"}}"#).into_bytes(),
            format!(r#"{{"accessToken":"{secret}","expirationTime":"{secret}"}}"#).into_bytes(),
            format!(r#"{{"accessToken":"{secret}""#).into_bytes(),
            format!(r#"{{"x":"{secret}"}}"#).into_bytes(),
            format!(r#"["{secret}"]"#).into_bytes(),
            format!(r#""{secret}""#).into_bytes(),
            format!(r#"{{"{secret}": tru}}"#).into_bytes(),
        ];
        for v in values {
            let reason = skip(&v);
            let shown = format!("{reason} {reason:?}");
            assert!(!shown.contains(secret), "{shown}");
            assert!(!shown.contains("Secret"), "{shown}");
        }
    }

    #[test]
    fn debug_redacts_tokens() {
        let v = ok(r#"{"accessToken":"SECRET-ACCESS","mdAccessToken":"SECRET-MD","name":"n"}"#);
        let dbg = format!("{v:?}");
        assert!(!dbg.contains("SECRET"), "{dbg}");
        assert!(dbg.contains("redacted"), "{dbg}");
        assert!(dbg.contains("\"n\""), "{dbg}");
        let dbg = format!("{:#?}", TokenValue::raw("SECRET-RAW"));
        assert!(!dbg.contains("SECRET"), "{dbg}");
    }

    proptest! {
        #[test]
        fn never_panics_and_accepted_tokens_are_clean(raw in prop::collection::vec(any::<u8>(), 0..512)) {
            if let Ok(v) = parse_token_value(&raw) {
                prop_assert!(!v.access_token.is_empty());
                prop_assert!(v.access_token.bytes().all(|b| b.is_ascii_graphic()));
            }
        }

        #[test]
        fn never_panics_on_json_like_text(s in r#"[{}\[\]":,0-9a-zA-Z_ .\-+eE\\\n]{0,200}"#) {
            if let Ok(v) = parse_token_value(s.as_bytes()) {
                prop_assert!(!v.access_token.is_empty());
                prop_assert!(v.access_token.bytes().all(|b| b.is_ascii_graphic()));
            }
        }

        #[test]
        fn any_printable_raw_token_round_trips(tok in r"[!#-Z\]-z|}~][!-~]{0,300}") {
            // Everything printable without a leading `{`, `[` or `"` is a bare token.
            let v = parse_token_value(tok.as_bytes()).unwrap();
            prop_assert_eq!(v.access_token, tok);
            prop_assert_eq!(v.format, ValueFormat::Raw);
        }

        #[test]
        fn json_token_round_trips(tok in "[!-~]{1,300}", secs in 1_000_000_000i64..4_000_000_000) {
            let raw = serde_json::json!({"accessToken": tok, "expirationTime": secs}).to_string();
            let v = parse_token_value(raw.as_bytes()).unwrap();
            prop_assert_eq!(v.access_token, tok);
            prop_assert_eq!(v.explicit_expiry.unwrap().timestamp(), secs);
            let raw = serde_json::json!({"token": "t", "expires_at": secs * 1000}).to_string();
            let v = parse_token_value(raw.as_bytes()).unwrap();
            prop_assert_eq!(v.explicit_expiry.unwrap().timestamp(), secs);
        }

        #[test]
        fn arbitrary_json_objects_never_panic(v in arb_json()) {
            let raw = serde_json::to_vec(&v).unwrap();
            if let Ok(tv) = parse_token_value(&raw) {
                prop_assert!(!tv.access_token.is_empty());
                prop_assert!(tv.access_token.bytes().all(|b| b.is_ascii_graphic()));
            }
        }
    }

    fn arb_json() -> impl Strategy<Value = Value> {
        let field = prop::sample::select(vec![
            "accessToken",
            "access_token",
            "token",
            "expirationTime",
            "expires_at",
            "userId",
            "mdAccessToken",
            "name",
            "main_account",
            "token_type",
            "other",
        ]);
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::String),
            "[ -~]{0,20}".prop_map(Value::String),
        ];
        let inner = leaf.prop_recursive(3, 16, 4, |inner| {
            prop::collection::vec(inner, 0..4).prop_map(Value::Array)
        });
        prop::collection::vec((field, inner), 0..8).prop_map(|kvs| {
            Value::Object(kvs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
        })
    }
}

/// Adversarial values (property-based; no nightly, so no cargo-fuzz): what a bot, a bug or an
/// attacker could leave in Redis, through the parser and the expiry rules together.
#[cfg(test)]
mod adversarial_tests {
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine as _;
    use chrono::{Duration, TimeZone, Utc};
    use proptest::prelude::*;
    use serde_json::{json, Value};

    use super::{parse_token_value, ValueFormat, MAX_VALUE_BYTES};
    use crate::domain::expiry::{jwt_exp, resolve_expiry, ExpirySource, Ttl};

    /// A marker every generated token contains, so a skip reason that echoes the value is caught.
    const MARK: &str = "SECRETMARK";

    fn arb_exp_claim() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            (0i64..=MAX_EPOCH).prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            (-1e20f64..1e20).prop_map(Value::from),
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            "[ -~]{0,20}".prop_map(Value::from),
            (0i64..=MAX_EPOCH).prop_map(|n| Value::from(n.to_string())),
            Just(json!([1729176300])),
            Just(json!({"exp": 1729176300})),
        ]
    }

    const MAX_EPOCH: i64 = 253_402_300_799;

    /// JWT-shaped strings: base64 (either alphabet, padded or not) of random claims, bytes or text,
    /// with 1 to 4 segments.
    fn arb_jwt() -> impl Strategy<Value = String> {
        let claims = (arb_exp_claim(), any::<bool>(), "[a-z]{0,8}").prop_map(|(exp, with, sub)| {
            let mut c = json!({ "sub": sub });
            if with {
                c["exp"] = exp;
            }
            c.to_string().into_bytes()
        });
        let payload = prop_oneof![
            4 => claims,
            1 => prop::collection::vec(any::<u8>(), 0..40),
            1 => "[ -~]{0,30}".prop_map(String::into_bytes),
        ];
        (payload, 0u8..4, 1usize..=4, "[A-Za-z0-9_-]{0,12}").prop_map(
            |(payload, engine, segments, sig)| {
                let body = match engine {
                    0 => URL_SAFE_NO_PAD.encode(&payload),
                    1 => URL_SAFE.encode(&payload),
                    2 => STANDARD.encode(&payload),
                    _ => String::from_utf8_lossy(&payload).into_owned(),
                };
                let parts = [
                    format!("eyJ{MARK}"),
                    body,
                    format!("{sig}{MARK}"),
                    "x".into(),
                ];
                parts[..segments].join(".")
            },
        )
    }

    fn arb_field() -> impl Strategy<Value = Value> {
        prop_oneof![
            3 => arb_jwt().prop_map(Value::from),
            1 => proptest::string::string_regex("[!-~]{1,20}")
                .unwrap()
                .prop_map(|s| Value::from(format!("{s}{MARK}"))),
            1 => any::<String>().prop_map(|s| Value::from(format!("{s}{MARK}"))),
            2 => arb_exp_claim(),
            1 => "(19|20|99|100)[0-9]{2}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(Z|[+-][0-9]{2}(:[0-9]{2})?)?"
                .prop_map(Value::from),
            1 => Just(Value::from("")),
        ]
    }

    fn arb_value() -> impl Strategy<Value = Vec<u8>> {
        let names = prop::sample::select(vec![
            "accessToken",
            "access_token",
            "token",
            "expirationTime",
            "expires_at",
            "mdAccessToken",
            "userId",
            "name",
            "main_account",
            "token_type",
            "tokenType",
            "AccessToken",
            "exp",
        ]);
        let object = prop::collection::vec((names, arb_field()), 0..8).prop_map(|fields| {
            let map: serde_json::Map<String, Value> = fields
                .into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect();
            serde_json::to_vec(&Value::Object(map)).unwrap()
        });
        prop_oneof![
            4 => object,
            2 => arb_jwt().prop_map(String::into_bytes),
            1 => (arb_jwt(), 0usize..40, prop::sample::select(vec![" ", "\n", "\t", "\0", "é", "\u{a0}"]))
                .prop_map(|(t, at, ins)| {
                    let mut at = at.min(t.len());
                    while !t.is_char_boundary(at) {
                        at -= 1;
                    }
                    format!("{}{ins}{}", &t[..at], &t[at..]).into_bytes()
                }),
            1 => prop::collection::vec(any::<u8>(), 0..64),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Whatever Redis holds: no panic; an accepted value has a clean token and a consistent
        /// expiry; a refused one has a reason that does not show the value.
        #[test]
        fn parser_invariants_hold_on_adversarial_values(raw in arb_value(), pttl in prop_oneof![Just(-2i64), Just(-1), Just(0), 1i64..i64::MAX]) {
            let now = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
            match parse_token_value(&raw) {
                Ok(v) => {
                    prop_assert!(!v.access_token.is_empty());
                    prop_assert!(v.access_token.bytes().all(|b| b.is_ascii_graphic()));
                    prop_assert!(raw.len() <= MAX_VALUE_BYTES);
                    prop_assert_eq!(v.format == ValueFormat::Json, raw.trim_ascii_start().starts_with(b"{"));
                    for s in [&v.md_access_token, &v.user_id, &v.name, &v.main_account].into_iter().flatten() {
                        prop_assert!(!s.is_empty());
                    }
                    if let Some(at) = v.explicit_expiry {
                        // (A positive fraction of a second rounds to the epoch itself.)
                        prop_assert!(at.timestamp() >= 0 && at.timestamp() <= MAX_EPOCH);
                    }
                    let (at, source) = resolve_expiry(&v, Ttl::from_pttl(pttl).expect("a PTTL answer"), now);
                    prop_assert_eq!(at.is_none(), source == ExpirySource::Unknown);
                    match source {
                        ExpirySource::Explicit => prop_assert_eq!(at, v.explicit_expiry),
                        ExpirySource::JwtExp => {
                            prop_assert!(v.explicit_expiry.is_none());
                            prop_assert_eq!(at, jwt_exp(&v.access_token));
                        }
                        ExpirySource::RedisTtl => {
                            prop_assert!(v.explicit_expiry.is_none() && jwt_exp(&v.access_token).is_none());
                            prop_assert!(pttl > 0 && at.unwrap() > now);
                        }
                        ExpirySource::Unknown => {
                            prop_assert!(v.explicit_expiry.is_none() && jwt_exp(&v.access_token).is_none());
                            prop_assert!(pttl <= 0 || Duration::try_milliseconds(pttl).and_then(|d| now.checked_add_signed(d)).is_none());
                        }
                    }
                    if let Some(at) = jwt_exp(&v.access_token) {
                        prop_assert!(at.timestamp() >= 0 && at.timestamp() <= MAX_EPOCH + 1);
                    }
                    // Deterministic.
                    prop_assert_eq!(parse_token_value(&raw).ok(), Some(v));
                }
                Err(reason) => {
                    let shown = format!("{reason} {reason:?}");
                    prop_assert!(!shown.contains(MARK), "{}", shown);
                    prop_assert!(!shown.is_empty());
                }
            }
        }
    }
}
