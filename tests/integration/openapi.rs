//! openapi.json against the Worker: every path the router answers is documented and every
//! documented operation is routed (with exactly the documented methods), `GET /openapi.json`
//! serves the document, the scopes the document states are the ones the API enforces, and the
//! bodies the API produces validate against the documented schemas. No services needed: the
//! configuration is missing, or points at a closed local port (upstream failures answer 502).

use chrono::{DateTime, Duration, TimeZone, Utc};
use serde::Serialize;
use serde_json::{json, Value};
use token_manager::config::{Config, ConfigError};
use token_manager::crypto::DecryptError;
use token_manager::http::error::ApiError;
use token_manager::http::routes::ROUTES;
use token_manager::http::OPENAPI_JSON;
use token_manager::jobs::cleanup::CleanupReport;
use token_manager::jobs::get::TokenReport;
use token_manager::jobs::list::ListReport;
use token_manager::jobs::reencrypt::ReencryptReport;
use token_manager::jobs::renew::{RenewOutcome, RenewReport, SessionResult};
use token_manager::jobs::restore::{PresentKey, RestoreReport, RestoredKey, SkippedToken};
use token_manager::jobs::runs::{with_duration, RunsReport};
use token_manager::jobs::status::{RenewalStatus, StatusReport};
use token_manager::jobs::sync::{Outcome, RedisLoss, Skipped, SyncReport};
use token_manager::jobs::JobError;
use token_manager::store::{
    LastRenew, LastRestore, LastSync, RecentToken, RunSummary, StoreError, TokenSummary,
};
use token_manager::tradovate::Environment;
use token_manager::upstash::UpstashError;

use crate::support::openapi::{escape, matches_template, Spec, METHODS};
use crate::support::{unreachable_config as closed_port_config, Api};

const ADMIN_KEY: &str = "admin-key-for-openapi-tests-000000000000";
const READ_KEY: &str = "read-key-for-openapi-tests-0000000000000";
const RUN_ID: &str = "6f1c1f0e-4a8b-4c52-9d1e-0b6d3f1f2a77";

/// A configuration whose Upstash and Supabase are a closed local port: every job fails fast
/// with an upstream error, after authentication.
fn unreachable_config() -> Config {
    closed_port_config(ADMIN_KEY, READ_KEY)
}

fn missing_config() -> Result<Config, ConfigError> {
    Err(ConfigError::Missing {
        name: "SUPABASE_URL",
    })
}

/// A concrete path for a template: `{account}` becomes a demo account.
fn concrete(template: &str) -> String {
    template.replace("{account}", "PAAPEX1361890000001")
}

/// A concrete request (path and query) for an operation: the seed interface needs `?action=`.
fn probe(template: &str, action: &str) -> String {
    let path = concrete(template);
    if seed_interface(template) {
        format!("{path}?action={action}&account=APEX_136189")
    } else {
        path
    }
}

fn seed_interface(template: &str) -> bool {
    matches!(
        template,
        "/" | "/token-manager" | "/functions/v1/token-manager"
    )
}

fn meta(template: &str) -> bool {
    matches!(template, "/health" | "/openapi.json")
}

#[test]
fn the_document_is_openapi_3_1_for_this_version() {
    let spec = Spec::load();
    let doc = &spec.doc;
    assert!(
        doc["openapi"].as_str().unwrap().starts_with("3.1."),
        "openapi: {}",
        doc["openapi"]
    );
    assert_eq!(doc["info"]["version"], env!("CARGO_PKG_VERSION"));
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    for (name, scheme) in schemes {
        assert_eq!(
            (scheme["type"].as_str(), scheme["scheme"].as_str()),
            (Some("http"), Some("bearer")),
            "{name}"
        );
    }
    let mut operation_ids = std::collections::HashSet::new();
    for (template, methods) in spec.operations() {
        assert!(!methods.is_empty(), "{template} has no operation");
        for method in methods {
            let op = spec.operation(&template, &method).unwrap();
            let what = format!("{} {template}", method.to_uppercase());
            assert!(
                operation_ids.insert(op["operationId"].as_str().unwrap().to_string()),
                "{what}: duplicate operationId"
            );
            // Security is explicit on every operation, and the description names the scope.
            let security = op["security"].as_array().expect(&what);
            for requirement in security {
                for scheme in requirement.as_object().unwrap().keys() {
                    assert!(
                        schemes.contains_key(scheme),
                        "{what}: unknown scheme {scheme}"
                    );
                }
            }
            assert!(
                op["description"].as_str().unwrap().contains("Scope:"),
                "{what}: the description must say which scope it needs"
            );
            // Every response resolves to a JSON schema; the 200 and the error statuses exist.
            let responses = op["responses"].as_object().unwrap();
            assert!(responses.contains_key("200"), "{what}: no 200");
            for status in responses.keys() {
                spec.response_schema_pointer(&template, &method, status.parse().unwrap())
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
            }
            let expected_errors: &[&str] = if meta(&template) {
                &["405"]
            } else {
                &["400", "401", "405", "413", "502", "503"]
            };
            for status in expected_errors {
                assert!(responses.contains_key(*status), "{what}: no {status}");
            }
            if let Some(params) = op["parameters"].as_array() {
                for param in params {
                    if param["in"] == "path" {
                        assert!(
                            template.contains(&format!("{{{}}}", param["name"].as_str().unwrap()))
                        );
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn openapi_json_is_served_without_a_key() {
    for path in ["/openapi.json", "/openapi.json/"] {
        let response = Api::native(missing_config()).call("GET", path, None).await;
        assert_eq!(response.status, 200);
        assert_eq!(response.text, OPENAPI_JSON);
    }
    let response = Api::native(missing_config())
        .call("POST", "/openapi.json", None)
        .await;
    assert_eq!(
        (response.status, response.allow.as_deref()),
        (405, Some("GET"))
    );
}

/// The router's table and the document list the same paths with the same methods.
#[test]
fn the_routes_table_and_the_document_agree() {
    let spec = Spec::load();
    let mut routed: Vec<(String, Vec<String>)> = ROUTES
        .iter()
        .map(|route| {
            let methods = route
                .methods
                .iter()
                .map(|m| m.as_str().to_ascii_lowercase())
                .collect();
            (route.path.to_string(), methods)
        })
        .collect();
    let mut documented: Vec<(String, Vec<String>)> = spec.operations();
    for list in [&mut routed, &mut documented] {
        for (_, methods) in list.iter_mut() {
            methods.sort();
        }
        list.sort();
    }
    assert_eq!(routed, documented);
}

#[tokio::test]
async fn every_documented_operation_is_routed_with_exactly_its_methods() {
    let spec = Spec::load();
    for (template, methods) in spec.operations() {
        let path = probe(&template, "status");
        for method in METHODS {
            let response = Api::native(missing_config())
                .call(method, &path, None)
                .await;
            let what = format!("{} {path}", method.to_uppercase());
            assert_ne!(
                response.code().unwrap_or_default(),
                "route_not_found",
                "{what} is documented but not routed"
            );
            let documented = methods.iter().any(|m| m == method);
            if documented {
                let expected = if meta(&template) { 200 } else { 503 };
                assert_eq!(response.status, expected, "{what}: {}", response.text);
            } else {
                assert_eq!(response.status, 405, "{what} is routed but not documented");
                let allow: Vec<String> = response
                    .allow
                    .as_deref()
                    .unwrap()
                    .split(", ")
                    .map(str::to_ascii_lowercase)
                    .collect();
                assert_eq!(allow, methods, "{template}: Allow vs documented methods");
            }
            spec.validate_response(
                method,
                &concrete(&template),
                response.status,
                &response.body,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    // Not a catch-all: near misses of documented paths are not routes.
    for path in [
        "/v1",
        "/v1/token",
        "/v1/tokens/a/b",
        "/healthz",
        "/v2/sync",
        "/token-manager/x",
    ] {
        let response = Api::native(missing_config()).call("GET", path, None).await;
        assert_eq!(
            (response.status, response.code().unwrap_or_default()),
            (404, "route_not_found"),
            "{path}"
        );
        assert!(spec.template_for(path).is_none(), "{path}");
    }
}

/// The scopes the document states are the ones enforced: no key → 401 everywhere but the
/// meta routes; a read key → 403 exactly where only adminKey is listed; past authentication
/// the closed upstream port answers 502. Every body validates against the documented status.
#[tokio::test]
async fn documented_scopes_are_enforced_and_error_bodies_validate() {
    let spec = Spec::load();
    for (template, methods) in spec.operations() {
        for method in &methods {
            let op = spec.operation(&template, method).unwrap();
            let schemes: Vec<&str> = op["security"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|r| r.as_object().unwrap().keys().map(String::as_str))
                .collect();
            let actions: &[&str] = if seed_interface(&template) {
                &["sync", "status", "get", "cleanup", "restore", "renew"]
            } else {
                &[""]
            };
            for action in actions {
                let path = probe(&template, action);
                let admin_only = if seed_interface(&template) {
                    matches!(*action, "sync" | "cleanup" | "restore" | "renew")
                } else {
                    !schemes.contains(&"readKey")
                };
                for (key, who) in [
                    (None, "no key"),
                    (Some(READ_KEY), "read key"),
                    (Some(ADMIN_KEY), "admin key"),
                ] {
                    let response = Api::native(Ok(unreachable_config()))
                        .call(method, &path, key)
                        .await;
                    let what = format!("{} {path} with {who}", method.to_uppercase());
                    let expected = match (meta(&template), key) {
                        (true, _) => 200,
                        (false, None) => 401,
                        (false, Some(READ_KEY)) if admin_only => 403,
                        (false, Some(_)) => 502,
                    };
                    assert_eq!(response.status, expected, "{what}: {}", response.text);
                    spec.validate_response(
                        method,
                        &concrete(&template),
                        response.status,
                        &response.body,
                    )
                    .unwrap_or_else(|e| panic!("{what}: {e}"));
                }
            }
            if !meta(&template) {
                assert!(
                    schemes.contains(&"adminKey"),
                    "{template}: the admin key may call everything"
                );
            }
        }
    }
}

/// Bad input: each answers a documented 400 (or 404/410-style codes through the jobs).
#[tokio::test]
async fn bad_requests_validate() {
    let spec = Spec::load();
    for (method, path_and_query, code) in [
        ("GET", "/token-manager?action=drop", "invalid_action"),
        ("GET", "/token-manager", "invalid_action"),
        (
            "POST",
            "/functions/v1/token-manager?action=get",
            "missing_account",
        ),
        ("GET", "/?action=get&account=a%20b", "invalid_account"),
        ("GET", "/v1/tokens?limit=0", "invalid_query"),
        ("GET", "/v1/tokens?active=yes", "invalid_query"),
        ("GET", "/v1/tokens/%FF", "invalid_account"),
    ] {
        let response = Api::native(Ok(unreachable_config()))
            .call(method, path_and_query, Some(ADMIN_KEY))
            .await;
        assert_eq!(
            (response.status, response.code().unwrap_or_default()),
            (400, code),
            "{path_and_query}"
        );
        let path = path_and_query.split('?').next().unwrap();
        spec.validate_response(method, path, 400, &response.body)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// Every error the API can produce validates against the documented response for its status,
/// on every operation that documents that status; each status an error has is documented on
/// the operations that can answer it.
#[test]
fn every_api_error_validates_against_its_status() {
    let spec = Spec::load();
    let job_errors = [
        JobError::Upstash(UpstashError::Unauthorized),
        JobError::Store(StoreError::Decode("x".into())),
        JobError::SyncInProgress { ttl_seconds: 120 },
        JobError::RenewInProgress { ttl_seconds: 150 },
        JobError::RenewDisabled,
        JobError::InvalidAccount {
            account: "a b".into(),
            reason: "spaces".into(),
        },
        JobError::UnknownAccount("APEX_1".into()),
        JobError::Expired("APEX_1".into()),
        JobError::Inactive("APEX_1".into()),
        JobError::Decrypt {
            account: "APEX_1".into(),
            source: DecryptError::Malformed {
                problem: "no prefix",
            },
        },
    ];
    let mut errors: Vec<ApiError> = job_errors.into_iter().map(ApiError::from).collect();
    errors.extend([
        ApiError::Unauthorized,
        ApiError::Forbidden,
        ApiError::MethodNotAllowed {
            allow: &[http::Method::GET],
        },
        ApiError::PayloadTooLarge { limit: 65536 },
        ApiError::from(ConfigError::Missing {
            name: "SUPABASE_URL",
        }),
        ApiError::BadRequest {
            code: "invalid_body",
            message: "m".into(),
        },
        ApiError::BadRequest {
            code: "invalid_url",
            message: "m".into(),
        },
    ]);
    for error in &errors {
        let body: Value = serde_json::from_str(&error.body()).unwrap();
        let mut documented_somewhere = false;
        for (template, methods) in spec.operations() {
            for method in methods {
                if let Ok(pointer) =
                    spec.response_schema_pointer(&template, &method, error.status().as_u16())
                {
                    documented_somewhere = true;
                    spec.validate_at(&pointer, &body)
                        .unwrap_or_else(|e| panic!("{method} {template}: {e}"));
                }
            }
        }
        assert!(
            documented_somewhere,
            "status {} is documented nowhere",
            error.status().as_u16()
        );
    }
    // Which operations can answer what, beyond the statuses every non-meta one documents.
    for (template, method, statuses) in [
        ("/v1/sync", "post", &[403, 409][..]),
        ("/v1/cleanup", "post", &[403]),
        ("/v1/reencrypt", "post", &[403]),
        ("/v1/renew", "post", &[403, 409]),
        ("/v1/tokens/{account}", "get", &[404, 410]),
        ("/token-manager", "get", &[403, 404, 409, 410]),
        ("/", "post", &[403, 404, 409, 410]),
        ("/functions/v1/token-manager", "get", &[403, 404, 409, 410]),
    ] {
        for status in statuses {
            assert!(
                spec.response_schema_pointer(template, method, *status)
                    .is_ok(),
                "{method} {template} must document {status}"
            );
        }
    }
    // ... and read-only routes do not claim what they cannot answer.
    for template in ["/v1/status", "/v1/tokens", "/v1/runs"] {
        for status in [403, 404, 409, 410] {
            assert!(
                spec.response_schema_pointer(template, "get", status)
                    .is_err(),
                "GET {template} {status}"
            );
        }
    }
}

fn at(hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 26, hour, 0, 0).unwrap() + Duration::microseconds(123_456)
}

fn sample_sync() -> SyncReport {
    SyncReport {
        outcome: Outcome::Synced,
        success: true,
        message: "Synced 2 tokens from Redis to Supabase".into(),
        tokens_synced: 2,
        inserted: 1,
        updated: 1,
        unchanged: 0,
        deactivated: 3,
        skipped: vec![Skipped {
            redis_key: "token:".into(),
            reason: "no account name after the prefix".into(),
        }],
        key_mappings: 2,
        accounts: vec!["APEX_136189".into(), "PAAPEX1361890000001".into()],
        run_id: RUN_ID.into(),
        duration_ms: 42,
        redis_loss: None,
        restore: None,
        restore_error: None,
    }
}

/// A sync that suspected a Redis loss: with its restore, or with the restore's error.
fn sample_loss_sync(restored: bool) -> SyncReport {
    SyncReport {
        outcome: Outcome::RedisLossSuspected,
        message: "Synced 0 tokens from Redis to Supabase; suspected Redis loss".into(),
        tokens_synced: 0,
        deactivated: 0,
        skipped: Vec::new(),
        accounts: Vec::new(),
        redis_loss: Some(RedisLoss {
            missing: 22,
            active_unexpired: 22,
            redis_token_keys: 0,
            threshold_percent: 50,
            min_missing: 3,
            reason: "redis_empty".into(),
            accounts: vec!["APEX_136189".into(), "PAAPEX1361890000001".into()],
        }),
        restore: restored.then(|| sample_restore(false, false)),
        restore_error: (!restored).then(|| "Upstash Redis answered HTTP 500: boom".into()),
        ..sample_sync()
    }
}

fn sample_restore(dry_run: bool, deferred: bool) -> RestoreReport {
    RestoreReport {
        success: true,
        dry_run,
        message: "Restored 1 tokens to Redis (1 already present, 1 skipped)".into(),
        restored: vec![RestoredKey {
            account: "APEX_136189".into(),
            redis_key: "token:APEX_136189".into(),
            ttl_ms: 3_599_000,
            value_format: "json".into(),
        }],
        already_present: vec![PresentKey {
            account: "APEX_266668".into(),
            redis_key: "token:APEX_266668".into(),
        }],
        skipped: vec![
            SkippedToken {
                account: "APEX_272045".into(),
                redis_key: Some("token:APEX_272045".into()),
                reason: "the token has expired (or has less than a second left)".into(),
            },
            SkippedToken {
                account: "OLD".into(),
                redis_key: None,
                reason: "no Redis key is recorded for this token".into(),
            },
        ],
        deferred: if deferred { 40 } else { 0 },
        inactive: 2,
        run_id: (!dry_run).then(|| RUN_ID.into()),
        duration_ms: 12,
    }
}

fn sample_last_restore() -> LastRestore {
    LastRestore {
        run_id: RUN_ID.into(),
        trigger: "cron".into(),
        status: "succeeded".into(),
        started_at: at(9),
        finished_at: Some(at(9) + Duration::seconds(1)),
        restored: Some(22),
        already_present: Some(0),
        skipped: Some(0),
        error: None,
    }
}

fn sample_status(last_sync: Option<LastSync>, recent: usize) -> StatusReport {
    StatusReport {
        success: true,
        supabase_tokens: 22,
        active_tokens: 21,
        redis_tokens: 22,
        redis_tokens_source: if last_sync.is_some() {
            token_manager::jobs::status::RedisTokensSource::LastSync
        } else {
            token_manager::jobs::status::RedisTokensSource::None
        },
        redis_counted_at: last_sync.as_ref().map(|_| at(9)),
        sync_needed: true,
        last_updated: (recent > 0).then(|| at(10)),
        last_sync,
        expiring_soon: 2,
        expiring_within_seconds: 600,
        recent_tokens: (0..recent)
            .map(|i| RecentToken {
                account_name: format!("PAAPEX136189000000{i}"),
                main_account: "APEX_136189".into(),
                expires_at: (i % 2 == 0).then(|| at(11)),
                is_active: i != 1,
                environment: Some(if i == 2 {
                    Environment::Live
                } else {
                    Environment::Demo
                }),
            })
            .collect(),
        redis_loss_suspected: recent > 3,
        redis_loss_missing: if recent > 3 { 22 } else { 0 },
        redis_loss_since: (recent > 3).then(|| at(8)),
        last_restore: (recent > 3).then(sample_last_restore),
        audit_write_failures: 1,
        renewals_paused_until: (recent > 3).then(|| at(10)),
        renewals_paused_reason: (recent > 3)
            .then(|| "Tradovate answered a penalty ticket (p-time 60 s)".into()),
        renewal: Some(RenewalStatus {
            enabled: recent > 0,
            environment: Environment::Demo,
            live_accounts: vec!["APEX_266668".into()],
            renew_before_minutes: 15,
            hourly_budget: 10,
            renewals_last_hour: (recent > 0).then_some(3),
            last_run: (recent > 3).then(|| LastRenew {
                run_id: RUN_ID.into(),
                trigger: "cron".into(),
                status: "succeeded".into(),
                started_at: at(9),
                finished_at: Some(at(9)),
                tokens_renewed: Some(22),
                error: None,
            }),
            renewed_tokens: 22,
            renew_failed_tokens: 0,
        }),
    }
}

fn sample_renew(dry_run: bool) -> RenewReport {
    let session = |outcome, reason: Option<&str>| SessionResult {
        session: "APEX_136189".into(),
        main_account: "APEX_136189".into(),
        environment: Environment::Demo,
        accounts: vec!["APEX_136189".into(), "PAAPEX1361890000001".into()],
        expires_at: at(10),
        outcome,
        reason: reason.map(str::to_string),
        new_expires_at: (outcome == RenewOutcome::Renewed).then(|| at(11)),
    };
    RenewReport {
        success: dry_run,
        message: "Renewed 1 of 3 sessions (2 tokens); 1 failed, 1 skipped".into(),
        dry_run,
        run_id: (!dry_run).then(|| RUN_ID.into()),
        candidates: 4,
        sessions: 3,
        renewed: 1,
        failed: 1,
        skipped: 1,
        tokens_updated: 2,
        keys_written: 2,
        keys_conflicted: 0,
        hourly_budget: 10,
        renewals_last_hour: 2,
        renewals_paused_until: (!dry_run).then(|| at(12)),
        renewals_paused_reason: (!dry_run)
            .then(|| "Tradovate answered 429 Too Many Requests".into()),
        results: vec![
            session(
                if dry_run {
                    RenewOutcome::WouldRenew
                } else {
                    RenewOutcome::Renewed
                },
                None,
            ),
            session(
                RenewOutcome::Failed,
                Some("Tradovate answered errorText: Access is denied"),
            ),
            session(
                RenewOutcome::Skipped,
                Some("the hourly renewal budget is used up"),
            ),
        ],
        duration_ms: 120,
    }
}

fn sample_last_sync(finished: bool) -> LastSync {
    LastSync {
        run_id: RUN_ID.into(),
        trigger: "cron".into(),
        status: if finished { "failed" } else { "running" }.into(),
        started_at: at(9),
        finished_at: finished.then(|| at(9) + Duration::seconds(2)),
        tokens_synced: finished.then_some(0),
        error: finished.then(|| "Upstash Redis rejected the token".into()),
    }
}

fn sample_token(md: bool, expires: bool) -> TokenReport {
    TokenReport {
        success: true,
        account: "APEX_136189".into(),
        main_account: "APEX_136189".into(),
        environment: Some(Environment::Demo),
        token: "eyJhbGciOiJIUzI1NiJ9.e30.sig".into(),
        token_type: "bearer".into(),
        md_access_token: md.then(|| "eyJtZCI6MX0.e30.sig".into()),
        expires_at: expires.then(|| at(12)),
        expired: false,
        expires_in_seconds: expires.then_some(4800),
        updated_at: at(8),
        metadata: json!({
            "redis_key": "token:APEX_136189", "expires_source": if expires { "jwt_exp" } else { "unknown" },
            "value_format": "json", "redis_ttl_ms": 3_600_000, "user_id": "123456", "name": "APEX_136189",
        }),
    }
}

fn sample_list(rows: usize) -> ListReport {
    ListReport {
        success: true,
        count: 7,
        limit: 100,
        offset: 0,
        tokens: (0..rows)
            .map(|i| TokenSummary {
                account_name: format!("PAAPEX272045000000{i}"),
                main_account: "APEX_272045".into(),
                token_type: if i == 0 { "auth" } else { "bearer" }.into(),
                token_length: 812,
                expires_at: (i != 1).then(|| at(12)),
                is_active: true,
                created_at: at(1),
                updated_at: at(2),
                last_synced_at: (i != 2).then(|| at(3)),
                renewed_at: (i == 1).then(|| at(2)),
                renewal_count: (i == 1).then_some(3),
                renew_state: (i == 1).then(|| "renewed".into()),
                environment: Some(Environment::Live),
            })
            .collect(),
    }
}

fn sample_cleanup() -> CleanupReport {
    CleanupReport {
        success: true,
        cleaned: 3,
        message: "Cleaned up 3 expired tokens".into(),
        run_id: RUN_ID.into(),
        pruned_runs: 12,
        audit_pruned: 12,
    }
}

fn sample_reencrypt(failed: bool) -> ReencryptReport {
    ReencryptReport {
        success: !failed,
        message: "Re-encrypted 21 tokens under key 3f9a1c2b".into(),
        reencrypted: 21,
        key_id: "3f9a1c2b".into(),
        failed: if failed {
            vec!["APEX_136189".into()]
        } else {
            Vec::new()
        },
        run_id: RUN_ID.into(),
    }
}

fn sample_runs() -> RunsReport {
    let sync = RunSummary {
        run_id: RUN_ID.into(),
        kind: "sync".into(),
        trigger: "cron".into(),
        status: "succeeded".into(),
        started_at: at(9),
        finished_at: Some(at(9) + Duration::milliseconds(420)),
        tokens_seen: Some(22),
        inserted: Some(0),
        updated: Some(3),
        unchanged: Some(19),
        deactivated: Some(0),
        skipped: Some(1),
        cleaned: None,
        outcome: Some("redis_loss_suspected".into()),
        restored: None,
        already_present: None,
        error: None,
        duration_ms: None,
    };
    let failed = RunSummary {
        status: "failed".into(),
        trigger: "http".into(),
        tokens_seen: None,
        inserted: None,
        updated: None,
        unchanged: None,
        deactivated: None,
        skipped: None,
        outcome: None,
        error: Some("Upstash Redis rejected the token; check UPSTASH_REDIS_REST_TOKEN".into()),
        ..sync.clone()
    };
    let running = RunSummary {
        kind: "cleanup".into(),
        status: "running".into(),
        finished_at: None,
        ..failed.clone()
    };
    let restore = RunSummary {
        kind: "restore".into(),
        tokens_seen: Some(22),
        outcome: Some("partial".into()),
        restored: Some(20),
        already_present: Some(2),
        skipped: Some(0),
        ..sync.clone()
    };
    RunsReport {
        success: true,
        limit: 20,
        runs: [sync, failed, running, restore]
            .into_iter()
            .map(with_duration)
            .collect(),
    }
}

/// Account health over a fresh main account, a sub-account that was renewed and read, and
/// one whose renewal was refused.
fn sample_accounts() -> token_manager::jobs::accounts::AccountsReport {
    use token_manager::store::AccountFacts;
    let row = |account: &str, main: &str| AccountFacts {
        account_name: account.into(),
        main_account: main.into(),
        key_type: if account == main {
            "main"
        } else {
            "sub_account"
        }
        .into(),
        redis_key: Some(format!("token:{account}")),
        is_active: true,
        expires_at: Some(at(12)),
        last_synced_at: Some(at(9)),
        last_seen_at: Some(at(10)),
        missing_in_redis: false,
        last_read_at: None,
        last_read_outcome: None,
        last_read_key: None,
        renew_state: None,
        renew_error: None,
        renewed_at: None,
        renew_attempted_at: None,
        renewal_count: None,
    };
    let renewed = AccountFacts {
        last_read_at: Some(at(10)),
        last_read_outcome: Some(200),
        last_read_key: Some("job:restore".into()),
        renew_state: Some("renewed".into()),
        renewed_at: Some(at(10).to_rfc3339()),
        renew_attempted_at: Some(at(10).to_rfc3339()),
        renewal_count: Some(2),
        ..row("PAAPEX1361890000001", "APEX_136189")
    };
    let refused = AccountFacts {
        expires_at: None,
        last_seen_at: None,
        renew_state: Some("renew_failed".into()),
        renew_error: Some("HTTP 401".into()),
        ..row("APEX_266668", "APEX_266668")
    };
    token_manager::jobs::accounts::report(
        vec![row("APEX_136189", "APEX_136189"), renewed, refused],
        at(11),
        Some(at(10)),
        600,
    )
}

fn to_value(report: &impl Serialize) -> Value {
    serde_json::to_value(report).unwrap()
}

/// The reports the jobs produce, in every shape (nulls and values), validate against the
/// documented 200 of their routes, on /v1 and on the seed interface.
#[test]
fn sample_reports_validate_against_their_routes() {
    let spec = Spec::load();
    let statuses = [
        sample_status(None, 0),
        sample_status(Some(sample_last_sync(false)), 3),
        sample_status(Some(sample_last_sync(true)), 10),
    ];
    let tokens = [sample_token(true, true), sample_token(false, false)];
    let mut cases: Vec<(&str, &str, Value)> = vec![
        ("POST", "/v1/sync", to_value(&sample_sync())),
        ("POST", "/v1/sync", to_value(&sample_loss_sync(true))),
        ("POST", "/v1/sync", to_value(&sample_loss_sync(false))),
        (
            "POST",
            "/v1/restore",
            to_value(&sample_restore(false, false)),
        ),
        ("POST", "/v1/restore", to_value(&sample_restore(true, true))),
        ("POST", "/v1/cleanup", to_value(&sample_cleanup())),
        ("POST", "/v1/reencrypt", to_value(&sample_reencrypt(false))),
        ("POST", "/v1/reencrypt", to_value(&sample_reencrypt(true))),
        ("POST", "/v1/renew", to_value(&sample_renew(false))),
        ("POST", "/v1/renew", to_value(&sample_renew(true))),
        ("GET", "/v1/tokens", to_value(&sample_list(0))),
        ("GET", "/v1/tokens", to_value(&sample_list(3))),
        ("GET", "/v1/runs", to_value(&sample_runs())),
        ("GET", "/v1/accounts", to_value(&sample_accounts())),
        (
            "GET",
            "/health",
            json!({ "status": "ok", "service": "token-manager", "version": "0.1.0" }),
        ),
        ("GET", "/openapi.json", spec.doc.clone()),
    ];
    cases.extend(statuses.iter().map(|s| ("GET", "/v1/status", to_value(s))));
    cases.extend(
        tokens
            .iter()
            .map(|t| ("GET", "/v1/tokens/APEX_136189", to_value(t))),
    );
    let seed: Vec<Value> = [
        to_value(&sample_sync()),
        to_value(&sample_loss_sync(true)),
        to_value(&sample_cleanup()),
        to_value(&sample_restore(false, false)),
        to_value(&sample_restore(true, false)),
        to_value(&sample_renew(false)),
    ]
    .into_iter()
    .chain(statuses.iter().map(to_value))
    .chain(tokens.iter().map(to_value))
    .collect();
    for path in ["/", "/token-manager", "/functions/v1/token-manager"] {
        for method in ["GET", "POST"] {
            cases.extend(seed.iter().map(|body| (method, path, body.clone())));
        }
    }
    for (method, path, body) in &cases {
        spec.validate_response(method, path, 200, body)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}

/// The schemas are strict enough to catch drift: a field renamed, added or of the wrong type,
/// a null where none is allowed, a token in a listing.
#[test]
fn schemas_reject_what_the_api_does_not_send() {
    let spec = Spec::load();
    let mut renamed = to_value(&sample_sync());
    renamed["synced"] = renamed
        .as_object_mut()
        .unwrap()
        .remove("tokens_synced")
        .unwrap();
    let mut token_in_list = to_value(&sample_list(1));
    token_in_list["tokens"][0]["access_token"] = json!("v1:k:abc");
    let mut null_updated = to_value(&sample_token(true, true));
    null_updated["updated_at"] = Value::Null;
    let mut bad_time = to_value(&sample_status(None, 1));
    bad_time["recent_tokens"][0]["expires_at"] = json!("tomorrow");
    let mut token_in_health = to_value(&sample_accounts());
    token_in_health["main"][0]["accounts"][0]["token"] = json!("eyJhbGciOi");
    let mut negative = to_value(&sample_cleanup());
    negative["cleaned"] = json!(-1);
    for (method, path, body) in [
        ("POST", "/v1/sync", renamed),
        ("GET", "/v1/tokens", token_in_list),
        ("GET", "/v1/tokens/APEX_1", null_updated),
        ("GET", "/v1/status", bad_time),
        ("POST", "/v1/cleanup", negative),
        ("GET", "/v1/accounts", token_in_health),
        ("GET", "/token-manager", json!({ "success": true })),
    ] {
        assert!(
            spec.validate_response(method, path, 200, &body).is_err(),
            "{method} {path} accepted {body}"
        );
    }
    let unknown_code = json!({ "error": { "code": "teapot", "message": "m" } });
    assert!(spec
        .validate_response("GET", "/v1/status", 401, &unknown_code)
        .is_err());
}

#[test]
fn templates_match_concrete_paths() {
    let spec = Spec::load();
    assert_eq!(
        spec.template_for("/v1/tokens/APEX_1").as_deref(),
        Some("/v1/tokens/{account}")
    );
    assert_eq!(
        spec.template_for("/v1/tokens/").as_deref(),
        Some("/v1/tokens")
    );
    assert_eq!(spec.template_for("").as_deref(), Some("/"));
    assert!(matches_template("/a/{b}", "/a/x") && !matches_template("/a/{b}", "/a/"));
    assert_eq!(escape("/v1/tokens/{account}"), "~1v1~1tokens~1{account}");
}
