//! Sync through the Worker under `wrangler dev`: for N tokens, a first run into empty
//! tables, a second with nothing changed, and a third after 10% of the tokens changed. Each
//! run's requests are counted in the services' logs, and the rows it wrote are counted twice:
//! from the Worker's answer and with SQL.

use std::time::{Duration, Instant};

use chrono::Utc;
use serde_json::Value;
use token_manager_bench::tokens;

use super::logs::Counted;
use super::stack::Stack;
use super::Res;

/// The three runs at one N.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    First,
    NoChange,
    TenPercent,
}

impl Scenario {
    pub fn label(self) -> &'static str {
        match self {
            Scenario::First => "first run (all new)",
            Scenario::NoChange => "again, no change",
            Scenario::TenPercent => "again, 10% changed",
        }
    }
}

/// One measured sync.
#[derive(Debug, Clone)]
pub struct SyncRun {
    pub n: u64,
    pub scenario: Scenario,
    pub wall_ms: f64,
    pub upstash: Counted,
    pub postgrest: Counted,
    /// inserted + updated + deactivated, as the Worker answered.
    pub worker_rows: u64,
    /// Rows whose `updated_at` moved during the run, by SQL.
    pub sql_rows: u64,
    /// Of those, rows created during the run.
    pub sql_created: u64,
    /// What the run should write: N, 0, N/10.
    pub expected_rows: u64,
    /// Keys the Worker skipped (should be 0: every seeded value is valid).
    pub skipped: u64,
    /// Why the run failed (HTTP status and body), if it did.
    pub error: Option<String>,
}

/// The three scenarios at `n` tokens, from empty Redis and tables.
pub async fn bench_size(
    stack: &mut Stack,
    http: &reqwest::Client,
    n: usize,
    timeout: Duration,
) -> Res<Vec<SyncRun>> {
    stack.reset().await?;
    let now = Utc::now();
    let seeds = tokens::seeds(n, 0, now);
    stack.write(&seeds.iter().collect::<Vec<_>>())?;
    let mut runs = vec![
        sync_once(stack, http, n, Scenario::First, n as u64, timeout).await?,
        sync_once(stack, http, n, Scenario::NoChange, 0, timeout).await?,
    ];
    let accounts = tokens::accounts(n);
    let changed: Vec<tokens::Seed> = accounts
        .iter()
        .enumerate()
        .filter(|(i, _)| tokens::changes_in_round(*i))
        .map(|(i, account)| tokens::seed(i, account, 1, now))
        .collect();
    stack.write(&changed.iter().collect::<Vec<_>>())?;
    let expected = changed.len() as u64;
    runs.push(sync_once(stack, http, n, Scenario::TenPercent, expected, timeout).await?);
    Ok(runs)
}

/// A first sync of `n` tokens in a Redis that also holds `others` keys of other applications
/// (`under_prefix` of them under the token prefix, of another type), with the Redis time of
/// every command the sync ran.
pub struct CrowdedRun {
    pub others: u64,
    pub under_prefix: u64,
    pub run: SyncRun,
    /// (command, µs) as Redis's SLOWLOG recorded them.
    pub redis_commands: Vec<(String, u64)>,
    /// Redis's CPU time during the sync (INFO cpu), ms.
    pub redis_cpu_ms: f64,
}

/// See [`CrowdedRun`].
pub async fn bench_crowded(
    stack: &mut Stack,
    http: &reqwest::Client,
    n: usize,
    others: usize,
    timeout: Duration,
) -> Res<CrowdedRun> {
    let under_prefix = 10;
    stack.reset().await?;
    stack.write(&tokens::seeds(n, 0, Utc::now()).iter().collect::<Vec<_>>())?;
    stack.write_others(others, under_prefix)?;
    stack.slowlog_start()?;
    let cpu_before = stack.redis_cpu_ms()?;
    let run = sync_once(stack, http, n, Scenario::First, n as u64, timeout).await;
    let redis_cpu_ms = stack.redis_cpu_ms()? - cpu_before;
    let redis_commands = stack.slowlog_take()?;
    let run = run?;
    stack.reset().await?;
    Ok(CrowdedRun {
        others: others as u64,
        under_prefix: under_prefix as u64,
        run,
        redis_commands,
        redis_cpu_ms,
    })
}

async fn sync_once(
    stack: &mut Stack,
    http: &reqwest::Client,
    n: usize,
    scenario: Scenario,
    expected_rows: u64,
    timeout: Duration,
) -> Res<SyncRun> {
    let up_from = stack.upstash_log.fence(http).await?;
    let pg_from = stack.postgrest_log.fence(http).await?;
    let since = stack.db_now().await?;

    let started = Instant::now();
    let answer = http
        .post(format!("{}/v1/sync", stack.worker_url))
        .bearer_auth(&stack.admin_key)
        .timeout(timeout)
        .send()
        .await;
    let (status, body) = match answer {
        Ok(response) => {
            let status = response.status().as_u16();
            (status, response.text().await.unwrap_or_default())
        }
        Err(e) if e.is_timeout() => (0, format!("no answer within {timeout:?}")),
        Err(e) => return Err(e.into()),
    };
    let wall_ms = started.elapsed().as_secs_f64() * 1000.0;

    let up_to = stack.upstash_log.fence(http).await?;
    let pg_to = stack.postgrest_log.fence(http).await?;
    let (sql_rows, sql_created) = stack.rows_written_since(&since).await?;
    let json: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let figure = |name: &str| json.get(name).and_then(Value::as_u64).unwrap_or(0);
    let error = (status != 200).then(|| {
        format!(
            "HTTP {status}: {}",
            body.chars().take(300).collect::<String>()
        )
    });
    Ok(SyncRun {
        n: n as u64,
        scenario,
        wall_ms,
        upstash: stack.upstash_log.count(up_from, up_to)?,
        postgrest: stack.postgrest_log.count(pg_from, pg_to)?,
        worker_rows: figure("inserted") + figure("updated") + figure("deactivated"),
        sql_rows,
        sql_created,
        expected_rows,
        skipped: json
            .get("skipped")
            .and_then(Value::as_array)
            .map_or(0, |s| s.len() as u64),
        error,
    })
}
