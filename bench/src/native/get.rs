//! Get latency: `GET /v1/tokens/{account}` through the Worker against the call the Worker
//! itself makes, `POST /rpc/token_manager_get_recorded` (the read and its audit row) straight
//! to PostgREST with the service-role key, the Worker's `GET /health` (no upstream call), and a JavaScript Worker under the same
//! `wrangler dev` that makes only that one call (`bench/js-floor/`), at a fixed concurrency
//! and a bounded number of requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use super::stack::Stack;
use super::Res;

/// Latency figures of one case.
#[derive(Debug, Clone, Copy, Default)]
pub struct Latency {
    pub p50_ms: f64,
    pub p99_ms: f64,
    pub per_second: f64,
    /// Answers other than 200 (or transport errors).
    pub failures: u64,
}

/// Where the requests go.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Worker,
    Postgrest,
    /// The Worker's `GET /health`: no upstream call, the local runtime's own floor.
    WorkerHealth,
    /// The JavaScript Worker making the get's one PostgREST call: the runtime's floor for a
    /// get.
    JsFloor,
}

fn request(
    stack: &Stack,
    http: &reqwest::Client,
    target: Target,
    account: &str,
) -> reqwest::RequestBuilder {
    match target {
        Target::Worker => http
            .get(format!("{}/v1/tokens/{account}", stack.worker_url))
            .bearer_auth(&stack.read_key),
        Target::WorkerHealth => http.get(format!("{}/health", stack.worker_url)),
        Target::JsFloor => http.get(format!(
            "{}/rpc?account={account}",
            stack
                .js_floor_url
                .as_deref()
                .unwrap_or("http://js-floor.invalid")
        )),
        Target::Postgrest => http
            .post(format!(
                "{}/rpc/token_manager_get_recorded",
                stack.postgrest_url
            ))
            .header("apikey", &stack.service_role_key)
            .bearer_auth(&stack.service_role_key)
            .json(&direct_body(account)),
    }
}

/// The call a get makes: read the token and append the read to the audit trail.
pub fn direct_body(account: &str) -> serde_json::Value {
    json!({
        "p_account": account, "p_mains": null, "p_now": chrono::Utc::now(),
        "p_read": { "account_name": account, "key_name": "bench-direct", "outcome": 0 },
        "p_durable": false,
    })
}

/// The Worker, PostgREST and the Worker's /health, in the order [`compare`] answers them.
pub const TARGETS: [Target; 3] = [Target::Worker, Target::Postgrest, Target::WorkerHealth];

/// `requests` requests to each of `targets` from `concurrency` tasks, after a warm-up, in
/// `rounds` interleaved rounds, so that load from elsewhere on the machine falls on all
/// alike. One result per target, in their order.
pub async fn compare(
    stack: &Stack,
    http: &reqwest::Client,
    targets: &[Target],
    account: &str,
    concurrency: usize,
    requests: u64,
    rounds: u64,
) -> Vec<Res<Latency>> {
    let mut state: Vec<Res<(Vec<f64>, f64, u64)>> = Vec::new();
    for &target in targets {
        let warm = warm_up(stack, http, target, account, concurrency).await;
        state.push(warm.map(|()| (Vec::new(), 0.0, 0)));
    }
    let rounds = rounds.clamp(1, requests.max(1));
    for round in 0..rounds {
        let share = requests / rounds + u64::from(round < requests % rounds);
        for (target, st) in targets.iter().zip(state.iter_mut()) {
            if let Ok((samples, elapsed, failures)) = st {
                let (s, e, f) = burst(stack, http, *target, account, concurrency, share).await;
                samples.extend(s);
                *elapsed += e;
                *failures += f;
            }
        }
    }
    state
        .into_iter()
        .map(|st| {
            st.map(|(mut all, elapsed, failures)| {
                all.sort_by(f64::total_cmp);
                Latency {
                    p50_ms: percentile(&all, 0.50),
                    p99_ms: percentile(&all, 0.99),
                    per_second: all.len() as f64 / elapsed,
                    failures,
                }
            })
        })
        .collect()
}

/// A few requests that must all answer 200.
async fn warm_up(
    stack: &Stack,
    http: &reqwest::Client,
    target: Target,
    account: &str,
    concurrency: usize,
) -> Res<()> {
    for _ in 0..concurrency.max(10) {
        let response = request(stack, http, target, account).send().await?;
        if response.status() != 200 {
            let status = response.status();
            let body = response.text().await.unwrap_or_default();
            return Err(format!("{target:?} for {account} answered {status}: {body}").into());
        }
        response.bytes().await?;
    }
    Ok(())
}

/// `requests` requests from `concurrency` tasks: latencies (ms), elapsed seconds, failures.
async fn burst(
    stack: &Stack,
    http: &reqwest::Client,
    target: Target,
    account: &str,
    concurrency: usize,
    requests: u64,
) -> (Vec<f64>, f64, u64) {
    let issued = Arc::new(AtomicU64::new(0));
    let failures = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..concurrency {
        let (issued, failures) = (issued.clone(), failures.clone());
        let builder = request(stack, http, target, account);
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while issued.fetch_add(1, Ordering::Relaxed) < requests {
                let started = Instant::now();
                let ok = match builder
                    .try_clone()
                    .expect("bodies are in memory")
                    .timeout(Duration::from_secs(10))
                    .send()
                    .await
                {
                    Ok(response) => response.status() == 200 && response.bytes().await.is_ok(),
                    Err(_) => false,
                };
                latencies.push(started.elapsed().as_secs_f64() * 1000.0);
                if !ok {
                    failures.fetch_add(1, Ordering::Relaxed);
                }
            }
            latencies
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        match task.await {
            Ok(latencies) => all.extend(latencies),
            Err(_) => {
                failures.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
    let failures = failures.load(Ordering::Relaxed);
    (all, started.elapsed().as_secs_f64(), failures)
}

/// The nearest-rank percentile of sorted values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::percentile;

    #[test]
    fn nearest_rank() {
        let v: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&v, 0.5), 50.0);
        assert_eq!(percentile(&v, 0.99), 99.0);
        assert_eq!(percentile(&[3.0], 0.99), 3.0);
    }
}
