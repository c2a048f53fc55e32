//! Counting the subrequests of one invocation. The Workers free plan allows 50 per invocation
//! (`SUBREQUEST_BUDGET`); jobs that can do more work than fits (a restore) ask how many are left.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// A counter shared by the Upstash and Supabase clients of one invocation: every request
/// they send counts one, whether it succeeds or not.
#[derive(Debug, Clone, Default)]
pub struct Subrequests(Arc<AtomicUsize>);

impl Subrequests {
    /// A counter at zero.
    pub fn new() -> Self {
        Self::default()
    }

    /// Requests sent so far.
    pub fn count(&self) -> usize {
        self.0.load(Ordering::Relaxed)
    }

    /// Counts one request.
    pub(crate) fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}
