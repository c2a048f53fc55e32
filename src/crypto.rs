//! Encryption at rest for tokens stored in Postgres, and keyed fingerprints for change
//! detection.
//!
//! Stored format: `v1:<kid>:<base64(nonce || ciphertext || tag)>` — AES-256-GCM with a fresh
//! random 96-bit nonce per encryption, the account name as associated data (a ciphertext
//! copied to another account's row fails to decrypt), and `kid` = the first 8 hex characters
//! of SHA-256(`"token-manager key id"` || key), so that a rotated-out key can still be found
//! among the previous keys. Runs natively and on wasm32 (randomness from `getrandom`, which
//! uses `crypto.getRandomValues` inside workerd).

use std::fmt;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;

/// Version tag at the start of every stored value.
pub const FORMAT_VERSION: &str = "v1";
/// Length of an encryption key in bytes (AES-256).
pub const KEY_LEN: usize = 32;
/// Length of a key id in hex characters.
pub const KEY_ID_LEN: usize = 8;
const NONCE_LEN: usize = 12;
const TAG_LEN: usize = 16;
const KEY_ID_LABEL: &[u8] = b"token-manager key id";
const FINGERPRINT_LABEL: &[u8] = b"token-manager fingerprint v1";

type HmacSha256 = Hmac<Sha256>;

const fn lenient(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
    )
}
const STANDARD_LENIENT: GeneralPurpose = lenient(&alphabet::STANDARD);
const URL_SAFE_LENIENT: GeneralPurpose = lenient(&alphabet::URL_SAFE);

/// Which configured key a [`KeyError`] is about. Displays as the setting to fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeySlot {
    /// The current key, `TOKEN_ENCRYPTION_KEY`.
    Current,
    /// The n-th (1-based) entry of `TOKEN_ENCRYPTION_PREVIOUS_KEYS`.
    Previous(usize),
}

impl KeySlot {
    /// The configuration setting that holds this key: `TOKEN_ENCRYPTION_KEY` or
    /// `TOKEN_ENCRYPTION_PREVIOUS_KEYS`.
    pub fn setting(self) -> &'static str {
        match self {
            KeySlot::Current => "TOKEN_ENCRYPTION_KEY",
            KeySlot::Previous(_) => "TOKEN_ENCRYPTION_PREVIOUS_KEYS",
        }
    }
}

impl fmt::Display for KeySlot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeySlot::Current => f.write_str("the current encryption key (TOKEN_ENCRYPTION_KEY)"),
            KeySlot::Previous(n) => write!(
                f,
                "previous encryption key #{n} (TOKEN_ENCRYPTION_PREVIOUS_KEYS)"
            ),
        }
    }
}

/// A secret field of a token row. The field is bound into its ciphertext, so a ciphertext
/// moved to another field (or another account's row) does not open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SecretField {
    /// The access token (`tradovate_tokens.access_token`).
    AccessToken,
    /// The market-data token (`metadata.md_access_token`).
    MdAccessToken,
}

impl SecretField {
    /// The field's name, as bound into the ciphertext.
    pub fn name(self) -> &'static str {
        match self {
            SecretField::AccessToken => "access_token",
            SecretField::MdAccessToken => "md_access_token",
        }
    }

    /// Associated data of format v1: the account name, plus `#md` for the market-data token.
    fn v1_aad(self, account: &str) -> String {
        match self {
            SecretField::AccessToken => account.to_owned(),
            SecretField::MdAccessToken => format!("{account}#md"),
        }
    }
}

/// A configured key is unusable. Messages name the key, never show it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    /// The key is empty.
    #[error("{slot} is empty; set it to 32 random bytes in base64, e.g. the output of `openssl rand -base64 32`")]
    Empty {
        /// Which key.
        slot: KeySlot,
    },
    /// The key is not base64.
    #[error("{slot} is not valid base64; set it to 32 random bytes in base64, e.g. the output of `openssl rand -base64 32`")]
    NotBase64 {
        /// Which key.
        slot: KeySlot,
    },
    /// The key does not decode to exactly 32 bytes.
    #[error("{slot} decodes to {len} bytes, but AES-256 needs exactly 32; generate one with `openssl rand -base64 32`")]
    WrongLength {
        /// Which key.
        slot: KeySlot,
        /// The decoded length.
        len: usize,
    },
    /// Two different keys have the same key id (astronomically unlikely).
    #[error("{first} and {second} are different keys with the same key id {key_id}; generate a new current key")]
    KeyIdCollision {
        /// The earlier key.
        first: KeySlot,
        /// The later key.
        second: KeySlot,
        /// The shared id.
        key_id: String,
    },
}

impl KeyError {
    /// The key the error is about (for a collision, the later of the two), so the caller can
    /// name the setting to fix via [`KeySlot::setting`].
    pub fn slot(&self) -> KeySlot {
        match self {
            KeyError::Empty { slot }
            | KeyError::NotBase64 { slot }
            | KeyError::WrongLength { slot, .. } => *slot,
            KeyError::KeyIdCollision { second, .. } => *second,
        }
    }
}

/// A stored value could not be decrypted. Messages never contain the stored value, the
/// plaintext or key material.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecryptError {
    /// The value is not `v1:<kid>:<base64>`.
    #[error("stored token is not in the `v1:<key id>:<base64>` format ({problem}); it was not written by the token manager or is corrupted, run a sync to rewrite it from Redis")]
    Malformed {
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The value names a key id that is not configured.
    #[error("stored token was encrypted with key id {key_id}, which is not configured; add the key that wrote it to TOKEN_ENCRYPTION_PREVIOUS_KEYS")]
    UnknownKey {
        /// The key id in the stored value.
        key_id: String,
    },
    /// AES-GCM authentication failed.
    #[error("stored token failed authentication: it was modified, or belongs to another account; run a sync to rewrite it from Redis")]
    AuthenticationFailed,
    /// The plaintext is not UTF-8 (it was not written by [`Keyring::encrypt`]).
    #[error(
        "stored token decrypts to bytes that are not text; run a sync to rewrite it from Redis"
    )]
    NotUtf8,
}

/// Encryption could not get randomness for the nonce.
#[derive(Debug, Error)]
#[error("the platform's secure random number generator failed ({0}); retry, and report this if it persists")]
pub struct EncryptError(getrandom::Error);

#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// The current encryption key plus any previous keys still accepted for decryption.
///
/// Guarantees: every key is exactly 32 bytes; key ids are distinct; `Debug` shows only key
/// ids, never key material.
#[derive(Clone)]
pub struct Keyring {
    current: Key,
    fingerprint_key: [u8; 32],
    previous: Vec<Key>,
}

/// The key id of a key: the first 8 hex characters of SHA-256(`"token-manager key id"` || key).
fn key_id(key: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update(KEY_ID_LABEL)
        .chain_update(key)
        .finalize();
    let mut id = to_hex(&digest);
    id.truncate(KEY_ID_LEN);
    id
}

fn to_hex(bytes: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(HEX[usize::from(b >> 4)] as char);
        s.push(HEX[usize::from(b & 0xf)] as char);
    }
    s
}

fn decode_key(b64: &str, slot: KeySlot) -> Result<[u8; KEY_LEN], KeyError> {
    let b64 = b64.trim();
    if b64.is_empty() {
        return Err(KeyError::Empty { slot });
    }
    let bytes = STANDARD_LENIENT
        .decode(b64)
        .or_else(|_| URL_SAFE_LENIENT.decode(b64))
        .map_err(|_| KeyError::NotBase64 { slot })?;
    <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyError::WrongLength {
        slot,
        len: bytes.len(),
    })
}

/// The parts of a stored value: key id and the decoded `nonce || ciphertext || tag`.
fn split_stored(stored: &str) -> Result<(&str, &str), DecryptError> {
    let mut parts = stored.splitn(3, ':');
    let (version, kid, body) = match (parts.next(), parts.next(), parts.next()) {
        (Some(v), Some(k), Some(b)) => (v, k, b),
        _ => {
            return Err(DecryptError::Malformed {
                problem: "expected three `:`-separated parts",
            })
        }
    };
    if version != FORMAT_VERSION {
        return Err(DecryptError::Malformed {
            problem: "unknown format version, expected v1",
        });
    }
    if kid.len() != KEY_ID_LEN || !kid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(DecryptError::Malformed {
            problem: "the key id is not 8 lowercase hex characters",
        });
    }
    Ok((kid, body))
}

impl Keyring {
    /// Builds a keyring from the current key and previous keys, each base64 (standard, or
    /// url-safe; padding optional; surrounding whitespace ignored) of exactly 32 bytes.
    /// Blank entries in `previous` are skipped (so a trailing comma in a list is harmless),
    /// as are repeats of a key already in the ring.
    ///
    /// Errors name the offending key (current, or previous #n counting from 1) and what is
    /// wrong with it, never its value.
    pub fn from_base64(current: &str, previous: &[&str]) -> Result<Keyring, KeyError> {
        let current_bytes = decode_key(current, KeySlot::Current)?;
        let current_id = key_id(&current_bytes);
        let mut seen: Vec<(String, [u8; KEY_LEN], KeySlot)> =
            vec![(current_id.clone(), current_bytes, KeySlot::Current)];
        let mut prev = Vec::new();
        for (i, p) in previous.iter().enumerate() {
            if p.trim().is_empty() {
                continue;
            }
            let slot = KeySlot::Previous(i + 1);
            let bytes = decode_key(p, slot)?;
            let id = key_id(&bytes);
            if let Some((_, other, first)) = seen.iter().find(|(kid, _, _)| *kid == id) {
                if constant_time_eq(other, &bytes) {
                    continue; // the same key again
                }
                return Err(KeyError::KeyIdCollision {
                    first: *first,
                    second: slot,
                    key_id: id,
                });
            }
            prev.push(Key {
                id: id.clone(),
                cipher: Aes256Gcm::new(&bytes.into()),
            });
            seen.push((id, bytes, slot));
        }

        let mut mac = <HmacSha256 as Mac>::new_from_slice(&current_bytes)
            .expect("HMAC accepts keys of any length");
        mac.update(FINGERPRINT_LABEL);
        let fingerprint_key: [u8; 32] = mac.finalize().into_bytes().into();

        Ok(Keyring {
            current: Key {
                id: current_id,
                cipher: Aes256Gcm::new(&current_bytes.into()),
            },
            fingerprint_key,
            previous: prev,
        })
    }

    /// The id of the key new values are encrypted with (8 lowercase hex characters).
    pub fn current_key_id(&self) -> &str {
        &self.current.id
    }

    /// The ids of the previous keys, in configuration order.
    pub fn previous_key_ids(&self) -> Vec<&str> {
        self.previous.iter().map(|k| k.id.as_str()).collect()
    }

    fn key_for(&self, kid: &str) -> Option<&Key> {
        std::iter::once(&self.current)
            .chain(&self.previous)
            .find(|k| k.id == kid)
    }

    /// Seals `plaintext` as `field` of `account`'s row with the current key and a fresh
    /// random nonce: `v1:<current kid>:<base64>`. Two seals of the same input differ; the
    /// ciphertext opens only as the same field of the same account.
    ///
    /// # Panics
    /// If the platform's secure random source fails (`crypto.getRandomValues` in workerd,
    /// the OS natively), which would make any encryption unsafe.
    pub fn seal(&self, field: SecretField, account: &str, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_LEN];
        if let Err(e) = getrandom::getrandom(&mut nonce) {
            panic!("{}", EncryptError(e));
        }
        let aad = field.v1_aad(account);
        let sealed = self
            .current
            .cipher
            .encrypt(
                Nonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: aad.as_bytes(),
                },
            )
            // AES-GCM only refuses messages over 64 GiB, which a slice here cannot reach.
            .expect("AES-GCM encryption of a bounded message cannot fail");
        let mut body = Vec::with_capacity(NONCE_LEN + sealed.len());
        body.extend_from_slice(&nonce);
        body.extend_from_slice(&sealed);
        format!(
            "{FORMAT_VERSION}:{}:{}",
            self.current.id,
            STANDARD.encode(body)
        )
    }

    /// Opens a value written by [`Keyring::seal`] for the same `field` and `account`, with
    /// the current or any previous key.
    ///
    /// Errors: not in the stored format ([`DecryptError::Malformed`]); written with a key that
    /// is not configured ([`DecryptError::UnknownKey`]); modified, or stored under another
    /// account or field ([`DecryptError::AuthenticationFailed`]).
    pub fn open(
        &self,
        field: SecretField,
        account: &str,
        stored: &str,
    ) -> Result<Vec<u8>, DecryptError> {
        let (kid, body) = split_stored(stored)?;
        let body = STANDARD_LENIENT
            .decode(body)
            .map_err(|_| DecryptError::Malformed {
                problem: "the payload is not valid base64",
            })?;
        if body.len() < NONCE_LEN + TAG_LEN {
            return Err(DecryptError::Malformed {
                problem: "the payload is too short to hold a nonce and a tag",
            });
        }
        let key = self.key_for(kid).ok_or_else(|| DecryptError::UnknownKey {
            key_id: kid.to_owned(),
        })?;
        let (nonce, sealed) = body.split_at(NONCE_LEN);
        let aad = field.v1_aad(account);
        key.cipher
            .decrypt(
                Nonce::from_slice(nonce),
                Payload {
                    msg: sealed,
                    aad: aad.as_bytes(),
                },
            )
            .map_err(|_| DecryptError::AuthenticationFailed)
    }

    /// Like [`Keyring::open`], for fields that hold text.
    pub fn open_text(
        &self,
        field: SecretField,
        account: &str,
        stored: &str,
    ) -> Result<String, DecryptError> {
        String::from_utf8(self.open(field, account, stored)?).map_err(|_| DecryptError::NotUtf8)
    }

    /// `true` when `stored` is in the current format under the current key: nothing for a
    /// re-encryption to do.
    pub fn is_current(&self, stored: &str) -> bool {
        split_stored(stored).is_ok_and(|(kid, _)| kid == self.current.id)
    }

    /// A keyed fingerprint of `token` for `account`: lowercase hex (64 characters) of
    /// HMAC-SHA256 over `account || 0x00 || token`, under a key derived from the current key
    /// (HMAC(key, `"token-manager fingerprint v1"`)).
    ///
    /// Guarantees: deterministic for the same key, account and token; different across
    /// accounts and keys; reveals nothing about the token to someone without the key (so it
    /// can be stored beside the ciphertext to detect changes without decrypting). Changes
    /// when the current key is rotated.
    pub fn fingerprint(&self, account: &str, token: &str) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.fingerprint_key)
            .expect("HMAC accepts keys of any length");
        mac.update(account.as_bytes());
        mac.update(&[0]);
        mac.update(token.as_bytes());
        to_hex(&mac.finalize().into_bytes())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current_key_id", &self.current.id)
            .field("previous_key_ids", &self.previous_key_ids())
            .finish_non_exhaustive()
    }
}

/// Compares two byte strings without a data-dependent early exit on their contents (via
/// `subtle`). Different lengths compare unequal (the length itself is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// bytes 0..32
    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";
    /// 32 × 0x11
    const KEY_B: &str = "ERERERERERERERERERERERERERERERERERERERERERE=";
    /// 32 × 0xfb: its standard encoding contains `+`/`/`, url-safe `-`/`_`.
    const KEY_C: &str = "+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/v7+/s=";

    fn ring(current: &str, previous: &[&str]) -> Keyring {
        Keyring::from_base64(current, previous).unwrap()
    }

    /// The access-token field, as text: what most tests seal and open.
    trait AccessToken {
        fn encrypt(&self, account: &str, plaintext: &str) -> String;
        fn decrypt(&self, account: &str, stored: &str) -> Result<String, DecryptError>;
    }

    impl AccessToken for Keyring {
        fn encrypt(&self, account: &str, plaintext: &str) -> String {
            self.seal(SecretField::AccessToken, account, plaintext.as_bytes())
        }
        fn decrypt(&self, account: &str, stored: &str) -> Result<String, DecryptError> {
            self.open_text(SecretField::AccessToken, account, stored)
        }
    }

    /// Swaps the payload of a stored value for a modified one.
    fn with_body(stored: &str, f: impl FnOnce(&mut Vec<u8>)) -> String {
        let (kid, body) = split_stored(stored).unwrap();
        let mut bytes = STANDARD.decode(body).unwrap();
        f(&mut bytes);
        format!("v1:{kid}:{}", STANDARD.encode(bytes))
    }

    #[test]
    fn key_id_known_answer() {
        // Computed independently: sha256(b"token-manager key id" + bytes(range(32)))[:8].
        assert_eq!(ring(KEY_A, &[]).current_key_id(), "782d6ef7");
    }

    #[test]
    fn decrypts_a_vector_from_an_independent_implementation() {
        // Written with Python's `cryptography` AESGCM, nonce bytes(range(100, 112)).
        let stored = "v1:782d6ef7:ZGVmZ2hpamtsbW5vLWKUDhuuNfdxCxWhjx8jzAyrTDOlHJILy77NLNXQzC8m+Zm/G2kiuOZntJ5Qr/i+";
        let k = ring(KEY_A, &[]);
        assert_eq!(
            k.decrypt("PAAPEX1361890000001", stored).unwrap(),
            "eyJhbGciOiJIUzI1NiJ9.payload.sig"
        );
        assert_eq!(
            k.decrypt("APEX_136189", stored),
            Err(DecryptError::AuthenticationFailed)
        );
    }

    #[test]
    fn fingerprint_known_answer() {
        // hmac(hmac(key, b"token-manager fingerprint v1"), b"APEX_136189\0tok-1"), in Python.
        assert_eq!(
            ring(KEY_A, &[]).fingerprint("APEX_136189", "tok-1"),
            "98063b6d0b66afed9169f0a26e3fcdd676688fe273bca2f694d2bf78c8fdd433"
        );
    }

    #[test]
    fn round_trip_and_format() {
        let k = ring(KEY_A, &[]);
        let stored = k.encrypt("APEX_136189", "eyJ.tok.en");
        assert!(stored.starts_with("v1:782d6ef7:"), "{stored}");
        assert!(!stored.contains("eyJ.tok.en"));
        assert_eq!(k.decrypt("APEX_136189", &stored).unwrap(), "eyJ.tok.en");
        // Empty and unicode plaintexts too.
        for p in ["", "ünïcødé 账户 🔐", "a:b:c"] {
            assert_eq!(k.decrypt("acct", &k.encrypt("acct", p)).unwrap(), p);
        }
        // Layout: 12-byte nonce, ciphertext of the same length, 16-byte tag.
        let (_, body) = split_stored(&stored).unwrap();
        assert_eq!(STANDARD.decode(body).unwrap().len(), 12 + 10 + 16);
    }

    #[test]
    fn ciphertext_moved_to_another_account_fails() {
        let k = ring(KEY_A, &[]);
        let stored = k.encrypt("APEX_136189", "tok");
        assert_eq!(
            k.decrypt("APEX_272045", &stored),
            Err(DecryptError::AuthenticationFailed)
        );
        assert_eq!(
            k.decrypt("APEX_136189 ", &stored),
            Err(DecryptError::AuthenticationFailed)
        );
    }

    #[test]
    fn any_tampered_byte_fails() {
        let k = ring(KEY_A, &[]);
        let stored = k.encrypt("acct", "token-value");
        let len = STANDARD
            .decode(split_stored(&stored).unwrap().1)
            .unwrap()
            .len();
        for i in 0..len {
            let bad = with_body(&stored, |b| b[i] ^= 0x01);
            assert_eq!(
                k.decrypt("acct", &bad),
                Err(DecryptError::AuthenticationFailed),
                "byte {i}"
            );
        }
        let truncated = with_body(&stored, |b| {
            b.pop();
        });
        assert_eq!(
            k.decrypt("acct", &truncated),
            Err(DecryptError::AuthenticationFailed)
        );
        let extended = with_body(&stored, |b| b.push(0));
        assert_eq!(
            k.decrypt("acct", &extended),
            Err(DecryptError::AuthenticationFailed)
        );
    }

    #[test]
    fn nonce_differs_between_encryptions() {
        let k = ring(KEY_A, &[]);
        let a = k.encrypt("acct", "same token");
        let b = k.encrypt("acct", "same token");
        assert_ne!(a, b);
        let na = &STANDARD.decode(split_stored(&a).unwrap().1).unwrap()[..12];
        let nb = &STANDARD.decode(split_stored(&b).unwrap().1).unwrap()[..12];
        assert_ne!(na, nb);
        assert_eq!(
            k.decrypt("acct", &a).unwrap(),
            k.decrypt("acct", &b).unwrap()
        );
    }

    #[test]
    fn previous_key_decrypts_and_is_not_current() {
        let old = ring(KEY_A, &[]);
        let stored_old = old.encrypt("acct", "tok");
        assert!(old.is_current(&stored_old));

        let rotated = ring(KEY_B, &[KEY_A]);
        assert_eq!(rotated.previous_key_ids(), vec!["782d6ef7"]);
        assert_eq!(rotated.decrypt("acct", &stored_old).unwrap(), "tok");
        assert!(!rotated.is_current(&stored_old));

        let stored_new = rotated.encrypt("acct", "tok");
        assert!(stored_new.starts_with(&format!("v1:{}:", rotated.current_key_id())));
        assert!(rotated.is_current(&stored_new));
        assert!(!rotated.is_current("garbage"));
        assert!(!rotated.is_current("v1:00000000:AAAA"));
    }

    #[test]
    fn unknown_key_id() {
        let old = ring(KEY_A, &[]);
        let stored = old.encrypt("acct", "tok");
        let k = ring(KEY_B, &[KEY_C]);
        let err = k.decrypt("acct", &stored).unwrap_err();
        assert_eq!(
            err,
            DecryptError::UnknownKey {
                key_id: "782d6ef7".into()
            }
        );
        let msg = err.to_string();
        assert!(msg.contains("782d6ef7"), "{msg}");
        assert!(msg.contains("TOKEN_ENCRYPTION_PREVIOUS_KEYS"), "{msg}");
    }

    #[test]
    fn malformed_stored_values() {
        let k = ring(KEY_A, &[]);
        let kid = k.current_key_id().to_owned();
        for bad in [
            String::new(),
            "plaintext-token".into(),
            "v1:abc".into(),
            format!("v2:{kid}:AAAA"),
            format!("V1:{kid}:AAAA"),
            "v1:782D6EF7:AAAA".into(),
            "v1:782d6ef:AAAA".into(),
            "v1:782d6efg:AAAA".into(),
            format!("v1:{kid}:not base64!"),
            format!("v1:{kid}:"),
            format!("v1:{kid}:{}", STANDARD.encode([0u8; 27])),
        ] {
            let err = k.decrypt("acct", &bad).unwrap_err();
            assert!(
                matches!(err, DecryptError::Malformed { .. }),
                "{bad}: {err:?}"
            );
            assert!(err.to_string().contains("format"), "{err}");
        }
        // The shortest well-formed body (nonce + tag, empty plaintext) reaches the cipher.
        let minimal = format!("v1:{kid}:{}", STANDARD.encode([0u8; 28]));
        assert_eq!(
            k.decrypt("acct", &minimal),
            Err(DecryptError::AuthenticationFailed)
        );
    }

    #[test]
    fn key_parsing_accepts_variants() {
        let id = ring(KEY_C, &[]).current_key_id().to_owned();
        let url_safe = KEY_C.replace('+', "-").replace('/', "_");
        let unpadded = KEY_C.trim_end_matches('=');
        let padded_ws = format!("  {KEY_C}\n");
        for variant in [url_safe.as_str(), unpadded, padded_ws.as_str()] {
            assert_eq!(ring(variant, &[]).current_key_id(), id, "{variant}");
        }
    }

    #[test]
    fn key_errors_name_the_key_and_never_show_it() {
        let short = STANDARD.encode([7u8; 16]);
        let cases = [
            (
                Keyring::from_base64("", &[]),
                KeyError::Empty {
                    slot: KeySlot::Current,
                },
            ),
            (
                Keyring::from_base64("not*base64!", &[]),
                KeyError::NotBase64 {
                    slot: KeySlot::Current,
                },
            ),
            (
                Keyring::from_base64(&short, &[]),
                KeyError::WrongLength {
                    slot: KeySlot::Current,
                    len: 16,
                },
            ),
            (
                Keyring::from_base64(KEY_A, &[KEY_B, &short]),
                KeyError::WrongLength {
                    slot: KeySlot::Previous(2),
                    len: 16,
                },
            ),
            (
                Keyring::from_base64(KEY_A, &["", "%%%"]),
                KeyError::NotBase64 {
                    slot: KeySlot::Previous(2),
                },
            ),
        ];
        for (got, want) in cases {
            let err = got.unwrap_err();
            assert_eq!(err, want);
            let msg = format!("{err} {err:?}");
            assert!(!msg.contains(&short), "{msg}");
            assert!(!msg.contains("not*base64"), "{msg}");
            assert!(!msg.contains("%%%"), "{msg}");
        }
        let msg = KeyError::WrongLength {
            slot: KeySlot::Previous(2),
            len: 16,
        }
        .to_string();
        assert!(msg.contains("previous encryption key #2"), "{msg}");
        assert!(msg.contains("TOKEN_ENCRYPTION_PREVIOUS_KEYS"), "{msg}");
        assert!(msg.contains("32"), "{msg}");
        let msg = KeyError::NotBase64 {
            slot: KeySlot::Current,
        }
        .to_string();
        assert!(msg.contains("TOKEN_ENCRYPTION_KEY"), "{msg}");
    }

    #[test]
    fn key_error_slot_names_the_setting() {
        let err = Keyring::from_base64(KEY_A, &[KEY_B, "short"]).unwrap_err();
        assert_eq!(err.slot(), KeySlot::Previous(2));
        assert_eq!(err.slot().setting(), "TOKEN_ENCRYPTION_PREVIOUS_KEYS");
        let err = Keyring::from_base64("short", &[]).unwrap_err();
        assert_eq!(err.slot().setting(), "TOKEN_ENCRYPTION_KEY");
        let collision = KeyError::KeyIdCollision {
            first: KeySlot::Current,
            second: KeySlot::Previous(1),
            key_id: "00000000".into(),
        };
        assert_eq!(collision.slot(), KeySlot::Previous(1));
    }

    #[test]
    fn previous_keys_skip_blanks_and_duplicates() {
        let k = ring(KEY_A, &["", "  ", KEY_A, KEY_B, KEY_B]);
        assert_eq!(k.previous_key_ids().len(), 1);
        assert_ne!(k.previous_key_ids()[0], k.current_key_id());
    }

    #[test]
    fn fingerprint_properties() {
        let a = ring(KEY_A, &[]);
        let b = ring(KEY_B, &[]);
        let f = a.fingerprint("APEX_136189", "tok");
        assert_eq!(f.len(), 64);
        assert!(f
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(f, a.fingerprint("APEX_136189", "tok"));
        assert_eq!(f, ring(KEY_A, &[KEY_B]).fingerprint("APEX_136189", "tok"));
        assert_ne!(f, a.fingerprint("APEX_272045", "tok"));
        assert_ne!(f, a.fingerprint("APEX_136189", "tok2"));
        assert_ne!(f, b.fingerprint("APEX_136189", "tok"));
        // The separator keeps the account/token boundary unambiguous.
        assert_ne!(a.fingerprint("ab", "c"), a.fingerprint("a", "bc"));
        // Not a plain hash of the inputs.
        let plain = to_hex(&Sha256::digest(b"APEX_136189\0tok"));
        assert_ne!(f, plain);
    }

    #[test]
    fn debug_and_errors_hold_no_key_material() {
        let k = ring(KEY_A, &[KEY_C]);
        let dbg = format!("{k:?} {k:#?}");
        assert!(dbg.contains("782d6ef7"), "{dbg}");
        let key_bytes: Vec<u8> = (0..32).collect();
        for needle in [
            KEY_A.to_owned(),
            KEY_A.trim_end_matches('=').to_owned(),
            KEY_C.to_owned(),
            to_hex(&key_bytes),
            to_hex(&k.fingerprint_key),
            format!("{:?}", &key_bytes[..8]),
        ] {
            assert!(!dbg.contains(&needle), "{dbg}");
        }
        let stored = k.encrypt("acct", "SECRET-TOKEN");
        for err in [
            k.decrypt("other", &stored).unwrap_err(),
            ring(KEY_B, &[]).decrypt("acct", &stored).unwrap_err(),
            k.decrypt("acct", &stored[..stored.len() - 3]).unwrap_err(),
        ] {
            let msg = format!("{err} {err:?}");
            assert!(!msg.contains("SECRET"), "{msg}");
            assert!(!msg.contains(&stored[12..]), "{msg}");
        }
    }

    #[test]
    fn constant_time_eq_semantics() {
        assert!(constant_time_eq(b"", b""));
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"abcd"));
        assert!(!constant_time_eq(b"abc", b""));
    }

    proptest! {
        #[test]
        fn encrypt_decrypt_round_trips(account in any::<String>(), plaintext in any::<String>()) {
            let k = ring(KEY_A, &[]);
            let stored = k.encrypt(&account, &plaintext);
            prop_assert_eq!(k.decrypt(&account, &stored).unwrap(), plaintext);
            prop_assert!(k.is_current(&stored));
        }

        #[test]
        fn other_account_never_decrypts(a in "[!-~]{1,30}", b in "[!-~]{1,30}", p in ".{0,100}") {
            prop_assume!(a != b);
            let k = ring(KEY_A, &[]);
            prop_assert_eq!(
                k.decrypt(&b, &k.encrypt(&a, &p)),
                Err(DecryptError::AuthenticationFailed)
            );
        }

        #[test]
        fn decrypt_never_panics(s in ".{0,200}") {
            let _ = ring(KEY_A, &[]).decrypt("acct", &s);
            let _ = ring(KEY_A, &[]).decrypt("acct", &format!("v1:782d6ef7:{s}"));
        }

        #[test]
        fn any_32_byte_key_works(bytes in prop::array::uniform32(any::<u8>())) {
            let k = ring(&STANDARD.encode(bytes), &[]);
            prop_assert_eq!(k.current_key_id(), key_id(&bytes));
            prop_assert_eq!(k.decrypt("a", &k.encrypt("a", "t")).unwrap(), "t");
        }

        #[test]
        fn wrong_lengths_are_rejected(bytes in prop::collection::vec(any::<u8>(), 1..80)) {
            prop_assume!(bytes.len() != 32);
            let err = Keyring::from_base64(&STANDARD.encode(&bytes), &[]).unwrap_err();
            prop_assert_eq!(err, KeyError::WrongLength { slot: KeySlot::Current, len: bytes.len() });
        }

        #[test]
        fn constant_time_eq_matches_eq(a in prop::collection::vec(any::<u8>(), 0..40), b in prop::collection::vec(any::<u8>(), 0..40)) {
            prop_assert_eq!(constant_time_eq(&a, &b), a == b);
            prop_assert!(constant_time_eq(&a, &a.clone()));
        }
    }
}
