//! API keys: a read scope (status, get, list; possibly limited to main accounts) and an admin
//! scope (everything), compared in constant time against every configured key.

use crate::config::{ApiKey, ApiKeys};
use crate::crypto::constant_time_eq;
use crate::domain::access::AccountScope;

use super::error::ApiError;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Admin,
}

impl Scope {
    /// `read` or `admin`, as logs write it.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Admin => "admin",
        }
    }
}

/// The authenticated caller: which key it presented (by name, never the key), what that key
/// may call, and which accounts it may see. Handlers receive it, so logs and the audit trail
/// can say who.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The key's configured name, e.g. `bot-eu`, or `read-3f2a9c01` for an unnamed key.
    pub key_name: String,
    /// Admin keys may call everything; read keys status, get and list.
    pub scope: Scope,
    /// The accounts the key may see (always all for admin keys).
    pub accounts: AccountScope,
}

impl Caller {
    /// Ok when the caller's key has `needed`; 403 for a read key on an admin action.
    pub fn permit(&self, needed: Scope) -> Result<(), ApiError> {
        match (self.scope, needed) {
            (Scope::Read, Scope::Admin) => Err(ApiError::Forbidden),
            _ => Ok(()),
        }
    }
}

/// The bearer key of an `Authorization` header, if any.
pub fn bearer(authorization: Option<&str>) -> Option<&str> {
    authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
}

/// The caller whose key `authorization` presents; 401 for a missing or unknown key.
pub fn authenticate(keys: &ApiKeys, authorization: Option<&str>) -> Result<Caller, ApiError> {
    let presented = bearer(authorization).ok_or(ApiError::Unauthorized)?;
    // Compare against every key so timing does not reveal which one matched.
    fn find<'k>(list: &'k [ApiKey], presented: &str) -> Option<&'k ApiKey> {
        list.iter().fold(None, |found, key| {
            let hit = constant_time_eq(presented.as_bytes(), key.secret.expose().as_bytes());
            found.or(hit.then_some(key))
        })
    }
    let (admin, read) = (find(&keys.admin, presented), find(&keys.read, presented));
    match (admin, read) {
        (Some(key), _) => Ok(Caller {
            key_name: key.name.clone(),
            scope: Scope::Admin,
            accounts: AccountScope::All,
        }),
        (None, Some(key)) => Ok(Caller {
            key_name: key.name.clone(),
            scope: Scope::Read,
            accounts: key.accounts.clone(),
        }),
        (None, None) => Err(ApiError::Unauthorized),
    }
}
