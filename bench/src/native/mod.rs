//! The native measuring program: options, the order of the measurements, the table and the
//! smoke checks.

mod bundle;
mod cpu;
mod get;
mod logs;
mod stack;
mod sync;
mod table;
mod wan;

use std::path::PathBuf;
use std::time::Duration;

use table::{bytes, ms, thousands, verdict, Row};

pub type Res<T> = Result<T, Box<dyn std::error::Error + Send + Sync>>;

/// Free-plan limits and the targets.
const FREE_SUBREQUESTS: u64 = 50;
const FREE_CPU_MS: f64 = 10.0;
const TARGET_RATIO: f64 = 1.5;
const TARGET_GET_RATIO: f64 = 1.3;
const TARGET_GZIP_BYTES: u64 = 1_000_000;
/// The simulated deployment's round trip to Upstash and to PostgREST.
const WAN_RTT_MS: u64 = 20;
/// Tokens in the crowded-Redis cases.
const CROWDED_N: usize = 22;
/// The size the subrequest and ratio targets are stated for.
const TARGET_N: u64 = 10_000;

/// The measuring program's command line.
#[derive(Debug, clap::Parser)]
#[command(
    name = "token-manager-bench",
    about = "Measures token-manager: sync and get through wrangler dev, the CPU of the sync's \
             pure work, the bundle. Prints one markdown table.",
    after_help = "Runs against the bench stack whose settings scripts/env.sh bench exports; \
                  scripts/bench.sh does it all."
)]
struct Args {
    /// N = 22 only, 50 get requests, CPU at 100 tokens x 3, no crowded or simulated-deployment
    /// case (CI's smoke test); overrides --sizes, --crowded, --wan-sizes, --get-requests,
    /// --cpu-sizes and --cpu-reps
    #[arg(long)]
    quick: bool,
    /// Token counts to sync, comma-separated
    #[arg(long, value_delimiter = ',', value_parser = count, default_value = "22,1000,10000")]
    sizes: Vec<usize>,
    /// Sizes of the crowded Redis: a sync of 22 tokens among this many keys of other
    /// applications, comma-separated; 0 for none [default: 100000,1000000; --quick: none]
    #[arg(long, value_delimiter = ',', value_parser = count)]
    crowded: Option<Vec<usize>>,
    /// Token counts for the simulated deployment (20 ms round trips), comma-separated; 0 for
    /// none [default: 22,1000; --quick: none]
    #[arg(long, value_delimiter = ',', value_parser = count)]
    wan_sizes: Option<Vec<usize>>,
    /// Requests per get case
    #[arg(long, default_value_t = 500)]
    get_requests: u64,
    /// Token counts for the CPU measurement, comma-separated
    #[arg(long, value_delimiter = ',', value_parser = count, default_value = "1000,10000")]
    cpu_sizes: Vec<usize>,
    /// Repetitions of each CPU measurement (the median is reported)
    #[arg(long, default_value_t = 7)]
    cpu_reps: usize,
    /// The benchmark's wasm build (wasm-bindgen --target nodejs) to time under Node
    #[arg(long, value_name = "DIR", conflicts_with = "wasm_cpu_skip")]
    wasm_cpu: Option<PathBuf>,
    /// Why the wasm CPU row is not measured
    #[arg(long, value_name = "REASON")]
    wasm_cpu_skip: Option<String>,
    /// The Worker's bundle to measure
    #[arg(long, value_name = "FILE", default_value = "build/index_bg.wasm")]
    bundle: PathBuf,
    /// twiggy, for the bundle's size by crate
    #[arg(long, value_name = "PATH", conflicts_with = "twiggy_skip")]
    twiggy: Option<PathBuf>,
    /// Why the bundle is not broken down by crate
    #[arg(long, value_name = "REASON")]
    twiggy_skip: Option<String>,
    /// How long one sync may take
    #[arg(long, value_name = "SECONDS", default_value_t = 240)]
    sync_timeout: u64,
}

/// A count such as `10000` or `10_000`.
fn count(value: &str) -> Result<usize, String> {
    value
        .trim()
        .replace('_', "")
        .parse()
        .map_err(|e| format!("{value:?} is not a count: {e}"))
}

struct Options {
    sizes: Vec<usize>,
    crowded: Vec<usize>,
    wan_sizes: Vec<usize>,
    wan_get_requests: u64,
    get_requests: u64,
    concurrency: Vec<usize>,
    cpu_sizes: Vec<usize>,
    cpu_reps: usize,
    wasm_cpu: Result<PathBuf, String>,
    bundle: PathBuf,
    twiggy: Result<PathBuf, String>,
    sync_timeout: Duration,
}

impl From<Args> for Options {
    fn from(a: Args) -> Self {
        let skipped = |given: Option<String>, flag: &str| {
            given.unwrap_or_else(|| format!("not asked for ({flag})"))
        };
        let mut o = Options {
            sizes: a.sizes,
            crowded: a
                .crowded
                .unwrap_or_else(|| vec![100_000, 1_000_000])
                .into_iter()
                .filter(|&n| n > 0)
                .collect(),
            wan_sizes: a
                .wan_sizes
                .unwrap_or_else(|| vec![22, 1000])
                .into_iter()
                .filter(|&n| n > 0)
                .collect(),
            wan_get_requests: 100,
            get_requests: a.get_requests,
            concurrency: vec![1, 16],
            cpu_sizes: a.cpu_sizes,
            cpu_reps: a.cpu_reps,
            wasm_cpu: a
                .wasm_cpu
                .ok_or_else(|| skipped(a.wasm_cpu_skip, "--wasm-cpu DIR")),
            bundle: a.bundle,
            twiggy: a
                .twiggy
                .ok_or_else(|| skipped(a.twiggy_skip, "--twiggy PATH")),
            sync_timeout: Duration::from_secs(a.sync_timeout),
        };
        if a.quick {
            o.sizes = vec![22];
            o.crowded = Vec::new();
            o.wan_sizes = Vec::new();
            o.get_requests = 50;
            o.cpu_sizes = vec![100];
            o.cpu_reps = 3;
        }
        o
    }
}

/// Checks that must hold whatever the speed.
#[derive(Default)]
struct Smoke(Vec<(String, bool)>);

impl Smoke {
    fn check(&mut self, what: impl Into<String>, ok: bool) {
        self.0.push((what.into(), ok));
    }

    /// The checks every sync case makes: it answered 200, and the Worker's count and SQL's
    /// agree with the rows it should have written.
    fn answered_and_wrote(&mut self, label: &str, run: &sync::SyncRun) {
        self.check(format!("{label}: answered 200"), run.error.is_none());
        self.check(
            format!(
                "{label}: wrote {} rows (Worker says {}, SQL counts {})",
                run.expected_rows, run.worker_rows, run.sql_rows
            ),
            run.worker_rows == run.expected_rows && run.sql_rows == run.expected_rows,
        );
    }
}

pub fn main() -> i32 {
    let options: Options = <Args as clap::Parser>::parse().into();
    let runtime = tokio::runtime::Runtime::new().expect("a tokio runtime");
    match runtime.block_on(run(options)) {
        Ok((rows, smoke)) => {
            print!("{}", table::markdown(&rows));
            let failed: Vec<&String> = smoke
                .0
                .iter()
                .filter(|(_, ok)| !ok)
                .map(|(w, _)| w)
                .collect();
            for what in &failed {
                eprintln!("bench-smoke: FAILED: {what}");
            }
            eprintln!(
                "bench-smoke: {} passed, {} failed",
                smoke.0.len() - failed.len(),
                failed.len()
            );
            i32::from(!failed.is_empty())
        }
        Err(e) => {
            eprintln!("token-manager-bench: error: {e}");
            1
        }
    }
}

async fn run(o: Options) -> Res<(Vec<Row>, Smoke)> {
    let mut stack = stack::Stack::connect().await?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()?;
    let mut rows = Vec::new();
    let mut smoke = Smoke::default();
    let batch = stack.batch_size;

    // Before the sizes: each crowded run empties Redis and the tables, and the get cases
    // read a token the last size wrote.
    for &others in &o.crowded {
        eprintln!(
            "bench: sync of {CROWDED_N} tokens among {} other keys ...",
            thousands(others as u64)
        );
        let crowded =
            sync::bench_crowded(&mut stack, &http, CROWDED_N, others, o.sync_timeout).await?;
        rows.push(crowded_row(&crowded, stack.scan_count, &mut smoke));
    }

    match wan::WanSetup::from_env(&stack.upstash_url, &stack.postgrest_url) {
        _ if o.wan_sizes.is_empty() => {}
        Some(setup) => {
            let rtt = Duration::from_millis(WAN_RTT_MS);
            let _up = wan::start(&setup.upstash_listen, &setup.upstash_upstream, rtt).await?;
            let _pg = wan::start(&setup.postgrest_listen, &setup.postgrest_upstream, rtt).await?;
            let main_worker = std::mem::replace(&mut stack.worker_url, setup.worker_url.clone());
            let measured = wan_rows(&mut stack, &http, &o, &mut smoke).await;
            stack.worker_url = main_worker;
            rows.extend(measured?);
        }
        None => rows.push(
            Row::new("deployed", "simulated round trips", "not measured")
                .bound("bench.sh starts the second Worker (TM_BENCH_WAN_* unset)"),
        ),
    }

    for &n in &o.sizes {
        eprintln!("bench: sync of {} tokens ...", thousands(n as u64));
        for run in sync::bench_size(&mut stack, &http, n, o.sync_timeout).await? {
            rows.push(sync_row(&run, batch, stack.scan_count, &mut smoke));
        }
    }

    let account = token_manager_bench::tokens::accounts(*o.sizes.last().unwrap_or(&22))[0].clone();
    for &c in &o.concurrency {
        eprintln!("bench: get at concurrency {c} ...");
        let mut targets = get::TARGETS.to_vec();
        if stack.js_floor_url.is_some() {
            targets.push(get::Target::JsFloor);
        }
        let mut results = get::compare(&stack, &http, &targets, &account, c, o.get_requests, 5)
            .await
            .into_iter();
        let (worker, direct, health, js) = (
            results.next().expect("three results"),
            results.next().expect("three results"),
            results.next().expect("three results"),
            results.next(),
        );
        let floor = health.as_ref().ok().map(|h| h.p50_ms);
        let worker_p50 = worker.as_ref().ok().map(|w| w.p50_ms);
        rows.push(get_row(
            c,
            o.get_requests,
            worker,
            direct,
            floor,
            &mut smoke,
        ));
        rows.push(health_row(c, o.get_requests, health, &mut smoke));
        if let Some(js) = js {
            rows.push(js_floor_row(
                c,
                o.get_requests,
                js,
                floor,
                worker_p50,
                &mut smoke,
            ));
        }
    }

    for &n in &o.cpu_sizes {
        eprintln!("bench: CPU of {} tokens ...", thousands(n as u64));
        let native = cpu::native(n, batch as usize, o.cpu_reps);
        smoke.check(
            format!("native CPU of {n} tokens measured"),
            native.total_ms() > 0.0,
        );
        rows.push(cpu_row(Ok(native)));
        let wasm = match &o.wasm_cpu {
            Ok(dir) => cpu::wasm(dir, n, batch as usize, o.cpu_reps).map_err(|e| e.to_string()),
            Err(reason) => Err(reason.clone()),
        };
        if o.wasm_cpu.is_ok() {
            smoke.check(format!("wasm CPU of {n} tokens measured"), wasm.is_ok());
        }
        rows.push(cpu_row(wasm.map_err(|e| (n, e))));
    }

    bundle_rows(&o, &mut rows, &mut smoke);
    Ok((rows, smoke))
}

fn sync_row(run: &sync::SyncRun, batch: u64, scan_count: u64, smoke: &mut Smoke) -> Row {
    let n = run.n;
    let label = format!("N={} {}", thousands(n), run.scenario.label());
    let (up, pg) = (run.upstash.requests, run.postgrest.requests);
    let subrequests = up + pg;
    let bound = n.div_ceil(batch).max(1);
    smoke.answered_and_wrote(&label, run);
    smoke.check(
        format!("{label}: requests counted in both logs (Upstash {up}, PostgREST {pg})"),
        up >= 1 && pg >= 1,
    );
    let created = if run.scenario == sync::Scenario::First {
        n
    } else {
        0
    };
    smoke.check(
        format!(
            "{label}: created {created} rows (SQL counts {})",
            run.sql_created
        ),
        run.sql_created == created,
    );
    smoke.check(
        format!("{label}: no key skipped ({})", run.skipped),
        run.skipped == 0,
    );

    let mut measured = format!(
        "{}; Upstash {up} + PostgREST {pg} = {subrequests} subrequests; rows {} (Worker) / {} (SQL)",
        ms(run.wall_ms),
        thousands(run.worker_rows),
        thousands(run.sql_rows),
    );
    if let Some(error) = &run.error {
        measured.push_str(&format!("; FAILED: {error}"));
    }
    let (r_up, r_pg) = (up as f64 / bound as f64, pg as f64 / bound as f64);
    let fits = verdict(subrequests <= FREE_SUBREQUESTS, || {
        format!("{} over", subrequests - FREE_SUBREQUESTS)
    });
    let target = if n == TARGET_N {
        let worst = r_up.max(r_pg);
        format!(
            "≤ {FREE_SUBREQUESTS} subrequests: {fits}; ratio ≤ {TARGET_RATIO}: {}",
            verdict(worst <= TARGET_RATIO, || format!(
                "{worst:.2}, {:.0}% over",
                (worst / TARGET_RATIO - 1.0) * 100.0
            ))
        )
    } else {
        format!("≤ {FREE_SUBREQUESTS} subrequests: {fits}")
    };
    Row::new("sync", label, measured)
        .bound(format!(
            "Upstash {bound} + PostgREST {bound} (⌈N / {batch}⌉ each; SCAN COUNT {scan_count})"
        ))
        .ratio(format!("Upstash {r_up:.2}, PostgREST {r_pg:.2}"))
        .target(target)
}

/// Sync and get through the Worker whose Upstash and PostgREST sit behind the delaying
/// proxies ([`wan`]).
async fn wan_rows(
    stack: &mut stack::Stack,
    http: &reqwest::Client,
    o: &Options,
    smoke: &mut Smoke,
) -> Res<Vec<Row>> {
    let mut rows = Vec::new();
    let reference = format!(
        "{WAN_RTT_MS} ms per round trip to Upstash and to PostgREST, 2 more per new connection \
         (TCP + TLS handshakes)"
    );
    for &n in &o.wan_sizes {
        eprintln!(
            "bench: simulated deployment ({WAN_RTT_MS} ms round trips), {} tokens ...",
            thousands(n as u64)
        );
        for run in sync::bench_size(stack, http, n, o.sync_timeout).await? {
            if run.scenario == sync::Scenario::TenPercent {
                continue;
            }
            let label = format!("N={} sync, {}", thousands(run.n), run.scenario.label());
            smoke.check(
                format!("simulated deployment {label}: answered 200"),
                run.error.is_none(),
            );
            let (up, pg) = (run.upstash.requests, run.postgrest.requests);
            let mut measured = format!(
                "{} wall; Upstash {up} + PostgREST {pg} = {} subrequests",
                ms(run.wall_ms),
                up + pg
            );
            if let Some(error) = &run.error {
                measured.push_str(&format!("; FAILED: {error}"));
            }
            rows.push(
                Row::new("deployed", label, measured)
                    .bound(reference.clone())
                    .ratio(format!(
                        "{:.1} round trips of wall time",
                        run.wall_ms / WAN_RTT_MS as f64
                    )),
            );
        }
        let account = token_manager_bench::tokens::accounts(n)[0].clone();
        let targets = [get::Target::Worker, get::Target::WorkerHealth];
        let mut results = get::compare(stack, http, &targets, &account, 1, o.wan_get_requests, 2)
            .await
            .into_iter();
        let (worker, health) = (
            results.next().expect("two results"),
            results.next().expect("two results"),
        );
        let label = format!("N={} get, concurrency 1", thousands(n as u64));
        match (worker, health) {
            (Ok(w), Ok(h)) => {
                smoke.check(
                    format!("simulated deployment {label}: every answer 200"),
                    w.failures == 0,
                );
                rows.push(
                    Row::new(
                        "deployed",
                        label,
                        format!(
                            "p50 {}, p99 {} ({} requests; /health, no upstream call: p50 {})",
                            ms(w.p50_ms),
                            ms(w.p99_ms),
                            o.wan_get_requests,
                            ms(h.p50_ms)
                        ),
                    )
                    .bound(reference.clone())
                    .ratio(format!(
                        "{:.1} round trips net of /health",
                        (w.p50_ms - h.p50_ms) / WAN_RTT_MS as f64
                    )),
                );
            }
            (w, h) => {
                let error = w
                    .err()
                    .or(h.err())
                    .map(|e| e.to_string())
                    .unwrap_or_default();
                smoke.check(format!("simulated deployment {label}: {error}"), false);
                rows.push(Row::new("deployed", label, format!("FAILED: {error}")));
            }
        }
    }
    Ok(rows)
}

/// The most Upstash requests a crowded sync may take (the targets).
fn crowded_target(others: u64) -> Option<u64> {
    match others {
        100_000 => Some(10),
        1_000_000 => Some(40),
        _ => None,
    }
}

fn crowded_row(c: &sync::CrowdedRun, scan_count: u64, smoke: &mut Smoke) -> Row {
    let run = &c.run;
    let label = format!(
        "N={CROWDED_N} among {} other keys ({} of them under token:, not strings)",
        thousands(c.others),
        c.under_prefix
    );
    let (up, pg) = (run.upstash.requests, run.postgrest.requests);
    smoke.answered_and_wrote(&label, run);
    smoke.check(
        format!(
            "{label}: skipped exactly the {} keys of another type ({})",
            c.under_prefix, run.skipped
        ),
        run.skipped == c.under_prefix,
    );
    smoke.check(
        format!("{label}: Redis recorded the sync's commands"),
        !c.redis_commands.is_empty(),
    );
    let total_us: u64 = c.redis_commands.iter().map(|(_, us)| us).sum();
    let (worst_name, worst_us) = c
        .redis_commands
        .iter()
        .max_by_key(|(_, us)| *us)
        .cloned()
        .unwrap_or_default();
    let scans: Vec<u64> = c
        .redis_commands
        .iter()
        .filter(|(name, _)| name == "SCAN")
        .map(|(_, us)| *us)
        .collect();
    let mut sorted = scans.clone();
    sorted.sort_unstable();
    let median_scan = sorted.get(sorted.len() / 2).copied().unwrap_or(0);
    let per_request = total_us as f64 / up.max(1) as f64 / 1000.0;
    let mut measured = format!(
        "{}; Upstash {up} + PostgREST {pg} = {} subrequests; rows {} (Worker) / {} (SQL); \
         Redis time (SLOWLOG): {} commands, {} SCANs (median {}, longest command \
         {worst_name} {}), {} per Upstash request on average; Redis CPU {} per request",
        ms(run.wall_ms),
        up + pg,
        thousands(run.worker_rows),
        thousands(run.sql_rows),
        c.redis_commands.len(),
        scans.len(),
        ms(median_scan as f64 / 1000.0),
        ms(worst_us as f64 / 1000.0),
        ms(per_request),
        ms(c.redis_cpu_ms / up.max(1) as f64),
    );
    if let Some(error) = &run.error {
        measured.push_str(&format!("; FAILED: {error}"));
    }
    use token_manager::upstash::{MAX_SCAN_COUNT, SPARSE_PAGES};
    let per_page = c
        .others
        .div_ceil(SPARSE_PAGES as u64)
        .clamp(scan_count, MAX_SCAN_COUNT as u64);
    let pages = 1 + c.others.div_ceil(per_page);
    let row = Row::new("sync", label, measured).bound(format!(
        "a first SCAN page of {scan_count} keys (with DBSIZE), then pages of {} keys \
         (DBSIZE / {SPARSE_PAGES}, at most {}): ≈ {pages} pages",
        thousands(per_page),
        thousands(MAX_SCAN_COUNT as u64)
    ));
    match crowded_target(c.others) {
        Some(most) => row.target(format!(
            "≤ {most} Upstash requests and success: {}",
            verdict(up <= most && run.error.is_none(), || format!(
                "{up} requests{}",
                if run.error.is_some() { ", failed" } else { "" }
            ))
        )),
        None => row.target("— (smoke size)"),
    }
}

fn get_row(
    c: usize,
    requests: u64,
    worker: Res<get::Latency>,
    direct: Res<get::Latency>,
    floor_p50_ms: Option<f64>,
    smoke: &mut Smoke,
) -> Row {
    let case = format!("concurrency {c}, {requests} requests");
    let describe = |l: &get::Latency| {
        let mut s = format!(
            "p50 {}, p99 {}, {:.0} req/s",
            ms(l.p50_ms),
            ms(l.p99_ms),
            l.per_second
        );
        if l.failures > 0 {
            s.push_str(&format!(", {} failed", l.failures));
        }
        s
    };
    match (worker, direct) {
        (Ok(w), Ok(d)) => {
            smoke.check(
                format!(
                    "get at concurrency {c}: every answer 200 ({} + {} failed)",
                    w.failures, d.failures
                ),
                w.failures == 0 && d.failures == 0,
            );
            let ratio = w.p50_ms / d.p50_ms;
            let mut ratios = format!("p50 {ratio:.2}, p99 {:.2}", w.p99_ms / d.p99_ms);
            // The target is the Worker's own cost: its p50 less the runtime's /health floor.
            let own = w.p50_ms - floor_p50_ms.unwrap_or(0.0);
            if floor_p50_ms.is_some() {
                ratios.push_str(&format!(
                    "; p50 net of the /health floor {:.2}",
                    own / d.p50_ms
                ));
            }
            Row::new("get", case, format!("Worker: {}", describe(&w)))
                .bound(format!("PostgREST direct: {}", describe(&d)))
                .ratio(ratios)
                .target(format!(
                    "≤ {TARGET_GET_RATIO} at p50, net of /health: {}",
                    verdict(own <= d.p50_ms * TARGET_GET_RATIO, || format!(
                        "+{} per request",
                        ms(own - d.p50_ms * TARGET_GET_RATIO)
                    ))
                ))
        }
        (w, d) => {
            let error = w
                .err()
                .or(d.err())
                .map(|e| e.to_string())
                .unwrap_or_default();
            smoke.check(format!("get at concurrency {c}: {error}"), false);
            Row::new("get", case, format!("FAILED: {error}"))
        }
    }
}

/// The JavaScript Worker that makes only the get's one PostgREST call: what one subrequest
/// costs under `wrangler dev`, whatever the Worker's code.
fn js_floor_row(
    c: usize,
    requests: u64,
    js: Res<get::Latency>,
    health_p50_ms: Option<f64>,
    worker_p50_ms: Option<f64>,
    smoke: &mut Smoke,
) -> Row {
    let case = format!("concurrency {c}, {requests} requests to a JavaScript Worker");
    match js {
        Ok(l) => {
            smoke.check(
                format!("JavaScript floor at concurrency {c}: every answer 200"),
                l.failures == 0,
            );
            let ratio = match (worker_p50_ms, health_p50_ms) {
                (Some(w), Some(h)) => format!(
                    "Worker's p50 net of /health ÷ this one's: {:.2}",
                    (w - h) / (l.p50_ms - h)
                ),
                _ => "—".to_string(),
            };
            Row::new(
                "get",
                case,
                format!(
                    "p50 {}, p99 {}, {:.0} req/s (the same one PostgREST call from a few lines \
                     of JavaScript: no auth, decryption, logging)",
                    ms(l.p50_ms),
                    ms(l.p99_ms),
                    l.per_second
                ),
            )
            .bound("the floor of one subrequest under wrangler dev, for reading the get rows")
            .ratio(ratio)
        }
        Err(e) => {
            smoke.check(format!("JavaScript floor at concurrency {c}: {e}"), false);
            Row::new("get", case, format!("FAILED: {e}"))
        }
    }
}

fn health_row(c: usize, requests: u64, health: Res<get::Latency>, smoke: &mut Smoke) -> Row {
    let case = format!("concurrency {c}, {requests} requests of GET /health");
    match health {
        Ok(h) => {
            smoke.check(
                format!("GET /health at concurrency {c}: every answer 200"),
                h.failures == 0,
            );
            Row::new(
                "get",
                case,
                format!(
                    "Worker, no upstream call: p50 {}, p99 {}, {:.0} req/s",
                    ms(h.p50_ms),
                    ms(h.p99_ms),
                    h.per_second
                ),
            )
            .bound("the floor of wrangler dev's proxy and workerd, for reading the row above")
        }
        Err(e) => {
            smoke.check(format!("GET /health at concurrency {c}: {e}"), false);
            Row::new("get", case, format!("FAILED: {e}"))
        }
    }
}

fn cpu_row(cpu: Result<cpu::Cpu, (usize, String)>) -> Row {
    match cpu {
        Ok(cpu) => {
            let stages: Vec<String> = cpu
                .sync_stages()
                .map(|(s, t)| format!("{s} {}", ms(*t)))
                .collect();
            let total = cpu.total_ms();
            let (restore, restore_ratio) = match cpu.restore_ms() {
                Some(r) => (
                    format!(
                        "; a restore of them (open the rows, build the SET NX PX pipelines): {}",
                        ms(r)
                    ),
                    format!("; restore {:.2} ×", r / FREE_CPU_MS),
                ),
                None => (String::new(), String::new()),
            };
            Row::new(
                "cpu",
                format!("{}, {} tokens", cpu.runtime, thousands(cpu.n as u64)),
                format!("sync {} ({}){restore}", ms(total), stages.join(", ")),
            )
            .bound(format!(
                "CPU limit: free plan {FREE_CPU_MS:.0} ms, paid 30 s"
            ))
            .ratio(format!(
                "sync {:.2} × free limit{restore_ratio}",
                total / FREE_CPU_MS
            ))
            .target("— (measured, no target)")
        }
        Err((n, reason)) => Row::new(
            "cpu",
            format!("wasm, {} tokens", thousands(n as u64)),
            format!("not measured: {reason}"),
        ),
    }
}

fn bundle_rows(o: &Options, rows: &mut Vec<Row>, smoke: &mut Smoke) {
    let (raw, gzip) = match bundle::sizes(&o.bundle) {
        Ok(s) => s,
        Err(e) => {
            smoke.check(
                format!("bundle {} measured: {e}", o.bundle.display()),
                false,
            );
            rows.push(Row::new(
                "bundle",
                o.bundle.display().to_string(),
                format!("not measured: {e}"),
            ));
            return;
        }
    };
    smoke.check("bundle measured", raw > 0 && gzip > 0);
    rows.push(Row::new("bundle", "index_bg.wasm raw", bytes(raw)));
    rows.push(
        Row::new("bundle", "index_bg.wasm gzip -9", bytes(gzip))
            .bound("Workers limit (compressed): free 3 MB, paid 10 MB")
            .ratio(format!(
                "{:.2} × 1 MB target",
                gzip as f64 / TARGET_GZIP_BYTES as f64
            ))
            .target(format!(
                "< 1 MB gzip: {}",
                verdict(gzip < TARGET_GZIP_BYTES, || bytes(gzip - TARGET_GZIP_BYTES))
            )),
    );
    let twiggy = match &o.twiggy {
        Ok(t) => t,
        Err(reason) => {
            rows.push(Row::new(
                "bundle",
                "cost per crate",
                format!("not measured: {reason}"),
            ));
            return;
        }
    };
    let (crates, total) = match bundle::by_crate(twiggy, &o.bundle) {
        Ok(c) => c,
        Err(e) => {
            rows.push(Row::new(
                "bundle",
                "cost per crate",
                format!("not measured: {e}"),
            ));
            return;
        }
    };
    smoke.check("bundle cost per crate measured", !crates.is_empty());
    let shown = 16.min(crates.len());
    for (name, size) in &crates[..shown] {
        let case = if name.starts_with('(') {
            name.clone()
        } else {
            format!("crate {name}")
        };
        rows.push(Row::new(
            "bundle",
            case,
            format!(
                "{} ({:.1}%)",
                bytes(*size),
                100.0 * *size as f64 / total as f64
            ),
        ));
    }
    let rest: u64 = crates[shown..].iter().map(|(_, s)| s).sum();
    if shown < crates.len() {
        rows.push(Row::new(
            "bundle",
            format!("{} other crates", crates.len() - shown),
            format!(
                "{} ({:.1}%)",
                bytes(rest),
                100.0 * rest as f64 / total as f64
            ),
        ));
    }
    let clients: Vec<String> = crates
        .iter()
        .filter(|(name, _)| bundle::HTTP_CLIENTS.contains(&name.as_str()))
        .map(|(name, size)| format!("{name}: {}", bytes(*size)))
        .collect();
    rows.push(
        Row::new(
            "bundle",
            "HTTP clients in the bundle",
            if clients.is_empty() {
                "none found".to_string()
            } else {
                clients.join(", ")
            },
        )
        .target(format!(
            "one HTTP client: {}",
            verdict(clients.len() == 1, || format!("{} found", clients.len()))
        )),
    );
}
