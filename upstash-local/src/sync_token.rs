//! Read-your-writes: the `upstash-sync-token` response header.
//!
//! Upstash answers every request with an `upstash-sync-token` header; a client that sends the
//! last one it saw back (as `upstash-sync-token` on its next request) is served only once that
//! write is visible. Behind upstash-local there is one `redis-server` and every answer is sent
//! after its commands ran there, so any token this server issued is already satisfied when it
//! comes back: the wait is always zero. What must hold is the header contract, which this
//! module keeps.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// The name of the request and response header.
pub const HEADER: &str = "upstash-sync-token";

/// Issues sync tokens: decimal numbers that never decrease, and that increase with every
/// request that ran commands on Redis.
///
/// A token is at least the wall-clock time in microseconds when it was issued, so tokens keep
/// increasing across restarts of the server (unless the clock goes back).
#[derive(Debug)]
pub struct SyncTokens {
    last: AtomicU64,
}

impl Default for SyncTokens {
    fn default() -> Self {
        Self {
            last: AtomicU64::new(now_micros()),
        }
    }
}

impl SyncTokens {
    /// The token for an answer that ran no command: the latest one issued.
    pub fn current(&self) -> u64 {
        self.last.load(Ordering::SeqCst)
    }

    /// A new token for an answer whose commands have run: larger than every token issued
    /// before it.
    pub fn advance(&self) -> u64 {
        let now = now_micros();
        let previous = self
            .last
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
                Some(last.saturating_add(1).max(now))
            })
            .unwrap_or_else(|last| last);
        previous.saturating_add(1).max(now)
    }
}

fn now_micros() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_increase_and_current_repeats_the_last() {
        let tokens = SyncTokens::default();
        let start = tokens.current();
        let a = tokens.advance();
        let b = tokens.advance();
        assert!(start < a && a < b, "{start} {a} {b}");
        assert_eq!(tokens.current(), b);
        assert_eq!(tokens.current(), b);
        // A server started later starts above what an earlier one issued (while it issued
        // fewer than one token per microsecond).
        std::thread::sleep(std::time::Duration::from_millis(5));
        assert!(SyncTokens::default().current() >= b);
    }
}
