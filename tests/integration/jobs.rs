//! Sync, status, get and cleanup against the real services, checked in Postgres with SQL.

use chrono::{Duration, Utc};
use serde_json::json;
use token_manager::jobs::{
    cleanup::cleanup, get::get, status::status, sync::sync, JobError, Trigger,
};

use crate::support::{demo_accounts, demo_tokens, jwt, token_of, TestStack};

#[tokio::test]
async fn sync_stores_every_demo_token_encrypted_with_its_main_account() {
    let mut stack = TestStack::start().await;
    let exp = (Utc::now() + Duration::hours(1)).with_timezone(&Utc);
    let tokens = demo_tokens(exp);
    stack.seed(&tokens);

    let report = sync(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!(report.message, "Synced 22 tokens from Redis to Supabase");
    assert_eq!(
        (
            report.tokens_synced,
            report.inserted,
            report.updated,
            report.key_mappings
        ),
        (22, 22, 0, 22)
    );
    let mut accounts = demo_accounts();
    accounts.sort();
    assert_eq!(report.accounts, accounts);
    assert!(report.skipped.is_empty(), "{:?}", report.skipped);

    let row = stack.token_row("PAAPEX1361890000003").await;
    assert_eq!(row["main_account"], "APEX_136189");
    assert_eq!(row["is_active"], true);
    assert!(row["access_token"].as_str().unwrap().starts_with("v2:"));
    let stored_exp =
        chrono::DateTime::parse_from_rfc3339(row["expires_at"].as_str().unwrap()).unwrap();
    assert_eq!(stored_exp.timestamp(), exp.timestamp());
    let main = stack.query("select key_type, main_account from token_key_mappings where redis_key = 'token:APEX_266668'").await;
    assert_eq!(
        main,
        vec![json!({"key_type": "main", "main_account": "APEX_266668"})]
    );
    let sub = stack.query("select key_type, main_account from token_key_mappings where redis_key = 'token:PAAPEX2666680000002'").await;
    assert_eq!(
        sub,
        vec![json!({"key_type": "sub_account", "main_account": "APEX_266668"})]
    );

    let dump = stack.dump().await;
    for (_, value) in &tokens {
        assert!(
            !dump.contains(&token_of(value)),
            "a plaintext token reached Postgres"
        );
    }
}

#[tokio::test]
async fn second_sync_writes_nothing_and_a_changed_token_is_rewritten() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();
    let before = stack
        .query("select account_name, updated_at, access_token from tradovate_tokens order by 1")
        .await;

    let again = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (
            again.inserted,
            again.updated,
            again.unchanged,
            again.deactivated
        ),
        (0, 0, 22, 0)
    );
    let after = stack
        .query("select account_name, updated_at, access_token from tradovate_tokens order by 1")
        .await;
    assert_eq!(before, after, "an unchanged token was rewritten");

    let renewed = jwt("APEX_136189-renewed", Utc::now() + Duration::hours(2));
    stack.set("token:APEX_136189", renewed.as_str());
    let changed = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (changed.inserted, changed.updated, changed.unchanged),
        (0, 1, 21)
    );
    assert_eq!(
        get(&services, "APEX_136189", Utc::now())
            .await
            .unwrap()
            .token,
        renewed
    );
}

#[tokio::test]
async fn a_key_gone_from_redis_becomes_inactive_and_returns_when_it_comes_back() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    stack.del("token:PAAPEX2720450000006");
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.tokens_synced, report.deactivated), (21, 1));
    assert_eq!(
        stack.token_row("PAAPEX2720450000006").await["is_active"],
        false
    );
    assert!(matches!(
        get(&services, "PAAPEX2720450000006", Utc::now()).await,
        Err(JobError::Inactive(_))
    ));

    stack.seed(&tokens);
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.updated, report.deactivated), (1, 0));
    assert_eq!(
        stack.token_row("PAAPEX2720450000006").await["is_active"],
        true
    );
}

#[tokio::test]
async fn expiry_comes_from_the_field_then_the_jwt_then_the_ttl() {
    let mut stack = TestStack::start().await;
    let field_exp = Utc::now() + Duration::minutes(50);
    let jwt_exp = Utc::now() + Duration::minutes(70);
    stack.set(
        "token:APEX_1000001",
        json!({"accessToken": jwt("a", jwt_exp), "expirationTime": field_exp.to_rfc3339()})
            .to_string()
            .as_str(),
    );
    stack.set("token:APEX_1000002", jwt("b", jwt_exp).as_str());
    stack.set_px("token:APEX_1000003", "opaque-token-with-ttl", 3_600_000);
    stack.set("token:APEX_1000004", "opaque-token-forever");
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    let rows = stack.query("select account_name, metadata->>'expires_source' as source, floor(extract(epoch from expires_at))::bigint as exp from tradovate_tokens order by 1").await;
    assert_eq!(rows[0]["source"], "explicit");
    assert_eq!(rows[0]["exp"], field_exp.timestamp());
    assert_eq!(rows[1]["source"], "jwt_exp");
    assert_eq!(rows[1]["exp"], jwt_exp.timestamp());
    assert_eq!(rows[2]["source"], "redis_ttl");
    let ttl_exp = rows[2]["exp"].as_i64().unwrap();
    assert!(
        (ttl_exp - (Utc::now() + Duration::hours(1)).timestamp()).abs() <= 5,
        "{ttl_exp}"
    );
    assert_eq!(rows[3]["source"], "unknown");
    assert!(rows[3]["exp"].is_null());
    // A TTL-derived expiry drifts by latency only: the next sync leaves it alone.
    assert_eq!(sync(&services, Trigger::Http).await.unwrap().unchanged, 4);
}

#[tokio::test]
async fn malformed_values_are_skipped_by_name_and_good_tokens_still_land() {
    let mut stack = TestStack::start().await;
    let good = jwt("good", Utc::now() + Duration::hours(1));
    stack.set("token:APEX_2000001", good.as_str());
    stack.set("token:APEX_2000002", "{not json");
    stack.set("token:APEX_2000003", r#"{"userId": 5}"#);
    stack.set("token:APEX_2000004", "");
    stack.set("token:APEX_2000005", &[0xff_u8, 0xfe, 0x00, 0x01][..]);
    stack.set("token:", good.as_str());
    let services = stack.services();
    let report = sync(&services, Trigger::Http).await.unwrap();

    assert_eq!(report.tokens_synced, 1);
    let mut skipped: Vec<&str> = report
        .skipped
        .iter()
        .map(|s| s.redis_key.as_str())
        .collect();
    skipped.sort();
    assert_eq!(
        skipped,
        [
            "token:",
            "token:APEX_2000002",
            "token:APEX_2000003",
            "token:APEX_2000004",
            "token:APEX_2000005"
        ]
    );
    assert!(report
        .skipped
        .iter()
        .all(|s| !s.reason.is_empty() && !s.reason.contains(&good)));
    let runs = stack
        .query("select status, skipped, details->'skipped' as list from sync_runs")
        .await;
    assert_eq!(runs[0]["status"], "succeeded");
    assert_eq!(runs[0]["skipped"], 5);

    // A bad write over a good token keeps the stored token active.
    stack.set("token:APEX_2000001", "{broken");
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(report.deactivated, 0);
    assert_eq!(stack.token_row("APEX_2000001").await["is_active"], true);
}

#[tokio::test]
async fn a_held_lock_refuses_a_second_sync() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set_px(token_manager::jobs::sync::LOCK_KEY, "another-run", 60_000);
    let services = stack.services();
    assert!(matches!(
        sync(&services, Trigger::Http).await,
        Err(JobError::SyncInProgress { .. })
    ));
    assert!(stack
        .query("select 1 from tradovate_tokens")
        .await
        .is_empty());

    stack.del(token_manager::jobs::sync::LOCK_KEY);
    sync(&services, Trigger::Cron).await.unwrap();
    let runs = stack
        .query("select trigger, status, tokens_seen, inserted from sync_runs")
        .await;
    assert_eq!(
        runs,
        vec![json!({"trigger": "cron", "status": "succeeded", "tokens_seen": 22, "inserted": 22})]
    );
    let lock: Option<String> = redis::cmd("GET")
        .arg(token_manager::jobs::sync::LOCK_KEY)
        .query(&mut stack.redis)
        .unwrap();
    assert_eq!(lock, None, "the lock is released after the run");
}

#[tokio::test]
async fn two_syncs_at_once_one_conflicts_and_no_row_is_duplicated() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let (a, b) = (stack.services(), stack.services());
    let (ra, rb) = tokio::join!(sync(&a, Trigger::Http), sync(&b, Trigger::Http));
    let ok = [&ra, &rb].iter().filter(|r| r.is_ok()).count();
    let conflicts = [&ra, &rb]
        .iter()
        .filter(|r| matches!(r, Err(JobError::SyncInProgress { .. })))
        .count();
    assert_eq!((ok, conflicts), (1, 1), "{ra:?} {rb:?}");
    assert_eq!(
        stack
            .query("select count(*) as n from tradovate_tokens")
            .await[0]["n"],
        22
    );
}

#[tokio::test]
async fn unreachable_upstash_fails_the_sync_and_records_the_failed_run() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let services = token_manager::jobs::Services::new(
        stack.config_with(&[("UPSTASH_REDIS_REST_URL", "http://127.0.0.1:9")]),
    );
    let err = sync(&services, Trigger::Http).await.unwrap_err();
    assert!(matches!(err, JobError::Upstash(_)), "{err}");
    assert!(err.to_string().contains("UPSTASH_REDIS_REST_URL"), "{err}");

    let services = token_manager::jobs::Services::new(
        stack.config_with(&[("SUPABASE_REST_URL", "http://127.0.0.1:9")]),
    );
    let err = sync(&services, Trigger::Http).await.unwrap_err();
    assert!(matches!(err, JobError::Store(_)), "{err}");
    let lock: Option<String> = redis::cmd("GET")
        .arg(token_manager::jobs::sync::LOCK_KEY)
        .query(&mut stack.redis)
        .unwrap();
    assert_eq!(lock, None, "a failed run releases the lock");
    assert!(stack
        .query("select 1 from tradovate_tokens")
        .await
        .is_empty());
}

#[tokio::test]
async fn a_wrong_upstash_token_names_the_setting() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let services = token_manager::jobs::Services::new(
        stack.config_with(&[("UPSTASH_REDIS_REST_TOKEN", "wrong-token")]),
    );
    let err = sync(&services, Trigger::Http).await.unwrap_err();
    assert!(
        err.to_string().contains("UPSTASH_REDIS_REST_TOKEN"),
        "{err}"
    );
}

#[tokio::test]
async fn a_batch_postgrest_rejects_fails_the_run_keeps_earlier_batches_and_the_next_sync_completes()
{
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    // A database rule that rejects one account, as a constraint or trigger in production might.
    stack
        .pg
        .batch_execute(
            "create function reject_one() returns trigger language plpgsql as $$ begin
               if new.account_name = 'PAAPEX2720450000006' then raise exception 'rejected by test rule'; end if;
               return new; end $$;
             create trigger reject_one before insert on tradovate_tokens for each row execute function reject_one();",
        )
        .await
        .unwrap();
    let services =
        token_manager::jobs::Services::new(stack.config_with(&[("SYNC_BATCH_SIZE", "5")]));
    let err = sync(&services, Trigger::Http).await.unwrap_err();
    stack
        .pg
        .batch_execute("drop trigger reject_one on tradovate_tokens; drop function reject_one();")
        .await
        .unwrap();

    assert!(
        matches!(err, JobError::Store(_)) && err.to_string().contains("rejected by test rule"),
        "{err}"
    );
    let runs = stack.query("select status, error from sync_runs").await;
    assert_eq!(runs[0]["status"], "failed");
    assert!(runs[0]["error"]
        .as_str()
        .unwrap()
        .contains("rejected by test rule"));
    let landed = stack
        .query("select count(*) as n from tradovate_tokens")
        .await[0]["n"]
        .as_i64()
        .unwrap();
    assert_eq!(
        landed, 20,
        "the four batches before the rejected one landed whole"
    );
    let lock: Option<String> = redis::cmd("GET")
        .arg(token_manager::jobs::sync::LOCK_KEY)
        .query(&mut stack.redis)
        .unwrap();
    assert_eq!(lock, None);

    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.inserted, report.unchanged), (2, 20));
    assert_eq!(
        stack
            .query("select count(*) as n from tradovate_tokens where is_active")
            .await[0]["n"],
        22
    );
}

#[tokio::test]
async fn status_compares_redis_with_supabase() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let services = stack.services();
    use token_manager::jobs::status::RedisTokensSource;
    // Status never scans Redis: before any sync it knows no Redis figure.
    let before = status(&services).await.unwrap();
    assert_eq!(
        (
            before.supabase_tokens,
            before.redis_tokens,
            before.redis_tokens_source,
            before.sync_needed
        ),
        (0, 0, RedisTokensSource::None, true)
    );
    assert!(before.last_sync.is_none());

    sync(&services, Trigger::Http).await.unwrap();
    stack.set(
        "token:APEX_9000001",
        jwt("soon", Utc::now() + Duration::minutes(5)).as_str(),
    );
    let mid = status(&services).await.unwrap();
    assert_eq!(
        (mid.redis_tokens, mid.redis_tokens_source, mid.sync_needed),
        (22, RedisTokensSource::LastSync, false),
        "what the last sync counted, not a new scan"
    );
    sync(&services, Trigger::Http).await.unwrap();
    let after = status(&services).await.unwrap();
    assert_eq!(
        (
            after.supabase_tokens,
            after.active_tokens,
            after.redis_tokens,
            after.sync_needed
        ),
        (23, 23, 23, false)
    );
    assert_eq!(
        after.redis_counted_at,
        after.last_sync.as_ref().unwrap().finished_at
    );
    assert_eq!(after.expiring_soon, 1);
    assert_eq!(after.last_sync.as_ref().unwrap().status, "succeeded");
    assert_eq!(after.recent_tokens.len(), 10);
    let body = serde_json::to_string(&after).unwrap();
    assert!(!body.contains("eyJ"), "status must never carry a token");

    // A token Redis lost is counted (and deactivated) by the next sync; a failed sync makes
    // status say a sync is needed.
    stack.del("token:APEX_9000001");
    sync(&services, Trigger::Http).await.unwrap();
    let lost = status(&services).await.unwrap();
    assert_eq!(
        (lost.redis_tokens, lost.active_tokens, lost.sync_needed),
        (22, 22, false)
    );
    stack
        .pg
        .batch_execute(
            "insert into sync_runs (kind, trigger, status, finished_at, error)
             values ('sync', 'cron', 'failed', now(), 'Upstash Redis rejected the token')",
        )
        .await
        .unwrap();
    let failed = status(&services).await.unwrap();
    assert_eq!(failed.last_sync.as_ref().unwrap().status, "failed");
    assert!(failed.sync_needed, "the last sync failed");
    assert_eq!(failed.redis_tokens, 22, "still the last successful count");
}

#[tokio::test]
async fn get_decrypts_and_refuses_unknown_expired_and_inactive_tokens() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    stack.set(
        "token:APEX_3000001",
        jwt("old", Utc::now() - Duration::minutes(1)).as_str(),
    );
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    let (key, value) = tokens
        .iter()
        .find(|(k, _)| k == "token:PAAPEX1361890000002")
        .unwrap();
    let got = get(&services, key.trim_start_matches("token:"), Utc::now())
        .await
        .unwrap();
    assert_eq!(got.token, token_of(value));
    assert_eq!(got.main_account, "APEX_136189");
    assert!(!got.expired);
    assert!((3500..=3600).contains(&got.expires_in_seconds.unwrap()));

    let json_account = tokens.iter().find(|(_, v)| v.starts_with('{')).unwrap();
    let got = get(
        &services,
        json_account.0.trim_start_matches("token:"),
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(
        got.md_access_token.is_some(),
        "the market-data token comes back decrypted"
    );
    assert!(
        !got.metadata.to_string().contains("v1:"),
        "no ciphertext in metadata"
    );

    assert!(matches!(
        get(&services, "APEX_404", Utc::now()).await,
        Err(JobError::UnknownAccount(_))
    ));
    assert!(matches!(
        get(&services, "APEX_3000001", Utc::now()).await,
        Err(JobError::Expired(_))
    ));
    assert!(matches!(
        get(&services, "", Utc::now()).await,
        Err(JobError::InvalidAccount { .. })
    ));
}

#[tokio::test]
async fn a_ciphertext_moved_to_another_account_does_not_decrypt() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();
    stack
        .pg
        .execute(
            "update tradovate_tokens set access_token = (select access_token from tradovate_tokens where account_name = 'APEX_136189') where account_name = 'APEX_266668'",
            &[],
        )
        .await
        .unwrap();
    assert!(matches!(
        get(&services, "APEX_266668", Utc::now()).await,
        Err(JobError::Decrypt { .. })
    ));
}

#[tokio::test]
async fn cleanup_deactivates_expired_tokens_once() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:APEX_4000001",
        jwt("old1", Utc::now() - Duration::minutes(5)).as_str(),
    );
    stack.set(
        "token:APEX_4000002",
        jwt("old2", Utc::now() - Duration::days(1)).as_str(),
    );
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    let first = cleanup(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (first.cleaned, first.message.as_str()),
        (2, "Cleaned up 2 expired tokens")
    );
    assert_eq!(cleanup(&services, Trigger::Cron).await.unwrap().cleaned, 0);
    let inactive = stack
        .query("select account_name from tradovate_tokens where not is_active order by 1")
        .await;
    assert_eq!(
        inactive,
        vec![
            json!({"account_name": "APEX_4000001"}),
            json!({"account_name": "APEX_4000002"})
        ]
    );
    let runs = stack
        .query("select trigger, cleaned from sync_runs where kind = 'cleanup' order by started_at")
        .await;
    assert_eq!(
        runs,
        vec![
            json!({"trigger": "http", "cleaned": 2}),
            json!({"trigger": "cron", "cleaned": 0})
        ]
    );
}

/// Upstash requests our server logged while `f` ran.
async fn upstash_requests<F: std::future::Future>(f: F) -> (F::Output, usize) {
    let log = crate::support::var("TM_TEST_UPSTASH_LOG");
    let count = || {
        std::fs::read_to_string(&log)
            .unwrap()
            .lines()
            .filter(|l| l.starts_with("upstash-local request "))
            .count()
    };
    let before = count();
    let output = f.await;
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    (output, count() - before)
}

#[tokio::test]
async fn many_keys_take_few_requests_whatever_the_page_and_batch_sizes() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    for n in 0..250 {
        stack.set(
            &format!("token:APEX{:06}{n:07}", 100_000 + n),
            jwt(&format!("t{n}"), exp).as_str(),
        );
    }
    stack.set("other:APEX_1", "not ours");
    for (scan_count, batch, most) in [("1000", "50", 2 + 5 + 1), ("10", "7", 2 + 36 + 1)] {
        stack
            .pg
            .batch_execute("truncate tradovate_tokens, token_key_mappings, sync_runs")
            .await
            .unwrap();
        let services = token_manager::jobs::Services::new(
            stack.config_with(&[("SCAN_COUNT", scan_count), ("SYNC_BATCH_SIZE", batch)]),
        );
        let (report, requests) = upstash_requests(sync(&services, Trigger::Http)).await;
        let report = report.unwrap();
        assert_eq!(
            (report.tokens_synced, report.inserted),
            (250, 250),
            "SCAN_COUNT={scan_count}"
        );
        assert!(
            requests <= most,
            "{requests} Upstash requests for 250 keys (SCAN_COUNT={scan_count}, batch={batch})"
        );
    }
}

#[tokio::test]
async fn a_redis_full_of_other_keys_costs_requests_for_the_tokens_not_the_keyspace() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    for n in 0..22 {
        stack.set(
            &format!("token:APEX{:06}", 200_000 + n),
            jwt(&format!("t{n}"), exp).as_str(),
        );
    }
    // 60,000 keys of other applications: SCAN COUNT 1000 alone would take 60 pages.
    for chunk in (0..60_000).collect::<Vec<u32>>().chunks(10_000) {
        let mut pipe = redis::pipe();
        for &i in chunk {
            match i % 3 {
                0 => pipe.cmd("SET").arg(format!("cache:{i}")).arg("x"),
                1 => pipe.cmd("HSET").arg(format!("candle:{i}")).arg("o").arg(i),
                _ => pipe.cmd("RPUSH").arg(format!("queue:{i}")).arg("job"),
            }
            .ignore();
        }
        pipe.exec(&mut stack.redis).unwrap();
    }
    redis::cmd("HSET")
        .arg("token:STATS")
        .arg("hits")
        .arg(1)
        .exec(&mut stack.redis)
        .unwrap();
    let services = stack.services();
    let (report, requests) = upstash_requests(sync(&services, Trigger::Http)).await;
    let report = report.unwrap();
    assert_eq!((report.tokens_synced, report.inserted), (22, 22));
    let skipped: Vec<&str> = report
        .skipped
        .iter()
        .map(|s| s.redis_key.as_str())
        .collect();
    assert_eq!(skipped, ["token:STATS"], "a hash under token: is skipped");
    assert_eq!(
        stack
            .query("select count(*)::int as n from tradovate_tokens where is_active")
            .await,
        vec![json!({"n": 22})],
        "all 22 tokens are stored"
    );
    // At most: a first page of SCAN_COUNT (with DBSIZE and the lock), SPARSE_PAGES pages of a
    // sixth of the keyspace (one more: COUNT is a hint to Redis), and the values found in the
    // last page (with the unlock). Pages of a fixed 1,000 keys would take 60.
    let most = 1 + (token_manager::upstash::SPARSE_PAGES + 1) + 1;
    assert!(
        requests <= most,
        "{requests} Upstash requests for 22 tokens among 60,000 other keys (at most {most})"
    );
}
