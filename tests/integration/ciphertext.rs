//! Ciphertext format v2 and what the fingerprint covers, against the real services: rows an
//! earlier version wrote in format v1 (AES-256-GCM, written here independently of the
//! keyring) still open, `/v1/reencrypt` upgrades them to v2 without touching `updated_at`,
//! and a changed `mdAccessToken` or metadata reaches Supabase on the next sync.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use token_manager::jobs::{get::get, reencrypt::reencrypt, sync::sync, Trigger};

use crate::support::{demo_tokens, token_of, var, TestStack};

/// `plaintext` sealed as format v1 did: `v1:<kid>:<base64(nonce || ciphertext || tag)>`,
/// associated data `aad`.
fn seal_v1(key_id: &str, plaintext: &str, aad: &str, nonce: u8) -> String {
    let key = token_manager::crypto::decode_base64_lenient(&var("TM_TEST_ENCRYPTION_KEY")).unwrap();
    let cipher = Aes256Gcm::new_from_slice(&key).unwrap();
    let nonce = [nonce; 12];
    let sealed = cipher
        .encrypt(
            Nonce::from_slice(&nonce),
            Payload {
                msg: plaintext.as_bytes(),
                aad: aad.as_bytes(),
            },
        )
        .unwrap();
    format!(
        "v1:{key_id}:{}",
        STANDARD.encode([&nonce[..], &sealed].concat())
    )
}

#[tokio::test]
async fn v1_rows_open_and_reencrypt_upgrades_them_to_v2() {
    let mut stack = TestStack::start().await;
    let tokens = demo_tokens(Utc::now() + Duration::hours(1));
    stack.seed(&tokens);
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    // Every row as the previous version stored it.
    let key_id = services.config.keyring.current_key_id().to_string();
    for (n, (key, value)) in tokens.iter().enumerate() {
        let account = key.trim_start_matches("token:");
        let access = seal_v1(&key_id, &token_of(value), account, n as u8);
        let md = serde_json::from_str::<Value>(value).ok().map(|v| {
            seal_v1(
                &key_id,
                v["mdAccessToken"].as_str().unwrap(),
                &format!("{account}#md"),
                200,
            )
        });
        let set_md = match &md {
            Some(md) => {
                format!("jsonb_set(metadata, '{{md_access_token}}', to_jsonb('{md}'::text))")
            }
            None => "metadata".into(),
        };
        stack
            .pg
            .execute(
                &format!("update tradovate_tokens set access_token = $1, metadata = {set_md} where account_name = $2"),
                &[&access, &account],
            )
            .await
            .unwrap();
    }
    let v1_rows = "select account_name from tradovate_tokens where access_token like 'v1:%' or metadata->>'md_access_token' like 'v1:%'";
    assert_eq!(stack.query(v1_rows).await.len(), 22);
    let updated_before = stack
        .query("select account_name, updated_at from tradovate_tokens order by 1")
        .await;

    // Read transparently.
    for (key, value) in &tokens {
        let got = get(&services, key.trim_start_matches("token:"), Utc::now())
            .await
            .unwrap();
        assert_eq!(got.token, token_of(value));
        let md = serde_json::from_str::<Value>(value)
            .ok()
            .map(|v| v["mdAccessToken"].as_str().unwrap().to_string());
        assert_eq!(got.md_access_token, md);
    }

    // Upgraded under the same key, once.
    let report = reencrypt(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.reencrypted, report.failed.len()), (22, 0));
    assert_eq!(stack.query(v1_rows).await, Vec::<Value>::new());
    assert_eq!(
        stack
            .query("select count(*) as n from tradovate_tokens where access_token like 'v2:%'")
            .await,
        vec![json!({"n": 22})]
    );
    assert_eq!(
        stack
            .query("select account_name, updated_at from tradovate_tokens order by 1")
            .await,
        updated_before
    );
    assert_eq!(
        reencrypt(&services, Trigger::Http)
            .await
            .unwrap()
            .reencrypted,
        0
    );
    for (key, value) in &tokens {
        let got = get(&services, key.trim_start_matches("token:"), Utc::now())
            .await
            .unwrap();
        assert_eq!(got.token, token_of(value));
    }
    let again = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!(
        (again.updated, again.unchanged),
        (0, 22),
        "fingerprints kept"
    );
}

#[tokio::test]
async fn a_changed_md_token_or_metadata_is_synced() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    let tokens = demo_tokens(exp);
    stack.seed(&tokens);
    let services = stack.services();
    sync(&services, Trigger::Http).await.unwrap();

    let (key, value) = tokens
        .iter()
        .find(|(_, v)| v.starts_with('{'))
        .expect("the demo set has JSON values");
    let account = key.trim_start_matches("token:");
    let mut changed: Value = serde_json::from_str(value).unwrap();
    changed["mdAccessToken"] = json!("a-new-market-data-token");
    stack.set(key, changed.to_string());
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.updated, report.unchanged), (1, 21));
    let got = get(&services, account, Utc::now()).await.unwrap();
    assert_eq!(got.token, token_of(value));
    assert_eq!(
        got.md_access_token.as_deref(),
        Some("a-new-market-data-token")
    );

    changed["name"] = json!("renamed");
    changed["userId"] = json!(42);
    stack.set(key, changed.to_string());
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.updated, report.unchanged), (1, 21));
    let row = stack.token_row(account).await;
    assert_eq!(
        (&row["metadata"]["name"], &row["metadata"]["user_id"]),
        (&json!("renamed"), &json!("42"))
    );
    let report = sync(&services, Trigger::Http).await.unwrap();
    assert_eq!((report.updated, report.unchanged), (0, 22));
}
