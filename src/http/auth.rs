//! API keys: a read scope (status, get, list) and an admin scope (everything), compared in
//! constant time against every configured key of the scope.

use crate::config::{Config, Secret};
use crate::crypto::constant_time_eq;

use super::error::ApiError;

/// What a route needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Read,
    Admin,
}

/// Checks the `Authorization` header against the keys: 401 for a missing or unknown key,
/// 403 for a read key on an admin route.
pub fn authorize(
    config: &Config,
    authorization: Option<&str>,
    needed: Scope,
) -> Result<(), ApiError> {
    let presented = authorization
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .ok_or(ApiError::Unauthorized)?;
    let matches = |keys: &[Secret]| {
        // Compare against every key so timing does not reveal which one matched.
        keys.iter().fold(false, |found, key| {
            constant_time_eq(presented.as_bytes(), key.expose().as_bytes()) | found
        })
    };
    if matches(&config.admin_keys) {
        return Ok(());
    }
    if matches(&config.read_keys) {
        return if needed == Scope::Read {
            Ok(())
        } else {
            Err(ApiError::Forbidden)
        };
    }
    Err(ApiError::Unauthorized)
}
