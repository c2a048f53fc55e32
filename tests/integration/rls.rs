//! Row Level Security through the real PostgREST: the anon and authenticated JWTs that a
//! Supabase project hands out read and write nothing in our tables; the service role can.

use chrono::{Duration, Utc};
use serde_json::json;
use token_manager::jobs::{sync::sync, Trigger};

use crate::support::{demo_tokens, var, TestStack};

#[tokio::test]
async fn only_the_service_role_reaches_the_tables_and_functions() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    stack
        .pg
        .batch_execute("insert into token_reads (account_name, outcome, key_name) values ('APEX_136189', 200, 'bot')")
        .await
        .unwrap();
    let before = stack.dump().await;
    let reads_before = stack.query("select * from token_reads").await;
    let http = reqwest::Client::new();
    let base = var("TM_TEST_POSTGREST_URL");
    let as_role = |key: String, req: reqwest::RequestBuilder| {
        req.header("apikey", key.clone()).bearer_auth(key)
    };

    for key in [var("TM_TEST_ANON_KEY"), var("TM_TEST_AUTHENTICATED_KEY")] {
        for table in [
            "tradovate_tokens",
            "token_key_mappings",
            "sync_runs",
            "token_reads",
        ] {
            let rows: serde_json::Value = as_role(key.clone(), http.get(format!("{base}/{table}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(
                rows,
                json!([]),
                "{table} is readable without the service role"
            );
            let row = match table {
                "tradovate_tokens" => {
                    json!({"account_name": "x", "main_account": "x", "access_token": "v1:x",
                                             "token_length": 1, "token_fingerprint": "f", "key_id": "k"})
                }
                "token_key_mappings" => {
                    json!({"main_account": "x", "redis_key": "token:x", "key_type": "main", "account_name": "x"})
                }
                "token_reads" => {
                    json!({"account_name": "x", "outcome": 200, "key_name": "k"})
                }
                _ => json!({"kind": "sync", "trigger": "http"}),
            };
            let insert = as_role(key.clone(), http.post(format!("{base}/{table}")))
                .json(&row)
                .send()
                .await
                .unwrap();
            assert!(
                matches!(insert.status().as_u16(), 401 | 403),
                "{table} insert: {}",
                insert.status()
            );
            let change = match table {
                "tradovate_tokens" => json!({"is_active": false}),
                "token_key_mappings" => json!({"key_type": "auth"}),
                "token_reads" => json!({"outcome": 404}),
                _ => json!({"status": "failed"}),
            };
            let update = as_role(
                key.clone(),
                http.patch(format!("{base}/{table}?id=not.is.null")),
            )
            .json(&change)
            .send()
            .await
            .unwrap();
            // RLS hides every row from an update: nothing matches, nothing changes.
            assert!(
                update.status().is_success() || matches!(update.status().as_u16(), 401 | 403),
                "{}",
                update.status()
            );
        }
        for function in [
            "token_manager_get",
            "token_manager_status",
            "token_manager_cleanup",
            "token_manager_record_reads",
            "token_manager_prune_reads",
        ] {
            let call = as_role(key.clone(), http.post(format!("{base}/rpc/{function}")))
                .json(&json!({"p_account": "APEX_136189", "p_expiring_within_seconds": 1, "p_recent_limit": 1, "p_trigger": "http", "p_reads": [], "p_days": 1}))
                .send()
                .await
                .unwrap();
            assert!(
                matches!(call.status().as_u16(), 401 | 403 | 404),
                "{function}: {}",
                call.status()
            );
        }
    }
    assert_eq!(
        stack.dump().await,
        before,
        "anon or authenticated changed a row"
    );
    assert_eq!(
        stack.query("select * from token_reads").await,
        reads_before,
        "anon or authenticated changed the audit trail"
    );

    let rows: serde_json::Value = as_role(
        var("TM_TEST_SERVICE_ROLE_KEY"),
        http.get(format!("{base}/tradovate_tokens?select=account_name")),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 22);
}
