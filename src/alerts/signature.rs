//! The signature of an alert body, as Stripe and Nango sign their webhooks: HMAC-SHA256 with
//! `ALERT_WEBHOOK_SECRET` over `"{timestamp}.{body}"`, sent as
//! `X-Token-Manager-Signature: t=<unix seconds>,v1=<hex>`. The timestamp (and the event id
//! header) let a receiver reject old or repeated deliveries.

use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The header that carries the signature.
pub const HEADER: &str = "x-token-manager-signature";

/// The hex HMAC-SHA256 of `"{timestamp}.{body}"` under `secret`.
pub fn sign(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// The header value: `t=<timestamp>,v1=<signature>`.
pub fn header_value(secret: &str, timestamp: i64, body: &str) -> String {
    format!("t={timestamp},v1={}", sign(secret, timestamp, body))
}

/// True when `header` is a valid signature of `body` under `secret` (constant-time compare);
/// what a receiver does, here for the tests and the README's example.
pub fn verify(secret: &str, header: &str, body: &str) -> bool {
    let mut timestamp = None;
    let mut signature = None;
    for part in header.split(',') {
        match part.trim().split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", v)) => signature = Some(v),
            _ => {}
        }
    }
    let (Some(timestamp), Some(signature)) = (timestamp, signature) else {
        return false;
    };
    let Ok(signature) = hex::decode(signature) else {
        return false;
    };
    let mut mac =
        Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any size");
    mac.update(timestamp.to_string().as_bytes());
    mac.update(b".");
    mac.update(body.as_bytes());
    mac.verify_slice(&signature).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_answer() {
        // python3 -c 'import hmac,hashlib;print(hmac.new(b"secret",b"1700000000.{}",hashlib.sha256).hexdigest())'
        assert_eq!(
            sign("secret", 1_700_000_000, "{}"),
            "b8569b78799ff9e3cbff0fc2d63a33a2b57f3282abd07c37ae5e8e7d79a5f163"
        );
    }

    #[test]
    fn verifies_its_own_and_nothing_else() {
        let header = header_value("s3cret-s3cret-s3cret", 1_700_000_000, r#"{"a":1}"#);
        assert!(verify("s3cret-s3cret-s3cret", &header, r#"{"a":1}"#));
        assert!(!verify("s3cret-s3cret-s3cret", &header, r#"{"a":2}"#));
        assert!(!verify("other-other-other!", &header, r#"{"a":1}"#));
        let replayed_later = header.replace("t=1700000000", "t=1700000001");
        assert!(!verify(
            "s3cret-s3cret-s3cret",
            &replayed_later,
            r#"{"a":1}"#
        ));
        assert!(!verify("s3cret-s3cret-s3cret", "garbage", r#"{"a":1}"#));
    }
}
