//! A bound on how long one upstream request may take: a race against a timer, the same
//! natively (tokio) and inside workerd (`setTimeout` via `worker::Delay`), where reqwest has
//! no timeout of its own. Dropping the request future aborts the fetch.

use std::future::Future;
use std::time::Duration;

/// The request did not finish in time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

/// Resolves to `fut`'s output, or `Err(Elapsed)` once `ms` milliseconds have passed.
pub async fn within<T>(ms: u64, fut: impl Future<Output = T>) -> Result<T, Elapsed> {
    let timer = sleep(Duration::from_millis(ms));
    futures_util::pin_mut!(fut, timer);
    match futures_util::future::select(fut, timer).await {
        futures_util::future::Either::Left((output, _)) => Ok(output),
        futures_util::future::Either::Right(_) => Err(Elapsed),
    }
}

#[cfg(target_arch = "wasm32")]
async fn sleep(duration: Duration) {
    worker::Delay::from(duration).await;
}

#[cfg(not(target_arch = "wasm32"))]
async fn sleep(duration: Duration) {
    tokio::time::sleep(duration).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn finishes_or_gives_up() {
        assert_eq!(within(1000, async { 7 }).await, Ok(7));
        let never = std::future::pending::<()>();
        let started = std::time::Instant::now();
        assert_eq!(within(50, never).await, Err(Elapsed));
        assert!(started.elapsed() < Duration::from_secs(2));
    }
}
