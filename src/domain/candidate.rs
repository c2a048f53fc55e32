//! A token read from Redis, parsed and ready to compare with what is stored and to seal into
//! the row a sync upserts. Building one, its fingerprint and its sealed row is the sync's pure
//! work (the benchmark times these).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::account::{main_account_for, AccountName, KeyType};
use super::expiry::{resolve_expiry, ExpirySource, Ttl};
use super::sealed::TokenSecrets;
use super::token_value::{parse_token_value, SkipReason, TokenType, ValueFormat};
use crate::crypto::Keyring;
use crate::store::TokenRow;

/// What a sync writes to a token row's `metadata`: where the token came from and what its
/// value said besides the token. Never a plaintext secret (the market-data token is sealed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenMetadata {
    /// The Redis key the token was read from.
    pub redis_key: String,
    /// Where `expires_at` came from.
    pub expires_source: ExpirySource,
    /// Whether the value was a bare token or JSON.
    pub value_format: ValueFormat,
    /// The key's TTL when it was read, if it had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_ttl_ms: Option<u64>,
    /// The value's `userId`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The value's `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// The sealed market-data token (see [`crate::domain::sealed::SealedToken::into_row`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub md_access_token: Option<String>,
    /// A JSON value exactly as read, sealed, which a restore writes back byte for byte (a
    /// raw value is the access token itself).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redis_value: Option<String>,
    /// When the renew pass wrote this token (a sync leaves it out; the database keeps it while
    /// the token stays the same).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewed_at: Option<DateTime<Utc>>,
    /// Renewals since a bot last wrote a new token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renewal_count: Option<u64>,
    /// `renewed`, `renew_error` or `renew_failed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_state: Option<String>,
    /// When the renew pass last tried this token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub renew_attempted_at: Option<DateTime<Utc>>,
}

impl TokenMetadata {
    /// The keyed fingerprint of what a row stores for `account`: its secrets (for a JSON
    /// value, the whole value as read) and the metadata that came from the value (user id,
    /// name, value format, expiry source). A change to any of them changes it; the TTL, which
    /// moves on every read, does not.
    pub fn fingerprint(&self, keyring: &Keyring, account: &str, secrets: &TokenSecrets) -> String {
        keyring.fingerprint(&[
            Some(account.as_bytes()),
            Some(secrets.access_token.as_bytes()),
            secrets.md_access_token.as_deref().map(str::as_bytes),
            secrets.redis_value.as_deref().map(str::as_bytes),
            self.user_id.as_deref().map(str::as_bytes),
            self.name.as_deref().map(str::as_bytes),
            Some(self.value_format.as_str().as_bytes()),
            Some(self.expires_source.as_str().as_bytes()),
        ])
    }
}

/// A token read from Redis. `Debug` shows no secret.
#[derive(Debug)]
pub struct Candidate {
    account: AccountName,
    main_account: AccountName,
    key_type: KeyType,
    secrets: TokenSecrets,
    token_length: usize,
    token_type: TokenType,
    expires_at: Option<DateTime<Utc>>,
    metadata: TokenMetadata,
}

impl Candidate {
    /// Parses the value of `redis_key` (which names `account`) with its TTL; the error is the
    /// reason it is skipped, never containing the value.
    pub fn parse(
        account: AccountName,
        redis_key: String,
        value: &[u8],
        ttl: Ttl,
        now: DateTime<Utc>,
    ) -> Result<Candidate, SkipReason> {
        let raw = value;
        let value = parse_token_value(raw)?;
        // A JSON value is kept as read (parse_token_value accepted it, so it is UTF-8), so a
        // restore writes back exactly what the bot wrote; a raw value is the token itself.
        let redis_value =
            (value.format == ValueFormat::Json).then(|| String::from_utf8_lossy(raw).into_owned());
        let (expires_at, expires_source) = resolve_expiry(&value, ttl, now);
        let main_account = main_account_for(&account, value.main_account.as_deref());
        Ok(Candidate {
            key_type: KeyType::classify(&account, &main_account, value.token_type),
            token_length: value.token_length(),
            account,
            main_account,
            token_type: value.token_type,
            expires_at,
            metadata: TokenMetadata {
                redis_key,
                expires_source,
                value_format: value.format,
                redis_ttl_ms: ttl.millis(),
                user_id: value.user_id,
                name: value.name,
                md_access_token: None,
                redis_value: None,
                renewed_at: None,
                renewal_count: None,
                renew_state: None,
                renew_attempted_at: None,
            },
            secrets: TokenSecrets {
                access_token: value.access_token,
                md_access_token: value.md_access_token,
                redis_value,
            },
        })
    }

    /// The account the token belongs to.
    pub fn account(&self) -> &AccountName {
        &self.account
    }

    /// The main account it belongs to.
    pub fn main_account(&self) -> &AccountName {
        &self.main_account
    }

    /// Bearer or auth.
    pub fn token_type(&self) -> TokenType {
        self.token_type
    }

    /// When the token expires, if known.
    pub fn expires_at(&self) -> Option<DateTime<Utc>> {
        self.expires_at
    }

    /// The keyed fingerprint of what the row would store (see [`TokenMetadata::fingerprint`]),
    /// compared with the stored one.
    pub fn fingerprint(&self, keyring: &Keyring) -> String {
        self.metadata
            .fingerprint(keyring, self.account.as_str(), &self.secrets)
    }

    /// The row to upsert: the secrets sealed under the current key.
    pub fn seal(&self, keyring: &Keyring, fingerprint: String) -> TokenRow {
        let sealed = self.secrets.seal(keyring, self.account.as_str());
        TokenRow {
            account_name: self.account.clone(),
            main_account: self.main_account.clone(),
            token_type: self.token_type,
            access_token: sealed.access_token,
            token_length: self.token_length,
            expires_at: self.expires_at,
            metadata: TokenMetadata {
                md_access_token: sealed.md_access_token,
                redis_value: sealed.redis_value,
                ..self.metadata.clone()
            },
            token_fingerprint: fingerprint,
            key_id: keyring.current_key_id().to_string(),
            redis_key: self.metadata.redis_key.clone(),
            key_type: self.key_type,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::sealed::SealedToken;

    const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    fn candidate(value: &str) -> Candidate {
        let account = AccountName::parse("APEX_1").unwrap();
        Candidate::parse(
            account,
            "token:APEX_1".into(),
            value.as_bytes(),
            Ttl::Millis(60_000),
            Utc::now(),
        )
        .unwrap()
    }

    #[test]
    fn the_fingerprint_covers_what_is_stored() {
        let k = Keyring::from_base64(KEY, &[]).unwrap();
        let base = r#"{"accessToken":"tok","mdAccessToken":"md","userId":7,"name":"n"}"#;
        let f = candidate(base).fingerprint(&k);
        assert_eq!(f, candidate(base).fingerprint(&k), "deterministic");
        for changed in [
            r#"{"accessToken":"tok2","mdAccessToken":"md","userId":7,"name":"n"}"#,
            r#"{"accessToken":"tok","mdAccessToken":"md2","userId":7,"name":"n"}"#,
            r#"{"accessToken":"tok","userId":7,"name":"n"}"#,
            r#"{"accessToken":"tok","mdAccessToken":"md","userId":8,"name":"n"}"#,
            r#"{"accessToken":"tok","mdAccessToken":"md","name":"n"}"#,
            r#"{"accessToken":"tok","mdAccessToken":"md","userId":7,"name":"m"}"#,
            r#"{"accessToken":"tok","mdAccessToken":"md","userId":7}"#,
            r#"{"accessToken":"tok","mdAccessToken":"md","userId":7,"name":"n","bot":1}"#,
            r#"{"accessToken":"tok", "mdAccessToken":"md","userId":7,"name":"n"}"#,
            "tok",
        ] {
            assert_ne!(candidate(changed).fingerprint(&k), f, "{changed}");
        }
    }

    #[test]
    fn a_sealed_row_reopens_to_the_same_fingerprint() {
        // What /v1/reencrypt does: read the row, open it, fingerprint it from its metadata.
        let k = Keyring::from_base64(KEY, &[]).unwrap();
        let c = candidate(r#"{"accessToken":"tok","mdAccessToken":"md","userId":"u"}"#);
        let row = c.seal(&k, c.fingerprint(&k));
        let mut metadata = serde_json::to_value(&row.metadata).unwrap();
        assert_eq!(metadata["redis_ttl_ms"], 60_000);
        let sealed = SealedToken::from_row(row.access_token.clone(), &mut metadata);
        let secrets = sealed.open(&k, "APEX_1").unwrap();
        let read = TokenMetadata::deserialize(&metadata).unwrap();
        assert_eq!(
            (read.md_access_token.as_deref(), read.redis_value.as_deref()),
            (None, None)
        );
        assert_eq!(
            secrets.redis_value.as_deref(),
            Some(r#"{"accessToken":"tok","mdAccessToken":"md","userId":"u"}"#)
        );
        assert_eq!(
            read.fingerprint(&k, "APEX_1", &secrets),
            row.token_fingerprint
        );
    }
}
