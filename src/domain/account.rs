//! Account names (`APEX_136189`, `PAAPEX1361890000001`, ...), the main account a sub-account
//! belongs to, and how a Redis key relates to its main account.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use super::token_value::TokenType;

/// A validated account name.
///
/// Guarantees: non-empty, at most [`AccountName::MAX_LEN`] bytes, and free of whitespace and
/// control characters. Everything else (unicode, punctuation such as `,.()%&*`, quotes) is
/// allowed: an account name is data and is never interpolated into a filter or a query string
/// by this crate. The name is kept exactly as given: it is never trimmed or case-folded.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct AccountName(String);

/// Why a string (or a Redis key) is not a valid account name.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum AccountNameError {
    /// The name is the empty string.
    #[error("account name is empty; give the account's name, e.g. APEX_136189")]
    Empty,
    /// The name is longer than [`AccountName::MAX_LEN`] bytes.
    #[error(
        "account name is {len} bytes long, the limit is {max} bytes; use the account's short name, e.g. APEX_136189",
        max = AccountName::MAX_LEN
    )]
    TooLong {
        /// Length of the rejected name in bytes.
        len: usize,
    },
    /// The name contains a whitespace character.
    #[error(
        "account name contains whitespace at byte {position}; account names are single words such as APEX_136189, remove the space"
    )]
    Whitespace {
        /// Byte offset of the first whitespace character.
        position: usize,
    },
    /// The name contains a control character (newline, tab, NUL, escape, ...).
    #[error(
        "account name contains a control character at byte {position}; remove it (account names are printable, e.g. APEX_136189)"
    )]
    ControlCharacter {
        /// Byte offset of the first control character.
        position: usize,
    },
    /// The Redis key does not start with the literal prefix of the key pattern.
    #[error(
        "Redis key does not start with the key pattern's prefix `{prefix}`; check the configured key patterns"
    )]
    KeyOutsidePattern {
        /// The literal prefix of the pattern (the text before its first `*`).
        prefix: String,
    },
    /// The Redis key is exactly the pattern's prefix: there is no account name after it.
    #[error(
        "Redis key is only the prefix `{prefix}`, with no account name after it; store the token under {prefix}<account>, e.g. {prefix}APEX_136189"
    )]
    OnlyPrefix {
        /// The literal prefix of the pattern (the text before its first `*`).
        prefix: String,
    },
}

impl AccountName {
    /// The longest accepted account name, in bytes.
    pub const MAX_LEN: usize = 200;

    /// Parses an account name. Rejects (never trims or repairs) an empty name, a name longer
    /// than [`Self::MAX_LEN`] bytes, and a name containing whitespace or control characters;
    /// accepts anything else unchanged.
    pub fn parse(s: &str) -> Result<AccountName, AccountNameError> {
        if s.is_empty() {
            return Err(AccountNameError::Empty);
        }
        if s.len() > Self::MAX_LEN {
            return Err(AccountNameError::TooLong { len: s.len() });
        }
        for (position, c) in s.char_indices() {
            // Checked before whitespace so that `\n`, `\t` (which are both) name the
            // more specific problem: a control character.
            if c.is_control() {
                return Err(AccountNameError::ControlCharacter { position });
            }
            if c.is_whitespace() {
                return Err(AccountNameError::Whitespace { position });
            }
        }
        Ok(AccountName(s.to_owned()))
    }

    /// Derives the account name from a Redis key found with the glob `pattern` (e.g.
    /// `token:*`): the key without the pattern's literal prefix, i.e. the text before the
    /// pattern's first `*` (the whole pattern if it has no `*`). The remainder must be a valid
    /// account name.
    ///
    /// Errors: the key does not start with the prefix ([`AccountNameError::KeyOutsidePattern`]),
    /// the key is exactly the prefix ([`AccountNameError::OnlyPrefix`]), or the remainder is not
    /// a valid account name.
    pub fn from_redis_key(key: &str, pattern: &str) -> Result<AccountName, AccountNameError> {
        let prefix = pattern_prefix(pattern);
        let rest = key
            .strip_prefix(prefix)
            .ok_or_else(|| AccountNameError::KeyOutsidePattern {
                prefix: prefix.to_owned(),
            })?;
        if rest.is_empty() {
            return Err(AccountNameError::OnlyPrefix {
                prefix: prefix.to_owned(),
            });
        }
        AccountName::parse(rest)
    }

    /// The name as given, unchanged.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Consumes the name, returning the underlying string.
    pub fn into_string(self) -> String {
        self.0
    }
}

/// The literal prefix of a Redis glob pattern: the text before its first `*` (the whole
/// pattern when it has none). `token:*` → `token:`.
pub fn pattern_prefix(pattern: &str) -> &str {
    match pattern.find('*') {
        Some(i) => &pattern[..i],
        None => pattern,
    }
}

impl fmt::Display for AccountName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl AsRef<str> for AccountName {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl FromStr for AccountName {
    type Err = AccountNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        AccountName::parse(s)
    }
}

impl TryFrom<String> for AccountName {
    type Error = AccountNameError;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        AccountName::parse(&s)?;
        Ok(AccountName(s))
    }
}

impl From<AccountName> for String {
    fn from(name: AccountName) -> String {
        name.0
    }
}

/// The Apex rule: `PAAPEX1361890000001` and `APEX1361890000001` → `APEX_136189`.
///
/// An optional `PA` prefix, then `APEX`, then only ASCII digits of which the last 7 are the
/// account sequence and the rest (at least one digit) is the main account number.
/// Case-sensitive. Returns `None` when the name does not have that shape (including main
/// accounts such as `APEX_136189`).
fn apex_main(name: &str) -> Option<String> {
    const SEQUENCE_DIGITS: usize = 7;
    let rest = name.strip_prefix("PA").unwrap_or(name);
    let digits = rest.strip_prefix("APEX")?;
    if digits.len() <= SEQUENCE_DIGITS || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(format!(
        "APEX_{}",
        &digits[..digits.len() - SEQUENCE_DIGITS]
    ))
}

/// The main account that `account` belongs to.
///
/// Precedence: the value's explicit `main_account` field when it is a valid account name
/// (an invalid one is ignored), else the Apex rule (`PAAPEX1361890000001` and
/// `APEX1361890000001` → `APEX_136189`), else the account itself.
///
/// Guarantees: without an explicit field the result is idempotent
/// (`main_account_for(&main_account_for(a, None), None) == main_account_for(a, None)`), and a
/// result produced by the Apex rule starts with `APEX_`.
pub fn main_account_for(account: &AccountName, explicit: Option<&str>) -> AccountName {
    if let Some(main) = explicit.and_then(|e| AccountName::parse(e).ok()) {
        return main;
    }
    match apex_main(account.as_str()) {
        // Always valid: `APEX_` plus fewer ASCII digits than the (valid) account had.
        Some(main) => AccountName(main),
        None => account.clone(),
    }
}

/// How a Redis key relates to its main account (`token_key_mappings.key_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KeyType {
    /// The key holds the main account's own token.
    Main,
    /// The key holds a token of a sub-account of the main account.
    SubAccount,
    /// The key holds an `auth` token (the value's `token_type` is `auth`).
    Auth,
}

impl KeyType {
    /// The database spelling: `main`, `sub_account` or `auth`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyType::Main => "main",
            KeyType::SubAccount => "sub_account",
            KeyType::Auth => "auth",
        }
    }

    /// [`KeyType::Main`] when `account` is its own main account, [`KeyType::SubAccount`]
    /// otherwise. Never returns [`KeyType::Auth`]; see [`KeyType::classify`].
    pub fn for_account(account: &AccountName, main: &AccountName) -> KeyType {
        if account == main {
            KeyType::Main
        } else {
            KeyType::SubAccount
        }
    }

    /// Like [`KeyType::for_account`], but [`KeyType::Auth`] for values whose token type is
    /// `auth`, whatever the account.
    pub fn classify(account: &AccountName, main: &AccountName, token_type: TokenType) -> KeyType {
        match token_type {
            TokenType::Auth => KeyType::Auth,
            TokenType::Bearer => KeyType::for_account(account, main),
        }
    }
}

impl fmt::Display for KeyType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn name(s: &str) -> AccountName {
        AccountName::parse(s).unwrap()
    }

    #[test]
    fn seed_account_names_parse() {
        for s in [
            "APEX_136189",
            "APEX_266668",
            "APEX_272045",
            "PAAPEX1361890000001",
            "PAAPEX1361890000002",
        ] {
            assert_eq!(name(s).as_str(), s);
            assert_eq!(name(s).to_string(), s);
        }
    }

    #[test]
    fn punctuation_unicode_and_quotes_are_data() {
        for s in [
            "a,b.c(d)e%f&g*h",
            "O'Brien",
            "\"quoted\"",
            "ünïcødé_账户",
            "x=eq.1;drop",
            "a/b?c#d",
        ] {
            assert_eq!(name(s).as_str(), s);
        }
    }

    #[test]
    fn rejects_empty() {
        assert_eq!(AccountName::parse(""), Err(AccountNameError::Empty));
    }

    #[test]
    fn rejects_too_long_but_accepts_exactly_max() {
        let max = "a".repeat(AccountName::MAX_LEN);
        assert!(AccountName::parse(&max).is_ok());
        let long = "a".repeat(AccountName::MAX_LEN + 1);
        assert_eq!(
            AccountName::parse(&long),
            Err(AccountNameError::TooLong { len: 201 })
        );
        // The limit is in bytes, not characters.
        let multibyte = "é".repeat(101);
        assert_eq!(
            AccountName::parse(&multibyte),
            Err(AccountNameError::TooLong { len: 202 })
        );
    }

    #[test]
    fn rejects_whitespace_without_trimming() {
        assert_eq!(
            AccountName::parse(" APEX_1"),
            Err(AccountNameError::Whitespace { position: 0 })
        );
        assert_eq!(
            AccountName::parse("APEX 1"),
            Err(AccountNameError::Whitespace { position: 4 })
        );
        assert_eq!(
            AccountName::parse("APEX_1\u{a0}"),
            Err(AccountNameError::Whitespace { position: 6 })
        );
    }

    #[test]
    fn rejects_control_characters() {
        for (s, position) in [
            ("APEX\n", 4),
            ("\tAPEX", 0),
            ("A\0B", 1),
            ("A\u{1b}[31m", 1),
            ("A\u{7f}", 1),
        ] {
            assert_eq!(
                AccountName::parse(s),
                Err(AccountNameError::ControlCharacter { position })
            );
        }
    }

    #[test]
    fn from_redis_key_strips_the_literal_prefix() {
        assert_eq!(
            AccountName::from_redis_key("token:APEX_136189", "token:*").unwrap(),
            name("APEX_136189")
        );
        assert_eq!(
            AccountName::from_redis_key("token:PAAPEX1361890000001", "token:*").unwrap(),
            name("PAAPEX1361890000001")
        );
        // Only the text before the first `*` is a literal prefix.
        assert_eq!(
            AccountName::from_redis_key("tv:token:APEX_1", "tv:*").unwrap(),
            name("token:APEX_1")
        );
        assert_eq!(
            AccountName::from_redis_key("token:a:b", "token:*:*").unwrap(),
            name("a:b")
        );
    }

    #[test]
    fn from_redis_key_errors() {
        assert_eq!(
            AccountName::from_redis_key("token:", "token:*"),
            Err(AccountNameError::OnlyPrefix {
                prefix: "token:".into()
            })
        );
        assert_eq!(
            AccountName::from_redis_key("session:APEX_1", "token:*"),
            Err(AccountNameError::KeyOutsidePattern {
                prefix: "token:".into()
            })
        );
        assert_eq!(
            AccountName::from_redis_key("token:bad name", "token:*"),
            Err(AccountNameError::Whitespace { position: 3 })
        );
        let msg = AccountName::from_redis_key("token:", "token:*")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("only the prefix"), "{msg}");
    }

    #[test]
    fn pattern_prefix_is_text_before_first_star() {
        assert_eq!(pattern_prefix("token:*"), "token:");
        assert_eq!(pattern_prefix("*"), "");
        assert_eq!(pattern_prefix("literal"), "literal");
        assert_eq!(pattern_prefix("a*b*"), "a");
    }

    #[test]
    fn apex_rule_seed_examples() {
        assert_eq!(
            main_account_for(&name("PAAPEX1361890000001"), None),
            name("APEX_136189")
        );
        assert_eq!(
            main_account_for(&name("APEX1361890000001"), None),
            name("APEX_136189")
        );
        assert_eq!(
            main_account_for(&name("PAAPEX2720450000002"), None),
            name("APEX_272045")
        );
        assert_eq!(
            main_account_for(&name("APEX_136189"), None),
            name("APEX_136189")
        );
        assert_eq!(
            main_account_for(&name("APEX_136189"), None),
            name("APEX_136189")
        );
    }

    #[test]
    fn apex_rule_edge_cases() {
        // Exactly 7 digits: no main number left, so not an Apex sub-account.
        assert_eq!(
            main_account_for(&name("APEX0000001"), None),
            name("APEX0000001")
        );
        // 8 digits: one-digit main number.
        assert_eq!(
            main_account_for(&name("APEX10000001"), None),
            name("APEX_1")
        );
        // Case-sensitive, digits only, nothing after the digits.
        for s in [
            "paapex1361890000001",
            "apex1361890000001",
            "PAAPEX136189000000x",
            "PAAPEX1361890000001-",
            "PAPEX1361890000001",
            "XPAAPEX1361890000001",
            "PAAPEX_1361890000001",
            "PAAPEX",
            "APEX",
            "PA",
        ] {
            assert_eq!(main_account_for(&name(s), None), name(s), "{s}");
        }
    }

    #[test]
    fn explicit_main_account_wins_when_valid() {
        let sub = name("PAAPEX1361890000001");
        assert_eq!(
            main_account_for(&sub, Some("APEX_999999")),
            name("APEX_999999")
        );
        assert_eq!(
            main_account_for(&name("custom"), Some("boss")),
            name("boss")
        );
        // Invalid explicit values are ignored, falling back to the rule.
        assert_eq!(main_account_for(&sub, Some("")), name("APEX_136189"));
        assert_eq!(main_account_for(&sub, Some("APEX 1")), name("APEX_136189"));
        assert_eq!(main_account_for(&name("solo"), Some("\n")), name("solo"));
    }

    #[test]
    fn key_types() {
        let main = name("APEX_136189");
        let sub = name("PAAPEX1361890000001");
        assert_eq!(KeyType::for_account(&main, &main), KeyType::Main);
        assert_eq!(KeyType::for_account(&sub, &main), KeyType::SubAccount);
        assert_eq!(
            KeyType::classify(&main, &main, TokenType::Auth),
            KeyType::Auth
        );
        assert_eq!(
            KeyType::classify(&sub, &main, TokenType::Bearer),
            KeyType::SubAccount
        );
        assert_eq!(KeyType::Main.as_str(), "main");
        assert_eq!(KeyType::SubAccount.as_str(), "sub_account");
        assert_eq!(KeyType::Auth.as_str(), "auth");
        for kt in [KeyType::Main, KeyType::SubAccount, KeyType::Auth] {
            assert_eq!(
                serde_json::to_value(kt).unwrap(),
                serde_json::Value::String(kt.as_str().into())
            );
            assert_eq!(kt.to_string(), kt.as_str());
        }
    }

    #[test]
    fn serde_is_a_plain_string_and_validates() {
        let n = name("APEX_136189");
        assert_eq!(serde_json::to_string(&n).unwrap(), "\"APEX_136189\"");
        let back: AccountName = serde_json::from_str("\"APEX_136189\"").unwrap();
        assert_eq!(back, n);
        assert!(serde_json::from_str::<AccountName>("\"a b\"").is_err());
        assert!(serde_json::from_str::<AccountName>("\"\"").is_err());
    }

    #[test]
    fn error_messages_are_actionable() {
        let msgs = [
            AccountNameError::Empty.to_string(),
            AccountNameError::TooLong { len: 300 }.to_string(),
            AccountNameError::Whitespace { position: 2 }.to_string(),
            AccountNameError::ControlCharacter { position: 2 }.to_string(),
        ];
        assert!(msgs[0].contains("empty"));
        assert!(msgs[1].contains("300") && msgs[1].contains("200"));
        assert!(msgs[2].contains("whitespace"));
        assert!(msgs[3].contains("control character"));
    }

    /// What the rules say, written independently of the implementation.
    fn is_acceptable(s: &str) -> bool {
        !s.is_empty() && s.len() <= 200 && !s.chars().any(|c| c.is_whitespace() || c.is_control())
    }

    proptest! {
        #[test]
        fn parse_accepts_exactly_what_the_rules_say(s in any::<String>()) {
            prop_assert_eq!(AccountName::parse(&s).is_ok(), is_acceptable(&s));
            if let Ok(n) = AccountName::parse(&s) {
                prop_assert_eq!(n.as_str(), s.as_str());
            }
        }

        #[test]
        fn parse_accepts_printable_names(s in "[!-~]{1,200}") {
            prop_assert!(AccountName::parse(&s).is_ok());
        }

        #[test]
        fn parse_rejects_names_with_a_bad_char(
            a in "[!-~]{0,50}",
            bad in prop::sample::select(vec![' ', '\t', '\n', '\r', '\0', '\u{7f}', '\u{85}', '\u{2003}', '\u{3000}']),
            b in "[!-~]{0,50}",
        ) {
            let s = format!("{a}{bad}{b}");
            prop_assert!(AccountName::parse(&s).is_err());
        }

        #[test]
        fn from_redis_key_round_trips(acct in "[!-~]{1,100}") {
            let key = format!("token:{acct}");
            let n = AccountName::from_redis_key(&key, "token:*").unwrap();
            prop_assert_eq!(n.as_str(), acct.as_str());
        }

        #[test]
        fn main_account_for_is_idempotent(s in "(PA)?(APEX)?_?[0-9]{1,20}[A-Z_]{0,3}|[!-~]{1,40}") {
            let a = name(&s);
            let m = main_account_for(&a, None);
            prop_assert_eq!(main_account_for(&m, None), m.clone());
            prop_assert!(apex_main(m.as_str()).is_none());
            if m != a {
                prop_assert!(m.as_str().starts_with("APEX_"), "{}", m);
                prop_assert!(m.as_str().len() < a.as_str().len());
            }
        }

        #[test]
        fn apex_rule_strips_exactly_seven_digits(
            pa in any::<bool>(),
            main_no in "[0-9]{1,12}",
            seq in "[0-9]{7}",
        ) {
            let s = format!("{}APEX{main_no}{seq}", if pa { "PA" } else { "" });
            let m = main_account_for(&name(&s), None);
            prop_assert_eq!(m.as_str(), format!("APEX_{main_no}"));
        }

        #[test]
        fn explicit_valid_main_always_wins(acct in "[!-~]{1,40}", explicit in "[!-~]{1,40}") {
            let m = main_account_for(&name(&acct), Some(&explicit));
            prop_assert_eq!(m.as_str(), explicit.as_str());
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        /// Account names: accepted exactly when non-empty, at most 200 bytes, without whitespace or
        /// control characters; kept verbatim; the Redis key rule and the main-account rule agree.
        #[test]
        fn account_rules_hold_on_adversarial_names(
            name in prop_oneof![
                3 => r#"[a-zA-Z0-9_,.()%&*'"\\;=:/?#@!$+\[\]{}<>|^~`-]{0,40}"#,
                2 => any::<String>(),
                1 => "(PA)?APEX[0-9]{0,16}",
                1 => "[aé账🙂]{190,210}",
                1 => r"[a ,\t\n\x{a0}\x00\x7f\x{200b}]{0,8}",
            ],
            explicit in prop::option::of(r"[ -~]{0,12}"),
        ) {
            let parsed = AccountName::parse(&name);
            let expected_ok = !name.is_empty()
                && name.len() <= AccountName::MAX_LEN
                && !name.chars().any(|c| c.is_control() || c.is_whitespace());
            prop_assert_eq!(parsed.is_ok(), expected_ok, "{:?}", name);
            let key = format!("token:{name}");
            let from_key = AccountName::from_redis_key(&key, "token:*");
            match &parsed {
                Ok(account) => {
                    prop_assert_eq!(account.as_str(), name.as_str());
                    prop_assert_eq!(from_key.as_ref(), Ok(account));
                    let main = main_account_for(account, explicit.as_deref());
                    prop_assert!(AccountName::parse(main.as_str()).is_ok());
                    match explicit.as_deref().map(AccountName::parse) {
                        Some(Ok(e)) => prop_assert_eq!(&main, &e),
                        _ => {
                            prop_assert_eq!(&main_account_for(&main, None), &main);
                            prop_assert!(main == *account || main.as_str().starts_with("APEX_"));
                        }
                    }
                }
                Err(_) if name.is_empty() => prop_assert_eq!(
                    from_key,
                    Err(AccountNameError::OnlyPrefix { prefix: "token:".into() })
                ),
                Err(e) => prop_assert_eq!(from_key.as_ref(), Err(e)),
            }
        }
    }
}
