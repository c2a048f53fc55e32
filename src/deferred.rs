//! Work a request leaves for after its answer (audit rows, alerts). The Worker hands it to
//! `ctx.wait_until`, so the caller never waits for it; natively it is awaited after the
//! response is built, so tests see its effects when `handle` returns.

use std::future::Future;
use std::pin::Pin;

/// A list of futures to run after the response; each handles and logs its own errors.
#[derive(Default)]
pub struct Deferred(Vec<Pin<Box<dyn Future<Output = ()>>>>);

impl Deferred {
    /// Adds `work` to run after the response.
    pub fn push(&mut self, work: impl Future<Output = ()> + 'static) {
        self.0.push(Box::pin(work));
    }

    /// True when nothing was deferred.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Runs every deferred future, in the order they were added.
    pub async fn run(self) {
        for work in self.0 {
            work.await;
        }
    }
}

impl std::fmt::Debug for Deferred {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Deferred({} tasks)", self.0.len())
    }
}
