//! Account health: which [`AccountState`] a stored token is in, from facts Supabase holds.

use chrono::{DateTime, Duration, Utc};

pub use api_model::AccountState;

/// What Supabase knows about one token, as the account health query returns it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HealthFacts<'a> {
    /// Whether the token is served.
    pub is_active: bool,
    /// When it expires, if known.
    pub expires_at: Option<DateTime<Utc>>,
    /// The latest sync named its key among those a suspected Redis loss took, and no restore
    /// has written it back since.
    pub missing_in_redis: bool,
    /// `metadata.renew_state`: `renewed`, `renew_error` or `renew_failed`.
    pub renew_state: Option<&'a str>,
}

/// The state of a token with `facts` at `now`, `expiring` meaning within `expiring_within`.
///
/// When several apply, the first of these wins (the worst, and the one to act on first):
/// `expired` (its expiry has passed, active or not: only a new login helps), `inactive` (not
/// served), `missing_in_redis` (bots reading Redis do not find it), `renew_failed` (Tradovate
/// refused the renewal: it will expire), `expiring`, `fresh`. A token whose expiry is unknown
/// is never `expired` or `expiring`.
pub fn state(
    facts: &HealthFacts<'_>,
    now: DateTime<Utc>,
    expiring_within: Duration,
) -> AccountState {
    let expired = facts.expires_at.is_some_and(|at| at <= now);
    let expiring = facts.expires_at.is_some_and(|at| {
        now.checked_add_signed(expiring_within)
            .is_none_or(|soon| at <= soon)
    });
    if expired {
        AccountState::Expired
    } else if !facts.is_active {
        AccountState::Inactive
    } else if facts.missing_in_redis {
        AccountState::MissingInRedis
    } else if facts.renew_state == Some("renew_failed") {
        AccountState::RenewFailed
    } else if expiring {
        AccountState::Expiring
    } else {
        AccountState::Fresh
    }
}

/// The worst of `states` (as [`state`] orders them); `fresh` for none.
pub fn worst(states: impl IntoIterator<Item = AccountState>) -> AccountState {
    states.into_iter().min().unwrap_or(AccountState::Fresh)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(minutes: i64) -> Option<DateTime<Utc>> {
        Some(DateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes))
    }

    fn now() -> DateTime<Utc> {
        at(0).unwrap()
    }

    fn facts(expires_in_minutes: Option<i64>) -> HealthFacts<'static> {
        HealthFacts {
            is_active: true,
            expires_at: expires_in_minutes.and_then(at),
            missing_in_redis: false,
            renew_state: None,
        }
    }

    const WINDOW: Duration = Duration::minutes(10);

    #[test]
    fn each_state_from_its_facts() {
        let state_of = |f: HealthFacts<'_>| state(&f, now(), WINDOW);
        assert_eq!(state_of(facts(Some(60))), AccountState::Fresh);
        assert_eq!(state_of(facts(None)), AccountState::Fresh);
        assert_eq!(state_of(facts(Some(10))), AccountState::Expiring);
        assert_eq!(state_of(facts(Some(0))), AccountState::Expired);
        assert_eq!(state_of(facts(Some(-5))), AccountState::Expired);
        let inactive = HealthFacts {
            is_active: false,
            ..facts(Some(60))
        };
        assert_eq!(state_of(inactive), AccountState::Inactive);
        let missing = HealthFacts {
            missing_in_redis: true,
            ..facts(Some(60))
        };
        assert_eq!(state_of(missing), AccountState::MissingInRedis);
        let refused = HealthFacts {
            renew_state: Some("renew_failed"),
            ..facts(Some(60))
        };
        assert_eq!(state_of(refused), AccountState::RenewFailed);
        let retried = HealthFacts {
            renew_state: Some("renew_error"),
            ..facts(Some(5))
        };
        assert_eq!(state_of(retried), AccountState::Expiring);
    }

    #[test]
    fn the_worst_state_wins() {
        let all = HealthFacts {
            is_active: false,
            expires_at: at(-1),
            missing_in_redis: true,
            renew_state: Some("renew_failed"),
        };
        assert_eq!(state(&all, now(), WINDOW), AccountState::Expired);
        let no_expiry = HealthFacts {
            expires_at: at(5),
            ..all
        };
        assert_eq!(state(&no_expiry, now(), WINDOW), AccountState::Inactive);
        let active = HealthFacts {
            is_active: true,
            ..no_expiry
        };
        assert_eq!(state(&active, now(), WINDOW), AccountState::MissingInRedis);
        let present = HealthFacts {
            missing_in_redis: false,
            ..active
        };
        assert_eq!(state(&present, now(), WINDOW), AccountState::RenewFailed);
        assert_eq!(worst([]), AccountState::Fresh);
        assert_eq!(
            worst([
                AccountState::Fresh,
                AccountState::RenewFailed,
                AccountState::Expiring
            ]),
            AccountState::RenewFailed
        );
    }

    proptest! {
        /// The state is the first of ALL whose condition holds: each state's condition alone
        /// gives that state, and adding a worse one's condition never yields a better state.
        #[test]
        fn precedence_is_the_order_of_all(
            active in any::<bool>(), missing in any::<bool>(), refused in any::<bool>(),
            minutes in proptest::option::of(-100i64..100), window in 0i64..50,
        ) {
            let f = HealthFacts {
                is_active: active,
                expires_at: minutes.and_then(at),
                missing_in_redis: missing,
                renew_state: refused.then_some("renew_failed"),
            };
            let window = Duration::minutes(window);
            let got = state(&f, now(), window);
            let expired = minutes.is_some_and(|m| m <= 0);
            let expiring = minutes.is_some_and(|m| m <= window.num_minutes());
            let holds = |s: AccountState| match s {
                AccountState::Expired => expired,
                AccountState::Inactive => !active,
                AccountState::MissingInRedis => active && missing,
                AccountState::RenewFailed => active && refused,
                AccountState::Expiring => active && expiring,
                AccountState::Fresh => true,
            };
            let first = AccountState::ALL.into_iter().find(|s| holds(*s)).unwrap();
            prop_assert_eq!(got, first);
        }
    }
}
