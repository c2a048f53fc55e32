//! Encryption at rest for the token secrets stored in Postgres, and keyed fingerprints for
//! change detection.
//!
//! Stored format **v2** (written): `v2:<kid>:<base64(nonce || ciphertext || tag)>` —
//! XChaCha20-Poly1305 with a fresh random 192-bit nonce per seal. The associated data is the
//! length-prefixed fields format version, field name, account name and key id (each an 8-byte
//! big-endian length, then its bytes), so no two (field, account, key) share associated data:
//! a ciphertext copied to another row or field does not open.
//!
//! Format **v1** (read only): `v1:<kid>:<base64(nonce || ciphertext || tag)>` — AES-256-GCM with a
//! 96-bit nonce, associated data the account name (access token) or `<account>#md` (market-data
//! token). `#` is legal in account names, so v1's associated data is ambiguous (`APEX_1#md`'s
//! access token had the associated data of `APEX_1`'s market-data token); `/v1/reencrypt`
//! rewrites v1 values as v2.
//!
//! `kid` = the first 8 hex characters of SHA-256(`"token-manager key id"` || key), so that a
//! rotated-out key can still be found among the previous keys. Key bytes are zeroed when the
//! keyring is dropped. Runs natively and on wasm32 (randomness from `getrandom`, which uses
//! `crypto.getRandomValues` inside workerd).

use std::fmt;
use std::sync::Arc;

use aes_gcm::aead::{AeadInPlace, KeyInit};
use aes_gcm::Aes256Gcm;
use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig, STANDARD};
use base64::engine::DecodePaddingMode;
use base64::Engine;
use chacha20poly1305::XChaCha20Poly1305;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use thiserror::Error;
use zeroize::Zeroizing;

/// The format new values are written in.
pub const FORMAT_VERSION: &str = "v2";
/// Length of an encryption key in bytes (256 bits).
pub const KEY_LEN: usize = 32;
/// Length of a key id in hex characters.
pub const KEY_ID_LEN: usize = 8;
const V1_NONCE_LEN: usize = 12;
const V2_NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
const KEY_ID_LABEL: &[u8] = b"token-manager key id";
const FINGERPRINT_LABEL: &[u8] = b"token-manager fingerprint v1";
/// The first field of every fingerprinted message: the layout's version.
const FINGERPRINT_LAYOUT: &[u8] = b"fingerprint v2";

type HmacSha256 = Hmac<Sha256>;

const fn lenient(alphabet: &alphabet::Alphabet) -> GeneralPurpose {
    GeneralPurpose::new(
        alphabet,
        GeneralPurposeConfig::new()
            .with_decode_padding_mode(DecodePaddingMode::Indifferent)
            .with_decode_allow_trailing_bits(true),
    )
}
const STANDARD_LENIENT: GeneralPurpose = lenient(&alphabet::STANDARD);
const URL_SAFE_LENIENT: GeneralPurpose = lenient(&alphabet::URL_SAFE);

/// Decodes base64 written by someone else (a key, a JWT segment): the standard or the
/// url-safe alphabet, `=` padding optional. `None` when it is neither.
pub fn decode_base64_lenient(text: &str) -> Option<Vec<u8>> {
    URL_SAFE_LENIENT
        .decode(text)
        .or_else(|_| STANDARD_LENIENT.decode(text))
        .ok()
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    hex::encode(bytes)
}

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
    /// A JSON value exactly as read from Redis (`metadata.redis_value`), which a restore
    /// writes back byte for byte.
    RedisValue,
}

impl SecretField {
    /// The field's name, as bound into the ciphertext.
    pub fn name(self) -> &'static str {
        match self {
            SecretField::AccessToken => "access_token",
            SecretField::MdAccessToken => "md_access_token",
            SecretField::RedisValue => "redis_value",
        }
    }

    /// Associated data of format v1: the account name, plus `#md` for the market-data token.
    /// Fields added after v1 have none (no v1 value of theirs exists).
    fn v1_aad(self, account: &str) -> Option<String> {
        match self {
            SecretField::AccessToken => Some(account.to_owned()),
            SecretField::MdAccessToken => Some(format!("{account}#md")),
            SecretField::RedisValue => None,
        }
    }
}

/// Associated data of format v2: format version, field name, account and key id, each as an
/// 8-byte big-endian length and its bytes.
fn v2_aad(field: SecretField, account: &str, key_id: &str) -> Vec<u8> {
    let parts = [
        FORMAT_VERSION.as_bytes(),
        field.name().as_bytes(),
        account.as_bytes(),
        key_id.as_bytes(),
    ];
    let mut aad = Vec::with_capacity(parts.iter().map(|p| 8 + p.len()).sum());
    for part in parts {
        aad.extend_from_slice(&(part.len() as u64).to_be_bytes());
        aad.extend_from_slice(part);
    }
    aad
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
    #[error("{slot} decodes to {len} bytes, but a key must be exactly 32; generate one with `openssl rand -base64 32`")]
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
    /// The value is not `v2:<kid>:<base64>` (or the older `v1:…`).
    #[error("stored token is not in the `v2:<key id>:<base64>` format ({problem}); it was not written by the token manager or is corrupted, run a sync to rewrite it from Redis")]
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
    /// Authentication failed.
    #[error("stored token failed authentication: it was modified, or belongs to another account or field; run a sync to rewrite it from Redis")]
    AuthenticationFailed,
    /// The plaintext is not UTF-8 (it was not written by [`Keyring::seal`] from text).
    #[error(
        "stored token decrypts to bytes that are not text; run a sync to rewrite it from Redis"
    )]
    NotUtf8,
}

/// Encryption could not get randomness for the nonce.
#[derive(Debug, Error)]
#[error("the platform's secure random number generator failed ({0}); retry, and report this if it persists")]
struct EncryptError(getrandom::Error);

/// Nonces drawn from the platform's random source in one call per [`NONCE_POOL`] bytes: a
/// call into JavaScript (`crypto.getRandomValues` in workerd) per nonce costs more than the
/// encryption itself. Every byte handed out is used once; nonces are not secret.
const NONCE_POOL: usize = 64 * V2_NONCE_LEN;

struct NoncePool {
    bytes: [u8; NONCE_POOL],
    used: usize,
}

thread_local! {
    static NONCES: std::cell::RefCell<NoncePool> = const {
        std::cell::RefCell::new(NoncePool { bytes: [0; NONCE_POOL], used: NONCE_POOL })
    };
}

/// Fills `nonce` (at most [`NONCE_POOL`] bytes) with fresh random bytes never handed out before.
///
/// # Panics
/// If the platform's secure random source fails.
fn fill_nonce(nonce: &mut [u8]) {
    NONCES.with(|pool| {
        let mut pool = pool.borrow_mut();
        if pool.used + nonce.len() > NONCE_POOL {
            if let Err(e) = getrandom::getrandom(&mut pool.bytes) {
                panic!("{}", EncryptError(e));
            }
            pool.used = 0;
        }
        let start = pool.used;
        nonce.copy_from_slice(&pool.bytes[start..start + nonce.len()]);
        pool.used += nonce.len();
    });
}

/// The versions of the stored format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    V1,
    V2,
}

/// One key, ready for both formats. The ciphers zero their key material when dropped.
struct Key {
    id: String,
    v1: Aes256Gcm,
    v2: XChaCha20Poly1305,
}

impl Key {
    fn new(bytes: &[u8; KEY_LEN]) -> Key {
        Key {
            id: key_id(bytes),
            v1: Aes256Gcm::new(bytes.into()),
            v2: XChaCha20Poly1305::new(bytes.into()),
        }
    }
}

struct Ring {
    current: Key,
    fingerprint_key: Zeroizing<[u8; 32]>,
    previous: Vec<Key>,
}

/// The current encryption key plus any previous keys still accepted for decryption. Cloning
/// shares it (no copy of the key material).
///
/// Guarantees: every key is exactly 32 bytes; key ids are distinct; key bytes are zeroed when
/// the last clone is dropped; `Debug` shows only key ids, never key material.
#[derive(Clone)]
pub struct Keyring(Arc<Ring>);

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

fn decode_key(b64: &str, slot: KeySlot) -> Result<Zeroizing<[u8; KEY_LEN]>, KeyError> {
    let b64 = b64.trim();
    if b64.is_empty() {
        return Err(KeyError::Empty { slot });
    }
    let bytes = Zeroizing::new(decode_base64_lenient(b64).ok_or(KeyError::NotBase64 { slot })?);
    let key = <[u8; KEY_LEN]>::try_from(bytes.as_slice()).map_err(|_| KeyError::WrongLength {
        slot,
        len: bytes.len(),
    })?;
    Ok(Zeroizing::new(key))
}

/// The parts of a stored value: format, key id and the base64 payload.
fn split_stored(stored: &str) -> Result<(Format, &str, &str), DecryptError> {
    let mut parts = stored.splitn(3, ':');
    let (version, kid, body) = match (parts.next(), parts.next(), parts.next()) {
        (Some(v), Some(k), Some(b)) => (v, k, b),
        _ => {
            return Err(DecryptError::Malformed {
                problem: "expected three `:`-separated parts",
            })
        }
    };
    let format = match version {
        "v2" => Format::V2,
        "v1" => Format::V1,
        _ => {
            return Err(DecryptError::Malformed {
                problem: "unknown format version, expected v2 or v1",
            })
        }
    };
    if kid.len() != KEY_ID_LEN || !kid.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
        return Err(DecryptError::Malformed {
            problem: "the key id is not 8 lowercase hex characters",
        });
    }
    Ok((format, kid, body))
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
        let current = Key::new(&current_bytes);
        let mut seen: Vec<(String, Zeroizing<[u8; KEY_LEN]>, KeySlot)> = Vec::new();
        let mut prev = Vec::new();
        for (i, p) in previous.iter().enumerate() {
            if p.trim().is_empty() {
                continue;
            }
            let slot = KeySlot::Previous(i + 1);
            let bytes = decode_key(p, slot)?;
            let id = key_id(bytes.as_slice());
            let earlier = std::iter::once((&current.id, &current_bytes, KeySlot::Current))
                .chain(seen.iter().map(|(kid, b, s)| (kid, b, *s)))
                .find(|(kid, _, _)| **kid == id);
            if let Some((_, other, first)) = earlier {
                if constant_time_eq(other.as_slice(), bytes.as_slice()) {
                    continue; // the same key again
                }
                return Err(KeyError::KeyIdCollision {
                    first,
                    second: slot,
                    key_id: id,
                });
            }
            prev.push(Key::new(&bytes));
            seen.push((id, bytes, slot));
        }

        let mut mac = <HmacSha256 as Mac>::new_from_slice(current_bytes.as_slice())
            .expect("HMAC accepts keys of any length");
        mac.update(FINGERPRINT_LABEL);
        let fingerprint_key = Zeroizing::new(mac.finalize().into_bytes().into());

        Ok(Keyring(Arc::new(Ring {
            current,
            fingerprint_key,
            previous: prev,
        })))
    }

    /// The id of the key new values are encrypted with (8 lowercase hex characters).
    pub fn current_key_id(&self) -> &str {
        &self.0.current.id
    }

    /// The ids of the previous keys, in configuration order.
    pub fn previous_key_ids(&self) -> Vec<&str> {
        self.0.previous.iter().map(|k| k.id.as_str()).collect()
    }

    fn key_for(&self, kid: &str) -> Option<&Key> {
        std::iter::once(&self.0.current)
            .chain(&self.0.previous)
            .find(|k| k.id == kid)
    }

    /// Seals `plaintext` as `field` of `account`'s row with the current key and a fresh
    /// random nonce: `v2:<current kid>:<base64>`. Two seals of the same input differ; the
    /// value opens only as the same field of the same account.
    ///
    /// # Panics
    /// If the platform's secure random source fails (`crypto.getRandomValues` in workerd,
    /// the OS natively), which would make any encryption unsafe.
    pub fn seal(&self, field: SecretField, account: &str, plaintext: &[u8]) -> String {
        let key = &self.0.current;
        let mut body = Vec::with_capacity(V2_NONCE_LEN + plaintext.len() + TAG_LEN);
        body.resize(V2_NONCE_LEN, 0);
        fill_nonce(&mut body);
        body.extend_from_slice(plaintext);
        let (nonce, message) = body.split_at_mut(V2_NONCE_LEN);
        let tag = key
            .v2
            .encrypt_in_place_detached((&*nonce).into(), &v2_aad(field, account, &key.id), message)
            // XChaCha20-Poly1305 only refuses messages over 256 GiB, which a slice here
            // cannot reach.
            .expect("encryption of a bounded message cannot fail");
        body.extend_from_slice(&tag);
        let mut out = String::with_capacity(12 + body.len().div_ceil(3) * 4);
        out.push_str(FORMAT_VERSION);
        out.push(':');
        out.push_str(&key.id);
        out.push(':');
        STANDARD.encode_string(&body, &mut out);
        out
    }

    /// Opens a value written by [`Keyring::seal`] (format v2, or v1 from earlier versions)
    /// for the same `field` and `account`, with the current or any previous key.
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
        let (format, kid, body) = split_stored(stored)?;
        let mut body = STANDARD_LENIENT
            .decode(body)
            .map_err(|_| DecryptError::Malformed {
                problem: "the payload is not valid base64",
            })?;
        let nonce_len = match format {
            Format::V1 => V1_NONCE_LEN,
            Format::V2 => V2_NONCE_LEN,
        };
        if body.len() < nonce_len + TAG_LEN {
            return Err(DecryptError::Malformed {
                problem: "the payload is too short to hold a nonce and a tag",
            });
        }
        let key = self.key_for(kid).ok_or_else(|| DecryptError::UnknownKey {
            key_id: kid.to_owned(),
        })?;
        let tag_at = body.len() - TAG_LEN;
        let (head, tag) = body.split_at_mut(tag_at);
        let (nonce, message) = head.split_at_mut(nonce_len);
        let tag = (&*tag).into();
        let opened = match format {
            Format::V2 => key.v2.decrypt_in_place_detached(
                (&*nonce).into(),
                &v2_aad(field, account, kid),
                message,
                tag,
            ),
            Format::V1 => {
                let aad = field
                    .v1_aad(account)
                    .ok_or(DecryptError::AuthenticationFailed)?;
                key.v1
                    .decrypt_in_place_detached((&*nonce).into(), aad.as_bytes(), message, tag)
            }
        };
        opened.map_err(|_| DecryptError::AuthenticationFailed)?;
        body.truncate(tag_at);
        body.drain(..nonce_len);
        Ok(body)
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
        split_stored(stored)
            .is_ok_and(|(format, kid, _)| format == Format::V2 && kid == self.0.current.id)
    }

    /// A keyed fingerprint of `parts` (for a token row: its account, secrets and the
    /// metadata that came from its value): lowercase hex (64 characters) of HMAC-SHA256 over
    /// `"fingerprint v2"` and each part as a presence byte (0 absent, 1 present) followed, when
    /// present, by an 8-byte big-endian length and its bytes; under a key derived from the
    /// current key (HMAC(key, `"token-manager fingerprint v1"`)).
    ///
    /// Guarantees: deterministic for the same key and parts; different for different parts
    /// (the layout is unambiguous: `None` differs from empty, boundaries cannot shift) and
    /// keys; reveals nothing about the parts to someone without the key (so it can be stored
    /// beside the ciphertext to detect changes without decrypting). Changes when the current
    /// key is rotated.
    pub fn fingerprint(&self, parts: &[Option<&[u8]>]) -> String {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(self.0.fingerprint_key.as_slice())
            .expect("HMAC accepts keys of any length");
        mac.update(FINGERPRINT_LAYOUT);
        for part in parts {
            match part {
                None => mac.update(&[0]),
                Some(bytes) => {
                    mac.update(&[1]);
                    mac.update(&(bytes.len() as u64).to_be_bytes());
                    mac.update(bytes);
                }
            }
        }
        to_hex(&mac.finalize().into_bytes())
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("current_key_id", &self.0.current.id)
            .field("previous_key_ids", &self.previous_key_ids())
            .finish_non_exhaustive()
    }
}

/// Compares two byte strings without a data-dependent early exit on their contents (via
/// `subtle`). Different lengths compare unequal (the length itself is not secret).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.ct_eq(b).into()
}

/// Lowercase hex of HMAC-SHA256 over `message` keyed by `key` (alert signatures, key names).
pub fn hmac_sha256_hex(key: &[u8], message: &[u8]) -> String {
    let mut mac = <HmacSha256 as Mac>::new_from_slice(key).expect("HMAC takes any key length");
    mac.update(message);
    mac.finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// A short name for an unnamed API key: 8 hex characters of an HMAC keyed by the key itself
/// over a fixed label. Stable while the key is, says nothing usable about the key.
pub fn key_fingerprint(key: &str) -> String {
    hmac_sha256_hex(key.as_bytes(), b"token-manager key name v1")[..8].to_string()
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
        let (version, rest) = stored.split_once(':').unwrap();
        let (_, kid, body) = split_stored(stored).unwrap();
        let mut bytes = STANDARD.decode(body).unwrap();
        f(&mut bytes);
        assert!(rest.starts_with(kid));
        format!("{version}:{kid}:{}", STANDARD.encode(bytes))
    }

    /// The payload bytes of a stored value.
    fn body(stored: &str) -> Vec<u8> {
        STANDARD.decode(split_stored(stored).unwrap().2).unwrap()
    }

    /// Written with Python's `cryptography` AESGCM, nonce bytes(range(100, 112)), associated
    /// data the account name: a v1 value as earlier versions stored it.
    const V1_VECTOR: &str = "v1:782d6ef7:ZGVmZ2hpamtsbW5vLWKUDhuuNfdxCxWhjx8jzAyrTDOlHJILy77NLNXQzC8m+Zm/G2kiuOZntJ5Qr/i+";

    #[test]
    fn key_id_known_answer() {
        // Computed independently: sha256(b"token-manager key id" + bytes(range(32)))[:8].
        assert_eq!(ring(KEY_A, &[]).current_key_id(), "782d6ef7");
    }

    #[test]
    fn opens_v1_vectors_from_an_independent_implementation() {
        let k = ring(KEY_A, &[]);
        assert_eq!(
            k.decrypt("PAAPEX1361890000001", V1_VECTOR).unwrap(),
            "eyJhbGciOiJIUzI1NiJ9.payload.sig"
        );
        assert!(
            !k.is_current(V1_VECTOR),
            "v1 is upgraded by a re-encryption"
        );
        assert_eq!(
            k.decrypt("APEX_136189", V1_VECTOR),
            Err(DecryptError::AuthenticationFailed)
        );
        // v1 bound the market-data token as `<account>#md`.
        let md = "v1:782d6ef7:AAECAwQFBgcICQoLKmb7b6qOp3UKybfLeuROVSMxtGGb+KGs";
        assert_eq!(
            k.open_text(SecretField::MdAccessToken, "APEX_1", md)
                .unwrap(),
            "md-token"
        );
        assert_eq!(
            k.open_text(SecretField::AccessToken, "APEX_1#md", md)
                .unwrap(),
            "md-token",
            "v1's ambiguity, which v2 removes"
        );
    }

    #[test]
    fn opens_v2_vectors_from_an_independent_implementation() {
        // Written in Python: HChaCha20 (checked against the XChaCha20 draft's test vector)
        // and `cryptography`'s ChaCha20Poly1305, nonce bytes(range(100, 124)), associated data
        // the length-prefixed ("v2", field, account, key id).
        let k = ring(KEY_A, &[]);
        let access = "v2:782d6ef7:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7GQqz2J1p6uvIWdd28xX0+BXSGEjKXKvJ4DoFwwUtEXdjCL5+MqKTuASInmkDGWfk";
        assert_eq!(
            k.decrypt("PAAPEX1361890000001", access).unwrap(),
            "eyJhbGciOiJIUzI1NiJ9.payload.sig"
        );
        assert!(k.is_current(access));
        let md = "v2:782d6ef7:ZGVmZ2hpamtsbW5vcHFyc3R1dnd4eXp7ERfUxJBF7OyaYgrTsOh5Q6Fs5Oykdb0s";
        assert_eq!(
            k.open_text(SecretField::MdAccessToken, "APEX_1#md", md)
                .unwrap(),
            "md-token"
        );
        for (field, account) in [
            (SecretField::AccessToken, "APEX_1#md"),
            (SecretField::MdAccessToken, "APEX_1"),
            (SecretField::AccessToken, "APEX_1#md#md"),
        ] {
            assert_eq!(
                k.open_text(field, account, md),
                Err(DecryptError::AuthenticationFailed),
                "{field:?} {account}"
            );
        }
    }

    #[test]
    fn v2_binds_the_field_where_v1_was_ambiguous() {
        let k = ring(KEY_A, &[]);
        // The v1 collision: `APEX_1#md`'s access token and `APEX_1`'s market-data token.
        let md = k.seal(SecretField::MdAccessToken, "APEX_1", b"md");
        assert_eq!(
            k.open(SecretField::AccessToken, "APEX_1#md", &md),
            Err(DecryptError::AuthenticationFailed)
        );
        let access = k.seal(SecretField::AccessToken, "APEX_1#md", b"tok");
        assert_eq!(
            k.open(SecretField::MdAccessToken, "APEX_1", &access),
            Err(DecryptError::AuthenticationFailed)
        );
        // A value with its key id rewritten to another configured key does not open either.
        let two = ring(KEY_A, &[KEY_B]);
        let other_id = two.previous_key_ids()[0].to_owned();
        let moved = access.replace(two.current_key_id(), &other_id);
        assert_eq!(
            two.open(SecretField::AccessToken, "APEX_1#md", &moved),
            Err(DecryptError::AuthenticationFailed)
        );
    }

    #[test]
    fn fingerprint_known_answer() {
        // hmac(hmac(key, b"token-manager fingerprint v1"), b"fingerprint v2" + parts), in Python.
        let parts: [Option<&[u8]>; 4] = [Some(b"APEX_136189"), Some(b"tok-1"), None, Some(b"")];
        assert_eq!(
            ring(KEY_A, &[]).fingerprint(&parts),
            "9be0a54a668cb4981c3eb8cd335a2f9dd05d9180fd5be6079d8578a5de88c708"
        );
    }

    #[test]
    fn round_trip_and_format() {
        let k = ring(KEY_A, &[]);
        let stored = k.encrypt("APEX_136189", "eyJ.tok.en");
        assert!(stored.starts_with("v2:782d6ef7:"), "{stored}");
        assert!(!stored.contains("eyJ.tok.en"));
        assert_eq!(k.decrypt("APEX_136189", &stored).unwrap(), "eyJ.tok.en");
        // Empty and unicode plaintexts too.
        for p in ["", "ünïcødé 账户 🔐", "a:b:c"] {
            assert_eq!(k.decrypt("acct", &k.encrypt("acct", p)).unwrap(), p);
        }
        // Layout: 24-byte nonce, ciphertext of the same length, 16-byte tag.
        assert_eq!(body(&stored).len(), 24 + 10 + 16);
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
        for i in 0..body(&stored).len() {
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
        assert_ne!(body(&a)[..24], body(&b)[..24]);
        assert_eq!(
            k.decrypt("acct", &a).unwrap(),
            k.decrypt("acct", &b).unwrap()
        );
    }

    #[test]
    fn nonces_stay_distinct_across_refills_of_the_pool() {
        let k = ring(KEY_A, &[]);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..5 * (NONCE_POOL / V2_NONCE_LEN) + 3 {
            let nonce = body(&k.encrypt("acct", "t"))[..V2_NONCE_LEN].to_vec();
            assert_ne!(nonce, [0; V2_NONCE_LEN]);
            assert!(seen.insert(nonce), "a nonce was handed out twice");
        }
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
        assert!(stored_new.starts_with(&format!("v2:{}:", rotated.current_key_id())));
        assert!(rotated.is_current(&stored_new));
        assert!(!rotated.is_current("garbage"));
        assert!(!rotated.is_current("v2:00000000:AAAA"));
        // A previous key's v2 value and the current key's v1 value both need rewriting.
        let old_v2 = old.encrypt("acct", "tok");
        assert!(!rotated.is_current(&old_v2));
        assert_eq!(rotated.decrypt("acct", &old_v2).unwrap(), "tok");
        assert!(!ring(KEY_A, &[]).is_current(V1_VECTOR));
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
            format!("v3:{kid}:AAAA"),
            format!("V2:{kid}:AAAA"),
            format!("v2:{kid}:{}", STANDARD.encode([0u8; 39])),
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
        for minimal in [
            format!("v1:{kid}:{}", STANDARD.encode([0u8; 28])),
            format!("v2:{kid}:{}", STANDARD.encode([0u8; 40])),
        ] {
            assert_eq!(
                k.decrypt("acct", &minimal),
                Err(DecryptError::AuthenticationFailed)
            );
        }
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
        let fp = |k: &Keyring, parts: &[Option<&str>]| {
            let parts: Vec<Option<&[u8]>> = parts.iter().map(|p| p.map(str::as_bytes)).collect();
            k.fingerprint(&parts)
        };
        let f = fp(&a, &[Some("APEX_136189"), Some("tok")]);
        assert_eq!(f.len(), 64);
        assert!(f
            .bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase()));
        assert_eq!(f, fp(&a, &[Some("APEX_136189"), Some("tok")]));
        assert_eq!(
            f,
            fp(&ring(KEY_A, &[KEY_B]), &[Some("APEX_136189"), Some("tok")])
        );
        assert_ne!(f, fp(&a, &[Some("APEX_272045"), Some("tok")]));
        assert_ne!(f, fp(&a, &[Some("APEX_136189"), Some("tok2")]));
        assert_ne!(f, fp(&b, &[Some("APEX_136189"), Some("tok")]));
        // Boundaries cannot shift, and absent differs from empty and from missing.
        assert_ne!(
            fp(&a, &[Some("ab"), Some("c")]),
            fp(&a, &[Some("a"), Some("bc")])
        );
        assert_ne!(fp(&a, &[Some("a"), None]), fp(&a, &[Some("a"), Some("")]));
        assert_ne!(fp(&a, &[Some("a"), None]), fp(&a, &[Some("a")]));
        assert_ne!(fp(&a, &[None, Some("a")]), fp(&a, &[Some("a"), None]));
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
            to_hex(k.0.fingerprint_key.as_slice()),
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
            let _ = ring(KEY_A, &[]).decrypt("acct", &format!("v2:782d6ef7:{s}"));
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
