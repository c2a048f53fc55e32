//! Key rotation and format upgrade: every stored token not written under the current
//! `TOKEN_ENCRYPTION_KEY`, or still in ciphertext format v1, is opened (with a previous key,
//! or as v1) and sealed again as v2 under the current key, in batches. The fingerprint is
//! recomputed too, so the next sync sees the tokens as unchanged.

use serde::Deserialize;

use super::{JobError, Services, Trigger};
use crate::domain::candidate::TokenMetadata;
use crate::store::ResealedToken;

pub use api_model::ReencryptReport;

/// Re-encrypts every row under the current key; rows no key can open are reported, not lost.
pub async fn reencrypt(services: &Services, trigger: Trigger) -> Result<ReencryptReport, JobError> {
    let keyring = &services.config.keyring;
    let key_id = keyring.current_key_id().to_string();
    let (mut reencrypted, mut failed, mut after) = (0, Vec::new(), None::<String>);
    loop {
        let page = services
            .store
            .not_under_key(&key_id, after.as_deref(), services.config.batch_size)
            .await?;
        let Some(last) = page.last() else { break };
        after = Some(last.account_name.clone());
        let full = page.len() == services.config.batch_size;
        let mut rows = Vec::with_capacity(page.len());
        for row in page {
            let account = row.account_name;
            let Ok(secrets) = row.sealed.open(keyring, &account) else {
                failed.push(account);
                continue;
            };
            let mut metadata = row.metadata;
            // Rows written by this version's sync fingerprint as the next sync will; for any
            // other the next sync rewrites the row once.
            let token_fingerprint = TokenMetadata::deserialize(&metadata)
                .map(|m| m.fingerprint(keyring, &account, &secrets))
                .unwrap_or_default();
            let access_token = secrets.seal(keyring, &account).into_row(&mut metadata);
            rows.push(ResealedToken {
                token_fingerprint,
                access_token,
                previous_access_token: row.sealed.access_token,
                key_id: key_id.clone(),
                metadata,
                account_name: account,
            });
        }
        reencrypted += services.store.apply_reencrypt(&rows).await?;
        if !full {
            break;
        }
    }
    let run_id = services
        .store
        .record_reencrypt(trigger.as_str(), reencrypted, &failed)
        .await?;
    Ok(ReencryptReport {
        success: failed.is_empty(),
        message: format!("Re-encrypted {reencrypted} tokens under key {key_id}"),
        reencrypted,
        key_id,
        failed,
        run_id,
    })
}
