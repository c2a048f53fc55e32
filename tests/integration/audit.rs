//! The audit trail natively against the real services: every token read path (200, 404, 410,
//! path and `?action=get`) is recorded with the key's name (or an unnamed key's short keyed
//! fingerprint), the client's IP and user agent; never a key or a token. A failed audit write
//! never fails a read unless AUDIT_REQUIRED=true; retention is applied by the cleanup.

use chrono::{Duration, Utc};
use serde_json::Value;
use token_manager::jobs::{cleanup::cleanup, sync::sync, Trigger};

use crate::support::faults::{Fault, FaultProxy};
use crate::support::{bearer, demo_tokens, jwt, token_of, var, Api, TestStack};

const NAMED_KEY: &str = "bot-eu-read-key-for-audit-tests-00000000";
const UNNAMED_KEY: &str = "unnamed-read-key-for-audit-tests-0000000";

/// The API natively with the test stack's configuration and two read keys: one named
/// `bot-eu`, one unnamed.
fn api(stack: &TestStack, changes: &[(&'static str, &str)]) -> Api {
    let keys = format!("bot-eu:{NAMED_KEY},{UNNAMED_KEY}");
    let mut all = vec![("TOKEN_MANAGER_READ_KEY", keys.as_str())];
    all.extend_from_slice(changes);
    stack.api_with(&all)
}

/// `GET path` as a client behind Cloudflare sends it: key, client IP, user agent.
async fn read(api: &Api, path: &str, key: &str, ip: &str) -> (u16, Value) {
    let authorization = bearer(key);
    let headers = [
        ("authorization", authorization.as_str()),
        ("cf-connecting-ip", ip),
        ("user-agent", "bot/1.0 (audit test)"),
    ];
    api.send("GET", path, &headers, b"").await.into_parts()
}

/// A stack with the demo tokens synced, one expired and one inactive token.
async fn seeded(stack: &mut TestStack) {
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:EXPIRED_1",
        jwt("EXPIRED_1", Utc::now() - Duration::hours(1)).as_str(),
    );
    stack.set(
        "token:GONE_1",
        jwt("GONE_1", Utc::now() + Duration::hours(1)).as_str(),
    );
    sync(&stack.services(), Trigger::Http).await.unwrap();
    stack.del("token:GONE_1");
    sync(&stack.services(), Trigger::Http).await.unwrap();
}

/// Makes the audit table refuse every insert (TestStack::start removes the trigger).
async fn refuse_audit_writes(stack: &TestStack) {
    stack
        .pg
        .batch_execute(
            "create function reject_reads() returns trigger language plpgsql as
               $$ begin raise exception 'audit store refuses writes'; end $$;
             create trigger reject_reads before insert on token_reads
               for each row execute function reject_reads();",
        )
        .await
        .unwrap();
}

#[tokio::test]
async fn every_read_path_is_recorded_with_the_key_name_and_never_a_secret() {
    let mut stack = TestStack::start().await;
    seeded(&mut stack).await;
    let api = api(&stack, &[]);
    let admin = var("TM_TEST_ADMIN_KEY");

    let cases = [
        ("/v1/tokens/APEX_136189", NAMED_KEY, 200, "APEX_136189"),
        (
            "/?action=get&account=APEX_136189",
            UNNAMED_KEY,
            200,
            "APEX_136189",
        ),
        (
            "/token-manager?action=get&account=NOPE_1",
            NAMED_KEY,
            404,
            "NOPE_1",
        ),
        ("/v1/tokens/EXPIRED_1", NAMED_KEY, 410, "EXPIRED_1"),
        ("/v1/tokens/GONE_1", UNNAMED_KEY, 410, "GONE_1"),
    ];
    for (i, (path, key, status, _)) in cases.iter().enumerate() {
        let (got, body) = read(&api, path, key, &format!("203.0.113.{i}")).await;
        assert_eq!(got, *status, "{path}: {body}");
    }
    // A read refused as bad input reads nothing and is not recorded.
    assert_eq!(
        read(&api, "/v1/tokens/%00", NAMED_KEY, "203.0.113.9")
            .await
            .0,
        400
    );

    let (status, body) = read(&api, "/v1/audit", &admin, "198.51.100.1").await;
    assert_eq!(status, 200, "{body}");
    let reads = body["reads"].as_array().unwrap();
    assert_eq!(body["count"], cases.len());
    let unnamed = format!(
        "read-{}",
        token_manager::crypto::key_fingerprint(UNNAMED_KEY)
    );
    // Newest first.
    for (row, (i, (_, key, status, account))) in reads.iter().zip(cases.iter().enumerate().rev()) {
        let name = if *key == NAMED_KEY {
            "bot-eu"
        } else {
            unnamed.as_str()
        };
        assert_eq!(row["account_name"], *account, "{row}");
        assert_eq!(row["outcome"], *status, "{row}");
        assert_eq!(row["key_name"], name, "{row}");
        assert_eq!(row["client_ip"], format!("203.0.113.{i}"), "{row}");
        assert_eq!(row["user_agent"], "bot/1.0 (audit test)", "{row}");
    }

    // Filters: by key name, account, time; a read key may not list the audit.
    let count = |body: &Value| body["count"].as_u64().unwrap();
    let (_, by_key) = read(&api, "/v1/audit?key=bot-eu", &admin, "x").await;
    assert_eq!(count(&by_key), 3);
    let (_, by_account) = read(&api, "/v1/audit?account=APEX_136189&limit=1", &admin, "x").await;
    assert_eq!(count(&by_account), 1);
    assert_eq!(by_account["reads"][0]["key_name"], unnamed.as_str());
    let future =
        (Utc::now() + Duration::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let (_, later) = read(&api, &format!("/v1/audit?since={future}"), &admin, "x").await;
    assert_eq!(count(&later), 0);
    let (_, earlier) = read(&api, &format!("/v1/audit?until={future}"), &admin, "x").await;
    assert_eq!(count(&earlier), 5);
    let (status, _) = read(&api, "/v1/audit", NAMED_KEY, "x").await;
    assert_eq!(status, 403);
    let (status, body) = read(&api, "/v1/audit?since=yesterday", &admin, "x").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_query"))
    );

    // The table holds no key and no token.
    let table = stack.query("select * from token_reads").await;
    let text = serde_json::to_string(&table).unwrap();
    assert_eq!(table.len(), 5);
    for secret in [NAMED_KEY, UNNAMED_KEY, admin.as_str()] {
        assert!(!text.contains(secret), "a key in token_reads");
    }
    for (_, value) in demo_tokens(Utc::now()) {
        assert!(
            !text.contains(&token_of(&value)[..40]),
            "a token in token_reads"
        );
    }
}

#[tokio::test]
async fn a_failed_audit_write_never_fails_a_read_unless_audit_is_required() {
    let mut stack = TestStack::start().await;
    seeded(&mut stack).await;
    refuse_audit_writes(&stack).await;
    let before = token_manager::audit::write_failures();

    let api_default = api(&stack, &[]);
    let (status, body) = read(
        &api_default,
        "/v1/tokens/APEX_136189",
        NAMED_KEY,
        "203.0.113.1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert!(body["token"].is_string());
    assert!(token_manager::audit::write_failures() > before);
    let (_, status_report) = read(&api_default, "/v1/status", NAMED_KEY, "x").await;
    assert!(status_report["audit_write_failures"].as_u64().unwrap() > before);

    // AUDIT_REQUIRED=true: no audit, no read (the token is withheld); 404/410 stay as they were.
    let required = api(&stack, &[("AUDIT_REQUIRED", "true")]);
    let (status, body) = read(
        &required,
        "/v1/tokens/APEX_136189",
        NAMED_KEY,
        "203.0.113.1",
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (503, Some("audit_unavailable")),
        "{body}"
    );
    assert!(!body.to_string().contains("eyJ"), "{body}");
    assert_eq!(
        read(&required, "/v1/tokens/NOPE_1", NAMED_KEY, "x").await.0,
        404
    );

    stack
        .pg
        .batch_execute("drop trigger reject_reads on token_reads; drop function reject_reads();")
        .await
        .unwrap();
    let (status, body) = read(
        &required,
        "/v1/tokens/APEX_136189",
        NAMED_KEY,
        "203.0.113.1",
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let rows = stack.query("select outcome from token_reads").await;
    assert_eq!(
        rows.len(),
        1,
        "only the read made while the audit worked: {rows:?}"
    );
}

#[tokio::test]
async fn cleanup_applies_the_audit_retention() {
    let stack = TestStack::start().await;
    stack
        .pg
        .batch_execute(
            "insert into token_reads (read_at, account_name, outcome, key_name)
             values (now() - interval '100 days', 'OLD_1', 200, 'bot-eu'),
                    (now() - interval '10 days', 'MID_1', 200, 'bot-eu'),
                    (now(), 'NEW_1', 404, 'bot-eu')",
        )
        .await
        .unwrap();
    let report = cleanup(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!(report.audit_pruned, 1);
    let short =
        token_manager::jobs::Services::new(stack.config_with(&[("AUDIT_RETENTION_DAYS", "5")]));
    assert_eq!(
        cleanup(&short, Trigger::Cron).await.unwrap().audit_pruned,
        1
    );
    let left = stack.query("select account_name from token_reads").await;
    assert_eq!(left.len(), 1);
    assert_eq!(left[0]["account_name"], "NEW_1");
}

/// Restore and renew open stored secrets: each opened (200) or unopenable (503) token is one
/// row under the job's name, written once per pass, listed by `?key=job:restore`; with
/// AUDIT_REQUIRED=true a restore whose audit write fails writes nothing to Redis.
#[tokio::test]
async fn restore_and_renew_record_the_secrets_they_open() {
    use token_manager::jobs::restore::{restore, RestoreOptions};

    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    // One row holding another account's ciphertext (bound to that account): unopenable.
    stack
        .pg
        .batch_execute(
            "update tradovate_tokens set access_token = (select access_token from tradovate_tokens
                                                          where account_name = 'APEX_136189')
              where account_name = 'APEX_266668'",
        )
        .await
        .unwrap();
    for (key, _) in &tokens {
        stack.del(key);
    }

    // A dry run opens the secrets too; so does the restore: 22 rows each, in one write each.
    let services = stack.services();
    let dry = RestoreOptions {
        dry_run: true,
        ..RestoreOptions::default()
    };
    restore(&services, Trigger::Http, dry).await.unwrap();
    let before = services.subrequests.count();
    let report = restore(&services, Trigger::Http, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.restored.len(), 21);
    // lock, begin, audit, one SET pipeline, finish, unlock.
    assert_eq!(services.subrequests.count() - before, 6);
    let rows = stack
        .query(
            "select outcome, count(*) as n, bool_and(client_ip is null and user_agent is null) as bare
               from token_reads where key_name = 'job:restore' group by outcome order by outcome",
        )
        .await;
    assert_eq!(
        rows,
        [
            serde_json::json!({"outcome": 200, "n": 42, "bare": true}),
            serde_json::json!({"outcome": 503, "n": 2, "bare": true}),
        ]
    );
    let api = api(&stack, &[]);
    let admin = var("TM_TEST_ADMIN_KEY");
    let (status, body) = read(&api, "/v1/audit?key=job:restore&limit=1000", &admin, "x").await;
    assert_eq!((status, body["count"].as_u64()), (200, Some(44)), "{body}");
    let (status, body) = read(
        &api,
        "/v1/audit?key=job:restore&account=APEX_266668",
        &admin,
        "x",
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(body["reads"][0]["outcome"], 503, "{body}");
    let text = serde_json::to_string(&stack.query("select * from token_reads").await).unwrap();
    for (_, value) in &tokens {
        assert!(!text.contains(&token_of(value)));
    }

    // AUDIT_REQUIRED=true and the audit store refuses: the restore fails and writes nothing.
    for (key, _) in &tokens {
        stack.del(key);
    }
    refuse_audit_writes(&stack).await;
    let required =
        token_manager::jobs::Services::new(stack.config_with(&[("AUDIT_REQUIRED", "true")]));
    let failed = restore(&required, Trigger::Http, RestoreOptions::default()).await;
    assert!(failed.is_err(), "{failed:?}");
    assert!(stack.redis_state().is_empty(), "nothing written to Redis");
    assert_eq!(stack.last_run("restore").await["status"], "failed");
    // Without AUDIT_REQUIRED the same failure is logged and counted; the restore goes on.
    let report = restore(&services, Trigger::Http, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.restored.len(), 21);
}

#[tokio::test]
async fn a_renew_pass_records_the_tokens_it_opened() {
    let mut stack = TestStack::start().await;
    let (_standin, _, keys) = super::renew::refused_session(&mut stack).await;
    let rows = stack
        .query(
            "select account_name, outcome from token_reads where key_name = 'job:renew' order by 1",
        )
        .await;
    assert_eq!(rows.len(), keys.len(), "{rows:?}");
    assert!(rows.iter().all(|r| r["outcome"] == 200), "{rows:?}");
}

#[tokio::test]
async fn a_get_and_its_audit_row_are_one_postgrest_request() {
    let mut stack = TestStack::start().await;
    seeded(&mut stack).await;
    let postgrest = FaultProxy::start(var("TM_TEST_POSTGREST_URL"), |_| Fault::Forward).await;
    let api = api(&stack, &[("SUPABASE_REST_URL", &postgrest.url)]);
    let cases = [
        ("/v1/tokens/APEX_136189", 200),
        ("/v1/tokens/NOPE_1", 404),
        ("/v1/tokens/EXPIRED_1", 410),
        ("/v1/tokens/GONE_1", 410),
    ];
    for (i, (path, status)) in cases.iter().enumerate() {
        let (got, body) = read(&api, path, NAMED_KEY, "203.0.113.7").await;
        assert_eq!(got, *status, "{path}: {body}");
        // The Api runs deferred work before it returns: nothing else was sent.
        assert_eq!(postgrest.requests(), i + 1, "{path}: one request per get");
    }
    let rows = stack
        .query("select account_name, outcome from token_reads order by id")
        .await;
    let expected: Vec<Value> = cases
        .iter()
        .map(|(path, status)| {
            serde_json::json!({
                "account_name": path.trim_start_matches("/v1/tokens/"),
                "outcome": status
            })
        })
        .collect();
    assert_eq!(rows, expected);
}
