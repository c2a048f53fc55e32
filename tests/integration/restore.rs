//! Redis forgets: the loss guard in sync and the restore, against the real stack. Redis is
//! flushed, its TTL keys evicted by Redis itself (maxmemory + volatile-ttl), keys deleted on
//! purpose and rewritten by a "bot"; Upstash fails mid-restore behind the fault proxy. Every
//! case checks Redis byte for byte and the rows and runs in Postgres.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use token_manager::jobs::restore::{restore, RestoreOptions};
use token_manager::jobs::status::status;
use token_manager::jobs::sync::{sync, Outcome, LOCK_KEY};
use token_manager::jobs::{get::get, JobError, Services, Trigger};

use crate::support::faults::{nth, Fault, FaultProxy};
use crate::support::{admin, bounded, demo_tokens, jwt, many_tokens, reader, var, TestStack};

/// A Redis value as a bot wrote it, with the TTL it gave the key.
struct BotValue {
    key: String,
    value: String,
    ttl_ms: Option<u64>,
}

/// Every value format the parser accepts: the 22 demo tokens (raw JWTs, and Tradovate's JSON
/// with `accessToken`, `mdAccessToken`, `expirationTime`, `userId`, `name`), and JSON with
/// `access_token` + epoch `expires_at` + `main_account`, `token` + epoch milliseconds as a
/// string, pretty-printed JSON with escapes, unknown fields and a trailing newline, an auth
/// token with a naive time, and values whose expiry comes only from the key's TTL.
fn every_format(exp: DateTime<Utc>) -> Vec<BotValue> {
    let mut values: Vec<BotValue> = demo_tokens(exp)
        .into_iter()
        .map(|(key, value)| BotValue {
            key,
            value,
            ttl_ms: None,
        })
        .collect();
    let mut add = |account: &str, value: String, ttl_ms: Option<u64>| {
        values.push(BotValue {
            key: format!("token:{account}"),
            value,
            ttl_ms,
        })
    };
    add(
        "APEX_9100001",
        json!({"access_token": jwt("snake", exp), "expires_at": exp.timestamp(), "main_account": "APEX_136189"})
            .to_string(),
        None,
    );
    add(
        "APEX_9100002",
        json!({"token": jwt("plain", exp), "expires_at": exp.timestamp_millis().to_string()})
            .to_string(),
        Some(7_200_000),
    );
    add(
        "APEX_9100003",
        format!(
            "{{\n  \"name\": \"Jos\\u00e9 \\\"bot\\\" \u{1F680}\",\n  \"accessToken\" : \"{}\",\n  \"expirationTime\": \"{}\",\n  \"userId\": \"00042\",\n  \"extra\": [1, 2.50, {{\"nested\": null}}, 1e3]\n}}\n",
            jwt("pretty", exp),
            exp.format("%Y-%m-%dT%H:%M:%S%.3f+00:00")
        ),
        Some(3_600_000),
    );
    add(
        "APEX_9100004",
        json!({"token": "opaque-auth-token-1", "token_type": "auth", "expirationTime": exp.naive_utc().format("%Y-%m-%dT%H:%M:%S").to_string()})
            .to_string(),
        None,
    );
    add(
        "APEX_9100005",
        "opaque-raw-token-ttl-only".into(),
        Some(5_400_000),
    );
    add(
        "APEX_9100006",
        r#"{"accessToken":"opaque-json-ttl-only","userId":7}"#.into(),
        Some(5_400_000),
    );
    values
}

fn write_all(stack: &mut TestStack, values: &[BotValue]) {
    for v in values {
        match v.ttl_ms {
            Some(ttl) => stack.set_px(&v.key, &v.value, ttl),
            None => stack.set(&v.key, v.value.as_str()),
        }
    }
}

fn redis_get(stack: &mut TestStack, key: &str) -> Option<Vec<u8>> {
    redis::cmd("GET").arg(key).query(&mut stack.redis).unwrap()
}

fn pttl(stack: &mut TestStack, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(&mut stack.redis).unwrap()
}

fn flushdb(stack: &mut TestStack) {
    redis::cmd("FLUSHDB").exec(&mut stack.redis).unwrap();
}

/// Asserts every value is back under its key byte for byte, with a TTL that ends when the
/// token expires: `exp`, or for a token whose expiry came from the key's TTL, `synced_at` plus
/// that TTL (within seconds).
fn assert_restored_byte_for_byte(
    stack: &mut TestStack,
    values: &[BotValue],
    exp: DateTime<Utc>,
    synced_at: DateTime<Utc>,
) {
    for v in values {
        let got = redis_get(stack, &v.key).unwrap_or_else(|| panic!("{} not restored", v.key));
        assert_eq!(
            got,
            v.value.as_bytes(),
            "{} not restored byte for byte",
            v.key
        );
        let ttl = pttl(stack, &v.key);
        let ends = Utc::now() + Duration::milliseconds(ttl);
        let expected = match v.ttl_ms {
            // Expiry from the TTL alone: the key ends when it would have.
            Some(ttl) if !v.value.contains("xpir") && !v.value.starts_with("ey") => {
                synced_at + Duration::milliseconds(ttl as i64)
            }
            _ => exp,
        };
        assert!(ttl > 0, "{} restored without a TTL ({ttl})", v.key);
        assert!(
            (ends - expected).num_seconds().abs() <= 5,
            "{}: TTL ends at {ends}, the token at {expected}",
            v.key
        );
    }
}

/// Account, updated_at, fingerprints and ciphertext of every row: what "no rewrite" compares.
async fn row_versions(stack: &TestStack) -> Vec<Value> {
    stack
        .query(
            "select account_name, updated_at, token_fingerprint, access_token,
                    metadata->>'redis_value' as sealed,
                    is_active, expires_at
               from tradovate_tokens order by account_name",
        )
        .await
}

async fn active_count(stack: &TestStack) -> i64 {
    stack
        .query("select count(*) as n from tradovate_tokens where is_active")
        .await[0]["n"]
        .as_i64()
        .unwrap()
}

/// Asserts nothing in `texts` or the tables holds any of the plaintext tokens or values.
async fn assert_no_token_anywhere(stack: &TestStack, values: &[BotValue], texts: &[String]) {
    let dump = stack.dump().await;
    for v in values {
        let token = token_of_any(&v.value);
        for (what, text) in texts
            .iter()
            .map(|t| ("an answer", t))
            .chain([("the tables", &dump)])
        {
            assert!(!text.contains(&token), "a token of {} is in {what}", v.key);
            assert!(
                !text.contains(&v.value),
                "a value of {} is in {what}",
                v.key
            );
        }
    }
}

/// The token inside any of the formats above.
fn token_of_any(value: &str) -> String {
    match serde_json::from_str::<Value>(value) {
        Ok(v) => ["accessToken", "access_token", "token"]
            .iter()
            .find_map(|f| v[f].as_str())
            .unwrap()
            .to_string(),
        Err(_) => value.to_string(),
    }
}

fn services_with(stack: &TestStack, changes: &[(&'static str, &str)]) -> Services {
    Services::new(stack.config_with(changes))
}

#[tokio::test]
async fn a_flushed_redis_deactivates_nothing_and_restore_gives_back_every_format_byte_for_byte() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let values = every_format(exp);
    write_all(&mut stack, &values);
    let services = services_with(&stack, &[("RESTORE_ON_LOSS", "false")]);
    let synced_at = Utc::now();
    let first = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(first.tokens_synced, values.len(), "{:?}", first.skipped);
    let n = values.len();

    flushdb(&mut stack);
    let lost = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(lost.outcome, Outcome::RedisLossSuspected);
    assert_eq!(lost.deactivated, 0);
    let loss = lost.redis_loss.clone().unwrap();
    assert_eq!(
        (
            loss.missing,
            loss.active_unexpired,
            loss.redis_token_keys,
            loss.reason.as_str()
        ),
        (n, n, 0, "redis_empty")
    );
    assert!(lost.restore.is_none(), "RESTORE_ON_LOSS=false");
    assert_eq!(active_count(&stack).await, n as i64);
    for v in &values {
        let account = v.key.strip_prefix("token:").unwrap();
        let got = get(&services, account, Utc::now()).await.unwrap();
        assert_eq!(got.token, token_of_any(&v.value), "{account}");
        assert!(
            got.metadata.get("redis_value").is_none(),
            "get leaks the sealed value"
        );
    }
    let run = &stack
        .query("select outcome, status, deactivated, details->'redis_loss'->>'missing' as missing from sync_runs where kind = 'sync' order by started_at desc limit 1")
        .await[0];
    assert_eq!(
        run,
        &json!({"outcome": "redis_loss_suspected", "status": "succeeded", "deactivated": 0, "missing": n.to_string()})
    );

    let shown = status(&services).await.unwrap();
    assert!(shown.redis_loss_suspected);
    assert_eq!(shown.redis_loss_missing, n as u64);
    let since = shown.redis_loss_since.unwrap();
    sync(&services, Trigger::Cron).await.unwrap();
    assert_eq!(
        status(&services).await.unwrap().redis_loss_since,
        Some(since),
        "since when: the first sync that suspected it"
    );

    let before = row_versions(&stack).await;
    let report = restore(&services, Trigger::Http, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.restored.len(), n, "{:?}", report.skipped);
    assert!(report.already_present.is_empty() && report.skipped.is_empty());
    assert_restored_byte_for_byte(&mut stack, &values, exp, synced_at);
    assert!(!stack.lock_held(), "the restore left its lock");
    let run = &stack
        .query("select status, outcome, restored, already_present, skipped, tokens_seen from sync_runs where kind = 'restore'")
        .await[0];
    assert_eq!(
        run,
        &json!({"status": "succeeded", "outcome": "restored", "restored": n, "already_present": 0, "skipped": 0, "tokens_seen": n})
    );

    // A restored token syncs back as unchanged: no rewrite, same fingerprints, updated_at kept.
    let back = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(back.outcome, Outcome::Synced);
    assert_eq!(
        (
            back.inserted,
            back.updated,
            back.unchanged,
            back.deactivated
        ),
        (0, 0, n, 0)
    );
    assert_eq!(
        row_versions(&stack).await,
        before,
        "a restored token was rewritten"
    );
    let shown = status(&services).await.unwrap();
    assert!(!shown.redis_loss_suspected && shown.redis_loss_since.is_none());
    assert_eq!(shown.last_restore.unwrap().restored, Some(n as i64));

    let answers = vec![
        serde_json::to_string(&report).unwrap(),
        serde_json::to_string(&lost).unwrap(),
        serde_json::to_string(&shown_json(&services).await).unwrap(),
    ];
    assert_no_token_anywhere(&stack, &values, &answers).await;
}

async fn shown_json(services: &Services) -> Value {
    serde_json::to_value(status(services).await.unwrap()).unwrap()
}

#[tokio::test]
async fn a_sync_that_finds_redis_flushed_restores_in_the_same_invocation_within_the_budget() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let tokens = demo_tokens(exp);
    stack.seed(&tokens);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let before = row_versions(&stack).await;

    flushdb(&mut stack);
    let services = stack.services();
    let report = sync(&services, Trigger::Cron).await.unwrap();
    let used = services.subrequests.count();
    assert_eq!(report.outcome, Outcome::RedisLossSuspected);
    let restored = report
        .restore
        .as_ref()
        .expect("RESTORE_ON_LOSS is on by default");
    assert_eq!((restored.restored.len(), restored.deferred), (22, 0));
    assert!(report.restore_error.is_none());
    // Lock + 1 SCAN page in one pipeline, 1 SET pipeline, unlock; begin/finish sync,
    // begin/finish restore, the audit of the 22 secrets the restore opened.
    assert_eq!(used, 8, "subrequests of sync + restore for 22 tokens");
    println!("restore: sync + restore of 22 tokens after FLUSHDB: {used} subrequests (Upstash 3, PostgREST 5)");
    for (key, value) in &tokens {
        assert_eq!(
            redis_get(&mut stack, key).unwrap(),
            value.as_bytes(),
            "{key}"
        );
    }
    assert!(!stack.lock_held());
    let runs = stack
        .query("select kind, trigger, outcome from sync_runs order by started_at")
        .await;
    assert_eq!(
        runs[1..],
        [
            json!({"kind": "sync", "trigger": "cron", "outcome": "redis_loss_suspected"}),
            json!({"kind": "restore", "trigger": "cron", "outcome": "restored"}),
        ]
    );
    let again = sync(&services, Trigger::Cron).await.unwrap();
    assert_eq!((again.outcome, again.unchanged), (Outcome::Synced, 22));
    assert_eq!(row_versions(&stack).await, before);
}

#[tokio::test]
async fn redis_evicting_only_the_ttl_keys_is_a_loss_and_they_come_back() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let tokens = demo_tokens(exp);
    // 14 of the 22 keys have a TTL, as bots often set one; the 8 others have none.
    for (i, (key, value)) in tokens.iter().enumerate() {
        if i < 14 {
            stack.set_px(key, value, 3_600_000);
        } else {
            stack.set(key, value.as_str());
        }
    }
    sync(&stack.services(), Trigger::Http).await.unwrap();

    // Memory pressure: Redis itself evicts keys with a TTL first (volatile-ttl).
    let used: String = redis::cmd("INFO")
        .arg("memory")
        .query(&mut stack.redis)
        .unwrap();
    let used: u64 = used
        .lines()
        .find_map(|l| l.strip_prefix("used_memory:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("volatile-ttl")
        .exec(&mut stack.redis)
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(used + 256 * 1024)
        .exec(&mut stack.redis)
        .unwrap();
    let filler = "f".repeat(16 * 1024);
    for i in 0..200 {
        let written: redis::RedisResult<()> = redis::cmd("SET")
            .arg(format!("filler:{i}"))
            .arg(&filler)
            .query(&mut stack.redis);
        if written.is_err() {
            break; // out of memory with nothing left to evict: every TTL key is gone
        }
    }
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory")
        .arg(0)
        .exec(&mut stack.redis)
        .unwrap();
    redis::cmd("CONFIG")
        .arg("SET")
        .arg("maxmemory-policy")
        .arg("noeviction")
        .exec(&mut stack.redis)
        .unwrap();
    let left: Vec<String> = redis::cmd("KEYS")
        .arg("token:*")
        .query(&mut stack.redis)
        .unwrap();
    assert_eq!(
        left.len(),
        8,
        "Redis evicted exactly the TTL keys: {left:?}"
    );

    let services = stack.services();
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(report.outcome, Outcome::RedisLossSuspected);
    let loss = report.redis_loss.unwrap();
    assert_eq!(
        (loss.missing, loss.redis_token_keys, loss.reason.as_str()),
        (14, 8, "mass_disappearance")
    );
    assert_eq!(report.deactivated, 0);
    let restored = report.restore.unwrap();
    assert_eq!(restored.restored.len(), 14);
    assert_eq!(
        restored.already_present.len(),
        8,
        "the keys Redis kept are left as they are"
    );
    for (key, value) in &tokens {
        assert_eq!(
            redis_get(&mut stack, key).unwrap(),
            value.as_bytes(),
            "{key}"
        );
    }
    assert_eq!(active_count(&stack).await, 22);
}

#[tokio::test]
async fn keys_deleted_on_purpose_or_whose_ttl_ran_out_still_deactivate_their_tokens() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    stack.seed(&demo_tokens(exp));
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    // One key deleted on purpose.
    stack.del("token:PAAPEX2720450000006");
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (report.outcome, report.deactivated, report.redis_loss),
        (Outcome::Synced, 1, None)
    );
    assert!(!status(&services).await.unwrap().redis_loss_suspected);

    // Three more of 21 (under 50 %): still a healthy Redis.
    for key in [
        "token:PAAPEX2720450000005",
        "token:PAAPEX2720450000004",
        "token:PAAPEX2720450000003",
    ] {
        stack.del(key);
    }
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.outcome, report.deactivated), (Outcome::Synced, 3));
    assert!(report.restore.is_none());
}

#[tokio::test]
async fn one_key_of_two_is_not_a_loss_and_keys_whose_ttl_ran_out_are_not_either() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    stack.set("token:APEX_7000001", jwt("one", exp).as_str());
    stack.set("token:APEX_7000002", jwt("two", exp).as_str());
    // Keys whose TTL ends before their token does (a bot refreshing early), and keys whose
    // only expiry is their TTL: when the TTLs run out together, that is no loss.
    for i in 0..6 {
        let value = json!({"accessToken": jwt(&format!("early-{i}"), exp), "expirationTime": exp.to_rfc3339()});
        stack.set_px(&format!("token:APEX_700001{i}"), &value.to_string(), 1500);
        stack.set_px(
            &format!("token:APEX_700002{i}"),
            &format!("opaque-short-{i}"),
            1500,
        );
    }
    let services = stack.services();
    assert_eq!(
        sync(&services, Trigger::Http).await.unwrap().tokens_synced,
        14
    );
    tokio::time::sleep(std::time::Duration::from_millis(2500)).await;
    stack.del("token:APEX_7000002");

    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (report.outcome, report.deactivated, report.redis_loss),
        (Outcome::Synced, 13, None),
        "{}",
        report.message
    );
    assert_eq!(active_count(&stack).await, 1);
}

#[tokio::test]
async fn restore_never_overwrites_a_key_a_bot_rewrote_meanwhile() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let tokens = demo_tokens(exp);
    stack.seed(&tokens);
    let services = services_with(&stack, &[("RESTORE_ON_LOSS", "false")]);
    sync(&services, Trigger::Http).await.unwrap();
    flushdb(&mut stack);
    // The bot for APEX_136189 logged in again before the restore.
    let fresh = jwt("APEX_136189-fresh", exp + Duration::minutes(30));
    stack.set_px("token:APEX_136189", &fresh, 5_400_000);

    let report = restore(&services, Trigger::Http, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(
        (report.restored.len(), report.already_present.len()),
        (21, 1)
    );
    assert_eq!(report.already_present[0].redis_key, "token:APEX_136189");
    assert_eq!(
        redis_get(&mut stack, "token:APEX_136189").unwrap(),
        fresh.as_bytes(),
        "the bot's new token was overwritten"
    );
    let ttl = pttl(&mut stack, "token:APEX_136189");
    assert!(ttl > 5_000_000, "the bot's TTL was changed: {ttl}");
    // The next sync takes the bot's token.
    let back = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((back.updated, back.unchanged), (1, 21));
    assert_eq!(
        get(&services, "APEX_136189", Utc::now())
            .await
            .unwrap()
            .token,
        fresh
    );
}

#[tokio::test]
async fn restore_never_writes_an_expired_inactive_undecryptable_or_unknown_expiry_token() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    stack.set("token:APEX_6000001", jwt("good", exp).as_str());
    stack.set(
        "token:APEX_6000002",
        jwt("expired", Utc::now() - Duration::minutes(5)).as_str(),
    );
    stack.set("token:APEX_6000003", jwt("gone", exp).as_str());
    stack.set("token:APEX_6000004", "opaque-token-no-expiry");
    stack.set("token:APEX_6000005", jwt("corrupted", exp).as_str());
    let services = services_with(&stack, &[("RESTORE_ON_LOSS", "false")]);
    sync(&services, Trigger::Http).await.unwrap();
    stack.del("token:APEX_6000003");
    sync(&services, Trigger::Http).await.unwrap(); // deactivates APEX_6000003
    stack
        .pg
        .batch_execute(
            "update tradovate_tokens set access_token = 'v1:00000000:' || substr(access_token, 13)
              where account_name = 'APEX_6000005'",
        )
        .await
        .unwrap();
    flushdb(&mut stack);

    let report = restore(&services, Trigger::Http, RestoreOptions::default())
        .await
        .unwrap();
    assert_eq!(report.inactive, 1);
    let restored: Vec<&str> = report.restored.iter().map(|r| r.account.as_str()).collect();
    assert_eq!(restored, ["APEX_6000001"]);
    let skipped: BTreeMap<&str, &str> = report
        .skipped
        .iter()
        .map(|s| (s.account.as_str(), s.reason.as_str()))
        .collect();
    assert_eq!(skipped.len(), 3, "{skipped:?}");
    assert!(skipped["APEX_6000002"].contains("expired"));
    assert!(skipped["APEX_6000004"].contains("include_unknown_expiry"));
    assert!(skipped["APEX_6000005"].contains("cannot be decrypted"));
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("token:*")
        .query(&mut stack.redis)
        .unwrap();
    assert_eq!(keys, ["token:APEX_6000001"]);

    // Unknown expiry only when asked, with the configured TTL; without one the API says so.
    let with_ttl = services_with(
        &stack,
        &[
            ("RESTORE_ON_LOSS", "false"),
            ("RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS", "600"),
        ],
    );
    let options = RestoreOptions {
        include_unknown_expiry: true,
        ..RestoreOptions::default()
    };
    let report = restore(&with_ttl, Trigger::Http, options).await.unwrap();
    let restored: Vec<(&str, u64)> = report
        .restored
        .iter()
        .map(|r| (r.account.as_str(), r.ttl_ms))
        .collect();
    assert_eq!(restored, [("APEX_6000004", 600_000)]);
    assert_eq!(report.already_present.len(), 1);
    assert_eq!(
        redis_get(&mut stack, "token:APEX_6000004").unwrap(),
        b"opaque-token-no-expiry"
    );
    let ttl = pttl(&mut stack, "token:APEX_6000004");
    assert!((590_000..=600_000).contains(&ttl), "{ttl}");
    let answer = stack
        .api()
        .request(
            "POST",
            "/v1/restore?include_unknown_expiry=true",
            Some(&admin()),
            b"",
        )
        .await;
    answer.assert_error(400, "invalid_query", "include_unknown_expiry without a TTL");
    assert!(answer
        .message()
        .contains("RESTORE_UNKNOWN_EXPIRY_TTL_SECONDS"));
}

#[tokio::test]
async fn a_dry_run_lists_what_it_would_do_and_writes_nothing() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let services = services_with(&stack, &[("RESTORE_ON_LOSS", "false")]);
    sync(&services, Trigger::Http).await.unwrap();
    flushdb(&mut stack);
    stack.set("token:APEX_136189", tokens[0].1.as_str());
    let redis_before = stack.redis_state();
    let runs_before = stack
        .query("select * from sync_runs order by started_at")
        .await;
    let rows_before = row_versions(&stack).await;

    let api = stack.api_with(&[]);
    for path in [
        "/v1/restore?dry_run=true",
        "/token-manager?action=restore&dry_run=true",
    ] {
        let answer = api.request("POST", path, Some(&admin()), b"").await;
        assert_eq!(answer.status, 200, "{path}: {}", answer.body);
        assert_eq!(answer.body["dry_run"], true);
        assert_eq!(answer.body["run_id"], Value::Null);
        assert_eq!(
            answer.body["restored"].as_array().unwrap().len(),
            21,
            "{path}"
        );
        assert_eq!(answer.body["already_present"].as_array().unwrap().len(), 1);
        assert!(answer.body["message"]
            .as_str()
            .unwrap()
            .contains("nothing was written"));
    }
    assert_eq!(
        stack.redis_state(),
        redis_before,
        "a dry run wrote to Redis"
    );
    assert_eq!(
        stack
            .query("select * from sync_runs order by started_at")
            .await,
        runs_before,
        "a dry run recorded a run"
    );
    assert_eq!(row_versions(&stack).await, rows_before);
}

#[tokio::test]
async fn a_read_key_gets_403_and_answers_runs_and_tables_never_carry_a_token() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let values = every_format(exp);
    write_all(&mut stack, &values);
    let api = stack.api_with(&[]);
    for path in [
        "/v1/restore",
        "/token-manager?action=restore",
        "/?action=restore&dry_run=true",
    ] {
        api.request("POST", path, Some(&reader()), b"")
            .await
            .assert_error(403, "forbidden", path);
        api.request("POST", path, None, b"")
            .await
            .assert_error(401, "unauthorized", path);
    }
    api.request("GET", "/v1/restore", Some(&admin()), b"")
        .await
        .assert_error(405, "method_not_allowed", "GET /v1/restore");
    api.request("POST", "/v1/restore?dry_run=yes", Some(&admin()), b"")
        .await
        .assert_error(400, "invalid_query", "dry_run=yes");

    let mut answers = Vec::new();
    answers.push(
        api.request("POST", "/v1/sync", Some(&admin()), b"")
            .await
            .body
            .to_string(),
    );
    flushdb(&mut stack);
    let lost = api.request("POST", "/v1/sync", Some(&admin()), b"").await;
    assert_eq!(lost.status, 200);
    assert_eq!(lost.body["outcome"], "redis_loss_suspected");
    assert_eq!(
        lost.body["restore"]["restored"].as_array().unwrap().len(),
        values.len()
    );
    answers.push(lost.body.to_string());
    answers.push(
        api.request("POST", "/v1/restore?dry_run=true", Some(&admin()), b"")
            .await
            .body
            .to_string(),
    );
    let again = api
        .request("POST", "/v1/restore", Some(&admin()), b"")
        .await;
    assert_eq!(
        again.body["already_present"].as_array().unwrap().len(),
        values.len()
    );
    answers.push(again.body.to_string());
    answers.push(
        api.request("GET", "/v1/status", Some(&reader()), b"")
            .await
            .body
            .to_string(),
    );
    assert_no_token_anywhere(&stack, &values, &answers).await;
}

#[tokio::test]
async fn a_restore_and_a_sync_never_overlap() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let services = services_with(&stack, &[("RESTORE_ON_LOSS", "false")]);
    sync(&services, Trigger::Http).await.unwrap();
    flushdb(&mut stack);

    // A sync holds the lock: a restore is refused with 409 and writes nothing.
    stack.set_px(LOCK_KEY, "a-running-sync", 60_000);
    assert!(matches!(
        restore(&services, Trigger::Http, RestoreOptions::default()).await,
        Err(JobError::SyncInProgress { .. })
    ));
    let answer = stack
        .api()
        .request("POST", "/v1/restore", Some(&admin()), b"")
        .await;
    answer.assert_error(409, "sync_in_progress", "restore during a sync");
    assert!(answer.message().contains("restore"), "{}", answer.message());
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("token:*")
        .query(&mut stack.redis)
        .unwrap();
    assert!(keys.is_empty());
    stack.del(LOCK_KEY);

    // A restore holds the lock (its write hangs): a sync is refused with 409 meanwhile.
    let proxy = FaultProxy::start(var("TM_TEST_UPSTASH_URL"), |r| {
        if r.path == "/pipeline" && r.body.contains("\"NX\"") {
            Fault::Hang
        } else {
            Fault::Forward
        }
    })
    .await;
    let slow = services_with(
        &stack,
        &[
            ("UPSTASH_REDIS_REST_URL", &proxy.url),
            ("UPSTREAM_TIMEOUT_MS", "3000"),
        ],
    );
    let (restored, synced) = tokio::join!(
        restore(&slow, Trigger::Http, RestoreOptions::default()),
        async {
            tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
            sync(&services, Trigger::Http).await
        }
    );
    assert!(
        matches!(synced, Err(JobError::SyncInProgress { .. })),
        "{synced:?}"
    );
    assert!(
        matches!(restored, Err(JobError::Upstash(_))),
        "{restored:?}"
    );
    assert!(!stack.lock_held(), "a failed restore left its lock");
    assert_eq!(
        active_count(&stack).await,
        22,
        "the refused sync deactivated tokens"
    );
}

#[tokio::test]
async fn upstash_failing_mid_restore_claims_nothing_half_written_and_a_rerun_completes() {
    let mut stack = TestStack::start().await;
    let tokens = many_tokens("RESTORE", 60, "v1");
    stack.seed(&tokens);
    let plain = services_with(
        &stack,
        &[("RESTORE_ON_LOSS", "false"), ("SYNC_BATCH_SIZE", "20")],
    );
    sync(&plain, Trigger::Http).await.unwrap();
    for fault in [Fault::Answer(500), Fault::Drop, Fault::ForwardThenDrop] {
        flushdb(&mut stack);
        // The second of three SET pipelines fails.
        let proxy = FaultProxy::start(
            var("TM_TEST_UPSTASH_URL"),
            nth(
                1,
                |r| r.body.contains("\"NX\"") && r.path == "/pipeline",
                fault,
            ),
        )
        .await;
        let api = stack.api_with(&[
            ("UPSTASH_REDIS_REST_URL", &proxy.url),
            ("SYNC_BATCH_SIZE", "20"),
        ]);
        let answer = bounded(
            "restore",
            30,
            api.request("POST", "/v1/restore", Some(&admin()), b""),
        )
        .await;
        answer.assert_error(502, "upstash_error", &format!("{fault:?}"));
        assert_eq!(proxy.applied().len(), 1);
        assert!(!stack.lock_held(), "{fault:?}: lock left");
        let run = &stack
            .query("select status, restored, error, details->'restored' as listed from sync_runs where kind = 'restore' order by started_at desc limit 1")
            .await[0];
        assert_eq!(run["status"], "failed", "{fault:?}");
        assert!(run["error"].as_str().unwrap().contains("Upstash"), "{run}");
        assert_eq!(
            run["restored"], 20,
            "{fault:?}: only the first batch was written for sure"
        );
        // Everything claimed restored is in Redis, byte for byte.
        for entry in run["listed"].as_array().unwrap() {
            let key = entry["redis_key"].as_str().unwrap();
            let value = &tokens.iter().find(|(k, _)| k == key).unwrap().1;
            assert_eq!(redis_get(&mut stack, key).unwrap(), value.as_bytes());
        }
        let written: Vec<String> = redis::cmd("KEYS")
            .arg("token:*")
            .query(&mut stack.redis)
            .unwrap();
        let expected = if fault == Fault::ForwardThenDrop {
            40
        } else {
            20
        };
        assert_eq!(written.len(), expected, "{fault:?}");

        // The rerun completes the job; keys written by the lost batch are already present.
        let rerun = restore(&plain, Trigger::Http, RestoreOptions::default())
            .await
            .unwrap();
        assert_eq!(
            (rerun.restored.len(), rerun.already_present.len()),
            (60 - expected, expected),
            "{fault:?}"
        );
        for (key, value) in &tokens {
            assert_eq!(
                redis_get(&mut stack, key).unwrap(),
                value.as_bytes(),
                "{key}"
            );
        }
    }
}

#[tokio::test]
async fn the_subrequest_budget_bounds_one_invocation_and_the_next_restore_finishes() {
    let mut stack = TestStack::start().await;
    // With 10 keys per pipeline, 430 tokens fill the 50 subrequests of a sync + restore
    // exactly (3 for the sync, 3 to start, audit and record the restore, 43 pipelines, the
    // unlock).
    let tokens = many_tokens("BUDGET", 440, "v1");
    stack.seed(&tokens);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    flushdb(&mut stack);
    let services = services_with(&stack, &[("SYNC_BATCH_SIZE", "10")]);
    let report = sync(&services, Trigger::Cron).await.unwrap();
    let restored = report.restore.unwrap();
    assert_eq!((restored.restored.len(), restored.deferred), (430, 10));
    assert_eq!(
        services.subrequests.count(),
        50,
        "the whole budget, no more"
    );
    assert!(restored.message.contains("run restore again"));
    let run = &stack
        .query("select outcome, restored from sync_runs where kind = 'restore'")
        .await[0];
    assert_eq!(run, &json!({"outcome": "partial", "restored": 430}));
    assert!(!stack.lock_held());

    // The next sync: only 10 of 440 keys are missing now, far under the threshold, but the
    // loss is still pending (no restore completed), so they are not deactivated: restored.
    let next = stack.services();
    let report = sync(&next, Trigger::Cron).await.unwrap();
    assert_eq!(
        (report.outcome, report.deactivated),
        (Outcome::RedisLossSuspected, 0)
    );
    let loss = report.redis_loss.unwrap();
    assert_eq!(
        (loss.reason.as_str(), loss.missing),
        ("restore_pending", 10)
    );
    let rest = report.restore.unwrap();
    assert_eq!(
        (
            rest.restored.len(),
            rest.already_present.len(),
            rest.deferred
        ),
        (10, 430, 0)
    );
    assert!(next.subrequests.count() <= 50);
    assert_eq!(active_count(&stack).await, 440);
    for (key, value) in &tokens {
        assert_eq!(
            redis_get(&mut stack, key).unwrap(),
            value.as_bytes(),
            "{key}"
        );
    }
    // The restore completed: the loss is over, and a key deleted now deactivates its token.
    stack.del("token:BUDGET_0007");
    let healthy = sync(&next, Trigger::Cron).await.unwrap();
    assert_eq!((healthy.outcome, healthy.deactivated), (Outcome::Synced, 1));
}
