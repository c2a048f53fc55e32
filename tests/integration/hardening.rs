//! The HTTP layer against hostile input, with fake upstreams (a closed local port: every job
//! fails fast with 502 after authentication). No services needed.

use chrono::Utc;
use token_manager::config::Config;
use token_manager::http::{handle, Request, MAX_BODY_BYTES};

use crate::support::unreachable_config;

const ADMIN_KEY: &str = "admin-key-for-hardening-tests-0000000000";
const READ_KEY: &str = "read-key-for-hardening-tests-00000000000";

fn config() -> Config {
    unreachable_config(ADMIN_KEY, READ_KEY)
}

fn request(method: &str, path: &str, headers: &[(&str, &str)]) -> Request {
    let mut request = Request::builder()
        .method(method)
        .uri(format!("https://worker.test{path}"));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.body(()).unwrap()
}

/// No route takes a body, so the request type has none; what a caller declares is checked:
/// over the limit is 413 before anything runs, a malformed length is 400.
#[tokio::test]
async fn a_declared_body_over_the_limit_is_refused_without_being_read() {
    let admin = format!("Bearer {ADMIN_KEY}");
    let over = (MAX_BODY_BYTES + 1).to_string();
    for (length, status, code) in [
        (over.as_str(), 413, Some("payload_too_large")),
        ("100000000000", 413, Some("payload_too_large")),
        ("18446744073709551616", 400, Some("invalid_body")),
        ("-1", 400, Some("invalid_body")),
        ("ten", 400, Some("invalid_body")),
        // At the limit: allowed (and not read); the job then fails on the closed port.
        ("65536", 502, Some("supabase_error")),
    ] {
        let response = handle(
            request(
                "POST",
                "/v1/cleanup",
                &[("authorization", &admin), ("content-length", length)],
            ),
            Ok(config()),
            Utc::now(),
        )
        .await;
        let body: serde_json::Value = serde_json::from_str(response.body()).unwrap();
        assert_eq!(
            (response.status().as_u16(), body["error"]["code"].as_str()),
            (status, code),
            "Content-Length: {length}"
        );
    }
}

mod no_panic {
    use super::*;
    use proptest::prelude::*;

    /// Methods: the routed ones, others, odd case, and arbitrary tokens.
    fn method() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "GET", "POST", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "TRACE", "get", "pOsT",
                "CONNECT",
            ])
            .prop_map(str::to_string),
            "[A-Za-z!#$%&'*+.^_`|~-]{1,12}",
        ]
    }

    /// Paths: every route, near misses, dot segments, encodings, and arbitrary segments.
    fn path() -> impl Strategy<Value = String> {
        let segment = prop_oneof![
            prop::sample::select(vec![
                "v1",
                "tokens",
                "status",
                "sync",
                "cleanup",
                "reencrypt",
                "health",
                "openapi.json",
                "token-manager",
                "functions",
                "APEX_136189",
                "%2E",
                "%2E%2E",
                "%FF",
                "%00",
                "%",
                "%zz",
                "a%2Fb",
                "",
                "é",
            ])
            .prop_map(str::to_string),
            "[A-Za-z0-9_.~%!$&'()*+,;=:@-]{0,20}",
        ];
        let routed = prop::sample::select(
            token_manager::http::routes::ROUTES
                .iter()
                .map(|r| r.path.replace("{account}", "APEX_136189"))
                .collect::<Vec<_>>(),
        );
        prop_oneof![
            3 => routed,
            2 => prop::collection::vec(segment, 0..5).prop_map(|s| format!("/{}", s.join("/"))),
        ]
    }

    /// Query values, heavy on numbers at and past every bound.
    fn value() -> impl Strategy<Value = String> {
        prop_oneof![
            prop::sample::select(vec![
                "sync",
                "status",
                "get",
                "cleanup",
                "restore",
                "true",
                "false",
                "0",
                "1",
                "-1",
                "1000",
                "1001",
                "1000000",
                "1000001",
                "10000000000000",
                "106751992d",
                "9223372036854775807",
                "9223372036854775807d",
                "18446744073709551615",
                "18446744073709551616",
                "1e9",
                "0x10",
                "+5",
                "5s",
                "5m",
                "5h",
                "5d",
                "5w",
                "",
                "%00",
                "APEX_136189",
            ])
            .prop_map(str::to_string),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<i64>().prop_map(|n| format!("{n}d")),
            "[ -~]{0,16}",
        ]
    }

    fn query_with(names: Vec<&'static str>) -> impl Strategy<Value = String> {
        let name = prop::sample::select(names);
        prop::collection::vec((name, value()), 0..5).prop_map(|pairs| {
            let mut out = form_urlencoded::Serializer::new(String::new());
            for (k, v) in pairs {
                out.append_pair(k, &v);
            }
            out.finish()
        })
    }

    fn query() -> impl Strategy<Value = String> {
        query_with(vec![
            "action",
            "account",
            "main_account",
            "active",
            "expiring_within",
            "limit",
            "offset",
            "dry_run",
            "include_unknown_expiry",
            "x",
        ])
    }

    /// Answers `method path?query` with `headers`; fails the case if the answer is not JSON.
    fn answer(method: &str, uri: &str, headers: &[(String, String)]) -> Result<(), TestCaseError> {
        let mut builder = Request::builder().method(method).uri(uri);
        for (name, value) in headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        // What the Worker cannot even express as a request never reaches `handle`.
        let Ok(request) = builder.body(()) else {
            return Ok(());
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let response = runtime.block_on(handle(request, Ok(config()), Utc::now()));
        let body: Result<serde_json::Value, _> = serde_json::from_str(response.body());
        prop_assert!(body.is_ok(), "{method} {uri}: not JSON");
        Ok(())
    }

    /// Headers: a key (right, wrong, malformed) most of the time, declared body lengths, noise.
    fn headers() -> impl Strategy<Value = Vec<(String, String)>> {
        let key = prop::sample::select(vec![
            format!("Bearer {ADMIN_KEY}"),
            format!("Bearer {READ_KEY}"),
            format!("bearer {READ_KEY} "),
            "Bearer ".to_string(),
            "Basic abc".to_string(),
            format!("Bearer {ADMIN_KEY},{READ_KEY}"),
        ])
        .prop_map(|v| ("authorization".to_string(), v));
        let other = prop_oneof![
            value().prop_map(|v| ("content-length".to_string(), v)),
            ("[a-z-]{1,12}", "[ -~]{0,24}"),
        ];
        (
            prop::option::weighted(0.8, key),
            prop::collection::vec(other, 0..3),
        )
            .prop_map(|(key, mut others)| {
                others.extend(key);
                others
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 1500, ..ProptestConfig::default() })]

        /// Whatever the method, path, query and headers (the body is never read, so its
        /// declared length stands for it), `handle` answers with JSON and never panics.
        #[test]
        fn handle_never_panics(
            method in method(), path in path(), query in query(), headers in headers(),
        ) {
            let uri = if query.is_empty() { path } else { format!("{path}?{query}") };
            answer(&method, &uri, &headers)?;
        }

        /// The listing's numeric parameters at and past every bound (the first version of
        /// this test found `expiring_within` and `offset` overflowing).
        #[test]
        fn listing_parameters_never_panic(
            query in query_with(vec!["main_account", "active", "expiring_within", "limit", "offset"]),
            key in prop::sample::select(vec![ADMIN_KEY, READ_KEY]),
        ) {
            let headers = [("authorization".to_string(), format!("Bearer {key}"))];
            answer("GET", &format!("/v1/tokens?{query}"), &headers)?;
        }
    }
}
