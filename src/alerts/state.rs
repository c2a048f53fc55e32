//! Which alert a change of state sends: a pure decision, from the condition and whether it
//! was and is firing. State lives in Postgres (`alert_states`, one row per condition), so a
//! cron failing every 5 minutes sends one alert, and one recovery once it works again.

use super::Kind;

/// A condition a job observes; its state (firing or not) is kept between invocations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Condition {
    /// The last sync failed.
    Sync,
    /// Redis looks like it lost its keys; a completed restore ends it.
    RedisLoss,
    /// The last renew pass had a session that failed.
    Renew,
    /// Renewals are paused (rate limit, penalty ticket, captcha).
    RenewalsPaused,
    /// Active tokens expire within the renewal window and will not be renewed.
    TokenExpiringUnrenewed,
    /// A stored token could not be decrypted (a key rotation went wrong).
    Decryption,
}

impl Condition {
    /// Every condition.
    pub const ALL: [Condition; 6] = [
        Condition::Sync,
        Condition::RedisLoss,
        Condition::Renew,
        Condition::RenewalsPaused,
        Condition::TokenExpiringUnrenewed,
        Condition::Decryption,
    ];

    /// The name stored in `alert_states.condition`.
    pub fn as_str(self) -> &'static str {
        match self {
            Condition::Sync => "sync",
            Condition::RedisLoss => "redis_loss",
            Condition::Renew => "renew",
            Condition::RenewalsPaused => "renewals_paused",
            Condition::TokenExpiringUnrenewed => "token_expiring_unrenewed",
            Condition::Decryption => "decryption",
        }
    }

    /// The condition stored under `name`.
    pub fn parse(name: &str) -> Option<Condition> {
        Condition::ALL.into_iter().find(|c| c.as_str() == name)
    }
}

/// The alert due when `condition` goes from `was_firing` to `firing`: one when it starts
/// firing, a recovery when it stops (for the conditions that have one), none when nothing
/// changed.
pub fn decide(condition: Condition, was_firing: bool, firing: bool) -> Option<Kind> {
    match (was_firing, firing) {
        (false, true) => Some(match condition {
            Condition::Sync => Kind::SyncFailed,
            Condition::RedisLoss => Kind::RedisLossSuspected,
            Condition::Renew => Kind::RenewFailed,
            Condition::RenewalsPaused => Kind::RenewalsPaused,
            Condition::TokenExpiringUnrenewed => Kind::TokenExpiringUnrenewed,
            Condition::Decryption => Kind::DecryptionFailed,
        }),
        (true, false) => match condition {
            Condition::Sync => Some(Kind::SyncRecovered),
            // Only a completed restore clears a suspected loss.
            Condition::RedisLoss => Some(Kind::RestoreDone),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for c in Condition::ALL {
            assert_eq!(Condition::parse(c.as_str()), Some(c));
        }
        assert_eq!(Condition::parse("nope"), None);
    }

    #[test]
    fn one_alert_per_change_of_state() {
        // A failing cron every 5 minutes, then working again, then staying fine.
        let runs = [false, true, true, true, false, false, true];
        let mut was = false;
        let mut sent = Vec::new();
        for firing in runs {
            sent.extend(decide(Condition::Sync, was, firing));
            was = firing;
        }
        assert_eq!(
            sent,
            [Kind::SyncFailed, Kind::SyncRecovered, Kind::SyncFailed]
        );
    }

    #[test]
    fn every_condition_alerts_when_it_starts_firing_and_never_while_it_stays() {
        for c in Condition::ALL {
            assert!(decide(c, false, true).is_some(), "{c:?}");
            assert_eq!(decide(c, true, true), None, "{c:?}");
            assert_eq!(decide(c, false, false), None, "{c:?}");
        }
        assert_eq!(
            decide(Condition::RedisLoss, true, false),
            Some(Kind::RestoreDone)
        );
        assert_eq!(decide(Condition::Renew, true, false), None);
    }
}
