//! The CPU-bound part of a sync, stage by stage, as `token_manager::jobs::sync` does it for
//! every token read from Redis: parse the value (account name, JSON or raw token, expiry,
//! main account, metadata), fingerprint it, encrypt it (and its `mdAccessToken`), and
//! serialise the upsert batches (`{"p_tokens": [...]}`, as the store sends them).
//! No I/O and no clock: the caller times each stage (`Instant` natively, `performance.now()`
//! under Node for the wasm build).

use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use token_manager::crypto::Keyring;
use token_manager::domain::account::{main_account_for, AccountName, KeyType};
use token_manager::domain::expiry::resolve_expiry;
use token_manager::domain::token_value::parse_token_value;
use token_manager::jobs::sync::md_aad;
use token_manager::store::TokenRow;

use crate::tokens::{self, Seed};

/// The stages, in order.
pub const STAGES: [&str; 4] = ["parse", "fingerprint", "encrypt", "serialise"];

/// A fixed key: the benchmark needs a key, not a secret.
const KEY_BASE64: &str = "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=";

struct Parsed {
    account: AccountName,
    redis_key: String,
    main_account: AccountName,
    key_type: KeyType,
    token: String,
    md_token: Option<String>,
    token_type: &'static str,
    expires_at: Option<DateTime<Utc>>,
    metadata: Value,
}

/// `n` tokens' worth of sync work, run one stage at a time.
pub struct Workload {
    seeds: Vec<Seed>,
    now: DateTime<Utc>,
    keyring: Keyring,
    batch_size: usize,
    parsed: Vec<Parsed>,
    fingerprints: Vec<String>,
    sealed: Vec<(String, Option<String>)>,
}

impl Workload {
    /// Realistic values for `n` accounts (see [`tokens`]), upserted `batch_size` per request.
    pub fn new(n: usize, batch_size: usize, now: DateTime<Utc>) -> Workload {
        Workload {
            seeds: tokens::seeds(n, 0, now),
            now,
            keyring: Keyring::from_base64(KEY_BASE64, &[]).expect("the bench key is valid"),
            batch_size: batch_size.max(1),
            parsed: Vec::new(),
            fingerprints: Vec::new(),
            sealed: Vec::new(),
        }
    }

    /// How many tokens.
    pub fn len(&self) -> usize {
        self.seeds.len()
    }

    /// True for a workload of no tokens.
    pub fn is_empty(&self) -> bool {
        self.seeds.is_empty()
    }

    /// Runs stage `index` of [`STAGES`] over every token; returns a figure that depends on
    /// all the work (so none of it can be optimised away). Stages must run in order.
    pub fn run_stage(&mut self, index: usize) -> usize {
        match index {
            0 => self.parse(),
            1 => self.fingerprint(),
            2 => self.encrypt(),
            3 => self.serialise(),
            _ => panic!("no stage {index}"),
        }
    }

    /// Key → account name, value → token and metadata, expiry, main account, key type.
    pub fn parse(&mut self) -> usize {
        let pattern = format!("{}*", tokens::PREFIX);
        self.parsed = self
            .seeds
            .iter()
            .map(|seed| {
                let account = AccountName::from_redis_key(&seed.key, &pattern).expect("valid key");
                let value = parse_token_value(seed.value.as_bytes()).expect("valid value");
                let pttl_ms = seed.ttl_ms.map_or(-1, |ms| ms as i64);
                let (expires_at, source) = resolve_expiry(&value, Some(pttl_ms), self.now);
                let main_account = main_account_for(&account, value.main_account.as_deref());
                let mut metadata = json!({
                    "redis_key": seed.key,
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
                Parsed {
                    key_type: KeyType::classify(&account, &main_account, value.token_type),
                    account,
                    redis_key: seed.key.clone(),
                    main_account,
                    token_type: value.token_type.as_str(),
                    expires_at,
                    metadata,
                    md_token: value.md_access_token,
                    token: value.access_token,
                }
            })
            .collect();
        self.parsed.iter().map(|p| p.token.len()).sum()
    }

    /// The keyed HMAC-SHA256 fingerprint of every token.
    pub fn fingerprint(&mut self) -> usize {
        self.fingerprints = self
            .parsed
            .iter()
            .map(|p| self.keyring.fingerprint(p.account.as_str(), &p.token))
            .collect();
        self.fingerprints.iter().map(String::len).sum()
    }

    /// AES-256-GCM of every token and market-data token, fresh nonce each.
    pub fn encrypt(&mut self) -> usize {
        self.sealed = self
            .parsed
            .iter()
            .map(|p| {
                let account = p.account.as_str();
                let md = p
                    .md_token
                    .as_ref()
                    .map(|md| self.keyring.encrypt(&md_aad(account), md));
                (self.keyring.encrypt(account, &p.token), md)
            })
            .collect();
        self.sealed.iter().map(|(s, _)| s.len()).sum()
    }

    /// The rows and the JSON bodies of the upsert requests; returns the bytes serialised.
    pub fn serialise(&mut self) -> usize {
        let rows: Vec<TokenRow> = self
            .parsed
            .iter()
            .zip(&self.fingerprints)
            .zip(&self.sealed)
            .map(|((p, fingerprint), (sealed, md))| {
                let mut metadata = p.metadata.clone();
                if let Some(md) = md {
                    metadata["md_access_token"] = json!(md);
                }
                TokenRow {
                    account_name: p.account.as_str().to_string(),
                    main_account: p.main_account.as_str().to_string(),
                    token_type: p.token_type.to_string(),
                    access_token: sealed.clone(),
                    token_length: p.token.chars().count(),
                    expires_at: p.expires_at,
                    metadata,
                    token_fingerprint: fingerprint.clone(),
                    key_id: self.keyring.current_key_id().to_string(),
                    redis_key: p.redis_key.clone(),
                    key_type: p.key_type.as_str().to_string(),
                }
            })
            .collect();
        rows.chunks(self.batch_size)
            .map(|batch| json!({ "p_tokens": batch }).to_string().len())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_run_in_order_over_every_token() {
        let mut work = Workload::new(30, 8, Utc::now());
        assert_eq!(work.len(), 30);
        let figures: Vec<usize> = (0..STAGES.len()).map(|i| work.run_stage(i)).collect();
        assert!(figures.iter().all(|&f| f > 0), "{figures:?}");
        assert_eq!(work.fingerprints.len(), 30);
        // Every ciphertext opens again under the bench key.
        let p = &work.parsed[2];
        let opened = work
            .keyring
            .decrypt(p.account.as_str(), &work.sealed[2].0)
            .unwrap();
        assert_eq!(opened, p.token);
        assert!(
            work.sealed[2].1.is_some(),
            "the JSON blobs carry an mdAccessToken"
        );
    }
}
