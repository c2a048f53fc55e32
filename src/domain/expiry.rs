//! When a token expires, and how we know: an explicit field in the value, the token's own JWT
//! `exp` claim, the Redis key's TTL, or not at all.

use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::token_value::{TokenValue, MAX_EPOCH_SECONDS};

/// Where an expiry came from (`metadata.expires_source`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ExpirySource {
    /// The value's `expirationTime`/`expires_at` field.
    Explicit,
    /// The `exp` claim of the access token, a JWT.
    JwtExp,
    /// The time of the sync plus the Redis key's remaining TTL.
    RedisTtl,
    /// None of the above: the expiry is unknown.
    Unknown,
}

impl ExpirySource {
    /// `explicit`, `jwt_exp`, `redis_ttl` or `unknown`.
    pub fn as_str(self) -> &'static str {
        match self {
            ExpirySource::Explicit => "explicit",
            ExpirySource::JwtExp => "jwt_exp",
            ExpirySource::RedisTtl => "redis_ttl",
            ExpirySource::Unknown => "unknown",
        }
    }
}

impl fmt::Display for ExpirySource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Redis key's remaining lifetime, as PTTL reports it (no -1/-2 numbers past the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Ttl {
    /// The key exists and has no expiry (PTTL -1).
    Persistent,
    /// The key does not exist (PTTL -2).
    Missing,
    /// The key expires in this many milliseconds (PTTL 0 or more).
    Millis(u64),
}

impl Ttl {
    /// Reads a PTTL answer: -1 [`Ttl::Persistent`], -2 [`Ttl::Missing`], 0 or more
    /// [`Ttl::Millis`]; `None` for any other (negative) number, which Redis never answers.
    pub fn from_pttl(pttl: i64) -> Option<Ttl> {
        match pttl {
            -1 => Some(Ttl::Persistent),
            -2 => Some(Ttl::Missing),
            ms => u64::try_from(ms).ok().map(Ttl::Millis),
        }
    }

    /// The milliseconds left, for a key that expires.
    pub fn millis(self) -> Option<u64> {
        match self {
            Ttl::Millis(ms) => Some(ms),
            Ttl::Persistent | Ttl::Missing => None,
        }
    }
}

/// The `exp` claim of a JWT, read without verifying the signature (we only copy tokens, we
/// do not trust them).
///
/// Returns `Some` only when `token` is three dot-separated segments with non-empty header and
/// payload, the payload is base64url (padding tolerated) of a JSON object, and its `exp` is a
/// number of seconds after the epoch up to the end of year 9999 (fractions kept to the
/// millisecond). Anything else, including a negative, zero, string or absurdly large `exp`,
/// is `None`. Never panics.
pub fn jwt_exp(token: &str) -> Option<DateTime<Utc>> {
    let mut parts = token.split('.');
    let (header, payload, _signature) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some() || header.is_empty() || payload.is_empty() {
        return None;
    }
    let bytes = crate::crypto::decode_base64_lenient(payload)?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    let exp = claims.as_object()?.get("exp")?;
    let exp = exp.as_number()?;
    if let Some(secs) = exp.as_i64() {
        if secs <= 0 || secs > MAX_EPOCH_SECONDS {
            return None;
        }
        return DateTime::from_timestamp(secs, 0);
    }
    let secs = exp.as_f64()?;
    if !secs.is_finite() || secs <= 0.0 || secs > MAX_EPOCH_SECONDS as f64 {
        return None;
    }
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

/// The expiry of `value` and where it came from, by precedence: the explicit field; else the
/// JWT `exp` of the access token; else `now + ttl` when the key expires in more than 0 ms;
/// else `(None, ExpirySource::Unknown)`.
///
/// Guarantees: the source is [`ExpirySource::Unknown`] exactly when the expiry is `None`.
/// Deterministic: the clock is the `now` passed in.
pub fn resolve_expiry(
    value: &TokenValue,
    ttl: Ttl,
    now: DateTime<Utc>,
) -> (Option<DateTime<Utc>>, ExpirySource) {
    if let Some(at) = value.explicit_expiry {
        return (Some(at), ExpirySource::Explicit);
    }
    if let Some(at) = jwt_exp(&value.access_token) {
        return (Some(at), ExpirySource::JwtExp);
    }
    if let Some(at) = ttl
        .millis()
        .filter(|ms| *ms > 0)
        .and_then(|ms| i64::try_from(ms).ok())
        .and_then(TimeDelta::try_milliseconds)
        .and_then(|ttl| now.checked_add_signed(ttl))
    {
        return (Some(at), ExpirySource::RedisTtl);
    }
    (None, ExpirySource::Unknown)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::token_value::parse_token_value;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE, URL_SAFE_NO_PAD};
    use base64::Engine;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn jwt_with(payload: &str, engine: &impl Engine) -> String {
        format!(
            "{}.{}.{}",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#),
            engine.encode(payload),
            URL_SAFE_NO_PAD.encode("sig")
        )
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2025, 10, 17, 13, 45, 0).unwrap()
    }

    #[test]
    fn reads_exp_without_padding() {
        // Payload length chosen so that base64 needs padding.
        let payload = r#"{"sub":"1","exp":1729176300}"#;
        assert_ne!(payload.len() % 3, 0);
        let t = jwt_with(payload, &URL_SAFE_NO_PAD);
        assert!(!t.contains('='));
        assert_eq!(jwt_exp(&t).unwrap().timestamp(), 1_729_176_300);
    }

    #[test]
    fn tolerates_padding_and_standard_alphabet() {
        let payload = r#"{"sub":"1","exp":1729176300}"#;
        let t = jwt_with(payload, &URL_SAFE);
        assert!(t.contains('='));
        assert_eq!(jwt_exp(&t).unwrap().timestamp(), 1_729_176_300);
        // A payload whose standard encoding contains `+` or `/`.
        let payload = r#"{"exp":1729176300,"x":"~~~???>>>"}"#;
        let t = jwt_with(payload, &STANDARD);
        assert!(t.contains('+') || t.contains('/'), "{t}");
        assert_eq!(jwt_exp(&t).unwrap().timestamp(), 1_729_176_300);
    }

    #[test]
    fn fractional_exp_and_empty_signature() {
        let t = jwt_with(r#"{"exp":1729176300.25}"#, &URL_SAFE_NO_PAD);
        assert_eq!(jwt_exp(&t).unwrap().timestamp_millis(), 1_729_176_300_250);
        let unsigned = format!(
            "{}.{}.",
            URL_SAFE_NO_PAD.encode(r#"{"alg":"none"}"#),
            URL_SAFE_NO_PAD.encode(r#"{"exp":1729176300}"#)
        );
        assert_eq!(jwt_exp(&unsigned).unwrap().timestamp(), 1_729_176_300);
    }

    #[test]
    fn bogus_exp_is_none() {
        for payload in [
            r#"{"exp":-1}"#,
            r#"{"exp":0}"#,
            r#"{"exp":"1729176300"}"#,
            r#"{"exp":null}"#,
            r#"{"exp":true}"#,
            r#"{"exp":253402300800}"#,
            r#"{"exp":1e300}"#,
            r#"{"exp":18446744073709551615}"#,
            r#"{"exp":-0.5}"#,
            r#"{"sub":"no exp"}"#,
            r#"[1729176300]"#,
            r#"1729176300"#,
            "not json",
        ] {
            let t = jwt_with(payload, &URL_SAFE_NO_PAD);
            assert_eq!(jwt_exp(&t), None, "{payload}");
        }
        // The last accepted second.
        let t = jwt_with(r#"{"exp":253402300799}"#, &URL_SAFE_NO_PAD);
        assert_eq!(
            jwt_exp(&t),
            Some(Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap())
        );
    }

    #[test]
    fn non_jwts_are_none() {
        let p = URL_SAFE_NO_PAD.encode(r#"{"exp":1729176300}"#);
        for t in [
            String::new(),
            "opaque-token".into(),
            format!("a.{p}"),
            format!("a.{p}.c.d"),
            format!(".{p}.c"),
            "a..c".into(),
            "a.!!!.c".into(),
            format!("a.{p}x.c"),
        ] {
            assert_eq!(jwt_exp(&t), None, "{t}");
        }
    }

    #[test]
    fn source_names() {
        assert_eq!(ExpirySource::Explicit.as_str(), "explicit");
        assert_eq!(ExpirySource::JwtExp.as_str(), "jwt_exp");
        assert_eq!(ExpirySource::RedisTtl.as_str(), "redis_ttl");
        assert_eq!(ExpirySource::Unknown.as_str(), "unknown");
        for s in [
            ExpirySource::Explicit,
            ExpirySource::JwtExp,
            ExpirySource::RedisTtl,
            ExpirySource::Unknown,
        ] {
            assert_eq!(
                serde_json::to_value(s).unwrap(),
                Value::String(s.as_str().into())
            );
            assert_eq!(s.to_string(), s.as_str());
        }
    }

    #[test]
    fn resolve_explicit_wins() {
        let jwt = jwt_with(r#"{"exp":1729176300}"#, &URL_SAFE_NO_PAD);
        let raw = format!(r#"{{"accessToken":"{jwt}","expirationTime":"2025-10-17T14:45:00Z"}}"#);
        let v = parse_token_value(raw.as_bytes()).unwrap();
        let (at, src) = resolve_expiry(&v, Ttl::Millis(60_000), now());
        assert_eq!(src, ExpirySource::Explicit);
        assert_eq!(
            at,
            Some(Utc.with_ymd_and_hms(2025, 10, 17, 14, 45, 0).unwrap())
        );
    }

    #[test]
    fn resolve_jwt_exp_beats_ttl() {
        let jwt = jwt_with(r#"{"exp":1729176300}"#, &URL_SAFE_NO_PAD);
        let v = parse_token_value(jwt.as_bytes()).unwrap();
        let (at, src) = resolve_expiry(&v, Ttl::Millis(60_000), now());
        assert_eq!(src, ExpirySource::JwtExp);
        assert_eq!(at.unwrap().timestamp(), 1_729_176_300);
    }

    #[test]
    fn resolve_redis_ttl() {
        let v = TokenValue::raw("opaque");
        let (at, src) = resolve_expiry(&v, Ttl::Millis(3_600_000), now());
        assert_eq!(src, ExpirySource::RedisTtl);
        assert_eq!(at, Some(now() + TimeDelta::hours(1)));
        let (at, src) = resolve_expiry(&v, Ttl::Millis(1), now());
        assert_eq!(src, ExpirySource::RedisTtl);
        assert_eq!(at, Some(now() + TimeDelta::milliseconds(1)));
    }

    #[test]
    fn resolve_unknown() {
        let v = TokenValue::raw("opaque");
        for ttl in [Ttl::Persistent, Ttl::Missing, Ttl::Millis(0)] {
            assert_eq!(
                resolve_expiry(&v, ttl, now()),
                (None, ExpirySource::Unknown),
                "{ttl:?}"
            );
        }
        // A TTL too large to add to `now` is unknown rather than a panic.
        for ms in [i64::MAX as u64, u64::MAX] {
            assert_eq!(
                resolve_expiry(&v, Ttl::Millis(ms), now()),
                (None, ExpirySource::Unknown)
            );
        }
    }

    #[test]
    fn ttl_reads_pttl_answers() {
        assert_eq!(Ttl::from_pttl(-1), Some(Ttl::Persistent));
        assert_eq!(Ttl::from_pttl(-2), Some(Ttl::Missing));
        assert_eq!(Ttl::from_pttl(0), Some(Ttl::Millis(0)));
        assert_eq!(Ttl::from_pttl(1500), Some(Ttl::Millis(1500)));
        for bad in [-3, i64::MIN] {
            assert_eq!(Ttl::from_pttl(bad), None);
        }
        assert_eq!(Ttl::Millis(5).millis(), Some(5));
        assert_eq!(Ttl::Persistent.millis(), None);
    }

    proptest! {
        #[test]
        fn jwt_exp_never_panics(s in "[A-Za-z0-9_\\-=+/.]{0,200}") {
            let _ = jwt_exp(&s);
        }

        #[test]
        fn jwt_exp_round_trips(secs in 1i64..=MAX_EPOCH_SECONDS, pad in any::<bool>()) {
            let payload = format!(r#"{{"exp":{secs}}}"#);
            let t = if pad { jwt_with(&payload, &URL_SAFE) } else { jwt_with(&payload, &URL_SAFE_NO_PAD) };
            prop_assert_eq!(jwt_exp(&t).map(|d| d.timestamp()), Some(secs));
        }

        #[test]
        fn resolve_source_is_unknown_iff_none(tok in "[!-~]{1,80}", pttl in any::<i64>()) {
            prop_assume!(!tok.starts_with(['{', '[', '"']));
            let v = parse_token_value(tok.as_bytes()).unwrap();
            let ttl = Ttl::from_pttl(pttl).unwrap_or(Ttl::Missing);
            let (at, src) = resolve_expiry(&v, ttl, now());
            prop_assert_eq!(at.is_none(), src == ExpirySource::Unknown);
            if src == ExpirySource::RedisTtl {
                prop_assert!(at.unwrap() > now());
            }
        }
    }
}
