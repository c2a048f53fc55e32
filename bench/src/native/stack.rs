//! The running bench stack: its settings (`scripts/env.sh bench` exports them under the
//! TM_TEST_* names the tests use), direct access to Redis and Postgres for seeding and SQL
//! checks, and the Worker's batch settings.

use std::path::PathBuf;

use super::logs::{Log, Service};
use super::Res;
use token_manager_bench::tokens::Seed;

/// A setting of the stack, or an error saying how to get it.
pub fn var(name: &str) -> Res<String> {
    std::env::var(name).map_err(|_| {
        format!("{name} is not set: run ./scripts/bench.sh (it starts the bench stack and exports its settings)").into()
    })
}

/// Everything the benchmark talks to.
pub struct Stack {
    pub worker_url: String,
    pub postgrest_url: String,
    pub service_role_key: String,
    pub admin_key: String,
    pub read_key: String,
    pub redis: redis::Connection,
    pub pg: tokio_postgres::Client,
    pub upstash_url: String,
    /// The JavaScript Worker of the get's floor (`TM_BENCH_JS_FLOOR_URL`), when bench.sh
    /// started it.
    pub js_floor_url: Option<String>,
    pub upstash_log: Log,
    pub postgrest_log: Log,
    /// The Worker's SYNC_BATCH_SIZE and SCAN_COUNT.
    pub batch_size: u64,
    pub scan_count: u64,
}

impl Stack {
    pub async fn connect() -> Res<Stack> {
        let (pg, connection) =
            tokio_postgres::connect(&var("TM_TEST_DATABASE_URL")?, tokio_postgres::NoTls).await?;
        tokio::spawn(connection);
        let redis = redis::Client::open(var("TM_TEST_REDIS_URL")?)?.get_connection()?;
        let state = PathBuf::from(var("TM_TEST_STATE_DIR")?);
        let setting = |name: &str, default: u64| -> u64 {
            worker_setting(&state, name)
                .and_then(|v| v.parse().ok())
                .unwrap_or(default)
        };
        let postgrest_url = var("TM_TEST_POSTGREST_URL")?;
        let service_role_key = var("TM_TEST_SERVICE_ROLE_KEY")?;
        Ok(Stack {
            worker_url: var("TM_TEST_WORKER_URL")?,
            upstash_url: var("TM_TEST_UPSTASH_URL")?,
            js_floor_url: std::env::var("TM_BENCH_JS_FLOOR_URL")
                .ok()
                .filter(|v| !v.is_empty()),
            upstash_log: Log::new(
                Service::Upstash,
                var("TM_TEST_UPSTASH_LOG")?,
                &var("TM_TEST_UPSTASH_URL")?,
                &var("TM_TEST_UPSTASH_TOKEN")?,
            ),
            postgrest_log: Log::new(
                Service::Postgrest,
                var("TM_TEST_POSTGREST_LOG")?,
                &postgrest_url,
                &service_role_key,
            ),
            postgrest_url,
            service_role_key,
            admin_key: var("TM_TEST_ADMIN_KEY")?,
            read_key: var("TM_TEST_READ_KEY")?,
            redis,
            pg,
            batch_size: setting("SYNC_BATCH_SIZE", 1000),
            scan_count: setting("SCAN_COUNT", 1000),
        })
    }

    /// Empty Redis and token tables.
    pub async fn reset(&mut self) -> Res<()> {
        redis::cmd("FLUSHDB").exec(&mut self.redis)?;
        self.pg
            .batch_execute("truncate tradovate_tokens, token_key_mappings, sync_runs")
            .await?;
        Ok(())
    }

    /// Writes `seeds` to Redis, 1,000 per pipeline.
    pub fn write(&mut self, seeds: &[&Seed]) -> Res<()> {
        for chunk in seeds.chunks(1000) {
            let mut pipe = redis::pipe();
            for s in chunk {
                let cmd = pipe.cmd("SET").arg(&s.key).arg(&s.value);
                if let Some(ttl) = s.ttl_ms {
                    cmd.arg("PX").arg(ttl);
                }
                cmd.ignore();
            }
            pipe.exec(&mut self.redis)?;
        }
        Ok(())
    }

    /// Adds `n` keys of other applications: mostly strings, every tenth a hash, every tenth a
    /// list, and `under_prefix` hashes and lists under `token:` (of another type than a
    /// token), 10,000 commands per pipeline.
    pub fn write_others(&mut self, n: usize, under_prefix: usize) -> Res<()> {
        let keys: Vec<usize> = (0..n).collect();
        for chunk in keys.chunks(10_000) {
            let mut pipe = redis::pipe();
            for &i in chunk {
                match i % 10 {
                    0 => pipe
                        .cmd("HSET")
                        .arg(format!("candle:{i}"))
                        .arg("o")
                        .arg(i)
                        .arg("c")
                        .arg(i + 1),
                    1 => pipe
                        .cmd("RPUSH")
                        .arg(format!("queue:{i}"))
                        .arg("job")
                        .arg(i),
                    _ => pipe
                        .cmd("SET")
                        .arg(format!("cache:{i}"))
                        .arg("cached value of another app"),
                }
                .ignore();
            }
            pipe.exec(&mut self.redis)?;
        }
        let mut pipe = redis::pipe();
        for i in 0..under_prefix {
            match i % 2 {
                0 => pipe
                    .cmd("HSET")
                    .arg(format!("token:STATS{i}"))
                    .arg("hits")
                    .arg(i),
                _ => pipe.cmd("RPUSH").arg(format!("token:QUEUE{i}")).arg("job"),
            }
            .ignore();
        }
        pipe.exec(&mut self.redis)?;
        Ok(())
    }

    /// The CPU time Redis has used so far (INFO cpu: user + system), in ms.
    pub fn redis_cpu_ms(&mut self) -> Res<f64> {
        let info: String = redis::cmd("INFO").arg("cpu").query(&mut self.redis)?;
        Ok(info
            .lines()
            .filter_map(|l| {
                l.strip_prefix("used_cpu_user:")
                    .or_else(|| l.strip_prefix("used_cpu_sys:"))
            })
            .filter_map(|v| v.trim().parse::<f64>().ok())
            .sum::<f64>()
            * 1000.0)
    }

    /// Makes Redis's SLOWLOG record every command (with its own time, in µs) from now on.
    pub fn slowlog_start(&mut self) -> Res<()> {
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(0)
            .arg("slowlog-max-len")
            .arg(100_000)
            .exec(&mut self.redis)?;
        redis::cmd("SLOWLOG").arg("RESET").exec(&mut self.redis)?;
        Ok(())
    }

    /// The commands Redis ran since [`Stack::slowlog_start`], as (name, µs), and stops recording.
    pub fn slowlog_take(&mut self) -> Res<Vec<(String, u64)>> {
        let entries: Vec<redis::Value> = redis::cmd("SLOWLOG")
            .arg("GET")
            .arg(-1)
            .query(&mut self.redis)?;
        redis::cmd("CONFIG")
            .arg("SET")
            .arg("slowlog-log-slower-than")
            .arg(10_000)
            .exec(&mut self.redis)?;
        let mut out = Vec::new();
        for entry in entries {
            let redis::Value::Array(fields) = entry else {
                continue;
            };
            let (Some(redis::Value::Int(us)), Some(redis::Value::Array(args))) =
                (fields.get(2), fields.get(3))
            else {
                continue;
            };
            let name = match args.first() {
                Some(redis::Value::BulkString(b)) => String::from_utf8_lossy(b).to_uppercase(),
                _ => continue,
            };
            if !matches!(name.as_str(), "SLOWLOG" | "CONFIG" | "ECHO" | "INFO") {
                out.push((name, u64::try_from(*us).unwrap_or(0)));
            }
        }
        Ok(out)
    }

    /// Postgres's clock now, as text for a later comparison.
    pub async fn db_now(&self) -> Res<String> {
        let row = self
            .pg
            .query_one("select clock_timestamp()::text", &[])
            .await?;
        Ok(row.get(0))
    }

    /// Token rows written since `since` (any write sets `updated_at`), and of those, created.
    pub async fn rows_written_since(&self, since: &str) -> Res<(u64, u64)> {
        let row = self
            .pg
            .query_one(
                "select count(*) filter (where updated_at >= $1::text::timestamptz),
                        count(*) filter (where created_at >= $1::text::timestamptz)
                   from tradovate_tokens",
                &[&since],
            )
            .await?;
        Ok((row.get::<_, i64>(0) as u64, row.get::<_, i64>(1) as u64))
    }
}

/// A setting the Worker runs with: the bench env file (secrets and overrides) first, then the
/// `[vars]` of the wrangler.toml it was started with.
fn worker_setting(state: &std::path::Path, name: &str) -> Option<String> {
    let unquote = |v: &str| v.trim().trim_matches('"').to_string();
    if let Ok(env) = std::fs::read_to_string(state.join("worker.env")) {
        if let Some(v) = env
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name}=")))
        {
            return Some(unquote(v));
        }
    }
    let toml = std::fs::read_to_string(state.join("wrangler.toml")).ok()?;
    toml.lines().find_map(|l| {
        let (key, value) = l.split_once('=')?;
        (key.trim() == name).then(|| unquote(value))
    })
}
