//! When keys missing from Redis mean "Redis lost them" rather than "these tokens are gone".
//!
//! Redis forgets: it restarts empty, evicts keys with a TTL first under memory pressure (exactly
//! the token keys), or is flushed by mistake. A sync must then not deactivate the tokens, because
//! the durable copy is what gives them back. [`assess`] decides from counts alone.

/// The thresholds of the loss guard (`REDIS_LOSS_THRESHOLD`, `REDIS_LOSS_MIN_MISSING`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LossGuard {
    /// More than this percentage of the active, unexpired tokens' keys vanished (1–100).
    pub threshold_percent: u64,
    /// ... and at least this many: one key of two is not a loss.
    pub min_missing: usize,
}

/// What one sync saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Observation {
    /// Active tokens in Supabase that have not expired (and do not expire within moments).
    pub active_unexpired: usize,
    /// How many of those have no key in Redis now.
    pub missing: usize,
    /// Keys Redis holds under the token patterns (usable or not).
    pub redis_token_keys: usize,
    /// The last completed sync suspected a loss and no restore has completed since: the keys
    /// still missing are still lost, however few they are now.
    pub loss_pending: bool,
}

/// A suspected loss, with the counts it was decided on (the sync report and `sync_runs` show them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuspectedLoss {
    /// Active, unexpired tokens whose key is missing.
    pub missing: usize,
    /// Active, unexpired tokens Supabase holds.
    pub active_unexpired: usize,
    /// Keys Redis holds under the token patterns.
    pub redis_token_keys: usize,
    /// The `REDIS_LOSS_THRESHOLD` in force.
    pub threshold_percent: u64,
    /// The `REDIS_LOSS_MIN_MISSING` in force.
    pub min_missing: usize,
    /// `redis_empty`, `mass_disappearance` or `restore_pending`.
    pub reason: &'static str,
}

/// A loss is suspected when Redis holds no token key while Supabase holds active unexpired
/// tokens, or when more than `threshold_percent` of those tokens' keys vanished and at least
/// `min_missing` of them, or while an earlier loss is pending (no restore has completed since)
/// and keys are still missing. Otherwise `None`: missing keys mean their tokens are gone.
pub fn assess(guard: LossGuard, seen: Observation) -> Option<SuspectedLoss> {
    let reason = if seen.active_unexpired == 0 || seen.missing == 0 {
        return None;
    } else if seen.redis_token_keys == 0 {
        "redis_empty"
    } else if seen.missing >= guard.min_missing
        && (seen.missing as u128) * 100
            > u128::from(guard.threshold_percent) * seen.active_unexpired as u128
    {
        "mass_disappearance"
    } else if seen.loss_pending {
        "restore_pending"
    } else {
        return None;
    };
    Some(SuspectedLoss {
        missing: seen.missing,
        active_unexpired: seen.active_unexpired,
        redis_token_keys: seen.redis_token_keys,
        threshold_percent: guard.threshold_percent,
        min_missing: guard.min_missing,
        reason,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GUARD: LossGuard = LossGuard {
        threshold_percent: 50,
        min_missing: 3,
    };

    fn seen(
        active_unexpired: usize,
        missing: usize,
        redis_token_keys: usize,
    ) -> Option<&'static str> {
        assess(
            GUARD,
            Observation {
                active_unexpired,
                missing,
                redis_token_keys,
                loss_pending: false,
            },
        )
        .map(|l| l.reason)
    }

    #[test]
    fn an_empty_redis_with_active_tokens_is_a_loss_whatever_the_counts() {
        assert_eq!(seen(22, 22, 0), Some("redis_empty"));
        assert_eq!(seen(1, 1, 0), Some("redis_empty"));
        assert_eq!(seen(0, 0, 0), None, "nothing to lose");
    }

    #[test]
    fn a_mass_disappearance_needs_the_share_and_the_minimum() {
        assert_eq!(seen(22, 12, 10), Some("mass_disappearance"));
        assert_eq!(seen(22, 11, 11), None, "exactly 50 % is not more than 50 %");
        assert_eq!(seen(2, 1, 1), None, "one key of two is not a loss");
        assert_eq!(seen(4, 2, 2), None, "below the minimum of 3");
        assert_eq!(seen(4, 3, 1), Some("mass_disappearance"));
    }

    #[test]
    fn a_pending_loss_lasts_while_keys_are_missing() {
        let pending = |missing, keys| {
            assess(
                GUARD,
                Observation {
                    active_unexpired: 440,
                    missing,
                    redis_token_keys: keys,
                    loss_pending: true,
                },
            )
            .map(|l| l.reason)
        };
        assert_eq!(pending(10, 430), Some("restore_pending"));
        assert_eq!(pending(1, 439), Some("restore_pending"));
        assert_eq!(pending(0, 440), None, "every key is back: the loss is over");
    }

    #[test]
    fn single_keys_deleted_on_purpose_are_not_a_loss() {
        assert_eq!(seen(22, 1, 21), None);
        assert_eq!(seen(1000, 400, 600), None);
        assert_eq!(seen(22, 0, 22), None);
    }
}
