//! Key rotation: previous keys still decrypt, re-encryption moves every row to the current
//! key in batches without changing `updated_at`, and a later sync sees nothing changed.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{Duration, Utc};
use token_manager::crypto::Keyring;
use token_manager::jobs::{
    get::get, reencrypt::reencrypt, sync::sync, JobError, Services, Trigger,
};

use crate::support::{demo_tokens, token_of, var, TestStack};

#[tokio::test]
async fn rotating_the_encryption_key_loses_no_token() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let updated_before = stack
        .query("select account_name, updated_at from tradovate_tokens order by 1")
        .await;

    let old_key = var("TM_TEST_ENCRYPTION_KEY");
    let new_key = STANDARD.encode([7u8; 32]);
    let new_id = Keyring::from_base64(&new_key, &[])
        .unwrap()
        .current_key_id()
        .to_string();
    let only_new = Services::new(stack.config_with(&[("TOKEN_ENCRYPTION_KEY", &new_key)]));
    assert!(matches!(
        get(&only_new, "APEX_136189", Utc::now()).await,
        Err(JobError::Decrypt { .. })
    ));

    let rotating = Services::new(stack.config_with(&[
        ("TOKEN_ENCRYPTION_KEY", &new_key),
        ("TOKEN_ENCRYPTION_PREVIOUS_KEYS", &old_key),
        ("SYNC_BATCH_SIZE", "5"),
    ]));
    assert!(
        get(&rotating, "APEX_136189", Utc::now()).await.is_ok(),
        "a previous key still decrypts"
    );
    let report = reencrypt(&rotating, Trigger::Http).await.unwrap();
    assert_eq!(
        (
            report.reencrypted,
            report.failed.len(),
            report.key_id.as_str()
        ),
        (22, 0, new_id.as_str())
    );
    assert_eq!(
        stack
            .query(&format!(
                "select 1 from tradovate_tokens where key_id <> '{new_id}'"
            ))
            .await
            .len(),
        0
    );
    assert_eq!(
        stack
            .query("select account_name, updated_at from tradovate_tokens order by 1")
            .await,
        updated_before
    );
    assert_eq!(
        reencrypt(&rotating, Trigger::Http)
            .await
            .unwrap()
            .reencrypted,
        0,
        "twice re-encrypts once"
    );

    for (key, value) in &tokens {
        let got = get(&only_new, key.trim_start_matches("token:"), Utc::now())
            .await
            .unwrap();
        assert_eq!(got.token, token_of(value));
        if value.starts_with('{') {
            assert!(got.md_access_token.is_some());
        }
    }
    let again = sync(&only_new, Trigger::Http).await.unwrap();
    assert_eq!(
        (again.updated, again.unchanged),
        (0, 22),
        "fingerprints moved to the new key too"
    );
    let runs = stack
        .query("select status, updated from sync_runs where kind = 'reencrypt' order by started_at")
        .await;
    assert_eq!(
        runs[0],
        serde_json::json!({"status": "succeeded", "updated": 22})
    );
}

#[tokio::test]
async fn rows_no_key_opens_are_reported_and_left_alone() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    sync(&stack.services(), Trigger::Http).await.unwrap();
    let before = stack.dump().await;
    let unrelated =
        Services::new(stack.config_with(&[("TOKEN_ENCRYPTION_KEY", &STANDARD.encode([9u8; 32]))]));
    let report = reencrypt(&unrelated, Trigger::Http).await.unwrap();
    assert_eq!(
        (report.success, report.reencrypted, report.failed.len()),
        (false, 0, 22)
    );
    let tokens_after = stack
        .query("select * from tradovate_tokens order by account_name")
        .await;
    assert!(
        before.contains(&tokens_after[0].to_string()),
        "the rows are untouched"
    );
}
