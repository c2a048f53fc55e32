//! The seed's "Querying Tokens in Supabase" SQL, run as written, returns what it says.

use chrono::{Duration, Utc};
use token_manager::jobs::{sync::sync, Trigger};

use crate::support::{demo_tokens, jwt, TestStack};

#[tokio::test]
async fn the_seed_queries_run_as_written() {
    let mut stack = TestStack::start().await;
    stack.seed(&demo_tokens(Utc::now() + Duration::hours(1)));
    stack.set(
        "token:APEX_7000001",
        jwt("soon", Utc::now() + Duration::minutes(4)).as_str(),
    );
    sync(&stack.services(), Trigger::Http).await.unwrap();

    let active = stack
        .pg
        .query(
            "SELECT account_name, main_account, expires_at, token_length
FROM tradovate_tokens 
WHERE is_active = true 
ORDER BY updated_at DESC;",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(active.len(), 23);
    assert!(active.iter().all(|r| r.get::<_, i32>("token_length") > 100));

    let by_main = stack
        .pg
        .query(
            "SELECT * FROM tradovate_tokens 
WHERE main_account = 'APEX_136189' 
AND is_active = true;",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(by_main.len(), 8, "APEX_136189 and its 7 PA sub-accounts");

    let expiring = stack
        .pg
        .query(
            "SELECT account_name, expires_at 
FROM tradovate_tokens 
WHERE expires_at < NOW() + INTERVAL '10 minutes' 
AND is_active = true;",
            &[],
        )
        .await
        .unwrap();
    assert_eq!(expiring.len(), 1);
    assert_eq!(expiring[0].get::<_, &str>("account_name"), "APEX_7000001");
}
