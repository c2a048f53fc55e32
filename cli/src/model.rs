//! The API's answers as tokenctl reads them: tolerant of extra fields, missing optional
//! fields, `null`s, and numbers sent as strings. Built from a parsed JSON object.

use serde_json::{Map, Value};

fn text(o: &Map<String, Value>, key: &str) -> Option<String> {
    match o.get(key)? {
        Value::Null => None,
        Value::String(s) => Some(s.clone()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        other => Some(other.to_string()),
    }
}

fn int(o: &Map<String, Value>, key: &str) -> Option<i64> {
    match o.get(key)? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A count that may arrive as a number or as the list being counted.
fn count(o: &Map<String, Value>, key: &str) -> Option<i64> {
    match o.get(key)? {
        Value::Array(a) => Some(a.len() as i64),
        _ => int(o, key),
    }
}

fn boolean(o: &Map<String, Value>, key: &str) -> Option<bool> {
    match o.get(key)? {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.trim() {
            "true" => Some(true),
            "false" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

fn objects<'a>(o: &'a Map<String, Value>, key: &str) -> Vec<&'a Map<String, Value>> {
    o.get(key)
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_object).collect())
        .unwrap_or_default()
}

fn strings(o: &Map<String, Value>, key: &str) -> Vec<String> {
    o.get(key)
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(|v| match v {
                    Value::String(s) => Some(s.clone()),
                    Value::Object(m) => text(m, "account_name").or_else(|| text(m, "account")),
                    Value::Null => None,
                    other => Some(other.to_string()),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// One Redis key the sync did not store, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// e.g. `token:BROKEN`.
    pub redis_key: String,
    /// e.g. "value is not a token".
    pub reason: String,
}

/// `POST /v1/sync`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SyncReport {
    /// `success`
    pub success: Option<bool>,
    /// `message`, e.g. "Synced 22 tokens from Redis to Supabase".
    pub message: Option<String>,
    /// `tokens_synced`
    pub tokens_synced: Option<i64>,
    /// `inserted`
    pub inserted: Option<i64>,
    /// `updated`
    pub updated: Option<i64>,
    /// `unchanged`
    pub unchanged: Option<i64>,
    /// `deactivated`
    pub deactivated: Option<i64>,
    /// `skipped`
    pub skipped: Vec<Skipped>,
    /// `key_mappings` (a number, or a list that is counted).
    pub key_mappings: Option<i64>,
    /// `accounts`
    pub accounts: Vec<String>,
    /// `run_id`
    pub run_id: Option<String>,
    /// `duration_ms`
    pub duration_ms: Option<i64>,
}

impl SyncReport {
    /// Reads the report from the answer's JSON object.
    pub fn from_json(o: &Map<String, Value>) -> Self {
        SyncReport {
            success: boolean(o, "success"),
            message: text(o, "message"),
            tokens_synced: int(o, "tokens_synced"),
            inserted: count(o, "inserted"),
            updated: count(o, "updated"),
            unchanged: count(o, "unchanged"),
            deactivated: count(o, "deactivated"),
            skipped: match o.get("skipped") {
                Some(Value::Array(a)) => a
                    .iter()
                    .map(|v| match v {
                        Value::Object(m) => Skipped {
                            redis_key: text(m, "redis_key")
                                .or_else(|| text(m, "key"))
                                .unwrap_or_else(|| "?".into()),
                            reason: text(m, "reason").unwrap_or_default(),
                        },
                        Value::String(s) => Skipped {
                            redis_key: s.clone(),
                            reason: String::new(),
                        },
                        other => Skipped {
                            redis_key: other.to_string(),
                            reason: String::new(),
                        },
                    })
                    .collect(),
                _ => Vec::new(),
            },
            key_mappings: count(o, "key_mappings"),
            accounts: strings(o, "accounts"),
            run_id: text(o, "run_id"),
            duration_ms: int(o, "duration_ms"),
        }
    }
}

/// The `last_sync` object of `GET /v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LastSync {
    /// `run_id`
    pub run_id: Option<String>,
    /// `trigger`: http or cron.
    pub trigger: Option<String>,
    /// `status`, e.g. success, failed, running.
    pub status: Option<String>,
    /// `started_at`
    pub started_at: Option<String>,
    /// `finished_at`
    pub finished_at: Option<String>,
    /// `tokens_synced`
    pub tokens_synced: Option<i64>,
    /// `error`
    pub error: Option<String>,
}

/// A row of `recent_tokens` or of the list endpoint (metadata only, never a token).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenRow {
    /// `account_name`
    pub account_name: String,
    /// `main_account`
    pub main_account: Option<String>,
    /// `token_type`
    pub token_type: Option<String>,
    /// `expires_at`
    pub expires_at: Option<String>,
    /// `is_active`
    pub is_active: Option<bool>,
    /// `updated_at`
    pub updated_at: Option<String>,
}

impl TokenRow {
    fn from_json(o: &Map<String, Value>) -> Self {
        TokenRow {
            account_name: text(o, "account_name")
                .or_else(|| text(o, "account"))
                .unwrap_or_else(|| "?".into()),
            main_account: text(o, "main_account"),
            token_type: text(o, "token_type"),
            expires_at: text(o, "expires_at"),
            is_active: boolean(o, "is_active"),
            updated_at: text(o, "updated_at"),
        }
    }
}

/// `expiring_soon`: a count, or the tokens themselves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExpiringSoon {
    /// Just a number.
    Count(i64),
    /// The account names.
    Accounts(Vec<String>),
}

/// `GET /v1/status`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Status {
    /// `supabase_tokens`
    pub supabase_tokens: Option<i64>,
    /// `active_tokens`
    pub active_tokens: Option<i64>,
    /// `redis_tokens`
    pub redis_tokens: Option<i64>,
    /// `sync_needed`
    pub sync_needed: Option<bool>,
    /// `last_updated`
    pub last_updated: Option<String>,
    /// `last_sync`: `None` when the field is absent, `Some(None)` when it is null.
    pub last_sync: Option<Option<LastSync>>,
    /// `expiring_soon`
    pub expiring_soon: Option<ExpiringSoon>,
    /// `recent_tokens`; `None` when absent.
    pub recent_tokens: Option<Vec<TokenRow>>,
}

impl Status {
    /// Reads the status from the answer's JSON object.
    pub fn from_json(o: &Map<String, Value>) -> Self {
        Status {
            supabase_tokens: count(o, "supabase_tokens"),
            active_tokens: count(o, "active_tokens"),
            redis_tokens: count(o, "redis_tokens"),
            sync_needed: boolean(o, "sync_needed"),
            last_updated: text(o, "last_updated"),
            last_sync: o.get("last_sync").map(|v| {
                v.as_object().map(|m| LastSync {
                    run_id: text(m, "run_id"),
                    trigger: text(m, "trigger"),
                    status: text(m, "status"),
                    started_at: text(m, "started_at"),
                    finished_at: text(m, "finished_at"),
                    tokens_synced: int(m, "tokens_synced"),
                    error: text(m, "error"),
                })
            }),
            expiring_soon: match o.get("expiring_soon") {
                Some(Value::Array(_)) => Some(ExpiringSoon::Accounts(strings(o, "expiring_soon"))),
                Some(_) => int(o, "expiring_soon").map(ExpiringSoon::Count),
                None => None,
            },
            recent_tokens: o.get("recent_tokens").and_then(Value::as_array).map(|_| {
                objects(o, "recent_tokens")
                    .into_iter()
                    .map(TokenRow::from_json)
                    .collect()
            }),
        }
    }
}

/// `GET /v1/tokens/{account}`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TokenInfo {
    /// `account`
    pub account: String,
    /// `main_account`
    pub main_account: Option<String>,
    /// `token`
    pub token: Option<String>,
    /// `token_type`
    pub token_type: Option<String>,
    /// `expires_at`
    pub expires_at: Option<String>,
    /// `expired`
    pub expired: Option<bool>,
    /// `expires_in_seconds`
    pub expires_in_seconds: Option<i64>,
    /// `metadata`
    pub metadata: Option<Value>,
}

impl TokenInfo {
    /// Reads the token answer from its JSON object.
    pub fn from_json(o: &Map<String, Value>) -> Self {
        TokenInfo {
            account: text(o, "account")
                .or_else(|| text(o, "account_name"))
                .unwrap_or_default(),
            main_account: text(o, "main_account"),
            token: text(o, "token").or_else(|| text(o, "access_token")),
            token_type: text(o, "token_type"),
            expires_at: text(o, "expires_at"),
            expired: boolean(o, "expired"),
            expires_in_seconds: int(o, "expires_in_seconds"),
            metadata: o.get("metadata").filter(|v| !v.is_null()).cloned(),
        }
    }
}

/// `GET /v1/tokens`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TokenList {
    /// `tokens`
    pub tokens: Vec<TokenRow>,
    /// `count`, else the number of rows.
    pub count: i64,
}

impl TokenList {
    /// Reads the list from its JSON object.
    pub fn from_json(o: &Map<String, Value>) -> Self {
        let tokens: Vec<TokenRow> = objects(o, "tokens")
            .into_iter()
            .map(TokenRow::from_json)
            .collect();
        TokenList {
            count: int(o, "count").unwrap_or(tokens.len() as i64),
            tokens,
        }
    }
}

/// `POST /v1/cleanup`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Cleanup {
    /// `success`
    pub success: Option<bool>,
    /// `cleaned`
    pub cleaned: Option<i64>,
    /// `message`
    pub message: Option<String>,
}

impl Cleanup {
    /// Reads the cleanup answer from its JSON object.
    pub fn from_json(o: &Map<String, Value>) -> Self {
        Cleanup {
            success: boolean(o, "success"),
            cleaned: count(o, "cleaned"),
            message: text(o, "message"),
        }
    }
}

/// `GET /health`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Health {
    /// `status`, "ok" when healthy.
    pub status: Option<String>,
    /// Every other scalar field, in key order, for display.
    pub details: Vec<(String, String)>,
}

impl Health {
    /// Reads the health answer from its JSON object.
    pub fn from_json(o: &Map<String, Value>) -> Self {
        let mut details: Vec<(String, String)> = o
            .iter()
            .filter(|(k, _)| k.as_str() != "status")
            .filter_map(|(k, v)| match v {
                Value::String(s) => Some((k.clone(), s.clone())),
                Value::Number(n) => Some((k.clone(), n.to_string())),
                Value::Bool(b) => Some((k.clone(), b.to_string())),
                _ => None,
            })
            .collect();
        details.sort();
        Health {
            status: text(o, "status"),
            details,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn obj(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn tolerant_sync_report() {
        let r = SyncReport::from_json(&obj(json!({
            "success": true,
            "tokens_synced": "3",
            "key_mappings": [{"redis_key": "token:A"}, {"redis_key": "token:B"}],
            "accounts": ["A", {"account_name": "B"}, null],
            "skipped": [{"redis_key": "token:X", "reason": "not a token"}, "token:Y"],
            "run_id": 42,
            "extra": {"ignored": true}
        })));
        assert_eq!(r.tokens_synced, Some(3));
        assert_eq!(r.key_mappings, Some(2));
        assert_eq!(r.accounts, vec!["A", "B"]);
        assert_eq!(r.skipped.len(), 2);
        assert_eq!(r.skipped[1].redis_key, "token:Y");
        assert_eq!(r.run_id.as_deref(), Some("42"));
        assert_eq!(r.inserted, None);
        assert_eq!(SyncReport::from_json(&Map::new()), SyncReport::default());
    }

    #[test]
    fn status_last_sync_absent_vs_null() {
        let s = Status::from_json(&obj(json!({"last_sync": null})));
        assert_eq!(s.last_sync, Some(None));
        let s = Status::from_json(&obj(json!({})));
        assert_eq!(s.last_sync, None);
        assert_eq!(s.recent_tokens, None);
        let s = Status::from_json(&obj(json!({"expiring_soon": [{"account_name": "A"}]})));
        assert_eq!(
            s.expiring_soon,
            Some(ExpiringSoon::Accounts(vec!["A".into()]))
        );
    }

    #[test]
    fn list_count_falls_back_to_rows() {
        let l = TokenList::from_json(&obj(json!({"tokens": [{"account_name": "A"}]})));
        assert_eq!(l.count, 1);
        assert_eq!(l.tokens[0].account_name, "A");
    }
}
