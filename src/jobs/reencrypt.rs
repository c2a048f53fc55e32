//! Key rotation: every stored token not written under the current `TOKEN_ENCRYPTION_KEY` is
//! decrypted with a previous key and written again under the current one, in batches. The
//! fingerprint is recomputed too, so the next sync sees the tokens as unchanged.

use serde::Serialize;
use serde_json::{json, Value};

use super::{JobError, Services, Trigger};
use crate::jobs::sync::md_aad;
use crate::store::ResealedToken;

/// The re-encryption answer.
#[derive(Debug, Clone, Serialize)]
pub struct ReencryptReport {
    pub success: bool,
    pub message: String,
    pub reencrypted: u64,
    pub key_id: String,
    /// Accounts whose token no configured key decrypts (left as they are).
    pub failed: Vec<String>,
    pub run_id: String,
}

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
        for sealed in page {
            let account = sealed.account_name;
            let Ok(token) = keyring.decrypt(&account, &sealed.access_token) else {
                failed.push(account);
                continue;
            };
            let mut metadata = sealed.metadata;
            if let Some(Value::String(md)) = metadata.get("md_access_token") {
                match keyring.decrypt(&md_aad(&account), md) {
                    Ok(md) => {
                        metadata["md_access_token"] = json!(keyring.encrypt(&md_aad(&account), &md))
                    }
                    Err(_) => {
                        failed.push(account);
                        continue;
                    }
                }
            }
            rows.push(ResealedToken {
                token_fingerprint: keyring.fingerprint(&account, &token),
                access_token: keyring.encrypt(&account, &token),
                previous_access_token: sealed.access_token,
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
