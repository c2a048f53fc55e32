//! Get: one account's token, decrypted, with its expiry. Unknown accounts are
//! [`JobError::UnknownAccount`]; expired or inactive tokens are refused without the token.

use chrono::{DateTime, Utc};

use super::{JobError, Services};
use crate::domain::access::AccountScope;
use crate::domain::account::AccountName;
use crate::store::{StoredToken, TokenRead};

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
    get_recorded(services, account, now, scope, None).await.0
}

/// Like [`get_in`], also appending `read` to the audit trail in the same round trip (the
/// database sets its outcome). The second value says whether it was recorded: `None` when no
/// call reached the database (an invalid name, or PostgREST failed), `Some(false)` when the
/// audit insert failed but the read did not, and the recorded outcome with `Some(true)`.
pub async fn get_recorded(
    services: &Services,
    account: &str,
    now: DateTime<Utc>,
    scope: &AccountScope,
    read: Option<&TokenRead>,
) -> (Result<TokenReport, JobError>, Option<(bool, u16)>) {
    let name = match AccountName::parse(account) {
        Ok(name) => name,
        Err(e) => {
            let error = JobError::InvalidAccount {
                account: account.to_string(),
                reason: e.to_string(),
            };
            return (Err(error), None);
        }
    };
    let mains: Option<Vec<&str>> = match scope {
        AccountScope::All => None,
        AccountScope::MainAccounts(mains) => Some(mains.iter().map(String::as_str).collect()),
    };
    let answer = match services
        .store
        .get_recorded(
            name.as_str(),
            mains.as_deref(),
            now,
            read,
            services.config.audit_required,
        )
        .await
    {
        Ok(answer) => answer,
        Err(e) => return (Err(e.into()), None),
    };
    let recorded = read.map(|_| (answer.recorded, answer.outcome));
    let report = match answer.token.filter(|row| scope.allows(&row.main_account)) {
        Some(row) => open(services, row, now),
        None => Err(JobError::UnknownAccount(account.to_string())),
    };
    (report, recorded)
}

/// Refuses an inactive or expired row, else decrypts it.
fn open(
    services: &Services,
    row: StoredToken,
    now: DateTime<Utc>,
) -> Result<TokenReport, JobError> {
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
