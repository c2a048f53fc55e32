//! Load through the built Worker under `wrangler dev` (started by ./scripts/test.sh): 2,000
//! `GET /v1/tokens/{account}` at concurrency 32 on loopback, every answer checked, zero errors
//! allowed. A bounded, self-stopping run that prints a benchmark-style report line; the
//! timings are reported, not asserted.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration as StdDuration, Instant};

use crate::support::{jwt, TestStack};
use chrono::{Duration, Utc};

const REQUESTS: usize = 2_000;
const CONCURRENCY: usize = 32;
/// The run stops issuing requests after this, whatever it has done (then the test fails).
const DEADLINE: StdDuration = StdDuration::from_secs(300);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_thousand_gets_at_concurrency_32_through_the_worker_with_zero_errors() {
    let mut stack = TestStack::start().await;
    let exp = Utc::now() + Duration::hours(1);
    // 64 accounts, some whose names are filter syntax, so a mix-up would show as a wrong token.
    let mut accounts: Vec<String> = (0..58).map(|i| format!("LOAD_{i:03}")).collect();
    accounts.extend(["a", "b", "a,b", "*x", "ünï", "PAAPEX1361890000001"].map(String::from));
    let tokens: Vec<(String, String)> = accounts
        .iter()
        .map(|a| (a.clone(), jwt(&format!("load-{a}"), exp)))
        .collect();
    for (account, token) in &tokens {
        stack.set(&format!("token:{account}"), token.as_str());
    }
    let worker = stack.worker();
    let sync = worker.sync().await;
    assert_eq!(
        (sync.status, sync.body["tokens_synced"].as_u64()),
        (200, Some(tokens.len() as u64)),
        "{}",
        sync.text
    );
    let before = stack.dump().await;

    let tokens = Arc::new(tokens);
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::with_capacity(REQUESTS)));
    let errors = Arc::new(Mutex::new(Vec::new()));
    let started = Instant::now();
    let clients: Vec<_> = (0..CONCURRENCY)
        .map(|_| {
            let (tokens, next, latencies, errors, worker) = (
                tokens.clone(),
                next.clone(),
                latencies.clone(),
                errors.clone(),
                worker.clone(),
            );
            tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= REQUESTS || started.elapsed() > DEADLINE {
                        break;
                    }
                    let (account, token) = &tokens[i % tokens.len()];
                    let t0 = Instant::now();
                    // Its own task, so a failed call (the client panics) counts as an error.
                    let answer = tokio::spawn({
                        let (worker, account) = (worker.clone(), account.clone());
                        async move { worker.token(&account).await }
                    })
                    .await;
                    let ms = t0.elapsed().as_secs_f64() * 1000.0;
                    match answer {
                        Ok(a) if a.status == 200 && a.body["token"] == token.as_str() => {
                            latencies.lock().unwrap().push(ms)
                        }
                        Ok(a) => errors
                            .lock()
                            .unwrap()
                            .push(format!("{account}: HTTP {} {}", a.status, a.text)),
                        Err(e) => errors.lock().unwrap().push(format!("{account}: {e}")),
                    }
                }
            })
        })
        .collect();
    for client in clients {
        client.await.unwrap();
    }
    let elapsed = started.elapsed();

    let errors = errors.lock().unwrap().clone();
    let mut latencies = latencies.lock().unwrap().clone();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let served = latencies.len();
    let pct = |p: f64| latencies[((served as f64 * p).ceil() as usize).clamp(1, served) - 1];
    println!(
        "load: {REQUESTS} GET /v1/tokens/{{account}} over {} accounts at concurrency {CONCURRENCY}: \
         {served} ok, {} errors, p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms, {:.0} req/s ({:.1} s)",
        tokens.len(),
        errors.len(),
        pct(0.50),
        pct(0.99),
        latencies.last().copied().unwrap_or(0.0),
        served as f64 / elapsed.as_secs_f64(),
        elapsed.as_secs_f64()
    );
    assert!(
        errors.is_empty(),
        "{} errors, first: {:?}",
        errors.len(),
        &errors[..errors.len().min(5)]
    );
    assert_eq!(served, REQUESTS, "the run hit its {DEADLINE:?} deadline");
    assert_eq!(stack.dump().await, before, "reads changed the database");
}
