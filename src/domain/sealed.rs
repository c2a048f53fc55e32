//! The secrets of one account's token row and their sealed (encrypted) form: the one place
//! that turns plaintext tokens into what Postgres stores, and back.
//!
//! A row's secrets are its access token (the `access_token` column), its market-data
//! token (`metadata.md_access_token`) and, for a JSON value, the value exactly as read from
//! Redis (`metadata.redis_value`, which a restore writes back). Each is sealed by [`Keyring::seal`] for its
//! [`SecretField`] and its account, so a ciphertext copied to another row or another field
//! does not open. To add a secret: a [`SecretField`] variant, a field here in both types, a
//! line in [`TokenSecrets::seal`] and in [`SealedToken::open`].

use std::fmt;

use serde_json::Value;

pub use crate::crypto::SecretField;
use crate::crypto::{DecryptError, Keyring};

/// The metadata key that holds the sealed market-data token.
pub const MD_METADATA_KEY: &str = "md_access_token";
/// The metadata key that holds the sealed Redis value (JSON values only).
pub const VALUE_METADATA_KEY: &str = "redis_value";

/// One account's secrets in plaintext. `Debug` shows only their lengths.
#[derive(Clone, PartialEq, Eq)]
pub struct TokenSecrets {
    /// The access token.
    pub access_token: String,
    /// The market-data token (`mdAccessToken`), if the value had one.
    pub md_access_token: Option<String>,
    /// The Redis value as read, for a JSON value (a raw value is the access token itself).
    pub redis_value: Option<String>,
}

/// One account's secrets as stored: ciphertexts only (nothing here is secret without the
/// key). Read from and written to a row with [`SealedToken::from_row`] and
/// [`SealedToken::into_row`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedToken {
    /// Ciphertext of the access token (`tradovate_tokens.access_token`).
    pub access_token: String,
    /// Ciphertext of the market-data token (`metadata.md_access_token`).
    pub md_access_token: Option<String>,
    /// Ciphertext of the Redis value (`metadata.redis_value`).
    pub redis_value: Option<String>,
}

impl TokenSecrets {
    /// Seals every secret for `account` under the keyring's current key, each with a fresh
    /// nonce.
    ///
    /// # Panics
    /// Only if the platform's secure random source fails (see [`Keyring::seal`]).
    pub fn seal(&self, keyring: &Keyring, account: &str) -> SealedToken {
        let seal = |field, text: &str| keyring.seal(field, account, text.as_bytes());
        SealedToken {
            access_token: seal(SecretField::AccessToken, &self.access_token),
            md_access_token: self
                .md_access_token
                .as_deref()
                .map(|md| seal(SecretField::MdAccessToken, md)),
            redis_value: self
                .redis_value
                .as_deref()
                .map(|value| seal(SecretField::RedisValue, value)),
        }
    }
}

impl SealedToken {
    /// The sealed secrets of a stored row: its `access_token` column, and the market-data
    /// token taken out of `metadata` (so what is left can be shown).
    pub fn from_row(access_token: String, metadata: &mut Value) -> SealedToken {
        let mut take = |key: &str| match metadata.as_object_mut() {
            Some(map) => match map.remove(key) {
                Some(Value::String(sealed)) => Some(sealed),
                Some(other) => {
                    // Not written by us: leave it where it was.
                    map.insert(key.to_string(), other);
                    None
                }
                None => None,
            },
            None => None,
        };
        SealedToken {
            access_token,
            md_access_token: take(MD_METADATA_KEY),
            redis_value: take(VALUE_METADATA_KEY),
        }
    }

    /// Puts the sealed market-data token and Redis value into `metadata` (an object) and
    /// returns the value of the `access_token` column.
    pub fn into_row(self, metadata: &mut Value) -> String {
        if let Some(map) = metadata.as_object_mut() {
            for (key, sealed) in [
                (MD_METADATA_KEY, self.md_access_token),
                (VALUE_METADATA_KEY, self.redis_value),
            ] {
                if let Some(sealed) = sealed {
                    map.insert(key.to_string(), Value::String(sealed));
                }
            }
        }
        self.access_token
    }

    /// Opens every secret of `account`'s row, with the current or a previous key.
    ///
    /// Errors: the first secret that does not open (see [`Keyring::open`]).
    pub fn open(&self, keyring: &Keyring, account: &str) -> Result<TokenSecrets, DecryptError> {
        let open = |field, stored: &str| keyring.open_text(field, account, stored);
        Ok(TokenSecrets {
            access_token: open(SecretField::AccessToken, &self.access_token)?,
            md_access_token: self
                .md_access_token
                .as_deref()
                .map(|md| open(SecretField::MdAccessToken, md))
                .transpose()?,
            redis_value: self
                .redis_value
                .as_deref()
                .map(|value| open(SecretField::RedisValue, value))
                .transpose()?,
        })
    }

    /// `true` when every secret is in the current format under the current key.
    pub fn is_current(&self, keyring: &Keyring) -> bool {
        std::iter::once(&self.access_token)
            .chain(&self.md_access_token)
            .chain(&self.redis_value)
            .all(|stored| keyring.is_current(stored))
    }
}

/// Stands in for a secret in `Debug` output: only its length in bytes.
pub(crate) struct Redacted(pub(crate) usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<redacted, {} bytes>", self.0)
    }
}

impl fmt::Debug for TokenSecrets {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenSecrets")
            .field("access_token", &Redacted(self.access_token.len()))
            .field(
                "md_access_token",
                &self.md_access_token.as_ref().map(|t| Redacted(t.len())),
            )
            .field(
                "redis_value",
                &self.redis_value.as_ref().map(|t| Redacted(t.len())),
            )
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn ring() -> Keyring {
        Keyring::from_base64(KEY, &[]).unwrap()
    }

    fn secrets(md: Option<&str>) -> TokenSecrets {
        TokenSecrets {
            access_token: "eyJ.access.token".into(),
            md_access_token: md.map(str::to_string),
            redis_value: md.map(|md| {
                format!(r#"{{"accessToken":"eyJ.access.token","mdAccessToken":"{md}"}}"#)
            }),
        }
    }

    #[test]
    fn seals_and_opens_through_a_row() {
        let k = ring();
        for md in [None, Some("md-token")] {
            let sealed = secrets(md).seal(&k, "APEX_1");
            assert!(sealed.is_current(&k));
            let mut metadata = json!({ "redis_key": "token:APEX_1" });
            let column = sealed.clone().into_row(&mut metadata);
            assert!(!column.contains("eyJ") && !metadata.to_string().contains("md-token"));
            assert!(!metadata.to_string().contains("eyJ"));
            assert_eq!(metadata.get(MD_METADATA_KEY).is_some(), md.is_some());
            assert_eq!(metadata.get(VALUE_METADATA_KEY).is_some(), md.is_some());
            let read = SealedToken::from_row(column, &mut metadata);
            assert_eq!(read, sealed);
            assert_eq!(metadata, json!({ "redis_key": "token:APEX_1" }));
            assert_eq!(read.open(&k, "APEX_1").unwrap(), secrets(md));
        }
    }

    #[test]
    fn a_field_or_a_row_swapped_does_not_open() {
        let k = ring();
        let sealed = secrets(Some("md-token")).seal(&k, "APEX_1");
        let swapped = SealedToken {
            access_token: sealed.md_access_token.clone().unwrap(),
            md_access_token: Some(sealed.access_token.clone()),
            redis_value: sealed.redis_value.clone(),
        };
        assert_eq!(
            swapped.open(&k, "APEX_1"),
            Err(DecryptError::AuthenticationFailed)
        );
        let value_as_token = SealedToken {
            access_token: sealed.redis_value.clone().unwrap(),
            ..sealed.clone()
        };
        assert_eq!(
            value_as_token.open(&k, "APEX_1"),
            Err(DecryptError::AuthenticationFailed)
        );
        assert_eq!(
            sealed.open(&k, "APEX_2"),
            Err(DecryptError::AuthenticationFailed)
        );
    }

    #[test]
    fn metadata_not_written_by_us_stays() {
        let mut metadata = json!({ MD_METADATA_KEY: 5 });
        let sealed = SealedToken::from_row("v1:x".into(), &mut metadata);
        assert_eq!(sealed.md_access_token, None);
        assert_eq!(metadata, json!({ MD_METADATA_KEY: 5 }));
    }

    #[test]
    fn debug_shows_no_secret() {
        let dbg = format!("{:?}", secrets(Some("md-token")));
        assert!(!dbg.contains("eyJ") && !dbg.contains("md-token"), "{dbg}");
        assert!(dbg.contains("redacted"), "{dbg}");
    }
}
