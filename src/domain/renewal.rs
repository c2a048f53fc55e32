//! A renewed token written back in the format of the value it replaces: a bare token stays a
//! bare token; a JSON value keeps every byte except the renewed fields' values (the token
//! field it used, its expiry field, `mdAccessToken`), which are replaced in place. A missing
//! expiry field is added as `expirationTime` (and `mdAccessToken` when the answer has one),
//! after the last member.

use std::ops::Range;

use chrono::{DateTime, Utc};

use super::token_value::{parse_token_value, ValueFormat, EXPIRY_FIELDS, TOKEN_FIELDS};

/// What a renewal handed out, as the value rewrite needs it.
#[derive(Clone, Copy)]
pub struct NewToken<'a> {
    /// The new access token.
    pub access_token: &'a str,
    /// The new market-data token, when the answer had one.
    pub md_access_token: Option<&'a str>,
    /// When it expires.
    pub expiration_time: DateTime<Utc>,
    /// The expiry as the answer wrote it (used where the old value held a time string).
    pub expiration_text: &'a str,
}

/// Why a value cannot be rewritten (it is not a token value this crate reads).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RewriteError {
    #[error("the value is not a token value ({0})")]
    NotATokenValue(String),
}

/// The value to write in place of `old` for `new`. Guarantees: the result parses (with
/// `parse_token_value`) to `new.access_token` in the same format as `old`; a JSON result
/// equals `old` outside the replaced values and the appended members.
pub fn renewed_value(old: &[u8], new: &NewToken<'_>) -> Result<Vec<u8>, RewriteError> {
    let parsed = parse_token_value(old).map_err(|e| RewriteError::NotATokenValue(e.to_string()))?;
    if parsed.format == ValueFormat::Raw {
        return Ok(new.access_token.as_bytes().to_vec());
    }
    // parse_token_value accepted it as JSON, so it is UTF-8 and a JSON object.
    let text =
        std::str::from_utf8(old).map_err(|_| RewriteError::NotATokenValue("not UTF-8".into()))?;
    let members = object_members(text)
        .ok_or_else(|| RewriteError::NotATokenValue("not a JSON object".into()))?;
    let values_of = |key: &str| -> Vec<&str> {
        members
            .iter()
            .filter(|m| m.key == key)
            .map(|m| &text[m.value.clone()])
            .collect()
    };
    let present = |key: &str| values_of(key).last().is_some_and(|v| *v != "null");

    let mut edits: Vec<(Range<usize>, String)> = Vec::new();
    let token_field = TOKEN_FIELDS
        .into_iter()
        .find(|f| {
            values_of(f)
                .iter()
                .any(|v| v.starts_with('"') && *v != "\"\"")
        })
        .ok_or_else(|| RewriteError::NotATokenValue("no token field".into()))?;
    // The expiry field the parser reads; else an `expirationTime: null` to fill in.
    let expiry_field = EXPIRY_FIELDS.into_iter().find(|f| present(f)).or_else(|| {
        members
            .iter()
            .any(|m| m.key == "expirationTime")
            .then_some("expirationTime")
    });
    for member in &members {
        let old_value = &text[member.value.clone()];
        let replacement = if member.key == token_field {
            Some(json_string(new.access_token))
        } else if Some(member.key.as_str()) == expiry_field {
            Some(expiry_like(old_value, new))
        } else if member.key == "mdAccessToken" {
            new.md_access_token.map(json_string)
        } else {
            None
        };
        if let Some(replacement) = replacement {
            edits.push((member.value.clone(), replacement));
        }
    }
    let mut appended = String::new();
    if expiry_field.is_none() {
        appended.push_str(&format!(
            ",\"expirationTime\":{}",
            json_string(new.expiration_text)
        ));
    }
    if let (Some(md), false) = (
        new.md_access_token,
        members.iter().any(|m| m.key == "mdAccessToken"),
    ) {
        appended.push_str(&format!(",\"mdAccessToken\":{}", json_string(md)));
    }
    if !appended.is_empty() {
        let end = members.last().map_or(0, |m| m.value.end);
        edits.push((end..end, appended));
    }
    edits.sort_by_key(|(range, _)| range.start);
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for (range, replacement) in edits {
        out.push_str(&text[at..range.start]);
        out.push_str(&replacement);
        at = range.end;
    }
    out.push_str(&text[at..]);
    Ok(out.into_bytes())
}

fn json_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialise")
}

/// The new expiry written like the old one: epoch seconds or milliseconds (as a number, or as
/// a numeric string) stay so; a time string becomes the answer's `expirationTime` text.
fn expiry_like(old: &str, new: &NewToken<'_>) -> String {
    let (quoted, inner) = match old.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        Some(inner) => (true, inner.trim()),
        None => (false, old.trim()),
    };
    let Ok(number) = inner.parse::<f64>() else {
        return json_string(new.expiration_text);
    };
    let epoch = if number >= 1e11 {
        new.expiration_time.timestamp_millis()
    } else {
        new.expiration_time.timestamp()
    };
    if quoted {
        format!("\"{epoch}\"")
    } else {
        epoch.to_string()
    }
}

/// A member of a JSON object: its decoded key and the byte range of its value.
struct Member {
    key: String,
    value: Range<usize>,
}

/// The top-level members of the JSON object `text` (which must be valid JSON), in order.
fn object_members(text: &str) -> Option<Vec<Member>> {
    let bytes = text.as_bytes();
    let mut i = skip_ws(bytes, 0);
    if bytes.get(i) != Some(&b'{') {
        return None;
    }
    i = skip_ws(bytes, i + 1);
    let mut members = Vec::new();
    if bytes.get(i) == Some(&b'}') {
        return Some(members);
    }
    loop {
        let key_end = skip_string(bytes, i)?;
        let key: String = serde_json::from_str(&text[i..key_end]).ok()?;
        i = skip_ws(bytes, key_end);
        if bytes.get(i) != Some(&b':') {
            return None;
        }
        let start = skip_ws(bytes, i + 1);
        let end = skip_value(bytes, start)?;
        members.push(Member {
            key,
            value: start..end,
        });
        i = skip_ws(bytes, end);
        match bytes.get(i) {
            Some(b',') => i = skip_ws(bytes, i + 1),
            Some(b'}') => return Some(members),
            _ => return None,
        }
    }
}

fn skip_ws(bytes: &[u8], mut i: usize) -> usize {
    while bytes
        .get(i)
        .is_some_and(|b| matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
    {
        i += 1;
    }
    i
}

/// The end (exclusive) of the string starting at `i` (a `"`).
fn skip_string(bytes: &[u8], mut i: usize) -> Option<usize> {
    if bytes.get(i) != Some(&b'"') {
        return None;
    }
    i += 1;
    loop {
        match bytes.get(i)? {
            b'\\' => i += 2,
            b'"' => return Some(i + 1),
            _ => i += 1,
        }
    }
}

/// The end (exclusive) of the JSON value starting at `i`.
fn skip_value(bytes: &[u8], i: usize) -> Option<usize> {
    match bytes.get(i)? {
        b'"' => skip_string(bytes, i),
        b'{' | b'[' => {
            let mut depth = 0usize;
            let mut j = i;
            loop {
                match bytes.get(j)? {
                    b'"' => {
                        j = skip_string(bytes, j)?;
                        continue;
                    }
                    b'{' | b'[' => depth += 1,
                    b'}' | b']' => {
                        depth -= 1;
                        if depth == 0 {
                            return Some(j + 1);
                        }
                    }
                    _ => {}
                }
                j += 1;
            }
        }
        _ => {
            let mut j = i;
            while bytes
                .get(j)
                .is_some_and(|b| !matches!(b, b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r'))
            {
                j += 1;
            }
            (j > i).then_some(j)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token_value::parse_token_value;

    fn new_token(md: Option<&'static str>) -> NewToken<'static> {
        NewToken {
            access_token: "eyJnew.payload.sig",
            md_access_token: md,
            expiration_time: DateTime::parse_from_rfc3339("2026-12-01T11:20:00.000Z")
                .unwrap()
                .with_timezone(&Utc),
            expiration_text: "2026-12-01T11:20:00.000Z",
        }
    }

    fn rewrite(old: &str, md: Option<&'static str>) -> String {
        String::from_utf8(renewed_value(old.as_bytes(), &new_token(md)).unwrap()).unwrap()
    }

    #[test]
    fn a_raw_token_stays_raw() {
        assert_eq!(
            rewrite("eyJold.payload.sig", Some("md")),
            "eyJnew.payload.sig"
        );
    }

    #[test]
    fn json_keeps_every_byte_but_the_renewed_values() {
        let old = "  {\n  \"userId\" : 136189,\"accessToken\":  \"eyJold.p.s\",\n  \"nested\": {\"accessToken\": \"inner\", \"list\": [1, \"]}\"]},\n  \"expirationTime\": \"2026-12-01T10:00:00Z\", \"mdAccessToken\":\"eyJmd-old\",\n  \"name\": \"caf\\u00e9 \\\"x\\\"\" }\n";
        let new = rewrite(old, Some("eyJmd-new"));
        let want = old
            .replace("\"eyJold.p.s\"", "\"eyJnew.payload.sig\"")
            .replace("\"2026-12-01T10:00:00Z\"", "\"2026-12-01T11:20:00.000Z\"")
            .replace("\"eyJmd-old\"", "\"eyJmd-new\"");
        assert_eq!(new, want);
        let parsed = parse_token_value(new.as_bytes()).unwrap();
        assert_eq!(parsed.access_token, "eyJnew.payload.sig");
        assert_eq!(parsed.md_access_token.as_deref(), Some("eyJmd-new"));
        assert_eq!(
            parsed.explicit_expiry,
            Some(new_token(None).expiration_time)
        );
    }

    #[test]
    fn epoch_expiries_keep_their_unit_and_type() {
        let exp = new_token(None).expiration_time;
        assert_eq!(
            rewrite(r#"{"token":"a","expires_at":1764583200}"#, None),
            format!(
                r#"{{"token":"eyJnew.payload.sig","expires_at":{}}}"#,
                exp.timestamp()
            )
        );
        assert_eq!(
            rewrite(
                r#"{"access_token":"a","expirationTime":1764583200000}"#,
                None
            ),
            format!(
                r#"{{"access_token":"eyJnew.payload.sig","expirationTime":{}}}"#,
                exp.timestamp_millis()
            )
        );
        assert_eq!(
            rewrite(r#"{"accessToken":"a","expirationTime":"1764583200"}"#, None),
            format!(
                r#"{{"accessToken":"eyJnew.payload.sig","expirationTime":"{}"}}"#,
                exp.timestamp()
            )
        );
    }

    #[test]
    fn missing_fields_are_appended_and_md_is_kept_without_a_new_one() {
        assert_eq!(
            rewrite(r#"{"accessToken":"a", "userId": 7 }"#, Some("m2")),
            r#"{"accessToken":"eyJnew.payload.sig", "userId": 7,"expirationTime":"2026-12-01T11:20:00.000Z","mdAccessToken":"m2" }"#
        );
        assert_eq!(
            rewrite(
                r#"{"accessToken":"a","mdAccessToken":"m1","expirationTime":null}"#,
                None
            ),
            r#"{"accessToken":"eyJnew.payload.sig","mdAccessToken":"m1","expirationTime":"2026-12-01T11:20:00.000Z"}"#
        );
        // The first token field holding a string is the one replaced, as the parser reads it.
        assert_eq!(
            rewrite(
                r#"{"accessToken":"","token":"a","expires_at":"2026-12-01T10:00:00+00:00"}"#,
                None
            ),
            r#"{"accessToken":"","token":"eyJnew.payload.sig","expires_at":"2026-12-01T11:20:00.000Z"}"#
        );
    }

    #[test]
    fn values_that_are_not_tokens_are_refused() {
        for bad in ["", "{", "[1]", "{\"x\":1}"] {
            assert!(
                renewed_value(bad.as_bytes(), &new_token(None)).is_err(),
                "{bad}"
            );
        }
    }
}
