//! The renew pass natively against the real stack and a private tradovate-local per test:
//! window selection, one renewal per shared session written to every key, compare-and-set
//! against a bot's write, formats kept, each documented failure, the pause, the budget, two
//! passes at once, and a sync after a renewal writing nothing.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use token_manager::config::Config;
use token_manager::jobs::renew::{renew, RenewOutcome, RenewReport};
use token_manager::jobs::status::status;
use token_manager::jobs::sync::sync;
use token_manager::jobs::{get::get, list::list, list::ListQuery, JobError, Services, Trigger};
use token_manager::tradovate::Environment;
use tradovate_local::{Fault, FaultMode, Running, Settings};

use crate::support::{jwt, tradovate_login, TestStack};

/// A private stand-in whose logins mint tokens living `lifetime_seconds`.
async fn start_standin(lifetime_seconds: u64) -> Running {
    let running = tradovate_local::spawn(tradovate_local::Config::default())
        .await
        .expect("tradovate-local starts");
    set_lifetime(&running, lifetime_seconds);
    running
}

fn set_lifetime(standin: &Running, seconds: u64) {
    standin.state.set_settings(Settings {
        token_lifetime_seconds: seconds,
        omit_md_access_token: false,
    });
}

fn fault(mode: FaultMode, times: u32) -> Fault {
    serde_json::from_value(json!({ "mode": mode, "times": times })).unwrap()
}

/// Renewal on, against `standin` for both environments, plus `extra` settings.
pub(super) fn config(
    stack: &TestStack,
    standin: &Running,
    extra: &[(&'static str, &str)],
) -> Config {
    let url = standin.base_url();
    let mut changes = vec![
        ("RENEW_ENABLED", "true"),
        ("TRADOVATE_DEMO_URL", url.as_str()),
        ("TRADOVATE_LIVE_URL", url.as_str()),
    ];
    changes.extend_from_slice(extra);
    stack.config_with(&changes)
}

/// Tradovate-style JSON for a login answer.
fn tradovate_json(session: &Value) -> String {
    json!({
        "accessToken": session["accessToken"], "mdAccessToken": session["mdAccessToken"],
        "expirationTime": session["expirationTime"], "userId": session["userId"], "name": session["name"],
    })
    .to_string()
}

fn token(session: &Value) -> String {
    session["accessToken"].as_str().unwrap().to_string()
}

/// The shared layout for one main account: the main key holds JSON, `subs` sub-accounts the
/// bare token, the second sub-account JSON. Returns the keys.
fn seed_shared(stack: &mut TestStack, digits: &str, subs: usize, session: &Value) -> Vec<String> {
    let main = format!("token:APEX_{digits}");
    stack.set(&main, tradovate_json(session).as_str());
    let mut keys = vec![main];
    for n in 1..=subs {
        let key = format!("token:PAAPEX{digits}{n:07}");
        if n == 2 {
            stack.set(&key, tradovate_json(session).as_str());
        } else {
            stack.set(&key, token(session).as_str());
        }
        keys.push(key);
    }
    keys
}

fn get_value(stack: &mut TestStack, key: &str) -> Option<String> {
    redis::cmd("GET").arg(key).query(&mut stack.redis).unwrap()
}

fn pttl(stack: &mut TestStack, key: &str) -> i64 {
    redis::cmd("PTTL").arg(key).query(&mut stack.redis).unwrap()
}

fn access_token_of(value: &str) -> String {
    token_manager::domain::token_value::parse_token_value(value.as_bytes())
        .unwrap()
        .access_token
}

fn result_for<'a>(
    report: &'a RenewReport,
    account: &str,
) -> &'a token_manager::jobs::renew::SessionResult {
    report
        .results
        .iter()
        .find(|r| r.accounts.iter().any(|a| a == account))
        .unwrap_or_else(|| panic!("no session for {account}: {report:?}"))
}

fn time(value: &Value) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(value.as_str().unwrap())
        .unwrap()
        .with_timezone(&Utc)
}

/// One session of 1 main + 2 sub-accounts from a 10-minute login, synced.
async fn one_session(stack: &mut TestStack, standin: &Running) -> (Value, Vec<String>) {
    let session = tradovate_login(&standin.base_url(), "apex136189").await;
    set_lifetime(standin, 4800);
    let keys = seed_shared(stack, "136189", 2, &session);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    (session, keys)
}

#[tokio::test]
async fn only_active_tokens_expiring_within_the_window_and_not_past_are_picked() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(4800).await;
    let now = Utc::now();
    stack.set(
        "token:APEX_1000001",
        jwt("soon", now + Duration::minutes(10)).as_str(),
    );
    stack.set(
        "token:APEX_1000002",
        jwt("later", now + Duration::minutes(60)).as_str(),
    );
    stack.set(
        "token:APEX_1000003",
        jwt("past", now - Duration::minutes(1)).as_str(),
    );
    stack.set("token:APEX_1000004", "opaque-token-of-unknown-expiry");
    stack.set(
        "token:APEX_1000005",
        jwt("gone", now + Duration::minutes(5)).as_str(),
    );
    stack.set(
        "token:APEX_1000006",
        jwt("edge", now + Duration::minutes(14)).as_str(),
    );
    sync(&stack.services(), Trigger::Http).await.unwrap();
    stack.del("token:APEX_1000005");
    sync(&stack.services(), Trigger::Http).await.unwrap(); // APEX_1000005 becomes inactive

    let services = Services::new(config(&stack, &standin, &[]));
    let report = renew(&services, Trigger::Http, true).await.unwrap();
    let mut picked: Vec<&str> = report.results.iter().map(|r| r.session.as_str()).collect();
    picked.sort();
    assert_eq!(picked, ["APEX_1000001", "APEX_1000006"], "{report:?}");
    assert_eq!((report.candidates, report.sessions), (2, 2));
    assert!(report
        .results
        .iter()
        .all(|r| r.outcome == RenewOutcome::WouldRenew));
    assert!(report.dry_run && report.run_id.is_none());
    assert_eq!(
        standin.state.stats().renew_requests,
        0,
        "a dry run calls nobody"
    );

    // A wider window takes the 60-minute token too.
    let wide = Services::new(config(&stack, &standin, &[("RENEW_BEFORE_MINUTES", "61")]));
    assert_eq!(
        renew(&wide, Trigger::Http, true).await.unwrap().candidates,
        3
    );

    // Renewal off: a real pass is refused, a dry run still answers.
    let off = stack.services();
    assert!(matches!(
        renew(&off, Trigger::Http, false).await,
        Err(JobError::RenewDisabled)
    ));
    assert_eq!(
        renew(&off, Trigger::Http, true).await.unwrap().candidates,
        2
    );
}

#[tokio::test]
async fn a_shared_token_is_renewed_once_written_to_all_its_keys_and_the_next_sync_writes_nothing() {
    let mut stack = TestStack::start().await;
    let demo = start_standin(600).await;
    let live = start_standin(600).await;
    let sessions = [
        (
            "136189",
            7,
            tradovate_login(&demo.base_url(), "apex136189").await,
        ),
        (
            "266668",
            6,
            tradovate_login(&live.base_url(), "apex266668").await,
        ),
        (
            "272045",
            6,
            tradovate_login(&demo.base_url(), "apex272045").await,
        ),
    ];
    set_lifetime(&demo, 4800);
    set_lifetime(&live, 4800);
    let mut keys = Vec::new();
    for (digits, subs, session) in &sessions {
        keys.push(seed_shared(&mut stack, digits, *subs, session));
    }
    let before: Vec<Vec<String>> = keys
        .iter()
        .map(|ks| {
            ks.iter()
                .map(|k| get_value(&mut stack, k).unwrap())
                .collect()
        })
        .collect();
    sync(&stack.services(), Trigger::Http).await.unwrap();

    let demo_url = demo.base_url();
    let live_url = live.base_url();
    let services = Services::new(stack.config_with(&[
        ("RENEW_ENABLED", "true"),
        ("TRADOVATE_DEMO_URL", &demo_url),
        ("TRADOVATE_LIVE_URL", &live_url),
        ("TRADOVATE_LIVE_ACCOUNTS", "APEX_266668"),
    ]));
    let started = Utc::now();
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    assert!(report.success, "{report:?}");
    assert_eq!(
        (
            report.candidates,
            report.sessions,
            report.renewed,
            report.failed,
            report.skipped
        ),
        (22, 3, 3, 0, 0)
    );
    assert_eq!(
        (
            report.keys_written,
            report.keys_conflicted,
            report.tokens_updated
        ),
        (22, 0, 22)
    );
    assert_eq!(report.renewals_last_hour, 3);
    assert_eq!(
        result_for(&report, "PAAPEX2666680000004").environment,
        Environment::Live
    );
    // One renewal per session, each at its environment's server.
    let (demo_stats, live_stats) = (demo.state.stats(), live.state.stats());
    assert_eq!(
        (demo_stats.renew_requests, live_stats.renew_requests),
        (2, 1)
    );
    assert!(demo_stats
        .sessions
        .iter()
        .chain(&live_stats.sessions)
        .all(|s| s.renewals == 1));

    for ((_, _, session), (ks, old_values)) in sessions.iter().zip(keys.iter().zip(&before)) {
        let old = token(session);
        let renewed = access_token_of(&get_value(&mut stack, &ks[0]).unwrap());
        assert_ne!(renewed, old);
        for (key, old_value) in ks.iter().zip(old_values) {
            let value = get_value(&mut stack, key).unwrap();
            assert_eq!(
                access_token_of(&value),
                renewed,
                "{key} holds the session's new token"
            );
            assert_eq!(
                value.starts_with('{'),
                old_value.starts_with('{'),
                "{key} kept its format"
            );
            let ttl = pttl(&mut stack, key);
            assert!(
                (4_700_000..=4_800_000).contains(&ttl),
                "{key}: TTL {ttl} ms is the new lifetime"
            );
        }
        let account = ks[0].trim_start_matches("token:");
        let got = get(&services, account, Utc::now()).await.unwrap();
        assert_eq!(got.token, renewed, "Supabase holds the new token");
        assert_eq!(got.metadata["renewal_count"], 1);
        assert_eq!(got.metadata["renew_state"], "renewed");
        assert!(time(&got.metadata["renewed_at"]) >= started);
        assert!(got.expires_at.unwrap() > Utc::now() + Duration::minutes(75));
    }

    // The next sync finds nothing to change; the renewal state survives it.
    let after = sync(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!(
        (after.inserted, after.updated, after.unchanged),
        (0, 0, 22),
        "{after:?}"
    );
    let listed = list(
        &services,
        &ListQuery {
            limit: 100,
            ..ListQuery::default()
        },
        Utc::now(),
    )
    .await
    .unwrap();
    assert!(listed
        .tokens
        .iter()
        .all(|t| t.renew_state.as_deref() == Some("renewed")
            && t.renewal_count == Some(1)
            && t.renewed_at.is_some()));
    let live_listed = listed
        .tokens
        .iter()
        .filter(|t| t.environment == Some(Environment::Live))
        .count();
    assert_eq!(live_listed, 7);

    // The renewed tokens are outside the window: the next pass has nothing to do.
    let again = renew(&services, Trigger::Cron, false).await.unwrap();
    assert_eq!((again.candidates, again.renewed), (0, 0));

    // Recorded in sync_runs with counts, and no token anywhere but the ciphertexts.
    let runs = stack
        .query("select trigger, status, tokens_seen, updated, details from sync_runs where kind = 'renew' order by started_at")
        .await;
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0]["trigger"].clone(), runs[0]["status"].clone()),
        (json!("http"), json!("succeeded"))
    );
    assert_eq!(
        (runs[0]["tokens_seen"].clone(), runs[0]["updated"].clone()),
        (json!(22), json!(22))
    );
    assert_eq!(runs[0]["details"]["renewed"], 3);
    let dump = stack.dump().await;
    let answer = serde_json::to_string(&report).unwrap();
    for ((_, _, session), ks) in sessions.iter().zip(&keys) {
        let renewed = access_token_of(&get_value(&mut stack, &ks[0]).unwrap());
        for secret in [token(session), renewed] {
            assert!(
                !dump.contains(&secret) && !answer.contains(&secret),
                "a token leaked"
            );
        }
    }
}

#[tokio::test]
async fn values_keep_their_bytes_apart_from_the_renewed_fields() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    let session = tradovate_login(&standin.base_url(), "apex272045").await;
    set_lifetime(&standin, 4800);
    let old = token(&session);
    let old_md = session["mdAccessToken"].as_str().unwrap();
    let old_exp = time(&session["expirationTime"]);
    let json_value = format!(
        "{{ \"name\" : \"apex272045\",\n  \"accessToken\":\"{old}\", \"extra\": {{\"nested\": [1, 2, {{\"accessToken\": \"x\"}}]}},\n  \"expirationTime\": {}, \"mdAccessToken\": \"{old_md}\", \"userId\": 272045 }}",
        old_exp.timestamp_millis()
    );
    stack.set("token:APEX_272045", json_value.as_str());
    stack.set("token:PAAPEX2720450000001", old.as_str());
    stack.set(
        "token:PAAPEX2720450000002",
        json!({ "access_token": old, "main_account": "APEX_272045" })
            .to_string()
            .as_str(),
    );
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let services = Services::new(config(&stack, &standin, &[]));
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    assert_eq!((report.renewed, report.keys_written), (1, 3), "{report:?}");

    let main = get_value(&mut stack, "token:APEX_272045").unwrap();
    let parsed = token_manager::domain::token_value::parse_token_value(main.as_bytes()).unwrap();
    let new_exp = parsed.explicit_expiry.unwrap();
    let want = json_value
        .replace(
            &format!("\"{old}\""),
            &format!("\"{}\"", parsed.access_token),
        )
        .replace(
            &old_exp.timestamp_millis().to_string(),
            &new_exp.timestamp_millis().to_string(),
        )
        .replace(old_md, parsed.md_access_token.as_deref().unwrap());
    assert_eq!(
        main, want,
        "only the renewed values changed, epoch milliseconds stayed so"
    );
    assert_ne!(parsed.md_access_token.as_deref(), Some(old_md));
    assert_eq!(
        get_value(&mut stack, "token:PAAPEX2720450000001").unwrap(),
        parsed.access_token
    );
    let sub = get_value(&mut stack, "token:PAAPEX2720450000002").unwrap();
    assert_eq!(
        sub,
        format!(
            r#"{{"access_token":"{}","main_account":"APEX_272045","expirationTime":"{}","mdAccessToken":"{}"}}"#,
            parsed.access_token,
            serde_json::from_str::<Value>(&sub).unwrap()["expirationTime"]
                .as_str()
                .unwrap(),
            parsed.md_access_token.as_deref().unwrap()
        ),
        "a missing expirationTime and mdAccessToken are added after the last member"
    );
    let after = sync(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!((after.updated, after.unchanged), (0, 3));

    // Without mdAccessToken in the answer, the stored one is kept as it is.
    let standin2 = start_standin(600).await;
    let session2 = tradovate_login(&standin2.base_url(), "someone").await;
    standin2.state.set_settings(Settings {
        token_lifetime_seconds: 4800,
        omit_md_access_token: true,
    });
    let value = tradovate_json(&session2);
    stack.set("token:APEX_9000001", value.as_str());
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let services2 = Services::new(config(&stack, &standin2, &[]));
    assert_eq!(
        renew(&services2, Trigger::Http, false)
            .await
            .unwrap()
            .renewed,
        1
    );
    let renewed: Value =
        serde_json::from_str(&get_value(&mut stack, "token:APEX_9000001").unwrap()).unwrap();
    assert_eq!(renewed["mdAccessToken"], session2["mdAccessToken"]);
    assert_ne!(renewed["accessToken"], session2["accessToken"]);
}

#[tokio::test]
async fn a_key_a_bot_rewrote_during_the_renewal_keeps_the_bots_token() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    let (session, keys) = one_session(&mut stack, &standin).await;
    standin.state.set_fault(Some(Fault {
        delay_ms: 1500,
        ..fault(FaultMode::Slow, 1)
    }));
    let services = Services::new(config(&stack, &standin, &[]));
    let pass = tokio::spawn({
        let services = services.clone();
        async move { renew(&services, Trigger::Http, false).await }
    });
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let bot = jwt("a-bot-logged-in-again", Utc::now() + Duration::minutes(80));
    stack.set(&keys[1], bot.as_str());
    let report = pass.await.unwrap().unwrap();
    assert_eq!(
        (report.renewed, report.keys_written, report.keys_conflicted),
        (1, 2, 1),
        "{report:?}"
    );
    assert_eq!(
        get_value(&mut stack, &keys[1]).unwrap(),
        bot,
        "the bot's token was not overwritten"
    );
    let renewed = access_token_of(&get_value(&mut stack, &keys[0]).unwrap());
    assert_ne!(renewed, token(&session));
    assert_eq!(
        access_token_of(&get_value(&mut stack, &keys[2]).unwrap()),
        renewed
    );
    // Supabase: the rewritten key's account kept its old row; the next sync stores the bot's.
    let account = keys[1].trim_start_matches("token:");
    assert_eq!(
        get(&services, account, Utc::now()).await.unwrap().token,
        token(&session)
    );
    let after = sync(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!(after.updated, 1);
    assert_eq!(
        get(&services, account, Utc::now()).await.unwrap().token,
        bot
    );
}

#[tokio::test]
async fn error_text_fails_the_session_and_the_minimum_interval_holds_it_back() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    let (session, keys) = one_session(&mut stack, &standin).await;
    let before = get_value(&mut stack, &keys[0]);
    standin
        .state
        .set_fault(Some(fault(FaultMode::ErrorText, 1)));
    let services = Services::new(config(&stack, &standin, &[]));
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    assert!(!report.success);
    assert_eq!((report.failed, report.renewed), (1, 0));
    let reason = report.results[0].reason.as_deref().unwrap();
    assert!(reason.contains("errorText: Access is denied"), "{reason}");
    assert_eq!(get_value(&mut stack, &keys[0]), before, "Redis unchanged");
    let row = stack.token_row("APEX_136189").await;
    assert_eq!(row["metadata"]["renew_state"], "renew_error");

    let again = renew(&services, Trigger::Http, false).await.unwrap();
    assert_eq!(again.results[0].outcome, RenewOutcome::Skipped);
    assert!(again.results[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("RENEW_MIN_INTERVAL_MINUTES"));
    assert_eq!(standin.state.stats().renew_requests, 1);
    assert_eq!(
        get(&services, "APEX_136189", Utc::now())
            .await
            .unwrap()
            .token,
        token(&session)
    );
}

/// One session (1 main + 2 sub-accounts) whose renewal Tradovate refuses with 401: the
/// stand-in, the renewal services and the keys, after the refused pass.
pub(super) async fn refused_session(stack: &mut TestStack) -> (Running, Services, Vec<String>) {
    let standin = start_standin(600).await;
    let (_, keys) = one_session(stack, &standin).await;
    standin
        .state
        .set_fault(Some(fault(FaultMode::Unauthorized, 1)));
    let services = Services::new(config(stack, &standin, &[]));
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    assert_eq!(report.failed, 1);
    assert!(report.results[0].reason.as_deref().unwrap().contains("401"));
    (standin, services, keys)
}

#[tokio::test]
async fn a_401_marks_the_session_until_a_bot_writes_a_new_token() {
    let mut stack = TestStack::start().await;
    let (standin, services, keys) = refused_session(&mut stack).await;
    let rows = stack
        .query("select metadata->>'renew_state' as state from tradovate_tokens order by 1")
        .await;
    assert!(
        rows.iter().all(|r| r["state"] == "renew_failed"),
        "{rows:?}"
    );
    let figures = status(&services).await.unwrap();
    assert_eq!(figures.renewal.unwrap().renew_failed_tokens, 3);

    // A sync with the same token keeps the mark; the pass does not try again.
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let again = renew(&services, Trigger::Http, false).await.unwrap();
    assert!(
        again.results[0]
            .reason
            .as_deref()
            .unwrap()
            .contains("refused"),
        "{again:?}"
    );
    assert_eq!(standin.state.stats().renew_requests, 1);

    // The bot logs in again: a new token in Redis, synced, is renewed normally.
    set_lifetime(&standin, 600);
    let fresh = tradovate_login(&standin.base_url(), "apex136189").await;
    set_lifetime(&standin, 4800);
    seed_shared(&mut stack, "136189", 2, &fresh);
    let synced = sync(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!(synced.updated, keys.len() as u64);
    let renewed = renew(&services, Trigger::Http, false).await.unwrap();
    assert_eq!(renewed.renewed, 1, "{renewed:?}");
}

/// A penalty answer pauses every renewal until its wait has passed; status shows it.
async fn pause_case(mode: FaultMode, p_time: u64, expected_wait: i64, why: &str) {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    one_session(&mut stack, &standin).await;
    set_lifetime(&standin, 600);
    let second = tradovate_login(&standin.base_url(), "apex266668").await;
    set_lifetime(&standin, 4800);
    seed_shared(&mut stack, "266668", 1, &second);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    standin.state.set_fault(Some(Fault {
        p_time,
        ..fault(mode, 1)
    }));
    let services = Services::new(config(&stack, &standin, &[]));
    let started = Utc::now();
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    assert!(!report.success);
    assert_eq!(
        (report.failed, report.skipped, report.renewed),
        (1, 1, 0),
        "{report:?}"
    );
    let until = report.renewals_paused_until.expect("paused");
    let wait = (until - started).num_seconds();
    assert!(
        (expected_wait - 2..=expected_wait + 2).contains(&wait),
        "{wait} s"
    );
    assert!(report
        .renewals_paused_reason
        .as_deref()
        .unwrap()
        .contains(why));
    assert_eq!(
        standin.state.stats().renew_requests,
        1,
        "the pass stopped at the penalty"
    );

    let figures = status(&services).await.unwrap();
    assert_eq!(figures.renewals_paused_until, Some(until));
    assert!(figures.renewals_paused_reason.unwrap().contains(why));
    let paused = renew(&services, Trigger::Cron, false).await.unwrap();
    assert_eq!((paused.renewed, paused.skipped), (0, 2));
    assert!(paused
        .results
        .iter()
        .all(|r| r.reason.as_deref().unwrap().contains("paused until")));
    assert_eq!(
        standin.state.stats().renew_requests,
        1,
        "nothing is asked while paused"
    );
}

#[tokio::test]
async fn a_penalty_ticket_pauses_every_renewal_for_its_p_time() {
    pause_case(FaultMode::PTicket, 60, 60, "penalty ticket (p-time 60 s)").await;
}

#[tokio::test]
async fn a_captcha_pauses_every_renewal_for_an_hour() {
    pause_case(FaultMode::Captcha, 30, 3600, "captcha").await;
}

#[tokio::test]
async fn a_429_pauses_every_renewal_for_an_hour() {
    pause_case(FaultMode::TooManyRequests, 0, 3600, "429").await;
}

#[tokio::test]
async fn a_slow_tradovate_is_given_up_on_after_the_upstream_timeout() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    let (_, keys) = one_session(&mut stack, &standin).await;
    let before = get_value(&mut stack, &keys[0]);
    standin.state.set_fault(Some(Fault {
        delay_ms: 3000,
        ..fault(FaultMode::Slow, 1)
    }));
    let services = Services::new(config(&stack, &standin, &[("UPSTREAM_TIMEOUT_MS", "300")]));
    let started = std::time::Instant::now();
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.failed, 1);
    assert!(report.results[0]
        .reason
        .as_deref()
        .unwrap()
        .contains("within 300 ms"));
    assert_eq!(get_value(&mut stack, &keys[0]), before);
    assert!(
        report.renewals_paused_until.is_none(),
        "a timeout pauses nothing"
    );
}

#[tokio::test]
async fn the_hourly_budget_limits_renewals_across_passes() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    for (digits, name) in [
        ("136189", "apex136189"),
        ("266668", "apex266668"),
        ("272045", "apex272045"),
    ] {
        let session = tradovate_login(&standin.base_url(), name).await;
        seed_shared(&mut stack, digits, 1, &session);
    }
    set_lifetime(&standin, 4800);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let services = Services::new(config(&stack, &standin, &[("RENEW_HOURLY_BUDGET", "2")]));
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    assert_eq!(
        (report.renewed, report.skipped, report.renewals_last_hour),
        (2, 1, 2),
        "{report:?}"
    );
    let skipped = report
        .results
        .iter()
        .find(|r| r.outcome == RenewOutcome::Skipped)
        .unwrap();
    assert!(skipped
        .reason
        .as_deref()
        .unwrap()
        .contains("RENEW_HOURLY_BUDGET"));
    let again = renew(&services, Trigger::Http, false).await.unwrap();
    assert_eq!(
        (again.candidates, again.renewed, again.skipped),
        (2, 0, 1),
        "{again:?}"
    );
    assert_eq!(standin.state.stats().renew_requests, 2);
    assert_eq!(
        status(&services)
            .await
            .unwrap()
            .renewal
            .unwrap()
            .renewals_last_hour,
        Some(2)
    );
}

#[tokio::test]
async fn two_passes_at_once_renew_each_session_once() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    for (digits, name) in [("136189", "apex136189"), ("266668", "apex266668")] {
        let session = tradovate_login(&standin.base_url(), name).await;
        seed_shared(&mut stack, digits, 3, &session);
    }
    set_lifetime(&standin, 4800);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    standin.state.set_fault(Some(Fault {
        delay_ms: 700,
        ..fault(FaultMode::Slow, 2)
    }));
    let services = Services::new(config(&stack, &standin, &[]));
    let (a, b) = tokio::join!(
        renew(&services, Trigger::Http, false),
        renew(&services, Trigger::Cron, false)
    );
    let (done, refused) = match (a, b) {
        (Ok(done), Err(refused)) | (Err(refused), Ok(done)) => (done, refused),
        other => panic!("exactly one pass may run: {other:?}"),
    };
    assert!(
        matches!(refused, JobError::RenewInProgress { .. }),
        "{refused}"
    );
    assert_eq!(done.renewed, 2);
    let stats = standin.state.stats();
    assert_eq!(stats.renew_requests, 2);
    assert!(stats.sessions.iter().all(|s| s.renewals == 1));
    // The lock is released: a later pass runs (and finds nothing left in the window).
    assert_eq!(
        renew(&services, Trigger::Http, false)
            .await
            .unwrap()
            .candidates,
        0
    );
}

/// Request lines in the log file named by the setting `var` that `is_request` accepts.
fn requests_in(var: &str, is_request: fn(&str) -> bool) -> usize {
    std::fs::read_to_string(crate::support::var(var))
        .unwrap()
        .lines()
        .filter(|l| is_request(l))
        .count()
}

/// (Upstash, PostgREST) requests served so far, from their logs.
fn upstream_requests() -> (usize, usize) {
    flush_pause();
    (
        requests_in("TM_TEST_UPSTASH_LOG", |l| {
            l.starts_with("upstash-local request ")
        }),
        requests_in("TM_TEST_POSTGREST_LOG", |l| l.contains(" HTTP/1.1\" ")),
    )
}

/// Gives the servers a moment to write their log lines.
fn flush_pause() {
    std::thread::sleep(std::time::Duration::from_millis(150));
}

#[tokio::test]
async fn a_pass_costs_six_subrequests_plus_one_per_renewed_session() {
    let mut stack = TestStack::start().await;
    let standin = start_standin(600).await;
    for (digits, subs, name) in [
        ("136189", 7, "apex136189"),
        ("266668", 6, "apex266668"),
        ("272045", 6, "apex272045"),
    ] {
        let session = tradovate_login(&standin.base_url(), name).await;
        seed_shared(&mut stack, digits, subs, &session);
    }
    set_lifetime(&standin, 4800);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let services = Services::new(config(&stack, &standin, &[]));
    let (upstash_before, postgrest_before) = upstream_requests();
    let report = renew(&services, Trigger::Http, false).await.unwrap();
    let (upstash_after, postgrest_after) = upstream_requests();
    let (upstash, postgrest) = (
        upstash_after - upstash_before,
        postgrest_after - postgrest_before,
    );
    let tradovate = standin.state.stats().renew_requests as usize;
    assert_eq!((report.renewed, report.keys_written), (3, 22));
    // PostgREST: the candidates, the audit of the 22 tokens opened (one write), the results.
    assert_eq!(
        (upstash, postgrest, tradovate),
        (3, 3, 3),
        "Upstash, PostgREST, Tradovate"
    );
    assert_eq!(
        stack
            .count("select 1 from token_reads where key_name = 'job:renew' and outcome = 200")
            .await,
        22
    );
    eprintln!(
        "renew pass: {} sessions, {} keys: Upstash {upstash} + PostgREST {postgrest} + Tradovate {tradovate} = {} subrequests",
        report.renewed,
        report.keys_written,
        upstash + postgrest + tradovate
    );
    // A pass with nothing in the window opens nothing (no audit write): Upstash 3, PostgREST 2,
    // and no Tradovate call.
    let (u0, p0) = upstream_requests();
    assert_eq!(
        renew(&services, Trigger::Http, false)
            .await
            .unwrap()
            .candidates,
        0
    );
    let (u1, p1) = upstream_requests();
    assert_eq!((u1 - u0, p1 - p0), (3, 2));
    assert_eq!(standin.state.stats().renew_requests, 3);
}
