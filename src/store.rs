//! Supabase (PostgREST) access through the `postgrest` crate: the RPCs in `migrations/` for
//! the jobs, and the table endpoint for filtered listing. Only ciphertext is ever sent.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use postgrest::Postgrest;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub use api_model::{LastRenew, LastRestore, LastSync, RecentToken, RunSummary, TokenSummary};

use crate::config::Secret;
use crate::domain::account::{AccountName, KeyType};
use crate::domain::candidate::TokenMetadata;
use crate::domain::sealed::SealedToken;
use crate::domain::token_value::TokenType;
use crate::subrequests::Subrequests;

/// What went wrong talking to PostgREST; API errors keep PostgREST's `code` and `message`.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("Supabase is unreachable ({0}); check SUPABASE_URL and that the project is up")]
    Unreachable(String),
    #[error("Supabase rejected the service role key (HTTP {status}): {message}; check SUPABASE_SERVICE_ROLE_KEY")]
    Unauthorized { status: u16, message: String },
    #[error("Supabase answered HTTP {status} {code}: {message}{hint}")]
    Api {
        status: u16,
        code: String,
        message: String,
        hint: String,
    },
    #[error(
        "Supabase did not answer within {0} ms; check SUPABASE_URL, or raise UPSTREAM_TIMEOUT_MS"
    )]
    Timeout(u64),
    #[error("unexpected answer from Supabase: {0}")]
    Decode(String),
}

/// A token row as Supabase holds it when a sync starts (no token, only its fingerprint).
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ExistingToken {
    pub fingerprint: String,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// When the key's TTL runs out, as the last write of the row saw it (`last_synced_at` plus
    /// `metadata.redis_ttl_ms`); `None` when the key had no TTL.
    #[serde(default)]
    pub key_expires_at: Option<DateTime<Utc>>,
    pub main_account: String,
    pub token_type: TokenType,
    pub mapped: bool,
}

/// A started sync run and the rows it will compare against.
#[derive(Debug, Deserialize)]
pub struct SyncStart {
    pub run_id: String,
    pub tokens: HashMap<String, ExistingToken>,
    /// The last completed sync suspected a Redis loss and no restore has completed since.
    #[serde(default)]
    pub loss_pending: bool,
}

/// What [`Store::begin_sync`] answers: a started run holding the sync lease, or, while another
/// sync holds it, when that lease runs out (nothing was started).
#[derive(Debug)]
pub enum SyncBegin {
    Started(SyncStart),
    Busy { locked_until: DateTime<Utc> },
}

/// What the last call of a sync wrote: its own batch and the deactivations.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Finished {
    pub inserted: u64,
    pub updated: u64,
    pub deactivated: u64,
}

/// One new or changed token to upsert, with its key mapping. `access_token` is ciphertext.
#[derive(Debug, Clone, Serialize)]
pub struct TokenRow {
    pub account_name: AccountName,
    pub main_account: AccountName,
    pub token_type: TokenType,
    pub access_token: String,
    pub token_length: usize,
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: TokenMetadata,
    pub token_fingerprint: String,
    pub key_id: String,
    pub redis_key: String,
    pub key_type: KeyType,
}

/// Rows one upsert batch wrote.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
pub struct Applied {
    pub inserted: u64,
    pub updated: u64,
}

/// The outcome of a cleanup run.
#[derive(Debug, Clone, Deserialize)]
pub struct Cleaned {
    pub run_id: String,
    pub cleaned: u64,
}

/// Supabase's side of the status figures.
#[derive(Debug, Clone, Deserialize)]
pub struct StatusFigures {
    pub supabase_tokens: u64,
    pub active_tokens: u64,
    pub expiring_soon: u64,
    pub last_updated: Option<DateTime<Utc>>,
    pub last_sync: Option<LastSync>,
    pub recent_tokens: Vec<RecentToken>,
    /// Accounts in Redis as the last successful sync counted them; `None` before one.
    pub redis_tokens: Option<u64>,
    /// When that sync finished.
    pub redis_counted_at: Option<DateTime<Utc>>,
    /// Set while the last completed sync suspected a Redis loss.
    #[serde(default)]
    pub redis_loss: Option<LossState>,
    #[serde(default)]
    pub last_restore: Option<LastRestore>,
}

/// The Redis loss the last completed sync suspected: how many keys were missing, and the start
/// of the first of the consecutive syncs that suspected it.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct LossState {
    pub missing: u64,
    pub since: Option<DateTime<Utc>>,
}

/// An active token row as a restore reads it: its secrets sealed (open them with
/// [`SealedToken::open`]), its metadata without them. Never plaintext.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "RestorableRow")]
pub struct RestorableToken {
    pub account_name: String,
    pub sealed: SealedToken,
    pub expires_at: Option<DateTime<Utc>>,
    pub metadata: Value,
}

#[derive(Deserialize)]
struct RestorableRow {
    account_name: String,
    access_token: String,
    expires_at: Option<DateTime<Utc>>,
    metadata: Value,
}

impl From<RestorableRow> for RestorableToken {
    fn from(row: RestorableRow) -> Self {
        let mut metadata = row.metadata;
        let sealed = SealedToken::from_row(row.access_token, &mut metadata);
        RestorableToken {
            account_name: row.account_name,
            sealed,
            expires_at: row.expires_at,
            metadata,
        }
    }
}

/// A started restore: its run (none for a dry run), the active rows and how many are inactive.
/// A real restore asked for while a sync holds the sync lease starts nothing: `locked_until`
/// says when that lease runs out.
#[derive(Debug, Clone, Deserialize)]
pub struct RestoreStart {
    pub run_id: Option<String>,
    #[serde(default)]
    pub locked_until: Option<DateTime<Utc>>,
    pub tokens: Vec<RestorableToken>,
    pub inactive: u64,
}

/// One stored token row: its secrets sealed (open them with [`SealedToken::open`]), its
/// metadata without them.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "StoredRow")]
pub struct StoredToken {
    pub account_name: String,
    pub main_account: String,
    pub token_type: String,
    pub sealed: SealedToken,
    pub expires_at: Option<DateTime<Utc>>,
    pub is_active: bool,
    pub metadata: Value,
    pub updated_at: DateTime<Utc>,
}

/// A token row as PostgREST sends it (the md token inside `metadata`).
#[derive(Deserialize)]
struct StoredRow {
    account_name: String,
    main_account: String,
    token_type: String,
    access_token: String,
    expires_at: Option<DateTime<Utc>>,
    is_active: bool,
    metadata: Value,
    updated_at: DateTime<Utc>,
}

impl From<StoredRow> for StoredToken {
    fn from(row: StoredRow) -> Self {
        let mut metadata = row.metadata;
        let sealed = SealedToken::from_row(row.access_token, &mut metadata);
        StoredToken {
            account_name: row.account_name,
            main_account: row.main_account,
            token_type: row.token_type,
            sealed,
            expires_at: row.expires_at,
            is_active: row.is_active,
            metadata,
            updated_at: row.updated_at,
        }
    }
}

/// What [`Store::get_recorded`] answers.
#[derive(Debug, Clone, Deserialize)]
pub struct GetRecorded {
    /// The row, when there is one in scope.
    pub token: Option<StoredToken>,
    /// The outcome the audit row says: 404, 410 or 200.
    pub outcome: u16,
    /// Whether the read was appended to the audit trail.
    pub recorded: bool,
}

/// Filters for listing token metadata.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ListFilter {
    pub main_account: Option<String>,
    /// Only tokens of these main accounts (a scoped read key's); each a plain name (letters,
    /// digits, `_ - .`), as [`crate::domain::access::AccountScope`] guarantees.
    pub main_accounts: Option<BTreeSet<String>>,
    pub active: Option<bool>,
    /// Only tokens whose expiry is before this instant.
    pub expires_before: Option<DateTime<Utc>>,
    pub limit: usize,
    pub offset: usize,
}

/// The columns the runs listing selects (`id` as `run_id`); never `details`.
const RUN_COLUMNS: &str = "run_id:id,kind,trigger,status,started_at,finished_at,tokens_seen,inserted,updated,unchanged,deactivated,skipped,cleaned,outcome,restored,already_present,error";

/// The columns a listing selects: never `access_token` or `token_fingerprint`.
const SUMMARY_COLUMNS: &str =
    "account_name,main_account,token_type,token_length,expires_at,is_active,created_at,updated_at,last_synced_at,renewed_at:metadata->>renewed_at,renewal_count:metadata->renewal_count,renew_state:metadata->>renew_state";

/// The Supabase project's PostgREST API, authenticated as the service role.
#[derive(Clone)]
pub struct Store {
    api: Postgrest,
    timeout_ms: u64,
    subrequests: Subrequests,
}

impl Store {
    /// A store at `rest_url` (PostgREST root, e.g. `https://x.supabase.co/rest/v1`).
    /// `service_role_key` must be a valid header value (configuration checks it).
    /// A request that takes longer than `timeout_ms` fails with [`StoreError::Timeout`].
    pub fn new(rest_url: &str, service_role_key: &Secret, timeout_ms: u64) -> Self {
        let key = service_role_key.expose();
        let api = Postgrest::new(rest_url)
            .insert_header("apikey", key)
            .insert_header("Authorization", format!("Bearer {key}"));
        Self {
            api,
            timeout_ms,
            subrequests: Subrequests::new(),
        }
    }

    /// Counts every request this store sends in `subrequests`.
    pub fn counting(mut self, subrequests: Subrequests) -> Self {
        self.subrequests = subrequests;
        self
    }

    /// Sends `request` and reads its JSON answer and headers, within the timeout.
    async fn send<T: DeserializeOwned>(
        &self,
        request: postgrest::Builder,
    ) -> Result<(T, reqwest::header::HeaderMap), StoreError> {
        self.subrequests.add();
        crate::timeout::within(self.timeout_ms, read_json(request))
            .await
            .map_err(|_| StoreError::Timeout(self.timeout_ms))?
    }

    /// Calls an SQL function; `params` is serialised straight to the request body.
    async fn rpc<T: DeserializeOwned>(
        &self,
        function: &str,
        params: impl Serialize,
    ) -> Result<T, StoreError> {
        let body = serde_json::to_string(&params).map_err(|e| StoreError::Decode(e.to_string()))?;
        self.rpc_body(function, body).await
    }

    async fn rpc_body<T: DeserializeOwned>(
        &self,
        function: &str,
        body: String,
    ) -> Result<T, StoreError> {
        self.send(self.api.rpc(function, body))
            .await
            .map(|(value, _)| value)
    }

    /// Records a new sync run holding the sync lease for `lock_ttl_ms` (the Redis lock's TTL:
    /// it covers the run's Supabase writes, which come after the Redis lock is released) and
    /// returns it with every stored row's fingerprint and state; [`SyncBegin::Busy`] (nothing
    /// recorded) while another sync's lease is live.
    pub async fn begin_sync(
        &self,
        trigger: &str,
        lock_ttl_ms: u64,
    ) -> Result<SyncBegin, StoreError> {
        #[derive(Deserialize)]
        struct Answer {
            run_id: Option<String>,
            #[serde(default)]
            tokens: HashMap<String, ExistingToken>,
            #[serde(default)]
            loss_pending: bool,
            #[serde(default)]
            locked_until: Option<DateTime<Utc>>,
        }
        let params = json!({ "p_trigger": trigger, "p_lock_ms": lock_ttl_ms });
        let answer: Answer = self.rpc("token_manager_begin_sync", params).await?;
        match (answer.run_id, answer.locked_until) {
            (Some(run_id), _) => Ok(SyncBegin::Started(SyncStart {
                run_id,
                tokens: answer.tokens,
                loss_pending: answer.loss_pending,
            })),
            (None, Some(locked_until)) => Ok(SyncBegin::Busy { locked_until }),
            (None, None) => Err(StoreError::Decode(
                "begin_sync answered neither a run nor a lease; check that the migrations in migrations/ are applied".into(),
            )),
        }
    }

    /// Upserts one batch of new or changed tokens and their key mappings (every batch of a
    /// sync but the last, which [`Store::finish_sync`] carries).
    pub async fn apply_sync(&self, rows: &[TokenRow]) -> Result<Applied, StoreError> {
        if rows.is_empty() {
            return Ok(Applied::default());
        }
        self.rpc_body("token_manager_apply_sync", apply_sync_body(rows))
            .await
    }

    /// Ends a sync run and its lease, in one transaction. When it succeeded: upserts `last_batch`,
    /// deactivates `deactivate` and records `stats` (whose `inserted`/`updated` cover the earlier
    /// batches; Postgres adds this batch's); refused, writing nothing, if the run is no longer
    /// running or a newer sync or restore started. When it failed: records `error` only.
    pub async fn finish_sync(
        &self,
        run_id: &str,
        succeeded: bool,
        last_batch: &[TokenRow],
        deactivate: &[String],
        stats: Value,
        error: Option<&str>,
    ) -> Result<Finished, StoreError> {
        #[derive(Serialize)]
        struct Params<'a> {
            p_run_id: &'a str,
            p_succeeded: bool,
            p_tokens: &'a [TokenRow],
            p_deactivate: &'a [String],
            p_stats: Value,
            p_error: Option<&'a str>,
        }
        let params = Params {
            p_run_id: run_id,
            p_succeeded: succeeded,
            p_tokens: last_batch,
            p_deactivate: deactivate,
            p_stats: stats,
            p_error: error,
        };
        self.rpc("token_manager_finish_sync", params).await
    }

    /// Reads every active row for a restore; records a running restore run when `record`.
    pub async fn begin_restore(
        &self,
        trigger: &str,
        record: bool,
    ) -> Result<RestoreStart, StoreError> {
        let params = json!({ "p_trigger": trigger, "p_record": record });
        self.rpc("token_manager_begin_restore", params).await
    }

    /// Ends a restore run: its status, `stats` (counts and lists, never a value) and `error`.
    pub async fn finish_restore(
        &self,
        run_id: &str,
        succeeded: bool,
        stats: Value,
        error: Option<&str>,
    ) -> Result<(), StoreError> {
        let params = json!({
            "p_run_id": run_id, "p_succeeded": succeeded, "p_stats": stats, "p_error": error,
        });
        self.rpc::<Value>("token_manager_finish_restore", params)
            .await
            .map(|_| ())
    }

    /// Marks expired active tokens inactive and records the run.
    pub async fn cleanup(&self, trigger: &str) -> Result<Cleaned, StoreError> {
        self.rpc("token_manager_cleanup", json!({ "p_trigger": trigger }))
            .await
    }

    /// Counts, last sync, recent tokens and the last sync's Redis count, in one round trip;
    /// only over the tokens of `main_accounts` when given.
    pub async fn status(
        &self,
        expiring_within_seconds: i64,
        recent_limit: usize,
        main_accounts: Option<&BTreeSet<String>>,
    ) -> Result<StatusFigures, StoreError> {
        let params = json!({
            "p_expiring_within_seconds": expiring_within_seconds, "p_recent_limit": recent_limit,
            "p_main_accounts": main_accounts,
        });
        self.rpc("token_manager_status", params).await
    }

    /// Deletes finished runs older than `retention_days` (keeping the latest sync and the
    /// latest successful one); returns how many.
    pub async fn prune_runs(&self, retention_days: u64) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Pruned {
            pruned: u64,
        }
        let pruned: Pruned = self
            .rpc(
                "token_manager_prune_runs",
                json!({ "p_retention_days": retention_days }),
            )
            .await?;
        Ok(pruned.pruned)
    }

    /// The row stored for exactly `account` if its main account is one of `mains` (any, when
    /// `None`), and, when `read` is given, that read appended to the audit trail in the same
    /// round trip with the outcome the database decided (404 none in scope, 410 inactive or
    /// expired at `now`, else 200). A failed audit insert never fails the read: it says
    /// `recorded: false`. Unless `durable`, the commit does not wait for the database's disk
    /// (a crash may lose the last fraction of a second of audit rows).
    pub async fn get_recorded(
        &self,
        account: &str,
        mains: Option<&[&str]>,
        now: DateTime<Utc>,
        read: Option<&TokenRead>,
        durable: bool,
    ) -> Result<GetRecorded, StoreError> {
        self.rpc(
            "token_manager_get_recorded",
            json!({
                "p_account": account, "p_mains": mains, "p_now": now, "p_read": read,
                "p_durable": durable,
            }),
        )
        .await
    }

    /// Token metadata matching `filter`, ordered by account name, with the total match count.
    pub async fn list(&self, filter: &ListFilter) -> Result<(Vec<TokenSummary>, u64), StoreError> {
        let mut query = self
            .api
            .from("tradovate_tokens")
            .select(SUMMARY_COLUMNS)
            .order("account_name")
            .exact_count()
            .range(
                filter.offset,
                filter.offset.saturating_add(filter.limit.max(1) - 1),
            );
        if let Some(main) = &filter.main_account {
            // PostgREST takes everything after `eq.` literally: commas, dots, parentheses
            // and `*` have meaning only in `in`, `or` and `like`, which we never build.
            query = query.eq("main_account", main);
        }
        if let Some(mains) = &filter.main_accounts {
            query = query.in_("main_account", mains.iter().map(|m| format!("\"{m}\"")));
        }
        if let Some(active) = filter.active {
            query = query.eq("is_active", active.to_string());
        }
        if let Some(before) = filter.expires_before {
            query = query.lt("expires_at", before.to_rfc3339());
        }
        let (rows, headers) = self.send(query).await?;
        let total = headers
            .get("content-range")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit('/').next())
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| StoreError::Decode("no total in Content-Range".into()))?;
        Ok((rows, total))
    }
}

impl Store {
    /// The `limit` most recent runs of every kind, newest first.
    pub async fn runs(&self, limit: usize) -> Result<Vec<RunSummary>, StoreError> {
        let query = self
            .api
            .from("sync_runs")
            .select(RUN_COLUMNS)
            .order("started_at.desc,id")
            .limit(limit.max(1));
        self.send(query).await.map(|(rows, _)| rows)
    }
}

pub use api_model::TokenRead;

/// Filters of the audit listing; every field optional but the limit.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct AuditFilter {
    pub account: Option<String>,
    pub key: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    pub limit: usize,
}

/// The columns the audit listing selects.
const READ_COLUMNS: &str = "read_at,account_name,outcome,key_name,client_ip,user_agent";

impl Store {
    /// Appends `reads` to the audit trail in one round trip; returns how many were written.
    pub async fn record_reads(&self, reads: &[TokenRead]) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Recorded {
            recorded: u64,
        }
        #[derive(Serialize)]
        struct Params<'a> {
            p_reads: &'a [TokenRead],
        }
        if reads.is_empty() {
            return Ok(0);
        }
        let recorded: Recorded = self
            .rpc("token_manager_record_reads", Params { p_reads: reads })
            .await?;
        Ok(recorded.recorded)
    }

    /// Deletes audit rows older than `days` days; returns how many.
    pub async fn prune_reads(&self, days: u32) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Pruned {
            pruned: u64,
        }
        let pruned: Pruned = self
            .rpc("token_manager_prune_reads", json!({ "p_days": days }))
            .await?;
        Ok(pruned.pruned)
    }

    /// Audit rows matching `filter`, newest first.
    pub async fn reads(&self, filter: &AuditFilter) -> Result<Vec<TokenRead>, StoreError> {
        let mut query = self
            .api
            .from("token_reads")
            .select(READ_COLUMNS)
            .order("read_at.desc,id.desc")
            .limit(filter.limit.max(1));
        if let Some(account) = &filter.account {
            query = query.eq("account_name", account);
        }
        if let Some(key) = &filter.key {
            query = query.eq("key_name", key);
        }
        if let Some(since) = filter.since {
            query = query.gte("read_at", since.to_rfc3339());
        }
        if let Some(until) = filter.until {
            query = query.lt("read_at", until.to_rfc3339());
        }
        self.send(query).await.map(|(rows, _)| rows)
    }
}

/// One token's health facts as `token_manager_accounts` returns them. Never the token.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountFacts {
    pub account_name: String,
    pub main_account: String,
    pub key_type: String,
    pub redis_key: Option<String>,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    pub last_synced_at: Option<DateTime<Utc>>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub missing_in_redis: bool,
    pub last_read_at: Option<DateTime<Utc>>,
    pub last_read_outcome: Option<u16>,
    pub last_read_key: Option<String>,
    pub renew_state: Option<String>,
    pub renew_error: Option<String>,
    /// As the metadata holds it (parsed by the accounts job; a bad value reads as absent).
    pub renewed_at: Option<String>,
    pub renew_attempted_at: Option<String>,
    pub renewal_count: Option<u64>,
}

/// Every token's health facts (of `main_accounts` only, when given) and the clock they were
/// read at, in one round trip.
#[derive(Debug, Clone, Deserialize)]
pub struct AccountsFacts {
    pub now: DateTime<Utc>,
    pub last_sync_at: Option<DateTime<Utc>>,
    pub accounts: Vec<AccountFacts>,
}

impl Store {
    /// The health facts of every token, ordered by main account (its own token first).
    pub async fn accounts(
        &self,
        main_accounts: Option<&BTreeSet<String>>,
    ) -> Result<AccountsFacts, StoreError> {
        self.rpc(
            "token_manager_accounts",
            json!({ "p_main_accounts": main_accounts }),
        )
        .await
    }
}

/// The request body of one upsert batch, serialised straight from the rows (no JSON tree).
pub fn apply_sync_body(rows: &[TokenRow]) -> String {
    #[derive(Serialize)]
    struct Params<'a> {
        p_tokens: &'a [TokenRow],
    }
    serde_json::to_string(&Params { p_tokens: rows }).expect("token rows serialise")
}

async fn read_json<T: DeserializeOwned>(
    request: postgrest::Builder,
) -> Result<(T, reqwest::header::HeaderMap), StoreError> {
    let response = request
        .execute()
        .await
        .map_err(|e| StoreError::Unreachable(e.without_url().to_string()))?;
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response
        .text()
        .await
        .map_err(|e| StoreError::Unreachable(e.without_url().to_string()))?;
    if (200..300).contains(&status) {
        let value = serde_json::from_str(&text).map_err(|e| StoreError::Decode(shape_error(&e)))?;
        return Ok((value, headers));
    }
    let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
    let field = |name: &str| body.get(name).and_then(Value::as_str).map(str::to_string);
    let message = field("message").unwrap_or_else(|| text.chars().take(200).collect());
    if status == 401 || (status == 403 && field("code").as_deref() == Some("42501")) {
        return Err(StoreError::Unauthorized { status, message });
    }
    let code = field("code").unwrap_or_default();
    // A missing function means the migrations have not been applied.
    let hint = match (code.as_str(), field("hint")) {
        ("PGRST202", _) => " (apply the migrations in migrations/ to this database)".to_string(),
        (_, Some(hint)) => format!(" ({hint})"),
        _ => String::new(),
    };
    Err(StoreError::Api {
        status,
        code,
        message,
        hint,
    })
}

/// What is wrong with an answer's JSON, without the values serde's message would quote (an
/// answer may hold ciphertext or metadata).
fn shape_error(e: &serde_json::Error) -> String {
    let kind = match e.classify() {
        serde_json::error::Category::Io => "unreadable",
        serde_json::error::Category::Syntax => "not valid JSON",
        serde_json::error::Category::Data => "JSON of an unexpected shape",
        serde_json::error::Category::Eof => "cut short",
    };
    format!(
        "the answer is {kind} (line {}, column {}); check that the migrations in migrations/ are applied",
        e.line(),
        e.column()
    )
}

/// A stored row to re-encrypt, as read: its secrets sealed, its metadata without them.
#[derive(Debug, Clone, Deserialize)]
#[serde(from = "SealedRow")]
pub struct StoredSecrets {
    pub account_name: String,
    pub sealed: SealedToken,
    pub metadata: Value,
}

#[derive(Deserialize)]
struct SealedRow {
    account_name: String,
    access_token: String,
    metadata: Value,
}

impl From<SealedRow> for StoredSecrets {
    fn from(row: SealedRow) -> Self {
        let mut metadata = row.metadata;
        let sealed = SealedToken::from_row(row.access_token, &mut metadata);
        StoredSecrets {
            account_name: row.account_name,
            sealed,
            metadata,
        }
    }
}

/// A re-encrypted row; applied only if `previous_access_token` is still what is stored.
#[derive(Debug, Clone, Serialize)]
pub struct ResealedToken {
    pub account_name: String,
    pub previous_access_token: String,
    pub access_token: String,
    pub key_id: String,
    pub token_fingerprint: String,
    pub metadata: Value,
}

impl Store {
    /// Up to `limit` rows not written in the current format under `key_id`, after `after` in
    /// account-name order.
    pub async fn not_under_key(
        &self,
        key_id: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<StoredSecrets>, StoreError> {
        let mut query = self
            .api
            .from("tradovate_tokens")
            .select("account_name,access_token,metadata")
            // Written under another key, or in the older format v1. `key_id` is 8 hex
            // characters (the keyring's own id), so it cannot change the filter's meaning.
            .or(format!("key_id.neq.{key_id},access_token.like.v1:*"))
            .order("account_name")
            .limit(limit);
        if let Some(after) = after {
            query = query.gt("account_name", after);
        }
        self.send(query).await.map(|(rows, _)| rows)
    }

    /// Writes one batch of re-encrypted rows; returns how many were rewritten.
    pub async fn apply_reencrypt(&self, rows: &[ResealedToken]) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Applied {
            reencrypted: u64,
        }
        #[derive(Serialize)]
        struct Params<'a> {
            p_rows: &'a [ResealedToken],
        }
        let applied: Applied = self
            .rpc("token_manager_apply_reencrypt", Params { p_rows: rows })
            .await?;
        Ok(applied.reencrypted)
    }

    /// Records a re-encryption run; returns its id.
    pub async fn record_reencrypt(
        &self,
        trigger: &str,
        reencrypted: u64,
        failed: &[String],
    ) -> Result<String, StoreError> {
        let params =
            json!({ "p_trigger": trigger, "p_reencrypted": reencrypted, "p_failed": failed });
        self.rpc("token_manager_record_reencrypt", params).await
    }
}

/// A stored token inside the renewal window: ciphertext until the renew pass decrypts it.
#[derive(Debug, Clone, Deserialize)]
pub struct RenewCandidate {
    pub account_name: String,
    pub main_account: String,
    pub access_token: String,
    pub token_fingerprint: String,
    pub expires_at: DateTime<Utc>,
    pub metadata: Value,
}

/// A started renew pass (no run id for a dry run) and the tokens inside the window.
#[derive(Debug, Deserialize)]
pub struct RenewStart {
    pub run_id: Option<String>,
    pub candidates: Vec<RenewCandidate>,
}

/// A renewed token to write, only if the row still holds `previous_fingerprint`.
#[derive(Debug, Clone, Serialize)]
pub struct RenewedRow {
    #[serde(flatten)]
    pub row: TokenRow,
    pub previous_fingerprint: String,
}

/// Metadata to merge into a row that still holds the token with `fingerprint`.
#[derive(Debug, Clone, Serialize)]
pub struct RenewMark {
    pub account_name: String,
    pub fingerprint: String,
    pub patch: Value,
}

/// Supabase's side of the renewal status.
#[derive(Debug, Clone, Deserialize)]
pub struct RenewFigures {
    pub last_run: Option<LastRenew>,
    pub renewed_tokens: u64,
    pub renew_failed_tokens: u64,
}

impl Store {
    /// Records a renew run (unless `dry_run`) and returns the active tokens expiring within
    /// `window_seconds` and not yet expired, in one round trip.
    pub async fn begin_renew(
        &self,
        trigger: &str,
        window_seconds: i64,
        dry_run: bool,
    ) -> Result<RenewStart, StoreError> {
        let params = json!({ "p_trigger": trigger, "p_window_seconds": window_seconds, "p_dry_run": dry_run });
        self.rpc("token_manager_begin_renew", params).await
    }

    /// Writes renewed rows and failure marks and records the run; returns rows written.
    pub async fn finish_renew(
        &self,
        run_id: &str,
        rows: &[RenewedRow],
        marks: &[RenewMark],
        stats: Value,
        error: Option<&str>,
    ) -> Result<u64, StoreError> {
        #[derive(Deserialize)]
        struct Finished {
            updated: u64,
        }
        #[derive(Serialize)]
        struct Params<'a> {
            p_run_id: &'a str,
            p_rows: &'a [RenewedRow],
            p_marks: &'a [RenewMark],
            p_stats: Value,
            p_error: Option<&'a str>,
        }
        let params = Params {
            p_run_id: run_id,
            p_rows: rows,
            p_marks: marks,
            p_stats: stats,
            p_error: error,
        };
        let finished: Finished = self.rpc("token_manager_finish_renew", params).await?;
        Ok(finished.updated)
    }

    /// The last renew run and the renewed/refused token counts.
    pub async fn renew_status(&self) -> Result<RenewFigures, StoreError> {
        self.rpc("token_manager_renew_status", json!({})).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_errors_never_quote_the_answer() {
        let e = serde_json::from_str::<Cleaned>(r#"{"run_id": "r", "cleaned": "v1:abc:secret"}"#)
            .unwrap_err();
        assert!(e.to_string().contains("secret"), "serde quotes values: {e}");
        let text = shape_error(&e);
        assert!(
            !text.contains("secret") && text.contains("unexpected shape"),
            "{text}"
        );
    }
}

/// One alert condition as a job observed it, and (answered) whether that changed its state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AlertTransition {
    /// The condition's name (`sync`, `redis_loss`, ...).
    pub condition: String,
    /// Whether it is firing now.
    pub firing: bool,
    /// True when this observation changed the stored state (an alert is due).
    #[serde(default)]
    pub changed: bool,
}

impl Store {
    /// Records `observed` conditions in order, in one round trip, and answers which of them
    /// changed state (only those alert). A condition never recorded counts as not firing.
    pub async fn alert_transitions(
        &self,
        observed: &[AlertTransition],
    ) -> Result<Vec<AlertTransition>, StoreError> {
        #[derive(Serialize)]
        struct Params<'a> {
            p_observations: &'a [AlertTransition],
        }
        if observed.is_empty() {
            return Ok(Vec::new());
        }
        self.rpc(
            "token_manager_alert_transitions",
            Params {
                p_observations: observed,
            },
        )
        .await
    }
}
