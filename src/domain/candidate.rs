//! A token read from Redis, parsed and ready to compare with what is stored and to seal into
//! the row a sync upserts. Building one, its fingerprint and its sealed row is the sync's pure
//! work (the benchmark times these).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use super::account::{main_account_for, AccountName, KeyType};
use super::expiry::resolve_expiry;
use super::sealed::TokenSecrets;
use super::token_value::{parse_token_value, SkipReason, TokenType};
use crate::crypto::Keyring;
use crate::store::TokenRow;

/// A token read from Redis. `Debug` shows no secret.
#[derive(Debug)]
pub struct Candidate {
    account: AccountName,
    redis_key: String,
    main_account: AccountName,
    key_type: KeyType,
    secrets: TokenSecrets,
    token_length: usize,
    token_type: TokenType,
    expires_at: Option<DateTime<Utc>>,
    metadata: Value,
}

impl Candidate {
    /// Parses the value of `redis_key` (which names `account`) with its PTTL; the error is the
    /// reason it is skipped, never containing the value.
    pub fn parse(
        account: AccountName,
        redis_key: String,
        value: &[u8],
        pttl_ms: i64,
        now: DateTime<Utc>,
    ) -> Result<Candidate, SkipReason> {
        let value = parse_token_value(value)?;
        let (expires_at, source) = resolve_expiry(&value, Some(pttl_ms), now);
        let main_account = main_account_for(&account, value.main_account.as_deref());
        let mut metadata = json!({
            "redis_key": redis_key,
            "expires_source": source.as_str(),
            "value_format": value.format.as_str(),
        });
        if pttl_ms >= 0 {
            metadata["redis_ttl_ms"] = json!(pttl_ms);
        }
        if let Some(user_id) = &value.user_id {
            metadata["user_id"] = json!(user_id);
        }
        if let Some(name) = &value.name {
            metadata["name"] = json!(name);
        }
        Ok(Candidate {
            key_type: KeyType::classify(&account, &main_account, value.token_type),
            token_length: value.token_length(),
            account,
            redis_key,
            main_account,
            token_type: value.token_type,
            expires_at,
            metadata,
            secrets: TokenSecrets {
                access_token: value.access_token,
                md_access_token: value.md_access_token,
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

    /// The keyed fingerprint of the token, compared with the stored one.
    pub fn fingerprint(&self, keyring: &Keyring) -> String {
        keyring.fingerprint(self.account.as_str(), &self.secrets.access_token)
    }

    /// The row to upsert: the secrets sealed under the current key.
    pub fn seal(&self, keyring: &Keyring, fingerprint: String) -> TokenRow {
        let account = self.account.as_str();
        let mut metadata = self.metadata.clone();
        let access_token = self.secrets.seal(keyring, account).into_row(&mut metadata);
        TokenRow {
            account_name: account.to_string(),
            main_account: self.main_account.as_str().to_string(),
            token_type: self.token_type.as_str().to_string(),
            access_token,
            token_length: self.token_length,
            expires_at: self.expires_at,
            metadata,
            token_fingerprint: fingerprint,
            key_id: keyring.current_key_id().to_string(),
            redis_key: self.redis_key.clone(),
            key_type: self.key_type.as_str().to_string(),
        }
    }
}
