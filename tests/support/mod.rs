//! Shared test fixtures: the test stack's settings (exported by ./scripts/test.sh), a clean
//! database and Redis per test, realistic token data, and SQL access for assertions.
#![allow(dead_code)]

use std::collections::HashMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use token_manager::config::Config;
use token_manager::jobs::Services;
use tokio::sync::{Mutex, MutexGuard};

/// Tests share one stack, so they take turns.
static SERIAL: Mutex<()> = Mutex::const_new(());

/// A setting of the test stack; fails the test with what to do when it is missing.
pub fn var(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: run the tests with ./scripts/test.sh, which starts the services they need")
    })
}

/// One test's view of the stack: exclusive use, starting from empty tables and Redis.
pub struct TestStack {
    pub pg: tokio_postgres::Client,
    pub redis: redis::Connection,
    _turn: MutexGuard<'static, ()>,
}

impl TestStack {
    /// Waits for its turn, then empties the token tables and Redis.
    pub async fn start() -> Self {
        let turn = SERIAL.lock().await;
        let (pg, connection) =
            tokio_postgres::connect(&var("TM_TEST_DATABASE_URL"), tokio_postgres::NoTls)
                .await
                .expect("connect to the test Postgres");
        tokio::spawn(connection);
        pg.batch_execute(
            "drop trigger if exists reject_one on tradovate_tokens; drop function if exists reject_one();
             drop trigger if exists reject_reads on token_reads; drop function if exists reject_reads();
             truncate tradovate_tokens, token_key_mappings, sync_runs, token_reads",
        )
        .await
        .unwrap();
        let mut redis = redis::Client::open(var("TM_TEST_REDIS_URL"))
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("FLUSHDB").exec(&mut redis).unwrap();
        Self {
            pg,
            redis,
            _turn: turn,
        }
    }

    /// The settings the Worker gets under test (as name → value).
    pub fn settings(&self) -> HashMap<&'static str, String> {
        HashMap::from([
            ("SUPABASE_URL", var("TM_TEST_POSTGREST_URL")),
            ("SUPABASE_REST_URL", var("TM_TEST_POSTGREST_URL")),
            ("SUPABASE_SERVICE_ROLE_KEY", var("TM_TEST_SERVICE_ROLE_KEY")),
            ("UPSTASH_REDIS_REST_URL", var("TM_TEST_UPSTASH_URL")),
            ("UPSTASH_REDIS_REST_TOKEN", var("TM_TEST_UPSTASH_TOKEN")),
            ("TOKEN_MANAGER_ADMIN_KEY", var("TM_TEST_ADMIN_KEY")),
            ("TOKEN_MANAGER_READ_KEY", var("TM_TEST_READ_KEY")),
            ("TOKEN_ENCRYPTION_KEY", var("TM_TEST_ENCRYPTION_KEY")),
        ])
    }

    /// Configuration from [`Self::settings`] with `changes` applied (an empty value removes).
    pub fn config_with(&self, changes: &[(&'static str, &str)]) -> Config {
        let mut settings = self.settings();
        for (name, value) in changes {
            settings.insert(name, value.to_string());
        }
        Config::from_lookup(|name| settings.get(name).cloned())
            .expect("test configuration is valid")
    }

    /// Services as the Worker builds them, against the test stack.
    pub fn services(&self) -> Services {
        Services::new(self.config_with(&[]))
    }

    /// SET key value.
    pub fn set(&mut self, key: &str, value: impl redis::ToRedisArgs) {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .exec(&mut self.redis)
            .unwrap();
    }

    /// SET key value PX ttl_ms.
    pub fn set_px(&mut self, key: &str, value: &str, ttl_ms: u64) {
        redis::cmd("SET")
            .arg(key)
            .arg(value)
            .arg("PX")
            .arg(ttl_ms)
            .exec(&mut self.redis)
            .unwrap();
    }

    /// DEL key.
    pub fn del(&mut self, key: &str) {
        redis::cmd("DEL").arg(key).exec(&mut self.redis).unwrap();
    }

    /// Puts `tokens` into Redis.
    pub fn seed(&mut self, tokens: &[(String, String)]) {
        for (key, value) in tokens {
            self.set(key, value.as_str());
        }
    }

    /// Rows of `sql` as JSON objects (the query is wrapped in `to_jsonb`).
    pub async fn query(&self, sql: &str) -> Vec<Value> {
        let wrapped = format!("select to_jsonb(q)::text from ({sql}) q");
        self.pg
            .query(&wrapped, &[])
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"))
            .iter()
            .map(|row| serde_json::from_str(row.get::<_, &str>(0)).unwrap())
            .collect()
    }

    /// One token row by account name.
    pub async fn token_row(&self, account: &str) -> Value {
        let rows = self
            .query(&format!(
                "select * from tradovate_tokens where account_name = '{account}'"
            ))
            .await;
        rows.into_iter()
            .next()
            .unwrap_or_else(|| panic!("no row for {account}"))
    }

    /// Everything our tables hold, as text (for leak checks).
    pub async fn dump(&self) -> String {
        let mut all = String::new();
        for table in ["tradovate_tokens", "token_key_mappings", "sync_runs"] {
            for row in self.query(&format!("select * from {table}")).await {
                all.push_str(&row.to_string());
                all.push('\n');
            }
        }
        all
    }
}

/// A JWT-shaped token with `exp` (signature is random-looking; nobody verifies it here).
pub fn jwt(subject: &str, exp: DateTime<Utc>) -> String {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"HS256","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(
        json!({ "sub": subject, "exp": exp.timestamp(), "iat": exp.timestamp() - 4800 })
            .to_string(),
    );
    let signature = URL_SAFE_NO_PAD.encode(format!("sig-{subject}-{}", exp.timestamp()));
    format!("{header}.{payload}.{signature}")
}

/// The seed's 22 accounts: 3 main Apex accounts and 19 PA sub-accounts.
pub fn demo_accounts() -> Vec<String> {
    let mut accounts = Vec::new();
    for (main, subs) in [("136189", 7), ("266668", 6), ("272045", 6)] {
        accounts.push(format!("APEX_{main}"));
        for n in 1..=subs {
            accounts.push(format!("PAAPEX{main}{n:07}"));
        }
    }
    accounts
}

/// Redis keys and values for the demo accounts, expiring at `exp`: mostly raw JWTs, every
/// third one a Tradovate-style JSON blob with `expirationTime`.
pub fn demo_tokens(exp: DateTime<Utc>) -> Vec<(String, String)> {
    demo_accounts()
        .into_iter()
        .enumerate()
        .map(|(i, account)| {
            let token = jwt(&account, exp);
            let value = if i % 3 == 2 {
                json!({
                    "accessToken": token, "mdAccessToken": jwt(&format!("md-{account}"), exp),
                    "expirationTime": exp.to_rfc3339(), "userId": 100_000 + i, "name": account,
                })
                .to_string()
            } else {
                token
            };
            (format!("token:{account}"), value)
        })
        .collect()
}

/// The plaintext access token inside a demo value.
pub fn token_of(value: &str) -> String {
    match serde_json::from_str::<Value>(value) {
        Ok(v) => v["accessToken"].as_str().unwrap().to_string(),
        Err(_) => value.to_string(),
    }
}

/// An answer of the Worker under `wrangler dev`.
pub struct WorkerAnswer {
    pub status: u16,
    pub content_type: String,
    pub cache_control: Option<String>,
    pub text: String,
    pub body: Value,
}

/// Calls the Worker at `TM_TEST_WORKER_URL`, with `key` as a bearer key; the answer must be JSON.
pub async fn call_worker(method: &str, path_and_query: &str, key: Option<&str>) -> WorkerAnswer {
    let url = format!("{}{path_and_query}", var("TM_TEST_WORKER_URL"));
    let mut request = reqwest::Client::new().request(method.parse().unwrap(), url);
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    let response = request
        .send()
        .await
        .expect("the Worker under wrangler dev answers");
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    let (status, content_type, cache_control) = (
        response.status().as_u16(),
        header("content-type").unwrap_or_default(),
        header("cache-control"),
    );
    let text = response.text().await.unwrap();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|_| panic!("{method} {path_and_query} answered non-JSON: {text}"));
    WorkerAnswer {
        status,
        content_type,
        cache_control,
        text,
        body,
    }
}

/// While alive, the test Redis refuses `SCAN` to the user upstash-local connects as, so every
/// sync (and status) through Upstash fails with Redis's NOPERM error after the run has been
/// recorded as started. Dropping it (also when a test panics) gives the permission back, so
/// later tests on the shared stack are unaffected.
pub struct ScanDenied {
    redis: redis::Connection,
}

impl ScanDenied {
    /// Takes `SCAN` away from Redis's default user.
    pub fn start() -> Self {
        let mut redis = redis::Client::open(var("TM_TEST_REDIS_URL"))
            .unwrap()
            .get_connection()
            .unwrap();
        redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg("-scan")
            .exec(&mut redis)
            .expect("ACL SETUSER default -scan");
        Self { redis }
    }
}

impl Drop for ScanDenied {
    fn drop(&mut self) {
        let restored = redis::cmd("ACL")
            .arg("SETUSER")
            .arg("default")
            .arg("+@all")
            .exec(&mut self.redis);
        if let Err(e) = restored {
            eprintln!("could not give SCAN back to Redis's default user: {e}");
        }
    }
}

/// A configuration with the given API keys whose Upstash and Supabase are a closed local port:
/// every job fails fast with an upstream error (502), after authentication. No services needed.
pub fn unreachable_config(admin_key: &str, read_key: &str) -> Config {
    let closed = format!("http://127.0.0.1:{}", closed_port());
    Config::from_lookup(|name| {
        Some(match name {
            "SUPABASE_URL" | "UPSTASH_REDIS_REST_URL" => closed.clone(),
            "SUPABASE_SERVICE_ROLE_KEY" | "UPSTASH_REDIS_REST_TOKEN" => "not-used".into(),
            "TOKEN_MANAGER_ADMIN_KEY" => admin_key.into(),
            "TOKEN_MANAGER_READ_KEY" => read_key.into(),
            "TOKEN_ENCRYPTION_KEY" => "ZGV2LW9ubHktZW5jcnlwdGlvbi1rZXktMzJieXRlcyE=".into(),
            // Renewal on: a renew pass, like every job, reaches the closed port (502).
            "RENEW_ENABLED" => "true".into(),
            _ => return None,
        })
    })
    .expect("test configuration is valid")
}

/// A local port nothing listens on (bound, then released), the same for the whole process.
pub fn closed_port() -> u16 {
    static PORT: std::sync::OnceLock<u16> = std::sync::OnceLock::new();
    *PORT.get_or_init(|| {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    })
}
