//! Privileges and Row Level Security through the real PostgREST, on a stack whose roles script
//! has run again (as on every start of a dev stack, when it used to re-grant every function to
//! anon): the anon and authenticated JWTs a Supabase project hands out are refused every table
//! and every `token_manager_*` function; the service role reaches them.

use chrono::{Duration, Utc};
use serde_json::{json, Map, Value};
use token_manager::jobs::{sync::sync, Trigger};

use crate::support::{demo_tokens, var, TestStack};

/// The API roles a Supabase project hands JWTs out for, besides the service role.
const API_ROLES: [&str; 2] = ["anon", "authenticated"];

/// A well-typed argument for a parameter of `pg_type`, so that PostgREST finds the function
/// and only a missing privilege can refuse the call.
fn argument(pg_type: &str) -> Value {
    match pg_type {
        "text" => json!("APEX_136189"),
        "text[]" => json!(["APEX_136189"]),
        "timestamp with time zone" => json!("2026-01-01T00:00:00Z"),
        "integer" | "bigint" => json!(1),
        "boolean" => json!(false),
        "jsonb" => json!([]),
        "uuid" => json!("00000000-0000-0000-0000-000000000000"),
        other => panic!("no test argument for a parameter of type {other}"),
    }
}

/// Every `token_manager_*` function in `public` that PostgREST can call (trigger functions
/// cannot be), with a JSON body of well-typed arguments.
async fn functions(stack: &TestStack) -> Vec<(String, Value)> {
    let rows = stack
        .query(
            "select p.proname as name, p.proargnames as names,
                    array(select format_type(t, null) from unnest(p.proargtypes) t) as types
               from pg_proc p
              where p.pronamespace = 'public'::regnamespace and p.proname like 'token\\_manager\\_%'
                and p.prorettype <> 'trigger'::regtype
              order by 1",
        )
        .await;
    rows.into_iter()
        .map(|row| {
            let names = row["names"].as_array().cloned().unwrap_or_default();
            let types = row["types"].as_array().unwrap();
            let body: Map<String, Value> = names
                .iter()
                .zip(types)
                .map(|(n, t)| {
                    (
                        n.as_str().unwrap().to_string(),
                        argument(t.as_str().unwrap()),
                    )
                })
                .collect();
            (
                row["name"].as_str().unwrap().to_string(),
                Value::Object(body),
            )
        })
        .collect()
}

/// A request to PostgREST as the holder of `key` (a JWT), the way supabase-js sends it.
fn as_role(key: &str, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
    request.header("apikey", key).bearer_auth(key)
}

/// Asserts that PostgREST refused the request for a missing privilege (Postgres's 42501):
/// 401 for anon, 403 for authenticated, never an empty success.
async fn assert_refused(response: reqwest::Response, what: &str) {
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap_or(Value::Null);
    assert!(
        matches!(status, 401 | 403) && body["code"] == "42501",
        "{what}: HTTP {status} {body}"
    );
}

#[tokio::test]
async fn only_the_service_role_reaches_the_tables_and_functions() {
    let mut stack = TestStack::start().await;
    // What scripts/lib.sh does on every start of a stack: the roles script again (dbmate then
    // finds every migration applied).
    stack.reapply_roles_and_migrations();
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let before = stack.dump().await;
    let reads_before = stack.query("select * from token_reads order by id").await;

    // In the catalog: no privilege at all for the API roles, RLS on, the service role served.
    let in_public = stack
        .query("select tablename, rowsecurity from pg_tables where schemaname = 'public'")
        .await;
    let tables: Vec<String> = in_public
        .iter()
        .map(|t| t["tablename"].as_str().unwrap().to_string())
        .collect();
    for table in [
        "tradovate_tokens",
        "token_key_mappings",
        "sync_runs",
        "token_reads",
    ] {
        assert!(
            tables.iter().any(|t| t == table),
            "{table} is not in public"
        );
    }
    for row in &in_public {
        assert_eq!(row["rowsecurity"], true, "{row}");
    }
    let functions = functions(&stack).await;
    assert!(functions.len() >= 8, "{functions:?}");
    let privileges = stack
        .query(
            "select r.rolname as role, c.relname as object,
                    has_table_privilege(r.oid, c.oid, 'select, insert, update, delete, truncate, references, trigger') as granted
               from pg_class c cross join pg_roles r
              where c.relnamespace = 'public'::regnamespace and c.relkind = 'r'
                and r.rolname in ('anon', 'authenticated', 'service_role')
             union all
             select r.rolname, p.proname, has_function_privilege(r.oid, p.oid, 'execute')
               from pg_proc p cross join pg_roles r
              where p.pronamespace = 'public'::regnamespace and p.proname like 'token\\_manager\\_%'
                and p.prorettype <> 'trigger'::regtype
                and r.rolname in ('anon', 'authenticated', 'service_role')",
        )
        .await;
    assert_eq!(privileges.len(), 3 * (in_public.len() + functions.len()));
    for row in &privileges {
        let expected = row["role"] == "service_role";
        assert_eq!(row["granted"], expected, "{row}");
    }

    // Through PostgREST: every table and every function refused, with the anon key and with
    // a user's JWT.
    let http = reqwest::Client::new();
    let base = var("TM_TEST_POSTGREST_URL");
    for (role, key) in API_ROLES
        .into_iter()
        .zip([var("TM_TEST_ANON_KEY"), var("TM_TEST_AUTHENTICATED_KEY")])
    {
        for table in &tables {
            let url = format!("{base}/{table}");
            let mut requests = vec![("select", http.get(&url))];
            // A well-formed row and change for the tables we know; any other table (a later
            // migration's) is tried with select and an empty insert, and the catalog check
            // above covers every privilege it holds.
            let known = match table.as_str() {
                "tradovate_tokens" => Some((
                    json!({"account_name": "x", "main_account": "x", "access_token": "v1:x",
                           "token_length": 1, "token_fingerprint": "f", "key_id": "k"}),
                    json!({"is_active": false}),
                )),
                "token_key_mappings" => Some((
                    json!({"main_account": "x", "redis_key": "token:x", "key_type": "main",
                           "account_name": "x"}),
                    json!({"key_type": "auth"}),
                )),
                "token_reads" => Some((
                    json!({"account_name": "x", "outcome": 200, "key_name": "k"}),
                    json!({"outcome": 404}),
                )),
                "sync_runs" => Some((
                    json!({"kind": "sync", "trigger": "http"}),
                    json!({"status": "failed"}),
                )),
                _ => None,
            };
            match known {
                Some((row, change)) => {
                    let filtered = format!("{url}?id=not.is.null");
                    requests.push(("insert", http.post(&url).json(&row)));
                    requests.push(("update", http.patch(&filtered).json(&change)));
                    requests.push(("delete", http.delete(&filtered)));
                }
                None => requests.push(("insert", http.post(&url).json(&json!({})))),
            }
            for (what, request) in requests {
                let response = as_role(&key, request).send().await.unwrap();
                assert_refused(response, &format!("{role}: {what} {table}")).await;
            }
        }
        for (function, arguments) in &functions {
            let url = format!("{base}/rpc/{function}");
            let response = as_role(&key, http.post(url).json(arguments))
                .send()
                .await
                .unwrap();
            assert_refused(response, &format!("{role}: {function}({arguments})")).await;
        }
    }
    assert_eq!(
        stack.dump().await,
        before,
        "anon or authenticated changed a row"
    );
    assert_eq!(
        stack.query("select * from token_reads order by id").await,
        reads_before,
        "anon or authenticated changed the audit trail"
    );

    // The service role reads the tables and calls the functions the same requests name.
    let service = var("TM_TEST_SERVICE_ROLE_KEY");
    let rows: Value = as_role(
        &service,
        http.get(format!("{base}/tradovate_tokens?select=account_name")),
    )
    .send()
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    assert_eq!(rows.as_array().unwrap().len(), 22);
    for (function, arguments) in functions
        .iter()
        .filter(|(f, _)| matches!(f.as_str(), "token_manager_get" | "token_manager_status"))
    {
        let response = as_role(
            &service,
            http.post(format!("{base}/rpc/{function}")).json(arguments),
        )
        .send()
        .await
        .unwrap();
        assert_eq!(response.status(), 200, "service role: {function}");
    }
}
