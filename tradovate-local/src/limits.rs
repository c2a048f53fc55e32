//! Tradovate's endpoint-level limits: a number of requests per rolling hour per client
//! address; past it, a time penalty whose `p-time` grows with each violation in the hour.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;
use std::time::{Duration, Instant};

const HOUR: Duration = Duration::from_secs(3600);

/// The penalty a request ran into: the documented `p-time` (seconds left, at least 1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Penalty {
    /// Seconds to wait before the next request of this kind.
    pub p_time: u64,
}

#[derive(Default)]
struct Client {
    /// When counted requests were made, oldest first (within the last hour).
    requests: VecDeque<Instant>,
    /// Violations within the last hour, oldest first.
    violations: VecDeque<Instant>,
    penalty_until: Option<Instant>,
}

/// One endpoint's limit, per client address.
pub struct RollingLimit {
    per_hour: u32,
    backoff: Duration,
    clients: HashMap<IpAddr, Client>,
}

impl RollingLimit {
    /// `per_hour` counted requests per rolling hour; the first violation costs `backoff`.
    pub fn new(per_hour: u32, backoff_seconds: u64) -> Self {
        Self {
            per_hour,
            backoff: Duration::from_secs(backoff_seconds.max(1)),
            clients: HashMap::new(),
        }
    }

    /// The penalty in force for `client`, if any.
    pub fn penalty(&mut self, client: IpAddr, now: Instant) -> Option<Penalty> {
        let state = self.clients.entry(client).or_default();
        match state.penalty_until {
            Some(until) if until > now => Some(Penalty {
                p_time: (until - now).as_secs_f64().ceil().max(1.0) as u64,
            }),
            _ => None,
        }
    }

    /// Counts one request of `client`; past the limit, imposes and returns a penalty.
    pub fn count(&mut self, client: IpAddr, now: Instant) -> Option<Penalty> {
        if let Some(penalty) = self.penalty(client, now) {
            return Some(penalty);
        }
        let state = self.clients.entry(client).or_default();
        prune(&mut state.requests, now);
        prune(&mut state.violations, now);
        if state.requests.len() < self.per_hour as usize {
            state.requests.push_back(now);
            return None;
        }
        state.violations.push_back(now);
        let wait = self.backoff * state.violations.len() as u32;
        state.penalty_until = Some(now + wait);
        Some(Penalty {
            p_time: wait.as_secs(),
        })
    }
}

fn prune(times: &mut VecDeque<Instant>, now: Instant) {
    while times
        .front()
        .is_some_and(|t| now.duration_since(*t) >= HOUR)
    {
        times.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limit_per_rolling_hour_then_growing_penalties() {
        let ip: IpAddr = "127.0.0.1".parse().unwrap();
        let other: IpAddr = "127.0.0.2".parse().unwrap();
        let mut limit = RollingLimit::new(2, 15);
        let t0 = Instant::now();
        assert_eq!(limit.count(ip, t0), None);
        assert_eq!(limit.count(ip, t0), None);
        assert_eq!(limit.count(ip, t0), Some(Penalty { p_time: 15 }));
        assert_eq!(limit.count(other, t0), None, "limits are per client");
        let t1 = t0 + Duration::from_secs(5);
        assert_eq!(limit.count(ip, t1), Some(Penalty { p_time: 10 }));
        let t2 = t0 + Duration::from_secs(16);
        assert_eq!(
            limit.count(ip, t2),
            Some(Penalty { p_time: 30 }),
            "second violation"
        );
        let later = t0 + HOUR + Duration::from_secs(60);
        assert_eq!(limit.count(ip, later), None, "the window rolled on");
    }
}
