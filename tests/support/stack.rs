//! [`TestStack`]: one test's exclusive turn on the local stack (started by ./scripts/test.sh,
//! its settings in `TM_TEST_*`), from empty tables and an empty Redis; Redis and SQL access
//! for arranging and asserting, and the API as the Worker would serve it.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use token_manager::config::Config;
use token_manager::jobs::sync::LOCK_KEY;
use token_manager::jobs::Services;
use tokio::sync::{Mutex, MutexGuard};

use super::api::Api;

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
             truncate tradovate_tokens, token_key_mappings, sync_runs, token_reads, alert_states",
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

    /// Everything our tables hold, as text in a stable order (for leak checks, and to show
    /// that nothing at all changed).
    pub async fn dump(&self) -> String {
        let mut all = String::new();
        for table in ["tradovate_tokens", "token_key_mappings", "sync_runs"] {
            let sql = format!("select * from {table} t order by t::text");
            for row in self.query(&sql).await {
                all.push_str(&row.to_string());
                all.push('\n');
            }
        }
        all
    }

    /// Every token row and key mapping, in a stable order: what "rows lost = 0" compares.
    pub async fn rows(&self) -> Vec<Value> {
        let mut all = self
            .query(
                "select account_name, main_account, token_type, access_token, token_length, expires_at,
                        created_at, updated_at, is_active, metadata, token_fingerprint, key_id
                   from tradovate_tokens order by account_name",
            )
            .await;
        all.extend(
            self.query(
                "select redis_key, main_account, key_type, account_name
                   from token_key_mappings order by redis_key",
            )
            .await,
        );
        all
    }

    /// How many rows `sql` returns.
    pub async fn count(&self, sql: &str) -> i64 {
        self.query(&format!("select count(*) as n from ({sql}) c"))
            .await[0]["n"]
            .as_i64()
            .unwrap()
    }

    /// The last run of `kind` in `sync_runs`: its status, error and whether it finished.
    pub async fn last_run(&self, kind: &str) -> Value {
        self.query(&format!(
            "select status, error, finished_at is not null as finished from sync_runs
              where kind = '{kind}' order by started_at desc limit 1"
        ))
        .await
        .into_iter()
        .next()
        .unwrap_or_else(|| panic!("no {kind} run recorded"))
    }

    /// Every Redis key with its value (binary-safe).
    pub fn redis_state(&mut self) -> BTreeMap<Vec<u8>, Vec<u8>> {
        let keys: Vec<Vec<u8>> = redis::cmd("KEYS").arg("*").query(&mut self.redis).unwrap();
        keys.into_iter()
            .filter_map(|k| {
                let v: Option<Vec<u8>> = redis::cmd("GET").arg(&k).query(&mut self.redis).ok()?;
                v.map(|v| (k, v))
            })
            .collect()
    }

    /// Whether the sync lock is held in Redis.
    pub fn lock_held(&mut self) -> bool {
        let lock: Option<String> = redis::cmd("GET")
            .arg(LOCK_KEY)
            .query(&mut self.redis)
            .unwrap();
        lock.is_some()
    }

    /// The API natively, configured as the Worker under test.
    pub fn api(&self) -> Api {
        self.api_with(&[])
    }

    /// The API natively with [`Self::config_with`]`(changes)`.
    pub fn api_with(&self, changes: &[(&'static str, &str)]) -> Api {
        Api::native(Ok(self.config_with(changes)))
    }

    /// The built Worker under `wrangler dev` (its settings are the stack's).
    pub fn worker(&self) -> Api {
        Api::worker()
    }

    /// What scripts/lib.sh (`prepare_database`) applies on every start of a stack, applied
    /// again: scripts/sql/supabase-roles.sql with psql, then the migrations with dbmate (which
    /// finds them all applied). A test after this sees a stack that was started twice.
    pub fn reapply_roles_and_migrations(&self) {
        let root = env!("CARGO_MANIFEST_DIR");
        let url = var("TM_TEST_DATABASE_URL");
        run(Command::new(psql())
            .arg(&url)
            .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-f"])
            .arg(format!("{root}/scripts/sql/supabase-roles.sql")));
        run(Command::new(format!("{root}/node_modules/.bin/dbmate"))
            .args(["--url", &format!("{url}?sslmode=disable")])
            .args(["--migrations-dir", &format!("{root}/migrations")])
            .args([
                "--migrations-table",
                "supabase_migrations.schema_migrations",
            ])
            .args(["--no-dump-schema", "migrate"]));
    }
}

/// The newest PostgreSQL client installed from Debian's packages, as scripts/lib.sh finds it.
fn psql() -> PathBuf {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (scripts/test.sh installs it)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            let psql = entry.path().join("bin/psql");
            psql.is_file().then_some((version, psql))
        })
        .collect();
    found.sort();
    found
        .pop()
        .expect("no psql under /usr/lib/postgresql/*/bin")
        .1
}

/// Runs `command`, failing the test with its output unless it succeeds.
fn run(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?}: {}\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
