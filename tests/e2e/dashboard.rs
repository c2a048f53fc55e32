//! The status page in a real browser: tests/dashboard/dashboard.mjs drives Debian's headless
//! Chromium with playwright-core against the Worker under `wrangler dev`. This side seeds the
//! 22 demo accounts in five states, syncs, and breaks and restores Upstash when the script
//! asks; the script signs in (a wrong key first), checks every account's state, the counts,
//! the runs, the failed run and its error in words, the 30 s refresh, phone width, sign-out,
//! the security headers, and that no token or other secret is in the page or its traffic.
//! Screenshots land in `$TM_TEST_STATE_DIR/dashboard/`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Stdio;

use chrono::{Duration, Utc};
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;

use crate::support::faults::ScanDenied;
use crate::support::{demo_accounts, jwt, read_key, var, TestStack};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/dashboard/dashboard.mjs");
const CHROMIUM: &str = "/usr/bin/chromium";

/// Fails with what to install when the browser or its driver is missing: never a silent skip.
fn require_browser() {
    assert!(
        std::path::Path::new(CHROMIUM).exists(),
        "{CHROMIUM} is missing: the dashboard test needs Debian's chromium (./scripts/test.sh installs it)"
    );
    let driver = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("node_modules/playwright-core");
    assert!(
        driver.exists(),
        "{} is missing: npm install (./scripts/test.sh does it from package-lock.json)",
        driver.display()
    );
}

#[tokio::test]
async fn the_status_page_in_a_real_browser() {
    require_browser();
    let mut stack = TestStack::start().await;
    let now = Utc::now();
    // The demo accounts, most valid for an hour; a few in the other states.
    let special = BTreeMap::from([
        ("PAAPEX1361890000007", (now + Duration::minutes(5), "soon")),
        (
            "PAAPEX2666680000006",
            (now + Duration::minutes(12), "renewal"),
        ),
        (
            "PAAPEX2720450000005",
            (now - Duration::minutes(2), "expired"),
        ),
        (
            "PAAPEX2720450000006",
            (now + Duration::hours(1), "inactive"),
        ),
    ]);
    let mut expected = BTreeMap::new();
    let mut secrets = Vec::new();
    for account in demo_accounts() {
        let (exp, state) = special
            .get(account.as_str())
            .copied()
            .unwrap_or((now + Duration::hours(1), "active"));
        let token = jwt(&account, exp);
        stack.set(&format!("token:{account}"), token.as_str());
        secrets.push(token);
        expected.insert(account, state);
    }
    let worker = stack.worker();
    assert_eq!(worker.sync().await.status, 200);
    // Its key leaves Redis: the next sync makes the token inactive.
    stack.del("token:PAAPEX2720450000006");
    let second = worker.sync().await;
    assert_eq!(second.body["deactivated"], 1, "{}", second.body);

    let out = PathBuf::from(var("TM_TEST_STATE_DIR")).join("dashboard");
    std::fs::create_dir_all(&out).unwrap();
    for name in [
        "TM_TEST_ADMIN_KEY",
        "TM_TEST_ENCRYPTION_KEY",
        "TM_TEST_UPSTASH_TOKEN",
        "TM_TEST_SERVICE_ROLE_KEY",
    ] {
        secrets.push(var(name));
    }
    let secrets_file = out.join("secrets.txt");
    std::fs::write(&secrets_file, secrets.join("\n")).unwrap();
    let expect_file = out.join("expect.json");
    let expectation = json!({
        "accounts": expected,
        "mains": ["APEX_136189", "APEX_266668", "APEX_272045"],
        "with_expiry": 22,
        // Not the expired and the inactive one.
        "renewable": 20,
        "supabase_tokens": 22,
        "redis_tokens": 21,
        "active_tokens": 21,
        // expires within EXPIRING_SOON_MINUTES (10): the 5-minute one and the expired one.
        "expiring_soon": 2,
        "runs_before": 2,
    });
    std::fs::write(&expect_file, expectation.to_string()).unwrap();

    let mut child = Command::new("node")
        .arg(SCRIPT)
        .env("TM_DASH_URL", var("TM_TEST_WORKER_URL"))
        .env("TM_DASH_READ_KEY", read_key())
        .env("TM_DASH_SECRETS_FILE", &secrets_file)
        .env("TM_DASH_EXPECT_FILE", &expect_file)
        .env("TM_DASH_OUT_DIR", &out)
        .env("TM_DASH_CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("node runs (Node 20 or newer)");
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut stderr = child.stderr.take().unwrap();
    let stderr_text = tokio::spawn(async move {
        let mut text = String::new();
        stderr.read_to_string(&mut text).await.ok();
        text
    });

    let mut denied = None;
    let mut result = None;
    while let Some(line) = lines.next_line().await.unwrap() {
        match line.as_str() {
            "NEED break-upstash" => {
                denied = Some(ScanDenied::start());
                let failed = worker.sync().await;
                assert_eq!(failed.status, 502, "{}", failed.body);
            }
            "NEED restore-upstash" => denied = None,
            other if other.starts_with("RESULT ") => result = Some(other[7..].to_string()),
            other => panic!("unexpected line from the browser script: {other}"),
        }
        if line.starts_with("NEED ") {
            stdin.write_all(b"DONE\n").await.unwrap();
            stdin.flush().await.unwrap();
        }
    }
    drop(denied);
    let status = child.wait().await.unwrap();
    let log = stderr_text.await.unwrap();
    eprintln!("{log}");
    assert!(
        status.success(),
        "the browser test failed ({status}):\n{log}"
    );
    let result: serde_json::Value =
        serde_json::from_str(&result.expect("the script reports its result")).unwrap();
    assert_eq!(result["ok"], true);
    assert!(
        out.join("dashboard.png").exists(),
        "no screenshot in {}",
        out.display()
    );
    eprintln!(
        "dashboard: {} browser requests checked in {:.1} s; screenshots in {}",
        result["requests"],
        result["seconds"].as_f64().unwrap_or_default(),
        out.display()
    );
}
