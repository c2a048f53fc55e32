//! Which accounts an API key may read: all of them, or only the tokens of some main accounts.

use std::collections::BTreeSet;

/// The accounts a caller may see.
///
/// Guarantees: a `MainAccounts` scope is non-empty, and each name in it is a valid account
/// name made only of ASCII letters, digits, `_`, `-` and `.` (so it is safe in a PostgREST
/// `in.(…)` list).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum AccountScope {
    /// Every account (the admin key, and read keys without `@…`).
    #[default]
    All,
    /// Only tokens whose main account is one of these.
    MainAccounts(BTreeSet<String>),
}

/// Why a main-account name cannot be part of a scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScopeError {
    #[error("the account list after @ is empty; list main accounts separated by |, e.g. key@APEX_136189|APEX_272045")]
    Empty,
    #[error("main account #{position} after @ is not a plain account name (letters, digits, _ - . only, at most 200 bytes)")]
    BadName { position: usize },
}

impl AccountScope {
    /// Parses `APEX_136189|APEX_272045`: main accounts separated by `|`.
    pub fn parse(list: &str) -> Result<AccountScope, ScopeError> {
        if list.trim().is_empty() {
            return Err(ScopeError::Empty);
        }
        let mut names = BTreeSet::new();
        for (i, name) in list.split('|').map(str::trim).enumerate() {
            let plain = !name.is_empty()
                && name.len() <= super::account::AccountName::MAX_LEN
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
            if !plain {
                return Err(ScopeError::BadName { position: i + 1 });
            }
            names.insert(name.to_string());
        }
        Ok(AccountScope::MainAccounts(names))
    }

    /// True when a token of `main_account` is visible to this scope.
    pub fn allows(&self, main_account: &str) -> bool {
        match self {
            AccountScope::All => true,
            AccountScope::MainAccounts(names) => names.contains(main_account),
        }
    }

    /// The main accounts of a limited scope; `None` for all accounts.
    pub fn main_accounts(&self) -> Option<&BTreeSet<String>> {
        match self {
            AccountScope::All => None,
            AccountScope::MainAccounts(names) => Some(names),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_main_accounts_and_refuses_filter_syntax() {
        let scope = AccountScope::parse("APEX_136189| APEX_272045").unwrap();
        assert!(scope.allows("APEX_136189") && scope.allows("APEX_272045"));
        assert!(!scope.allows("APEX_266668"));
        assert!(AccountScope::All.allows("anything"));
        assert_eq!(AccountScope::parse(""), Err(ScopeError::Empty));
        for (bad, position) in [("A|", 2), ("A,B", 1), ("A|(B)", 2), ("\"A\"", 1)] {
            assert_eq!(
                AccountScope::parse(bad),
                Err(ScopeError::BadName { position }),
                "{bad}"
            );
        }
    }
}
