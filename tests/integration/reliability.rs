//! Reliability: bad HTTP input, bad Redis data, upstream faults, concurrency and idempotence.
//! Every case checks the answer *and* what is left in Postgres and Redis: no row lost, nothing
//! half-written, the sync lock free again, failed runs recorded.
//!
//! Faults are injected with the programs of `support::faults`, each stopped when its test ends.
//! Adversarial parser input is property-tested next to the parser (src/domain).

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration as StdDuration, Instant};

use chrono::{Duration, Utc};
use serde_json::{json, Value};
use token_manager::domain::account::AccountName;
use token_manager::http::MAX_BODY_BYTES;
use token_manager::jobs::sync::{sync, LOCK_KEY};
use token_manager::jobs::{cleanup::cleanup, get::get, JobError, Services, Trigger};

use crate::support::faults::{
    authenticator_uri, free_port, nth, pg_target, Cuttable, Fault, FaultProxy, OwnPostgrest, Silent,
};
use crate::support::{
    admin, admin_key, bearer, bounded, demo_tokens, enc, jwt, jwt_with_payload, many_tokens,
    read_key, reader, token_of, var, TestStack,
};

// ---------------------------------------------------------------------------------------------
// Helpers.

/// Asserts that every token key in Redis reads back through `get` as exactly its value.
async fn assert_converged(stack: &mut TestStack, services: &Services) -> usize {
    let state = stack.redis_state();
    let mut checked = 0;
    for (key, value) in state {
        let key = String::from_utf8(key).unwrap();
        let Some(account) = key.strip_prefix("token:") else {
            continue;
        };
        let value = String::from_utf8(value).unwrap();
        let got = get(services, account, Utc::now())
            .await
            .unwrap_or_else(|e| panic!("{account}: {e}"));
        assert_eq!(got.token, token_of(&value), "{account} did not converge");
        checked += 1;
    }
    checked
}

// ---------------------------------------------------------------------------------------------
// Bad HTTP input.

/// Routes with the scope they need, as (method, path).
const ADMIN_ROUTES: &[(&str, &str)] = &[
    ("POST", "/v1/sync"),
    ("POST", "/v1/cleanup"),
    ("POST", "/v1/reencrypt"),
    ("GET", "/token-manager?action=sync"),
    ("POST", "/token-manager?action=sync"),
    ("GET", "/token-manager?action=cleanup"),
    ("POST", "/token-manager?action=cleanup"),
    ("POST", "/?action=sync"),
    ("GET", "/functions/v1/token-manager?action=cleanup"),
];
const READ_ROUTES: &[(&str, &str)] = &[
    ("GET", "/v1/status"),
    ("GET", "/v1/tokens"),
    (
        "GET",
        "/v1/tokens?main_account=a&active=true&expiring_within=1d",
    ),
    ("GET", "/v1/tokens/a"),
    ("GET", "/token-manager?action=status"),
    ("POST", "/token-manager?action=status"),
    ("GET", "/token-manager?action=get&account=a"),
    ("POST", "/?action=get&account=a"),
    ("GET", "/functions/v1/token-manager?action=get&account=a"),
];

#[tokio::test]
async fn every_route_refuses_no_key_a_wrong_key_and_a_read_key_on_admin_actions() {
    let mut stack = TestStack::start().await;
    stack.set(
        "token:a",
        jwt("a", Utc::now() + Duration::hours(1)).as_str(),
    );
    let api = stack.api_with(&[]);
    assert_eq!(
        api.request("POST", "/v1/sync", Some(&admin()), b"")
            .await
            .status,
        200
    );
    let (rows_before, redis_before) = (stack.rows().await, stack.redis_state());
    let runs_before = stack.count("select 1 from sync_runs").await;

    let admin_key = admin_key();
    let read_key = read_key();
    let wrong: Vec<Option<String>> = vec![
        None,
        Some(String::new()),
        Some("Bearer".into()),
        Some("Bearer ".into()),
        Some(bearer("not-a-key-but-long-enough-to-look-like-one-0000")),
        Some(bearer(&format!("{admin_key}x"))),
        Some(bearer(&admin_key[..admin_key.len() - 1])),
        Some(bearer(&admin_key.to_uppercase())),
        Some(format!("Basic {admin_key}")),
        Some(format!("Token {admin_key}")),
        Some(admin_key.clone()),
        Some(bearer(&format!("{read_key},{admin_key}"))),
    ];
    let mut cases = 0;
    for (method, path) in ADMIN_ROUTES.iter().chain(READ_ROUTES) {
        for authorization in &wrong {
            let answer = api
                .request(method, path, authorization.as_deref(), b"")
                .await;
            answer.assert_error(
                401,
                "unauthorized",
                &format!("{method} {path} {authorization:?}"),
            );
            cases += 1;
        }
        // Unknown actions and bad parameters are not revealed to callers without a key.
        let sep = if path.contains('?') { '&' } else { '?' };
        let answer = api
            .request(method, &format!("{path}{sep}action=drop"), None, b"{")
            .await;
        assert_eq!(answer.status, 401, "{method} {path}: {}", answer.body);
        cases += 1;
    }
    for (method, path) in ADMIN_ROUTES {
        api.request(method, path, Some(&reader()), b"")
            .await
            .assert_error(
                403,
                "forbidden",
                &format!("{method} {path} with the read key"),
            );
        cases += 1;
    }
    // Nothing ran: no sync, cleanup or re-encryption, no lock, no change.
    assert_eq!(stack.rows().await, rows_before);
    assert_eq!(stack.redis_state(), redis_before);
    assert_eq!(stack.count("select 1 from sync_runs").await, runs_before);

    // The same routes are live: the read key reads, the admin key does everything.
    for (method, path) in READ_ROUTES {
        for key in [reader(), admin()] {
            let answer = api.request(method, path, Some(&key), b"").await;
            assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
            cases += 1;
        }
    }
    for (method, path) in ADMIN_ROUTES {
        let answer = api.request(method, path, Some(&admin()), b"").await;
        assert_eq!(answer.status, 200, "{method} {path}: {}", answer.body);
        cases += 1;
    }
    for path in ["/health", "/openapi.json"] {
        assert_eq!(api.request("GET", path, None, b"").await.status, 200);
        cases += 1;
    }
    println!("reliability: auth matrix: {cases} requests");
}

#[tokio::test]
async fn unknown_actions_wrong_methods_and_bad_bodies_get_their_documented_status() {
    let mut stack = TestStack::start().await;
    stack.set(
        "token:a",
        jwt("a", Utc::now() + Duration::hours(1)).as_str(),
    );
    let api = stack.api_with(&[]);
    api.request("POST", "/v1/sync", Some(&admin()), b"").await;
    let (rows_before, redis_before) = (stack.rows().await, stack.redis_state());
    let mut cases = 0;

    // Unknown or missing actions and a get without an account, on all three seed paths.
    for base in ["/token-manager", "/", "/functions/v1/token-manager"] {
        for method in ["GET", "POST"] {
            for (query, status, code) in [
                ("?action=drop", 400, "invalid_action"),
                ("?action=SYNC", 400, "invalid_action"),
                ("?action=", 400, "invalid_action"),
                ("?action=sync%00", 400, "invalid_action"),
                ("?action=get;sync", 400, "invalid_action"),
                ("", 400, "invalid_action"),
                ("?account=a", 400, "invalid_action"),
                ("?action=get", 400, "missing_account"),
                ("?action=get&acount=a", 400, "missing_account"),
            ] {
                let path = format!("{base}{query}");
                api.request(method, &path, Some(&admin()), b"")
                    .await
                    .assert_error(status, code, &format!("{method} {path}"));
                cases += 1;
            }
        }
    }

    // Wrong methods, with or without a key: 405 and the Allow header.
    let routes: &[(&str, &str)] = &[
        ("/health", "GET"),
        ("/openapi.json", "GET"),
        ("/token-manager?action=status", "GET, POST"),
        ("/?action=status", "GET, POST"),
        ("/v1/sync", "POST"),
        ("/v1/cleanup", "POST"),
        ("/v1/reencrypt", "POST"),
        ("/v1/status", "GET"),
        ("/v1/tokens", "GET"),
        ("/v1/tokens/a", "GET"),
    ];
    for (path, allow) in routes {
        for method in [
            "GET", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "HEAD", "TRACE",
        ] {
            if allow.split(", ").any(|m| m == method) {
                continue;
            }
            for key in [None, Some(admin())] {
                let answer = api.request(method, path, key.as_deref(), b"").await;
                answer.assert_error(405, "method_not_allowed", &format!("{method} {path}"));
                assert_eq!(answer.allow.as_deref(), Some(*allow), "{method} {path}");
                cases += 1;
            }
        }
    }

    // Bodies: a declared body over 64 KiB is 413, only for callers with a key (authentication
    // comes first); no route takes a body, so a malformed one is never read and changes
    // nothing.
    let too_big = vec![b' '; MAX_BODY_BYTES + 1];
    let mut one_mb = br#"{"pad":""#.to_vec();
    one_mb.extend(std::iter::repeat_n(b'x', 1 << 20));
    one_mb.extend(br#""}"#);
    let deep = "[".repeat(10_000);
    let malformed: Vec<&[u8]> = vec![
        b"{",
        b"{oops",
        br#"{"a":}"#,
        b"[]",
        b"[1,2]",
        b"null",
        b"true",
        b"1",
        br#""text""#,
        b"{} trailing",
        b"{}{}",
        b"\xff\xfe\x00",
        b"{\"a\":\"\xff\"}",
        deep.as_bytes(),
        b"action=sync",
    ];
    let body_routes: &[(&str, &str)] = &[
        ("POST", "/v1/sync"),
        ("POST", "/v1/cleanup"),
        ("POST", "/v1/reencrypt"),
        ("POST", "/token-manager?action=sync"),
        ("POST", "/token-manager?action=get&account=a"),
        ("GET", "/v1/status"),
        ("GET", "/v1/tokens/a"),
    ];
    for (method, path) in body_routes {
        for body in [&too_big, &one_mb] {
            api.request(method, path, Some(&admin()), body)
                .await
                .assert_error(413, "payload_too_large", &format!("{method} {path}"));
            api.request(method, path, None, body).await.assert_error(
                401,
                "unauthorized",
                &format!("{method} {path} no key"),
            );
            cases += 2;
        }
        if *method == "GET" {
            for body in &malformed {
                let answer = api.request(method, path, Some(&admin()), body).await;
                assert_eq!(
                    answer.status, 200,
                    "{method} {path} {body:?}: {}",
                    answer.body
                );
                cases += 1;
            }
        }
    }
    // Nothing above ran a job.
    assert_eq!(stack.rows().await, rows_before);
    assert_eq!(stack.redis_state(), redis_before);
    assert_eq!(stack.count("select 1 from sync_runs").await, 1);

    // At the limit, and an empty or object body, is accepted.
    let at_limit = vec![b' '; MAX_BODY_BYTES];
    for body in [&b""[..], b"{}", b" {\"x\": [1, {}]} \n", &at_limit] {
        let answer = api
            .request("GET", "/v1/tokens/a", Some(&reader()), body)
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        cases += 1;
    }
    println!("reliability: actions, methods and bodies: {cases} requests");
}

/// Accounts whose names are PostgREST filter syntax, quotes, unicode, or plain neighbours of
/// each other, so that a filter whose meaning changed would return a wrong token.
const SEEDED: &[&str] = &[
    "a",
    "b",
    "a,b",
    "a.b",
    "a(b)",
    "(a)",
    "a&b",
    "a%b",
    "100%",
    "O'Brien",
    "\"q\"",
    "a;b",
    "a=b",
    "eq.a",
    "in.(a,b)",
    "ünïcødé_账户",
    "🙂",
    "APEX_136189",
    "PAAPEX1361890000001",
];

#[tokio::test]
async fn hostile_account_names_never_return_another_accounts_token() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let tokens: BTreeMap<&str, String> = SEEDED
        .iter()
        .enumerate()
        .map(|(i, a)| (*a, jwt(&format!("owner-{i}"), exp)))
        .collect();
    for (account, token) in &tokens {
        stack.set(&format!("token:{account}"), token.as_str());
    }
    let api = stack.api_with(&[]);
    let answer = api.request("POST", "/v1/sync", Some(&admin()), b"").await;
    assert_eq!(
        answer.body["tokens_synced"],
        SEEDED.len(),
        "{}",
        answer.body
    );
    let (rows_before, redis_before) = (stack.rows().await, stack.redis_state());

    let long = "a".repeat(10 * 1024);
    let mut probes: Vec<String> = SEEDED.iter().map(|s| s.to_string()).collect();
    probes.extend(
        [
            "*",
            "a*",
            "%",
            "%25",
            ",",
            ".",
            "..",
            "(",
            ")",
            "&",
            "'",
            "\"",
            "a,",
            ",b",
            "a,b,c",
            "b,a",
            "(a,b)",
            "a.*",
            "*.a",
            "or=(account_name.eq.a)",
            "a)",
            "a'",
            "A",
            "ä",
            "é",
            "账户",
            "a%2Cb",
            "eq.b",
            "not.eq.a",
            "is.null",
            "in.(b)",
            "%2A",
            "a\\",
            "\\",
            // rejected: empty, whitespace, control characters, too long
            "",
            " ",
            " a",
            "a b",
            "a\u{a0}",
            "a\n",
            "a\tb",
            "a\0",
            "\u{1b}[31m",
        ]
        .map(str::to_string),
    );
    probes.push(long.clone());
    probes.push("é".repeat(101));

    let mut cases = 0;
    for probe in &probes {
        let valid = AccountName::parse(probe).is_ok();
        let own = tokens.get(probe.as_str());
        for path in [
            format!("/token-manager?action=get&account={}", enc(probe)),
            format!("/v1/tokens/{}", enc(probe)),
        ] {
            if probe.is_empty() && path.starts_with("/v1/tokens/") {
                continue; // `/v1/tokens/` is the listing, checked below
            }
            let answer = api.request("GET", &path, Some(&reader()), b"").await;
            let case = format!("{probe:?} via {}", &path[..path.len().min(80)]);
            let dot_segment =
                path.starts_with("/v1/tokens/") && matches!(probe.as_str(), "." | "..");
            match (valid, own) {
                // URLs treat `%2E` and `%2E%2E` as `.` and `..` segments (WHATWG URL, as in
                // workerd): `/v1/tokens/%2E` is the listing, `/v1/tokens/%2E%2E` is `/v1/`.
                // Such accounts are reachable only as ?action=get&account=.
                _ if dot_segment && probe == "." => {
                    assert_eq!(
                        (answer.status, answer.body["count"].as_u64()),
                        (200, Some(SEEDED.len() as u64)),
                        "{case}"
                    )
                }
                _ if dot_segment => answer.assert_error(404, "route_not_found", &case),
                (true, Some(token)) => {
                    assert_eq!(answer.status, 200, "{case}: {}", answer.body);
                    assert_eq!(
                        answer.body["account"].as_str(),
                        Some(probe.as_str()),
                        "{case}"
                    );
                    assert_eq!(
                        answer.body["token"].as_str(),
                        Some(token.as_str()),
                        "{case}"
                    );
                }
                (true, None) => answer.assert_error(404, "account_not_found", &case),
                (false, _) => answer.assert_error(400, "invalid_account", &case),
            }
            // Never anyone else's token, whatever the answer.
            let text = answer.body.to_string();
            for (other, token) in &tokens {
                if *other != probe.as_str() {
                    assert!(
                        !text.contains(token.as_str()),
                        "{case} returned {other}'s token"
                    );
                }
            }
            cases += 1;
        }
        // Listing by main account: a name that is no valid account is refused; a valid one
        // matches exactly, and a listing never carries a token.
        let path = format!("/v1/tokens?main_account={}&limit=1000", enc(probe));
        let answer = api.request("GET", &path, Some(&reader()), b"").await;
        if !valid {
            answer.assert_error(400, "invalid_query", &format!("main_account={probe:?}"));
            cases += 1;
        } else {
            assert_eq!(answer.status, 200, "{probe:?}: {}", answer.body);
            let expected = if probe == "APEX_136189" {
                2 // itself and its PA sub-account
            } else {
                usize::from(own.is_some() && probe != "PAAPEX1361890000001")
            };
            assert_eq!(answer.body["count"], expected, "main_account={probe:?}");
            let text = answer.body.to_string();
            assert!(tokens.values().all(|t| !text.contains(t.as_str())));
            cases += 1;
        }
    }
    // Raw (unencoded) punctuation in the path means the same as encoded.
    for (path, account) in [
        ("/v1/tokens/a,b", Some("a,b")),
        ("/v1/tokens/a.b", Some("a.b")),
        ("/v1/tokens/(a)", Some("(a)")),
        ("/v1/tokens/a&b", Some("a&b")),
        ("/v1/tokens/*", None),
        ("/v1/tokens/a*", None),
        ("/v1/tokens/%", None),
    ] {
        let answer = api.request("GET", path, Some(&reader()), b"").await;
        match account {
            Some(account) => assert_eq!(
                answer.body["token"].as_str(),
                Some(tokens[account].as_str()),
                "{path}"
            ),
            None => answer.assert_error(404, "account_not_found", path),
        }
        cases += 1;
    }
    // Invalid percent-encoding and a path with more segments.
    for (path, status, code) in [
        ("/v1/tokens/%FF", 400, "invalid_account"),
        ("/v1/tokens/%C3%28", 400, "invalid_account"),
        ("/v1/tokens/a%2Fb", 404, "account_not_found"),
        ("/v1/tokens/a/b", 404, "route_not_found"),
    ] {
        api.request("GET", path, Some(&reader()), b"")
            .await
            .assert_error(status, code, path);
        cases += 1;
    }
    // The empty account in the path is the listing: metadata only.
    let answer = api
        .request("GET", "/v1/tokens/", Some(&reader()), b"")
        .await;
    assert_eq!(answer.body["count"], SEEDED.len());
    assert!(tokens
        .values()
        .all(|t| !answer.body.to_string().contains(t.as_str())));
    cases += 1;

    assert_eq!(stack.rows().await, rows_before, "reads changed a row");
    assert_eq!(stack.redis_state(), redis_before);
    println!(
        "reliability: hostile account names: {} probes, {cases} requests",
        probes.len()
    );
}

#[tokio::test]
async fn a_nul_byte_in_main_account_matches_nothing() {
    let mut stack = TestStack::start().await;
    stack.set(
        "token:a",
        jwt("a", Utc::now() + Duration::hours(1)).as_str(),
    );
    let api = stack.api_with(&[]);
    api.request("POST", "/v1/sync", Some(&admin()), b"").await;
    for probe in ["a%00", "a%00zzz"] {
        let answer = api
            .request(
                "GET",
                &format!("/v1/tokens?main_account={probe}"),
                Some(&reader()),
                b"",
            )
            .await;
        assert!(
            answer.code() == Some("invalid_query") || answer.body["count"] == 0,
            "main_account={probe} listed account a: {}",
            answer.body
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Bad Redis data.

#[tokio::test]
async fn bad_redis_values_are_skipped_by_name_while_every_good_token_lands() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let good = demo_tokens(exp);
    stack.seed(&good);
    let good_more = many_tokens("GOOD", 40, "v1");
    stack.seed(&good_more);

    // Skipped: too large, unusable expiry fields, wrong shapes, unusable key names.
    let big = "a".repeat(1 << 20);
    let big_json = json!({"accessToken": jwt("big", exp), "pad": "x".repeat(1 << 20)}).to_string();
    let with_exp = |exp: Value| json!({"accessToken": jwt("e", Utc::now()), "expirationTime": exp});
    let skipped_values: Vec<(&str, String)> = vec![
        ("token:BAD_1MB_RAW", big),
        ("token:BAD_1MB_JSON", big_json),
        (
            "token:BAD_EXP_WORD",
            with_exp(json!("tomorrow")).to_string(),
        ),
        (
            "token:BAD_EXP_DATE",
            with_exp(json!("2024-13-45T00:00:00Z")).to_string(),
        ),
        ("token:BAD_EXP_HUGE", with_exp(json!(1e300)).to_string()),
        ("token:BAD_EXP_NEGATIVE", with_exp(json!(-5)).to_string()),
        ("token:BAD_EXP_ZERO", with_exp(json!(0)).to_string()),
        ("token:BAD_EXP_BOOL", with_exp(json!(true)).to_string()),
        (
            "token:BAD_EXP_ARRAY",
            with_exp(json!([1729176300])).to_string(),
        ),
        (
            "token:BAD_EXP_U64",
            r#"{"token":"t","expires_at":18446744073709551615}"#.into(),
        ),
        (
            "token:BAD_EXP_YEAR_10000",
            with_exp(json!("10000-01-01T00:00:00Z")).to_string(),
        ),
        ("token:BAD_TOKEN_NUMBER", r#"{"accessToken":12345}"#.into()),
        (
            "token:BAD_TOKEN_SPACE",
            r#"{"accessToken":"Bearer abc"}"#.into(),
        ),
        ("token:BAD_ARRAY", r#"["eyJ.a.b"]"#.into()),
        ("token:BAD_STRING", r#""eyJ.a.b""#.into()),
        ("token:BAD_RAW_SPACE", "Bearer eyJ.a.b".into()),
        ("token:BAD_RAW_UNICODE", "tøken".into()),
        ("token:bad name", jwt("ws", exp)),
        ("token:bad\nname", jwt("ctl", exp)),
    ];
    let long_key = format!("token:{}", "L".repeat(AccountName::MAX_LEN + 1));
    for (key, value) in &skipped_values {
        stack.set(key, value.as_str());
    }
    stack.set(&long_key, jwt("long", exp).as_str());
    let binary_key: &[u8] = b"token:\xff\xfe";
    redis::cmd("SET")
        .arg(binary_key)
        .arg(jwt("bin", exp))
        .exec(&mut stack.redis)
        .unwrap();

    // Stored anyway: a JWT whose `exp` is bogus falls back to the key's TTL, else "unknown".
    let bogus_exp: Vec<(&str, String)> = vec![
        (
            "BOGUS_EXP_STRING",
            jwt_with_payload(r#"{"sub":"x","exp":"soon"}"#),
        ),
        ("BOGUS_EXP_NEGATIVE", jwt_with_payload(r#"{"exp":-1}"#)),
        ("BOGUS_EXP_HUGE", jwt_with_payload(r#"{"exp":1e300}"#)),
        (
            "BOGUS_EXP_YEAR_10000",
            jwt_with_payload(r#"{"exp":253402300800}"#),
        ),
        ("BOGUS_EXP_NULL", jwt_with_payload(r#"{"exp":null}"#)),
        (
            "BOGUS_PAYLOAD_NOT_JSON",
            jwt_with_payload("not json at all"),
        ),
        ("BOGUS_PAYLOAD_ARRAY", jwt_with_payload("[1729176300]")),
        (
            "BOGUS_PAYLOAD_NOT_BASE64",
            "eyJhbGciOiJIUzI1NiJ9.@@@@.sig".into(),
        ),
        (
            "BOGUS_TWO_SEGMENTS",
            "eyJhbGciOiJIUzI1NiJ9.eyJleHAiOjF9".into(),
        ),
    ];
    for (account, token) in &bogus_exp {
        stack.set(&format!("token:{account}"), token.as_str());
    }
    stack.set_px(
        "token:BOGUS_EXP_WITH_TTL",
        jwt_with_payload(r#"{"exp":"later"}"#).as_str(),
        3_600_000,
    );
    let explicit_at = Utc::now() + Duration::minutes(42);
    stack.set(
        "token:BOGUS_EXP_EXPLICIT_FIELD",
        json!({"accessToken": jwt_with_payload(r#"{"exp":-1}"#), "expirationTime": explicit_at.timestamp()})
            .to_string()
            .as_str(),
    );
    let redis_before = stack.redis_state();

    let api = stack.api_with(&[("SYNC_BATCH_SIZE", "7")]);
    let answer = bounded(
        "sync",
        60,
        api.request("POST", "/v1/sync", Some(&admin()), b""),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);

    // Every bad key is reported by name, with a reason, never with its value.
    let reported: BTreeMap<String, String> = answer.body["skipped"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            (
                s["redis_key"].as_str().unwrap().to_string(),
                s["reason"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let mut expected: BTreeSet<String> =
        skipped_values.iter().map(|(k, _)| k.to_string()).collect();
    expected.insert(long_key.clone());
    expected.insert(String::from_utf8_lossy(binary_key).into_owned());
    assert_eq!(
        reported.keys().cloned().collect::<BTreeSet<_>>(),
        expected,
        "{reported:#?}"
    );
    for (key, reason) in &reported {
        assert!(!reason.is_empty() && reason.len() < 300, "{key}: {reason}");
        assert!(!reason.contains("eyJ"), "{key}: the reason shows the value");
    }
    assert!(reported["token:BAD_1MB_RAW"].contains("64 KiB"));
    assert!(reported["token:BAD_EXP_WORD"].contains("expirationTime"));
    assert!(reported["token:bad name"].contains("whitespace"));

    // Every good token landed and reads back exactly.
    let stored = good.len() + good_more.len() + bogus_exp.len() + 2;
    assert_eq!(answer.body["tokens_synced"], stored);
    assert_eq!(
        stack
            .count("select 1 from tradovate_tokens where is_active")
            .await,
        stored as i64
    );
    let services = Services::new(stack.config_with(&[("SYNC_BATCH_SIZE", "7")]));
    for (key, value) in good.iter().chain(&good_more) {
        let account = key.trim_start_matches("token:");
        assert_eq!(
            get(&services, account, Utc::now()).await.unwrap().token,
            token_of(value)
        );
    }
    // The documented fallbacks for a bogus `exp`.
    for (account, token) in &bogus_exp {
        let row = stack.token_row(account).await;
        assert_eq!(
            (
                row["metadata"]["expires_source"].as_str(),
                &row["expires_at"]
            ),
            (Some("unknown"), &Value::Null),
            "{account}"
        );
        assert_eq!(
            &get(&services, account, Utc::now()).await.unwrap().token,
            token
        );
    }
    let ttl = stack.token_row("BOGUS_EXP_WITH_TTL").await;
    assert_eq!(ttl["metadata"]["expires_source"], "redis_ttl");
    let explicit = stack.token_row("BOGUS_EXP_EXPLICIT_FIELD").await;
    assert_eq!(explicit["metadata"]["expires_source"], "explicit");

    let run = stack.last_run("sync").await;
    assert_eq!(run["status"], "succeeded");
    let recorded = stack
        .query("select skipped, jsonb_array_length(details->'skipped') as listed from sync_runs")
        .await;
    assert_eq!(
        (
            recorded[0]["skipped"].as_u64(),
            recorded[0]["listed"].as_u64()
        ),
        (Some(expected.len() as u64), Some(expected.len() as u64))
    );
    assert!(
        !stack.dump().await.contains("aaaaaaaaaaaaaaaa"),
        "a skipped value reached Postgres"
    );
    assert_eq!(
        stack.redis_state(),
        redis_before,
        "a sync never writes token keys"
    );
    assert!(!stack.lock_held());
    println!(
        "reliability: bad Redis data: {} bad keys skipped, {} bogus-exp tokens kept, {stored} stored",
        expected.len(),
        bogus_exp.len() + 2
    );
}

// ---------------------------------------------------------------------------------------------
// Upstream faults.

/// Seeds, syncs once, then changes Redis so the next sync has work to do. Returns the rows
/// after the first sync and the Redis state.
async fn synced_then_changed(stack: &mut TestStack, n: usize) -> Vec<Value> {
    stack.seed(&many_tokens("FAULT", n, "v1"));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let before = stack.rows().await;
    let changed: Vec<_> = many_tokens("FAULT", n, "v2")
        .into_iter()
        .step_by(2)
        .collect();
    stack.seed(&changed);
    stack.seed(&many_tokens("FAULT_NEW", n / 2, "v1"));
    stack.del("token:FAULT_0001");
    before
}

/// After a failed sync: nothing lost, lock free, and the next sync completes the job.
async fn assert_recovers(stack: &mut TestStack, before: &[Value]) {
    assert_eq!(
        stack.rows().await,
        before,
        "a failed sync changed stored rows"
    );
    assert!(!stack.lock_held(), "a failed sync left its lock");
    let services = stack.services();
    let report = bounded("the next sync", 60, sync(&services, Trigger::Http))
        .await
        .unwrap();
    assert!(report.inserted + report.updated > 0);
    assert_eq!(report.deactivated, 1);
    assert_converged(stack, &services).await;
}

#[tokio::test]
async fn upstash_failing_mid_sync_records_the_run_and_changes_nothing() {
    let mut stack = TestStack::start().await;
    let before = synced_then_changed(&mut stack, 60).await;
    let mut survived = 0;
    for fault in [Fault::Drop, Fault::Answer(500), Fault::Answer(401)] {
        // The third value pipeline fails: after the lock, the SCAN and two batches.
        let proxy = FaultProxy::start(
            var("TM_TEST_UPSTASH_URL"),
            nth(2, |r| r.path == "/pipeline", fault),
        )
        .await;
        let api = stack.api_with(&[
            ("UPSTASH_REDIS_REST_URL", &proxy.url),
            ("SYNC_BATCH_SIZE", "20"),
        ]);
        let answer = bounded(
            "sync",
            30,
            api.request("POST", "/v1/sync", Some(&admin()), b""),
        )
        .await;
        answer.assert_error(502, "upstash_error", &format!("{fault:?}"));
        assert!(answer.message().contains("Upstash"), "{}", answer.message());
        assert_eq!(proxy.applied().len(), 1);
        let run = stack.last_run("sync").await;
        assert_eq!(
            (run["status"].as_str(), run["finished"].as_bool()),
            (Some("failed"), Some(true))
        );
        assert!(run["error"].as_str().unwrap().contains("Upstash"), "{run}");
        assert_eq!(stack.rows().await, before, "{fault:?}: rows changed");
        assert!(!stack.lock_held(), "{fault:?}: lock left");
        survived += 1;
    }
    assert_recovers(&mut stack, &before).await;
    println!("reliability: Upstash mid-sync faults survived: {survived}");
}

#[tokio::test]
async fn a_lock_that_cannot_be_released_expires_and_the_next_sync_runs() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    // Redis refuses the release (the compare-and-delete script), wherever it rides: in the
    // sync's last value pipeline, or in a request of its own.
    const RELEASE: &str = "redis.call('DEL'";
    let proxy = FaultProxy::start(var("TM_TEST_UPSTASH_URL"), |r| {
        if r.body.contains(RELEASE) {
            Fault::Refuse(RELEASE)
        } else {
            Fault::Forward
        }
    })
    .await;
    let config = stack.config_with(&[
        ("UPSTASH_REDIS_REST_URL", &proxy.url),
        ("SYNC_LOCK_TTL_SECONDS", "5"),
    ]);
    let report = sync(&Services::new(config), Trigger::Http).await.unwrap();
    assert_eq!(report.inserted, 22);
    assert_eq!(proxy.applied().len(), 1, "the release failed");
    assert!(stack.lock_held());
    let pttl: i64 = redis::cmd("PTTL")
        .arg(LOCK_KEY)
        .query(&mut stack.redis)
        .unwrap();
    assert!((1..=5000).contains(&pttl), "the lock expires: {pttl}");

    // Until it expires, syncs answer 409; then the next one runs.
    let services = stack.services();
    stack.api().sync().await.assert_error(
        409,
        "sync_in_progress",
        "while the dead run's lock lives",
    );
    let deadline = Instant::now() + StdDuration::from_secs(10);
    while stack.lock_held() {
        assert!(Instant::now() < deadline, "the lock never expired");
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.unchanged, report.inserted), (22, 0));
}

#[tokio::test]
async fn postgrest_failing_on_one_batch_keeps_earlier_batches_whole_and_records_the_run() {
    let mut stack = TestStack::start().await;
    let before = synced_then_changed(&mut stack, 60).await;
    let services = stack.services();
    let mut survived = 0;

    // 1. PostgREST (or the gateway before it) answers 503 to the second batch: nothing of it
    //    is written, the first batch is, the run is recorded as failed.
    let batches = Arc::new(AtomicUsize::new(0));
    let seen = batches.clone();
    let proxy = FaultProxy::start(var("TM_TEST_POSTGREST_URL"), move |r| {
        if r.path.starts_with("/rpc/token_manager_apply_sync")
            && seen.fetch_add(1, Ordering::SeqCst) == 1
        {
            Fault::Answer(503)
        } else {
            Fault::Forward
        }
    })
    .await;
    let api = stack.api_with(&[("SUPABASE_REST_URL", &proxy.url), ("SYNC_BATCH_SIZE", "10")]);
    let answer = api.request("POST", "/v1/sync", Some(&admin()), b"").await;
    answer.assert_error(502, "supabase_error", "503 on batch 2");
    assert!(answer.message().contains("Supabase"));
    let run = stack.last_run("sync").await;
    assert_eq!(run["status"], "failed");
    assert!(run["error"].as_str().unwrap().contains("503"), "{run}");
    assert!(!stack.lock_held());
    // Exactly the first batch landed: 10 updated rows, each whole (it decrypts to Redis's
    // new value); nothing of the second batch or later.
    let after = stack.rows().await;
    let moved: Vec<&Value> = after.iter().filter(|r| !before.contains(r)).collect();
    assert_eq!((moved.len(), after.len()), (10, before.len()), "rows moved");
    for row in moved {
        let account = row["account_name"].as_str().unwrap();
        let value: String = redis::cmd("GET")
            .arg(format!("token:{account}"))
            .query(&mut stack.redis)
            .unwrap();
        assert_eq!(
            get(&services, account, Utc::now()).await.unwrap().token,
            value
        );
    }
    assert_eq!(batches.load(Ordering::SeqCst), 2);
    assert_no_row_lost(&stack, &before).await;
    survived += 1;

    // 2. The second batch is written but its answer is lost: the run fails, and the next sync
    //    finds those rows already current (never a duplicate, never a half row).
    let proxy = FaultProxy::start(
        var("TM_TEST_POSTGREST_URL"),
        nth(
            1,
            |r| r.path.starts_with("/rpc/token_manager_apply_sync"),
            Fault::ForwardThenDrop,
        ),
    )
    .await;
    let api = stack.api_with(&[("SUPABASE_REST_URL", &proxy.url), ("SYNC_BATCH_SIZE", "10")]);
    let answer = api.request("POST", "/v1/sync", Some(&admin()), b"").await;
    answer.assert_error(502, "supabase_error", "answer to batch 2 lost");
    assert_eq!(stack.last_run("sync").await["status"], "failed");
    assert!(!stack.lock_held());
    assert_no_row_lost(&stack, &before).await;
    survived += 1;

    // 3. The run cannot be started (PostgREST refuses begin_sync): nothing at all changes.
    let proxy = FaultProxy::start(var("TM_TEST_POSTGREST_URL"), |r| {
        if r.path.starts_with("/rpc/token_manager_begin_sync") {
            Fault::Drop
        } else {
            Fault::Forward
        }
    })
    .await;
    let rows_now = stack.rows().await;
    let api = stack.api_with(&[("SUPABASE_REST_URL", &proxy.url)]);
    api.request("POST", "/v1/sync", Some(&admin()), b"")
        .await
        .assert_error(502, "supabase_error", "begin_sync dropped");
    assert_eq!(stack.rows().await, rows_now);
    assert!(!stack.lock_held());
    survived += 1;

    // The next sync completes the job: every key converges, nothing duplicated.
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(report.deactivated, 1);
    assert_eq!(report.tokens_synced, 60 - 1 + 30);
    let converged = assert_converged(&mut stack, &services).await;
    assert_eq!(converged, 89);
    assert_eq!(stack.count("select 1 from tradovate_tokens").await, 90);
    assert_eq!(stack.count("select 1 from token_key_mappings").await, 90);
    let again = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (again.inserted, again.updated, again.deactivated),
        (0, 0, 0)
    );
    println!("reliability: PostgREST mid-sync faults survived: {survived}");
}

/// Every account stored in `before` is still stored, and every row decrypts.
async fn assert_no_row_lost(stack: &TestStack, before: &[Value]) {
    let services = stack.services();
    for row in before.iter().filter(|r| r.get("access_token").is_some()) {
        let account = row["account_name"].as_str().unwrap();
        match get(&services, account, Utc::now()).await {
            Ok(_) | Err(JobError::Inactive(_)) => {}
            Err(e) => panic!("{account} lost: {e}"),
        }
    }
}

#[tokio::test]
async fn a_finish_that_fails_still_records_the_run_as_failed() {
    // The sync's last call (finish: deactivate and record) fails once; the run must not be
    // left `running` forever.
    let mut stack = TestStack::start().await;
    let before = synced_then_changed(&mut stack, 20).await;
    let proxy = FaultProxy::start(
        var("TM_TEST_POSTGREST_URL"),
        nth(
            0,
            |r| r.path.starts_with("/rpc/token_manager_finish_sync"),
            Fault::Answer(503),
        ),
    )
    .await;
    let api = stack.api_with(&[("SUPABASE_REST_URL", &proxy.url)]);
    api.request("POST", "/v1/sync", Some(&admin()), b"")
        .await
        .assert_error(502, "supabase_error", "finish failed");
    assert!(!stack.lock_held());
    assert_no_row_lost(&stack, &before).await;
    let run = stack.last_run("sync").await;
    assert_eq!(
        (run["status"].as_str(), run["finished"].as_bool()),
        (Some("failed"), Some(true)),
        "{run}"
    );
}

#[tokio::test]
async fn a_hanging_upstash_is_given_up_on_in_bounded_time_naming_it() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let before = stack.rows().await;
    let silent = Silent::start().await;
    let api = stack.api_with(&[
        ("UPSTREAM_TIMEOUT_MS", "500"),
        ("UPSTASH_REDIS_REST_URL", &silent.url),
    ]);
    for (method, path) in [("POST", "/v1/sync")] {
        let started = Instant::now();
        let answer = bounded(path, 10, api.request(method, path, Some(&admin()), b"")).await;
        let took = started.elapsed();
        answer.assert_error(502, "upstash_error", path);
        assert!(
            answer
                .message()
                .contains("Upstash Redis did not answer within 500 ms"),
            "{}",
            answer.message()
        );
        assert!(took < StdDuration::from_secs(5), "{path} took {took:?}");
    }
    // Status never calls Upstash: it answers from the last sync's count.
    let answer = bounded(
        "/v1/status",
        10,
        api.request("GET", "/v1/status", Some(&admin()), b""),
    )
    .await;
    assert_eq!(
        (answer.status, answer.body["redis_tokens_source"].as_str()),
        (200, Some("last_sync")),
        "{}",
        answer.body
    );
    assert_eq!(stack.rows().await, before);
    assert!(!stack.lock_held());
    sync(&stack.services(), Trigger::Http).await.unwrap();
}

#[tokio::test]
async fn a_hanging_supabase_is_given_up_on_in_bounded_time_naming_it() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let before = stack.rows().await;
    let silent = Silent::start().await;
    let api = stack.api_with(&[
        ("UPSTREAM_TIMEOUT_MS", "500"),
        ("SUPABASE_REST_URL", &silent.url),
    ]);
    for (method, path) in [
        ("POST", "/v1/sync"),
        ("GET", "/v1/status"),
        ("GET", "/v1/tokens/APEX_136189"),
        ("GET", "/v1/tokens"),
        ("POST", "/v1/cleanup"),
    ] {
        let started = Instant::now();
        let answer = bounded(path, 10, api.request(method, path, Some(&admin()), b"")).await;
        let took = started.elapsed();
        answer.assert_error(502, "supabase_error", path);
        assert!(
            answer
                .message()
                .contains("Supabase did not answer within 500 ms"),
            "{}",
            answer.message()
        );
        assert!(took < StdDuration::from_secs(5), "{path} took {took:?}");
    }
    assert_eq!(stack.rows().await, before);
    assert!(!stack.lock_held(), "the lock is released through Upstash");

    // A batch that hangs mid-run: given up on, and the failure recorded (Supabase is back for
    // the record).
    stack.seed(&many_tokens("HANG", 30, "v1"));
    let proxy = FaultProxy::start(
        var("TM_TEST_POSTGREST_URL"),
        nth(
            1,
            |r| r.path.starts_with("/rpc/token_manager_apply_sync"),
            Fault::Hang,
        ),
    )
    .await;
    let api = stack.api_with(&[
        ("UPSTREAM_TIMEOUT_MS", "500"),
        ("SUPABASE_REST_URL", &proxy.url),
        ("SYNC_BATCH_SIZE", "10"),
    ]);
    let answer = bounded(
        "sync",
        10,
        api.request("POST", "/v1/sync", Some(&admin()), b""),
    )
    .await;
    answer.assert_error(502, "supabase_error", "hanging batch");
    let run = stack.last_run("sync").await;
    assert_eq!(run["status"], "failed");
    assert!(
        run["error"]
            .as_str()
            .unwrap()
            .contains("did not answer within 500 ms"),
        "{run}"
    );
    assert_no_row_lost(&stack, &before).await;
    assert!(!stack.lock_held());
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(assert_converged(&mut stack, &services).await, 52);
}

#[tokio::test]
async fn postgres_down_behind_postgrest_answers_502_naming_supabase() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    stack.set(
        "token:APEX_7000001",
        jwt("new", Utc::now() + Duration::hours(1)).as_str(),
    );
    let before = stack.rows().await;
    let runs_before = stack.count("select 1 from sync_runs").await;
    let mut survived = 0;

    // a. Postgres goes away under a PostgREST that was serving.
    let link = Cuttable::start(pg_target()).await;
    let pgrst = OwnPostgrest::start(&authenticator_uri(link.port)).await;
    let api = stack.api_with(&[
        ("SUPABASE_REST_URL", &pgrst.url),
        ("UPSTREAM_TIMEOUT_MS", "2000"),
    ]);
    let deadline = Instant::now() + StdDuration::from_secs(30);
    loop {
        let answer = api.request("GET", "/v1/status", Some(&reader()), b"").await;
        if answer.status == 200 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "own PostgREST never served: {}",
            answer.body
        );
        tokio::time::sleep(StdDuration::from_millis(200)).await;
    }
    link.cut();
    // b. A PostgREST whose database was never there.
    let dead = OwnPostgrest::start(&authenticator_uri(free_port())).await;
    let dead_api = stack.api_with(&[
        ("SUPABASE_REST_URL", &dead.url),
        ("UPSTREAM_TIMEOUT_MS", "2000"),
    ]);

    for (case, api) in [("cut", &api), ("never up", &dead_api)] {
        for (method, path, key) in [
            ("POST", "/v1/sync", admin()),
            ("GET", "/v1/status", reader()),
            ("GET", "/v1/tokens/APEX_136189", reader()),
            ("POST", "/v1/cleanup", admin()),
        ] {
            let started = Instant::now();
            let answer = bounded(path, 15, api.request(method, path, Some(&key), b"")).await;
            answer.assert_error(502, "supabase_error", &format!("{case}: {method} {path}"));
            assert!(
                answer.message().contains("Supabase"),
                "{}",
                answer.message()
            );
            assert!(
                started.elapsed() < StdDuration::from_secs(8),
                "{case}: {path}"
            );
            if survived % 4 == 0 {
                println!("reliability: Postgres down ({case}): {}", answer.message());
            }
            survived += 1;
        }
        assert!(!stack.lock_held(), "{case}: lock left");
    }
    drop(pgrst);
    drop(dead);
    assert_eq!(
        stack.rows().await,
        before,
        "nothing changed in the real database"
    );
    assert_eq!(stack.count("select 1 from sync_runs").await, runs_before);
    let report = sync(&stack.services(), Trigger::Http).await.unwrap();
    assert_eq!((report.inserted, report.unchanged), (1, 22));
    println!("reliability: Postgres-down requests survived: {survived}");
}

// ---------------------------------------------------------------------------------------------
// Concurrency and idempotence.

#[tokio::test]
async fn tokens_changing_in_redis_during_a_sync_converge_on_the_next_sync() {
    let mut stack = TestStack::start().await;
    stack.seed(&many_tokens("LIVE", 500, "v0"));
    stack.seed(&many_tokens("GONE", 20, "v0"));
    let services = Services::new(stack.config_with(&[("SYNC_BATCH_SIZE", "50")]));
    sync(&services, Trigger::Http).await.unwrap();

    // A writer updates every key, deletes one and adds one per round until the sync is done.
    let done = Arc::new(AtomicBool::new(false));
    let stop = done.clone();
    let redis_url = var("TM_TEST_REDIS_URL");
    let writer = std::thread::spawn(move || {
        let mut redis = redis::Client::open(redis_url)
            .unwrap()
            .get_connection()
            .unwrap();
        let mut round = 0;
        while !stop.load(Ordering::SeqCst) || round == 0 {
            round += 1;
            let mut pipe = redis::pipe();
            for (key, value) in many_tokens("LIVE", 500, &format!("v{round}")) {
                pipe.set(key, value).ignore();
            }
            if round <= 20 {
                pipe.del(format!("token:GONE_{:04}", round - 1)).ignore();
            }
            pipe.set(
                format!("token:NEW_{round:04}"),
                jwt(&format!("new-{round}"), Utc::now() + Duration::hours(1)),
            )
            .ignore();
            pipe.exec(&mut redis).unwrap();
            if round > 2_000 {
                break;
            }
        }
        round
    });
    let first = bounded("sync under writes", 120, sync(&services, Trigger::Http))
        .await
        .unwrap();
    done.store(true, Ordering::SeqCst);
    let rounds = writer.join().unwrap();
    assert!(first.tokens_synced >= 500, "{}", first.tokens_synced);
    assert!(
        rounds >= 2,
        "the writes overlapped the sync: {rounds} rounds"
    );

    // After the writes stop, one more sync converges: every key reads back as Redis holds it,
    // every deleted key is inactive, nothing duplicated.
    let second = sync(&services, Trigger::Http).await.unwrap();
    let in_redis = assert_converged(&mut stack, &services).await;
    let expected_live = 500 + rounds + 20usize.saturating_sub(rounds.min(20));
    assert_eq!(in_redis, expected_live);
    assert_eq!(second.tokens_synced, expected_live);
    let gone = rounds.min(20) as i64;
    assert_eq!(
        stack
            .count("select 1 from tradovate_tokens where not is_active")
            .await,
        gone
    );
    assert_eq!(
        stack.count("select 1 from tradovate_tokens").await,
        (520 + rounds) as i64,
        "one row per account ever seen, no duplicate"
    );
    let third = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (
            third.inserted,
            third.updated,
            third.deactivated,
            third.unchanged
        ),
        (0, 0, 0, expected_live)
    );
    println!(
        "reliability: {rounds} rounds of writes ({} writes) during one sync; converged on the next",
        rounds * 502
    );
}

#[tokio::test]
async fn cleanup_during_a_sync_both_succeed_and_the_state_stays_consistent() {
    let mut stack = TestStack::start().await;
    let live = many_tokens("CLEAN_LIVE", 300, "v1");
    stack.seed(&live);
    let past = Utc::now() - Duration::minutes(5);
    for i in 0..100 {
        stack.set(
            &format!("token:CLEAN_OLD_{i:03}"),
            jwt(&format!("old-{i}"), past).as_str(),
        );
    }
    let services = Services::new(stack.config_with(&[("SYNC_BATCH_SIZE", "40")]));
    sync(&services, Trigger::Http).await.unwrap();
    // Renew a third of the live tokens, then sync and clean up at once.
    let renewed: Vec<_> = many_tokens("CLEAN_LIVE", 300, "v2")
        .into_iter()
        .step_by(3)
        .collect();
    stack.seed(&renewed);
    let cleaner = stack.services();
    let (synced, cleaned) = tokio::join!(
        sync(&services, Trigger::Http),
        cleanup(&cleaner, Trigger::Http)
    );
    let (synced, cleaned) = (synced.unwrap(), cleaned.unwrap());
    assert!(synced.updated >= 100, "{synced:?}");
    assert_eq!(cleaned.cleaned, 100);

    assert_eq!(stack.count("select 1 from tradovate_tokens").await, 400);
    assert_eq!(
        stack
            .count("select 1 from tradovate_tokens where is_active and expires_at > now()")
            .await,
        300
    );
    for (key, value) in live
        .iter()
        .chain(&renewed)
        .map(|(k, v)| (k, v))
        .collect::<BTreeMap<_, _>>()
    {
        let account = key.trim_start_matches("token:");
        assert_eq!(
            get(&services, account, Utc::now()).await.unwrap().token,
            *value
        );
    }
    for i in 0..100 {
        let account = format!("CLEAN_OLD_{i:03}");
        assert!(matches!(
            get(&services, &account, Utc::now()).await,
            Err(JobError::Inactive(_) | JobError::Expired(_))
        ));
    }
    // After one more cleanup no active row is past its expiry.
    cleanup(&cleaner, Trigger::Http).await.unwrap();
    assert_eq!(
        stack
            .count("select 1 from tradovate_tokens where is_active and expires_at <= now()")
            .await,
        0
    );
}

#[tokio::test]
async fn many_syncs_at_once_run_one_and_refuse_the_others_with_409() {
    let mut stack = TestStack::start().await;
    stack.seed(&many_tokens("RACE", 500, "v1"));
    let api = stack.api_with(&[("SYNC_BATCH_SIZE", "50")]);
    let key = admin();
    let one = || api.request("POST", "/v1/sync", Some(&key), b"");
    let (a, b, c, d, e, f) = bounded("six syncs", 120, async {
        tokio::join!(one(), one(), one(), one(), one(), one())
    })
    .await;
    let answers = [a, b, c, d, e, f];
    let ok = answers.iter().filter(|a| a.status == 200).count();
    for answer in answers.iter().filter(|a| a.status != 200) {
        answer.assert_error(409, "sync_in_progress", "concurrent sync");
    }
    assert_eq!(ok, 1, "exactly one runs");
    assert_eq!(stack.count("select 1 from tradovate_tokens").await, 500);
    assert_eq!(stack.count("select 1 from token_key_mappings").await, 500);
    assert_eq!(stack.count("select 1 from sync_runs").await, 1);
    assert!(!stack.lock_held());
}

#[tokio::test]
async fn syncing_three_times_equals_syncing_once_and_cleanup_twice_cleans_once() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    stack.seed(&demo_tokens(exp));
    stack.set_px("token:TTL_ONLY", "opaque-token-with-ttl", 3_600_000);
    stack.set("token:NO_EXPIRY", "opaque-token-forever");
    stack.set(
        "token:EXPIRED",
        jwt("expired", Utc::now() - Duration::minutes(1)).as_str(),
    );
    stack.set("token:BROKEN", "{not json");
    stack.set("token:LEAVES", jwt("leaves", exp).as_str());
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();
    stack.del("token:LEAVES");

    let settled = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(settled.deactivated, 1);
    let once = stack.rows().await;
    for n in 2..=3 {
        let again = sync(&services, Trigger::Http).await.unwrap();
        assert_eq!(
            (
                again.inserted,
                again.updated,
                again.deactivated,
                again.unchanged
            ),
            (0, 0, 0, settled.tokens_synced),
            "sync #{n}"
        );
        assert_eq!(again.skipped, settled.skipped, "sync #{n}");
        assert_eq!(stack.rows().await, once, "sync #{n} rewrote a row");
    }
    let runs = stack
        .query("select status, inserted, updated from sync_runs where kind = 'sync' order by started_at")
        .await;
    assert_eq!(runs.len(), 4);
    assert!(runs.iter().all(|r| r["status"] == "succeeded"));

    // Two cleanups at once, then a third: the expired token is cleaned exactly once.
    let other = stack.services();
    let (a, b) = tokio::join!(
        cleanup(&services, Trigger::Http),
        cleanup(&other, Trigger::Cron)
    );
    assert_eq!(a.unwrap().cleaned + b.unwrap().cleaned, 1);
    let cleaned = stack.rows().await;
    assert_eq!(cleanup(&services, Trigger::Http).await.unwrap().cleaned, 0);
    assert_eq!(stack.rows().await, cleaned);
}

#[tokio::test]
async fn a_sync_after_cleanup_leaves_an_unchanged_expired_token_inactive() {
    let mut stack = TestStack::start().await;
    stack.set(
        "token:EXPIRED",
        jwt("expired", Utc::now() - Duration::minutes(1)).as_str(),
    );
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(cleanup(&services, Trigger::Http).await.unwrap().cleaned, 1);
    let after_cleanup = stack.rows().await;
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (report.updated, report.unchanged),
        (0, 1),
        "the token did not change"
    );
    assert_eq!(stack.rows().await, after_cleanup);
    assert_eq!(cleanup(&services, Trigger::Cron).await.unwrap().cleaned, 0);
}
