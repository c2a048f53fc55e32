//! Turning Redis replies into Upstash's JSON shapes (`{"result": ...}` / `{"error": ...}`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use redis::Value;
use serde_json::{json, Value as Json};

/// How strings in a result are written, chosen by the `Upstash-Encoding` request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    /// Strings as JSON strings; bytes that are not UTF-8 become U+FFFD, as Upstash does.
    Plain,
    /// Every string base64-encoded (standard alphabet, padded), except a top-level `"OK"`
    /// status reply, as Upstash does for `Upstash-Encoding: base64`.
    Base64,
}

impl Encoding {
    /// Reads the `Upstash-Encoding` header value: `base64` (any case) selects
    /// [`Encoding::Base64`], anything else or no header [`Encoding::Plain`].
    pub fn from_header(value: Option<&[u8]>) -> Self {
        match value {
            Some(v) if v.trim_ascii().eq_ignore_ascii_case(b"base64") => Self::Base64,
            _ => Self::Plain,
        }
    }
}

/// How a response body is written, chosen by the `Upstash-Response-Format` request header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// `{"result": ...}` JSON (no header, or `json`).
    Json,
    /// Raw RESP2 bytes, as a TCP Redis client reads them (`resp2`), as
    /// `application/octet-stream`.
    Resp2,
}

impl Format {
    /// Reads the `Upstash-Response-Format` header value (any case, surrounding spaces
    /// ignored); `Err` carries a value that is neither `json` nor `resp2`.
    pub fn from_header(value: Option<&[u8]>) -> Result<Self, String> {
        let Some(value) = value else {
            return Ok(Self::Json);
        };
        let value = value.trim_ascii();
        if value.eq_ignore_ascii_case(b"json") {
            Ok(Self::Json)
        } else if value.eq_ignore_ascii_case(b"resp2") {
            Ok(Self::Resp2)
        } else {
            Err(String::from_utf8_lossy(value).into_owned())
        }
    }
}

/// The outcome of one command: its reply, or the error text Redis (or the proxy) gave.
pub type Reply = Result<Value, String>;

/// `{"result": X}` or `{"error": "..."}` for one command, as in single-command responses
/// and in each item of `/pipeline` and `/multi-exec` responses.
pub fn reply_to_json(reply: &Reply, encoding: Encoding) -> Json {
    match reply {
        Ok(value) => json!({ "result": result_to_json(value, encoding) }),
        Err(message) => json!({ "error": message }),
    }
}

/// Converts a top-level reply value to JSON.
///
/// Integers are JSON numbers, nil is `null`, simple and bulk strings are JSON strings,
/// arrays (nested to any depth) are JSON arrays. RESP3-only types, which Redis does not
/// send over this proxy's RESP2 connection, are mapped onto their RESP2 shapes: maps and
/// attributes become flat `[k1, v1, k2, v2]` arrays, sets and pushes arrays, doubles
/// strings, booleans `1`/`0`.
pub fn result_to_json(value: &Value, encoding: Encoding) -> Json {
    let is_ok_status = match value {
        Value::Okay => true,
        Value::SimpleString(s) => s == "OK",
        _ => false,
    };
    if is_ok_status {
        return Json::String("OK".to_owned());
    }
    value_to_json(value, encoding)
}

fn value_to_json(value: &Value, encoding: Encoding) -> Json {
    match value {
        Value::Nil => Json::Null,
        Value::Int(i) => Json::from(*i),
        Value::BulkString(bytes) => string(bytes, encoding),
        Value::SimpleString(s) => string(s.as_bytes(), encoding),
        Value::Okay => string(b"OK", encoding),
        Value::Array(items) | Value::Set(items) => array(items, encoding),
        Value::Push { data, .. } => array(data, encoding),
        Value::Map(pairs) => Json::Array(
            pairs
                .iter()
                .flat_map(|(k, v)| [value_to_json(k, encoding), value_to_json(v, encoding)])
                .collect(),
        ),
        Value::Attribute { data, .. } => value_to_json(data, encoding),
        Value::Double(d) => string(format_double(*d).as_bytes(), encoding),
        Value::Boolean(b) => Json::from(i64::from(*b)),
        Value::VerbatimString { text, .. } => string(text.as_bytes(), encoding),
        Value::ServerError(err) => string(server_error_text(err).as_bytes(), encoding),
        // Big numbers (RESP3 only) and future variants of the non-exhaustive `Value`
        // are shown by their debug form.
        other => string(format!("{other:?}").as_bytes(), encoding),
    }
}

/// Appends `reply` in RESP2 (`+OK\r\n`, `$3\r\nbar\r\n`, `:1\r\n`, `*2\r\n...`,
/// `-ERR ...\r\n`), the bytes a TCP client would read for it. RESP3-only types take the
/// RESP2 shapes [`result_to_json`] gives them.
pub fn write_resp2(reply: &Reply, out: &mut Vec<u8>) {
    match reply {
        Ok(value) => value_to_resp2(value, out),
        Err(message) => line(b'-', message.as_bytes(), out),
    }
}

fn value_to_resp2(value: &Value, out: &mut Vec<u8>) {
    match value {
        Value::Nil => out.extend_from_slice(b"$-1\r\n"),
        Value::Int(i) => line(b':', i.to_string().as_bytes(), out),
        Value::BulkString(bytes) => bulk(bytes, out),
        Value::SimpleString(s) => line(b'+', s.as_bytes(), out),
        Value::Okay => out.extend_from_slice(b"+OK\r\n"),
        Value::Array(items) | Value::Set(items) | Value::Push { data: items, .. } => {
            line(b'*', items.len().to_string().as_bytes(), out);
            for item in items {
                value_to_resp2(item, out);
            }
        }
        Value::Map(pairs) => {
            line(b'*', (pairs.len() * 2).to_string().as_bytes(), out);
            for (k, v) in pairs {
                value_to_resp2(k, out);
                value_to_resp2(v, out);
            }
        }
        Value::Attribute { data, .. } => value_to_resp2(data, out),
        Value::Double(d) => bulk(format_double(*d).as_bytes(), out),
        Value::Boolean(b) => line(b':', if *b { b"1" } else { b"0" }, out),
        Value::VerbatimString { text, .. } => bulk(text.as_bytes(), out),
        Value::ServerError(err) => line(b'-', server_error_text(err).as_bytes(), out),
        other => bulk(format!("{other:?}").as_bytes(), out),
    }
}

/// A one-line RESP2 item; a line break inside (never sent by Redis) becomes a space.
fn line(kind: u8, text: &[u8], out: &mut Vec<u8>) {
    out.push(kind);
    out.extend(
        text.iter()
            .map(|&b| if b == b'\r' || b == b'\n' { b' ' } else { b }),
    );
    out.extend_from_slice(b"\r\n");
}

fn bulk(bytes: &[u8], out: &mut Vec<u8>) {
    line(b'$', bytes.len().to_string().as_bytes(), out);
    out.extend_from_slice(bytes);
    out.extend_from_slice(b"\r\n");
}

fn array(items: &[Value], encoding: Encoding) -> Json {
    Json::Array(items.iter().map(|v| value_to_json(v, encoding)).collect())
}

fn string(bytes: &[u8], encoding: Encoding) -> Json {
    match encoding {
        Encoding::Plain => Json::String(String::from_utf8_lossy(bytes).into_owned()),
        Encoding::Base64 => Json::String(BASE64.encode(bytes)),
    }
}

/// Formats a RESP3 double the way Redis writes it in RESP2 (`inf`, `-inf`, `nan`, `1.5`).
fn format_double(d: f64) -> String {
    if d.is_nan() {
        "nan".to_owned()
    } else if d.is_infinite() {
        if d > 0.0 { "inf" } else { "-inf" }.to_owned()
    } else {
        d.to_string()
    }
}

/// The text Redis sent for an error reply, e.g. `ERR value is not an integer or out of range`.
pub fn server_error_text(err: &redis::ServerError) -> String {
    match err.details() {
        Some(detail) => format!("{} {}", err.code(), detail),
        None => err.code().to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bulk(s: &[u8]) -> Value {
        Value::BulkString(s.to_vec())
    }

    #[test]
    fn plain_shapes() {
        assert_eq!(result_to_json(&Value::Nil, Encoding::Plain), Json::Null);
        assert_eq!(
            result_to_json(&Value::Int(137), Encoding::Plain),
            json!(137)
        );
        assert_eq!(result_to_json(&Value::Okay, Encoding::Plain), json!("OK"));
        let scan = Value::Array(vec![
            bulk(b"0"),
            Value::Array(vec![bulk(b"k1"), bulk(b"k2")]),
        ]);
        assert_eq!(
            result_to_json(&scan, Encoding::Plain),
            json!(["0", ["k1", "k2"]])
        );
        assert_eq!(
            result_to_json(
                &Value::Array(vec![bulk(b"v1"), Value::Nil]),
                Encoding::Plain
            ),
            json!(["v1", null])
        );
    }

    #[test]
    fn plain_replaces_invalid_utf8() {
        assert_eq!(
            result_to_json(&bulk(&[b'a', 0xff, b'b']), Encoding::Plain),
            json!("a\u{FFFD}b")
        );
    }

    #[test]
    fn base64_encodes_every_string_but_top_level_ok() {
        assert_eq!(result_to_json(&Value::Okay, Encoding::Base64), json!("OK"));
        assert_eq!(
            result_to_json(&bulk(b"bar"), Encoding::Base64),
            json!("YmFy")
        );
        assert_eq!(
            result_to_json(&bulk(b"OK"), Encoding::Base64),
            json!("T0s=")
        );
        assert_eq!(
            result_to_json(&Value::SimpleString("PONG".into()), Encoding::Base64),
            json!("UE9ORw==")
        );
        let nested = Value::Array(vec![
            bulk(b"0"),
            Value::Array(vec![bulk(&[0xff, 0x00]), Value::Okay, Value::Int(3)]),
        ]);
        assert_eq!(
            result_to_json(&nested, Encoding::Base64),
            json!(["MA==", ["/wA=", "T0s=", 3]])
        );
    }

    #[test]
    fn resp3_types_take_resp2_shapes() {
        let map = Value::Map(vec![(bulk(b"f"), Value::Double(1.5))]);
        assert_eq!(result_to_json(&map, Encoding::Plain), json!(["f", "1.5"]));
        assert_eq!(
            result_to_json(&Value::Boolean(true), Encoding::Plain),
            json!(1)
        );
        assert_eq!(
            result_to_json(&Value::Double(f64::INFINITY), Encoding::Plain),
            json!("inf")
        );
    }

    #[test]
    fn resp2_bytes_as_redis_sends_them() {
        let resp2 = |reply: Reply| {
            let mut out = Vec::new();
            write_resp2(&reply, &mut out);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(resp2(Ok(Value::Okay)), "+OK\r\n");
        assert_eq!(resp2(Ok(bulk(b"bar"))), "$3\r\nbar\r\n");
        assert_eq!(resp2(Ok(Value::Nil)), "$-1\r\n");
        assert_eq!(resp2(Ok(Value::Int(-7))), ":-7\r\n");
        assert_eq!(
            resp2(Ok(Value::Array(vec![bulk(b"0"), Value::Array(vec![])]))),
            "*2\r\n$1\r\n0\r\n*0\r\n"
        );
        assert_eq!(resp2(Err("ERR bad\r\nthing".into())), "-ERR bad  thing\r\n");
        assert_eq!(
            resp2(Ok(Value::Map(vec![(bulk(b"f"), Value::Double(1.5))]))),
            "*2\r\n$1\r\nf\r\n$3\r\n1.5\r\n"
        );
    }

    #[test]
    fn header_selects_format() {
        assert_eq!(Format::from_header(None), Ok(Format::Json));
        assert_eq!(Format::from_header(Some(b"JSON")), Ok(Format::Json));
        assert_eq!(Format::from_header(Some(b" resp2 ")), Ok(Format::Resp2));
        assert_eq!(Format::from_header(Some(b"xml")), Err("xml".to_owned()));
    }

    #[test]
    fn header_selects_encoding() {
        assert_eq!(Encoding::from_header(Some(b"base64")), Encoding::Base64);
        assert_eq!(Encoding::from_header(Some(b" BASE64 ")), Encoding::Base64);
        assert_eq!(Encoding::from_header(Some(b"utf8")), Encoding::Plain);
        assert_eq!(Encoding::from_header(None), Encoding::Plain);
    }
}
