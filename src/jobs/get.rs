//! Get: one account's token, decrypted, with its expiry. Unknown accounts are
//! [`JobError::UnknownAccount`]; expired or inactive tokens are refused without the token.

use chrono::{DateTime, Utc};

use super::{JobError, Services};
use crate::domain::access::AccountScope;
use crate::domain::account::AccountName;

pub use api_model::TokenReport;

/// Looks `account` up by exact name and decrypts its token if it is active and unexpired.
pub async fn get(
    services: &Services,
    account: &str,
    now: DateTime<Utc>,
) -> Result<TokenReport, JobError> {
    get_in(services, account, now, &AccountScope::All).await
}

/// Like [`get`], for a caller that may see only `scope`: an account outside it is
/// [`JobError::UnknownAccount`] whatever its state, exactly like one that does not exist.
pub async fn get_in(
    services: &Services,
    account: &str,
    now: DateTime<Utc>,
    scope: &AccountScope,
) -> Result<TokenReport, JobError> {
    let name = AccountName::parse(account).map_err(|e| JobError::InvalidAccount {
        account: account.to_string(),
        reason: e.to_string(),
    })?;
    let row = services
        .store
        .get(name.as_str())
        .await?
        .filter(|row| scope.allows(&row.main_account))
        .ok_or_else(|| JobError::UnknownAccount(account.to_string()))?;
    if !row.is_active {
        return Err(JobError::Inactive(row.account_name));
    }
    if row.expires_at.is_some_and(|at| at <= now) {
        return Err(JobError::Expired(row.account_name));
    }
    let secrets = row
        .sealed
        .open(&services.config.keyring, &row.account_name)
        .map_err(|source| JobError::Decrypt {
            account: row.account_name.clone(),
            source,
        })?;
    Ok(TokenReport {
        success: true,
        account: row.account_name.clone(),
        environment: Some(services.config.renew.environment_for(&row.main_account)),
        main_account: row.main_account,
        token: secrets.access_token,
        token_type: row.token_type,
        md_access_token: secrets.md_access_token,
        expires_at: row.expires_at,
        expired: false,
        expires_in_seconds: row.expires_at.map(|at| (at - now).num_seconds()),
        updated_at: row.updated_at,
        metadata: row.metadata,
    })
}
