//! The CPU-bound part of a sync, stage by stage, through the very functions
//! `token_manager::jobs::sync` calls for every token read from Redis: parse the value
//! (account name, JSON or raw token, expiry, main account, metadata), fingerprint it, seal it
//! (encrypt it and its `mdAccessToken` into the upsert row), and serialise the upsert batches
//! as the store sends them. Then a restore's work for the same tokens (`restore`): read the
//! rows from a Supabase answer (JSON), open each one's sealed secrets and build the `SET NX PX`
//! pipeline bodies, as `token_manager::jobs::restore` does after Redis lost its keys; it is no
//! part of a sync. No I/O and no clock: the caller
//! times each stage (`Instant` natively, `performance.now()` under Node for the wasm build).

use chrono::{DateTime, Utc};
use token_manager::crypto::Keyring;
use token_manager::domain::account::AccountName;
use token_manager::domain::candidate::Candidate;
use token_manager::domain::expiry::Ttl;
use token_manager::store::{apply_sync_body, RestoreStart, TokenRow};
use token_manager::upstash::{set_nx_px_commands, NewKey};

use crate::tokens::{self, Seed};

/// The stages, in order: a sync's four, then a restore's.
pub const STAGES: [&str; 5] = ["parse", "fingerprint", "encrypt", "serialise", "restore"];
/// The stage that is a restore's work, not a sync's.
pub const RESTORE_STAGE: &str = "restore";

/// A fixed key: the benchmark needs a key, not a secret.
const KEY_BASE64: &str = "YmVuY2gtb25seS1lbmNyeXB0aW9uLWtleS0zMmJ5dGU=";

/// `n` tokens' worth of sync work, run one stage at a time.
pub struct Workload {
    seeds: Vec<Seed>,
    now: DateTime<Utc>,
    keyring: Keyring,
    batch_size: usize,
    parsed: Vec<Candidate>,
    fingerprints: Vec<String>,
    rows: Vec<TokenRow>,
    /// The upsert bodies: the rows as JSON, which the restore stage reads back.
    bodies: Vec<String>,
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
            rows: Vec::new(),
            bodies: Vec::new(),
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
            4 => self.restore(),
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
                let ttl = seed.ttl_ms.map_or(Ttl::Persistent, Ttl::Millis);
                Candidate::parse(
                    account,
                    seed.key.clone(),
                    seed.value.as_bytes(),
                    ttl,
                    self.now,
                )
                .expect("valid value")
            })
            .collect();
        self.parsed.len()
    }

    /// The keyed HMAC-SHA256 fingerprint of what every row stores.
    pub fn fingerprint(&mut self) -> usize {
        self.fingerprints = self
            .parsed
            .iter()
            .map(|c| c.fingerprint(&self.keyring))
            .collect();
        self.fingerprints.iter().map(String::len).sum()
    }

    /// The upsert rows: XChaCha20-Poly1305 (format v2) of every token and market-data token,
    /// fresh nonce each.
    pub fn encrypt(&mut self) -> usize {
        self.rows = self
            .parsed
            .iter()
            .zip(&self.fingerprints)
            .map(|(c, fingerprint)| c.seal(&self.keyring, fingerprint.clone()))
            .collect();
        self.rows.iter().map(|r| r.access_token.len()).sum()
    }

    /// The JSON bodies of the upsert requests; returns the bytes serialised.
    pub fn serialise(&mut self) -> usize {
        self.bodies = self
            .rows
            .chunks(self.batch_size)
            .map(apply_sync_body)
            .collect();
        self.bodies.iter().map(String::len).sum()
    }

    /// A restore of every stored row: read the rows from JSON (the upsert bodies hold the
    /// same fields Supabase answers a restore with), open each one's sealed secrets, take the
    /// value as read (a JSON value's sealed copy, else the token), and serialise the
    /// `SET NX PX` pipelines; returns the bytes serialised.
    pub fn restore(&mut self) -> usize {
        let ttl_ms = std::num::NonZeroU64::new(3_600_000).expect("non-zero");
        let mut writes = Vec::with_capacity(self.rows.len());
        for body in &self.bodies {
            // Supabase's answer to a restore: {"run_id", "tokens": [rows], "inactive"}.
            let answer = body.replacen(
                r#"{"p_tokens":"#,
                r#"{"run_id":null,"inactive":0,"tokens":"#,
                1,
            );
            let start: RestoreStart =
                serde_json::from_str(&answer).expect("the bench's own rows read");
            for row in start.tokens {
                let secrets = row
                    .sealed
                    .open(&self.keyring, &row.account_name)
                    .expect("the bench's own rows open");
                let key = row.metadata["redis_key"]
                    .as_str()
                    .expect("rows name their key")
                    .to_string();
                writes.push(NewKey {
                    key,
                    value: secrets.redis_value.unwrap_or(secrets.access_token),
                    ttl_ms,
                });
            }
        }
        writes
            .chunks(self.batch_size)
            .map(|batch| {
                serde_json::to_string(&set_nx_px_commands(batch))
                    .expect("commands serialise")
                    .len()
            })
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
        // Every ciphertext opens again under the bench key, to the token in the value.
        let row = &work.rows[2];
        let opened = work
            .keyring
            .open_text(
                token_manager::crypto::SecretField::AccessToken,
                work.parsed[2].account().as_str(),
                &row.access_token,
            )
            .unwrap();
        assert!(!opened.is_empty() && work.seeds[2].value.contains(&opened));
        assert!(
            row.metadata.md_access_token.is_some(),
            "the JSON blobs carry an mdAccessToken"
        );
    }
}
