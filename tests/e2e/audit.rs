//! The audit trail on the built Worker: reads are recorded after the answer (`wait_until`),
//! with the key's fingerprint name and the client's user agent, and listed by GET /v1/audit.

use chrono::{Duration, Utc};
use token_manager::crypto::key_fingerprint;

use crate::support::{admin_key, bearer, demo_tokens, read_key, TestStack};

#[tokio::test]
async fn reads_through_the_worker_are_audited() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    let (admin, read) = (admin_key(), read_key());
    let worker = stack.worker();
    assert_eq!(worker.sync().await.status, 200);

    let authorization = bearer(&read);
    let headers = [
        ("authorization", authorization.as_str()),
        ("user-agent", "e2e-audit/1.0"),
    ];
    for (path, status) in [
        ("/v1/tokens/APEX_136189", 200),
        ("/token-manager?action=get&account=NOPE_1", 404),
    ] {
        let answer = worker.send("GET", path, &headers, b"").await;
        assert_eq!(answer.status, status, "{path}");
    }

    // A read and its row are one PostgREST call; a row the Worker has to write on its own
    // goes out after the answer (wait_until), so poll briefly either way.
    let mut reads = Vec::new();
    for _ in 0..50 {
        let audit = worker.call("GET", "/v1/audit", Some(&admin)).await;
        assert_eq!(audit.status, 200, "{}", audit.body);
        reads = audit.body["reads"].as_array().unwrap().clone();
        if reads.len() == 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert_eq!(reads.len(), 2, "{reads:?}");
    let name = format!("read-{}", key_fingerprint(&read));
    assert_eq!(
        (
            &reads[0]["account_name"],
            &reads[0]["outcome"],
            &reads[0]["key_name"]
        ),
        (&"NOPE_1".into(), &404.into(), &name.clone().into())
    );
    assert_eq!(
        (
            &reads[1]["account_name"],
            &reads[1]["outcome"],
            &reads[1]["user_agent"]
        ),
        (&"APEX_136189".into(), &200.into(), &"e2e-audit/1.0".into())
    );
    let text = serde_json::to_string(&stack.query("select * from token_reads").await).unwrap();
    assert!(!text.contains(&read) && !text.contains(&admin));
}
