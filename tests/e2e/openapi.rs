//! End-to-end: the built Worker under `wrangler dev` (started by ./scripts/test.sh) answers
//! what openapi.json documents. Every answer below (sync, status, get, list, cleanup,
//! reencrypt, the seed interface and the errors) is validated against the schema the document
//! gives for its route, method and status.

use chrono::{Duration, Utc};
use serde_json::Value;

use crate::support::openapi::Spec;
use crate::support::{admin_key, bearer, demo_tokens, jwt, read_key, Api, TestStack};

/// Calls the Worker, checks the status, and validates the body against the document.
async fn check(
    spec: &Spec,
    method: &str,
    path_and_query: &str,
    key: Option<&str>,
    status: u16,
) -> Value {
    let answer = Api::worker().call(method, path_and_query, key).await;
    assert_eq!(
        answer.status, status,
        "{method} {path_and_query}: {}",
        answer.body
    );
    assert!(
        answer
            .content_type
            .as_deref()
            .is_some_and(|c| c.starts_with("application/json")),
        "{method} {path_and_query}: content-type {:?}",
        answer.content_type
    );
    let path = path_and_query.split('?').next().unwrap();
    spec.validate_response(method, path, status, &answer.body)
        .unwrap_or_else(|e| panic!("{e}"));
    answer.body
}

#[tokio::test]
async fn the_worker_serves_the_committed_document() {
    let spec = Spec::load();
    let answer = Api::worker().call("GET", "/openapi.json", None).await;
    assert_eq!(answer.status, 200);
    // Not assert_eq: a failure would print the whole document twice.
    assert!(
        answer.text == token_manager::http::OPENAPI_JSON && answer.body == spec.doc,
        "the Worker serves another openapi.json than the repository's: rebuild it (scripts/build-worker.sh)"
    );
    check(&spec, "GET", "/health", None, 200).await;
}

#[tokio::test]
async fn every_answer_matches_the_document() {
    let spec = Spec::load();
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    // One expired token (for cleanup and 410), one malformed value (skipped by sync), one
    // key without an expiry anywhere (expires_at null), one with only a Redis TTL.
    stack.set(
        "token:APEX_8200001",
        jwt("expired", Utc::now() - Duration::minutes(1)).as_str(),
    );
    stack.set("token:APEX_8300001", "{\"not\": \"a token\"}");
    stack.set("token:APEX_8400001", "opaque-token-without-expiry");
    stack.set_px("token:APEX_8500001", "opaque-token-with-ttl", 3_600_000);
    let (admin, read) = (admin_key(), read_key());
    let (admin, read) = (Some(admin.as_str()), Some(read.as_str()));

    // Before the first sync: no last_sync, no recent tokens.
    let status = check(&spec, "GET", "/v1/status", read, 200).await;
    assert!(status["last_sync"].is_null());

    let sync = check(&spec, "POST", "/v1/sync", admin, 200).await;
    assert_eq!(sync["skipped"].as_array().unwrap().len(), 1, "{sync}");
    check(&spec, "GET", "/token-manager?action=sync", admin, 200).await;
    check(&spec, "POST", "/?action=sync", admin, 200).await;

    let status = check(&spec, "GET", "/v1/status", read, 200).await;
    assert!(status["last_sync"].is_object());
    check(&spec, "GET", "/token-manager?action=status", read, 200).await;
    check(
        &spec,
        "POST",
        "/functions/v1/token-manager?action=status",
        admin,
        200,
    )
    .await;

    for account in [
        "APEX_136189",
        "PAAPEX1361890000003",
        "APEX_8400001",
        "APEX_8500001",
    ] {
        check(&spec, "GET", &format!("/v1/tokens/{account}"), read, 200).await;
        check(
            &spec,
            "GET",
            &format!("/token-manager?action=get&account={account}"),
            read,
            200,
        )
        .await;
    }
    let no_expiry = check(&spec, "GET", "/v1/tokens/APEX_8400001", read, 200).await;
    assert!(no_expiry["expires_at"].is_null() && no_expiry["md_access_token"].is_null());

    for query in [
        "",
        "?main_account=APEX_272045",
        "?active=true&limit=5&offset=2",
        "?expiring_within=10m",
        "?active=false",
    ] {
        check(&spec, "GET", &format!("/v1/tokens{query}"), read, 200).await;
    }

    // Account health: the demo accounts and the four extra ones (the malformed value has no
    // row), the expired one as such.
    let health = check(&spec, "GET", "/v1/accounts", read, 200).await;
    assert_eq!(
        (&health["accounts"], &health["states"]["expired"]),
        (&25.into(), &1.into()),
        "{health}"
    );
    check(&spec, "GET", "/v1/accounts", admin, 200).await;

    check(&spec, "POST", "/v1/reencrypt", admin, 200).await;

    // Errors, each against the documented response for its status.
    check(&spec, "GET", "/v1/status", None, 401).await;
    check(&spec, "GET", "/v1/status", Some("not-a-key"), 401).await;
    check(&spec, "POST", "/v1/sync", read, 403).await;
    check(&spec, "GET", "/token-manager?action=cleanup", read, 403).await;
    check(&spec, "GET", "/v1/tokens/NOPE", read, 404).await;
    check(
        &spec,
        "GET",
        "/token-manager?action=get&account=NOPE",
        read,
        404,
    )
    .await;
    check(&spec, "PUT", "/v1/sync", admin, 405).await;
    check(&spec, "DELETE", "/v1/tokens/APEX_136189", admin, 405).await;
    check(&spec, "GET", "/v1/tokens/APEX_8200001", read, 410).await;
    check(&spec, "GET", "/token-manager?action=drop", read, 400).await;
    check(&spec, "GET", "/token-manager?action=get", read, 400).await;
    check(&spec, "GET", "/v1/tokens?limit=0", read, 400).await;

    let cleanup = check(&spec, "POST", "/v1/cleanup", admin, 200).await;
    assert_eq!(cleanup["cleaned"], 1);
    check(&spec, "GET", "/token-manager?action=cleanup", admin, 200).await;
    check(&spec, "GET", "/v1/tokens/APEX_8200001", read, 410).await;
    // Every run so far (syncs, cleanups, the re-encryption), with its counts.
    let runs = check(&spec, "GET", "/v1/runs?limit=200", read, 200).await;
    assert!(runs["runs"].as_array().unwrap().len() >= 5, "{runs}");
    check(&spec, "GET", "/v1/runs?limit=201", read, 400).await;

    // A held sync lock answers 409.
    stack.set(token_manager::jobs::sync::LOCK_KEY, "someone-else");
    check(&spec, "POST", "/v1/sync", admin, 409).await;
    stack.del(token_manager::jobs::sync::LOCK_KEY);

    // No route takes a body: a malformed one is never read, one declared too large is 413.
    for (body, status) in [
        (b"[1]".to_vec(), 200),
        (vec![b' '; token_manager::http::MAX_BODY_BYTES + 1], 413),
    ] {
        let answer = Api::worker()
            .request("POST", "/v1/cleanup", Some(&bearer(admin.unwrap())), &body)
            .await;
        assert_eq!(answer.status, status);
        spec.validate_response("POST", "/v1/cleanup", status, &answer.body)
            .unwrap_or_else(|e| panic!("{e}"));
    }
}
